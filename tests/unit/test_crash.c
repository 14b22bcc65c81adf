/*
 * test_crash.c - the store's crash invariants (store.c) put to the test.
 *
 * kill_writers: a child process writes in a loop (puts in a versioned
 * and an unversioned bucket, deletes, deletions of versions, renames of
 * files and directories) and reports each put after it returned to an
 * append-only file; the parent kills it with SIGKILL at a random moment,
 * twenty times, and after each kill opens the store (which collects the
 * garbage the kill left) and checks:
 *
 *   - store_check(deep) passes: integrity_check, every version row names
 *     a blob of the right size and hash, every object's current version
 *     is its newest (invariants 1, 2 and 3);
 *   - every put the child reported is there with its content (2);
 *   - staging/ and trash/ are empty after the open (4).
 *
 * disk_full: a store on a 4 MiB tmpfs is written until -ENOSPC; it must
 * still pass store_check and read back what was written before.
 */
#include "store/store.h"
#include "tests/unit/helpers.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>

static char dir[64];
static char mnt[128];
static int mounted;

static void teardown(void)
{
	if (mounted)
		umount2(mnt, MNT_DETACH);
	mounted = 0;
	rm_rf(dir);
}

TestSuite(crash, .fini = teardown, .timeout = 240);

/* ---- the writer ----------------------------------------------------- */

static void writer(const char *path, const char *log, int round)
{
	struct store_put dp = { .kind = STORE_DIR, .fd = -1 };
	char key[128], key2[128], data[128], vid[STORE_VID_MAX + 1];
	struct store_obj o;
	struct store *st;
	int fd, i;

	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(store_open(path, 0, &st) == 0);
	dp.meta = meta_of(0755);
	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "r%d/k%d", round, i);
		snprintf(data, sizeof(data), "round %d item %d %ld", round, i,
			 random());
		CHECK(put_str(st, "versioned", key, data, vid) == 0);
		CHECK(store_version_get(st, "versioned", key, vid, &o) == 0);
		report(fd, "V %s %s %s\n", key, vid, o.sha256);

		/* Unversioned: the second put replaces (and trashes) the
		 * first's blob. */
		snprintf(key, sizeof(key), "r%d/u%d", round, i);
		CHECK(put_str(st, "plain", key, data, NULL) == 0);
		snprintf(data + strlen(data), 16, " again");
		CHECK(put_str(st, "plain", key, data, NULL) == 0);
		CHECK(store_lookup(st, "plain", key, &o) == 0);
		report(fd, "U %s %s\n", key, o.sha256);

		/* A version put and removed for good. */
		snprintf(key, sizeof(key), "r%d/tmp%d", round, i);
		snprintf(data, sizeof(data), "short-lived %d %ld", i,
			 random());
		CHECK(put_str(st, "versioned", key, data, vid) == 0);
		CHECK(store_delete_version(st, "versioned", key, vid) == 0);

		if (i % 3 == 2) {
			snprintf(key, sizeof(key), "r%d/k%d", round, i - 1);
			CHECK(store_delete(st, "versioned", key, NULL) == 0);
		}
		/* (keys deleted above are 1 mod 3: not renamed) */
		if (i % 4 == 3 && (i - 3) % 3 != 1) {
			snprintf(key, sizeof(key), "r%d/k%d", round, i - 3);
			snprintf(key2, sizeof(key2), "r%d/moved%d", round, i);
			CHECK(store_rename(st, "versioned", key, "versioned",
					   key2, 0) == 0);
			snprintf(key, sizeof(key), "r%d/u%d", round, i - 3);
			CHECK(store_rename(st, "plain", key, "plain", key2,
					   0) == 0);
			snprintf(key, sizeof(key), "r%d/dir%d/", round, i);
			CHECK(store_put(st, "plain", key, &dp, NULL, NULL) ==
			      0);
			snprintf(key, sizeof(key), "r%d/dir%d/a", round, i);
			CHECK(put_str(st, "plain", key, data, NULL) == 0);
			snprintf(key, sizeof(key), "r%d/dir%d/b/c", round, i);
			CHECK(put_str(st, "plain", key, "c", NULL) == 0);
			snprintf(key, sizeof(key), "r%d/dir%d", round, i);
			snprintf(key2, sizeof(key2), "r%d/dirmoved%d", round,
				 i);
			CHECK(store_rename(st, "plain", key, "versioned", key2,
					   0) == 0);
		}
	}
	store_close(st);
	_exit(0);
}

/* ---- the checks ----------------------------------------------------- */

