#!/bin/bash
#
# test_acl.sh - POSIX ACLs, judged against the native disk: the same
# setfacl, chmod, umask, mkdir and file writes are run in a directory on
# the native file system and in the mount, and the two must then agree on
# every getfacl and every mode, after a remount too; a user the ACLs name
# (nobody) must be let in and kept out at the same places; `cp -a`,
# `rsync -aAX` and `tar --acls` must copy a tree with ACLs in and out
# without an error and without losing one; a new version, a rename and the
# .versions view keep them; `-o noacl` turns them off; and a mount given
# neither `acl` nor `noacl` has them on only with allow_other or where the
# store holds one.  The sequence
# also has a set-group-ID folder, whose group and bit pass to what is made
# in it, as on the disk.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
chmod 755 "$T"	# so that nobody can walk to the mount and the native copy
NAT=$T/nat
mkdir "$NAT"

# sequence DIR: what a user does, the same in both places.
sequence() (
	set -e
	cd "$1"
	umask 022
	echo a >plain
	setfacl -m u:nobody:rw plain
	mkdir dd
	# a file made before the folder has a default ACL (the mount
	# notes it has none), then the ACL, then files that inherit it
	echo pre >dd/pre
	setfacl -d -m g:users:rx,u:nobody:rwx dd
	setfacl -m o::---,u:nobody:rx dd
	umask 077
	echo b >dd/f
	mkdir dd/sub
	echo c >dd/sub/g
	touch dd/empty
	umask 022
	mkdir noacl
	echo x >noacl/x
	umask 027
	echo y >noacl/y
	mkdir noacl/z
	umask 022
	cp plain plain2
	chmod 640 plain
	echo q >q
	setfacl -m u:nobody:r q
	setfacl -b q
	echo r >r
	setfacl -m g:users:rw r
	chmod g-w r
	echo s >s
	chmod 2775 s
	setfacl -m u:nobody:r s
	mkdir -p deep/er
	setfacl -R -m u:nobody:rX deep
	setfacl -k dd/sub
	mkdir shared
	chgrp users shared
	chmod 2775 shared
	echo t >shared/f
	mkdir -p shared/sub/deeper
	ln -s f shared/l
)

# acls DIR: every path below DIR (sorted), its getfacl and its mode.
acls() (
	cd "$1"
	find . | LC_ALL=C sort | while read -r p; do
		getfacl -p "$p"
		stat -c '%n %A %s %G' "$p"
	done
)

# same_acls DIR WHAT: DIR's ACLs and modes are the native tree's.
same_acls() {
	acls "$1" >"$T/got.txt"
	if ! diff "$T/want.txt" "$T/got.txt" >"$T/diff.txt"; then
		cat "$T/diff.txt"
		fail "$2: getfacl and modes differ from the native disk's (< native, > mount)"
	fi
	ok "$2: $(grep -c '^# file' "$T/got.txt") paths, the same ACLs and modes as on the native disk"
}

# as_nobody DIR: what user nobody can do there, with DIR written as D.
as_nobody() {
	runuser -u nobody -- sh -c '
		D=$1
		cat "$D/plain"; echo w >>"$D/plain" && echo wrote plain
		cat "$D/dd/f"; echo more >>"$D/dd/f" && echo appended dd/f
		echo n >"$D/dd/new" && echo created dd/new
		ls "$D/dd/sub"; cat "$D/dd/sub/g"
		cat "$D/q"; cat "$D/r"; cat "$D/s"; cat "$D/noacl/y"
		ls "$D/deep"
		true' sh "$1" 2>&1 | sed "s#$1#D#g"
}

step "the same ACL commands on the native disk and in the mount"
sequence "$NAT"
acls "$NAT" >"$T/want.txt"
grep -q 'user:nobody:rw-' "$T/want.txt" || fail "the native disk kept no ACL: is it mounted without acl?"
mount_fs allow_other
B=$MNT/bkt
mkdir "$B" "$B/t"
sequence "$B/t"
same_acls "$B/t" "in the mount"
ls -l "$B/t" | grep -q '^-rw-r-----+ .* plain$' || fail "ls -l shows no + for an ACL: $(ls -l "$B/t")"
ok "ls -l marks the files that have an ACL"

