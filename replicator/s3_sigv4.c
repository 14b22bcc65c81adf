/*
 * s3_sigv4.c - AWS Signature Version 4 (header signing) and the hashes of
 * an S3 request.
 *
 * Signing is four strings, each built from the one before, as AWS
 * documents them and as the test suite in tests/data/sigv4/ checks them
 * one by one:
 *
 *   1. the canonical request   METHOD \n PATH \n QUERY \n HEADERS \n
 *                              SIGNED_HEADERS \n PAYLOAD_HASH
 *      canon_path(), canon_query(), canon_headers();
 *   2. the string to sign      AWS4-HMAC-SHA256 \n DATE \n SCOPE \n
 *                              hex(SHA-256(canonical request))
 *      where SCOPE is YYYYMMDD/REGION/SERVICE/aws4_request;
 *   3. the signature           hex(HMAC(signing key, string to sign)),
 *      the signing key being HMAC("AWS4" SECRET, YYYYMMDD), then REGION,
 *      SERVICE and "aws4_request" in turn (sign());
 *   4. the Authorization value and the header lines to send.
 *
 * Every string is built in a struct sbuf: a growable buffer capped at
 * S3_SIGV4_MAX_LEN whose first error is sticky, so a builder appends
 * without checking each step and looks at sbuf.err once (as curl's dynbuf
 * and git's strbuf work).  A function that fails leaves nothing allocated:
 * each has one exit at `out:` that releases in reverse order.
 *
 * Secrets: the secret key is read by sign() only, copied into a stack
 * buffer with "AWS4" in front, and that buffer and every derived key are
 * wiped with OPENSSL_cleanse() on the way out.  No message names the
 * secret; a message names a header or parameter, never a value, since a
 * value may be the session token.
 *
 * OpenSSL: only the non-deprecated one-shot calls EVP_Digest() and HMAC(),
 * and EVP_MD_CTX for s3_digest.  Its errors become -EIO in ssl_error(),
 * which logs the cause.  Nothing here keeps state between calls, so every
 * function is thread-safe.
 */
#include "replicator/s3_sigv4.h"
#include "store/log.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
/* SHA-256 of the empty string: the payload hash of an empty body. */
#define EMPTY_SHA256                                                          \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Longest secret key accepted; AWS's are 40 characters. */
#define SECRET_MAX 256

/* ---- errors --------------------------------------------------------- */

/* The one place OpenSSL errors become an errno: log the cause, -EIO. */
static int ssl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[256] = "unknown error";

	if (e)
		ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	log_err("sigv4: %s failed: %s", what, msg);
	return -EIO;
}

/* A malformed request: log why (@what never holds a value), -EINVAL. */
static int bad_request(const char *what, const char *name)
{
	log_err("sigv4: %s%s%s", what, name ? ": " : "", name ? name : "");
	return -EINVAL;
}

/* ---- growable buffer ------------------------------------------------ */

struct sbuf {
	char *p;	/* NUL-terminated when not NULL */
	size_t len;	/* bytes in p, without the NUL */
	size_t size;	/* bytes allocated */
	int err;	/* first error: -ENOMEM or -E2BIG; sticky */
};

#define SBUF_INIT { NULL, 0, 0, 0 }

