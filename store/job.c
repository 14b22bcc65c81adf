/*
 * job.c - batch replication jobs, the catalog side.
 *
 * Design.  A job is created in one write transaction that fixes its
 * manifest: every version it covers is routed to its destinations as live
 * replication would route it (repl_route()), and each delivery becomes a
 * queue row carrying the job's ID.  From then on the job is nothing but
 * those rows: the same workers deliver them, in the same order per key,
 * with the same leases, retries and FAILED state, so a job survives a
 * kill -9 as the queue does, and a delivery that finished before the
 * crash is not made again.  What a job cannot send is written as a note
 * in the same transaction: a manifest row that names no version or one
 * the job's rules do not take (out_of_scope()), or a version already at
 * (or already queued for) a destination, so that it is sent once.  A job
 * by the rules also forgets, with a note, the live failures of the FAILED
 * versions it takes to destinations no rule names any more
 * (settle_gone()): nothing could send them again.
 *
 *   create (ACTIVE) --last row done: store_job_finish()--> COMPLETE
 *          |
 *          +--store_job_cancel(): pending rows dropped----> CANCELLED
 *                     |                                       ^
 *                     | rows under way: done_ns NULL          |
 *                     +--their last done: store_job_finish()--+
 *
 * A row under way at the cancel (leased by a process that runs) is not
 * dropped: what it sent counts as sent, and a retry of it becomes
 * CANCELLED.  The report is written by whoever settles the job: the
 * cancel itself when nothing was under way, else the engine after the
 * last of those rows, when store_job_finish() returns 1.
 *
 * A job's progress and report are read from its rows and notes.
 */
#include "store/store.h"
#include "store/store_i.h"
#include "store/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int prep(struct conn *c, const char *sql, sqlite3_stmt **s)
{
	return stmt_of_sql(c, sql, s);
}

/* What a job being created needs at hand. */
struct job_ctx {
	struct conn *c;
	int64_t job;
	sqlite3_stmt *existing;	/* status of (version, dest) rows */
	sqlite3_stmt *drop;	/* delete a FAILED row being replaced */
	sqlite3_stmt *note;
	sqlite3_stmt *gone_note;	/* see settle_gone() */
	sqlite3_stmt *gone_drop;
	int64_t bid;
	const char *bucket;
	const char *key;
	const char *vid;
	int64_t oid, ver;
	uint64_t queued;
	uint64_t routed;	/* job_item() calls: queued or noted */
};

static int note(struct job_ctx *j, const char *dest, const char *outcome,
		const char *error)
{
	sqlite3_stmt *s = j->note;
	int err;

	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, j->job);
	bind_text(s, 2, j->bucket, -1);
	if (j->key)
		bind_text(s, 3, j->key, -1);
	else
		sqlite3_bind_null(s, 3);
	if (j->vid)
		bind_text(s, 4, j->vid, -1);
	else
		sqlite3_bind_null(s, 4);
	if (dest)
		bind_text(s, 5, dest, -1);
	else
		sqlite3_bind_null(s, 5);
	bind_text(s, 6, outcome, -1);
	if (error)
		bind_text(s, 7, error, -1);
	else
		sqlite3_bind_null(s, 7);
	err = stmt_step(j->c, s, "job note");
	return err < 0 ? err : 0;
}

/* Route target @t's delivery of the current version into the job. */
static int job_item(void *arg, const struct route_tgt *t)
{
	struct job_ctx *j = arg;
	int err, status = -1;
	int64_t old = 0;

	j->routed++;
	/* The newest delivery there is the version's status there
	 * (REPL_NEWEST): a chmod that failed after the data went is a
	 * failure to send again. */
	sqlite3_reset(j->existing);
	sqlite3_bind_int64(j->existing, 1, j->ver);
	bind_text(j->existing, 2, t->dest, -1);
	err = stmt_step(j->c, j->existing, "existing delivery");
	if (err == 1) {
		status = sqlite3_column_int(j->existing, 0);
		old = sqlite3_column_int64(j->existing, 1);
	}
	if (err < 0)
		return err;
	if (status == STORE_REPL_PENDING)
		return note(j, t->dest, "SKIPPED",
			    "already queued for this destination");
	if (status == STORE_REPL_COMPLETED)
		return note(j, t->dest, "SKIPPED",
			    "already at this destination");
	if (status == STORE_REPL_FAILED) {
		/* This delivery replaces the one that failed, as the
		 * version's status at that destination. */
		sqlite3_reset(j->drop);
		sqlite3_bind_int64(j->drop, 1, old);
		err = stmt_step(j->c, j->drop, "replace failed delivery");
		if (err < 0)
			return err;
	}
	err = repl_queue_insert(j->c, j->oid, j->ver, t, j->job);
	if (!err)
		j->queued++;
	return err;
}

