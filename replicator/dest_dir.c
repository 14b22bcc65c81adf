/*
 * dest_dir.c - dir:///PATH: a plain directory that mirrors the current
 * version of each key, for a backup disk that has no replicafs.
 *
 * Key "a/b/c.txt" of the source becomes PATH/a/b/c.txt, with the content,
 * permission bits, owner, user xattrs and mtime of the version; a symlink
 * becomes a symlink; a directory marker "a/b/" becomes the directory
 * PATH/a/b.  A delete marker removes the file or link (for a marker key,
 * the directory, when it is empty).  Only the current version lives here:
 * a newer one replaces the older, and none of the history is kept (that
 * is what a second store is for).  The bucket's name is not part of the
 * path: one rule, one directory.
 *
 * Invariants:
 *
 *  1. Nothing is written outside PATH.  A key is a relative path with no
 *     empty, "." or ".." component and no leading '/' (else -EINVAL), and
 *     it is walked one component at a time with openat(O_NOFOLLOW |
 *     O_DIRECTORY) from PATH, so a symlink the mirror holds (a replicated
 *     key, whose target the source's users chose) is never followed.
 *  2. A file appears whole or not at all.  Its content, owner, mode, user
 *     xattrs and mtime go to a temporary name in the same directory,
 *     .NAME.replicafs-tmp.XXXXXX (made with O_EXCL and mode 0600 until it
 *     is complete), which is renamed onto NAME.  A reader sees the old
 *     version or the new one.  The mtime is set on the temporary file
 *     first, so the file never shows another (rename does not change a
 *     file's mtime).  A symlink is made under a temporary name and renamed
 *     the same way.
 *  5. A delivery is durable once sync() returns: put() and delete_marker()
 *     leave their writes to the page cache, and sync() is one syncfs(2) of
 *     the file system under PATH, which the engine calls for a whole claim
 *     of deliveries before it records them COMPLETED (rather than an fsync
 *     of every file and of its directory, which cost 20 times as much for
 *     small files).  syncfs(2) reports write-back errors since Linux 5.8.
 *     Until then a crash of the machine can lose them, but they are not
 *     recorded yet, so they are delivered again; a killed replicator loses
 *     nothing, since the kernel still holds the writes.
 *  3. A crash leaves at worst a temporary file, which is never taken for
 *     content: no key may have a component of that shape (refused with
 *     -EINVAL), so no key and no temporary file ever share a name.  NAME
 *     has one temporary name, .NAME.replicafs-tmp.000000, and its writer
 *     holds flock(LOCK_EX) on it from its creation to its rename: one that
 *     nobody holds was left by a writer that died (kill -9), and the next
 *     delivery to NAME (the version again, after the restart, or a later
 *     one, or a delete marker) removes it first (tmp_clear()).  One that
 *     a live writer holds (another process delivering the same key) is
 *     -EAGAIN, retried later.  (Random names, before, were left for good:
 *     no later delivery knew them, and finding them meant walking the
 *     whole backup.)
 *  4. Delivering a version twice is harmless: put() writes the same file
 *     again, and a delete of something that is already gone succeeds.
 *
 * The kind of a name can change (rm a; mkdir a): put() replaces a file,
 * link or empty directory that stands where the new version goes.  A
 * directory that is not empty, or a file or link where a key needs a
 * parent directory, is not removed: that is -EEXIST, which the engine
 * retries, since versions of different keys can arrive in any order and
 * the delete marker that clears the way may still be on its way.  A
 * delete marker removes only its own kind: deleting "a" leaves a directory
 * "a" (the prefix of other keys) and deleting the marker "a/" leaves a
 * file "a".  Empty parent directories are left when their last file goes,
 * unless the source no longer has them either (no current key below, no
 * marker; the engine counts them for each delete marker): then the
 * delete that empties one removes it, and the empty parents above it.
 *
 * A parent directory that does not exist is made as the source has it
 * (folder_made()): the owner, mode, xattrs (POSIX ACLs too) and mtime of
 * the source's marker of that folder, looked up in the engine's store
 * (the home given to open()) and set by the code that sets a delivered
 * marker's (attrs_set()).  A rule with a prefix filter sends
 * "home/alice/inbox/m" without the markers of "home/" and "home/alice/":
 * made 0755, they let every user of the mirror read what alice's 0700
 * folder hides at the source.  A folder the source has no marker of (made
 * by keys alone), or any when there is no home, stays as made, 0700 and
 * the replicator's: never more open than the source.  Every directory is
 * made 0700 and opened only by what the source says.  A directory's mtime
 * is set when its marker arrives; entries written there afterwards move
 * it, as in any live copy.  Owners are kept where the process may set
 * them (root); where it may not, EPERM is ignored and logged once per
 * destination.  Only "user." xattrs and POSIX ACLs are copied; a file
 * system without xattrs (ENOTSUP) gets none, and one without ACLs keeps
 * the mode alone.
 *
 * Concurrency: the only state shared between calls is a flag of the log
 * (the home store is safe from any thread), so workers call in at once
 * for different keys.  A parent directory made by two workers at once, or
 * removed by a third (the delete of an empty marker directory) between
 * the walk and the create, is walked again, up to RACE_TRIES times; past
 * them the answer is -EAGAIN, which the engine retries, never the ENOENT
 * of the race, which it would not.  Of two workers making one folder,
 * the one whose mkdir made it gives it the source's attributes; the other
 * may put its file in it meanwhile, in a folder still 0700.
 */
#include "replicator/dest.h"
#include "replicator/dest_i.h"
#include "store/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define DIR_USAGE "dir:///ABSOLUTE/PATH"
#define TMP_TAG ".replicafs-tmp."
#define TMP_TAG_LEN (sizeof(TMP_TAG) - 1)
#define TMP_RAND 6
/* How much of NAME a temporary name keeps so that it fits NAME_MAX. */
#define TMP_NAME_KEEP (NAME_MAX - 1 - TMP_TAG_LEN - TMP_RAND)
/* Attempts when another worker changes a directory under us; past them,
 * -EAGAIN (the engine retries later), never the ENOENT of the race. */
