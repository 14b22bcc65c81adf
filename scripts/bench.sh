#!/usr/bin/env bash
# scripts/bench.sh BIN - run the same workloads on a native directory and on
# a fresh replicafs mount (both on the disk that holds the repository), and
# print one table: workload, native, replicafs, ratio, target, PASS/MISS.
#
#   make bench                    (installs, builds, runs this)
#   scripts/bench.sh build/replicafs
#
# Ratios are always replicafs / native.  For times lower is better, for
# throughput and IOPS higher is better; the target column says which.
# Before each side of each workload the page cache is dropped
# (sync; echo 3 > /proc/sys/vm/drop_caches) when that file is writable, so
# both sides start cold; the table header says whether it was.
#
# A workload that fails prints FAIL and the run goes on; the exit status is
# 1 if any row failed or the store check after the run failed, 0 otherwise
# (a MISS is reported, not fatal, unless BENCH_STRICT=1: then it exits 3).
#
# Knobs (environment):
#   BENCH_OUT=DIR         results and scratch space (default ./bench-out)
#   BENCH_REPS=3          repetitions of each timed workload and of the
#                         sequential fio runs (median kept)
#   BENCH_SEQ_SIZE=1G     size of the sequential fio file
#   BENCH_RAND_SIZE=256M  size of the random-I/O fio file
#   BENCH_RUNTIME=10      seconds of each random fio run
#   BENCH_RAND_REPS=1     repetitions of each random fio run (median kept)
#   BENCH_DIRS=100 BENCH_FILES_PER_DIR=100   the small-file tree
#   BENCH_TREE=/usr/include                  the tree for cp -r / rsync -a
#   BENCH_MOUNT_OPTS=     -o options for the mount (e.g. nowriteback)
#   BENCH_TIMEOUT=900     seconds before one command is killed (FAIL)
#   BENCH_ONLY=fio,small,history,tree,s3     which groups to run
#   BENCH_HIST_VERSIONS=10000                versions of the history key
#   BENCH_S3_BIG=1G       the large file replicated to S3
#   BENCH_S3_WORKERS=10   replicafs replicate --workers (awscli's default
#                         is 10 requests at once)
#   BENCH_KEEP=1          keep bench-out/work (the store and native files)
#   BENCH_URING=0         leave the fuse module's enable_uring as it is
#                         (default: on for the run; see below)
#   BENCH_STRICT=1        exit 3 when a row MISSes its target
#   BENCH_SETTLE=S        seconds to wait after each drop of the page cache
#                         (default 3 where the kernel reports free pages
#                         to a host, else 0: see drop_caches())
#   BENCH_PASSFS=PATH     the pass-through FUSE file system measured as the
#                         floor (default: passfs beside BIN; "none": no floor)
#   BENCH_PASSFS_OPTS=    options for passfs (default "-o passthrough", as
#                         replicafs mounts by default; none with
#                         BENCH_MOUNT_OPTS=nopassthrough)
#
# The floor.  The fio, small-file and tree workloads run a third time, on a
# mount of passfs (tests/bench/passfs.c): a FUSE file system that forwards
# each request to a directory and does nothing else, mounted with what
# replicafs asks of the kernel.  Its ratio to native is what any FUSE file
# system pays on this machine for the kernel's round trips; replicafs's
# ratio to it is what replicafs itself adds.  They print as a second table
# under each group's, with result "info".
#
# The s3 group starts its own Ceph RGW on 127.0.0.1 (scripts/rgw.sh) and
# compares replicafs's replication to it with awscli's uploads of the same
# data in the same run: the tree against `aws s3 sync`, the large file
# against `aws s3 cp`.  For replicafs, the data is first written into a
# store whose mount has no workers (so its versions are queued), and then
# `replicafs replicate STORE` is timed until the queue is empty.
#
# Results: bench-out/results.json, fio's JSON in bench-out/fio/, the mount's
# log in bench-out/replicafs.log.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 PATH/TO/replicafs" >&2
	exit 2
fi
BIN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${BENCH_OUT:-$ROOT/bench-out}")
REPS=${BENCH_REPS:-3}
SEQ_SIZE=${BENCH_SEQ_SIZE:-1G}
RAND_SIZE=${BENCH_RAND_SIZE:-256M}
RUNTIME=${BENCH_RUNTIME:-10}
RAND_REPS=${BENCH_RAND_REPS:-1}
NDIRS=${BENCH_DIRS:-100}
NPER=${BENCH_FILES_PER_DIR:-100}
TREE=${BENCH_TREE:-/usr/include}
MOPTS=${BENCH_MOUNT_OPTS:-}
LIMIT=${BENCH_TIMEOUT:-900}
ONLY=${BENCH_ONLY:-fio,small,history,tree,s3}
HIST_VERSIONS=${BENCH_HIST_VERSIONS:-10000}
S3_BIG=${BENCH_S3_BIG:-1G}
S3_WORKERS=${BENCH_S3_WORKERS:-10}
PASSFS=${BENCH_PASSFS:-$(dirname "$BIN")/passfs}
case ,${BENCH_MOUNT_OPTS:-}, in
*,nopassthrough,*) PASSFS_OPTS_DEFAULT="" ;;
*) PASSFS_OPTS_DEFAULT="-o passthrough" ;;
esac
read -r -a PASSFS_OPTS <<<"${BENCH_PASSFS_OPTS-$PASSFS_OPTS_DEFAULT}"
if [ "$PASSFS" = none ]; then
	PASSFS=""
elif [ ! -x "$PASSFS" ]; then
	echo "bench: no pass-through floor at $PASSFS (make build/passfs," \
		"or BENCH_PASSFS=none to run without it)" >&2
	exit 2
fi

for t in fio rsync jq fusermount3 timeout awk; do
	command -v "$t" >/dev/null || {
		echo "bench: $t is missing (run scripts/deps.sh)" >&2
		exit 2
	}
