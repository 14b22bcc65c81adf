/*
 * test_rules.c - unit tests of replication configurations: destination
 * URLs, what is accepted (defaults, V1 rules, ignored S3 fields), every
 * refusal and the place its message names, overlap of filters, matching
 * by prefix and tags, the choice among rules by priority, and the
 * canonical JSON's round trip.
 */
#include "replicator/rules.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(rules, .timeout = 60);

/* ---- helpers -------------------------------------------------------- */

static char err[512];

/* Parse @json, which must be accepted; the caller frees the result. */
static struct repl_config *ok(const char *json)
{
	struct repl_config *c = NULL;
	int rc;

	err[0] = '\0';
	rc = repl_config_parse(json, strlen(json), &c, err, sizeof(err));
	cr_assert_eq(rc, 0, "refused (%d): %s\n%s", rc, err, json);
	cr_assert_not_null(c);
	return c;
}

/*
 * Parse @json, which must be refused with -EINVAL and a message that
 * starts with @place (the place, then ": ") and contains @what.
 */
static void refused(const char *json, const char *place, const char *what)
{
	struct repl_config *c = (struct repl_config *)1;
	size_t n = strlen(place);
	int rc;

	err[0] = '\0';
	rc = repl_config_parse(json, strlen(json), &c, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL, "accepted (%d):\n%s", rc, json);
	cr_assert_null(c);
	cr_assert(!strncmp(err, place, n) && !strncmp(err + n, ": ", 2),
		  "message does not start with \"%s: \": %s", place, err);
	cr_assert_not_null(strstr(err, what), "no \"%s\" in: %s", what, err);
	cr_assert_null(strchr(err, '\n'), "not one line: %s", err);
}

/* A configuration of one rule with body @rule (no braces). */
static char *one_rule(const char *rule)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf),
		 "{\"Role\": \"arn:aws:iam::1:role/r\", "
		 "\"Rules\": [{%s}]}",
		 rule);
	return buf;
}

#define DEST "\"Destination\": {\"Bucket\": \"store:///srv/b/photos\"}"
#define V2   "\"Status\": \"Enabled\", \"Filter\": {}, " DEST

/* Parse the canonical JSON of @c again: an equal configuration. */
static void round_trip(const struct repl_config *c)
{
	struct repl_config *d;
	char *text, *again;

	text = repl_config_to_json(c);
	cr_assert_not_null(text);
	cr_assert_eq(text[strlen(text) - 1], '\n');
	cr_assert(!c->role || strstr(text, "\"Role\""),
		  "get drops the Role:\n%s", text);
	d = ok(text);
	cr_assert(repl_config_equal(c, d), "not equal after:\n%s", text);
	again = repl_config_to_json(d);
	cr_assert_not_null(again);
	cr_assert_str_eq(text, again);
	free(again);
	free(text);
	repl_config_free(d);
}

/* ---- destination URLs ----------------------------------------------- */

