#!/bin/bash
#
# test.sh BUILD_DIR - run replicafs's tests against one build.
#
#   1. every Criterion unit test BUILD_DIR/tests/test_NAME built from
#      tests/unit/test_NAME.c, and every stress program BUILD_DIR/tests/NAME
#      built from tests/stress/NAME.c (run with no arguments);
#   2. unless UNIT_ONLY=1, every tests/integration/test_*.sh, each under a
#      time limit, with REPLICAFS=BUILD_DIR/replicafs.
#
# A test fails when it exits non-zero, when it runs out of time, or when its
# log (or a log of a daemon it started) holds a sanitizer report: Criterion
# lets a LeakSanitizer report pass, and a daemon's report would otherwise go
# unseen.  Each test prints `PASS name (Ns)` or `FAIL name` and the tail of
# its log; the last line is `N passed, N failed`, and the exit status is
# non-zero when any test failed.
#
# The integration tests run TEST_JOBS at a time (default 2, or 1 on a
# machine of one core): many of them spend most of their time waiting, on
# a daemon's timer, on RGW or on FUSE round trips.  Each keeps to its own
# temporary directory, mount points, daemons and RGW ports, so none sees
# another.  A test's PASS or FAIL block is printed whole, when it ends; the
# slowest tests start first.
#
# Environment:
#   UNIT_ONLY=1         only the unit tests
#   TESTS="a b"         only the tests whose names contain one of these words
#                       (names: unit/test_x, stress/x, test_x for integration)
#   TEST_LOG_DIR=DIR    where the logs go (default BUILD_DIR/test-logs: NAME.log
#                       per test, NAME-daemons/ with the daemons' logs; no
#                       name ends in .d, which the Makefile would include)
#   KEEP_TMP=1          integration tests keep their temporary directories
#   TEST_TIMEOUT=S      one time limit for every integration test
#   TEST_MOUNT_OPTS=O   -o options every test's replicafs mounts start with
#   TEST_JOBS=N         integration tests run at once (1: one after another)
#
# Mounts take FUSE passthrough by default where the kernel has it (fs/ops.c,
# pt_sync()); the tests in NOPT_TESTS run a second time, as NAME-nopt, on
# mounts with -o nopassthrough, where writes reach the daemon as WRITE
# requests through the writeback cache.
#
# Mounts take their requests through io_uring queues where the kernel
# offers it (fs/uring.c): as root, the integration tests turn the fuse
# module's enable_uring parameter on for their run and put it back after;
# the tests in NOURING_TESTS run a second time, as NAME-nouring, with
# -o nouring, where requests come through /dev/fuse.
#
# Those second runs of test_cp_rsync copy RERUN_CP_SRC (default
# /usr/include/linux, some 800 entries in folders, where it is there)
# rather than all of /usr/include, and that of test_crash kills its
# daemon RERUN_CRASH_ROUNDS times (default 8) rather than 20: the other
# mode's paths are the same for 800 files as for 9,000, and under the
# sanitizers, on a machine whose FUSE round trips are dear, each whole
# copy took three minutes and the 20 kills two and a half.

