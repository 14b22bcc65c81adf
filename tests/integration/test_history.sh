#!/bin/bash
#
# test_history.sh - history through ordinary file tools: MNT/.versions
# (one file per version, rm of a delete marker's entry, cp of a version to
# restore it), MNT/.at/TIME (a tree as it stood, checked with diff -r and
# cp -a), both hidden from find, rsync and du; the attributes of a version
# as xattrs; and the command-line equivalents: restore, undelete,
# rm-version.  Ends with a key of 10,000 versions, listed through the
# mount.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
mount_fs acl	# a step sets an ACL; the store holds none yet
B=$MNT/bkt
V=$MNT/.versions/bkt
mkdir "$B"

# now_iso: the time now, as .at takes it (UTC, milliseconds); the clock
# moves on before and after, so that the versions written before it and
# after it are on their own side.
now_iso() {
	sleep 0.02
	date -u +%Y-%m-%dT%H:%M:%S.%3NZ
	sleep 0.02
}

md5_of() {
	local s
	s=$(md5sum <"$1")
	printf '"%s"\n' "${s%% *}"
}

xattr() { getfattr --absolute-names --only-values -n "$1" "$2"; }

# -------------------------------------------------------------------------
step "three writes: three entries in .versions, named by time and version ID"
F=$B/doc
for i in 1 2 3; do
	gen_data $((1000 * i + 7)) $((20 + i)) >"$T/ref/v$i"
	cat "$T/ref/v$i" >"$F"
done
mapfile -t E < <(ls "$V/doc")
assert_eq 3 "${#E[@]}" "entries in .versions/bkt/doc"
for i in 1 2 3; do
	e=${E[i - 1]}
	[[ $e =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z_[0-9a-z]+$ ]] ||
		fail "entry name '$e' is not TIME_VERSIONID"
	assert_eq "$(version_field "$F" $((4 - i)) 1)" "${e#*_}" "version ID in the name of entry $i (ls: oldest first)"
	assert_eq "$(version_field "$F" $((4 - i)) 2)" "${e%%_*}" "time in the name of entry $i"
	assert_same_file "$T/ref/v$i" "$V/doc/$e" "cat of entry $i"
	assert_eq "$(stat -c %s "$T/ref/v$i")" "$(stat -c %s "$V/doc/$e")" "size of entry $i"
done
assert_eq "$(stat -c '%a %u %g %Y' "$F")" "$(stat -c '%a %u %g %Y' "$V/doc/${E[2]}")" \
	"mode, owner and mtime of the newest entry (the live file's)"
# Each version keeps its own mtime (a rewrite does not touch the last).
assert_eq "$(ls -t "$V/doc" | tac | tr '\n' ' ')" "$(ls "$V/doc" | tr '\n' ' ')" \
	"ls -t and ls sort the entries the same way"
ok "names, contents and attributes"

step "extended attributes of a live file and of each version"
assert_eq true "$(xattr system.replicafs.is-latest "$F")" "is-latest of the live file"
assert_eq "$(stat -c %s "$F")" "$(xattr system.replicafs.size "$F")" "size of the live file"
assert_eq "$(md5_of "$F")" "$(xattr system.replicafs.etag "$F")" "ETag of the live file"
assert_eq "$(sha_of "$F")" "$(xattr system.replicafs.sha256 "$F")" "sha256 of the live file"
for i in 1 2 3; do
	e=$V/doc/${E[i - 1]}
	assert_eq "${E[i - 1]#*_}" "$(xattr system.replicafs.version-id "$e")" "version-id of entry $i"
	assert_eq "$([ $i = 3 ] && echo true || echo false)" "$(xattr system.replicafs.is-latest "$e")" \
		"is-latest of entry $i"
	assert_eq "$(md5_of "$T/ref/v$i")" "$(xattr system.replicafs.etag "$e")" "ETag of entry $i"
	assert_eq "$(sha_of "$T/ref/v$i")" "$(xattr system.replicafs.sha256 "$e")" "sha256 of entry $i"
	assert_eq "$(stat -c %s "$T/ref/v$i")" "$(xattr system.replicafs.size "$e")" "size xattr of entry $i"
done
names=$(getfattr --absolute-names -d -m - "$V/doc/${E[0]}" | grep -c '^system\.replicafs\.') || true
assert_eq 5 "$names" "attributes listed by getfattr -d -m - on an entry"
# A live file lists only what its stat does not tell: cp -a and tar
# --xattrs ask for each name listed, twice, for every file they copy out.
assert_eq "system.replicafs.etag system.replicafs.sha256 system.replicafs.version-id" \
	"$(getfattr --absolute-names -d -m - "$F" | sed -n 's/^\(system\.replicafs\.[^=]*\)=.*/\1/p' |
		sort | tr '\n' ' ' | sed 's/ $//')" \
	"attributes listed by getfattr -d -m - on the live file"
# The length alone (a buffer of size 0), as those tools ask first, is the
# length of the value.
"$PYTHON" - "$F" <<'PY' || fail "getxattr(size 0) and the values' lengths differ"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.getxattr.restype = ctypes.c_ssize_t
for name in ("etag", "sha256", "version-id", "size", "is-latest"):
    full = "system.replicafs." + name
    n = libc.getxattr(sys.argv[1].encode(), full.encode(), None, ctypes.c_size_t(0))
    v = os.getxattr(sys.argv[1], full)
    if n != len(v):
        sys.exit("%s: getxattr(size 0) says %d, the value has %d bytes" % (full, n, len(v)))
