/*
 * bucket.c - buckets: one row of the buckets table each, holding the
 * versioning state and the metadata a mount shows for the bucket's
 * directory (and for directories that have no marker object).
 *
 * Versioning moves as in S3:
 *
 *   Unversioned --set Enabled--> Enabled <--set Suspended/Enabled--> Suspended
 *   Unversioned --set Suspended--> Suspended
 *
 * and never back to Unversioned (store_bucket_set_versioning() refuses
 * with -EINVAL).
 */
#include "store/store.h"
#include "store/store_i.h"
#include "store/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void bucket_meta_read(sqlite3_stmt *s, int col, struct store_meta *m)
{
	m->mode = S_IFDIR | (sqlite3_column_int(s, col) & 07777);
	m->uid = sqlite3_column_int64(s, col + 1);
	m->gid = sqlite3_column_int64(s, col + 2);
	m->mtime_ns = sqlite3_column_int64(s, col + 3);
	m->ctime_ns = sqlite3_column_int64(s, col + 4);
	m->atime_ns = sqlite3_column_int64(s, col + 5);	/* NULL: 0 */
}

int bucket_row_get(struct conn *c, const char *name, struct bucket_row *b)
{
	sqlite3_stmt *s = stmt_get(c, ST_BUCKET_GET);
	int err;

	if (!s)
		return -EIO;
	bind_text(s, 1, name, -1);
	err = stmt_step(c, s, "get bucket");
	if (err == 1) {
		b->id = sqlite3_column_int64(s, 0);
		b->versioning = sqlite3_column_int(s, 1);
		bucket_meta_read(s, 2, &b->meta);
		b->repl = sqlite3_column_int(s, 8);
		err = 0;
	} else if (err == 0) {
		err = -ENOENT;
	}
	stmt_done(s);
	return err;
}

int store_bucket_create(struct store *st, const char *name,
			enum store_versioning versioning,
			const struct store_meta *meta)
{
	const char *why = NULL;
	struct conn *c;
	sqlite3_stmt *s;
	int64_t now = now_ns();
	int err;

	err = store_bucket_name_check(name, &why);
	if (err) {
		log_warn("store: bucket name \"%s\" refused: %s", name, why);
		return err;
	}
	if (versioning != STORE_UNVERSIONED && versioning != STORE_ENABLED &&
	    versioning != STORE_SUSPENDED)
		return -EINVAL;
	err = conn_get(st, &c);
	if (err)
		return err;
	s = stmt_get(c, ST_BUCKET_INSERT);
	if (!s)
		return -EIO;
	bind_text(s, 1, name, -1);
	sqlite3_bind_int(s, 2, versioning);
	sqlite3_bind_int(s, 3, meta->mode & 07777);
	sqlite3_bind_int64(s, 4, meta->uid);
	sqlite3_bind_int64(s, 5, meta->gid);
	sqlite3_bind_int64(s, 6, meta->mtime_ns ? meta->mtime_ns : now);
	sqlite3_bind_int64(s, 7, now);
	sqlite3_bind_int64(s, 8, now);
	err = stmt_run(c, s, "create bucket");
	if (!err)
		atomic_fetch_add(&st->generation, 1);
	return err;
}

int store_bucket_delete(struct store *st, const char *name)
{
	struct bucket_row b;
	struct conn *c;
	sqlite3_stmt *s;
	int err;

	err = conn_get(st, &c);
	if (err)
		return err;
	err = tx_begin(c);
	if (err)
		return err;
	err = bucket_row_get(c, name, &b);
	if (err)
		goto out;
	s = stmt_get(c, ST_BUCKET_HAS_OBJECTS);
	if (!s) {
		err = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, b.id);
	err = stmt_step(c, s, "bucket has objects");
	stmt_done(s);
	if (err) {
		err = err < 0 ? err : -ENOTEMPTY;
		goto out;
	}
	err = repl_bucket_forget(c, b.id);
	if (err)
		goto out;
	s = stmt_get(c, ST_BUCKET_DELETE);
	if (!s) {
		err = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, b.id);
	err = stmt_run(c, s, "delete bucket");
	if (!err)
		err = tx_commit(st, c);
out:
	if (err)
		tx_rollback(c);
	return err;
}

int store_bucket_get(struct store *st, const char *name,
		     struct store_meta *meta,
		     enum store_versioning *versioning)
{
	struct bucket_row b;
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (err)
		return err;
	err = bucket_row_get(c, name, &b);
	if (err)
		return err;
	if (meta)
		*meta = b.meta;
	if (versioning)
		*versioning = b.versioning;
	return 0;
}

int store_bucket_set_versioning(struct store *st, const char *name,
				enum store_versioning versioning)
{
	struct bucket_row b;
	struct conn *c;
	sqlite3_stmt *s;
	int err;

