/*
 * ops.c - the FUSE low-level operations: kernel requests to store calls.
 *
 * The mount's root lists buckets; below a bucket a directory is a key
 * prefix.  The write path, per file (node):
 *
 *   open(O_TRUNC) / create / first write / truncate
 *        -> a staging file (store_stage_new), seeded from the current blob
 *           unless the content starts empty; the blob's hash is checked,
 *           for one of 4 MiB or more on a thread that the commit waits
 *           for (n->seed_check), so that a damaged blob makes no version;
 *   write -> pwrite into it; while writes arrive in order, SHA-256 is
 *           computed as they arrive, so the close need not read the file
 *           again;
 *   flush (close) of a handle open for writing, once data was written
 *        -> commit: store_put() links the staging file into the blob
 *           directory and commits the version row in one transaction, and
 *           only then does close(2) return;
 *   release of the last writer, if still dirty -> commit.
 *
 * A flush comes for every close(), also of a descriptor dup()ed from the
 * one that stays open.  Shells do just that for `echo x > f`: open with
 * O_TRUNC, dup2, close, write, close.  So a flush commits only data that
 * was written; a file made empty by O_TRUNC or O_CREAT alone (`touch`,
 * `: > f`) is committed by the release of its last writer, which follows
 * the last close at once.  One `echo x > f` makes one version.
 *
 * A file's staging belongs to the node, not to a handle: with the kernel's
 * writeback cache any writable handle may carry any page, and POSIX wants
 * every descriptor of a file to see the same bytes.  After a commit the
 * node's content is the new blob; a later write seeds a new staging file
 * from it (a reflink where the file system can).
 *
 * A file created and not yet closed has no version in the store: its node
 * is "pending", and lookups, listings, renames and unlinks consult the
 * node table for it.  Reads come from the staging file, else from the
 * blob, through splice.  The kernel keeps a file's page cache across opens
 * while the content it holds (cached_sha) is still current.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"

#define FH_WRITE 0x1
#define FH_PT 0x2		/* open in passthrough mode */

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Room for a key, its directory marker's '/', and the NUL. */
#define KEYBUF (STORE_KEY_MAX + 2)

static struct fs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether what was cached at @t (fs_mono_ns(), 0 for nothing) is younger
 * than the entry and attribute timeout the kernel is given. */
static int cache_fresh(const struct fs *fs, int64_t t)
{
	return t && fs_mono_ns() - t < (int64_t)(fs->opts.timeout * 1e9);
}

static struct timespec ns_to_ts(int64_t ns)
{
	struct timespec ts = {
		.tv_sec = ns / 1000000000,
		.tv_nsec = ns % 1000000000,
	};

	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

static enum fs_kind kind_of(enum store_kind k)
{
	switch (k) {
	case STORE_SYMLINK:
		return FS_SYMLINK;
	case STORE_DIR:
		return FS_DIR;
	default:
		return FS_FILE;
	}
}

void fs_meta_stat(const struct store_meta *m, uint64_t size, int64_t blocks,
		  struct stat *st)
{
	st->st_mode = m->mode;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_size = (off_t)size;
	/* A symlink's target lives in the catalog row and takes no block,
	 * as an ext4 fast symlink's does; du counts it 0. */
	if (S_ISLNK(m->mode))
		st->st_blocks = 0;
	else
		st->st_blocks = blocks >= 0 ? (blkcnt_t)blocks
					    : (blkcnt_t)((size + 511) / 512);
	st->st_blksize = 128 * 1024;
	st->st_nlink = S_ISDIR(m->mode) ? 2 : 1;
	st->st_mtim = ns_to_ts(m->mtime_ns);
	st->st_atim = m->atime_ns ? ns_to_ts(m->atime_ns) : st->st_mtim;
	st->st_ctim = ns_to_ts(m->ctime_ns ? m->ctime_ns : m->mtime_ns);
}

int64_t fs_obj_blocks(const struct store_obj *o)
{
	return o->kind == STORE_FILE ? o->blocks : -1;
}

static void root_stat(struct fs *fs, struct stat *st)
{
	struct store_meta m = {
		.mode = S_IFDIR | 0755,
		.uid = fs->uid,
		.gid = fs->gid,
		.mtime_ns = fs->start_ns,
		.ctime_ns = fs->start_ns,
	};

	memset(st, 0, sizeof(*st));
	fs_meta_stat(&m, 4096, -1, st);
	st->st_ino = FUSE_ROOT_ID;
}

/* ---- The cache of directories (see struct fs_node) ------------------- */

#define TS_SEC_MAX (INT64_MAX / 1000000000 - 1)
#define TS_SEC_MIN (INT64_MIN / 1000000000)

static int is_dir_node(const struct fs_node *n)
{
	return n->kind == FS_DIR || n->kind == FS_BUCKET;
}

/* @t in nanoseconds since the epoch, clamped to what that holds (from
 * 1677-09-21 to 2262-04-11), as ext4 clamps times to its own range: `touch
 * -d 2300-01-01` is kept as the last time there is, not wrapped to 1715. */
static int64_t ts_ns(struct timespec t)
{
	if (t.tv_sec > TS_SEC_MAX)
		return TS_SEC_MAX * 1000000000 + 999999999;
	if (t.tv_sec < TS_SEC_MIN)
		return TS_SEC_MIN * 1000000000;
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Raise the mtime and ctime in @st to directory @n's touched_ns.  Caller
 * holds n->lock. */
static void dir_raise(const struct fs_node *n, struct stat *st)
{
	int64_t t = n->touched_ns;

	if (!t)
		return;	/* none: a time before 1970 stays */
	if (t > ts_ns(st->st_mtim))
		st->st_mtim = ns_to_ts(t);
	if (t > ts_ns(st->st_ctim))
		st->st_ctim = ns_to_ts(t);
}

/* Cache @st, the store's attributes of directory @n, and raise it to what
 * names made here since have moved it to (the answer to give). */
static void dir_attr_set(struct fs_node *n, struct stat *st)
{
	if (!is_dir_node(n))
		return;
	pthread_mutex_lock(&n->lock);
	n->attr = *st;
	n->attr.st_ino = n->st_ino;
	n->attr_ns = fs_mono_ns();
	dir_raise(n, st);
	pthread_mutex_unlock(&n->lock);
}

static int dir_attr_get(struct fs *fs, struct fs_node *n, struct stat *st)
{
	int hit;

	pthread_mutex_lock(&n->lock);
	hit = cache_fresh(fs, n->attr_ns);
	if (hit) {
		*st = n->attr;
		dir_raise(n, st);
	}
	pthread_mutex_unlock(&n->lock);
	return hit;
}

/* A name below @dir went away or came: the directory itself may have
 * (one without a marker exists only while keys are below it), and the
 * name last not found may be there now. */
static void dir_changed(struct fs_node *dir)
{
	if (!is_dir_node(dir))
		return;
	pthread_mutex_lock(&dir->lock);
	dir->attr_ns = 0;
	dir->miss_ns = 0;
	dir->nodacl_ns = 0;
	dir->dacl_gen++;
	pthread_mutex_unlock(&dir->lock);
}

/*
 * A name was made below @dir at @ns: its mtime and ctime move there, as
 * a directory's do on a disk at creat(2) (git's untracked cache looks
 * while the new file is still open).  The store does the same when it
 * commits the name (store_put(), named_ns), which for a created file is
 * at its close; until then this node answers for it.  Names removed or
 * renamed need nothing here: the store has their time at once, and
 * dir_changed() drops the cached attributes.  The root, whose times are
 * the mount's (no store keeps them), moves only here: at a bucket made or
 * removed through this mount.
 */
static void dir_touched(struct fs_node *dir, int64_t ns)
{
	if (!dir || (!is_dir_node(dir) && dir->kind != FS_ROOT))
		return;
	pthread_mutex_lock(&dir->lock);
	if (ns > dir->touched_ns)
		dir->touched_ns = ns;
	pthread_mutex_unlock(&dir->lock);
}

/* The store has no key @name below @dir: remember it for the CREATE,
 * MKDIR or SYMLINK that follows such a LOOKUP. */
static void dir_miss_set(struct fs_node *dir, const char *name)
{
	size_t len = strlen(name);

	if (!is_dir_node(dir) || len > NAME_MAX)
		return;
	pthread_mutex_lock(&dir->lock);
	if (!dir->miss_name)
		dir->miss_name = malloc(NAME_MAX + 1);
	if (dir->miss_name) {
		memcpy(dir->miss_name, name, len + 1);
		dir->miss_ns = fs_mono_ns();
	}
	pthread_mutex_unlock(&dir->lock);
}

/* @name below @dir is there now: a miss remembered for it is stale. */
static void dir_miss_forget(struct fs_node *dir, const char *name)
{
	if (!is_dir_node(dir))
		return;
	pthread_mutex_lock(&dir->lock);
	if (dir->miss_name && strcmp(dir->miss_name, name) == 0)
		dir->miss_ns = 0;
	pthread_mutex_unlock(&dir->lock);
}

/* Whether @name was found missing below @dir within the timeout, with
 * no change below @dir since; the answer is used once. */
static int dir_miss_take(struct fs *fs, struct fs_node *dir, const char *name)
{
	int hit;

	pthread_mutex_lock(&dir->lock);
	hit = cache_fresh(fs, dir->miss_ns) && dir->miss_name &&
	      strcmp(dir->miss_name, name) == 0;
	dir->miss_ns = 0;
	pthread_mutex_unlock(&dir->lock);
	return hit;
}

/* The key of @name below directory node @dir into @key (KEYBUF bytes).
 * A name is at most NAME_MAX bytes, as statfs says and as on the disks
 * a tree is copied to (S3 itself only bounds the whole key). */
static int child_path(struct fs *fs, struct fs_node *dir, const char *name,
		      char *bucket, char *key)
{
	size_t len, nl = strlen(name);
	int ret;

	if (nl > NAME_MAX)
		return -ENAMETOOLONG;
	ret = fs_node_path(fs, dir, bucket, key);
	if (ret)
		return ret;
	len = strlen(key);
	if (len + nl + (len ? 1 : 0) > STORE_KEY_MAX)
		return -ENAMETOOLONG;
	if (len)
		key[len++] = '/';
	memcpy(key + len, name, nl + 1);
	return 0;
}

/*
 * The kernel leaves the clearing of set-ID bits to us (fs->killpriv, see
 * loop.c).  As Linux does it: a write, a truncate or an open with O_TRUNC
 * by a caller without CAP_FSETID (here: not root) drops set-user-ID, and
 * set-group-ID where group execute is set or the caller is not of the
 * file's group (its own or a supplementary one); a chown drops set-user-ID whoever does it, and set-group-ID
 * by the same rule.  Returns the bits of @mode to drop.
 */
static int in_group(fuse_req_t req, uint32_t gid);

static uint32_t killpriv_bits(fuse_req_t req, uint32_t mode, uint32_t gid,
			      int chown)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	uint32_t bits = S_ISUID;

	if (!FS(req)->killpriv || (c->uid == 0 && !chown))
		return 0;
	if ((mode & S_IXGRP) || !in_group(req, gid))
		bits |= S_ISGID;
	return bits & mode;
}

/* A content change by @req drops set-ID bits of file node @n at its next
 * commit; tell the kernel, whose cached mode still has them.  Caller
 * holds n->lock. */
static void kill_priv(fuse_req_t req, struct fs_node *n)
{
	uint32_t bits = killpriv_bits(req, n->meta.mode, n->meta.gid, 0);

	if (!bits || (n->killpriv & bits) == bits)
		return;
	n->killpriv |= bits;
	fuse_lowlevel_notify_inval_inode(FS(req)->se, n->ino, -1, 0);
}

/*
 * Passthrough.  A file opened for writing, where the mount has FUSE
 * passthrough (loop.c) and no handle of the node is open in the page
 * cache's mode, is opened in passthrough mode on the node's staging file:
 * the kernel does its reads, writes and mmap on that file directly, and
 * the daemon sees none of them.  Handles opened while one such is open
 * share the staging file (the kernel takes one backing file per inode),
 * read-only ones included; a read-only open of a file no one writes stays
 * in the page cache's mode, where committed content is cached, and while
 * any handle is open that way a writer is too, with the writes coming to
 * op_write() as without passthrough (but one WRITE per write(2): the
 * mount has no writeback cache in this mode).
 *
 * What the daemon does not see it finds out: pt_sync() compares the
 * staging file's size, mtime and ctime with what fstat() said last, and a
 * change is a write.  Only where ctime changes at every write the
 * daemon could miss does the mount take passthrough (file systems with
 * fine-grained timestamps once they have been looked at: ext4, xfs,
 * btrfs and tmpfs on Linux 6.13 and later; fs/mount.c).  The staging
 * file stays the backing file until the last passthrough handle is
 * released, so a commit before that (a close while other handles, or
 * duplicates of this one, can still write) puts a copy of it, and only
 * the commit at the last release links the staging file itself.
 */

/* Whether a file fstat() saw as @a and later as @b was left unwritten. */
static int same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size &&
	       ts_ns(a->st_mtim) == ts_ns(b->st_mtim) &&
	       ts_ns(a->st_ctim) == ts_ns(b->st_ctim);
}

/* Remember the staging file as it is now.  Caller holds n->lock. */
static void pt_stamp(struct fs_node *n)
{
	if (n->stage_fd < 0 || fstat(n->stage_fd, &n->pt_st) < 0)
		n->pt_st.st_size = -1;	/* the next look sees a change */
}

/* Take in what the kernel wrote to a passthrough node's staging file
 * since pt_stamp(), and tell the kernel when that drops set-ID bits (as
 * kill_priv() does).  Caller holds n->lock. */
static void pt_sync(struct fs *fs, struct fs_node *n)
{
	struct stat st;
	uint32_t bits;

	if (!n->pt_id || n->stage_fd < 0 || fstat(n->stage_fd, &st) < 0)
		return;
	if (same_file_state(&st, &n->pt_st))
		return;
	n->pt_st = st;
	n->size = (uint64_t)st.st_size;
	n->meta.mtime_ns = n->meta.ctime_ns = ts_ns(st.st_mtim);
	n->dirty = 1;
	n->wrote = 1;
	n->caps_kept = 0;
	bits = n->pt_killbits;
	if (n->pt_nonroot && (n->meta.mode & S_IXGRP))
		bits |= S_ISGID;
	if (bits & n->meta.mode & ~n->killpriv) {
		n->killpriv |= bits & n->meta.mode;
		fuse_lowlevel_notify_inval_inode(fs->se, n->ino, -1, 0);
	}
}

/* st_blocks of the node's staging file, or -1.  Caller holds n->lock and
 * has run pt_sync(). */
static int64_t stage_blocks(struct fs_node *n)
{
	struct stat st;

	if (n->stage_fd < 0)
		return -1;
	if (n->pt_id)
		return n->pt_st.st_size >= 0 ? (int64_t)n->pt_st.st_blocks : -1;
	return fstat(n->stage_fd, &st) ? -1 : (int64_t)st.st_blocks;
}

/* Attributes of a file node from its open state, if it has one that the
 * store does not: a pending file or uncommitted writes.  Caller holds
 * node->lock.  Returns 1 when @st was filled. */
static int open_state_stat(struct fs *fs, struct fs_node *n, int pending,
			   struct stat *st)
{
	pt_sync(fs, n);
	if (!pending && n->stage_fd < 0 && !n->dirty)
		return 0;
	memset(st, 0, sizeof(*st));
	fs_meta_stat(&n->meta, n->size, stage_blocks(n), st);
	st->st_mode &= ~n->killpriv;
	st->st_ino = n->st_ino;
	return 1;
}

static int node_pending(struct fs *fs, struct fs_node *n)
{
	int p;

	pthread_mutex_lock(&fs->lock);
	p = n->pending;
	pthread_mutex_unlock(&fs->lock);
	return p;
}

/* Remember what the store says of a file node, for commits and opens.
 * Not while a writer has it open: what it opened is what it writes on
 * (under the writeback cache its writes, held in the kernel, have not
 * made a staging file yet), and taken in here a restore or an rm-version
 * of the newest version showed the older content at the newer size,
 * padded with NULs, which the writer's close then kept. */
static void node_learn(struct fs_node *n, const struct store_obj *obj)
{
	if (n->kind != FS_FILE)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->stage_fd < 0 && !n->dirty && n->nwriters == 0) {
		n->meta = obj->meta;
		n->size = obj->size;
		n->blocks = obj->blocks;
		if (strcmp(n->base_sha, obj->sha256) != 0) {
			memcpy(n->base_sha, obj->sha256, sizeof(n->base_sha));
			if (n->base_fd >= 0) {
				close(n->base_fd);
				n->base_fd = -1;
			}
		}
		n->base_known = 1;
		n->attr_ns = fs_mono_ns();
	}
	pthread_mutex_unlock(&n->lock);
}

/*
 * The attributes of an open file whose version the store no longer has
 * (`replicafs rm-version` from another process): what it had, with no
 * link, as a disk's unlinked inode that a process holds open.  A read
 * past the size the kernel knows asks for them, and failed with ENOENT.
 * 1 when @st was filled.
 */
static int open_gone_stat(struct fs *fs, struct fs_node *n, struct stat *st)
{
	int open;

	if (n->kind != FS_FILE)
		return 0;
	pthread_mutex_lock(&fs->lock);
	open = n->nopen > 0;
	pthread_mutex_unlock(&fs->lock);
	pthread_mutex_lock(&n->lock);
	open = open && n->base_known;
	if (open) {
		memset(st, 0, sizeof(*st));
		fs_meta_stat(&n->meta, n->size, n->blocks, st);
		st->st_ino = n->st_ino;
		st->st_nlink = 0;
	}
	pthread_mutex_unlock(&n->lock);
	return open;
}

