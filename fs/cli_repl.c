/*
 * cli_repl.c - the replication commands:
 *
 *   replicafs replication put BUCKET-PATH FILE.json [--hook CMD]
 *   replicafs replication get BUCKET-PATH
 *   replicafs replication delete BUCKET-PATH
 *   replicafs status [PATH | --store DIR] [--json]
 *   replicafs wait [PATH | --store DIR] [--timeout SECONDS]
 *            (0: all delivered; 1: error or timeout; 3: some FAILED)
 *   replicafs replicate STORE [--follow] [--workers N]
 *   replicafs batch create BUCKET-PATH [--rule ID | --destination URL]
 *            [--status NONE,FAILED,COMPLETED,REPLICA] [--prefix P]
 *            [--created-before TIME] [--manifest FILE.csv]
 *            [--report FILE.csv]
 *   replicafs batch list [PATH | --store DIR] [--json]
 *   replicafs batch status JOB [PATH | --store DIR] [--json] [--watch]
 *   replicafs batch run JOB [PATH | --store DIR]
 *   replicafs batch cancel JOB [PATH | --store DIR]
 *
 * A PATH is found in its mount as cli.c does (the hidden xattrs); the root
 * of a mount means every bucket of its store.  Without a PATH or --store,
 * status, wait and the batch commands take the current directory; jobs
 * are the store's, so any PATH in its mount finds them.  The rules
 * themselves are parsed and checked by replicator/rules.c; the store
 * keeps the text and the compiled targets.
 */
#include "fs/fs_i.h"
#include "replicator/batch.h"
#include "replicator/dest.h"
#include "replicator/rules.h"
#include "replicator/s3_client.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"

/* Where a command works: a store, and a bucket in it ("" for all). */
struct where {
	char store[PATH_MAX];
	char bucket[64];
	char key[STORE_KEY_MAX + 1];
};

static int attr(const char *path, const char *name, char *buf, size_t size)
{
	ssize_t n = getxattr(path, name, buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Fill @w from @path, a path inside a mount. */
static int locate(const char *path, struct where *w)
{
	char p[64 + STORE_KEY_MAX + 2];
	char *slash;
	int err;

	memset(w, 0, sizeof(*w));
	err = attr(path, XA_STORE, w->store, sizeof(w->store));
	if (!err)
		err = attr(path, XA_PATH, p, sizeof(p));
	if (err) {
		fs_mount_err_say(path, err);
		return -1;
	}
	slash = strchr(p, '/');
	if (slash) {
		*slash = '\0';
		if (strlen(slash + 1) >= sizeof(w->key))
			goto toolong;
		memcpy(w->key, slash + 1, strlen(slash + 1) + 1);
	}
	if (strlen(p) >= sizeof(w->bucket))
		goto toolong;
	memcpy(w->bucket, p, strlen(p) + 1);
	return 0;
toolong:
	fprintf(stderr, "replicafs: %s: name too long\n", path);
	return -1;
}

static int open_store(const char *dir, struct store **st)
{
	int err = store_open(dir, 0, st);

	if (err)
		fprintf(stderr, "replicafs: cannot open store %s: %s\n", dir,
			err == -ENOENT ? "no such store" : strerror(-err));
	return err;
}

/* Print @s as a JSON string: a control character, C1 too, as \u00NN,
 * which a terminal does not act on; a byte that is not UTF-8 as U+FFFD,
 * as JSON has no way to say it. */
static void json_str(const char *s)
{
	size_t k;

	putchar('"');
	for (; *s; s += k) {
		unsigned char ch = (unsigned char)*s;

		k = msg_char_len(s);
		if (ch == '"' || ch == '\\') {
			printf("\\%c", ch);
		} else if (k) {
			fwrite(s, 1, k, stdout);
		} else if (ch == 0xc2 && (unsigned char)s[1] >= 0x80 &&
			   (unsigned char)s[1] < 0xa0) {
			printf("\\u%04x", (unsigned char)s[1]);	/* C1 */
			k = 2;
		} else if (ch < 0x80) {
			printf("\\u%04x", ch);
			k = 1;
		} else {
			fputs("\\ufffd", stdout);	/* not UTF-8 */
			k = 1;
		}
	}
	putchar('"');
}

/* ---- replication put / get / delete --------------------------------- */

/* Read all of @path into a malloc()ed, NUL-terminated buffer. */
static int slurp(const char *path, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *grow;
	FILE *f;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!f) {
		free(buf);
		return -errno;
	}
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);

		len += n;
		if (len < cap - 1)
			break;
		if (cap >= 16u << 20) {
			free(buf);
			if (f != stdin)
				fclose(f);
			return -EFBIG;
		}
		grow = realloc(buf, cap * 2);
		if (!grow) {
			free(buf);
			if (f != stdin)
				fclose(f);
			return -ENOMEM;
		}
		buf = grow;
		cap *= 2;
	}
	if (ferror(f)) {
		free(buf);
		if (f != stdin)
			fclose(f);
		return -EIO;
	}
	if (f != stdin)
		fclose(f);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* Whether @a and @b are one directory, by any name (a symlink, a bind
 * mount). */
static int same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	if (!strcmp(a, b))
		return 1;
	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Whether directory @inner is @outer or below it (both resolved). */
int fs_path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (n == 1)	/* "/" */
		return 1;
	return !strncmp(inner, outer, n) &&
	       (inner[n] == '\0' || inner[n] == '/');
}

static int dir_within(const char *inner, const char *outer)
{
	char a[PATH_MAX], b[PATH_MAX];

	return realpath(inner, a) && realpath(outer, b) &&
	       fs_path_within(a, b);
}

struct mirror_probe {
	const char *dir;
	char *what;
	size_t len;
};

static int mirror_probe_one(const char *mnt, const char *dev,
			    const char *type, void *arg)
{
	struct mirror_probe *p = arg;

	(void)dev;
	if (strcmp(type, "fuse.replicafs") || !dir_within(mnt, p->dir))
		return 0;
	snprintf(p->what, p->len, "the replicafs mount %.400s", mnt);
	return 1;
}

