#!/bin/sh
# Install what replicafs needs to build, run, test and benchmark, on Debian.
# Idempotent: does nothing when every package is already there. Run as root.
set -eu
PKGS="build-essential pkg-config libfuse3-dev fuse3 libsqlite3-dev sqlite3
libssl-dev libcurl4-openssl-dev libcriterion-dev libjansson-dev attr rsync
git fio acl procps psmisc xz-utils jq"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing; run 'sudo $0'" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