/* Fill @st for @n, from its open state or the store. */
static int node_stat(struct fs *fs, struct fs_node *n, struct stat *st)
{
	char bucket[64], key[KEYBUF];
	struct store_obj obj;
	struct store_meta m;
	int ret, pending;

	if (n->kind == FS_ROOT) {
		root_stat(fs, st);
		pthread_mutex_lock(&n->lock);
		dir_raise(n, st);
		pthread_mutex_unlock(&n->lock);
		return 0;
	}
	if (n->kind == FS_FILE) {
		pending = node_pending(fs, n);
		pthread_mutex_lock(&n->lock);
		ret = open_state_stat(fs, n, pending, st);
		if (!ret && n->base_known && cache_fresh(fs, n->attr_ns)) {
			/* What the store said, or what we committed, within
			 * the attribute timeout. */
			memset(st, 0, sizeof(*st));
			fs_meta_stat(&n->meta, n->size, n->blocks, st);
			st->st_ino = n->st_ino;
			ret = 1;
		}
		pthread_mutex_unlock(&n->lock);
		if (ret)
			return 0;
	}
	if (is_dir_node(n) && dir_attr_get(fs, n, st))
		return 0;
	ret = fs_node_path(fs, n, bucket, key);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	if (n->kind == FS_BUCKET) {
		ret = store_bucket_get(fs->st, bucket, &m, NULL);
		if (ret)
			return ret;
		m.mode = S_IFDIR | (m.mode & 07777);
		fs_meta_stat(&m, 4096, -1, st);
	} else {
		ret = store_lookup(fs->st, bucket, key, &obj);
		if (ret == 0 && kind_of(obj.kind) != n->kind)
			ret = -ENOENT;
		if (ret == -ENOENT && open_gone_stat(fs, n, st))
			return 0;
		if (ret)
			return ret;
		node_learn(n, &obj);
		fs_meta_stat(&obj.meta, obj.kind == STORE_DIR ? 4096 : obj.size,
			     fs_obj_blocks(&obj), st);
	}
	st->st_ino = n->st_ino;
	dir_attr_set(n, st);
	return 0;
}

static void reply_entry(fuse_req_t req, struct fs_node *n,
			const struct stat *st)
{
	struct fuse_entry_param e;
	struct fs *fs = FS(req);

	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.attr = *st;
	e.attr.st_ino = n->st_ino;
	e.attr_timeout = fs->opts.timeout;
	e.entry_timeout = fs->opts.timeout;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		fs_node_forget(fs, n, 1);	/* the request was interrupted */
}

static void reply_negative(fuse_req_t req)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.entry_timeout = FS(req)->opts.timeout;
	fuse_reply_entry(req, &e);
}

static struct fs_node *node_or_reply(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_node *n = fs_node_get(FS(req), ino);

	if (!n)
		fuse_reply_err(req, ESTALE);
	return n;
}

/* ---- Names --------------------------------------------------------- */

/*
 * When the content of file @name in @dir changed behind its node (a
 * restore, an rm-version, a write through another mount of the store),
 * the node leaves the tree and this lookup makes a new one, as a rename
 * onto the name would on a disk: handles open on the old node read what
 * it held, and the name is a new inode, of the new size.  Kept, the
 * kernel showed the old size (under the writeback cache it never takes
 * ours; without it, until the attributes time out): a restored shorter
 * version read with NULs at its end, a longer one cut short, and an
 * append wrote at the old end, so that a version kept NULs where the
 * newer content had been.  Not a node that is being written.
 */