/*
 * Whether mirror directory @dir holds the store @store_dir or a replicafs
 * mount, with which into @what: a mirror there writes its keys over the
 * store's own files (its catalog.db replaced by a key of that name), or
 * into a bucket, whose new versions it may then mirror again.
 */
static int mirror_holds_replicafs(const char *dir, const char *store_dir,
				  char *what, size_t len)
{
	struct mirror_probe p = { dir, what, len };

	if (dir_within(store_dir, dir)) {
		snprintf(what, len, "the store %.400s", store_dir);
		return 1;
	}
	return fs_mountinfo_each(mirror_probe_one, &p) > 0;
}

/*
 * Whether destination @u may take what bucket @bucket of store @store_dir
 * sends (a rule's, or a batch job's --destination): it exists and can take
 * versions (check()), it is not the bucket itself, and a mirror does not
 * hold the store or a mount.  0, or -1 with a sentence in @msg.  On
 * success *@out (when not NULL) is the open destination, for the caller
 * to close.
 */
static int dest_usable(const struct repl_dest_url *u, const char *bucket,
		       const char *store_dir, struct dest **out, char *msg,
		       size_t len)
{
	char what[512];
	struct dest *d;

	if (out)
		*out = NULL;
	if (dest_open(u->url, &d, msg, len))
		return -1;
	if (d->ops->check(d, msg, len)) {
		dest_close(d);
		return -1;
	}
	if (u->kind == REPL_DEST_DIR &&
	    mirror_holds_replicafs(u->path, store_dir, what, sizeof(what))) {
		snprintf(msg, len, "%s holds %s: a mirror there would write "
			 "over it; choose a directory outside it", u->url,
			 what);
		dest_close(d);
		return -1;
	}
	if (u->kind == REPL_DEST_STORE && same_dir(u->path, store_dir) &&
	    !strcmp(u->bucket, bucket)) {
		snprintf(msg, len, "a bucket cannot replicate to itself");
		dest_close(d);
		return -1;
	}
	if (out)
		*out = d;
	else
		dest_close(d);
	return 0;
}

/* Whether open destinations @da of @a and @db of @b are one place under
 * two names: a store or a directory through a symbolic link, a bucket
 * through two remotes (or an ARN) with one endpoint. */
static int same_place(const struct repl_dest_url *a, struct dest *da,
		      const struct repl_dest_url *b, struct dest *db)
{
	const char *ea, *eb;

	if (a->kind != b->kind || !strcmp(a->url, b->url))
		return 0;
	switch (a->kind) {
	case REPL_DEST_STORE:
		return !strcmp(a->bucket, b->bucket) &&
		       same_dir(a->path, b->path);
	case REPL_DEST_DIR:
		return same_dir(a->path, b->path);
	default:
		ea = dest_s3_endpoint(da);
		eb = dest_s3_endpoint(db);
		return ea && eb && s3_same_endpoint(ea, eb) &&
		       !strcmp(a->bucket, b->bucket) &&
		       !strcmp(a->prefix, b->prefix);
	}
}

/* Check that every destination of @cfg's enabled rules exists and can take
 * versions, and that no destination is named two ways: the engine tells
 * destinations by name, and S3 applies only the highest priority of the
 * rules that send to one bucket. */
static int check_dests(const struct repl_config *cfg, const char *bucket,
		       const char *store_dir)
{
	struct dest **d = calloc(cfg->nrules ? cfg->nrules : 1, sizeof(*d));
	char msg[1024];
	size_t i, j;
	int ret = 0;

	if (!d) {
		fprintf(stderr, "replicafs: replication: out of memory\n");
		return -1;
	}
	for (i = 0; i < cfg->nrules && !ret; i++) {
		const struct repl_rule *r = &cfg->rules[i];

		if (!r->enabled)
			continue;
		ret = dest_usable(&r->dest, bucket, store_dir, &d[i], msg,
				  sizeof(msg));
		if (ret)
			fprintf(stderr, "replicafs: replication: rule %s: "
					"%s\n", r->id, msg);
		for (j = 0; j < i && !ret; j++) {
			const struct repl_rule *o = &cfg->rules[j];

			if (!d[j] || !same_place(&o->dest, d[j], &r->dest,
						 d[i]))
				continue;
			fprintf(stderr, "replicafs: replication: rules %s and "
					"%s send to one destination under two "
					"names (%s and %s), where only the "
					"higher priority applies: name it one "
					"way\n", o->id, r->id, o->dest.url,
				r->dest.url);
			ret = -1;
		}
	}
	for (i = 0; i < cfg->nrules; i++)
		if (d[i])
			dest_close(d[i]);
	free(d);
	return ret;
}

/* For each enabled rule with ExistingObjectReplication Enabled: a batch
 * job of the versions written before it that no rule sent (status NONE)
 * or that failed, as S3 replicates existing objects.  0, or 1 (said). */
static int existing_jobs(struct store *st, const char *bucket,
			 const struct repl_config *cfg)
{
	struct store_job_spec spec = { .bucket = bucket };
	char desc[256];
	int64_t id;
	size_t i;
	int err;

	for (i = 0; i < cfg->nrules; i++) {
		const struct repl_rule *r = &cfg->rules[i];

		if (!r->enabled || !r->existing_objects)
			continue;
		snprintf(desc, sizeof(desc),
			 "ExistingObjectReplication of rule %s", r->id);
		spec.rule_id = r->id;
		spec.description = desc;
		err = store_job_create(st, &spec, NULL, 0, &id);
		if (err) {
			fprintf(stderr, "replicafs: replication: rule %s: "
					"cannot start the replication of "
					"existing objects: %s\n",
				r->id, strerror(-err));
			return 1;
		}
		printf("rule %s: existing objects go in batch job %lld "
		       "(replicafs batch status %lld)\n", r->id,
		       (long long)id, (long long)id);
	}
	return 0;
}

/* What replicafs does not do of rule @r, which S3 would: a note each, on
 * stderr.  The fields of Destination it does not use are named in one. */
