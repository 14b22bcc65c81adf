/*
 * dest_i.h - what the destination kinds share; private to replicator/.
 */
#ifndef REPLICAFS_DEST_I_H
#define REPLICAFS_DEST_I_H

#include "replicator/dest.h"

#include <stddef.h>

/*
 * Write a sentence made from @fmt into @err (@errlen bytes; nothing when
 * @err is NULL or @errlen is 0) and return @ret, so that a failure reads
 * `return dest_fail(err, errlen, -ENOENT, "...", ...);`.  Keeps errno.
 */
int dest_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * The path of @url, which must be "@scheme:///..." (the scheme in any
 * case, no host): *path points into @url at its leading '/'.  Otherwise
 * -EINVAL, with a sentence naming @usage (e.g. "dir:///ABSOLUTE/PATH").
 */
int dest_url_path(const char *url, const char *scheme, const char *usage,
		  const char **path, char *err, size_t errlen);

/* A copy of absolute @path without trailing '/' ("/" stays "/"); the
 * caller frees it.  NULL when out of memory. */
char *dest_path_dup(const char *path);

/*
 * Folder @path[0..@len) (no trailing '/') of @bucket as the source store
 * @home has it: 1 with its live marker ("@path/") into @obj (kind
 * STORE_DIR, its version ID, owner, mode and times) and that version's
 * xattrs, the POSIX ACLs among them, into *@x and *@nx (*@x malloc()ed,
 * the caller frees it); 0 when @home is NULL or has no live marker there
 * (a folder made by keys alone: its mount shows the bucket's owner and
 * mode 0755); or a negative errno, with a sentence naming @url.  For a
 * destination that must make a folder above a version that a prefix
 * filter sent without its parents' markers: it gives the folder the
 * source's access, never more.
 */
int dest_home_folder(struct store *home, const char *bucket,
		     const char *path, size_t len, struct store_obj *obj,
		     struct store_xattr **x, size_t *nx, const char *url,
		     char *err, size_t errlen);

/* syncfs(2) of the file system that holds directory @path: the sync()
 * of a destination on a local disk.  0, or the error with a sentence
 * naming @url. */
int dest_syncfs(const char *path, const char *url, char *err,
		size_t errlen);

#endif
