#!/bin/bash
#
# test_crash.sh - the daemon killed with SIGKILL in the middle of a storm of
# writes, 20 times.  Each round:
#
#   1. mount; 4 writer processes start, each in a loop: write a file whose
#      content and size follow from its name; once close() has returned
#      success, append the name and SHA-256 to a journal on the native disk.
#      Writer 1 writes new files, writer 2 also removes every fifth file it
#      wrote (noted in the journal before and after the unlink), writer 3
#      overwrites one key again and again, writer 4 writes to a temporary
#      name and renames it into place.  Every tenth file is 256 KiB bigger, so that
#      some writes are in flight when the daemon dies.
#   2. after a random 0.2-1.5 s, kill -9 the daemon; the writers must fail
#      and stop, none of them before the kill; lazy unmount.
#      How many bytes of the store's close journal the kill left past
#      what the catalog has (versions the next open applies) is noted
#      (none with -o nopassthrough, which does not use the journal).
#   3. `replicafs check STORE` passes (with the mount down): the catalog's
#      integrity check, and a blob of the right size under every version;
#      every fifth round, and at the end, `--deep` also hashes every blob.
#      (Blobs never change once named, so one found bad at the end was bad
#      when its round wrote it; hashing the whole store every round made
#      the test quadratic, 20 s a round by the end.)
#   4. remount: every file in the journals is there with its SHA-256, every
#      removal stuck, the overwritten key holds the last or the interrupted
#      write, and no file of the round is torn (present but not complete).
#   5. a clean unmount (the daemon exits 0, no sanitizer report).
#
# At the end every round's journal is checked once more.  The writers are
# small python programs rather than shell loops: the shell forks several
# processes per file, which on a 2-core machine leaves only a handful of
# files per round, not a storm.
#
# CRASH_ROUNDS=N changes the number of rounds; CRASH_SEED=N the random
# delays (the seed used is printed).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${CRASH_ROUNDS:-20}
WRITERS=4
SEED=${CRASH_SEED:-$$}
RANDOM=$SEED

setup
J=$T/journal
mkdir -p "$J"
log "seed $SEED (CRASH_SEED=$SEED reproduces the delays)"

# What file I of writer W in round R holds, shared by writer and checker.
cat >"$T/common.py" <<'EOF'
import hashlib

def content(r, w, i):
    size = (r * 131 + w * 17 + i * 7919) % 65536 + 1
    if i % 10 == 0:
        size += 256 * 1024
    unit = ("%d.%d.%d:" % (r, w, i)).encode()
    return (unit * (size // len(unit) + 1))[:size]

def sha(data):
    return hashlib.sha256(data).hexdigest()
EOF

# writer.py BUCKET JOURNAL R W: write until an error; then print the errno
# name on stdout and exit 0.
cat >"$T/writer.py" <<'EOF'
import errno, os, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[0]))
from common import content, sha

bucket, journal, r, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
jfd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

def note(line):
    os.write(jfd, (line + "\n").encode())

def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for off in range(0, len(data), 65536):
            os.write(fd, data[off:off + 65536])
    finally:
        os.close(fd)    # raises if the close (the PUT) failed

i = 0
try:
    while True:
        i += 1
        data = content(r, w, i)
        if w == 3:
            name = "over_%d" % r
            write_file(os.path.join(bucket, name), data)
        elif w == 4:
            name = "f_%d_%d_%d" % (r, w, i)
            tmp = os.path.join(bucket, "tmp_%d_%d" % (r, i))
            write_file(tmp, data)
            os.rename(tmp, os.path.join(bucket, name))
        else:
            name = "f_%d_%d_%d" % (r, w, i)
            write_file(os.path.join(bucket, name), data)
        note("%s %d %s" % (name, i, sha(data)))
        if w == 2 and i % 5 == 0:
            note("%s DELETING" % name)
            os.unlink(os.path.join(bucket, name))
            note("%s DELETED" % name)
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)), "%.6f" % time.time(),
          "after", i - 1, "files:", e)
EOF

# check.py BUCKET JOURNAL-DIR R: what round R's journals promise is there,
# and no file of the round is torn.
cat >"$T/check.py" <<'EOF'
import glob, os, re, sys
sys.path.insert(0, os.path.dirname(sys.argv[0]))
from common import content, sha

bucket, jdir, r = sys.argv[1], sys.argv[2], int(sys.argv[3])
bad = []

def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None

want = {}       # name -> sha, or "DELETED", or ("EITHER", sha)
last_over = 0
for j in glob.glob(os.path.join(jdir, "%d.*" % r)):
    w = int(j.rsplit(".", 1)[1])
    for line in open(j):
        f = line.split()
        if f[1] == "DELETED":
            want[f[0]] = "DELETED"
        elif f[1] == "DELETING":
            want[f[0]] = ("EITHER", want[f[0]])
        elif w == 3:
            last_over = int(f[1])
        else:
            want[f[0]] = f[2]

