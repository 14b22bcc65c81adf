/*
 * rules.c - parse, check and match a bucket's replication configuration.
 *
 * The input is S3's JSON (see rules.h) and the checks are S3's, so that a
 * configuration S3 takes is taken here with the destination renamed, and
 * one S3 refuses is refused here with a sentence that says where.  JSON is
 * read with jansson, which gives the line and column of a syntax error and
 * refuses a key given twice in one object.
 *
 * Parsing is a walk down the JSON tree that carries the place it stands
 * at ("Rules[2].Filter.And") for the messages.  Every object is first held
 * against a table of the fields S3 documents for it (check_fields()):
 * an unknown name is refused, as S3 answers MalformedXML, and each known
 * field's JSON type is checked there, so the code below it reads fields
 * without checking types again.  The fields S3 documents but replicafs
 * has no use for (StorageClass, Metrics, ...) are checked the same way
 * and then dropped.
 *
 * The checks that span rules come after every rule is read, in this
 * order:
 *
 *   1. one schema: all rules V1 (rule-level Prefix) or all V2 (Filter);
 *   2. IDs given are unique; then IDs are made for rules without one;
 *   3. no two enabled rules with the same priority overlap.
 *
 * Two filters overlap exactly when one object could match both: both
 * prefixes are prefixes of its key, so one is a prefix of the other, and it
 * carries the tags of both, so no tag key is required with two values.
 * The converse holds too, which is why check 3 makes the winner of
 * repl_config_destinations() unique.
 *
 * A parsed configuration is one calloc'd struct repl_config, one array of
 * rules, and a malloc'd string or array behind every pointer in a rule;
 * the public structs show them as const, and only repl_config_free()
 * casts that away to free them.  Canonical output is built with jansson
 * too, in a fixed field order.
 */
#include "replicator/rules.h"

#include "store/log.h"
#include "store/store.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest destination URL taken: a path, plus the scheme. */
#define URL_MAX (PATH_MAX + 16)
/* Room for a place in the configuration: "Rules[999].Filter.And.Tags[9]..."
 * (every part of it is a known field name, so this is plenty). */
#define WHERE_MAX 128
/* Bytes of a user's string quoted in a message. */
#define QUOTE_MAX 64

/* ---- Messages ------------------------------------------------------- */

/*
 * Write "WHERE: MESSAGE" into @err and return -EINVAL: WHERE is a place
 * in the configuration, "" for its top ("the configuration: ..."), or
 * NULL for none.  @err may be NULL.
 */
static int __attribute__((format(printf, 4, 5)))
fail(char *err, size_t errlen, const char *where, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!err || !errlen)
		return -EINVAL;
	if (where)
		n = snprintf(err, errlen, "%s: ",
			     *where ? where : "the configuration");
	if (n < 0 || (size_t)n >= errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * A user's string fit to quote in a one-line message: at most QUOTE_MAX
 * bytes ("..." after it when cut, before a character, not inside its
 * UTF-8 bytes), '"' and each byte of a control character (C1 too) or of
 * what is not UTF-8 as '?'.  Returns @buf, which has room for
 * QUOTE_MAX + 4 bytes.
 */
static const char *quote(char *buf, const char *s)
{
	size_t i, k;

	for (i = 0; s[i] && i < QUOTE_MAX; i += k) {
		k = msg_char_len(s + i);
		if (i + k > QUOTE_MAX)
			break;
		if (k && s[i] != '"') {
			memcpy(buf + i, s + i, k);
		} else {
			buf[i] = '?';
			k = 1;
		}
	}
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

#define QBUF(name) char name[QUOTE_MAX + 4]

/* "@base.@name", or "@name" at the top; cut at WHERE_MAX (it is only
 * for messages, and never that long). */
static void where_field(char *buf, const char *base, const char *name)
{
	int n;

	if (*base)
		n = snprintf(buf, WHERE_MAX, "%s.%s", base, name);
	else
		n = snprintf(buf, WHERE_MAX, "%s", name);
	if (n < 0)
		buf[0] = '\0';
}

/* "@base[@i]". */
static void where_index(char *buf, const char *base, size_t i)
{
	if (snprintf(buf, WHERE_MAX, "%s[%zu]", base, i) < 0)
		buf[0] = '\0';
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	case JSON_NULL:
		return "null";
	}
	return "a JSON value";
}

/* ---- Field tables --------------------------------------------------- */

/* The JSON types S3's fields have. */
enum ftype { F_STR, F_INT, F_OBJ, F_ARR };

struct field {
	const char *name;
	enum ftype type;
};

static const char *const ftype_name[] = {
	[F_STR] = "a string",
	[F_INT] = "an integer",
	[F_OBJ] = "an object",
	[F_ARR] = "an array",
};

static bool ftype_is(enum ftype t, const json_t *v)
{
	switch (t) {
	case F_STR:
		return json_is_string(v);
	case F_INT:
		return json_is_integer(v);
	case F_OBJ:
		return json_is_object(v);
	case F_ARR:
		return json_is_array(v);
	}
	return false;
}

/* Each table ends with a NULL name. */
static const struct field top_fields[] = {
	{ "Role", F_STR },
	{ "Rules", F_ARR },
	{ NULL, F_STR },
};

static const struct field rule_fields[] = {
	{ "ID", F_STR },
	{ "Priority", F_INT },
	{ "Status", F_STR },
	{ "Filter", F_OBJ },
	{ "Prefix", F_STR },
	{ "Destination", F_OBJ },
	{ "DeleteMarkerReplication", F_OBJ },
	{ "ExistingObjectReplication", F_OBJ },
	{ "SourceSelectionCriteria", F_OBJ },
	{ NULL, F_STR },
};

static const struct field filter_fields[] = {
	{ "Prefix", F_STR },
	{ "Tag", F_OBJ },
	{ "And", F_OBJ },
	{ NULL, F_STR },
};

static const struct field and_fields[] = {
	{ "Prefix", F_STR },
	{ "Tags", F_ARR },
	{ NULL, F_STR },
};

static const struct field tag_fields[] = {
	{ "Key", F_STR },
	{ "Value", F_STR },
	{ NULL, F_STR },
};

static const struct field dest_fields[] = {
	{ "Bucket", F_STR },
	{ "StorageClass", F_STR },
	{ "Account", F_STR },
	{ "AccessControlTranslation", F_OBJ },
	{ "EncryptionConfiguration", F_OBJ },
	{ "ReplicationTime", F_OBJ },
	{ "Metrics", F_OBJ },
	{ NULL, F_STR },
};

static const struct field status_fields[] = {
	{ "Status", F_STR },
	{ NULL, F_STR },
};

static const struct field rtime_fields[] = {
	{ "Status", F_STR },
	{ "Time", F_OBJ },
	{ NULL, F_STR },
};

static const struct field minutes_fields[] = {
	{ "Minutes", F_INT },
	{ NULL, F_STR },
};

static const struct field metrics_fields[] = {
	{ "Status", F_STR },
	{ "EventThreshold", F_OBJ },
	{ NULL, F_STR },
};

static const struct field acl_fields[] = {
	{ "Owner", F_STR },
	{ NULL, F_STR },
};

static const struct field enc_fields[] = {
	{ "ReplicaKmsKeyID", F_STR },
	{ NULL, F_STR },
};

static const struct field ssc_fields[] = {
	{ "SseKmsEncryptedObjects", F_OBJ },
	{ "ReplicaModifications", F_OBJ },
	{ NULL, F_STR },
};

/* The field names of @fields as "A, B and C" into @buf. */
static void field_list(char *buf, size_t size, const struct field *fields)
{
	size_t i, n = 0, len = 0;

	while (fields[n].name)
		n++;
	buf[0] = '\0';
	for (i = 0; i < n && len < size; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " and " : ", ";
		int w = snprintf(buf + len, size - len, "%s%s", sep,
				 fields[i].name);

		if (w < 0)
			break;
		len += (size_t)w;
	}
}

/*
 * Check that @obj (an object at @where) has only fields of @fields, each
 * of its type.  Returns 0 or -EINVAL with a message.
 */
static int check_fields(char *err, size_t errlen, const char *where,
			json_t *obj, const struct field *fields)
{
	char sub[WHERE_MAX], known[256];
	const char *key;
	json_t *v;
	QBUF(q);

	json_object_foreach(obj, key, v) {
		const struct field *f;

		for (f = fields; f->name; f++)
			if (!strcmp(f->name, key))
				break;
		if (f->name) {
			if (ftype_is(f->type, v))
				continue;
			where_field(sub, where, key);
			return fail(err, errlen, sub, "expected %s, found %s",
				    ftype_name[f->type], type_name(v));
		}
		for (f = fields; f->name; f++)
			if (!strcasecmp(f->name, key))
				return fail(err, errlen, where,
					    "unknown field \"%s\"; did you "
					    "mean \"%s\"?",
					    quote(q, key), f->name);
		field_list(known, sizeof(known), fields);
		return fail(err, errlen, where,
			    "unknown field \"%s\" (S3 would answer "
			    "MalformedXML); the fields here are %s",
			    quote(q, key), known);
	}
	return 0;
}

/* @obj's field @name, or NULL; a missing one is an error when @need. */
static int get_field(char *err, size_t errlen, const char *where,
		     json_t *obj, const char *name, bool need, json_t **out)
{
	*out = json_object_get(obj, name);
	if (!*out && need)
		return fail(err, errlen, where,
			    "missing the required field %s", name);
	return 0;
}

/*
 * The string @v at @where, into *@out (it belongs to @v): no NUL inside
 * it, between @min and @max bytes.
 */
static int get_str(char *err, size_t errlen, const char *where, json_t *v,
		   size_t min, size_t max, const char **out)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);

	if (strlen(s) != len)
		return fail(err, errlen, where, "has a NUL character");
	if (len < min)
		return fail(err, errlen, where, "is empty");
	if (len > max)
		return fail(err, errlen, where,
			    "is %zu bytes long; at most %zu are allowed", len,
			    max);
	*out = s;
	return 0;
}

