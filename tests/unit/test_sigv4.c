/*
 * test_sigv4.c - unit tests of the SigV4 signer and the S3 hashes.
 *
 * 1. AWS's SigV4 test suite (tests/data/sigv4/, one folder per case), every
 *    case by name, for header signing: request.txt is parsed here (request
 *    line, headers with folded and repeated lines, body), signed with the
 *    case's context.json (credentials, region, service, time, and the flags
 *    normalize, sign_body, omit_session_token), and the canonical request,
 *    string to sign, signature and Authorization value must equal the
 *    case's files byte for byte.  A test checks that the list below names
 *    every folder, so a case added to the data cannot be skipped.
 * 2. S3: the signature examples of AWS's S3 API reference (PUT with a real
 *    payload's x-amz-content-sha256, GET with a range, ?lifecycle, a sorted
 *    list query), `?versions&max-keys=2`, keys with spaces and UTF-8, a
 *    signed session token.
 * 3. The helpers: URI encoding, SHA-256, base64 MD5, the digest stream,
 *    path normalization, and malformed requests.
 *
 * The data is found from the current directory (the repository root, as
 * scripts/test.sh runs tests) or else from the binary's place,
 * BUILD/tests/test_sigv4.
 */
#include "replicator/s3_sigv4.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUITE_REL "tests/data/sigv4"
#define EMPTY_SHA256                                                          \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- finding and reading the data ----------------------------------- */

/* The suite's folder into @buf: ./tests/data/sigv4, or the one two levels
 * above the test binary's folder. */
static void suite_dir(char *buf, size_t size)
{
	char exe[PATH_MAX];
	struct stat sb;
	ssize_t n;
	char *slash;
	int i;

	if (!stat(SUITE_REL, &sb) && S_ISDIR(sb.st_mode)) {
		snprintf(buf, size, "%s", SUITE_REL);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0, "cannot find " SUITE_REL);
	exe[n] = '\0';
	for (i = 0; i < 3; i++) {	/* drop test_sigv4, tests, BUILD */
		slash = strrchr(exe, '/');
		cr_assert_not_null(slash);
		*slash = '\0';
	}
	cr_assert_lt(snprintf(buf, size, "%s/%s", exe, SUITE_REL), (int)size);
	cr_assert(!stat(buf, &sb) && S_ISDIR(sb.st_mode),
		  "no %s from the current directory or the binary", SUITE_REL);
}

/* File @name of case @c, NUL-terminated; its length in *len if not NULL.
 * The caller frees it. */
static char *read_case_file(const char *c, const char *name, size_t *len)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct stat sb;
	size_t n;
	char *buf;
	FILE *f;

	suite_dir(dir, sizeof(dir));
	cr_assert_lt(snprintf(path, sizeof(path), "%s/%s/%s", dir, c, name),
		     (int)sizeof(path));
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_eq(fstat(fileno(f), &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	cr_assert_not_null(buf);
	n = fread(buf, 1, (size_t)sb.st_size, f);
	cr_assert_eq(n, (size_t)sb.st_size, "short read of %s", path);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = n;
	return buf;
}

/* ---- context.json --------------------------------------------------- */

/* Where the value of "key" starts in @json, or NULL. */
static const char *json_value(const char *json, const char *key)
{
	char pat[64];
	const char *p = json;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	while ((p = strstr(p, pat))) {
		p += strlen(pat);
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p != ':')
			continue;
		p++;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		return p;
	}
	return NULL;
}

/* The string "key" of @json (no escapes in the suite), or NULL; the
 * caller frees it. */
static char *json_str(const char *json, const char *key)
{
	const char *p = json_value(json, key), *end;
	char *s;

	if (!p)
		return NULL;
	cr_assert_eq(*p, '"', "%s is not a string", key);
	end = strchr(p + 1, '"');
	cr_assert_not_null(end);
	cr_assert_null(memchr(p + 1, '\\', (size_t)(end - p - 1)),
		       "escapes in %s", key);
	s = strndup(p + 1, (size_t)(end - p - 1));
	cr_assert_not_null(s);
	return s;
}

static int json_bool(const char *json, const char *key, int dflt)
{
	const char *p = json_value(json, key);

	if (!p)
		return dflt;
	if (!strncmp(p, "true", 4))
		return 1;
	cr_assert(!strncmp(p, "false", 5), "%s is not a boolean", key);
	return 0;
}

/* ---- request.txt ---------------------------------------------------- */

#define MAX_ITEMS 32

