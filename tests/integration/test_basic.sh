#!/bin/bash
#
# test_basic.sh - the POSIX surface of a mount, used with ordinary tools:
# buckets and their names, file I/O against a reference file on the native
# disk, directories, hard and symbolic links, metadata, extended attributes,
# long keys, statfs, rename flags, inode numbers in listings and atimes.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
# A store directory made by the user, open to all: the catalog (every key
# and attribute) is still the owner's alone.
mkdir -m 0755 "$STORE"
mount_fs
B=$MNT/bkt
assert_eq 600 "$(stat -c %a "$STORE/catalog.db")" "mode of catalog.db in a directory of mode 0755"

step "another user cannot open the store, and is told why"
chmod 755 "$T" # so that nobody can walk to the store, whose directory is 0755
rc=0
out=$(runuser -u nobody -- "$REPLICAFS" check "$STORE" 2>&1) || rc=$?
chmod 700 "$T"
[ "$rc" != 0 ] || fail "nobody opened root's store: $out"
[[ $out == *"only its owner (or root) may open a store"* ]] ||
	fail "nobody was refused the store without the reason: $out"
ok "refused: $out"

step "a store made in an open folder becomes its owner's; one on a read-only disk says so"
mkdir -m 1777 "$T/open-store" "$T/mnt-open"
chmod 1777 "$T/open-store"
"$REPLICAFS" mount -- "$T/open-store" "$T/mnt-open" || fail "mount of a store in an empty 1777 folder failed"
track_mount "$T/mnt-open"
fusermount3 -u "$T/mnt-open"
assert_eq 700 "$(stat -c %a "$T/open-store")" "mode of a store made in a 1777 folder"
mkdir "$T/ro-store"
mount --bind "$T/open-store" "$T/ro-store"
mount -o remount,bind,ro "$T/ro-store"
expect_error "is on a read-only file system" "$REPLICAFS" check "$T/ro-store"
umount "$T/ro-store"

step "a second mount on the same mount point is refused, and one on a file"
expect_error "is a replicafs mount already" "$REPLICAFS" mount "$STORE" "$MNT"
echo hi >"$T/afile"
expect_error "Not a directory" "$REPLICAFS" mount "$T/other-store" "$T/afile"
awk -v m="$T/afile" '$2 == m { exit 1 }' /proc/self/mounts || fail "a mount on a regular file is there"
assert_missing "$T/other-store"
# A store under its mount point, or a mount point in its store, hung the
# first mkdir for good (the daemon waited on its own mount).
mkdir -p "$T/nest/store/in"
expect_error "must lie outside each other" "$REPLICAFS" mount "$T/nest/new-store" "$T/nest"
expect_error "must lie outside each other" "$REPLICAFS" mount "$T/nest/store" "$T/nest/store/in"
assert_missing "$T/nest/new-store"
awk -v t="$T/nest" 'index($2, t) == 1 { exit 1 }' /proc/self/mounts || fail "a nested mount is there"
assert_eq 1 "$(awk -v m="$MNT" '$5 == m' /proc/self/mountinfo | wc -l)" "mounts on $MNT"
# The same through a shared bind mount of the mount point: the paths lie
# apart, but the new mount shows at the alias too, store and all.
mkdir -p "$T/bn/mnt" "$T/bn/alias"
mount --bind "$T/bn/mnt" "$T/bn/mnt"
mount --make-shared "$T/bn/mnt"
mount --bind "$T/bn/mnt" "$T/bn/alias"
rc=0
out=$(timeout 30 "$REPLICAFS" mount "$T/bn/alias/store" "$T/bn/mnt" 2>&1) || rc=$?
dev=$(awk -v m="$T/bn/mnt" '$5 == m && $9 ~ /^fuse/ { print $3 }' /proc/self/mountinfo | tail -n 1)
if [ -n "$dev" ]; then
	# The build before: the daemon waits on its own mount; free it.
	mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections
	echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort"
fi
for m in "$T/bn/alias" "$T/bn/mnt"; do	# each with what is stacked on it
	while awk -v m="$m" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; do
		umount -l "$m" || break
	done
done
[ -z "$dev" ] || fail "a mount whose store lies in it through a bind mount was made (status $rc): $out"
[[ $out == *"must lie outside each other"* ]] || fail "mount through a bind mount said: $out"
assert_missing "$T/bn/mnt/store"	# refused before it was made
ok "refused: the store lies in the mount through a bind mount of the mount point"
mkdir -p "$T/bn/store/in" "$T/bn/alias"
mount --bind "$T/bn/store" "$T/bn/alias"
rc=0
out=$("$REPLICAFS" mount "$T/bn/store" "$T/bn/alias/in" 2>&1) || rc=$?
while awk -v m="$T/bn/alias/in" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; do
	fusermount3 -u "$T/bn/alias/in" || break
done
umount "$T/bn/alias"
[[ $rc != 0 && $out == *"must lie outside each other"* ]] ||
	fail "a mount point in the store through a bind mount: status $rc, $out"
ok "refused: the mount point lies in the store through a bind mount"

step "buckets: mkdir at the root makes one; bad names are refused"
mkdir "$B"
[ -d "$B" ] || fail "mkdir $B did not make a directory"
ok "mkdir $B"
# A store needs hard links, which a mount has not: made there, it failed
# half-built (261 entries in the bucket) with a message about a blob.
mkdir "$T/mx"
expect_error "lies in a replicafs mount" "$REPLICAFS" mount "$B/newstore" "$T/mx"
assert_missing "$B/newstore"
b63=$(repeat a 63)
mkdir "$MNT/my-bucket.2" "$MNT/$b63"
ok "names with '.' and '-', and of 63 characters, are accepted"
for bad in Bad_Name UPPER bad_name ab 192.168.1.1 -start end- \
	"$(repeat a 64)"; do
	expect_error "Invalid argument" mkdir "$MNT/$bad"
	assert_missing "$MNT/$bad"
done
assert_eq "$(printf '%s\n' bkt my-bucket.2 "$b63" | sort)" "$(ls "$MNT" | sort)" \
	"buckets listed at the root"

step "a plain file at the root is refused"
expect_fail touch "$MNT/file-at-root"
expect_fail sh -c "echo x > '$MNT/file-at-root2'"
assert_missing "$MNT/file-at-root"

