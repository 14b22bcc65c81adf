/*
 * test_store.c - unit tests of the store: names, buckets, S3's versioning
 * rules, listing and lookup, rename, xattrs, metadata, blobs and garbage
 * collection.  Each test gets its own store in a fresh temporary
 * directory, removed after it.
 */
#include "store/store.h"
#include "store/store_i.h"
#include "tests/unit/helpers.h"

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/xattr.h>

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

TestSuite(store, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers -------------------------------------------------------- */

struct vlist {
	int n;
	struct store_obj v[64];
};

static int vcb(void *arg, const struct store_obj *o)
{
	struct vlist *l = arg;

	if (l->n < 64)
		l->v[l->n] = *o;
	l->n++;
	return 0;
}

static struct vlist versions_of(const char *bucket, const char *key)
{
	struct vlist l = { 0 };
	int err = store_versions(st, bucket, key, vcb, &l);

	if (err == -ENOENT)
		l.n = -1;
	else
		cr_assert_eq(err, 0);
	return l;
}

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

static struct entries list(const char *bucket, const char *prefix,
			   const char *after)
{
	struct entries e = { 0 };

	cr_assert_eq(store_list(st, bucket, prefix, after, lcb, &e), 0);
	return e;
}

static int blob_files(void)
{
	char path[160];
	struct dirent *de;
	int n = 0, i;
	DIR *d;

	for (i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/store/blobs/%02x", dir, i);
		d = opendir(path);
		cr_assert_not_null(d);
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				n++;
		closedir(d);
	}
	return n;
}

static int blob_exists(const char *sha)
{
	char path[PATH_MAX];
	struct stat sb;

	store_blob_path(st, sha, path, sizeof(path));
	return !stat(path, &sb);
}

static void cur_is(const char *bucket, const char *key, const char *want)
{
	char buf[256];

	cr_assert_eq(read_cur(st, bucket, key, buf, sizeof(buf)), 0,
		     "no current %s", key);
	cr_assert_str_eq(buf, want);
}

#define EMPTY_SHA                                                             \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- names ---------------------------------------------------------- */

Test(store, bucket_names)
{
	static const char *const good[] = {
		"abc", "my-bucket", "my.bucket.1", "a1b", "123",
		"docexamplebucket1", "1.2.3", "1.2.3.4.5",
		"a23456789012345678901234567890123456789012345678901234567890123",
	};
	static const char *const bad[] = {
		"ab",		/* too short */
		"a234567890123456789012345678901234567890123456789012345678901234",
		"My-bucket",	/* uppercase */
		"my_bucket",	/* underscore */
		"-abc", "abc-",	/* dash at an end */
		".abc", "abc.",	/* dot at an end */
		"a..b",		/* two periods */
		"192.168.5.4",	/* IP-shaped */
		"xn--abc", "abc-s3alias", "sthree-abc", "abc--ol-s3",
		"amzn-s3-demo-abc", "abc.mrap", "abc--x-s3", "abc--table-s3",
		"", "a b c", "abc/d",
	};
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect_eq(store_bucket_name_check(good[i], NULL), 0, "%s",
			     good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		cr_expect_eq(store_bucket_name_check(bad[i], &why), -EINVAL,
			     "%s", bad[i]);
		cr_expect_not_null(why, "%s", bad[i]);
	}
	cr_expect_eq(store_bucket_name_check(NULL, NULL), -EINVAL);
}

Test(store, key_checks)
{
	char key[STORE_KEY_MAX + 2];

	memset(key, 'k', sizeof(key));
	key[STORE_KEY_MAX] = '\0';
	cr_expect_eq(store_key_check(key), 0);
	key[STORE_KEY_MAX] = 'k';
	key[STORE_KEY_MAX + 1] = '\0';
	cr_expect_eq(store_key_check(key), -ENAMETOOLONG);
	cr_expect_eq(store_key_check(""), -EINVAL);
	bucket_new(st, "bkt", STORE_ENABLED);
	cr_expect_eq(put_str(st, "bkt", key, "x", NULL), -ENAMETOOLONG);
	key[STORE_KEY_MAX] = '\0';
	cr_expect_eq(put_str(st, "bkt", key, "x", NULL), 0);
}

Test(store, version_ids)
{
	char a[STORE_VID_MAX + 1], b[STORE_VID_MAX + 1];
	size_t i;

	cr_assert_eq(vid_new(a), 0);
	usleep(1000);
	cr_assert_eq(vid_new(b), 0);
	cr_expect_eq(strlen(a), 26);
	for (i = 0; i < 26; i++)
		cr_expect(strchr("0123456789abcdefghjkmnpqrstvwxyz", a[i]));
	cr_expect_lt(strcmp(a, b), 0, "IDs sort by time: %s %s", a, b);
}

/* ---- schema, open --------------------------------------------------- */

static int64_t pragma(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	int64_t v = -1;

	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_type(s, 0) == SQLITE_TEXT ?
			    !strcmp((const char *)sqlite3_column_text(s, 0),
				    "wal") :
			    sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

Test(store, schema)
{
	char db[128];
	struct store *again;

	snprintf(db, sizeof(db), "%s/store/catalog.db", dir);
	cr_expect_eq(pragma(db, "PRAGMA user_version"), 12);
	cr_expect_eq(pragma(db, "PRAGMA journal_mode"), 1, "WAL");
	cr_expect_eq(pragma(db, "SELECT count(*) FROM sqlite_master WHERE "
				"name = 'objects_live'"),
		     1);
	/* Opening again (a second process would) works, shared. */
	cr_assert_eq(store_open(store_path(st), 0, &again), 0);
	store_close(again);
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, open_refuses)
{
	struct store *x;
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/none", dir);
	cr_expect_eq(store_open(path, 0, &x), -ENOENT);
	snprintf(path, sizeof(path), "%s/full", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/full/somefile", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	snprintf(path, sizeof(path), "%s/full", dir);
	cr_expect_eq(store_open(path, STORE_CREATE, &x), -EEXIST);
}

/* ---- buckets -------------------------------------------------------- */

static int bcb(void *arg, const char *name, const struct store_meta *m,
	       enum store_versioning v)
{
	char *out = arg;

	(void)m;
	(void)v;
	strncat(out, name, 200 - strlen(out) - 2);
	strncat(out, ",", 200 - strlen(out) - 2);
	return 0;
}

Test(store, buckets)
{
	struct store_meta m = meta_of(0750), got;
	enum store_versioning v;
	char names[200] = "";
	char vid[STORE_VID_MAX + 1];

	cr_expect_eq(store_bucket_create(st, "Bad", STORE_ENABLED, &m),
		     -EINVAL);
	bucket_new(st, "zeta", STORE_ENABLED);
	cr_assert_eq(store_bucket_create(st, "alpha", STORE_SUSPENDED, &m), 0);
	cr_expect_eq(store_bucket_create(st, "alpha", STORE_ENABLED, &m),
		     -EEXIST);
	cr_assert_eq(store_bucket_get(st, "alpha", &got, &v), 0);
	cr_expect_eq(v, STORE_SUSPENDED);
	cr_expect_eq(got.mode, S_IFDIR | 0750);
	cr_expect_eq(got.uid, 1000);
	cr_expect_eq(store_bucket_get(st, "nope", NULL, NULL), -ENOENT);
	cr_assert_eq(store_bucket_list(st, bcb, names), 0);
	cr_expect_str_eq(names, "alpha,zeta,");

	m.mode = 0700;
	m.mtime_ns = 42;
	cr_assert_eq(store_bucket_set_meta(st, "alpha", &m,
					   STORE_SET_MODE | STORE_SET_MTIME),
		     0);
	cr_assert_eq(store_bucket_get(st, "alpha", &got, NULL), 0);
	cr_expect_eq(got.mode, S_IFDIR | 0700);
	cr_expect_eq(got.mtime_ns, 42);

	/* Not empty while any version, delete markers included, remains. */
	cr_assert_eq(put_str(st, "zeta", "k", "data", vid), 0);
	cr_expect_eq(store_bucket_delete(st, "zeta"), -ENOTEMPTY);
	cr_assert_eq(store_delete(st, "zeta", "k", NULL), 0);
	cr_expect_eq(store_bucket_delete(st, "zeta"), -ENOTEMPTY);
	cr_assert_eq(store_delete_version(st, "zeta", "k", vid), 0);
	cr_expect_eq(store_bucket_delete(st, "zeta"), -ENOTEMPTY);
	struct vlist l = versions_of("zeta", "k");
	cr_assert_eq(l.n, 1);
	cr_assert_eq(store_delete_version(st, "zeta", "k", l.v[0].version_id),
		     0);
	cr_expect_eq(store_bucket_delete(st, "zeta"), 0);
	cr_expect_eq(store_bucket_delete(st, "zeta"), -ENOENT);
}

Test(store, versioning_transitions)
{
	enum store_versioning v;

	bucket_new(st, "plain", STORE_UNVERSIONED);
	cr_expect_eq(store_bucket_set_versioning(st, "plain",
						 STORE_UNVERSIONED),
		     0);
	cr_expect_eq(store_bucket_set_versioning(st, "plain", STORE_ENABLED),
		     0);
	cr_expect_eq(store_bucket_set_versioning(st, "plain",
						 STORE_SUSPENDED),
		     0);
	cr_expect_eq(store_bucket_set_versioning(st, "plain", STORE_ENABLED),
		     0);
	cr_expect_eq(store_bucket_set_versioning(st, "plain",
						 STORE_UNVERSIONED),
		     -EINVAL);
	cr_expect_eq(store_bucket_set_versioning(st, "plain", 7), -EINVAL);
	cr_assert_eq(store_bucket_get(st, "plain", NULL, &v), 0);
	cr_expect_eq(v, STORE_ENABLED);
	bucket_new(st, "susp", STORE_UNVERSIONED);
	cr_expect_eq(store_bucket_set_versioning(st, "susp", STORE_SUSPENDED),
		     0);
	cr_expect_eq(store_bucket_set_versioning(st, "susp",
						 STORE_UNVERSIONED),
		     -EINVAL);
	cr_expect_eq(store_bucket_set_versioning(st, "nope", STORE_ENABLED),
		     -ENOENT);
}

/* ---- versioning rules ----------------------------------------------- */

Test(store, enabled_put_and_delete)
{
	char v1[STORE_VID_MAX + 1], v2[STORE_VID_MAX + 1];
	char m[STORE_VID_MAX + 1];
	struct store_obj o;
	struct vlist l;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "one", v1), 0);
	cr_assert_eq(put_str(st, "bkt", "k", "two", v2), 0);
	cr_expect_eq(strlen(v1), 26);
	cr_expect_str_neq(v1, v2);
	cur_is("bkt", "k", "two");
	cr_assert_eq(store_delete(st, "bkt", "k", m), 0);
	cr_expect_eq(strlen(m), 26);
	cr_expect_eq(store_lookup(st, "bkt", "k", &o), -ENOENT);
	cr_expect_eq(store_delete(st, "bkt", "k", NULL), -ENOENT);

	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 3);
	cr_expect_eq(l.v[0].kind, STORE_DELETE_MARKER);
	cr_expect_str_eq(l.v[0].version_id, m);
	cr_expect(l.v[0].is_latest);
	cr_expect_str_eq(l.v[0].sha256, "");
	cr_expect_str_eq(l.v[1].version_id, v2);
	cr_expect_not(l.v[1].is_latest);
	cr_expect_str_eq(l.v[2].version_id, v1);
	cr_expect_eq(l.v[2].kind, STORE_FILE);
	cr_expect_eq(l.v[2].size, 3);

	/* The old data stays readable by version. */
	cr_assert_eq(store_version_get(st, "bkt", "k", v1, &o), 0);
	cr_expect_not(o.is_latest);
	char buf[16];
	read_blob(st, o.sha256, buf, sizeof(buf));
	cr_expect_str_eq(buf, "one");
	cr_expect_eq(store_version_get(st, "bkt", "k", "nope", &o), -ENOENT);
	cr_expect_eq(store_versions(st, "bkt", "never", vcb, &l), -ENOENT);

	/* PUT on a delete-marked key works as usual. */
	cr_assert_eq(put_str(st, "bkt", "k", "three", NULL), 0);
	cur_is("bkt", "k", "three");
	cr_expect_eq(versions_of("bkt", "k").n, 4);
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, undelete_and_delete_version)
{
	char v1[STORE_VID_MAX + 1], v2[STORE_VID_MAX + 1];
	char m[STORE_VID_MAX + 1];
	struct store_obj o;
	struct vlist l;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "one", v1), 0);
	cr_assert_eq(put_str(st, "bkt", "k", "two", v2), 0);
	cr_assert_eq(store_delete(st, "bkt", "k", m), 0);
	/* Deleting the current delete marker is an undelete. */
	cr_assert_eq(store_delete_version(st, "bkt", "k", m), 0);
	cur_is("bkt", "k", "two");
	/* A non-current version goes; the current stays. */
	cr_assert_eq(store_delete_version(st, "bkt", "k", v1), 0);
	cur_is("bkt", "k", "two");
	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 1);
	cr_expect(l.v[0].is_latest);
	/* The current one goes: the next newest becomes current. */
	cr_assert_eq(put_str(st, "bkt", "k", "three", NULL), 0);
	l = versions_of("bkt", "k");
	cr_assert_eq(store_delete_version(st, "bkt", "k", l.v[0].version_id),
		     0);
	cur_is("bkt", "k", "two");
	cr_expect_eq(store_delete_version(st, "bkt", "k", "nope"), -ENOENT);
	cr_assert_eq(store_delete_version(st, "bkt", "k", v2), 0);
	cr_expect_eq(store_lookup(st, "bkt", "k", &o), -ENOENT);
	cr_expect_eq(versions_of("bkt", "k").n, -1);
	cr_expect_eq(store_check(st, 1), 0);
}

