#!/bin/bash
#
# test_versions.sh - S3 versioning seen through a mount: one version per
# close that wrote, delete markers, no version for a close that wrote
# nothing, and the null version of a Suspended bucket.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
mount_fs
B=$MNT/bkt
mkdir "$B"

step "a new bucket is versioning-Enabled"
assert_eq "Enabled" "$(rfs versioning "$B")" "replicafs versioning $B"

step "three writes, each ended by a close, leave three versions"
F=$B/doc
shas=()
sizes=()
for i in 1 2 3; do
	gen_data $((1000 * i + 7)) $((10 + i)) >"$T/ref/v$i"
	cat "$T/ref/v$i" >"$F"
	shas+=("$(sha_of "$T/ref/v$i")")
	sizes+=("$(stat -c %s "$T/ref/v$i")")
done
rfs versions "$F"
assert_eq 3 "$(nversions "$F")" "versions after three writes"
assert_same_file "$T/ref/v3" "$F" "current content"
for n in 1 2 3; do
	id=$(version_field "$F" "$n" 1)
	[ -n "$id" ] && [ "$id" != null ] ||
		fail "version $n of $F: expected a version ID, got '$id'"
	[[ $id =~ ^[A-Za-z0-9._~-]+$ ]] || fail "version ID '$id' is not URL-safe"
	assert_eq "${sizes[3 - n]}" "$(version_field "$F" "$n" 3)" "size of version $n (newest first)"
done
assert_eq 3 "$(rfs versions "$F" | cut -f1 | sort -u | wc -l)" "distinct version IDs"
assert_eq "latest" "$(version_field "$F" 1 4)" "flags of the newest version"
assert_eq "-" "$(version_field "$F" 2 4)" "flags of an older version"
assert_eq "$(rfs versions "$F" | cut -f2)" "$(rfs versions "$F" | cut -f2 | sort -r)" \
	"versions listed newest first (by time)"
assert_eq "${shas[2]} ${shas[1]} ${shas[0]}" \
	"$(versions_json_get "$F" "' '.join(x['sha256'] for x in v)")" \
	"sha256 of each version in --json, newest first, against what was written"
assert_eq "true false false" \
	"$(versions_json_get "$F" "' '.join(str(x['is_latest']).lower() for x in v)")" \
	"is_latest in --json"
assert_eq "false false false" \
	"$(versions_json_get "$F" "' '.join(str(x['is_delete_marker']).lower() for x in v)")" \
	"is_delete_marker in --json"
assert_eq "$(rfs versions "$F" | cut -f1 | tr '\n' ' ')" \
	"$(versions_json_get "$F" "' '.join(x['version_id'] for x in v) + ' '")" \
	"the same version IDs in text and in --json"
assert_eq "${sizes[2]}" "$(versions_json_get "$F" "v[0]['size']")" "size in --json"

step "many write() calls before one close make one version"
"$PYTHON" - "$F" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
for i in range(200):
    os.write(fd, b"line %d\n" % i)
os.close(fd)
EOF
assert_eq 4 "$(nversions "$F")" "versions after one open, 200 writes, one close"
# (not `exec 3>F; echo one >&3; ...`: each `>&3` dup2()s over fd 1 and
# restores it, and that closes a descriptor of the file: a flush, a PUT)
{
	echo one
	echo two
} >"$F"
assert_eq 5 "$(nversions "$F")" "versions after { echo one; echo two; } >file"
assert_eq "one
two" "$(cat "$F")" "content written through the shell fd"

step "rm leaves a delete marker"
rm "$F"
assert_missing "$F" "a removed file"
rfs versions "$F"
assert_eq 6 "$(nversions "$F")" "versions after rm"
flags=$(version_field "$F" 1 4)
[[ $flags == *delete-marker* && $flags == *latest* ]] ||
	fail "newest version after rm: expected flags 'latest,delete-marker', got '$flags'"
assert_eq "true true" \
	"$(versions_json_get "$F" "'%s %s' % (str(v[0]['is_latest']).lower(), str(v[0]['is_delete_marker']).lower())")" \
	"is_latest and is_delete_marker of the delete marker in --json"
