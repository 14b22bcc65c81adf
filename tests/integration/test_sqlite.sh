#!/bin/bash
#
# test_sqlite.sh - SQLite databases inside a mount, in the rollback journal
# modes DELETE and TRUNCATE (journal files made, truncated and removed on
# each transaction, fsync, byte-range locks), and in WAL mode when the
# mount supports it (it needs a shared mmap of the -shm file): 1,000 inserts
# in transactions, queries, PRAGMA integrity_check, and the same after a
# remount.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

setup
mount_fs
B=$MNT/bkt
mkdir "$B"

# workload DB MODE: create, fill in transactions, query, check.
workload() {
	local db=$1 mode=$2 got
	got=$(sqlite3 "$db" "PRAGMA journal_mode=$mode;")
	assert_eq "$mode" "$got" "PRAGMA journal_mode=$mode on $db"
	sqlite3 "$db" <<'EOF'
.bail on
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER,
                   blob BLOB);
CREATE INDEX items_name ON items(name);
CREATE TABLE log(id INTEGER PRIMARY KEY, msg TEXT);
EOF
	"$PYTHON" - "$db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
n = 0
for tx in range(20):
    db.execute("BEGIN")
    for i in range(50):
        n += 1
        db.execute("INSERT INTO items(name, qty, blob) VALUES (?, ?, ?)",
                   ("item%04d" % n, n * 3, bytes([n % 256]) * (n % 700)))
    db.execute("INSERT INTO log(msg) VALUES (?)", ("tx %d" % tx,))
    db.execute("COMMIT")
db.execute("BEGIN")
db.execute("UPDATE items SET qty = qty + 1 WHERE id % 10 = 0")
db.execute("DELETE FROM items WHERE id % 100 = 7")
db.execute("COMMIT")
db.execute("BEGIN")
db.execute("INSERT INTO log(msg) VALUES ('rolled back')")
db.execute("ROLLBACK")
db.close()
EOF
	ok "$mode: 1,000 inserts in 20 transactions, an update, a delete, a rollback"
	check_db "$db" "$mode"
}

# check_db DB MODE: the data is what workload() left, and intact.
check_db() {
	local db=$1 mode=$2
	assert_eq "ok" "$(sqlite3 "$db" 'PRAGMA integrity_check;')" "$mode: PRAGMA integrity_check"
	assert_eq "990" "$(sqlite3 "$db" 'SELECT count(*) FROM items;')" "$mode: rows in items"
	assert_eq "$EXPECTED_SUM" "$(sqlite3 "$db" 'SELECT sum(qty) FROM items;')" "$mode: sum(qty)"
	assert_eq "20" "$(sqlite3 "$db" 'SELECT count(*) FROM log;')" "$mode: rows in log"
	assert_eq "item0500|1501" \
		"$(sqlite3 "$db" "SELECT name, qty FROM items WHERE name = 'item0500';")" \
		"$mode: a query by index"
	ok "$mode: queries and integrity_check"
}

# The expected sum(qty): 3n for n = 1..1000, plus 1 for each of the 100 rows
# with id % 10 == 0, minus the 10 deleted rows (id % 100 == 7).
EXPECTED_SUM=$((3 * 500500 + 100 - 3 * (10 * 7 + 100 * 45)))

step "journal_mode=DELETE"
workload "$B/delete.db" delete
assert_missing "$B/delete.db-journal" "the rollback journal after the last transaction"

step "journal_mode=TRUNCATE"
workload "$B/truncate.db" truncate

step "journal_mode=WAL (if the mount supports it)"
wal=no
if got=$(sqlite3 "$B/wal-probe.db" 'PRAGMA journal_mode=WAL;' 2>&1) &&
	[ "$got" = wal ]; then
	wal=yes
	workload "$B/wal.db" wal
	sqlite3 "$B/wal.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
	check_db "$B/wal.db" wal
else
	log "   WAL mode is not available on this mount ($got); not tested"
fi

step "two processes at once (locking)"
sqlite3 "$B/delete.db" 'CREATE TABLE IF NOT EXISTS c(n INTEGER);'
for w in 1 2; do
	"$PYTHON" - "$B/delete.db" "$w" <<'EOF' &
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
for i in range(50):
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO c VALUES (?)", (int(sys.argv[2]),))
    db.execute("COMMIT")
db.close()
EOF
	track_pid $!
done
wait "${BG_PIDS[@]}"
BG_PIDS=()
assert_eq "100" "$(sqlite3 "$B/delete.db" 'SELECT count(*) FROM c;')" "rows inserted by two processes"
assert_eq "ok" "$(sqlite3 "$B/delete.db" 'PRAGMA integrity_check;')" "integrity_check after two writers"

step "after a remount"
sqlite3 "$B/delete.db" 'DROP TABLE c;'
remount
check_db "$B/delete.db" delete
check_db "$B/truncate.db" truncate
[ "$wal" = no ] || check_db "$B/wal.db" wal
cp "$B/delete.db" "$T/native.db"
assert_eq "ok" "$(sqlite3 "$T/native.db" 'PRAGMA integrity_check;')" "a copy on the native disk"

unmount_fs
check_store
