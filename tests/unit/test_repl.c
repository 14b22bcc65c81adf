/*
 * test_repl.c - unit tests of replication's catalog side (store/repl.c and
 * store_put_replica()) and of the engine's backoff: which versions are
 * queued where (prefix, tags, delete markers, priority per destination),
 * order per key, leases, retries, permanent deletes, replicas (no
 * chaining, a version delivered twice stored once), and statistics.
 */
#include "replicator/engine.h"
#include "store/store.h"
#include "tests/unit/helpers.h"

#include <limits.h>
#include <signal.h>
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

TestSuite(repl, .init = setup, .fini = teardown, .timeout = 60);

#define SEC 1000000000LL

static void set_targets(const struct store_repl_target *t, size_t n)
{
	cr_assert_eq(store_repl_config_set(st, "src", "{}", NULL, t, n), 0);
}

/* Claim everything due now (lease 1 h) into @out. */
static size_t claim_all(struct store_repl_task *out, size_t max)
{
	size_t n = 0;

	cr_assert_eq(store_repl_claim(st, max, 3600 * SEC, out, &n), 0);
	return n;
}

static struct store_repl_task tasks[16];

Test(repl, nothing_is_queued_without_rules)
{
	uint64_t n;

	cr_assert_eq(put_str(st, "src", "a", "x", NULL), 0);
	cr_assert_eq(store_repl_pending(st, NULL, NULL, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(claim_all(tasks, 16), 0);
}

Test(repl, only_versions_written_after_the_rule)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	char vid[STORE_VID_MAX + 1];
	uint64_t n;

	cr_assert_eq(put_str(st, "src", "old", "x", NULL), 0);
	set_targets(&t, 1);
	cr_assert_eq(put_str(st, "src", "new", "y", vid), 0);
	cr_assert_eq(store_repl_pending(st, "src", NULL, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(claim_all(tasks, 16), 1);
	cr_assert_str_eq(tasks[0].key, "new");
	cr_assert_str_eq(tasks[0].obj.version_id, vid);
	cr_assert_str_eq(tasks[0].dest, "dir:///x");
	cr_assert_str_eq(tasks[0].rule_id, "r");
	cr_assert_eq(tasks[0].obj.kind, STORE_FILE);
}

Test(repl, prefix_tags_and_delete_markers)
{
	static const struct store_tag tag = { "class", "gold" };
	struct store_repl_target t[] = {
		{ .rule_id = "docs", .prefix = "docs/", .dest = "dir:///d" },
		{ .rule_id = "gold", .prefix = "", .tags = &tag, .ntags = 1,
		  .dest = "dir:///g", .delete_markers = 1 },
		{ .rule_id = "dm", .prefix = "logs/", .dest = "dir:///l",
		  .delete_markers = 1 },
	};
	size_t n, i;
	int seen_g = 0;

	set_targets(t, 3);
	cr_assert_eq(put_str(st, "src", "docs/a", "1", NULL), 0);
	cr_assert_eq(put_str(st, "src", "other", "2", NULL), 0);
	/* A tag, then a new version that keeps the xattrs of the last. */
	cr_assert_eq(store_xattr_set(st, "src", "other", "user.s3.tag.class",
				     "gold", 4, 0), 0);
	{
		struct store_put p = { .kind = STORE_FILE, .fd = -1,
				       .keep_xattrs = 1 };

		p.meta = meta_of(0644);
		cr_assert_eq(store_put(st, "src", "other", &p, NULL, NULL), 0);
	}
	cr_assert_eq(put_str(st, "src", "logs/x", "3", NULL), 0);
	cr_assert_eq(store_delete(st, "src", "docs/a", NULL), 0);
	cr_assert_eq(store_delete(st, "src", "logs/x", NULL), 0);
	cr_assert_eq(store_delete(st, "src", "other", NULL), 0);

	n = claim_all(tasks, 16);
	/* docs/a -> d; other v1 -> g (the tag set on it after its write
	 * asks the rules again), then other v2 -> g; logs/x -> l, then the
	 * marker of logs/x -> l.  Not: the marker of docs/a (docs has no
	 * delete-marker replication), the marker of other (a rule with
	 * tags never takes delete markers).  Only the first of each key is
	 * due: one delivery per key and destination at a time. */
	cr_assert_eq(n, 3, "claimed %zu", n);
	for (i = 0; i < n; i++) {
		if (!strcmp(tasks[i].dest, "dir:///g")) {
			cr_assert_str_eq(tasks[i].key, "other");
			seen_g = 1;
		} else if (!strcmp(tasks[i].dest, "dir:///l")) {
			cr_assert_str_eq(tasks[i].key, "logs/x");
			cr_assert_eq(tasks[i].obj.kind, STORE_FILE);
		} else {
			cr_assert_str_eq(tasks[i].dest, "dir:///d");
			cr_assert_str_eq(tasks[i].key, "docs/a");
		}
	}
	cr_assert(seen_g);
	for (i = 0; i < n; i++)
		cr_assert_eq(store_repl_done(st, tasks[i].id,
					     STORE_REPL_COMPLETED, 0, NULL),
			     0);
	n = claim_all(tasks, 16);
	cr_assert_eq(n, 2, "claimed %zu", n);
	for (i = 0; i < n; i++) {
		if (!strcmp(tasks[i].key, "other")) {
			cr_assert_str_eq(tasks[i].dest, "dir:///g");
			cr_assert_eq(tasks[i].obj.kind, STORE_FILE);
		} else {
			cr_assert_str_eq(tasks[i].key, "logs/x");
			cr_assert_eq(tasks[i].obj.kind, STORE_DELETE_MARKER);
		}
	}
}

/* The engine's claims: one destination each, and none of those it skips
 * (one that does not answer holds the workers it has, no more). */
Test(repl, claims_of_one_destination)
{
	const struct store_repl_target t[] = {
		{ .rule_id = "one", .priority = 2, .dest = "dir:///one" },
		{ .rule_id = "two", .priority = 1, .dest = "dir:///two" },
	};
	const char *skip[] = { "dir:///one" };
	size_t n, i;

	set_targets(t, 2);
	cr_assert_eq(put_str(st, "src", "a", "1", NULL), 0);
	cr_assert_eq(put_str(st, "src", "b", "2", NULL), 0);
	cr_assert_eq(store_repl_claim_from(st, 16, 3600 * SEC, skip, 1, tasks,
					   &n), 0);
	cr_assert_eq(n, 2, "the deliveries to the destination not skipped");
	for (i = 0; i < n; i++)
		cr_expect_str_eq(tasks[i].dest, "dir:///two");
	cr_assert_eq(store_repl_claim_from(st, 16, 3600 * SEC, NULL, 0, tasks,
					   &n), 0);
	cr_assert_eq(n, 2, "the other destination's, in one claim");
	for (i = 0; i < n; i++)
		cr_expect_str_eq(tasks[i].dest, "dir:///one");
}

Test(repl, highest_priority_decides_per_destination)
{
	struct store_repl_target t[] = {
		/* given in priority order, as the replicator does */
		{ .rule_id = "high", .priority = 9, .prefix = "a/",
		  .dest = "dir:///same" },
		{ .rule_id = "low", .priority = 1, .prefix = "",
		  .dest = "dir:///same", .delete_markers = 1 },
		{ .rule_id = "other", .priority = 5, .prefix = "",
		  .dest = "dir:///other" },
	};
	size_t n, i;

	set_targets(t, 3);
	cr_assert_eq(put_str(st, "src", "a/k", "1", NULL), 0);
	n = claim_all(tasks, 16);
	cr_assert_eq(n, 2);
	for (i = 0; i < n; i++)
		if (!strcmp(tasks[i].dest, "dir:///same"))
			cr_assert_str_eq(tasks[i].rule_id, "high");
		else
			cr_assert_str_eq(tasks[i].rule_id, "other");
	for (i = 0; i < n; i++)
		store_repl_done(st, tasks[i].id, STORE_REPL_COMPLETED, 0, NULL);
	/* "high" does not replicate delete markers, and it decides. */
	cr_assert_eq(store_delete(st, "src", "a/k", NULL), 0);
	cr_assert_eq(claim_all(tasks, 16), 0);
}

Test(repl, versions_of_a_key_in_order_with_retries)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	char v[3][STORE_VID_MAX + 1];
	int i;

	set_targets(&t, 1);
	for (i = 0; i < 3; i++)
		cr_assert_eq(put_str(st, "src", "k", i ? "b" : "a", v[i]), 0);
	cr_assert_eq(put_str(st, "src", "j", "other key", NULL), 0);
	cr_assert_eq(claim_all(tasks, 16), 2, "one per key at a time");
	/* While leased, nothing more of that key is due. */
	cr_assert_eq(claim_all(tasks + 2, 14), 0);
	/* A failed attempt, to be retried later: still blocks the key. */
	for (i = 0; i < 2; i++)
		if (!strcmp(tasks[i].key, "k")) {
			cr_assert_str_eq(tasks[i].obj.version_id, v[0]);
			cr_assert_eq(store_repl_done(st, tasks[i].id,
						     STORE_REPL_PENDING,
						     (int64_t)4e18, "boom"),
				     0);
		}
	cr_assert_eq(claim_all(tasks + 2, 14), 0);
	for (i = 0; i < 2; i++)
		if (!strcmp(tasks[i].key, "j"))
			store_repl_done(st, tasks[i].id, STORE_REPL_COMPLETED,
					0, NULL);
	/* Retry due now: v0 comes back with its attempt counted. */
	for (i = 0; i < 2; i++)
		if (!strcmp(tasks[i].key, "k"))
			store_repl_done(st, tasks[i].id, STORE_REPL_PENDING, 0,
					"boom");
	cr_assert_eq(claim_all(tasks, 16), 1);
	cr_assert_str_eq(tasks[0].obj.version_id, v[0]);
	cr_assert_eq(tasks[0].attempts, 2);
	/* FAILED lets the next one go. */
	store_repl_done(st, tasks[0].id, STORE_REPL_FAILED, 0, "gave up");
	for (i = 1; i < 3; i++) {
		cr_assert_eq(claim_all(tasks, 16), 1);
		cr_assert_str_eq(tasks[0].obj.version_id, v[i]);
		store_repl_done(st, tasks[0].id, STORE_REPL_COMPLETED, 0, NULL);
	}
	cr_assert_eq(claim_all(tasks, 16), 0);
}

Test(repl, overall_status_of_a_version)
{
	struct store_repl_target t[] = {
		{ .rule_id = "a", .prefix = "", .dest = "dir:///a" },
		{ .rule_id = "b", .prefix = "", .dest = "dir:///b" },
	};
	enum store_repl_status s;
	char vid[STORE_VID_MAX + 1];
	size_t n, i;

	cr_assert_eq(put_str(st, "src", "before", "x", vid), 0);
	cr_assert_eq(store_repl_version_status(st, "src", "before", vid, &s,
					       NULL, NULL), 0);
	cr_assert_eq(s, STORE_REPL_NONE);
	set_targets(t, 2);
	cr_assert_eq(put_str(st, "src", "k", "x", vid), 0);
	cr_assert_eq(store_repl_version_status(st, "src", "k", vid, &s, NULL,
					       NULL), 0);
	cr_assert_eq(s, STORE_REPL_PENDING);
	n = claim_all(tasks, 16);
	cr_assert_eq(n, 2);
	for (i = 0; i < n; i++)
		store_repl_done(st, tasks[i].id,
				strcmp(tasks[i].dest, "dir:///a")
					? STORE_REPL_COMPLETED
					: STORE_REPL_FAILED,
				0, "disk gone");
	cr_assert_eq(store_repl_version_status(st, "src", "k", vid, &s, NULL,
					       NULL), 0);
	cr_assert_eq(s, STORE_REPL_FAILED);
	cr_assert_str_eq(store_repl_status_name(s), "FAILED");
}

struct stats {
	int n;
	struct store_repl_stat s[4];
};

static int stat_cb(void *arg, const struct store_repl_stat *s)
{
	struct stats *o = arg;

	if (o->n < 4)
		o->s[o->n] = *s;
	o->n++;
	return 0;
}

Test(repl, statistics_per_rule_and_destination)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	struct stats o = { 0 };

	set_targets(&t, 1);
	cr_assert_eq(put_str(st, "src", "a", "12345", NULL), 0);
	cr_assert_eq(put_str(st, "src", "b", "123", NULL), 0);
	cr_assert_eq(put_str(st, "src", "c", "1", NULL), 0);
	cr_assert_eq(claim_all(tasks, 1), 1);
	store_repl_done(st, tasks[0].id, STORE_REPL_FAILED, 0, "no space");
	cr_assert_eq(store_repl_stats(st, NULL, NULL, stat_cb, &o), 0);
	cr_assert_eq(o.n, 1);
	cr_assert_str_eq(o.s[0].bucket, "src");
	cr_assert_str_eq(o.s[0].rule_id, "r");
	cr_assert_eq(o.s[0].ops_pending, 2);
	cr_assert_eq(o.s[0].ops_failed, 1);
	cr_assert_eq(o.s[0].bytes_pending, 5 + 3 + 1 - (tasks[0].obj.size));
	cr_assert_gt(o.s[0].oldest_pending_ns, 0);
	cr_assert_str_eq(o.s[0].last_error, "no space");
}

Test(repl, a_permanent_delete_is_never_queued_and_unqueues)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x",
				       .delete_markers = 1 };
	char vid[STORE_VID_MAX + 1];
	uint64_t n;

	set_targets(&t, 1);
	cr_assert_eq(put_str(st, "src", "k", "x", vid), 0);
	cr_assert_eq(store_delete_version(st, "src", "k", vid), 0);
	cr_assert_eq(store_repl_pending(st, NULL, NULL, &n), 0);
	cr_assert_eq(n, 0, "the delivery of a removed version must go too");
	cr_assert_eq(claim_all(tasks, 16), 0);
}

