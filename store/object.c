/*
 * object.c - the write path: PUT, DELETE, DELETE of a version, metadata
 * changes and rename, with S3's versioning rules.
 *
 * Every operation is one BEGIN IMMEDIATE transaction (invariant 2 in
 * store.c) that reads what it decides on (the bucket's versioning, the
 * object's current version) inside itself.  The rules, all in
 * ver_write() and obj_delete_current():
 *
 *   state        PUT                          DELETE (no version ID)
 *   Enabled      new version, fresh ID        delete marker, fresh ID
 *   Suspended    version "null", replacing    delete marker "null",
 *                any null version             replacing any null version
 *   Unversioned  version "null", replacing    the null version is removed
 *                any null version
 *
 * The new version is always the newest (versions.id grows with each
 * write) and becomes objects.cur.  Removing a version (a replaced null
 * version, store_delete_version(), an unversioned DELETE) makes the next
 * newest current, removes the objects row when none is left, and hands a
 * blob no row names any more to blob_unref() (invariant 3).
 */
#include "store/store.h"
#include "store/store_i.h"
#include "store/blob_i.h"
#include "store/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest symlink target kept. */
#define LINK_MAX_LEN (PATH_MAX - 1)

/* ---- rows ----------------------------------------------------------- */

/* The objects row of @key: 1 with id, current version, liveness and
 * inode number (@ino may be NULL), 0 if none, or a negative errno. */
static int obj_get_ino(struct conn *c, int64_t bid, const char *key,
		       int64_t *oid, int64_t *cur, int *live, uint64_t *ino)
{
	sqlite3_stmt *s = stmt_get(c, ST_OBJ_GET);
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, bid);
	bind_text(s, 2, key, -1);
	err = stmt_step(c, s, "get object");
	if (err == 1) {
		*oid = sqlite3_column_int64(s, 0);
		*cur = sqlite3_column_int64(s, 1);
		*live = sqlite3_column_int(s, 2);
		if (ino)
			*ino = (uint64_t)sqlite3_column_int64(s, 3);
	}
	stmt_done(s);
	return err;
}

int obj_get(struct conn *c, int64_t bid, const char *key,
	    int64_t *oid, int64_t *cur, int *live)
{
	return obj_get_ino(c, bid, key, oid, cur, live, NULL);
}

/* Object @oid's inode number becomes @ino. */
static int obj_set_ino(struct conn *c, int64_t oid, uint64_t ino)
{
	sqlite3_stmt *s = stmt_get(c, ST_OBJ_SET_INO);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, oid);
	return stmt_run(c, s, "set inode number");
}

/* One number from the store's reserve into *@ino: 1, or 0 when it is
 * empty. */
static int ino_reserved(struct store *st, uint64_t *ino)
{
	int got;

	pthread_mutex_lock(&st->ino_mu);
	got = st->ino_next < st->ino_end;
	if (got)
		*ino = st->ino_next++;
	pthread_mutex_unlock(&st->ino_mu);
	return got;
}

int ino_take(struct conn *c, uint64_t n, uint64_t *first)
{
	sqlite3_stmt *s;
	int err;

	if (n == 1 && ino_reserved(c->st, first))
		return 0;
	s = stmt_get(c, ST_INO_TAKE);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)n);
	err = stmt_step(c, s, "take inode numbers");
	if (err == 1)
		*first = (uint64_t)sqlite3_column_int64(s, 0);
	stmt_done(s);
	if (err == 1 && *first + n > STORE_INO_OWN) {
		log_err("store: no inode numbers left");
		return -ENOSPC;
	}
	return err == 1 ? 0 : err < 0 ? err : -EIO;
}

/* How many numbers ino_refill() sets aside at a time: one catalog write
 * for as many creates through a mount. */
#define INO_RESERVE 4096

void ino_refill(struct store *st)
{
	uint64_t first;
	int empty;

	pthread_mutex_lock(&st->ino_mu);
	empty = st->ino_next == st->ino_end;
	pthread_mutex_unlock(&st->ino_mu);
	if (!empty || store_ino_reserve(st, INO_RESERVE, &first))
		return;	/* else ino_take() writes ino_next itself */
	pthread_mutex_lock(&st->ino_mu);
	if (st->ino_next == st->ino_end) {
		st->ino_next = first;
		st->ino_end = first + INO_RESERVE;
	}
	pthread_mutex_unlock(&st->ino_mu);
}

int store_ino_new(struct store *st, uint64_t *ino)
{
	ino_refill(st);
	return ino_reserved(st, ino) ? 0 : -ENOSPC;
}

int store_ino_reserve(struct store *st, uint64_t n, uint64_t *first)
{
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (err)
		return err;
	err = tx_begin(c);
	if (err)
		return err;
	err = ino_take(c, n, first);
	if (err)
		tx_rollback(c);
	else
		err = tx_commit(st, c);
	return err;
}

uint64_t store_name_ino(const char *bucket, const char *path, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */
	const unsigned char *p;
	size_t i;

	for (p = (const unsigned char *)bucket; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h = (h ^ '/') * 0x100000001b3ULL;
	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)path[i]) * 0x100000001b3ULL;
	return (2 * STORE_INO_OWN) | (h & (STORE_INO_OWN - 1));
}

/* Version @vid of object @oid: 1 with its row id and sha256 ("" for a
 * marker), 0 if none, or a negative errno. */
int ver_kind(struct conn *c, int64_t id, int64_t *oid, enum store_kind *kind,
	     int *replica)
{
	sqlite3_stmt *s;
	int err;

	err = stmt_of_sql(c, "SELECT object, kind, replica FROM versions "
			     "WHERE id = ?", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	err = stmt_step(c, s, "version kind");
	*oid = sqlite3_column_int64(s, 0);
	*kind = (enum store_kind)sqlite3_column_int(s, 1);
	*replica = sqlite3_column_int(s, 2);
	stmt_done(s);
	return err;
}

int ver_find(struct conn *c, int64_t oid, const char *vid,
	     int64_t *id, char sha[65])
{
	sqlite3_stmt *s = stmt_get(c, ST_VER_BY_VID);
	struct store_obj o;
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, oid);
	bind_text(s, 2, vid, -1);
	err = stmt_step(c, s, "find version");
	if (err == 1) {
		ver_row_read(s, 0, &o, id);
		memcpy(sha, o.sha256, 65);
	}
	stmt_done(s);
	return err;
}

/* Version row @id into @o, its link target into @link (LINK_MAX_LEN + 1
 * bytes). */
static int ver_by_id(struct conn *c, int64_t id, struct store_obj *o,
		     char *link)
{
	sqlite3_stmt *s = stmt_get(c, ST_VER_BY_ID);
	const unsigned char *t;
	int err;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	err = stmt_step(c, s, "read version");
	if (err == 1) {
		ver_row_read(s, 0, o, NULL);
		t = sqlite3_column_text(s, VER_NCOLS);
		snprintf(link, LINK_MAX_LEN + 1, "%s",
			 t ? (const char *)t : "");
		err = 0;
	} else if (!err) {
		log_err("store: version %lld is missing", (long long)id);
		err = -EIO;
	}
	stmt_done(s);
	return err;
}

