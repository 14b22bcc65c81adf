/*
 * uring.c - FUSE over io_uring: requests come to the daemon through one
 * io_uring queue per CPU instead of read(2) on /dev/fuse.
 *
 * Why.  A tool on a mount (cp, rsync, tar) sends its requests one at a
 * time and waits for each reply.  Through /dev/fuse the request wakes a
 * daemon thread on whichever CPU it slept on, and the reply wakes the tool
 * there in turn: on a virtual machine whose host lets an idle vCPU halt
 * (haltpoll.guest_halt_poll_ns=0, as here), each of those wakeups waits
 * for the host to run the vCPU again, tens of microseconds, and cp -r
 * sends about eight requests per file.  With FUSE over io_uring (Linux
 * 6.14+, when the fuse module's enable_uring parameter is on) the kernel
 * puts a request in the queue of the CPU the tool runs on, and here that
 * queue's thread is pinned to the same CPU: the tool blocks, the CPU
 * switches to the daemon's thread and back, and no idle vCPU has to be
 * woken.
 *
 * The protocol (include/uapi/linux/fuse.h, fs/fuse/dev_uring.c), which
 * libfuse 3.14 predates:
 *   - INIT: the kernel offers FUSE_OVER_IO_URING in flags2, and the reply
 *     takes it (loop.c adds it to libfuse's reply).
 *   - Each queue (one per possible CPU, numbered as the CPUs are) has
 *     entries, each a header buffer (struct fs_uring_hdr) and a payload
 *     buffer of at least the connection's largest request or reply.  An
 *     entry is registered with an IORING_OP_URING_CMD of
 *     FUSE_IO_URING_CMD_REGISTER on the device; the kernel completes that
 *     command when it has put a request in the entry, with the request's
 *     fuse_in_header in hdr.in_out, its first argument in hdr.op_in and
 *     the rest in the payload (hdr.ent.payload_sz bytes).
 *   - The reply goes back in the same buffers (fuse_out_header in
 *     hdr.in_out, the rest in the payload), with a
 *     FUSE_IO_URING_CMD_COMMIT_AND_FETCH naming the request's unique; that
 *     command also gives the entry back for the next request.
 *   - Requests wait until every queue has an entry registered; FORGETs
 *     and INTERRUPTs still come through /dev/fuse, where loop.c's reader
 *     stays.  Notifications are still written to the device.
 *
 * libfuse knows nothing of it.  A request is laid out as read(2) would
 * have returned it (header, first argument, payload: the first argument's
 * length is what is left of the header's len), just before the payload in
 * the entry's buffer, and given to fuse_session_process_buf().  The reply,
 * which libfuse writes through the session's custom writev or splice
 * (loop.c), comes to fs_uring_reply*(), which copies it into the entry it
 * answers and commits it.
 *
 * Threads.  Each queue has one thread, pinned to its CPU, that alone
 * submits to its ring: a command's completion work runs in the task that
 * submitted it, and the commands of a task that exits are cancelled, so a
 * thread that submitted must live as long as the session.  It handles a
 * request itself unless the request may take long (fs_loop_slow(): an
 * FSYNC, a large READ, the wait of a command's refresh), which goes to a
 * pool of unpinned threads.  Their replies are left on the queue's commit
 * list, and an eventfd whose read is always pending in the ring wakes the
 * queue's thread to commit them.
 *
 *   registered --(request)--> in hand --(reply, commit)--> registered
 *                                 |
 *                                 +--(slow: fs_loop_slow())--> pool
 *   pool --(reply: commit list, eventfd)--> queue thread commits
 *
 * Spinning.  The scheduler wakes a task on an idle CPU rather than on a
 * busy one, so the reply to a tool on CPU 0 would wake it on CPU 1, idle
 * and halted, and the gain would be lost (42 us a round trip, against 8
 * us with CPU 1 kept busy, on the VM of the time).  So with -o spin=US
 * (off by default: FS_SPIN_US), on small machines (URING_SPIN_CPUS),
 * while one queue takes requests less than spin_us apart, the threads of
 * the other queues poll their rings with sched_yield() (spin()), which
 * gives their CPU to any other task that wants it; a thread asleep is
 * woken through its eventfd when another queue takes a request
 * (note_busy()).  The queue of the tool's CPU itself sleeps between its
 * requests, so that the tool runs.
 *
 * What a queue thread does not do: hand its ring to another thread when a
 * handler asks to let others be served (fs_loop_detach(): a WRITE hashing
 * after its reply, without passthrough).  Requests from that CPU wait for
 * it; those from other CPUs do not.
 *
 * Shutdown (fs_uring_stop()): the pool finishes what it holds, then each
 * queue thread is woken through its eventfd, commits what is left and
 * exits.  At an unmount the kernel completes every registered command
 * with ENOTCONN first.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "store/log.h"

/* The kernel's structures (uapi fuse.h 7.42; Debian's headers are older). */
#define FS_URING_IN_OUT_SZ 128
#define FS_URING_OP_IN_SZ 128
#define FS_URING_CMD_REGISTER 1
#define FS_URING_CMD_COMMIT_AND_FETCH 2