/* Enabled/Disabled at field Status of @obj (at @where): *@on. */
static int get_status(char *err, size_t errlen, const char *where,
		      json_t *obj, bool *on)
{
	char sub[WHERE_MAX];
	const char *s;
	json_t *v;
	int rc;
	QBUF(q);

	rc = get_field(err, errlen, where, obj, "Status", true, &v);
	if (rc)
		return rc;
	where_field(sub, where, "Status");
	rc = get_str(err, errlen, sub, v, 0, SIZE_MAX, &s);
	if (rc)
		return rc;
	if (!strcmp(s, "Enabled")) {
		*on = true;
	} else if (!strcmp(s, "Disabled")) {
		*on = false;
	} else {
		return fail(err, errlen, sub,
			    "\"%s\" is not one of Enabled, Disabled",
			    quote(q, s));
	}
	return 0;
}

/*
 * An object at @where of the fields @fields, whose Status (if it has one
 * and @fields lists it) must be Enabled or Disabled: the fields S3
 * documents but replicafs drops.
 */
static int check_ignored(char *err, size_t errlen, const char *where,
			 json_t *obj, const struct field *fields)
{
	bool on;
	int rc;

	rc = check_fields(err, errlen, where, obj, fields);
	if (!rc && json_object_get(obj, "Status"))
		rc = get_status(err, errlen, where, obj, &on);
	return rc;
}

/* A sub-object @name of @obj, if there, checked as check_ignored(). */
static int check_ignored_sub(char *err, size_t errlen, const char *where,
			     json_t *obj, const char *name,
			     const struct field *fields)
{
	char sub[WHERE_MAX];
	json_t *v = json_object_get(obj, name);

	if (!v)
		return 0;
	where_field(sub, where, name);
	return check_ignored(err, errlen, sub, v, fields);
}

/* ---- Destination URLs ----------------------------------------------- */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

int repl_remote_name_check(const char *name, const char **why)
{
	const char *msg = NULL;
	size_t len, i;

	len = name ? strnlen(name, 64) : 0;
	if (len == 0)
		msg = "a remote's name is empty";
	else if (len > 63)
		msg = "a remote's name has at most 63 characters";
	else if (!is_alnum(name[0]))
		msg = "a remote's name starts with a letter or digit";
	for (i = 0; !msg && i < len; i++)
		if (!is_alnum(name[i]) && !strchr("._-", name[i]))
			msg = "a remote's name has only letters, digits, "
			      "'.', '_' and '-'";
	if (msg && why)
		*why = msg;
	return msg ? -EINVAL : 0;
}

void repl_dest_url_release(struct repl_dest_url *u)
{
	if (!u)
		return;
	free(u->url);
	free(u->path);
	free(u->remote);
	free(u->bucket);
	free(u->prefix);
	memset(u, 0, sizeof(*u));
}

