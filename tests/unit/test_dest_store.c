/*
 * test_dest_store.c - unit tests of the second-store destination
 * (store://) delivering versions, which needs store_put_replica().
 *
 * PENDING: this file is named .c.pending so the Makefile does not build
 * it until store_put_replica() exists in store/; then rename it to
 * test_dest_store.c.  (check() and the URLs of store:// are tested in
 * test_dest.c already.)
 *
 * Each test gets a fresh temporary directory DIR with two stores:
 * DIR/store, the source, with bucket "src" (versioning Enabled), and
 * DIR/dst, the destination, with bucket "replica" (Enabled), "suspended"
 * and "plain".  A version is written at the source with store_put() and
 * handed to the destination as the engine would: its store_obj, an fd on
 * its blob, its link target and its xattrs.
 */
#include "replicator/dest.h"
#include "tests/unit/helpers.h"

#include <sys/xattr.h>

static char dir[64];
static char url[160];
static struct store *src, *dst;
static struct dest *d;
static char msg[512];

static void setup(void)
{
	char path[128];

	tmp_dir(dir);
	src = store_new(dir);
	bucket_new(src, "src", STORE_ENABLED);
	snprintf(path, sizeof(path), "%s/dst", dir);
	cr_assert_eq(store_open(path, STORE_CREATE, &dst), 0);
	bucket_new(dst, "replica", STORE_ENABLED);
	bucket_new(dst, "suspended", STORE_ENABLED);
	cr_assert_eq(store_bucket_set_versioning(dst, "suspended",
						 STORE_SUSPENDED), 0);
	bucket_new(dst, "plain", STORE_UNVERSIONED);
	snprintf(url, sizeof(url), "store://%s/dst/replica", dir);
	cr_assert_eq(dest_open(url, &d, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(d->ops->check(d, msg, sizeof(msg)), 0, "%s", msg);
}

static void teardown(void)
{
	dest_close(d);
	d = NULL;
	store_close(dst);
	store_close(src);
	dst = src = NULL;
	rm_rf(dir);
}

TestSuite(dest_store, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers -------------------------------------------------------- */

/* The version @vid of @key at the source, as the engine hands it over:
 * *v points into *obj; the caller closes v->fd (when not -1). */
static void source_version(const char *key, const char *vid,
			   struct repl_version *v, char *target,
			   size_t tsize)
{
	memset(v, 0, sizeof(*v));
	v->bucket = "src";
	v->key = key;
	v->fd = -1;
	cr_assert_eq(store_version_get(src, "src", key, vid, &v->obj), 0);
	if (v->obj.kind == STORE_FILE && v->obj.sha256[0])
		cr_assert_eq(store_blob_open(src, v->obj.sha256, &v->fd), 0);
	if (v->obj.kind == STORE_SYMLINK) {
		cr_assert_eq(store_readlink(src, "src", key, target, tsize),
			     0);
		v->link_target = target;
	}
}

/* Write @data as @key at the source and deliver it; 0 or put()'s error,
 * with the version ID in @vid. */
static int replicate_str(const char *key, const char *data, char *vid)
{
	struct repl_version v;
	char target[8];
	int ret;

	cr_assert_eq(put_str(src, "src", key, data, vid), 0);
	source_version(key, vid, &v, target, sizeof(target));
	msg[0] = '\0';
	ret = d->ops->put(d, &v, msg, sizeof(msg));
	if (v.fd >= 0)
		close(v.fd);
	return ret;
}

static int count_versions(void *arg, const struct store_obj *o)
{
	(void)o;
	(*(int *)arg)++;
	return 0;
}

static int nversions(const char *bucket, const char *key)
{
	int n = 0;

	cr_assert_eq(store_versions(dst, bucket, key, count_versions, &n), 0);
	return n;
}

/* ---- data versions -------------------------------------------------- */

Test(dest_store, file_keeps_id_content_and_metadata)
{
	struct store_obj s, r;
	char vid[STORE_VID_MAX + 1], buf[64];

	cr_assert_eq(replicate_str("a/cat.txt", "meow", vid), 0, "%s", msg);
	cr_assert_eq(store_version_get(src, "src", "a/cat.txt", vid, &s), 0);
	cr_assert_eq(store_version_get(dst, "replica", "a/cat.txt", vid, &r),
		     0, "the replica has the source's version ID");
	cr_assert_str_eq(r.sha256, s.sha256);
	cr_assert_eq(r.size, 4);
	cr_assert_eq(r.meta.mode, s.meta.mode);
	cr_assert_eq(r.meta.uid, s.meta.uid);
	cr_assert_eq(r.meta.gid, s.meta.gid);
	cr_assert_eq(r.meta.mtime_ns, s.meta.mtime_ns);
	cr_assert_eq(r.created_ns, s.created_ns);
	cr_assert_eq(read_cur(dst, "replica", "a/cat.txt", buf, sizeof(buf)),
		     0);
	cr_assert_str_eq(buf, "meow");
}

Test(dest_store, versions_in_order_newest_is_current)
{
	char v1[STORE_VID_MAX + 1], v2[STORE_VID_MAX + 1], buf[64];
	struct store_obj o;

	cr_assert_eq(replicate_str("k", "one", v1), 0, "%s", msg);
	cr_assert_eq(replicate_str("k", "two", v2), 0, "%s", msg);
	cr_assert_eq(nversions("replica", "k"), 2);
	cr_assert_eq(read_cur(dst, "replica", "k", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "two");
	cr_assert_eq(store_lookup(dst, "replica", "k", &o), 0);
	cr_assert_str_eq(o.version_id, v2);
}

Test(dest_store, delivered_twice_is_stored_once)
{
	char vid[STORE_VID_MAX + 1], target[8];
	struct repl_version v;
	int i;

	cr_assert_eq(put_str(src, "src", "twice", "same", vid), 0);
	source_version("twice", vid, &v, target, sizeof(target));
	for (i = 0; i < 2; i++)
		cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s",
			     msg);
	close(v.fd);
	cr_assert_eq(nversions("replica", "twice"), 1);
}

Test(dest_store, empty_file)
{
	char vid[STORE_VID_MAX + 1];
	struct store_obj o;

	cr_assert_eq(replicate_str("empty", "", vid), 0, "%s", msg);
	cr_assert_eq(store_version_get(dst, "replica", "empty", vid, &o), 0);
	cr_assert_eq(o.size, 0);
}

Test(dest_store, symlink_and_dir_marker)
{
	struct store_put p = { .kind = STORE_SYMLINK, .fd = -1 };
	char vid[STORE_VID_MAX + 1], target[64], buf[64];
	struct repl_version v;
	struct store_obj o;

	p.link_target = "../there";
	p.meta = meta_of(S_IFLNK | 0777);
	cr_assert_eq(store_put(src, "src", "l", &p, vid, NULL), 0);
	source_version("l", vid, &v, target, sizeof(target));
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(store_readlink(dst, "replica", "l", buf, sizeof(buf)),
		     0);
	cr_assert_str_eq(buf, "../there");

	p = (struct store_put){ .kind = STORE_DIR, .fd = -1 };
	p.meta = meta_of(S_IFDIR | 0700);
	cr_assert_eq(store_put(src, "src", "d/", &p, vid, NULL), 0);
	source_version("d/", vid, &v, target, sizeof(target));
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(store_lookup(dst, "replica", "d", &o), 0);
	cr_assert_eq(o.kind, STORE_DIR);
	cr_assert(o.has_marker);
	cr_assert_eq(o.meta.mode & 07777, 0700);
}

Test(dest_store, xattrs_are_kept)
{
	struct store_xattr xs[] = { { "user.color", "blue", 4 } };
	char vid[STORE_VID_MAX + 1], target[8], buf[16];
	struct repl_version v;

	cr_assert_eq(put_str(src, "src", "x", "x", vid), 0);
	source_version("x", vid, &v, target, sizeof(target));
	v.xattrs = xs;
	v.nxattrs = 1;
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s", msg);
	close(v.fd);
	cr_assert_eq(store_xattr_get(dst, "replica", "x", "user.color", buf,
				     sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "blue", 4), 0);
}

Test(dest_store, content_that_does_not_match_its_hash)
{
	char vid[STORE_VID_MAX + 1], target[8];
	struct repl_version v;
	int ret;

	cr_assert_eq(put_str(src, "src", "h", "right", vid), 0);
	source_version("h", vid, &v, target, sizeof(target));
	v.obj.sha256[0] = v.obj.sha256[0] == '0' ? '1' : '0';
	ret = d->ops->put(d, &v, msg, sizeof(msg));
	close(v.fd);
	cr_assert_eq(ret, -EBADMSG, "%d %s", ret, msg);
	cr_assert(dest_error_permanent(ret), "a damaged blob does not heal");
	cr_assert_eq(store_versions(dst, "replica", "h", count_versions,
				    &(int){ 0 }), -ENOENT);
}

Test(dest_store, put_many_one_bad_version_leaves_the_others_in)
{
	char vid[4][STORE_VID_MAX + 1], target[8], buf[64];
	char errs[4][512];
	const char *keys[4] = { "m/one", "m/two", "m/bad", "m/four" };
	struct repl_version v[4];
	int rets[4], i;

	cr_assert_not_null(d->ops->put_many);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(put_str(src, "src", keys[i], keys[i], vid[i]), 0);
		source_version(keys[i], vid[i], &v[i], target,
			       sizeof(target));
	}
	/* The third does not match its hash: -EBADMSG for it alone. */
	v[2].obj.sha256[0] = v[2].obj.sha256[0] == '0' ? '1' : '0';
	d->ops->put_many(d, v, 4, rets, &errs[0][0], sizeof(errs[0]));
	for (i = 0; i < 4; i++)
		close(v[i].fd);
	cr_assert_eq(rets[0], 0, "%s", errs[0]);
	cr_assert_eq(rets[1], 0, "%s", errs[1]);
	cr_assert_eq(rets[2], -EBADMSG, "%d %s", rets[2], errs[2]);
	cr_assert(strstr(errs[2], "m/bad"), "%s", errs[2]);
	cr_assert_eq(rets[3], 0, "%s", errs[3]);
	for (i = 0; i < 4; i++) {
		if (i == 2) {
			cr_assert_eq(store_versions(dst, "replica", keys[i],
						    count_versions,
						    &(int){ 0 }), -ENOENT);
			continue;
		}
		cr_assert_eq(nversions("replica", keys[i]), 1);
		cr_assert_eq(read_cur(dst, "replica", keys[i], buf,
				      sizeof(buf)), 0);
		cr_assert_str_eq(buf, keys[i]);
	}
	/* Again, with a delete marker among them: delivered twice, the
	 * data versions are stored once. */
	cr_assert_eq(store_delete(src, "src", "m/one", vid[0]), 0);
	source_version("m/one", vid[0], &v[0], target, sizeof(target));
	source_version("m/two", vid[1], &v[1], target, sizeof(target));
	d->ops->put_many(d, v, 2, rets, &errs[0][0], sizeof(errs[0]));
	if (v[1].fd >= 0)
		close(v[1].fd);
	cr_assert_eq(rets[0], 0, "%s", errs[0]);
	cr_assert_eq(rets[1], 0, "%s", errs[1]);
	cr_assert_eq(nversions("replica", "m/one"), 2);
	cr_assert_eq(nversions("replica", "m/two"), 1);
	cr_assert_eq(read_cur(dst, "replica", "m/one", buf, sizeof(buf)),
		     -ENOENT);
}

Test(dest_store, put_many_to_a_bucket_not_enabled)
{
	char vid[STORE_VID_MAX + 1], target[8], errs[2][512];
	struct repl_version v[2];
	struct dest *sd;
	char surl[192];
	int rets[2];

	snprintf(surl, sizeof(surl), "store://%s/dst/suspended", dir);
	cr_assert_eq(dest_open(surl, &sd, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(put_str(src, "src", "s1", "x", vid), 0);
	source_version("s1", vid, &v[0], target, sizeof(target));
	cr_assert_eq(put_str(src, "src", "s2", "y", vid), 0);
	source_version("s2", vid, &v[1], target, sizeof(target));
	sd->ops->put_many(sd, v, 2, rets, &errs[0][0], sizeof(errs[0]));
	close(v[0].fd);
	close(v[1].fd);
	dest_close(sd);
	cr_assert_eq(rets[0], -EINVAL, "%s", errs[0]);
	cr_assert_eq(rets[1], -EINVAL, "%s", errs[1]);
	cr_assert(strstr(errs[1], "not Enabled"), "%s", errs[1]);
	cr_assert(dest_error_permanent(rets[0]));
}

/* ---- folders above a key -------------------------------------------- */

/* Folder marker @key at the source, mode @mode, owner 1000:100; its
 * version ID into @vid. */
static void src_marker(const char *key, unsigned mode, char *vid)
{
	struct store_put p = { .kind = STORE_DIR, .fd = -1 };

	p.meta = meta_of(S_IFDIR | mode);
	cr_assert_eq(store_put(src, "src", key, &p, vid, NULL), 0, "%s", key);
}

/* The replica's folder @path has a marker of the source's: version
 * @vid, a replica, mode @mode, owner 1000:100. */
static void replica_folder_is(const char *path, const char *vid,
			      unsigned mode)
{
	char key[64];
	struct store_obj o;

	cr_assert_eq(store_lookup(dst, "replica", path, &o), 0, "%s", path);
	cr_assert_eq(o.kind, STORE_DIR);
	cr_assert(o.has_marker, "%s has no marker in the replica", path);
	cr_assert_str_eq(o.version_id, vid, "%s", path);
	cr_assert_eq(o.meta.mode & 07777, mode, "%s: mode %o", path,
		     o.meta.mode & 07777);
	cr_assert_eq(o.meta.uid, 1000);
	cr_assert_eq(o.meta.gid, 100);
	snprintf(key, sizeof(key), "%s/", path);
	cr_assert_eq(store_version_get(dst, "replica", key, vid, &o), 0);
	cr_assert(o.is_replica);
}

/*
 * A rule with a prefix filter sends "home/alice/inbox/m1.txt" and not the
 * marker of "home/alice/", alice's 0700 folder: the replica's folder had
 * no marker, and its mount showed it 0755, open to all.  With the source
 * at hand (dest_open_home()), the marker of each parent folder the
 * replica lacks goes in first, the source's version; one the source has
 * no marker of either stays without.  By put() and by put_many().
 */
Test(dest_store, parents_get_the_sources_folder_markers)
{
	char alice[STORE_VID_MAX + 1], inbox[STORE_VID_MAX + 1];
	char carol[STORE_VID_MAX + 1], vid[STORE_VID_MAX + 1];
	char target[8], errs[3][512];
	const char *keys[3] = { "home/carol/x", "home/carol/y", "home/carol" };
	struct repl_version v, vs[3];
	struct store_obj o;
	int rets[3], i;

	dest_close(d);
	cr_assert_eq(dest_open_home(url, src, &d, msg, sizeof(msg)), 0, "%s",
		     msg);
	src_marker("home/alice/", 0700, alice);
	src_marker("home/alice/inbox/", 0755, inbox);
	cr_assert_eq(replicate_str("home/alice/inbox/m1.txt", "m1", vid), 0,
		     "%s", msg);
	replica_folder_is("home/alice", alice, 0700);
	replica_folder_is("home/alice/inbox", inbox, 0755);
	cr_assert_eq(store_lookup(dst, "replica", "home", &o), 0);
	cr_assert(!o.has_marker, "a marker the source does not have");

	/* The marker's own delivery finds it there: stored once. */
	source_version("home/alice/inbox/", inbox, &v, target, sizeof(target));
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(nversions("replica", "home/alice/inbox/"), 1);

	/* put_many(), with a file at the top of the folder's name (a key
	 * "home/carol" beside the folder "home/carol/"). */
	src_marker("home/carol/", 0700, carol);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(put_str(src, "src", keys[i], keys[i], vid), 0);
		source_version(keys[i], vid, &vs[i], target, sizeof(target));
	}
	d->ops->put_many(d, vs, 3, rets, &errs[0][0], sizeof(errs[0]));
	for (i = 0; i < 3; i++) {
		close(vs[i].fd);
		cr_assert_eq(rets[i], 0, "%s", errs[i]);
	}
	cr_assert_eq(store_version_get(dst, "replica", "home/carol/", carol,
				       &o), 0);
	cr_assert_eq(o.meta.mode & 07777, 0700);
	cr_assert_eq(nversions("replica", "home/carol/"), 1);
}

/* Opened without the source (a check), a destination adds nothing. */
Test(dest_store, without_the_source_no_marker_is_added)
{
	char vid[STORE_VID_MAX + 1];
	struct store_obj o;

	src_marker("p/", 0700, vid);
	cr_assert_eq(replicate_str("p/f", "f", vid), 0, "%s", msg);
	cr_assert_eq(store_lookup(dst, "replica", "p", &o), 0);
	cr_assert(!o.has_marker);
}

/* ---- delete markers ------------------------------------------------- */

Test(dest_store, delete_marker_keeps_its_id)
{
	char vid[STORE_VID_MAX + 1], dm[STORE_VID_MAX + 1], target[8];
	struct repl_version v;
	struct store_obj o;
	int i;

	cr_assert_eq(replicate_str("gone", "x", vid), 0, "%s", msg);
	cr_assert_eq(store_delete(src, "src", "gone", dm), 0);
	source_version("gone", dm, &v, target, sizeof(target));
	cr_assert_eq(v.obj.kind, STORE_DELETE_MARKER);
	for (i = 0; i < 2; i++)
		cr_assert_eq(d->ops->delete_marker(d, &v, msg, sizeof(msg)),
			     0, "%s", msg);
	cr_assert_eq(store_lookup(dst, "replica", "gone", &o), -ENOENT);
	cr_assert_eq(store_version_get(dst, "replica", "gone", dm, &o), 0);
	cr_assert_eq(o.kind, STORE_DELETE_MARKER);
	cr_assert_eq(nversions("replica", "gone"), 2, "data + one marker");
	/* The data version is still there, as in S3. */
	cr_assert_eq(store_version_get(dst, "replica", "gone", vid, &o), 0);
}

/* ---- refusals ------------------------------------------------------- */

/* Deliver a fresh version of "k" to bucket @bucket; put()'s result. */
static int put_to(const char *bucket)
{
	char vid[STORE_VID_MAX + 1], target[8], u[192];
	struct repl_version v;
	struct dest *o;
	int ret;

	snprintf(u, sizeof(u), "store://%s/dst/%s", dir, bucket);
	cr_assert_eq(dest_open(u, &o, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(put_str(src, "src", "k", "data", vid), 0);
	source_version("k", vid, &v, target, sizeof(target));
	msg[0] = '\0';
	ret = o->ops->put(o, &v, msg, sizeof(msg));
	close(v.fd);
	dest_close(o);
	return ret;
}

Test(dest_store, bucket_not_enabled_or_missing)
{
	char want[256];

	cr_assert_eq(put_to("suspended"), -EINVAL);
	snprintf(want, sizeof(want),
		 "store://%s/dst/suspended: versioning of bucket suspended "
		 "is not Enabled", dir);
	cr_assert_str_eq(msg, want);
	cr_assert_eq(put_to("plain"), -EINVAL);
	cr_assert_not_null(strstr(msg, "is not Enabled"), "%s", msg);
	cr_assert_eq(put_to("nobucket"), -ENOENT);
	cr_assert_not_null(strstr(msg, "does not exist"), "%s", msg);
	cr_assert(dest_error_permanent(-ENOENT));
}

/* A source blob the disk damaged is not linked into the replica (same
 * file system) as the version: it was, and COMPLETED, and the replica's
 * check --deep then failed.  No retry heals it. */
Test(dest_store, a_damaged_source_blob_is_refused_for_good)
{
	struct repl_version v;
	char vid[STORE_VID_MAX + 1], target[8], path[4096];
	struct store_obj o;
	int fd, ret;

	cr_assert_eq(put_str(src, "src", "rot", "intact", vid), 0);
	source_version("rot", vid, &v, target, sizeof(target));
	v.fd_is_blob = 1;	/* the same file system: a hard link */
	store_blob_path(src, v.obj.sha256, path, sizeof(path));
	fd = open(path, O_WRONLY);
	if (fd < 0) {	/* blobs are read-only: as root, or by chmod */
		cr_assert_eq(chmod(path, 0644), 0);
		fd = open(path, O_WRONLY);
	}
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "X", 1, 0), 1);
	close(fd);
	msg[0] = '\0';
	ret = d->ops->put(d, &v, msg, sizeof(msg));
	close(v.fd);
	cr_assert_eq(ret, -EBADMSG, "%s", msg);
	cr_assert(dest_error_permanent(ret));
	cr_assert_eq(store_lookup(dst, "replica", "rot", &o), -ENOENT);
}
