/*
 * store_i.h - internals shared by the files of store/.  Not for fs/ or
 * replicator/: they use store.h only.
 *
 * The pieces:
 *
 *   store.c    the struct store, per-thread SQLite connections and their
 *              prepared statements, transactions, the schema and its
 *              migrations, garbage collection, check, sync
 *   names.c    bucket-name and key checks, version IDs
 *   blob.c     blob paths, staging files, hashing, placing, trash
 *   bucket.c   buckets
 *   object.c   the write path: put, delete, delete of a version, metadata,
 *              rename (S3's versioning rules live here)
 *   read.c     lookup, listing, versions, readlink
 *   history.c  the past: every key that ever was, a folder at a time,
 *              restore, undelete, ETags
 *   xattr.c    extended attributes
 */
#ifndef REPLICAFS_STORE_I_H
#define REPLICAFS_STORE_I_H

#include "store/store.h"
#include "store/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/types.h>

/* Every prepared statement a connection may cache, by number; the SQL of
 * each is in stmt_sql[] in store.c. */
enum stmt_id {
	ST_BEGIN,		/* BEGIN IMMEDIATE */
	ST_BEGIN_READ,		/* BEGIN (deferred) */
	ST_COMMIT,
	ST_ROLLBACK,
	ST_DATA_VERSION,
	ST_BUCKET_GET,
	ST_BUCKET_NEXT,
	ST_BUCKET_INSERT,
	ST_BUCKET_DELETE,
	ST_BUCKET_HAS_OBJECTS,
	ST_BUCKET_SET_VERSIONING,
	ST_BUCKET_SET_META,
	ST_BUCKET_SET_TIMES,
	ST_OBJ_GET,
	ST_OBJ_INSERT,
	ST_OBJ_SET_CUR,
	ST_OBJ_DELETE,
	ST_OBJ_SET_INO,
	ST_INO_TAKE,
	ST_VER_NEWEST,
	ST_VER_BY_VID,
	ST_VER_BY_ID,
	ST_VER_OLDER,
	ST_VER_INSERT,
	ST_VER_SET_VID,
	ST_VER_DELETE,
	ST_VER_SET_META,
	ST_VER_SET_CTIME,
	ST_VER_SET_TIMES,
	ST_SHA_REFERENCED,
	ST_XATTR_COPY,
	ST_XATTR_GET,
	ST_XATTR_PUT,
	ST_XATTR_DELETE,
	ST_XATTR_NAMES,
	ST_BXATTR_GET,
	ST_BXATTR_PUT,
	ST_BXATTR_DELETE,
	ST_BXATTR_NAMES,
	ST_BUCKET_SET_CTIME,
	ST_LIVE_GET,
	ST_LIVE_FIRST,
	ST_LIVE_FIRST_BELOW,
	ST_LIVE_RANGE,
	ST_REPL_TARGETS,
	ST_REPL_ENQUEUE,
	ST_REPL_UNQUEUE,
	ST_CHECK_INTEGRITY,
	ST_CHECK_BLOBS,
	ST_CHECK_OBJECTS,
	ST_COUNT
};

/*
 * One SQLite connection, owned by one thread (SQLITE_OPEN_NOMUTEX: only
 * that thread touches it), found through the store's pthread key.  Freed
 * by conn_free() at the thread's exit or in store_close().
 */
/* Statements of stmt_of_sql(), by their SQL's address; more than the store
 * has call sites of it. */
#define CONN_SQL_CACHE 96

struct conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];	/* prepared on first use */
	struct {
		const char *sql;	/* a string literal */
		sqlite3_stmt *s;
	} sql_cache[CONN_SQL_CACHE];
	int nsql_cache;
	int64_t last_data_version;	/* for store_generation() */
	int writing;		/* holds st->write_lock (tx_begin()) */
	int placed;		/* linked a new blob that no committed
				 * transaction has named yet */
	int j_moved;		/* this transaction applied the journal up
				 * to j_applied (journal.c): told at its
				 * COMMIT */
	uint64_t j_applied;
	struct conn *next;		/* protected by store->conns_lock */
	struct conn *prev;		/* protected by store->conns_lock */
	struct store *st;
};

#define STAGE_POOL_MAX 32
#define STAGE_LIMBO_MAX 16

