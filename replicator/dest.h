/*
 * dest.h - destinations of replication, one file per kind.
 *
 * The engine (replicator/engine.c) knows a destination only through the
 * small table of functions below, as Redis's rio knows its backends, so a
 * new kind is one new file and one line in dest.c:
 *
 *   dest_store.c   store:///path/to/store/BUCKET   another replicafs store
 *   dest_dir.c     dir:///path/to/dir              a plain directory
 *   dest_s3.c      s3://REMOTE/BUCKET[/PREFIX]     an S3 bucket
 *
 * A struct dest is opened once per URL and then used by several worker
 * threads at once: every operation must be safe to call concurrently (for
 * different keys; the engine never sends two versions of one key to one
 * destination at the same time).
 *
 * Errors are negative errnos, with a sentence in @err for the user (it is
 * kept as the version's last error and shown by `replicafs status`).
 * dest_error_permanent() tells the engine which ones will not heal by
 * retrying: those fail fast.
 */
#ifndef REPLICAFS_DEST_H
#define REPLICAFS_DEST_H

#include "store/store.h"

#include <stddef.h>

struct dest;

/* One version of one key, as the engine hands it to a destination.  All
 * pointers are owned by the engine and valid during the call only. */
struct repl_version {
	const char *bucket;	/* the source bucket */
	const char *key;	/* the key, the same at the destination;
				 * a directory marker ends in '/' */
	struct store_obj obj;	/* kind FILE, SYMLINK, DIR (a marker) or
				 * DELETE_MARKER; version_id, sha256, size,
				 * meta and created_ns of the source */
	const char *link_target;/* SYMLINK: the target, else NULL */
	int fd;			/* FILE: the content, read-only, read it
				 * with pread() from offset 0 (shared with
				 * nobody else); -1 otherwise */
	int fd_is_blob;		/* @fd is a store's immutable blob named by
				 * obj.sha256 (see store_replica) */
	const struct store_xattr *xattrs;	/* user xattrs of the version */
	size_t nxattrs;
	unsigned gone_parents;	/* DELETE_MARKER: how many of the key's
				 * parent folders, deepest first, the source
				 * no longer has (no current key below them,
				 * no marker) when it is delivered, for a
				 * destination with folders, which removes
				 * them once empty; else 0 */
};

struct dest_ops {
	const char *scheme;	/* "store", "dir", "s3" */
	int folders;		/* folders are real here (a directory tree):
				 * delete markers come with gone_parents */
	int last_is_newest;	/* the version put last becomes the current
				 * one there, whatever its age (S3) */
	/*
	 * Parse @url (its scheme is ours) and open the destination; on
	 * success *out is freed by close().  Does not check that the
	 * destination is usable: check() does.  @home (NULL when the
	 * destination is opened only to be checked) is the store whose
	 * engine delivers here: a kind that must remember something of its
	 * own across a crash keeps it in @home's catalog (S3: the multipart
	 * uploads it has under way, store_repl_upload_note()), and a kind
	 * with folders reads there the source's folders above a key that it
	 * must make or mark (dir://, store://: dest_home_folder()).  Not
	 * owned: it outlives the destination.
	 */
	int (*open)(const char *url, struct store *home, struct dest **out,
		    char *err, size_t errlen);
	/*
	 * Whether the destination exists and can take versions: used when a
	 * rule is put (refused on failure), and before a batch job.  For a
	 * store: the store and bucket exist and the bucket's versioning is
	 * Enabled.  For a directory: it exists and is writable.
	 */
	int (*check)(struct dest *d, char *err, size_t errlen);
	/* Deliver a data version (FILE, SYMLINK, or DIR marker).  Delivering
	 * one twice (after a crash) must leave one copy. */
	int (*put)(struct dest *d, const struct repl_version *v, char *err,
		   size_t errlen);
	/* Deliver a delete marker (v->obj.kind == STORE_DELETE_MARKER). */
	int (*delete_marker)(struct dest *d, const struct repl_version *v,
			     char *err, size_t errlen);
	/*
	 * Optional: deliver @n versions at once (data versions and delete
	 * markers, of different keys), as many put() and delete_marker()
	 * calls would, for a destination where one call for many costs less
	 * (one transaction).  @rets[i] gets what that call would return, and
	 * on an error its sentence goes to @errs + i * @errlen.
	 */
	void (*put_many)(struct dest *d, const struct repl_version *v,
			 size_t n, int *rets, char *errs, size_t errlen);
	/*
	 * Make durable everything put() and delete_marker() returned before
	 * this call began (NULL: each of them is durable when it returns).
	 * The engine calls it once per claim of deliveries, before it records
	 * them COMPLETED, so a destination may leave its syncs to it and pay
	 * one for many versions.  An error makes those deliveries retried.
	 */
	int (*sync)(struct dest *d, char *err, size_t errlen);
	/*
	 * Optional: whether what the destination was opened with outside
	 * the URL (for S3: the remotes file and the AWS files) changed since
	 * the last call, or since open.  The engine asks once a second, and
	 * then makes the deliveries there that wait for a retry due at
	 * once: a remote added again, or moved to an endpoint that answers,
	 * is used without waiting out the backoff.
	 */
	int (*changed)(struct dest *d);
	void (*close)(struct dest *d);
};

/* The table of a destination; every kind starts with it. */
struct dest {
	const struct dest_ops *ops;
};

/*
 * Open the destination named by @url, choosing the kind by its scheme;
 * -EINVAL with a sentence in @err for an unknown scheme or a malformed
 * URL.  The caller frees *out with dest_close().  Opened so, with no home
 * store, it is for check(): an S3 destination then notes no upload, and
 * aborts none before a delivery.
 */
int dest_open(const char *url, struct dest **out, char *err, size_t errlen);

/* dest_open() for the engine of store @home, which must outlive the
 * destination (see dest_ops.open). */
int dest_open_home(const char *url, struct store *home, struct dest **out,
		   char *err, size_t errlen);
void dest_close(struct dest *d);

/* The endpoint an open S3 destination sends to ("https://HOST[:PORT]", as
 * resolved from its remote or the AWS configuration); NULL for another
 * kind. */
const char *dest_s3_endpoint(const struct dest *d);

/* Whether error @err (negative errno) cannot heal by retrying: permission
 * denied, a missing destination or bucket, a read-only file system, a bad
 * argument.  ENOSPC, EIO, timeouts and refused connections can heal. */
int dest_error_permanent(int err);

extern const struct dest_ops dest_store_ops;
extern const struct dest_ops dest_dir_ops;
extern const struct dest_ops dest_s3_ops;

#endif