/*
 * A name came or went in the folder that holds @key (a key of bucket @b;
 * a marker "dir/" is a name in its parent): the folder's mtime and ctime
 * become @now, as a directory's do on a disk when an entry is created,
 * removed or renamed, so that tools that watch a directory's mtime (git's
 * untracked cache, make, backup tools) see the change; never back, as a
 * file created before another in the same folder may be committed after
 * it.  The folder's metadata is its live marker's, changed in place as
 * chmod changes it, or the bucket's for a key at the top; a folder
 * without a marker has none of its own to change.
 */
int parent_touch(struct conn *c, const struct bucket_row *b, const char *key,
		 int64_t now)
{
	char dir[STORE_KEY_MAX + 1];
	size_t len = strlen(key);
	sqlite3_stmt *s;
	int64_t oid, cur;
	int err, live;

	if (len && key[len - 1] == '/')
		len--;
	while (len && key[len - 1] != '/')
		len--;
	if (!len) {
		s = stmt_get(c, ST_BUCKET_SET_TIMES);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, now);
		sqlite3_bind_int64(s, 2, now);
		sqlite3_bind_int64(s, 3, b->id);
		return stmt_run(c, s, "touch bucket");
	}
	memcpy(dir, key, len);
	dir[len] = '\0';
	err = obj_get(c, b->id, dir, &oid, &cur, &live);
	if (err <= 0 || !live)
		return err < 0 ? err : 0;
	s = stmt_get(c, ST_VER_SET_TIMES);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, cur);
	return stmt_run(c, s, "touch folder");
}

/* Point object @oid (key @key of bucket @b) at its newest version, or
 * remove it when it has none left; when that changes whether the key is
 * there (@was_live: it was), its folder changes (parent_touch()). */
int obj_refresh(struct conn *c, const struct bucket_row *b, const char *key,
		int64_t oid, int was_live)
{
	sqlite3_stmt *s = stmt_get(c, ST_VER_NEWEST);
	int64_t id = 0;
	int err, kind = 0;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, oid);
	err = stmt_step(c, s, "newest version");
	if (err == 1) {
		id = sqlite3_column_int64(s, 0);
		kind = sqlite3_column_int(s, 1);
	}
	stmt_done(s);
	if (err < 0)
		return err;
	if (!err) {
		s = stmt_get(c, ST_OBJ_DELETE);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, oid);
		err = stmt_run(c, s, "delete object");
	} else {
		s = stmt_get(c, ST_OBJ_SET_CUR);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int(s, 2, kind != STORE_DELETE_MARKER);
		sqlite3_bind_int64(s, 3, oid);
		err = stmt_run(c, s, "set current version");
	}
	if (!err && was_live != (id && kind != STORE_DELETE_MARKER))
		err = parent_touch(c, b, key, now_ns());
	return err;
}

/* Delete version row @id (its xattrs go with it) and let go of its blob
 * @sha ("" for a marker).  The caller calls obj_refresh() after. */
int ver_remove(struct store *st, struct conn *c, int64_t id,
	       const char *sha, struct trash *t)
{
	sqlite3_stmt *s = stmt_get(c, ST_VER_DELETE);
	int err;

	if (!s)
		return -EIO;
	err = repl_unqueue(c, id);
	if (err) {
		stmt_done(s);
		return err;
	}
	sqlite3_bind_int64(s, 1, id);
	err = stmt_run(c, s, "delete version");
	if (err)
		return err;
	return *sha ? blob_unref(st, c, sha, t) : 0;
}

/*
 * Write @nv as the newest version of @key in bucket @b with the rules of
 * the bucket's versioning (see the table above), and queue it for
 * replication.  The version ID goes to @vid_out (may be NULL) and the
 * version to @obj_out (may be NULL).  A replica (@nv->vid set) keeps its
 * ID and is not queued; 1 when the key has that version already.
 */
int ver_write(struct store *st, struct conn *c,
	      const struct bucket_row *b, const char *key,
	      const struct newver *nv, char *vid_out,
	      struct store_obj *obj_out, struct trash *t)
{
	char vid[STORE_VID_MAX + 1], null_sha[65] = "";
	int64_t oid, cur = 0, id, null_id = 0, xsrc = nv->xattr_src;
	int64_t now = now_ns();
	uint64_t ino = 0;
	sqlite3_stmt *s;
	size_t i;
	int err, live = 0, queued = 0, older = 0;

