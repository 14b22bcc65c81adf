/*
 * vattr.c - what the store knows of one version, shown as extended
 * attributes: on a live file for its current version (ops.c), and on each
 * entry of .versions and .at for the version it stands for (history.c).
 *
 *   system.replicafs.version-id   S3's version ID ("null" for the null
 *                                 version)
 *   system.replicafs.is-latest    "true" when it is the current version
 *   system.replicafs.size         its content length, in decimal
 *   system.replicafs.sha256       hex SHA-256 of its content
 *   system.replicafs.etag         S3's ETag for a single-part upload: the
 *                                 hex MD5 of the content in double quotes,
 *                                 computed from the blob when asked (and
 *                                 kept when large: store_version_etag())
 *   system.replicafs.replication-status     its overall replication
 *                                 status, when a rule sent it anywhere
 *   system.replicafs.replication-status.URL its status at destination URL
 *
 * A delete marker has only the version ID, is-latest and size ("0").  The
 * names are read-only: ops.c keeps user.* alone and refuses the rest.  A
 * live file lists only the version ID, sha256, etag and replication
 * status (fs_vattr_list()); its is-latest and size are there to read by
 * name.
 *
 * Why system.* and not user.*: they describe one version in one store,
 * not the content, so they must not travel with a copy.  `rsync -X`
 * never copies system.* (it copies user.* and, as root, trusted.* and
 * security.*); `cp -a` and `tar --xattrs` try to, get ENOTSUP from the
 * target (ext4, or another mount) and go on in silence.  Under user.*
 * they landed on every backup made with `cp -a`, and restoring one with
 * `rsync -aX` failed on them.  getfattr shows them with `-m -`.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const names[] = {
	XA_VID, XA_LATEST, XA_SIZE, XA_SHA, XA_ETAG,
};

int fs_vattr_own(const char *name)
{
	return strncmp(name, XA_OWN, strlen(XA_OWN)) == 0;
}

int fs_vattr_is(const char *name)
{
	size_t i, rl = strlen(XA_REPL);

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return 1;
	return !strncmp(name, XA_REPL, rl) &&
	       (name[rl] == '\0' || name[rl] == '.');
}

/* ---- replication status -------------------------------------------- */

struct repl_attr {
	const char *want;	/* a destination's URL, or NULL to list */
	char *buf;		/* listing: names appended here */
	size_t len, cap;
	enum store_repl_status found;
	int hit;
};

static int repl_attr_cb(void *arg, const char *dest, const char *rule_id,
			enum store_repl_status status, const char *error)
{
	struct repl_attr *a = arg;
	size_t need = strlen(XA_REPL) + 1 + strlen(dest) + 1;

	if (a->want) {
		if (!strcmp(a->want, dest)) {
			a->found = status;
			a->hit = 1;
		}
		return 0;
	}
	if (need > 255 + 1 || a->len + need > a->cap)
		return 0;	/* longer than an xattr name can be */
	a->len += (size_t)snprintf(a->buf + a->len, a->cap - a->len,
				   "%s.%s", XA_REPL, dest) + 1;
	return 0;
}

/*
 * The replication status attributes of version @vid of @key: with @name,
 * its value into @a->found (-ENODATA when there is none); without, the
 * names appended to @a->buf.
 */
static int repl_attrs(struct fs *fs, const char *bucket, const char *key,
		      const char *vid, const char *name, struct repl_attr *a)
{
	enum store_repl_status overall;
	size_t rl = strlen(XA_REPL);
	int ret;

	if (name && name[rl] == '.')
		a->want = name + rl + 1;
	ret = store_repl_version_status(fs->st, bucket, key, vid, &overall,
					repl_attr_cb, a);
	if (ret)
		return ret == -ENOENT ? -ENODATA : ret;
	if (overall == STORE_REPL_NONE)
		return -ENODATA;
	if (!name) {
		if (a->len + rl + 1 <= a->cap) {
			memcpy(a->buf + a->len, XA_REPL, rl + 1);
			a->len += rl + 1;
		}
		return 0;
	}
	if (!a->want)
		a->found = overall;
	return a->want && !a->hit ? -ENODATA : 0;
}

/* ---- get, list ------------------------------------------------------ */

