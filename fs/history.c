/*
 * history.c - history through ordinary file tools: two read-only views
 * beside the buckets at the root of a mount.
 *
 *   MNT/.versions/BUCKET/[PATH/]   a directory for every key that exists
 *                                  or existed once, and for every folder
 *                                  of such keys; the directory of key KEY
 *                                  holds one file per version of KEY:
 *        2026-11-23T10:15:02.123Z_VERSIONID            a version (its
 *                                  size, mode, owner and mtime; a symlink
 *                                  for a symlink's version)
 *        2026-11-23T10:15:02.123Z_VERSIONID.deleted    a delete marker
 *                                  (empty)
 *                                  so that `ls` sorts them by time.  A key
 *                                  that is also a folder lists both its
 *                                  versions and what is below it.
 *   MNT/.at/TIME/BUCKET/[PATH]     the bucket as it stood at TIME (UTC:
 *                                  2026-11-23, 2026-11-23T10:15:02Z,
 *                                  2026-11-23T10:15:02.123Z; the Z may be
 *                                  left out): files, symlinks and folders
 *                                  with their mode, owner and mtime then.
 *
 * Neither name is listed at the root (as ZFS hides .zfs), so find, du and
 * rsync -a of a mount never walk into history; both open when named.
 *
 * Everything here is read-only (EROFS) but one thing: rm of a delete
 * marker's entry removes that marker (an undelete when it is the current
 * version); rm of a data version's entry is EPERM, as a version is removed
 * for good only by `replicafs rm-version`.  `cp` of a version's entry onto
 * the live path restores it: that is an ordinary write of the mount.
 *
 * Design.  The views are nodes of the one node table (inode.c), of the
 * kinds FS_HV_* and FS_HA_*, whose inode numbers carry FS_HIST_INO:
 * fs_hist_ops() wraps the live operations, and a request whose inode (or
 * parent) has that bit comes here without touching ops.c, as does the
 * lookup of the two names at the root.  A node knows only its name and
 * parent; what it stands for is found again from its path at each request
 * (hist_path(), then view_resolve() asks the store), so nothing here can
 * go stale but the kernel's caches, which get the live tree's timeouts.
 * An open file holds its blob open in its handle, so a read never asks
 * the store; a version's content never changes, so the kernel keeps the
 * pages of a .versions entry across opens.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"

/* Room for a key, its directory marker's '/', and the NUL. */
#define HKEYBUF (STORE_KEY_MAX + 2)
/* Longest entry name: time, '_', version ID, ".deleted". */
#define VNAME_MAX 96
#define DELETED_SUFFIX ".deleted"

/* The live operations, for requests that are not ours (fs_hist_ops()). */
static const struct fuse_lowlevel_ops *live;

static struct fs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int is_hist(fuse_ino_t ino)
{
	return (ino & FS_HIST_INO) != 0;
}

static int is_hist_name(const char *name)
{
	return !strcmp(name, FS_VERSIONS_NAME) || !strcmp(name, FS_AT_NAME);
}

/* A request on @name in directory @parent that is about history. */
static int hist_target(fuse_ino_t parent, const char *name)
{
	return is_hist(parent) ||
	       (parent == FUSE_ROOT_ID && is_hist_name(name));
}

/* ---- time ------------------------------------------------------------ */

/* Days from 1970-01-01 to the civil date @y-@m-@d (proleptic Gregorian;
 * H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* @n decimal digits at @s into *@v: 0, or -1 if they are not all
 * digits. */
static int digits(const char *s, int n, unsigned *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

/*
 * Parse a time of ISO 8601 in UTC: YYYY-MM-DD (1970 to 9999), optionally
 * followed by THH:MM:SS, a fraction of up to 9 digits, and a Z.  A date
 * alone is its start, a time to the second that second's start; a time
 * with a fraction is the end of its last digit's unit (.123 is up to
 * .123999999), so that the millisecond time of a .versions name, which
 * cuts the nanoseconds off, shows that version.  Into *@ns (since the
 * epoch); 0, or -EINVAL.
 */
static int parse_time(const char *s, int64_t *ns)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30,
					  31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, unit = 1;
	int n = 0;

	if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' ||
	    digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d))
		return -EINVAL;
	s += 10;
	if (*s == 'T') {
		if (strlen(s) < 9 || digits(s + 1, 2, &h) || s[3] != ':' ||
		    digits(s + 4, 2, &mi) || s[6] != ':' ||
		    digits(s + 7, 2, &sec))
			return -EINVAL;
		s += 9;
		if (*s == '.') {
			for (s++; *s >= '0' && *s <= '9'; s++, n++)
				if (n < 9)
					frac = frac * 10 + (unsigned)(*s - '0');
			if (n == 0 || n > 9)
				return -EINVAL;
			for (; n < 9; n++) {
				frac *= 10;
				unit *= 10;
			}
			/* To its last digit: the time of a .versions name
			 * (milliseconds) shows that version. */
			frac += unit - 1;
		}
		if (*s == 'Z')
			s++;
	}
	if (*s || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
		return -EINVAL;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 || y % 400 == 0)))
		return -EINVAL;
	*ns = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	/* Past 2262 nanoseconds overflow: any later time is "after every
	 * version". */
	if (*ns >= INT64_MAX / 1000000000)
		*ns = INT64_MAX;
	else
		*ns = *ns * 1000000000 + frac;
	return 0;
}

/* The name of the .versions entry of version @o into @buf (VNAME_MAX). */
static void vname(const struct store_obj *o, char *buf)
{
	time_t s = (time_t)(o->created_ns / 1000000000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, VNAME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ_%s%s",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec,
		 (int)(o->created_ns % 1000000000 / 1000000), o->version_id,
		 o->kind == STORE_DELETE_MARKER ? DELETED_SUFFIX : "");
}

/* The version ID in entry name @name into @vid (STORE_VID_MAX + 1
 * bytes): 0, or -ENOENT when @name is not shaped as an entry. */
static int vname_vid(const char *name, char *vid)
{
	const char *us = strchr(name, '_'), *end;
	size_t len, sl = strlen(DELETED_SUFFIX);

	if (!us || name[0] < '0' || name[0] > '9' ||
	    us - name != (ptrdiff_t)strlen("2026-11-23T10:15:02.123Z"))
		return -ENOENT;
	us++;
	end = us + strlen(us);
	if ((size_t)(end - us) > sl && !strcmp(end - sl, DELETED_SUFFIX))
		end -= sl;
	len = (size_t)(end - us);
	if (!len || len > STORE_VID_MAX)
		return -ENOENT;
	memcpy(vid, us, len);
	vid[len] = '\0';
	return 0;
}

