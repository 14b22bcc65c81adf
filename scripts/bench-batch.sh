#!/usr/bin/env bash
# scripts/bench-batch.sh BIN - batch replication against rsync, in one run.
#
#   make bench                          (runs this after scripts/bench.sh)
#   scripts/bench-batch.sh build/replicafs
#
# 10,000 files of 4 KiB in 100 folders are written once into a store (with
# replication off) and once into a native directory.  Then, each cold
# (page cache dropped when /proc/sys/vm/drop_caches is writable):
#
#   rsync -a           of the native files to a fresh native directory
#   batch -> store     `replicafs batch create --destination store://...`
#                      and `replicafs batch run` (no mount) to a second
#                      store, until the job is complete
#   batch -> dir       the same to a plain directory (dir://)
#
# and prints the throughput ratio, batch / rsync (rsync's time divided by
# the job's), against the target >= 1.0x.  Each is the median of
# BENCH_BATCH_REPS (default 3) runs.  Last, live replication's latency: a
# file closed on one mount, polled for on a mount of the replica store
# (the median of 10), against "within a second at idle".  Exit status 1
# when a run fails.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 PATH/TO/replicafs" >&2
	exit 2
fi
BIN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${BENCH_OUT:-$ROOT/bench-out}")/batch
NDIRS=${BENCH_DIRS:-100}
NPER=${BENCH_FILES_PER_DIR:-100}
REPS=${BENCH_BATCH_REPS:-3}
STORE=$OUT/store
MNT=$OUT/mnt
SRC=$OUT/native-src
FAILS=0

is_mounted() {
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}
# After a drop, as scripts/bench.sh: where the kernel reports free pages
# to a host, memory it freed turns cold a moment later; each side waits
# for that, and starts from the same memory.
SETTLE=${BENCH_SETTLE:-}
if [ -z "$SETTLE" ]; then
	SETTLE=0
	[ -d /sys/module/page_reporting ] && SETTLE=3
fi
drop() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then
		echo 3 >/proc/sys/vm/drop_caches
		[ "$SETTLE" = 0 ] || sleep "$SETTLE"
	fi
	return 0
}
now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