done
[ -d "$TREE" ] || { echo "bench: no tree $TREE" >&2; exit 2; }

WORK=$OUT/work
NATIVE=$WORK/native
STORE=$WORK/store
MNT=$WORK/mnt
BUCKET=bench
LOG=$OUT/replicafs.log
FLOOR_SRC=$WORK/floor-src
FLOOR_MNT=$WORK/floor-mnt
FLOOR_LOG=$OUT/passfs.log
FLOOR_PID=""
ROWS=$OUT/rows.tsv
NOTES=()
FAILS=0
MISSES=0
DAEMON_PID=""

is_mounted() {
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# ---- the mount ------------------------------------------------------------

# Mount $STORE on $MNT in the foreground, in the background of this shell,
# so that the PID to stop is ours; wait until the kernel shows the mount.
mount_fs() {
	mkdir -p "$MNT"
	local opts=()
	[ -n "$MOPTS" ] && opts=(-o "$MOPTS")
	echo "== $(date -Is) mount ${opts[*]} $STORE $MNT" >>"$LOG"
	"$BIN" mount -f "${opts[@]}" "$STORE" "$MNT" >>"$LOG" 2>&1 &
	DAEMON_PID=$!
	local i
	for ((i = 0; i < 200; i++)); do
		if is_mounted "$MNT" && stat "$MNT/." >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			wait "$DAEMON_PID" 2>/dev/null
			echo "bench: replicafs mount exited early (see $LOG)" >&2
			DAEMON_PID=""
			return 1
		fi
		sleep 0.05
	done
	if ! is_mounted "$MNT"; then
		echo "bench: $MNT not mounted after 10 s (see $LOG)" >&2
		return 1
	fi
	[ -d "$MNT/$BUCKET" ] || mkdir "$MNT/$BUCKET" || {
		echo "bench: mkdir $MNT/$BUCKET failed" >&2
		return 1
	}
}

# unmount_wait MNT PID NAME: unmount MNT and wait for our daemon PID (if
# any); kill it (only it) if it does not leave.
unmount_wait() {
	local mnt=$1 pid=$2 name=$3 i
	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null ||
			{ sleep 1 && fusermount3 -u "$mnt" 2>/dev/null; } ||
			fusermount3 -uz "$mnt" 2>/dev/null
	fi
	[ -n "$pid" ] || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench: $name (pid $pid) still running after unmount; killing it" >&2
		kill -TERM "$pid" 2>/dev/null
		sleep 1
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
}

umount_fs() {
	unmount_wait "$MNT" "$DAEMON_PID" replicafs
	DAEMON_PID=""
}

mount_ok() {
	[ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null &&
		is_mounted "$MNT" && stat "$MNT/$BUCKET/." >/dev/null 2>&1
}

# The bdi knobs replicafs sets on its own mount (fs/mount.c,
# fs_bdi_tune()), for the floor's.
bdi_tune() {
	local dev
	dev=$(mountpoint -d "$1") || return 0
	[ -w "/sys/class/bdi/$dev/read_ahead_kb" ] || return 0
	echo 1008 >"/sys/class/bdi/$dev/read_ahead_kb"
	echo 0 >"/sys/class/bdi/$dev/strict_limit"
	echo 100 >"/sys/class/bdi/$dev/max_ratio"
}

# floor_umount: unmount the floor and wait for our passfs.
floor_umount() {
	unmount_wait "$FLOOR_MNT" "$FLOOR_PID" passfs
	FLOOR_PID=""
}

# floor_fresh: a new, empty floor mount (passfs holds a descriptor per
# inode the kernel keeps, so each repetition starts on a new one).
floor_fresh() {
	floor_umount
	rm -rf "$FLOOR_SRC"
	mkdir -p "$FLOOR_SRC" "$FLOOR_MNT"
	echo "== $(date -Is) passfs ${PASSFS_OPTS[*]} $FLOOR_SRC $FLOOR_MNT" >>"$FLOOR_LOG"
	"$PASSFS" "${PASSFS_OPTS[@]}" "$FLOOR_SRC" "$FLOOR_MNT" >>"$FLOOR_LOG" 2>&1 &
	FLOOR_PID=$!
	local i
	for ((i = 0; i < 200; i++)); do
		is_mounted "$FLOOR_MNT" && break
		kill -0 "$FLOOR_PID" 2>/dev/null || break
		sleep 0.05
	done
	if ! is_mounted "$FLOOR_MNT"; then
		echo "bench: passfs did not mount (see $FLOOR_LOG)" >&2
		floor_umount
		return 1
	fi
	bdi_tune "$FLOOR_MNT"
}

# Before each replicafs workload: if the mount died, say so and bring it
# back on the same store, so that one crash costs one row, not the rest.
REMOUNTS=0
ensure_mount() {
	mount_ok && return 0
	echo "bench: the mount is down; remounting $STORE" >&2
	REMOUNTS=$((REMOUNTS + 1))
	umount_fs
	mount_fs
}

# FUSE over io_uring (fs/uring.c): the fuse module offers it only with its
# enable_uring parameter on, which is off by default.  The bench turns it
# on for its run, as `make run` does, and puts it back after; the header
# says how it ran.  BENCH_URING=0 leaves the parameter as it is.
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_WAS=""
if [ "${BENCH_URING:-1}" = 1 ] && [ -w "$URING_PARAM" ] &&
	[ "$(cat "$URING_PARAM")" != Y ]; then
	URING_WAS=$(cat "$URING_PARAM")
	echo Y >"$URING_PARAM" || URING_WAS=""
fi
if [ -e "$URING_PARAM" ]; then
	uring_note="FUSE over io_uring: enable_uring=$(cat "$URING_PARAM")${URING_WAS:+ (for this run; was $URING_WAS)}"
else
	uring_note="FUSE over io_uring: not in this kernel"
fi

# shellcheck disable=SC2317  # called by the trap
cleanup() {
	trap - EXIT INT TERM
	umount_fs
	floor_umount
	s3_cleanup
	[ -z "$URING_WAS" ] || echo "$URING_WAS" >"$URING_PARAM"
	if [ "${BENCH_KEEP:-0}" != 1 ]; then
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

# ---- measuring ------------------------------------------------------------

CAN_DROP=0
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
	CAN_DROP=1
fi
# Free page reporting.  Where the kernel reports free memory to the host
# (a VM's balloon device: /sys/module/page_reporting), what the drop frees
# is given back a moment later, and the first touch of a page given back
# faults in the host.  Native fio wrote 1 GiB at 6.6 to 8.0 GB/s when its
# writes began at once after the drop, at 0.9 to 2.0 GB/s when they began
# 3 s later: a side that starts with work of its own (replicafs hashes the
# file fio laid out, before fio writes) wrote to cold pages, the one
# before it to warm ones.  So after a drop the run waits SETTLE seconds,
# and each side starts from memory as cold as a machine's that has run a
# while.
SETTLE=${BENCH_SETTLE:-}
if [ -z "$SETTLE" ]; then
	SETTLE=0
	[ -d /sys/module/page_reporting ] && SETTLE=3
fi
drop_caches() {
	sync
	if [ "$CAN_DROP" = 1 ]; then
		echo 3 >/proc/sys/vm/drop_caches
		[ "$SETTLE" = 0 ] || sleep "$SETTLE"
	fi
}

usec() { echo "${EPOCHREALTIME//[.,]/}"; }

# timed CMD...: run CMD under a time limit; ELAPSED gets the wall time in
# seconds.  Returns CMD's status.
ELAPSED=""
timed() {
	local t0 t1 rc
	t0=$(usec)
	timeout -k 10 "$LIMIT" "$@"
	rc=$?
	t1=$(usec)
	ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
	return $rc
}

# median of the arguments; "FAIL" if any is FAIL or there are none.
# MEDIAN_FMT is its printf format.
MEDIAN_FMT=%.3f
median() {
	[ $# -eq 0 ] && { echo FAIL; return; }
	local v
	for v in "$@"; do
		[ "$v" = FAIL ] && { echo FAIL; return; }
	done
	printf '%s\n' "$@" | sort -g | awk -v f="$MEDIAN_FMT" '{ a[NR] = $1 }
		END { if (NR % 2) printf f "\n", a[(NR + 1) / 2];
		      else printf f "\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# row NAME UNIT KIND NATIVE RFS TARGET [FLOOR]
#   KIND: time (lower is better) or rate (higher is better)
#   TARGET: a ratio bound ("2" means <= 2x for time, ">= 2x" for rate) or "-"
#   FLOOR: the same workload's figure on passfs, for results.json
row() {
	local name=$1 unit=$2 kind=$3 nat=$4 rfs=$5 target=$6 flo=${7:--}
	local ratio verdict
	if [ "$nat" = FAIL ] || [ "$rfs" = FAIL ]; then
		ratio=-
		verdict=FAIL
		FAILS=$((FAILS + 1))
	else
		ratio=$(awk -v n="$nat" -v r="$rfs" 'BEGIN {
			if (n > 0) printf "%.2f", r / n; else print "-" }')
		if [ "$target" = - ] || [ "$ratio" = - ]; then
			verdict=info
		elif awk -v r="$ratio" -v t="$target" -v k="$kind" 'BEGIN {
			exit !(k == "time" ? r <= t : r >= t) }'; then
			verdict=PASS
		else
			verdict=MISS
			MISSES=$((MISSES + 1))
		fi
	fi
	[ "$flo" = FAIL ] && FAILS=$((FAILS + 1))
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$unit" \
		"$kind" "$nat" "$rfs" "$ratio" "$target" "$verdict" "$flo" >>"$ROWS"
	printf '  %-50s %11s %11s %6s %7s  %s\n' "$name ($unit)" "$nat" "$rfs" \
		"$ratio" "$(target_text "$kind" "$target")" "$verdict"
}

# row_abs NAME UNIT NATIVE RFS BOUND: a time against an absolute bound in
# seconds (BOUND), with the native figure (or "-") beside it for scale.
row_abs() {
	local name=$1 unit=$2 nat=$3 rfs=$4 bound=$5 ratio=- verdict
	if [ "$nat" = FAIL ] || [ "$rfs" = FAIL ]; then
		verdict=FAIL
		FAILS=$((FAILS + 1))
	else
		[ "$nat" = - ] || ratio=$(awk -v n="$nat" -v r="$rfs" 'BEGIN {
			if (n > 0) printf "%.2f", r / n; else print "-" }')
		if awk -v r="$rfs" -v b="$bound" 'BEGIN { exit !(r < b) }'; then
			verdict=PASS
		else
			verdict=MISS
			MISSES=$((MISSES + 1))
		fi
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t-\n' "$name" "$unit" time \
		"$nat" "$rfs" "$ratio" - "$verdict" >>"$ROWS"
	printf '  %-50s %11s %11s %6s %7s  %s\n' "$name ($unit)" "$nat" "$rfs" \
		"$ratio" "<${bound}s" "$verdict"
}

target_text() {
	if [ "$2" = - ]; then
		echo -
	elif [ "$1" = time ]; then
		echo "<=${2}x"
	else
		echo ">=${2}x"
	fi
}

header() {
	printf '  %-50s %11s %11s %6s %7s  %s\n' workload native replicafs \
		ratio target result
}

# floor_median V...: the median of a floor's figures, or "-" when the
# bench runs without a floor.
floor_median() {
	if [ -n "$PASSFS" ]; then
		median "$@"
	else
		echo -
	fi
}

floor_header() {
	echo "  on the pass-through floor ($PASSFS${PASSFS_OPTS[*]:+ ${PASSFS_OPTS[*]}}):"
	printf '  %-50s %11s %11s %6s %7s  %s\n' workload native passfs \
		ratio target "replicafs/passfs"
}

# floor_row NAME UNIT NATIVE FLOOR RFS: print a time on the floor, its
# ratio to native, and replicafs's ratio to it (row() puts FLOOR in
# results.json).
floor_row() {
	local name=$1 unit=$2 nat=$3 flo=$4 rfs=$5 ratio=- over=-
	if [ "$nat" != FAIL ] && [ "$flo" != FAIL ]; then
		ratio=$(awk -v n="$nat" -v r="$flo" 'BEGIN {
			if (n > 0) printf "%.2f", r / n; else print "-" }')
	fi
	if [ "$flo" != FAIL ] && [ "$rfs" != FAIL ]; then
		over=$(awk -v f="$flo" -v r="$rfs" 'BEGIN {
			if (f > 0) printf "%.2f", r / f; else print "-" }')
	fi
	printf '  %-50s %11s %11s %6s %7s  %s\n' "$name ($unit)" "$nat" "$flo" \
		"$ratio" - "$over"
}

# ---- fio ------------------------------------------------------------------

# fio_job SIDE DIR NAME FILE ARGS...: run one fio job; FIO_OUT is its JSON.
FIO_OUT=""
fio_job() {
	local side=$1 dir=$2 name=$3 file=$4
	shift 4
	FIO_OUT=$OUT/fio/$name-$side.json
	rm -f "$FIO_OUT"
	timed fio --output-format=json --output="$FIO_OUT" --name="$name" \
		--filename="$dir/$file" --ioengine=psync --iodepth=1 \
		--numjobs=1 --direct=0 --fallocate=none "$@" \
		2>>"$OUT/fio/$name-$side.err" || return 1
	# A job that hit an error still writes JSON: check it.
	[ "$(jq '.jobs[0].error' "$FIO_OUT" 2>/dev/null)" = 0 ]
}

# fio_val FIELD: a number from FIO_OUT
fio_val() {
	jq -r ".jobs[0].$1" "$FIO_OUT"
}

# side_dir SIDE: set DIR to the directory the side works in, mounting
# again if the mount died (in this shell: never call it in $(...)).
DIR=""
side_dir() {
	if [ "$1" = native ]; then
		DIR=$NATIVE
		mkdir -p "$DIR"
	elif [ "$1" = floor ]; then
		DIR=$FLOOR_MNT
		is_mounted "$FLOOR_MNT"
	else
		DIR=$MNT/$BUCKET
		ensure_mount
	fi
}

# fresh_store: unmount, throw the store away, mount a new one.
fresh_store() {
	umount_fs
	rm -rf "$STORE"
	mount_fs
}

# fio_both NAME FILE FIELD SCALE NREPS FRESH ARGS...: run one fio job NREPS
# times on each side (sides alternating, the file removed first when FRESH
# is 1); R[native], R[replicafs] and R[floor] (passfs, mounted by the
# caller; "-" without one) get the median of FIELD (e.g. write.bw_bytes) /
# SCALE, or FAIL.
declare -A R
fio_both() {
	local name=$1 file=$2 field=$3 scale=$4 nreps=$5 fresh=$6 side rep
	local -A vals=([native]="" [replicafs]="" [floor]="")
	local sides=(native replicafs)
	shift 6
	[ -n "$PASSFS" ] && sides+=(floor)
	for ((rep = 1; rep <= nreps; rep++)); do
		for side in "${sides[@]}"; do
			if ! side_dir "$side"; then
				vals[$side]+=" FAIL"
				continue
			fi
			[ "$fresh" = 1 ] && rm -f "$DIR/$file"
			drop_caches
			if fio_job "$side" "$DIR" "$name-$rep" "$file" "$@"; then
				vals[$side]+=" $(awk -v v="$(fio_val "$field")" \
					-v s="$scale" 'BEGIN { printf "%.1f", v / s }')"
			else
				echo "bench: fio $name failed on $side (see $OUT/fio/)" >&2
				vals[$side]+=" FAIL"
			fi
		done
	done
	for side in native replicafs; do
		# shellcheck disable=SC2086
		R[$side]=$(MEDIAN_FMT=%.1f median ${vals[$side]})
	done
	# shellcheck disable=SC2086
	R[floor]=$(MEDIAN_FMT=%.1f floor_median ${vals[floor]})
}

# fio_row NAME UNIT TARGET: row() of R[native] and R[replicafs], and the
# floor's figure kept for the group's floor table.
FLOOR_LINES=()
fio_row() {
	row "$1" "$2" rate "${R[native]}" "${R[replicafs]}" "$3" "${R[floor]}"
	FLOOR_LINES+=("$1|$2|${R[native]}|${R[floor]}|${R[replicafs]}")
}

run_fio() {
	local mib=1048576 bytes side rep v line sides=(native replicafs)
	local -A dd=([native]="" [replicafs]="" [floor]="")
	bytes=$(numfmt --from=iec "$SEQ_SIZE")
	FLOOR_LINES=()
	if [ -n "$PASSFS" ]; then
		sides+=(floor)
		floor_fresh
	fi
	echo "fio (ioengine=psync, buffered, 1 job; rates from fio's JSON;"
	echo "sequential: median of $REPS, random: $RAND_REPS run of ${RUNTIME} s)"
	header

	fio_both seqwrite seq.dat write.bw_bytes $mib "$REPS" 1 \
		--rw=write --bs=1M --size="$SEQ_SIZE"
	fio_row "seq write $SEQ_SIZE, 1 MiB blocks" MiB/s 0.9

	# fio's rate stops before close(), and replicafs commits the version
	# (hash + catalog transaction) in close: time a plain dd of the same
	# size from start to exit, close included.
	for ((rep = 1; rep <= REPS; rep++)); do
		for side in "${sides[@]}"; do
			if ! side_dir "$side"; then
				dd[$side]+=" FAIL"
				continue
			fi
			rm -f "$DIR/dd.dat"
			drop_caches
			dd --version >/dev/null
			if timed dd if=/dev/zero of="$DIR/dd.dat" bs=1M \
				count=$((bytes / mib)) status=none; then
				v=$(awk -v b="$bytes" -v t="$ELAPSED" \
					'BEGIN { printf "%.1f", b / t / 1048576 }')
				dd[$side]+=" $v"
			else
				echo "bench: dd failed on $side" >&2
				dd[$side]+=" FAIL"
			fi
		done
	done
	rm -f "$NATIVE/dd.dat" "$FLOOR_MNT/dd.dat"
	# shellcheck disable=SC2086
	R[native]=$(MEDIAN_FMT=%.1f median ${dd[native]})
	# shellcheck disable=SC2086
	R[replicafs]=$(MEDIAN_FMT=%.1f median ${dd[replicafs]})
	# shellcheck disable=SC2086
	R[floor]=$(MEDIAN_FMT=%.1f floor_median ${dd[floor]})
	fio_row "seq write $SEQ_SIZE (dd), wall time incl. close" MiB/s 0.9

	fio_both seqread seq.dat read.bw_bytes $mib "$REPS" 0 \
		--rw=read --bs=1M --size="$SEQ_SIZE"
	fio_row "seq read $SEQ_SIZE, 1 MiB blocks" MiB/s 0.9

	fio_both seqwrite-fsync seq-sync.dat write.bw_bytes $mib "$REPS" 1 \
		--rw=write --bs=1M --size="$SEQ_SIZE" --end_fsync=1
	fio_row "seq write $SEQ_SIZE + end_fsync (durable)" MiB/s 0.9

	# The random runs need a laid-out file; make it untimed.
	fio_both layout rand.dat write.bw_bytes 1 1 1 \
		--rw=write --bs=1M --size="$RAND_SIZE" >/dev/null
	fio_both randread rand.dat read.iops 1 "$RAND_REPS" 0 \
		--rw=randread --bs=4k --size="$RAND_SIZE" --runtime="$RUNTIME" \
		--time_based
	fio_row "rand read 4 KiB, ${RAND_SIZE} file, ${RUNTIME} s" IOPS -
	fio_both randwrite rand.dat write.iops 1 "$RAND_REPS" 0 \
		--rw=randwrite --bs=4k --size="$RAND_SIZE" --runtime="$RUNTIME" \
		--time_based
	fio_row "rand write 4 KiB, ${RAND_SIZE} file, ${RUNTIME} s" IOPS -
	fio_both randwrite-fsync rand.dat write.iops 1 "$RAND_REPS" 0 \
		--rw=randwrite --bs=4k --size="$RAND_SIZE" --runtime="$RUNTIME" \
		--time_based --end_fsync=1
	fio_row "rand write 4 KiB + end_fsync (durable)" IOPS -

	rm -f "$NATIVE"/seq.dat "$NATIVE"/seq-sync.dat "$NATIVE"/rand.dat
	[ -n "$PASSFS" ] || return 0
	floor_umount
	floor_header
	for line in "${FLOOR_LINES[@]}"; do
		IFS='|' read -r -a v <<<"$line"
		floor_row "${v[@]}"
	done
}

# ---- small files ----------------------------------------------------------

# Each file gets distinct content (a salt and its number), so the store
# cannot share blobs between files or between repetitions.
# shellcheck disable=SC2016
CREATE='set -e; d=$1; nd=$2; nf=$3; salt=$4
pad=$(printf "%*s" 4080 "" | tr " " x)
mkdir "$d"
for ((i = 0; i < nd; i++)); do
	mkdir "$d/d$i"
	for ((j = 0; j < nf; j++)); do
		printf "%08x%08d%s" "$salt" $((i * nf + j)) "$pad" >"$d/d$i/f$j"
	done
done'
# shellcheck disable=SC2016
LSLR='ls -lR "$1" >/dev/null'
# shellcheck disable=SC2016
CATALL='find "$1" -type f -print0 | xargs -0 -r cat >/dev/null'

run_small() {
	local n=$((NDIRS * NPER)) rep side t op rc sides=(native replicafs)
	declare -A S
	[ -n "$PASSFS" ] && sides+=(floor)
	for op in create ls cat rm; do
		S[$op,native]=""
		S[$op,replicafs]=""
		S[$op,floor]=""
	done
	echo
	echo "$n files of 4 KiB in $NDIRS folders (median of $REPS)"
	for ((rep = 1; rep <= REPS; rep++)); do
		echo "  ... repetition $rep of $REPS" >&2
		for side in "${sides[@]}"; do
			[ "$side" = floor ] && floor_fresh
			drop_caches
			if ! side_dir "$side"; then
				for op in create ls cat rm; do
					S[$op,$side]+=" FAIL"
				done
				continue
			fi
			t=$DIR/small-$rep
			for op in create ls cat rm; do
				[ "$op" = create ] || drop_caches
				case $op in
				create) timed bash -c "$CREATE" _ "$t" "$NDIRS" \
					"$NPER" "$((RANDOM * 32768 + RANDOM))" ;;
				ls) timed bash -c "$LSLR" _ "$t" ;;
				cat) timed bash -c "$CATALL" _ "$t" ;;
				rm) timed rm -rf "$t" ;;
				esac
				rc=$?
				if [ $rc = 0 ]; then
					S[$op,$side]+=" $ELAPSED"
				else
					echo "bench: $op failed on $side" >&2
					S[$op,$side]+=" FAIL"
				fi
			done
		done
	done
	header
	# shellcheck disable=SC2086
	{
		row "create $n files" s time "$(median ${S[create,native]})" \
			"$(median ${S[create,replicafs]})" 2 \
			"$(floor_median ${S[create,floor]})"
		row "ls -lR" s time "$(median ${S[ls,native]})" \
			"$(median ${S[ls,replicafs]})" 2 \
			"$(floor_median ${S[ls,floor]})"
		row "read all (find | xargs cat)" s time \
			"$(median ${S[cat,native]})" \
			"$(median ${S[cat,replicafs]})" - \
			"$(floor_median ${S[cat,floor]})"
		row "rm -rf" s time "$(median ${S[rm,native]})" \
			"$(median ${S[rm,replicafs]})" - \
			"$(floor_median ${S[rm,floor]})"
	}
	[ -n "$PASSFS" ] || return 0
	floor_umount
	floor_header
	# shellcheck disable=SC2086
	{
		floor_row "create $n files" s "$(median ${S[create,native]})" \
			"$(median ${S[create,floor]})" \
			"$(median ${S[create,replicafs]})"
		floor_row "ls -lR" s "$(median ${S[ls,native]})" \
			"$(median ${S[ls,floor]})" "$(median ${S[ls,replicafs]})"
		floor_row "read all (find | xargs cat)" s \
			"$(median ${S[cat,native]})" "$(median ${S[cat,floor]})" \
			"$(median ${S[cat,replicafs]})"
		floor_row "rm -rf" s "$(median ${S[rm,native]})" \
			"$(median ${S[rm,floor]})" "$(median ${S[rm,replicafs]})"
	}
}

# ---- history ----------------------------------------------------------------

# One key written HIST_VERSIONS times (a version per close) on the mount,
# and as many files in one native directory; then, cold, `ls -l` of the
# key's .versions/ folder against `ls -l` of that directory, and
# `replicafs versions` of the key.  The issue's bound is absolute: a key
# with 10,000 versions lists in under a second.
HIST_BOUND=1
# shellcheck disable=SC2016
WRITEN='import os, sys
p, n, per_file = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
for i in range(n):
    f = os.path.join(p, "v%05d" % i) if per_file else p
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"%d\n" % i)
    os.close(fd)'

