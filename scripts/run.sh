#!/usr/bin/env bash
# scripts/run.sh BIN - mount a demo replicafs under ./run/ and say what to try.
#
#   make run                       (installs, builds, runs this)
#   scripts/run.sh build/replicafs
#
# The store is ./run/store, or $REPLICAFS_DATA when set; the mount point is
# ./run/mnt.  A second store, ./run/replica (or $REPLICAFS_DATA.replica),
# mounted on ./run/replica-mnt, receives every new version of the demo
# bucket by a replication rule.  Running it again unmounts the old mounts
# (or keeps one that is busy) and mounts again; the stores are kept.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 PATH/TO/replicafs" >&2
	exit 2
fi
BIN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STORE=$(realpath -m "${REPLICAFS_DATA:-$ROOT/run/store}")
MNT=$ROOT/run/mnt
if [ -n "${REPLICAFS_DATA:-}" ]; then
	RSTORE=$STORE.replica
else
	RSTORE=$ROOT/run/replica
fi
RMNT=$ROOT/run/replica-mnt
BUCKET=demo

is_mounted() {
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# mount_one STORE MNT: (re)mount STORE on MNT.
mount_one() {
	local store=$1 mnt=$2 keep=0 i
	mkdir -p "$mnt"
	if is_mounted "$mnt"; then
		if ! stat "$mnt/." >/dev/null 2>&1; then
			# The daemon is gone (ENOTCONN): only a lazy unmount
			# clears it.
			echo "run: clearing a dead mount at $mnt"
			fusermount3 -uz "$mnt"
		elif fusermount3 -u "$mnt" 2>/dev/null; then
			echo "run: unmounted the previous mount at $mnt"
		else
			echo "run: $mnt is busy (a shell or a program is using it); keeping that mount"
			keep=1
		fi
	fi
	[ "$keep" = 1 ] && return 0
	# Without -f the command returns once the mount is up, and the
	# daemon stays in the background (it logs to syslog).
	"$BIN" mount "$store" "$mnt"
	for ((i = 0; i < 100; i++)); do
		is_mounted "$mnt" && break
		sleep 0.05
	done
	if ! is_mounted "$mnt"; then
		echo "run: $mnt is not mounted; try '$BIN mount -f $store $mnt' to see why" >&2
		exit 1
	fi
}

# FUSE over io_uring (fs/uring.c) makes each request's round trip about
# three times shorter where the kernel has it; its fuse module offers it
# only with enable_uring on, which is off by default.
URING_PARAM=/sys/module/fuse/parameters/enable_uring
if [ -w "$URING_PARAM" ] && [ "$(cat "$URING_PARAM")" != Y ]; then
	echo Y >"$URING_PARAM" &&
		echo "run: turned on FUSE over io_uring ($URING_PARAM; until" \
			"the next boot; mount with -o nouring to do without)"
fi

mount_one "$RSTORE" "$RMNT"
mount_one "$STORE" "$MNT"

# The demo bucket, with a rule and two files the first time only (writing
# them on every run would add a version each time).
[ -d "$MNT/$BUCKET" ] || mkdir "$MNT/$BUCKET"

# The replica bucket, and a rule that sends every new version of the
# demo bucket there, delete markers included.
[ -d "$RMNT/$BUCKET" ] || mkdir "$RMNT/$BUCKET"
if ! "$BIN" replication get "$MNT/$BUCKET" >/dev/null 2>&1; then
	printf '{"Rules": [{"ID": "backup", "Priority": 1, "Status": "Enabled",
  "Filter": {}, "Destination": {"Bucket": "store://%s/%s"},
  "DeleteMarkerReplication": {"Status": "Enabled"}}]}\n' "$RSTORE" "$BUCKET" |
		"$BIN" replication put "$MNT/$BUCKET" -
fi
[ -e "$MNT/$BUCKET/hello.txt" ] ||
	echo "hello from replicafs" >"$MNT/$BUCKET/hello.txt"
if [ ! -e "$MNT/$BUCKET/docs/readme.md" ]; then
	mkdir -p "$MNT/$BUCKET/docs"
	printf '# demo\n\nA bucket is a top-level directory; a file is an object.\n' \
		>"$MNT/$BUCKET/docs/readme.md"
fi

rel=${MNT#"$PWD"/}
rrel=${RMNT#"$PWD"/}
b=$rel/$BUCKET
r=$rrel/$BUCKET
try() {
	if [ $# -gt 1 ]; then
		printf '  %-44s # %s\n' "$1" "$2"
	else
		printf '  %s\n' "$1"
	fi
}

echo
echo "replicafs is mounted: store $STORE"
echo "                      mount $MNT"
echo "its replica:          store $RSTORE"
echo "                      mount $RMNT"
echo "bucket '$BUCKET' holds hello.txt and docs/readme.md; a rule replicates"
echo "every new version of it to the replica store."
echo
echo "Try (from $PWD):"
echo
try "export PATH=\"$(dirname "$BIN"):\$PATH\""
try "ls -l $b $b/docs"
try "cp /etc/os-release $b/"
try "echo one > $b/note.txt"
try "echo two > $b/note.txt"
try "echo three > $b/note.txt"
try "cat $b/note.txt" "three"
try "replicafs versions $b/note.txt" "three versions"
try "getfattr -d -m - $b/note.txt" "version id and sha256"
try "rm $b/note.txt"
try "replicafs versions $b/note.txt" "a delete marker on top; data kept"
try "mkdir $rel/photos" "a new bucket"
try "mkdir $rel/Bad_Name" "refused: not an S3 bucket name"
echo
echo "Replication:"
echo
try "replicafs replication get $b" "the rule (S3's JSON)"
try "echo backed up > $b/new.txt"
try "replicafs wait $b && cat $r/new.txt" "arrived on the replica"
try "replicafs versions $r/new.txt" "the same version ID"
try "getfattr -n system.replicafs.replication-status $b/new.txt" "COMPLETED"
try "getfattr -n system.replicafs.replication-status $r/new.txt" "REPLICA"
try "replicafs status $b" "pending, bytes, latency, failed"
echo
try "fusermount3 -u $rel; fusermount3 -u $rrel" "unmount both"
try "replicafs check $STORE" "check the store (unmounted)"
