#!/bin/bash
#
# test_s3.sh - replication to S3 in two regions: two Ceph RGW instances on
# 127.0.0.1 (scripts/rgw.sh), each its own region (zonegroup api_name), and
# one replication configuration that sends bucket src to both.  What
# arrived is checked with awscli (/usr/bin/aws), never with replicafs:
#
#   - remotes: add, list, remove; the file is 0600 and holds no secret;
#   - rules refused: a missing bucket, an unversioned one, a bucket in
#     another region than the remote's, a TLS endpoint without its CA;
#     accepted with --ca-file;
#   - a cp -a'd tree reaches both regions: every version in order, the
#     content's SHA-256, the s3fs attributes, symlinks and directory
#     markers as s3fs stores them; arn:aws:s3:::BUCKET through the AWS
#     config's endpoint_url and region;
#   - a 100 MiB file goes by multipart; radosgw is stopped in the middle
#     and started again: the version arrives, no upload is left over;
#   - another client's multipart upload of a key that replicafs sends in
#     parts is left alone, also by the daemon after one killed mid-upload,
#     which aborts only the upload the killed one left;
#   - delete markers travel where the rule says so, and not elsewhere;
#   - a wrong secret fails fast with S3's reason and two requests per
#     version; the right secret brings the next versions through;
#   - a version a batch job sends late does not become the current one,
#     also when the source's current entry is a delete marker the rule
#     does not send;
#   - batch cancel writes the report, and a delivery under way that
#     arrives counts as sent;
#   - no secret in any log or message.
#
# The RGW instances are started here and stopped by the EXIT trap, also
# when a check fails; the harness's state file names them too, for a test
# killed at its time limit.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

AWS=/usr/bin/aws	# Debian's awscli v2, not another aws earlier on PATH
for tool in radosgw ceph-mon ceph-osd "$AWS" openssl curl; do
	command -v "$tool" >/dev/null ||
		fail "$tool is not installed (scripts/deps.sh installs it)"
done

setup
RGW_DIRS=()

# s3_cleanup: stop the RGW instances this test started, then lib.sh's
# cleanup (which keeps the exit status).
s3_cleanup() {
	local rc=$? d
	set +eE	# a failed test must still reach cleanup
	trap - ERR
	for d in "${RGW_DIRS[@]}"; do
		if [ "$rc" != 0 ] && [ -n "${RFS_LOG_DIR:-}" ]; then
			cp "$d/log/client.rgw.a.log" \
				"$RFS_LOG_DIR/rgw-$(basename "$d").log" 2>/dev/null
		fi
		KEEP=0 "$RFS_ROOT/scripts/rgw.sh" stop "$d" >/dev/null 2>&1
	done
	(exit "$rc")
	cleanup
}
trap s3_cleanup EXIT

SECRET=testsecret
WRONG=WrongSecret0123456789xyz

step "start two RGW instances, regions region-a and region-b (in parallel)"
export MEMSTORE_BYTES=$((2 << 30))
RGW_TLS=1 RGW_REGION=region-a "$RFS_ROOT/scripts/rgw.sh" start "$T/rgw-a" \
	>"$T/rgw-a.out" 2>&1 &
pa=$!
RGW_REGION=region-b "$RFS_ROOT/scripts/rgw.sh" start "$T/rgw-b" \
	>"$T/rgw-b.out" 2>&1 &
pb=$!
for d in "$T/rgw-a" "$T/rgw-b"; do
	RGW_DIRS+=("$d")
	state_note rgw "$d"
done
wait "$pa" || fail "RGW region-a did not start: $(tail -20 "$T/rgw-a.out")"
wait "$pb" || fail "RGW region-b did not start: $(tail -20 "$T/rgw-b.out")"
EP_A=$(. "$T/rgw-a/env" && echo "$S3_ENDPOINT")
EP_B=$(. "$T/rgw-b/env" && echo "$S3_ENDPOINT")
TLS_A=$(. "$T/rgw-a/env" && echo "$S3_TLS_ENDPOINT")
CA_A=$(. "$T/rgw-a/env" && echo "$S3_CA")
ok "region-a at $EP_A (and $TLS_A), region-b at $EP_B, in ${SECONDS}s"

# Where replicafs finds its remotes and the keys, as a user's ~/.aws.
export REPLICAFS_CONFIG_DIR=$T/config
export AWS_SHARED_CREDENTIALS_FILE=$T/aws/credentials
export AWS_CONFIG_FILE=$T/aws/config
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
	AWS_DEFAULT_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL \
	AWS_ENDPOINT_URL_S3
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
mkdir -p "$T/aws"
# creds_file FLAKY_SECRET: [default] for every remote, [flaky] for one.
creds_file() {
	cat >"$T/aws/credentials.new" <<EOF
[default]
aws_access_key_id = testaccess
aws_secret_access_key = $SECRET

[flaky]
aws_access_key_id = testaccess
aws_secret_access_key = $1
EOF
	mv "$T/aws/credentials.new" "$T/aws/credentials"
}
creds_file "$SECRET"
# The config: the default profile points at region-b, for arn:aws:s3:::.
cat >"$T/aws/config" <<EOF
[default]
region = region-b
endpoint_url = $EP_B

[profile unused]
region = nowhere-1
EOF

# awscli for checks, with its own keys and no config file of ours.
aws_at() {
	local ep=$1 region=$2
	shift 2
	AWS_ACCESS_KEY_ID=testaccess AWS_SECRET_ACCESS_KEY=$SECRET \
		AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
		"$AWS" --endpoint-url "$ep" --region "$region" "$@"
}
aa() { aws_at "$EP_A" region-a "$@"; }
ab() { aws_at "$EP_B" region-b "$@"; }
# xattr NAME PATH: the value of extended attribute NAME of PATH.
xattr() { getfattr --absolute-names --only-values -n "$1" "$2"; }
# py EXPR FILE: a python expression over the JSON document `d` in FILE
# (awscli prints nothing for an empty answer: that is {}).
py() { "$PYTHON" -c 'import json,sys; t=open(sys.argv[2]).read(); d=json.loads(t) if t.strip() else {}; r=eval(sys.argv[1]); print(str(r).lower() if isinstance(r,bool) else r)' "$1" "$2"; }

