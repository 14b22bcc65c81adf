/*
 * store.h - the versioned object store of replicafs.
 *
 * A store is one directory:
 *
 *   STORE/catalog.db      SQLite catalog (WAL): buckets, objects, versions,
 *                         extended attributes
 *   STORE/blobs/xx/HASH   immutable content, named by its SHA-256 in hex,
 *                         fanned out by the first two hex digits
 *   STORE/staging/        private files of writers (O_TMPFILE where the
 *                         file system has it, so a crash leaves nothing)
 *   STORE/trash/          blobs on their way out (see the invariants)
 *   STORE/lock            flock(): shared by every process that has the
 *                         store open, exclusive while one collects garbage
 *
 * The model is Amazon S3's: buckets hold objects named by keys; each bucket
 * is unversioned, versioning-Enabled or versioning-Suspended, with S3's
 * rules for PUT and DELETE in each state (see store_put() and
 * store_delete()).  A directory of a mount is a key prefix; an empty
 * directory is a zero-byte marker object whose key ends in '/'.
 *
 * Every function returns 0 or a negative errno, and logs the cause of an
 * unexpected failure.  No SQLite or OpenSSL type appears here.  All
 * functions may be called from any number of threads at once on one
 * struct store; several processes may open the same store at once.
 */
#ifndef REPLICAFS_STORE_H
#define REPLICAFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;

/* Longest key S3 accepts, in bytes; longer ones are -ENAMETOOLONG. */
#define STORE_KEY_MAX 1024
/* A version ID is at most this many characters, URL-safe: [0-9a-z]. */
#define STORE_VID_MAX 32
/* The version ID of the null version. */
#define STORE_NULL_VID "null"

enum store_versioning {
	STORE_UNVERSIONED = 0,
	STORE_ENABLED = 1,
	STORE_SUSPENDED = 2,
};

enum store_kind {
	STORE_FILE = 1,		/* a regular object with content */
	STORE_SYMLINK = 2,	/* an object that carries a link target */
	STORE_DIR = 3,		/* a key prefix (with or without marker) */
	STORE_DELETE_MARKER = 4,/* only in version listings */
};

/* The metadata kept with each version.  mode includes the file type bits
 * (S_IFREG, S_IFLNK, S_IFDIR). */
struct store_meta {
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	int64_t mtime_ns;	/* nanoseconds since the epoch, UTC */
	int64_t ctime_ns;	/* last change of data or metadata */
	int64_t atime_ns;	/* last access as set by utimensat (the
				 * store never moves it on a read); 0: the
				 * same as mtime_ns */
};

/*
 * What the store knows of one version (or of a directory prefix).
 * Filled by the store; holds no pointers, so it can be copied freely.
 */
struct store_obj {
	enum store_kind kind;
	char version_id[STORE_VID_MAX + 1];	/* "" for an implicit dir */
	char sha256[65];	/* hex; "" for markers of delete and dirs */
	uint64_t size;		/* content length; target length for links */
	int64_t blocks;		/* 512-byte blocks the content takes on disk
				 * (fewer than size / 512 where it has
				 * holes); -1: not known (written before
				 * schema 5) */
	struct store_meta meta;
	int64_t created_ns;	/* when this version was written (S3's
				 * LastModified) */
	int is_latest;		/* in version listings */
	int is_replica;		/* written by replication (status REPLICA) */
	unsigned queued;	/* from store_put(): deliveries it queued */
	int has_marker;		/* STORE_DIR: a "prefix/" object exists */
	int moved;		/* STORE_DELETE_MARKER: left by a rename at
				 * the key it took the object from (versions
				 * .link holds the key it went to; markers
				 * made before that read as removals) */
	uint64_t ino;		/* the key's inode number (see
				 * store_ino_reserve()), in store_lookup(),
				 * store_list() and store_put() answers;
				 * a folder without a marker has
				 * store_name_ino()'s */
};

/* Open flags for store_open(). */
#define STORE_CREATE 0x1	/* create the store if the directory is empty
				 * or missing */

/*
 * Open the store in directory @dir, creating it with STORE_CREATE.  Runs
 * the catalog's migrations, and, when no other process has the store open,
 * collects unreferenced blobs, staging and trash files.  The caller frees
 * *out with store_close().
 */
int store_open(const char *dir, int flags, struct store **out);
void store_close(struct store *st);

/* The store's directory (owned by the store). */
const char *store_path(const struct store *st);

/*
 * A change counter of the catalog that moves whenever any process commits
 * a change to it (PRAGMA data_version plus our own commits); a mount polls
 * it to know when to drop its caches.
 */
uint64_t store_generation(struct store *st);

/* ---- Names ---------------------------------------------------------- */

/*
 * Check a bucket name against S3's rules: 3-63 characters of lowercase
 * letters, digits, '.' and '-'; starts and ends with a letter or digit; no
 * ".." ; not shaped like an IPv4 address; not starting with "xn--" or
 * "sthree-", not ending with "-s3alias" or "--ol-s3".  Returns 0, or -EINVAL and, when @why is not
 * NULL, sets *why to a static sentence saying what is wrong.
 */
int store_bucket_name_check(const char *name, const char **why);

/*
 * Check an object key: 1..STORE_KEY_MAX bytes (-ENAMETOOLONG past it), no
 * NUL, valid as S3 takes it.  Returns 0 or a negative errno.
 */
int store_key_check(const char *key);

/* ---- Buckets -------------------------------------------------------- */

/*
 * Create bucket @name with @versioning and the owner and mode of @meta
 * (meta->mode is the directory's permission bits; the type bits are
 * ignored).  -EEXIST if it exists, -EINVAL for a bad name.
 */
int store_bucket_create(struct store *st, const char *name,
			enum store_versioning versioning,
			const struct store_meta *meta);

/* Remove bucket @name: -ENOTEMPTY while any version of any key (delete
 * markers included) remains in it, -ENOENT if there is no such bucket. */
int store_bucket_delete(struct store *st, const char *name);

/* Fill @meta (may be NULL) and @versioning (may be NULL) of bucket @name,
 * or return -ENOENT. */
int store_bucket_get(struct store *st, const char *name,
		     struct store_meta *meta,
		     enum store_versioning *versioning);

/* Change a bucket's versioning state.  As in S3, a bucket that has been
 * versioned can be Suspended but never made unversioned again: -EINVAL. */
int store_bucket_set_versioning(struct store *st, const char *name,
				enum store_versioning versioning);

