/*
 * main.c - the `replicafs` program: subcommands in the style of git.
 *
 *   replicafs mount [-f] [-o OPTIONS] STORE MOUNTPOINT
 *   replicafs versioning PATH [enable|suspend]
 *   replicafs versions PATH [--json]
 *   replicafs restore PATH VERSION-ID | undelete [-r] PATH
 *   replicafs check STORE [--deep]
 *   replicafs remote add|list|remove ...   (cli_remote.c)
 *
 * `mount` is here; the others are in cli.c.  Every command prints one
 * clear line and exits non-zero on a bad argument.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/log.h"

static void usage(FILE *f)
{
	fputs("usage: replicafs mount [-f] [-o OPTIONS] STORE MOUNTPOINT\n"
	      "       replicafs versioning PATH [enable|suspend]\n"
	      "       replicafs versions PATH [--json]\n"
	      "       replicafs rm-version PATH VERSION-ID [--yes] | "
	      "rm-version -r PATH [--yes]\n"
	      "       replicafs restore PATH VERSION-ID | undelete [-r] PATH\n"
	      "       replicafs check STORE [--deep]\n"
	      "       replicafs replication put BUCKET-PATH FILE.json "
	      "[--hook CMD] | get BUCKET-PATH | delete BUCKET-PATH\n"
	      "       replicafs status [PATH | --store DIR] [--json]\n"
	      "       replicafs wait [PATH | --store DIR] [--timeout SECONDS]\n"
	      "       replicafs replicate STORE [--follow] [--workers N]\n"
	      "       replicafs batch create BUCKET-PATH [--rule ID | "
	      "--destination URL] [--status S,...]\n"
	      "            [--prefix P] [--created-before TIME] "
	      "[--manifest FILE.csv] [--report FILE.csv]\n"
	      "       replicafs batch list [PATH | --store DIR] [--json]\n"
	      "       replicafs batch status JOB [PATH | --store DIR] [--json] "
	      "[--watch]\n"
	      "       replicafs batch run|cancel JOB [PATH | --store DIR]\n"
	      "       replicafs remote add NAME ENDPOINT-URL [--region R] "
	      "[--profile P] [--path-style]\n"
	      "              [--ca-file F] [--multipart-threshold SIZE] "
	      "[--part-size SIZE] [--parallel N]\n"
	      "       replicafs remote list [--json] | remote remove NAME\n"
	      "mount options: allow_other, acl, noacl, nopassthrough, nowriteback, "
	      "nobdi, nouring, "
	      "debug,"
	      " timeout=SECONDS, threads=N, spin=MICROSECONDS,\n"
	      "  repl_workers=N (0: no replication in this mount), "
	      "repl_attempts=N, repl_backoff_ms=MS\n"
	      "unmount with: fusermount3 -u MOUNTPOINT\n",
	      f);
}

/* Parse one comma-separated -o list into @o. */
static int parse_opts(char *list, struct fs_opts *o)
{
	char *save = NULL, *tok, *end;

	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "allow_other") == 0) {
			o->allow_other = 1;
		} else if (strcmp(tok, "nowriteback") == 0) {
			o->writeback = 0;
		} else if (strcmp(tok, "passthrough") == 0) {
			o->passthrough = 1;
		} else if (strcmp(tok, "nopassthrough") == 0) {
			o->passthrough = 0;
		} else if (strcmp(tok, "writeback") == 0) {
			o->writeback = 1;
		} else if (strcmp(tok, "acl") == 0) {
			o->acl = 1;
		} else if (strcmp(tok, "noacl") == 0) {
			o->acl = 0;
		} else if (strcmp(tok, "nobdi") == 0) {
			o->bdi_tune = 0;
		} else if (strcmp(tok, "nouring") == 0) {
			o->uring = 0;
		} else if (strcmp(tok, "debug") == 0) {
			o->debug = 1;
		} else if (strncmp(tok, "timeout=", 8) == 0) {
			errno = 0;
			o->timeout = strtod(tok + 8, &end);
			if (errno || *end || o->timeout < 0)
				goto bad;
		} else if (strncmp(tok, "repl_workers=", 13) == 0) {
			long v;

			errno = 0;
			v = strtol(tok + 13, &end, 10);
			if (errno || *end || v < 0 || v > 64)
				goto bad;
			o->repl.workers = (int)v;
			o->repl_off = v == 0;
		} else if (strncmp(tok, "repl_attempts=", 14) == 0) {
			long v;

			errno = 0;
			v = strtol(tok + 14, &end, 10);
			if (errno || *end || v < 1 || v > 1000)
				goto bad;
			o->repl.max_attempts = (int)v;
		} else if (strncmp(tok, "repl_backoff_ms=", 16) == 0) {
			long v;

			errno = 0;
			v = strtol(tok + 16, &end, 10);
			if (errno || *end || v < 1 || v > 3600000)
				goto bad;
			o->repl.backoff_base_ns = v * 1000000LL;
		} else if (strncmp(tok, "spin=", 5) == 0) {
			long v;

			errno = 0;
			v = strtol(tok + 5, &end, 10);
			if (errno || *end || v < 0 || v > 100000)
				goto bad;
			o->spin_us = (unsigned)v;
		} else if (strncmp(tok, "threads=", 8) == 0) {
			long v;

			errno = 0;
			v = strtol(tok + 8, &end, 10);
			if (errno || *end || v < 1 || v > 256)
				goto bad;
			o->threads = (unsigned)v;
		} else {
			goto bad;
		}
	}
	return 0;