/*
 * The absolute path @p (what follows "scheme://") in canonical form, into
 * *@out (the caller frees it): no empty or "." component, no trailing
 * '/', "/" for the root.  -EINVAL with *@why for a path that is empty,
 * relative (or has a host), or has a ".." component.
 */
static int canon_path(const char *p, char **out, const char **why)
{
	size_t len = strlen(p), o = 0;
	const char *s = p;
	char *buf;

	*out = NULL;
	if (!*p) {
		*why = "has no path";
		return -EINVAL;
	}
	if (*p != '/') {
		*why = "has a host or a relative path, but the path must "
		       "be absolute (three slashes after the scheme)";
		return -EINVAL;
	}
	buf = malloc(len + 2);
	if (!buf)
		return -ENOMEM;
	while (*s) {
		size_t n;

		while (*s == '/')
			s++;
		n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.')) {
			s += n;
			continue;
		}
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			free(buf);
			*why = "has a \"..\" component; name the directory "
			       "without it";
			return -EINVAL;
		}
		buf[o++] = '/';
		memcpy(buf + o, s, n);
		o += n;
		s += n;
	}
	if (o == 0)
		buf[o++] = '/';
	buf[o] = '\0';
	*out = buf;
	return 0;
}

/* store:///STORE/BUCKET; @rest follows "store://". */
static int parse_store(const char *url, const char *rest,
		       struct repl_dest_url *u, char *err, size_t errlen)
{
	const char *why = NULL;
	char *slash;
	int rc;
	QBUF(q);

	rc = canon_path(rest, &u->path, &why);
	if (rc == -EINVAL)
		return fail(err, errlen, NULL, "\"%s\": %s", url, why);
	if (rc)
		return rc;
	slash = strrchr(u->path, '/');
	if (!slash[1])
		return fail(err, errlen, NULL,
			    "\"%s\": names no bucket; write "
			    "store:///path/to/store/BUCKET",
			    url);
	if (slash == u->path)
		return fail(err, errlen, NULL,
			    "\"%s\": names a bucket but no store directory "
			    "before it; write store:///path/to/store/BUCKET",
			    url);
	u->bucket = strdup(slash + 1);
	if (!u->bucket)
		return -ENOMEM;
	*slash = '\0';
	if (store_bucket_name_check(u->bucket, &why))
		return fail(err, errlen, NULL, "\"%s\": bucket \"%s\": %s",
			    url, quote(q, u->bucket), why);
	if (asprintf(&u->url, "store://%s/%s", u->path, u->bucket) < 0) {
		u->url = NULL;
		return -ENOMEM;
	}
	u->kind = REPL_DEST_STORE;
	return 0;
}

/* dir:///DIR; @rest follows "dir://". */
static int parse_dir(const char *url, const char *rest,
		     struct repl_dest_url *u, char *err, size_t errlen)
{
	const char *why = NULL;
	int rc;

	rc = canon_path(rest, &u->path, &why);
	if (rc == -EINVAL)
		return fail(err, errlen, NULL, "\"%s\": %s", url, why);
	if (rc)
		return rc;
	if (asprintf(&u->url, "dir://%s", u->path) < 0) {
		u->url = NULL;
		return -ENOMEM;
	}
	u->kind = REPL_DEST_DIR;
	return 0;
}

/* Remote @remote, bucket @bucket (@blen bytes), prefix @prefix into @u. */
static int set_s3(const char *url, struct repl_dest_url *u,
		  const char *remote, size_t rlen, const char *bucket,
		  size_t blen, const char *prefix, char *err, size_t errlen)
{
	const char *why = NULL;
	QBUF(q);

	u->remote = strndup(remote, rlen);
	u->bucket = strndup(bucket, blen);
	u->prefix = strdup(prefix);
	if (!u->remote || !u->bucket || !u->prefix)
		return -ENOMEM;
	if (repl_remote_name_check(u->remote, &why))
		return fail(err, errlen, NULL, "\"%s\": remote \"%s\": %s",
			    url, quote(q, u->remote), why);
	if (store_bucket_name_check(u->bucket, &why))
		return fail(err, errlen, NULL, "\"%s\": bucket \"%s\": %s",
			    url, quote(q, u->bucket), why);
	if (strlen(u->prefix) > STORE_KEY_MAX)
		return fail(err, errlen, NULL,
			    "\"%s\": the prefix is longer than a key can be "
			    "(%d bytes)",
			    url, STORE_KEY_MAX);
	if (asprintf(&u->url, "s3://%s/%s%s%s", u->remote, u->bucket,
		     *u->prefix ? "/" : "", u->prefix) < 0) {
		u->url = NULL;
		return -ENOMEM;
	}
	u->kind = REPL_DEST_S3;
	return 0;
}

/* s3://REMOTE/BUCKET[/PREFIX]; @rest follows "s3://". */
static int parse_s3(const char *url, const char *rest,
		    struct repl_dest_url *u, char *err, size_t errlen)
{
	size_t rlen = strcspn(rest, "/"), blen;
	const char *bucket;

	if (rlen == 0)
		return fail(err, errlen, NULL,
			    "\"%s\": names no remote; write "
			    "s3://REMOTE/BUCKET[/PREFIX]",
			    url);
	bucket = rest + rlen;
	if (*bucket)
		bucket++;
	blen = strcspn(bucket, "/");
	if (blen == 0)
		return fail(err, errlen, NULL,
			    "\"%s\": names no bucket; write "
			    "s3://REMOTE/BUCKET[/PREFIX]",
			    url);
	return set_s3(url, u, rest, rlen, bucket, blen,
		      bucket[blen] ? bucket + blen + 1 : "", err, errlen);
}

/* arn:PARTITION:s3:::BUCKET, a bucket on the remote "default". */
static int parse_arn(const char *url, struct repl_dest_url *u, char *err,
		     size_t errlen)
{
	static const char *const parts[] = { "arn:aws:s3:::",
					     "arn:aws-cn:s3:::",
					     "arn:aws-us-gov:s3:::" };
	const char *bucket = NULL;
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (!strncmp(url, parts[i], strlen(parts[i])))
			bucket = url + strlen(parts[i]);
	if (!bucket)
		return fail(err, errlen, NULL,
			    "\"%s\": is not the ARN of an S3 bucket "
			    "(arn:aws:s3:::BUCKET)",
			    url);
	if (strchr(bucket, '/'))
		return fail(err, errlen, NULL,
			    "\"%s\": names objects, not a bucket; a "
			    "destination is a whole bucket "
			    "(arn:aws:s3:::BUCKET)",
			    url);
	return set_s3(url, u, "default", 7, bucket, strlen(bucket), "", err,
		      errlen);
}