/* Set a bucket's mode, uid, gid and mtime (fields selected by @mask, the
 * STORE_SET_* bits below). */
int store_bucket_set_meta(struct store *st, const char *name,
			  const struct store_meta *meta, unsigned mask);

/* Call @cb for each bucket in name order; a non-zero return from @cb stops
 * the walk and is returned. */
typedef int (*store_bucket_cb)(void *arg, const char *name,
			       const struct store_meta *meta,
			       enum store_versioning versioning);
int store_bucket_list(struct store *st, store_bucket_cb cb, void *arg);

/* ---- Objects -------------------------------------------------------- */

/*
 * Inode numbers.  Every key has one that outlives a mount: a new key
 * takes a number never given before, a rename carries it to the key the
 * object moves to, and the old key gets a new one.  Numbers from the
 * catalog are from 17 to below STORE_INO_OWN; from there up, a mount
 * keeps its own (store_name_ino() and fs/inode.c).
 *
 * store_ino_new() gives a mount a number for a file it creates
 * (store_put.ino), from numbers set aside many at a time: one
 * transaction for many creates; -ENOSPC when none can be set aside (a
 * full disk).  store_ino_reserve() sets aside @n numbers, the first into
 * *@first.  store_name_ino() is the number of a name that has no
 * object of its own (a bucket, @path ""; a folder without a marker): a
 * hash of the bucket and @path[0..@len), from 2^61 up.
 */
#define STORE_INO_OWN (1ULL << 60)
int store_ino_new(struct store *st, uint64_t *ino);
int store_ino_reserve(struct store *st, uint64_t n, uint64_t *first);

/*
 * 1 if the file system that holds @st has less room than the commit of
 * an empty file needs, so that making a file should fail with ENOSPC
 * rather than later; 0 otherwise, or when that cannot be told.  Cheap:
 * with plenty of room the answer is kept for a tenth of a second.
 */
int store_room_low(struct store *st);
/* Whether the store's file system has ROOM_PLENTY (64 MiB) free: room for
 * what the close journal may hold (store_journal_put()) and then some. */
int store_room_plenty(struct store *st);
uint64_t store_name_ino(const char *bucket, const char *path, size_t len);

/*
 * Look up @path in @bucket as a mount sees it.  @path has no leading or
 * trailing '/' ("" is the bucket itself and gives -EINVAL).  Finds, in
 * this order: a current (not delete-marked) object with key @path (kind
 * FILE or SYMLINK), else a directory: a current marker object "@path/"
 * (has_marker = 1, its metadata) or any current key under "@path/"
 * (has_marker = 0, metadata of the bucket, mode S_IFDIR|0755).  -ENOENT
 * when none is there.  Costs a few index seeks, whatever the bucket holds.
 */
int store_lookup(struct store *st, const char *bucket, const char *path,
		 struct store_obj *out);

/* The target of the current version of symlink @key, NUL-terminated into
 * @buf of @size bytes; -ENAMETOOLONG when it does not fit. */
int store_readlink(struct store *st, const char *bucket, const char *key,
		   char *buf, size_t size);

/*
 * Call @cb for each entry directly below the directory @prefix of @bucket
 * ("" for the bucket's top, else a path without trailing '/'), as S3's
 * ListObjectsV2 with Delimiter "/" gives them, in S3's order (bytewise
 * order of keys, so the key "b.txt" comes before the prefix "b/"): each
 * current object as its last path component (kind FILE or SYMLINK), each
 * common prefix once as a STORE_DIR entry whose name has no trailing '/'.
 * A file and a directory of one name both come, file first.  The
 * directory's own marker is not listed.  With @start_after (NULL: from the
 * first) the listing resumes after that entry, as S3's StartAfter: give a
 * directory entry with its trailing '/' ("b/"), an object by its name.
 * Not a snapshot: @cb may call the store.  Costs one index seek per entry
 * listed, whatever lies below its directories.  A non-zero return from @cb
 * stops the walk and is returned.
 */
typedef int (*store_list_cb)(void *arg, const char *name,
			     const struct store_obj *obj);
int store_list(struct store *st, const char *bucket, const char *prefix,
	       const char *start_after, store_list_cb cb, void *arg);

/* Whether directory @prefix of @bucket holds any current key other than
 * its own marker: 1 if so, 0 if not, or a negative errno. */
int store_dir_has_children(struct store *st, const char *bucket,
			   const char *prefix);

/* ---- Writing -------------------------------------------------------- */

/*
 * A staging file: a private, writable file in the store's file system
 * whose content can become a blob without being copied.  store_stage_new()
 * returns an fd open O_RDWR (the caller owns it and never closes it
 * directly: pass it to store_put() or store_stage_abort()).  When @seed is
 * a hex SHA-256, the file starts as a copy of that blob (a reflink where
 * the file system can, else copy_file_range()), truncated to @seed_len;
 * a damaged blob of at most STORE_VERIFY_MAX bytes is -EIO (as in
 * store_blob_open_sized()), not the start of a new version.
 */
int store_stage_new(struct store *st, const char *seed, uint64_t seed_len,
		    int *fd_out);
/* The same, reading the seed from @seed_fd, open on blob @seed, unless it
 * is -1: a writer that holds its blob open starts from it even after the
 * blob's last version was removed (rm-version) meanwhile.  With @check
 * not NULL, a whole copy of a large blob (4 MiB or more) returns before
 * the blob is hashed: *@check gets that hash's check, running on a
 * thread, which the owner waits for (store_check_wait()) before the
 * staging file's content becomes a version, or drops; else *@check is
 * NULL and the seed was checked as store_stage_new() checks it.  (An
 * O_RDWR open of a 1 GiB file waited 0.65 s for the hash of its copy.) */
struct store_check;
int store_stage_new_fd(struct store *st, const char *seed, int seed_fd,
		       uint64_t seed_len, int *fd_out,
		       struct store_check **check);
/* Wait for check @c and free it: 0, or -EIO where the blob is damaged or
 * could not be read (logged). */
int store_check_wait(struct store_check *c);
/* Whether check @c is still hashing. */
int store_check_busy(struct store_check *c);
/* Free check @c without its result; its thread stops soon. */
void store_check_drop(struct store_check *c);
void store_stage_abort(struct store *st, int fd);

/* Whether a file other than @fd's own is open on staging file @fd, as a
 * write lease tells (one is granted only to a sole opener): 1, 0, or -1
 * when leases cannot tell (fs.leases-enable = 0, say).  A file open only
 * for reading counts where the kernel counts such opens for leases. */