/*
 * Version @j->ver, FAILED, is taken by a job that goes by the bucket's
 * rules: its live deliveries that FAILED to a destination no rule of the
 * bucket names any more (the rules were replaced or deleted, see
 * orphans_fail()) are forgotten, each with a SKIPPED note that says so.
 * Nothing would ever send them again, and they kept the version FAILED,
 * and `replicafs wait` at 3, for good.  A batch job's own are kept: a job
 * may name its destination itself, and one naming it again sends them.
 */
static int settle_gone(struct job_ctx *j)
{
	sqlite3_stmt *s;
	int err;

	s = j->gone_note;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, j->job);
	bind_text(s, 2, j->bucket, -1);
	bind_text(s, 3, j->key, -1);
	bind_text(s, 4, j->vid, -1);
	sqlite3_bind_int64(s, 5, j->ver);
	sqlite3_bind_int64(s, 6, j->bid);
	err = stmt_step(j->c, s, "note forgotten failures");
	if (err < 0)
		return err;
	s = j->gone_drop;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, j->ver);
	sqlite3_bind_int64(s, 2, j->bid);
	err = stmt_step(j->c, s, "forget failures");
	return err < 0 ? err : 0;
}

/*
 * Why a manifest row's version, of @key and kind @kind, went to no
 * destination of targets @t (@n of them): the rules the job goes by do
 * not take it, as repl_route() decides.  A sentence for its report row.
 */
static const char *out_of_scope(const struct route_tgt *t, size_t n,
				const char *key, int kind)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strncmp(key, t[i].prefix, strlen(t[i].prefix)))
			break;
	if (i == n)
		return "outside the job's scope: the key is not under the "
		       "Filter prefix of any rule the job goes by";
	if (kind == STORE_DELETE_MARKER)
		return "outside the job's scope: a delete marker, which the "
		       "rules that take its key do not replicate "
		       "(DeleteMarkerReplication Disabled, or a Tag filter, "
		       "which a delete marker cannot match)";
	return "outside the job's scope: the version does not have the "
	       "tags of the Filter of any rule that takes its key";
}

/* The overall status of version row @ver (see
 * store_repl_version_status()). */
static int overall(struct conn *c, sqlite3_stmt *s, int64_t ver, int replica)
{
	int err, any = 0, failed = 0, pending = 0, st;

	if (replica)
		return STORE_REPL_REPLICA;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, ver);
	while ((err = stmt_step(c, s, "version status")) == 1) {
		st = sqlite3_column_int(s, 0);
		any = 1;
		failed |= st == STORE_REPL_FAILED;
		pending |= st == STORE_REPL_PENDING;
	}
	if (err < 0)
		return err;
	if (!any)
		return STORE_REPL_NONE;
	return failed ? STORE_REPL_FAILED :
	       pending ? STORE_REPL_PENDING : STORE_REPL_COMPLETED;
}