#define RACE_TRIES 16

/* Stripes of the folder locks (folder_lock()). */
#define FOLDER_LOCKS 64

struct dest_dir {
	struct dest d;		/* first: the table */
	char *url;		/* as given, for messages */
	char *root;		/* absolute, no trailing '/' but for "/" */
	struct store *home;	/* the source store, for the folders above a
				 * key (folder_made()); not owned; NULL when
				 * opened only for check() */
	atomic_int owner_warned;/* logged that owners cannot be kept */
	pthread_mutex_t folder[FOLDER_LOCKS];	/* see folder_lock() */
};

static struct dest_dir *to_dir(struct dest *d)
{
	return (struct dest_dir *)d;
}

/* ---- keys and names ------------------------------------------------- */

/* Whether component @c of @len bytes has the shape of a temporary name:
 * .NAME.replicafs-tmp.XXXXXX with X in [0-9a-z]. */
static int is_tmp_name(const char *c, size_t len)
{
	size_t i;

	if (len < 1 + TMP_TAG_LEN + TMP_RAND || c[0] != '.')
		return 0;
	if (memcmp(c + len - TMP_RAND - TMP_TAG_LEN, TMP_TAG, TMP_TAG_LEN))
		return 0;
	for (i = len - TMP_RAND; i < len; i++)
		if (!(c[i] >= '0' && c[i] <= '9') &&
		    !(c[i] >= 'a' && c[i] <= 'z'))
			return 0;
	return 1;
}

/*
 * Check that @key can be a path below the root (invariants 1 and 3): no
 * leading '/', no empty, "." or ".." component, none longer than NAME_MAX
 * or shaped like a temporary name.  One trailing '/' (a directory marker)
 * is allowed.  0, or -EINVAL / -ENAMETOOLONG with a sentence in @err.
 */
