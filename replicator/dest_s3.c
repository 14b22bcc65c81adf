/*
 * dest_s3.c - s3://REMOTE/BUCKET[/PREFIX]: a bucket of an S3-compatible
 * service (AWS, Ceph RGW, MinIO, Garage...), in a region of its own.
 *
 * The remote is looked up in the remotes file (s3_conf.h) when the
 * destination is opened; the remote "default", which arn:aws:s3:::BUCKET
 * names, may also come from the AWS configuration alone.  Each remote
 * gets one s3_client, signed for the remote's region, whose curl handles
 * are shared by every worker thread.
 *
 * What goes where.  Key K of the source is PREFIX/K at the destination
 * (PREFIX as written in the URL, with a '/' added when it has none).
 * Its attributes go in the names s3fs-fuse uses, so that s3fs, rclone or
 * awscli see the same file:
 *
 *   x-amz-meta-mode    st_mode in decimal, type bits included
 *   x-amz-meta-uid, x-amz-meta-gid
 *   x-amz-meta-mtime, x-amz-meta-ctime   seconds[.nanoseconds]
 *   x-amz-meta-replicafs-version-id      the source's version ID
 *
 * a symbolic link as s3fs stores one (the target as content, S_IFLNK in
 * the mode), a directory marker as a zero-byte "KEY/" object of type
 * application/x-directory, tags (user.s3.tag.* xattrs) as x-amz-tagging.
 *
 * put() sends an object of at most the remote's multipart threshold in
 * one PUT with Content-MD5 and the payload's SHA-256 (the store's own
 * hash of the content, so a blob that went bad on disk is refused by the
 * server rather than replicated).  A larger one goes by multipart upload:
 *
 *   CreateMultipartUpload (with the metadata)
 *   store_repl_upload_note()  the UploadId, in the catalog of the store
 *                  whose engine delivers here (the home store), before
 *                  any part: from here on a kill -9 leaves an upload
 *                  that is known to be ours
 *   UploadPart x N, `parallel` at a time (part_worker() threads), each
 *                  with Content-MD5 and its SHA-256, retried twice
 *   CompleteMultipartUpload, or AbortMultipartUpload on any failure;
 *                  once either went through, store_repl_upload_forget()
 *
 * Each delivery of a key, put() or delete_marker(), first aborts the
 * uploads noted for it (abort_ours()): those a delivery left behind that
 * was killed, or gave up and could not abort.  An upload of the key that
 * is not noted is another client's (aws s3 cp, rclone, the replicafs of
 * another store) and is never aborted.  One whose note a crash forestalled
 * (between CreateMultipartUpload's answer and the note) is left to the
 * bucket's lifecycle rule AbortIncompleteMultipartUpload.  A destination
 * opened without a home store (to be checked) notes and aborts nothing.
 *
 * Delivering a version twice leaves one copy: put() first asks (HEAD)
 * whether the current object already carries this version ID, and
 * delete_marker() whether the newest entry of the key is already a delete
 * marker.  A version this process sent lately, with the same attributes,
 * is known without asking (the sent table: cp -a sets a directory's
 * attributes after making it, and each change sends the version again).
 * A delete marker becomes a plain DELETE, which makes a delete
 * marker in the versioned bucket; the engine calls delete_marker() only
 * where the rule says so, and never sends a delete of a version.
 *
 * check() refuses a bucket that is missing or whose versioning is not
 * Enabled (GetBucketVersioning), and one that lives in another region
 * than the remote's (GetBucketLocation), as S3 refuses such a rule.
 * Versioning suspended after the rule was put would have each PUT
 * replace the bucket's null version and each DELETE remove it, the
 * backup lost while every version showed COMPLETED: so every write is
 * preceded by a look at the versioning no older than VERSIONING_NS
 * (versioning_guard()), and a PUT, multipart upload or DELETE whose
 * answer names no version ID, or "null", fails too (versioned()); not a
 * CopyObject, whose answer RGW sends without one.  Both fail with EPERM,
 * which the engine takes as FAILED, as a second store's refusal is.
 *
 * The remote and its credentials are read at open, and read again into a
 * new setup (struct setup) when the remotes file or one of the AWS files
 * changes (looked at no more than once a second), so that a fixed secret,
 * or a remote added again with another endpoint, takes effect without a
 * remount.  No secret is kept here: the client holds them, and no message
 * of this file names one.
 *
 * Concurrency: put(), delete_marker() and check() run in several worker
 * threads at once.  The client is safe for that; ds->lock protects the
 * file stamps, the setup pointer and the credentials' source while they
 * are refreshed.  Each request takes the setup there is (setup_of()); a
 * setup lives until the destination closes, so one taken stays valid (a
 * multipart upload cut by a change of endpoint fails, and is retried).
 * The home store is called with no lock of ours held, from the thread of
 * the delivery (never a part_worker()); it is safe for any thread.
 */
#include "replicator/dest.h"
#include "replicator/dest_i.h"
#include "replicator/rules.h"
#include "replicator/s3_client.h"
#include "replicator/s3_conf.h"
#include "store/log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often the configuration files are looked at for changes. */
#define REFRESH_NS (1000LL * 1000 * 1000)
/* How long a look at the bucket's versioning holds. */
#define VERSIONING_NS (5LL * 1000 * 1000 * 1000)
/* Objects this small are read into memory once. */
#define SMALL_MAX (1 << 20)
/* The chunk a body is hashed in. */
#define HASH_CHUNK (1 << 20)
/* Tries of one part before the upload is given up. */
#define PART_TRIES 3
/* Slots of the table of versions sent lately (a power of two). */
#define SENT_SLOTS 4096

/* A version this process sent, with the attributes it carried. */
struct sent {
	char *dkey;		/* the key at the destination; NULL: empty */
	char vid[STORE_VID_MAX + 1];
	char mode[16], uid[16], gid[16], mtime[32];
	char *tagging;		/* x-amz-tagging sent, NULL: none */
};

/*
 * What a destination takes from its remote and the AWS configuration: the
 * client, and what it was made with.  Made whole and never changed (but
 * for the client's keys, which the client guards): a remote changed in
 * the remotes file gets a new one (refresh()), and an operation under
 * way goes on with the one it took.  Replaced ones are kept until the
 * destination closes.
 */
struct setup {
	struct s3_client *client;
	char *endpoint;		/* as used, for messages */
	char *profile;		/* the remote's own profile, or NULL */
	char *region_profile;	/* the AWS config's profile the region
				 * came from; NULL: from the remote */
	uint64_t threshold;
	uint64_t part_size;
	int parallel;
	struct setup *older;	/* replaced before this one */
};

struct stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int exists;
};

struct dest_s3 {
	struct dest d;		/* first: the table */
	char *url;		/* canonical, for messages */
	char *remote;
	char *bucket;
	char *prefix;		/* "" or ending in '/' */
	char *remotes_path;
	struct store *home;	/* where our multipart uploads under way are
				 * noted (see abort_ours()); NULL: nowhere.
				 * Not owned */
	struct setup *su;	/* the remote as last read; protected by
				 * lock (setup_of()) */
	int gone;		/* the remote is no more in the file;
				 * protected by lock */
	char *unread;		/* why the files, changed, were not read
				 * again (NULL: they were); protected by
				 * lock */

	pthread_mutex_t lock;
	int64_t checked_ns;	/* last look at the files; protected by
				 * lock */
	struct stamp stamps[3];	/* remotes, credentials, config files;
				 * protected by lock */
	struct stamp seen[3];	/* the same, as s3_changed() last saw
				 * them; protected by lock */
	char *creds_source;	/* where the keys came from, NULL: none;
				 * protected by lock */
	char *creds_hint;	/* what to set when there are none;
				 * protected by lock */

	int64_t versioning_ns;	/* when versioning was last seen Enabled,
				 * 0: not lately; protected by lock */

	pthread_mutex_t sent_lock;
	struct sent *sent;	/* SENT_SLOTS, direct-mapped by the key's
				 * hash; protected by sent_lock */
};

