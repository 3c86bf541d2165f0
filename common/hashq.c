/*
 * hashq: sha256 of files on a second thread (hashq.h).  The giver fills
 * one chunk at a time with pieces of content, each described by a segment
 * (entry, length, whether it ends the entry), and hands it over when full;
 * the hasher takes chunks in order and keeps one running sha256.
 */
#include "hashq.h"
#include "err.h"
#include "sha256.h"
#include "util.h"
#include "worker.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define HQ_SLOTS 8 /* two MiB in all, as the decoder's (archive.c) */
#define HQ_CHUNK (1 << 18)
#define HQ_SEGS	 128

struct hq_seg {
	size_t entry, len;
	bool last;
};

struct hq_chunk {
	unsigned char *data;
	size_t len, nseg;
	struct hq_seg seg[HQ_SEGS];
};

struct hashq {
	const struct manifest *m;
	struct worker w; /* the hasher */
	struct hq_chunk chunk[HQ_SLOTS];
	size_t produced, consumed; /* chunks handed over and hashed, counting up */
	bool filling;		   /* the giver fills chunk[produced % HQ_SLOTS] */
	char *failure;		   /* the first mismatch's message, set by the hasher */
	/* the hasher's own */
	struct sha256 s;
	size_t cur;
	bool in_entry;
};

/* Hash one chunk; the first entry that does not match is recorded. */
static void hash_chunk(struct hashq *q, const struct hq_chunk *c)
{
	const unsigned char *p = c->data;
	size_t k;

	for (k = 0; k < c->nseg; k++) {
		const struct hq_seg *g = &c->seg[k];

		if (!q->in_entry || q->cur != g->entry) {
			sha256_init(&q->s);
			q->cur = g->entry;
			q->in_entry = true;
		}
		sha256_update(&q->s, p, g->len);
		p += g->len;
		if (g->last) {
			const struct manifest_entry *e = &q->m->e[g->entry];
			unsigned char sha[SHA256_LEN];

			sha256_final(&q->s, sha);
			q->in_entry = false;
			if (memcmp(sha, e->sha, SHA256_LEN) != 0) {
				pthread_mutex_lock(&q->w.mu);
				q->failure =
				    xasprintf("'%s': sha256 does not match the manifest", e->path);
				pthread_mutex_unlock(&q->w.mu);
				return;
			}
		}
	}
}

static void *hasher(void *arg)
{
	struct hashq *q = arg;
	bool failed = false;

	pthread_mutex_lock(&q->w.mu);
	for (;;) {
		while (!q->w.stop && q->consumed == q->produced)
			pthread_cond_wait(&q->w.cv, &q->w.mu);
		if (q->w.stop)
			break;
		pthread_mutex_unlock(&q->w.mu);
		if (!failed) { /* after a failure the rest is only let through */
			hash_chunk(q, &q->chunk[q->consumed % HQ_SLOTS]);
			pthread_mutex_lock(&q->w.mu);
			failed = q->failure != NULL;
		} else {
			pthread_mutex_lock(&q->w.mu);
		}
		q->consumed++;
		pthread_cond_broadcast(&q->w.cv);
	}
	pthread_mutex_unlock(&q->w.mu);
	return NULL;
}

int hashq_start(struct hashq **out, const struct manifest *m)
{
	struct hashq *q = xcalloc(1, sizeof(*q));
	size_t i;
	int rc;

	*out = NULL;
	q->m = m;
	for (i = 0; i < HQ_SLOTS; i++)
		q->chunk[i].data = xmalloc(HQ_CHUNK);
	rc = worker_start(&q->w, hasher, q);
	if (rc) {
		for (i = 0; i < HQ_SLOTS; i++)
			free(q->chunk[i].data);
		free(q);
		return rc;
	}
	*out = q;
	return 0;
}

static int failure(struct hashq *q)
{
	return err_set(MSGW_ECORRUPT, "%s", q->failure);
}

/* The chunk being filled, waiting for a free one if needed; NULL once a
 * failure is known. */
static struct hq_chunk *filling(struct hashq *q)
{
	struct hq_chunk *c;

	if (q->filling)
		return &q->chunk[q->produced % HQ_SLOTS];
	pthread_mutex_lock(&q->w.mu);
	while (!q->failure && q->produced - q->consumed == HQ_SLOTS)
		pthread_cond_wait(&q->w.cv, &q->w.mu);
	if (q->failure) {
		pthread_mutex_unlock(&q->w.mu);
		return NULL;
	}
	pthread_mutex_unlock(&q->w.mu);
	c = &q->chunk[q->produced % HQ_SLOTS];
	c->len = 0;
	c->nseg = 0;
	q->filling = true;
	return c;
}

static void hand_over(struct hashq *q)
{
	pthread_mutex_lock(&q->w.mu);
	q->produced++;
	q->filling = false;
	pthread_cond_broadcast(&q->w.cv);
	pthread_mutex_unlock(&q->w.mu);
}

/* A new segment of entry i in c; false when c has no room for one. */
static bool new_seg(struct hq_chunk *c, size_t i)
{
	if (c->nseg == HQ_SEGS)
		return false;
	c->seg[c->nseg++] = (struct hq_seg){i, 0, false};
	return true;
}

int hashq_add(struct hashq *q, size_t i, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		struct hq_chunk *c = filling(q);
		struct hq_seg *g;
		size_t n;

		if (!c)
			return failure(q);
		if (c->len == HQ_CHUNK) {
			hand_over(q);
			continue;
		}
		g = c->nseg ? &c->seg[c->nseg - 1] : NULL;
		if (!g || g->entry != i || g->last) {
			if (!new_seg(c, i)) {
				hand_over(q);
				continue;
			}
			g = &c->seg[c->nseg - 1];
		}
		n = HQ_CHUNK - c->len;
		if (n > len)
			n = len;
		memcpy(c->data + c->len, p, n);
		c->len += n;
		g->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

int hashq_end(struct hashq *q, size_t i)
{
	for (;;) {
		struct hq_chunk *c = filling(q);
		struct hq_seg *g;

		if (!c)
			return failure(q);
		g = c->nseg ? &c->seg[c->nseg - 1] : NULL;
		if (g && g->entry == i && !g->last) {
			g->last = true;
			return 0;
		}
		if (new_seg(c, i)) {
			c->seg[c->nseg - 1].last = true;
			return 0;
		}
		hand_over(q);
	}
}

int hashq_finish(struct hashq *q)
{
	bool failed;

	if (q->filling) {
		if (q->chunk[q->produced % HQ_SLOTS].nseg)
			hand_over(q);
		else
			q->filling = false;
	}
	pthread_mutex_lock(&q->w.mu);
	while (!q->failure && q->consumed != q->produced)
		pthread_cond_wait(&q->w.cv, &q->w.mu);
	failed = q->failure != NULL;
	pthread_mutex_unlock(&q->w.mu);
	return failed ? failure(q) : 0;
}

void hashq_free(struct hashq *q)
{
	size_t i;

	if (!q)
		return;
	worker_stop(&q->w);
	for (i = 0; i < HQ_SLOTS; i++)
		free(q->chunk[i].data);
	free(q->failure);
	free(q);
}