run_history() {
	local n=$HIST_VERSIONS rep nat=() ls=() cli=() rc
	echo
	echo "a key with $n versions (median of $REPS)"
	mkdir -p "$NATIVE/hist"
	if ! timed python3 -c "$WRITEN" "$NATIVE/hist" "$n" 1; then
		nat+=(FAIL)
	fi
	if ! ensure_mount ||
		! timed python3 -c "$WRITEN" "$MNT/$BUCKET/hot" "$n" 0; then
		ls+=(FAIL)
		cli+=(FAIL)
	fi
	for ((rep = 1; rep <= REPS; rep++)); do
		drop_caches
		timed bash -c 'ls -l "$1" >/dev/null' _ "$NATIVE/hist" &&
			nat+=("$ELAPSED") || nat+=(FAIL)
		ensure_mount
		drop_caches
		rc=$(ls "$MNT/.versions/$BUCKET/hot" | wc -l)
		[ "$rc" = "$n" ] || {
			echo "bench: .versions/$BUCKET/hot has $rc entries, not $n" >&2
			ls+=(FAIL)
		}
		drop_caches
		timed bash -c 'ls -l "$1" >/dev/null' _ \
			"$MNT/.versions/$BUCKET/hot" && ls+=("$ELAPSED") ||
			ls+=(FAIL)
		drop_caches
		timed bash -c '"$1" versions "$2" >/dev/null' _ "$BIN" \
			"$MNT/$BUCKET/hot" && cli+=("$ELAPSED") || cli+=(FAIL)
	done
	header
	row_abs "ls -l .versions/ of a key, $n versions" s \
		"$(median "${nat[@]}")" "$(median "${ls[@]}")" "$HIST_BOUND"
	row_abs "replicafs versions of that key" s "-" \
		"$(median "${cli[@]}")" "$HIST_BOUND"
}