static void url_ok(const char *url, enum repl_dest_kind kind, const char *canon,
		   const char *path, const char *remote, const char *bucket,
		   const char *prefix)
{
	struct repl_dest_url u;
	int rc;

	err[0] = '\0';
	rc = repl_dest_url_parse(url, &u, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s refused: %s", url, err);
	cr_expect_eq(u.kind, kind, "%s", url);
	cr_expect_str_eq(u.url, canon, "%s", url);
#define FIELD(f)                                                               \
	do {                                                                   \
		if (f)                                                         \
			cr_expect(u.f && !strcmp(u.f, f), "%s: " #f " %s",     \
				  url, u.f ? u.f : "(null)");                  \
		else                                                           \
			cr_expect_null(u.f, "%s: " #f, url);                   \
	} while (0)
	FIELD(path);
	FIELD(remote);
	FIELD(bucket);
	FIELD(prefix);
#undef FIELD
	repl_dest_url_release(&u);
	cr_expect_null(u.url);
}

static void url_bad(const char *url, const char *what)
{
	struct repl_dest_url u;
	int rc;

	err[0] = '\0';
	rc = repl_dest_url_parse(url, &u, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL, "%s accepted", url ? url : "(null)");
	cr_expect_null(u.url);
	cr_expect_null(u.path);
	cr_expect_null(u.bucket);
	cr_expect_not_null(strstr(err, what), "%s: no \"%s\" in: %s",
			   url ? url : "(null)", what, err);
	if (url && *url && strlen(url) < 200 && !strchr(url, '\t'))
		cr_expect_not_null(strstr(err, url), "URL not named: %s", err);
}

Test(rules, url_store)
{
	url_ok("store:///srv/backup/photos", REPL_DEST_STORE,
	       "store:///srv/backup/photos", "/srv/backup", NULL, "photos",
	       NULL);
	url_ok("store:///srv//backup/./photos/", REPL_DEST_STORE,
	       "store:///srv/backup/photos", "/srv/backup", NULL, "photos",
	       NULL);
	url_ok("STORE:///s/my.bucket-1", REPL_DEST_STORE,
	       "store:///s/my.bucket-1", "/s", NULL, "my.bucket-1", NULL);

	url_bad("store://", "has no path");
	url_bad("store://host/s/b", "must be absolute");
	url_bad("store://s/b", "must be absolute");
	url_bad("store:///", "names no bucket");
	url_bad("store:///photos", "no store directory");
	url_bad("store:///s/../b/photos", "\"..\"");
	url_bad("store:///s/Photos", "lowercase");
	url_bad("store:///s/ab", "at least 3");
	url_bad("store:///s/-ab", "starts and ends");
	url_bad("store:///s/192.168.1.1", "IP address");
}

Test(rules, url_dir)
{
	url_ok("dir:///mnt/backup", REPL_DEST_DIR, "dir:///mnt/backup",
	       "/mnt/backup", NULL, NULL, NULL);
	url_ok("dir:///mnt//backup/.//", REPL_DEST_DIR, "dir:///mnt/backup",
	       "/mnt/backup", NULL, NULL, NULL);
	url_ok("dir:///", REPL_DEST_DIR, "dir:///", "/", NULL, NULL, NULL);

	url_bad("dir://", "has no path");
	url_bad("dir://backup", "must be absolute");
	url_bad("dir://./backup", "must be absolute");
	url_bad("dir:///mnt/../etc", "\"..\"");
	url_bad("dir:///mnt/a\tb", "control character");
}

Test(rules, url_s3)
{
	url_ok("s3://aws/photos", REPL_DEST_S3, "s3://aws/photos", NULL, "aws",
	       "photos", "");
	url_ok("s3://minio-1/photos/", REPL_DEST_S3, "s3://minio-1/photos",
	       NULL, "minio-1", "photos", "");
	url_ok("s3://minio/photos/backup/2026/", REPL_DEST_S3,
	       "s3://minio/photos/backup/2026/", NULL, "minio", "photos",
	       "backup/2026/");
	url_ok("S3://Garage_2/photos", REPL_DEST_S3, "s3://Garage_2/photos",
	       NULL, "Garage_2", "photos", "");

	url_bad("s3://", "names no remote");
	url_bad("s3:///photos", "names no remote");
	url_bad("s3://aws", "names no bucket");
	url_bad("s3://aws/", "names no bucket");
	url_bad("s3://aws//photos", "names no bucket");
	url_bad("s3://a%b/photos", "remote");
	url_bad("s3://-aws/photos", "remote");
	url_bad("s3://aws/Photos", "lowercase");
	url_bad("s3://aws/ph", "at least 3");
}

Test(rules, url_arn)
{
	url_ok("arn:aws:s3:::photos", REPL_DEST_S3, "s3://default/photos", NULL,
	       "default", "photos", "");
	url_ok("arn:aws-cn:s3:::photos", REPL_DEST_S3, "s3://default/photos",
	       NULL, "default", "photos", "");

	url_bad("arn:aws:s3:::", "at least 3");
	url_bad("arn:aws:s3:::photos/key", "not a bucket");
	url_bad("arn:aws:iam::123:role/r", "not the ARN of an S3 bucket");
	url_bad("arn:aws:s3:::Photos", "lowercase");
}

Test(rules, url_other)
{
	url_bad("", "empty");
	url_bad(NULL, "empty");
	url_bad("/srv/backup/photos", "not a destination URL");
	url_bad("srv/backup", "not a destination URL");
	url_bad("http://example.com/b", "not a destination URL");
	url_bad("file:///srv", "not a destination URL");
}

Test(rules, url_too_long)
{
	char url[8192];
	struct repl_dest_url u;

	memcpy(url, "dir:///", 7);
	memset(url + 7, 'a', sizeof(url) - 8);
	url[sizeof(url) - 1] = '\0';
	cr_assert_eq(repl_dest_url_parse(url, &u, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "longer than"));
}

Test(rules, remote_names)
{
	const char *why = NULL;

	cr_expect_eq(repl_remote_name_check("default", NULL), 0);
	cr_expect_eq(repl_remote_name_check("a", NULL), 0);
	cr_expect_eq(repl_remote_name_check("eu-west_1.x", NULL), 0);
	cr_expect_eq(repl_remote_name_check("", &why), -EINVAL);
	cr_expect_not_null(why);
	cr_expect_eq(repl_remote_name_check(NULL, NULL), -EINVAL);
	cr_expect_eq(repl_remote_name_check(".a", NULL), -EINVAL);
	cr_expect_eq(repl_remote_name_check("a b", NULL), -EINVAL);
	cr_expect_eq(repl_remote_name_check("a/b", NULL), -EINVAL);
	cr_expect_eq(repl_remote_name_check(
			 "a123456789012345678901234567890123456789012345"
			 "678901234567890123",
			 NULL),
		     -EINVAL);
}

/* ---- accepted, with defaults ---------------------------------------- */

Test(rules, defaults)
{
	struct repl_config *c = ok(one_rule(V2));
	const struct repl_rule *r = &c->rules[0];

	cr_assert_eq(c->nrules, 1);
	cr_expect_str_eq(r->id, "rule-1");
	cr_expect_eq(r->priority, 0);
	cr_expect(r->enabled);
	cr_expect(!r->v1);
	cr_expect_str_eq(r->filter.prefix, "");
	cr_expect_eq(r->filter.ntags, 0);
	cr_expect_eq(r->dest.kind, REPL_DEST_STORE);
	cr_expect_str_eq(r->dest.url, "store:///srv/b/photos");
	cr_expect(!r->delete_markers);
	cr_expect(!r->existing_objects);
	cr_expect(!r->time_enabled);
	cr_expect_eq(r->time_minutes, 15);
	cr_expect_eq(repl_config_rule(c, "rule-1"), r);
	cr_expect_null(repl_config_rule(c, "nope"));
	round_trip(c);
	repl_config_free(c);
}

Test(rules, full_rule)
{
	struct repl_config *c = ok(
	    "{\"Role\": \"arn:aws:iam::123456789012:role/replication\",\n"
	    " \"Rules\": [{\"ID\": \"docs to backup\", \"Priority\": 7,\n"
	    "  \"Status\": \"Disabled\",\n"
	    "  \"Filter\": {\"And\": {\"Prefix\": \"docs/\", \"Tags\": [\n"
	    "    {\"Key\": \"z\", \"Value\": \"1\"},\n"
	    "    {\"Key\": \"a\", \"Value\": \"\"}]}},\n"
	    "  \"Destination\": {\"Bucket\": \"s3://aws/backup/docs/\",\n"
	    "    \"StorageClass\": \"STANDARD_IA\", \"Account\": \"1234\",\n"
	    "    \"AccessControlTranslation\": {\"Owner\": "
	    "\"Destination\"},\n"
	    "    \"EncryptionConfiguration\": {\"ReplicaKmsKeyID\": "
	    "\"arn:k\"},\n"
	    "    \"ReplicationTime\": {\"Status\": \"Enabled\",\n"
	    "      \"Time\": {\"Minutes\": 30}},\n"
	    "    \"Metrics\": {\"Status\": \"Enabled\",\n"
	    "      \"EventThreshold\": {\"Minutes\": 15}}},\n"
	    "  \"DeleteMarkerReplication\": {\"Status\": \"Disabled\"},\n"
	    "  \"ExistingObjectReplication\": {\"Status\": \"Enabled\"},\n"
	    "  \"SourceSelectionCriteria\": {\n"
	    "    \"SseKmsEncryptedObjects\": {\"Status\": \"Enabled\"},\n"
	    "    \"ReplicaModifications\": {\"Status\": \"Disabled\"}}}]}\n");
	const struct repl_rule *r = &c->rules[0];

	cr_expect_str_eq(r->id, "docs to backup");
	/* Each field for the notes, not the first alone. */
	cr_expect_str_eq(r->unused[0], "Destination.StorageClass");
	cr_expect_str_eq(r->unused[1], "Destination.Account");
	cr_expect_str_eq(r->unused[2], "Destination.AccessControlTranslation");
	cr_expect_str_eq(r->unused[3], "Destination.EncryptionConfiguration");
	cr_expect_str_eq(r->unused[4], "Destination.Metrics");
	cr_expect_null(r->unused[5]);
	cr_expect_str_eq(r->unused_ssc[0],
			 "SourceSelectionCriteria.SseKmsEncryptedObjects",
			 "Enabled, and not done: for a note");
	cr_expect_null(r->unused_ssc[1], "ReplicaModifications is Disabled");
	cr_expect_str_eq(c->role,
			 "arn:aws:iam::123456789012:role/replication",
			 "Role, kept for get");
	cr_expect_eq(r->priority, 7);
	cr_expect(!r->enabled);
	cr_expect_str_eq(r->filter.prefix, "docs/");
	cr_assert_eq(r->filter.ntags, 2);
	/* Sorted by key. */
	cr_expect_str_eq(r->filter.tags[0].key, "a");
	cr_expect_str_eq(r->filter.tags[0].value, "");
	cr_expect_str_eq(r->filter.tags[1].key, "z");
	cr_expect_str_eq(r->filter.tags[1].value, "1");
	cr_expect_eq(r->dest.kind, REPL_DEST_S3);
	cr_expect_str_eq(r->dest.remote, "aws");
	cr_expect_str_eq(r->dest.bucket, "backup");
	cr_expect_str_eq(r->dest.prefix, "docs/");
	cr_expect(!r->delete_markers);	/* S3 refuses it with Tags */
	cr_expect(r->existing_objects);
	cr_expect(r->time_enabled);
	cr_expect_eq(r->time_minutes, 30);
	round_trip(c);
	repl_config_free(c);
}

/* Both criteria of SourceSelectionCriteria Enabled: a note for each (the
 * second was not named), and none for a Destination with only a Bucket. */
Test(rules, every_unused_criterion)
{
	struct repl_config *c = ok(
	    "{\"Rules\": [{\"Status\": \"Enabled\", \"Filter\": {},\n"
	    "  \"DeleteMarkerReplication\": {\"Status\": \"Disabled\"},\n"
	    "  \"Destination\": {\"Bucket\": \"dir:///tmp/m\"},\n"
	    "  \"SourceSelectionCriteria\": {\n"
	    "    \"SseKmsEncryptedObjects\": {\"Status\": \"Enabled\"},\n"
	    "    \"ReplicaModifications\": {\"Status\": \"Enabled\"}}}]}\n");
	const struct repl_rule *r = &c->rules[0];

	cr_expect_null(r->unused[0]);
	cr_expect_str_eq(r->unused_ssc[0],
			 "SourceSelectionCriteria.ReplicaModifications");
	cr_expect_str_eq(r->unused_ssc[1],
			 "SourceSelectionCriteria.SseKmsEncryptedObjects");
	cr_expect_null(r->unused_ssc[2]);
	repl_config_free(c);
}

Test(rules, filter_shapes)
{
	struct repl_config *c;

	c = ok(one_rule("\"Status\": \"Enabled\", "
			"\"Filter\": {\"Prefix\": \"a/\"}, " DEST));
	cr_expect_str_eq(c->rules[0].filter.prefix, "a/");
	cr_expect_eq(c->rules[0].filter.ntags, 0);
	round_trip(c);
	repl_config_free(c);

	c = ok(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Tag\": "
			"{\"Key\": \"k\", \"Value\": \"v\"}}, " DEST));
	cr_expect_str_eq(c->rules[0].filter.prefix, "");
	cr_assert_eq(c->rules[0].filter.ntags, 1);
	cr_expect_str_eq(c->rules[0].filter.tags[0].key, "k");
	cr_expect_str_eq(c->rules[0].filter.tags[0].value, "v");
	round_trip(c);
	repl_config_free(c);

	c = ok(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			"{\"Prefix\": \"p\"}}, " DEST));
	cr_expect_str_eq(c->rules[0].filter.prefix, "p");
	round_trip(c);
	repl_config_free(c);

	c = ok(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			"{\"Tags\": [{\"Key\": \"a\", \"Value\": \"1\"}, "
			"{\"Key\": \"b\", \"Value\": \"2\"}]}}, " DEST));
	cr_expect_eq(c->rules[0].filter.ntags, 2);
	round_trip(c);
	repl_config_free(c);

	c = ok(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			"{}}, " DEST));
	cr_expect_str_eq(c->rules[0].filter.prefix, "");
	round_trip(c);
	repl_config_free(c);

	/* As S3: a delete marker has no tags for a Tag filter to match. */
	refused(one_rule("\"ID\": \"t\", \"Status\": \"Enabled\", "
			 "\"Filter\": {\"Tag\": {\"Key\": \"k\", "
			 "\"Value\": \"v\"}}, \"DeleteMarkerReplication\": "
			 "{\"Status\": \"Enabled\"}, " DEST),
		"Rules[0]", "a delete marker has no tags");
}

