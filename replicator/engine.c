/*
 * engine.c - workers that deliver queued versions to their destinations.
 *
 * Design.  The queue lives in the store (store/repl.c): rows are written
 * in the transaction that commits a version, and leased by
 * store_repl_claim().  Each worker loops:
 *
 *   claim due deliveries    --none-->  sleep until kicked (one worker,
 *        |                             the poller, also wakes every
 *        |                             poll_ns for deliveries that fell
 *        |                             due or were queued by another
 *        |                             process; a poller that claims a
 *        |                             full batch wakes the others)
 *        |
 *   open the destination (once per URL, shared by all workers)
 *        |
 *   read the version: blob fd, symlink target, user xattrs
 *        |
 *   put() or delete_marker()   (for each of the claimed deliveries)
 *        |
 *   sync() of each destination that defers its syncs (one per claim)
 *        |
 *   0 ............................ COMPLETED
 *   permanent error ............... FAILED now (fail fast: no retry heals
 *                                   EACCES, a missing destination...)
 *   other error, attempts left .... PENDING again after repl_backoff_ns()
 *   other error, budget spent ..... FAILED, with the last error
 *
 * A delivery that took longer than its rule's threshold is logged, and the
 * bucket's hook command (if any) runs with the details in its
 * environment.  Nothing here holds a lock across a delivery; e->lock
 * protects the destination cache, the counters and the sleep.
 */
#include "replicator/engine.h"
#include "replicator/batch.h"
#include "replicator/dest.h"
#include "store/log.h"

#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A lease longer than any one delivery should take; a delivery of a
 * process that died is due again at once (store_repl_release_dead()). */
#define LEASE_NS (3600LL * 1000 * 1000 * 1000)
/* How often a worker looks for leases of dead processes, and for
 * deliveries past their threshold. */
#define RELEASE_EVERY_NS (1LL * 1000 * 1000 * 1000)

struct dest_slot {
	char *url;
	struct dest *d;		/* NULL when it could not be opened */
	struct dest_slot *next;
};

/* Per destination URL, protected by repl_engine.lock: the workers
 * delivering to it, and whether its deliveries are failing (then each
 * retry after the first is logged at debug level, not once per delivery
 * and attempt: a backlog of thousands while a service is down). */
struct dest_busy {
	char *url;
	int n;
	int failing;
	uint64_t quiet;		/* retries logged at debug level since */
	int failed_told;	/* FAILED deliveries logged as errors since
				 * the last delivery there that succeeded */
	uint64_t failed_quiet;	/* FAILED ones logged at debug level since
				 * the last count of them */
	int64_t failed_count_ns; /* when they were last counted (monotonic) */
	struct dest_busy *next;
};

/* A destination that fails every delivery (permission denied on a bucket,
 * a mirror's disk gone) would fill the log with a line per version: the
 * first FAILED_LOG_MAX of them are logged as errors, the rest at debug
 * level, with their number every FAILED_COUNT_NS and when deliveries
 * there succeed again.  `replicafs status` shows every one. */
#define FAILED_LOG_MAX 5
#define FAILED_COUNT_NS (60 * 1000000000LL)

