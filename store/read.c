/*
 * read.c - the read side of the catalog: lookup, directory listing,
 * version listings, readlink.
 *
 * Every query of a mount's path goes through the partial index
 * objects_live (bucket, key) WHERE live = 1, which holds only keys whose
 * current version is not a delete marker, so dead keys cost nothing.
 *
 * Listing is a skip-scan.  The entries of directory P are the distinct
 * first components of the live keys under "P/"; name order is byte order
 * of those components.  From the last name emitted, L, one seek finds the
 * next live key outside L's own subtree: first in ("P/L", "P/L/"), which
 * holds names that extend L with a byte below '/', else from "P/L0" on
 * ('0' is '/' + 1), jumping over every key under "P/L/".  Its component C
 * is the next name, except that a directory D whose name is a proper
 * prefix of C followed by a byte below '/' (D = "b" and C = "b.txt": the
 * keys "b/..." sort after "b.txt" but the name "b" before it) comes first;
 * a seek per such byte of C checks for one.  So an entry costs one or two
 * seeks, plus one per byte below '/' in its name, whatever lies below it.
 *
 * No statement stays open while a callback runs (each seek is reset after
 * its row is copied), so a callback may call the store again; a listing
 * is therefore not a snapshot, as in S3.
 */
#include "store/store.h"
#include "store/store_i.h"
#include "store/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static atomic_uint_fast64_t rows_visited;

uint64_t store_test_rows_visited(void)
{
	return atomic_load(&rows_visited);
}

void store_test_count_row(void)
{
	atomic_fetch_add(&rows_visited, 1);
}

static void copy_text(char *dst, size_t size, const unsigned char *src)
{
	snprintf(dst, size, "%s", src ? (const char *)src : "");
}

void ver_row_read(sqlite3_stmt *s, int col, struct store_obj *o,
		  int64_t *id)
{
	memset(o, 0, sizeof(*o));
	if (id)
		*id = sqlite3_column_int64(s, col);
	copy_text(o->version_id, sizeof(o->version_id),
		  sqlite3_column_text(s, col + 1));
	o->kind = sqlite3_column_int(s, col + 2);
	copy_text(o->sha256, sizeof(o->sha256),
		  sqlite3_column_text(s, col + 3));
	o->size = sqlite3_column_int64(s, col + 4);
	o->meta.mode = sqlite3_column_int64(s, col + 5);
	o->meta.uid = sqlite3_column_int64(s, col + 6);
	o->meta.gid = sqlite3_column_int64(s, col + 7);
	o->meta.mtime_ns = sqlite3_column_int64(s, col + 8);
	o->meta.ctime_ns = sqlite3_column_int64(s, col + 9);
	o->created_ns = sqlite3_column_int64(s, col + 10);
	o->is_replica = sqlite3_column_int(s, col + 11);
	o->blocks = sqlite3_column_type(s, col + 12) == SQLITE_NULL
			    ? -1
			    : sqlite3_column_int64(s, col + 12);
	/* A delete marker's link names the key a rename moved it to. */
	o->moved = o->kind == STORE_DELETE_MARKER &&
		   sqlite3_column_int(s, col + 13);
	o->meta.atime_ns = sqlite3_column_int64(s, col + 14);	/* NULL: 0 */
}

/* A directory entry made from marker version @o, or with no marker (@o
 * NULL) from the bucket's metadata; the folder is @path[0..@len) of
 * bucket @name. */
static void dir_obj(struct store_obj *out, const struct store_obj *marker,
		    const struct bucket_row *b, const char *name,
		    const char *path, size_t len)
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
		out->ino = store_name_ino(name, path, len);
	}
	out->kind = STORE_DIR;
	out->sha256[0] = '\0';
	out->size = 0;
	out->is_latest = 1;
}

/*
 * The first live key of bucket @bid in [@lo, @hi) (@hi NULL: no upper
 * bound): 1 with the key into @key (STORE_KEY_MAX + 1 bytes, may be NULL)
 * and its current version into @o, 0 when there is none, or a negative
 * errno.  One index seek.
 */
