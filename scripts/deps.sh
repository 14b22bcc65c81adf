#!/bin/sh
# Install what replicafs needs to build, run, test and benchmark, on Debian.
# Idempotent: does nothing when every package is already there. Run as root.
set -eu
# libcurl and libxml2: the S3 client (HTTP, and the XML of S3's answers).
# ceph-mon, ceph-osd, radosgw: a real S3 service (Ceph RGW) on loopback for
# the S3 tests and the bench; awscli checks what reached it.
PKGS="build-essential pkg-config libfuse3-dev fuse3 liburing-dev libsqlite3-dev sqlite3
libssl-dev libcurl4-openssl-dev libxml2-dev libcriterion-dev libjansson-dev
attr rsync git fio acl procps psmisc xz-utils jq openssl curl
ceph-mon ceph-osd radosgw awscli"
# One dpkg-query for all: fast when everything is there.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null |
	awk '$NF == "installed" { print $1 }')
missing=""
for p in $PKGS; do
	case " $(echo $installed) " in
	*" $p "*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing; run 'sudo $0'" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $missing >/dev/null