assert_eq "-" "$(version_field "$F" 2 4)" "flags of the version below the marker"
echo back >"$F"
assert_eq 7 "$(nversions "$F")" "versions after writing the key again"
assert_eq "latest" "$(version_field "$F" 1 4)" "flags of the new version"
assert_eq "delete-marker" "$(version_field "$F" 2 4)" "flags of the older delete marker"

step "a close that wrote nothing makes no version"
G=$B/quiet
echo x >"$G"
assert_eq 1 "$(nversions "$G")" "versions of a new file"
exec 3<>"$G"
exec 3>&-
assert_eq 1 "$(nversions "$G")" "versions after exec 3<>file; exec 3>&-"
"$PYTHON" -c "import sys; open(sys.argv[1], 'r+').close()" "$G"
assert_eq 1 "$(nversions "$G")" "versions after open(p, 'r+').close()"
"$PYTHON" -c "import sys; f = open(sys.argv[1], 'r+'); f.read(); f.close()" "$G"
cat "$G" >/dev/null
touch "$G"
assert_eq 1 "$(nversions "$G")" "versions after reads and a touch"
: >"$G"
assert_eq 2 "$(nversions "$G")" "versions after a truncation by O_TRUNC"
assert_eq 0 "$(version_field "$G" 1 3)" "size of the truncated version"

step "Suspended versioning writes the null version in place"
rfs versioning "$B" suspend
assert_eq "Suspended" "$(rfs versioning "$B")" "versioning after suspend"
before=$(nversions "$F")
echo first-null >"$F"
echo second-null >"$F"
rfs versions "$F"
assert_eq $((before + 1)) "$(nversions "$F")" "versions after two writes while Suspended"
assert_eq "null" "$(version_field "$F" 1 1)" "ID of the newest version"
assert_eq "$(printf 'second-null\n' | sha256sum | cut -d' ' -f1)" \
	"$(versions_json_get "$F" "v[0]['sha256']")" "sha256 of the null version"
assert_eq 1 "$(rfs versions "$F" | cut -f1 | grep -cx null)" "null versions"
echo new-in-suspended >"$B/fresh"
assert_eq 1 "$(nversions "$B/fresh")" "versions of a new key while Suspended"
assert_eq "null" "$(version_field "$B/fresh" 1 1)" "ID of a new key's version while Suspended"
rfs versioning "$B" enable
assert_eq "Enabled" "$(rfs versioning "$B")" "versioning after enable"
echo enabled-again >"$F"
assert_eq $((before + 2)) "$(nversions "$F")" "versions after a write once Enabled again"
id=$(version_field "$F" 1 1)
[ "$id" != null ] || fail "a write in an Enabled bucket got the null version ID"
assert_eq "null" "$(version_field "$F" 2 1)" "the null version is kept below"
expect_fail rfs versioning "$B" sideways

step "versions survive a remount"
rfs versions "$F" >"$T/v.before"
rfs versions "$G" >>"$T/v.before"
remount
rfs versions "$F" >"$T/v.after"
rfs versions "$G" >>"$T/v.after"
diff "$T/v.before" "$T/v.after" || fail "version listings changed across a remount"
assert_eq "Enabled" "$(rfs versioning "$B")" "versioning after remount"
ok "listings unchanged"