static int live_first(struct conn *c, int64_t bid, const char *lo,
		      size_t lolen, const char *hi, size_t hilen, char *key,
		      size_t *keylen, struct store_obj *o)
{
	sqlite3_stmt *s = stmt_get(c, hi ? ST_LIVE_FIRST_BELOW : ST_LIVE_FIRST);
	int err, n;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, bid);
	bind_text(s, 2, lo, lolen);
	if (hi)
		bind_text(s, 3, hi, hilen);
	err = stmt_step(c, s, "seek");
	if (err == 1) {
		store_test_count_row();
		n = sqlite3_column_bytes(s, 0);
		if (n > STORE_KEY_MAX)
			n = STORE_KEY_MAX;
		if (key) {
			memcpy(key, sqlite3_column_blob(s, 0), n);
			key[n] = '\0';
		}
		if (keylen)
			*keylen = n;
		ver_row_read(s, 1, o, NULL);
		o->is_latest = 1;
		o->ino = (uint64_t)sqlite3_column_int64(s, 1 + VER_NCOLS);
	}
	stmt_done(s);
	return err;
}

/* The current, not delete-marked version of @key: 1 found, 0 not, or a
 * negative errno.  @link (may be NULL) gets the symlink target. */
static int live_get(struct conn *c, int64_t bid, const char *key,
		    size_t keylen, struct store_obj *o, char *link,
		    size_t linksize, int *toolong)
{
	sqlite3_stmt *s = stmt_get(c, ST_LIVE_GET);
	const unsigned char *t;
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, bid);
	bind_text(s, 2, key, keylen);
	err = stmt_step(c, s, "lookup");
	if (err == 1) {
		store_test_count_row();
		ver_row_read(s, 1, o, NULL);
		o->is_latest = 1;
		o->ino = (uint64_t)sqlite3_column_int64(s, 2 + VER_NCOLS);
		if (link) {
			t = sqlite3_column_text(s, 1 + VER_NCOLS);
			if (!t)
				t = (const unsigned char *)"";
			if (strlen((const char *)t) >= linksize)
				*toolong = 1;
			else
				copy_text(link, linksize, t);
		}
	}
	stmt_done(s);
	return err;
}

static int lookup_settled(struct store *st, const char *bucket,
			  const char *path, size_t len, struct store_obj *out);

int store_lookup(struct store *st, const char *bucket, const char *path,
		 struct store_obj *out)
{
	size_t len;
	int err, hit;

	if (!path || !*path)
		return -EINVAL;
	len = strnlen(path, STORE_KEY_MAX + 1);
	if (len > STORE_KEY_MAX)
		return -ENAMETOOLONG;
	/*
	 * Only a record of this key, or below it, in the journal matters:
	 * a `cp -r` looks each new name up while the last files' versions
	 * are still being applied.  One of the key itself is applied first.
	 * One below it only can make a folder that was not there: a folder
	 * that is there already is one still (the mount keeps the times it
	 * gave it meanwhile), and rsync looks at the folder it writes in
	 * after each file.
	 */
	hit = journal_hit(st, bucket, path);
	if (hit == 1)
		store_journal_settle(st, bucket, path);	/* logs failures */
	err = lookup_settled(st, bucket, path, len, out);
	if (err == -ENOENT && hit == 2) {
		store_journal_settle(st, bucket, path);
		err = lookup_settled(st, bucket, path, len, out);
	}
	return err;
}

static int lookup_settled(struct store *st, const char *bucket,
			  const char *path, size_t len, struct store_obj *out)
{
	char lo[STORE_KEY_MAX + 2], hi[STORE_KEY_MAX + 2];
	char key[STORE_KEY_MAX + 1];
	struct store_obj o;
	struct bucket_row b;
	struct conn *c;
	size_t klen;
	int err, began;

	err = conn_get_settled(st, &c);
	if (err)
		return err;
	began = rtx_begin(c);
	err = bucket_row_get(c, bucket, &b);
	if (err)
		goto out;
	err = live_get(c, b.id, path, len, out, NULL, 0, NULL);
	if (err) {
		err = err < 0 ? err : 0;
		goto out;
	}
	err = -ENOENT;
	if (len + 1 > STORE_KEY_MAX)
		goto out;
	memcpy(lo, path, len);
	memcpy(hi, path, len);
	lo[len] = '/';
	hi[len] = '0';
	err = live_first(c, b.id, lo, len + 1, hi, len + 1, key, &klen, &o);
	if (err > 0) {
		dir_obj(out, klen == len + 1 ? &o : NULL, &b, bucket, path,
			len);
		err = 0;
	} else if (err == 0) {
		err = -ENOENT;
	}
out:
	rtx_end(c, began);
	return err;
}