struct http_req {
	char *text;	/* request.txt, cut in place */
	const char *method;
	char *path;	/* encoded; freed with the request */
	struct s3_kv query[MAX_ITEMS];
	size_t nquery;
	struct s3_kv headers[MAX_ITEMS];
	size_t nheaders;
	const char *body;
	size_t body_len;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode @s in place. */
static void url_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*w++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* Split the query string @q in place into r->query, decoded. */
static void parse_query(struct http_req *r, char *q)
{
	char *save = NULL, *part, *eq;

	for (part = strtok_r(q, "&", &save); part;
	     part = strtok_r(NULL, "&", &save)) {
		cr_assert_lt(r->nquery, MAX_ITEMS);
		eq = strchr(part, '=');
		if (eq)
			*eq = '\0';
		url_decode(part);
		if (eq)
			url_decode(eq + 1);
		r->query[r->nquery].name = part;
		r->query[r->nquery].value = eq ? eq + 1 : NULL;
		r->nquery++;
	}
}

/*
 * Parse request.txt of case @c: "METHOD TARGET HTTP/1.1" (the target may
 * hold spaces), then "Name:value" lines, where a line that starts with a
 * blank continues the one before (its newline becomes a blank, which the
 * signer collapses), then an empty line and the body.
 */
static void parse_request(const char *c, struct http_req *r)
{
	char *p, *eol, *sp, *target, *q, *colon;
	size_t len;

	memset(r, 0, sizeof(*r));
	r->text = read_case_file(c, "request.txt", &len);
	cr_assert_null(strchr(r->text, '\r'));

	eol = strchr(r->text, '\n');
	cr_assert_not_null(eol);
	*eol = '\0';
	sp = strchr(r->text, ' ');
	cr_assert_not_null(sp);
	*sp = '\0';
	r->method = r->text;
	target = sp + 1;
	sp = strrchr(target, ' ');
	cr_assert(sp && !strncmp(sp + 1, "HTTP/", 5), "bad request line");
	*sp = '\0';
	q = strchr(target, '?');
	if (q) {
		*q = '\0';
		parse_query(r, q + 1);
	}
	cr_assert_eq(s3_uri_encode(target, 1, &r->path), 0);

	p = eol + 1;
	while (*p && *p != '\n') {
		eol = strchr(p, '\n');
		if (*p == ' ' || *p == '\t') {
			cr_assert_gt(r->nheaders, 0, "folded first header");
			p[-1] = ' ';
		} else {
			cr_assert_lt(r->nheaders, MAX_ITEMS);
			colon = strchr(p, ':');
			cr_assert(colon && (!eol || colon < eol), "no ':'");
			*colon = '\0';
			r->headers[r->nheaders].name = p;
			r->headers[r->nheaders].value = colon + 1;
			r->nheaders++;
		}
		if (!eol) {
			p += strlen(p);
			break;
		}
		*eol = '\0';
		p = eol + 1;
	}
	if (*p == '\n')
		p++;
	r->body = p;
	r->body_len = len - (size_t)(p - r->text);
}

static void http_req_release(struct http_req *r)
{
	free(r->path);
	free(r->text);
}

/* ---- running one case ----------------------------------------------- */

static time_t parse_time(const char *s)
{
	struct tm tm;
	char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	cr_assert(end && !*end, "bad timestamp %s", s);
	return timegm(&tm);
}

/* The value of the Authorization line of a signed request, or NULL. */
static char *authorization_of(const char *signed_req)
{
	const char *p = strstr(signed_req, "\nAuthorization:"), *end;
	char *s;

	if (!p)
		return NULL;
	p += strlen("\nAuthorization:");
	end = strchr(p, '\n');
	if (!end)
		end = p + strlen(p);
	s = strndup(p, (size_t)(end - p));
	cr_assert_not_null(s);
	return s;
}

static void run_case(const char *c)
{
	char *ctx = read_case_file(c, "context.json", NULL);
	char *want_creq = read_case_file(c, "header-canonical-request.txt",
					 NULL);
	char *want_sts = read_case_file(c, "header-string-to-sign.txt", NULL);
	char *want_sig = read_case_file(c, "header-signature.txt", NULL);
	char *want_req = read_case_file(c, "header-signed-request.txt", NULL);
	char *akid = json_str(ctx, "access_key_id");
	char *secret = json_str(ctx, "secret_access_key");
	char *token = json_str(ctx, "token");
	char *region = json_str(ctx, "region");
	char *service = json_str(ctx, "service");
	char *ts = json_str(ctx, "timestamp");
	char *want_auth = authorization_of(want_req);
	char payload[S3_SHA256_HEX_SIZE];
	struct s3_creds cr = { akid, secret, token };
	struct s3_sigv4_out out;
	struct s3_sigv4_req req;
	struct http_req r;
	size_t i;

	cr_assert(akid && secret && region && service && ts && want_auth);
	parse_request(c, &r);
	cr_assert_eq(s3_sha256_hex(r.body, r.body_len, payload), 0);

	memset(&req, 0, sizeof(req));
	req.method = r.method;
	req.path = r.path;
	req.query = r.query;
	req.nquery = r.nquery;
	req.headers = r.headers;
	req.nheaders = r.nheaders;
	req.payload_hash = payload;
	req.region = region;
	req.service = service;
	req.now = parse_time(ts);
	if (json_bool(ctx, "normalize", 1))
		req.flags |= S3_SIGV4_NORMALIZE_PATH;
	if (json_bool(ctx, "sign_body", 0))
		req.flags |= S3_SIGV4_CONTENT_SHA256;
	if (json_bool(ctx, "omit_session_token", 0))
		req.flags |= S3_SIGV4_OMIT_TOKEN;

	cr_assert_eq(s3_sigv4_sign(&req, &cr, &out), 0, "%s: sign", c);
	cr_expect_str_eq(out.canonical_request, want_creq,
			 "%s: canonical request\n%s\n---- want\n%s", c,
			 out.canonical_request, want_creq);
	cr_expect_str_eq(out.string_to_sign, want_sts,
			 "%s: string to sign\n%s\n---- want\n%s", c,
			 out.string_to_sign, want_sts);
	cr_expect_str_eq(out.signature, want_sig, "%s: signature", c);
	cr_expect_str_eq(out.authorization, want_auth, "%s: authorization",
			 c);
	cr_expect_str_eq(out.amz_date, "20150830T123600Z");
	/* The token goes on the wire even when it is not signed. */
	if (token) {
		int found = 0;

		for (i = 0; i < out.nheader_lines; i++)
			if (!strncmp(out.header_lines[i],
				     "x-amz-security-token: ", 22))
				found = !strcmp(out.header_lines[i] + 22,
						token);
		cr_expect(found, "%s: no x-amz-security-token line", c);
	}

	s3_sigv4_out_release(&out);
	http_req_release(&r);
	free(want_auth);
	free(ts);
	free(service);
	free(region);
	free(token);
	free(secret);
	free(akid);
	free(want_req);
	free(want_sig);
	free(want_sts);
	free(want_creq);
	free(ctx);
}

/* ---- 1. the AWS suite, case by case --------------------------------- */

static const char *const suite_cases[] = {
	"get-header-key-duplicate",
	"get-header-value-multiline",
	"get-header-value-order",
	"get-header-value-trim",
	"get-relative-normalized",
	"get-relative-relative-normalized",
	"get-relative-relative-unnormalized",
	"get-relative-unnormalized",
	"get-slash-dot-slash-normalized",
	"get-slash-dot-slash-unnormalized",
	"get-slash-normalized",
	"get-slash-pointless-dot-normalized",
	"get-slash-pointless-dot-unnormalized",
	"get-slash-unnormalized",
	"get-slashes-normalized",
	"get-slashes-unnormalized",
	"get-space-normalized",
	"get-space-unnormalized",
	"get-unreserved",
	"get-utf8",
	"get-vanilla",
	"get-vanilla-empty-query-key",
	"get-vanilla-query",
	"get-vanilla-query-order-encoded",
	"get-vanilla-query-order-key-case",
	"get-vanilla-query-unreserved",
	"get-vanilla-utf8-query",
	"get-vanilla-with-session-token",
	"post-header-key-case",
	"post-header-key-sort",
	"post-header-value-case",
	"post-sts-header-after",
	"post-sts-header-before",
	"post-vanilla",
	"post-vanilla-empty-query-value",
	"post-vanilla-query",
	"post-x-www-form-urlencoded",
	"post-x-www-form-urlencoded-parameters",
};

#define NCASES (sizeof(suite_cases) / sizeof(suite_cases[0]))

TestSuite(aws_suite, .timeout = 60);

#define SUITE_CASE(id, name)                                                  \
	Test(aws_suite, id)                                                   \
	{                                                                     \
		run_case(name);                                               \
	}

SUITE_CASE(get_header_key_duplicate, "get-header-key-duplicate")
SUITE_CASE(get_header_value_multiline, "get-header-value-multiline")
SUITE_CASE(get_header_value_order, "get-header-value-order")
SUITE_CASE(get_header_value_trim, "get-header-value-trim")
SUITE_CASE(get_relative_normalized, "get-relative-normalized")
SUITE_CASE(get_relative_relative_normalized,
	   "get-relative-relative-normalized")
SUITE_CASE(get_relative_relative_unnormalized,
	   "get-relative-relative-unnormalized")
SUITE_CASE(get_relative_unnormalized, "get-relative-unnormalized")
SUITE_CASE(get_slash_dot_slash_normalized, "get-slash-dot-slash-normalized")
SUITE_CASE(get_slash_dot_slash_unnormalized,
	   "get-slash-dot-slash-unnormalized")
SUITE_CASE(get_slash_normalized, "get-slash-normalized")
SUITE_CASE(get_slash_pointless_dot_normalized,
	   "get-slash-pointless-dot-normalized")
SUITE_CASE(get_slash_pointless_dot_unnormalized,
	   "get-slash-pointless-dot-unnormalized")
SUITE_CASE(get_slash_unnormalized, "get-slash-unnormalized")
SUITE_CASE(get_slashes_normalized, "get-slashes-normalized")
SUITE_CASE(get_slashes_unnormalized, "get-slashes-unnormalized")
SUITE_CASE(get_space_normalized, "get-space-normalized")
SUITE_CASE(get_space_unnormalized, "get-space-unnormalized")
SUITE_CASE(get_unreserved, "get-unreserved")
SUITE_CASE(get_utf8, "get-utf8")
SUITE_CASE(get_vanilla, "get-vanilla")
SUITE_CASE(get_vanilla_empty_query_key, "get-vanilla-empty-query-key")
SUITE_CASE(get_vanilla_query, "get-vanilla-query")
SUITE_CASE(get_vanilla_query_order_encoded, "get-vanilla-query-order-encoded")
SUITE_CASE(get_vanilla_query_order_key_case,
	   "get-vanilla-query-order-key-case")
SUITE_CASE(get_vanilla_query_unreserved, "get-vanilla-query-unreserved")
SUITE_CASE(get_vanilla_utf8_query, "get-vanilla-utf8-query")
SUITE_CASE(get_vanilla_with_session_token, "get-vanilla-with-session-token")
SUITE_CASE(post_header_key_case, "post-header-key-case")
SUITE_CASE(post_header_key_sort, "post-header-key-sort")
SUITE_CASE(post_header_value_case, "post-header-value-case")
SUITE_CASE(post_sts_header_after, "post-sts-header-after")
SUITE_CASE(post_sts_header_before, "post-sts-header-before")
SUITE_CASE(post_vanilla, "post-vanilla")
SUITE_CASE(post_vanilla_empty_query_value, "post-vanilla-empty-query-value")
SUITE_CASE(post_vanilla_query, "post-vanilla-query")
SUITE_CASE(post_x_www_form_urlencoded, "post-x-www-form-urlencoded")
SUITE_CASE(post_x_www_form_urlencoded_parameters,
	   "post-x-www-form-urlencoded-parameters")

/* Every folder of the data is in suite_cases, and every name there is a
 * folder: no case goes untested. */
Test(aws_suite, every_case_is_listed)
{
	char dir[PATH_MAX];
	struct dirent *de;
	size_t i, n = 0;
	DIR *d;

	suite_dir(dir, sizeof(dir));
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		char path[PATH_MAX + 256];
		struct stat sb;
		int listed = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		cr_assert_eq(stat(path, &sb), 0);
		if (!S_ISDIR(sb.st_mode))
			continue;
		for (i = 0; i < NCASES; i++)
			listed |= !strcmp(suite_cases[i], de->d_name);
		cr_expect(listed, "case %s is not in suite_cases", de->d_name);
		n++;
	}
	closedir(d);
	cr_expect_eq(n, NCASES, "%zu folders, %zu cases listed", n,
		     (size_t)NCASES);
}