int store_stage_held(int fd);

/* Give back staging file @fd for a later store_stage_new() to take, once
 * no other file is open on it (a write lease tells), emptied; or close it
 * as store_stage_abort() does.  The caller vouches that nothing opened it
 * read-only, which a lease does not see. */
void store_stage_recycle(struct store *st, int fd);

/* A staging file holding the @len bytes of @buf (on failure, none). */
int store_stage_mem(struct store *st, const char *buf, size_t len,
		    int *fd_out);

/* Keep up to @n empty staging files made ahead, on a thread of the
 * store's, for store_stage_new() to take (a mount asks for this). */
void store_stage_pool(struct store *st, int n);

/* A staging file holding a copy of what @src holds (store_copy()); @src's
 * offset is not moved. */
int store_stage_copy(struct store *st, int src, int *fd_out);

/* Copy the first @len bytes of @src (UINT64_MAX: all of it) to the same
 * offsets of @dst, holes left holes: a reflink where the file system has
 * them, else only the extents that hold data (SEEK_DATA, SEEK_HOLE), by
 * copy_file_range() or read and write.  @dst then ends where the copy
 * does: at @len, or sooner where @src ends (cut while copied); *@copied,
 * if not NULL, gets that length.  0 or a negative errno. */
int store_copy(int src, int dst, uint64_t len, uint64_t *copied);
/* store_copy() that calls @progress(@arg, UPTO) each time the first UPTO
 * bytes of @dst are copied for good (every 4 MiB of data at most; @dst is
 * then UPTO long at least), so that another thread may read them
 * meanwhile: the copy's own bytes, which no writer of @src changes any
 * more.  Not after a reflink, nor for holes at the end: once it returns,
 * all of *@copied is. */
int store_copy_watched(int src, int dst, uint64_t len, uint64_t *copied,
		       void (*progress)(void *arg, uint64_t upto), void *arg);

/* Read exactly @len bytes of @fd at @off into @buf: 0, -ENODATA where the
 * file ends first, or a negative errno.  EINTR is retried. */
int store_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* Write all @len bytes of @buf to @fd at @off: 0 or a negative errno. */
int store_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* Incremental SHA-256 for callers that see the data as it is written. */
struct store_hash;
struct store_hash *store_hash_new(void);	/* NULL on ENOMEM */
void store_hash_update(struct store_hash *h, const void *buf, size_t len);
/* Write the hex digest (65 bytes with NUL) and free @h. */
void store_hash_final(struct store_hash *h, char hex[65]);
/* The hex SHA-256 of the @len bytes at @buf: 0, or -ENOMEM. */
int store_hash_mem(const void *buf, size_t len, char hex[65]);
void store_hash_free(struct store_hash *h);

/* SHA-256 of the whole file open at @fd, from offset 0, into @hex. */
int store_hash_fd(int fd, char hex[65]);
/* Hash @len bytes of @fd from @off (UINT64_MAX: to its end) into @h,
 * holes as zeros without reading them; *@done gets how many, short when
 * the file ends first.  0 or a negative errno. */
int store_hash_range(struct store_hash *h, int fd, uint64_t off,
		     uint64_t len, uint64_t *done);

/* What store_put() writes. */
/* One extended attribute, by name ("user.*", or a POSIX ACL's "system.posix_acl_*") and value. */
struct store_xattr {
	const char *name;
	const void *value;
	size_t size;
};

struct store_put {
	enum store_kind kind;	/* STORE_FILE, STORE_SYMLINK, or STORE_DIR
				 * (a directory marker: the key ends in '/'
				 * and the object has zero bytes) */
	int fd;			/* STORE_FILE: a staging fd, consumed by the
				 * call whatever it returns; -1 for an empty
				 * object */
	const char *sha256;	/* hex of fd's content if the caller knows
				 * it, else NULL and the store hashes it */
	const char *link_target;/* STORE_SYMLINK; its bytes are also the
				 * version's blob, as s3fs stores links */
	struct store_meta meta;	/* mode with type bits */
	int durable;		/* fsync blob and catalog before returning */
	int keep_xattrs;	/* copy user xattrs of the current version */
	const struct store_xattr *xattrs;	/* then set these (names as
						 * store_xattr_set() takes;
						 * a NULL value removes the
						 * name) */
	size_t nxattrs;
	int64_t named_ns;	/* when the name was made, if before this
				 * call (a file created, then written and
				 * closed); 0: now.  See below. */
	int mtime_set;		/* meta.mtime_ns is the mtime even when 0
				 * (the epoch, as tar --mtime=@0 sets it);
				 * else 0 there means now */
	uint64_t ino;		/* the key's inode number from now on: one
				 * the caller had from store_ino_reserve()
				 * (a file a mount created) or
				 * store_name_ino(); 0: the key keeps its
				 * own, or a new key gets a new one */
	const char *replaces;	/* a version ID of the key, or NULL: when
				 * that version is an empty file, was the
				 * current one until this, and no delivery
				 * of it is done or under way, it goes for
				 * good in the same transaction (in an
				 * Enabled bucket; else the null version
				 * is replaced anyway).  The empty file
				 * mknod(2) makes for the content written
				 * next: tar --xattrs makes each file so,
				 * to set its xattrs first. */
};

/*
 * Write a new version of @key in @bucket, with S3's rules: in an Enabled
 * bucket a new version with a fresh version ID becomes current; in a
 * Suspended or unversioned bucket the version ID is "null" and it replaces
 * any existing null version (data or delete marker).  The blob is placed
 * (or an identical one reused) before the catalog row that names it is
 * committed, in one transaction with everything else.  On success the new
 * version's ID is copied to @vid_out (may be NULL, else
 * STORE_VID_MAX + 1 bytes), and *obj_out (may be NULL) describes it.
 *
 * Folders: a write that makes a key appear in its folder (a new key, or
 * one whose current version was a delete marker), a delete marker on a
 * key that was there, a rename (both folders) and a store_undelete() or
 * store_delete_version() that changes whether a key is there each move
 * the folder's mtime and ctime forward to the time of the change, as on a
 * disk (put->named_ns for a put).  The folder's metadata is that of its
 * live marker "dir/", or the bucket's for a key at the top; a folder with
 * no marker has none to change.  They never move back, except by an
 * explicit store_set_meta().
 */
int store_put(struct store *st, const char *bucket, const char *key,
	      struct store_put *put, char *vid_out, struct store_obj *obj_out);