struct fs_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;	/* the request's unique */
	uint32_t payload_sz;	/* bytes of payload, both ways */
	uint32_t padding;
	uint64_t reserved;
};

struct fs_uring_hdr {
	char in_out[FS_URING_IN_OUT_SZ];	/* fuse_in/out_header */
	char op_in[FS_URING_OP_IN_SZ];		/* the first argument */
	struct fs_uring_ent_in_out ent;
};

struct fs_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* Entries per queue: requests of one CPU in hand at once. */
#define URING_DEPTH 8
/* Room before the payload for the header and the first argument, laid
 * out as read(2) gives them; a multiple of 8, so that both stay aligned
 * (every first argument is a multiple of 8 bytes). */
#define URING_HEAD 256
/* Machines with at most this many CPUs spin (see spin()). */
#define URING_SPIN_CPUS 4
/* The user_data of the eventfd's read; entries are pointers. */
#define URING_EVENT 1

struct uqueue;

struct uent {
	struct fs_uring_hdr hdr;	/* the kernel reads and writes it */
	struct uqueue *q;
	struct iovec iov[2];	/* header, payload: what REGISTER names */
	char *buf;		/* URING_HEAD bytes, then the payload */
	struct fuse_buf fbuf;	/* the request, as read(2) would give it */
	_Atomic uint64_t unique;	/* the request in hand; 0: none */
	uint64_t commit_id;	/* replied from the pool: what to commit */
	struct uent *next;	/* on q->commits or u->slow */
};

struct uqueue {
	struct fs_uring *u;
	unsigned qid;
	struct io_uring ring;
	int ring_ok;
	int efd;		/* written to wake the thread */
	uint64_t efd_val;	/* the pending read's buffer */
	pthread_t thread;
	int started;
	unsigned live;		/* entries the kernel has not ended */
	_Atomic int64_t busy_ns;	/* when it last took a request */
	atomic_int asleep;	/* in io_uring_wait_cqe() */
	atomic_int kicked;	/* woken to spin, not yet awake */

	pthread_mutex_t lock;
	struct uent *commits;	/* replied from other threads; protected
				 * by lock */
	struct uent ents[URING_DEPTH];
};

struct fs_uring {
	struct fuse_session *se;
	int fd;			/* the device */
	unsigned nq;
	size_t payload;
	unsigned max_slow;
	atomic_int stopping;
	int stopped;		/* fs_uring_stop() ran */
	int64_t spin_ns;	/* keep the other CPUs awake this long */

	pthread_mutex_t lock;
	/* protected by lock */
	pthread_cond_t cv;	/* go, the pool's work, the end */
	int go;			/* 1: register; -1: end before starting */
	struct uent *slow, *slow_tail;	/* requests for the pool */
	pthread_t *pool;
	unsigned npool, nidle;

	struct uqueue *qs;
};

/* The queue whose ring this thread submits to, if any; the entry whose
 * request this thread handles, if any. */