static void rule_notes(const struct repl_rule *r)
{
	const char *const *u;
	size_t n;

	for (n = 0; r->unused[n]; n++)
		;
	if (n) {
		fprintf(stderr, "replicafs: note: rule %s: ", r->id);
		for (u = r->unused; *u; u++)
			fprintf(stderr, "%s%s", *u,
				!u[1] ? "" : !u[2] ? " and " : ", ");
		fprintf(stderr, " %s accepted, as S3 accepts %s, and not "
				"used: replicas take the destination's "
				"defaults, and replication get leaves %s "
				"out\n",
			n == 1 ? "is" : "are", n == 1 ? "it" : "them",
			n == 1 ? "it" : "them");
	}
	if (r->dm_absent)
		fprintf(stderr, "replicafs: note: rule %s has a Filter and no "
				"DeleteMarkerReplication, which S3 would "
				"refuse: taken as Disabled (delete markers "
				"are not sent); replication get shows it\n",
			r->id);
	for (u = r->unused_ssc; *u; u++) {
		if (strstr(*u, ".SseKmsEncryptedObjects"))
			fprintf(stderr, "replicafs: note: rule %s: %s Enabled "
					"is accepted, as S3 accepts it, and "
					"selects nothing more: replicafs has "
					"no KMS, so no version is encrypted "
					"with SSE-KMS, and the rule sends "
					"what its Filter selects; replication "
					"get leaves it out\n",
				r->id, *u);
		else
			fprintf(stderr, "replicafs: note: rule %s: %s Enabled "
					"is accepted, as S3 accepts it, and "
					"not done: changes made to replicas "
					"are not sent back, and replication "
					"get leaves it out\n",
				r->id, *u);
	}
}

static int repl_put(struct store *st, const struct where *w,
		    const char *file, const char *hook)
{
	struct store_repl_target *t = NULL;
	struct store_tag *tags = NULL;
	struct repl_config *cfg = NULL;
	enum store_versioning v;
	char *text = NULL, *json = NULL, err_msg[512];
	size_t n, i, j, k = 0, ntags = 0;
	int64_t minute_ns = 60 * 1000000000LL;
	const char *test_minute;
	int err, ret = 1;

	err = slurp(file, &text);
	if (err) {
		fprintf(stderr, "replicafs: replication: cannot read %s: %s\n",
			file, strerror(-err));
		goto out;
	}
	err = repl_config_parse(text, strlen(text), &cfg, err_msg,
				sizeof(err_msg));
	if (err) {
		fprintf(stderr, "replicafs: replication: %s: %s\n", file,
			err_msg);
		goto out;
	}
	err = store_bucket_get(st, w->bucket, NULL, &v);
	if (err) {
		fprintf(stderr, "replicafs: replication: bucket %s: %s\n",
			w->bucket, strerror(-err));
		goto out;
	}
	if (v != STORE_ENABLED) {
		fprintf(stderr, "replicafs: replication: versioning of bucket "
				"%s is not Enabled (replicafs versioning PATH "
				"enable)\n", w->bucket);
		goto out;
	}
	if (check_dests(cfg, w->bucket, store_path(st)))
		goto out;
	/* Tests shorten the minute of ReplicationTime.Time.Minutes. */
	test_minute = getenv("REPLICAFS_TEST_MINUTE_MS");
	if (test_minute && strtol(test_minute, NULL, 10) > 0)
		minute_ns = strtol(test_minute, NULL, 10) * 1000000LL;
	n = cfg->nrules;
	for (i = 0; i < n; i++)
		ntags += cfg->rules[i].filter.ntags;
	t = calloc(n ? n : 1, sizeof(*t));
	tags = calloc(ntags ? ntags : 1, sizeof(*tags));
	if (!t || !tags) {
		fprintf(stderr, "replicafs: replication: out of memory\n");
		goto out;
	}
	for (i = 0, ntags = 0; i < n; i++) {
		const struct repl_rule *r = &cfg->rules[i];

		if (!r->enabled)
			continue;
		t[k].rule_id = r->id;
		t[k].priority = r->priority;
		t[k].prefix = r->filter.prefix;
		t[k].tags = tags + ntags;
		for (j = 0; j < r->filter.ntags; j++, ntags++) {
			tags[ntags].key = r->filter.tags[j].key;
			tags[ntags].value = r->filter.tags[j].value;
		}
		t[k].ntags = r->filter.ntags;
		t[k].dest = r->dest.url;
		t[k].delete_markers = r->delete_markers;
		t[k].threshold_ns = (int64_t)r->time_minutes * minute_ns;
		k++;
	}
	json = repl_config_to_json(cfg);
	if (!json) {
		fprintf(stderr, "replicafs: replication: out of memory\n");
		goto out;
	}
	err = store_repl_config_set(st, w->bucket, json, hook, t, k);
	if (err) {
		fprintf(stderr, "replicafs: replication: cannot save the "
				"rules of %s: %s\n", w->bucket, strerror(-err));
		goto out;
	}
	printf("replication of %s: %zu rule%s, %zu enabled\n", w->bucket, n,
	       n == 1 ? "" : "s", k);
	for (i = 0; i < cfg->nrules; i++)
		rule_notes(&cfg->rules[i]);
	ret = existing_jobs(st, w->bucket, cfg);
out:
	free(json);
	free(t);
	free(tags);
	repl_config_free(cfg);
	free(text);
	return ret;
}

