/*
 * cli.c - the subcommands that are not `mount`.
 *
 * A PATH names something inside a mount.  The mount answers two hidden
 * extended attributes on every node, system.replicafs.store (the store's
 * directory) and system.replicafs.path (BUCKET/KEY), so a command finds the
 * store behind a path without parsing mount tables; a path is asked of
 * its directory, so a path that does not exist any more (a deleted file)
 * works too.  The command then opens the store itself: several processes
 * may have a store open at once.  What it changed it names to the mount
 * (struct refresh), which has the kernel look those names up again.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"

struct target {
	char store[PATH_MAX];
	char bucket[64];
	char key[STORE_KEY_MAX + 1];
	char dir[PATH_MAX];	/* the folder of the mount that was asked */
	char dir_where[64 + STORE_KEY_MAX + 2];	/* its BUCKET/KEY */
};

static int get_attr(const char *path, const char *name, char *buf,
		    size_t size)
{
	ssize_t n = getxattr(path, name, buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Whether @t names a folder: a marker, or any key that ever was below
 * it (deleted ones too, as after rm -rf). */
static int is_folder(struct store *st, const struct target *t)
{
	struct store_obj o;

	return store_lookup_all(st, t->bucket, t->key, &o) == 0 &&
	       o.kind == STORE_DIR;
}

/*
 * Find the store, bucket and key behind @path.  A path whose last
 * component is a name is asked of its directory (BUCKET/KEY is the
 * directory's and the name), so that a deleted file's path works and the
 * command never makes the kernel remember that the name is missing: after
 * `replicafs undelete F`, F is there at once.  A directory that is gone
 * too (`rm -rf DIR`) is passed over for the nearest one that is there,
 * the names below it making the key.  Else (the root of a mount, "..",
 * a directory outside the mount) the path is asked itself.
 */
static int resolve(const char *path, struct target *t)
{
	char where[64 + STORE_KEY_MAX + 2], parent[PATH_MAX];
	char entry[64 + STORE_KEY_MAX + 2], view[16];
	const char *base = NULL, *asked = path;
	size_t len, i;
	char *slash;
	int ret = -ENOENT;

	len = strlen(path);
	if (len >= sizeof(parent)) {
		fprintf(stderr, "replicafs: %s: name too long\n", path);
		return -1;
	}
	for (i = 0, len = 0; path[i]; i++)	/* "a//b" is "a/b" */
		if (path[i] != '/' || !len || parent[len - 1] != '/')
			parent[len++] = path[i];
	parent[len] = '\0';
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	slash = strrchr(parent, '/');
	base = slash ? slash + 1 : parent;
	if (*base && strcmp(base, ".") && strcmp(base, "..")) {
		for (;;) {
			if (!slash)
				asked = ".";
			else if (slash == parent)
				asked = "/";
			else
				asked = parent;
			if (slash)
				*slash = '\0';
			base = slash ? slash + 1 : parent;
			ret = get_attr(asked, XA_STORE, t->store,
				       sizeof(t->store));
			if (ret != -ENOENT || !slash || slash == parent)
				break;
			/* The directory is gone: try its parent, with one
			 * more name in the key. */
			*slash = '/';
			while (--slash > parent && *slash != '/')
				;
			if (*slash != '/')
				slash = NULL;
			base = slash ? slash + 1 : parent;
			if (!strncmp(base, "./", 2) || !strncmp(base, "../", 3))
				break;	/* no name to put in a key */
		}
	}
	if (ret) {
		/* Not asked of a directory, or the directory is outside
		 * every mount (PATH may be a mount's root). */
		base = NULL;
		asked = path;
		ret = get_attr(path, XA_STORE, t->store,
			       sizeof(t->store));
	}
	if (ret) {
		fs_mount_err_say(path, ret);
		return -1;
	}
	ret = get_attr(asked, XA_PATH, where, sizeof(where));
	if (ret) {
		fprintf(stderr, "replicafs: %s: %s\n", path, strerror(-ret));
		return -1;
	}
	/* In .versions a name below a key's folder may be one of its
	 * versions (TIME_ID): that entry names the key itself. */
	if (base && !get_attr(asked, XA_VIEW, view, sizeof(view)) &&
	    !strcmp(view, "versions") &&
	    !get_attr(path, XA_PATH, entry, sizeof(entry)) &&
	    strcmp(entry, where) == 0)
		base = NULL;
	snprintf(t->dir, sizeof(t->dir), "%s", asked);
	memcpy(t->dir_where, where, strlen(where) + 1);
	if (base) {
		size_t l = strlen(where), bl = strlen(base);

		if (l + 1 + bl >= sizeof(where)) {
			fprintf(stderr, "replicafs: %s: name too long\n", path);
			return -1;
		}
		if (l)
			where[l++] = '/';
		memcpy(where + l, base, bl + 1);
	}
	slash = strchr(where, '/');
	if (slash)
		*slash = '\0';
	if (strlen(where) >= sizeof(t->bucket) ||
	    (slash && strlen(slash + 1) >= sizeof(t->key))) {
		fprintf(stderr, "replicafs: %s: name too long\n", path);
		return -1;
	}
	memcpy(t->bucket, where, strlen(where) + 1);
	if (slash)
		memcpy(t->key, slash + 1, strlen(slash + 1) + 1);
	else
		t->key[0] = '\0';
	if (!t->bucket[0]) {
		fprintf(stderr, "replicafs: %s: the root of a mount is not a "
				"bucket\n", path);
		return -1;
	}
	return 0;
}

/*
 * The keys a command changed, told to the mount that shows them by setting
 * XA_REFRESH on the folder resolve() asked (ops.c, op_refresh()), so that
 * it does not go on showing what was there, or missing, for its timeout.
 * A mount too old to know the name refuses it, and its names time out.
 */
struct refresh {
	const struct target *t;
	int sent;		/* names went to the mount */
	size_t len;
	char buf[32768];	/* paths below t->dir, each ended by a NUL */
};

static void refresh_flush(struct refresh *r)
{
	if (r->len && setxattr(r->t->dir, XA_REFRESH, r->buf, r->len, 0))
		log_debug("%s: %s: %s", r->t->dir, XA_REFRESH,
			  strerror(errno));
	else if (r->len)
		r->sent = 1;
	r->len = 0;
}

static struct refresh *refresh_new(const struct target *t)
{
	struct refresh *r = malloc(sizeof(*r));

	if (r) {
		r->t = t;
		r->sent = 0;
		r->len = 0;
	}
	return r;
}

static void refresh_done(struct refresh *r)
{
	char v[8];

	if (r)
		refresh_flush(r);
	if (r && r->sent) {
		/* The mount answers once the kernel has them expired. */
		if (getxattr(r->t->dir, XA_REFRESH, v, sizeof(v)) < 0)
			log_debug("%s: %s: %s", r->t->dir, XA_REFRESH,
				  strerror(errno));
	}
	free(r);
}

static void refresh_add(struct refresh *r, const char *bucket,
			const char *key)
{
	const char *base = r ? r->t->dir_where : "", *rel;
	char full[64 + STORE_KEY_MAX + 2];
	size_t bl, l;

	if (!r)
		return;	/* no memory for it: the names time out */
	bl = strlen(base);
	l = (size_t)snprintf(full, sizeof(full), "%s/%s", bucket, key);
	if (l >= sizeof(full))
		return;
	while (l && full[l - 1] == '/')
		full[--l] = '\0';	/* a folder's marker: the folder */
	if (!bl)
		rel = full;
	else if (!strncmp(full, base, bl) && full[bl] == '/')
		rel = full + bl + 1;
	else
		return;	/* the folder asked itself, or above it */
	l = strlen(rel) + 1;
	if (r->len + l > sizeof(r->buf))
		refresh_flush(r);
	memcpy(r->buf + r->len, rel, l);
	r->len += l;
}

static int open_store(const char *dir, struct store **st)
{
	int ret = store_open(dir, 0, st);

	if (ret)
		fprintf(stderr, "replicafs: cannot open store %s: %s\n", dir,
			strerror(-ret));
	return ret;
}

/* open_store() of the store behind @t; a user who may not open it is
 * told where the mount shows the same to everyone. */
static int open_target_store(const struct target *t, struct store **st)
{
	int ret = open_store(t->store, st);

	if (ret == 0 && store_bucket_get(*st, t->bucket, NULL, NULL) ==
				-ENOENT) {
		/* Said of the key ("no versions") before. */
		fprintf(stderr, "replicafs: there is no bucket %s\n",
			t->bucket);
		store_close(*st);
		*st = NULL;
		ret = -ENOENT;
	}
	if (ret == -EACCES)
		fprintf(stderr,
			"replicafs: in the mount, `ls -l .versions/%s%s%s` "
			"lists the versions any user may read, and removing "
			"a delete marker there (its .deleted entry) "
			"undeletes\n",
			t->bucket, t->key[0] ? "/" : "", t->key);
	return ret;
}

static const char *versioning_name(enum store_versioning v)
{
	switch (v) {
	case STORE_ENABLED:
		return "Enabled";
	case STORE_SUSPENDED:
		return "Suspended";
	default:
		return "Unversioned";
	}
}

static int cmd_versioning(int argc, char **argv)
{
	struct target t;
	struct store *st;
	enum store_versioning v;
	int ret;

	if (argc > 1 && strcmp(argv[1], "--") == 0) {
		argc--;	/* the path after it, "-x" too */
		argv++;
	} else if (argc > 1 && argv[1][0] == '-') {
		argc = 0;
	}
	if (argc < 2 || argc > 3) {
		fprintf(stderr,
			"usage: replicafs versioning PATH [enable|suspend]\n");
		return 2;
	}
	if (argc == 3 && strcmp(argv[2], "enable") != 0 &&
	    strcmp(argv[2], "suspend") != 0) {
		fprintf(stderr, "replicafs: versioning: '%s' is neither "
				"'enable' nor 'suspend'\n", argv[2]);
		return 2;
	}
	if (resolve(argv[1], &t))
		return 1;
	if (t.key[0]) {
		fprintf(stderr, "replicafs: %s is not a bucket (versioning "
				"is set per bucket)\n", argv[1]);
		return 2;
	}
	if (open_target_store(&t, &st))
		return 1;
	if (argc == 3) {
		v = strcmp(argv[2], "enable") == 0 ? STORE_ENABLED
						   : STORE_SUSPENDED;
		ret = store_bucket_set_versioning(st, t.bucket, v);
	} else {
		ret = store_bucket_get(st, t.bucket, NULL, &v);
	}
	if (ret == -EBUSY)
		fprintf(stderr, "replicafs: versioning of %s: it has "
				"replication rules, which need its versioning "
				"Enabled, as in S3 (replicafs replication "
				"delete PATH first)\n", t.bucket);
	else if (ret)
		fprintf(stderr, "replicafs: versioning of %s: %s\n", t.bucket,
			strerror(-ret));
	else
		printf("%s\n", versioning_name(v));
	store_close(st);
	return ret ? 1 : 0;
}

static void iso_time(int64_t ns, char *buf, size_t size)
{
	time_t s = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ns % 1000000000 / 1000000));
}

