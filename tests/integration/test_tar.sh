#!/bin/bash
#
# test_tar.sh - a tree with symbolic links, empty directories, modes, owners
# and mtimes, archived with tar on the native disk, extracted into a mount,
# archived again from the mount: the two archives list the same entries
# (tar -tvf) and hold the same contents.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
S=$T/src

step "a tree on the native disk"
mkdir -p "$S/docs/empty" "$S/bin" "$S/data/a/b/c" "$S/locked" "$S/very empty"
echo "readme" >"$S/README"
gen_data 2000000 21 >"$S/data/big.bin"
gen_data 4097 22 >"$S/data/a/b/c/odd-size"
: >"$S/data/zero"
printf '#!/bin/sh\necho hi\n' >"$S/bin/run"
chmod 755 "$S/bin/run"
echo private >"$S/locked/key"
chmod 600 "$S/locked/key"
chmod 700 "$S/locked"
echo ro >"$S/docs/read-only"
chmod 444 "$S/docs/read-only"
echo "name with spaces" >"$S/docs/a name with spaces.txt"
echo "unicode" >"$S/docs/résumé-ünïcødé.txt"
echo other >"$S/docs/owned"
chown 4242:4343 "$S/docs/owned"
ln -s ../README "$S/docs/readme-link"
ln -s /etc/passwd "$S/docs/abs-link"
ln -s missing/target "$S/docs/dangling"
ln -s data/a "$S/dir-link"
for i in $(seq 1 50); do
	echo "small $i" >"$S/data/a/s$i"
done
find "$S" -exec touch -h -d '2020-02-02 02:02:02' {} +
touch -d '2001-01-01 01:01:01' "$S/data/zero" "$S/docs/empty"
log "$(find "$S" | wc -l) entries"

step "tar into the mount"
(cd "$S" && tar --sort=name -cf "$T/in.tar" .)
mount_fs
B=$MNT/bkt
mkdir "$B" "$B/t"
tar -C "$B/t" -xpf "$T/in.tar"
ok "tar -C $B/t -xpf in.tar"

# listing ARCHIVE: tar -tvf, numeric owners.
listing() { tar --numeric-owner -tvf "$1"; }

check_out() {
	(cd "$B/t" && tar --sort=name -cf "$T/out.tar" .)
	if ! diff <(listing "$T/in.tar") <(listing "$T/out.tar") >"$T/diff.out"; then
		cat "$T/diff.out"
		fail "$1: tar -tvf of the archive made from the mount differs (< in, > out)"
	fi
	ok "$1: same tar -tvf listing ($(listing "$T/out.tar" | wc -l) entries)"
	rm -rf "$T/out"
	mkdir "$T/out"
	tar -C "$T/out" -xpf "$T/out.tar"
	if ! diff -r --no-dereference "$S" "$T/out" >"$T/diff.out" 2>&1; then
		head -n 40 "$T/diff.out"
		fail "$1: contents differ after the round trip"
	fi
	if ! diff <(stat_list "$S") <(stat_list "$T/out") >"$T/diff.out"; then
		cat "$T/diff.out"
		fail "$1: stat differs after the round trip (< source, > copy)"
	fi
	ok "$1: same contents, modes, owners and mtimes after the round trip"
}
step "tar out of the mount"
check_out "first mount"

step "again after a remount"
remount
check_out "after remount"

step "tar -xf over the existing tree replaces the files"
tar -C "$B/t" -xpf "$T/in.tar"
check_out "extracted twice"

step "tar of a file just changed: its ctime stays put while tar reads it"
# tar compares the ctime before and after reading.  The store's own time
# of each change (a chmod, a commit) differed from the one the kernel had
# been shown, so tar of a file just chmod'ed, truncated or touched said
# "file changed as we read it" and exited 1 (with passthrough, each time).
mkdir "$B/fresh"
for op in "chmod 600" "chown 5:6" "touch -d 2020-01-02" "truncate -s 100K" "fallocate -l 64K" "append"; do
	for i in 1 2 3; do
		f=$B/fresh/f$i
		rm -f "$f"
		echo hi >"$f"
		if [ "$op" = append ]; then echo more >>"$f"; else $op "$f"; fi
		tar -C "$B/fresh" -cf "$T/fresh.tar" "f$i" 2>"$T/fresh.err" ||
			fail "tar of a file just changed by $op: $(cat "$T/fresh.err")"
		[ "$i" = 1 ] || continue
		c1=$(stat -c %z "$f")
		sleep 1.1	# past the attribute timeout: what the store says
		assert_eq "$c1" "$(stat -c %z "$f")" "ctime of a file changed by $op, then again 1.1 s later"
	done
