#!/bin/bash
#
# test_replication.sh - live replication with S3's rules, on real mounts:
# store A (mounted on MNT) replicates bucket src to bucket dst of store B
# (mounted on MNT2, a second daemon) and to a plain directory; B replicates
# to store C, to show that A's objects do not chain on.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
STORE_B=$T/storeB
MNT2=$T/mnt2
STORE_C=$T/storeC
MNT3=$T/mnt3
MIRROR=$T/mirror
mkdir -p "$MNT2" "$MNT3" "$MIRROR"

# mount_extra STORE MNT NAME [OPTS]: a second daemon, stopped by unmount_extra (or
# killed and lazily unmounted by cleanup if the test fails).
declare -A EXTRA_PID
mount_extra() {
	local i
	"$REPLICAFS" mount -f ${4:+-o "$4"} "$1" "$2" >"$T/daemon.$3.log" 2>&1 &
	EXTRA_PID[$3]=$!
	track_pid "${EXTRA_PID[$3]}"
	track_mount "$2"
	for i in $(seq 200); do
		is_mounted "$2" && timeout 5 stat "$2/" >/dev/null 2>&1 && return 0
		pid_running "${EXTRA_PID[$3]}" || fail "daemon $3 exited early: $(tail -5 "$T/daemon.$3.log")"
		sleep 0.1
	done
	fail "mount of $1 on $2 not ready"
}
unmount_extra() {
	local rc=0
	fusermount3 -u "$1"
	wait "${EXTRA_PID[$2]}" || rc=$?
	assert_eq 0 "$rc" "exit status of daemon $2 after its unmount"
}

# wait_for PATH SECONDS: until PATH exists.
exists() { [ -e "$1" ] || [ -L "$1" ]; }
wait_for() { poll "$2" exists "$1" || fail "$1 did not appear within $2 s"; }

vid() { getfattr --only-values -n system.replicafs.version-id "$1"; }
# wait_delivered ARGS: replicafs wait, once the failures the test made on
# purpose are there: nothing pending, FAILED deliveries allowed (status 3).
wait_delivered() {
	local rc=0
	rfs wait "$@" || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "replicafs wait $*: status $rc"
}
rstatus() { getfattr --only-values -n system.replicafs.replication-status "$1" 2>/dev/null || echo none; }

# rules FILE DM_TO_B: a configuration of two rules, to B and to the mirror.
rules() {
	cat >"$1" <<EOF
{
  "Role": "arn:aws:iam::123456789012:role/ignored",
  "Rules": [
    {"ID": "to-b", "Priority": 1, "Status": "Enabled", "Filter": {},
     "Destination": {"Bucket": "store://$STORE_B/dst"},
     "DeleteMarkerReplication": {"Status": "$2"}},
    {"ID": "to-mirror", "Priority": 2, "Status": "Enabled",
     "Filter": {"Prefix": "tree/"},
     "Destination": {"Bucket": "dir://$MIRROR"},
     "DeleteMarkerReplication": {"Status": "Enabled"}}
  ]
}
EOF
}

# With -o acl: the stores hold no ACL yet, and the ACL step sets some.
mount_fs acl
mount_extra "$STORE_B" "$MNT2" b acl
mount_extra "$STORE_C" "$MNT3" c
mkdir "$MNT/src" "$MNT2/dst" "$MNT3/far"

step "a version written before any rule exists is not replicated"
echo "before the rule" >"$MNT/src/old"

step "bad configurations are refused with a message that says why"
printf '{"Rules": [\n  {"ID": "x",, }\n]}\n' >"$T/broken.json"
expect_error "line 2" rfs replication put "$MNT/src" "$T/broken.json"
rules "$T/r.json" Disabled
sed 's#storeB/dst#nostore/dst#' "$T/r.json" >"$T/missing.json"
expect_error "nostore" rfs replication put "$MNT/src" "$T/missing.json"
sed 's#"Enabled", "Filter": {}#"enabled", "Filter": {}#' "$T/r.json" >"$T/value.json"
expect_error "Rules[0].Status" rfs replication put "$MNT/src" "$T/value.json"
sed 's#"Priority": 2#"Priority": 1#' "$T/r.json" >"$T/prio.json"
expect_error "overlap" rfs replication put "$MNT/src" "$T/prio.json"
ln -s "$STORE_B" "$T/storeB-link"
"$PYTHON" -c '
import json, sys
c = json.load(sys.stdin)
r = dict(c["Rules"][0])
r["ID"] = "alias"
r["Priority"] = 9
r["Destination"] = {"Bucket": r["Destination"]["Bucket"].replace(sys.argv[1], sys.argv[2])}
c["Rules"].append(r)
json.dump(c, sys.stdout)' "$STORE_B" "$T/storeB-link" <"$T/r.json" >"$T/alias.json"
expect_error "under two names" rfs replication put "$MNT/src" "$T/alias.json"
rfs versioning "$MNT3/far" suspend >/dev/null
sed "s#store://$STORE_B/dst#store://$STORE_C/far#" "$T/r.json" >"$T/susp.json"
expect_error "not Enabled" rfs replication put "$MNT/src" "$T/susp.json"
rfs versioning "$MNT3/far" enable >/dev/null
expect_error "no replication configuration" rfs replication get "$MNT/src"

