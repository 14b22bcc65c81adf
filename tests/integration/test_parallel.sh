#!/bin/bash
#
# test_parallel.sh - 8 processes writing 200 distinct files each at once
# (in one shared directory and in their own), then 8 readers at once: every
# file has its content, and the store passes `replicafs check --deep` after
# the unmount.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

P=8
N=200

setup
mount_fs
B=$MNT/bkt
mkdir "$B" "$B/shared"

# size_of W I: the size of file I of writer W (in SIZE), mostly small,
# some bigger.  The content of a file is gen_small SIZE W.I.
size_of() {
	if [ $(($2 % 25)) = 0 ]; then
		SIZE=$((300000 + $1 * 1000 + $2))
	else
		SIZE=$((($1 * 7919 + $2 * 104729) % 20000 + 1))
	fi
}

# path_of W I: where file I of writer W goes (in FILE): half in the shared
# directory, half in the writer's own.
path_of() {
	if [ $(($2 % 2)) = 0 ]; then
		FILE=$B/shared/w${1}_$2
	else
		FILE=$B/own$1/f$2
	fi
}

# writer W: N files.
writer() {
	local w=$1 i
	mkdir "$B/own$w"
	for i in $(seq 1 $N); do
		size_of "$w" "$i"
		path_of "$w" "$i"
		gen_small "$SIZE" "$w.$i" >"$FILE"
	done
}

# verify W: every file of writer W has its content (one python process
# reads them all).
verify() {
	local w=$1 i
	for i in $(seq 1 $N); do
		size_of "$w" "$i"
		path_of "$w" "$i"
		printf '%s %s %s\n' "$FILE" "$SIZE" "$w.$i"
	done | "$PYTHON" -c '
import sys
bad = 0
for line in sys.stdin:
    path, size, seed = line.split()
    size = int(size)
    unit = (seed + ":").encode()
    want = (unit * (size // len(unit) + 1))[:size]
    try:
        with open(path, "rb") as f:
            got = f.read()
    except OSError as e:
        got = None
        print("cannot read %s: %s" % (path, e))
    if got != want:
        bad += 1
        if got is not None:
            print("wrong content: %s (%d bytes, expected %d)" % (path, len(got), size))
sys.exit(1 if bad else 0)'
}

# run_all FUNCTION: FUNCTION 1..P at once; fail if any failed.
run_all() {
	local pids=() w bad=0
	for w in $(seq 1 $P); do
		"$1" "$w" &
		pids+=($!)
		track_pid $!
	done
	for w in $(seq 1 $P); do
		wait "${pids[w - 1]}" || { log "$1 $w failed"; bad=$((bad + 1)); }
	done
	BG_PIDS=()
	[ "$bad" = 0 ] || fail "$bad of $P ${1}s failed (see above)"
}

step "$P writers x $N files at once"
t0=$SECONDS
run_all writer
ok "$((P * N)) files written in $((SECONDS - t0)) s"
assert_eq $((P * N / 2)) "$(find "$B/shared" -type f | wc -l)" "files in the shared directory"
assert_eq $((P * N)) "$(find "$B" -type f | wc -l)" "files in the bucket"

step "$P readers at once"
t0=$SECONDS
run_all verify
ok "all $((P * N)) files verified in $((SECONDS - t0)) s"

step "$P processes overwriting and renaming at once"
# mover W: overwrite its own files, and rename them within its directory.
mover() {
	local w=$1 i
	for i in $(seq 1 2 39); do
		printf 'overwritten %d %d\n' "$w" "$i" >"$B/own$w/f$i"
		mv "$B/own$w/f$i" "$B/own$w/moved$i"
	done
}
run_all mover
for w in $(seq 1 $P); do
	for i in $(seq 1 2 39); do
		assert_eq "overwritten $w $i" "$(cat "$B/own$w/moved$i")" "own$w/moved$i"
		assert_missing "$B/own$w/f$i"
	done
done
ok "overwrites and renames"

step "files made and removed while another process lists the folder"
# A READDIRPLUS made from a listing taken before a name was removed gave
# the kernel an entry for it: stat showed the name for a second, and an
# O_CREAT open of it failed with ENOENT (half the creates under `ls -f`).
mkdir "$B/listed"
for i in $(seq 1 1000); do echo x >"$B/listed/s$i"; done
( while :; do ls -f "$B/listed" >/dev/null; done ) &
lister=$!
out=$("$PYTHON" - "$B/listed" <<'EOF'
import errno, os, sys, time
d, end, made, failed = sys.argv[1], time.time() + 3, 0, []
while time.time() < end:
    p = "%s/u%d" % (d, made % 50)
    try:
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    except OSError as e:
        failed.append(errno.errorcode[e.errno])
        continue
    made += 1
    os.unlink(p)
print(made, len(failed), " ".join(sorted(set(failed))))
EOF
)
kill "$lister"
wait "$lister" 2>/dev/null || true
read -r made nfail kinds <<<"$out"
log "   $made files made and removed, $nfail creates failed ($kinds)"
[ "$made" -ge 100 ] || fail "only $made creates in 3 s"
assert_eq 0 "$nfail" "creates that failed while the folder was listed ($kinds)"
ok "no create failed, none of $made"

step "check --deep after the unmount, and the files after a remount"
unmount_fs
check_store --deep
mount_fs
for w in $(seq 1 $P); do
	for i in $(seq 1 2 39); do
		mv "$B/own$w/moved$i" "$B/own$w/f$i"
		size_of "$w" "$i"
		gen_small "$SIZE" "$w.$i" >"$B/own$w/f$i"
	done
done
run_all verify
ok "all files verified after a remount"
unmount_fs
check_store --deep
