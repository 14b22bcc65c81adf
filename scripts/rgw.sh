#!/usr/bin/env bash
#
# rgw.sh - a throw-away Ceph RGW (a real S3 service) on 127.0.0.1, for the
# S3 tests and the bench: one monitor, one OSD that keeps objects in memory
# (memstore), and radosgw with the beast front end.  No ceph-mgr.
#
#   scripts/rgw.sh start [DIR]     start one; prints DIR (made with mktemp
#                                  when not given).  DIR/env is sourceable:
#                                  S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY,
#                                  S3_SECRET_KEY, (S3_TLS_ENDPOINT, S3_CA)
#   scripts/rgw.sh stop DIR        stop exactly the daemons DIR/pids names,
#                                  radosgw, then the OSD, then the monitor;
#                                  remove DIR unless KEEP=1
#   scripts/rgw.sh stop-rgw DIR    stop radosgw only (the data stays in the
#                                  OSD's memory)
#   scripts/rgw.sh start-rgw DIR   start radosgw again with the same config
#
# Environment for start: RGW_PORT, MON_PORT (default: free ports picked
# here), RGW_REGION (us-east-1: the zonegroup's api_name, which is what S3
# calls the region), S3_ACCESS_KEY, S3_SECRET_KEY, MEMSTORE_BYTES (4 GiB),
# RGW_TLS=1 to add an https endpoint with a certificate from a CA made here
# (DIR/tls/ca.pem).  Needs ceph-mon, ceph-osd and radosgw (scripts/deps.sh).
#
# Settings that matter, each learnt the hard way:
#   - ms_mon_client_mode = crc for radosgw when auth is none, or it retries
#     its monitor handshake forever;
#   - small placement groups (pg_num 8, pool size 1, mon_max_pg_per_osd
#     1000): radosgw makes about seven pools at start;
#   - paxos_propose_interval = 0.05 on the monitor: start-up falls from
#     about 13 s to 2 s;
#   - stop the daemons one at a time, radosgw first: all at once makes the
#     OSD wait for a monitor that is gone.
set -Eeuo pipefail
unset CEPH_CONF CEPH_ARGS

T0=$(date +%s%N)
say() { echo "[rgw +$((($(date +%s%N) - T0) / 1000000))ms] $*" >&2; }

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a port nothing listens on, from a random start.
free_port() {
	local p i
	for i in $(seq 200); do
		p=$((20000 + RANDOM % 20000))
		port_free "$p" && port_free $((p + 1)) && { echo "$p"; return; }
	done
	echo "rgw: no free port found" >&2
	exit 1
}

# alive PID: exists and is not a zombie.
alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
# ours PID: still one of our binaries (guards against PID reuse).
ours() { alive "$1" && grep -qE '^(ceph-mon|ceph-osd|radosgw)$' "/proc/$1/comm" 2>/dev/null; }

# stop_pid PID: TERM, wait up to 5 s, KILL.
stop_pid() {
	local pid=$1 i
	ours "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 100); do alive "$pid" || return 0; sleep 0.05; done
	kill -KILL "$pid" 2>/dev/null || true
	for i in $(seq 40); do alive "$pid" || return 0; sleep 0.05; done
}

