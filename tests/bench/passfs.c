/*
 * passfs.c - a plain pass-through FUSE file system: the floor that
 * `make bench` measures beside replicafs.
 *
 *   passfs [-o passthrough] SOURCE_DIR MOUNTPOINT   (stays in the foreground)
 *
 * What it is for.  A workload on any FUSE mount pays, per system call the
 * kernel cannot answer from its caches, a round trip to the daemon: the
 * request, a daemon thread's wakeup, the reply, the caller's wakeup.  How
 * much that costs depends on the machine (on a small VM, mostly on how fast
 * an idle vCPU wakes).  passfs does nothing but forward each request to
 * SOURCE_DIR, so its time over native is that cost alone, measured in the
 * same run; replicafs's time over passfs's is what replicafs itself adds
 * (versions, hashing, the catalog).  It is not part of replicafs.
 *
 * So that the kernel sends it the same requests as replicafs and they are
 * answered the same way, it runs replicafs's own request loop (fs/loop.c,
 * fs_loop_run(): the same threads and polling, and the same INIT reply,
 * HANDLE_KILLPRIV_V2 included), asks for what replicafs asks for in its
 * INIT (fs_loop_conn_want(): the writeback cache, splice for reads,
 * parallel directory operations, atomic O_TRUNC, max_read and readahead of
 * FS_MAX_READ), mounts with default_permissions, gives entries, negative
 * entries and attributes the same one-second timeout, marks itself an
 * I/O flusher, answers every xattr request with EOPNOTSUPP, as
 * replicafs does outside user.* (so both get one GETXATTR of
 * security.capability per file written), and asks for no FLUSH at the
 * close of a handle that cannot write (FOPEN_NOFLUSH), as replicafs does.  bench.sh tunes its bdi as
 * replicafs tunes its own (fs/mount.c, fs_bdi_tune()).  What is left is
 * the file system's own work: passfs keeps no state but its inodes, and
 * lists directories with READDIR where replicafs answers READDIRPLUS.
 * Unlike replicafs it does not clear set-ID bits on a write, which
 * HANDLE_KILLPRIV_V2 leaves to the daemon: the bench writes no such files.
 *
 * Design, after libfuse's example/passthrough_ll.c: each inode the kernel
 * knows is a struct pnode holding an O_PATH descriptor of the file, found
 * by (st_dev, st_ino) in a hash table so that hard links and repeated
 * lookups share one node, and counted by the kernel's lookups (freed at
 * FORGET).  The node's address is its FUSE inode number.  Operations that
 * need a real descriptor reopen the file through /proc/self/fd.  Open
 * files and directories carry their descriptor (or DIR stream) in fi->fh.
 * It serves one user: files are made by the daemon's credentials.  It
 * holds a descriptor per inode the kernel keeps, so it raises its limit
 * on open files to the hard limit.
 *
 * With -o passthrough it asks the kernel for FUSE passthrough instead of
 * the writeback cache (fs/loop.c), as replicafs does by default, and
 * chooses as replicafs does which files to open in passthrough mode, on
 * a descriptor of the real file (backing_get()): their reads, writes and
 * mmap never reach the daemon.  The first such open of an inode registers
 * its descriptor (opened read-write where it can be, as every later one
 * must share that backing file) and the last release drops it.
 */
#include "fs/fs_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define PASS_TIMEOUT 1.0		/* as replicafs's default timeout */
#define PASS_THREADS 16			/* as replicafs's default threads */
#define PASS_BUCKETS 65536		/* power of two */

struct pnode {
	struct pnode *next;	/* hash chain; protected by pfs.lock */
	int fd;			/* O_PATH, O_NOFOLLOW; -1 for none */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;	/* protected by pfs.lock */
	/* passthrough: the backing id of the inode's files open in that
	 * mode, how many are, and how many are open in the other */
	int backing_id;		/* protected by pfs.lock */
	unsigned nopen;		/* protected by pfs.lock */
	unsigned ncached;	/* protected by pfs.lock */
};

