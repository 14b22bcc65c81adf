/*
 * test_journal.c - the close journal (store/journal.c).
 *
 * A version put through the journal reads back at once, in this process
 * and in another; puts and removals after it come after it; a writer
 * killed at random moments loses none of the versions it was told were
 * kept, and the store passes store_check() after each kill; a record a
 * kill cut short is passed over and cut off; the file starts over once
 * everything in it is applied.  Changes of metadata and renames journaled
 * after a version come after it, and survive a kill as it does.
 */
#include "store/store.h"
#include "tests/unit/helpers.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>

static char dir[64];
static char mnt[128];

static void teardown(void)
{
	if (mnt[0])
		umount2(mnt, MNT_DETACH);
	mnt[0] = '\0';
	rm_rf(dir);
}

TestSuite(journal, .fini = teardown, .timeout = 240);

static void sha_of(const void *buf, size_t len, char sha[65])
{
	struct store_hash *h = store_hash_new();

	if (!h)
		abort();
	store_hash_update(h, buf, len);
	store_hash_final(h, sha);
}

/* store_journal_put() of @data as @key of bucket "b": its result. */
static int jput(struct store *st, const char *key, const char *data,
		size_t len)
{
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	struct store_obj o;
	char sha[65];

	p.meta = meta_of(0644);
	p.mtime_set = 1;
	p.meta.mtime_ns = 1700000000LL * 1000000000LL;
	sha_of(data, len, sha);
	return store_journal_put(st, "bkt", key, &p, data, len, sha, &o);
}

static int64_t wall_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static struct store *open_new(void)
{
	struct store *st;

	tmp_dir(dir);
	st = store_new(dir);
	bucket_new(st, "bkt", STORE_ENABLED);
	return st;
}

static struct store *reopen(void)
{
	struct store *st = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/store", dir);
	cr_assert_eq(store_open(path, 0, &st), 0);
	return st;
}

static off_t journal_size(void)
{
	char path[128];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/store/journal", dir);
	cr_assert_eq(stat(path, &sb), 0);
	return sb.st_size;
}

