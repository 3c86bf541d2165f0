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

#include <signal.h>
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

/*
 * A batch: the gateways of one snapshot command or one scheduler cycle,
 * read concurrently while the repository is written one gateway at a time.
 *
 * With one gateway, or parallel 1, each job_snapshot runs here, one after
 * the other, exactly as before.  Otherwise each gateway runs in a worker
 * process of its own (forked; it opens the repository anew, with the
 * configured key when it is encrypted), at most
 * parallel at once, started in the order given: the walk, the hashing and
 * the archive happen there concurrently, and the commit waits for the
 * batch's one turn to write, which this process hands to one worker at a
 * time (the caller holds the repository lock all along; the workers share
 * it).  A worker records its status-<gateway> and runs its hooks itself.
 * What a worker writes to stderr (warnings, hook output) is kept (up to
 * JOB_LOG_MAX bytes) and written to our stderr, followed by done() for that
 * gateway, strictly in the order given, whatever order they finish in (a
 * gateway given twice starts once its first run ended, and holds back the
 * ones after it until then).  A
 * worker that dies without a result (a crash) fails its gateway ("its
 * worker was killed by signal 9"), recorded in its status; a slow gateway
 * holds only its own slot.  Workers die with us (PR_SET_PDEATHSIG), their
 * hooks with them (proc.h's lifeline).
 */
#define JOB_LOG_MAX (64 * 1024)

/* One gateway's outcome, in the batch's order: rc as from job_snapshot,
 * and when non-zero err_last() holds its message. */
typedef void job_done_fn(void *arg, const struct config_gateway *gw, int rc,
			 const struct job_result *res);

struct job_batch {
	struct repo *repo;			 /* open, its lock held by the caller */
	const struct config *cfg;		 /* the configuration the gateways belong to */
	const struct config_gateway *const *gws; /* the gateways, in the order to report */
	size_t n;				 /* how many */
	size_t parallel;			 /* at most this many at once (0: 1) */
	const struct snapshot_opts *opts;	 /* as for job_snapshot */
	const volatile sig_atomic_t *stop;	 /* once set, no gateway starts; or NULL */
	job_done_fn *done;			 /* called once per gateway started */
	void *arg;				 /* done's first argument */
};

/* Snapshot the batch (see above); returns how many gateways were started
 * (stop may end it early).  Never fails as a whole: a gateway whose worker
 * cannot be started fails alone. */
size_t job_snapshot_batch(const struct job_batch *b);

/* The gateway's stat cache file (state-dir/statcache-<gateway>), creating
 * the state directory (0700) when missing; NULL with a warning when it
 * cannot be created (the snapshot then simply reads every file). */
char *job_statcache_path(const struct config *cfg, const char *gateway);

/* Record a drill's outcome for a gateway (status-<gateway>). */
void job_record_drill(const struct config *cfg, const char *gateway, bool ok, const char *error);

#endif
