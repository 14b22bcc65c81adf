#!/bin/bash
#
# test_passfs.sh - the pass-through file system that `make bench` measures
# as the floor of any FUSE mount (tests/bench/passfs.c) is a faithful one
# for the bench's workloads: the small-file loop, cp -r and rsync -a of
# /usr/include (contents, types, sizes, modes, owners, mtimes, symlinks as
# links), ls -lR, a rename, rm -rf; and it unmounts cleanly.  A floor that
# quietly failed would make the bench's comparison meaningless.  All of it
# twice: as the bench runs it, and with -o passthrough (where the kernel
# reads and writes the files below it itself), which also gets a file read
# through one descriptor while another appends to it, and an mmap write.
#
# PASSFS=PATH tests another build (default: passfs beside $REPLICAFS).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PASSFS=${PASSFS:-$(dirname "$REPLICAFS")/passfs}
[ -x "$PASSFS" ] || fail "no passfs at $PASSFS (make SANITIZE=1 build-san/passfs)"
SRC_TREE=/usr/include

setup
F=$T/floor

# floor_check [-o passthrough]: mount passfs so, and check it.
floor_check() {
	step "mount passfs $* on an empty directory"
	rm -rf "$F"
	mkdir -p "$F"
	MOUNT_COUNT=$((MOUNT_COUNT + 1))
	"$PASSFS" "$@" "$F" "$MNT" >"$(daemon_log)" 2>&1 &
	P=$!
	track_pid "$P"
	track_mount "$MNT"
	mounted_or_gone() { is_mounted "$MNT" || ! pid_running "$P"; }
	poll 10 mounted_or_gone || fail "passfs did not mount $MNT in 10 s"
	is_mounted "$MNT" || { show_daemon_log; fail "passfs exited before mounting"; }
	assert_eq "$(awk -v m="$MNT" '$2 == m { print $3 }' /proc/self/mounts)" \
		fuse.passfs "the mount's type"
	ok "mounted (pid $P)"

	step "the bench's small-file loop"
	for ((i = 0; i < 5; i++)); do
		mkdir "$MNT/d$i"
		for ((j = 0; j < 40; j++)); do
			gen_small 4096 "$i.$j" >"$MNT/d$i/f$j"
		done
	done
	for ((i = 0; i < 5; i++)); do
		for ((j = 0; j < 40; j += 13)); do
			assert_eq "$(cat "$F/d$i/f$j")" "$(gen_small 4096 "$i.$j")" \
				"d$i/f$j in the source directory"
		done
	done
	assert_eq "$(find "$MNT" -type f | wc -l)" 200 "files seen through the mount"
	# shellcheck disable=SC2010  # ls -lR itself is what is tested
	assert_eq "$(ls -lR "$MNT" | grep -c '^-rw')" 200 "files in ls -lR"
	ok "200 files of 4 KiB, the same through the mount and below it"

	step "cp -r and rsync -a of $SRC_TREE"
	cp -r "$SRC_TREE" "$MNT/cp"
	diff -r --no-dereference "$SRC_TREE" "$MNT/cp" >"$T/diff.out" 2>&1 ||
		{ head -n 20 "$T/diff.out"; fail "cp -r: the copy differs"; }
	rsync -a "$SRC_TREE/" "$MNT/rsync/"
	diff -r --no-dereference "$SRC_TREE" "$MNT/rsync" >"$T/diff.out" 2>&1 ||
		{ head -n 20 "$T/diff.out"; fail "rsync -a: the copy differs"; }
	stat_list "$SRC_TREE" >"$T/src.stat"
	stat_list "$MNT/rsync" >"$T/mnt.stat"
	diff "$T/src.stat" "$T/mnt.stat" >"$T/diff.out" ||
		{ head -n 20 "$T/diff.out"; fail "rsync -a: stat differs (< source, > copy)"; }
	ok "same contents; rsync -a kept types, sizes, modes, owners and mtimes"

	if [ "$*" = "-o passthrough" ]; then
		grep -q "files open in passthrough mode" "$(daemon_log)" ||
			{ show_daemon_log; fail "passfs -o passthrough opened no file in passthrough mode"; }
		step "passthrough: a reader and an appender at once, an mmap write"
		echo first >"$MNT/pt"
		exec 8<"$MNT/pt"
		echo second >>"$MNT/pt"
		assert_eq "$(cat <&8)" "$(printf 'first\nsecond')" "read through the older descriptor"
		exec 8<&-
		assert_eq "$(cat "$F/pt")" "$(printf 'first\nsecond')" "the file below the mount"
		python3 - "$MNT/mm" <<-'PY'
	import mmap, os, sys
	fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
	os.ftruncate(fd, 8192)
	m = mmap.mmap(fd, 8192)
	m[4096:4101] = b"mmap!"
	m.flush()
	m.close()
	os.close(fd)
	PY
		assert_eq "$(dd if="$F/mm" bs=1 skip=4096 count=5 2>/dev/null)" "mmap!" "mmap write below the mount"
		rm "$MNT/pt" "$MNT/mm"
		ok "both descriptors see one file; the mmap write reached it"
	fi

	step "rename, rm -rf, unmount"
	mv "$MNT/cp" "$MNT/moved"
	assert_missing "$MNT/cp"
	assert_exists "$MNT/moved/stdio.h"
	rm -rf "$MNT/moved" "$MNT/rsync" "$MNT"/d*
	assert_eq "$(find "$MNT" -mindepth 1 | wc -l)" 0 "entries left in the mount"
	assert_eq "$(find "$F" -mindepth 1 | wc -l)" 0 "entries left in the source"
	fusermount3 -u "$MNT"
	rc=0
	wait "$P" || rc=$?
	assert_eq "$rc" 0 "passfs exit status after fusermount3 -u"
	ok "empty, unmounted, passfs exited with 0"
}

floor_check
floor_check -o passthrough
