/*
 * walvfs.c - "replicafs-wal", a SQLite VFS that writes each commit to the
 * WAL file with one write(2).
 *
 * Why.  SQLite appends a transaction to the WAL one frame at a time and
 * each frame with two xWrite calls, the 24-byte frame header and then the
 * page (wal.c, walWriteOneFrame()).  A commit of ten pages is twenty
 * pwrite(2) calls, about 45 us on our VM, where one write of the same
 * bytes costs about 6 us; a commit of one row into a table with five
 * indexes (seven frames) takes about 30 us less through this VFS.  It
 * wraps SQLite's default VFS.  Files other
 * than WAL files pass straight through; the writes to a WAL file that
 * append to one another are copied into a buffer, which goes to the file
 * with one xWrite of the wrapped VFS, so that the unix VFS's handling of
 * short writes, EINTR and ENOSPC (SQLITE_FULL) still applies, as does
 * the table of system calls that tests can swap (xSetSystemCall).
 *
 * What SQLite does (checked against 3.40's wal.c, walFrames()): it writes
 * a set of frames at increasing offsets, each frame as a 24-byte header,
 * whose bytes 4..7 hold (big-endian) the database size after the commit in
 * the last frame of a transaction and zero in every other, then the page.
 * After the commit frame come, when needed, the rewrite of the headers
 * whose checksums changed (walRewriteChecksums(): a read, then a 24-byte
 * write, per frame) and, with synchronous = FULL on a device without
 * powersafe overwrite, padding frames and an xSync.  Only then does SQLite
 * publish the commit in the wal-index (walIndexWriteHdr()), where other
 * connections find it.  The frames before the commit frame may be written
 * earlier, when pages spill from a full cache; the frames of a transaction
 * that is rolled back stay in the file past the last commit, where no one
 * reads them, until a later transaction writes over them.
 *
 * Invariants, for each WAL file opened with this VFS:
 *
 *  1. The file gets SQLite's writes in the order SQLite made them.  Only a
 *     write that starts where the buffer ends is added to it; any other
 *     write, and every read, sync, truncate, size query, file control,
 *     fetch and close, writes the buffer out first (wal_flush()).  So a
 *     connection reads its own writes, and an xSync covers them.
 *  2. A commit is in the file before SQLite can publish it.  A frame
 *     header with a commit mark puts the file in the committing state;
 *     from the write after it (the commit frame's page) until the write
 *     lock is released, each xWrite writes the buffer out before it
 *     returns, and returns the result of that write (wal_write()).  SQLite
 *     publishes the commit only when all these returned SQLITE_OK: a failed
 *     write fails the commit, and a commit that returned is in the file
 *     (in the page cache: syncing stays SQLite's business).
 *  3. The buffer does not outlive the write transaction: taking or
 *     releasing the WAL write lock (wal-index lock 0, through the main
 *     database file's xShmLock) drops whatever it holds (wal_drop()).  By
 *     2, that can only be what a transaction that did not commit wrote:
 *     one rolled back after its pages spilled, or whose commit failed and
 *     said so.  No one reads it; written later, it could overwrite what
 *     another connection appends at the same offsets in the meantime.
 *     With locking_mode = EXCLUSIVE SQLite makes no lock calls: there,
 *     leftovers are dropped by the first wal-index lock taken or released
 *     without the write lock, which is how that mode ends, or when the
 *     wal-index is unmapped; and the committing state lasts, so commits
 *     after the first are written through, correct but not combined.
 *  4. A failed write of the buffer keeps the buffer (a later write of it
 *     puts the same bytes at the same offsets, which is harmless) and
 *     returns its error to SQLite from the call that made it.  The main
 *     database's xShmBarrier, which SQLite calls just before it publishes
 *     a commit, also writes out what is buffered, as a second line behind
 *     2; it cannot return an error.
 *
 * Why a crash is safe.  A process that dies loses its buffer, that is (by
 * 2) frames of commits that had not returned; recovery stops at the last
 * valid commit frame, so the WAL reads as if the process had died before
 * it wrote them.  Several connections, in one process or several, each
 * write through their own handle; what one reads of another's writes is
 * published commits, which 2 put in the file first, and 3 keeps a handle
 * from writing stale frames over another's.  Power loss is SQLite's
 * business as before: its xSync writes the buffer out first (1).
 *
 * Cost.  One copy of each frame into the buffer, and a buffer of BUF_CAP
 * (128 KiB) per WAL file, allocated at its first write, freed at close.
 * The unix VFS writes at most that much per xWrite, so a larger buffer
 * would buy no fewer system calls: a commit of up to 31 pages of 4 KiB
 * whose pages did not spill costs one write, a larger one a write per
 * 128 KiB.  Restarting the WAL adds one write, for the WAL header, which
 * SQLite syncs at once.
 *
 * Locking.  A connection and its files are used by one thread at a time
 * (SQLITE_OPEN_NOMUTEX, one connection per thread), so the fields of a
 * struct wfile need no lock; the counters are atomic.
 *
 * tests/unit/test_walvfs.c checks visibility across connections, spills,
 * checkpoints, SIGKILL at random moments, a full disk, and that a commit
 * is one write.
 */
