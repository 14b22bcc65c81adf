/*
 * s3_sigv4.h - AWS Signature Version 4 for the S3 client, and the hashes an
 * S3 request needs (hex SHA-256 of a payload, base64 MD5 for Content-MD5).
 *
 * The signer knows nothing about HTTP transport: the caller describes one
 * request (method, encoded path, query parameters, headers, payload hash,
 * time), the signer returns the headers to add to it.  Only header signing
 * (an Authorization header) is done; presigned URLs are not.  The path is
 * signed as it is sent, as S3 wants: the second encoding other AWS
 * services apply to it is not done.
 *
 * A typical S3 request:
 *
 *	struct s3_kv q[] = { { "versions", NULL }, { "max-keys", "2" } };
 *	struct s3_kv h[] = { { "host", "127.0.0.1:7480" } };
 *	struct s3_sigv4_req r = {
 *		.method = "GET", .path = "/bucket", .query = q, .nquery = 2,
 *		.headers = h, .nheaders = 1, .payload_hash = NULL,
 *		.region = "us-east-1", .now = time(NULL),
 *	};
 *	struct s3_sigv4_out out;
 *
 *	err = s3_sigv4_sign_s3(&r, &creds, &out);
 *	for (i = 0; !err && i < out.nheader_lines; i++)
 *		list = curl_slist_append(list, out.header_lines[i]);
 *	s3_sigv4_out_release(&out);
 *
 * The URL sent must carry the same path, and a query string with the same
 * parameters, each encoded with s3_uri_encode(..., 0, ...).
 *
 * Errors are 0 or a negative errno: -EINVAL for a malformed request,
 * -E2BIG when a string would pass S3_SIGV4_MAX_LEN, -ENOMEM, -EIO when
 * OpenSSL fails (logged).  No function logs or returns the secret key.
 * The functions keep no state between calls: several threads may sign at
 * once (a struct s3_digest belongs to one thread at a time).
 */
#ifndef REPLICAFS_S3_SIGV4_H
#define REPLICAFS_S3_SIGV4_H

#include <stddef.h>
#include <time.h>

/* The longest string the signer builds (canonical request, encoded path,
 * Authorization value), without its NUL: longer is -E2BIG. */
#define S3_SIGV4_MAX_LEN (1024 * 1024)

/* Sizes, with the NUL, of the fixed strings below. */
#define S3_SHA256_HEX_SIZE 65	/* 64 lowercase hex digits */
#define S3_MD5_B64_SIZE	   25	/* 24 base64 characters */
#define S3_AMZ_DATE_SIZE   17	/* "20150830T123600Z" */

/* The payload hash that tells S3 not to check the body. */
#define S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* One name and value, both borrowed.  A query parameter's value may be
 * NULL (`?versions`), which signs as an empty value (`versions=`). */
struct s3_kv {
	const char *name;
	const char *value;
};

/* Credentials, borrowed.  The secret is used for the signing key only. */
struct s3_creds {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;	/* NULL or "": none */
};

/* Flags of struct s3_sigv4_req. */
enum {
	/* Add and sign `x-amz-content-sha256: PAYLOAD_HASH`, as S3 wants. */
	S3_SIGV4_CONTENT_SHA256 = 1 << 0,
	/* Remove "." and ".." segments and empty segments from the path
	 * before signing, as non-S3 services want.  Never for S3: there
	 * "a/../b" is a key of its own. */
	S3_SIGV4_NORMALIZE_PATH = 1 << 1,
	/* Do not sign the session token (some services want it added after
	 * signing); it is still returned in header_lines. */
	S3_SIGV4_OMIT_TOKEN = 1 << 2,
};