struct pfs {
	struct fuse_session *se;
	int passthrough;	/* asked for; 0 once INIT did not get it */
	int said_passthrough;	/* protected by lock */
	pthread_mutex_t lock;	/* the table, nlookup, backing_id, nopen */
	struct pnode root;	/* never freed; not in the table */
	struct pnode *tab[PASS_BUCKETS];
};

struct pdir {
	DIR *dp;
	off_t off;		/* where dp stands, as telldir() said */
	struct dirent *de;	/* read but not yet given to the kernel */
};

/* fi->fh: the descriptor, and this bit for a file open in passthrough
 * mode. */
#define PASS_FH_PT (1ULL << 32)

static int fh_fd(const struct fuse_file_info *fi)
{
	return (int)(fi->fh & 0xffffffffu);
}

static struct pfs *PFS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct pnode *node(fuse_req_t req, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &PFS(req)->root;
	return (struct pnode *)(uintptr_t)ino;
}

static size_t bucket(dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ (uint64_t)ino;

	h *= 0xff51afd7ed558ccdull;
	return (size_t)(h >> 32) & (PASS_BUCKETS - 1);
}

/* The /proc path of node @n's descriptor, in @buf. */
static const char *proc_path(char *buf, size_t size, const struct pnode *n)
{
	snprintf(buf, size, "/proc/self/fd/%d", n->fd);
	return buf;
}

static int node_stat(const struct pnode *n, struct stat *st)
{
	if (fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return errno;
	return 0;
}

/*
 * Look @name up below @parent and count one kernel lookup of the node
 * found (made on first sight).  0 with @e filled in, or an errno; a name
 * that does not exist gives @e->ino 0, a negative entry.
 */
static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct pfs *fs = PFS(req);
	struct pnode *n, **slot;
	int fd, err;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = PASS_TIMEOUT;
	e->entry_timeout = PASS_TIMEOUT;
	fd = openat(node(req, parent)->fd, name,
		    O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : errno;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) {
		err = errno;
		close(fd);
		return err;
	}
	pthread_mutex_lock(&fs->lock);
	slot = &fs->tab[bucket(e->attr.st_dev, e->attr.st_ino)];
	for (n = *slot; n; n = n->next)
		if (n->dev == e->attr.st_dev && n->ino == e->attr.st_ino)
			break;
	if (n) {
		n->nlookup++;
		pthread_mutex_unlock(&fs->lock);
		close(fd);
	} else {
		n = calloc(1, sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&fs->lock);
			close(fd);
			return ENOMEM;
		}
		n->fd = fd;
		n->dev = e->attr.st_dev;
		n->ino = e->attr.st_ino;
		n->nlookup = 1;
		n->next = *slot;
		*slot = n;
		pthread_mutex_unlock(&fs->lock);
	}
	e->ino = (uintptr_t)n;
	return 0;
}

static void reply_entry_or_err(fuse_req_t req, fuse_ino_t parent,
			       const char *name, int err)
{
	struct fuse_entry_param e;

	if (err == 0)
		err = do_lookup(req, parent, name, &e);
	if (err == 0 && e.ino == 0)
		err = ENOENT;	/* made, then gone */
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void forget_one(struct pfs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct pnode *n = (struct pnode *)(uintptr_t)ino, **p;

	if (ino == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&fs->lock);
	n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
	if (n->nlookup == 0) {
		for (p = &fs->tab[bucket(n->dev, n->ino)]; *p != n;
		     p = &(*p)->next)
			;
		*p = n->next;
	} else {
		n = NULL;
	}
	pthread_mutex_unlock(&fs->lock);
	if (n) {
		close(n->fd);
		free(n);
	}
}

/* ---- Operations ---------------------------------------------------------- */

static void p_init(void *userdata, struct fuse_conn_info *conn)
{
	struct pfs *fs = userdata;

	fs_loop_conn_want(conn, !fs->passthrough);
}

static void p_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err = do_lookup(req, parent, name, &e);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void p_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(PFS(req), ino, nlookup);
	fuse_reply_none(req);
}

