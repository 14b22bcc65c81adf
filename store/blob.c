/*
 * blob.c - the file side of the store: blobs, staging files, hashing,
 * trash and garbage collection.
 *
 * A blob is an immutable file blobs/xx/HASH (mode 0444) whose name is the
 * SHA-256 of its content; xx is the first two hex digits of HASH, so no
 * directory holds more than 1/256 of the blobs.  A writer gets a staging
 * file: an O_TMPFILE (no name, so a crash leaves nothing), or where the
 * file system lacks O_TMPFILE a named file staging/tmp.XXXXXX that
 * garbage collection removes if a crash leaves it.
 *
 * Where an O_TMPFILE is made decides where its inode, the future blob's,
 * is allocated: ext4 takes it from the (flex) group of the directory it
 * is made in, scanning that group's free inodes from the start, and where
 * the file system has no journal it steps over every inode freed in the
 * last minutes (recently_deleted()).  Made in one directory, every
 * staging file costs a scan of every blob the last `rm -rf` of a store
 * freed, up to hundreds of microseconds each.  So staging files are made
 * in the 256 fan-out directories in turn, and blobs/ carries the
 * FS_TOPDIR_FL flag from the store's creation, so that ext4's Orlov
 * allocator spreads those directories over the groups as it spreads top
 * level directories: the scans are short and the groups fill evenly.
 * blob_place()
 * gives the staging file its blob name with linkat() through
 * /proc/self/fd, so content is never copied and a blob appears complete
 * or not at all (invariant 1 in store.c).  Two writers with the same
 * content share one blob: the second finds it in place and drops its own.
 *
 * Blobs leave through trash/ (invariant 3): blob_unref() moves a blob no
 * row names any more into trash/ inside the transaction, and the caller
 * either restores it (ROLLBACK) or unlinks it (after COMMIT).  Trash names
 * carry the pid and a counter, so two transactions never share one.
 */
#include "store/blob_i.h"
#include "store/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_CHUNK (1 << 20)

/* ---- paths ---------------------------------------------------------- */

void store_blob_path(const struct store *st, const char *sha256, char *buf,
		     size_t size)
{
	snprintf(buf, size, "%s/blobs/%.2s/%s", st->dir, sha256, sha256);
}

/*
 * Blob @sha is not in place: if a process died between moving it into
 * trash/ and COMMIT, and no open has collected it yet, move it back to
 * @path.  Always safe: a live transaction that finds its trash file gone
 * merely logs it, and at worst the blob is an orphan for the next
 * collection.  1 if a blob was moved back.
 */
static int trash_recover(struct store *st, const char *sha, const char *path)
{
	char dir[PATH_MAX], from[PATH_MAX + 256];
	struct dirent *de;
	int found = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/trash", st->dir);
	d = opendir(dir);
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		if (strncmp(de->d_name, sha, 64) || de->d_name[64] != '.')
			continue;
		snprintf(from, sizeof(from), "%s/%s", dir, de->d_name);
		found = !rename(from, path);
	}
	closedir(d);
	if (found)
		log_warn("store: blob %s taken back from trash", sha);
	return found;
}

int store_blob_open(struct store *st, const char *sha256, int *fd_out)
{
	char path[PATH_MAX];
	int fd;

	if (!sha_valid(sha256))
		return -EINVAL;
	store_blob_path(st, sha256, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && atomic_load(&st->j.unapplied) &&
	    store_journal_settle(st, NULL, NULL) == 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);	/* journaled */
	if (fd < 0 && errno == ENOENT && trash_recover(st, sha256, path))
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_err("store: open blob %s: %s", sha256, strerror(errno));
		return -errno;
	}
	*fd_out = fd;
	return 0;
}

/* 0 when blob @sha256 hashed to @got, else -EIO (logged). */
static int blob_damage(const char *sha256, const char *got)
{
	if (strcmp(got, sha256) == 0)
		return 0;
	log_err("store: blob %s holds other content (SHA-256 %s): it is "
		"damaged, and what is read or written from it fails "
		"(replicafs check --deep lists such blobs)", sha256, got);
	return -EIO;
}

/* Whether @fd, @size bytes of blob @sha256 (or a whole copy of it),
 * holds what that name says, when @size is at most @max (larger: not
 * looked at): 0, or -EIO (logged). */
static int blob_verify(int fd, const char *sha256, uint64_t size,
		       uint64_t max)
{
	char got[65];
	int err;

	if (size > max || !strcmp(sha256, BLOB_EMPTY_SHA))
		return 0;
	err = store_hash_fd(fd, got);
	if (err)
		return -EIO;	/* logged */
	return blob_damage(sha256, got);
}