static void sbuf_add(struct sbuf *b, const void *s, size_t n)
{
	size_t need, size;
	char *p;

	if (b->err || n == 0)
		return;
	if (n > S3_SIGV4_MAX_LEN - b->len) {
		b->err = -E2BIG;
		return;
	}
	need = b->len + n + 1;
	if (need > b->size) {
		size = b->size ? b->size : 128;
		while (size < need)
			size *= 2;
		p = realloc(b->p, size);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->size = size;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

static void sbuf_addc(struct sbuf *b, char c)
{
	sbuf_add(b, &c, 1);
}

/* Cut @b back to its first @len bytes (len <= b->len). */
static void sbuf_setlen(struct sbuf *b, size_t len)
{
	if (b->p && len <= b->len) {
		b->len = len;
		b->p[len] = '\0';
	}
}

static void sbuf_release(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->size = 0;
}

/*
 * Hand the string of @b to the caller in *out (freed with free()), or its
 * error.  @b is empty afterwards either way.
 */
static int sbuf_detach(struct sbuf *b, char **out)
{
	int err = b->err;

	*out = NULL;
	if (!err && !b->p) {
		b->p = malloc(1);
		if (!b->p)
			err = -ENOMEM;
		else
			b->p[0] = '\0';
	}
	if (err) {
		sbuf_release(b);
		b->err = 0;
		return err;
	}
	*out = b->p;
	b->p = NULL;
	b->len = b->size = 0;
	return 0;
}

/* ---- encoding ------------------------------------------------------- */

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static int is_upper_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void hex_lower(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Append @len bytes of @s to @b URI-encoded (see s3_uri_encode_len()). */
static void sbuf_add_encoded(struct sbuf *b, const char *s, size_t len,
			     int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i, run = 0;
	char esc[3] = { '%', 0, 0 };

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			run++;
			continue;
		}
		sbuf_add(b, s + i - run, run);
		run = 0;
		esc[1] = digits[c >> 4];
		esc[2] = digits[c & 15];
		sbuf_add(b, esc, 3);
	}
	sbuf_add(b, s + len - run, run);
}

int s3_uri_encode_len(const char *in, size_t len, int keep_slash, char **out)
{
	struct sbuf b = SBUF_INIT;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!in && len)
		return -EINVAL;
	if (len)
		sbuf_add_encoded(&b, in, len, keep_slash);
	return sbuf_detach(&b, out);
}

int s3_uri_encode(const char *in, int keep_slash, char **out)
{
	if (!in) {
		if (out)
			*out = NULL;
		return -EINVAL;
	}
	return s3_uri_encode_len(in, strlen(in), keep_slash, out);
}

/* ---- hashes --------------------------------------------------------- */

int s3_sha256_hex(const void *buf, size_t len, char hex[S3_SHA256_HEX_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!buf && len)
		return -EINVAL;
	if (!EVP_Digest(buf ? buf : "", len, md, &n, EVP_sha256(), NULL) ||
	    n != 32)
		return ssl_error("SHA-256");
	hex_lower(md, n, hex);
	return 0;
}

/* Base64 of the 16 bytes of an MD5 into @b64 (24 characters and a NUL). */
static void md5_to_base64(const unsigned char md[16],
			  char b64[S3_MD5_B64_SIZE])
{
	EVP_EncodeBlock((unsigned char *)b64, md, 16);
}

int s3_md5_base64(const void *buf, size_t len, char b64[S3_MD5_B64_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!buf && len)
		return -EINVAL;
	if (!EVP_Digest(buf ? buf : "", len, md, &n, EVP_md5(), NULL) ||
	    n != 16)
		return ssl_error("MD5");
	md5_to_base64(md, b64);
	return 0;
}

struct s3_digest {
	EVP_MD_CTX *sha256;
	EVP_MD_CTX *md5;
	int done;	/* s3_digest_final() was called */
};

int s3_digest_new(struct s3_digest **out)
{
	struct s3_digest *d;
	int err = 0;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->sha256 = EVP_MD_CTX_new();
	d->md5 = EVP_MD_CTX_new();
	if (!d->sha256 || !d->md5) {
		err = -ENOMEM;
		goto out;
	}
	if (!EVP_DigestInit_ex(d->sha256, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(d->md5, EVP_md5(), NULL)) {
		err = ssl_error("digest init");
		goto out;
	}
	*out = d;
	d = NULL;
out:
	s3_digest_free(d);
	return err;
}

int s3_digest_update(struct s3_digest *d, const void *buf, size_t len)
{
	if (d->done || (!buf && len))
		return -EINVAL;
	if (!len)
		return 0;
	if (!EVP_DigestUpdate(d->sha256, buf, len) ||
	    !EVP_DigestUpdate(d->md5, buf, len))
		return ssl_error("digest update");
	return 0;
}

int s3_digest_final(struct s3_digest *d, char sha256_hex[S3_SHA256_HEX_SIZE],
		    char md5_b64[S3_MD5_B64_SIZE])
{
	unsigned char sha[EVP_MAX_MD_SIZE], md5[EVP_MAX_MD_SIZE];
	unsigned int nsha = 0, nmd5 = 0;

	if (d->done)
		return -EINVAL;
	d->done = 1;
	if (!EVP_DigestFinal_ex(d->sha256, sha, &nsha) || nsha != 32 ||
	    !EVP_DigestFinal_ex(d->md5, md5, &nmd5) || nmd5 != 16)
		return ssl_error("digest final");
	if (sha256_hex)
		hex_lower(sha, nsha, sha256_hex);
	if (md5_b64)
		md5_to_base64(md5, md5_b64);
	return 0;
}

void s3_digest_free(struct s3_digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->md5);
	EVP_MD_CTX_free(d->sha256);
	free(d);
}

