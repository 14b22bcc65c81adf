/*
 * loop.c - the session loop: which thread reads the FUSE device and which
 * handles what it read.
 *
 * The store gives every thread its own SQLite connection, and each
 * connection has its own page cache, which SQLite empties whenever the
 * connection starts a read after another connection committed.  libfuse's
 * multi-threaded loop keeps several threads blocked in read() on the
 * device, and the kernel hands each request to the one that has waited
 * longest: consecutive requests of one client (LOOKUP, CREATE, WRITE,
 * FLUSH, ...) land on a different thread each, each finds its
 * connection's cache emptied by the previous commit and reads the b-tree
 * pages again.
 *
 * Here one thread at a time is the reader.  It handles what it reads
 * itself and stays the reader, so a stream of requests runs on one
 * thread and one warm connection, in the order the kernel sent them.
 * Only before a request that may block for long (fs_loop_slow(): a large
 * READ, an FSYNC) does it hand the device to an idle thread, starting one
 * if none is idle and fewer than the maximum run, and after handling that
 * request it goes idle itself.  A handler may do the same once it has
 * replied, with fs_loop_detach() (a WRITE that has hashing left to do).
 *
 *   idle --(signalled: no reader)--> reader --(fast request)--> reader
 *                                      |
 *                                      +--(slow request: hand over)--> busy
 *   busy --(request done)--> idle
 *
 * Shutdown: an unmount makes read() fail with ENODEV and libfuse marks
 * the session exited; a signal handler (fuse_set_signal_handlers()) does
 * the same.  Workers block the signals, so they reach the thread in
 * fs_loop_run(), which sleeps on a semaphore that an exiting worker also
 * posts; it then wakes the idle workers, cancels the reader (cancellation
 * is enabled only around its read()), and joins them all.
 *
 * The price: a request that blocks without being known to (a FLUSH whose
 * commit waits for another process's write lock, say) holds up the
 * others until it is done, as in a single-threaded loop.
 *
 * Waiting: a request that finds the reader asleep in read() pays for a
 * wakeup, and on a virtual machine a vCPU that went idle must first be
 * woken by the host: a GETXATTR round trip took 28 us with the reader
 * asleep, 18 us with it already awake (a minimal daemon, this VM).  Tools
 * send their requests back to back (cp -r: eight per file, a few
 * microseconds of their own work apart), so with -o spin=US, after each
 * request the reader polls the device for up to spin_us (default
 * FS_SPIN_US: none) before it sleeps in poll(2).  A mount that sees no
 * request costs nothing; one that sees an isolated request spins once.  Machines with a single
 * CPU never spin: the client could not run meanwhile.
 *
 * INIT: libfuse 3.14 cannot ask the kernel for FUSE_HANDLE_KILLPRIV_V2,
 * without which every write(2) to a file first asks the daemon for its
 * security.capability attribute (file_remove_privs(): a GETXATTR round
 * trip per write, ten times the cost of a 4 KiB write in the page cache).
 * With it the kernel marks the super block SB_NOSEC, asks once per inode,
 * and leaves the clearing of set-user-ID and set-group-ID bits on write,
 * truncate and chown to the daemon, which ops.c does.  So the loop lets
 * libfuse answer INIT into a pipe put in the device's place for that one
 * reply, adds the flag, and writes the reply to the device itself.
 *
 * Passthrough (Linux 6.9+): asked for, the same rewrite adds
 * FUSE_PASSTHROUGH and a stack depth of one to the reply and takes the
 * writeback cache out of it (the kernel refuses the pair).  A file opened
 * in passthrough mode has its reads, writes and mmap done by the kernel on
 * a backing file the daemon names in the open's reply (fs_loop_backing_*,
 * fs_loop_reply_*_backing below): the daemon sees none of them.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <linux/fuse.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"

struct worker {
	struct loop *loop;
	pthread_t thread;
	struct fuse_buf buf;	/* owned; freed after the join */
	struct worker *next;	/* protected by loop->lock */
	int detached;		/* not the reader since this request */
	int done;		/* returned; protected by loop->lock */
};

/* The worker this thread runs, for fs_loop_detach(). */
static _Thread_local struct worker *this_worker;