step "file I/O matches the same operations on the native disk"
R=$T/ref/f
F=$B/f
same() {
	assert_same_file "$R" "$F" "after $1"
	assert_eq "$(stat -c %s "$R")" "$(stat -c %s "$F")" "size after $1"
	ok "$1"
}
printf 'hello\n' >"$R"
printf 'hello\n' >"$F"
same "create"
assert_eq "hello" "$(cat "$F")" "read back"
printf 'world\n' >>"$R"
printf 'world\n' >>"$F"
same "append"
gen_data 300000 1 >"$R"
gen_data 300000 1 >"$F"
same "overwrite with 300000 bytes"
gen_data 5000 2 >"$T/patch"
dd if="$T/patch" of="$R" bs=1 seek=1234 conv=notrunc status=none
dd if="$T/patch" of="$F" bs=1 seek=1234 conv=notrunc status=none
same "random write at offset 1234 (dd conv=notrunc)"
dd if="$T/patch" of="$R" bs=4096 seek=100 conv=notrunc status=none
dd if="$T/patch" of="$F" bs=4096 seek=100 conv=notrunc status=none
same "write past the end (a hole, dd seek=100 bs=4096)"
truncate -s 1000 "$R"
truncate -s 1000 "$F"
same "truncate -s 1000 (shrink)"
truncate -s 70000 "$R"
truncate -s 70000 "$F"
same "truncate -s 70000 (grow)"
for x in "$R" "$F"; do
	"$PYTHON" - "$x" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for off, data in ((10, b"ten"), (65536, b"x" * 9000), (3, b"three")):
    os.pwrite(fd, data, off)
    assert os.pread(fd, len(data), off) == data, "read-your-writes failed"
os.ftruncate(fd, 72000)
os.pwrite(fd, b"end", 71997)
os.close(fd)
EOF
done
same "pwrite, pread and ftruncate on one open file (python)"
assert_eq "$(dd if="$R" bs=1000 skip=65 count=3 status=none | sha256sum)" \
	"$(dd if="$F" bs=1000 skip=65 count=3 status=none | sha256sum)" \
	"a read at an offset (dd skip=65)"
: >"$R"
: >"$F"
same "truncate to 0 by O_TRUNC"
# O_RDONLY | O_TRUNC: Linux empties the file for a caller who may write
# it; the close keeps the empty file as a version (the build before
# showed it empty, kept the old content, and showed it again later).
for x in "$R" "$F"; do
	printf 'hello world\n' >"$x"
	"$PYTHON" -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC))' "$x"
done
same "open(O_RDONLY | O_TRUNC)"
assert_eq "$(sha_of "$F")" "$(getfattr --only-values -n system.replicafs.sha256 "$F")" \
	"system.replicafs.sha256 after open(O_RDONLY | O_TRUNC)"
echo 3 >/proc/sys/vm/drop_caches
assert_eq 0 "$(stat -c %s "$F")" "size after open(O_RDONLY | O_TRUNC) and a cache drop"
gen_data 12345 3 >"$R"
cp "$R" "$F"
same "cp of a file into the mount"

# fallocate(1): each run is an open, one fallocate(2) and a close.  Only
# a change of size or content makes a version.
R=$T/ref/fal
F=$B/fal
both() { "$@" "$R" && "$@" "$F"; }
has_versions() { # N WHAT
	assert_eq "$1" "$(nversions "$F")" "versions after $2"
	assert_eq "$(sha_of "$F")" \
		"$(getfattr --only-values -n system.replicafs.sha256 "$F")" \
		"system.replicafs.sha256 after $2"
}
both fallocate -l 100000
same "fallocate -l 100000 of a new file"
has_versions 1 "fallocate of a new file"
patch_at() { dd if="$T/patch" of="$1" bs=1 seek=90000 conv=notrunc status=none; }
both patch_at
both fallocate -n -l 1000000
same "fallocate --keep-size"
has_versions 2 "fallocate --keep-size (no version)"
both fallocate -o 50000 -l 200000
same "fallocate -o 50000 -l 200000 (grows)"
has_versions 3 "fallocate that grows the file"
both fallocate -p -o 90100 -l 3000
same "fallocate --punch-hole"
has_versions 4 "fallocate --punch-hole"
both fallocate -z -o 249000 -l 5000
same "fallocate --zero-range past the end"
has_versions 5 "fallocate --zero-range"

step "the times stat shows after writes are the ones kept"
# Under the writeback cache (nopassthrough) the kernel keeps a written
# file's times and sends them at the close, when they changed: a write
# in the same clock tick changes none.  The mount set its own time at
# each write it got, so an appended file's mtime and ctime moved by a
# millisecond at a cache drop or a remount, and git's index took such
# files as changed.
for i in 1 2 3 4 5 6 7 8; do
	echo a >"$B/tm$i"
	echo b >>"$B/tm$i"
done
chmod 600 "$B/tm3"
stat -c '%n %y %z' "$B"/tm* >"$T/times.before"
echo 3 >/proc/sys/vm/drop_caches
stat -c '%n %y %z' "$B"/tm* >"$T/times.after"
diff "$T/times.before" "$T/times.after" >&2 || fail "times moved at a cache drop"
remount
stat -c '%n %y %z' "$B"/tm* >"$T/times.after"
diff "$T/times.before" "$T/times.after" >&2 || fail "times moved at a remount"
ok "mtime and ctime of 8 appended files the same after a cache drop and a remount"

step "directories"
mkdir "$B/d"
touch "$B/d/x"
expect_error "Directory not empty" rmdir "$B/d"
rm "$B/d/x"
rmdir "$B/d"
assert_missing "$B/d"
ok "rmdir works once the directory is empty"
mkdir "$B/empty"
mkdir -m 700 "$B/private"
mkdir -p "$B/deep/er/est"
assert_eq "700" "$(stat -c %a "$B/private")" "mode of mkdir -m 700"
mkdir "$MNT/versioned"
echo data >"$MNT/versioned/f"
rm "$MNT/versioned/f"
assert_eq "" "$(ls -A "$MNT/versioned")" "listing of a bucket whose only object is deleted"
expect_error "Directory not empty" rmdir "$MNT/versioned"
grep -q "rmdir versioned: the bucket still holds versions" "$(daemon_log)" ||
	fail "the daemon's log does not say why rmdir of a bucket with versions failed"
