#!/bin/bash
#
# test_uring.sh - FUSE over io_uring (fs/uring.c).  With the fuse module's
# enable_uring parameter on, a mount takes its requests through one
# io_uring queue per CPU, and a user sees no difference but the speed:
#   - the daemon has one ring per possible CPU, and the requests of cp -a,
#     tar, ls -lR, diff and rm go through them (the rings' completion
#     counts grow by thousands);
#   - what the queues hand to other threads works: fsync, large READs,
#     the refresh a command's restore waits for;
#   - eight writers at once, on whichever CPUs, each find their bytes;
#   - a kill -9 mid-storm loses no file whose close returned;
#   - SIGTERM and an unmount end the daemon cleanly; after an abort
#     (/sys/fs/fuse/connections/N/abort) it says the mount stays;
#   - -o nouring makes no ring, and the same store serves the same files;
#   - a kernel that does not offer it (enable_uring off), or io_uring
#     turned off (kernel.io_uring_disabled=2): the mount reads /dev/fuse,
#     and says why in the second case.
# The harness (scripts/test.sh) turns enable_uring on for the whole suite,
# so every other test runs over io_uring too; run alone, this test turns it
# on itself and puts it back after.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PARAM=/sys/module/fuse/parameters/enable_uring
if [ ! -e "$PARAM" ]; then
	log "this kernel has no FUSE over io_uring ($PARAM is missing):" \
		"mounts read /dev/fuse, as every other test checks"
	exit 0
fi
OLD_PARAM=$(cat "$PARAM")
DISABLED=/proc/sys/kernel/io_uring_disabled
OLD_DISABLED=$(cat "$DISABLED" 2>/dev/null || echo "")
setup
# Put both back however the test ends (lib.sh's cleanup exits).
restore() {
	echo "$OLD_PARAM" >"$PARAM"
	[ -z "$OLD_DISABLED" ] || echo "$OLD_DISABLED" >"$DISABLED"
}
trap 'restore; cleanup' EXIT
echo Y >"$PARAM" || fail "cannot turn on $PARAM (not root?)"

NCPU=$(awk -F'[-,]' '{ print $NF + 1 }' /sys/devices/system/cpu/possible)

