/*
 * repl.c - the catalog side of replication: per bucket configuration and
 * targets, the durable queue of deliveries, replication status, and the
 * multipart uploads destinations have under way.
 *
 * Design.  The replicator (replicator/) parses a bucket's configuration
 * and hands the store the targets of its enabled rules
 * (store_repl_config_set()); from then on every version committed in that
 * bucket is queued by repl_enqueue(), inside the transaction that commits
 * it, so no crash can separate a version from the intent to replicate it.
 * A queue row is one delivery of one version to one destination, and once
 * done it stays as that version's replication status there:
 *
 *                 claim (lease)                 done: COMPLETED
 *   PENDING  ---------------------->  leased  ------------------> COMPLETED
 *  (status 0,      store_repl_claim()   (next_ns =     store_repl_done()
 *   next_ns due) <----------------------  lease end,
 *                  done: PENDING, retry   owner = pid)  done: FAILED
 *                  at next_ns, or the                 ------------------> FAILED
 *                  owner died                              (error kept)
 *                  (store_repl_release_dead())
 *
 * Order: a delivery is due only when no older pending row of the same
 * object and destination exists (repl_queue_order), so the versions of
 * one key reach a destination one at a time, in the order written.  Rows
 * of a version removed for good go with it (repl_unqueue()); replicas are
 * never queued (no chaining; object.c does not call repl_enqueue() for
 * them).
 *
 * Uploads under way (repl_uploads): an S3 destination notes each
 * multipart upload it starts, between CreateMultipartUpload's answer and
 * the first part, and forgets it once completed or aborted, so that what
 * a kill -9 or a give-up leaves behind is known to be its own, and is
 * aborted at the next delivery of the key, while another client's upload
 * of that key is left alone (store_repl_upload_note()).
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

/* The statement of @sql (a literal) on @c, cached by @c. */
static int prep(struct conn *c, const char *sql, sqlite3_stmt **s)
{
	return stmt_of_sql(c, sql, s);
}

static void copy_col(char *dst, size_t size, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

const char *store_repl_status_name(enum store_repl_status s)
{
	switch (s) {
	case STORE_REPL_PENDING:
		return "PENDING";
	case STORE_REPL_COMPLETED:
		return "COMPLETED";
	case STORE_REPL_FAILED:
		return "FAILED";
	case STORE_REPL_REPLICA:
		return "REPLICA";
	default:
		return "";
	}
}

/* ---- queueing, inside the writer's transaction ---------------------- */

/* Whether version row @vid has every tag of @tags ("k=v" lines). */
static int has_tags(struct conn *c, int64_t vid, const char *tags)
{
	char name[STORE_KEY_MAX + 64];
	const char *line, *eq, *end;
	size_t plen = strlen(STORE_TAG_XATTR), klen, vlen;
	sqlite3_stmt *s;
	int err, ok;

	for (line = tags; *line; line = *end ? end + 1 : end) {
		end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		eq = memchr(line, '=', end - line);
		if (!eq)
			return 0;
		klen = eq - line;
		vlen = end - eq - 1;
		if (plen + klen + 1 > sizeof(name))
			return 0;
		memcpy(name, STORE_TAG_XATTR, plen);
		memcpy(name + plen, line, klen);
		name[plen + klen] = '\0';
		s = stmt_get(c, ST_XATTR_GET);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, vid);
		bind_text(s, 2, name, -1);
		err = stmt_step(c, s, "read tag");
		ok = err == 1 && (size_t)sqlite3_column_bytes(s, 0) == vlen &&
		     !memcmp(sqlite3_column_blob(s, 0), eq + 1, vlen);
		stmt_done(s);
		if (err < 0)
			return err;
		if (!ok)
			return 0;
	}
	return 1;
}

void repl_targets_free(struct route_tgt *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(t[i].rule);
		free(t[i].prefix);
		free(t[i].tags);
		free(t[i].dest);
	}
	free(t);
}

static char *dup_col(sqlite3_stmt *s, int col, int *oom)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	char *d;

	if (!t)
		return NULL;
	d = strdup((const char *)t);
	if (!d)
		*oom = 1;
	return d;
}

int repl_targets_load(struct conn *c, int64_t bid, const char *rule,
		      struct route_tgt **out, size_t *n)
{
	struct route_tgt *t = NULL, *grow;
	size_t k = 0, cap = 0;
	sqlite3_stmt *s;
	int err, oom = 0;

	*out = NULL;
	*n = 0;
	s = stmt_get(c, ST_REPL_TARGETS);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, bid);
	while ((err = stmt_step(c, s, "read targets")) == 1) {
		if (rule && strcmp(rule,
				   (const char *)sqlite3_column_text(s, 0)))
			continue;
		if (k == cap) {
			grow = realloc(t, (cap * 2 + 4) * sizeof(*t));
			if (!grow) {
				err = -ENOMEM;
				break;
			}
			t = grow;
			cap = cap * 2 + 4;
		}
		memset(&t[k], 0, sizeof(t[k]));
		t[k].rule = dup_col(s, 0, &oom);
		t[k].prefix = dup_col(s, 1, &oom);
		t[k].tags = dup_col(s, 2, &oom);
		t[k].dest = dup_col(s, 3, &oom);
		t[k].dm = sqlite3_column_int(s, 4);
		k++;
		if (oom) {
			err = -ENOMEM;
			break;
		}
	}
	stmt_done(s);
	if (err < 0) {
		repl_targets_free(t, k);
		return err;
	}
	*out = t;
	*n = k;
	return 0;
}

int repl_route(struct conn *c, const struct route_tgt *t, size_t n,
	       const char *key, int64_t vid, enum store_kind kind,
	       repl_route_cb cb, void *arg)
{
	/* Destinations already decided: the first (highest priority)
	 * target of a destination decides for it, and may say no. */
	const char **done;
	size_t ndone = 0, i, j;
	int err = 0, m;

	if (!n)
		return 0;
	done = calloc(n, sizeof(*done));
	if (!done)
		return -ENOMEM;
	for (i = 0; !err && i < n; i++) {
		for (j = 0; j < ndone; j++)
			if (!strcmp(done[j], t[i].dest))
				break;
		if (j < ndone)
			continue;
		if (strncmp(key, t[i].prefix, strlen(t[i].prefix)))
			continue;
		if (t[i].tags && *t[i].tags) {
			/* A delete marker has no tags. */
			m = kind == STORE_DELETE_MARKER
				    ? 0 : has_tags(c, vid, t[i].tags);
			if (m < 0) {
				err = m;
				break;
			}
			if (!m)
				continue;
		}
		done[ndone++] = t[i].dest;
		if (kind == STORE_DELETE_MARKER && !t[i].dm)
			continue;
		err = cb(arg, &t[i]);
	}
	free(done);
	return err;
}

