/*
 * journal.c - the close journal: the first version of a small file, put
 * by a mount's close, written to STORE/journal in one write(2) and added
 * to the catalog and blobs/ a moment later, in batches, by the journal's
 * thread; and after it, the mount's changes of metadata (chmod, utimes)
 * and renames of files, which then come after it.
 *
 * Why.  A put is a staging file, a link into blobs/ and a transaction of
 * its own: 60 to 80 us of a close(2), on the tool's CPU, for each of the
 * files a `cp -r` or a `tar x` makes.  Appended here, the same version
 * costs a write of its bytes to the page cache (a few microseconds), and
 * the journal's thread puts them in, APPLY_BATCH to a transaction, while
 * the tool goes on.  That thread runs at nice APPLIER_NICE, on what CPU
 * time the tools and the request threads leave, and starts APPLY_DELAY_US
 * after a close, for more to come.  A change that follows a close (rsync's
 * utimes, chmod and rename of the temporary file it wrote) would have to
 * apply the journal first, in its own transaction, on the tool's path: it
 * is journaled too (store_journal_meta(), store_journal_rename()), and
 * applied after it in the same batch.  A version in the journal survives a kill -9 of
 * the daemon exactly as one in the catalog's WAL does (both are in the
 * page cache, neither is fsynced; store_sync() applies the journal
 * first, so an fsync(2) still makes it durable).
 *
 * Format.  A header (struct jhead: magic and generation), then records
 * (struct jrec, the bucket and key names, the content, zeros up to a
 * multiple of 8), appended only by the process that holds the file's
 * flock() (a mount: store_journal_put()).  A record is whole when its
 * header's check and its content's SHA-256 hold: the one a kill cut
 * short, always the last, is not, and is never applied.
 *
 * Applied.  The catalog's journal row says which generation of the file
 * it follows and the offset up to which its records are applied; a batch
 * moves the offset in the transaction that adds its versions, so a record
 * is applied once whoever applies it and whatever dies when.  A write
 * transaction applies what is due first (tx_begin(), journal_apply()), so
 * no change to the catalog overtakes a version a close already reported
 * kept; only a put in the appending process applies just the records
 * that bear on its key (journal_settle_put(): a `cp -r`'s folder markers
 * and large files do not wait for the small files before them).  A
 * process opening the store applies what a dead one left.  Reads in the
 * appending process see a version still in the journal through
 * store_journal_settle(): a key, or a folder above it, that has one is
 * first applied; the xattrs of such a key are none (journal_holds_key()).
 * Other processes apply at open and before each write, so a command run
 * after a close sees its version.
 *
 * A full disk.  A close journals only with 64 MiB free, and at most
 * JOURNAL_MAX_PENDING_BYTES wait, so the blobs they need fit; should the
 * disk fill meanwhile, they wait in the journal (the thread tries again,
 * less and less often): a read answers from the catalog, and a write
 * transaction goes on without them (the removal of versions, which makes
 * room, must not wait for what needs it).
 *
 * Starting over.  Once everything is applied and the file has grown past
 * JOURNAL_RESET_BYTES, the thread truncates it and raises the generation
 * in the file and then, in a transaction, in the catalog (journal_reset()).
 * A crash or a failed commit between the two leaves a file one generation
 * ahead of the catalog: store_open() and journal_apply() then know every
 * record of the old one was applied, and follow the new one.
 *
 * What does not come here: a version that replaces another (the catalog
 * decides its fate), content over JOURNAL_MAX_CONTENT, a put with extended
 * attributes or asked to be durable.  They take store_put().  Nor a change
 * that writes xattrs (a chmod that moves an ACL's mask, a chown that may
 * drop a capability), a rename of a folder, or across buckets, or with
 * flags: they take their transactions, which apply the journal first.
 *
 * Xattrs.  A key whose version, or a rename of one, is here has none
 * (journal_holds_key()): the record is "bare" (struct jpend) when it is a
 * version, or a rename of a bare key not yet taken by a transaction
 * (j.claimed: one that applies it may change the key's xattrs next).  A
 * rename of a key with xattrs gives them to its new name when it is
 * applied: a read of the new name's xattrs applies it first.
 */
#include "store/store.h"
#include "store/store_i.h"
#include "store/blob_i.h"
#include "store/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>

#include <sys/stat.h>
#include <unistd.h>

#define JHEAD_SIZE 64
#define JHEAD_MAGIC "RFSJRNL1"
#define JREC_MAGIC 0x524a4652u	/* "RFJR": a file's first version */
#define JMETA_MAGIC 0x4d4a4652u	/* "RFJM": a change of its metadata */
#define JMOVE_MAGIC 0x564a4652u	/* "RFJV": its rename */
#define JREC_MAX (sizeof(struct jrec) + 64 + STORE_KEY_MAX + \
		  JOURNAL_MAX_CONTENT + 8)
#define JOURNAL_RESET_BYTES (4 << 20)
#define APPLIER_NICE 19
#define APPLY_DELAY_US 2000
/* A failed pass is tried again after this, then twice as long, up to
 * APPLY_RETRY_MAX_MS. */
#define APPLY_RETRY_MS 100
#define APPLY_RETRY_MAX_MS 6400
/* Records the journal's thread applies in one transaction. */
#define APPLY_BATCH 16
/* Records appended and not applied at most: past it a close takes
 * store_put() until the journal's thread, which runs only on a CPU the
 * tools leave idle, catches up; a read that needs them all (a listing)
 * waits for as many at most. */
#define JOURNAL_MAX_PENDING 1024
/* ... and bytes, which then need room again as blobs: a close journals
 * only with 64 MiB free (store_room_plenty()). */
#define JOURNAL_MAX_PENDING_BYTES (16 << 20)

struct jhead {
	char magic[8];
	uint64_t gen;
	char pad[JHEAD_SIZE - 16];
};

