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
 * runs the policy on them.  The repository side of dropping them lives in
 * repo_rewrite.c (part of the repo module, the only other file that
 * includes git2.h): repo_rewrite_branch() rebuilds a branch's first-parent
 * chain without the dropped commits, repo_repack() writes every reachable
 * object into one new pack and deletes everything else, so that the
 * dropped snapshots' archives are really gone.  Nothing here prints.
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

/* ---- repo_rewrite.c ------------------------------------------------------ */

/* The ids of commits that tags point at (lightweight or annotated, peeled),
 * sorted for bsearch with strcmp.  Free with repo_names_free. */
int repo_tagged_commits(char ***ids_out, size_t *n_out, struct repo *r);

struct repo_rewrite_result {
	char old_tip[REPO_ID_LEN];
	char new_tip[REPO_ID_LEN];
	char **old_ids, **new_ids; /* the kept commits that got new ids, pairwise */
	size_t nrewritten;
	size_t ndropped;
	size_t ntags_moved;
};

/*
 * Rebuild refs/heads/<branch>'s first-parent chain without the commits in
 * drop (ids, any order; each must be on that chain and not its tip): each
 * later commit is recreated with the same tree, author, committer (dates
 * and zones included), message and encoding, on its new parent.  Tags that
 * point at a recreated commit (lightweight ones moved, annotated ones
 * recreated with the same tagger and message) are moved first, then the
 * branch, which only moves if its tip is still old_tip.  Commits that
 * nothing dropped precedes keep their ids.  The dropped objects stay in
 * the object store until repo_repack.  MSGW_ERR when an id is not on the
 * chain or is the tip (nothing written then).  Release out with
 * repo_rewrite_result_release, also after a failure.
 */
int repo_rewrite_branch(struct repo_rewrite_result *out, struct repo *r, const char *branch,
			char *const *drop, size_t ndrop);
void repo_rewrite_result_release(struct repo_rewrite_result *res);

struct repo_repack_result {
	size_t objects;	       /* objects in the new pack */
	size_t loose_removed;  /* loose object files deleted */
	size_t packs_removed;  /* old packs deleted */
	size_t reflog_dropped; /* reflog entries that named objects now gone */
};

/*
 * git gc without git: write every object reachable from any reference
 * (and HEAD) into one new pack in objects/pack (fsync'd and indexed by
 * libgit2), drop the reflog entries that name objects not in it, then
 * delete every loose object, every other pack (with its .idx, .rev,
 * .bitmap, .keep...) and the files that describe them (multi-pack-index,
 * commit-graph, info/packs).  Nothing is deleted unless the new pack was
 * written completely.  Call it under the repository lock; r's own object
 * cache may be stale afterwards (reopen it to read again).
 */
int repo_repack(struct repo_repack_result *out, struct repo *r);

#endif