Test(journal, put_reads_back)
{
	struct store *st = open_new();
	struct store_obj o;
	char buf[256], sha[65];

	cr_assert_eq(jput(st, "d/one", "first", 5), 0);
	/* The lookup of the key applies it; so does that of its folder. */
	cr_assert_eq(store_lookup(st, "bkt", "d/one", &o), 0);
	cr_assert_eq(o.kind, STORE_FILE);
	cr_assert_eq(o.size, 5);
	cr_assert_eq(o.meta.mtime_ns, 1700000000LL * 1000000000LL);
	cr_assert_eq(o.meta.mode & 07777, 0644);
	sha_of("first", 5, sha);
	cr_assert_str_eq(o.sha256, sha);
	read_blob(st, o.sha256, buf, sizeof(buf));
	cr_assert_str_eq(buf, "first");
	cr_assert_eq(jput(st, "d/two", "second", 6), 0);
	cr_assert_eq(store_lookup(st, "bkt", "d", &o), 0);
	cr_assert_eq(o.kind, STORE_DIR);
	cr_assert_eq(read_cur(st, "bkt", "d/two", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "second");
	/* Empty content, and the largest the journal takes. */
	cr_assert_eq(jput(st, "empty", "", 0), 0);
	cr_assert_eq(store_lookup(st, "bkt", "empty", &o), 0);
	cr_assert_eq(o.size, 0);
	{
		static char big[JOURNAL_MAX_CONTENT + 1];
		struct store_put p = { .kind = STORE_FILE, .fd = -1 };

		memset(big, 'x', sizeof(big));
		cr_assert_eq(jput(st, "big", big, JOURNAL_MAX_CONTENT), 0);
		p.meta = meta_of(0644);
		sha_of(big, sizeof(big), sha);
		cr_assert_eq(store_journal_put(st, "bkt", "bigger", &p, big,
					       sizeof(big), sha, &o),
			     -EAGAIN, "over JOURNAL_MAX_CONTENT");
		cr_assert_eq(store_lookup(st, "bkt", "big", &o), 0);
		cr_assert_eq(o.size, JOURNAL_MAX_CONTENT);
	}
	cr_assert_eq(store_check(st, 1), 0);
	store_close(st);
}

Test(journal, refuses_what_it_cannot_keep)
{
	struct store *st = open_new();
	struct store_put p = { .kind = STORE_FILE, .fd = -1 };
	struct store_xattr x = { .name = "user.a", .value = "1", .size = 1 };
	struct store_obj o;
	char sha[65];

	p.meta = meta_of(0644);
	sha_of("x", 1, sha);
	p.durable = 1;
	cr_assert_eq(store_journal_put(st, "bkt", "k", &p, "x", 1, sha, &o),
		     -EAGAIN);
	p.durable = 0;
	p.xattrs = &x;
	p.nxattrs = 1;
	cr_assert_eq(store_journal_put(st, "bkt", "k", &p, "x", 1, sha, &o),
		     -EAGAIN);
	p.xattrs = NULL;
	p.nxattrs = 0;
	cr_assert_eq(store_journal_put(st, "bkt", "k/", &p, "x", 1, sha, &o),
		     -EINVAL);
	cr_assert_eq(store_journal_put(st, "bkt", "", &p, "x", 1, sha, &o),
		     -EINVAL);
	cr_assert_eq(store_lookup(st, "bkt", "k", &o), -ENOENT);
	store_close(st);
}

static int count_version(void *arg, const struct store_obj *obj)
{
	(void)obj;
	(*(int *)arg)++;
	return 0;
}

/* A change after a journaled version comes after it. */
Test(journal, order_kept)
{
	struct store *st = open_new();
	struct store_obj o;
	char buf[64];
	int n = 0;

	cr_assert_eq(jput(st, "k", "journaled", 9), 0);
	cr_assert_eq(put_str(st, "bkt", "k", "put after", NULL), 0);
	cr_assert_eq(read_cur(st, "bkt", "k", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "put after");
	cr_assert_eq(store_versions(st, "bkt", "k", count_version, &n), 0);
	cr_assert_eq(n, 2, "both versions");

	cr_assert_eq(jput(st, "gone", "soon", 4), 0);
	cr_assert_eq(store_delete(st, "bkt", "gone", NULL), 0);
	cr_assert_eq(store_lookup(st, "bkt", "gone", &o), -ENOENT,
		     "the delete marker is current");

	cr_assert_eq(jput(st, "from", "moved", 5), 0);
	cr_assert_eq(store_rename(st, "bkt", "from", "bkt", "to", 0), 0);
	cr_assert_eq(read_cur(st, "bkt", "to", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "moved");

	/* A folder's marker put while a file below it waits. */
	cr_assert_eq(jput(st, "dir/f", "in dir", 6), 0);
	{
		struct store_put dp = { .kind = STORE_DIR, .fd = -1 };

		dp.meta = meta_of(0755);
		cr_assert_eq(store_put(st, "bkt", "dir/", &dp, NULL, NULL), 0);
	}
	cr_assert_eq(read_cur(st, "bkt", "dir/f", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "in dir");
	cr_assert_eq(store_check(st, 1), 0);
	store_close(st);
}

/* Another process opening the store sees what a live appender put. */
Test(journal, other_process_sees)
{
	struct store *st = open_new(), *other;
	int go[2], done[2], status;
	char buf[64], c = 0;
	pid_t pid;

	store_close(st);
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(done), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		st = reopen();
		CHECK(jput(st, "seen", "by the other", 12) == 0);
		CHECK(write(done[1], "x", 1) == 1);
		CHECK(read(go[0], &c, 1) == 1);
		CHECK(jput(st, "later", "after that", 10) == 0);
		store_close(st);
		_exit(0);
	}
	cr_assert_eq(read(done[0], &c, 1), 1);
	other = reopen();
	cr_assert_eq(read_cur(other, "bkt", "seen", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "by the other");
	cr_assert_eq(write(go[1], "x", 1), 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Its close applied the rest; a write here would too. */
	cr_assert_eq(read_cur(other, "bkt", "later", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "after that");
	cr_assert_eq(store_check(other, 1), 0);
	store_close(other);
}

/* Puts through the journal, each reported once it returned, with a
 * synchronous put and a delete now and then; with @burst, @burst puts
 * and then a SIGKILL of itself, before the journal's thread can have
 * applied the last of them. */
static void writer(const char *log, int round, int burst)
{
	static char data[8192];
	struct store *st;
	char key[64], sha[65];
	int fd, i;
	size_t len;

	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	st = reopen();
	for (i = 0; i < 1000000; i++) {
		snprintf(key, sizeof(key), "r%d/d%d/k%d", round, i % 7, i);
		len = 1 + (size_t)random() % (sizeof(data) - 1);
		memset(data, 'a' + i % 26, len);
		snprintf(data, 40, "round %d item %d %ld", round, i, random());
		sha_of(data, len, sha);
		if (i % 5 == 0) {
			/* rsync's way: a temporary name, chmod, rename. */
			struct store_meta m = meta_of(0600);
			char tmp[72];

			snprintf(tmp, sizeof(tmp), "%s.tmp", key);
			CHECK(jput(st, tmp, data, len) == 0);
			CHECK(store_journal_meta(st, "bkt", tmp, &m,
						 STORE_SET_MODE) == 0);
			CHECK(store_journal_rename(st, "bkt", tmp, key, 0, 0,
						   wall_ns()) == 0);
			report(fd, "J %s %s 600\n", key, sha);
		} else {
			CHECK(jput(st, key, data, len) == 0);
			report(fd, "J %s %s\n", key, sha);
		}
		/* "X": a change under way, which a kill may or may not
		 * have let happen. */
		if (i % 50 == 49) {
			snprintf(key, sizeof(key), "r%d/d%d/k%d", round,
				 (i - 1) % 7, i - 1);
			report(fd, "X %s\n", key);
			CHECK(put_str(st, "bkt", key, "sync", NULL) == 0);
			sha_of("sync", 4, sha);
			report(fd, "J %s %s\n", key, sha);
		}
		if (i % 70 == 69) {
			snprintf(key, sizeof(key), "r%d/d%d/k%d", round,
				 (i - 2) % 7, i - 2);
			report(fd, "X %s\n", key);
			CHECK(store_delete(st, "bkt", key, NULL) == 0);
			report(fd, "D %s\n", key);
		}
		if (burst && i + 1 == burst)
			raise(SIGKILL);
	}
	store_close(st);
	_exit(0);
}

/* The last line @log has on each key (keys r<round>/d<n>/k<i>, indexed
 * by i): that version is current, or the key is removed, or (a change the
 * kill cut) either.  Returns how many lines there were. */
static int verify_log(struct store *st, const char *log, int check_sha)
{
	enum { MAXI = 1 << 20 };
	char line[256], key[128], sha[80], *kind;
	char (*shas)[65];
	unsigned *modes;
	struct store_obj o;
	FILE *f = fopen(log, "r");
	int n = 0, i, round, d, top = -1;

	if (!f)
		return 0;
	kind = calloc(MAXI, 1);
	shas = calloc(MAXI, 65);
	modes = calloc(MAXI, sizeof(*modes));
	cr_assert(kind && shas && modes);
	while (fgets(line, sizeof(line), f)) {
		unsigned mode = 0;
		char k;

		if (!strchr(line, '\n'))
			break;	/* the kill cut it */
		if (sscanf(line, "J r%d/d%d/k%d %79s %o", &round, &d, &i,
			   sha, &mode) >= 4) {
			k = 'J';
		} else if (sscanf(line, "D r%d/d%d/k%d", &round, &d, &i) ==
			   3) {
			k = 'D';
		} else if (sscanf(line, "X r%d/d%d/k%d", &round, &d, &i) ==
			   3) {
			k = 'X';
		} else {
			cr_assert_fail("bad log line: %s", line);
		}
		cr_assert(i >= 0 && i < MAXI);
		kind[i] = k;
		modes[i] = mode;
		if (k == 'J')
			snprintf(shas[i], 65, "%.64s", sha);
		if (i > top)
			top = i;
		n++;
	}
	fclose(f);
	for (i = 0; i <= top; i++) {
		if (!kind[i] || kind[i] == 'X')
			continue;	/* cut by the kill: either way */
		snprintf(key, sizeof(key), "r%d/d%d/k%d", round, i % 7, i);
		if (kind[i] == 'D') {
			cr_assert_eq(store_lookup(st, "bkt", key, &o), -ENOENT,
				     "%s was removed", key);
			continue;
		}
		cr_assert_eq(store_lookup(st, "bkt", key, &o), 0,
			     "%s, reported kept, is lost", key);
		if (check_sha)
			cr_assert_str_eq(o.sha256, shas[i],
					 "%s: the newest version", key);
		if (modes[i]) {
			/* renamed from a temporary name after a chmod */
			cr_assert_eq(o.meta.mode & 07777, modes[i],
				     "%s: its chmod", key);
			strcat(key, ".tmp");
			cr_assert_eq(store_lookup(st, "bkt", key, &o),
				     -ENOENT, "%s is renamed", key);
		}
	}
	free(kind);
	free(shas);
	free(modes);
	return n;
}

/* Bytes of the journal of store @store past what its catalog says is
 * applied. */
static long long unapplied_at(const char *store)
{
	char path[192];
	sqlite3_stmt *q;
	sqlite3 *db;
	struct stat sb;
	long long applied = -1;

	snprintf(path, sizeof(path), "%s/catalog.db", store);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT applied FROM journal",
					-1, &q, NULL),
		     SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		applied = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	cr_assert_geq(applied, 64);
	snprintf(path, sizeof(path), "%s/journal", store);
	cr_assert_eq(stat(path, &sb), 0);
	return (long long)sb.st_size - applied;
}

static long long unapplied_bytes(void)
{
	char store[128];

	snprintf(store, sizeof(store), "%s/store", dir);
	return unapplied_at(store);
}

Test(journal, kill_appender)
{
	char log[128];
	struct store *st = open_new();
	int round, status, total = 0, replayed = 0, burst;
	pid_t pid;

	store_close(st);
	srandom(time(NULL) ^ getpid());
	for (round = 0; round < 12; round++) {
		snprintf(log, sizeof(log), "%s/log%d", dir, round);
		pid = fork();
		cr_assert_geq(pid, 0);
		/* Odd rounds: killed at a random moment, from outside;
		 * even ones kill themselves right after a burst. */
		burst = round % 2 ? 0 : 20 + (int)(random() % 400);
		if (pid == 0) {
			srandom(round * 7919 + getpid());
			writer(log, round, burst);
		}
		if (!burst) {
			usleep(50000 + random() % 250000);
			kill(pid, SIGKILL);
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "the writer failed by itself (status %d)", status);
		/* What the kill left for this open to apply. */
		if (unapplied_bytes() > 0)
			replayed++;
		st = reopen();
		cr_assert_lt(unapplied_bytes(), JOURNAL_MAX_CONTENT + 2048,
			     "the open applied what was whole");
		cr_assert_eq(store_check(st, 1), 0, "round %d", round);
		total += verify_log(st, log, 1);
		store_close(st);
	}
	cr_expect_gt(total, 100, "the writers got some work done");
	cr_expect_geq(replayed, 3, "kills left versions to replay (%d)",
		      replayed);
}

/* A record cut short at the end is passed over, and cut off by the next
 * process that appends, so that what it appends is applied. */
Test(journal, torn_tail)
{
	struct store *st = open_new();
	char path[128], junk[100], buf[64];
	off_t size;
	int fd;

	cr_assert_eq(jput(st, "whole", "kept", 4), 0);
	store_close(st);
	size = journal_size();
	snprintf(path, sizeof(path), "%s/store/journal", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	memset(junk, 0, sizeof(junk));
	/* A record's magic and a length past the end: a cut write. */
	memcpy(junk, "RFJR", 4);
	junk[4] = (char)0xf0;
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);

	st = reopen();
	cr_assert_eq(read_cur(st, "bkt", "whole", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "kept");
	cr_assert_eq(jput(st, "after", "the tear", 8), 0);
	cr_assert_eq(read_cur(st, "bkt", "after", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "the tear");
	store_close(st);
	cr_assert_leq(journal_size(), size + 200, "the torn bytes are gone");

	st = reopen();
	cr_assert_eq(read_cur(st, "bkt", "after", buf, sizeof(buf)), 0);
	cr_assert_eq(store_check(st, 1), 0);
	store_close(st);
}

/* Once everything is applied and the file is large, it starts over. */
Test(journal, starts_over)
{
	static char data[60000];
	struct store *st = open_new();
	char key[32], buf[64];
	int i, tries;

	for (i = 0; i < 120; i++) {
		memset(data, 'a' + i % 26, sizeof(data));
		snprintf(data, 32, "file %d", i);
		snprintf(key, sizeof(key), "f%d", i);
		cr_assert_eq(jput(st, key, data, sizeof(data)), 0);
	}
	/* (Negative while the thread starts the file over.) */
	for (tries = 0; tries < 1000 && unapplied_bytes() != 0; tries++)
		usleep(10000);
	cr_assert_eq(unapplied_bytes(), 0, "all applied");
	/* 7.2 MB went through it; it starts over past 4 MiB. */
	cr_assert_lt(journal_size(), 4 << 20, "the journal started over");
	for (i = 0; i < 120; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		cr_assert_eq(read_cur(st, "bkt", key, buf, 16), 0);
		snprintf(data, 32, "file %d", i);
		cr_assert_eq(strncmp(buf, data, strlen(data)), 0, "%s", key);
	}
	cr_assert_eq(jput(st, "again", "x", 1), 0);
	store_close(st);
	st = reopen();
	cr_assert_eq(read_cur(st, "bkt", "again", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "x");
	cr_assert_eq(store_check(st, 1), 0);
	store_close(st);
}

/*
 * A full disk: a journaled version whose blob finds no room waits in the
 * journal, readers go on with what the catalog has, a removal (what
 * makes room) is not held up by it, and once there is room the journal's
 * thread puts it in.
 */
Test(journal, waits_for_room)
{
	static char data[40000], chunk[4096];
	char path[160], filler[160], buf[64];
	char vid[STORE_VID_MAX + 1];
	struct store *st = NULL;
	struct store_obj o;
	struct statvfs v;
	long long left;
	int fd, tries;

	tmp_dir(dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	cr_assert_eq(mkdir(mnt, 0700), 0);
	cr_assert_eq(mount("tmpfs", mnt, "tmpfs", 0, "size=16m"), 0,
		     "mount tmpfs: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/store", mnt);
	cr_assert_eq(store_open(path, STORE_CREATE, &st), 0);
	bucket_new(st, "bkt", STORE_ENABLED);
	cr_assert_eq(put_str(st, "bkt", "other", "other", vid), 0);
	/* The catalog's pages for what follows, while there is room. */
	cr_assert_eq(jput(st, "warm", "warm", 4), 0);
	cr_assert_eq(store_lookup(st, "bkt", "warm", &o), 0);

	/* Fill the disk, then give back room for the journal's record
	 * (10 pages) and a little, not for its blob too. */
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	memset(chunk, 'f', sizeof(chunk));
	while (write(fd, chunk, sizeof(chunk)) == (ssize_t)sizeof(chunk))
		;
	cr_assert_eq(statvfs(mnt, &v), 0);
	left = lseek(fd, 0, SEEK_END) - 14 * 4096;
	cr_assert_eq(ftruncate(fd, left), 0);

	memset(data, 'd', sizeof(data));
	memcpy(data, "waited", 6);
	cr_assert_eq(jput(st, "waiting", data, sizeof(data)), 0,
		     "the record fits");
	/* The lookup cannot apply it: it answers from the catalog. */
	usleep(300000);
	cr_assert_eq(store_lookup(st, "bkt", "waiting", &o), -ENOENT);
	cr_assert_eq(store_lookup(st, "bkt", "other", &o), 0);
	cr_assert_gt(unapplied_at(path), 0, "it waits in the journal");
	/* The removal of a version, which makes room, goes through all the
	 * same. */
	cr_assert_eq(store_delete_version(st, "bkt", "other", vid), 0);
	cr_assert_eq(store_lookup(st, "bkt", "other", &o), -ENOENT);

	/* Room again: the journal's thread tries again, and gets it in. */
	cr_assert_eq(ftruncate(fd, 0), 0);
	close(fd);
	for (tries = 0; tries < 200 && unapplied_at(path) > 0; tries++)
		usleep(50000);
	cr_assert_eq(unapplied_at(path), 0, "the journal's thread put it in");
	cr_assert_eq(read_cur(st, "bkt", "waiting", buf, 7), 0);
	cr_assert_str_eq(buf, "waited");
	cr_assert_eq(store_check(st, 1), 0);
	store_close(st);
}

/* Xattrs while a version waits in the journal: the bucket's own are
 * read as they are, the waiting key has none, and one set on it comes
 * after its version. */
Test(journal, xattrs_while_waiting)
{
	struct store *st = open_new();
	char buf[32];
	ssize_t n;

	cr_assert_eq(store_xattr_set(st, "bkt", "", "user.b", "bv", 2, 0),
		     0);
	cr_assert_eq(jput(st, "f", "content", 7), 0);
	n = store_xattr_get(st, "bkt", "", "user.b", buf, sizeof(buf));
	cr_assert_eq(n, 2, "the bucket's xattr (%zd)", n);
	cr_assert_eq(memcmp(buf, "bv", 2), 0);
	cr_assert_eq(store_xattr_get(st, "bkt", "f", "user.x", buf,
				     sizeof(buf)),
		     -ENODATA);
	cr_assert_eq(store_xattr_set(st, "bkt", "f", "user.x", "xv", 2, 0),
		     0);
	n = store_xattr_get(st, "bkt", "f", "user.x", buf, sizeof(buf));
	cr_assert_eq(n, 2);
	cr_assert_eq(memcmp(buf, "xv", 2), 0);
	cr_assert_eq(read_cur(st, "bkt", "f", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "content");
	cr_assert_eq(store_check(st, 1), 0);
	store_close(st);
}

/* A file one generation ahead of the catalog (the thread cut it, and the
 * commit of the catalog's row was lost): the next open follows the file,
 * and closes go through the journal again. */
Test(journal, file_ahead_of_catalog)
{
	struct store *st = open_new();
	char path[128], buf[64];
	uint64_t gen = 1;
	int fd;

	cr_assert_eq(jput(st, "before", "old gen", 7), 0);
	store_close(st);
	cr_assert_eq(unapplied_bytes(), 0);
	/* Cut, header of generation 1; the catalog still says 0. */
	snprintf(path, sizeof(path), "%s/store/journal", dir);
	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 64), 0);
	cr_assert_eq(pwrite(fd, &gen, sizeof(gen), 8), (ssize_t)sizeof(gen));
	close(fd);

	st = reopen();
	cr_assert_eq(jput(st, "after", "new gen", 7), 0,
		     "the journal takes closes again");
	cr_assert_gt(unapplied_bytes(), 0, "in the journal, not yet applied");
	cr_assert_eq(read_cur(st, "bkt", "after", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "new gen");
	cr_assert_eq(read_cur(st, "bkt", "before", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "old gen");
	store_close(st);
	st = reopen();
	cr_assert_eq(read_cur(st, "bkt", "after", buf, sizeof(buf)), 0);
	cr_assert_eq(store_check(st, 1), 0);
	store_close(st);
}

/*
 * Changes of metadata and renames journaled after a version (rsync's
 * chmod, utimes and rename of the file it wrote): read back at once,
 * applied in order, kept across a reopen; a folder's times set after the
 * files in it stay as set; a rename carries the xattrs of a key that has
 * them; a chown, which drops a capability, is journaled only for a key
 * that can have none.
 */
Test(journal, changes_follow)
{
	const int64_t t1 = 1600000000LL * 1000000000LL, t2 = t1 + 7;
	struct store *st = open_new();
	struct store_meta m = meta_of(0600);
	struct store_put dp = { .kind = STORE_DIR, .fd = -1 };
	struct store_obj o;
	char buf[64];
	int n = 0;

	m.mtime_ns = t1;
	m.atime_ns = t1;
	cr_assert_eq(jput(st, "d/.f.tmp", "renamed", 7), 0);
	cr_assert_eq(store_journal_meta(st, "bkt", "d/.f.tmp", &m,
					STORE_SET_MODE | STORE_SET_MTIME |
						STORE_SET_ATIME),
		     0);
	cr_assert_eq(store_journal_rename(st, "bkt", "d/.f.tmp", "d/f", 0, 0,
					  wall_ns()),
		     0);
	cr_assert_eq(store_lookup(st, "bkt", "d/f", &o), 0);
	cr_assert_eq(o.meta.mode & 07777, 0600);
	cr_assert_eq(o.meta.mtime_ns, t1);
	cr_assert_eq(read_cur(st, "bkt", "d/f", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "renamed");
	cr_assert_eq(store_lookup(st, "bkt", "d/.f.tmp", &o), -ENOENT);
	cr_assert_eq(store_versions(st, "bkt", "d/.f.tmp", count_version, &n),
		     0);
	cr_assert_eq(n, 2, "its version and the rename's delete marker");

	dp.meta = meta_of(0755);
	cr_assert_eq(store_put(st, "bkt", "e/", &dp, NULL, NULL), 0);
	cr_assert_eq(jput(st, "e/x", "in e", 4), 0);
	m.mtime_ns = t2;
	cr_assert_eq(store_journal_meta(st, "bkt", "e/", &m, STORE_SET_MTIME),
		     0);
	cr_assert_eq(store_lookup(st, "bkt", "e", &o), 0);
	cr_assert_eq(o.kind, STORE_DIR);
	cr_assert_eq(o.meta.mtime_ns, t2, "the put before did not move it");

	cr_assert_eq(put_str(st, "bkt", "x", "with xattr", NULL), 0);
	cr_assert_eq(store_xattr_set(st, "bkt", "x", "user.k", "v", 1, 0), 0);
	cr_assert_eq(store_journal_rename(st, "bkt", "x", "y", 0, 0,
					  wall_ns()),
		     0);
	cr_assert_eq(store_xattr_get(st, "bkt", "y", "user.k", buf,
				     sizeof(buf)),
		     1, "the xattr went with it");
	m.uid = 1000;
	cr_assert_eq(store_journal_meta(st, "bkt", "y", &m, STORE_SET_UID),
		     -EAGAIN, "a capability may have to go");
	cr_assert_eq(store_set_meta(st, "bkt", "y", &m, STORE_SET_UID), 0);

	store_close(st);
	st = reopen();
	cr_assert_eq(store_lookup(st, "bkt", "d/f", &o), 0);
	cr_assert_eq(o.meta.mode & 07777, 0600);
	cr_assert_eq(o.meta.mtime_ns, t1);
	cr_assert_eq(store_lookup(st, "bkt", "e", &o), 0);
	cr_assert_eq(o.meta.mtime_ns, t2);
	cr_assert_eq(read_cur(st, "bkt", "y", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "with xattr");
	cr_assert_eq(store_lookup(st, "bkt", "y", &o), 0);
	cr_assert_eq(o.meta.uid, 1000);
	cr_assert_eq(store_lookup(st, "bkt", "x", &o), -ENOENT);
	cr_assert_eq(store_check(st, 1), 0);
	store_close(st);
}