Test(rules, v1_rules)
{
	struct repl_config *c =
	    ok("{\"Rules\": [{\"ID\": \"a\", \"Prefix\": \"logs/\", "
	       "\"Status\": \"Enabled\", " DEST "}, "
	       "{\"Prefix\": \"docs/\", \"Status\": \"Enabled\", " DEST
	       ", \"ExistingObjectReplication\": {\"Status\": \"Enabled\"}}]}");
	const struct repl_rule *r = &c->rules[1];
	char *text;

	cr_expect(c->rules[0].v1);
	cr_expect(r->v1);
	cr_expect_str_eq(r->id, "rule-2");
	cr_expect_str_eq(r->filter.prefix, "docs/");
	cr_expect(r->delete_markers, "V1 rules replicate delete markers");
	cr_expect(r->existing_objects);
	cr_expect_eq(r->priority, 0);
	text = repl_config_to_json(c);
	cr_assert_not_null(text);
	cr_expect_null(strstr(text, "Filter"), "%s", text);
	cr_expect_null(strstr(text, "DeleteMarkerReplication"), "%s", text);
	cr_expect_null(strstr(text, "Priority"), "%s", text);
	free(text);
	round_trip(c);
	repl_config_free(c);

	/* An empty V1 prefix selects every key. */
	c = ok(one_rule("\"Prefix\": \"\", \"Status\": \"Enabled\", " DEST));
	cr_expect(repl_rule_match(&c->rules[0], "any/key", NULL, 0));
	round_trip(c);
	repl_config_free(c);
}

Test(rules, generated_ids_are_unique)
{
	struct repl_config *c =
	    ok("{\"Rules\": [{\"Priority\": 1, " V2 "}, "
	       "{\"ID\": \"rule-1\", \"Priority\": 2, " V2 "}, "
	       "{\"ID\": \"\", \"Priority\": 3, " V2 "}]}");

	cr_expect_str_eq(c->rules[0].id, "rule-1-2");
	cr_expect_str_eq(c->rules[1].id, "rule-1");
	cr_expect_str_eq(c->rules[2].id, "rule-3");
	round_trip(c);
	repl_config_free(c);
}

Test(rules, unwraps_get_output)
{
	struct repl_config *c =
	    ok("{\"ReplicationConfiguration\": {\"Role\": \"r\", "
	       "\"Rules\": [{" V2 "}]}}");

	cr_expect_eq(c->nrules, 1);
	repl_config_free(c);
}

Test(rules, id_and_limits_at_the_edge)
{
	char json[8192], id[REPL_ID_MAX + 1];
	struct repl_config *c;

	memset(id, 'i', REPL_ID_MAX);
	id[REPL_ID_MAX] = '\0';
	snprintf(json, sizeof(json), "{\"Rules\": [{\"ID\": \"%s\", " V2 "}]}",
		 id);
	c = ok(json);
	cr_expect_str_eq(c->rules[0].id, id);
	repl_config_free(c);
}

Test(rules, many_rules)
{
	size_t size = 200 * (REPL_RULES_MAX + 1) + 64, len, i;
	char *json = malloc(size);
	struct repl_config *c = NULL;
	int rc;

	cr_assert_not_null(json);
	for (int n = REPL_RULES_MAX; n <= REPL_RULES_MAX + 1; n++) {
		len = (size_t)snprintf(json, size, "{\"Rules\": [");
		for (i = 0; i < (size_t)n; i++)
			len += (size_t)snprintf(json + len, size - len,
						"%s{\"Priority\": %zu, " V2 "}",
						i ? ", " : "", i);
		len += (size_t)snprintf(json + len, size - len, "]}");
		rc = repl_config_parse(json, len, &c, err, sizeof(err));
		if (n == REPL_RULES_MAX) {
			cr_assert_eq(rc, 0, "%s", err);
			cr_expect_eq(c->nrules, REPL_RULES_MAX);
			cr_expect_str_eq(c->rules[999].id, "rule-1000");
			round_trip(c);
			repl_config_free(c);
		} else {
			cr_expect_eq(rc, -EINVAL);
			cr_expect(!strncmp(err, "Rules: ", 7), "%s", err);
			cr_expect_not_null(strstr(err, "at most 1000"));
		}
	}
	free(json);
}

Test(rules, not_nul_terminated)
{
	const char *json = "{\"Rules\": [{" V2 "}]}garbage";
	struct repl_config *c = NULL;

	cr_assert_eq(
	    repl_config_parse(json, strlen(json) - 7, &c, err, sizeof(err)), 0,
	    "%s", err);
	repl_config_free(c);
}

