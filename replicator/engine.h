/*
 * engine.h - the replication engine: workers that take deliveries from the
 * store's durable queue and hand them to destinations (dest.h), with
 * retries, backoff and the replication-time threshold.
 *
 * The engine runs inside a mount (fs/mount.c starts it) or alone
 * (`replicafs replicate STORE`).  Several engines, in several processes,
 * may work on one store at once: the queue's leases keep them from taking
 * the same delivery, and its order keeps the versions of one key in the
 * order they were written.
 */
#ifndef REPLICAFS_ENGINE_H
#define REPLICAFS_ENGINE_H

#include "store/store.h"

#include <stdint.h>

struct repl_engine;

struct repl_engine_opts {
	int workers;		/* threads; 0: REPL_DEFAULT_WORKERS */
	int max_attempts;	/* before FAILED; 0: REPL_DEFAULT_ATTEMPTS */
	int64_t backoff_base_ns;/* first retry after about this; 0: default */
	int64_t backoff_max_ns;	/* retries never wait longer; 0: default */
	int64_t poll_ns;	/* idle workers look again after; 0: default */
};

#define REPL_DEFAULT_WORKERS 4
#define REPL_DEFAULT_ATTEMPTS 12
#define REPL_DEFAULT_BACKOFF_BASE_NS (500LL * 1000 * 1000)
#define REPL_DEFAULT_BACKOFF_MAX_NS (300LL * 1000 * 1000 * 1000)
#define REPL_DEFAULT_POLL_NS (100LL * 1000 * 1000)

/*
 * Start the workers on @st (which must outlive the engine).  The caller
 * stops and frees the engine with repl_engine_stop().
 */
int repl_engine_start(struct store *st, const struct repl_engine_opts *opts,
		      struct repl_engine **out);

/* Wake idle workers: something was queued (optional; they poll). */
void repl_engine_kick(struct repl_engine *e);

/* Deliveries finished so far (completed + failed), and failed alone. */
void repl_engine_counts(struct repl_engine *e, uint64_t *done,
			uint64_t *failed);

/* Whether any worker is delivering now. */
int repl_engine_busy(struct repl_engine *e);

/* Stop the workers (a delivery under way is finished first) and free
 * @e; NULL is fine. */
void repl_engine_stop(struct repl_engine *e);

/* The same, waiting at most @seconds for deliveries under way: -ETIMEDOUT
 * (logged) when one is still running then (a destination that does not
 * answer), and @e is left as it is, for the process to exit without it:
 * its lease is released when the next process finds it dead. */
int repl_engine_stop_within(struct repl_engine *e, int seconds);

/*
 * The wait before retry @attempt (1 for the first retry): exponential
 * from @base, capped at @max, with "full jitter" (a uniform draw in
 * [d/2, d] from @rnd), so many failing deliveries do not retry in step.
 */
int64_t repl_backoff_ns(int attempt, int64_t base, int64_t max,
			uint64_t rnd);

#endif