step "a rule to store B and to a directory"
rfs replication put "$MNT/src" "$T/r.json"
rfs replication get "$MNT/src" >"$T/got.json"
grep -q '"to-b"' "$T/got.json" || fail "replication get does not show rule to-b: $(cat "$T/got.json")"
# An ID with a control character is refused, and the rules stay as they
# were.
sed 's#"ID": "to-mirror"#"ID": "to-\\u009bmirror"#' "$T/r.json" >"$T/c1.json"
expect_error 'Rules[1].ID: "to-??mirror" has a control character (U+009B)' \
	rfs replication put "$MNT/src" "$T/c1.json"
rfs replication get "$MNT/src" | cmp -s - "$T/got.json" ||
	fail "the rules changed after a refused replication put"
rfs replication get "$MNT/src" | rfs replication put "$MNT/src" - >/dev/null ||
	fail "the output of 'replication get' is not accepted by 'replication put'"
(cd "$MNT" && rfs replication get -- src | rfs replication put -- src - >/dev/null) ||
	fail "replication get/put with -- before the bucket"
# A field S3 documents and replicafs does not use is accepted with a note
# (before, with nothing said).
sed 's#"Destination": {"Bucket": "store#"Destination": {"StorageClass": "STANDARD_IA", "Bucket": "store#' \
	"$T/r.json" >"$T/sc.json"
out=$(rfs replication put "$MNT/src" "$T/sc.json" 2>&1)
[[ $out == *"rule to-b: Destination.StorageClass is accepted, as S3 accepts it, and not used"* ]] ||
	fail "replication put with a StorageClass said: $out"
# Several such fields: a note names each (it named the first alone), and
# each criterion of SourceSelectionCriteria gets its own, which says what
# that one would have done.
"$PYTHON" -c '
import json, sys
c = json.load(sys.stdin)
r = c["Rules"][0]
r["Destination"].update(StorageClass="GLACIER", Account="1234", Metrics={"Status": "Disabled"})
r["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"},
                                "ReplicaModifications": {"Status": "Enabled"}}
json.dump(c, sys.stdout)' <"$T/r.json" >"$T/many.json"
out=$(rfs replication put "$MNT/src" "$T/many.json" 2>&1)
[[ $out == *"rule to-b: Destination.StorageClass, Destination.Account and Destination.Metrics are accepted, as S3 accepts them, and not used"* ]] ||
	fail "replication put with three unused Destination fields said: $out"
[[ $out == *"rule to-b: SourceSelectionCriteria.ReplicaModifications Enabled is accepted, as S3 accepts it, and not done: changes made to replicas are not sent back"* ]] ||
	fail "replication put with ReplicaModifications said: $out"
kms=$(printf '%s\n' "$out" | grep SseKmsEncryptedObjects) ||
	fail "replication put with SseKmsEncryptedObjects Enabled said nothing of it: $out"
[[ $kms == *"Enabled is accepted, as S3 accepts it, and selects nothing more: replicafs has no KMS"* && $kms != *replicas* ]] ||
	fail "the note of SseKmsEncryptedObjects: $kms"
"$PYTHON" -c '
import json, sys
c = json.load(sys.stdin)
del c["Rules"][0]["DeleteMarkerReplication"]
json.dump(c, sys.stdout)' <"$T/r.json" >"$T/nodm.json"
out=$(rfs replication put "$MNT/src" "$T/nodm.json" 2>&1)
[[ $out == *"rule to-b has a Filter and no DeleteMarkerReplication, which S3 would refuse: taken as Disabled"* ]] ||
	fail "replication put without DeleteMarkerReplication said: $out"
out=$(rfs replication put "$MNT/src" "$T/r.json" 2>&1)
[[ $out == *"note"* ]] && fail "replication put without a StorageClass said: $out"

step "a file closed on the first mount is readable on the second, same content, version ID and mtime"
gen_data 300000 1 >"$T/ref/f1"
cp "$T/ref/f1" "$MNT/src/f1"
start=$(date +%s%N)
wait_for "$MNT2/dst/f1" 10
log "   arrived after $((($(date +%s%N) - start) / 1000000)) ms"
assert_same_file "$T/ref/f1" "$MNT2/dst/f1" "the replica of f1"
assert_eq "$(vid "$MNT/src/f1")" "$(vid "$MNT2/dst/f1")" "version ID of the replica"
assert_eq "$(stat -c %y "$MNT/src/f1")" "$(stat -c %y "$MNT2/dst/f1")" "mtime of the replica"
assert_eq "$(stat -c %a "$MNT/src/f1")" "$(stat -c %a "$MNT2/dst/f1")" "mode of the replica"
rfs wait "$MNT/src" --timeout 30
assert_eq COMPLETED "$(rstatus "$MNT/src/f1")" "replication status of the source"
assert_eq REPLICA "$(rstatus "$MNT2/dst/f1")" "replication status of the replica"
assert_eq COMPLETED "$(getfattr --only-values -n "system.replicafs.replication-status.store://$STORE_B/dst" "$MNT/src/f1")" \
	"per-destination status"
