/*
 * mount.c - `replicafs mount`: set up a FUSE session over a store and run
 * it until unmounted.
 *
 * The store is opened once before mounting, so that a bad store directory
 * is reported on the terminal with a non-zero exit instead of in a log,
 * and again after fuse_daemonize(), because SQLite connections must not
 * cross a fork().  Without -f the command returns once the mount is ready.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/log.h"

int fs_mount(const struct fs_opts *opts)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg = NULL;
	struct fuse_lowlevel_ops ops;
	struct store *st = NULL;
	struct timespec ts;
	char o[256];
	struct fs *fs;
	int ret;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->opts = *opts;
	fs->uid = getuid();
	fs->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &ts);
	fs->start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_rwlock_init(&fs->ns_lock, NULL);

	ret = store_open(opts->store_dir, STORE_CREATE, &st);
	if (ret) {
		fprintf(stderr, "replicafs: cannot open store %s: %s\n",
			opts->store_dir, strerror(-ret));
		goto out;
	}
	store_close(st);
	st = NULL;
	ret = fs_nodes_init(fs);
	if (ret)
		goto out;

	snprintf(o, sizeof(o),
		 "fsname=replicafs,subtype=replicafs,default_permissions%s",
		 opts->allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, "replicafs") ||
	    fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, o) ||
	    (opts->debug && fuse_opt_add_arg(&args, "-d"))) {
		ret = -ENOMEM;
		goto out;
	}
	fs_hist_ops(&fs_ops, &ops);
	se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	if (!se) {
		ret = -EINVAL;
		goto out;
	}
	fs->se = se;
	if (fuse_set_signal_handlers(se)) {
		ret = -EIO;
		goto out_session;
	}
	if (fuse_session_mount(se, opts->mountpoint)) {
		fprintf(stderr, "replicafs: cannot mount on %s\n",
			opts->mountpoint);
		ret = -EIO;
		goto out_signals;
	}
	if (!opts->foreground)
		store_log_use_syslog(1);
	if (fuse_daemonize(opts->foreground)) {
		ret = -EIO;
		goto out_unmount;
	}
	ret = store_open(opts->store_dir, 0, &fs->st);
	if (ret) {
		log_err("cannot open store %s: %s", opts->store_dir,
			strerror(-ret));
		goto out_unmount;
	}
	log_info("mounted %s on %s", opts->store_dir, opts->mountpoint);
	if (!opts->repl_off) {
		ret = repl_engine_start(fs->st, &opts->repl, &fs->repl);
		if (ret) {
			log_err("cannot start replication: %s",
				strerror(-ret));
			goto out_unmount;
		}
	}

	cfg = fuse_loop_cfg_create();
	if (!cfg) {
		ret = -ENOMEM;
		goto out_unmount;
	}
	fuse_loop_cfg_set_max_threads(cfg, opts->threads);
	fuse_loop_cfg_set_idle_threads(cfg, opts->threads / 2 + 1);
	ret = fuse_session_loop_mt(se, cfg) ? -EIO : 0;
	fuse_loop_cfg_destroy(cfg);
	log_info("unmounted %s", opts->mountpoint);

out_unmount:
	/* Deliveries under way finish; the rest stay queued in the store. */
	repl_engine_stop(fs->repl);
	fs->repl = NULL;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	fs_nodes_release(fs);	/* staging files go back to the store */
	if (fs->st)
		store_close(fs->st);
	pthread_rwlock_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
	return ret;
}
