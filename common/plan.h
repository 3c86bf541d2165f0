/*
 * plan: what restoring a snapshot onto a gateway would do, computed without
 * changing anything: the snapshot verified and checked for hostile entries,
 * the target's live files walked and hashed, the file changes, what is left
 * alone, and the safety analysis's findings.  apply.c carries a plan out.
 */
#ifndef MSGW_PLAN_H
#define MSGW_PLAN_H

#include "archive.h"
#include "config.h"
#include "fsys.h"
#include "gateway.h"
#include "manifest.h"
#include "repo.h"
#include "snapshot.h"

#include <stdbool.h>

enum plan_op {
	PLAN_ADD = 'A',	     /* new file, link or directory */
	PLAN_MODIFY = 'M',   /* content or metadata differs */
	PLAN_REMOVE = 'D',   /* live entry the snapshot lacks */
	PLAN_PRESERVE = 'P', /* host-specific (preserve patterns): never written */
	PLAN_KEEP = 'K'	     /* live, excluded on the target: left alone */
};

struct plan_change {
	enum plan_op op;
	const struct manifest_entry *snap; /* the snapshot's entry, or NULL */
	const struct manifest_entry *live; /* the live entry, or NULL */
	uint32_t uid, gid;		   /* owner to set on the target (mapped by name) */
	bool meta_only;			   /* MODIFY of a directory (mode/owner/time only) */
};

struct plan {
	char id[REPO_ID_LEN];		     /* the snapshot */
	char *source_gateway;		     /* its meta gateway */
	const struct config_gateway *target; /* borrowed */
	struct snapshot snap;		     /* loaded with its archive */
	struct manifest live;		     /* the target's live config files */
	bool has_tip;			     /* the target has a branch */
	char tip[REPO_ID_LEN];
	struct plan_change *c;
	size_t n;
	size_t added, modified, removed, preserved, kept;
	struct gateway_inventory stores;
	struct findings findings;
	char **notes;
	size_t nnotes;
	const char *only; /* --only pattern, or NULL */
};

/*
 * Build the plan for restoring snapshot id onto target (reached through
 * fs).  Hostile or damaged snapshots fail with MSGW_EHOSTILE or
 * MSGW_ECORRUPT naming the entry; nothing on the target is touched.
 */
int plan_build(struct plan *out, struct repo *r, const char *id,
	       const struct config_gateway *target, struct fsys *fs, const char *only);
void plan_release(struct plan *p);

/* Mark the findings named in force (comma-separated codes) as forced;
 * MSGW_ECONFIG for an unknown code.  Returns the number left unforced in
 * *left_out. */
int plan_force(struct plan *p, const char *force, size_t *left_out);

/* The forced codes, comma-separated (malloc'd, "" when none). */
char *plan_forced_codes(const struct plan *p);

/* Check a loaded snapshot (with its archive) before anything is written
 * from it: hostile entries, names, writes through links, and every file
 * against the manifest; in the same pass, copy what only the archive holds
 * (link targets, owner names, mtimes) into the manifest entries.
 * MSGW_EHOSTILE / MSGW_ECORRUPT naming the entry. */
int plan_check_snapshot(struct snapshot *s);

/* The same check, in the same single pass, over an archive reader r
 * opened at its start (the snapshot's archive, from memory or streamed),
 * handing every entry to then's begin, data and end callbacks as soon as
 * it has passed its own checks (archive.h, struct archive_snapshot_visit; then's
 * pre is not used; then may be NULL): how extract writes a snapshot while
 * it checks it.  Whatever was handed over before a failure must be thrown
 * away by the caller. */
int plan_check_archive(struct snapshot *s, struct archive_snapshot_reader *r,
		       const struct archive_snapshot_visit *then);

/* Validate one archive entry's name and link target against escaping the
 * destination (absolute, "..", empty components, links leaving the root).
 * Used by plan and extract; MSGW_EHOSTILE with a message naming it. */
int plan_check_entry_name(const char *path, char type, const char *link);

#endif
