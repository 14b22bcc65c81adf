/*
 * dest.c - opening a destination by its URL, and which errors are
 * permanent.
 *
 * A URL is SCHEME://REST.  dest_open() finds the kind whose scheme matches
 * (in any case, as RFC 3986 says of schemes) in the table below and lets
 * it parse REST: a new kind of destination is one file and one line here.
 * Nothing in this file keeps state, so it is safe from any thread.
 */
#include "replicator/dest.h"
#include "replicator/dest_i.h"
#include "store/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const struct dest_ops *const dest_kinds[] = {
	&dest_store_ops,
	&dest_dir_ops,
	&dest_s3_ops,
};

#define NKINDS (sizeof(dest_kinds) / sizeof(dest_kinds[0]))

int dest_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		msg_vformat(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = saved;
	return ret;
}

int dest_url_path(const char *url, const char *scheme, const char *usage,
		  const char **path, char *err, size_t errlen)
{
	size_t n = strlen(scheme);

	if (strncasecmp(url, scheme, n) || strncmp(url + n, "://", 3))
		return dest_fail(err, errlen, -EINVAL,
				 "%s: not a %s URL (%s)", url, scheme, usage);
	if (url[n + 3] != '/')
		return dest_fail(err, errlen, -EINVAL,
				 "%s: a %s URL names a local path and no "
				 "host: %s", url, scheme, usage);
	*path = url + n + 3;
	return 0;
}

char *dest_path_dup(const char *path)
{
	size_t len = strlen(path);
	char *p;

	while (len > 1 && path[len - 1] == '/')
		len--;
	p = malloc(len + 1);
	if (!p)
		return NULL;
	memcpy(p, path, len);
	p[len] = '\0';
	return p;
}

int dest_open(const char *url, struct dest **out, char *err, size_t errlen)
{
	return dest_open_home(url, NULL, out, err, errlen);
}

int dest_open_home(const char *url, struct store *home, struct dest **out,
		   char *err, size_t errlen)
{
	const char *sep;
	size_t len, i;

	*out = NULL;
	sep = url ? strstr(url, "://") : NULL;
	if (!sep || sep == url)
		return dest_fail(err, errlen, -EINVAL,
				 "'%s' is not a destination URL (store:///"
				 "PATH/TO/STORE/BUCKET, dir:///PATH or "
				 "s3://REMOTE/BUCKET)",
				 url ? url : "");
	len = sep - url;
	for (i = 0; i < NKINDS; i++)
		if (strlen(dest_kinds[i]->scheme) == len &&
		    !strncasecmp(url, dest_kinds[i]->scheme, len))
			return dest_kinds[i]->open(url, home, out, err,
						   errlen);
	return dest_fail(err, errlen, -EINVAL,
			 "%s: unknown kind of destination '%.*s' (store://, "
			 "dir:// or s3://)", url, (int)len, url);
}

void dest_close(struct dest *d)
{
	if (d)
		d->ops->close(d);
}

int dest_error_permanent(int err)
{
	switch (err < 0 ? -err : err) {
	case EACCES:
	case EPERM:
	case ENOENT:
	case ENOTDIR:
	case EROFS:
	case EINVAL:
	case ENAMETOOLONG:
	case EBADMSG:
		return 1;
	default:
		return 0;
	}
}

int dest_home_folder(struct store *home, const char *bucket,
		     const char *path, size_t len, struct store_obj *obj,
		     struct store_xattr **x, size_t *nx, const char *url,
		     char *err, size_t errlen)
{
	char key[STORE_KEY_MAX + 1];
	int ret;

	*x = NULL;
	*nx = 0;
	/* A folder whose marker key would be too long has none. */
	if (!home || !len || len + 1 > STORE_KEY_MAX)
		return 0;
	memcpy(key, path, len);
	key[len] = '/';
	key[len + 1] = '\0';
	/* The marker's key itself, not store_lookup() of the folder: a
	 * file of the folder's name ("a" beside "a/") comes first there. */
	ret = store_version_at(home, bucket, key, INT64_MAX, obj);
	if (ret == -ENOENT ||
	    (!ret && (obj->kind != STORE_DIR || !obj->is_latest)))
		return 0;
	if (ret)
		return dest_fail(err, errlen, ret,
				 "%s: %s: cannot look up the source's "
				 "marker: %s", url, key, strerror(-ret));
	ret = store_version_xattrs(home, bucket, key, obj->version_id, x, nx);
	if (ret)
		return dest_fail(err, errlen, ret,
				 "%s: %s: cannot read the source marker's "
				 "xattrs: %s", url, key, strerror(-ret));
	return 1;
}

int dest_syncfs(const char *path, const char *url, char *err,
		size_t errlen)
{
	int fd, e = 0;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd))
		e = errno;
	if (fd >= 0)
		close(fd);
	if (e)
		return dest_fail(err, errlen, -e, "%s: sync: %s", url,
				 strerror(e));
	return 0;
}
