/*
 * worker: a thread with its mutex, condition variable and stop flag
 * (worker.h).
 */
#include "worker.h"
#include "err.h"

int worker_start(struct worker *w, void *(*fn)(void *), void *arg)
{
	int e;

	w->stop = false;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	e = pthread_create(&w->thread, NULL, fn, arg);
	if (e) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		return err_set_errno(MSGW_ERR, e, "cannot start a thread");
	}
	return 0;
}

void worker_stop(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}