struct enqueue_arg {
	struct conn *c;
	int64_t oid, vid, now, job;
	int only_sent;	/* only to destinations the version went to */
	int mirrors;	/* only to dir:// destinations */
};

/* Whether version row @vid was queued for @dest before: 1, 0, or a
 * negative errno. */
static int sent_before(struct conn *c, int64_t vid, const char *dest)
{
	sqlite3_stmt *s;
	int err;

	err = prep(c, "SELECT 1 FROM repl_queue WHERE version = ? AND "
		      "dest = ? LIMIT 1", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, vid);
	bind_text(s, 2, dest, -1);
	err = stmt_step(c, s, "delivered before");
	stmt_done(s);
	return err;
}

static int enqueue_one(void *arg, const struct route_tgt *t)
{
	struct enqueue_arg *a = arg;
	sqlite3_stmt *q;
	int err;

	if (a->mirrors && strncmp(t->dest, "dir://", 6))
		return 0;
	if (a->only_sent) {
		err = sent_before(a->c, a->vid, t->dest);
		if (err <= 0)
			return err;
	}
	q = stmt_get(a->c, ST_REPL_ENQUEUE);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, a->vid);
	sqlite3_bind_int64(q, 2, a->oid);
	bind_text(q, 3, t->dest, -1);
	bind_text(q, 4, t->rule, -1);
	sqlite3_bind_int64(q, 5, a->now);
	sqlite3_bind_int64(q, 6, a->job);
	return stmt_run(a->c, q, "queue version");
}

int repl_queue_insert(struct conn *c, int64_t oid, int64_t vid,
		      const struct route_tgt *t, int64_t job)
{
	struct enqueue_arg a = { c, oid, vid, now_ns(), job, 0, 0 };

	return enqueue_one(&a, t);
}

static int enqueue(struct enqueue_arg *a, const struct bucket_row *b,
		   const char *key, enum store_kind kind)
{
	struct conn *c = a->c;
	struct route_tgt *t;
	size_t n;
	int err, before;

	err = repl_targets_load(c, b->id, NULL, &t, &n);
	if (err)
		return err;
	before = sqlite3_total_changes(c->db);
	err = repl_route(c, t, n, key, a->vid, kind, enqueue_one, a);
	repl_targets_free(t, n);
	return err < 0 ? err : sqlite3_total_changes(c->db) - before;
}

int repl_enqueue(struct conn *c, const struct bucket_row *b, const char *key,
		 int64_t oid, int64_t vid, enum store_kind kind)
{
	struct enqueue_arg a = { c, oid, vid, now_ns(), 0, 0, 0 };

	return b->repl ? enqueue(&a, b, key, kind) : 0;
}

int repl_enqueue_update(struct conn *c, const struct bucket_row *b,
			const char *key, int64_t oid, int64_t vid,
			enum store_kind kind)
{
	struct enqueue_arg a = { c, oid, vid, now_ns(), 0, 0, 0 };
	sqlite3_stmt *s;
	int err;

	if (!b->repl)
		return 0;
	/* Written before the rules were put: only where it went (a batch
	 * job sent it). */
	err = prep(c, "SELECT v.created_ns < r.set_ns FROM versions AS v, "
		      "repl_config AS r WHERE v.id = ? AND r.bucket = ?", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, vid);
	sqlite3_bind_int64(s, 2, b->id);
	err = stmt_step(c, s, "version before the rules");
	a.only_sent = err == 1 && sqlite3_column_int(s, 0);
	stmt_done(s);
	if (err < 0)
		return err;
	return enqueue(&a, b, key, kind);
}

int repl_enqueue_mirrors(struct conn *c, const struct bucket_row *b,
			 const char *key, int64_t oid, int64_t vid,
			 enum store_kind kind)
{
	struct enqueue_arg a = { c, oid, vid, now_ns(), 0, 0, 1 };

	return b->repl ? enqueue(&a, b, key, kind) : 0;
}

int repl_mirror_current(struct conn *c, const struct bucket_row *b,
			const char *key)
{
	enum store_kind kind;
	int64_t oid, cur;
	int err, live, replica;

	if (!b->repl)
		return 0;
	err = obj_get(c, b->id, key, &oid, &cur, &live);
	if (err <= 0 || !cur)
		return err < 0 ? err : 0;	/* no version left */
	err = ver_kind(c, cur, &oid, &kind, &replica);
	if (err <= 0 || replica)
		return err < 0 ? err : 0;
	err = repl_enqueue_mirrors(c, b, key, oid, cur, kind);
	return err < 0 ? err : 0;
}

int repl_unqueue(struct conn *c, int64_t vid)
{
	sqlite3_stmt *s = stmt_get(c, ST_REPL_UNQUEUE);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, vid);
	return stmt_run(c, s, "unqueue version");
}

/* ---- configuration -------------------------------------------------- */

/* "k=v" lines of @t's tags into a malloc()ed string (NULL: none). */
static int tags_text(const struct store_repl_target *t, char **out)
{
	size_t len = 0, i, o = 0;
	char *buf;

	*out = NULL;
	if (!t->ntags)
		return 0;
	for (i = 0; i < t->ntags; i++) {
		if (strchr(t->tags[i].key, '=') ||
		    strchr(t->tags[i].key, '\n') ||
		    strchr(t->tags[i].value, '\n'))
			return -EINVAL;
		len += strlen(t->tags[i].key) + strlen(t->tags[i].value) + 2;
	}
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < t->ntags; i++)
		o += snprintf(buf + o, len + 1 - o, "%s%s=%s", i ? "\n" : "",
			      t->tags[i].key, t->tags[i].value);
	*out = buf;
	return 0;
}