struct loop {
	struct fuse_session *se;
	unsigned max_threads;
	int nonblock;		/* the device is: read through receive() */
	int64_t spin_ns;	/* poll this long before sleeping; 0: never */
	int want_uring;		/* ask for FUSE over io_uring */
	unsigned spin_us;	/* as asked (spin_ns is 0 on one CPU) */
	struct fs_uring *uring;	/* set by INIT when the kernel took it */
	int *killpriv;		/* set once INIT asked for KILLPRIV_V2 */
	int *passthrough;	/* in: ask for it; out: 0 unless asked */
	sem_t finish;		/* posted by a worker that sees the end */

	pthread_mutex_t lock;
	/* protected by lock */
	pthread_cond_t idle_cv;	/* idle workers wait here */
	struct worker *workers;
	unsigned nworkers;
	unsigned nidle;
	int reader;		/* some worker reads, or is about to */
	int exiting;
	int error;		/* first receive error, negative errno */
};

int fs_loop_slow(const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;
	const void *arg = in + 1;
	const char *name;
	size_t off;

	if (buf->flags & FUSE_BUF_IS_FD || buf->size < sizeof(*in))
		return 0;
	switch (in->opcode) {
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
		return 1;
	case FUSE_READ:
		return buf->size >= sizeof(*in) + sizeof(struct fuse_read_in) &&
		       ((const struct fuse_read_in *)arg)->size >= FS_SLOW_IO;
	case FUSE_GETXATTR:
		/* A command's refresh waits for the kernel, which may wait
		 * for a request behind it (ops.c). */
		off = sizeof(*in) + sizeof(struct fuse_getxattr_in);
		name = (const char *)buf->mem + off;
		return buf->size >= off + sizeof(XA_REFRESH) &&
		       memcmp(name, XA_REFRESH, sizeof(XA_REFRESH)) == 0;
	default:
		/* WRITEs stay with the reader, so that they are handled in
		 * the order they came; one that leaves hashing to do after
		 * its reply lets another thread read (fs_loop_detach()). */
		return 0;
	}
}

/* The io_uring queues of the session, once INIT has set them up: where
 * the custom writev and splice below send replies.  One session per
 * process. */
static _Atomic(struct fs_uring *) session_uring;

/*
 * Set up FUSE over io_uring for the INIT reply @init (see uring.c): the
 * queues' entries need room for the largest write or reply the reply
 * allows.  On success the reply asks for it.
 */
static void uring_init(struct loop *l, struct fuse_init_out *init)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t payload = init->max_write;

	if (init->flags & FUSE_MAX_PAGES &&
	    (size_t)init->max_pages * page > payload)
		payload = (size_t)init->max_pages * page;
	if (payload < 8192)
		payload = 8192;	/* the kernel's FUSE_MIN_READ_BUFFER */
	l->uring = fs_uring_new(l->se, fuse_session_fd(l->se), payload,
				l->max_threads, l->spin_us);
	if (!l->uring)
		return;
	init->flags |= FUSE_INIT_EXT;
	init->flags2 |= FS_FUSE_OVER_IO_URING_FLAGS2;
}

/*
 * Let libfuse handle the INIT request in @buf, adding
 * FUSE_HANDLE_KILLPRIV_V2, and passthrough when asked, to its reply (see
 * the top).  Runs before any
 * other request is read, so nothing else writes to the device meanwhile.
 * Where anything fails the reply goes out as libfuse made it.
 */
