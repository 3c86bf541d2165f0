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

/*
 * What a snapshot's content is held to besides matching its manifest, from
 * the configuration (plan_guard_init): the size limits, and the
 * mailbox-store patterns of the target and of the snapshot's own gateway.
 * The check also strips set-user-ID, set-group-ID and sticky bits and
 * group/other write from every file and directory, and lists here what it
 * stripped.
 */
struct plan_stripped {
	char *path;
	uint32_t from, to;
};

struct plan_guard {
	unsigned long long max_file_size;  /* bytes of one file; 0: no limit */
	unsigned long long max_total_size; /* bytes of all files and links; 0: no limit */
	const char *config_file;	   /* named in the limits' messages, or NULL */
	bool keep_modes;		   /* strip-modes = false: no bits stripped */
	char *const *stores[2];		/* mailbox-store patterns, each NULL or NULL-terminated */
	struct plan_stripped *stripped; /* out: modes the check stripped */
	size_t nstripped;
};

/* The guard for restoring a snapshot taken of gateway source (its meta
 * "gateway", may be NULL or unknown) onto target (NULL for an extract):
 * the target's limits and strip-modes, else the source's when it is
 * configured, else the top level's; the store patterns of both. */
void plan_guard_init(struct plan_guard *g, const struct config *cfg,
		     const struct config_gateway *target, const char *source);
void plan_guard_release(struct plan_guard *g);

/* The bits a restore never writes: set-ID, sticky, group and other write. */
#define PLAN_STRIP_MODE 07022u

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
	struct plan_guard guard;
	char **store_patterns; /* the target's and the snapshot's gateway's (borrowed strings) */
};

/*
 * Build the plan for restoring snapshot id onto target (a gateway of cfg,
 * reached through fs).  Hostile or damaged snapshots fail with
 * MSGW_EHOSTILE or MSGW_ECORRUPT naming the entry; a target holding what
 * an earlier restore left behind (names with ".msgw-") fails with MSGW_ERR
 * saying to run recover; nothing on the target is touched.
 */
int plan_build(struct plan *out, struct repo *r, const char *id, const struct config *cfg,
	       const struct config_gateway *target, struct fsys *fs, const char *only);
void plan_release(struct plan *p);

/* Mark the findings named in force (comma-separated codes) as forced;
 * MSGW_ECONFIG for an unknown code.  Returns the number left unforced in
 * *left_out. */
int plan_force(struct plan *p, const char *force, size_t *left_out);

/* The forced codes, comma-separated (malloc'd, "" when none). */
char *plan_forced_codes(const struct plan *p);

/* Check a loaded snapshot (with its archive) before anything is written
 * from it: the manifest's sizes against g's limits first, then in one pass
 * hostile entries, names (reserved and mailbox-store ones included),
 * sparse entries, writes through links, and every file against the
 * manifest; at its end every link resolved through the snapshot's own
 * links and folders.  In the same pass, copy what only the archive holds
 * (link targets, owner names, mtimes) into the manifest entries and strip
 * the PLAN_STRIP_MODE bits (listed in g->stripped).  MSGW_EHOSTILE /
 * MSGW_ECORRUPT naming the entry. */
int plan_check_snapshot(struct snapshot *s, struct plan_guard *g);

/* The same check, in the same single pass, over an archive reader r
 * opened at its start (the snapshot's archive, from memory or streamed),
 * handing every file and directory to then's begin, data and end
 * callbacks as soon as it has passed its own checks, and every link at the
 * end, once all links resolved inside the root (archive.h, struct
 * archive_snapshot_visit; then's pre is not used; then may be NULL): how extract
 * writes a snapshot while it checks it.  Whatever was handed over before a
 * failure must be thrown away by the caller. */
int plan_check_archive(struct snapshot *s, struct plan_guard *g, struct archive_snapshot_reader *r,
		       const struct archive_snapshot_visit *then);

/* Validate one archive entry's name and link target against escaping the
 * destination (absolute, "..", empty components, links leaving the root
 * as written), mailbox-store names and the tool's reserved names (any
 * component holding ".msgw-").  Used by plan and extract; MSGW_EHOSTILE
 * with a message naming it. */
int plan_check_entry_name(const char *path, char type, const char *link);

/* Resolve every link of m (targets filled in) through m's own links and
 * folders: MSGW_EHOSTILE naming the first one that leaves the root, goes
 * up out of a folder the snapshot does not hold, loops, or ends in a
 * mailbox store (by name or by stores' patterns, each NULL-terminated or
 * NULL). */
int plan_check_links(const struct manifest *m, char *const *const stores[2]);

/* True when a target or snapshot entry name is one the tool reserves for
 * itself (staged, backup, journal and temporary names: ".msgw-" in it). */
bool plan_is_reserved_name(const char *name);

#endif
