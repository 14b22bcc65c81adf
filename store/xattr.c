/*
 * xattr.c - extended attributes, kept per version in the xattrs table
 * (removed with their version by ON DELETE CASCADE).  They belong to the
 * current version of a key; a new version copies them when the writer
 * asks (put->keep_xattrs) and a rename always does (object.c).  The key
 * "" stands for the bucket itself, whose own are in bucket_xattrs.  Limits
 * are Linux's: names up to 255 bytes (-ERANGE), values up to 64 KiB
 * (-E2BIG).  A change of an xattr is a change of metadata: the version's
 * (or bucket's) ctime becomes now, and no new version is made.
 */
#include "store/store.h"
#include "store/store_i.h"
#include "store/log.h"

#include <errno.h>
#include <string.h>
#include <sys/xattr.h>

#define XATTR_NAME_MAX_LEN 255
#define XATTR_VALUE_MAX (64 * 1024)

/* Whose xattrs a call is about: version @id, or with @bucket set the
 * bucket of row @id. */
struct owner {
	int64_t id;
	int bucket;
};

/* The statement @id (one of version xattrs) for owner @o. */
static sqlite3_stmt *ostmt(struct conn *c, const struct owner *o,
			   enum stmt_id id)
{
	static const enum stmt_id of_bucket[][2] = {
		{ ST_XATTR_GET, ST_BXATTR_GET },
		{ ST_XATTR_PUT, ST_BXATTR_PUT },
		{ ST_XATTR_DELETE, ST_BXATTR_DELETE },
		{ ST_XATTR_NAMES, ST_BXATTR_NAMES },
		{ ST_VER_SET_CTIME, ST_BUCKET_SET_CTIME },
	};
	size_t i;

	for (i = 0; o->bucket && i < sizeof(of_bucket) / sizeof(*of_bucket);
	     i++)
		if (of_bucket[i][0] == id) {
			id = of_bucket[i][1];
			break;
		}
	return stmt_get(c, id);
}

int xattr_write(struct conn *c, int bucket, int64_t id,
		const struct store_xattr *x)
{
	const struct owner o = { id, bucket };
	sqlite3_stmt *s = ostmt(c, &o, x->value ? ST_XATTR_PUT
						 : ST_XATTR_DELETE);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	bind_text(s, 2, x->name, -1);
	if (x->value)
		sqlite3_bind_blob(s, 3, x->value, (int)x->size, SQLITE_STATIC);
	return stmt_run(c, s, x->value ? "set xattr" : "remove xattr");
}

/* The owner of @key's xattrs: the current (not delete-marked) version of
 * @key, or the bucket for "", into *@o, and its bucket's row into *@b;
 * or -ENOENT. */
static int current_owner(struct conn *c, const char *bucket,
			 const char *key, struct owner *o,
			 struct bucket_row *b)
{
	sqlite3_stmt *s;
	int err;

	o->bucket = !key[0];
	if (o->bucket) {
		err = bucket_row_get(c, bucket, b);
		o->id = b->id;
		return err;
	}
	err = store_key_check(key);
	if (err)
		return err;
	err = bucket_row_get(c, bucket, b);
	if (err)
		return err;
	s = stmt_get(c, ST_OBJ_GET);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, b->id);
	bind_text(s, 2, key, -1);
	err = stmt_step(c, s, "get object");
	if (err == 1 && !sqlite3_column_int(s, 2))
		err = 0;
	if (err == 1)
		o->id = sqlite3_column_int64(s, 1);
	stmt_done(s);
	if (err < 0)
		return err;
	return err ? 0 : -ENOENT;
}

static int name_check(const char *name)
{
	size_t len = name ? strnlen(name, XATTR_NAME_MAX_LEN + 1) : 0;

	if (!len)
		return -EINVAL;
	return len > XATTR_NAME_MAX_LEN ? -ERANGE : 0;
}

/* Whether owner @o has xattr @name: 1, 0 or a negative errno. */
static int xattr_exists(struct conn *c, const struct owner *o,
			const char *name)
{
	sqlite3_stmt *s = ostmt(c, o, ST_XATTR_GET);
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, o->id);
	bind_text(s, 2, name, -1);
	err = stmt_step(c, s, "get xattr");
	stmt_done(s);
	return err;
}

/* S3's limits on an object's tags (PutObjectTagging refuses more). */
#define TAGS_MAX 10
#define TAG_KEY_MAX 128		/* characters */
#define TAG_VALUE_MAX 256

/* Characters (UTF-8 code points) in the @len bytes at @p. */
static size_t utf8_chars(const char *p, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += ((unsigned char)p[i] & 0xc0) != 0x80;
	return n;
}

/*
 * Whether tag xattr @name = @value (@size bytes) may be set on version
 * owner @o: 0, or -E2BIG past S3's limits, which a replica in S3 would
 * refuse at every delivery (a version with 11 tags stayed FAILED).
 */
