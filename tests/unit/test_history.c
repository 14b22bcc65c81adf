/*
 * test_history.c - unit tests of the store's history (store/history.c):
 * keys that exist or existed once, the version current at a time, a
 * folder as it stood at a time and what listing it costs, restore as a new
 * version, undelete, removal of a delete marker, ETags.  Each test gets
 * its own store in a fresh temporary directory.
 */
#include "store/store.h"
#include "store/store_i.h"
#include "tests/unit/helpers.h"

#include <dirent.h>
#include <sqlite3.h>
#include <time.h>

static char dir[64];
static struct store *st;

static void setup(void)
{
	tmp_dir(dir);
	st = store_new(dir);
}

static void teardown(void)
{
	store_close(st);
	st = NULL;
	rm_rf(dir);
}

TestSuite(history, .init = setup, .fini = teardown, .timeout = 300);

#define EMPTY_SHA                                                             \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- helpers -------------------------------------------------------- */

struct entries {
	int n;
	char names[64][64];
	struct store_obj o[64];
};

static int lcb(void *arg, const char *name, const struct store_obj *o)
{
	struct entries *e = arg;

	if (e->n < 64) {
		snprintf(e->names[e->n], 64, "%s", name);
		e->o[e->n] = *o;
	}
	e->n++;
	return 0;
}

static struct entries list_all(const char *bucket, const char *prefix)
{
	struct entries e = { 0 };

	cr_assert_eq(store_list_all(st, bucket, prefix, lcb, &e), 0);
	return e;
}

static struct entries list_at(const char *bucket, const char *prefix,
			      int64_t t)
{
	struct entries e = { 0 };

	cr_assert_eq(store_list_at(st, bucket, prefix, t, lcb, &e), 0);
	return e;
}

/* The names of @e, space-separated, into a static buffer. */
static const char *names(const struct entries *e)
{
	static char buf[1024];
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < e->n && i < 64; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
					i ? " " : "", e->names[i]);
	return buf;
}

