/*
 * store.c - the store as a whole: opening and closing, the catalog's
 * connections, statements, transactions and schema, garbage collection,
 * check and sync.
 *
 * Design.  The catalog is one SQLite database in WAL mode.  Each thread
 * that calls the store gets its own connection (opened SQLITE_OPEN_NOMUTEX
 * on first use, found through a pthread key, closed at the thread's exit
 * or by store_close()), with its prepared statements cached in an array
 * indexed by enum stmt_id.  Readers never block writers and vice versa;
 * writers serialize on SQLite's write lock with BEGIN IMMEDIATE, which is
 * also what serializes several processes that open one store.  No
 * decision about the catalog relies on an in-process lock.
 *
 * Content lives in immutable blob files named by their SHA-256 (blob.c).
 * A blob is shared by every version with that content, so the only hard
 * question is when a blob may be removed; the invariants below answer it.
 *
 * Crash invariants.  A crash of a process at any instant (SIGKILL, or
 * power loss for what was written with put->durable or followed by
 * store_sync()) leaves a store for which these hold:
 *
 *  1. A blob is complete under its final name before any row names it:
 *     content is written to a staging file, which is linked into
 *     blobs/xx/HASH (never written there in place) inside the transaction
 *     that inserts the row, before COMMIT.
 *  2. All catalog changes of one operation are one transaction (BEGIN
 *     IMMEDIATE ... COMMIT): a put, a delete, a rename of a whole
 *     directory either happened entirely or not at all.  objects.cur and
 *     objects.live always describe the newest version of the object.
 *  3. A blob is removed only when no committed row references it: inside
 *     the transaction that deleted the last row naming it, it is renamed
 *     into trash/ (so no other writer can reuse it meanwhile, since they
 *     wait for our write lock), renamed back if the transaction fails, and
 *     unlinked only after COMMIT.  The empty blob is never removed.
 *  4. What a crash leaves behind is garbage or a blob in trash/: a linked
 *     blob whose transaction did not commit, a named staging file, a blob
 *     in trash/ whose transaction did or did not commit.  They are dealt
 *     with only by store_open() under the exclusive flock() of STORE/lock,
 *     that is when no other process has the store open, so no writer can
 *     be between step 1 and COMMIT: a blob in trash/ that a row still
 *     names (its transaction died before COMMIT) is put back in blobs/,
 *     everything else in staging/ and trash/ is removed, and so is every
 *     blob no row names, when a process may have died with the store
 *     open (below).  Until that open, such a version's blob is found in
 *     trash/ by store_blob_open().
 *  6. Each process that has the store open holds a marker, a file in
 *     open/ that it keeps flock()ed, made (and its directory fsynced)
 *     before it writes anything, and removed by store_close().  A marker
 *     that no process holds is the mark of one that died with the store
 *     open: only then does store_open() look at every blob (a query per
 *     blob, seconds for a large store) for those no row names, and then
 *     remove the marker.  staging/ and trash/ are swept at every
 *     exclusive open.  A process that cannot make its marker (a full
 *     disk) still opens the store, with a warning: if it dies, its
 *     unreferenced blobs wait for a later collection (waste, not
 *     damage).  A process whose transaction linked a new blob and then
 *     did not commit (ENOSPC, say) leaves its marker at close, so that
 *     blob is collected too.
 *  5. Each transaction checks what it relies on inside itself (the
 *     bucket's versioning, the current version, whether a blob exists),
 *     so decisions hold across processes.
 *  7. A version put through the close journal (journal.c) is, from the
 *     moment store_journal_put() returns, either in the catalog or in a
 *     whole record of STORE/journal past the offset the catalog's
 *     journal row gives; a record is applied (blob placed, row written,
 *     offset moved) in one transaction, so once whoever applies it.  No
 *     write transaction commits before the records that bear on it
 *     (every one in another process; those of the same or an enclosing
 *     name in the appending one), and store_open() applies what a dead
 *     process left.
 *
 * tests/unit/test_crash.c kills writers at random moments and checks each
 * invariant with store_check() and the versions the writer reported;
 * tests/unit/test_journal.c does the same for invariant 7.
 */
#include "store/store.h"
#include "store/store_i.h"
#include "store/blob_i.h"
#include "store/log.h"
#include "store/walvfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/*
 * The current version of an object is the newest one written (the
 * highest id), except for a replica that arrived late: one the source
 * wrote before a version this store already had (a batch job sending an
 * old failure again).  It takes its place in the history, never the
 * current one's.  This condition, on versions AS v, keeps the others.
 */
#define VER_NOT_LATE                                                          \
	"NOT (v.replica AND EXISTS (SELECT 1 FROM versions AS u WHERE "       \
	"u.object = v.object AND u.id < v.id AND "                            \
	"u.created_ns > v.created_ns))"