static _Thread_local struct uqueue *owner;
static _Thread_local struct uent *current;

/* Possible CPUs, as the kernel counts its queues (num_possible_cpus()). */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	unsigned lo, hi, n = 0;
	char sep;
	int k;

	if (f) {
		/* "0-3", "0", or "0-3,5-7": the highest number counts. */
		while ((k = fscanf(f, "%u%c", &lo, &sep)) >= 1) {
			hi = lo;
			if (k == 2 && sep == '-' && fscanf(f, "%u%c", &hi,
							   &sep) < 1)
				break;
			if (hi + 1 > n)
				n = hi + 1;
			if (k < 2 || sep == '\n')
				break;
		}
		fclose(f);
	}
	if (!n) {
		long c = sysconf(_SC_NPROCESSORS_CONF);

		n = c > 0 ? (unsigned)c : 1;
	}
	return n;
}

static struct io_uring_sqe *get_sqe(struct uqueue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	return sqe;
}

/* Queue a REGISTER or COMMIT_AND_FETCH of @e on its ring; the owner
 * thread only.  -EBUSY when the ring has no room (it has room for every
 * entry and the eventfd's read, so never). */
static int queue_cmd(struct uent *e, uint32_t op, uint64_t commit_id)
{
	struct uqueue *q = e->q;
	struct io_uring_sqe *sqe = get_sqe(q);
	struct fs_uring_cmd_req req;

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, 128);	/* SQE128: the command is in the second half */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->u->fd;
	sqe->cmd_op = op;
	sqe->user_data = (uint64_t)(uintptr_t)e;
	if (op == FS_URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	memset(&req, 0, sizeof(req));
	req.commit_id = commit_id;
	req.qid = (uint16_t)q->qid;
	memcpy(sqe->cmd, &req, sizeof(req));
	return 0;
}

static int arm_event(struct uqueue *q)
{
	struct io_uring_sqe *sqe = get_sqe(q);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, q->efd, &q->efd_val, sizeof(q->efd_val), 0);
	sqe->user_data = URING_EVENT;
	return 0;
}

static void commit(struct uent *e, uint64_t unique)
{
	struct uqueue *q = e->q;
	int ret;

	if (owner == q) {
		ret = queue_cmd(e, FS_URING_CMD_COMMIT_AND_FETCH, unique);
		if (!ret)
			ret = io_uring_submit(&q->ring);
		if (ret < 0)
			log_err("FUSE io_uring queue %u: cannot commit a "
				"reply: %s", q->qid, strerror(-ret));
		return;
	}
	/* From the pool: the owner commits it. */
	e->commit_id = unique;
	pthread_mutex_lock(&q->lock);
	e->next = q->commits;
	q->commits = e;
	pthread_mutex_unlock(&q->lock);
	if (eventfd_write(q->efd, 1))
		log_err("FUSE io_uring queue %u: cannot wake: %s", q->qid,
			strerror(errno));
}

/* Answer the request in @e: reply header @out, with @body bytes already
 * in the payload buffer. */
static void send_reply(struct uent *e, const struct fuse_out_header *out,
		       size_t body)
{
	memcpy(e->hdr.in_out, out, sizeof(*out));
	e->hdr.ent.payload_sz = (uint32_t)body;
	commit(e, out->unique);
}

/* Commit what the pool replied; the owner thread. */
static void commit_pending(struct uqueue *q)
{
	struct uent *e, *next;

	pthread_mutex_lock(&q->lock);
	e = q->commits;
	q->commits = NULL;
	pthread_mutex_unlock(&q->lock);
	for (; e; e = next) {
		next = e->next;
		if (queue_cmd(e, FS_URING_CMD_COMMIT_AND_FETCH, e->commit_id))
			log_err("FUSE io_uring queue %u: cannot commit a "
				"reply", q->qid);
	}
}

/* The entry whose request has @unique, taken from the in-hand state
 * (so that a second reply finds nothing), or NULL. */
static struct uent *claim(struct fs_uring *u, uint64_t unique)
{
	uint64_t want = unique;
	unsigned i, j;