static void p_forget_multi(fuse_req_t req, size_t count,
			   struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		forget_one(PFS(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void p_getattr(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct stat st;
	int err = node_stat(node(req, ino), &st);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, PASS_TIMEOUT);
}

static void p_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		      int valid, struct fuse_file_info *fi)
{
	struct pnode *n = node(req, ino);
	char path[64];
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
				  { .tv_nsec = UTIME_OMIT } };
	int res = 0;

	if (valid & FUSE_SET_ATTR_MODE)
		res = fi ? fchmod(fh_fd(fi), attr->st_mode)
			 : chmod(proc_path(path, sizeof(path), n),
				 attr->st_mode);
	if (res == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		res = fchownat(n->fd, "",
			       valid & FUSE_SET_ATTR_UID ? attr->st_uid
							 : (uid_t)-1,
			       valid & FUSE_SET_ATTR_GID ? attr->st_gid
							 : (gid_t)-1,
			       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	if (res == 0 && (valid & FUSE_SET_ATTR_SIZE))
		res = fi ? ftruncate(fh_fd(fi), attr->st_size)
			 : truncate(proc_path(path, sizeof(path), n),
				    attr->st_size);
	if (res == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		res = fi ? futimens(fh_fd(fi), ts)
			 : utimensat(n->fd, "", ts,
				     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	if (res)
		fuse_reply_err(req, errno);
	else
		p_getattr(req, ino, fi);
}

static void p_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t len = readlinkat(node(req, ino)->fd, "", buf, sizeof(buf));

	if (len < 0)
		fuse_reply_err(req, errno);
	else if ((size_t)len == sizeof(buf))
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[len] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

static void p_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode)
{
	int res = mkdirat(node(req, parent)->fd, name, mode);

	reply_entry_or_err(req, parent, name, res ? errno : 0);
}

static void p_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		      const char *name)
{
	int res = symlinkat(link, node(req, parent)->fd, name);

	reply_entry_or_err(req, parent, name, res ? errno : 0);
}

static void p_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int res = unlinkat(node(req, parent)->fd, name, 0);

	fuse_reply_err(req, res ? errno : 0);
}

static void p_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int res = unlinkat(node(req, parent)->fd, name, AT_REMOVEDIR);

	fuse_reply_err(req, res ? errno : 0);
}

static void p_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		     fuse_ino_t newparent, const char *newname,
		     unsigned int flags)
{
	int res = renameat2(node(req, parent)->fd, name,
			    node(req, newparent)->fd, newname, flags);

	fuse_reply_err(req, res ? errno : 0);
}

/* With the writeback cache the kernel reads pages of files opened only for
 * writing, and does appends itself (libfuse's passthrough_ll does the
 * same). */
static int open_flags(int flags)
{
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return (flags & ~(O_APPEND | O_NOFOLLOW)) | O_CLOEXEC;
}

/*
 * Passthrough, as replicafs chooses it (fs/ops.c, handle_open()): an open
 * for writing that finds no file of @n open in the page cache's mode, and
 * any open while a passthrough one is, is in passthrough mode; the others
 * are not.  The backing id for an open of @n whose descriptor is @fd,
 * registering @fd if it is the first in passthrough mode; counts the open.
 * 0 for an open in the page cache's mode, else an id or a negative errno.
 */
static int backing_get(struct pfs *fs, struct pnode *n, int fd, int writable)
{
	int id;

	if (!fs->passthrough)
		return 0;
	pthread_mutex_lock(&fs->lock);
	if (n->nopen == 0 && (!writable || n->ncached)) {
		n->ncached++;
		id = 0;
	} else if (n->nopen == 0) {
		id = fs_loop_backing_open(fs->se, fd);
		if (id > 0)
			n->backing_id = id;
		if (id > 0 && !fs->said_passthrough) {
			fprintf(stderr, "passfs: files open in passthrough "
					"mode\n");
			fs->said_passthrough = 1;
		}
		if (id < 0)
			fprintf(stderr, "passfs: BACKING_OPEN: %s\n",
				strerror(-id));
	} else {
		id = n->backing_id;
	}
	if (id > 0)
		n->nopen++;
	pthread_mutex_unlock(&fs->lock);
	return id;
}