static void stale_drop(struct fs *fs, struct fs_node *dir, const char *name,
		       const struct store_obj *obj)
{
	struct fs_node *n;
	int stale;

	pthread_mutex_lock(&fs->lock);
	n = fs_node_find_locked(fs, dir, name);
	if (n && (n->kind != FS_FILE || n->pending))
		n = NULL;
	if (n)
		n->nlookup++;	/* hold it while its lock is taken */
	pthread_mutex_unlock(&fs->lock);
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	stale = n->base_known && !n->dirty && n->stage_fd < 0 &&
		n->nwriters == 0 && !n->pt_mapped &&
		strcmp(n->base_sha, obj->sha256) != 0;
	if (stale) {
		pthread_rwlock_wrlock(&fs->ns_lock);
		pthread_mutex_lock(&fs->lock);
		if (n->parent == dir && n->name && !strcmp(n->name, name))
			fs_node_detach_locked(fs, n);
		pthread_mutex_unlock(&fs->lock);
		pthread_rwlock_unlock(&fs->ns_lock);
	}
	pthread_mutex_unlock(&n->lock);
	fs_node_forget(fs, n, 1);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	struct fs_node *dir = node_or_reply(req, parent), *n;
	char bucket[64], key[KEYBUF];
	struct store_obj obj;
	struct store_meta m;
	struct stat st;
	enum fs_kind kind;
	int ret;

	if (!dir)
		return;
	if (dir->kind == FS_ROOT) {
		if (name[0] == '.' || store_bucket_get(fs->st, name, &m, NULL)) {
			reply_negative(req);
			return;
		}
		n = fs_node_child(fs, dir, name, FS_BUCKET, 1,
				  store_name_ino(name, "", 0));
		if (!n) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		memset(&st, 0, sizeof(st));
		m.mode = S_IFDIR | (m.mode & 07777);
		fs_meta_stat(&m, 4096, -1, &st);
		dir_attr_set(n, &st);
		reply_entry(req, n, &st);
		return;
	}
	if (dir->kind != FS_BUCKET && dir->kind != FS_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}

	/* A file being created is known to the node table only. */
	pthread_mutex_lock(&fs->lock);
	n = fs_node_find_locked(fs, dir, name);
	if (n && n->pending)
		n->nlookup++;
	else
		n = NULL;
	pthread_mutex_unlock(&fs->lock);
	if (n) {
		ret = node_stat(fs, n, &st);
		if (ret) {
			fs_node_forget(fs, n, 1);
			fuse_reply_err(req, -ret);
		} else {
			reply_entry(req, n, &st);
		}
		return;
	}

	ret = child_path(fs, dir, name, bucket, key);
	if (ret == 0)
		ret = store_lookup(fs->st, bucket, key, &obj);
	if (ret == -ENOENT) {
		dir_miss_set(dir, name);
		reply_negative(req);
		return;
	}
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	kind = kind_of(obj.kind);
	if (kind == FS_FILE)
		stale_drop(fs, dir, name, &obj);
	n = fs_node_child(fs, dir, name, kind, 1, obj.ino);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	node_learn(n, &obj);
	memset(&st, 0, sizeof(st));
	fs_meta_stat(&obj.meta, kind == FS_DIR ? 4096 : obj.size,
		     fs_obj_blocks(&obj), &st);
	if (kind == FS_FILE) {
		pthread_mutex_lock(&n->lock);
		open_state_stat(fs, n, 0, &st);
		pthread_mutex_unlock(&n->lock);
	}
	dir_attr_set(n, &st);
	reply_entry(req, n, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs_node *n = fs_node_get(FS(req), ino);

	if (n)
		fs_node_forget(FS(req), n, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct fs *fs = FS(req);
	size_t i;

	for (i = 0; i < count; i++) {
		struct fs_node *n = fs_node_get(fs, forgets[i].ino);

		if (n)
			fs_node_forget(fs, n, forgets[i].nlookup);
	}
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_node *n = node_or_reply(req, ino);
	struct stat st;
	int ret;

	if (!n)
		return;
	ret = node_stat(FS(req), n, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, FS(req)->opts.timeout);
}

/* ---- File content ---------------------------------------------------- */

/* Make sure the node knows its current content (base_sha, size), looking
 * again at the store when @refresh.  With @refresh CK_OPEN, content that
 * changed behind the node is not taken: -ESTALE (see op_open()).  Caller
 * holds n->lock. */
#define CK_OPEN 2
static int content_known(struct fs *fs, struct fs_node *n, int refresh);

/*
 * Whether @n's key has a record this mount journaled and has not applied
 * yet (store_journal_holds()): then what the node knows is newer than the
 * catalog, and its blob may not be in blobs/ yet.  An open for reading
 * looks neither again at the store nor for the blob, whose first read
 * has the journal applied (rsync opens each file it wrote, to chmod it).
 * Caller holds n->lock.
 */
static int node_journaled(struct fs *fs, struct fs_node *n)
{
	char bucket[64], key[KEYBUF];

	if (!n->base_known || n->stage_fd >= 0 || n->dirty ||
	    n->base_fd >= 0 || n->kind != FS_FILE)
		return 0;
	return fs_node_path(fs, n, bucket, key) == 0 &&
	       store_journal_holds(fs->st, bucket, key);
}

static int content_known(struct fs *fs, struct fs_node *n, int refresh)
{
	char bucket[64], key[KEYBUF];
	struct store_obj obj;
	int ret;

	if (n->stage_fd >= 0 || n->dirty || (n->base_known && !refresh))
		return 0;
	if (node_pending(fs, n))
		return 0;
	ret = fs_node_path(fs, n, bucket, key);
	if (ret == -ENOENT && n->base_known)
		return 0;	/* renamed over or removed: what it held, as a
				 * disk opens an unlinked inode (a reader that
				 * looked the name up just before `mv new f`) */
	if (ret == 0)
		ret = store_lookup(fs->st, bucket, key, &obj);
	if (ret == 0 && obj.kind != STORE_FILE)
		ret = -ENOENT;
	if (ret)
		return ret;
	if (refresh == CK_OPEN && n->base_known && !n->pt_mapped &&
	    strcmp(n->base_sha, obj.sha256) != 0)
		return -ESTALE;
	n->meta = obj.meta;
	n->size = obj.size;
	n->blocks = obj.blocks;
	if (strcmp(n->base_sha, obj.sha256) != 0) {
		memcpy(n->base_sha, obj.sha256, sizeof(n->base_sha));
		if (n->base_fd >= 0) {
			close(n->base_fd);
			n->base_fd = -1;
		}
	}
	n->base_known = 1;
	n->attr_ns = fs_mono_ns();
	return 0;
}

/*
 * The running hash.  A staging file written from its start and in order
 * is hashed as it is written, so that the close that commits it need not
 * read it again: each such write moves hash_goal, the end of the bytes
 * written in order, and hash_follow() hashes the staging file up to it.
 * When FS_SLOW_IO bytes or more wait, the WRITE that finds them calls it
 * after its reply, reading the bytes back from the page cache, and first
 * lets another thread read the next request (fs_loop_detach()), which
 * copies the next WRITE into the staging file on the other CPU meanwhile.  A smaller write at the end of
 * what is hashed is hashed at once from the request.  A write past the
 * end waits for the bytes before it (hash_extend()); a rewrite marks the
 * hash bad, and the commit reads the whole file.
 *
 * Who touches what (the fields are documented in fs_i.h): a thread that
 * hashes sets hash_busy under hash_mu, and then reads the staging file and
 * updates the hash with no lock held; everything else that changes hash,
 * hashed or stage_fd holds n->lock and hash_hold(), which waits for
 * hash_busy to clear.  The hashing thread never takes n->lock, so the
 * wait cannot deadlock.
 */

/* Lock hash_mu once no thread is hashing. */
static void hash_hold(struct fs_node *n)
{
	pthread_mutex_lock(&n->hash_mu);
	while (n->hash_busy)
		pthread_cond_wait(&n->hash_cv, &n->hash_mu);
}

static void hash_unhold(struct fs_node *n)
{
	pthread_mutex_unlock(&n->hash_mu);
}

/* A new hash for an empty staging file.  Caller holds hash_hold(). */
static void hash_reset_held(struct fs_node *n)
{
	if (n->hash)
		store_hash_free(n->hash);
	n->hash = store_hash_new();
	n->hashed = 0;
	n->hash_goal = 0;
	n->hash_npend = 0;
	n->hash_bad = 0;
}

/* No running hash.  Caller holds hash_hold(). */
static void hash_drop_held(struct fs_node *n)
{
	if (n->hash)
		store_hash_free(n->hash);
	n->hash = NULL;
	n->hashed = 0;
	n->hash_goal = 0;
	n->hash_npend = 0;
	n->hash_bad = 0;
}

/*
 * Bytes [@off, @off + @len) of the staging file were written: the
 * in-order prefix [0, hash_goal) grows, taking in the ranges written past
 * it that it now reaches, or the range waits in hash_pend for the bytes
 * before it.  A rewrite of bytes before hash_goal, an overlap, or more
 * waiting ranges than FS_HASH_PEND make the hash bad.  Caller holds
 * hash_mu.
 */
static void hash_extend(struct fs_node *n, uint64_t off, uint64_t len)
{
	int i;

	if (!n->hash || n->hash_bad)
		return;
	for (i = 0; i < n->hash_npend; i++)
		if (off < n->hash_pend[i][0] + n->hash_pend[i][1] &&
		    n->hash_pend[i][0] < off + len)
			goto bad;
	if (off < n->hash_goal)
		goto bad;
	if (off > n->hash_goal) {
		if (n->hash_npend == FS_HASH_PEND)
			goto bad;
		n->hash_pend[n->hash_npend][0] = off;
		n->hash_pend[n->hash_npend][1] = len;
		n->hash_npend++;
		return;
	}
	n->hash_goal += len;
	for (i = 0; i < n->hash_npend; i++) {
		if (n->hash_pend[i][0] != n->hash_goal)
			continue;
		n->hash_goal += n->hash_pend[i][1];
		n->hash_npend--;
		n->hash_pend[i][0] = n->hash_pend[n->hash_npend][0];
		n->hash_pend[i][1] = n->hash_pend[n->hash_npend][1];
		i = -1;		/* another may follow on */
	}
	return;
bad:
	n->hash_bad = 1;
}

/* Hash this much at a time, so that writers wait for at most that. */
#define HASH_STEP (128 * 1024)

/* Hash @len bytes of @fd from @from into @h (holes without reading them,
 * store_hash_range()): 0, or -1 when the file is shorter or unreadable. */
static int hash_part(struct store_hash *h, int fd, uint64_t from,
		     uint64_t len)
{
	uint64_t done;

	return store_hash_range(h, fd, from, len, &done) || done != len ? -1
									 : 0;
}

/* Hash the staging file up to hash_goal, and on to where later writes
 * move it.  The caller set hash_busy (it is this thread's to clear). */
static void hash_follow(struct fs_node *n)
{
	struct store_hash *h;
	uint64_t from;
	size_t len;
	int fd, bad;

	pthread_mutex_lock(&n->hash_mu);
	while (n->hash && !n->hash_bad && n->hashed < n->hash_goal) {
		h = n->hash;
		fd = n->stage_fd;
		from = n->hashed;
		len = n->hash_goal - from < HASH_STEP
			      ? (size_t)(n->hash_goal - from)
			      : HASH_STEP;
		pthread_mutex_unlock(&n->hash_mu);
		bad = hash_part(h, fd, from, len);
		pthread_mutex_lock(&n->hash_mu);
		if (bad)
			n->hash_bad = 1;	/* the commit reads the file */
		else
			n->hashed = from + len;
	}
	n->hash_busy = 0;
	pthread_cond_broadcast(&n->hash_cv);
	pthread_mutex_unlock(&n->hash_mu);
}

/* Finish the running hash into @sha, reading what hash_follow() has not
 * hashed yet: 0, or -1 when there is no good hash of the whole content.
 * Caller holds n->lock and hash_hold(); the hash is gone after. */
static int hash_finish_held(struct fs_node *n, char sha[65])
{
	uint64_t len;

	if (!n->hash || n->hash_bad || n->hash_goal != n->size)
		return -1;
	if (n->hashed < n->hash_goal) {
		len = n->hash_goal - n->hashed;
		if (hash_part(n->hash, n->stage_fd, n->hashed, len))
			return -1;
		n->hashed += len;
	}
	store_hash_final(n->hash, sha);
	n->hash = NULL;
	return 0;
}

/* Forget the check of the blob the staging file was copied from: its
 * content no longer counts.  Caller holds n->lock. */
static void seed_check_drop(struct fs_node *n)
{
	if (n->seed_check) {
		store_check_drop(n->seed_check);
		n->seed_check = NULL;
	}
}

/*
 * Close the staging file, if any and if it is no backing file, or give it
 * back to the store for reuse (store_stage_recycle()), which reuses it
 * once a write lease shows no other file open on it.  Each handle open
 * for writing had a backing file of its own, open for writing, which the
 * kernel closes a moment after the RELEASE, or later if a mapping holds
 * it.  A handle open only for reading had one open only for reading,
 * which a lease sees only on a kernel that counts such opens; elsewhere
 * its mapping could outlive it unseen and show the next file's bytes, so
 * a staging file such a handle had is closed.  Caller holds n->lock.
 */
static void stage_drop(struct fs *fs, struct fs_node *n)
{
	if (n->pt_id || n->pt_mapped)
		return;		/* the last passthrough release, or the
				 * end of the mapping, drops it */
	hash_hold(n);
	seed_check_drop(n);
	if (n->stage_fd >= 0) {
		if (!n->pt_reader)
			store_stage_recycle(fs->st, n->stage_fd);
		else
			store_stage_abort(fs->st, n->stage_fd);
		n->stage_fd = -1;
	}
	n->pt_reader = 0;
	hash_drop_held(n);
	hash_unhold(n);
}

/* Make the content empty, dropping any staging file. Caller holds lock. */
static void content_empty(struct fs *fs, struct fs_node *n)
{
	if (n->pt_mapped && n->stage_fd >= 0 &&
	    ftruncate(n->stage_fd, 0) == 0) {
		/* A mapping still holds it: it stays the content, empty,
		 * as a disk's file cut under a mapping, and nothing of the
		 * blob it was copied from. */
		seed_check_drop(n);
		n->size = 0;
		return;
	}
	stage_drop(fs, n);
	if (n->base_fd >= 0 && strcmp(n->base_sha, EMPTY_SHA) != 0) {
		close(n->base_fd);
		n->base_fd = -1;
	}
	memcpy(n->base_sha, EMPTY_SHA, sizeof(n->base_sha));
	n->base_known = 1;
	n->size = 0;
}

/* Give the node a staging file holding its content (cut to @len bytes
 * when that is shorter).  Caller holds n->lock. */
static int stage_ensure(struct fs *fs, struct fs_node *n, uint64_t len)
{
	uint64_t keep;
	int ret, fd;

	if (n->stage_fd >= 0)
		return 0;
	ret = content_known(fs, n, 0);
	if (ret)
		return ret;
	keep = n->size < len ? n->size : len;
	ret = store_stage_new_fd(fs->st, keep ? n->base_sha : NULL,
				 keep ? n->base_fd : -1, keep, &fd,
				 &n->seed_check);
	if (ret)
		return ret;
	hash_hold(n);
	n->stage_fd = fd;
	n->pt_reader = 0;	/* no handle has had this one */
	n->size = keep;
	if (keep == 0)
		hash_reset_held(n);
	else
		hash_drop_held(n);
	hash_unhold(n);
	return 0;
}

/* The fd that holds the node's content now.  Caller holds n->lock. */
static int content_fd(struct fs *fs, struct fs_node *n, int *fd)
{
	int ret;

	if (n->stage_fd >= 0) {
		*fd = n->stage_fd;
		return 0;
	}
	ret = content_known(fs, n, 0);
	if (ret)
		return ret;
	if (n->base_fd < 0) {
		ret = store_blob_open_sized(fs->st, n->base_sha, n->size,
					    &n->base_fd);
		if (ret)
			return ret;
	}
	*fd = n->base_fd;
	return 0;
}

/* A passthrough commit of this many bytes or more copies the staging file
 * on another thread while this one hashes it. */
#define PT_COPY_SPLIT (8 << 20)
/* ... and one of this many or fewer copies through memory. */
#define PT_COPY_SMALL (256 << 10)

struct pt_copy_job {
	int src;
	int fd;		/* the copy, made by the caller */
	uint64_t len;	/* its length once done */
	int err;

	pthread_mutex_t lock;
	pthread_cond_t cv;
	uint64_t upto;	/* [0, upto) of fd is copied; protected by lock */
	int done;	/* protected by lock */
};

static void pt_copy_progress(void *arg, uint64_t upto)
{
	struct pt_copy_job *j = arg;

	pthread_mutex_lock(&j->lock);
	j->upto = upto;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->lock);
}

static void *pt_copy_main(void *arg)
{
	struct pt_copy_job *j = arg;

	j->err = store_copy_watched(j->src, j->fd, UINT64_MAX, &j->len,
				    pt_copy_progress, j);
	pthread_mutex_lock(&j->lock);
	j->done = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/*
 * Hash the copy of job @j, running, into @sha as it is made, a piece
 * behind the copier: what is hashed is the copy's own bytes, whatever a
 * writer does to the staging file meanwhile (a writable shared mapping
 * moves no time stamp that would show it).  0, or -EIO where the copy is
 * shorter than it said (@sha then is not to be used).
 */
static int pt_hash_copy(struct pt_copy_job *j, char sha[65])
{
	struct store_hash *h = store_hash_new();
	uint64_t hashed = 0, upto, done;
	int finished = 0, err = h ? 0 : -ENOMEM;

	while (!finished) {
		pthread_mutex_lock(&j->lock);
		while (!j->done && j->upto == hashed)
			pthread_cond_wait(&j->cv, &j->lock);
		finished = j->done;
		upto = finished ? j->len : j->upto;
		pthread_mutex_unlock(&j->lock);
		/* After an error it only waits for the copier's end. */
		if (!err && !(finished && j->err) && upto > hashed) {
			err = store_hash_range(h, j->fd, hashed,
					       upto - hashed, &done);
			if (!err && done != upto - hashed)
				err = -EIO;
		}
		hashed = upto;
	}
	if (h && !err && !j->err)
		store_hash_final(h, sha);
	else if (h)
		store_hash_free(h);
	return err;
}

/*
 * pt_copy() of a small file of @len bytes, through memory: one read,
 * hashed there and written to the copy, where copy_file_range() and a
 * second read to hash the copy cost more than the bytes.  The hash is the
 * copy's whatever a writer did meanwhile: both come from the one buffer.
 */
static int pt_copy_small(struct fs *fs, struct fs_node *n, size_t len,
			 int *fd, char sha[65])
{
	char *buf;
	int ret;

	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	if (store_pread_all(n->stage_fd, buf, len, 0)) {
		/* cut meanwhile: copy what is there */
		free(buf);
		return store_stage_copy(fs->st, n->stage_fd, fd);
	}
	ret = store_stage_mem(fs->st, buf, len, fd);
	if (!ret && store_hash_mem(buf, len, sha))
		sha[0] = '\0';	/* store_put() hashes the copy */
	free(buf);
	return ret;
}

/*
 * The copy of a passthrough node's staging file that its commit puts, in
 * *@fd, and in @sha its SHA-256 when it is known ("" when not: store_put()
 * then hashes the copy).  A large file is copied on another thread while
 * this one hashes the copy, a piece behind (pt_hash_copy()).  It hashed
 * the staging file instead, trusting the hash when the file's times and
 * size had not moved: a writer through a shared mapping moves none, and
 * half the versions of a 16 MiB file so written were named by a hash of
 * other bytes.  Caller holds n->lock.
 */
static int pt_copy(struct fs *fs, struct fs_node *n, int *fd, char sha[65])
{
	struct pt_copy_job j = { .src = n->stage_fd, .fd = -1,
				 .lock = PTHREAD_MUTEX_INITIALIZER,
				 .cv = PTHREAD_COND_INITIALIZER };
	struct stat before;
	pthread_t t;
	int ret;

	sha[0] = '\0';
	if (fstat(n->stage_fd, &before) < 0)
		return -errno;
	if (before.st_size <= PT_COPY_SMALL)
		return pt_copy_small(fs, n, (size_t)before.st_size, fd, sha);
	if (before.st_size < PT_COPY_SPLIT)
		return store_stage_copy(fs->st, n->stage_fd, fd);
	ret = store_stage_new(fs->st, NULL, 0, &j.fd);
	if (ret)
		return ret;
	if (pthread_create(&t, NULL, pt_copy_main, &j) != 0) {
		store_stage_abort(fs->st, j.fd);
		return store_stage_copy(fs->st, n->stage_fd, fd);
	}
	if (pt_hash_copy(&j, sha))
		sha[0] = '\0';	/* store_put() hashes the copy */
	pthread_join(t, NULL);
	pthread_mutex_destroy(&j.lock);
	pthread_cond_destroy(&j.cv);
	if (j.err) {
		log_err("store: copy content: %s", strerror(-j.err));
		store_stage_abort(fs->st, j.fd);
		sha[0] = '\0';
		return j.err;
	}
	*fd = j.fd;
	return 0;
}

/*
 * Whether the commit of @n can go to the store's close journal
 * (store_journal_put()): the first version of a small file written in
 * passthrough mode, with nothing to keep beside its bytes.  Then its
 * content is read into *@buf (*@len bytes; the caller frees it) and
 * hashed into @sha, from the one read, whatever a writer does meanwhile.
 * Caller holds n->lock.
 */
static int journal_read(struct fs *fs, struct fs_node *n, int durable,
			char **buf, size_t *len, char sha[65])
{
	struct store_hash *h;
	struct stat sb;

	*buf = NULL;
	if (durable || !n->pt_id || n->pt_mapped || n->acl || n->npxa ||
	    n->mknod_vid[0] || n->stage_fd < 0 || !node_pending(fs, n) ||
	    fstat(n->stage_fd, &sb) || sb.st_size > JOURNAL_MAX_CONTENT ||
	    !store_room_plenty(fs->st))
		return 0;
	*len = (size_t)sb.st_size;
	*buf = malloc(*len ? *len : 1);
	h = store_hash_new();
	if (!*buf || !h || store_pread_all(n->stage_fd, *buf, *len, 0)) {
		/* cut meanwhile, say: the usual way copies what is there */
		if (h)
			store_hash_free(h);
		free(*buf);
		*buf = NULL;
		return 0;
	}
	store_hash_update(h, *buf, *len);
	store_hash_final(h, sha);
	return 1;
}

/*
 * Commit the node's content as a new version of its key.  Caller holds
 * n->lock.  On failure the uncommitted data is gone (as an S3 PUT that
 * failed) and the error goes to the close that asked for it.
 */
static int commit(struct fs *fs, struct fs_node *n, int durable)
{
	char bucket[64], key[KEYBUF], sha[65], vid[STORE_VID_MAX + 1];
	struct store_put put;
	struct store_xattr acl, *xs = NULL;
	struct store_obj cur, obj;
	int ret, pending, unlinked, have_sha = 0, fd = -1, keep = -1;
	int recreated;
	uint64_t seq = 0;
	size_t nxs = 0, jlen = 0;
	char *jbuf = NULL;

	if (n->commit_err) {
		/* What was written before the failure is gone: what came
		 * after is no whole file to keep. */
		ret = n->commit_err;
		goto fail;
	}
	if (n->seed_check) {
		/* The blob the content was copied from, hashed meanwhile
		 * (stage_ensure()): a damaged one makes no version. */
		if (store_check_busy(n->seed_check))
			fs_loop_detach();
		ret = store_check_wait(n->seed_check);
		n->seed_check = NULL;
		if (ret)
			goto fail;
	}
	if (n->pt_id || n->pt_mapped) {
		/* The kernel may still write the staging file: put a copy.
		 * A write during the copy shows as a change at the next
		 * pt_sync() (or mapped.c's next look). */
		pt_sync(fs, n);
		if (journal_read(fs, n, durable, &jbuf, &jlen, sha))
			ret = 0;
		else
			ret = pt_copy(fs, n, &fd, sha);
		if (ret)
			goto fail;
		have_sha = sha[0] != '\0';
	}
	hash_hold(n);
	if (!jbuf && fd < 0 && n->stage_fd >= 0 &&
	    hash_finish_held(n, sha) == 0)
		have_sha = 1;
	hash_drop_held(n);
	hash_unhold(n);
	if (fd < 0 && n->stage_fd >= 0 && !have_sha) {
		ret = store_hash_fd(n->stage_fd, sha);
		if (ret)
			goto fail;
		have_sha = 1;
	}

	if (n->acl || n->npxa) {	/* only a pending node has them */
		xs = calloc(n->npxa + 1, sizeof(*xs));
		if (!xs) {
			if (fd >= 0)
				store_stage_abort(fs->st, fd);
			free(jbuf);
			ret = -ENOMEM;
			goto fail;
		}
	}
	pthread_rwlock_rdlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->lock);
	pending = n->pending;
	unlinked = n->unlinked;
	ret = unlinked ? 0 : fs_node_path_locked(n, bucket, key);
	pthread_mutex_unlock(&fs->lock);
	if (unlinked || ret) {
		pthread_rwlock_unlock(&fs->ns_lock);
		free(xs);
		free(jbuf);
		if (fd >= 0)
			store_stage_abort(fs->st, fd);
		if (ret)
			goto fail;
		/* Removed while open: no version keeps it.  What was
		 * written stays the content for the handles still open on
		 * it and for an open that looked the name up before the
		 * removal, as a disk's unlinked inode keeps it (dropped,
		 * the node had the old version's size over no content:
		 * EIO, or NULs, for a reader that opened it next). */
		if (n->stage_fd >= 0)
			n->orphan = 1;
		n->dirty = 0;
		n->wrote = 0;
		n->killpriv = 0;
		return 0;
	}

	memset(&put, 0, sizeof(put));
	put.kind = STORE_FILE;
	put.meta = n->meta;
	/* A key the node's name lost behind it (rm-version -r, another
	 * mount): this commit makes it again, and the kernel may hold the
	 * name as missing. */
	recreated = !pending && store_lookup(fs->st, bucket, key, &cur) != 0;
	if (!recreated && !pending && cur.kind == STORE_FILE) {
		put.meta.mode = cur.meta.mode;
		put.meta.uid = cur.meta.uid;
		put.meta.gid = cur.meta.gid;
	}
	put.meta.mode = S_IFREG | (put.meta.mode & 07777);
	put.meta.mode &= ~n->killpriv;
	/* The time of the last change, as the kernel was shown it: a
	 * commit's own time made ctime move at the close, and tar, which
	 * compares it before and after reading, said "file changed as we
	 * read it" of a file just truncated. */
	if (!put.meta.ctime_ns)
		put.meta.ctime_ns = now_ns();
	put.fd = fd >= 0 ? fd : n->stage_fd;
	put.sha256 = have_sha ? sha : NULL;
	put.mtime_set = 1;	/* the last write's, or a utimens's: 0 too */
	put.durable = durable;
	put.keep_xattrs = 1;
	if (n->mknod_vid[0] && fs_mono_ns() - n->mknod_ns < FS_MKNOD_FILL_NS)
		put.replaces = n->mknod_vid;
	put.named_ns = pending ? n->created_ns : 0;
	if (pending && fs_ino_kept(n->st_ino))
		put.ino = n->st_ino;
	if (pending && (n->acl || n->npxa)) {
		/* Its first version takes what was set meanwhile: the ACL
		 * from its folder, and the xattrs (pxa_set()). */
		if (n->npxa)
			memcpy(xs, n->pxa, n->npxa * sizeof(*xs));
		nxs = n->npxa;
		if (n->acl) {
			xs[nxs].name = FS_ACL_ACCESS;
			xs[nxs].value = n->acl;
			xs[nxs++].size = n->acl_len;
		}
		put.xattrs = xs;
		put.nxattrs = nxs;
	} else if (!pending && !n->caps_kept) {
		/* New content drops a file capability, as a write does on a
		 * disk (the kernel leaves it to us: loop.c, INIT); not one
		 * set after the last write (tar sets it before the close). */
		acl.name = XA_CAPS;
		acl.value = NULL;
		acl.size = 0;
		put.xattrs = &acl;
		put.nxattrs = 1;
	}
	/* A writer still open goes on from what this commit keeps: the
	 * staging file, now the blob, stays open as its base, so that a
	 * write after an rm-version of it still has it (nopassthrough: the
	 * first write after this copies the base). */
	if (!jbuf && fd < 0 && n->stage_fd >= 0 && n->nwriters > 0)
		keep = fcntl(n->stage_fd, F_DUPFD_CLOEXEC, 0);
	if (!jbuf && fd < 0) {
		hash_hold(n);
		n->stage_fd = -1;	/* store_put consumes it */
		hash_unhold(n);
	}
	if (jbuf) {
		/* The staging file stays the kernel's backing file. */
		ret = -EAGAIN;
		if (pending)
			ret = store_journal_put(fs->st, bucket, key, &put,
						jbuf, jlen, sha, &obj);
		if (ret == -EAGAIN) {
			ret = store_stage_mem(fs->st, jbuf, jlen, &put.fd);
			if (ret == 0)
				ret = store_put(fs->st, bucket, key, &put,
						vid, &obj);
		}
		free(jbuf);
	} else {
		ret = store_put(fs->st, bucket, key, &put, vid, &obj);
	}
	free(xs);
	/* The node stops being pending before a rename or an unlink can
	 * look at it (they take ns_lock for writing): one that saw it still
	 * pending would move only its name and leave this version behind at
	 * the old key (git's index.lock, renamed right after its release). */
	if (ret == 0 && pending) {
		pthread_mutex_lock(&fs->lock);
		if (n->pending) {
			n->pending = 0;
			fs->npending--;
		}
		pthread_mutex_unlock(&fs->lock);
	}
	if (ret == 0 && recreated) {
		pthread_mutex_lock(&fs->lock);
		if (n->parent && n->name) {
			dir_miss_forget(n->parent, n->name);
			seq = fs_notify_queue(fs, n->parent->ino, n->name, 1);
		}
		pthread_mutex_unlock(&fs->lock);
	}
	pthread_rwlock_unlock(&fs->ns_lock);
	/* Told before the close returns, as a stat right after it looks
	 * (at most FS_NOTIFY_WAIT_MS: notify.c). */
	fs_notify_wait(fs, seq);
	if (ret) {
		if (keep >= 0)
			close(keep);
		log_warn("commit of %s/%s failed: %s", bucket, key,
			 strerror(-ret));
		goto fail_consumed;
	}
	n->mknod_vid[0] = '\0';
	if (obj.queued)
		repl_engine_kick(fs->repl);	/* deliver it now */
	if (pending) {
		free(n->acl);	/* the version has them now */
		n->acl = NULL;
		fs_pxa_clear(n);
	}
	n->dirty = 0;
	n->wrote = 0;
	n->killpriv = 0;
	n->caps_kept = 0;
	n->meta = obj.meta;
	n->size = obj.size;
	n->blocks = obj.blocks;
	if (n->base_fd >= 0) {
		close(n->base_fd);
		n->base_fd = -1;
	}
	n->base_fd = keep;	/* -1, or the content just kept */
	memcpy(n->base_sha, obj.sha256, sizeof(n->base_sha));
	/* What the kernel wrote in passthrough mode is not in the page
	 * cache of the mount's inode: the next open there drops it. */
	if (n->pt_id)
		n->cached_sha[0] = '\0';
	else
		memcpy(n->cached_sha, obj.sha256, sizeof(n->cached_sha));
	n->base_known = 1;
	n->attr_ns = fs_mono_ns();
	return 0;

fail:
	/* Which file, beside the store's own line on what failed (a copy
	 * of the content on a full disk names no key). */
	if (ret != n->commit_err && fs_node_path(fs, n, bucket, key) == 0)
		log_warn("commit of %s/%s failed: %s", bucket, key,
			 strerror(-ret));
	stage_drop(fs, n);
fail_consumed:
	if (n->nwriters)	/* else no close will come to say it */
		n->commit_err = ret;
	if (node_pending(fs, n))
		n->size = 0;	/* nothing of it is kept */
	n->dirty = 0;
	n->wrote = 0;
	n->killpriv = 0;
	n->base_known = 0;
	n->attr_ns = 0;
	n->cached_sha[0] = '\0';
	/* The kernel counted the failed writes in its size. */
	fuse_lowlevel_notify_inval_inode(fs->se, n->ino, -1, 0);
	return ret;
}

/*
 * After the commit of a file that never had a version failed (a full
 * disk): nothing of it was kept, as of an S3 PUT that failed, so its name
 * goes too.  Left, it showed the size and mtime of what failed (with the
 * writeback cache, its pages as well) until a remount, and `rsync -a`
 * took it for a finished copy and skipped it.  Under the writeback cache,
 * which keeps its own size, mtime and pages of a file and never takes the
 * daemon's, a file that had a version loses its node too: the next lookup
 * of the name makes a new inode, of the version kept.  A handle still
 * open on the node gets ENOENT.  Call without locks: the kernel takes the
 * directory's lock to drop the entry, and a LOOKUP under that lock may be
 * waiting for n->lock (and the notification goes from a thread of its
 * own: notify.c).
 */
static void drop_failed(struct fs *fs, struct fs_node *n)
{
	char name[NAME_MAX + 1];
	fuse_ino_t parent = 0;

	pthread_mutex_lock(&n->lock);
	pthread_rwlock_wrlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->lock);
	if ((n->pending || fs->wbcache) && !n->dirty && n->parent &&
	    n->name && strlen(n->name) <= NAME_MAX) {
		parent = n->parent->ino;
		memcpy(name, n->name, strlen(n->name) + 1);
		fs_node_detach_locked(fs, n);
	}
	pthread_mutex_unlock(&fs->lock);
	pthread_rwlock_unlock(&fs->ns_lock);
	pthread_mutex_unlock(&n->lock);
	if (parent)
		fs_notify_entry(fs, parent, name);
}

/* ---- Open files ------------------------------------------------------ */

static void node_open_count(struct fs *fs, struct fs_node *n, int delta)
{
	pthread_mutex_lock(&fs->lock);
	n->nopen += delta;
	pthread_mutex_unlock(&fs->lock);
}

/*
 * Open a handle of @n in passthrough mode (see pt_sync()): on the backing
 * file its open handles share, or on its staging file, made if need be,
 * registered as the backing file.  Caller holds n->lock.
 */
static int pt_attach(struct fs *fs, struct fs_node *n)
{
	int ret, id;

	if (n->pt_id) {
		n->pt_open++;
		return 0;
	}
	ret = stage_ensure(fs, n, UINT64_MAX);
	if (ret)
		return ret;
	/* Its writes will not pass by op_write(): no running hash. */
	hash_hold(n);
	hash_drop_held(n);
	hash_unhold(n);
	id = fs_loop_backing_open(fs->se, n->stage_fd);
	if (id < 0) {
		log_warn("inode %lu: cannot register a backing file: %s; "
			 "opened without passthrough",
			 (unsigned long)n->ino, strerror(-id));
		return id;
	}
	n->pt_id = id;
	n->pt_open = 1;
	pt_stamp(n);
	return 0;
}