/* One request to sign.  Every pointer is borrowed for the call only. */
struct s3_sigv4_req {
	const char *method;	/* "GET", "PUT", ... */
	/* The path as sent, already encoded: each segment with
	 * s3_uri_encode(segment, 0) or the whole key with
	 * s3_uri_encode(key, 1); starts with '/'; "" means "/". */
	const char *path;
	/* Query parameters, unencoded, in any order; the signer encodes
	 * and sorts them.  NULL when nquery is 0. */
	const struct s3_kv *query;
	size_t nquery;
	/* Headers to sign, in any order and case (host at least).  Values
	 * are trimmed and inner runs of blanks become one space; a name
	 * given twice signs as one header with the values joined by ',' in
	 * the order given.  x-amz-date and authorization must not be among
	 * them (the signer adds x-amz-date), nor x-amz-security-token or
	 * x-amz-content-sha256 when the signer adds them. */
	const struct s3_kv *headers;
	size_t nheaders;
	/* Hex SHA-256 of the body (s3_sha256_hex()), S3_UNSIGNED_PAYLOAD,
	 * or NULL for an empty body. */
	const char *payload_hash;
	const char *region;	/* "us-east-1" */
	const char *service;	/* "s3"; s3_sigv4_sign_s3() sets it */
	time_t now;		/* the time of the request: time(NULL), or
				 * a fixed time in tests */
	unsigned flags;		/* S3_SIGV4_* */
};

/* Header lines the signer adds, at most: x-amz-date,
 * x-amz-content-sha256, x-amz-security-token, Authorization. */
#define S3_SIGV4_MAX_LINES 4

/*
 * The result of signing.  The heap strings are freed by
 * s3_sigv4_out_release(), and never by the caller.  The canonical request
 * and the header lines can hold the session token: never log them.
 */
struct s3_sigv4_out {
	char amz_date[S3_AMZ_DATE_SIZE];	/* x-amz-date value */
	char signature[S3_SHA256_HEX_SIZE];	/* lowercase hex */
	char *canonical_request;
	char *string_to_sign;
	char *signed_headers;	/* "host;x-amz-date" */
	char *authorization;	/* the Authorization header's value */
	/* "name: value" lines to add to the request as they are (the
	 * shape curl_slist_append() takes), the last one Authorization. */
	char *header_lines[S3_SIGV4_MAX_LINES];
	size_t nheader_lines;
};

/*
 * Sign @req with @creds.  On success fills *out, which the caller releases
 * with s3_sigv4_out_release(); on failure *out holds nothing to release
 * (releasing it anyway is harmless).
 */
int s3_sigv4_sign(const struct s3_sigv4_req *req, const struct s3_creds *creds,
		  struct s3_sigv4_out *out);

/*
 * s3_sigv4_sign() for S3: service "s3" (whatever req->service says) and
 * S3_SIGV4_CONTENT_SHA256 added to the flags.  NULL payload_hash signs the
 * empty body's hash, which S3 then checks.
 */
int s3_sigv4_sign_s3(const struct s3_sigv4_req *req,
		     const struct s3_creds *creds, struct s3_sigv4_out *out);

/* Free the strings of @out and zero it.  @out may be all zeros. */
void s3_sigv4_out_release(struct s3_sigv4_out *out);

/*
 * URI-encode @len bytes of @in as SigV4 wants: A-Z a-z 0-9 - . _ ~ kept,
 * '/' kept when @keep_slash, every other byte as %XX with uppercase hex
 * (a space is %20, never '+').  On success *out is a NUL-terminated string
 * the caller frees with free().
 */
int s3_uri_encode_len(const char *in, size_t len, int keep_slash, char **out);

/* s3_uri_encode_len() of the NUL-terminated @in. */
int s3_uri_encode(const char *in, int keep_slash, char **out);

/* The lowercase hex SHA-256 of @len bytes at @buf into @hex. */
int s3_sha256_hex(const void *buf, size_t len,
		  char hex[S3_SHA256_HEX_SIZE]);

/* The base64 of the MD5 of @len bytes at @buf into @b64: a Content-MD5
 * header's value. */
int s3_md5_base64(const void *buf, size_t len, char b64[S3_MD5_B64_SIZE]);

/*
 * Both hashes of a body read in pieces (a file part by part), in one pass.
 * s3_digest_new() returns the state in *out, freed by s3_digest_free();
 * s3_digest_final() may be called once, and the state is then only good
 * for s3_digest_free().  Either output of s3_digest_final() may be NULL.
 */
struct s3_digest;

int s3_digest_new(struct s3_digest **out);
int s3_digest_update(struct s3_digest *d, const void *buf, size_t len);
int s3_digest_final(struct s3_digest *d, char sha256_hex[S3_SHA256_HEX_SIZE],
		    char md5_b64[S3_MD5_B64_SIZE]);
void s3_digest_free(struct s3_digest *d);

#endif
