/*
 * s3_client.c - S3 requests over libcurl, signed by s3_sigv4.c.
 *
 * Design.  A request is built in four steps, each its own function:
 *
 *   s3_url_build()   endpoint + bucket + key + query -> URL, Host, path
 *   sign_request()   the headers to sign -> the signer's header lines
 *   setup_handle()   a pooled curl handle with every option set anew
 *   finish()         status and <Code> -> 0 or an errno and a sentence
 *
 * Connections.  curl keeps a connection cache per easy handle.  The client
 * keeps idle handles in a pool (a stack under pool_lock): a request pops
 * one, resets its options (curl_easy_reset() keeps the live connections
 * and TLS sessions), and pushes it back when done.  So connections are
 * reused across requests and threads, and the pool never holds more
 * handles than there were requests at the same time (at most POOL_MAX
 * stay idle).
 *
 * Credentials live in a reference-counted box: s3_client_set_creds()
 * swaps the box under creds_lock, and a request holds a reference to the
 * box it signs with, so a swap never frees keys in use.  A box's secrets
 * are wiped when its last reference goes.  Every sentence this file
 * writes is scrubbed of the secret and the token (scrub()) before it is
 * returned, whatever a server may have echoed.
 *
 * Bodies are read with pread() from the caller's fd (or copied from its
 * buffer) by curl's read callback; the seek callback lets curl rewind a
 * body when it sends the request again on a new connection (a server that
 * restarted closed the pooled one).
 *
 * curl and libxml2 are initialised once (pthread_once), before the first
 * client exists, as both ask for.
 */
#include "replicator/s3_client.h"
#include "store/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/parser.h>

/* Idle curl handles kept per client. */
#define POOL_MAX 64
/* Bodies at least this large ask for "100 Continue" first, so that an
 * error (a wrong key, a missing bucket) costs no upload. */
#define EXPECT_MIN (1 << 20)
/* curl's upload buffer: larger than its default for fewer reads. */
#define UPLOAD_BUFFER (512 * 1024)

struct creds_box {
	int refs;		/* protected by the client's creds_lock */
	char *key_id;
	char *secret;
	char *token;		/* NULL: none */
};

struct s3_client {
	char *name;		/* for messages */
	char *scheme_host;	/* "http://127.0.0.1:7480", no '/' */
	char *endpoint;
	char *region;
	char *ca_file;
	int path_style;
	int insecure;
	long connect_timeout_ms;
	long stall_timeout_s;
	uint64_t max_send_bps;

	pthread_mutex_t creds_lock;
	struct creds_box *creds;	/* protected by creds_lock */

	pthread_mutex_t pool_lock;
	CURL *pool[POOL_MAX];		/* protected by pool_lock */
	int npool;			/* protected by pool_lock */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_err;

static void global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		global_err = -EIO;
	xmlInitParser();
}

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		msg_vformat(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* ---- credentials ---------------------------------------------------- */

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void box_put(struct s3_client *c, struct creds_box *b)
{
	int last;

	if (!b)
		return;
	pthread_mutex_lock(&c->creds_lock);
	last = --b->refs == 0;
	pthread_mutex_unlock(&c->creds_lock);
	if (!last)
		return;
	free_secret(b->key_id);
	free_secret(b->secret);
	free_secret(b->token);
	free(b);
}

/* The current box with a reference for the caller (box_put() it), or
 * NULL when there are no credentials. */
static struct creds_box *box_get(struct s3_client *c)
{
	struct creds_box *b;

	pthread_mutex_lock(&c->creds_lock);
	b = c->creds;
	if (b)
		b->refs++;
	pthread_mutex_unlock(&c->creds_lock);
	return b;
}

int s3_client_set_creds(struct s3_client *c, const struct s3_creds *creds)
{
	struct creds_box *b = NULL, *old;

	if (creds && creds->access_key_id && creds->secret_access_key) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return -ENOMEM;
		b->refs = 1;
		b->key_id = strdup(creds->access_key_id);
		b->secret = strdup(creds->secret_access_key);
		if (creds->session_token && *creds->session_token)
			b->token = strdup(creds->session_token);
		if (!b->key_id || !b->secret ||
		    (creds->session_token && *creds->session_token &&
		     !b->token)) {
			box_put(c, b);
			return -ENOMEM;
		}
	}
	pthread_mutex_lock(&c->creds_lock);
	old = c->creds;
	c->creds = b;
	pthread_mutex_unlock(&c->creds_lock);
	box_put(c, old);
	return 0;
}