	err = obj_get_ino(c, b->id, key, &oid, &cur, &live, &ino);
	if (err < 0)
		return err;
	if (!err) {
		ino = nv->ino;
		if (!ino) {
			err = ino_take(c, 1, &ino);
			if (err)
				return err;
		}
		s = stmt_get(c, ST_OBJ_INSERT);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, b->id);
		bind_text(s, 2, key, -1);
		sqlite3_bind_int64(s, 3, (int64_t)ino);
		err = stmt_run(c, s, "insert object");
		if (err)
			return err;
		oid = sqlite3_last_insert_rowid(c->db);
		cur = 0;
		live = 0;
	} else if (nv->ino && nv->ino != ino) {
		ino = nv->ino;
		err = obj_set_ino(c, oid, ino);
		if (err)
			return err;
	}
	if (nv->keep_xattrs && live)
		xsrc = cur;
	if (nv->vid) {
		snprintf(vid, sizeof(vid), "%s", nv->vid);
		err = ver_find(c, oid, vid, &null_id, null_sha);
		if (err < 0)
			return err;
		if (err && strcmp(vid, STORE_NULL_VID))
			return 1;	/* delivered before */
	} else if (b->versioning == STORE_ENABLED) {
		err = vid_new(vid);
		if (err)
			return err;
	} else {
		snprintf(vid, sizeof(vid), "%s", STORE_NULL_VID);
		err = ver_find(c, oid, vid, &null_id, null_sha);
		if (err < 0)
			return err;
	}

	/* With a null version to replace, the new row is "" until the old
	 * one (and its xattrs, which we may copy first) is gone. */
	s = stmt_get(c, ST_VER_INSERT);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, oid);
	bind_text(s, 2, null_id ? "" : vid, -1);
	sqlite3_bind_int(s, 3, nv->kind);
	if (nv->sha)
		bind_text(s, 4, nv->sha, -1);
	sqlite3_bind_int64(s, 5, nv->size);
	sqlite3_bind_int64(s, 6, nv->meta.mode);
	sqlite3_bind_int64(s, 7, nv->meta.uid);
	sqlite3_bind_int64(s, 8, nv->meta.gid);
	sqlite3_bind_int64(s, 9, nv->meta.mtime_ns || nv->mtime_set
					 ? nv->meta.mtime_ns
					 : now);
	sqlite3_bind_int64(s, 10, nv->meta.ctime_ns ? nv->meta.ctime_ns : now);
	sqlite3_bind_int64(s, 11, nv->created_ns ? nv->created_ns : now);
	if (nv->link)
		bind_text(s, 12, nv->link, -1);
	sqlite3_bind_int(s, 13, nv->vid != NULL);
	if (nv->blocks >= 0)
		sqlite3_bind_int64(s, 14, nv->blocks);
	bind_atime(s, 15, nv->meta.atime_ns);
	err = stmt_run(c, s, "insert version");
	if (err)
		return err;
	id = sqlite3_last_insert_rowid(c->db);

	if (xsrc && nv->kind != STORE_DELETE_MARKER) {
		s = stmt_get(c, ST_XATTR_COPY);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, xsrc);
		err = stmt_run(c, s, "copy xattrs");
		if (err)
			return err;
	}
	for (i = 0; i < nv->nxattrs; i++) {
		err = xattr_write(c, 0, id, &nv->xattrs[i]);
		if (err)
			return err;
	}
	if (null_id) {
		err = ver_remove(st, c, null_id, null_sha, t);
		if (err)
			return err;
		s = stmt_get(c, ST_VER_SET_VID);
		if (!s)
			return -EIO;
		bind_text(s, 1, vid, -1);
		sqlite3_bind_int64(s, 2, id);
		err = stmt_run(c, s, "name null version");
		if (err)
			return err;
	}
	if (nv->vid && cur) {
		/* A replica that arrives after a newer one (a batch job
		 * sending an old failure again) takes its place in the
		 * history, not the current version's: the source wrote it
		 * first, and the replica would go back in time
		 * (VER_NOT_LATE in store.c). */
		s = stmt_get(c, ST_VER_NEWEST);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, oid);
		err = stmt_step(c, s, "newest version");
		older = err == 1 && sqlite3_column_int64(s, 0) != id;
		stmt_done(s);
		if (err < 0)
			return err;
	}
	if (!older) {
		s = stmt_get(c, ST_OBJ_SET_CUR);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int(s, 2, nv->kind != STORE_DELETE_MARKER);
		sqlite3_bind_int64(s, 3, oid);
		err = stmt_run(c, s, "set current version");
	}
	/* A replica's folders take their times from the source's markers,
	 * not from the order of arrival. */
	if (!err && !older && !nv->vid &&
	    !nv->no_touch &&
	    (nv->touch_parent || live != (nv->kind != STORE_DELETE_MARKER)))
		err = parent_touch(c, b, key,
				   nv->named_ns ? nv->named_ns : now);
	if (!err && !nv->vid) {
		queued = repl_enqueue(c, b, key, oid, id, nv->kind);
		err = queued < 0 ? queued : 0;
	}
	if (err)
		return err;

	if (vid_out)
		snprintf(vid_out, STORE_VID_MAX + 1, "%s", vid);
	if (obj_out) {
		memset(obj_out, 0, sizeof(*obj_out));
		obj_out->kind = nv->kind;
		snprintf(obj_out->version_id, sizeof(obj_out->version_id),
			 "%s", vid);
		if (nv->sha)
			snprintf(obj_out->sha256, sizeof(obj_out->sha256),
				 "%s", nv->sha);
		obj_out->size = nv->size;
		obj_out->blocks = nv->blocks;
		obj_out->meta = nv->meta;
		if (!obj_out->meta.mtime_ns && !nv->mtime_set)
			obj_out->meta.mtime_ns = now;
		if (!obj_out->meta.ctime_ns)
			obj_out->meta.ctime_ns = now;
		obj_out->created_ns = nv->created_ns ? nv->created_ns : now;
		obj_out->is_latest = !older;
		obj_out->is_replica = nv->vid != NULL;
		obj_out->queued = queued > 0 ? (unsigned)queued : 0;
		obj_out->ino = ino;
	}
	return 0;
}

/* DELETE without a version ID of @key in bucket @b (see the table).  A
 * delete marker names @who's uid and gid as its owner, with mode 0444 to
 * say so (@who NULL: none, mode 0).  @quiet: the key's folder keeps its
 * mtime (a key inside a folder that a rename moves). */
static int obj_delete_current(struct store *st, struct conn *c,
			      const struct bucket_row *b, const char *key,
			      const char *moved_to,
			      const struct store_meta *who, int quiet,
			      char *vid_out, struct trash *t)
{
	struct newver marker = { .kind = STORE_DELETE_MARKER,
				 .link = moved_to, .no_touch = quiet };
	char sha[65];
	int64_t oid, cur, id;
	int err, live;

	if (vid_out)
		vid_out[0] = '\0';
	if (who) {
		marker.meta.mode = 0444;
		marker.meta.uid = who->uid;
		marker.meta.gid = who->gid;
	}
	err = obj_get(c, b->id, key, &oid, &cur, &live);
	if (err < 0)
		return err;
	if (!err || !live)
		return -ENOENT;
	if (b->versioning != STORE_UNVERSIONED)
		return ver_write(st, c, b, key, &marker, vid_out, NULL, t);
	err = ver_find(c, oid, STORE_NULL_VID, &id, sha);
	if (err <= 0)
		return err ? err : -ENOENT;
	err = ver_remove(st, c, id, sha, t);
	if (err)
		return err;
	return obj_refresh(c, b, key, oid, !quiet);
}

/* Finish the transaction of an operation that returned @err: commit, or
 * roll back and restore the blobs it trashed. */
int tx_end(struct store *st, struct conn *c, int err,
	   struct trash *t)
{
	if (!err)
		err = tx_commit(st, c);
	if (err) {
		tx_rollback(c);
		trash_restore(st, t);
	} else {
		trash_empty(st, t);
	}
	return err;
}

/* ---- PUT ------------------------------------------------------------ */

static uint32_t type_bits(enum store_kind kind)
{
	switch (kind) {
	case STORE_SYMLINK:
		return S_IFLNK;
	case STORE_DIR:
		return S_IFDIR;
	default:
		return S_IFREG;
	}
}

int store_stage_mem(struct store *st, const char *buf, size_t len, int *fd)
{
	int err;

	err = store_stage_new(st, NULL, 0, fd);
	if (err)
		return err;
	err = store_pwrite_all(*fd, buf, len, 0);
	if (err) {
		log_err("store: write staging file: %s", strerror(-err));
		stage_close(st, *fd);
		*fd = -1;
	}
	return err;
}

/* store_put.replaces: version @vid of @key, an empty file that was the
 * current version until the one just written, goes for good. */