/* Schema version this code writes; see migrations[]. */
#define SCHEMA_VERSION 12

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_BUCKET_GET] = "SELECT id, versioning, mode, uid, gid, mtime_ns, "
			  "ctime_ns, atime_ns, repl FROM buckets "
			  "WHERE name = ?",
	[ST_BUCKET_NEXT] = "SELECT name, versioning, mode, uid, gid, "
			   "mtime_ns, ctime_ns, atime_ns FROM buckets "
			   "WHERE name > ? ORDER BY name LIMIT 1",
	[ST_BUCKET_INSERT] = "INSERT INTO buckets(name, versioning, mode, "
			     "uid, gid, mtime_ns, ctime_ns, created_ns) "
			     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_BUCKET_DELETE] = "DELETE FROM buckets WHERE id = ?",
	[ST_BUCKET_HAS_OBJECTS] = "SELECT 1 FROM objects WHERE bucket = ? "
				  "LIMIT 1",
	[ST_BUCKET_SET_VERSIONING] = "UPDATE buckets SET versioning = ? "
				     "WHERE id = ?",
	[ST_BUCKET_SET_META] = "UPDATE buckets SET mode = ?, uid = ?, "
			       "gid = ?, mtime_ns = ?, ctime_ns = ?, "
			       "atime_ns = ? WHERE id = ?",
	[ST_BUCKET_SET_TIMES] = "UPDATE buckets "
				"SET mtime_ns = max(mtime_ns, ?), "
				"ctime_ns = max(ctime_ns, ?) WHERE id = ?",
	[ST_OBJ_GET] = "SELECT id, cur, live, ino FROM objects "
		       "WHERE bucket = ? AND key = ?",
	[ST_OBJ_INSERT] = "INSERT INTO objects(bucket, key, ino) "
			  "VALUES (?, ?, ?)",
	[ST_OBJ_SET_CUR] = "UPDATE objects SET cur = ?, live = ? "
			   "WHERE id = ?",
	[ST_OBJ_DELETE] = "DELETE FROM objects WHERE id = ?",
	[ST_OBJ_SET_INO] = "UPDATE objects SET ino = ? WHERE id = ?",
	[ST_INO_TAKE] = "UPDATE ino_next SET n = n + ?1 RETURNING n - ?1",
	[ST_VER_NEWEST] = "SELECT v.id, v.kind FROM versions AS v "
			  "WHERE v.object = ? AND " VER_NOT_LATE
			  " ORDER BY v.id DESC LIMIT 1",
	[ST_VER_BY_VID] = "SELECT " VER_COLS ", v.link FROM versions AS v "
			  "WHERE v.object = ? AND v.vid = ?",
	[ST_VER_BY_ID] = "SELECT " VER_COLS ", v.link FROM versions AS v "
			 "WHERE v.id = ?",
	/* History order: the time each version was written (a replica's
	 * at its source, so one that arrived late falls in its place),
	 * then the order of arrival.  Paged on (created_ns, id). */
	[ST_VER_OLDER] = "SELECT " VER_COLS " FROM versions AS v "
			 "WHERE v.object = ?1 AND v.created_ns <= ?2 AND "
			 "(v.created_ns < ?2 OR v.id < ?3) "
			 "ORDER BY v.created_ns DESC, v.id DESC LIMIT ?4",
	[ST_VER_INSERT] = "INSERT INTO versions(object, vid, kind, sha256, "
			  "size, mode, uid, gid, mtime_ns, ctime_ns, "
			  "created_ns, link, replica, blocks, atime_ns) "
			  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
			  "?)",
	[ST_VER_SET_VID] = "UPDATE versions SET vid = ? WHERE id = ?",
	[ST_VER_DELETE] = "DELETE FROM versions WHERE id = ?",
	[ST_VER_SET_META] = "UPDATE versions SET mode = ?, uid = ?, gid = ?, "
			    "mtime_ns = ?, ctime_ns = ?, atime_ns = ? "
			    "WHERE id = ?",
	[ST_VER_SET_CTIME] = "UPDATE versions SET ctime_ns = ? WHERE id = ?",
	[ST_VER_SET_TIMES] = "UPDATE versions "
			     "SET mtime_ns = max(mtime_ns, ?), "
			     "ctime_ns = max(ctime_ns, ?) WHERE id = ?",
	[ST_SHA_REFERENCED] = "SELECT 1 FROM versions WHERE sha256 = ? "
			      "LIMIT 1",
	[ST_XATTR_COPY] = "INSERT INTO xattrs(version, name, value) "
			  "SELECT ?, name, value FROM xattrs WHERE version = ?",
	[ST_XATTR_GET] = "SELECT value FROM xattrs "
			 "WHERE version = ? AND name = ?",
	[ST_XATTR_PUT] = "INSERT OR REPLACE INTO xattrs(version, name, value) "
			 "VALUES (?, ?, ?)",
	[ST_XATTR_DELETE] = "DELETE FROM xattrs WHERE version = ? AND name = ?",
	[ST_BXATTR_GET] = "SELECT value FROM bucket_xattrs "
			  "WHERE bucket = ? AND name = ?",
	[ST_BXATTR_PUT] = "INSERT OR REPLACE INTO bucket_xattrs(bucket, name, "
			  "value) VALUES (?, ?, ?)",
	[ST_BXATTR_DELETE] = "DELETE FROM bucket_xattrs "
			     "WHERE bucket = ? AND name = ?",
	[ST_BXATTR_NAMES] = "SELECT name FROM bucket_xattrs WHERE bucket = ? "
			    "ORDER BY name",
	[ST_BUCKET_SET_CTIME] = "UPDATE buckets SET ctime_ns = ? WHERE id = ?",
	[ST_XATTR_NAMES] = "SELECT name FROM xattrs WHERE version = ? "
			   "ORDER BY name",
	/* The listing and lookup seeks name the partial index, so that a
	 * change of plan can never turn a seek into a scan of dead keys. */
	[ST_LIVE_GET] = "SELECT o.key, " VER_COLS ", v.link, o.ino "
			"FROM objects AS o INDEXED BY objects_live "
			"JOIN versions AS v ON v.id = o.cur "
			"WHERE o.bucket = ? AND o.live = 1 AND o.key = ?",
	[ST_LIVE_FIRST] = "SELECT o.key, " VER_COLS ", o.ino "
			  "FROM objects AS o INDEXED BY objects_live "
			  "JOIN versions AS v ON v.id = o.cur "
			  "WHERE o.bucket = ? AND o.live = 1 AND o.key >= ? "
			  "ORDER BY o.key LIMIT 1",
	[ST_LIVE_FIRST_BELOW] = "SELECT o.key, " VER_COLS ", o.ino "
				"FROM objects AS o INDEXED BY objects_live "
				"JOIN versions AS v ON v.id = o.cur "
				"WHERE o.bucket = ? AND o.live = 1 "
				"AND o.key >= ? AND o.key < ? "
				"ORDER BY o.key LIMIT 1",
	[ST_LIVE_RANGE] = "SELECT o.key FROM objects AS o "
			  "INDEXED BY objects_live "
			  "WHERE o.bucket = ? AND o.live = 1 "
			  "AND o.key >= ? AND o.key < ? ORDER BY o.key",
	[ST_REPL_TARGETS] = "SELECT rule, prefix, tags, dest, delete_markers "
			    "FROM repl_targets WHERE bucket = ? "
			    "ORDER BY priority DESC, id",
	[ST_REPL_ENQUEUE] = "INSERT INTO repl_queue(version, object, dest, "
			    "rule, queued_ns, job) VALUES (?, ?, ?, ?, ?, ?)",
	[ST_REPL_UNQUEUE] = "DELETE FROM repl_queue WHERE version = ?",
	[ST_CHECK_INTEGRITY] = "PRAGMA integrity_check",
	[ST_CHECK_BLOBS] = "SELECT sha256, size, id FROM versions "
			   "WHERE sha256 IS NOT NULL ORDER BY sha256",
	[ST_CHECK_OBJECTS] =
		"SELECT o.id, o.key FROM objects AS o WHERE o.cur IS NOT "
		"(SELECT v.id FROM versions AS v WHERE v.object = o.id AND "
		VER_NOT_LATE " ORDER BY v.id DESC LIMIT 1) "
		"OR o.live IS NOT (SELECT v.kind != 4 FROM versions AS v "
		"WHERE v.id = o.cur)",
};

/* ---- errors, time --------------------------------------------------- */

int db_err(struct conn *c, int rc, const char *what)
{
	int err;

	switch (rc & 0xff) {
	case SQLITE_FULL:
		err = -ENOSPC;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		err = -EBUSY;
		break;
	case SQLITE_NOMEM:
		err = -ENOMEM;
		break;
	case SQLITE_CONSTRAINT:
		err = -EEXIST;
		break;
	case SQLITE_READONLY:
		err = -EROFS;
		break;
	default:
		err = -EIO;
		break;
	}
	/* A full disk is the caller's to tell (ENOSPC to a close, a room
	 * made and a retry that works: store_room_retry()): as an error
	 * here, rm-version on a full store printed dozens while it
	 * succeeded. */
	if (err == -ENOSPC)
		log_debug("store: %s: %s (sqlite %d)", what,
			  c && c->db ? sqlite3_errmsg(c->db)
				     : sqlite3_errstr(rc),
			  rc);
	else if (err != -EEXIST)
		log_err("store: %s: %s (sqlite %d)", what,
			c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc),
			rc);
	return err;
}

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- statements ----------------------------------------------------- */

sqlite3_stmt *stmt_get(struct conn *c, enum stmt_id id)
{
	int rc;

	if (!c->stmt[id]) {
		rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1,
					SQLITE_PREPARE_PERSISTENT,
					&c->stmt[id], NULL);
		if (rc != SQLITE_OK) {
			db_err(c, rc, stmt_sql[id]);
			c->stmt[id] = NULL;
			return NULL;
		}
	}
	return c->stmt[id];
}

int stmt_of_sql(struct conn *c, const char *sql, sqlite3_stmt **s)
{
	int i, rc;

	for (i = 0; i < c->nsql_cache; i++)
		if (c->sql_cache[i].sql == sql) {
			*s = c->sql_cache[i].s;
			return 0;
		}
	*s = NULL;
	if (c->nsql_cache == CONN_SQL_CACHE) {
		log_err("store: more statements than CONN_SQL_CACHE");
		return -ENOMEM;
	}
	rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s,
				NULL);
	if (rc != SQLITE_OK) {
		*s = NULL;
		return db_err(c, rc, sql);
	}
	c->sql_cache[c->nsql_cache].sql = sql;
	c->sql_cache[c->nsql_cache++].s = *s;
	return 0;
}

void stmt_done(sqlite3_stmt *s)
{
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
}

int stmt_step(struct conn *c, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_err(c, rc, what);
}

int stmt_run(struct conn *c, sqlite3_stmt *s, const char *what)
{
	int err;

	do
		err = stmt_step(c, s, what);
	while (err == 1);
	stmt_done(s);
	return err;
}

int bind_text(sqlite3_stmt *s, int i, const char *t, int len)
{
	return sqlite3_bind_text(s, i, t, len, SQLITE_STATIC);
}

int bind_atime(sqlite3_stmt *s, int i, int64_t atime_ns)
{
	return atime_ns ? sqlite3_bind_int64(s, i, atime_ns)
			: sqlite3_bind_null(s, i);
}

/* ---- transactions --------------------------------------------------- */

static int run_simple(struct conn *c, enum stmt_id id)
{
	sqlite3_stmt *s = stmt_get(c, id);

	if (!s)
		return -EIO;
	return stmt_run(c, s, stmt_sql[id]);
}

/*
 * Writers of one process take st->write_lock around their transaction:
 * waiting on a mutex costs nothing, while two connections racing for
 * SQLite's write lock make the loser sleep in its busy handler (1 ms and
 * up).  Processes still serialize on SQLite's lock.
 */