/* ---- where a node is -------------------------------------------------- */

/* What a path in a view names (see hist_path()). */
struct hpath {
	int at;			/* under .at (else .versions) */
	int has_time;		/* .at/TIME or below */
	int64_t t_ns;		/* that TIME */
	char bucket[64];	/* "" above the buckets */
	char key[HKEYBUF];	/* the path below the bucket ("" for it) */
	char entry[NAME_MAX + 1];	/* a .versions entry's name, or "" */
};

/* Add @name below @p, as its entry when @entry, else one level down. */
static int hpath_down(struct hpath *p, const char *name, int entry)
{
	size_t len = strlen(p->key), nl = strlen(name);

	if (entry) {
		if (nl > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(p->entry, name, nl + 1);
	} else if (p->at && !p->has_time) {
		if (parse_time(name, &p->t_ns))
			return -ENOENT;
		p->has_time = 1;
	} else if (!p->bucket[0]) {
		if (nl >= sizeof(p->bucket))
			return -ENOENT;
		memcpy(p->bucket, name, nl + 1);
	} else {
		if (len + nl + (len ? 1 : 0) > STORE_KEY_MAX)
			return -ENAMETOOLONG;
		if (len)
			p->key[len++] = '/';
		memcpy(p->key + len, name, nl + 1);
	}
	return 0;
}

/* The path of history node @node into @p: 0, -ENOENT for a node taken out
 * of the tree, -ENAMETOOLONG. */
static int hist_path(struct fs *fs, struct fs_node *node, struct hpath *p)
{
	const struct fs_node *parts[STORE_KEY_MAX / 2 + 4];
	const struct fs_node *n;
	size_t depth = 0;
	int i, ret = 0;

	p->at = p->has_time = 0;
	p->bucket[0] = p->key[0] = p->entry[0] = '\0';
	pthread_mutex_lock(&fs->lock);
	for (n = node; n && n->kind != FS_HV_ROOT && n->kind != FS_HA_ROOT;
	     n = n->parent) {
		if (!n->name || depth == sizeof(parts) / sizeof(parts[0])) {
			ret = n->name ? -ENAMETOOLONG : -ENOENT;
			goto out;
		}
		parts[depth++] = n;
	}
	if (!n || !n->name) {
		ret = -ENOENT;
		goto out;
	}
	p->at = n->kind == FS_HA_ROOT;
	for (i = (int)depth - 1; i >= 0 && !ret; i--)
		ret = hpath_down(p, parts[i]->name,
				 parts[i]->kind == FS_HV_FILE ||
					 parts[i]->kind == FS_HV_LINK);
out:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* ---- what is there ---------------------------------------------------- */

static void fill_stat(struct stat *st, uint32_t mode, uint32_t uid,
		      uint32_t gid, uint64_t size, int64_t mtime_ns,
		      int64_t ctime_ns)
{
	struct store_meta m = {
		.mode = mode,
		.uid = uid,
		.gid = gid,
		.mtime_ns = mtime_ns,
		.ctime_ns = ctime_ns,
	};

	memset(st, 0, sizeof(*st));
	fs_meta_stat(&m, size, -1, st);
}

/* The entry of file or symlink version @o, whose mode is @mode. */
static void obj_stat(const struct store_obj *o, uint32_t mode,
		     struct stat *st)
{
	struct store_meta m = o->meta;

	m.mode = mode;
	memset(st, 0, sizeof(*st));
	fs_meta_stat(&m, o->size, fs_obj_blocks(o), st);
}

/* A directory of the view itself (.versions, .at, .at/TIME). */
static void view_dir_stat(struct fs *fs, int64_t t, struct stat *st)
{
	fill_stat(st, S_IFDIR | 0555, fs->uid, fs->gid, 4096, t, t);
}

static int newest_cb(void *arg, const struct store_obj *o)
{
	if (o->kind == STORE_DELETE_MARKER)
		return 0;
	*(struct store_obj *)arg = *o;
	return 1;
}

/* The newest version of @key that is not a delete marker, into @o: 0, or
 * -ENOENT when it has none. */
static int newest_data(struct fs *fs, const char *bucket, const char *key,
		       struct store_obj *o)
{
	int ret = store_versions(fs->st, bucket, key, newest_cb, o);

	return ret == 1 ? 0 : ret ? ret : -ENOENT;
}

/* @key's folder marker "@key/" into @mkey (HKEYBUF bytes). */
static int marker_key(const char *key, char *mkey)
{
	size_t len = strlen(key);

	if (len + 1 > STORE_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(mkey, key, len);
	mkey[len] = '/';
	mkey[len + 1] = '\0';
	return 0;
}

/*
 * Who may walk into directory @key of .versions, as into the live tree:
 * a folder has the owner, group and permission bits of its marker (the
 * newest one, if the folder was removed), so that a folder of mode 0700
 * keeps others out of its history as out of itself; a key that is only a
 * file has its newest version's owner and group, mode 0755 (like a
 * folder that holds it: who may see the file in its folder may list its
 * versions, and only its owner may remove a delete marker there, which
 * is an undelete).  A folder that never had a marker keeps the bucket's,
 * as in the live tree.  Into *@bm.
 */
static void hv_dir_owner(struct fs *fs, const char *bucket, const char *key,
			 const struct store_obj *o, struct store_meta *bm)
{
	char mkey[HKEYBUF];
	struct store_obj v;

	if (!marker_key(key, mkey) && !newest_data(fs, bucket, mkey, &v)) {
		bm->mode = v.meta.mode;
		bm->uid = v.meta.uid;
		bm->gid = v.meta.gid;
	} else if (o->kind != STORE_DIR &&
		   !newest_data(fs, bucket, key, &v)) {
		bm->mode = 0755;
		bm->uid = v.meta.uid;
		bm->gid = v.meta.gid;
	}
}

/* A directory of .versions: the owner and permissions hv_dir_owner()
 * gave @bm, and the time of the newest version of its key, if it is
 * one. */
static void hv_dir_stat(const struct store_meta *bm,
			const struct store_obj *o, struct stat *st)
{
	int64_t t = o && o->kind != STORE_DIR ? o->created_ns : bm->mtime_ns;

	fill_stat(st, S_IFDIR | (bm->mode & 07777), bm->uid, bm->gid, 4096, t,
		  t);
}

/* The entry of version @o: kind and attributes. */
static enum fs_kind version_stat(struct fs *fs, const struct store_obj *o,
				 struct stat *st)
{
	if (o->kind == STORE_DELETE_MARKER) {
		/* Its remover, where the marker names one (mode set). */
		fill_stat(st, S_IFREG | 0444,
			  o->meta.mode ? o->meta.uid : fs->uid,
			  o->meta.mode ? o->meta.gid : fs->gid, 0,
			  o->created_ns, o->created_ns);
		return FS_HV_FILE;
	}
	obj_stat(o, (o->kind == STORE_SYMLINK ? S_IFLNK : S_IFREG) |
			    (o->meta.mode & 07777), st);
	return o->kind == STORE_SYMLINK ? FS_HV_LINK : FS_HV_FILE;
}

/* An entry of .at/TIME (@t_ns) from what the store says was there.  A
 * folder's times are its marker's (or bucket's) as they are now, moved by
 * names made in it since (store.h): what it showed at TIME was at most
 * TIME. */
static enum fs_kind at_stat(const struct store_obj *o, int64_t t_ns,
			    struct stat *st)
{
	if (o->kind == STORE_DIR) {
		fill_stat(st, S_IFDIR | (o->meta.mode & 07777), o->meta.uid,
			  o->meta.gid, 4096,
			  o->meta.mtime_ns < t_ns ? o->meta.mtime_ns : t_ns,
			  o->meta.ctime_ns < t_ns ? o->meta.ctime_ns : t_ns);
		return FS_HA_DIR;
	}
	obj_stat(o, o->meta.mode, st);
	return o->kind == STORE_SYMLINK ? FS_HA_LINK : FS_HA_FILE;
}

/* The version of .versions entry @p->entry of key @p->key into @o:
 * 0, or -ENOENT when there is no such version (or the name is not
 * exactly its entry's). */
static int hv_version(struct fs *fs, const struct hpath *p,
		      struct store_obj *o)
{
	char vid[STORE_VID_MAX + 1], name[VNAME_MAX];
	int ret;

	if (!p->key[0] || vname_vid(p->entry, vid))
		return -ENOENT;
	ret = store_version_get(fs->st, p->bucket, p->key, vid, o);
	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	if (o->kind == STORE_DIR)
		return -ENOENT;
	vname(o, name);
	return strcmp(name, p->entry) ? -ENOENT : 0;
}

/*
 * What is at @p: its kind into *@kind, its attributes into @st, and for a
 * version or a file or symlink of .at, the version into @o (may be NULL).
 * 0, -ENOENT, or another negative errno.
 */
static int view_resolve(struct fs *fs, const struct hpath *p,
			enum fs_kind *kind, struct stat *st,
			struct store_obj *o)
{
	struct store_obj obj, *v = o ? o : &obj;
	struct store_meta bm;
	int ret;

	if (!p->at) {
		if (!p->bucket[0]) {
			*kind = FS_HV_ROOT;
			view_dir_stat(fs, fs->start_ns, st);
			return 0;
		}
		if (p->entry[0]) {
			ret = hv_version(fs, p, v);
			if (!ret)
				*kind = version_stat(fs, v, st);
			return ret;
		}
		ret = store_bucket_get(fs->st, p->bucket, &bm, NULL);
		if (ret == 0 && p->key[0])
			ret = store_lookup_all(fs->st, p->bucket, p->key, v);
		if (ret)
			return ret == -EINVAL ? -ENOENT : ret;
		*kind = FS_HV_DIR;
		if (p->key[0])
			hv_dir_owner(fs, p->bucket, p->key, v, &bm);
		hv_dir_stat(&bm, p->key[0] ? v : NULL, st);
		return 0;
	}
	if (!p->has_time) {
		*kind = FS_HA_ROOT;
		view_dir_stat(fs, fs->start_ns, st);
		return 0;
	}
	if (!p->bucket[0]) {
		*kind = FS_HA_TIME;
		view_dir_stat(fs, p->t_ns, st);
		return 0;
	}
	ret = store_lookup_at(fs->st, p->bucket, p->key, p->t_ns, v);
	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	*kind = at_stat(v, p->t_ns, st);
	return 0;
}

/* The path, kind, attributes and (may be NULL) version of node @n, which
 * must still be what it was when it was looked up. */
static int node_resolve(struct fs *fs, struct fs_node *n, struct hpath *p,
			struct stat *st, struct store_obj *o)
{
	enum fs_kind kind;
	int ret;

	ret = hist_path(fs, n, p);
	if (ret == 0)
		ret = view_resolve(fs, p, &kind, st, o);
	if (ret == 0 && kind != n->kind)
		ret = -ENOENT;
	if (ret == 0)
		st->st_ino = n->ino;
	return ret;
}

/* ---- names ------------------------------------------------------------ */

static void reply_entry(fuse_req_t req, struct fs_node *n,
			const struct stat *st)
{
	struct fuse_entry_param e;
	struct fs *fs = FS(req);

	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.attr = *st;
	e.attr.st_ino = n->ino;
	e.attr_timeout = fs->opts.timeout;
	e.entry_timeout = fs->opts.timeout;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		fs_node_forget(fs, n, 1);	/* the request was cut short */
}

static void reply_negative(fuse_req_t req)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.entry_timeout = FS(req)->opts.timeout;
	fuse_reply_entry(req, &e);
}

/* The node of @ino: NULL (after replying ESTALE) when there is none. */
static struct fs_node *node_or_reply(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_node *n = fs_node_get(FS(req), ino);

	if (!n)
		fuse_reply_err(req, ESTALE);
	return n;
}

/* The path of @name in directory @dir (a .versions entry when @dir is a
 * key's directory and @name is shaped as one) into @p. */
static int child_path(struct fs *fs, struct fs_node *dir, const char *name,
		      int entry, struct hpath *p)
{
	int ret = hist_path(fs, dir, p);

	if (ret == 0)
		ret = hpath_down(p, name, entry);
	return ret;
}

static void h_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char vid[STORE_VID_MAX + 1];
	struct fs *fs = FS(req);
	struct fs_node *dir, *n;
	struct hpath *p;
	enum fs_kind kind;
	struct stat st;
	int ret;

	dir = parent == FUSE_ROOT_ID ? fs->root : node_or_reply(req, parent);
	if (!dir)
		return;
	p = malloc(sizeof(*p));
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (dir->kind == FS_ROOT) {
		kind = strcmp(name, FS_AT_NAME) ? FS_HV_ROOT : FS_HA_ROOT;
		view_dir_stat(fs, fs->start_ns, &st);
		ret = 0;
	} else if (dir->kind == FS_HV_FILE || dir->kind == FS_HV_LINK ||
		   dir->kind == FS_HA_FILE || dir->kind == FS_HA_LINK) {
		ret = -ENOTDIR;
	} else {
		/* In a key's directory, a name shaped as a version's entry
		 * is one; anything else is a key below. */
		ret = -ENOENT;
		if (dir->kind == FS_HV_DIR && !vname_vid(name, vid)) {
			ret = child_path(fs, dir, name, 1, p);
			if (ret == 0)
				ret = view_resolve(fs, p, &kind, &st, NULL);
		}
		if (ret == -ENOENT) {
			ret = child_path(fs, dir, name, 0, p);
			if (ret == 0)
				ret = view_resolve(fs, p, &kind, &st, NULL);
		}
	}
	free(p);
	if (ret == -ENOENT) {
		reply_negative(req);
		return;
	}
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	n = fs_node_child(fs, dir, name, kind, 1, 0);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_entry(req, n, &st);
}

static void h_getattr(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	struct hpath *p;
	struct stat st;
	int ret;

	if (!n)
		return;
	p = malloc(sizeof(*p));
	ret = p ? node_resolve(fs, n, p, &st, NULL) : -ENOMEM;
	free(p);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, fs->opts.timeout);
}

