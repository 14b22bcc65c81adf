#!/bin/bash
#
# test_bigfile.sh - a 1 GiB file written into a mount with dd bs=1M reads
# back with the SHA-256 computed while it was written (tee into sha256sum),
# also after a remount; then a 1 MiB overwrite in its middle makes a new
# 1 GiB version seeded from the old one, with the right SHA-256.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

SIZE=$((1024 * 1024 * 1024))
MIB=$((1024 * 1024))

setup
mount_fs
B=$MNT/bkt
mkdir "$B"
F=$B/big.bin

step "write 1 GiB with dd bs=1M, hashing the stream on the way (tee)"
mkfifo "$T/fifo"
sha256sum <"$T/fifo" >"$T/written.sum" &
hasher=$!
track_pid "$hasher"
t0=$SECONDS
gen_data "$SIZE" 99 | tee "$T/fifo" | dd of="$F" bs=1M iflag=fullblock status=none
wait "$hasher"
BG_PIDS=()
written=$(cut -d' ' -f1 "$T/written.sum")
ok "written in $((SECONDS - t0)) s, sha256 $written"
assert_eq "$SIZE" "$(stat -c %s "$F")" "size of the file"

step "read it back"
t0=$SECONDS
assert_eq "$written" "$(sha_of "$F")" "sha256sum of the file read back"
ok "read in $((SECONDS - t0)) s"
assert_eq "$written" "$(getfattr --only-values -n user.replicafs.sha256 "$F")" \
	"user.replicafs.sha256"
assert_eq 1 "$(nversions "$F")" "versions of the file"

step "after a remount"
remount
assert_eq "$SIZE" "$(stat -c %s "$F")" "size after remount"
assert_eq "$written" "$(sha_of "$F")" "sha256sum after remount"

step "overwrite 1 MiB in the middle (dd conv=notrunc seek=500)"
gen_data "$MIB" 98 >"$T/patch"
t0=$SECONDS
dd if="$T/patch" of="$F" bs=1M seek=500 conv=notrunc status=none
ok "overwrite and close in $((SECONDS - t0)) s"
expected=$({
	gen_data $((500 * MIB)) 99
	cat "$T/patch"
	gen_data "$SIZE" 99 | tail -c $((SIZE - 501 * MIB))
} | sha256sum | cut -d' ' -f1)
assert_eq "$expected" "$(sha_of "$F")" "sha256sum after the overwrite"
assert_eq "$SIZE" "$(stat -c %s "$F")" "size after the overwrite"
assert_eq 2 "$(nversions "$F")" "versions after the overwrite"
assert_eq "$written" "$(versions_json_get "$F" "v[1]['sha256']")" "sha256 of the older version"

unmount_fs
check_store --deep
