#!/bin/bash
#
# test_cp_rsync.sh - a real tree (/usr/include, about 9,000 entries, plus a
# few odd entries of our own) copied into a mount and back out with cp -a
# and with rsync -a: same contents, names, types, sizes, modes, owners and
# mtimes both ways, before and after a remount.
#
# CP_SRC=DIR copies DIR instead of /usr/include.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

SRC_TREE=${CP_SRC:-/usr/include}
[ -d "$SRC_TREE" ] || fail "no source tree $SRC_TREE"

setup
B=$MNT/bkt

step "a native copy of $SRC_TREE with extra entries: links, modes, owners, empty dirs"
S=$T/src
cp -a "$SRC_TREE" "$S"
mkdir -p "$S/extra/empty" "$S/extra/sub dir"
echo "spaces" >"$S/extra/sub dir/a file with spaces"
: >"$S/extra/zero-bytes"
gen_data 1048577 7 >"$S/extra/one-mib-and-a-byte"
echo secret >"$S/extra/mode-600"
chmod 600 "$S/extra/mode-600"
echo script >"$S/extra/mode-755"
chmod 755 "$S/extra/mode-755"
echo owned >"$S/extra/owned"
chown 1001:2002 "$S/extra/owned"
chmod 2750 "$S/extra/sub dir"
ln -s mode-755 "$S/extra/rel-link"
ln -s /usr/include/stdio.h "$S/extra/abs-link"
ln -s nowhere "$S/extra/dangling-link"
ln -s "sub dir" "$S/extra/dir-link"
chown -h 1001:2002 "$S/extra/rel-link"
touch -h -d '2010-01-01 00:00:00' "$S/extra/rel-link"
touch -d '1999-12-31 23:59:59' "$S/extra/mode-600" "$S/extra/empty"
touch -d '2000-06-01 12:00:00' "$S/extra"
log "$(find "$S" | wc -l) entries, $(find "$S" -type l | wc -l) symbolic links, $(du -sh "$S" | cut -f1)"
stat_list "$S" >"$T/src.stat"

# same_tree A B WHAT: same content (links compared as links) and same stat.
same_tree() {
	local t0=$SECONDS
	if ! diff -r --no-dereference "$1" "$2" >"$T/diff.out" 2>&1; then
		head -n 40 "$T/diff.out"
		fail "$3: diff -r $1 $2 found differences (above)"
	fi
	stat_list "$2" >"$T/cmp.stat"
	if ! diff "$T/src.stat" "$T/cmp.stat" >"$T/diff.out"; then
		head -n 40 "$T/diff.out"
		fail "$3: stat of the entries differs from the source (< source, > copy; name|type|size|mode|uid|gid|mtime)"
	fi
	ok "$3: same contents and stat ($((SECONDS - t0)) s)"
}

mount_fs
mkdir "$B"

step "cp -a into the mount and back out"
t0=$SECONDS
cp -a "$S" "$B/cp"
ok "cp -a in: $((SECONDS - t0)) s"
same_tree "$S" "$B/cp" "cp -a into the mount"
t0=$SECONDS
cp -a "$B/cp" "$T/cp-out"
ok "cp -a out: $((SECONDS - t0)) s"
same_tree "$S" "$T/cp-out" "cp -a out of the mount"

step "rsync -a into the mount and back out"
t0=$SECONDS
rsync -a "$S/" "$B/rs/"
ok "rsync -a in: $((SECONDS - t0)) s"
same_tree "$S" "$B/rs" "rsync -a into the mount"
rsync -a "$B/rs/" "$T/rs-out/"
same_tree "$S" "$T/rs-out" "rsync -a out of the mount"

# nothing_to_do FROM TO: rsync, comparing checksums, would change nothing.
nothing_to_do() {
	local out
	out=$(rsync -a --checksum --dry-run --itemize-changes "$1/" "$2/")
	if [ -n "$out" ]; then
		printf '%s\n' "$out" | head -n 40
		fail "rsync -a --checksum --dry-run --itemize-changes $1/ $2/ would change the above"
	fi
	ok "rsync --checksum --dry-run $1/ $2/ has nothing to do"
}
nothing_to_do "$S" "$B/rs"
ok "[${SECONDS}s]"

step "a second rsync after a change copies only the change"
echo changed >>"$S/extra/mode-755"
out=$(rsync -a --itemize-changes "$S/" "$B/rs/")
printf '%s\n' "$out"
grep -q 'extra/mode-755$' <<<"$out" || fail "rsync did not copy the changed file"
assert_same_file "$S/extra/mode-755" "$B/rs/extra/mode-755" "the changed file"
out=$(rsync -a --dry-run --itemize-changes "$S/" "$B/rs/")
[ -z "$out" ] || fail "a third rsync -a would still change: $out"
ok "a third rsync -a (by size and mtime) has nothing to do"
stat_list "$S" >"$T/src.stat"

step "after a remount the trees are still the same"
remount
same_tree "$S" "$B/rs" "rsync -a tree after remount"
if ! diff <(stat_list "$T/cp-out") <(stat_list "$B/cp") >"$T/diff.out"; then
	head -n 40 "$T/diff.out"
	fail "cp -a tree after remount: stat differs from before (< before, > after)"
fi
ok "cp -a tree after remount: same stat"