static void process_init(struct loop *l, const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;
	const struct fuse_init_in *arg = (const void *)(in + 1);
	char reply[sizeof(struct fuse_out_header) +
		   sizeof(struct fuse_init_out)];
	struct fuse_out_header *out = (struct fuse_out_header *)reply;
	struct fuse_init_out *init = (struct fuse_init_out *)(out + 1);
	int fd = fuse_session_fd(l->se), dev = -1, p[2] = { -1, -1 };
	int pt = *l->passthrough, uring;
	ssize_t n = -1;

	if (buf->size < sizeof(*in) + offsetof(struct fuse_init_in, flags2) +
			    sizeof(arg->flags2) ||
	    !(arg->flags & FUSE_HANDLE_KILLPRIV_V2)) {
		*l->passthrough = 0;
		fuse_session_process_buf(l->se, buf);	/* an older kernel */
		return;
	}
	if (pt && (!(arg->flags & FUSE_INIT_EXT) ||
		   !(arg->flags2 & FS_FUSE_PASSTHROUGH_FLAGS2))) {
		log_info("this kernel has no FUSE passthrough: the daemon "
			 "reads and writes files itself");
		pt = 0;
	}
	uring = l->want_uring && (arg->flags & FUSE_INIT_EXT) &&
		(arg->flags2 & FS_FUSE_OVER_IO_URING_FLAGS2);
	/* What op_init() sees: it leaves the writeback cache out for
	 * passthrough.  Cleared below if the reply cannot ask for it. */
	*l->passthrough = pt;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) ||
	    (dev = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    dup3(p[1], fd, O_CLOEXEC) < 0) {
		log_warn("INIT: cannot redirect the reply: %s",
			 strerror(errno));
		*l->passthrough = 0;
		fuse_session_process_buf(l->se, buf);
		goto out;
	}
	fuse_session_process_buf(l->se, buf);
	*l->passthrough = 0;
	if (dup3(dev, fd, O_CLOEXEC) < 0) {
		/* The device is gone from its number: nothing can work. */
		log_err("INIT: cannot put the device back: %s",
			strerror(errno));
		fuse_session_exit(l->se);
		goto out;
	}
	n = read(p[0], reply, sizeof(reply));
	if (n >= (ssize_t)(sizeof(*out) + offsetof(struct fuse_init_out,
						      max_background)) &&
	    (size_t)n == out->len && out->error == 0) {
		init->flags |= FUSE_HANDLE_KILLPRIV_V2;
		*l->killpriv = 1;
		if (pt && (size_t)n == sizeof(reply)) {
			init->flags &= ~FUSE_WRITEBACK_CACHE;
			init->flags |= FUSE_INIT_EXT;
			init->flags2 |= FS_FUSE_PASSTHROUGH_FLAGS2;
			init->unused[0] = 1;	/* max_stack_depth */
			*l->passthrough = 1;
			log_info("FUSE passthrough: the kernel reads and "
				 "writes files open for writing itself");
		}
		if (uring && (size_t)n == sizeof(reply))
			uring_init(l, init);
	}
	if (n > 0 && write(fd, reply, (size_t)n) != n) {
		log_err("INIT: cannot reply: %s", strerror(errno));
		fs_uring_free(l->uring);
		l->uring = NULL;
	}
	if (l->uring) {
		atomic_store(&session_uring, l->uring);
		l->spin_ns = 0;	/* the reader sees only FORGETs now */
		fs_uring_go(l->uring);
	}
out:
	if (dev >= 0)
		close(dev);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
}

static int is_init(const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;

	return !(buf->flags & FUSE_BUF_IS_FD) && buf->size >= sizeof(*in) &&
	       in->opcode == FUSE_INIT;
}

static void *worker_main(void *arg);

int64_t fs_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Read the next request into @buf as fuse_session_receive_buf() does (the
 * device is non-blocking once spinning is on): poll the device until
 * @since + spin_ns, then sleep in poll(2), with cancellation enabled
 * only there.
 */
static int receive(struct loop *l, struct fuse_buf *buf, int64_t since)
{
	struct pollfd p = { .fd = fuse_session_fd(l->se), .events = POLLIN };
	int res;

	for (;;) {
		res = fuse_session_receive_buf(l->se, buf);
		if (res != -EAGAIN)
			return res;
		if (fs_mono_ns() - since < l->spin_ns)
			continue;
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		res = poll(&p, 1, -1);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (res < 0 && errno != EINTR)
			return -errno;
		if (res < 0 && fuse_session_exited(l->se))
			return -EINTR;	/* woken to end (fs_loop_run()) */
		since = 0;	/* woken: read without spinning */
	}
}

/* Start a worker; caller holds loop->lock. */
static int worker_start_locked(struct loop *l)
{
	struct worker *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return -ENOMEM;
	w->loop = l;
	err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err) {
		free(w);
		log_warn("cannot start a FUSE thread: %s", strerror(err));
		return -err;
	}
	w->next = l->workers;
	l->workers = w;
	l->nworkers++;
	return 0;
}

