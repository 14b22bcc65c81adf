/*
 * history.c - the past of a bucket: every key that ever had a version, the
 * version of a key current at a time, a folder as it stood at a time; and
 * the operations on history: restore of a version as a new one, undelete,
 * removal of a delete marker, and the ETag (MD5) of a version, computed
 * on demand and, for a large one, kept in versions.md5.
 *
 * Reading the past rests on two indexes:
 *
 *   objects(bucket, key)        UNIQUE: every key with any version, live
 *                               or delete-marked (read.c's objects_live
 *                               holds only the live ones)
 *   versions_time(object, created_ns)
 *                               schema 4: the newest version of an object
 *                               written at or before a time is one seek
 *
 * A listing is read.c's skip-scan, over objects(bucket, key) instead of
 * objects_live: from position P one seek finds the first key at or after
 * P below the prefix; a key with a '/' after the prefix is a directory,
 * emitted once, and the scan jumps past its subtree ("prefix/C0", '0'
 * being '/' + 1); else it is a key, and the scan goes on at key + "\x01".
 * At a time T, each key found costs one more seek (its version at T); a
 * directory exists at T when some key below it had a live version then,
 * found by walking its keys in order until one did: one key in the
 * common case, every key below it when none did.  Nothing costs in
 * proportion to the number of versions.
 *
 * The statements here are prepared per call (history is not a hot path)
 * and finalized before returning, so store.c's statement table stays as
 * it is.  None is stepped while a callback runs: a callback may call the
 * store, and a listing is not a snapshot, as in S3.
 *
 * Restore, undelete and the removal of a marker are write transactions
 * built from object.c's rows (ver_write(), ver_remove(), obj_refresh()),
 * so S3's versioning rules and the crash invariants of store.c hold as
 * for any write.
 */
#include "store/store.h"
#include "store/store_i.h"
#include "store/blob_i.h"
#include "store/log.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- statements ----------------------------------------------------- */

enum hq_id {
	HQ_ALL_FIRST,		/* first key >= ?2, with its current version */
	HQ_ALL_FIRST_BELOW,	/* the same, < ?3 */
	HQ_VER_AT,		/* version of object ?1 current at ?2 */
	HQ_VER_ROW,		/* version ?2 of object ?1, link, md5 */
	HQ_VER_ID,		/* version row ?1 */
	HQ_BUCKET_CREATED,
	HQ_SET_MD5,
	HQ_COUNT
};

static const char *const hq_sql[HQ_COUNT] = {
	[HQ_ALL_FIRST] = "SELECT o.key, o.id, " VER_COLS " FROM objects AS o "
			 "JOIN versions AS v ON v.id = o.cur "
			 "WHERE o.bucket = ?1 AND o.key >= ?2 "
			 "ORDER BY o.key LIMIT 1",
	[HQ_ALL_FIRST_BELOW] = "SELECT o.key, o.id, " VER_COLS
			       " FROM objects AS o "
			       "JOIN versions AS v ON v.id = o.cur "
			       "WHERE o.bucket = ?1 AND o.key >= ?2 "
			       "AND o.key < ?3 ORDER BY o.key LIMIT 1",
	[HQ_VER_AT] = "SELECT " VER_COLS " FROM versions AS v "
		      "INDEXED BY versions_time "
		      "WHERE v.object = ?1 AND v.created_ns <= ?2 "
		      "ORDER BY v.created_ns DESC, v.id DESC LIMIT 1",
	[HQ_VER_ROW] = "SELECT " VER_COLS ", v.link, v.md5 FROM versions AS v "
		       "WHERE v.object = ?1 AND v.vid = ?2",
	[HQ_VER_ID] = "SELECT " VER_COLS " FROM versions AS v WHERE v.id = ?1",
	[HQ_BUCKET_CREATED] = "SELECT created_ns FROM buckets WHERE id = ?1",
	[HQ_SET_MD5] = "UPDATE versions SET md5 = ?1 WHERE id = ?2",
};

