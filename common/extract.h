/*
 * extract: write a snapshot's files into a new or empty local directory
 * (no service, no journal): the restore drill and "msgw-restore extract".
 * Every entry gets the same checks as in a restore, in one pass that
 * writes into a hidden staging directory inside dir; only a snapshot that
 * checked out completely is moved into place, so a hostile or damaged one
 * leaves dir as it was (and removed again when this call created it).
 */
#ifndef MSGW_EXTRACT_H
#define MSGW_EXTRACT_H

#include "config.h"
#include "fsys.h"
#include "repo.h"

#include <stddef.h>

struct extract_result {
	size_t files, dirs, links;
	unsigned long long bytes;
	size_t stripped; /* entries whose set-ID, sticky or group/other-write bits went */
};

/* Extract snapshot id into dir (created when missing; must be empty),
 * held to cfg's limits and store patterns (plan_guard_init; cfg may be
 * NULL: no limits, mailbox names only).
 * On failure the message ends "extract into 'dir' failed, nothing written
 * there: ..." when dir was reached at all. */
int extract_snapshot(struct extract_result *out, struct repo *r, const struct config *cfg,
		     const char *id, const char *dir);

#endif