static int tx_begin_journal(struct conn *c, int apply)
{
	int err;

	pthread_mutex_lock(&c->st->write_lock);
	err = run_simple(c, ST_BEGIN);
	if (err) {
		pthread_mutex_unlock(&c->st->write_lock);
		return err;
	}
	c->writing = 1;
	/* What a close reported kept comes before anything after it. */
	if (apply && journal_due(c->st)) {
		err = sqlite3_exec(c->db, "SAVEPOINT journal", NULL, NULL,
				   NULL) == SQLITE_OK
			      ? journal_apply(c->st, c)
			      : -EIO;
		if (err == -ENOSPC || err == -EDQUOT) {
			/* A full disk: what frees room (rm-version) must
			 * not wait for what needs it.  The versions stay in
			 * the journal, and go in once there is room. */
			sqlite3_exec(c->db, "ROLLBACK TO journal", NULL, NULL,
				     NULL);
			c->j_moved = 0;
			if (!atomic_exchange(&c->st->j.full_told, 1))
				log_warn("store: %s: the disk is full: versions "
					 "in the close journal wait for room",
					 c->st->dir);
			err = 0;
		}
		if (err) {
			tx_rollback(c);
			return err;
		}
		sqlite3_exec(c->db, "RELEASE journal", NULL, NULL, NULL);
	}
	return 0;
}

int tx_begin(struct conn *c)
{
	return tx_begin_journal(c, 1);
}

int tx_begin_settled(struct conn *c)
{
	/* Another process's records: it cannot know which bear on us. */
	return tx_begin_journal(c, !c->st->j.appender);
}

int rtx_begin(struct conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		return 0;
	return run_simple(c, ST_BEGIN_READ) == 0;
}

void rtx_end(struct conn *c, int began)
{
	if (began && !sqlite3_get_autocommit(c->db))
		run_simple(c, ST_COMMIT);
}

static void tx_unlock(struct conn *c)
{
	if (c->writing) {
		c->writing = 0;
		pthread_mutex_unlock(&c->st->write_lock);
	}
}

void conn_placed(struct store *st)
{
	struct conn *c = pthread_getspecific(st->key);

	if (c)
		c->placed = 1;
	else
		atomic_store(&st->garbage, 1);
}

/* The end of a transaction: a new blob it linked is named by a committed
 * row (@committed), or garbage that a later open must collect. */
static void tx_placed(struct conn *c, int committed)
{
	if (c->placed && !committed)
		atomic_store(&c->st->garbage, 1);
	c->placed = 0;
}

int tx_commit(struct store *st, struct conn *c)
{
	int err = run_simple(c, ST_COMMIT);

	if (!err) {
		atomic_fetch_add(&st->generation, 1);
		if (c->j_moved)
			journal_committed(st, c);
	} else if (!sqlite3_get_autocommit(c->db)) {
		/* A COMMIT that failed leaves the transaction open. */
		run_simple(c, ST_ROLLBACK);
	}
	c->j_moved = 0;
	tx_placed(c, !err);
	tx_unlock(c);
	return err;
}

void tx_rollback(struct conn *c)
{
	/* A failed COMMIT may have rolled back already. */
	if (!sqlite3_get_autocommit(c->db))
		run_simple(c, ST_ROLLBACK);
	c->j_moved = 0;
	tx_placed(c, 0);
	tx_unlock(c);
}

/* The VFS of our connections: walvfs.c's (one write per commit) when it
 * could be registered by sqlite_setup(), else SQLite's default. */
static const char *conn_vfs;

/* ---- checkpoints ---------------------------------------------------- */

/*
 * A commit appends its pages to the WAL; a checkpoint copies them back
 * into catalog.db and fsyncs both files, tens of milliseconds on a small
 * disk.  SQLite's automatic checkpoint runs it in the commit that crossed
 * the threshold, so one close(2) in every few hundred waited for it (the
 * mean FLUSH of a `cp -r` was twice its median).  Here that commit only
 * wakes the store's checkpointer thread, started on first need and joined
 * by store_close(), which runs a PASSIVE checkpoint on its own connection
 * while writers go on.  Should the WAL still grow past CKPT_INLINE pages
 * (the checkpointer cannot finish while readers hold old snapshots, or
 * cannot be started, or the machine's load keeps it from running; on a
 * small disk, 1.25 times the RESTART bound below), the committing thread
 * runs a RESTART checkpoint itself, waiting CKPT_WAIT_MS at most for the
 * readers: the writer that follows such a pass, which copied every
 * frame, starts the WAL over.  Durability is
 * unchanged: a commit is not fsynced either way (synchronous = NORMAL);
 * store_sync() is what makes it durable.
 *
 * A PASSIVE checkpoint copies what was committed when it began; the WAL
 * starts over from its beginning only at a write transaction that began
 * once every frame was copied.  Under a steady stream of commits (a
 * `cp -r` of a large tree) that moment seldom comes, since the next
 * commit begins while a pass runs, so the WAL grows while the stream
 * lasts.  A RESTART checkpoint would start it over, but it holds writers
 * back while it syncs both files, and under the stream's own writeback
 * an fsync can take seconds (tried: `cp -r` took 16 s instead of 4).  So
 * passes run while commits come, each after CKPT_STEP more pages (not
 * after every commit past CKPT_PAGES: 679 passes and 0.65 s of work in a
 * 10,000-file create), and once no commit has come for CKPT_IDLE_MS the
 * checkpointer runs a TRUNCATE checkpoint, which starts the WAL over and
 * gives its disk space back.  That one waits for readers of old
 * snapshots at most CKPT_WAIT_MS, and a writer that comes meanwhile
 * waits for its sync.  A burst that does not stop (rsync of millions of
 * files, about 37 KB of WAL each) would fill the disk with WAL, so a pass
 * that leaves CKPT_RESTART pages or more is followed by a RESTART, which
 * holds writers back for its sync: once per GiB of WAL, some 28,000
 * files.  (At 128 MiB that cost `cp -r` of /usr/include a second in two
 * such waits.)  REPLICAFS_TEST_WAL_RESTART_PAGES sets it for tests.
 *
 * On a small file system these bounds are smaller (ckpt_bounds()): the
 * WAL may take 1/32 of it, at least 4 MiB.  A 64 MiB store that a long
 * rsync filled had 34 MB of it in the WAL, and the checkpoint that would
 * have given them back needed room in catalog.db that it no longer had.
 * Should a checkpoint still fail for want of room, the checkpointer tries
 * again every CKPT_FULL_MS, so that once others free room (rm-version)
 * the WAL's is given back without an unmount.  (It leaves the reserve
 * below alone: writers that fail for want of room would take it.)
 */
#define CKPT_PAGES 4000		/* 16 MiB of WAL at 4 KiB pages */
#define CKPT_RESTART (64 * CKPT_PAGES)
#define CKPT_IDLE_MS 100
#define CKPT_FULL_MS 1000
#define CKPT_WAIT_MS 20
#define CKPT_INLINE (16 * CKPT_PAGES)
#define CKPT_MIN_BYTES (4LL << 20)
/* How long a connection waits for another's lock before SQLITE_BUSY. */
#define CONN_BUSY_MS 10000

/* Set st->ckpt_start, ckpt_step, ckpt_restart and ckpt_inline for the
 * file system of @st: the WAL's pages at which passes start, between
 * passes, at which a pass is followed by a RESTART, and at which the
 * committing thread checkpoints itself. */
static void ckpt_bounds(struct store *st)
{
	const char *e = getenv("REPLICAFS_TEST_WAL_RESTART_PAGES");
	long long bytes = (long long)CKPT_RESTART * 4096;
	struct statvfs v;
	char *end;
	long n;

	if (!statvfs(st->dir, &v)) {
		bytes = (long long)(v.f_blocks / 32) * (long long)v.f_frsize;
		if (bytes < CKPT_MIN_BYTES)
			bytes = CKPT_MIN_BYTES;
	}
	st->ckpt_restart = bytes / 4096 < CKPT_RESTART ? (int)(bytes / 4096)
						       : CKPT_RESTART;
	if (e) {	/* read at each open: tests set it */
		n = strtol(e, &end, 10);
		if (*e && !*end && n > 0 && n < st->ckpt_restart)
			st->ckpt_restart = (int)n;
	}
	st->ckpt_start = st->ckpt_restart / 2 < CKPT_PAGES
				 ? st->ckpt_restart / 2
				 : CKPT_PAGES;
	st->ckpt_step = st->ckpt_start / 4;
	/* On a small disk, not long after the RESTART that should have
	 * come: a checkpointer that the machine's load keeps from running
	 * let the WAL of a 64 MiB store grow to 24 MB. */
	st->ckpt_inline = st->ckpt_restart / 4 * 5 < CKPT_INLINE
				  ? st->ckpt_restart / 4 * 5
				  : CKPT_INLINE;
}

/* Whether SQLite's @rc says the disk is full. */
static int rc_full(int rc)
{
	return (rc & 0xff) == SQLITE_FULL;
}