/* The statements of one call, on this thread's connection, which keeps
 * them prepared (stmt_of_sql()): each is stepped and reset before its
 * call returns, so calls on one thread never share one mid-use.  (Made
 * and finalized at each call, the statements were a quarter of a batch
 * job's CPU: a delivery looks its key up through store_lookup_all().) */
struct hq {
	struct conn *c;
};

static int hq_init(struct store *st, struct hq *q)
{
	memset(q, 0, sizeof(*q));
	return conn_get(st, &q->c);
}

/* Statement @id, reset and unbound: the caller ends its use with
 * stmt_done().  NULL (logged) when it cannot be prepared. */
static sqlite3_stmt *hq_get(struct hq *q, enum hq_id id)
{
	sqlite3_stmt *s;

	return stmt_of_sql(q->c, hq_sql[id], &s) ? NULL : s;
}

static void hq_release(struct hq *q)
{
	q->c = NULL;
}

/* ---- seeks ---------------------------------------------------------- */

/* A key found by all_first(). */
struct found {
	size_t klen;		/* its length (the key is in a caller's
				 * buffer) */
	int64_t oid;		/* its objects row */
	int64_t cur;		/* the row of its current version, in o */
	struct store_obj o;
};

/*
 * The first key of bucket @bid with any version in [@lo, @hi) (@hi NULL:
 * no upper bound): 1 with the key into @key (STORE_KEY_MAX + 1 bytes) and
 * the rest into @f; 0 when there is none; or a negative errno.  One seek.
 */
static int all_first(struct hq *q, int64_t bid, const char *lo, size_t lolen,
		     const char *hi, size_t hilen, char *key, struct found *f)
{
	sqlite3_stmt *s = hq_get(q, hi ? HQ_ALL_FIRST_BELOW : HQ_ALL_FIRST);
	int err, n;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, bid);
	bind_text(s, 2, lo, (int)lolen);
	if (hi)
		bind_text(s, 3, hi, (int)hilen);
	err = stmt_step(q->c, s, "seek key");
	if (err == 1) {
		store_test_count_row();
		n = sqlite3_column_bytes(s, 0);
		if (n > STORE_KEY_MAX)
			n = STORE_KEY_MAX;
		memcpy(key, sqlite3_column_blob(s, 0), (size_t)n);
		key[n] = '\0';
		f->klen = (size_t)n;
		f->oid = sqlite3_column_int64(s, 1);
		ver_row_read(s, 2, &f->o, &f->cur);
	}
	stmt_done(s);
	return err;
}

/* The version of object @oid current at @t: 1 with it into @o and its row
 * id into *@id (may be NULL), 0 when it had none then, or a negative
 * errno.  One seek. */
static int ver_at(struct hq *q, int64_t oid, int64_t t, struct store_obj *o,
		  int64_t *id)
{
	sqlite3_stmt *s = hq_get(q, HQ_VER_AT);
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, oid);
	sqlite3_bind_int64(s, 2, t);
	err = stmt_step(q->c, s, "version at");
	if (err == 1) {
		store_test_count_row();
		ver_row_read(s, 0, o, id);
	}
	stmt_done(s);
	return err;
}

/* Version @vid of object @oid: 1 with it into @o, its row id into *@id,
 * its link target into @link (PATH_MAX bytes; may be NULL) and its cached
 * MD5 into @md5 (33 bytes, "" when not known yet; may be NULL); 0 when
 * there is none, or a negative errno. */
static int ver_row(struct hq *q, int64_t oid, const char *vid,
		   struct store_obj *o, int64_t *id, char *link, char *md5)
{
	sqlite3_stmt *s = hq_get(q, HQ_VER_ROW);
	const unsigned char *t;
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, oid);
	bind_text(s, 2, vid, -1);
	err = stmt_step(q->c, s, "find version");
	if (err == 1) {
		ver_row_read(s, 0, o, id);
		if (link) {
			t = sqlite3_column_text(s, VER_NCOLS);
			snprintf(link, PATH_MAX, "%s",
				 t ? (const char *)t : "");
		}
		if (md5) {
			t = sqlite3_column_text(s, VER_NCOLS + 1);
			snprintf(md5, 33, "%s", t ? (const char *)t : "");
		}
	}
	stmt_done(s);
	return err;
}

