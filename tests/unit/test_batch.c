/*
 * test_batch.c - unit tests of batch replication's catalog side and its
 * manifests: which versions a job takes by status, prefix and time,
 * manifest rows that name nothing or that the rules do not take,
 * completion, cancel, the report's words, and the CSV manifest reader
 * (quotes, URL-encoded keys, bad rows kept with their line).
 */
#include "replicator/batch.h"
#include "store/store.h"
#include "tests/unit/helpers.h"

#include <sys/wait.h>

static char dir[64];
static struct store *st;

static void setup(void)
{
	tmp_dir(dir);
	st = store_new(dir);
	bucket_new(st, "src", STORE_ENABLED);
}

static void teardown(void)
{
	store_close(st);
	st = NULL;
	rm_rf(dir);
}

TestSuite(batch, .init = setup, .fini = teardown, .timeout = 60);

static struct store_job_info job(int64_t id)
{
	struct store_job_info j;

	cr_assert_eq(store_job_get(st, id, &j), 0);
	return j;
}

/* Claim and complete every due delivery; returns how many. */
static size_t deliver_all(void)
{
	struct store_repl_task t[8];
	size_t n, total = 0, i;

	do {
		cr_assert_eq(store_repl_claim(st, 8, 3600000000000LL, t, &n),
			     0);
		for (i = 0; i < n; i++)
			cr_assert_eq(store_repl_done(st, t[i].id,
						     STORE_REPL_COMPLETED, 0,
						     NULL),
				     0);
		total += n;
	} while (n);
	return total;
}

Test(batch, existing_versions_by_status_prefix_and_order)
{
	struct store_job_spec spec = { .bucket = "src",
				       .dest = "dir:///backup" };
	struct store_repl_task t[8];
	char v[3][STORE_VID_MAX + 1];
	int64_t id;
	size_t n;
	int i;

	for (i = 0; i < 3; i++)
		cr_assert_eq(put_str(st, "src", "a/k", i ? "x" : "y", v[i]), 0);
	cr_assert_eq(put_str(st, "src", "b/other", "z", NULL), 0);
	spec.prefix = "a/";
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	cr_assert_eq(job(id).items, 3);
	cr_assert_eq(job(id).state, STORE_JOB_ACTIVE);
	/* Oldest first, one at a time per key. */
	for (i = 0; i < 3; i++) {
		cr_assert_eq(store_repl_claim(st, 8, 3600000000000LL, t, &n),
			     0);
		cr_assert_eq(n, 1);
		cr_assert_str_eq(t[0].obj.version_id, v[i]);
		cr_assert_eq(t[0].job, id);
		cr_assert_eq(store_job_finish(st, id), 0, "not done yet");
		store_repl_done(st, t[0].id, STORE_REPL_COMPLETED, 0, NULL);
	}
	cr_assert_eq(store_job_finish(st, id), 1);
	cr_assert_eq(store_job_finish(st, id), 0, "only once");
	cr_assert_eq(job(id).state, STORE_JOB_COMPLETE);
	cr_assert_eq(job(id).completed, 3);

	/* NONE no longer matches them: a second job covers only b/. */
	spec.prefix = NULL;
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	cr_assert_eq(job(id).items, 1, "b/other only");
	cr_assert_eq(job(id).skipped, 0);
	/* ...and with COMPLETED too, the three are SKIPPED: already there. */
	deliver_all();
	spec.status_mask = STORE_JOB_NONE | STORE_JOB_COMPLETED;
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	cr_assert_eq(job(id).skipped, 4);
	cr_assert_eq(job(id).state, STORE_JOB_COMPLETE, "nothing to send");
}

Test(batch, manifest_rows_that_name_nothing_are_reported)
{
	struct store_job_spec spec = { .bucket = "src",
				       .dest = "dir:///backup" };
	char vid[STORE_VID_MAX + 1];
	struct store_job_row rows[4] = {
		{ "src", "k", vid, NULL },
		{ "src", "missing", "0000", NULL },
		{ "other", "k", vid, NULL },
		{ NULL, NULL, NULL, "manifest line 4: not a CSV row" },
	};
	int64_t id;

	cr_assert_eq(put_str(st, "src", "k", "data", vid), 0);
	cr_assert_eq(store_job_create(st, &spec, rows, 4, &id), 0);
	cr_assert_eq(job(id).items, 4);
	cr_assert_eq(job(id).failed, 3);
	cr_assert_eq(job(id).pending, 1);
	cr_assert_eq(deliver_all(), 1);
}

