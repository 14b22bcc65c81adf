/*
 * fs_i.h - internals of the FUSE adapter, shared by the files of fs/.
 *
 * The adapter holds no state of its own that the store does not have,
 * except what the kernel needs while files are open: the inode table (which
 * inode number stands for which path, and how many references the kernel
 * holds) and, per open file, the staging file its writes go to until the
 * close that commits them as a version.
 *
 * Locks, always taken in this order, never the other way:
 *
 *   node->lock    a file's open state: staging, size, hash, base blob
 *   fs->ns_lock   rwlock over the namespace: held for reading while a path
 *                 is turned into a commit, for writing by rename, unlink and
 *                 rmdir, so that a commit can never land on a path that a
 *                 rename has just moved away
 *   fs->lock      the inode tables and each node's place in the tree
 *
 * A directory's node->lock guards only its caches (attributes, the name
 * last found missing) and is held for a few stores, never while taking
 * another lock, so it may be taken with any of these held.
 */
#ifndef REPLICAFS_FS_I_H
#define REPLICAFS_FS_I_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "replicator/engine.h"
#include "store/store.h"

enum fs_kind {
	FS_ROOT = 1,
	FS_BUCKET,
	FS_DIR,
	FS_FILE,
	FS_SYMLINK,
	/* The read-only views of history (history.c), from FS_HV_ROOT on;
	 * their inode numbers have FS_HIST_INO set. */
	FS_HV_ROOT,	/* .versions: the buckets */
	FS_HV_DIR,	/* .versions/BUCKET[/PATH]: the versions of key PATH
			 * and the keys that ever were below it */
	FS_HV_FILE,	/* .versions/BUCKET/KEY/ENTRY: a version, or a delete
			 * marker */
	FS_HV_LINK,	/* the same, of a symlink */
	FS_HA_ROOT,	/* .at: lists nothing; any TIME opens */
	FS_HA_TIME,	/* .at/TIME: the buckets then */
	FS_HA_DIR,	/* .at/TIME/BUCKET[/PATH]: a directory then */
	FS_HA_FILE,	/* .at/TIME/BUCKET/KEY: a file then */
	FS_HA_LINK,	/* a symlink then */
};

/* Set in the inode number of every node of a history view, so that a
 * request is routed without a look at the node table. */
#define FS_HIST_INO (1ULL << 62)

static inline int fs_kind_is_hist(enum fs_kind k)
{
	return k >= FS_HV_ROOT;
}

/* Ranges written past the in-order end of a staging file that the running
 * hash waits for (WRITEs handled by two threads may take the node's lock
 * out of order; see ops.c, hash_extend()). */
#define FS_HASH_PEND 8

struct fs_node {
	fuse_ino_t ino;		/* immutable: the kernel's name for it */
	uint64_t st_ino;	/* immutable: st_ino, the store's inode
				 * number of its key (inode.c) */
	enum fs_kind kind;	/* immutable */

	/* protected by fs->lock */
	struct fs_node *parent;	/* NULL for the root and detached nodes */
	char *name;		/* owned; NULL when detached */
	uint64_t nlookup;	/* references the kernel holds */
	unsigned nchildren;	/* nodes whose parent this is */
	uint64_t gone_gen;	/* names taken out of this folder, counted:
				 * a listing made before a change shows
				 * names no more there (ops.c, reply_dir) */
	unsigned nopen;		/* open handles */
	int pending;		/* created, no version committed yet */
	int unlinked;		/* removed while known: never commit */
	struct fs_node *ino_next;
	struct fs_node *name_next;
	struct fs_node *sti_next;

	/*
	 * The running hash of the staging file (ops.c, hash_follow()).
	 * Protected by hash_mu, taken after lock; hash and stage_fd change
	 * only with lock, and hash_mu held while hash_busy is 0: a thread
	 * that hashes sets hash_busy and reads the staging file without
	 * either lock.
	 */
	pthread_mutex_t hash_mu;
	pthread_cond_t hash_cv;	/* hash_busy went to 0 */
	struct store_hash *hash;/* SHA-256 of staging bytes [0, hashed) */
	uint64_t hashed;
	uint64_t hash_goal;	/* bytes [0, hash_goal) written in order */
	uint64_t hash_pend[FS_HASH_PEND][2];	/* written past hash_goal:
						 * offset, length */
	int hash_npend;
	int hash_busy;
	int hash_bad;		/* rewritten, or a hole left too long */