/*
 * A record.  A version (JREC_MAGIC) has all the fields; its content
 * follows the names.  A change of metadata (JMETA_MAGIC, store_set_meta()
 * of a key whose version is still here) has no content, the STORE_SET_*
 * mask in @ino, and the new mode, owner and times.  A rename (JMOVE_MAGIC,
 * of such a key to another in its bucket) has the new key where a
 * version's content is (@size its length), the renamer in @uid and @gid
 * and the rename's time in @ctime_ns.  The check of the two covers the
 * magic and the new key too.
 */
struct jrec {
	uint32_t magic;
	uint32_t len;		/* of the whole record, a multiple of 8 */
	uint64_t check;		/* FNV-1a of what follows it, names
				 * included, content not */
	uint64_t size;		/* bytes of content */
	uint64_t ino;
	int64_t named_ns;
	int64_t created_ns;
	int64_t mtime_ns, ctime_ns, atime_ns;
	uint32_t mode, uid, gid;
	uint16_t blen, klen;	/* bucket and key, without their NULs */
	char sha[64];
	/* bucket, key, content, zeros */
};

struct jpend {
	uint64_t end;		/* the record's end in the file */
	uint64_t len;		/* its length */
	char *bucket;
	char *key;
	char *to;		/* a rename's new key, else NULL */
	uint32_t magic;		/* the record's kind */
	int bare;		/* a version, or a rename of one, that has
				 * no xattrs (key_bare_locked()) */
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t jrec_check(const struct jrec *r, const char *names)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t n = (size_t)r->blen + r->klen;

	if (r->magic != JREC_MAGIC) {
		h = fnv1a(h, &r->magic, sizeof(r->magic));
		n += r->size;
	}
	h = fnv1a(h, (const char *)r + offsetof(struct jrec, size),
		  sizeof(*r) - offsetof(struct jrec, size));
	return fnv1a(h, names, n);
}

static int head_write(int fd, uint64_t gen)
{
	struct jhead h;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, JHEAD_MAGIC, sizeof(h.magic));
	h.gen = gen;
	return store_pwrite_all(fd, &h, sizeof(h), 0);
}

/* The generation in the file's header: 0, or -EIO when it has none. */
static int head_read(int fd, uint64_t *gen)
{
	struct jhead h;

	if (store_pread_all(fd, &h, sizeof(h), 0) ||
	    memcmp(h.magic, JHEAD_MAGIC, sizeof(h.magic)))
		return -EIO;
	*gen = h.gen;
	return 0;
}

static int row_get(struct conn *c, uint64_t *gen, uint64_t *applied)
{
	sqlite3_stmt *s;
	int err;

	err = stmt_of_sql(c, "SELECT gen, applied FROM journal WHERE id = 1",
			  &s);
	if (err)
		return err;
	err = stmt_step(c, s, "read journal state");
	if (err == 1) {
		*gen = (uint64_t)sqlite3_column_int64(s, 0);
		*applied = (uint64_t)sqlite3_column_int64(s, 1);
		err = 0;
	} else if (err == 0) {
		err = -EIO;
		log_err("store: %s: the catalog has no journal row",
			c->st->dir);
	}
	stmt_done(s);
	return err;
}

static int row_set(struct conn *c, uint64_t gen, uint64_t applied)
{
	sqlite3_stmt *s;
	int err;

	err = stmt_of_sql(c, "UPDATE journal SET gen = ?, applied = ? "
			     "WHERE id = 1", &s);
	if (err)
		return err;
	sqlite3_bind_int64(s, 1, (int64_t)gen);
	sqlite3_bind_int64(s, 2, (int64_t)applied);
	return stmt_run(c, s, "write journal state");
}

/* Drop the pending entries of records that end at or before @applied.
 * Caller holds j.lock. */
static void pend_drop_locked(struct store_journal *j, uint64_t applied)
{
	while (j->npend && j->pend[j->phead].end <= applied) {
		struct jpend *p = &j->pend[j->phead];

		free(p->bucket);
		free(p->key);
		free(p->to);
		j->pbytes -= p->len;
		j->phead = (j->phead + 1) % j->pcap;
		j->npend--;
	}
	atomic_store(&j->unapplied, j->npend);
}

/* The bucket and key of record @r, from @names, as strings. */
static void rec_names(const struct jrec *r, const char *names,
		      char bucket[64], char key[STORE_KEY_MAX + 1])
{
	memcpy(bucket, names, r->blen);
	bucket[r->blen] = '\0';
	memcpy(key, names + r->blen, r->klen);
	key[r->klen] = '\0';
}

/*
 * Apply a version's record, @r with @names and @content, in @c's
 * transaction: its blob placed, its version written.  @own: this process
 * wrote it, whole, in this run (its hash is what it hashed); else the
 * content is hashed first.  0; 1 when the record is not whole (its
 * content is not what its hash says); or a negative errno.
 */
static int put_apply(struct store *st, struct conn *c, const struct jrec *r,
		     const char *names, const char *content, int own,
		     struct trash *t)
{
	char bucket[64], key[STORE_KEY_MAX + 1], sha[65], vid[STORE_VID_MAX + 1];
	struct bucket_row b;
	struct store_obj obj;
	struct newver nv = { .kind = STORE_FILE };
	struct stat sb;
	int fd = -1, err;