getfattr -d -m - "$MNT/src/f1" | grep -q "replication-status" ||
	fail "getfattr -d -m - does not list the replication status"
# Each change sends the version again; its status stays one name per
# destination (each touch listed the name once more, until listxattr
# failed with E2BIG and cp -a dropped the file's xattrs).
for i in 1 2 3; do touch "$MNT/src/f1"; done
rfs wait "$MNT/src" --timeout 30
dups=$(getfattr -d -m - "$MNT/src/f1" | grep 'replication-status\.' | sort | uniq -d)
[ -z "$dups" ] || fail "a status listed more than once after three touches: $dups"
assert_missing "$MNT2/dst/old" "a version written before the rule, on the replica"

step "three versions arrive in order, with their IDs"
for i in 1 2 3; do echo "version $i" >"$MNT/src/f2"; done
rfs wait "$MNT/src" --timeout 30
assert_eq "$(rfs versions "$MNT/src/f2" | cut -f1)" "$(rfs versions "$MNT2/dst/f2" | cut -f1)" \
	"version IDs of f2 on the replica, newest first"
assert_eq "version 3" "$(cat "$MNT2/dst/f2")" "current content of the replica"

step "rm is not replicated while DeleteMarkerReplication is Disabled"
rm "$MNT/src/f1"
rfs wait "$MNT/src" --timeout 30
sleep 1.2	# the kernel's attribute cache of MNT2
assert_exists "$MNT2/dst/f1" "f1 on the replica after rm at the source"

step "with DeleteMarkerReplication Enabled, rm reaches the replica"
rules "$T/r2.json" Enabled
rfs replication put "$MNT/src" "$T/r2.json" >/dev/null
rm "$MNT/src/f2"
rfs wait "$MNT/src" --timeout 30
sleep 1.2
assert_missing "$MNT2/dst/f2" "f2 on the replica after rm with delete-marker replication"
assert_eq "delete-marker" "$(version_field "$MNT2/dst/f2" 1 4 | sed 's/latest,//')" \
	"the newest version of f2 on the replica"
# An undelete stays at the source, as in S3, and the command says so.
out=$(rfs undelete "$MNT/src/f2" 2>&1)
[[ $out == *"an undelete is not replicated"*"writes a version that is replicated"* ]] || fail "undelete in a replicated bucket said: $out"
rfs wait "$MNT/src" --timeout 30
sleep 1.2
assert_exists "$MNT/src/f2" "f2 at the source after its undelete"
assert_missing "$MNT2/dst/f2" "f2 on the replica after the undelete at the source"
ok "an undelete is not replicated, and the command says so"

step "no chaining: B's rule to C does not carry A's objects"
cat >"$T/bc.json" <<EOF
{"Rules": [{"ID": "b-to-c", "Priority": 0, "Status": "Enabled", "Filter": {"Prefix": ""},
  "Destination": {"Bucket": "store://$STORE_C/far"},
  "DeleteMarkerReplication": {"Status": "Enabled"}}]}
EOF
rfs replication put "$MNT2/dst" "$T/bc.json" >/dev/null
echo "from A" >"$MNT/src/chain"
echo "written on B" >"$MNT2/dst/own"
rfs wait "$MNT/src" --timeout 30
rfs wait "$MNT2/dst" --timeout 30
wait_for "$MNT3/far/own" 10
assert_exists "$MNT2/dst/chain" "A's object on B"
assert_missing "$MNT3/far/chain" "A's object on C (chained)"

step "a permanent delete of a version is never replicated"
v=$(vid "$MNT/src/chain")
expect_error "confirm with --yes" rfs rm-version "$MNT/src/chain" "$v" </dev/null
out=$(rfs rm-version "$MNT/src/chain" "$v" --yes 2>&1)
[[ $out == *"a permanent delete is not replicated (as in S3): destinations keep their copies"* ]] ||
	fail "rm-version in a replicated bucket said: $out"
sleep 1.2	# the kernel's cache of the mount (-o timeout=1)
assert_missing "$MNT/src/chain" "chain at the source after its only version was removed"
rfs wait "$MNT/src" --timeout 30
assert_eq "$v" "$(rfs versions "$MNT2/dst/chain" | cut -f1)" "the replica's versions of chain"
assert_eq "from A" "$(cat "$MNT2/dst/chain")" "the replica of chain"

step "a source bucket whose versioning is not Enabled takes no rule"
mkdir "$MNT/plain"
rfs versioning "$MNT/plain" suspend >/dev/null
expect_error "not Enabled" rfs replication put "$MNT/plain" "$T/r.json"

