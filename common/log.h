/*
 * log: leveled diagnostics to stderr or syslog, and the front ends' die/warn
 * helpers (like libarchive's lafe_err).  Depends on no other module except
 * err for the message of the last error.
 *
 * common/ code only logs at LOG_DEBUG/INFO/WARN through log_msg(); it never
 * exits.  log_die() is for front ends only.
 */
#ifndef MSGW_LOG_H
#define MSGW_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set the program name printed before each message ("msgw-agent"). */
void log_init(const char *progname);

/* Messages above this level are dropped (default LOG_LVL_WARN... INFO with -v). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Send messages to syslog(3) instead of stderr. */
void log_use_syslog(int on);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* Front ends: print "prog: message" and exit with status. */
void log_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Front ends: print "prog: <err_last()>" and exit with err_exit_code(code). */
void log_die_err(int code) __attribute__((noreturn));

#endif