/* ---- refusals ------------------------------------------------------- */

Test(rules, malformed_json)
{
	refused("{\"Rules\": [\n  {\"ID\": \"a\",\n   \"Status\": }]}",
		"line 3, column 14", "");
	refused("", "line 1, column 0", "");
	refused("{\"Rules\": []} x", "line 1, column 15", "");
	refused("{\"Rules\": [{\"ID\": \"a\", \"ID\": \"b\"}]}",
		"line 1, column 27", "duplicate");
	/* jansson refuses invalid UTF-8 too. */
	refused("{\"Rules\": [{\"ID\": \"\xff\"}]}", "line 1, column 19",
		"unable to decode byte 0xff");
}

Test(rules, not_an_object)
{
	refused("[1, 2]", "the configuration", "found an array");
	refused("{\"ReplicationConfiguration\": []}",
		"ReplicationConfiguration", "expected an object");
}

Test(rules, missing_fields)
{
	refused("{\"Role\": \"r\"}", "the configuration",
		"missing the required field Rules");
	refused("{}", "the configuration", "Rules");
	refused(one_rule("\"Filter\": {}, " DEST), "Rules[0]",
		"missing the required field Status");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}"), "Rules[0]",
		"missing the required field Destination");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"StorageClass\": \"STANDARD\"}"),
		"Rules[0].Destination", "missing the required field Bucket");
	refused(one_rule(V2 ", \"DeleteMarkerReplication\": {}"),
		"Rules[0].DeleteMarkerReplication",
		"missing the required field Status");
	refused(one_rule(V2 ", \"ExistingObjectReplication\": {}"),
		"Rules[0].ExistingObjectReplication",
		"missing the required field Status");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"ReplicationTime\": {\"Time\": {\"Minutes\": 15}}}"),
		"Rules[0].Destination.ReplicationTime",
		"missing the required field Status");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"ReplicationTime\": {\"Status\": \"Enabled\", "
			 "\"Time\": {}}}"),
		"Rules[0].Destination.ReplicationTime.Time",
		"missing the required field Minutes");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Tag\": "
			 "{\"Key\": \"k\"}}, " DEST),
		"Rules[0].Filter.Tag", "missing the required field Value");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			 "{\"Tags\": [{\"Value\": \"v\"}]}}, " DEST),
		"Rules[0].Filter.And.Tags[0]",
		"missing the required field Key");
	refused(one_rule("\"Status\": \"Enabled\", " DEST), "Rules[0]",
		"neither a Filter nor a Prefix");
}

Test(rules, wrong_types)
{
	refused("{\"Rules\": {}}", "Rules",
		"expected an array, found an "
		"object");
	refused("{\"Role\": 1, \"Rules\": []}", "Role", "expected a string");
	refused("{\"Rules\": [\"r\"]}", "Rules[0]",
		"expected an object, found a string");
	refused(one_rule(V2 ", \"ID\": 12"), "Rules[0].ID",
		"expected a string, found an integer");
	refused(one_rule(V2 ", \"Priority\": \"1\""), "Rules[0].Priority",
		"expected an integer, found a string");
	refused(one_rule(V2 ", \"Priority\": 1.5"), "Rules[0].Priority",
		"expected an integer");
	refused(one_rule(V2 ", \"Priority\": null"), "Rules[0].Priority",
		"found null");
	refused(one_rule("\"Status\": true, \"Filter\": {}, " DEST),
		"Rules[0].Status", "expected a string, found true");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": [], " DEST),
		"Rules[0].Filter", "expected an object");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Prefix\": "
			 "3}, " DEST),
		"Rules[0].Filter.Prefix", "expected a string");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Tag\": "
			 "[]}, " DEST),
		"Rules[0].Filter.Tag", "expected an object");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			 "{\"Tags\": {}}}, " DEST),
		"Rules[0].Filter.And.Tags", "expected an array");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			 "{\"Tags\": [1]}}, " DEST),
		"Rules[0].Filter.And.Tags[0]", "expected an object");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": \"dir:///x\""),
		"Rules[0].Destination", "expected an object");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": [\"dir:///x\"]}"),
		"Rules[0].Destination.Bucket", "expected a string");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"StorageClass\": 1}"),
		"Rules[0].Destination.StorageClass", "expected a string");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"Account\": 1}"),
		"Rules[0].Destination.Account", "expected a string");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"AccessControlTranslation\": {\"Owner\": 1}}"),
		"Rules[0].Destination.AccessControlTranslation.Owner",
		"expected a string");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"EncryptionConfiguration\": \"k\"}"),
		"Rules[0].Destination.EncryptionConfiguration",
		"expected an object");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"Metrics\": {\"Status\": \"Enabled\", "
			 "\"EventThreshold\": {\"Minutes\": \"15\"}}}"),
		"Rules[0].Destination.Metrics.EventThreshold.Minutes",
		"expected an integer");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"ReplicationTime\": {\"Status\": \"Enabled\", "
			 "\"Time\": 15}}"),
		"Rules[0].Destination.ReplicationTime.Time",
		"expected an object");
	refused(one_rule(V2 ", \"DeleteMarkerReplication\": \"Enabled\""),
		"Rules[0].DeleteMarkerReplication", "expected an object");
	refused(one_rule(V2 ", \"SourceSelectionCriteria\": "
			    "{\"ReplicaModifications\": {\"Status\": 1}}"),
		"Rules[0].SourceSelectionCriteria.ReplicaModifications.Status",
		"expected a string");
}

Test(rules, unknown_fields)
{
	refused("{\"Rules\": [{" V2 "}], \"Rulez\": []}", "the configuration",
		"unknown field \"Rulez\"");
	refused(one_rule(V2 ", \"Owner\": \"me\""), "Rules[0]",
		"unknown field \"Owner\"");
	refused(one_rule(V2 ", \"status\": \"Enabled\""), "Rules[0]",
		"did you mean \"Status\"?");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Prefix\": "
			 "\"a\", \"Suffix\": \"b\"}, " DEST),
		"Rules[0].Filter", "unknown field \"Suffix\"");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			 "{\"Tag\": {}}}, " DEST),
		"Rules[0].Filter.And", "unknown field \"Tag\"");
	refused(
	    one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Tag\": "
		     "{\"Key\": \"k\", \"Value\": \"v\", \"X\": 1}}, " DEST),
	    "Rules[0].Filter.Tag", "unknown field \"X\"");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"Region\": \"eu\"}"),
		"Rules[0].Destination", "unknown field \"Region\"");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"ReplicationTime\": {\"Status\": \"Enabled\", "
			 "\"Time\": {\"Seconds\": 9}}}"),
		"Rules[0].Destination.ReplicationTime.Time",
		"unknown field \"Seconds\"");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"Metrics\": {\"Status\": \"Enabled\", \"X\": 1}}"),
		"Rules[0].Destination.Metrics", "unknown field \"X\"");
	refused(one_rule(V2 ", \"DeleteMarkerReplication\": {\"Status\": "
			    "\"Enabled\", \"Days\": 1}"),
		"Rules[0].DeleteMarkerReplication", "unknown field \"Days\"");
	refused(one_rule(V2 ", \"SourceSelectionCriteria\": {\"X\": {}}"),
		"Rules[0].SourceSelectionCriteria", "unknown field \"X\"");
	/* A field's name is quoted on one line, cut when long. */
	refused(one_rule(V2 ", \"a\\nb0123456789012345678901234567890123456"
			    "789012345678901234567890123456789\": 1"),
		"Rules[0]", "unknown field \"a?b012");
	/* The message lists the fields there are. */
	refused(one_rule(V2 ", \"X\": 1"), "Rules[0]",
		"ExistingObjectReplication and SourceSelectionCriteria");
}

