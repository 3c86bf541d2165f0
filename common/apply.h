/*
 * apply: the restore transaction of DESIGN.md carried out for a plan, and
 * its recovery.
 *
 *   1. (plan.c) verify and plan; findings not forced refuse with exit 3
 *   2. record the target's current state as a pre-restore snapshot
 *   3. journal, then stage every new file next to its destination
 *      (NAME.msgw-new, fsync'd) and create new directories
 *   4. journal phase "swapping" (fsync'd), stop the service, swap each
 *      staged file into place by rename (the old one kept as NAME.msgw-old),
 *      remove what the snapshot lacks (renamed to NAME.msgw-old), start the
 *      service, run the health check
 *   5. health fails: undo every operation in reverse, start again: exit 4
 *   6. success: a "restored" snapshot, backups removed, journal removed;
 *      with a confirm window the backups stay until "confirm", and a
 *      detached timer undoes everything when the window closes first.
 *
 * Every operation's undo is decided from the file system alone (does
 * NAME.msgw-old exist? NAME.msgw-new?), so recovery works whichever
 * instruction a crash interrupted.  Fault points for tests (MSGW_FAULT=
 * after-stage, after-stop, mid-swap, before-start, before-commit) exist only
 * in builds with MSGW_TESTING.
 */
#ifndef MSGW_APPLY_H
#define MSGW_APPLY_H

#include "config.h"
#include "fsys.h"
#include "lock.h"
#include "plan.h"
#include "repo.h"
#include "service.h"

#include <stdbool.h>
#include <stdint.h>

struct apply_env {
	struct repo *repo;
	const struct config *cfg;
	const struct config_gateway *gw; /* the target */
	struct fsys *fs;		 /* the target's location */
	struct service_host *host;	 /* where its service commands run */
	const char *config_file;	 /* for the confirm timer's command line */
};

struct apply_opts {
	int confirm_within; /* seconds, 0: commit at once */
};

struct apply_result {
	char pre_restore[REPO_ID_LEN];
	char restored[REPO_ID_LEN];
	int64_t downtime_ms; /* service stop begun to health check passed */
	int64_t swap_ms;     /* our part of it: the renames */
	int64_t stop_ms, start_ms;
	bool rolled_back; /* health failed, previous state restored */
	int64_t confirm_deadline;
};

/*
 * Carry out the plan (whose unforced findings the caller has already
 * refused).  Returns 0, MSGW_ERR (nothing changed), MSGW_EHEALTH (applied,
 * failed health, rolled back and running), or MSGW_EROLLBACK (manual action
 * needed; the message says what).
 */
int apply_run(struct apply_result *out, const struct apply_env *env, struct plan *p,
	      const struct apply_opts *opts);

enum recover_mode {
	RECOVER_ANY,	 /* finish or undo whatever the journal says */
	RECOVER_EXPIRED, /* only act on an expired confirm window (the timer) */
	RECOVER_CONFIRM	 /* confirm: commit an open confirm window */
};

/*
 * Finish or undo an interrupted restore of env->gw from its journal, and
 * remove the temporary files a killed run leaves (the state folder's
 * journal-GW.tmp, the target's .msgw-journal.msgw-tmp.*).  *what is set to
 * a static description ("nothing to recover", "rolled back", "committed",
 * "waiting for confirm").  A journal that cannot be parsed touches
 * nothing: MSGW_ECORRUPT naming the file and what to do by hand.
 */
int apply_recover(const struct apply_env *env, enum recover_mode mode, const char **what);

/* Whether a journal (an unfinished restore or an open confirm window)
 * exists for the gateway; its phase and deadline when it does. */
bool apply_pending(const struct config *cfg, const char *gateway, char *phase, size_t len,
		   int64_t *deadline);

/* Whether a killed run left state-dir/journal-<gateway>.tmp (recover
 * removes it, and the target's temporary journal copies). */
bool apply_has_leftovers(const struct config *cfg, const char *gateway);

/* The target lock: state-dir/target-<gateway>.lock. */
int apply_lock_target(struct lock **out, const struct config *cfg, const char *gateway);

#endif