/*
 * The close journal (journal.c): store_journal_put() keeps the first
 * version of a small file (at most JOURNAL_MAX_CONTENT bytes, of @content,
 * SHA-256 @sha) as store_put() would, by one append to STORE/journal; the
 * catalog has it a moment later.  *@obj_out gets what store_put() would
 * say but the version ID.  -EAGAIN: not for the journal (too large,
 * xattrs, durable, another process appends, too many waiting, or the
 * append failed): use store_put().
 */
#define JOURNAL_MAX_CONTENT (64 * 1024)
int store_journal_put(struct store *st, const char *bucket, const char *key,
		      const struct store_put *put, const void *content,
		      size_t size, const char *sha, struct store_obj *obj_out);
/*
 * The same for store_set_meta() (@mask, @meta; no xattrs) and for
 * store_rename() of a file to @to in its bucket (flags 0; @uid and @gid
 * the renamer's, @now the rename's time), of a key whose current version
 * this process journaled and no transaction has taken yet: the change is
 * appended after it, and made when it is applied.  0, or -EAGAIN: use
 * store_set_meta() or store_rename_by().
 */
int store_journal_meta(struct store *st, const char *bucket, const char *key,
		       const struct store_meta *meta, unsigned mask);
int store_journal_rename(struct store *st, const char *bucket,
			 const char *from, const char *to, uint32_t uid,
			 uint32_t gid, int64_t now);
/* Whether @key of @bucket has a record this process journaled and has
 * not applied yet (a version, a change of its metadata, a rename from or
 * to it): the catalog is behind, and its current version's blob may not
 * be in blobs/ yet. */
int store_journal_holds(struct store *st, const char *bucket,
			const char *key);
/* Apply the journal if it holds a version of @key of @bucket or of a key
 * below folder @key (every key with @key NULL or "", everything with
 * @bucket NULL): before a read that must see them. */
int store_journal_settle(struct store *st, const char *bucket,
			 const char *key);
/* @fn(@arg) after the journal's thread applied a version that queued a
 * delivery. */
void store_journal_on_applied(struct store *st, void (*fn)(void *),
			      void *arg);

/*
 * DELETE without a version ID: in an Enabled bucket a delete marker with a
 * fresh ID becomes current; in a Suspended one a delete marker with ID
 * "null" replaces any null version; in an unversioned one the object is
 * removed.  -ENOENT if @key has no current version.  The new marker's ID
 * goes to @vid_out (may be NULL; "" when nothing was made).
 */
int store_delete(struct store *st, const char *bucket, const char *key,
		 char *vid_out);

/* store_delete() by user @uid, group @gid, whom the delete marker names
 * as its owner (a marker of store_delete() names none: mode 0). */
int store_delete_by(struct store *st, const char *bucket, const char *key,
		    uint32_t uid, uint32_t gid, char *vid_out);

/*
 * DELETE with a version ID: removes that one version for good (data or
 * delete marker); if it was current, the next newest becomes current.
 * -ENOENT if there is no such version.  A blob no version references any
 * more is removed.
 */
int store_delete_version(struct store *st, const char *bucket,
			 const char *key, const char *version_id);

/* Bits of @mask for store_set_meta() and store_bucket_set_meta(). */
#define STORE_SET_MODE	0x1	/* permission bits only; type is kept */
#define STORE_SET_UID	0x2
#define STORE_SET_GID	0x4
#define STORE_SET_MTIME	0x8
#define STORE_SET_ATIME	0x10	/* alone, not sent to replicas again */
#define STORE_SET_CTIME	0x20	/* with others: ctime is @meta's, the
				 * time the caller showed (a mount's
				 * SETATTR reply), not the store's now */
/*
 * Change the metadata of the current version of @key in place (no new
 * version), as chmod, chown and touch do; ctime becomes now (or @meta's,
 * with STORE_SET_CTIME).  For a
 * directory pass the marker's key with its trailing '/'; -ENOENT if there
 * is no current version.
 */
int store_set_meta(struct store *st, const char *bucket, const char *key,
		   const struct store_meta *meta, unsigned mask);
/* The same, and in the same transaction set the @nx xattrs @x (or remove
 * one whose value is NULL; there need be none): a POSIX ACL and the mode
 * bits that go with it, a chown and the file capability it drops.  The
 * key "" stands for the bucket itself, here and in store_xattr_*(). */
int store_set_meta_xattr(struct store *st, const char *bucket,
			 const char *key, const struct store_meta *meta,
			 unsigned mask, const struct store_xattr *x,
			 size_t nx);

/* Flags of store_rename(). */
#define STORE_RENAME_NOREPLACE 0x1

/*
 * Rename @from in @from_bucket to @to in @to_bucket, as rename(2) does, in
 * one transaction.  @from and @to are paths as in store_lookup().  A file
 * or symlink: @to gets a new version sharing the blob and metadata (and
 * xattrs) of @from's current one, and @from gets a delete marker (or is
 * removed, in an unversioned bucket).  A directory: the same for every
 * current key under "@from/" (its marker included), so a directory of any
 * size is renamed atomically without copying data.  Errors as rename(2):
 * -ENOENT (no @from), -EEXIST (STORE_RENAME_NOREPLACE and @to exists),
 * -EISDIR (file onto directory), -ENOTDIR (directory onto file),
 * -ENOTEMPTY (directory onto a non-empty directory), -EINVAL (directory
 * into itself).  Renaming onto an existing file replaces it: the new
 * version is put over it with the destination bucket's rules (so its old
 * version stays as a non-current version in an Enabled bucket, and is
 * removed where the version is "null").  A directory onto an empty
 * directory: the target's marker is replaced by @from's, or deleted when
 * @from has none.
 */
int store_rename(struct store *st, const char *from_bucket, const char *from,
		 const char *to_bucket, const char *to, unsigned flags);

/* store_rename() by user @uid, group @gid, whom the delete markers it
 * leaves name as their owner (as store_delete_by()). */
int store_rename_by(struct store *st, const char *from_bucket,
		    const char *from, const char *to_bucket, const char *to,
		    unsigned flags, uint32_t uid, uint32_t gid);

/* ---- Replicas (written by replicator/dest_store.c) ------------------ */

