/*
 * log.c - see log.h.  A line is formatted into one buffer and written with
 * one write(2), so lines of concurrent threads do not interleave.
 */
#include "store/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * @s with each control character (a newline, a tab, ESC...) written as
 * \xNN: a key may hold any byte but NUL and '/', and one with a newline,
 * logged raw, made a line of its own that read like the daemon's (any
 * user of an allow_other mount can name a file).  NULL when out of
 * memory; else the caller frees it.
 */
static char *escape_controls(const char *s)
{
	size_t n = 0, i;
	char *out, *d;

	for (i = 0; s[i]; i++)
		n += ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? 4 : 1;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (d = out, i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			d += snprintf(d, 5, "\\x%02x", c);
		else
			*d++ = (char)c;
	}
	*d = '\0';
	return out;
}

void msg_vformat(char *dst, size_t size, const char *fmt, va_list ap)
{
	char *full = NULL, *safe;

	if (vasprintf(&full, fmt, ap) < 0) {
		if (size)
			snprintf(dst, size, "(out of memory for a message)");
		return;
	}
	safe = escape_controls(full);
	msg_fit(dst, size, safe ? safe : "(out of memory for a message)");
	free(safe);
	free(full);
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
