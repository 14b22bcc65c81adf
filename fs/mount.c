/*
 * mount.c - `replicafs mount`: set up a FUSE session over a store and run
 * it until unmounted.
 *
 * The store is opened once before mounting, so that a bad store directory
 * is reported on the terminal with a non-zero exit instead of in a log,
 * and again after fuse_daemonize(), because SQLite connections must not
 * cross a fork().  Without -f the command returns once the mount is ready.
 *
 * The kernel gives a FUSE mount's backing device (its bdi) two limits
 * meant for daemons it cannot trust: readahead of 128 KiB, and a strict
 * dirty limit of 1% of the dirty page budget, so that a writer is
 * throttled to the pace of WRITE requests as soon as a few tens of MiB
 * are dirty.  When run by root (the sysfs files are root's), and unless
 * -o nobdi, fs_bdi_tune() raises readahead to FS_MAX_READ, turns the
 * strict limit off and gives the bdi the share of the dirty budget a
 * disk has (max_ratio 100, not 1, which would throttle it hard whenever
 * other writers fill the page cache): the mount's dirty pages then count
 * against the global limits as any disk's do.  Nothing about durability
 * changes: a close still writes every dirty page to the daemon, which
 * commits them, before it returns.
 *
 * A mount asks for FUSE passthrough (ops.c, pt_sync(), explains how files
 * use it) unless -o nopassthrough, where it can work: the daemon must be
 * allowed to register backing files (CAP_SYS_ADMIN), and the store must be
 * on a file system whose ctime moves at every write the daemon could
 * otherwise miss (pt_possible()).  Elsewhere the mount says why and goes
 * on without it, with the writeback cache.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"

/* Undo mountinfo's octal escapes (\040 for a space) of @s in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

int fs_mountinfo_each(int (*fn)(const char *mnt, const char *dev,
				 const char *type, void *arg),
		      void *arg)
{
	char line[3 * PATH_MAX], *f[5], *t, *save = NULL;
	FILE *mi = fopen("/proc/self/mountinfo", "re");
	int i, rc = 0;

	if (!mi)
		return -errno;
	while (!rc && fgets(line, sizeof(line), mi)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - TYPE */
		f[0] = strtok_r(line, " ", &save);
		for (i = 1; i < 5 && f[i - 1]; i++)
			f[i] = strtok_r(NULL, " ", &save);
		if (i < 5 || !f[4])
			continue;
		unescape(f[4]);
		while ((t = strtok_r(NULL, " ", &save)) && strcmp(t, "-"))
			;
		t = t ? strtok_r(NULL, " \n", &save) : NULL;
		rc = fn(f[4], f[2], t ? t : "", arg);
	}
	fclose(mi);
	return rc;
}

struct mi_find {
	const char *path;
	int exact;
	size_t best;
	int found;
	char *dev, *type;
	size_t size, tsize;
	char *mnt;		/* may be NULL */
	size_t msize;
};

static int mi_find_one(const char *mnt, const char *dev, const char *type,
		       void *arg)
{
	struct mi_find *q = arg;
	size_t len = strlen(mnt);

	if (len < q->best || (q->exact ? strcmp(mnt, q->path) != 0
				       : !fs_path_within(q->path, mnt)))
		return 0;
	q->best = len;
	q->found = 1;
	if (q->dev)
		snprintf(q->dev, q->size, "%s", dev);
	if (q->type)
		snprintf(q->type, q->tsize, "%s", type);
	if (q->mnt)
		snprintf(q->mnt, q->msize, "%s", mnt);
	return 0;
}

/*
 * From /proc/self/mountinfo alone (nothing is looked up, so a mount that
 * does not answer yet cannot hold the caller): the device ("MAJ:MIN") and
 * file system type (either may be NULL) of the mount on @path when
 * @exact, else of the mount that resolved @path lies in, the longest
 * mount point above it.  Of mounts stacked on one point, the last (the one
 * on top).  0 or -ENOENT.
 */
static int mountinfo_find(const char *path, int exact, char *dev,
			  size_t size, char *type, size_t tsize)
{
	struct mi_find q = { path, exact, 0, 0, dev, type, size, tsize,
			     NULL, 0 };
	int rc = fs_mountinfo_each(mi_find_one, &q);

	if (rc < 0)
		return rc;
	return q.found ? 0 : -ENOENT;
}

