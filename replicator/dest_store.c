/*
 * dest_store.c - store:///PATH/TO/STORE/BUCKET: a bucket of a second
 * replicafs store, for a second mount, another disk, a same-region copy.
 *
 * The last component of the path is the bucket, the rest the store's
 * directory.  Each version goes in with store_put_replica(), which keeps
 * the source's version ID, kind, metadata, creation time and user xattrs
 * and marks it as a replica (status REPLICA, never replicated again).  The
 * store does the hard parts: it hashes the content against the source's
 * SHA-256 (a mismatch is -EIO), and a version ID the key already has is
 * not written twice, so a version delivered again after a crash is stored
 * once.  A second `replicafs mount` of that store serves the replica.
 *
 * The store is opened by the first call that needs it (check(), put() or
 * delete_marker()), without STORE_CREATE: a missing store is an error the
 * user must fix, never a new empty store somewhere by a typo.  A failed
 * open is tried again by the next call, so a disk that comes back later
 * heals.  struct store is safe for any number of threads, so after the
 * open every worker uses the one handle.
 *
 * As S3 asks of a replication destination, the bucket must exist with
 * versioning Enabled: check() says so clearly, and put() explains an
 * -ENOENT or -EINVAL of the store the same way.
 *
 * Folders above a key.  A folder's owner, mode and ACLs live on its
 * marker ("a/b/"), a key of its own, which a rule's prefix filter may not
 * send: "home/alice/inbox/m1.txt" goes, "home/alice/" does not.  A folder
 * without a marker is shown by a mount with its bucket's owner and mode
 * 0755, so the replica's home/alice opened to every user what alice's
 * 0700 folder hides at the source.  So before a data version goes in
 * (ds_parents()), each parent folder that has no live marker in the
 * replica gets the source's current marker, read from the engine's store
 * (the home given to open()), stored as any replica: with the source's
 * version ID, metadata and xattrs, never queued (no chaining), and stored
 * once however often it is sent, since a version ID the key has is not
 * written again (the marker's own delivery, if a rule sends it, then
 * finds it there, and a later chmod at the source still reaches it).  A
 * folder the source has no marker of either stays as it is, shown as the
 * source shows it.
 */
#include "replicator/dest.h"
#include "replicator/dest_i.h"
#include "store/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STORE_USAGE "store:///PATH/TO/STORE/BUCKET"

struct dest_store {
	struct dest d;		/* first: the table */
	char *url;		/* as given, for messages */
	char *dir;		/* the store's directory */
	char *bucket;		/* the bucket in it */
	struct store *home;	/* the source store (ds_parents()); not
				 * owned; NULL when opened for check() */
	pthread_mutex_t lock;	/* protects st while it is opened */
	struct store *st;	/* protected by lock; NULL until opened,
				 * then fixed until close() */
};

static struct dest_store *to_store(struct dest *d)
{
	return (struct dest_store *)d;
}

/* The store, opened now if it is not yet: *out is owned by @ds. */
static int ds_store(struct dest_store *ds, struct store **out, char *err,
		    size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&ds->lock);
	if (!ds->st)
		ret = store_open(ds->dir, 0, &ds->st);
	*out = ds->st;
	pthread_mutex_unlock(&ds->lock);
	if (ret)
		return dest_fail(err, errlen, ret,
				 "%s: cannot open the store %s: %s", ds->url,
				 ds->dir, strerror(-ret));
	return 0;
}

/*
 * Whether the bucket can take replicas: 0, or -ENOENT / -EINVAL / another
 * negative errno with the sentence the user needs.
 */
static int bucket_ready(struct dest_store *ds, struct store *st, char *err,
			size_t errlen)
{
	enum store_versioning ver;
	int ret;

	ret = store_bucket_get(st, ds->bucket, NULL, &ver);
	if (ret == -ENOENT)
		return dest_fail(err, errlen, ret,
				 "%s: bucket %s does not exist in the store %s",
				 ds->url, ds->bucket, ds->dir);
	if (ret)
		return dest_fail(err, errlen, ret, "%s: bucket %s: %s",
				 ds->url, ds->bucket, strerror(-ret));
	if (ver != STORE_ENABLED)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: versioning of bucket %s is not Enabled",
				 ds->url, ds->bucket);
	return 0;
}