# ---- a real tree ----------------------------------------------------------

# Every replicafs repetition gets a fresh store, as every native one gets a
# fresh directory: otherwise the 2nd copy would find its blobs already in
# the store.  The source tree is read once after the cache drop, so both
# sides start with a warm source and a cold destination.
# shellcheck disable=SC2016
WARM='find "$1" -type f -print0 | xargs -0 -r cat >/dev/null'

run_tree() {
	local rep side tool files size rc sides=(native replicafs)
	declare -A S=([cp,native]="" [cp,replicafs]="" [rsync,native]=""
		[rsync,replicafs]="" [cp,floor]="" [rsync,floor]="")
	[ -n "$PASSFS" ] && sides+=(floor)
	files=$(find "$TREE" -type f | wc -l)
	size=$(du -sh "$TREE" | cut -f1)
	echo
	echo "copy $TREE ($files files, $size) into the target (median of $REPS)"
	for ((rep = 1; rep <= REPS; rep++)); do
		echo "  ... repetition $rep of $REPS" >&2
		for tool in cp rsync; do
			for side in "${sides[@]}"; do
				if [ "$side" = replicafs ] && ! fresh_store; then
					S[$tool,$side]+=" FAIL"
					continue
				fi
				[ "$side" = floor ] && floor_fresh
				drop_caches
				bash -c "$WARM" _ "$TREE"
				if ! side_dir "$side"; then
					S[$tool,$side]+=" FAIL"
					continue
				fi
				if [ "$tool" = cp ]; then
					timed cp -r "$TREE" "$DIR/tree-cp-$rep"
				else
					timed rsync -a "$TREE/" "$DIR/tree-rsync-$rep/"
				fi
				rc=$?
				if [ $rc = 0 ]; then
					S[$tool,$side]+=" $ELAPSED"
				else
					echo "bench: $tool failed on $side (status $rc)" >&2
					S[$tool,$side]+=" FAIL"
				fi
				if [ "$side" = native ]; then
					rm -rf "$DIR/tree-$tool-$rep"
				fi
			done
		done
	done
	header
	# shellcheck disable=SC2086
	{
		row "cp -r $TREE" s time "$(median ${S[cp,native]})" \
			"$(median ${S[cp,replicafs]})" 2 \
			"$(floor_median ${S[cp,floor]})"
		row "rsync -a $TREE" s time "$(median ${S[rsync,native]})" \
			"$(median ${S[rsync,replicafs]})" 2 \
			"$(floor_median ${S[rsync,floor]})"
	}
	[ -n "$PASSFS" ] || return 0
	floor_umount
	floor_header
	# shellcheck disable=SC2086
	{
		floor_row "cp -r $TREE" s "$(median ${S[cp,native]})" \
			"$(median ${S[cp,floor]})" "$(median ${S[cp,replicafs]})"
		floor_row "rsync -a $TREE" s "$(median ${S[rsync,native]})" \
			"$(median ${S[rsync,floor]})" \
			"$(median ${S[rsync,replicafs]})"
	}
}

