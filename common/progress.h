/*
 * progress: a one-line progress display on stderr for long work (hashing a
 * large snapshot, archiving, staging an apply), shown only when the front
 * end enabled it because stderr is a terminal; silent otherwise.  Updates
 * are throttled to ten a second.  Depends only on util.
 */
#ifndef MSGW_PROGRESS_H
#define MSGW_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

void progress_enable(bool on);
/* Start a display: label and total units (0: unknown). */
void progress_begin(const char *label, uint64_t total);
void progress_update(uint64_t done);
/* Clear the line. */
void progress_end(void);

#endif