	if (own) {
		memcpy(sha, r->sha, 64);
		sha[64] = '\0';
	} else {
		if (store_hash_mem(content, r->size, sha))
			return -ENOMEM;
		if (memcmp(sha, r->sha, 64))
			return 1;
	}
	rec_names(r, names, bucket, key);
	err = bucket_row_get(c, bucket, &b);
	if (err == -ENOENT) {
		/* Removed meanwhile: removing a bucket needs it empty, so
		 * the version was one written while the removal ran. */
		log_warn("store: journal: bucket %s is gone; its version of "
			 "%s is dropped", bucket, key);
		return 0;
	}
	if (err)
		return err;
	err = store_stage_mem(st, content, r->size, &fd);
	if (err)
		return err;
	if (fstat(fd, &sb)) {
		err = -errno;
		goto out;
	}
	err = blob_place(st, fd, sha, 0);
	if (err)
		goto out;
	nv.sha = sha;
	nv.size = r->size;
	nv.blocks = sb.st_blocks;
	nv.meta.mode = S_IFREG | (r->mode & 07777);
	nv.meta.uid = r->uid;
	nv.meta.gid = r->gid;
	nv.meta.mtime_ns = r->mtime_ns;
	nv.meta.ctime_ns = r->ctime_ns;
	nv.meta.atime_ns = r->atime_ns;
	nv.mtime_set = 1;
	nv.keep_xattrs = 1;
	nv.named_ns = r->named_ns;
	nv.created_ns = r->created_ns;
	nv.ino = r->ino;
	memset(&obj, 0, sizeof(obj));
	err = ver_write(st, c, &b, key, &nv, vid, &obj, t);
	if (!err && obj.queued)
		atomic_store(&st->j.queued, 1);
out:
	stage_close(st, fd);
	return err;
}

/*
 * Apply a change of metadata or a rename (see struct jrec), in @c's
 * transaction.  Its key has no version when another process removed it
 * first (the journal is applied in order, and a mount journals such a
 * change only while its key's version is here): then there is nothing to
 * change, and the record is passed over.
 */
static int change_apply(struct store *st, struct conn *c,
			const struct jrec *r, const char *names,
			struct trash *t)
{
	char bucket[64], key[STORE_KEY_MAX + 1], to[STORE_KEY_MAX + 1];
	struct store_meta m;
	struct bucket_row b;
	int err;

	rec_names(r, names, bucket, key);
	memset(&m, 0, sizeof(m));
	err = bucket_row_get(c, bucket, &b);
	if (err)
		goto out;
	if (r->magic == JMOVE_MAGIC) {
		memcpy(to, names + r->blen + r->klen, r->size);
		to[r->size] = '\0';
		m.uid = r->uid;
		m.gid = r->gid;
		err = rename_in(st, c, bucket, key, bucket, to, 0, &m,
				r->ctime_ns, t);
	} else {
		m.mode = r->mode;
		m.uid = r->uid;
		m.gid = r->gid;
		m.mtime_ns = r->mtime_ns;
		m.atime_ns = r->atime_ns;
		m.ctime_ns = r->ctime_ns;
		err = meta_set_in(st, c, &b, key, &m,
				  (unsigned)r->ino | STORE_SET_CTIME, NULL, 0);
	}
out:
	if (err == -ENOENT) {
		log_info("store: journal: %s/%s was removed before its %s "
			 "was applied", bucket, key,
			 r->magic == JMOVE_MAGIC ? "rename" : "chmod, chown "
			 "or utimes");
		return 0;
	}
	/* The bucket's rules may have sent the change to its replicas. */
	if (!err && b.repl)
		atomic_store(&st->j.queued, 1);
	return err;
}

/* Apply record @r, of any kind (see put_apply()). */
static int rec_apply(struct store *st, struct conn *c, const struct jrec *r,
		     const char *names, int own, struct trash *t)
{
	if (r->magic == JREC_MAGIC)
		return put_apply(st, c, r, names, names + r->blen + r->klen,
				 own, t);
	return change_apply(st, c, r, names, t);
}

/* Whether a record that failed with @err can be applied later: a full
 * disk, say.  Another failure is the record's own (its name taken by a
 * folder another process made meanwhile) and would stop every write
 * after it: the record is passed over, and said so. */
static int err_transient(int err)
{
	return err == -ENOSPC || err == -EDQUOT || err == -EIO ||
	       err == -ENOMEM || err == -EBUSY || err == -EAGAIN ||
	       err == -EINTR || err == -EMFILE || err == -ENFILE;
}

/*
 * Apply, in @c's write transaction, the whole records past the catalog's
 * offset (@max at most; up to what this process appended, for the
 * appender; to the file's end for another), and move the offset.  0, or
 * a negative errno: then the caller's transaction must not commit, or a
 * change made after a version was reported kept would come before it.
 * What was applied counts once the transaction commits
 * (journal_committed()).
 */
int journal_apply(struct store *st, struct conn *c)
{
	return journal_apply_max(st, c, SIZE_MAX, UINT64_MAX);
}