PY
ok "version-id, is-latest, size, sha256 and etag; a live file lists three"
# user.* attributes are per version: set on the live file, they are the
# newest version's; a version written before has its own, and cp -a out
# of .versions or .at takes them along.
echo one >"$B/tagged"
setfattr -n user.colour -v blue "$B/tagged"
echo two >"$B/tagged"	# the new version starts with the key's xattrs
setfattr -n user.colour -v green "$B/tagged"
echo three >"$B/tagged"
setfattr -x user.colour "$B/tagged"
mapfile -t E4 < <(ls "$V/tagged")
assert_eq 3 "${#E4[@]}" "entries of tagged"
assert_eq blue "$(xattr user.colour "$V/tagged/${E4[0]}")" "user.colour of the first version"
assert_eq green "$(xattr user.colour "$V/tagged/${E4[1]}")" "user.colour of the second version"
expect_error "No such attribute" getfattr -n user.colour "$V/tagged/${E4[2]}"
getfattr --absolute-names -d "$V/tagged/${E4[0]}" | grep -q '^user.colour="blue"' ||
	fail "getfattr -d does not list user.colour of a version"
cp -a "$V/tagged/${E4[0]}" "$T/v1.copy"
assert_eq blue "$(xattr user.colour "$T/v1.copy")" "user.colour after cp -a out of .versions"
rm -f "$T/v1.copy"
ok "user.* attributes of each version, in .versions and through cp -a"

# -------------------------------------------------------------------------
step "neither .versions nor .at shows to tools that walk the tree"
ls -a "$MNT" >"$T/ls.out"
! grep -qx -e .versions -e .at "$T/ls.out" || fail "ls -a $MNT shows: $(cat "$T/ls.out")"
find "$MNT" >"$T/find.out"
! grep -q -e '/\.versions' -e '/\.at' "$T/find.out" || fail "find walked into history: $(grep -m3 -e '/\.versions' -e '/\.at' "$T/find.out")"
rsync -a "$MNT/" "$T/rsync/"
assert_missing "$T/rsync/.versions" "rsync -a MNT/ copied .versions"
assert_missing "$T/rsync/.at" "rsync -a MNT/ copied .at"
assert_same_file "$T/ref/v3" "$T/rsync/bkt/doc" "the live file, through rsync -a"
du -s "$MNT" >/dev/null
[ -d "$MNT/.versions" ] || fail "$MNT/.versions does not open when named"
[ -d "$MNT/.at" ] || fail "$MNT/.at does not open when named"
assert_eq bkt "$(ls "$MNT/.versions")" "ls $MNT/.versions"
ok "hidden from ls -a, find, rsync -a and du; open when named"

# -------------------------------------------------------------------------
step "rm leaves a delete marker entry; rm of that entry brings the file back"
rm "$F"
assert_missing "$F" "the removed file"
mapfile -t E < <(ls "$V/doc")
assert_eq 4 "${#E[@]}" "entries after rm"
[[ ${E[3]} == *.deleted ]] || fail "the newest entry '${E[3]}' is not a delete marker's"
assert_eq 0 "$(stat -c %s "$V/doc/${E[3]}")" "size of the marker's entry"
assert_eq "" "$(cat "$V/doc/${E[3]}")" "content of the marker's entry"
assert_eq "$(version_field "$F" 1 1).deleted" "${E[3]#*_}" "the marker's entry is named by its ID"
assert_eq true "$(xattr system.replicafs.is-latest "$V/doc/${E[3]}")" "is-latest of the marker"
expect_fail xattr system.replicafs.sha256 "$V/doc/${E[3]}"
rm "$V/doc/${E[3]}"
assert_same_file "$T/ref/v3" "$F" "the file after rm of its marker's entry"
assert_eq 3 "$(nversions "$F")" "versions after the undelete"
ok "undelete by rm"

step "a data version's entry cannot be removed; nothing else there can change"
expect_error "Operation not permitted" rm "$V/doc/${E[0]}"
expect_error "Operation not permitted" rm -f "$V/doc/${E[0]}"
assert_eq 3 "$(nversions "$F")" "versions after the refused rm"
expect_error "Read-only file system" sh -c "echo x >'$V/doc/new'"
expect_error "Read-only file system" sh -c "echo x >'$V/doc/${E[0]}'"
expect_error "Read-only file system" sh -c "echo x >>'$V/doc/${E[0]}'"
expect_error "Read-only file system" mkdir "$V/doc/sub"
expect_error "Read-only file system" mkdir "$MNT/.versions/newbucket"
expect_error "Read-only file system" mv "$V/doc/${E[0]}" "$V/doc/renamed"
expect_error "Read-only file system" mv "$V/doc/${E[0]}" "$B/moved"
expect_error "Read-only file system" mv "$F" "$V/doc/in"
expect_error "Read-only file system" touch "$V/doc/${E[0]}"
expect_error "Read-only file system" chmod 600 "$V/doc/${E[0]}"
expect_error "Read-only file system" ln -s x "$V/doc/link"
expect_error "Read-only file system" setfattr -n user.x -v 1 "$V/doc/${E[0]}"
expect_error "Read-only file system" rmdir "$V/doc"
expect_error "Read-only file system" rmdir "$MNT/.versions"
expect_error "Read-only file system" mv "$MNT/.at" "$MNT/elsewhere"
assert_same_file "$T/ref/v1" "$V/doc/${E[0]}" "the oldest entry after all that"

step "cp of an old version's entry onto the live path restores it as a new version"
cp "$V/doc/${E[0]}" "$F"
assert_same_file "$T/ref/v1" "$F" "the file after cp of its oldest version"
assert_eq 4 "$(nversions "$F")" "versions after the cp"
assert_eq 4 "$(ls "$V/doc" | wc -l)" "entries after the cp"
assert_eq "$(xattr system.replicafs.sha256 "$V/doc/${E[0]}")" "$(xattr system.replicafs.sha256 "$F")" \
	"the new version's content is the old one's"