/* Within a transaction: remove bucket @bid's configuration and targets. */
static int config_clear(struct conn *c, int64_t bid)
{
	static const char *const sql[] = {
		"DELETE FROM repl_config WHERE bucket = ?",
		"DELETE FROM repl_targets WHERE bucket = ?",
		"UPDATE buckets SET repl = 0 WHERE id = ?",
	};
	sqlite3_stmt *s;
	size_t i;
	int err = 0;

	for (i = 0; !err && i < sizeof(sql) / sizeof(sql[0]); i++) {
		err = prep(c, sql[i], &s);
		if (err)
			break;
		sqlite3_bind_int64(s, 1, bid);
		err = stmt_step(c, s, "clear replication");
		stmt_done(s);
		if (err > 0)
			err = 0;
	}
	return err;
}

int repl_bucket_forget(struct conn *c, int64_t bid)
{
	return config_clear(c, bid);
}

/*
 * Live deliveries still pending to a destination that no rule of bucket
 * @bid names any more (the rules were deleted or replaced): FAILED, with
 * why, instead of retried for as long as their attempts last.  A batch
 * job's stay: a job may name its destination itself.
 */
static int orphans_fail(struct conn *c, int64_t bid)
{
	sqlite3_stmt *s;
	int err;

	err = prep(c, "UPDATE repl_queue SET status = ?, owner = 0, "
		      "done_ns = ?, error = 'no rule of the bucket sends to "
		      "this destination any more' "
		      "WHERE status = ? AND job = 0 AND object IN "
		      "(SELECT id FROM objects WHERE bucket = ?) AND NOT EXISTS "
		      "(SELECT 1 FROM repl_targets AS t WHERE t.bucket = ? AND "
		      "t.dest = repl_queue.dest)", &s);
	if (err)
		return err;
	sqlite3_bind_int(s, 1, STORE_REPL_FAILED);
	sqlite3_bind_int64(s, 2, now_ns());
	sqlite3_bind_int(s, 3, STORE_REPL_PENDING);
	sqlite3_bind_int64(s, 4, bid);
	sqlite3_bind_int64(s, 5, bid);
	err = stmt_step(c, s, "fail orphaned deliveries");
	stmt_done(s);
	return err > 0 ? 0 : err;
}

int store_repl_config_set(struct store *st, const char *bucket,
			  const char *json, const char *hook,
			  const struct store_repl_target *targets, size_t n)
{
	struct bucket_row b;
	sqlite3_stmt *s = NULL;
	struct conn *c;
	char *tags = NULL;
	size_t i;
	int err;

	err = conn_get(st, &c);
	if (err)
		return err;
	err = tx_begin(c);
	if (err)
		return err;
	err = bucket_row_get(c, bucket, &b);
	if (!err)
		err = config_clear(c, b.id);
	if (err || !json)
		goto out;
	err = prep(c, "INSERT INTO repl_config(bucket, json, hook, set_ns) "
		      "VALUES (?, ?, ?, ?)", &s);
	if (err)
		goto out;
	sqlite3_bind_int64(s, 1, b.id);
	bind_text(s, 2, json, -1);
	if (hook)
		bind_text(s, 3, hook, -1);
	sqlite3_bind_int64(s, 4, now_ns());
	err = stmt_step(c, s, "set replication");
	stmt_done(s);
	s = NULL;
	if (err < 0)
		goto out;
	err = prep(c, "INSERT INTO repl_targets(bucket, rule, priority, "
		      "prefix, tags, dest, delete_markers, threshold_ns) "
		      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &s);
	for (i = 0; !err && i < n; i++) {
		const struct store_repl_target *t = &targets[i];

		err = tags_text(t, &tags);
		if (err)
			break;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, b.id);
		bind_text(s, 2, t->rule_id, -1);
		sqlite3_bind_int(s, 3, t->priority);
		bind_text(s, 4, t->prefix ? t->prefix : "", -1);
		if (tags)
			bind_text(s, 5, tags, -1);
		else
			sqlite3_bind_null(s, 5);
		bind_text(s, 6, t->dest, -1);
		sqlite3_bind_int(s, 7, !!t->delete_markers);
		sqlite3_bind_int64(s, 8, t->threshold_ns);
		err = stmt_step(c, s, "add target");
		free(tags);
		tags = NULL;
		if (err > 0)
			err = 0;
	}
	stmt_done(s);
	s = NULL;
	if (err)
		goto out;
	err = prep(c, "UPDATE buckets SET repl = ? WHERE id = ?", &s);
	if (err)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)n);
	sqlite3_bind_int64(s, 2, b.id);
	err = stmt_step(c, s, "count targets");
	stmt_done(s);
	if (err > 0)
		err = 0;
out:
	if (!err)	/* b was read at the start */
		err = orphans_fail(c, b.id);
	if (!err)
		err = tx_commit(st, c);
	if (err)
		tx_rollback(c);
	return err;
}

int store_repl_config_get(struct store *st, const char *bucket,
			  char **json_out, char **hook_out)
{
	char *json = NULL, *hook = NULL;
	sqlite3_stmt *s;
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (err)
		return err;
	err = prep(c, "SELECT r.json, r.hook FROM repl_config AS r "
		      "JOIN buckets AS b ON b.id = r.bucket WHERE b.name = ?",
		   &s);
	if (err)
		return err;
	bind_text(s, 1, bucket, -1);
	err = stmt_step(c, s, "get replication");
	if (err == 1) {
		json = strdup((const char *)sqlite3_column_text(s, 0));
		if (sqlite3_column_type(s, 1) != SQLITE_NULL)
			hook = strdup((const char *)sqlite3_column_text(s, 1));
		err = !json || (sqlite3_column_type(s, 1) != SQLITE_NULL &&
				!hook) ? -ENOMEM : 0;
	} else if (err == 0) {
		err = -ENOENT;
	}
	stmt_done(s);
	if (!err && json_out) {
		*json_out = json;
		json = NULL;
	}
	if (!err && hook_out) {
		*hook_out = hook;
		hook = NULL;
	}
	free(json);
	free(hook);
	return err;
}

/* ---- the queue ------------------------------------------------------ */

/* The columns of a task, from repl_queue AS q joined with versions AS v,
 * objects AS o and buckets AS b, as task_read() reads them. */
#define TASK_COLS                                                             \
	"q.id, b.name, o.key, q.dest, q.rule, q.attempts, q.queued_ns, "      \
	"q.job, coalesce((SELECT t.threshold_ns FROM repl_targets AS t "      \
	"WHERE t.bucket = b.id AND t.rule = q.rule AND t.dest = q.dest), 0), " \
	"q.late, " VER_COLS

/* The claim's query, with @skip: "" or CLAIM_SKIP, destinations left
 * out (?3 to ?10: STORE_CLAIM_SKIP_MAX of them). */