int store_readlink(struct store *st, const char *bucket, const char *key,
		   char *buf, size_t size)
{
	struct store_obj o;
	struct bucket_row b;
	struct conn *c;
	int err, toolong = 0, began;

	err = store_key_check(key);
	if (err)
		return err;
	if (size == 0)
		return -ENAMETOOLONG;
	err = conn_get(st, &c);
	if (err)
		return err;
	began = rtx_begin(c);
	err = bucket_row_get(c, bucket, &b);
	if (!err)
		err = live_get(c, b.id, key, strlen(key), &o, buf, size,
			       &toolong);
	rtx_end(c, began);
	if (err < 0)
		return err;
	if (!err)
		return -ENOENT;
	if (o.kind != STORE_SYMLINK)
		return -EINVAL;
	return toolong ? -ENAMETOOLONG : 0;
}

/*
 * One listing: S3's ListObjectsV2 with Delimiter "/", as a skip-scan over
 * the partial index of live keys.  From a position P (a key, inclusive)
 * one seek finds the first live key K below the prefix; if K has a '/'
 * after the prefix, its first component C is a common prefix (directory),
 * emitted once, and the scan jumps to "prefix/C0" ('0' is '/' + 1), past
 * every key below C; else K is an object, and the scan goes on at
 * K + "\x01", the least key after K.  So a listing costs one seek per
 * entry, whatever lies below its directories.  Entries come in key order:
 * "b.txt" (key "b.txt") before the directory "b" (keys "b/...").
 */
struct lister {
	char pfx[STORE_KEY_MAX + 2];	/* "P/" or "" */
	size_t plen;
	char hi[STORE_KEY_MAX + 2];	/* "P0": end of the listed keys */
	char pos[STORE_KEY_MAX + 3];	/* where the next seek starts */
	size_t poslen;
	char key[STORE_KEY_MAX + 1];	/* key found */
	char name[STORE_KEY_MAX + 1];	/* entry name, NUL-terminated */
};

/* Set l->pos to pfx + @name[0..@len) + @tail. */
static void seek_after(struct lister *l, const char *name, size_t len,
		       char tail)
{
	memcpy(l->pos, l->pfx, l->plen);
	memmove(l->pos + l->plen, name, len);
	l->pos[l->plen + len] = tail;
	l->poslen = l->plen + len + 1;
}

int store_list(struct store *st, const char *bucket, const char *prefix,
	       const char *start_after, store_list_cb cb, void *arg)
{
	struct lister *l;
	struct conn *c = NULL;
	struct bucket_row b;
	struct store_obj o, d;
	const char *comp, *slash;
	size_t plen, klen, clen, alen = 0;
	int err, began = 0;

	plen = strnlen(prefix, STORE_KEY_MAX + 1);
	if (start_after)
		alen = strnlen(start_after, STORE_KEY_MAX + 1);
	if (plen >= STORE_KEY_MAX || plen + alen + 1 > STORE_KEY_MAX + 1)
		return -ENAMETOOLONG;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	err = conn_get(st, &c);
	if (err)
		goto out;
	/* One snapshot for the whole listing; @cb must not write. */
	began = rtx_begin(c);
	err = bucket_row_get(c, bucket, &b);
	if (err)
		goto out;
	if (plen) {
		memcpy(l->pfx, prefix, plen);
		memcpy(l->hi, prefix, plen);
		l->pfx[plen] = '/';
		l->hi[plen] = '0';
		l->plen = plen + 1;
	}
	if (alen && start_after[alen - 1] == '/')
		seek_after(l, start_after, alen - 1, '0');
	else if (alen)
		seek_after(l, start_after, alen, '\x01');
	else
		seek_after(l, "", 0, '\0'), l->poslen = l->plen;
	for (;;) {
		err = live_first(c, b.id, l->pos, l->poslen,
				 l->plen ? l->hi : NULL, l->plen, l->key,
				 &klen, &o);
		if (err <= 0)
			goto out;
		comp = l->key + l->plen;
		clen = klen - l->plen;
		if (clen == 0) {	/* the directory's own marker */
			seek_after(l, "", 0, '\x01');
			continue;
		}
		slash = memchr(comp, '/', clen);
		if (slash)
			clen = (size_t)(slash - comp);
		memcpy(l->name, comp, clen);
		l->name[clen] = '\0';
		if (slash) {
			/* The subtree's least key is its marker, if any. */
			dir_obj(&d, klen == l->plen + clen + 1 ? &o : NULL,
				&b, bucket, l->key, l->plen + clen);
			err = cb(arg, l->name, &d);
			seek_after(l, l->name, clen, '0');
		} else {
			err = cb(arg, l->name, &o);
			seek_after(l, l->name, clen, '\x01');
		}
		if (err)
			goto out;
	}
out:
	if (c)
		rtx_end(c, began);
	free(l);
	return err;
}