#include "store/walvfs.h"
#include "store/log.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_HDR  24 /* bytes in a WAL frame header */
#define WRITE_LOCK 0  /* the wal-index lock of the WAL writer */
/* Most a buffer holds: the most the unix VFS's xWrite takes at once
 * (os_unix.c, seekAndWriteFd(): nBuf &= 0x1ffff), 31 frames of 4 KiB. */
#define BUF_CAP 0x1ffff

enum wfile_kind {
	WF_PLAIN, /* pass-through */
	WF_MAIN_DB,
	WF_WAL,
};

/*
 * One open file: SQLite allocates vfs->szOsFile bytes, this struct then
 * the wrapped VFS's file (real).  Every field belongs to the connection's
 * thread (see Locking above).
 */
struct wfile {
	sqlite3_file base;	    /* what SQLite sees; first */
	sqlite3_io_methods methods; /* base.pMethods: real's shape */
	sqlite3_file *real;	    /* the wrapped VFS's file, after us */
	enum wfile_kind kind;

	/* WF_MAIN_DB */
	struct wfile *wal; /* its WAL while both are open */
	int write_locked;  /* holds wal-index lock WRITE_LOCK */

	/* WF_WAL: bytes [off, off + len) of the file, not yet written */
	struct wfile *db;   /* its main db while both are open */
	unsigned char *buf; /* BUF_CAP bytes or NULL; f_close frees */
	size_t len;
	sqlite3_int64 off;
	int committing; /* invariant 2 */
};

static atomic_ullong n_writes;	/* xWrite calls on WAL files */
static atomic_ullong n_flushes; /* writes that reached them */

unsigned long long walvfs_writes(void)
{
	return atomic_load_explicit(&n_writes, memory_order_relaxed);
}

unsigned long long walvfs_flushes(void)
{
	return atomic_load_explicit(&n_flushes, memory_order_relaxed);
}

#define REAL(f) ((f)->real->pMethods)

/* ---- the WAL buffer ------------------------------------------------- */

static int real_write(struct wfile *f, const void *data, int amt,
		      sqlite3_int64 off)
{
	atomic_fetch_add_explicit(&n_flushes, 1, memory_order_relaxed);
	return REAL(f)->xWrite(f->real, data, amt, off);
}

/* Write the buffer out (invariant 1); on failure keep it (invariant 4). */
static int wal_flush(struct wfile *f)
{
	int rc;

	if (!f->len)
		return SQLITE_OK;
	rc = real_write(f, f->buf, (int)f->len, f->off);
	if (rc == SQLITE_OK)
		f->len = 0;
	return rc;
}

/* Invariant 1: before any call but an appending write, a WAL file's
 * buffer goes out. */
static int flush_first(struct wfile *f)
{
	return f->kind == WF_WAL ? wal_flush(f) : SQLITE_OK;
}

/* Forget the buffer's content and the committing state (invariant 3). */
static void wal_drop(struct wfile *f)
{
	f->len = 0;
	f->committing = 0;
}

/*
 * Add @amt bytes at @off to the buffer, which is empty or ends at @off,
 * and holds at most BUF_CAP - @amt bytes.  Returns -1 when there is no
 * memory for the buffer.
 */
static int wal_append(struct wfile *f, const void *data, int amt,
		      sqlite3_int64 off)
{
	if (!f->buf) {
		f->buf = malloc(BUF_CAP);
		if (!f->buf)
			return -1;
	}
	if (!f->len)
		f->off = off;
	memcpy(f->buf + f->len, data, amt);
	f->len += amt;
	return 0;
}