Test(rules, unknown_values)
{
	refused(one_rule("\"Status\": \"enabled\", \"Filter\": {}, " DEST),
		"Rules[0].Status",
		"\"enabled\" is not one of Enabled, "
		"Disabled");
	refused("{\"Rules\": [{\"Priority\": 1, " V2 "}, {\"Priority\": 2, "
		"\"Status\": \"On\", \"Filter\": {}, " DEST "}]}",
		"Rules[1].Status", "\"On\" is not one of Enabled, Disabled");
	refused(one_rule(V2 ", \"DeleteMarkerReplication\": {\"Status\": "
			    "\"Yes\"}"),
		"Rules[0].DeleteMarkerReplication.Status",
		"is not one of Enabled, Disabled");
	refused(one_rule(V2 ", \"ExistingObjectReplication\": {\"Status\": "
			    "\"\"}"),
		"Rules[0].ExistingObjectReplication.Status",
		"is not one of Enabled, Disabled");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"ReplicationTime\": {\"Status\": \"ON\"}}"),
		"Rules[0].Destination.ReplicationTime.Status",
		"is not one of Enabled, Disabled");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"Metrics\": {\"Status\": \"x\"}}"),
		"Rules[0].Destination.Metrics.Status",
		"is not one of Enabled, Disabled");
	refused(one_rule(V2 ", \"SourceSelectionCriteria\": "
			    "{\"SseKmsEncryptedObjects\": {\"Status\": "
			    "\"x\"}}"),
		"Rules[0].SourceSelectionCriteria.SseKmsEncryptedObjects."
		"Status",
		"is not one of");
	refused(
	    one_rule("\"Status\": \"Enabled\\u0000\", \"Filter\": {}, " DEST),
	    "Rules[0].Status", "has a NUL character");
}

Test(rules, bad_numbers)
{
	refused(one_rule(V2 ", \"Priority\": -1"), "Rules[0].Priority",
		"-1 is not between 0 and");
	refused(one_rule(V2 ", \"Priority\": 2147483648"), "Rules[0].Priority",
		"is not between 0 and");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"ReplicationTime\": {\"Status\": \"Enabled\", "
			 "\"Time\": {\"Minutes\": 0}}}"),
		"Rules[0].Destination.ReplicationTime.Time.Minutes",
		"0 is not between 1 and 1440");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir:///x\", "
			 "\"ReplicationTime\": {\"Status\": \"Enabled\", "
			 "\"Time\": {\"Minutes\": 1441}}}"),
		"Rules[0].Destination.ReplicationTime.Time.Minutes",
		"is not between");
}

Test(rules, bad_strings)
{
	char json[4096], id[REPL_ID_MAX + 2], key[REPL_TAG_KEY_MAX + 2],
	    val[REPL_TAG_VALUE_MAX + 2], prefix[1100];

	memset(id, 'i', REPL_ID_MAX + 1);
	id[REPL_ID_MAX + 1] = '\0';
	snprintf(json, sizeof(json), "{\"Rules\": [{\"ID\": \"%s\", " V2 "}]}",
		 id);
	refused(json, "Rules[0].ID", "256 bytes long; at most 255");

	refused(one_rule(V2 ", \"ID\": \"a\\u0000b\""), "Rules[0].ID",
		"has a NUL character");
	refused(one_rule(V2 ", \"Stat\\u0000us\": 1"), "line 1, column 146",
		"NUL byte in object key");

	memset(key, 'k', REPL_TAG_KEY_MAX + 1);
	key[REPL_TAG_KEY_MAX + 1] = '\0';
	snprintf(json, sizeof(json),
		 "{\"Rules\": [{\"Status\": \"Enabled\", \"Filter\": {\"Tag\": "
		 "{\"Key\": \"%s\", \"Value\": \"v\"}}, " DEST "}]}",
		 key);
	refused(json, "Rules[0].Filter.Tag.Key", "at most 128");

	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Tag\": "
			 "{\"Key\": \"\", \"Value\": \"v\"}}, " DEST),
		"Rules[0].Filter.Tag.Key", "is empty");

	memset(val, 'v', REPL_TAG_VALUE_MAX + 1);
	val[REPL_TAG_VALUE_MAX + 1] = '\0';
	snprintf(json, sizeof(json),
		 "{\"Rules\": [{\"Status\": \"Enabled\", \"Filter\": {\"And\": "
		 "{\"Tags\": [{\"Key\": \"a\", \"Value\": \"v\"}, "
		 "{\"Key\": \"b\", \"Value\": \"%s\"}]}}, " DEST "}]}",
		 val);
	refused(json, "Rules[0].Filter.And.Tags[1].Value", "at most 256");

	memset(prefix, 'p', 1025);
	prefix[1025] = '\0';
	snprintf(json, sizeof(json),
		 "{\"Rules\": [{\"Status\": \"Enabled\", \"Filter\": "
		 "{\"And\": {\"Prefix\": \"%s\"}}, " DEST "}]}",
		 prefix);
	refused(json, "Rules[0].Filter.And.Prefix", "at most 1024");
	snprintf(
	    json, sizeof(json),
	    "{\"Rules\": [{\"Status\": \"Enabled\", \"Prefix\": \"%s\", " DEST
	    "}]}",
	    prefix);
	refused(json, "Rules[0].Prefix", "at most 1024");
}

/* An ID with a control character, C1 too, is refused, with the rule's
 * place and why: the log and replicafs status show IDs, where a newline
 * made a line of its own and U+009B (CSI) acts on a terminal.  The ID is
 * quoted with '?' for each byte of the character. */
Test(rules, ids_are_printable)
{
	struct repl_config *c;

	refused(one_rule(V2 ", \"ID\": \"a\\nb\""), "Rules[0].ID",
		"\"a?b\" has a control character (U+000A)");
	refused(one_rule(V2 ", \"ID\": \"\\u001b[31m\""), "Rules[0].ID",
		"control character (U+001B)");
	refused(one_rule(V2 ", \"ID\": \"del\\u007f\""), "Rules[0].ID",
		"control character (U+007F)");
	refused(one_rule(V2 ", \"ID\": \"csi\\u009b31m\""), "Rules[0].ID",
		"\"csi??31m\" has a control character (U+009B)");
	refused("{\"Rules\": [{\"ID\": \"ok\", \"Priority\": 1, " V2 "}, "
		"{\"ID\": \"nel\xc2\x85\", \"Priority\": 2, " V2 "}]}",
		"Rules[1].ID", "control character (U+0085)");
	cr_assert_not_null(strstr(err, "replicafs status"), "%s", err);
	/* Printable UTF-8 is an ID like any other. */
	c = ok(one_rule(V2 ", \"ID\": \"caf\xc3\xa9 \xe2\x98\x83 "
		       "\xf0\x9f\x98\x80 \xc2\xa0\""));
	cr_expect_str_eq(c->rules[0].id, "caf\xc3\xa9 \xe2\x98\x83 "
					 "\xf0\x9f\x98\x80 \xc2\xa0");
	repl_config_free(c);
}

Test(rules, rules_count)
{
	refused("{\"Rules\": []}", "Rules", "at least one rule");
}

