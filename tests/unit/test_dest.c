/*
 * test_dest.c - unit tests of the destinations: URLs and dest_open(),
 * which errors are permanent, the plain directory (dir://) in full, and
 * the checks of a second store (store://).  What a second store does
 * with a version needs store_put_replica(): those tests wait in
 * test_dest_store.c.pending until it exists.
 *
 * Each test gets a fresh temporary directory DIR, removed after it:
 * DIR/mirror is the destination, DIR/src.N the sources' content, and
 * DIR/outside what no key may reach.
 */
#include "replicator/dest.h"
#include "replicator/dest_i.h"
#include "store/log.h"
#include "tests/unit/helpers.h"

#include <dirent.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>

static char dir[64];
static char mirror[128];
static char url[160];
static struct dest *d;
static char msg[512];
static int nsrc;

static void setup(void)
{
	tmp_dir(dir);
	snprintf(mirror, sizeof(mirror), "%s/mirror", dir);
	cr_assert_eq(mkdir(mirror, 0755), 0);
	snprintf(url, sizeof(url), "dir://%s", mirror);
	cr_assert_eq(dest_open(url, &d, msg, sizeof(msg)), 0, "%s", msg);
	nsrc = 0;
}

static void teardown(void)
{
	dest_close(d);
	d = NULL;
	rm_rf(dir);
}