/* A time between two writes: the clock moves on before and after it. */
static int64_t moment(void)
{
	struct timespec ts = { 0, 2000000 };
	int64_t t;

	nanosleep(&ts, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	ts.tv_sec = 0;
	ts.tv_nsec = 2000000;
	nanosleep(&ts, NULL);
	return t;
}

/* The content of the blob of @o, into a static buffer. */
static const char *content(const struct store_obj *o)
{
	static char buf[256];

	read_blob(st, o->sha256, buf, sizeof(buf));
	return buf;
}

static int vcount_cb(void *arg, const struct store_obj *o)
{
	(void)o;
	++*(int *)arg;
	return 0;
}

static int stop_at_300(void *arg, const struct store_obj *o)
{
	(void)o;
	return ++*(int *)arg == 300 ? 7 : 0;
}

static int nversions(const char *bucket, const char *key)
{
	int n = 0;

	cr_assert_eq(store_versions(st, bucket, key, vcount_cb, &n), 0);
	return n;
}

/* One integer from the catalog, by SQL. */
static int64_t sql_int(const char *sql)
{
	char db[128];
	sqlite3 *h;
	sqlite3_stmt *s;
	int64_t v = -1;

	snprintf(db, sizeof(db), "%s/store/catalog.db", dir);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK,
		     "%s", sql);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* ---- schema --------------------------------------------------------- */

Test(history, schema_has_the_time_index)
{
	cr_expect_eq(sql_int("PRAGMA user_version"), 12);
	cr_expect_eq(sql_int("SELECT count(*) FROM sqlite_master WHERE "
			     "name = 'versions_time'"),
		     1);
	cr_expect_eq(store_check(st, 1), 0);
}

/* ---- every key that ever was ---------------------------------------- */

Test(history, list_all_shows_deleted_keys)
{
	struct store_obj o;
	struct entries e;
	struct store_put dp = { .kind = STORE_DIR, .fd = -1 };

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "a", "a1", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "b", "b1", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "b", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "d/x", "x1", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "d/x", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "d/y", "y1", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "e/f/g", "g1", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "e/f/g", NULL), 0);
	dp.meta = meta_of(0700);
	cr_assert_eq(store_put(st, "bkt", "m/", &dp, NULL, NULL), 0);

	/* The live listing knows only a, d and m. */
	e = list_all("bkt", "");
	cr_expect_str_eq(names(&e), "a b d e m");
	cr_expect_eq(e.o[0].kind, STORE_FILE);
	cr_expect_eq(e.o[1].kind, STORE_DELETE_MARKER);
	cr_expect_eq(e.o[2].kind, STORE_DIR);
	cr_expect_eq(e.o[3].kind, STORE_DIR);
	cr_expect_eq(e.o[4].kind, STORE_DIR);
	cr_expect(e.o[4].has_marker);
	cr_expect_eq(e.o[4].meta.mode, S_IFDIR | 0700);
	e = list_all("bkt", "d");
	cr_expect_str_eq(names(&e), "x y");
	cr_expect_eq(e.o[0].kind, STORE_DELETE_MARKER);
	cr_expect_eq(e.o[1].kind, STORE_FILE);
	e = list_all("bkt", "e");
	cr_expect_str_eq(names(&e), "f");
	e = list_all("bkt", "m");
	cr_expect_eq(e.n, 0, "a directory's own marker is not listed");
	cr_expect_eq(store_list_all(st, "nope", "", lcb, &e), -ENOENT);

	cr_assert_eq(store_lookup_all(st, "bkt", "b", &o), 0);
	cr_expect_eq(o.kind, STORE_DELETE_MARKER);
	cr_expect(o.is_latest);
	cr_assert_eq(store_lookup_all(st, "bkt", "e/f", &o), 0);
	cr_expect_eq(o.kind, STORE_DIR);
	cr_assert_eq(store_lookup_all(st, "bkt", "a", &o), 0);
	cr_expect_eq(o.kind, STORE_FILE);
	cr_expect_eq(store_lookup_all(st, "bkt", "zz", &o), -ENOENT);
	cr_expect_eq(store_lookup_all(st, "bkt", "e/f/g/h", &o), -ENOENT);
	cr_expect_eq(store_lookup(st, "bkt", "b", &o), -ENOENT);

	/* A key whose versions are all removed for good is gone. */
	cr_assert_eq(store_version_at(st, "bkt", "b", INT64_MAX, &o), 0);
	cr_assert_eq(store_delete_version(st, "bkt", "b", o.version_id), 0);
	cr_assert_eq(store_lookup(st, "bkt", "b", &o), 0);
	cr_assert_eq(store_delete_version(st, "bkt", "b", o.version_id), 0);
	e = list_all("bkt", "");
	cr_expect_str_eq(names(&e), "a d e m");
}

/* ---- the past ------------------------------------------------------- */