static void backing_put(struct pfs *fs, struct pnode *n, uint64_t fh)
{
	if (!fs->passthrough)
		return;
	pthread_mutex_lock(&fs->lock);
	if (!(fh & PASS_FH_PT)) {
		n->ncached--;
	} else if (--n->nopen == 0) {
		fs_loop_backing_close(fs->se, n->backing_id);
		n->backing_id = 0;
	}
	pthread_mutex_unlock(&fs->lock);
}

/* The descriptor for an open of @path with @flags: read-write where that
 * can be in passthrough mode (the inode's later opens share it). */
static int open_file(struct pfs *fs, int dirfd, const char *path, int flags,
		     mode_t mode)
{
	int fd;

	flags = open_flags(flags);
	if (fs->passthrough && (flags & O_ACCMODE) == O_RDONLY) {
		fd = openat(dirfd, path, (flags & ~O_ACCMODE) | O_RDWR, mode);
		if (fd >= 0 || (errno != EACCES && errno != EROFS &&
				 errno != ETXTBSY))
			return fd;
	}
	return openat(dirfd, path, flags, mode);
}

static void p_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, struct fuse_file_info *fi)
{
	struct pfs *fs = PFS(req);
	struct fuse_entry_param e;
	int fd, err, id;

	fd = open_file(fs, node(req, parent)->fd, name,
		       (int)fi->flags | O_CREAT, mode);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	err = do_lookup(req, parent, name, &e);
	if (err == 0 && e.ino == 0)
		err = ENOENT;
	if (err) {
		close(fd);
		fuse_reply_err(req, err);
		return;
	}
	id = backing_get(fs, node(req, e.ino), fd, 1);
	fi->fh = (uint64_t)fd | (id > 0 ? PASS_FH_PT : 0);
	if (id < 0) {
		fuse_reply_err(req, -id);	/* the kernel forgets e.ino */
		forget_one(fs, e.ino, 1);
		close(fd);
		return;
	}
	if ((id ? fs_loop_reply_create_backing(req, &e, fi, id)
		: fuse_reply_create(req, &e, fi)) == -ENOENT) {
		/* interrupted: no RELEASE will come */
		backing_put(fs, node(req, e.ino), fi->fh);
		forget_one(fs, e.ino, 1);
		close(fd);
	}
}

static void p_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs *fs = PFS(req);
	char path[64];
	int fd, id;

	fd = open_file(fs, AT_FDCWD, proc_path(path, sizeof(path),
					       node(req, ino)),
		       (int)fi->flags, 0);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->keep_cache = 1;	/* no one changes SOURCE_DIR meanwhile */
	/* As replicafs: no FLUSH at the close of a handle that cannot
	 * write (p_flush() would do nothing with it). */
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY &&
		      !(fi->flags & O_TRUNC);
	id = backing_get(fs, node(req, ino), fd,
			 (fi->flags & O_ACCMODE) != O_RDONLY);
	fi->fh = (uint64_t)fd | (id > 0 ? PASS_FH_PT : 0);
	if (id < 0) {
		close(fd);
		fuse_reply_err(req, -id);
		return;
	}
	if ((id ? fs_loop_reply_open_backing(req, fi, id)
		: fuse_reply_open(req, fi)) == -ENOENT) {
		backing_put(fs, node(req, ino), fi->fh);
		close(fd);
	}
}

static void p_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fh_fd(fi);
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void p_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		    size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t res = pwrite(fh_fd(fi), data, size, off);

	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)res);
}

static void p_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd = dup(fh_fd(fi));

	if (fd < 0 || close(fd) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, 0);
}

static void p_release(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	close(fh_fd(fi));
	backing_put(PFS(req), node(req, ino), fi->fh);
	fuse_reply_err(req, 0);
}

static void p_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi)
{
	int res = datasync ? fdatasync(fh_fd(fi)) : fsync(fh_fd(fi));

	fuse_reply_err(req, res ? errno : 0);
}

static void p_opendir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct pdir *d = calloc(1, sizeof(*d));
	int fd, err;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(node(req, ino)->fd, ".", O_RDONLY | O_DIRECTORY |
					      O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		err = errno;
		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		closedir(d->dp);
		free(d);
	}
}