struct repl_engine {
	struct store *st;
	struct repl_engine_opts o;
	pthread_t *threads;
	int nthreads;
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* with lock: work may be there */
	int stopping;		/* protected by lock */
	int kicked;		/* protected by lock */
	int poller;		/* a worker sleeps with a timeout;
				 * protected by lock */
	int busy;		/* workers delivering; protected by lock */
	uint64_t done, failed;	/* protected by lock */
	int64_t last_release_ns;/* protected by lock */
	struct dest_slot *dests;/* protected by lock */
	struct dest_busy *busy_dests;	/* protected by lock */
	pthread_mutex_t claim_lock;	/* one claim at a time; before lock */
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t repl_backoff_ns(int attempt, int64_t base, int64_t max,
			uint64_t rnd)
{
	int64_t d = base;
	int i;

	for (i = 1; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	if (d < 2)
		return d;
	return d / 2 + (int64_t)(rnd % (uint64_t)(d - d / 2 + 1));
}

/* The open destination of @url, opened on first use; NULL (with @err
 * set) when it cannot be opened.  Owned by the engine. */
static struct dest *dest_get(struct repl_engine *e, const char *url,
			     int *err, char *msg, size_t msglen)
{
	struct dest_slot *s;
	struct dest *d = NULL;

	pthread_mutex_lock(&e->lock);
	for (s = e->dests; s; s = s->next)
		if (!strcmp(s->url, url))
			break;
	if (s && s->d) {
		pthread_mutex_unlock(&e->lock);
		return s->d;
	}
	pthread_mutex_unlock(&e->lock);
	/* Opened without the lock, and again each time until it works: a
	 * destination on a file system that does not answer (a hung mount)
	 * held the lock, and with it every worker, for as long as it hung. */
	*err = dest_open_home(url, e->st, &d, msg, msglen);
	if (*err)
		return NULL;
	pthread_mutex_lock(&e->lock);
	for (s = e->dests; s; s = s->next)
		if (!strcmp(s->url, url))
			break;
	if (s && s->d) {
		/* Another worker opened it meanwhile: share that one. */
		dest_close(d);
		d = s->d;
		goto out;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s)
			s->url = strdup(url);
		if (!s || !s->url) {
			free(s);
			dest_close(d);
			d = NULL;
			*err = -ENOMEM;
			snprintf(msg, msglen, "out of memory");
			goto out;
		}
		s->next = e->dests;
		e->dests = s;
	}
	s->d = d;
out:
	pthread_mutex_unlock(&e->lock);
	return d;
}

/*
 * Deliveries that wait for a retry at a destination whose configuration
 * changed (dest_ops.changed(): a remote added again, or moved) are
 * due now, rather than at the end of a backoff of up to minutes.  Once a
 * second, from a worker.  (A delivery under way at the change that fails
 * after it keeps its backoff.)  A slot, and its destination once opened,
 * stay until the engine stops, and new slots go in front: the walk takes
 * the lock only to read them.
 */
static void due_changed(struct repl_engine *e)
{
	struct dest_slot *s, *next;
	struct dest *d;
	size_t n;
	int woke = 0;

	pthread_mutex_lock(&e->lock);
	next = e->dests;
	pthread_mutex_unlock(&e->lock);
	while ((s = next)) {
		pthread_mutex_lock(&e->lock);
		d = s->d;
		next = s->next;
		pthread_mutex_unlock(&e->lock);
		if (!d || !d->ops->changed || !d->ops->changed(d) ||
		    store_repl_due_now(e->st, s->url, &n) || !n)
			continue;
		log_info("replication: %s: its configuration changed; %zu "
			 "deliveries that waited for a retry are due now",
			 s->url, n);
		woke = 1;
	}
	if (woke) {
		pthread_mutex_lock(&e->lock);
		pthread_cond_broadcast(&e->wake);
		pthread_mutex_unlock(&e->lock);
	}
}

/* Run @hook for a delivery that missed its threshold. */
static void run_hook(const char *hook, const struct store_repl_task *t,
		     int64_t late_ns)
{
	char b[128], k[STORE_KEY_MAX + 32], v[64], d[STORE_URL_MAX + 32];
	char r[STORE_RULE_ID_MAX + 32], s[64];
	char *argv[] = { "/bin/sh", "-c", (char *)hook, NULL };
	char **env;
	size_t n = 0, i;
	pid_t pid;
	int status;

	while (environ[n])
		n++;
	env = calloc(n + 7, sizeof(*env));
	if (!env)
		return;
	for (i = 0; i < n; i++)
		env[i] = environ[i];
	snprintf(b, sizeof(b), "REPLICAFS_BUCKET=%s", t->bucket);
	snprintf(k, sizeof(k), "REPLICAFS_KEY=%s", t->key);
	snprintf(v, sizeof(v), "REPLICAFS_VERSION_ID=%s",
		 t->obj.version_id);
	snprintf(d, sizeof(d), "REPLICAFS_DESTINATION=%s", t->dest);
	snprintf(r, sizeof(r), "REPLICAFS_RULE=%s", t->rule_id);
	snprintf(s, sizeof(s), "REPLICAFS_LATENCY_SECONDS=%.3f",
		 late_ns / 1e9);
	env[n] = b;
	env[n + 1] = k;
	env[n + 2] = v;
	env[n + 3] = d;
	env[n + 4] = r;
	env[n + 5] = s;
	if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, env) == 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	free(env);
}

/* Log, and run the bucket's hook for, a delivery that missed its rule's
 * threshold: still pending (@done 0) or delivered late. */
static void missed(struct repl_engine *e, const struct store_repl_task *t,
		   int done)
{
	int64_t took = wall_ns() - t->queued_ns;
	char *hook = NULL;

	log_warn("replication: %s/%s %s %s %s after %.1f s, past the "
		 "threshold of rule %s (%.0f s)", t->bucket, t->key,
		 t->obj.version_id, done ? "reached" : "has not reached",
		 t->dest, took / 1e9, t->rule_id, t->threshold_ns / 1e9);
	if (!store_repl_config_get(e->st, t->bucket, NULL, &hook) && hook)
		run_hook(hook, t, took);
	free(hook);
}

static void check_threshold(struct repl_engine *e,
			    const struct store_repl_task *t)
{
	if (t->threshold_ns && !t->late &&
	    wall_ns() - t->queued_ns > t->threshold_ns &&
	    store_repl_mark_late(e->st, t->id) == 1)
		missed(e, t, 1);
}