/* ---- checks --------------------------------------------------------- */

/* ASCII-only, locale-free strcasecmp(). */
static int ascii_casecmp(const char *a, const char *b)
{
	unsigned char ca, cb;

	do {
		ca = (unsigned char)*a++;
		cb = (unsigned char)*b++;
		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
	} while (ca && ca == cb);
	return (int)ca - (int)cb;
}

/* A part of the credential scope or the access key id: printable ASCII,
 * no space and none of the separators of the Authorization value. */
static int valid_scope_part(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',' ||
		    c == '=' || c == ';')
			return 0;
	}
	return 1;
}

/* An HTTP method: upper-case letters. */
static int valid_method(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (*s < 'A' || *s > 'Z')
			return 0;
	return 1;
}

/* A header name: visible ASCII but ':'. */
static int valid_header_name(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == ':')
			return 0;
	}
	return 1;
}

/* A header value: no control character but tab (no CR or LF, which would
 * split the header on the wire). */
static int valid_header_value(const char *s)
{
	if (!s)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

/* A payload hash: 64 lowercase hex digits or UNSIGNED-PAYLOAD. */
static int valid_payload_hash(const char *s)
{
	size_t i;

	if (!strcmp(s, S3_UNSIGNED_PAYLOAD))
		return 1;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

/* A value that can go into a header line: printable, no CR or LF. */
static int valid_token_value(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

static int check_request(const struct s3_sigv4_req *req,
			 const struct s3_creds *creds)
{
	if (!req || !creds)
		return -EINVAL;
	if (!valid_method(req->method))
		return bad_request("bad method", NULL);
	if (!req->path)
		return bad_request("no path", NULL);
	if ((req->nquery && !req->query) || (req->nheaders && !req->headers))
		return bad_request("no query or header array", NULL);
	if (!valid_scope_part(req->region))
		return bad_request("bad region", NULL);
	if (!valid_scope_part(req->service))
		return bad_request("bad service", NULL);
	if (req->payload_hash && !valid_payload_hash(req->payload_hash))
		return bad_request("bad payload hash", NULL);
	if (!valid_scope_part(creds->access_key_id))
		return bad_request("bad access key id", NULL);
	if (!creds->secret_access_key || !*creds->secret_access_key ||
	    strlen(creds->secret_access_key) > SECRET_MAX)
		return bad_request("bad secret key (empty or too long)", NULL);
	if (creds->session_token && !valid_token_value(creds->session_token))
		return bad_request("bad session token", NULL);
	return 0;
}

/* ---- 1. the canonical request --------------------------------------- */

/*
 * Append the canonical URI of the encoded @path to @b.  @path may only
 * hold what s3_uri_encode() produces: unreserved bytes, '/', %XX.  With
 * @normalize, "." and ".." segments and empty segments go (RFC 3986's
 * remove_dot_segments, plus "//" as "/"), keeping a final '/'.
 */
static int canon_path(struct sbuf *b, const char *path, int normalize)
{
	const char *p, *seg, *end;
	size_t start = b->len, seglen;
	int trailing = 0;

	for (p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '%' && is_upper_hex((unsigned char)p[1]) &&
		    is_upper_hex((unsigned char)p[2]))
			p += 2;
		else if (!is_unreserved(c) && c != '/')
			return bad_request("path is not URI-encoded", NULL);
	}
	if (!*path) {
		sbuf_addc(b, '/');
		return 0;
	}
	if (path[0] != '/')
		return bad_request("path does not start with '/'", NULL);
	if (!normalize) {
		sbuf_adds(b, path);
		return 0;
	}
	/* b holds "/seg" for each segment kept; ".." drops the last one. */
	for (seg = path + 1;; seg = end + 1) {
		end = strchr(seg, '/');
		if (!end)
			end = seg + strlen(seg);
		seglen = (size_t)(end - seg);
		trailing = 0;
		if (seglen == 0 || (seglen == 1 && seg[0] == '.')) {
			trailing = 1;
		} else if (seglen == 2 && seg[0] == '.' && seg[1] == '.') {
			trailing = 1;
			while (b->len > start && b->p[b->len - 1] != '/')
				sbuf_setlen(b, b->len - 1);
			if (b->len > start)
				sbuf_setlen(b, b->len - 1);
		} else {
			sbuf_addc(b, '/');
			sbuf_add(b, seg, seglen);
		}
		if (!*end || b->err)
			break;
	}
	if (b->len == start || trailing)
		sbuf_addc(b, '/');
	return 0;
}

struct qent {
	char *name;	/* encoded */
	char *value;	/* encoded, "" for none */
};

static int qent_cmp(const void *a, const void *b)
{
	const struct qent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/*
 * Append the canonical query string of @q to @b: each name and value
 * encoded (a '/' too), sorted by encoded name then value, "n=v" joined
 * by '&'; a NULL value is "".
 */
static int canon_query(struct sbuf *b, const struct s3_kv *q, size_t n)
{
	struct qent *e = NULL;
	size_t i, done = 0;
	int err = 0;

	if (!n)
		return 0;
	e = calloc(n, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (done = 0; done < n; done++) {
		if (!q[done].name) {
			err = bad_request("query parameter without a name",
					  NULL);
			goto out;
		}
		err = s3_uri_encode(q[done].name, 0, &e[done].name);
		if (err)
			goto out;
		err = s3_uri_encode(q[done].value ? q[done].value : "", 0,
				    &e[done].value);
		if (err) {
			free(e[done].name);
			goto out;
		}
	}
	qsort(e, n, sizeof(*e), qent_cmp);
	for (i = 0; i < n; i++) {
		if (i)
			sbuf_addc(b, '&');
		sbuf_adds(b, e[i].name);
		sbuf_addc(b, '=');
		sbuf_adds(b, e[i].value);
	}
out:
	for (i = 0; i < done; i++) {
		free(e[i].value);
		free(e[i].name);
	}
	free(e);
	return err;
}

struct hent {
	const char *name;	/* as given, any case */
	const char *value;	/* as given */
	size_t order;		/* position given, for equal names */
};

static int hent_cmp(const void *a, const void *b)
{
	const struct hent *x = a, *y = b;
	int c = ascii_casecmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Append @s lowercased. */
static void sbuf_add_lower(struct sbuf *b, const char *s)
{
	for (; *s; s++)
		sbuf_addc(b, (*s >= 'A' && *s <= 'Z') ? *s - 'A' + 'a' : *s);
}

/* Append header value @s trimmed, inner runs of blanks as one space. */
static void sbuf_add_trimmed(struct sbuf *b, const char *s)
{
	const char *run;
	int blank = 0, any = 0;

	while (*s) {
		if (*s == ' ' || *s == '\t') {
			blank = 1;
			s++;
			continue;
		}
		if (blank && any)
			sbuf_addc(b, ' ');
		blank = 0;
		any = 1;
		for (run = s; *s && *s != ' ' && *s != '\t'; s++)
			;
		sbuf_add(b, run, (size_t)(s - run));
	}
}

/*
 * Append the canonical headers of @h and @extra (the signer's own) to @b,
 * each "name:value\n", and their names joined by ';' to @names.  The
 * caller's headers may not include @forbidden (NULL-terminated).
 */
static int canon_headers(struct sbuf *b, struct sbuf *names,
			 const struct s3_kv *h, size_t nh,
			 const struct s3_kv *extra, size_t nextra,
			 const char *const *forbidden)
{
	struct hent *e = NULL;
	size_t i, j, n = nh + nextra;
	int err = 0, host = 0;

	for (i = 0; i < nh; i++) {
		if (!valid_header_name(h[i].name))
			return bad_request("bad header name", NULL);
		if (!valid_header_value(h[i].value))
			return bad_request("bad header value", h[i].name);
		for (j = 0; forbidden[j]; j++)
			if (!ascii_casecmp(h[i].name, forbidden[j]))
				return bad_request("the signer sets header",
						   forbidden[j]);
		if (!ascii_casecmp(h[i].name, "host"))
			host = 1;
	}
	if (!host)
		return bad_request("no host header", NULL);
	e = calloc(n, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const struct s3_kv *kv = i < nh ? &h[i] : &extra[i - nh];

		e[i].name = kv->name;
		e[i].value = kv->value;
		e[i].order = i;
	}
	qsort(e, n, sizeof(*e), hent_cmp);
	for (i = 0; i < n; i++) {
		if (i && !ascii_casecmp(e[i - 1].name, e[i].name)) {
			sbuf_addc(b, ',');
		} else {
			if (i) {
				sbuf_addc(b, '\n');
				sbuf_addc(names, ';');
			}
			sbuf_add_lower(b, e[i].name);
			sbuf_addc(b, ':');
			sbuf_add_lower(names, e[i].name);
		}
		sbuf_add_trimmed(b, e[i].value);
	}
	sbuf_addc(b, '\n');
	err = names->err;
	free(e);
	return err;
}

/* ---- 2. and 3. the string to sign and the signature ----------------- */

static int hmac_sha256(const void *key, size_t keylen, const void *data,
		       size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (keylen > INT_MAX)
		return -EINVAL;
	if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n) ||
	    n != 32)
		return ssl_error("HMAC-SHA256");
	return 0;
}

/*
 * The signature of @sts into @sig (hex): the signing key is derived from
 * @secret for @date (YYYYMMDD), @region and @service.  Every key is wiped
 * before returning.
 */
static int sign(const char *secret, const char *date, const char *region,
		const char *service, const char *sts,
		char sig[S3_SHA256_HEX_SIZE])
{
	unsigned char ksecret[4 + SECRET_MAX], k1[32], k2[32];
	size_t len = strlen(secret);
	int err;

	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, len);
	err = hmac_sha256(ksecret, 4 + len, date, strlen(date), k1);
	if (err)
		goto out;
	err = hmac_sha256(k1, 32, region, strlen(region), k2);
	if (err)
		goto out;
	err = hmac_sha256(k2, 32, service, strlen(service), k1);
	if (err)
		goto out;
	err = hmac_sha256(k1, 32, "aws4_request", 12, k2);
	if (err)
		goto out;
	err = hmac_sha256(k2, 32, sts, strlen(sts), k1);
	if (err)
		goto out;
	hex_lower(k1, 32, sig);
out:
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(ksecret, sizeof(ksecret));
	return err;
}

/* x-amz-date of @t, "YYYYMMDDTHHMMSSZ", into @out. */
static int amz_date(time_t t, char out[S3_AMZ_DATE_SIZE])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) ||
	    strftime(out, S3_AMZ_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm) !=
		    S3_AMZ_DATE_SIZE - 1)
		return bad_request("time out of range", NULL);
	return 0;
}