/* PUT @data as @key, replacing version @old (store_put.replaces). */
static int put_replacing(const char *bucket, const char *key,
			 const char *data, const char *old, char *vid)
{
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	size_t len = strlen(data);
	int fd;

	p.meta = meta_of(0644);
	p.replaces = old;
	cr_assert_eq(store_stage_new(st, NULL, 0, &fd), 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	p.fd = fd;
	return store_put(st, bucket, key, &p, vid, NULL);
}

Test(store, put_replaces_the_empty_file_mknod_made)
{
	char e[STORE_VID_MAX + 1], v[STORE_VID_MAX + 1];
	char w[STORE_VID_MAX + 1];
	struct vlist l;

	bucket_new(st, "bkt", STORE_ENABLED);
	bucket_new(st, "sus", STORE_ENABLED);
	/* The empty current version goes with the put that names it. */
	cr_assert_eq(put_str(st, "bkt", "k", "", e), 0);
	cr_assert_eq(put_replacing("bkt", "k", "content", e, v), 0);
	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 1);
	cr_expect_str_eq(l.v[0].version_id, v);
	cur_is("bkt", "k", "content");
	/* Not a version with content, */
	cr_assert_eq(put_replacing("bkt", "k", "more", v, w), 0);
	cr_expect_eq(versions_of("bkt", "k").n, 2);
	/* nor an empty one that another version followed, */
	cr_assert_eq(put_str(st, "bkt", "j", "", e), 0);
	cr_assert_eq(put_str(st, "bkt", "j", "other", NULL), 0);
	cr_assert_eq(put_replacing("bkt", "j", "mine", e, NULL), 0);
	cr_expect_eq(versions_of("bkt", "j").n, 3);
	/* nor a delete marker's place, nor an unknown ID. */
	cr_assert_eq(put_str(st, "bkt", "d", "", e), 0);
	cr_assert_eq(store_delete(st, "bkt", "d", NULL), 0);
	cr_assert_eq(put_replacing("bkt", "d", "back", e, NULL), 0);
	cr_expect_eq(versions_of("bkt", "d").n, 3);
	cr_assert_eq(put_replacing("bkt", "n", "new", "nope", NULL), 0);
	cr_expect_eq(versions_of("bkt", "n").n, 1);
	/* Suspended: the null version is replaced as always. */
	cr_assert_eq(store_bucket_set_versioning(st, "sus", STORE_SUSPENDED),
		     0);
	cr_assert_eq(put_str(st, "sus", "k", "", e), 0);
	cr_assert_eq(put_replacing("sus", "k", "content", e, NULL), 0);
	l = versions_of("sus", "k");
	cr_assert_eq(l.n, 1);
	cr_expect_str_eq(l.v[0].version_id, STORE_NULL_VID);
	cur_is("sus", "k", "content");
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, suspended_rules)
{
	char v1[STORE_VID_MAX + 1], vid[STORE_VID_MAX + 1];
	struct store_obj o;
	struct vlist l;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "enabled", v1), 0);
	cr_assert_eq(store_bucket_set_versioning(st, "bkt", STORE_SUSPENDED),
		     0);
	cr_assert_eq(put_str(st, "bkt", "k", "null one", vid), 0);
	cr_expect_str_eq(vid, "null");
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	char sha1[65];
	memcpy(sha1, o.sha256, 65);
	cr_assert_eq(put_str(st, "bkt", "k", "null two", vid), 0);
	cr_expect_str_eq(vid, "null");
	cur_is("bkt", "k", "null two");
	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 2, "the null version was replaced");
	cr_expect_str_eq(l.v[0].version_id, "null");
	cr_expect_str_eq(l.v[1].version_id, v1);
	cr_expect_not(blob_exists(sha1), "replaced blob removed");

	/* DELETE makes a null marker replacing the null version. */
	cr_assert_eq(store_delete(st, "bkt", "k", vid), 0);
	cr_expect_str_eq(vid, "null");
	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 2);
	cr_expect_eq(l.v[0].kind, STORE_DELETE_MARKER);
	cr_expect_str_eq(l.v[0].version_id, "null");
	cr_expect_eq(store_lookup(st, "bkt", "k", &o), -ENOENT);

	/* PUT replaces the null marker and is newest. */
	cr_assert_eq(put_str(st, "bkt", "k", "back", vid), 0);
	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 2);
	cr_expect_eq(l.v[0].kind, STORE_FILE);
	cur_is("bkt", "k", "back");

	/* Re-enabled: new versions get IDs; the null one stays. */
	cr_assert_eq(store_bucket_set_versioning(st, "bkt", STORE_ENABLED), 0);
	cr_assert_eq(put_str(st, "bkt", "k", "again", vid), 0);
	cr_expect_str_neq(vid, "null");
	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 3);
	cr_expect_str_eq(l.v[1].version_id, "null");
	/* Suspended again: the null version, not current, is replaced and
	 * the new null version is the newest. */
	cr_assert_eq(store_bucket_set_versioning(st, "bkt", STORE_SUSPENDED),
		     0);
	cr_assert_eq(put_str(st, "bkt", "k", "last", vid), 0);
	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 3);
	cr_expect_str_eq(l.v[0].version_id, "null");
	cr_expect(l.v[0].is_latest);
	cur_is("bkt", "k", "last");
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, unversioned_rules)
{
	char vid[STORE_VID_MAX + 1] = "x";
	struct store_obj o;
	struct vlist l;
	char sha1[65];

	bucket_new(st, "bkt", STORE_UNVERSIONED);
	cr_assert_eq(put_str(st, "bkt", "k", "first", vid), 0);
	cr_expect_str_eq(vid, "null");
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	memcpy(sha1, o.sha256, 65);
	cr_assert_eq(put_str(st, "bkt", "k", "second", vid), 0);
	l = versions_of("bkt", "k");
	cr_assert_eq(l.n, 1);
	cr_expect_str_eq(l.v[0].version_id, "null");
	cr_expect_not(blob_exists(sha1));
	cur_is("bkt", "k", "second");
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_assert_eq(store_delete(st, "bkt", "k", vid), 0);
	cr_expect_str_eq(vid, "");
	cr_expect_eq(versions_of("bkt", "k").n, -1, "no versions left");
	cr_expect_not(blob_exists(o.sha256));
	cr_expect_eq(store_delete(st, "bkt", "k", NULL), -ENOENT);
	cr_expect_eq(store_bucket_delete(st, "bkt"), 0);
}

Test(store, blob_removal_and_dedup)
{
	char v1[STORE_VID_MAX + 1], v2[STORE_VID_MAX + 1];
	struct store_obj o;
	int before = blob_files();

	cr_expect_eq(before, 1, "only the empty blob");
	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k1", "same content", v1), 0);
	cr_assert_eq(put_str(st, "bkt", "k2", "same content", v2), 0);
	cr_expect_eq(blob_files(), 2, "one blob for two puts");
	cr_assert_eq(store_lookup(st, "bkt", "k1", &o), 0);
	cr_assert_eq(store_delete_version(st, "bkt", "k1", v1), 0);
	cr_expect(blob_exists(o.sha256), "still referenced by k2");
	cr_assert_eq(store_delete_version(st, "bkt", "k2", v2), 0);
	cr_expect_not(blob_exists(o.sha256), "no longer referenced");
	/* The empty blob is never removed. */
	cr_assert_eq(put_str(st, "bkt", "e", "", v1), 0);
	cr_assert_eq(store_delete_version(st, "bkt", "e", v1), 0);
	cr_expect(blob_exists(EMPTY_SHA));
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, put_checks_and_kinds)
{
	struct store_put p = { .kind = STORE_DIR, .fd = -1 };
	struct store_obj o;
	char buf[64];

	bucket_new(st, "bkt", STORE_ENABLED);
	p.meta = meta_of(0700);
	cr_expect_eq(store_put(st, "bkt", "d", &p, NULL, NULL), -EINVAL);
	cr_assert_eq(store_put(st, "bkt", "d/", &p, NULL, &o), 0);
	cr_expect_eq(o.meta.mode, S_IFDIR | 0700);
	p.kind = STORE_FILE;
	cr_expect_eq(store_put(st, "bkt", "f/", &p, NULL, NULL), -EINVAL);
	cr_expect_eq(store_put(st, "nope", "f", &p, NULL, NULL), -ENOENT);
	p.kind = STORE_SYMLINK;
	p.link_target = "../target/file";
	cr_assert_eq(store_put(st, "bkt", "d/link", &p, NULL, &o), 0);
	cr_expect_eq(o.size, strlen("../target/file"));
	cr_expect_eq(o.meta.mode & S_IFMT, S_IFLNK);
	cr_assert_eq(store_readlink(st, "bkt", "d/link", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "../target/file");
	cr_expect_eq(store_readlink(st, "bkt", "d/link", buf, 4),
		     -ENAMETOOLONG);
	read_blob(st, o.sha256, buf, sizeof(buf));
	cr_expect_str_eq(buf, "../target/file");
	cr_assert_eq(put_str(st, "bkt", "f", "file", NULL), 0);
	cr_expect_eq(store_readlink(st, "bkt", "f", buf, sizeof(buf)), -EINVAL);
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, put_with_known_sha_and_durable_and_seed)
{
	struct store_put p = { .kind = STORE_FILE };
	struct store_hash *h = store_hash_new();
	struct store_obj o;
	char sha[65], buf[64];
	int fd;

	store_hash_update(h, "hello ", 6);
	store_hash_update(h, "world", 5);
	store_hash_final(h, sha);
	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(store_stage_new(st, NULL, 0, &fd), 0);
	cr_assert_eq(write(fd, "hello world", 11), 11);
	p.fd = fd;
	p.sha256 = sha;
	p.durable = 1;
	p.meta = meta_of(0600);
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, &o), 0);
	cr_expect_str_eq(o.sha256, sha);
	cr_expect_eq(o.size, 11);
	/* A staging file seeded from the blob, truncated. */
	cr_assert_eq(store_stage_new(st, sha, 5, &fd), 0);
	cr_assert_eq(pread(fd, buf, sizeof(buf), 0), 5);
	cr_expect_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(pwrite(fd, "HELLO!", 6, 0), 6);
	p.fd = fd;
	p.sha256 = NULL;
	p.durable = 0;
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, &o), 0);
	cur_is("bkt", "k", "HELLO!");
	cr_assert_eq(store_stage_new(st, sha, 0, &fd), 0);
	store_stage_abort(st, fd);
	cr_expect_eq(store_stage_new(st, EMPTY_SHA "x", 0, &fd), -EINVAL);
	cr_expect_eq(store_check(st, 1), 0);
}