static void overdue_cb(void *arg, const struct store_repl_task *t)
{
	missed(arg, t, 0);
}

/* Read a small blob (a symlink's target) into @buf. */
static int read_small(struct store *st, const char *sha, char *buf,
		      size_t size)
{
	ssize_t n;
	int fd, err;

	err = store_blob_open(st, sha, &fd);
	if (err)
		return err;
	n = pread(fd, buf, size - 1, 0);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (!err)
		buf[n] = '\0';
	return err;
}

/* A version read from the store, ready to hand to a destination. */
struct prepared {
	struct repl_version v;
	struct store_xattr *x;	/* v.xattrs, owned */
	char link[4096];	/* v.link_target of a symlink */
	struct store_obj cur;	/* the source's current version (deliver()) */
};

/* How many of @key's parent folders, deepest first, @bucket no longer has
 * at the source: no current key below, no current marker. */
static unsigned gone_parents(struct store *st, const char *bucket,
			     const char *key)
{
	char path[STORE_KEY_MAX + 1];
	struct store_obj o;
	size_t len = strlen(key);
	unsigned n = 0;
	char *slash;

	if (len > STORE_KEY_MAX)
		return 0;
	memcpy(path, key, len + 1);
	if (len && path[len - 1] == '/')
		path[len - 1] = '\0';	/* a folder's marker: its parents */
	while ((slash = strrchr(path, '/'))) {
		*slash = '\0';
		if (store_lookup(st, bucket, path, &o) != -ENOENT)
			break;
		n++;
	}
	return n;
}

/* Fill @p for task @t, to go to @d: 0 or a negative errno with @msg set.
 * The caller calls release() in both cases. */
static int prepare(struct repl_engine *e, const struct dest *d,
		   const struct store_repl_task *t, struct prepared *p,
		   char *msg, size_t msglen)
{
	int err;

	memset(&p->v, 0, sizeof(p->v));
	p->x = NULL;
	p->v.bucket = t->bucket;
	p->v.key = t->key;
	p->v.obj = t->obj;
	p->v.fd = -1;
	if (t->obj.kind == STORE_DELETE_MARKER) {
		if (d->ops->folders)
			p->v.gone_parents =
				gone_parents(e->st, t->bucket, t->key);
		return 0;
	}
	if (t->obj.kind == STORE_FILE && t->obj.size) {
		err = store_blob_open(e->st, t->obj.sha256, &p->v.fd);
		p->v.fd_is_blob = !err;
		if (err) {
			snprintf(msg, msglen, "cannot read the source blob: %s",
				 strerror(-err));
			return err == -ENOENT ? -EIO : err;
		}
	} else if (t->obj.kind == STORE_SYMLINK) {
		err = read_small(e->st, t->obj.sha256, p->link,
				 sizeof(p->link));
		if (err) {
			snprintf(msg, msglen, "cannot read the source link: %s",
				 strerror(-err));
			return -EIO;
		}
		p->v.link_target = p->link;
	}
	err = store_version_xattrs(e->st, t->bucket, t->key,
				   t->obj.version_id, &p->x, &p->v.nxattrs);
	if (err) {
		snprintf(msg, msglen, "cannot read the source xattrs: %s",
			 strerror(-err));
		return err;
	}
	p->v.xattrs = p->x;
	return 0;
}

static void release(struct prepared *p)
{
	free(p->x);
	p->x = NULL;
	if (p->v.fd >= 0)
		close(p->v.fd);
	p->v.fd = -1;
}

/*
 * Whether @t is no longer its key's current version at the source.  A
 * destination that keeps only the current version (a directory) skips
 * such a one, the newer being delivered on its own: sent after it (a
 * batch job sending an old failure again), it took the mirror back in
 * time.  Folder markers are not versions of a file: never skipped.
 */
static int superseded(struct repl_engine *e, const struct store_repl_task *t,
		      struct store_obj *cur)
{
	if (t->obj.kind == STORE_DIR ||
	    store_lookup_all(e->st, t->bucket, t->key, cur) ||
	    cur->kind == STORE_DIR)
		return 0;
	return strcmp(cur->version_id, t->obj.version_id) != 0 &&
	       cur->created_ns >= t->obj.created_ns;
}

/* What a version's rows say of destination @dest. */
struct sent_to {
	const char *dest;
	int completed;
	int pending;
};

static int sent_cb(void *arg, const char *dest, const char *rule_id,
		   enum store_repl_status status, const char *error)
{
	struct sent_to *s = arg;

	(void)rule_id;
	(void)error;
	if (strcmp(dest, s->dest))
		return 0;
	s->completed |= status == STORE_REPL_COMPLETED;
	s->pending |= status == STORE_REPL_PENDING;
	return 0;
}