step "buckets: versioned dst-a and unversioned plain-a on A, versioned dst-b on B"
mkb() {	# mkb a|b BUCKET versioned|plain
	local f=a$1 loc=region-$1
	"$f" s3api create-bucket --bucket "$2" \
		--create-bucket-configuration "LocationConstraint=$loc" >/dev/null
	[ "$3" = plain ] || "$f" s3api put-bucket-versioning --bucket "$2" \
		--versioning-configuration Status=Enabled
}
pids=()
mkb a dst-a versioned & pids+=($!)
mkb a plain-a plain & pids+=($!)
mkb b dst-b versioned & pids+=($!)
for p in "${pids[@]}"; do wait "$p" || fail "making the buckets failed"; done
ok "three buckets in ${SECONDS}s"

step "remote add, list, remove; the file is 0600 and has no secret"
rfs remote add a "$EP_A" --region region-a --path-style
rfs remote add b "$EP_B/" --region region-b
rfs remote add c "$EP_A" --region region-a --profile flaky
rfs remote add wrongregion "$EP_A" --region region-b
rfs remote add tls "$TLS_A" --region region-a --ca-file "$CA_A"
rfs remote add tlsnoca "$TLS_A" --region region-a
rfs remote add tmp http://127.0.0.1:9 --multipart-threshold 32M --parallel 8
expect_error "exists" rfs remote add a "$EP_A"
expect_error "user name or password" rfs remote add bad "http://k:s@127.0.0.1:1"
expect_error "path" rfs remote add bad "$EP_A/some/path"
expect_error "5 MiB" rfs remote add bad "$EP_A" --part-size 1M
rfs remote list | tee "$T/list.out"
grep -q "^tmp .*multipart-threshold=33554432 parallel=8" "$T/list.out" ||
	fail "remote list does not show tmp's settings"
rfs remote remove tmp
expect_error "no remote named tmp" rfs remote remove tmp
rfs remote list --json >"$T/list.json"
assert_eq "a b c wrongregion tls tlsnoca" \
	"$(py '" ".join(r["name"] for r in d)' "$T/list.json")" "remotes listed"
assert_eq 600 "$(stat -c %a "$T/config/remotes")" "mode of the remotes file"
if grep -q "$SECRET" "$T/config/remotes"; then fail "a secret in the remotes file"; fi
[ ! -e "$T/config/remotes.lock" ] || fail "remotes.lock left behind"

export REPLICAFS_TEST_S3_SEND_BPS=$((4 << 20))	# the multipart step's pace
mount_fs repl_backoff_ms=200,repl_attempts=40
mkdir "$MNT/src" "$MNT/src2" "$MNT/scratch"

step "rules that S3 would refuse are refused, with the reason"
# rule FILE URL [URL2]: one enabled rule (two with URL2) of every key.
rule() {
	{
		printf '{"Rules": [{"ID": "r1", "Priority": 1, "Status": "Enabled", "Filter": {},\n'
		printf '  "Destination": {"Bucket": "%s"}, "DeleteMarkerReplication": {"Status": "Enabled"}}' "$2"
		[ -z "${3:-}" ] || printf ',\n {"ID": "r2", "Priority": 2, "Status": "Enabled", "Filter": {},\n  "Destination": {"Bucket": "%s"}}' "$3"
		printf ']}\n'
	} >"$1"
}
rule "$T/r.json" s3://a/nosuchbucket
expect_error "bucket nosuchbucket does not exist on remote a" \
	rfs replication put "$MNT/scratch" "$T/r.json"
rule "$T/r.json" s3://a/plain-a
expect_error "versioning of bucket plain-a on remote a is not Enabled" \
	rfs replication put "$MNT/scratch" "$T/r.json"
rule "$T/r.json" s3://wrongregion/dst-a
expect_error "bucket dst-a is in region region-a, but remote wrongregion is for region region-b" \
	rfs replication put "$MNT/scratch" "$T/r.json"
rule "$T/r.json" s3://nosuchremote/dst-a
expect_error "no remote named nosuchremote" rfs replication put "$MNT/scratch" "$T/r.json"
rule "$T/r.json" s3://tlsnoca/dst-a
expect_error "certificate" rfs replication put "$MNT/scratch" "$T/r.json"
rule "$T/r.json" s3://tls/dst-a
rfs replication put "$MNT/scratch" "$T/r.json" >/dev/null
ok "over https with --ca-file the rule is accepted"
rfs replication delete "$MNT/scratch" >/dev/null

step "one configuration, src to region-a and region-b (and arn:aws:s3::: to B's root)"
cat >"$T/src.json" <<EOF
{"Rules": [
 {"ID": "to-a", "Priority": 1, "Status": "Enabled", "Filter": {},
  "Destination": {"Bucket": "s3://a/dst-a"},
  "DeleteMarkerReplication": {"Status": "Disabled"}},
 {"ID": "to-b", "Priority": 2, "Status": "Enabled", "Filter": {},
  "Destination": {"Bucket": "s3://b/dst-b/copy"},
  "DeleteMarkerReplication": {"Status": "Enabled"}},
 {"ID": "to-arn", "Priority": 3, "Status": "Enabled",
  "Filter": {"Prefix": "tree/sub/"},
  "Destination": {"Bucket": "arn:aws:s3:::dst-b"}}
]}
EOF
rfs replication put "$MNT/src" "$T/src.json"
# One bucket under two names: S3 applies only the higher priority of the
# rules that send to one bucket, and the two names made two destinations.
sed 's#"s3://b/dst-b/copy"#"s3://b/dst-b"#; s#"Prefix": "tree/sub/"##' "$T/src.json" >"$T/alias.json"
expect_error "under two names" rfs replication put "$MNT/scratch" "$T/alias.json"