Test(rules, filter_with_two_kinds)
{
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Prefix\": "
			 "\"a\", \"Tag\": {\"Key\": \"k\", \"Value\": "
			 "\"v\"}}, " DEST),
		"Rules[0].Filter", "has 2 of Prefix, Tag and And");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Prefix\": "
			 "\"a\", \"And\": {}}, " DEST),
		"Rules[0].Filter", "has 2 of");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Prefix\": "
			 "\"a\", \"And\": {}, \"Tag\": {\"Key\": \"k\", "
			 "\"Value\": \"v\"}}, " DEST),
		"Rules[0].Filter", "has 3 of");
}

Test(rules, duplicate_tag_keys)
{
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			 "{\"Tags\": [{\"Key\": \"k\", \"Value\": \"1\"}, "
			 "{\"Key\": \"k\", \"Value\": \"2\"}]}}, " DEST),
		"Rules[0].Filter.And.Tags", "\"k\" is given twice");
}

Test(rules, too_many_tags)
{
	char json[4096];
	size_t len;
	int i;

	len = (size_t)snprintf(json, sizeof(json),
			       "{\"Rules\": [{\"Status\": \"Enabled\", "
			       "\"Filter\": {\"And\": {\"Tags\": [");
	for (i = 0; i <= REPL_TAGS_MAX; i++)
		len += (size_t)snprintf(json + len, sizeof(json) - len,
					"%s{\"Key\": \"k%d\", \"Value\": \"\"}",
					i ? ", " : "", i);
	snprintf(json + len, sizeof(json) - len, "]}}, " DEST "}]}");
	refused(json, "Rules[0].Filter.And.Tags", "has 11 tags");
}

Test(rules, duplicate_ids)
{
	refused("{\"Rules\": [{\"ID\": \"a\", \"Priority\": 1, " V2 "}, "
		"{\"ID\": \"b\", \"Priority\": 2, " V2 "}, "
		"{\"ID\": \"a\", \"Priority\": 3, " V2 "}]}",
		"Rules[2].ID", "\"a\" is also the ID of Rules[0]");
}

Test(rules, bad_destinations)
{
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"photos\"}"),
		"Rules[0].Destination.Bucket",
		"\"photos\": is not a destination URL");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"\"}"),
		"Rules[0].Destination.Bucket", "empty");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"dir://rel\"}"),
		"Rules[0].Destination.Bucket", "absolute");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": "
			 "\"store:///s/Bad_Name\"}"),
		"Rules[0].Destination.Bucket", "bucket \"Bad_Name\"");
	refused(one_rule("\"Status\": \"Enabled\", \"Filter\": {}, "
			 "\"Destination\": {\"Bucket\": \"s3://r\"}"),
		"Rules[0].Destination.Bucket", "names no bucket");
}

Test(rules, v1_mixed_the_way_s3_refuses)
{
	refused(one_rule("\"Prefix\": \"a\", \"Status\": \"Enabled\", "
			 "\"Filter\": {}, " DEST),
		"Rules[0]", "both a Filter and a rule-level Prefix");
	refused(one_rule("\"Prefix\": \"a\", \"Priority\": 1, "
			 "\"Status\": \"Enabled\", " DEST),
		"Rules[0]", "has a Priority");
	refused(one_rule("\"Prefix\": \"a\", \"Status\": \"Enabled\", " DEST
			 ", \"DeleteMarkerReplication\": {\"Status\": "
			 "\"Disabled\"}"),
		"Rules[0]", "always replicates delete markers");
	refused(
	    "{\"Rules\": [{\"Prefix\": \"a\", \"Status\": \"Enabled\", " DEST
	    "}, {\"Status\": \"Enabled\", \"Filter\": {\"Prefix\": "
	    "\"b\"}, " DEST "}]}",
	    "Rules[1]", "one configuration uses one");
	refused("{\"Rules\": [{\"Status\": \"Enabled\", \"Filter\": {}, " DEST
		"}, {\"Prefix\": \"b\", \"Status\": \"Enabled\", " DEST "}]}",
		"Rules[1]", "V1");
}

/* ---- overlap -------------------------------------------------------- */

/* A configuration of two rules with the given priorities and filters. */
static int two(int p1, const char *f1, int p2, const char *f2, const char *s2)
{
	struct repl_config *c = NULL;
	char json[2048];
	int rc;

	snprintf(json, sizeof(json),
		 "{\"Rules\": [{\"ID\": \"one\", \"Priority\": %d, \"Status\": "
		 "\"Enabled\", \"Filter\": %s, " DEST "}, {\"ID\": \"two\", "
		 "\"Priority\": %d, \"Status\": \"%s\", \"Filter\": %s, "
		 "\"Destination\": {\"Bucket\": \"dir:///elsewhere\"}}]}",
		 p1, f1, p2, s2, f2);
	err[0] = '\0';
	rc = repl_config_parse(json, strlen(json), &c, err, sizeof(err));
	repl_config_free(c);
	return rc;
}

#define P(s)	"{\"Prefix\": \"" s "\"}"
#define T(k, v) "{\"Tag\": {\"Key\": \"" k "\", \"Value\": \"" v "\"}}"
#define PT(p, k, v)                                                            \
	"{\"And\": {\"Prefix\": \"" p "\", \"Tags\": [{\"Key\": \"" k          \
	"\", \"Value\": \"" v "\"}]}}"

Test(rules, overlap)
{
	/* Equal priority, overlapping: refused, naming both rules. */
	cr_expect_eq(two(1, P("docs/"), 1, P("docs/2026/"), "Enabled"),
		     -EINVAL);
	cr_expect(!strncmp(err, "Rules[1]: ", 10), "%s", err);
	cr_expect_not_null(strstr(err, "Rules[0] (ID \"one\")"), "%s", err);
	cr_expect_not_null(strstr(err, "overlapping rules with same priority"),
			   "%s", err);
	cr_expect_eq(two(1, P("docs/2026/"), 1, P("docs/"), "Enabled"),
		     -EINVAL);
	cr_expect_eq(two(1, "{}", 1, P("x"), "Enabled"), -EINVAL);
	cr_expect_eq(two(0, P(""), 0, "{}", "Enabled"), -EINVAL);
	cr_expect_eq(two(1, P("a"), 1, P("a"), "Enabled"), -EINVAL);
	cr_expect_eq(two(1, T("k", "v"), 1, T("k", "v"), "Enabled"), -EINVAL);
	cr_expect_eq(two(1, T("k", "v"), 1, T("j", "w"), "Enabled"), -EINVAL,
		     "an object can carry both tags");
	cr_expect_eq(two(1, P("a/"), 1, T("k", "v"), "Enabled"), -EINVAL);
	cr_expect_eq(
	    two(1, PT("a/", "k", "v"), 1, PT("a/b", "k", "v"), "Enabled"),
	    -EINVAL);

	/* Disjoint prefixes: fine. */
	cr_expect_eq(two(1, P("docs/"), 1, P("logs/"), "Enabled"), 0, "%s",
		     err);
	cr_expect_eq(two(1, P("a/b"), 1, P("a/c"), "Enabled"), 0, "%s", err);
	/* Conflicting tags: no object matches both. */
	cr_expect_eq(two(1, T("k", "v1"), 1, T("k", "v2"), "Enabled"), 0, "%s",
		     err);
	cr_expect_eq(
	    two(1, PT("a/", "k", "v1"), 1, PT("a/b", "k", "v2"), "Enabled"), 0,
	    "%s", err);
	/* Different priorities, or a disabled rule: fine. */
	cr_expect_eq(two(1, P("docs/"), 2, P("docs/"), "Enabled"), 0, "%s",
		     err);
	cr_expect_eq(two(1, P("docs/"), 1, P("docs/"), "Disabled"), 0, "%s",
		     err);
}

