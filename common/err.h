/*
 * err: the error codes every common/ function returns, and the last error
 * message the caller can fetch.
 *
 * A function that can fail returns 0 or one of the negative MSGW_E* codes and
 * records a one-line message (lowercase first word, what failed first, paths in
 * quotes) with err_set() or err_set_errno().  Front ends fetch it with
 * err_last() and map the code to an exit status with err_exit_code().
 * The message buffer is per thread.  This module depends on nothing else.
 */
#ifndef MSGW_ERR_H
#define MSGW_ERR_H

#include <stdarg.h>

enum msgw_err {
	MSGW_OK = 0,
	MSGW_ERR = -1,	     /* failed; nothing half-done left behind (exit 1) */
	MSGW_ENOTFOUND = -2, /* a named thing does not exist (exit 1) */
	MSGW_ECONFIG = -3,   /* usage or configuration error (exit 2) */
	MSGW_EUNSAFE = -4,   /* refused by the safety analysis (exit 3) */
	MSGW_EHEALTH = -5,   /* applied, health failed, rolled back (exit 4) */
	MSGW_EROLLBACK = -6, /* rollback failed too: manual action (exit 5) */
	MSGW_ELOCKED = -7,   /* another run holds the lock (exit 6) */
	MSGW_ECORRUPT = -8,  /* data does not match its manifest (exit 1) */
	MSGW_EHOSTILE = -9,  /* an archive entry tries to leave its place (exit 1) */
	MSGW_ECHANGING = -10 /* a file kept changing while it was read (exit 1) */
};

/* Record a message for the last error; returns code so callers can
 * "return err_set(MSGW_ERR, ...)". */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As err_set, with ": " and strerror(errnum) appended. */
int err_set_errno(int code, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefix the current message with more context: "ctx: old message". */
int err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last recorded message, or "unknown error".  Borrowed; valid until the
 * next err_ call on this thread. */
const char *err_last(void);

/* Forget the last message. */
void err_clear(void);

/* Map a MSGW_E* code to the exit status of DESIGN.md's table. */
int err_exit_code(int code);

#endif