for name, what in sorted(want.items()):
    data = read(os.path.join(bucket, name))
    if what == "DELETED":
        if data is not None:
            bad.append("%s was removed (unlink returned) but is back" % name)
    elif isinstance(what, tuple):
        if data is not None and sha(data) != what[1]:
            bad.append("%s (being removed at the crash) has the wrong content" % name)
    elif data is None:
        bad.append("%s is missing, though its close returned before the crash" % name)
    elif sha(data) != what:
        bad.append("%s has the wrong content (%d bytes)" % (name, len(data)))

if last_over or os.path.exists(os.path.join(bucket, "over_%d" % r)):
    data = read(os.path.join(bucket, "over_%d" % r))
    ok = [sha(content(r, 3, n)) for n in (last_over, last_over + 1) if n > 0]
    if last_over == 0:
        ok.append(None)
    if (data if data is None else sha(data)) not in ok:
        bad.append("over_%d holds neither write %d (the last that returned) nor write %d"
                   % (r, last_over, last_over + 1))

present = 0
for path in glob.glob(os.path.join(bucket, "f_%d_*" % r)) + \
        glob.glob(os.path.join(bucket, "tmp_%d_*" % r)):
    base = os.path.basename(path)
    m = re.fullmatch(r"f_\d+_(\d+)_(\d+)", base) or re.fullmatch(r"tmp_\d+_()(\d+)", base)
    w, i = int(m.group(1) or 4), int(m.group(2))
    present += 1
    data = read(path)
    if data is not None and data != content(r, w, i):
        bad.append("%s is torn: %d bytes, expected %d bytes of its content"
                   % (base, len(data), len(content(r, w, i))))

for b in bad:
    print("round %d: %s" % (r, b))
print("round %d: %d journaled names checked, %d files of the round present and complete"
      % (r, len(want), present - len([b for b in bad if "torn" in b])))
sys.exit(1 if bad else 0)
EOF

# elapsed T0 T1: seconds between two $EPOCHREALTIME values, to 0.1 s.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

mount_fs
B=$MNT/bkt
mkdir "$B"
unmount_fs

replayed=0
for r in $(seq 1 "$ROUNDS"); do
	step "round $r of $ROUNDS"
	t0=$EPOCHREALTIME
	mount_fs
	pids=()
	for w in $(seq 1 $WRITERS); do
		"$PYTHON" "$T/writer.py" "$B" "$J/$r.$w" "$r" "$w" >"$T/writer.$r.$w.out" 2>&1 &
		pids+=($!)
		track_pid $!
	done
	ms=$((200 + RANDOM % 1301))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	killed_at=$EPOCHREALTIME
	crash_fs
	# The connection is aborted when the daemon dies: the writers must
	# all fail and stop, within 30 s.
	for i in $(seq 300); do
		alive=0
		for p in "${pids[@]}"; do pid_running "$p" && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	[ "$alive" = 0 ] || fail "round $r: writers still running 30 s after the daemon was killed"
	for p in "${pids[@]}"; do wait "$p" || fail "round $r: a writer failed: $(cat "$T"/writer."$r".*.out)"; done
	BG_PIDS=()
	lazy_unmount
	# Each writer stops on its first error, which must come after the
	# kill (ENOTCONN, ECONNABORTED, or EIO from a write-back that failed).
	for w in $(seq 1 $WRITERS); do
		out=$(cat "$T/writer.$r.$w.out")
		awk -v t="$killed_at" 'NR == 1 && NF >= 2 && $2 + 0 >= t + 0 { ok = 1 } END { exit !ok }' \
			<<<"$out" ||
			fail "round $r: writer $w stopped before the daemon was killed (at $killed_at): '$out'"
	done
	log "   killed after $ms ms; journal lines: $(cat "$J/$r".* 2>/dev/null | wc -l)"
	# Versions the daemon's close journal held and had not yet added
	# to the catalog: the next open applies them (check.py proves it).
	left=$(($(stat -c %s "$STORE/journal") - $(sqlite3 "$STORE/catalog.db" "SELECT applied FROM journal")))
	[ "$left" -gt 0 ] && replayed=$((replayed + 1))
	log "   close journal: $left bytes past what the catalog has"
	t1=$EPOCHREALTIME
	if [ $((r % 5)) = 0 ]; then check_store --deep; else check_store; fi
	t2=$EPOCHREALTIME
	mount_fs
	"$PYTHON" "$T/check.py" "$B" "$J" "$r" || fail "round $r: files lost or torn by the crash (above)"
	t3=$EPOCHREALTIME
	unmount_fs
	log "   times: storm $(elapsed "$t0" "$t1") s, check $(elapsed "$t1" "$t2") s, verify $(elapsed "$t2" "$t3") s, unmount $(elapsed "$t3" "$EPOCHREALTIME") s"
done

# How often a kill found versions still in the journal depends on how
# far its thread had got (tests/unit/test_journal.c kills a writer right
# after its appends, to test their replay for sure); only files written
# in passthrough mode go through it.
log "$replayed of $ROUNDS kills left versions in the close journal for the next open"
case ",${TEST_MOUNT_OPTS:-}," in
*,nopassthrough,*)
	[ "$replayed" = 0 ] || fail "the close journal held versions of a mount without passthrough"
	;;
esac