/* A thread of the store's that waits for work on cv, started on first
 * need and stopped by store_close() (store.c): the checkpointer, the
 * staging pool. */
struct store_thread {
	pthread_mutex_t lock;
	pthread_cond_t cv;	/* work for the thread, or stop */
	pthread_t thread;	/* protected by lock */
	int running;		/* protected by lock */
	int stop;		/* protected by lock; the thread then ends */
};

void store_thread_init(struct store_thread *t);
void store_thread_destroy(struct store_thread *t);
/* Start @t's thread on @fn(@arg) unless it runs already; caller holds
 * t->lock.  0, or -1 when it cannot run (stopped, or no thread). */
int store_thread_start_locked(struct store_thread *t, void *(*fn)(void *),
			      void *arg);
/* Tell @t's thread to stop, and join it if it ran. */
void store_thread_stop(struct store_thread *t);

/* The close journal (journal.c). */
struct store_journal {
	pthread_mutex_t lock;	/* appends, tail, pend */
	int fd;			/* STORE/journal; -1: none */
	pthread_mutex_t take_lock;	/* appender_take() */
	atomic_int appender;	/* this process holds its flock(): it
				 * alone appends */
	int appender_failed;	/* another process does */
	uint64_t gen;		/* the generation the catalog follows */
	uint64_t tail;		/* appender: end of its last record */
	uint64_t own_from;	/* appender: records from here on are its
				 * own, written whole in this run */
	uint64_t claimed;	/* appender: records up to here are being,
				 * or were, applied (j.lock) */
	_Atomic uint64_t applied_seen;	/* the catalog's offset, last seen */
	/* Appender: its records not yet applied, oldest first (a ring). */
	struct jpend *pend;
	size_t phead, npend, pcap;
	uint64_t pbytes;	/* their bytes */
	atomic_size_t unapplied;	/* npend, read without the lock */
	atomic_int queued;	/* an applied version queued a delivery */
	atomic_int full_told;	/* said that its versions wait for room */
	void (*applied_fn)(void *);	/* then told (the replicator) */
	void *applied_arg;
	struct store_thread applier;
	int wanted;		/* protected by applier.lock */
};

struct store {
	char *dir;		/* absolute path; freed by store_close() */
	char *db_path;		/* DIR/catalog.db */
	int lock_fd;		/* DIR/lock, flock()ed for our life */
	int marker_fd;		/* DIR/open/XXXXXX, flock()ed for our life
				 * (invariant 6 of store.c); -1 until made */
	char *marker;		/* its path */
	pthread_key_t key;	/* this thread's struct conn */
	pthread_mutex_t conns_lock;
	pthread_mutex_t write_lock;	/* held by this process's writing
					 * transaction, from tx_begin() to
					 * tx_commit() or tx_rollback() */
	/* Inode numbers set aside for new keys, [ino_next, ino_end):
	 * taken by ino_take() and store_ino_new() without a write of
	 * ino_next per key. */
	pthread_mutex_t ino_mu;
	uint64_t ino_next, ino_end;
	struct conn *conns;	/* protected by conns_lock */
	atomic_uint_fast64_t generation;	/* see store_generation() */
	atomic_uint_fast64_t trash_seq;		/* unique trash names */
	atomic_int garbage;	/* a transaction that linked a new blob did
				 * not commit: keep the marker at close */

	/* The checkpointer (store.c) */
	struct store_thread ckpt;
	int ckpt_wanted;	/* protected by ckpt.lock */
	atomic_int ckpt_pages;	/* WAL pages at the last pass */
	int ckpt_start, ckpt_step, ckpt_restart, ckpt_inline;	/* see
							 * ckpt_bounds() */
	atomic_int_fast64_t ckpt_commit_ms;	/* last commit, monotonic */

	/* store_room_low(): no need to ask statvfs() again before this
	 * (monotonic ms) */
	atomic_int_fast64_t room_until_ms;
	atomic_int full_told, wal_told;	/* said that the disk is full */
	struct log_limit seed_log;	/* a staging file not seeded (blob.c) */