set -uo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR (e.g. build-san)" >&2
	exit 2
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$1" && pwd)
LOGS=${TEST_LOG_DIR:-$B/test-logs}
mkdir -p "$LOGS"
LOGS=$(cd "$LOGS" && pwd)
rm -rf "$LOGS"/*.log "$LOGS"/*-daemons
cd "$ROOT" || exit 2

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1
SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'

# Each test's outcome is a line PASS NAME or FAIL NAME in RESULTS; the
# integration tests write theirs from their own subshells.
RESULTS=$LOGS/results
: >"$RESULTS"

# selected NAME: whether TESTS (if set) selects NAME.
selected() {
	local w
	[ -n "${TESTS:-}" ] || return 0
	for w in $TESTS; do
		[[ $1 == *"$w"* ]] && return 0
	done
	return 1
}

# time_limit NAME: seconds an integration test may run.
time_limit() {
	if [ -n "${TEST_TIMEOUT:-}" ]; then
		echo "$TEST_TIMEOUT"
		return
	fi
	case $1 in
	test_bigfile | test_crash) echo 900 ;;
	test_cp_rsync) echo 600 ;;
	test_s3) echo 420 ;;
	*) echo 300 ;;
	esac
}

pass() {
	printf 'PASS %s (%ss)\n' "$1" "$2"
	echo "PASS $1" >>"$RESULTS"
}

# flunk NAME LOG REASON
flunk() {
	printf 'FAIL %s: %s\n' "$1" "$3"
	if [ -s "$2" ]; then
		printf -- '---- last lines of %s\n' "$2"
		tail -n 40 "$2" | sed 's/^/    /'
		printf -- '----\n'
	fi
	echo "FAIL $1" >>"$RESULTS"
}

# sanitizer_report FILE...: print the first report found; true if any.
sanitizer_report() {
	local f
	for f in "$@"; do
		[ -f "$f" ] || continue
		if grep -qE "$SANITIZER_RE" "$f"; then
			printf -- '---- sanitizer report in %s\n' "$f"
			grep -E -m 1 -A 25 "$SANITIZER_RE" "$f" | sed 's/^/    /'
			return 0
		fi
	done
	return 1
}

# run_binary KIND NAME BINARY: a unit test or stress program; its log is
# LOGS/NAME.log with the / of NAME as a -.
run_binary() {
	local kind=$1 name=$2 bin=$3 log=$LOGS/${2//\//-}.log rc=0 t0 t1
	if [ ! -x "$bin" ]; then
		: >"$log"
		flunk "$name" "$log" "$kind binary $bin was not built"
		return
	fi
	t0=$(date +%s)
	timeout -k 10 600 "$bin" >"$log" 2>&1 || rc=$?
	t1=$(date +%s)
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		flunk "$name" "$log" "timed out after 600 s"
	elif [ "$rc" != 0 ]; then
		flunk "$name" "$log" "exit status $rc"
	elif sanitizer_report "$log"; then
		flunk "$name" "$log" "sanitizer report (exit status 0)"
	else
		pass "$name" $((t1 - t0))
	fi
}

# sweep NAME: after a test that could not clean up (killed at its time
# limit), take down what its state file names: its daemons (only when they
# are still this build's replicafs), its mounts, the RGW instances it
# started (scripts/rgw.sh stop), its temporary directory.
sweep() {
	local state=$LOGS/$1-daemons/state kind arg exe
	[ -f "$state" ] || return 0
	while read -r kind arg; do
		[ "$kind" = pid ] || continue
		exe=$(readlink "/proc/$arg/exe" 2>/dev/null) || continue
		[ "$exe" = "$B/replicafs" ] && kill -9 "$arg" 2>/dev/null
	done <"$state"
	sleep 0.5
	tac "$state" | while read -r kind arg; do
		[ "$kind" = mount ] || continue
		if awk -v m="$arg" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; then
			fusermount3 -u -z "$arg" 2>/dev/null || umount -l "$arg" 2>/dev/null
		fi
	done
	while read -r kind arg; do
		[ "$kind" = rgw ] || continue
		[ -f "$arg/pids" ] && "$ROOT/scripts/rgw.sh" stop "$arg" >/dev/null 2>&1
	done <"$state"
	while read -r kind arg; do
		[ "$kind" = tmp ] || continue
		case $arg in
		/tmp/replicafs-*) rm -rf --one-file-system "$arg" ;;
		esac
	done <"$state"
	echo "    (swept what $1 left behind)"
}

NOPT_TESTS=(test_basic test_versions test_cp_rsync test_bigfile test_crash
	test_enospc test_sqlite test_parallel test_acl)
NOURING_TESTS=(test_basic test_cp_rsync test_parallel)

# run_integration SCRIPT [nopt|nouring]: run one integration test, with
# that mount option added (named NAME-nopt for nopassthrough).
run_integration() {
	local t=$1 name log limit rc=0 t0 t1 opts=${TEST_MOUNT_OPTS:-}
	local cp_src=${CP_SRC:-} rounds=${CRASH_ROUNDS:-}
	name=$(basename "$t" .sh)
	if [ -n "${2:-}" ]; then
		cp_src=$rerun_cp_src
		rounds=${RERUN_CRASH_ROUNDS:-8}
	fi
	limit=$(time_limit "$name")
	if [ "${2:-}" = nopt ]; then
		name=$name-nopt
		opts=${opts:+$opts,}nopassthrough
	elif [ -n "${2:-}" ]; then
		name=$name-$2
		opts=${opts:+$opts,}$2
	fi
	log=$LOGS/$name.log
	mkdir -p "$LOGS/$name-daemons"
	t0=$(date +%s)
	REPLICAFS=$B/replicafs RFS_LOG_DIR=$LOGS/$name-daemons \
		TEST_MOUNT_OPTS=$opts CP_SRC=$cp_src CRASH_ROUNDS=$rounds \
		timeout -k 15 "$limit" bash "$t" >"$log" 2>&1 </dev/null || rc=$?
	t1=$(date +%s)
	sweep "$name"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		flunk "$name" "$log" "timed out after $limit s"
	elif [ "$rc" != 0 ]; then
		flunk "$name" "$log" "exit status $rc"
	elif sanitizer_report "$log" "$LOGS/$name-daemons"/*.log; then
		flunk "$name" "$log" "sanitizer report"
	else
		pass "$name" $((t1 - t0))
	fi
}

rerun_cp_src=${RERUN_CP_SRC:-/usr/include/linux}
[ -d "$rerun_cp_src" ] || rerun_cp_src=

# The integration runs still to start, each "SCRIPT" or "SCRIPT OPT".
queue=()

# queue_tests OPT NAME...: queue the integration tests NAME; with OPT, as
# second runs named NAME-OPT (run_integration SCRIPT OPT).
queue_tests() {
	local opt=$1 n t
	shift
	for n in "$@"; do
		t=tests/integration/$n.sh
		[ -e "$t" ] || { flunk "$n${opt:+-$opt}" /dev/null "no $t"; continue; }
		selected "$n${opt:+-$opt}" || continue
		queue+=("$t${opt:+ $opt}")
	done
}

# The slowest integration tests (two to three minutes each under the
# sanitizers), started first so that the last to end is a short one.
SLOW_FIRST=(test_cp_rsync test_s3 test_crash)

# run_queue: run what is queued, TEST_JOBS at a time; print each test's
# lines when it ends.
run_queue() {
	local jobs=${TEST_JOBS:-} item n=0 done_pid
	local -A out_of=()
	if [ -z "$jobs" ]; then
		jobs=$(nproc)
		[ "$jobs" -gt 2 ] && jobs=2
	fi
	for item in "${queue[@]}"; do
		while [ "${#out_of[@]}" -ge "$jobs" ]; do
			reap
		done
		n=$((n + 1))
		# shellcheck disable=SC2086 # "SCRIPT OPT" is two words
		run_integration $item >"$LOGS/.run-$n" 2>&1 &
		out_of[$!]=$LOGS/.run-$n
	done
	while [ "${#out_of[@]}" -gt 0 ]; do
		reap
	done
}

# reap: wait for one of run_queue's tests to end, and print its lines.
reap() {
	done_pid=
	wait -n -p done_pid
	if [ -z "$done_pid" ] || [ -z "${out_of[$done_pid]:-}" ]; then
		echo "test.sh: lost track of a test run" >&2
		exit 2
	fi
	cat "${out_of[$done_pid]}"
	rm -f "${out_of[$done_pid]}"
	unset "out_of[$done_pid]"
}

# 1. Unit tests and stress programs (named unit/NAME and stress/NAME).
n_unit=0
for src in tests/unit/test_*.c; do
	[ -e "$src" ] || continue
	n_unit=$((n_unit + 1))
	name=$(basename "$src" .c)
	selected "unit/$name" || continue
	run_binary "unit test" "unit/$name" "$B/tests/$name"
done
for src in tests/stress/*.c; do
	[ -e "$src" ] || continue
	name=$(basename "$src" .c)
	selected "stress/$name" || continue
	run_binary "stress program" "stress/$name" "$B/tests/$name"
done
[ "$n_unit" -gt 0 ] || echo "(no unit tests in tests/unit/)"

# 2. Integration tests on real mounts.
if [ "${UNIT_ONLY:-0}" != 1 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "note: the integration tests expect root (chown, tmpfs mounts)"
	fi
	URING_PARAM=/sys/module/fuse/parameters/enable_uring
	if [ -w "$URING_PARAM" ] && [ "$(cat "$URING_PARAM")" != Y ]; then
		uring_was=$(cat "$URING_PARAM")
		trap 'echo "$uring_was" >"$URING_PARAM"' EXIT
		echo Y >"$URING_PARAM" &&
			echo "note: FUSE over io_uring turned on for the tests" \
				"($URING_PARAM); it goes back to $uring_was after"
	fi
	order=("${SLOW_FIRST[@]}")
	for t in tests/integration/test_*.sh; do
		[ -e "$t" ] || continue
		n=$(basename "$t" .sh)
		[[ " ${SLOW_FIRST[*]} " == *" $n "* ]] || order+=("$n")
	done
	queue_tests "" "${order[@]}"
	queue_tests nopt "${NOPT_TESTS[@]}"
	queue_tests nouring "${NOURING_TESTS[@]}"
	run_queue
fi

passed=$(grep -c '^PASS ' "$RESULTS")
failed=$(grep -c '^FAIL ' "$RESULTS")
echo
[ "$failed" = 0 ] ||
	echo "failed: $(sed -n 's/^FAIL //p' "$RESULTS" | tr '\n' ' ')(logs in $LOGS)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