static int copy_val(char *val, const char *s)
{
	size_t len = strlen(s);

	if (len > FS_VATTR_MAX)
		return -ERANGE;
	memcpy(val, s, len);
	return (int)len;
}

int fs_may_read(fuse_req_t req, const struct store_meta *m,
		const struct fs_acl *acl)
{
	return fs_may(req, m, acl, 4);
}

int fs_may(fuse_req_t req, const struct store_meta *m,
	   const struct fs_acl *acl, unsigned want)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct fs_acl bits;
	gid_t groups[64];
	uint32_t gids[65];
	int i, n;

	if (c->uid == 0)
		return 1;
	if (!acl) {	/* the mode alone: the same rule */
		fs_acl_from_mode(&bits, m->mode);
		acl = &bits;
	}
	n = fuse_req_getgroups(req, 64, groups);
	gids[0] = c->gid;
	for (i = 0; i < n && i < 64; i++)
		gids[i + 1] = groups[i];
	return fs_acl_permits(acl, m->uid, m->gid, c->uid, gids,
			      (size_t)i + 1, want);
}

/*
 * Whether the caller of @req may read version @obj, by its mode bits as
 * the kernel reads them (owner, else group, else others; root always).
 * The kernel asks as much before it gives out a user.* value; system.* it
 * leaves to the file system, and a sha256 or ETag tells of the content.
 */
static int may_read(fuse_req_t req, const struct store_obj *obj)
{
	return fs_may_read(req, &obj->meta, NULL);
}

int fs_vattr_get(fuse_req_t req, struct fs *fs, const char *bucket,
		 const char *key, const struct store_obj *obj,
		 const char *name, size_t size, char val[FS_VATTR_MAX])
{
	int marker = obj->kind == STORE_DELETE_MARKER;
	char md5[33];
	int ret;

	if (!marker && !may_read(req, obj))
		return -EACCES;

	if (!strcmp(name, XA_VID))
		return copy_val(val, obj->version_id);
	if (!strcmp(name, XA_LATEST))
		return copy_val(val, obj->is_latest ? "true" : "false");
	if (!strcmp(name, XA_SIZE))
		return snprintf(val, FS_VATTR_MAX, "%llu",
				(unsigned long long)(marker ? 0 : obj->size));
	if (marker)
		return -ENODATA;
	if (!strcmp(name, XA_SHA))
		return obj->sha256[0] ? copy_val(val, obj->sha256) : -ENODATA;
	if (!strcmp(name, XA_ETAG)) {
		if (size == 0)
			return 2 + 32;	/* "MD5", in quotes */
		ret = store_obj_etag(fs->st, bucket, key, obj, md5);
		if (ret)
			return ret == -ENOENT ? -ENODATA : ret;
		return snprintf(val, FS_VATTR_MAX, "\"%s\"", md5);
	}
	if (!strncmp(name, XA_REPL, strlen(XA_REPL))) {
		struct repl_attr a = { 0 };

		ret = repl_attrs(fs, bucket, key, obj->version_id, name, &a);
		if (ret)
			return ret;
		return copy_val(val, store_repl_status_name(a.found));
	}
	return -ENODATA;
}

int fs_vattr_list(struct fs *fs, const char *bucket, const char *key,
		  const struct store_obj *obj, int live, char *buf,
		  size_t *len, size_t cap)
{
	int marker = obj->kind == STORE_DELETE_MARKER;
	struct repl_attr a = { .buf = buf, .len = *len, .cap = cap };
	size_t i, n;
	int ret;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (marker && i > 2)
			break;	/* a marker has the first three only */
		if (!strcmp(names[i], XA_SHA) && !obj->sha256[0])
			continue;
		if (live && (!strcmp(names[i], XA_LATEST) ||
			     !strcmp(names[i], XA_SIZE)))
			continue;
		n = strlen(names[i]) + 1;
		if (a.len + n > cap)
			break;
		memcpy(buf + a.len, names[i], n);
		a.len += n;
	}
	if (!marker) {
		ret = repl_attrs(fs, bucket, key, obj->version_id, NULL, &a);
		if (ret && ret != -ENODATA)
			return ret;
	}
	*len = a.len;
	return 0;
}
