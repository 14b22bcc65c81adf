/*
 * log.c - see log.h.  A line is formatted into one buffer and written with
 * one write(2), so lines of concurrent threads do not interleave.
 */
#include "store/log.h"

#include <stdarg.h>
#include <stdio.h>
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
		vsyslog(level, fmt, ap);
		va_end(ap);
		return;
	}
	n = snprintf(line, sizeof(line), "replicafs: %s: ",
		     names[level & 7]);
	n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