mkdir "$MNT/emptyb"
rmdir "$MNT/emptyb"
assert_missing "$MNT/emptyb" "a removed empty bucket"
ok "an empty bucket can be removed"

step "hard links are refused, symbolic links work"
echo target-data >"$B/target"
expect_error "Operation not permitted" ln "$B/target" "$B/hardlink"
assert_missing "$B/hardlink"
ln -s target "$B/rel-link"
ln -s /etc/hostname "$B/abs-link"
ln -s does-not-exist "$B/dangling"
assert_eq "target" "$(readlink "$B/rel-link")" "readlink of a relative link"
assert_eq "/etc/hostname" "$(readlink "$B/abs-link")" "readlink of an absolute link"
assert_eq "does-not-exist" "$(readlink "$B/dangling")" "readlink of a dangling link"
assert_eq "symbolic link" "$(stat -c %F "$B/rel-link")" "type of a link"
assert_eq "0 0" "$(stat -c '%b' "$B/rel-link" "$B/abs-link" | xargs)" \
	"blocks of a link (du counts none, as for a fast symlink on ext4)"
assert_eq "target-data" "$(cat "$B/rel-link")" "reading through a link"
ln -s ../target "$B/deep/up-link"
assert_eq "target-data" "$(cat "$B/deep/up-link")" "reading through ../ in a link"

step "chmod, chown and touch change metadata and make no version"
gen_data 4096 4 >"$B/meta"
nv=$(nversions "$B/meta")
assert_eq 1 "$nv" "versions of a file written once"
chmod 640 "$B/meta"
chown 1234:5678 "$B/meta"
touch -d '2001-02-03 04:05:06 UTC' "$B/meta"
expected_meta="640 1234 5678 981173106 4096"
assert_eq "$expected_meta" "$(stat -c '%a %u %g %Y %s' "$B/meta")" "stat after chmod, chown, touch -d"
assert_eq "$nv" "$(nversions "$B/meta")" "number of versions after chmod, chown, touch"
chmod 4755 "$B/target"
chown -h 42:43 "$B/rel-link"
assert_eq "4755" "$(stat -c %a "$B/target")" "setuid mode"
assert_eq "42 43" "$(stat -c '%u %g' "$B/rel-link")" "owner of a link (chown -h)"
# touch with no time sets mtime and ctime to one time, as a disk does
# (the build before: mtime a microsecond before ctime).
echo x >"$B/touched"
touch "$B/touched"
assert_eq "$(stat -c %z "$B/touched")" "$(stat -c %y "$B/touched")" "mtime against ctime after touch"
echo 3 >/proc/sys/vm/drop_caches
assert_eq "$(stat -c %z "$B/touched")" "$(stat -c %y "$B/touched")" \
	"mtime against ctime after touch and a cache drop"

step "times outside what a nanosecond count holds are clamped, not wrapped"
# As ext4 clamps to its range; before, 2300 came back as 1715, and a
# folder before 1970 as 1970.  Read after a remount: with the writeback
# cache the kernel shows a file the mtime it was given until it forgets
# the inode.
declare -A when=([2300]=2262-04-11 [1600]=1677-09-21 [1901]=1901-12-14)
for y in "${!when[@]}"; do
	mkdir "$B/times$y"
	echo t >"$B/times$y/f"
	ln -s f "$B/times$y/l"
	for p in "$B/times$y/f" "$B/times$y/l" "$B/times$y"; do
		touch -h -d "$y-01-01 UTC" "$p"
	done
done
[ "$(stat -c %y "$B/times1901" | cut -c1-10)" = 1901-01-01 ] ||
	fail "a folder's mtime set to 1901 reads $(stat -c %y "$B/times1901")"
remount
for y in "${!when[@]}"; do
	for p in "$B/times$y/f" "$B/times$y/l" "$B/times$y"; do
		got=$(stat -c %y "$p" | cut -c1-10)
		[ "$y" = 1901 ] && want=1901-01-01 || want=${when[$y]}
		assert_eq "$want" "$got" "mtime of $p set to $y-01-01"
	done
done
ok "2300 reads as 2262-04-11, 1600 as 1677-09-21, 1901 as 1901, for a file, a link and a folder"

step "a file renamed over or removed can still be opened through a descriptor"
# A reader that looked the name up just before `mv new f` opens the file
# it found, as on a disk; before, the open failed with ENOENT, and a cat
# racing an editor's save or a config writer's rename failed now and then.
"$PYTHON" - "$B" <<'EOF'
import os, sys, time
d = sys.argv[1]
p = d + "/opened"
open(p, "w").write("old")
open(d + "/opened.new", "w").write("new")
fd = os.open(p, os.O_PATH)
os.rename(d + "/opened.new", p)
f = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)
assert os.read(f, 10) == b"old", "the replaced file through its O_PATH descriptor"
assert open(p).read() == "new"
q = d + "/removed"
open(q, "w").write("gone")
fd = os.open(q, os.O_RDWR)
os.unlink(q)
f = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)
assert os.read(f, 10) == b"gone", "the removed file through its descriptor"
os.fchmod(fd, 0o600)
os.utime(fd, (1, 1))
st = os.fstat(fd)
assert (st.st_mode & 0o7777, int(st.st_mtime)) == (0o600, 1), "fchmod and futimens of a removed file"
assert not os.path.exists(q)
# Written, then renamed over before its close: the close keeps no version,
# and what it wrote stays the content of what is still open on it.  Before,
# the node kept the old size over no content: EIO (or NULs) for a reader.
w = d + "/rewritten"
open(w, "w").write("old content, longer than the new")
fd = os.open(w, os.O_PATH)
wfd = os.open(w, os.O_WRONLY | os.O_TRUNC)
os.write(wfd, b"new content")
open(d + "/rewritten.new", "w").write("renamed over it")
os.rename(d + "/rewritten.new", w)
os.close(wfd)
time.sleep(0.2)	# the kernel's release, sent after the close
f = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)
got = os.read(f, 100)
assert got == b"new content", "a file written and renamed over reads %r" % got
assert open(w).read() == "renamed over it"
print("   ok: opened after mv over it and after rm; fchmod and futimens work after rm;"
      " a file renamed over while written keeps what was written for who has it open")