Test(rules, overlap_v1)
{
	refused("{\"Rules\": [{\"Prefix\": \"logs/\", \"Status\": "
		"\"Enabled\", " DEST "}, {\"Prefix\": \"logs/app/\", "
		"\"Status\": \"Enabled\", \"Destination\": {\"Bucket\": "
		"\"dir:///x\"}}]}",
		"Rules[1]", "\"logs/app/\" overlaps Rules[0]'s \"logs/\"");
	repl_config_free(ok("{\"Rules\": [{\"Prefix\": \"logs/\", \"Status\": "
			    "\"Enabled\", " DEST "}, {\"Prefix\": \"docs/\", "
			    "\"Status\": \"Enabled\", " DEST "}]}"));
}

/* ---- matching ------------------------------------------------------- */

Test(rules, match_prefix)
{
	struct repl_config *c =
	    ok(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Prefix\": "
			"\"docs/\"}, " DEST));
	const struct repl_rule *r = &c->rules[0];
	struct repl_tag t = {"k", "v"};

	cr_expect(repl_rule_match(r, "docs/a.txt", NULL, 0));
	cr_expect(repl_rule_match(r, "docs/", NULL, 0));
	cr_expect(repl_rule_match(r, "docs/x/y/z", &t, 1));
	cr_expect(!repl_rule_match(r, "docs", NULL, 0));
	cr_expect(!repl_rule_match(r, "Docs/a", NULL, 0));
	cr_expect(!repl_rule_match(r, "logs/docs/a", NULL, 0));
	cr_expect(!repl_rule_match(r, "", NULL, 0));
	repl_config_free(c);

	c = ok(one_rule(V2));
	cr_expect(repl_rule_match(&c->rules[0], "", NULL, 0));
	cr_expect(repl_rule_match(&c->rules[0], "anything", NULL, 0));
	repl_config_free(c);
}

Test(rules, match_tags)
{
	struct repl_config *c = ok(one_rule(
	    "\"Status\": \"Enabled\", \"Filter\": {\"And\": {\"Prefix\": "
	    "\"p/\", \"Tags\": [{\"Key\": \"team\", \"Value\": \"a\"}, "
	    "{\"Key\": \"keep\", \"Value\": \"\"}]}}, " DEST));
	const struct repl_rule *r = &c->rules[0];
	struct repl_tag both[] = {{"x", "y"}, {"keep", ""}, {"team", "a"}};
	struct repl_tag wrong[] = {{"team", "b"}, {"keep", ""}};
	struct repl_tag one[] = {{"team", "a"}};
	struct repl_tag keyonly[] = {{"team", "a"}, {"keep", "x"}};

	cr_expect(repl_rule_match(r, "p/k", both, 3));
	cr_expect(!repl_rule_match(r, "q/k", both, 3), "prefix counts too");
	cr_expect(!repl_rule_match(r, "p/k", wrong, 2));
	cr_expect(!repl_rule_match(r, "p/k", one, 1));
	cr_expect(!repl_rule_match(r, "p/k", keyonly, 2));
	cr_expect(!repl_rule_match(r, "p/k", NULL, 0));
	repl_config_free(c);

	c = ok(one_rule("\"Status\": \"Enabled\", \"Filter\": {\"Tag\": "
			"{\"Key\": \"k\", \"Value\": \"v\"}}, " DEST));
	cr_expect(repl_rule_match(&c->rules[0], "any", both, 0) == false);
	cr_expect(repl_rule_match(&c->rules[0], "any",
				  (struct repl_tag[]){{"k", "v"}}, 1));
	cr_expect(!repl_rule_match(&c->rules[0], "any",
				   (struct repl_tag[]){{"k", "V"}}, 1));
	cr_expect(!repl_rule_match(&c->rules[0], "any",
				   (struct repl_tag[]){{"K", "v"}}, 1));
	repl_config_free(c);
}

Test(rules, match_disabled)
{
	struct repl_config *c =
	    ok(one_rule("\"Status\": \"Disabled\", \"Filter\": {}, " DEST));
	const struct repl_rule *out[1];

	cr_expect(!repl_rule_match(&c->rules[0], "k", NULL, 0));
	cr_expect_eq(repl_config_destinations(c, "k", NULL, 0, out, 1), 0);
	repl_config_free(c);
}

/* ---- destinations and priority -------------------------------------- */

Test(rules, destinations_by_priority)
{
	struct repl_config *c =
	    ok("{\"Rules\": ["
	       /* 0: everything to the store, low priority, no markers */
	       "{\"ID\": \"all\", \"Priority\": 1, \"Status\": \"Enabled\", "
	       "\"Filter\": {}, \"Destination\": {\"Bucket\": "
	       "\"store:///srv/b/photos\"}},"
	       /* 1: docs/ to the same store (written another way), high
		* priority, with delete markers */
	       "{\"ID\": \"docs\", \"Priority\": 5, \"Status\": \"Enabled\", "
	       "\"Filter\": {\"Prefix\": \"docs/\"}, \"Destination\": "
	       "{\"Bucket\": \"store:///srv//b/photos/\"}, "
	       "\"DeleteMarkerReplication\": {\"Status\": \"Enabled\"}},"
	       /* 2: docs/ to a directory */
	       "{\"ID\": \"dir\", \"Priority\": 2, \"Status\": \"Enabled\", "
	       "\"Filter\": {\"Prefix\": \"docs/\"}, \"Destination\": "
	       "{\"Bucket\": \"dir:///mnt/backup\"}},"
	       /* 3: tagged objects to S3, with a higher priority one
		* disabled */
	       "{\"ID\": \"s3\", \"Priority\": 3, \"Status\": \"Enabled\", "
	       "\"Filter\": {\"Tag\": {\"Key\": \"offsite\", \"Value\": "
	       "\"yes\"}}, \"Destination\": {\"Bucket\": "
	       "\"arn:aws:s3:::photos-copy\"}},"
	       "{\"ID\": \"s3-off\", \"Priority\": 9, \"Status\": "
	       "\"Disabled\", \"Filter\": {}, \"Destination\": {\"Bucket\": "
	       "\"s3://default/photos-copy\"}, \"DeleteMarkerReplication\": "
	       "{\"Status\": \"Enabled\"}}"
	       "]}");
	const struct repl_rule *out[5];
	struct repl_tag off = {"offsite", "yes"};
	int n;

	/* Only the catch-all. */
	n = repl_config_destinations(c, "cat.jpg", NULL, 0, out, 5);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(out[0]->id, "all");
	cr_expect(!out[0]->delete_markers);

	/* docs/: the store (the higher priority wins) and the directory. */
	n = repl_config_destinations(c, "docs/a", NULL, 0, out, 5);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(out[0]->id, "docs");
	cr_expect(out[0]->delete_markers);
	cr_expect_str_eq(out[1]->id, "dir");

	/* Tagged: to S3 too, by the enabled rule only. */
	n = repl_config_destinations(c, "docs/a", &off, 1, out, 5);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(out[0]->id, "docs");
	cr_expect_str_eq(out[1]->id, "dir");
	cr_expect_str_eq(out[2]->id, "s3");
	cr_expect(!out[2]->delete_markers);
	cr_expect_str_eq(out[2]->dest.url, "s3://default/photos-copy");

	/* Room for too few. */
	cr_expect_eq(repl_config_destinations(c, "docs/a", &off, 1, out, 2),
		     -ENOSPC);
	cr_expect_eq(repl_config_destinations(c, "x", NULL, 0, out, 0),
		     -ENOSPC);
	round_trip(c);
	repl_config_free(c);
}