int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *ckpt_main(void *arg)
{
	struct store *st = arg;
	struct timespec until;
	int pass, idle, truncate = 0, full = 0, wait_ms;
	struct conn *c;
	int rc, log;

	pthread_mutex_lock(&st->ckpt.lock);
	for (;;) {
		while (!st->ckpt_wanted && !st->ckpt.stop) {
			if (!truncate) {
				pthread_cond_wait(&st->ckpt.cv,
						  &st->ckpt.lock);
				continue;
			}
			wait_ms = full ? CKPT_FULL_MS : CKPT_IDLE_MS;
			deadline_ms(&until, wait_ms);
			if (pthread_cond_timedwait(&st->ckpt.cv,
						   &st->ckpt.lock, &until) &&
			    mono_ms() - atomic_load(&st->ckpt_commit_ms) >=
				    CKPT_IDLE_MS)
				break;
		}
		if (st->ckpt.stop) {
			/* A process that closes the store soon after its
			 * commits (a command) gives the WAL's room back
			 * now: another that keeps the store open (a mount)
			 * would copy it back only after its own commits. */
			pthread_mutex_unlock(&st->ckpt.lock);
			if (truncate && conn_get_settled(st, &c) == 0) {
				sqlite3_busy_timeout(c->db, CKPT_WAIT_MS);
				sqlite3_wal_checkpoint_v2(
					c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
					NULL, NULL);
			}
			pthread_mutex_lock(&st->ckpt.lock);
			break;
		}
		pass = st->ckpt_wanted;
		idle = !pass;
		st->ckpt_wanted = 0;
		pthread_mutex_unlock(&st->ckpt.lock);
		if (conn_get_settled(st, &c) == 0) {
			log = 0;
			sqlite3_busy_timeout(c->db, CKPT_WAIT_MS);
			rc = sqlite3_wal_checkpoint_v2(
				c->db, NULL,
				idle ? SQLITE_CHECKPOINT_TRUNCATE
				     : SQLITE_CHECKPOINT_PASSIVE,
				&log, NULL);
			if (pass && rc == SQLITE_OK &&
			    log >= st->ckpt_restart)
				rc = sqlite3_wal_checkpoint_v2(
					c->db, NULL, SQLITE_CHECKPOINT_RESTART,
					NULL, NULL);
			if (pass)
				atomic_store(&st->ckpt_pages, log);
			/* A full disk is said once, not every second. */
			if (rc != SQLITE_OK && rc != SQLITE_BUSY &&
			    !(full && rc_full(rc)))
				db_err(c, rc, "checkpoint");
			if (rc == SQLITE_OK && full)
				log_info("store: %s: the WAL is copied back "
					 "again", st->dir);
			full = rc_full(rc);
			/* After a pass, truncate once idle; after a
			 * truncate that readers kept from finishing, or
			 * that found no room, try again later. */
			truncate = pass || rc == SQLITE_BUSY || full;
		}
		pthread_mutex_lock(&st->ckpt.lock);
	}
	pthread_mutex_unlock(&st->ckpt.lock);
	return NULL;	/* conn_destructor() closes the connection */
}

/* Wake the checkpointer, starting it if need be: 0, or -1 when it
 * cannot run. */
static int ckpt_kick(struct store *st)
{
	int ret;

	pthread_mutex_lock(&st->ckpt.lock);
	ret = store_thread_start_locked(&st->ckpt, ckpt_main, st);
	if (ret == 0) {
		st->ckpt_wanted = 1;
		pthread_cond_signal(&st->ckpt.cv);
	}
	pthread_mutex_unlock(&st->ckpt.lock);
	return ret;
}

void store_thread_init(struct store_thread *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cv, NULL);
}

void store_thread_destroy(struct store_thread *t)
{
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cv);
}

int store_thread_start_locked(struct store_thread *t, void *(*fn)(void *),
			      void *arg)
{
	if (t->stop)
		return -1;
	if (t->running)
		return 0;
	if (pthread_create(&t->thread, NULL, fn, arg))
		return -1;
	t->running = 1;
	return 0;
}

void store_thread_stop(struct store_thread *t)
{
	int running;

	pthread_mutex_lock(&t->lock);
	t->stop = 1;
	running = t->running;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->lock);
	if (running)
		pthread_join(t->thread, NULL);
}

/* sqlite3_wal_hook(): called after each commit, with the write lock
 * released, with the number of pages in the WAL. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *st = arg;
	int last;

	atomic_store(&st->ckpt_commit_ms, mono_ms());
	if (pages < st->ckpt_start)
		return SQLITE_OK;
	last = atomic_load(&st->ckpt_pages);
	if (pages < st->ckpt_inline && pages >= last &&
	    pages - last < st->ckpt_step)
		return SQLITE_OK;	/* a pass ran a moment ago */
	if (pages >= st->ckpt_inline) {
		/* A RESTART, so that the next commit starts the WAL over: a
		 * PASSIVE one copies only what no reader may still want
		 * from the WAL, and under a stream of commits and reads
		 * (slowed down by a loaded machine) the WAL of a 64 MiB
		 * store still grew to 8.8 MB.  It waits for the readers,
		 * and holds writers back, CKPT_WAIT_MS at most; then it
		 * copies what it can, as a PASSIVE one.  While another
		 * connection checkpoints (the checkpointer's pass), SQLite
		 * says BUSY at once, without the busy handler: this writer
		 * then tries again until that is done, CKPT_WAIT_MS at most.
		 * Without that wait, requests served on two CPUs at once
		 * (fs/uring.c) found the checkpointer busy at every commit,
		 * and a 64 MiB store's WAL grew to 11.8 MB. */
		int64_t until = mono_ms() + CKPT_WAIT_MS;

		sqlite3_busy_timeout(db, CKPT_WAIT_MS);
		while (sqlite3_wal_checkpoint_v2(db, name,
						 SQLITE_CHECKPOINT_RESTART,
						 NULL, NULL) == SQLITE_BUSY &&
		       mono_ms() < until)
			usleep(1000);
		sqlite3_busy_timeout(db, CONN_BUSY_MS);
	} else if (ckpt_kick(st)) {
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
					  NULL, NULL);
	}
	return SQLITE_OK;
}

/* ---- connections ---------------------------------------------------- */

static void conn_free(struct conn *c)
{
	int i;

	if (!c)
		return;
	if (c->placed)	/* a blob placed, no transaction after it */
		atomic_store(&c->st->garbage, 1);
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(c->stmt[i]);
	for (i = 0; i < c->nsql_cache; i++)
		sqlite3_finalize(c->sql_cache[i].s);
	sqlite3_close(c->db);
	free(c);
}

/* Thread exit: the thread's connection leaves the store's list. */
static void conn_destructor(void *p)
{
	struct conn *c = p;
	struct store *st = c->st;

	pthread_mutex_lock(&st->conns_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		st->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&st->conns_lock);
	conn_free(c);
}

/* Set while conn_get() has this thread apply the journal: a conn_get()
 * on the way does not start it again. */
static __thread int journal_settled;

int conn_get(struct store *st, struct conn **out)
{
	/* A read in the appending process sees what it journaled; where
	 * that cannot be done now (a full disk: logged), what the catalog
	 * has. */
	if (!journal_settled && st->j.appender &&
	    atomic_load(&st->j.unapplied)) {
		journal_settled = 1;
		store_journal_settle(st, NULL, NULL);
		journal_settled = 0;
	}
	return conn_get_settled(st, out);
}