static int cmd_replication(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "", *hook = NULL;
	struct where w;
	struct store *st;
	char *json = NULL;
	int err, ret = 1;

	if (argc > 2 && !strcmp(argv[2], "--")) {
		/* `replication VERB -- PATH ...`: a path may start with '-' */
		argv[2] = argv[1];
		argv++;
		argc--;
	}
	if (!strcmp(verb, "put") && argc == 6 && !strcmp(argv[4], "--hook"))
		hook = argv[5];
	else if (!(!strcmp(verb, "put") && argc == 4) &&
		 !((!strcmp(verb, "get") || !strcmp(verb, "delete")) &&
		   argc == 3)) {
		fprintf(stderr, "usage: replicafs replication put BUCKET-PATH "
				"FILE.json [--hook CMD]\n"
				"       replicafs replication get BUCKET-PATH\n"
				"       replicafs replication delete "
				"BUCKET-PATH\n");
		return 2;
	}
	if (locate(argv[2], &w))
		return 1;
	if (!w.bucket[0] || w.key[0]) {
		fprintf(stderr, "replicafs: replication: %s is not a bucket "
				"(rules are set per bucket)\n", argv[2]);
		return 2;
	}
	if (open_store(w.store, &st))
		return 1;
	if (!strcmp(verb, "put")) {
		ret = repl_put(st, &w, argv[3], hook);
	} else if (!strcmp(verb, "get")) {
		err = store_repl_config_get(st, w.bucket, &json, NULL);
		if (err == -ENOENT)
			fprintf(stderr, "replicafs: replication: bucket %s has "
					"no replication configuration\n",
				w.bucket);
		else if (err)
			fprintf(stderr, "replicafs: replication: %s: %s\n",
				w.bucket, strerror(-err));
		else
			printf("%s\n", json);
		ret = err ? 1 : 0;
		free(json);
	} else {
		err = store_repl_config_get(st, w.bucket, NULL, NULL);
		if (!err)
			err = store_repl_config_set(st, w.bucket, NULL, NULL,
						    NULL, 0);
		if (err == -ENOENT)
			fprintf(stderr, "replicafs: replication: bucket %s has "
					"no replication configuration\n",
				w.bucket);
		else if (err)
			fprintf(stderr, "replicafs: replication: %s: %s\n",
				w.bucket, strerror(-err));
		ret = err ? 1 : 0;
	}
	store_close(st);
	return ret;
}

/* ---- status, wait --------------------------------------------------- */

/* Parse "[PATH | --store DIR] [--json] [--timeout S]" of status/wait. */
static int scope_args(int argc, char **argv, struct where *w, int *json,
		      double *timeout)
{
	const char *path = NULL, *store = NULL;
	char *end;
	int i, dd = 0;

	for (i = 1; i < argc; i++) {
		if (!dd && !strcmp(argv[i], "--")) {
			dd = 1;	/* what follows is the path, "-x" too */
		} else if (dd) {
			if (path) {
				fprintf(stderr, "replicafs: %s: unexpected "
					"'%s'\n", argv[0], argv[i]);
				return 2;
			}
			path = argv[i];
		} else if (json && !strcmp(argv[i], "--json")) {
			*json = 1;
		} else if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			store = argv[++i];
		} else if (timeout && !strcmp(argv[i], "--timeout") &&
			   i + 1 < argc) {
			errno = 0;
			*timeout = strtod(argv[++i], &end);
			if (errno || *end || *timeout < 0) {
				fprintf(stderr, "replicafs: %s: bad timeout "
						"'%s'\n", argv[0], argv[i]);
				return 2;
			}
		} else if (argv[i][0] != '-' && !path) {
			path = argv[i];
		} else {
			fprintf(stderr, "replicafs: %s: unexpected '%s'\n",
				argv[0], argv[i]);
			return 2;
		}
	}
	if (store && path) {
		fprintf(stderr, "replicafs: %s: give a PATH or --store, not "
				"both\n", argv[0]);
		return 2;
	}
	if (store) {
		memset(w, 0, sizeof(*w));
		if (!realpath(store, w->store)) {
			fprintf(stderr, "replicafs: store %s: %s\n", store,
				strerror(errno));
			return 1;
		}
		return 0;
	}
	return locate(path ? path : ".", w) ? 1 : 0;
}

struct status_out {
	int json;
	int n;
};

static void age(int64_t ns, char *buf, size_t size)
{
	int64_t s = ns / 1000000000;

	if (s < 120)
		snprintf(buf, size, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, size, "%lldm", (long long)(s / 60));
	else
		snprintf(buf, size, "%lldh", (long long)(s / 3600));
}

static int64_t wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The text of a status row, each field as msg_escape() shows it: a
 * rule's ID or a stored error from before its checks could hold a
 * control character. */
struct stat_text {
	char bucket[4 * sizeof(((struct store_repl_stat *)0)->bucket)];
	char rule_id[4 * sizeof(((struct store_repl_stat *)0)->rule_id)];
	char dest[4 * sizeof(((struct store_repl_stat *)0)->dest)];
	char last_error[4 * sizeof(((struct store_repl_stat *)0)->last_error)];
};

static int print_stat(void *arg, const struct store_repl_stat *s)
{
	struct status_out *o = arg;
	int64_t lat = s->ops_pending ? wall_now() - s->oldest_pending_ns : 0;
	struct stat_text *e = malloc(sizeof(*e));
	char a[32];

	if (!e)
		return -ENOMEM;
	msg_escape(e->bucket, sizeof(e->bucket), s->bucket);
	msg_escape(e->rule_id, sizeof(e->rule_id), s->rule_id);
	msg_escape(e->dest, sizeof(e->dest), s->dest);
	msg_escape(e->last_error, sizeof(e->last_error), s->last_error);

	if (lat < 0)
		lat = 0;
	if (o->json) {
		printf("%s\n  {\"bucket\": ", o->n ? "," : "");
		json_str(s->bucket);
		printf(", \"rule\": ");
		json_str(s->rule_id);
		printf(", \"destination\": ");
		json_str(s->dest);
		printf(", \"operations_pending\": %llu, \"bytes_pending\": "
		       "%llu, \"replication_latency_seconds\": %.3f, "
		       "\"operations_failed\": %llu, \"last_error\": ",
		       (unsigned long long)s->ops_pending,
		       (unsigned long long)s->bytes_pending, lat / 1e9,
		       (unsigned long long)s->ops_failed);
		if (s->last_error[0])
			json_str(e->last_error);
		else
			printf("null");
		printf("}");
	} else {
		if (!o->n)
			printf("%-16s %-16s %-40s %9s %12s %8s %7s\n", "BUCKET",
			       "RULE", "DESTINATION", "PENDING", "BYTES",
			       "LATENCY", "FAILED");
		age(lat, a, sizeof(a));
		printf("%-16s %-16s %-40s %9llu %12llu %8s %7llu\n", e->bucket,
		       e->rule_id, e->dest, (unsigned long long)s->ops_pending,
		       (unsigned long long)s->bytes_pending, a,
		       (unsigned long long)s->ops_failed);
		if (s->last_error[0]) {
			/* When: an old one must not read as a current one.
			 * A pending delivery's time is its next attempt. */
			int64_t now = wall_now(), t = s->last_error_ns;

			age(t > now ? t - now : now - t, a, sizeof(a));
			printf("  last error (%s%s%s): %s\n",
			       t > now ? "next try in " : "", a,
			       t > now ? "" : " ago", e->last_error);
		}
	}
	free(e);
	o->n++;
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	struct status_out o = { 0 };
	struct where w;
	struct store *st;
	int err;

	err = scope_args(argc, argv, &w, &o.json, NULL);
	if (err)
		return err;
	if (open_store(w.store, &st))
		return 1;
	if (o.json)
		printf("[");
	err = store_repl_stats(st, w.bucket[0] ? w.bucket : NULL, w.key,
			       print_stat, &o);
	if (o.json)
		printf("%s]\n", o.n ? "\n" : "");
	else if (!err && !o.n)
		printf("no replication rules%s%s\n", w.bucket[0] ? " on " : "",
		       w.bucket);
	if (err)
		fprintf(stderr, "replicafs: status: %s\n", strerror(-err));
	store_close(st);
	return err ? 1 : 0;
}