int repl_dest_url_parse(const char *url, struct repl_dest_url *out,
			char *err, size_t errlen)
{
	size_t i, len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!url || !*url)
		return fail(err, errlen, NULL, "the destination URL is empty");
	len = strnlen(url, URL_MAX + 1);
	if (len > URL_MAX)
		return fail(err, errlen, NULL,
			    "the destination URL is longer than %d bytes",
			    URL_MAX);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)url[i];

		if (ch < 0x20 || ch == 0x7f)
			return fail(err, errlen, NULL,
				    "the destination URL has a control "
				    "character at byte %zu",
				    i);
	}
	if (!strncasecmp(url, "store://", 8))
		rc = parse_store(url, url + 8, out, err, errlen);
	else if (!strncasecmp(url, "dir://", 6))
		rc = parse_dir(url, url + 6, out, err, errlen);
	else if (!strncasecmp(url, "s3://", 5))
		rc = parse_s3(url, url + 5, out, err, errlen);
	else if (!strncmp(url, "arn:", 4))
		rc = parse_arn(url, out, err, errlen);
	else
		rc = fail(err, errlen, NULL,
			  "\"%s\": is not a destination URL; write "
			  "store:///path/to/store/BUCKET, dir:///path, "
			  "s3://REMOTE/BUCKET[/PREFIX] or arn:aws:s3:::BUCKET",
			  url);
	if (rc)
		repl_dest_url_release(out);
	return rc;
}

/* ---- Parsing a configuration ---------------------------------------- */

/* The writable view of a rule, for this file only. */
static struct repl_rule *rules_w(struct repl_config *c)
{
	return (struct repl_rule *)c->rules;
}

static void rule_release(struct repl_rule *r)
{
	size_t i;

	free((char *)r->id);
	free((char *)r->filter.prefix);
	for (i = 0; i < r->filter.ntags; i++) {
		free((char *)r->filter.tags[i].key);
		free((char *)r->filter.tags[i].value);
	}
	free((struct repl_tag *)r->filter.tags);
	repl_dest_url_release(&r->dest);
}

void repl_config_free(struct repl_config *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nrules; i++)
		rule_release(&rules_w(c)[i]);
	free(rules_w(c));
	free((char *)c->role);
	free(c);
}

/* A copy of string field @v at @where, into *@out (caller frees). */
static int dup_str(char *err, size_t errlen, const char *where, json_t *v,
		   size_t min, size_t max, const char **out)
{
	const char *s;
	int rc;

	rc = get_str(err, errlen, where, v, min, max, &s);
	if (rc)
		return rc;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* A {"Key": K, "Value": V} object at @where into @t (strings copied). */
static int parse_tag(char *err, size_t errlen, const char *where, json_t *v,
		     struct repl_tag *t)
{
	char sub[WHERE_MAX];
	json_t *k, *val;
	int rc;

	if (!json_is_object(v))
		return fail(err, errlen, where, "expected an object, found %s",
			    type_name(v));
	rc = check_fields(err, errlen, where, v, tag_fields);
	if (!rc)
		rc = get_field(err, errlen, where, v, "Key", true, &k);
	if (!rc)
		rc = get_field(err, errlen, where, v, "Value", true, &val);
	if (rc)
		return rc;
	where_field(sub, where, "Key");
	rc = dup_str(err, errlen, sub, k, 1, REPL_TAG_KEY_MAX, &t->key);
	if (rc)
		return rc;
	where_field(sub, where, "Value");
	return dup_str(err, errlen, sub, val, 0, REPL_TAG_VALUE_MAX,
		       &t->value);
}

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(((const struct repl_tag *)a)->key,
		      ((const struct repl_tag *)b)->key);
}

/*
 * The tags of a filter: one Tag object (@one) or an And's Tags array
 * (@arr), at @where.  Sorted by key; a key given twice is refused.
 */
static int parse_tags(char *err, size_t errlen, const char *where,
		      json_t *one, json_t *arr, struct repl_filter *f)
{
	size_t n = one ? 1 : json_array_size(arr), i;
	char sub[WHERE_MAX];
	struct repl_tag *t;
	int rc = 0;
	QBUF(q);

	if (n > REPL_TAGS_MAX)
		return fail(err, errlen, where,
			    "has %zu tags; an object has at most %d, so a "
			    "filter names at most %d",
			    n, REPL_TAGS_MAX, REPL_TAGS_MAX);
	if (n == 0)
		return 0;
	t = calloc(n, sizeof(*t));
	if (!t)
		return -ENOMEM;
	f->tags = t;
	for (i = 0; i < n && !rc; i++) {
		if (one) {
			snprintf(sub, sizeof(sub), "%s", where);
			rc = parse_tag(err, errlen, sub, one, &t[i]);
		} else {
			where_index(sub, where, i);
			rc = parse_tag(err, errlen, sub,
				       json_array_get(arr, i), &t[i]);
		}
		/* Count the tag now: its strings are ours to free. */
		f->ntags = i + 1;
	}
	if (rc)
		return rc;
	qsort(t, n, sizeof(*t), tag_cmp);
	for (i = 1; i < n; i++)
		if (!strcmp(t[i - 1].key, t[i].key))
			return fail(err, errlen, where,
				    "the tag key \"%s\" is given twice",
				    quote(q, t[i].key));
	return 0;
}