	if (versioning != STORE_UNVERSIONED && versioning != STORE_ENABLED &&
	    versioning != STORE_SUSPENDED)
		return -EINVAL;
	err = conn_get(st, &c);
	if (err)
		return err;
	err = tx_begin(c);
	if (err)
		return err;
	err = bucket_row_get(c, name, &b);
	if (err)
		goto out;
	if (versioning == b.versioning)
		goto out;	/* nothing to do; commits nothing */
	if (versioning == STORE_UNVERSIONED) {
		log_warn("store: bucket %s: a versioned bucket cannot become "
			 "unversioned again; suspend it instead", name);
		err = -EINVAL;
		goto out;
	}
	if (versioning == STORE_SUSPENDED) {
		/* As S3 (InvalidBucketState): a replication configuration,
		 * even of Disabled rules only, needs versions. */
		err = stmt_of_sql(c, "SELECT 1 FROM repl_config "
				     "WHERE bucket = ?", &s);
		if (err)
			goto out;
		sqlite3_bind_int64(s, 1, b.id);
		err = stmt_step(c, s, "replication configuration");
		stmt_done(s);
		if (err > 0)
			err = -EBUSY;	/* there is one */
		if (err)
			goto out;
	}
	s = stmt_get(c, ST_BUCKET_SET_VERSIONING);
	if (!s) {
		err = -EIO;
		goto out;
	}
	sqlite3_bind_int(s, 1, versioning);
	sqlite3_bind_int64(s, 2, b.id);
	err = stmt_run(c, s, "set versioning");
	if (!err)
		err = tx_commit(st, c);
out:
	tx_rollback(c);
	return err;
}

int store_bucket_set_meta(struct store *st, const char *name,
			  const struct store_meta *meta, unsigned mask)
{
	return bucket_set_meta_xattr(st, name, meta, mask, NULL, 0);
}

int bucket_set_meta_xattr(struct store *st, const char *name,
			  const struct store_meta *meta, unsigned mask,
			  const struct store_xattr *x, size_t nx)
{
	struct bucket_row b;
	struct conn *c;
	sqlite3_stmt *s;
	size_t i;
	int err;

	err = conn_get(st, &c);
	if (err)
		return err;
	err = tx_begin(c);
	if (err)
		return err;
	err = bucket_row_get(c, name, &b);
	if (err)
		goto out;
	if (mask & STORE_SET_MODE)
		b.meta.mode = meta->mode;
	if (mask & STORE_SET_UID)
		b.meta.uid = meta->uid;
	if (mask & STORE_SET_GID)
		b.meta.gid = meta->gid;
	if (mask & STORE_SET_MTIME)
		b.meta.mtime_ns = meta->mtime_ns;
	if (mask & STORE_SET_ATIME)
		b.meta.atime_ns = meta->atime_ns;
	s = stmt_get(c, ST_BUCKET_SET_META);
	if (!s) {
		err = -EIO;
		goto out;
	}
	sqlite3_bind_int(s, 1, b.meta.mode & 07777);
	sqlite3_bind_int64(s, 2, b.meta.uid);
	sqlite3_bind_int64(s, 3, b.meta.gid);
	sqlite3_bind_int64(s, 4, b.meta.mtime_ns);
	sqlite3_bind_int64(s, 5, now_ns());
	bind_atime(s, 6, b.meta.atime_ns);
	sqlite3_bind_int64(s, 7, b.id);
	err = stmt_run(c, s, "set bucket meta");
	for (i = 0; !err && i < nx; i++)
		err = xattr_write(c, 1, b.id, &x[i]);
	if (!err)
		err = tx_commit(st, c);
out:
	tx_rollback(c);
	return err;
}

int store_bucket_list(struct store *st, store_bucket_cb cb, void *arg)
{
	char name[64] = "";
	enum store_versioning v = STORE_UNVERSIONED;
	struct store_meta meta;
	struct conn *c;
	sqlite3_stmt *s;
	int err;

	err = conn_get(st, &c);
	if (err)
		return err;
	/* One seek per bucket and no statement open during @cb, so @cb may
	 * call the store. */
	for (;;) {
		s = stmt_get(c, ST_BUCKET_NEXT);
		if (!s)
			return -EIO;
		bind_text(s, 1, name, -1);
		err = stmt_step(c, s, "list buckets");
		if (err == 1) {
			snprintf(name, sizeof(name), "%s",
				 (const char *)sqlite3_column_text(s, 0));
			v = sqlite3_column_int(s, 1);
			bucket_meta_read(s, 2, &meta);
		}
		stmt_done(s);
		if (err <= 0)
			return err;
		err = cb(arg, name, &meta, v);
		if (err)
			return err;
	}
}
