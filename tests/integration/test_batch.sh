#!/bin/bash
#
# test_batch.sh - batch replication on real mounts: the four cases of S3
# Batch Replication (objects that existed before the rule, FAILED
# versions, versions COMPLETED to one destination sent to a new one,
# replicas sent on), a manifest with bad rows, a destination that fails
# fast, and kill -9 in the middle of a 5,000-item job.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
STORE_B=$T/storeB
STORE_C=$T/storeC
MIRROR=$T/mirror
mkdir -p "$MIRROR"

# A store with a bucket, made and left through a short-lived mount.
make_store() {
	local m=$T/mk
	mkdir -p "$m"
	"$REPLICAFS" mount "$1" "$m"
	mkdir "$m/$2"
	fusermount3 -u "$m"
	poll 5 not is_mounted "$m" || fail "$m is still mounted 5 s after fusermount3 -u"
}

# job_field JOB EXPR: a python expression over the job's status JSON `j`.
job_field() {
	rfs batch status "$1" "$MNT" --json | "$PYTHON" -c '
import json, sys
j = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$2"
}

# wait_job JOB: until the job is no longer Active (300 s at most).
wait_job() { batch_wait "$1" 300; }

# versions_of STORE BUCKET KEY: the version IDs of KEY in a store, newest
# first (through a short-lived mount).
replica_versions() {
	local m=$T/look
	mkdir -p "$m"
	"$REPLICAFS" mount "$1" "$m"
	rfs versions "$m/$2/$3" | cut -f1
	fusermount3 -u "$m"
	poll 5 not is_mounted "$m" || fail "$m is still mounted 5 s after fusermount3 -u"
}