/* Bytes 4..7 of a frame header: the database size after a commit. */
static int is_commit_header(const void *data, int amt)
{
	const unsigned char *p = data;

	return amt == FRAME_HDR && (p[4] | p[5] | p[6] | p[7]);
}

static int wal_write(struct wfile *f, const void *data, int amt,
		     sqlite3_int64 off)
{
	int flush_after = f->committing;
	int rc;

	atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
	if (is_commit_header(data, amt))
		f->committing = 1;
	if (f->len && (off != f->off + (sqlite3_int64)f->len ||
		       f->len + (size_t)amt > BUF_CAP)) {
		rc = wal_flush(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	if (amt <= BUF_CAP && wal_append(f, data, amt, off) == 0)
		return flush_after ? wal_flush(f) : SQLITE_OK;
	/* Too large for the buffer, or no memory: write it through. */
	rc = wal_flush(f);
	if (rc == SQLITE_OK)
		rc = real_write(f, data, amt, off);
	return rc;
}

/* ---- io methods ------------------------------------------------------ */

static int f_close(sqlite3_file *file)
{
	struct wfile *f = (struct wfile *)file;
	int rc = SQLITE_OK, rc2;

	if (f->kind == WF_WAL) {
		rc = wal_flush(f);
		free(f->buf);
		f->buf = NULL;
		if (f->db)
			f->db->wal = NULL;
	} else if (f->kind == WF_MAIN_DB && f->wal) {
		f->wal->db = NULL;
	}
	rc2 = REAL(f)->xClose(f->real);
	return rc != SQLITE_OK ? rc : rc2;
}

static int f_read(sqlite3_file *file, void *data, int amt, sqlite3_int64 off)
{
	struct wfile *f = (struct wfile *)file;
	int rc = flush_first(f);

	if (rc != SQLITE_OK)
		return rc;
	return REAL(f)->xRead(f->real, data, amt, off);
}

static int f_write(sqlite3_file *file, const void *data, int amt,
		   sqlite3_int64 off)
{
	struct wfile *f = (struct wfile *)file;

	if (f->kind == WF_WAL)
		return wal_write(f, data, amt, off);
	return REAL(f)->xWrite(f->real, data, amt, off);
}

static int f_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct wfile *f = (struct wfile *)file;
	int rc = flush_first(f);

	if (rc != SQLITE_OK)
		return rc;
	return REAL(f)->xTruncate(f->real, size);
}

static int f_sync(sqlite3_file *file, int flags)
{
	struct wfile *f = (struct wfile *)file;
	int rc = flush_first(f);

	if (rc != SQLITE_OK)
		return rc;
	return REAL(f)->xSync(f->real, flags);
}

static int f_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	struct wfile *f = (struct wfile *)file;
	int rc = flush_first(f);

	if (rc != SQLITE_OK)
		return rc;
	return REAL(f)->xFileSize(f->real, size);
}

static int f_lock(sqlite3_file *file, int lock)
{
	struct wfile *f = (struct wfile *)file;

	return REAL(f)->xLock(f->real, lock);
}

static int f_unlock(sqlite3_file *file, int lock)
{
	struct wfile *f = (struct wfile *)file;

	return REAL(f)->xUnlock(f->real, lock);
}

static int f_check_reserved_lock(sqlite3_file *file, int *out)
{
	struct wfile *f = (struct wfile *)file;

	return REAL(f)->xCheckReservedLock(f->real, out);
}

static int f_file_control(sqlite3_file *file, int op, void *arg)
{
	struct wfile *f = (struct wfile *)file;
	int rc = flush_first(f);

	if (rc != SQLITE_OK)
		return rc;
	return REAL(f)->xFileControl(f->real, op, arg);
}

static int f_sector_size(sqlite3_file *file)
{
	struct wfile *f = (struct wfile *)file;

	return REAL(f)->xSectorSize(f->real);
}

static int f_device_characteristics(sqlite3_file *file)
{
	struct wfile *f = (struct wfile *)file;

	return REAL(f)->xDeviceCharacteristics(f->real);
}

static int f_shm_map(sqlite3_file *file, int region, int size, int extend,
		     void volatile **pp)
{
	struct wfile *f = (struct wfile *)file;

	return REAL(f)->xShmMap(f->real, region, size, extend, pp);
}