struct versions_out {
	int json;
	int count;
	struct store *st;
	const struct target *t;
};

static int print_version(void *arg, const struct store_obj *obj)
{
	struct versions_out *o = arg;
	int dm = obj->kind == STORE_DELETE_MARKER;
	enum store_repl_status rs = STORE_REPL_NONE;
	const char *rname;
	char when[96];

	iso_time(obj->created_ns, when, sizeof(when));
	if (store_repl_version_status(o->st, o->t->bucket, o->t->key,
				      obj->version_id, &rs, NULL, NULL))
		rs = STORE_REPL_NONE;
	rname = store_repl_status_name(rs);
	if (o->json) {
		printf("%s\n  {\"version_id\": \"%s\", \"last_modified\": "
		       "\"%s\", \"size\": %llu, \"is_latest\": %s, "
		       "\"is_delete_marker\": %s, \"sha256\": %s%s%s, "
		       "\"replication_status\": %s%s%s}",
		       o->count ? "," : "[", obj->version_id, when,
		       (unsigned long long)obj->size,
		       obj->is_latest ? "true" : "false", dm ? "true" : "false",
		       dm ? "" : "\"", dm ? "null" : obj->sha256,
		       dm ? "" : "\"", *rname ? "\"" : "",
		       *rname ? rname : "null", *rname ? "\"" : "");
	} else {
		printf("%s\t%s\t%llu\t%s%s%s\t%s\n", obj->version_id, when,
		       (unsigned long long)obj->size,
		       obj->is_latest ? "latest" : "",
		       obj->is_latest && dm ? "," : "",
		       dm ? "delete-marker" : (obj->is_latest ? "" : "-"),
		       *rname ? rname : "-");
	}
	o->count++;
	return 0;
}

