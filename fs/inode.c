/*
 * inode.c - the table of inodes the kernel knows.
 *
 * The store names objects by bucket and key; the kernel names them by
 * inode number.  A node stands for one name in one directory, as a dentry
 * does: it knows its parent and its name, so its path is found by walking
 * up, and a rename of a directory of any size moves one node.  Inode
 * numbers (the kernel's node IDs) are handed out from a 64-bit counter
 * and never reused, so no generation numbers are needed.
 *
 * What stat() shows as st_ino is another number: the store's for the key
 * (store.h, store_ino_reserve()), which is the same after a remount, so
 * that `tar -g`, git's index and `find -inum` know a file again.  A
 * node keeps its st_ino through a rename, as the store does.  Two nodes
 * that are there at once never show the same one: a node whose key's
 * number another node still has (a file removed while open, whose key was
 * then undeleted) gets one of the mount's own, from STORE_INO_OWN up.
 *
 * Three chained hash tables index the nodes: by inode number, by
 * (parent, name), and by st_ino.  A node lives while the kernel holds references to it
 * (nlookup), while handles are open on it, or while it has children; a
 * child keeps its parent alive so that its path can always be walked.
 * Everything here is protected by fs->lock.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t hash_ino(fuse_ino_t ino, size_t cap)
{
	return (size_t)(ino * 0x9e3779b97f4a7c15ULL >> 17) & (cap - 1);
}

static size_t hash_name(const struct fs_node *parent, const char *name,
			size_t cap)
{
	uint64_t h = 1469598103934665603ULL ^ (uintptr_t)parent;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* Whether a node has @st_ino. */
static int sti_used(const struct fs *fs, uint64_t st_ino)
{
	const struct fs_node *n = fs->sti_tab[hash_ino(st_ino, fs->ino_cap)];

	while (n && n->st_ino != st_ino)
		n = n->sti_next;
	return n != NULL;
}

static void name_unhash(struct fs *fs, struct fs_node *node)
{
	struct fs_node **pp;

	if (!node->name)
		return;
	pp = &fs->name_tab[hash_name(node->parent, node->name, fs->name_cap)];
	for (; *pp; pp = &(*pp)->name_next)
		if (*pp == node) {
			*pp = node->name_next;
			break;
		}
	node->name_next = NULL;
}

static void name_hash(struct fs *fs, struct fs_node *node)
{
	size_t i = hash_name(node->parent, node->name, fs->name_cap);

	node->name_next = fs->name_tab[i];
	fs->name_tab[i] = node;
}

/* Double both tables when they fill; on ENOMEM keep the old ones (longer
 * chains, still correct). */
static void tables_grow(struct fs *fs)
{
	size_t cap = fs->ino_cap * 2, i;
	struct fs_node **it, **nt, **st, *n, *next;

	it = calloc(cap, sizeof(*it));
	nt = calloc(cap, sizeof(*nt));
	st = calloc(cap, sizeof(*st));
	if (!it || !nt || !st) {
		free(it);
		free(nt);
		free(st);
		return;
	}
	for (i = 0; i < fs->ino_cap; i++)
		for (n = fs->ino_tab[i]; n; n = next) {
			next = n->ino_next;
			n->ino_next = it[hash_ino(n->ino, cap)];
			it[hash_ino(n->ino, cap)] = n;
			n->sti_next = st[hash_ino(n->st_ino, cap)];
			st[hash_ino(n->st_ino, cap)] = n;
		}
	for (i = 0; i < fs->name_cap; i++)
		for (n = fs->name_tab[i]; n; n = next) {
			size_t j = hash_name(n->parent, n->name, cap);

			next = n->name_next;
			n->name_next = nt[j];
			nt[j] = n;
		}
	free(fs->ino_tab);
	free(fs->name_tab);
	free(fs->sti_tab);
	fs->ino_tab = it;
	fs->name_tab = nt;
	fs->sti_tab = st;
	fs->ino_cap = fs->name_cap = cap;
}

static struct fs_node *node_new(struct fs *fs, enum fs_kind kind,
				uint64_t st_ino)
{
	struct fs_node *n = calloc(1, sizeof(*n));
	size_t i;

	if (!n)
		return NULL;
	n->ino = fs->next_ino++;
	if (fs_kind_is_hist(kind))
		n->ino |= FS_HIST_INO;	/* routed to history.c */
	if (fs_kind_is_hist(kind) || kind == FS_ROOT)
		st_ino = n->ino;
	else if (!st_ino || sti_used(fs, st_ino))
		st_ino = STORE_INO_OWN | fs->own_next++;
	n->st_ino = st_ino;
	n->kind = kind;
	n->stage_fd = -1;
	n->base_fd = -1;
	n->blocks = -1;
	pthread_mutex_init(&n->lock, NULL);
	pthread_mutex_init(&n->hash_mu, NULL);
	pthread_cond_init(&n->hash_cv, NULL);
	if (fs->nnodes + 1 > fs->ino_cap)
		tables_grow(fs);
	i = hash_ino(n->ino, fs->ino_cap);
	n->ino_next = fs->ino_tab[i];
	fs->ino_tab[i] = n;
	i = hash_ino(n->st_ino, fs->ino_cap);
	n->sti_next = fs->sti_tab[i];
	fs->sti_tab[i] = n;
	fs->nnodes++;
	return n;
}