/*
 * Whether the staging file of @n holds other content than its last
 * commit although pt_sync() saw no change: a write through a shared
 * mapping to a page that was already dirty and writable takes no fault,
 * so it moves no timestamp.  (A program that mmaps, writes, closes the
 * descriptor, writes the same page again and munmaps lost its last
 * write.)  Only a handle open O_RDWR can map a file for writing, so only
 * then is the content hashed, at the last release.  Caller holds n->lock.
 */
static int pt_mapped_change(struct fs_node *n)
{
	char sha[65];
	struct stat st;

	if (!n->pt_rdwr || n->dirty || n->stage_fd < 0 || !n->base_known ||
	    fstat(n->stage_fd, &st) < 0)
		return 0;
	if (st.st_size > (off_t)FS_MAX_READ)
		fs_loop_detach();	/* hashing: let others be served */
	return store_hash_fd(n->stage_fd, sha) == 0 &&
	       strcmp(sha, n->base_sha) != 0;
}

/* Take in a change pt_mapped_change() found.  Caller holds n->lock. */
static void mapped_dirty(struct fs_node *n)
{
	n->dirty = 1;
	n->wrote = 1;
	n->caps_kept = 0;
	n->meta.mtime_ns = n->meta.ctime_ns = now_ns();
}

/* A passthrough handle of @n is gone.  Caller holds n->lock. */
static void pt_detach(struct fs *fs, struct fs_node *n)
{
	pt_sync(fs, n);
	if (--n->pt_open)
		return;
	fs_loop_backing_close(fs->se, n->pt_id);
	n->pt_id = 0;
	n->pt_killbits = 0;
	n->pt_nonroot = 0;
	if (n->pt_rdwr && !n->pt_mapped && n->stage_fd >= 0 &&
	    store_stage_held(n->stage_fd) > 0) {
		/* Still held after the last passthrough release: by a
		 * shared mapping, which the kernel made on the backing file
		 * itself and which outlives the handle (mmap, close, write
		 * on, munmap).  Kept, and looked at again (mapped.c);
		 * pt_rdwr stays, for a passthrough open meanwhile.  Where
		 * leases cannot tell (-1), it cannot be waited for. */
		n->pt_mapped = 1;
		node_open_count(fs, n, 1);
		if (fs_mapped_watch(fs, n) == 0)
			return;
		n->pt_mapped = 0;
		node_open_count(fs, n, -1);
	}
	if (n->pt_mapped)
		return;		/* watched already */
	if (pt_mapped_change(n))
		mapped_dirty(n);
	n->pt_rdwr = 0;
}

int fs_mapped_poll(struct fs *fs, struct fs_node *n, int final)
{
	char bucket[64], key[KEYBUF];
	int ret = 0, held;

	pthread_mutex_lock(&n->lock);
	if (n->pt_id && !final) {
		/* Open in passthrough mode again: its last release looks
		 * again, as pt_rdwr is still set. */
		n->pt_mapped = 0;
		goto done;
	}
	held = n->stage_fd >= 0 ? store_stage_held(n->stage_fd) : 0;
	if (held > 0 && !final) {
		pthread_mutex_unlock(&n->lock);
		return 1;
	}
	if (held > 0 && fs_node_path(fs, n, bucket, key) == 0)
		log_warn("%s/%s: unmounted while mapped: what the mapping "
			 "writes from now on is not kept", bucket, key);
	n->pt_mapped = 0;
	if (!n->pt_id) {
		if (pt_mapped_change(n))
			mapped_dirty(n);
		n->pt_rdwr = 0;
	}
	if (n->dirty && n->nwriters == 0 && !n->pt_id) {
		ret = commit(fs, n, 0);
		if (ret)
			log_warn("inode %lu: commit after its mapping: %s",
				 (unsigned long)n->ino, strerror(-ret));
	}
	if (n->nwriters == 0 && n->stage_fd >= 0 && !n->dirty && !n->orphan)
		stage_drop(fs, n);
done:
	pthread_mutex_unlock(&n->lock);
	if (ret)
		drop_failed(fs, n);
	node_open_count(fs, n, -1);
	fs_node_forget(fs, n, 0);	/* frees it if nothing holds it */
	return 0;
}

/*
 * Count a new handle of @n, open for writing when @writable, in the mode
 * pt_sync() explains: passthrough where the mount has it and either a
 * passthrough handle is open or a writer finds no handle in the page
 * cache's mode; @flags are the open's (O_RDWR: see pt_mapped_change()).
 * Its fi->fh flags, and the backing id when passthrough.  Caller holds
 * n->lock.
 */
static uint64_t handle_open(fuse_req_t req, struct fs_node *n, int writable,
			    int flags, int lazy, int *backing_id)
{
	struct fs *fs = FS(req);
	uint64_t fh = writable ? FH_WRITE : 0;
	/* Writes that must be durable when they return (O_SYNC, O_DSYNC)
	 * go through the page cache: the kernel then sends an FSYNC after
	 * each, which commits it.  In passthrough mode it syncs only the
	 * staging file, which is no version: a crash before the close lost
	 * them.  (A node already open in passthrough mode stays so: the
	 * kernel keeps one mode per inode.) */
	int sync_writes = writable && (flags & O_DSYNC);

	*backing_id = 0;
	if (fs->passthrough &&
	    (n->pt_open || (writable && !sync_writes && !n->cached_open)) &&
	    pt_attach(fs, n) == 0) {
		fh |= FH_PT;
		*backing_id = n->pt_id;
		if ((flags & O_ACCMODE) == O_RDWR)
			n->pt_rdwr = 1;	/* it may be mapped for writing */
		if ((flags & O_ACCMODE) == O_RDONLY)
			n->pt_reader = 1;	/* see stage_drop() */
		/* The kernel drops the inode's page cache at such an open,
		 * and its I/O bypasses it. */
		n->cached_sha[0] = '\0';
		/* Which bits this writer's writes drop, should the mode
		 * have them then: a chmod 4755 after the open counts. */
		if (writable && fs->killpriv && fuse_req_ctx(req)->uid) {
			n->pt_killbits |= S_ISUID;
			if (!in_group(req, n->meta.gid))
				n->pt_killbits |= S_ISGID;
			n->pt_nonroot = 1;
		}
	} else {
		n->cached_open++;
		/* The blob is read, or copied at the first write, maybe long
		 * after the open: the page cache may answer the first reads,
		 * and the writeback cache holds writes until the close.
		 * Held open from now, it serves them even if rm-version
		 * removed it meanwhile, as a disk's unlinked inode does. */
		if (n->stage_fd < 0 && n->size > 0 && !(flags & O_TRUNC) &&
		    !lazy) {
			int fd;

			(void)content_fd(fs, n, &fd);
		}
	}
	if (writable)
		n->nwriters++;
	return fh;
}

/* Uncount a handle that handle_open() counted.  Caller holds n->lock. */
static void handle_close(struct fs *fs, struct fs_node *n, uint64_t fh)
{
	if (fh & FH_PT)
		pt_detach(fs, n);
	else
		n->cached_open--;
	if (fh & FH_WRITE)
		n->nwriters--;
}

/* Empty the content of @n for an open with O_TRUNC.  Caller holds lock. */
static void open_trunc(fuse_req_t req, struct fs *fs, struct fs_node *n)
{
	if (n->pt_id) {
		/* The backing file stays: empty it (a failure leaves the
		 * content, which the next look at it keeps). */
		pt_sync(fs, n);
		if (ftruncate(n->stage_fd, 0) == 0)
			n->size = 0;
		pt_stamp(n);
	} else {
		content_empty(fs, n);
	}
	n->dirty = 1;
	n->caps_kept = 0;
	n->meta.mtime_ns = n->meta.ctime_ns = now_ns();
	kill_priv(req, n);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	int writable, ret, keep, lazy, id = 0;

	if (!n)
		return;
	if (n->kind != FS_FILE) {
		fuse_reply_err(req, n->kind == FS_SYMLINK ? ELOOP : EISDIR);
		return;
	}
	/* O_RDONLY | O_TRUNC empties the file too, as Linux does on a disk
	 * for a caller who may write it (the kernel checked): the handle
	 * then counts as a writer, so that its close keeps the empty file
	 * as a version.  Before, the mount showed it empty and kept the
	 * old content. */
	writable = (fi->flags & O_ACCMODE) != O_RDONLY ||
		   (fi->flags & O_TRUNC);
	pthread_mutex_lock(&n->lock);
	lazy = !writable && n->nwriters == 0 && node_journaled(fs, n);
	ret = content_known(fs, n, n->nwriters == 0 && !lazy ? CK_OPEN : 0);
	if (ret == -ESTALE) {
		/*
		 * A restore, an rm-version or another mount changed the
		 * content behind this node.  The kernel keeps its size of
		 * the inode it has, so taken in here the new content read
		 * cut at the old size, or padded with NULs, and an append
		 * (O_APPEND writes at the kernel's size) kept NULs in a
		 * version; a reader that had it open (tail -f) was enough.
		 * The node leaves the tree, as in stale_drop(), and ESTALE
		 * has the kernel look the name up again: a new inode, of
		 * the right size, which it then opens.  Handles open on the
		 * old node read what it held.
		 */
		pthread_rwlock_wrlock(&fs->ns_lock);
		pthread_mutex_lock(&fs->lock);
		if (n->parent)
			fs_node_detach_locked(fs, n);
		pthread_mutex_unlock(&fs->lock);
		pthread_rwlock_unlock(&fs->ns_lock);
		goto out;
	}
	if (ret)
		goto out;
	keep = n->stage_fd >= 0 || n->dirty ||
	       strcmp(n->cached_sha, n->base_sha) == 0;
	if (fi->flags & O_TRUNC)
		open_trunc(req, fs, n);
	fi->fh = handle_open(req, n, writable, fi->flags, lazy, &id);
	/* A handle that cannot write has nothing for its close to commit
	 * (op_flush()): the kernel then sends no FLUSH, a round trip less
	 * for each file a tool reads or opens only to fchmod.  (With the
	 * writeback cache it sends one anyway.) */
	fi->noflush = !(fi->fh & FH_WRITE);
	if (keep) {
		fi->keep_cache = 1;
	} else if (!(fi->fh & FH_PT)) {	/* it drops the page cache */
		memcpy(n->cached_sha, n->base_sha, sizeof(n->cached_sha));
		fi->keep_cache = 0;
	}
out:
	pthread_mutex_unlock(&n->lock);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	node_open_count(fs, n, 1);
	if ((id ? fs_loop_reply_open_backing(req, fi, id)
		: fuse_reply_open(req, fi)) == -ENOENT) {
		/* interrupted: the kernel will send no release */
		pthread_mutex_lock(&n->lock);
		handle_close(fs, n, fi->fh);
		pthread_mutex_unlock(&n->lock);
		node_open_count(fs, n, -1);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int fd, ret;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	ret = content_fd(fs, n, &fd);
	if (ret) {
		pthread_mutex_unlock(&n->lock);
		fuse_reply_err(req, -ret);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].pos = off;
	if (size < FS_SLOW_IO) {
		/* Short: the lock keeps a commit from closing the fd. */
		buf.buf[0].fd = fd;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		pthread_mutex_unlock(&n->lock);
		return;
	}
	/* The kernel's readahead sends several large READs at once, which
	 * the loop hands to different threads: splice from a duplicate, so
	 * that they do not queue on the node's lock while each waits for
	 * the disk.  A commit may close the original. */
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&n->lock);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf.buf[0].fd = fd;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	close(fd);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	size_t done = 0;
	ssize_t w;
	int ret, follow = 0;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	ret = stage_ensure(fs, n, UINT64_MAX);
	while (ret == 0 && done < size) {
		w = pwrite(n->stage_fd, data + done, size - done,
			   off + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			ret = w < 0 ? -errno : -EIO;
		else
			done += (size_t)w;
	}
	if (done) {
		pthread_mutex_lock(&n->hash_mu);
		if (n->hash && !n->hash_bad && !n->hash_busy &&
		    n->hash_npend == 0 && (uint64_t)off == n->hashed &&
		    n->hashed == n->hash_goal && done < FS_SLOW_IO) {
			store_hash_update(n->hash, data, done);
			n->hashed += done;
			n->hash_goal += done;
		} else {
			hash_extend(n, (uint64_t)off, done);
			/* This thread hashes, unless one already does and
			 * will go on to the new goal. */
			follow = n->hash && !n->hash_bad && !n->hash_busy &&
				 n->hashed < n->hash_goal;
			if (follow)
				n->hash_busy = 1;
			if (follow && n->hash_goal - n->hashed >= FS_SLOW_IO)
				follow = 2;	/* long: after the reply */
		}
		pthread_mutex_unlock(&n->hash_mu);
		if ((uint64_t)off + done > n->size)
			n->size = (uint64_t)off + done;
		n->dirty = 1;
		n->wrote = 1;
		n->caps_kept = 0;
		/* What the writeback cache writes back (writepage) keeps the
		 * kernel's times, which it sends in a SETATTR when they
		 * changed (at its clock's tick: two writes in one tick change
		 * nothing); set here, a writeback's later time became the
		 * version's, and the mtime stat had shown moved after a cache
		 * drop or a remount (git's index took such files as changed).
		 * Nor does it need kill_priv(): the kernel writes set-ID
		 * files through. */
		if (!fi->writepage) {
			n->meta.mtime_ns = n->meta.ctime_ns = now_ns();
			kill_priv(req, n);
		}
	}
	pthread_mutex_unlock(&n->lock);
	if (follow == 1)
		hash_follow(n);
	if (done)
		fuse_reply_write(req, done);
	else
		fuse_reply_err(req, -ret);
	if (follow == 2) {
		/* The next WRITE is read, and copied in, meanwhile.  The
		 * node lives on: node_free() waits for hash_busy to clear
		 * (inode.c). */
		fs_loop_detach();
		hash_follow(n);
	}
}

/*
 * lseek(2)'s SEEK_DATA and SEEK_HOLE (the kernel does the others): asked
 * of the content's file, staging file or blob, where holes stay holes (see
 * store_copy()), so that cp, tar and the like keep a sparse file sparse.
 * Under the writeback cache a writer's latest writes may still be in the
 * kernel, unseen here, and a hole said to be where they are would lose
 * them in a copy: while the file is open for writing the answer is
 * EINVAL, which tools take as "no hole information" and copy all.
 */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	off_t res = -1;
	int fd, ret;

	if (!n)
		return;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pthread_mutex_lock(&n->lock);
	pt_sync(fs, n);
	ret = fs->wbcache && n->nwriters ? -EINVAL : content_fd(fs, n, &fd);
	if (ret == 0) {
		res = lseek(fd, off, whence);
		ret = res < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&n->lock);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_lseek(req, res);
}

/*
 * fallocate(2), on the staging file; the kernel sends it in passthrough
 * mode too, and passes on only KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE.
 * What makes the next close commit is a change of content or size: space
 * kept with KEEP_SIZE is not content, nor is allocating a range inside
 * the file, whose holes read as zeros before and after.
 */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
			  FALLOC_FL_ZERO_RANGE;
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	int ret, zeros = 0, grows = 0;
	uint64_t end;

	if (!n)
		return;
	if (!(fi->fh & FH_WRITE) || n->kind != FS_FILE) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if ((mode & ~known) || off < 0 || len <= 0) {
		fuse_reply_err(req, mode & ~known ? EOPNOTSUPP : EINVAL);
		return;
	}
	end = (uint64_t)off + (uint64_t)len;
	pthread_mutex_lock(&n->lock);
	pt_sync(fs, n);
	ret = stage_ensure(fs, n, UINT64_MAX);
	if (ret == 0) {
		hash_hold(n);
		if (fallocate(n->stage_fd, mode, off, len) < 0) {
			ret = -errno;
		} else {
			zeros = (mode & (FALLOC_FL_PUNCH_HOLE |
					 FALLOC_FL_ZERO_RANGE)) &&
				(uint64_t)off < n->size;
			grows = !(mode & FALLOC_FL_KEEP_SIZE) && end > n->size;
			if (zeros)
				n->hash_bad = 1;	/* hashed again at commit */
			else if (grows && n->size >= n->hashed &&
				 n->hash_npend == 0)
				n->hash_goal = end;	/* zeros, in order */
			else if (grows)
				n->hash_bad = 1;
		}
		if (n->pt_id)
			pt_stamp(n);	/* our change, not a write */
		hash_unhold(n);
	}
	if (zeros || grows) {
		if (grows)
			n->size = end;
		n->dirty = 1;
		n->wrote = 1;
		n->caps_kept = 0;
		n->meta.mtime_ns = n->meta.ctime_ns = now_ns();
		kill_priv(req, n);
	}
	pthread_mutex_unlock(&n->lock);
	fuse_reply_err(req, -ret);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	int ret = 0;

	if (!n)
		return;
	if (fi->fh & FH_WRITE) {
		pthread_mutex_lock(&n->lock);
		pt_sync(fs, n);
		/* A close that only made or truncated the file commits
		 * nothing: the shell's `>` closes a dup before it writes,
		 * and a commit here made an empty version before each
		 * file's.  The release commits it, after the close
		 * returned, so on a full disk the close commits it, to
		 * report a failure. */
		if (n->dirty && (n->wrote || store_room_low(fs->st)))
			ret = commit(fs, n, 0);
		else
			ret = n->commit_err;	/* an fsync's, say: the close
						 * says it again */
		pthread_mutex_unlock(&n->lock);
		if (ret)
			drop_failed(fs, n);
	}
	fuse_reply_err(req, -ret);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = fs_node_get(fs, ino);
	char bucket[64], key[KEYBUF];
	int ret = 0;

	if (!n) {
		fuse_reply_err(req, 0);
		return;
	}
	pthread_mutex_lock(&n->lock);
	handle_close(fs, n, fi->fh);
	if (fi->fh & FH_WRITE) {
		if (n->nwriters == 0 && n->dirty) {
			ret = commit(fs, n, 0);
			if (ret && fs_node_path(fs, n, bucket, key) == 0)
				log_warn("commit of %s/%s at its release "
					 "failed: %s", bucket, key,
					 strerror(-ret));
			else if (ret)	/* its name went meanwhile */
				log_warn("commit of inode %lu at its release "
					 "failed: %s", (unsigned long)ino,
					 strerror(-ret));
		}
	}
	if (n->nwriters == 0 && n->stage_fd >= 0 && !n->dirty && !n->orphan)
		stage_drop(fs, n);
	if (n->nwriters == 0)
		n->commit_err = 0;	/* the next open starts afresh */
	if (n->pt_open == 0 && n->cached_open == 0 && n->base_fd >= 0) {
		/* No handle reads it any more.  Kept, a tree read once held
		 * a descriptor per file for as long as the kernel kept the
		 * inodes, and reading more files than RLIMIT_NOFILE failed
		 * with EMFILE. */
		close(n->base_fd);
		n->base_fd = -1;
	}
	pthread_mutex_unlock(&n->lock);
	if (ret)
		drop_failed(fs, n);
	pthread_mutex_lock(&fs->lock);
	n->nopen--;
	pthread_mutex_unlock(&fs->lock);
	fs_node_forget(fs, n, 0);	/* frees it if nothing holds it */
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	int ret = 0, fd;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	pt_sync(fs, n);
	if (n->dirty) {
		ret = commit(fs, n, 1);
	} else if (n->commit_err) {
		/* Another handle's close committed what this one wrote, and
		 * failed (a full disk): none of it is kept.  As the close
		 * says it again, so does the fsync; before, it returned 0
		 * for writes that no version held. */
		ret = n->commit_err;
	} else {
		/* Committed without fsync: make that version durable. */
		ret = content_fd(fs, n, &fd);
		if (ret == 0 && fsync(fd) < 0)
			ret = -errno;
		if (ret == 0)
			ret = store_sync(fs->st);
	}
	pthread_mutex_unlock(&n->lock);
	fuse_reply_err(req, -ret);
}