/* Invariant 3: the WAL write lock bounds the life of the WAL's buffer. */
static int f_shm_lock(sqlite3_file *file, int ofst, int n, int flags)
{
	struct wfile *f = (struct wfile *)file;
	int writer = ofst == WRITE_LOCK && (flags & SQLITE_SHM_EXCLUSIVE);
	int rc;

	if (f->wal && (writer || !f->write_locked))
		wal_drop(f->wal);
	rc = REAL(f)->xShmLock(f->real, ofst, n, flags);
	if (writer)
		f->write_locked = (flags & SQLITE_SHM_LOCK) && rc == SQLITE_OK;
	return rc;
}

/* Invariant 4: a second line behind invariant 2; no error to return. */
static void f_shm_barrier(sqlite3_file *file)
{
	struct wfile *f = (struct wfile *)file;

	if (f->wal)
		(void)wal_flush(f->wal);
	REAL(f)->xShmBarrier(f->real);
}

static int f_shm_unmap(sqlite3_file *file, int delete_flag)
{
	struct wfile *f = (struct wfile *)file;

	if (f->wal && !f->write_locked)
		wal_drop(f->wal);
	return REAL(f)->xShmUnmap(f->real, delete_flag);
}

static int f_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **pp)
{
	struct wfile *f = (struct wfile *)file;
	int rc = flush_first(f);

	if (rc != SQLITE_OK) {
		*pp = NULL;
		return rc;
	}
	return REAL(f)->xFetch(f->real, off, amt, pp);
}

static int f_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	struct wfile *f = (struct wfile *)file;

	return REAL(f)->xUnfetch(f->real, off, p);
}

/*
 * Our methods in the shape of the wrapped file's: its version (up to 3,
 * the last we know) and a NULL wherever it has one, since SQLite tests
 * some of them (no xShmMap: no WAL without exclusive locking).
 */
static void methods_init(struct wfile *f)
{
	const sqlite3_io_methods *r = REAL(f);
	sqlite3_io_methods *m = &f->methods;

	memset(m, 0, sizeof(*m));
	m->iVersion = r->iVersion < 3 ? r->iVersion : 3;
	m->xClose = f_close;
	m->xRead = f_read;
	m->xWrite = f_write;
	m->xTruncate = f_truncate;
	m->xSync = f_sync;
	m->xFileSize = f_file_size;
	m->xLock = f_lock;
	m->xUnlock = f_unlock;
	m->xCheckReservedLock = f_check_reserved_lock;
	m->xFileControl = f_file_control;
	m->xSectorSize = f_sector_size;
	m->xDeviceCharacteristics = f_device_characteristics;
	if (m->iVersion >= 2) {
		m->xShmMap = r->xShmMap ? f_shm_map : NULL;
		m->xShmLock = r->xShmLock ? f_shm_lock : NULL;
		m->xShmBarrier = r->xShmBarrier ? f_shm_barrier : NULL;
		m->xShmUnmap = r->xShmUnmap ? f_shm_unmap : NULL;
	}
	if (m->iVersion >= 3) {
		m->xFetch = r->xFetch ? f_fetch : NULL;
		m->xUnfetch = r->xUnfetch ? f_unfetch : NULL;
	}
}

/* ---- vfs methods ----------------------------------------------------- */