static int key_check(struct dest_dir *dd, const char *key, char *err,
		     size_t errlen)
{
	const char *p = key, *end;
	size_t len;

	if (!key || !*key)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: an empty key cannot name a file",
				 dd->url);
	if (*key == '/')
		return dest_fail(err, errlen, -EINVAL,
				 "%s: key '%s' refused: it starts with '/'",
				 dd->url, key);
	for (;;) {
		end = strchr(p, '/');
		len = end ? (size_t)(end - p) : strlen(p);
		if (!end && !len && p != key)
			break;	/* the trailing '/' of a marker */
		if (!len)
			return dest_fail(err, errlen, -EINVAL,
					 "%s: key '%s' refused: it has an "
					 "empty path component", dd->url, key);
		if ((len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return dest_fail(err, errlen, -EINVAL,
					 "%s: key '%s' refused: a '.' or '..' "
					 "component could lead outside the "
					 "directory", dd->url, key);
		if (len > NAME_MAX)
			return dest_fail(err, errlen, -ENAMETOOLONG,
					 "%s: key '%s' refused: a component "
					 "is longer than %d bytes", dd->url,
					 key, NAME_MAX);
		if (is_tmp_name(p, len))
			return dest_fail(err, errlen, -EINVAL,
					 "%s: key '%s' refused: names ending "
					 "in %sXXXXXX are kept for temporary "
					 "files", dd->url, key, TMP_TAG);
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* Whether a component of @key has the shape of a temporary name. */
static int key_tmp_shaped(const char *key)
{
	const char *p = key, *end;
	size_t len;

	for (;;) {
		end = strchr(p, '/');
		len = end ? (size_t)(end - p) : strlen(p);
		if (is_tmp_name(p, len))
			return 1;
		if (!end)
			return 0;
		p = end + 1;
	}
}

/* The temporary name of @name into @buf (NAME_MAX + 1 bytes). */
static void tmp_name(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, ".%.*s%s000000", (int)TMP_NAME_KEEP, name,
		 TMP_TAG);
}

/* Whether @fd is still the file named @tmp in @dirfd. */
static int tmp_same(int fd, int dirfd, const char *tmp)
{
	struct stat a, b;

	return !fstat(fd, &a) &&
	       !fstatat(dirfd, tmp, &b, AT_SYMLINK_NOFOLLOW) &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * Remove temporary file @tmp of @dirfd if its writer died (invariant 3):
 * 0 when there is none now, -EAGAIN when a live writer holds it.  A
 * symlink's is never held (it is made, set and renamed at once): one
 * found is a dead writer's.  A file system without flock() (ENOLCK,
 * EOPNOTSUPP) cannot tell, and takes any it finds for a dead writer's.
 */
static int tmp_clear(int dirfd, const char *tmp)
{
	int fd, e, ret = 0;

	fd = openat(dirfd, tmp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			return 0;
		if (e != ELOOP)
			return -e;
	} else if (flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK) {
		close(fd);
		return -EAGAIN;
	} else if (!tmp_same(fd, dirfd, tmp)) {
		close(fd);	/* replaced meanwhile: look again later */
		return errno == ENOENT ? 0 : -EAGAIN;
	}
	if (unlinkat(dirfd, tmp, 0) && errno != ENOENT)
		ret = -errno;
	else
		log_info("removed %s, left by a delivery that was killed", tmp);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Create the temporary file for @name in @dirfd, its name into @tmp
 * (NAME_MAX + 1 bytes), and hold its lock: an fd the caller closes, or a
 * negative errno. */
static int tmp_create(int dirfd, const char *name, char *tmp, size_t size)
{
	int fd, i, ret;

	tmp_name(name, tmp, size);
	for (i = 0; i < RACE_TRIES; i++) {
		fd = openat(dirfd, tmp,	/* read too: copy_check() */
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				    O_CLOEXEC,
			    0600);
		if (fd < 0 && errno == EEXIST) {
			/* a dead writer's, or a live one's */
			ret = tmp_clear(dirfd, tmp);
			if (ret)
				return ret;
			continue;
		}
		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK) {
			/* another took it for a dead writer's, and removes
			 * it */
			close(fd);
			return -EAGAIN;
		}
		if (tmp_same(fd, dirfd, tmp))
			return fd;
		close(fd);
	}
	return -EAGAIN;
}

/* @ns nanoseconds since the epoch as a timespec (before 1970 the
 * nanoseconds count up). */
static struct timespec ts_of(int64_t ns)
{
	struct timespec t;
	int64_t r = ns % 1000000000;

	t.tv_sec = (time_t)(ns / 1000000000 - (r < 0));
	t.tv_nsec = (long)(r < 0 ? r + 1000000000 : r);
	return t;
}

/* The atime and mtime of version @v, as utimensat() takes them. */
static void times_of(const struct repl_version *v, struct timespec ts[2])
{
	const struct store_meta *m = &v->obj.meta;

	ts[1] = ts_of(m->mtime_ns);
	ts[0] = m->atime_ns ? ts_of(m->atime_ns) : ts[1];
}

/* Whether directory @fd has been removed (its last link is gone). */
static int dir_gone(int fd)
{
	struct stat sb;

	return !fstat(fd, &sb) && sb.st_nlink == 0;
}

/* ---- walking -------------------------------------------------------- */

/* Whether open directory @fd is a replicafs store (catalog.db and blobs/
 * in it). */
static int is_store_dir(int fd)
{
	struct stat sb;

	/* All four: a folder of a user's with a catalog.db and a blobs/
	 * was taken for a store, and what it held never reached the
	 * mirror. */
	return !fstatat(fd, "catalog.db", &sb, AT_SYMLINK_NOFOLLOW) &&
	       S_ISREG(sb.st_mode) &&
	       !fstatat(fd, "blobs", &sb, AT_SYMLINK_NOFOLLOW) &&
	       S_ISDIR(sb.st_mode) &&
	       !fstatat(fd, "lock", &sb, AT_SYMLINK_NOFOLLOW) &&
	       S_ISREG(sb.st_mode) &&
	       !fstatat(fd, "open", &sb, AT_SYMLINK_NOFOLLOW) &&
	       S_ISDIR(sb.st_mode);
}

static int folder_made(struct dest_dir *dd, const char *bucket,
		       const char *path, int dirfd, const char *comp,
		       char *err, size_t errlen);

/*
 * Open directory @comp in @dirfd (its path from the root is @prefix, for
 * messages) into *out, which the caller closes.  With @create it is made
 * when missing, as folder @prefix of @bucket is at the source
 * (folder_made()).  0; 1 (without @create) when it is missing or not a
 * directory; -EEXIST (with @create) when something that is not a
 * directory stands there; another negative errno.
 */
static int walk_step(struct dest_dir *dd, const char *bucket, const char *key,
		     const char *prefix, int dirfd, const char *comp,
		     int create, int *out, char *err, size_t errlen)
{
	int fd, tries, ret, e = ENOENT;

	for (tries = 0; tries < RACE_TRIES; tries++) {
		fd = openat(dirfd, comp,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && is_store_dir(fd)) {
			/* A store below the mirror's root (checked when the
			 * rule was set, and again here, where a key would
			 * put its files over the store's own). */
			close(fd);
			return dest_fail(err, errlen, -EINVAL,
					 "%s: %s: %s is a replicafs store: a "
					 "mirror never writes into one",
					 dd->url, key, prefix);
		}
		if (fd >= 0) {
			*out = fd;
			return 0;
		}
		e = errno;
		if (e == ENOTDIR || e == ELOOP) {
			if (!create)
				return 1;
			return dest_fail(err, errlen, -EEXIST,
					 "%s: %s: %s is in the way: it is not "
					 "a directory at the destination",
					 dd->url, key, prefix);
		}
		if (e != ENOENT)
			break;
		if (!create)
			return 1;
		if (!mkdirat(dirfd, comp, 0700)) {
			ret = folder_made(dd, bucket, prefix, dirfd, comp, err,
					  errlen);
			if (ret)
				return ret;
		} else if (errno != EEXIST) {
			e = errno;
			break;
		}
	}
	if (tries == RACE_TRIES)
		e = EAGAIN;
	return dest_fail(err, errlen, -e, "%s: %s: cannot %s directory %s: %s",
			 dd->url, key, create ? "make" : "open", prefix,
			 strerror(e));
}

/*
 * Open the directory that holds the last component of @path (a checked
 * key of @bucket without its trailing '/'; changed during the call and
 * restored): *fd_out gets an fd the caller closes, and *name_out points to
 * the last component inside @path.  With @create, missing parents are
 * made (walk_step()); without, @bucket may be NULL.
 * Returns 0; 1 (without @create) when a parent is missing or is not a
 * directory, so nothing is there; or a negative errno with a sentence.
 */
static int walk(struct dest_dir *dd, const char *bucket, const char *key,
		char *path, int create, int *fd_out, const char **name_out,
		char *err, size_t errlen)
{
	char *p = path, *slash;
	int fd, nfd = -1, ret, e;

	fd = open(dd->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return dest_fail(err, errlen, -e, "%s: %s", dd->url,
				 strerror(e));
	}
	if (is_store_dir(fd)) {
		close(fd);
		return dest_fail(err, errlen, -EINVAL,
				 "%s is a replicafs store: a mirror never "
				 "writes into one", dd->url);
	}
	while ((slash = strchr(p, '/'))) {
		*slash = '\0';
		ret = walk_step(dd, bucket, key, path, fd, p, create, &nfd,
				err, errlen);
		*slash = '/';
		close(fd);
		if (ret)
			return ret;
		fd = nfd;
		p = slash + 1;
	}
	*fd_out = fd;
	*name_out = p;
	return 0;
}

/* ---- attributes ----------------------------------------------------- */

/*
 * The owner of @key could not be set (errno @e).  Without the right to
 * give files away (EPERM, or EINVAL for an ID this user namespace does
 * not map) the file is kept with ours, and that is logged once; anything
 * else is an error.
 */
static int owner_failed(struct dest_dir *dd, const struct repl_version *v,
			int e, char *err, size_t errlen)
{
	if (e == EPERM || e == EINVAL) {
		if (!atomic_exchange(&dd->owner_warned, 1))
			log_warn("%s: cannot keep owners (%u:%u of %s): %s; "
				 "files get the replicator's", dd->url,
				 v->obj.meta.uid, v->obj.meta.gid, v->key,
				 strerror(e));
		return 0;
	}
	return dest_fail(err, errlen, -e, "%s: %s: cannot set the owner: %s",
			 dd->url, v->key, strerror(e));
}

/* Whether @name is among the version's xattrs. */
static int xattr_wanted(const struct repl_version *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->nxattrs; i++)
		if (!strcmp(v->xattrs[i].name, name))
			return 1;
	return 0;
}

/* Whether a mirror takes xattr @name: user.*, the POSIX ACLs (which the
 * mirror's file system turns back into ACLs, as setfacl's do), trusted.*
 * and a file capability; not the rest of security.*, which the mirror's
 * own kernel keeps there (SELinux labels, IMA hashes). */
static int xattr_mirrored(const char *name)
{
	return strncmp(name, "user.", 5) == 0 ||
	       strncmp(name, "trusted.", 8) == 0 ||
	       strcmp(name, "security.capability") == 0 ||
	       strcmp(name, "system.posix_acl_access") == 0 ||
	       strcmp(name, "system.posix_acl_default") == 0;
}

/* Whether only a privileged replicator may set or remove xattr @name. */
static int xattr_privileged(const char *name)
{
	return strncmp(name, "trusted.", 8) == 0 ||
	       strncmp(name, "security.", 9) == 0;
}

/* Remove the mirrored xattrs of @fd that the version does not have (a
 * directory that already existed). */
static int xattrs_prune(struct dest_dir *dd, const struct repl_version *v,
			int fd, char *err, size_t errlen)
{
	ssize_t n, again;
	char *names, *p;
	int e;

	n = flistxattr(fd, NULL, 0);
	if (n <= 0)
		return 0;	/* none, or ENOTSUP: nothing to remove */
	names = malloc(n);
	if (!names)
		return dest_fail(err, errlen, -ENOMEM, "%s: %s: out of memory",
				 dd->url, v->key);
	again = flistxattr(fd, names, n);
	for (p = names; again > 0 && p < names + again; p += strlen(p) + 1) {
		if (!xattr_mirrored(p) || xattr_wanted(v, p))
			continue;
		if (fremovexattr(fd, p) && errno != ENODATA &&
		    !(errno == EPERM && xattr_privileged(p))) {
			e = errno;
			free(names);
			return dest_fail(err, errlen, -e,
					 "%s: %s: cannot remove xattr %s: %s",
					 dd->url, v->key, p, strerror(e));
		}
	}
	free(names);
	return 0;
}

/* Set the version's user xattrs, POSIX ACLs, trusted.* and file
 * capability on @fd; the last two need a privileged replicator, and a
 * mirror written by another goes on without them. */
static int xattrs_set(struct dest_dir *dd, const struct repl_version *v,
		      int fd, char *err, size_t errlen)
{
	const struct store_xattr *x;
	size_t i;
	int e;

	for (i = 0; i < v->nxattrs; i++) {
		x = &v->xattrs[i];
		if (!xattr_mirrored(x->name))
			continue;
		if (!fsetxattr(fd, x->name, x->value, x->size, 0))
			continue;
		e = errno;
		if (e == EPERM && xattr_privileged(x->name))
			continue;	/* not root */
		if (e == ENOTSUP && strncmp(x->name, "user.", 5))
			continue;	/* no ACLs there: the mode stands */
		if (e == ENOTSUP)
			return 0;	/* the file system has none */
		return dest_fail(err, errlen, -e,
				 "%s: %s: cannot set xattr %s: %s", dd->url,
				 v->key, x->name, strerror(e));
	}
	return 0;
}

/*
 * Owner, permission bits, user xattrs (with @prune, also removing others)
 * and mtime of open file or directory @fd.  chown comes before chmod,
 * since chown clears the set-user-ID and set-group-ID bits.
 */
static int attrs_set(struct dest_dir *dd, const struct repl_version *v,
		     int fd, int prune, char *err, size_t errlen)
{
	struct timespec ts[2];
	int ret, e;

	if (fchown(fd, v->obj.meta.uid, v->obj.meta.gid)) {
		ret = owner_failed(dd, v, errno, err, errlen);
		if (ret)
			return ret;
	}
	if (fchmod(fd, v->obj.meta.mode & 07777)) {
		e = errno;
		return dest_fail(err, errlen, -e, "%s: %s: cannot chmod: %s",
				 dd->url, v->key, strerror(e));
	}
	if (prune && (ret = xattrs_prune(dd, v, fd, err, errlen)))
		return ret;
	ret = xattrs_set(dd, v, fd, err, errlen);
	if (ret)
		return ret;
	times_of(v, ts);
	if (futimens(fd, ts)) {
		e = errno;
		return dest_fail(err, errlen, -e,
				 "%s: %s: cannot set the mtime: %s", dd->url,
				 v->key, strerror(e));
	}
	return 0;
}

/*
 * Folder @comp of @dirfd, @path from the root, was just made (mode 0700)
 * above a key of @bucket: give it the attributes the source's folder has,
 * from its marker in the home store, as attrs_set() gives a marker that
 * is delivered.  With no marker there (or no home) it stays as made.  A
 * failure (the store cannot be read, an attribute cannot be set) leaves
 * it 0700 and removes it while it is still empty, so that the retry of
 * the delivery makes it again; 0 or a negative errno with a sentence.
 */
static int folder_made(struct dest_dir *dd, const char *bucket,
		       const char *path, int dirfd, const char *comp,
		       char *err, size_t errlen)
{
	char key[STORE_KEY_MAX + 2];
	struct store_xattr *x = NULL;
	struct repl_version m;
	int fd, ret;

	memset(&m, 0, sizeof(m));
	ret = dest_home_folder(dd->home, bucket, path, strlen(path), &m.obj,
			       &x, &m.nxattrs, dd->url, err, errlen);
	if (ret <= 0)
		goto out;
	fd = openat(dirfd, comp,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = dest_fail(err, errlen, -errno,
				"%s: cannot open the folder %s it made: %s",
				dd->url, path, strerror(errno));
		goto out;
	}
	snprintf(key, sizeof(key), "%s/", path);
	m.bucket = bucket;
	m.key = key;
	m.fd = -1;
	m.xattrs = x;
	ret = attrs_set(dd, &m, fd, 1, err, errlen);
	if (ret)
		fchmod(fd, 0700);	/* what was set may be half of it */
	else
		log_debug("%s: made the folder %s as the source has it "
			  "(marker %s, mode %04o, owner %u:%u)", dd->url, path,
			  m.obj.version_id, m.obj.meta.mode & 07777,
			  m.obj.meta.uid, m.obj.meta.gid);
	close(fd);
out:
	free(x);
	if (ret < 0)
		unlinkat(dirfd, comp, AT_REMOVEDIR);
	return ret < 0 ? ret : 0;
}

/* ---- writing -------------------------------------------------------- */

/*
 * Rename @tmp onto @name in @dirfd, first removing an empty directory
 * that stands there (the kind changed).  A directory that is not empty is
 * left alone: -EEXIST.
 */
static int place(struct dest_dir *dd, const char *key, int dirfd,
		 const char *tmp, const char *name, char *err, size_t errlen)
{
	int tries, e;

	for (tries = 0; tries < RACE_TRIES; tries++) {
		if (!renameat(dirfd, tmp, dirfd, name))
			return 0;
		e = errno;
		if (e != EISDIR)
			return dest_fail(err, errlen, -e,
					 "%s: %s: cannot rename into place: "
					 "%s", dd->url, key, strerror(e));
		if (!unlinkat(dirfd, name, AT_REMOVEDIR) || errno == ENOENT)
			continue;
		e = errno;
		if (e == ENOTEMPTY || e == EEXIST)
			return dest_fail(err, errlen, -EEXIST,
					 "%s: %s: a directory that is not "
					 "empty is in the way", dd->url, key);
		return dest_fail(err, errlen, -e,
				 "%s: %s: cannot remove the empty directory "
				 "in the way: %s", dd->url, key, strerror(e));
	}
	return dest_fail(err, errlen, -EAGAIN,
			 "%s: %s: a directory keeps coming back in the way",
			 dd->url, key);
}

/* The failure of a copy of @v whose bytes are not its SHA-256's. */
static int damaged(struct dest_dir *dd, const struct repl_version *v,
		   char *err, size_t errlen)
{
	return dest_fail(err, errlen, -EBADMSG,
			 "%s: %s: the source's content does not match its "
			 "SHA-256 %s (a damaged blob: no retry heals it)",
			 dd->url, v->key, v->obj.sha256);
}

/* Whether the copy in @fd has the SHA-256 of version @v: 0, or a
 * permanent error (no retry heals a damaged source). */
static int copy_check(struct dest_dir *dd, const struct repl_version *v,
		      int fd, char *err, size_t errlen)
{
	char sha[65];
	int ret;

	if (v->obj.sha256[0] == '\0')
		return 0;
	ret = store_hash_fd(fd, sha);
	if (ret)
		return dest_fail(err, errlen, ret, "%s: %s: cannot hash the "
				 "copy: %s", dd->url, v->key, strerror(-ret));
	if (strcmp(sha, v->obj.sha256))
		return damaged(dd, v, err, errlen);
	return 0;
}

/*
 * The content of small version @v into @fd through memory: one read of the
 * blob, hashed there and written once.  Of 4 KiB files, a copy by
 * copy_file_range() (after a reflink tried and two probes for holes) and a
 * second read to hash the copy were 9 more system calls each than this;
 * a hole in so small a file is written as zeros.
 */
#define SMALL_COPY_MAX (256 << 10)

static int put_small(struct dest_dir *dd, const struct repl_version *v,
		     int fd, char *err, size_t errlen)
{
	size_t size = (size_t)v->obj.size;
	char sha[65], *buf, more;
	ssize_t n;
	int ret;

	buf = malloc(size ? size : 1);
	if (!buf)
		return dest_fail(err, errlen, -ENOMEM, "%s: %s: out of memory",
				 dd->url, v->key);
	ret = store_pread_all(v->fd, buf, size, 0);
	if (!ret) {
		do	/* nothing past its end */
			n = pread(v->fd, &more, 1, (off_t)size);
		while (n < 0 && errno == EINTR);
		ret = n < 0 ? -errno : n ? -EIO : 0;
	}
	if (ret == -ENODATA || ret == -EIO) {
		dest_fail(err, errlen, -EIO, "%s: %s: the content is %s than "
			  "the version's %zu bytes", dd->url, v->key,
			  ret == -EIO ? "longer" : "shorter", size);
		ret = -EIO;
		goto out;
	}
	if (ret) {
		dest_fail(err, errlen, ret, "%s: %s: cannot read the content: "
			  "%s", dd->url, v->key, strerror(-ret));
		goto out;
	}
	if (v->obj.sha256[0]) {
		if (store_hash_mem(buf, size, sha)) {
			ret = dest_fail(err, errlen, -ENOMEM,
					"%s: %s: out of memory", dd->url,
					v->key);
			goto out;
		}
		if (strcmp(sha, v->obj.sha256)) {
			ret = damaged(dd, v, err, errlen);
			goto out;
		}
	}
	ret = store_pwrite_all(fd, buf, size, 0);
	if (ret)
		dest_fail(err, errlen, ret, "%s: %s: cannot copy the content: "
			  "%s", dd->url, v->key, strerror(-ret));
out:
	free(buf);
	return ret;
}

/* A FILE version as @name in @dirfd (invariant 2). */
static int put_file(struct dest_dir *dd, const struct repl_version *v,
		    int dirfd, const char *name, char *err, size_t errlen)
{
	char tmp[NAME_MAX + 1];
	uint64_t copied = 0;
	int fd, ret, lock = -1;

	if (v->fd < 0 && v->obj.size)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: no content to copy", dd->url,
				 v->key);
	fd = tmp_create(dirfd, name, tmp, sizeof(tmp));
	if (fd < 0)
		return dest_fail(err, errlen, fd,
				 "%s: %s: cannot create a temporary file: %s",
				 dd->url, v->key, strerror(-fd));
	if (v->fd >= 0 && v->obj.size <= SMALL_COPY_MAX) {
		ret = put_small(dd, v, fd, err, errlen);
		if (ret)
			goto fail;
	} else {
		if (v->fd >= 0) {
			/* holes stay holes, where this file system has
			 * them */
			ret = store_copy(v->fd, fd, UINT64_MAX, &copied);
			if (ret) {
				dest_fail(err, errlen, ret,
					  "%s: %s: cannot copy the content: "
					  "%s", dd->url, v->key,
					  strerror(-ret));
				goto fail;
			}
		}
		if (copied != v->obj.size) {
			ret = dest_fail(err, errlen, -EIO,
					"%s: %s: the content has %llu bytes, "
					"the version %llu", dd->url, v->key,
					(unsigned long long)copied,
					(unsigned long long)v->obj.size);
			goto fail;
		}
		/* What the mirror got is the version: a blob the disk
		 * damaged was copied, and COMPLETED. */
		ret = copy_check(dd, v, fd, err, errlen);
		if (ret)
			goto fail;
	}
	ret = attrs_set(dd, v, fd, 0, err, errlen);
	if (ret)
		goto fail;
	/* The lock goes with the last descriptor: held until the rename. */
	lock = dup(fd);
	if (lock < 0) {
		ret = dest_fail(err, errlen, -errno, "%s: %s: dup: %s",
				dd->url, v->key, strerror(errno));
		goto fail;
	}
	ret = close(fd) ? -errno : 0;
	fd = -1;
	if (ret) {
		dest_fail(err, errlen, ret, "%s: %s: close: %s", dd->url,
			  v->key, strerror(-ret));
		goto fail;
	}
	ret = place(dd, v->key, dirfd, tmp, name, err, errlen);
	if (ret)
		goto fail;
	close(lock);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	if (lock >= 0)
		close(lock);
	return ret;
}