step "the kernel enforces them: user nobody is let in and kept out as on the disk"
as_nobody "$NAT" >"$T/nobody.want"
as_nobody "$B/t" >"$T/nobody.got"
if ! diff "$T/nobody.want" "$T/nobody.got"; then
	fail "nobody's access differs from the native disk's (< native, > mount)"
fi
grep -q '^appended dd/f$' "$T/nobody.got" || fail "nobody could not write through an inherited ACL: $(cat "$T/nobody.got")"
grep -q 'dd/new: Permission denied' "$T/nobody.got" || fail "nobody created a file without the right: $(cat "$T/nobody.got")"
ok "$(grep -c . "$T/nobody.got") results, the same on both"
acls "$NAT" >"$T/want.txt"	# nobody's writes changed sizes

step "they survive a remount"
remount allow_other
same_acls "$B/t" "after a remount"

step "cp -a, rsync -aAX and tar --acls copy a tree with ACLs in and out"
cp -a "$NAT" "$B/cpa"
same_acls "$B/cpa" "cp -a into the mount"
rsync -aAX "$NAT/" "$B/rsync/"
same_acls "$B/rsync" "rsync -aAX into the mount"
mkdir "$B/tar"
tar -C "$NAT" --acls -cf - . | tar -C "$B/tar" --acls -xpf -
same_acls "$B/tar" "tar --acls into the mount"
[ -z "$(rsync -aAXn --itemize-changes "$NAT/" "$B/rsync/")" ] ||
	fail "a second rsync -aAX finds changes: $(rsync -aAXn --itemize-changes "$NAT/" "$B/rsync/")"
ok "a second rsync -aAX has nothing to do"
rsync -aAX "$B/rsync/" "$T/back/"
same_acls "$T/back" "rsync -aAX out of the mount"

step "a new version and a rename keep the ACL; .versions shows each version's"
echo v2 >>"$B/t/plain"
mv "$B/t/plain" "$B/t/plain.moved"
getfacl -p "$B/t/plain.moved" | grep -qx 'user:nobody:rw-.*' ||
	fail "the ACL did not follow a new version and a rename: $(getfacl -p "$B/t/plain.moved")"
first=$(find "$MNT/.versions/bkt/t/plain.moved/" -mindepth 1 | LC_ALL=C sort | head -1)
getfacl -p "$first" | grep -qx 'user:nobody:rw-.*' || fail "the first version in .versions has no ACL: $(getfacl -p "$first")"
assert_eq "a" "$(runuser -u nobody -- head -1 "$first")" "nobody reads the first version through its ACL"
ok "ACLs stay with new versions, renames and .versions"

step "the history views keep out whom the live folders keep out"
H=$B/hist
mkdir "$H"
mkdir "$H/priv" "$H/deny" "$H/grant" "$H/gone"
for d in priv deny grant gone; do echo "$d data" >"$H/$d/f"; done
chmod 700 "$H/priv" "$H/grant" "$H/gone"
setfacl -m u:nobody:--- "$H/deny"
setfacl -m u:nobody:rx "$H/grant"
chown nobody "$H/gone"
setfacl -m u:nobody:rx "$H/gone"
sleep 0.1
NOW=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.1
rm -rf "$H/gone"
# reads DIR: what nobody gets of DIR/f: its content, or "denied".
reads() { runuser -u nobody -- cat "$1/f" 2>/dev/null || echo denied; }
reads_version() {
	runuser -u nobody -- sh -c 'cat "$1"/f/*[0-9a-z]' sh "$1" 2>/dev/null ||
		echo denied
}
for d in priv deny grant; do
	want=$(reads "$H/$d")
	assert_eq "$want" "$(reads "$MNT/.at/$NOW/bkt/hist/$d")" "nobody reading $d/f in .at"
	assert_eq "$want" "$(reads_version "$MNT/.versions/bkt/hist/$d")" "nobody reading $d/f's versions"
done
assert_eq "gone data" "$(reads "$MNT/.at/$NOW/bkt/hist/gone")" "nobody reading, in .at, a file its folder's ACL let it read"
assert_eq "denied denied grant data" "$(reads "$H/priv") $(reads "$H/deny") $(reads "$H/grant")" \
	"what nobody reads in the live folders"