/* The walk of newest_sent(). */
struct newest_walk {
	struct repl_engine *e;
	const struct store_repl_task *t;
	struct store_obj *out;
};

static int newest_cb(void *arg, const struct store_obj *o)
{
	struct newest_walk *w = arg;
	struct sent_to sent = { w->t->dest, 0, 0 };
	enum store_repl_status overall;

	if (!strcmp(o->version_id, w->t->obj.version_id) ||
	    o->created_ns < w->t->obj.created_ns)
		return 1;	/* no newer one went there */
	if (store_repl_version_status(w->e->st, w->t->bucket, w->t->key,
				      o->version_id, &overall, sent_cb,
				      &sent))
		return 0;	/* removed meanwhile: the next one */
	if (sent.pending)
		return 1;	/* it goes on its own, after @t */
	if (!sent.completed)
		return 0;	/* not sent there (a delete marker the rule
				 * keeps back, a FAILED delivery) */
	*w->out = *o;
	return 2;
}

/*
 * The newest version of @t's key, newer than @t, that reached @t's
 * destination, into @out: 1 when there is one, 0 when there is none or a
 * newer one is still pending there (it goes after @t on its own).  The
 * source's current version is not always it: a delete marker that the
 * rule does not send never went there, nor did a version that FAILED.
 */
static int newest_sent(struct repl_engine *e,
		       const struct store_repl_task *t, struct store_obj *out)
{
	struct newest_walk w = { e, t, out };

	return store_versions(e->st, t->bucket, t->key, newest_cb, &w) == 2;
}

/* Put version @t (a data version or a delete marker) to @d. */
static int put_one(struct repl_engine *e, struct dest *d,
		   const struct store_repl_task *t, struct prepared *p,
		   char *msg, size_t msglen)
{
	int err = prepare(e, d, t, p, msg, msglen);

	if (!err && t->obj.kind == STORE_DELETE_MARKER)
		err = d->ops->delete_marker(d, &p->v, msg, msglen);
	else if (!err)
		err = d->ops->put(d, &p->v, msg, msglen);
	release(p);
	return err;
}

/* Deliver @t to @d, its destination: 0 or a negative errno with @msg
 * set. */
static int deliver(struct repl_engine *e, struct dest *d,
		   const struct store_repl_task *t, struct prepared *p,
		   char *msg, size_t msglen)
{
	struct store_repl_task *cur;
	int err;

	if (d->ops->folders && superseded(e, t, &p->cur))
		return 0;
	err = put_one(e, d, t, p, msg, msglen);
	if (err || !d->ops->last_is_newest || !superseded(e, t, &p->cur))
		return err;
	/* A late version (a batch job sending an old failure again) went
	 * to a destination where the last PUT is the current version: it
	 * is in the history there now, and the newest version that had
	 * gone there before it goes again after it, so that the replica
	 * does not go back in time.  That is the source's current version
	 * (or delete marker) when it was sent there, else the newest one
	 * that was: a delete marker the rule does not send leaves the
	 * version before it current there.  One still pending goes on its
	 * own, after this one. */
	if (!newest_sent(e, t, &p->cur))
		return 0;
	cur = malloc(sizeof(*cur));
	if (!cur) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	*cur = *t;
	cur->obj = p->cur;
	err = put_one(e, d, cur, p, msg, msglen);
	free(cur);
	return err;
}

/* After an item of batch job @job: when it was the last, the job is
 * complete (or, cancelled with deliveries under way, done) and its report
 * is written. */
static void job_step(struct repl_engine *e, int64_t job)
{
	struct store_job_info *info;

	if (store_job_finish(e->st, job) != 1)
		return;
	info = malloc(sizeof(*info));
	if (!info || store_job_get(e->st, job, info)) {
		free(info);
		return;
	}
	log_info("batch: job %lld %s: %llu succeeded, %llu failed, "
		 "%llu skipped, %llu cancelled", (long long)job,
		 info->state == STORE_JOB_CANCELLED ? "cancelled" : "complete",
		 (unsigned long long)info->completed,
		 (unsigned long long)info->failed,
		 (unsigned long long)info->skipped,
		 (unsigned long long)info->cancelled);
	if (info->report[0])
		repl_batch_report(e->st, job, info->report);
	free(info);
}

/*
 * Deliveries a worker claims at once, and records in one transaction (with
 * one sync of each destination).  A worker starts with CLAIM_MIN, and
 * doubles its claims up to CLAIM_MAX while they come back full, so a deep
 * queue (a batch job of small files) pays its transactions and syncs once
 * per 256 deliveries (or per MiB of content: the store's cap on a claim),
 * while a few new versions are spread over the workers.  (At 64, a job of
 * 10,000 files of 4 KiB to a directory spent 0.55 s in 180 syncfs(2).)
 */
#define CLAIM_MIN 8
#define CLAIM_MAX 256