struct fail_count {
	uint64_t failed;
};

static int count_failed(void *arg, const struct store_repl_stat *s)
{
	((struct fail_count *)arg)->failed += s->ops_failed;
	return 0;
}

static int cmd_wait(int argc, char **argv)
{
	struct fail_count fc = { 0 };
	double timeout = -1;
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int64_t start = wall_now();
	uint64_t pending = 0;
	struct where w;
	struct store *st;
	int err;

	err = scope_args(argc, argv, &w, NULL, &timeout);
	if (err)
		return err;
	if (open_store(w.store, &st))
		return 1;
	for (;;) {
		err = store_repl_pending(st, w.bucket[0] ? w.bucket : NULL,
					 w.key, &pending);
		if (err || !pending)
			break;
		if (timeout >= 0 && wall_now() - start > timeout * 1e9)
			break;
		nanosleep(&pause, NULL);
	}
	if (!err)
		err = store_repl_stats(st, w.bucket[0] ? w.bucket : NULL, w.key,
				       count_failed, &fc);
	store_close(st);
	if (err) {
		fprintf(stderr, "replicafs: wait: %s\n", strerror(-err));
		return 1;
	}
	if (pending) {
		fprintf(stderr, "replicafs: wait: %llu deliveries still "
				"pending after %g s\n",
			(unsigned long long)pending, timeout);
		return 1;
	}
	if (fc.failed) {
		/* Not replicated, and no worker will try again: a script
		 * that waits for its backup to reach the replica must not
		 * take this for done. */
		fprintf(stderr, "replicafs: wait: nothing pending, but %llu "
				"deliveries FAILED (replicafs status says "
				"why; once that is mended, a batch job with "
				"--status FAILED sends them again)\n",
			(unsigned long long)fc.failed);
		return 3;
	}
	return 0;
}

/* ---- replicate ------------------------------------------------------ */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int cmd_replicate(int argc, char **argv)
{
	struct repl_engine_opts o = { 0 };
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct repl_engine *e = NULL;
	const char *dir = NULL;
	uint64_t pending, done, failed;
	struct store *st;
	char *end;
	int follow = 0, i, err, idle = 0, dd = 0;

	for (i = 1; i < argc; i++) {
		if (!dd && !strcmp(argv[i], "--")) {
			dd = 1;
		} else if ((dd || argv[i][0] != '-') && !dir) {
			dir = argv[i];
		} else if (dd) {
			dir = NULL;
			break;
		} else if (!strcmp(argv[i], "--follow")) {
			follow = 1;
		} else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			errno = 0;
			o.workers = (int)strtol(argv[++i], &end, 10);
			if (errno || *end || o.workers < 1 || o.workers > 64) {
				fprintf(stderr, "replicafs: replicate: bad "
						"worker count '%s'\n", argv[i]);
				return 2;
			}
		} else {
			dir = NULL;
			break;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: replicafs replicate STORE [--follow] "
				"[--workers N]\n");
		return 2;
	}
	if (open_store(dir, &st))
		return 1;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	err = repl_engine_start(st, &o, &e);
	if (err) {
		fprintf(stderr, "replicafs: replicate: %s\n", strerror(-err));
		store_close(st);
		return 1;
	}
	/* Done when the queue has been empty and no worker busy twice in a
	 * row (a worker may be between claiming and recording). */
	while (!stop_flag) {
		nanosleep(&pause, NULL);
		if (follow)
			continue;
		err = store_repl_pending(st, NULL, NULL, &pending);
		if (err)
			break;
		idle = !pending && !repl_engine_busy(e) ? idle + 1 : 0;
		if (idle >= 2)
			break;
	}
	repl_engine_counts(e, &done, &failed);
	repl_engine_stop(e);
	store_close(st);
	printf("replicated %llu version%s, %llu failed\n",
	       (unsigned long long)(done - failed),
	       done - failed == 1 ? "" : "s", (unsigned long long)failed);
	return err || failed ? 1 : 0;
}

/* ---- batch ---------------------------------------------------------- */

/* Parse ISO 8601 in UTC: DATE, DATETHH:MM[:SS[.frac]][Z]; -EINVAL. */
static int parse_time(const char *s, int64_t *ns)
{
	struct tm tm = { 0 };
	const char *p;
	int64_t frac = 0, scale = 100000000;
	time_t t;

	p = strptime(s, "%Y-%m-%d", &tm);
	if (!p)
		return -EINVAL;
	if (*p == 'T' || *p == ' ') {
		const char *q = strptime(p + 1, "%H:%M:%S", &tm);

		if (!q)
			q = strptime(p + 1, "%H:%M", &tm);
		if (!q)
			return -EINVAL;
		p = q;
		if (*p == '.') {
			for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
				frac += (*p - '0') * scale;
		}
	}
	if (*p == 'Z')
		p++;
	if (*p)
		return -EINVAL;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ns = (int64_t)t * 1000000000 + frac;
	return 0;
}