/* A SYMLINK version as @name in @dirfd: made under a temporary name and
 * renamed into place, as a file is. */
static int put_link(struct dest_dir *dd, const struct repl_version *v,
		    int dirfd, const char *name, char *err, size_t errlen)
{
	char tmp[NAME_MAX + 1];
	struct timespec ts[2];
	int ret, e, i;

	if (!v->link_target || !*v->link_target)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: a symlink without a target",
				 dd->url, v->key);
	tmp_name(name, tmp, sizeof(tmp));
	for (i = 0;; i++) {
		ret = tmp_clear(dirfd, tmp);
		if (ret)
			return dest_fail(err, errlen, ret,
					 "%s: %s: the temporary name is in "
					 "use: %s", dd->url, v->key,
					 strerror(-ret));
		if (!symlinkat(v->link_target, dirfd, tmp))
			break;
		e = errno;
		if (e != EEXIST || i == RACE_TRIES)
			return dest_fail(err, errlen,
					 e == EEXIST ? -EAGAIN : -e,
					 "%s: %s: cannot make the symlink: %s",
					 dd->url, v->key, strerror(e));
	}
	if (fchownat(dirfd, tmp, v->obj.meta.uid, v->obj.meta.gid,
		     AT_SYMLINK_NOFOLLOW)) {
		ret = owner_failed(dd, v, errno, err, errlen);
		if (ret)
			goto fail;
	}
	times_of(v, ts);
	if (utimensat(dirfd, tmp, ts, AT_SYMLINK_NOFOLLOW)) {
		ret = -errno;
		dest_fail(err, errlen, ret, "%s: %s: cannot set the mtime: %s",
			  dd->url, v->key, strerror(-ret));
		goto fail;
	}
	ret = place(dd, v->key, dirfd, tmp, name, err, errlen);
	if (ret)
		goto fail;
	return 0;