Test(history, versions_and_folders_at_a_time)
{
	struct store_obj o;
	struct entries e;
	int64_t t0, t1, t2, t3;

	t0 = moment();
	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "a", "a1", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "b", "b1", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "dir/x", "x1", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "keep/sub/z", "z1", NULL), 0);
	t1 = moment();
	cr_assert_eq(put_str(st, "bkt", "a", "a2", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "b", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "c", "c1", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "dir/x", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "dir2/y", "y1", NULL), 0);
	t2 = moment();
	cr_assert_eq(store_delete(st, "bkt", "a", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "b", "b2", NULL), 0);
	t3 = moment();

	cr_expect_eq(store_version_at(st, "bkt", "a", t0, &o), -ENOENT);
	cr_assert_eq(store_version_at(st, "bkt", "a", t1, &o), 0);
	cr_expect_str_eq(content(&o), "a1");
	cr_expect_not(o.is_latest);
	cr_assert_eq(store_version_at(st, "bkt", "a", t2, &o), 0);
	cr_expect_str_eq(content(&o), "a2");
	cr_assert_eq(store_version_at(st, "bkt", "a", t3, &o), 0);
	cr_expect_eq(o.kind, STORE_DELETE_MARKER);
	cr_expect(o.is_latest);
	cr_assert_eq(store_version_at(st, "bkt", "a", o.created_ns, &o), 0,
		     "a version written at exactly t is current at t");
	cr_expect_eq(o.kind, STORE_DELETE_MARKER);
	cr_expect_eq(store_version_at(st, "bkt", "never", t3, &o), -ENOENT);

	/* The bucket did not exist at t0. */
	cr_expect_eq(store_lookup_at(st, "bkt", "", t0, &o), -ENOENT);
	cr_assert_eq(store_lookup_at(st, "bkt", "", t1, &o), 0);
	cr_expect_eq(o.kind, STORE_DIR);
	cr_expect_eq(store_lookup_at(st, "bkt", "a", t0, &o), -ENOENT);

	e = list_at("bkt", "", t0);
	cr_expect_eq(e.n, 0);
	e = list_at("bkt", "", t1);
	cr_expect_str_eq(names(&e), "a b dir keep");
	cr_expect_str_eq(content(&e.o[0]), "a1");
	cr_expect_eq(e.o[2].kind, STORE_DIR);
	e = list_at("bkt", "", t2);
	cr_expect_str_eq(names(&e), "a c dir2 keep");
	cr_expect_str_eq(content(&e.o[0]), "a2");
	e = list_at("bkt", "", t3);
	cr_expect_str_eq(names(&e), "b c dir2 keep");
	cr_expect_str_eq(content(&e.o[0]), "b2");
	cr_expect(e.o[0].is_latest);
	e = list_at("bkt", "keep", t1);
	cr_expect_str_eq(names(&e), "sub");
	e = list_at("bkt", "keep/sub", t3);
	cr_expect_str_eq(names(&e), "z");
	e = list_at("bkt", "dir", t1);
	cr_expect_str_eq(names(&e), "x");
	e = list_at("bkt", "dir", t2);
	cr_expect_eq(e.n, 0);

	cr_assert_eq(store_lookup_at(st, "bkt", "b", t1, &o), 0);
	cr_expect_str_eq(content(&o), "b1");
	cr_expect_eq(store_lookup_at(st, "bkt", "b", t2, &o), -ENOENT);
	cr_assert_eq(store_lookup_at(st, "bkt", "dir", t1, &o), 0);
	cr_expect_eq(o.kind, STORE_DIR);
	cr_expect_eq(store_lookup_at(st, "bkt", "dir", t2, &o), -ENOENT);
	cr_expect_eq(store_lookup_at(st, "bkt", "dir2", t1, &o), -ENOENT);
	cr_assert_eq(store_lookup_at(st, "bkt", "keep/sub/z", t3, &o), 0);
	cr_expect_str_eq(content(&o), "z1");
}

Test(history, markers_and_links_at_a_time)
{
	struct store_put dp = { .kind = STORE_DIR, .fd = -1 };
	struct store_put lp = { .kind = STORE_SYMLINK, .fd = -1 };
	struct store_obj o;
	struct entries e;
	int64_t t1, t2;

	bucket_new(st, "bkt", STORE_ENABLED);
	dp.meta = meta_of(0711);
	dp.meta.mtime_ns = 12345;
	cr_assert_eq(store_put(st, "bkt", "empty/", &dp, NULL, NULL), 0);
	lp.meta = meta_of(0777);
	lp.link_target = "../target";
	cr_assert_eq(store_put(st, "bkt", "ln", &lp, NULL, NULL), 0);
	t1 = moment();
	cr_assert_eq(store_delete(st, "bkt", "empty/", NULL), 0);
	lp.link_target = "elsewhere";
	cr_assert_eq(store_put(st, "bkt", "ln", &lp, NULL, NULL), 0);
	t2 = moment();

	e = list_at("bkt", "", t1);
	cr_expect_str_eq(names(&e), "empty ln");
	cr_expect_eq(e.o[0].kind, STORE_DIR);
	cr_expect(e.o[0].has_marker);
	cr_expect_eq(e.o[0].meta.mode, S_IFDIR | 0711);
	cr_expect_eq(e.o[0].meta.mtime_ns, 12345);
	cr_expect_eq(e.o[1].kind, STORE_SYMLINK);
	cr_expect_str_eq(content(&e.o[1]), "../target");
	e = list_at("bkt", "", t2);
	cr_expect_str_eq(names(&e), "ln");
	cr_expect_str_eq(content(&e.o[0]), "elsewhere");
	cr_assert_eq(store_lookup_at(st, "bkt", "empty", t1, &o), 0);
	cr_expect(o.has_marker);
	cr_expect_eq(store_lookup_at(st, "bkt", "empty", t2, &o), -ENOENT);
}