int store_tag_check(const char *name, const void *value, size_t size,
		    size_t ntags)
{
	const size_t plen = sizeof(STORE_TAG_XATTR) - 1;
	const char *tag = name + plen;

	if (strncmp(name, STORE_TAG_XATTR, plen))
		return 0;
	if (utf8_chars(tag, strlen(tag)) > TAG_KEY_MAX ||
	    utf8_chars(value, size) > TAG_VALUE_MAX) {
		log_warn("store: tag %s: S3 takes keys of at most %d and "
			 "values of at most %d characters", tag, TAG_KEY_MAX,
			 TAG_VALUE_MAX);
		return -E2BIG;
	}
	if (ntags >= TAGS_MAX) {
		log_warn("store: tag %s: an object has at most %d tags, in S3 "
			 "as here", tag, TAGS_MAX);
		return -E2BIG;
	}
	return 0;
}

static int tag_check(struct conn *c, const struct owner *o, const char *name,
		     const char *value, size_t size)
{
	sqlite3_stmt *s;
	int err;

	if (o->bucket || strncmp(name, STORE_TAG_XATTR,
				 sizeof(STORE_TAG_XATTR) - 1))
		return 0;
	err = store_tag_check(name, value, size, 0);
	if (err)
		return err;
	err = xattr_exists(c, o, name);
	if (err)
		return err < 0 ? err : 0;	/* a new value: as many */
	err = stmt_of_sql(c, "SELECT count(*) FROM xattrs WHERE version = ? "
			     "AND name >= '" STORE_TAG_XATTR "' AND "
			     "name < 'user.s3.tag/'", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, o->id);
	err = stmt_step(c, s, "count tags");
	if (err == 1)
		err = store_tag_check(name, value, size,
				      (size_t)sqlite3_column_int(s, 0));
	stmt_done(s);
	return err < 0 ? err : 0;
}

/*
 * After an xattr of version @vid (the current one of @key) changed: the
 * replicas take the change too, as after chmod (object.c), and a rule
 * with a tag filter (user.s3.tag.*) is asked again whether it sends the
 * version, which it could not be when the version was written (a tag is
 * set after the close).  A replica is never sent on (no chaining).
 */
static int xattr_requeue(struct conn *c, const struct bucket_row *b,
			 const char *key, const struct owner *o)
{
	enum store_kind kind;
	int64_t oid;
	int err, replica;

	if (!b->repl || o->bucket)
		return 0;	/* a bucket's own are not replicated */
	err = ver_kind(c, o->id, &oid, &kind, &replica);
	if (err <= 0 || replica)
		return err < 0 ? err : 0;
	err = repl_enqueue_update(c, b, key, oid, o->id, kind);
	return err < 0 ? err : 0;
}

static int touch_ctime(struct conn *c, const struct owner *o)
{
	sqlite3_stmt *s = ostmt(c, o, ST_VER_SET_CTIME);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, now_ns());
	sqlite3_bind_int64(s, 2, o->id);
	return stmt_run(c, s, "set ctime");
}