static void node_free(struct fs *fs, struct fs_node *n)
{
	struct fs_node **pp = &fs->ino_tab[hash_ino(n->ino, fs->ino_cap)];

	for (; *pp; pp = &(*pp)->ino_next)
		if (*pp == n) {
			*pp = n->ino_next;
			break;
		}
	pp = &fs->sti_tab[hash_ino(n->st_ino, fs->ino_cap)];
	for (; *pp; pp = &(*pp)->sti_next)
		if (*pp == n) {
			*pp = n->sti_next;
			break;
		}
	fs->nnodes--;
	/* A WRITE's handler may still be hashing after its reply (ops.c,
	 * hash_follow()); in practice the RELEASE's commit waited for it. */
	pthread_mutex_lock(&n->hash_mu);
	while (n->hash_busy)
		pthread_cond_wait(&n->hash_cv, &n->hash_mu);
	pthread_mutex_unlock(&n->hash_mu);
	if (n->seed_check)
		store_check_drop(n->seed_check);
	if (n->stage_fd >= 0)
		store_stage_abort(fs->st, n->stage_fd);
	if (n->base_fd >= 0)
		close(n->base_fd);
	if (n->hash)
		store_hash_free(n->hash);
	pthread_cond_destroy(&n->hash_cv);
	pthread_mutex_destroy(&n->hash_mu);
	pthread_mutex_destroy(&n->lock);
	free(n->miss_name);
	free(n->acl);
	fs_pxa_clear(n);
	free(n->name);
	free(n);
}

void fs_pxa_clear(struct fs_node *n)
{
	size_t i;

	for (i = 0; i < n->npxa; i++) {
		free((void *)n->pxa[i].name);
		free((void *)n->pxa[i].value);
	}
	free(n->pxa);
	n->pxa = NULL;
	n->npxa = 0;
}

/* Free @n and then any parent it was the last thing holding. */
static void node_put_locked(struct fs *fs, struct fs_node *n)
{
	while (n && n != fs->root && n->nlookup == 0 && n->nopen == 0 &&
	       n->nchildren == 0) {
		struct fs_node *parent = n->parent;

		name_unhash(fs, n);
		if (n->pending)
			fs->npending--;
		node_free(fs, n);
		if (!parent)
			break;
		parent->nchildren--;
		n = parent;
	}
}

int fs_nodes_init(struct fs *fs)
{
	fs->ino_cap = fs->name_cap = 1024;
	fs->ino_tab = calloc(fs->ino_cap, sizeof(*fs->ino_tab));
	fs->name_tab = calloc(fs->name_cap, sizeof(*fs->name_tab));
	fs->sti_tab = calloc(fs->ino_cap, sizeof(*fs->sti_tab));
	if (!fs->ino_tab || !fs->name_tab || !fs->sti_tab)
		return -ENOMEM;
	fs->next_ino = FUSE_ROOT_ID;
	fs->root = node_new(fs, FS_ROOT, 0);
	if (!fs->root)
		return -ENOMEM;
	fs->root->nlookup = 1;
	return 0;
}

void fs_nodes_release(struct fs *fs)
{
	size_t i;
	struct fs_node *n, *next;

	for (i = 0; fs->ino_tab && i < fs->ino_cap; i++)
		for (n = fs->ino_tab[i]; n; n = next) {
			next = n->ino_next;
			node_free(fs, n);
		}
	free(fs->ino_tab);
	free(fs->name_tab);
	free(fs->sti_tab);
	fs->ino_tab = fs->name_tab = fs->sti_tab = NULL;
}

struct fs_node *fs_node_get(struct fs *fs, fuse_ino_t ino)
{
	struct fs_node *n;

