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
# (Without passthrough the commit comes with the RELEASE, after the close.)
poll 5 grep -q "commit of bkt/huge failed: No space left on device" "$(daemon_log)" ||
	fail "the daemon's log does not name the file whose commit failed"
# Without passthrough the dd's release commits what was left, which fails
# too, and its line said only "inode 7: commit at release".
case ${TEST_MOUNT_OPTS:-} in
*nopassthrough*)
	for _ in $(seq 50); do
		grep -q "commit of bkt/huge at its release failed: No space left on device" "$(daemon_log)" && break
		sleep 0.1
	done
	grep -q "commit of bkt/huge at its release failed: No space left on device" "$(daemon_log)" ||
		fail "the log does not name the file whose commit at its release failed: $(grep -a release "$(daemon_log)")"
	;;
esac
df -h "$SMALL" | tail -n 1

step "the files written before are intact while the disk is full"
for i in 1 2 3 4; do
	assert_eq "${sums[before$i]}" "$(sha_of "$B/before$i")" "before$i on a full disk"
done
ok "read back"

step "a copy whose close fails leaves no file behind"
# With passthrough, room for the 4 MiB file but not for the copy of it
# that its close commits (README: the kernel may still write a file after
# its close), so the writes succeed and the close fails.  Without, the
# daemon writes and links the staging file itself: room for half of it,
# and the writes fail, each or at the close that flushes them.  The failed
# dd's staging file goes at its release, which comes after its close:
# wait for its space to come back before measuring.
free=6144 when="at its close"
case ${TEST_MOUNT_OPTS:-} in
*nopassthrough*) free=2048 when="" ;;
esac
staging_empty() { [ -z "$(ls "$STORE/staging")" ]; }
poll 5 staging_empty || log "the staging folder is not empty yet"
sleep 0.5
avail=$(df -k --output=avail "$SMALL" | tail -n 1)
[ "$avail" -gt "$free" ] || fail "only $avail KiB free on $SMALL; expected more"
fallocate -l $(((avail - free) * 1024)) "$SMALL/filler"
gen_data $((4 * 1024 * 1024)) 70 >"$T/victim"
touch -d '2020-01-02 03:04:05' "$T/victim"
rc=0
cp -a "$T/victim" "$B/victim" 2>"$T/cp.err" || rc=$?
cat "$T/cp.err"
[ "$rc" != 0 ] || fail "cp -a of 4 MiB with $free KiB free succeeded"
grep -q "${when:+failed to close.*}No space left on device" "$T/cp.err" ||
	fail "cp -a failed (status $rc) but not ${when:-with} 'No space left on device'"
# Nothing of it was kept, so it is not there: before, it showed its
# source's size and mtime, and rsync -a took it for a finished copy.
# Without passthrough a write-back error fails the close in the kernel,
# which then sends no FLUSH: the daemon's commit, and what follows from
# its failure, come with the RELEASE, just after the close returned.
poll 5 not test -e "$B/victim" || assert_missing "$B/victim"
ls "$B" | grep -qx victim && fail "victim is listed after its close failed"
ok "the failed copy is not there"
rm -f "$SMALL/filler"
rsync -a "$T/victim" "$B/victim" || fail "rsync -a of victim once there is room"
cmp "$T/victim" "$B/victim" || fail "victim differs from its source after rsync -a"
sums[victim]=$(sha_of "$T/victim")
ok "once there is room, rsync -a copies it"
# An overwrite that fails the same way keeps the version there was, and
# shows it: its size, its content (with the writeback cache, the kernel
# kept the failed size and pages until it forgot the inode).
avail=$(df -k --output=avail "$SMALL" | tail -n 1)
fallocate -l $(((avail - free) * 1024)) "$SMALL/filler"
gen_data $((5 * 1024 * 1024)) 71 >"$T/victim2"
cp "$T/victim2" "$B/victim" 2>"$T/cp2.err" && fail "an overwrite of 5 MiB with $free KiB free succeeded"
cat "$T/cp2.err"
victim_is_4m() { [ "$(stat -c %s "$B/victim")" = $((4 * 1024 * 1024)) ]; }
poll 5 victim_is_4m || true	# the RELEASE, as above; checked below
assert_eq $((4 * 1024 * 1024)) "$(stat -c %s "$B/victim")" "size of victim after its overwrite failed"
cmp "$T/victim" "$B/victim" || fail "victim does not read as its last version after its overwrite failed"
assert_eq 1 "$(nversions "$B/victim")" "versions of victim after its overwrite failed"
rm -f "$SMALL/filler"
ok "an overwrite that failed leaves the last version, as it shows"