TestSuite(dest_dir, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers -------------------------------------------------------- */

#define MTIME_NS 1234567890123456789LL

/* A read-only fd on a new file holding @data; the caller closes it. */
static int src_fd(const char *data)
{
	char path[128];
	size_t len = strlen(data);
	int fd;

	snprintf(path, sizeof(path), "%s/src.%d", dir, nsrc++);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	return fd;
}

static struct repl_version version(const char *key, enum store_kind kind,
				   unsigned mode, int64_t mtime_ns)
{
	struct repl_version v = { .bucket = "photos", .key = key, .fd = -1 };

	v.obj.kind = kind;
	snprintf(v.obj.version_id, sizeof(v.obj.version_id), "v%d", nsrc);
	v.obj.meta.mode = mode;
	v.obj.meta.uid = 1000;
	v.obj.meta.gid = 100;
	v.obj.meta.mtime_ns = mtime_ns;
	v.obj.created_ns = mtime_ns;
	return v;
}

/* Put file @key with @data; returns put()'s result, message in msg. */
static int put_file(const char *key, const char *data, unsigned mode,
		    int64_t mtime_ns)
{
	struct repl_version v = version(key, STORE_FILE, S_IFREG | mode,
					mtime_ns);
	int ret;

	v.fd = src_fd(data);
	v.obj.size = strlen(data);
	msg[0] = '\0';
	ret = d->ops->put(d, &v, msg, sizeof(msg));
	close(v.fd);
	return ret;
}

static int put_link(const char *key, const char *target)
{
	struct repl_version v = version(key, STORE_SYMLINK, S_IFLNK | 0777,
					MTIME_NS);

	v.link_target = target;
	v.obj.size = strlen(target);
	msg[0] = '\0';
	return d->ops->put(d, &v, msg, sizeof(msg));
}

static int put_marker(const char *key, unsigned mode)
{
	struct repl_version v = version(key, STORE_DIR, S_IFDIR | mode,
					MTIME_NS);

	msg[0] = '\0';
	return d->ops->put(d, &v, msg, sizeof(msg));
}

static int del(const char *key)
{
	struct repl_version v = version(key, STORE_DELETE_MARKER, 0, 0);

	msg[0] = '\0';
	return d->ops->delete_marker(d, &v, msg, sizeof(msg));
}

/* Path of @rel under the mirror into @buf (PATH_MAX bytes). */
static void at(const char *rel, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s", mirror, rel);
}

static void content_is(const char *rel, const char *want)
{
	char path[PATH_MAX], buf[256];
	ssize_t n;
	int fd;

	at(rel, path);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", rel, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	cr_assert_str_eq(buf, want, "content of %s", rel);
}

static struct stat lstat_of(const char *rel)
{
	char path[PATH_MAX];
	struct stat sb;

	at(rel, path);
	cr_assert_eq(lstat(path, &sb), 0, "%s: %s", rel, strerror(errno));
	return sb;
}

static int exists(const char *rel)
{
	char path[PATH_MAX];
	struct stat sb;

	at(rel, path);
	return !lstat(path, &sb);
}

static void mtime_is(const struct stat *sb, int64_t ns)
{
	cr_assert_eq(sb->st_mtim.tv_sec, ns / 1000000000);
	cr_assert_eq(sb->st_mtim.tv_nsec, ns % 1000000000);
}

static int tmp_found;

static int tmp_one(const char *p, const struct stat *sb, int flag,
		   struct FTW *f)
{
	(void)sb;
	(void)flag;
	if (strstr(p + f->base, ".replicafs-tmp."))
		tmp_found++;
	return 0;
}

/* No temporary file anywhere in the mirror. */
static void no_tmp(void)
{
	tmp_found = 0;
	cr_assert_eq(nftw(mirror, tmp_one, 16, FTW_PHYS), 0);
	cr_assert_eq(tmp_found, 0, "%d temporary files left", tmp_found);
}

/* Number of entries in directory @rel of the mirror ("" for its top). */
static int entries(const char *rel)
{
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *dp;

	at(rel, path);
	dp = opendir(path);
	cr_assert_not_null(dp, "%s", path);
	while ((de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(dp);
	return n;
}

/* ---- files ---------------------------------------------------------- */

Test(dest_dir, file_with_mode_mtime_and_content)
{
	struct stat sb;

	cr_assert_eq(put_file("2026/05/cat.txt", "meow", 0640, MTIME_NS), 0,
		     "%s", msg);
	content_is("2026/05/cat.txt", "meow");
	sb = lstat_of("2026/05/cat.txt");
	cr_assert(S_ISREG(sb.st_mode));
	cr_assert_eq(sb.st_mode & 07777, 0640);
	cr_assert_eq(sb.st_size, 4);
	mtime_is(&sb, MTIME_NS);
	if (geteuid() == 0) {
		cr_assert_eq(sb.st_uid, 1000);
		cr_assert_eq(sb.st_gid, 100);
	}
	cr_assert(S_ISDIR(lstat_of("2026/05").st_mode));
	no_tmp();
}

Test(dest_dir, empty_file_and_setuid_bits)
{
	struct repl_version v = version("empty", STORE_FILE, S_IFREG | 04755,
					MTIME_NS);
	struct stat sb;

	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s", msg);
	sb = lstat_of("empty");
	cr_assert_eq(sb.st_size, 0);
	if (geteuid() == 0)	/* chmod comes after chown, which clears it */
		cr_assert_eq(sb.st_mode & 07777, 04755);
}

Test(dest_dir, overwrite_with_new_content)
{
	struct stat sb;

	cr_assert_eq(put_file("a.txt", "a long first version", 0644, 1), 0,
		     "%s", msg);
	cr_assert_eq(put_file("a.txt", "second", 0600, MTIME_NS), 0, "%s",
		     msg);
	content_is("a.txt", "second");
	sb = lstat_of("a.txt");
	cr_assert_eq(sb.st_mode & 07777, 0600);
	mtime_is(&sb, MTIME_NS);
	cr_assert_eq(entries(""), 1);
	no_tmp();
}

Test(dest_dir, put_twice_leaves_one_correct_file)
{
	struct repl_version v = version("dir/twice", STORE_FILE,
					S_IFREG | 0644, MTIME_NS);
	int i;

	v.fd = src_fd("same bytes");
	v.obj.size = 10;
	for (i = 0; i < 2; i++)
		cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s",
			     msg);
	close(v.fd);
	content_is("dir/twice", "same bytes");
	cr_assert_eq(entries("dir"), 1);
	cr_assert_eq(entries(""), 1);
	no_tmp();
}

/* Make @rel under the mirror as a killed delivery leaves it: a partial
 * temporary file nobody holds; with @held, an fd of it that holds its
 * lock, as a live writer's (else -1). */
static int tmp_left(const char *rel, const char *data, int held)
{
	char path[PATH_MAX];
	int fd;

	at(rel, path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	if (held) {
		cr_assert_eq(flock(fd, LOCK_EX), 0);
		return fd;
	}
	close(fd);
	return -1;
}

/* A delivery killed mid-copy left its temporary file: the next delivery
 * of that key, or a delete marker of it, removes it; one that a live
 * writer holds is left to it (EAGAIN, retried). */
Test(dest_dir, temporary_files_of_killed_deliveries_go)
{
	char path[PATH_MAX];
	int fd;

	at("d", path);
	cr_assert_eq(mkdir(path, 0755), 0);
	tmp_left("d/.f.replicafs-tmp.000000", "partial", 0);
	cr_assert_eq(put_file("d/f", "whole", 0644, MTIME_NS), 0, "%s", msg);
	content_is("d/f", "whole");
	cr_expect_eq(entries("d"), 1);

	tmp_left("d/.g.replicafs-tmp.000000", "partial", 0);
	cr_assert_eq(del("d/g"), 0, "%s", msg);
	cr_expect_eq(entries("d"), 1);

	tmp_left("d/.l.replicafs-tmp.000000", "partial", 0);
	cr_assert_eq(put_link("d/l", "f"), 0, "%s", msg);
	cr_expect_eq(entries("d"), 2);
	no_tmp();

	fd = tmp_left("d/.h.replicafs-tmp.000000", "another writer's", 1);
	cr_expect_eq(put_file("d/h", "mine", 0644, MTIME_NS), -EAGAIN,
		     "%s", msg);
	cr_expect_eq(exists("d/h"), 0);
	cr_expect_eq(exists("d/.h.replicafs-tmp.000000"), 1);
	close(fd);	/* that writer dies */
	cr_assert_eq(put_file("d/h", "mine", 0644, MTIME_NS), 0, "%s", msg);
	content_is("d/h", "mine");
	no_tmp();
}

Test(dest_dir, short_content_is_an_error_and_leaves_nothing)
{
	struct repl_version v = version("short", STORE_FILE, S_IFREG | 0644,
					MTIME_NS);
	int ret;

	v.fd = src_fd("abc");
	v.obj.size = 10;
	ret = d->ops->put(d, &v, msg, sizeof(msg));
	close(v.fd);
	cr_assert_eq(ret, -EIO);
	cr_assert_not_null(strstr(msg, "short"), "%s", msg);
	cr_assert(!exists("short"));
	no_tmp();
}

Test(dest_dir, big_file_is_copied_whole)
{
	struct repl_version v = version("big", STORE_FILE, S_IFREG | 0644,
					MTIME_NS);
	size_t size = 3 * 1024 * 1024 + 17, i;
	char path[128], dst[PATH_MAX];
	unsigned char *buf = malloc(size), *back = malloc(size);
	int fd;

	cr_assert(buf && back);
	for (i = 0; i < size; i++)
		buf[i] = (unsigned char)(i * 7 + i / 4096);
	snprintf(path, sizeof(path), "%s/bigsrc", dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, size), (ssize_t)size);
	v.fd = fd;
	v.obj.size = size;
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s", msg);
	close(fd);
	at("big", dst);
	fd = open(dst, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, back, size), (ssize_t)size);
	close(fd);
	cr_assert_eq(memcmp(buf, back, size), 0);
	free(buf);
	free(back);
}

/* user.* always; trusted.* and a file capability where the replicator
 * is root, as rsync -aX copies them; never the rest of security.*. */
Test(dest_dir, user_xattrs_are_copied)
{
	static const char cap[20] = { 1, 0, 0, 2, 0, 0x20 };
	struct store_xattr xs[] = {
		{ "user.color", "blue", 4 },
		{ "trusted.secret", "no", 2 },
		{ "security.capability", cap, sizeof(cap) },
		{ "security.ima", "hash", 4 },
	};
	struct repl_version v = version("x.txt", STORE_FILE, S_IFREG | 0644,
					MTIME_NS);
	char path[PATH_MAX], buf[32];
	ssize_t n;

	v.fd = src_fd("x");
	v.obj.size = 1;
	v.xattrs = xs;
	v.nxattrs = 4;
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), 0, "%s", msg);
	close(v.fd);
	at("x.txt", path);
	n = getxattr(path, "user.color", buf, sizeof(buf));
	if (n < 0 && errno == ENOTSUP)
		cr_skip_test("no user xattrs on this file system");
	cr_assert_eq(n, 4);
	cr_assert_eq(memcmp(buf, "blue", 4), 0);
	if (geteuid() == 0) {
		cr_expect_eq(getxattr(path, "trusted.secret", buf, sizeof(buf)),
			     2);
		cr_expect_eq(getxattr(path, "security.capability", buf,
				      sizeof(buf)),
			     (ssize_t)sizeof(cap));
	} else {
		cr_expect_eq(getxattr(path, "trusted.secret", buf, sizeof(buf)),
			     -1);
	}
	cr_expect_eq(getxattr(path, "security.ima", buf, sizeof(buf)), -1);
}