static struct dest_s3 *to_s3(struct dest *d)
{
	return (struct dest_s3 *)d;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- configuration and credentials ---------------------------------- */

static void stamp_of(const char *path, struct stamp *s)
{
	struct stat sb;

	memset(s, 0, sizeof(*s));
	if (path && *path && !stat(path, &sb)) {
		s->exists = 1;
		s->dev = sb.st_dev;
		s->ino = sb.st_ino;
		s->size = sb.st_size;
		s->mtime = sb.st_mtim;
	}
}

static int stamp_eq(const struct stamp *a, const struct stamp *b)
{
	return a->exists == b->exists && a->dev == b->dev &&
	       a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The stamps of the three files now, into @s[3]. */
static void stamps_now(const struct dest_s3 *ds, struct stamp *s)
{
	char creds[PATH_MAX], config[PATH_MAX];

	s3_aws_files(creds, config, sizeof(creds));
	stamp_of(ds->remotes_path, &s[0]);
	stamp_of(creds, &s[1]);
	stamp_of(config, &s[2]);
}

static void setup_free(struct setup *su)
{
	struct setup *older;

	for (; su; su = older) {
		older = su->older;
		s3_client_free(su->client);
		free(su->endpoint);
		free(su->profile);
		free(su->region_profile);
		free(su);
	}
}

/* The setup an operation goes on with. */
static struct setup *setup_of(struct dest_s3 *ds)
{
	struct setup *su;

	pthread_mutex_lock(&ds->lock);
	su = ds->su;
	pthread_mutex_unlock(&ds->lock);
	return su;
}

/*
 * A new setup of remote @remote from remotes file @path and the AWS
 * configuration, whose profile is read into *@p (released by the caller in
 * every case; its keys are not given to the client here).  @url is for
 * messages.  0, or a negative errno with a sentence in @err: -ENOENT when
 * there is no such remote.
 */
static int setup_make(const char *url, const char *remote, const char *path,
		      struct setup **out, struct s3_aws_profile *p,
		      char *err, size_t errlen)
{
	struct s3_remotes rs = { NULL, 0 };
	struct s3_client_opts o = { 0 };
	const struct s3_remote *rem;
	struct setup *su = NULL;
	const char *region, *endpoint, *bps;
	char ep[300];
	int ret;

	*out = NULL;
	ret = s3_remotes_load(path, &rs, err, errlen);
	if (ret)
		goto out;
	rem = s3_remotes_find(&rs, remote);
	if (!rem && strcmp(remote, "default")) {
		ret = dest_fail(err, errlen, -ENOENT,
				"%s: no remote named %s in %s (replicafs "
				"remote add %s ENDPOINT-URL)", url, remote,
				path, remote);
		goto out;
	}
	ret = s3_aws_profile_load(rem ? rem->profile : NULL, p, err, errlen);
	if (ret)
		goto out;
	region = rem && rem->region ? rem->region
				    : p->region ? p->region : "us-east-1";
	endpoint = rem && rem->endpoint ? rem->endpoint : p->endpoint_url;
	if (!endpoint) {
		/* AWS itself. */
		snprintf(ep, sizeof(ep), "https://s3.%s.amazonaws.com",
			 region);
		endpoint = ep;
	}
	su = calloc(1, sizeof(*su));
	if (su) {
		su->endpoint = strdup(endpoint);
		su->profile = rem && rem->profile ? strdup(rem->profile)
						  : NULL;
		/* The fix, where the region came from: a remote's own
		 * setting, else the AWS config's profile (the remote
		 * "default" may be no more than that). */
		if (!(rem && rem->region))
			su->region_profile =
				strdup(p->profile ? p->profile : "default");
	}
	if (!su || !su->endpoint || (rem && rem->profile && !su->profile) ||
	    (!(rem && rem->region) && !su->region_profile)) {
		ret = dest_fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	su->threshold = rem ? rem->multipart_threshold
			    : S3_DEFAULT_MULTIPART_THRESHOLD;
	su->part_size = rem ? rem->part_size : S3_DEFAULT_PART_SIZE;
	su->parallel = rem ? rem->parallel : S3_DEFAULT_PARALLEL;
	o.endpoint = endpoint;
	o.region = region;
	o.path_style = (rem && rem->path_style) || p->path_style == 1;
	o.ca_file = rem ? rem->ca_file : NULL;
	o.insecure = rem ? rem->insecure : 0;
	o.name = remote;
	/* Tests slow the uploads down to stop a server in the middle. */
	bps = getenv("REPLICAFS_TEST_S3_SEND_BPS");
	if (bps && *bps)
		o.max_send_bps = strtoull(bps, NULL, 10);
	ret = s3_client_new(&o, &su->client, err, errlen);
	if (ret)
		goto out;
	*out = su;
	su = NULL;
out:
	setup_free(su);
	s3_remotes_release(&rs);
	return ret;
}

/*
 * Give the keys of profile @use to @su's client, and note where they came
 * from.  Called with ds->lock held (or before the destination is shared).
 * 0, or a negative errno with a sentence.
 */
static int load_creds(struct dest_s3 *ds, struct setup *su,
		      const struct s3_aws_profile *use, char *err,
		      size_t errlen)
{
	struct s3_creds c;
	char hint[PATH_MAX * 2 + 200];
	char *src = NULL, *h = NULL;
	int ret;

	c.access_key_id = use->access_key_id;
	c.secret_access_key = use->secret_access_key;
	c.session_token = use->session_token;
	ret = s3_client_set_creds(su->client, use->access_key_id ? &c : NULL);
	if (!ret && use->creds_source)
		src = strdup(use->creds_source);
	snprintf(hint, sizeof(hint), "set AWS_ACCESS_KEY_ID and "
		 "AWS_SECRET_ACCESS_KEY, or give profile %s keys in %s",
		 use->profile ? use->profile : "default",
		 use->files ? use->files : "~/.aws/credentials");
	h = strdup(hint);
	if (!ret && ((use->creds_source && !src) || !h))
		ret = -ENOMEM;
	if (!ret) {
		free(ds->creds_source);
		free(ds->creds_hint);
		ds->creds_source = src;
		ds->creds_hint = h;
		src = h = NULL;
	} else {
		dest_fail(err, errlen, ret, "out of memory");
	}
	free(src);
	free(h);
	return ret;
}

/*
 * Before each operation: when the remotes file or an AWS file changed (a
 * look at most once per REFRESH_NS), read the remote and its keys again
 * into a new setup, so that a fixed secret, or a remote removed and added
 * again with another endpoint, takes effect without a remount.  A file
 * caught half-written, or wrong for now, leaves the setup as it was, to
 * be read again later; a remote that is gone fails the operation, to be
 * tried again.  Says so clearly when there are no keys.
 */
static int refresh(struct dest_s3 *ds, char *err, size_t errlen)
{
	struct s3_aws_profile p = { 0 };
	struct setup *su = NULL;
	struct stamp now[3];
	int64_t t = mono_ns();
	int ret = 0, i, changed = 0;

	pthread_mutex_lock(&ds->lock);
	if (t - ds->checked_ns >= REFRESH_NS || ds->gone) {
		ds->checked_ns = t;
		stamps_now(ds, now);
		for (i = 0; i < 3; i++)
			if (!stamp_eq(&now[i], &ds->stamps[i]))
				changed = 1;
	}
	if (changed) {
		p.path_style = -1;
		ret = setup_make(ds->url, ds->remote, ds->remotes_path, &su,
				 &p, err, errlen);
		if (!ret)
			ret = load_creds(ds, su, &p, err, errlen);
		s3_aws_profile_release(&p);
		if (!ret) {
			memcpy(ds->stamps, now, sizeof(now));
			su->older = ds->su;
			ds->su = su;
			ds->gone = 0;
			free(ds->unread);
			ds->unread = NULL;
			log_info("%s: remote %s read again: %s, keys from %s",
				 ds->url, ds->remote, su->endpoint,
				 ds->creds_source ? ds->creds_source : "none");
		} else if (ret == -ENOENT) {
			setup_free(su);
			ds->gone = 1;	/* looked at again each time */
			ret = -EAGAIN;
		} else {
			setup_free(su);
			log_warn("%s: remote %s not read again: %s", ds->url,
				 ds->remote, err);
			free(ds->unread);
			ds->unread = strdup(err);	/* for explain() */
			ret = 0;
		}
	} else if (ds->gone) {
		ret = dest_fail(err, errlen, -EAGAIN, "%s: no remote named "
				"%s (replicafs remote add %s ENDPOINT-URL)",
				ds->url, ds->remote, ds->remote);
	}
	if (!ret && !s3_client_has_creds(ds->su->client))
		ret = dest_fail(err, errlen, -EACCES,
				"%s: no credentials for remote %s: %s",
				ds->url, ds->remote,
				ds->creds_hint ? ds->creds_hint : "");
	pthread_mutex_unlock(&ds->lock);
	return ret;
}

/* After an error: add where the keys came from when they were refused. */
static int explain(struct dest_s3 *ds, int ret, const char *code, char *err,
		   size_t errlen)
{
	size_t n;

	if (ret != -EACCES || !err || !code ||
	    (strcmp(code, "SignatureDoesNotMatch") &&
	     strcmp(code, "InvalidAccessKeyId") &&
	     strcmp(code, "ExpiredToken") && strcmp(code, "InvalidToken")))
		return ret;
	n = strlen(err);
	pthread_mutex_lock(&ds->lock);
	if (ds->creds_source && n + 1 < errlen)
		snprintf(err + n, errlen - n, " (keys from %s)",
			 ds->creds_source);
	n = strlen(err);
	/* The keys refused are the old ones: say why the new were not
	 * taken (a status that said only SignatureDoesNotMatch sent the
	 * user to the keys, not to the file that could not be read). */
	if (ds->unread && n + 1 < errlen)
		snprintf(err + n, errlen - n, "; the changed files were not "
			 "read: %s", ds->unread);
	pthread_mutex_unlock(&ds->lock);
	return ret;
}

/* ---- requests ------------------------------------------------------- */

/* s3_request() on the destination's bucket, with explain(). */
static int request(struct dest_s3 *ds, struct s3_request *r,
		   struct s3_response *resp, char *err, size_t errlen)
{
	int ret;

	r->bucket = ds->bucket;
	ret = s3_request(setup_of(ds)->client, r, resp, err, errlen);
	return ret ? explain(ds, ret, resp->code, err, errlen) : 0;
}

/* The key at the destination: the prefix and @key, malloc()ed. */
static char *dest_key(const struct dest_s3 *ds, const char *key)
{
	size_t n = strlen(ds->prefix) + strlen(key) + 1;
	char *k = malloc(n);

	if (k)
		snprintf(k, n, "%s%s", ds->prefix, key);
	return k;
}

/* Seconds[.nanoseconds] of @ns, as s3fs and rclone read them. */
static void time_str(int64_t ns, char *buf, size_t size)
{
	int64_t s = ns / 1000000000, f = ns % 1000000000;

	if (f < 0) {
		s--;
		f += 1000000000;
	}
	if (f)
		snprintf(buf, size, "%lld.%09lld", (long long)s, (long long)f);
	else
		snprintf(buf, size, "%lld", (long long)s);
}

/* The headers every object carries: the type and the attributes. */
struct meta_hdrs {
	char mode[16], uid[16], gid[16], mtime[32], ctime[32];
	char *tagging;		/* malloc()ed, NULL when no tags */
	struct s3_kv kv[10];
	size_t n;
};

/* Tags (user.s3.tag.KEY xattrs) as an x-amz-tagging value into
 * *@out (malloc()ed, NULL when none). */
static int tagging_of(const struct repl_version *v, char **out)
{
	static const char pfx[] = "user.s3.tag.";
	char *k = NULL, *val = NULL, *s = NULL, *grown;
	size_t i, len = 0, need;
	int ret = 0;

	*out = NULL;
	for (i = 0; i < v->nxattrs; i++) {
		const struct store_xattr *x = &v->xattrs[i];

		if (strncmp(x->name, pfx, sizeof(pfx) - 1) ||
		    !x->name[sizeof(pfx) - 1])
			continue;
		ret = s3_uri_encode(x->name + sizeof(pfx) - 1, 0, &k);
		if (!ret)
			ret = s3_uri_encode_len(x->value, x->size, 0, &val);
		if (ret)
			break;
		need = len + strlen(k) + strlen(val) + 3;
		grown = realloc(s, need);
		if (!grown) {
			ret = -ENOMEM;
			break;
		}
		s = grown;
		len += (size_t)snprintf(s + len, need - len, "%s%s=%s",
					len ? "&" : "", k, val);
		free(k);
		free(val);
		k = val = NULL;
	}
	free(k);
	free(val);
	if (ret)
		free(s);
	else
		*out = s;
	return ret;
}

static int meta_hdrs_init(struct meta_hdrs *m, const struct repl_version *v)
{
	unsigned type;
	const char *ctype;
	int ret;

	memset(m, 0, sizeof(*m));
	switch (v->obj.kind) {
	case STORE_SYMLINK:
		type = S_IFLNK;
		ctype = "application/octet-stream";	/* as s3fs */
		break;
	case STORE_DIR:
		type = S_IFDIR;
		ctype = "application/x-directory";
		break;
	default:
		type = S_IFREG;
		ctype = "application/octet-stream";
		break;
	}
	snprintf(m->mode, sizeof(m->mode), "%u",
		 type | (v->obj.meta.mode & 07777));
	snprintf(m->uid, sizeof(m->uid), "%u", v->obj.meta.uid);
	snprintf(m->gid, sizeof(m->gid), "%u", v->obj.meta.gid);
	time_str(v->obj.meta.mtime_ns, m->mtime, sizeof(m->mtime));
	time_str(v->obj.meta.ctime_ns ? v->obj.meta.ctime_ns
				      : v->obj.meta.mtime_ns,
		 m->ctime, sizeof(m->ctime));
	m->kv[m->n++] = (struct s3_kv){ "content-type", ctype };
	m->kv[m->n++] = (struct s3_kv){ "x-amz-meta-mode", m->mode };
	m->kv[m->n++] = (struct s3_kv){ "x-amz-meta-uid", m->uid };
	m->kv[m->n++] = (struct s3_kv){ "x-amz-meta-gid", m->gid };
	m->kv[m->n++] = (struct s3_kv){ "x-amz-meta-mtime", m->mtime };
	m->kv[m->n++] = (struct s3_kv){ "x-amz-meta-ctime", m->ctime };
	m->kv[m->n++] = (struct s3_kv){ "x-amz-meta-replicafs-version-id",
					v->obj.version_id };
	ret = tagging_of(v, &m->tagging);
	if (!ret && m->tagging)
		m->kv[m->n++] = (struct s3_kv){ "x-amz-tagging", m->tagging };
	return ret;
}

static void meta_hdrs_release(struct meta_hdrs *m)
{
	free(m->tagging);
	m->tagging = NULL;
}

/* ---- versions sent lately ------------------------------------------ */

/*
 * GetBucketVersioning: 0 when Enabled, else @notok (-EINVAL for check(),
 * -EPERM for a delivery) with what to do in @err; -ENOENT when there is no
 * bucket.  Notes the time of an Enabled answer.
 */
static int versioning_get(struct dest_s3 *ds, int notok, char *err,
			  size_t errlen)
{
	struct s3_kv q[] = { { "versioning", NULL } };
	struct s3_request r = { .method = "GET", .query = q, .nquery = 1,
				.what = "GetBucketVersioning" };
	struct s3_response resp;
	char status[32] = "";
	int ret;

	ret = request(ds, &r, &resp, err, errlen);
	if (ret == -ENOENT && !strcmp(resp.code, "NoSuchBucket"))
		ret = dest_fail(err, errlen, -ENOENT,
				"%s: bucket %s does not exist on remote %s "
				"(%s)", ds->url, ds->bucket, ds->remote,
				setup_of(ds)->endpoint);
	if (!ret)
		s3_xml_text(resp.body, resp.body_len, "Status", status,
			    sizeof(status));
	s3_response_release(&resp);
	if (ret)
		return ret;
	if (strcmp(status, "Enabled"))
		return dest_fail(err, errlen, notok,
				 "%s: versioning of bucket %s on remote %s is "
				 "not Enabled (it is %s): aws s3api "
				 "put-bucket-versioning --bucket %s "
				 "--versioning-configuration Status=Enabled",
				 ds->url, ds->bucket, ds->remote,
				 status[0] ? status : "not versioned",
				 ds->bucket);
	pthread_mutex_lock(&ds->lock);
	ds->versioning_ns = mono_ns();
	pthread_mutex_unlock(&ds->lock);
	return 0;
}

/* Before a write: versioning seen Enabled within VERSIONING_NS, or asked
 * again (see the top). */
static int versioning_guard(struct dest_s3 *ds, char *err, size_t errlen)
{
	int64_t seen;

	pthread_mutex_lock(&ds->lock);
	seen = ds->versioning_ns;
	pthread_mutex_unlock(&ds->lock);
	if (seen && mono_ns() - seen < VERSIONING_NS)
		return 0;
	return versioning_get(ds, -EPERM, err, errlen);
}

/* After write @what of @key answered by @resp: 0 when it made a version,
 * else EPERM, and versioning is asked again before the next write. */
static int versioned(struct dest_s3 *ds, const struct s3_response *resp,
		     const char *what, const char *key, char *err,
		     size_t errlen)
{
	if (resp->version_id[0] && strcmp(resp->version_id, "null"))
		return 0;
	pthread_mutex_lock(&ds->lock);
	ds->versioning_ns = 0;
	pthread_mutex_unlock(&ds->lock);
	return dest_fail(err, errlen, -EPERM,
			 "%s: %s: %s made no version (%s): versioning of "
			 "bucket %s on remote %s is no longer Enabled",
			 ds->url, key, what,
			 resp->version_id[0] ? "version ID null"
					     : "no version ID",
			 ds->bucket, ds->remote);
}

static struct sent *sent_slot(struct dest_s3 *ds, const char *dkey)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	const unsigned char *p;

	for (p = (const unsigned char *)dkey; *p; p++)
		h = (h ^ *p) * 16777619u;
	return &ds->sent[h & (SENT_SLOTS - 1)];
}

/* Whether this process sent version @v of @dkey with the attributes @m,
 * and nothing of the key since. */
static int sent_already(struct dest_s3 *ds, const char *dkey,
			const struct repl_version *v,
			const struct meta_hdrs *m)
{
	struct sent *e;
	int same;

	pthread_mutex_lock(&ds->sent_lock);
	e = sent_slot(ds, dkey);
	same = e->dkey && !strcmp(e->dkey, dkey) &&
	       !strcmp(e->vid, v->obj.version_id) &&
	       !strcmp(e->mode, m->mode) && !strcmp(e->uid, m->uid) &&
	       !strcmp(e->gid, m->gid) && !strcmp(e->mtime, m->mtime) &&
	       !strcmp(e->tagging ? e->tagging : "",
		       m->tagging ? m->tagging : "");
	pthread_mutex_unlock(&ds->sent_lock);
	return same;
}

/* Remember that @dkey now is version @v with @m (@v NULL: forget the
 * key, after a delete).  Without memory the slot is left empty: the next
 * delivery asks the server, as it would anyway. */
static void sent_note(struct dest_s3 *ds, const char *dkey,
		      const struct repl_version *v, const struct meta_hdrs *m)
{
	struct sent *e;
	char *k = NULL, *tg = NULL;

	if (v)
		k = strdup(dkey);
	if (v && m->tagging)
		tg = strdup(m->tagging);
	if (v && m->tagging && !tg) {	/* no memory: no note */
		free(k);
		k = NULL;
	}
	pthread_mutex_lock(&ds->sent_lock);
	e = sent_slot(ds, dkey);
	if (v || (e->dkey && !strcmp(e->dkey, dkey))) {
		free(e->dkey);
		free(e->tagging);
		e->dkey = k;
		e->tagging = k ? tg : NULL;
		if (!k)
			free(tg);
		k = NULL;
		if (v && e->dkey) {
			snprintf(e->vid, sizeof(e->vid), "%s",
				 v->obj.version_id);
			snprintf(e->mode, sizeof(e->mode), "%s", m->mode);
			snprintf(e->uid, sizeof(e->uid), "%s", m->uid);
			snprintf(e->gid, sizeof(e->gid), "%s", m->gid);
			snprintf(e->mtime, sizeof(e->mtime), "%s", m->mtime);
		}
	}
	pthread_mutex_unlock(&ds->sent_lock);
	free(k);
}

/* What the destination holds of a key now, as HEAD tells it. */
enum have { HAVE_OTHER, HAVE_SAME, HAVE_OLD_META };

/*
 * Whether the current object @dkey already is version @v (a delivery done
 * before a crash): HAVE_SAME with the same attributes, HAVE_OLD_META with
 * other ones (a chmod, chown or touch at the source sends the version
 * again), HAVE_OTHER when it is not there or we cannot tell (the PUT that
 * follows says why).  A transport error is returned (negative).  The
 * version ID at the destination goes to @dvid.
 */
static int already_there(struct dest_s3 *ds, const char *dkey,
			 const struct repl_version *v,
			 const struct meta_hdrs *m, char *dvid, size_t dvidlen,
			 char *err, size_t errlen)
{
	struct s3_request r = { .method = "HEAD", .key = dkey,
				.what = "HeadObject" };
	struct s3_response resp;
	int ret;

	ret = request(ds, &r, &resp, err, errlen);
	if (!ret && !strcmp(resp.meta_version_id, v->obj.version_id)) {
		snprintf(dvid, dvidlen, "%s", resp.version_id);
		ret = !strcmp(resp.meta_mode, m->mode) &&
		      !strcmp(resp.meta_uid, m->uid) &&
		      !strcmp(resp.meta_gid, m->gid) &&
		      !strcmp(resp.meta_mtime, m->mtime)
			      ? HAVE_SAME : HAVE_OLD_META;
	} else if (ret == -ECONNREFUSED || ret == -ECONNRESET ||
		   ret == -ETIMEDOUT || ret == -EHOSTUNREACH) {
		;	/* the PUT would fail the same way */
	} else {
		ret = HAVE_OTHER;
	}
	s3_response_release(&resp);
	return ret;
}

/* ---- tags of a version that is there ------------------------------ */

struct tagset {
	struct s3_kv *kv;	/* name and value malloc()ed */
	size_t n, cap;
};

static int tagset_add(void *arg, const char *key, const char *value)
{
	struct tagset *t = arg;
	struct s3_kv *kv;
	char *k, *v;

	if (t->n == t->cap) {
		kv = realloc(t->kv, (t->cap ? 2 * t->cap : 8) * sizeof(*kv));
		if (!kv)
			return -ENOMEM;
		t->kv = kv;
		t->cap = t->cap ? 2 * t->cap : 8;
	}
	k = strdup(key);
	v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	t->kv[t->n++] = (struct s3_kv){ k, v };
	return 0;
}

static void tagset_free(struct tagset *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free((char *)t->kv[i].name);
		free((char *)t->kv[i].value);
	}
	free(t->kv);
	memset(t, 0, sizeof(*t));
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct s3_kv *)a)->name,
		      ((const struct s3_kv *)b)->name);
}