step "a cp -a'd tree and three versions of one key"
TREE=$T/tree
mkdir -p "$TREE/sub/deeper" "$TREE/empty" "$TREE/sp ace/ünï"
for i in $(seq 12); do gen_small $((i * 211)) "$i" >"$TREE/sub/f$i"; done
gen_data 3000000 5 >"$TREE/sub/deeper/mid.bin"
gen_small 100 x >"$TREE/sp ace/ünï/a b.txt"
gen_small 10 y >"$TREE/dm-test"
ln -s "sub/f1" "$TREE/link"
chmod 600 "$TREE/sub/f3"
chmod 751 "$TREE/sub/deeper"
chown 1234:5678 "$TREE/sub/f5"
touch -d '2021-02-03 04:05:06.123456789' "$TREE/sub/f5"
cp -a "$TREE" "$MNT/src/tree"
for i in 1 2 3; do gen_small $((i * 100)) "v$i" >"$MNT/src/multi"; done
t0=$SECONDS
rfs wait "$MNT/src" --timeout 120
ok "replicated in $((SECONDS - t0))s"
rfs status "$MNT/src"
rfs status "$MNT/src" --json >"$T/status.json"
assert_eq 0 "$(py 'sum(x["operations_failed"] for x in d)' "$T/status.json")" "failed operations"

step "delete markers: rm reaches region-b (rule Enabled), not region-a (Disabled)"
rm "$MNT/src/tree/dm-test"
rfs wait "$MNT/src" --timeout 60

