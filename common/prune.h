/*
 * prune: the retention policy of "msgw-agent prune" and the operations it
 * needs on the repository.
 *
 * The policy (prune_decide) is pure: given one branch's snapshots, the
 * retention section and "now", it marks each snapshot kept or dropped
 * and says why, as restic's forget and borg's prune do.  A snapshot is
 * kept when any of these keeps it:
 *
 *   tip          the branch tip, always;
 *   tagged       a tag points at it, always;
 *   last         keep-last N: the N newest;
 *   hourly ...   keep-hourly/-daily/-weekly/-monthly N: the newest
 *                snapshot of each of the last N hours, days, ISO weeks
 *                (Monday to Sunday) or months that have snapshots, in UTC;
 *   pre-restore  a pre-restore snapshot younger than keep-pre-restore-days.
 *
 * "Newest" is by the meta's created time; snapshots with equal times keep
 * their branch order (the one nearer the tip counts as newer).  When no
 * keep-* count is set at all, prune_decide refuses (MSGW_ECONFIG) rather
 * than drop everything but the tip.
 *
 * prune_plan_branch() reads a branch's snapshots from the repository and
 * runs the policy on them.  The repository side of dropping them is the
 * repo module's (repo.h: repo_rewrite_branch, repo_repack).  Nothing here
 * prints.
 */
#ifndef MSGW_PRUNE_H
#define MSGW_PRUNE_H

#include "config.h"
#include "repo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a snapshot is kept (a bit mask: several rules may keep one). */
enum prune_reason {
	PRUNE_TIP = 1 << 0,
	PRUNE_TAGGED = 1 << 1,
	PRUNE_LAST = 1 << 2,
	PRUNE_HOURLY = 1 << 3,
	PRUNE_DAILY = 1 << 4,
	PRUNE_WEEKLY = 1 << 5,
	PRUNE_MONTHLY = 1 << 6,
	PRUNE_PRE_RESTORE = 1 << 7
};

/* One snapshot as the policy sees it. */
struct prune_item {
	char id[REPO_ID_LEN];
	int64_t time;  /* meta "created" (the commit time when meta lacks it) */
	char kind[24]; /* meta "kind": "scheduled", "pre-restore"...; "" if none */
	bool tagged;   /* a tag points at it */
	/* set by prune_decide: */
	bool keep;
	unsigned reasons; /* enum prune_reason bits; 0 when dropped */
};

/*
 * Decide for items[0..n-1], a branch's snapshots in branch order (items[0]
 * is the tip), which to keep under ret at time now (seconds since the
 * epoch; it only matters for keep-pre-restore-days).  Sets each item's
 * keep and reasons.  MSGW_ECONFIG "retention: no keep-... rule is set..."
 * when ret sets no keep-* count (nothing is marked dropped then).
 */
int prune_decide(struct prune_item *items, size_t n, const struct config_retention *ret,
		 int64_t now);

/* Whether ret sets any keep-* count. */
bool prune_policy_set(const struct config_retention *ret);

/* One reason's name: "tip", "tagged", "last", "hourly", "daily", "weekly",
 * "monthly", "pre-restore" ("?" for anything else). */
const char *prune_reason_name(unsigned bit);

/* The reasons as text, "tip, last, daily" ("" for none), into buf. */
void prune_reasons_format(char *buf, size_t len, unsigned reasons);

/* The bucket keys the policy uses (exposed for tests): hours, days, ISO
 * weeks (Monday-based, continuous across year ends) and months since the
 * epoch, UTC, floor-divided for times before 1970. */
int64_t prune_hour(int64_t t);
int64_t prune_day(int64_t t);
int64_t prune_week(int64_t t);
int64_t prune_month(int64_t t);

/* A branch's plan: its snapshots with the decision. */
struct prune_branch {
	char *name;
	char tip[REPO_ID_LEN];
	struct prune_item *items; /* branch order, tip first */
	size_t n;
	size_t kept, dropped;
};

/*
 * Read branch's snapshots from r (meta "created" and "kind", tags) and
 * decide with prune_decide.  A snapshot whose meta cannot be read or has
 * no valid created time is judged by its commit time (and logged at info
 * level).  Errors: those of repo_log, and MSGW_ECONFIG from prune_decide.
 * Release with prune_branch_release.
 */
int prune_plan_branch(struct prune_branch *out, struct repo *r, const char *branch,
		      const struct config_retention *ret, int64_t now);
void prune_branch_release(struct prune_branch *b);

#endif