static int tagset_eq(struct tagset *a, struct tagset *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	if (!a->n)
		return 1;	/* and no array to sort */
	qsort(a->kv, a->n, sizeof(*a->kv), kv_cmp);
	qsort(b->kv, b->n, sizeof(*b->kv), kv_cmp);
	for (i = 0; i < a->n; i++)
		if (strcmp(a->kv[i].name, b->kv[i].name) ||
		    strcmp(a->kv[i].value, b->kv[i].value))
			return 0;
	return 1;
}

/* The tags of @v (its user.s3.tag.* xattrs) into @t. */
static int tagset_of(const struct repl_version *v, struct tagset *t)
{
	static const char pfx[] = "user.s3.tag.";
	char *val;
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < v->nxattrs; i++) {
		const struct store_xattr *x = &v->xattrs[i];

		if (strncmp(x->name, pfx, sizeof(pfx) - 1) ||
		    !x->name[sizeof(pfx) - 1])
			continue;
		val = strndup(x->value ? x->value : "", x->size);
		if (!val)
			return -ENOMEM;
		ret = tagset_add(t, x->name + sizeof(pfx) - 1, val);
		free(val);
	}
	return ret;
}

/*
 * Make the tags of version @dvid of @dkey (its current one when @dvid is
 * "") those of @v: a version that is there already takes the tags set
 * since (a tag set after the close), and one that CopyObject made (RGW's
 * copy drops them) gets them back.  GetObjectTagging, then, only when
 * they differ, PutObjectTagging or DeleteObjectTagging; no new version.
 */