/* A rule's Filter object at @where into @f. */
static int parse_filter(char *err, size_t errlen, const char *where,
			json_t *v, struct repl_filter *f)
{
	json_t *prefix, *tag, *and_obj, *tags = NULL;
	char sub[WHERE_MAX];
	int rc, n;

	rc = check_fields(err, errlen, where, v, filter_fields);
	if (rc)
		return rc;
	prefix = json_object_get(v, "Prefix");
	tag = json_object_get(v, "Tag");
	and_obj = json_object_get(v, "And");
	n = !!prefix + !!tag + !!and_obj;
	if (n > 1)
		return fail(err, errlen, where,
			    "has %d of Prefix, Tag and And, but a filter "
			    "has one; use And to combine a prefix and tags",
			    n);
	if (and_obj) {
		where_field(sub, where, "And");
		rc = check_fields(err, errlen, sub, and_obj, and_fields);
		if (rc)
			return rc;
		prefix = json_object_get(and_obj, "Prefix");
		tags = json_object_get(and_obj, "Tags");
		if (prefix)
			where_field(sub, where, "And.Prefix");
	} else if (prefix) {
		where_field(sub, where, "Prefix");
	}
	if (prefix)
		rc = dup_str(err, errlen, sub, prefix, 0, STORE_KEY_MAX,
			     &f->prefix);
	else
		rc = (f->prefix = strdup("")) ? 0 : -ENOMEM;
	if (rc)
		return rc;
	if (tag) {
		where_field(sub, where, "Tag");
		return parse_tags(err, errlen, sub, tag, NULL, f);
	}
	if (tags) {
		where_field(sub, where, "And.Tags");
		return parse_tags(err, errlen, sub, NULL, tags, f);
	}
	return 0;
}

/* Destination.ReplicationTime at @where into @r. */
static int parse_rtime(char *err, size_t errlen, const char *where,
		       json_t *v, struct repl_rule *r)
{
	char sub[WHERE_MAX];
	json_t *time, *min;
	json_int_t m;
	int rc;

	rc = check_fields(err, errlen, where, v, rtime_fields);
	if (!rc)
		rc = get_status(err, errlen, where, v, &r->time_enabled);
	if (rc)
		return rc;
	time = json_object_get(v, "Time");
	if (!time)
		return 0;
	where_field(sub, where, "Time");
	rc = check_fields(err, errlen, sub, time, minutes_fields);
	if (!rc)
		rc = get_field(err, errlen, sub, time, "Minutes", true, &min);
	if (rc)
		return rc;
	m = json_integer_value(min);
	if (m < 1 || m > REPL_MINUTES_MAX) {
		where_field(sub, where, "Time.Minutes");
		return fail(err, errlen, sub,
			    "%lld is not between 1 and %d", (long long)m,
			    REPL_MINUTES_MAX);
	}
	r->time_minutes = (unsigned)m;
	return 0;
}

/* A rule's Destination at @where into @r. */
/* Destination fields S3 documents that replicafs accepts and does not
 * use (see repl_config_parse()). */
#define DEST_PFX "Destination."
static const char *const unused_dest[] = {
	DEST_PFX "StorageClass", DEST_PFX "Account",
	DEST_PFX "AccessControlTranslation", DEST_PFX "EncryptionConfiguration",
	DEST_PFX "Metrics", NULL,
};
_Static_assert(sizeof(unused_dest) / sizeof(unused_dest[0]) ==
		       REPL_UNUSED_DEST + 1,
	       "struct repl_rule's unused[] has room for each");

static int parse_dest(char *err, size_t errlen, const char *where,
		      json_t *v, struct repl_rule *r)
{
	char sub[WHERE_MAX], uerr[512];
	const char *const *u;
	json_t *b, *rt, *metrics;
	const char *url;
	size_t k;
	int rc;

	rc = check_fields(err, errlen, where, v, dest_fields);
	if (!rc)
		rc = get_field(err, errlen, where, v, "Bucket", true, &b);
	if (rc)
		return rc;
	where_field(sub, where, "Bucket");
	rc = get_str(err, errlen, sub, b, 0, URL_MAX, &url);
	if (rc)
		return rc;
	uerr[0] = '\0';
	rc = repl_dest_url_parse(url, &r->dest, uerr, sizeof(uerr));
	if (rc == -EINVAL)
		return fail(err, errlen, sub, "%s", uerr);
	if (rc)
		return rc;
	for (u = unused_dest, k = 0; *u; u++)
		if (json_object_get(v, *u + sizeof(DEST_PFX) - 1))
			r->unused[k++] = *u;
	rc = check_ignored_sub(err, errlen, where, v,
			       "AccessControlTranslation", acl_fields);
	if (!rc)
		rc = check_ignored_sub(err, errlen, where, v,
				       "EncryptionConfiguration", enc_fields);
	if (!rc)
		rc = check_ignored_sub(err, errlen, where, v, "Metrics",
				       metrics_fields);
	metrics = json_object_get(v, "Metrics");
	if (!rc && metrics) {
		where_field(sub, where, "Metrics");
		rc = check_ignored_sub(err, errlen, sub, metrics,
				       "EventThreshold", minutes_fields);
	}
	if (rc)
		return rc;
	r->time_minutes = REPL_MINUTES_DEFAULT;
	rt = json_object_get(v, "ReplicationTime");
	if (rt) {
		where_field(sub, where, "ReplicationTime");
		rc = parse_rtime(err, errlen, sub, rt, r);
	}
	return rc;
}

/* Whether {"Status": "Enabled"} is field @name of @v (checked before). */
static bool sub_enabled(json_t *v, const char *name)
{
	json_t *st = json_object_get(json_object_get(v, name), "Status");

	return json_is_string(st) && !strcmp(json_string_value(st), "Enabled");
}

/* SourceSelectionCriteria at @where: checked, then dropped; each
 * criterion it enables and replicafs does not do goes to @r->unused_ssc,
 * for a note. */
static int check_ssc(char *err, size_t errlen, const char *where, json_t *v,
		     struct repl_rule *r)
{
	size_t k = 0;
	int rc;

	rc = check_fields(err, errlen, where, v, ssc_fields);
	if (!rc)
		rc = check_ignored_sub(err, errlen, where, v,
				       "SseKmsEncryptedObjects", status_fields);
	if (!rc)
		rc = check_ignored_sub(err, errlen, where, v,
				       "ReplicaModifications", status_fields);
	if (rc)
		return rc;
	if (sub_enabled(v, "ReplicaModifications"))
		r->unused_ssc[k++] =
			"SourceSelectionCriteria.ReplicaModifications";
	if (sub_enabled(v, "SseKmsEncryptedObjects"))
		r->unused_ssc[k++] =
			"SourceSelectionCriteria.SseKmsEncryptedObjects";
	return 0;
}

/* One {"Status": ...} object field @name of rule @v, into *@on. */
static int rule_status_obj(char *err, size_t errlen, const char *where,
			   json_t *v, const char *name, bool *on)
{
	char sub[WHERE_MAX];
	json_t *o = json_object_get(v, name);
	int rc;

	if (!o)
		return 0;
	where_field(sub, where, name);
	rc = check_fields(err, errlen, sub, o, status_fields);
	if (!rc)
		rc = get_status(err, errlen, sub, o, on);
	return rc;
}