/*
 * Listing a folder at a time costs in proportion to that folder: not to
 * the versions of its keys, nor to the rest of the bucket.
 */
Test(history, list_at_cost_is_per_entry)
{
	uint64_t before, rows;
	struct store_obj o;
	struct entries e;
	int64_t t0;

	bucket_new(st, "big", STORE_ENABLED);
	/* small/: 100 keys of 200 versions each, written at times
	 * 1000 * v + k; big/: 20,000 keys of one version. */
	cr_assert_eq(
		store_test_exec(st,
			"BEGIN;"
			"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
			" SELECT i + 1 FROM n WHERE i < 99) "
			"INSERT INTO objects(id, bucket, key, cur, live) "
			"SELECT 1000 + i, "
			" (SELECT id FROM buckets WHERE name = 'big'), "
			" printf('small/k%03d', i), "
			" 1000000 + 199 * 100 + i, 1 FROM n;"
			"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
			" SELECT i + 1 FROM n WHERE i < 199 * 100 + 99) "
			"INSERT INTO versions(id, object, vid, kind, sha256, "
			" size, mode, uid, gid, mtime_ns, ctime_ns, "
			" created_ns) "
			"SELECT 1000000 + i, 1000 + i % 100, "
			" printf('v%05d', i / 100), 1, '" EMPTY_SHA "', 0, "
			" 33188, 0, 0, 0, 0, 1000 * (i / 100) + i % 100 "
			"FROM n;"
			"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
			" SELECT i + 1 FROM n WHERE i < 19999) "
			"INSERT INTO objects(id, bucket, key, cur, live) "
			"SELECT 5000000 + i, "
			" (SELECT id FROM buckets WHERE name = 'big'), "
			" printf('big/k%05d', i), 5000000 + i, 1 FROM n;"
			"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
			" SELECT i + 1 FROM n WHERE i < 19999) "
			"INSERT INTO versions(id, object, vid, kind, sha256, "
			" size, mode, uid, gid, mtime_ns, ctime_ns, "
			" created_ns) "
			"SELECT 5000000 + i, 5000000 + i, 'null', 1, '"
			EMPTY_SHA "', 0, 33188, 0, 0, 0, 0, 0 FROM n;"
			"UPDATE buckets SET created_ns = 0;"
			"COMMIT;"),
		0);

	/* At version 57 of every key in small/. */
	t0 = 1000 * 57 + 99;
	before = store_test_rows_visited();
	e = list_at("big", "small", t0);
	rows = store_test_rows_visited() - before;
	cr_expect_eq(e.n, 100);
	cr_assert_eq(store_version_at(st, "big", "small/k042", t0, &o), 0);
	cr_expect_str_eq(o.version_id, "v00057");
	cr_expect_eq(e.o[42].created_ns, 1000 * 57 + 42);
	cr_expect_leq(rows, 2 * 100 + 2, "small/ at t read %llu rows",
		      (unsigned long long)rows);

	/* The top: two directories, each found alive at its first key. */
	before = store_test_rows_visited();
	e = list_at("big", "", t0);
	rows = store_test_rows_visited() - before;
	cr_expect_str_eq(names(&e), "big small");
	cr_expect_leq(rows, 10, "the top at t read %llu rows",
		      (unsigned long long)rows);

	/* Before anything in small/ was written: every key is looked at
	 * once, none of their versions. */
	before = store_test_rows_visited();
	e = list_at("big", "small", -1);
	rows = store_test_rows_visited() - before;
	cr_expect_eq(e.n, 0);
	cr_expect_leq(rows, 2 * 100 + 2, "small/ before it read %llu rows",
		      (unsigned long long)rows);

	/* Every key that ever was, in small/. */
	before = store_test_rows_visited();
	cr_assert_eq(store_list_all(st, "big", "small", lcb,
				    &(struct entries){ 0 }), 0);
	rows = store_test_rows_visited() - before;
	cr_expect_leq(rows, 100 + 1);

	before = store_test_rows_visited();
	cr_assert_eq(store_lookup_at(st, "big", "small/k099", t0, &o), 0);
	cr_expect_leq(store_test_rows_visited() - before, 2);
}

