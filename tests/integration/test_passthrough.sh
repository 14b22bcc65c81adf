#!/bin/bash
#
# test_passthrough.sh - a mount with -o passthrough, where the kernel reads
# and writes the staging file of a file open for writing itself (fs/ops.c,
# pt_sync()), keeps S3's versions as a mount without it does: one version
# per close that wrote, with the bytes written at that close, even when a
# duplicate of the descriptor writes on after it (the commit copies the
# staging file, which the kernel may still write); writes through mmap;
# readers and writers open at once, in either order; O_TRUNC and
# truncate(2) of a file another handle has open; an mtime set on the open
# file before its close; set-user-ID bits dropped by a non-root writer;
# staging files reused only when nothing else holds them; no FLUSH
# request at the close of a handle that cannot write;
# and, after all of it, a store that passes `replicafs check`.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
mount_fs passthrough
grep -q "FUSE passthrough" "$(daemon_log)" ||
	{ show_daemon_log; fail "the mount did not take passthrough (this kernel needs 6.13+ and CONFIG_FUSE_PASSTHROUGH)"; }
B=$MNT/bkt
mkdir "$B"

# version_shas FILE: the sha256 of each version of FILE, oldest first.
version_shas() {
	versions_json_get "$1" "' '.join(x['sha256'] for x in reversed(v))"
}

step "a file written and closed: one version, its bytes"
gen_data 300000 1 >"$T/ref/a"
cp "$T/ref/a" "$B/a"
assert_eq 1 "$(nversions "$B/a")" "versions"
assert_same_file "$T/ref/a" "$B/a" "content"
assert_eq "$(sha_of "$T/ref/a")" "$(getfattr --only-values -n system.replicafs.sha256 "$B/a")" \
	"system.replicafs.sha256"
assert_eq "$(sha_of "$T/ref/a")" "$(version_shas "$B/a")" "sha256 of the version"
ok "one version, with the bytes written"

step "writes through a duplicate after a close: each close keeps what it saw"
# `echo 1 >&3` closes a duplicate of fd 3 (a FLUSH: version "1"); the
# subshell's exit closes another (version "1 2"); the last close adds none.
(
	exec 3>"$B/dup"
	echo 1 >&3
	(echo 2 >&3)
	exec 3>&-
)
printf '1\n' >"$T/ref/d1"
printf '1\n2\n' >"$T/ref/d2"
assert_eq "$(sha_of "$T/ref/d1") $(sha_of "$T/ref/d2")" "$(version_shas "$B/dup")" \
	"sha256 of the versions, oldest first"
first=$(rfs versions "$B/dup" | tail -n 1 | cut -f1)
assert_same_file "$T/ref/d1" "$MNT/.versions/bkt/dup/$(ls "$MNT/.versions/bkt/dup" | grep "_$first\$")" \
	"the first version's content, read back after the later write"
check_store
ok "the later write did not reach the first version's blob"

step "mmap writes after the descriptor's close reach a version at munmap"
"$PYTHON" - "$B/mm" <<'EOF'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 65536)
m = mmap.mmap(fd, 65536)
os.close(fd)                    # a FLUSH: the zeros are a version
m[1000:1006] = b"mapped"
m.flush()
m.close()                       # the RELEASE: the mapped bytes are one
EOF
assert_eq "mapped" "$(dd if="$B/mm" bs=1 skip=1000 count=6 2>/dev/null)" "bytes at 1000"
assert_eq "$(dd if="$B/mm" bs=64k 2>/dev/null | sha256sum | cut -d' ' -f1)" \
	"$(getfattr --only-values -n system.replicafs.sha256 "$B/mm")" \
	"the current version's sha256 against its bytes"
ok "$(nversions "$B/mm") versions; the last holds the mapped bytes"
# The same page written before the close and again after it: no fault
# the second time, so no timestamp moves (the second write was lost).
"$PYTHON" - "$B/mm2" <<'EOF'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 4096)
m = mmap.mmap(fd, 4096)
m[0:5] = b"AAAAA"               # the page dirty and writable
os.close(fd)                    # a FLUSH: AAAAA is a version
m[0:5] = b"BBBBB"               # the same page: no fault
m.flush()
m.close()
EOF
sleep 0.2	# the RELEASE comes after munmap returned
assert_eq "BBBBB" "$(head -c 5 "$B/mm2")" "a page written again after the close"
assert_eq 2 "$(nversions "$B/mm2")" "versions of the file written twice through its mapping"