# Writers of the steps below, each printing what its calls returned.
cat >"$T/writers.py" <<'PY'
import errno, os, sys
def attempt(what, f):
    try:
        f()
        return what + ":ok"
    except OSError as e:
        return what + ":" + errno.errorcode[e.errno]
def fsync_fails(path):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    out = [attempt("write", lambda: os.write(fd, os.urandom(4 << 20)))]
    out.append(attempt("fsync", lambda: os.fsync(fd)))
    out.append(attempt("close", lambda: os.close(fd)))
    return out
def shared(path, filler):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    out = [attempt("write1", lambda: os.write(fd, b"line 1\n"))]
    out.append(attempt("fsync1", lambda: os.fsync(fd)))
    st = os.statvfs(os.path.dirname(filler))
    ff = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.posix_fallocate(ff, 0, st.f_bavail * st.f_frsize)
    except OSError:
        pass
    os.close(ff)
    out.append(attempt("write2", lambda: os.write(fd, b"line 2\n")))
    other = os.open(path, os.O_WRONLY | os.O_APPEND)
    out.append(attempt("other-close", lambda: os.close(other)))
    out.append(attempt("fsync2", lambda: os.fsync(fd)))
    out.append(attempt("close", lambda: os.close(fd)))
    return out
case = {"fsync-fails": fsync_fails, "shared": shared}[sys.argv[1]]
print(" ".join(case(*sys.argv[2:])))
PY

# An fsync that fails loses what it was to keep, as the close would: the
# close says so again, so that a writer that looks only at close (cp, a
# shell's >) is told.  Before, the close returned 0, and the file showed
# the failed size, read as empty, then went.
avail=$(df -k --output=avail "$SMALL" | tail -n 1)
fallocate -l $(((avail - free) * 1024)) "$SMALL/filler"
"$PYTHON" "$T/writers.py" fsync-fails "$B/synced" >"$T/fsync.out"
log "$(cat "$T/fsync.out")"
case $(cat "$T/fsync.out") in
*"fsync:ENOSPC close:ENOSPC"*) ;;
*) fail "write, fsync and close of 4 MiB with $free KiB free: $(cat "$T/fsync.out"); expected fsync and close to fail with ENOSPC" ;;
esac
poll 5 not test -e "$B/synced" || assert_missing "$B/synced"	# the RELEASE, as above
rm -f "$SMALL/filler"
ok "an fsync that fails: its close fails too, and nothing is left"

# A writer's fsync after another writer's close failed to keep what the
# first had written (the two share the file's content): the fsync
# returned 0, and what it was to keep was in no version.
"$PYTHON" "$T/writers.py" shared "$B/shared" "$SMALL/filler" >"$T/shared.out"
log "$(cat "$T/shared.out")"
rm -f "$SMALL/filler"
case $(cat "$T/shared.out") in
*"write1:ok fsync1:ok write2:ok other-close:ENOSPC fsync2:ENOSPC"*) ;;
*) fail "two writers of one file on a full disk: $(cat "$T/shared.out"); expected the second fsync to fail, as the other's close did" ;;
esac
ok "an fsync after another writer's close failed fails too"

# Without passthrough each write to a file with a version first copies
# it into a staging file (seeds it).  On a full disk each attempt logged
# "store: seed staging file from SHA: No space left on device": 12,000
# lines in 10 minutes for one user.  Now the first is logged, then one
# line in 10 s with the count left out, and one when it works again.
case ${TEST_MOUNT_OPTS:-} in
*nopassthrough*)
	gen_data $((1024 * 1024)) 80 >"$B/seedme"
	avail=$(df -k --output=avail "$SMALL" | tail -n 1)
	fallocate -l $(((avail - 256) * 1024)) "$SMALL/filler"
	n0=$(grep -c "seed staging file" "$(daemon_log)" || true)
	# (bash does not look at the close, where the error comes.)
	fails=$("$PYTHON" - "$B/seedme" <<'PY'
import sys
fails = 0
for i in range(40):
    try:
        with open(sys.argv[1], "a") as f:
            f.write("x %d\n" % i)
    except OSError:
        fails += 1
print(fails)
PY
)
	n=$(($(grep -c "seed staging file" "$(daemon_log)" || true) - n0))
	rm -f "$SMALL/filler"
	log "$fails of 40 appends failed; $n lines on seeding in the log"
	[ "$fails" -ge 30 ] || fail "only $fails of 40 appends failed on the full disk"
	[ "$n" -le 2 ] || fail "$n lines on seeding staging files for $fails failed appends: $(grep -a "seed staging" "$(daemon_log)" | tail -n 3)"
	echo "y" >>"$B/seedme" || fail "an append once there is room"
	for _ in $(seq 50); do
		grep -q "seeded again" "$(daemon_log)" && break
		sleep 0.1
	done
	grep -q "seeded again" "$(daemon_log)" ||
		fail "the log does not say that staging files are seeded again: $(grep -a "seed" "$(daemon_log)" | tail -n 3)"
	ok "$fails failed appends, $n lines, and one when it works again"
	;;