/* A whole copy of a large blob is checked on a thread: the staging file is
 * there at once, the check says whether the blob held what its name says,
 * and a check dropped unread frees itself. */
Test(store, large_seed_checked_on_a_thread)
{
	struct store_put p = { .kind = STORE_FILE };
	struct store_check *check;
	struct store_obj o;
	size_t size = 5 << 20, i;
	char path[PATH_MAX], *data, *back;
	int fd, bfd;

	data = malloc(size);
	back = malloc(size);
	cr_assert(data && back);
	for (i = 0; i < size; i++)
		data[i] = (char)(i * 7 + i / 4096);
	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(store_stage_mem(st, data, size, &fd), 0);
	p.fd = fd;
	p.meta = meta_of(0600);
	cr_assert_eq(store_put(st, "bkt", "big", &p, NULL, &o), 0);

	cr_assert_eq(store_stage_new_fd(st, o.sha256, -1, size, &fd, &check),
		     0);
	cr_assert_not_null(check, "a 5 MiB seed is checked on a thread");
	cr_assert_eq(pread(fd, back, size, 0), (ssize_t)size);
	cr_expect_eq(memcmp(back, data, size), 0);
	cr_expect_eq(store_check_wait(check), 0);
	store_stage_abort(st, fd);

	/* Shorter than the blob: not a whole copy, checked as before. */
	cr_assert_eq(store_stage_new_fd(st, o.sha256, -1, size - 1, &fd,
					&check), 0);
	cr_expect_null(check);
	store_stage_abort(st, fd);

	cr_assert_eq(store_stage_new_fd(st, o.sha256, -1, size, &fd, &check),
		     0);
	cr_assert_not_null(check);
	store_check_drop(check);
	store_stage_abort(st, fd);

	/* One byte changed on disk: the copy is made, its check fails. */
	store_blob_path(st, o.sha256, path, sizeof(path));
	cr_assert_eq(chmod(path, 0644), 0);
	bfd = open(path, O_WRONLY);
	cr_assert_geq(bfd, 0);
	cr_assert_eq(pwrite(bfd, "?", 1, size / 2), 1);
	close(bfd);
	cr_assert_eq(store_stage_new_fd(st, o.sha256, -1, size, &fd, &check),
		     0);
	cr_assert_not_null(check);
	cr_expect_eq(store_check_wait(check), -EIO);
	store_stage_abort(st, fd);
	/* Without a check to hand back, the open itself fails. */
	cr_expect_eq(store_stage_new_fd(st, o.sha256, -1, size, &fd, NULL),
		     -EIO);
	free(data);
	free(back);
}

/* A version keeps the blocks its content takes on disk, where a sparse
 * file's holes take none; a rename carries them; a row from before schema
 * 5 says -1. */
Test(store, blocks_of_sparse_content)
{
	struct store_put p = { .kind = STORE_FILE };
	struct store_obj o, r;
	char db[128];
	int fd;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(store_stage_new(st, NULL, 0, &fd), 0);
	cr_assert_eq(ftruncate(fd, 64 << 20), 0);
	cr_assert_eq(pwrite(fd, "data", 4, 32 << 20), 4);
	p.fd = fd;
	p.meta = meta_of(0644);
	cr_assert_eq(store_put(st, "bkt", "sparse", &p, NULL, &o), 0);
	cr_expect_eq(o.size, 64 << 20);
	cr_expect(o.blocks > 0 && o.blocks < 1024, "blocks: %lld",
		  (long long)o.blocks);
	cr_assert_eq(store_lookup(st, "bkt", "sparse", &r), 0);
	cr_expect_eq(r.blocks, o.blocks);
	cr_assert_eq(store_rename(st, "bkt", "sparse", "bkt", "moved", 0), 0);
	cr_assert_eq(store_lookup(st, "bkt", "moved", &r), 0);
	cr_expect_eq(r.blocks, o.blocks);
	snprintf(db, sizeof(db), "%s/store/catalog.db", dir);
	pragma(db, "UPDATE versions SET blocks = NULL");
	cr_assert_eq(store_lookup(st, "bkt", "moved", &r), 0);
	cr_expect_eq(r.blocks, -1);
	cr_expect_eq(store_check(st, 1), 0);
}

/* The descriptors this process has open. */
static int open_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A store with a staging pool: its files serve as any staging file, a
 * version made from each is right, and closing the store while the pool
 * is full or being filled leaves no descriptor behind. */
Test(store, staging_pool)
{
	struct store_put p = { .kind = STORE_FILE };
	char key[16], val[32];
	struct store *s2;
	int i, fd, before;

	bucket_new(st, "bkt", STORE_ENABLED);
	store_stage_pool(st, 4);
	for (i = 0; i < 40; i++) {
		cr_assert_eq(store_stage_new(st, NULL, 0, &fd), 0);
		snprintf(val, sizeof(val), "content %d", i);
		cr_assert_eq(write(fd, val, strlen(val)), (ssize_t)strlen(val));
		snprintf(key, sizeof(key), "k%d", i);
		p.fd = fd;
		p.meta = meta_of(0644);
		cr_assert_eq(store_put(st, "bkt", key, &p, NULL, NULL), 0);
		if (i % 10 == 0)
			usleep(20000);	/* let the pool fill up */
	}
	for (i = 0; i < 40; i += 13) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "content %d", i);
		cur_is("bkt", key, val);
	}
	cr_expect_eq(store_check(st, 1), 0);

	/* SQLite keeps the descriptors of a closed connection while another
	 * of this process holds locks on the file, and reuses them at the
	 * next open: count after one open and close without a pool. */
	cr_assert_eq(store_open(st->dir, 0, &s2), 0);
	store_close(s2);
	/* @st's checkpointer opens its connection when it first runs, up
	 * to CKPT_IDLE_MS after the last commit: not in the count. */
	usleep(300000);
	before = open_fds();
	cr_assert_eq(store_open(st->dir, 0, &s2), 0);
	store_stage_pool(s2, 8);
	usleep(50000);
	cr_assert_eq(store_stage_new(s2, NULL, 0, &fd), 0);
	store_stage_abort(s2, fd);
	store_close(s2);
	cr_expect_eq(open_fds(), before, "descriptors left by a pooled store");
}

/* A staging file given back (store_stage_recycle()) is taken again, empty,
 * once nothing else has it open; while another file is open on it, it
 * stays as it is, with what that file reads; a store closed with such a
 * file given back leaves no descriptor behind. */