int journal_apply_max(struct store *st, struct conn *c, size_t max,
		      uint64_t until)
{
	struct store_journal *j = &st->j;
	uint64_t gen, applied, off, end, fgen;
	struct trash t;
	struct jrec r;
	struct stat sb;
	char *buf;
	size_t n = 0;
	int err = 0;

	if (j->fd < 0)
		return 0;
	err = row_get(c, &gen, &applied);
	if (err)
		return err;
	if (j->appender) {
		pthread_mutex_lock(&j->lock);
		end = j->tail;
		fgen = j->gen;
		pthread_mutex_unlock(&j->lock);
		if (gen + 1 == fgen) {
			/* journal_reset() cut the file, and its commit
			 * failed: every record of the old file was in. */
			err = row_set(c, fgen, JHEAD_SIZE);
			if (err)
				return err;
			gen = fgen;
			applied = JHEAD_SIZE;
		} else if (gen != fgen) {
			return -EIO;	/* cannot be: only we cut it */
		}
	} else {
		if (fstat(j->fd, &sb))
			return -errno;
		end = (uint64_t)sb.st_size;
		j->applied_seen = applied;
		if (end <= applied || head_read(j->fd, &fgen) || fgen != gen)
			return 0;	/* nothing, or cut meanwhile */
	}
	buf = end > applied ? malloc(JREC_MAX) : NULL;
	if (end > applied && !buf)
		return -ENOMEM;
	trash_init(&t);
	if (end > until)
		end = until;
	for (off = applied; off + sizeof(r) <= end && n < max; n++) {
		char *names = buf;

		if (store_pread_all(j->fd, &r, sizeof(r), off) ||
		    (r.magic != JREC_MAGIC && r.magic != JMETA_MAGIC &&
		     r.magic != JMOVE_MAGIC) ||
		    r.len < sizeof(r) ||
		    r.len > JREC_MAX || r.len % 8 || off + r.len > end ||
		    r.blen >= 64 || r.klen > STORE_KEY_MAX || !r.klen ||
		    sizeof(r) + r.blen + r.klen + r.size > r.len ||
		    (r.magic == JMOVE_MAGIC &&
		     (!r.size || r.size > STORE_KEY_MAX)) ||
		    store_pread_all(j->fd, buf, r.len - sizeof(r),
				    off + sizeof(r)) ||
		    jrec_check(&r, buf) != r.check)
			break;	/* not whole (yet): a kill cut it short */
		if (j->appender) {
			/* A change journaled from now on must not count on
			 * this record's key being as the record left it:
			 * this transaction may change it next. */
			pthread_mutex_lock(&j->lock);
			if (j->claimed < off + r.len)
				j->claimed = off + r.len;
			pthread_mutex_unlock(&j->lock);
		}
		err = rec_apply(st, c, &r, names,
				j->appender && off >= j->own_from, &t);
		if (err > 0)
			break;	/* the same */
		if (err < 0 && err_transient(err))
			break;
		if (err < 0 && r.magic == JREC_MAGIC) {
			log_err("store: journal: the version of %.*s/%.*s "
				"that a close reported kept cannot be added: "
				"%s; its content was blob %.64s",
				(int)r.blen, names, (int)r.klen,
				names + r.blen, strerror(-err), r.sha);
			err = 0;
		} else if (err < 0 && r.magic == JMOVE_MAGIC) {
			log_err("store: journal: the rename of %.*s/%.*s to "
				"%.*s that returned cannot be made: %s; the "
				"file stays at its old name",
				(int)r.blen, names, (int)r.klen,
				names + r.blen, (int)r.size,
				names + r.blen + r.klen, strerror(-err));
			err = 0;
		} else if (err < 0) {
			log_err("store: journal: the change of metadata of "
				"%.*s/%.*s that returned cannot be made: %s",
				(int)r.blen, names, (int)r.klen,
				names + r.blen, strerror(-err));
			err = 0;
		}
		off += r.len;
	}
	free(buf);
	/* Blobs that an applied record replaced (an unversioned key
	 * written meanwhile) stay in trash/ for the next exclusive open:
	 * this transaction is the caller's, committed after we return. */
	trash_release(&t);
	if (err < 0)
		return err;
	if (off != applied) {
		err = row_set(c, gen, off);
		if (err)
			return err;
	}
	c->j_moved = 1;
	c->j_applied = off;
	return 0;
}

void journal_committed(struct store *st, struct conn *c)
{
	struct store_journal *j = &st->j;

	pthread_mutex_lock(&j->lock);
	j->applied_seen = c->j_applied;
	pend_drop_locked(j, c->j_applied);
	pthread_mutex_unlock(&j->lock);
	c->j_moved = 0;
}

/*
 * The appender, with everything applied: start the file over once it has
 * grown past JOURNAL_RESET_BYTES.  The file is cut first, then the
 * catalog's row follows it in a transaction of its own; should that
 * commit fail, journal_apply() and store_open() know a file one
 * generation ahead of the catalog for what it is.
 */
static void journal_reset(struct store *st)
{
	struct store_journal *j = &st->j;
	uint64_t gen, applied;
	struct conn *c;
	struct trash t;
	int err;

	if (!j->appender || atomic_load(&j->unapplied) ||
	    j->tail < JOURNAL_RESET_BYTES || conn_get_settled(st, &c) ||
	    tx_begin_settled(c))
		return;
	trash_init(&t);
	err = row_get(c, &gen, &applied);
	pthread_mutex_lock(&j->lock);
	if (!err && !j->npend && gen == j->gen && applied == j->tail) {
		if (ftruncate(j->fd, JHEAD_SIZE) || head_write(j->fd, gen + 1)) {
			err = -errno;
			log_err("store: journal: start over: %s",
				strerror(-err));
		} else {
			j->gen = gen + 1;
			j->tail = JHEAD_SIZE;
			j->own_from = JHEAD_SIZE;
			j->claimed = JHEAD_SIZE;
			j->applied_seen = JHEAD_SIZE;
			err = row_set(c, gen + 1, JHEAD_SIZE);
		}
	}
	pthread_mutex_unlock(&j->lock);
	tx_end(st, c, err, &t);
	trash_release(&t);
}

/* Whether a write transaction should apply the journal first. */
int journal_due(struct store *st)
{
	struct store_journal *j = &st->j;
	struct stat sb;

	if (j->fd < 0)
		return 0;
	if (j->appender)
		return atomic_load(&j->unapplied) > 0;
	/* Another process may have appended: one fstat per transaction. */
	return fstat(j->fd, &sb) == 0 &&
	       (uint64_t)sb.st_size > j->applied_seen;
}

/* Apply what is due (@max records at most, and none that ends past
 * @until) in a transaction of its own. */
static int journal_run_max(struct store *st, size_t max, uint64_t until)
{
	uint64_t before = st->j.applied_seen;
	struct conn *c;
	struct trash t;
	int err;

	err = conn_get_settled(st, &c);
	if (err)
		return err;
	trash_init(&t);
	err = tx_begin_settled(c);
	if (err)
		return err;
	err = journal_apply_max(st, c, max, until);
	err = tx_end(st, c, err, &t);
	trash_release(&t);
	if (!err && atomic_exchange(&st->j.queued, 0)) {
		pthread_mutex_lock(&st->j.applier.lock);
		if (st->j.applied_fn)
			st->j.applied_fn(st->j.applied_arg);
		pthread_mutex_unlock(&st->j.applier.lock);
	}
	if (err)
		return err;
	return st->j.applied_seen != before;	/* 1: it moved */
}