# The commands take an entry's path for its key: they took it for a key
# below the file, and said it had no versions.
assert_eq "$(rfs versions "$F")" "$(rfs versions "$V/doc/${E[0]}")" "versions of an entry's path"
assert_eq "$(getfattr --only-values -n system.replicafs.view "$V/doc" 2>/dev/null)" versions \
	"the view of a .versions folder"
getfattr -n system.replicafs.view "$F" >/dev/null 2>&1 && fail "a live file has a history view attribute"
getfattr -d -m - "$V/doc/${E[0]}" | grep -q replicafs.view && fail "the view attribute is listed"
ok "cp of an entry restores it; the commands take an entry's path for its key"

# -------------------------------------------------------------------------
step ".at/TIME at three moments between writes: three states of a tree of 100 files"
W=$B/tree
mkdir -p "$W"
for d in 0 1 2 3 4 5 6 7 8 9; do
	mkdir "$W/d$d"
	for f in 0 1 2 3 4 5 6 7 8 9; do
		gen_small $((10 + d * 10 + f)) "s1 $d $f" >"$W/d$d/f$f"
	done
done
chmod 600 "$W/d1/f1"
chmod 755 "$W/d2/f2"
mkdir -m 700 "$W/private"
ln -s d0/f0 "$W/link"
cp -a "$W" "$T/ref/s1"
T1=$(now_iso)

for f in 0 1 2 3 4 5 6 7 8 9; do
	gen_small 50 "s2 $f" >"$W/d3/f$f"	# 10 new versions
done
rm "$W/d4/f0" "$W/d4/f1" "$W/link"
rm -r "$W/d9"
mkdir "$W/d10"
gen_small 77 "s2 new" >"$W/d10/new"
ln -s ../d10/new "$W/d0/link2"
echo "s2" >>"$W/d5/f5"
cp -a "$W" "$T/ref/s2"
T2=$(now_iso)

gen_small 60 "s3 again" >"$W/d3/f0"
gen_small 61 "s3 back" >"$W/d4/f0"	# deleted at T2, back now
mkdir "$W/d9"
echo "s3" >"$W/d9/only"
rm -r "$W/d10"
rm "$W/d0/link2"
mv "$W/d6" "$W/d6-moved"
cp -a "$W" "$T/ref/s3"
T3=$(now_iso)
echo "after" >"$W/d3/f1"

i=0
for t in "$T1" "$T2" "$T3"; do
	i=$((i + 1))
	A=$MNT/.at/$t/bkt/tree
	[ -d "$A" ] || fail "$A is not a directory"
	if ! diff -r --no-dereference "$T/ref/s$i" "$A" >"$T/diff.out" 2>&1; then
		head -n 30 "$T/diff.out"
		fail "diff -r of state $i and .at/$t (above)"
	fi
	stat_list "$T/ref/s$i" nodirtime >"$T/ref.stat"
	stat_list "$A" nodirtime >"$T/at.stat"
	diff "$T/ref.stat" "$T/at.stat" >"$T/diff.out" ||
		fail "stat of state $i and of .at/$t differ (< state, > .at): $(head -n 20 "$T/diff.out")"
	cp -a "$A" "$T/copy$i"
	stat_list "$T/copy$i" nodirtime >"$T/copy.stat"
	diff "$T/ref.stat" "$T/copy.stat" >"$T/diff.out" ||
		fail "cp -a of .at/$t differs from state $i: $(head -n 20 "$T/diff.out")"
	diff -r --no-dereference "$T/ref/s$i" "$T/copy$i" >/dev/null ||
		fail "cp -a of .at/$t: contents differ from state $i"
	ok "state $i at $t: diff -r, stat (mode, owner, mtime, links) and cp -a"
	# Folders' mtimes have moved since (names made in them), but not
	# as seen at $t (which runs to the end of its millisecond).
	late=$(find "$A" -type d -newermt "@$(date -u -d "$t" +%s.%3N)999999" | head -n 3)
	[ -z "$late" ] || fail "folders of .at/$t with an mtime after it: $late"
done
[ "$(find "$MNT/.at/$T1/bkt/tree" -type f | wc -l)" -eq 100 ] ||
	fail "state 1 has $(find "$MNT/.at/$T1/bkt/tree" -type f | wc -l) files, not 100"
assert_eq "$(readlink "$T/ref/s1/link")" "$(readlink "$MNT/.at/$T1/bkt/tree/link")" "a symlink as it was"
assert_missing "$MNT/.at/$T2/bkt/tree/d9" "a folder removed before T2, at T2"

step "a restore out of .at with rsync -aAX or cp -a keeps every attribute the live tree keeps"
R=$B/attrs
mkdir -p "$R/d"
setfattr -n user.note -v hi "$R/d"
setfacl -m u:nobody:rx "$R/d"
echo tool >"$R/tool"
setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$R/tool"
echo t >"$R/t.txt"
setfattr -n trusted.k -v v "$R/t.txt"
setfattr -n user.u -v 1 "$R/t.txt"
TA=$(now_iso)
echo later >>"$R/t.txt"	# the live tree moves on
# attrs DIR: every attribute but replicafs's own, file by file.
attrs() {
	(cd "$1" && getfattr -R -d -m - --absolute-names . 2>/dev/null) |
		grep -v '^system\.replicafs\.' |
		awk '/^# file: /{f=$3; next} /=/{print f, $0}' | sort
}
rsync -aAX "$MNT/.at/$TA/bkt/attrs/" "$T/r-rsync/" || fail "rsync -aAX out of .at/$TA failed"
cp -a "$MNT/.at/$TA/bkt/attrs" "$T/r-cp" || fail "cp -a out of .at/$TA failed"
want=$(attrs "$MNT/.at/$TA/bkt/attrs")
[[ $want == *"./d user.note="* && $want == *"./tool security.capability="* &&
	$want == *"./t.txt trusted.k="* && $want == *"./d system.posix_acl_access="* ]] ||
	fail ".at/$TA does not list the attributes the tree had: $want"