/* What is said of a path with no version at or below it.  The store
 * keeps nothing of a key whose versions were all removed (rm-version, a
 * delete marker's entry removed in .versions), so it cannot tell one
 * from a key never written. */
static const char no_versions[] =
	"no versions: none was ever written there, or all were removed";

static int cmd_versions(int argc, char **argv)
{
	struct versions_out o = { 0 };
	const char *path = NULL;
	struct target t;
	struct store *st;
	int i, ret, dd = 0;

	for (i = 1; i < argc; i++) {
		if (!dd && strcmp(argv[i], "--") == 0)
			dd = 1;	/* what follows is a path, "-rf" too */
		else if (!dd && strcmp(argv[i], "--json") == 0)
			o.json = 1;
		else if (!path && (dd || argv[i][0] != '-'))
			path = argv[i];
		else
			path = NULL, i = argc + 1;
	}
	if (!path || i > argc) {
		fprintf(stderr, "usage: replicafs versions PATH [--json]\n");
		return 2;
	}
	if (resolve(path, &t))
		return 1;
	if (open_target_store(&t, &st))
		return 1;	/* said: there is no such bucket */
	if (!t.key[0]) {
		fprintf(stderr, "replicafs: %s is a bucket, not an object\n",
			path);
		store_close(st);
		return 2;
	}
	o.st = st;
	o.t = &t;
	/* The JSON array opens with its first entry, so that a failure
	 * prints none of it. */
	ret = store_versions(st, t.bucket, t.key, print_version, &o);
	if (o.json && ret == 0)
		printf("%s\n]\n", o.count ? "" : "[");
	if (ret == -ENOENT && is_folder(st, &t))
		fprintf(stderr, "replicafs: %s is a folder: versions are kept "
				"per file (.versions/%s/%s/ in the mount lists "
				"the keys below it)\n", path, t.bucket, t.key);
	else if (ret)
		fprintf(stderr, "replicafs: %s: %s\n", path,
			ret == -ENOENT ? no_versions : strerror(-ret));
	store_close(st);
	return ret ? 1 : 0;
}

/* What S3 does not replicate, and what the destinations have then. */
static const char *const undelete_note[2] = {
	"an undelete",
	"destinations that took the delete markers keep them (a dir:// "
	"mirror gets the version now current); `replicafs restore PATH "
	"VERSION-ID` writes a version that is replicated",
};
static const char *const rm_version_note[2] = {
	"a permanent delete",
	"destinations keep their copies of the versions removed (a dir:// "
	"mirror gets the version now current)",
};

/* After such a change in @bucket (@note: what, and what then): where the
 * bucket replicates, say so. */
static void not_replicated_note(struct store *st, const char *bucket,
				const char *const note[2])
{
	if (store_repl_config_get(st, bucket, NULL, NULL) != 0)
		return;
	fprintf(stderr, "replicafs: note: %s is not replicated (as in S3): "
			"%s\n", note[0], note[1]);
}

