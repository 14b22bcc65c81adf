/*
 * batch.c - manifests in, reports out, for batch replication jobs.
 *
 * Manifests are CSV as S3 Batch Operations takes them: `bucket,key` or
 * `bucket,key,version-id` per line, keys URL-encoded, fields optionally
 * in double quotes ("" inside for a quote).  The file is read whole into
 * one buffer that the rows point into (parsing rewrites it in place).
 * Reports are CSV with RFC 4180 quoting where a field needs it, keys
 * URL-encoded as a manifest has them, so that a report's rows can be sent
 * again as a manifest; each row's outcome is a task status as S3's
 * reports give it (succeeded, failed), or skipped or cancelled, the words
 * `batch status` counts in.
 */
#include "replicator/batch.h"
#include "replicator/s3_sigv4.h"
#include "store/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest manifest read, so that a wrong file cannot eat the memory. */
#define MANIFEST_MAX (256u << 20)

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decode %XX (and '+' as a space, as S3's manifests write it) in place;
 * -EINVAL on a bad escape or a NUL. */
static int url_decode(char *s)
{
	char *o = s;
	int h, l;

	for (; *s; s++) {
		if (*s == '%') {
			h = hexval((unsigned char)s[1]);
			l = h < 0 ? -1 : hexval((unsigned char)s[2]);
			if (l < 0 || (h == 0 && l == 0))
				return -EINVAL;
			*o++ = (char)(h * 16 + l);
			s += 2;
		} else {
			*o++ = *s == '+' ? ' ' : *s;
		}
	}
	*o = '\0';
	return 0;
}

/*
 * Split the line at *@pos (ending at @end) into up to @max fields, in
 * place; *@pos moves past the line.  Returns the number of fields, or -1
 * for a broken quote.
 */
static int csv_line(char **pos, char *end, char **f, int max)
{
	char *p = *pos, *o;
	int n = 0, quoted;

	for (;;) {
		if (n == max)
			return -1;
		quoted = *p == '"';
		f[n++] = o = quoted ? ++p : p;
		if (quoted) {
			for (;;) {
				if (p >= end)
					return -1;
				if (*p == '"' && p[1] == '"') {
					*o++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*o++ = *p++;
				}
			}
		} else {
			while (p < end && *p != ',' && *p != '\n' &&
			       *p != '\r')
				*o++ = *p++;
		}
		if (p < end && *p == ',') {
			*o = '\0';
			p++;
			continue;
		}
		if (p < end && *p == '\r')
			p++;
		if (p < end && *p != '\n')
			return -1;
		*o = '\0';
		*pos = p < end ? p + 1 : end;
		return n;
	}
}

int repl_manifest_read(const char *path, struct store_job_row **rows,
		       size_t *n, char **buf_out)
{
	struct store_job_row *r = NULL, *grow;
	char *buf = NULL, *pos, *end, *f[4], *errs = NULL;
	size_t len = 0, cap = 0, rcap = 0, k = 0, line = 0, errlen = 0;
	ssize_t got;
	int fd, nf, err = 0;

	*rows = NULL;
	*n = 0;
	*buf_out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cap = 65536;
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while ((got = read(fd, buf + len, cap - len)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = -errno;
			goto fail;
		}
		len += got;
		if (len == cap) {
			char *g;

			if (cap >= MANIFEST_MAX) {
				err = -EFBIG;
				goto fail;
			}
			g = realloc(buf, cap * 2 + 1);
			if (!g) {
				err = -ENOMEM;
				goto fail;
			}
			buf = g;
			cap *= 2;
		}
	}
	close(fd);
	fd = -1;
	buf[len] = '\0';
	/* Room for the error sentences after the text: 96 bytes a line. */
	for (pos = buf, end = buf + len; pos < end; pos++)
		errlen += *pos == '\n';
	errlen = (errlen + 1) * 96;
	{
		char *g = realloc(buf, len + 1 + errlen);

		if (!g) {
			err = -ENOMEM;
			goto fail;
		}
		buf = g;
	}
	errs = buf + len + 1;
	pos = buf;
	end = buf + len;
	while (pos < end) {
		const char *why = NULL;

		line++;
		if (*pos == '\n' || (*pos == '\r' && pos[1] == '\n')) {
			pos += *pos == '\r' ? 2 : 1;
			continue;	/* an empty line */
		}
		nf = csv_line(&pos, end, f, 4);
		if (k == rcap) {
			size_t ncap = rcap ? rcap * 2 : 256;

			grow = realloc(r, ncap * sizeof(*r));
			if (!grow) {
				err = -ENOMEM;
				goto fail;
			}
			r = grow;
			rcap = ncap;
		}
		memset(&r[k], 0, sizeof(r[k]));
		if (nf < 0) {
			why = "not a CSV row";
			/* Skip to the next line. */
			while (pos < end && *pos != '\n')
				pos++;
			if (pos < end)
				pos++;
		} else if (nf < 2 || nf > 3) {
			why = "not bucket,key[,version-id]";
		} else if (url_decode(f[1])) {
			why = "the key is not URL-encoded right";
		} else if (!*f[0] || !*f[1]) {
			why = "an empty bucket or key";
		} else {
			r[k].bucket = f[0];
			r[k].key = f[1];
			r[k].version_id = nf == 3 && *f[2] ? f[2] : NULL;
			if (!r[k].version_id)
				why = "no version ID (replication needs one)";
		}
		if (why) {
			snprintf(errs, 96, "manifest line %zu: %s", line, why);
			r[k].error = errs;
			errs += strlen(errs) + 1;
		}
		k++;
	}
	*rows = r;
	*n = k;
	*buf_out = buf;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(r);
	return err;
}

/* Write @s as one CSV field. */
static void csv_field(FILE *f, const char *s, int last)
{
	const char *p;

	if (!s)
		s = "";
	if (strpbrk(s, ",\"\r\n")) {
		fputc('"', f);
		for (p = s; *p; p++) {
			if (*p == '"')
				fputc('"', f);
			fputc(*p, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputc(last ? '\n' : ',', f);
}

/*
 * The task status of a report row for an item's @outcome in the store: the
 * words of S3 Batch Operations' completion reports (succeeded, failed) and
 * of `replicafs batch status`, which counts items as succeeded, failed,
 * skipped and cancelled.  COMPLETED and FAILED are replication statuses,
 * which the report does not show.
 */
static const char *task_status(const char *outcome)
{
	static const char *const words[][2] = {
		{ "COMPLETED", "succeeded" }, { "FAILED", "failed" },
		{ "SKIPPED", "skipped" },     { "CANCELLED", "cancelled" },
		{ "PENDING", "pending" },
	};
	size_t i;

	for (i = 0; outcome && i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(outcome, words[i][0]))
			return words[i][1];
	return outcome;
}

static int report_row(void *arg, const char *bucket, const char *key,
		      const char *vid, const char *dest, const char *outcome,
		      const char *error)
{
	FILE *f = arg;
	char *ekey;

	/* URL-encoded, as a manifest takes it (and S3's reports write it):
	 * written raw, "a+b" and "100%25" read back as "a b" and "100%",
	 * and a key that is not UTF-8 made the report unreadable as text. */
	if (s3_uri_encode(key ? key : "", 1, &ekey))
		return -ENOMEM;
	csv_field(f, bucket, 0);
	csv_field(f, ekey, 0);
	free(ekey);
	csv_field(f, vid, 0);
	csv_field(f, dest, 0);
	csv_field(f, task_status(outcome), 0);
	csv_field(f, error, 1);
	return ferror(f) ? -EIO : 0;
}

int repl_batch_report(struct store *st, int64_t id, const char *path)
{
	char tmp[4200];
	FILE *f;
	int fd, err;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		log_err("batch: job %lld: cannot write report %s: %s",
			(long long)id, path, strerror(-err));
		return err;
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	fputs("bucket,key,version_id,destination,outcome,error\n", f);
	err = store_job_items(st, id, report_row, f);
	if (!err && fflush(f))
		err = -errno;
	if (!err && fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		log_err("batch: job %lld: cannot write report %s: %s",
			(long long)id, path, strerror(-err));
	}
	return err;
}