/*
 * The live tree forgets what it knew of @key of @bucket: after an
 * undelete, a negative entry the kernel cached there (of the key's name,
 * or of a folder above it that the undelete brings back) would hide the
 * file for up to a timeout.
 */
static void live_forget(struct fs *fs, const char *bucket, const char *key)
{
	char path[64 + HKEYBUF + 1];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", bucket, key) <
	    sizeof(path))
		fs_refresh_path(fs, fs->root, path, 1);
}

/*
 * Whether the caller of @req may make @key's name in the live tree, as
 * removing its delete marker does: write and search permission on its
 * folder, or, where that was removed too (an undelete brings it back),
 * on the nearest folder above it that is there.  Before, the owner of a
 * file undeleted it into a folder she could no longer write.  0 or
 * -EACCES.
 */
static int may_name_live(fuse_req_t req, struct fs *fs, const char *bucket,
			 const char *key)
{
	unsigned char buf[4 + 8 * FS_ACL_MAX];
	struct fs_acl acl, *a = NULL;
	struct store_meta meta;
	struct store_obj o;
	char dir[HKEYBUF], *slash;
	ssize_t got = -ENODATA;
	size_t len;
	int ret;

	if (fuse_req_ctx(req)->uid == 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s", key);
	while ((slash = strrchr(dir, '/'))) {
		*slash = '\0';
		if (store_lookup(fs->st, bucket, dir, &o) == 0 &&
		    o.kind == STORE_DIR)
			break;
	}
	if (!slash) {
		ret = store_bucket_get(fs->st, bucket, &meta, NULL);
		if (ret)
			return ret;
		got = store_xattr_get(fs->st, bucket, "", FS_ACL_ACCESS, buf,
				      sizeof(buf));
	} else {
		meta = o.meta;
		len = strlen(dir);
		if (o.has_marker && len + 1 < sizeof(dir)) {
			dir[len] = '/';
			dir[len + 1] = '\0';
			got = store_xattr_get(fs->st, bucket, dir,
					      FS_ACL_ACCESS, buf, sizeof(buf));
		}
	}
	if (got < 0 && got != -ENODATA && got != -ENOENT)
		return (int)got;
	if (got > 0 && fs_acl_parse(buf, (size_t)got, &acl) == 0)
		a = &acl;
	return fs_may(req, &meta, a, 3) ? 0 : -EACCES;
}

/* rm in .versions: of a delete marker's entry, the removal of that marker;
 * of anything else, a refusal. */
static void h_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char vid[STORE_VID_MAX + 1];
	struct fs *fs = FS(req);
	struct fs_node *dir, *n;
	struct store_obj o;
	struct hpath *p = NULL;
	int ret;

	dir = is_hist(parent) ? node_or_reply(req, parent) : fs->root;
	if (!dir)
		return;
	ret = -EROFS;
	if (dir->kind != FS_HV_DIR || vname_vid(name, vid))
		goto out;
	p = malloc(sizeof(*p));
	ret = p ? child_path(fs, dir, name, 1, p) : -ENOMEM;
	if (ret == 0)
		ret = hv_version(fs, p, &o);
	if (ret == 0 && o.kind != STORE_DELETE_MARKER) {
		log_warn("rm %s/%s of %s: a version is removed for good only "
			 "by `replicafs rm-version`", p->bucket, p->key,
			 name);
		ret = -EPERM;
	}
	if (ret == 0)
		ret = may_name_live(req, fs, p->bucket, p->key);
	if (ret == 0)
		ret = store_delete_marker(fs->st, p->bucket, p->key,
					  o.version_id);
	if (ret == 0) {
		pthread_mutex_lock(&fs->lock);
		n = fs_node_find_locked(fs, dir, name);
		if (n)
			fs_node_detach_locked(fs, n);
		pthread_mutex_unlock(&fs->lock);
		live_forget(fs, p->bucket, p->key);
	}
out:
	free(p);
	fuse_reply_err(req, -ret);
}

