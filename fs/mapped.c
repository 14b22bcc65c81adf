/*
 * mapped.c - files still mapped after their last handle's release, looked
 * at again until the mapping is gone (ops.c, pt_detach()).
 *
 * In passthrough mode the kernel maps a file's staging file itself: a
 * shared mapping holds the staging file, not the mount's file, so a
 * program that maps a file, closes the descriptor and writes on through
 * the mapping (msync, munmap) sends its RELEASE before its writes.  Such
 * a node keeps its staging file, and this thread asks ops.c every
 * MAP_POLL_MS whether the mapping is still there; once it is gone, ops.c
 * commits what it wrote.  A mapping keeps the mount busy; after a lazy
 * unmount each node left is committed as it stands, and what a mapping
 * writes after that is not kept (README, Known limits).
 */
#include "fs/fs_i.h"
#include "store/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* The first look comes soon, as the kernel may drop its last reference
 * to the staging file just after the RELEASE; then every MAP_POLL_MS. */
#define MAP_FIRST_MS 20
#define MAP_POLL_MS 250

struct fs_mapwatch {
	pthread_mutex_t lock;
	pthread_cond_t cv;	/* a node added, or stop */
	pthread_t thread;
	struct fs_node **nodes;	/* protected by lock */
	size_t n, cap;		/* protected by lock */
	int added;		/* protected by lock: the next look soon */
	int stop;		/* protected by lock */
};

/* Ask ops.c about each node; drop those it is done with.  Called with
 * mw->lock held; drops it while asking. */
static void poll_all(struct fs *fs, struct fs_mapwatch *mw, int final)
{
	struct fs_node *n;
	size_t i = 0;
	int keep;

	while (i < mw->n) {
		n = mw->nodes[i];
		pthread_mutex_unlock(&mw->lock);
		keep = fs_mapped_poll(fs, n, final);
		pthread_mutex_lock(&mw->lock);
		if (keep) {
			i++;
			continue;
		}
		/* Others may have been added meanwhile: find it again. */
		for (i = 0; i < mw->n && mw->nodes[i] != n; i++)
			;
		if (i < mw->n)
			mw->nodes[i] = mw->nodes[--mw->n];
	}
}

static void *mapwatch_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_mapwatch *mw = fs->mapwatch;
	struct timespec until;

	pthread_mutex_lock(&mw->lock);
	while (!mw->stop) {
		if (mw->n == 0) {
			pthread_cond_wait(&mw->cv, &mw->lock);
			continue;
		}
		deadline_ms(&until, mw->added ? MAP_FIRST_MS : MAP_POLL_MS);
		mw->added = 0;
		while (!mw->stop &&
		       pthread_cond_timedwait(&mw->cv, &mw->lock, &until) !=
			       ETIMEDOUT)
			;
		if (mw->stop)
			break;
		poll_all(fs, mw, 0);
	}
	pthread_mutex_unlock(&mw->lock);
	return NULL;
}

int fs_mapped_start(struct fs *fs)
{
	struct fs_mapwatch *mw = calloc(1, sizeof(*mw));

	if (!mw)
		return -ENOMEM;
	pthread_mutex_init(&mw->lock, NULL);
	pthread_cond_init(&mw->cv, NULL);
	fs->mapwatch = mw;
	if (pthread_create(&mw->thread, NULL, mapwatch_main, fs)) {
		fs->mapwatch = NULL;
		pthread_cond_destroy(&mw->cv);
		pthread_mutex_destroy(&mw->lock);
		free(mw);
		return -EAGAIN;
	}
	return 0;
}

void fs_mapped_stop(struct fs *fs)
{
	struct fs_mapwatch *mw = fs->mapwatch;

	if (!mw)
		return;
	pthread_mutex_lock(&mw->lock);
	mw->stop = 1;
	pthread_cond_broadcast(&mw->cv);
	pthread_mutex_unlock(&mw->lock);
	pthread_join(mw->thread, NULL);
	/* The mount is gone: commit each as it stands. */
	pthread_mutex_lock(&mw->lock);
	poll_all(fs, mw, 1);
	pthread_mutex_unlock(&mw->lock);
	fs->mapwatch = NULL;
	free(mw->nodes);
	pthread_cond_destroy(&mw->cv);
	pthread_mutex_destroy(&mw->lock);
	free(mw);
}

int fs_mapped_watch(struct fs *fs, struct fs_node *n)
{
	struct fs_mapwatch *mw = fs->mapwatch;
	struct fs_node **grown;
	size_t cap;

	if (!mw)
		return -ENOTCONN;
	pthread_mutex_lock(&mw->lock);
	if (mw->stop) {
		pthread_mutex_unlock(&mw->lock);
		return -ENOTCONN;
	}
	if (mw->n == mw->cap) {
		cap = mw->cap * 2 + 8;
		grown = realloc(mw->nodes, cap * sizeof(*grown));
		if (!grown) {
			pthread_mutex_unlock(&mw->lock);
			return -ENOMEM;
		}
		mw->nodes = grown;
		mw->cap = cap;
	}
	mw->nodes[mw->n++] = n;
	mw->added = 1;
	pthread_cond_broadcast(&mw->cv);
	pthread_mutex_unlock(&mw->lock);
	return 0;
}
