/*
 * notify.c - the mount's notifications to the kernel that a name is gone
 * (FUSE_NOTIFY_INVAL_ENTRY), sent by a thread of their own.
 *
 * The kernel takes the directory's lock to drop the entry.  A request
 * handler that sent the notification itself could wait there for ever:
 * an unlink of that name holds the lock, and its UNLINK waits for the
 * very commit the handler is finishing (a node being committed is
 * pending, and an unlink of a pending node waits for it).  That froze a
 * whole mount: an editor's swap file whose close failed on a full disk,
 * then removed by the editor.  So handlers queue the notification here,
 * and wait for it at most FS_NOTIFY_WAIT_MS: in the usual case it is sent
 * by then, and a stat right after the close sees the name gone; in the
 * case above the handler goes on, the unlink finishes, and the
 * notification is sent after it.
 */
#include "fs/fs_i.h"
#include "store/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct item {
	struct item *next;
	fuse_ino_t parent;
	uint64_t seq;
	int expire;	/* look again at the next use; else drop it now */
	char name[];
};

struct fs_notifier {
	pthread_mutex_t lock;
	pthread_cond_t cv;	/* items queued, an item done, stop */
	pthread_t thread;
	struct item *head, *tail;	/* protected by lock */
	uint64_t queued, done;	/* protected by lock */
	int stop;		/* protected by lock */
};

static void *notify_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_notifier *nt = fs->notify;
	struct item *it;
	int rc;

	pthread_mutex_lock(&nt->lock);
	for (;;) {
		while (!nt->head && !nt->stop)
			pthread_cond_wait(&nt->cv, &nt->lock);
		if (nt->stop)
			break;
		it = nt->head;
		nt->head = it->next;
		if (!nt->head)
			nt->tail = NULL;
		pthread_mutex_unlock(&nt->lock);
		rc = -ENOSYS;
		if (it->expire)	/* Linux 6.2 on */
			rc = fuse_lowlevel_notify_expire_entry(
				fs->se, it->parent, it->name,
				strlen(it->name), FUSE_LL_EXPIRE_ONLY);
		if (rc == -ENOSYS)
			rc = fuse_lowlevel_notify_inval_entry(
				fs->se, it->parent, it->name,
				strlen(it->name));
		if (rc && rc != -ENOENT && rc != -ENOTCONN)
			log_debug("notify: %s gone: %s", it->name,
				  strerror(-rc));
		pthread_mutex_lock(&nt->lock);
		nt->done = it->seq;
		free(it);
		pthread_cond_broadcast(&nt->cv);
	}
	pthread_mutex_unlock(&nt->lock);
	return NULL;
}

int fs_notify_start(struct fs *fs)
{
	struct fs_notifier *nt = calloc(1, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	pthread_mutex_init(&nt->lock, NULL);
	pthread_cond_init(&nt->cv, NULL);
	fs->notify = nt;
	if (pthread_create(&nt->thread, NULL, notify_main, fs)) {
		fs->notify = NULL;
		pthread_cond_destroy(&nt->cv);
		pthread_mutex_destroy(&nt->lock);
		free(nt);
		return -EAGAIN;
	}
	return 0;
}

void fs_notify_stop(struct fs *fs)
{
	struct fs_notifier *nt = fs->notify;
	struct item *it;

	if (!nt)
		return;
	pthread_mutex_lock(&nt->lock);
	nt->stop = 1;
	pthread_cond_broadcast(&nt->cv);
	pthread_mutex_unlock(&nt->lock);
	pthread_join(nt->thread, NULL);
	while ((it = nt->head)) {	/* the mount is gone: nothing to tell */
		nt->head = it->next;
		free(it);
	}
	fs->notify = NULL;
	pthread_cond_destroy(&nt->cv);
	pthread_mutex_destroy(&nt->lock);
	free(nt);
}

uint64_t fs_notify_queue(struct fs *fs, fuse_ino_t parent, const char *name,
			 int expire)
{
	struct fs_notifier *nt = fs->notify;
	size_t len = strlen(name);
	struct item *it;
	uint64_t seq;

	if (!nt || !fs->se)
		return 0;
	it = malloc(sizeof(*it) + len + 1);
	if (!it)
		return 0;	/* the entry times out instead */
	it->next = NULL;
	it->parent = parent;
	it->expire = expire;
	memcpy(it->name, name, len + 1);
	pthread_mutex_lock(&nt->lock);
	seq = it->seq = ++nt->queued;
	if (nt->tail)
		nt->tail->next = it;
	else
		nt->head = it;
	nt->tail = it;
	pthread_cond_broadcast(&nt->cv);
	pthread_mutex_unlock(&nt->lock);
	return seq;
}

void fs_notify_wait(struct fs *fs, uint64_t seq)
{
	fs_notify_wait_ms(fs, seq, FS_NOTIFY_WAIT_MS);
}

void fs_notify_sync(struct fs *fs, long ms)
{
	struct fs_notifier *nt = fs->notify;
	uint64_t seq;

	if (!nt)
		return;
	pthread_mutex_lock(&nt->lock);
	seq = nt->queued;
	pthread_mutex_unlock(&nt->lock);
	fs_notify_wait_ms(fs, seq, ms);
}

void fs_notify_wait_ms(struct fs *fs, uint64_t seq, long ms)
{
	struct fs_notifier *nt = fs->notify;
	struct timespec until;

	if (!nt || !seq)
		return;
	deadline_ms(&until, ms);
	pthread_mutex_lock(&nt->lock);
	while (nt->done < seq && !nt->stop &&
	       pthread_cond_timedwait(&nt->cv, &nt->lock, &until) == 0)
		;
	pthread_mutex_unlock(&nt->lock);
}

void fs_notify_entry(struct fs *fs, fuse_ino_t parent, const char *name)
{
	fs_notify_wait(fs, fs_notify_queue(fs, parent, name, 0));
}
