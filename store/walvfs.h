/*
 * walvfs.h - a SQLite VFS that writes each commit to the WAL file with one
 * write(2) instead of two per page.
 *
 * The VFS wraps SQLite's default VFS and is registered beside it, not in
 * its place: a connection uses it by passing WALVFS_NAME as the zVfs
 * argument of sqlite3_open_v2().  Connections opened with it and without
 * it can share one database.  walvfs.c explains the design and why it is
 * crash-safe.
 */
#ifndef REPLICAFS_WALVFS_H
#define REPLICAFS_WALVFS_H

/* The name under which walvfs_register() registers the VFS. */
#define WALVFS_NAME "replicafs-wal"

/*
 * Register the VFS (once per process; later calls return the first
 * call's result).  Returns 0 or a negative errno: -ENOSYS when SQLite
 * has no default VFS to wrap, -ENOMEM, or -EIO when SQLite refuses it.
 */
int walvfs_register(void);

/*
 * Counters since the process started, over every connection, for tests
 * and benchmarks: the writes SQLite asked of WAL files, and the writes
 * that went to them (a flush of the buffer, or a write too large to
 * buffer).  Safe to call from any thread.
 */
unsigned long long walvfs_writes(void);
unsigned long long walvfs_flushes(void);

#endif