assert_eq "$want" "$(attrs "$T/r-rsync")" "attributes restored by rsync -aAX from .at"
assert_eq "$want" "$(attrs "$T/r-cp")" "attributes restored by cp -a from .at"
mapfile -t E5 < <(ls "$V/attrs/tool")
assert_eq "$(getfattr --absolute-names -e base64 -n security.capability "$R/tool" | grep '^security')" \
	"$(getfattr --absolute-names -e base64 -n security.capability "$V/attrs/tool/${E5[0]}" | grep '^security')" \
	"the capability of a version in .versions"
ok "capability, trusted.*, user.* and ACLs of files and folders, through .at and .versions"

step ".at: a date alone, the future, before the bucket, and bad names"
diff -r --no-dereference "$W" "$MNT/.at/2999-01-01/bkt/tree" >/dev/null ||
	fail ".at/2999-01-01 (the future) is not the live tree"
diff -r --no-dereference "$W" "$MNT/.at/2999-01-01T00:00:00Z/bkt/tree" >/dev/null ||
	fail ".at/2999-01-01T00:00:00Z is not the live tree"
assert_eq "" "$(ls "$MNT/.at/1999-12-31")" "buckets before the bucket was made"
assert_missing "$MNT/.at/1999-12-31/bkt" "a bucket before it was made"
assert_missing "$MNT/.at/yesterday" "a TIME that is not ISO 8601"
assert_missing "$MNT/.at/2026-02-30" "a day that does not exist"
assert_eq "" "$(ls "$MNT/.at")" "ls of .at"
expect_error "Read-only file system" touch "$MNT/.at/$T1/bkt/tree/new"
expect_error "Read-only file system" rm "$MNT/.at/$T1/bkt/tree/d0/f0"
expect_error "Read-only file system" sh -c "echo x >'$MNT/.at/$T1/bkt/tree/d0/f0'"
assert_eq "$(xattr system.replicafs.version-id "$MNT/.at/$T1/bkt/tree/d3/f0")" \
	"$(version_field "$W/d3/f0" 3 1)" "the version ID of a file at T1"
# The time of a .versions name (to the millisecond) shows that version:
# before, .at/TIME was the start of that millisecond, before the version.
echo "first" >"$B/named"
sleep 0.01
echo "second" >"$B/named"
first=$(ls "$V/named" | head -n 1)
assert_eq first "$(cat "$MNT/.at/${first%%_*}/bkt/named")" ".at at the time of the first version's name"
ok "dates, times and names"

step ".versions mirrors folders, deleted keys included"
assert_eq "d0 d1 d10 d2 d3 d4 d5 d6 d6-moved d7 d8 d9 link private" \
	"$(ls "$V/tree" | tr '\n' ' ' | sed 's/ $//')" "ls .versions/bkt/tree"
mapfile -t E < <(ls "$V/tree/d10/new")
assert_eq 2 "${#E[@]}" "entries of a deleted file"
assert_eq "$(gen_small 77 "s2 new")" "$(cat "$V/tree/d10/new/${E[0]}")" "a deleted file's content, from .versions"
[ -L "$V/tree/link/$(ls "$V/tree/link" | head -n 1)" ] || fail "a symlink's version is not a symlink"
# A key and a folder of the same name.
echo file >"$B/both"
rm "$B/both"
mkdir "$B/both"
echo below >"$B/both/child"
ls "$V/both" >"$T/both.out"
grep -qx child "$T/both.out" || fail ".versions/bkt/both does not list the key below it: $(cat "$T/both.out")"
[ "$(grep -c '_' "$T/both.out")" -ge 2 ] || fail ".versions/bkt/both does not list the versions of key both: $(cat "$T/both.out")"
ok "folders, deleted keys, links, and a key that is also a folder"

# -------------------------------------------------------------------------
step "replication status of each version, as an xattr and in versions"
cat >"$T/rules.json" <<EOF
{"Rules": [{"ID": "mirror", "Priority": 1, "Status": "Enabled", "Filter": {},
  "Destination": {"Bucket": "dir://$T/mirror"},
  "DeleteMarkerReplication": {"Status": "Enabled"}}]}
EOF
mkdir "$T/mirror"
rfs replication put "$B" "$T/rules.json" >/dev/null
R=$B/replicated
echo one >"$R"
echo two >"$R"
rfs wait "$B" --timeout 60
mapfile -t E < <(ls "$V/replicated")
for e in "${E[@]}"; do
	assert_eq COMPLETED "$(xattr system.replicafs.replication-status "$V/replicated/$e")" "replication status of $e"
	assert_eq COMPLETED "$(xattr "system.replicafs.replication-status.dir://$T/mirror" "$V/replicated/$e")" \
		"status of $e at the mirror"
done
getfattr --absolute-names -d -m - "$V/replicated/${E[0]}" | grep -q 'replication-status=' ||
	fail "getfattr -d -m - does not list the replication status of a version"
assert_eq COMPLETED "$(version_field "$R" 1 5)" "status column of versions"
assert_eq COMPLETED "$(versions_json_get "$R" "v[1]['replication_status']")" "replication_status in --json"
expect_fail xattr system.replicafs.replication-status "$V/doc/$(ls "$V/doc" | head -n 1)"
assert_eq "-" "$(version_field "$F" 1 5)" "status column of a version no rule sent"
assert_eq None "$(versions_json_get "$F" "v[0]['replication_status']")" "replication_status in --json when none"
rfs replication delete "$B" >/dev/null
ok "PENDING/COMPLETED per version"