fail:
	unlinkat(dirfd, tmp, 0);
	return ret;
}

/* A directory marker as directory @name in @dirfd: made when missing, in
 * place of a file or link of that name; then its attributes. */
static int put_marker(struct dest_dir *dd, const struct repl_version *v,
		      int dirfd, const char *name, char *err, size_t errlen)
{
	int fd = -1, tries, ret, e = 0;

	for (tries = 0; tries < RACE_TRIES; tries++) {
		fd = openat(dirfd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			break;
		e = errno;
		if (e == ENOENT) {
			/* 0700 until attrs_set() gives it the marker's */
			if (mkdirat(dirfd, name, 0700) && errno != EEXIST) {
				e = errno;
				break;
			}
		} else if (e == ENOTDIR || e == ELOOP) {
			/* A file or link of that name: the kind changed. */
			if (unlinkat(dirfd, name, 0) && errno != ENOENT) {
				e = errno;
				break;
			}
		} else {
			break;
		}
	}
	if (fd < 0 && tries == RACE_TRIES)
		e = EAGAIN;
	if (fd < 0)
		return dest_fail(err, errlen, -e,
				 "%s: %s: cannot make the directory: %s",
				 dd->url, v->key, strerror(e));
	if (is_store_dir(fd)) {
		/* Its mode, owner and times are the store's: a folder of
		 * the store's name at the source made its root 0777 and
		 * another user's. */
		close(fd);
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: %s is a replicafs store: a mirror "
				 "never writes into one", dd->url, v->key,
				 name);
	}
	ret = attrs_set(dd, v, fd, 1, err, errlen);
	close(fd);
	return ret;
}