/* ---- 2. S3 ---------------------------------------------------------- */

/* The credentials and time of the examples in AWS's S3 API reference
 * ("Signature calculations for the Authorization header"). */
static const struct s3_creds doc_creds = {
	"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL
};
#define DOC_TIME ((time_t)1369353600) /* 2013-05-24T00:00:00Z */
#define DOC_HOST "examplebucket.s3.amazonaws.com"

static struct s3_sigv4_req doc_req(const char *method, const char *path)
{
	struct s3_sigv4_req r = {
		.method = method,
		.path = path,
		.region = "us-east-1",
		.now = DOC_TIME,
	};

	return r;
}

/* Whether @line is one of the header lines of @out. */
static int has_line(const struct s3_sigv4_out *out, const char *line)
{
	size_t i;

	for (i = 0; i < out->nheader_lines; i++)
		if (!strcmp(out->header_lines[i], line))
			return 1;
	return 0;
}

/* Line @n (from 0) of @text; the caller frees it. */
static char *line_of(const char *text, int n)
{
	const char *end;
	char *s;

	for (; n > 0; n--) {
		text = strchr(text, '\n');
		cr_assert_not_null(text, "too few lines");
		text++;
	}
	end = strchr(text, '\n');
	s = strndup(text, end ? (size_t)(end - text) : strlen(text));
	cr_assert_not_null(s);
	return s;
}