/* "name: value" into *out, freed with free(). */
static int header_line(const char *name, const char *value, char **out)
{
	struct sbuf b = SBUF_INIT;

	sbuf_adds(&b, name);
	sbuf_add(&b, ": ", 2);
	sbuf_adds(&b, value);
	return sbuf_detach(&b, out);
}

/* ---- the API -------------------------------------------------------- */

int s3_sigv4_sign(const struct s3_sigv4_req *req, const struct s3_creds *creds,
		  struct s3_sigv4_out *out)
{
	const char *forbidden[5] = { "authorization", "x-amz-date" };
	struct sbuf b = SBUF_INIT, names = SBUF_INIT;
	struct s3_kv extra[3];
	size_t nextra = 0, nforbidden = 2;
	const char *payload, *token = NULL;
	char date[9], creq_hash[S3_SHA256_HEX_SIZE];
	int err;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	err = check_request(req, creds);
	if (err)
		goto out;
	err = amz_date(req->now, out->amz_date);
	if (err)
		goto out;
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';
	payload = req->payload_hash ? req->payload_hash : EMPTY_SHA256;
	if (creds->session_token && *creds->session_token)
		token = creds->session_token;

	/* The headers the signer adds, and signs unless told not to. */
	extra[nextra++] = (struct s3_kv){ "x-amz-date", out->amz_date };
	if (req->flags & S3_SIGV4_CONTENT_SHA256) {
		extra[nextra++] =
			(struct s3_kv){ "x-amz-content-sha256", payload };
		forbidden[nforbidden++] = "x-amz-content-sha256";
	}
	if (token) {
		if (!(req->flags & S3_SIGV4_OMIT_TOKEN))
			extra[nextra++] =
				(struct s3_kv){ "x-amz-security-token", token };
		forbidden[nforbidden++] = "x-amz-security-token";
	}
	forbidden[nforbidden] = NULL;

