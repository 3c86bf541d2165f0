/*
 * status: what the monitoring command reports, computed from the
 * repository and the state directory: per gateway the last snapshot and its
 * age, the last attempt's result and error, the last drill, the follow
 * state; per remote the last push.  Levels follow the monitoring plugin
 * convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 * Rules: a gateway never snapshotted is UNKNOWN; a failed or skipped last
 * attempt is CRITICAL; a last good snapshot older than crit_age is
 * CRITICAL, older than warn_age WARNING; a standby whose follow is blocked
 * by a finding is CRITICAL; a remote whose last push failed is WARNING.
 * A state directory where no record can be written now (full, read-only:
 * state_probe) is CRITICAL, whatever the records say, as they can no longer
 * change.  The overall level is the worst (CRITICAL > WARNING > UNKNOWN > OK).
 */
#ifndef MSGW_STATUS_H
#define MSGW_STATUS_H

#include "config.h"
#include "repo.h"

#include <stdint.h>

enum status_level { STATUS_OK = 0, STATUS_WARNING = 1, STATUS_CRITICAL = 2, STATUS_UNKNOWN = 3 };

struct status_gateway {
	const char *name;
	enum status_level level;
	char *reason; /* one short phrase */
	char last_id[REPO_ID_LEN];
	int64_t last_snapshot; /* epoch of the last good snapshot run (0 never) */
	int64_t age;	       /* now - last_snapshot, -1 when never */
	char *last_result, *last_error, *last_attempt;
	int64_t failures_total;
	int64_t last_drill; /* epoch, 0 never */
	char *follow_state, *follow_finding;
};

struct status_remote {
	const char *name;
	enum status_level level;
	int64_t last_attempt, last_success;
	char *last_error;
};

struct status_report {
	enum status_level level;
	char *summary;	   /* the plugin's one-line summary (without the level word) */
	char *state_error; /* why no record can be written in the state directory, or NULL */
	struct status_gateway *g;
	size_t ng;
	struct status_remote *rm;
	size_t nr;
	int64_t now;
};

int status_build(struct status_report *out, struct repo *r, const struct config *cfg,
		 int64_t warn_age, int64_t crit_age, int64_t now);
void status_release(struct status_report *s);

const char *status_level_name(enum status_level l);

/* The node_exporter textfile, written atomically to path. */
int status_write_prometheus(const struct status_report *s, const char *path);

#endif