static int journal_run(struct store *st)
{
	int err = journal_run_max(st, SIZE_MAX, UINT64_MAX);

	return err < 0 ? err : 0;
}

static void *applier_main(void *arg)
{
	struct store *st = arg;
	struct store_journal *j = &st->j;
	int err, wait_ms = APPLY_RETRY_MS;

	/* Background work: the tools and the request threads come first
	 * (at the same priority, a `cp -r` on the CPU it ran on took a
	 * third longer for every close).  A put that needs a version
	 * applied applies it itself. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), APPLIER_NICE))
		log_debug("store: journal thread: setpriority: %s",
			  strerror(errno));
	pthread_mutex_lock(&j->applier.lock);
	for (;;) {
		while (!j->wanted && !j->applier.stop)
			pthread_cond_wait(&j->applier.cv, &j->applier.lock);
		j->wanted = 0;
		if (j->applier.stop && !atomic_load(&j->unapplied))
			break;
		pthread_mutex_unlock(&j->applier.lock);
		/* A moment for more to come, and for a tool's next change
		 * of the file it closed (rsync's utimes, chmod and rename),
		 * whose transaction applies its record itself. */
		if (!j->applier.stop)
			usleep(APPLY_DELAY_US);
		/* In short transactions: a put waits for the write lock
		 * (a folder's marker in a `cp -r`) no longer than one. */
		do
			err = journal_run_max(st, APPLY_BATCH, UINT64_MAX);
		while (err > 0 && atomic_load(&j->unapplied));
		err = err < 0 ? err : 0;
		if (!err)
			journal_reset(st);
		pthread_mutex_lock(&j->applier.lock);
		if (err && !j->applier.stop) {
			/* A full disk, say: try again later, less and less
			 * often (each try logs why it failed). */
			struct timespec ts;

			deadline_ms(&ts, wait_ms);
			pthread_cond_timedwait(&j->applier.cv,
					       &j->applier.lock, &ts);
			j->wanted = 1;
			if (wait_ms < APPLY_RETRY_MAX_MS)
				wait_ms *= 2;
		} else if (err) {
			break;	/* stopping: store_close() tries once more */
		} else {
			wait_ms = APPLY_RETRY_MS;
		}
	}
	pthread_mutex_unlock(&j->applier.lock);
	return NULL;
}

void store_journal_on_applied(struct store *st, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&st->j.applier.lock);
	st->j.applied_fn = fn;
	st->j.applied_arg = arg;
	pthread_mutex_unlock(&st->j.applier.lock);
}

/* How pend_hit_locked() matches a record's key. */
enum { HIT_BARE, HIT_KEY, HIT_BELOW };

/* Whether a record's key @pkey is @key (of @klen bytes): its folder's
 * marker too with HIT_KEY; or, with HIT_BELOW, a key below folder @key. */
static int name_hit(const char *pkey, const char *key, size_t klen, int how)
{
	if (!pkey)
		return 0;
	if (how != HIT_BELOW)
		return key &&
		       (strcmp(pkey, key) == 0 ||
			(how == HIT_KEY && strncmp(pkey, key, klen) == 0 &&
			 pkey[klen] == '/' && pkey[klen + 1] == '\0'));
	if (!key || !*key)
		return 1;
	return strncmp(pkey, key, klen) == 0 &&
	       (pkey[klen] == '\0' || pkey[klen] == '/' ||
		key[klen - 1] == '/');
}

/* The end in the file of the last record still in the journal that
 * @key of @bucket has, or 0 for none: with HIT_KEY any (a version, a
 * change, a rename from or to it, a change of its folder's marker); with
 * HIT_BARE a version or a rename with no xattrs; with HIT_BELOW any of it
 * or of a key below folder @key.  With @moves, renames only.  Caller
 * holds j.lock. */
static uint64_t pend_last_hit_locked(struct store_journal *j,
				     const char *bucket, const char *key,
				     int how, int moves)
{
	size_t i, klen = key ? strlen(key) : 0;

	for (i = j->npend; i-- > 0;) {
		const struct jpend *p = &j->pend[(j->phead + i) % j->pcap];

		if (strcmp(p->bucket, bucket) ||
		    (how == HIT_BARE && !p->bare) ||
		    (moves && p->magic != JMOVE_MAGIC))
			continue;
		if (name_hit(p->key, key, klen, how) ||
		    name_hit(p->to, key, klen, how))
			return p->end;
	}
	return 0;
}

static int pend_hit_locked(struct store_journal *j, const char *bucket,
			   const char *key, int how)
{
	return pend_last_hit_locked(j, bucket, key, how, 0) != 0;
}

/* Whether keys @a and @b can bear on each other's put: the same name
 * (a folder's marker "x/" is name "x"), or one in a folder the other
 * names. */
static int keys_meet(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n;

	if (la && a[la - 1] == '/')
		la--;
	if (lb && b[lb - 1] == '/')
		lb--;
	n = la < lb ? la : lb;
	if (strncmp(a, b, n))
		return 0;
	return la == lb || (la > lb ? a[n] : b[n]) == '/';
}

int journal_settle_put(struct store *st, const char *bucket, const char *key)
{
	struct store_journal *j = &st->j;
	size_t i;
	int hit = 0;

	if (!j->appender || !atomic_load(&j->unapplied))
		return 0;
	pthread_mutex_lock(&j->lock);
	for (i = 0; i < j->npend && !hit; i++) {
		const struct jpend *p = &j->pend[(j->phead + i) % j->pcap];

		hit = !strcmp(p->bucket, bucket) &&
		      (keys_meet(p->key, key) ||
		       (p->to && keys_meet(p->to, key)));
	}
	pthread_mutex_unlock(&j->lock);
	return hit ? journal_run(st) : 0;
}