	/* protected by lock */
	pthread_mutex_t lock;
	unsigned nwriters;	/* handles open for writing */
	int stage_fd;		/* -1: content is the base blob */
	struct store_check *seed_check;	/* the hash of the blob stage_fd
					 * was copied from, running: a
					 * commit waits for it */
	int dirty;		/* content differs from the last version */
	int orphan;		/* removed with writes no version keeps: the
				 * staging file is the content for what is
				 * still open on it, till the node goes */
	int wrote;		/* dirty by write() or truncate(), not only
				 * by O_TRUNC or O_CREAT at open */
	int caps_kept;		/* a file capability was set after the last
				 * write: the commit keeps it */
	int commit_err;		/* a commit failed and its data is gone: every
				 * flush and commit gives this error until
				 * the writers have all closed */
	uint32_t killpriv;	/* set-ID bits the next commit drops */
	uint64_t size;		/* size of the content (staging or base) */
	int64_t blocks;		/* st_blocks of the base blob; -1: unknown */
	int base_known;		/* base_sha and size describe the content */
	char base_sha[65];	/* blob of the last committed version */
	int base_fd;		/* open blob, -1 until needed */
	char cached_sha[65];	/* content the kernel's page cache holds */
	char mknod_vid[STORE_VID_MAX + 1];	/* the empty version that
				 * mknod(2) made, which a commit within
				 * FS_MKNOD_FILL_NS replaces
				 * (store_put.replaces); "": none */
	int64_t mknod_ns;	/* when (monotonic) */
	struct store_meta meta;	/* of a pending file; mtime of last write */
	void *acl;		/* owned: a pending file's access ACL, from
				 * its folder's default ACL (acl.c), which
				 * its first version takes; NULL: none */
	size_t acl_len;
	struct store_xattr *pxa;	/* owned, names and values too: the
					 * xattrs set on a pending file, which
					 * its first version takes (ops.c) */
	size_t npxa;
	int64_t created_ns;	/* a pending file: when it was created */

	/*
	 * Passthrough (ops.c, pt_*), protected by lock.  While pt_id is
	 * set, stage_fd is the backing file of every handle open in
	 * passthrough mode and the kernel writes it without telling us:
	 * pt_st is what fstat() said of it last, and a change of its size,
	 * mtime or ctime is a write.
	 */
	int pt_id;		/* backing id of stage_fd; 0: none */
	unsigned pt_open;	/* handles open in passthrough mode */
	unsigned cached_open;	/* handles open in the page cache's mode */
	uint32_t pt_killbits;	/* set-ID bits their writes drop, whenever
				 * the mode has them (a chmod after the
				 * open too) */
	int pt_nonroot;		/* one was opened by a caller other than
				 * root: set-group-ID goes too while group
				 * execute is set */
	int pt_rdwr;		/* one was opened O_RDWR, so a shared
				 * mapping may write it: see pt_detach() */
	int pt_reader;		/* one was opened only for reading, so the
				 * staging file may be held where no lease
				 * shows it: see stage_drop() */
	int pt_mapped;		/* after the last passthrough handle, a
				 * mapping still holds the staging file:
				 * kept, and watched (mapped.c); counts
				 * in nopen */
	struct stat pt_st;

	/*
	 * Protected by lock.  Directories and buckets: their attributes as
	 * the store last gave them, and when (CLOCK_MONOTONIC), so that a
	 * GETATTR within the attribute timeout is answered without the
	 * store, as the kernel itself would have answered it had a CREATE
	 * below not made it forget them; and the last name looked up below
	 * and not found, and when, so that the CREATE that follows such a
	 * LOOKUP need not ask the store again.  Files: attr_ns is when meta
	 * and size were last read from the store or committed to it.
	 *
	 * touched_ns: a directory's mtime as names made below it through
	 * this mount have moved it (ops.c, dir_touched()), ahead of the
	 * store while a file created there is not committed yet; what it
	 * reports is never older.  An explicit mtime (touch, cp -a) clears
	 * it.
	 */
	struct stat attr;
	int64_t attr_ns;	/* 0: nothing cached */
	char *miss_name;	/* owned; NULL: none */
	int64_t miss_ns;
	int64_t touched_ns;	/* 0: none */
	/* A folder last seen to have no default ACL at nodacl_ns (0: not
	 * known), which a CREATE in it then need not read again within
	 * the attribute timeout (acl_inherit()); dir_changed() forgets it
	 * and counts dacl_gen up, so that a read under way does not note
	 * what a change after it made wrong. */
	int64_t nodacl_ns;
	uint64_t dacl_gen;
};