step "user.*, trusted.* and file capabilities travel with cp -a, rsync -aX and tar --xattrs; replicafs's own stay behind"
X=$T/xsrc
mkdir -p "$X/d"
echo one >"$X/d/a"
echo two >"$X/b"
setfattr -n user.color -v blue "$X/d/a"
setfattr -n user.owner.note -v 'kept by the user' "$X/b"
# What `setcap cap_net_raw+ep` writes, as ping has it.
CAP=0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=
setfattr -n security.capability -v "$CAP" "$X/d/a"
setfattr -n trusted.origin -v backup "$X/b"
setfattr -n trusted.dir -v tag "$X/d"
# own_attrs DIR: the names of replicafs's own attributes found under DIR.
own_attrs() { getfattr -R -d -m - --absolute-names "$1" 2>/dev/null | grep '^system\.replicafs\.' || true; }
# user_attrs DIR: FILE NAME=VALUE lines of the user.* and trusted.*
# attributes and file capabilities under DIR.
user_attrs() {
	(cd "$1" && getfattr -R -d -m '^(user\.|trusted\.|security\.capability$)' \
		--absolute-names . 2>/dev/null) |
		awk '/^# file: /{f=$3; next} /=/{print f, $0}' | sort
}
user_attrs "$X" >"$T/xattr.src"
assert_eq 5 "$(wc -l <"$T/xattr.src")" "attributes of the source tree"
# tar keeps only user.* unless told: all of them but system.*, on the way
# out and in.
XT=(--xattrs --xattrs-include='*' --xattrs-exclude='system.*')
expect_out() { # WHAT COMMAND...: COMMAND succeeds and says nothing
	local out
	out=$("${@:2}" 2>&1) || fail "$1 failed: $out"
	[ -z "$out" ] || fail "$1 printed: $out"
}
expect_out "rsync -aX into the mount" rsync -aX "$X/" "$B/xrs/"
expect_out "cp -a within the mount" cp -a "$B/xrs" "$B/xcp"
expect_out "rsync -aX within the mount" rsync -aX "$B/xrs/" "$B/xrs2/"
expect_out "cp -a out of the mount" cp -a "$B/xcp" "$T/xcp-out"
expect_out "rsync -aX out of the mount" rsync -aX "$B/xrs/" "$T/xrs-out/"
expect_out "tar --xattrs out of the mount" tar "${XT[@]}" -C "$B/xrs" -cf "$T/x.tar" .
mkdir "$B/xtar" "$T/xtar-out"
expect_out "tar --xattrs into the mount" tar "${XT[@]}" -C "$B/xtar" -xf "$T/x.tar"
expect_out "tar --xattrs onto a local disk" tar "${XT[@]}" -C "$T/xtar-out" -xf "$T/x.tar"
for d in "$B/xrs" "$B/xcp" "$B/xrs2" "$B/xtar" "$T/xcp-out" "$T/xrs-out" "$T/xtar-out"; do
	assert_eq "$(cat "$T/xattr.src")" "$(user_attrs "$d")" "attributes of $d"
done
[ -n "$(own_attrs "$B/xcp")" ] || fail "getfattr -m - shows no system.replicafs.* on the mount"
for d in "$T/xcp-out" "$T/xrs-out" "$T/xtar-out"; do
	[ -z "$(own_attrs "$d")" ] || fail "replicafs's own attributes were copied to $d: $(own_attrs "$d")"
done
ok "cp -a, rsync -aX and tar --xattrs: user.*, trusted.* and capabilities kept, system.replicafs.* left behind, no warnings"

step "a file capability goes at a write, a truncate and a chown; trusted.* is root's; as on the native disk"
# caps_after DIR: what each change leaves of a capability set on DIR/f.
caps_after() {
	local d=$1 out="" how
	for how in append truncate chown chmod touch; do
		echo data >"$d/f"
		setfattr -n security.capability -v "$CAP" "$d/f"
		case $how in
		append) echo more >>"$d/f" ;;
		truncate) truncate -s 2 "$d/f" ;;
		chown) chown 4242 "$d/f" ;;
		chmod) chmod 700 "$d/f" ;;
		touch) touch -d '2001-01-01' "$d/f" ;;
		esac
		out+="$how: $({ getfattr --only-values -n security.capability "$d/f" 2>/dev/null || true; } | base64 -w0) "
		rm -f "$d/f"
	done
	printf '%s\n' "$out"
}
mkdir "$T/capn" "$B/capm"
native=$(caps_after "$T/capn")
log "native: $native"
assert_eq "$native" "$(caps_after "$B/capm")" "what a change leaves of a capability, and what nobody lists"
echo x >"$B/capm/sel"
expect_error "Operation not supported" setfattr -n security.selinux -v x "$B/capm/sel"
# names DIR: the user.* and trusted.* names of DIR/t, as root and as nobody.
names() {
	local f=$1/t
	echo x >"$f"
	setfattr -n trusted.t -v 1 "$f"
	setfattr -n user.u -v 1 "$f"
	getfattr -d -m - "$f" 2>/dev/null | grep -E '^(user|trusted)\.' | cut -d= -f1 | tr '\n' ' '
	echo "/ $(runuser -u nobody -- getfattr -d -m - "$f" 2>/dev/null |
		grep -E '^(user|trusted)\.' | cut -d= -f1 | tr '\n' ' ')"
}
chmod 755 "$T" # so that nobody can walk to the mount and the native copy
remount allow_other
assert_eq "trusted.t user.u / user.u " "$(names "$T/capn")" "xattr names root and nobody list natively"
assert_eq "trusted.t user.u / user.u " "$(names "$B/capm")" "xattr names root and nobody list in the mount"
ok "capabilities dropped as on the native disk; trusted.* hidden from nobody; security.selinux refused"

step "unmount and check"
unmount_fs
check_store