/* Line @n of @out's canonical request is @want. */
static void expect_creq_line(const struct s3_sigv4_out *out, int n,
			     const char *want)
{
	char *got = line_of(out->canonical_request, n);

	cr_expect_str_eq(got, want, "line %d of\n%s", n,
			 out->canonical_request);
	free(got);
}

TestSuite(s3, .timeout = 60);

/* PUT Object: the x-amz-content-sha256 of a real payload, and '$' in the
 * key encoded. */
Test(s3, put_object_signs_payload_hash)
{
	const char *body = "Welcome to Amazon S3.";
	struct s3_kv h[] = {
		{ "Host", DOC_HOST },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	};
	char hash[S3_SHA256_HEX_SIZE], *path = NULL;
	struct s3_sigv4_req r;
	struct s3_sigv4_out out;

	cr_assert_eq(s3_sha256_hex(body, strlen(body), hash), 0);
	cr_assert_str_eq(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b"
			       "4b4e99e42034a8b803f8b072");
	cr_assert_eq(s3_uri_encode("/test$file.text", 1, &path), 0);
	cr_assert_str_eq(path, "/test%24file.text");
	r = doc_req("PUT", path);
	r.headers = h;
	r.nheaders = 3;
	r.payload_hash = hash;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	cr_expect_str_eq(out.canonical_request,
			 "PUT\n"
			 "/test%24file.text\n"
			 "\n"
			 "date:Fri, 24 May 2013 00:00:00 GMT\n"
			 "host:examplebucket.s3.amazonaws.com\n"
			 "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfb"
			 "ba87d2b6b4b4e99e42034a8b803f8b072\n"
			 "x-amz-date:20130524T000000Z\n"
			 "x-amz-storage-class:REDUCED_REDUNDANCY\n"
			 "\n"
			 "date;host;x-amz-content-sha256;x-amz-date;"
			 "x-amz-storage-class\n"
			 "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a"
			 "8b803f8b072");
	cr_expect_str_eq(out.string_to_sign,
			 "AWS4-HMAC-SHA256\n"
			 "20130524T000000Z\n"
			 "20130524/us-east-1/s3/aws4_request\n"
			 "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b"
			 "4158342019d");
	cr_expect_str_eq(out.signature, "98ad721746da40c64f1a55b78f14c238d841"
					"ea1380cd77a1b5971af0ece108bd");
	cr_expect_str_eq(out.authorization,
			 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
			 "20130524/us-east-1/s3/aws4_request, SignedHeaders="
			 "date;host;x-amz-content-sha256;x-amz-date;"
			 "x-amz-storage-class, Signature=98ad721746da40c64f1a5"
			 "5b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	cr_expect_eq(out.nheader_lines, 3);
	cr_expect(has_line(&out, "x-amz-date: 20130524T000000Z"));
	cr_expect(has_line(&out, "x-amz-content-sha256: 44ce7dd67c959e0d3524"
				 "ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b07"
				 "2"));
	cr_expect_str_eq(out.header_lines[out.nheader_lines - 1],
			 "Authorization: AWS4-HMAC-SHA256 Credential="
			 "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
			 "aws4_request, SignedHeaders=date;host;"
			 "x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
			 "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380"
			 "cd77a1b5971af0ece108bd");
	s3_sigv4_out_release(&out);
	free(path);
}

/* GET Object with a range; a NULL payload hash is the empty body's. */
Test(s3, get_object_range)
{
	struct s3_kv h[] = {
		{ "host", DOC_HOST },
		{ "range", "bytes=0-9" },
	};
	struct s3_sigv4_req r = doc_req("GET", "/test.txt");
	struct s3_sigv4_out out;

	r.headers = h;
	r.nheaders = 2;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	cr_expect_str_eq(out.signed_headers,
			 "host;range;x-amz-content-sha256;x-amz-date");
	cr_expect(has_line(&out, "x-amz-content-sha256: " EMPTY_SHA256));
	cr_expect_str_eq(out.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd4"
					"4f0170aba48dd91039c6036bdb41");
	s3_sigv4_out_release(&out);
}

/* GET Bucket lifecycle: a parameter without a value signs as "name=". */
Test(s3, get_lifecycle_valueless_param)
{
	struct s3_kv h[] = { { "Host", DOC_HOST } };
	struct s3_kv q[] = { { "lifecycle", NULL } };
	struct s3_sigv4_req r = doc_req("GET", "/");
	struct s3_sigv4_out out;

	r.headers = h;
	r.nheaders = 1;
	r.query = q;
	r.nquery = 1;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	expect_creq_line(&out, 2, "lifecycle=");
	cr_expect_str_eq(out.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d6"
					"5c699e0f91ac7a200a0136783543");
	s3_sigv4_out_release(&out);
}

/* GET Bucket (list objects): the query is sorted by name. */
Test(s3, list_objects_sorted_query)
{
	struct s3_kv h[] = { { "Host", DOC_HOST } };
	struct s3_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	struct s3_sigv4_req r = doc_req("GET", "/");
	struct s3_sigv4_out out;

	r.headers = h;
	r.nheaders = 1;
	r.query = q;
	r.nquery = 2;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	expect_creq_line(&out, 2, "max-keys=2&prefix=J");
	cr_expect_str_eq(out.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a"
					"534bc59db6670ed5711ef69dc6f7");
	s3_sigv4_out_release(&out);
}

/* ?versions&max-keys=2, the request libcurl's own signer gets wrong:
 * sorted, and the bare name signed as "versions=". */
Test(s3, versions_query_sorted)
{
	struct s3_kv h[] = { { "host", "127.0.0.1:7480" } };
	struct s3_kv q[] = { { "versions", NULL }, { "max-keys", "2" } };
	struct s3_kv q2[] = { { "max-keys", "2" }, { "versions", "" } };
	struct s3_sigv4_req r = doc_req("GET", "/bucket");
	struct s3_sigv4_out out, out2;

	r.headers = h;
	r.nheaders = 1;
	r.query = q;
	r.nquery = 2;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	cr_expect_str_eq(out.canonical_request,
			 "GET\n"
			 "/bucket\n"
			 "max-keys=2&versions=\n"
			 "host:127.0.0.1:7480\n"
			 "x-amz-content-sha256:" EMPTY_SHA256 "\n"
			 "x-amz-date:20130524T000000Z\n"
			 "\n"
			 "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
	/* Another order, and "" for NULL: the same signature. */
	r.query = q2;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out2), 0);
	cr_expect_str_eq(out.signature, out2.signature);
	s3_sigv4_out_release(&out2);
	s3_sigv4_out_release(&out);
}