step "a directory destination mirrors a cp -a'd tree exactly"
mkdir -p "$T/tree/sub/deeper" "$T/tree/empty"
for i in $(seq 40); do gen_small $((i * 97)) "$i" >"$T/tree/sub/f$i"; done
gen_data 2000000 7 >"$T/tree/deeper.bin"
ln -s sub/f1 "$T/tree/link"
chmod 600 "$T/tree/sub/f3"
chmod 751 "$T/tree/sub/deeper"
touch -d '2020-01-02 03:04:05' "$T/tree/sub/f5"
cp -a "$T/tree" "$MNT/src/tree"
rfs wait "$MNT/src" --timeout 60
diff -r "$T/tree" "$MIRROR/tree" || fail "diff -r of the tree and its mirror"
sleep 1.2	# the second mount's attribute timeout
assert_eq "$(stat_list "$T/tree")" "$(stat_list "$MIRROR/tree")" \
	"names, types, sizes, modes, owners and mtimes (folders' too) of the mirror"
assert_eq "$(stat_list "$T/tree")" "$(stat_list "$MNT2/dst/tree")" \
	"names, types, sizes, modes, owners and mtimes (folders' too) of the replica"
assert_eq "sub/f1" "$(readlink "$MIRROR/tree/link")" "the mirrored symlink"
rm "$MNT/src/tree/sub/f2"
rfs wait "$MNT/src" --timeout 30
assert_missing "$MIRROR/tree/sub/f2" "a file removed at the source, in the mirror"
[ -z "$(find "$MIRROR" -name '*replicafs-tmp*')" ] || fail "temporary files left in the mirror"
# A folder renamed, then removed, at the source: the mirror keeps no
# empty folder of it (the deletes of its markers can arrive before those
# of the files in it).
mv "$MNT/src/tree/sub" "$MNT/src/tree/moved"
rfs wait "$MNT/src" --timeout 60
assert_missing "$MIRROR/tree/sub" "the old name of a renamed folder, in the mirror"
assert_eq "$(cd "$MNT/src/tree" && find . | sort)" "$(cd "$MIRROR/tree" && find . | sort)" \
	"the mirror's tree after mv of a folder"
rm -rf "$MNT/src/tree/moved"
rfs wait "$MNT/src" --timeout 60
assert_missing "$MIRROR/tree/moved" "a folder removed with rm -rf, in the mirror"
assert_eq "$(cd "$MNT/src/tree" && find . | sort)" "$(cd "$MIRROR/tree" && find . | sort)" \
	"the mirror's tree after rm -rf of a folder"
assert_exists "$MIRROR/tree/empty" "an empty folder the source still has"
ok "mv and rm -rf of a folder leave no empty folder in the mirror"
# An undelete is not replicated, but a mirror of what is current gets
# what it made current: the mirror stayed empty, all COMPLETED.
rfs undelete -r "$MNT/src/tree/moved" >/dev/null 2>&1 || fail "undelete -r of the removed folder"
rfs wait "$MNT/src" --timeout 60
assert_eq "$(cd "$MNT/src/tree" && find . | sort)" "$(cd "$MIRROR/tree" && find . | sort)" \
	"the mirror's tree after undelete -r of the folder"
diff -r "$MNT/src/tree/moved" "$MIRROR/tree/moved" || fail "diff -r of the undeleted folder and its mirror"
ok "undelete -r brings the folder back in the mirror"

step "status shows each rule and destination"
rfs status "$MNT/src"
rfs status "$MNT/src" --json >"$T/status.json"
"$PYTHON" - "$T/status.json" "$STORE_B" "$MIRROR" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
d = {x["destination"]: x for x in s}
assert set(d) == {"store://%s/dst" % sys.argv[2], "dir://%s" % sys.argv[3]}, d
for x in s:
    for k in ("operations_pending", "bytes_pending", "replication_latency_seconds", "operations_failed"):
        assert k in x, (k, x)
    assert x["operations_pending"] == 0 and x["operations_failed"] == 0, x
EOF
ok "status --json has the four figures for both destinations"

step "a destination that cannot be written fails fast, with its reason"
mv "$MIRROR" "$MIRROR.gone"
touch "$MIRROR"		# a file where the directory was
# Its name has U+009B (CSI), which a terminal acts on as on ESC [.
late=$MNT/src/tree/$'late\xc2\x9b7m'
echo "late" >"$late"
rc=0
rfs wait "$MNT/src" --timeout 30 2>"$T/wait.err" || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait with a delivery FAILED"
grep -q 'deliveries FAILED' "$T/wait.err" || fail "replicafs wait did not say why: $(cat "$T/wait.err")"
ok "replicafs wait exits 3 and says that deliveries FAILED"
assert_eq FAILED "$(rstatus "$late")" "status of a version whose destination is gone"
rfs status "$MNT/src" >"$T/status.out"
grep -q "last error" "$T/status.out" || fail "status does not show the last error"
grep -qF 'src/tree/late\xc2\x9b7m ' "$(daemon_log)" ||
	fail "the log does not name the key with its C1 control as \\xc2\\x9b: $(grep -a late "$(daemon_log)" | cat -v)"
