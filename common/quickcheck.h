/*
 * quickcheck: the no-change test of a scheduled snapshot, without reading a
 * file, opening the repository or loading libgit2.
 *
 * After each successful snapshot of a local gateway (written or unchanged)
 * the full path records, in the state directory, the branch tip and what
 * the walk saw: for each entry its type, mode, owner ids, size and path,
 * for files also mtime, ctime and inode (the stat cache's key), for links
 * the target.  It records only when every file's mtime and ctime are at
 * least two seconds older than the walk, the stat cache's rule, so a rewrite
 * within the same timestamp tick cannot hide behind equal stat data.
 *
 * A later run that walks the same stat data and finds the branch at the
 * same tip knows the snapshot would be unchanged: the tip's manifest was
 * judged equal to a state with exactly these files.  Any difference, a
 * missing or damaged record, a moved, packed-away or symbolic ref: the full
 * path runs.  A stale record can only cause a full run, never a wrong
 * "unchanged", because both the tip and every file's stat data must match.
 */
#ifndef MSGW_QUICKCHECK_H
#define MSGW_QUICKCHECK_H

#include "manifest.h"
#include "repo.h"

#include <stdint.h>

/* The record file of a gateway: state_dir/quickcheck-<gateway> (malloc'd). */
char *quickcheck_path(const char *state_dir, const char *gateway);

/*
 * Record that the branch at tip holds exactly what walk m (taken at
 * walk_time, seconds) saw at location.  When some file is too fresh to
 * vouch for, the record is removed instead.  Failures are only logged: the
 * record is an optimisation.
 */
void quickcheck_record(const char *path, const char *location, const char *tip,
		       const struct manifest *m, int64_t walk_time);

/* The branch's tip read from the repository's files: 0, or MSGW_ENOTFOUND
 * when it is not a plain loose or packed ref (the caller then asks git). */
int quickcheck_read_tip(char out[REPO_ID_LEN], const char *repo_path, const char *branch);

/*
 * Whether a snapshot of the gateway at location (walk rules as the full
 * path uses them) would be unchanged: 1 with the tip in tip_out, 0 when
 * the full path must decide (*why says why, for the debug log).
 */
struct walk_rules;
int quickcheck_unchanged(char tip_out[REPO_ID_LEN], const char **why, const char *path,
			 const char *repo_path, const char *branch, const char *location,
			 const struct walk_rules *rules);

#endif