/*
 * Refuse the ID @id at @where if it has a control character (C0, DEL,
 * C1) or a byte that is not UTF-8 (jansson refuses such input first, but
 * not every caller need come through it): the log and replicafs status
 * show a rule's ID, where a newline made a line of its own and U+009B
 * (CSI) acts on a terminal.  S3 takes up to 255 characters of any kind.
 */
static int check_id_text(char *err, size_t errlen, const char *where,
			 const char *id)
{
	const unsigned char *u;
	size_t i, k;
	QBUF(q);

	for (i = 0; id[i]; i += k) {
		k = msg_char_len(id + i);
		if (k)
			continue;
		u = (const unsigned char *)id + i;
		if (u[0] < 0x80 ||
		    (u[0] == 0xc2 && u[1] >= 0x80 && u[1] < 0xa0))
			return fail(err, errlen, where,
				    "\"%s\" has a control character (U+%04X): "
				    "replicafs status and the log show an ID, "
				    "so it takes printable characters only",
				    quote(q, id), u[0] < 0x80 ? u[0] : u[1]);
		return fail(err, errlen, where,
			    "\"%s\" has a byte that is not UTF-8 (0x%02X): "
			    "replicafs status and the log show an ID, so it "
			    "takes printable characters only",
			    quote(q, id), u[0]);
	}
	return 0;
}

/* Rules[i] at @where into @r (zeroed by the caller). */
static int parse_rule(char *err, size_t errlen, const char *where,
		      json_t *v, struct repl_rule *r)
{
	json_t *id, *prio, *filter, *prefix, *dest, *ssc;
	char sub[WHERE_MAX];
	json_int_t p;
	int rc;

	if (!json_is_object(v))
		return fail(err, errlen, where, "expected an object, found %s",
			    type_name(v));
	rc = check_fields(err, errlen, where, v, rule_fields);
	if (!rc)
		rc = get_status(err, errlen, where, v, &r->enabled);
	if (!rc)
		rc = get_field(err, errlen, where, v, "Destination", true,
			       &dest);
	if (rc)
		return rc;

	id = json_object_get(v, "ID");
	if (id && json_string_length(id) > 0) {
		where_field(sub, where, "ID");
		rc = dup_str(err, errlen, sub, id, 1, REPL_ID_MAX, &r->id);
		if (!rc)
			rc = check_id_text(err, errlen, sub, r->id);
		if (rc)
			return rc;
	}

	filter = json_object_get(v, "Filter");
	prefix = json_object_get(v, "Prefix");
	prio = json_object_get(v, "Priority");
	if (filter && prefix)
		return fail(err, errlen, where,
			    "has both a Filter and a rule-level Prefix (S3's "
			    "V1 schema); put the prefix in the Filter");
	if (!filter && !prefix)
		return fail(err, errlen, where,
			    "has neither a Filter nor a Prefix; write "
			    "\"Filter\": {} to replicate every key");
	if (prefix) {
		r->v1 = true;
		r->delete_markers = true;
		if (prio)
			return fail(err, errlen, where,
				    "has a Priority, but a rule with a "
				    "rule-level Prefix (S3's V1 schema) has "
				    "none; put the prefix in a Filter");
		if (json_object_get(v, "DeleteMarkerReplication"))
			return fail(err, errlen, where,
				    "has DeleteMarkerReplication, but a rule "
				    "with a rule-level Prefix (S3's V1 "
				    "schema) always replicates delete "
				    "markers; put the prefix in a Filter");
		where_field(sub, where, "Prefix");
		rc = dup_str(err, errlen, sub, prefix, 0, STORE_KEY_MAX,
			     &r->filter.prefix);
	} else {
		where_field(sub, where, "Filter");
		rc = parse_filter(err, errlen, sub, filter, &r->filter);
		r->dm_absent = !json_object_get(v, "DeleteMarkerReplication");
	}
	if (rc)
		return rc;

	if (prio) {
		p = json_integer_value(prio);
		if (p < 0 || p > INT_MAX) {
			where_field(sub, where, "Priority");
			return fail(err, errlen, sub,
				    "%lld is not between 0 and %d",
				    (long long)p, INT_MAX);
		}
		r->priority = (int)p;
	}

	where_field(sub, where, "Destination");
	rc = parse_dest(err, errlen, sub, dest, r);
	if (!rc)
		rc = rule_status_obj(err, errlen, where, v,
				     "DeleteMarkerReplication",
				     &r->delete_markers);
	if (!rc && r->delete_markers && r->filter.ntags)
		return fail(err, errlen, where,
			    "has DeleteMarkerReplication Enabled and a Tag "
			    "filter, which S3 refuses: a delete marker has no "
			    "tags; set it Disabled, or filter by Prefix only");
	if (!rc)
		rc = rule_status_obj(err, errlen, where, v,
				     "ExistingObjectReplication",
				     &r->existing_objects);
	ssc = json_object_get(v, "SourceSelectionCriteria");
	if (!rc && ssc) {
		where_field(sub, where, "SourceSelectionCriteria");
		rc = check_ssc(err, errlen, sub, ssc, r);
	}
	return rc;
}

/* The rule of @c (its first @n rules) with ID @id, or -1. */
static long find_id(const struct repl_config *c, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (c->rules[i].id && !strcmp(c->rules[i].id, id))
			return (long)i;
	return -1;
}

/* Check that given IDs are unique, then make "rule-N" IDs where none. */
static int assign_ids(struct repl_config *c, char *err, size_t errlen)
{
	struct repl_rule *r = rules_w(c);
	char where[WHERE_MAX], id[64];
	size_t i;
	long j;
	QBUF(q);

	for (i = 1; i < c->nrules; i++) {
		if (!r[i].id)
			continue;
		j = find_id(c, i, r[i].id);
		if (j >= 0) {
			snprintf(where, sizeof(where), "Rules[%zu].ID", i);
			return fail(err, errlen, where,
				    "\"%s\" is also the ID of Rules[%ld]; "
				    "IDs are unique",
				    quote(q, r[i].id), j);
		}
	}
	for (i = 0; i < c->nrules; i++) {
		unsigned k = 1;

		if (r[i].id)
			continue;
		snprintf(id, sizeof(id), "rule-%zu", i + 1);
		while (find_id(c, c->nrules, id) >= 0)
			snprintf(id, sizeof(id), "rule-%zu-%u", i + 1, ++k);
		r[i].id = strdup(id);
		if (!r[i].id)
			return -ENOMEM;
	}
	return 0;
}