die() {
	say "FAILED: $*"
	local f
	for f in "$DIR"/log/*.out "$DIR"/log/client.rgw.a.log; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
	done
	if [ -f "$DIR/pids" ]; then
		tac "$DIR/pids" | while read -r _ p; do stop_pid "$p"; done
	fi
	exit 1
}

# wait_ready: until a SigV4-signed ListBuckets answers 200 (the daemon has
# read its zonegroup and user).
wait_ready() {
	local pid=$1 i code
	# shellcheck disable=SC1091
	. "$DIR/env"
	for i in $(seq 240); do
		alive "$pid" || die "radosgw exited"
		code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 \
			--aws-sigv4 "aws:amz:$S3_REGION:s3" \
			-K - <<<"user = \"$S3_ACCESS_KEY:$S3_SECRET_KEY\"" \
			-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
			"$S3_ENDPOINT/" || true)
		[ "$code" = 200 ] && break
		[ "$i" = 240 ] && die "radosgw not answering at $S3_ENDPOINT"
		sleep 0.25
	done
	sleep 0.2
	alive "$pid" || die "radosgw exited"
}

start_rgw() {
	local pid
	radosgw -c "$DIR/ceph.conf" -n client.rgw.a -f >>"$DIR/log/rgw.out" 2>&1 &
	pid=$!
	echo "rgw.a $pid" >>"$DIR/pids"
	wait_ready "$pid"
	say "radosgw (pid $pid) ready at $S3_ENDPOINT, region $S3_REGION"
}

make_tls() {
	local t=$DIR/tls
	mkdir -p "$t"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=replicafs test CA" \
		-keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$t/ext"
	openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
		-CAcreateserial -days 2 -extfile "$t/ext" -out "$t/server.pem" 2>/dev/null
}

cmd_start() {
	local rgw_port mon_port region ak sk conf fsid uuid id tls_port="" fe i osd_pid ep
	# DIR/env and the user's record hold the secret key: for us alone.
	umask 077
	DIR=${1:-$(mktemp -d -t replicafs-rgw.XXXXXX)}
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	rgw_port=${RGW_PORT:-$(free_port)}
	mon_port=${MON_PORT:-$(free_port)}
	for p in "$mon_port" "$rgw_port"; do
		port_free "$p" || { echo "rgw: 127.0.0.1:$p is in use" >&2; exit 1; }
	done
	region=${RGW_REGION:-us-east-1}
	ak=${S3_ACCESS_KEY:-testaccess}
	sk=${S3_SECRET_KEY:-testsecret}
	ep=http://127.0.0.1:$rgw_port
	trap 'die "command failed at line $LINENO"' ERR
	mkdir -p "$DIR"/{mon,osd0,run,log,rgw,crash}
	: >"$DIR/pids"
	conf=$DIR/ceph.conf
	fsid=$(cat /proc/sys/kernel/random/uuid)
	uuid=$(cat /proc/sys/kernel/random/uuid)
	fe="beast endpoint=127.0.0.1:$rgw_port"
	if [ "${RGW_TLS:-0}" = 1 ]; then
		tls_port=$(free_port)
		while [ "$tls_port" = "$rgw_port" ] || [ "$tls_port" = "$mon_port" ]; do
			tls_port=$(free_port)
		done
		make_tls
		fe="$fe ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$DIR/tls/server.pem ssl_private_key=$DIR/tls/server.key"
	fi
	cat >"$conf" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon_port]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.asok
log_file = $DIR/log/\$name.log
pid_file = $DIR/run/\$name.pid
crash_dir = $DIR/crash
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 1
mon_data_avail_crit = 0
[mon]
mon_data = $DIR/mon
mon_cluster_log_file = $DIR/log/cluster.log
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
[osd]
osd_data = $DIR/osd0
osd_objectstore = memstore
memstore_device_bytes = ${MEMSTORE_BYTES:-4294967296}
[client.rgw.a]
rgw_frontends = $fe
rgw_data = $DIR/rgw
rgw_thread_pool_size = 64
ms_mon_client_mode = crc
EOF
	{
		printf 'export S3_ENDPOINT=%s S3_REGION=%s S3_ACCESS_KEY=%s S3_SECRET_KEY=%s\n' \
			"$ep" "$region" "$ak" "$sk"
		printf 'export RGW_CONF=%s RGW_PORT=%s\n' "$conf" "$rgw_port"
		[ -n "$tls_port" ] && printf 'export S3_TLS_ENDPOINT=https://127.0.0.1:%s S3_CA=%s\n' \
			"$tls_port" "$DIR/tls/ca.pem"
	} >"$DIR/env"
	local C=(-c "$conf")
	# the monitor
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null
	ceph-mon "${C[@]}" -i a --mkfs --monmap "$DIR/monmap"
	ceph-mon "${C[@]}" -i a -f >"$DIR/log/mon.a.out" 2>&1 &
	echo "mon.a $!" >>"$DIR/pids"
	timeout 60 ceph "${C[@]}" -s >/dev/null
	say "mon up"
	# the OSD
	id=$(timeout 60 ceph "${C[@]}" osd new "$uuid")
	ceph-osd "${C[@]}" -i "$id" --mkfs --osd-uuid "$uuid" >"$DIR/log/osd.mkfs.out" 2>&1
	ceph-osd "${C[@]}" -i "$id" -f >"$DIR/log/osd.$id.out" 2>&1 &
	osd_pid=$!
	echo "osd.$id $osd_pid" >>"$DIR/pids"
	for i in $(seq 120); do
		alive "$osd_pid" || die "ceph-osd exited"
		timeout 60 ceph "${C[@]}" osd dump 2>/dev/null | grep -q "^osd.$id up" && break
		[ "$i" = 120 ] && die "OSD not up"
		sleep 0.5
	done
	say "osd.$id up"
	# the zone's region and the user, before radosgw reads them
	timeout 120 radosgw-admin "${C[@]}" user create --uid=test --display-name=test \
		--access-key="$ak" --secret-key="$sk" >"$DIR/log/user.json"
	timeout 120 radosgw-admin "${C[@]}" zonegroup modify --rgw-zonegroup=default \
		--api-name="$region" >"$DIR/log/zonegroup.json"
	start_rgw
	trap - ERR
	echo "$DIR"
}

cmd_stop() {
	DIR=${1:?usage: rgw.sh stop DIR}
	[ -f "$DIR/pids" ] || { echo "rgw: no $DIR/pids" >&2; exit 1; }
	tac "$DIR/pids" | while read -r _ pid; do stop_pid "$pid"; done
	[ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}

cmd_stop_rgw() {
	DIR=${1:?usage: rgw.sh stop-rgw DIR}
	local name pid
	[ -f "$DIR/pids" ] || { echo "rgw: no $DIR/pids" >&2; exit 1; }
	while read -r name pid; do
		[ "$name" = rgw.a ] && stop_pid "$pid"
	done <"$DIR/pids"
	say "radosgw stopped"
}

cmd_start_rgw() {
	DIR=${1:?usage: rgw.sh start-rgw DIR}
	[ -f "$DIR/ceph.conf" ] || { echo "rgw: no $DIR/ceph.conf" >&2; exit 1; }
	# shellcheck disable=SC1091
	. "$DIR/env"
	port_free "$RGW_PORT" || die "127.0.0.1:$RGW_PORT is in use"
	start_rgw
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
stop-rgw) shift; cmd_stop_rgw "$@" ;;
start-rgw) shift; cmd_start_rgw "$@" ;;
*)
	echo "usage: $0 start [DIR] | stop DIR | stop-rgw DIR | start-rgw DIR" >&2
	exit 2
	;;
esac