step "the README shows each batch command as its usage does"
# The usage took [PATH | --store DIR] for list, status, run and cancel, and
# the README did not say so.
usage=$(rfs batch 2>&1) && fail "replicafs batch with no verb succeeded"
readme=$(sed 's/^ *//' "$RFS_ROOT/README.md")
while IFS= read -r line; do
	line=${line#usage: }
	line=${line#"${line%%[! ]*}"}
	[[ $readme == *"$line"* ]] || fail "README.md does not show the usage line '$line'"
done <<<"$usage"
ok "README.md shows the $(wc -l <<<"$usage") lines of the usage of replicafs batch"

make_store "$STORE_B" dst
make_store "$STORE_C" far
mount_fs
mkdir "$MNT/src"

step "objects written before the rule (NONE) go by a batch job, every version, in order"
for i in 1 2 3; do echo "old $i" >"$MNT/src/history"; done
mkdir "$MNT/src/docs"
for i in $(seq 20); do echo "doc $i" >"$MNT/src/docs/d$i"; done
ln -s docs/d1 "$MNT/src/link"
cat >"$T/r.json" <<EOF
{"Rules": [{"ID": "to-b", "Priority": 1, "Status": "Enabled", "Filter": {},
  "Destination": {"Bucket": "store://$STORE_B/dst"},
  "DeleteMarkerReplication": {"Status": "Enabled"}}]}
EOF
rfs replication put "$MNT/src" "$T/r.json" >/dev/null
rfs wait "$MNT/src" --timeout 10
[ "$(rfs status "$MNT/src" --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["operations_pending"])')" = 0 ] ||
	fail "live replication queued versions that existed before the rule"
expect_error "cannot replicate to itself" rfs batch create "$MNT/src" --status NONE --destination "store://$STORE/src"
job=$(rfs batch create --status NONE --report "$T/report1.csv" -- "$MNT/src")
log "   job $job"
wait_job "$job"
rfs batch status "$job" -- "$MNT/src"
assert_eq Complete "$(job_field "$job" "j['state']")" "state of the job"
assert_eq 25 "$(job_field "$job" "j['succeeded']")" "items delivered (3 versions, 20 docs, their folder, a link)"
assert_eq "$(rfs versions "$MNT/src/history" | cut -f1)" "$(replica_versions "$STORE_B" dst history)" \
	"the three versions of history on the replica, in order"
[ -s "$T/report1.csv" ] || fail "no report written"
assert_eq "bucket,key,version_id,destination,outcome,error" "$(head -1 "$T/report1.csv")" "report header"
# A task status, in the words of batch status and of S3's reports (it said
# COMPLETED, a replication status).
assert_eq 25 "$(grep -c ',succeeded,$' "$T/report1.csv")" "succeeded rows in the report"
assert_eq COMPLETED "$(getfattr --only-values -n system.replicafs.replication-status "$MNT/src/docs/d7")" \
	"status of an object sent by the job"
# Each form of PATH the usage gives: a path in the mount, none (the
# current directory), --store.
rfs batch list "$MNT/src/docs" | grep -q "^job $job on src: Complete" ||
	fail "batch list PATH: $(rfs batch list "$MNT/src/docs")"
(cd "$MNT/src" && rfs batch status "$job") | grep -q "^job $job on src: Complete" ||
	fail "batch status JOB in the mount without a PATH"
assert_eq 25 "$(rfs batch status "$job" --store "$STORE" --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["succeeded"])')" \
	"batch status JOB --store DIR --json"
[ "$(rfs batch list --store "$STORE" --json | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge 1 ] ||
	fail "batch list --store DIR --json lists no job"

step "a second job finds nothing left to send (no item sent twice)"
job=$(rfs batch create "$MNT/src" --status NONE)
wait_job "$job"
assert_eq 0 "$(job_field "$job" "j['items']")" "items of a job over nothing new"

step "FAILED versions: a destination that fails fast, then a job after the fix"
cat >"$T/r2.json" <<EOF
{"Rules": [{"ID": "to-b", "Priority": 1, "Status": "Enabled", "Filter": {},
  "Destination": {"Bucket": "store://$STORE_B/dst"},
  "DeleteMarkerReplication": {"Status": "Enabled"}},
 {"ID": "to-mirror", "Priority": 2, "Status": "Enabled", "Filter": {"Prefix": "new/"},
  "Destination": {"Bucket": "dir://$MIRROR"},
  "DeleteMarkerReplication": {"Status": "Enabled"}}]}
EOF
rfs replication put "$MNT/src" "$T/r2.json" >/dev/null
mv "$MIRROR" "$MIRROR.away"
touch "$MIRROR"
mkdir "$MNT/src/new"
for i in $(seq 10); do echo "new $i" >"$MNT/src/new/n$i"; done
rc=0
rfs wait "$MNT/src" --timeout 30 || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait with deliveries FAILED"
assert_eq FAILED "$(getfattr --only-values -n system.replicafs.replication-status "$MNT/src/new/n3")" \
	"status while the mirror is gone"
rfs status "$MNT/src" | grep -q "last error" || fail "status shows no reason for the failures"
rm "$MIRROR"
mv "$MIRROR.away" "$MIRROR"
job=$(rfs batch create "$MNT/src" --status FAILED --report "$T/report2.csv")
wait_job "$job"
assert_eq 11 "$(job_field "$job" "j['succeeded']")" "FAILED versions sent again (10 files and their folder)"
for i in $(seq 10); do assert_eq "new $i" "$(cat "$MIRROR/new/n$i")" "new/n$i in the mirror"; done
assert_eq COMPLETED "$(getfattr --only-values -n system.replicafs.replication-status "$MNT/src/new/n3")" \
	"status after the job"
rfs wait "$MNT/src" --timeout 30 || fail "replicafs wait: status $? once the job sent the FAILED versions again"
ok "replicafs wait exits 0 once nothing is FAILED any more"

step "COMPLETED versions go to a newly added destination"
mkdir -p "$T/newdisk"
job=$(rfs batch create "$MNT/src" --status COMPLETED --destination "dir://$T/newdisk" --prefix docs/)
wait_job "$job"
assert_eq 21 "$(job_field "$job" "j['succeeded']")" "docs and their folder sent to the new disk"
diff -r "$MNT/src/docs" "$T/newdisk/docs" || fail "the new disk's docs differ"

step "a backup bucket made after the data: .at shows it at the data's times"
# The replica keeps the source's times, but .at/TIME had no bucket
# before the bucket's mkdir, so a point-in-time restore from the backup
# found nothing.
before=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.1
make_store "$STORE_C" late
job=$(rfs batch create "$MNT/src" --status COMPLETED --destination "store://$STORE_C/late" --prefix docs/)
wait_job "$job"
m=$T/look
mkdir -p "$m"
"$REPLICAFS" mount "$STORE_C" "$m"
track_mount "$m"
assert_eq "$(ls "$MNT/.at/$before/src/docs")" "$(ls "$m/.at/$before/late/docs" 2>&1)" \
	"the backup's docs in .at before its bucket was made"
fusermount3 -u "$m"
poll 5 not is_mounted "$m" || fail "$m is still mounted 5 s after fusermount3 -u"
ok ".at of the backup shows the docs at a time before its bucket"

step "REPLICA versions: a batch job may send replicas on (live replication does not)"
unmount_fs
STORE_A=$STORE
STORE=$STORE_B
mount_fs
job=$(rfs batch create "$MNT/dst" --status REPLICA --destination "store://$STORE_C/far")
wait_job "$job"
[ "$(job_field "$job" "j['succeeded']")" -ge 25 ] || fail "replicas sent on: $(rfs batch status "$job" "$MNT/dst")"
unmount_fs
assert_eq "$(replica_versions "$STORE_B" dst history)" "$(replica_versions "$STORE_C" far history)" \
	"history's versions on the replica's replica"
STORE=$STORE_A
mount_fs

step "a manifest with a missing key and a bad row: reported per row, the rest goes on"
v1=$(rfs versions "$MNT/src/docs/d1" | cut -f1)
v2=$(rfs versions "$MNT/src/docs/d2" | cut -f1)
mkdir -p "$T/third"
{
	echo "src,docs/d1,$v1"
	echo "src,docs/no-such-key,$v1"
	echo 'src,"unterminated'
	echo "src,docs%2Fd2,$v2"
	echo "other,docs/d1,$v1"
} >"$T/manifest.csv"
# Filters choose what a job finds; with a manifest they are refused, not
# ignored.
for f in "--prefix docs/" "--status FAILED" "--created-before 2026-01-01T00:00:00Z"; do
	rc=0
	# shellcheck disable=SC2086 # the option and its value, split
	err=$(rfs batch create "$MNT/src" --manifest "$T/manifest.csv" $f --destination "dir://$T/third" 2>&1 >/dev/null) || rc=$?
	assert_eq 2 "$rc" "batch create --manifest with $f: exit status"
	grep -q "with --manifest it sends the manifest's rows as they are" <<<"$err" ||
		fail "batch create --manifest with $f does not say why: $err"
done
ok "batch create refuses --prefix, --status and --created-before with --manifest"
job=$(rfs batch create "$MNT/src" --manifest "$T/manifest.csv" --destination "dir://$T/third" --report "$T/report3.csv")
wait_job "$job"
assert_eq 2 "$(job_field "$job" "j['succeeded']")" "manifest rows delivered"
assert_eq 3 "$(job_field "$job" "j['failed']")" "manifest rows refused"
grep -q "^other,docs/d1,$v1,.*not the job's bucket" "$T/report3.csv" ||
	fail "the report does not give the row of another bucket as it was: $(cat "$T/report3.csv")"
assert_eq "doc 1" "$(cat "$T/third/docs/d1")" "d1 from the manifest"
assert_eq "doc 2" "$(cat "$T/third/docs/d2")" "d2 from the manifest (URL-encoded key)"
grep -q "NoSuchVersion" "$T/report3.csv" || fail "the report does not say why the missing key failed: $(cat "$T/report3.csv")"
grep -q "manifest line 3" "$T/report3.csv" || fail "the report does not name the bad line: $(cat "$T/report3.csv")"

step "manifest rows the rule does not take: a report row each, skipped, that says why"
# They were dropped: no row in the report, and not counted.
n1=$(rfs versions "$MNT/src/new/n1" | cut -f1)
{
	echo "src,docs/d1,$v1"
	echo "src,new/n1,$n1"
} >"$T/manifest7.csv"
job=$(rfs batch create "$MNT/src" --manifest "$T/manifest7.csv" --rule to-mirror --report "$T/report7.csv")
wait_job "$job"
assert_eq 2 "$(job_field "$job" "j['items']")" "items of a manifest of two rows"
assert_eq 2 "$(job_field "$job" "j['skipped']")" "rows skipped (one out of the rule's scope, one already there)"
grep -q "^src,docs/d1,$v1,,skipped,outside the job's scope: the key is not under the Filter prefix of any rule the job goes by$" "$T/report7.csv" ||
	fail "the report does not say why docs/d1 was skipped: $(cat "$T/report7.csv")"
grep -q "^src,new/n1,$n1,dir://$MIRROR,skipped,already at this destination$" "$T/report7.csv" ||
	fail "the report of new/n1: $(cat "$T/report7.csv")"
ok "a row out of the rule's scope is reported as skipped, with the reason"

step "a report's rows go back as a manifest: keys with +, % and spaces"
# The report wrote keys raw and the manifest decodes them: "a+b" came back
# as "a b", "100%25" as "100%", and those rows failed.
mkdir -p "$MNT/src/odd" "$T/fourth" "$T/fifth"
echo plus >"$MNT/src/odd/a+b"
echo pct >"$MNT/src/odd/100% done"
rfs wait "$MNT/src" --timeout 60 || true
{
	echo "src,odd/a%2Bb,$(rfs versions "$MNT/src/odd/a+b" | cut -f1)"
	echo "src,odd/100%25%20done,$(rfs versions "$MNT/src/odd/100% done" | cut -f1)"
} >"$T/manifest5.csv"
job=$(rfs batch create "$MNT/src" --manifest "$T/manifest5.csv" --destination "dir://$T/fourth" --report "$T/report5.csv")
wait_job "$job"
assert_eq 2 "$(job_field "$job" "j['succeeded']")" "rows of a manifest with encoded keys"
tail -n +2 "$T/report5.csv" | cut -d, -f1-3 >"$T/manifest6.csv"
job=$(rfs batch create "$MNT/src" --manifest "$T/manifest6.csv" --destination "dir://$T/fifth" --report "$T/report6.csv")
wait_job "$job"
assert_eq 2 "$(job_field "$job" "j['succeeded']")" "the report's rows sent again as a manifest"
assert_eq "plus pct" "$(cat "$T/fifth/odd/a+b") $(cat "$T/fifth/odd/100% done")" "the files sent by the report's rows"
ok "keys URL-encoded in the report, as the manifest has them"

step "kill -9 in the middle of a 5,000-item job, then completion, no duplicates"
mkdir "$MNT/src/many"
"$PYTHON" - "$MNT/src/many" <<'EOF'
import os, sys
for i in range(5000):
    with open(os.path.join(sys.argv[1], "f%04d" % i), "w") as f:
        f.write("item %d\n" % i)
EOF
rfs wait "$MNT/src" --timeout 120
mkdir -p "$T/big"
remount repl_workers=1
job=$(rfs batch create "$MNT/src" --prefix many/ --status NONE,COMPLETED --destination "store://$STORE_C/far" --report "$T/report4.csv")
for i in $(seq 400); do
	d=$(job_field "$job" "j['succeeded']")
	[ "$d" -ge 300 ] && break
	sleep 0.05
done
crash_fs
lazy_unmount
log "   killed with $d of 5000 delivered"
[ "$d" -lt 5000 ] || fail "the job finished before the kill; the test proves nothing"
mount_fs
wait_job "$job"
assert_eq Complete "$(job_field "$job" "j['state']")" "state after the restart"
assert_eq 5001 "$(job_field "$job" "j['succeeded']")" "items delivered (5,000 files and their folder)"
assert_eq 5002 "$(wc -l <"$T/report4.csv")" "report rows (with its header)"
assert_eq 5001 "$(grep -c ',succeeded,$' "$T/report4.csv")" "succeeded rows in the report"
unmount_fs
assert_eq 5001 "$(sqlite3 "$STORE_C/catalog.db" "SELECT count(*) FROM versions AS v JOIN objects AS o ON o.id = v.object WHERE o.key LIKE 'many/%'")" \
	"versions under many/ at the destination (each item once, the folder too)"
check_store
