/*
 * cli.c - the subcommands that are not `mount`.
 *
 * A PATH names something inside a mount.  The mount answers two hidden
 * extended attributes on every node, user.replicafs.store (the store's
 * directory) and user.replicafs.path (BUCKET/KEY), so a command finds the
 * store behind a path without parsing mount tables.  A path that does not
 * exist any more (a deleted file) is found through its parent directory.
 * The command then opens the store itself: several processes may have a
 * store open at once.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"

struct target {
	char store[PATH_MAX];
	char bucket[64];
	char key[STORE_KEY_MAX + 1];
};

static int get_attr(const char *path, const char *name, char *buf,
		    size_t size)
{
	ssize_t n = getxattr(path, name, buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Find the store, bucket and key behind @path. */
static int resolve(const char *path, struct target *t)
{
	char where[64 + STORE_KEY_MAX + 2], parent[PATH_MAX];
	const char *base = NULL;
	char *slash;
	int ret;

	ret = get_attr(path, "user.replicafs.store", t->store,
		       sizeof(t->store));
	if (ret == -ENOENT) {
		/* Gone from the mount (deleted): ask its directory. */
		snprintf(parent, sizeof(parent), "%s", path);
		slash = strrchr(parent, '/');
		if (slash && slash[1]) {
			*slash = '\0';
			base = slash + 1;
		} else if (!slash) {
			base = path;
			snprintf(parent, sizeof(parent), ".");
		}
		if (base)
			ret = get_attr(parent[0] ? parent : "/",
				       "user.replicafs.store", t->store,
				       sizeof(t->store));
		path = parent[0] ? parent : "/";
	}
	if (ret) {
		fprintf(stderr, "replicafs: %s: %s\n", path,
			ret == -ENOENT ? "no such file or directory"
				       : "not inside a replicafs mount");
		return -1;
	}
	ret = get_attr(path, "user.replicafs.path", where, sizeof(where));
	if (ret) {
		fprintf(stderr, "replicafs: %s: %s\n", path, strerror(-ret));
		return -1;
	}
	if (base) {
		size_t l = strlen(where);

		snprintf(where + l, sizeof(where) - l, "/%s", base);
	}
	slash = strchr(where, '/');
	if (slash)
		*slash = '\0';
	if (strlen(where) >= sizeof(t->bucket) ||
	    (slash && strlen(slash + 1) >= sizeof(t->key))) {
		fprintf(stderr, "replicafs: %s: name too long\n", path);
		return -1;
	}
	memcpy(t->bucket, where, strlen(where) + 1);
	if (slash)
		memcpy(t->key, slash + 1, strlen(slash + 1) + 1);
	else
		t->key[0] = '\0';
	if (!t->bucket[0]) {
		fprintf(stderr, "replicafs: %s: the root of a mount is not a "
				"bucket\n", path);
		return -1;
	}
	return 0;
}

static int open_store(const char *dir, struct store **st)
{
	int ret = store_open(dir, 0, st);

	if (ret)
		fprintf(stderr, "replicafs: cannot open store %s: %s\n", dir,
			strerror(-ret));
	return ret;
}

static const char *versioning_name(enum store_versioning v)
{
	switch (v) {
	case STORE_ENABLED:
		return "Enabled";
	case STORE_SUSPENDED:
		return "Suspended";
	default:
		return "Unversioned";
	}
}

static int cmd_versioning(int argc, char **argv)
{
	struct target t;
	struct store *st;
	enum store_versioning v;
	int ret;

	if (argc < 2 || argc > 3) {
		fprintf(stderr,
			"usage: replicafs versioning PATH [enable|suspend]\n");
		return 2;
	}
	if (argc == 3 && strcmp(argv[2], "enable") != 0 &&
	    strcmp(argv[2], "suspend") != 0) {
		fprintf(stderr, "replicafs: versioning: '%s' is neither "
				"'enable' nor 'suspend'\n", argv[2]);
		return 2;
	}
	if (resolve(argv[1], &t))
		return 1;
	if (t.key[0]) {
		fprintf(stderr, "replicafs: %s is not a bucket (versioning "
				"is set per bucket)\n", argv[1]);
		return 2;
	}
	if (open_store(t.store, &st))
		return 1;
	if (argc == 3) {
		v = strcmp(argv[2], "enable") == 0 ? STORE_ENABLED
						   : STORE_SUSPENDED;
		ret = store_bucket_set_versioning(st, t.bucket, v);
	} else {
		ret = store_bucket_get(st, t.bucket, NULL, &v);
	}
	if (ret)
		fprintf(stderr, "replicafs: versioning of %s: %s\n", t.bucket,
			strerror(-ret));
	else
		printf("%s\n", versioning_name(v));
	store_close(st);
	return ret ? 1 : 0;
}

static void iso_time(int64_t ns, char *buf, size_t size)
{
	time_t s = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ns % 1000000000 / 1000000));
}

struct versions_out {
	int json;
	int count;
};

