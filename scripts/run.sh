#!/usr/bin/env bash
# scripts/run.sh BIN - mount a demo replicafs under ./run/ and say what to try.
#
#   make run                       (installs, builds, runs this)
#   scripts/run.sh build/replicafs
#
# The store is ./run/store, or $REPLICAFS_DATA when set; the mount point is
# ./run/mnt.  Running it again unmounts the old mount (or keeps it when it
# is busy) and mounts again; the store and its versions are kept.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 PATH/TO/replicafs" >&2
	exit 2
fi
BIN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STORE=$(realpath -m "${REPLICAFS_DATA:-$ROOT/run/store}")
MNT=$ROOT/run/mnt
BUCKET=demo

is_mounted() {
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

mkdir -p "$MNT"
keep=0
if is_mounted "$MNT"; then
	if ! stat "$MNT/." >/dev/null 2>&1; then
		# The daemon is gone (ENOTCONN): only a lazy unmount clears it.
		echo "run: clearing a dead mount at $MNT"
		fusermount3 -uz "$MNT"
	elif fusermount3 -u "$MNT" 2>/dev/null; then
		echo "run: unmounted the previous mount at $MNT"
	else
		echo "run: $MNT is busy (a shell or a program is using it); keeping that mount"
		keep=1
	fi
fi

if [ "$keep" = 0 ]; then
	# Without -f the command returns once the mount is up, and the daemon
	# stays in the background (it logs to syslog).
	"$BIN" mount "$STORE" "$MNT"
	for ((i = 0; i < 100; i++)); do
		is_mounted "$MNT" && break
		sleep 0.05
	done
	if ! is_mounted "$MNT"; then
		echo "run: $MNT is not mounted; try '$BIN mount -f $STORE $MNT' to see why" >&2
		exit 1
	fi
fi

# The demo bucket, with two files the first time only (writing them on
# every run would add a version each time).
[ -d "$MNT/$BUCKET" ] || mkdir "$MNT/$BUCKET"
[ -e "$MNT/$BUCKET/hello.txt" ] ||
	echo "hello from replicafs" >"$MNT/$BUCKET/hello.txt"
if [ ! -e "$MNT/$BUCKET/docs/readme.md" ]; then
	mkdir -p "$MNT/$BUCKET/docs"
	printf '# demo\n\nA bucket is a top-level directory; a file is an object.\n' \
		>"$MNT/$BUCKET/docs/readme.md"
fi

# Replication (a rule on the bucket, a second store and a second mount
# that serves the replica) goes here once `replicafs replication` exists.

rel=${MNT#"$PWD"/}
b=$rel/$BUCKET
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
echo "bucket '$BUCKET' holds hello.txt and docs/readme.md."
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
try "fusermount3 -u $rel" "unmount"
try "replicafs check $STORE" "check the store (unmounted)"
