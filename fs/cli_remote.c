/*
 * cli_remote.c - the remotes that s3:// destinations name:
 *
 *   replicafs remote add NAME ENDPOINT-URL [--region R] [--profile P]
 *            [--path-style] [--ca-file F] [--multipart-threshold SIZE]
 *            [--part-size SIZE] [--parallel N] [--insecure]
 *   replicafs remote list [--json]
 *   replicafs remote remove NAME
 *
 * The remotes file and its rules are replicator/s3_conf.c's; this file
 * only turns arguments into calls and results into one line each.  No
 * secret is ever an argument here: credentials stay where the AWS tools
 * keep them.
 */
#include "fs/fs_i.h"
#include "replicator/s3_conf.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADD_USAGE                                                             \
	"usage: replicafs remote add NAME ENDPOINT-URL [--region R] "          \
	"[--profile P] [--path-style]\n"                                       \
	"              [--ca-file F] [--multipart-threshold SIZE] "            \
	"[--part-size SIZE] [--parallel N]\n"                                  \
	"              [--insecure]\n"

static void usage(void)
{
	fputs(ADD_USAGE
	      "       replicafs remote list [--json]\n"
	      "       replicafs remote remove NAME\n",
	      stderr);
}

/* Print @s as a JSON string. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void json_field(const char *name, const char *v, int last)
{
	printf("\"%s\": ", name);
	if (v)
		json_str(v);
	else
		printf("null");
	printf("%s", last ? "" : ", ");
}

static int cmd_add(int argc, char **argv)
{
	struct s3_remote r;
	char err[1024], ca[PATH_MAX];
	const char *name = NULL, *endpoint = NULL, *opt;
	uint64_t v;
	int i, ret;

	s3_remote_init(&r);
	for (i = 2; i < argc; i++) {
		opt = argv[i];
		if (!strcmp(opt, "--path-style")) {
			r.path_style = 1;
		} else if (!strcmp(opt, "--insecure")) {
			r.insecure = 1;
		} else if (opt[0] == '-' && opt[1] == '-') {
			if (i + 1 >= argc) {
				fprintf(stderr, "replicafs: remote add: %s "
						"needs a value\n", opt);
				return 2;
			}
			i++;
			if (!strcmp(opt, "--region")) {
				r.region = argv[i];
			} else if (!strcmp(opt, "--profile")) {
				r.profile = argv[i];
			} else if (!strcmp(opt, "--ca-file")) {
				if (!realpath(argv[i], ca) ||
				    access(ca, R_OK)) {
					fprintf(stderr, "replicafs: remote "
							"add: CA file %s: %s\n",
						argv[i], strerror(errno));
					return 1;
				}
				r.ca_file = ca;
			} else if (!strcmp(opt, "--multipart-threshold")) {
				if (s3_parse_size(argv[i],
						  &r.multipart_threshold))
					goto bad_value;
			} else if (!strcmp(opt, "--part-size")) {
				if (s3_parse_size(argv[i], &r.part_size))
					goto bad_value;
			} else if (!strcmp(opt, "--parallel")) {
				if (s3_parse_size(argv[i], &v) ||
				    v > S3_PARALLEL_MAX)
					goto bad_value;
				r.parallel = (int)v;
			} else {
				fprintf(stderr, "replicafs: remote add: "
						"unknown option %s\n", opt);
				return 2;
			}
		} else if (!name) {
			name = opt;
		} else if (!endpoint) {
			endpoint = opt;
		} else {
			fputs(ADD_USAGE, stderr);
			return 2;
		}
	}
	if (!name || !endpoint) {
		fputs(ADD_USAGE, stderr);
		return 2;
	}
	if (strlen(name) >= sizeof(r.name)) {
		fprintf(stderr, "replicafs: remote add: a remote's name has at "
				"most 63 characters\n");
		return 2;
	}
	memcpy(r.name, name, strlen(name) + 1);
	r.endpoint = (char *)endpoint;
	ret = s3_remotes_add(NULL, &r, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "replicafs: remote add: %s\n", err);
		return ret == -EINVAL ? 2 : 1;
	}
	printf("remote %s: %s, region %s%s\n", r.name, r.endpoint,
	       r.region ? r.region : "from the AWS configuration",
	       r.path_style ? ", path-style" : "");
	return 0;
bad_value:
	fprintf(stderr, "replicafs: remote add: '%s' is not a value for %s\n",
		argv[i], opt);
	return 2;
}

static int cmd_list(int argc, char **argv)
{
	struct s3_remotes rs;
	char err[1024];
	int json = 0, ret;
	size_t i;

	if (argc == 3 && !strcmp(argv[2], "--json"))
		json = 1;
	else if (argc != 2) {
		usage();
		return 2;
	}
	ret = s3_remotes_load(NULL, &rs, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "replicafs: remote list: %s\n", err);
		s3_remotes_release(&rs);
		return 1;
	}
	if (json)
		printf("[");
	else if (rs.n)
		printf("%-16s %-36s %-14s %-10s %s\n", "NAME", "ENDPOINT",
		       "REGION", "PROFILE", "OPTIONS");
	for (i = 0; i < rs.n; i++) {
		const struct s3_remote *r = &rs.v[i];

		if (json) {
			printf("%s\n  {", i ? "," : "");
			json_field("name", r->name, 0);
			json_field("endpoint", r->endpoint, 0);
			json_field("region", r->region, 0);
			json_field("profile", r->profile, 0);
			json_field("ca_file", r->ca_file, 0);
			printf("\"path_style\": %s, \"insecure_tls\": %s, "
			       "\"multipart_threshold\": %llu, "
			       "\"part_size\": %llu, \"parallel\": %d}",
			       r->path_style ? "true" : "false",
			       r->insecure ? "true" : "false",
			       (unsigned long long)r->multipart_threshold,
			       (unsigned long long)r->part_size, r->parallel);
			continue;
		}
		printf("%-16s %-36s %-14s %-10s", r->name,
		       r->endpoint ? r->endpoint : "(AWS configuration)",
		       r->region ? r->region : "(AWS config)",
		       r->profile ? r->profile : "(default)");
		if (r->path_style)
			printf(" path-style");
		if (r->ca_file)
			printf(" ca-file=%s", r->ca_file);
		if (r->insecure)
			printf(" insecure");
		if (r->multipart_threshold != S3_DEFAULT_MULTIPART_THRESHOLD)
			printf(" multipart-threshold=%llu",
			       (unsigned long long)r->multipart_threshold);
		if (r->part_size != S3_DEFAULT_PART_SIZE)
			printf(" part-size=%llu",
			       (unsigned long long)r->part_size);
		if (r->parallel != S3_DEFAULT_PARALLEL)
			printf(" parallel=%d", r->parallel);
		printf("\n");
	}
	if (json)
		printf("%s]\n", rs.n ? "\n" : "");
	else if (!rs.n)
		printf("no remotes (replicafs remote add NAME ENDPOINT-URL)\n");
	s3_remotes_release(&rs);
	return 0;
}

static int cmd_remove(int argc, char **argv)
{
	char err[1024];
	int ret;

	if (argc != 3) {
		usage();
		return 2;
	}
	ret = s3_remotes_remove(NULL, argv[2], err, sizeof(err));
	if (ret) {
		fprintf(stderr, "replicafs: remote remove: %s\n", err);
		return ret == -EINVAL ? 2 : 1;
	}
	printf("remote %s removed\n", argv[2]);
	return 0;
}

int fs_cli_remote(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "add"))
		return cmd_add(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "list"))
		return cmd_list(argc, argv);
	if (argc >= 2 && (!strcmp(argv[1], "remove") ||
			  !strcmp(argv[1], "rm")))
		return cmd_remove(argc, argv);
	usage();
	return 2;
}