	/* Empty staging files made ahead (blob.c, store_stage_pool()) */
	struct store_thread pool;
	int pool_fd[STAGE_POOL_MAX];	/* protected by pool.lock */
	int pool_n;		/* protected by pool.lock */
	int pool_want;		/* protected by pool.lock; 0: no pool */
	/* Staging files given back while something else still held them
	 * (blob.c, store_stage_recycle()), oldest first, and since when
	 * (mono_ms()); protected by pool.lock */
	int limbo_fd[STAGE_LIMBO_MAX];
	int64_t limbo_ms[STAGE_LIMBO_MAX];
	int limbo_n;

	struct store_journal j;
};

/* ---- journal.c ------------------------------------------------------ */

void journal_init(struct store *st);
/* At store_open(), with the schema migrated and the marker made. */
int journal_open(struct store *st, struct conn *c);
void journal_close(struct store *st);
/* Whether a write transaction must apply the journal first; then, in it,
 * journal_apply() (tx_begin()). */
int journal_due(struct store *st);
int journal_apply(struct store *st, struct conn *c);
/* journal_apply() of @max records at most, none that ends past @until
 * (an offset in the file). */
int journal_apply_max(struct store *st, struct conn *c, size_t max,
		      uint64_t until);
/* tx_commit(): @c's transaction, which applied the journal, committed. */
void journal_committed(struct store *st, struct conn *c);
/* conn_get() without applying what this process journaled (for reads
 * that settled their own keys: store_journal_settle()). */
int conn_get_settled(struct store *st, struct conn **out);
/* Whether this process journaled a version of @key that is not applied
 * yet: then that version, a new key's first, is its newest, and has no
 * xattrs (a put with xattrs does not go through the journal, and a
 * change of them applies the journal first). */
int journal_holds_key(struct store *st, const char *bucket, const char *key);
/* 1 when this process journaled a record of @key of @bucket not applied
 * yet, else 2 when it did of a key below folder @key, else 0. */
int journal_hit(struct store *st, const char *bucket, const char *key);
/* Before a read of @key's xattrs: apply the journal up to the last
 * rename from or to @key in it, the only records that move xattrs (a
 * version there has none, and a change of metadata there writes none:
 * store_journal_meta()). */
int journal_settle_moves(struct store *st, const char *bucket,
			 const char *key);
/* Before a put of @key: apply the journal if it holds a version of a key
 * that bears on it (the same name, or one in the other's folder); then
 * tx_begin_settled() opens the put's transaction without applying the
 * rest, which the journal's thread does. */
int journal_settle_put(struct store *st, const char *bucket, const char *key);
int tx_begin_settled(struct conn *c);

/* Stop the staging pool's thread and close what it holds. */
void stage_pool_stop(struct store *st);

/* ---- store.c -------------------------------------------------------- */

/* Make STORE/reserve, the room kept for removing versions on a full
 * disk, if it is missing and the disk has room (store.c). */
void store_reserve_make(struct store *st);

/* Whether an operation that failed with @err and frees space should try
 * again, for the (@tries + 1)th time (at most three): it did fail with
 * ENOSPC, and room was made, by copying the WAL back and starting it
 * over, or else by giving back the reserve (the first time it is there)
 * and then doing so. */
int store_room_retry(struct store *st, int err, int tries);

/* This thread's connection, opened on first use; owned by the store. */
int conn_get(struct store *st, struct conn **out);

/* blob_place() linked a new blob: if this thread's transaction does not
 * commit, the blob is garbage (invariant 6 of store.c). */
void conn_placed(struct store *st);

/*
 * Cached statement @id of @c, reset and unbound, ready for binding: NULL
 * (logged) when it cannot be prepared.  The caller calls stmt_done() when
 * finished with it; the statement stays owned by @c.
 */
sqlite3_stmt *stmt_get(struct conn *c, enum stmt_id id);
void stmt_done(sqlite3_stmt *s);

/*
 * The same as stmt_get() for a statement named by its SQL, which must be
 * a string literal (its address is the key): prepared on first use and
 * cached by @c, reset and unbound by stmt_done().  0 and *@s, or a
 * negative errno (logged).
 */
int stmt_of_sql(struct conn *c, const char *sql, sqlite3_stmt **s);

/* Convert SQLite result @rc to a negative errno, logging the cause with
 * @what: the one place where SQLite errors become errnos. */
int db_err(struct conn *c, int rc, const char *what);

/* Step @s once: 1 for a row, 0 when done, or a negative errno. */
int stmt_step(struct conn *c, sqlite3_stmt *s, const char *what);
/* Step @s to its end, then stmt_done(): 0 or a negative errno. */
int stmt_run(struct conn *c, sqlite3_stmt *s, const char *what);