static int put_replaces(struct store *st, struct conn *c,
			const struct bucket_row *b, const char *key,
			const char *vid, struct trash *t)
{
	char sha[65], link[LINK_MAX_LEN + 1];
	struct store_obj o;
	sqlite3_stmt *s;
	int64_t oid, cur, id, prev;
	int err, live;

	if (b->versioning != STORE_ENABLED || !strcmp(vid, STORE_NULL_VID))
		return 0;
	err = obj_get(c, b->id, key, &oid, &cur, &live);
	if (err > 0)
		err = ver_find(c, oid, vid, &id, sha);
	if (err <= 0)
		return err;
	err = stmt_of_sql(c, "SELECT max(id) FROM versions "
			     "WHERE object = ? AND id < ?", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, oid);
	sqlite3_bind_int64(s, 2, cur);
	err = stmt_step(c, s, "previous version");
	prev = sqlite3_column_int64(s, 0);
	stmt_done(s);
	if (err < 0)
		return err;
	if (!err || prev != id)
		return 0;
	err = ver_by_id(c, id, &o, link);
	if (err || o.kind != STORE_FILE || o.size != 0)
		return err;
	/* Not one that replication sent, or is sending: the replica
	 * would keep a version the source no longer has. */
	err = stmt_of_sql(c, "SELECT 1 FROM repl_queue WHERE version = ? "
			     "AND (status = 1 OR owner != 0) LIMIT 1", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	err = stmt_step(c, s, "version sent");
	stmt_done(s);
	if (err)
		return err < 0 ? err : 0;
	err = ver_remove(st, c, id, sha, t);
	return err ? err : obj_refresh(c, b, key, oid, live);
}

int store_put(struct store *st, const char *bucket, const char *key,
	      struct store_put *put, char *vid_out, struct store_obj *obj_out)
{
	struct newver nv = { .kind = put->kind };
	char sha[65] = BLOB_EMPTY_SHA;
	struct bucket_row b;
	struct trash t;
	struct stat sb;
	struct conn *c;
	size_t klen;
	int fd = put->fd, err, placed;

	trash_init(&t);
	err = store_key_check(key);
	if (err)
		goto out;
	klen = strlen(key);
	if ((put->kind == STORE_DIR) != (key[klen - 1] == '/') ||
	    (put->kind != STORE_FILE && put->kind != STORE_SYMLINK &&
	     put->kind != STORE_DIR)) {
		err = -EINVAL;
		goto out;
	}
	if (put->kind != STORE_FILE && fd >= 0) {
		stage_close(st, fd);
		fd = -1;
	}
	if (put->kind == STORE_SYMLINK) {
		if (!put->link_target) {
			err = -EINVAL;
			goto out;
		}
		nv.size = strlen(put->link_target);
		if (nv.size > LINK_MAX_LEN) {
			err = -ENAMETOOLONG;
			goto out;
		}
		/* The blob of a symlink holds its target, as s3fs keeps
		 * it, so size and hash describe the content. */
		err = store_stage_mem(st, put->link_target, nv.size, &fd);
		if (err)
			goto out;
		nv.link = put->link_target;
	}
	if (fd >= 0) {
		if (put->sha256 && put->kind == STORE_FILE) {
			if (!sha_valid(put->sha256)) {
				err = -EINVAL;
				goto out;
			}
			memcpy(sha, put->sha256, 65);
		} else {
			err = store_hash_fd(fd, sha);
			if (err)
				goto out;
		}
		if (fstat(fd, &sb)) {
			err = -errno;
			goto out;
		}
		if (put->kind == STORE_FILE)
			nv.size = sb.st_size;
		nv.blocks = sb.st_blocks;
		if (put->durable && fsync(fd)) {
			err = -errno;
			log_err("store: fsync staging file: %s",
				strerror(-err));
			goto out;
		}
	}
	nv.sha = sha;
	nv.meta = put->meta;
	nv.meta.mode = type_bits(put->kind) | (put->meta.mode & 07777);
	nv.mtime_set = put->mtime_set;
	nv.keep_xattrs = put->keep_xattrs;
	nv.xattrs = put->xattrs;
	nv.nxattrs = put->nxattrs;
	nv.named_ns = put->named_ns;
	nv.ino = put->ino;

	if (!nv.ino)
		ino_refill(st);
	/* A `cp -r` puts a folder's marker, and each large file, while the
	 * close journal's thread applies the small files before it: only a
	 * version that bears on this key must be in first. */
	err = journal_settle_put(st, bucket, key);
	if (!err)
		err = conn_get_settled(st, &c);
	if (err)
		goto out;
	err = tx_begin_settled(c);
	if (err)
		goto out;
	err = bucket_row_get(c, bucket, &b);
	if (!err && fd >= 0)
		err = blob_place(st, fd, sha, put->durable);
	placed = c->placed;
	if (!err)
		err = ver_write(st, c, &b, key, &nv, vid_out, obj_out, &t);
	if (!err && put->replaces)
		err = put_replaces(st, c, &b, key, put->replaces, &t);
	err = tx_end(st, c, err, &t);
	if (err && placed)
		blob_drop_unnamed(st, c, sha);
	if (!err && put->durable)
		err = store_sync(st);
out:
	stage_close(st, fd);
	trash_release(&t);
	return err;
}

/* ---- replicas ------------------------------------------------------- */

int store_stage_copy(struct store *st, int src, int *fd)
{
	int err;

	err = store_stage_new(st, NULL, 0, fd);
	if (err)
		return err;
	err = store_copy(src, *fd, UINT64_MAX, NULL);
	if (err) {
		log_err("store: copy content: %s", strerror(-err));
		stage_close(st, *fd);
		*fd = -1;
	}
	return err;
}

/* Set the metadata of version @vid of @key in bucket @b to @meta. */
static int replica_meta(struct conn *c, const struct bucket_row *b,
			const char *key, const char *vid,
			const struct store_meta *meta)
{
	char sha[65];
	sqlite3_stmt *s;
	int64_t oid, cur, id;
	int err, live;

	err = obj_get(c, b->id, key, &oid, &cur, &live);
	if (err == 1)
		err = ver_find(c, oid, vid, &id, sha);
	if (err <= 0)
		return err;
	s = stmt_get(c, ST_VER_SET_META);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, meta->mode);
	sqlite3_bind_int64(s, 2, meta->uid);
	sqlite3_bind_int64(s, 3, meta->gid);
	sqlite3_bind_int64(s, 4, meta->mtime_ns);
	sqlite3_bind_int64(s, 5, meta->ctime_ns ? meta->ctime_ns : now_ns());
	bind_atime(s, 6, meta->atime_ns);
	sqlite3_bind_int64(s, 7, id);
	return stmt_run(c, s, "set replica meta");
}

/* Whether the file open at @fd can be linked into the store (*@sb gets
 * its stat): the same file system, seen through the same mount, since
 * link(2) refuses to cross two mounts of one file system (a bind mount)
 * with EXDEV. */
static int same_fs(struct store *st, int fd, struct stat *sb)
{
	struct statx a, b;

	if (fstat(fd, sb) || !S_ISREG(sb->st_mode) ||
	    statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &a) ||
	    statx(AT_FDCWD, store_path(st), 0, STATX_MNT_ID, &b))
		return 0;
	/* One device too: btrfs subvolumes share a mount, not links. */
	return (a.stx_mask & b.stx_mask & STATX_MNT_ID) &&
	       a.stx_mnt_id == b.stx_mnt_id &&
	       a.stx_dev_major == b.stx_dev_major &&
	       a.stx_dev_minor == b.stx_dev_minor;
}