/* ---- the operations ------------------------------------------------- */

/* A copy of checked key @key without its trailing '/' (the caller frees
 * it), and whether it had one. */
static char *key_path(const char *key, int *marker)
{
	size_t len = strlen(key);
	char *p;

	*marker = len && key[len - 1] == '/';
	if (*marker)
		len--;
	p = malloc(len + 1);
	if (!p)
		return NULL;
	memcpy(p, key, len);
	p[len] = '\0';
	return p;
}

/*
 * A folder's mtime is kept across a put into it (dir_put()): read before,
 * set back after.  Two workers putting into one folder at once undid each
 * other (one read the time the other's entry had just moved), and the
 * mirror's folders kept the time of the delivery.  So puts that touch a
 * folder's time hold its lock: the stripe of the folder's path, and for a
 * marker, of its parent's too, taken in stripe order.
 */
static unsigned folder_stripe(const char *path, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)path[i]) * 16777619u;
	return h % FOLDER_LOCKS;
}

/* The stripes of the folders a put of key @key touches, into @s[2]. */
static void folder_stripes(const char *key, unsigned s[2])
{
	size_t len = strlen(key);
	const char *slash;

	if (len && key[len - 1] == '/')
		len--;			/* a marker: the folder itself */
	s[1] = folder_stripe(key, len);	/* the marker's folder, or unused */
	slash = memrchr(key, '/', len);
	s[0] = folder_stripe(key, slash ? (size_t)(slash - key) : 0);
	if (key[strlen(key) - 1] != '/')
		s[1] = s[0];		/* a file: its parent only */
	if (s[1] < s[0]) {
		unsigned t = s[0];

		s[0] = s[1];
		s[1] = t;
	}
}

