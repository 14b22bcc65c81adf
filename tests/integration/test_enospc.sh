#!/bin/bash
#
# test_enospc.sh - a store on a 64 MiB tmpfs that fills up: the writer gets
# "No space left on device", the store stays consistent (`replicafs
# check`), the files written before read back after a remount, and once
# the big partial file is removed small writes work again.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "this test mounts a tmpfs: it needs root"

setup
SMALL=$T/small
mkdir "$SMALL"
mount -t tmpfs -o size=64m tmpfs "$SMALL"
track_mount "$SMALL"
STORE=$SMALL/store
log "store on a 64 MiB tmpfs at $SMALL"

mount_fs
B=$MNT/bkt
mkdir "$B"

step "a few files before the disk is full"
declare -A sums=()
for i in 1 2 3 4; do
	gen_data $((i * 1024 * 1024 + i)) $((40 + i)) >"$B/before$i"
	sums[before$i]=$(gen_data $((i * 1024 * 1024 + i)) $((40 + i)) | sha256sum | cut -d' ' -f1)
	assert_eq "${sums[before$i]}" "$(sha_of "$B/before$i")" "before$i"
done
ok "4 files, 10 MiB"
df -h "$SMALL" | tail -n 1

step "fallocate of more than the tmpfs holds: ENOSPC, and the file keeps its version"
rc=0
fallocate -l 200M "$B/before1" 2>"$T/fa.err" || rc=$?
cat "$T/fa.err"
[ "$rc" != 0 ] || fail "fallocate of 200 MiB onto a 64 MiB store succeeded"
grep -q "No space left on device" "$T/fa.err" ||
	fail "fallocate failed (status $rc) but not with 'No space left on device'"
assert_eq "${sums[before1]}" "$(sha_of "$B/before1")" "before1 after the failed fallocate"
assert_eq 1 "$(nversions "$B/before1")" "versions of before1 after the failed fallocate"
ok "fallocate fails with ENOSPC and changes nothing"

step "a file bigger than the tmpfs: the writer gets ENOSPC"
rc=0
gen_data $((100 * 1024 * 1024)) 50 |
	dd of="$B/huge" bs=1M iflag=fullblock 2>"$T/dd.err" || rc=$?
cat "$T/dd.err"
[ "$rc" != 0 ] || fail "dd of 100 MiB onto a 64 MiB store succeeded; expected it to fail"
grep -q "No space left on device" "$T/dd.err" ||
	fail "dd failed (status $rc) but not with 'No space left on device': $(cat "$T/dd.err")"
ok "dd fails with status $rc: No space left on device"
df -h "$SMALL" | tail -n 1

step "the files written before are intact while the disk is full"
for i in 1 2 3 4; do
	assert_eq "${sums[before$i]}" "$(sha_of "$B/before$i")" "before$i on a full disk"
done
ok "read back"

step "the store passes check (mount down), and the files survive a remount"
unmount_fs
check_store
check_store --deep
mount_fs
for i in 1 2 3 4; do
	assert_eq "${sums[before$i]}" "$(sha_of "$B/before$i")" "before$i after remount"
done
ok "4 files read back after remount"

step "after removing the partial file, small writes work again"
rm -f "$B/huge"
assert_missing "$B/huge"
df -h "$SMALL" | tail -n 1
for i in 1 2 3 4 5; do
	gen_data $((512 * 1024 + i)) $((60 + i)) >"$B/after$i"
	sums[after$i]=$(gen_data $((512 * 1024 + i)) $((60 + i)) | sha256sum | cut -d' ' -f1)
	assert_eq "${sums[after$i]}" "$(sha_of "$B/after$i")" "after$i"
done
ok "5 new files written and read back"

step "and once more after a remount"
remount
for f in "${!sums[@]}"; do
	assert_eq "${sums[$f]}" "$(sha_of "$B/$f")" "$f after the last remount"
done
ok "all ${#sums[@]} files"
unmount_fs
check_store --deep