step "a restore or rm-version while mounted: the next open reads the current version, whole"
# With -o nopassthrough (the writeback cache) the kernel kept the size it
# had: a shorter version restored read with NULs at its end, a longer one
# cut short, and an append then kept that as a new version.
R=$B/restored
echo short >"$R"
echo "a much longer second version" >"$R"
cat "$R" >/dev/null	# the kernel holds the inode, with its size
rfs restore "$R" "$(rfs versions "$R" | sed -n 2p | cut -f1)" >/dev/null
sleep 1.2	# the entry and attribute timeout
assert_eq "short" "$(cat "$R")" "the file after restoring its shorter version"
assert_eq 6 "$(stat -c %s "$R")" "its size"
echo appended >>"$R"
assert_eq "short
appended" "$(cat "$R")" "after an append"
rfs restore "$R" "$(rfs versions "$R" | sed -n 3p | cut -f1)" >/dev/null
sleep 1.2
assert_eq "a much longer second version" "$(cat "$R")" "the file after restoring its longer version"
rfs rm-version "$R" "$(rfs versions "$R" | sed -n 1p | cut -f1)" --yes >/dev/null 2>&1
sleep 1.2
assert_eq "short
appended" "$(cat "$R")" "the file after rm-version of its newest version"
# And at once, within the entry timeout: the open took the new content
# into the inode the kernel had, whose size it kept for good (NULs at the
# end, or the content cut), and the append kept that.
Q=$B/restored-now
echo short >"$Q"
echo "a much longer second version" >"$Q"
cat "$Q" >/dev/null
rfs restore "$Q" "$(rfs versions "$Q" | sed -n 2p | cut -f1)" >/dev/null
assert_eq "short" "$(cat "$Q")" "the file read at once after restoring its shorter version"
echo appended >>"$Q"
assert_eq "short
appended" "$(cat "$Q")" "after an append at once"
rfs restore "$Q" "$(rfs versions "$Q" | sed -n 3p | cut -f1)" >/dev/null
assert_eq "a much longer second version" "$(cat "$Q")" "the file read at once after restoring its longer version"
assert_eq "$(rfs versions "$Q" | sed -n 1p | cut -f3)" "$(stat -c %s "$Q")" "its size"
# And with a reader holding the file open (tail -f, less): the open took
# the new content into the inode the reader has, and the append wrote at
# that inode's old end, so that a version kept NULs where the newer lines
# had been (both write modes).
L=$B/tailed.log
printf 'line 1\n' >"$L"
printf 'line 2\nline 3\n' >>"$L"
exec 8<"$L"
rfs restore "$L" "$(rfs versions "$L" | sed -n 2p | cut -f1)" >/dev/null
printf 'line 4\n' >>"$L"
assert_eq "line 1
line 4" "$(cat "$L")" "a file restored under a reader, then appended to"
assert_eq 14 "$(rfs versions "$L" | sed -n 1p | cut -f3)" "the size of its newest version"
assert_eq "line 1
line 2
line 3" "$(cat <&8)" "what the reader reads on, as from a file replaced under it"
exec 8<&-
ok "restores and rm-version seen whole"

step "rm-version of the version a reader has open: the reader reads on"
# As a process reads on after rm of a file it has open.  A read past the
# size the kernel knew asked for attributes, and got ENOENT.
gen_data $((3 * 1024 * 1024)) 31 >"$B/held"
exec 7<"$B/held"
head -c 4096 <&7 >/dev/null
# The page cache may hold it all (the writer's pages): dropped, the reads
# after the rm-version reach the mount, which read a blob gone by then.
"$PYTHON" -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$B/held"
rfs rm-version "$B/held" "$(rfs versions "$B/held" | sed -n 1p | cut -f1)" --yes >/dev/null 2>&1 ||
	fail "rm-version of the only version of held"
sleep 1.2	# past the attribute timeout
assert_eq $((3 * 1024 * 1024 - 4096)) "$(cat <&7 | wc -c)" "bytes the reader read after the rm-version"
exec 7<&-
[ ! -e "$B/held" ] || fail "held is still there after its only version was removed"
ok "the open file reads to its end"

step "rm-version -r of a file open for writing: the close keeps what it wrote, on what it opened"
# With -o nopassthrough the first write reaches the mount at the close
# (the writeback cache), and copied the content from a blob removed
# meanwhile: the close failed with EIO.
printf 'base\n' >"$B/wheld"
exec 7>>"$B/wheld"
rfs rm-version -r --yes "$B/wheld" >/dev/null || fail "rm-version -r of wheld"
echo more >&7
exec 7>&- || fail "the close of the writer after rm-version -r"
assert_eq "base more" "$(tr '\n' ' ' <"$B/wheld" | sed 's/ $//')" "wheld after its writer's close"
assert_eq 1 "$(rfs versions "$B/wheld" | wc -l)" "versions of wheld"
ok "one version: the removed content and the write on it"

