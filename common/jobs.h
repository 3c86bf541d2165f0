/*
 * jobs: the unit of work the snapshot command and the scheduler share:
 * snapshot one gateway with its hooks around it and its result recorded in
 * the state directory (status-<gateway>), and the hooks themselves.
 *
 * Hooks (hook-pre-snapshot, hook-post-snapshot, hook-post-restore,
 * hook-failure; a gateway's own setting overrides the global one) run on
 * the backup host under /bin/sh with MSGW_GATEWAY, MSGW_SNAPSHOT and
 * MSGW_RESULT in the environment and hook-timeout seconds to finish.  A
 * failing pre-snapshot hook skips that gateway's snapshot.
 */
#ifndef MSGW_JOBS_H
#define MSGW_JOBS_H

#include "config.h"
#include "repo.h"
#include "snapshot.h"

#include <stdbool.h>

enum hook_kind { HOOK_PRE_SNAPSHOT, HOOK_POST_SNAPSHOT, HOOK_POST_RESTORE, HOOK_FAILURE };

/* Run a gateway's hook of the given kind, if one is configured: 0 when none
 * or it exited 0, else MSGW_ERR naming the hook and its status. */
int hook_run(const struct config *cfg, const struct config_gateway *gw, enum hook_kind kind,
	     const char *snapshot, const char *result);

struct job_result {
	struct snapshot_result snap;
	bool skipped;	    /* the pre-snapshot hook failed */
	const char *result; /* "written", "unchanged", "skipped", "failed" */
};

/*
 * Snapshot one gateway: pre-hook, open the location, snapshot_take (with
 * the gateway's stat cache from the state directory; opts->statcache is
 * set here), record the attempt in status-<gateway>
 * (last-attempt, last-result, last-error, last-snapshot, last-snapshot-time, failures-total), then
 * the post-snapshot hook or, on failure, the failure hook.  The caller holds the repository lock.
 * Returns the snapshot's code (the message is kept).
 */
int job_snapshot(struct job_result *out, struct repo *r, const struct config *cfg,
		 const struct config_gateway *gw, const struct snapshot_opts *opts);

/* The gateway's stat cache file (state-dir/statcache-<gateway>), creating
 * the state directory (0700) when missing; NULL with a warning when it
 * cannot be created (the snapshot then simply reads every file). */
char *job_statcache_path(const struct config *cfg, const char *gateway);

/* Record a drill's outcome for a gateway (status-<gateway>). */
void job_record_drill(const struct config *cfg, const char *gateway, bool ok, const char *error);

#endif