static int alive(const struct store_obj *o)
{
	return o->kind != STORE_DELETE_MARKER;
}

/* A directory entry made from marker version @marker, or with no marker
 * (NULL) from the bucket's metadata, as read.c makes them. */
static void dir_entry(struct store_obj *out, const struct store_obj *marker,
		      const struct bucket_row *b)
{
	if (marker) {
		*out = *marker;
		out->meta.mode = S_IFDIR | (marker->meta.mode & 07777);
		out->has_marker = 1;
	} else {
		memset(out, 0, sizeof(*out));
		out->meta = b->meta;
		out->meta.mode = S_IFDIR | 0755;
		out->created_ns = b->meta.ctime_ns;
	}
	out->kind = STORE_DIR;
	out->sha256[0] = '\0';
	out->size = 0;
	out->is_latest = 1;
}

/* ---- listings ------------------------------------------------------- */

/* The buffers of subtree_at(). */
struct sscan {
	char pos[STORE_KEY_MAX + 3];
	char hi[STORE_KEY_MAX + 2];
	char key[STORE_KEY_MAX + 1];
};

/* The state of one listing; large, so on the heap. */
struct hlist {
	char pfx[STORE_KEY_MAX + 2];	/* "P/" or "" */
	size_t plen;
	char hi[STORE_KEY_MAX + 2];	/* "P0": end of the listed keys */
	char pos[STORE_KEY_MAX + 3];	/* where the next seek starts */
	size_t poslen;
	char key[STORE_KEY_MAX + 1];	/* key found */
	char name[STORE_KEY_MAX + 1];	/* entry name, NUL-terminated */
	struct sscan sub;		/* for subtree_at() */
};

/* Set up @l for the directory @prefix ("" for the bucket's top). */
static int hlist_init(struct hlist *l, const char *prefix)
{
	size_t plen = strnlen(prefix, STORE_KEY_MAX + 1);

	if (plen >= STORE_KEY_MAX)
		return -ENAMETOOLONG;
	if (plen) {
		memcpy(l->pfx, prefix, plen);
		memcpy(l->hi, prefix, plen);
		l->pfx[plen] = '/';
		l->hi[plen] = '0';
		l->plen = plen + 1;
	}
	memcpy(l->pos, l->pfx, l->plen);
	l->poslen = l->plen;
	return 0;
}

/* Set l->pos to pfx + @name[0..@len) + @tail. */
static void hlist_seek_after(struct hlist *l, const char *name, size_t len,
			     char tail)
{
	memcpy(l->pos, l->pfx, l->plen);
	memmove(l->pos + l->plen, name, len);
	l->pos[l->plen + len] = tail;
	l->poslen = l->plen + len + 1;
}


/*
 * The next entry of listing @l: 1 with its name in l->name, *@is_dir set
 * for a directory, and the key found (the least key below a directory)
 * in l->key and @f; 0 at the end; or a negative errno.  The caller moves
 * on with hlist_seek_after().
 */
static int hlist_next(struct hq *q, struct hlist *l, int64_t bid,
		      int *is_dir, struct found *f)
{
	const char *comp, *slash;
	size_t clen;
	int err;

	for (;;) {
		err = all_first(q, bid, l->pos, l->poslen,
				l->plen ? l->hi : NULL, l->plen, l->key, f);
		if (err <= 0)
			return err;
		comp = l->key + l->plen;
		clen = f->klen - l->plen;
		if (clen == 0) {	/* the directory's own marker */
			hlist_seek_after(l, "", 0, '\x01');
			continue;
		}
		slash = memchr(comp, '/', clen);
		*is_dir = slash != NULL;
		if (slash)
			clen = (size_t)(slash - comp);
		memcpy(l->name, comp, clen);
		l->name[clen] = '\0';
		return 1;
	}
}