Test(batch, without_rules_or_destination_is_refused)
{
	struct store_job_spec spec = { .bucket = "src" };
	int64_t id;

	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), -EINVAL);
	spec.bucket = "nope";
	spec.dest = "dir:///x";
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), -ENOENT);
}

Test(batch, cancel_drops_what_is_pending)
{
	struct store_job_spec spec = { .bucket = "src",
				       .dest = "dir:///backup" };
	int64_t id;

	cr_assert_eq(put_str(st, "src", "a", "1", NULL), 0);
	cr_assert_eq(put_str(st, "src", "b", "2", NULL), 0);
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	cr_assert_eq(store_job_cancel(st, id), 0);
	cr_assert_eq(job(id).state, STORE_JOB_CANCELLED);
	cr_assert_eq(job(id).pending, 0);
	/* Still counted, as cancelled (they showed 0/0 items). */
	cr_assert_eq(job(id).items, 2);
	cr_assert_eq(job(id).cancelled, 2);
	cr_assert_eq(job(id).failed, 0);
	cr_assert_eq(deliver_all(), 0);
	cr_assert_eq(store_job_cancel(st, id), -EALREADY);
	cr_assert_eq(store_job_cancel(st, 999), -ENOENT);
}

Test(batch, cancel_counts_no_delivery_of_a_process_that_died)
{
	struct store_job_spec spec = { .bucket = "src",
				       .dest = "dir:///backup" };
	int64_t id;
	pid_t pid;
	int status;

	cr_assert_eq(put_str(st, "src", "a", "1", NULL), 0);
	cr_assert_eq(put_str(st, "src", "b", "2", NULL), 0);
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct store *st2;
		struct store_repl_task t;
		size_t n;

		if (store_open(store_path(st), 0, &st2))
			_exit(1);
		if (store_repl_claim(st2, 1, 3600000000000LL, &t, &n) ||
		    n != 1)
			_exit(2);
		_exit(0);	/* dies holding the lease */
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(WEXITSTATUS(status), 0);
	/* Nothing is under way: the lease's holder is gone. */
	cr_assert_eq(store_job_cancel(st, id), 0);
	cr_assert_eq(job(id).pending, 0);
	cr_assert_eq(job(id).cancelled, 2);
	cr_assert_eq(deliver_all(), 0);
}