int store_blob_open_sized(struct store *st, const char *sha256,
			  uint64_t size, int *fd_out)
{
	struct stat sb;
	int err;

	err = store_blob_open(st, sha256, fd_out);
	if (err)
		return err == -ENOENT ? -EIO : err;	/* logged */
	if (fstat(*fd_out, &sb) || (uint64_t)sb.st_size != size) {
		log_err("store: blob %s has %lld bytes where its version has "
			"%llu: it is damaged (replicafs check lists such "
			"blobs)", sha256, (long long)sb.st_size,
			(unsigned long long)size);
		err = -EIO;
	} else {
		err = blob_verify(*fd_out, sha256, size, STORE_VERIFY_MAX);
	}
	if (err) {
		close(*fd_out);
		*fd_out = -1;
	}
	return err;
}

/* ---- hashing -------------------------------------------------------- */

struct store_hash {
	EVP_MD_CTX *ctx;
};

/* SHA-256 fetched once: EVP_sha256() makes every EVP_DigestInit_ex()
 * look the implementation up again (about 10,000 instructions, as much
 * as hashing a 4 KiB file). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

struct store_hash *store_hash_new(void)
{
	struct store_hash *h = malloc(sizeof(*h));
	const EVP_MD *md;

	if (!h)
		return NULL;
	pthread_once(&sha256_once, sha256_fetch);
	md = sha256_md ? sha256_md : EVP_sha256();
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, md, NULL)) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	return h;
}

void store_hash_update(struct store_hash *h, const void *buf, size_t len)
{
	EVP_DigestUpdate(h->ctx, buf, len);
}

void store_hash_final(struct store_hash *h, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int n = 0, i;

	EVP_DigestFinal_ex(h->ctx, md, &n);
	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
	store_hash_free(h);
}

int store_hash_mem(const void *buf, size_t len, char hex[65])
{
	struct store_hash *h = store_hash_new();

	if (!h)
		return -ENOMEM;
	store_hash_update(h, buf, len);
	store_hash_final(h, hex);
	return 0;
}

void store_hash_free(struct store_hash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

/* The first extent of @fd that holds data at or after @pos and before
 * @end: [*@data, *@hole), *@hole no further than @end.  1 when there is
 * none (holes to the end, or the file ends first).  Where the file system
 * has no SEEK_DATA, all of [@pos, @end) is data. */
static int next_data(int fd, uint64_t pos, uint64_t end, uint64_t *data,
		     uint64_t *hole)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;

	if (d < 0 && errno == ENXIO)
		return 1;
	if (d < 0) {
		*data = pos;
		*hole = end;
		return 0;
	}
	if ((uint64_t)d >= end)
		return 1;
	h = lseek(fd, d, SEEK_HOLE);
	*data = (uint64_t)d;
	*hole = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
	return 0;
}

/* Zeros to hash where a file has a hole: read, a hole costs the kernel a
 * page of zeros in the page cache, written one by one, which on our VM
 * made hashing a sparse file five times slower than hashing its bytes. */
static const unsigned char zeros[64 * 1024];

static void hash_zeros(struct store_hash *h, uint64_t len)
{
	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);

		store_hash_update(h, zeros, n);
		len -= n;
	}
}

int store_hash_range(struct store_hash *h, int fd, uint64_t off,
		     uint64_t len, uint64_t *done)
{
	uint64_t end = len == UINT64_MAX ? UINT64_MAX : off + len;
	uint64_t data, hole;
	struct stat sb;
	char *buf = NULL;
	ssize_t n;
	int err = 0;

	*done = 0;
	while (off < end) {
		if (next_data(fd, off, end, &data, &hole)) {
			/* holes to the end of the file, or to @end */
			if (fstat(fd, &sb) < 0) {
				err = -errno;
				break;
			}
			data = (uint64_t)sb.st_size < end ? (uint64_t)sb.st_size
							  : end;
			hole = data;
		}
		if (data > off) {
			hash_zeros(h, data - off);
			*done += data - off;
			off = data;
		}
		if (off >= hole)
			break;
		if (!buf && !(buf = malloc(HASH_CHUNK))) {
			err = -ENOMEM;
			break;
		}
		while (off < hole) {
			n = pread(fd, buf,
				  hole - off < HASH_CHUNK ? (size_t)(hole - off)
							  : HASH_CHUNK,
				  (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				err = -errno;
				goto out;
			}
			if (n == 0)
				goto out;	/* the end of the file */
			store_hash_update(h, buf, (size_t)n);
			off += (uint64_t)n;
			*done += (uint64_t)n;
		}
	}
out:
	free(buf);
	return err;
}

int store_hash_fd(int fd, char hex[65])
{
	struct store_hash *h = store_hash_new();
	uint64_t done;
	int err;

	if (!h)
		return -ENOMEM;
	err = store_hash_range(h, fd, 0, UINT64_MAX, &done);
	if (err) {
		log_err("store: read to hash: %s", strerror(-err));
		store_hash_free(h);
		return err;
	}
	store_hash_final(h, hex);
	return 0;
}

/* ---- staging -------------------------------------------------------- */

/* Set once this process has made a named staging file (no O_TMPFILE):
 * until then no staging fd can have a name to remove. */
static atomic_int named_staging;

/* Fan-out directory of the next staging file (see the top). */
static atomic_uint stage_turn;

/*
 * The name of staging fd @fd when it has one (the fallback without
 * O_TMPFILE) into @buf: 1 if named, 0 if not.
 */
static int stage_name(struct store *st, int fd, char *buf, size_t size)
{
	char proc[64], prefix[PATH_MAX];
	ssize_t n;

	if (!atomic_load(&named_staging))
		return 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, size - 1);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	snprintf(prefix, sizeof(prefix), "%s/staging/tmp.", st->dir);
	if (strncmp(buf, prefix, strlen(prefix)))
		return 0;
	return !strstr(buf, " (deleted)");
}