/* ---- symlinks and directories --------------------------------------- */

Test(dest_dir, symlink)
{
	char path[PATH_MAX], buf[64];
	struct stat sb;
	ssize_t n;

	cr_assert_eq(put_link("links/l", "../target/x"), 0, "%s", msg);
	at("links/l", path);
	n = readlink(path, buf, sizeof(buf) - 1);
	cr_assert_eq(n, 11);
	buf[n] = '\0';
	cr_assert_str_eq(buf, "../target/x");
	sb = lstat_of("links/l");
	cr_assert(S_ISLNK(sb.st_mode));
	mtime_is(&sb, MTIME_NS);
	if (geteuid() == 0)
		cr_assert_eq(sb.st_uid, 1000);
	cr_assert_eq(put_link("links/l", "other"), 0, "%s", msg);
	n = readlink(path, buf, sizeof(buf) - 1);
	cr_assert_eq(n, 5);
	cr_assert_eq(entries("links"), 1);
	no_tmp();
}

Test(dest_dir, dir_marker)
{
	struct stat sb;

	cr_assert_eq(put_marker("a/b/", 0700), 0, "%s", msg);
	sb = lstat_of("a/b");
	cr_assert(S_ISDIR(sb.st_mode));
	cr_assert_eq(sb.st_mode & 07777, 0700);
	mtime_is(&sb, MTIME_NS);
	if (geteuid() == 0)
		cr_assert_eq(sb.st_gid, 100);
	/* Again, on the existing directory: new mode. */
	cr_assert_eq(put_marker("a/b/", 0750), 0, "%s", msg);
	cr_assert_eq(lstat_of("a/b").st_mode & 07777, 0750);
	/* A marker of a directory that holds files changes only it. */
	cr_assert_eq(put_file("a/f", "f", 0644, 1), 0, "%s", msg);
	cr_assert_eq(put_marker("a/", 0711), 0, "%s", msg);
	cr_assert_eq(lstat_of("a").st_mode & 07777, 0711);
	content_is("a/f", "f");
}

/* ---- folders above a key -------------------------------------------- */

/* A POSIX access ACL as the kernel keeps it (posix_acl_xattr): owner rwx,
 * user 65534 r-x, owning group none, mask r-x, others none. */
static const unsigned char acl_nobody[] = {
	2, 0, 0, 0,				/* version */
	1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,	/* USER_OBJ rwx */
	2, 0, 5, 0, 0xfe, 0xff, 0, 0,		/* USER 65534 r-x */
	4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,	/* GROUP_OBJ --- */
	0x10, 0, 5, 0, 0xff, 0xff, 0xff, 0xff,	/* MASK r-x */
	0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,	/* OTHER --- */
};

/* Folder marker @key of bucket "photos" in store @st, with @mode and,
 * when @nx, the xattrs @x. */
static void marker_in(struct store *st, const char *key, unsigned mode,
		      const struct store_xattr *x, size_t nx)
{
	struct store_put p = { .kind = STORE_DIR, .fd = -1 };

	p.meta = (struct store_meta){ .mode = S_IFDIR | mode, .uid = 1000,
				      .gid = 100, .mtime_ns = MTIME_NS };
	p.mtime_set = 1;
	p.xattrs = x;
	p.nxattrs = nx;
	cr_assert_eq(store_put(st, "photos", key, &p, NULL, NULL), 0, "%s",
		     key);
}

/* A rule with a prefix filter sends "home/alice/inbox/m1.txt" and not
 * the markers of the folders above it: without the source at hand, the
 * mirror makes them 0700, never more open than the source's.  (They were
 * 0755: every user of the mirror read what alice's 0700 folder hides.) */
Test(dest_dir, missing_parents_are_0700_without_the_source)
{
	struct stat sb;

	cr_assert_eq(put_file("home/alice/inbox/m1.txt", "m1", 0644, 1), 0,
		     "%s", msg);
	content_is("home/alice/inbox/m1.txt", "m1");
	cr_assert_eq(lstat_of("home").st_mode & 07777, 0700);
	cr_assert_eq(lstat_of("home/alice").st_mode & 07777, 0700);
	sb = lstat_of("home/alice/inbox");
	cr_assert_eq(sb.st_mode & 07777, 0700);
	cr_assert_eq(sb.st_uid, geteuid());
	cr_assert_eq(lstat_of("home/alice/inbox/m1.txt").st_mode & 07777, 0644);
}

/* With the source's store at hand, a folder the mirror must make gets
 * what the source's marker of it has: owner, mode, mtime, ACL and user
 * xattrs; one the source has no marker of is 0700. */