step "the 100 MiB file goes by multipart; radosgw of region-a restarts mid-way"
gen_data $((100 << 20)) 42 >"$T/big"
# The ETag a multipart upload of it in 16 MiB parts must get: the MD5 of
# the parts' MD5s (each part was checked against its Content-MD5).
BIG_ETAG=$("$PYTHON" -c '
import hashlib, sys
f = open(sys.argv[1], "rb"); d = b""; n = 0
while True:
    b = f.read(16 << 20)
    if not b: break
    d += hashlib.md5(b).digest(); n += 1
print("\"%s-%d\"" % (hashlib.md5(d).hexdigest(), n))' "$T/big")
cp "$T/big" "$MNT/src/big"
# 7 parts of 16 MiB, 4 at a time at 4 MiB/s each: about 8 s in all.  Stop
# radosgw when the first part is in (radosgw logs a request when done).
poll 20 grep -q '"PUT /dst-a/big?partNumber=' "$T/rgw-a/log/client.rgw.a.log" ||
	fail "no part of big reached region-a in 20 s"
"$RFS_ROOT/scripts/rgw.sh" stop-rgw "$T/rgw-a"
sleep 2
"$RFS_ROOT/scripts/rgw.sh" start-rgw "$T/rgw-a"
t0=$SECONDS
rfs wait "$MNT/src" --timeout 120
ok "the big file arrived $((SECONDS - t0))s after radosgw came back"
assert_eq COMPLETED "$(xattr system.replicafs.replication-status "$MNT/src/big")" \
	"replication status of big"
grep -E "big .*(retrying)" "$(daemon_log)" | head -3 ||
	fail "the delivery of big to region-a was not retried: was radosgw stopped too late?"

step "what region-a and region-b hold, by awscli (in parallel)"
check_side() {	# check_side a|b BUCKET PREFIX: downloads and listings into $T/chk-X
	local s=$1 b=$2 p=$3 f=a$1 dir=$T/chk-$1
	mkdir -p "$dir"
	"$f" s3api list-object-versions --bucket "$b" >"$dir/versions.json" &&
	"$f" s3 sync --quiet "s3://$b/${p}tree/" "$dir/tree/" &&
	"$f" s3api head-object --bucket "$b" --key "${p}tree/sub/f5" >"$dir/f5.json" &&
	"$f" s3api head-object --bucket "$b" --key "${p}tree/link" >"$dir/link.json" &&
	"$f" s3api head-object --bucket "$b" --key "${p}tree/sub/deeper/" >"$dir/dir.json" &&
	"$f" s3api list-multipart-uploads --bucket "$b" >"$dir/uploads.json"
}
check_side a dst-a "" & pa=$!
check_side b dst-b copy/ & pb=$!
aa s3api list-object-versions --bucket dst-a --prefix multi >"$T/multi.json"
VID1=$(py '[v["VersionId"] for v in d["Versions"] if v["Key"]=="multi"][-1]' "$T/multi.json")
# --version-id=ID: an RGW version ID may begin with '-', which awscli
# would take for an option when given as a separate word.
[ -n "$VID1" ] || fail "no version of multi listed in region-a"
aa s3api get-object --bucket dst-a --key multi --version-id="$VID1" "$T/multi-v1" \
	>"$T/multi-v1.json"
wait "$pa" || fail "awscli checks of region-a failed"
wait "$pb" || fail "awscli checks of region-b failed"

for s in a b; do
	dir=$T/chk-$s
	p=""
	[ "$s" = b ] && p=copy/
	# every file of the tree, same SHA-256 (symlinks hold their target)
	(cd "$TREE" && find . -type f -o -type l | sort) >"$T/names"
	while read -r n; do
		if [ -L "$TREE/$n" ]; then
			assert_eq "$(readlink "$TREE/$n")" "$(cat "$dir/tree/$n")" "symlink $n in region-$s"
		elif [ "$n" != ./dm-test ] || [ "$s" = a ]; then
			assert_eq "$(sha_of "$TREE/$n")" "$(sha_of "$dir/tree/$n")" "SHA-256 of $n in region-$s"
		fi
	done <"$T/names"
	# three versions of multi, newest first, by their sizes
	assert_eq "300 200 100" \
		"$(py '" ".join(str(v["Size"]) for v in d["Versions"] if v["Key"]=="'"$p"'multi")' "$dir/versions.json")" \
		"sizes of the versions of multi in region-$s, newest first"
	assert_eq true \
		"$(py '[v["IsLatest"] for v in d["Versions"] if v["Key"]=="'"$p"'multi"][0]' "$dir/versions.json")" \
		"the newest version of multi is the latest in region-$s"
	# the s3fs attributes
	assert_eq "$(stat -c %Y "$TREE/sub/f5").123456789" "$(py 'd["Metadata"]["mtime"]' "$dir/f5.json")" \
		"x-amz-meta-mtime of f5 in region-$s"
	assert_eq "$(printf %d 0100644)" "$(py 'd["Metadata"]["mode"]' "$dir/f5.json")" "mode of f5 in region-$s"
	assert_eq "1234 5678" "$(py 'd["Metadata"]["uid"]+" "+d["Metadata"]["gid"]' "$dir/f5.json")" \
		"uid and gid of f5 in region-$s"
	assert_eq "$(xattr system.replicafs.version-id "$MNT/src/tree/sub/f5")" \
		"$(py 'd["Metadata"]["replicafs-version-id"]' "$dir/f5.json")" "source version ID of f5 in region-$s"
	assert_eq "$(printf %d 0120777)" "$(py 'd["Metadata"]["mode"]' "$dir/link.json")" "mode of the symlink in region-$s"
	assert_eq "$(printf %d 040751)" "$(py 'd["Metadata"]["mode"]' "$dir/dir.json")" "mode of the directory marker in region-$s"
	assert_eq "application/x-directory 0" "$(py 'd["ContentType"]+" "+str(d["ContentLength"])' "$dir/dir.json")" \
		"the directory marker in region-$s"
	# the big file: multipart (its ETag has a part count), no upload left
	assert_eq "$BIG_ETAG" \
		"$(py '[v["ETag"] for v in d["Versions"] if v["Key"]=="'"$p"'big"][0]' "$dir/versions.json")" \
		"ETag of big in region-$s (7 parts, each part's MD5 the source's)"
	assert_eq 0 "$(py 'len(d.get("Uploads", []))' "$dir/uploads.json")" "multipart uploads left in region-$s"
done
assert_eq "$(gen_small 100 v1)" "$(cat "$T/multi-v1")" "the oldest version of multi"
# delete markers: in region-b (Enabled), not in region-a (Disabled)
assert_eq "" "$(py '" ".join(m["Key"] for m in d.get("DeleteMarkers", []))' "$T/chk-a/versions.json")" \
	"delete markers in region-a"
assert_eq "copy/tree/dm-test true" \
	"$(py '" ".join(m["Key"]+" "+str(m["IsLatest"]).lower() for m in d.get("DeleteMarkers", []))' "$T/chk-b/versions.json")" \
	"delete markers in region-b"
# arn:aws:s3:::dst-b went to region-b's root, with only tree/sub/ (keys:
# cp -a sets attributes after each file's close, and an attribute that
# changes after a version went is a copy with new metadata, a version of
# its own, as in S3)
assert_eq "$(cd "$TREE" && find sub | wc -l)" \
	"$(py 'len(set(v["Key"] for v in d["Versions"] if v["Key"].startswith("tree/sub/")))' "$T/chk-b/versions.json")" \
	"keys of tree/sub/ at the root of dst-b (arn:aws:s3:::dst-b)"
assert_eq "0" "$(py 'len([v for v in d["Versions"] if not v["Key"].startswith(("tree/sub/", "copy/"))])' "$T/chk-b/versions.json")" \
	"objects of dst-b outside tree/sub/ and copy/"
# the big file's content, from region-a (where radosgw restarted)
grep -q "aborted 1 multipart upload" "$(daemon_log)" &&
	ok "the upload that radosgw's stop interrupted was aborted" ||
	log "   (no stale upload to abort: the first attempt's abort went through)"

# theirs_start KEY: another client (awscli) starts a multipart upload of
# KEY at dst-a and sends its one part; prints "UPLOADID ETAG".
theirs_start() {
	local id etag
	id=$(aa s3api create-multipart-upload --bucket dst-a --key "$1" \
		--query UploadId --output text)
	gen_small 1000 theirs >"$T/theirs.part"
	etag=$(aa s3api upload-part --bucket dst-a --key "$1" --part-number 1 \
		--upload-id="$id" --body "$T/theirs.part" --query ETag --output text)
	printf '%s %s\n' "$id" "$(printf '%s' "$etag" | tr -d '"')"
}
# theirs_check KEY UPLOADID ETAG: that upload is the only one of KEY listed
# at dst-a, and it completes, with the other client's content.
theirs_check() {
	aa s3api list-multipart-uploads --bucket dst-a --prefix "$1" >"$T/uploads.json"
	assert_eq "$2" \
		"$(py '" ".join(u["UploadId"] for u in d.get("Uploads", []) if u["Key"] == "'"$1"'")' "$T/uploads.json")" \
		"uploads of $1 in progress at dst-a (the other client's alone)"
	printf '{"Parts": [{"PartNumber": 1, "ETag": "\\"%s\\""}]}\n' "$3" >"$T/parts.json"
	aa s3api complete-multipart-upload --bucket dst-a --key "$1" --upload-id="$2" \
		--multipart-upload "file://$T/parts.json" >/dev/null ||
		fail "the other client's upload of $1 could not be completed"
	aa s3api get-object --bucket dst-a --key "$1" "$T/theirs.out" >/dev/null
	assert_eq "$(sha_of "$T/theirs.part")" "$(sha_of "$T/theirs.out")" \
		"content of $1 at dst-a once the other client completed its upload"
}

step "another client's multipart upload of a key outlives a large delivery of that key"
# Before, the look for our leftovers before a multipart upload aborted
# every upload in progress for the key, and the other client's
# CompleteMultipartUpload then failed with NoSuchUpload.
mkdir "$MNT/src/other" "$MNT/src/crash"
theirs=$(theirs_start other/big)
read -r THEIRS THEIRS_ETAG <<<"$theirs"
gen_data $((17 << 20)) 17 >"$MNT/src/other/big"
rfs wait "$MNT/src" --timeout 120
assert_eq COMPLETED "$(xattr system.replicafs.replication-status "$MNT/src/other/big")" \
	"replication status of other/big"
aa s3api list-object-versions --bucket dst-a --prefix other/big >"$T/ob.json"
assert_eq 1 "$(py 'sum(v["Key"] == "other/big" and v["ETag"].endswith("-2\"") for v in d.get("Versions", []))' "$T/ob.json")" \
	"versions of other/big at dst-a sent in 2 parts (ours)"