static int print_version(void *arg, const struct store_obj *obj)
{
	struct versions_out *o = arg;
	int dm = obj->kind == STORE_DELETE_MARKER;
	char when[96];

	iso_time(obj->created_ns, when, sizeof(when));
	if (o->json) {
		printf("%s\n  {\"version_id\": \"%s\", \"last_modified\": "
		       "\"%s\", \"size\": %llu, \"is_latest\": %s, "
		       "\"is_delete_marker\": %s, \"sha256\": %s%s%s}",
		       o->count ? "," : "", obj->version_id, when,
		       (unsigned long long)obj->size,
		       obj->is_latest ? "true" : "false", dm ? "true" : "false",
		       dm ? "" : "\"", dm ? "null" : obj->sha256,
		       dm ? "" : "\"");
	} else {
		printf("%s\t%s\t%llu\t%s%s%s\n", obj->version_id, when,
		       (unsigned long long)obj->size,
		       obj->is_latest ? "latest" : "",
		       obj->is_latest && dm ? "," : "",
		       dm ? "delete-marker" : (obj->is_latest ? "" : "-"));
	}
	o->count++;
	return 0;
}

static int cmd_versions(int argc, char **argv)
{
	struct versions_out o = { 0 };
	const char *path = NULL;
	struct target t;
	struct store *st;
	int i, ret;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			o.json = 1;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else
			path = NULL, i = argc + 1;
	}
	if (!path || i > argc) {
		fprintf(stderr, "usage: replicafs versions PATH [--json]\n");
		return 2;
	}
	if (resolve(path, &t))
		return 1;
	if (!t.key[0]) {
		fprintf(stderr, "replicafs: %s is a bucket, not an object\n",
			path);
		return 2;
	}
	if (open_store(t.store, &st))
		return 1;
	if (o.json)
		printf("[");
	ret = store_versions(st, t.bucket, t.key, print_version, &o);
	if (o.json && ret == 0)
		printf("\n]\n");
	if (ret)
		fprintf(stderr, "replicafs: %s: %s\n", path,
			ret == -ENOENT ? "no versions: this key was never "
					 "written"
				       : strerror(-ret));
	store_close(st);
	return ret ? 1 : 0;
}

/* `rm-version PATH VERSION-ID [--yes]`: S3's DELETE with a version ID,
 * which removes that version for good and is never replicated. */
static int cmd_rm_version(int argc, char **argv)
{
	const char *path = NULL, *vid = NULL;
	char answer[16] = "";
	struct store_obj o;
	struct target t;
	struct store *st;
	int yes = 0, i, ret;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--yes") == 0 || strcmp(argv[i], "-y") == 0)
			yes = 1;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else if (!vid && argv[i][0] != '-')
			vid = argv[i];
		else
			path = NULL, i = argc + 1;
	}
	if (!path || !vid || i > argc) {
		fprintf(stderr, "usage: replicafs rm-version PATH VERSION-ID "
				"[--yes]\n");
		return 2;
	}
	if (resolve(path, &t))
		return 1;
	if (!t.key[0]) {
		fprintf(stderr, "replicafs: %s is a bucket, not an object\n",
			path);
		return 2;
	}
	if (open_store(t.store, &st))
		return 1;
	ret = store_version_get(st, t.bucket, t.key, vid, &o);
	if (ret) {
		fprintf(stderr, "replicafs: %s: %s\n", path,
			ret == -ENOENT ? "no version with that ID"
				       : strerror(-ret));
		goto out;
	}
	if (!yes) {
		if (!isatty(0)) {
			fprintf(stderr, "replicafs: rm-version removes a version "
					"for good: confirm with --yes\n");
			ret = -EPERM;
			goto out;
		}
		fprintf(stderr, "remove %s %s of %s for good (%llu bytes)? "
				"[y/N] ", o.kind == STORE_DELETE_MARKER
						 ? "delete marker" : "version",
			vid, path, (unsigned long long)o.size);
		if (!fgets(answer, sizeof(answer), stdin) ||
		    (answer[0] != 'y' && answer[0] != 'Y')) {
			fprintf(stderr, "replicafs: nothing removed\n");
			ret = -ECANCELED;
			goto out;
		}
	}
	ret = store_delete_version(st, t.bucket, t.key, vid);
	if (ret)
		fprintf(stderr, "replicafs: %s: %s\n", path, strerror(-ret));
	else
		printf("removed %s of %s\n", vid, path);
out:
	store_close(st);
	return ret ? 1 : 0;
}

static int cmd_check(int argc, char **argv)
{
	struct store *st;
	int deep = 0, ret;

	if (argc == 3 && strcmp(argv[2], "--deep") == 0)
		deep = 1;
	else if (argc != 2) {
		fprintf(stderr, "usage: replicafs check STORE [--deep]\n");
		return 2;
	}
	if (open_store(argv[1], &st))
		return 1;
	ret = store_check(st, deep);
	store_close(st);
	if (ret) {
		fprintf(stderr, "replicafs: store %s has problems (see above)\n",
			argv[1]);
		return 1;
	}
	printf("store %s: ok%s\n", argv[1], deep ? " (every blob hashed)" : "");
	return 0;
}

int fs_cli_main(int argc, char **argv)
{
	if (strcmp(argv[0], "versioning") == 0)
		return cmd_versioning(argc, argv);
	if (strcmp(argv[0], "versions") == 0)
		return cmd_versions(argc, argv);
	if (strcmp(argv[0], "check") == 0)
		return cmd_check(argc, argv);
	if (strcmp(argv[0], "rm-version") == 0)
		return cmd_rm_version(argc, argv);
	if (strcmp(argv[0], "remote") == 0)
		return fs_cli_remote(argc, argv);
	if (fs_cli_is_repl(argv[0]))
		return fs_cli_repl(argc, argv);
	fprintf(stderr, "replicafs: '%s' is not a command; see "
			"'replicafs --help'\n", argv[0]);
	return 2;
}
