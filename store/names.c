/*
 * names.c - what may be a bucket name or a key, and version IDs.
 *
 * Bucket names follow S3's rules for general purpose buckets, so that a
 * bucket can be replicated to S3 under its own name.  Keys are byte
 * strings of 1..STORE_KEY_MAX bytes without NUL; they are compared
 * bytewise, as S3 does.
 *
 * A version ID is 26 characters: 16 bytes (8 of big-endian nanosecond
 * time, then 8 random) in base32 with the digits and lowercase letters
 * without i, l, o and u, in ASCII order, so that IDs sort by the time they
 * were made and never look like "null".
 */
#include "store/store.h"
#include "store/store_i.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static int is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* Four groups of 1-3 digits separated by dots: "192.168.5.4". */
static int looks_like_ipv4(const char *s)
{
	int groups = 0, digits = 0;

	for (;; s++) {
		if (*s >= '0' && *s <= '9') {
			if (++digits > 3)
				return 0;
		} else if (*s == '.' || !*s) {
			if (!digits)
				return 0;
			groups++;
			digits = 0;
			if (!*s)
				break;
		} else {
			return 0;
		}
	}
	return groups == 4;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && !memcmp(s + len - n, suffix, n);
}

int store_bucket_name_check(const char *name, const char **why)
{
	const char *msg = NULL;
	size_t len, i;

	len = name ? strnlen(name, 64) : 0;
	if (len < 3)
		msg = "a bucket name has at least 3 characters";
	else if (len > 63)
		msg = "a bucket name has at most 63 characters";
	if (msg)
		goto out;
	for (i = 0; i < len; i++) {
		if (!is_lower_alnum(name[i]) && name[i] != '.' &&
		    name[i] != '-') {
			msg = "a bucket name has only lowercase letters, "
			      "digits, '.' and '-'";
			goto out;
		}
	}
	if (!is_lower_alnum(name[0]) || !is_lower_alnum(name[len - 1]))
		msg = "a bucket name starts and ends with a letter or digit";
	else if (strstr(name, ".."))
		msg = "a bucket name has no two adjacent periods";
	else if (looks_like_ipv4(name))
		msg = "a bucket name is not shaped like an IP address";
	else if (!strncmp(name, "xn--", 4) || !strncmp(name, "sthree-", 7) ||
		 !strncmp(name, "amzn-s3-demo-", 13))
		msg = "a bucket name does not start with \"xn--\", "
		      "\"sthree-\" or \"amzn-s3-demo-\"";
	else if (ends_with(name, len, "-s3alias") ||
		 ends_with(name, len, "--ol-s3") ||
		 ends_with(name, len, ".mrap") ||
		 ends_with(name, len, "--x-s3") ||
		 ends_with(name, len, "--table-s3"))
		msg = "a bucket name does not end with \"-s3alias\", "
		      "\"--ol-s3\", \".mrap\", \"--x-s3\" or "
		      "\"--table-s3\"";
out:
	if (msg && why)
		*why = msg;
	return msg ? -EINVAL : 0;
}

int store_key_check(const char *key)
{
	size_t len;

	if (!key)
		return -EINVAL;
	len = strnlen(key, STORE_KEY_MAX + 1);
	if (len == 0)
		return -EINVAL;
	if (len > STORE_KEY_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int sha_valid(const char *hex)
{
	int i;

	for (i = 0; i < 64; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		      (hex[i] >= 'a' && hex[i] <= 'f')))
			return 0;
	return hex[64] == '\0';
}

int vid_new(char *out)
{
	static const char digits[] = "0123456789abcdefghjkmnpqrstvwxyz";
	unsigned char b[16];
	uint64_t t = (uint64_t)now_ns();
	ssize_t n;
	int i, bit, j, v;

	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(t >> (56 - 8 * i));
	do
		n = getrandom(b + 8, 8, 0);
	while (n < 0 && errno == EINTR);
	if (n != 8)
		return n < 0 ? -errno : -EIO;
	/* 128 bits as 26 digits of 5 bits: 130 bits, the first 2 zero. */
	for (i = 0; i < 26; i++) {
		v = 0;
		for (j = 0; j < 5; j++) {
			bit = i * 5 + j - 2;
			v <<= 1;
			if (bit >= 0 && (b[bit / 8] >> (7 - bit % 8)) & 1)
				v |= 1;
		}
		out[i] = digits[v];
	}
	out[26] = '\0';
	return 0;
}