/* What walk_keys() found in one folder: names and kinds of one level,
 * listed before any of them is changed. */
struct walk_level {
	char **names;
	enum store_kind *kinds;
	unsigned char *moved;	/* a delete marker left by a rename */
	size_t n, cap;
};

static int walk_add(void *arg, const char *name, const struct store_obj *o)
{
	struct walk_level *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **names = realloc(l->names, cap * sizeof(*names));
		enum store_kind *kinds;
		unsigned char *moved;

		if (!names)
			return -ENOMEM;
		l->names = names;
		kinds = realloc(l->kinds, cap * sizeof(*kinds));
		if (!kinds)
			return -ENOMEM;
		l->kinds = kinds;
		moved = realloc(l->moved, cap);
		if (!moved)
			return -ENOMEM;
		l->moved = moved;
		l->cap = cap;
	}
	l->names[l->n] = strdup(name);
	if (!l->names[l->n])
		return -ENOMEM;
	l->moved[l->n] = (unsigned char)o->moved;
	l->kinds[l->n++] = o->kind;
	return 0;
}

/* Called by walk_keys() for each key: its current kind (STORE_DIR for a
 * folder's marker key, which may have no version), and whether that is a
 * delete marker a rename left.  0 to go on; an error is reported with the
 * key and the walk goes on. */
typedef int (*walk_cb)(void *arg, const char *bucket, const char *key,
		       enum store_kind kind, int moved);

/* "replicafs: SHOWN: BUCKET/KEY: ERROR" on stderr, the key as the log
 * shows it (msg_escape()): a name may hold a newline or a terminal's
 * control characters. */
static void say_key_error(const char *shown, const char *bucket,
			  const char *key, int err)
{
	size_t size = 4 * strlen(key) + 1;
	char *k = malloc(size);

	if (k)
		msg_escape(k, size, key);
	fprintf(stderr, "replicafs: %s: %s/%s: %s\n", shown, bucket,
		k ? k : "(a key)", strerror(-err));
	free(k);
}

/* Visit every key that has any version below folder @dir ("" for the
 * whole bucket), depth first, each folder's own marker key ("dir/")
 * after what it holds, so that a callback that removes keys empties a
 * folder before its marker.  Each level is listed before the callback
 * runs on any of it.  An error is reported on stderr (@shown is the path
 * the user gave) and the walk goes on; returns the first. */
static int walk_keys(struct store *st, const char *bucket, const char *dir,
		     const char *shown, walk_cb cb, void *arg)
{
	struct walk_level l = { 0 };
	char key[STORE_KEY_MAX + 2];
	int ret, err = 0;
	size_t i;

	ret = store_list_all(st, bucket, dir, walk_add, &l);
	if (ret == -ENOENT && !*dir)
		fprintf(stderr, "replicafs: %s: there is no bucket %s\n", shown,
			bucket);
	else if (ret)
		say_key_error(shown, bucket, dir, ret);
	if (ret)
		err = ret;
	for (i = 0; i <= l.n; i++) {
		const char *name = i < l.n ? l.names[i] : "";
		enum store_kind kind = i < l.n ? l.kinds[i] : STORE_DIR;

		if (i == l.n && !*dir)
			break;	/* a bucket has no marker */
		if ((size_t)snprintf(key, sizeof(key), "%s%s%s", dir,
				     *dir && *name ? "/" : "",
				     i < l.n ? name : "/") >= sizeof(key))
			ret = -ENAMETOOLONG;
		else if (i < l.n && kind == STORE_DIR)
			ret = walk_keys(st, bucket, key, shown, cb, arg);
		else
			ret = cb(arg, bucket, key, kind,
				 i < l.n && l.moved[i]);
		if (ret && !(i < l.n && kind == STORE_DIR))
			say_key_error(shown, bucket, key, ret);
		if (ret && !err)
			err = ret;
		if (i < l.n)
			free(l.names[i]);
	}
	free(l.names);
	free(l.kinds);
	free(l.moved);
	return err;
}

/* Why an undelete or a restore is refused with EISDIR or ENOTDIR. */
static const char name_taken[] =
	"a folder and a file would have one name (a folder has the "
	"file's name now, or a file a folder's above it); move it away first";

/* What a walk_cb works on and counts. */
struct tree_op {
	struct store *st;
	struct refresh *rf;	/* what the mount is told changed */
	int dry;		/* rm_all_one: count, remove nothing */
	unsigned long keys;	/* keys undeleted, or with versions removed */
	unsigned long moved;	/* undelete: keys left deleted by a rename */
	unsigned long older;	/* undelete: keys left deleted whose name a
				 * file or folder removed after them has */
	unsigned long versions;	/* versions removed, delete markers too */
	unsigned long long bytes;
};

/* Whether deleted file @key of @bucket was removed before a folder of its
 * name was (a file made a folder, then rm -rf): the folder's marker was
 * deleted after the file's.  A walk meets the file first ("x" sorts
 * before "x/..."), so the newer of the two comes back. */