	/* 1. The canonical request. */
	sbuf_adds(&b, req->method);
	sbuf_addc(&b, '\n');
	err = canon_path(&b, req->path, req->flags & S3_SIGV4_NORMALIZE_PATH);
	if (err)
		goto out;
	sbuf_addc(&b, '\n');
	err = canon_query(&b, req->query, req->nquery);
	if (err)
		goto out;
	sbuf_addc(&b, '\n');
	err = canon_headers(&b, &names, req->headers, req->nheaders, extra,
			    nextra, forbidden);
	if (err)
		goto out;
	sbuf_addc(&b, '\n');
	sbuf_add(&b, names.p, names.len);
	sbuf_addc(&b, '\n');
	sbuf_adds(&b, payload);
	err = sbuf_detach(&b, &out->canonical_request);
	if (err)
		goto out;
	err = sbuf_detach(&names, &out->signed_headers);
	if (err)
		goto out;

	/* 2. The string to sign. */
	err = s3_sha256_hex(out->canonical_request,
			    strlen(out->canonical_request), creq_hash);
	if (err)
		goto out;
	sbuf_adds(&b, ALGORITHM "\n");
	sbuf_adds(&b, out->amz_date);
	sbuf_addc(&b, '\n');
	sbuf_adds(&b, date);
	sbuf_addc(&b, '/');
	sbuf_adds(&b, req->region);
	sbuf_addc(&b, '/');
	sbuf_adds(&b, req->service);
	sbuf_adds(&b, "/aws4_request\n");
	sbuf_adds(&b, creq_hash);
	err = sbuf_detach(&b, &out->string_to_sign);
	if (err)
		goto out;