static int tags_sync(struct dest_s3 *ds, const char *dkey, const char *dvid,
		     const struct repl_version *v, char *err, size_t errlen)
{
	struct s3_kv q[] = { { "tagging", NULL }, { "versionId", dvid } };
	struct s3_kv h[1];
	struct s3_request r = { .method = "GET", .key = dkey, .query = q,
				.nquery = dvid[0] && strcmp(dvid, "null") ? 2
									  : 1,
				.what = "GetObjectTagging" };
	struct s3_response resp;
	struct tagset want = { 0 }, have = { 0 };
	char md5[S3_MD5_B64_SIZE];
	char *doc = NULL;
	int ret;

	ret = tagset_of(v, &want);
	if (ret)
		goto out;
	ret = request(ds, &r, &resp, err, errlen);
	/* RGW answers an object without tags with no document at all. */
	if (!ret && resp.body_len &&
	    s3_xml_tagset(resp.body, resp.body_len, tagset_add, &have))
		ret = dest_fail(err, errlen, -EBADMSG, "%s: %s: "
				"GetObjectTagging: not a Tagging document: "
				"%.200s", ds->url, v->key,
				resp.body ? resp.body : "(empty)");
	s3_response_release(&resp);
	if (ret || tagset_eq(&want, &have))
		goto out;
	r.body.fd = -1;
	if (!want.n) {
		r.method = "DELETE";
		r.what = "DeleteObjectTagging";
	} else {
		doc = s3_xml_tagging_doc(want.kv, want.n);
		ret = doc ? s3_md5_base64(doc, strlen(doc), md5) : -ENOMEM;
		if (ret) {
			dest_fail(err, errlen, ret, "out of memory");
			goto out;
		}
		h[0] = (struct s3_kv){ "content-md5", md5 };
		r.method = "PUT";
		r.what = "PutObjectTagging";
		r.headers = h;
		r.nheaders = 1;
		r.body.buf = doc;
		r.body.len = strlen(doc);
	}
	ret = request(ds, &r, &resp, err, errlen);
	s3_response_release(&resp);
	if (!ret)
		log_debug("%s: %s: version %s: %zu tags set", ds->url, v->key,
			  v->obj.version_id, want.n);
out:
	free(doc);
	tagset_free(&want);
	tagset_free(&have);
	return ret;
}