! grep -q $'\xc2\x9b' "$T/status.out" "$(daemon_log)" ||
	fail "status or the log shows the key's C1 control raw"
ok "the key's C1 control comes out as \\xc2\\x9b in the log"
# Ten more: the log names the first five FAILED deliveries there (one
# above), then says the rest are counted; status counts all eleven.
for i in $(seq 10); do echo "late $i" >"$MNT/src/tree/late$i"; done
rfs wait "$MNT/src" --timeout 30 2>/dev/null && fail "replicafs wait passed with deliveries FAILED"
n=$(grep -c "to dir://$MIRROR FAILED" "$(daemon_log)")
assert_eq 5 "$n" "error lines for FAILED deliveries to the mirror"
grep -q "further FAILED deliveries there are logged at debug level" "$(daemon_log)" ||
	fail "the log does not say that further failures are counted"
rfs status "$MNT/src" --json >"$T/status.json"
"$PYTHON" - "$T/status.json" "dir://$MIRROR" <<'EOF'
import json, sys
d = {x["destination"]: x for x in json.load(open(sys.argv[1]))}
assert d[sys.argv[2]]["operations_failed"] == 11, d[sys.argv[2]]
EOF
ok "five error lines, eleven FAILED in replicafs status"
rm "$MIRROR"
mv "$MIRROR.gone" "$MIRROR"

step "a batch job sending an old failure again does not take the replicas back"
# v1 fails at both destinations, v2 arrives, then a batch job sends v1:
# before, the store's replica made v1 its current version and the mirror
# wrote v1 over v2.
expect_error "has replication rules, which need its versioning Enabled" \
	rfs versioning "$MNT2/dst" suspend
rfs replication delete "$MNT2/dst" >/dev/null
rfs versioning "$MNT2/dst" suspend >/dev/null
mv "$MIRROR" "$MIRROR.gone"
touch "$MIRROR"
echo "v1" >"$MNT/src/tree/back"
wait_delivered "$MNT/src" --timeout 30 >/dev/null
assert_eq FAILED "$(rstatus "$MNT/src/tree/back")" "status of v1 while both destinations are broken"
v1=$(vid "$MNT/src/tree/back")
rfs versioning "$MNT2/dst" enable >/dev/null
rfs replication put "$MNT2/dst" "$T/bc.json" >/dev/null
rm "$MIRROR"
mv "$MIRROR.gone" "$MIRROR"
echo "v2" >"$MNT/src/tree/back"
wait_delivered "$MNT/src" --timeout 30
job=$(rfs batch create "$MNT/src" --status FAILED --prefix tree/back)
batch_wait "$job" 30
wait_delivered "$MNT/src" --timeout 30
sleep 1.2	# the second mount's attribute timeout
rfs versions "$MNT2/dst/tree/back" | cut -f1 | grep -qx "$v1" ||
	fail "the batch job did not deliver v1: $(rfs batch status "$job" "$MNT")"
assert_eq "v2" "$(cat "$MNT2/dst/tree/back")" "the replica after v1 arrived late"
assert_eq "v2" "$(cat "$MIRROR/tree/back")" "the mirror after v1 was sent again"
assert_eq "$(vid "$MNT/src/tree/back")" "$(vid "$MNT2/dst/tree/back")" "the replica's current version ID"
# versions lists them as the mount serves them: it showed v1 on top as
# latest, and rm-version of the "older" v2 then removed the current one.
assert_eq "$(vid "$MNT/src/tree/back") latest" \
	"$(rfs versions "$MNT2/dst/tree/back" | head -n 1 | cut -f1,4 | tr '\t' ' ')" \
	"the first row of versions on the replica"
ok "v1 arrived after v2: the replica keeps v2 current, the mirror keeps v2"

step "xattrs set after a close reach the replica; a tag set then selects the version"
echo "tagged later" >"$MNT/src/xa"
wait_delivered "$MNT/src" --timeout 30
setfattr -n user.note -v one "$MNT/src/xa"
wait_delivered "$MNT/src" --timeout 30
sleep 1.2
assert_eq "one" "$(getfattr --only-values -n user.note "$MNT2/dst/xa" 2>/dev/null)" \
	"an xattr set on the source after the version reached the replica"
setfattr -x user.note "$MNT/src/xa"
wait_delivered "$MNT/src" --timeout 30
sleep 1.2
getfattr --only-values -n user.note "$MNT2/dst/xa" >/dev/null 2>&1 &&
	fail "an xattr removed at the source is still on the replica"
ok "setfattr and setfattr -x reach the replica"