#define CLAIM_SKIP "AND q.dest NOT IN (?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
#define CLAIM_SQL(skip)                                                        \
	"SELECT " TASK_COLS                                                    \
	" FROM repl_queue AS q INDEXED BY repl_queue_due "                     \
	"JOIN versions AS v ON v.id = q.version "                              \
	"JOIN objects AS o ON o.id = q.object "                                \
	"JOIN buckets AS b ON b.id = o.bucket "                                \
	"WHERE q.status = 0 AND q.next_ns <= ?1 " skip "AND NOT EXISTS "       \
	"(SELECT 1 FROM repl_queue AS p INDEXED BY repl_queue_order "          \
	"WHERE p.status = 0 AND p.object = q.object "                          \
	"AND p.dest = q.dest AND p.id < q.id) "                                \
	"ORDER BY q.next_ns, q.id LIMIT ?2"

static void task_read(sqlite3_stmt *s, struct store_repl_task *t)
{
	t->id = sqlite3_column_int64(s, 0);
	copy_col(t->bucket, sizeof(t->bucket), s, 1);
	copy_col(t->key, sizeof(t->key), s, 2);
	copy_col(t->dest, sizeof(t->dest), s, 3);
	copy_col(t->rule_id, sizeof(t->rule_id), s, 4);
	t->attempts = sqlite3_column_int(s, 5);
	t->queued_ns = sqlite3_column_int64(s, 6);
	t->job = sqlite3_column_int64(s, 7);
	t->threshold_ns = sqlite3_column_int64(s, 8);
	t->late = sqlite3_column_int(s, 9);
	ver_row_read(s, 10, &t->obj, NULL);
}

int store_repl_overdue(struct store *st, store_repl_task_cb cb, void *arg)
{
	enum { MAX = 64 };
	sqlite3_stmt *s = NULL, *u = NULL;
	struct store_repl_task *t;
	int marked[MAX];
	struct conn *c;
	int err, n = 0, i, k = 0;

	t = malloc(MAX * sizeof(*t));
	if (!t)
		return -ENOMEM;
	err = conn_get_settled(st, &c);
	if (!err)
		err = prep(c, "SELECT " TASK_COLS
			      " FROM repl_queue AS q INDEXED BY repl_queue_due "
			      "JOIN versions AS v ON v.id = q.version "
			      "JOIN objects AS o ON o.id = q.object "
			      "JOIN buckets AS b ON b.id = o.bucket "
			      "WHERE q.status = 0 AND q.late = 0 "
			      "AND q.queued_ns < ?1 AND EXISTS "
			      "(SELECT 1 FROM repl_targets AS t "
			      "WHERE t.bucket = b.id "
			      "AND t.rule = q.rule AND t.dest = q.dest "
			      "AND t.threshold_ns > 0 "
			      "AND ?1 - q.queued_ns > t.threshold_ns) LIMIT ?2",
			   &s);
	if (err)
		goto out;
	/* First a read, without the write lock: usually nothing is late. */
	sqlite3_bind_int64(s, 1, now_ns());
	sqlite3_bind_int(s, 2, MAX);
	while (n < MAX && (err = stmt_step(c, s, "find overdue")) == 1)
		task_read(s, &t[n++]);
	if (err < 0 || !n)
		goto out;
	err = prep(c, "UPDATE repl_queue SET late = 1 "
		      "WHERE id = ? AND late = 0", &u);
	if (!err)
		err = tx_begin(c);
	for (i = 0; !err && i < n; i++) {
		sqlite3_reset(u);
		sqlite3_bind_int64(u, 1, t[i].id);
		err = stmt_step(c, u, "mark overdue");
		if (err > 0)
			err = 0;
		/* Another worker may have reported it meanwhile. */
		marked[i] = !err && sqlite3_changes(c->db) > 0;
	}
	if (u && !err)
		err = tx_commit(st, c);
	else if (u)
		tx_rollback(c);
	/* Outside the transaction: @cb may take its time. */
	for (i = 0; !err && i < n; i++)
		if (marked[i]) {
			t[i].late = 1;
			cb(arg, &t[i]);
			k++;
		}
out:
	stmt_done(s);
	stmt_done(u);
	free(t);
	return err < 0 ? err : k;
}

int store_repl_mark_late(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	struct conn *c;
	int err, n;

	err = conn_get(st, &c);
	if (!err)
		err = prep(c, "UPDATE repl_queue SET late = 1 "
			      "WHERE id = ? AND late = 0", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, id);
	err = tx_begin(c);
	if (err) {
		stmt_done(s);
		return err;
	}
	err = stmt_step(c, s, "mark late");
	stmt_done(s);
	if (err < 0) {
		tx_rollback(c);
		return err;
	}
	n = sqlite3_changes(c->db) > 0;
	err = tx_commit(st, c);
	return err < 0 ? err : n;
}

/* Bytes of content past which a claim takes no further delivery. */
#define CLAIM_BATCH_BYTES (1u << 20)

static int claim(struct store *st, size_t max, int64_t lease_ns,
		 const char *const *skip, size_t nskip, int one_dest,
		 struct store_repl_task *out, size_t *n);

int store_repl_claim(struct store *st, size_t max, int64_t lease_ns,
		     struct store_repl_task *out, size_t *n)
{
	return claim(st, max, lease_ns, NULL, 0, 0, out, n);
}

int store_repl_claim_from(struct store *st, size_t max, int64_t lease_ns,
			  const char *const *skip, size_t nskip,
			  struct store_repl_task *out, size_t *n)
{
	return claim(st, max, lease_ns, skip, nskip, 1, out, n);
}

/*
 * The queue's polls (claim(), store_repl_overdue(), store_repl_due_now(),
 * store_repl_release_dead()) read with conn_get_settled(): a version
 * still in the close journal has no deliveries queued yet, and the
 * journal's thread kicks the replicator once it has applied one that
 * queued some (store_journal_on_applied()).  conn_get() would apply the
 * whole journal in the worker, at every poll, ahead of the nice thread
 * whose work that is.
 */
static int claim(struct store *st, size_t max, int64_t lease_ns,
		 const char *const *skip, size_t nskip, int one_dest,
		 struct store_repl_task *out, size_t *n)
{
	uint64_t bytes = 0;
	size_t i;
	sqlite3_stmt *s = NULL, *u = NULL;
	int64_t now = now_ns();
	struct conn *c;
	size_t k = 0;
	int err;