struct fs_opts {
	const char *store_dir;
	const char *mountpoint;
	int foreground;
	int debug;
	int writeback;		/* kernel writeback cache */
	int passthrough;	/* FUSE passthrough where it can be had */
	int allow_other;
	double timeout;		/* entry and attribute timeout, seconds */
	unsigned threads;
	unsigned spin_us;	/* see loop.c; 0: sleep at once */
	struct repl_engine_opts repl;	/* the replication workers */
	int repl_off;		/* -o repl_workers=0: none in this mount */
	int bdi_tune;		/* raise readahead, lift the strict dirty
				 * limit of the mount's bdi (see mount.c) */
	int acl;		/* ask for POSIX ACLs: 1 (-o acl), 0 (-o
				 * noacl), or -1: where allow_other is on or
				 * the store holds an ACL (mount.c) */
	int uring;		/* FUSE over io_uring when the kernel offers
				 * it (-o nouring: not; see uring.c) */
};

struct fs_notifier;

struct fs {
	struct store *st;
	struct fuse_session *se;	/* set before requests come */
	struct repl_engine *repl;	/* NULL when replication is off */
	struct fs_opts opts;
	uid_t uid;		/* owner of the root */
	gid_t gid;
	int64_t start_ns;

	pthread_rwlock_t ns_lock;
	int killpriv;		/* set by INIT (loop.c): we clear set-ID
				 * bits on write, truncate and chown */
	int wbcache;		/* set by INIT: the kernel caches writes and
				 * sends them later */
	int passthrough;	/* asked for at mount; set by INIT (loop.c)
				 * when the kernel was asked for it */
	int acl;		/* set by INIT: the kernel enforces POSIX
				 * ACLs and leaves the umask to us */
	atomic_int acl_hinted;	/* the log said how to turn ACLs on */

	struct fs_notifier *notify;	/* notify.c; NULL: not started */
	struct fs_mapwatch *mapwatch;	/* mapped.c; NULL: not started */

	pthread_mutex_t lock;
	/* protected by lock */
	struct fs_node **ino_tab;
	size_t ino_cap;
	struct fs_node **name_tab;
	size_t name_cap;
	struct fs_node **sti_tab;	/* by st_ino; ino_cap slots */
	uint64_t own_next;	/* st_ino of a node whose key's is taken */
	size_t nnodes;
	size_t npending;	/* nodes with pending set */
	fuse_ino_t next_ino;
	struct fs_node *root;
};

/* How soon after mknod(2) of a file its first commit replaces the empty
 * version mknod made (fs_node.mknod_vid): tar --xattrs writes the file
 * within microseconds; one written later keeps both versions. */
#define FS_MKNOD_FILL_NS (1000LL * 1000 * 1000)

/* ---- notify.c: names gone, told to the kernel by a thread ---- */

#define FS_NOTIFY_WAIT_MS 100
/* How long a command's GETXATTR of XA_REFRESH waits for the names it had
 * expired (ops.c). */
#define FS_REFRESH_WAIT_MS 2000

/* Start and stop the thread; fs->se is set before the start. */
int fs_notify_start(struct fs *fs);
void fs_notify_stop(struct fs *fs);

/* Tell the kernel that @name in directory @parent is gone, from that
 * thread, waiting for it at most FS_NOTIFY_WAIT_MS (notify.c's top says
 * why).  Call without locks. */
void fs_notify_entry(struct fs *fs, fuse_ino_t parent, const char *name);

/* The same in two steps: queue one (fs->lock may be held), and wait for
 * all queued up to the one that returned @seq (0: none), without locks.
 * With @expire the kernel keeps the name but looks it up again at its
 * next use (where the kernel cannot, it drops it). */
uint64_t fs_notify_queue(struct fs *fs, fuse_ino_t parent, const char *name,
			 int expire);
void fs_notify_wait(struct fs *fs, uint64_t seq);
void fs_notify_wait_ms(struct fs *fs, uint64_t seq, long ms);
/* Wait at most @ms for every notification queued so far. */
void fs_notify_sync(struct fs *fs, long ms);

/* ---- mapped.c: files mapped after their last release ---- */

/* Start and stop the thread; the stop commits each node left as it
 * stands (fs_mapped_poll() with @final). */
int fs_mapped_start(struct fs *fs);
void fs_mapped_stop(struct fs *fs);

/* Watch @n, whose pt_mapped the caller set (holding n->lock). */
int fs_mapped_watch(struct fs *fs, struct fs_node *n);

