/*
 * test_walvfs.c - the WAL write-combining VFS (store/walvfs.c).
 *
 * Each test works on a database in a fresh temporary directory, through
 * connections opened with the VFS and with SQLite's default one:
 *
 *   visible          commits of either kind of connection are seen by the
 *                    others and survive closing and reopening;
 *   rollback_spill   a transaction whose pages spilled to the WAL and was
 *                    rolled back leaves nothing that later overwrites
 *                    another connection's frames (invariant 3);
 *   large            a transaction larger than the buffer and the cache,
 *                    read back before and after its commit, and found by
 *                    WAL recovery in a copy of the files (its frame
 *                    headers rewritten at commit are in the file);
 *   checkpoint       many commits with a small autocheckpoint, WAL restarts
 *                    and wal_checkpoint(TRUNCATE);
 *   kill_writer      a child commits numbered rows (synchronous NORMAL or
 *                    FULL, with spills, rollbacks and checkpoints) and
 *                    reports each after COMMIT returned; SIGKILL at random
 *                    moments, then every reported row must be there, with
 *                    no gap (invariant 2);
 *   combines         a commit of five pages (ten xWrite calls) is one
 *                    write, and the WAL grows by all of them;
 *   disk_full        a WAL on a small tmpfs: a commit fails with
 *                    SQLITE_FULL and is not visible; the connection goes
 *                    on once there is room (skipped when mount(2) gives
 *                    EPERM, that is not as root).
 */
#include "store/walvfs.h"
#include "tests/unit/helpers.h"

#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>

/* The integers 1..N, as rows of a column named value. */
#define SERIES(n)                                                              \
	"(WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 "    \
	"FROM s WHERE value < " #n ") SELECT value FROM s)"

static char dir[64];
static char mnt[128];
static int mounted;

static void setup(void)
{
	cr_assert_eq(walvfs_register(), 0);
	cr_assert_eq(walvfs_register(), 0, "register is idempotent");
	tmp_dir(dir);
}

static void teardown(void)
{
	if (mounted)
		umount2(mnt, MNT_DETACH);
	mounted = 0;
	rm_rf(dir);
}

TestSuite(walvfs, .init = setup, .fini = teardown, .timeout = 240);

/* ---- helpers -------------------------------------------------------- */

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
}

/* Open @path with @vfs (NULL: the default), in WAL mode. */
static sqlite3 *db_open(const char *path, const char *vfs)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
				 vfs);

	cr_assert_eq(rc, SQLITE_OK, "open %s: %s", path, sqlite3_errstr(rc));
	sqlite3_busy_timeout(db, 10000);
	exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		 "PRAGMA mmap_size = 0");
	return db;
}

