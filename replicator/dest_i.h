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

/* syncfs(2) of the file system that holds directory @path: the sync()
 * of a destination on a local disk.  0, or the error with a sentence
 * naming @url. */
int dest_syncfs(const char *path, const char *url, char *err,
		size_t errlen);

#endif