/*
 * Leases of repl_queue rows held by processes that no longer run (repl.c;
 * store_repl_release_dead() and a job's cancel).  lease_owners_dead()
 * steps @owners, whose first column is an owner's pid, and keeps at most
 * @max of those that are dead in @dead: their number or a negative errno.
 * lease_release() runs @release once for each, the pid bound to its last
 * parameter (the others bound by the caller, in its transaction), adding
 * the rows it changed to *@changed: 0 or a negative errno.  Both are done
 * with their statement when they return.
 */
int lease_owners_dead(struct conn *c, sqlite3_stmt *owners, pid_t *dead,
		      size_t max);
int lease_release(struct conn *c, sqlite3_stmt *release, const pid_t *dead,
		  size_t k, size_t *changed);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on @c.  tx_commit() counts the
 * change for store_generation(); tx_rollback() never fails. */
int tx_begin(struct conn *c);
/*
 * Several reads as one: a read transaction around them (one snapshot,
 * and the WAL's read lock taken and dropped once, not per statement).
 * rtx_begin() returns 1 when it began one, 0 when @c is already in a
 * transaction (or BEGIN failed: the reads then run on their own); pass
 * that to rtx_end().
 */
int rtx_begin(struct conn *c);
void rtx_end(struct conn *c, int began);
int tx_commit(struct store *st, struct conn *c);
void tx_rollback(struct conn *c);

/* Nanoseconds since the epoch (CLOCK_REALTIME). */
int64_t now_ns(void);
int64_t mono_ms(void);		/* CLOCK_MONOTONIC, in ms (store.c) */

/* Bind text @s of @len bytes (or strlen when @len < 0). */
int bind_text(sqlite3_stmt *s, int i, const char *t, int len);
/* Bind an atime: NULL for 0, which reads back as "the mtime". */
int bind_atime(sqlite3_stmt *s, int i, int64_t atime_ns);

/* ---- names.c -------------------------------------------------------- */

/* A fresh version ID into @out (STORE_VID_MAX + 1 bytes): 26 characters
 * of base32 (digits and lowercase letters without i, l, o, u) of 8 bytes
 * of big-endian time in nanoseconds and 8 random bytes. */
int vid_new(char *out);

/* Whether @hex is 64 lowercase hex digits. */
int sha_valid(const char *hex);

/* ---- bucket.c ------------------------------------------------------- */

struct bucket_row {
	int64_t id;
	enum store_versioning versioning;
	struct store_meta meta;
	int repl;	/* how many replication targets it has */
};

/* store_bucket_set_meta(), and in the same transaction the bucket's
 * xattrs @x (a NULL value removes one): store_set_meta_xattr() of the
 * key "", which stands for the bucket. */
int bucket_set_meta_xattr(struct store *st, const char *name,
			  const struct store_meta *meta, unsigned mask,
			  const struct store_xattr *x, size_t nx);

/* Read bucket @name into @b: 0, -ENOENT or another negative errno. */
int bucket_row_get(struct conn *c, const char *name, struct bucket_row *b);

/* ---- object.c ------------------------------------------------------- */

struct trash;

/* A version to write, as PUT, DELETE, rename and restore describe it. */
struct newver {
	enum store_kind kind;	/* FILE, SYMLINK, DIR or DELETE_MARKER */
	const char *sha;	/* NULL for a delete marker */
	uint64_t size;
	int64_t blocks;		/* 512-byte blocks on disk; -1: not known */
	struct store_meta meta;
	const char *link;	/* SYMLINK: its target; the DELETE_MARKER
				 * a rename leaves: the key it went to */
	int keep_xattrs;	/* copy the xattrs of the current version */
	int64_t xattr_src;	/* else copy those of this version (0: none) */
	const struct store_xattr *xattrs;	/* then set these */
	size_t nxattrs;
	const char *vid;	/* a replica's version ID, else NULL */
	int64_t created_ns;	/* a replica's time of writing, else 0 */
	int touch_parent;	/* a rename's target: its folder changes
				 * even when the key was there before */
	int no_touch;		/* its folder does not change (a key inside
				 * a folder that a rename moves) */
	int64_t named_ns;	/* the folder's new time; 0: now */
	int mtime_set;		/* meta.mtime_ns is the mtime even when 0
				 * (the epoch); else 0 there is now */
	uint64_t ino;		/* the object's inode number from now on (a
				 * file created by a mount, a rename's
				 * target); 0: kept, or a new one for a new
				 * object */
};