/* ---- POSIX ACLs (acl.c) ------------------------------------------------ */

static int xattr_key(struct fs *fs, struct fs_node *n, char *bucket,
		     char *key);
static int xattr_prepare(struct fs *fs, struct fs_node *n);

/* An ACL's xattr value, at most what the kernel passes. */
#define ACL_BUF (4 + 8 * FS_ACL_MAX)

/*
 * ACL @name of @key, read into @buf (ACL_BUF bytes, *@len of them) and
 * parsed into *@out (malloc()ed): 1; 0 when there is none, or it cannot
 * be parsed (logged: it is then taken as none); or a negative errno.
 */
static int acl_load(struct fs *fs, const char *bucket, const char *key,
		    const char *name, unsigned char *buf, size_t *len,
		    struct fs_acl **out)
{
	ssize_t got = store_xattr_get(fs->st, bucket, key, name, buf,
				      ACL_BUF);
	int ret;

	*out = NULL;
	if (got == -ENODATA || got == -ENOENT)
		return 0;
	if (got < 0)
		return (int)got;
	*out = malloc(sizeof(**out));
	if (!*out)
		return -ENOMEM;
	ret = fs_acl_parse(buf, (size_t)got, *out);
	if (ret) {
		log_warn("%s/%s: %s not readable (%s): taken as none", bucket,
			 key, name, strerror(-ret));
		free(*out);
		*out = NULL;
		return 0;
	}
	*len = (size_t)got;
	return 1;
}

/* What a node made in a folder takes from it: xattrs for its first
 * version (an access ACL, and a folder's default ACL). */
struct inherit {
	struct store_xattr x[2];
	size_t n;
	unsigned char dflt[ACL_BUF];
	unsigned char access[ACL_BUF];
};

/*
 * The mode and ACLs of a node made in @dir with *@mode (the permission
 * bits the creator asked for, before its umask), as posix_acl_create()
 * makes them on a disk; with ACLs on, the kernel leaves both the umask
 * and the folder's default ACL to us.  Without a default ACL, the umask
 * narrows the mode.  With one, the umask is not used: the default ACL,
 * narrowed by the mode, becomes the node's access ACL (kept only if it
 * says more than the mode), and a folder also takes the default ACL
 * itself.  Buckets keep no ACLs.
 */
static int acl_inherit(fuse_req_t req, struct fs *fs, struct fs_node *dir,
		       int is_dir, uint32_t *mode, struct inherit *in)
{
	char bucket[64], key[KEYBUF];
	struct fs_acl *acl = NULL;
	size_t len = 0;
	int ret = 0;

	in->n = 0;
	if (!fs->acl)
		return 0;	/* the kernel applied the umask */
	if (is_dir_node(dir)) {
		uint64_t gen;
		int none;

		pthread_mutex_lock(&dir->lock);
		none = cache_fresh(fs, dir->nodacl_ns);
		gen = dir->dacl_gen;
		pthread_mutex_unlock(&dir->lock);
		ret = none ? 0 : xattr_key(fs, dir, bucket, key);
		if (ret == 0 && !none)
			ret = acl_load(fs, bucket, key, FS_ACL_DEFAULT,
				       in->dflt, &len, &acl);
		else if (ret == -ENOENT)
			ret = 0;
		if (ret == 0 && !none) {
			/* none: a `cp -r` makes many files in a folder */
			pthread_mutex_lock(&dir->lock);
			if (dir->dacl_gen == gen)
				dir->nodacl_ns = fs_mono_ns();
			pthread_mutex_unlock(&dir->lock);
		}
	}
	if (ret <= 0) {
		if (ret == 0)
			*mode &= ~(uint32_t)fuse_req_ctx(req)->umask;
		return ret;
	}
	if (is_dir)
		in->x[in->n++] = (struct store_xattr){ FS_ACL_DEFAULT,
						       in->dflt, len };
	if (fs_acl_create_masq(acl, mode)) {
		fs_acl_write(acl, in->access);
		in->x[in->n++] = (struct store_xattr){
			FS_ACL_ACCESS, in->access, fs_acl_size(acl) };
	}
	free(acl);
	return 0;
}

/*
 * A folder with set-group-ID gives what is made in it its group, and a
 * folder made in it the bit too, as on a disk (inode_init_owner()), so
 * that a shared folder stays its group's.  The kernel has already taken
 * the bit off a new file whose creator is not of that group.
 */
static void setgid_inherit(struct fs *fs, struct fs_node *dir, int is_dir,
			   uint32_t *mode, uint32_t *gid)
{
	struct stat st;

	if (dir->kind == FS_ROOT || node_stat(fs, dir, &st) ||
	    !(st.st_mode & S_ISGID))
		return;
	*gid = st.st_gid;
	if (is_dir)
		*mode |= S_ISGID;
}

/* After chmod to @mode, the access ACL of @key as chmod leaves it, into
 * @x (value in @buf, ACL_BUF bytes): 1 if the key has one, 0 if not, or
 * a negative errno.  The kernel holds the inode's lock across chmod and
 * setfacl, so the ACL read here is not changed before it is written. */
static int acl_chmod(struct fs *fs, const char *bucket, const char *key,
		     uint32_t mode, struct store_xattr *x, unsigned char *buf)
{
	struct fs_acl *acl;
	size_t len;
	int ret;

	if (!fs->acl)
		return 0;
	ret = acl_load(fs, bucket, key, FS_ACL_ACCESS, buf, &len, &acl);
	if (ret <= 0)
		return ret;
	fs_acl_chmod(acl, mode);
	fs_acl_write(acl, buf);
	x->name = FS_ACL_ACCESS;
	x->value = buf;
	x->size = fs_acl_size(acl);
	free(acl);
	return 1;
}

/* store_set_meta(), and with a chmod, the access ACL as chmod leaves it,
 * in the same transaction: 0, 1 when the change went in the close journal
 * (the store has it once that is applied), or a negative errno. */
static int set_meta(struct fs *fs, const char *bucket, const char *key,
		    const struct store_meta *m, unsigned mask)
{
	unsigned char buf[ACL_BUF];
	struct store_xattr x[2];
	size_t nx = 0;
	int ret = 0;

	if (mask & STORE_SET_MODE)
		ret = acl_chmod(fs, bucket, key, m->mode, &x[0], buf);
	if (ret < 0)
		return ret;
	nx = ret ? 1 : 0;
	if (mask & (STORE_SET_UID | STORE_SET_GID)) {
		/* chown drops a file capability, as on a disk */
		x[nx].name = XA_CAPS;
		x[nx].value = NULL;
		x[nx].size = 0;
		nx++;
	}
	/* A change that writes no xattr value (no ACL to follow a chmod)
	 * goes in the close journal, after the versions there (rsync's
	 * utimes and chmod of each file it wrote, and of each folder); the
	 * journal takes a chown, and the capability removal in @x, only for
	 * a key that can have no xattrs (store_journal_meta()). */
	if (key[0] && !ret &&
	    store_journal_meta(fs->st, bucket, key, m, mask) == 0)
		return 1;
	return store_set_meta_xattr(fs->st, bucket, key, m, mask, x, nx);
}

/* chmod of a pending file: its ACL, not yet in the store, follows.
 * Caller holds n->lock. */
static void pending_acl_chmod(struct fs_node *n, uint32_t mode)
{
	struct fs_acl *acl;

	if (!n->acl)
		return;
	acl = malloc(sizeof(*acl));
	if (acl && fs_acl_parse(n->acl, n->acl_len, acl) == 0) {
		fs_acl_chmod(acl, mode);
		fs_acl_write(acl, n->acl);	/* the same size */
	}
	free(acl);
}

/* Whether the caller of @req may keep a set-group-ID bit of a file of
 * group @gid: root, or a member of the group. */
