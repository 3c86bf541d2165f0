/*
 * state: small "key: value" files in the state directory that record what
 * happened (last snapshot attempt per gateway, last push per remote, last
 * drill, follow state), for status and monitoring.  Written atomically with
 * mode 0600; a missing file reads as empty.  Values never hold secrets.
 *
 * Files: status-<gateway> (snapshot: last-attempt, last-result, last-error,
 * last-snapshot, last-snapshot-time, failures-total, last-drill,
 * last-drill-result; follow: follow-state, follow-finding, follow-time,
 * follow-applied, follow-failed), push-<remote> (last-attempt, last-success, last-error).
 */
#ifndef MSGW_STATE_H
#define MSGW_STATE_H

#include <stddef.h>
#include <stdint.h>

struct state {
	char *path;
	char **keys, **values;
	size_t n;
};

/* Load state-dir/name (creating nothing yet); a missing file loads empty.
 * On failure *out holds nothing to release. */
int state_load(struct state *out, const char *state_dir, const char *name);
/* NULL when unset (borrowed). */
const char *state_get(const struct state *s, const char *key);
int64_t state_get_int(const struct state *s, const char *key, int64_t dflt);
void state_set(struct state *s, const char *key, const char *value);
void state_set_int(struct state *s, const char *key, int64_t value);
/* Write atomically (state dir created 0700 when missing). */
int state_save(const struct state *s);
void state_release(struct state *s);

/* Record a snapshot attempt of gateway in status-<gateway>: last-attempt,
 * last-result (result), last-error (error, or "" when NULL; failures-total
 * counts them) and, when snapshot is not NULL, last-snapshot and
 * last-success. */
int state_record_snapshot(const char *state_dir, const char *gateway, const char *result,
			  const char *error, const char *snapshot);

/*
 * Whether a record can be written in state_dir now: a probe file of
 * STATE_PROBE_SIZE bytes (more than any record) is created, synced and
 * removed.  0 when it can, or when state_dir does not exist yet (nothing
 * ran); else MSGW_ERR with a message naming the probe ("cannot write
 * 'DIR/.probe-PID': No space left on device").  status uses it so that a
 * full or read-only state folder is reported rather than going stale.
 */
#define STATE_PROBE_SIZE 4096
int state_probe(const char *state_dir);

#endif