/* A version that arrives by replication, keeping the source's identity. */
struct store_replica {
	enum store_kind kind;	/* FILE, SYMLINK, DIR (a marker: the key
				 * ends in '/') or DELETE_MARKER */
	const char *version_id;	/* the source's version ID, kept as is */
	int fd;			/* FILE: the content, read with pread()
				 * from offset 0; neither consumed nor
				 * closed; -1 for an empty object */
	const char *sha256;	/* FILE: hex SHA-256 the source has for the
				 * content; a mismatch is -EBADMSG */
	int fd_is_blob;		/* FILE: @fd is the source store's blob
				 * named @sha256 (immutable, its content
				 * checked when written): on the same file
				 * system it is hard-linked, not read */
	const char *link_target;/* SYMLINK */
	struct store_meta meta;	/* mode with type bits */
	int64_t created_ns;	/* when the source wrote it */
	const struct store_xattr *xattrs;	/* user xattrs, copied */
	size_t nxattrs;
};

/*
 * Write @r as a version of @key in @bucket, with the source's version ID,
 * metadata and time, marked as a replica: it is never queued for live
 * replication (no chaining), and its replication status is REPLICA.
 * The bucket must exist (-ENOENT) with versioning Enabled (-EINVAL).  A
 * version ID the key already has is not written again: 0, so a version
 * delivered twice after a crash is stored once.  Versions of one key must
 * arrive in the order they were written; the newest becomes current.
 */
int store_put_replica(struct store *st, const char *bucket, const char *key,
		      const struct store_replica *r);

/*
 * store_put_replica() of @n replicas (@keys[i] and @r[i]) to @bucket in one
 * transaction: @rets[i] gets what that call would have returned.  Each
 * goes in under its own savepoint, so one that fails leaves the others
 * in.  Returns 0, or -ENOMEM with nothing done.
 */
int store_put_replicas(struct store *st, const char *bucket,
		       const char *const *keys,
		       const struct store_replica *r, size_t n, int *rets);

/* ---- Replication: rules, queue and status (the catalog side) -------- */

/*
 * The store keeps, per bucket, the replication configuration (its JSON
 * text, opaque here: replicator/rules.c parses it) and the targets compiled
 * from its enabled rules.  Every version committed in a bucket with
 * targets gets, in the same transaction, one queue row per destination
 * that a target sends it to (S3's rules: the key starts with the target's
 * prefix, the version has the target's tags, a delete marker only where
 * delete_markers is set, a target with tags never takes delete markers;
 * of several targets naming one destination, the highest priority
 * decides).  Replicas (store_put_replica()) and permanent deletes of a
 * version are never queued.  A queue row is the replication status of
 * its version at its destination, and stays after it completes.
 */

/* The name prefix of the extended attributes that hold an object's S3
 * tags: tag K=V is the xattr "user.s3.tag.K" with value V. */
#define STORE_TAG_XATTR "user.s3.tag."

/* Whether xattr @name = @value (@size bytes) may be set on an object that
 * has @ntags tags besides it, by S3's limits on tags: 0, or -E2BIG
 * (logged).  0 for a name that is no tag. */
int store_tag_check(const char *name, const void *value, size_t size,
		    size_t ntags);

/* Longest destination URL. */
#define STORE_URL_MAX 4096
/* Longest rule ID (S3's limit). */
#define STORE_RULE_ID_MAX 255

/* One tag of a target's filter. */
struct store_tag {
	const char *key;
	const char *value;
};

/* One enabled rule's destination, compiled by the replicator. */
struct store_repl_target {
	const char *rule_id;
	int priority;
	const char *prefix;		/* "" for every key */
	const struct store_tag *tags;	/* all required */
	size_t ntags;
	const char *dest;		/* the destination's URL */
	int delete_markers;		/* DeleteMarkerReplication Enabled */
	int64_t threshold_ns;		/* replication-time threshold */
};

/*
 * Set the replication configuration of @bucket: its text @json (kept and
 * given back by store_repl_config_get()), an optional @hook command (NULL:
 * none) run when a version misses its threshold, and its targets; versions
 * written from now on are queued by them.  @json NULL removes the
 * configuration.  -ENOENT for no such bucket.
 */
int store_repl_config_set(struct store *st, const char *bucket,
			  const char *json, const char *hook,
			  const struct store_repl_target *targets, size_t n);

/* The configuration text of @bucket into *@json_out and its hook into
 * *@hook_out (each may be NULL; both malloc()ed, freed by the caller;
 * *hook_out NULL when none).  -ENOENT when the bucket has none. */
int store_repl_config_get(struct store *st, const char *bucket,
			  char **json_out, char **hook_out);

enum store_repl_status {
	STORE_REPL_PENDING = 0,
	STORE_REPL_COMPLETED = 1,
	STORE_REPL_FAILED = 2,
	STORE_REPL_REPLICA = 3,	/* only as a version's overall status */
	STORE_REPL_NONE = 4,	/* no rule sent the version anywhere */
};

/* S3's name of a status: "PENDING", "COMPLETED", "FAILED", "REPLICA", or
 * "" for STORE_REPL_NONE. */
const char *store_repl_status_name(enum store_repl_status s);

/* One queued delivery, as a worker claims it. */
struct store_repl_task {
	int64_t id;
	char bucket[64];
	char key[STORE_KEY_MAX + 1];
	char dest[STORE_URL_MAX + 1];
	char rule_id[STORE_RULE_ID_MAX + 1];
	struct store_obj obj;	/* the version: kind, ID, sha256, meta... */
	int attempts;		/* failed attempts so far */
	int64_t queued_ns;	/* when the version was queued */
	int64_t threshold_ns;	/* of its rule; 0 when the rule is gone */
	int late;		/* already reported as past the threshold */
	int64_t job;		/* batch job, 0 for live replication */
};

/*
 * Claim up to @max due deliveries (but past the first, no more than about
 * 1 MiB of content) into @out (*@n gets how many), for
 * @lease_ns: a claimed row is not handed out again until the lease ends or
 * the claiming process is dead (store_repl_release_dead()).  Only the
 * oldest pending delivery of a key to a destination is ever due, so the
 * versions of a key reach a destination in the order they were written.
 */
/* The same, to one destination only (the first one due), and none of
 * the @nskip destinations @skip (at most STORE_CLAIM_SKIP_MAX are looked
 * at): an engine keeps a destination that does not answer from taking
 * every worker (replicator/engine.c). */
#define STORE_CLAIM_SKIP_MAX 8
int store_repl_claim_from(struct store *st, size_t max, int64_t lease_ns,
			  const char *const *skip, size_t nskip,
			  struct store_repl_task *out, size_t *n);
int store_repl_claim(struct store *st, size_t max, int64_t lease_ns,
		     struct store_repl_task *out, size_t *n);