static int in_group(fuse_req_t req, uint32_t gid)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	gid_t groups[64];
	int n, i;

	if (c->uid == 0 || c->gid == gid)
		return 1;
	n = fuse_req_getgroups(req, 64, groups);
	for (i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

/* The mode an access ACL set by @req gives a node of mode @mode and group
 * @gid: the ACL's permission bits, and no set-group-ID when the caller is
 * not of the group, as set_posix_acl() makes it.  *@keep: whether the
 * ACL says more than the mode, and so is kept. */
static uint32_t acl_mode(fuse_req_t req, const struct fs_acl *acl,
			 uint32_t mode, uint32_t gid, int *keep)
{
	*keep = fs_acl_equiv_mode(acl, &mode);
	if ((mode & S_ISGID) && !in_group(req, gid))
		mode &= ~(uint32_t)S_ISGID;
	return mode;
}

/*
 * An access ACL set on a file that has no version yet (`cp -a` sets one
 * on the file it is writing, before its close) is kept in its node with
 * the mode it gives, for the first version, as an inherited one is: no
 * version is made before the close.  0 when done so, 1 when the file
 * has a version (the caller stores the ACL), or a negative errno.
 */
static int acl_set_pending(fuse_req_t req, struct fs *fs, struct fs_node *n,
			   struct fs_acl *acl, const char *value, size_t size)
{
	uint32_t mode;
	void *copy = NULL;
	int keep, pending;

	pthread_mutex_lock(&n->lock);
	pthread_mutex_lock(&fs->lock);
	pending = n->pending && !n->unlinked;
	pthread_mutex_unlock(&fs->lock);
	if (!pending) {
		pthread_mutex_unlock(&n->lock);
		return 1;
	}
	mode = acl_mode(req, acl, n->meta.mode, n->meta.gid, &keep);
	if (keep) {
		copy = malloc(size);
		if (!copy) {
			pthread_mutex_unlock(&n->lock);
			return -ENOMEM;
		}
		memcpy(copy, value, size);
	}
	n->meta.mode = mode;
	n->meta.ctime_ns = now_ns();
	free(n->acl);
	n->acl = copy;
	n->acl_len = copy ? size : 0;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

/*
 * setxattr of an ACL, which the kernel hands over once it has checked
 * that the caller owns the node (or is root) and that a default ACL goes
 * on a folder.  A default ACL is kept as it is.  An access ACL sets the
 * mode's permission bits, in the same transaction, and is kept only if it
 * says more than they do (`setfacl -b` sends one that does not); like
 * the kernel's set_posix_acl(), it drops set-group-ID when the caller is
 * not of the file's group.
 */
static int acl_set(fuse_req_t req, struct fs *fs, struct fs_node *n,
		   const char *name, const char *value, size_t size)
{
	char bucket[64], key[KEYBUF];
	struct store_xattr x;
	struct store_meta m;
	struct store_put put;
	struct fs_acl *acl;
	struct stat st;
	uint32_t mode;
	int ret, keep = 1;

	if (!fs->acl || (n->kind != FS_FILE && !is_dir_node(n)))
		return -EOPNOTSUPP;
	if (strcmp(name, FS_ACL_DEFAULT) == 0 && !is_dir_node(n))
		return -EACCES;
	acl = malloc(sizeof(*acl));
	if (!acl)
		return -ENOMEM;
	ret = fs_acl_parse(value, size, acl);
	if (ret == 0 && n->kind == FS_FILE) {
		ret = acl_set_pending(req, fs, n, acl, value, size);
		if (ret == 0) {
			free(acl);	/* kept with the pending file */
			return 0;
		}
		if (ret == 1)
			ret = 0;
	}
	if (ret == 0)
		ret = xattr_prepare(fs, n);
	if (ret == 0)
		ret = xattr_key(fs, n, bucket, key);
	if (ret == 0)
		ret = node_stat(fs, n, &st);
	if (ret) {
		free(acl);
		return ret;
	}
	mode = st.st_mode;
	if (strcmp(name, FS_ACL_ACCESS) == 0)
		mode = acl_mode(req, acl, mode, st.st_gid, &keep);
	free(acl);
	memset(&m, 0, sizeof(m));
	m.mode = mode & 07777;
	x.name = name;
	x.value = keep ? value : NULL;
	x.size = size;
	ret = store_set_meta_xattr(fs->st, bucket, key, &m, STORE_SET_MODE,
				   &x, 1);
	if (ret == -ENOENT && n->kind == FS_DIR) {
		/* A folder that so far existed only as a prefix keeps its
		 * ACL on a marker made now, as a chmod makes one. */
		memset(&put, 0, sizeof(put));
		put.kind = STORE_DIR;
		put.fd = -1;
		put.meta.mode = S_IFDIR | m.mode;
		put.meta.uid = st.st_uid;
		put.meta.gid = st.st_gid;
		put.meta.mtime_ns = ts_ns(st.st_mtim);
		put.meta.ctime_ns = now_ns();
		put.xattrs = &x;
		put.nxattrs = keep;
		if (fs_ino_kept(n->st_ino))
			put.ino = n->st_ino;
		ret = store_put(fs->st, bucket, key, &put, NULL, NULL);
	}
	if (ret == 0 && n->kind == FS_FILE) {
		pthread_mutex_lock(&n->lock);
		n->meta.mode = (n->meta.mode & S_IFMT) | m.mode;
		n->attr_ns = 0;
		pthread_mutex_unlock(&n->lock);
	}
	dir_changed(n);
	return ret;
}

static int check_parent(struct fs_node *dir)
{
	if (dir->kind == FS_ROOT)
		return -EPERM;	/* only buckets live at the root */
	if (dir->kind != FS_BUCKET && dir->kind != FS_DIR)
		return -ENOTDIR;
	return 0;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs_node *dir = node_or_reply(req, parent), *n, *old;
	char bucket[64], key[KEYBUF];
	struct fuse_entry_param e;
	struct store_obj obj;
	struct inherit in;
	struct stat st;
	int ret, id;

	if (!dir)
		return;
	ret = check_parent(dir);
	if (ret == -EPERM)
		log_warn("create %s: only buckets (directories) can be made "
			 "at the root of a mount", name);
	if (ret == 0)
		ret = child_path(fs, dir, name, bucket, key);
	if (ret == 0)
		ret = store_key_check(key);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = dir_miss_take(fs, dir, name) ? -ENOENT
					   : store_lookup(fs->st, bucket, key, &obj);
	if (ret == 0) {
		/* The kernel's view was stale: the file is there. */
		if (obj.kind != STORE_FILE || (fi->flags & O_EXCL)) {
			fuse_reply_err(req, obj.kind == STORE_DIR ? EISDIR
								  : EEXIST);
			return;
		}
		n = fs_node_child(fs, dir, name, FS_FILE, 1, obj.ino);
		if (!n) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		node_learn(n, &obj);
	} else if (ret != -ENOENT) {
		fuse_reply_err(req, -ret);
		return;
	} else {
		uint32_t m = mode, gid = ctx->gid;
		void *acl = NULL;

		/* Its commit comes at the release, after the close returned
		 * (op_flush()): on a full disk, say so now. */
		if (store_room_low(fs->st)) {
			fuse_reply_err(req, ENOSPC);
			return;
		}
		ret = acl_inherit(req, fs, dir, 0, &m, &in);
		setgid_inherit(fs, dir, 0, &m, &gid);
		if (ret == 0 && in.n) {
			acl = malloc(in.x[0].size);
			if (acl)
				memcpy(acl, in.x[0].value, in.x[0].size);
			else
				ret = -ENOMEM;
		}
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		pthread_mutex_lock(&fs->lock);
		old = fs_node_find_locked(fs, dir, name);
		if (old && old->pending && (fi->flags & O_EXCL)) {
			pthread_mutex_unlock(&fs->lock);
			free(acl);
			fuse_reply_err(req, EEXIST);
			return;
		}
		if (old) {
			old->unlinked = 1;
			old->nlookup++;
			fs_node_detach_locked(fs, old);
			old->nlookup--;
		}
		pthread_mutex_unlock(&fs->lock);
		if (old)
			fs_node_forget(fs, old, 0);
		n = fs_node_child(fs, dir, name, FS_FILE, 1, fs_ino_new(fs));
		if (!n) {
			free(acl);
			fuse_reply_err(req, ENOMEM);
			return;
		}
		pthread_mutex_lock(&n->lock);
		content_empty(fs, n);
		n->meta.mode = S_IFREG | (m & 07777);
		free(n->acl);
		fs_pxa_clear(n);
		n->acl = acl;
		n->acl_len = acl ? in.x[0].size : 0;
		n->meta.uid = ctx->uid;
		n->meta.gid = gid;
		n->meta.mtime_ns = n->meta.ctime_ns = now_ns();
		n->meta.atime_ns = n->meta.mtime_ns;
		n->created_ns = n->meta.ctime_ns;
		n->dirty = 1;
		memcpy(n->cached_sha, EMPTY_SHA, sizeof(n->cached_sha));
		pthread_mutex_unlock(&n->lock);
		dir_touched(dir, n->created_ns);
		pthread_mutex_lock(&fs->lock);
		if (!n->pending) {
			n->pending = 1;
			fs->npending++;
		}
		pthread_mutex_unlock(&fs->lock);
	}

	pthread_mutex_lock(&n->lock);
	if ((fi->flags & O_TRUNC) && !n->dirty)
		open_trunc(req, fs, n);
	fi->fh = handle_open(req, n, 1, fi->flags, 0, &id);
	if (!open_state_stat(fs, n, 1, &st))
		memset(&st, 0, sizeof(st));
	fi->keep_cache = 1;
	pthread_mutex_unlock(&n->lock);
	node_open_count(fs, n, 1);

	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.attr = st;
	e.attr.st_ino = n->st_ino;
	e.attr_timeout = fs->opts.timeout;
	e.entry_timeout = fs->opts.timeout;
	if ((id ? fs_loop_reply_create_backing(req, &e, fi, id)
		: fuse_reply_create(req, &e, fi)) == -ENOENT) {
		pthread_mutex_lock(&n->lock);
		handle_close(fs, n, fi->fh);
		pthread_mutex_unlock(&n->lock);
		node_open_count(fs, n, -1);
		fs_node_forget(fs, n, 1);
	}
}

/* ---- Directories and names ------------------------------------------- */

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fs *fs = FS(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs_node *dir = node_or_reply(req, parent), *n;
	char bucket[64], key[KEYBUF];
	struct store_obj obj;
	struct store_put put;
	struct store_meta m;
	struct inherit in;
	const char *why = NULL;
	struct stat st;
	size_t len;
	int ret;

	if (!dir)
		return;
	memset(&m, 0, sizeof(m));
	m.mode = S_IFDIR | (mode & 07777);
	m.uid = ctx->uid;
	m.gid = ctx->gid;
	m.mtime_ns = m.ctime_ns = m.atime_ns = now_ns();
	ret = acl_inherit(req, fs, dir, 1, &m.mode, &in);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	setgid_inherit(fs, dir, 1, &m.mode, &m.gid);
	if (dir->kind == FS_ROOT) {
		if (store_bucket_name_check(name, &why)) {
			log_warn("mkdir %s: not a valid bucket name: %s", name,
				 why ? why : "see S3's bucket naming rules");
			fuse_reply_err(req, EINVAL);
			return;
		}
		ret = store_bucket_create(fs->st, name, STORE_ENABLED, &m);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		dir_touched(dir, m.ctime_ns);
		n = fs_node_child(fs, dir, name, FS_BUCKET, 1,
				  store_name_ino(name, "", 0));
		goto reply;
	}
	ret = check_parent(dir);
	if (ret == 0)
		ret = child_path(fs, dir, name, bucket, key);
	len = strlen(key);
	if (ret == 0 && len + 1 > STORE_KEY_MAX)
		ret = -ENAMETOOLONG;
	if (ret == 0 && !dir_miss_take(fs, dir, name) &&
	    store_lookup(fs->st, bucket, key, &obj) == 0)
		ret = -EEXIST;
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	key[len] = '/';
	key[len + 1] = '\0';
	memset(&put, 0, sizeof(put));
	put.kind = STORE_DIR;
	put.fd = -1;
	put.meta = m;
	put.xattrs = in.x;
	put.nxattrs = in.n;
	put.ino = fs_ino_new(fs);
	ret = store_put(fs->st, bucket, key, &put, NULL, &obj);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	dir_touched(dir, obj.created_ns);
	n = fs_node_child(fs, dir, name, FS_DIR, 1, obj.ino);
reply:
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memset(&st, 0, sizeof(st));
	fs_meta_stat(&m, 4096, -1, &st);
	dir_attr_set(n, &st);
	reply_entry(req, n, &st);
}

/* A new key under @parent: an empty file (@link NULL, @mode its
 * permission bits) or a symbolic link to @link.  EEXIST if the name is
 * taken; else committed, and answered with its entry. */
static void make_leaf(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, const char *link)
{
	struct fs *fs = FS(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs_node *dir = node_or_reply(req, parent), *n;
	char bucket[64], key[KEYBUF];
	struct store_obj obj;
	struct store_put put;
	struct inherit in;
	struct stat st;
	int ret;

	if (!dir)
		return;
	ret = check_parent(dir);
	if (ret == 0)
		ret = child_path(fs, dir, name, bucket, key);
	if (ret == 0 && !dir_miss_take(fs, dir, name) &&
	    store_lookup(fs->st, bucket, key, &obj) == 0)
		ret = -EEXIST;
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	memset(&put, 0, sizeof(put));
	put.kind = link ? STORE_SYMLINK : STORE_FILE;
	put.fd = -1;
	put.link_target = link;
	put.meta.mode = link ? S_IFLNK | 0777 : S_IFREG | (mode & 07777);
	if (!link) {
		ret = acl_inherit(req, fs, dir, 0, &put.meta.mode, &in);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		put.xattrs = in.x;
		put.nxattrs = in.n;
	}
	put.meta.uid = ctx->uid;
	put.meta.gid = ctx->gid;
	setgid_inherit(fs, dir, 0, &put.meta.mode, &put.meta.gid);
	put.meta.mtime_ns = put.meta.ctime_ns = now_ns();
	put.meta.atime_ns = put.meta.mtime_ns;
	put.ino = fs_ino_new(fs);
	ret = store_put(fs->st, bucket, key, &put, NULL, &obj);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	dir_touched(dir, obj.created_ns);
	n = fs_node_child(fs, dir, name, link ? FS_SYMLINK : FS_FILE, 1,
			  obj.ino);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	node_learn(n, &obj);	/* files only */
	if (!link) {
		/* What is written to it at once replaces this empty
		 * version (tar --xattrs makes a file so, to set its xattrs
		 * before it writes the content): one version, as a file
		 * that open(O_CREAT) made has.  Written later, it keeps
		 * both, as any file does. */
		pthread_mutex_lock(&n->lock);
		snprintf(n->mknod_vid, sizeof(n->mknod_vid), "%s",
			 obj.version_id);
		n->mknod_ns = fs_mono_ns();
		pthread_mutex_unlock(&n->lock);
	}
	memset(&st, 0, sizeof(st));
	fs_meta_stat(&obj.meta, link ? strlen(link) : 0, -1, &st);
	reply_entry(req, n, &st);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	make_leaf(req, parent, name, 0, link);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	if (!S_ISREG(mode))
		fuse_reply_err(req, EPERM);	/* S3 has no special files */
	else
		make_leaf(req, parent, name, mode, NULL);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fuse_reply_err(req, EPERM);	/* an object has one key */
}

/* Find @name in @dir and hold a reference to it (NULL if unknown). */
static struct fs_node *find_ref(struct fs *fs, struct fs_node *dir,
				const char *name, int *pending)
{
	struct fs_node *n;

	pthread_mutex_lock(&fs->lock);
	n = fs_node_find_locked(fs, dir, name);
	if (n)
		n->nlookup++;
	*pending = n ? n->pending : 0;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

/* Take @n out of the tree: what is open on it is no longer at its key. */
static void detach(struct fs *fs, struct fs_node *n)
{
	pthread_mutex_lock(&fs->lock);
	n->unlinked = 1;
	fs_node_detach_locked(fs, n);
	pthread_mutex_unlock(&fs->lock);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	struct fs_node *dir = node_or_reply(req, parent), *n;
	char bucket[64], key[KEYBUF];
	int ret, pending;

	if (!dir)
		return;
	ret = check_parent(dir);
	if (ret == 0)
		ret = child_path(fs, dir, name, bucket, key);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	pthread_rwlock_wrlock(&fs->ns_lock);
	n = find_ref(fs, dir, name, &pending);
	if (n && n->kind == FS_DIR)
		ret = -EISDIR;
	else if (!pending)
		ret = store_delete_by(fs->st, bucket, key,
				      fuse_req_ctx(req)->uid,
				      fuse_req_ctx(req)->gid, NULL);
	if (ret == 0 && n)
		detach(fs, n);
	pthread_rwlock_unlock(&fs->ns_lock);
	dir_changed(dir);
	if (n)
		fs_node_forget(fs, n, 1);
	fuse_reply_err(req, -ret);
}

struct pending_probe {
	int found;
};

static void pending_found(void *arg, struct fs_node *n)
{
	((struct pending_probe *)arg)->found = 1;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	struct fs_node *dir = node_or_reply(req, parent), *n;
	char bucket[64], key[KEYBUF];
	struct pending_probe probe = { 0 };
	struct store_obj obj;
	int ret, pending;
	size_t len;

	if (!dir)
		return;
	pthread_rwlock_wrlock(&fs->ns_lock);
	n = find_ref(fs, dir, name, &pending);
	if (n) {
		pthread_mutex_lock(&fs->lock);
		fs_node_each_pending_locked(fs, n, pending_found, &probe);
		pthread_mutex_unlock(&fs->lock);
	}
	if (probe.found) {
		ret = -ENOTEMPTY;
	} else if (dir->kind == FS_ROOT) {
		ret = store_bucket_delete(fs->st, name);
		if (ret == 0)
			dir_touched(dir, now_ns());
		if (ret == -ENOTEMPTY)
			log_info("rmdir %s: the bucket still holds versions "
				 "(older versions and delete markers, which "
				 "ls does not show: see .versions/%s); as in "
				 "S3, only an empty bucket can be removed",
				 name, name);
	} else {
		ret = check_parent(dir);
		if (ret == 0)
			ret = child_path(fs, dir, name, bucket, key);
		if (ret == 0)
			ret = store_lookup(fs->st, bucket, key, &obj);
		if (ret == 0 && obj.kind != STORE_DIR)
			ret = -ENOTDIR;
		if (ret == 0) {
			ret = store_dir_has_children(fs->st, bucket, key);
			if (ret > 0)
				ret = -ENOTEMPTY;
		}
		if (ret == 0) {
			len = strlen(key);
			key[len] = '/';
			key[len + 1] = '\0';
			ret = store_delete_by(fs->st, bucket, key,
					      fuse_req_ctx(req)->uid,
					      fuse_req_ctx(req)->gid, NULL);
		}
	}
	if (ret == 0 && n)
		detach(fs, n);
	pthread_rwlock_unlock(&fs->ns_lock);
	dir_changed(dir);
	if (n)
		fs_node_forget(fs, n, 1);
	fuse_reply_err(req, -ret);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct fs *fs = FS(req);
	struct fs_node *dir = node_or_reply(req, parent), *ndir, *src, *dst;
	char b1[64], k1[KEYBUF], b2[64], k2[KEYBUF];
	struct store_obj obj;
	int ret, spend, dpend, journaled = 0;
	int64_t now = now_ns();

	if (!dir)
		return;
	ndir = node_or_reply(req, newparent);
	if (!ndir)
		return;
	if (flags & ~RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL);	/* RENAME_EXCHANGE, WHITEOUT */
		return;
	}
	if (dir->kind == FS_ROOT || ndir->kind == FS_ROOT) {
		log_warn("rename %s: buckets cannot be renamed, and only "
			 "buckets live at the root", name);
		fuse_reply_err(req, EPERM);
		return;
	}
	ret = child_path(fs, dir, name, b1, k1);
	if (ret == 0)
		ret = child_path(fs, ndir, newname, b2, k2);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}

	pthread_rwlock_wrlock(&fs->ns_lock);
	src = find_ref(fs, dir, name, &spend);
	dst = find_ref(fs, ndir, newname, &dpend);
	if (src == dst && src) {
		ret = 0;	/* same file: nothing to do */
		goto out;
	}
	if (spend) {
		/* Not in the store yet: only its name moves, over whatever
		 * stands at the target. */
		ret = 0;
		if (dpend && (flags & RENAME_NOREPLACE))
			ret = -EEXIST;
		if (ret == 0 && store_lookup(fs->st, b2, k2, &obj) == 0) {
			if (flags & RENAME_NOREPLACE)
				ret = -EEXIST;
			else if (obj.kind == STORE_DIR)
				ret = -EISDIR;
			else
				ret = store_delete_by(fs->st, b2, k2,
						      fuse_req_ctx(req)->uid,
						      fuse_req_ctx(req)->gid,
						      NULL);
		}
	} else if (dpend && (flags & RENAME_NOREPLACE)) {
		ret = -EEXIST;
	} else if (!flags && src && src->kind == FS_FILE && !strcmp(b1, b2) &&
		   (!dst || dst->kind == FS_FILE || dst->kind == FS_SYMLINK) &&
		   store_journal_rename(fs->st, b1, k1, k2,
					fuse_req_ctx(req)->uid,
					fuse_req_ctx(req)->gid, now) == 0) {
		/* A file whose version is still in the close journal (rsync's
		 * temporary file): the rename follows it there.  The kernel
		 * looked the target up, and found no folder. */
		ret = 0;
		journaled = 1;
	} else {
		ret = store_rename_by(fs->st, b1, k1, b2, k2,
				      (flags & RENAME_NOREPLACE)
					      ? STORE_RENAME_NOREPLACE
					      : 0,
				      fuse_req_ctx(req)->uid,
				      fuse_req_ctx(req)->gid);
	}
	if (ret == 0) {
		if (dst)
			detach(fs, dst);
		if (src) {
			pthread_mutex_lock(&fs->lock);
			ret = fs_node_move_locked(fs, src, ndir, newname);
			pthread_mutex_unlock(&fs->lock);
			pthread_mutex_lock(&src->lock);
			if (journaled && src->base_known) {
				src->meta.ctime_ns = now;	/* as applied */
			} else {
				/* a new version, a new ctime */
				src->attr_ns = 0;
			}
			pthread_mutex_unlock(&src->lock);
		}
	}
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	if (journaled) {
		/* The store moves the folders' times when it applies it. */
		dir_touched(dir, now);
		dir_touched(ndir, now);
	}
	if (journaled && dir == ndir) {
		/* A name left the folder and one came: it is there still,
		 * its times moved above; only the new name, if it was the
		 * last one not found, is there now (rsync renames each file
		 * it wrote, and looks at the folder after each). */
		dir_miss_forget(dir, newname);
	} else {
		dir_changed(dir);
		dir_changed(ndir);
	}
	if (src)
		fs_node_forget(fs, src, 1);
	if (dst)
		fs_node_forget(fs, dst, 1);
	fuse_reply_err(req, -ret);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	char bucket[64], key[KEYBUF], target[PATH_MAX + 1];
	int ret;

	if (!n)
		return;
	ret = fs_node_path(fs, n, bucket, key);
	if (ret == 0)
		ret = store_readlink(fs->st, bucket, key, target,
				     sizeof(target));
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_readlink(req, target);
}

/* ---- Attributes -------------------------------------------------------- */

static int truncate_node(struct fs *fs, struct fs_node *n, uint64_t size)
{
	int ret = 0;

	pthread_mutex_lock(&n->lock);
	pt_sync(fs, n);
	if (size == 0 && n->stage_fd < 0) {
		content_empty(fs, n);
	} else {
		ret = stage_ensure(fs, n, size);
		if (ret == 0) {
			hash_hold(n);
			if (ftruncate(n->stage_fd, (off_t)size) < 0)
				ret = -errno;
			else if (size >= n->hashed && n->hash_npend == 0)
				n->hash_goal = size;	/* zeros, in order */
			else
				n->hash_bad = 1;
			hash_unhold(n);
			if (n->pt_id)
				pt_stamp(n);	/* our change, not a write */
		}
		if (ret == 0)
			n->size = size;
	}
	if (ret == 0) {
		n->dirty = 1;
		n->wrote = 1;
		n->caps_kept = 0;
		n->meta.mtime_ns = n->meta.ctime_ns = now_ns();
		if (n->nwriters == 0)	/* truncate(2): no close will come */
			ret = commit(fs, n, 0);
	}
	pthread_mutex_unlock(&n->lock);
	return ret;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	char bucket[64], key[KEYBUF];
	struct store_meta m;
	struct store_put put;
	struct stat st;
	unsigned mask = 0;
	size_t len;
	int ret = 0, detached = 0, dir_keep = 0;
	/* One time for all this change sets, as a disk's: `touch` gave an
	 * mtime a microsecond before the ctime. */
	int64_t now = now_ns();

	if (!n)
		return;
	memset(&m, 0, sizeof(m));
	if (to_set & FUSE_SET_ATTR_MODE) {
		mask |= STORE_SET_MODE;
		m.mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		mask |= STORE_SET_UID;
		m.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		mask |= STORE_SET_GID;
		m.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		mask |= STORE_SET_MTIME;
		m.mtime_ns = now;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		mask |= STORE_SET_MTIME;
		m.mtime_ns = ts_ns(attr->st_mtim);
	}
	/* An atime of exactly the epoch is kept as 1 ns after it: 0 stands
	 * for "the mtime" in the store. */
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		mask |= STORE_SET_ATIME;
		m.atime_ns = now;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		mask |= STORE_SET_ATIME;
		m.atime_ns = ts_ns(attr->st_atim);
		if (!m.atime_ns)
			m.atime_ns = 1;
	}

	if (n->kind == FS_ROOT) {
		ret = mask ? -EPERM : 0;
		goto reply;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && n->kind != FS_FILE) {
		ret = -EISDIR;
		goto reply;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (n->kind == FS_FILE) {
			pthread_mutex_lock(&n->lock);
			kill_priv(req, n);
			pthread_mutex_unlock(&n->lock);
		}
		ret = truncate_node(fs, n, (uint64_t)attr->st_size);
		if (ret)
			goto reply;
	}
	if (fs->killpriv && n->kind == FS_FILE &&
	    (mask & (STORE_SET_UID | STORE_SET_GID)) &&
	    !(mask & STORE_SET_MODE)) {
		/* chown: the kernel no longer sends the mode that drops the
		 * set-ID bits (see killpriv_bits()). */
		uint32_t bits;

		ret = node_stat(fs, n, &st);
		if (ret)
			goto reply;
		bits = killpriv_bits(req, st.st_mode, st.st_gid, 1);
		if (bits) {
			mask |= STORE_SET_MODE;
			m.mode = st.st_mode & 07777 & ~bits;
		}
	}
	if (!mask)
		goto reply;
	ret = fs_node_path(fs, n, bucket, key);
	if (ret == -ENOENT && n->kind == FS_FILE)
		detached = 1;	/* removed while open: fchmod() still works */
	else if (ret)
		goto reply;
	ret = 0;
	if (n->kind == FS_BUCKET) {
		/* chmod keeps the mask of its ACL in step, as a folder's */
		ret = set_meta(fs, bucket, "", &m, mask);
		ret = ret > 0 ? 0 : ret;
		goto reply;
	}
	if (n->kind == FS_FILE) {
		int pending = node_pending(fs, n), dirty, same;

		pthread_mutex_lock(&n->lock);
		pt_sync(fs, n);	/* writes before this utimens are older */
		/* The kernel writes back the times of an inode whose ctime it
		 * moved (a rename does): an mtime the version has already
		 * needs no transaction. */
		same = !(mask & ~(STORE_SET_MTIME | STORE_SET_ATIME)) &&
		       n->base_known &&
		       (!(mask & STORE_SET_MTIME) ||
			n->meta.mtime_ns == m.mtime_ns) &&
		       (!(mask & STORE_SET_ATIME) ||
			n->meta.atime_ns == m.atime_ns);
		if (mask & STORE_SET_MODE) {
			n->meta.mode = (n->meta.mode & S_IFMT) | m.mode;
			pending_acl_chmod(n, m.mode);
		}
		if (mask & STORE_SET_UID)
			n->meta.uid = m.uid;
		if (mask & STORE_SET_GID)
			n->meta.gid = m.gid;
		if (mask & STORE_SET_MTIME)
			n->meta.mtime_ns = m.mtime_ns;
		if (mask & STORE_SET_ATIME)
			n->meta.atime_ns = m.atime_ns;
		/* Under the writeback cache the kernel sends the ctime it
		 * shows (it moved it itself, at a write or this change):
		 * kept, so that it does not move at a cache drop (git's
		 * index compares it). */
		n->meta.ctime_ns = (to_set & FUSE_SET_ATTR_CTIME)
					   ? ts_ns(attr->st_ctim)
					   : now;
		m.ctime_ns = n->meta.ctime_ns;	/* the store keeps what
						 * the reply shows */
		dirty = n->dirty;
		pthread_mutex_unlock(&n->lock);
		/* The mtime of data not committed yet (the kernel's, with the
		 * writeback cache) is the next version's, not the current
		 * one's: the commit takes it from n->meta. */
		if (dirty || same)
			mask &= ~(STORE_SET_MTIME | STORE_SET_ATIME);
		if (pending || detached || !mask)
			goto reply;
		ret = set_meta(fs, bucket, key, &m, mask | STORE_SET_CTIME);
		ret = ret > 0 ? 0 : ret;
		if (ret) {
			pthread_mutex_lock(&n->lock);
			n->attr_ns = 0;	/* ask the store again */
			pthread_mutex_unlock(&n->lock);
		}
		goto reply;
	}
	if (n->kind == FS_SYMLINK) {
		ret = store_set_meta(fs->st, bucket, key, &m,
				     mask & ~STORE_SET_MODE);
		goto reply;
	}
	/* A directory keeps its metadata in its marker; make one if the
	 * directory so far existed only as a prefix. */
	len = strlen(key);
	key[len] = '/';
	key[len + 1] = '\0';
	m.ctime_ns = now;
	ret = set_meta(fs, bucket, key, &m, mask | STORE_SET_CTIME);
	if (ret > 0) {
		/* In the journal: the attributes this node has cached, if
		 * any, take the change, as the store will (rsync sets a
		 * folder's times once it wrote the files in it, while
		 * their versions still wait). */
		pthread_mutex_lock(&n->lock);
		/* (An atime the store keeps as "the mtime" follows a new
		 * mtime: then the store says what it is.) */
		if (cache_fresh(fs, n->attr_ns) &&
		    (!(mask & STORE_SET_MTIME) || (mask & STORE_SET_ATIME))) {
			if (mask & STORE_SET_MODE)
				n->attr.st_mode = S_IFDIR | m.mode;
			if (mask & STORE_SET_UID)
				n->attr.st_uid = m.uid;
			if (mask & STORE_SET_GID)
				n->attr.st_gid = m.gid;
			if (mask & STORE_SET_MTIME)
				n->attr.st_mtim = ns_to_ts(m.mtime_ns);
			if (mask & STORE_SET_ATIME)
				n->attr.st_atim = ns_to_ts(m.atime_ns);
			n->attr.st_ctim = ns_to_ts(now);
			if (mask & STORE_SET_MTIME)
				n->touched_ns = 0;
			dir_keep = 1;
		}
		pthread_mutex_unlock(&n->lock);
		ret = 0;
	}
	if (ret == -ENOENT) {
		key[len] = '\0';
		ret = node_stat(fs, n, &st);
		if (ret)
			goto reply;
		key[len] = '/';
		memset(&put, 0, sizeof(put));
		put.kind = STORE_DIR;
		put.fd = -1;
		put.meta.mode = (mask & STORE_SET_MODE) ? (S_IFDIR | m.mode)
							: st.st_mode;
		put.meta.uid = (mask & STORE_SET_UID) ? m.uid : st.st_uid;
		put.meta.gid = (mask & STORE_SET_GID) ? m.gid : st.st_gid;
		put.meta.mtime_ns = (mask & STORE_SET_MTIME) ? m.mtime_ns
							    : now;
		put.mtime_set = 1;
		put.meta.atime_ns = (mask & STORE_SET_ATIME) ? m.atime_ns : 0;
		put.meta.ctime_ns = now;
		ret = store_put(fs->st, bucket, key, &put, NULL, NULL);
	}
reply:
	if (!dir_keep)
		dir_changed(n);
	if (ret == 0 && is_dir_node(n) && (mask & STORE_SET_MTIME)) {
		pthread_mutex_lock(&n->lock);
		n->touched_ns = 0;	/* the mtime given is the answer */
		pthread_mutex_unlock(&n->lock);
	}
	if (ret == 0)
		ret = node_stat(fs, n, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, fs->opts.timeout);
}

/* ---- Listing ----------------------------------------------------------- */

int fs_listing_add(struct fs_listing *l, const char *name,
		   enum fs_kind kind, const struct stat *st)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct fs_dirent *e = realloc(l->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	l->e[l->n].name = strdup(name);
	if (!l->e[l->n].name)
		return -ENOMEM;
	l->e[l->n].kind = kind;
	l->e[l->n].st = *st;
	l->n++;
	return 0;
}

void fs_listing_clear(struct fs_listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->e[i].name);
	l->n = 0;
}