/* One claimed task, and what became of it. */
struct slot {
	struct store_repl_task t;
	struct store_repl_outcome o;
	char why[640];
	int failed;
	int synced;	/* its destination's sync covered it */
	int handled;	/* delivered (or not) in this round */
};

/*
 * A destination that does not answer (an S3 service that takes the
 * connection and never replies) holds each worker that claims its
 * deliveries until curl gives up, a minute per request.  Claims are of
 * one destination each, and no destination may hold more than all the
 * workers but one: the others' deliveries (a dir:// mirror, another
 * bucket's rules) go on meanwhile.  Into @skip (at most @max), the
 * destinations at that bound.  Caller holds e->lock.
 */
static size_t busy_full_locked(struct repl_engine *e, const char **skip,
			       size_t max)
{
	struct dest_busy *b;
	size_t n = 0;

	if (e->o.workers < 2)
		return 0;
	for (b = e->busy_dests; b && n < max; b = b->next)
		if (b->n >= e->o.workers - 1)
			skip[n++] = b->url;
	return n;
}

/* The entry of destination @url, made if need be (NULL: out of memory).
 * Caller holds e->lock. */
static struct dest_busy *busy_get_locked(struct repl_engine *e,
					 const char *url)
{
	struct dest_busy *b;

	for (b = e->busy_dests; b && strcmp(b->url, url); b = b->next)
		;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b || !(b->url = strdup(url))) {
			free(b);
			return NULL;
		}
		b->next = e->busy_dests;
		e->busy_dests = b;
	}
	return b;
}

/* Count a worker in or out of destination @url.  Caller holds e->lock. */
static void busy_add_locked(struct repl_engine *e, const char *url, int d)
{
	struct dest_busy *b = busy_get_locked(e, url);

	if (b)	/* else not counted: no bound for it */
		b->n += d;
}

/* Log that the delivery of @t FAILED (@why), as FAILED_LOG_MAX says. */
static void failed_log(struct repl_engine *e, const struct store_repl_task *t,
		       const char *why)
{
	struct dest_busy *b;
	uint64_t count = 0;
	int told = 0;
	int64_t now = mono_ns();

	pthread_mutex_lock(&e->lock);
	b = busy_get_locked(e, t->dest);
	if (!b) {
		told = 1;
	} else if (b->failed_told < FAILED_LOG_MAX) {
		told = ++b->failed_told;
		b->failed_count_ns = now;
	} else {
		b->failed_quiet++;
		if (now - b->failed_count_ns >= FAILED_COUNT_NS) {
			count = b->failed_quiet;
			b->failed_quiet = 0;
			b->failed_count_ns = now;
		}
	}
	pthread_mutex_unlock(&e->lock);
	if (told)
		log_err("replication: %s/%s %s to %s FAILED: %s%s", t->bucket,
			t->key, t->obj.version_id, t->dest, why,
			told == FAILED_LOG_MAX
				? " (further FAILED deliveries there are "
				  "logged at debug level and counted; "
				  "`replicafs status` shows them)"
				: "");
	else
		log_debug("replication: %s/%s %s to %s FAILED: %s", t->bucket,
			  t->key, t->obj.version_id, t->dest, why);
	if (count)
		log_err("replication: %llu more deliveries to %s FAILED",
			(unsigned long long)count, t->dest);
}

/* Decide the outcome of the task of @sl, delivered with @err (0 or a
 * negative errno, with @msg saying why). */