static void p_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct pdir *d = (struct pdir *)(uintptr_t)fi->fh;
	char *buf = calloc(1, size), *p = buf;
	size_t left = size, len;
	struct stat st;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off != d->off) {
		seekdir(d->dp, off);
		d->de = NULL;
		d->off = off;
	}
	for (;;) {
		if (!d->de) {
			errno = 0;
			d->de = readdir(d->dp);
			if (!d->de) {
				if (errno && p == buf) {
					free(buf);
					fuse_reply_err(req, errno);
					return;
				}
				break;
			}
		}
		memset(&st, 0, sizeof(st));
		st.st_ino = d->de->d_ino;
		st.st_mode = (mode_t)d->de->d_type << 12;
		len = fuse_add_direntry(req, p, left, d->de->d_name, &st,
					d->de->d_off);
		if (len > left)
			break;
		p += len;
		left -= len;
		d->off = d->de->d_off;
		d->de = NULL;
	}
	fuse_reply_buf(req, buf, size - left);
	free(buf);
}

static void p_releasedir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct pdir *d = (struct pdir *)(uintptr_t)fi->fh;

	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void p_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (fstatvfs(node(req, ino)->fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static void p_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size)
{
	fuse_reply_err(req, EOPNOTSUPP);
}

static void p_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	fuse_reply_err(req, EOPNOTSUPP);
}

static const struct fuse_lowlevel_ops pass_ops = {
	.init = p_init,
	.lookup = p_lookup,
	.forget = p_forget,
	.forget_multi = p_forget_multi,
	.getattr = p_getattr,
	.setattr = p_setattr,
	.readlink = p_readlink,
	.mkdir = p_mkdir,
	.symlink = p_symlink,
	.unlink = p_unlink,
	.rmdir = p_rmdir,
	.rename = p_rename,
	.create = p_create,
	.open = p_open,
	.read = p_read,
	.write = p_write,
	.flush = p_flush,
	.release = p_release,
	.fsync = p_fsync,
	.opendir = p_opendir,
	.readdir = p_readdir,
	.releasedir = p_releasedir,
	.statfs = p_statfs,
	.getxattr = p_getxattr,
	.listxattr = p_listxattr,
};

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct rlimit rl;
	int killpriv = 0, pt = 0;
	struct pfs *fs;
	char o[160];
	int ret = 1;

	if (argc == 5 && strcmp(argv[1], "-o") == 0 &&
	    strcmp(argv[2], "passthrough") == 0) {
		pt = 1;
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr,
			"usage: %s [-o passthrough] SOURCE_DIR MOUNTPOINT\n",
			argv[0]);
		return 2;
	}
	/* One descriptor per inode the kernel knows: take all we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs) {
		perror("passfs");
		return 1;
	}
	pthread_mutex_init(&fs->lock, NULL);
	fs->passthrough = pt;
	fs->root.fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root.fd < 0) {
		fprintf(stderr, "passfs: %s: %s\n", argv[1], strerror(errno));
		goto out;
	}
	snprintf(o, sizeof(o),
		 "fsname=passfs,subtype=passfs,default_permissions,"
		 "max_read=%d", FS_MAX_READ);
	if (fuse_opt_add_arg(&args, argv[0]) ||
	    fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, o))
		goto out;
	se = fuse_session_new(&args, &pass_ops, sizeof(pass_ops), fs);
	if (!se)
		goto out;
	fs->se = se;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, argv[2])) {
		fprintf(stderr, "passfs: cannot mount on %s\n", argv[2]);
		goto out_signals;
	}
	/* As replicafs (fs/mount.c): its writes to SOURCE_DIR clean the
	 * mount's dirty pages, so they must not wait on them. */
	if (geteuid() == 0)
		prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
	ret = fs_loop_run(se, PASS_THREADS, FS_SPIN_US, 1, &killpriv,
			  &fs->passthrough) ? 1 : 0;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	for (size_t i = 0; i < PASS_BUCKETS; i++) {
		struct pnode *n, *next;

		for (n = fs->tab[i]; n; n = next) {
			next = n->next;
			close(n->fd);
			free(n);
		}
	}
	if (fs->root.fd >= 0)
		close(fs->root.fd);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
	return ret;
}