# ---- S3 -------------------------------------------------------------------

RGW_DIR=""
S3_PID=""
S3_MNT=""
AWS=/usr/bin/aws	# Debian's awscli v2

# shellcheck disable=SC2317  # called by cleanup
s3_cleanup() {
	if [ -n "$S3_MNT" ] && is_mounted "$S3_MNT"; then
		fusermount3 -u "$S3_MNT" 2>/dev/null || fusermount3 -uz "$S3_MNT"
	fi
	if [ -n "$S3_PID" ]; then
		wait "$S3_PID" 2>/dev/null
		S3_PID=""
	fi
	if [ -n "$RGW_DIR" ]; then
		KEEP=0 "$ROOT/scripts/rgw.sh" stop "$RGW_DIR" >/dev/null 2>&1
		RGW_DIR=""
	fi
}

aws_s3() { "$AWS" --endpoint-url "$S3_ENDPOINT" "$@"; }

# s3_queue STORE DEST SRC: a fresh STORE whose bucket "bench" has a rule to
# DEST and holds a copy (cp -a) of SRC, all of it queued for replication:
# the mount has no workers.  Unmounted again in every case.
s3_queue() {
	local store=$1 dest=$2 src=$3 i rc=1
	S3_MNT=$WORK/s3mnt
	rm -rf "$store"
	mkdir -p "$S3_MNT"
	"$BIN" mount -f -o repl_workers=0 "$store" "$S3_MNT" >>"$LOG" 2>&1 &
	S3_PID=$!
	for ((i = 0; i < 200; i++)); do
		is_mounted "$S3_MNT" && break
		sleep 0.05
	done
	printf '{"Rules": [{"ID": "bench", "Priority": 1, "Status": "Enabled",
	  "Filter": {}, "Destination": {"Bucket": "%s"}}]}\n' "$dest" >"$WORK/s3rule.json"
	is_mounted "$S3_MNT" && mkdir "$S3_MNT/bench" &&
		"$BIN" replication put "$S3_MNT/bench" "$WORK/s3rule.json" >>"$LOG" 2>&1 &&
		cp -a "$src" "$S3_MNT/bench/" && rc=0
	is_mounted "$S3_MNT" && { fusermount3 -u "$S3_MNT" || fusermount3 -uz "$S3_MNT"; }
	wait "$S3_PID"
	S3_PID=""
	[ "$rc" = 0 ] || echo "bench: could not queue $src for $dest (see $LOG)" >&2
	return $rc
}