	if (!unique)
		return NULL;
	if (current && atomic_compare_exchange_strong(&current->unique,
						      &want, 0))
		return current;
	for (i = 0; i < u->nq; i++)
		for (j = 0; j < URING_DEPTH; j++) {
			struct uent *e = &u->qs[i].ents[j];

			want = unique;
			if (atomic_load_explicit(&e->unique,
						 memory_order_relaxed) ==
				    unique &&
			    atomic_compare_exchange_strong(&e->unique, &want,
							   0))
				return e;
		}
	return NULL;
}

/* Copy @len bytes of @iov, from byte @skip on, to @dst. */
static void iov_copy(char *dst, const struct iovec *iov, int count,
		     size_t skip, size_t len)
{
	int i;

	for (i = 0; i < count && len; i++) {
		size_t n = iov[i].iov_len;

		if (skip >= n) {
			skip -= n;
			continue;
		}
		n -= skip;
		if (n > len)
			n = len;
		memcpy(dst, (const char *)iov[i].iov_base + skip, n);
		dst += n;
		len -= n;
		skip = 0;
	}
}

ssize_t fs_uring_reply(struct fs_uring *u, const struct iovec *iov,
		       int count)
{
	struct fuse_out_header out;
	struct uent *e;
	size_t len = 0, body;
	int i;

	for (i = 0; i < count; i++)
		len += iov[i].iov_len;
	if (len < sizeof(out))
		return 0;
	iov_copy((char *)&out, iov, count, 0, sizeof(out));
	e = claim(u, out.unique);
	if (!e)
		return 0;
	body = len - sizeof(out);
	if (body > u->payload) {
		log_err("FUSE io_uring: a reply of %zu bytes is larger than "
			"the %zu the kernel asked room for", body,
			u->payload);
		out.error = -EIO;
		out.len = sizeof(out);
		body = 0;
	}
	iov_copy(e->iov[1].iov_base, iov, count, sizeof(out), body);
	send_reply(e, &out, body);
	return (ssize_t)len;
}