void stage_close(struct store *st, int fd)
{
	char name[PATH_MAX];

	if (fd < 0)
		return;
	if (stage_name(st, fd, name, sizeof(name)))
		unlink(name);
	close(fd);
}

void store_stage_abort(struct store *st, int fd)
{
	stage_close(st, fd);
}

/* Copy [@off, @off + @len) of @src to the same offsets of @dst: with
 * copy_file_range() where the kernel can, else by read and write.  The
 * count copied, short where @src ends first, or a negative errno. */
static int64_t copy_extent(int src, int dst, off_t off, uint64_t len)
{
	char buf[65536];
	loff_t in = off, out = off;
	uint64_t done = 0;
	ssize_t n, w;
	int plain = 0;

	while (done < len) {
		uint64_t want = len - done;

		if (!plain) {
			n = copy_file_range(src, &in, dst, &out,
					    want > (1u << 30) ? 1u << 30 : want,
					    0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0) {
				done += (uint64_t)n;
				continue;
			}
			if (n < 0 && errno != EXDEV && errno != EINVAL &&
			    errno != ENOSYS && errno != EOPNOTSUPP &&
			    errno != EBADF)
				return -errno;
			/* Not between these files, or 0, which some file
			 * systems answer before the end: read and write. */
			plain = 1;
			continue;
		}
		n = pread(src, buf, want < sizeof(buf) ? want : sizeof(buf),
			  in);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;	/* the end of @src */
		for (w = 0; w < n;) {
			ssize_t m = pwrite(dst, buf + w, (size_t)(n - w),
					   out + w);

			if (m < 0 && errno == EINTR)
				continue;
			if (m < 0)
				return -errno;
			w += m;
		}
		in += n;
		out += n;
		done += (uint64_t)n;
	}
	return (int64_t)done;
}

/* The most store_copy_watched() copies before it tells how far it is. */
#define COPY_PIECE (4 << 20)

int store_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done,
			  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

int store_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, (const char *)buf + done, len - done,
			   (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

int store_copy_watched(int src, int dst, uint64_t len, uint64_t *copied,
		       void (*progress)(void *arg, uint64_t upto), void *arg)
{
	uint64_t end = len, pos = 0, data, hole, want;
	struct stat sb;
	int64_t n;

	if (fstat(src, &sb) < 0)
		return -errno;
	if ((uint64_t)sb.st_size < end)
		end = (uint64_t)sb.st_size;
	if (ioctl(dst, FICLONE, src) == 0)
		goto size;	/* a reflink: shared blocks, holes and all */
	while (pos < end) {
		if (next_data(src, pos, end, &data, &hole)) {
			/* Holes to the end, or @src cut meanwhile. */
			if (fstat(src, &sb) == 0 && (uint64_t)sb.st_size < end)
				end = (uint64_t)sb.st_size;
			break;
		}
		want = hole - data;
		if (progress && want > COPY_PIECE)
			want = COPY_PIECE;	/* the rest next round */
		n = copy_extent(src, dst, (off_t)data, want);
		if (n < 0)
			return (int)n;
		if ((uint64_t)n < want) {
			end = data + (uint64_t)n;	/* cut */
			break;
		}
		pos = data + want;
		if (progress)
			progress(arg, pos);
	}
size:
	if (ftruncate(dst, (off_t)end) < 0)
		return -errno;
	if (copied)
		*copied = end;
	return 0;
}

int store_copy(int src, int dst, uint64_t len, uint64_t *copied)
{
	return store_copy_watched(src, dst, len, copied, NULL, NULL);
}

/* A new, empty O_TMPFILE staging file in the next fan-out directory, or
 * -1 with errno set. */
static int stage_tmpfile(struct store *st)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/blobs/%02x", st->dir,
		 atomic_fetch_add(&stage_turn, 1) & 0xff);
	/* Born read-only, as a blob is (the fd stays writable): placing
	 * it then needs no fchmod(). */
	return open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0444);
}