step "a mapping that outlives its descriptor: writes after the close and the release"
# Python's mmap keeps a duplicate of the descriptor; C programs do not:
# mmap, close, write through the mapping, msync, munmap.  The RELEASE
# comes at the close, before any of the writes (the build before kept
# zeros, and msync said nothing).
# cmap.py: mmap(2) as C calls it, for the scripts below.
cat >"$T/cmap.py" <<'EOF'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

def cmap(fd, size, prot):
    """A MAP_SHARED mapping of @size bytes of @fd: its address."""
    p = libc.mmap(None, size, prot, 1, fd, 0)
    assert p not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
    return p
EOF
cat >"$T/mapw.py" <<'EOF'
import ctypes, os, sys, time
from cmap import libc, cmap
path, text, hold = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3])
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
if os.fstat(fd).st_size < 8192:
    os.ftruncate(fd, 8192)
p = cmap(fd, 8192, 3)                       # PROT_READ|WRITE
os.close(fd)
time.sleep(hold)                            # the RELEASE is long past
ctypes.memmove(p + 4096, text, len(text))
assert libc.msync(p, 8192, 4) == 0          # MS_SYNC
assert libc.munmap(p, 8192) == 0
EOF
"$PYTHON" "$T/mapw.py" "$B/mapc" "after-close" 0.3
sleep 0.6	# mapped.c looks every 250 ms
assert_eq "after-close" "$(dd if="$B/mapc" bs=1 skip=4096 count=11 2>/dev/null)" \
	"bytes written through the mapping after the close"
assert_eq "$(sha_of "$B/mapc")" "$(getfattr --only-values -n system.replicafs.sha256 "$B/mapc")" \
	"the current version's sha256 against its bytes"
"$PYTHON" "$T/mapw.py" "$B/mapc" "second-time" 0
sleep 0.6
assert_eq "second-time" "$(dd if="$B/mapc" bs=1 skip=4096 count=11 2>/dev/null)" \
	"an existing file mapped again"
unmount_fs
mount_fs passthrough
assert_eq "second-time" "$(dd if="$B/mapc" bs=1 skip=4096 count=11 2>/dev/null)" \
	"after a remount"
ok "the writes reach a version once the mapping is gone ($(nversions "$B/mapc") versions)"