static void settle(struct repl_engine *e, struct slot *sl, int err,
		   const char *msg, uint64_t rnd)
{
	const struct store_repl_task *t = &sl->t;
	struct dest_busy *b;
	uint64_t quiet = 0;
	int first = 1;

	memset(&sl->o, 0, sizeof(sl->o));
	sl->o.id = t->id;
	sl->failed = 0;
	if (!err) {
		uint64_t failed = 0;

		sl->o.status = STORE_REPL_COMPLETED;
		pthread_mutex_lock(&e->lock);
		b = busy_get_locked(e, t->dest);
		if (b && (b->failing || b->failed_told)) {
			quiet = b->quiet;
			failed = b->failed_quiet;
			b->failing = 0;
			b->quiet = 0;
			b->failed_told = 0;
			b->failed_quiet = 0;
			first = 0;
		}
		pthread_mutex_unlock(&e->lock);
		if (!first)
			log_info("replication: deliveries to %s succeed again "
				 "(%llu retries and %llu more FAILED meanwhile "
				 "logged at debug level)", t->dest,
				 (unsigned long long)quiet,
				 (unsigned long long)failed);
		return;
	}
	if (!*msg)
		msg = strerror(-err);
	if (dest_error_permanent(err)) {
		sl->o.status = STORE_REPL_FAILED;
		snprintf(sl->why, sizeof(sl->why), "%s", msg);
	} else if (t->attempts + 1 >= e->o.max_attempts) {
		sl->o.status = STORE_REPL_FAILED;
		snprintf(sl->why, sizeof(sl->why), "gave up after %d attempts: "
			 "%s", t->attempts + 1, msg);
	} else {
		sl->o.status = STORE_REPL_PENDING;
		sl->o.next_ns = wall_ns() +
				repl_backoff_ns(t->attempts + 1,
						e->o.backoff_base_ns,
						e->o.backoff_max_ns, rnd);
		snprintf(sl->why, sizeof(sl->why), "%s", msg);
	}
	sl->o.error = sl->why;
	sl->failed = sl->o.status == STORE_REPL_FAILED;
	if (sl->failed) {
		failed_log(e, t, sl->why);
		return;
	}
	pthread_mutex_lock(&e->lock);
	b = busy_get_locked(e, t->dest);
	if (b && b->failing) {
		b->quiet++;
		first = 0;
	} else if (b) {
		b->failing = 1;
	}
	pthread_mutex_unlock(&e->lock);
	if (first)
		log_warn("replication: %s/%s %s to %s: %s (attempt %d, "
			 "retrying; further retries to %s are logged at debug "
			 "level until a delivery there succeeds)", t->bucket,
			 t->key, t->obj.version_id, t->dest, sl->why,
			 t->attempts + 1, t->dest);
	else
		log_debug("replication: %s/%s %s to %s: %s (attempt %d, "
			  "retrying)", t->bucket, t->key, t->obj.version_id,
			  t->dest, sl->why, t->attempts + 1);
}

#define MSG_LEN 512

/*
 * Deliver the claimed tasks of @sl and decide their outcomes (recorded
 * later): one by one, or all of one destination in one put_many() call
 * where it has one.
 */
static void work(struct repl_engine *e, struct slot *sl, size_t n,
		 struct prepared *pv, struct repl_version *vv, int *rets,
		 size_t *idx, char *msgs)
{
	struct dest *d;
	size_t i, j, k;
	uint64_t rnd;
	int err;

	for (i = 0; i < n; i++)
		sl[i].handled = 0;
	for (i = 0; i < n; i++) {
		if (sl[i].handled)
			continue;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint64_t)mono_ns();
		err = 0;
		*msgs = '\0';
		d = dest_get(e, sl[i].t.dest, &err, msgs, MSG_LEN);
		if (!d || !d->ops->put_many) {
			if (d)
				err = deliver(e, d, &sl[i].t, pv, msgs,
					      MSG_LEN);
			settle(e, &sl[i], err, msgs, rnd);
			sl[i].handled = 1;
			continue;
		}
		/* Every task of this destination, prepared; those that
		 * cannot be read settle here. */
		for (j = i, k = 0; j < n; j++) {
			if (sl[j].handled || strcmp(sl[j].t.dest, sl[i].t.dest))
				continue;
			sl[j].handled = 1;
			msgs[k * MSG_LEN] = '\0';
			err = prepare(e, d, &sl[j].t, &pv[k],
				      msgs + k * MSG_LEN, MSG_LEN);
			if (err) {
				settle(e, &sl[j], err, msgs + k * MSG_LEN,
				       rnd);
				release(&pv[k]);
				continue;
			}
			vv[k] = pv[k].v;
			idx[k++] = j;
		}
		if (k)
			d->ops->put_many(d, vv, k, rets, msgs, MSG_LEN);
		for (j = 0; j < k; j++) {
			settle(e, &sl[idx[j]], rets[j], msgs + j * MSG_LEN,
			       rnd);
			release(&pv[j]);
		}
	}
}

/*
 * Make the deliveries of @sl that succeeded durable, one dest_ops.sync()
 * per destination for the whole claim; where it fails, they are retried
 * like any delivery that failed.  Then they count as delivered.
 */
static void sync_claim(struct repl_engine *e, struct slot *sl, size_t n,
		       uint64_t rnd)
{
	char msg[512];
	struct dest *d;
	size_t i, j;
	int err;

	for (i = 0; i < n; i++) {
		if (sl[i].o.status != STORE_REPL_COMPLETED || sl[i].synced)
			continue;
		*msg = '\0';
		err = 0;
		d = dest_get(e, sl[i].t.dest, &err, msg, sizeof(msg));
		if (d && d->ops->sync)
			err = d->ops->sync(d, msg, sizeof(msg));
		for (j = i; j < n; j++) {
			if (sl[j].o.status != STORE_REPL_COMPLETED ||
			    sl[j].synced || strcmp(sl[j].t.dest, sl[i].t.dest))
				continue;
			sl[j].synced = 1;
			if (err)
				settle(e, &sl[j], err, msg, rnd);
		}
	}
	for (i = 0; i < n; i++) {
		if (sl[i].o.status != STORE_REPL_COMPLETED)
			continue;
		log_debug("replication: %s/%s %s -> %s", sl[i].t.bucket,
			  sl[i].t.key, sl[i].t.obj.version_id, sl[i].t.dest);
		check_threshold(e, &sl[i].t);
	}
}