/*
 * The staging pool.  Making an O_TMPFILE costs tens of microseconds that
 * a mount's request loop would otherwise spend before its reply (a
 * CREATE, a commit's copy), while the CPUs idle between requests.  So a
 * mount asks for a pool (store_stage_pool()): a thread keeps up to
 * pool_want empty staging files made, and store_stage_new() takes one
 * when there is one.  They have no name, so a crash leaves nothing; where
 * the file system has no O_TMPFILE the thread stops.  The thread is woken
 * once the pool is half empty and fills it up, rather than once for each
 * file taken (two for each file a tool writes: a wakeup each, on the
 * request's way).
 */
static void *pool_main(void *arg)
{
	struct store *st = arg;
	struct timespec ts;
	int fd, err, filling = 1;

	pthread_mutex_lock(&st->pool.lock);
	for (;;) {
		while (!st->pool.stop &&
		       (st->pool_n >= st->pool_want ||
			(!filling && st->pool_n > st->pool_want / 2))) {
			filling = 0;
			pthread_cond_wait(&st->pool.cv, &st->pool.lock);
		}
		if (st->pool.stop)
			break;
		filling = 1;
		pthread_mutex_unlock(&st->pool.lock);
		fd = stage_tmpfile(st);
		err = fd < 0 ? errno : 0;
		pthread_mutex_lock(&st->pool.lock);
		if (fd < 0) {
			if (err != EMFILE && err != ENFILE && err != ENOSPC) {
				st->pool_want = 0;	/* none to be had */
				break;
			}
			/* out of room: try again in a second */
			deadline_ms(&ts, 1000);
			pthread_cond_timedwait(&st->pool.cv, &st->pool.lock,
					       &ts);
			continue;
		}
		if (st->pool.stop || st->pool_n >= st->pool_want) {
			close(fd);
			continue;
		}
		st->pool_fd[st->pool_n++] = fd;
	}
	pthread_mutex_unlock(&st->pool.lock);
	return NULL;
}

void store_stage_pool(struct store *st, int n)
{
	if (n > STAGE_POOL_MAX)
		n = STAGE_POOL_MAX;
	pthread_mutex_lock(&st->pool.lock);
	if (n > 0 && !st->pool.running) {
		st->pool_want = n;
		if (store_thread_start_locked(&st->pool, pool_main, st))
			st->pool_want = 0;
	}
	pthread_mutex_unlock(&st->pool.lock);
}

void stage_pool_stop(struct store *st)
{
	store_thread_stop(&st->pool);
	while (st->pool_n > 0)
		close(st->pool_fd[--st->pool_n]);
	while (st->limbo_n > 0)
		close(st->limbo_fd[--st->limbo_n]);
}

/*
 * Reuse.  An O_TMPFILE dropped is an inode freed, and on ext4 without a
 * journal each new inode is looked for past those freed in the last 60 s
 * (360 s while their inode block is unwritten: recently_deleted(), which
 * reads each candidate's inode block): a mount that made and dropped a
 * staging file per small file spent a tenth of its time there, and more
 * the more it had just dropped.  So a staging file that held a file's content while it was
 * open, and whose commit took a copy, comes back here
 * (store_stage_recycle()) and is emptied and put in the pool instead of
 * being closed.
 *
 * Only a file no one else has open is emptied: a write lease is granted
 * only to a sole opener.  The kernel closes a passthrough handle's backing
 * file a moment after it sends the RELEASE, so a file still held is kept
 * in limbo, oldest first, and taken from there by the next
 * store_stage_new() once the lease is granted.  One held for
 * STAGE_LIMBO_MS (by a mapping, say) is closed, as one that does not fit,
 * and so is one larger than STAGE_REUSE_MAX, whose inode costs little
 * beside its bytes and whose truncate would hold the pool's lock.
 */
#define STAGE_REUSE_MAX (1 << 20)
#define STAGE_LIMBO_MS 2000

int store_stage_held(int fd)
{
	if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
		fcntl(fd, F_SETLEASE, F_UNLCK);
		return 0;
	}
	return errno == EAGAIN ? 1 : -1;
}

/*
 * Empty staging file @fd for reuse, its offset at 0: 0, or -1.  On ext4
 * a truncate to size 0 marks the inode to have its blocks allocated and
 * written out at the next close of any file open on it (auto_da_alloc,
 * for programs that rewrite a file in place without fsync), and the next
 * close is that of the next writer's backing file: each small file then
 * cost a write to the disk at its close (create of 10,000 files of 4 KiB:
 * 45% slower than with no reuse).  Opening and closing the file here,
 * while it is empty, takes that mark off at no cost.
 */
static int stage_empty(int fd)
{
	char proc[64];
	int fd2;

	if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET) != 0)
		return -1;	/* a write() starts at the offset */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	fd2 = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd2 >= 0)
		close(fd2);
	return 0;
}

/* Add empty staging file @fd to the pool: 0, or -1 when there is no room.
 * Caller holds pool.lock. */
static int pool_put_locked(struct store *st, int fd)
{
	if (!st->pool.running || st->pool.stop ||
	    st->pool_n >= STAGE_POOL_MAX)
		return -1;
	st->pool_fd[st->pool_n++] = fd;
	return 0;
}