step "POSIX ACLs reach the replica and the mirror, and a chmod after them too"
mkdir "$MNT/src/tree/shared"
setfacl -d -m u:nobody:rwx "$MNT/src/tree/shared"
echo "for nobody" >"$MNT/src/tree/shared/doc"
setfacl -m g:users:r "$MNT/src/tree/shared/doc"
chmod 640 "$MNT/src/tree/shared/doc"
wait_delivered "$MNT/src" --timeout 30
sleep 1.2
for p in tree/shared tree/shared/doc; do
	want=$(cd "$MNT/src" && getfacl -p "$p")
	[ -n "$(cd "$MNT/src" && getfacl -p -s "$p")" ] || fail "the source's $p has no ACL"
	assert_eq "$want" "$(cd "$MNT2/dst" && getfacl -p "$p")" "getfacl of $p on the replica"
	assert_eq "$want" "$(cd "$MIRROR" && getfacl -p "$p")" "getfacl of $p in the mirror"
done
ok "getfacl of a folder with a default ACL and of a file it made: the same in all three"

step "a file capability and trusted.* reach the replica and the mirror; a write drops the capability everywhere"
echo tool >"$MNT/src/tree/tool"
setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$MNT/src/tree/tool"
setfattr -n trusted.origin -v src "$MNT/src/tree/tool"
wait_delivered "$MNT/src" --timeout 30
sleep 1.2
# privileged DIR: the capability and trusted.* attributes of DIR/tree/tool.
privileged() {
	getfattr -d -m '^(trusted\.|security\.capability$)' "$1/tree/tool" 2>/dev/null |
		grep -v -e '^#' -e '^$' | sort | tr '\n' ' '
}
want=$(privileged "$MNT/src")
[[ $want == *security.capability=* && $want == *trusted.origin=* ]] ||
	fail "the source's tool lacks its attributes: $want"
assert_eq "$want" "$(privileged "$MNT2/dst")" "capability and trusted.* on the replica"
assert_eq "$want" "$(privileged "$MIRROR")" "capability and trusted.* in the mirror"
echo more >>"$MNT/src/tree/tool"
wait_delivered "$MNT/src" --timeout 30
sleep 1.2
want='trusted.origin="src" '
for d in "$MNT/src" "$MNT2/dst" "$MIRROR"; do
	assert_eq "$want" "$(privileged "$d")" "attributes in $d after a write"
done
ok "security.capability and trusted.* replicated; a write drops the capability in all three"

step "a directory in a store or in a mount, or the source under another name, is refused"
sed "s#dir://$MIRROR#dir://$STORE_B/blobs#" "$T/r.json" >"$T/in-store.json"
expect_error "is in the replicafs store $STORE_B" rfs replication put "$MNT/src" "$T/in-store.json"
mkdir -p "$MNT/src/loop"
sed "s#dir://$MIRROR#dir://$MNT/src/loop#" "$T/r.json" >"$T/in-mount.json"
expect_error "is in a replicafs mount" rfs replication put "$MNT/src" "$T/in-mount.json"
rmdir "$MNT/src/loop"
# A mirror that holds the store or a mount: its keys would land on the
# store's own files (a key st/catalog.db replaced the catalog), or in a
# bucket.  $T holds both; $T/holder only a mount of another store.
sed "s#dir://$MIRROR#dir://$T#" "$T/r.json" >"$T/holds.json"
expect_error "holds the store $STORE" rfs replication put "$MNT/src" "$T/holds.json"
mkdir -p "$T/holder/m"
"$REPLICAFS" mount "$T/storeH" "$T/holder/m"
track_mount "$T/holder/m"
sed "s#dir://$MIRROR#dir://$T/holder#" "$T/r.json" >"$T/holds-mount.json"
expect_error "holds the replicafs mount $T/holder/m" rfs replication put "$MNT/src" "$T/holds-mount.json"
fusermount3 -u "$T/holder/m"
ln -s "$STORE" "$T/alias"
sed "s#store://$STORE_B/dst#store://$T/alias/src#" "$T/r.json" >"$T/alias.json"
expect_error "cannot replicate to itself" rfs replication put "$MNT/src" "$T/alias.json"
rfs replication get "$MNT/src" | grep -q "dir://$MIRROR" || fail "a refused configuration replaced the one in force"
ok "refused, and the rules in force stay"

step "a store made inside the mirror later is never written into; a folder that only looks like one is"
mkdir -p "$MIRROR/tree/later/blobs" "$MIRROR/tree/later/open"
: >"$MIRROR/tree/later/catalog.db"
: >"$MIRROR/tree/later/lock"
# A user's folder with a catalog.db and a blobs/ was taken for a store.
mkdir -p "$MNT/src/tree/proj/blobs" "$MNT/src/tree/proj/src"
echo data >"$MNT/src/tree/proj/catalog.db"
echo pic >"$MNT/src/tree/proj/blobs/cat.jpg"
echo 'int main(void) {}' >"$MNT/src/tree/proj/src/main.c"
chmod 700 "$MIRROR/tree/later"
mkdir -p "$MNT/src/tree/later"
# The folder's own mode and owner were put on the store's root.
chmod 777 "$MNT/src/tree/later"
chown 4242 "$MNT/src/tree/later"
echo over >"$MNT/src/tree/later/catalog.db"
wait_delivered "$MNT/src" --timeout 30
assert_eq "700 0" "$(stat -c '%a %u' "$MIRROR/tree/later")" "mode and owner of the store's root in the mirror"
assert_eq FAILED "$(rstatus "$MNT/src/tree/later/catalog.db")" "status of a key that would land in a store"
assert_eq 0 "$(stat -c %s "$MIRROR/tree/later/catalog.db")" "size of the catalog.db of the store in the mirror"
rfs status "$MNT/src" 2>&1 | grep -q "is a replicafs store: a mirror never writes into one" ||
	fail "replicafs status does not say why the delivery failed: $(rfs status "$MNT/src" 2>&1)"