static int shadowed_by_folder(struct store *st, const char *bucket,
			      const char *key)
{
	char mkey[STORE_KEY_MAX + 2];
	struct store_obj f, m;

	if ((size_t)snprintf(mkey, sizeof(mkey), "%s/", key) >= sizeof(mkey))
		return 0;
	return store_lookup_all(st, bucket, key, &f) == 0 &&
	       store_lookup_all(st, bucket, mkey, &m) == 0 &&
	       m.kind == STORE_DELETE_MARKER && m.created_ns > f.created_ns;
}

/* walk_cb of `undelete -r`: remove the delete marker of a key whose
 * current version is one, as S3's console undeletes a folder; but not the
 * one a rename left where the object was (rsync's and editors' temporary
 * files, the old names of what was moved): the object lives on at its new
 * key, and bringing the old one back would make a copy that never was.
 * Where a file and a folder of one name were both removed, the one removed
 * last comes back, and the other stays deleted. */
static int undelete_one(void *arg, const char *bucket, const char *key,
			enum store_kind kind, int moved)
{
	struct tree_op *op = arg;
	unsigned folders = 0;
	int ret;

	if (kind != STORE_DELETE_MARKER && kind != STORE_DIR)
		return 0;
	/* A folder's marker that a rename moved with the folder (mv OLD
	 * NEW): the folder lives on at NEW.  It comes back only with a key
	 * in it that does (store_undelete_n() of that key, before). */
	if (kind == STORE_DIR && !moved) {
		struct store_obj o;

		moved = store_lookup_all(op->st, bucket, key, &o) == 0 &&
			o.kind == STORE_DELETE_MARKER && o.moved;
	}
	if (moved) {
		op->moved++;
		return 0;
	}
	if (kind == STORE_DELETE_MARKER &&
	    shadowed_by_folder(op->st, bucket, key)) {
		op->older++;
		return 0;
	}
	/* The folders of a key come back with it: a folder's own marker,
	 * visited after what it holds, is then live already. */
	ret = store_undelete_n(op->st, bucket, key, NULL, &folders);
	if (ret == 0) {
		op->keys += 1 + folders;
		refresh_add(op->rf, bucket, key);
	}
	else if (ret == -EEXIST || (kind == STORE_DIR && ret == -ENOENT))
		ret = 0;	/* a live marker, or a folder without one */
	else if (ret == -ENOTDIR || ret == -EISDIR) {
		op->older++;	/* below a file removed after it */
		ret = 0;
	}
	return ret;
}

/* Undelete every key below folder @dir ("" for the whole bucket) whose
 * current version is a delete marker, folder markers included.  Counts
 * into *@done; 0, or the first error (after going on with the rest). */
static int undelete_tree(struct store *st, struct refresh *rf,
			 const char *bucket, const char *dir,
			 const char *shown, unsigned long *done,
			 unsigned long *moved, unsigned long *older)
{
	struct tree_op op = { .st = st, .rf = rf };
	int ret;

	ret = walk_keys(st, bucket, dir, shown, undelete_one, &op);
	*done = op.keys;
	*moved = op.moved;
	*older = op.older;
	return ret;
}

/* The version IDs of one key, listed before any is removed. */
struct vid_list {
	char (*ids)[STORE_VID_MAX + 1];
	size_t n, cap;
	unsigned long long bytes;
};

static int vid_add(void *arg, const struct store_obj *o)
{
	struct vid_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		void *ids = realloc(l->ids, cap * sizeof(*l->ids));

		if (!ids)
			return -ENOMEM;
		l->ids = ids;
		l->cap = cap;
	}
	snprintf(l->ids[l->n++], sizeof(*l->ids), "%s", o->version_id);
	if (o->kind != STORE_DELETE_MARKER)
		l->bytes += o->size;
	return 0;
}

/* walk_cb of `rm-version -r` (and of a key it names): every version of
 * @key, delete markers too, removed for good, or only counted. */
static int rm_all_one(void *arg, const char *bucket, const char *key,
		      enum store_kind kind, int moved)
{
	struct tree_op *op = arg;
	struct vid_list l = { 0 };
	unsigned long gone = 0;
	size_t i;
	int ret;

	ret = store_versions(op->st, bucket, key, vid_add, &l);
	/* A folder without a marker; or a key whose last versions another
	 * command (an rm-version -r of a folder above or below) removed
	 * since the walk listed it, as below. */
	if (ret == -ENOENT)
		ret = 0;
	op->bytes += l.bytes;
	for (i = 0; ret == 0 && i < l.n; i++) {
		if (!op->dry)
			ret = store_delete_version(op->st, bucket, key,
						   l.ids[i]);
		if (ret == 0)
			gone++;
		else if (ret == -ENOENT)
			ret = 0;	/* removed by another meanwhile */
	}
	op->versions += gone;
	op->keys += gone > 0;
	if (i && !op->dry)
		refresh_add(op->rf, bucket, key);
	free(l.ids);
	return ret;
}

/* One pass of rm-version -r over @t: the keys below it (walk_keys()),
 * then @t's own key, which may be a file's or have no version (a folder,
 * whose marker the walk took); errors are reported, the first returned. */
static int rm_tree_pass(struct tree_op *op, const struct target *t,
			const char *path)
{
	int ret, r;

	ret = walk_keys(op->st, t->bucket, t->key, path, rm_all_one, op);
	if (!t->key[0])
		return ret;
	r = rm_all_one(op, t->bucket, t->key, STORE_DIR, 0);
	if (r)
		fprintf(stderr, "replicafs: %s: %s\n", path, strerror(-r));
	return ret ? ret : r;
}

