#!/bin/bash
#
# test_repl_folders.sh - a rule with a prefix filter sends the files below
# the prefix and not the markers of the folders above it: a mirror and a
# replica must still show those folders no more open than the source.
# Store A (MNT, -o allow_other) replicates bucket pfx by a rule with
# "Filter": {"Prefix": "home/alice/inbox/"} to a plain directory and to
# bucket dst of store B (MNT2, a second daemon, -o allow_other), where
# home/alice is another user's 0700 folder: user nobody, refused it at the
# source, is refused it in the mirror and the replica.  Then the same by a
# batch job with --prefix.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
chmod 755 "$T" # so that nobody can walk to the mounts and the mirrors
STORE_B=$T/storeB
MNT2=$T/mnt2
MIRROR=$T/mirror
MIRROR2=$T/mirror2
mkdir -p "$MNT2" "$MIRROR" "$MIRROR2"
ALICE=1234	# owners the test makes up: no such users
BOB=1235

# A second daemon on store B, allow_other too; stopped at the end.
"$REPLICAFS" mount -f -o allow_other "$STORE_B" "$MNT2" >"$T/daemon.b.log" 2>&1 &
PID_B=$!
track_pid "$PID_B"
track_mount "$MNT2"
mounted_b() { is_mounted "$MNT2" && timeout 5 stat "$MNT2/" >/dev/null 2>&1; }
poll 20 mounted_b || fail "mount of $STORE_B on $MNT2 not ready: $(tail -5 "$T/daemon.b.log")"
mount_fs allow_other
mkdir "$MNT/pfx" "$MNT2/dst" "$MNT2/dst2"

# nobody_reads PATH: what user nobody gets reading PATH ("denied" or
# its content).
nobody_reads() { runuser -u nobody -- cat "$1" 2>/dev/null || echo denied; }
# mode_owner PATH: "MODE UID" of PATH.
mode_owner() { stat -c '%a %u' "$1"; }
# job_over JOB: whether batch job JOB is no longer Active.
job_over() {
	rfs batch status "$1" "$MNT" --json | "$PYTHON" -c \
		'import json, sys; sys.exit(json.load(sys.stdin)["state"] == "Active")'
}

# private HOME USER: HOME's folder 0700 of USER, its inbox 0755, in it
# m.txt 0644 (mkdir -p makes a marker of each folder, "home/" 0755 root's
# among them).
private() {
	mkdir -p "$1/inbox"
	echo "private to $2" >"$1/inbox/m.txt"
	chmod 644 "$1/inbox/m.txt"
	chmod 755 "$1/inbox"
	chown -R "$2:$2" "$1"
	chmod 700 "$1"
}

# refused WHERE ROOT USER NAME: under ROOT (a mirror or a replica's bucket)
# NAME's folder is USER's 0700 as at the source, and nobody reads neither
# the file in it nor anything below it, where root does.
refused() {
	local root=$2 name=$4
	assert_eq "private to $3" "$(cat "$root/home/$name/inbox/m.txt")" "root reading the file in $1"
	assert_eq denied "$(nobody_reads "$root/home/$name/inbox/m.txt")" "nobody reading home/$name/inbox/m.txt in $1"
	assert_eq "755 0" "$(mode_owner "$root/home")" "mode and owner of home/ in $1 (as at the source)"
	assert_eq "700 $3" "$(mode_owner "$root/home/$name")" "mode and owner of home/$name in $1"
	assert_eq "755 $3" "$(mode_owner "$root/home/$name/inbox")" "mode and owner of home/$name/inbox in $1"
	runuser -u nobody -- ls "$root/home" >/dev/null ||
		fail "nobody cannot list home/ in $1, which is open to it: the check above proves nothing"
	ok "$1: home/$name is $3's 0700 folder; nobody lists home/ and reads nothing below home/$name"
}

step "the source: nobody cannot read home/alice/inbox/m.txt, alice's 0700 folder is in the way"
private "$MNT/pfx/home/alice" "$ALICE"
assert_eq denied "$(nobody_reads "$MNT/pfx/home/alice/inbox/m.txt")" "nobody reading the file at the source"
runuser -u nobody -- ls "$MNT/pfx/home" >/dev/null || fail "nobody cannot list home/ at the source"
ok "refused at the source"

step "a rule with a prefix filter to a mirror and to a replica: both keep alice's folder closed"
cat >"$T/rules.json" <<EOF
{"Rules": [
  {"ID": "mirror", "Priority": 1, "Status": "Enabled",
   "Filter": {"Prefix": "home/alice/inbox/"},
   "Destination": {"Bucket": "dir://$MIRROR"},
   "DeleteMarkerReplication": {"Status": "Enabled"}},
  {"ID": "replica", "Priority": 2, "Status": "Enabled",
   "Filter": {"Prefix": "home/alice/inbox/"},
   "Destination": {"Bucket": "store://$STORE_B/dst"},
   "DeleteMarkerReplication": {"Status": "Enabled"}}
]}
EOF
rfs replication put "$MNT/pfx" "$T/rules.json" >/dev/null
# Only now, so that these versions are sent; the folders above the
# prefix (home/, home/alice/) are not.
echo "private to $ALICE" >"$MNT/pfx/home/alice/inbox/m.txt"
chown "$ALICE:$ALICE" "$MNT/pfx/home/alice/inbox/m.txt"
touch "$MNT/pfx/home/alice/inbox"
rfs wait "$MNT/pfx" --timeout 60
poll 10 test -e "$MNT2/dst/home/alice/inbox/m.txt" || fail "the file did not reach the replica's mount"
sleep 1.2 # the second mount's attribute timeout
refused "the mirror" "$MIRROR" "$ALICE" alice
refused "the replica" "$MNT2/dst" "$ALICE" alice

step "the same by a batch job with --prefix, to a mirror and to a replica"
private "$MNT/pfx/home/bob" "$BOB"
# One after the other, the second of versions the first made COMPLETED.
for dest in "dir://$MIRROR2" "store://$STORE_B/dst2"; do
	job=$(rfs batch create "$MNT/pfx" --status NONE,COMPLETED --prefix home/bob/inbox/ --destination "$dest")
	poll 60 job_over "$job" || fail "batch job $job still active after 60 s"
	rfs batch status "$job" "$MNT"
done
rfs wait "$MNT/pfx" --timeout 60
poll 10 test -e "$MNT2/dst2/home/bob/inbox/m.txt" || fail "the batch job's file did not reach the replica's mount"
sleep 1.2
refused "the batch job's mirror" "$MIRROR2" "$BOB" bob
refused "the batch job's replica" "$MNT2/dst2" "$BOB" bob

unmount_fs
fusermount3 -u "$MNT2"
rc=0
wait "$PID_B" || rc=$?
assert_eq 0 "$rc" "exit status of daemon b after its unmount"
check_store
STORE=$STORE_B check_store