esac

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

step "a store full to the last byte, catalog and all, can still be emptied"
# Big files until one fails, then small ones (each a catalog transaction,
# whose pages the WAL keeps) until they fail too: before the store kept a
# reserve, the catalog then had no room for the transaction that removes
# a version, and rm-version failed with ENOSPC, even after a remount.
for i in $(seq 64); do
	gen_data $((1024 * 1024)) $((100 + i)) >"$B/big$i" 2>/dev/null || break
done
mkdir "$T/tiny"
for i in $(seq 3000); do
	echo "tiny $i" >"$T/tiny/t$i"
done
cp -r "$T/tiny" "$B/tiny" 2>/dev/null && fail "3000 more files fit on a full store"
df -h "$SMALL" | tail -n 1
unmount_fs
check_store
mount_fs
rfs rm-version -r "$B/big1" --yes >"$T/rmv.out" 2>"$T/rmv.err" || {
	cat "$T/rmv.out" "$T/rmv.err"
	fail "rm-version -r of a big file on the full store failed"
}
cat "$T/rmv.out"
grep -q "removed 1 version" "$T/rmv.out" || fail "rm-version did not remove big1"
rfs rm-version -r "$B/tiny" --yes >/dev/null || fail "rm-version -r of the tiny files"
gen_data $((256 * 1024)) 99 >"$B/after-full" || fail "a write after emptying"
sums[after-full]=$(gen_data $((256 * 1024)) 99 | sha256sum | cut -d' ' -f1)
assert_eq "${sums[after-full]}" "$(sha_of "$B/after-full")" "after-full"
df -h "$SMALL" | tail -n 1
ok "versions removed on the full store, and a new file written"
remount
for f in "${!sums[@]}"; do
	assert_eq "${sums[$f]}" "$(sha_of "$B/$f")" "$f after emptying the full store"
done
ok "all ${#sums[@]} files read back"
unmount_fs
check_store --deep

step "a long copy fills a store while it is mounted; rm-version -r gives the room back, with no unmount"
# Small files, each a catalog transaction: the WAL grows while commits
# come.  It took 34 MB of a 64 MiB store (its checkpoint then found no
# room in catalog.db, and kept it all), and rm-version -r failed part-way
# and freed what it removed only once the mount went down.
SMALL2=$T/small2
mkdir "$SMALL2"
mount -t tmpfs -o size=64m tmpfs "$SMALL2"
track_mount "$SMALL2"
STORE=$SMALL2/store
mount_fs
mkdir "$B"
"$PYTHON" - "$T/tree" <<'PY'
import os, sys
for d in range(40):
    os.makedirs(os.path.join(sys.argv[1], "d%d" % d))
    for f in range(500):
        with open(os.path.join(sys.argv[1], "d%d" % d, "f%d" % f), "wb") as o:
            o.write(os.urandom(4096))
PY
gen_data $((2 * 1024 * 1024)) 7 >"$B/kept"
kept=$(gen_data $((2 * 1024 * 1024)) 7 | sha256sum | cut -d' ' -f1)
mkdir "$B/ed"	# for the swap files below
cp -r "$T/tree" "$B/tree" 2>"$T/cp.err" && fail "80 MB of files fit in a 64 MiB store"
grep -q 'No space left on device' "$T/cp.err" || fail "cp failed, not with ENOSPC: $(head -3 "$T/cp.err")"
# An editor's swap files on the full disk: two made, closed, removed.
# The removal of the first froze the whole mount: the failed commit at its
# release told the kernel that the name was gone while the unlink, which
# held the directory's lock, waited for that commit.  (A new file with
# nothing written is committed at its release, after the close returned:
# the close cannot tell, since a FLUSH comes for every close of a dup.)
timeout -s KILL 30 "$PYTHON" - "$B/ed" >"$T/swap.out" 2>&1 <<'PY'
import errno, os, sys
d = sys.argv[1]
def closed(fd):
    try:
        os.close(fd)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def unlinked(p):
    try:
        os.unlink(p)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def made(p):
    try:
        return os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        print("open", os.path.basename(p), errno.errorcode[e.errno])
        return -1