int conn_get_settled(struct store *st, struct conn **out)
{
	struct conn *c = pthread_getspecific(st->key);
	int rc, err = 0;

	if (c) {
		*out = c;
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->st = st;
	rc = sqlite3_open_v2(st->db_path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     conn_vfs);
	if (rc != SQLITE_OK) {
		err = db_err(c, rc, "open catalog");
		goto out;
	}
	sqlite3_busy_timeout(c->db, CONN_BUSY_MS);
	rc = sqlite3_exec(c->db,
			  "PRAGMA synchronous = NORMAL;"
			  "PRAGMA foreign_keys = ON;"
			  /* No mapping: a connection that sees another's
			   * commit unmaps the whole file (a TLB shootdown
			   * across the mount's threads) and faults it in
			   * again; pread from the page cache is cheaper. */
			  "PRAGMA mmap_size = 0;"
			  "PRAGMA cache_size = -8192;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		err = db_err(c, rc, "set up connection");
		goto out;
	}
	/* Replaces SQLite's automatic checkpoint (see ckpt_main()). */
	sqlite3_wal_hook(c->db, wal_hook, st);
	if (pthread_setspecific(st->key, c)) {
		err = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&st->conns_lock);
	c->next = st->conns;
	if (c->next)
		c->next->prev = c;
	st->conns = c;
	pthread_mutex_unlock(&st->conns_lock);
	*out = c;
	return 0;
out:
	conn_free(c);
	return err;
}

/* ---- schema --------------------------------------------------------- */

/* Version 0 (empty) to 1: the first schema. */
static const char schema_v1[] =
	"CREATE TABLE buckets("
	" id INTEGER PRIMARY KEY,"
	" name TEXT UNIQUE NOT NULL,"
	" versioning INT NOT NULL,"
	" mode INT, uid INT, gid INT,"
	" mtime_ns INT, ctime_ns INT, created_ns INT);"
	"CREATE TABLE objects("
	" id INTEGER PRIMARY KEY,"
	" bucket INT NOT NULL REFERENCES buckets,"
	" key TEXT NOT NULL,"
	/* versions.id of the newest version (data or delete marker) */
	" cur INT,"
	/* 1 when cur is not a delete marker */
	" live INT NOT NULL DEFAULT 0,"
	" UNIQUE(bucket, key));"
	"CREATE INDEX objects_live ON objects(bucket, key) WHERE live = 1;"
	"CREATE TABLE versions("
	/* order of writing = order of versions */
	" id INTEGER PRIMARY KEY,"
	" object INT NOT NULL REFERENCES objects,"
	" vid TEXT NOT NULL,"
	" kind INT NOT NULL,"
	/* hex; NULL for delete markers */
	" sha256 TEXT,"
	" size INT, mode INT, uid INT, gid INT,"
	" mtime_ns INT, ctime_ns INT, created_ns INT,"
	" link TEXT,"
	/* filled lazily, later */
	" md5 TEXT,"
	" UNIQUE(object, vid));"
	"CREATE INDEX versions_sha256 ON versions(sha256);"
	"CREATE INDEX versions_object ON versions(object, id);"
	"CREATE TABLE xattrs("
	" version INT NOT NULL REFERENCES versions ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" value BLOB,"
	" PRIMARY KEY(version, name)) WITHOUT ROWID;";

/* Version 1 to 2: replication.  Per bucket its configuration and the
 * targets compiled from it (buckets.repl counts them, so that a bucket
 * without rules costs nothing at commit); per version and destination a
 * queue row, which is also the replication status (0 PENDING, 1
 * COMPLETED, 2 FAILED); versions.replica marks what arrived by
 * replication. */
static const char schema_v2[] =
	"ALTER TABLE buckets ADD COLUMN repl INT NOT NULL DEFAULT 0;"
	"ALTER TABLE versions ADD COLUMN replica INT NOT NULL DEFAULT 0;"
	"CREATE TABLE repl_config("
	" bucket INTEGER PRIMARY KEY REFERENCES buckets,"
	" json TEXT NOT NULL,"
	" hook TEXT,"
	" set_ns INT NOT NULL);"
	"CREATE TABLE repl_targets("
	" id INTEGER PRIMARY KEY,"
	" bucket INT NOT NULL REFERENCES buckets,"
	" rule TEXT NOT NULL,"
	" priority INT NOT NULL,"
	" prefix TEXT NOT NULL,"
	/* "key=value" lines, or NULL */
	" tags TEXT,"
	" dest TEXT NOT NULL,"
	" delete_markers INT NOT NULL,"
	" threshold_ns INT NOT NULL);"
	"CREATE INDEX repl_targets_bucket ON repl_targets(bucket, priority);"
	"CREATE TABLE repl_queue("
	/* order of queueing = order of writing, per key */
	" id INTEGER PRIMARY KEY,"
	" version INT NOT NULL REFERENCES versions,"
	" object INT NOT NULL REFERENCES objects,"
	" dest TEXT NOT NULL,"
	" rule TEXT NOT NULL,"
	" status INT NOT NULL DEFAULT 0,"
	" attempts INT NOT NULL DEFAULT 0,"
	/* due time; a claim moves it to the lease's end */
	" next_ns INT NOT NULL DEFAULT 0,"
	/* pid of the process holding the lease, 0 for none */
	" owner INT NOT NULL DEFAULT 0,"
	" queued_ns INT NOT NULL,"
	" done_ns INT,"
	" error TEXT,"
	/* 1 once it was reported as past its rule's threshold */
	" late INT NOT NULL DEFAULT 0,"
	" job INT NOT NULL DEFAULT 0);"
	"CREATE INDEX repl_queue_due ON repl_queue(next_ns) WHERE status = 0;"
	"CREATE INDEX repl_queue_order ON repl_queue(object, dest, id) "
	" WHERE status = 0;"
	"CREATE INDEX repl_queue_version ON repl_queue(version);"
	"CREATE INDEX repl_queue_open ON repl_queue(dest) WHERE status != 1;";

/* Version 2 to 3: batch replication jobs.  A job's deliveries are queue
 * rows with its ID; what it could not send is kept as notes. */
static const char schema_v3[] =
	"CREATE TABLE repl_jobs("
	" id INTEGER PRIMARY KEY,"
	" bucket TEXT NOT NULL,"
	" description TEXT,"
	" report TEXT,"
	/* 0 active, 1 complete, 2 cancelled */
	" state INT NOT NULL DEFAULT 0,"
	" created_ns INT NOT NULL,"
	" done_ns INT);"
	"CREATE TABLE repl_job_notes("
	" id INTEGER PRIMARY KEY,"
	" job INT NOT NULL REFERENCES repl_jobs,"
	" bucket TEXT, key TEXT, vid TEXT, dest TEXT,"
	" outcome TEXT NOT NULL,"
	" error TEXT);"
	"CREATE INDEX repl_job_notes_job ON repl_job_notes(job, id);"
	"CREATE INDEX repl_queue_job ON repl_queue(job, status) WHERE job != 0;";

/* Version 3 to 4: the version of a key current at a time is one seek
 * (history.c), whatever the key's history after it. */
static const char schema_v4[] =
	"CREATE INDEX versions_time ON versions(object, created_ns);";

/* Version 4 to 5: the 512-byte blocks a version's content takes on disk
 * (st_blocks: a sparse file's holes take none); NULL where written before
 * it was kept. */
static const char schema_v5[] =
	"ALTER TABLE versions ADD COLUMN blocks INT;";

/* Version 5 to 6: inode numbers that outlive a mount.  Each object has
 * one (objects.ino), which a rename carries to the key it moves the
 * object to, and which a file created through a mount takes from the
 * mount (fs/inode.c), so that `tar -g`, git's index and `find -inum` see
 * the same file as the same inode after a remount.  New numbers come from
 * ino_next, never given twice; 1 is the mount's root, and numbers from
 * 2^60 up are the mount's own (store.h, STORE_INO_OWN). */
static const char schema_v6[] =
	"ALTER TABLE objects ADD COLUMN ino INT;"
	"UPDATE objects SET ino = id + 16;"
	"CREATE TABLE ino_next(n INT NOT NULL);"
	"INSERT INTO ino_next SELECT coalesce(max(id), 0) + 17 FROM objects;";

/* Version 6 to 7: the time of last access, as touch -a, cp -a and tar set
 * it; NULL: the mtime (rows from before, and what S3 wrote). */
static const char schema_v7[] =
	"ALTER TABLE versions ADD COLUMN atime_ns INT;"
	"ALTER TABLE buckets ADD COLUMN atime_ns INT;";

/* Version 7 to 8: a bucket's own xattrs (its ACLs, user.*), as the top
 * folder of a tree copied in with rsync -aAX or tar --acls has them. */
static const char schema_v8[] =
	"CREATE TABLE bucket_xattrs("
	" bucket INT NOT NULL REFERENCES buckets ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" value BLOB,"
	" PRIMARY KEY(bucket, name)) WITHOUT ROWID;";

/* Version 8 to 9: a bucket holds history from its oldest version, which
 * a replica may have from before the bucket was made (.at showed no
 * bucket there, object.c's bucket_since() keeps it from now on). */
static const char schema_v9[] =
	"UPDATE buckets SET created_ns = min(created_ns, coalesce("
	"(SELECT min(v.created_ns) FROM versions AS v "
	"JOIN objects AS o ON o.id = v.object WHERE o.bucket = buckets.id), "
	"created_ns));";

/* Version 9 to 10: the multipart uploads a destination started and has
 * not completed or aborted yet (store_repl_upload_note()), per
 * destination URL and key there: what a crash or a give-up left behind,
 * which is the destination's own to abort, as another client's upload of
 * the key is not. */
static const char schema_v10[] =
	"CREATE TABLE repl_uploads("
	" dest TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" upload_id TEXT NOT NULL,"
	" created_ns INT NOT NULL,"
	" PRIMARY KEY(dest, key, upload_id)) WITHOUT ROWID;";

/* Which records of STORE/journal are applied (journal.c): gen, the
 * generation of the file, and the offset in it up to which they are.
 * 64: just past the file's header. */
static const char schema_v11[] =
	"CREATE TABLE journal("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" gen INT NOT NULL,"
	" applied INT NOT NULL);"
	"INSERT INTO journal VALUES (1, 0, 64);";

/* Version 11 to 12: whether the store holds any POSIX ACL, for a mount
 * to decide whether to have the kernel enforce them (store_has_acls()),
 * without reading every xattr row: this index holds the ACL rows alone. */
static const char schema_v12[] =
	"CREATE INDEX xattrs_acl ON xattrs(name) WHERE name IN "
	"('system.posix_acl_access', 'system.posix_acl_default');";

/* migrations[i] takes the catalog from user_version i to i + 1. */
static const char *const migrations[SCHEMA_VERSION] = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
	schema_v6,
	schema_v7,
	schema_v8,
	schema_v9,
	schema_v10,
	schema_v11,
	schema_v12,
};

