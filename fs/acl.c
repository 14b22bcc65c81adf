/*
 * acl.c - POSIX ACLs, as the kernel hands them to a FUSE file system that
 * asked for FUSE_POSIX_ACL.
 *
 * The kernel enforces ACLs (it caches each inode's and checks them with
 * default_permissions) but leaves the rest to the daemon, as it leaves it
 * to ext4's own code: storing them (here, as xattrs of the version, named
 * system.posix_acl_access and system.posix_acl_default, so they go with a
 * rename, a new version and a replica as user.* attributes do), keeping
 * the mode's permission bits in step with the access ACL, and giving a new
 * file or directory its ACLs from its folder's default ACL.  This file is
 * the arithmetic of that, after the kernel's fs/posix_acl.c:
 *
 *   fs_acl_parse()        the xattr's bytes, checked as posix_acl_valid()
 *                         checks them
 *   fs_acl_equiv_mode()   the permission bits an ACL gives, and whether
 *                         the mode alone says as much (then no ACL is kept)
 *   fs_acl_create_masq()  a default ACL made into a new node's access ACL,
 *                         masked by the mode the creator asked for
 *   fs_acl_chmod()        an access ACL after chmod
 *
 * The format (include/uapi/linux/posix_acl_xattr.h): a little-endian
 * 32-bit version (2), then 8-byte entries of tag (16 bits), permissions
 * (16 bits) and a user or group ID (32 bits; -1 for the entries that name
 * none), sorted by tag and then by ID.
 */
#include "fs/fs_i.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define ACL_XATTR_VERSION 2
#define ACL_UNDEFINED_ID ((uint32_t)-1)

/* Tags, as in the kernel's posix_acl.h; their order is the sort order. */
#define TAG_USER_OBJ	0x01
#define TAG_USER	0x02
#define TAG_GROUP_OBJ	0x04
#define TAG_GROUP	0x08
#define TAG_MASK	0x10
#define TAG_OTHER	0x20

#define PERM_BITS 07

int fs_acl_parse(const void *value, size_t size, struct fs_acl *acl)
{
	const unsigned char *p = value;
	uint32_t version, last_id = 0;
	int state = 0, seen_named = 0, seen_mask = 0, last_tag = 0;
	size_t i;

	if (size < 4 || (size - 4) % 8 || (size - 4) / 8 > FS_ACL_MAX)
		return -EINVAL;
	memcpy(&version, p, 4);
	if (le32toh(version) != ACL_XATTR_VERSION)
		return -EOPNOTSUPP;
	acl->n = (size - 4) / 8;
	for (i = 0; i < acl->n; i++) {
		struct fs_acl_entry *e = &acl->e[i];
		uint16_t tag, perm;
		uint32_t id;

		memcpy(&tag, p + 4 + 8 * i, 2);
		memcpy(&perm, p + 6 + 8 * i, 2);
		memcpy(&id, p + 8 + 8 * i, 4);
		e->tag = le16toh(tag);
		e->perm = le16toh(perm);
		e->id = le32toh(id);
		if (e->perm & ~PERM_BITS)
			return -EINVAL;
		/* One USER_OBJ, named users by rising ID, one GROUP_OBJ,
		 * named groups by rising ID, at most one MASK (required
		 * with a named entry), one OTHER: state is the last kind
		 * of entry seen, in that order. */
		switch (e->tag) {
		case TAG_USER_OBJ:
			if (state != 0)
				return -EINVAL;
			state = 1;
			break;
		case TAG_USER:
		case TAG_GROUP:
			if (state != (e->tag == TAG_USER ? 1 : 2) ||
			    e->id == ACL_UNDEFINED_ID ||
			    (last_tag == e->tag && e->id <= last_id))
				return -EINVAL;
			last_id = e->id;
			seen_named = 1;
			break;
		case TAG_GROUP_OBJ:
			if (state != 1)
				return -EINVAL;
			state = 2;
			break;
		case TAG_MASK:
			if (state != 2)
				return -EINVAL;
			state = 3;
			seen_mask = 1;
			break;
		case TAG_OTHER:
			if (state != 2 && state != 3)
				return -EINVAL;
			state = 4;
			break;
		default:
			return -EINVAL;
		}
		if (e->tag != TAG_USER && e->tag != TAG_GROUP)
			e->id = ACL_UNDEFINED_ID;
		last_tag = e->tag;
	}
	if (state != 4 || (seen_named && !seen_mask))
		return -EINVAL;
	return 0;
}

size_t fs_acl_size(const struct fs_acl *acl)
{
	return 4 + 8 * acl->n;
}

void fs_acl_write(const struct fs_acl *acl, void *out)
{
	unsigned char *p = out;
	uint32_t v = htole32(ACL_XATTR_VERSION);
	size_t i;

	memcpy(p, &v, 4);
	for (i = 0; i < acl->n; i++) {
		uint16_t tag = htole16(acl->e[i].tag);
		uint16_t perm = htole16(acl->e[i].perm);
		uint32_t id = htole32(acl->e[i].id);

		memcpy(p + 4 + 8 * i, &tag, 2);
		memcpy(p + 6 + 8 * i, &perm, 2);
		memcpy(p + 8 + 8 * i, &id, 4);
	}
}