/*
 * New attributes for the version that is there: CopyObject of the object
 * onto itself with the metadata replaced, as S3 changes metadata (the
 * destination gets a new version; no data is sent).  -EINVAL when the
 * server will not copy it (over 5 GiB): the caller sends it again.
 */
static int put_meta(struct dest_s3 *ds, const char *dkey, const char *dvid,
		    const struct meta_hdrs *m, char *err, size_t errlen)
{
	struct s3_request r = { .method = "PUT", .key = dkey,
				.what = "CopyObject" };
	struct s3_response resp;
	struct s3_kv h[16];
	char *ekey = NULL, *src = NULL, root[64], code[64], msg[256];
	size_t i, n;
	int ret;

	ret = s3_uri_encode(dkey, 1, &ekey);
	if (ret)
		return dest_fail(err, errlen, ret, "out of memory");
	n = strlen(ds->bucket) + strlen(ekey) + strlen(dvid) + 16;
	src = malloc(n);
	if (!src) {
		ret = dest_fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(src, n, "/%s/%s%s%s", ds->bucket, ekey,
		 dvid[0] ? "?versionId=" : "", dvid);
	for (i = 0; i < m->n; i++)
		h[i] = m->kv[i];
	h[i++] = (struct s3_kv){ "x-amz-copy-source", src };
	h[i++] = (struct s3_kv){ "x-amz-metadata-directive", "REPLACE" };
	if (m->tagging)
		h[i++] = (struct s3_kv){ "x-amz-tagging-directive",
					 "REPLACE" };
	r.headers = h;
	r.nheaders = i;
	r.body.fd = -1;
	ret = request(ds, &r, &resp, err, errlen);
	/* As CompleteMultipartUpload, a 200 may carry an <Error>. */
	if (!ret && !s3_xml_root(resp.body, resp.body_len, root,
				 sizeof(root)) && !strcmp(root, "Error")) {
		s3_xml_error(resp.body, resp.body_len, code, sizeof(code), msg,
			     sizeof(msg), NULL, 0);
		ret = dest_fail(err, errlen, s3_error_errno(500, code),
				"remote %s: CopyObject %s/%s: %s%s%s",
				ds->remote, ds->bucket, dkey, code,
				msg[0] ? ": " : "", msg);
	}
	s3_response_release(&resp);
out:
	free(src);
	free(ekey);
	return ret;
}

/* MD5 (base64) and SHA-256 (hex) of @len bytes of @fd from @off. */
static int hash_range(int fd, off_t off, uint64_t len, char *buf,
		      size_t bufsize, char md5[S3_MD5_B64_SIZE],
		      char sha[S3_SHA256_HEX_SIZE])
{
	struct s3_digest *dg = NULL;
	uint64_t done = 0;
	ssize_t n;
	size_t want;
	int ret;

	ret = s3_digest_new(&dg);
	while (!ret && done < len) {
		want = len - done < bufsize ? (size_t)(len - done) : bufsize;
		n = pread(fd, buf, want, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		ret = s3_digest_update(dg, buf, (size_t)n);
		done += (uint64_t)n;
	}
	if (!ret)
		ret = s3_digest_final(dg, sha, md5);
	s3_digest_free(dg);
	return ret;
}

static int is_sha_hex(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* ---- one PUT -------------------------------------------------------- */

static int put_single(struct dest_s3 *ds, const struct repl_version *v,
		      const char *dkey, struct meta_hdrs *m, char *err,
		      size_t errlen)
{
	struct s3_request r = { .method = "PUT", .key = dkey,
				.what = "PutObject" };
	struct s3_response resp;
	struct s3_kv h[12];
	char md5[S3_MD5_B64_SIZE], sha[S3_SHA256_HEX_SIZE];
	char *buf = NULL;
	uint64_t len = 0;
	ssize_t n;
	size_t i;
	int ret;

	r.body.fd = -1;
	if (v->obj.kind == STORE_SYMLINK) {
		r.body.buf = v->link_target ? v->link_target : "";
		len = strlen(r.body.buf);
	} else if (v->obj.kind == STORE_FILE && v->obj.size) {
		len = v->obj.size;
		if (v->fd < 0)
			return dest_fail(err, errlen, -EIO,
					 "%s: %s: no content to send",
					 ds->url, v->key);
	}
	r.body.len = len;
	if (len && !r.body.buf && len <= SMALL_MAX) {
		/* Small: read once, send from memory. */
		buf = malloc((size_t)len);
		if (!buf)
			return dest_fail(err, errlen, -ENOMEM,
					 "out of memory");
		do {
			n = pread(v->fd, buf, (size_t)len, 0);
		} while (n < 0 && errno == EINTR);
		if (n != (ssize_t)len) {
			ret = n < 0 ? -errno : -EIO;
			dest_fail(err, errlen, ret, "%s: %s: cannot read the "
				  "source: %s", ds->url, v->key,
				  n < 0 ? strerror(errno) : "short read");
			goto out;
		}
		r.body.buf = buf;
	}
	if (r.body.buf || !len) {
		ret = s3_md5_base64(r.body.buf ? r.body.buf : "",
				    (size_t)len, md5);
		if (!ret)
			ret = s3_sha256_hex(r.body.buf ? r.body.buf : "",
					    (size_t)len, sha);
	} else {
		buf = malloc(HASH_CHUNK);
		ret = buf ? hash_range(v->fd, 0, len, buf, HASH_CHUNK, md5,
				       sha)
			  : -ENOMEM;
		free(buf);
		buf = NULL;
		r.body.fd = v->fd;
		r.body.off = 0;
	}
	if (ret) {
		dest_fail(err, errlen, ret, "%s: %s: cannot hash the source: "
			  "%s", ds->url, v->key, strerror(-ret));
		goto out;
	}
	/* The store's hash is the content's: a blob that changed on disk
	 * no longer matches it, and the server refuses it. */
	if (v->obj.kind == STORE_FILE && len && is_sha_hex(v->obj.sha256) &&
	    strcmp(sha, v->obj.sha256)) {
		ret = dest_fail(err, errlen, -EBADMSG,
				"%s: %s: the source's content does not match "
				"its SHA-256 %s (a damaged blob: no retry "
				"heals it)", ds->url, v->key, v->obj.sha256);
		goto out;
	}
	for (i = 0; i < m->n; i++)
		h[i] = m->kv[i];
	h[i++] = (struct s3_kv){ "content-md5", md5 };
	r.headers = h;
	r.nheaders = i;
	r.payload_hash = sha;
	ret = request(ds, &r, &resp, err, errlen);
	if (!ret)
		ret = versioned(ds, &resp, "PutObject", dkey, err, errlen);
	if (!ret)
		log_debug("%s: %s: version %s stored as %s", ds->url, v->key,
			  v->obj.version_id,
			  resp.version_id[0] ? resp.version_id : "null");
	s3_response_release(&resp);
out:
	free(buf);
	return ret;
}

/* ---- multipart upload ----------------------------------------------- */

static int abort_upload(struct dest_s3 *ds, const char *dkey,
			const char *upload_id, char *err, size_t errlen)
{
	struct s3_kv q[] = { { "uploadId", upload_id } };
	struct s3_request r = { .method = "DELETE", .key = dkey, .query = q,
				.nquery = 1,
				.what = "AbortMultipartUpload" };
	struct s3_response resp;
	int ret;

	ret = request(ds, &r, &resp, err, errlen);
	if (ret == -EAGAIN && !strcmp(resp.code, "NoSuchUpload"))
		ret = 0;	/* gone already (or completed) */
	s3_response_release(&resp);
	return ret;
}

/* Forget upload @upload_id of @dkey in the home store: it was completed
 * or aborted.  A failure only makes the next delivery of the key abort
 * it again, which S3 answers with NoSuchUpload. */
static void upload_forget(struct dest_s3 *ds, const char *dkey,
			  const char *upload_id)
{
	int ret;

	if (!ds->home)
		return;
	ret = store_repl_upload_forget(ds->home, ds->url, dkey, upload_id);
	if (ret)
		log_warn("%s: %s: cannot forget multipart upload %s in the "
			 "store (%s); the next delivery of the key aborts it "
			 "again", ds->url, dkey, upload_id, strerror(-ret));
}

struct abort_ctx {
	struct dest_s3 *ds;
	const char *dkey;
	int aborted;
	int failed;	/* an abort failed, with its sentence in msg */
	char *msg;
	size_t msglen;
};

static int noted_cb(void *arg, const char *upload_id)
{
	struct abort_ctx *a = arg;
	int ret;

	ret = abort_upload(a->ds, a->dkey, upload_id, a->msg, a->msglen);
	if (ret) {
		a->failed = 1;
		return ret;
	}
	upload_forget(a->ds, a->dkey, upload_id);
	a->aborted++;
	return 0;
}

/*
 * Abort the multipart uploads of @dkey that a delivery of ours left
 * behind (a kill -9, a crash, a give-up whose abort failed): those noted
 * in the home store.  Any other upload of the key is another client's
 * (aws s3 cp, rclone, a replicafs of another store), under way now, and
 * is left alone.
 */
static int abort_ours(struct dest_s3 *ds, const char *dkey, char *err,
		      size_t errlen)
{
	struct abort_ctx a = { ds, dkey, 0, 0, err, errlen };
	int ret;

	if (!ds->home)
		return 0;
	ret = store_repl_uploads(ds->home, ds->url, dkey, noted_cb, &a);
	if (a.aborted)
		log_info("%s: %s: aborted %d multipart upload(s) left by an "
			 "earlier attempt", ds->url, dkey, a.aborted);
	if (ret && !a.failed)
		dest_fail(err, errlen, ret, "%s: %s: cannot read the "
			  "multipart uploads noted in the store: %s", ds->url,
			  dkey, strerror(-ret));
	return ret;
}

/* The state the part workers of one upload share. */
struct mp {
	struct dest_s3 *ds;
	const struct repl_version *v;
	const char *dkey;
	const char *upload_id;
	uint64_t part_size;
	unsigned nparts;
	char (*etags)[128];	/* one per part; written by its worker */

	pthread_mutex_t lock;
	unsigned next;		/* the next part to send, 1-based;
				 * protected by lock */
	int failed;		/* the first error, negative; protected by
				 * lock */
	char msg[512];		/* its sentence; protected by lock */
};

static int send_part(struct mp *mp, unsigned n, char *buf, size_t bufsize,
		     char *err, size_t errlen)
{
	char num[16], md5[S3_MD5_B64_SIZE], sha[S3_SHA256_HEX_SIZE];
	struct s3_kv q[2], h[1];
	struct s3_request r = { .method = "PUT", .key = mp->dkey, .query = q,
				.nquery = 2, .headers = h, .nheaders = 1,
				.what = "UploadPart" };
	struct s3_response resp;
	off_t off = (off_t)(n - 1) * (off_t)mp->part_size;
	uint64_t len = mp->part_size;
	int ret, try;

	if ((uint64_t)off + len > mp->v->obj.size)
		len = mp->v->obj.size - (uint64_t)off;
	ret = hash_range(mp->v->fd, off, len, buf, bufsize, md5, sha);
	if (ret)
		return dest_fail(err, errlen, ret, "%s: %s: cannot read part "
				 "%u of the source: %s", mp->ds->url,
				 mp->v->key, n, strerror(-ret));
	snprintf(num, sizeof(num), "%u", n);
	q[0] = (struct s3_kv){ "partNumber", num };
	q[1] = (struct s3_kv){ "uploadId", mp->upload_id };
	h[0] = (struct s3_kv){ "content-md5", md5 };
	r.body.fd = mp->v->fd;
	r.body.off = off;
	r.body.len = len;
	r.payload_hash = sha;
	for (try = 1; try <= PART_TRIES; try++) {
		ret = request(mp->ds, &r, &resp, err, errlen);
		if (!ret)
			snprintf(mp->etags[n - 1], sizeof(mp->etags[0]), "%s",
				 resp.etag);
		s3_response_release(&resp);
		if (!ret && !mp->etags[n - 1][0])
			ret = dest_fail(err, errlen, -EIO, "%s: %s: part %u: "
					"the answer has no ETag", mp->ds->url,
					mp->v->key, n);
		if (!ret || dest_error_permanent(ret) || ret == -ECONNREFUSED)
			break;
		pthread_mutex_lock(&mp->lock);
		if (mp->failed) {
			pthread_mutex_unlock(&mp->lock);
			break;
		}
		pthread_mutex_unlock(&mp->lock);
		if (try < PART_TRIES)
			usleep(200000 * try);
	}
	return ret;
}

static void *part_worker(void *arg)
{
	struct mp *mp = arg;
	char msg[512], *buf;
	unsigned n;
	int ret = 0;

	buf = malloc(HASH_CHUNK);
	if (!buf) {
		pthread_mutex_lock(&mp->lock);
		if (!mp->failed) {
			mp->failed = -ENOMEM;
			snprintf(mp->msg, sizeof(mp->msg), "out of memory");
		}
		pthread_mutex_unlock(&mp->lock);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&mp->lock);
		if (mp->failed || mp->next > mp->nparts) {
			pthread_mutex_unlock(&mp->lock);
			break;
		}
		n = mp->next++;
		pthread_mutex_unlock(&mp->lock);
		ret = send_part(mp, n, buf, HASH_CHUNK, msg, sizeof(msg));
		if (ret) {
			pthread_mutex_lock(&mp->lock);
			if (!mp->failed) {
				mp->failed = ret;
				memcpy(mp->msg, msg, sizeof(msg));
			}
			pthread_mutex_unlock(&mp->lock);
			break;
		}
	}
	free(buf);
	return NULL;
}

/* The CompleteMultipartUpload document of @mp, malloc()ed. */
static char *complete_doc(const struct mp *mp)
{
	static const char head[] = "<CompleteMultipartUpload>";
	static const char tail[] = "</CompleteMultipartUpload>";
	size_t cap = sizeof(head) + sizeof(tail), len = 0;
	const char *e;
	unsigned i;
	char *doc;

	/* Each part's element, its ETag escaped at worst 6 bytes a byte. */
	for (i = 0; i < mp->nparts; i++)
		cap += 64 + 6 * strlen(mp->etags[i]);
	doc = malloc(cap);
	if (!doc)
		return NULL;
	len += (size_t)snprintf(doc, cap, "%s", head);
	for (i = 0; i < mp->nparts; i++) {
		len += (size_t)snprintf(doc + len, cap - len,
					"<Part><PartNumber>%u</PartNumber>"
					"<ETag>", i + 1);
		/* ETags are hex in quotes; escape what XML would not take. */
		for (e = mp->etags[i]; *e; e++) {
			if (*e == '&')
				len += (size_t)snprintf(doc + len, cap - len,
							"&amp;");
			else if (*e == '<')
				len += (size_t)snprintf(doc + len, cap - len,
							"&lt;");
			else if (*e == '"')
				len += (size_t)snprintf(doc + len, cap - len,
							"&quot;");
			else
				doc[len++] = *e;
		}
		len += (size_t)snprintf(doc + len, cap - len,
					"</ETag></Part>");
	}
	snprintf(doc + len, cap - len, "%s", tail);
	return doc;
}

static int complete(struct dest_s3 *ds, struct mp *mp, char *err,
		    size_t errlen)
{
	struct s3_kv q[] = { { "uploadId", mp->upload_id } };
	struct s3_kv h[] = { { "content-type", "application/xml" } };
	struct s3_request r = { .method = "POST", .key = mp->dkey,
				.query = q, .nquery = 1, .headers = h,
				.nheaders = 1,
				.what = "CompleteMultipartUpload" };
	struct s3_response resp;
	char root[64], code[64], message[256];
	char *doc = complete_doc(mp);
	int ret;

	if (!doc)
		return dest_fail(err, errlen, -ENOMEM, "out of memory");
	r.body.buf = doc;
	r.body.fd = -1;
	r.body.len = strlen(doc);
	ret = request(ds, &r, &resp, err, errlen);
	/* A 200 may still carry an <Error>: S3 sends the status before it
	 * knows how the upload ends. */
	if (!ret && !s3_xml_root(resp.body, resp.body_len, root,
				 sizeof(root)) && !strcmp(root, "Error")) {
		s3_xml_error(resp.body, resp.body_len, code, sizeof(code),
			     message, sizeof(message), NULL, 0);
		ret = s3_error_errno(500, code);
		dest_fail(err, errlen, ret, "remote %s: "
			  "CompleteMultipartUpload %s/%s: %s%s%s", ds->remote,
			  ds->bucket, mp->dkey, code, message[0] ? ": " : "",
			  message);
	}
	if (!ret)
		ret = versioned(ds, &resp, "CompleteMultipartUpload",
				mp->dkey, err, errlen);
	if (!ret)
		log_debug("%s: %s: version %s stored in %u parts as %s",
			  ds->url, mp->v->key, mp->v->obj.version_id,
			  mp->nparts,
			  resp.version_id[0] ? resp.version_id : "null");
	s3_response_release(&resp);
	free(doc);
	return ret;
}

static int put_multipart(struct dest_s3 *ds, const struct repl_version *v,
			 const char *dkey, struct meta_hdrs *m, char *err,
			 size_t errlen)
{
	struct s3_kv q[] = { { "uploads", NULL } };
	struct s3_request r = { .method = "POST", .key = dkey, .query = q,
				.nquery = 1, .headers = m->kv,
				.nheaders = m->n,
				.what = "CreateMultipartUpload" };
	struct s3_response resp;
	struct mp mp = { 0 };
	char upload_id[512], msg[512];
	pthread_t th[S3_PARALLEL_MAX];
	int nth = 0, i, ret, aret = 0;
	struct setup *su;
	uint64_t ps;

	if (v->fd < 0)
		return dest_fail(err, errlen, -EIO, "%s: %s: no content to "
				 "send", ds->url, v->key);
	r.body.fd = -1;
	ret = request(ds, &r, &resp, err, errlen);
	if (!ret &&
	    s3_xml_text(resp.body, resp.body_len, "UploadId", upload_id,
			sizeof(upload_id)))
		ret = dest_fail(err, errlen, -EIO, "%s: %s: "
				"CreateMultipartUpload answered no UploadId",
				ds->url, v->key);
	s3_response_release(&resp);
	if (ret)
		return ret;
	/* Noted before any part goes, so that a kill -9 from here on leaves
	 * an upload that the next delivery of the key knows to be ours.  (A
	 * crash before the note leaves one to the bucket's lifecycle rule,
	 * AbortIncompleteMultipartUpload.)  Not noted, it is not sent. */
	if (ds->home) {
		ret = store_repl_upload_note(ds->home, ds->url, dkey,
					     upload_id);
		if (ret) {
			dest_fail(err, errlen, ret, "%s: %s: cannot note the "
				  "multipart upload in the store: %s", ds->url,
				  v->key, strerror(-ret));
			if (abort_upload(ds, dkey, upload_id, msg,
					 sizeof(msg)))
				log_warn("%s: %s: multipart upload %s, which "
					 "could not be noted, could not be "
					 "aborted either (%s); the bucket's "
					 "lifecycle rule is left to do it",
					 ds->url, v->key, upload_id, msg);
			return ret;
		}
	}

	/* Parts of the remote's size, larger when 10000 would not do. */
	su = setup_of(ds);
	ps = su->part_size;
	if ((v->obj.size + ps - 1) / ps > S3_PARTS_MAX) {
		ps = (v->obj.size + S3_PARTS_MAX - 1) / S3_PARTS_MAX;
		ps = (ps + (1 << 20) - 1) & ~((uint64_t)(1 << 20) - 1);
	}
	mp.ds = ds;
	mp.v = v;
	mp.dkey = dkey;
	mp.upload_id = upload_id;
	mp.part_size = ps;
	mp.nparts = (unsigned)((v->obj.size + ps - 1) / ps);
	mp.next = 1;
	pthread_mutex_init(&mp.lock, NULL);
	mp.etags = calloc(mp.nparts, sizeof(*mp.etags));
	if (!mp.etags) {
		mp.failed = -ENOMEM;
		snprintf(mp.msg, sizeof(mp.msg), "out of memory");
	}
	/* This thread sends parts too, beside parallel - 1 others. */
	for (i = 0; !mp.failed && i < su->parallel - 1 &&
		    (unsigned)i + 1 < mp.nparts; i++) {
		if (pthread_create(&th[nth], NULL, part_worker, &mp))
			break;	/* fewer threads: slower, still right */
		nth++;
	}
	if (!mp.failed)
		part_worker(&mp);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	ret = mp.failed;
	if (!ret)
		ret = complete(ds, &mp, mp.msg, sizeof(mp.msg));
	if (ret) {
		dest_fail(err, errlen, ret, "%s", mp.msg);
		aret = abort_upload(ds, dkey, upload_id, msg, sizeof(msg));
		if (aret && ds->home)
			log_warn("%s: %s: the upload could not be aborted now "
				 "(%s); the next delivery of the key aborts it",
				 ds->url, v->key, msg);
		else if (aret)
			log_warn("%s: %s: the upload could not be aborted (%s); "
				 "the bucket's lifecycle rule is left to do it",
				 ds->url, v->key, msg);
	}
	if (!ret || !aret)
		upload_forget(ds, dkey, upload_id);
	pthread_mutex_destroy(&mp.lock);
	free(mp.etags);
	return ret;
}

/* ---- the operations ------------------------------------------------- */

static int s3_put(struct dest *d, const struct repl_version *v, char *err,
		  size_t errlen)
{
	struct dest_s3 *ds = to_s3(d);
	struct meta_hdrs m;
	enum store_kind k = v->obj.kind;
	char *dkey = NULL, dvid[128] = "";
	int ret, have, from_sent;

	if (k != STORE_FILE && k != STORE_SYMLINK && k != STORE_DIR)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: version %s of kind %d is not data",
				 ds->url, v->key, v->obj.version_id, (int)k);
	if (k == STORE_DIR && v->key[strlen(v->key) - 1] != '/')
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: a directory marker's key ends in "
				 "'/'", ds->url, v->key);
	ret = refresh(ds, err, errlen);
	if (!ret)
		ret = versioning_guard(ds, err, errlen);
	if (ret)
		return ret;
	dkey = dest_key(ds, v->key);
	if (!dkey)
		return dest_fail(err, errlen, -ENOMEM, "out of memory");
	ret = abort_ours(ds, dkey, err, errlen);
	if (ret)
		goto out;
	ret = meta_hdrs_init(&m, v);
	if (ret) {
		dest_fail(err, errlen, ret, "%s: %s: %s", ds->url, v->key,
			  strerror(-ret));
		goto out;
	}
	from_sent = sent_already(ds, dkey, v, &m);
	if (from_sent)
		have = HAVE_SAME;
	else
		have = already_there(ds, dkey, v, &m, dvid, sizeof(dvid), err,
				     errlen);
	if (have < 0) {
		ret = have;
	} else if (have == HAVE_SAME) {
		log_debug("%s: %s: version %s is there already", ds->url,
			  v->key, v->obj.version_id);
		/* Asked of the server: the tags may have changed since. */
		ret = from_sent ? 0 : tags_sync(ds, dkey, dvid, v, err,
						errlen);
	} else {
		ret = -EINVAL;
		if (have == HAVE_OLD_META) {
			ret = put_meta(ds, dkey, dvid, &m, err, errlen);
			if (!ret)
				ret = tags_sync(ds, dkey, "", v, err, errlen);
			if (!ret)
				log_debug("%s: %s: version %s: attributes "
					  "changed", ds->url, v->key,
					  v->obj.version_id);
		}
		/* Not there, or too large to copy: send it. */
		if (ret == -EINVAL && k == STORE_FILE &&
		    v->obj.size > setup_of(ds)->threshold)
			ret = put_multipart(ds, v, dkey, &m, err, errlen);
		else if (ret == -EINVAL)
			ret = put_single(ds, v, dkey, &m, err, errlen);
	}
	if (!ret)
		sent_note(ds, dkey, v, &m);
	meta_hdrs_release(&m);
out:
	free(dkey);
	return ret;
}