void store_stage_recycle(struct store *st, int fd)
{
	struct stat sb;
	int drop = -1, held;

	if (fd < 0)
		return;
	if (atomic_load(&named_staging) || fstat(fd, &sb) ||
	    sb.st_nlink != 0 || !S_ISREG(sb.st_mode) ||
	    (sb.st_mode & 07777) != 0444 || sb.st_uid != geteuid() ||
	    sb.st_size > STAGE_REUSE_MAX) {
		stage_close(st, fd);
		return;
	}
	held = store_stage_held(fd);
	if (held < 0 || (!held && stage_empty(fd))) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&st->pool.lock);
	if (!held) {
		if (pool_put_locked(st, fd))
			drop = fd;
	} else if (!st->pool.running || st->pool.stop) {
		drop = fd;
	} else {
		if (st->limbo_n == STAGE_LIMBO_MAX) {
			drop = st->limbo_fd[0];
			st->limbo_n--;
			memmove(st->limbo_fd, st->limbo_fd + 1,
				sizeof(int) * (size_t)st->limbo_n);
			memmove(st->limbo_ms, st->limbo_ms + 1,
				sizeof(int64_t) * (size_t)st->limbo_n);
		}
		st->limbo_fd[st->limbo_n] = fd;
		st->limbo_ms[st->limbo_n++] = mono_ms();
	}
	pthread_mutex_unlock(&st->pool.lock);
	if (drop >= 0)
		close(drop);
}

/* Move what limbo holds that no one else does any more to the pool, and
 * close what was held too long.  Caller holds pool.lock. */
static void limbo_sweep_locked(struct store *st)
{
	int64_t now;
	int i, j;

	if (!st->limbo_n)
		return;
	now = mono_ms();
	for (i = j = 0; i < st->limbo_n; i++) {
		int fd = st->limbo_fd[i];

		if (store_stage_held(fd) == 0) {
			if (stage_empty(fd) || pool_put_locked(st, fd))
				close(fd);
			continue;
		}
		if (now - st->limbo_ms[i] > STAGE_LIMBO_MS) {
			close(fd);
			continue;
		}
		st->limbo_fd[j] = fd;
		st->limbo_ms[j++] = st->limbo_ms[i];
	}
	st->limbo_n = j;
}

/* An empty staging file from the pool, or -1. */
static int pool_take(struct store *st)
{
	int fd = -1;

	pthread_mutex_lock(&st->pool.lock);
	limbo_sweep_locked(st);
	if (st->pool_n > 0) {
		fd = st->pool_fd[--st->pool_n];
		if (st->pool_n <= st->pool_want / 2)
			pthread_cond_signal(&st->pool.cv);
	}
	pthread_mutex_unlock(&st->pool.lock);
	return fd;
}

int store_stage_new(struct store *st, const char *seed, uint64_t seed_len,
		    int *fd_out)
{
	return store_stage_new_fd(st, seed, -1, seed_len, fd_out, NULL);
}

/* Every SEED_LOG_MS at most, a line on the staging files not seeded:
 * one per write to a file with a version, on a full disk without
 * passthrough, made 12,000 lines in 10 minutes. */
#define SEED_LOG_MS 10000

static void seed_failed(struct store *st, const char *seed, int err)
{
	uint64_t left_out;

	if (!log_limit_fail(&st->seed_log, mono_ms(), SEED_LOG_MS, &left_out))
		return;
	if (left_out)
		log_err("store: seed staging file from %s: %s (and %llu more "
			"times since the last line)", seed, strerror(-err),
			(unsigned long long)left_out);
	else
		log_err("store: seed staging file from %s: %s (more of these "
			"are counted, and logged once every %d s)", seed,
			strerror(-err), SEED_LOG_MS / 1000);
}

/*
 * The check of a large seed on a thread (store_stage_new_fd()).  Two hold
 * it, the thread and the staging file's owner; the last to let go frees
 * it.  The thread hashes the blob a piece at a time and stops early once
 * the owner has dropped it.
 */
#define CHECK_ASYNC_MIN (4 << 20)
#define CHECK_PIECE (16 << 20)

struct store_check {
	pthread_mutex_t lock;
	pthread_cond_t cv;	/* done */
	int fd;			/* the blob, the thread's */
	char sha[65];
	uint64_t size;
	int refs;		/* protected by lock */
	int done;		/* protected by lock */
	int dropped;		/* protected by lock */
	int err;		/* protected by lock */
};