/* ops.c: whether @n is still mapped (1: look again later), else commit
 * what the mapping wrote and let go of @n (0); @final: the mount is
 * gone, let go of it anyway.  Call without locks. */
int fs_mapped_poll(struct fs *fs, struct fs_node *n, int final);

/* ---- inode.c: the node tables ---- */

int fs_nodes_init(struct fs *fs);
void fs_nodes_release(struct fs *fs);

/* The node of @ino, or NULL.  Takes fs->lock. */
struct fs_node *fs_node_get(struct fs *fs, fuse_ino_t ino);

/*
 * The node named @name in @parent: the existing one if its kind is @kind,
 * else a new one (an existing node of another kind is detached), whose
 * st_ino is @st_ino (the store's, store_obj.ino) unless another node has
 * that, which a file removed while open and then undeleted can.  Adds
 * @lookups to its kernel references.  Returns NULL on ENOMEM.  Takes
 * fs->lock.
 */
struct fs_node *fs_node_child(struct fs *fs, struct fs_node *parent,
			      const char *name, enum fs_kind kind,
			      uint64_t lookups, uint64_t st_ino);

/* An inode number for a key made through this mount, which the store
 * will keep (store_put.ino); fs_ino_kept() tells whether @st_ino is one
 * the store keeps, not one of the mount's own. */
uint64_t fs_ino_new(struct fs *fs);
int fs_ino_kept(uint64_t st_ino);

/* The node named @name in @parent if one is known, else NULL.  Caller
 * holds fs->lock. */
struct fs_node *fs_node_find_locked(struct fs *fs, struct fs_node *parent,
				    const char *name);

/* Drop @n kernel references; frees the node when nothing holds it. */
void fs_node_forget(struct fs *fs, struct fs_node *node, uint64_t n);

/* Take the node out of the tree (after unlink or when replaced); caller
 * holds fs->lock. */
void fs_node_detach_locked(struct fs *fs, struct fs_node *node);

/* Move the node to @name in @parent; caller holds fs->lock.  Returns 0 or
 * -ENOMEM. */
int fs_node_move_locked(struct fs *fs, struct fs_node *node,
			struct fs_node *parent, const char *name);

/*
 * The bucket and key of @node: @bucket gets the bucket's name (64 bytes),
 * @key the path below it ("" for a bucket; STORE_KEY_MAX + 2 bytes, room
 * for a directory marker's '/').  -ENOENT for a detached node, -EINVAL for
 * the root, -ENAMETOOLONG past S3's key limit.  Caller holds fs->lock.
 */
int fs_node_path_locked(struct fs_node *node, char *bucket, char *key);
int fs_node_path(struct fs *fs, struct fs_node *node, char *bucket,
		 char *key);

/* Call @cb for each node; caller holds fs->lock, which @cb must not
 * take (nor free the node). */
void fs_node_each_locked(struct fs *fs,
			 void (*cb)(void *arg, struct fs_node *n), void *arg);

/* ops.c: at the end of a session, commit what files still open for
 * writing hold (a SIGTERM while a writer had one open), each named in
 * the log.  No request may come any more. */
void fs_commit_open(struct fs *fs);
/* Before that, while requests are still served: have the kernel write
 * what its cache holds of files open for writing (fs_loop_catch_signals()
 * calls it with the fs). */
void fs_drain_writers(void *fs);

/* Call @cb for each pending node whose parent is @dir; caller holds
 * fs->lock. */
void fs_node_each_pending_locked(struct fs *fs, struct fs_node *dir,
				 void (*cb)(void *arg, struct fs_node *n),
				 void *arg);

/* ---- ops.c ---- */

/* The live tree.  The session runs fs_hist_ops() over it, which routes
 * every request on a history node to history.c: an op added here that
 * takes an inode must be routed there too. */
extern const struct fuse_lowlevel_ops fs_ops;

/*
 * Attributes (ops.c), for the live tree and the history views alike:
 * fs_meta_stat() fills @st's mode, owner, size, blocks, times and link
 * count from @m (other fields are left as they are); @blocks is the
 * 512-byte blocks the content takes on disk, -1 for what @size takes
 * without holes.  fs_obj_blocks() is that for version @o: its blob's for
 * a file (-1 when not known), what its size makes for the others.
 */
void fs_meta_stat(const struct store_meta *m, uint64_t size, int64_t blocks,
		  struct stat *st);
int64_t fs_obj_blocks(const struct store_obj *o);

/* The xattr names the mount keeps for its users, besides ACLs: user.*,
 * trusted.*, and security.* but security.selinux (ops.c).  A caller that
 * is not root lists no trusted.* names: fs_xattr_hide_trusted() drops
 * them from the NUL-separated list @buf of *@len bytes. */