# -------------------------------------------------------------------------
step "the command line: restore, undelete, rm-version"
G=$B/cli
for i in 1 2 3; do echo "cli $i" >"$G"; done
v1=$(version_field "$G" 3 1)
out=$(rfs restore "$G" "$v1")
[[ $out == *"$v1"* ]] || fail "restore said '$out'"
assert_eq "cli 1" "$(cat "$G")" "content after restore of the oldest version"
assert_eq 4 "$(nversions "$G")" "versions after restore"
assert_eq "$(xattr system.replicafs.sha256 "$V/cli/$(ls "$V/cli" | head -n 1)")" \
	"$(xattr system.replicafs.sha256 "$G")" "the restored version's content"
assert_eq latest "$(version_field "$G" 1 4)" "the restored version is the latest"
[ "$(version_field "$G" 1 1)" != "$v1" ] || fail "restore reused the version ID"

rm "$G"
rfs undelete "$G"
assert_eq "cli 1" "$(cat "$G")" "content after undelete (at once: the command asked the directory, not the name)"
assert_eq 4 "$(nversions "$G")" "versions after undelete (the marker is gone)"
expect_error "not deleted" rfs undelete "$G"
expect_error "no versions: none was ever written there, or all were removed" rfs undelete "$B/never-was"
expect_error "there is no bucket nosuchbucket" rfs versions "$MNT/nosuchbucket/x"
expect_error "there is no bucket nosuchbucket" rfs versions "$MNT/nosuchbucket"
expect_error "is a bucket, not an object" rfs versions "$B"
expect_error "there is no bucket nosuchbucket" rfs undelete "$MNT/nosuchbucket/x"

# After rm -rf of a folder, the paths of the files it held still work.
mkdir -p "$B/tree/sub"
echo deep >"$B/tree/sub/f"
echo top >"$B/tree/g"
rm -rf "$B/tree"
assert_eq 2 "$(nversions "$B/tree/sub/f")" "versions of a file of a removed folder (data, marker)"
assert_eq 2 "$(cd "$B" && nversions tree/g)" "the same by a relative path"
rfs undelete "$B/tree/sub/f"
# The kernel remembers for the mount's timeout that tree was missing.
for _ in $(seq 1 50); do [ -e "$B/tree/sub/f" ] && break; sleep 0.1; done
assert_eq deep "$(cat "$B/tree/sub/f")" "a file undeleted from a removed folder"
assert_missing "$B/tree/g" "the other file of that folder"
ok "versions and undelete of files in a folder removed with rm -rf"

# undelete -r: a whole folder back, its empty subfolder and symlink too.
mkdir -p "$B/proj/src/empty"
echo main >"$B/proj/src/main.c"
ln -s src/main.c "$B/proj/link"
echo readme >"$B/proj/README"
find "$B/proj" | sed "s|^$B/||" | sort >"$T/proj.before"
rm -rf "$B/proj"
expect_error "is a folder: \`replicafs undelete -r" rfs undelete "$B/proj"
assert_eq "undeleted 6 keys below $B/proj" "$(rfs undelete -r "$B/proj")" "undelete -r of a removed folder"
for _ in $(seq 1 50); do [ -e "$B/proj/README" ] && break; sleep 0.1; done
assert_eq "$(cat "$T/proj.before")" "$(find "$B/proj" | sed "s|^$B/||" | sort)" "the folder after undelete -r"
assert_eq main "$(cat "$B/proj/link")" "a symlink undeleted with its folder"
assert_eq 1 "$(nversions "$B/proj/src/main.c")" "versions of an undeleted file (its delete marker is gone)"
assert_eq "undeleted 0 keys below $B/proj" "$(rfs undelete -r "$B/proj")" "undelete -r of a folder with nothing deleted"
expect_error "no versions: none was ever written there, or all were removed" rfs undelete -r "$B/no-such-folder"
expect_error "is a folder: versions are kept per file" rfs versions "$B/proj/src"
assert_eq "" "$("$REPLICAFS" versions --json "$B/never-was" 2>/dev/null)" \
	"what versions --json prints to stdout for a key never written"
ok "undelete -r of a folder removed with rm -rf"

# undelete -r of a folder filled by rsync: not the temporary names its
# renames left (.NAME.XXXXXX), nor the old name of a file moved, whose
# content lives on at the new; a file rsync --delete removed comes back,
# as S3's undelete brings back what was deleted.
mkdir "$T/rs"
for i in 1 2 3; do echo "r$i" >"$T/rs/f$i"; done
rsync -a "$T/rs/" "$B/rs/"
rm "$T/rs/f3"
echo "r1 again" >"$T/rs/f1"
rsync -a --delete "$T/rs/" "$B/rs/"
mv "$B/rs/f2" "$B/rs/g2"
rm -rf "$B/rs"
rfs undelete -r "$B/rs" >"$T/und.out"
cat "$T/und.out"
grep -qx "undeleted 4 keys below $B/rs" "$T/und.out" || fail "undelete -r of the rsync'd folder: $(cat "$T/und.out")"
grep -q "^left 5 keys deleted that a rename moved elsewhere" "$T/und.out" ||
	fail "undelete -r did not say it left the renamed keys: $(cat "$T/und.out")"
for _ in $(seq 1 50); do [ -e "$B/rs/g2" ] && break; sleep 0.1; done
assert_eq "f1 f3 g2" "$(ls -A "$B/rs" | xargs)" "the rsync'd folder after undelete -r"
assert_eq "r1 again" "$(cat "$B/rs/f1")" "f1 after undelete -r"
ok "undelete -r leaves rsync's temporary files and moved names deleted"
# Nor the folders a rename moved: undelete -r of a folder's old name
# brought back its folders, empty, beside the new.
mkdir -p "$B/mvold/sub"
echo a >"$B/mvold/sub/f"
echo b >"$B/mvold/g"
mv "$B/mvold" "$B/mvnew"
rfs undelete -r "$B/mvold" >"$T/mvund.out"
grep -qx "undeleted 0 keys below $B/mvold" "$T/mvund.out" || fail "undelete -r of a moved folder's old name: $(cat "$T/mvund.out")"
assert_missing "$B/mvold" "the old name of a moved folder after undelete -r"
ok "undelete -r of a moved folder's old name brings back nothing"