int store_list_all(struct store *st, const char *bucket, const char *prefix,
		   store_list_cb cb, void *arg)
{
	struct bucket_row b;
	struct store_obj d;
	struct found f;
	struct hlist *l;
	struct hq q;
	size_t nlen;
	int err, is_dir;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	err = hq_init(st, &q);
	if (!err)
		err = hlist_init(l, prefix);
	if (!err)
		err = bucket_row_get(q.c, bucket, &b);
	while (!err) {
		err = hlist_next(&q, l, b.id, &is_dir, &f);
		if (err <= 0)
			break;
		nlen = strlen(l->name);
		if (is_dir) {
			/* The subtree's least key is its marker, if any. */
			dir_entry(&d, f.klen == l->plen + nlen + 1 &&
					      alive(&f.o) ? &f.o : NULL, &b);
			hlist_seek_after(l, l->name, nlen, '0');
			err = cb(arg, l->name, &d);
		} else {
			f.o.is_latest = 1;
			hlist_seek_after(l, l->name, nlen, '\x01');
			err = cb(arg, l->name, &f.o);
		}
	}
	hq_release(&q);
	free(l);
	return err;
}

/*
 * Whether the directory whose keys start with @dpfx (@dlen bytes, ending
 * in '/') held, at @t, a key with a live version: 1 with the directory's
 * entry in @out, 0 if not, or a negative errno.  Walks the keys below it
 * in order (its marker, when there is one, first) until one did: two
 * seeks per key walked.
 */
static int subtree_at(struct hq *q, struct sscan *sc,
		      const struct bucket_row *b, const char *dpfx,
		      size_t dlen, int64_t t, struct store_obj *out)
{
	struct store_obj v;
	struct found f;
	size_t poslen = dlen;
	int err;

	memcpy(sc->hi, dpfx, dlen);
	sc->hi[dlen - 1] = '0';
	memmove(sc->pos, dpfx, dlen);
	for (;;) {
		err = all_first(q, b->id, sc->pos, poslen, sc->hi, dlen,
				sc->key, &f);
		if (err <= 0)
			return err;
		err = ver_at(q, f.oid, t, &v, NULL);
		if (err < 0)
			return err;
		if (err && alive(&v)) {
			dir_entry(out, f.klen == dlen ? &v : NULL, b);
			return 1;
		}
		/* The least key after this one. */
		memcpy(sc->pos, sc->key, f.klen);
		sc->pos[f.klen] = '\x01';
		poslen = f.klen + 1;
	}
}

int store_list_at(struct store *st, const char *bucket, const char *prefix,
		  int64_t t_ns, store_list_cb cb, void *arg)
{
	struct store_obj o;
	struct bucket_row b;
	struct found f;
	struct hlist *l;
	struct hq q;
	int64_t id;
	size_t nlen;
	int err, is_dir;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	err = hq_init(st, &q);
	if (!err)
		err = hlist_init(l, prefix);
	if (!err)
		err = bucket_row_get(q.c, bucket, &b);
	while (!err) {
		err = hlist_next(&q, l, b.id, &is_dir, &f);
		if (err <= 0)
			break;
		nlen = strlen(l->name);
		if (is_dir) {
			/* l->key up to and with the '/' after the name */
			err = subtree_at(&q, &l->sub, &b, l->key,
					 l->plen + nlen + 1, t_ns, &o);
			hlist_seek_after(l, l->name, nlen, '0');
		} else {
			err = ver_at(&q, f.oid, t_ns, &o, &id);
			if (err > 0 && !alive(&o))
				err = 0;
			if (err > 0)
				o.is_latest = id == f.cur;
			hlist_seek_after(l, l->name, nlen, '\x01');
		}
		if (err > 0)
			err = cb(arg, l->name, &o);
	}
	hq_release(&q);
	free(l);
	return err;
}

/* ---- lookups -------------------------------------------------------- */

