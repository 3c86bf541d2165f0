/*
 * apply_internal: the swap and undo steps of the restore transaction,
 * exposed for tests/unit/test_apply.c only (the front ends use apply.h).
 * Both work on the journal's operation list over any fsys, so a test can
 * give them a file-access table that fails or races at chosen steps.
 */
#ifndef MSGW_APPLY_INTERNAL_H
#define MSGW_APPLY_INTERNAL_H

#include "fsys.h"
#include "journal.h"

/* Re-check every entry's folder (no link on the way), then swap each
 * staged entry into place in the journal's order and sync the folders.
 * Stops at the first failure and returns it (MSGW_EHOSTILE when a folder
 * became a link): what was swapped stays for apply_undo_all. */
int apply_swap_all(struct fsys *fs, const struct journal *j);

/* Undo every operation in reverse, deciding from the file system alone;
 * safe to run twice.  Entries under a folder that became a link are left
 * (with a warning); other failures are returned, the first one. */
int apply_undo_all(struct fsys *fs, const struct journal *j);

#endif
