/*
 * statcache: remembers, per gateway, the sha256 of each file together with
 * the stat data it was computed from (path, size, mtime, ctime, inode), so a
 * scheduled snapshot of an unchanged gateway reads no file at all.
 *
 * It is safe against a file rewritten within the same timestamp tick (the
 * racy-git rule): an entry is only stored when the file's mtime and ctime
 * are at least two seconds older than a time, on the clock of the host that
 * holds the files, taken before the file was read (statcache_set_clock), so
 * a later rewrite that keeps size and mtime still changes ctime or is
 * simply hashed again.  Over SFTP, which has no ctime nor inode (both 0)
 * and whole-second mtimes, size and mtime decide alone, and this rule is
 * what keeps a same-second, same-size rewrite from hiding; the gateway's
 * own clock is used, never the backup host's, so clocks that differ do not
 * matter.  The file is
 * written atomically with mode 0600; a damaged cache is ignored (and
 * rebuilt), never trusted.
 *
 * In an encrypted repository the file is sealed with the repository's key
 * (statcache_open_sealed): it then holds no plain hash of content, and a
 * file that does not open under that key (another key, damaged, or
 * written in clear for a plain repository) is discarded like a damaged
 * one.  Sealing changes where the entries are kept, never what a hit is:
 * statcache_lookup is the one definition of "unchanged" for both kinds.
 */
#ifndef MSGW_STATCACHE_H
#define MSGW_STATCACHE_H

#include "manifest.h"

#include <stdbool.h>

struct statcache;

struct seal_key;

/* Load the cache at path (a missing or unreadable file gives an empty one). */
int statcache_open(struct statcache **out, const char *path);

/* The same with key (borrowed, must outlive the cache; NULL: a plain file):
 * the file is read and written sealed with it. */
int statcache_open_sealed(struct statcache **out, const char *path, const struct seal_key *key);

/* The time (seconds, on the files' host's clock) before which a file's
 * timestamps must lie, by two seconds, for its entry to be stored; taken
 * before any file is read.  Default: this host's clock at open. */
void statcache_set_clock(struct statcache *c, int64_t now);

/* When e's stat data matches a cached entry for e->path, copy the hash into
 * e->sha and return true. */
bool statcache_lookup(struct statcache *c, struct manifest_entry *e);

/* Remember e's hash (if its timestamps are old enough to be trusted). */
void statcache_store(struct statcache *c, const struct manifest_entry *e);

/* Write the entries looked up or stored since open (others are dropped). */
int statcache_save(struct statcache *c);

void statcache_free(struct statcache *c);

#endif
