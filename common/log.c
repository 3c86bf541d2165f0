/*
 * log: leveled diagnostics.  stderr lines are "prog: message" (errors) or
 * "prog: warning: message"; with syslog the levels map to LOG_ERR..LOG_DEBUG.
 * Nothing here ever writes to stdout.
 */
#include "log.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

static const char *prog = "msgw";
static enum log_level cur_level = LOG_LVL_WARN;
static int syslog_on;

void log_init(const char *progname)
{
	prog = progname;
}

void log_set_level(enum log_level level)
{
	cur_level = level;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

void log_use_syslog(int on)
{
	if (on && !syslog_on)
		openlog(prog, LOG_PID, LOG_DAEMON);
	syslog_on = on;
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	static const char *const tag[] = {"", "warning: ", "", "debug: "};

	if (level > cur_level)
		return;
	if (syslog_on) {
		vsyslog(prio[level], fmt, ap);
		return;
	}
	fprintf(stderr, "%s: %s", prog, tag[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void log_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(status);
}

void log_die_err(int code)
{
	log_die(err_exit_code(code), "%s", err_last());
}