static int schema_migrate(struct store *st, struct conn *c)
{
	sqlite3_stmt *s = NULL;
	char sql[64];
	int rc, err, version, start;

	err = tx_begin(c);
	if (err)
		return err;
	rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		err = db_err(c, rc, "read user_version");
		goto out;
	}
	err = stmt_step(c, s, "read user_version");
	if (err < 0)
		goto out;
	version = sqlite3_column_int(s, 0);
	start = version;
	if (version > SCHEMA_VERSION) {
		log_err("store: %s: catalog schema %d is newer than %d, "
			"which this program knows",
			st->dir, version, SCHEMA_VERSION);
		err = -EPROTONOSUPPORT;
		goto out;
	}
	for (err = 0; version < SCHEMA_VERSION; version++) {
		rc = sqlite3_exec(c->db, migrations[version], NULL, NULL,
				  NULL);
		if (rc != SQLITE_OK) {
			err = db_err(c, rc, "migrate catalog");
			goto out;
		}
		if (start)	/* 0: a new catalog, not a migration */
			log_info("store: %s: catalog migrated to schema %d",
				 st->dir, version + 1);
	}
	if (version == start) {
		/* Nothing to write: a full disk must not keep a store from
		 * opening. */
		sqlite3_finalize(s);
		s = NULL;
		tx_rollback(c);
		return 0;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 SCHEMA_VERSION);
	rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		err = db_err(c, rc, "set user_version");
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	err = tx_commit(st, c);
out:
	sqlite3_finalize(s);
	if (err)
		tx_rollback(c);
	return err;
}

/* ---- open, close ---------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* With STORE_CREATE and no catalog: the directory must hold nothing but
 * what an interrupted creation leaves. */
static int dir_is_fresh(const char *dir)
{
	static const char *const ours[] = {
		".", "..", "blobs", "staging", "trash", "lock", "open",
		"catalog.db", "catalog.db-wal", "catalog.db-shm",
		"catalog.db-journal", "reserve",
	};
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t i;
	int fresh = 1;

	if (!d)
		return -errno;
	while (fresh && (de = readdir(d))) {
		for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
			if (!strcmp(de->d_name, ours[i]))
				break;
		if (i == sizeof(ours) / sizeof(ours[0]))
			fresh = 0;
	}
	closedir(d);
	return fresh;
}

/*
 * Markers of invariant 6.  The markers in DIR/open/ that no live process
 * holds: 1 when there was one (each is removed when @remove), 0 when
 * none, or a negative errno.
 */
static int markers_stale(struct store *st, int remove)
{
	char path[PATH_MAX];
	struct dirent *de;
	int fd, stale = 0, err = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/open", st->dir);
	d = opendir(path);
	if (!d && errno == ENOENT)
		return 0;
	if (!d) {	/* cannot tell: collect, to be safe */
		log_warn("store: %s: %s", path, strerror(errno));
		return 1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;	/* removed by its closing owner */
		if (!flock(fd, LOCK_EX | LOCK_NB)) {
			stale = 1;
			if (remove && unlinkat(dirfd(d), de->d_name, 0) &&
			    errno != ENOENT)
				err = -errno;
		}
		close(fd);
	}
	closedir(d);
	return err ? err : stale;
}

/* Make and lock this process's marker, durably, before any write. */
static int marker_make(struct store *st)
{
	char path[PATH_MAX];
	int dfd, err = 0;

	snprintf(path, sizeof(path), "%s/open", st->dir);
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/open/XXXXXX", st->dir);
	st->marker_fd = mkostemp(path, O_CLOEXEC);
	if (st->marker_fd < 0) {
		err = -errno;
		log_err("store: %s: cannot make a marker in open/: %s",
			st->dir, strerror(-err));
		return err;
	}
	st->marker = strdup(path);
	if (!st->marker || flock(st->marker_fd, LOCK_EX | LOCK_NB))
		err = st->marker ? -errno : -ENOMEM;
	snprintf(path, sizeof(path), "%s/open", st->dir);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!err && (dfd < 0 || fsync(dfd)))
		err = -errno;
	if (dfd >= 0)
		close(dfd);
	if (err) {
		log_err("store: %s: marker in open/: %s", st->dir,
			strerror(-err));
		if (st->marker)
			unlink(st->marker);
		free(st->marker);
		st->marker = NULL;
		close(st->marker_fd);
		st->marker_fd = -1;
	}
	return err;
}

/*
 * Before SQLite's first use: our VFS (walvfs.c), and no count of its
 * memory in use.  The count takes a mutex of the whole process around
 * every malloc() and free() of SQLite, so the threads of a mount or of
 * the replicator, each on its own connection, queued on it: a batch job
 * of 10,000 small files to a second store took 1.17 s of user CPU with
 * the count, 0.80 s without.
 */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
	int err;

	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);	/* before any other */
	err = walvfs_register();
	if (err)
		log_warn("store: SQLite VFS %s: %s; using the default",
			 WALVFS_NAME, strerror(-err));
	else
		conn_vfs = WALVFS_NAME;
}

/* Free @st, whose locks store_open() made and nothing holds. */
static void store_free(struct store *st)
{
	pthread_mutex_destroy(&st->conns_lock);
	pthread_mutex_destroy(&st->write_lock);
	pthread_mutex_destroy(&st->ino_mu);
	store_thread_destroy(&st->ckpt);
	store_thread_destroy(&st->pool);
	if (st->j.fd >= 0)
		close(st->j.fd);
	free(st->db_path);
	free(st->dir);
	free(st);
}

/* ---- the reserve ---------------------------------------------------- */

/*
 * A full disk must not lock the store up: removing versions, the way to
 * free space, is itself a transaction whose pages need room in the WAL,
 * and a checkpoint needs room in catalog.db.  Once writes had taken the
 * last byte, `rm-version` failed with ENOSPC, and so did every remount.
 * So STORE/reserve holds some room (1/256 of the file system, between
 * RESERVE_MIN and RESERVE_MAX) that only store_delete_version() gives
 * back, when it fails with ENOSPC, before it tries once more (and after
 * that, the WAL's room: store_room_retry()); the room a removal frees
 * then pays for the next.  The reserve is made again at
 * an open, or after a removal that used it, when the file system has room
 * for it twice over, so that it never takes the last of what was freed.
 */
#define RESERVE_NAME "reserve"
#define RESERVE_MIN (1LL << 20)
#define RESERVE_MAX (64LL << 20)

static long long reserve_size(const struct statvfs *v)
{
	long long want = (long long)(v->f_blocks / 256) * (long long)v->f_frsize;

	return want < RESERVE_MIN ? RESERVE_MIN :
	       want > RESERVE_MAX ? RESERVE_MAX : want;
}

void store_reserve_make(struct store *st)
{
	char path[PATH_MAX];
	struct statvfs v;
	struct stat sb;
	long long want;
	int fd, err;

	snprintf(path, sizeof(path), "%s/" RESERVE_NAME, st->dir);
	if (statvfs(st->dir, &v))
		return;
	want = reserve_size(&v);
	if (!stat(path, &sb) && sb.st_blocks * 512LL >= want)
		return;
	if ((long long)v.f_bavail * (long long)v.f_frsize < 2 * want)
		return;	/* made when there is room */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	err = posix_fallocate(fd, 0, (off_t)want);
	close(fd);
	if (err) {
		unlink(path);	/* a part of it would only mislead */
		log_warn("store: %s: cannot keep a reserve for a full disk: %s",
			 st->dir, strerror(err));
	}
}