/* Let go of @c; the last one frees it.  Called with c->lock held. */
static void check_unref_locked(struct store_check *c)
{
	if (--c->refs > 0) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void *check_main(void *arg)
{
	struct store_check *c = arg;
	struct store_hash *h = store_hash_new();
	uint64_t off = 0, piece, done;
	char got[65];
	int err = h ? 0 : -ENOMEM, dropped = 0;

	while (!err && off < c->size) {
		pthread_mutex_lock(&c->lock);
		dropped = c->dropped;
		pthread_mutex_unlock(&c->lock);
		if (dropped)
			break;
		piece = c->size - off < CHECK_PIECE ? c->size - off
						    : CHECK_PIECE;
		err = store_hash_range(h, c->fd, off, piece, &done);
		if (!err && done != piece)
			err = -EIO;	/* cut: fstat said otherwise */
		off += done;
	}
	if (err && !dropped)
		log_err("store: check blob %s: %s", c->sha, strerror(-err));
	if (h && !err && !dropped) {
		store_hash_final(h, got);
		err = blob_damage(c->sha, got);
	} else if (h) {
		store_hash_free(h);
	}
	close(c->fd);
	pthread_mutex_lock(&c->lock);
	c->err = err ? -EIO : 0;
	c->done = 1;
	pthread_cond_broadcast(&c->cv);
	check_unref_locked(c);
	return NULL;
}

/* Hash blob @sha of @size bytes, open at @fd (given over), on a thread:
 * the check, or NULL where no thread could be started (@fd then is still
 * the caller's). */
static struct store_check *check_start(int fd, const char *sha,
				       uint64_t size)
{
	struct store_check *c = calloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t t;
	int ok;

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->fd = fd;
	memcpy(c->sha, sha, 64);
	c->size = size;
	c->refs = 2;
	ok = pthread_attr_init(&attr) == 0;
	if (ok) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ok = pthread_create(&t, &attr, check_main, c) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!ok) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return NULL;
	}
	return c;
}

int store_check_busy(struct store_check *c)
{
	int busy;

	pthread_mutex_lock(&c->lock);
	busy = !c->done;
	pthread_mutex_unlock(&c->lock);
	return busy;
}

int store_check_wait(struct store_check *c)
{
	int err;

	pthread_mutex_lock(&c->lock);
	while (!c->done)
		pthread_cond_wait(&c->cv, &c->lock);
	err = c->err;
	check_unref_locked(c);
	return err;
}

void store_check_drop(struct store_check *c)
{
	pthread_mutex_lock(&c->lock);
	c->dropped = 1;
	check_unref_locked(c);
}

int store_stage_new_fd(struct store *st, const char *seed, int seed_fd,
		       uint64_t seed_len, int *fd_out,
		       struct store_check **check)
{
	char path[PATH_MAX];
	int fd, src = -1, err = 0;

	*fd_out = -1;
	if (check)
		*check = NULL;
	if (seed && !sha_valid(seed))
		return -EINVAL;
	fd = pool_take(st);
	if (fd < 0)
		fd = stage_tmpfile(st);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR ||
		       errno == EINVAL)) {
		atomic_store(&named_staging, 1);
		snprintf(path, sizeof(path), "%s/staging/tmp.XXXXXX",
			 st->dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0 && fchmod(fd, 0444)) {
			err = -errno;
			stage_close(st, fd);
			log_err("store: new staging file: %s", strerror(-err));
			return err;
		}
	}
	if (fd < 0) {
		err = -errno;
		log_err("store: new staging file: %s", strerror(-err));
		return err;
	}
	if (seed) {
		struct stat sb;
		uint64_t size, left_out;

		if (seed_fd >= 0)
			src = fcntl(seed_fd, F_DUPFD_CLOEXEC, 0);
		if (seed_fd >= 0 && src < 0)
			err = -errno;
		else if (seed_fd < 0)
			err = store_blob_open(st, seed, &src);
		if (!err && fstat(src, &sb))
			err = -errno;
		if (err)
			goto out;
		/* A damaged blob would become a new version (an append)
		 * whose hash is right for the wrong bytes.  A whole copy is
		 * hashed, whatever its size; else only a small blob. */
		size = (uint64_t)sb.st_size;
		if (seed_len < size)
			err = blob_verify(src, seed, size, STORE_VERIFY_MAX);
		if (err)
			goto out;
		err = store_copy(src, fd, seed_len, NULL);
		if (err) {
			seed_failed(st, seed, err);
			goto out;
		}
		if (log_limit_ok(&st->seed_log, &left_out))
			log_info("store: staging files are seeded again (%llu "
				 "failures not logged)",
				 (unsigned long long)left_out);
		/* A large whole copy: its source is hashed on a thread,
		 * while the writer goes on, and the version waits for it.
		 * The copy holds the bytes the hash reads, from the same
		 * page cache. */
		if (seed_len >= size && check && size >= CHECK_ASYNC_MIN &&
		    strcmp(seed, BLOB_EMPTY_SHA) != 0) {
			*check = check_start(src, seed, size);
			if (*check)
				src = -1;	/* the check's now */
		}
		if (seed_len >= size && (!check || !*check))
			err = blob_verify(fd, seed, size, UINT64_MAX);
		if (err)
			goto out;
	}
	*fd_out = fd;