# rm-version -r: a bucket emptied of every version, so that rmdir removes
# it, as S3's console empties a bucket before deleting it.
E=$MNT/emptied
mkdir -p "$E/keep/sub" "$E/gone/empty"
for i in 1 2 3; do echo "v$i" >"$E/keep/sub/f"; done
echo top >"$E/top"
ln -s top "$E/gone/link"
echo g >"$E/gone/g"
rm -rf "$E/gone"
expect_error "is a folder: \`replicafs rm-version -r" rfs rm-version "$E/gone" "$v1"
# The command it gives takes a path with a space and a quote as one word.
mkdir "$B/it's here"
echo f >"$B/it's here/f"
expect_error "is a folder: \`replicafs rm-version -r '$B/it'\\''s here'\` removes" \
	rfs rm-version "$B/it's here" "$v1"
rm -r "$B/it's here"
assert_eq "removed 8 versions of 4 keys at or below $E/gone" \
	"$(rfs rm-version -r "$E/gone" --yes)" "rm-version -r of a removed folder"
# Again, or undelete -r there: there were versions, so "nothing was ever
# written there" was false; the store keeps no trace of removed ones.
for cmd in "rm-version -r --yes" "undelete -r" "undelete"; do
	out=$(rfs $cmd "$E/gone" 2>&1) && fail "$cmd of a folder rm-version -r emptied succeeded: $out"
	assert_eq "replicafs: $E/gone: no versions: none was ever written there, or all were removed" \
		"$out" "$cmd of a folder rm-version -r emptied"
done
out=$(rfs versions "$E/gone/g" 2>&1) && fail "versions of a file rm-version -r emptied succeeded: $out"
assert_eq "replicafs: $E/gone/g: no versions: none was ever written there, or all were removed" \
	"$out" "versions of a file rm-version -r emptied"