int store_dir_has_children(struct store *st, const char *bucket,
			   const char *prefix)
{
	struct conn *c;
	int err, began;

	err = conn_get(st, &c);
	if (err)
		return err;
	began = rtx_begin(c);
	err = dir_has_children_in(c, bucket, prefix);
	rtx_end(c, began);
	return err;
}

int dir_has_children_in(struct conn *c, const char *bucket,
			const char *prefix)
{
	char lo[STORE_KEY_MAX + 2], hi[STORE_KEY_MAX + 2];
	struct bucket_row b;
	struct store_obj o;
	size_t plen;
	int err;

	plen = strnlen(prefix, STORE_KEY_MAX + 1);
	if (plen >= STORE_KEY_MAX)
		return -ENAMETOOLONG;
	err = bucket_row_get(c, bucket, &b);
	if (!err && !plen) {
		err = live_first(c, b.id, "\x01", 1, NULL, 0, NULL, NULL, &o);
	} else if (!err) {
		memcpy(lo, prefix, plen);
		memcpy(hi, prefix, plen);
		lo[plen] = '/';
		lo[plen + 1] = '\x01';
		hi[plen] = '0';
		err = live_first(c, b.id, lo, plen + 2, hi, plen + 1, NULL,
				 NULL, &o);
	}
	return err;
}

/* ---- versions ------------------------------------------------------- */

/* The objects row of @key: 1 with its id and current version, 0 if none,
 * or a negative errno. */
static int obj_find(struct conn *c, int64_t bid, const char *key,
		    int64_t *id, int64_t *cur)
{
	sqlite3_stmt *s = stmt_get(c, ST_OBJ_GET);
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, bid);
	bind_text(s, 2, key, -1);
	err = stmt_step(c, s, "find object");
	if (err == 1) {
		*id = sqlite3_column_int64(s, 0);
		*cur = sqlite3_column_int64(s, 1);
	}
	stmt_done(s);
	return err;
}

int store_version_get(struct store *st, const char *bucket, const char *key,
		      const char *version_id, struct store_obj *out)
{
	struct bucket_row b;
	struct conn *c;
	sqlite3_stmt *s;
	int64_t oid, cur, vid;
	int err;

	err = store_key_check(key);
	if (err)
		return err;
	err = conn_get(st, &c);
	if (err)
		return err;
	err = bucket_row_get(c, bucket, &b);
	if (err)
		return err;
	err = obj_find(c, b.id, key, &oid, &cur);
	if (err <= 0)
		return err ? err : -ENOENT;
	s = stmt_get(c, ST_VER_BY_VID);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, oid);
	bind_text(s, 2, version_id, -1);
	err = stmt_step(c, s, "get version");
	if (err == 1) {
		ver_row_read(s, 0, out, &vid);
		out->is_latest = vid == cur;
	}
	stmt_done(s);
	if (err < 0)
		return err;
	return err ? 0 : -ENOENT;
}

/* The life of a version: from it to the delete marker after it, or to
 * the first version of another owner (a file of theirs renamed over it:
 * `mv`, `sed -i` and rsync replace a file so, with no delete marker). */
static const char sql_life_of_vid[] =
	"SELECT created_ns, id, kind, uid FROM versions "
	"WHERE object = ? AND vid = ?";
static const char sql_life_at[] =
	"SELECT created_ns, id, kind, uid FROM versions "
	"WHERE object = ?1 AND created_ns <= ?2 "
	"ORDER BY created_ns DESC, id DESC LIMIT 1";
static const char sql_life_end[] =
	"SELECT created_ns, id FROM versions "
	"WHERE object = ?1 AND (kind = 4 OR uid != ?4) AND created_ns >= ?2 "
	"AND (created_ns > ?2 OR id > ?3) "
	"ORDER BY created_ns, id LIMIT 1";
static const char sql_life_perms[] =
	"SELECT DISTINCT v.mode, v.uid, v.gid, x.value FROM versions AS v "
	"LEFT JOIN xattrs AS x ON x.version = v.id "
	"AND x.name = 'system.posix_acl_access' "
	"WHERE v.object = ?1 AND v.kind != 4 "
	"AND v.created_ns >= ?2 AND (v.created_ns > ?2 OR v.id >= ?3) "
	"AND v.created_ns <= ?4 AND (v.created_ns < ?4 OR v.id < ?5)";