/* `rm-version -r PATH [--yes]`: every version of every key at or below
 * PATH (a file, a folder or a whole bucket) removed for good, as S3's
 * console empties a bucket; a bucket so emptied can then be removed with
 * rmdir.  Asks first, with what it will remove. */
static int rm_version_tree(const char *path, const struct target *t,
			   struct store *st, struct refresh *rf, int yes)
{
	struct tree_op op = { .st = st, .rf = rf, .dry = 1 };
	const char *what = t->key[0] ? "at or below" : "in bucket";
	char answer[16] = "";
	int ret;

	ret = rm_tree_pass(&op, t, path);
	if (ret)
		return ret;
	if (op.versions == 0) {
		struct store_obj o;

		if (t->key[0] &&
		    store_lookup_all(st, t->bucket, t->key, &o) == -ENOENT) {
			fprintf(stderr, "replicafs: %s: %s\n", path,
				no_versions);
			return -ENOENT;
		}
		printf("removed 0 versions %s %s\n", what, path);
		return 0;
	}
	if (!yes) {
		if (!isatty(0)) {
			fprintf(stderr, "replicafs: rm-version -r would remove "
					"%lu version%s of %lu key%s %s %s for "
					"good: confirm with --yes\n",
				op.versions, op.versions == 1 ? "" : "s",
				op.keys, op.keys == 1 ? "" : "s", what, path);
			return -EPERM;
		}
		fprintf(stderr, "remove %s%lu version%s of %lu key%s %s %s "
				"for good (%llu byte%s)? [y/N] ",
			op.versions == 1 ? "" : "all ", op.versions,
			op.versions == 1 ? "" : "s", op.keys,
			op.keys == 1 ? "" : "s", what, path, op.bytes,
			op.bytes == 1 ? "" : "s");
		if (!fgets(answer, sizeof(answer), stdin) ||
		    (answer[0] != 'y' && answer[0] != 'Y')) {
			fprintf(stderr, "replicafs: nothing removed\n");
			return -ECANCELED;
		}
	}
	op = (struct tree_op){ .st = st, .rf = rf };
	ret = rm_tree_pass(&op, t, path);
	printf("removed %lu version%s of %lu key%s %s %s\n", op.versions,
	       op.versions == 1 ? "" : "s", op.keys, op.keys == 1 ? "" : "s",
	       what, path);
	if (op.versions)
		not_replicated_note(st, t->bucket, rm_version_note);
	return ret;
}

/* Room for cmd_arg() of any path. */
#define CMD_ARG_SIZE (FS_QUOTED_SIZE(PATH_MAX) + 3)

/* @path as the command a message tells the user to run takes it, into
 * @buf of @size (CMD_ARG_SIZE) bytes: shell-quoted, after "--" when it
 * starts with '-'.  Returns @buf. */
static const char *cmd_arg(char *buf, size_t size, const char *path)
{
	size_t n = path[0] == '-' ? 3 : 0;

	memcpy(buf, "-- ", n);
	fs_shell_quote(buf + n, size - n, path);
	return buf;
}

/* `rm-version PATH VERSION-ID [--yes]`: S3's DELETE with a version ID,
 * which removes that version for good and is never replicated; with -r
 * and no ID, every version at or below PATH (rm_version_tree()). */