/* Apply the records up to the last one that @how and @moves find for
 * @key (pend_last_hit_locked()), and those before it, which go first. */
static int settle_to(struct store *st, const char *bucket, const char *key,
		     int how, int moves)
{
	struct store_journal *j = &st->j;
	uint64_t until;
	int err;

	if (!j->appender || !atomic_load(&j->unapplied))
		return 0;
	pthread_mutex_lock(&j->lock);
	until = pend_last_hit_locked(j, bucket, key, how, moves);
	pthread_mutex_unlock(&j->lock);
	if (!until)
		return 0;
	/* The records after it are the journal thread's, at its priority,
	 * not this request's. */
	err = journal_run_max(st, SIZE_MAX, until);
	return err < 0 ? err : 0;
}

int store_journal_settle(struct store *st, const char *bucket,
			 const char *key)
{
	struct store_journal *j = &st->j;

	if (!j->appender || !atomic_load(&j->unapplied))
		return 0;
	if (!bucket)
		return journal_run(st);
	return settle_to(st, bucket, key, HIT_BELOW, 0);
}

int journal_settle_moves(struct store *st, const char *bucket,
			 const char *key)
{
	return settle_to(st, bucket, key, HIT_KEY, 1);
}

int journal_hit(struct store *st, const char *bucket, const char *key)
{
	struct store_journal *j = &st->j;
	size_t i, klen;
	int hit = 0;

	if (!j->appender || !atomic_load(&j->unapplied))
		return 0;
	klen = strlen(key);

	pthread_mutex_lock(&j->lock);
	for (i = 0; i < j->npend && hit != 1; i++) {
		const struct jpend *p = &j->pend[(j->phead + i) % j->pcap];

		if (strcmp(p->bucket, bucket))
			continue;
		if (name_hit(p->key, key, klen, HIT_KEY) ||
		    name_hit(p->to, key, klen, HIT_KEY))
			hit = 1;
		else if (name_hit(p->key, key, klen, HIT_BELOW) ||
			 name_hit(p->to, key, klen, HIT_BELOW))
			hit = 2;
	}
	pthread_mutex_unlock(&j->lock);
	return hit;
}

int store_journal_holds(struct store *st, const char *bucket,
			const char *key)
{
	return journal_hit(st, bucket, key) == 1;
}

int journal_holds_key(struct store *st, const char *bucket, const char *key)
{
	struct store_journal *j = &st->j;
	int hit;

	if (!j->appender || !atomic_load(&j->unapplied))
		return 0;
	pthread_mutex_lock(&j->lock);
	hit = pend_hit_locked(j, bucket, key, HIT_BARE);
	pthread_mutex_unlock(&j->lock);
	return hit;
}

/*
 * Become the one process that appends: 0, or -1 when another is (or the
 * journal cannot be applied now).  What is whole is applied first; what
 * follows it, a record a kill cut short, is cut off, so that the next
 * record is not written after it.
 */
static int appender_take(struct store *st)
{
	struct store_journal *j = &st->j;
	uint64_t gen, applied;
	struct conn *c;
	int ret = -1;

	if (atomic_load(&j->appender))
		return 0;
	pthread_mutex_lock(&j->take_lock);
	if (j->appender) {
		ret = 0;
	} else if (!j->appender_failed) {
		if (flock(j->fd, LOCK_EX | LOCK_NB)) {
			j->appender_failed = 1;
		} else if (journal_run(st) == 0 &&
			   conn_get_settled(st, &c) == 0 &&
			   row_get(c, &gen, &applied) == 0 && gen == j->gen &&
			   ftruncate(j->fd, (off_t)applied) == 0) {
			j->tail = applied;
			j->own_from = applied;
			j->claimed = applied;
			j->applied_seen = applied;
			atomic_store(&j->appender, 1);
			ret = 0;
		} else {
			flock(j->fd, LOCK_UN);	/* tried again later */
		}
	}
	pthread_mutex_unlock(&j->take_lock);
	return ret;
}

/* Whether @key of @bucket has its current version from a record of this
 * process's journal that has no xattrs (a version, or a rename of one),
 * and no transaction has begun applying it since (one that may change
 * the key's xattrs next): its newest record here but for changes of
 * metadata, which do not touch them.  Caller holds j.lock. */
static int key_bare_locked(struct store_journal *j, const char *bucket,
			   const char *key)
{
	size_t i = j->npend;

	while (i--) {
		const struct jpend *p = &j->pend[(j->phead + i) % j->pcap];

		if (strcmp(p->bucket, bucket) || p->magic == JMETA_MAGIC)
			continue;
		if (p->to && !strcmp(p->to, key))
			return p->bare && p->end > j->claimed;
		if (!strcmp(p->key, key))
			return !p->to && p->bare && p->end > j->claimed;
	}
	return 0;
}

/*
 * Append record @rec, @len bytes, of @key of @bucket (and of @to, a
 * rename's new key), and wake the journal's thread: 0, or -EAGAIN (the
 * caller takes the usual way).  @need_bare: only if key_bare_locked(),
 * checked in the same hold of the lock as the append.
 */