bad:
	fprintf(stderr, "replicafs: mount: unknown or bad option '%s'\n", tok);
	return -EINVAL;
}

/* Resolve @path, which need not exist, by its parent: into @out, PATH_MAX
 * bytes.  Returns 0, or -1 with errno set. */
/* Whether resolved path @path is directory @top or lies below it, by
 * device and inode: a bind mount of @top shows it under another name. */
static int below_dir(const char *path, const struct stat *top)
{
	char p[PATH_MAX];
	struct stat sb;
	char *slash;

	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		if (stat(p, &sb) == 0 && sb.st_dev == top->st_dev &&
		    sb.st_ino == top->st_ino)
			return 1;
		slash = strrchr(p, '/');
		if (!slash || slash == p)
			return 0;
		*slash = '\0';
	}
}

static int resolve_new(const char *path, char *out)
{
	char parent[PATH_MAX];
	const char *dir = ".", *base = path;
	char *slash;
	size_t len;

	snprintf(parent, sizeof(parent), "%s", path);
	len = strlen(parent);
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	slash = strrchr(parent, '/');
	if (slash) {
		base = slash + 1;
		dir = slash == parent ? "/" : parent;
		*slash = '\0';
		if (dir == parent && !*parent)
			dir = "/";
	} else {
		base = parent;
	}
	if (slash == parent)
		dir = "/";
	if (!realpath(dir, out))
		return -1;
	len = strlen(out);
	if (len + strlen(base) + 2 > PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (out[len - 1] != '/')
		out[len++] = '/';
	memcpy(out + len, base, strlen(base) + 1);
	return 0;
}

static int cmd_mount(int argc, char **argv)
{
	struct fs_opts o = {
		.writeback = 1,
		.passthrough = 1,
		.timeout = 1.0,
		.threads = 16,
		.spin_us = FS_SPIN_US,
		.bdi_tune = 1,
		.uring = 1,
		.acl = -1,	/* see fs_opts */
	};
	char store[PATH_MAX], mnt[PATH_MAX];
	struct stat sb;
	const char *pos[2];
	int npos = 0, i, dd = 0;

	for (i = 1; i < argc; i++) {
		if (dd || argv[i][0] != '-') {
			if (npos < 2)
				pos[npos++] = argv[i];
			else
				npos = 3;
		} else if (strcmp(argv[i], "--") == 0) {
			dd = 1;
		} else if (strcmp(argv[i], "-f") == 0) {
			o.foreground = 1;
		} else if (strcmp(argv[i], "-d") == 0) {
			o.debug = 1;
			o.foreground = 1;
		} else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			/* On a copy: strtok_r() cut argv, and ps showed
			 * "-o timeout=2 threads=2" where the command had
			 * commas, which pgrep -f did not find.  Kept for
			 * the process's life, as the options point into
			 * it. */
			static char *opt_copy[8];
			static size_t ncopy;
			char *copy = strdup(argv[++i]);

			if (!copy) {
				perror("replicafs");
				return 1;
			}
			if (ncopy < sizeof(opt_copy) / sizeof(opt_copy[0]))
				opt_copy[ncopy++] = copy;
			if (parse_opts(copy, &o))
				return 2;
		} else {
			fprintf(stderr, "replicafs: mount: unknown flag '%s'\n",
				argv[i]);
			return 2;
		}
	}
	if (npos != 2) {
		usage(stderr);
		return 2;
	}
	if (o.debug)
		store_log_level = LOG_DEBUG;
	if (!realpath(pos[1], mnt)) {
		fprintf(stderr, "replicafs: mount point %s: %s\n", pos[1],
			strerror(errno));
		return 1;
	}
	/* The kernel lets a FUSE file system mount on a file, whose
	 * root then fails every stat with EIO: say so instead. */
	if (stat(mnt, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "replicafs: mount point %s: %s\n", pos[1],
			strerror(ENOTDIR));
		return 1;
	}
	/* The store may not exist yet: resolve its parent. */
	if (!realpath(pos[0], store) && resolve_new(pos[0], store)) {
		fprintf(stderr, "replicafs: store %s: %s\n", pos[0],
			strerror(errno));
		return 1;
	}
	/* A store under its own mount point is hidden by the mount, and a
	 * mount point in the store puts the mount in its own way: either
	 * way the daemon's first look at the store waited on a request to
	 * its own mount, for good (mkdir hung in D state). */
	if (fs_path_within(store, mnt) || fs_path_within(mnt, store) ||
	    (stat(store, &sb) == 0 && below_dir(mnt, &sb)) ||
	    (stat(mnt, &sb) == 0 && below_dir(store, &sb))) {
		fprintf(stderr, "replicafs: the store %s and the mount point %s "
			"must lie outside each other\n", store, mnt);
		return 1;
	}
	/* A store needs what a mount has not (hard links for its blobs):
	 * made there, it failed half-built, with a message about a blob. */
	if (fs_path_in_replicafs(store)) {
		fprintf(stderr, "replicafs: the store %s lies in a replicafs "
			"mount: put it on a disk of its own\n", store);
		return 1;
	}
	o.store_dir = store;
	o.mountpoint = mnt;
	return fs_mount(&o) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "mount") == 0)
		return cmd_mount(argc - 1, argv + 1);
	return fs_cli_main(argc - 1, argv + 1);
}