static int cmd_rm_version(int argc, char **argv)
{
	const char *path = NULL, *vid = NULL;
	struct refresh *rf = NULL;
	char answer[16] = "", q[CMD_ARG_SIZE];
	struct store_obj o;
	struct target t;
	struct store *st;
	int yes = 0, rec = 0, i, ret, dd = 0;

	for (i = 1; i < argc; i++) {
		if (!dd && strcmp(argv[i], "--") == 0)
			dd = 1;
		else if (!dd && (strcmp(argv[i], "--yes") == 0 ||
				 strcmp(argv[i], "-y") == 0))
			yes = 1;
		else if (!dd && (!strcmp(argv[i], "-r") ||
				 !strcmp(argv[i], "--recursive")))
			rec = 1;
		else if (dd && path && (vid || rec) &&
			 (!strcmp(argv[i], "--yes") || !strcmp(argv[i], "-y")))
			yes = 1;	/* at the end, as the usage shows it */
		else if (!path && (dd || argv[i][0] != '-'))
			path = argv[i];
		else if (!vid && (dd || argv[i][0] != '-'))
			vid = argv[i];
		else
			path = NULL, i = argc + 1;
	}
	if (!path || (vid && rec) || i > argc)
		goto usage;
	if (resolve(path, &t))
		return 1;
	if (!t.key[0] && !rec) {
		fprintf(stderr, "replicafs: %s is a bucket: `replicafs "
				"rm-version -r %s` removes every version in "
				"it\n", path, cmd_arg(q, sizeof(q), path));
		return 2;
	}
	if (!vid && !rec)
		goto usage;
	if (open_target_store(&t, &st))
		return 1;
	rf = refresh_new(&t);
	if (rec) {
		ret = rm_version_tree(path, &t, st, rf, yes);
		goto out;
	}
	ret = store_version_get(st, t.bucket, t.key, vid, &o);
	if (ret == -ENOENT && is_folder(st, &t)) {
		fprintf(stderr, "replicafs: %s is a folder: `replicafs "
				"rm-version -r %s` removes every version below "
				"it\n", path, cmd_arg(q, sizeof(q), path));
		goto out;
	}
	if (ret) {
		fprintf(stderr, "replicafs: %s: %s\n", path,
			ret == -ENOENT ? "no version with that ID"
				       : strerror(-ret));
		goto out;
	}
	if (!yes) {
		if (!isatty(0)) {
			fprintf(stderr, "replicafs: rm-version removes a version "
					"for good: confirm with --yes\n");
			ret = -EPERM;
			goto out;
		}
		fprintf(stderr, "remove %s %s of %s for good (%llu bytes)? "
				"[y/N] ", o.kind == STORE_DELETE_MARKER
						 ? "delete marker" : "version",
			vid, path, (unsigned long long)o.size);
		if (!fgets(answer, sizeof(answer), stdin) ||
		    (answer[0] != 'y' && answer[0] != 'Y')) {
			fprintf(stderr, "replicafs: nothing removed\n");
			ret = -ECANCELED;
			goto out;
		}
	}
	/* A delete marker's removal is an undelete when it was current: the
	 * folders rm -rf took come back with it. */
	if (o.kind == STORE_DELETE_MARKER)
		ret = store_delete_marker(st, t.bucket, t.key, vid);
	else
		ret = store_delete_version(st, t.bucket, t.key, vid);
	if (ret)
		fprintf(stderr, "replicafs: %s: %s\n", path,
			ret == -EISDIR || ret == -ENOTDIR ? name_taken
							  : strerror(-ret));
	else {
		refresh_add(rf, t.bucket, t.key);
		printf("removed %s of %s\n", vid, path);
		not_replicated_note(st, t.bucket, rm_version_note);
	}
out:
	refresh_done(rf);
	store_close(st);
	return ret ? 1 : 0;
usage:
	fprintf(stderr, "usage: replicafs rm-version PATH VERSION-ID [--yes] | "
			"rm-version -r PATH [--yes]\n");
	return 2;
}

/* Parse `CMD PATH [VERSION-ID]` (@want_vid: with the ID) into @path and
 * @vid, resolve it to an object, and open its store into *@st: 0, or the
 * exit code after one line on stderr. */
static int object_args(int argc, char **argv, int want_vid,
		       const char *usage, struct target *t, const char **vid,
		       struct store **st)
{
	if (argc > 1 && strcmp(argv[1], "--") == 0) {
		argc--;	/* what follows is the path, "-rf" too */
		argv++;
	} else if (argc > 1 && argv[1][0] == '-') {
		argc = 0;
	}
	if (argc != 2 + want_vid || (want_vid && argv[2][0] == '-')) {
		fprintf(stderr, "usage: replicafs %s\n", usage);
		return 2;
	}
	if (resolve(argv[1], t))
		return 1;
	if (open_target_store(t, st))
		return 1;	/* said: there is no such bucket */
	if (!t->key[0]) {
		fprintf(stderr, "replicafs: %s is a bucket, not an object\n",
			argv[1]);
		store_close(*st);
		return 2;
	}
	*vid = want_vid ? argv[2] : NULL;
	return 0;
}

/* `restore PATH VERSION-ID`: S3's copy of a version onto its own key, a
 * new version that shares the blob. */
static int cmd_restore(int argc, char **argv)
{
	char nv[STORE_VID_MAX + 1];
	const char *vid;
	struct target t;
	struct store *st;
	int ret;

	ret = object_args(argc, argv, 1, "restore PATH VERSION-ID", &t, &vid,
			  &st);
	if (ret)
		return ret;
	if (strcmp(argv[1], "--") == 0)
		argv++;	/* the path, named below */
	ret = store_restore(st, t.bucket, t.key, vid, nv, NULL);
	if (ret == -ENOENT)
		fprintf(stderr, "replicafs: %s: no version %s\n", argv[1], vid);
	else if (ret == -EINVAL)
		fprintf(stderr, "replicafs: %s: version %s is a delete marker: "
				"it has nothing to restore\n", argv[1], vid);
	else if (ret == -EISDIR || ret == -ENOTDIR)
		fprintf(stderr, "replicafs: %s: %s: %s\n", argv[1],
			strerror(-ret), name_taken);
	else if (ret)
		fprintf(stderr, "replicafs: %s: %s\n", argv[1], strerror(-ret));
	else {
		struct refresh *rf = refresh_new(&t);

		refresh_add(rf, t.bucket, t.key);
		refresh_done(rf);
		printf("restored %s of %s as %s\n", vid, argv[1], nv);
	}
	store_close(st);
	return ret ? 1 : 0;
}

/* `undelete [-r] PATH`: remove the delete marker that hides an object;
 * with -r, those of every key below a folder (or a whole bucket). */
