/*
 * blob_i.h - blobs, staging files and trash: the file side of the store
 * (blob.c).  See the crash invariants in store.c for the order in which
 * these are called around a transaction.
 */
#ifndef REPLICAFS_BLOB_I_H
#define REPLICAFS_BLOB_I_H

#include "store/store_i.h"

#include <limits.h>

/* SHA-256 of zero bytes: the empty blob, made with the store and never
 * removed. */
#define BLOB_EMPTY_SHA                                                        \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/*
 * Blobs moved to trash/ inside a transaction: restored by
 * trash_restore() when the transaction fails, unlinked by trash_empty()
 * after it commits.  Lives on the caller's stack; trash_release() frees
 * the names.
 */
struct trash {
	size_t n, cap;
	struct trash_item {
		char sha[65];
		char *name;	/* path under trash/, malloc()ed */
	} *items;
};

void trash_init(struct trash *t);
void trash_release(struct trash *t);

/*
 * Within a write transaction, after the row that named @sha was deleted:
 * if no version row references @sha any more (and it is not the empty
 * blob), move the blob to trash/ and remember it in @t.  0 or a negative
 * errno.
 */
int blob_unref(struct store *st, struct conn *c, const char *sha,
	       struct trash *t);
/* After ROLLBACK: move every blob of @t back into place. */
void trash_restore(struct store *st, struct trash *t);
/* After COMMIT: unlink every blob of @t. */
void trash_empty(struct store *st, struct trash *t);

/*
 * Within a write transaction: make the content of staging file @fd the
 * blob @sha, unless that blob exists already.  With @durable, the fd was
 * fsync()ed by the caller and the fan-out directory is synced here.  The
 * fd stays open (the caller closes it with stage_close()).
 */
int blob_place(struct store *st, int fd, const char *sha, int durable);

/*
 * Outside a transaction: remove blob @sha if no version names it, as
 * after a put that placed it failed to commit.  Else its space stayed
 * taken until the next exclusive open collected it, and on a full disk
 * each failed close kept the room the next one needed.
 */
int blob_drop_unnamed(struct store *st, struct conn *c, const char *sha);

/* Make blob @sha from @len bytes at @buf (a symlink's target). */
int blob_place_mem(struct store *st, const void *buf, size_t len,
		   char sha_out[65]);

/* Close staging fd @fd, removing its file if it has a name (the fallback
 * where O_TMPFILE is missing). */
void stage_close(struct store *st, int fd);

/* Create the blob directories and the empty blob (store creation) or make
 * sure they exist (every open). */
int blob_dirs_init(struct store *st);

/* Garbage collection under the exclusive lock: empty staging/ and trash/
 * (putting back a blob in trash/ that a row still names), and with
 * @blobs, remove the blobs no version references. */
int blob_gc(struct store *st, struct conn *c, int blobs);

#endif