for f in catalog.db blobs/cat.jpg src/main.c; do
	cmp "$MNT/src/tree/proj/$f" "$MIRROR/tree/proj/$f" || fail "proj/$f in the mirror"
done
rm -rf "$MNT/src/tree/later" "$MIRROR/tree/later" "$MNT/src/tree/proj"
ok "the delivery fails, and says why; the store's files stay; the look-alike folder is mirrored"

step "a store reached through a bind mount takes replicas (copied, as link(2) cannot cross mounts)"
mkdir "$T/bind"
mount --bind "$T" "$T/bind"
track_mount "$T/bind"
sed "s#store://$STORE_B/dst#store://$T/bind/storeB/dst#" "$T/r.json" >"$T/bind.json"
rfs replication put "$MNT/src" "$T/bind.json" >/dev/null
gen_data 200000 7 >"$MNT/src/via-bind"
wait_delivered "$MNT/src" --timeout 30
assert_eq COMPLETED "$(rstatus "$MNT/src/via-bind")" "status of a version sent through the bind mount"
sleep 1.2
assert_same_file "$MNT/src/via-bind" "$MNT2/dst/via-bind" "the replica sent through the bind mount"
rfs replication put "$MNT/src" "$T/r.json" >/dev/null
umount -l "$T/bind"	# the daemon may hold the old destination open
ok "delivered, and the rules put back"

step "ExistingObjectReplication Enabled sends what was there before the rule"
assert_missing "$MNT2/dst/old" "a version written before the rule, before ExistingObjectReplication"
"$PYTHON" - "$T/r.json" "$T/existing.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["Rules"][0]["ExistingObjectReplication"] = {"Status": "Enabled"}
json.dump(c, open(sys.argv[2], "w"))
EOF
rfs replication put "$MNT/src" "$T/existing.json" >"$T/existing.out"
cat "$T/existing.out"
job=$(sed -n 's/^rule to-b: existing objects go in batch job \([0-9]*\) .*/\1/p' "$T/existing.out")
[ -n "$job" ] || fail "replication put with ExistingObjectReplication started no job: $(cat "$T/existing.out")"
batch_wait "$job" 30
wait_delivered "$MNT/src" --timeout 30
wait_for "$MNT2/dst/old" 10
assert_eq "before the rule" "$(cat "$MNT2/dst/old")" "a version written before the rule, on the replica"
rfs replication get "$MNT/src" | grep -q '"ExistingObjectReplication"' ||
	fail "replication get does not show ExistingObjectReplication"
rfs replication put "$MNT/src" "$T/r.json" >/dev/null
ok "the version written before any rule reached the replica, by batch job $job"

step "kill -9 of the daemon with deliveries queued: they complete after a restart"
# No workers in this daemon, so that the 30 deliveries are surely queued
# when it dies.
remount repl_workers=0
for i in $(seq 30); do echo "crash $i" >"$MNT/src/c$i"; done
crash_fs
lazy_unmount
mount_fs
wait_delivered "$MNT/src" --timeout 60
for i in $(seq 30); do
	assert_eq "crash $i" "$(cat "$MNT2/dst/c$i")" "c$i on the replica after the crash"
done
ok "30 versions queued before kill -9 reached the replica"

step "kill -9 in the middle of a delivery to the mirror: its temporary file goes with the restart"
# Before, a temporary file of a random name stayed in the mirror for good.
mkdir -p "$MNT/src/tree/kill"
gen_data $((512 * 1024 * 1024)) 11 >"$MNT/src/tree/kill/big"
# Watch without a fork per look (compgen is built in): the copy of 512
# MiB takes a fraction of a second.
seen=0
end=$((SECONDS + 20))
while [ "$SECONDS" -lt "$end" ]; do
	if compgen -G "$MIRROR/tree/kill/.big.replicafs-tmp.*" >/dev/null; then
		seen=1
		break
	fi
done
[ "$seen" = 1 ] || fail "no delivery of big to the mirror was seen under way"
crash_fs
lazy_unmount
[ -n "$(find "$MIRROR/tree/kill" -name '.big.replicafs-tmp.*')" ] ||
	fail "the delivery finished before the kill: nothing was tested"
