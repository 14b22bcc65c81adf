#!/bin/bash
#
# test_git.sh - git works on a repository inside a mount: init, add,
# commit, log, status (with the untracked cache too), fsck, gc (packs and
# renames, and link() that falls back to rename()), and clones from the
# mount to the native disk and back.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
export HOME=$T/home GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name "Replicafs Test"
git config --global user.email "test@replicafs.invalid"
git config --global init.defaultBranch main
git config --global safe.directory '*'

mount_fs
B=$MNT/bkt
mkdir "$B"
R=$B/repo

step "git init, add, commit in the mount"
git init -q "$R"
cd "$R" || fail "cd $R"
mkdir -p src docs
for i in $(seq 1 40); do
	printf 'int f%d(void) { return %d; }\n' "$i" "$i" >"src/f$i.c"
done
echo "# project" >README.md
gen_data 300000 31 >docs/blob.bin
printf '#!/bin/sh\necho run\n' >run.sh
chmod +x run.sh
ln -s README.md link-to-readme
git add -A
git commit -q -m "first commit"
ok "first commit: $(git rev-parse --short HEAD)"
assert_eq "" "$(git status --porcelain)" "git status --porcelain after the commit"
assert_eq 1 "$(git rev-list --count HEAD)" "commits"

step "modify, commit again, log"
echo "more" >>README.md
git rm -q src/f1.c
git mv src/f2.c src/renamed.c
echo new >src/new.c
assert_eq "$(printf 'M  README.md\nA  src/new.c\nD  src/f1.c\nR  src/f2.c -> src/renamed.c' | sort)" \
	"$(git add -A && git status --porcelain | sort)" "git status --porcelain before the commit"
git commit -q -m "second commit"
assert_eq "" "$(git status --porcelain)" "git status --porcelain after the second commit"
assert_eq "second commit
first commit" "$(git log --format=%s)" "git log"
assert_eq 2 "$(git rev-list --count HEAD)" "commits"
git diff --stat HEAD~1 HEAD
for i in $(seq 1 5); do
	echo "change $i" >>"src/f$((i + 10)).c"
	git commit -q -am "commit $((i + 2))"
done
assert_eq 7 "$(git rev-list --count HEAD)" "commits"

step "git's untracked cache, which trusts folders' mtimes"
# git update-index --test-untracked-cache makes, removes and renames names
# in a folder and checks that its mtime moves each time; with
# core.untrackedCache on, git status then reads only folders whose mtime
# moved, so a folder that kept its mtime would hide a new file.
git update-index --test-untracked-cache
git config core.untrackedCache true
git update-index --untracked-cache
assert_eq "" "$(git status --porcelain)" "git status with the untracked cache"
sleep 1	# past git's racy window, so that the cache is used
echo new >docs/untracked.txt
assert_eq "?? docs/untracked.txt" "$(git status --porcelain)" "a new file seen through the untracked cache"
rm docs/untracked.txt
assert_eq "" "$(git status --porcelain)" "its removal seen too"
git config core.untrackedCache false
git update-index --no-untracked-cache
ok "untracked cache"

step "git fsck and git gc"
git fsck --full --strict
ok "git fsck"
git gc -q --aggressive
ls .git/objects/pack/
assert_eq 1 "$(find .git/objects/pack -name '*.pack' | wc -l)" "packs after git gc"
git fsck --full --strict
assert_eq "" "$(git status --porcelain)" "git status --porcelain after gc"
ok "git fsck after gc"

step "clone from the mount to the native disk"
cd "$T" || fail "cd $T"
git clone -q "$R" "$T/clone"
cd "$T/clone" || fail "cd $T/clone"
assert_eq "$(git -C "$R" rev-parse HEAD)" "$(git rev-parse HEAD)" "HEAD of the clone"
diff -r --no-dereference -x .git "$R" "$T/clone" || fail "the clone's work tree differs from the mount's"
git fsck --full
echo "from native" >native.txt
git add native.txt
git commit -q -m "commit on the native disk"
ok "committed on the native clone"

step "clone back into the mount, and push/pull between them"
cd "$T" || fail "cd $T"
git clone -q "$T/clone" "$B/clone2"
cd "$B/clone2" || fail "cd $B/clone2"
git fsck --full --strict
assert_eq "$(git -C "$T/clone" rev-parse HEAD)" "$(git rev-parse HEAD)" "HEAD of the clone in the mount"
assert_eq "from native" "$(cat native.txt)" "file committed natively"
cd "$R" || fail "cd $R"
git pull -q "$T/clone" main
assert_eq "$(git -C "$T/clone" rev-parse HEAD)" "$(git rev-parse HEAD)" "HEAD after git pull in the mount"
git fsck --full --strict
ok "git pull into the mount"

step "after a remount"
cd /
remount
cd "$R" || fail "cd $R"
git fsck --full --strict
assert_eq "" "$(git status --porcelain)" "git status --porcelain after remount"
assert_eq 8 "$(git rev-list --count HEAD)" "commits after remount"
[ -x run.sh ] || fail "run.sh lost its executable bit"
assert_eq "README.md" "$(readlink link-to-readme)" "symlink in the repository"
ok "repository intact"
cd /

unmount_fs
check_store
