/*
 * test_acl.c - the POSIX ACL arithmetic of the mount (fs/acl.c), on
 * xattr values built here, with the results the kernel's posix_acl.c
 * gives for the same input:
 *
 *   parse_checks   what posix_acl_valid() refuses is refused: order,
 *                  duplicates, a named entry without a mask, bad bits,
 *                  sizes and format versions
 *   roundtrip      an ACL written out reads back the same, byte for byte
 *   equiv_mode     the mode an access ACL gives, with and without a mask,
 *                  and whether the mode alone says it all
 *   create_masq    a default ACL made into a new file's ACL under mode
 *                  0666 and 0777 (umask is not used)
 *   chmod          chmod rewrites the owner, mask (or group) and other
 *                  entries and leaves named ones
 */
#include "fs/fs_i.h"

#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define U_OBJ 0x01
#define U 0x02
#define G_OBJ 0x04
#define G 0x08
#define M 0x10
#define O 0x20
#define NOID 0xffffffffu

struct ent {
	uint16_t tag, perm;
	uint32_t id;
};

/* The xattr value of entries @e (@n of them) into @buf; its size. */
static size_t value_of(const struct ent *e, size_t n, unsigned char *buf,
		       uint32_t version)
{
	uint32_t v = htole32(version);
	size_t i;

	memcpy(buf, &v, 4);
	for (i = 0; i < n; i++) {
		uint16_t tag = htole16(e[i].tag), perm = htole16(e[i].perm);
		uint32_t id = htole32(e[i].id);

		memcpy(buf + 4 + 8 * i, &tag, 2);
		memcpy(buf + 6 + 8 * i, &perm, 2);
		memcpy(buf + 8 + 8 * i, &id, 4);
	}
	return 4 + 8 * n;
}

static int parse(const struct ent *e, size_t n, struct fs_acl *acl)
{
	unsigned char buf[4 + 8 * 16];

	return fs_acl_parse(buf, value_of(e, n, buf, 2), acl);
}

static struct fs_acl *acl_new(void)
{
	struct fs_acl *a = calloc(1, sizeof(*a));

	cr_assert_not_null(a);
	return a;
}

Test(acl, parse_checks)
{
	struct fs_acl *a = acl_new();
	unsigned char buf[64];
	const struct ent minimal[] = {
		{ U_OBJ, 6, NOID }, { G_OBJ, 4, NOID }, { O, 4, NOID } };
	const struct ent named[] = { { U_OBJ, 7, NOID }, { U, 6, 1000 },
				     { U, 4, 1001 },	 { G_OBJ, 5, NOID },
				     { G, 7, 100 },	 { M, 7, NOID },
				     { O, 0, NOID } };
	const struct ent no_mask[] = { { U_OBJ, 7, NOID },
				       { U, 6, 1000 },
				       { G_OBJ, 5, NOID },
				       { O, 0, NOID } };
	const struct ent order[] = {
		{ G_OBJ, 4, NOID }, { U_OBJ, 6, NOID }, { O, 4, NOID } };
	const struct ent dup[] = { { U_OBJ, 7, NOID }, { U, 6, 1000 },
				   { U, 4, 1000 },     { G_OBJ, 5, NOID },
				   { M, 7, NOID },     { O, 0, NOID } };
	const struct ent bits[] = {
		{ U_OBJ, 8, NOID }, { G_OBJ, 4, NOID }, { O, 4, NOID } };
	const struct ent no_other[] = { { U_OBJ, 6, NOID },
					{ G_OBJ, 4, NOID } };
	const struct ent bad_tag[] = { { U_OBJ, 6, NOID },
				       { G_OBJ, 4, NOID },
				       { 0x40, 4, NOID } };
	const struct ent named_noid[] = { { U_OBJ, 7, NOID },
					  { U, 6, NOID },
					  { G_OBJ, 5, NOID },
					  { M, 7, NOID },
					  { O, 0, NOID } };

	cr_expect_eq(parse(minimal, 3, a), 0);
	cr_expect_eq(a->n, 3);
	cr_expect_eq(parse(named, 7, a), 0);
	cr_expect_eq(a->e[1].id, 1000);
	cr_expect_eq(parse(no_mask, 4, a), -EINVAL);
	cr_expect_eq(parse(order, 3, a), -EINVAL);
	cr_expect_eq(parse(dup, 6, a), -EINVAL);
	cr_expect_eq(parse(bits, 3, a), -EINVAL);
	cr_expect_eq(parse(no_other, 2, a), -EINVAL);
	cr_expect_eq(parse(bad_tag, 3, a), -EINVAL);
	cr_expect_eq(parse(named_noid, 5, a), -EINVAL);
	cr_expect_eq(fs_acl_parse(buf, value_of(minimal, 3, buf, 1), a),
		     -EOPNOTSUPP);
	cr_expect_eq(fs_acl_parse(buf, value_of(minimal, 3, buf, 2) - 1, a),
		     -EINVAL);
	cr_expect_eq(fs_acl_parse(buf, 3, a), -EINVAL);
	free(a);
}