static int parse_status(const char *list, unsigned *mask)
{
	char buf[128], *save = NULL, *tok;

	if (strlen(list) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, list, strlen(list) + 1);
	*mask = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "NONE"))
			*mask |= STORE_JOB_NONE;
		else if (!strcmp(tok, "FAILED"))
			*mask |= STORE_JOB_FAILED;
		else if (!strcmp(tok, "COMPLETED"))
			*mask |= STORE_JOB_COMPLETED;
		else if (!strcmp(tok, "REPLICA"))
			*mask |= STORE_JOB_REPLICA;
		else
			return -EINVAL;
	}
	return *mask ? 0 : -EINVAL;
}

/* An absolute path for @path, which need not exist yet (its directory
 * must), into @out of PATH_MAX bytes. */
static int abs_path(const char *path, char *out)
{
	char dir[PATH_MAX];
	const char *base;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		base = path + (slash - dir) + 1;
		if (!realpath(dir[0] ? dir : "/", out))
			return -errno;
	} else {
		base = path;
		if (!getcwd(out, PATH_MAX))
			return -errno;
	}
	if (strlen(out) + strlen(base) + 2 > PATH_MAX)
		return -ENAMETOOLONG;
	if (strcmp(out, "/"))
		memcpy(out + strlen(out), "/", 2);
	memcpy(out + strlen(out), base, strlen(base) + 1);
	return 0;
}

/* The synopsis of batch create, which `batch` with no verb shows too. */
#define BATCH_CREATE_USAGE                                                    \
	"replicafs batch create BUCKET-PATH [--rule ID | --destination URL]\n" \
	"         [--status NONE,FAILED,COMPLETED,REPLICA] [--prefix P] "       \
	"[--created-before TIME]\n"                                            \
	"         [--manifest FILE.csv] [--report FILE.csv]\n"

static int batch_create(int argc, char **argv)
{
	struct store_job_spec spec = { 0 };
	struct store_job_row *rows = NULL;
	const char *path = NULL, *manifest = NULL;
	char report[PATH_MAX], desc[512] = "", msg[512], *mbuf = NULL;
	struct repl_dest_url u = { 0 };
	size_t nrows = 0;
	int64_t id;
	struct where w;
	struct store *st;
	int i, err, ret = 1, dd = 0;
	size_t dl = 0;

	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!dd && !strcmp(a, "--")) {
			dd = 1;
			continue;
		}
		if (dd || a[0] != '-') {
			if (path)
				goto usage;
			path = a;
			continue;
		}
		if (!v)
			goto usage;
		i++;
		if (!strcmp(a, "--rule")) {
			spec.rule_id = v;
		} else if (!strcmp(a, "--destination")) {
			spec.dest = v;
		} else if (!strcmp(a, "--status")) {
			if (parse_status(v, &spec.status_mask)) {
				fprintf(stderr, "replicafs: batch: --status takes "
						"NONE, FAILED, COMPLETED and "
						"REPLICA, comma-separated; not "
						"'%s'\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--prefix")) {
			spec.prefix = v;
		} else if (!strcmp(a, "--created-before")) {
			if (parse_time(v, &spec.created_before_ns)) {
				fprintf(stderr, "replicafs: batch: '%s' is not an "
						"ISO 8601 time in UTC (e.g. "
						"2026-11-23T10:15:00Z)\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--manifest")) {
			manifest = v;
		} else if (!strcmp(a, "--report")) {
			err = abs_path(v, report);
			if (err) {
				fprintf(stderr, "replicafs: batch: report %s: "
						"%s\n", v, strerror(-err));
				return 1;
			}
			spec.report = report;
		} else {
			goto usage;
		}
		dl += (size_t)snprintf(desc + dl, dl < sizeof(desc)
					     ? sizeof(desc) - dl : 0,
				       "%s%s %s", dl ? " " : "", a, v);
		if (dl >= sizeof(desc))
			dl = sizeof(desc) - 1;
	}
	if (!path)
		goto usage;
	if (spec.rule_id && spec.dest) {
		fprintf(stderr, "replicafs: batch: give --rule or "
				"--destination, not both\n");
		return 2;
	}
	if (manifest && (spec.status_mask || spec.prefix ||
			 spec.created_before_ns)) {
		/* As S3's: filters choose what a job finds in the bucket; a
		 * manifest is what the job is to send, row by row. */
		fprintf(stderr, "replicafs: batch: --status, --prefix and "
				"--created-before choose the versions a job "
				"finds in the bucket; with --manifest it sends "
				"the manifest's rows as they are: leave them "
				"out, or keep only the rows you want in the "
				"manifest\n");
		return 2;
	}
	if (locate(path, &w))
		return 1;
	if (!w.bucket[0] || w.key[0]) {
		fprintf(stderr, "replicafs: batch: %s is not a bucket\n", path);
		return 2;
	}
	if (spec.dest) {
		err = repl_dest_url_parse(spec.dest, &u, msg, sizeof(msg));
		if (!err) {
			spec.dest = u.url;
			err = dest_usable(&u, w.bucket, w.store, NULL, msg,
					  sizeof(msg));
		}
		if (err) {
			fprintf(stderr, "replicafs: batch: %s\n", msg);
			goto out;
		}
	}
	if (manifest) {
		err = repl_manifest_read(manifest, &rows, &nrows, &mbuf);
		if (err) {
			fprintf(stderr, "replicafs: batch: manifest %s: %s\n",
				manifest, strerror(-err));
			goto out;
		}
	}
	spec.bucket = w.bucket;
	spec.description = desc;
	if (open_store(w.store, &st))
		goto out;
	err = store_job_create(st, &spec, manifest ? rows : NULL, nrows, &id);
	if (!err && spec.report) {
		/* A job with nothing to deliver is complete already. */
		struct store_job_info *j = malloc(sizeof(*j));

		if (j && !store_job_get(st, id, j) &&
		    j->state == STORE_JOB_COMPLETE)
			repl_batch_report(st, id, spec.report);
		free(j);
	}
	store_close(st);
	if (err) {
		if (err == -EINVAL && spec.rule_id)
			fprintf(stderr, "replicafs: batch: cannot create the "
					"job: %s has no enabled rule %s (see "
					"replicafs replication get)\n",
				w.bucket, spec.rule_id);
		else
			fprintf(stderr, "replicafs: batch: cannot create the "
					"job: %s\n",
				err == -EINVAL
					? "the bucket has no enabled rule to "
					  "go by (see replicafs replication "
					  "get), and no --destination was given"
					: strerror(-err));
		goto out;
	}
	printf("%lld\n", (long long)id);
	ret = 0;
out:
	repl_dest_url_release(&u);
	free(rows);
	free(mbuf);
	return ret;
usage:
	fprintf(stderr, "usage: " BATCH_CREATE_USAGE);
	return 2;
}