int fs_xattr_kept(const char *name);
void fs_xattr_hide_trusted(char *buf, size_t *len);

/* ---- history.c: .versions and .at ---- */

#define FS_VERSIONS_NAME ".versions"
#define FS_AT_NAME ".at"

/* The session's operations into @out: those of @live, with every request
 * on a history node, and the lookup of the two names at the root, routed
 * to the history views. */
void fs_hist_ops(const struct fuse_lowlevel_ops *live,
		 struct fuse_lowlevel_ops *out);

/* ---- vattr.c: the attributes of a version as extended attributes ---- */

#define XA_OWN "system.replicafs."
#define XA_TRUSTED "trusted."
#define XA_SECURITY "security."
/* A file capability (setcap): dropped by every write, truncate and chown,
 * as the kernel leaves to us (FUSE_HANDLE_KILLPRIV_V2, loop.c). */
#define XA_CAPS "security.capability"
#define XA_VID "system.replicafs.version-id"
#define XA_LATEST "system.replicafs.is-latest"	/* "true" or "false" */
#define XA_SIZE "system.replicafs.size"		/* bytes, in decimal */
#define XA_SHA "system.replicafs.sha256"
#define XA_ETAG "system.replicafs.etag"		/* "\"MD5\"", as S3 */
/* the overall replication status; "XA_REPL.DEST-URL" for each destination */
#define XA_REPL "system.replicafs.replication-status"
#define XA_STORE "system.replicafs.store"	/* hidden: for the command line */
#define XA_PATH "system.replicafs.path"	/* hidden: bucket/key */
/* hidden: "versions" or "at" in the history views, none elsewhere: the
 * command line asks a .versions entry itself for its key (cli.c) */
#define XA_VIEW "system.replicafs.view"
/* hidden, set only: names below a folder the command line changed in the
 * store (ops.c, op_refresh()) */
#define XA_REFRESH "system.replicafs.refresh"

/* Room for the value of any attribute of a version. */
#define FS_VATTR_MAX 96

/* Whether @name is one of replicafs's own attributes (under XA_OWN). */
int fs_vattr_own(const char *name);

/* Whether @name is an attribute of a version (above, but XA_STORE and
 * XA_PATH). */
int fs_vattr_is(const char *name);

/* Attribute @name of version @obj of @key in @bucket into @val, for the
 * caller of @req: its length (not NUL-terminated), -ENODATA when this
 * version has none, -EACCES when the caller may not read the version, or
 * another negative errno. */
struct fs_acl;

/* Whether the caller of @req may read a node of @m's owner, group and
 * mode, and access ACL @acl (NULL: none); root always. */
int fs_may_read(fuse_req_t req, const struct store_meta *m,
		const struct fs_acl *acl);
/* The same for @want: 4 read, 2 write, 1 search (or execute). */
int fs_may(fuse_req_t req, const struct store_meta *m,
	   const struct fs_acl *acl, unsigned want);
/* Attribute @name of version @obj into @val: its length, or a negative
 * errno.  @size is the caller's buffer size: 0 asks for the length only,
 * which for the ETag (always a quoted MD5) needs no hashing. */
int fs_vattr_get(fuse_req_t req, struct fs *fs, const char *bucket,
		 const char *key, const struct store_obj *obj,
		 const char *name, size_t size, char val[FS_VATTR_MAX]);

/* The names of the attributes version @obj has, each NUL-terminated,
 * appended to @buf at *@len (capacity @cap); a name that does not fit is
 * left out.  With @live (a live file's current version), is-latest and
 * size are left out too: there they only repeat "true" and st_size, and
 * each name listed costs `cp -a` and `tar --xattrs` two requests per
 * file.  0 or a negative errno. */
int fs_vattr_list(struct fs *fs, const char *bucket, const char *key,
		  const struct store_obj *obj, int live, char *buf,
		  size_t *len, size_t cap);

/* ---- acl.c: POSIX ACLs ---- */

#define FS_ACL_ACCESS "system.posix_acl_access"
#define FS_ACL_DEFAULT "system.posix_acl_default"

/* The kernel passes at most a page: (4096 - 4) / 8 entries. */
#define FS_ACL_MAX 511

struct fs_acl_entry {
	uint16_t tag;
	uint16_t perm;
	uint32_t id;
};

struct fs_acl {
	size_t n;
	struct fs_acl_entry e[FS_ACL_MAX];
};