/* Give the reserve back: 1 if there was one. */
static int reserve_use(struct store *st)
{
	char path[PATH_MAX];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/" RESERVE_NAME, st->dir);
	if (stat(path, &sb) || unlink(path))
		return 0;
	/* Once per store opened: an rm-version -r said it per version. */
	if (!atomic_exchange(&st->full_told, 1))
		log_warn("store: %s: the disk is full: gave back its reserve "
			 "of %lld KiB to remove versions", st->dir,
			 (long long)sb.st_blocks / 2);
	return 1;
}

/* Copy the WAL back and start it over, giving its room back: 1 if it
 * held something and now holds nothing. */
static int wal_reclaim(struct store *st)
{
	char path[PATH_MAX];
	struct stat sb;
	struct conn *c;
	int rc, tries = 0;

	snprintf(path, sizeof(path), "%s-wal", st->db_path);
	if (stat(path, &sb) || sb.st_size == 0 || conn_get(st, &c))
		return 0;
	/* Another process's checkpointer may be trying too (a mount's,
	 * every CKPT_FULL_MS while the disk is full): SQLITE_BUSY at once,
	 * with no busy handler. */
	while ((rc = sqlite3_wal_checkpoint_v2(c->db, NULL,
					       SQLITE_CHECKPOINT_TRUNCATE,
					       NULL, NULL)) == SQLITE_BUSY &&
	       ++tries < 40)
		usleep(50000);
	if (rc != SQLITE_OK) {
		db_err(c, rc, "checkpoint to make room");
		return 0;
	}
	if (!atomic_exchange(&st->wal_told, 1))
		log_warn("store: %s: the disk is full: the WAL's %lld KiB "
			 "given back to remove versions", st->dir,
			 (long long)sb.st_blocks / 2);
	return 1;
}

int store_room_retry(struct store *st, int err, int tries)
{
	if (err != -ENOSPC || tries > 2)
		return 0;
	if (wal_reclaim(st))
		return 1;
	/* The checkpoint that empties the WAL may need room in
	 * catalog.db: the reserve goes to it first.  Spent on the WAL's
	 * growth by the removals that came next, it left a store whose
	 * checkpoint could not run, and rm-version -r failed on a disk
	 * that another file had filled. */
	if (reserve_use(st)) {
		wal_reclaim(st);
		return 1;
	}
	return 0;
}

/*
 * The room a commit of an empty file needs, in the WAL, with a margin.
 * Below it a create fails with ENOSPC, rather than its close returning 0
 * and the commit at the release that follows failing (fs/ops.c).  With
 * more than ROOM_PLENTY free, the answer holds for ROOM_RECHECK_MS.
 */
#define ROOM_MIN (256LL << 10)
#define ROOM_PLENTY (64LL << 20)
#define ROOM_RECHECK_MS 100

/* Bytes free on the store's file system into *@room: 0, or -1. */
static int room_free(struct store *st, long long *room)
{
	struct statvfs v;

	if (statvfs(st->dir, &v))
		return -1;
	/* root writes into the blocks kept for root, as the daemon does */
	*room = (long long)(geteuid() == 0 ? v.f_bfree : v.f_bavail) *
		(long long)v.f_frsize;
	return 0;
}

int store_room_plenty(struct store *st)
{
	long long room;

	if (mono_ms() < atomic_load(&st->room_until_ms))
		return 1;
	return room_free(st, &room) == 0 && room >= ROOM_PLENTY;
}

int store_room_low(struct store *st)
{
	int64_t now = mono_ms();
	long long room;

	if (now < atomic_load(&st->room_until_ms) || room_free(st, &room))
		return 0;
	if (room >= ROOM_PLENTY)
		atomic_store(&st->room_until_ms, now + ROOM_RECHECK_MS);
	return room < ROOM_MIN;
}

/* Say why store @st cannot be opened: its catalog gave @err. */
static void store_open_refused(const struct store *st, int err)
{
	if (err == -EACCES)
		log_err("store: %s: permission denied: only its owner (or "
			"root) may open a store; other users see history in a "
			"mount's .versions and .at", st->dir);
	else if (err == -EROFS)
		log_err("store: %s is on a read-only file system: a store is "
			"opened for writing, to mount or to check it (copy it "
			"to a writable disk)", st->dir);
	else
		log_err("store: %s is not a store: %s", st->dir,
			strerror(-err));
}

int store_open(const char *dir, int flags, struct store **out)
{
	struct store *st;
	struct conn *c;
	struct stat sb;
	char *lock_path = NULL;
	int err, exclusive = 0, key_made = 0;

	*out = NULL;
	pthread_once(&sqlite_once, sqlite_setup);
	if ((flags & STORE_CREATE) && mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		log_err("store: mkdir %s: %s", dir, strerror(-err));
		return err;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->lock_fd = -1;
	st->marker_fd = -1;
	pthread_mutex_init(&st->conns_lock, NULL);
	pthread_mutex_init(&st->write_lock, NULL);
	journal_init(st);
	pthread_mutex_init(&st->ino_mu, NULL);
	store_thread_init(&st->ckpt);
	store_thread_init(&st->pool);
	st->dir = realpath(dir, NULL);
	if (!st->dir) {
		err = -errno;
		log_err("store: %s: %s", dir, strerror(-err));
		goto out;
	}
	st->db_path = path_join(st->dir, "catalog.db");
	lock_path = path_join(st->dir, "lock");
	ckpt_bounds(st);
	if (!st->db_path || !lock_path) {
		err = -ENOMEM;
		goto out;
	}
	if (pthread_key_create(&st->key, conn_destructor)) {
		err = -EAGAIN;
		goto out;
	}
	key_made = 1;
	/* The catalog is the owner's alone (0600): say so, before a
	 * directory below the store refuses another user in other words. */
	if (stat(st->db_path, &sb) == 0 && access(st->db_path, R_OK | W_OK)) {
		err = -errno;
		store_open_refused(st, err);
		goto out;
	}
	if (stat(st->db_path, &sb)) {
		if (errno != ENOENT || !(flags & STORE_CREATE)) {
			err = -errno;
			store_open_refused(st, err);
			goto out;
		}
		err = dir_is_fresh(st->dir);
		if (err <= 0) {
			if (!err)
				log_err("store: %s is not empty and not a "
					"store", st->dir);
			err = err ? err : -EEXIST;
			goto out;
		}
		/* An empty folder made a store is the owner's alone, as
		 * one made here: given a 1777 one (a fresh tmpfs), others
		 * could add files to the store, or block its catalog's
		 * WAL with a symlink of that name. */
		if (stat(st->dir, &sb) == 0 && (sb.st_mode & 07777) != 0700 &&
		    chmod(st->dir, 0700) == 0)
			log_info("store: %s: mode %04o, now 0700", st->dir,
				 (unsigned)(sb.st_mode & 07777));
		/* Made here, before SQLite makes it 0644: the catalog holds
		 * every key and attribute of every user of a mount, and its
		 * WAL and index take its mode.  (No SQLite handle of it is
		 * open yet in this process, so the close drops no lock.) */
		err = open(st->db_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			   0600);
		if (err < 0 && errno != EEXIST) {
			err = -errno;
			log_err("store: create %s: %s", st->db_path,
				strerror(-err));
			goto out;
		}
		if (err >= 0)
			close(err);
	}
	err = blob_dirs_init(st);
	if (err)
		goto out;

	st->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0) {
		err = -errno;
		log_err("store: open %s: %s", lock_path, strerror(-err));
		goto out;
	}
	if (!flock(st->lock_fd, LOCK_EX | LOCK_NB))
		exclusive = 1;
	else if (errno != EWOULDBLOCK) {
		err = -errno;
		log_err("store: flock %s: %s", lock_path, strerror(-err));
		goto out;
	} else if (flock(st->lock_fd, LOCK_SH)) {
		err = -errno;
		log_err("store: flock %s: %s", lock_path, strerror(-err));
		goto out;
	}

	err = conn_get(st, &c);
	if (err)
		goto out;
	if (sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL,
			 NULL) != SQLITE_OK) {
		err = db_err(c, sqlite3_errcode(c->db), "set WAL mode");
		goto out;
	}
	err = schema_migrate(st, c);
	if (err)
		goto out;
	if (exclusive) {
		/* A blob no row names is left only by a process that died
		 * with the store open (invariant 6). */
		err = markers_stale(st, 0);
		if (err >= 0)
			err = blob_gc(st, c, err > 0);
		if (!err)
			err = markers_stale(st, 1);
		if (err < 0)
			goto out;
		err = 0;
	}
	/* Without a marker (a full disk, say) the store still opens: the
	 * cost is that a crash of this process leaves its garbage to a
	 * later crash's collection, never a damaged store. */
	if (marker_make(st))
		log_warn("store: %s: opened without a marker in open/; if "
			 "this process dies, its unreferenced blobs stay until "
			 "the store is next collected", st->dir);
	store_reserve_make(st);
	/* After the marker: applying what a dead process left writes. */
	err = journal_open(st, c);
	if (err)
		goto out;
	if (exclusive) {
		/* Not atomic, but harmless: whoever gets the lock in the
		 * gap collects garbage before we write anything. */
		if (flock(st->lock_fd, LOCK_SH)) {
			err = -errno;
			log_err("store: flock %s: %s", lock_path,
				strerror(-err));
			goto out;
		}
	}
	*out = st;