#define ROOT(vfs) ((sqlite3_vfs *)(vfs)->pAppData)

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file,
		  int flags, int *out_flags)
{
	struct wfile *f = (struct wfile *)file;
	struct wfile *db;
	int rc;

	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = ROOT(vfs)->xOpen(ROOT(vfs), name, f->real, flags, out_flags);
	/* SQLite calls xClose, even after a failed xOpen, if pMethods is
	 * set: so set ours exactly when the wrapped file's is. */
	if (!f->real->pMethods)
		return rc;
	methods_init(f);
	f->base.pMethods = &f->methods;
	if (rc != SQLITE_OK)
		return rc;
	if (flags & SQLITE_OPEN_MAIN_DB) {
		f->kind = WF_MAIN_DB;
	} else if ((flags & SQLITE_OPEN_WAL) && name) {
		/* Our main db file (same connection, same VFS), which
		 * SQLite closes after the WAL. */
		db = (struct wfile *)sqlite3_database_file_object(name);
		if (db && db->kind == WF_MAIN_DB && !db->wal) {
			f->kind = WF_WAL;
			f->db = db;
			db->wal = f;
		}
	}
	return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	return ROOT(vfs)->xDelete(ROOT(vfs), name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	return ROOT(vfs)->xAccess(ROOT(vfs), name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return ROOT(vfs)->xFullPathname(ROOT(vfs), name, n, out);
}

static void *v_dl_open(sqlite3_vfs *vfs, const char *name)
{
	return ROOT(vfs)->xDlOpen(ROOT(vfs), name);
}

static void v_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
	ROOT(vfs)->xDlError(ROOT(vfs), n, msg);
}

static void (*v_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	return ROOT(vfs)->xDlSym(ROOT(vfs), h, sym);
}

static void v_dl_close(sqlite3_vfs *vfs, void *h)
{
	ROOT(vfs)->xDlClose(ROOT(vfs), h);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	return ROOT(vfs)->xRandomness(ROOT(vfs), n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
	return ROOT(vfs)->xSleep(ROOT(vfs), us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
	return ROOT(vfs)->xCurrentTime(ROOT(vfs), out);
}

static int v_get_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
	return ROOT(vfs)->xGetLastError(ROOT(vfs), n, msg);
}

static int v_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	return ROOT(vfs)->xCurrentTimeInt64(ROOT(vfs), out);
}

static int v_set_system_call(sqlite3_vfs *vfs, const char *name,
			     sqlite3_syscall_ptr p)
{
	return ROOT(vfs)->xSetSystemCall(ROOT(vfs), name, p);
}

static sqlite3_syscall_ptr v_get_system_call(sqlite3_vfs *vfs, const char *name)
{
	return ROOT(vfs)->xGetSystemCall(ROOT(vfs), name);
}

static const char *v_next_system_call(sqlite3_vfs *vfs, const char *name)
{
	return ROOT(vfs)->xNextSystemCall(ROOT(vfs), name);
}

/* ---- registration ---------------------------------------------------- */

static sqlite3_vfs walvfs; /* written once, under register_once */
static int register_err;
static pthread_once_t register_once = PTHREAD_ONCE_INIT;

#define OR_NULL(root, x, ours) ((root)->x ? (ours) : NULL)

static void register_vfs(void)
{
	sqlite3_vfs *root = sqlite3_vfs_find(NULL);
	sqlite3_vfs *v = &walvfs;
	int rc;

	if (!root) {
		log_err("walvfs: SQLite has no default VFS");
		register_err = -ENOSYS;
		return;
	}
	v->iVersion = root->iVersion < 3 ? root->iVersion : 3;
	v->szOsFile = (int)sizeof(struct wfile) + root->szOsFile;
	v->mxPathname = root->mxPathname;
	v->zName = WALVFS_NAME;
	v->pAppData = root;
	v->xOpen = v_open;
	v->xDelete = v_delete;
	v->xAccess = v_access;
	v->xFullPathname = v_full_pathname;
	v->xDlOpen = OR_NULL(root, xDlOpen, v_dl_open);
	v->xDlError = OR_NULL(root, xDlError, v_dl_error);
	v->xDlSym = OR_NULL(root, xDlSym, v_dl_sym);
	v->xDlClose = OR_NULL(root, xDlClose, v_dl_close);
	v->xRandomness = v_randomness;
	v->xSleep = v_sleep;
	v->xCurrentTime = v_current_time;
	v->xGetLastError = OR_NULL(root, xGetLastError, v_get_last_error);
	if (v->iVersion >= 2)
		v->xCurrentTimeInt64 =
		    OR_NULL(root, xCurrentTimeInt64, v_current_time_int64);
	if (v->iVersion >= 3) {
		v->xSetSystemCall =
		    OR_NULL(root, xSetSystemCall, v_set_system_call);
		v->xGetSystemCall =
		    OR_NULL(root, xGetSystemCall, v_get_system_call);
		v->xNextSystemCall =
		    OR_NULL(root, xNextSystemCall, v_next_system_call);
	}
	rc = sqlite3_vfs_register(v, 0);
	if (rc != SQLITE_OK) {
		log_err("walvfs: register: %s", sqlite3_errstr(rc));
		register_err = rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
}

int walvfs_register(void)
{
	if (pthread_once(&register_once, register_vfs))
		return -EIO;
	return register_err;
}
