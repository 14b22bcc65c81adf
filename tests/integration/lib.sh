# shellcheck shell=bash
#
# lib.sh - what every integration test of replicafs shares.
#
# A test is a bash script that sources this file, calls setup(), mounts a
# real replicafs daemon on a temporary directory and uses it the way a user
# would, with ordinary tools.  The design:
#
#   - Everything a test makes lives under one temporary directory T
#     (mktemp -d under /tmp): the store (T/store), the mount point (T/mnt),
#     reference files on the native disk, and one log per daemon
#     (T/daemon.N.log, its stdout and stderr).
#   - The daemon is always started in the foreground (`mount -f`) in the
#     background of the test, so that the test knows its PID: it can wait
#     for it to exit after an unmount and check its exit status, or kill -9
#     it to simulate a crash.
#   - Every check fails fast: fail() prints what was expected and what was
#     got and exits; an unexpected failing command is reported with its line
#     by the ERR trap.
#   - The EXIT trap (cleanup) unmounts what the test mounted, kills only the
#     PIDs the test started, scans every daemon log for sanitizer reports
#     (a report fails the test even when everything else passed), copies the
#     logs to $RFS_LOG_DIR when the harness gave one, and removes T.
#   - For the harness (scripts/test.sh), the test also writes a state file,
#     $RFS_LOG_DIR/state, naming its temporary directory, its mounts and its
#     daemons' PIDs, so that after a test killed at its time limit (when no
#     trap can run) the harness can still unmount and clean up.
#
# Environment:
#   REPLICAFS    the binary to test (default: build-san/replicafs of this
#                repository)
#   RFS_LOG_DIR  a directory where the test leaves its logs (optional)
#   KEEP_TMP=1   keep T after the test, for debugging

set -Eeuo pipefail
shopt -s inherit_errexit