static int cmd_undelete(int argc, char **argv)
{
	char marker[STORE_VID_MAX + 1], q[CMD_ARG_SIZE];
	const char *path = NULL;
	struct refresh *rf;
	struct store_obj o;
	struct target t;
	struct store *st;
	unsigned long done = 0, moved = 0, older = 0;
	int i, rec = 0, ret, dd = 0;

	for (i = 1; i < argc; i++) {
		if (!dd && strcmp(argv[i], "--") == 0)
			dd = 1;
		else if (!dd && (!strcmp(argv[i], "-r") ||
				 !strcmp(argv[i], "--recursive")))
			rec = 1;
		else if (!path && (dd || argv[i][0] != '-'))
			path = argv[i];
		else
			break;
	}
	if (!path || i < argc) {
		fprintf(stderr, "usage: replicafs undelete [-r] PATH\n");
		return 2;
	}
	if (resolve(path, &t))
		return 1;
	if (!t.key[0] && !rec) {
		fprintf(stderr, "replicafs: %s is a bucket: `replicafs "
				"undelete -r %s` undeletes every key in it\n",
			path, cmd_arg(q, sizeof(q), path));
		return 2;
	}
	if (open_target_store(&t, &st))
		return 1;
	rf = refresh_new(&t);
	if (rec) {
		ret = undelete_tree(st, rf, t.bucket, t.key, path, &done,
				    &moved, &older);
		refresh_done(rf);
		if (ret == 0 && done == 0 &&
		    store_lookup_all(st, t.bucket, t.key, &o) == -ENOENT) {
			fprintf(stderr, "replicafs: %s: %s\n", path,
				no_versions);
			ret = -ENOENT;
		} else if (ret == 0) {
			printf("undeleted %lu key%s below %s\n", done,
			       done == 1 ? "" : "s", path);
			if (moved)
				printf("left %lu key%s deleted that a rename "
				       "moved elsewhere (temporary files of "
				       "rsync or an editor, old names); "
				       "`replicafs undelete PATH` brings one "
				       "back\n", moved, moved == 1 ? "" : "s");
			if (older)
				printf("left %lu key%s deleted whose name (or "
				       "a folder's above %s) a file or folder "
				       "has now: one removed after %s that "
				       "came back instead, or one that was "
				       "never removed\n", older,
				       older == 1 ? "" : "s",
				       older == 1 ? "it" : "them",
				       older == 1 ? "it" : "them");
			if (done)
				not_replicated_note(st, t.bucket,
						    undelete_note);
		}
		store_close(st);
		return ret ? 1 : 0;
	}
	ret = store_undelete(st, t.bucket, t.key, marker);
	if (ret == -ENOENT && is_folder(st, &t))
		fprintf(stderr, "replicafs: %s is a folder: `replicafs "
				"undelete -r %s` undeletes every key below "
				"it\n", path, cmd_arg(q, sizeof(q), path));
	else if (ret == -ENOENT)
		fprintf(stderr, "replicafs: %s: %s\n", path, no_versions);
	else if (ret == -EEXIST)
		fprintf(stderr, "replicafs: %s: not deleted: its current "
				"version is not a delete marker\n", path);
	else if (ret == -EISDIR || ret == -ENOTDIR)
		fprintf(stderr, "replicafs: %s: %s: %s\n", path, strerror(-ret),
			name_taken);
	else if (ret)
		fprintf(stderr, "replicafs: %s: %s\n", path, strerror(-ret));
	else {
		refresh_add(rf, t.bucket, t.key);
		printf("undeleted %s (removed delete marker %s)\n", path,
		       marker);
		not_replicated_note(st, t.bucket, undelete_note);
	}
	refresh_done(rf);
	store_close(st);
	return ret ? 1 : 0;
}

static int cmd_check(int argc, char **argv)
{
	struct store *st;
	int deep = 0, ret;

	if (argc > 2 && strcmp(argv[1], "--deep") == 0) {
		deep = 1;	/* check --deep [--] STORE */
		argc--;
		argv++;
	}
	if (argc > 1 && strcmp(argv[1], "--") == 0) {
		argc--;
		argv++;
	} else if (argc > 1 && argv[1][0] == '-') {
		argc = 0;
	}
	if (argc == 3 && strcmp(argv[2], "--deep") == 0)
		deep = 1;
	else if (argc != 2) {
		fprintf(stderr, "usage: replicafs check STORE [--deep]\n");
		return 2;
	}
	if (open_store(argv[1], &st))
		return 1;
	ret = store_check(st, deep);
	store_close(st);
	if (ret) {
		fprintf(stderr, "replicafs: store %s has problems (see above)\n",
			argv[1]);
		return 1;
	}
	printf("store %s: ok%s\n", argv[1], deep ? " (every blob hashed)" : "");
	return 0;
}

int fs_cli_main(int argc, char **argv)
{
	if (strcmp(argv[0], "versioning") == 0)
		return cmd_versioning(argc, argv);
	if (strcmp(argv[0], "versions") == 0)
		return cmd_versions(argc, argv);
	if (strcmp(argv[0], "check") == 0)
		return cmd_check(argc, argv);
	if (strcmp(argv[0], "rm-version") == 0)
		return cmd_rm_version(argc, argv);
	if (strcmp(argv[0], "remote") == 0)
		return fs_cli_remote(argc, argv);
	if (strcmp(argv[0], "restore") == 0)
		return cmd_restore(argc, argv);
	if (strcmp(argv[0], "undelete") == 0)
		return cmd_undelete(argc, argv);
	if (fs_cli_is_repl(argv[0]))
		return fs_cli_repl(argc, argv);
	fprintf(stderr, "replicafs: '%s' is not a command; see "
			"'replicafs --help'\n", argv[0]);
	return 2;
}