/* A replica made ready outside the transaction: content staged (or the
 * source's blob to link) and hashed. */
struct rep_prep {
	struct newver nv;
	char sha[65];
	int fd;		/* staged content, or -1 */
	int link_fd;	/* the source's blob to link, or -1 */
};

static int replica_prepare(struct store *st, const char *bucket,
			   const char *key, const struct store_replica *r,
			   struct rep_prep *p)
{
	struct stat sb;
	size_t klen;
	int err;

	memset(p, 0, sizeof(*p));
	p->nv.kind = r->kind;
	memcpy(p->sha, BLOB_EMPTY_SHA, sizeof(BLOB_EMPTY_SHA));
	p->fd = -1;
	p->link_fd = -1;
	err = store_key_check(key);
	if (err)
		return err;
	klen = strlen(key);
	/* A delete marker may hide a folder's marker ("a/") as well as a
	 * file: it is the one kind whose key may end either way. */
	if (!r->version_id || !*r->version_id ||
	    strlen(r->version_id) > STORE_VID_MAX ||
	    (r->kind != STORE_DELETE_MARKER &&
	     (r->kind == STORE_DIR) != (key[klen - 1] == '/')) ||
	    (r->kind == STORE_SYMLINK && !r->link_target) ||
	    (r->kind != STORE_FILE && r->kind != STORE_SYMLINK &&
	     r->kind != STORE_DIR && r->kind != STORE_DELETE_MARKER))
		return -EINVAL;
	if (r->kind == STORE_SYMLINK) {
		p->nv.size = strlen(r->link_target);
		if (p->nv.size > LINK_MAX_LEN)
			return -ENAMETOOLONG;
		err = store_stage_mem(st, r->link_target, p->nv.size, &p->fd);
		p->nv.link = r->link_target;
	} else if (r->kind == STORE_FILE && r->fd >= 0 && r->fd_is_blob &&
		   r->sha256 && sha_valid(r->sha256) &&
		   same_fs(st, r->fd, &sb)) {
		/* The source's blob is immutable and named by its hash: on
		 * the same file system it becomes ours by a hard link, with
		 * no data copied.  It is hashed all the same: a blob the
		 * disk damaged was linked, and the replica COMPLETED. */
		err = store_hash_fd(r->fd, p->sha);
		if (err)
			return err;
		if (strcmp(p->sha, r->sha256)) {
			log_err("store: replica %s/%s %s: the source's blob "
				"does not match its SHA-256 (damaged?)",
				bucket, key, r->version_id);
			return -EBADMSG;
		}
		p->link_fd = r->fd;
		p->nv.size = sb.st_size;
		p->nv.blocks = sb.st_blocks;
	} else if (r->kind == STORE_FILE && r->fd >= 0) {
		err = store_stage_copy(st, r->fd, &p->fd);
	}
	if (err)
		return err;
	if (p->fd >= 0) {
		err = store_hash_fd(p->fd, p->sha);
		if (err)
			return err;
		if (r->kind == STORE_FILE && r->sha256 &&
		    strcmp(p->sha, r->sha256)) {
			log_err("store: replica %s/%s %s: content does not "
				"match its SHA-256", bucket, key,
				r->version_id);
			return -EBADMSG;	/* no retry heals it */
		}
		if (fstat(p->fd, &sb))
			return -errno;
		if (r->kind == STORE_FILE)
			p->nv.size = sb.st_size;
		p->nv.blocks = sb.st_blocks;
	}
	p->nv.sha = r->kind == STORE_DELETE_MARKER ? NULL : p->sha;
	p->nv.meta = r->meta;
	p->nv.mtime_set = 1;	/* the source's, the epoch too */
	if (r->kind != STORE_DELETE_MARKER)
		p->nv.meta.mode = type_bits(r->kind) | (r->meta.mode & 07777);
	p->nv.vid = r->version_id;
	p->nv.created_ns = r->created_ns;
	return 0;
}

/* A replica written at @t_ns (the source's time) into bucket @b: the
 * bucket holds history from then on, which .at shows (a backup bucket
 * made after the data it is sent). */
static int bucket_since(struct conn *c, const struct bucket_row *b,
			int64_t t_ns)
{
	static const char sql[] = "UPDATE buckets SET created_ns = ?1 "
				  "WHERE id = ?2 AND created_ns > ?1";
	sqlite3_stmt *s;
	int err;

	if (t_ns <= 0)
		return 0;
	err = stmt_of_sql(c, sql, &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, t_ns);
	sqlite3_bind_int64(s, 2, b->id);
	return stmt_run(c, s, "bucket since");
}

/* The replica's rows, within the caller's transaction on @c. */
static int replica_apply(struct store *st, struct conn *c,
			 const struct bucket_row *b, const char *key,
			 const struct store_replica *r, struct rep_prep *p,
			 struct trash *t)
{
	int64_t oid, cur, id = 0;
	sqlite3_stmt *del;
	char sha[65];
	size_t i;
	int err = 0, live, again;

	if (p->fd >= 0 || p->link_fd >= 0)
		err = blob_place(st, p->fd >= 0 ? p->fd : p->link_fd, p->sha,
				 0);
	if (!err)
		err = ver_write(st, c, b, key, &p->nv, NULL, NULL, t);
	if (err == 0)
		err = bucket_since(c, b, r->created_ns);
	if (err < 0 || r->kind == STORE_DELETE_MARKER)
		return err < 0 ? err : 0;
	/* err 1: this version is there already: delivered twice, or again
	 * after a change of its metadata (chmod, chown, touch, setfattr),
	 * which the replica takes in place as the source did, its xattrs
	 * becoming the ones sent. */
	again = err == 1;
	if (again)
		err = replica_meta(c, b, key, r->version_id, &p->nv.meta);
	if (err || (!again && !r->nxattrs))
		return err;
	/* The version, which need not be the current one. */
	err = obj_get(c, b->id, key, &oid, &cur, &live);
	if (err == 1)
		err = ver_find(c, oid, r->version_id, &id, sha);
	if (err <= 0)
		return err < 0 ? err : -EIO;
	err = 0;
	if (again) {
		err = stmt_of_sql(c, "DELETE FROM xattrs WHERE version = ?",
				  &del);
		if (err)
			return err;
		sqlite3_bind_int64(del, 1, id);
		err = stmt_run(c, del, "drop replica xattrs");
	}
	for (i = 0; !err && i < r->nxattrs; i++) {
		sqlite3_stmt *s = stmt_get(c, ST_XATTR_PUT);

		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, id);
		bind_text(s, 2, r->xattrs[i].name, -1);
		sqlite3_bind_blob(s, 3, r->xattrs[i].value,
				  (int)r->xattrs[i].size, SQLITE_STATIC);
		err = stmt_run(c, s, "put replica xattr");
	}
	return err;
}

/* Within the write transaction: the bucket, which must take replicas. */
static int replica_bucket(struct conn *c, const char *bucket,
			  struct bucket_row *b)
{
	int err = bucket_row_get(c, bucket, b);