static int ds_check(struct dest *d, char *err, size_t errlen)
{
	struct dest_store *ds = to_store(d);
	struct store *st;
	int ret;

	ret = ds_store(ds, &st, err, errlen);
	if (ret)
		return ret;
	return bucket_ready(ds, st, err, errlen);
}

/* The store_replica of @v. */
static void replica_of(const struct repl_version *v, struct store_replica *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = v->obj.kind;
	r->version_id = v->obj.version_id;
	r->fd = v->obj.kind == STORE_FILE ? v->fd : -1;
	r->sha256 = v->obj.sha256[0] ? v->obj.sha256 : NULL;
	r->fd_is_blob = v->fd_is_blob;
	r->link_target = v->link_target;
	r->meta = v->obj.meta;
	r->created_ns = v->obj.created_ns;
	r->xattrs = v->xattrs;
	r->nxattrs = v->nxattrs;
}

/* Why version @v did not go in (@ret): the sentence for the user. */
static int ds_why(struct dest_store *ds, struct store *st,
		  const struct repl_version *v, int ret, char *err,
		  size_t errlen)
{
	int why;

	/* The likely causes of these two have a better sentence. */
	if (ret == -ENOENT || ret == -EINVAL) {
		why = bucket_ready(ds, st, err, errlen);
		if (why)
			return why;
	}
	return dest_fail(err, errlen, ret, "%s: %s: version %s: %s", ds->url,
			 v->key, v->obj.version_id, strerror(-ret));
}

/* What a version must be to be stored: 0, or the error. */
static int ds_check_version(struct dest_store *ds,
			    const struct repl_version *v, char *err,
			    size_t errlen)
{
	enum store_kind k = v->obj.kind;
	int ret;

	if (k != STORE_FILE && k != STORE_SYMLINK && k != STORE_DIR &&
	    k != STORE_DELETE_MARKER)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: version %s of kind %d cannot be "
				 "replicated", ds->url, v->key,
				 v->obj.version_id, (int)k);
	if (!v->obj.version_id[0])
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: a version without an ID cannot be "
				 "replicated", ds->url, v->key);
	ret = store_key_check(v->key);
	if (ret)
		return dest_fail(err, errlen, ret, "%s: key '%s' refused: %s",
				 ds->url, v->key, strerror(-ret));
	return 0;
}

/*
 * Folder @path[0..@len) of the source bucket @bucket, a parent of a
 * version on its way: when the replica has no live marker of it, the
 * source's current marker goes in first.  0, or a negative errno with a
 * sentence (the version is then retried, never stored without it).
 */
static int ds_parent(struct dest_store *ds, struct store *st,
		     const char *bucket, const char *path, size_t len,
		     char *err, size_t errlen)
{
	char key[STORE_KEY_MAX + 1];
	struct store_xattr *x = NULL;
	struct store_replica r;
	struct store_obj o, m;
	size_t nx = 0;
	int ret;

	if (len + 1 > STORE_KEY_MAX)
		return 0;	/* too long to have a marker */
	memcpy(key, path, len);
	key[len] = '/';
	key[len + 1] = '\0';
	ret = store_version_at(st, ds->bucket, key, INT64_MAX, &o);
	if (!ret && o.kind == STORE_DIR && o.is_latest)
		return 0;	/* its own, sent or made there */
	if (ret && ret != -ENOENT)
		return dest_fail(err, errlen, ret, "%s: %s: %s", ds->url, key,
				 strerror(-ret));
	ret = dest_home_folder(ds->home, bucket, path, len, &m, &x, &nx,
			       ds->url, err, errlen);
	if (ret <= 0)
		return ret;
	/* That version there, but not live (a delete marker the source
	 * took back with an undelete): its own history, left alone. */
	if (!store_version_get(st, ds->bucket, key, m.version_id, &o)) {
		free(x);
		return 0;
	}
	memset(&r, 0, sizeof(r));
	r.kind = STORE_DIR;
	r.version_id = m.version_id;
	r.fd = -1;
	r.meta = m.meta;
	r.created_ns = m.created_ns;
	r.xattrs = x;
	r.nxattrs = nx;
	ret = store_put_replica(st, ds->bucket, key, &r);
	free(x);
	if (ret)
		return dest_fail(err, errlen, ret,
				 "%s: %s: cannot store the source's marker of "
				 "the folder (version %s): %s", ds->url, key,
				 m.version_id, strerror(-ret));
	log_debug("%s: %s: the source's folder marker (version %s) stored",
		  ds->url, key, m.version_id);
	return 0;
}