/* The rows of the write path, each within a write transaction; see their
 * comments in object.c.  obj_get() and ver_find(): 1 found, 0 not, or a
 * negative errno. */
int obj_get(struct conn *c, int64_t bid, const char *key, int64_t *oid,
	    int64_t *cur, int *live);
/* @n inode numbers no object has had, the first into *@first; in a
 * writing transaction.  One number comes from the store's reserve,
 * refilled in a transaction of its own by ino_refill() before the
 * caller's began. */
int ino_take(struct conn *c, uint64_t n, uint64_t *first);
void ino_refill(struct store *st);

/* The bodies of store_set_meta_xattr(), store_rename() and
 * store_dir_has_children(), in @c's transaction (the first two: a write
 * one); rename_in() gives the new version(s) ctime @now.  The close
 * journal applies its records of such changes with them. */
int meta_set_in(struct store *st, struct conn *c, const struct bucket_row *b,
		const char *key, const struct store_meta *meta, unsigned mask,
		const struct store_xattr *x, size_t nx);
int rename_in(struct store *st, struct conn *c, const char *from_bucket,
	      const char *from, const char *to_bucket, const char *to,
	      unsigned flags, const struct store_meta *who, int64_t now,
	      struct trash *t);
int dir_has_children_in(struct conn *c, const char *bucket,
			const char *prefix);

/* Set xattr @x of version @id (with @bucket, of bucket row @id), or
 * remove it when x->value is NULL (there need be none); xattr.c. */
int xattr_write(struct conn *c, int bucket, int64_t id,
		const struct store_xattr *x);
int ver_find(struct conn *c, int64_t oid, const char *vid, int64_t *id,
	     char sha[65]);
/* Object, kind and whether a replica, of version row @id: 1, 0 when
 * there is no such row, or a negative errno. */
int ver_kind(struct conn *c, int64_t id, int64_t *oid, enum store_kind *kind,
	     int *replica);
int obj_refresh(struct conn *c, const struct bucket_row *b, const char *key,
		int64_t oid, int was_live);
/* Whether @key (a file's key, or a folder's marker "dir/") may be live
 * without a file and a folder of one name, as on a disk: 0; -EISDIR when
 * a live folder has a file key's name; -ENOTDIR when a live file has a
 * marker's name, or that of a folder above the key.  The key's own state
 * is not looked at. */
int name_free(struct conn *c, const struct bucket_row *b, const char *key);
/* Within a write transaction that made @key live again (an undelete, a
 * restore, the removal of its delete marker): the folders above it that a
 * delete marker hides (rm -rf took them) come back too, by the removal of
 * that marker, so that the folder a file is in has the owner, mode and ACL
 * it had, not the bucket's.  *@n (may be NULL) counts them. */
int folders_back(struct store *st, struct conn *c, const struct bucket_row *b,
		 const char *key, struct trash *t, unsigned *n);
int parent_touch(struct conn *c, const struct bucket_row *b, const char *key,
		 int64_t now);
int ver_remove(struct store *st, struct conn *c, int64_t id, const char *sha,
	       struct trash *t);
int ver_write(struct store *st, struct conn *c, const struct bucket_row *b,
	      const char *key, const struct newver *nv, char *vid_out,
	      struct store_obj *obj_out, struct trash *t);
/* Commit (or, with @err or a failed COMMIT, roll back and restore the
 * blobs of @t): the end of every write transaction. */
int tx_end(struct store *st, struct conn *c, int err, struct trash *t);

/* ---- read.c --------------------------------------------------------- */

/* The columns of a version row, prefixed by "v.", as read by
 * ver_row_read(). */
#define VER_COLS                                                              \
	"v.id, v.vid, v.kind, v.sha256, v.size, v.mode, v.uid, v.gid, "      \
	"v.mtime_ns, v.ctime_ns, v.created_ns, v.replica, v.blocks, "         \
	"v.link IS NOT NULL, v.atime_ns"
#define VER_NCOLS 15