static int snap_bucket(void *arg, const char *name,
		       const struct store_meta *meta,
		       enum store_versioning versioning)
{
	struct stat st;
	struct store_meta m = *meta;

	memset(&st, 0, sizeof(st));
	m.mode = S_IFDIR | (m.mode & 07777);
	fs_meta_stat(&m, 4096, -1, &st);
	st.st_ino = store_name_ino(name, "", 0);
	return fs_listing_add(arg, name, FS_BUCKET, &st);
}

static int snap_obj(void *arg, const char *name, const struct store_obj *obj)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	fs_meta_stat(&obj->meta, obj->kind == STORE_DIR ? 4096 : obj->size,
		     fs_obj_blocks(obj), &st);
	st.st_ino = obj->ino;
	return fs_listing_add(arg, name, kind_of(obj->kind), &st);
}

static int snap_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fs_dirent *)a)->name,
		      ((const struct fs_dirent *)b)->name);
}

struct pending_collect {
	struct fs_listing *d;
	size_t listed;		/* the sorted part from the store */
	int err;
};

static void pending_add(void *arg, struct fs_node *n)
{
	struct pending_collect *pc = arg;
	struct fs_dirent key = { .name = n->name };
	struct stat st;

	if (pc->err || (pc->listed && bsearch(&key, pc->d->e, pc->listed,
					      sizeof(key), snap_cmp)))
		return;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0644;
	st.st_ino = n->st_ino;
	pc->err = fs_listing_add(pc->d, n->name, FS_FILE, &st);
}

static int snap_fill(struct fs *fs, struct fs_node *dir, struct fs_listing *d)
{
	char bucket[64], key[KEYBUF];
	struct pending_collect pc = { .d = d };
	int ret;

	fs_listing_clear(d);
	if (dir->kind == FS_ROOT)
		return store_bucket_list(fs->st, snap_bucket, d);
	ret = fs_node_path(fs, dir, bucket, key);
	if (ret == 0)
		ret = store_list(fs->st, bucket, key, NULL, snap_obj, d);
	if (ret)
		return ret;
	/* S3's order puts "b.txt" before the prefix "b/"; sort by name so
	 * pending files can be merged, and `ls -f` sees name order. */
	if (d->n > 1)
		qsort(d->e, d->n, sizeof(*d->e), snap_cmp);
	pc.listed = d->n;
	pthread_mutex_lock(&fs->lock);
	fs_node_each_pending_locked(fs, dir, pending_add, &pc);
	pthread_mutex_unlock(&fs->lock);
	return pc.err;
}

void fs_opendir(fuse_req_t req, struct fuse_file_info *fi, size_t size)
{
	void *h = calloc(1, size);

	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) == -ENOENT)
		free(h);	/* interrupted: no RELEASEDIR will come */
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs_node *n = node_or_reply(req, ino);

	if (!n)
		return;
	if (n->kind != FS_ROOT && n->kind != FS_BUCKET && n->kind != FS_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fs_opendir(req, fi, sizeof(struct fs_listing));
}

/*
 * Reply to READDIR(PLUS) with ".", ".." and @e[0..@n), from @off on.
 * Where a name has left the folder since the listing was made (@gen, its
 * gone_gen then), READDIRPLUS gives names alone (node ID 0, which the
 * kernel takes as no entry to keep): an entry for a name just removed
 * made a node, and the kernel a dentry, for a name no more there, which
 * stat showed for a second and on which an O_CREAT open failed with
 * ENOENT (2-4% of creates, while `ls -l` ran in the folder).  A removal
 * while the reply is made has it made again, names alone; ns_lock keeps
 * one from coming between the last look and the reply.  It is not held
 * while the entries are made: fix() takes node locks, which a LOOKUP or
 * an OPEN holds while it waits for ns_lock (stale_drop()).
 */
static void reply_dir(fuse_req_t req, struct fs_node *dir, size_t size,
		      off_t off, int plus, const struct fs_dirent *e, size_t n,
		      uint64_t gen,
		      void (*fix)(struct fs *fs, struct fs_node *node,
				  struct stat *st))
{
	struct fs *fs = FS(req);
	struct fuse_entry_param ep;
	struct fs_node *child, **made;
	char *buf, *p;
	size_t rem, len, nmade, k;
	uint64_t dotdot;
	int names_only, gone;
	off_t i;

	buf = malloc(size);
	/* The nodes one reply holds: an entry with its attributes takes
	 * more than 128 bytes.  Sized by the folder's listing, each reply
	 * of a large folder allocated room for all of it. */
	made = plus ? calloc(size / 128 + 1, sizeof(*made)) : NULL;
	if (!buf || (plus && !made)) {
		free(buf);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&fs->lock);
	dotdot = dir->parent ? dir->parent->st_ino : FUSE_ROOT_ID;
	names_only = plus && dir->gone_gen != gen;
	pthread_mutex_unlock(&fs->lock);
again:
	p = buf;
	rem = size;
	nmade = 0;
	for (i = off; i < (off_t)n + 2; i++) {
		const char *name;

		memset(&ep, 0, sizeof(ep));
		child = NULL;
		if (i < 2) {
			name = i == 0 ? "." : "..";
			ep.attr.st_mode = S_IFDIR;
			ep.attr.st_ino = i == 0 ? dir->st_ino : dotdot;
		} else {
			const struct fs_dirent *s = &e[i - 2];

			name = s->name;
			ep.attr = s->st;
			if (plus && !names_only) {
				child = fs_node_child(fs, dir, name, s->kind,
						      1, s->st.st_ino);
				if (!child)
					break;
				ep.ino = child->ino;
				ep.attr.st_ino = child->st_ino;
				ep.attr_timeout = fs->opts.timeout;
				ep.entry_timeout = fs->opts.timeout;
				if (fix)
					fix(fs, child, &ep.attr);
			} else if (!plus) {
				/* FUSE_UNKNOWN_INO */
				ep.attr.st_ino = 0xffffffff;
			}
		}
		if (plus)
			len = fuse_add_direntry_plus(req, p, rem, name, &ep,
						     i + 1);
		else
			len = fuse_add_direntry(req, p, rem, name, &ep.attr,
						i + 1);
		if (len > rem) {
			if (child)
				fs_node_forget(fs, child, 1);
			break;
		}
		if (child)
			made[nmade++] = child;
		p += len;
		rem -= len;
	}
	pthread_rwlock_rdlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->lock);
	gone = nmade && dir->gone_gen != gen;
	pthread_mutex_unlock(&fs->lock);
	if (gone) {
		pthread_rwlock_unlock(&fs->ns_lock);
		for (k = 0; k < nmade; k++)
			fs_node_forget(fs, made[k], 1);
		names_only = 1;
		goto again;
	}
	fuse_reply_buf(req, buf, size - rem);
	pthread_rwlock_unlock(&fs->ns_lock);
	free(made);
	free(buf);
}

/* READDIRPLUS of the live tree: a file open for writing shows its open
 * state, and a directory's attributes are kept for GETATTR. */
static void live_fix(struct fs *fs, struct fs_node *n, struct stat *st)
{
	if (n->kind == FS_FILE) {
		int pend = node_pending(fs, n);

		pthread_mutex_lock(&n->lock);
		open_state_stat(fs, n, pend, st);
		pthread_mutex_unlock(&n->lock);
	}
	dir_attr_set(n, st);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		int plus, struct fs_listing *l,
		int (*fill)(struct fs *fs, struct fs_node *dir,
			    struct fs_listing *l),
		void (*fix)(struct fs *fs, struct fs_node *node,
			    struct stat *st))
{
	struct fs *fs = FS(req);
	struct fs_node *dir = node_or_reply(req, ino);
	int ret;

	if (!dir)
		return;
	if (off == 0 || !l->filled) {
		pthread_mutex_lock(&fs->lock);
		l->gen = dir->gone_gen;
		pthread_mutex_unlock(&fs->lock);
		ret = fill(fs, dir, l);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		l->filled = 1;
	}
	reply_dir(req, dir, size, off, plus, l->e, l->n, l->gen, fix);
}