EOF

step "extended attributes"
setfattr -n user.color -v blue "$B/meta"
setfattr -n user.bin -v 0x00ff10 "$B/meta"
setfattr -n user.gone -v soon "$B/meta"
assert_eq "blue" "$(getfattr --only-values -n user.color "$B/meta")" "user.color"
setfattr -x user.gone "$B/meta"
expect_error "No such attribute" getfattr -n user.gone "$B/meta"
c0=$(stat -c %.9Z "$B/meta")
sleep 0.05
setfattr -n user.ct -v 1 "$B/meta"
c1=$(stat -c %.9Z "$B/meta")
sleep 0.05
setfattr -x user.ct "$B/meta"
c2=$(stat -c %.9Z "$B/meta")
[ "$c0" != "$c1" ] && [ "$c1" != "$c2" ] ||
	fail "ctime at setfattr and setfattr -x, as stat shows at once: $c0 $c1 $c2"
all=$(getfattr -d -m - "$B/meta")
log "$all"
[[ $all == *"system.replicafs.version-id="* ]] || fail "getfattr -d -m - does not show system.replicafs.version-id: $all"
[[ $all == *"system.replicafs.sha256="* ]] || fail "getfattr -d -m - does not show system.replicafs.sha256: $all"
assert_eq "$(sha_of "$B/meta")" \
	"$(getfattr --only-values -n system.replicafs.sha256 "$B/meta")" \
	"system.replicafs.sha256 against sha256sum"
assert_eq "$(version_field "$B/meta" 1 1)" \
	"$(getfattr --only-values -n system.replicafs.version-id "$B/meta")" \
	"system.replicafs.version-id against the latest of 'replicafs versions'"
expect_fail setfattr -n system.replicafs.sha256 -v 0000 "$B/meta"
assert_eq "$(sha_of "$B/meta")" \
	"$(getfattr --only-values -n system.replicafs.sha256 "$B/meta")" \
	"system.replicafs.sha256 after an attempt to set it"

step "keys longer than 1024 bytes are refused with ENAMETOOLONG"
long=$B
key=""
for c in p q r s t; do
	n=$(repeat "$c" 200)
	long=$long/$n
	key=$key$n/
done
mkdir -p "$long"
ok "a directory whose key is ${#key} bytes"
name19=$(repeat k 19)
echo edge >"$long/$name19"
assert_eq "edge" "$(cat "$long/$name19")" "a file whose key is exactly 1024 bytes"
name30=$(repeat z 30)
expect_error "File name too long" touch "$long/$name30"
expect_error "File name too long" mkdir "$long/$(repeat y 200)"
expect_error "File name too long" mv "$B/target" "$long/$name30"
assert_exists "$B/target" "the source of a refused rename"
# One name is at most 255 bytes, as statfs's namelen says.
assert_eq 255 "$(stat -f -c %l "$MNT")" "namelen of statfs"
echo ok >"$B/$(repeat n 255)"
assert_eq ok "$(cat "$B/$(repeat n 255)")" "a file with a name of 255 bytes"
expect_error "File name too long" touch "$B/$(repeat n 256)"
expect_error "File name too long" mkdir "$B/$(repeat n 256)"
expect_error "File name too long" mv "$B/target" "$B/$(repeat n 256)"
expect_error "File name too long" stat "$B/$(repeat n 256)"
rm "$B/$(repeat n 255)"

step "statfs"
df -P "$MNT" >"$T/df.out"
cat "$T/df.out"
blocks=$(stat -f -c %b "$MNT")
[ "$blocks" -gt 0 ] || fail "statfs: expected a non-zero block count, got $blocks"
ok "df and stat -f work ($blocks blocks)"

step "rename: replace, no-clobber, RENAME_NOREPLACE and RENAME_EXCHANGE"
echo A >"$B/x"
echo B >"$B/y"
mv "$B/x" "$B/y"
assert_eq "A" "$(cat "$B/y")" "content after mv over an existing file"
assert_missing "$B/x" "the source of mv"
echo C >"$B/x"
mv -n "$B/x" "$B/y" || true
assert_eq "A" "$(cat "$B/y")" "target of mv -n"
assert_eq "C" "$(cat "$B/x")" "source of mv -n"
ok "mv -n leaves both files"
"$PYTHON" - "$B/x" "$B/y" "$B/z" <<'EOF'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, NOREPLACE, EXCHANGE = -100, 1, 2
def rename2(a, b, flags):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) == 0:
        return 0
    return ctypes.get_errno()
x, y, z = sys.argv[1:]
e = rename2(x, y, NOREPLACE)
assert e == errno.EEXIST, "RENAME_NOREPLACE onto an existing file: expected EEXIST, got %s" % errno.errorcode.get(e, e)
e = rename2(x, y, EXCHANGE)
assert e == errno.EINVAL, "RENAME_EXCHANGE: expected EINVAL, got %s" % errno.errorcode.get(e, e)
e = rename2(x, z, NOREPLACE)
assert e == 0, "RENAME_NOREPLACE onto a free name: expected success, got %s" % errno.errorcode.get(e, e)
assert open(z).read() == "C\n" and not os.path.exists(x)
print("   ok: renameat2 NOREPLACE -> EEXIST, EXCHANGE -> EINVAL, NOREPLACE to a free name works")
EOF
mkdir "$MNT/other"
mv "$B/z" "$MNT/other/z"
assert_eq "C" "$(cat "$MNT/other/z")" "mv to another bucket"
assert_missing "$B/z"

step "a sparse file stays sparse in the store"
# truncate(1) of a new file to 256 MiB, then a write in the middle: the
# versions' blobs keep the holes (they were written out as zeros).
for x in "$T/ref/sparse" "$B/sparse"; do
	truncate -s 256M "$x"
	printf mid | dd of="$x" bs=1 seek=100000000 conv=notrunc status=none
done
assert_eq "$(sha_of "$T/ref/sparse")" "$(getfattr --only-values -n system.replicafs.sha256 "$B/sparse")" \
	"sha256 of the sparse file"