/* The length of the folder that holds @key ("a/b" of "a/b/c" and of the
 * marker "a/b/c/"); 0 at the top. */
static size_t parent_len(const char *key)
{
	size_t len = strlen(key);

	if (len && key[len - 1] == '/')
		len--;
	while (len && key[len - 1] != '/')
		len--;
	return len ? len - 1 : 0;
}

/* Whether keys @a and @b are in the same folder. */
static int same_folder(const char *a, const char *b)
{
	size_t len = parent_len(a);

	return parent_len(b) == len && !memcmp(a, b, len);
}

/*
 * Before data version @v goes in: the source's markers of its parent
 * folders that the replica has no live marker of, from the top down
 * (see the top of this file).  Delete markers need none: they make
 * nothing readable.  0, or a negative errno with a sentence.
 */
static int ds_parents(struct dest_store *ds, struct store *st,
		      const struct repl_version *v, char *err, size_t errlen)
{
	size_t len = parent_len(v->key), i;
	int ret;

	if (!ds->home || v->obj.kind == STORE_DELETE_MARKER)
		return 0;
	for (i = 1; i <= len; i++) {
		if (v->key[i] != '/')
			continue;
		ret = ds_parent(ds, st, v->bucket, v->key, i, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* Hand @v to store_put_replica(); put() and delete_marker() differ only
 * in the kinds they take. */
static int ds_deliver(struct dest_store *ds, const struct repl_version *v,
		      char *err, size_t errlen)
{
	struct store_replica r;
	struct store *st;
	int ret;

	ret = ds_check_version(ds, v, err, errlen);
	if (!ret)
		ret = ds_store(ds, &st, err, errlen);
	if (!ret)
		ret = ds_parents(ds, st, v, err, errlen);
	if (ret)
		return ret;
	replica_of(v, &r);
	ret = store_put_replica(st, ds->bucket, v->key, &r);
	if (ret)
		return ds_why(ds, st, v, ret, err, errlen);
	log_debug("%s: %s: version %s stored", ds->url, v->key,
		  v->obj.version_id);
	return 0;
}

/* One transaction for the lot (store_put_replicas()). */
static void ds_put_many(struct dest *d, const struct repl_version *v,
			size_t n, int *rets, char *errs, size_t errlen)
{
	struct dest_store *ds = to_store(d);
	struct store_replica *r;
	const char **keys;
	size_t i, k = 0, *idx;
	struct store *st;
	const char *done = NULL;	/* a key whose parents are there */
	int *got, ret;

	ret = ds_store(ds, &st, errs, errlen);
	r = calloc(n, sizeof(*r));
	keys = calloc(n, sizeof(*keys));
	idx = calloc(n, sizeof(*idx));
	got = calloc(n, sizeof(*got));
	if (!ret && (!r || !keys || !idx || !got))
		ret = dest_fail(errs, errlen, -ENOMEM, "%s: out of memory",
				ds->url);
	for (i = 0; i < n; i++) {
		if (ret) {
			rets[i] = ret;
			if (i)
				memcpy(errs + i * errlen, errs, errlen);
			continue;
		}
		rets[i] = ds_check_version(ds, &v[i], errs + i * errlen,
					   errlen);
		/* A claim's keys are often of one folder: its parents are
		 * looked at once. */
		if (!rets[i] && !(done && same_folder(done, v[i].key))) {
			rets[i] = ds_parents(ds, st, &v[i], errs + i * errlen,
					     errlen);
			if (!rets[i] && v[i].obj.kind != STORE_DELETE_MARKER)
				done = v[i].key;
		}
		if (rets[i])
			continue;
		replica_of(&v[i], &r[k]);
		keys[k] = v[i].key;
		idx[k++] = i;
	}
	if (!ret && k) {
		ret = store_put_replicas(st, ds->bucket, keys, r, k, got);
		for (i = 0; i < k; i++) {
			size_t j = idx[i];

			rets[j] = ret ? ret : got[i];
			if (rets[j])
				rets[j] = ds_why(ds, st, &v[j], rets[j],
						 errs + j * errlen, errlen);
			else
				log_debug("%s: %s: version %s stored", ds->url,
					  v[j].key, v[j].obj.version_id);
		}
	}
	free(r);
	free(keys);
	free(idx);
	free(got);
}

static int ds_put(struct dest *d, const struct repl_version *v, char *err,
		  size_t errlen)
{
	struct dest_store *ds = to_store(d);
	enum store_kind k = v->obj.kind;

	if (k != STORE_FILE && k != STORE_SYMLINK && k != STORE_DIR)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: version %s of kind %d is not data",
				 ds->url, v->key, v->obj.version_id, (int)k);
	return ds_deliver(ds, v, err, errlen);
}

static int ds_delete_marker(struct dest *d, const struct repl_version *v,
			    char *err, size_t errlen)
{
	struct dest_store *ds = to_store(d);

	if (v->obj.kind != STORE_DELETE_MARKER)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: version %s is not a delete marker",
				 ds->url, v->key, v->obj.version_id);
	return ds_deliver(ds, v, err, errlen);
}

/*
 * What store_put_replica() wrote is safe from a killed process when it
 * returns; one syncfs(2) of the store's file system per claim makes the
 * claim's replicas (blobs and catalog) safe from a power loss too, before
 * the engine records them COMPLETED.
 */
static int ds_sync(struct dest *d, char *err, size_t errlen)
{
	struct dest_store *ds = to_store(d);

	return dest_syncfs(ds->dir, ds->url, err, errlen);
}

static void ds_close(struct dest *d)
{
	struct dest_store *ds = to_store(d);

	if (!ds)
		return;
	if (ds->st)
		store_close(ds->st);
	pthread_mutex_destroy(&ds->lock);
	free(ds->url);
	free(ds->dir);
	free(ds->bucket);
	free(ds);
}

/*
 * store:///PATH/TO/STORE/BUCKET, taken as written (no %-decoding): the
 * caller frees *out with ds_close().  Checks the bucket's name, not that
 * the store or the bucket exist: check() does.
 */
static int ds_open(const char *url, struct store *home, struct dest **out,
		   char *err, size_t errlen)
{
	struct dest_store *ds;
	const char *path, *why = NULL;
	char *slash;
	int ret;

	*out = NULL;
	ret = dest_url_path(url, "store", STORE_USAGE, &path, err, errlen);
	if (ret)
		return ret;
	ds = calloc(1, sizeof(*ds));
	if (!ds)
		return dest_fail(err, errlen, -ENOMEM, "%s: out of memory",
				 url);
	ds->d.ops = &dest_store_ops;
	ds->home = home;
	pthread_mutex_init(&ds->lock, NULL);
	ds->url = strdup(url);
	ds->dir = dest_path_dup(path);
	if (!ds->url || !ds->dir) {
		ret = dest_fail(err, errlen, -ENOMEM, "%s: out of memory", url);
		goto fail;
	}
	slash = strrchr(ds->dir, '/');
	if (slash == ds->dir) {	/* "/BUCKET" or "/": no store named */
		ret = dest_fail(err, errlen, -EINVAL,
				"%s: names no store and bucket (%s)", url,
				STORE_USAGE);
		goto fail;
	}
	ds->bucket = strdup(slash + 1);
	if (!ds->bucket) {
		ret = dest_fail(err, errlen, -ENOMEM, "%s: out of memory", url);
		goto fail;
	}
	*slash = '\0';
	if (store_bucket_name_check(ds->bucket, &why)) {
		ret = dest_fail(err, errlen, -EINVAL,
				"%s: '%s' is not a bucket name: %s", url,
				ds->bucket, why ? why : "see S3's rules");
		goto fail;
	}
	*out = &ds->d;
	return 0;
fail:
	ds_close(&ds->d);
	return ret;
}

const struct dest_ops dest_store_ops = {
	.scheme = "store",
	.open = ds_open,
	.check = ds_check,
	.put = ds_put,
	.delete_marker = ds_delete_marker,
	.put_many = ds_put_many,
	.sync = ds_sync,
	.close = ds_close,
};
