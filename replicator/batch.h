/*
 * batch.h - batch replication: manifests and completion reports.
 *
 * A job lives in the store (store_job_*() in store/store.h) and is
 * delivered by the engine; this part reads the manifests users give (CSV
 * as S3 Batch Operations takes them) and writes the completion reports.
 */
#ifndef REPLICAFS_BATCH_H
#define REPLICAFS_BATCH_H

#include "store/store.h"

#include <stddef.h>

/*
 * Read the CSV manifest at @path: one `bucket,key,version-id` row per
 * line (the key URL-encoded, as S3 Batch Operations takes it; fields may
 * be quoted).  A row that cannot be read is kept with its ->error set
 * ("line 7: ..."), so the job reports it and goes on with the rest.  On
 * success *@rows is an array of *@n rows whose strings live in *@buf; the
 * caller frees both with free().  -ENOENT and the like when the file
 * cannot be read.
 */
int repl_manifest_read(const char *path, struct store_job_row **rows,
		       size_t *n, char **buf);

/*
 * Write the completion report of job @id to @path: a CSV with a header
 * and one row per item (bucket, key, version ID, destination, outcome,
 * error), written to a temporary name and renamed into place.  The
 * outcome is "succeeded", "failed", "skipped", "cancelled" or, for an
 * item still under way, "pending".
 */
int repl_batch_report(struct store *st, int64_t id, const char *path);

#endif