Test(store, staging_recycle)
{
	char proc[64], buf[16];
	struct stat a, b;
	int fd, fd2, other;

	store_stage_pool(st, 2);
	usleep(50000);
	cr_assert_eq(store_stage_new(st, NULL, 0, &fd), 0);
	cr_assert_eq(write(fd, "first", 5), 5);
	cr_assert_eq(fstat(fd, &a), 0);
	store_stage_recycle(st, fd);
	cr_assert_eq(store_stage_new(st, NULL, 0, &fd), 0);
	cr_assert_eq(fstat(fd, &b), 0);
	cr_expect_eq(b.st_ino, a.st_ino, "the file given back is the next");
	cr_expect_eq(b.st_size, 0, "and it is empty");
	cr_expect_eq(lseek(fd, 0, SEEK_CUR), 0, "and written from its start");

	/* Held by another file open for writing (a writer's backing file,
	 * as the kernel keeps it for a moment after a RELEASE, or for as
	 * long as a mapping lasts): not emptied, not handed out.  The caller
	 * vouches for files open only for reading, which a lease does not
	 * see. */
	cr_assert_eq(write(fd, "second", 6), 6);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	other = open(proc, O_RDWR | O_CLOEXEC);
	cr_assert_geq(other, 0);
	store_stage_recycle(st, fd);
	cr_assert_eq(store_stage_new(st, NULL, 0, &fd2), 0);
	cr_assert_eq(fstat(fd2, &a), 0);
	cr_expect_neq(a.st_ino, b.st_ino, "a held file was handed out");
	cr_expect_eq(pread(other, buf, sizeof(buf), 0), 6);
	cr_expect_eq(memcmp(buf, "second", 6), 0, "a held file was emptied");
	store_stage_abort(st, fd2);
	close(other);
	/* Let go: the next take finds it. */
	cr_assert_eq(store_stage_new(st, NULL, 0, &fd2), 0);
	cr_assert_eq(fstat(fd2, &a), 0);
	cr_expect_eq(a.st_ino, b.st_ino, "the file let go was not taken");
	cr_expect_eq(a.st_size, 0);

	/* Given back held, then the store closed: it is closed too. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd2);
	other = open(proc, O_RDWR | O_CLOEXEC);
	cr_assert_geq(other, 0);
	store_stage_recycle(st, fd2);
	cr_expect_geq(fcntl(fd2, F_GETFD), 0, "kept while held");
	store_close(st);
	st = NULL;
	cr_expect_eq(fcntl(fd2, F_GETFD), -1, "left open by a closed store");
	close(other);
}

/* ---- lookup and listing --------------------------------------------- */

static void put_tree(void)
{
	static const char *const keys[] = {
		"a/b.txt", "a/b/c", "a/b-x", "a/c", "a/d/e", "z", "a/e!",
		"a/e/f/g", "top/x", "a/dead",
	};
	struct store_put p = { .kind = STORE_DIR, .fd = -1 };
	size_t i;

	bucket_new(st, "bkt", STORE_ENABLED);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		cr_assert_eq(put_str(st, "bkt", keys[i], keys[i], NULL), 0);
	p.meta = meta_of(0711);
	cr_assert_eq(store_put(st, "bkt", "a/", &p, NULL, NULL), 0);
	cr_assert_eq(store_put(st, "bkt", "a/d/", &p, NULL, NULL), 0);
	cr_assert_eq(store_put(st, "bkt", "empty/", &p, NULL, NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "a/dead", NULL), 0);
}

Test(store, lookup)
{
	struct store_meta bm;
	struct store_obj o;

	put_tree();
	cr_assert_eq(store_bucket_get(st, "bkt", &bm, NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "a/b.txt", &o), 0);
	cr_expect_eq(o.kind, STORE_FILE);
	cr_expect_eq(o.size, 7);
	cr_expect_eq(o.meta.mode, S_IFREG | 0644);
	cr_assert_eq(store_lookup(st, "bkt", "a/d", &o), 0);
	cr_expect_eq(o.kind, STORE_DIR);
	cr_expect(o.has_marker);
	cr_expect_eq(o.meta.mode, S_IFDIR | 0711);
	cr_assert_eq(store_lookup(st, "bkt", "a/b", &o), 0);
	cr_expect_eq(o.kind, STORE_DIR);
	cr_expect_not(o.has_marker);
	cr_expect_eq(o.meta.mode, S_IFDIR | 0755);
	cr_expect_eq(o.meta.uid, bm.uid);
	cr_expect_eq(o.meta.mtime_ns, bm.mtime_ns);
	cr_assert_eq(store_lookup(st, "bkt", "empty", &o), 0);
	cr_expect(o.has_marker);
	cr_expect_eq(store_lookup(st, "bkt", "a/dead", &o), -ENOENT);
	cr_expect_eq(store_lookup(st, "bkt", "a/x", &o), -ENOENT);
	cr_expect_eq(store_lookup(st, "bkt", "a/b.", &o), -ENOENT);
	cr_expect_eq(store_lookup(st, "bkt", "", &o), -EINVAL);
	cr_expect_eq(store_lookup(st, "nope", "a", &o), -ENOENT);
	cr_expect_eq(store_dir_has_children(st, "bkt", "a"), 1);
	cr_expect_eq(store_dir_has_children(st, "bkt", "empty"), 0);
	cr_expect_eq(store_dir_has_children(st, "bkt", ""), 1);
	cr_expect_eq(store_dir_has_children(st, "bkt", "a/d"), 1);
	cr_expect_eq(store_dir_has_children(st, "bkt", "nothing"), 0);
}

Test(store, list_names_in_order)
{
	/* S3's order: keys bytewise, so "b-x" and "b.txt" come before the
	 * prefix "b/", and "e!" before "e/". */
	static const char *const want[] = {
		"b-x", "b.txt", "b", "c", "d", "e!", "e",
	};
	static const char *const after[] = {
		"b-x", "b.txt", "b/", "c", "d/", "e!", "e/",
	};
	static const int kinds[] = {
		STORE_FILE, STORE_FILE, STORE_DIR, STORE_FILE, STORE_DIR,
		STORE_FILE, STORE_DIR,
	};
	struct entries e;
	size_t i;

	put_tree();
	e = list("bkt", "a", NULL);
	cr_assert_eq(e.n, 7);
	for (i = 0; i < 7; i++) {
		cr_expect_str_eq(e.names[i], want[i]);
		cr_expect_eq(e.o[i].kind, kinds[i], "%s", want[i]);
	}
	cr_expect_not(e.o[2].has_marker);
	cr_expect(e.o[4].has_marker, "d has its marker");
	cr_expect_eq(e.o[4].meta.mode, S_IFDIR | 0711);
	cr_expect_eq(e.o[1].size, 7);
	cr_expect_eq(strlen(e.o[1].version_id), 26);
	cr_expect_eq(strlen(e.o[1].sha256), 64);

	e = list("bkt", "", NULL);
	cr_assert_eq(e.n, 4);
	cr_expect_str_eq(e.names[0], "a");
	cr_expect(e.o[0].has_marker);
	cr_expect_str_eq(e.names[1], "empty");
	cr_expect_str_eq(e.names[2], "top");
	cr_expect_not(e.o[2].has_marker);
	cr_expect_str_eq(e.names[3], "z");
	cr_expect_eq(e.o[3].kind, STORE_FILE);

	/* start_after resumes anywhere without losing or repeating. */
	for (i = 0; i < 7; i++) {
		e = list("bkt", "a", after[i]);
		cr_expect_eq(e.n, (int)(6 - i), "after %s", after[i]);
		if (i < 6)
			cr_expect_str_eq(e.names[0], want[i + 1]);
	}
	e = list("bkt", "a", "b.");
	cr_assert_eq(e.n, 6);
	cr_expect_str_eq(e.names[0], "b.txt");
	e = list("bkt", "a", "");
	cr_expect_eq(e.n, 7);
	e = list("bkt", "a/e", NULL);
	cr_assert_eq(e.n, 1);
	cr_expect_str_eq(e.names[0], "f");
	e = list("bkt", "empty", NULL);
	cr_expect_eq(e.n, 0);
	e = list("bkt", "nothing", NULL);
	cr_expect_eq(e.n, 0);
	cr_expect_eq(store_list(st, "nope", "", NULL, lcb, &e), -ENOENT);
}

static int stop_cb(void *arg, const char *name, const struct store_obj *o)
{
	(void)name;
	(void)o;
	return ++*(int *)arg == 2 ? 77 : 0;
}

Test(store, list_callback_stops)
{
	int n = 0;

	put_tree();
	cr_expect_eq(store_list(st, "bkt", "a", NULL, stop_cb, &n), 77);
	cr_expect_eq(n, 2);
}

/* A file and a directory of one name both show, file first. */
Test(store, list_file_and_dir_same_name)
{
	struct entries e;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "x", "file", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "x/y", "below", NULL), 0);
	e = list("bkt", "", NULL);
	cr_assert_eq(e.n, 2);
	cr_expect_eq(e.o[0].kind, STORE_FILE);
	cr_expect_eq(e.o[1].kind, STORE_DIR);
	struct store_obj o;
	cr_assert_eq(store_lookup(st, "bkt", "x", &o), 0);
	cr_expect_eq(o.kind, STORE_FILE);
}

/*
 * A listing costs in proportion to its entries: 200 folders of 1000 keys
 * (built with one SQL statement), then the top (200 entries) and one
 * folder (1000 entries) are listed, counting the rows the seeks read.
 */
static int count_cb(void *arg, const char *name, const struct store_obj *o)
{
	(void)name;
	(void)o;
	++*(int *)arg;
	return 0;
}

Test(store, list_cost_is_per_entry)
{
	uint64_t before;
	int n = 0;

	bucket_new(st, "big", STORE_ENABLED);
	cr_assert_eq(
		store_test_exec(st,
			"BEGIN;"
			"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
			" SELECT i + 1 FROM n WHERE i < 199999) "
			"INSERT INTO objects(id, bucket, key, cur, live) "
			"SELECT 1000000 + i, "
			" (SELECT id FROM buckets WHERE name = 'big'), "
			" printf('f%03d/k%04d', i / 1000, i % 1000), "
			" 1000000 + i, 1 FROM n;"
			"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
			" SELECT i + 1 FROM n WHERE i < 199999) "
			"INSERT INTO versions(id, object, vid, kind, sha256, "
			" size, mode, uid, gid, mtime_ns, ctime_ns, "
			" created_ns) "
			"SELECT 1000000 + i, 1000000 + i, 'null', 1, '"
			EMPTY_SHA "', 0, 33188, 0, 0, 0, 0, 0 FROM n;"
			"COMMIT;"),
		0);
	before = store_test_rows_visited();
	cr_assert_eq(store_list(st, "big", "", NULL, count_cb, &n), 0);
	cr_expect_eq(n, 200);
	cr_expect_leq(store_test_rows_visited() - before, 2 * 200 + 2,
		      "top level read %llu rows",
		      (unsigned long long)(store_test_rows_visited() -
					   before));
	n = 0;
	before = store_test_rows_visited();
	cr_assert_eq(store_list(st, "big", "f123", NULL, count_cb, &n), 0);
	cr_expect_eq(n, 1000);
	cr_expect_leq(store_test_rows_visited() - before, 2 * 1000 + 2);
	n = 0;
	before = store_test_rows_visited();
	cr_assert_eq(store_list(st, "big", "", "f150/", count_cb, &n), 0);
	cr_expect_eq(n, 49);
	cr_expect_leq(store_test_rows_visited() - before, 2 * 49 + 2);
	struct store_obj o;
	before = store_test_rows_visited();
	cr_assert_eq(store_lookup(st, "big", "f199", &o), 0);
	cr_expect_eq(o.kind, STORE_DIR);
	cr_expect_leq(store_test_rows_visited() - before, 2);
}

/* ---- rename --------------------------------------------------------- */