const char *fs_shell_quote(char *dst, size_t size, const char *s)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789_@%+=:,./-";
	size_t n = 0, len;

	if (*s && !s[strspn(s, plain)]) {
		snprintf(dst, size, "%s", s);
		return dst;
	}
	if (size < 3) {
		if (size)
			dst[0] = '\0';
		return dst;
	}
	dst[n++] = '\'';
	for (; *s; s++) {
		len = *s == '\'' ? 4 : 1;
		if (n + len + 2 > size)
			break;		/* cut, but quoted all the same */
		if (*s == '\'')
			memcpy(dst + n, "'\\''", 4);
		else
			dst[n] = *s;
		n += len;
	}
	dst[n++] = '\'';
	dst[n] = '\0';
	return dst;
}

/* Whether mountinfo shows a replicafs mount above @path (relative to the
 * working directory): 1 with its mount point in @mnt, else 0. */
static int replicafs_above(const char *path, char *mnt, size_t size)
{
	char abs[2 * PATH_MAX + 2], cwd[PATH_MAX], type[64];
	struct mi_find q = { abs, 0, 0, 0, NULL, type, 0, sizeof(type),
			     mnt, size };

	abs[0] = '\0';
	if (path[0] == '/')
		snprintf(abs, sizeof(abs), "%.*s", PATH_MAX, path);
	else if (getcwd(cwd, sizeof(cwd)))
		snprintf(abs, sizeof(abs), "%s/%.*s", cwd, PATH_MAX, path);
	return abs[0] && fs_mountinfo_each(mi_find_one, &q) >= 0 && q.found &&
	       strcmp(type, "fuse.replicafs") == 0;
}

/* Whether the caller may look up the mount point @mnt in its folder: an
 * EACCES below it comes from the mount, not from the path to it. */
static int parent_open(const char *mnt)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(mnt, '/');

	if (!slash || (size_t)(slash - mnt) >= sizeof(dir))
		return 0;
	if (slash == mnt)
		return 1;	/* right under / */
	memcpy(dir, mnt, (size_t)(slash - mnt));
	dir[slash - mnt] = '\0';
	return access(dir, X_OK) == 0;
}

void fs_mount_err_say(const char *path, int err)
{
	char mnt[PATH_MAX] = "", quoted[FS_QUOTED_SIZE(PATH_MAX)];
	int ours = err != -ENOENT && replicafs_above(path, mnt, sizeof(mnt));

	if ((err == -ENOTCONN || err == -ECONNABORTED) && ours)
		fprintf(stderr, "replicafs: %s: its replicafs mount does not "
				"answer: its daemon stopped.  Unmount it "
				"(fusermount3 -uz %s) and mount the store "
				"again; what was committed is kept\n",
			path, fs_shell_quote(quoted, sizeof(quoted), mnt));
	else if (err == -ENOTCONN || err == -ECONNABORTED)
		fprintf(stderr, "replicafs: %s: its mount does not answer (a "
				"replicafs mount whose daemon stopped?): "
				"unmount it with fusermount3 -uz and mount "
				"the store again\n", path);
	else if (err == -ENOENT)
		fprintf(stderr, "replicafs: %s: no such file or directory\n",
			path);
	else if (err == -EACCES && ours && parent_open(mnt))
		fprintf(stderr, "replicafs: %s: permission denied: the "
				"replicafs mount on %s is for the user who "
				"mounted it (others may use it only where it "
				"was mounted with -o allow_other)\n",
			path, mnt);
	else if (err == -EACCES)
		fprintf(stderr, "replicafs: %s: permission denied\n", path);
	else
		fprintf(stderr, "replicafs: %s: not inside a replicafs "
				"mount\n", path);
}

/* The mount on @mnt (see mountinfo_find()). */
static int mount_dev(const char *mnt, char *dev, size_t size, char *type,
		     size_t tsize)
{
	return mountinfo_find(mnt, 1, dev, size, type, tsize);
}

/* The session is over and libfuse has unmounted @mnt (device @dev),
 * unless the connection was aborted (/sys/fs/fuse/connections/N/abort),
 * where it leaves the mount point alone: say which. */