log "   left by the kill: $(ls -a "$MIRROR/tree/kill" | tr '\n' ' ')"
big_sha=$(gen_data $((512 * 1024 * 1024)) 11 | sha256sum | cut -d' ' -f1)
mount_fs
wait_delivered "$MNT/src" --timeout 120
assert_eq "$big_sha" "$(sha_of "$MIRROR/tree/kill/big")" "big in the mirror after the restart"
assert_eq "" "$(find "$MIRROR" -name '*replicafs-tmp*')" "temporary files in the mirror after the restart"
rm -r "$MNT/src/tree/kill"
wait_delivered "$MNT/src" --timeout 60

step "replicafs replicate works without a mount"
# Queue one more version through a mount with no workers, then deliver it
# with the command.
remount repl_workers=0
echo "offline" >"$MNT/src/offline"
unmount_fs
out=$(rfs replicate "$STORE")
log "   $out"
sleep 1.2
assert_eq "offline" "$(cat "$MNT2/dst/offline")" "a version delivered by replicafs replicate"

step "a delivery past its rule's threshold is logged and runs the hook"
# A minute of 300 ms for this configuration: Minutes 1 is 0.3 s.
cat >"$T/rtc.json" <<EOF
{"Rules": [{"ID": "rtc", "Priority": 0, "Status": "Enabled", "Filter": {},
  "Destination": {"Bucket": "store://$STORE_B/dst",
    "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 1}}},
  "DeleteMarkerReplication": {"Status": "Disabled"}}]}
EOF
mount_fs repl_workers=0
REPLICAFS_TEST_MINUTE_MS=300 rfs replication put "$MNT/src" "$T/rtc.json" \
	--hook "echo \"\$REPLICAFS_KEY \$REPLICAFS_RULE\" >>$T/hook.out" >/dev/null
echo "slow" >"$MNT/src/slow"
sleep 1
remount
wait_delivered "$MNT/src" --timeout 30
poll 5 test -s "$T/hook.out" || true	# checked below
assert_eq "slow rtc" "$(cat "$T/hook.out" 2>/dev/null)" "what the threshold hook was told"
grep -q "past the threshold of rule rtc" "$(daemon_log)" ||
	fail "the daemon did not log the missed threshold"

step "rules replaced, then deleted, with deliveries pending: the batch job wait suggests makes it exit 0"
# The deliveries to a destination no rule named any more stayed FAILED:
# the batch job of FAILED versions sent them to the new rule's
# destination, and `wait` went on exiting 3 and suggesting that job.
mkdir -p "$T/re-old" "$T/re-new"
mkdir "$MNT/srcre"
dirrule() {	# dirrule FILE DIR: one rule of every key to dir://DIR
	printf '{"Rules": [{"ID": "re", "Priority": 1, "Status": "Enabled", "Filter": {},\n  "Destination": {"Bucket": "dir://%s"},\n  "DeleteMarkerReplication": {"Status": "Disabled"}}]}\n' "$2" >"$1"
}
dirrule "$T/re-old.json" "$T/re-old"
dirrule "$T/re-new.json" "$T/re-new"
rfs replication put "$MNT/srcre" "$T/re-old.json" >/dev/null
remount repl_workers=0
for i in 1 2 3; do echo "re $i" >"$MNT/srcre/f$i"; done
rfs replication put "$MNT/srcre" "$T/re-new.json" >/dev/null
remount
rc=0
rfs wait "$MNT/srcre" --timeout 30 || rc=$?
assert_eq 3 "$rc" "exit status of wait, the deliveries to the old destination FAILED"
job=$(rfs batch create "$MNT/srcre" --status FAILED)
batch_wait "$job" 60
rfs batch status "$job" "$MNT"
rc=0
rfs wait "$MNT/srcre" --timeout 30 || rc=$?
assert_eq 0 "$rc" "exit status of wait after the batch job of FAILED versions"
for i in 1 2 3; do
	assert_eq "re $i" "$(cat "$T/re-new/f$i")" "f$i at the new rule's destination"
	assert_eq COMPLETED "$(rstatus "$MNT/srcre/f$i")" "replication status of f$i"
done
assert_eq "" "$(ls "$T/re-old")" "what reached the old destination"
rfs status "$MNT/srcre" | tee "$T/re-status.out"
if grep -q "re-old" "$T/re-status.out"; then fail "status still counts the old destination"; fi
remount repl_workers=0
echo "re 4" >"$MNT/srcre/f4"
rfs replication delete "$MNT/srcre" >/dev/null
remount
rc=0
rfs wait "$MNT/srcre" --timeout 30 || rc=$?
assert_eq 3 "$rc" "exit status of wait, the rules deleted with f4 pending"
job=$(rfs batch create "$MNT/srcre" --status FAILED)
batch_wait "$job" 60
rc=0
rfs wait "$MNT/srcre" --timeout 30 || rc=$?
assert_eq 0 "$rc" "exit status of wait after the batch job, with no rule left"
assert_eq 1 "$(rfs batch status "$job" "$MNT" --json | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["skipped"])')" \
	"items of that job: f4's failure, forgotten"
ok "wait exits 0 once a batch job of FAILED versions ran under the rules there are"
unmount_fs
unmount_extra "$MNT2" b
unmount_extra "$MNT3" c
check_store
STORE=$STORE_B check_store