/* Whether @name is the name of an ACL (access or default). */
static inline int fs_acl_name(const char *name)
{
	return strcmp(name, FS_ACL_ACCESS) == 0 ||
	       strcmp(name, FS_ACL_DEFAULT) == 0;
}

/* An ACL from its xattr value: 0, -EINVAL for a malformed or invalid
 * one, -EOPNOTSUPP for another format version. */
int fs_acl_parse(const void *value, size_t size, struct fs_acl *acl);
/* Its xattr value: fs_acl_size() bytes written by fs_acl_write(). */
size_t fs_acl_size(const struct fs_acl *acl);
void fs_acl_write(const struct fs_acl *acl, void *out);
/* Set the permission bits of *@mode to those @acl gives; 0 when the mode
 * says all @acl says (no ACL need be kept), 1 otherwise. */
int fs_acl_equiv_mode(const struct fs_acl *acl, uint32_t *mode);
/* Make default ACL @acl the access ACL of a node created with *@mode,
 * and narrow *@mode's permission bits as the ACL allows; 0 when the
 * result says no more than the mode, 1 otherwise. */
int fs_acl_create_masq(struct fs_acl *acl, uint32_t *mode);
/* The access ACL @acl after chmod to @mode. */
void fs_acl_chmod(struct fs_acl *acl, uint32_t mode);
/* The ACL that says what mode @mode's permission bits say. */
void fs_acl_from_mode(struct fs_acl *acl, uint32_t mode);
/* Whether @acl, the access ACL of a node owned by @owner and group
 * @group, grants the permission bits @want (4 read, 2 write, 1 execute)
 * to user @uid in groups @gids (its primary group among them), as the
 * kernel's posix_acl_permission() decides. */
int fs_acl_permits(const struct fs_acl *acl, uint32_t owner, uint32_t group,
		   uint32_t uid, const uint32_t *gids, size_t ngids,
		   unsigned want);

/* ---- mount.c ---- */

int fs_mount(const struct fs_opts *opts);

/*
 * Largest READ, and readahead, in bytes.  A READ is answered by splicing
 * the blob into a pipe, and a pipe holds at most
 * /proc/sys/fs/pipe-max-size (1 MiB by default); libfuse wants room for
 * the reply plus a few pages of slack, or it falls back to reading the
 * data into a buffer and copying it out again.  1008 KiB stays on the
 * splice path.
 */
#define FS_MAX_READ (1008 * 1024)

/* READs and WRITEs of this many bytes or more may take long: the loop
 * hands the device to another thread before a READ that large. */
#define FS_SLOW_IO (128 * 1024)


/* How long the reader polls for the next request before it sleeps, in
 * microseconds, unless -o spin=N (see loop.c and uring.c).  None: on the
 * 2-CPU VMs this is measured on, the polling (a system call each turn,
 * and a vCPU kept from the tools and the journal's thread) came to cost
 * more than the wakeups it saves: cp -r of /usr/include took 3.6 s
 * against 4.5 s with 100 us (medians of 6), and passfs, on the same
 * loop, 3.1 s against 3.7 s. */
#define FS_SPIN_US 0

/* Called from the INIT request, before the kernel has its reply: tune
 * the mount's backing device (readahead, dirty limit) when allowed. */
void fs_bdi_tune(const struct fs *fs);

/* ---- ops.c: listings, shared with history.c ---- */

/* One entry of a directory listing, as READDIR sends it. */
struct fs_dirent {
	char *name;		/* owned by the listing */
	enum fs_kind kind;
	struct stat st;
};

/* The listing of an open directory: made at its first read (offset 0)
 * and kept for the reads that follow; the handle of OPENDIR. */
struct fs_listing {
	struct fs_dirent *e;
	size_t n, cap;
	int filled;
	uint64_t gen;		/* the folder's gone_gen before the fill */
};

/* Add an entry (a copy of @name): 0 or -ENOMEM. */
int fs_listing_add(struct fs_listing *l, const char *name,
		   enum fs_kind kind, const struct stat *st);
/* Drop the entries, keeping the array. */
void fs_listing_clear(struct fs_listing *l);

/*
 * READDIR (@plus 0) or READDIRPLUS of @size bytes at offset @off of the
 * open directory @ino listed by @l: @fill (re)makes @l at offset 0 or when
 * not yet made; the entries sent are "." and "..", then @l's.  With @plus
 * each entry sent gets a node, counted as a lookup, and @fix (may be
 * NULL) may adjust the attributes sent for it.
 */
