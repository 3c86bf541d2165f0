/*
 * walk: turn a gateway's location into the manifest of what a snapshot
 * holds, through the file-access interface.
 *
 * Classification of every path (relative to the location root):
 *   - a directory named like a mailbox ("mbx-" and 32 hex digits) at any
 *     depth, or matching a mailbox-store pattern, is a mailbox store: it is
 *     never descended into and never part of a snapshot, whatever the
 *     include patterns say;
 *   - a path that matches an exclude pattern, or lies below a directory that
 *     does, is excluded (the walk does not descend where every path below
 *     is excluded);
 *   - a file or link matching an include pattern (or below a directory that
 *     does) is config; a directory is config when it matches an include
 *     pattern or holds config entries;
 *   - anything else (sockets, devices, FIFOs) is skipped with a warning.
 * Preserve patterns do not change what a snapshot holds; restore uses them.
 */
#ifndef MSGW_WALK_H
#define MSGW_WALK_H

#include "fsys.h"
#include "manifest.h"

#include <stdbool.h>

enum walk_class { WALK_CONFIG, WALK_EXCLUDED, WALK_STORE, WALK_OTHER };

struct walk_rules {
	char *const *include;	    /* NULL-terminated; NULL means {"**"} */
	char *const *exclude;	    /* NULL-terminated or NULL */
	char *const *mailbox_store; /* extra store patterns, or NULL */
	bool ids_only;		    /* owner ids without names (no lookups) */
};

/* True for "mbx-" followed by exactly 32 hex digits. */
bool walk_is_mailbox_name(const char *name);

/* Names msgw-restore uses on a target while it restores: staged files,
 * backups of replaced files, and the journal's copy; every name the tool
 * writes holds WALK_RESERVED_MARK (temporary files too).  Walks skip every
 * name holding it. */
#define WALK_NEW_SUFFIX	   ".msgw-new"
#define WALK_OLD_SUFFIX	   ".msgw-old"
#define WALK_JOURNAL_NAME  ".msgw-journal"
#define WALK_RESERVED_MARK ".msgw-"
bool walk_is_internal_name(const char *name);

/* True when path (a directory) is a mailbox store under rules. */
bool walk_is_store(const struct walk_rules *rules, const char *path);

/* The class of one path; is_dir says whether it is a directory. */
enum walk_class walk_classify(const struct walk_rules *rules, const char *path, bool is_dir);

struct walk_stats {
	size_t files, dirs, links, stores, excluded, skipped;
	size_t internal; /* names holding WALK_RESERVED_MARK, left out */
	uint64_t bytes;
};

/*
 * Walk the location into out (initialised here): every config entry with
 * type, mode, owner ids and names, size, mtime and link target, sorted by
 * path; file hashes are not computed yet (see walk_hash).  stats may be
 * NULL.  On failure out is empty.
 */
int walk_location(struct manifest *out, struct fsys *fs, const struct walk_rules *rules,
		  struct walk_stats *stats);

/*
 * Compute the sha256 of every file and link in m, reading each file
 * consistently: a file whose size, mtime or ctime changes while it is read
 * is read again, and one that keeps changing fails with MSGW_ECHANGING
 * naming it.  A file removed since the walk listed it is left out of m
 * with a warning (walk_vanished).  A cache (may be NULL) maps unchanged stat data to known
 * hashes, so unchanged files are not read at all.
 */
struct statcache;
int walk_hash(struct manifest *m, struct fsys *fs, struct statcache *cache);

/* Hash one file consistently into e (used by walk_hash and by restore). */
int walk_hash_entry(struct manifest_entry *e, struct fsys *fs);

/*
 * Whether rc, from reading entry e that a walk listed, means the entry was
 * removed since (MSGW_ENOTFOUND): then e is marked gone (for
 * manifest_drop_gone), a warning says so, as tar's "file removed before we
 * read it", and the error is cleared.  A gateway saving its configuration
 * through a temporary file does this during a snapshot.
 */
bool walk_vanished(struct fsys *fs, struct manifest_entry *e, int rc);

#endif
