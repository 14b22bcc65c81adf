#!/bin/bash
#
# test_inodes.sh - inode numbers outlive a mount, as on a disk: a tree
# made with mkdir, echo, ln -s, mv, cp -r and rsync -a shows the same
# st_ino for every name after a remount; no two names share one; a renamed
# file keeps its number and the file made at its old name gets another;
# `find -inum` finds a file by a number seen before the remount; and a
# `tar -g --no-check-device` level-1 dump after a remount holds only the
# file that changed, where it held the whole tree when every number
# changed at each mount.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
mount_fs
B=$MNT/bkt
mkdir "$B"

# inodes DIR: "INODE PATH" of everything below DIR, by path.
inodes() { (cd "$1" && find . -printf '%i %p\n' | sort -k2); }

step "a tree made by hand, by cp -r and by rsync -a"
mkdir -p "$B/src/sub/deep" "$B/src/empty"
for i in $(seq 1 20); do
	echo "file $i" >"$B/src/f$i"
done
echo deep >"$B/src/sub/deep/x"
ln -s f1 "$B/src/link"
F2=$(stat -c %i "$B/src/f2")
mv "$B/src/f2" "$B/src/renamed"
assert_eq "$F2" "$(stat -c %i "$B/src/renamed")" "st_ino of a file after mv"
echo again >"$B/src/f2"
[ "$(stat -c %i "$B/src/f2")" != "$F2" ] ||
	fail "the file made at a renamed file's old name has its number $F2"
mkdir "$B/moveme"
echo m >"$B/moveme/in"
D=$(stat -c %i "$B/moveme")
IN=$(stat -c %i "$B/moveme/in")
mv "$B/moveme" "$B/moved"
assert_eq "$D $IN" "$(stat -c %i "$B/moved" "$B/moved/in" | tr '\n' ' ' | sed 's/ $//')" \
	"st_ino of a folder and its file after mv"
mkdir -p "$T/tree/a/b"
for i in $(seq 1 30); do
	echo "tree $i" >"$T/tree/a/t$i"
done
echo leaf >"$T/tree/a/b/leaf"
cp -r "$T/tree" "$B/copied"
rsync -a "$T/tree/" "$B/synced/"
inodes "$B" >"$T/before"
dups=$(cut -d' ' -f1 "$T/before" | sort | uniq -d)
[ -z "$dups" ] || fail "names that share an inode number: $(grep -F -w "$dups" "$T/before")"
ok "$(wc -l <"$T/before") names, each with its own number"

step "the same numbers after a remount"
remount
inodes "$B" >"$T/after"
if ! diff "$T/before" "$T/after" >"$T/diff.out"; then
	head -20 "$T/diff.out"
	fail "st_ino changed at the remount (< before, > after)"
fi
ok "find -printf %i gives the same numbers"
RN=$(awk '$2 == "./src/renamed" { print $1 }' "$T/before")
assert_eq "./src/renamed" "$(cd "$B" && find . -inum "$RN")" "find -inum $RN"

step "tar -g: a level-1 dump after a remount holds what changed"
# The device number is the kernel's, not ours: each mount of a FUSE file
# system takes the next free one, so tar is told not to look at it, as
# its manual says for NFS.
TG=(--no-check-device -g "$T/snap")
tar -C "$B" "${TG[@]}" -cf "$T/l0.tar" src copied synced
n0=$(tar -tf "$T/l0.tar" | grep -vc '/$')
remount
sleep 1 # a new second, so that tar sees the change by its mtime
echo changed >>"$B/synced/a/t7"
tar -C "$B" "${TG[@]}" -cf "$T/l1.tar" src copied synced
files=$(tar -tf "$T/l1.tar" | grep -v '/$' | tr '\n' ' ')
assert_eq "synced/a/t7 " "$files" "files in the level-1 dump (level 0 had $n0)"
ok "level 0: $n0 files; level 1: only synced/a/t7"

step "a file removed while open, then undeleted: two numbers"
exec 3<"$B/src/f3"
OPEN=$(stat -L -c %i /proc/self/fd/3)
rm "$B/src/f3"
rfs undelete "$B/src/f3"
assert_eq "file 3" "$(cat "$B/src/f3")" "content of the undeleted file"
NEW=$(stat -c %i "$B/src/f3")
[ "$NEW" != "$OPEN" ] ||
	fail "the undeleted file and the removed one still open share $NEW"
exec 3<&-
ok "open: $OPEN, undeleted: $NEW"

unmount_fs
check_store