out:
	free(lock_path);
	if (err && st) {
		if (!key_made) {
			store_free(st);
		} else {
			store_close(st);
		}
	}
	return err;
}

void store_close(struct store *st)
{
	struct conn *c, *next;

	if (!st)
		return;
	journal_close(st);
	store_thread_stop(&st->ckpt);	/* its connection goes with it */
	stage_pool_stop(st);
	pthread_mutex_lock(&st->conns_lock);
	c = st->conns;
	st->conns = NULL;
	pthread_mutex_unlock(&st->conns_lock);
	for (; c; c = next) {
		next = c->next;
		conn_free(c);
	}
	pthread_setspecific(st->key, NULL);
	pthread_key_delete(st->key);
	/* A clean close: the marker goes first, then its lock.  After a
	 * transaction that left a new blob unnamed, the marker stays, and
	 * the next exclusive open collects it (invariant 6). */
	if (st->marker && !atomic_load(&st->garbage))
		unlink(st->marker);
	else if (st->marker)
		log_info("store: %s: left garbage; the next open that has "
			 "the store alone collects it", st->dir);
	if (st->marker_fd >= 0)
		close(st->marker_fd);
	free(st->marker);
	if (st->lock_fd >= 0)
		close(st->lock_fd);	/* drops the flock() */
	store_free(st);
}

const char *store_path(const struct store *st)
{
	return st->dir;
}

uint64_t store_generation(struct store *st)
{
	sqlite3_stmt *s;
	struct conn *c;
	int64_t dv;

	if (conn_get(st, &c))
		goto out;
	s = stmt_get(c, ST_DATA_VERSION);
	if (!s)
		goto out;
	if (stmt_step(c, s, "data_version") == 1) {
		dv = sqlite3_column_int64(s, 0);
		/* Another connection (ours or another process's) committed
		 * since this one last looked. */
		if (dv != c->last_data_version) {
			c->last_data_version = dv;
			atomic_fetch_add(&st->generation, 1);
		}
	}
	stmt_done(s);
out:
	return atomic_load(&st->generation);
}

/* ---- check, sync ---------------------------------------------------- */

static int check_integrity(struct conn *c)
{
	sqlite3_stmt *s = stmt_get(c, ST_CHECK_INTEGRITY);
	const char *msg;
	int err, bad = 0;

	if (!s)
		return -EIO;
	while ((err = stmt_step(c, s, "integrity_check")) == 1) {
		msg = (const char *)sqlite3_column_text(s, 0);
		if (msg && !strcmp(msg, "ok"))
			continue;
		log_err("store: integrity_check: %s", msg ? msg : "?");
		bad = 1;
	}
	stmt_done(s);
	return err ? err : bad;
}

static int check_objects(struct conn *c)
{
	sqlite3_stmt *s = stmt_get(c, ST_CHECK_OBJECTS);
	int err, bad = 0;

	if (!s)
		return -EIO;
	while ((err = stmt_step(c, s, "check objects")) == 1) {
		log_err("store: object %lld (%s): current version is wrong",
			(long long)sqlite3_column_int64(s, 0),
			(const char *)sqlite3_column_text(s, 1));
		bad = 1;
	}
	stmt_done(s);
	return err ? err : bad;
}

static int check_blobs(struct store *st, struct conn *c, int deep)
{
	sqlite3_stmt *s = stmt_get(c, ST_CHECK_BLOBS);
	char path[PATH_MAX], last[65] = "", hex[65];
	const char *sha;
	struct stat sb;
	int err, bad = 0, fd, exists = 0;
	int64_t size = 0;

	if (!s)
		return -EIO;
	while ((err = stmt_step(c, s, "check blobs")) == 1) {
		sha = (const char *)sqlite3_column_text(s, 0);
		if (!sha || !sha_valid(sha)) {
			log_err("store: version %lld: bad sha256",
				(long long)sqlite3_column_int64(s, 2));
			bad = 1;
			continue;
		}
		if (strcmp(sha, last)) {
			snprintf(last, sizeof(last), "%s", sha);
			store_blob_path(st, sha, path, sizeof(path));
			exists = !stat(path, &sb);
			size = exists ? sb.st_size : -1;
			if (!exists) {
				log_err("store: blob %s is missing", sha);
				bad = 1;
			} else if (deep) {
				fd = open(path, O_RDONLY | O_CLOEXEC);
				if (fd < 0 || store_hash_fd(fd, hex) ||
				    strcmp(hex, sha)) {
					log_err("store: blob %s does not hash "
						"to its name", sha);
					bad = 1;
				}
				if (fd >= 0)
					close(fd);
			}
		}
		if (exists && sqlite3_column_int64(s, 1) != size) {
			log_err("store: version %lld: size %lld, blob %s has "
				"%lld bytes",
				(long long)sqlite3_column_int64(s, 2),
				(long long)sqlite3_column_int64(s, 1), sha,
				(long long)size);
			bad = 1;
		}
	}
	stmt_done(s);
	return err ? err : bad;
}

int store_check(struct store *st, int deep)
{
	struct conn *c;
	int err, bad = 0;

	err = conn_get(st, &c);
	if (err)
		return err;
	err = check_integrity(c);
	if (err < 0)
		return err;
	bad |= err;
	err = check_objects(c);
	if (err < 0)
		return err;
	bad |= err;
	err = check_blobs(st, c, deep);
	if (err < 0)
		return err;
	bad |= err;
	return bad ? -EIO : 0;
}

/* fsync a file of @c's database through SQLite's own handle of it (@op:
 * SQLITE_FCNTL_FILE_POINTER for catalog.db, SQLITE_FCNTL_JOURNAL_POINTER
 * for its WAL); a handle SQLite has not opened has nothing to sync. */
static int conn_sync(struct conn *c, int op, const char *what)
{
	sqlite3_file *f = NULL;
	int rc;

	rc = sqlite3_file_control(c->db, "main", op, &f);
	if (rc != SQLITE_OK || !f || !f->pMethods)
		return 0;
	rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	if (rc != SQLITE_OK) {
		log_err("store: fsync %s: %s", what, sqlite3_errstr(rc));
		return -EIO;
	}
	return 0;
}

/*
 * Never through open(2) and close(2) of catalog.db or its WAL: closing any
 * descriptor of a file drops every POSIX lock the process holds on it
 * (fcntl(2)), SQLite's SHARED lock among them, which SQLite would not
 * know.  The next process to close the store (`replicafs versions`, say)
 * would then get the EXCLUSIVE lock, take itself for the last user,
 * checkpoint and delete the WAL and its index while this process goes on
 * committing into the deleted files: lost at the next crash, and unseen
 * by any other process meanwhile.
 */
int store_sync(struct store *st)
{
	struct conn *c;
	int err, fd;

	err = store_journal_settle(st, NULL, NULL);
	if (err)
		return err;
	err = conn_get(st, &c);
	if (err)
		return err;
	/* A read opens the WAL, should this connection not have yet. */
	if (sqlite3_exec(c->db, "PRAGMA schema_version", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return db_err(c, sqlite3_errcode(c->db), "sync");
	err = conn_sync(c, SQLITE_FCNTL_JOURNAL_POINTER, "catalog.db-wal");
	if (!err)
		err = conn_sync(c, SQLITE_FCNTL_FILE_POINTER, "catalog.db");
	if (err)
		return err;
	fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd)) {
		err = -errno;
		log_err("store: fsync %s: %s", st->dir, strerror(-err));
	}
	if (fd >= 0)
		close(fd);
	return err;
}

/* ---- test hooks ----------------------------------------------------- */

int store_test_exec(struct store *st, const char *sql)
{
	struct conn *c;
	int err, rc;

	err = conn_get(st, &c);
	if (err)
		return err;
	rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_err(c, rc, sql);
	atomic_fetch_add(&st->generation, 1);
	return 0;
}