	pthread_mutex_lock(&fs->lock);
	n = fs->ino_tab[hash_ino(ino, fs->ino_cap)];
	while (n && n->ino != ino)
		n = n->ino_next;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

struct fs_node *fs_node_find_locked(struct fs *fs, struct fs_node *parent,
				    const char *name)
{
	struct fs_node *n = fs->name_tab[hash_name(parent, name,
						   fs->name_cap)];

	while (n && !(n->parent == parent && strcmp(n->name, name) == 0))
		n = n->name_next;
	return n;
}

void fs_node_detach_locked(struct fs *fs, struct fs_node *node)
{
	struct fs_node *parent = node->parent;

	if (!node->name)
		return;
	name_unhash(fs, node);
	free(node->name);
	node->name = NULL;
	node->parent = NULL;
	if (node->pending) {
		node->pending = 0;
		fs->npending--;
	}
	if (parent) {
		parent->nchildren--;
		parent->gone_gen++;
		node_put_locked(fs, parent);
	}
	node_put_locked(fs, node);
}

struct fs_node *fs_node_child(struct fs *fs, struct fs_node *parent,
			      const char *name, enum fs_kind kind,
			      uint64_t lookups, uint64_t st_ino)
{
	struct fs_node *n;

	pthread_mutex_lock(&fs->lock);
	n = fs_node_find_locked(fs, parent, name);
	if (n && n->kind != kind) {
		n->nlookup++;	/* keep it while it is detached */
		fs_node_detach_locked(fs, n);
		n->nlookup--;
		node_put_locked(fs, n);
		n = NULL;
	}
	if (!n) {
		n = node_new(fs, kind, st_ino);
		if (!n)
			goto out;
		n->name = strdup(name);
		if (!n->name) {
			node_free(fs, n);
			n = NULL;
			goto out;
		}
		n->parent = parent;
		parent->nchildren++;
		name_hash(fs, n);
	}
	n->nlookup += lookups;
out:
	pthread_mutex_unlock(&fs->lock);
	return n;
}

void fs_node_forget(struct fs *fs, struct fs_node *node, uint64_t n)
{
	pthread_mutex_lock(&fs->lock);
	node->nlookup = node->nlookup > n ? node->nlookup - n : 0;
	node_put_locked(fs, node);
	pthread_mutex_unlock(&fs->lock);
}

int fs_node_move_locked(struct fs *fs, struct fs_node *node,
			struct fs_node *parent, const char *name)
{
	char *copy = strdup(name);
	struct fs_node *old_parent = node->parent;

	if (!copy)
		return -ENOMEM;
	name_unhash(fs, node);
	free(node->name);
	node->name = copy;
	node->parent = parent;
	parent->nchildren++;
	name_hash(fs, node);
	if (old_parent) {
		old_parent->nchildren--;
		node_put_locked(fs, old_parent);
	}
	return 0;
}

int fs_node_path_locked(struct fs_node *node, char *bucket, char *key)
{
	const struct fs_node *parts[STORE_KEY_MAX / 2 + 2];
	const struct fs_node *n;
	size_t depth = 0, len = 0, l;
	int i;

	if (node->kind == FS_ROOT)
		return -EINVAL;
	for (n = node; n && n->kind != FS_BUCKET; n = n->parent) {
		if (!n->name || depth == sizeof(parts) / sizeof(parts[0]))
			return n->name ? -ENAMETOOLONG : -ENOENT;
		parts[depth++] = n;
	}
	if (!n || !n->name || !n->parent)
		return -ENOENT;
	l = strlen(n->name);
	if (l > 63)
		return -EINVAL;
	memcpy(bucket, n->name, l + 1);
	for (i = (int)depth - 1; i >= 0; i--) {
		l = strlen(parts[i]->name);
		if (len + l + (len ? 1 : 0) > STORE_KEY_MAX)
			return -ENAMETOOLONG;
		if (len)
			key[len++] = '/';
		memcpy(key + len, parts[i]->name, l);
		len += l;
	}
	key[len] = '\0';
	return 0;
}

int fs_node_path(struct fs *fs, struct fs_node *node, char *bucket,
		 char *key)
{
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = fs_node_path_locked(node, bucket, key);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

void fs_node_each_pending_locked(struct fs *fs, struct fs_node *dir,
				 void (*cb)(void *arg, struct fs_node *n),
				 void *arg)
{
	size_t i;
	struct fs_node *n;

	if (fs->npending == 0)
		return;
	for (i = 0; i < fs->ino_cap; i++)
		for (n = fs->ino_tab[i]; n; n = n->ino_next)
			if (n->pending && n->parent == dir)
				cb(arg, n);
}

void fs_node_each_locked(struct fs *fs,
			 void (*cb)(void *arg, struct fs_node *n), void *arg)
{
	struct fs_node *n, *next;
	size_t i;

	for (i = 0; i < fs->ino_cap; i++)
		for (n = fs->ino_tab[i]; n; n = next) {
			next = n->ino_next;
			cb(arg, n);
		}
}

uint64_t fs_ino_new(struct fs *fs)
{
	uint64_t ino;

	/* None (a full disk): 0, and the node gets one of the mount's
	 * own; the store gives the key one when it is committed. */
	return store_ino_new(fs->st, &ino) ? 0 : ino;
}

int fs_ino_kept(uint64_t st_ino)
{
	return st_ino > FUSE_ROOT_ID &&
	       (st_ino < STORE_INO_OWN || st_ino >= 2 * STORE_INO_OWN) &&
	       !(st_ino & FS_HIST_INO);
}