	if (!err && b->versioning != STORE_ENABLED) {
		log_err("store: replicas to bucket %s refused: its versioning "
			"is not Enabled", bucket);
		err = -EINVAL;
	}
	return err;
}

/* SAVEPOINT, RELEASE or ROLLBACK TO of one replica of a batch. */
static int savepoint(struct conn *c, const char *sql)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_err(c, rc, sql);
}

int store_put_replicas(struct store *st, const char *bucket,
		       const char *const *keys,
		       const struct store_replica *r, size_t n, int *rets)
{
	struct rep_prep *p;
	struct trash *t;
	struct bucket_row b;
	struct conn *c;
	size_t i, ok = 0;
	int err;

	p = calloc(n, sizeof(*p));
	t = calloc(n, sizeof(*t));
	if (!p || !t) {
		free(p);
		free(t);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		trash_init(&t[i]);
		rets[i] = replica_prepare(st, bucket, keys[i], &r[i], &p[i]);
		ok += !rets[i];
	}
	if (ok)
		ino_refill(st);
	err = ok ? conn_get(st, &c) : 0;
	if (!err && ok)
		err = tx_begin(c);
	if (!err && ok) {
		err = replica_bucket(c, bucket, &b);
		/* Each replica under its own savepoint: one that fails is
		 * undone alone, and the others still go in. */
		for (i = 0; !err && i < n; i++) {
			if (rets[i])
				continue;
			err = savepoint(c, "SAVEPOINT replica");
			if (err)
				break;
			rets[i] = replica_apply(st, c, &b, keys[i], &r[i],
						&p[i], &t[i]);
			if (rets[i]) {
				err = savepoint(c, "ROLLBACK TO replica");
				trash_restore(st, &t[i]);
				/* A blob it may have linked is named by
				 * nothing: collected at a later open. */
				if (c->placed)
					atomic_store(&st->garbage, 1);
			}
			if (!err)
				err = savepoint(c, "RELEASE replica");
		}
		if (!err)
			err = tx_commit(st, c);
		if (err)
			tx_rollback(c);
	}
	for (i = 0; i < n; i++) {
		if (err && !rets[i]) {
			rets[i] = err;
			trash_restore(st, &t[i]);
		} else if (!rets[i]) {
			trash_empty(st, &t[i]);
		}
		stage_close(st, p[i].fd);
		trash_release(&t[i]);
	}
	free(p);
	free(t);
	return 0;
}

int store_put_replica(struct store *st, const char *bucket, const char *key,
		      const struct store_replica *r)
{
	int err, ret;

	err = store_put_replicas(st, bucket, &key, r, 1, &ret);
	return err ? err : ret;
}

/* ---- DELETE --------------------------------------------------------- */

static int delete_current(struct store *st, const char *bucket,
			  const char *key, const struct store_meta *who,
			  char *vid_out)
{
	struct bucket_row b;
	struct trash t;
	struct conn *c;
	int err;

	if (vid_out)
		vid_out[0] = '\0';
	err = store_key_check(key);
	if (err)
		return err;
	err = conn_get(st, &c);
	if (err)
		return err;
	trash_init(&t);
	err = tx_begin(c);
	if (err)
		return err;
	err = bucket_row_get(c, bucket, &b);
	if (!err)
		err = obj_delete_current(st, c, &b, key, NULL, who, 0, vid_out,
					 &t);
	return tx_end(st, c, err, &t);
}

int store_delete(struct store *st, const char *bucket, const char *key,
		 char *vid_out)
{
	return delete_current(st, bucket, key, NULL, vid_out);
}

int store_delete_by(struct store *st, const char *bucket, const char *key,
		    uint32_t uid, uint32_t gid, char *vid_out)
{
	struct store_meta who = { .uid = uid, .gid = gid };

	return delete_current(st, bucket, key, &who, vid_out);
}

static int delete_version(struct store *st, const char *bucket,
			  const char *key, const char *version_id)
{
	struct bucket_row b;
	struct trash t;
	struct conn *c;
	char sha[65];
	int64_t oid, cur, id;
	int err, live;

	err = store_key_check(key);
	if (err)
		return err;
	err = conn_get(st, &c);
	if (err)
		return err;
	trash_init(&t);
	err = tx_begin(c);
	if (err)
		return err;
	err = bucket_row_get(c, bucket, &b);
	if (err)
		goto out;
	err = obj_get(c, b.id, key, &oid, &cur, &live);
	if (err <= 0) {
		err = err ? err : -ENOENT;
		goto out;
	}
	err = ver_find(c, oid, version_id, &id, sha);
	if (err <= 0) {
		err = err ? err : -ENOENT;
		goto out;
	}
	err = ver_remove(st, c, id, sha, &t);
	if (!err)
		err = obj_refresh(c, &b, key, oid, live);
	if (!err && id == cur)
		err = repl_mirror_current(c, &b, key);
out:
	return tx_end(st, c, err, &t);
}

int store_delete_version(struct store *st, const char *bucket,
			 const char *key, const char *version_id)
{
	int err = delete_version(st, bucket, key, version_id), tries = 0;

	while (store_room_retry(st, err, tries++)) {
		err = delete_version(st, bucket, key, version_id);
		if (!err)
			store_reserve_make(st);
	}
	return err;
}

/* ---- metadata ------------------------------------------------------- */

int store_set_meta(struct store *st, const char *bucket, const char *key,
		   const struct store_meta *meta, unsigned mask)
{
	return store_set_meta_xattr(st, bucket, key, meta, mask, NULL, 0);
}

int store_set_meta_xattr(struct store *st, const char *bucket,
			 const char *key, const struct store_meta *meta,
			 unsigned mask, const struct store_xattr *x,
			 size_t nx)
{
	struct bucket_row b;
	struct trash t;
	struct conn *c;
	int err;

	if (!key[0])	/* the bucket itself */
		return bucket_set_meta_xattr(st, bucket, meta, mask, x, nx);
	err = store_key_check(key);
	if (err)
		return err;
	err = conn_get(st, &c);
	if (err)
		return err;
	trash_init(&t);
	err = tx_begin(c);
	if (err)
		return err;
	err = bucket_row_get(c, bucket, &b);
	if (!err)
		err = meta_set_in(st, c, &b, key, meta, mask, x, nx);
	return tx_end(st, c, err, &t);
}