/*
 * Record the outcome of task @id: STORE_REPL_COMPLETED, STORE_REPL_FAILED
 * with @error (a sentence; may be NULL), or STORE_REPL_PENDING to retry at
 * @next_ns (one more failed attempt, @error kept as the last one).
 */
int store_repl_done(struct store *st, int64_t id,
		    enum store_repl_status status, int64_t next_ns,
		    const char *error);

/*
 * Pending deliveries that have waited longer than their rule's threshold
 * and were not reported yet: each is marked as reported and passed to @cb
 * (with the fields of a claimed task; @cb must not call the store's write
 * functions).  Returns how many, or a negative errno.
 */
typedef void (*store_repl_task_cb)(void *arg,
				   const struct store_repl_task *t);
int store_repl_overdue(struct store *st, store_repl_task_cb cb, void *arg);

/* Mark task @id as reported past its threshold: 1 if this call marked it,
 * 0 if it was already, or a negative errno. */
int store_repl_mark_late(struct store *st, int64_t id);

/* The outcome of one delivery, for store_repl_done_many(). */
struct store_repl_outcome {
	int64_t id;
	enum store_repl_status status;
	int64_t next_ns;
	const char *error;
};

/* store_repl_done() for @n deliveries in one transaction. */
int store_repl_done_many(struct store *st,
			 const struct store_repl_outcome *o, size_t n);

/* Make the leased deliveries of processes that no longer run due again
 * (after a crash).  *@n (may be NULL) gets how many. */
int store_repl_release_dead(struct store *st, size_t *n);

/* Make the deliveries to @dest that wait for a retry (pending, leased by
 * no one, due later) due now, as when what made them fail was mended.
 * Their attempts still count.  *@n (may be NULL) gets how many. */
int store_repl_due_now(struct store *st, const char *dest, size_t *n);

/* Pending deliveries in @bucket (NULL: in the whole store), of @key and
 * the keys below it (NULL or "": all of the bucket's). */
int store_repl_pending(struct store *st, const char *bucket, const char *key,
		       uint64_t *n);

/* The overall replication status of version @version_id of @key: REPLICA
 * for a replica, NONE when it was not queued, else FAILED if any
 * destination failed, PENDING if any is pending, else COMPLETED; and, with
 * @cb, each destination's status and last error (NULL if none). */
typedef int (*store_repl_dest_cb)(void *arg, const char *dest,
				  const char *rule_id,
				  enum store_repl_status status,
				  const char *error);
int store_repl_version_status(struct store *st, const char *bucket,
			      const char *key, const char *version_id,
			      enum store_repl_status *overall,
			      store_repl_dest_cb cb, void *arg);

/* What `replicafs status` shows for one rule and destination. */
struct store_repl_stat {
	char bucket[64];
	char rule_id[STORE_RULE_ID_MAX + 1];
	char dest[STORE_URL_MAX + 1];
	uint64_t ops_pending;
	uint64_t bytes_pending;
	uint64_t ops_failed;
	int64_t oldest_pending_ns;	/* queue time; 0 when none */
	char last_error[512];		/* "" when none */
	int64_t last_error_ns;
};

/* Call @cb for each rule and destination of @bucket (NULL: every bucket),
 * those with rules now and those with deliveries pending or failed; the
 * counts of deliveries of @key and the keys below it (NULL or "": of the
 * whole bucket; ignored without @bucket). */
typedef int (*store_repl_stat_cb)(void *arg,
				  const struct store_repl_stat *stat);
int store_repl_stats(struct store *st, const char *bucket, const char *key,
		     store_repl_stat_cb cb, void *arg);

/* The user xattrs of version @version_id of @key, for the replicator:
 * *@out is a malloc()ed array (names and values inside the same block),
 * freed by the caller with free().  @key "": the bucket's own (its ACLs),
 * whatever @version_id. */
int store_version_xattrs(struct store *st, const char *bucket,
			 const char *key, const char *version_id,
			 struct store_xattr **out, size_t *n);

/*
 * Multipart uploads a destination (replicator/dest_s3.c) started and has
 * not finished: it notes each one as soon as the service names it, before
 * it sends a part, and forgets it once it is completed or aborted.  So
 * what is noted for a key when a delivery of it starts was left by one
 * that died (kill -9, a crash) or gave up, and is the destination's own
 * to abort; an upload of the key that is not noted is another client's.
 * @dest is the destination's URL, @key the key there (with its prefix),
 * @upload_id the service's.  Each call is its own transaction, committed
 * when it returns: a note outlives a kill -9 of the process right after
 * (a power loss may take the last ones back).
 */
/* Note upload @upload_id of @key at @dest (noting it twice keeps one). */
int store_repl_upload_note(struct store *st, const char *dest,
			   const char *key, const char *upload_id);
/* Forget it: 0 also when it was not noted. */
int store_repl_upload_forget(struct store *st, const char *dest,
			     const char *key, const char *upload_id);
/*
 * Call @cb with each upload noted for @key at @dest, the oldest first.
 * The notes are read before the first call, so @cb may call the store
 * (forget the upload it was given) and take its time (a request to the
 * service).  A non-zero return of @cb stops the walk and is returned;
 * else 0 or a negative errno.
 */
typedef int (*store_repl_upload_cb)(void *arg, const char *upload_id);
int store_repl_uploads(struct store *st, const char *dest, const char *key,
		       store_repl_upload_cb cb, void *arg);

/* ---- Batch replication jobs ----------------------------------------- */

/*
 * A batch job replicates on demand what live replication did not send:
 * versions written before a rule existed, FAILED ones, versions already
 * COMPLETED to one destination for a newly added one, and replicas (which
 * a job, unlike live replication, may send on).  Its manifest (which
 * versions, to which destinations) is fixed when it is created: one queue
 * row per item, with the job's ID, delivered by the same workers with the
 * same order per key and the same retries as live replication; items that
 * cannot be sent (a missing key, a bad manifest row, a version already at
 * its destination) are kept as notes for the report.
 */

/* Bits of store_job_spec.status_mask: 1 << an enum store_repl_status. */
#define STORE_JOB_NONE (1u << STORE_REPL_NONE)
#define STORE_JOB_FAILED (1u << STORE_REPL_FAILED)
#define STORE_JOB_COMPLETED (1u << STORE_REPL_COMPLETED)
#define STORE_JOB_REPLICA (1u << STORE_REPL_REPLICA)

