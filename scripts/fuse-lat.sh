#!/usr/bin/env bash
# scripts/fuse-lat.sh MOUNTPOINT COMMAND [ARG...] - where a command's time
# on a mount goes, request by request.
#
#   scripts/fuse-lat.sh /mnt/rfs cp -r /usr/include /mnt/rfs/bucket/inc
#
# Runs COMMAND while perf(1) records the kernel's FUSE tracepoints
# (fuse:fuse_request_send, fuse:fuse_request_end) on all CPUs, keeps the
# requests of MOUNTPOINT's connection, and prints, per opcode: how many,
# the median and 90th percentile of send-to-end time (the daemon's work
# plus the wakeups on its side) and their sum; then the command's wall
# time beside the sum over all requests.  What the sum leaves of the wall
# time is the command's own work, the kernel's, and the waking of the
# command after each reply (the wall time also holds perf's own start).
# Needs root (or perf_event_paranoid <= -1) and a kernel with these
# trace events (`perf list fuse` shows them).
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 MOUNTPOINT COMMAND [ARG...]" >&2
	exit 2
fi
mnt=$1
shift
command -v perf >/dev/null || {
	echo "fuse-lat: perf is not installed (Debian: linux-perf)" >&2
	exit 2
}
case $(stat -f -c %T "$mnt") in
fuse | fuseblk) ;;
*)
	echo "fuse-lat: $mnt is not a FUSE mount" >&2
	exit 2
	;;
esac
# The tracepoints name the connection by the mount's device minor.
dev=$(stat -c %d "$mnt")
conn=$(( (dev & 0xff) | ((dev >> 12) & ~0xff) ))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

start=${EPOCHREALTIME//[.,]/}
perf record -q -a -o "$tmp/perf.data" \
	-e fuse:fuse_request_send,fuse:fuse_request_end -- "$@"
end=${EPOCHREALTIME//[.,]/}

perf script -i "$tmp/perf.data" -F time,event,trace 2>/dev/null |
	python3 -c '
import collections, re, sys
conn, wall_us = sys.argv[1], int(sys.argv[2])
line = re.compile(r"\s*([\d.]+):\s+fuse:(\w+):\s+connection (\d+) req (\d+)"
                  r"(?: opcode \d+ \((\w+)\))?")
sent, lat = {}, collections.defaultdict(list)
for text in sys.stdin:
    m = line.match(text)
    if not m or m.group(3) != conn:
        continue
    t, event, req, op = float(m.group(1)), m.group(2), m.group(4), m.group(5)
    if event == "fuse_request_send":
        sent[req] = (t, op)
    elif req in sent:
        t0, op = sent.pop(req)
        lat[op].append((t - t0) * 1e6)
total = 0.0
print("%-22s %8s %9s %9s %10s" % ("request", "count", "median", "p90",
                                    "sum (ms)"))
for op, v in sorted(lat.items(), key=lambda kv: -sum(kv[1])):
    v.sort()
    total += sum(v)
    print("%-22s %8d %7.1fus %7.1fus %10.1f" % (op, len(v), v[len(v) // 2],
          v[int(len(v) * 0.9)], sum(v) / 1000))
print("requests %d, inside them %.1f ms of %.1f ms wall (%.0f%%)" % (
      sum(len(v) for v in lat.values()), total / 1000, wall_us / 1000,
      100 * total / wall_us if wall_us else 0))
' "$conn" "$((end - start))"