step "xattrs set on a new file before its content: one version, with them"
# tar --xattrs sets them before it writes: each such file got an empty
# version first (with -o nopassthrough also when set after the write,
# which the writeback cache held back).
"$PYTHON" - "$B" <<'EOF'
import errno, os, sys
b = sys.argv[1]
p = b + "/xa-early"
fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.setxattr(fd, "user.a", b"1")
os.setxattr(fd, "user.gone", b"x")
os.removexattr(fd, "user.gone")
try:
    os.setxattr(fd, "user.a", b"2", os.XATTR_CREATE)
    sys.exit("XATTR_CREATE of a name set: no error")
except OSError as e:
    assert e.errno == errno.EEXIST, e
assert os.getxattr(fd, "user.a") == b"1"
assert "user.a" in os.listxattr(fd) and "user.gone" not in os.listxattr(fd)
for i in range(10):
    os.setxattr(fd, "user.s3.tag.t%d" % i, b"v")
try:
    os.setxattr(fd, "user.s3.tag.t10", b"v")
    sys.exit("an eleventh tag: no error")
except OSError as e:
    assert e.errno == errno.E2BIG, e
os.write(fd, b"data")
os.close(fd)
q = b + "/xa-after"
fd = os.open(q, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b"data")
os.setxattr(fd, "user.b", b"2")
os.close(fd)
EOF
assert_eq 1 "$(rfs versions "$B/xa-early" | wc -l)" "versions of a file given xattrs before its content"
assert_eq 1 "$(rfs versions "$B/xa-after" | wc -l)" "versions of a file given an xattr after its write"
assert_eq 1 "$(getfattr --only-values -n user.a "$B/xa-early")" "user.a"
assert_eq 2 "$(getfattr --only-values -n user.b "$B/xa-after")" "user.b"
assert_eq 10 "$(getfattr -d -m 'user.s3.tag' "$B/xa-early" | grep -c '^user.s3.tag')" "tags kept"
assert_eq data "$(cat "$B/xa-early")" "content"
ok "one version each, with the xattrs and the content"

step "a writer open across rm-version and restore: its close keeps what it opened and wrote, and the name shows"
# With -o nopassthrough a commit while the writer stayed open (a child's
# close of an inherited descriptor) left no base for its next write once
# rm-version -r took that version: EIO, and all it wrote was lost.  A
# lookup under an open writer took the older content at the newer size
# (NULs).  And a close that made a removed name again left the kernel
# holding it as missing, so `>>` made a new file in its place.
"$PYTHON" - "$B" "$REPLICAFS" <<'EOF'
import os, subprocess, sys
b, rfs = sys.argv[1], sys.argv[2]
os.chdir(b)
with open("wq", "wb") as f:
    f.write(os.urandom(50))
old = open("wq", "rb").read()
fd = os.open("wq", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"p1\n")
subprocess.run([rfs, "rm-version", "-r", "wq", "--yes"], check=True,
               stdout=subprocess.DEVNULL)
assert not os.path.exists("wq"), "wq is still there after rm-version -r"
os.write(fd, b"p2\n")
os.close(fd)
assert os.path.exists("wq"), "wq missing after the close that made it again"
got = open("wq", "rb").read()
assert got == old + b"p1\np2\n", got
with open("wq", "ab") as f:
    f.write(b"more\n")
assert open("wq", "rb").read() == old + b"p1\np2\nmore\n", "append after"
with open("wf", "w") as f:
    f.write("short\n")
with open("wf", "w") as f:
    f.write("a much longer line of text\n")
fd = os.open("wf", os.O_WRONLY | os.O_APPEND)
newest = subprocess.run([rfs, "versions", "wf"], check=True, text=True,
                        capture_output=True).stdout.split()[0]
subprocess.run([rfs, "rm-version", "--yes", "wf", newest], check=True,
               stdout=subprocess.DEVNULL)
got = open("wf", "rb").read()
assert b"\0" not in got, got
os.write(fd, b"W\n")
os.close(fd)
got = open("wf", "rb").read()
assert got == b"a much longer line of text\nW\n", got
EOF
ok "the writer's content, whole; the name there at once"

unmount_fs
check_store --deep
