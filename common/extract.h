/*
 * extract: write a snapshot's files into a new or empty local directory
 * (no service, no journal): the restore drill and "msgw-restore extract".
 * The same checks as a restore run first, so a hostile or damaged snapshot
 * writes nothing.
 */
#ifndef MSGW_EXTRACT_H
#define MSGW_EXTRACT_H

#include "fsys.h"
#include "repo.h"

#include <stddef.h>

struct extract_result {
	size_t files, dirs, links;
	unsigned long long bytes;
};

/* Extract snapshot id into dir (created when missing; must be empty). */
int extract_snapshot(struct extract_result *out, struct repo *r, const char *id, const char *dir);

#endif
