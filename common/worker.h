/*
 * worker: a thread started by another, with the mutex and condition
 * variable the two share and a flag that tells it to stop.  The decoder of
 * a streamed archive (archive.c) and the hashing thread (hashq.c) are
 * workers: each has its own queue under mu and waits on cv, and leaves
 * when it sees stop.
 */
#ifndef MSGW_WORKER_H
#define MSGW_WORKER_H

#include <pthread.h>
#include <stdbool.h>

struct worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* under mu: set by worker_stop */
};

/* Start fn(arg) on a new thread: 0, or MSGW_ERR with a message and
 * nothing of w left to release. */
int worker_start(struct worker *w, void *(*fn)(void *), void *arg);
/* Set stop (under mu, waking every waiter), wait for the thread to end
 * and release w's mutex and condition variable. */
void worker_stop(struct worker *w);

#endif
