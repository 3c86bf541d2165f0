/*
 * lock: one lock per repository (and per restore target), a file holding
 * "host pid boot-id since" under an flock(2).
 *
 * A live holder makes lock_acquire fail at once with MSGW_ELOCKED and a
 * message saying who holds it and since when.  A lock file left by a process
 * that died (same host, same boot, pid gone, or a previous boot) is taken
 * over with a warning.  The kernel drops the flock when the holder dies, so
 * even a kill -9 cannot wedge the next run.
 */
#ifndef MSGW_LOCK_H
#define MSGW_LOCK_H

struct lock;

/* Take the lock file at path; what names it in messages ("repository"). */
int lock_acquire(struct lock **out, const char *path, const char *what);

/* The path of a repository's lock file, "<repo>/msgw.lock" (caller
 * frees): the one place that names it. */
char *lock_repo_path(const char *repo_path);

/* Release and free (NULL is fine). */
void lock_release(struct lock *l);

#endif
