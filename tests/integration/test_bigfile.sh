#!/bin/bash
#
# test_bigfile.sh - a 1 GiB file written into a mount with dd bs=1M reads
# back with the SHA-256 computed while it was written (tee into sha256sum),
# also after a remount; then a 1 MiB overwrite in its middle makes a new
# 1 GiB version seeded from the old one, with the right SHA-256.  Then
# files written with O_DIRECT, so that the daemon sees each write as made,
# in the orders that the running hash of a staging file must get right
# (fs/ops.c, hash_extend()): in order, out of order, a rewrite, a hole,
# truncates that extend and cut; each version's sha256 attribute matches
# the bytes meant and the bytes read back.
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
assert_eq "$written" "$(getfattr --only-values -n system.replicafs.sha256 "$F")" \
	"system.replicafs.sha256"
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

step "the running hash: writes in and out of order, rewrites, truncates (O_DIRECT)"
"$PYTHON" - "$B" <<'PY'
import hashlib, mmap, os, sys

d = sys.argv[1]
MIB = 1 << 20

def chunk(i, n=MIB):
    return bytes([(i * 37 + 11) & 0xFF]) * (n - 1) + bytes([i & 0xFF])

# Each case: a list of ("w", chunk index, offset in MiB) or ("t", bytes).
cases = {
    "in-order": [("w", i, i) for i in range(8)],
    "out-of-order": [("w", 0, 0), ("w", 2, 2), ("w", 1, 1), ("w", 4, 4),
                     ("w", 3, 3), ("w", 5, 5)],
    "rewrite": [("w", 0, 0), ("w", 1, 1), ("w", 2, 2), ("w", 9, 1),
                ("w", 3, 3)],
    "hole-left": [("w", 0, 0), ("w", 2, 2)],
    "extend": [("w", 0, 0), ("w", 1, 1), ("t", 3 * MIB), ("w", 3, 3)],
    "cut": [("w", 0, 0), ("w", 1, 1), ("w", 2, 2), ("w", 3, 3),
            ("t", 3 * MIB // 2), ("w", 7, 1.5)],
}
buf = mmap.mmap(-1, MIB)
for name, ops in cases.items():
    path = os.path.join(d, "hash-" + name)
    want = bytearray()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT)
    for op in ops:
        if op[0] == "w":
            off = int(op[2] * MIB)
            data = chunk(op[1])
            buf[:] = data
            assert os.pwrite(fd, buf, off) == MIB
            if len(want) < off:
                want.extend(bytes(off - len(want)))
            want[off:off + MIB] = data
        else:
            os.ftruncate(fd, op[1])
            if len(want) < op[1]:
                want.extend(bytes(op[1] - len(want)))
            del want[op[1]:]
    os.close(fd)
    meant = hashlib.sha256(want).hexdigest()
    with open(path, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    attr = os.getxattr(path, "system.replicafs.sha256").decode()
    if not (meant == got == attr):
        sys.exit("%s: meant %s, read back %s, attribute %s"
                 % (name, meant, got, attr))
    print("   ok: %s: %d bytes, sha256 %s" % (name, len(want), attr))
PY

unmount_fs
check_store --deep