ok "a 0700 folder, a folder whose ACL denies and one whose ACL grants: the same in .at and .versions"
entry=$(find "$MNT/.versions/bkt/hist/gone/f/" -name '*.deleted')
expect_error "Permission denied" runuser -u nobody -- rm "$entry"
ok "a user who does not own a file cannot undelete it through .versions"
# Nor can its owner where she may not make the name: root removed
# nobody's file and closed the folder to others.
mkdir -m 777 "$H/locked"
runuser -u nobody -- sh -c 'echo junk >"$1/junk"' sh "$H/locked"
rm "$H/locked/junk"
chmod 755 "$H/locked"
entry=$(find "$MNT/.versions/bkt/hist/locked/junk/" -name '*.deleted')
expect_error "Permission denied" runuser -u nobody -- rm "$entry"
assert_missing "$H/locked/junk" "a file undeleted by its owner into a folder closed to her"
chmod 777 "$H/locked"
sleep 1.2	# the kernel's attribute timeout
runuser -u nobody -- rm "$entry" || fail "nobody could not undelete its file in a folder open to it"
assert_eq junk "$(cat "$H/locked/junk")" "the file undeleted by its owner"
ok "nor can its owner in a folder she may not write"
rfs undelete "$H/gone/f" >/dev/null
for _ in $(seq 1 30); do [ -e "$H/gone/f" ] && break; sleep 0.1; done
assert_eq "drwxr-x--- nobody" "$(stat -c '%A %U' "$H/gone")" "the folder of an undeleted file, removed with rm -rf"
getfacl -p "$H/gone" | grep -qx 'user:nobody:r-x' || fail "the undeleted folder lost its ACL: $(getfacl -p "$H/gone")"
ok "undelete of a file brings back its folder with its mode, owner and ACL"

step "a file made private hides its past versions too (chmod 600, then an ACL)"
# Each version kept the mode it was written with: after chmod 600 others
# still read the earlier saves of the file in .versions and .at.
mkdir "$H/open"
echo "first save" >"$H/open/f"
setfattr -n user.note -v "about the first save" "$H/open/f"
sleep 0.1
BEFORE=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.1
echo "second save" >"$H/open/f"
assert_eq "first save" "$(reads "$MNT/.at/$BEFORE/bkt/hist/open")" "nobody reading the first save while the file is 0644"
chmod 600 "$H/open/f"
assert_eq "denied" "$(reads "$H/open")" "nobody reading the file of mode 600"
assert_eq "denied" "$(reads "$MNT/.at/$BEFORE/bkt/hist/open")" "nobody reading the first save in .at after chmod 600"
assert_eq "denied" "$(reads_version "$MNT/.versions/bkt/hist/open")" "nobody reading the versions after chmod 600"
# Nor what tells of the content: a hash, the user's attributes.
v1=$(find "$MNT/.versions/bkt/hist/open/f/" -mindepth 1 | LC_ALL=C sort | head -1)
expect_error "Permission denied" runuser -u nobody -- getfattr -n system.replicafs.sha256 "$v1"
expect_error "Permission denied" runuser -u nobody -- getfattr -n user.note "$v1"
setfacl -m u:nobody:r "$H/open/f"
assert_eq "first save" "$(reads "$MNT/.at/$BEFORE/bkt/hist/open")" "nobody reading the first save once an ACL lets it read the file"
rm "$H/open/f"
assert_eq "first save" "$(reads "$MNT/.at/$BEFORE/bkt/hist/open")" "the same after rm (its last content version says)"
ok "the file's mode and ACL now decide who reads its history"