static int may_read_past(fuse_req_t req, struct fs *fs, const char *bucket,
			 const char *key, const struct store_obj *o);

static void h_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	char target[PATH_MAX + 1];
	struct store_obj o;
	struct hpath *p;
	struct stat st;
	ssize_t len = 0;
	int ret, fd = -1;

	if (!n)
		return;
	p = malloc(sizeof(*p));
	ret = p ? node_resolve(fs, n, p, &st, &o) : -ENOMEM;
	if (ret == 0 && o.kind != STORE_SYMLINK)
		ret = -EINVAL;
	/* A target is content: a past one is read as a file's is (a link
	 * of a private folder's, moved away, held a password). */
	if (ret == 0)
		ret = may_read_past(req, fs, p->bucket, p->key, &o);
	free(p);
	/* A symlink's blob holds its target (store.h). */
	if (ret == 0)
		ret = store_blob_open(fs->st, o.sha256, &fd);
	if (ret == 0) {
		len = pread(fd, target, PATH_MAX, 0);
		if (len < 0)
			ret = -errno;
		close(fd);
	}
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	target[len] = '\0';
	fuse_reply_readlink(req, target);
}

/* ---- files ------------------------------------------------------------- */

/* An open version: its blob, or -1 for the empty content of a delete
 * marker.  Freed by h_release(). */
struct hfile {
	int fd;
};

struct life_check {
	fuse_req_t req;
	unsigned want;
	int denied;
};