/* Whether one of @a and @b is a prefix of the other. */
static bool prefixes_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return !strncmp(a, b, la < lb ? la : lb);
}

/* Whether some tag key is in both sorted arrays with different values. */
static bool tags_conflict(const struct repl_filter *a,
			  const struct repl_filter *b)
{
	size_t i = 0, j = 0;

	while (i < a->ntags && j < b->ntags) {
		int d = strcmp(a->tags[i].key, b->tags[j].key);

		if (d == 0 && strcmp(a->tags[i].value, b->tags[j].value))
			return true;
		if (d <= 0)
			i++;
		if (d >= 0)
			j++;
	}
	return false;
}

/* Whether some object could match both filters (see the top comment). */
static bool filters_overlap(const struct repl_filter *a,
			    const struct repl_filter *b)
{
	return prefixes_overlap(a->prefix, b->prefix) && !tags_conflict(a, b);
}

/* S3's "Found overlapping rules with same priority". */
static int check_overlap(const struct repl_config *c, char *err,
			 size_t errlen)
{
	const struct repl_rule *a, *b;
	char where[WHERE_MAX];
	size_t i, j;
	QBUF(qa);
	QBUF(qb);

	for (i = 1; i < c->nrules; i++) {
		b = &c->rules[i];
		if (!b->enabled)
			continue;
		for (j = 0; j < i; j++) {
			a = &c->rules[j];
			if (!a->enabled || a->priority != b->priority ||
			    !filters_overlap(&a->filter, &b->filter))
				continue;
			snprintf(where, sizeof(where), "Rules[%zu]", i);
			if (b->v1)
				return fail(err, errlen, where,
					    "its Prefix \"%s\" overlaps "
					    "Rules[%zu]'s \"%s\"; the "
					    "prefixes of enabled V1 rules "
					    "do not overlap",
					    quote(qb, b->filter.prefix), j,
					    quote(qa, a->filter.prefix));
			return fail(err, errlen, where,
				    "overlaps Rules[%zu] (ID \"%s\") with the "
				    "same Priority %d: an object can match "
				    "both (S3: Found overlapping rules with "
				    "same priority); give them different "
				    "priorities",
				    j, quote(qa, a->id), b->priority);
		}
	}
	return 0;
}

/* The rules of the configuration object @top into *@out. */
static int parse_top(json_t *top, struct repl_config **out, char *err,
		     size_t errlen)
{
	struct repl_config *c = NULL;
	char where[WHERE_MAX];
	json_t *rules;
	size_t i, n;
	int rc;

	rc = check_fields(err, errlen, "", top, top_fields);
	if (!rc)
		rc = get_field(err, errlen, "", top, "Rules", true, &rules);
	if (rc)
		return rc;
	n = json_array_size(rules);
	if (n == 0)
		return fail(err, errlen, "Rules",
			    "is empty; a configuration has at least one rule");
	if (n > REPL_RULES_MAX)
		return fail(err, errlen, "Rules", "has %zu rules; at most %d",
			    n, REPL_RULES_MAX);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->rules = calloc(n, sizeof(struct repl_rule));
	if (!c->rules) {
		rc = -ENOMEM;
		goto out;
	}
	c->nrules = n;
	if (json_object_get(top, "Role"))
		rc = dup_str(err, errlen, "Role", json_object_get(top, "Role"),
			     0, 2048, &c->role);
	for (i = 0; i < n && !rc; i++) {
		where_index(where, "Rules", i);
		rc = parse_rule(err, errlen, where, json_array_get(rules, i),
				&rules_w(c)[i]);
		if (!rc && i > 0 && c->rules[i].v1 != c->rules[0].v1)
			rc = fail(err, errlen, where,
				  "is written in S3's %s schema but Rules[0] "
				  "in the %s one; one configuration uses one "
				  "(Filter, the V2 schema, is the current)",
				  c->rules[i].v1 ? "V1 (rule-level Prefix)"
						 : "V2 (Filter)",
				  c->rules[0].v1 ? "V1" : "V2");
	}
	if (!rc)
		rc = assign_ids(c, err, errlen);
	if (!rc)
		rc = check_overlap(c, err, errlen);
out:
	if (rc)
		repl_config_free(c);
	else
		*out = c;
	return rc;
}

int repl_config_parse(const char *json, size_t len, struct repl_config **out,
		      char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *top;
	const char *key;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!json)
		return fail(err, errlen, NULL, "no configuration was given");
	/* A NUL in a string value is let through, to be refused with its
	 * place; jansson refuses one in a field's name itself. */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			  &jerr);
	if (!root) {
		/* jansson says nothing when its first allocation fails. */
		if (json_error_code(&jerr) == json_error_out_of_memory ||
		    !jerr.text[0])
			return -ENOMEM;
		return fail(err, errlen, NULL, "line %d, column %d: %s",
			    jerr.line, jerr.column, jerr.text);
	}
	if (!json_is_object(root)) {
		rc = fail(err, errlen, "",
			  "expected an object {\"Rules\": [...]}, found %s",
			  type_name(root));
		goto out;
	}
	/* What get-bucket-replication prints: unwrap it. */
	top = root;
	if (json_object_size(root) == 1) {
		key = json_object_iter_key(json_object_iter(root));
		if (!strcmp(key, "ReplicationConfiguration")) {
			top = json_object_get(root, key);
			if (!json_is_object(top)) {
				rc = fail(err, errlen, key,
					  "expected an object, found %s",
					  type_name(top));
				goto out;
			}
		}
	}
	rc = parse_top(top, out, err, errlen);
out:
	json_decref(root);
	return rc;
}

/* ---- Output --------------------------------------------------------- */

/* Set @o[@key] to new value @v; false (and @v released) on failure. */
static bool put(json_t *o, const char *key, json_t *v)
{
	return v && !json_object_set_new(o, key, v);
}