struct store_job_spec {
	const char *bucket;
	const char *rule_id;	/* only this rule's destination; NULL: the
				 * enabled rules of the bucket, as live */
	const char *dest;	/* instead of rules: this destination, for
				 * every key, delete markers included */
	unsigned status_mask;	/* versions whose overall status is one of
				 * these (STORE_JOB_*); 0: NONE | FAILED */
	const char *prefix;	/* keys starting with it; NULL: all */
	int64_t created_before_ns;	/* versions written before; 0: all */
	const char *report;	/* the report's path, or NULL */
	const char *description;	/* shown by `batch list` */
};

/* One row of a manifest (bucket,key,version-id), or a row that could not
 * be read (@error set: it is only reported). */
struct store_job_row {
	const char *bucket;
	const char *key;
	const char *version_id;
	const char *error;
};

enum store_job_state {
	STORE_JOB_ACTIVE = 0,
	STORE_JOB_COMPLETE = 1,
	STORE_JOB_CANCELLED = 2,
};

/*
 * Create a job from @spec: over the versions of the bucket that match its
 * filters (all versions of each key, oldest first), or over @rows when
 * @rows is not NULL (then the filters other than the destination are not
 * used; a row that names no version is a FAILED note, one the rules do
 * not take a SKIPPED note that says why).  Its ID goes to *@id.  A job by
 * the bucket's rules forgets the live deliveries of the FAILED versions it
 * takes that FAILED to a destination no rule names any more (SKIPPED
 * notes say so).  -ENOENT for a missing bucket, -EINVAL (logged) when the
 * bucket has no rule to go by and no destination is given, unless the job
 * is of FAILED versions only (it then only forgets such failures).
 */
int store_job_create(struct store *st, const struct store_job_spec *spec,
		     const struct store_job_row *rows, size_t nrows,
		     int64_t *id);

struct store_job_info {
	int64_t id;
	char bucket[64];
	char description[512];
	char report[4096];	/* "" when none */
	enum store_job_state state;
	int64_t created_ns;
	int64_t done_ns;	/* 0 while active */
	uint64_t items;		/* deliveries, plus notes */
	uint64_t pending;
	uint64_t completed;
	uint64_t failed;	/* failed deliveries and failed notes */
	uint64_t skipped;	/* notes of items already at their
				 * destination or queued */
	uint64_t cancelled;	/* items still to send when it was
				 * cancelled */
	uint64_t bytes;		/* of all deliveries */
	uint64_t bytes_done;	/* of those completed */
};

/* Fill @out with job @id; -ENOENT if there is none. */
int store_job_get(struct store *st, int64_t id, struct store_job_info *out);

/* Only the state of job @id: one row read, where store_job_get() counts
 * the job's items (its cost grows with the job). */
int store_job_state(struct store *st, int64_t id,
		    enum store_job_state *out);

/* Call @cb for each job, oldest first. */
typedef int (*store_job_cb)(void *arg, const struct store_job_info *job);
int store_job_list(struct store *st, store_job_cb cb, void *arg);

/*
 * Cancel job @id: its pending deliveries are dropped and kept as
 * CANCELLED notes, but for those under way (leased by a process that
 * runs), which end as they end: COMPLETED or FAILED, and a retry of one
 * becomes CANCELLED (store_repl_done_many()).  Returns how many are under
 * way: 0 when the job is done now (its report can be written), else
 * store_job_finish() returns 1 for it once the last of them ended.
 * -ENOENT for no such job, -EALREADY when it is not active.
 */
int store_job_cancel(struct store *st, int64_t id);

/* Mark job @id COMPLETE when nothing of it is pending any more, or a job
 * cancelled with deliveries under way done once they ended: 1 when this
 * call did it (the caller writes the report), 0 otherwise (still pending,
 * or already done). */
int store_job_finish(struct store *st, int64_t id);

/* Call @cb for each item of job @id, for its report: @outcome is
 * "COMPLETED", "FAILED", "PENDING", "SKIPPED" or "CANCELLED", @error a
 * sentence or NULL. */
typedef int (*store_job_item_cb)(void *arg, const char *bucket,
				 const char *key, const char *version_id,
				 const char *dest, const char *outcome,
				 const char *error);
int store_job_items(struct store *st, int64_t id, store_job_item_cb cb,
		    void *arg);

/* ---- Reading -------------------------------------------------------- */

/* Open the blob @sha256 (hex) read-only; the caller closes the fd. */
int store_blob_open(struct store *st, const char *sha256, int *fd_out);
/* The same for a version of @size bytes: -EIO (logged) when the blob is
 * missing or has another size, or, up to STORE_VERIFY_MAX bytes, other
 * content than its name says, as a disk's read error, rather than hand
 * out damaged content or "no such file" for a file that is there.
 * Larger blobs are not hashed here (a read of 1 GiB would first read it
 * all): `replicafs check --deep` finds their damage. */
#define STORE_VERIFY_MAX (1 << 20)
int store_blob_open_sized(struct store *st, const char *sha256,
			  uint64_t size, int *fd_out);

/* Path of blob @sha256 into @buf (PATH_MAX bytes). */
void store_blob_path(const struct store *st, const char *sha256, char *buf,
		     size_t size);

/* Fill @out with version @version_id of @key (data or delete marker);
 * -ENOENT if there is none. */
int store_version_get(struct store *st, const char *bucket, const char *key,
		      const char *version_id, struct store_obj *out);

/* Call @cb for every version of @key, newest first by the time it was
 * written (a replica's at its source: one that arrived late falls in its
 * place), delete markers included (kind STORE_DELETE_MARKER), with
 * is_latest set on the current version.  -ENOENT if the key never had a
 * version. */
typedef int (*store_version_cb)(void *arg, const struct store_obj *obj);
int store_versions(struct store *st, const char *bucket, const char *key,
		   store_version_cb cb, void *arg);

/*
 * The permissions of a life of @key: its data versions from version
 * @version_id (or, with @version_id NULL, from the version current at
 * @t_ns) up to the delete marker after it, or to the first version of
 * another owner (a file of theirs renamed over it).  @cb gets each distinct
 * owner, group and mode (in @m) with access ACL (@acl, @acl_len bytes;
 * NULL, 0 for none), and returns nonzero to stop.  Nothing when the key,
 * the version or its bucket is not there, or when the version current at
 * @t_ns was a delete marker or none.  0 or a negative errno.
 */
typedef int (*store_perm_cb)(void *arg, const struct store_meta *m,
			     const void *acl, size_t acl_len);