/* 10,000 versions of one key list in one seek each. */
Test(history, ten_thousand_versions)
{
	uint64_t before, rows;
	int64_t t;
	int n = 0;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(
		store_test_exec(st,
			"BEGIN;"
			"INSERT INTO objects(id, bucket, key, cur, live) "
			"VALUES (7, (SELECT id FROM buckets WHERE "
			" name = 'bkt'), 'hot', 10009999, 1);"
			"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
			" SELECT i + 1 FROM n WHERE i < 9999) "
			"INSERT INTO versions(id, object, vid, kind, sha256, "
			" size, mode, uid, gid, mtime_ns, ctime_ns, "
			" created_ns) "
			"SELECT 10000000 + i, 7, printf('v%05d', i), 1, '"
			EMPTY_SHA "', 0, 33188, 0, 0, i, i, i FROM n;"
			"COMMIT;"),
		0);
	t = mono_ms();
	before = store_test_rows_visited();
	cr_assert_eq(store_versions(st, "bkt", "hot", vcount_cb, &n), 0);
	rows = store_test_rows_visited() - before;
	t = mono_ms() - t;
	cr_expect_eq(n, 10000);
	cr_expect_leq(rows, 10000 + 1, "10,000 versions read %llu rows",
		      (unsigned long long)rows);
	printf("store_versions of 10,000 versions: %lld ms\n", (long long)t);
	cr_expect_leq(t, 5000, "10,000 versions listed in %lld ms",
		      (long long)t);
	cr_expect_eq(nversions("bkt", "hot"), 10000);
	n = 0;
	cr_expect_eq(store_versions(st, "bkt", "hot", stop_at_300, &n), 7,
		     "a callback's non-zero return stops the walk");
	cr_expect_eq(n, 300);
}

/* ---- restore, undelete ---------------------------------------------- */