static void db_close(sqlite3 *db)
{
	cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

/* The integer in the first column of the first row of @sql. */
static sqlite3_int64 q1(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	sqlite3_int64 v;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	rc = sqlite3_step(s);
	cr_assert_eq(rc, SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void check_integrity(sqlite3 *db)
{
	sqlite3_stmt *s = NULL;
	const char *r;

	cr_assert_eq(
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s", sqlite3_errmsg(db));
	r = (const char *)sqlite3_column_text(s, 0);
	cr_assert_str_eq(r ? r : "(null)", "ok");
	sqlite3_finalize(s);
}

static off_t file_size(const char *path)
{
	struct stat sb;

	if (stat(path, &sb))
		return -1;
	return sb.st_size;
}

static void copy_file(const char *from, const char *to)
{
	static char buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	cr_assert_geq(in, 0, "%s: %s", from, strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(out, 0, "%s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, n), n);
	cr_assert_eq(n, 0);
	close(in);
	close(out);
}

static void db_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

/* ---- visible -------------------------------------------------------- */

Test(walvfs, visible)
{
	char path[128], sql[256];
	sqlite3 *c[3], *db;
	int i, j;

	db_path(path, sizeof(path), "v.db");
	c[0] = db_open(path, WALVFS_NAME);
	exec(c[0], "CREATE TABLE t(n INTEGER PRIMARY KEY, v TEXT);"
		   "CREATE INDEX tv ON t(v)");
	c[1] = db_open(path, NULL);
	c[2] = db_open(path, WALVFS_NAME);
	for (i = 0; i < 300; i++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t VALUES (%d, 'value %d')", i, i * 7);
		exec(c[i % 3], sql);
		for (j = 0; j < 3; j++) {
			cr_assert_eq(q1(c[j], "SELECT count(*) FROM t"), i + 1,
				     "connection %d after commit %d", j, i);
			snprintf(sql, sizeof(sql),
				 "SELECT n FROM t WHERE v = 'value %d'", i * 7);
			cr_assert_eq(q1(c[j], sql), i);
		}
	}
	check_integrity(c[1]);
	for (j = 0; j < 3; j++)
		db_close(c[j]);

	db = db_open(path, WALVFS_NAME);
	cr_assert_eq(q1(db, "SELECT count(*) FROM t"), 300);
	cr_assert_eq(q1(db, "SELECT sum(n) FROM t"), 299 * 300 / 2);
	check_integrity(db);
	db_close(db);
}

/* ---- rollback_spill ------------------------------------------------- */

Test(walvfs, rollback_spill)
{
	char path[128], sql[256];
	sqlite3 *a, *b;
	int i, rows = 0;

	db_path(path, sizeof(path), "r.db");
	a = db_open(path, WALVFS_NAME);
	b = db_open(path, WALVFS_NAME);
	exec(a, "PRAGMA cache_size = 8; PRAGMA wal_autocheckpoint = 0;"
		"CREATE TABLE t(n INTEGER PRIMARY KEY, b BLOB);"
		"CREATE TABLE big(x BLOB);"
		"INSERT INTO big SELECT randomblob(1500) FROM " SERIES(40));
	for (i = 0; i < 20; i++) {
		/* An empty WAL: b's next frames go where a's go now. */
		exec(b, "PRAGMA wal_checkpoint(TRUNCATE)");
		/* a's pages spill to the WAL.  The update reads big from
		 * the database file, not from the WAL, and leaves page 1
		 * alone, so no read of the WAL writes the buffer out, and
		 * the rollback reloads nothing: the spilled frames are
		 * still buffered when a releases the write lock. */
		exec(a,
		     i % 3 ? "BEGIN; UPDATE big SET x = randomblob(1500); "
			     "ROLLBACK"
			   : "BEGIN; INSERT INTO big SELECT "
			     "randomblob(1500) FROM " SERIES(150) "; ROLLBACK");
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t VALUES (%d, randomblob(3000 + %d))", i,
			 i);
		exec(b, sql);
		rows++;
		/* a reads the WAL: nothing of its own may land on b's. */
		cr_assert_eq(q1(a, "SELECT count(*) FROM t"), rows);
		cr_assert_eq(q1(a, "SELECT sum(length(b)) FROM t"),
			     rows * 3000 + rows * (rows - 1) / 2);
		cr_assert_eq(q1(b, "SELECT count(*) FROM big"), 40);
		check_integrity(b);
	}
	check_integrity(a);
	db_close(a);
	db_close(b);
}

/* ---- large ---------------------------------------------------------- */

Test(walvfs, large)
{
	char path[128], wal[140], cpath[128], cwal[140];
	sqlite3 *a, *b, *copy;
	const int rows = 4000;

	db_path(path, sizeof(path), "l.db");
	snprintf(wal, sizeof(wal), "%s-wal", path);
	a = db_open(path, WALVFS_NAME);
	/* 40 pages of cache: the transaction spills, and its pages are
	 * read back from the WAL; no checkpoint, so that the copy below
	 * must find the transaction in the WAL. */
	exec(a, "PRAGMA cache_size = 40; PRAGMA wal_autocheckpoint = 0;"
		"CREATE TABLE t(n INTEGER PRIMARY KEY, x INT, h BLOB, b BLOB);"
		"CREATE INDEX th ON t(h); CREATE INDEX tx ON t(x)");
	exec(a, "BEGIN");
	exec(a, "INSERT INTO t SELECT value, value, randomblob(16), "
		"randomblob(3000) FROM " SERIES(4000));
	cr_assert_gt(file_size(wal), 4 << 20, "the WAL is %lld bytes",
		     (long long)file_size(wal));
	cr_assert_eq(q1(a, "SELECT count(*) FROM t"), rows);
	cr_assert_eq(q1(a, "SELECT sum(length(b)) FROM t"), rows * 3000LL);
	/* Pages already in the WAL change again: SQLite writes over its
	 * frames and rewrites their checksums at commit. */
	exec(a, "UPDATE t SET x = x + 1");
	exec(a, "UPDATE t SET h = randomblob(16) WHERE n % 3 = 0");
	exec(a, "COMMIT");
	cr_assert_eq(q1(a, "SELECT sum(x) FROM t"),
		     (sqlite3_int64)rows * (rows + 1) / 2 + rows);

	b = db_open(path, NULL);
	cr_assert_eq(q1(b, "SELECT count(*) FROM t"), rows);
	cr_assert_eq(q1(b, "SELECT sum(length(b)) FROM t"), rows * 3000LL);
	cr_assert_eq(q1(b, "SELECT sum(x) FROM t"),
		     (sqlite3_int64)rows * (rows + 1) / 2 + rows);
	check_integrity(b);

	/* The files as a crash would leave them: recovery from the WAL. */
	db_path(cpath, sizeof(cpath), "copy.db");
	snprintf(cwal, sizeof(cwal), "%s-wal", cpath);
	copy_file(path, cpath);
	copy_file(wal, cwal);
	copy = db_open(cpath, NULL);
	cr_assert_eq(q1(copy, "SELECT count(*) FROM t"), rows);
	cr_assert_eq(q1(copy, "SELECT sum(x) FROM t"),
		     (sqlite3_int64)rows * (rows + 1) / 2 + rows);
	check_integrity(copy);
	db_close(copy);

	db_close(b);
	db_close(a);
	a = db_open(path, WALVFS_NAME);
	cr_assert_eq(q1(a, "SELECT count(*) FROM t"), rows);
	check_integrity(a);
	db_close(a);
}

/* ---- checkpoint ----------------------------------------------------- */

Test(walvfs, checkpoint)
{
	char path[128], wal[140], sql[256];
	sqlite3 *a, *b;
	off_t most = 0;
	int i;

	db_path(path, sizeof(path), "c.db");
	snprintf(wal, sizeof(wal), "%s-wal", path);
	a = db_open(path, WALVFS_NAME);
	exec(a, "PRAGMA wal_autocheckpoint = 20;"
		"CREATE TABLE t(n INTEGER PRIMARY KEY, v TEXT, b BLOB);"
		"CREATE INDEX tv ON t(v)");
	b = db_open(path, NULL);
	for (i = 0; i < 3000; i++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t VALUES (%d, 'v%d', randomblob(%d))", i,
			 i, 100 + i % 900);
		exec(a, sql);
		if (file_size(wal) > most)
			most = file_size(wal);
		if (i % 100 == 99)
			cr_assert_eq(q1(b, "SELECT count(*) FROM t"), i + 1);
		if (i % 500 == 499) {
			exec(i % 1000 == 499 ? a : b,
			     "PRAGMA wal_checkpoint(TRUNCATE)");
			cr_assert_eq(file_size(wal), 0);
		}
	}
	/* Restarted, not grown: 20 pages and a commit's worth. */
	cr_assert_lt(most, 64 * 4120, "WAL grew to %lld", (long long)most);
	cr_assert_eq(q1(a, "SELECT count(*) FROM t"), 3000);
	cr_assert_eq(q1(b, "SELECT sum(length(b)) FROM t"),
		     q1(a, "SELECT sum(100 + n % 900) FROM t"));
	check_integrity(a);
	db_close(b);
	db_close(a);

	a = db_open(path, WALVFS_NAME);
	cr_assert_eq(q1(a, "SELECT count(*) FROM t"), 3000);
	cr_assert_eq(q1(a, "SELECT count(*) FROM t WHERE v = 'v' || n"), 3000);
	check_integrity(a);
	db_close(a);
}

/* ---- kill_writer ---------------------------------------------------- */

static int wexec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
}

/*
 * Commit rows numbered from max(n) + 1 until killed, writing each number
 * to @fd once its COMMIT returned; now and then a transaction that
 * spills and is rolled back, or one that spills and commits.
 */
static void writer(const char *path, int fd, int round)
{
	char sql[256];
	sqlite3_stmt *s;
	sqlite3 *db;
	int n, i;

	CHECK(walvfs_register() == 0);
	CHECK(sqlite3_open_v2(path, &db,
			      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				  SQLITE_OPEN_NOMUTEX,
			      WALVFS_NAME) == SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	CHECK(wexec(db, "PRAGMA journal_mode = WAL; PRAGMA cache_size = 20;"
			"PRAGMA wal_autocheckpoint = 50"));
	CHECK(wexec(db, round % 2 ? "PRAGMA synchronous = FULL"
				  : "PRAGMA synchronous = NORMAL"));
	CHECK(wexec(db, "CREATE TABLE IF NOT EXISTS t(n INTEGER PRIMARY "
			"KEY, h BLOB, b BLOB);"
			"CREATE INDEX IF NOT EXISTS th ON t(h);"
			"CREATE TABLE IF NOT EXISTS f(x BLOB)"));
	CHECK(sqlite3_prepare_v2(db, "SELECT coalesce(max(n), -1) FROM t", -1,
				 &s, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(s) == SQLITE_ROW);
	n = sqlite3_column_int(s, 0) + 1;
	sqlite3_finalize(s);
	for (i = 0;; i++, n++) {
		if (i % 13 == 5)
			CHECK(wexec(db, "BEGIN; INSERT INTO f SELECT "
					"randomblob(2000) FROM " SERIES(
					    100) "; ROLLBACK"));
		CHECK(wexec(db, "BEGIN IMMEDIATE"));
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t VALUES (%d, randomblob(16), "
			 "randomblob(%d))",
			 n, 50 + (n * 37) % 3000);
		CHECK(wexec(db, sql));
		if (i % 17 == 3)
			CHECK(wexec(db, "DELETE FROM f; INSERT INTO f SELECT "
					"randomblob(1500) FROM " SERIES(60)));
		CHECK(wexec(db, "COMMIT"));
		CHECK(write(fd, &n, sizeof(n)) == sizeof(n));
	}
}

Test(walvfs, kill_writer)
{
	char path[128];
	int round, last = -1;

	db_path(path, sizeof(path), "k.db");
	srandom(time(NULL));
	for (round = 0; round < 16; round++) {
		struct timespec t0, t;
		int p[2], status, got = 0, n;
		long wait_ms = 30 + random() % 400;
		sqlite3 *db;
		pid_t pid;

		cr_assert_eq(pipe(p), 0);
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(p[0]);
			writer(path, p[1], round);
		}
		close(p[1]);
		/* Read the reports until the kill, so the pipe never fills. */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			struct pollfd pfd = {.fd = p[0], .events = POLLIN};
			long ms;

			clock_gettime(CLOCK_MONOTONIC, &t);
			ms = (t.tv_sec - t0.tv_sec) * 1000 +
			     (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (ms >= wait_ms)
				break;
			if (poll(&pfd, 1, wait_ms - ms) <= 0)
				continue;
			if (read(p[0], &n, sizeof(n)) != sizeof(n))
				break;
			cr_assert_eq(n, last + 1, "report %d after %d", n,
				     last);
			last = n;
			got++;
		}
		kill(pid, SIGKILL);
		while (read(p[0], &n, sizeof(n)) == sizeof(n)) {
			cr_assert_eq(n, last + 1);
			last = n;
			got++;
		}
		close(p[0]);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "the writer failed (status %#x)", status);

		/* Every reported commit is there, and nothing else is
		 * missing: the rows are 0..max with no gap. */
		db = db_open(path, round % 3 ? WALVFS_NAME : NULL);
		check_integrity(db);
		if (last >= 0) {
			cr_assert_geq(q1(db, "SELECT max(n) FROM t"), last,
				      "round %d: reported %d", round, last);
			cr_assert_eq(q1(db, "SELECT count(*) FROM t"),
				     q1(db, "SELECT max(n) FROM t") + 1);
			/* Rows committed after the last report count too. */
			last = (int)q1(db, "SELECT max(n) FROM t");
		}
		db_close(db);
		cr_log_info("round %d: %d commits reported in %ld ms", round,
			    got, wait_ms);
	}
	cr_assert_gt(last, 100, "the writer hardly ran");
}

/* ---- combines ------------------------------------------------------- */

Test(walvfs, combines)
{
	char path[128], wal[140], sql[256];
	unsigned long long w0, f0, w, f;
	sqlite3 *a, *b;
	off_t size0;
	int i, page;
	const int commits = 100;

	db_path(path, sizeof(path), "m.db");
	snprintf(wal, sizeof(wal), "%s-wal", path);
	a = db_open(path, WALVFS_NAME);
	exec(a, "PRAGMA wal_autocheckpoint = 0;"
		"CREATE TABLE t(n INTEGER PRIMARY KEY, a INT, b TEXT, c INT, "
		"d TEXT);"
		"CREATE INDEX ta ON t(a); CREATE INDEX tb ON t(b);"
		"CREATE INDEX tc ON t(c); CREATE INDEX td ON t(d)");
	page = (int)q1(a, "PRAGMA page_size");
	for (i = 0; i < 20; i++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t VALUES (%d, %d, 'b%d', %d, 'd%d')", i,
			 i * 31 % 101, i * 17, -i, i * 13);
		exec(a, sql);
	}
	b = db_open(path, NULL);

	w0 = walvfs_writes();
	f0 = walvfs_flushes();
	size0 = file_size(wal);
	for (i = 20; i < 20 + commits; i++) {
		snprintf(sql, sizeof(sql),
			 "BEGIN; INSERT INTO t VALUES (%d, %d, 'b%d', %d, "
			 "'d%d'); UPDATE t SET c = c + 1 WHERE n = %d; COMMIT",
			 i, i * 31 % 101, i * 17, -i, i * 13, i / 2);
		exec(a, sql);
	}
	w = walvfs_writes() - w0;
	f = walvfs_flushes() - f0;
	cr_log_info("%d commits: %llu writes asked, %llu made", commits, w, f);
	/* A leaf of each of the five b-trees: five frames, ten writes. */
	cr_assert_geq(w, (unsigned long long)commits * 2 * 5);
	cr_assert_eq(f, (unsigned long long)commits, "%llu writes", f);
	/* All the frames asked for are in the file. */
	cr_assert_eq(file_size(wal) - size0, (off_t)(w / 2) * (page + 24));
	cr_assert_eq(q1(b, "SELECT count(*) FROM t"), 20 + commits);
	check_integrity(b);
	db_close(b);
	db_close(a);
}

/* ---- disk_full ------------------------------------------------------ */

Test(walvfs, disk_full)
{
	char path[160], filler[160], sql[256];
	static char buf[65536];
	int i, fd, rc = SQLITE_OK, acked = 0;
	sqlite3 *a, *b;

	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	cr_assert_eq(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m")) {
		if (errno == EPERM)
			cr_skip_test("mount tmpfs: %s", strerror(errno));
		cr_assert_fail("mount tmpfs: %s", strerror(errno));
	}
	mounted = 1;
	/* Room to give back after the disk is full. */
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	for (i = 0; i < 8; i++)
		cr_assert_eq(write(fd, buf, sizeof(buf)), sizeof(buf));
	close(fd);

	snprintf(path, sizeof(path), "%s/f.db", mnt);
	a = db_open(path, WALVFS_NAME);
	exec(a, "PRAGMA wal_autocheckpoint = 0;"
		"CREATE TABLE t(n INTEGER PRIMARY KEY, h BLOB, b BLOB);"
		"CREATE INDEX th ON t(h)");
	for (i = 0; i < 2000; i++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t VALUES (%d, randomblob(16), "
			 "randomblob(3000))",
			 i);
		rc = sqlite3_exec(a, sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			break;
		acked++;
	}
	cr_assert_eq(rc & 0xff, SQLITE_FULL, "after %d commits: %s", acked,
		     sqlite3_errstr(rc));
	cr_assert_gt(acked, 10);
	cr_log_info("disk full after %d commits", acked);
	/* The failed commit is nowhere. */
	cr_assert_eq(q1(a, "SELECT count(*) FROM t"), acked);
	b = db_open(path, NULL);
	cr_assert_eq(q1(b, "SELECT count(*) FROM t"), acked);
	check_integrity(b);

	/* With room again, the same connection commits. */
	cr_assert_eq(unlink(filler), 0);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO t VALUES (%d, randomblob(16), randomblob(3000))",
		 acked);
	exec(a, sql);
	cr_assert_eq(q1(b, "SELECT count(*) FROM t"), acked + 1);
	cr_assert_eq(q1(a, "SELECT max(n) FROM t"), acked);
	check_integrity(a);
	db_close(b);
	db_close(a);

	a = db_open(path, WALVFS_NAME);
	cr_assert_eq(q1(a, "SELECT count(*) FROM t"), acked + 1);
	check_integrity(a);
	db_close(a);
}