/* Parameters with one name sort by value; values are encoded, '/' too. */
Test(s3, query_values_encoded_and_sorted)
{
	struct s3_kv h[] = { { "host", "h" } };
	struct s3_kv q[] = {
		{ "prefix", "dir/a b+c" },
		{ "a", "2" },
		{ "a", "10" },
		{ "uploadId", "x/y=z" },
	};
	struct s3_sigv4_req r = doc_req("GET", "/b");
	struct s3_sigv4_out out;

	r.headers = h;
	r.nheaders = 1;
	r.query = q;
	r.nquery = 4;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	expect_creq_line(&out, 2,
			 "a=10&a=2&prefix=dir%2Fa%20b%2Bc&uploadId=x%2Fy%3Dz");
	s3_sigv4_out_release(&out);
}

/* A key with spaces and UTF-8: each byte %XX, '/' kept, and the path signs
 * as it is sent. */
Test(s3, key_with_spaces_and_unicode)
{
	struct s3_kv h[] = { { "host", "h" } };
	const char *key = "/bucket/photos/2024 trip/caf\xc3\xa9 \xe2\x98\x83"
			  "+(1)!.jpg";
	const char *want = "/bucket/photos/2024%20trip/caf%C3%A9%20%E2%98%83"
			   "%2B%281%29%21.jpg";
	struct s3_sigv4_req r;
	struct s3_sigv4_out out;
	char *path = NULL;

	cr_assert_eq(s3_uri_encode(key, 1, &path), 0);
	cr_assert_str_eq(path, want);
	r = doc_req("PUT", path);
	r.headers = h;
	r.nheaders = 1;
	r.payload_hash = S3_UNSIGNED_PAYLOAD;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	expect_creq_line(&out, 1, want);
	/* S3 never normalizes: "a/../b" and "a//b" are keys of their own. */
	s3_sigv4_out_release(&out);
	r.path = "/bucket/a/../b//c/./d";
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	expect_creq_line(&out, 1, "/bucket/a/../b//c/./d");
	cr_expect(strstr(out.canonical_request, "\nUNSIGNED-PAYLOAD"));
	cr_expect(has_line(&out, "x-amz-content-sha256: UNSIGNED-PAYLOAD"));
	s3_sigv4_out_release(&out);
	free(path);
}