int store_life_perms(struct store *st, const char *bucket, const char *key,
		     const char *version_id, int64_t t_ns, store_perm_cb cb,
		     void *arg)
{
	int64_t oid, cur, from_ns, from_id, owner, to_ns = INT64_MAX,
		to_id = INT64_MAX;
	struct store_meta m;
	struct bucket_row b;
	struct conn *c;
	sqlite3_stmt *s;
	int err, kind;

	err = store_key_check(key);
	if (!err)
		err = conn_get(st, &c);
	if (!err)
		err = bucket_row_get(c, bucket, &b);
	if (err)
		return err == -ENOENT ? 0 : err;
	err = obj_find(c, b.id, key, &oid, &cur);
	if (err <= 0)
		return err;
	err = stmt_of_sql(c, version_id ? sql_life_of_vid : sql_life_at, &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, oid);
	if (version_id)
		bind_text(s, 2, version_id, -1);
	else
		sqlite3_bind_int64(s, 2, t_ns);
	err = stmt_step(c, s, "find a version's life");
	from_ns = err == 1 ? sqlite3_column_int64(s, 0) : 0;
	from_id = err == 1 ? sqlite3_column_int64(s, 1) : 0;
	kind = err == 1 ? sqlite3_column_int(s, 2) : STORE_DELETE_MARKER;
	owner = err == 1 ? sqlite3_column_int64(s, 3) : 0;
	stmt_done(s);
	if (err <= 0 || kind == STORE_DELETE_MARKER)
		return err < 0 ? err : 0;
	err = stmt_of_sql(c, sql_life_end, &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, oid);
	sqlite3_bind_int64(s, 2, from_ns);
	sqlite3_bind_int64(s, 3, from_id);
	sqlite3_bind_int64(s, 4, owner);
	err = stmt_step(c, s, "find a version's life");
	if (err == 1) {
		to_ns = sqlite3_column_int64(s, 0);
		to_id = sqlite3_column_int64(s, 1);
	}
	stmt_done(s);
	if (err < 0)
		return err;
	err = stmt_of_sql(c, sql_life_perms, &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, oid);
	sqlite3_bind_int64(s, 2, from_ns);
	sqlite3_bind_int64(s, 3, from_id);
	sqlite3_bind_int64(s, 4, to_ns);
	sqlite3_bind_int64(s, 5, to_id);
	memset(&m, 0, sizeof(m));
	while ((err = stmt_step(c, s, "read a life's permissions")) == 1) {
		m.mode = (uint32_t)sqlite3_column_int64(s, 0);
		m.uid = (uint32_t)sqlite3_column_int64(s, 1);
		m.gid = (uint32_t)sqlite3_column_int64(s, 2);
		if (cb(arg, &m, sqlite3_column_blob(s, 3),
		       (size_t)sqlite3_column_bytes(s, 3)))
			break;
	}
	stmt_done(s);
	return err < 0 ? err : 0;
}

/* Versions store_versions() reads per seek. */
#define VER_BATCH 256

int store_versions(struct store *st, const char *bucket, const char *key,
		   store_version_cb cb, void *arg)
{
	struct store_obj *o;
	struct bucket_row b;
	struct conn *c;
	sqlite3_stmt *s;
	int64_t oid, cur, last = INT64_MAX, last_ns = INT64_MAX, id;
	int err, i, n;

	err = store_key_check(key);
	if (err)
		return err;
	err = conn_get(st, &c);
	if (err)
		return err;
	err = bucket_row_get(c, bucket, &b);
	if (err)
		return err;
	err = obj_find(c, b.id, key, &oid, &cur);
	if (err <= 0)
		return err ? err : -ENOENT;
	o = malloc(VER_BATCH * sizeof(*o));
	if (!o)
		return -ENOMEM;
	/* A seek per VER_BATCH versions, none open during @cb. */
	do {
		s = stmt_get(c, ST_VER_OLDER);
		if (!s) {
			err = -EIO;
			break;
		}
		sqlite3_bind_int64(s, 1, oid);
		sqlite3_bind_int64(s, 2, last_ns);
		sqlite3_bind_int64(s, 3, last);
		sqlite3_bind_int(s, 4, VER_BATCH);
		for (n = 0; n < VER_BATCH; n++) {
			err = stmt_step(c, s, "list versions");
			if (err <= 0)
				break;
			store_test_count_row();
			ver_row_read(s, 0, &o[n], &id);
			/* The current version, which is not the newest
			 * by time when the clock went back between two
			 * writes. */
			o[n].is_latest = id == cur;
			last = id;
			last_ns = o[n].created_ns;
		}
		stmt_done(s);
		if (err < 0)
			break;
		for (i = 0, err = 0; !err && i < n; i++)
			err = cb(arg, &o[i]);
	} while (!err && n == VER_BATCH);
	free(o);
	return err;
}