step "a name taken over by another user shows them none of the history they could not read"
# Before, the file "now" was whoever held the name now: nobody removed
# root's file in a folder open to all, wrote its own, and read root's
# first save (0644 once, hidden by the chmod 600 of the second).  And a
# private folder, moved away and made again by nobody, let nobody read
# its files' versions in .versions.
mkdir -m 777 "$H/open2" "$H/share"
chmod 1777 "$H/share"
echo "root's first save" >"$H/open2/f"
sleep 0.1
BEFORE2=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.1
echo "root's second save" >"$H/open2/f"
chmod 600 "$H/open2/f"
runuser -u nobody -- sh -c 'rm -f "$1/f" && echo "nobody now" >"$1/f"' sh "$H/open2"
mkdir -m 700 "$H/share/priv"
echo "root private" >"$H/share/priv/f"
mv "$H/share/priv" "$H/share/priv-old"
runuser -u nobody -- sh -c 'mkdir "$1/priv" && echo "nobody own" >"$1/priv/own"' sh "$H/share"
sleep 1.2	# the kernel's attribute timeout
mapfile -t TV < <(find "$MNT/.versions/bkt/hist/open2/f/" -mindepth 1 ! -name '*.deleted' | LC_ALL=C sort)
assert_eq 3 "${#TV[@]}" "versions of the file taken over"
assert_eq "denied" "$(runuser -u nobody -- cat "${TV[0]}" 2>/dev/null || echo denied)" "nobody reading root's first save after taking the name"
assert_eq "denied" "$(reads "$MNT/.at/$BEFORE2/bkt/hist/open2")" "the same through .at"
assert_eq "nobody now" "$(runuser -u nobody -- cat "${TV[2]}")" "nobody reading its own version"
expect_error "Permission denied" runuser -u nobody -- getfattr -n system.replicafs.sha256 "${TV[0]}"
assert_eq "denied" "$(reads_version "$MNT/.versions/bkt/hist/share/priv")" "nobody reading a private folder's file in the folder it made again"
assert_eq "nobody own" "$(runuser -u nobody -- sh -c 'cat "$1"/*' sh "$MNT/.versions/bkt/hist/share/priv/own")" \
	"nobody reading the versions of its own file there"
# The folder's owner still reads her old files, in .at at a time before
# the other user took the name (that user's private folder does not lock
# her out: it is a later life of the name).
mkdir -m 1777 "$H/share2"
runuser -u daemon -- sh -c 'mkdir -m 700 "$1/dpriv" && echo "daemon private" >"$1/dpriv/f"' sh "$H/share2"
sleep 0.1
TD=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.1
runuser -u daemon -- mv "$H/share2/dpriv" "$H/share2/dpriv-old"
runuser -u nobody -- mkdir -m 700 "$H/share2/dpriv"
sleep 1.2
assert_eq "daemon private" "$(runuser -u daemon -- cat "$MNT/.at/$TD/bkt/hist/share2/dpriv/f")" \
	"the owner reading her file in .at after another user took the folder's name"
assert_eq "denied" "$(runuser -u nobody -- cat "$MNT/.at/$TD/bkt/hist/share2/dpriv/f" 2>/dev/null || echo denied)" \
	"the other user reading it"
ok "a later version's mode, and each folder above as it was, decide too"
# A file of another user renamed over one's own (what mv -f, sed -i and
# rsync do) replaces it as rm does: its owner still reads her versions.
# Before, the other user's private version locked her out of them.
mkdir -m 777 "$H/clobber"
runuser -u daemon -- sh -c 'echo "daemon v1" >"$1/report"' sh "$H/clobber"
runuser -u nobody -- sh -c 'cd "$1" && umask 077 && echo draft >.t && mv -f .t report' sh "$H/clobber"
sleep 1.2	# the kernel's attribute timeout
mapfile -t RV < <(find "$MNT/.versions/bkt/hist/clobber/report/" -mindepth 1 | LC_ALL=C sort)
assert_eq 2 "${#RV[@]}" "versions of the report renamed over"
assert_eq "daemon v1" "$(runuser -u daemon -- cat "${RV[0]}" 2>&1)" "the owner reading her version after a rename over it"
assert_eq "denied" "$(runuser -u daemon -- cat "${RV[1]}" 2>/dev/null || echo denied)" "the owner reading the other user's private version"
ok "a file renamed over another user's ends its life: she reads her versions"

