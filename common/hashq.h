/*
 * hashq: the sha256 of files checked against their manifest entries on a
 * second thread, so that a reader writing files out (extract) does not
 * hash them itself.  The content is copied into a few chunks of a quarter
 * MiB each, in order; memory stays bounded whatever the files' sizes.
 *
 * One thread gives the content (hashq_add, hashq_end), in manifest order
 * or any order of whole files; the verdict comes from hashq_finish, and a
 * failure found earlier is returned by hashq_add or hashq_end as soon as it
 * is known, so the giver can stop.
 */
#ifndef MSGW_HASHQ_H
#define MSGW_HASHQ_H

#include "manifest.h"

#include <stddef.h>

struct hashq;

/* Start the hashing thread for entries of m (which must outlive q). */
int hashq_start(struct hashq **out, const struct manifest *m);
/* A piece of entry i's content; 0, or the failure already found. */
int hashq_add(struct hashq *q, size_t i, const void *data, size_t len);
/* Entry i's content is complete: its sha256 is to be compared with the
 * manifest's.  0, or the failure already found. */
int hashq_end(struct hashq *q, size_t i);
/* Wait until everything given was hashed: 0, or MSGW_ECORRUPT naming the
 * first entry whose content did not match ("'x': sha256 does not match the
 * manifest"). */
int hashq_finish(struct hashq *q);
/* Stop the thread (after hashq_finish, or to give up) and free q. */
void hashq_free(struct hashq *q);

#endif