/* Whether the newest entry of @dkey is a delete marker already. */
static int deleted_already(struct dest_s3 *ds, const char *dkey, char *err,
			   size_t errlen)
{
	struct s3_kv q[] = { { "versions", NULL }, { "prefix", dkey },
			     { "max-keys", "1" } };
	struct s3_request r = { .method = "GET", .query = q, .nquery = 3,
				.what = "ListObjectVersions" };
	struct s3_response resp;
	char key[1100];
	int ret, dm = 0, latest = 0;

	ret = request(ds, &r, &resp, err, errlen);
	if (!ret)
		ret = s3_xml_first_version(resp.body, resp.body_len, key,
					   sizeof(key), &dm, &latest) == 0 &&
		      !strcmp(key, dkey) && dm && latest;
	s3_response_release(&resp);
	return ret;
}

static int s3_delete_marker(struct dest *d, const struct repl_version *v,
			    char *err, size_t errlen)
{
	struct dest_s3 *ds = to_s3(d);
	struct s3_request r = { .method = "DELETE", .what = "DeleteObject" };
	struct s3_response resp;
	char *dkey;
	int ret;

	if (v->obj.kind != STORE_DELETE_MARKER)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: version %s is not a delete marker",
				 ds->url, v->key, v->obj.version_id);
	ret = refresh(ds, err, errlen);
	if (!ret)
		ret = versioning_guard(ds, err, errlen);
	if (ret)
		return ret;
	dkey = dest_key(ds, v->key);
	if (!dkey)
		return dest_fail(err, errlen, -ENOMEM, "out of memory");
	ret = abort_ours(ds, dkey, err, errlen);
	if (!ret)
		ret = deleted_already(ds, dkey, err, errlen);
	if (ret == 1) {
		log_info("%s: %s: deleted there already", ds->url, v->key);
		ret = 0;
	} else if (!ret) {
		r.key = dkey;
		ret = request(ds, &r, &resp, err, errlen);
		if (!ret)
			ret = versioned(ds, &resp, "DeleteObject", dkey, err,
					errlen);
		if (!ret)
			log_debug("%s: %s: delete marker %s made", ds->url,
				  v->key, resp.version_id);
		s3_response_release(&resp);
	}
	if (ret >= 0)
		sent_note(ds, dkey, NULL, NULL);
	free(dkey);
	return ret;
}