/* Record the outcomes of @n delivered slots, then see to their jobs. */
static void record(struct repl_engine *e, struct slot *sl, size_t n)
{
	struct store_repl_outcome o[CLAIM_MAX] = { 0 };
	uint64_t done = 0, failed = 0;
	int64_t jobs[CLAIM_MAX];
	size_t i, j, njobs = 0;
	int err;

	for (i = 0; i < n; i++)
		o[i] = sl[i].o;
	err = store_repl_done_many(e->st, o, n);
	if (err) {
		log_err("replication: cannot record %zu deliveries: %s (they "
			"will be made again)", n, strerror(-err));
		return;
	}
	for (i = 0; i < n; i++) {
		if (sl[i].o.status != STORE_REPL_PENDING) {
			done++;
			failed += sl[i].failed;
		}
		/* A retry too: one of a cancelled job ends there. */
		if (!sl[i].t.job)
			continue;
		for (j = 0; j < njobs && jobs[j] != sl[i].t.job; j++)
			;
		if (j == njobs)
			jobs[njobs++] = sl[i].t.job;
	}
	for (j = 0; j < njobs; j++)
		job_step(e, jobs[j]);
	pthread_mutex_lock(&e->lock);
	e->done += done;
	e->failed += failed;
	pthread_mutex_unlock(&e->lock);
}

static void *worker(void *arg)
{
	const char *skip[STORE_CLAIM_SKIP_MAX];
	size_t nskip;
	struct store_repl_task *tasks;
	struct repl_engine *e = arg;
	struct repl_version *vv;
	struct prepared *pv;
	struct slot *sl;
	size_t *idx;
	char *msgs;
	int *rets;
	struct timespec until;
	size_t n, i, limit = CLAIM_MIN;
	uint64_t rnd;
	int err, release;

	sl = malloc(CLAIM_MAX * sizeof(*sl));
	tasks = malloc(CLAIM_MAX * sizeof(*tasks));
	pv = malloc(CLAIM_MAX * sizeof(*pv));
	vv = malloc(CLAIM_MAX * sizeof(*vv));
	rets = malloc(CLAIM_MAX * sizeof(*rets));
	idx = malloc(CLAIM_MAX * sizeof(*idx));
	msgs = malloc(CLAIM_MAX * MSG_LEN);
	if (!sl || !tasks || !pv || !vv || !rets || !idx || !msgs) {
		log_err("replication: worker: out of memory");
		goto out;
	}
	for (;;) {
		pthread_mutex_lock(&e->lock);
		if (e->stopping) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		release = mono_ns() - e->last_release_ns > RELEASE_EVERY_NS;
		if (release)
			e->last_release_ns = mono_ns();
		e->busy++;
		pthread_mutex_unlock(&e->lock);

		if (release) {
			store_repl_release_dead(e->st, NULL);
			store_repl_overdue(e->st, overdue_cb, e);
			due_changed(e);
		}
		/* One claim at a time (they take the catalog's write lock
		 * anyway): workers woken together all saw no destination
		 * at its bound, and all claimed the one that hangs. */
		pthread_mutex_lock(&e->claim_lock);
		pthread_mutex_lock(&e->lock);
		/* Its URLs stay until the engine stops. */
		nskip = busy_full_locked(e, skip, STORE_CLAIM_SKIP_MAX);
		pthread_mutex_unlock(&e->lock);
		err = store_repl_claim_from(e->st, limit, LEASE_NS, skip, nskip,
					    tasks, &n);
		if (!err && n) {
			pthread_mutex_lock(&e->lock);
			busy_add_locked(e, tasks[0].dest, 1);
			pthread_mutex_unlock(&e->lock);
		}
		pthread_mutex_unlock(&e->claim_lock);
		if (!err && n == limit) {
			/* there may be more: wake the sleepers to help */
			pthread_mutex_lock(&e->lock);
			pthread_cond_broadcast(&e->wake);
			pthread_mutex_unlock(&e->lock);
			if (limit < CLAIM_MAX)
				limit *= 2;
		} else if (!err) {
			limit = CLAIM_MIN;
		}
		if (!err && n) {
			for (i = 0; i < n; i++) {
				sl[i].t = tasks[i];
				sl[i].synced = 0;
			}
			work(e, sl, n, pv, vv, rets, idx, msgs);
			if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
				rnd = (uint64_t)mono_ns();
			sync_claim(e, sl, n, rnd);
			record(e, sl, n);
			pthread_mutex_lock(&e->lock);
			busy_add_locked(e, tasks[0].dest, -1);
			pthread_mutex_unlock(&e->lock);
		}

		pthread_mutex_lock(&e->lock);
		e->busy--;
		if (!e->stopping && (err || n == 0) && !e->kicked) {
			if (e->poller) {
				pthread_cond_wait(&e->wake, &e->lock);
			} else {
				e->poller = 1;
				clock_gettime(CLOCK_REALTIME, &until);
				until.tv_nsec += e->o.poll_ns % 1000000000;
				until.tv_sec += e->o.poll_ns / 1000000000 +
						until.tv_nsec / 1000000000;
				until.tv_nsec %= 1000000000;
				pthread_cond_timedwait(&e->wake, &e->lock,
						       &until);
				e->poller = 0;
			}
		}
		e->kicked = 0;
		pthread_mutex_unlock(&e->lock);
	}
out:
	free(sl);
	free(tasks);
	free(pv);
	free(vv);
	free(rets);
	free(idx);
	free(msgs);
	return NULL;
}