run_s3() {
	local bytes big aws_t
	echo
	for t in "$AWS" radosgw ceph-mon ceph-osd; do
		command -v "$t" >/dev/null || {
			echo "bench: $t is missing (scripts/deps.sh); no S3 rows" >&2
			row "replicate $TREE to S3 (vs aws s3 sync)" MiB/s rate FAIL FAIL 0.8
			return
		}
	done
	# A run that was killed may have left its instance: stop it first.
	[ -f "$OUT/rgw/pids" ] && "$ROOT/scripts/rgw.sh" stop "$OUT/rgw" >/dev/null 2>&1
	rm -rf "$OUT/rgw"
	RGW_DIR=$(MEMSTORE_BYTES=$((6 << 30)) "$ROOT/scripts/rgw.sh" start "$OUT/rgw" 2>>"$LOG") || {
		echo "bench: cannot start RGW (see $LOG)" >&2
		RGW_DIR=$OUT/rgw
		row "replicate $TREE to S3 (vs aws s3 sync)" MiB/s rate FAIL FAIL 0.8
		return
	}
	# shellcheck disable=SC1091
	. "$RGW_DIR/env"
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	export AWS_DEFAULT_REGION=$S3_REGION AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
	export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
	export REPLICAFS_CONFIG_DIR=$WORK/s3conf
	"$BIN" remote add bench "$S3_ENDPOINT" --region "$S3_REGION" >>"$LOG" 2>&1
	for b in aws-tree rfs-tree aws-big rfs-big; do
		aws_s3 s3api create-bucket --bucket "$b" >/dev/null &&
			aws_s3 s3api put-bucket-versioning --bucket "$b" \
				--versioning-configuration Status=Enabled
	done
	echo "replication to S3: Ceph RGW on $S3_ENDPOINT (memstore), replicafs" \
		"replicate --workers $S3_WORKERS vs awscli $("$AWS" --version | cut -d' ' -f1)"
	echo "(the 'native' column is awscli; ratio = replicafs / awscli throughput)"
	header

	# The tree: aws s3 sync against replicafs replicate.
	bytes=$(du -sb "$TREE" | cut -f1)
	drop_caches
	if timed "$AWS" --endpoint-url "$S3_ENDPOINT" s3 sync --quiet \
		--no-follow-symlinks "$TREE" s3://aws-tree/tree/ >>"$LOG" 2>&1; then
		aws_t=$ELAPSED
	else
		aws_t=FAIL
	fi
	s3_rfs_time s3://bench/rfs-tree "$TREE"
	row "replicate $TREE to S3 (vs aws s3 sync)" MiB/s rate \
		"$(s3_rate "$bytes" "$aws_t")" "$(s3_rate "$bytes" "$RFS_T")" 0.8
	NOTES+=("S3 tree: aws s3 sync ${aws_t}s, replicafs replicate ${RFS_T}s ($(find "$TREE" | wc -l) entries, $bytes bytes)")

	# The large file: aws s3 cp against replicafs replicate.
	big=$WORK/big.bin
	bytes=$(numfmt --from=iec "$S3_BIG")
	head -c "$bytes" /dev/zero | openssl enc -aes-128-ctr -K 0123456789abcdef0123456789abcdef \
		-iv 00000000000000000000000000000000 >"$big" 2>/dev/null
	drop_caches
	if timed "$AWS" --endpoint-url "$S3_ENDPOINT" s3 cp --quiet "$big" \
		s3://aws-big/big.bin >>"$LOG" 2>&1; then
		aws_t=$ELAPSED
	else
		aws_t=FAIL
	fi
	s3_rfs_time s3://bench/rfs-big "$big"
	row "replicate a $S3_BIG file to S3 (vs aws s3 cp)" MiB/s rate \
		"$(s3_rate "$bytes" "$aws_t")" "$(s3_rate "$bytes" "$RFS_T")" 0.9
	NOTES+=("S3 $S3_BIG file: aws s3 cp ${aws_t}s, replicafs replicate ${RFS_T}s")
	rm -f "$big"
	s3_cleanup
}

