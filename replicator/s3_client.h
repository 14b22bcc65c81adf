/*
 * s3_client.h - a small S3 REST client: requests signed with SigV4
 * (s3_sigv4.h), sent with libcurl, errors turned into errnos with a
 * sentence, and the XML of S3's answers read with libxml2.
 *
 * One struct s3_client talks to one endpoint in one region with one set
 * of credentials.  Any number of threads may send requests through it at
 * once: each request borrows a curl handle from the client's pool and
 * gives it back, so connections (and TLS sessions) are reused across
 * requests and threads, and there are never more handles than requests
 * that ran at the same time.
 *
 * Errors are 0 or a negative errno, chosen by what a retry can do (see
 * s3_error_errno()): -EACCES, -ENOENT, -EINVAL and -ENAMETOOLONG will not
 * heal (dest_error_permanent() says so), while -EIO, -EAGAIN, -ETIMEDOUT,
 * -ECONNREFUSED, -ECONNRESET and -EHOSTUNREACH can.  The sentence names
 * the operation, the bucket and key, the HTTP status and S3's <Code>, and
 * never a secret: no header value and no credential is ever copied into
 * it or into a log line.
 *
 * No libcurl, libxml2 or OpenSSL type appears here.
 */
#ifndef REPLICAFS_S3_CLIENT_H
#define REPLICAFS_S3_CLIENT_H

#include "replicator/s3_sigv4.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct s3_client;

struct s3_client_opts {
	const char *endpoint;	/* "http[s]://HOST[:PORT]" */
	const char *region;	/* signs every request */
	int path_style;		/* 1: HOST/BUCKET/KEY, 0: BUCKET.HOST */
	const char *ca_file;	/* an extra CA (PEM) besides the system's;
				 * NULL: the system's only */
	int insecure;		/* do not verify TLS certificates */
	long connect_timeout_ms;/* 0: 10 s */
	long stall_timeout_s;	/* a transfer that moves no byte for this
				 * long is cut; 0: 60 s */
	uint64_t max_send_bps;	/* 0: no limit (for tests) */
	const char *name;	/* for messages: the remote's name */
};

/*
 * A new client for @o (every string is copied).  Does no I/O.  The caller
 * frees *out with s3_client_free().  -ENOMEM, -EINVAL for a bad endpoint
 * (with a sentence in @err).
 */
int s3_client_new(const struct s3_client_opts *o, struct s3_client **out,
		  char *err, size_t errlen);
void s3_client_free(struct s3_client *c);

/*
 * Give the client the credentials to sign with (copied; the old ones are
 * wiped).  Requests under way keep the ones they started with.
 * -ENOMEM.
 */
int s3_client_set_creds(struct s3_client *c, const struct s3_creds *creds);

/* Whether the client has credentials. */
int s3_client_has_creds(struct s3_client *c);

/* The client's region (owned by the client). */
const char *s3_client_region(const struct s3_client *c);

/* Whether endpoint URLs @a and @b ("http[s]://HOST[:PORT][/]") name one
 * server: one host, in any case, the loopback address under any of its
 * names (localhost, 127.0.0.1, [::1]), and one port, written or implied
 * by the scheme.  Malformed ones are one only when equal. */
int s3_same_endpoint(const char *a, const char *b);

/* A request's body: @len bytes from @buf, or from @fd at @off (read with
 * pread(), so the fd may be shared), or none (len 0). */
struct s3_body {
	const void *buf;
	int fd;			/* -1 when buf (or nothing) */
	off_t off;
	uint64_t len;
};

/* One request.  Every pointer is borrowed for the call. */
struct s3_request {
	const char *method;	/* "GET", "PUT", "HEAD", "DELETE", "POST" */
	const char *bucket;	/* NULL: the service (ListBuckets) */
	const char *key;	/* NULL or "": the bucket itself */
	const struct s3_kv *query;	/* unencoded; any order */
	size_t nquery;
	const struct s3_kv *headers;	/* extra headers to sign and send:
					 * content-md5, content-type,
					 * x-amz-meta-*, ... */
	size_t nheaders;
	struct s3_body body;
	/* Hex SHA-256 of the body; NULL: computed here for a body in
	 * memory (or the empty body), required for a body from an fd. */
	const char *payload_hash;
	const char *what;	/* "PutObject", ... for messages */
};