theirs_check other/big "$THEIRS" "$THEIRS_ETAG"
ok "the other client's upload was left alone and completed after ours"

step "a daemon killed mid-upload: the next one aborts the upload it left, and not another client's"
theirs=$(theirs_start crash/big)
read -r THEIRS THEIRS_ETAG <<<"$theirs"
gen_data $((40 << 20)) 40 >"$MNT/src/crash/big"
# 3 parts at 4 MiB/s each: the last is in after 2 s, the others after 4 s.
# Kill when one of ours is in (awscli's part, which names its client, is
# not ours).
for i in $(seq 200); do
	grep '"PUT /dst-a/crash/big?partNumber=' "$T/rgw-a/log/client.rgw.a.log" |
		grep -v aws-cli >/dev/null && break
	sleep 0.1
done
[ "$i" -lt 200 ] || fail "no part of crash/big reached region-a in 20 s"
kill9_fs
mount_fs repl_backoff_ms=200,repl_attempts=40
rfs wait "$MNT/src" --timeout 120
assert_eq COMPLETED "$(xattr system.replicafs.replication-status "$MNT/src/crash/big")" \
	"replication status of crash/big after the kill"
grep -qF "s3://a/dst-a: crash/big: aborted 1 multipart upload" "$(daemon_log)" ||
	fail "the next daemon did not abort (just) the upload the killed one left: $(grep -F "crash/big: aborted" "$(daemon_log)" || true)"
theirs_check crash/big "$THEIRS" "$THEIRS_ETAG"
ok "the killed daemon's upload was aborted, the other client's completed"

step "a chmod at the source reaches the replica (a copy with new metadata)"
chmod 640 "$MNT/src/tree/sub/f1"
rfs wait "$MNT/src" --timeout 60
aa s3api head-object --bucket dst-a --key tree/sub/f1 >"$T/f1.json"
assert_eq "$(printf %d 0100640)" "$(py 'd["Metadata"]["mode"]' "$T/f1.json")" "mode of f1 after chmod"

step "tags set, changed and removed after the delivery reach the S3 version, and a chmod keeps them"
# Before, a tag set after the version had gone reached a second store but
# not S3, and RGW's CopyObject (a chmod) dropped the tags there.
tags_of() {	# tags_of KEY: the tag set of KEY at dst-a, "k=v" sorted
	aa s3api get-object-tagging --bucket dst-a --key "$1" >"$T/tags.json"
	py '" ".join(sorted(t["Key"] + "=" + t["Value"] for t in d["TagSet"]))' "$T/tags.json"
}
nv_of() {	# nv_of KEY: how many versions KEY has at dst-a
	aa s3api list-object-versions --bucket dst-a --prefix "$1" >"$T/nv.json"
	py "sum(v['Key'] == '$1' for v in d.get('Versions', []))" "$T/nv.json"
}
f=$MNT/src/tree/sub/f2
echo tagged >"$f"
rfs wait "$MNT/src" --timeout 60
n0=$(nv_of tree/sub/f2)
setfattr -n user.s3.tag.env -v prod "$f"
setfattr -n user.s3.tag.team -v "a&b <c>" "$f"
rfs wait "$MNT/src" --timeout 60
assert_eq "env=prod team=a&b <c>" "$(tags_of tree/sub/f2)" "tags at dst-a after setfattr"
assert_eq "$n0" "$(nv_of tree/sub/f2)" "versions at dst-a after a tag change (none new)"
setfattr -x user.s3.tag.team "$f"
rfs wait "$MNT/src" --timeout 60
assert_eq "env=prod" "$(tags_of tree/sub/f2)" "tags at dst-a after setfattr -x"
chmod 604 "$f"
rfs wait "$MNT/src" --timeout 60
assert_eq "env=prod" "$(tags_of tree/sub/f2)" "tags at dst-a after a chmod"
setfattr -x user.s3.tag.env "$f"
rfs wait "$MNT/src" --timeout 60
assert_eq "" "$(tags_of tree/sub/f2)" "tags at dst-a once all are removed"

step "a wrong secret fails fast with S3's reason; the right one heals"
rule "$T/c.json" s3://c/dst-a/flaky
rfs replication put "$MNT/src2" "$T/c.json" >/dev/null
creds_file "$WRONG"
sleep 1.2	# credentials are looked at again once a second
n0=$(grep -c '"[A-Z]* /dst-a/flaky/' "$T/rgw-a/log/client.rgw.a.log" || true)
t0=$(date +%s%N)
for i in 1 2 3; do echo "bad $i" >"$MNT/src2/bad$i"; done
rc=0
rfs wait "$MNT/src2" --timeout 60 || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait with deliveries FAILED"
took=$((($(date +%s%N) - t0) / 1000000))
sleep 0.5	# radosgw's log is written behind
n1=$(grep -c '"[A-Z]* /dst-a/flaky/' "$T/rgw-a/log/client.rgw.a.log" || true)
for i in 1 2 3; do
	assert_eq FAILED "$(xattr system.replicafs.replication-status "$MNT/src2/bad$i")" \
		"status of bad$i with a wrong secret"
done
rfs status "$MNT/src2" | tee "$T/status2.out"
grep -q "SignatureDoesNotMatch" "$T/status2.out" || fail "status does not show S3's reason"
grep -q "gave up after" "$T/status2.out" && fail "a wrong secret was retried"
[ "$took" -lt 15000 ] || fail "FAILED only after $took ms"
[ $((n1 - n0)) -le 6 ] || fail "$((n1 - n0)) requests for 3 versions: the endpoint is hammered"
ok "FAILED in $took ms, $((n1 - n0)) requests for 3 versions"
creds_file "$SECRET"
sleep 1.2
for i in 1 2; do echo "good $i" >"$MNT/src2/good$i"; done
echo "bad 2, fixed" >"$MNT/src2/bad2"	# a v2 that goes before the FAILED v1
rc=0
rfs wait "$MNT/src2" --timeout 60 || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait while bad1..3 stay FAILED"
for i in 1 2; do
	assert_eq COMPLETED "$(xattr system.replicafs.replication-status "$MNT/src2/good$i")" \
		"status of good$i with the right secret"