out:
	if (src >= 0)
		close(src);
	if (err)
		stage_close(st, fd);
	return err;
}

/* ---- placing -------------------------------------------------------- */

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, err = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

int blob_place(struct store *st, int fd, const char *sha, int durable)
{
	char path[PATH_MAX], proc[64];
	int err;

	/* No stat() first: a blob already there makes linkat() fail with
	 * EEXIST, and then it is shared. */
	store_blob_path(st, sha, path, sizeof(path));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW)) {
		if (errno == EEXIST)
			return 0;	/* an identical blob: share it */
		err = -errno;
		goto fail;
	}
	if (strcmp(sha, BLOB_EMPTY_SHA))	/* that one is always kept */
		conn_placed(st);
	if (durable) {
		err = fsync_dir_of(path);
		if (err)
			goto fail;
	}
	return 0;
fail:
	log_err("store: place blob %s: %s", sha, strerror(-err));
	return err;
}

int blob_place_mem(struct store *st, const void *buf, size_t len,
		   char sha_out[65])
{
	struct store_hash *h;
	size_t done = 0;
	ssize_t n;
	int fd, err;

	h = store_hash_new();
	if (!h)
		return -ENOMEM;
	store_hash_update(h, buf, len);
	store_hash_final(h, sha_out);
	err = store_stage_new(st, NULL, 0, &fd);
	if (err)
		return err;
	while (done < len) {
		n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			log_err("store: write staging file: %s",
				strerror(-err));
			goto out;
		}
		done += n;
	}
	err = blob_place(st, fd, sha_out, 0);
out:
	stage_close(st, fd);
	return err;
}

/* ---- trash ---------------------------------------------------------- */

void trash_init(struct trash *t)
{
	memset(t, 0, sizeof(*t));
}

void trash_release(struct trash *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->items[i].name);
	free(t->items);
	trash_init(t);
}

/* Whether a version names blob @sha: 1, 0 or a negative errno. */
static int sha_referenced(struct conn *c, const char *sha, const char *what)
{
	sqlite3_stmt *s = stmt_get(c, ST_SHA_REFERENCED);
	int err;

	if (!s)
		return -EIO;
	bind_text(s, 1, sha, -1);
	err = stmt_step(c, s, what);
	stmt_done(s);
	return err;
}

int blob_unref(struct store *st, struct conn *c, const char *sha,
	       struct trash *t)
{
	char path[PATH_MAX], name[PATH_MAX];
	struct trash_item *items;
	int err;

	if (!sha || !strcmp(sha, BLOB_EMPTY_SHA))
		return 0;
	err = sha_referenced(c, sha, "blob referenced");
	if (err)
		return err < 0 ? err : 0;	/* still referenced */
	if (t->n == t->cap) {
		items = realloc(t->items, (t->cap * 2 + 4) * sizeof(*items));
		if (!items)
			return -ENOMEM;
		t->items = items;
		t->cap = t->cap * 2 + 4;
	}
	store_blob_path(st, sha, path, sizeof(path));
	snprintf(name, sizeof(name), "%s/trash/%s.%d.%llu", st->dir, sha,
		 (int)getpid(),
		 (unsigned long long)atomic_fetch_add(&st->trash_seq, 1));
	t->items[t->n].name = strdup(name);
	if (!t->items[t->n].name)
		return -ENOMEM;
	if (rename(path, name)) {
		err = -errno;
		free(t->items[t->n].name);
		if (err == -ENOENT) {
			log_warn("store: blob %s was already gone", sha);
			return 0;
		}
		log_err("store: move blob %s to trash: %s", sha,
			strerror(-err));
		return err;
	}
	snprintf(t->items[t->n].sha, sizeof(t->items[t->n].sha), "%s", sha);
	t->n++;
	return 0;
}

void trash_restore(struct store *st, struct trash *t)
{
	char path[PATH_MAX];
	size_t i;

	for (i = t->n; i-- > 0;) {
		store_blob_path(st, t->items[i].sha, path, sizeof(path));
		if (rename(t->items[i].name, path))
			log_err("store: restore blob %s from trash: %s",
				t->items[i].sha, strerror(errno));
	}
	trash_release(t);
}

void trash_empty(struct store *st, struct trash *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (unlink(t->items[i].name))
			log_warn("store: unlink %s: %s", t->items[i].name,
				 strerror(errno));
	trash_release(t);
}

int blob_drop_unnamed(struct store *st, struct conn *c, const char *sha)
{
	char path[PATH_MAX];
	int err;

	if (!strcmp(sha, BLOB_EMPTY_SHA))
		return 0;
	/* Every linkat() into blobs/ happens inside a write transaction,
	 * so under ours no writer is between placing this blob (or finding
	 * it in place) and naming it. */
	err = tx_begin(c);
	if (err)
		return err;
	err = sha_referenced(c, sha, "blob referenced");
	if (err)
		goto out;	/* named meanwhile, or an error */
	store_blob_path(st, sha, path, sizeof(path));
	if (unlink(path) && errno != ENOENT) {
		err = -errno;
		log_warn("store: unlink unnamed blob %s: %s", sha,
			 strerror(-err));
	}
out:
	tx_rollback(c);	/* it wrote nothing */
	return err < 0 ? err : 0;
}