Test(repl, leases_of_dead_processes_are_released)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	size_t n;
	pid_t pid;
	int status;

	set_targets(&t, 1);
	cr_assert_eq(put_str(st, "src", "k", "x", NULL), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct store *st2;
		struct store_repl_task t2;

		if (store_open(store_path(st), 0, &st2))
			_exit(1);
		if (store_repl_claim(st2, 1, 3600 * SEC, &t2, &n) || n != 1)
			_exit(2);
		_exit(0);	/* dies holding the lease */
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(WEXITSTATUS(status), 0);
	cr_assert_eq(claim_all(tasks, 16), 0, "leased by the child");
	cr_assert_eq(store_repl_release_dead(st, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(claim_all(tasks, 16), 1);
}

Test(repl, replicas_keep_identity_are_idempotent_and_never_chain)
{
	struct store_repl_target t = { .rule_id = "on", .prefix = "",
				       .dest = "dir:///further" };
	struct store_replica r = { .kind = STORE_FILE, .version_id = "v1abc" };
	static const char data[] = "replicated content";
	static const struct store_xattr x = { "user.colour", "blue", 4 };
	struct store_obj o;
	char buf[64];
	ssize_t len;
	uint64_t n;
	int fd;

	set_targets(&t, 1);	/* src replicates on: replicas must not */
	fd = open(dir, O_TMPFILE | O_RDWR, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, sizeof(data) - 1),
		     (ssize_t)sizeof(data) - 1);
	r.fd = fd;
	r.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
	r.meta = meta_of(0640);
	r.meta.mtime_ns = 1234 * SEC;
	r.created_ns = 99 * SEC;
	r.xattrs = &x;
	r.nxattrs = 1;
	cr_assert_eq(store_put_replica(st, "src", "k", &r), -EBADMSG,
		     "a wrong hash is refused");
	r.sha256 = NULL;
	cr_assert_eq(store_put_replica(st, "src", "k", &r), 0);
	cr_assert_eq(store_put_replica(st, "src", "k", &r), 0, "twice");
	cr_assert_eq(store_lookup(st, "src", "k", &o), 0);
	cr_assert_str_eq(o.version_id, "v1abc");
	cr_assert_eq(o.meta.mtime_ns, 1234 * SEC);
	cr_assert_eq(o.created_ns, 99 * SEC);
	cr_assert_eq(o.meta.mode & 07777, 0640);
	cr_assert(o.is_replica);
	read_cur(st, "src", "k", buf, sizeof(buf));
	cr_assert_str_eq(buf, data);
	len = store_xattr_get(st, "src", "k", "user.colour", buf, sizeof(buf));
	cr_assert_eq(len, 4);
	cr_assert_eq(store_repl_pending(st, NULL, NULL, &n), 0);
	cr_assert_eq(n, 0, "a replica must not be replicated again");

	/* A delete marker arrives with its ID, after the data. */
	r.kind = STORE_DELETE_MARKER;
	r.version_id = "v2dm";
	r.fd = -1;
	r.nxattrs = 0;
	cr_assert_eq(store_put_replica(st, "src", "k", &r), 0);
	cr_assert_eq(store_lookup(st, "src", "k", &o), -ENOENT);
	cr_assert_eq(store_version_get(st, "src", "k", "v1abc", &o), 0);
	close(fd);

	/* A folder's marker, then the delete marker that hides it (rmdir,
	 * or rm -rf of a folder made by mkdir); a file's kind on a folder
	 * key is still refused. */
	r.kind = STORE_DIR;
	r.version_id = "v4dir";
	r.meta = meta_of(S_IFDIR | 0755);
	cr_assert_eq(store_put_replica(st, "src", "d/", &r), 0);
	cr_assert_eq(store_lookup(st, "src", "d", &o), 0);
	cr_assert(o.has_marker);
	r.kind = STORE_DELETE_MARKER;
	r.version_id = "v5dm";
	cr_assert_eq(store_put_replica(st, "src", "d/", &r), 0);
	cr_assert_eq(store_lookup(st, "src", "d", &o), -ENOENT);
	cr_assert_eq(store_version_get(st, "src", "d/", "v4dir", &o), 0);
	r.kind = STORE_FILE;
	r.version_id = "v6";
	cr_assert_eq(store_put_replica(st, "src", "d/", &r), -EINVAL);

	/* A bucket that is not Enabled takes no replicas. */
	bucket_new(st, "plain", STORE_UNVERSIONED);
	r.kind = STORE_DIR;
	r.version_id = "v3";
	cr_assert_eq(store_put_replica(st, "plain", "d/", &r), -EINVAL);
}

Test(repl, backoff_grows_is_capped_and_jittered)
{
	int64_t base = 100, max = 10000, d;
	int i;

	for (i = 1; i <= 20; i++) {
		d = repl_backoff_ns(i, base, max, 0);
		cr_assert_geq(d, 0);
		cr_assert_leq(d, max);
	}
	/* attempt 1: in [base/2, base]; attempt 4: in [400, 800] */
	cr_assert_eq(repl_backoff_ns(1, base, max, 0), 50);
	cr_assert_leq(repl_backoff_ns(1, base, max, ~0ULL), 100);
	cr_assert_geq(repl_backoff_ns(4, base, max, 12345), 400);
	cr_assert_leq(repl_backoff_ns(4, base, max, 12345), 800);
	cr_assert_geq(repl_backoff_ns(30, base, max, 7), max / 2);
	cr_assert_neq(repl_backoff_ns(5, base, max, 1),
		      repl_backoff_ns(5, base, max, 2), "jitter");
}

Test(repl, configuration_round_trip_and_removal)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	char *json = NULL, *hook = NULL;
	uint64_t n;

	cr_assert_eq(store_repl_config_get(st, "src", &json, &hook), -ENOENT);
	cr_assert_eq(store_repl_config_set(st, "src", "{\"Rules\":[]}",
					   "echo late", &t, 1), 0);
	cr_assert_eq(store_repl_config_get(st, "src", &json, &hook), 0);
	cr_assert_str_eq(json, "{\"Rules\":[]}");
	cr_assert_str_eq(hook, "echo late");
	free(json);
	free(hook);
	cr_assert_eq(store_repl_config_set(st, "src", NULL, NULL, NULL, 0), 0);
	cr_assert_eq(store_repl_config_get(st, "src", NULL, NULL), -ENOENT);
	cr_assert_eq(put_str(st, "src", "k", "x", NULL), 0);
	cr_assert_eq(store_repl_pending(st, NULL, NULL, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(store_repl_config_set(st, "nobucket", "{}", NULL, NULL,
					   0), -ENOENT);
}

Test(repl, a_replica_of_a_blob_on_the_same_disk_is_a_hard_link)
{
	struct store_replica r = { .kind = STORE_FILE, .version_id = "vlink",
				   .fd_is_blob = 1 };
	char path[128], mine[PATH_MAX], theirs[PATH_MAX], buf[64];
	struct store *other = NULL;
	struct store_obj o;
	struct stat a, b;
	int fd;

	snprintf(path, sizeof(path), "%s/other", dir);
	cr_assert_eq(store_open(path, STORE_CREATE, &other), 0);
	bucket_new(other, "src", STORE_ENABLED);
	cr_assert_eq(put_str(other, "src", "k", "shared content", NULL), 0);
	cr_assert_eq(store_lookup(other, "src", "k", &o), 0);
	cr_assert_eq(store_blob_open(other, o.sha256, &fd), 0);
	r.fd = fd;
	r.sha256 = o.sha256;
	r.meta = o.meta;
	cr_assert_eq(store_put_replica(st, "src", "k", &r), 0);
	close(fd);
	store_blob_path(st, o.sha256, mine, sizeof(mine));
	store_blob_path(other, o.sha256, theirs, sizeof(theirs));
	cr_assert_eq(stat(mine, &a), 0);
	cr_assert_eq(stat(theirs, &b), 0);
	cr_assert_eq(a.st_ino, b.st_ino, "one inode, two names");
	read_cur(st, "src", "k", buf, sizeof(buf));
	cr_assert_str_eq(buf, "shared content");
	cr_assert_eq(store_lookup(st, "src", "k", &o), 0);
	cr_assert_eq(o.size, strlen("shared content"));
	store_close(other);
}

Test(repl, deliveries_of_a_removed_rule_fail_instead_of_waiting)
{
	struct store_repl_target t[] = {
		{ .rule_id = "keep", .prefix = "", .dest = "dir:///keep" },
		{ .rule_id = "gone", .prefix = "", .dest = "dir:///gone" },
	};
	enum store_repl_status s;
	char vid[STORE_VID_MAX + 1];
	uint64_t n;

	set_targets(t, 2);
	cr_assert_eq(put_str(st, "src", "k", "x", vid), 0);
	cr_assert_eq(store_repl_pending(st, "src", NULL, &n), 0);
	cr_assert_eq(n, 2);
	/* The rules replaced by one of them: the other's delivery is
	 * FAILED at once, not retried for as long as its attempts last. */
	set_targets(t, 1);
	cr_assert_eq(store_repl_pending(st, "src", NULL, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(claim_all(tasks, 16), 1);
	cr_assert_str_eq(tasks[0].dest, "dir:///keep");
	cr_assert_eq(store_repl_done(st, tasks[0].id, STORE_REPL_COMPLETED, 0,
				     NULL),
		     0);
	cr_assert_eq(store_repl_version_status(st, "src", "k", vid, &s, NULL,
					       NULL),
		     0);
	cr_expect_eq(s, STORE_REPL_FAILED);
	/* And deleted: nothing is left pending. */
	cr_assert_eq(put_str(st, "src", "k", "y", NULL), 0);
	cr_assert_eq(store_repl_config_set(st, "src", NULL, NULL, NULL, 0), 0);
	cr_assert_eq(store_repl_pending(st, "src", NULL, &n), 0);
	cr_expect_eq(n, 0);
}

/* A new atime alone (touch -a) changes no content worth sending again;
 * an mtime, a mode or an owner does. */
Test(repl, an_atime_alone_is_not_sent_again)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	struct store_meta m = { .atime_ns = 5 * SEC };
	uint64_t n;

	set_targets(&t, 1);
	cr_assert_eq(put_str(st, "src", "k", "x", NULL), 0);
	cr_assert_eq(claim_all(tasks, 16), 1);
	cr_assert_eq(store_repl_done(st, tasks[0].id, STORE_REPL_COMPLETED, 0,
				     NULL),
		     0);
	cr_assert_eq(store_set_meta(st, "src", "k", &m, STORE_SET_ATIME), 0);
	cr_assert_eq(store_repl_pending(st, "src", NULL, &n), 0);
	cr_expect_eq(n, 0);
	m.mtime_ns = 6 * SEC;
	cr_assert_eq(store_set_meta(st, "src", "k", &m,
				    STORE_SET_ATIME | STORE_SET_MTIME),
		     0);
	cr_assert_eq(store_repl_pending(st, "src", NULL, &n), 0);
	cr_expect_eq(n, 1);
	cr_assert_eq(claim_all(tasks, 16), 1);
	cr_expect_eq(tasks[0].obj.meta.atime_ns, 5 * SEC);
	cr_expect_eq(tasks[0].obj.meta.mtime_ns, 6 * SEC);
}

struct vlist {
	char vid[4][STORE_VID_MAX + 1];
	int latest[4];
	int n;
};

static int vlist_add(void *arg, const struct store_obj *o)
{
	struct vlist *l = arg;

	cr_assert_lt(l->n, 4);
	snprintf(l->vid[l->n], sizeof(l->vid[0]), "%s", o->version_id);
	l->latest[l->n++] = o->is_latest;
	return 0;
}

/* A batch job sends a version that failed after a newer one got there:
 * it takes its place in the history, the newer stays current, and the
 * listing says so (it listed the late one first, as latest, and
 * rm-version of the "older" one then removed the current content). */
Test(repl, a_late_replica_takes_its_place_in_history)
{
	struct store_replica r = { .kind = STORE_FILE, .fd = -1 };
	struct store_obj o;
	struct vlist l = { .n = 0 };
	char buf[16];
	int fd[2], i;

	for (i = 0; i < 2; i++) {
		fd[i] = open(dir, O_TMPFILE | O_RDWR, 0600);
		cr_assert_geq(fd[i], 0);
		cr_assert_eq(write(fd[i], i ? "two" : "one", 3), 3);
	}
	r.meta = meta_of(0644);
	r.fd = fd[1];
	r.version_id = "v2two";
	r.created_ns = 200 * SEC;
	cr_assert_eq(store_put_replica(st, "src", "k", &r), 0);
	r.fd = fd[0];
	r.version_id = "v1one";
	r.created_ns = 100 * SEC;
	cr_assert_eq(store_put_replica(st, "src", "k", &r), 0, "late");
	cr_assert_eq(store_lookup(st, "src", "k", &o), 0);
	cr_assert_str_eq(o.version_id, "v2two");
	cr_assert_eq(store_versions(st, "src", "k", vlist_add, &l), 0);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.vid[0], "v2two");
	cr_assert(l.latest[0], "the current version is the latest");
	cr_assert_str_eq(l.vid[1], "v1one");
	cr_assert(!l.latest[1], "the late one is not");
	cr_assert_eq(store_delete_version(st, "src", "k", "v1one"), 0);
	read_cur(st, "src", "k", buf, sizeof(buf));
	cr_assert_str_eq(buf, "two");
	close(fd[0]);
	close(fd[1]);
}

static int count_dest(void *arg, const char *dest, const char *rule_id,
		      enum store_repl_status status, const char *error)
{
	(*(int *)arg)++;
	return 0;
}

static int stat_failed(void *arg, const struct store_repl_stat *s)
{
	*(uint64_t *)arg += s->ops_failed;
	return 0;
}

/* Deliver (or fail) everything due now; how many. */
static size_t finish_all(enum store_repl_status how)
{
	size_t n = claim_all(tasks, 16), i;

	for (i = 0; i < n; i++)
		cr_assert_eq(store_repl_done(st, tasks[i].id, how, 0,
					     how == STORE_REPL_FAILED ? "down"
								      : NULL),
			     0);
	return n;
}

/* A chmod that failed to reach a replica is made good by a later one
 * that arrived: the version is COMPLETED there again, `status` and `wait`
 * count no failure, and a version has one status per destination however
 * often it changed (each chmod listed another name in listxattr, until
 * listxattr failed with E2BIG). */
Test(repl, a_later_delivery_makes_a_failed_one_good)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	enum store_repl_status all;
	struct store_meta m = { .mode = 0600 };
	char vid[STORE_VID_MAX + 1];
	uint64_t failed = 0;
	int i, dests = 0;

	set_targets(&t, 1);
	cr_assert_eq(put_str(st, "src", "k", "x", vid), 0);
	cr_assert_eq(finish_all(STORE_REPL_COMPLETED), 1);
	cr_assert_eq(store_set_meta(st, "src", "k", &m, STORE_SET_MODE), 0);
	cr_assert_eq(finish_all(STORE_REPL_FAILED), 1);
	cr_assert_eq(store_repl_version_status(st, "src", "k", vid, &all, NULL,
					       NULL),
		     0);
	cr_assert_eq(all, STORE_REPL_FAILED);
	cr_assert_eq(store_repl_stats(st, "src", NULL, stat_failed, &failed), 0);
	cr_assert_eq(failed, 1);
	for (i = 0; i < 5; i++) {
		m.mode = 0640 + i;
		cr_assert_eq(store_set_meta(st, "src", "k", &m,
					    STORE_SET_MODE),
			     0);
		cr_assert_eq(finish_all(STORE_REPL_COMPLETED), 1);
	}
	cr_assert_eq(store_repl_version_status(st, "src", "k", vid, &all,
					       count_dest, &dests),
		     0);
	cr_assert_eq(all, STORE_REPL_COMPLETED);
	cr_assert_eq(dests, 1, "one status per destination, not %d", dests);
	failed = 0;
	cr_assert_eq(store_repl_stats(st, "src", NULL, stat_failed, &failed), 0);
	cr_assert_eq(failed, 0);
}

/* A chmod, touch or xattr of a version written before the rules does not
 * send it (live replication sends only what is written after them; a
 * batch job sends the rest); once a job sent it, a change goes too. */
Test(repl, a_change_to_an_older_version_does_not_send_it)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	struct store_job_spec spec = { .bucket = "src" };
	struct store_meta m = { .mode = 0600 };
	int64_t job;
	uint64_t n;

	cr_assert_eq(put_str(st, "src", "old", "x", NULL), 0);
	set_targets(&t, 1);
	cr_assert_eq(store_set_meta(st, "src", "old", &m, STORE_SET_MODE), 0);
	cr_assert_eq(store_xattr_set(st, "src", "old", "user.a", "1", 1, 0),
		     0);
	cr_assert_eq(store_repl_pending(st, "src", NULL, &n), 0);
	cr_assert_eq(n, 0, "an older version was sent by a change");
	cr_assert_eq(store_job_create(st, &spec, NULL, 0, &job), 0);
	cr_assert_eq(finish_all(STORE_REPL_COMPLETED), 1);
	m.mode = 0640;
	cr_assert_eq(store_set_meta(st, "src", "old", &m, STORE_SET_MODE), 0);
	cr_assert_eq(store_repl_pending(st, "src", NULL, &n), 0);
	cr_assert_eq(n, 1, "a change to a version the job sent goes too");
}