static int life_cb(void *arg, const struct store_meta *m, const void *acl,
		   size_t acl_len)
{
	struct life_check *l = arg;
	struct fs_acl parsed, *a = NULL;

	if (acl && fs_acl_parse(acl, acl_len, &parsed) == 0)
		a = &parsed;
	if (!fs_may(l->req, m, a, l->want)) {
		l->denied = 1;
		return 1;
	}
	return 0;
}

/* Whether every data version in the life of version @vid of @key (NULL:
 * of the version current at @t_ns), each with its mode and access ACL as
 * they stand, lets the caller @want it (store_life_perms()). */
static int may_life(fuse_req_t req, struct fs *fs, const char *bucket,
		    const char *key, const char *vid, int64_t t_ns,
		    unsigned want)
{
	struct life_check l = { .req = req, .want = want };
	int ret = store_life_perms(fs->st, bucket, key, vid, t_ns, life_cb,
				   &l);

	if (ret < 0)
		return ret;
	return l.denied ? -EACCES : 0;
}

/*
 * Whether the caller of @req may read past version @o of @bucket/@key:
 * history shows nobody what the live tree hides, or hid, from them.  So
 * the version must let them read it, and so must every version of the
 * file after it up to its removal (its life), as they stand: after a
 * chmod 600 others read none of the file's history, and another user who
 * removed it and wrote a file of their own under its name (a new life)
 * reads none of it either (before, "the file now" was theirs).  A file
 * of another owner renamed over it ends its life as a removal does: its
 * owner still reads her versions after `mv -f` of someone's private file
 * onto her name.  And each
 * folder above it, as it was when the version was written (its marker's
 * version then, and the rest of that folder's life, as they stand), must
 * let them in: a private folder moved away, and made again by another
 * user under its name, still hides its old files from that user; its
 * owner still reads them.  Root is not asked.  A few queries per folder,
 * whatever the key's history (one scan of the versions after @o).
 * 0 or -EACCES.
 */
static int may_read_past(fuse_req_t req, struct fs *fs, const char *bucket,
			 const char *key, const struct store_obj *o)
{
	char mkey[HKEYBUF];
	const char *slash;
	size_t len;
	int ret;

	if (fuse_req_ctx(req)->uid == 0 || o->kind == STORE_DELETE_MARKER)
		return 0;
	ret = may_life(req, fs, bucket, key, o->version_id, 0, 4);
	for (slash = strchr(key, '/'); ret == 0 && slash;
	     slash = strchr(slash + 1, '/')) {
		len = (size_t)(slash - key) + 1;
		memcpy(mkey, key, len);
		mkey[len] = '\0';
		ret = may_life(req, fs, bucket, mkey, NULL, o->created_ns, 1);
	}
	return ret;
}

static void h_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	struct hfile *h = NULL;
	struct store_obj o;
	struct hpath *p = NULL;
	struct stat st;
	int ret;

	if (!n)
		return;
	if (n->kind != FS_HV_FILE && n->kind != FS_HA_FILE) {
		ret = n->kind == FS_HV_LINK || n->kind == FS_HA_LINK ? -ELOOP
								     : -EISDIR;
		goto out;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		ret = -EROFS;
		goto out;
	}
	p = malloc(sizeof(*p));
	h = malloc(sizeof(*h));
	ret = p && h ? node_resolve(fs, n, p, &st, &o) : -ENOMEM;
	if (ret)
		goto out;
	h->fd = -1;
	ret = may_read_past(req, fs, p->bucket, p->key, &o);
	if (ret == 0 && o.kind != STORE_DELETE_MARKER)
		ret = store_blob_open_sized(fs->st, o.sha256, o.size,
					    &h->fd);
	if (ret)
		goto out;
	fi->fh = (uintptr_t)h;
	/* What a version holds never changes; the past at a time may (an
	 * undelete, a version removed for good). */
	fi->keep_cache = n->kind == FS_HV_FILE;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		if (h->fd >= 0)
			close(h->fd);
		free(h);
	}
	free(p);
	return;
out:
	free(p);
	free(h);
	fuse_reply_err(req, -ret);
}

static void h_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct hfile *h = (struct hfile *)(uintptr_t)fi->fh;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	if (h->fd < 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/* SEEK_DATA, SEEK_HOLE: a version's blob keeps its holes; a delete
 * marker reads as empty. */
static void h_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		    struct fuse_file_info *fi)
{
	struct hfile *h = (struct hfile *)(uintptr_t)fi->fh;
	off_t res;

	if (h->fd < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	res = lseek(h->fd, off, whence);
	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}

static void h_release(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct hfile *h = (struct hfile *)(uintptr_t)fi->fh;

	if (h->fd >= 0)
		close(h->fd);
	free(h);
	fuse_reply_err(req, 0);
}

/* ---- listing ------------------------------------------------------------ */

/* The handle of an open history directory: its listing (first, so that
 * the listing's address is the handle's) and what the callbacks need. */
struct hdir {
	struct fs_listing l;
	struct fs *fs;		/* for the callbacks */
	struct store_meta bm;	/* of the bucket listed */
	const struct hpath *p;	/* the directory listed */
	char *key;		/* room for a key below it (HKEYBUF) */
	int at;
	int64_t t_ns;
};

static int hdir_add(struct hdir *d, const char *name, enum fs_kind kind,
		    const struct stat *st)
{
	return fs_listing_add(&d->l, name, kind, st);
}

static int dirent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fs_dirent *)a)->name,
		      ((const struct fs_dirent *)b)->name);
}

static int add_bucket(void *arg, const char *name,
		      const struct store_meta *meta,
		      enum store_versioning versioning)
{
	struct hdir *d = arg;
	struct store_obj o;
	struct stat st;

	if (!d->at) {
		hv_dir_stat(meta, NULL, &st);
		return hdir_add(d, name, FS_HV_DIR, &st);
	}
	if (store_lookup_at(d->fs->st, name, "", d->t_ns, &o))
		return 0;	/* made after that time */
	at_stat(&o, d->t_ns, &st);
	return hdir_add(d, name, FS_HA_DIR, &st);
}

static int add_version(void *arg, const struct store_obj *o)
{
	struct hdir *d = arg;
	char name[VNAME_MAX];
	enum fs_kind kind;
	struct stat st;

	if (o->kind == STORE_DIR)
		return 0;
	kind = version_stat(d->fs, o, &st);
	vname(o, name);
	return hdir_add(d, name, kind, &st);
}