Test(store, rename_file)
{
	struct store_obj src, dst;
	char val[16];
	struct vlist l;

	bucket_new(st, "bkt", STORE_ENABLED);
	bucket_new(st, "plain", STORE_UNVERSIONED);
	cr_assert_eq(put_str(st, "bkt", "old", "payload", NULL), 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "old", "user.tag", "v", 1, 0),
		     0);
	cr_assert_eq(store_lookup(st, "bkt", "old", &src), 0);
	int blobs = blob_files();
	cr_assert_eq(store_rename(st, "bkt", "old", "bkt", "new", 0), 0);
	cr_expect_eq(blob_files(), blobs, "no data copied");
	cr_assert_eq(store_lookup(st, "bkt", "new", &dst), 0);
	cr_expect_str_eq(dst.sha256, src.sha256);
	cr_expect_eq(dst.size, src.size);
	cr_expect_eq(dst.meta.mode, src.meta.mode);
	cr_expect_eq(dst.meta.mtime_ns, src.meta.mtime_ns);
	cr_expect_str_neq(dst.version_id, src.version_id);
	cr_expect_eq(store_xattr_get(st, "bkt", "new", "user.tag", val,
				     sizeof(val)),
		     1);
	l = versions_of("bkt", "old");
	cr_assert_eq(l.n, 2, "data + delete marker at the old key");
	cr_expect_eq(l.v[0].kind, STORE_DELETE_MARKER);
	cr_expect_eq(l.v[0].moved, 1, "the marker says a rename left it");
	cr_expect_eq(l.v[1].moved, 0);
	cr_expect_eq(store_lookup(st, "bkt", "old", &dst), -ENOENT);
	cr_assert_eq(store_lookup_all(st, "bkt", "old", &dst), 0);
	cr_expect_eq(dst.moved, 1);
	cr_assert_eq(put_str(st, "bkt", "removed", "x", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "removed", NULL), 0);
	cr_assert_eq(store_lookup_all(st, "bkt", "removed", &dst), 0);
	cr_expect_eq(dst.kind, STORE_DELETE_MARKER);
	cr_expect_eq(dst.moved, 0, "a delete is not a move");
	/* Across buckets, into an unversioned one: vid null. */
	cr_assert_eq(store_rename(st, "bkt", "new", "plain", "moved", 0), 0);
	l = versions_of("plain", "moved");
	cr_assert_eq(l.n, 1);
	cr_expect_str_eq(l.v[0].version_id, "null");
	cur_is("plain", "moved", "payload");
	/* Out of an unversioned bucket: the source is removed. */
	cr_assert_eq(store_rename(st, "plain", "moved", "plain", "m2", 0), 0);
	cr_expect_eq(versions_of("plain", "moved").n, -1);
	cur_is("plain", "m2", "payload");
	/* Onto an existing file: replaced. */
	cr_assert_eq(put_str(st, "plain", "m3", "other", NULL), 0);
	cr_assert_eq(store_rename(st, "plain", "m2", "plain", "m3", 0), 0);
	cur_is("plain", "m3", "payload");
	cr_expect_eq(versions_of("plain", "m3").n, 1);
	cr_expect_eq(store_rename(st, "plain", "m3", "plain", "m3", 0), 0);
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, rename_errors)
{
	struct store_put p = { .kind = STORE_DIR, .fd = -1 };

	bucket_new(st, "bkt", STORE_ENABLED);
	p.meta = meta_of(0755);
	cr_assert_eq(put_str(st, "bkt", "f", "f", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "g", "g", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "d/x", "x", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "full/y", "y", NULL), 0);
	cr_assert_eq(store_put(st, "bkt", "empty/", &p, NULL, NULL), 0);
	cr_expect_eq(store_rename(st, "bkt", "nope", "bkt", "z", 0), -ENOENT);
	cr_expect_eq(store_rename(st, "bkt", "f", "bkt", "g",
				  STORE_RENAME_NOREPLACE),
		     -EEXIST);
	cr_expect_eq(store_rename(st, "bkt", "f", "bkt", "d", 0), -EISDIR);
	cr_expect_eq(store_rename(st, "bkt", "d", "bkt", "f", 0), -ENOTDIR);
	cr_expect_eq(store_rename(st, "bkt", "d", "bkt", "full", 0), -ENOTEMPTY);
	cr_expect_eq(store_rename(st, "bkt", "d", "bkt", "d/sub", 0), -EINVAL);
	cr_expect_eq(store_rename(st, "bkt", "d", "bkt", "empty",
				  STORE_RENAME_NOREPLACE),
		     -EEXIST);
	cr_expect_eq(store_rename(st, "bkt", "", "bkt", "x", 0), -EINVAL);
	cr_expect_eq(store_rename(st, "bkt", "f", "nope", "x", 0), -ENOENT);
	/* A directory onto an empty directory: allowed; the target's
	 * marker goes, as @from has none. */
	cr_assert_eq(store_rename(st, "bkt", "d", "bkt", "empty", 0), 0);
	struct store_obj o;
	cr_assert_eq(store_lookup(st, "bkt", "empty", &o), 0);
	cr_expect_not(o.has_marker);
	cur_is("bkt", "empty/x", "x");
	cr_expect_eq(store_lookup(st, "bkt", "d", &o), -ENOENT);
	/* "dx" is not inside "d". */
	cr_assert_eq(store_rename(st, "bkt", "empty", "bkt", "emptyx", 0), 0);
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, rename_directory)
{
	struct store_put p = { .kind = STORE_DIR, .fd = -1 };
	struct store_obj o;
	char key[64], want[64], buf[64];
	struct entries e;
	int i, n = 0;

	bucket_new(st, "bkt", STORE_ENABLED);
	bucket_new(st, "other", STORE_SUSPENDED);
	p.meta = meta_of(0701);
	cr_assert_eq(store_put(st, "bkt", "dir/", &p, NULL, NULL), 0);
	cr_assert_eq(store_put(st, "bkt", "dir/sub/", &p, NULL, NULL), 0);
	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "dir/%s%03d", i % 2 ? "sub/" : "",
			 i);
		cr_assert_eq(put_str(st, "bkt", key, key, NULL), 0);
	}
	cr_assert_eq(put_str(st, "bkt", "dir0", "sibling", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "dir.x", "sibling", NULL), 0);
	cr_assert_eq(store_rename(st, "bkt", "dir", "other", "new/place", 0), 0);
	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "new/place/%s%03d",
			 i % 2 ? "sub/" : "", i);
		snprintf(want, sizeof(want), "dir/%s%03d", i % 2 ? "sub/" : "",
			 i);
		cr_assert_eq(read_cur(st, "other", key, buf, sizeof(buf)), 0);
		cr_assert_str_eq(buf, want);
		cr_assert_eq(versions_of("bkt", want).v[0].kind,
			     STORE_DELETE_MARKER);
	}
	cr_assert_eq(store_lookup(st, "other", "new/place", &o), 0);
	cr_expect(o.has_marker);
	cr_expect_eq(o.meta.mode, S_IFDIR | 0701);
	cr_expect_eq(store_lookup(st, "bkt", "dir", &o), -ENOENT);
	cur_is("bkt", "dir0", "sibling");
	cur_is("bkt", "dir.x", "sibling");
	e = list("bkt", "", NULL);
	cr_expect_eq(e.n, 2);
	cr_assert_eq(store_list(st, "other", "new/place", NULL, count_cb, &n), 0);
	cr_expect_eq(n, 151);	/* 150 files and sub */
	cr_expect_eq(store_check(st, 1), 0);
}

/* ---- xattrs, metadata ----------------------------------------------- */

/* Whether the store holds an ACL, for a mount's choice: on a version,
 * current or not, or on a bucket; other xattrs do not count. */
Test(store, acls_held)
{
	static const char acl[] = "\x02\0\0\0";	/* the bytes do not matter */

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_expect_eq(store_has_acls(st), 0);
	cr_assert_eq(put_str(st, "bkt", "a", "A", NULL), 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "a", "user.x", "1", 1, 0), 0);
	cr_expect_eq(store_has_acls(st), 0, "a user.* attribute is no ACL");
	cr_assert_eq(store_xattr_set(st, "bkt", "a", "system.posix_acl_access",
				     acl, sizeof(acl) - 1, 0), 0);
	cr_expect_eq(store_has_acls(st), 1);
	cr_assert_eq(store_xattr_remove(st, "bkt", "a",
					"system.posix_acl_access"), 0);
	cr_expect_eq(store_has_acls(st), 0, "after its removal");
	cr_assert_eq(store_xattr_set(st, "bkt", "", "system.posix_acl_default",
				     acl, sizeof(acl) - 1, 0), 0);
	cr_expect_eq(store_has_acls(st), 1, "a bucket's default ACL");
	cr_assert_eq(store_xattr_remove(st, "bkt", "",
					"system.posix_acl_default"), 0);
	cr_expect_eq(store_has_acls(st), 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "a", "system.posix_acl_access",
				     acl, sizeof(acl) - 1, 0), 0);
	cr_assert_eq(put_str(st, "bkt", "a", "B", NULL), 0);
	cr_expect_eq(store_has_acls(st), 1, "an older version's ACL");
}

Test(store, xattrs)
{
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	char buf[64], big[300];

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "data", NULL), 0);
	cr_expect_eq(store_xattr_set(st, "bkt", "none", "user.a", "1", 1, 0),
		     -ENOENT);
	cr_assert_eq(store_xattr_set(st, "bkt", "k", "user.b", "two", 3, 0), 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "k", "user.a", "1", 1,
				     XATTR_CREATE),
		     0);
	cr_expect_eq(store_xattr_set(st, "bkt", "k", "user.a", "1", 1,
				     XATTR_CREATE),
		     -EEXIST);
	cr_expect_eq(store_xattr_set(st, "bkt", "k", "user.c", "1", 1,
				     XATTR_REPLACE),
		     -ENODATA);
	cr_assert_eq(store_xattr_set(st, "bkt", "k", "user.a", "one", 3,
				     XATTR_REPLACE),
		     0);
	cr_assert_eq(store_xattr_set(st, "bkt", "k", "user.empty", NULL, 0, 0),
		     0);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", "user.a", NULL, 0), 3);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", "user.a", buf, 2), -ERANGE);
	cr_assert_eq(store_xattr_get(st, "bkt", "k", "user.a", buf, sizeof(buf)),
		     3);
	cr_expect_eq(memcmp(buf, "one", 3), 0);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", "user.empty", buf, 8), 0);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", "user.x", buf, 8),
		     -ENODATA);
	cr_expect_eq(store_xattr_list(st, "bkt", "k", NULL, 0), 25);
	cr_assert_eq(store_xattr_list(st, "bkt", "k", buf, sizeof(buf)), 25);
	cr_expect_eq(memcmp(buf, "user.a\0user.b\0user.empty\0", 25), 0);
	cr_expect_eq(store_xattr_list(st, "bkt", "k", buf, 10), -ERANGE);
	cr_assert_eq(store_xattr_remove(st, "bkt", "k", "user.empty"), 0);
	cr_expect_eq(store_xattr_remove(st, "bkt", "k", "user.empty"),
		     -ENODATA);
	memset(big, 'n', sizeof(big));
	big[299] = '\0';
	cr_expect_eq(store_xattr_set(st, "bkt", "k", big, "1", 1, 0), -ERANGE);

	/* A new version inherits them with keep_xattrs, else not. */
	p.meta = meta_of(0644);
	p.keep_xattrs = 1;
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, NULL), 0);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", "user.b", NULL, 0), 3);
	p.keep_xattrs = 0;
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, NULL), 0);
	cr_expect_eq(store_xattr_list(st, "bkt", "k", NULL, 0), 0);
	/* Nor from a delete marker. */
	cr_assert_eq(store_xattr_set(st, "bkt", "k", "user.z", "z", 1, 0), 0);
	cr_assert_eq(store_delete(st, "bkt", "k", NULL), 0);
	p.keep_xattrs = 1;
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, NULL), 0);
	cr_expect_eq(store_xattr_list(st, "bkt", "k", NULL, 0), 0);
	/* In a suspended bucket the replaced null version's xattrs are
	 * inherited before it goes. */
	cr_assert_eq(store_bucket_set_versioning(st, "bkt", STORE_SUSPENDED),
		     0);
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, NULL), 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "k", "user.n", "n", 1, 0), 0);
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, NULL), 0);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", "user.n", NULL, 0), 1);
	cr_expect_eq(store_check(st, 0), 0);
}

/* What POSIX ACLs need of the store: xattrs given with a new version, and
 * an xattr set or removed in the same transaction as the mode. */
