/*
 * test_util: helpers the unit tests share: making and removing a
 * fixture's scratch directory tree, running a shell command that must
 * succeed.  Include after cmocka.h.
 */
#ifndef MSGW_TEST_UTIL_H
#define MSGW_TEST_UTIL_H

#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag != FTW_SL)
		chmod(path, 0700); /* a test may have left it read-only */
	return remove(path);
}

/* Remove dir and everything below it, without following links (their
 * targets are never touched). */
static inline void test_rmtree(const char *dir)
{
	nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new scratch directory $TMPDIR/name.XXXXXX (or under /tmp), its real
 * path in out. */
static inline void test_mkdtemp(char out[PATH_MAX], const char *name)
{
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	snprintf(tmpl, sizeof(tmpl), "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, out));
}

/* Run a shell command (printf-style) that must exit 0. */
static inline void test_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void test_run(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

#endif