Test(dest_dir, missing_parents_are_made_as_the_source_has_them)
{
	const struct store_xattr team[] = {
		{ "system.posix_acl_access", acl_nobody, sizeof(acl_nobody) },
		{ "user.note", "team", 4 },
	};
	char path[PATH_MAX], buf[128];
	struct store *home;
	struct stat sb;
	ssize_t n;

	home = store_new(dir);
	bucket_new(home, "photos", STORE_ENABLED);
	marker_in(home, "home/alice/", 0700, NULL, 0);
	marker_in(home, "home/alice/inbox/", 0755, NULL, 0);
	marker_in(home, "team/", 0750, team, 2);
	dest_close(d);
	cr_assert_eq(dest_open_home(url, home, &d, msg, sizeof(msg)), 0, "%s",
		     msg);

	cr_assert_eq(put_file("home/alice/inbox/m1.txt", "m1", 0644, 1), 0,
		     "%s", msg);
	cr_assert_eq(lstat_of("home").st_mode & 07777, 0700,
		     "a folder the source has no marker of");
	sb = lstat_of("home/alice");
	cr_assert_eq(sb.st_mode & 07777, 0700);
	if (geteuid() == 0) {
		cr_assert_eq(sb.st_uid, 1000);
		cr_assert_eq(sb.st_gid, 100);
	}
	sb = lstat_of("home/alice/inbox");
	cr_assert_eq(sb.st_mode & 07777, 0755);
	mtime_is(&sb, MTIME_NS);
	if (geteuid() == 0)
		cr_assert_eq(sb.st_uid, 1000);
	content_is("home/alice/inbox/m1.txt", "m1");

	cr_assert_eq(put_file("team/doc", "doc", 0640, 1), 0, "%s", msg);
	cr_assert_eq(lstat_of("team").st_mode & 07777, 0750);
	at("team", path);
	n = getxattr(path, "system.posix_acl_access", buf, sizeof(buf));
	if (n >= 0 || errno != ENOTSUP) {
		cr_assert_eq(n, (ssize_t)sizeof(acl_nobody), "%s",
			     strerror(errno));
		cr_assert_eq(memcmp(buf, acl_nobody, n), 0);
	}
	n = getxattr(path, "user.note", buf, sizeof(buf));
	if (n >= 0 || errno != ENOTSUP) {
		cr_assert_eq(n, 4);
		cr_assert_eq(memcmp(buf, "team", 4), 0);
	}
	dest_close(d);
	d = NULL;
	store_close(home);
}

/* ---- delete markers ------------------------------------------------- */

Test(dest_dir, delete_marker_removes_and_twice_is_fine)
{
	cr_assert_eq(put_file("d/gone.txt", "x", 0644, 1), 0, "%s", msg);
	cr_assert_eq(put_link("d/link", "gone.txt"), 0, "%s", msg);
	cr_assert_eq(del("d/gone.txt"), 0, "%s", msg);
	cr_assert(!exists("d/gone.txt"));
	cr_assert(exists("d/link"), "a link to it stays");
	cr_assert_eq(del("d/gone.txt"), 0, "%s", msg);
	cr_assert_eq(del("d/link"), 0, "%s", msg);
	cr_assert(!exists("d/link"));
	/* Nothing there at all, not even the parent. */
	cr_assert_eq(del("never/was/here"), 0, "%s", msg);
	cr_assert(!exists("never"));
}

Test(dest_dir, delete_marker_of_a_dir_marker)
{
	cr_assert_eq(put_marker("e/", 0755), 0, "%s", msg);
	cr_assert_eq(del("e/"), 0, "%s", msg);
	cr_assert(!exists("e"));
	cr_assert_eq(del("e/"), 0, "%s", msg);
	/* A directory that still holds a key stays. */
	cr_assert_eq(put_file("f/keep", "k", 0644, 1), 0, "%s", msg);
	cr_assert_eq(del("f/"), 0, "%s", msg);
	content_is("f/keep", "k");
	/* Deletes remove only their own kind. */
	cr_assert_eq(del("f"), 0, "%s", msg);
	cr_assert(S_ISDIR(lstat_of("f").st_mode));
	cr_assert_eq(put_file("g", "g", 0644, 1), 0, "%s", msg);
	cr_assert_eq(del("g/"), 0, "%s", msg);
	content_is("g", "g");
}

static int del_gone(const char *key, unsigned gone)
{
	struct repl_version v = version(key, STORE_DELETE_MARKER, 0, 0);

	v.gone_parents = gone;
	msg[0] = '\0';
	return d->ops->delete_marker(d, &v, msg, sizeof(msg));
}

/* After a rename or rm -rf of a folder at the source, the deletes of its
 * keys come in any order; the folders the source no longer has go as
 * they empty, not those it still has, nor any that holds something. */
Test(dest_dir, folders_gone_at_the_source_go_once_empty)
{
	cr_assert_eq(put_marker("a/", 0755), 0, "%s", msg);
	cr_assert_eq(put_marker("a/b/", 0755), 0, "%s", msg);
	cr_assert_eq(put_file("a/b/f", "f", 0644, 1), 0, "%s", msg);
	cr_assert_eq(put_file("a/g", "g", 0644, 1), 0, "%s", msg);
	cr_assert_eq(put_file("keep/sub/h", "h", 0644, 1), 0, "%s", msg);
	/* The folders' markers first: they still hold files. */
	cr_assert_eq(del_gone("a/", 0), 0, "%s", msg);
	cr_assert_eq(del_gone("a/b/", 1), 0, "%s", msg);
	cr_assert(exists("a/b/f"));
	/* The last file of a/b takes a/b; a still holds g. */
	cr_assert_eq(del_gone("a/b/f", 2), 0, "%s", msg);
	cr_assert(!exists("a/b"));
	content_is("a/g", "g");
	cr_assert_eq(del_gone("a/g", 1), 0, "%s", msg);
	cr_assert(!exists("a"));
	/* Delivered again: nothing left to do. */
	cr_assert_eq(del_gone("a/b/f", 2), 0, "%s", msg);
	/* A folder the source still has stays, empty (count 1: sub only). */
	cr_assert_eq(del_gone("keep/sub/h", 1), 0, "%s", msg);
	cr_assert(!exists("keep/sub"));
	cr_assert(S_ISDIR(lstat_of("keep").st_mode));
	/* Never above the mirror's root, whatever the count. */
	cr_assert_eq(put_file("x/y", "y", 0644, 1), 0, "%s", msg);
	cr_assert_eq(del_gone("x/y", 9), 0, "%s", msg);
	cr_assert(!exists("x"));
	cr_assert(S_ISDIR(lstat_of(".").st_mode));
}

Test(dest_dir, delete_marker_needs_the_kind)
{
	struct repl_version v = version("x", STORE_FILE, S_IFREG | 0644, 1);

	cr_assert_eq(d->ops->delete_marker(d, &v, msg, sizeof(msg)),
		     -EINVAL);
	v.obj.kind = STORE_DELETE_MARKER;
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), -EINVAL);
}

/* ---- a name that changes its kind ----------------------------------- */