static int add_key(void *arg, const char *name, const struct store_obj *o)
{
	struct hdir *d = arg;
	struct stat st;

	struct store_meta bm = d->bm;

	if (d->at)
		return hdir_add(d, name, at_stat(o, d->t_ns, &st), &st);
	/* The attributes the kernel checks permissions with, as a lookup
	 * of the entry gives them. */
	if ((size_t)snprintf(d->key, HKEYBUF, "%s%s%s", d->p->key,
			     d->p->key[0] ? "/" : "", name) < HKEYBUF)
		hv_dir_owner(d->fs, d->p->bucket, d->key, o, &bm);
	hv_dir_stat(&bm, o, &st);
	return hdir_add(d, name, FS_HV_DIR, &st);
}

static int hdir_fill(struct fs *fs, struct fs_node *dir, struct fs_listing *l)
{
	struct hdir *d = (struct hdir *)l;
	struct hpath *p;
	struct stat st;
	enum fs_kind kind;
	size_t i, j;
	int ret;

	fs_listing_clear(&d->l);
	p = malloc(sizeof(*p));
	d->key = malloc(HKEYBUF);
	if (!p || !d->key) {
		ret = -ENOMEM;
		goto out;
	}
	ret = node_resolve(fs, dir, p, &st, NULL);
	if (ret)
		goto out;
	kind = dir->kind;
	d->fs = fs;
	d->p = p;
	d->at = p->at;
	d->t_ns = p->t_ns;
	if (kind == FS_HV_ROOT || kind == FS_HA_TIME) {
		ret = store_bucket_list(fs->st, add_bucket, d);
	} else if (kind == FS_HV_DIR) {
		ret = store_bucket_get(fs->st, p->bucket, &d->bm, NULL);
		if (ret == 0 && p->key[0]) {
			ret = store_versions(fs->st, p->bucket, p->key,
					     add_version, d);
			if (ret == -ENOENT)
				ret = 0;	/* only a folder */
		}
		if (ret == 0)
			ret = store_list_all(fs->st, p->bucket, p->key, add_key,
					     d);
	} else if (kind == FS_HA_DIR) {
		ret = store_list_at(fs->st, p->bucket, p->key, p->t_ns,
				    add_key, d);
	} else if (kind != FS_HA_ROOT) {
		ret = -ENOTDIR;
	}
	if (ret)
		goto out;
	/* Name order, and a name once (a key that looks like a version's
	 * entry loses to the entry, as in lookup). */
	if (l->n > 1)
		qsort(l->e, l->n, sizeof(*l->e), dirent_cmp);
	for (i = j = 0; i < l->n; i++) {
		if (j && !strcmp(l->e[j - 1].name, l->e[i].name)) {
			free(l->e[i].name);
			continue;
		}
		l->e[j++] = l->e[i];
	}
	l->n = j;
out:
	free(d->key);
	d->key = NULL;
	free(p);
	return ret;
}

static void h_opendir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct fs_node *n = node_or_reply(req, ino);

	if (!n)
		return;
	if (n->kind == FS_HV_FILE || n->kind == FS_HV_LINK ||
	    n->kind == FS_HA_FILE || n->kind == FS_HA_LINK) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fs_opendir(req, fi, sizeof(struct hdir));
}

static void h_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	fs_readdir(req, ino, size, off, 0,
		   (struct fs_listing *)(uintptr_t)fi->fh, hdir_fill, NULL);
}

static void h_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	fs_readdir(req, ino, size, off, 1,
		   (struct fs_listing *)(uintptr_t)fi->fh, hdir_fill, NULL);
}

static void h_releasedir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct hdir *d = (struct hdir *)(uintptr_t)fi->fh;

	fs_releasedir(req, &d->l, d);
}

/* ---- extended attributes ------------------------------------------------ */