Test(store, xattrs_with_version_and_mode)
{
	const struct store_xattr x[2] = {
		{ "system.posix_acl_access", "acl", 3 },
		{ "user.keep", "k", 1 },
	};
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	struct store_meta m = { .mode = 0640 };
	struct store_xattr one = { "system.posix_acl_access", "new", 3 };
	struct store_xattr drop = { .name = "user.keep" };
	struct store_obj o;
	char buf[8];

	bucket_new(st, "bkt", STORE_ENABLED);
	p.meta = meta_of(0644);
	p.xattrs = x;
	p.nxattrs = 2;
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, NULL), 0);
	cr_expect_eq(store_xattr_list(st, "bkt", "k", NULL, 0), 34);
	cr_assert_eq(store_xattr_get(st, "bkt", "k", x[0].name, buf, 8), 3);
	cr_expect_eq(memcmp(buf, "acl", 3), 0);
	/* Given xattrs win over the ones kept from the version before. */
	p.keep_xattrs = 1;
	p.xattrs = &one;
	p.nxattrs = 1;
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, NULL), 0);
	cr_assert_eq(store_xattr_get(st, "bkt", "k", x[0].name, buf, 8), 3);
	cr_expect_eq(memcmp(buf, "new", 3), 0);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", "user.keep", NULL, 0), 1);
	/* A NULL value drops one the version before had. */
	p.xattrs = &drop;
	cr_assert_eq(store_put(st, "bkt", "k", &p, NULL, NULL), 0);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", "user.keep", NULL, 0),
		     -ENODATA);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", x[0].name, NULL, 0), 3);

	one.value = "set";
	cr_assert_eq(store_set_meta_xattr(st, "bkt", "k", &m, STORE_SET_MODE,
					  &one, 1),
		     0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_eq(o.meta.mode, S_IFREG | 0640);
	cr_assert_eq(store_xattr_get(st, "bkt", "k", x[0].name, buf, 8), 3);
	cr_expect_eq(memcmp(buf, "set", 3), 0);
	/* NULL value: removed, and removing what is not there is no error. */
	one.value = NULL;
	m.mode = 0600;
	cr_assert_eq(store_set_meta_xattr(st, "bkt", "k", &m, STORE_SET_MODE,
					  &one, 1),
		     0);
	cr_expect_eq(store_xattr_get(st, "bkt", "k", x[0].name, NULL, 0),
		     -ENODATA);
	cr_assert_eq(store_set_meta_xattr(st, "bkt", "k", &m, STORE_SET_MODE,
					  &one, 1),
		     0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_eq(o.meta.mode, S_IFREG | 0600);
	cr_expect_eq(store_set_meta_xattr(st, "bkt", "none", &m,
					  STORE_SET_MODE, &one, 1),
		     -ENOENT);
	cr_expect_eq(store_check(st, 0), 0);
}

Test(store, set_meta_in_place)
{
	struct store_meta m = { .mode = 0600, .uid = 7, .gid = 8,
				.mtime_ns = 123 };
	struct store_obj before, after;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "data", NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &before), 0);
	usleep(2000);
	cr_assert_eq(store_set_meta(st, "bkt", "k", &m, STORE_SET_MODE), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &after), 0);
	cr_expect_eq(after.meta.mode, S_IFREG | 0600);
	cr_expect_eq(after.meta.uid, before.meta.uid);
	cr_expect_gt(after.meta.ctime_ns, before.meta.ctime_ns);
	cr_expect_str_eq(after.version_id, before.version_id);
	cr_assert_eq(store_set_meta(st, "bkt", "k", &m,
				    STORE_SET_UID | STORE_SET_GID |
					    STORE_SET_MTIME),
		     0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &after), 0);
	cr_expect_eq(after.meta.uid, 7);
	cr_expect_eq(after.meta.gid, 8);
	cr_expect_eq(after.meta.mtime_ns, 123);
	cr_expect_eq(versions_of("bkt", "k").n, 1, "no new version");
	cr_expect_eq(store_set_meta(st, "bkt", "none", &m, STORE_SET_MODE),
		     -ENOENT);
	cr_assert_eq(store_delete(st, "bkt", "k", NULL), 0);
	cr_expect_eq(store_set_meta(st, "bkt", "k", &m, STORE_SET_MODE),
		     -ENOENT);
}

/* The mtime of folder @folder ("" for the bucket) of "bkt". */
static int64_t folder_mtime(const char *folder)
{
	struct store_meta m;
	struct store_obj o;

	if (!*folder) {
		cr_assert_eq(store_bucket_get(st, "bkt", &m, NULL), 0);
		cr_assert_eq(m.ctime_ns, m.mtime_ns);
		return m.mtime_ns;
	}
	cr_assert_eq(store_lookup(st, "bkt", folder, &o), 0, "%s", folder);
	cr_assert_eq(o.kind, STORE_DIR);
	/* A folder renamed keeps its mtime; its ctime moves. */
	cr_assert_geq(o.meta.ctime_ns, o.meta.mtime_ns, "%s", folder);
	return o.meta.mtime_ns;
}

static int64_t created_of(const char *key)
{
	struct store_obj o;

	cr_assert_eq(store_lookup_all(st, "bkt", key, &o), 0, "%s", key);
	return o.created_ns;
}

Test(store, folder_times_follow_names)
{
	struct store_put mk = { .kind = STORE_DIR, .fd = -1 };
	struct store_meta m = { .mtime_ns = 5 };
	char vid[STORE_VID_MAX + 1];
	struct store_obj o;
	int64_t t, me;

	bucket_new(st, "bkt", STORE_ENABLED);
	mk.meta = meta_of(0755);
	mk.meta.mtime_ns = mk.meta.ctime_ns = 100;
	cr_assert_eq(store_put(st, "bkt", "d/", &mk, NULL, NULL), 0);
	cr_assert_eq(store_put(st, "bkt", "e/", &mk, NULL, NULL), 0);
	cr_expect_eq(folder_mtime("d"), 100, "a marker's own time");
	cr_expect_eq(folder_mtime(""), created_of("e/"),
		     "a marker is a name in its parent");

	/* A new name moves its folder to the version's time. */
	cr_assert_eq(put_str(st, "bkt", "d/f", "one", NULL), 0);
	cr_expect_eq(folder_mtime("d"), created_of("d/f"));
	t = folder_mtime("d");
	usleep(1000);
	cr_assert_eq(put_str(st, "bkt", "d/f", "two", NULL), 0);
	cr_expect_eq(folder_mtime("d"), t, "an overwrite changes no name");

	/* A delete marker, an undelete and a rename move it too. */
	usleep(1000);
	cr_assert_eq(store_delete(st, "bkt", "d/f", NULL), 0);
	cr_expect_eq(folder_mtime("d"), created_of("d/f"), "rm");
	t = folder_mtime("d");
	usleep(1000);
	cr_assert_eq(store_undelete(st, "bkt", "d/f", NULL), 0);
	cr_expect_gt(folder_mtime("d"), t, "undelete");
	t = folder_mtime("d");
	cr_expect_eq(folder_mtime("e"), 100);
	usleep(1000);
	cr_assert_eq(store_rename(st, "bkt", "d/f", "bkt", "e/f", 0), 0);
	cr_expect_gt(folder_mtime("d"), t, "rename: the source folder");
	cr_expect_gt(folder_mtime("e"), t, "rename: the target folder");
	t = folder_mtime("e");
	usleep(1000);
	cr_assert_eq(put_str(st, "bkt", "d/g", "g", NULL), 0);
	cr_assert_eq(store_rename(st, "bkt", "d/g", "bkt", "e/f", 0), 0);
	cr_expect_gt(folder_mtime("e"), t, "a rename onto a name there");

	/* A folder whose marker is gone: its names move nothing, and a
	 * whole folder renamed moves both parents. */
	cr_assert_eq(put_str(st, "bkt", "e/sub/x", "x", NULL), 0);
	cr_assert_eq(store_delete(st, "bkt", "e/sub/", NULL), -ENOENT);
	t = folder_mtime("");
	me = folder_mtime("e");
	usleep(1000);
	cr_assert_eq(store_rename(st, "bkt", "e", "bkt", "moved", 0), 0);
	cr_expect_gt(folder_mtime(""), t, "the bucket, after mv e moved");
	cr_expect_eq(folder_mtime("moved"), me, "the folder moved keeps its");
	cr_assert_eq(store_rename(st, "bkt", "moved", "bkt", "e", 0), 0);

	/* A name made earlier (a file created, then closed) never moves
	 * the folder back. */
	t = folder_mtime("e");
	mk.kind = STORE_FILE;
	mk.named_ns = t - 1000;
	cr_assert_eq(store_put(st, "bkt", "e/late", &mk, NULL, NULL), 0);
	cr_expect_eq(folder_mtime("e"), t, "not moved back");
	mk.named_ns = t + 7;
	cr_assert_eq(store_put(st, "bkt", "e/later", &mk, NULL, NULL), 0);
	cr_expect_eq(folder_mtime("e"), t + 7, "named_ns is the new time");

	/* Removing the only version of a key removes the name. */
	t = folder_mtime("");
	usleep(1000);
	cr_assert_eq(put_str(st, "bkt", "top", "x", vid), 0);
	cr_expect_eq(folder_mtime(""), created_of("top"), "the bucket's");
	t = folder_mtime("");
	usleep(1000);
	cr_assert_eq(store_delete_version(st, "bkt", "top", vid), 0);
	cr_expect_gt(folder_mtime(""), t, "rm-version of the last version");

	/* An explicit time (touch, cp -a) is kept, even an older one. */
	cr_assert_eq(store_set_meta(st, "bkt", "e/", &m, STORE_SET_MTIME), 0);
	cr_assert_eq(store_lookup(st, "bkt", "e", &o), 0);
	cr_expect_eq(o.meta.mtime_ns, 5, "an explicit mtime");
}

/* ---- garbage collection, check, generation, threads ----------------- */

static void touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0600);

	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(write(fd, "junk", 4), 4);
	close(fd);
}

Test(store, gc_at_open)
{
	char orphan[PATH_MAX], staging[PATH_MAX], trash[PATH_MAX];
	struct store_obj o;
	struct stat sb;
	struct store *second;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "kept", NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	store_blob_path(st, "ab00000000000000000000000000000000000000000000"
			    "000000000000000000",
			orphan, sizeof(orphan));
	snprintf(staging, sizeof(staging), "%s/store/staging/tmp.abcdef",
		 dir);
	snprintf(trash, sizeof(trash), "%s/store/trash/x.1.2", dir);
	touch(orphan);
	touch(staging);
	touch(trash);
	/* While another user has the store open, nothing is collected. */
	cr_assert_eq(store_open(store_path(st), 0, &second), 0);
	store_close(second);
	cr_expect_eq(stat(orphan, &sb), 0);
	store_close(st);
	st = NULL;
	char path[128], marker[PATH_MAX];
	snprintf(path, sizeof(path), "%s/store", dir);
	/* After clean closes, staging/ and trash/ are swept, and the blobs
	 * are not looked at: only a crash leaves one that no row names. */
	cr_assert_eq(store_open(path, 0, &st), 0);
	cr_expect_neq(stat(staging, &sb), 0);
	cr_expect_neq(stat(trash, &sb), 0);
	cr_expect_eq(stat(orphan, &sb), 0);
	store_close(st);
	st = NULL;
	/* A marker in open/ that no process holds: one died with the store
	 * open, so every blob is looked at. */
	snprintf(marker, sizeof(marker), "%s/store/open/dead", dir);
	touch(marker);
	touch(staging);
	cr_assert_eq(store_open(path, 0, &st), 0);
	cr_expect_neq(stat(orphan, &sb), 0);
	cr_expect_neq(stat(staging, &sb), 0);
	cr_expect_neq(stat(marker, &sb), 0, "the dead marker is removed");
	cr_expect(blob_exists(o.sha256));
	cr_expect(blob_exists(EMPTY_SHA));
	cur_is("bkt", "k", "kept");
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, opens_without_a_marker)
{
	char path[128], mdir[PATH_MAX];

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "kept", NULL), 0);
	store_close(st);
	st = NULL;
	/* open/ cannot hold a marker: the store opens all the same. */
	snprintf(path, sizeof(path), "%s/store", dir);
	snprintf(mdir, sizeof(mdir), "%s/store/open", dir);
	rm_rf(mdir);
	touch(mdir);
	cr_assert_eq(store_open(path, 0, &st), 0);
	cur_is("bkt", "k", "kept");
	cr_assert_eq(put_str(st, "bkt", "k2", "new", NULL), 0);
	cr_expect_eq(store_check(st, 1), 0);
}

Test(store, markers_of_open_stores)
{
	char path[128], mdir[PATH_MAX];
	struct store *second;
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/store", dir);
	snprintf(mdir, sizeof(mdir), "%s/store/open", dir);
	cr_assert_eq(store_open(path, 0, &second), 0);
	d = opendir(mdir);
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	cr_expect_eq(n, 2, "one marker per open store");
	store_close(second);
	store_close(st);
	st = NULL;
	d = opendir(mdir);
	cr_assert_not_null(d);
	n = 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	cr_expect_eq(n, 0, "a clean close removes its marker");
}