	*n = 0;
	err = conn_get_settled(st, &c);
	if (err)
		return err;
	/* Idle workers look often: a read says there is nothing due without
	 * taking the write lock. */
	err = prep(c, "SELECT 1 FROM repl_queue INDEXED BY repl_queue_due "
		      "WHERE status = 0 AND next_ns <= ? LIMIT 1", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, now);
	err = stmt_step(c, s, "anything due");
	stmt_done(s);
	s = NULL;
	if (err <= 0)
		return err;
	err = tx_begin(c);
	if (err)
		return err;
	err = prep(c, nskip ? CLAIM_SQL(CLAIM_SKIP) : CLAIM_SQL(""), &s);
	if (!err)
		err = prep(c, "UPDATE repl_queue SET next_ns = ?, owner = ? "
			      "WHERE id = ?", &u);
	if (err)
		goto out;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	/* No destination is "": a slot not used skips nothing. */
	for (i = 0; nskip && i < STORE_CLAIM_SKIP_MAX; i++)
		bind_text(s, (int)i + 3, i < nskip ? skip[i] : "", -1);
	while (k < max && (err = stmt_step(c, s, "claim")) == 1) {
		struct store_repl_task *t = &out[k];

		task_read(s, t);
		/* One destination per claim: a slow one holds up only its
		 * own deliveries. */
		if (one_dest && k && strcmp(t->dest, out[0].dest))
			continue;
		/* Small deliveries go in batches; a large one alone, so that
		 * large ones are sent in parallel by several workers. */
		if (k && bytes + t->obj.size > CLAIM_BATCH_BYTES)
			break;
		bytes += t->obj.size;
		sqlite3_reset(u);
		sqlite3_bind_int64(u, 1, now + lease_ns);
		sqlite3_bind_int64(u, 2, getpid());
		sqlite3_bind_int64(u, 3, t->id);
		err = stmt_step(c, u, "lease");
		if (err < 0)
			break;
		k++;
	}
	if (err > 0)
		err = 0;
out:
	stmt_done(s);
	stmt_done(u);
	if (!err && k)
		err = tx_commit(st, c);
	else if (!err)
		tx_rollback(c);	/* nothing written */
	if (err) {
		tx_rollback(c);
		k = 0;
	}
	*n = k;
	return err;
}

int store_repl_done_many(struct store *st,
			 const struct store_repl_outcome *o, size_t n)
{
	sqlite3_stmt *retry = NULL, *fin = NULL, *prune = NULL, *s;
	sqlite3_stmt *cnote = NULL, *cdrop = NULL;
	int64_t now = now_ns();
	struct conn *c;
	size_t i;
	int err;

	err = conn_get(st, &c);
	if (!err)
		err = prep(c, "UPDATE repl_queue SET status = 0, owner = 0, "
			      "attempts = attempts + 1, next_ns = ?, "
			      "error = ? WHERE id = ?", &retry);
	if (!err)
		err = prep(c, "UPDATE repl_queue SET status = ?, owner = 0, "
			      "done_ns = ?, error = ? WHERE id = ?", &fin);
	/* A delivery done makes the older ones of its version and
	 * destination history (REPL_NEWEST): they go, but for a batch
	 * job's, which its progress counts.  Else every chmod of a file
	 * left a row, and a name in its listxattr. */
	if (!err)
		err = prep(c, "DELETE FROM repl_queue WHERE version = "
			      "(SELECT version FROM repl_queue WHERE id = ?1) "
			      "AND dest = (SELECT dest FROM repl_queue "
			      "WHERE id = ?1) AND id < ?1 AND status != 0 "
			      "AND job = 0", &prune);
	/* A delivery of a cancelled batch job that was under way at the
	 * cancel, and is to be retried, is not: it is CANCELLED as what the
	 * job had not sent yet was (store_job_cancel()). */
	if (!err)
		err = prep(c, "INSERT INTO repl_job_notes(job, bucket, key, "
			      "vid, dest, outcome, error) "
			      "SELECT q.job, b.name, o.key, v.vid, q.dest, "
			      "'CANCELLED', q.error FROM repl_queue AS q "
			      "JOIN repl_jobs AS j ON j.id = q.job "
			      "JOIN versions AS v ON v.id = q.version "
			      "JOIN objects AS o ON o.id = q.object "
			      "JOIN buckets AS b ON b.id = o.bucket "
			      "WHERE q.id = ? AND q.job != 0 AND j.state = 2",
			   &cnote);
	if (!err)
		err = prep(c, "DELETE FROM repl_queue WHERE id = ? AND job IN "
			      "(SELECT id FROM repl_jobs WHERE state = 2)",
			   &cdrop);
	if (!err)
		err = tx_begin(c);
	for (i = 0; !err && i < n; i++) {
		if (o[i].status == STORE_REPL_PENDING) {
			s = retry;
			sqlite3_reset(s);
			sqlite3_bind_int64(s, 1, o[i].next_ns);
			if (o[i].error)
				bind_text(s, 2, o[i].error, -1);
			else
				sqlite3_bind_null(s, 2);
			sqlite3_bind_int64(s, 3, o[i].id);
		} else {
			s = fin;
			sqlite3_reset(s);
			sqlite3_bind_int(s, 1, o[i].status);
			sqlite3_bind_int64(s, 2, now);
			if (o[i].error)
				bind_text(s, 3, o[i].error, -1);
			else
				sqlite3_bind_null(s, 3);
			sqlite3_bind_int64(s, 4, o[i].id);
		}
		err = stmt_step(c, s, "record delivery");
		if (err >= 0 && o[i].status == STORE_REPL_COMPLETED) {
			sqlite3_reset(prune);
			sqlite3_bind_int64(prune, 1, o[i].id);
			err = stmt_step(c, prune, "forget older deliveries");
		}
		if (err >= 0 && o[i].status == STORE_REPL_PENDING) {
			sqlite3_reset(cnote);
			sqlite3_bind_int64(cnote, 1, o[i].id);
			err = stmt_step(c, cnote, "cancel a retry");
		}
		if (err >= 0 && o[i].status == STORE_REPL_PENDING) {
			sqlite3_reset(cdrop);
			sqlite3_bind_int64(cdrop, 1, o[i].id);
			err = stmt_step(c, cdrop, "cancel a retry");
		}
		if (err > 0)
			err = 0;
	}
	stmt_done(retry);
	stmt_done(fin);
	stmt_done(prune);
	stmt_done(cnote);
	stmt_done(cdrop);
	if (!err)
		return tx_commit(st, c);
	tx_rollback(c);
	return err;
}