/* ---- creation, garbage collection ----------------------------------- */

static int mkdir_ok(const char *path)
{
	if (mkdir(path, 0700) && errno != EEXIST) {
		log_err("store: mkdir %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Mark directory @path FS_TOPDIR_FL (chattr +T), best effort: where the
 * file system knows the flag, the directories made in it are spread over
 * the disk (see the top of this file). */
static void topdir_mark(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags;

	if (fd < 0)
		return;
	if (!ioctl(fd, FS_IOC_GETFLAGS, &flags) && !(flags & FS_TOPDIR_FL)) {
		flags |= FS_TOPDIR_FL;
		if (ioctl(fd, FS_IOC_SETFLAGS, &flags))
			log_debug("store: chattr +T %s: %s", path,
				  strerror(errno));
	}
	close(fd);
}

int blob_dirs_init(struct store *st)
{
	static const char *const dirs[] = { "blobs", "staging", "trash" };
	char path[PATH_MAX];
	struct stat sb;
	unsigned i;
	int err, fd;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", st->dir, dirs[i]);
		err = mkdir_ok(path);
		if (err)
			return err;
		if (i == 0)
			topdir_mark(path);
	}
	for (i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/blobs/%02x", st->dir, i);
		err = mkdir_ok(path);
		if (err)
			return err;
	}
	store_blob_path(st, BLOB_EMPTY_SHA, path, sizeof(path));
	if (!stat(path, &sb))
		return 0;
	err = store_stage_new(st, NULL, 0, &fd);
	if (err)
		return err;
	err = blob_place(st, fd, BLOB_EMPTY_SHA, 1);
	stage_close(st, fd);
	return err;
}

/* Remove every entry of directory @path for which @keep (may be NULL)
 * says 0; returns the number removed or a negative errno. */
static int sweep(const char *path, int (*keep)(void *, const char *),
		 void *arg)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0, err = 0, k;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		k = keep ? keep(arg, de->d_name) : 0;
		if (k < 0) {
			err = k;
			break;
		}
		if (k)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0)) {
			err = -errno;
			log_err("store: gc: unlink %s/%s: %s", path,
				de->d_name, strerror(-err));
			break;
		}
		n++;
	}
	closedir(d);
	return err ? err : n;
}

/* A blob is kept when a version names it, and the empty blob always. */
static int blob_keep(void *arg, const char *name)
{
	struct conn *c = arg;

	if (!sha_valid(name))
		return 0;
	if (!strcmp(name, BLOB_EMPTY_SHA))
		return 1;
	return sha_referenced(c, name, "gc");
}

/*
 * A blob in trash/ whose transaction never committed (its process died
 * between the rename into trash/ and COMMIT) is still named by a row:
 * put it back.  Others are unlinked by the sweep.
 */
struct trash_gc {
	struct store *st;
	struct conn *c;
	int restored;
};

static int trash_keep(void *arg, const char *name)
{
	struct trash_gc *g = arg;
	char sha[65], from[PATH_MAX], to[PATH_MAX];
	int err;

	if (strlen(name) < 65 || name[64] != '.')
		return 0;
	memcpy(sha, name, 64);
	sha[64] = '\0';
	err = blob_keep(g->c, sha);
	if (err <= 0)
		return err;
	snprintf(from, sizeof(from), "%s/trash/%s", g->st->dir, name);
	store_blob_path(g->st, sha, to, sizeof(to));
	if (rename(from, to)) {
		log_err("store: gc: restore %s: %s", name, strerror(errno));
		return -errno;
	}
	log_warn("store: gc: blob %s restored from trash", sha);
	g->restored++;
	return 1;
}

int blob_gc(struct store *st, struct conn *c, int blobs)
{
	struct trash_gc g = { .st = st, .c = c };

	char path[PATH_MAX];
	int n, total = 0, i;

	snprintf(path, sizeof(path), "%s/staging", st->dir);
	n = sweep(path, NULL, NULL);
	if (n < 0)
		return n;
	total += n;
	snprintf(path, sizeof(path), "%s/trash", st->dir);
	n = sweep(path, trash_keep, &g);
	if (n < 0)
		return n;
	total += n;
	for (i = 0; blobs && i < 256; i++) {
		snprintf(path, sizeof(path), "%s/blobs/%02x", st->dir, i);
		n = sweep(path, blob_keep, c);
		if (n < 0)
			return n;
		total += n;
	}
	if (total)
		log_info("store: %s: collected %d unreferenced files", st->dir,
			 total);
	return 0;
}