# Either the open fails with ENOSPC or the close returns 0 and the file
# is there: never a close that returned 0 for a file that then went.
a = made(d + "/.doc.swp")
b = made(d + "/.doc.swx")
for fd, p in ((b, d + "/.doc.swx"), (a, d + "/.doc.swp")):
    if fd < 0:
        continue
    c = closed(fd)
    there = os.path.exists(p)
    print("close", os.path.basename(p), c, "there" if there else "gone",
          "unlink", unlinked(p))
    if c == "ok" and not there:
        print("LOST: the close returned 0 and the file went")
print("left", sorted(os.listdir(d)))
PY
rc=$?
cat "$T/swap.out"
[ "$rc" = 0 ] || fail "the swap-file script did not finish in 30 s (status $rc): the mount hangs"
assert_eq "left []" "$(tail -n 1 "$T/swap.out")" "what is left of the swap files on the full store"
grep -q LOST "$T/swap.out" && fail "a swap file's close returned 0 on the full store and the file went"
# touch and the shell's > on the full disk: an error, or a file that
# stays.  Before, each returned 0 and the file was gone a moment later
# (its commit came at the release, after the close).
for how in touch redirect; do
	f=$B/ed/empty-$how
	if case $how in
		touch) touch "$f" ;;
		redirect) : >"$f" ;;
	   esac 2>"$T/empty.err"; then
		sleep 0.2	# the release, and its commit, come after the close
		[ -e "$f" ] || fail "$how of a new file on the full store returned 0, and the file is gone"
		rm -f "$f"
		ok "$how on the full store made the file"
	else
		grep -q 'No space left on device' "$T/empty.err" ||
			fail "$how on the full store failed, not with ENOSPC: $(cat "$T/empty.err")"
		[ ! -e "$f" ] || fail "$how failed but left $f"
		ok "$how on the full store: ENOSPC"
	fi
done
timeout 10 ls "$B" >/dev/null || fail "ls of the bucket hangs after the swap files"
df -k "$SMALL2" | tail -n 1
wal=$(stat -c %s "$STORE/catalog.db-wal")
log "WAL at ENOSPC: $wal bytes"
[ "$wal" -le $((8 * 1024 * 1024)) ] || fail "the WAL took $wal bytes of a 64 MiB store"
# All but 512 KiB taken (by another file on the disk), so that the
# removal needs the reserve.
avail=$(df -k --output=avail "$SMALL2" | tail -n 1)
[ "$avail" -le 512 ] ||
	dd if=/dev/zero of="$SMALL2/filler" bs=64k count=$(((avail - 512) / 64)) 2>/dev/null
rfs rm-version -r "$B/tree" --yes >"$T/rmv.out" 2>"$T/rmv.err" || {
	cat "$T/rmv.out" "$T/rmv.err"
	fail "rm-version -r of the copy on the full store (mounted) failed"
}
cat "$T/rmv.out"
# One word that the disk was full, no error for what a retry made good
# (it printed dozens of "error: ... disk is full" lines, and exited 0).
cat "$T/rmv.err"
! grep -q 'error:' "$T/rmv.err" || fail "rm-version -r succeeded with error lines: $(grep -c 'error:' "$T/rmv.err")"
[ "$(grep -c 'gave back' "$T/rmv.err")" -le 2 ] || fail "the reserve and the WAL were said to be given back $(grep -c 'gave back' "$T/rmv.err") times"
rm -f "$SMALL2/filler"
free=$(df -k --output=avail "$SMALL2" | tail -n 1)
[ "$free" -ge $((48 * 1024)) ] || fail "only $free KiB free after removing the copy, with the mount up"
ok "$free KiB free after rm-version -r, the mount up"
gen_data $((8 * 1024 * 1024)) 8 >"$B/after" || fail "an 8 MiB write after emptying"
assert_eq "$(gen_data $((8 * 1024 * 1024)) 8 | sha256sum | cut -d' ' -f1)" "$(sha_of "$B/after")" "the file written after"
assert_eq "$kept" "$(sha_of "$B/kept")" "the file written before the disk filled"
unmount_fs
check_store --deep