step "all rounds' files, after all the crashes"
mount_fs
for r in $(seq 1 "$ROUNDS"); do
	"$PYTHON" "$T/check.py" "$B" "$J" "$r" || fail "round $r: files lost or torn by a later crash (above)"
done
unmount_fs
check_store --deep

step "an fsync in the mount, then a command that opens and closes the store: the mount keeps its WAL"
# A descriptor of catalog.db opened and closed beside SQLite's (to fsync
# it) dropped the daemon's SQLite locks; the next process to close the
# store took itself for the last, deleted the WAL, and every later commit
# went into the deleted file: unseen by others, lost at a crash.
mount_fs
S=$MNT/fsync
mkdir "$S"
"$PYTHON" - "$S" <<'PY'
import os, sys
fd = os.open(os.path.join(sys.argv[1], "synced"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"synced\n")
os.fsync(fd)      # commits the version and makes it durable
os.write(fd, b"again\n")
os.close(fd)
fd = os.open(os.path.join(sys.argv[1], "synced"), os.O_RDONLY)
os.fsync(fd)      # nothing to commit: makes the version durable
os.close(fd)
PY
assert_eq 2 "$(nversions "$S/synced")" "versions of the fsynced file"
echo after >"$S/after"
assert_eq 1 "$(nversions "$S/after")" "versions, seen by another process, of a file closed after the fsync"
deleted=$(find "/proc/$DAEMON_PID/fd" -lname '*catalog.db*(deleted)' | wc -l)
assert_eq 0 "$deleted" "descriptors of a deleted catalog.db, WAL or index in the daemon"
assert_exists "$STORE/catalog.db-wal" "the WAL, while the mount runs"
kill9_fs
check_store
mount_fs
assert_eq after "$(cat "$S/after")" "the file closed after the fsync, after kill -9"
assert_eq "$(printf 'synced\nagain')" "$(cat "$S/synced")" "the fsynced file, after kill -9"
unmount_fs

step "O_SYNC and O_DSYNC writes survive kill -9 while the file is open"
# In passthrough mode they reached only the staging file, which a crash
# before the close left as no version: the file was gone.
mount_fs
S=$MNT/osync
mkdir "$S"
"$PYTHON" - "$S" "$T/osync.ready" <<'PY' &
import os, sys, time
fds = []
for name, flag in (("dsync", os.O_DSYNC), ("sync", os.O_SYNC)):
    fd = os.open(os.path.join(sys.argv[1], name),
                 os.O_WRONLY | os.O_CREAT | flag, 0o644)
    os.write(fd, b"record 1\n")
    os.write(fd, b"record 2\n")
    fds.append(fd)
open(sys.argv[2], "w").close()
time.sleep(60)
PY
writer=$!
track_pid "$writer"
poll 10 test -e "$T/osync.ready" || fail "the O_SYNC writer did not write in 10 s"
crash_fs
# The mount of a dead daemon: the commands say so, and what to do.
expect_error "its replicafs mount does not answer: its daemon stopped.  Unmount it (fusermount3 -uz $MNT)" \
	rfs versions "$S/dsync"
expect_error "fusermount3 -uz $MNT" rfs mount "$STORE" "$MNT"
lazy_unmount
kill "$writer" 2>/dev/null || true
wait "$writer" 2>/dev/null || true
check_store
mount_fs
for f in dsync sync; do
	assert_eq "$(printf 'record 1\nrecord 2')" "$(cat "$S/$f")" "$f after kill -9, its writer still open"
done
unmount_fs

step "the unmount a dead mount's message gives works on a mount point with a space and a quote"
# Copied from the message, "fusermount3 -uz /tmp/x/dead mnt's" was a
# command with a quote left open; the path is now in single quotes.
# (Mounted by hand: lib.sh's is_mounted reads /proc/self/mounts, where a
# space is \040.)
D="$T/dead mnt's"
mkdir "$D"
"$REPLICAFS" mount -f "$STORE" "$D" >"$T/dead.log" 2>&1 &
dpid=$!
track_pid "$dpid"
for _ in $(seq 200); do
	mountpoint -q "$D" && timeout 5 stat "$D/" >/dev/null 2>&1 && break
	sleep 0.1
done
mountpoint -q "$D" || fail "the mount on '$D' is not up after 20 s: $(cat "$T/dead.log")"
mkdir -p "$D/bkt"
{
	kill -9 "$dpid"
	wait "$dpid"
} 2>/dev/null || true
out=$("$REPLICAFS" versions "$D/bkt/f" 2>&1) || true
out2=$("$REPLICAFS" mount "$STORE" "$D" 2>&1) || true
log "$out"
log "$out2"
q="'$T/dead mnt'\\''s'"
cmd=${out#*\(}
cmd=${cmd%%\) and mount*}
rc=0
sh -c "$cmd" || rc=$?
findmnt -M "$D" >/dev/null && fusermount3 -uz "$D"
assert_eq "fusermount3 -uz $q" "$cmd" "the unmount command in the message"
assert_eq 0 "$rc" "exit status of '$cmd'"
[[ $out2 == *"fusermount3 -uz $q"* ]] || fail "the message of a mount there: $out2"
ok "the quoted command unmounts it"
check_store