int meta_set_in(struct store *st, struct conn *c, const struct bucket_row *b,
		const char *key, const struct store_meta *meta, unsigned mask,
		const struct store_xattr *x, size_t nx)
{
	char link[LINK_MAX_LEN + 1];
	struct store_obj o;
	sqlite3_stmt *s;
	int64_t oid, cur;
	size_t i;
	int err, live;

	err = obj_get(c, b->id, key, &oid, &cur, &live);
	if (err <= 0 || !live)
		return err < 0 ? err : -ENOENT;
	err = ver_by_id(c, cur, &o, link);
	if (err)
		return err;
	if (mask & STORE_SET_MODE)
		o.meta.mode = (o.meta.mode & S_IFMT) | (meta->mode & 07777);
	if (mask & STORE_SET_UID)
		o.meta.uid = meta->uid;
	if (mask & STORE_SET_GID)
		o.meta.gid = meta->gid;
	if (mask & STORE_SET_MTIME)
		o.meta.mtime_ns = meta->mtime_ns;
	if (mask & STORE_SET_ATIME)
		o.meta.atime_ns = meta->atime_ns;
	s = stmt_get(c, ST_VER_SET_META);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, o.meta.mode);
	sqlite3_bind_int64(s, 2, o.meta.uid);
	sqlite3_bind_int64(s, 3, o.meta.gid);
	sqlite3_bind_int64(s, 4, o.meta.mtime_ns);
	sqlite3_bind_int64(s, 5, (mask & STORE_SET_CTIME) && meta->ctime_ns
					 ? meta->ctime_ns
					 : now_ns());
	bind_atime(s, 6, o.meta.atime_ns);
	sqlite3_bind_int64(s, 7, cur);
	err = stmt_run(c, s, "set meta");
	for (i = 0; !err && i < nx; i++)
		err = xattr_write(c, 0, cur, &x[i]);
	/* The replicas take the change too: the version goes again; not for
	 * a new atime alone, which is not worth sending a file again for
	 * (S3 keeps none). */
	if (!err && !o.is_replica &&
	    (mask & ~(STORE_SET_ATIME | STORE_SET_CTIME))) {
		err = repl_enqueue_update(c, b, key, oid, cur, o.kind);
		err = err < 0 ? err : 0;
	}
	return err;
}

/* ---- rename --------------------------------------------------------- */

enum { R_NONE, R_FILE, R_DIR };

/* Whether folder @path of bucket @b is live: 1 with *@marker set when its
 * marker "@path/" is, else 1 when a live key is below it, 0 when neither,
 * or a negative errno. */
static int folder_live(struct conn *c, const struct bucket_row *b,
		       const char *path, int *marker)
{
	char lo[STORE_KEY_MAX + 2], hi[STORE_KEY_MAX + 2];
	size_t len = strlen(path);
	sqlite3_stmt *s;
	int64_t oid, cur;
	int err, live;

	*marker = 0;
	if (len + 1 > STORE_KEY_MAX)
		return 0;
	memcpy(lo, path, len);
	lo[len] = '/';
	lo[len + 1] = '\0';
	memcpy(hi, path, len);
	hi[len] = '0';
	err = obj_get(c, b->id, lo, &oid, &cur, &live);
	if (err < 0)
		return err;
	*marker = err && live;
	if (*marker)
		return 1;
	s = stmt_get(c, ST_LIVE_RANGE);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, b->id);
	bind_text(s, 2, lo, len + 1);
	bind_text(s, 3, hi, len + 1);
	err = stmt_step(c, s, "live below");
	stmt_done(s);
	return err;
}

/* What @path of bucket @b is: R_NONE, R_FILE or R_DIR (then *@marker
 * says whether "path/" exists), or a negative errno. */
static int resolve(struct conn *c, const struct bucket_row *b,
		   const char *path, int *marker)
{
	int64_t oid, cur;
	int err, live;

	err = obj_get(c, b->id, path, &oid, &cur, &live);
	if (err < 0)
		return err;
	if (err && live)
		return R_FILE;
	err = folder_live(c, b, path, marker);
	if (err < 0)
		return err;
	return err ? R_DIR : R_NONE;
}

int folders_back(struct store *st, struct conn *c, const struct bucket_row *b,
		 const char *key, struct trash *t, unsigned *n)
{
	char pfx[STORE_KEY_MAX + 2], link[LINK_MAX_LEN + 1];
	struct store_obj o;
	const char *slash;
	int64_t oid, cur;
	int err, live;
	size_t len;

	for (slash = strchr(key, '/'); slash; slash = strchr(slash + 1, '/')) {
		len = (size_t)(slash - key) + 1;
		memcpy(pfx, key, len);
		pfx[len] = '\0';
		err = obj_get(c, b->id, pfx, &oid, &cur, &live);
		if (err < 0)
			return err;
		if (!err || live)
			continue;
		err = ver_by_id(c, cur, &o, link);
		if (err)
			return err;
		if (o.kind != STORE_DELETE_MARKER)
			continue;
		err = ver_remove(st, c, cur, "", t);
		if (!err)
			err = obj_refresh(c, b, pfx, oid, 0);
		if (!err)
			err = repl_mirror_current(c, b, pfx);
		if (err)
			return err;
		if (n)
			(*n)++;
	}
	return 0;
}

int name_free(struct conn *c, const struct bucket_row *b, const char *key)
{
	char path[STORE_KEY_MAX + 2];
	size_t len = strlen(key), end;
	const char *slash;
	int64_t oid, cur;
	int err, live, marker = len && key[len - 1] == '/';

	end = marker ? len - 1 : len;
	if (marker) {
		/* A folder where a file is. */
		memcpy(path, key, end);
		path[end] = '\0';
		err = obj_get(c, b->id, path, &oid, &cur, &live);
		if (err < 0 || (err && live))
			return err < 0 ? err : -ENOTDIR;
	} else {
		/* A file where a folder is: its marker, or a key below. */
		err = folder_live(c, b, key, &marker);
		if (err)
			return err < 0 ? err : -EISDIR;
	}
	/* A file where a folder above it is. */
	for (slash = strchr(key, '/'); slash && (size_t)(slash - key) < end;
	     slash = strchr(slash + 1, '/')) {
		memcpy(path, key, (size_t)(slash - key));
		path[slash - key] = '\0';
		err = obj_get(c, b->id, path, &oid, &cur, &live);
		if (err < 0 || (err && live))
			return err < 0 ? err : -ENOTDIR;
	}
	return 0;
}

/* Copy the current version of @from in @fb as a new version of @to in
 * @tb (blob, metadata, link and xattrs shared; ctime now), then DELETE
 * @from.  The inode number goes with it, as on a disk; @from gets a new
 * one, for a file made there later.  @quiet: neither folder's mtime
 * changes (a key inside a folder being renamed: only the folders the
 * folder leaves and lands in change, as on a disk).  @now: the rename's
 * time, the new version's ctime. */
static int move_key(struct store *st, struct conn *c,
		    const struct bucket_row *fb, const char *from,
		    const struct bucket_row *tb, const char *to,
		    const struct store_meta *who, int quiet, int64_t now,
		    struct trash *t)
{
	char link[LINK_MAX_LEN + 1];
	struct store_obj o;
	struct newver nv;
	int64_t oid, cur;
	uint64_t ino, fresh;
	int err, live;