Test(history, restore_is_a_new_version_sharing_the_blob)
{
	char v1[STORE_VID_MAX + 1], v2[STORE_VID_MAX + 1], m[STORE_VID_MAX + 1];
	char nv[STORE_VID_MAX + 1], buf[64];
	struct store_obj o, r;
	ssize_t len;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "one", v1), 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "k", "user.tag", "red", 3, 0),
		     0);
	cr_assert_eq(put_str(st, "bkt", "k", "two", v2), 0);
	cr_assert_eq(store_version_get(st, "bkt", "k", v1, &o), 0);

	cr_assert_eq(store_restore(st, "bkt", "k", v1, nv, &r), 0);
	cr_expect_str_neq(nv, v1);
	cr_expect_str_eq(r.version_id, nv);
	cr_expect_str_eq(r.sha256, o.sha256, "the same blob");
	cr_expect_eq(r.meta.mode, o.meta.mode);
	cr_expect_eq(r.meta.mtime_ns, o.meta.mtime_ns);
	cr_expect(r.is_latest);
	cr_expect_eq(nversions("bkt", "k"), 3);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_str_eq(o.version_id, nv);
	cr_expect_str_eq(content(&o), "one");
	len = store_xattr_get(st, "bkt", "k", "user.tag", buf, sizeof(buf));
	cr_assert_eq(len, 3, "the version's xattrs come along");
	cr_expect_eq(memcmp(buf, "red", 3), 0);
	cr_expect_eq(sql_int("SELECT count(DISTINCT sha256) FROM versions"), 2,
		     "no blob was made");

	cr_expect_eq(store_restore(st, "bkt", "k", "nope", NULL, NULL),
		     -ENOENT);
	cr_expect_eq(store_restore(st, "bkt", "never", v1, NULL, NULL),
		     -ENOENT);
	cr_assert_eq(store_delete(st, "bkt", "k", m), 0);
	cr_expect_eq(store_restore(st, "bkt", "k", m, NULL, NULL), -EINVAL);
	/* A deleted key comes back by restoring a version under it. */
	cr_assert_eq(store_restore(st, "bkt", "k", v2, NULL, NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_str_eq(content(&o), "two");
	cr_expect_eq(nversions("bkt", "k"), 5);
	cr_expect_eq(store_check(st, 1), 0);
}

Test(history, restore_in_a_suspended_bucket_and_of_a_link)
{
	struct store_put lp = { .kind = STORE_SYMLINK, .fd = -1 };
	char v1[STORE_VID_MAX + 1], nv[STORE_VID_MAX + 1], buf[64];
	struct store_obj o;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "one", v1), 0);
	cr_assert_eq(store_bucket_set_versioning(st, "bkt", STORE_SUSPENDED),
		     0);
	cr_assert_eq(put_str(st, "bkt", "k", "null-1", NULL), 0);
	cr_assert_eq(store_restore(st, "bkt", "k", v1, nv, NULL), 0);
	cr_expect_str_eq(nv, STORE_NULL_VID);
	cr_expect_eq(nversions("bkt", "k"), 2, "the null version replaced");
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_str_eq(content(&o), "one");
	/* Restoring the null version onto itself keeps its blob. */
	cr_assert_eq(store_restore(st, "bkt", "k", STORE_NULL_VID, nv, NULL),
		     0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_str_eq(content(&o), "one");
	cr_expect_eq(nversions("bkt", "k"), 2);

	cr_assert_eq(store_bucket_set_versioning(st, "bkt", STORE_ENABLED), 0);
	lp.meta = meta_of(0777);
	lp.link_target = "there";
	cr_assert_eq(store_put(st, "bkt", "ln", &lp, v1, NULL), 0);
	lp.link_target = "elsewhere";
	cr_assert_eq(store_put(st, "bkt", "ln", &lp, NULL, NULL), 0);
	cr_assert_eq(store_restore(st, "bkt", "ln", v1, NULL, NULL), 0);
	cr_assert_eq(store_readlink(st, "bkt", "ln", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "there");
	cr_expect_eq(store_check(st, 1), 0);
}

Test(history, undelete_and_marker_removal)
{
	char v1[STORE_VID_MAX + 1], m1[STORE_VID_MAX + 1];
	char m2[STORE_VID_MAX + 1], got[STORE_VID_MAX + 1];
	struct store_obj o;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_expect_eq(store_undelete(st, "bkt", "k", NULL), -ENOENT);
	cr_assert_eq(put_str(st, "bkt", "k", "one", v1), 0);
	cr_expect_eq(store_undelete(st, "bkt", "k", NULL), -EEXIST,
		     "a key that is not deleted");
	cr_assert_eq(store_delete(st, "bkt", "k", m1), 0);
	cr_expect_eq(store_lookup(st, "bkt", "k", &o), -ENOENT);
	cr_assert_eq(store_undelete(st, "bkt", "k", got), 0);
	cr_expect_str_eq(got, m1);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_str_eq(o.version_id, v1);
	cr_expect_eq(nversions("bkt", "k"), 1);

	/* Two markers: removing the older one changes nothing now. */
	cr_assert_eq(store_delete(st, "bkt", "k", m1), 0);
	cr_assert_eq(put_str(st, "bkt", "k", "two", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "k", m2), 0);
	cr_expect_eq(store_delete_marker(st, "bkt", "k", v1), -EPERM,
		     "a data version is not a delete marker");
	cr_expect_eq(store_delete_marker(st, "bkt", "k", "nope"), -ENOENT);
	cr_assert_eq(store_delete_marker(st, "bkt", "k", m1), 0);
	cr_expect_eq(store_lookup(st, "bkt", "k", &o), -ENOENT);
	cr_expect_eq(nversions("bkt", "k"), 3);
	cr_assert_eq(store_delete_marker(st, "bkt", "k", m2), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_str_eq(content(&o), "two");
	cr_expect_eq(store_check(st, 1), 0);
}

/* rm -rf of priv/notes/d.txt and its folders, priv/ private to its owner
 * (uid 1000, 0700): the marker of d.txt into @dm. */
static void rm_rf_priv(char *dm)
{
	cr_assert_eq(store_delete(st, "bkt", "priv/notes/d.txt", dm), 0);
	cr_assert_eq(store_delete(st, "bkt", "priv/notes/", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "priv/", NULL), 0);
}

static void expect_priv_back(const char *after)
{
	struct store_obj o;

	cr_assert_eq(store_lookup(st, "bkt", "priv/", &o), 0,
		     "priv/ after %s", after);
	cr_expect_eq(o.kind, STORE_DIR);
	cr_expect_eq(o.meta.mode & 07777, 0700, "priv/'s mode after %s",
		     after);
	cr_expect_eq(o.meta.uid, 1000);
	cr_expect_eq(store_lookup(st, "bkt", "priv/notes/", &o), 0);
}

Test(history, restore_and_marker_removal_bring_folders_back)
{
	struct store_put dp = { .kind = STORE_DIR, .fd = -1 };
	char v1[STORE_VID_MAX + 1], dm[STORE_VID_MAX + 1];
	struct store_obj o;

	bucket_new(st, "bkt", STORE_ENABLED);
	dp.meta = meta_of(S_IFDIR | 0700);
	cr_assert_eq(store_put(st, "bkt", "priv/", &dp, NULL, NULL), 0);
	dp.meta = meta_of(S_IFDIR | 0755);
	cr_assert_eq(store_put(st, "bkt", "priv/notes/", &dp, NULL, NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "priv/notes/d.txt", "v1", v1), 0);
	cr_assert_eq(put_str(st, "bkt", "priv/notes/d.txt", "v2", NULL), 0);

	rm_rf_priv(dm);
	cr_assert_eq(store_restore(st, "bkt", "priv/notes/d.txt", v1, NULL,
				   NULL), 0);
	expect_priv_back("a restore");

	rm_rf_priv(dm);
	cr_assert_eq(store_delete_marker(st, "bkt", "priv/notes/d.txt", dm),
		     0);
	expect_priv_back("the removal of its delete marker");
	cr_assert_eq(store_lookup(st, "bkt", "priv/notes/d.txt", &o), 0);
	cr_expect_str_eq(content(&o), "v1", "the restored version");

	/* Live again, a file may not take a folder's name. */
	cr_assert_eq(put_str(st, "bkt", "x", "file", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "x", dm), 0);
	dp.meta = meta_of(S_IFDIR | 0755);
	cr_assert_eq(store_put(st, "bkt", "x/", &dp, NULL, NULL), 0);
	cr_expect_eq(store_delete_marker(st, "bkt", "x", dm), -EISDIR);
	cr_expect_eq(nversions("bkt", "x"), 2, "the marker is still there");
	cr_expect_eq(store_check(st, 1), 0);
}

Test(history, restore_over_another_kind_keeps_the_version_mode)
{
	struct store_put lp = { .kind = STORE_SYMLINK, .fd = -1 };
	struct store_put fp = { .kind = STORE_FILE, .fd = -1 };
	char v1[STORE_VID_MAX + 1], l1[STORE_VID_MAX + 1];
	struct store_obj o;

	bucket_new(st, "bkt", STORE_ENABLED);
	fp.meta = meta_of(S_IFREG | 0600);
	cr_assert_eq(store_put(st, "bkt", "cfg", &fp, v1, NULL), 0);
	lp.meta = meta_of(S_IFLNK | 0777);
	lp.link_target = "cfg.bak";
	cr_assert_eq(store_put(st, "bkt", "cfg", &lp, l1, NULL), 0);
	cr_assert_eq(store_restore(st, "bkt", "cfg", v1, NULL, NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "cfg", &o), 0);
	cr_expect_eq(o.kind, STORE_FILE);
	cr_expect_eq(o.meta.mode & 07777, 0600,
		     "a symlink's 0777 went to the file restored over it");

	/* And a file's mode does not go to a symlink restored over it. */
	cr_assert_eq(store_set_meta(st, "bkt", "cfg",
				    &(struct store_meta){ .mode = 0640 },
				    STORE_SET_MODE), 0);
	cr_assert_eq(store_restore(st, "bkt", "cfg", l1, NULL, NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "cfg", &o), 0);
	cr_expect_eq(o.kind, STORE_SYMLINK);
	cr_expect_eq(o.meta.mode & 07777, 0777);

	/* Over a file, a file keeps the current mode (a chmod 600 stays). */
	cr_assert_eq(put_str(st, "bkt", "f", "one", v1), 0);
	cr_assert_eq(put_str(st, "bkt", "f", "two", NULL), 0);
	cr_assert_eq(store_set_meta(st, "bkt", "f",
				    &(struct store_meta){ .mode = 0600 },
				    STORE_SET_MODE), 0);
	cr_assert_eq(store_restore(st, "bkt", "f", v1, NULL, NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "f", &o), 0);
	cr_expect_eq(o.meta.mode & 07777, 0600);
	cr_expect_eq(store_check(st, 1), 0);
}

/* ---- ETag ----------------------------------------------------------- */

Test(history, etag_is_md5_kept_for_large_content)
{
	char v1[STORE_VID_MAX + 1], v2[STORE_VID_MAX + 1], m[STORE_VID_MAX + 1];
	char vb[STORE_VID_MAX + 1], md5[33], *big;
	size_t bsz = 1 << 20;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "hello", v1), 0);
	cr_assert_eq(put_str(st, "bkt", "k", "", v2), 0);
	cr_assert_eq(store_delete(st, "bkt", "k", m), 0);
	big = malloc(bsz + 1);
	cr_assert_not_null(big);
	memset(big, 'a', bsz);
	big[bsz] = '\0';
	cr_assert_eq(put_str(st, "bkt", "big", big, vb), 0);
	free(big);
	cr_expect_eq(sql_int("SELECT count(*) FROM versions "
			     "WHERE md5 IS NOT NULL"), 0);

	cr_assert_eq(store_version_etag(st, "bkt", "k", v1, md5), 0);
	cr_expect_str_eq(md5, "5d41402abc4b2a76b9719d911017c592");
	cr_assert_eq(store_version_etag(st, "bkt", "k", v1, md5), 0);
	cr_expect_str_eq(md5, "5d41402abc4b2a76b9719d911017c592");
	cr_assert_eq(store_version_etag(st, "bkt", "k", v2, md5), 0);
	cr_expect_str_eq(md5, "d41d8cd98f00b204e9800998ecf8427e");
	cr_expect_eq(sql_int("SELECT count(*) FROM versions "
			     "WHERE md5 IS NOT NULL"), 0,
		     "small content is hashed again, not kept");

	/* 1 MiB of 'a' (md5sum of it). */
	cr_assert_eq(store_version_etag(st, "bkt", "big", vb, md5), 0);
	cr_expect_str_eq(md5, "7202826a7791073fe2787f0c94603278");
	cr_expect_eq(sql_int("SELECT count(*) FROM versions WHERE md5 = "
			     "'7202826a7791073fe2787f0c94603278'"), 1,
		     "kept in versions.md5");
	cr_assert_eq(store_version_etag(st, "bkt", "big", vb, md5), 0);
	cr_expect_str_eq(md5, "7202826a7791073fe2787f0c94603278");

	cr_expect_eq(store_version_etag(st, "bkt", "k", m, md5), -ENODATA);
	cr_expect_eq(store_version_etag(st, "bkt", "k", "nope", md5), -ENOENT);
}