int repl_engine_start(struct store *st, const struct repl_engine_opts *opts,
		      struct repl_engine **out)
{
	struct repl_engine *e;
	int i, rc;

	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->st = st;
	if (opts)
		e->o = *opts;
	if (e->o.workers <= 0)
		e->o.workers = REPL_DEFAULT_WORKERS;
	if (e->o.max_attempts <= 0)
		e->o.max_attempts = REPL_DEFAULT_ATTEMPTS;
	if (e->o.backoff_base_ns <= 0)
		e->o.backoff_base_ns = REPL_DEFAULT_BACKOFF_BASE_NS;
	if (e->o.backoff_max_ns <= 0)
		e->o.backoff_max_ns = REPL_DEFAULT_BACKOFF_MAX_NS;
	if (e->o.poll_ns <= 0)
		e->o.poll_ns = REPL_DEFAULT_POLL_NS;
	e->last_release_ns = mono_ns() - RELEASE_EVERY_NS - 1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->claim_lock, NULL);
	pthread_cond_init(&e->wake, NULL);
	e->threads = calloc(e->o.workers, sizeof(*e->threads));
	if (!e->threads) {
		repl_engine_stop(e);
		return -ENOMEM;
	}
	for (i = 0; i < e->o.workers; i++) {
		rc = pthread_create(&e->threads[i], NULL, worker, e);
		if (rc) {
			log_err("replication: cannot start a worker: %s",
				strerror(rc));
			repl_engine_stop(e);
			return -rc;
		}
		e->nthreads++;
	}
	*out = e;
	return 0;
}

void repl_engine_kick(struct repl_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->kicked = 1;
	pthread_cond_broadcast(&e->wake);
	pthread_mutex_unlock(&e->lock);
}

void repl_engine_counts(struct repl_engine *e, uint64_t *done,
			uint64_t *failed)
{
	pthread_mutex_lock(&e->lock);
	*done = e->done;
	*failed = e->failed;
	pthread_mutex_unlock(&e->lock);
}

int repl_engine_busy(struct repl_engine *e)
{
	int busy;

	pthread_mutex_lock(&e->lock);
	busy = e->busy;
	pthread_mutex_unlock(&e->lock);
	return busy;
}

static void engine_free(struct repl_engine *e);

/* Tell the workers to stop once their deliveries under way are done. */
static void engine_stopping(struct repl_engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->stopping = 1;
	pthread_cond_broadcast(&e->wake);
	pthread_mutex_unlock(&e->lock);
}

void repl_engine_stop(struct repl_engine *e)
{
	int i;

	if (!e)
		return;
	engine_stopping(e);
	for (i = 0; i < e->nthreads; i++)
		pthread_join(e->threads[i], NULL);
	engine_free(e);
}

int repl_engine_stop_within(struct repl_engine *e, int seconds)
{
	struct timespec until;
	int i, joined = 0;

	if (!e)
		return 0;
	engine_stopping(e);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	for (i = 0; i < e->nthreads; i++) {
		if (pthread_timedjoin_np(e->threads[i], NULL, &until))
			break;
		joined++;
	}
	if (joined < e->nthreads) {
		log_warn("replication: a delivery is still under way %d s "
			 "after the stop (a destination that does not "
			 "answer): ending without it; it is due again at the "
			 "next start", seconds);
		return -ETIMEDOUT;
	}
	engine_free(e);
	return 0;
}

static void engine_free(struct repl_engine *e)
{
	struct dest_slot *s, *next;
	struct dest_busy *b;

	for (s = e->dests; s; s = next) {
		next = s->next;
		dest_close(s->d);
		free(s->url);
		free(s);
	}
	while ((b = e->busy_dests)) {
		e->busy_dests = b->next;
		free(b->url);
		free(b);
	}
	free(e->threads);
	pthread_cond_destroy(&e->wake);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->claim_lock);
	free(e);
}