Test(store, check_finds_damage)
{
	struct store_obj o;
	char path[PATH_MAX];
	int fd;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "precious", NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_eq(store_check(st, 1), 0);
	store_blob_path(st, o.sha256, path, sizeof(path));
	cr_assert_eq(chmod(path, 0644), 0);
	fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "P", 1, 0), 1);
	close(fd);
	cr_expect_eq(store_check(st, 0), 0, "same size: only deep sees it");
	cr_expect_eq(store_check(st, 1), -EIO);
	cr_assert_eq(unlink(path), 0);
	cr_expect_eq(store_check(st, 0), -EIO);
}

Test(store, generation_moves)
{
	uint64_t g0, g1, g2;
	struct store *other;

	g0 = store_generation(st);
	bucket_new(st, "bkt", STORE_ENABLED);
	g1 = store_generation(st);
	cr_expect_neq(g0, g1);
	cr_expect_eq(store_generation(st), g1, "no change, no move");
	cr_assert_eq(store_open(store_path(st), 0, &other), 0);
	cr_assert_eq(put_str(other, "bkt", "k", "x", NULL), 0);
	g2 = store_generation(st);
	cr_expect_neq(g1, g2, "another connection's commit is seen");
	store_close(other);
	cr_assert_eq(store_sync(st), 0);
}

static void *writer(void *arg)
{
	char key[32], data[32];
	long t = (long)arg;
	int i;

	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "t%ld/k%d", t, i % 10);
		snprintf(data, sizeof(data), "%ld-%d", t, i);
		if (put_str(st, "bkt", key, data, NULL))
			return (void *)1;
		if (i % 7 == 0 && store_delete(st, "bkt", key, NULL))
			return (void *)1;
		if (i % 5 == 0) {
			struct entries e = { 0 };
			if (store_list(st, "bkt", "", NULL, lcb, &e))
				return (void *)1;
		}
	}
	return NULL;
}

Test(store, threads)
{
	pthread_t th[8];
	void *ret;
	long i;

	bucket_new(st, "bkt", STORE_ENABLED);
	for (i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, writer, (void *)i),
			     0);
	for (i = 0; i < 8; i++) {
		cr_assert_eq(pthread_join(th[i], &ret), 0);
		cr_expect_null(ret);
	}
	cr_expect_eq(list("bkt", "", NULL).n, 8);
	cr_expect_eq(store_check(st, 1), 0);
}

/* The store's checkpointer thread copies the WAL back while commits come
 * (passes, which never hold writers back) and starts it over, giving its
 * disk space back, once they stop for a moment; a burst that does not
 * stop has it start over every GiB, here every 125 MiB.  Five thousand
 * puts append about 180 MiB of frames (each touches some nine pages):
 * the WAL stays below 160 MiB (with passes alone it held them all), and a
 * moment after the last put it is empty. */
Test(store, checkpoints_bound_the_wal)
{
	char path[128], key[32];
	struct stat sb;
	int i;

	setenv("REPLICAFS_TEST_WAL_RESTART_PAGES", "32000", 1);
	store_close(st);	/* the bound is read at open */
	st = store_new(dir);
	bucket_new(st, "bkt", STORE_ENABLED);
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "d%d/f%d", i % 50, i);
		cr_assert_eq(put_str(st, "bkt", key, "x", NULL), 0);
	}
	snprintf(path, sizeof(path), "%s/catalog.db-wal", store_path(st));
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_lt(sb.st_size, 160 << 20, "WAL of %lld bytes",
		     (long long)sb.st_size);
	/* Truncated once the store is idle: waited for up to 10 s, as a
	 * loaded machine (a parallel build) took more than 2 s. */
	for (i = 0; i < 500 && stat(path, &sb) == 0 && sb.st_size; i++)
		usleep(20000);
	cr_expect_eq(sb.st_size, 0, "WAL of %lld bytes 10 s after the last "
		     "commit", (long long)sb.st_size);
	unsetenv("REPLICAFS_TEST_WAL_RESTART_PAGES");
	cr_expect_eq(list("bkt", "", NULL).n, 50);
	cr_expect_eq(store_check(st, 0), 0);
}

/* A process died between moving a blob to trash/ and COMMIT: the row
 * still names the blob, which is found in trash/ by store_blob_open()
 * and put back by the next exclusive open. */
Test(store, trash_of_a_dead_transaction)
{
	char blob[PATH_MAX], trash[PATH_MAX + 64], path[128];
	struct store_obj o;
	struct stat sb;
	int fd;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "survivor", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "j", "survivor2", NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	store_blob_path(st, o.sha256, blob, sizeof(blob));
	snprintf(trash, sizeof(trash), "%s/store/trash/%s.99.1", dir,
		 o.sha256);
	cr_assert_eq(rename(blob, trash), 0);
	cr_assert_eq(store_blob_open(st, o.sha256, &fd), 0);
	close(fd);
	cr_expect_eq(stat(blob, &sb), 0);
	cr_assert_eq(store_lookup(st, "bkt", "j", &o), 0);
	store_blob_path(st, o.sha256, blob, sizeof(blob));
	snprintf(trash, sizeof(trash), "%s/store/trash/%s.99.2", dir,
		 o.sha256);
	cr_assert_eq(rename(blob, trash), 0);
	store_close(st);
	snprintf(path, sizeof(path), "%s/store", dir);
	cr_assert_eq(store_open(path, 0, &st), 0);
	cr_expect_eq(stat(blob, &sb), 0);
	cr_expect_neq(stat(trash, &sb), 0);
	cr_expect_eq(store_check(st, 1), 0);
}

/* ---- inode numbers -------------------------------------------------- */

static uint64_t ino_of(const char *bucket, const char *key)
{
	struct store_obj o;

	cr_assert_eq(store_lookup(st, bucket, key, &o), 0, "%s", key);
	return o.ino;
}

/* Each key has an inode number that stays: a rename carries it and the
 * old name gets a new one; a file made with a reserved number keeps it;
 * lookup and listing agree; a folder without a marker has its name's. */
Test(store, inode_numbers)
{
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	struct store_put m = { .kind = STORE_DIR, .fd = -1 };
	uint64_t a, first, next, d, x;
	struct store_obj o;
	struct entries e;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "a", "A", NULL), 0);
	a = ino_of("bkt", "a");
	cr_expect(a > 16 && a < STORE_INO_OWN, "ino %llu",
		  (unsigned long long)a);
	cr_assert_eq(put_str(st, "bkt", "a", "A2", NULL), 0);
	cr_expect_eq(ino_of("bkt", "a"), a, "a new version keeps it");

	cr_assert_eq(store_ino_reserve(st, 8, &first), 0);
	cr_assert_eq(store_ino_reserve(st, 8, &next), 0);
	cr_expect_geq(next, first + 8);
	cr_expect_gt(first, a);
	p.meta = meta_of(0644);
	p.ino = first + 3;
	cr_assert_eq(store_put(st, "bkt", "made", &p, NULL, &o), 0);
	cr_expect_eq(o.ino, first + 3);
	cr_expect_eq(ino_of("bkt", "made"), first + 3);

	cr_assert_eq(store_rename(st, "bkt", "a", "bkt", "c", 0), 0);
	cr_expect_eq(ino_of("bkt", "c"), a, "a rename carries it");
	cr_assert_eq(put_str(st, "bkt", "a", "new A", NULL), 0);
	x = ino_of("bkt", "a");
	cr_expect(x != a && x != first + 3 && x < STORE_INO_OWN);
	/* Onto a file that is there: the moved one's number wins. */
	cr_assert_eq(store_rename(st, "bkt", "c", "bkt", "made", 0), 0);
	cr_expect_eq(ino_of("bkt", "made"), a);

	/* A folder and what is below it, renamed. */
	m.meta = meta_of(S_IFDIR | 0755);
	cr_assert_eq(store_put(st, "bkt", "d/", &m, NULL, &o), 0);
	d = o.ino;
	cr_assert_eq(put_str(st, "bkt", "d/x", "X", NULL), 0);
	x = ino_of("bkt", "d/x");
	cr_expect_eq(ino_of("bkt", "d"), d);
	cr_assert_eq(store_rename(st, "bkt", "d", "bkt", "e", 0), 0);
	cr_expect_eq(ino_of("bkt", "e"), d);
	cr_expect_eq(ino_of("bkt", "e/x"), x);

	/* A folder with no marker: its name's number, high up. */
	cr_assert_eq(put_str(st, "bkt", "p/q", "Q", NULL), 0);
	cr_expect_eq(ino_of("bkt", "p"), store_name_ino("bkt", "p", 1));
	cr_expect_geq(ino_of("bkt", "p"), 2 * STORE_INO_OWN);
	cr_expect_neq(store_name_ino("bkt", "p", 1),
		      store_name_ino("bkt", "q", 1));
	cr_expect_neq(store_name_ino("bkt", "", 0),
		      store_name_ino("bkt2", "", 0));

	e = list("bkt", "", NULL);
	cr_assert_eq(e.n, 4);	/* a, e, made, p */
	for (int i = 0; i < e.n; i++) {
		const char *key = e.names[i];

		cr_expect_eq(e.o[i].ino, ino_of("bkt", key), "%s", key);
	}
	cr_expect_eq(store_check(st, 1), 0);
}

/*
 * Close the store and make its catalog one of schema @version, as an
 * older replicafs left it: @sql first when not NULL, then what the
 * schemas after @version added is dropped (store.c's schema_vN); then open
 * it again, which migrates it.  The catalog's path goes into @db.
 */
static void reopen_as_schema(int version, const char *sql, char db[160])
{
	char path[128], uv[48];

	snprintf(path, sizeof(path), "%s", store_path(st));
	store_close(st);
	snprintf(db, 160, "%s/catalog.db", path);
	if (sql)
		pragma(db, sql);
	if (version < 6) {
		pragma(db, "ALTER TABLE objects DROP COLUMN ino");
		pragma(db, "DROP TABLE ino_next");
	}
	if (version < 7) {
		pragma(db, "ALTER TABLE versions DROP COLUMN atime_ns");
		pragma(db, "ALTER TABLE buckets DROP COLUMN atime_ns");
	}
	if (version < 8)
		pragma(db, "DROP TABLE bucket_xattrs");
	if (version < 10)
		pragma(db, "DROP TABLE repl_uploads");
	if (version < 11)
		pragma(db, "DROP TABLE journal");
	if (version < 12)
		pragma(db, "DROP INDEX xattrs_acl");
	snprintf(uv, sizeof(uv), "PRAGMA user_version = %d", version);
	pragma(db, uv);
	cr_assert_eq(store_open(path, 0, &st), 0);
}

/* A catalog from before schema 6 gets numbers for the keys it has, and
 * new keys get numbers none of them has; its rows read no atime of their
 * own. */
Test(store, inode_numbers_of_an_old_catalog)
{
	char db[160];
	struct store_obj o;
	uint64_t a, b, c;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "a", "A", NULL), 0);
	cr_assert_eq(put_str(st, "bkt", "b", "B", NULL), 0);
	reopen_as_schema(5, NULL, db);
	a = ino_of("bkt", "a");
	b = ino_of("bkt", "b");
	cr_expect(a > 16 && b > 16 && a != b);
	cr_assert_eq(store_lookup(st, "bkt", "a", &o), 0);
	cr_expect_eq(o.meta.atime_ns, 0);
	cr_assert_eq(put_str(st, "bkt", "c", "C", NULL), 0);
	c = ino_of("bkt", "c");
	cr_expect(c > a && c > b, "%llu after %llu, %llu",
		  (unsigned long long)c, (unsigned long long)a,
		  (unsigned long long)b);
	cr_expect_eq(store_check(st, 1), 0);
}