static void reply_value(fuse_req_t req, const void *val, size_t len,
			size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static int is_version_node(const struct fs_node *n)
{
	return n->kind == FS_HV_FILE || n->kind == FS_HV_LINK ||
	       n->kind == FS_HA_FILE || n->kind == FS_HA_LINK;
}

/*
 * The attributes of version @o of @p's key (user.*, trusted.*, security.*,
 * ACLs), as they were set on that version, into *@x (malloc()ed, see
 * store_version_xattrs(); none for a delete marker): so that cp -a and
 * rsync -aX out of .versions or .at bring them along, as out of the live
 * tree.
 */
static int version_user_xattrs(struct fs *fs, const struct hpath *p,
			       const struct store_obj *o,
			       struct store_xattr **x, size_t *nx)
{
	*x = NULL;
	*nx = 0;
	if (o->kind == STORE_DELETE_MARKER)
		return 0;
	return store_version_xattrs(fs->st, p->bucket, p->key, o->version_id,
				    x, nx);
}

/*
 * The xattrs of folder @p's marker: its ACLs, which the kernel then
 * enforces here as in the live tree, and the user's own: in .versions the
 * newest marker's, in .at the marker alive then (@o, resolved).  None for
 * a folder without a marker; a bucket's are its own, as now (they have no
 * history), so that a user whom its ACL lets in gets in here too.
 */
static int folder_xattrs(struct fs *fs, struct fs_node *n,
			 const struct hpath *p, const struct store_obj *o,
			 struct store_xattr **x, size_t *nx)
{
	char mkey[HKEYBUF];
	struct store_obj v;
	int ret;

	*x = NULL;
	*nx = 0;
	if (!p->key[0]) {
		ret = store_version_xattrs(fs->st, p->bucket, "", "", x, nx);
		return ret == -ENOENT ? 0 : ret;
	}
	if (marker_key(p->key, mkey))
		return 0;
	if (n->kind == FS_HA_DIR) {
		if (!o->has_marker)
			return 0;
		v = *o;
	} else {
		ret = newest_data(fs, p->bucket, mkey, &v);
		if (ret)
			return ret == -ENOENT ? 0 : ret;
	}
	ret = store_version_xattrs(fs->st, p->bucket, mkey, v.version_id, x,
				   nx);
	return ret == -ENOENT ? 0 : ret;
}

static void h_user_xattr(fuse_req_t req, struct fs *fs, struct fs_node *n,
			 const char *name, size_t size)
{
	struct store_xattr *x = NULL;
	struct store_obj o;
	struct hpath *p;
	struct stat st;
	size_t nx = 0, i;
	int ret = 0;

	if (is_version_node(n)) {
		p = malloc(sizeof(*p));
		ret = p ? node_resolve(fs, n, p, &st, &o) : -ENOMEM;
		/* As the content: the kernel checked the version's own
		 * mode; the rest says may_read_past(). */
		if (ret == 0 && !fs_acl_name(name))
			ret = may_read_past(req, fs, p->bucket, p->key, &o);
		if (ret == 0)
			ret = version_user_xattrs(fs, p, &o, &x, &nx);
		free(p);
	} else if (n->kind == FS_HV_DIR || n->kind == FS_HA_DIR) {
		p = malloc(sizeof(*p));
		ret = p ? node_resolve(fs, n, p, &st, &o) : -ENOMEM;
		if (ret == 0)
			ret = folder_xattrs(fs, n, p, &o, &x, &nx);
		free(p);
	}
	if (ret) {
		fuse_reply_err(req, ret == -ENOENT ? ENODATA : -ret);
		return;
	}
	for (i = 0; i < nx && strcmp(x[i].name, name); i++)
		;
	if (i == nx)
		fuse_reply_err(req, ENODATA);
	else
		reply_value(req, x[i].value, x[i].size, size);
	free(x);
}

/*
 * The attributes of a version (vattr.c) on the entries that stand for
 * one, and the command line's hidden two on every node: the store, and
 * BUCKET/KEY of the key a node is about (so that `replicafs versions`
 * works on .versions/BUCKET/KEY too).
 */
static void h_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	char val[FS_VATTR_MAX], *path = NULL;
	struct store_obj o;
	struct hpath *p;
	struct stat st;
	size_t len = 0;
	int ret;

	if (!n)
		return;
	if (!strcmp(name, XA_STORE)) {
		reply_value(req, store_path(fs->st),
			    strlen(store_path(fs->st)), size);
		return;
	}
	if (!strcmp(name, XA_VIEW)) {
		reply_value(req, n->kind < FS_HA_ROOT ? "versions" : "at",
			    n->kind < FS_HA_ROOT ? 8 : 2, size);
		return;
	}
	if (!strcmp(name, XA_REFRESH)) {	/* see h_refresh() */
		fs_loop_detach();	/* as in ops.c */
		fs_notify_sync(fs, FS_REFRESH_WAIT_MS);
		reply_value(req, "", 0, size);
		return;
	}
	if (!fs_vattr_own(name) && !fs_xattr_kept(name) &&
	    !(fs->acl && fs_acl_name(name))) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (!fs_vattr_own(name)) {
		/* the user's, and a version's ACL, which the kernel
		 * enforces here as on the live tree */
		h_user_xattr(req, fs, n, name, size);
		return;
	}
	if (strcmp(name, XA_PATH) && !(fs_vattr_is(name) &&
				       is_version_node(n))) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	p = malloc(sizeof(*p));
	ret = p ? node_resolve(fs, n, p, &st, &o) : -ENOMEM;
	if (ret == 0 && !strcmp(name, XA_PATH)) {
		path = malloc(sizeof(p->bucket) + sizeof(p->key) + 1);
		if (!path)
			ret = -ENOMEM;
		else if (p->bucket[0] && p->key[0])
			len = (size_t)snprintf(path, sizeof(p->bucket) +
						     sizeof(p->key) + 1,
					       "%s/%s", p->bucket, p->key);
		else
			len = (size_t)snprintf(path, sizeof(p->bucket), "%s",
					       p->bucket);
	} else if (ret == 0) {
		/* A hash tells of the content: who may not read that now
		 * gets neither. */
		ret = may_read_past(req, fs, p->bucket, p->key, &o);
		if (ret == 0)
			ret = fs_vattr_get(req, fs, p->bucket, p->key, &o,
					   name, size, val);
		len = ret > 0 ? (size_t)ret : 0;
		ret = ret < 0 ? ret : 0;
	}
	if (ret)
		fuse_reply_err(req, ret == -ENOENT ? ENODATA : -ret);
	else
		reply_value(req, path ? path : val, len, size);
	free(path);
	free(p);
}

static void h_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	struct store_obj o;
	struct hpath *p;
	struct stat st;
	size_t len = 0, cap = 65536, nx = 0, i;
	struct store_xattr *x = NULL;
	char *buf = NULL;
	int ret = 0;

	if (!n)
		return;
	if (!is_version_node(n) && n->kind != FS_HV_DIR &&
	    n->kind != FS_HA_DIR) {
		reply_value(req, "", 0, size);
		return;
	}
	p = malloc(sizeof(*p));
	buf = malloc(cap);
	ret = p && buf ? node_resolve(fs, n, p, &st, &o) : -ENOMEM;
	if (ret == 0 && is_version_node(n))
		ret = version_user_xattrs(fs, p, &o, &x, &nx);
	else if (ret == 0)
		ret = folder_xattrs(fs, n, p, &o, &x, &nx);
	for (i = 0; ret == 0 && i < nx; i++) {
		size_t l = strlen(x[i].name) + 1;

		if (len + l > cap) {
			ret = -E2BIG;
			break;
		}
		memcpy(buf + len, x[i].name, l);
		len += l;
	}
	if (ret == 0 && fuse_req_ctx(req)->uid != 0)
		fs_xattr_hide_trusted(buf, &len);
	if (ret == 0 && is_version_node(n))
		ret = fs_vattr_list(fs, p->bucket, p->key, &o, 0, buf, &len,
				    cap);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_value(req, buf, len, size);
	free(x);
	free(buf);
	free(p);
}

/* ---- the routing ------------------------------------------------------ */

static void reply_rofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void r_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (hist_target(parent, name))
		h_lookup(req, parent, name);
	else
		live->lookup(req, parent, name);
}

static void r_getattr(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_getattr(req, ino, fi);
	else
		live->getattr(req, ino, fi);
}

static void r_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		      int to_set, struct fuse_file_info *fi)
{
	if (is_hist(ino))
		reply_rofs(req);
	else
		live->setattr(req, ino, attr, to_set, fi);
}

static void r_readlink(fuse_req_t req, fuse_ino_t ino)
{
	if (is_hist(ino))
		h_readlink(req, ino);
	else
		live->readlink(req, ino);
}

static void r_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode, dev_t rdev)
{
	if (hist_target(parent, name))
		reply_rofs(req);
	else
		live->mknod(req, parent, name, mode, rdev);
}

static void r_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode)
{
	if (hist_target(parent, name))
		reply_rofs(req);
	else
		live->mkdir(req, parent, name, mode);
}

static void r_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (hist_target(parent, name))
		h_unlink(req, parent, name);
	else
		live->unlink(req, parent, name);
}

static void r_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (hist_target(parent, name))
		reply_rofs(req);
	else
		live->rmdir(req, parent, name);
}

static void r_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		      const char *name)
{
	if (hist_target(parent, name))
		reply_rofs(req);
	else
		live->symlink(req, link, parent, name);
}

static void r_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		     fuse_ino_t newparent, const char *newname,
		     unsigned int flags)
{
	if (hist_target(parent, name) || hist_target(newparent, newname))
		reply_rofs(req);
	else
		live->rename(req, parent, name, newparent, newname, flags);
}