Test(dest_dir, kind_changes)
{
	char path[PATH_MAX], buf[32];

	cr_assert_eq(put_file("k", "file", 0644, 1), 0, "%s", msg);
	cr_assert_eq(put_link("k", "somewhere"), 0, "%s", msg);
	cr_assert(S_ISLNK(lstat_of("k").st_mode));
	at("k", path);
	cr_assert_eq(readlink(path, buf, sizeof(buf)), 9);
	cr_assert_eq(put_file("k", "file again", 0644, 1), 0, "%s", msg);
	content_is("k", "file again");
	/* File to directory, and an empty directory to a file. */
	cr_assert_eq(put_marker("k/", 0755), 0, "%s", msg);
	cr_assert(S_ISDIR(lstat_of("k").st_mode));
	cr_assert_eq(put_file("k", "over an empty dir", 0644, 1), 0, "%s",
		     msg);
	content_is("k", "over an empty dir");
	/* A link to a directory marker. */
	cr_assert_eq(put_link("m", "k"), 0, "%s", msg);
	cr_assert_eq(put_marker("m/", 0755), 0, "%s", msg);
	cr_assert(S_ISDIR(lstat_of("m").st_mode));
	cr_assert(S_ISREG(lstat_of("k").st_mode), "the link was not followed");
	no_tmp();
}

Test(dest_dir, a_full_directory_in_the_way_is_retried)
{
	int ret;

	cr_assert_eq(put_file("n/child", "c", 0644, 1), 0, "%s", msg);
	ret = put_file("n", "n", 0644, 1);
	cr_assert_eq(ret, -EEXIST, "%d %s", ret, msg);
	cr_assert(!dest_error_permanent(ret));
	cr_assert_not_null(strstr(msg, "not empty"), "%s", msg);
	content_is("n/child", "c");
	/* A file where a key needs a directory. */
	cr_assert_eq(put_file("p", "p", 0644, 1), 0, "%s", msg);
	ret = put_file("p/q", "q", 0644, 1);
	cr_assert_eq(ret, -EEXIST, "%d %s", ret, msg);
	content_is("p", "p");
	no_tmp();
}

/* ---- keys that could escape ----------------------------------------- */

Test(dest_dir, bad_keys_are_refused)
{
	static const char *const bad[] = {
		"../outside", "a/../../outside", "..", "./a", "a/./b",
		"a//b", "/etc/passwd", "", "a/..", "a/.",
		".x.replicafs-tmp.abc123", "d/.y.replicafs-tmp.zzzzzz",
	};
	char path[128];
	struct stat sb;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ret = put_file(bad[i], "evil", 0644, 1);
		cr_assert_eq(ret, -EINVAL, "key '%s': %d", bad[i], ret);
		cr_assert(dest_error_permanent(ret));
		cr_assert_not_null(strstr(msg, "refused") ?
					   strstr(msg, "refused") :
					   strstr(msg, "empty key"),
				   "%s", msg);
		/* A key of a temporary name's shape never reached the
		 * mirror: its delete marker has nothing to do (it was
		 * FAILED for good before, with the key removed). */
		cr_assert_eq(del(bad[i]), strstr(bad[i], ".replicafs-tmp.")
						  ? 0 : -EINVAL,
			     "delete '%s'", bad[i]);
	}
	cr_assert_eq(put_marker("../up/", 0755), -EINVAL);
	snprintf(path, sizeof(path), "%s/outside", dir);
	cr_assert(stat(path, &sb) && errno == ENOENT);
	cr_assert(stat("/etc/passwd", &sb) == 0 && sb.st_size != 4);
	cr_assert_eq(entries(""), 0);
	/* A dot file is fine; only the exact shape is kept. */
	cr_assert_eq(put_file(".hidden", "h", 0644, 1), 0, "%s", msg);
	cr_assert_eq(put_file("a..b", "h", 0644, 1), 0, "%s", msg);
	cr_assert_eq(put_file(".x.replicafs-tmp.ABCDEF", "h", 0644, 1), 0,
		     "%s", msg);
	/* ... and such a key's delete marker leaves the temporary file of
	 * another key's delivery alone. */
	cr_assert_eq(put_file("d/q", "q", 0644, 1), 0, "%s", msg);
	tmp_left("d/.q.replicafs-tmp.000000", "partial", 0);
	cr_assert_eq(del("d/.q.replicafs-tmp.000000"), 0, "%s", msg);
	cr_assert(exists("d/.q.replicafs-tmp.000000"));
	cr_assert(exists("d/q"));
}

Test(dest_dir, long_component_is_refused)
{
	char key[300];

	memset(key, 'a', 256);
	key[256] = '\0';
	cr_assert_eq(put_file(key, "x", 0644, 1), -ENAMETOOLONG);
	/* 255 is the longest, and its temporary name still fits. */
	key[255] = '\0';
	cr_assert_eq(put_file(key, "x", 0644, 1), 0, "%s", msg);
	no_tmp();
}