cleanup() {
	is_mounted "$MNT" && fusermount3 -u "$MNT"
	is_mounted "$OUT/mnt2" && fusermount3 -u "$OUT/mnt2"
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT

rm -rf "$OUT"
mkdir -p "$MNT" "$SRC"

# The files: the same bytes on both sides.
"$BIN" mount -o repl_workers=0 "$STORE" "$MNT"
mkdir "$MNT/src"
python3 - "$SRC" "$NDIRS" "$NPER" <<'EOF'
import os, sys
root, nd, nf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = os.urandom(4096)
for d in range(nd):
    p = os.path.join(root, "d%03d" % d)
    os.mkdir(p)
    for f in range(nf):
        with open(os.path.join(p, "f%03d" % f), "wb") as o:
            o.write(block[f:] + block[:f])
EOF
cp -a "$SRC/." "$MNT/src/"
fusermount3 -u "$MNT"
for i in $(seq 100); do is_mounted "$MNT" || break; sleep 0.05; done
nfiles=$((NDIRS * NPER))

rsync_times=()
store_times=()
dir_times=()
for r in $(seq "$REPS"); do
	# Fresh destinations under new names each time: the source's catalog
	# remembers what reached a URL, and a job to the same one again
	# would find every version there and send nothing.
	rm -rf "$OUT/rsync-dst" "$OUT"/dir-dst-* "$OUT"/store2-*
	drop
	t0=$(now)
	rsync -a "$SRC/" "$OUT/rsync-dst/" || FAILS=$((FAILS + 1))
	rsync_times+=("$(echo "$(now) - $t0" | bc)")

	# A second store with its bucket (made through a short mount).
	"$BIN" mount "$OUT/store2-$r" "$MNT" && mkdir "$MNT/dst" && fusermount3 -u "$MNT"
	for i in $(seq 100); do is_mounted "$MNT" || break; sleep 0.05; done
	"$BIN" mount -o repl_workers=0 "$STORE" "$MNT"
	for kind in store dir; do
		if [ $kind = store ]; then
			url=store://$OUT/store2-$r/dst
		else
			mkdir -p "$OUT/dir-dst-$r"
			url=dir://$OUT/dir-dst-$r
		fi
		job=$("$BIN" batch create "$MNT/src" --destination "$url" --status NONE,COMPLETED) || {
			FAILS=$((FAILS + 1))
			continue
		}
		fusermount3 -u "$MNT"
		for i in $(seq 100); do is_mounted "$MNT" || break; sleep 0.05; done
		drop
		t0=$(now)
		"$BIN" batch run "$job" --store "$STORE" >"$OUT/run.log" 2>&1 ||
			{ FAILS=$((FAILS + 1)); cat "$OUT/run.log" >&2; }
		t=$(echo "$(now) - $t0" | bc)
		# Every file and folder marker sent, none skipped.
		grep -q "Complete, $((nfiles + NDIRS))/$((nfiles + NDIRS)) items ($((nfiles + NDIRS)) succeeded" "$OUT/run.log" ||
			{ echo "bench-batch: the $kind job did not send every version:" >&2
			  cat "$OUT/run.log" >&2; FAILS=$((FAILS + 1)); }
		if [ $kind = store ]; then store_times+=("$t"); else dir_times+=("$t"); fi
		"$BIN" mount -o repl_workers=0 "$STORE" "$MNT"
	done
	fusermount3 -u "$MNT"
	for i in $(seq 100); do is_mounted "$MNT" || break; sleep 0.05; done
done
diff -r "$SRC" "$OUT/dir-dst-$REPS/src" >/dev/null 2>&1 ||
	diff -r "$SRC" "$OUT/dir-dst-$REPS" >/dev/null 2>&1 ||
	{ echo "bench-batch: the directory destination differs from the source" >&2; FAILS=$((FAILS + 1)); }

# Live replication latency: close on MNT, readable on MNT2.
MNT2=$OUT/mnt2
mkdir -p "$MNT2"
"$BIN" mount "$OUT/lat-b" "$MNT2" && mkdir "$MNT2/dst"
"$BIN" mount "$OUT/lat-a" "$MNT" && mkdir "$MNT/src"
printf '{"Rules": [{"ID": "r", "Priority": 1, "Status": "Enabled", "Filter": {},
  "Destination": {"Bucket": "store://%s/dst"},
  "DeleteMarkerReplication": {"Status": "Enabled"}}]}\n' "$OUT/lat-b" |
	"$BIN" replication put "$MNT/src" - >/dev/null || FAILS=$((FAILS + 1))
lat=()
for i in $(seq 10); do
	t0=$(now)
	echo "latency $i" >"$MNT/src/l$i"
	for j in $(seq 1000); do
		[ "$(cat "$MNT2/dst/l$i" 2>/dev/null)" = "latency $i" ] && break
		sleep 0.005
	done
	lat+=("$(echo "($(now) - $t0) * 1000" | bc)")
	sleep 0.2
done
fusermount3 -u "$MNT"
fusermount3 -u "$MNT2"
for i in $(seq 100); do is_mounted "$MNT" || is_mounted "$MNT2" || break; sleep 0.05; done
lt=$(printf '%s\n' "${lat[@]}" | median)

rs=$(printf '%s\n' "${rsync_times[@]}" | median)
st=$(printf '%s\n' "${store_times[@]}" | median)
dt=$(printf '%s\n' "${dir_times[@]}" | median)
row() {
	local ratio verdict
	ratio=$(echo "scale=2; $rs / $2" | bc)
	verdict=MISS
	[ "$(echo "$ratio >= 1.0" | bc)" = 1 ] && verdict=PASS
	printf '%-44s %9.3f %9.3f %6s %7s  %s\n' "$1" "$rs" "$2" "$ratio" ">=1.0x" "$verdict"
}
echo
echo "batch replication of $nfiles files of 4 KiB ($NDIRS folders), median of $REPS, seconds"
printf '%-44s %9s %9s %6s %7s\n' "workload" "rsync -a" "batch" "ratio" "target"
row "batch job -> second store (store://)" "$st"
row "batch job -> plain directory (dir://)" "$dt"
echo
printf '%-44s %9s %6s %7s\n' "live replication" "ms" "" "target"
v=MISS
[ "$(echo "$lt <= 1000" | bc)" = 1 ] && v=PASS
printf '%-44s %9.0f %6s %7s  %s\n' "close -> readable on the replica's mount" "$lt" "" "<=1000" "$v"
[ "$FAILS" = 0 ] || { echo "bench-batch: $FAILS runs failed" >&2; exit 1; }