int s3_client_has_creds(struct s3_client *c)
{
	int has;

	pthread_mutex_lock(&c->creds_lock);
	has = c->creds != NULL;
	pthread_mutex_unlock(&c->creds_lock);
	return has;
}

/* Replace every occurrence of @secret in @s by "***". */
static void scrub_one(char *s, const char *secret)
{
	size_t n, slen;
	char *p;

	if (!s || !secret || !*secret)
		return;
	slen = strlen(secret);
	while ((p = strstr(s, secret))) {
		n = strlen(p + slen);
		memcpy(p, "***", 3);
		memmove(p + 3, p + slen, n + 1);
	}
}

/* No sentence leaves this file with a secret in it. */
static void scrub(char *err, const struct creds_box *b)
{
	if (!b)
		return;
	scrub_one(err, b->secret);
	scrub_one(err, b->token);
}

/* ---- URLs ----------------------------------------------------------- */

void s3_url_release(struct s3_url *u)
{
	if (!u)
		return;
	free(u->url);
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

/* Split "http[s]://HOST[:PORT][/]" into its scheme ("http"/"https") and
 * host[:port] (copied into @hostport).  0 or -EINVAL. */
static int split_endpoint(const char *ep, int *https, char *hostport,
			  size_t size)
{
	const char *h;
	size_t n;

	if (!ep)
		return -EINVAL;
	if (!strncasecmp(ep, "https://", 8)) {
		*https = 1;
		h = ep + 8;
	} else if (!strncasecmp(ep, "http://", 7)) {
		*https = 0;
		h = ep + 7;
	} else {
		return -EINVAL;
	}
	n = strcspn(h, "/?#");
	if (n == 0 || n >= size || (h[n] && strcmp(h + n, "/")) ||
	    memchr(h, '@', n))
		return -EINVAL;
	memcpy(hostport, h, n);
	hostport[n] = '\0';
	return 0;
}

/* The host of @hostport in lower case into @host, without an IPv6
 * address's brackets, and "127.0.0.1" for any name of the loopback
 * address (localhost, ::1); returns its port, @dflt when none is written,
 * or -1 when malformed. */
static long host_port(const char *hostport, long dflt, char *host,
		      size_t size)
{
	const char *h = hostport, *end, *port = NULL;
	size_t len, i;
	char *e;
	long num;

	if (*h == '[') {
		end = strchr(++h, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -1;
		if (end[1] == ':')
			port = end + 2;
	} else {
		end = h + strcspn(h, ":");
		if (*end == ':')
			port = end + 1;
	}
	len = (size_t)(end - h);
	if (!len || len >= size)
		return -1;
	for (i = 0; i < len; i++)
		host[i] = (char)tolower((unsigned char)h[i]);
	host[len] = '\0';
	if (!strcmp(host, "localhost") || !strcmp(host, "::1"))
		snprintf(host, size, "127.0.0.1");
	if (!port)
		return dflt;
	errno = 0;
	num = strtol(port, &e, 10);
	return !errno && e != port && !*e && num > 0 && num < 65536 ? num : -1;
}

int s3_same_endpoint(const char *a, const char *b)
{
	char hpa[512], hpb[512], ha[512], hb[512];
	int sa, sb;
	long pa, pb;

	if (split_endpoint(a, &sa, hpa, sizeof(hpa)) ||
	    split_endpoint(b, &sb, hpb, sizeof(hpb)))
		return !strcasecmp(a, b);
	pa = host_port(hpa, sa ? 443 : 80, ha, sizeof(ha));
	pb = host_port(hpb, sb ? 443 : 80, hb, sizeof(hb));
	if (pa < 0 || pb < 0)
		return !strcasecmp(a, b);
	return pa == pb && !strcmp(ha, hb);
}

/* Whether the host of @hostport is an IP address or localhost, where no
 * name BUCKET.HOST can resolve: those go path-style, as botocore does. */
static int host_is_literal(const char *hostport)
{
	const char *p;

	if (hostport[0] == '[')
		return 1;
	if (!strncasecmp(hostport, "localhost", 9) &&
	    (hostport[9] == '\0' || hostport[9] == ':'))
		return 1;
	for (p = hostport; *p && *p != ':'; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return 0;
	return 1;
}

struct qent {
	char *name;
	char *value;	/* NULL: no '=' */
};

static int qent_cmp(const void *a, const void *b)
{
	const struct qent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return strcmp(x->value ? x->value : "", y->value ? y->value : "");
}

int s3_url_build(const char *endpoint, int path_style, const char *bucket,
		 const char *key, const struct s3_kv *q, size_t nq,
		 struct s3_url *out)
{
	char hostport[512], *ekey = NULL, *p;
	struct qent *qe = NULL;
	size_t i, len, qlen = 0, pos;
	int https, ret;

	memset(out, 0, sizeof(*out));
	ret = split_endpoint(endpoint, &https, hostport, sizeof(hostport));
	if (ret)
		return ret;
	if (bucket && (host_is_literal(hostport) ||
		       (https && strchr(bucket, '.'))))
		path_style = 1;
	if (key && *key) {
		ret = s3_uri_encode(key, 1, &ekey);
		if (ret)
			goto out;
	}
	/* The path: /BUCKET/KEY or /KEY (virtual-hosted). */
	len = 2 + (bucket ? strlen(bucket) : 0) + 1 +
	      (ekey ? strlen(ekey) : 0);
	out->path = malloc(len);
	if (!out->path) {
		ret = -ENOMEM;
		goto out;
	}
	if (bucket && path_style)
		snprintf(out->path, len, "/%s%s%s", bucket, ekey ? "/" : "",
			 ekey ? ekey : "");
	else
		snprintf(out->path, len, "/%s", ekey ? ekey : "");
	/* The host. */
	len = strlen(hostport) + (bucket ? strlen(bucket) + 1 : 0) + 1;
	out->host = malloc(len);
	if (!out->host) {
		ret = -ENOMEM;
		goto out;
	}
	if (bucket && !path_style)
		snprintf(out->host, len, "%s.%s", bucket, hostport);
	else
		snprintf(out->host, len, "%s", hostport);
	/* The query, encoded and sorted as the signer signs it. */
	if (nq) {
		qe = calloc(nq, sizeof(*qe));
		if (!qe) {
			ret = -ENOMEM;
			goto out;
		}
		for (i = 0; i < nq; i++) {
			ret = s3_uri_encode(q[i].name, 0, &qe[i].name);
			if (!ret && q[i].value)
				ret = s3_uri_encode(q[i].value, 0,
						    &qe[i].value);
			if (ret)
				goto out;
			qlen += strlen(qe[i].name) + 2 +
				(qe[i].value ? strlen(qe[i].value) : 0);
		}
		qsort(qe, nq, sizeof(*qe), qent_cmp);
	}
	len = 8 + strlen(out->host) + strlen(out->path) + qlen + 2;
	out->url = malloc(len);
	if (!out->url) {
		ret = -ENOMEM;
		goto out;
	}
	pos = (size_t)snprintf(out->url, len, "%s://%s%s",
			       https ? "https" : "http", out->host, out->path);
	for (i = 0; i < nq; i++) {
		p = out->url + pos;
		pos += (size_t)snprintf(p, len - pos, "%c%s%s%s",
					i ? '&' : '?', qe[i].name,
					qe[i].value ? "=" : "",
					qe[i].value ? qe[i].value : "");
	}
	ret = 0;
out:
	if (qe) {
		for (i = 0; i < nq; i++) {
			free(qe[i].name);
			free(qe[i].value);
		}
		free(qe);
	}
	free(ekey);
	if (ret)
		s3_url_release(out);
	return ret;
}

/* ---- errors --------------------------------------------------------- */

struct code_errno {
	const char *code;
	int err;
};

/* S3's codes whose errno is not the one their status gives. */
static const struct code_errno codes[] = {
	/* cannot heal: fail fast */
	{ "AccessDenied", -EACCES },
	{ "AllAccessDisabled", -EACCES },
	{ "InvalidAccessKeyId", -EACCES },
	{ "SignatureDoesNotMatch", -EACCES },
	{ "InvalidToken", -EACCES },
	{ "ExpiredToken", -EACCES },
	{ "TokenRefreshRequired", -EACCES },
	{ "RequestTimeTooSkewed", -EACCES },
	{ "AccountProblem", -EACCES },
	{ "InvalidObjectState", -EACCES },
	{ "NoSuchBucket", -ENOENT },
	{ "NoSuchKey", -ENOENT },
	{ "NotFound", -ENOENT },
	{ "AuthorizationHeaderMalformed", -EINVAL },
	{ "PermanentRedirect", -EINVAL },
	{ "IllegalLocationConstraintException", -EINVAL },
	{ "InvalidBucketName", -EINVAL },
	{ "KeyTooLongError", -ENAMETOOLONG },
	{ "EntityTooLarge", -EINVAL },
	{ "EntityTooSmall", -EINVAL },
	{ "MetadataTooLarge", -EINVAL },
	{ "InvalidBucketState", -EINVAL },
	/* can heal: retried with backoff */
	{ "NoSuchUpload", -EAGAIN },
	{ "SlowDown", -EAGAIN },
	{ "ServiceUnavailable", -EAGAIN },
	{ "OperationAborted", -EAGAIN },
	{ "TemporaryRedirect", -EAGAIN },
	{ "RequestTimeout", -ETIMEDOUT },
	{ "BadDigest", -EIO },
	{ "XAmzContentSHA256Mismatch", -EIO },
	{ "InvalidDigest", -EIO },
	{ "IncompleteBody", -EIO },
	{ "InvalidPart", -EAGAIN },
	{ "InternalError", -EIO },
};

int s3_error_errno(long status, const char *code)
{
	size_t i;

	if (code && *code)
		for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
			if (!strcmp(codes[i].code, code))
				return codes[i].err;
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 301:
		return -EINVAL;	/* the bucket is in another region */
	case 307:
		return -EAGAIN;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 408:
		return -ETIMEDOUT;
	case 409:
	case 412:
	case 429:
		return -EAGAIN;
	case 503:
		return -EAGAIN;
	}
	if (status >= 500)
		return -EIO;
	if (status >= 400)
		return -EINVAL;
	return -EPROTO;		/* 1xx, other 3xx: not what S3 says */
}

/* The code a body-less answer (HEAD) stands for. */
static const char *status_code(long status)
{
	switch (status) {
	case 301:
		return "PermanentRedirect";
	case 400:
		return "BadRequest";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 503:
		return "ServiceUnavailable";
	default:
		return "";
	}
}

/* The errno and a sentence for a transport error of curl. */
static int curl_errno(CURLcode rc, int body_err)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return -EACCES;	/* a certificate we do not trust */
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_READ_ERROR:
		return body_err ? body_err : -EIO;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SEND_FAIL_REWIND:
	case CURLE_SSL_CONNECT_ERROR:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

/* ---- the client ----------------------------------------------------- */

int s3_client_new(const struct s3_client_opts *o, struct s3_client **out,
		  char *err, size_t errlen)
{
	struct s3_client *c;
	char hostport[512];
	int https, ret;
	size_t n;

	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_err)
		return fail(err, errlen, global_err,
			    "libcurl cannot be initialised");
	if (split_endpoint(o->endpoint, &https, hostport, sizeof(hostport)))
		return fail(err, errlen, -EINVAL,
			    "remote %s: endpoint '%s' is not "
			    "http[s]://HOST[:PORT]", o->name ? o->name : "?",
			    o->endpoint ? o->endpoint : "");
	if (!o->region || !*o->region)
		return fail(err, errlen, -EINVAL, "remote %s: no region",
			    o->name ? o->name : "?");
	c = calloc(1, sizeof(*c));
	if (!c)
		return fail(err, errlen, -ENOMEM, "out of memory");
	pthread_mutex_init(&c->creds_lock, NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	n = strlen(hostport) + 9;
	c->scheme_host = malloc(n);
	c->name = strdup(o->name ? o->name : "s3");
	c->endpoint = strdup(o->endpoint);
	c->region = strdup(o->region);
	c->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
	if (!c->scheme_host || !c->name || !c->endpoint || !c->region ||
	    (o->ca_file && !c->ca_file)) {
		ret = fail(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(c->scheme_host, n, "%s://%s", https ? "https" : "http",
		 hostport);
	c->path_style = o->path_style;
	c->insecure = o->insecure;
	c->connect_timeout_ms = o->connect_timeout_ms > 0
					? o->connect_timeout_ms : 10000;
	c->stall_timeout_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : 60;
	c->max_send_bps = o->max_send_bps;
	*out = c;
	return 0;
fail:
	s3_client_free(c);
	return ret;
}

void s3_client_free(struct s3_client *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	box_put(c, c->creds);
	pthread_mutex_destroy(&c->pool_lock);
	pthread_mutex_destroy(&c->creds_lock);
	free(c->name);
	free(c->scheme_host);
	free(c->endpoint);
	free(c->region);
	free(c->ca_file);
	free(c);
}

const char *s3_client_region(const struct s3_client *c)
{
	return c->region;
}

/* A handle for one request: from the pool, or new.  NULL: no memory. */
static CURL *handle_get(struct s3_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->pool_lock);
	if (c->npool)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void handle_put(struct s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- one request ---------------------------------------------------- */

/* The state of one transfer, for curl's callbacks. */
struct xfer {
	const struct s3_body *body;
	uint64_t pos;		/* bytes of the body sent so far */
	int body_err;		/* a failed pread(): negative errno */
	struct s3_response *resp;
	size_t cap;		/* bytes allocated for resp->body */
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	uint64_t left = x->body->len - x->pos;
	size_t n = size * nitems;
	ssize_t got;

	if (n > left)
		n = (size_t)left;
	if (!n)
		return 0;
	if (x->body->buf) {
		memcpy(buf, (const char *)x->body->buf + x->pos, n);
	} else {
		do {
			got = pread(x->body->fd, buf, n,
				    x->body->off + (off_t)x->pos);
		} while (got < 0 && errno == EINTR);
		if (got <= 0) {
			x->body_err = got < 0 ? -errno : -EIO;
			return CURL_READFUNC_ABORT;
		}
		n = (size_t)got;
	}
	x->pos += n;
	return n;
}

static int seek_cb(void *arg, curl_off_t offset, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || offset < 0 ||
	    (uint64_t)offset > x->body->len)
		return CURL_SEEKFUNC_FAIL;
	x->pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct s3_response *r = x->resp;
	size_t n = size * nmemb, cap;
	char *p;

	if (r->body_len + n > S3_BODY_MAX)
		return n;	/* read and dropped: more than an answer */
	if (r->body_len + n + 1 > x->cap) {
		cap = x->cap ? x->cap : 4096;
		while (cap < r->body_len + n + 1)
			cap *= 2;
		p = realloc(r->body, cap);
		if (!p)
			return 0;	/* curl fails: CURLE_WRITE_ERROR */
		r->body = p;
		x->cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return n;
}

/* Copy header value @v (@n bytes, trimmed) into @dst. */
static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
		     v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	struct s3_response *r = x->resp;
	size_t n = size * nitems, nl;
	const char *colon = memchr(line, ':', n);
	char tmp[16];

	if (n >= 5 && !memcmp(line, "HTTP/", 5)) {
		/* A new answer (after "100 Continue"): forget the last. */
		r->version_id[0] = r->etag[0] = r->bucket_region[0] = '\0';
		r->meta_version_id[0] = '\0';
		r->meta_mode[0] = r->meta_uid[0] = r->meta_gid[0] = '\0';
		r->meta_mtime[0] = '\0';
		r->delete_marker = 0;
		return n;
	}
	if (!colon)
		return n;
	nl = (size_t)(colon - line);
#define IS(name) (nl == sizeof(name) - 1 && !strncasecmp(line, name, nl))
	if (IS("x-amz-version-id"))
		copy_value(r->version_id, sizeof(r->version_id), colon + 1,
			   n - nl - 1);
	else if (IS("etag"))
		copy_value(r->etag, sizeof(r->etag), colon + 1, n - nl - 1);
	else if (IS("x-amz-bucket-region"))
		copy_value(r->bucket_region, sizeof(r->bucket_region),
			   colon + 1, n - nl - 1);
	else if (IS("x-amz-meta-replicafs-version-id"))
		copy_value(r->meta_version_id, sizeof(r->meta_version_id),
			   colon + 1, n - nl - 1);
	else if (IS("x-amz-meta-mode"))
		copy_value(r->meta_mode, sizeof(r->meta_mode), colon + 1,
			   n - nl - 1);
	else if (IS("x-amz-meta-uid"))
		copy_value(r->meta_uid, sizeof(r->meta_uid), colon + 1,
			   n - nl - 1);
	else if (IS("x-amz-meta-gid"))
		copy_value(r->meta_gid, sizeof(r->meta_gid), colon + 1,
			   n - nl - 1);
	else if (IS("x-amz-meta-mtime"))
		copy_value(r->meta_mtime, sizeof(r->meta_mtime), colon + 1,
			   n - nl - 1);
	else if (IS("x-amz-delete-marker")) {
		copy_value(tmp, sizeof(tmp), colon + 1, n - nl - 1);
		r->delete_marker = !strcasecmp(tmp, "true");
	}
#undef IS
	return n;
}

void s3_response_release(struct s3_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

/* "bucket/key", "bucket" or "the service", for messages. */
static void target_name(const struct s3_request *r, char *buf, size_t size)
{
	if (r->bucket && r->key && *r->key)
		snprintf(buf, size, "%s/%s", r->bucket, r->key);
	else if (r->bucket)
		snprintf(buf, size, "bucket %s", r->bucket);
	else
		snprintf(buf, size, "the service");
}

/* Sign @r for @u with @b: the header lines into *@list (appended). */
static int sign_request(struct s3_client *c, const struct s3_request *r,
			const struct s3_url *u, const char *payload_hash,
			const struct creds_box *b, struct curl_slist **list)
{
	struct s3_kv *h;
	struct s3_sigv4_req sr = { 0 };
	struct s3_sigv4_out so;
	struct s3_creds cr = { b->key_id, b->secret, b->token };
	struct curl_slist *l;
	char *line;
	size_t i, n;
	int ret;

	h = calloc(r->nheaders + 1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h[0] = (struct s3_kv){ "host", u->host };
	for (i = 0; i < r->nheaders; i++)
		h[i + 1] = r->headers[i];
	sr.method = r->method;
	sr.path = u->path;
	sr.query = r->query;
	sr.nquery = r->nquery;
	sr.headers = h;
	sr.nheaders = r->nheaders + 1;
	sr.payload_hash = payload_hash;
	sr.region = c->region;
	sr.now = time(NULL);
	ret = s3_sigv4_sign_s3(&sr, &cr, &so);
	free(h);
	if (ret)
		return ret;
	for (i = 0; i < so.nheader_lines; i++) {
		l = curl_slist_append(*list, so.header_lines[i]);
		if (!l) {
			ret = -ENOMEM;
			break;
		}
		*list = l;
	}
	/* The lines may hold the token: wipe them before freeing. */
	for (i = 0; i < so.nheader_lines; i++) {
		line = so.header_lines[i];
		n = strlen(line);
		explicit_bzero(line, n);
	}
	if (so.canonical_request)
		explicit_bzero(so.canonical_request,
			       strlen(so.canonical_request));
	s3_sigv4_out_release(&so);
	return ret;
}

/* Append "Name: value" to *@list. */
static int add_header(struct curl_slist **list, const char *name,
		      const char *value)
{
	struct curl_slist *l;
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);

	if (!line)
		return -ENOMEM;
	snprintf(line, n, "%s: %s", name, value);
	l = curl_slist_append(*list, line);
	free(line);
	if (!l)
		return -ENOMEM;
	*list = l;
	return 0;
}

static void setup_handle(struct s3_client *c, CURL *h,
			 const struct s3_request *r, const struct s3_url *u,
			 struct curl_slist *list, struct xfer *x,
			 char *curl_err)
{
	int upload = !strcmp(r->method, "PUT") || !strcmp(r->method, "POST");

	curl_easy_setopt(h, CURLOPT_URL, u->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->stall_timeout_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	if (c->ca_file) {
		/* Added to the system's CAs, which CAPATH still finds. */
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	if (c->max_send_bps)
		curl_easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE,
				 (curl_off_t)c->max_send_bps);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	if (upload) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)r->body.len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE,
				 (long)UPLOAD_BUFFER);
		if (strcmp(r->method, "PUT"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

/* Turn the outcome of a transfer into 0 or an errno and a sentence. */
static int finish(struct s3_client *c, const struct s3_request *r,
		  CURLcode rc, const char *curl_err, struct xfer *x, char *err,
		  size_t errlen)
{
	struct s3_response *resp = x->resp;
	char target[600], message[256] = "", region[64] = "";
	const char *what = r->what ? r->what : r->method;
	int ret;

	target_name(r, target, sizeof(target));
	if (rc != CURLE_OK) {
		ret = curl_errno(rc, x->body_err);
		if (x->body_err)
			return fail(err, errlen, ret,
				    "remote %s: %s %s: cannot read the "
				    "content to send: %s", c->name, what,
				    target, strerror(-x->body_err));
		return fail(err, errlen, ret, "remote %s: %s %s: %s: %s%s",
			    c->name, what, target, c->scheme_host,
			    *curl_err ? curl_err : curl_easy_strerror(rc),
			    ret == -EACCES ? " (a private CA is given with "
					     "replicafs remote add --ca-file)"
					   : "");
	}
	if (resp->status >= 200 && resp->status < 300)
		return 0;
	if (resp->body_len)
		s3_xml_error(resp->body, resp->body_len, resp->code,
			     sizeof(resp->code), message, sizeof(message),
			     region, sizeof(region));
	if (!resp->code[0])
		snprintf(resp->code, sizeof(resp->code), "%s",
			 status_code(resp->status));
	if (!region[0] && resp->bucket_region[0])
		snprintf(region, sizeof(region), "%s", resp->bucket_region);
	ret = s3_error_errno(resp->status, resp->code);
	if (ret == -ENOENT && !strcmp(r->method, "HEAD"))
		return ret;	/* an answer, not a failure: no sentence */
	if (region[0] && strcmp(region, c->region))
		return fail(err, errlen, -EINVAL,
			    "remote %s: %s %s: HTTP %ld %s: the bucket is in "
			    "region %s, but the remote signs for %s (replicafs "
			    "remote add ... --region %s)", c->name, what,
			    target, resp->status, resp->code, region,
			    c->region, region);
	return fail(err, errlen, ret, "remote %s: %s %s: HTTP %ld %s%s%s",
		    c->name, what, target, resp->status,
		    resp->code[0] ? resp->code : "(no error code)",
		    message[0] ? ": " : "", message);
}

int s3_request(struct s3_client *c, const struct s3_request *r,
	       struct s3_response *resp, char *err, size_t errlen)
{
	char hash[S3_SHA256_HEX_SIZE], curl_err[CURL_ERROR_SIZE] = "";
	struct s3_url u = { 0 };
	struct curl_slist *list = NULL;
	struct creds_box *b = NULL;
	struct xfer x = { 0 };
	const char *payload;
	CURLcode rc;
	CURL *h = NULL;
	size_t i;
	long status = 0;
	int ret;

	memset(resp, 0, sizeof(*resp));
	x.body = &r->body;
	x.resp = resp;
	b = box_get(c);
	if (!b) {
		ret = fail(err, errlen, -EACCES,
			   "remote %s: no credentials", c->name);
		goto out;
	}
	ret = s3_url_build(c->endpoint, c->path_style, r->bucket, r->key,
			   r->query, r->nquery, &u);
	if (ret) {
		fail(err, errlen, ret, "remote %s: cannot build the URL of "
		     "%s/%s: %s", c->name, r->bucket ? r->bucket : "",
		     r->key ? r->key : "", strerror(-ret));
		goto out;
	}
	payload = r->payload_hash;
	if (!payload && r->body.len) {
		if (!r->body.buf) {
			ret = fail(err, errlen, -EINVAL, "remote %s: a body "
				   "from a file needs its hash", c->name);
			goto out;
		}
		ret = s3_sha256_hex(r->body.buf, (size_t)r->body.len, hash);
		if (ret) {
			fail(err, errlen, ret, "remote %s: cannot hash",
			     c->name);
			goto out;
		}
		payload = hash;
	}
	ret = add_header(&list, "Host", u.host);
	for (i = 0; !ret && i < r->nheaders; i++)
		ret = add_header(&list, r->headers[i].name,
				 r->headers[i].value);
	if (!ret && r->body.len < EXPECT_MIN) {
		struct curl_slist *l = curl_slist_append(list, "Expect:");

		ret = l ? 0 : -ENOMEM;
		list = l ? l : list;
	}
	if (!ret)
		ret = sign_request(c, r, &u, payload, b, &list);
	if (ret) {
		fail(err, errlen, ret, "remote %s: cannot sign the request: %s",
		     c->name, strerror(-ret));
		goto out;
	}
	h = handle_get(c);
	if (!h) {
		ret = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	setup_handle(c, h, r, &u, list, &x, curl_err);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	resp->status = status;
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	ret = finish(c, r, rc, curl_err, &x, err, errlen);
	log_debug("s3: %s %s %s -> %ld %s", c->name, r->method, u.url,
		  resp->status, resp->code);
out:
	if (h)
		handle_put(c, h);
	if (list) {
		struct curl_slist *l;

		/* The list holds the signature and maybe the token. */
		for (l = list; l; l = l->next)
			explicit_bzero(l->data, strlen(l->data));
		curl_slist_free_all(list);
	}
	s3_url_release(&u);
	if (ret)
		scrub(err, b);
	box_put(c, b);
	return ret;
}