static const char *job_state_name(enum store_job_state s)
{
	return s == STORE_JOB_COMPLETE	  ? "Complete"
	       : s == STORE_JOB_CANCELLED ? "Cancelled"
					  : "Active";
}

static void human_bytes(uint64_t b, char *buf, size_t size)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void print_job(const struct store_job_info *j, int json)
{
	uint64_t done = j->completed + j->failed + j->skipped;
	int64_t end = j->done_ns ? j->done_ns : wall_now();
	double secs = (end - j->created_ns) / 1e9;
	double rate = secs > 0 ? j->bytes_done / secs : 0;
	char b1[32], b2[32], r[32], c[48];

	if (json) {
		printf("{\"id\": %lld, \"bucket\": ", (long long)j->id);
		json_str(j->bucket);
		printf(", \"state\": \"%s\", \"description\": ",
		       job_state_name(j->state));
		json_str(j->description);
		printf(", \"items\": %llu, \"pending\": %llu, \"succeeded\": "
		       "%llu, \"failed\": %llu, \"skipped\": %llu, "
		       "\"cancelled\": %llu, "
		       "\"bytes\": %llu, \"bytes_done\": %llu, "
		       "\"seconds\": %.3f, \"report\": ",
		       (unsigned long long)j->items,
		       (unsigned long long)j->pending,
		       (unsigned long long)j->completed,
		       (unsigned long long)j->failed,
		       (unsigned long long)j->skipped,
		       (unsigned long long)j->cancelled,
		       (unsigned long long)j->bytes,
		       (unsigned long long)j->bytes_done, secs);
		if (j->report[0])
			json_str(j->report);
		else
			printf("null");
		printf("}");
		return;
	}
	human_bytes(j->bytes_done, b1, sizeof(b1));
	human_bytes(j->bytes, b2, sizeof(b2));
	human_bytes((uint64_t)rate, r, sizeof(r));
	snprintf(c, sizeof(c), ", %llu cancelled",
		 (unsigned long long)j->cancelled);
	printf("job %lld on %s: %s, %llu/%llu items (%llu succeeded, %llu "
	       "failed, %llu skipped%s), %s of %s, %s/s, %.1f s\n",
	       (long long)j->id, j->bucket, job_state_name(j->state),
	       (unsigned long long)done, (unsigned long long)j->items,
	       (unsigned long long)j->completed,
	       (unsigned long long)j->failed, (unsigned long long)j->skipped,
	       j->cancelled ? c : "", b1, b2, r, secs);
	if (j->report[0])
		printf("  report: %s%s\n", j->report,
		       j->state == STORE_JOB_ACTIVE ? " (when complete)"
		       : j->pending ? " (when the deliveries under way end)"
				    : "");
}

/* One line that redraws itself: a bar, items, bytes, rate, time left. */
static void progress_line(const struct store_job_info *j)
{
	uint64_t done = j->completed + j->failed + j->skipped;
	double secs = (wall_now() - j->created_ns) / 1e9;
	double frac = j->items ? (double)done / j->items : 1;
	double rate = secs > 0 ? j->bytes_done / secs : 0;
	double irate = secs > 0 ? done / secs : 0;
	double left = irate > 0 ? (j->items - done) / irate : 0;
	char bar[31], b1[32], r[32];
	int i, fill = (int)(frac * 30);

	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	human_bytes(j->bytes_done, b1, sizeof(b1));
	human_bytes((uint64_t)rate, r, sizeof(r));
	printf("\r[%s] %llu/%llu items, %llu failed, %s, %s/s, %.0f s left  ",
	       bar, (unsigned long long)done, (unsigned long long)j->items,
	       (unsigned long long)j->failed, b1, r, left);
	fflush(stdout);
}

struct list_out {
	int json;
	int n;
};

static int list_job(void *arg, const struct store_job_info *j)
{
	struct list_out *o = arg;

	if (o->json)
		printf("%s\n  ", o->n ? "," : "");
	print_job(j, o->json);
	o->n++;
	return 0;
}

/* The store of `batch list/status/run/cancel`: [PATH | --store DIR]
 * among @argv from @first; the JOB (when @want_job) is the first
 * positional argument. */
static int batch_scope(int argc, char **argv, int first, int want_job,
		       struct where *w, int64_t *job, int *json, int *watch)
{
	const char *path = NULL, *store = NULL, *jobs = NULL;
	char *end;
	int i, dd = 0;

	for (i = first; i < argc; i++) {
		if (!dd && argv[i][0] == '-') {
			if (!strcmp(argv[i], "--"))
				dd = 1;
			else if (!strcmp(argv[i], "--store") && i + 1 < argc)
				store = argv[++i];
			else if (json && !strcmp(argv[i], "--json"))
				*json = 1;
			else if (watch && !strcmp(argv[i], "--watch"))
				*watch = 1;
			else
				return -1;
		} else if (want_job && !jobs)
			jobs = argv[i];
		else if (!path)
			path = argv[i];
		else
			return -1;
	}
	if (want_job) {
		if (!jobs)
			return -1;
		errno = 0;
		*job = strtoll(jobs, &end, 10);
		if (errno || *end || *job <= 0) {
			fprintf(stderr, "replicafs: batch: '%s' is not a job "
					"ID\n", jobs);
			return -2;
		}
	}
	if (store && path)
		return -1;
	memset(w, 0, sizeof(*w));
	if (store) {
		if (!realpath(store, w->store)) {
			fprintf(stderr, "replicafs: store %s: %s\n", store,
				strerror(errno));
			return -2;
		}
		return 0;
	}
	return locate(path ? path : ".", w) ? -2 : 0;
}