int store_lookup_all(struct store *st, const char *bucket, const char *path,
		     struct store_obj *out)
{
	char *key = NULL, lo[STORE_KEY_MAX + 2], hi[STORE_KEY_MAX + 2];
	struct bucket_row b;
	struct found f;
	struct hq q;
	size_t len;
	int err;

	if (!path || !*path)
		return -EINVAL;
	len = strnlen(path, STORE_KEY_MAX + 1);
	if (len > STORE_KEY_MAX)
		return -ENAMETOOLONG;
	key = malloc(STORE_KEY_MAX + 1);
	if (!key)
		return -ENOMEM;
	err = hq_init(st, &q);
	if (!err)
		err = bucket_row_get(q.c, bucket, &b);
	if (err)
		goto out;
	/* The key itself: the first key at or after it is it, or not. */
	err = all_first(&q, b.id, path, len, NULL, 0, key, &f);
	if (err < 0)
		goto out;
	if (err && f.klen == len && !memcmp(key, path, len)) {
		*out = f.o;
		out->is_latest = 1;
		err = 0;
		goto out;
	}
	err = -ENOENT;
	if (len + 1 > STORE_KEY_MAX)
		goto out;
	memcpy(lo, path, len);
	memcpy(hi, path, len);
	lo[len] = '/';
	hi[len] = '0';
	err = all_first(&q, b.id, lo, len + 1, hi, len + 1, key, &f);
	if (err > 0) {
		dir_entry(out, f.klen == len + 1 && alive(&f.o) ? &f.o : NULL,
			  &b);
		err = 0;
	} else if (err == 0) {
		err = -ENOENT;
	}
out:
	hq_release(&q);
	free(key);
	return err;
}

int store_version_at(struct store *st, const char *bucket, const char *key,
		     int64_t t_ns, struct store_obj *out)
{
	struct bucket_row b;
	struct hq q;
	int64_t oid, cur, id;
	int err, live;

	err = store_key_check(key);
	if (!err)
		err = hq_init(st, &q);
	if (err)
		return err;
	err = bucket_row_get(q.c, bucket, &b);
	if (!err)
		err = obj_get(q.c, b.id, key, &oid, &cur, &live);
	if (err > 0)
		err = ver_at(&q, oid, t_ns, out, &id);
	if (err > 0) {
		out->is_latest = id == cur;
		err = 0;
	} else if (err == 0) {
		err = -ENOENT;
	}
	hq_release(&q);
	return err;
}

int store_lookup_at(struct store *st, const char *bucket, const char *path,
		    int64_t t_ns, struct store_obj *out)
{
	char dpfx[STORE_KEY_MAX + 2];
	struct sscan *sc = NULL;
	struct bucket_row b;
	struct store_obj v;
	sqlite3_stmt *s;
	struct hq q;
	int64_t oid, cur, id, created = 0;
	size_t len;
	int err, live;

	len = strnlen(path, STORE_KEY_MAX + 1);
	if (len > STORE_KEY_MAX)
		return -ENAMETOOLONG;
	err = hq_init(st, &q);
	if (!err)
		err = bucket_row_get(q.c, bucket, &b);
	if (err)
		goto out;
	if (!len) {
		/* The bucket itself, if it was there. */
		s = hq_get(&q, HQ_BUCKET_CREATED);
		if (!s) {
			err = -EIO;
			goto out;
		}
		sqlite3_bind_int64(s, 1, b.id);
		err = stmt_step(q.c, s, "bucket created");
		if (err == 1)
			created = sqlite3_column_int64(s, 0);
		stmt_done(s);
		if (err < 0)
			goto out;
		if (created > t_ns) {
			err = -ENOENT;
			goto out;
		}
		dir_entry(out, NULL, &b);
		out->meta.mode = S_IFDIR | (b.meta.mode & 07777);
		err = 0;
		goto out;
	}
	err = obj_get(q.c, b.id, path, &oid, &cur, &live);
	if (err > 0)
		err = ver_at(&q, oid, t_ns, &v, &id);
	if (err < 0)
		goto out;
	if (err && alive(&v)) {
		*out = v;
		out->is_latest = id == cur;
		err = 0;
		goto out;
	}
	err = -ENOENT;
	if (len + 1 > STORE_KEY_MAX)
		goto out;
	sc = malloc(sizeof(*sc));
	if (!sc) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(dpfx, path, len);
	dpfx[len] = '/';
	err = subtree_at(&q, sc, &b, dpfx, len + 1, t_ns, out);
	if (err >= 0)
		err = err ? 0 : -ENOENT;
out:
	hq_release(&q);
	free(sc);
	return err;
}