static int dir_entries(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0;

	cr_assert_not_null(d, "%s", path);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Check every put @log reports; returns how many. */
static int verify_log(struct store *st, const char *log)
{
	char line[512], key[256], vid[64], sha[80];
	struct store_obj o;
	FILE *f = fopen(log, "r");
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strchr(line, '\n'))
			break;
		if (sscanf(line, "V %255s %63s %79s", key, vid, sha) == 3) {
			cr_assert_eq(store_version_get(st, "versioned", key,
						       vid, &o),
				     0, "reported version %s of %s is lost",
				     vid, key);
			cr_assert_str_eq(o.sha256, sha);
			n++;
		} else if (sscanf(line, "U %255s %79s", key, sha) == 2) {
			/* The key may have been renamed since; then its
			 * content is under the new name, checked by sha
			 * in store_check(). */
			if (store_lookup(st, "plain", key, &o) == 0)
				cr_assert_str_eq(o.sha256, sha, "%s", key);
			n++;
		} else {
			cr_assert_fail("bad log line: %s", line);
		}
	}
	fclose(f);
	return n;
}

Test(crash, kill_writers)
{
	char path[128], log[128], sub[160];
	struct store *st;
	int round, status, total = 0;
	pid_t pid;

	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/store", dir);
	cr_assert_eq(store_open(path, STORE_CREATE, &st), 0);
	bucket_new(st, "versioned", STORE_ENABLED);
	bucket_new(st, "plain", STORE_UNVERSIONED);
	store_close(st);
	srandom(time(NULL) ^ getpid());

	for (round = 0; round < 20; round++) {
		snprintf(log, sizeof(log), "%s/log%d", dir, round);
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			srandom(round * 7919 + getpid());
			writer(path, log, round);
		}
		usleep(30000 + random() % 300000);
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "the writer failed by itself (status %d)", status);

		cr_assert_eq(store_open(path, 0, &st), 0);
		cr_assert_eq(store_check(st, 1), 0, "round %d", round);
		total += verify_log(st, log);
		snprintf(sub, sizeof(sub), "%s/staging", path);
		cr_expect_eq(dir_entries(sub), 0);
		snprintf(sub, sizeof(sub), "%s/trash", path);
		cr_expect_eq(dir_entries(sub), 0);
		store_close(st);
	}
	cr_expect_gt(total, 20, "the writers got some work done");
}

/* ---- a full disk ---------------------------------------------------- */

struct written {
	char key[32];
	char vid[STORE_VID_MAX + 1];
	char sha[65];
};

Test(crash, disk_full)
{
	static struct written w[512];
	struct store_put p = { .kind = STORE_FILE };
	char path[160], key[32], sha[65];
	static char buf[65536];
	struct store_obj o;
	struct store *st;
	int n = 0, i, fd, err = 0, enospc = 0, blob;

	tmp_dir(dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	cr_assert_eq(mkdir(mnt, 0700), 0);
	cr_assert_eq(mount("tmpfs", mnt, "tmpfs", 0, "size=4m"), 0,
		     "mount tmpfs: %s", strerror(errno));
	mounted = 1;
	snprintf(path, sizeof(path), "%s/store", mnt);
	cr_assert_eq(store_open(path, STORE_CREATE, &st), 0);
	bucket_new(st, "full", STORE_ENABLED);
	p.meta = meta_of(0644);

	/* Blobs of 64 KiB until the disk is full. */
	for (i = 0; i < 512 && !enospc; i++) {
		memset(buf, 'a' + i % 26, sizeof(buf));
		snprintf(buf, 32, "blob %d", i);
		cr_assert_eq(store_stage_new(st, NULL, 0, &fd), 0);
		if (write(fd, buf, sizeof(buf)) != sizeof(buf)) {
			store_stage_abort(st, fd);
			break;
		}
		snprintf(key, sizeof(key), "k%d", i);
		p.fd = fd;
		err = store_put(st, "full", key, &p, w[n].vid, &o);
		if (err == -ENOSPC) {
			enospc = 1;
			break;
		}
		cr_assert_eq(err, 0, "put %d: %d", i, err);
		snprintf(w[n].key, sizeof(w[n].key), "%s", key);
		memcpy(w[n].sha, o.sha256, 65);
		n++;
	}
	cr_assert_gt(n, 10);
	/* Then rows alone until the catalog cannot grow. */
	for (i = 0; i < 200000 && !enospc; i++) {
		snprintf(key, sizeof(key), "e%d", i);
		p.fd = -1;
		err = store_put(st, "full", key, &p, NULL, NULL);
		if (err == -ENOSPC)
			enospc = 1;
		else
			cr_assert_eq(err, 0, "empty put %d: %d", i, err);
	}
	cr_assert(enospc, "store_put never said ENOSPC");

	cr_expect_eq(store_check(st, 1), 0);
	for (i = 0; i < n; i++) {
		cr_assert_eq(store_version_get(st, "full", w[i].key, w[i].vid,
					       &o),
			     0);
		cr_assert_str_eq(o.sha256, w[i].sha);
		cr_assert_eq(store_blob_open(st, o.sha256, &blob), 0);
		cr_assert_eq(store_hash_fd(blob, sha), 0);
		close(blob);
		cr_assert_str_eq(sha, w[i].sha);
	}
	store_close(st);
	/* It opens again, on the full disk, and is still whole. */
	cr_assert_eq(store_open(path, 0, &st), 0);
	cr_expect_eq(store_check(st, 1), 0);
	store_close(st);
}