Test(acl, roundtrip)
{
	const struct ent named[] = { { U_OBJ, 7, NOID }, { U, 6, 1000 },
				     { G_OBJ, 5, NOID }, { G, 7, 100 },
				     { M, 7, NOID },	 { O, 1, NOID } };
	unsigned char in[64], out[64];
	struct fs_acl *a = acl_new();
	size_t len = value_of(named, 6, in, 2);

	cr_assert_eq(fs_acl_parse(in, len, a), 0);
	cr_assert_eq(fs_acl_size(a), len);
	fs_acl_write(a, out);
	cr_expect_eq(memcmp(in, out, len), 0);
	free(a);
}

Test(acl, equiv_mode)
{
	const struct ent minimal[] = {
		{ U_OBJ, 6, NOID }, { G_OBJ, 4, NOID }, { O, 0, NOID } };
	const struct ent masked[] = { { U_OBJ, 7, NOID }, { U, 7, 1000 },
				      { G_OBJ, 7, NOID }, { M, 5, NOID },
				      { O, 1, NOID } };
	struct fs_acl *a = acl_new();
	uint32_t mode = S_IFREG | S_ISGID | 0777;

	cr_assert_eq(parse(minimal, 3, a), 0);
	cr_expect_eq(fs_acl_equiv_mode(a, &mode), 0);
	cr_expect_eq(mode, S_IFREG | S_ISGID | 0640);
	/* With a mask, the group bits are the mask's. */
	cr_assert_eq(parse(masked, 5, a), 0);
	cr_expect_eq(fs_acl_equiv_mode(a, &mode), 1);
	cr_expect_eq(mode, S_IFREG | S_ISGID | 0751);
	free(a);
}

Test(acl, create_masq)
{
	/* setfacl -d -m u:1000:rwx,g:100:rx on a folder of mode 0755 */
	const struct ent dflt[] = { { U_OBJ, 7, NOID }, { U, 7, 1000 },
				    { G_OBJ, 5, NOID }, { G, 5, 100 },
				    { M, 7, NOID },	{ O, 5, NOID } };
	const struct ent plain[] = {
		{ U_OBJ, 7, NOID }, { G_OBJ, 5, NOID }, { O, 0, NOID } };
	struct fs_acl *a = acl_new();
	uint32_t mode = S_IFREG | 0666;

	/* A file (open with 0666): x goes from the owner, mask and other. */
	cr_assert_eq(parse(dflt, 6, a), 0);
	cr_expect_eq(fs_acl_create_masq(a, &mode), 1);
	cr_expect_eq(mode, S_IFREG | 0664);
	cr_expect_eq(a->e[0].perm, 6);	/* user:: rw- */
	cr_expect_eq(a->e[1].perm, 7);	/* named entries are kept */
	cr_expect_eq(a->e[4].perm, 6);	/* mask:: rw- */
	cr_expect_eq(a->e[5].perm, 4);	/* other:: r-- */
	/* A folder (mkdir with 0777) takes it whole. */
	mode = S_IFDIR | 0777;
	cr_assert_eq(parse(dflt, 6, a), 0);
	cr_expect_eq(fs_acl_create_masq(a, &mode), 1);
	cr_expect_eq(mode, S_IFDIR | 0775);
	/* Without named entries and mask, the result is only a mode. */
	mode = S_IFREG | 0644;
	cr_assert_eq(parse(plain, 3, a), 0);
	cr_expect_eq(fs_acl_create_masq(a, &mode), 0);
	cr_expect_eq(mode, S_IFREG | 0640);
	free(a);
}