Test(dest_dir, symlinks_in_the_mirror_are_not_followed)
{
	char outside[128], path[256];
	struct stat sb;
	int ret;

	snprintf(outside, sizeof(outside), "%s/outside", dir);
	cr_assert_eq(mkdir(outside, 0755), 0);
	cr_assert_eq(put_link("esc", outside), 0, "%s", msg);
	ret = put_file("esc/owned", "evil", 0644, 1);
	cr_assert_eq(ret, -EEXIST, "%d %s", ret, msg);
	ret = put_marker("esc/sub/", 0755);
	cr_assert_eq(ret, -EEXIST, "%d %s", ret, msg);
	snprintf(path, sizeof(path), "%s/owned", outside);
	cr_assert(stat(path, &sb) && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/sub", outside);
	cr_assert(stat(path, &sb) && errno == ENOENT);
	/* A delete through the link removes nothing out there. */
	snprintf(path, sizeof(path), "%s/victim", outside);
	cr_assert_eq(close(open(path, O_WRONLY | O_CREAT, 0644)), 0);
	cr_assert_eq(del("esc/victim"), 0, "%s", msg);
	cr_assert_eq(stat(path, &sb), 0);
}

/* ---- check() -------------------------------------------------------- */

/* check() of dir://@path: its result, message in msg. */
static int check_url(const char *path)
{
	struct dest *o;
	char u[256];
	int ret;

	snprintf(u, sizeof(u), "dir://%s", path);
	cr_assert_eq(dest_open(u, &o, msg, sizeof(msg)), 0, "%s", msg);
	msg[0] = '\0';
	ret = o->ops->check(o, msg, sizeof(msg));
	dest_close(o);
	return ret;
}

Test(dest_dir, check)
{
	char path[128], want[256];

	cr_assert_eq(d->ops->check(d, msg, sizeof(msg)), 0, "%s", msg);
	no_tmp();
	cr_assert_eq(entries(""), 0, "the probe is gone");

	snprintf(path, sizeof(path), "%s/missing", dir);
	cr_assert_eq(check_url(path), -ENOENT);
	snprintf(want, sizeof(want), "dir://%s: No such file or directory",
		 path);
	cr_assert_str_eq(msg, want);
	cr_assert(dest_error_permanent(-ENOENT));

	/* A file in place of the directory, and a path under a file. */
	snprintf(path, sizeof(path), "%s/src.file", dir);
	cr_assert_eq(close(open(path, O_WRONLY | O_CREAT, 0644)), 0);
	cr_assert_eq(check_url(path), -ENOTDIR, "%s", msg);
	snprintf(want, sizeof(want), "dir://%s: Not a directory", path);
	cr_assert_str_eq(msg, want);
	snprintf(path, sizeof(path), "%s/src.file/sub", dir);
	cr_assert_eq(check_url(path), -ENOTDIR, "%s", msg);
}

Test(dest_dir, check_unwritable)
{
	int fd, flags = 0, ret;

	if (geteuid() != 0) {
		cr_assert_eq(chmod(mirror, 0555), 0);
		ret = d->ops->check(d, msg, sizeof(msg));
		chmod(mirror, 0755);
		cr_assert_eq(ret, -EACCES, "%d %s", ret, msg);
	} else {
		/* Root writes anywhere but in an immutable directory. */
		fd = open(mirror, O_RDONLY | O_DIRECTORY);
		cr_assert_geq(fd, 0);
		if (ioctl(fd, FS_IOC_GETFLAGS, &flags) ||
		    (flags |= FS_IMMUTABLE_FL,
		     ioctl(fd, FS_IOC_SETFLAGS, &flags))) {
			close(fd);
			cr_skip_test("cannot make a directory immutable here");
		}
		ret = d->ops->check(d, msg, sizeof(msg));
		flags &= ~FS_IMMUTABLE_FL;
		cr_assert_eq(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
		close(fd);
		cr_assert_eq(ret, -EPERM, "%d %s", ret, msg);
	}
	cr_assert_not_null(strstr(msg, "cannot write there"), "%s", msg);
	cr_assert(dest_error_permanent(ret));
}

Test(dest_dir, missing_root_fails_put_but_not_delete_silently)
{
	char path[128];
	struct dest *o;
	struct repl_version v;
	char u[256];
	int ret;

	snprintf(path, sizeof(path), "%s/missing", dir);
	snprintf(u, sizeof(u), "dir://%s", path);
	cr_assert_eq(dest_open(u, &o, msg, sizeof(msg)), 0, "%s", msg);
	v = version("a", STORE_SYMLINK, S_IFLNK | 0777, 1);
	v.link_target = "b";
	ret = o->ops->put(o, &v, msg, sizeof(msg));
	cr_assert_eq(ret, -ENOENT, "%d %s", ret, msg);
	v.obj.kind = STORE_DELETE_MARKER;
	ret = o->ops->delete_marker(o, &v, msg, sizeof(msg));
	cr_assert_eq(ret, -ENOENT, "%d %s", ret, msg);
	dest_close(o);
	cr_assert(stat(path, &(struct stat){ 0 }) && errno == ENOENT);
}

/* ---- workers at once ------------------------------------------------ */

#define WORKERS 8
#define PER_WORKER 40

static char worker_msg[WORKERS][512];

/* Put file @key with content @data from worker @id; 0 or put()'s error. */
static int worker_put(long id, const char *key, const char *data, char *m)
{
	struct repl_version v = version(key, STORE_FILE, S_IFREG | 0644,
					MTIME_NS);
	size_t len = strlen(data);
	char path[128];
	static atomic_int n;
	int ret;

	snprintf(path, sizeof(path), "%s/w%ld-%d", dir, id,
		 atomic_fetch_add(&n, 1));
	v.fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (v.fd < 0)
		return -errno;
	if (write(v.fd, data, len) != (ssize_t)len) {
		close(v.fd);
		return -EIO;
	}
	v.obj.size = len;
	ret = d->ops->put(d, &v, m, 512);
	close(v.fd);
	return ret;
}

/*
 * Criterion's asserts are for the main thread: a worker returns the step
 * that failed, with the sentence in worker_msg[id].  As the engine does,
 * no two workers touch one key at once; but the last worker makes and
 * removes the marker "shared/q/", an empty directory, while the others
 * put and delete files in it, so their parent comes and goes under them.
 */
static void *worker(void *arg)
{
	long id = (long)arg;
	char key[64], data[32], *m = worker_msg[id];
	struct repl_version v;
	int i;

	for (i = 0; i < PER_WORKER; i++) {
		if (id == WORKERS - 1) {
			v = version("shared/q/", STORE_DIR, S_IFDIR | 0755, 1);
			if (d->ops->put(d, &v, m, 512))
				return (void *)3;
			v.obj.kind = STORE_DELETE_MARKER;
			if (d->ops->delete_marker(d, &v, m, 512))
				return (void *)4;
			continue;
		}
		snprintf(key, sizeof(key), "shared/deep/w%ld-%d", id, i);
		snprintf(data, sizeof(data), "worker %ld file %d", id, i);
		if (worker_put(id, key, data, m))
			return (void *)1;
		snprintf(key, sizeof(key), "shared/q/w%ld-%d", id, i);
		if (worker_put(id, key, data, m))
			return (void *)2;
		v = version(key, STORE_DELETE_MARKER, 0, 0);
		if (d->ops->delete_marker(d, &v, m, 512))
			return (void *)5;
	}
	return NULL;
}

Test(dest_dir, workers_at_once)
{
	pthread_t t[WORKERS];
	void *res[WORKERS];
	int made = 0;
	long i;

	for (i = 0; i < WORKERS; i++)
		if (!pthread_create(&t[i], NULL, worker, (void *)i))
			made++;
	/* Join them all before any assert can end the test. */
	for (i = 0; i < made; i++)
		pthread_join(t[i], &res[i]);
	cr_assert_eq(made, WORKERS);
	for (i = 0; i < WORKERS; i++)
		cr_assert_null(res[i], "worker %ld failed at step %ld: %s", i,
			       (long)(intptr_t)res[i], worker_msg[i]);
	cr_assert_eq(entries("shared/deep"), (WORKERS - 1) * PER_WORKER);
	content_is("shared/deep/w3-7", "worker 3 file 7");
	no_tmp();
}

/* ---- URLs and errors ------------------------------------------------ */

Test(dest_dir, urls)
{
	static const char *const bad[] = {
		"nourl", "://x", "ftp://x/y", "dir://host/path", "dir:relative",
		"dir://", "store://host/s/b", "store:///bucket",
		"store:///s/Not_A_Bucket", "store:///s/ab",
	};
	struct dest *o;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		cr_assert_eq(dest_open(bad[i], &o, msg, sizeof(msg)), -EINVAL,
			     "%s", bad[i]);
		cr_assert_null(o);
		cr_assert_neq(msg[0], '\0', "%s: no sentence", bad[i]);
	}
	cr_assert_eq(dest_open(NULL, &o, msg, sizeof(msg)), -EINVAL);
	cr_assert_eq(dest_open("DIR:///tmp/", &o, msg, sizeof(msg)), 0);
	cr_assert_str_eq(o->ops->scheme, "dir");
	dest_close(o);
	cr_assert_eq(dest_open("store:///s/t/bucket", &o, msg, sizeof(msg)),
		     0, "%s", msg);
	cr_assert_str_eq(o->ops->scheme, "store");
	dest_close(o);
	dest_close(NULL);
}

Test(dest_dir, permanent_errors)
{
	static const int perm[] = { EACCES, EPERM, ENOENT, ENOTDIR, EROFS,
				    EINVAL, ENAMETOOLONG, EBADMSG };
	static const int heal[] = { ENOSPC, EIO, EAGAIN, ETIMEDOUT,
				    ECONNREFUSED, EEXIST, ENOMEM, ENOSYS };
	size_t i;

	for (i = 0; i < sizeof(perm) / sizeof(perm[0]); i++)
		cr_assert(dest_error_permanent(-perm[i]), "%s",
			  strerror(perm[i]));
	for (i = 0; i < sizeof(heal) / sizeof(heal[0]); i++)
		cr_assert(!dest_error_permanent(-heal[i]), "%s",
			  strerror(heal[i]));
	cr_assert(!dest_error_permanent(0));
}

/* ---- store://: what works without store_put_replica() --------------- */

static struct store *dst;

static void store_setup(void)
{
	tmp_dir(dir);
	dst = store_new(dir);
	d = NULL;
}

static void store_teardown(void)
{
	dest_close(d);
	d = NULL;
	store_close(dst);
	dst = NULL;
	rm_rf(dir);
}

TestSuite(dest_store, .init = store_setup, .fini = store_teardown,
	  .timeout = 60);

/* check() of store://DIR/@rest: its result, message in msg. */
static int ds_check_url(const char *rest)
{
	snprintf(url, sizeof(url), "store://%s/%s", dir, rest);
	dest_close(d);
	cr_assert_eq(dest_open(url, &d, msg, sizeof(msg)), 0, "%s", msg);
	msg[0] = '\0';
	return d->ops->check(d, msg, sizeof(msg));
}

Test(dest_store, check)
{
	char want[256];
	int ret;

	bucket_new(dst, "enabled", STORE_ENABLED);
	bucket_new(dst, "suspended", STORE_ENABLED);
	cr_assert_eq(store_bucket_set_versioning(dst, "suspended",
						 STORE_SUSPENDED), 0);
	bucket_new(dst, "plain", STORE_UNVERSIONED);

	cr_assert_eq(ds_check_url("store/enabled"), 0, "%s", msg);
	/* Twice on one handle: the store stays open. */
	cr_assert_eq(d->ops->check(d, msg, sizeof(msg)), 0, "%s", msg);

	ret = ds_check_url("store/suspended");
	cr_assert_eq(ret, -EINVAL);
	cr_assert(dest_error_permanent(ret));
	snprintf(want, sizeof(want),
		 "store://%s/store/suspended: versioning of bucket suspended "
		 "is not Enabled", dir);
	cr_assert_str_eq(msg, want);
	cr_assert_eq(ds_check_url("store/plain"), -EINVAL);
	cr_assert_not_null(strstr(msg, "is not Enabled"), "%s", msg);

	cr_assert_eq(ds_check_url("store/nobucket"), -ENOENT);
	cr_assert_not_null(strstr(msg, "bucket nobucket does not exist"),
			   "%s", msg);
}

Test(dest_store, missing_store_is_not_created)
{
	char path[128];
	struct stat sb;
	int ret;

	ret = ds_check_url("nostore/bucket");
	cr_assert_eq(ret, -ENOENT, "%d %s", ret, msg);
	cr_assert(dest_error_permanent(ret));
	cr_assert_not_null(strstr(msg, "cannot open the store"), "%s", msg);
	snprintf(path, sizeof(path), "%s/nostore", dir);
	cr_assert(stat(path, &sb) && errno == ENOENT);
	/* A directory that is not a store is not made one. */
	cr_assert_eq(mkdir(path, 0755), 0);
	ret = ds_check_url("nostore/bucket");
	cr_assert_eq(ret, -ENOENT, "%d %s", ret, msg);
	snprintf(path, sizeof(path), "%s/nostore/catalog.db", dir);
	cr_assert(stat(path, &sb) && errno == ENOENT);
}

Test(dest_store, wrong_kinds_are_refused)
{
	struct repl_version v = { .bucket = "b", .key = "k", .fd = -1 };

	bucket_new(dst, "enabled", STORE_ENABLED);
	cr_assert_eq(ds_check_url("store/enabled"), 0, "%s", msg);
	v.obj.kind = STORE_DELETE_MARKER;
	snprintf(v.obj.version_id, sizeof(v.obj.version_id), "abc");
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), -EINVAL);
	v.obj.kind = STORE_FILE;
	cr_assert_eq(d->ops->delete_marker(d, &v, msg, sizeof(msg)),
		     -EINVAL);
	v.obj.version_id[0] = '\0';
	cr_assert_eq(d->ops->put(d, &v, msg, sizeof(msg)), -EINVAL);
	cr_assert_not_null(strstr(msg, "without an ID"), "%s", msg);
}