int store_repl_done(struct store *st, int64_t id,
		    enum store_repl_status status, int64_t next_ns,
		    const char *error)
{
	struct store_repl_outcome o = { id, status, next_ns, error };

	return store_repl_done_many(st, &o, 1);
}

int lease_owners_dead(struct conn *c, sqlite3_stmt *owners, pid_t *dead,
		      size_t max)
{
	size_t k = 0;
	int err = 0;

	while (k < max && (err = stmt_step(c, owners, "read owners")) == 1) {
		pid_t pid = (pid_t)sqlite3_column_int64(owners, 0);

		if (pid != getpid() && kill(pid, 0) && errno == ESRCH)
			dead[k++] = pid;
	}
	stmt_done(owners);
	return err < 0 ? err : (int)k;
}

int lease_release(struct conn *c, sqlite3_stmt *release, const pid_t *dead,
		  size_t k, size_t *changed)
{
	int at = sqlite3_bind_parameter_count(release), err = 0;
	size_t i;

	for (i = 0; !err && i < k; i++) {
		sqlite3_reset(release);
		sqlite3_bind_int64(release, at, dead[i]);
		err = stmt_step(c, release, "release leases");
		if (err >= 0) {
			*changed += sqlite3_changes(c->db);
			err = 0;
		}
	}
	stmt_done(release);
	return err;
}

int store_repl_release_dead(struct store *st, size_t *n)
{
	sqlite3_stmt *s, *u;
	struct conn *c;
	pid_t dead[64];
	size_t freed = 0;
	int err, k;

	if (n)
		*n = 0;
	err = conn_get_settled(st, &c);
	if (err)
		return err;
	err = prep(c, "SELECT DISTINCT owner FROM repl_queue "
		      "INDEXED BY repl_queue_due "
		      "WHERE status = 0 AND next_ns > 0 AND owner != 0", &s);
	if (err)
		return err;
	k = lease_owners_dead(c, s, dead, 64);
	if (k <= 0)
		return k;
	err = prep(c, "UPDATE repl_queue SET owner = 0, next_ns = 0 "
		      "WHERE status = 0 AND owner = ?", &u);
	if (err)
		return err;
	err = tx_begin(c);
	if (err) {
		stmt_done(u);
		return err;
	}
	err = lease_release(c, u, dead, (size_t)k, &freed);
	if (!err)
		err = tx_commit(st, c);
	else
		tx_rollback(c);
	if (!err && freed)
		log_info("replication: %zu deliveries of stopped processes "
			 "are due again", freed);
	if (n)
		*n = freed;
	return err;
}

int store_repl_due_now(struct store *st, const char *dest, size_t *n)
{
	sqlite3_stmt *u;
	struct conn *c;
	int err;

	if (n)
		*n = 0;
	err = conn_get_settled(st, &c);
	if (err)
		return err;
	/* "status != 1" lets repl_queue_open serve the search by dest. */
	err = prep(c, "UPDATE repl_queue SET next_ns = 0 "
		      "WHERE dest = ? AND status != 1 AND status = 0 "
		      "AND owner = 0 AND next_ns > ?", &u);
	if (err)
		return err;
	bind_text(u, 1, dest, -1);
	sqlite3_bind_int64(u, 2, now_ns());
	err = stmt_step(c, u, "make deliveries due");
	if (err >= 0) {
		if (n)
			*n = (size_t)sqlite3_changes(c->db);
		err = 0;
	}
	stmt_done(u);
	return err;
}

/* SQL: objects row "o" is @key (?k) or below it; NULL ?k: any. */
#define IN_SCOPE(k)                                                           \
	"(" k " IS NULL OR o.key = " k " OR (o.key >= " k " || '/' AND "      \
	"o.key < " k " || '0'))"

int store_repl_pending(struct store *st, const char *bucket, const char *key,
		       uint64_t *n)
{
	sqlite3_stmt *s;
	struct conn *c;
	int err;

	*n = 0;
	if (key && !*key)
		key = NULL;
	err = conn_get(st, &c);
	if (err)
		return err;
	if (bucket)
		err = prep(c, "SELECT count(*) FROM repl_queue AS q "
			      "INDEXED BY repl_queue_due "
			      "JOIN objects AS o ON o.id = q.object "
			      "JOIN buckets AS b ON b.id = o.bucket "
			      "WHERE q.status = 0 AND b.name = ?1 AND "
			      IN_SCOPE("?2"), &s);
	else
		err = prep(c, "SELECT count(*) FROM repl_queue "
			      "INDEXED BY repl_queue_due WHERE status = 0",
			   &s);
	if (err)
		return err;
	if (bucket) {
		bind_text(s, 1, bucket, -1);
		if (key)
			bind_text(s, 2, key, -1);
	}
	err = stmt_step(c, s, "count pending");
	if (err == 1) {
		*n = (uint64_t)sqlite3_column_int64(s, 0);
		err = 0;
	}
	stmt_done(s);
	return err;
}

/* ---- status --------------------------------------------------------- */