/* Read exactly @len bytes from pipe @fd. */
static int read_full(int fd, char *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t fs_uring_reply_pipe(struct fs_uring *u, int pipe_fd, int dev_fd,
			    size_t len)
{
	struct fuse_out_header out;
	struct uent *e;
	char *tmp;
	int ret;

	if (len < sizeof(out) ||
	    (ret = read_full(pipe_fd, (char *)&out, sizeof(out))) < 0) {
		errno = len < sizeof(out) ? EINVAL : -ret;
		return -1;
	}
	e = claim(u, out.unique);
	if (e && len - sizeof(out) <= u->payload) {
		ret = read_full(pipe_fd, e->iov[1].iov_base,
				len - sizeof(out));
		if (ret < 0) {
			log_err("FUSE io_uring: cannot read a reply: %s",
				strerror(-ret));
			out.error = -EIO;
			len = sizeof(out);
		}
		send_reply(e, &out, len - sizeof(out));
		return (ssize_t)len;
	}
	if (e) {	/* cannot happen: READs are no larger than max_read */
		out.error = -EIO;
		out.len = sizeof(out);
		send_reply(e, &out, 0);
		errno = EIO;
		return -1;
	}
	/* Not a ring's request: to the device, as it came. */
	tmp = malloc(len);
	if (!tmp)
		return -1;
	memcpy(tmp, &out, sizeof(out));
	ret = read_full(pipe_fd, tmp + sizeof(out), len - sizeof(out));
	if (ret == 0 && write(dev_fd, tmp, len) != (ssize_t)len)
		ret = -errno;
	free(tmp);
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return (ssize_t)len;
}

/* Answer the request in @e with @err, without libfuse. */
static void reply_err(struct uent *e, uint64_t unique, int err)
{
	struct fuse_out_header out = {
		.len = sizeof(out), .error = -err, .unique = unique,
	};

	atomic_store(&e->unique, 0);
	send_reply(e, &out, 0);
}

/* Handle the request in @e on this thread. */
static void run_request(struct fs_uring *u, struct uent *e)
{
	current = e;
	fuse_session_process_buf(u->se, &e->fbuf);
	current = NULL;
}

static void *pool_main(void *arg);

/* Give @e to the pool; the owner thread.  It is handled here instead
 * when the pool may be gone (stopping) or has no thread and cannot start
 * one. */
static void to_pool(struct fs_uring *u, struct uent *e)
{
	int here;

	pthread_mutex_lock(&u->lock);
	here = atomic_load(&u->stopping) && !u->nidle;
	if (!here && !u->nidle && u->npool < u->max_slow &&
	    pthread_create(&u->pool[u->npool], NULL, pool_main, u) == 0)
		u->npool++;
	here = here || !u->npool;
	if (!here) {
		e->next = NULL;
		if (u->slow_tail)
			u->slow_tail->next = e;
		else
			u->slow = e;
		u->slow_tail = e;
		if (u->nidle)
			pthread_cond_broadcast(&u->cv);
	}
	pthread_mutex_unlock(&u->lock);
	if (here)
		run_request(u, e);
}

static void *pool_main(void *arg)
{
	struct fs_uring *u = arg;
	struct uent *e;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (!u->slow && !atomic_load(&u->stopping)) {
			u->nidle++;
			pthread_cond_wait(&u->cv, &u->lock);
			u->nidle--;
		}
		e = u->slow;
		if (!e)
			break;	/* stopping, and nothing left */
		u->slow = e->next;
		if (!u->slow)
			u->slow_tail = NULL;
		pthread_mutex_unlock(&u->lock);
		run_request(u, e);
		pthread_mutex_lock(&u->lock);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* Queue @q took a request: the others, asleep, are woken to spin. */
static void note_busy(struct uqueue *q)
{
	struct fs_uring *u = q->u;
	unsigned i;

	if (!u->spin_ns)
		return;
	atomic_store_explicit(&q->busy_ns, fs_mono_ns(), memory_order_relaxed);
	for (i = 0; i < u->nq; i++) {
		struct uqueue *o = &u->qs[i];
		int no = 0;

		if (o != q && atomic_load(&o->asleep) &&
		    atomic_compare_exchange_strong(&o->kicked, &no, 1) &&
		    eventfd_write(o->efd, 1))
			atomic_store(&o->kicked, 0);
	}
}

/* Whether a queue other than @q took a request in the last spin_ns. */
static int others_busy(struct uqueue *q, int64_t now)
{
	struct fs_uring *u = q->u;
	unsigned i;

	for (i = 0; i < u->nq; i++)
		if (&u->qs[i] != q &&
		    now - atomic_load_explicit(&u->qs[i].busy_ns,
					       memory_order_relaxed) <
			    u->spin_ns)
			return 1;
	return 0;
}

/*
 * Keep this CPU busy while another queue takes requests less than
 * spin_ns apart, yielding to anything else that wants the CPU, until a
 * request comes here.  A sched_yield() is a system call, on whose return
 * the kernel runs the work that puts a request in the ring.  The queue
 * of the tool's CPU sleeps between its requests, so that the tool runs
 * there; should a stray request come to another queue (a RELEASE sent
 * from elsewhere), that one goes on spinning all the same, and no queue
 * has to wake another for each file.
 */
static void spin(struct uqueue *q)
{
	struct fs_uring *u = q->u;

	while (!io_uring_cq_ready(&q->ring) && !atomic_load(&u->stopping) &&
	       others_busy(q, fs_mono_ns()))
		sched_yield();
}

/* A request came in @e: lay it out as read(2) gives it and handle it. */
static void handle(struct uqueue *q, struct uent *e)
{
	struct fs_uring *u = q->u;
	struct fuse_in_header in;
	size_t psz = e->hdr.ent.payload_sz, arg0;
	char *mem;

	memcpy(&in, e->hdr.in_out, sizeof(in));
	if (in.len < sizeof(in) + psz || psz > u->payload ||
	    in.len - sizeof(in) - psz > FS_URING_OP_IN_SZ) {
		log_err("FUSE io_uring queue %u: a request of %u bytes with "
			"%zu of payload: cannot be laid out", q->qid, in.len,
			psz);
		reply_err(e, in.unique, EIO);
		return;
	}
	arg0 = in.len - sizeof(in) - psz;
	mem = e->buf + URING_HEAD - arg0 - sizeof(in);
	memcpy(mem, &in, sizeof(in));
	memcpy(mem + sizeof(in), e->hdr.op_in, arg0);
	e->fbuf.mem = mem;
	e->fbuf.size = in.len;
	e->fbuf.flags = 0;
	e->fbuf.fd = -1;
	e->fbuf.pos = 0;
	atomic_store(&e->unique, in.unique);
	note_busy(q);
	if (fs_loop_slow(&e->fbuf)) {
		to_pool(u, e);
		return;
	}
	run_request(u, e);
}

static void pin(struct uqueue *q)
{
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	CPU_SET(q->qid, &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err)	/* an offline CPU, or one the cgroup leaves out */
		log_debug("FUSE io_uring queue %u: not pinned: %s", q->qid,
			  strerror(err));
}

static void *queue_main(void *arg)
{
	struct uqueue *q = arg;
	struct fs_uring *u = q->u;
	struct io_uring_cqe *cqe;
	unsigned i;
	int ret, go;

	owner = q;
	pin(q);
	pthread_mutex_lock(&u->lock);
	while (!u->go)
		pthread_cond_wait(&u->cv, &u->lock);
	go = u->go;
	pthread_mutex_unlock(&u->lock);
	if (go < 0)
		return NULL;

	for (i = 0; i < URING_DEPTH; i++)
		if (queue_cmd(&q->ents[i], FS_URING_CMD_REGISTER, 0) == 0)
			q->live++;
	if (arm_event(q))
		log_err("FUSE io_uring queue %u: cannot wait for the pool",
			q->qid);
	ret = io_uring_submit(&q->ring);
	if (ret < 0) {
		/* The kernel waits for every queue before it sends any
		 * request through them; without this one, none comes. */
		log_err("FUSE io_uring queue %u: cannot register: %s; the "
			"mount's requests will wait: unmount it (-o nouring "
			"does without io_uring)", q->qid, strerror(-ret));
		q->live = 0;
	}

	while (q->live) {
		spin(q);
		atomic_store(&q->asleep, 1);
		ret = io_uring_wait_cqe(&q->ring, &cqe);
		atomic_store(&q->asleep, 0);
		atomic_store(&q->kicked, 0);
		if (ret == -EINTR && !atomic_load(&u->stopping))
			continue;
		if (ret < 0)
			break;
		do {
			uint64_t tag = cqe->user_data;
			int res = cqe->res;

			io_uring_cqe_seen(&q->ring, cqe);
			if (tag == URING_EVENT) {
				commit_pending(q);
				if (atomic_load(&u->stopping))
					goto out;
				if (arm_event(q))
					log_err("FUSE io_uring queue %u: "
						"cannot wait for the pool",
						q->qid);
			} else if (res < 0) {
				/* ENOTCONN: the connection ends. */
				if (res != -ENOTCONN && res != -ECANCELED)
					log_err("FUSE io_uring queue %u: "
						"%s", q->qid,
						strerror(-res));
				q->live--;
			} else {
				handle(q, (struct uent *)(uintptr_t)tag);
			}
		} while (io_uring_peek_cqe(&q->ring, &cqe) == 0);
		io_uring_submit(&q->ring);	/* what the loop queued */
	}
out:
	commit_pending(q);
	io_uring_submit(&q->ring);
	return NULL;
}

static void queue_free(struct uqueue *q)
{
	unsigned i;

	if (q->ring_ok)
		io_uring_queue_exit(&q->ring);
	if (q->efd >= 0)
		close(q->efd);
	for (i = 0; i < URING_DEPTH; i++)
		free(q->ents[i].buf);
	pthread_mutex_destroy(&q->lock);
}

void fs_uring_stop(struct fs_uring *u)
{
	unsigned i;

	if (!u || u->stopped)
		return;
	u->stopped = 1;
	atomic_store(&u->stopping, 1);
	pthread_mutex_lock(&u->lock);
	if (!u->go)
		u->go = -1;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->lock);
	/* The pool first: its replies go to the queues' commit lists. */
	for (i = 0; i < u->npool; i++)
		pthread_join(u->pool[i], NULL);
	for (i = 0; i < u->nq; i++) {
		struct uqueue *q = &u->qs[i];

		if (!q->started)
			continue;
		if (eventfd_write(q->efd, 1))
			pthread_kill(q->thread, SIGUSR1);
		pthread_join(q->thread, NULL);
	}
}

void fs_uring_free(struct fs_uring *u)
{
	unsigned i;

	if (!u)
		return;
	fs_uring_stop(u);
	for (i = 0; i < u->nq; i++)
		queue_free(&u->qs[i]);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cv);
	free(u->pool);
	free(u->qs);
	free(u);
}