# s3_rfs_time URL SRC: queue SRC for URL in a fresh store (s3_queue), then
# time `replicafs replicate` of that store until its queue is empty; RFS_T
# is the seconds, or FAIL.  The store is removed afterwards.
s3_rfs_time() {
	RFS_T=FAIL
	if s3_queue "$WORK/s3store" "$1" "$2"; then
		drop_caches
		if timed "$BIN" replicate "$WORK/s3store" \
			--workers "$S3_WORKERS" >>"$LOG" 2>&1; then
			RFS_T=$ELAPSED
		fi
	fi
	rm -rf "$WORK/s3store"
}

# s3_rate BYTES SECONDS: MiB/s, or FAIL.
s3_rate() {
	[ "$2" = FAIL ] && { echo FAIL; return; }
	awk -v b="$1" -v t="$2" 'BEGIN { printf "%.2f", b / t / 1048576 }'
}

# ---- main -----------------------------------------------------------------

mkdir -p "$OUT"
if is_mounted "$MNT"; then
	echo "bench: unmounting a stale $MNT" >&2
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
fi
rm -rf "$WORK" "$OUT/fio"
mkdir -p "$NATIVE" "$OUT/fio"
: >"$ROWS"
: >"$LOG"

if [ "$(stat -c %d "$NATIVE")" != "$(stat -c %d "$WORK")" ]; then
	NOTES+=("native dir and store are on different devices")
