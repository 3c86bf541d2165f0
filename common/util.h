/*
 * util: small helpers every module uses: checked allocation, growing
 * buffers, string building.  Allocation failure aborts the process (there is
 * no sensible recovery from it in a tool like this, as git's xmalloc).
 */
#ifndef MSGW_UTIL_H
#define MSGW_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* a, b and c joined (malloc'd): xasprintf("%s%s%s") for path joins in loops
 * over every entry of a walk, without printf's cost. */
char *xconcat3(const char *a, const char *b, const char *c);

/* A growing byte buffer; always NUL-terminated after buf_init. */
struct buf {
	char *data;
	size_t len, cap;
};

void buf_init(struct buf *b);
/* Room for extra more bytes, so a buffer of known size grows once. */
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_release(struct buf *b);
/* Hand the data to the caller (who frees it) and reset b. */
char *buf_detach(struct buf *b, size_t *len_out);

/* Lowercase hex of n bytes into out (2n+1 chars). */
void hex_encode(char *out, const unsigned char *in, size_t n);
/* Parse 2n hex chars into out; 0 or -1. */
int hex_decode(unsigned char *out, const char *in, size_t n);
/* Whether s starts with n lower-case hex digits (as git writes ids). */
bool hex_is_lower(const char *s, size_t n);

/* RFC 3339 UTC ("2026-11-28T15:04:02Z") of t into out (at least 21 bytes). */
void time_rfc3339(char *out, size_t len, int64_t t);
/* Parse that form back; 0 or -1. */
int time_parse_rfc3339(int64_t *out, const char *s);

/* A duration for people: "42s", "19m", "3h12m", "2d4h". */
void duration_human(char *out, size_t len, int64_t seconds);

/* Monotonic clock in milliseconds. */
int64_t time_now_ms(void);

/* Read a whole (small) file into a NUL-terminated malloc'd buffer: 0, or
 * the errno of the failure (nothing allocated). */
int read_whole_file(char **out, size_t *len_out, const char *path);

/* fsync a directory (so a rename or new name in it is durable): 0, or
 * MSGW_ERR with a message naming it. */
int fsync_dir(const char *path);

/* Wipe memory that held a secret. */
void secure_wipe(void *p, size_t n);

/* A fault point of the test build (MSGW_TESTING): MSGW_FAULT=point kills
 * the process there with SIGKILL, as a crash or power cut would; the
 * crash-safety tests name apply's and prune's points.  A no-op in release
 * builds. */
void fault_point(const char *point);

#endif