/* A session token is sent and signed, and changes the signature. */
Test(s3, session_token_signed)
{
	const char *tok = "FwoGZXIvYXdzEXAMPLE//token+with/slashes==";
	struct s3_creds cr = doc_creds;
	struct s3_kv h[] = { { "host", DOC_HOST } };
	struct s3_sigv4_req r = doc_req("GET", "/test.txt");
	struct s3_sigv4_out out, plain;
	char line[128];

	r.headers = h;
	r.nheaders = 1;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &cr, &plain), 0);
	cr.session_token = tok;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &cr, &out), 0);
	cr_expect_str_eq(out.signed_headers,
			 "host;x-amz-content-sha256;x-amz-date;"
			 "x-amz-security-token");
	snprintf(line, sizeof(line), "\nx-amz-security-token:%s\n", tok);
	cr_expect(strstr(out.canonical_request, line));
	snprintf(line, sizeof(line), "x-amz-security-token: %s", tok);
	cr_expect(has_line(&out, line));
	cr_expect_eq(out.nheader_lines, 4);
	cr_expect_str_neq(out.signature, plain.signature);
	/* The caller may not set a header the signer sets. */
	s3_sigv4_out_release(&out);
	{
		struct s3_kv h2[] = { { "host", DOC_HOST },
				      { "X-Amz-Security-Token", tok } };

		r.headers = h2;
		r.nheaders = 2;
		cr_expect_eq(s3_sigv4_sign_s3(&r, &cr, &out), -EINVAL);
		cr_expect_null(out.authorization);
	}
	s3_sigv4_out_release(&plain);
}

/* The secret appears in nothing the signer returns. */
Test(s3, secret_not_in_output)
{
	struct s3_kv h[] = { { "host", DOC_HOST } };
	struct s3_sigv4_req r = doc_req("GET", "/");
	struct s3_sigv4_out out;
	size_t i;

	r.headers = h;
	r.nheaders = 1;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	cr_expect_null(strstr(out.canonical_request, "EXAMPLEKEY"));
	cr_expect_null(strstr(out.string_to_sign, "EXAMPLEKEY"));
	cr_expect_null(strstr(out.authorization, "EXAMPLEKEY"));
	for (i = 0; i < out.nheader_lines; i++)
		cr_expect_null(strstr(out.header_lines[i], "EXAMPLEKEY"));
	s3_sigv4_out_release(&out);
}

/* The region is in the scope and the signing key: another region, another
 * signature (the test server does not check it, so this test does). */
Test(s3, region_in_scope)
{
	struct s3_kv h[] = { { "host", DOC_HOST } };
	struct s3_sigv4_req r = doc_req("GET", "/");
	struct s3_sigv4_out a, b;

	r.headers = h;
	r.nheaders = 1;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &a), 0);
	r.region = "eu-west-3";
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &b), 0);
	cr_expect(strstr(b.string_to_sign, "\n20130524/eu-west-3/s3/"
					   "aws4_request\n"));
	cr_expect(strstr(b.authorization, "/20130524/eu-west-3/s3/"
					  "aws4_request, "));
	cr_expect_str_neq(a.signature, b.signature);
	s3_sigv4_out_release(&b);
	s3_sigv4_out_release(&a);
}

/* ---- 3. helpers and malformed requests ------------------------------ */

TestSuite(helpers, .timeout = 60);

static void expect_encoded(const char *in, int keep_slash, const char *want)
{
	char *s = NULL;

	cr_assert_eq(s3_uri_encode(in, keep_slash, &s), 0);
	cr_expect_str_eq(s, want, "encode(%s, %d)", in, keep_slash);
	free(s);
}

Test(helpers, uri_encode)
{
	expect_encoded("", 0, "");
	expect_encoded("-._~AZaz09", 0, "-._~AZaz09");
	expect_encoded("a b", 0, "a%20b");
	expect_encoded("a+b=c&d", 0, "a%2Bb%3Dc%26d");
	expect_encoded("100%", 0, "100%25");
	expect_encoded("a/b", 0, "a%2Fb");
	expect_encoded("a/b", 1, "a/b");
	expect_encoded("\xe1\x88\xb4", 1, "%E1%88%B4");
	expect_encoded("!*'();:@$,?#[]", 1,
		       "%21%2A%27%28%29%3B%3A%40%24%2C%3F%23%5B%5D");
	expect_encoded("\x01\x7f\xff", 0, "%01%7F%FF");
}