fi
if ! mount_fs; then
	echo "bench: cannot mount; every replicafs row will FAIL" >&2
fi

if [ "$CAN_DROP" = 1 ]; then
	drop_note="page cache dropped before each side of each workload"
	[ "$SETTLE" = 0 ] || drop_note+=", then ${SETTLE} s for free page reporting"
else
	drop_note="page cache NOT dropped (/proc/sys/vm/drop_caches not writable)"
fi
echo "replicafs bench: $(uname -r), $(nproc) CPUs, $(df -h --output=source "$WORK" | tail -1) at $OUT"
echo "binary $BIN; mount options: ${MOPTS:-default}; $drop_note"
echo "$uring_note"
echo

case ",$ONLY," in *,fio,*) run_fio ;; esac
case ",$ONLY," in *,small,*) run_small ;; esac
case ",$ONLY," in *,history,*) run_history ;; esac

# Integrity after the load: unmount, and let the binary check its store.
CHECK=skipped
if [ -d "$STORE" ]; then
	store_size=$(du -sh "$STORE" 2>/dev/null | cut -f1)
	NOTES+=("store size after fio and small files (every version kept): $store_size")
	umount_fs
	if "$BIN" check "$STORE" >>"$LOG" 2>&1; then
		CHECK=ok
	else
		CHECK=FAILED
		FAILS=$((FAILS + 1))
	fi
	NOTES+=("replicafs check $STORE after the run: $CHECK")
fi

case ",$ONLY," in *,tree,*) run_tree ;; esac
umount_fs
case ",$ONLY," in *,s3,*) run_s3 ;; esac

[ "$REMOUNTS" -gt 0 ] && NOTES+=("the mount died and was remounted $REMOUNTS time(s): see $LOG")
echo
for n in "${NOTES[@]}"; do
	echo "note: $n"
done

jq -R -s --arg date "$(date -Is)" --arg kernel "$(uname -r)" \
	--arg cpus "$(nproc)" --arg opts "$MOPTS" --argjson drop "$CAN_DROP" \
	--arg check "$CHECK" --argjson reps "$REPS" --argjson fails "$FAILS" \
	--argjson misses "$MISSES" --args '
	def num: if . == "FAIL" or . == "-" then null else tonumber end;
	{date: $date, kernel: $kernel, cpus: ($cpus | tonumber),
	 mount_options: $opts, caches_dropped: ($drop == 1), reps: $reps,
	 store_check: $check, failed: $fails, missed: $misses,
	 notes: $ARGS.positional,
	 rows: [split("\n")[] | select(length > 0) | split("\t") |
		{workload: .[0], unit: .[1],
		 better: (if .[2] == "time" then "lower" else "higher" end),
		 native: (.[3] | num), replicafs: (.[4] | num),
		 ratio: (.[5] | num), target_ratio: (.[6] | num),
		 result: .[7], passfs: ((.[8] // "-") | num)}]}' "${NOTES[@]}" <"$ROWS" >"$OUT/results.json"
rm -f "$ROWS"
echo "results: $OUT/results.json"

if [ "$FAILS" -gt 0 ]; then
	echo "bench: $FAILS failure(s)" >&2
	exit 1
fi
if [ "$MISSES" -gt 0 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then
	exit 3
fi
exit 0