static int s3_check(struct dest *d, char *err, size_t errlen)
{
	struct dest_s3 *ds = to_s3(d);
	struct s3_kv ql[] = { { "location", NULL } };
	struct s3_request r = { .method = "GET", .query = ql, .nquery = 1,
				.what = "GetBucketLocation" };
	struct s3_response resp;
	char loc[64] = "";
	struct setup *su;
	const char *region;
	int ret;

	ret = refresh(ds, err, errlen);
	if (!ret)
		ret = versioning_get(ds, -EINVAL, err, errlen);
	if (ret)
		return ret;
	su = setup_of(ds);
	region = s3_client_region(su->client);
	ret = request(ds, &r, &resp, err, errlen);
	if (!ret)
		s3_xml_text(resp.body, resp.body_len, "LocationConstraint",
			    loc, sizeof(loc));
	s3_response_release(&resp);
	if (ret == -EACCES) {
		/* A policy may allow the writes and not this: not fatal. */
		log_info("%s: the bucket's region cannot be read (%s); "
			 "assuming %s", ds->url, err, region);
		return 0;
	}
	if (ret)
		return ret;
	if (!loc[0])
		snprintf(loc, sizeof(loc), "us-east-1");
	else if (!strcmp(loc, "EU"))
		snprintf(loc, sizeof(loc), "eu-west-1");
	if (!strcmp(loc, region))
		return 0;
	if (su->region_profile)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: bucket %s is in region %s, but remote %s "
				 "is for region %s (region = %s in profile %s "
				 "of the AWS config, or a remote with "
				 "--region %s)", ds->url, ds->bucket, loc,
				 ds->remote, region, loc, su->region_profile,
				 loc);
	return dest_fail(err, errlen, -EINVAL,
			 "%s: bucket %s is in region %s, but remote %s is for "
			 "region %s (replicafs remote add ... --region %s)",
			 ds->url, ds->bucket, loc, ds->remote, region, loc);
}