done
ok "tar exits 0 after each change, and the ctime the kernel showed is the store's"

step "files dated the epoch (tar --mtime=@0, cp -p, a futimens before the close, mv)"
# mtime 0 meant "now" to the store: a file given it while open, or renamed
# after, took the time of its close or rename (rsync -a sent it each run).
mkdir "$T/epoch" "$B/epoch"
echo hi >"$T/epoch/a"
touch -d @0 "$T/epoch/a"
tar --mtime=@0 -cf "$T/epoch.tar" -C "$T/epoch" a
tar -xf "$T/epoch.tar" -C "$B/epoch"
mv "$B/epoch/a" "$B/epoch/tar-x"
cp -p "$T/epoch/a" "$B/epoch/cp-p"
"$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x"); os.utime(fd, (0, 0)); os.close(fd)' "$B/epoch/futimens"
echo x >"$B/epoch/plain"
touch -d @0 "$B/epoch/plain"
mv "$B/epoch/plain" "$B/epoch/renamed"
remount
assert_eq "0 0 0 0" "$(stat -c %Y "$B/epoch/tar-x" "$B/epoch/cp-p" "$B/epoch/futimens" "$B/epoch/renamed" | tr '\n' ' ' | sed 's/ $//')" \
	"mtimes after a remount"
ok "the epoch is kept as an mtime"

step "tar --xattrs -x: one version per file, with its xattrs"
# tar makes a file that has xattrs with mknod, sets them, then writes it:
# each such file had an empty first version before the one with content.
mkdir "$T/xa" "$B/xa"
echo "with xattrs" >"$T/xa/f"
setfattr -n user.color -v red "$T/xa/f"
: >"$T/xa/empty"
setfattr -n user.color -v blue "$T/xa/empty"
echo plain >"$T/xa/plain"
tar --xattrs -cf "$T/xa.tar" -C "$T/xa" .
tar --xattrs -xf "$T/xa.tar" -C "$B/xa"
for f in f empty plain; do
	assert_eq 1 "$(nversions "$B/xa/$f")" "versions of $f after tar --xattrs -x"
	assert_same_file "$T/xa/$f" "$B/xa/$f"
done
assert_eq red "$(getfattr --absolute-names --only-values -n user.color "$B/xa/f")" "user.color of f"
assert_eq blue "$(getfattr --absolute-names --only-values -n user.color "$B/xa/empty")" "user.color of empty"
# Written again later, it keeps both versions, as any file does.
echo again >"$B/xa/f"
assert_eq 2 "$(nversions "$B/xa/f")" "versions of f written again"
# mknod, then a write: one version; mknod alone: the empty file stays.
mknod "$B/xa/m1" p 2>/dev/null && fail "mknod of a fifo worked"
"$PYTHON" -c 'import os, stat, sys
os.mknod(sys.argv[1], 0o644 | stat.S_IFREG)
os.mknod(sys.argv[2], 0o644 | stat.S_IFREG)
with open(sys.argv[1], "w") as f: f.write("content")' "$B/xa/m1" "$B/xa/m2"
assert_eq 1 "$(nversions "$B/xa/m1")" "versions of a file made by mknod, then written"
assert_eq content "$(cat "$B/xa/m1")" "content of m1"
assert_eq "1 0" "$(nversions "$B/xa/m2") $(stat -c %s "$B/xa/m2")" "versions and size of a file made by mknod alone"
# Written a while after the mknod: both versions, as after touch.
sleep 1.2
echo later >>"$B/xa/m2"
assert_eq 2 "$(nversions "$B/xa/m2")" "versions of a file made by mknod, written 1.2 s later"
remount
assert_eq "content 6" "$(cat "$B/xa/m1") $(stat -c %s "$B/xa/m2")" "m1 and m2 after a remount"
ok "one version each, contents and xattrs as archived"

unmount_fs
check_store