step "a reader's mapping of a file being written keeps its bytes after later files"
# A staging file whose commit took a copy goes back to the store's pool,
# emptied, when nothing else has it open (store_stage_recycle()).  A
# reader opened while a writer is open reads the staging file; its
# mapping outlives its descriptor, and a lease sees it only where the
# kernel counts read-only opens, so that staging file must not be
# reused: the mapping would show the next files' bytes.
cat >"$T/mapr.py" <<'EOF'
import ctypes, os, sys
from cmap import cmap
d = sys.argv[1]
w = os.open(d + "/held", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(w, b"A" * 4096)
r = os.open(d + "/held", os.O_RDONLY)
p = cmap(r, 4096, 1)                        # PROT_READ
os.close(r)
os.close(w)                                 # commit; the writer's release
def body(i):
    return bytes([ord("a") + i % 26]) * 4096
for i in range(40):
    with open("%s/later%02d" % (d, i), "wb") as f:
        f.write(body(i))
seen = ctypes.string_at(p, 4096)
assert seen == b"A" * 4096, "the mapping shows %r" % seen[:16]
for i in range(40):
    with open("%s/later%02d" % (d, i), "rb") as f:
        assert f.read() == body(i), "later%02d" % i
with open(d + "/held", "rb") as f:
    assert f.read() == b"A" * 4096, "held"
EOF
"$PYTHON" "$T/mapr.py" "$B" || fail "a reader's mapping or a later file changed"
ok "the mapping kept its bytes; each later file has its own"

step "a reader opened first, then a writer; a writer first, then a reader"
echo first >"$B/rw"
exec 8<"$B/rw"
echo second >>"$B/rw"
assert_eq "$(printf 'first\nsecond')" "$(cat <&8)" "read through the older descriptor"
exec 8<&-
exec 8>>"$B/rw"
echo third >&8
assert_eq "$(printf 'first\nsecond\nthird')" "$(cat "$B/rw")" "read while the writer is open"
exec 8>&-
assert_eq "$(printf 'first\nsecond\nthird')" "$(cat "$B/rw")" "after the close"
ok "both orders see every write"

step "O_TRUNC and truncate(2) of a file another handle has open"
gen_data 50000 2 >"$B/tr"
exec 8<"$B/tr"
exec 9>>"$B/tr"
echo tail >&9
: >"$B/tr"
assert_eq 0 "$(stat -c %s "$B/tr")" "size after an O_TRUNC open"
echo again >&9
truncate -s 3 "$B/tr"
assert_eq "aga" "$(cat "$B/tr")" "content after truncate(2)"
exec 8<&- 9>&-
assert_eq "aga" "$(cat "$B/tr")" "content after the closes"
assert_eq "$(printf aga | sha256sum | cut -d' ' -f1)" \
	"$(getfattr --only-values -n system.replicafs.sha256 "$B/tr")" "sha256 of the current version"
ok "the handles share one file"

step "an mtime set on the open file before its close is the version's"
"$PYTHON" - "$B/mt" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x" * 10000)
os.utime(fd, (1000000000, 1000000000))
os.close(fd)
EOF
assert_eq 1000000000 "$(stat -c %Y "$B/mt")" "mtime after the close"
remount passthrough
assert_eq 1000000000 "$(stat -c %Y "$B/mt")" "mtime after a remount"
ok "cp -p and rsync keep their times"

step "a non-root writer's write drops set-user-ID"
# Another user reaches the mount only through allow_other and a path it
# may walk.
remount passthrough,allow_other
chmod o+x "$T"
echo x >"$B/suid"
chmod 4777 "$B/suid"
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo y >>'$B/suid'"
mode=$(stat -c %a "$B/suid")
[ "$mode" = 777 ] || fail "mode after a non-root write: $mode, expected 777"
ok "mode 4777 became 777"

step "another user reads a version's attributes only where it may read the file"
echo secret >"$B/private"
chmod 600 "$B/private"
echo open >"$B/public"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
sha_attr() { getfattr --only-values -n system.replicafs.sha256 "$1"; }
assert_eq "$(sha_of "$B/public")" "$(as_nobody getfattr --only-values -n system.replicafs.sha256 "$B/public")" \
	"sha256 of a file of mode 644, for another user"
expect_error "Permission denied" as_nobody getfattr -n system.replicafs.sha256 "$B/private"
expect_error "Permission denied" as_nobody getfattr -n system.replicafs.etag "$B/private"
entry=$(ls "$MNT/.versions/bkt/private")
expect_error "Permission denied" as_nobody getfattr -n system.replicafs.sha256 "$MNT/.versions/bkt/private/$entry"
assert_eq "$(sha_of "$B/private")" "$(sha_attr "$B/private")" "sha256 of the file of mode 600, for root"
ok "sha256 and ETag of a file of mode 600 refused to another user, as its content is"

step "a large file written through a shared mapping while others close it: each version hashes to its name"
# A close of 8 MiB or more copies the staging file on another thread; it
# was hashed meanwhile, and the hash trusted when the file's times and
# size had not moved.  A writer through a mapping moves neither: half
# the versions were named by a hash of other bytes (check --deep: "does
# not hash to its name"), and a write after a restore of one failed (EIO).
head -c $((16 << 20)) /dev/zero >"$B/mapped"
"$PYTHON" -c '
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 16 << 20)
open(sys.argv[2], "w").close()
i = 0
while True:
    m[(i * 4096) % (16 << 20)] = i & 255
    i += 1' "$B/mapped" "$T/mapper.ready" &
mapper=$!
track_pid "$mapper"
poll 10 test -e "$T/mapper.ready" || fail "the mapping writer did not start in 10 s"
for k in $(seq 12); do
	printf '%d' $((k % 10)) | dd of="$B/mapped" conv=notrunc status=none ||
		fail "write $k through another descriptor"
done
kill "$mapper"
wait "$mapper" 2>/dev/null || true
n=$(nversions "$B/mapped")
[ "$n" -ge 13 ] || fail "$n versions of the mapped file after 13 closes"
ok "12 closes while a mapping wrote"

step "a close of a handle that cannot write costs no round trip"
# The open's reply asks for no FLUSH (FOPEN_NOFLUSH) where the handle has
# nothing to commit; a close that wrote still sends one, and commits.
remount passthrough,debug
flushes() { grep -c 'opcode: FLUSH' "$(daemon_log)" || true; }
before=$(flushes)
cat "$B/a" >/dev/null
"$PYTHON" -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY))' "$B/a"
chmod 600 "$B/a"
assert_eq "$before" "$(flushes)" "FLUSH requests after reads and a chmod"
grep -q 'opcode: OPEN' "$(daemon_log)" || fail "the debug log shows no OPEN: is -o debug logging requests?"
echo more >>"$B/a"
[ "$(flushes)" -gt "$before" ] || fail "a close that wrote sent no FLUSH"
assert_eq 2 "$(nversions "$B/a")" "versions after the append"
ok "reads closed without a FLUSH; the append's close committed"

step "the store after all this"
unmount_fs
check_store
check_store --deep
ok "replicafs check: ok"