/* As S3 (InvalidBucketState): no Suspended versioning under a replication
 * configuration, even one whose rules are all Disabled (no targets). */
Test(repl, a_configuration_of_disabled_rules_keeps_versioning_on)
{
	cr_assert_eq(store_repl_config_set(st, "src", "{}", NULL, NULL, 0), 0);
	cr_assert_eq(store_bucket_set_versioning(st, "src", STORE_SUSPENDED),
		     -EBUSY);
	cr_assert_eq(store_repl_config_set(st, "src", NULL, NULL, NULL, 0), 0);
	cr_assert_eq(store_bucket_set_versioning(st, "src", STORE_SUSPENDED),
		     0);
}

/* `wait PATH` and `status PATH` count the deliveries of PATH's keys: a
 * file, or a folder and what is below it, not the whole bucket. */
Test(repl, pending_and_failures_of_a_key_or_folder)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	uint64_t n, failed = 0;

	set_targets(&t, 1);
	cr_assert_eq(put_str(st, "src", "a/f", "x", NULL), 0);
	cr_assert_eq(put_str(st, "src", "a/sub/g", "x", NULL), 0);
	cr_assert_eq(put_str(st, "src", "ab", "x", NULL), 0);
	cr_assert_eq(store_repl_pending(st, "src", "a", &n), 0);
	cr_assert_eq(n, 2, "a/ holds two, not ab");
	cr_assert_eq(store_repl_pending(st, "src", "a/f", &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(store_repl_pending(st, "src", "", &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(finish_all(STORE_REPL_FAILED), 3);
	cr_assert_eq(store_repl_stats(st, "src", "a/sub", stat_failed, &failed),
		     0);
	cr_assert_eq(failed, 1);
	failed = 0;
	cr_assert_eq(store_repl_stats(st, "src", NULL, stat_failed, &failed),
		     0);
	cr_assert_eq(failed, 3);
	failed = 0;
	cr_assert_eq(store_repl_stats(st, "src", "", stat_failed, &failed), 0);
	cr_assert_eq(failed, 3, "\"\": the whole bucket");
}

/* An undelete (the delete marker removed for good) sends the version
 * now current to a dir:// mirror, which had removed the file, and to no
 * other destination (as in S3): after rm -rf and undelete -r the mirror
 * stayed empty while everything said COMPLETED. */
Test(repl, an_undelete_reaches_mirrors_only)
{
	struct store_repl_target t[2] = {
		{ .rule_id = "m", .prefix = "", .dest = "dir:///mirror",
		  .delete_markers = 1 },
		{ .rule_id = "s", .prefix = "", .dest = "store:///s/b",
		  .delete_markers = 1 },
	};
	char vid[STORE_VID_MAX + 1], dm[STORE_VID_MAX + 1];
	size_t n;

	set_targets(t, 2);
	cr_assert_eq(put_str(st, "src", "k", "x", vid), 0);
	cr_assert_eq(finish_all(STORE_REPL_COMPLETED), 2);
	cr_assert_eq(store_delete(st, "src", "k", dm), 0);
	cr_assert_eq(finish_all(STORE_REPL_COMPLETED), 2);
	cr_assert_eq(store_delete_version(st, "src", "k", dm), 0);
	n = claim_all(tasks, 16);
	cr_assert_eq(n, 1, "the mirror only, not %zu", n);
	cr_assert_str_eq(tasks[0].dest, "dir:///mirror");
	cr_assert_str_eq(tasks[0].obj.version_id, vid);
}

static int count_one(void *arg, const struct store_obj *o)
{
	(void)o;
	++*(int *)arg;
	return 0;
}

/* How many versions key @key of bucket src has. */
static int versions_of_n(const char *key)
{
	int n = 0;

	cr_assert_eq(store_versions(st, "src", key, count_one, &n), 0);
	return n;
}

/* store_put.replaces (the empty file mknod made, then written): not a
 * version replication sent or is sending, which the replica keeps; one
 * only queued goes, with its delivery. */
Test(repl, an_empty_version_sent_is_not_replaced)
{
	struct store_repl_target t = { .rule_id = "r", .prefix = "",
				       .dest = "dir:///x" };
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	char e[STORE_VID_MAX + 1];
	uint64_t n;

	set_targets(&t, 1);
	p.meta = meta_of(0644);
	/* Queued only: replaced, its delivery gone with it. */
	cr_assert_eq(put_str(st, "src", "q", "", e), 0);
	p.replaces = e;
	cr_assert_eq(store_put(st, "src", "q", &p, NULL, NULL), 0);
	cr_expect_eq(versions_of_n("q"), 1);
	cr_assert_eq(store_repl_pending(st, "src", "q", &n), 0);
	cr_expect_eq(n, 1);
	cr_assert_eq(finish_all(STORE_REPL_COMPLETED), 1);
	/* Sent: kept. */
	cr_assert_eq(put_str(st, "src", "s", "", e), 0);
	cr_assert_eq(finish_all(STORE_REPL_COMPLETED), 1);
	cr_assert_eq(store_put(st, "src", "s", &p, NULL, NULL), 0);
	cr_expect_eq(versions_of_n("s"), 2);
	/* Under way: kept. */
	cr_assert_eq(put_str(st, "src", "u", "", e), 0);
	cr_assert_eq(claim_all(tasks, 16), 2);	/* s's new one too */
	cr_assert_eq(store_put(st, "src", "u", &p, NULL, NULL), 0);
	cr_expect_eq(versions_of_n("u"), 2);
}

/* ---- multipart uploads under way ------------------------------------ */

/* What a walk of store_repl_uploads() saw: "ID;" per upload. */
struct uploads_seen {
	char text[256];
	const char *forget_dest;	/* forget each one there, as seen */
	const char *forget_key;
	int stop_at;			/* return 7 at this call (1-based) */
	int calls;
};

static int uploads_cb(void *arg, const char *upload_id)
{
	struct uploads_seen *u = arg;
	size_t n = strlen(u->text);

	snprintf(u->text + n, sizeof(u->text) - n, "%s;", upload_id);
	if (u->forget_dest)
		cr_assert_eq(store_repl_upload_forget(st, u->forget_dest,
						      u->forget_key,
						      upload_id), 0);
	return ++u->calls == u->stop_at ? 7 : 0;
}

/* The uploads noted for @key at @dest, as "ID;" each. */
static const char *uploads_of(const char *dest, const char *key)
{
	static struct uploads_seen u;

	memset(&u, 0, sizeof(u));
	cr_assert_eq(store_repl_uploads(st, dest, key, uploads_cb, &u), 0);
	return u.text;
}

/* What a destination notes of its multipart uploads is kept per
 * destination and key, in the order noted, until forgotten one by one;
 * a walk may forget what it is given, and stops where its callback
 * says. */
Test(repl, uploads_under_way_are_noted_per_destination_and_key)
{
	struct uploads_seen u;

	cr_expect_str_eq(uploads_of("s3://a/b", "big"), "");
	cr_assert_eq(store_repl_upload_note(st, "s3://a/b", "big", "u1"), 0);
	cr_assert_eq(store_repl_upload_note(st, "s3://a/b", "big", "u2"), 0);
	cr_assert_eq(store_repl_upload_note(st, "s3://a/b", "big", "u1"), 0,
		     "noted twice");
	cr_assert_eq(store_repl_upload_note(st, "s3://a/b", "big2", "u3"), 0);
	cr_assert_eq(store_repl_upload_note(st, "s3://c/b", "big", "u4"), 0);
	cr_expect_str_eq(uploads_of("s3://a/b", "big"), "u1;u2;");
	cr_expect_str_eq(uploads_of("s3://a/b", "big2"), "u3;");
	cr_expect_str_eq(uploads_of("s3://c/b", "big"), "u4;");
	cr_expect_str_eq(uploads_of("s3://a/b", "bi"), "", "no prefix match");

	memset(&u, 0, sizeof(u));
	u.stop_at = 1;
	cr_expect_eq(store_repl_uploads(st, "s3://a/b", "big", uploads_cb, &u),
		     7);
	cr_expect_str_eq(u.text, "u1;", "the walk stops at a non-zero return");

	cr_assert_eq(store_repl_upload_forget(st, "s3://a/b", "big", "u2"), 0);
	cr_assert_eq(store_repl_upload_forget(st, "s3://a/b", "big", "u9"), 0,
		     "forgetting what is not noted");
	cr_expect_str_eq(uploads_of("s3://a/b", "big"), "u1;");

	memset(&u, 0, sizeof(u));
	u.forget_dest = "s3://a/b";
	u.forget_key = "big";
	cr_assert_eq(store_repl_upload_note(st, "s3://a/b", "big", "u5"), 0);
	cr_assert_eq(store_repl_uploads(st, "s3://a/b", "big", uploads_cb, &u),
		     0);
	cr_expect_str_eq(u.text, "u1;u5;");
	cr_expect_str_eq(uploads_of("s3://a/b", "big"), "", "all forgotten");
	cr_expect_str_eq(uploads_of("s3://a/b", "big2"), "u3;");
	cr_expect_str_eq(uploads_of("s3://c/b", "big"), "u4;");
	cr_expect_eq(store_check(st, 1), 0);
}

/* A note is durable when the call returns: a process killed right after
 * (kill -9, as a crash of the daemon mid-upload) leaves it to the next
 * one, which may forget it. */
Test(repl, an_upload_noted_outlives_a_kill_9)
{
	struct store *again;
	char path[128];
	pid_t pid;
	int status;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct store *st2;

		if (store_open(store_path(st), 0, &st2) ||
		    store_repl_upload_note(st2, "s3://a/b", "big", "u1"))
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "the child did not note the upload (status %d)", status);
	cr_expect_str_eq(uploads_of("s3://a/b", "big"), "u1;");
	snprintf(path, sizeof(path), "%s", store_path(st));
	store_close(st);
	st = NULL;
	cr_assert_eq(store_open(path, 0, &again), 0);
	st = again;
	cr_expect_str_eq(uploads_of("s3://a/b", "big"), "u1;",
			 "after the store is opened again");
	cr_assert_eq(store_repl_upload_forget(st, "s3://a/b", "big", "u1"), 0);
	cr_expect_str_eq(uploads_of("s3://a/b", "big"), "");
}