Test(helpers, uri_encode_len_embedded_nul)
{
	char *s = NULL;

	cr_assert_eq(s3_uri_encode_len("a\0b", 3, 0, &s), 0);
	cr_expect_str_eq(s, "a%00b");
	free(s);
	cr_expect_eq(s3_uri_encode(NULL, 0, &s), -EINVAL);
	cr_expect_null(s);
}

Test(helpers, hashes)
{
	const char *fox = "The quick brown fox jumps over the lazy dog";
	char hex[S3_SHA256_HEX_SIZE], b64[S3_MD5_B64_SIZE];

	cr_assert_eq(s3_sha256_hex("", 0, hex), 0);
	cr_expect_str_eq(hex, EMPTY_SHA256);
	cr_assert_eq(s3_sha256_hex(NULL, 0, hex), 0);
	cr_expect_str_eq(hex, EMPTY_SHA256);
	cr_assert_eq(s3_sha256_hex(fox, strlen(fox), hex), 0);
	cr_expect_str_eq(hex, "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb"
			      "762d02d0bf37c9e592");
	cr_assert_eq(s3_md5_base64("", 0, b64), 0);
	cr_expect_str_eq(b64, "1B2M2Y8AsgTpgAmY7PhCfg==");
	cr_assert_eq(s3_md5_base64(fox, strlen(fox), b64), 0);
	cr_expect_str_eq(b64, "nhB9nTcrtoJr2B01QqQZ1g==");
	cr_expect_eq(s3_sha256_hex(NULL, 1, hex), -EINVAL);
}

Test(helpers, digest_in_pieces)
{
	static char big[300000];
	char hex[S3_SHA256_HEX_SIZE], b64[S3_MD5_B64_SIZE];
	char hex2[S3_SHA256_HEX_SIZE], b642[S3_MD5_B64_SIZE];
	struct s3_digest *d = NULL;
	size_t i, off;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + (i >> 8));
	cr_assert_eq(s3_sha256_hex(big, sizeof(big), hex), 0);
	cr_assert_eq(s3_md5_base64(big, sizeof(big), b64), 0);
	cr_assert_eq(s3_digest_new(&d), 0);
	for (off = 0; off < sizeof(big); off += 65537)
		cr_assert_eq(s3_digest_update(d, big + off,
					      sizeof(big) - off < 65537
						      ? sizeof(big) - off
						      : 65537),
			     0);
	cr_assert_eq(s3_digest_update(d, NULL, 0), 0);
	cr_assert_eq(s3_digest_final(d, hex2, b642), 0);
	cr_expect_str_eq(hex2, hex);
	cr_expect_str_eq(b642, b64);
	cr_expect_eq(s3_digest_final(d, hex2, NULL), -EINVAL);
	cr_expect_eq(s3_digest_update(d, "x", 1), -EINVAL);
	s3_digest_free(d);
	s3_digest_free(NULL);
}

/* The canonical URI of @path for service "service" with normalization. */
static void expect_normalized(const char *path, const char *want)
{
	struct s3_kv h[] = { { "host", "h" } };
	struct s3_sigv4_req r = doc_req("GET", path);
	struct s3_sigv4_out out;

	r.service = "service";
	r.headers = h;
	r.nheaders = 1;
	r.flags = S3_SIGV4_NORMALIZE_PATH;
	cr_assert_eq(s3_sigv4_sign(&r, &doc_creds, &out), 0, "%s", path);
	expect_creq_line(&out, 1, want);
	s3_sigv4_out_release(&out);
}

Test(helpers, normalize_path)
{
	expect_normalized("", "/");
	expect_normalized("/", "/");
	expect_normalized("/..", "/");
	expect_normalized("/../../a", "/a");
	expect_normalized("/a/b/..", "/a/");
	expect_normalized("/a/b/.", "/a/b/");
	expect_normalized("/a/./b/../../c", "/c");
	expect_normalized("/a//b///c", "/a/b/c");
	expect_normalized("/a/..b/.c/", "/a/..b/.c/");
	expect_normalized("/%2E%2E/x", "/%2E%2E/x");
}

Test(helpers, time_format)
{
	struct s3_kv h[] = { { "host", "h" } };
	struct s3_sigv4_req r = doc_req("GET", "/");
	struct s3_sigv4_out out;

	r.headers = h;
	r.nheaders = 1;
	r.now = 0;
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	cr_expect_str_eq(out.amz_date, "19700101T000000Z");
	s3_sigv4_out_release(&out);
	r.now = 951782400 + 86399; /* 2000-02-29T23:59:59Z */
	cr_assert_eq(s3_sigv4_sign_s3(&r, &doc_creds, &out), 0);
	cr_expect_str_eq(out.amz_date, "20000229T235959Z");
	cr_expect(strstr(out.string_to_sign, "\n20000229/us-east-1/s3/"));
	s3_sigv4_out_release(&out);
}

/* s3_sigv4_sign_s3() of @r expects @err and leaves nothing to free. */
static void expect_refused(struct s3_sigv4_req *r, const struct s3_creds *cr,
			   int err, const char *why)
{
	struct s3_sigv4_out out;

	cr_expect_eq(s3_sigv4_sign_s3(r, cr, &out), err, "%s", why);
	cr_expect_null(out.canonical_request, "%s", why);
	cr_expect_null(out.authorization, "%s", why);
	cr_expect_eq(out.nheader_lines, 0, "%s", why);
	s3_sigv4_out_release(&out);
}