Test(acl, chmod)
{
	const struct ent masked[] = { { U_OBJ, 7, NOID }, { U, 6, 1000 },
				      { G_OBJ, 5, NOID }, { M, 7, NOID },
				      { O, 5, NOID } };
	const struct ent plain[] = {
		{ U_OBJ, 7, NOID }, { G_OBJ, 5, NOID }, { O, 5, NOID } };
	struct fs_acl *a = acl_new();

	cr_assert_eq(parse(masked, 5, a), 0);
	fs_acl_chmod(a, 0640);
	cr_expect_eq(a->e[0].perm, 6);
	cr_expect_eq(a->e[1].perm, 6);	/* user:1000 stays */
	cr_expect_eq(a->e[2].perm, 5);	/* group:: stays under a mask */
	cr_expect_eq(a->e[3].perm, 4);	/* mask:: takes the group bits */
	cr_expect_eq(a->e[4].perm, 0);
	cr_assert_eq(parse(plain, 3, a), 0);
	fs_acl_chmod(a, 0750);
	cr_expect_eq(a->e[1].perm, 5);	/* no mask: group:: takes them */
	cr_expect_eq(a->e[2].perm, 0);
	free(a);
}

Test(acl, permits)
{
	/* Owner 10, group 20; user 1000 named, group 30 named; a mask. */
	const struct ent e[] = { { U_OBJ, 6, NOID }, { U, 6, 1000 },
				 { G_OBJ, 4, NOID }, { G, 4, 30 },
				 { M, 4, NOID }, { O, 0, NOID } };
	const uint32_t in20[] = { 20 }, in30[] = { 99, 30 }, none[] = { 99 };
	struct fs_acl *a = acl_new();

	cr_assert_eq(parse(e, 6, a), 0);
	cr_expect(fs_acl_permits(a, 10, 20, 10, none, 1, 6), "the owner");
	cr_expect(fs_acl_permits(a, 10, 20, 1000, none, 1, 4),
		  "a named user, read");
	cr_expect(!fs_acl_permits(a, 10, 20, 1000, none, 1, 2),
		  "a named user's write, masked out");
	cr_expect(fs_acl_permits(a, 10, 20, 7, in20, 1, 4), "the group");
	cr_expect(fs_acl_permits(a, 10, 20, 7, in30, 2, 4), "a named group");
	cr_expect(!fs_acl_permits(a, 10, 20, 7, none, 1, 4), "others");
	free(a);
}

/* The mode's permission bits as an ACL: the same answers as the bits. */
Test(acl, from_mode)
{
	const uint32_t in20[] = { 20 }, none[] = { 99 };
	struct fs_acl *a = acl_new();

	fs_acl_from_mode(a, 0640);
	cr_assert_eq(a->n, 3);
	cr_expect(fs_acl_permits(a, 10, 20, 10, none, 1, 6), "the owner");
	cr_expect(fs_acl_permits(a, 10, 20, 7, in20, 1, 4), "the group");
	cr_expect(!fs_acl_permits(a, 10, 20, 7, in20, 1, 2),
		  "the group's write");
	cr_expect(!fs_acl_permits(a, 10, 20, 7, none, 1, 4), "others");
	free(a);
}