	/* 3. The signature. */
	err = sign(creds->secret_access_key, date, req->region, req->service,
		   out->string_to_sign, out->signature);
	if (err)
		goto out;

	/* 4. The Authorization value and the header lines. */
	sbuf_adds(&b, ALGORITHM " Credential=");
	sbuf_adds(&b, creds->access_key_id);
	sbuf_addc(&b, '/');
	sbuf_adds(&b, date);
	sbuf_addc(&b, '/');
	sbuf_adds(&b, req->region);
	sbuf_addc(&b, '/');
	sbuf_adds(&b, req->service);
	sbuf_adds(&b, "/aws4_request, SignedHeaders=");
	sbuf_adds(&b, out->signed_headers);
	sbuf_adds(&b, ", Signature=");
	sbuf_adds(&b, out->signature);
	err = sbuf_detach(&b, &out->authorization);
	if (err)
		goto out;
	err = header_line("x-amz-date", out->amz_date,
			  &out->header_lines[out->nheader_lines++]);
	if (!err && (req->flags & S3_SIGV4_CONTENT_SHA256))
		err = header_line("x-amz-content-sha256", payload,
				  &out->header_lines[out->nheader_lines++]);
	if (!err && token)
		err = header_line("x-amz-security-token", token,
				  &out->header_lines[out->nheader_lines++]);
	if (!err)
		err = header_line("Authorization", out->authorization,
				  &out->header_lines[out->nheader_lines++]);
out:
	sbuf_release(&names);
	sbuf_release(&b);
	if (err == -E2BIG)
		log_err("sigv4: request longer than %d bytes",
			S3_SIGV4_MAX_LEN);
	if (err)
		s3_sigv4_out_release(out);
	return err;
}

int s3_sigv4_sign_s3(const struct s3_sigv4_req *req,
		     const struct s3_creds *creds, struct s3_sigv4_out *out)
{
	struct s3_sigv4_req r;

	if (!req) {
		if (out)
			memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	r = *req;
	r.service = "s3";
	r.flags |= S3_SIGV4_CONTENT_SHA256;
	return s3_sigv4_sign(&r, creds, out);
}

void s3_sigv4_out_release(struct s3_sigv4_out *out)
{
	size_t i;

	if (!out)
		return;
	for (i = 0; i < S3_SIGV4_MAX_LINES; i++)
		free(out->header_lines[i]);
	free(out->authorization);
	free(out->signed_headers);
	free(out->string_to_sign);
	free(out->canonical_request);
	memset(out, 0, sizeof(*out));
}