assert_same_file "$T/ref/sparse" "$B/sparse" "the sparse file read back"
for v in 1 2; do
	sha=$(getfattr --only-values -n system.replicafs.sha256 "$MNT/.versions/bkt/sparse/$(ls "$MNT/.versions/bkt/sparse" | sed -n ${v}p)")
	blocks=$(stat -c %b "$STORE/blobs/${sha:0:2}/$sha")
	[ "$blocks" -lt 1024 ] || fail "the blob of version $v of a sparse 256 MiB file takes $blocks blocks of 512 bytes"
done
ok "both versions' blobs take under 512 KiB"

step "holes show to du, to lseek's SEEK_DATA and SEEK_HOLE, and to cp"
blocks=$(stat -c %b "$B/sparse")
[ "$blocks" -lt 1024 ] || fail "st_blocks of a sparse 256 MiB file on the mount is $blocks"
ok "st_blocks $blocks (native: $(stat -c %b "$T/ref/sparse"))"
python3 - "$T/ref/sparse" "$B/sparse" "$MNT/.versions/bkt/sparse/$(ls "$MNT/.versions/bkt/sparse" | tail -1)" <<'EOF2'
import errno, os, sys
def seek(path, off, whence):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, off, whence)
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        os.close(fd)
ref = sys.argv[1]
for path in sys.argv[2:]:
    for off in (0, 4096, 99999999, 100000002, 200000000, 256 << 20):
        for whence, name in ((os.SEEK_DATA, "SEEK_DATA"), (os.SEEK_HOLE, "SEEK_HOLE")):
            want, got = seek(ref, off, whence), seek(path, off, whence)
            assert got == want, "%s %s from %d: %s, native %s" % (path, name, off, got, want)
print("   ok: SEEK_DATA and SEEK_HOLE from 6 offsets as on the native disk, live file and version")
EOF2
cp "$B/sparse" "$T/sparse.copy"
cp "$MNT/.versions/bkt/sparse/$(ls "$MNT/.versions/bkt/sparse" | tail -1)" "$T/sparse.vcopy"
for x in "$T/sparse.copy" "$T/sparse.vcopy"; do
	assert_same_file "$T/ref/sparse" "$x" "$x"
	blocks=$(stat -c %b "$x")
	[ "$blocks" -lt 1024 ] || fail "cp out of the mount wrote the holes of $x out: $blocks blocks"
done
rm -f "$T/sparse.copy" "$T/sparse.vcopy"
ok "cp out of the mount keeps the holes, from the live file and from .versions"
# A file open for writing: what the daemon has seen is all there is with
# passthrough; under the writeback cache the kernel may hold writes back,
# and the answer is EINVAL (tools then copy everything).
pt=writeback
grep -q "FUSE passthrough: the kernel" "$(daemon_log)" && pt=passthrough
python3 - "$B/sparse-open" "$pt" <<'EOF2'
import errno, os, sys
path, mode = sys.argv[1:]
w = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.pwrite(w, b"x" * 4096, 8 << 20)
os.ftruncate(w, 16 << 20)
r = os.open(path, os.O_RDONLY)
try:
    got = os.lseek(r, 0, os.SEEK_DATA)
except OSError as e:
    got = errno.errorcode[e.errno]
os.close(w)
if mode == "writeback":
    assert got == "EINVAL", "SEEK_DATA while open for writing, writeback cache: %s" % got
else:
    assert got == 8 << 20, "SEEK_DATA while open for writing: %s" % got
got = os.lseek(r, 0, os.SEEK_DATA), os.lseek(r, 8 << 20, os.SEEK_HOLE)
assert got == (8 << 20, (8 << 20) + 4096), "SEEK_DATA, SEEK_HOLE after the close: %s" % (got,)
os.close(r)
print("   ok: SEEK_DATA of a file open for writing (%s), and after its close" % mode)
EOF2
rm "$B/sparse-open"

step "random writes, truncates and holes match the native disk"
# Files from 70 KB to 9 MB (copied through memory, copied, copied on a
# thread at the close), each made sparse, written at random offsets,
# sometimes cut, on the native disk and on the mount alike; then their
# content and sha256 compared.
mkdir "$B/rnd" "$T/ref/rnd"
"$PYTHON" - "$T/ref/rnd" "$B/rnd" <<'PY'
import hashlib, os, random, sys
ref_dir, mnt_dir = sys.argv[1], sys.argv[2]
rng = random.Random(20261203)
for t in range(16):
    size = rng.choice([70_000, 300_000, 2_000_000, 9_000_000])
    ops = [(rng.randrange(size), rng.randbytes(rng.randint(1, 200_000)))
           for _ in range(rng.randint(0, 6))]
    cut = size if rng.random() < 0.7 else rng.randrange(size + 1)
    for d in (ref_dir, mnt_dir):
        fd = os.open(os.path.join(d, "f%d" % t), os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, size)
        for off, data in ops:
            os.pwrite(fd, data, off)
        if cut != size:
            os.ftruncate(fd, cut)
        os.close(fd)
    with open(os.path.join(ref_dir, "f%d" % t), "rb") as f:
        ref = f.read()
    path = os.path.join(mnt_dir, "f%d" % t)
    with open(path, "rb") as f:
        got = f.read()
    attr = os.getxattr(path, "system.replicafs.sha256").decode()
    if got != ref or attr != hashlib.sha256(ref).hexdigest():
        sys.exit("f%d (%d bytes, %d writes, cut to %d): content or sha256 differs"
                 % (t, size, len(ops), cut))
PY
ok "16 files: same content and sha256 as on the native disk"

step "a folder's mtime moves when a name in it is made, removed or renamed"
# As on a disk, and while a new file is still open: git's untracked cache
# (test_git) and backup tools look at a folder's mtime to see whether to
# read it again.  Before, it was the time of the folder's mkdir, forever.
D=$B/times
mkdir -p "$D/sub"
touch -d @1000000000 "$D"
assert_eq 1000000000 "$(stat -c %Y "$D")" "an mtime set with touch"
"$PYTHON" - "$D" <<'PY'
import os, sys
d = sys.argv[1]
def times():
    st = os.stat(d)
    return st.st_mtime_ns, st.st_ctime_ns
