/*
 * log.c - see log.h.  A line is formatted into one buffer and written with
 * one write(2), so lines of concurrent threads do not interleave.
 */
#include "store/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int store_log_level = LOG_INFO;
static int use_syslog;

void store_log_use_syslog(int on)
{
	use_syslog = on;
	if (on)
		openlog("replicafs", LOG_PID, LOG_DAEMON);
}

/* Bytes of @s from @i back to the start of the UTF-8 character there. */
static size_t char_start(const char *s, size_t i)
{
	while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
		i--;
	return i;
}

void msg_fit(char *dst, size_t size, const char *src)
{
	static const char cut[] = " ... ";
	size_t len = strlen(src), head, tail, start;

	if (!size)
		return;
	if (len < size || size < 64) {
		snprintf(dst, size, "%s", src);
		return;
	}
	head = char_start(src, (size - sizeof(cut)) / 3);
	tail = size - sizeof(cut) - head;	/* bytes of the end kept */
	start = len - tail;
	while (((unsigned char)src[start] & 0xc0) == 0x80)
		start++;			/* a whole first character */
	tail = len - start;
	memcpy(dst, src, head);
	memcpy(dst + head, cut, sizeof(cut) - 1);
	memcpy(dst + head + sizeof(cut) - 1, src + len - tail, tail);
	dst[head + sizeof(cut) - 1 + tail] = '\0';
}

size_t msg_char_len(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x20 || s[0] == 0x7f)
		return 0;		/* C0 and DEL; NUL too */
	if (s[0] < 0x80)
		return 1;
	if (s[0] == 0xc2 && s[1] < 0xa0)
		return 0;		/* C1, U+0080..U+009F (or not UTF-8) */
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* Unicode's table 3-7: no overlong form, no surrogate, nothing
	 * above U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	for (i = 1; i < n; i++, lo = 0x80, hi = 0xbf)
		if (s[i] < lo || s[i] > hi)
			return 0;	/* a NUL stops it here too */
	return n;
}

/*
 * @s into @d (NULL: only counted) with each control character (a
 * newline, a tab, ESC, U+009B CSI...) and each byte that is not part of
 * valid UTF-8 written as \xNN: a key may hold any byte but NUL and '/',
 * and one with a newline, logged raw, made a line of its own that read
 * like the daemon's (any user of an allow_other mount can name a file),
 * and a terminal acts on C1 controls as on ESC sequences.  Returns the
 * bytes written, without the NUL that ends them.
 */
static size_t escape_into(char *d, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0, k;

	for (; *s; s += k) {
		k = msg_char_len(s);
		if (k) {
			if (d)
				memcpy(d + n, s, k);
			n += k;
			continue;
		}
		k = 1;
		if (d) {
			d[n] = '\\';
			d[n + 1] = 'x';
			d[n + 2] = hex[(unsigned char)*s >> 4];
			d[n + 3] = hex[*s & 0xf];
		}
		n += 4;
	}
	if (d)
		d[n] = '\0';
	return n;
}

void msg_escape(char *dst, size_t size, const char *src)
{
	char *safe;

	if (!size)
		return;
	if (escape_into(NULL, src) < size) {
		escape_into(dst, src);
		return;
	}
	safe = malloc(escape_into(NULL, src) + 1);
	if (safe)
		escape_into(safe, src);
	msg_fit(dst, size, safe ? safe : "(out of memory for a message)");
	free(safe);
}

void msg_vformat(char *dst, size_t size, const char *fmt, va_list ap)
{
	char *full = NULL;

	if (vasprintf(&full, fmt, ap) < 0) {
		if (size)
			snprintf(dst, size, "(out of memory for a message)");
		return;
	}
	msg_escape(dst, size, full);
	free(full);
}

int log_limit_fail(struct log_limit *l, int64_t now_ms, int64_t every_ms,
		   uint64_t *left_out)
{
	int_fast64_t last = atomic_load(&l->last_ms);

	if (now_ms <= 0)
		now_ms = 1;	/* 0 means none */
	if ((last == 0 || now_ms - last >= every_ms) &&
	    atomic_compare_exchange_strong(&l->last_ms, &last, now_ms)) {
		*left_out = atomic_exchange(&l->left_out, 0);
		return 1;
	}
	atomic_fetch_add(&l->left_out, 1);
	return 0;
}

int log_limit_ok(struct log_limit *l, uint64_t *left_out)
{
	if (!atomic_load(&l->last_ms) || !atomic_exchange(&l->last_ms, 0))
		return 0;
	*left_out = atomic_exchange(&l->left_out, 0);
	return 1;
}

void store_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error", "warning", "notice", "info",
		"debug",
	};
	char line[1024];
	va_list ap;
	int n;

	if (level > store_log_level)
		return;
	va_start(ap, fmt);
	if (use_syslog) {
		msg_vformat(line, sizeof(line), fmt, ap);
		va_end(ap);
		syslog(level, "%s", line);
		return;
	}
	n = snprintf(line, sizeof(line), "replicafs: %s: ",
		     names[level & 7]);
	msg_vformat(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n += strlen(line + n);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void deadline_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}