void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		int plus, struct fs_listing *l,
		int (*fill)(struct fs *fs, struct fs_node *dir,
			    struct fs_listing *l),
		void (*fix)(struct fs *fs, struct fs_node *node,
			    struct stat *st));

/* OPENDIR: reply with a zeroed handle of @size bytes, which begins
 * with its struct fs_listing. */
void fs_opendir(fuse_req_t req, struct fuse_file_info *fi, size_t size);

/* RELEASEDIR: free @l's entries and the handle @h that holds @l. */
void fs_releasedir(fuse_req_t req, struct fs_listing *l, void *h);

/* ---- loop.c ---- */

/*
 * Run the session until it ends, with at most @max_threads threads
 * handling requests, the reader polling for up to @spin_us after each
 * request before it sleeps (see loop.c).  Before any request after INIT is
 * handled: *@killpriv is set when the kernel was told that the daemon
 * clears set-user-ID and set-group-ID bits itself, and *@passthrough,
 * nonzero on the way in to ask for FUSE passthrough, is left nonzero only
 * when the INIT reply asked for it (the kernel can still refuse it, which
 * fs_loop_backing_open() then says).  With @uring, requests come through
 * io_uring queues (uring.c) when the kernel offers it.  0 or a negative
 * errno.
 */
int fs_loop_run(struct fuse_session *se, unsigned max_threads,
		unsigned spin_us, int uring, int *killpriv, int *passthrough);

/*
 * Catch SIGINT, SIGTERM and SIGHUP for fs_loop_run() (instead of
 * libfuse's handlers, which end the session at once): it then calls
 * @drain(@arg) while the workers still serve requests, and ends the
 * session after it.  Call after fuse_set_signal_handlers().
 */
void fs_loop_catch_signals(void (*drain)(void *), void *arg);

/*
 * FUSE passthrough, as Linux 7.40 defines it (libfuse 3.14 predates it).
 * A backing file is registered with the connection (BACKING_OPEN, which
 * needs CAP_SYS_ADMIN) and named by its id in the reply to an OPEN or a
 * CREATE; the kernel then does the file's reads, writes and mmap on it.
 * All the files open at once on one inode must name the same backing id,
 * and none may be open in the page cache's usual mode meanwhile.
 */
#define FS_FUSE_PASSTHROUGH_FLAGS2 (1u << 5)	/* FUSE_PASSTHROUGH >> 32 */
#define FS_FOPEN_PASSTHROUGH (1u << 7)
struct fs_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define FS_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct fs_backing_map)
#define FS_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

/* Register @fd as a backing file: its id (> 0) or a negative errno. */
int fs_loop_backing_open(struct fuse_session *se, int fd);
void fs_loop_backing_close(struct fuse_session *se, int id);

/* fuse_reply_open() and fuse_reply_create() for a file opened in
 * passthrough mode on backing file @backing_id (fi->keep_cache and
 * fi->direct_io do not apply to such a file). */
int fs_loop_reply_open_backing(fuse_req_t req,
			       const struct fuse_file_info *fi,
			       int backing_id);
int fs_loop_reply_create_backing(fuse_req_t req,
				 const struct fuse_entry_param *e,
				 const struct fuse_file_info *fi,
				 int backing_id);

/*
 * What the daemon asks of the kernel in its INIT reply (the writeback
 * cache when @writeback, splice, parallel directory operations, atomic
 * O_TRUNC, FS_MAX_READ, the background limits): replicafs's op_init()
 * and the bench's pass-through floor share it.
 */
void fs_loop_conn_want(struct fuse_conn_info *conn, int writeback);

/*
 * From a request's handler: let another thread read the next request
 * while this one goes on, with work that needs no reply (after the reply)
 * or with a wait (before it); the loop then treats this thread as it
 * treats one that handled a slow request.  Nothing outside the loop's
 * threads, or twice.
 */
void fs_loop_detach(void);

/*
 * Whether the request in @buf may block long enough that others should
 * not wait for it: an FSYNC, a large READ, the wait of a command's
 * refresh (XA_REFRESH).  The loop hands such a request to another thread.
 */
int fs_loop_slow(const struct fuse_buf *buf);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t fs_mono_ns(void);

/* ---- uring.c: FUSE over io_uring ---- */

/* In the INIT request's and reply's flags2: FUSE_OVER_IO_URING >> 32. */
#define FS_FUSE_OVER_IO_URING_FLAGS2 (1u << 9)

struct fs_uring;