struct fs_uring *fs_uring_new(struct fuse_session *se, int dev_fd,
			      size_t payload, unsigned max_slow,
			      unsigned spin_us)
{
	struct io_uring_params p;
	struct fs_uring *u = calloc(1, sizeof(*u));
	unsigned i, j;
	int err = 0;

	if (!u)
		return NULL;
	u->se = se;
	u->fd = dev_fd;
	u->payload = payload;
	u->max_slow = max_slow ? max_slow : 1;
	u->nq = possible_cpus();
	if (sysconf(_SC_NPROCESSORS_ONLN) <= URING_SPIN_CPUS &&
	    sysconf(_SC_NPROCESSORS_ONLN) > 1)
		u->spin_ns = (int64_t)spin_us * 1000;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cv, NULL);
	u->qs = calloc(u->nq, sizeof(*u->qs));
	u->pool = calloc(u->max_slow, sizeof(*u->pool));
	if (!u->qs || !u->pool) {
		free(u->qs);
		free(u->pool);
		free(u);
		return NULL;
	}
	for (i = 0; i < u->nq; i++) {
		u->qs[i].efd = -1;
		pthread_mutex_init(&u->qs[i].lock, NULL);
	}
	for (i = 0; i < u->nq && !err; i++) {
		struct uqueue *q = &u->qs[i];

		q->u = u;
		q->qid = i;
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SQE128;
		err = io_uring_queue_init_params(2 * URING_DEPTH + 2,
						 &q->ring, &p);
		if (err) {
			/* EPERM: kernel.io_uring_disabled, or seccomp. */
			log_info("FUSE over io_uring: cannot set up a ring "
				 "(%s): requests come through /dev/fuse",
				 strerror(-err));
			err = 1;	/* said */
			break;
		}
		q->ring_ok = 1;
		q->efd = eventfd(0, EFD_CLOEXEC);
		if (q->efd < 0) {
			err = -errno;
			break;
		}
		for (j = 0; j < URING_DEPTH && !err; j++) {
			struct uent *e = &q->ents[j];

			e->q = q;
			e->buf = malloc(URING_HEAD + payload);
			if (!e->buf) {
				err = -ENOMEM;
				break;
			}
			e->iov[0].iov_base = &e->hdr;
			e->iov[0].iov_len = sizeof(e->hdr);
			e->iov[1].iov_base = e->buf + URING_HEAD;
			e->iov[1].iov_len = payload;
		}
		if (err)
			break;
		err = -pthread_create(&q->thread, NULL, queue_main, q);
		if (!err)
			q->started = 1;
	}
	if (err) {
		if (err < 0)
			log_warn("FUSE over io_uring: %s; requests come "
				 "through /dev/fuse", strerror(-err));
		fs_uring_free(u);
		return NULL;
	}
	return u;
}

void fs_uring_go(struct fs_uring *u)
{
	pthread_mutex_lock(&u->lock);
	u->go = 1;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->lock);
	log_info("FUSE over io_uring: %u queues, one per CPU", u->nq);
}