static json_t *status_json(bool on)
{
	json_t *o = json_object();

	if (o && !put(o, "Status", json_string(on ? "Enabled" : "Disabled"))) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static json_t *tag_json(const struct repl_tag *t)
{
	json_t *o = json_object();

	if (o && (!put(o, "Key", json_string(t->key)) ||
		  !put(o, "Value", json_string(t->value)))) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* The simplest shape of @f: {}, {"Prefix"}, {"Tag"} or {"And"}. */
static json_t *filter_json(const struct repl_filter *f)
{
	json_t *o = json_object(), *and_obj = NULL, *tags = NULL;
	size_t i;
	bool ok;

	if (!o)
		return NULL;
	if (f->ntags == 0) {
		ok = !*f->prefix || put(o, "Prefix", json_string(f->prefix));
	} else if (f->ntags == 1 && !*f->prefix) {
		ok = put(o, "Tag", tag_json(&f->tags[0]));
	} else {
		ok = put(o, "And", and_obj = json_object());
		if (ok && *f->prefix)
			ok = put(and_obj, "Prefix", json_string(f->prefix));
		if (ok)
			ok = put(and_obj, "Tags", tags = json_array());
		for (i = 0; ok && i < f->ntags; i++)
			ok = !json_array_append_new(tags,
						    tag_json(&f->tags[i]));
	}
	if (!ok) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static json_t *dest_json(const struct repl_rule *r)
{
	json_t *o = json_object(), *rt, *t;
	bool ok;

	if (!o)
		return NULL;
	ok = put(o, "Bucket", json_string(r->dest.url)) &&
	     put(o, "ReplicationTime", rt = status_json(r->time_enabled)) &&
	     put(rt, "Time", t = json_object()) &&
	     put(t, "Minutes", json_integer(r->time_minutes));
	if (!ok) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static json_t *rule_json(const struct repl_rule *r)
{
	json_t *o = json_object();
	bool ok;

	if (!o)
		return NULL;
	ok = put(o, "ID", json_string(r->id));
	if (ok && !r->v1)
		ok = put(o, "Priority", json_integer(r->priority));
	if (ok)
		ok = put(o, "Status",
			 json_string(r->enabled ? "Enabled" : "Disabled"));
	if (ok && r->v1)
		ok = put(o, "Prefix", json_string(r->filter.prefix));
	if (ok && !r->v1)
		ok = put(o, "Filter", filter_json(&r->filter));
	if (ok)
		ok = put(o, "Destination", dest_json(r));
	if (ok && !r->v1)
		ok = put(o, "DeleteMarkerReplication",
			 status_json(r->delete_markers));
	if (ok)
		ok = put(o, "ExistingObjectReplication",
			 status_json(r->existing_objects));
	if (!ok) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

char *repl_config_to_json(const struct repl_config *c)
{
	const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
	json_t *top = json_object(), *rules = json_array();
	char *text = NULL;
	size_t i, len = 0;
	bool ok;

	ok = top && rules;
	if (ok && c->role)
		ok = !json_object_set_new(top, "Role",
					  json_string(c->role));
	ok = ok && !json_object_set(top, "Rules", rules);
	for (i = 0; ok && i < c->nrules; i++)
		ok = !json_array_append_new(rules, rule_json(&c->rules[i]));
	/* Into a buffer of ours (so that free() frees it whatever
	 * allocator jansson was given), with the newline a printed text
	 * ends in. */
	if (ok)
		len = json_dumpb(top, NULL, 0, flags);
	if (len)
		text = malloc(len + 2);
	if (text && json_dumpb(top, text, len, flags) == len) {
		text[len] = '\n';
		text[len + 1] = '\0';
	} else {
		free(text);
		text = NULL;
	}
	json_decref(rules);
	json_decref(top);
	return text;
}

/* ---- Comparing and matching ----------------------------------------- */

static bool filter_equal(const struct repl_filter *a,
			 const struct repl_filter *b)
{
	size_t i;

	if (strcmp(a->prefix, b->prefix) || a->ntags != b->ntags)
		return false;
	for (i = 0; i < a->ntags; i++)
		if (strcmp(a->tags[i].key, b->tags[i].key) ||
		    strcmp(a->tags[i].value, b->tags[i].value))
			return false;
	return true;
}

static bool rule_equal(const struct repl_rule *a, const struct repl_rule *b)
{
	return !strcmp(a->id, b->id) && a->priority == b->priority &&
	       a->enabled == b->enabled && a->v1 == b->v1 &&
	       filter_equal(&a->filter, &b->filter) &&
	       !strcmp(a->dest.url, b->dest.url) &&
	       a->delete_markers == b->delete_markers &&
	       a->existing_objects == b->existing_objects &&
	       a->time_enabled == b->time_enabled &&
	       a->time_minutes == b->time_minutes;
}

bool repl_config_equal(const struct repl_config *a,
		       const struct repl_config *b)
{
	size_t i;

	if (a->nrules != b->nrules || !a->role != !b->role ||
	    (a->role && strcmp(a->role, b->role)))
		return false;
	for (i = 0; i < a->nrules; i++)
		if (!rule_equal(&a->rules[i], &b->rules[i]))
			return false;
	return true;
}

const struct repl_rule *repl_config_rule(const struct repl_config *c,
					 const char *id)
{
	long i = find_id(c, c->nrules, id);

	return i < 0 ? NULL : &c->rules[i];
}

bool repl_rule_match(const struct repl_rule *r, const char *key,
		     const struct repl_tag *tags, size_t ntags)
{
	size_t i, j;

	if (!r->enabled ||
	    strncmp(key, r->filter.prefix, strlen(r->filter.prefix)))
		return false;
	for (i = 0; i < r->filter.ntags; i++) {
		const struct repl_tag *want = &r->filter.tags[i];

		for (j = 0; j < ntags; j++)
			if (!strcmp(tags[j].key, want->key) &&
			    !strcmp(tags[j].value, want->value))
				break;
		if (j == ntags)
			return false;
	}
	return true;
}

int repl_config_destinations(const struct repl_config *c, const char *key,
			     const struct repl_tag *tags, size_t ntags,
			     const struct repl_rule **out, size_t outcap)
{
	size_t i, j, n = 0;

	for (i = 0; i < c->nrules; i++) {
		const struct repl_rule *r = &c->rules[i];

		if (!repl_rule_match(r, key, tags, ntags))
			continue;
		for (j = 0; j < n; j++)
			if (!strcmp(out[j]->dest.url, r->dest.url))
				break;
		if (j < n) {
			if (r->priority > out[j]->priority)
				out[j] = r;
			continue;
		}
		if (n == outcap)
			return -ENOSPC;
		out[n++] = r;
	}
	return (int)n;
}