void fs_releasedir(fuse_req_t req, struct fs_listing *l, void *h)
{
	fs_listing_clear(l);
	free(l->e);
	free(h);
	fuse_reply_err(req, 0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fs_readdir(req, ino, size, off, 0,
		   (struct fs_listing *)(uintptr_t)fi->fh, snap_fill, NULL);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	fs_readdir(req, ino, size, off, 1,
		   (struct fs_listing *)(uintptr_t)fi->fh, snap_fill,
		   live_fix);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs_listing *d = (struct fs_listing *)(uintptr_t)fi->fh;

	fs_releasedir(req, d, d);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (statvfs(store_path(FS(req)->st), &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* ---- Extended attributes ------------------------------------------------ */

int fs_xattr_kept(const char *name)
{
	return strncmp(name, "user.", 5) == 0 ||
	       strncmp(name, XA_TRUSTED, strlen(XA_TRUSTED)) == 0 ||
	       (strncmp(name, XA_SECURITY, strlen(XA_SECURITY)) == 0 &&
		strcmp(name, "security.selinux") != 0);
}

/* The names setxattr keeps, besides POSIX ACLs (acl_set()): user.*, as S3
 * keeps user metadata, and on files and folders trusted.* and security.*
 * (`rsync -aX` and `cp -a` as root copy them; security.capability is what
 * lets ping run unprivileged).  Not security.selinux: a FUSE mount's
 * labels come from the policy, and `ls -l` asks for it on every file
 * until it hears ENOTSUP.  Those of replicafs itself (XA_OWN) are
 * read-only; ENOTSUP, not EPERM, for them too, which `cp -a` and `tar`
 * take as "this file system does not keep that name" and pass over in
 * silence when they copy from one mount to another. */
static int xattr_writable(const struct fs_node *n, const char *name)
{
	if (strncmp(name, "user.", 5) == 0)
		return 0;
	return fs_xattr_kept(name) && (n->kind == FS_FILE ||
					n->kind == FS_DIR || n->kind == FS_BUCKET)
		       ? 0
		       : -ENOTSUP;
}

/* An xattr of @n was set or removed: the store moved its ctime, which the
 * attributes @n caches do not have yet. */
static void xattr_changed(struct fs_node *n)
{
	if (n->kind == FS_FILE) {
		pthread_mutex_lock(&n->lock);
		n->attr_ns = 0;
		n->meta.ctime_ns = now_ns();	/* while it is open and
						 * written, n->meta answers */
		pthread_mutex_unlock(&n->lock);
	}
	dir_changed(n);	/* a folder's; nothing for a file */
}

void fs_xattr_hide_trusted(char *buf, size_t *len)
{
	char *in = buf, *out = buf, *end = buf + *len;
	size_t l;

	for (; in < end; in += l) {
		l = strnlen(in, (size_t)(end - in));
		l += l < (size_t)(end - in);	/* and its NUL */
		if (strncmp(in, XA_TRUSTED, strlen(XA_TRUSTED)) == 0)
			continue;
		memmove(out, in, l);
		out += l;
	}
	*len = (size_t)(out - buf);
}

/* The key whose xattrs stand for node @n: the object's key, a
 * directory's marker, or "" for a bucket's own.  -ENOTSUP for the root. */
static int xattr_key(struct fs *fs, struct fs_node *n, char *bucket,
		     char *key)
{
	size_t len;
	int ret;

	if (n->kind == FS_ROOT)
		return -ENOTSUP;
	ret = fs_node_path(fs, n, bucket, key);
	if (ret)
		return ret;
	if (n->kind == FS_DIR) {
		len = strlen(key);
		key[len] = '/';
		key[len + 1] = '\0';
	}
	return 0;
}

/* A pending file gets a version first, so its xattrs have a home. */
static int xattr_prepare(struct fs *fs, struct fs_node *n)
{
	int ret = 0;

	if (n->kind != FS_FILE || !node_pending(fs, n))
		return 0;
	pthread_mutex_lock(&n->lock);
	if (n->dirty)
		ret = commit(fs, n, 0);
	pthread_mutex_unlock(&n->lock);
	return ret;
}

/*
 * The xattrs of a pending file (one with no version yet) are kept with its
 * node and given to its first version (commit()).  Committing the file at
 * the first setxattr made an empty version before the one its content
 * came in: tar --xattrs sets them before it writes, on every file.  Not
 * the file capability, which a later write drops (and ACLs: acl.c).
 * pxa_find(), pxa_set() and pxa_remove(): caller holds n->lock and has
 * seen the node pending.
 */
static int pxa_pending_name(const struct fs_node *n, const char *name)
{
	return n->kind == FS_FILE && strcmp(name, XA_CAPS) != 0;
}

static struct store_xattr *pxa_find(struct fs_node *n, const char *name)
{
	size_t i;

	for (i = 0; i < n->npxa; i++)
		if (strcmp(n->pxa[i].name, name) == 0)
			return &n->pxa[i];
	return NULL;
}

static int pxa_set(struct fs_node *n, const char *name, const void *value,
		   size_t size, int flags)
{
	struct store_xattr *x = pxa_find(n, name), *v;
	size_t i, ntags = 0;
	void *copy;
	char *nm;
	int ret;

	if (x && (flags & XATTR_CREATE))
		return -EEXIST;
	if (!x && (flags & XATTR_REPLACE))
		return -ENODATA;
	for (i = 0; !x && i < n->npxa; i++)
		ntags += !strncmp(n->pxa[i].name, STORE_TAG_XATTR,
				  sizeof(STORE_TAG_XATTR) - 1);
	ret = store_tag_check(name, value, size, ntags);
	if (ret)
		return ret;	/* as the store refuses it */
	copy = malloc(size ? size : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, value, size);
	if (x) {
		free((void *)x->value);
		x->value = copy;
		x->size = size;
		return 0;
	}
	nm = strdup(name);
	v = realloc(n->pxa, (n->npxa + 1) * sizeof(*v));
	if (!nm || !v) {
		free(nm);
		free(copy);
		if (v)
			n->pxa = v;
		return -ENOMEM;
	}
	n->pxa = v;
	n->pxa[n->npxa].name = nm;
	n->pxa[n->npxa].value = copy;
	n->pxa[n->npxa].size = size;
	n->npxa++;
	return 0;
}

static int pxa_remove(struct fs_node *n, const char *name)
{
	struct store_xattr *x = pxa_find(n, name);

	if (!x)
		return -ENODATA;
	free((void *)x->name);
	free((void *)x->value);
	*x = n->pxa[--n->npxa];
	return 0;
}

/*
 * setxattr (@value not NULL) or removexattr of @name on @n, kept with the
 * node if it is a pending file and @name is one it keeps: 1 when done and
 * replied to, else 0 (the caller goes on to the store).
 */
static int pxa_change(fuse_req_t req, struct fs *fs, struct fs_node *n,
		      const char *name, const void *value, size_t size,
		      int flags)
{
	int ret;

	if (!pxa_pending_name(n, name))
		return 0;
	pthread_mutex_lock(&n->lock);
	if (!node_pending(fs, n)) {
		pthread_mutex_unlock(&n->lock);
		return 0;
	}
	ret = value ? pxa_set(n, name, value, size, flags)
		    : pxa_remove(n, name);
	pthread_mutex_unlock(&n->lock);
	if (ret == 0)
		xattr_changed(n);
	fuse_reply_err(req, -ret);
	return 1;
}

static void reply_value(fuse_req_t req, const void *val, size_t len,
			size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	char bucket[64], key[KEYBUF], *buf;
	struct store_obj obj;
	ssize_t len;
	int ret;

	if (!n)
		return;
	if (strcmp(name, XA_STORE) == 0) {
		const char *p = store_path(fs->st);

		reply_value(req, p, strlen(p), size);
		return;
	}
	if (strcmp(name, XA_REFRESH) == 0) {
		/* The names a command had expired (op_refresh()) are.  The
		 * wait may be long (a folder's lock held by a request that
		 * waits for this mount): others are served meanwhile. */
		fs_loop_detach();
		fs_notify_sync(fs, FS_REFRESH_WAIT_MS);
		reply_value(req, "", 0, size);
		return;
	}
	if (!fs_xattr_kept(name) && !fs_vattr_own(name) &&
	    !(fs->acl && fs_acl_name(name))) {
		/* No other name is kept (setxattr refuses them the same
		 * way), and saying so lets `ls -l` stop asking for
		 * security.selinux after the first file, where ENODATA
		 * cost a request per file. */
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (strcmp(name, XA_PATH) == 0) {
		char path[64 + KEYBUF + 1];
		size_t l;

		ret = n->kind == FS_ROOT ? 0 : fs_node_path(fs, n, bucket, key);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		if (n->kind == FS_ROOT)
			l = 0;
		else if (key[0])
			l = (size_t)snprintf(path, sizeof(path), "%s/%s",
					     bucket, key);
		else
			l = (size_t)snprintf(path, sizeof(path), "%s", bucket);
		reply_value(req, path, l, size);
		return;
	}
	if (fs_vattr_is(name)) {
		/* Of the current version (vattr.c). */
		char val[FS_VATTR_MAX];

		ret = n->kind == FS_FILE || n->kind == FS_SYMLINK
			      ? xattr_prepare(fs, n) : -ENODATA;
		if (ret == 0)
			ret = fs_node_path(fs, n, bucket, key);
		if (ret == 0)
			ret = store_lookup(fs->st, bucket, key, &obj);
		if (ret == 0)
			ret = fs_vattr_get(req, fs, bucket, key, &obj, name,
					   size, val);
		if (ret < 0)
			fuse_reply_err(req, ret == -ENOENT ? ENODATA : -ret);
		else
			reply_value(req, val, (size_t)ret, size);
		return;
	}
	if (n->kind == FS_FILE && node_pending(fs, n) &&
	    strcmp(name, FS_ACL_ACCESS) == 0) {
		/* The ACL it took from its folder, kept until its first
		 * version. */
		pthread_mutex_lock(&n->lock);
		if (n->acl)
			reply_value(req, n->acl, n->acl_len, size);
		else
			fuse_reply_err(req, ENODATA);
		pthread_mutex_unlock(&n->lock);
		return;
	}
	if (n->kind == FS_FILE && !fs_vattr_own(name)) {
		struct store_xattr *x;

		pthread_mutex_lock(&n->lock);
		x = node_pending(fs, n) ? pxa_find(n, name) : NULL;
		if (x)
			reply_value(req, x->value, x->size, size);
		pthread_mutex_unlock(&n->lock);
		if (x)
			return;
	}
	if (fs_vattr_own(name) || n->kind == FS_SYMLINK ||
	    (n->kind == FS_FILE && node_pending(fs, n))) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	ret = xattr_key(fs, n, bucket, key);
	if (ret) {
		fuse_reply_err(req, ret == -ENOTSUP ? ENODATA : -ret);
		return;
	}
	buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	len = store_xattr_get(fs->st, bucket, key, name, buf, size);
	if (len < 0)
		fuse_reply_err(req, len == -ENOENT ? ENODATA : (int)-len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, buf, (size_t)len);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	char bucket[64], key[KEYBUF], *buf;
	struct store_obj obj;
	size_t ownlen = 0, cap;
	ssize_t len = 0;
	int ret;

	if (!n)
		return;
	if (n->kind == FS_ROOT) {
		reply_value(req, "", 0, size);
		return;
	}
	if (n->kind == FS_FILE) {
		/* A pending file: its own, with no version to list. */
		size_t i, l = 0;
		char *p = NULL;
		int pending;

		pthread_mutex_lock(&n->lock);
		pending = node_pending(fs, n);
		for (i = 0; pending && i < n->npxa; i++)
			l += strlen(n->pxa[i].name) + 1;
		if (pending && n->acl)
			l += sizeof(FS_ACL_ACCESS);
		p = pending ? malloc(l ? l : 1) : NULL;
		if (p) {
			size_t o = 0;

			for (i = 0; i < n->npxa; i++) {
				size_t nl = strlen(n->pxa[i].name) + 1;

				memcpy(p + o, n->pxa[i].name, nl);
				o += nl;
			}
			if (n->acl)
				memcpy(p + o, FS_ACL_ACCESS,
				       sizeof(FS_ACL_ACCESS));
			if (fuse_req_ctx(req)->uid != 0)
				fs_xattr_hide_trusted(p, &l);
			reply_value(req, p, l, size);
		} else if (pending) {
			fuse_reply_err(req, ENOMEM);
		}
		pthread_mutex_unlock(&n->lock);
		free(p);
		if (pending)
			return;
	}
	ret = xattr_prepare(fs, n);
	if (ret == 0)
		ret = xattr_key(fs, n, bucket, key);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	cap = 2 * 65536;
	buf = malloc(cap);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (n->kind == FS_FILE || n->kind == FS_SYMLINK) {
		/* The current version's own (vattr.c), then the user's. */
		ret = store_lookup(fs->st, bucket, key, &obj);
		if (ret == 0)
			ret = fs_vattr_list(fs, bucket, key, &obj, 1, buf,
					    &ownlen, cap / 2);
		if (ret && ret != -ENOENT) {
			free(buf);
			fuse_reply_err(req, -ret);
			return;
		}
	}
	len = store_xattr_list(fs->st, bucket, key, buf + ownlen,
			       cap - ownlen);
	if (len == -ENOENT)
		len = 0;
	if (len < 0) {
		fuse_reply_err(req, (int)-len);
	} else {
		size_t l = (size_t)len;

		if (fuse_req_ctx(req)->uid != 0)
			fs_xattr_hide_trusted(buf + ownlen, &l);
		reply_value(req, buf, ownlen + l, size);
	}
	free(buf);
}

/*
 * XA_REFRESH, set on folder @dir by the command line once it changed keys
 * below it in the store (restore, undelete, rm-version), the mount having
 * had no part in it.  The kernel keeps a name it looked up, found or
 * missing, for the mount's timeout without asking again: a file undeleted
 * just after a look stayed missing for that long, and one whose versions
 * were all removed stayed there.  @value holds the keys' paths relative to
 * @dir, each ended by a NUL.  Each is followed down the nodes the kernel
 * holds, and the name where the walk ends (the first the kernel holds no
 * node for, which it may keep as missing, or the path's last) is expired:
 * the kernel looks it up again at its next use, and the mount finds it
 * gone, back, or with other content (stale_drop()).  Expired, not
 * dropped: dropping a folder that is still there would cut a shell's
 * working directory in it off its path.  What changed below a folder is
 * named on its own.  The names are queued to the notify thread and the
 * reply goes at once; the command then waits for them with a GETXATTR of
 * XA_REFRESH.  Anyone may ask: an expired name costs one lookup.
 */
void fs_refresh_path(struct fs *fs, struct fs_node *dir, const char *rel,
		     int wait)
{
	char path[64 + KEYBUF], *comp, *next, *save;
	struct fs_node *cur, *child;
	uint64_t seq = 0;

	if (strlen(rel) >= sizeof(path))
		return;
	snprintf(path, sizeof(path), "%s", rel);
	pthread_mutex_lock(&fs->lock);
	cur = dir;
	comp = strtok_r(path, "/", &save);
	while (comp) {
		next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, ".") || !strcmp(comp, ".."))
			break;
		child = fs_node_find_locked(fs, cur, comp);
		if (child && next && (child->kind == FS_BUCKET ||
				      child->kind == FS_DIR)) {
			cur = child;
			comp = next;
			continue;
		}
		seq = fs_notify_queue(fs, cur->ino, comp, 1);
		break;
	}
	pthread_mutex_unlock(&fs->lock);
	if (wait)
		fs_notify_wait(fs, seq);
}

static void op_refresh(fuse_req_t req, struct fs_node *dir,
		       const char *value, size_t size)
{
	struct fs *fs = FS(req);
	const char *p = value, *end = value + size;
	char path[64 + KEYBUF];
	size_t len;

	if (dir->kind != FS_ROOT && dir->kind != FS_BUCKET &&
	    dir->kind != FS_DIR) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	for (; p < end; p += len + 1) {
		len = strnlen(p, (size_t)(end - p));
		if (len == 0 || len >= sizeof(path))
			continue;
		memcpy(path, p, len);
		path[len] = '\0';
		fs_refresh_path(fs, dir, path, 0);
	}
	/* Not waited for here: the kernel holds @dir's lock through the
	 * SETXATTR, and it takes that lock to expire a name in it.  The
	 * command waits with a GETXATTR of the same name (op_getxattr()),
	 * which holds no lock. */
	fuse_reply_err(req, 0);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	char bucket[64], key[KEYBUF];
	int ret, caps;

	if (!n)
		return;
	if (strcmp(name, XA_REFRESH) == 0) {
		op_refresh(req, n, value, size);
		return;
	}
	if (fs->acl && fs_acl_name(name)) {
		fuse_reply_err(req, -acl_set(req, fs, n, name, value, size));
		return;
	}
	/* Off by choice (not for want of the kernel's support): say how to
	 * turn them on, once. */
	if (fs_acl_name(name) && !fs->opts.acl &&
	    !atomic_exchange(&fs->acl_hinted, 1))
		log_info("an ACL was refused (Operation not supported): "
			 "this mount keeps no POSIX ACLs; mount with -o acl "
			 "to keep them");
	ret = xattr_writable(n, name);
	/* a value of size 0 may come as NULL: never the removal */
	if (ret == 0 && pxa_change(req, fs, n, name, value ? value : "",
				   size, flags))
		return;
	if (ret == 0)
		ret = xattr_prepare(fs, n);
	if (ret == 0)
		ret = xattr_key(fs, n, bucket, key);
	caps = ret == 0 && n->kind == FS_FILE && strcmp(name, XA_CAPS) == 0;
	if (caps) {
		/* Writes made before this are older than the capability,
		 * which their commit then keeps. */
		pthread_mutex_lock(&n->lock);
		pt_sync(fs, n);
		pthread_mutex_unlock(&n->lock);
	}
	if (ret == 0)
		ret = store_xattr_set(fs->st, bucket, key, name, value, size,
				      flags);
	if (ret == 0 && caps) {
		pthread_mutex_lock(&n->lock);
		n->caps_kept = 1;
		pthread_mutex_unlock(&n->lock);
	}
	if (ret == 0)
		xattr_changed(n);
	fuse_reply_err(req, -ret);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	char bucket[64], key[KEYBUF];
	int ret, acl;

	if (!n)
		return;
	acl = fs->acl && fs_acl_name(name);
	ret = acl ? 0 : xattr_writable(n, name);
	if (ret == 0 && acl && n->kind != FS_FILE && !is_dir_node(n))
		ret = -EOPNOTSUPP;
	if (ret == 0 && !acl && pxa_change(req, fs, n, name, NULL, 0, 0))
		return;
	if (ret == 0)
		ret = xattr_prepare(fs, n);
	if (ret == 0)
		ret = xattr_key(fs, n, bucket, key);
	if (ret == 0)
		ret = store_xattr_remove(fs->st, bucket, key, name);
	/* Removing an ACL that is not there is no error, as on a disk
	 * (`setfacl -b` of a file without one). */
	if (acl && ret == -ENODATA)
		ret = 0;
	if (acl || ret == 0)
		xattr_changed(n);
	fuse_reply_err(req, ret == -ENOENT ? ENODATA : -ret);
}

/* ---- Session ------------------------------------------------------------ */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	fs_loop_conn_want(conn, fs->opts.writeback && !fs->passthrough);
	fs->wbcache = (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0;
	/* Every listing is a READDIRPLUS: in a plain READDIR an entry not
	 * looked up yet has no inode number (FUSE_UNKNOWN_INO), and the
	 * kernel, left to choose, lists a large folder's entries past the
	 * first few hundred that way, so `find -inum` and anything that
	 * trusts d_ino missed them. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* POSIX ACLs: the kernel enforces them, and leaves the umask to us
	 * so that a folder's default ACL can take its place (acl_inherit()). */
	if (fs->opts.acl && (conn->capable & FUSE_CAP_POSIX_ACL) &&
	    (conn->capable & FUSE_CAP_DONT_MASK)) {
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
		fs->acl = 1;
	}
	fs_bdi_tune(fs);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
};

/* ---- The end of a session ---------------------------------------------- */

struct open_nodes {
	struct fs_node **v;
	size_t n, cap;
};

static void open_collect(void *arg, struct fs_node *n)
{
	struct open_nodes *o = arg;
	struct fs_node **grown;

	if (n->kind != FS_FILE || n->nopen == 0)
		return;
	if (o->n == o->cap) {
		grown = realloc(o->v, (o->cap * 2 + 16) * sizeof(*grown));
		if (!grown)
			return;	/* out of memory: this one is left out */
		o->v = grown;
		o->cap = o->cap * 2 + 16;
	}
	n->nopen++;	/* held while @fn looks at it */
	o->v[o->n++] = n;
}

/* Call @fn for each file open now, held meanwhile, without fs->lock. */
static void each_open_file(struct fs *fs,
			   void (*fn)(struct fs *fs, struct fs_node *n))
{
	struct open_nodes o = { NULL, 0, 0 };
	size_t i;

	pthread_mutex_lock(&fs->lock);
	fs_node_each_locked(fs, open_collect, &o);
	pthread_mutex_unlock(&fs->lock);
	for (i = 0; i < o.n; i++) {
		fn(fs, o.v[i]);
		node_open_count(fs, o.v[i], -1);
	}
	free(o.v);
}

/*
 * A file still open for writing as the mount ends: its writer's close will
 * fail, so, as an S3 PUT that failed, the key stays as it was: its last
 * version, or none.  Before, what was written became the current version
 * (half a rewrite, for a writer told it had failed).  In a bucket that
 * keeps versions it is kept all the same, as a version below the current
 * one, and the log says which; elsewhere it would take the last version's
 * place, and is dropped.
 */
static void commit_open(struct fs *fs, struct fs_node *n)
{
	char bucket[64], key[KEYBUF], vid[STORE_VID_MAX + 1] = "";
	enum store_versioning ver = STORE_UNVERSIONED;
	struct store_obj prev, obj;
	int ret, had;

	pthread_mutex_lock(&n->lock);
	pt_sync(fs, n);
	if (!n->nwriters || !n->dirty || fs_node_path(fs, n, bucket, key))
		goto out;
	if (store_bucket_get(fs->st, bucket, NULL, &ver) == 0 &&
	    ver != STORE_ENABLED) {
		log_err("%s/%s: open for writing as the mount ended: what was "
			"written since its last close is lost (the bucket keeps "
			"no versions), and its close fails", bucket, key);
		goto out;
	}
	had = store_lookup(fs->st, bucket, key, &prev) == 0 &&
	      prev.kind == STORE_FILE;
	ret = commit(fs, n, 0);
	if (ret) {
		log_err("%s/%s: open for writing as the mount ended; what was "
			"written since its last close is lost: %s", bucket, key,
			strerror(-ret));
		goto out;
	}
	if (store_lookup(fs->st, bucket, key, &obj) == 0)
		memcpy(vid, obj.version_id, sizeof(vid));
	ret = had ? store_restore(fs->st, bucket, key, prev.version_id, NULL,
				  NULL)
		  : store_delete(fs->st, bucket, key, NULL);
	if (ret)
		log_err("%s/%s: open for writing as the mount ended; what was "
			"written is its current version %s, as the one before "
			"could not be made current again: %s", bucket, key, vid,
			strerror(-ret));
	else
		log_warn("%s/%s: open for writing as the mount ended: its close "
			 "fails, and the key stays as it was; what was written "
			 "is kept as version %s (in .versions)", bucket, key,
			 vid);
out:
	pthread_mutex_unlock(&n->lock);
}

void fs_commit_open(struct fs *fs)
{
	each_open_file(fs, commit_open);
}

/* The kernel writes the dirty pages it drops (WRITEs the workers serve),
 * so that fs_commit_open() finds them. */
static void drain_writer(struct fs *fs, struct fs_node *n)
{
	int cached;

	pthread_mutex_lock(&n->lock);
	cached = n->nwriters && n->cached_open;
	pthread_mutex_unlock(&n->lock);
	if (cached)
		fuse_lowlevel_notify_inval_inode(fs->se, n->ino, 0, 0);
}

void fs_drain_writers(void *arg)
{
	each_open_file(arg, drain_writer);
}