static int append(struct store *st, const char *rec, size_t len,
		  const char *bucket, const char *key, const char *to,
		  int need_bare)
{
	uint32_t magic = ((const struct jrec *)rec)->magic;
	int bare;
	struct store_journal *j = &st->j;
	struct jpend *p;
	int err = 0;

	if (appender_take(st))
		return -EAGAIN;
	pthread_mutex_lock(&j->lock);
	if (j->npend >= JOURNAL_MAX_PENDING ||
	    j->pbytes + len > JOURNAL_MAX_PENDING_BYTES ||
	    (need_bare && !key_bare_locked(j, bucket, key))) {
		err = -EAGAIN;
		goto unlock;
	}
	bare = magic == JREC_MAGIC ||
	       (magic == JMOVE_MAGIC && key_bare_locked(j, bucket, key));
	if (j->npend == j->pcap) {
		size_t ncap = j->pcap ? j->pcap * 2 : 64, i;
		struct jpend *np = calloc(ncap, sizeof(*np));

		if (!np) {
			err = -EAGAIN;
			goto unlock;
		}
		for (i = 0; i < j->npend; i++)
			np[i] = j->pend[(j->phead + i) % j->pcap];
		free(j->pend);
		j->pend = np;
		j->pcap = ncap;
		j->phead = 0;
	}
	p = &j->pend[(j->phead + j->npend) % j->pcap];
	p->bucket = strdup(bucket);
	p->key = strdup(key);
	p->to = to ? strdup(to) : NULL;
	if (!p->bucket || !p->key || (to && !p->to) ||
	    store_pwrite_all(j->fd, rec, len, j->tail)) {
		/* A full disk: the caller puts it the usual way, which
		 * says so.  What a part of it wrote is past the tail. */
		free(p->bucket);
		free(p->key);
		free(p->to);
		err = -EAGAIN;
		goto unlock;
	}
	j->tail += len;
	p->end = j->tail;
	p->len = len;
	p->magic = magic;
	p->bare = bare;
	j->pbytes += len;
	j->npend++;
	atomic_store(&j->unapplied, j->npend);
unlock:
	pthread_mutex_unlock(&j->lock);
	if (err)
		return err;
	pthread_mutex_lock(&j->applier.lock);
	if (store_thread_start_locked(&j->applier, applier_main, st) == 0) {
		j->wanted = 1;
		pthread_cond_signal(&j->applier.cv);
	}
	pthread_mutex_unlock(&j->applier.lock);
	return 0;
}

/* A new record of @magic for @key of @bucket, with room for @extra bytes
 * after the names: its header filled in but for the check, or NULL. */
static struct jrec *rec_new(uint32_t magic, const char *bucket,
			    const char *key, size_t extra, size_t *len_out)
{
	size_t blen = strlen(bucket), klen = strlen(key), len;
	struct jrec *r;

	len = (sizeof(*r) + blen + klen + extra + 7) & ~(size_t)7;
	r = calloc(1, len);
	if (!r)
		return NULL;
	r->magic = magic;
	r->len = (uint32_t)len;
	r->size = extra;
	r->blen = (uint16_t)blen;
	r->klen = (uint16_t)klen;
	memcpy((char *)(r + 1), bucket, blen);
	memcpy((char *)(r + 1) + blen, key, klen);
	*len_out = len;
	return r;
}

int store_journal_meta(struct store *st, const char *bucket, const char *key,
		       const struct store_meta *meta, unsigned mask)
{
	size_t klen = strlen(key), len;
	struct store_obj o;
	struct jrec *r;
	int err, folder = klen && key[klen - 1] == '/';

	if (st->j.fd < 0 || !atomic_load(&st->j.appender) ||
	    strlen(bucket) >= 64 || store_key_check(key))
		return -EAGAIN;
	/* A folder's marker: its change goes after the versions of the
	 * files in it still here, whose puts move its times (rsync sets a
	 * folder's times once it wrote the files in it).  It must be there
	 * (else the caller makes one); nothing but an rmdir, which applies
	 * the journal first, takes it away. */
	if (folder && (mask & (STORE_SET_UID | STORE_SET_GID)))
		return -EAGAIN;	/* never a key known to have no xattrs */
	if (folder && journal_hit(st, bucket, key) != 1 &&
	    (store_lookup(st, bucket, key, &o) || o.kind != STORE_DIR))
		return -EAGAIN;	/* (one journaled before says it is) */
	r = rec_new(JMETA_MAGIC, bucket, key, 0, &len);
	if (!r)
		return -EAGAIN;
	r->ino = mask & (STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID |
			 STORE_SET_MTIME | STORE_SET_ATIME);
	r->mode = meta->mode & 07777;
	r->uid = meta->uid;
	r->gid = meta->gid;
	r->mtime_ns = meta->mtime_ns;
	r->atime_ns = meta->atime_ns;
	r->ctime_ns = (mask & STORE_SET_CTIME) && meta->ctime_ns
			      ? meta->ctime_ns
			      : now_ns();
	r->check = jrec_check(r, (const char *)(r + 1));
	/* A chown drops a file capability: only a key known to have no
	 * xattrs has none to drop. */
	err = append(st, (const char *)r, len, bucket, key, NULL,
		     (mask & (STORE_SET_UID | STORE_SET_GID)) != 0);
	free(r);
	return err;
}

int store_journal_rename(struct store *st, const char *bucket,
			 const char *from, const char *to, uint32_t uid,
			 uint32_t gid, int64_t now)
{
	size_t tlen = strlen(to), len;
	struct jrec *r;
	int err;

	if (st->j.fd < 0 || !atomic_load(&st->j.appender) ||
	    strlen(bucket) >= 64 || store_key_check(from) || !tlen ||
	    to[tlen - 1] == '/' || !strcmp(from, to))
		return -EAGAIN;
	err = store_key_check(to);
	if (err)
		return err;	/* ENAMETOOLONG, as store_rename() says */
	r = rec_new(JMOVE_MAGIC, bucket, from, tlen, &len);
	if (!r)
		return -EAGAIN;
	r->uid = uid;
	r->gid = gid;
	r->ctime_ns = now;
	memcpy((char *)(r + 1) + r->blen + r->klen, to, tlen);
	r->check = jrec_check(r, (const char *)(r + 1));
	err = append(st, (const char *)r, len, bucket, from, to, 0);
	free(r);
	return err;
}