static int cmd_batch(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "";
	struct store_job_info *j = NULL;
	struct list_out lo = { 0 };
	int64_t id = 0;
	int json = 0, watch = 0, err, ret = 1, want_job;
	struct where w;
	struct store *st;

	if (!strcmp(verb, "create"))
		return batch_create(argc, argv);
	want_job = !strcmp(verb, "status") || !strcmp(verb, "run") ||
		   !strcmp(verb, "cancel");
	if (!want_job && strcmp(verb, "list"))
		goto usage;
	err = batch_scope(argc, argv, 2, want_job, &w, &id,
			  !strcmp(verb, "status") || !strcmp(verb, "list")
				  ? &json : NULL,
			  !strcmp(verb, "status") ? &watch : NULL);
	if (err == -1)
		goto usage;
	if (err)
		return 1;
	if (open_store(w.store, &st))
		return 1;
	j = malloc(sizeof(*j));
	if (!j)
		goto out;
	if (!strcmp(verb, "list")) {
		lo.json = json;
		if (json)
			printf("[");
		err = store_job_list(st, list_job, &lo);
		if (json)
			printf("%s]\n", lo.n ? "\n" : "");
		else if (!err && !lo.n)
			printf("no batch jobs\n");
		ret = err ? 1 : 0;
		goto out;
	}
	err = store_job_get(st, id, j);
	if (err) {
		fprintf(stderr, "replicafs: batch: job %lld: %s\n",
			(long long)id,
			err == -ENOENT ? "no such job" : strerror(-err));
		goto out;
	}
	if (!strcmp(verb, "cancel")) {
		/* Done now: the report is written here.  With deliveries
		 * under way, the replicator that holds them writes it after
		 * the last one (store_job_finish()). */
		err = store_job_cancel(st, id);
		if (err < 0)
			fprintf(stderr, "replicafs: batch: job %lld: %s\n",
				(long long)id,
				err == -EALREADY ? "it is not active"
						 : strerror(-err));
		else if (err > 0)
			printf("job %lld cancelled; %d deliveries under way "
			       "end first%s\n", (long long)id, err,
			       j->report[0] ? ", then the report is written"
					    : "");
		else
			printf("job %lld cancelled\n", (long long)id);
		if (!err && j->report[0] &&
		    repl_batch_report(st, id, j->report))
			err = -EIO;	/* logged */
		ret = err < 0 ? 1 : 0;
		goto out;
	}
	if (!strcmp(verb, "run")) {
		struct repl_engine *e = NULL;
		struct timespec pause = { 0, 50 * 1000 * 1000 };
		struct sigaction sa = { .sa_handler = on_signal };

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		enum store_job_state state = j->state;
		unsigned tick = 0;

		err = repl_engine_start(st, NULL, &e);
		while (!err && !stop_flag && state == STORE_JOB_ACTIVE) {
			/* The progress counts every item, so it is read
			 * 4 times a second, and only for a terminal; the
			 * loop itself looks at the job's state alone. */
			if (isatty(1) && tick++ % 5 == 0 &&
			    !store_job_get(st, id, j))
				progress_line(j);
			nanosleep(&pause, NULL);
			err = store_job_state(st, id, &state);
			/* A job with nothing left to deliver (all of it
			 * skipped, or a crash after its last delivery) is
			 * finished here: one index seek when it is not. */
			if (!err && state == STORE_JOB_ACTIVE &&
			    store_job_finish(st, id) == 1) {
				if (j->report[0])
					repl_batch_report(st, id, j->report);
				err = store_job_state(st, id, &state);
			}
		}
		repl_engine_stop(e);
		if (!err)
			err = store_job_get(st, id, j);
		if (isatty(1))
			printf("\n");
		if (err) {
			fprintf(stderr, "replicafs: batch: job %lld: %s\n",
				(long long)id, strerror(-err));
			goto out;
		}
		print_job(j, 0);
		ret = j->state == STORE_JOB_COMPLETE && !j->failed ? 0 : 1;
		goto out;
	}
	/* status */
	if (watch) {
		struct timespec pause = { 0, 250 * 1000 * 1000 };
		struct sigaction sa = { .sa_handler = on_signal };

		sigaction(SIGINT, &sa, NULL);
		while (!stop_flag && j->state == STORE_JOB_ACTIVE) {
			if (isatty(1))
				progress_line(j);
			nanosleep(&pause, NULL);
			if (store_job_get(st, id, j))
				break;
		}
		if (isatty(1))
			printf("\n");
	}
	print_job(j, json);
	if (json)
		printf("\n");
	ret = 0;
out:
	free(j);
	store_close(st);
	return ret;
usage:
	fprintf(stderr, "usage: " BATCH_CREATE_USAGE
			"       replicafs batch list [PATH | --store DIR] "
			"[--json]\n"
			"       replicafs batch status JOB [PATH | --store DIR] "
			"[--json] [--watch]\n"
			"       replicafs batch run JOB [PATH | --store DIR]\n"
			"       replicafs batch cancel JOB [PATH | --store DIR]\n");
	return 2;
}

int fs_cli_is_repl(const char *name)
{
	return !strcmp(name, "replication") || !strcmp(name, "status") ||
	       !strcmp(name, "wait") || !strcmp(name, "replicate") ||
	       !strcmp(name, "batch");
}

int fs_cli_repl(int argc, char **argv)
{
	if (!strcmp(argv[0], "replication"))
		return cmd_replication(argc, argv);
	if (!strcmp(argv[0], "status"))
		return cmd_status(argc, argv);
	if (!strcmp(argv[0], "wait"))
		return cmd_wait(argc, argv);
	if (!strcmp(argv[0], "batch"))
		return cmd_batch(argc, argv);
	return cmd_replicate(argc, argv);
}