int store_job_create(struct store *st, const struct store_job_spec *spec,
		     const struct store_job_row *rows, size_t nrows,
		     int64_t *id)
{
	struct job_ctx j = { 0 };
	struct route_tgt *t = NULL, adhoc = { 0 };
	sqlite3_stmt *s = NULL, *vs = NULL, *one = NULL;
	unsigned mask = spec->status_mask ? spec->status_mask
					  : STORE_JOB_NONE | STORE_JOB_FAILED;
	const char *prefix = spec->prefix ? spec->prefix : "";
	char hi[STORE_KEY_MAX + 2];
	struct bucket_row b;
	size_t nt = 0, i, plen = strlen(prefix);
	int err;

	*id = 0;
	err = conn_get(st, &j.c);
	if (err)
		return err;
	err = tx_begin(j.c);
	if (err)
		return err;
	err = bucket_row_get(j.c, spec->bucket, &b);
	if (err)
		goto out;
	if (spec->dest) {
		adhoc.rule = (char *)(spec->rule_id ? spec->rule_id : "batch");
		adhoc.prefix = (char *)"";
		adhoc.dest = (char *)spec->dest;
		adhoc.dm = 1;
		t = &adhoc;
		nt = 1;
	} else {
		err = repl_targets_load(j.c, b.id, spec->rule_id, &t, &nt);
		if (err)
			goto out;
		/* Without rules there is nowhere to send, but for a job of
		 * FAILED versions: it forgets their failures to the
		 * destinations of the rules that are gone (settle_gone()). */
		if (!nt && (spec->rule_id || rows ||
			    mask != STORE_JOB_FAILED)) {
			err = -EINVAL;	/* the caller says why */
			goto out;
		}
	}
	err = prep(j.c, "INSERT INTO repl_jobs(bucket, description, report, "
			"created_ns) VALUES (?, ?, ?, ?)", &s);
	if (err)
		goto out;
	bind_text(s, 1, spec->bucket, -1);
	if (spec->description)
		bind_text(s, 2, spec->description, -1);
	if (spec->report)
		bind_text(s, 3, spec->report, -1);
	sqlite3_bind_int64(s, 4, now_ns());
	err = stmt_step(j.c, s, "create job");
	stmt_done(s);
	s = NULL;
	if (err < 0)
		goto out;
	j.job = sqlite3_last_insert_rowid(j.c->db);
	j.bucket = spec->bucket;
	err = prep(j.c, "SELECT status, id FROM repl_queue "
			"WHERE version = ? AND dest = ? ORDER BY id DESC "
			"LIMIT 1", &j.existing);
	if (!err)
		err = prep(j.c, "DELETE FROM repl_queue WHERE id = ?", &j.drop);
	if (!err)
		err = prep(j.c, "INSERT INTO repl_job_notes(job, bucket, key, "
				"vid, dest, outcome, error) "
				"VALUES (?, ?, ?, ?, ?, ?, ?)", &j.note);
	if (!err)
		err = prep(j.c, "SELECT q.status FROM repl_queue AS q "
				"WHERE q.version = ? AND " REPL_NEWEST("q"),
			   &vs);
	if (!err && !spec->dest)
		err = prep(j.c, "INSERT INTO repl_job_notes(job, bucket, key, "
				"vid, dest, outcome, error) "
				"SELECT ?1, ?2, ?3, ?4, q.dest, 'SKIPPED', "
				"'no rule of the bucket sends to this "
				"destination any more: its FAILED delivery is "
				"forgotten' FROM repl_queue AS q "
				"WHERE q.version = ?5 AND q.status = 2 AND "
				"q.job = 0 AND " REPL_NEWEST("q") " AND "
				"NOT EXISTS (SELECT 1 FROM repl_targets AS t "
				"WHERE t.bucket = ?6 AND t.dest = q.dest) "
				"ORDER BY q.id", &j.gone_note);
	if (!err && !spec->dest)
		err = prep(j.c, "DELETE FROM repl_queue WHERE version = ?1 "
				"AND status = 2 AND job = 0 AND NOT EXISTS "
				"(SELECT 1 FROM repl_targets AS t "
				"WHERE t.bucket = ?2 AND "
				"t.dest = repl_queue.dest)", &j.gone_drop);
	if (err)
		goto out;
	j.bid = b.id;

	if (rows) {
		err = prep(j.c, "SELECT o.id, v.id, v.kind FROM objects AS o "
				"JOIN versions AS v ON v.object = o.id "
				"WHERE o.bucket = ? AND o.key = ? "
				"AND v.vid = ?", &one);
		for (i = 0; !err && i < nrows; i++) {
			const struct store_job_row *r = &rows[i];
			uint64_t routed;
			int kind;

			j.key = r->key;
			j.vid = r->version_id;
			if (r->bucket && strcmp(r->bucket, spec->bucket)) {
				/* first, and in the row's bucket: a row of
				 * another bucket without a version ID was
				 * reported in the job's, for the ID */
				j.bucket = r->bucket;
				err = note(&j, NULL, "FAILED",
					   "not the job's bucket");
				j.bucket = spec->bucket;
				continue;
			}
			if (r->error) {
				err = note(&j, NULL, "FAILED", r->error);
				continue;
			}
			sqlite3_reset(one);
			sqlite3_bind_int64(one, 1, b.id);
			bind_text(one, 2, r->key, -1);
			bind_text(one, 3, r->version_id, -1);
			err = stmt_step(j.c, one, "manifest row");
			if (err == 0) {
				err = note(&j, NULL, "FAILED",
					   "NoSuchVersion: no such key and "
					   "version ID in the bucket");
				continue;
			}
			if (err < 0)
				break;
			j.oid = sqlite3_column_int64(one, 0);
			j.ver = sqlite3_column_int64(one, 1);
			kind = sqlite3_column_int(one, 2);
			routed = j.routed;
			err = repl_route(j.c, t, nt, r->key, j.ver, kind,
					 job_item, &j);
			/* A row the rules do not take is reported too,
			 * and why: it was dropped without a word. */
			if (!err && j.routed == routed)
				err = note(&j, NULL, "SKIPPED",
					   out_of_scope(t, nt, r->key, kind));
		}
		goto done;
	}

	/* From the catalog: every version of every key under the prefix,
	 * oldest first per key. */
	if (plen > STORE_KEY_MAX) {
		err = -ENAMETOOLONG;
		goto out;
	}
	memcpy(hi, prefix, plen + 1);
	err = prep(j.c, "SELECT o.id, o.key, v.id, v.kind, v.replica, v.vid "
			"FROM objects AS o JOIN versions AS v "
			"ON v.object = o.id "
			"WHERE o.bucket = ?1 AND o.key >= ?2 "
			"AND (?3 = 0 OR v.created_ns < ?3) "
			"ORDER BY o.key, v.id", &s);
	if (err)
		goto out;
	sqlite3_bind_int64(s, 1, b.id);
	bind_text(s, 2, prefix, -1);
	sqlite3_bind_int64(s, 3, spec->created_before_ns);
	while ((err = stmt_step(j.c, s, "job versions")) == 1) {
		const char *key = (const char *)sqlite3_column_text(s, 1);
		int kind = sqlite3_column_int(s, 3), o;

		if (strncmp(key, prefix, plen))
			break;	/* past the prefix: keys are in order */
		j.oid = sqlite3_column_int64(s, 0);
		j.ver = sqlite3_column_int64(s, 2);
		j.key = key;
		j.vid = (const char *)sqlite3_column_text(s, 5);
		o = overall(j.c, vs, j.ver, sqlite3_column_int(s, 4));
		if (o < 0) {
			err = o;
			break;
		}
		/* A version on its way (PENDING) is not taken again. */
		if (o == STORE_REPL_PENDING || !(mask & (1u << o)))
			continue;
		if (o == STORE_REPL_FAILED && !spec->dest) {
			err = settle_gone(&j);
			if (err)
				break;
		}
		err = repl_route(j.c, t, nt, key, j.ver, kind, job_item, &j);
		if (err)
			break;
	}
done:
	if (err > 0)
		err = 0;
	if (!err && !j.queued) {
		/* Nothing to deliver: complete at once. */
		stmt_done(s);
		err = prep(j.c, "UPDATE repl_jobs SET state = 1, done_ns = ? "
				"WHERE id = ?", &s);
		if (!err) {
			sqlite3_bind_int64(s, 1, now_ns());
			sqlite3_bind_int64(s, 2, j.job);
			err = stmt_step(j.c, s, "complete job");
			if (err > 0)
				err = 0;
		}
	}
	if (!err) {
		*id = j.job;
		log_info("batch: job %lld on %s: %llu deliveries queued",
			 (long long)j.job, spec->bucket,
			 (unsigned long long)j.queued);
	}
out:
	stmt_done(s);
	stmt_done(vs);
	stmt_done(one);
	stmt_done(j.existing);
	stmt_done(j.drop);
	stmt_done(j.note);
	stmt_done(j.gone_note);
	stmt_done(j.gone_drop);
	if (t != &adhoc)
		repl_targets_free(t, nt);
	if (!err)
		err = tx_commit(st, j.c);
	if (err) {
		tx_rollback(j.c);
		*id = 0;
	}
	return err;
}