int store_journal_put(struct store *st, const char *bucket, const char *key,
		      const struct store_put *put, const void *content,
		      size_t size, const char *sha, struct store_obj *obj_out)
{
	size_t klen = strlen(key), len;
	struct jrec *r;
	int err;

	if (st->j.fd < 0 || size > JOURNAL_MAX_CONTENT || strlen(bucket) >= 64 ||
	    put->kind != STORE_FILE || put->durable || put->nxattrs ||
	    put->replaces || !sha || strlen(sha) != 64)
		return -EAGAIN;
	err = store_key_check(key);
	if (err)
		return err;
	if (key[klen - 1] == '/')
		return -EINVAL;
	r = rec_new(JREC_MAGIC, bucket, key, size, &len);
	if (!r)
		return -ENOMEM;
	r->ino = put->ino;
	r->named_ns = put->named_ns;
	r->created_ns = now_ns();
	r->mtime_ns = put->mtime_set || put->meta.mtime_ns ? put->meta.mtime_ns
							   : r->created_ns;
	r->ctime_ns = put->meta.ctime_ns ? put->meta.ctime_ns : r->created_ns;
	r->atime_ns = put->meta.atime_ns;
	r->mode = put->meta.mode;
	r->uid = put->meta.uid;
	r->gid = put->meta.gid;
	memcpy(r->sha, sha, 64);
	memcpy((char *)(r + 1) + r->blen + r->klen, content, size);
	r->check = jrec_check(r, (const char *)(r + 1));
	err = append(st, (const char *)r, len, bucket, key, NULL, 0);
	if (!err) {
		memset(obj_out, 0, sizeof(*obj_out));
		obj_out->kind = STORE_FILE;
		obj_out->meta.mode = S_IFREG | (r->mode & 07777);
		obj_out->meta.uid = r->uid;
		obj_out->meta.gid = r->gid;
		obj_out->meta.mtime_ns = r->mtime_ns;
		obj_out->meta.ctime_ns = r->ctime_ns;
		obj_out->meta.atime_ns = r->atime_ns;
		obj_out->size = size;
		obj_out->blocks = (int64_t)((size + 4095) / 4096 * 8);
		memcpy(obj_out->sha256, sha, 64);
		obj_out->sha256[64] = '\0';
		obj_out->ino = put->ino;
	}
	free(r);
	return err;
}

/*
 * At store_open(), with @c: open (or make) STORE/journal, follow a
 * generation started over by a process that died before its catalog
 * said so, and apply what a dead process left.  Without a journal the
 * store still opens; puts then take the usual way.
 */
int journal_open(struct store *st, struct conn *c)
{
	struct store_journal *j = &st->j;
	uint64_t gen, applied, fgen;
	char *path;
	struct stat sb;
	int fd, err;

	if (asprintf(&path, "%s/journal", st->dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warn("store: open %s: %s; closes put their versions "
			 "without it", path, strerror(errno));
		free(path);
		return 0;
	}
	err = row_get(c, &gen, &applied);
	if (err)
		goto fail;
	if (fstat(fd, &sb)) {
		err = -errno;
		goto fail;
	}
	if (sb.st_size < JHEAD_SIZE) {
		/* New (or cut before its header was whole: then it held
		 * no record). */
		if (ftruncate(fd, 0) || head_write(fd, gen)) {
			err = -errno;
			goto fail;
		}
	} else if (head_read(fd, &fgen)) {
		err = -EIO;
		log_err("store: %s is not a journal; set it aside and open "
			"the store again", path);
		goto fail;
	} else if (fgen < gen) {
		/* Started over, and the catalog said so, but the file's new
		 * header was lost (a power cut): all it held was applied. */
		if (ftruncate(fd, JHEAD_SIZE) || head_write(fd, gen)) {
			err = -errno;
			goto fail;
		}
	} else if (fgen == gen + 1) {
		/* journal_reset() cut the file, and the commit of the row
		 * was lost: every record of the old one was applied. */
		err = tx_begin(c);
		if (!err) {
			err = row_set(c, fgen, JHEAD_SIZE);
			err = err ? (tx_rollback(c), err) : tx_commit(st, c);
		}
		if (err)
			goto fail;
		gen = fgen;
		applied = JHEAD_SIZE;
	} else if (fgen != gen) {
		err = -EIO;
		log_err("store: %s follows generation %llu, the catalog %llu: "
			"its versions are not applied", path,
			(unsigned long long)fgen, (unsigned long long)gen);
		goto fail;
	}
	j->fd = fd;
	j->gen = gen;
	j->applied_seen = applied;
	free(path);
	/* What a dead process left; on a full disk it waits for room,
	 * and the store opens all the same (to be emptied, say). */
	if (journal_due(st) && (err = journal_run(st)))
		log_warn("store: %s: versions in the close journal are not "
			 "in the catalog yet: %s", st->dir, strerror(-err));
	return 0;
fail:
	close(fd);
	free(path);
	return err == -EIO ? 0 : err;
}

void journal_init(struct store *st)
{
	struct store_journal *j = &st->j;

	memset(j, 0, sizeof(*j));
	j->fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->take_lock, NULL);
	store_thread_init(&j->applier);
}

/* At store_close(): stop the thread, apply what is left. */
void journal_close(struct store *st)
{
	struct store_journal *j = &st->j;

	store_thread_stop(&j->applier);
	if (j->fd >= 0 && journal_due(st) && journal_run(st))
		log_warn("store: %s: versions are left in the journal; the "
			 "next open applies them", st->dir);
	pthread_mutex_lock(&j->lock);
	pend_drop_locked(j, UINT64_MAX);
	free(j->pend);
	j->pend = NULL;
	pthread_mutex_unlock(&j->lock);
	if (j->fd >= 0)
		close(j->fd);	/* drops the flock() */
	j->fd = -1;
	store_thread_destroy(&j->applier);
	pthread_mutex_destroy(&j->lock);
	pthread_mutex_destroy(&j->take_lock);
}