static void s3_close(struct dest *d)
{
	struct dest_s3 *ds = to_s3(d);
	size_t i;

	if (!ds)
		return;
	setup_free(ds->su);
	if (ds->sent) {
		for (i = 0; i < SENT_SLOTS; i++) {
			free(ds->sent[i].dkey);
			free(ds->sent[i].tagging);
		}
		free(ds->sent);
	}
	pthread_mutex_destroy(&ds->sent_lock);
	pthread_mutex_destroy(&ds->lock);
	free(ds->url);
	free(ds->remote);
	free(ds->bucket);
	free(ds->prefix);
	free(ds->remotes_path);
	free(ds->creds_source);
	free(ds->creds_hint);
	free(ds->unread);
	free(ds);
}

/*
 * s3://REMOTE/BUCKET[/PREFIX]: find the remote, read the AWS files for
 * its profile, make its client.  The caller frees *out with s3_close().
 * Does no network I/O: check() does.
 */
const char *dest_s3_endpoint(const struct dest *d)
{
	return d->ops == &dest_s3_ops
		       ? setup_of((struct dest_s3 *)(void *)d)->endpoint
		       : NULL;
}

static int s3_open(const char *url, struct store *home, struct dest **out,
		   char *err, size_t errlen)
{
	struct repl_dest_url u = { 0 };
	struct s3_aws_profile p = { 0 };
	struct dest_s3 *ds = NULL;
	struct setup *su = NULL;
	char path[PATH_MAX];
	size_t n;
	int ret;

	*out = NULL;
	p.path_style = -1;
	ret = repl_dest_url_parse(url, &u, err, errlen);
	if (ret)
		return ret;
	if (u.kind != REPL_DEST_S3) {
		ret = dest_fail(err, errlen, -EINVAL, "%s: not an s3:// URL",
				url);
		goto out;
	}
	ret = s3_remotes_path(path, sizeof(path));
	if (ret) {
		dest_fail(err, errlen, ret, "%s: cannot find the remotes "
			  "file: %s", url, strerror(-ret));
		goto out;
	}

	ds = calloc(1, sizeof(*ds));
	if (!ds) {
		ret = dest_fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	ds->d.ops = &dest_s3_ops;
	ds->home = home;
	pthread_mutex_init(&ds->lock, NULL);
	pthread_mutex_init(&ds->sent_lock, NULL);
	ds->sent = calloc(SENT_SLOTS, sizeof(*ds->sent));
	n = strlen(u.prefix) + 2;
	ds->prefix = malloc(n);
	ds->url = strdup(u.url);
	ds->remote = strdup(u.remote);
	ds->bucket = strdup(u.bucket);
	ds->remotes_path = strdup(path);
	if (!ds->sent || !ds->prefix || !ds->url || !ds->remote ||
	    !ds->bucket || !ds->remotes_path) {
		ret = dest_fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	n = strlen(u.prefix);
	snprintf(ds->prefix, n + 2, "%s%s", u.prefix,
		 n && u.prefix[n - 1] != '/' ? "/" : "");
	/* Stamped before they are read: a change meanwhile is read again. */
	stamps_now(ds, ds->stamps);
	memcpy(ds->seen, ds->stamps, sizeof(ds->seen));
	ds->checked_ns = mono_ns();
	ret = setup_make(ds->url, ds->remote, path, &su, &p, err, errlen);
	if (ret)
		goto out;
	ds->su = su;
	ret = load_creds(ds, su, &p, err, errlen);
	if (ret)
		goto out;
	log_debug("%s: remote %s at %s, region %s, keys from %s", ds->url,
		  ds->remote, su->endpoint, s3_client_region(su->client),
		  ds->creds_source ? ds->creds_source : "nowhere");
	*out = &ds->d;
	ds = NULL;
out:
	if (ds)
		s3_close(&ds->d);
	s3_aws_profile_release(&p);
	repl_dest_url_release(&u);
	return ret;
}

/* dest_ops.changed(): the remotes file or an AWS file changed since the
 * last call.  Reads nothing: the next operation's refresh() does. */
static int s3_changed(struct dest *d)
{
	struct dest_s3 *ds = to_s3(d);
	struct stamp now[3];
	int i, changed = 0;

	stamps_now(ds, now);
	pthread_mutex_lock(&ds->lock);
	for (i = 0; i < 3; i++)
		if (!stamp_eq(&now[i], &ds->seen[i]))
			changed = 1;
	memcpy(ds->seen, now, sizeof(now));
	pthread_mutex_unlock(&ds->lock);
	return changed;
}

const struct dest_ops dest_s3_ops = {
	.scheme = "s3",
	.last_is_newest = 1,
	.open = s3_open,
	.check = s3_check,
	.put = s3_put,
	.delete_marker = s3_delete_marker,
	.changed = s3_changed,
	.close = s3_close,
};