static void folder_lock(struct dest_dir *dd, const unsigned s[2])
{
	pthread_mutex_lock(&dd->folder[s[0]]);
	if (s[1] != s[0])
		pthread_mutex_lock(&dd->folder[s[1]]);
}

static void folder_unlock(struct dest_dir *dd, const unsigned s[2])
{
	if (s[1] != s[0])
		pthread_mutex_unlock(&dd->folder[s[1]]);
	pthread_mutex_unlock(&dd->folder[s[0]]);
}

static int dir_put(struct dest *d, const struct repl_version *v, char *err,
		   size_t errlen)
{
	struct dest_dir *dd = to_dir(d);
	enum store_kind kind = v->obj.kind;
	const char *name;
	char *path = NULL;
	struct stat parent;
	unsigned stripes[2];
	int ret, marker, dirfd = -1, tries, gone = 0, had;

	ret = key_check(dd, v->key, err, errlen);
	if (ret)
		return ret;
	path = key_path(v->key, &marker);
	if (!path)
		return dest_fail(err, errlen, -ENOMEM, "%s: %s: out of memory",
				 dd->url, v->key);
	if ((kind == STORE_DIR) != marker ||
	    (kind != STORE_FILE && kind != STORE_SYMLINK &&
	     kind != STORE_DIR)) {
		ret = dest_fail(err, errlen, -EINVAL,
				"%s: %s: version %s of kind %d cannot be put "
				"(a directory marker, and only it, ends in "
				"'/')", dd->url, v->key, v->obj.version_id,
				(int)kind);
		goto out;
	}
	folder_stripes(v->key, stripes);
	for (tries = 0; tries < RACE_TRIES; tries++) {
		ret = walk(dd, v->bucket, v->key, path, 1, &dirfd, &name, err,
			   errlen);
		if (ret)
			goto out;
		/* The folder keeps its times, which are its marker's: a
		 * file arriving after them (its version sent after the
		 * folder's last touch) moved its mtime to the delivery. */
		folder_lock(dd, stripes);
		had = !fstat(dirfd, &parent);
		if (kind == STORE_FILE)
			ret = put_file(dd, v, dirfd, name, err, errlen);
		else if (kind == STORE_SYMLINK)
			ret = put_link(dd, v, dirfd, name, err, errlen);
		else
			ret = put_marker(dd, v, dirfd, name, err, errlen);
		if (!ret && had) {
			struct timespec ts[2] = { parent.st_atim,
						  parent.st_mtim };

			futimens(dirfd, ts);
		}
		folder_unlock(dd, stripes);
		gone = ret == -ENOENT && dir_gone(dirfd);
		close(dirfd);
		if (!gone)
			break;
		/* An empty parent was removed (the delete of its marker)
		 * between the walk and our create: walk again. */
	}
	if (gone)
		ret = dest_fail(err, errlen, -EAGAIN,
				"%s: %s: its directory keeps disappearing",
				dd->url, v->key);
	if (!ret)
		log_debug("%s: put %s (version %s)", dd->url, v->key,
			  v->obj.version_id);
out:
	free(path);
	return ret;
}

/*
 * Remove the @n deepest parent folders of @path (a checked key without its
 * trailing '/'), each once it is empty: the source no longer has them
 * (repl_version.gone_parents), and a folder emptied by the delete of its
 * last file would otherwise stay in the mirror after the source's rename
 * or rm -rf.  One that still holds anything stays, and so do those above
 * it: the deliveries that empty it come later, with the same count.
 */
static void remove_gone_parents(struct dest_dir *dd, const char *key,
				char *path, unsigned n)
{
	char msg[256], *slash;
	const char *name;
	int dirfd, ret;

	for (; n > 0 && (slash = strrchr(path, '/')); n--) {
		*slash = '\0';
		if (walk(dd, NULL, key, path, 0, &dirfd, &name, msg,
			 sizeof(msg)))
			return;
		ret = unlinkat(dirfd, name, AT_REMOVEDIR);
		close(dirfd);
		if (ret)
			return;
		log_debug("%s: removed the folder %s, gone at the source",
			  dd->url, path);
	}
}

/*
 * Remove what the key names, if it is there in its own kind: a file or
 * link for a key, an empty directory for a marker.  Anything else (gone
 * already, another kind, a directory that still holds files) is success.
 */