/* Fill @o and *@id (may be NULL) from the VER_COLS of @s at column @col. */
void ver_row_read(sqlite3_stmt *s, int col, struct store_obj *o,
		  int64_t *id);

/* ---- repl.c --------------------------------------------------------- */

/* A replication target as routing needs it (all malloc()ed; freed by
 * repl_targets_free()). */
struct route_tgt {
	char *rule;
	char *prefix;
	char *tags;	/* "key=value" lines, or NULL */
	char *dest;
	int dm;		/* takes delete markers */
};

/* The targets of bucket @bid, highest priority first, only those of rule
 * @rule when it is not NULL, into a malloc()ed array. */
int repl_targets_load(struct conn *c, int64_t bid, const char *rule,
		      struct route_tgt **out, size_t *n);
void repl_targets_free(struct route_tgt *t, size_t n);

/* Call @cb for the target that sends version row @vid (of @key, kind
 * @kind) to each destination, with S3's rules (see store.h). */
typedef int (*repl_route_cb)(void *arg, const struct route_tgt *t);
int repl_route(struct conn *c, const struct route_tgt *t, size_t n,
	       const char *key, int64_t vid, enum store_kind kind,
	       repl_route_cb cb, void *arg);

/* Insert one queue row: version row @vid of object @oid to @t's
 * destination, for batch job @job (0: live). */
int repl_queue_insert(struct conn *c, int64_t oid, int64_t vid,
		      const struct route_tgt *t, int64_t job);

/*
 * Within the write transaction that wrote version row @vid (kind @kind) of
 * object @oid, key @key, in bucket @b: queue it for every destination the
 * bucket's targets send it to.  Does nothing for a bucket without targets.
 * Returns how many deliveries it queued, or a negative errno.
 */
int repl_enqueue(struct conn *c, const struct bucket_row *b, const char *key,
		 int64_t oid, int64_t vid, enum store_kind kind);

/*
 * repl_enqueue() of version row @vid, which a permanent delete of the
 * current version made current (an undelete, say), to the destinations
 * that keep only the current version, dir:// mirrors: a permanent delete
 * is not replicated, as in S3, but a mirror of what is current would
 * keep what is gone (after rm -rf and undelete -r, an empty mirror).
 */
int repl_enqueue_mirrors(struct conn *c, const struct bucket_row *b,
			 const char *key, int64_t oid, int64_t vid,
			 enum store_kind kind);

/* Within the write transaction that removed the current version of @key
 * for good: repl_enqueue_mirrors() of the version now current, unless
 * there is none or it is a replica (no chaining). */
int repl_mirror_current(struct conn *c, const struct bucket_row *b,
			const char *key);

/*
 * SQL: repl_queue row @q (an alias) is the newest of its version and
 * destination.  Each row sends the version with its metadata as it is
 * then (a chmod queues another), so the newest row is the version's
 * status there: a failure that a later delivery made good is no failure.
 */
#define REPL_NEWEST(q)                                                        \
	"NOT EXISTS (SELECT 1 FROM repl_queue AS nq WHERE nq.version = "      \
	q ".version AND nq.dest = " q ".dest AND nq.id > " q ".id)"

/*
 * repl_enqueue() after the metadata of version row @vid changed in place
 * (chmod, touch, an xattr): the version goes again to each destination
 * it went to before, and to those whose rules came before it was written
 * (a tag set after the close can make a tag filter match); not to one
 * whose rule came after, as live replication never sends older versions.
 */
int repl_enqueue_update(struct conn *c, const struct bucket_row *b,
			const char *key, int64_t oid, int64_t vid,
			enum store_kind kind);

/* Within a write transaction: forget the deliveries of version row @vid,
 * which is being removed. */
int repl_unqueue(struct conn *c, int64_t vid);

/* Within a write transaction: remove bucket @bid's replication
 * configuration and targets (the bucket is going). */
int repl_bucket_forget(struct conn *c, int64_t bid);

/* ---- test hooks (tests/unit only) ----------------------------------- */

/* Rows read by the listing and lookup seeks since the process started:
 * lets a test check that a listing costs in proportion to its entries. */
uint64_t store_test_rows_visited(void);
void store_test_count_row(void);

/* Run @sql on this thread's connection (bulk set-up in tests). */
int store_test_exec(struct store *st, const char *sql);

#endif
