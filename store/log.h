/*
 * log.h - one logger for every part of replicafs.
 *
 * Levels are syslog's.  Lines go to stderr (foreground, commands, tests)
 * or to syslog (a daemonized mount).  The level is checked before the
 * arguments are evaluated, so a debug line costs nothing when debugging is
 * off.  Never pass a secret to these functions.
 */
#ifndef REPLICAFS_LOG_H
#define REPLICAFS_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

/* Lines above this level are dropped; LOG_INFO unless set. */
extern int store_log_level;

/* Send lines to syslog (1) or stderr (0, the default). */
void store_log_use_syslog(int on);

void store_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...)                                                      \
	do {                                                                  \
		if ((lvl) <= store_log_level)                                 \
			store_log((lvl), __VA_ARGS__);                        \
	} while (0)
#define log_err(...) LOG_AT(LOG_ERR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARNING, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)

/*
 * @src into @dst of @size bytes.  A message that does not fit keeps its
 * start and its end, " ... " between: what failed comes first and why it
 * failed last, and a long key in between is what gives way (a 1000-byte
 * key cut off S3's error code).
 */
void msg_fit(char *dst, size_t size, const char *src);

/*
 * Bytes of the character at @s when it may be shown as it is: 1 to 4 for
 * a character of valid UTF-8 that is not a control character; 0 for a
 * control character (C0, DEL, C1 such as U+009B CSI, which terminals act
 * on), a byte that is not valid UTF-8, or the end of the string.
 */
size_t msg_char_len(const char *s);

/* @src into @dst of @size bytes, with msg_fit()'s cut, each control
 * character and each byte that is not valid UTF-8 written as \xNN: how
 * a key, a rule's ID or a message from elsewhere is shown on one line
 * that cannot act on a terminal.  Valid UTF-8 ("café") stays as it is.
 * Nothing is cut when @size is 4 times the length of @src, plus 1. */
void msg_escape(char *dst, size_t size, const char *src);

/* vsnprintf() into @dst of @size bytes, escaped and cut as by
 * msg_escape(), so that a message is one line. */
void msg_vformat(char *dst, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/*
 * A line that could come once per attempt, thousands of times (each write
 * on a full disk): log_limit_fail() lets the first through, then one per
 * @every_ms, with the number of those left out since; log_limit_ok()
 * lets one line say that it works again.  A zeroed struct is ready, and
 * any thread may use it.  Times are the caller's monotonic milliseconds,
 * so that a test can set the clock.
 */
struct log_limit {
	atomic_int_fast64_t last_ms;	/* the last line let through; 0:
					 * none since it last worked */
	atomic_uint_fast64_t left_out;	/* failures not logged since */
};

/* A failure at @now_ms: 1 when it is to be logged, with *@left_out the
 * failures left out since the last line; else 0 (it is counted). */
int log_limit_fail(struct log_limit *l, int64_t now_ms, int64_t every_ms,
		   uint64_t *left_out);

/* A success: 1 when failures were logged since the last one, to be said
 * once, with *@left_out those left out since the last line; else 0.
 * Costs one atomic load while nothing fails. */
int log_limit_ok(struct log_limit *l, uint64_t *left_out);

struct timespec;
/* *@ts: @ms milliseconds from now by CLOCK_REALTIME, for
 * pthread_cond_timedwait() (the mount's threads and the store's). */
void deadline_ms(struct timespec *ts, long ms);

#endif