int store_repl_version_status(struct store *st, const char *bucket,
			      const char *key, const char *version_id,
			      enum store_repl_status *overall,
			      store_repl_dest_cb cb, void *arg)
{
	int any = 0, failed = 0, pending = 0, err;
	sqlite3_stmt *s;
	struct conn *c;

	*overall = STORE_REPL_NONE;
	err = conn_get(st, &c);
	if (err)
		return err;
	err = prep(c, "SELECT v.id, v.replica FROM versions AS v "
		      "JOIN objects AS o ON o.id = v.object "
		      "JOIN buckets AS b ON b.id = o.bucket "
		      "WHERE b.name = ? AND o.key = ? AND v.vid = ?", &s);
	if (err)
		return err;
	bind_text(s, 1, bucket, -1);
	bind_text(s, 2, key, -1);
	bind_text(s, 3, version_id, -1);
	err = stmt_step(c, s, "find version");
	if (err == 0)
		err = -ENOENT;
	if (err < 0) {
		stmt_done(s);
		return err;
	}
	if (sqlite3_column_int(s, 1)) {
		stmt_done(s);
		*overall = STORE_REPL_REPLICA;
		return 0;
	}
	{
		int64_t vid = sqlite3_column_int64(s, 0);

		stmt_done(s);
		err = prep(c, "SELECT q.dest, q.rule, q.status, q.error "
			      "FROM repl_queue AS q WHERE q.version = ? AND "
			      REPL_NEWEST("q") " ORDER BY q.id", &s);
		if (err)
			return err;
		sqlite3_bind_int64(s, 1, vid);
	}
	while ((err = stmt_step(c, s, "read status")) == 1) {
		int status = sqlite3_column_int(s, 2);

		any = 1;
		failed |= status == STORE_REPL_FAILED;
		pending |= status == STORE_REPL_PENDING;
		if (cb) {
			err = cb(arg, (const char *)sqlite3_column_text(s, 0),
				 (const char *)sqlite3_column_text(s, 1),
				 status,
				 (const char *)sqlite3_column_text(s, 3));
			if (err)
				break;
		}
	}
	stmt_done(s);
	if (err < 0)
		return err;
	if (any)
		*overall = failed ? STORE_REPL_FAILED :
			   pending ? STORE_REPL_PENDING : STORE_REPL_COMPLETED;
	return 0;
}

/* The row of @stats for (@bucket, @rule, @dest), added when missing. */
static struct store_repl_stat *stat_row(struct store_repl_stat **stats,
					size_t *n, const char *bucket,
					const char *rule, const char *dest)
{
	struct store_repl_stat *grow, *r;
	size_t i;

	for (i = 0; i < *n; i++) {
		r = &(*stats)[i];
		if (!strcmp(r->bucket, bucket) && !strcmp(r->rule_id, rule) &&
		    !strcmp(r->dest, dest))
			return r;
	}
	grow = realloc(*stats, (*n + 1) * sizeof(**stats));
	if (!grow)
		return NULL;
	*stats = grow;
	r = &grow[(*n)++];
	memset(r, 0, sizeof(*r));
	snprintf(r->bucket, sizeof(r->bucket), "%s", bucket);
	snprintf(r->rule_id, sizeof(r->rule_id), "%s", rule);
	snprintf(r->dest, sizeof(r->dest), "%s", dest);
	return r;
}

int store_repl_stats(struct store *st, const char *bucket, const char *key,
		     store_repl_stat_cb cb, void *arg)
{
	struct store_repl_stat *stats = NULL, *r;
	sqlite3_stmt *s = NULL;
	struct conn *c;
	size_t n = 0, i;
	int err;

	if (key && !*key)
		key = NULL;

	err = conn_get(st, &c);
	if (err)
		return err;
	/* One snapshot for the three reads. */
	err = prep(c, "BEGIN", &s);
	if (!err) {
		err = stmt_step(c, s, "begin");
		stmt_done(s);
		s = NULL;
		if (err < 0)
			return err;
	}
	err = prep(c, "SELECT b.name, t.rule, t.dest FROM repl_targets AS t "
		      "JOIN buckets AS b ON b.id = t.bucket "
		      "WHERE ?1 IS NULL OR b.name = ?1 "
		      "ORDER BY b.name, t.priority DESC, t.id", &s);
	if (err)
		goto out;
	if (bucket)
		bind_text(s, 1, bucket, -1);
	while ((err = stmt_step(c, s, "read targets")) == 1)
		if (!stat_row(&stats, &n,
			      (const char *)sqlite3_column_text(s, 0),
			      (const char *)sqlite3_column_text(s, 1),
			      (const char *)sqlite3_column_text(s, 2))) {
			err = -ENOMEM;
			break;
		}
	stmt_done(s);
	s = NULL;
	if (err < 0)
		goto out;
	err = prep(c, "SELECT b.name, q.rule, q.dest, q.status, count(*), "
		      "sum(v.size), min(q.queued_ns) "
		      "FROM repl_queue AS q INDEXED BY repl_queue_open "
		      "JOIN versions AS v ON v.id = q.version "
		      "JOIN objects AS o ON o.id = q.object "
		      "JOIN buckets AS b ON b.id = o.bucket "
		      "WHERE q.status != 1 AND (?1 IS NULL OR b.name = ?1) "
		      "AND (q.status = 0 OR " REPL_NEWEST("q") ") AND "
		      IN_SCOPE("?2") " "
		      "GROUP BY b.name, q.rule, q.dest, q.status", &s);
	if (err)
		goto out;
	if (bucket)
		bind_text(s, 1, bucket, -1);
	if (bucket && key)
		bind_text(s, 2, key, -1);
	while ((err = stmt_step(c, s, "count deliveries")) == 1) {
		r = stat_row(&stats, &n,
			     (const char *)sqlite3_column_text(s, 0),
			     (const char *)sqlite3_column_text(s, 1),
			     (const char *)sqlite3_column_text(s, 2));
		if (!r) {
			err = -ENOMEM;
			break;
		}
		if (sqlite3_column_int(s, 3) == STORE_REPL_PENDING) {
			r->ops_pending = sqlite3_column_int64(s, 4);
			r->bytes_pending = sqlite3_column_int64(s, 5);
			r->oldest_pending_ns = sqlite3_column_int64(s, 6);
		} else {
			r->ops_failed = sqlite3_column_int64(s, 4);
		}
	}
	stmt_done(s);
	s = NULL;
	if (err < 0)
		goto out;
	/* The last error of each: of a failed delivery, or of the last
	 * failed attempt of a pending one. */
	err = prep(c, "SELECT q.error, coalesce(q.done_ns, q.next_ns) "
		      "FROM repl_queue AS q INDEXED BY repl_queue_open "
		      "JOIN objects AS o ON o.id = q.object "
		      "JOIN buckets AS b ON b.id = o.bucket "
		      "WHERE q.status != 1 AND q.dest = ?1 AND q.rule = ?2 "
		      "AND b.name = ?3 AND q.error IS NOT NULL AND "
		      "(q.status = 0 OR " REPL_NEWEST("q") ") AND "
		      IN_SCOPE("?4") " ORDER BY q.id DESC LIMIT 1", &s);
	if (err)
		goto out;
	for (i = 0; i < n; i++) {
		r = &stats[i];
		sqlite3_reset(s);
		bind_text(s, 1, r->dest, -1);
		bind_text(s, 2, r->rule_id, -1);
		bind_text(s, 3, r->bucket, -1);
		if (bucket && key)
			bind_text(s, 4, key, -1);
		else
			sqlite3_bind_null(s, 4);
		err = stmt_step(c, s, "read last error");
		if (err < 0)
			goto out;
		if (err == 1) {
			msg_fit(r->last_error, sizeof(r->last_error),
				(const char *)sqlite3_column_text(s, 0));
			r->last_error_ns = sqlite3_column_int64(s, 1);
		}
	}
	err = 0;
out:
	stmt_done(s);
	if (prep(c, "COMMIT", &s) == 0) {
		stmt_step(c, s, "end");
		stmt_done(s);
	}
	for (i = 0; !err && i < n; i++)
		err = cb(arg, &stats[i]);
	free(stats);
	return err;
}