/* Some worker must read: wake an idle one or start one.  Caller holds
 * loop->lock and has cleared l->reader. */
static void hand_over_locked(struct loop *l)
{
	if (l->nidle) {
		pthread_cond_signal(&l->idle_cv);
		return;
	}
	if (l->nworkers < l->max_threads && worker_start_locked(l) == 0)
		return;
	/* No thread to spare: the next request waits for one to finish. */
}

static void end_locked(struct loop *l, int err)
{
	if (err && !l->error)
		l->error = err;
	l->exiting = 1;
	pthread_cond_broadcast(&l->idle_cv);
	sem_post(&l->finish);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loop *l = w->loop;
	int64_t since = 0;
	int res, slow, mine = 0;

	this_worker = w;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_mutex_lock(&l->lock);
	for (;;) {
		if (!mine) {
			while (l->reader && !l->exiting) {
				l->nidle++;
				pthread_cond_wait(&l->idle_cv, &l->lock);
				l->nidle--;
			}
			if (l->exiting)
				break;
			l->reader = 1;
		}
		pthread_mutex_unlock(&l->lock);

		if (l->nonblock) {
			res = receive(l, &w->buf, since);
		} else {
			pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
			res = fuse_session_receive_buf(l->se, &w->buf);
			pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		}

		pthread_mutex_lock(&l->lock);
		if (res == -EINTR && !l->exiting &&
		    !fuse_session_exited(l->se)) {
			mine = 1;
			continue;
		}
		if (res <= 0 || l->exiting || fuse_session_exited(l->se)) {
			l->reader = 0;
			end_locked(l, res < 0 && res != -EINTR ? res : 0);
			break;
		}
		slow = fs_loop_slow(&w->buf);
		if (slow) {
			l->reader = 0;
			hand_over_locked(l);
		}
		w->detached = slow;
		pthread_mutex_unlock(&l->lock);

		if (is_init(&w->buf))
			process_init(l, &w->buf);
		else
			fuse_session_process_buf(l->se, &w->buf);
		since = fs_mono_ns();

		pthread_mutex_lock(&l->lock);
		slow = w->detached;
		if (l->exiting || fuse_session_exited(l->se)) {
			if (!slow)
				l->reader = 0;
			end_locked(l, 0);
			break;
		}
		mine = !slow;
	}
	w->done = 1;
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

void fs_loop_conn_want(struct fuse_conn_info *conn, int writeback)
{
	if (writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_SPLICE_READ;	/* writes are hashed */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	/* The kernel takes the smaller of this and the bdi's readahead,
	 * which fs_bdi_tune() raises before the reply is read. */
	conn->max_readahead = FS_MAX_READ;
	conn->max_read = FS_MAX_READ;	/* as mounted: see FS_MAX_READ */
}

void fs_loop_detach(void)
{
	struct worker *w = this_worker;
	struct loop *l;

	if (!w || w->detached)
		return;
	l = w->loop;
	pthread_mutex_lock(&l->lock);
	l->reader = 0;
	hand_over_locked(l);
	w->detached = 1;
	pthread_mutex_unlock(&l->lock);
}

int fs_loop_backing_open(struct fuse_session *se, int fd)
{
	struct fs_backing_map map = { .fd = fd };
	int id = ioctl(fuse_session_fd(se), FS_DEV_IOC_BACKING_OPEN, &map);

	return id < 0 ? -errno : id;
}

void fs_loop_backing_close(struct fuse_session *se, int id)
{
	uint32_t arg = (uint32_t)id;

	if (ioctl(fuse_session_fd(se), FS_DEV_IOC_BACKING_CLOSE, &arg) < 0)
		log_warn("FUSE backing file %d: cannot close: %s", id,
			 strerror(errno));
}

/* libfuse 3.14's fuse_open_out has no backing_id: this is the kernel's
 * (7.40). */
struct fs_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

static uint64_t timeout_sec(double t)
{
	if (t <= 0)
		return 0;
	if (t >= (double)UINT32_MAX)
		return UINT32_MAX;
	return (uint64_t)t;
}

static uint32_t timeout_nsec(double t)
{
	double f = t - (double)timeout_sec(t);

	return t <= 0 || f < 0 ? 0 : (uint32_t)(f * 1.0e9) % 1000000000u;
}

static void open_out(struct fs_open_out *o, const struct fuse_file_info *fi,
		     int backing_id)
{
	memset(o, 0, sizeof(*o));
	o->fh = fi->fh;
	o->open_flags = FS_FOPEN_PASSTHROUGH;
	if (fi->noflush)
		o->open_flags |= FOPEN_NOFLUSH;
	o->backing_id = backing_id;
}

int fs_loop_reply_open_backing(fuse_req_t req,
			       const struct fuse_file_info *fi, int backing_id)
{
	struct fs_open_out o;
	struct iovec iov = { .iov_base = &o, .iov_len = sizeof(o) };

	open_out(&o, fi, backing_id);
	return fuse_reply_iov(req, &iov, 1);
}

int fs_loop_reply_create_backing(fuse_req_t req,
				 const struct fuse_entry_param *e,
				 const struct fuse_file_info *fi,
				 int backing_id)
{
	const struct stat *st = &e->attr;
	struct fuse_entry_out eo;
	struct fs_open_out o;
	struct iovec iov[2] = {
		{ .iov_base = &eo, .iov_len = sizeof(eo) },
		{ .iov_base = &o, .iov_len = sizeof(o) },
	};

	memset(&eo, 0, sizeof(eo));
	eo.nodeid = e->ino;
	eo.generation = e->generation;
	eo.entry_valid = timeout_sec(e->entry_timeout);
	eo.entry_valid_nsec = timeout_nsec(e->entry_timeout);
	eo.attr_valid = timeout_sec(e->attr_timeout);
	eo.attr_valid_nsec = timeout_nsec(e->attr_timeout);
	eo.attr.ino = st->st_ino;
	eo.attr.mode = st->st_mode;
	eo.attr.nlink = (uint32_t)st->st_nlink;
	eo.attr.uid = st->st_uid;
	eo.attr.gid = st->st_gid;
	eo.attr.rdev = (uint32_t)st->st_rdev;
	eo.attr.size = (uint64_t)st->st_size;
	eo.attr.blksize = (uint32_t)st->st_blksize;
	eo.attr.blocks = (uint64_t)st->st_blocks;
	eo.attr.atime = (uint64_t)st->st_atim.tv_sec;
	eo.attr.mtime = (uint64_t)st->st_mtim.tv_sec;
	eo.attr.ctime = (uint64_t)st->st_ctim.tv_sec;
	eo.attr.atimensec = (uint32_t)st->st_atim.tv_nsec;
	eo.attr.mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	eo.attr.ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	open_out(&o, fi, backing_id);
	return fuse_reply_iov(req, iov, 2);
}

/* SIGUSR1 wakes a worker from read() or poll() at the end of a session
 * (EINTR: no SA_RESTART), where pthread_cancel() made AddressSanitizer
 * report its own sigaltstack at the thread's exit (google/sanitizers
 * #1399) when a signal ended the session. */
static void on_wake(int sig)
{
	(void)sig;
}

/* What fs_loop_catch_signals() set up, and whether a signal came. */
static volatile sig_atomic_t term_caught;
static void (*term_drain)(void *);
static void *term_arg;

static void on_term(int sig)
{
	(void)sig;
	term_caught = 1;
}

void fs_loop_catch_signals(void (*drain)(void *), void *arg)
{
	struct sigaction sa;

	term_drain = drain;
	term_arg = arg;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* The session's device I/O, through which libfuse writes every reply:
 * a reply to a request that came through an io_uring queue goes back
 * there (uring.c). */
static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}

static ssize_t io_writev(int fd, struct iovec *iov, int count,
			 void *userdata)
{
	struct fs_uring *u = atomic_load(&session_uring);
	ssize_t n;

	(void)userdata;
	if (u && (n = fs_uring_reply(u, iov, count)) > 0)
		return n;
	return writev(fd, iov, count);
}

static ssize_t io_splice_send(int fdin, off_t *offin, int fdout,
			      off_t *offout, size_t len, unsigned int flags,
			      void *userdata)
{
	struct fs_uring *u = atomic_load(&session_uring);

	(void)userdata;
	if (u)
		return fs_uring_reply_pipe(u, fdin, fdout, len);
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io session_io = {
	.read = io_read,
	.writev = io_writev,
	.splice_send = io_splice_send,
};

int fs_loop_run(struct fuse_session *se, unsigned max_threads,
		unsigned spin_us, int uring, int *killpriv, int *passthrough)
{
	struct loop l;
	struct worker *w, *next;
	struct sigaction sa;
	sigset_t block, old;
	int err, fd = fuse_session_fd(se), fl, tries, left = 0;

	memset(&l, 0, sizeof(l));
	l.se = se;
	l.max_threads = max_threads ? max_threads : 1;
	l.killpriv = killpriv;
	l.passthrough = passthrough;
	l.want_uring = uring;
	l.spin_us = spin_us;
	/* After fuse_session_mount(): the same device, read and written
	 * through session_io. */
	err = fuse_session_custom_io(se, &session_io, fd);
	if (err)
		return err;
	if (spin_us && sysconf(_SC_NPROCESSORS_ONLN) > 1) {
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0) {
			l.nonblock = 1;
			l.spin_ns = (int64_t)spin_us * 1000;
		} else
			log_warn("cannot make the FUSE device non-blocking: "
				 "%s; not spinning", strerror(errno));
	}
	if (sem_init(&l.finish, 0, 0))
		return -errno;
	pthread_mutex_init(&l.lock, NULL);
	pthread_cond_init(&l.idle_cv, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	/* Workers inherit a mask without the exit signals: those go to
	 * this thread, whose sem_wait() they interrupt. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	pthread_mutex_lock(&l.lock);
	err = worker_start_locked(&l);
	pthread_mutex_unlock(&l.lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	/* A signal that lands between the test and the wait only sets the
	 * flag: wake once a second to look at it. */
	while (err == 0 && !fuse_session_exited(se)) {
		struct timespec ts;

		pthread_mutex_lock(&l.lock);
		if (l.exiting) {
			pthread_mutex_unlock(&l.lock);
			break;
		}
		pthread_mutex_unlock(&l.lock);
		if (term_caught) {
			/* The workers serve what the drain asks of the
			 * kernel (the writes its cache holds) first. */
			log_info("signal: ending the session");
			if (term_drain)
				term_drain(term_arg);
			fuse_session_exit(se);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec++;
		sem_timedwait(&l.finish, &ts);
	}

	fuse_session_exit(se);	/* what a woken worker looks at */
	pthread_mutex_lock(&l.lock);
	l.exiting = 1;
	pthread_cond_broadcast(&l.idle_cv);
	/* A worker in read() or poll() is woken by SIGUSR1, sent again
	 * every 20 ms: one may have looked at the session just before and
	 * not be blocked yet.  After 5 s, cancelled (only a thread in read()
	 * or poll() has cancellation enabled). */
	for (tries = 0; tries < 250; tries++) {
		for (left = 0, w = l.workers; w; w = w->next)
			if (!w->done) {
				pthread_kill(w->thread, SIGUSR1);
				left++;
			}
		if (!left)
			break;
		pthread_mutex_unlock(&l.lock);
		usleep(20000);
		pthread_mutex_lock(&l.lock);
	}
	for (w = l.workers; left && w; w = w->next)
		if (!w->done)
			pthread_cancel(w->thread);
	pthread_mutex_unlock(&l.lock);
	for (w = l.workers; w; w = next) {
		next = w->next;
		pthread_join(w->thread, NULL);
		free(w->buf.mem);
		free(w);
	}
	/* The queues' threads commit what they hold before the replies
	 * stop going to them. */
	fs_uring_stop(l.uring);
	atomic_store(&session_uring, NULL);
	fs_uring_free(l.uring);
	if (!err)
		err = l.error;
	pthread_cond_destroy(&l.idle_cv);
	pthread_mutex_destroy(&l.lock);
	sem_destroy(&l.finish);
	return err;
}