def moved(what, before):
    now = times()
    if not (now[0] > before[0] and now[1] > before[1] and now[0] == now[1]):
        sys.exit("%s: folder mtime, ctime %s -> %s" % (what, before, now))
    return now
t = times()
fd = os.open(os.path.join(d, "new"), os.O_CREAT | os.O_WRONLY, 0o644)
t = moved("create, the file still open", t)
os.write(fd, b"x")
os.close(fd)
if times() != t:
    sys.exit("the close of a new file moved its folder again: %s -> %s" % (t, times()))
with open(os.path.join(d, "new"), "w") as f:
    f.write("overwritten")
if times() != t:
    sys.exit("an overwrite moved the folder: %s -> %s" % (t, times()))
os.rename(os.path.join(d, "new"), os.path.join(d, "renamed"))
t = moved("rename within", t)
s = os.stat(os.path.join(d, "sub")).st_mtime_ns
os.rename(os.path.join(d, "renamed"), os.path.join(d, "sub", "moved"))
t = moved("rename out", t)
if os.stat(os.path.join(d, "sub")).st_mtime_ns <= s:
    sys.exit("rename into sub/ left its mtime")
os.unlink(os.path.join(d, "sub", "moved"))
os.symlink("target", os.path.join(d, "link"))
t = moved("symlink", t)
os.unlink(os.path.join(d, "link"))
t = moved("unlink", t)
os.mkdir(os.path.join(d, "sub2"))
t = moved("mkdir", t)
os.rmdir(os.path.join(d, "sub2"))
t = moved("rmdir", t)
PY
ok "create (while open), rename in and out, symlink, unlink, mkdir and rmdir each move it; close and overwrite do not"
b0=$(stat -c %.9Y "$B")
echo top >"$B/top-level-name"
[[ $(stat -c %.9Y "$B") > $b0 ]] || fail "a bucket's mtime did not move at a new name in it"
rm "$B/top-level-name"
r0=$(stat -c %.9Y "$MNT")
mkdir "$MNT/root-mtime"
r1=$(stat -c %.9Y "$MNT")
rmdir "$MNT/root-mtime"
[[ $r1 > $r0 && $(stat -c %.9Y "$MNT") > $r1 ]] ||
	fail "the root's mtime did not move at a bucket made, then removed"
touch -d @1000000000 "$D"
echo more >"$D/another"
touch -d @1000000000 "$D"
assert_eq 1000000000 "$(stat -c %Y "$D")" "an mtime set after the names were made (cp -a, tar)"
ok "a bucket's and the root's too; an explicit mtime stays (the remount below keeps every folder's)"

step "reading more files than the daemon may have open"
# The daemon kept each file's blob open for as long as the kernel kept
# its inode, and failed opens with EMFILE past RLIMIT_NOFILE.
mkdir "$B/many"
for i in $(seq 1 700); do echo "file $i" >"$B/many/f$i"; done
remount
prlimit --pid "$DAEMON_PID" --nofile=256:256
assert_eq 700 "$(cat "$B"/many/f* | wc -l)" "lines read from 700 files, the daemon limited to 256 descriptors"
assert_eq 700 "$(cat "$B"/many/f* | wc -l)" "the same, read again"
ok "700 files read twice with 256 descriptors (the limit stays until the remount below)"

step "a program with more files open for writing than the daemon's shell allowed"
# The daemon holds a descriptor per file open for writing; with the soft
# limit it inherited (1024 here), the writes and closes of a program
# within its own limit failed with EMFILE, and a new file was lost.
soft=$(ulimit -Sn)
ulimit -Sn 1024
remount
ulimit -Sn "$soft"
dlimit=$(awk '/^Max open files/ { print $4 }' "/proc/$DAEMON_PID/limits")
[ "$dlimit" -gt 4096 ] || fail "the daemon's open file limit is $dlimit, started under 1024"
mkdir "$B/open"
"$PYTHON" - "$B/open" 3000 <<'PY' >"$T/open.out"
import os, resource, sys
d, n = sys.argv[1], int(sys.argv[2])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
fds = [os.open("%s/f%04d" % (d, i), os.O_CREAT | os.O_WRONLY, 0o644)
       for i in range(n)]
bad = 0
for i, fd in enumerate(fds):
    try:
        os.write(fd, b"data %d\n" % i)
    except OSError:
        bad += 1
for fd in fds:
    try:
        os.close(fd)
    except OSError:
        bad += 1
for i in range(n):
    with open("%s/f%04d" % (d, i), "rb") as f:
        bad += f.read() != b"data %d\n" % i
print(bad)
PY
assert_eq 0 "$(cat "$T/open.out")" "failed writes, closes and wrong files of 3000 open at once"
ok "3000 files open for writing at once (the daemon's limit: $dlimit)"

step "everything survives a remount (with spinning, off by default: the other read loop)"
stat_list "$B" >"$T/before"
getfattr -d -m 'user\.[^r]' "$B/meta" >"$T/xattr.before"
expect_fail "$REPLICAFS" mount -o spin=-1 "$STORE" "$T/nowhere"
expect_fail "$REPLICAFS" mount -o spin=many "$STORE" "$T/nowhere"
remount spin=100
stat_list "$B" >"$T/after"
if ! diff "$T/before" "$T/after"; then
	fail "stat of the bucket's tree changed across a remount (diff above)"
fi
ok "names, types, sizes, modes, owners and mtimes"
assert_same_file "$R" "$F" "f after remount"
assert_eq "$expected_meta" "$(stat -c '%a %u %g %Y %s' "$B/meta")" "metadata after remount"
assert_eq "$nv" "$(nversions "$B/meta")" "versions after remount"
getfattr -d -m 'user\.[^r]' "$B/meta" >"$T/xattr.after"
diff "$T/xattr.before" "$T/xattr.after" || fail "user.* xattrs changed across a remount"
assert_eq "blue" "$(getfattr --only-values -n user.color "$B/meta")" "user.color after remount"
[ -d "$B/empty" ] || fail "the empty directory is gone after a remount"
assert_eq "" "$(ls -A "$B/empty")" "listing of the empty directory after remount"
assert_eq "target" "$(readlink "$B/rel-link")" "link after remount"
assert_eq "edge" "$(cat "$long/$name19")" "the 1024-byte key after remount"
expect_error "Directory not empty" rmdir "$MNT/versioned"
ok "remount"