/* ---- a version's xattrs --------------------------------------------- */

int store_version_xattrs(struct store *st, const char *bucket,
			 const char *key, const char *version_id,
			 struct store_xattr **out, size_t *n)
{
	struct store_xattr *x = NULL, *grow;
	size_t k = 0, cap = 0, i, bytes = 0;
	sqlite3_stmt *s;
	struct conn *c;
	char *block, *p;
	int err;

	*out = NULL;
	*n = 0;
	err = conn_get(st, &c);
	if (err)
		return err;
	if (!key[0])	/* the bucket's own, which have no versions */
		err = prep(c, "SELECT x.name, x.value FROM bucket_xattrs "
			      "AS x JOIN buckets AS b ON b.id = x.bucket "
			      "WHERE b.name = ? ORDER BY x.name", &s);
	else
		err = prep(c, "SELECT x.name, x.value FROM xattrs AS x "
			      "JOIN versions AS v ON v.id = x.version "
			      "JOIN objects AS o ON o.id = v.object "
			      "JOIN buckets AS b ON b.id = o.bucket "
			      "WHERE b.name = ? AND o.key = ? AND v.vid = ? "
			      "ORDER BY x.name", &s);
	if (err)
		return err;
	bind_text(s, 1, bucket, -1);
	if (key[0]) {
		bind_text(s, 2, key, -1);
		bind_text(s, 3, version_id, -1);
	}
	/* First pass: count and size; values are copied below, into one
	 * block after the array, so one free() releases everything. */
	while ((err = stmt_step(c, s, "read xattrs")) == 1) {
		k++;
		bytes += strlen((const char *)sqlite3_column_text(s, 0)) + 1 +
			 sqlite3_column_bytes(s, 1);
	}
	if (err < 0 || !k)
		goto out;
	cap = k;
	grow = malloc(cap * sizeof(*x) + bytes);
	if (!grow) {
		err = -ENOMEM;
		goto out;
	}
	x = grow;
	block = (char *)(x + cap);
	p = block;
	sqlite3_reset(s);
	for (i = 0; i < cap && (err = stmt_step(c, s, "read xattrs")) == 1;
	     i++) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		size_t nlen = strlen(name) + 1;
		size_t vlen = sqlite3_column_bytes(s, 1);

		memcpy(p, name, nlen);
		x[i].name = p;
		p += nlen;
		if (vlen)
			memcpy(p, sqlite3_column_blob(s, 1), vlen);
		x[i].value = p;
		x[i].size = vlen;
		p += vlen;
	}
	if (err < 0) {
		free(x);
		goto out;
	}
	err = 0;
	*out = x;
	*n = i;
out:
	stmt_done(s);
	return err < 0 ? err : 0;
}

/* ---- multipart uploads under way at destinations -------------------- */

/* Run @sql (a string literal: the statement cache's key), a statement of
 * store_repl_upload_note() or _forget(), with @dest, @key and @upload_id
 * bound to its first three parameters and the time now to a fourth if it
 * has one, in a transaction of its own. */
static int upload_write(struct store *st, const char *sql, const char *dest,
			const char *key, const char *upload_id,
			const char *what)
{
	sqlite3_stmt *s;
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (!err)
		err = prep(c, sql, &s);
	if (err)
		return err;
	bind_text(s, 1, dest, -1);
	bind_text(s, 2, key, -1);
	bind_text(s, 3, upload_id, -1);
	if (sqlite3_bind_parameter_count(s) >= 4)
		sqlite3_bind_int64(s, 4, now_ns());
	err = tx_begin(c);
	if (err) {
		stmt_done(s);
		return err;
	}
	err = stmt_run(c, s, what);
	if (err) {
		tx_rollback(c);
		return err;
	}
	return tx_commit(st, c);
}

int store_repl_upload_note(struct store *st, const char *dest,
			   const char *key, const char *upload_id)
{
	return upload_write(st, "INSERT OR IGNORE INTO repl_uploads(dest, "
				"key, upload_id, created_ns) "
				"VALUES (?, ?, ?, ?)",
			    dest, key, upload_id, "note an upload");
}

int store_repl_upload_forget(struct store *st, const char *dest,
			     const char *key, const char *upload_id)
{
	return upload_write(st, "DELETE FROM repl_uploads WHERE dest = ? "
				"AND key = ? AND upload_id = ?",
			    dest, key, upload_id, "forget an upload");
}

int store_repl_uploads(struct store *st, const char *dest, const char *key,
		       store_repl_upload_cb cb, void *arg)
{
	char **ids = NULL, **grow;
	size_t n = 0, cap = 0, i;
	sqlite3_stmt *s;
	struct conn *c;
	int err;

	err = conn_get(st, &c);
	if (!err)
		err = prep(c, "SELECT upload_id FROM repl_uploads "
			      "WHERE dest = ? AND key = ? "
			      "ORDER BY created_ns, upload_id", &s);
	if (err)
		return err;
	bind_text(s, 1, dest, -1);
	bind_text(s, 2, key, -1);
	/* Read them all first: @cb sends a request, and may forget the
	 * upload, which no statement of ours may be in the middle of. */
	while ((err = stmt_step(c, s, "read uploads")) == 1) {
		if (n == cap) {
			cap = cap ? 2 * cap : 4;
			grow = realloc(ids, cap * sizeof(*ids));
			if (!grow) {
				err = -ENOMEM;
				break;
			}
			ids = grow;
		}
		ids[n] = strdup((const char *)sqlite3_column_text(s, 0));
		if (!ids[n]) {
			err = -ENOMEM;
			break;
		}
		n++;
	}
	stmt_done(s);
	for (i = 0; !err && i < n; i++)
		err = cb(arg, ids[i]);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return err;
}