/* ---- restore, undelete ---------------------------------------------- */

/* Version row @id into @o: 1, 0 when there is none, or a negative
 * errno. */
static int hq_version(struct hq *q, int64_t id, struct store_obj *o)
{
	sqlite3_stmt *s = hq_get(q, HQ_VER_ID);
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	err = stmt_step(q->c, s, "version row");
	if (err == 1)
		ver_row_read(s, 0, o, NULL);
	stmt_done(s);
	return err;
}

/*
 * A restore brings back a version's content, not who may read it: the
 * key's current owner, group and permission bits (into @m, from version
 * row @cur) and its POSIX ACLs (keep_acls(), once the new version is
 * written) stay, as with `cp` of the version onto the file.  Otherwise a
 * chmod 600 made after a version was written would be undone by
 * restoring it.  Only from a current version of the restored one's
 * @kind (1; 0 otherwise): a symlink's 0777 says nothing of who may read a file
 * restored over it, which keeps the mode it was written with.
 */
static int keep_access(struct hq *q, int64_t cur, enum store_kind kind,
		       struct store_meta *m)
{
	struct store_obj c;
	int err = hq_version(q, cur, &c);

	if (err <= 0)
		return err < 0 ? err : -EIO;
	if (c.kind != kind)
		return 0;
	m->mode = (m->mode & S_IFMT) | (c.meta.mode & 07777);
	m->uid = c.meta.uid;
	m->gid = c.meta.gid;
	return 1;
}

static int keep_acls(struct hq *q, const struct bucket_row *b,
		     const char *key, int64_t old)
{
	sqlite3_stmt *s;
	int64_t oid, cur;
	int err, live;

	err = obj_get(q->c, b->id, key, &oid, &cur, &live);
	if (err <= 0 || !live || cur == old)
		return err < 0 ? err : 0;
	err = stmt_of_sql(q->c, "DELETE FROM xattrs WHERE version = ?1 AND "
				"name IN ('system.posix_acl_access', "
				"'system.posix_acl_default')", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, cur);
	err = stmt_run(q->c, s, "drop restored ACL");
	if (err)
		return err;
	err = stmt_of_sql(q->c, "INSERT INTO xattrs(version, name, value) "
				"SELECT ?1, name, value FROM xattrs WHERE "
				"version = ?2 AND name IN "
				"('system.posix_acl_access', "
				"'system.posix_acl_default')", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, cur);
	sqlite3_bind_int64(s, 2, old);
	return stmt_run(q->c, s, "keep ACL");
}

int store_restore(struct store *st, const char *bucket, const char *key,
		  const char *version_id, char *vid_out,
		  struct store_obj *obj_out)
{
	struct newver nv;
	struct store_obj o;
	struct bucket_row b;
	struct trash t;
	struct hq q;
	char *link;
	int64_t oid, cur, id;
	int err, live, kept;