step "a write by another user drops set-ID bits set after its open, as on the disk"
# writes_after_chmod DIR MODE: nobody opens DIR/kp (0666), root chmods it
# to MODE, nobody writes and closes; the mode that is left.
writes_after_chmod() {
	local go=$T/tmp/go pid
	rm -f "$1/kp" "$go"
	echo a >"$1/kp"
	chmod 666 "$1/kp"
	runuser -u nobody -- "$PYTHON" -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
open(sys.argv[2] + ".open", "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
os.write(fd, b"more")
os.close(fd)' "$1/kp" "$go" &
	pid=$!
	poll 5 test -e "$go.open" || fail "the writer of $1/kp did not open it in 5 s"
	chmod "$2" "$1/kp"
	touch "$go"
	wait "$pid"
	rm -f "$go" "$go.open"
	sleep 1.1	# the kernel's attribute timeout
	stat -c %A "$1/kp"
}
mkdir -m 1777 "$T/tmp"	# the native side, where nobody also leaves its signal
for m in 6777 2767 4755 2775; do
	assert_eq "$(writes_after_chmod "$T/tmp" "$m")" "$(writes_after_chmod "$B/t" "$m")" \
		"mode after nobody's write to a file made $m after its open"
done
ok "set-user-ID and set-group-ID go as ext4 lets them go"

step "a bucket keeps its own ACLs and xattrs: copies into a bucket's top folder are whole"
S=$T/top
mkdir "$S"
setfacl -m u:nobody:rx "$S"
setfacl -d -m u:nobody:rwx,g:users:rx "$S"
setfattr -n user.top -v 1 "$S"
echo f >"$S/f"
# top DIR: the ACL and user.* of DIR itself, and a file made in it now.
top() {
	(cd "$1" && getfacl -p . && getfattr -d . 2>/dev/null | grep -v '^#' &&
		echo new >made && getfacl -p made)
}
want=$(top "$S")
for how in rsync cp tar; do
	mkdir "$MNT/top-$how"
	case $how in
	rsync) out=$(rsync -aAX "$S/" "$MNT/top-$how/" 2>&1) ;;
	cp) out=$(cp -a "$S/." "$MNT/top-$how/" 2>&1) ;;
	tar) out=$(tar --acls --xattrs -C "$S" -cf - . | tar --acls --xattrs -C "$MNT/top-$how" -xf - 2>&1) ;;
	esac || fail "$how into the bucket top-$how failed: $out"
	[ -z "$out" ] || fail "$how into the bucket top-$how said: $out"
	rm -f "$S/made"
	assert_eq "$want" "$(top "$MNT/top-$how")" "the bucket's ACL, xattrs and what it gives a new file, after $how"
	rm -f "$MNT/top-$how/made" "$S/made"
done
chmod 750 "$MNT/top-cp"
chmod 750 "$S"
assert_eq "$(getfacl -p "$S" | grep -v '^#')" "$(getfacl -p "$MNT/top-cp" | grep -v '^#')" "the bucket's ACL after chmod 750"
remount allow_other
assert_eq "$(getfacl -p "$S" | grep -v '^#')" "$(getfacl -p "$MNT/top-cp" | grep -v '^#')" "the bucket's ACL after a remount"
ok "rsync -aAX, cp -a and tar --acls --xattrs into a bucket: no error, same ACL and xattrs, inherited, kept"

step "a delete marker shows who removed the file, in .versions"
mkdir "$MNT/top-cp/shared"
chmod 1777 "$MNT/top-cp/shared"
runuser -u nobody -- sh -c 'echo x >"$1/by-nobody" && rm "$1/by-nobody"' sh "$MNT/top-cp/shared" ||
	fail "user nobody could not write and remove in a folder of mode 1777"
dm0=$(cd "$MNT/.versions/top-cp/shared/by-nobody" && ls -- *.deleted)
assert_eq "$(id -u nobody)" "$(stat -c %u "$MNT/.versions/top-cp/shared/by-nobody/$dm0")" \
	"the owner of the delete marker (it was the mount's)"
runuser -u nobody -- sh -c 'echo y >"$1/mv-by-nobody" && mv "$1/mv-by-nobody" "$1/moved"' sh "$MNT/top-cp/shared" ||
	fail "user nobody could not write and rename in a folder of mode 1777"
dm=$(cd "$MNT/.versions/top-cp/shared/mv-by-nobody" && ls -- *.deleted)
assert_eq "$(id -u nobody)" "$(stat -c %u "$MNT/.versions/top-cp/shared/mv-by-nobody/$dm")" \
	"the owner of the delete marker a rename left (it was the mount's)"
ok "the delete markers of rm and mv are user nobody's"
# The CLI opens the store, which only its owner may: another user is
# told where the mount shows the same.
runuser -u nobody -- "$REPLICAFS" versions "$MNT/top-cp/shared/by-nobody" 2>"$T/cli.err" &&
	fail "user nobody opened a store that is root's"
