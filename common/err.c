/*
 * err: a per-thread buffer for the last error message; see err.h.
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

static __thread char last_msg[1024];

static void vset(const char *fmt, va_list ap)
{
	vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
}

int err_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	return code;
}

int err_set_errno(int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	len = strlen(last_msg);
	if (len < sizeof(last_msg))
		snprintf(last_msg + len, sizeof(last_msg) - len, ": %s", strerror(errnum));
	return code;
}

int err_wrap(int code, const char *fmt, ...)
{
	char prefix[512], old[sizeof(last_msg)];
	va_list ap;

	memcpy(old, last_msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(last_msg, sizeof(last_msg), "%.511s: %.510s", prefix,
		 old[0] ? old : "unknown error");
	return code;
}

const char *err_last(void)
{
	return last_msg[0] ? last_msg : "unknown error";
}

void err_clear(void)
{
	last_msg[0] = '\0';
}

int err_exit_code(int code)
{
	switch (code) {
	case MSGW_OK:
		return 0;
	case MSGW_ECONFIG:
		return 2;
	case MSGW_EUNSAFE:
		return 3;
	case MSGW_EHEALTH:
		return 4;
	case MSGW_EROLLBACK:
		return 5;
	case MSGW_ELOCKED:
		return 6;
	default:
		return 1;
	}
}