	if (!version_id || !*version_id)
		return -EINVAL;
	err = store_key_check(key);
	if (err)
		return err;
	link = malloc(PATH_MAX);
	if (!link)
		return -ENOMEM;
	trash_init(&t);
	err = hq_init(st, &q);
	if (err)
		goto out_free;
	err = tx_begin(q.c);
	if (err)
		goto out_free;
	err = bucket_row_get(q.c, bucket, &b);
	if (!err)
		err = obj_get(q.c, b.id, key, &oid, &cur, &live);
	if (err > 0)
		err = ver_row(&q, oid, version_id, &o, &id, link, NULL);
	if (err == 0)
		err = -ENOENT;
	if (err < 0)
		goto out;
	if (o.kind == STORE_DELETE_MARKER) {
		err = -EINVAL;
		goto out;
	}
	err = name_free(q.c, &b, key);
	if (err)
		goto out;
	memset(&nv, 0, sizeof(nv));
	nv.kind = o.kind;
	nv.sha = o.sha256[0] ? o.sha256 : NULL;
	nv.size = o.size;
	nv.blocks = o.blocks;
	nv.meta = o.meta;
	kept = live ? keep_access(&q, cur, o.kind, &nv.meta) : 0;
	if (kept < 0) {
		err = kept;
		goto out;
	}
	nv.meta.ctime_ns = now_ns();
	nv.mtime_set = 1;	/* the version's, the epoch too */
	nv.link = o.kind == STORE_SYMLINK ? link : NULL;
	nv.xattr_src = id;
	err = ver_write(st, q.c, &b, key, &nv, vid_out, obj_out, &t);
	if (!err && kept)
		err = keep_acls(&q, &b, key, cur);
	if (!err && !live)	/* under rm -rf: its folders come back */
		err = folders_back(st, q.c, &b, key, &t, NULL);
out:
	err = tx_end(st, q.c, err, &t);
out_free:
	hq_release(&q);
	trash_release(&t);
	free(link);
	return err;
}

/* Remove delete marker @version_id of @key, or with @version_id NULL the
 * current version, which must be a delete marker (-EEXIST otherwise); its
 * ID into @vid_out (may be NULL).  A key live again brings back its
 * folders (folders_back()). */
static int marker_remove(struct store *st, const char *bucket,
			 const char *key, const char *version_id,
			 char *vid_out, unsigned *folders)
{
	unsigned nfolders = 0;
	struct store_obj o;
	struct bucket_row b;
	struct trash t;
	struct hq q;
	int64_t oid, cur, id;
	int err, live;

	err = store_key_check(key);
	if (err)
		return err;
	if (version_id && !*version_id)
		return -ENOENT;
	trash_init(&t);
	err = hq_init(st, &q);
	if (!err)
		err = tx_begin(q.c);
	if (err)
		goto out_free;
	err = bucket_row_get(q.c, bucket, &b);
	if (!err)
		err = obj_get(q.c, b.id, key, &oid, &cur, &live);
	if (err == 0)
		err = -ENOENT;
	if (err < 0)
		goto out;
	if (version_id) {
		err = ver_row(&q, oid, version_id, &o, &id, NULL, NULL);
	} else if (live) {
		err = -EEXIST;
	} else {
		id = cur;
		err = hq_version(&q, cur, &o);
	}
	if (err == 0)
		err = -ENOENT;
	if (err < 0)
		goto out;
	if (o.kind != STORE_DELETE_MARKER) {
		err = version_id ? -EPERM : -EEXIST;
		goto out;
	}
	err = ver_remove(st, q.c, id, "", &t);
	if (!err)
		err = obj_refresh(q.c, &b, key, oid, live);
	if (!err && id == cur)
		err = repl_mirror_current(q.c, &b, key);
	if (!err && !live)
		err = obj_get(q.c, b.id, key, &oid, &cur, &live);
	/* Live again, it must not take a name a folder (or file) has now:
	 * a file and a folder of one name hide each other. */
	if (err > 0 && live)
		err = name_free(q.c, &b, key);
	if (!err && live)
		err = folders_back(st, q.c, &b, key, &t, &nfolders);
	else if (err > 0)
		err = 0;
	if (!err && vid_out)
		snprintf(vid_out, STORE_VID_MAX + 1, "%s", o.version_id);
out:
	err = tx_end(st, q.c, err, &t);
	if (!err && folders)
		*folders = nfolders;
out_free:
	hq_release(&q);
	trash_release(&t);
	return err;
}