static void say_unmounted(const char *mnt, const char *dev)
{
	char now[32], quoted[FS_QUOTED_SIZE(PATH_MAX)];

	if (!*dev || mount_dev(mnt, now, sizeof(now), NULL, 0) != 0 ||
	    strcmp(now, dev) != 0) {
		log_info("unmounted %s", mnt);
		return;
	}
	fs_shell_quote(quoted, sizeof(quoted), mnt);
	log_warn("the connection to %s was aborted: it stays mounted, "
		 "\"Transport endpoint is not connected\", until "
		 "fusermount3 -u %s", mnt, quoted);
}

/* The mount that @path lies in (see mountinfo_find()). */
static int mount_holding(const char *path, char *dev, size_t size,
			 char *type, size_t tsize)
{
	return mountinfo_find(path, 0, dev, size, type, tsize);
}

int fs_path_in_replicafs(const char *path)
{
	char type[64];

	return mount_holding(path, NULL, 0, type, sizeof(type)) == 0 &&
	       strcmp(type, "fuse.replicafs") == 0;
}

static void bdi_set(const char *dev, const char *knob, const char *value)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/bdi/%s/%s", dev, knob);
	f = fopen(path, "we");
	if (!f || fputs(value, f) < 0 || fclose(f)) {
		log_debug("bdi %s: %s = %s: %s", dev, knob, value,
			  strerror(errno));
		if (f)
			fclose(f);
		return;
	}
	log_debug("bdi %s: %s = %s", dev, knob, value);
}

void fs_bdi_tune(const struct fs *fs)
{
	char dev[64], kb[32];

	if (!fs->opts.bdi_tune || geteuid() != 0)
		return;
	if (mount_dev(fs->opts.mountpoint, dev, sizeof(dev), NULL, 0)) {
		log_debug("no mount at %s in mountinfo", fs->opts.mountpoint);
		return;
	}
	snprintf(kb, sizeof(kb), "%d", FS_MAX_READ / 1024);
	bdi_set(dev, "read_ahead_kb", kb);
	bdi_set(dev, "strict_limit", "0");
	bdi_set(dev, "max_ratio", "100");
}

/*
 * Whether a store in @dir can be served with FUSE passthrough.  The
 * kernel writes a passthrough file's staging file without a word to the
 * daemon, which finds the writes by the staging file's ctime: that must
 * change at every write, even one in the same clock tick as the fstat()
 * before it, which "multigrain" timestamps guarantee (Linux 6.13, on
 * ext4, xfs, btrfs and tmpfs).  Registering a backing file needs
 * CAP_SYS_ADMIN.  Logs why not.
 */
static int pt_possible(const char *dir)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];
	struct utsname u;
	struct statfs sf;
	int major = 0, minor = 0;

	if (syscall(SYS_capget, &h, d) ||
	    !(d[CAP_SYS_ADMIN / 32].effective &
	      (1u << (CAP_SYS_ADMIN % 32)))) {
		log_info("no FUSE passthrough without CAP_SYS_ADMIN: the "
			 "daemon reads and writes files itself");
		return 0;
	}
	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2 ||
	    major < 6 || (major == 6 && minor < 13)) {
		log_info("no FUSE passthrough before Linux 6.13 (this is "
			 "%s): the daemon reads and writes files itself",
			 u.release);
		return 0;
	}
	if (statfs(dir, &sf)) {
		log_info("no FUSE passthrough: %s: %s", dir,
			 strerror(errno));
		return 0;
	}
	switch ((unsigned long)sf.f_type) {
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
		return 1;
	default:
		log_info("no FUSE passthrough: the store's file system "
			 "(type %#lx) may not show every write in a file's "
			 "ctime; the daemon reads and writes files itself",
			 (unsigned long)sf.f_type);
		return 0;
	}
}

/*
 * The daemon holds a descriptor per file open for writing (its staging
 * file) for every process of every user of the mount, so the limit it
 * inherits (often 1024) is not its own measure: a program within its own
 * limit got EMFILE from its writes and closes, and lost a new file.
 * Raise it as a server does: to FD_LIMIT where allowed (root), else to
 * the hard limit.
 */
#define FD_LIMIT (1 << 20)