done
# The versions that FAILED with the wrong secret go by a batch job.
job=$(rfs batch create "$MNT/src2" --status FAILED)
batch_wait "$job" 120
rfs batch status "$job" "$MNT" --json >"$T/job.json"
assert_eq "Complete 3 0" "$(py 'd["state"], d["succeeded"], d["failed"]' "$T/job.json" | tr -d "(),'")" \
	"batch job of the FAILED versions: state, succeeded, failed"
for i in 1 2 3; do
	assert_eq COMPLETED "$(xattr system.replicafs.replication-status "$MNT/src2/bad$i")" \
		"status of bad$i after the batch job"
done
rfs wait "$MNT/src2" --timeout 60 || fail "replicafs wait: status $? once the batch job sent the FAILED versions"
aa s3api list-object-versions --bucket dst-a --prefix flaky/ >"$T/c.json"
assert_eq "flaky/bad1 flaky/bad2 flaky/bad3 flaky/good1 flaky/good2" \
	"$(py '" ".join(sorted(set(v["Key"] for v in d["Versions"])))' "$T/c.json")" \
	"what reached dst-a/flaky/"
# bad2's v1 arrived after v2: it is in the history, and v2 went again
# after it, so that the newest at region-a is the source's.
assert_eq 3 "$(py 'sum(v["Key"] == "flaky/bad2" for v in d["Versions"])' "$T/c.json")" \
	"versions of flaky/bad2 at region-a (v2, v1 sent late, v2 again)"
aa s3api get-object --bucket dst-a --key flaky/bad2 "$T/bad2.out" >/dev/null
assert_eq "bad 2, fixed" "$(cat "$T/bad2.out")" "content of flaky/bad2 at region-a"
aa s3api get-object --bucket dst-a --key flaky/bad1 "$T/bad1.out" >/dev/null
assert_eq "bad 1" "$(cat "$T/bad1.out")" "content of flaky/bad1 at region-a"
ok "a late version is kept in the history and the current one stays newest"

step "a late version sent after a delete marker the rule keeps back: the newest version sent goes again"
# The version current at the source was a delete marker that the rule
# (DeleteMarkerReplication Disabled) never sent, so nothing went after
# the late version, and the replica went back to it.
mkdir "$MNT/srcdm"
cat >"$T/dm.json" <<JSON
{"Rules": [{"ID": "dm", "Priority": 1, "Status": "Enabled", "Filter": {},
  "Destination": {"Bucket": "s3://c/dst-a/dmlate"},
  "DeleteMarkerReplication": {"Status": "Disabled"}}]}
JSON
rfs replication put "$MNT/srcdm" "$T/dm.json" >/dev/null
creds_file "$WRONG"
sleep 1.2	# credentials are looked at again once a second
echo "k2 old" >"$MNT/srcdm/k2"
rc=0
rfs wait "$MNT/srcdm" --timeout 60 || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait with the old version of k2 FAILED"
creds_file "$SECRET"
sleep 1.2
echo "k2 new" >"$MNT/srcdm/k2"
rc=0
rfs wait "$MNT/srcdm" --timeout 60 || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait with the new version of k2 COMPLETED"
rm "$MNT/srcdm/k2"
job=$(rfs batch create "$MNT/srcdm" --status FAILED)
batch_wait "$job" 120
rfs wait "$MNT/srcdm" --timeout 60 || fail "replicafs wait: status $? once the batch job sent the old version of k2"
aa s3api list-object-versions --bucket dst-a --prefix dmlate/ >"$T/dm.out"
aa s3api get-object --bucket dst-a --key dmlate/k2 "$T/k2.out" >/dev/null
assert_eq "k2 new" "$(cat "$T/k2.out")" \
	"content of dmlate/k2 at region-a after the late old version"
assert_eq 3 "$(py 'sum(v["Key"] == "dmlate/k2" for v in d["Versions"])' "$T/dm.out")" \
	"versions of dmlate/k2 at region-a (new, old sent late, new again)"
assert_eq 0 "$(py 'len(d.get("DeleteMarkers", []))' "$T/dm.out")" \
	"delete markers of dmlate/ at region-a (the rule sends none)"
ok "the old version is in the history, the newest version sent is current again"

step "batch cancel: the report is written, and what was under way and arrived counts as sent"
# The cancel wrote no report, and dropped the deliveries under way: those
# that then reached the bucket were counted CANCELLED.
mkdir "$MNT/srccan"
for i in $(seq 1 12); do gen_data $((2 << 20)) "$i" >"$MNT/srccan/f$i"; done
n0=$(grep -c '"PUT /dst-a/cancel/' "$T/rgw-a/log/client.rgw.a.log" || true)
job=$(rfs batch create "$MNT/srccan" --status NONE --destination s3://a/dst-a/cancel \
	--report "$T/cancel.csv")