/* A catalog from before schema 9 whose bucket was made after its oldest
 * version (a backup bucket filled by a batch job): the bucket holds
 * history from that version on, which .at asks of it. */
Test(store, bucket_since_its_oldest_version)
{
	char db[160];
	struct store_obj o;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "a", "A", NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "a", &o), 0);
	reopen_as_schema(8, "UPDATE buckets SET created_ns = created_ns + "
			    "1000000000", db);
	cr_expect_eq(store_lookup_at(st, "bkt", "", o.created_ns, &o), 0,
		     "the bucket at its oldest version's time");
}

static int upload_seen(void *arg, const char *upload_id)
{
	snprintf(arg, 16, "%s", upload_id);
	return 0;
}

/* A catalog from before schema 10 gets the table where an S3 destination
 * notes its multipart uploads under way, and keeps what it had. */
Test(store, uploads_under_way_in_an_old_catalog)
{
	char db[160], seen[16] = "";
	struct store_obj o;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "a", "A", NULL), 0);
	reopen_as_schema(9, NULL, db);
	cr_expect_eq(pragma(db, "PRAGMA user_version"), 12);
	cr_assert_eq(store_lookup(st, "bkt", "a", &o), 0);
	cr_assert_eq(store_repl_upload_note(st, "s3://r/b", "k", "u1"), 0);
	cr_assert_eq(store_repl_uploads(st, "s3://r/b", "k", upload_seen,
					seen), 0);
	cr_expect_str_eq(seen, "u1");
	cr_expect_eq(store_check(st, 1), 0);
}

/* A catalog from before schema 12 gets the index of its ACLs, which
 * then finds the ones it had. */
Test(store, acls_in_an_old_catalog)
{
	char db[160];

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "a", "A", NULL), 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "a", "system.posix_acl_access",
				     "\x02\0\0\0", 4, 0), 0);
	reopen_as_schema(11, NULL, db);
	cr_expect_eq(pragma(db, "PRAGMA user_version"), 12);
	cr_expect_eq(pragma(db, "SELECT count(*) FROM sqlite_master WHERE "
				"name = 'xattrs_acl'"),
		     1);
	cr_expect_eq(store_has_acls(st), 1);
}

/* A catalog from before schema 11 gets the close journal's row, and a
 * close's version goes through the journal at once. */
Test(store, journal_in_an_old_catalog)
{
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	char db[160], sha[65], buf[16];
	struct store_hash *h;
	struct store_obj o;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "a", "A", NULL), 0);
	reopen_as_schema(10, NULL, db);
	cr_expect_eq(pragma(db, "PRAGMA user_version"), 12);
	cr_expect_eq(pragma(db, "SELECT applied FROM journal"), 64);
	h = store_hash_new();
	cr_assert_not_null(h);
	store_hash_update(h, "B", 1);
	store_hash_final(h, sha);
	p.meta = meta_of(0644);
	cr_assert_eq(store_journal_put(st, "bkt", "b", &p, "B", 1, sha, &o),
		     0);
	cr_assert_eq(read_cur(st, "bkt", "b", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "B");
	cr_assert_eq(read_cur(st, "bkt", "a", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "A");
	cr_expect_eq(store_check(st, 1), 0);
}

/* ---- atime ---------------------------------------------------------- */

/* A version keeps the atime it was given or set to (0, none: the mtime's);
 * setting the mtime leaves it; a rename and a new version given it carry
 * it; a bucket keeps one too. */
Test(store, atime)
{
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	struct store_meta m = { .atime_ns = 1234567890123456789LL };
	struct store_obj o;
	struct entries e;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "K", NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_eq(o.meta.atime_ns, 0);
	cr_assert_eq(store_set_meta(st, "bkt", "k", &m, STORE_SET_ATIME), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), 0);
	cr_expect_eq(o.meta.atime_ns, m.atime_ns);
	cr_expect_neq(o.meta.mtime_ns, m.atime_ns);
	m.mtime_ns = 42;
	cr_assert_eq(store_set_meta(st, "bkt", "k", &m, STORE_SET_MTIME), 0);
	cr_assert_eq(store_rename(st, "bkt", "k", "bkt", "k2", 0), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k2", &o), 0);
	cr_expect_eq(o.meta.atime_ns, m.atime_ns);
	cr_expect_eq(o.meta.mtime_ns, 42);
	e = list("bkt", "", NULL);
	cr_assert_eq(e.n, 1);
	cr_expect_eq(e.o[0].meta.atime_ns, m.atime_ns);

	p.meta = meta_of(0644);
	p.meta.atime_ns = 77;
	cr_assert_eq(store_put(st, "bkt", "k2", &p, NULL, &o), 0);
	cr_assert_eq(store_lookup(st, "bkt", "k2", &o), 0);
	cr_expect_eq(o.meta.atime_ns, 77);

	cr_assert_eq(store_bucket_set_meta(st, "bkt", &m, STORE_SET_ATIME), 0);
	cr_assert_eq(store_bucket_get(st, "bkt", &o.meta, NULL), 0);
	cr_expect_eq(o.meta.atime_ns, m.atime_ns);
	cr_expect_eq(store_check(st, 1), 0);
}

/* ---- a bucket's own xattrs ------------------------------------------ */

/* The key "" stands for the bucket: its xattrs are its own, set with its
 * mode in one transaction, and go with it. */
Test(store, bucket_xattrs)
{
	struct store_xattr acl = { "system.posix_acl_access", "acl", 3 };
	struct store_meta m = { .mode = 0750 };
	char buf[16], names[64], vid[STORE_VID_MAX + 1];

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_expect_eq(store_xattr_list(st, "bkt", "", NULL, 0), 0);
	cr_expect_eq(store_xattr_get(st, "bkt", "", "user.a", NULL, 0),
		     -ENODATA);
	cr_assert_eq(store_xattr_set(st, "bkt", "", "user.a", "1", 1, 0), 0);
	cr_expect_eq(store_xattr_set(st, "bkt", "", "user.a", "2", 1,
				     XATTR_CREATE),
		     -EEXIST);
	cr_assert_eq(store_xattr_get(st, "bkt", "", "user.a", buf, 16), 1);
	cr_expect_eq(buf[0], '1');
	cr_assert_eq(store_set_meta_xattr(st, "bkt", "", &m, STORE_SET_MODE,
					  &acl, 1),
		     0);
	cr_assert_eq(store_bucket_get(st, "bkt", &m, NULL), 0);
	cr_expect_eq(m.mode & 07777, 0750);
	cr_assert_eq(store_xattr_list(st, "bkt", "", names, sizeof(names)),
		     31);
	cr_expect_str_eq(names, "system.posix_acl_access");
	cr_expect_str_eq(names + 24, "user.a");
	/* Not a key's: the bucket's keys have none of them. */
	cr_assert_eq(put_str(st, "bkt", "k", "K", vid), 0);
	cr_expect_eq(store_xattr_list(st, "bkt", "k", NULL, 0), 0);
	cr_assert_eq(store_xattr_remove(st, "bkt", "", "user.a"), 0);
	cr_expect_eq(store_xattr_remove(st, "bkt", "", "user.a"), -ENODATA);
	cr_expect_eq(store_xattr_get(st, "nope", "", "user.a", NULL, 0),
		     -ENOENT);
	/* Removed with the bucket: a new one of that name has none. */
	cr_assert_eq(store_delete_version(st, "bkt", "k", vid), 0);
	cr_assert_eq(store_bucket_delete(st, "bkt"), 0);
	bucket_new(st, "bkt", STORE_ENABLED);
	cr_expect_eq(store_xattr_list(st, "bkt", "", NULL, 0), 0);
	cr_expect_eq(store_check(st, 1), 0);
}

/* An object's tags keep to S3's limits (10 tags, keys of 128 and values
 * of 256 characters): past them a replica in S3 refused every delivery,
 * and the version stayed FAILED. */
Test(store, tags_keep_to_s3s_limits)
{
	char name[64], key[160], value[300];
	int i;

	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "k", "x", NULL), 0);
	for (i = 1; i <= 10; i++) {
		snprintf(name, sizeof(name), STORE_TAG_XATTR "k%d", i);
		cr_assert_eq(store_xattr_set(st, "bkt", "k", name, "v", 1, 0),
			     0);
	}
	cr_assert_eq(store_xattr_set(st, "bkt", "k", STORE_TAG_XATTR "k11",
				     "v", 1, 0),
		     -E2BIG, "an 11th tag");
	cr_assert_eq(store_xattr_set(st, "bkt", "k", STORE_TAG_XATTR "k3",
				     "new", 3, 0),
		     0, "a new value of a tag there");
	cr_assert_eq(store_xattr_set(st, "bkt", "k", "user.other", "v", 1, 0),
		     0, "other xattrs are not tags");
	cr_assert_eq(store_xattr_remove(st, "bkt", "k", STORE_TAG_XATTR "k1"),
		     0);
	memset(value, 'v', sizeof(value));
	cr_assert_eq(store_xattr_set(st, "bkt", "k", STORE_TAG_XATTR "k1",
				     value, 257, 0),
		     -E2BIG, "a value of 257 characters");
	cr_assert_eq(store_xattr_set(st, "bkt", "k", STORE_TAG_XATTR "k1",
				     "\xc3\xa9\xc3\xa9", 4, 0),
		     0);
	snprintf(key, sizeof(key), STORE_TAG_XATTR "%0129d", 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "k", key, "v", 1, 0), -E2BIG,
		     "a key of 129 characters");
	cr_assert_eq(store_xattr_set(st, "bkt", "k", STORE_TAG_XATTR "k1",
				     value, 256, 0),
		     0, "a value of 256 characters");
}

/* A line that comes once per attempt (a staging file not seeded on a full
 * disk: 12,000 lines in 10 minutes): the first is let through, then one
 * per interval with the number left out, and one when it works again. */
Test(log, limit_lets_one_line_through_per_interval)
{
	struct log_limit l = { 0 };
	uint64_t n = 99;
	int i, through = 0;

	cr_assert_eq(log_limit_ok(&l, &n), 0, "nothing failed yet");
	cr_assert_eq(log_limit_fail(&l, 1000, 10000, &n), 1);
	cr_assert_eq(n, 0);
	for (i = 1; i <= 500; i++)	/* 500 in the next 5 s */
		through += log_limit_fail(&l, 1000 + i * 10, 10000, &n);
	cr_assert_eq(through, 0);
	cr_assert_eq(log_limit_fail(&l, 11000, 10000, &n), 1);
	cr_assert_eq(n, 500, "left out: %llu", (unsigned long long)n);
	cr_assert_eq(log_limit_fail(&l, 11001, 10000, &n), 0);
	cr_assert_eq(log_limit_ok(&l, &n), 1);
	cr_assert_eq(n, 1);
	cr_assert_eq(log_limit_ok(&l, &n), 0, "said once");
	/* A failure after it worked again is let through at once. */
	cr_assert_eq(log_limit_fail(&l, 11002, 10000, &n), 1);
	cr_assert_eq(n, 0);
}