# rings PID: how many io_uring instances PID has.
rings() {
	local f n=0
	for f in /proc/"$1"/fdinfo/*; do
		grep -q '^SqMask' "$f" 2>/dev/null && n=$((n + 1))
	done
	echo "$n"
}

# completions PID: the completions all of PID's rings have posted.
completions() {
	local f t=0 v
	for f in /proc/"$1"/fdinfo/*; do
		v=$(awk '$1 == "CqTail:" { print $2 }' "$f" 2>/dev/null)
		[ -n "$v" ] && t=$((t + v))
	done
	echo "$t"
}

step "mount: one ring per possible CPU ($NCPU)"
mount_fs
mkdir "$MNT/bkt"
grep -q "FUSE over io_uring: $NCPU queues" "$(daemon_log)" ||
	{ show_daemon_log; fail "the daemon did not say it took $NCPU io_uring queues"; }
assert_eq "$(rings "$DAEMON_PID")" "$NCPU" "io_uring instances of the daemon"
ok "$NCPU rings"

step "cp -a, tar, ls -lR, diff, rm: their requests go through the rings"
c0=$(completions "$DAEMON_PID")
SRC=/usr/include/linux
cp -a "$SRC" "$MNT/bkt/linux"
diff -r "$SRC" "$MNT/bkt/linux"
n=$(find "$SRC" | wc -l)
assert_eq "$(find "$MNT/bkt/linux" | wc -l)" "$n" "entries copied"
(cd "$MNT/bkt" && tar cf "$T/ref/linux.tar" linux)
mkdir "$MNT/bkt/untar"
tar xf "$T/ref/linux.tar" -C "$MNT/bkt/untar"
diff -r "$SRC" "$MNT/bkt/untar/linux"
ls -lR "$MNT/bkt" >/dev/null
rm -rf "$MNT/bkt/untar"
assert_missing "$MNT/bkt/untar"
c1=$(completions "$DAEMON_PID")
[ $((c1 - c0)) -gt "$n" ] ||
	fail "the rings completed $((c1 - c0)) requests for a copy of $n entries"
ok "$((c1 - c0)) requests through the rings for $n entries"

step "what the queues hand on: fsync, large READs, a restore's refresh"
gen_data $((24 * 1024 * 1024)) 24 >"$T/ref/big"
dd if="$T/ref/big" of="$MNT/bkt/big" bs=1M conv=fsync status=none
sync -d "$MNT/bkt/big"
assert_eq "$(sha_of "$MNT/bkt/big")" "$(sha_of "$T/ref/big")" "the 24 MiB file"
# Read back in 1 MiB READs (each handed to the pool), past the page cache.
"$PYTHON" - "$MNT/bkt/big" "$T/ref/big" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
ref = open(sys.argv[2], "rb").read()
import mmap
buf = mmap.mmap(-1, 1 << 20)
got = bytearray()
while True:
    n = os.readv(fd, [buf])
    if n <= 0:
        break
    got += buf[:n]
if bytes(got) != ref:
    sys.exit("O_DIRECT read of %d bytes differs from what was written" % len(got))
EOF
echo one >"$MNT/bkt/r"
echo two >"$MNT/bkt/r"
v1=$(version_field "$MNT/bkt/r" 2 1)
rfs restore "$MNT/bkt/r" "$v1" >/dev/null
assert_eq "$(cat "$MNT/bkt/r")" one "the file after restore"
ok "fsync, O_DIRECT READs of 1 MiB, restore"

step "eight writers at once"
writers=()
for i in $(seq 8); do
	(
		for j in $(seq 40); do
			printf 'writer %d file %d\n' "$i" "$j" >"$MNT/bkt/w$i.$j"
		done
	) &
	writers+=($!)
	track_pid $!
done
for p in "${writers[@]}"; do
	wait "$p" || fail "writer $p failed"
done
for i in $(seq 8); do
	for j in $(seq 40); do
		assert_eq "$(cat "$MNT/bkt/w$i.$j")" "writer $i file $j" "w$i.$j"
	done
done
ok "320 files, each with its writer's bytes"

step "kill -9 during a write storm: every closed file is there"
"$PYTHON" - "$MNT/bkt/storm" "$T/ref/closed" <<'EOF' &
import os, sys
d, log = sys.argv[1], sys.argv[2]
os.mkdir(d)
with open(log, "w") as lf:
    for i in range(100000):
        p = os.path.join(d, "f%d" % i)
        with open(p, "w") as f:
            f.write("content %d\n" % i)
        lf.write("%d\n" % i)
        lf.flush()
EOF
W=$!
track_pid "$W"
poll 20 test -s "$T/ref/closed" || fail "the storm wrote nothing in 20 s"
sleep 0.5
crash_fs
wait "$W" 2>/dev/null || true
lazy_unmount
mount_fs
closed=$(wc -l <"$T/ref/closed")
[ "$closed" -gt 10 ] || fail "only $closed files closed before the kill"
while read -r i; do
	assert_eq "$(cat "$MNT/bkt/storm/f$i")" "content $i" "storm/f$i"
done <"$T/ref/closed"
grep -q "FUSE over io_uring" "$(daemon_log)" || fail "the new daemon took no rings"
ok "$closed closed files, all there"

step "an aborted connection: the daemon ends and says the mount stays"
dev=$(stat -c %d "$MNT")
echo 1 >"/sys/fs/fuse/connections/$dev/abort"
wait_daemon_exit 30
assert_eq "$DAEMON_RC" 0 "the daemon's exit status after the abort"
grep -q "was aborted: it stays mounted" "$(daemon_log)" ||
	{ show_daemon_log; fail "the daemon did not say the aborted mount stays"; }
not grep -q "info: unmounted" "$(daemon_log)" ||
	fail "the daemon said it unmounted a mount that stays"
is_mounted "$MNT" || fail "the aborted mount is gone: the message would be wrong"
fusermount3 -u "$MNT"
mount_fs
ok "said, and unmounted by hand"

step "SIGTERM ends the daemon cleanly"
kill -TERM "$DAEMON_PID"
wait_daemon_exit 30
assert_eq "$DAEMON_RC" 0 "the daemon's exit status after SIGTERM"
poll 10 not is_mounted "$MNT" || fusermount3 -u "$MNT"
ok "exit status 0"

step "-o nouring: no ring, the same files"
mount_fs nouring
assert_eq "$(rings "$DAEMON_PID")" 0 "io_uring instances with -o nouring"
not grep -q "FUSE over io_uring" "$(daemon_log)" ||
	fail "the daemon said it took io_uring queues under -o nouring"
diff -r "$SRC" "$MNT/bkt/linux"
assert_eq "$(sha_of "$MNT/bkt/big")" "$(sha_of "$T/ref/big")" "the 24 MiB file"
ok "read over /dev/fuse"
unmount_fs

step "a kernel that does not offer it: /dev/fuse"
echo N >"$PARAM"
mount_fs
assert_eq "$(rings "$DAEMON_PID")" 0 "io_uring instances with enable_uring off"
assert_eq "$(cat "$MNT/bkt/r")" one "the restored file"
echo three >"$MNT/bkt/r"
assert_eq "$(cat "$MNT/bkt/r")" three "a file written over /dev/fuse"
ok "no ring; a file read and written"
unmount_fs
echo Y >"$PARAM"

if [ -n "$OLD_DISABLED" ]; then
	step "io_uring turned off (kernel.io_uring_disabled=2): /dev/fuse, and why"
	echo 2 >"$DISABLED"
	mount_fs
	echo "$OLD_DISABLED" >"$DISABLED"
	assert_eq "$(rings "$DAEMON_PID")" 0 "io_uring instances with io_uring disabled"
	grep -q "FUSE over io_uring: cannot set up a ring" "$(daemon_log)" ||
		{ show_daemon_log; fail "the daemon did not say why it took no io_uring queues"; }
	echo four >"$MNT/bkt/r"
	assert_eq "$(cat "$MNT/bkt/r")" four "a file written over /dev/fuse"
	ok "the mount fell back and said why"
	unmount_fs
fi
check_store