ok "rm-version -r, undelete -r, undelete and versions of what rm-version -r emptied"
assert_eq "" "$(ls "$MNT/.versions/emptied/" | grep -x gone)" ".versions after rm-version -r of a folder"
assert_eq 3 "$(nversions "$E/keep/sub/f")" "versions beside the folder removed for good"
rm -rf "$E"/*
expect_error "Directory not empty" rmdir "$E"
expect_error "is a bucket: \`replicafs rm-version -r" rfs rm-version "$E"
expect_error "would remove 10 versions of 4 keys in bucket $E for good: confirm with --yes" \
	rfs rm-version -r "$E" </dev/null
assert_eq 4 "$(nversions "$E/keep/sub/f")" "versions after an rm-version -r that was not confirmed"
assert_eq "removed 10 versions of 4 keys in bucket $E" "$(rfs rm-version -r "$E" --yes)" \
	"rm-version -r of a bucket"
for _ in $(seq 1 50); do rmdir "$E" 2>/dev/null && break; sleep 0.1; done
assert_missing "$E" "a bucket emptied by rm-version -r, after rmdir"
expect_error "there is no bucket nobucket" rfs rm-version -r "$MNT/nobucket" --yes
expect_error "no versions: none was ever written there, or all were removed" rfs rm-version -r "$B/no-such-folder" --yes
ok "rm-version -r empties a folder, then a bucket, which rmdir then removes"
# One version of one key is said in the singular (it was "1 versions of 1
# keys"), without a terminal and at the prompt of one.
echo once >"$B/single"
expect_error "would remove 1 version of 1 key at or below $B/single for good: confirm with --yes" \
	rfs rm-version -r "$B/single" </dev/null
out=$(printf 'n\n' | timeout 20 script -qec "$(printf '%q ' "$REPLICAFS" rm-version -r "$B/single")" /dev/null 2>&1) || true
[[ $out == *"remove 1 version of 1 key at or below $B/single for good (5 bytes)? [y/N]"* ]] ||
	fail "the prompt of rm-version -r for one version: $out"
[[ $out == *"nothing removed"* ]] || fail "rm-version -r answered n: $out"
assert_eq 1 "$(nversions "$B/single")" "versions after the prompt was answered n"
rm "$B/single"
ok "rm-version -r of one version says so in the singular"

v2=$(version_field "$G" 3 1)
rfs rm-version "$G" "$v2" --yes >/dev/null
assert_eq 3 "$(nversions "$G")" "versions after rm-version"
ls "$V/cli" >"$T/cli.out"
! grep -q "_$v2\$" "$T/cli.out" || fail "rm-version left its entry in .versions"
assert_eq 3 "$(wc -l <"$T/cli.out")" "entries after rm-version"

step "the command line answers bad input with one line and a non-zero exit"
for cmd in "restore $G nope" "rm-version $G nope --yes" "restore $B/never-was $v1" \
	"undelete /tmp" "restore /tmp/x $v1" "undelete /no/such/dir/file" \
	"versions /no/such/dir/file" "restore $G" "undelete" "restore $B $v1"; do
	rc=0
	# shellcheck disable=SC2086
	out=$("$REPLICAFS" $cmd 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "replicafs $cmd succeeded"
	assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "lines said by 'replicafs $cmd' ($out)"
	ok "replicafs $cmd: $out"
done
rm "$B/doc"
marker=$(version_field "$B/doc" 1 1)
expect_error "delete marker" rfs restore "$B/doc" "$marker"
rfs undelete "$B/doc" >/dev/null

# -------------------------------------------------------------------------
step "undelete and restore never give a file and a folder one name"
mkdir "$B/kz"
echo precious >"$B/kz/x"
rm "$B/kz/x"
mkdir "$B/kz/x"
touch "$B/kz/x/inner"
expect_error "Is a directory" rfs undelete "$B/kz/x"
expect_error "Is a directory" rm "$V/kz/x/"*.deleted
x1=$(version_field "$B/kz/x" 2 1)
expect_error "Is a directory" rfs restore "$B/kz/x" "$x1"
assert_eq "x" "$(ls "$B/kz")" "names in the folder"
[ -d "$B/kz/x" ] && [ -e "$B/kz/x/inner" ] || fail "the folder kz/x is gone"
echo y >"$B/kz/y-dir-was"
mkdir "$B/kz/y"
echo inside >"$B/kz/y/f"
rm -rf "$B/kz/y"
echo now-a-file >"$B/kz/y"
expect_error "Not a directory" rfs undelete "$B/kz/y/f"
assert_eq "now-a-file" "$(cat "$B/kz/y")" "the file that took a removed folder's name"
ok "refused, with the reason; the live file and folder are as they were"

step "undelete -r brings back, of a file and a folder of one name, the one removed last"
mkdir -p "$B/ud1"
echo oldfile >"$B/ud1/x"
rm "$B/ud1/x"
mkdir "$B/ud1/x"
echo newdata >"$B/ud1/x/inside"
rm -rf "$B/ud1"
out=$(rfs undelete -r "$B/ud1") || fail "undelete -r of a folder whose x was a file, then a folder: $out"
log "$out"
[[ $out == *"left 1 key deleted whose name"* ]] || fail "undelete -r does not say it left the older file: $out"
assert_eq newdata "$(cat "$B/ud1/x/inside")" "the folder removed last"
mkdir -p "$B/ud2/y"
echo in >"$B/ud2/y/in"
rm -rf "$B/ud2/y"
echo newer >"$B/ud2/y"
rm -rf "$B/ud2"
out=$(rfs undelete -r "$B/ud2") || fail "undelete -r of a folder whose y was a folder, then a file: $out"
log "$out"
assert_eq newer "$(cat "$B/ud2/y")" "the file removed last"
ok "the newer comes back, the older stays deleted, and the command says so"

step "a file named like a flag, after --"
echo one >"$B/-rf"
echo two >"$B/-rf"
out=$(cd "$B" && rfs versions -- -rf) || fail "versions -- -rf failed"
assert_eq 2 "$(wc -l <<<"$out")" "versions of -rf"
first=$(tail -n 1 <<<"$out" | cut -f1)
out=$(cd "$B" && rfs restore -- -rf "$first") || fail "restore -- -rf failed"
[[ $out == "restored $first of -rf as "* ]] || fail "restore -- -rf said: $out"
rm "$B/-rf"
(cd "$B" && rfs undelete -- -rf >/dev/null) || fail "undelete -- -rf failed"
assert_eq one "$(cat "$B/-rf")" "-rf after restore and undelete"
echo three >"$B/-rf"
second=$(cd "$B" && rfs versions -- -rf | sed -n 2p | cut -f1)
(cd "$B" && rfs rm-version --yes -- -rf "$first" >/dev/null) || fail "rm-version -- -rf failed"
# --yes where the usage puts it, after the ID.
(cd "$B" && rfs rm-version -- -rf "$second" --yes >/dev/null) || fail "rm-version -- -rf ID --yes failed"
assert_eq 2 "$(cd "$B" && rfs versions -- -rf | wc -l)" "versions of -rf after two were removed"
expect_error "usage" rfs versions -rf
assert_eq Enabled "$(rfs versioning -- "$B")" "versioning -- BUCKET"
(cd "$B" && rfs status -- -rf >/dev/null) || fail "status -- -rf failed"
(cd "$B" && rfs wait -- -rf) || fail "wait -- -rf failed"
(cd "$(dirname "$STORE")" && rfs check -- "$(basename "$STORE")" >/dev/null) || fail "check -- STORE failed"
ok "versions, restore, undelete, rm-version, versioning, status, wait and check take a path after --"

step "restore brings back content, not the permissions of the time"
echo o1 >"$B/own"
echo o2 >"$B/own"
o1=$(version_field "$B/own" 2 1)
chown 4242:4343 "$B/own"
chmod 600 "$B/own"
rfs restore "$B/own" "$o1" >/dev/null
assert_eq "o1" "$(cat "$B/own")" "content after restore"
assert_eq "600 4242 4343" "$(stat -c '%a %u %g' "$B/own")" "mode and owner after restore"
ok "the current owner and mode stay"
# Not those of a symlink that took the file's name: its 0777 let every
# user read and write the private file restored over it.
(umask 077 && echo secret >"$B/cfg")
c1=$(version_field "$B/cfg" 1 1)
mv "$B/cfg" "$B/cfg.bak"
ln -s cfg.bak "$B/cfg"
rfs restore "$B/cfg" "$c1" >/dev/null
assert_eq "600 regular file" "$(stat -c '%a %F' "$B/cfg")" "a file restored over a symlink"
ok "a file restored over a symlink has the mode it was written with"
# Under rm -rf, the folders come back as they were, not as root's 0755.
mkdir -p "$B/priv/notes"
echo n1 >"$B/priv/notes/d"
echo n2 >"$B/priv/notes/d"
chown 4242:4343 "$B/priv"
chmod 700 "$B/priv"
n1=$(version_field "$B/priv/notes/d" 2 1)
rm -rf "$B/priv"
rfs restore "$B/priv/notes/d" "$n1" >/dev/null
assert_eq "700 4242 4343" "$(stat -c '%a %u %g' "$B/priv")" "priv after a restore under rm -rf"
rm -rf "$B/priv"
dm=$(version_field "$B/priv/notes/d" 1 1)
rfs rm-version "$B/priv/notes/d" "$dm" --yes >/dev/null
assert_eq "700 4242 4343" "$(stat -c '%a %u %g' "$B/priv")" "priv after rm-version of the delete marker"
assert_eq n1 "$(cat "$B/priv/notes/d")" "priv/notes/d after rm-version of its delete marker"
ok "restore and rm-version of a delete marker bring back the folders rm -rf took"

# -------------------------------------------------------------------------
step "a key with 10,000 versions lists through the mount"
H=$B/hot
t0=$(date +%s%N)
"$PYTHON" - "$H" <<'EOF'
import os, sys
for i in range(10000):
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"%d\n" % i)
    os.close(fd)
EOF
log "   10,000 writes took $((($(date +%s%N) - t0) / 1000000)) ms"
assert_eq "9999" "$(cat "$H")" "the last write"
t0=$(date +%s%N)
n=$(ls "$V/hot" | wc -l)
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq 10000 "$n" "entries of a key with 10,000 versions"
log "   ls .versions/bkt/hot/ (10,000 entries): $ms ms"
t0=$(date +%s%N)
ls -l "$V/hot" >/dev/null
log "   ls -l .versions/bkt/hot/: $((($(date +%s%N) - t0) / 1000000)) ms"
[ "$ms" -lt 10000 ] || fail "ls of 10,000 versions took $ms ms"
assert_eq "0" "$(cat "$V/hot/$(ls "$V/hot" | sed -n 1p)")" "the oldest of 10,000"

unmount_fs

# -------------------------------------------------------------------------
step "rm-version -r of a folder and of its subfolder at once: both finish"
# Each lists keys, then removes their versions; what the other removed in
# between is no error.  The one that finds nothing left says so.
mount_fs
B=$MNT/bkt
for round in 1 2 3 4 5; do
	mkdir -p "$B/cc/sub"
	for i in $(seq 150); do
		echo a >"$B/cc/f$i"
		echo b >"$B/cc/sub/g$i"
		echo c >"$B/cc/sub/g$i"
	done
	rfs rm-version -r --yes "$B/cc" >"$T/rmr1" 2>&1 &
	p1=$!
	rfs rm-version -r --yes "$B/cc/sub" >"$T/rmr2" 2>&1 &
	p2=$!
	r1=0 r2=0
	wait $p1 || r1=$?
	wait $p2 || r2=$?
	[ $r1 = 0 ] || fail "round $round: rm-version -r of cc: $(cat "$T/rmr1")"
	[ $r2 = 0 ] || grep -q "no versions" "$T/rmr2" ||
		fail "round $round: rm-version -r of cc/sub: $(cat "$T/rmr2")"
	[ ! -e "$B/cc" ] || fail "round $round: cc is still there"
	[ ! -e "$MNT/.versions/bkt/cc" ] ||
		fail "round $round: .versions/bkt/cc is still there"
done
ok "five rounds, no error and nothing left"
unmount_fs

step "what the command line changes shows in the mount at once, with a 30 s timeout"
# The kernel keeps names, found or missing, for the mount's timeout; the
# commands tell the mount which they changed.
mount_fs timeout=30
B=$MNT/bkt
# undelete_restore KEY PATH-PREFIX: undelete and restore of KEY, each
# given to the command as PATH-PREFIX/KEY, show at once.
undelete_restore() {
	local k=$1 p=$2
	echo gone >"$B/$k"
	rm "$B/$k"
	[ ! -e "$B/$k" ] || fail "$k is there after rm"
	rfs undelete "$p/$k" >/dev/null
	assert_eq gone "$(cat "$B/$k")" "$k just after undelete through $p (the name was looked up missing)"
	echo 1 >"$B/$k"
	echo 22222 >"$B/$k"
	assert_eq 6 "$(stat -c %s "$B/$k")" "size of $k before the restore"
	rfs restore "$p/$k" "$(version_field "$B/$k" 2 1)" >/dev/null
	assert_eq 2 "$(stat -c %s "$B/$k")" "size of $k just after a restore through $p"
}
undelete_restore cf "$B"
undelete_restore cv "$MNT/.versions/bkt"
echo only >"$B/ch"
cat "$B/ch" >/dev/null
rfs rm-version --yes "$B/ch" "$(version_field "$B/ch" 1 1)" >/dev/null
[ ! -e "$B/ch" ] || fail "ch is still there after its only version was removed"
mkdir -p "$B/cd/e"
echo x >"$B/cd/e/x"
echo y >"$B/cd/y"
rm -rf "$B/cd"
[ ! -e "$B/cd/e/x" ] || fail "cd/e/x is there after rm -rf"
rfs undelete -r "$B/cd" >/dev/null
assert_eq "x y" "$(cat "$B/cd/e/x" "$B/cd/y" | tr '\n' ' ' | sed 's/ $//')" "cd after undelete -r"
(
	cd "$B/cd/e"
	rm x
	[ ! -e x ] || fail "x is there after rm"
	rfs undelete -r . >/dev/null
	assert_eq x "$(cat x)" "x after undelete -r . in its folder"
	assert_eq "$B/cd/e" "$(pwd -P)" "the working directory's path"
)
rfs rm-version -r --yes "$B/cd" >/dev/null
[ ! -e "$B/cd/y" ] || fail "cd/y is still there after rm-version -r"
[ ! -e "$B/cd" ] || fail "cd is still there after rm-version -r"
# A delete marker's entry removed through .versions.
mkdir -p "$B/vd/sub"
echo 1 >"$B/vd/sub/f"
rm -rf "$B/vd"
[ ! -e "$B/vd" ] || fail "vd is there after rm -rf"
rm "$MNT/.versions/bkt/vd/sub/f/"*.deleted
assert_eq 1 "$(cat "$B/vd/sub/f")" "vd/sub/f after its delete marker's entry was removed"
ok "undelete, restore, rm-version and their -r forms show without waiting"
unmount_fs
check_store