/* Fill @o from the row of repl_jobs read by @s at column 0 (id, bucket,
 * description, report, state, created_ns, done_ns), then count. */
static int job_fill(struct conn *c, sqlite3_stmt *s, struct store_job_info *o)
{
	sqlite3_stmt *q;
	const unsigned char *t;
	int err;

	memset(o, 0, sizeof(*o));
	o->id = sqlite3_column_int64(s, 0);
	t = sqlite3_column_text(s, 1);
	snprintf(o->bucket, sizeof(o->bucket), "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(s, 2);
	snprintf(o->description, sizeof(o->description), "%s",
		 t ? (const char *)t : "");
	t = sqlite3_column_text(s, 3);
	snprintf(o->report, sizeof(o->report), "%s", t ? (const char *)t : "");
	o->state = sqlite3_column_int(s, 4);
	o->created_ns = sqlite3_column_int64(s, 5);
	o->done_ns = sqlite3_column_int64(s, 6);

	err = prep(c, "SELECT q.status, count(*), sum(v.size) "
		      "FROM repl_queue AS q INDEXED BY repl_queue_job "
		      "JOIN versions AS v ON v.id = q.version "
		      "WHERE q.job = ? AND q.job != 0 GROUP BY q.status", &q);
	if (err)
		return err;
	sqlite3_bind_int64(q, 1, o->id);
	while ((err = stmt_step(c, q, "job progress")) == 1) {
		uint64_t n = sqlite3_column_int64(q, 1);
		uint64_t bytes = sqlite3_column_int64(q, 2);

		o->items += n;
		o->bytes += bytes;
		switch (sqlite3_column_int(q, 0)) {
		case STORE_REPL_PENDING:
			o->pending += n;
			break;
		case STORE_REPL_COMPLETED:
			o->completed += n;
			o->bytes_done += bytes;
			break;
		default:
			o->failed += n;
			break;
		}
	}
	stmt_done(q);
	if (err < 0)
		return err;
	err = prep(c, "SELECT outcome, count(*) FROM repl_job_notes "
		      "WHERE job = ? GROUP BY outcome", &q);
	if (err)
		return err;
	sqlite3_bind_int64(q, 1, o->id);
	while ((err = stmt_step(c, q, "job notes")) == 1) {
		uint64_t n = sqlite3_column_int64(q, 1);

		o->items += n;
		if (!strcmp((const char *)sqlite3_column_text(q, 0), "SKIPPED"))
			o->skipped += n;
		else if (!strcmp((const char *)sqlite3_column_text(q, 0),
				 "CANCELLED"))
			o->cancelled += n;
		else
			o->failed += n;
	}
	stmt_done(q);
	return err < 0 ? err : 0;
}

#define JOB_COLS "id, bucket, description, report, state, created_ns, done_ns"

int store_job_get(struct store *st, int64_t id, struct store_job_info *out)
{
	sqlite3_stmt *s;
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (!err)
		err = prep(c, "SELECT " JOB_COLS " FROM repl_jobs WHERE id = ?",
			   &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	err = stmt_step(c, s, "read job");
	if (err == 1)
		err = job_fill(c, s, out);
	else if (err == 0)
		err = -ENOENT;
	stmt_done(s);
	return err;
}

int store_job_state(struct store *st, int64_t id,
		    enum store_job_state *out)
{
	sqlite3_stmt *s;
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (!err)
		err = prep(c, "SELECT state FROM repl_jobs WHERE id = ?", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	err = stmt_step(c, s, "read job state");
	if (err == 1) {
		*out = sqlite3_column_int(s, 0);
		err = 0;
	} else if (err == 0) {
		err = -ENOENT;
	}
	stmt_done(s);
	return err;
}

int store_job_list(struct store *st, store_job_cb cb, void *arg)
{
	struct store_job_info info;
	sqlite3_stmt *s;
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (!err)
		err = prep(c, "SELECT " JOB_COLS " FROM repl_jobs ORDER BY id",
			   &s);
	if (err)
		return err;
	while ((err = stmt_step(c, s, "list jobs")) == 1) {
		err = job_fill(c, s, &info);
		if (!err)
			err = cb(arg, &info);
		if (err)
			break;
	}
	stmt_done(s);
	return err < 0 ? err : err;
}

/* Run @sql (binding @id to ?1) in a write transaction: the number of rows
 * it changed, or a negative errno. */
static int job_write(struct store *st, const char *sql, int64_t id)
{
	sqlite3_stmt *s;
	struct conn *c;
	int err, n;

	err = conn_get(st, &c);
	if (!err)
		err = prep(c, sql, &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now_ns());
	err = stmt_step(c, s, "update job");
	n = sqlite3_changes(c->db);
	stmt_done(s);
	return err < 0 ? err : n;
}

/* Within a write transaction: the leases on job @id's pending rows held
 * by processes that no longer run are given up, so that store_job_cancel()
 * counts only deliveries really under way. */
static int job_release_dead(struct conn *c, int64_t id)
{
	sqlite3_stmt *s, *u;
	pid_t dead[64];
	size_t freed = 0;
	int err, k;

	err = prep(c, "SELECT DISTINCT owner FROM repl_queue "
		      "INDEXED BY repl_queue_job "
		      "WHERE job = ? AND job != 0 AND status = 0 AND owner != 0",
		   &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	k = lease_owners_dead(c, s, dead, 64);
	if (k <= 0)
		return k;
	err = prep(c, "UPDATE repl_queue SET owner = 0, next_ns = 0 "
		      "WHERE job = ? AND job != 0 AND status = 0 AND owner = ?",
		   &u);
	if (err)
		return err;
	sqlite3_bind_int64(u, 1, id);
	return lease_release(c, u, dead, (size_t)k, &freed);
}

/* How many deliveries of job @id are pending (after a cancel: under way),
 * or a negative errno. */
static int job_under_way(struct conn *c, int64_t id)
{
	sqlite3_stmt *s;
	int err;

	err = prep(c, "SELECT count(*) FROM repl_queue "
		      "INDEXED BY repl_queue_job "
		      "WHERE job = ? AND job != 0 AND status = 0", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	err = stmt_step(c, s, "job under way");
	if (err == 1)
		err = sqlite3_column_int(s, 0);
	stmt_done(s);
	return err;
}

int store_job_cancel(struct store *st, int64_t id)
{
	struct conn *c;
	int err, n, under_way = 0;

	err = conn_get(st, &c);
	if (!err)
		err = tx_begin(c);
	if (err)
		return err;
	n = job_write(st, "UPDATE repl_jobs SET state = 2, done_ns = ?2 "
			  "WHERE id = ?1 AND state = 0", id);
	if (n == 0) {
		tx_rollback(c);
		return store_job_get(st, id, &(struct store_job_info){ 0 }) ==
				       -ENOENT
			       ? -ENOENT
			       : -EALREADY;
	}
	if (n > 0)
		n = job_release_dead(c, id);
	/* What was still to send stays in the job's count and report, as
	 * CANCELLED (it showed 0/0 items).  A delivery under way (leased by
	 * a process that runs) is not stopped: it ends as it ends, and is
	 * counted so (store_repl_done_many()). */
	if (n >= 0)
		n = job_write(st, "INSERT INTO repl_job_notes(job, bucket, key, "
				  "vid, dest, outcome) "
				  "SELECT q.job, b.name, o.key, v.vid, q.dest, "
				  "'CANCELLED' FROM repl_queue AS q "
				  "INDEXED BY repl_queue_job "
				  "JOIN versions AS v ON v.id = q.version "
				  "JOIN objects AS o ON o.id = q.object "
				  "JOIN buckets AS b ON b.id = o.bucket "
				  "WHERE q.job = ?1 AND q.job != 0 AND "
				  "q.status = 0 AND q.owner = 0 AND "
				  "?2 IS NOT NULL ORDER BY q.id", id);
	if (n >= 0)
		n = job_write(st, "DELETE FROM repl_queue "
				  "WHERE job = ?1 AND status = 0 AND owner = 0 "
				  "AND ?2 IS NOT NULL", id);
	if (n >= 0)
		under_way = job_under_way(c, id);
	/* Until they end, the job is not done: store_job_finish() settles
	 * it after the last of them, and says so once. */
	if (n >= 0 && under_way > 0)
		n = job_write(st, "UPDATE repl_jobs SET done_ns = NULL "
				  "WHERE id = ?1 AND ?2 IS NOT NULL", id);
	if (n >= 0 && under_way < 0)
		n = under_way;
	if (n < 0) {
		tx_rollback(c);
		return n;
	}
	err = tx_commit(st, c);
	return err ? err : under_way;
}

int store_job_finish(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	struct conn *c;
	int err, n;

	/* Most calls find deliveries still pending: a read says so without
	 * taking the write lock. */
	err = conn_get(st, &c);
	if (!err)
		err = prep(c, "SELECT 1 FROM repl_queue "
			      "INDEXED BY repl_queue_job "
			      "WHERE job = ? AND job != 0 AND status = 0 "
			      "LIMIT 1", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	err = stmt_step(c, s, "job pending");
	stmt_done(s);
	if (err)
		return err < 0 ? err : 0;
	err = tx_begin(c);
	if (err)
		return err;
	/* An active job becomes COMPLETE; a cancelled one whose deliveries
	 * under way at the cancel have now ended (done_ns NULL until then)
	 * stays CANCELLED, and is done. */
	n = job_write(st, "UPDATE repl_jobs SET "
			  "state = CASE state WHEN 0 THEN 1 ELSE state END, "
			  "done_ns = ?2 "
			  "WHERE id = ?1 AND (state = 0 OR "
			  "(state = 2 AND done_ns IS NULL)) AND NOT EXISTS "
			  "(SELECT 1 FROM repl_queue "
			  "INDEXED BY repl_queue_job "
			  "WHERE job = ?1 AND job != 0 AND status = 0)", id);
	if (n < 0) {
		tx_rollback(c);
		return n;
	}
	err = tx_commit(st, c);
	return err ? err : n > 0;
}

int store_job_items(struct store *st, int64_t id, store_job_item_cb cb,
		    void *arg)
{
	static const char *const outcome[] = { "PENDING", "COMPLETED",
					       "FAILED" };
	sqlite3_stmt *s = NULL;
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (err)
		return err;
	err = prep(c, "SELECT b.name, o.key, v.vid, q.dest, q.status, "
		      "q.error FROM repl_queue AS q INDEXED BY repl_queue_job "
		      "JOIN versions AS v ON v.id = q.version "
		      "JOIN objects AS o ON o.id = q.object "
		      "JOIN buckets AS b ON b.id = o.bucket "
		      "WHERE q.job = ? AND q.job != 0 ORDER BY q.id", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	while ((err = stmt_step(c, s, "job items")) == 1) {
		int status = sqlite3_column_int(s, 4);

		err = cb(arg, (const char *)sqlite3_column_text(s, 0),
			 (const char *)sqlite3_column_text(s, 1),
			 (const char *)sqlite3_column_text(s, 2),
			 (const char *)sqlite3_column_text(s, 3),
			 status >= 0 && status <= 2 ? outcome[status] : "?",
			 (const char *)sqlite3_column_text(s, 5));
		if (err)
			break;
	}
	stmt_done(s);
	if (err)
		return err < 0 ? err : err;
	err = prep(c, "SELECT bucket, key, vid, dest, outcome, error "
		      "FROM repl_job_notes WHERE job = ? ORDER BY id", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	while ((err = stmt_step(c, s, "job notes")) == 1) {
		err = cb(arg, (const char *)sqlite3_column_text(s, 0),
			 (const char *)sqlite3_column_text(s, 1),
			 (const char *)sqlite3_column_text(s, 2),
			 (const char *)sqlite3_column_text(s, 3),
			 (const char *)sqlite3_column_text(s, 4),
			 (const char *)sqlite3_column_text(s, 5));
		if (err)
			break;
	}
	stmt_done(s);
	return err;
}