/* What came back.  Strings are empty when the header was not there. */
struct s3_response {
	long status;		/* HTTP status; 0 when no answer came */
	char *body;		/* the body, NUL-terminated (at most
				 * S3_BODY_MAX bytes kept); NULL when
				 * empty.  Released by
				 * s3_response_release() */
	size_t body_len;
	char version_id[128];	/* x-amz-version-id */
	char etag[128];		/* ETag, with its quotes */
	char bucket_region[64];	/* x-amz-bucket-region */
	char meta_version_id[128];	/* x-amz-meta-replicafs-version-id */
	int delete_marker;	/* x-amz-delete-marker: true */
	/* x-amz-meta-mode, -uid, -gid, -mtime: the attributes s3fs reads */
	char meta_mode[24], meta_uid[24], meta_gid[24], meta_mtime[40];
	char code[64];		/* S3's <Code> of an error, else "" */
};

#define S3_BODY_MAX (4 << 20)

/*
 * Send @r and wait for the answer, filled into @resp (the caller releases
 * it with s3_response_release() in every case).  0 for a 2xx status;
 * otherwise a negative errno (s3_error_errno() of the status and <Code>,
 * or of the transport error) with a sentence in @err.  A 404 of HEAD has
 * no body: it is -ENOENT with code "NotFound".
 */
int s3_request(struct s3_client *c, const struct s3_request *r,
	       struct s3_response *resp, char *err, size_t errlen);

void s3_response_release(struct s3_response *resp);

/* ---- Pieces, exposed for the unit tests ------------------------------ */

/* A request's URL and what the signer needs of it.  Owned by the struct,
 * freed by s3_url_release(). */
struct s3_url {
	char *url;		/* what curl is given */
	char *host;		/* the Host header: host[:port] */
	char *path;		/* encoded, as signed: "/bucket/key" or
				 * "/key" */
};

/*
 * Build the URL of @key (NULL or "": none) in @bucket (NULL: none) on
 * @endpoint, path-style or virtual-hosted (a bucket name with a '.' goes
 * path-style over https, since the certificate cannot cover it), with the
 * query parameters @q encoded and sorted as the signer signs them.  Keys
 * are encoded with s3_uri_encode(key, keep_slash=1): "a b/ü" is
 * "a%20b/%C3%BC".  -EINVAL for a bad endpoint, -ENOMEM.
 */
int s3_url_build(const char *endpoint, int path_style, const char *bucket,
		 const char *key, const struct s3_kv *q, size_t nq,
		 struct s3_url *out);
void s3_url_release(struct s3_url *u);

/*
 * The errno for an S3 error: HTTP @status and S3's @code (may be NULL or
 * ""), as described at the top.  Unknown 4xx codes are -EINVAL (a bad
 * request does not improve), unknown 5xx -EIO.
 */
int s3_error_errno(long status, const char *code);

/*
 * Read S3's <Error> document in @xml (@len bytes): its Code, Message and
 * Region (when the error names the bucket's region) into the buffers
 * (each may be NULL; "" when absent).  0, or -EINVAL when @xml is not an
 * <Error> document.
 */
int s3_xml_error(const char *xml, size_t len, char *code, size_t codelen,
		 char *message, size_t msglen, char *region, size_t reglen);

/*
 * The text of the first element named @name (any depth, any namespace)
 * of the document @xml into @out.  0, -ENOENT when there is none,
 * -EINVAL when @xml is not XML, -E2BIG when it does not fit.  For
 * <Status> of GetBucketVersioning, <UploadId> of CreateMultipartUpload,
 * <LocationConstraint> of GetBucketLocation.
 */
int s3_xml_text(const char *xml, size_t len, const char *name, char *out,
		size_t outlen);

/* The name of the document element of @xml into @out ("Error",
 * "CompleteMultipartUploadResult"...): 0 or -EINVAL. */
int s3_xml_root(const char *xml, size_t len, char *out, size_t outlen);

/*
 * The first entry (a Version or a DeleteMarker) of a ListObjectVersions
 * answer: its Key into @key, whether it is a delete marker and whether it
 * is the latest.  -ENOENT when the answer lists nothing.
 */
int s3_xml_first_version(const char *xml, size_t len, char *key,
			 size_t keylen, int *is_delete_marker,
			 int *is_latest);

/*
 * Call @cb for each <Tag> of a GetObjectTagging answer with its Key and
 * Value; a non-zero return of @cb stops the walk and is returned.
 * -EINVAL for a document that is not such an answer.
 */
typedef int (*s3_tag_cb)(void *arg, const char *key, const char *value);
int s3_xml_tagset(const char *xml, size_t len, s3_tag_cb cb, void *arg);

/* The <Tagging> document of PutObjectTagging for the @n tags @tags (name:
 * the tag's key, value: its value), escaped: malloc()ed, or NULL. */
char *s3_xml_tagging_doc(const struct s3_kv *tags, size_t n);

#endif