step "a listing of 2,000 names gives each its inode number"
mkdir "$B/dino"
(cd "$B/dino" && seq 1 2000 | sed 's/^/f/' | xargs touch)
# What readdir says (d_ino) against what stat says, name by name.
bad=$("$PYTHON" -c '
import os, sys
d = sys.argv[1]
print(sum(e.inode() != os.stat(os.path.join(d, e.name)).st_ino
          for e in os.scandir(d)))' "$B/dino")
assert_eq 0 "$bad" "entries whose d_ino is not their st_ino"
f=$B/dino/f1999
assert_eq "$f" "$(find "$B/dino" -inum "$(stat -c %i "$f")")" "find -inum of the 1999th file"
ok "readdir's inode numbers are stat's"

step "atime: set by touch -a and cp -a, kept, moved by no read or write"
A=$B/atime
mkdir "$A"
echo one >"$A/f"
touch -m -d '2015-05-05 05:05:05' "$A/f"
touch -a -d '2001-02-03 04:05:06.5' "$A/f"
want_a=$(date -d '2001-02-03 04:05:06.5' +%s.%N)
want_m=$(date -d '2015-05-05 05:05:05' +%s)
assert_eq "$want_a $want_m" "$(stat -c '%.9X %Y' "$A/f")" "atime and mtime after touch -a"
touch -m -d '2016-06-06' "$A/f"
cat "$A/f" >/dev/null
echo two >>"$A/f"
assert_eq "$want_a" "$(stat -c %.9X "$A/f")" "atime after touch -m, a read and an append"
# A tree on the native disk with its own atimes, listed before cp reads it
# (a read moves them there).
mkdir -p "$T/at/sub"
echo x >"$T/at/file"
echo y >"$T/at/sub/deep"
ln -s file "$T/at/link"
touch -h -m -d '2012-01-01 01:00:00' "$T/at/link"
touch -h -a -d '2011-01-01 01:00:00' "$T/at/link"
i=0
for p in file sub/deep sub .; do
	i=$((i + 1))
	touch -m -d "2020-0$i-01 12:00:00" "$T/at/$p"
	touch -a -d "2019-0$i-02 13:00:00.25" "$T/at/$p"
done
# A folder's atime is left out: cp reads a folder before it stats it for
# the times it copies, and on the native disk that read moves the atime.
times() {
	(cd "$1" && find . \( -type d -printf '%p - %T@\n' \) -o \
		-printf '%p %A@ %T@\n' | sort)
}
times "$T/at" >"$T/at.times"
cp -a "$T/at" "$A/copy"
if ! diff "$T/at.times" <(times "$A/copy") >"$T/diff.out"; then
	cat "$T/diff.out"
	fail "cp -a: atime or mtime differs from the source's (< native, > mount)"
fi
ok "cp -a keeps the atime of files and symlinks"
touch -a -d '2002-02-02 02:02:02' "$A/copy/sub" "$B"
want_d=$(date -d '2002-02-02 02:02:02' +%s)
assert_eq "$want_d $want_d" "$(stat -c %X "$A/copy/sub" "$B" | tr '\n' ' ' | sed 's/ $//')" \
	"atime of a folder and of a bucket after touch -a"
remount
assert_eq "$want_a" "$(stat -c %.9X "$A/f")" "atime after a remount"
assert_eq "$want_d $want_d" "$(stat -c %X "$A/copy/sub" "$B" | tr '\n' ' ' | sed 's/ $//')" \
	"atime of a folder and of a bucket after a remount"
if ! diff "$T/at.times" <(times "$A/copy") >"$T/diff.out"; then
	cat "$T/diff.out"
	fail "after a remount: atime or mtime differs (< native, > mount)"
fi
ok "atimes survive a remount"

step "a damaged or missing blob reads as an I/O error, not as other data"
echo "fourteen bytes" >"$B/damaged"
echo "gone soon" >"$B/lost"
echo "same size, other bytes" >"$B/flipped"
gen_data $((3 * 1024 * 1024)) 41 >"$B/bigflip"
gen_data $((12 * 1024 * 1024)) 43 >"$B/hugeflip"
sha_b=$(getfattr --absolute-names --only-values -n system.replicafs.sha256 "$B/bigflip")
sha_h=$(getfattr --absolute-names --only-values -n system.replicafs.sha256 "$B/hugeflip")
sha_f=$(getfattr --absolute-names --only-values -n system.replicafs.sha256 "$B/flipped")
vid_f=$(getfattr --absolute-names --only-values -n system.replicafs.version-id "$B/flipped")
sha_d=$(getfattr --absolute-names --only-values -n system.replicafs.sha256 "$B/damaged")
sha_l=$(getfattr --absolute-names --only-values -n system.replicafs.sha256 "$B/lost")
unmount_fs
blob_d=$STORE/blobs/${sha_d:0:2}/$sha_d
blob_l=$STORE/blobs/${sha_l:0:2}/$sha_l
cp -p "$blob_d" "$T/blob_d"
mv "$blob_l" "$T/blob_l"
chmod u+w "$blob_d"
echo CORRUPT >"$blob_d"
# Bit rot: the same size, other bytes (the build before read them out).
blob_f=$STORE/blobs/${sha_f:0:2}/$sha_f
cp -p "$blob_f" "$T/blob_f"
chmod u+w "$blob_f"
echo "SAME SIZE, OTHER BYTES" >"$blob_f"
# A blob over 1 MiB (not hashed at a read): one byte changed.
blob_b=$STORE/blobs/${sha_b:0:2}/$sha_b
cp -p "$blob_b" "$T/blob_b"
chmod u+w "$blob_b"
printf 'Z' | dd of="$blob_b" bs=1 seek=1000000 conv=notrunc status=none
# Over 4 MiB, the copy an open for writing starts from is hashed on a
# thread while the writer writes: the close says what it found.
blob_h=$STORE/blobs/${sha_h:0:2}/$sha_h
cp -p "$blob_h" "$T/blob_h"
chmod u+w "$blob_h"
printf 'Z' | dd of="$blob_h" bs=1 seek=9000000 conv=notrunc status=none
mount_fs
expect_error "Input/output error" cat "$B/damaged"
expect_error "Input/output error" cat "$B/lost"
expect_error "Input/output error" cat "$B/flipped"
expect_error "Input/output error" cat "$MNT/.versions/${B##*/}/flipped/"*"_$vid_f"
expect_error "Input/output error" bash -c 'echo more >>"$1"' bash "$B/flipped"
assert_eq 1 "$(nversions "$B/flipped")" "versions of the damaged file after an append that failed"
# The larger one: an append makes no version of the damage (the build
# before made one, whose hash was right for the wrong bytes).  Through
# the writeback cache the write(2) returns before the daemon sees it, and
# bash does not look at its close: only the versions tell.
bash -c 'echo more >>"$1"' bash "$B/bigflip" 2>/dev/null || true
assert_eq 1 "$(nversions "$B/bigflip")" "versions of the damaged 3 MiB file after an append that failed"
expect_error "Input/output error" dd if=/dev/zero of="$B/hugeflip" bs=1k count=1 \
	oflag=append conv=notrunc status=none
assert_eq 1 "$(nversions "$B/hugeflip")" "versions of the damaged 12 MiB file after an append that failed"
grep -q "blob $sha_h holds other content" "$(daemon_log)" ||
	fail "the daemon's log does not name the damaged 12 MiB blob"
grep -q "blob $sha_f holds other content" "$(daemon_log)" ||
	fail "the daemon's log does not name the damaged blob"
unmount_fs
cp -p "$T/blob_d" "$blob_d"
mv "$T/blob_l" "$blob_l"
cp -p "$T/blob_f" "$blob_f"
cp -p "$T/blob_b" "$blob_b"
cp -p "$T/blob_h" "$blob_h"
mount_fs
assert_eq "fourteen bytes" "$(cat "$B/damaged")" "the file once its blob is back"
assert_eq "same size, other bytes" "$(cat "$B/flipped")" "the flipped file once its blob is back"
dd if=/dev/zero of="$B/hugeflip" bs=1k count=1 oflag=append conv=notrunc status=none
cmp <(
	gen_data $((12 * 1024 * 1024)) 43
	head -c 1024 /dev/zero
) "$B/hugeflip" || fail "the 12 MiB file appended to once its blob is back"
ok "EIO for all three, and the data once the blobs are back"

unmount_fs
check_store --deep

step "SIGTERM while files are open for writing: the keys stay as they were, what was written is a version below"
# The daemon went down with the data of files still open (a shutdown, a
# systemctl stop): a new file was gone, and the log said only "unmounted".
# Then what was written became the current version, half a rewrite whose
# writer's close failed.  Now, as an S3 PUT that failed, the key keeps its
# last version (or none), and what was written is kept below it.
mount_fs
gen_data 300000 7 >"$B/rewrite-at-term"
good=$(sha_of "$B/rewrite-at-term")
"$PYTHON" -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"A" * 100000)
fd2 = os.open(sys.argv[2], os.O_WRONLY | os.O_TRUNC)
os.write(fd2, b"C" * 1000)
time.sleep(3)
for f in (fd, fd2):
    try:
        os.write(f, b"B" * 100000)
        os.close(f)
    except OSError:
        pass' "$B/open-at-term" "$B/rewrite-at-term" &