/* How long an unmount waits for deliveries under way: S3's requests give
 * up after a minute of silence; a dir:// destination on a file system
 * that hangs, never. */
#define REPL_STOP_WAIT_S 10

static void fd_limit_raise(void)
{
	struct rlimit rl, want = { FD_LIMIT, FD_LIMIT };

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= FD_LIMIT)
		return;
	if (rl.rlim_max > FD_LIMIT)
		want.rlim_max = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &want) == 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		log_warn("cannot raise the open file limit to %llu: %s",
			 (unsigned long long)rl.rlim_max, strerror(errno));
}

/* store_journal_on_applied(): a version a close journaled is in the
 * catalog, with a delivery queued. */
static void journal_applied(void *arg)
{
	struct fs *fs = arg;

	if (fs->repl)
		repl_engine_kick(fs->repl);
}

int fs_mount(const struct fs_opts *opts)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_lowlevel_ops ops;
	struct store *st = NULL;
	struct timespec ts;
	char o[2 * PATH_MAX + 256], src[2 * PATH_MAX], type[64];
	char dev[32] = "", sdev[32];
	size_t i, j;
	struct fs *fs;
	int ret, served = 0;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->opts = *opts;
	fs->uid = getuid();
	fs->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &ts);
	fs->start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_rwlock_init(&fs->ns_lock, NULL);

	fd_limit_raise();
	ret = store_open(opts->store_dir, STORE_CREATE, &st);
	if (ret) {
		fprintf(stderr, "replicafs: cannot open store %s: %s\n",
			opts->store_dir, strerror(-ret));
		goto out;
	}
	store_close(st);
	st = NULL;
	fs->passthrough = opts->passthrough && pt_possible(opts->store_dir);
	ret = fs_nodes_init(fs);
	if (ret)
		goto out;

	/* The store is the mount's source (findmnt, df), its commas and
	 * backslashes escaped for libfuse's option parser. */
	for (i = 0, j = 0; opts->store_dir[i] && j + 2 < sizeof(src); i++) {
		if (opts->store_dir[i] == ',' || opts->store_dir[i] == '\\')
			src[j++] = '\\';
		src[j++] = opts->store_dir[i];
	}
	src[j] = '\0';
	snprintf(o, sizeof(o),
		 "fsname=%s,subtype=replicafs,default_permissions,"
		 "max_read=%d%s",
		 src, FS_MAX_READ, opts->allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, "replicafs") ||
	    fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, o) ||
	    (opts->debug && fuse_opt_add_arg(&args, "-d"))) {
		ret = -ENOMEM;
		goto out;
	}
	fs_hist_ops(&fs_ops, &ops);
	se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	if (!se) {
		ret = -EINVAL;
		goto out;
	}
	fs->se = se;
	if (fuse_set_signal_handlers(se)) {
		ret = -EIO;
		goto out_session;
	}
	fs_loop_catch_signals(fs_drain_writers, fs);
	/* A second mount would hide the first, whose daemon would go on
	 * serving nobody until an unmount that seems to do nothing. */
	if (mount_dev(opts->mountpoint, NULL, 0, type, sizeof(type)) == 0 &&
	    strcmp(type, "fuse.replicafs") == 0) {
		char quoted[FS_QUOTED_SIZE(PATH_MAX)];

		fs_shell_quote(quoted, sizeof(quoted), opts->mountpoint);
		fprintf(stderr, "replicafs: %s is a replicafs mount already; "
				"unmount it first (fusermount3 -u %s; if its "
				"daemon stopped and a process still has a "
				"file open there, fusermount3 -uz %s)\n",
			opts->mountpoint, quoted, quoted);
		ret = -EBUSY;
		goto out_signals;
	}
	if (fuse_session_mount(se, opts->mountpoint)) {
		fprintf(stderr, "replicafs: cannot mount on %s\n",
			opts->mountpoint);
		ret = -EIO;
		goto out_signals;
	}
	/* The paths are apart (main.c), but a bind mount of the mount point
	 * (shared, so that the new mount shows there too) can put the store
	 * inside the mount all the same, and the daemon's first look at the
	 * store would wait on its own mount for good. */
	if (mount_dev(opts->mountpoint, dev, sizeof(dev), NULL, 0) == 0 &&
	    mount_holding(opts->store_dir, sdev, sizeof(sdev), NULL, 0) == 0 &&
	    strcmp(dev, sdev) == 0) {
		fprintf(stderr, "replicafs: the store %s lies inside the new "
				"mount on %s (the mount point is mounted "
				"there too, by a bind mount): put the store "
				"elsewhere\n", opts->store_dir,
			opts->mountpoint);
		ret = -ELOOP;
		goto out_unmount;
	}
	if (!opts->foreground)
		store_log_use_syslog(1);
	if (fuse_daemonize(opts->foreground)) {
		ret = -EIO;
		goto out_unmount;
	}
	/* After the fork: a thread made before it stays in the parent. */
	ret = fs_notify_start(fs);
	if (!ret)
		ret = fs_mapped_start(fs);
	if (ret)
		goto out_unmount;
	ret = store_open(opts->store_dir, 0, &fs->st);
	if (ret) {
		log_err("cannot open store %s: %s", opts->store_dir,
			strerror(-ret));
		goto out_unmount;
	}
	log_info("mounted %s on %s", opts->store_dir, opts->mountpoint);
	if (fs->opts.acl < 0) {
		/* ACLs cost a request per file the first time one is asked
		 * for (`ls -l`), so they are on where they can matter: other
		 * users come in, or the store holds one to enforce. */
		ret = fs->opts.allow_other ? 1 : store_has_acls(fs->st);
		if (ret < 0) {
			log_err("cannot tell whether store %s holds ACLs: %s",
				opts->store_dir, strerror(-ret));
			goto out_unmount;
		}
		fs->opts.acl = ret;
		log_info("POSIX ACLs: %s", ret ? (fs->opts.allow_other ?
			 "on (allow_other)" : "on (the store holds some)") :
			 "off (the store holds none; -o acl turns them on)");
	}
	if (!opts->repl_off) {
		ret = repl_engine_start(fs->st, &opts->repl, &fs->repl);
		if (ret) {
			log_err("cannot start replication: %s",
				strerror(-ret));
			goto out_unmount;
		}
		/* A version the close journal applies is delivered now. */
		store_journal_on_applied(fs->st, journal_applied, fs);
	}

	/* With the strict limit off, dirty pages of this mount count
	 * against the global limits, and the daemon's own writes (staging
	 * files, the catalog) must not be throttled waiting for pages only
	 * it can clean: PR_SET_IO_FLUSHER throttles them against their own
	 * disk alone, as for loop devices.  Threads made after this
	 * inherit it. */
	if (opts->bdi_tune && geteuid() == 0 &&
	    prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		log_debug("PR_SET_IO_FLUSHER: %s", strerror(errno));
	/* CREATEs and commits take staging files made ahead (blob.c). */
	store_stage_pool(fs->st, 16);
	ret = fs_loop_run(se, opts->threads, opts->spin_us, opts->uring,
			  &fs->killpriv, &fs->passthrough);
	if (ret)
		log_err("session ended: %s", strerror(-ret));
	fs_commit_open(fs);
	served = 1;
	/* In the catalog before replication stops: delivered next time. */
	if (store_journal_settle(fs->st, NULL, NULL))
		log_warn("versions are left in the store's journal; the next "
			 "open of the store applies them");

out_unmount:
	fs_mapped_stop(fs);	/* before the store closes */
	if (fs->st)
		store_journal_on_applied(fs->st, NULL, NULL);
	/* Deliveries under way finish; the rest stay queued in the store.
	 * One that does not (its destination hangs) is left to the process's
	 * end, which nothing after the unmount may wait for: the store is
	 * not closed under it. */
	if (repl_engine_stop_within(fs->repl, REPL_STOP_WAIT_S)) {
		fuse_session_unmount(se);
		log_info("exiting with a delivery under way");
		_exit(ret ? 1 : 0);
	}
	fs->repl = NULL;
	fuse_session_unmount(se);
	if (served)
		say_unmounted(opts->mountpoint, dev);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fs_notify_stop(fs);
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	fs_nodes_release(fs);	/* staging files go back to the store */
	if (fs->st)
		store_close(fs->st);
	pthread_rwlock_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
	return ret;
}