/* A blob longer or shorter than its version is refused, and leaves no
 * file and no temporary one behind. */
Test(dest_dir, a_blob_of_another_size_is_refused)
{
	static const char *const blob[] = { "abcd", "ab" };
	static const char *const why[] = { "longer", "shorter" };
	struct repl_version v = version("sized", STORE_FILE, S_IFREG | 0644,
					MTIME_NS);
	int ret, i;

	v.obj.size = 3;	/* the version is "abc" */
	for (i = 0; i < 2; i++) {
		v.fd = src_fd(blob[i]);
		ret = d->ops->put(d, &v, msg, sizeof(msg));
		close(v.fd);
		cr_assert_eq(ret, -EIO, "%s", msg);
		cr_assert_not_null(strstr(msg, why[i]), "%s", msg);
	}
	cr_assert(!exists("sized"));
	no_tmp();
}

/* A source blob the disk damaged does not reach the mirror as the
 * version: the copy is hashed, and the error is one no retry heals (it
 * was copied, and COMPLETED). */
Test(dest_dir, a_damaged_source_is_refused_for_good)
{
	struct repl_version v = version("rot", STORE_FILE, S_IFREG | 0644,
					MTIME_NS);
	int ret;

	v.fd = src_fd("abd");	/* the version is "abc" */
	v.obj.size = 3;
	snprintf(v.obj.sha256, sizeof(v.obj.sha256), "%s",
		 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ret = d->ops->put(d, &v, msg, sizeof(msg));
	close(v.fd);
	cr_assert_eq(ret, -EBADMSG, "%s", msg);
	cr_assert(dest_error_permanent(ret));
	cr_assert_not_null(strstr(msg, "does not match"), "%s", msg);
	cr_assert(!exists("rot"));
	no_tmp();
	v.fd = src_fd("abc");
	ret = d->ops->put(d, &v, msg, sizeof(msg));
	close(v.fd);
	cr_assert_eq(ret, 0, "%s", msg);
	content_is("rot", "abc");
}

static void *folder_worker(void *arg)
{
	long id = (long)arg;
	char key[64], data[32];
	int i;

	for (i = 0; i < PER_WORKER; i++) {
		snprintf(key, sizeof(key), "kept/w%ld-%d", id, i);
		snprintf(data, sizeof(data), "worker %ld file %d", id, i);
		if (worker_put(id, key, data, worker_msg[id]))
			return (void *)1;
	}
	return NULL;
}

/* Workers putting into one folder at once leave it its marker's mtime:
 * each read it, put, and set it back, and undid the others (one read the
 * time another's entry had just moved), so the mirror's folders kept
 * delivery times. */
Test(dest_dir, a_folders_mtime_survives_workers_at_once)
{
	pthread_t t[WORKERS];
	void *res[WORKERS];
	struct stat sb;
	int made = 0;
	long i;

	cr_assert_eq(put_marker("kept/", 0755), 0, "%s", msg);
	for (i = 0; i < WORKERS; i++)
		if (!pthread_create(&t[i], NULL, folder_worker, (void *)i))
			made++;
	for (i = 0; i < made; i++)
		pthread_join(t[i], &res[i]);
	cr_assert_eq(made, WORKERS);
	for (i = 0; i < WORKERS; i++)
		cr_assert_null(res[i], "worker %ld: %s", i, worker_msg[i]);
	sb = lstat_of("kept");
	mtime_is(&sb, MTIME_NS);
}

/* A message too long for its buffer keeps its start (what failed) and its
 * end (why), and gives way in the middle (a long key cut off S3's error
 * code); a message that fits is kept whole. */
Test(dest_dir, long_messages_keep_their_reason)
{
	char key[1100], out[512], small[16];

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	cr_assert_eq(dest_fail(out, sizeof(out), -EINVAL,
			       "s3://lab/dst: %s: HTTP 400 KeyTooLongError",
			       key),
		     -EINVAL);
	cr_assert_lt(strlen(out), sizeof(out));
	cr_assert_eq(strncmp(out, "s3://lab/dst: kkk", 17), 0, "%s", out);
	cr_assert_not_null(strstr(out, " ... "), "%s", out);
	cr_assert_str_eq(out + strlen(out) - 24, "HTTP 400 KeyTooLongError");
	dest_fail(small, sizeof(small), 0, "%s", "short");
	cr_assert_str_eq(small, "short");
	/* A multi-byte character is kept whole or not at all. */
	msg_fit(out, 100, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	cr_assert_lt(strlen(out), 100);
	cr_assert_eq((unsigned char)out[0], 0xc3);
	cr_assert_eq((unsigned char)out[strlen(out) - 1], 0xa9);
	cr_assert_eq((unsigned char)out[strlen(out) - 2], 0xc3);
}

/* A key's control characters come out as \xNN: a newline in a file name
 * made a line of its own in the log, which read like the daemon's. */
Test(dest_dir, messages_are_one_line)
{
	char out[256];

	dest_fail(out, sizeof(out), -EINVAL, "s3://lab/dst: %s: HTTP 400",
		  "x\nreplicafs: info: forged\ttab\x1b[31m\x7f");
	cr_assert_str_eq(out, "s3://lab/dst: x\\x0areplicafs: info: "
			      "forged\\x09tab\\x1b[31m\\x7f: HTTP 400");
	/* C1 controls too (U+009B, CSI, acts as ESC [ does; U+0085 is a
	 * newline to some), and each byte that is not UTF-8: a lone
	 * continuation byte, a cut sequence, an overlong '/', a surrogate,
	 * a code point past U+10FFFF.  Valid UTF-8 is left as it is. */
	dest_fail(out, sizeof(out), -EINVAL, "k: %s.",
		  "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xc2\xa0 "
		  "\xc2\x9b" "31m \xc2\x85 \x80 \xe4\xb8 \xc0\xaf \xed\xa0\x80 "
		  "\xf4\x90\x80\x80 \xff");
	cr_assert_str_eq(out, "k: caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 "
			      "\xc2\xa0 \\xc2\\x9b" "31m \\xc2\\x85 \\x80 "
			      "\\xe4\\xb8 \\xc0\\xaf \\xed\\xa0\\x80 "
			      "\\xf4\\x90\\x80\\x80 \\xff.", "%s", out);
}