Test(batch, cancel_lets_deliveries_under_way_end_and_count)
{
	struct store_job_spec spec = { .bucket = "src",
				       .dest = "dir:///backup" };
	struct store_repl_task t[2];
	struct store_job_info j;
	size_t n;
	int64_t id;

	cr_assert_eq(put_str(st, "src", "a", "1", NULL), 0);
	cr_assert_eq(put_str(st, "src", "b", "2", NULL), 0);
	cr_assert_eq(put_str(st, "src", "c", "3", NULL), 0);
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	/* Two deliveries under way (leased by this process), one not. */
	cr_assert_eq(store_repl_claim(st, 2, 3600000000000LL, t, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(store_job_cancel(st, id), 2);
	j = job(id);
	cr_assert_eq(j.state, STORE_JOB_CANCELLED);
	cr_assert_eq(j.cancelled, 1);
	cr_assert_eq(j.pending, 2);
	cr_assert_eq(j.done_ns, 0, "not done while deliveries are under way");
	cr_assert_eq(store_job_finish(st, id), 0);
	/* One reached its destination: it counts as sent.  The other is to
	 * be retried: it is not, and counts as cancelled. */
	cr_assert_eq(store_repl_done(st, t[0].id, STORE_REPL_COMPLETED, 0,
				     NULL), 0);
	cr_assert_eq(store_job_finish(st, id), 0);
	cr_assert_eq(store_repl_done(st, t[1].id, STORE_REPL_PENDING, 1,
				     "connection refused"), 0);
	cr_assert_eq(deliver_all(), 0, "a cancelled job's retry went again");
	cr_assert_eq(store_job_finish(st, id), 1, "the last one settles it");
	cr_assert_eq(store_job_finish(st, id), 0, "once");
	j = job(id);
	cr_assert_eq(j.state, STORE_JOB_CANCELLED);
	cr_assert_eq(j.items, 3);
	cr_assert_eq(j.completed, 1);
	cr_assert_eq(j.cancelled, 2);
	cr_assert_eq(j.failed, 0);
	cr_assert_eq(j.pending, 0);
	cr_assert_neq(j.done_ns, 0);
}

static int count_failed(void *arg, const struct store_repl_stat *s)
{
	*(uint64_t *)arg += s->ops_failed;
	return 0;
}

/* FAILED deliveries in the bucket, as `replicafs wait` counts them. */
static uint64_t failed_now(void)
{
	uint64_t n = 0;

	cr_assert_eq(store_repl_stats(st, "src", NULL, count_failed, &n), 0);
	return n;
}

static enum store_repl_status status_of(const char *key, const char *vid)
{
	enum store_repl_status s;

	cr_assert_eq(store_repl_version_status(st, "src", key, vid, &s, NULL,
					       NULL), 0);
	return s;
}

/* Deliveries pending when the rules were replaced or deleted are FAILED
 * for a destination no rule names any more; a job of FAILED versions by
 * the rules there are (or with none) forgets those failures, which
 * nothing could send again, and `wait` had 3 for good. */
Test(batch, a_failed_job_forgets_failures_to_destinations_of_no_rule)
{
	struct store_repl_target old = { .rule_id = "r", .prefix = "",
					 .dest = "dir:///old" };
	struct store_repl_target new = { .rule_id = "r", .prefix = "",
					 .dest = "dir:///new" };
	struct store_job_spec spec = { .bucket = "src",
				       .status_mask = STORE_JOB_FAILED };
	struct store_job_spec adhoc = { .bucket = "src",
					.dest = "dir:///usb",
					.status_mask = STORE_JOB_NONE };
	char va[STORE_VID_MAX + 1], vb[STORE_VID_MAX + 1];
	struct store_repl_task t[8];
	struct store_job_info j;
	int64_t id;
	size_t n;

	cr_assert_eq(put_str(st, "src", "adhoc", "0", NULL), 0);
	cr_assert_eq(store_repl_config_set(st, "src", "{}", NULL, &old, 1),
		     0);
	cr_assert_eq(put_str(st, "src", "a", "1", va), 0);
	/* A batch job's own failure to a destination it named. */
	cr_assert_eq(store_job_create(st, &adhoc, NULL, 0, &id), 0);
	cr_assert_eq(store_repl_claim(st, 8, 3600000000000LL, t, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(store_repl_done(st, t[0].job ? t[0].id : t[1].id,
				     STORE_REPL_FAILED, 0, "denied"), 0);
	cr_assert_eq(store_repl_done(st, t[0].job ? t[1].id : t[0].id,
				     STORE_REPL_PENDING, 1, "down"), 0);
	/* The rule replaced while a's delivery is pending. */
	cr_assert_eq(store_repl_config_set(st, "src", "{}", NULL, &new, 1),
		     0);
	cr_assert_eq(status_of("a", va), STORE_REPL_FAILED);
	cr_assert_eq(failed_now(), 2);
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	j = job(id);
	/* a, and adhoc (FAILED at dir:///usb), go to the new destination. */
	cr_assert_eq(j.pending, 2);
	cr_assert_eq(j.skipped, 1, "a's failure at the old one is forgotten");
	cr_assert_eq(deliver_all(), 2);
	cr_assert_eq(status_of("a", va), STORE_REPL_COMPLETED);
	cr_assert_eq(failed_now(), 1, "the batch job's own failure stays");

	/* The rules deleted while b's delivery is pending: a job of FAILED
	 * versions, with no rule to send by, forgets its failure. */
	cr_assert_eq(put_str(st, "src", "b", "2", vb), 0);
	cr_assert_eq(store_repl_config_set(st, "src", NULL, NULL, NULL, 0),
		     0);
	cr_assert_eq(status_of("b", vb), STORE_REPL_FAILED);
	cr_assert_eq(failed_now(), 2);
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	j = job(id);
	cr_assert_eq(j.state, STORE_JOB_COMPLETE);
	cr_assert_eq(j.skipped, 1);
	cr_assert_eq(status_of("b", vb), STORE_REPL_NONE);
	cr_assert_eq(failed_now(), 1);
	/* Other jobs with no rule to go by are still refused. */
	spec.status_mask = 0;
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), -EINVAL);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(batch, manifest_csv)
{
	struct store_job_row *rows;
	char path[128], *buf;
	size_t n;

	snprintf(path, sizeof(path), "%s/m.csv", dir);
	write_file(path, "src,plain,v1\n"
			 "src,a%20b%2Fc,v2\r\n"
			 "\n"
			 "\"src\",\"quoted,comma \"\"q\"\"\",v3\n"
			 "src,\"broken\n"
			 "src,onlykey\n"
			 "src,bad%zz,v4\n"
			 "src,plus+space,v5");
	cr_assert_eq(repl_manifest_read(path, &rows, &n, &buf), 0);
	cr_assert_eq(n, 7);
	cr_assert_str_eq(rows[0].key, "plain");
	cr_assert_str_eq(rows[0].version_id, "v1");
	cr_assert_null(rows[0].error);
	cr_assert_str_eq(rows[1].key, "a b/c");
	cr_assert_str_eq(rows[1].version_id, "v2");
	cr_assert_str_eq(rows[2].key, "quoted,comma \"q\"");
	cr_assert_not_null(rows[3].error);
	cr_assert(strstr(rows[3].error, "line 5"), "%s", rows[3].error);
	cr_assert_not_null(rows[4].error);
	cr_assert(strstr(rows[4].error, "line 6"), "%s", rows[4].error);
	cr_assert_not_null(rows[5].error, "a bad %%-escape");
	cr_assert_str_eq(rows[6].key, "plus space");
	free(rows);
	free(buf);
	cr_assert_eq(repl_manifest_read("/nonexistent/m.csv", &rows, &n, &buf),
		     -ENOENT);
}

struct report {
	int rows;
	int completed;
};

static int count_item(void *arg, const char *bucket, const char *key,
		      const char *vid, const char *dest, const char *outcome,
		      const char *error)
{
	struct report *r = arg;

	r->rows++;
	r->completed += !strcmp(outcome, "COMPLETED");
	return 0;
}

Test(batch, report_lists_every_item)
{
	struct store_job_spec spec = { .bucket = "src",
				       .dest = "dir:///backup" };
	struct report r = { 0 };
	char path[128], line[512];
	int64_t id;
	FILE *f;
	int lines = 0;

	cr_assert_eq(put_str(st, "src", "a,b", "1", NULL), 0);
	cr_assert_eq(put_str(st, "src", "c", "2", NULL), 0);
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	deliver_all();
	cr_assert_eq(store_job_items(st, id, count_item, &r), 0);
	cr_assert_eq(r.rows, 2);
	cr_assert_eq(r.completed, 2);
	snprintf(path, sizeof(path), "%s/report.csv", dir);
	cr_assert_eq(repl_batch_report(st, id, path), 0);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		/* In the words of `batch status` and of S3's reports:
		 * succeeded (it said COMPLETED, a replication status). */
		if (lines++)
			cr_expect_not_null(strstr(line, ",succeeded,"), "%s",
					   line);
	}
	fclose(f);
	cr_assert_eq(lines, 3);
}

struct rows {
	int n;
	char key[4][32];
	char outcome[4][16];
	char error[4][160];
};

static int all_rows(void *arg, const char *bucket, const char *key,
		    const char *vid, const char *dest, const char *outcome,
		    const char *error)
{
	struct rows *r = arg;

	cr_assert_lt(r->n, 4);
	snprintf(r->key[r->n], sizeof(r->key[0]), "%s", key ? key : "");
	snprintf(r->outcome[r->n], sizeof(r->outcome[0]), "%s", outcome);
	snprintf(r->error[r->n], sizeof(r->error[0]), "%s",
		 error ? error : "");
	r->n++;
	return 0;
}

/* Manifest rows the job's rules do not take get a row of the report each,
 * SKIPPED, that says why (they were dropped without one): a key under no
 * rule's prefix, a version without the rule's tags, a delete marker the
 * rule does not replicate. */
Test(batch, manifest_rows_outside_the_rules_are_reported)
{
	static const struct store_tag tag = { "class", "keep" };
	struct store_repl_target tg[2] = {
		{ .rule_id = "docs", .priority = 2, .prefix = "docs/",
		  .dest = "dir:///backup" },
		{ .rule_id = "tagged", .priority = 1, .prefix = "t/",
		  .tags = &tag, .ntags = 1, .dest = "dir:///backup" },
	};
	struct store_job_spec spec = { .bucket = "src" };
	char v[4][STORE_VID_MAX + 1];
	struct store_job_row rows[4] = {
		{ "src", "docs/a", v[0], NULL },
		{ "src", "other/b", v[1], NULL },
		{ "src", "t/x", v[2], NULL },
		{ "src", "docs/a", v[3], NULL },
	};
	struct rows r = { 0 };
	int64_t id;

	cr_assert_eq(put_str(st, "src", "docs/a", "1", v[0]), 0);
	cr_assert_eq(put_str(st, "src", "other/b", "2", v[1]), 0);
	cr_assert_eq(put_str(st, "src", "t/x", "3", v[2]), 0);
	cr_assert_eq(store_delete(st, "src", "docs/a", v[3]), 0);
	/* The rules come after the data, so nothing is queued live. */
	cr_assert_eq(store_repl_config_set(st, "src", "{}", NULL, tg, 2), 0);
	cr_assert_eq(store_job_create(st, &spec, rows, 4, &id), 0);
	cr_assert_eq(job(id).items, 4, "a row each");
	cr_assert_eq(job(id).skipped, 3);
	cr_assert_eq(store_job_items(st, id, all_rows, &r), 0);
	cr_assert_eq(r.n, 4);
	cr_expect_str_eq(r.key[0], "docs/a");
	cr_expect_str_eq(r.outcome[0], "PENDING");
	cr_expect_str_eq(r.key[1], "other/b");
	cr_expect_str_eq(r.outcome[1], "SKIPPED");
	cr_expect_not_null(strstr(r.error[1], "not under the Filter prefix"),
			   "%s", r.error[1]);
	cr_expect_str_eq(r.key[2], "t/x");
	cr_expect_str_eq(r.outcome[2], "SKIPPED");
	cr_expect_not_null(strstr(r.error[2], "does not have the tags"), "%s",
			   r.error[2]);
	cr_expect_str_eq(r.key[3], "docs/a");
	cr_expect_str_eq(r.outcome[3], "SKIPPED");
	cr_expect_not_null(strstr(r.error[3], "a delete marker"), "%s",
			   r.error[3]);
	cr_assert_eq(deliver_all(), 1);
	cr_assert_eq(store_job_finish(st, id), 1);
}

/* A chmod that failed to reach the destination after the data got there
 * is FAILED there, and a job for FAILED versions sends it again (it was
 * SKIPPED, "already at this destination", and stayed FAILED for good). */
Test(batch, a_failed_change_is_sent_again)
{
	struct store_repl_target tg = { .rule_id = "r", .prefix = "",
					.dest = "dir:///backup" };
	struct store_job_spec spec = { .bucket = "src",
				       .status_mask = STORE_JOB_FAILED };
	struct store_meta m = { .mode = 0600 };
	enum store_repl_status all;
	struct store_repl_task t[8];
	char vid[STORE_VID_MAX + 1];
	int64_t id;
	size_t n;

	cr_assert_eq(store_repl_config_set(st, "src", "{}", NULL, &tg, 1), 0);
	cr_assert_eq(put_str(st, "src", "k", "x", vid), 0);
	cr_assert_eq(deliver_all(), 1);
	cr_assert_eq(store_set_meta(st, "src", "k", &m, STORE_SET_MODE), 0);
	cr_assert_eq(store_repl_claim(st, 8, 3600000000000LL, t, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(store_repl_done(st, t[0].id, STORE_REPL_FAILED, 0, "down"),
		     0);
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &id), 0);
	cr_assert_eq(job(id).skipped, 0, "the failed change was skipped");
	cr_assert_eq(job(id).items, 1);
	cr_assert_eq(deliver_all(), 1);
	cr_assert_eq(store_repl_version_status(st, "src", "k", vid, &all, NULL,
					       NULL),
		     0);
	cr_assert_eq(all, STORE_REPL_COMPLETED);
}

struct one_note {
	char bucket[64];
	char error[128];
};

static int last_note(void *arg, const char *bucket, const char *key,
		     const char *vid, const char *dest, const char *outcome,
		     const char *error)
{
	struct one_note *o = arg;

	snprintf(o->bucket, sizeof(o->bucket), "%s", bucket ? bucket : "");
	snprintf(o->error, sizeof(o->error), "%s", error ? error : "");
	return 0;
}

/* A manifest row of another bucket without a version ID is reported in
 * its own bucket, for the bucket (it was reported in the job's, for the
 * missing ID). */
Test(batch, a_row_of_another_bucket_says_so)
{
	struct store_job_spec spec = { .bucket = "src",
				       .dest = "dir:///backup" };
	struct store_job_row row = { "other", "c", NULL,
				     "manifest line 5: no version ID" };
	struct one_note o;
	int64_t id;

	cr_assert_eq(store_job_create(st, &spec, &row, 1, &id), 0);
	cr_assert_eq(store_job_items(st, id, last_note, &o), 0);
	cr_assert_str_eq(o.bucket, "other");
	cr_assert_str_eq(o.error, "not the job's bucket");
}