int store_xattr_set(struct store *st, const char *bucket, const char *key,
		    const char *name, const void *value, size_t size,
		    int flags)
{
	struct bucket_row b;
	struct owner o;
	struct conn *c;
	sqlite3_stmt *s;
	int err;

	err = name_check(name);
	if (err)
		return err;
	if (size > XATTR_VALUE_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	err = conn_get(st, &c);
	if (err)
		return err;
	err = tx_begin(c);
	if (err)
		return err;
	err = current_owner(c, bucket, key, &o, &b);
	if (!err)
		err = tag_check(c, &o, name, value, size);
	if (err)
		goto out;
	if (flags) {
		err = xattr_exists(c, &o, name);
		if (err < 0)
			goto out;
		if (err && (flags & XATTR_CREATE)) {
			err = -EEXIST;
			goto out;
		}
		if (!err && (flags & XATTR_REPLACE)) {
			err = -ENODATA;
			goto out;
		}
	}
	s = ostmt(c, &o, ST_XATTR_PUT);
	if (!s) {
		err = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, o.id);
	bind_text(s, 2, name, -1);
	sqlite3_bind_blob(s, 3, size ? value : "", size, SQLITE_STATIC);
	err = stmt_run(c, s, "set xattr");
	if (!err)
		err = touch_ctime(c, &o);
	if (!err)
		err = xattr_requeue(c, &b, key, &o);
	if (!err)
		err = tx_commit(st, c);
out:
	tx_rollback(c);
	return err;
}

/*
 * The connection for a read of @key's xattrs, with the close journal
 * applied as far as they need: 1 when the journal holds a version of
 * @key (its newest, which has none), else 0 or a negative errno.
 */
static int xattr_read_conn(struct store *st, const char *bucket,
			   const char *key, struct conn **c)
{
	/* The kernel asks for security.capability at each file's first
	 * write, while the last files' versions are being applied; rsync's
	 * chmod of the file it just closed reads its ACL. */
	if (journal_holds_key(st, bucket, key))
		return 1;
	/* A rename of a key with xattrs, still in the journal, gives them
	 * to its new name. */
	journal_settle_moves(st, bucket, key);	/* logs failures */
	return conn_get_settled(st, c);
}

ssize_t store_xattr_get(struct store *st, const char *bucket, const char *key,
			const char *name, void *buf, size_t size)
{
	struct bucket_row b;
	struct owner o;
	struct conn *c;
	sqlite3_stmt *s;
	ssize_t len;
	int err, began;

	err = name_check(name);
	if (err)
		return err == -ERANGE ? -ENODATA : err;
	err = xattr_read_conn(st, bucket, key, &c);
	if (err)
		return err > 0 ? -ENODATA : err;
	began = rtx_begin(c);
	err = current_owner(c, bucket, key, &o, &b);
	if (err) {
		len = err;
		goto out;
	}
	s = ostmt(c, &o, ST_XATTR_GET);
	if (!s) {
		len = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, o.id);
	bind_text(s, 2, name, -1);
	err = stmt_step(c, s, "get xattr");
	if (err == 1) {
		len = sqlite3_column_bytes(s, 0);
		if (size && (size_t)len > size)
			len = -ERANGE;
		else if (size && len)
			memcpy(buf, sqlite3_column_blob(s, 0), len);
	} else {
		len = err ? err : -ENODATA;
	}
	stmt_done(s);
out:
	rtx_end(c, began);
	return len;
}

ssize_t store_xattr_list(struct store *st, const char *bucket,
			 const char *key, char *buf, size_t size)
{
	struct bucket_row b;
	struct owner o;
	struct conn *c;
	sqlite3_stmt *s;
	size_t total = 0, n;
	int err, began;

	err = xattr_read_conn(st, bucket, key, &c);
	if (err)
		return err > 0 ? 0 : err;
	began = rtx_begin(c);
	err = current_owner(c, bucket, key, &o, &b);
	s = err ? NULL : ostmt(c, &o, ST_XATTR_NAMES);
	if (!s) {
		rtx_end(c, began);
		return err ? err : -EIO;
	}
	sqlite3_bind_int64(s, 1, o.id);
	while ((err = stmt_step(c, s, "list xattrs")) == 1) {
		n = sqlite3_column_bytes(s, 0) + 1;
		if (size && total + n > size) {
			err = -ERANGE;
			break;
		}
		if (size)
			memcpy(buf + total, sqlite3_column_text(s, 0), n);
		total += n;
	}
	stmt_done(s);
	rtx_end(c, began);
	return err < 0 ? err : (ssize_t)total;
}

int store_xattr_remove(struct store *st, const char *bucket, const char *key,
		       const char *name)
{
	struct bucket_row b;
	struct owner o;
	struct conn *c;
	sqlite3_stmt *s;
	int err;

	err = name_check(name);
	if (err)
		return err == -ERANGE ? -ENODATA : err;
	err = conn_get(st, &c);
	if (err)
		return err;
	err = tx_begin(c);
	if (err)
		return err;
	err = current_owner(c, bucket, key, &o, &b);
	if (err)
		goto out;
	s = ostmt(c, &o, ST_XATTR_DELETE);
	if (!s) {
		err = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, o.id);
	bind_text(s, 2, name, -1);
	err = stmt_run(c, s, "remove xattr");
	if (!err && !sqlite3_changes(c->db))
		err = -ENODATA;
	if (!err)
		err = touch_ctime(c, &o);
	if (!err)
		err = xattr_requeue(c, &b, key, &o);
	if (!err)
		err = tx_commit(st, c);
out:
	tx_rollback(c);
	return err;
}

int store_has_acls(struct store *st)
{
	/* The WHERE clause is the index xattrs_acl's own, word for word,
	 * so that SQLite reads the index and not the table. */
	static const char sql[] =
		"SELECT 1 FROM xattrs WHERE name IN "
		"('system.posix_acl_access', 'system.posix_acl_default') "
		"UNION ALL SELECT 1 FROM bucket_xattrs WHERE name IN "
		"('system.posix_acl_access', 'system.posix_acl_default') "
		"LIMIT 1";
	struct conn *c;
	sqlite3_stmt *s;
	int err;

	err = conn_get(st, &c);
	if (!err)
		err = stmt_of_sql(c, sql, &s);
	if (err)
		return err;
	err = stmt_step(c, s, "look for ACLs");
	stmt_done(s);
	return err;
}