writer=$!
sleep 1
kill -TERM "$DAEMON_PID"
wait_daemon_exit 30
wait "$writer" || true
grep -q "bkt/open-at-term: open for writing as the mount ended: its close fails, and the key stays as it was" "$(daemon_log)" ||
	{ show_daemon_log; fail "the log does not name the file open at SIGTERM"; }
mount_fs
assert_missing "$B/open-at-term" "a new file whose writer's close failed"
assert_eq "$good" "$(sha_of "$B/rewrite-at-term")" "a file rewritten as the mount ended, after a remount"
mapfile -t NV < <(find "$MNT/.versions/bkt/open-at-term/" -mindepth 1 ! -name '*.deleted')
assert_eq 1 "${#NV[@]}" "versions of the new file in .versions"
assert_eq "$(head -c 100000 /dev/zero | tr '\0' A | sha256sum | cut -d' ' -f1)" "$(sha_of "${NV[0]}")" \
	"what was written to the new file, in .versions"
assert_eq "300000 1000 300000" "$(rfs versions "$B/rewrite-at-term" | awk '{print $3}' | tac | xargs)" \
	"sizes of the rewritten file's versions, oldest first"
unmount_fs
ok "the live keys as before, what was written in .versions, and the log names each"

step "a daemon (no -f) tells the kernel of names back, and exits at its unmount"
# Its notification thread was started before the fork that makes the
# daemon, so the daemon had none: no name removed in .versions came back
# before its entry timed out, and at the unmount the daemon waited for
# ever for a thread it did not have.
DS=$T/store-daemon
DM=$T/mnt-daemon
mkdir "$DM"
DO=${TEST_MOUNT_OPTS:+$TEST_MOUNT_OPTS,}timeout=1,nobdi
"$REPLICAFS" mount -o "$DO" "$DS" "$DM" ||
	fail "replicafs mount (as a daemon) failed"
track_mount "$DM"
# As typed: the option parser cut argv at its commas, and ps showed
# "-o timeout=1 nobdi", which pgrep -f did not find.
dpid=$(pgrep -f -x "$REPLICAFS mount -o $DO $DS $DM") || fail "no daemon found for $DM by its command line"
track_pid "$dpid"
assert_eq "$DS" "$(findmnt -n -o SOURCE "$DM")" "the mount's source"
mkdir "$DM/bkt"
echo back >"$DM/bkt/f"
rm "$DM/bkt/f"
assert_missing "$DM/bkt/f" "f after rm"	# the kernel keeps the miss
rm "$DM"/.versions/bkt/f/*.deleted
assert_eq back "$(cat "$DM/bkt/f")" "f at once after rm of its delete marker in .versions"
fusermount3 -u "$DM"
poll 10 not pid_running "$dpid" || fail "the daemon still runs 10 s after its unmount"
ok "back at once, and the daemon exited"