int fs_acl_equiv_mode(const struct fs_acl *acl, uint32_t *mode)
{
	const struct fs_acl_entry *mask = NULL;
	uint32_t bits = 0;
	int not_equiv = 0;
	size_t i;

	for (i = 0; i < acl->n; i++) {
		const struct fs_acl_entry *e = &acl->e[i];

		if (e->tag == TAG_USER_OBJ)
			bits |= (uint32_t)e->perm << 6;
		else if (e->tag == TAG_GROUP_OBJ)
			bits |= (uint32_t)e->perm << 3;
		else if (e->tag == TAG_OTHER)
			bits |= e->perm;
		else if (e->tag == TAG_MASK)
			mask = e;
		if (e->tag == TAG_USER || e->tag == TAG_GROUP || e->tag == TAG_MASK)
			not_equiv = 1;
	}
	/* With a mask, the group bits show the mask. */
	if (mask)
		bits = (bits & ~070u) | (uint32_t)mask->perm << 3;
	*mode = (*mode & ~0777u) | bits;
	return not_equiv;
}

int fs_acl_create_masq(struct fs_acl *acl, uint32_t *mode)
{
	struct fs_acl_entry *group = NULL, *mask = NULL;
	uint32_t m = *mode;
	int not_equiv = 0;
	size_t i;

	for (i = 0; i < acl->n; i++) {
		struct fs_acl_entry *e = &acl->e[i];

		switch (e->tag) {
		case TAG_USER_OBJ:
			e->perm &= (m >> 6) & PERM_BITS;
			m &= (uint32_t)e->perm << 6 | ~0700u;
			break;
		case TAG_USER:
		case TAG_GROUP:
			not_equiv = 1;
			break;
		case TAG_GROUP_OBJ:
			group = e;
			break;
		case TAG_OTHER:
			e->perm &= m & PERM_BITS;
			m &= e->perm | ~07u;
			break;
		case TAG_MASK:
			mask = e;
			not_equiv = 1;
			break;
		}
	}
	if (mask) {
		mask->perm &= (m >> 3) & PERM_BITS;
		m &= (uint32_t)mask->perm << 3 | ~070u;
	} else if (group) {
		group->perm &= (m >> 3) & PERM_BITS;
		m &= (uint32_t)group->perm << 3 | ~070u;
	}
	*mode = m;
	return not_equiv;
}

void fs_acl_chmod(struct fs_acl *acl, uint32_t mode)
{
	struct fs_acl_entry *group = NULL, *mask = NULL;
	size_t i;

	for (i = 0; i < acl->n; i++) {
		struct fs_acl_entry *e = &acl->e[i];

		if (e->tag == TAG_USER_OBJ)
			e->perm = (mode >> 6) & PERM_BITS;
		else if (e->tag == TAG_GROUP_OBJ)
			group = e;
		else if (e->tag == TAG_MASK)
			mask = e;
		else if (e->tag == TAG_OTHER)
			e->perm = mode & PERM_BITS;
	}
	if (mask)
		mask->perm = (mode >> 3) & PERM_BITS;
	else if (group)
		group->perm = (mode >> 3) & PERM_BITS;
}

void fs_acl_from_mode(struct fs_acl *acl, uint32_t mode)
{
	static const uint16_t tags[] = { TAG_USER_OBJ, TAG_GROUP_OBJ,
					 TAG_OTHER };
	size_t i;

	acl->n = 3;
	for (i = 0; i < 3; i++) {
		acl->e[i].tag = tags[i];
		acl->e[i].perm = (mode >> (6 - 3 * i)) & PERM_BITS;
		acl->e[i].id = ACL_UNDEFINED_ID;
	}
}

static int in_gids(uint32_t gid, const uint32_t *gids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (gids[i] == gid)
			return 1;
	return 0;
}

int fs_acl_permits(const struct fs_acl *acl, uint32_t owner, uint32_t group,
		   uint32_t uid, const uint32_t *gids, size_t ngids,
		   unsigned want)
{
	unsigned mask = PERM_BITS, other = 0;
	int found = 0, matched = 0;
	size_t i;

	for (i = 0; i < acl->n; i++) {
		if (acl->e[i].tag == TAG_MASK)
			mask = acl->e[i].perm & PERM_BITS;
		if (acl->e[i].tag == TAG_OTHER)
			other = acl->e[i].perm & PERM_BITS;
	}
	for (i = 0; i < acl->n; i++) {
		const struct fs_acl_entry *e = &acl->e[i];

		switch (e->tag) {
		case TAG_USER_OBJ:
			if (uid == owner)
				return (e->perm & want) == want;
			break;
		case TAG_USER:
			if (e->id == uid)
				return (e->perm & mask & want) == want;
			break;
		case TAG_GROUP_OBJ:
		case TAG_GROUP:
			if (in_gids(e->tag == TAG_GROUP ? e->id : group, gids,
				    ngids)) {
				matched = 1;
				if ((e->perm & mask & want) == want)
					found = 1;
			}
			break;
		default:
			break;
		}
	}
	if (matched)
		return found;
	return (other & want) == want;
}