	err = store_key_check(to);
	if (err)
		return err;
	err = obj_get_ino(c, fb->id, from, &oid, &cur, &live, &ino);
	if (err <= 0 || !live)
		return err < 0 ? err : -ENOENT;
	err = ver_by_id(c, cur, &o, link);
	if (!err)
		err = ino_take(c, 1, &fresh);
	if (!err)
		err = obj_set_ino(c, oid, fresh);
	if (err)
		return err;
	memset(&nv, 0, sizeof(nv));
	nv.kind = o.kind;
	nv.sha = o.sha256[0] ? o.sha256 : NULL;
	nv.size = o.size;
	nv.blocks = o.blocks;
	nv.meta = o.meta;
	nv.meta.ctime_ns = now;
	nv.mtime_set = 1;	/* a rename keeps it, the epoch too */
	nv.link = o.kind == STORE_SYMLINK ? link : NULL;
	nv.xattr_src = cur;
	nv.touch_parent = !quiet;
	nv.no_touch = quiet;
	nv.ino = ino;
	err = ver_write(st, c, tb, to, &nv, NULL, NULL, t);
	if (err)
		return err;
	return obj_delete_current(st, c, fb, from, to, who, quiet, NULL, t);
}

/* The live keys of bucket @b under @path/ (its marker included), into a
 * malloc()ed array of malloc()ed strings the caller frees. */
static int collect_keys(struct conn *c, const struct bucket_row *b,
			const char *path, char ***keys_out, size_t *n_out)
{
	char lo[STORE_KEY_MAX + 2], hi[STORE_KEY_MAX + 2];
	size_t len = strlen(path), n = 0, cap = 0;
	char **keys = NULL, **k;
	sqlite3_stmt *s;
	int err;

	memcpy(lo, path, len);
	lo[len] = '/';
	memcpy(hi, path, len);
	hi[len] = '0';
	s = stmt_get(c, ST_LIVE_RANGE);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, b->id);
	bind_text(s, 2, lo, len + 1);
	bind_text(s, 3, hi, len + 1);
	while ((err = stmt_step(c, s, "collect keys")) == 1) {
		if (n == cap) {
			k = realloc(keys, (cap * 2 + 16) * sizeof(*keys));
			if (!k) {
				err = -ENOMEM;
				break;
			}
			keys = k;
			cap = cap * 2 + 16;
		}
		keys[n] = strdup((const char *)sqlite3_column_text(s, 0));
		if (!keys[n]) {
			err = -ENOMEM;
			break;
		}
		n++;
	}
	stmt_done(s);
	*keys_out = keys;
	*n_out = n;
	return err;
}

static int rename_dir(struct store *st, struct conn *c,
		      const struct bucket_row *fb, const char *from,
		      const struct bucket_row *tb, const char *to,
		      int from_marker, int to_marker,
		      const struct store_meta *who, int64_t now,
		      struct trash *t)
{
	size_t flen = strlen(from), tlen = strlen(to), n = 0, i, klen;
	char newkey[STORE_KEY_MAX + 2];
	char **keys = NULL;
	int err;

	err = collect_keys(c, fb, from, &keys, &n);
	if (err)
		goto out;
	if (to_marker && !from_marker) {
		/* The empty target's marker goes: @from has none to put in
		 * its place. */
		snprintf(newkey, sizeof(newkey), "%s/", to);
		err = obj_delete_current(st, c, tb, newkey, NULL, who, 0, NULL,
					 t);
		if (err)
			goto out;
	}
	for (i = 0; i < n; i++) {
		klen = strlen(keys[i]);
		if (tlen + klen - flen > STORE_KEY_MAX) {
			err = -ENAMETOOLONG;
			goto out;
		}
		memcpy(newkey, to, tlen);
		memcpy(newkey + tlen, keys[i] + flen, klen - flen + 1);
		err = move_key(st, c, fb, keys[i], tb, newkey, who, 1, now,
			       t);
		if (err)
			goto out;
	}
	/* The folders it left and landed in change; none inside it. */
	err = parent_touch(c, fb, from, now);
	if (!err)
		err = parent_touch(c, tb, to, now);
out:
	for (i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	return err;
}

static int rename_as(struct store *st, const char *from_bucket,
		     const char *from, const char *to_bucket, const char *to,
		     unsigned flags, const struct store_meta *who)
{
	struct trash t;
	struct conn *c;
	int err;

	if (!from || !to)
		return -EINVAL;	/* rename_in() refuses an empty one */
	ino_refill(st);
	err = conn_get(st, &c);
	if (err)
		return err;
	trash_init(&t);
	err = tx_begin(c);
	if (err)
		return err;
	err = rename_in(st, c, from_bucket, from, to_bucket, to, flags, who,
			now_ns(), &t);
	return tx_end(st, c, err, &t);
}

int rename_in(struct store *st, struct conn *c, const char *from_bucket,
	      const char *from, const char *to_bucket, const char *to,
	      unsigned flags, const struct store_meta *who, int64_t now,
	      struct trash *t)
{
	struct bucket_row fb, tb;
	size_t flen, tlen;
	int err, src, dst, from_marker = 0, to_marker = 0;
	int same = !strcmp(from_bucket, to_bucket);

	if (!*from || !*to)
		return -EINVAL;
	err = store_key_check(from);
	if (!err)
		err = store_key_check(to);
	if (err)
		return err;
	flen = strlen(from);
	tlen = strlen(to);
	if (from[flen - 1] == '/' || to[tlen - 1] == '/')
		return -EINVAL;
	err = bucket_row_get(c, from_bucket, &fb);
	if (!err)
		err = bucket_row_get(c, to_bucket, &tb);
	if (err)
		return err;
	src = resolve(c, &fb, from, &from_marker);
	if (src <= 0)
		return src < 0 ? src : -ENOENT;
	if (same && !strcmp(from, to))
		return 0;	/* rename(2) of a name onto itself */
	if (src == R_DIR && same && tlen > flen && to[flen] == '/' &&
	    !memcmp(from, to, flen))
		return -EINVAL;
	dst = resolve(c, &tb, to, &to_marker);
	if (dst < 0)
		return dst;
	if (dst != R_NONE && (flags & STORE_RENAME_NOREPLACE))
		return -EEXIST;
	if (src == R_FILE)
		return dst == R_DIR ? -EISDIR
				    : move_key(st, c, &fb, from, &tb, to, who,
					       0, now, t);
	if (dst == R_FILE)
		return -ENOTDIR;
	if (dst == R_DIR) {
		err = dir_has_children_in(c, to_bucket, to);
		if (err)
			return err < 0 ? err : -ENOTEMPTY;
	}
	return rename_dir(st, c, &fb, from, &tb, to, from_marker, to_marker,
			  who, now, t);
}

int store_rename(struct store *st, const char *from_bucket, const char *from,
		 const char *to_bucket, const char *to, unsigned flags)
{
	return rename_as(st, from_bucket, from, to_bucket, to, flags, NULL);
}

int store_rename_by(struct store *st, const char *from_bucket,
		    const char *from, const char *to_bucket, const char *to,
		    unsigned flags, uint32_t uid, uint32_t gid)
{
	struct store_meta who = { .uid = uid, .gid = gid };

	return rename_as(st, from_bucket, from, to_bucket, to, flags, &who);
}
