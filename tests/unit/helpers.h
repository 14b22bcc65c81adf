/*
 * helpers.h - small helpers shared by the store's unit tests: a temporary
 * store per test, putting and reading strings.
 */
#ifndef REPLICAFS_TEST_HELPERS_H
#define REPLICAFS_TEST_HELPERS_H

#include "store/store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* In a forked writer child: on failure say where on stderr and _exit(2),
 * which the parent sees (Criterion's asserts cannot run there). */
#define CHECK(x)                                                              \
	do {                                                                  \
		if (!(x)) {                                                   \
			fprintf(stderr, "writer: %s failed at line %d\n", #x, \
				__LINE__);                                    \
			_exit(2);                                             \
		}                                                             \
	} while (0)

/* In a forked writer child: append a line to @fd in one write(2), so
 * that a kill leaves whole lines or none; _exit(3) if it cannot. */
static inline void report(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline void report(int fd, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (write(fd, line, n) != n)
		_exit(3);
}

static inline int rm_one(const char *p, const struct stat *sb, int flag,
			 struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static inline void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under /tmp into @buf (64 bytes). */
static inline void tmp_dir(char *buf)
{
	snprintf(buf, 64, "/tmp/replicafs-test.XXXXXX");
	cr_assert_not_null(mkdtemp(buf));
}

static inline struct store *store_new(const char *dir)
{
	struct store *st = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/store", dir);
	cr_assert_eq(store_open(path, STORE_CREATE, &st), 0);
	return st;
}

static inline struct store_meta meta_of(unsigned mode)
{
	struct store_meta m = { .mode = mode, .uid = 1000, .gid = 100 };

	return m;
}

/* PUT @data as @key; returns store_put()'s result. */
static inline int put_str(struct store *st, const char *bucket,
			  const char *key, const char *data, char *vid)
{
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	size_t len = strlen(data);
	int fd, err;

	p.meta = meta_of(0644);
	if (len) {
		err = store_stage_new(st, NULL, 0, &fd);
		if (err)
			return err;
		if (write(fd, data, len) != (ssize_t)len) {
			err = -errno;
			store_stage_abort(st, fd);
			return err;
		}
		p.fd = fd;
	}
	return store_put(st, bucket, key, &p, vid, NULL);
}

/* Content of blob @sha into @buf (NUL-terminated). */
static inline void read_blob(struct store *st, const char *sha, char *buf,
			     size_t size)
{
	ssize_t n;
	int fd;

	cr_assert_eq(store_blob_open(st, sha, &fd), 0, "blob %s", sha);
	n = pread(fd, buf, size - 1, 0);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	close(fd);
}

/* Content of the current version of @key, or NULL-ish "" with ENOENT. */
static inline int read_cur(struct store *st, const char *bucket,
			   const char *key, char *buf, size_t size)
{
	struct store_obj o;
	int err = store_lookup(st, bucket, key, &o);

	if (err)
		return err;
	read_blob(st, o.sha256, buf, size);
	return 0;
}

static inline void bucket_new(struct store *st, const char *name,
			      enum store_versioning v)
{
	struct store_meta m = meta_of(0755);

	cr_assert_eq(store_bucket_create(st, name, v, &m), 0);
}

#endif