int store_undelete(struct store *st, const char *bucket, const char *key,
		   char *vid_out)
{
	return marker_remove(st, bucket, key, NULL, vid_out, NULL);
}

int store_undelete_n(struct store *st, const char *bucket, const char *key,
		     char *vid_out, unsigned *folders)
{
	return marker_remove(st, bucket, key, NULL, vid_out, folders);
}

int store_delete_marker(struct store *st, const char *bucket,
			const char *key, const char *version_id)
{
	if (!version_id)
		return -EINVAL;
	return marker_remove(st, bucket, key, version_id, NULL, NULL);
}

/* ---- ETag ----------------------------------------------------------- */

/*
 * An ETag is kept in the catalog only for content of at least this many
 * bytes: below it, hashing the blob again costs less than the write
 * transaction that would keep it (which `cp -a` of a tree out of a mount,
 * reading every listed xattr, would pay once per file).
 */
#define ETAG_KEEP_MIN (256 * 1024)

/* The hex MD5 of blob @sha, of @size bytes, into @hex (33 bytes). */
static int blob_md5(struct store *st, const char *sha, uint64_t size,
		    char hex[33])
{
	size_t chunk = size < (1 << 20) ? (size_t)size + 1 : 1 << 20;
	unsigned char md[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = NULL;
	unsigned int mdlen = 0, i;
	char *buf = NULL;
	off_t off = 0;
	ssize_t n;
	int fd = -1, err;

	err = store_blob_open(st, sha, &fd);
	if (err)
		return err;
	buf = malloc(chunk);
	ctx = EVP_MD_CTX_new();
	if (!buf || !ctx) {
		err = -ENOMEM;
		goto out;
	}
	if (!EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
		log_err("store: MD5 is not available");
		err = -EIO;
		goto out;
	}
	for (;;) {
		n = pread(fd, buf, chunk, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			log_err("store: read blob %s: %s", sha, strerror(-err));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += n;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 16) {
		err = -EIO;
		goto out;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return err;
}

int store_version_etag(struct store *st, const char *bucket, const char *key,
		       const char *version_id, char md5[33])
{
	struct store_obj o;
	struct bucket_row b;
	struct trash t;
	sqlite3_stmt *s;
	struct hq q;
	int64_t oid, cur, id;
	int err, live;

	err = store_key_check(key);
	if (!err)
		err = hq_init(st, &q);
	if (err)
		return err;
	err = bucket_row_get(q.c, bucket, &b);
	if (!err)
		err = obj_get(q.c, b.id, key, &oid, &cur, &live);
	if (err > 0)
		err = ver_row(&q, oid, version_id, &o, &id, NULL, md5);
	if (err == 0)
		err = -ENOENT;
	if (err < 0)
		goto out;
	err = 0;
	if (o.kind == STORE_DELETE_MARKER) {
		err = -ENODATA;
		goto out;
	}
	if (strlen(md5) == 32)
		goto out;	/* computed before */
	err = blob_md5(st, o.sha256, o.size, md5);
	if (err || o.size < ETAG_KEEP_MIN)
		goto out;
	/* Keep it; a failure to keep it costs only its computing again. */
	trash_init(&t);
	if (tx_begin(q.c))
		goto out;
	s = hq_get(&q, HQ_SET_MD5);
	if (s) {
		bind_text(s, 1, md5, 32);
		sqlite3_bind_int64(s, 2, id);
		tx_end(st, q.c, stmt_run(q.c, s, "keep MD5"), &t);
	} else {
		tx_rollback(q.c);
	}
	trash_release(&t);
out:
	hq_release(&q);
	return err;
}

int store_obj_etag(struct store *st, const char *bucket, const char *key,
		   const struct store_obj *o, char md5[33])
{
	if (o->kind == STORE_DELETE_MARKER)
		return -ENODATA;
	if (o->kind == STORE_FILE && o->sha256[0] && o->size < ETAG_KEEP_MIN)
		return blob_md5(st, o->sha256, o->size, md5);
	return store_version_etag(st, bucket, key, o->version_id, md5);
}
