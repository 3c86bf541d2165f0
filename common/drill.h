/*
 * drill: a restore drill proves a snapshot restorable: the gateway's latest
 * snapshot is extracted into a scratch directory through the same checks
 * as a restore, then walked and hashed again and compared file by file
 * with its manifest.  The time of the last successful drill is recorded in
 * the state directory (status-<gateway>: last-drill).
 */
#ifndef MSGW_DRILL_H
#define MSGW_DRILL_H

#include "config.h"
#include "repo.h"

#include <stddef.h>

struct drill_result {
	char id[REPO_ID_LEN];
	size_t files;
	unsigned long long bytes;
};

/* Drill the tip of branch gateway; MSGW_ECORRUPT naming the first file that
 * differs.  The outcome is recorded either way. */
int drill_gateway(struct drill_result *out, struct repo *r, const struct config *cfg,
		  const char *gateway);

#endif