static int dir_delete_marker(struct dest *d, const struct repl_version *v,
			     char *err, size_t errlen)
{
	struct dest_dir *dd = to_dir(d);
	const char *name;
	char *path = NULL;
	int ret, marker, dirfd = -1, e;

	if (v->obj.kind != STORE_DELETE_MARKER)
		return dest_fail(err, errlen, -EINVAL,
				 "%s: %s: version %s is not a delete marker",
				 dd->url, v->key, v->obj.version_id);
	/* A key of the shape of a temporary name never reaches the mirror
	 * (key_check()): its delete marker has nothing to remove, and must
	 * not remove the temporary file of another key. */
	if (key_tmp_shaped(v->key))
		return 0;
	ret = key_check(dd, v->key, err, errlen);
	if (ret)
		return ret;
	path = key_path(v->key, &marker);
	if (!path)
		return dest_fail(err, errlen, -ENOMEM, "%s: %s: out of memory",
				 dd->url, v->key);
	ret = walk(dd, v->bucket, v->key, path, 0, &dirfd, &name, err, errlen);
	if (ret) {
		if (ret == 1)	/* no parent: nothing to delete */
			ret = 0;
		goto out;
	}
	if (!marker) {	/* what a killed delivery left (invariant 3) */
		char tmp[NAME_MAX + 1];

		tmp_name(name, tmp, sizeof(tmp));
		tmp_clear(dirfd, tmp);
	}
	if (unlinkat(dirfd, name, marker ? AT_REMOVEDIR : 0)) {
		e = errno;
		if (e == ENOENT)
			goto parents;	/* delivered before */
		if ((!marker && e == EISDIR) ||
		    (marker && (e == ENOTEMPTY || e == EEXIST ||
				e == ENOTDIR)))
			goto out;
		ret = dest_fail(err, errlen, -e, "%s: %s: cannot remove: %s",
				dd->url, v->key, strerror(e));
		goto out;
	}
	log_debug("%s: deleted %s (marker %s)", dd->url, v->key,
		  v->obj.version_id);
parents:
	close(dirfd);
	dirfd = -1;
	remove_gone_parents(dd, v->key, path, v->gone_parents);
out:
	if (dirfd >= 0)
		close(dirfd);
	free(path);
	return ret;
}

/*
 * Whether directory @path is in a replicafs mount or store, with what it
 * is into @why: a mirror there writes into a bucket (its own source's,
 * perhaps, where each file it writes is a new version to mirror again,
 * without end), or over the store's own files (its catalog.db was
 * replaced by a key of that name).  store:// is the way to either.
 */
static int in_replicafs(const char *path, char *why, size_t len)
{
	char buf[PATH_MAX], probe[PATH_MAX + 16], *slash;
	struct stat sb;

	if (!realpath(path, buf))
		return 0;
	if (getxattr(buf, "system.replicafs.store", NULL, 0) >= 0) {
		snprintf(why, len, "is in a replicafs mount");
		return 1;
	}
	for (;;) {
		snprintf(probe, sizeof(probe), "%s/catalog.db", buf);
		if (!stat(probe, &sb) && S_ISREG(sb.st_mode)) {
			snprintf(probe, sizeof(probe), "%s/blobs", buf);
			if (!stat(probe, &sb) && S_ISDIR(sb.st_mode)) {
				snprintf(why, len, "is in the replicafs store "
					 "%s", buf);
				return 1;
			}
		}
		slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			return 0;
		*slash = '\0';
	}
}

/* The root exists, is a directory outside every replicafs mount and
 * store, and a file can be made in it. */
static int dir_check(struct dest *d, char *err, size_t errlen)
{
	struct dest_dir *dd = to_dir(d);
	char tmp[NAME_MAX + 1], why[PATH_MAX + 64];
	struct stat sb;
	int fd, pfd, e;

	if (stat(dd->root, &sb)) {
		e = errno;
		return dest_fail(err, errlen, -e, "%s: %s", dd->url,
				 strerror(e));
	}
	if (!S_ISDIR(sb.st_mode))
		return dest_fail(err, errlen, -ENOTDIR, "%s: %s", dd->url,
				 strerror(ENOTDIR));
	if (in_replicafs(dd->root, why, sizeof(why)))
		return dest_fail(err, errlen, -EINVAL,
				 "%s %s: a plain directory there would write "
				 "into its buckets or over its files; use "
				 "store://STORE/BUCKET for a bucket", dd->url,
				 why);
	fd = open(dd->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return dest_fail(err, errlen, -e, "%s: %s", dd->url,
				 strerror(e));
	}
	/* The probe has the shape of a temporary name (invariant 3). */
	pfd = tmp_create(fd, "check", tmp, sizeof(tmp));
	if (pfd < 0) {
		close(fd);
		return dest_fail(err, errlen, pfd,
				 "%s: cannot write there: %s", dd->url,
				 strerror(-pfd));
	}
	close(pfd);
	unlinkat(fd, tmp, 0);
	close(fd);
	return 0;
}

/* Invariant 5: one syncfs(2) makes every earlier put() durable. */
static int dir_sync(struct dest *d, char *err, size_t errlen)
{
	struct dest_dir *dd = to_dir(d);

	return dest_syncfs(dd->root, dd->url, err, errlen);
}

static void dir_close(struct dest *d)
{
	struct dest_dir *dd = to_dir(d);
	size_t i;

	if (!dd)
		return;
	for (i = 0; i < FOLDER_LOCKS; i++)
		pthread_mutex_destroy(&dd->folder[i]);
	free(dd->url);
	free(dd->root);
	free(dd);
}

/* dir:///ABSOLUTE/PATH, taken as written (no %-decoding): the caller
 * frees *out with dir_close(). */
static int dir_open(const char *url, struct store *home, struct dest **out,
		    char *err, size_t errlen)
{
	struct dest_dir *dd;
	const char *path;
	size_t i;
	int ret;

	*out = NULL;
	ret = dest_url_path(url, "dir", DIR_USAGE, &path, err, errlen);
	if (ret)
		return ret;
	dd = calloc(1, sizeof(*dd));
	if (!dd)
		return dest_fail(err, errlen, -ENOMEM, "%s: out of memory",
				 url);
	dd->d.ops = &dest_dir_ops;
	dd->home = home;
	for (i = 0; i < FOLDER_LOCKS; i++)
		pthread_mutex_init(&dd->folder[i], NULL);
	dd->url = strdup(url);
	dd->root = dest_path_dup(path);
	if (!dd->url || !dd->root) {
		dir_close(&dd->d);
		return dest_fail(err, errlen, -ENOMEM, "%s: out of memory",
				 url);
	}
	*out = &dd->d;
	return 0;
}

const struct dest_ops dest_dir_ops = {
	.scheme = "dir",
	.folders = 1,
	.open = dir_open,
	.check = dir_check,
	.put = dir_put,
	.delete_marker = dir_delete_marker,
	.sync = dir_sync,
	.close = dir_close,
};