/*
 * Set up one io_uring queue per possible CPU on device @dev_fd, each
 * entry with room for @payload bytes (the larger of the connection's
 * max_write and max_pages), and start their threads, which wait for
 * fs_uring_go() to register with the kernel.  Call it before the INIT
 * reply that asks for io_uring is written; @max_slow threads at most
 * handle the requests fs_loop_slow() picks.  While one queue takes
 * requests less than @spin_us apart, the others keep their CPUs awake
 * (small machines; see uring.c).  NULL, having logged why, when it cannot
 * be had.
 */
struct fs_uring *fs_uring_new(struct fuse_session *se, int dev_fd,
			      size_t payload, unsigned max_slow,
			      unsigned spin_us);

/* The INIT reply is written: register the entries. */
void fs_uring_go(struct fs_uring *u);

/* Finish what is in hand and stop the threads (NULL: nothing). */
void fs_uring_stop(struct fs_uring *u);

/* Stop @u if it runs, and free it (NULL: nothing). */
void fs_uring_free(struct fs_uring *u);

/*
 * A reply libfuse writes (@iov: fuse_out_header, then its arguments):
 * when it answers a request that came through a queue, copy it into that
 * request's entry and commit it, returning its length; 0 when it is not
 * such a reply (the caller writes it to the device).
 */
ssize_t fs_uring_reply(struct fs_uring *u, const struct iovec *iov,
		       int count);

/*
 * The same for a reply of @len bytes that libfuse put in pipe @pipe_fd to
 * splice to device @dev_fd: one not for a queue goes to the device.  As
 * splice(2): the bytes moved, or -1 with errno set.
 */
ssize_t fs_uring_reply_pipe(struct fs_uring *u, int pipe_fd, int dev_fd,
			    size_t len);

/* ---- cli.c: commands other than mount ---- */

int fs_cli_main(int argc, char **argv);

/* ---- cli_repl.c: replication commands ---- */

/* Whether @name is one of the replication commands (`replication`,
 * `status`, `wait`, `replicate`), and running one: its exit code. */
int fs_cli_is_repl(const char *name);
int fs_cli_repl(int argc, char **argv);

/* Whether resolved (absolute, canonical) path @inner is @outer or lies
 * below it. */
int fs_path_within(const char *inner, const char *outer);

/* Have the kernel look again at the name where @rel (names below live
 * folder @dir, '/'-separated) leaves the nodes it holds: the first it
 * holds no node for, or the last (ops.c, op_refresh()).  With @wait, for
 * at most FS_NOTIFY_WAIT_MS; call without locks. */
void fs_refresh_path(struct fs *fs, struct fs_node *dir, const char *rel,
		     int wait);

/* Free a node's pending xattrs (fs_node.pxa).  Caller holds n->lock or
 * owns the node. */
void fs_pxa_clear(struct fs_node *n);

/* Whether resolved path @path lies in a replicafs mount, by
 * /proc/self/mountinfo alone (mount.c). */
int fs_path_in_replicafs(const char *path);

/* Say on stderr why @path, whose attributes could not be read (@err, a
 * negative errno), names nothing in a mount, and what to do: no such
 * file; a mount whose daemon stopped (ENOTCONN, ECONNABORTED: the unmount
 * that frees it, naming the mount point when mountinfo shows a replicafs
 * mount above @path, then a new mount); a replicafs mount of another user
 * made without allow_other (EACCES); or no replicafs mount (mount.c). */
void fs_mount_err_say(const char *path, int err);

/* Room for any @n-byte string fs_shell_quote() quotes. */
#define FS_QUOTED_SIZE(n) (4 * (n) + 3)

/* @s as a shell takes it for one word, into @dst of @size bytes (at
 * least FS_QUOTED_SIZE(strlen(@s)), else cut): as it is when it has no
 * character the shell would take apart (a space, '$', '\'', ...), else in
 * single quotes, a ' in it written '\''.  For the commands a message
 * tells the user to run, which a copy must not get wrong.  Returns
 * @dst (mount.c). */
const char *fs_shell_quote(char *dst, size_t size, const char *s);

/* Call @fn for each line of /proc/self/mountinfo, in order, with the mount
 * point (unescaped), the device ("MAJ:MIN") and the file system type,
 * until it returns nonzero: that value, 0 at the end, or -errno when the
 * file cannot be read (mount.c). */
int fs_mountinfo_each(int (*fn)(const char *mnt, const char *dev,
				 const char *type, void *arg),
		      void *arg);

/* ---- cli_remote.c: `remote add|list|remove` ---- */
int fs_cli_remote(int argc, char **argv);

#endif
