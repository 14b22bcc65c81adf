#!/bin/bash
#
# test_mv_dir.sh - renaming a directory of 1,000 files (with a
# subdirectory) is one rename: every file is under the new name with its
# content and metadata, the old name is gone, and so after a remount.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

N=1000

setup
mount_fs
B=$MNT/bkt
mkdir "$B"

step "a directory of $N files"
mkdir -p "$B/old/sub/deeper"
for i in $(seq 1 $N); do
	printf 'file %d of the directory\n' "$i" >"$B/old/f$i"
done
echo "in sub" >"$B/old/sub/s"
echo "deeper" >"$B/old/sub/deeper/d"
ln -s f1 "$B/old/link-to-f1"
chmod 600 "$B/old/f7"
touch -d '2011-11-11 11:11:11' "$B/old/f8"
mkdir "$B/old/empty"
assert_eq $((N + 3)) "$(find "$B/old" -mindepth 1 -maxdepth 1 | wc -l)" "entries in the directory"
ok "$N files written"
stat_list "$B/old" nodirtime >"$T/old.stat"

# check_new: everything is under new/, nothing under old/.
check_new() {
	local i bad=0 line
	assert_missing "$B/old" "the old directory name"
	[ -d "$B/new" ] || fail "the new directory name is missing"
	for i in $(seq 1 $N); do
		line=""
		read -r line <"$B/new/f$i" || true
		if [ "$line" != "file $i of the directory" ]; then
			log "new/f$i: '$line'"
			bad=$((bad + 1))
		fi
	done
	[ "$bad" = 0 ] || fail "$1: $bad of $N files are missing or wrong under the new name"
	assert_eq "deeper" "$(cat "$B/new/sub/deeper/d")" "$1: a file two levels down"
	assert_eq "file 1 of the directory" "$(cat "$B/new/link-to-f1")" "$1: reading through the moved link"
	if ! diff "$T/old.stat" <(stat_list "$B/new" nodirtime) >"$T/diff.out"; then
		head -n 20 "$T/diff.out"
		fail "$1: stat of the moved entries differs (< before, > after)"
	fi
	assert_eq "bkt" "$(ls "$MNT")" "$1: buckets"
	assert_eq "new" "$(ls "$B")" "$1: the bucket lists only the new name"
	ok "$1: all $N files under the new name, with content and metadata; old name gone"
}

step "mv old new"
t0=$(date +%s%N)
mv "$B/old" "$B/new"
ok "mv took $((($(date +%s%N) - t0) / 1000000)) ms"
check_new "after mv"

step "the rename(2) itself succeeds on a directory (no copy fallback)"
"$PYTHON" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$B/new" "$B/tmp-name"
"$PYTHON" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$B/tmp-name" "$B/new"
check_new "after two rename(2) calls"

step "after a remount"
remount
check_new "after remount"

step "mv onto an existing empty directory replaces it; onto a non-empty one fails"
mkdir "$B/target-empty"
mv -T "$B/new" "$B/target-empty"
assert_exists "$B/target-empty/f$N"
mkdir "$B/full"
echo x >"$B/full/x"
expect_error "Directory not empty" "$PYTHON" -c \
	'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$B/target-empty" "$B/full"
mv -T "$B/target-empty" "$B/new"
check_new_again() { rm -rf "$B/full"; check_new "$1"; }
check_new_again "after more renames"

step "mv of a tree keeps the mtimes of the folders in it"
# Each key that arrived in a moved folder set the folder's mtime to the
# rename's time, so every folder of the tree changed (rsync -a sent them
# all again); on a disk only the folders it leaves and lands in change.
mkdir -p "$B/tree/a/b" "$B/land"
echo x >"$B/tree/a/b/f"
echo y >"$B/tree/g"
touch -d @1000000000 "$B/tree/a/b" "$B/tree/a" "$B/tree" "$B/land"
mv "$B/tree" "$B/land/moved"
remount
assert_eq "1000000000 1000000000 1000000000" \
	"$(stat -c %Y "$B/land/moved" "$B/land/moved/a" "$B/land/moved/a/b" | tr '\n' ' ' | sed 's/ $//')" \
	"mtimes of the moved folders after a remount"
[ "$(stat -c %Y "$B/land")" -gt 1000000000 ] || fail "the folder the tree landed in kept its mtime"
ok "the moved folders keep their mtimes; the one it landed in changed"

unmount_fs
check_store