int store_life_perms(struct store *st, const char *bucket, const char *key,
		     const char *version_id, int64_t t_ns, store_perm_cb cb,
		     void *arg);

/* ---- Extended attributes (of the current version of a key) ---------- */

/* For a directory pass its marker key, with the trailing '/'. */
int store_xattr_set(struct store *st, const char *bucket, const char *key,
		    const char *name, const void *value, size_t size,
		    int flags /* XATTR_CREATE, XATTR_REPLACE or 0 */);
/* Copy the value into @buf of @size bytes and return its length (with
 * @size 0, only the length); -ENODATA if absent, -ERANGE if too small. */
ssize_t store_xattr_get(struct store *st, const char *bucket, const char *key,
			const char *name, void *buf, size_t size);
/* Names, each NUL-terminated, as listxattr(2) gives them. */
ssize_t store_xattr_list(struct store *st, const char *bucket,
			 const char *key, char *buf, size_t size);
int store_xattr_remove(struct store *st, const char *bucket, const char *key,
		       const char *name);
/* Whether any version, folder or bucket, current or not, has a POSIX ACL
 * (system.posix_acl_access or system.posix_acl_default): 1, 0, or a
 * negative errno. */
int store_has_acls(struct store *st);

/* ---- Maintenance ---------------------------------------------------- */

/*
 * Check the store: PRAGMA integrity_check, then that every version row
 * names a blob that exists and, with @deep, hashes to its name.  Returns 0
 * when all is well, -EIO otherwise (each problem logged).
 */
int store_check(struct store *st, int deep);

/* Make every committed change durable (fsync of the catalog's WAL). */
int store_sync(struct store *st);

/* ---- History: the past of a bucket, restore, undelete --------------- */

/*
 * A key "exists or existed once" while it has any version, delete markers
 * included (S3's ListObjectVersions shows it); it is gone for good when
 * its last version is removed by store_delete_version().  A time is in
 * nanoseconds since the epoch, UTC, compared with each version's
 * created_ns (S3's LastModified): the version of a key current at @t_ns
 * is its newest one written at or before @t_ns.  Finding it is one index
 * seek (versions_time), whatever was written after.
 */

/*
 * Like store_list(), over every key that has any version (current, or
 * delete-marked): each key below @prefix as its last component, with its
 * current version (kind FILE, SYMLINK or DELETE_MARKER), and each common
 * prefix once as a STORE_DIR entry.  S3's order; one seek per entry.
 */
int store_list_all(struct store *st, const char *bucket, const char *prefix,
		   store_list_cb cb, void *arg);

/*
 * Like store_lookup(), over every key that has any version: @path as a
 * key (its current version, perhaps a delete marker), else as a directory
 * of such keys (STORE_DIR).  -ENOENT when neither.
 */
int store_lookup_all(struct store *st, const char *bucket, const char *path,
		     struct store_obj *out);

/* The version of @key current at @t_ns into @out (a delete marker too;
 * is_latest set when it is the current version now).  -ENOENT when the key
 * had no version then. */
int store_version_at(struct store *st, const char *bucket, const char *key,
		     int64_t t_ns, struct store_obj *out);

/*
 * store_lookup() as the bucket stood at @t_ns: @path "" is the bucket
 * itself (a STORE_DIR, -ENOENT if it was made after @t_ns); else a key
 * whose version then was a file or symlink; else a directory: a marker
 * "@path/" alive then (has_marker = 1), or any key below that was.
 */
int store_lookup_at(struct store *st, const char *bucket, const char *path,
		    int64_t t_ns, struct store_obj *out);

/*
 * store_list() as the bucket stood at @t_ns: the keys below @prefix whose
 * version then was a file or symlink, and the directories that then held
 * one (or an alive marker).  S3's order.  Costs a seek or two per key
 * that ever was directly in @prefix and per directory listed, plus, for a
 * directory that held nothing alive at @t_ns, one per key ever below it;
 * never anything per version.  A non-zero return from @cb stops the walk.
 */
int store_list_at(struct store *st, const char *bucket, const char *prefix,
		  int64_t t_ns, store_list_cb cb, void *arg);

/*
 * Make version @version_id of @key current again as S3's CopyObject onto
 * the same key does: a new version (a fresh ID in an Enabled bucket, the
 * null version otherwise) with the same blob, metadata, link target and
 * xattrs, ctime now, queued for replication like any write; in one
 * transaction, and no data is copied.  -ENOENT for no such version,
 * -EINVAL when it is a delete marker.  The new version's ID goes to
 * @vid_out (may be NULL, else STORE_VID_MAX + 1 bytes) and the version to
 * @obj_out (may be NULL).
 */
int store_restore(struct store *st, const char *bucket, const char *key,
		  const char *version_id, char *vid_out,
		  struct store_obj *obj_out);

/*
 * Undelete: remove the delete marker that is the current version of @key
 * (S3: DELETE of the marker's version ID), so that the version below it
 * is current again.  Its ID goes to @vid_out (may be NULL).  -ENOENT when
 * the key has no version, -EEXIST when its current version is not a
 * delete marker.  Never replicated.  The folders above the key that a
 * delete marker hides (rm -rf) come back with it, with their marker's
 * owner, mode and ACL; store_undelete_n() says how many in *@folders.
 */
int store_undelete(struct store *st, const char *bucket, const char *key,
		   char *vid_out);
int store_undelete_n(struct store *st, const char *bucket, const char *key,
		     char *vid_out, unsigned *folders);

/* Remove version @version_id of @key only if it is a delete marker
 * (current or not): -EPERM for a data version, -ENOENT for none. */
int store_delete_marker(struct store *st, const char *bucket,
			const char *key, const char *version_id);

/*
 * The ETag S3 gives version @version_id of @key (a single-part upload):
 * the hex MD5 of its content, into @md5 (33 bytes), without quotes.
 * Computed from the blob when asked; for content of 256 KiB or more it is
 * then kept in the catalog (versions.md5), as hashing a small blob again
 * costs less than the write that would keep it.  -ENODATA for a delete
 * marker, -ENOENT for no such version.
 */
int store_version_etag(struct store *st, const char *bucket, const char *key,
		       const char *version_id, char md5[33]);

/* store_version_etag() of version @o of @key, as a lookup or a listing
 * gave it: content under 256 KiB, whose ETag the catalog never keeps, is
 * hashed with no look at the catalog. */
int store_obj_etag(struct store *st, const char *bucket, const char *key,
		   const struct store_obj *o, char md5[33]);

#endif