# 2 MiB at 4 MiB/s: half a second each, three at once.  Cancel when the
# first is in, with the next ones under way.
cancel_put_in() { [ "$(grep -c '"PUT /dst-a/cancel/' "$T/rgw-a/log/client.rgw.a.log")" -gt "$n0" ]; }
poll 20 cancel_put_in || fail "no object of the job reached region-a in 20 s"
rfs batch cancel "$job" "$MNT" | tee "$T/cancel.out"
end=$((SECONDS + 60))
while [ "$(rfs batch status "$job" "$MNT" --json | py 'd["pending"]' /dev/stdin)" != 0 ]; do
	[ $SECONDS -lt $end ] || fail "deliveries of the cancelled job $job still pending after 60 s"
	sleep 0.1
done
rfs batch status "$job" "$MNT" --json >"$T/cancel.json"
rfs batch status "$job" "$MNT"
[ -f "$T/cancel.csv" ] || fail "batch cancel wrote no report ($T/cancel.csv)"
sent=$(py 'd["succeeded"]' "$T/cancel.json")
cancelled=$(py 'd["cancelled"]' "$T/cancel.json")
assert_eq "Cancelled 12 0" "$(py 'd["state"], d["items"], d["failed"]' "$T/cancel.json" | tr -d "(),'")" \
	"state, items and failures of the cancelled job"
assert_eq 12 "$((sent + cancelled))" "items succeeded and cancelled"
[ "$cancelled" -gt 0 ] || fail "the job ended before the cancel; the step proves nothing"
assert_eq 13 "$(wc -l <"$T/cancel.csv")" "report rows (with its header)"
assert_eq "$sent" "$(grep -c ',succeeded,' "$T/cancel.csv" || true)" "succeeded rows in the report"
assert_eq "$cancelled" "$(grep -c ',cancelled,' "$T/cancel.csv" || true)" "cancelled rows in the report"
aa s3api list-object-versions --bucket dst-a --prefix cancel/ >"$T/cancel-v.json"
assert_eq "$sent" "$(py 'len(d.get("Versions", []))' "$T/cancel-v.json")" \
	"versions at dst-a/cancel/: each one the job counts as sent, no other"
ok "$sent sent, $cancelled cancelled ($(cat "$T/cancel.out"))"

step "a remote removed and added again with another endpoint: a running mount sends there"
# The mount read a remote once, at its first delivery, and went on sending
# to the old endpoint until it was mounted again.
mkb a moved versioned & p1=$!
mkb b moved versioned & p2=$!
wait "$p1" && wait "$p2" || fail "making the buckets moved failed"
rfs remote add mv "$EP_A" --region region-a
mkdir "$MNT/srcmv"
rule "$T/m.json" s3://mv/moved
rfs replication put "$MNT/srcmv" "$T/m.json" >/dev/null
echo one >"$MNT/srcmv/one"
rfs wait "$MNT/srcmv" --timeout 60 || fail "replicafs wait: status $? for one"
rfs remote remove mv 2>/dev/null
rfs remote add mv "$EP_B" --region region-b
sleep 1.2	# the remotes file is looked at again once a second
echo two >"$MNT/srcmv/two"
rfs wait "$MNT/srcmv" --timeout 60 || fail "replicafs wait: status $? for two"
aa s3api list-object-versions --bucket moved >"$T/ma.json"
ab s3api list-object-versions --bucket moved >"$T/mb.json"
assert_eq "one" "$(py '" ".join(sorted(v["Key"] for v in d.get("Versions", [])))' "$T/ma.json")" \
	"what reached moved at region-a (the old endpoint)"
assert_eq "two" "$(py '" ".join(sorted(v["Key"] for v in d.get("Versions", [])))' "$T/mb.json")" \
	"what reached moved at region-b (the new endpoint)"
grep -qF "remote mv read again: $EP_B" "$(daemon_log)" || fail "the log does not say the remote was read again"
ok "the version written after the change went to the new endpoint"

step "versioning suspended at the destination after the rule: deliveries FAIL, the backup is untouched"
# Before, each PUT replaced the bucket's null version and the DELETE of
# the delete marker removed it, while every version showed COMPLETED.
mkb a susp-a versioned
mkdir "$MNT/src3"
rule "$T/s.json" s3://a/susp-a
rfs replication put "$MNT/src3" "$T/s.json" >/dev/null
echo one >"$MNT/src3/keep"
rfs wait "$MNT/src3" --timeout 60
aa s3api put-bucket-versioning --bucket susp-a --versioning-configuration Status=Suspended
sleep 5.2	# a look at the versioning holds 5 s
echo two >"$MNT/src3/keep"
echo new >"$MNT/src3/new"
rm "$MNT/src3/keep"
rc=0
rfs wait "$MNT/src3" --timeout 60 || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait, versioning suspended at the destination"
assert_eq FAILED "$(xattr system.replicafs.replication-status "$MNT/src3/new")" "status of a new file"
rfs status "$MNT/src3" | grep -q "not Enabled" || fail "status does not say the versioning is not Enabled"
aa s3api list-object-versions --bucket susp-a >"$T/susp.json"
assert_eq "keep" "$(py '" ".join(v["Key"] for v in d.get("Versions", []))' "$T/susp.json")" \
	"versions at the suspended bucket"
assert_eq 0 "$(py 'len(d.get("DeleteMarkers", []))' "$T/susp.json")" "delete markers at the suspended bucket"
aa s3api get-object --bucket susp-a --key keep "$T/keep.out" >/dev/null
assert_eq one "$(cat "$T/keep.out")" "the version there before the suspension"
aa s3api put-bucket-versioning --bucket susp-a --versioning-configuration Status=Enabled
job=$(rfs batch create "$MNT/src3" --status FAILED)
batch_wait "$job" 120
rfs wait "$MNT/src3" --timeout 60 || fail "replicafs wait: status $? once versioning is Enabled again and the batch job ran"
aa s3api list-object-versions --bucket susp-a >"$T/susp.json"
assert_eq "keep keep new" "$(py '" ".join(sorted(v["Key"] for v in d.get("Versions", [])))' "$T/susp.json")" \
	"versions at the bucket once Enabled again"
assert_eq 1 "$(py 'len(d.get("DeleteMarkers", []))' "$T/susp.json")" "delete markers once Enabled again"

step "a region that takes connections and never answers holds up no dir:// mirror"
# Each delivery to it waits a minute for curl to give up; four of them
# held every worker, and the mirror of another bucket got nothing.
mkb b hang-b versioned
mkdir "$MNT/tohang" "$MNT/todir" "$T/hangmirror"
rule "$T/h.json" s3://b/hang-b
rfs replication put "$MNT/tohang" "$T/h.json" >/dev/null
rule "$T/d.json" "dir://$T/hangmirror"
rfs replication put "$MNT/todir" "$T/d.json" >/dev/null
rgwb=$(awk '$1 == "rgw.a" {print $2}' "$T/rgw-b/pids")
kill -STOP "$rgwb"
for i in $(seq 1 12); do echo "$i" >"$MNT/tohang/f$i"; done
sleep 2	# the workers take the deliveries to region-b first
echo mirrored >"$MNT/todir/m"
for _ in $(seq 1 100); do [ -e "$T/hangmirror/m" ] && break; sleep 0.2; done
[ -e "$T/hangmirror/m" ] || { kill -CONT "$rgwb"; fail "the dir:// mirror got nothing in 20 s while region-b hung"; }
# An unmount while region-b still hangs: the daemon waited for each
# delivery under way (a minute each, again at each retry).
t0=$SECONDS
unmount_fs
kill -CONT "$rgwb"
[ $((SECONDS - t0)) -lt 30 ] || fail "the daemon took $((SECONDS - t0)) s to exit while region-b hung"
grep -q "ending without it" "$(daemon_log)" || fail "the log does not say a delivery was left under way"
mount_fs repl_backoff_ms=200,repl_attempts=40
rfs wait "$MNT/tohang" --timeout 120 || fail "replicafs wait: status $? once region-b answers again"
assert_eq 12 "$(ab s3api list-object-versions --bucket hang-b | py 'len(d.get("Versions", []))' /dev/stdin)" \
	"versions at region-b once it answers"
ok "the mirror got its file while region-b hung; region-b got all 12 after"

step "a destination down: one log line for its retries, one when it is back"
# Each retry of each delivery was a line: thousands a minute for a
# backlog while a service was down.
"$RFS_ROOT/scripts/rgw.sh" stop-rgw "$T/rgw-b"
for i in $(seq 1 30); do echo "$i" >"$MNT/tohang/down$i"; done
sleep 3	# retries every 200 ms and more (repl_backoff_ms=200)
n=$(grep -c "to s3://b/hang-b: .*retrying" "$(daemon_log)" || true)
"$RFS_ROOT/scripts/rgw.sh" start-rgw "$T/rgw-b"
rfs wait "$MNT/tohang" --timeout 120 || fail "replicafs wait: status $? once region-b is back"
assert_eq 1 "$n" "log lines of retries to region-b while it was down"
grep -q "deliveries to s3://b/hang-b succeed again" "$(daemon_log)" ||
	fail "the log does not say that region-b is back"
ok "one line for the retries, one for the recovery"

step "credentials that cannot be read again: the status says so beside S3's refusal"
# The old keys stay in use, and the status showed only
# SignatureDoesNotMatch; the log alone said why the new were not taken.
unread_creds() {
	printf '[default]\naws_access_key_id = testaccess\naws_secret_access_key = %s\n\n[unread]\naws_access_key_id = testaccess\naws_secret_access_key = %s\n' \
		"$SECRET" "$1" >"$T/aws/credentials.new"
	mv "$T/aws/credentials.new" "$T/aws/credentials"
}
unread_creds "$SECRET"
rfs remote add un "$EP_A" --region region-a --profile unread
mkdir "$MNT/srcun"
rule "$T/un.json" s3://un/dst-a/unread
rfs replication put "$MNT/srcun" "$T/un.json" >/dev/null
unread_creds "$WRONG"
sleep 1.2
echo u1 >"$MNT/srcun/u1"
rc=0
rfs wait "$MNT/srcun" --timeout 60 || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait with a wrong key"
printf '[unread\n' >"$T/aws/credentials"
sleep 1.2
echo u2 >"$MNT/srcun/u2"
rc=0
rfs wait "$MNT/srcun" --timeout 60 || rc=$?
assert_eq 3 "$rc" "exit status of replicafs wait with a file that cannot be read"
rfs status "$MNT/srcun" >"$T/un.out" 2>&1
grep -q "SignatureDoesNotMatch.*the changed files were not read" "$T/un.out" ||
	fail "status does not say the changed credentials were not read: $(cat "$T/un.out")"
rfs replication delete "$MNT/srcun" >/dev/null
rfs remote remove un >/dev/null
creds_file "$SECRET"
ok "the status names S3's refusal and the file that could not be read"

step "a remote added again: the deliveries waiting for a retry go at once"
# They waited out their backoff, here 30 to 60 s for the first retry.
unmount_fs
mount_fs repl_backoff_ms=60000,repl_attempts=40
mkb a again versioned
rfs remote add ag "$EP_A" --region region-a
mkdir "$MNT/srcag"
rule "$T/ag.json" s3://ag/again
rfs replication put "$MNT/srcag" "$T/ag.json" >/dev/null
echo zero >"$MNT/srcag/zero"
rfs wait "$MNT/srcag" --timeout 60 || fail "replicafs wait: status $? for zero"
rfs remote remove ag >/dev/null
sleep 1.2	# the remotes file is looked at once a second
echo one >"$MNT/srcag/one"
poll 20 grep -q "srcag/one .* no remote named ag" "$(daemon_log)" ||
	fail "no failed delivery of one logged in 20 s"
sleep 1	# its outcome recorded: due in 30 s or more
rfs remote add ag "$EP_A" --region region-a
rfs wait "$MNT/srcag" --timeout 20 ||
	fail "replicafs wait: status $? 20 s after the remote was added again"
assert_eq "one zero" \
	"$(aa s3api list-object-versions --bucket again | py '" ".join(sorted(v["Key"] for v in d.get("Versions", [])))' /dev/stdin)" \
	"what reached again at region-a"
grep -q "s3://ag/again: its configuration changed" "$(daemon_log)" ||
	fail "the log does not say why the deliveries went at once"
ok "one went within 20 s of the remote's return"

step "no secret in any log or message"
unmount_fs
for f in "$T"/daemon.*.log "$T"/status2.out "$T"/list.out "$T/config/remotes"; do
	if grep -qE "$SECRET|$WRONG" "$f"; then
		fail "a secret appears in $(basename "$f")"
	fi
done
ok "none"
check_store