TEST_NAME=$(basename "$0" .sh)
RFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPLICAFS=${REPLICAFS:-$RFS_ROOT/build-san/replicafs}
case $REPLICAFS in /*) ;; *) REPLICAFS=$PWD/$REPLICAFS ;; esac

# The sanitizers' settings, for the daemon and for every command.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# Nothing of the user's configuration may change what git or tools do.
export LC_ALL=C TZ=UTC
# The system's python starts in a tenth of the time of a pyenv shim.
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

# What a sanitizer report starts with, in a log (grep -E).
RFS_SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'

T=""		# the test's temporary directory
STORE=""	# the store (may be changed before mount_fs)
MNT=""		# the mount point
DAEMON_PID=""	# the running daemon, if any
DAEMON_RC=0	# exit status of the last daemon that wait_daemon_exit reaped
MOUNT_COUNT=0	# how many daemons this test started
BG_PIDS=()	# other background processes this test started
EXTRA_MOUNTS=()	# other mounts (tmpfs) to take down at the end, last first
RFS_STATE=""	# the state file for the harness, if any

# ---------------------------------------------------------------------------
# Messages

log() { printf '%s\n' "$*"; }
step() { printf '\n== [%ds] %s\n' "$SECONDS" "$*"; }
ok() { printf '   ok: %s\n' "$*"; }

fail() {
	printf '\nFAIL [%s]: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

on_err() {
	local rc=$1 line=$2 cmd=$3
	printf '\nFAIL [%s]: line %s: command exited with status %s: %s\n' \
		"$TEST_NAME" "$line" "$rc" "$cmd" >&2
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

# ---------------------------------------------------------------------------
# Set-up and clean-up

state_note() {
	[ -n "$RFS_STATE" ] || return 0
	printf '%s %s\n' "$1" "$2" >>"$RFS_STATE"
}

# setup: make T, STORE and MNT, install the traps.
setup() {
	[ -x "$REPLICAFS" ] ||
		fail "replicafs binary '$REPLICAFS' is missing or not executable (build it: make SANITIZE=1 build-san/replicafs)"
	command -v fusermount3 >/dev/null || fail "fusermount3 is not installed"
	T=$(mktemp -d "/tmp/replicafs-$TEST_NAME.XXXXXX")
	STORE=$T/store
	MNT=$T/mnt
	mkdir -p "$MNT" "$T/ref"
	if [ -n "${RFS_LOG_DIR:-}" ]; then
		mkdir -p "$RFS_LOG_DIR"
		RFS_STATE=$RFS_LOG_DIR/state
		: >"$RFS_STATE"
		state_note tmp "$T"
	fi
	trap cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	log "test $TEST_NAME: binary $REPLICAFS, temporary directory $T"
}

is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# pid_running PID: true while PID exists and is not a zombie.
pid_running() {
	local s
	s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$s" ] && [ "${s%% *}" != Z ]
}

# track_pid PID: a background process of the test, killed by cleanup.
# poll SECONDS COMMAND [ARG...]: run COMMAND every 0.05 s until it succeeds,
# for at most SECONDS; 1 if it never did.  `poll 5 not is_mounted "$M"`
# waits for the opposite; arguments are expanded once, so a condition on
# a command's output goes in a function.
poll() {
	local end=$((${EPOCHREALTIME/./} + $1 * 1000000))
	shift
	until "$@"; do
		[ "${EPOCHREALTIME/./}" -lt "$end" ] || return 1
		sleep 0.05
	done
}
not() { ! "$@"; }

# batch_wait JOB SECONDS: until batch job JOB (of the store behind $MNT)
# is no longer Active; fails after SECONDS.
job_active() {
	"$REPLICAFS" batch status "$1" "$MNT" --json | "$PYTHON" -c \
		'import json, sys; sys.exit(json.load(sys.stdin)["state"] != "Active")'
}
batch_wait() {
	poll "$2" not job_active "$1" ||
		fail "batch job $1 still Active after $2 s: $("$REPLICAFS" batch status "$1" "$MNT")"
}

track_pid() { BG_PIDS+=("$1"); }

# track_mount DIR: a mount of the test (not replicafs), taken down by
# cleanup after the replicafs mount.
track_mount() {
	EXTRA_MOUNTS+=("$1")
	state_note mount "$1"
}

# scan_logs: print every sanitizer report in the daemon logs; false if any.
scan_logs() {
	local f found=0
	for f in "$T"/daemon.*.log; do
		[ -e "$f" ] || continue
		if grep -qE "$RFS_SANITIZER_RE" "$f"; then
			printf '\nSanitizer report in %s:\n' "$(basename "$f")" >&2
			grep -E -A 30 "$RFS_SANITIZER_RE" "$f" | head -n 80 >&2
			found=1
		fi
	done
	return $found
}

cleanup() {
	local rc=$? p i m
	set +eE
	trap - ERR
	cd /
	for p in "${BG_PIDS[@]}"; do
		pid_running "$p" && kill -9 "$p" 2>/dev/null
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ -n "$DAEMON_PID" ] && pid_running "$DAEMON_PID"; then
		fusermount3 -u "$MNT" 2>/dev/null
		for i in $(seq 100); do
			pid_running "$DAEMON_PID" || break
			sleep 0.1
		done
		if pid_running "$DAEMON_PID"; then
			log "cleanup: daemon $DAEMON_PID did not exit; kill -9"
			kill -9 "$DAEMON_PID" 2>/dev/null
		fi
		{ wait "$DAEMON_PID"; } 2>/dev/null
	fi
	if [ -n "$MNT" ] && is_mounted "$MNT"; then
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	for ((i = ${#EXTRA_MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${EXTRA_MOUNTS[i]}
		is_mounted "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	if [ -n "$T" ]; then
		if ! scan_logs; then
			printf '\nFAIL [%s]: a sanitizer reported an error in the daemon\n' "$TEST_NAME" >&2
			rc=1
		fi
		if [ -n "${RFS_LOG_DIR:-}" ]; then
			cp "$T"/daemon.*.log "$RFS_LOG_DIR"/ 2>/dev/null
		fi
		if [ "${KEEP_TMP:-0}" = 1 ]; then
			log "keeping $T"
		else
			rm -rf --one-file-system "$T"
		fi
	fi
	[ -n "$RFS_STATE" ] && rm -f "$RFS_STATE"
	if [ "$rc" = 0 ]; then
		log "test $TEST_NAME: all checks passed"
	else
		log "test $TEST_NAME: FAILED (status $rc)"
	fi
	exit "$rc"
}

# ---------------------------------------------------------------------------
# The daemon

daemon_log() { printf '%s/daemon.%d.log' "$T" "$MOUNT_COUNT"; }

show_daemon_log() {
	local f
	f=$(daemon_log)
	[ -e "$f" ] || return 0
	printf -- '--- last lines of %s:\n' "$(basename "$f")" >&2
	tail -n 30 "$f" >&2
	printf -- '---\n' >&2
}

# mount_fs [OPT[,OPT...]]: start `replicafs mount -f` on STORE and MNT in the
# background and wait (20 s at most) until the mount answers.  The options
# in TEST_MOUNT_OPTS (scripts/test.sh passes it on) come first.
mount_fs() {
	local opts=() o i
	[ -z "$DAEMON_PID" ] || fail "mount_fs: a daemon ($DAEMON_PID) is already running"
	is_mounted "$MNT" && fail "mount_fs: $MNT is already mounted"
	o=${TEST_MOUNT_OPTS:-}
	[ $# -gt 0 ] && [ -n "$1" ] && o=${o:+$o,}$1
	[ -n "$o" ] && opts=(-o "$o")
	MOUNT_COUNT=$((MOUNT_COUNT + 1))
	"$REPLICAFS" mount -f "${opts[@]}" "$STORE" "$MNT" >"$(daemon_log)" 2>&1 &
	DAEMON_PID=$!
	state_note pid "$DAEMON_PID"
	state_note mount "$MNT"
	for i in $(seq 200); do
		if ! pid_running "$DAEMON_PID"; then
			local rc=0
			wait "$DAEMON_PID" || rc=$?
			DAEMON_PID=""
			show_daemon_log
			fail "mount_fs: 'replicafs mount -f ${opts[*]} $STORE $MNT' exited with status $rc before the mount was ready"
		fi
		if is_mounted "$MNT" && timeout 5 stat "$MNT/" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	show_daemon_log
	fail "mount_fs: $MNT not ready 20 s after starting the daemon (pid $DAEMON_PID)"
}

# wait_daemon_exit SECONDS: wait for the daemon to exit; its exit status is
# left in DAEMON_RC.  (Not in a subshell: only this shell can reap it.)
wait_daemon_exit() {
	local limit=$1 i
	DAEMON_RC=0
	for i in $(seq $((limit * 10))); do
		pid_running "$DAEMON_PID" || break
		sleep 0.1
	done
	if pid_running "$DAEMON_PID"; then
		show_daemon_log
		fail "the daemon (pid $DAEMON_PID) was still running $limit s after its unmount"
	fi
	wait "$DAEMON_PID" || DAEMON_RC=$?
	DAEMON_PID=""
}

# unmount_fs: fusermount3 -u (retried while busy), then the daemon must exit
# within 60 s, with status 0 and no sanitizer report.
unmount_fs() {
	local i
	[ -n "$DAEMON_PID" ] || fail "unmount_fs: no daemon is running"
	cd /
	for i in $(seq 50); do
		fusermount3 -u "$MNT" 2>/dev/null && break
		sleep 0.2
	done
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT" || true
		fail "unmount_fs: fusermount3 -u $MNT failed for 10 s (busy?)"
	fi
	wait_daemon_exit 60
	if [ "$DAEMON_RC" != 0 ]; then
		show_daemon_log
		fail "the daemon exited with status $DAEMON_RC after a clean unmount; expected 0"
	fi
	scan_logs || fail "a sanitizer reported an error in the daemon (see above)"
}

# crash_fs: kill -9 the daemon and reap it; what is left of the mount stays
# (its operations fail with ENOTCONN) until lazy_unmount.
crash_fs() {
	[ -n "$DAEMON_PID" ] || fail "crash_fs: no daemon is running"
	{
		kill -9 "$DAEMON_PID"
		wait "$DAEMON_PID"
	} 2>/dev/null || true
	DAEMON_PID=""
}

# lazy_unmount: take down the mount of a dead daemon.
lazy_unmount() {
	if is_mounted "$MNT"; then
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	! is_mounted "$MNT" || fail "lazy_unmount: $MNT is still mounted"
}

# kill9_fs: crash the daemon (kill -9) and lazily unmount what is left.
kill9_fs() {
	crash_fs
	lazy_unmount
}

# remount [OPTS]: a clean unmount, then a new daemon on the same store.
remount() {
	unmount_fs
	mount_fs "$@"
}

# rfs ARGS...: run a replicafs command; its stderr goes to the test's log.
rfs() { "$REPLICAFS" "$@"; }

# check_store [--deep]: `replicafs check STORE` must pass (mount down).
check_store() {
	local out rc=0
	out=$("$REPLICAFS" check "$STORE" "$@" 2>&1) || rc=$?
	[ "$rc" = 0 ] || fail "replicafs check $STORE $*: status $rc; expected 0; output: $out"
	ok "replicafs check $* passes"
}

# ---------------------------------------------------------------------------
# Versions

# nversions PATH: how many versions (delete markers included) PATH has.
nversions() {
	local out
	out=$("$REPLICAFS" versions "$1")
	printf '%s\n' "$out" | grep -c .
}

# version_field PATH N FIELD: field FIELD (1 = ID, 2 = time, 3 = size,
# 4 = flags) of the Nth version (1 = newest) of PATH.
version_field() {
	local out
	out=$("$REPLICAFS" versions "$1")
	printf '%s\n' "$out" | awk -F'\t' -v n="$2" -v f="$3" 'NR == n { print $f }'
}

# versions_json_get PATH EXPR: a python expression over the parsed JSON
# array `v` of PATH's versions, printed.
versions_json_get() {
	local out
	out=$("$REPLICAFS" versions "$1" --json)
	printf '%s' "$out" | "$PYTHON" -c '
import json, sys
v = json.load(sys.stdin)
r = eval(sys.argv[1])
print(r if not isinstance(r, bool) else str(r).lower())' "$2"
}

# ---------------------------------------------------------------------------
# Assertions

# assert_eq EXPECTED GOT WHAT
assert_eq() {
	[ "$1" == "$2" ] || fail "$3: expected '$1', got '$2'"
}

# assert_same_file EXPECTED GOT [WHAT]: same bytes.
assert_same_file() {
	local why
	[ -e "$2" ] || fail "${3:-$2}: $2 does not exist"
	if ! cmp -s "$1" "$2"; then
		why=$(cmp "$1" "$2" 2>&1 | head -n 1) || true
		fail "${3:-$2}: content differs from $1 (size $(stat -c %s "$1") vs $(stat -c %s "$2")): $why"
	fi
}

assert_exists() { [ -e "$1" ] || [ -L "$1" ] || fail "${2:-$1} should exist and does not"; }
assert_missing() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		fail "${2:-$1} should not exist and does"
	fi
}

# expect_error MESSAGE CMD...: CMD must fail and say MESSAGE (e.g. the
# strerror text "Operation not permitted").
expect_error() {
	local msg=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "'$*' succeeded; expected it to fail with '$msg'"
	[[ $out == *"$msg"* ]] ||
		fail "'$*' failed (status $rc) with '$out'; expected '$msg'"
	ok "'$*' fails: $msg"
}

# expect_fail CMD...: CMD must fail, whatever the error.
expect_fail() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "'$*' succeeded; expected it to fail"
	ok "'$*' fails: $out"
}

# ---------------------------------------------------------------------------
# Data

# gen_data SIZE SEED: SIZE bytes of reproducible pseudo-random data (AES-CTR
# of zeros with the key SEED), fast enough for gigabytes.  No pipe in it is
# cut short, so it is safe under pipefail.
gen_data() {
	head -c "$1" /dev/zero |
		openssl enc -aes-128-ctr -K "$(printf '%032x' "$2")" \
			-iv 00000000000000000000000000000000
}

# gen_small SIZE SEED: SIZE bytes of text that follows from SEED, made in
# the shell itself (no process: for thousands of small files).
gen_small() {
	local s="$2:"
	while [ ${#s} -lt "$1" ]; do s=$s$s; done
	printf '%s' "${s:0:$1}"
}

sha_of() {
	local s
	s=$(sha256sum <"$1")
	printf '%s\n' "${s%% *}"
}

# stat_list DIR [nodirtime]: one line per entry under DIR (DIR itself
# included): name, type, size (not for directories, whose size is the file
# system's own business), mode, uid, gid and mtime (not for directories with
# nodirtime); sorted by name.
stat_list() {
	(cd "$1" && find . -print0 | sort -z |
		xargs -0 stat -c '%n|%F|%s|%a|%u|%g|%Y' |
		awk -F'|' -v OFS='|' -v nodt="${2:-}" '
			$2 == "directory" { $3 = "-"; if (nodt != "") $7 = "-" }
			{ print }')
}

# repeat STRING N: STRING N times.
repeat() {
	local out="" i
	for ((i = 0; i < $2; i++)); do out+=$1; done
	printf '%s' "$out"
}