Test(helpers, malformed_requests)
{
	struct s3_kv good[] = { { "host", "h" } };
	struct s3_kv nohost[] = { { "x-a", "1" } };
	struct s3_kv crlf[] = { { "host", "h" }, { "x-a", "1\r\nx-b: 2" } };
	struct s3_kv badname[] = { { "host", "h" }, { "x a", "1" } };
	struct s3_kv date[] = { { "host", "h" }, { "X-Amz-Date", "1" } };
	struct s3_kv auth[] = { { "host", "h" }, { "authorization", "1" } };
	struct s3_kv sha[] = { { "host", "h" },
			       { "x-amz-content-sha256", EMPTY_SHA256 } };
	struct s3_kv noname[] = { { NULL, "v" } };
	struct s3_creds nosecret = { "AKID", "", NULL };
	struct s3_creds slashkey = { "AK/ID", "s", NULL };
	struct s3_creds badtoken = { "AKID", "s", "a\nb" };
	struct s3_sigv4_req r = doc_req("GET", "/");

	r.headers = good;
	r.nheaders = 1;
	expect_refused(&r, &nosecret, -EINVAL, "empty secret");
	expect_refused(&r, &slashkey, -EINVAL, "'/' in access key");
	expect_refused(&r, &badtoken, -EINVAL, "newline in token");
	r.path = "/a b";
	expect_refused(&r, &doc_creds, -EINVAL, "path not encoded");
	r.path = "/a%2fb";
	expect_refused(&r, &doc_creds, -EINVAL, "lowercase %xx");
	r.path = "/a%2";
	expect_refused(&r, &doc_creds, -EINVAL, "short %xx");
	r.path = "a";
	expect_refused(&r, &doc_creds, -EINVAL, "relative path");
	r.path = "/";
	r.method = "get";
	expect_refused(&r, &doc_creds, -EINVAL, "lowercase method");
	r.method = "GET";
	r.payload_hash = "abc";
	expect_refused(&r, &doc_creds, -EINVAL, "bad payload hash");
	r.payload_hash = NULL;
	r.region = "";
	expect_refused(&r, &doc_creds, -EINVAL, "empty region");
	r.region = "us-east-1";
	r.headers = nohost;
	expect_refused(&r, &doc_creds, -EINVAL, "no host");
	r.headers = crlf;
	r.nheaders = 2;
	expect_refused(&r, &doc_creds, -EINVAL, "CRLF in a value");
	r.headers = badname;
	expect_refused(&r, &doc_creds, -EINVAL, "space in a name");
	r.headers = date;
	expect_refused(&r, &doc_creds, -EINVAL, "caller's x-amz-date");
	r.headers = auth;
	expect_refused(&r, &doc_creds, -EINVAL, "caller's authorization");
	r.headers = sha;
	expect_refused(&r, &doc_creds, -EINVAL, "caller's content-sha256");
	r.headers = good;
	r.nheaders = 1;
	r.query = noname;
	r.nquery = 1;
	expect_refused(&r, &doc_creds, -EINVAL, "parameter without name");
	cr_expect_eq(s3_sigv4_sign_s3(NULL, &doc_creds, NULL), -EINVAL);
}

/* Without S3_SIGV4_CONTENT_SHA256, a caller may set the header itself. */
Test(helpers, caller_content_sha256)
{
	struct s3_kv sha[] = { { "host", "h" },
			       { "x-amz-content-sha256", EMPTY_SHA256 } };
	struct s3_sigv4_req r = doc_req("GET", "/");
	struct s3_sigv4_out out;

	r.service = "s3";
	r.headers = sha;
	r.nheaders = 2;
	cr_assert_eq(s3_sigv4_sign(&r, &doc_creds, &out), 0);
	cr_expect_str_eq(out.signed_headers,
			 "host;x-amz-content-sha256;x-amz-date");
	cr_expect_eq(out.nheader_lines, 2);
	s3_sigv4_out_release(&out);
}

/* Past S3_SIGV4_MAX_LEN: -E2BIG, nothing left allocated. */
Test(helpers, too_long)
{
	size_t n = S3_SIGV4_MAX_LEN / 3 + 1;
	struct s3_kv h[] = { { "host", "h" }, { "x-big", NULL } };
	struct s3_sigv4_req r = doc_req("GET", "/");
	char *big = malloc(S3_SIGV4_MAX_LEN + 2), *s = NULL;

	cr_assert_not_null(big);
	/* Each blank is 3 bytes encoded. */
	memset(big, ' ', n);
	big[n] = '\0';
	cr_expect_eq(s3_uri_encode(big, 0, &s), -E2BIG);
	cr_expect_null(s);
	cr_expect_eq(s3_uri_encode_len(big, n - 1, 0, &s), 0);
	free(s);
	memset(big, 'a', S3_SIGV4_MAX_LEN + 1);
	big[S3_SIGV4_MAX_LEN + 1] = '\0';
	h[1].value = big;
	r.headers = h;
	r.nheaders = 2;
	expect_refused(&r, &doc_creds, -E2BIG, "huge header");
	free(big);
}
