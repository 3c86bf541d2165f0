/*
 * statcache: remembers, per gateway, the sha256 of each file together with
 * the stat data it was computed from (path, size, mtime, ctime, inode), so a
 * scheduled snapshot of an unchanged gateway reads no file at all.
 *
 * It is safe against a file rewritten within the same timestamp tick: an
 * entry is only stored when the file's mtime and ctime are at least two
 * seconds older than the moment it was hashed, so a later rewrite that keeps
 * size and mtime still changes ctime or is simply hashed again.  The file is
 * written atomically with mode 0600; a damaged cache is ignored (and
 * rebuilt), never trusted.
 */
#ifndef MSGW_STATCACHE_H
#define MSGW_STATCACHE_H

#include "manifest.h"

#include <stdbool.h>

struct statcache;

/* Load the cache at path (a missing or unreadable file gives an empty one). */
int statcache_open(struct statcache **out, const char *path);

/* When e's stat data matches a cached entry for e->path, copy the hash into
 * e->sha and return true. */
bool statcache_lookup(struct statcache *c, struct manifest_entry *e);

/* Remember e's hash (if its timestamps are old enough to be trusted). */
void statcache_store(struct statcache *c, const struct manifest_entry *e);

/* Write the entries looked up or stored since open (others are dropped). */
int statcache_save(struct statcache *c);

void statcache_free(struct statcache *c);

#endif
