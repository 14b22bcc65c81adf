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

#endif