Test(rules, destinations_lower_priority_first)
{
	/* The winner can come after the loser, and before it too. */
	struct repl_config *c =
	    ok("{\"Rules\": ["
	       "{\"ID\": \"hi\", \"Priority\": 10, \"Status\": \"Enabled\", "
	       "\"Filter\": {\"Prefix\": \"a\"}, " DEST ", "
	       "\"DeleteMarkerReplication\": {\"Status\": \"Enabled\"}},"
	       "{\"ID\": \"lo\", \"Priority\": 1, \"Status\": \"Enabled\", "
	       "\"Filter\": {}, " DEST "}]}");
	const struct repl_rule *out[2];

	cr_assert_eq(repl_config_destinations(c, "abc", NULL, 0, out, 2), 1);
	cr_expect_str_eq(out[0]->id, "hi");
	cr_expect(out[0]->delete_markers);
	cr_assert_eq(repl_config_destinations(c, "b", NULL, 0, out, 2), 1);
	cr_expect_str_eq(out[0]->id, "lo");
	cr_expect(!out[0]->delete_markers);
	repl_config_free(c);
}

/* ---- canonical JSON ------------------------------------------------- */

Test(rules, canonical_text)
{
	struct repl_config *c =
	    ok("{\"Rules\": [{\"Status\": \"Enabled\", \"Filter\": {\"And\": "
	       "{\"Prefix\": \"\", \"Tags\": [{\"Key\": \"k\", \"Value\": "
	       "\"v\"}]}}, \"Destination\": {\"Bucket\": "
	       "\"arn:aws:s3:::photos\", \"StorageClass\": \"GLACIER\"}}]}");
	const char *want = "{\n"
			   "  \"Rules\": [\n"
			   "    {\n"
			   "      \"ID\": \"rule-1\",\n"
			   "      \"Priority\": 0,\n"
			   "      \"Status\": \"Enabled\",\n"
			   "      \"Filter\": {\n"
			   "        \"Tag\": {\n"
			   "          \"Key\": \"k\",\n"
			   "          \"Value\": \"v\"\n"
			   "        }\n"
			   "      },\n"
			   "      \"Destination\": {\n"
			   "        \"Bucket\": \"s3://default/photos\",\n"
			   "        \"ReplicationTime\": {\n"
			   "          \"Status\": \"Disabled\",\n"
			   "          \"Time\": {\n"
			   "            \"Minutes\": 15\n"
			   "          }\n"
			   "        }\n"
			   "      },\n"
			   "      \"DeleteMarkerReplication\": {\n"
			   "        \"Status\": \"Disabled\"\n"
			   "      },\n"
			   "      \"ExistingObjectReplication\": {\n"
			   "        \"Status\": \"Disabled\"\n"
			   "      }\n"
			   "    }\n"
			   "  ]\n"
			   "}\n";
	char *text = repl_config_to_json(c);

	cr_assert_not_null(text);
	cr_expect_str_eq(text, want);
	free(text);
	repl_config_free(c);
}

Test(rules, round_trip_unicode_and_escapes)
{
	struct repl_config *c =
	    ok("{\"Rules\": [{\"ID\": \"r\\\"1\\\\ é\", \"Status\": "
	       "\"Enabled\", \"Filter\": {\"And\": {\"Prefix\": \"fotos/ñ/\", "
	       "\"Tags\": [{\"Key\": \"b\", \"Value\": \"\\t\"}, {\"Key\": "
	       "\"a\", \"Value\": \"☃\"}]}}, \"Destination\": {\"Bucket\": "
	       "\"s3://eu/b-1/x y/\"}}]}");

	cr_expect_str_eq(c->rules[0].id, "r\"1\\ é");
	cr_expect_str_eq(c->rules[0].dest.prefix, "x y/");
	round_trip(c);
	repl_config_free(c);
}

Test(rules, equal)
{
	struct repl_config *a = ok(one_rule(V2 ", \"ID\": \"x\""));
	struct repl_config *b = ok(one_rule(
	    "\"ID\": \"x\", \"Priority\": 0, \"Status\": \"Enabled\", "
	    "\"Filter\": {\"Prefix\": \"\"}, \"Destination\": {\"Bucket\": "
	    "\"store:///srv/./b//photos\"}, \"DeleteMarkerReplication\": "
	    "{\"Status\": \"Disabled\"}"));
	struct repl_config *d =
	    ok(one_rule(V2 ", \"ID\": \"x\", \"DeleteMarkerReplication\": "
			   "{\"Status\": \"Enabled\"}"));

	cr_expect(repl_config_equal(a, b));
	cr_expect(!repl_config_equal(a, d));
	repl_config_free(a);
	repl_config_free(b);
	repl_config_free(d);
}

Test(rules, small_error_buffers)
{
	struct repl_config *c = NULL;
	const char *json =
	    one_rule("\"Status\": \"on\", \"Filter\": {}, " DEST);
	char small[8];

	cr_expect_eq(
	    repl_config_parse(json, strlen(json), &c, small, sizeof(small)),
	    -EINVAL);
	cr_expect_str_eq(small, "Rules[0");
	cr_expect_eq(repl_config_parse(json, strlen(json), &c, NULL, 0),
		     -EINVAL);
	cr_expect_null(c);
}

/* ---- running out of memory ------------------------------------------ */

/*
 * jansson's allocations fail from the @fail_at-th on (counting from 0):
 * every failure must come back as an error, and leak nothing.
 */
static long alloc_count, fail_at = -1;

static void *failing_malloc(size_t size)
{
	if (fail_at >= 0 && alloc_count++ >= fail_at)
		return NULL;
	return malloc(size);
}

Test(rules, jansson_out_of_memory)
{
	const char *json;
	struct repl_config *c = NULL;
	bool parsed = false, printed = false;
	char *text;
	int rc;

	json_set_alloc_funcs(failing_malloc, free);
	json = one_rule("\"Status\": \"Enabled\", \"Filter\": {\"And\": "
			"{\"Prefix\": \"p/\", \"Tags\": [{\"Key\": \"k\", "
			"\"Value\": \"v\"}, {\"Key\": \"j\", \"Value\": "
			"\"w\"}]}}, " DEST);
	for (fail_at = 0; !parsed; fail_at++) {
		alloc_count = 0;
		rc =
		    repl_config_parse(json, strlen(json), &c, err, sizeof(err));
		/* jansson tells some of its failures inside a token as a
		 * syntax error: those come back as -EINVAL. */
		cr_assert(rc == 0 || rc == -ENOMEM || rc == -EINVAL, "%d: %s",
			  rc, err);
		parsed = rc == 0;
	}
	for (fail_at = 0; !printed; fail_at++) {
		alloc_count = 0;
		text = repl_config_to_json(c);
		printed = text != NULL;
		free(text);
	}
	fail_at = -1;
	cr_expect_gt(alloc_count, 10);
	repl_config_free(c);
	json_set_alloc_funcs(malloc, free);
}