grep -q '`ls -l .versions/top-cp/shared/by-nobody`' "$T/cli.err" ||
	fail "the refusal does not say where to look instead: $(cat "$T/cli.err")"
# The bucket's own ACL lets nobody in, in .versions too (it had none
# there, and mode 750 kept nobody out).
assert_eq "$(getfacl -p "$MNT/top-cp" | grep -v '^#')" "$(getfacl -p "$MNT/.versions/top-cp" | grep -v '^#')" \
	"the bucket's ACL in .versions"
runuser -u nobody -- rm "$MNT/.versions/top-cp/shared/by-nobody/$dm0" ||
	fail "user nobody could not remove its own delete marker in .versions"
assert_eq "x" "$(cat "$MNT/top-cp/shared/by-nobody")" "the file user nobody undeleted through .versions"
ok "another user's CLI refused with a pointer to .versions, where it undeletes"

step "-o noacl: no ACLs, and the kernel applies the umask"
unmount_fs
mount_fs noacl
# Without allow_other the kernel keeps other users out of the mount: the
# commands said "not inside a replicafs mount".
runuser -u nobody -- "$REPLICAFS" versions "$B/t/q" 2>"$T/na.err" &&
	fail "user nobody read versions through a mount made without allow_other"
grep -qF "permission denied: the replicafs mount on $MNT is for the user who mounted it" "$T/na.err" ||
	fail "the refusal does not say why: $(cat "$T/na.err")"
expect_error "Operation not supported" setfacl -m u:nobody:r "$B/t/q"
(umask 077 && echo z >"$B/t/private")
assert_eq "-rw-------" "$(stat -c %A "$B/t/private")" "a file made under umask 077 with -o noacl"
ok "setfacl is refused and the umask applies"

step "without -o acl or noacl: ACLs on where the store holds one, or with allow_other"
# This store holds ACLs: a plain mount enforces them.
remount
grep -q "POSIX ACLs: on (the store holds some)" "$(daemon_log)" ||
	fail "the mount of a store with ACLs does not say they are on: $(grep ACL "$(daemon_log)")"
assert_eq "$(getfacl -p "$NAT/t/plain" | grep -v '^#')" "$(getfacl -p "$B/t/plain" | grep -v '^#')" \
	"getfacl of a file with an ACL on a plain mount"
unmount_fs
check_store
# A store that holds none: off, as with -o noacl, and the log says how to
# turn them on.
STORE=$T/store-plain
mount_fs
grep -q "POSIX ACLs: off (the store holds none; -o acl turns them on)" "$(daemon_log)" ||
	fail "the mount of a store without ACLs does not say they are off"
mkdir "$MNT/plain"
echo p >"$MNT/plain/f"
expect_error "Operation not supported" setfacl -m u:nobody:r "$MNT/plain/f"
grep -q "mount with -o acl to keep them" "$(daemon_log)" ||
	fail "the refused ACL left no hint in the log"
(umask 077 && echo z >"$MNT/plain/private")
assert_eq "-rw-------" "$(stat -c %A "$MNT/plain/private")" "a file made under umask 077 without ACLs"
# -o acl on the same store: ACLs kept, and the next plain mount keeps
# enforcing them.
remount acl
setfacl -m u:nobody:r "$MNT/plain/f" || fail "setfacl with -o acl"
remount
grep -q "POSIX ACLs: on (the store holds some)" "$(daemon_log)" ||
	fail "a plain mount after an ACL was set does not say they are on"
assert_eq "user:nobody:r--" "$(getfacl -p "$MNT/plain/f" 2>/dev/null | grep '^user:nobody')" \
	"the ACL set with -o acl, on the next plain mount"
unmount_fs
# allow_other turns them on even where the store holds none.
STORE=$T/store-other
mount_fs allow_other
grep -q "POSIX ACLs: on (allow_other)" "$(daemon_log)" ||
	fail "a mount with allow_other does not say ACLs are on"
mkdir "$MNT/other"
echo o >"$MNT/other/f"
setfacl -m u:nobody:r "$MNT/other/f" || fail "setfacl on a mount with allow_other"
ok "off on a plain store (setfacl refused, with a hint), on after -o acl set one, on with allow_other"
unmount_fs
check_store