static void r_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		   const char *newname)
{
	if (is_hist(ino) || hist_target(newparent, newname))
		reply_rofs(req);
	else
		live->link(req, ino, newparent, newname);
}

static void r_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_open(req, ino, fi);
	else
		live->open(req, ino, fi);
}

static void r_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_read(req, ino, size, off, fi);
	else
		live->read(req, ino, size, off, fi);
}

static void r_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		    size_t size, off_t off, struct fuse_file_info *fi)
{
	if (is_hist(ino))
		fuse_reply_err(req, EBADF);	/* never open for writing */
	else
		live->write(req, ino, buf, size, off, fi);
}

static void r_write_buf(fuse_req_t req, fuse_ino_t ino,
			struct fuse_bufvec *bufv, off_t off,
			struct fuse_file_info *fi)
{
	if (is_hist(ino))
		fuse_reply_err(req, EBADF);
	else
		live->write_buf(req, ino, bufv, off, fi);
}

static void r_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (is_hist(ino))
		fuse_reply_err(req, 0);
	else
		live->flush(req, ino, fi);
}

static void r_release(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_release(req, ino, fi);
	else
		live->release(req, ino, fi);
}

static void r_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi)
{
	if (is_hist(ino))
		fuse_reply_err(req, 0);	/* nothing of ours to write */
	else
		live->fsync(req, ino, datasync, fi);
}

static void r_opendir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_opendir(req, ino, fi);
	else
		live->opendir(req, ino, fi);
}

static void r_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_readdir(req, ino, size, off, fi);
	else
		live->readdir(req, ino, size, off, fi);
}

static void r_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_readdirplus(req, ino, size, off, fi);
	else
		live->readdirplus(req, ino, size, off, fi);
}

static void r_releasedir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_releasedir(req, ino, fi);
	else
		live->releasedir(req, ino, fi);
}

/*
 * XA_REFRESH on a folder of a view: the command line named a key there
 * (`replicafs restore .versions/BUCKET/KEY ID`), and changed it in the
 * live tree, whose names are looked at again as for a live folder
 * (ops.c, op_refresh()).
 */
static void h_refresh(fuse_req_t req, fuse_ino_t ino, const char *value,
		      size_t size)
{
	/* BUCKET/KEY/REL: a whole key's path, or longer than any */
	const size_t cap = 64 + HKEYBUF + 2;
	struct fs *fs = FS(req);
	struct fs_node *n = node_or_reply(req, ino);
	const char *v = value, *end = value + size;
	struct hpath *p;
	struct stat st;
	char *path;
	size_t len;
	int ret;

	if (!n)
		return;
	p = malloc(sizeof(*p));
	path = malloc(cap);
	ret = p && path ? node_resolve(fs, n, p, &st, NULL) : -ENOMEM;
	for (; ret == 0 && p->bucket[0] && v < end; v += len + 1) {
		len = strnlen(v, (size_t)(end - v));
		if (len && (size_t)snprintf(path, cap, "%s%s%s/%.*s",
					    p->bucket, p->key[0] ? "/" : "",
					    p->key, (int)len, v) < cap)
			fs_refresh_path(fs, fs->root, path, 0);
	}
	free(p);
	free(path);
	fuse_reply_err(req, ret == -ENOENT ? 0 : -ret);
}

static void r_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       const char *value, size_t size, int flags)
{
	if (is_hist(ino) && !strcmp(name, XA_REFRESH))
		h_refresh(req, ino, value, size);
	else if (is_hist(ino))
		reply_rofs(req);
	else
		live->setxattr(req, ino, name, value, size, flags);
}

static void r_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size)
{
	if (is_hist(ino))
		h_getxattr(req, ino, name, size);
	else
		live->getxattr(req, ino, name, size);
}

static void r_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	if (is_hist(ino))
		h_listxattr(req, ino, size);
	else
		live->listxattr(req, ino, size);
}

static void r_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (is_hist(ino))
		reply_rofs(req);
	else
		live->removexattr(req, ino, name);
}

static void r_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, struct fuse_file_info *fi)
{
	if (hist_target(parent, name))
		reply_rofs(req);
	else
		live->create(req, parent, name, mode, fi);
}

static void r_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			off_t offset, off_t length, struct fuse_file_info *fi)
{
	if (is_hist(ino))
		reply_rofs(req);
	else
		live->fallocate(req, ino, mode, offset, length, fi);
}

static void r_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
			      off_t off_in, struct fuse_file_info *fi_in,
			      fuse_ino_t ino_out, off_t off_out,
			      struct fuse_file_info *fi_out, size_t len,
			      int flags)
{
	/* EOPNOTSUPP: the kernel copies through read and write instead
	 * (ENOSYS would turn the op off for the whole mount). */
	if (is_hist(ino_out))
		reply_rofs(req);
	else if (is_hist(ino_in))
		fuse_reply_err(req, EOPNOTSUPP);
	else
		live->copy_file_range(req, ino_in, off_in, fi_in, ino_out,
				      off_out, fi_out, len, flags);
}

static void r_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		    struct fuse_file_info *fi)
{
	if (is_hist(ino))
		h_lseek(req, ino, off, whence, fi);
	else
		live->lseek(req, ino, off, whence, fi);
}

void fs_hist_ops(const struct fuse_lowlevel_ops *live_ops,
		 struct fuse_lowlevel_ops *out)
{
	live = live_ops;
	*out = *live_ops;	/* init, forget, statfs... work on any node */
#define ROUTE(op)                                                             \
	do {                                                                  \
		if (live_ops->op)                                             \
			out->op = r_##op;                                     \
	} while (0)
	ROUTE(lookup);
	ROUTE(getattr);
	ROUTE(setattr);
	ROUTE(readlink);
	ROUTE(mknod);
	ROUTE(mkdir);
	ROUTE(unlink);
	ROUTE(rmdir);
	ROUTE(symlink);
	ROUTE(rename);
	ROUTE(link);
	ROUTE(open);
	ROUTE(read);
	ROUTE(write);
	ROUTE(write_buf);
	ROUTE(flush);
	ROUTE(release);
	ROUTE(fsync);
	ROUTE(opendir);
	ROUTE(readdir);
	ROUTE(readdirplus);
	ROUTE(releasedir);
	ROUTE(setxattr);
	ROUTE(getxattr);
	ROUTE(listxattr);
	ROUTE(removexattr);
	ROUTE(create);
	ROUTE(fallocate);
	ROUTE(copy_file_range);
	ROUTE(lseek);
#undef ROUTE
}
