/*
 * test_lock: the repository lock.  The holder's record (host, pid, boot
 * id, since); a second acquire from another open file, in this process or
 * another, fails at once with MSGW_ELOCKED naming pid and host; release
 * lets the next one in; a record left by a dead process (another host, a
 * dead pid on this boot, a holder killed with SIGKILL) is taken over with
 * a warning naming it; a leftover record of a live process is taken over
 * silently; errors opening the file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "lock.h"
#include "util.h"
#include "test_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16]; /* dir/msgw.lock */
	char errfile[PATH_MAX + 16];
	char host[256];
	struct lock *l, *l2;
	int saved_stderr;
};

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_lock.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, f->dir));
	snprintf(f->path, sizeof(f->path), "%s/msgw.lock", f->dir);
	snprintf(f->errfile, sizeof(f->errfile), "%s/stderr", f->dir);
	gethostname(f->host, sizeof(f->host) - 1);
	f->saved_stderr = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	lock_release(f->l);
	lock_release(f->l2);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	struct buf b;
	char chunk[512];
	size_t n;

	buf_init(&b);
	if (fp) {
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			buf_add(&b, chunk, n);
		fclose(fp);
	}
	return buf_detach(&b, NULL);
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Send stderr to f->errfile until stderr_text(). */
static void capture_stderr(struct fixture *f)
{
	int fd = open(f->errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	f->saved_stderr = dup(2);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
}

static char *stderr_text(struct fixture *f)
{
	fflush(stderr);
	assert_int_equal(dup2(f->saved_stderr, 2), 2);
	close(f->saved_stderr);
	f->saved_stderr = -1;
	return slurp(f->errfile);
}

static void boot_id(char *out, size_t len)
{
	FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "r");

	snprintf(out, len, "unknown");
	if (fp) {
		if (fgets(out, (int)len, fp))
			out[strcspn(out, "\n")] = '\0';
		fclose(fp);
	}
}

/* The pid of a process that has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return pid;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_acquire_writes_owner(void **state)
{
	struct fixture *f = *state;
	char *text, want[512], boot[128];
	struct stat st;

	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	assert_non_null(f->l);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	text = slurp(f->path);
	boot_id(boot, sizeof(boot));
	snprintf(want, sizeof(want), "%s %ld %s ", f->host, (long)getpid(), boot);
	assert_memory_equal(text, want, strlen(want));
	assert_non_null(strstr(text, "Z\n")); /* since: RFC 3339 UTC */
	free(text);
}

static void test_second_acquire_same_process(void **state)
{
	struct fixture *f = *state;
	char want[512];

	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	f->l2 = (struct lock *)1;
	assert_int_equal(lock_acquire(&f->l2, f->path, "repository"), MSGW_ELOCKED);
	assert_null(f->l2);
	snprintf(want, sizeof(want), "repository is locked by pid %ld on %s since ", (long)getpid(),
		 f->host);
	assert_contains(err_last(), want);
	assert_contains(err_last(), f->path);
	/* the holder's record is untouched by the failed attempt */
	{
		char *text = slurp(f->path);

		snprintf(want, sizeof(want), "%s %ld ", f->host, (long)getpid());
		assert_memory_equal(text, want, strlen(want));
		free(text);
	}
}

static void test_release_lets_next_in(void **state)
{
	struct fixture *f = *state;
	char *text, *err;

	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	lock_release(f->l);
	f->l = NULL;
	text = slurp(f->path);
	assert_string_equal(text, ""); /* a released lock holds no record */
	free(text);
	capture_stderr(f);
	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	err = stderr_text(f);
	assert_string_equal(err, ""); /* nothing stale about it */
	free(err);
	lock_release(NULL);
}

static void test_stale_other_host(void **state)
{
	struct fixture *f = *state;
	char *err, *text, want[512];

	write_text(f->path, "deadhost 12345 0b5e4c1a-boot 2020-01-01T00:00:00Z\n");
	capture_stderr(f);
	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	err = stderr_text(f);
	assert_contains(err, "cleared a stale repository lock left by pid 12345 on deadhost");
	assert_contains(err, f->path);
	free(err);
	text = slurp(f->path);
	snprintf(want, sizeof(want), "%s %ld ", f->host, (long)getpid());
	assert_memory_equal(text, want, strlen(want));
	free(text);
}

static void test_stale_dead_pid(void **state)
{
	struct fixture *f = *state;
	char record[512], boot[128], *err, want[512];
	pid_t pid = dead_pid();

	boot_id(boot, sizeof(boot));
	snprintf(record, sizeof(record), "%s %ld %s 2026-01-01T00:00:00Z\n", f->host, (long)pid,
		 boot);
	write_text(f->path, record);
	capture_stderr(f);
	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	err = stderr_text(f);
	snprintf(want, sizeof(want), "left by pid %ld on %s", (long)pid, f->host);
	assert_contains(err, "warning: cleared a stale repository lock");
	assert_contains(err, want);
	free(err);
}

static void test_stale_previous_boot(void **state)
{
	struct fixture *f = *state;
	char record[512], *err;

	/* our own pid, but recorded on another boot */
	snprintf(record, sizeof(record), "%s %ld not-this-boot 2020-01-01T00:00:00Z\n", f->host,
		 (long)getpid());
	write_text(f->path, record);
	capture_stderr(f);
	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	err = stderr_text(f);
	assert_contains(err, "cleared a stale repository lock");
	free(err);
}

/* A record naming a live process that holds no flock is only a leftover
 * (the pid was reused): taken over without a word. */
static void test_leftover_of_live_pid(void **state)
{
	struct fixture *f = *state;
	char record[512], boot[128], *err;

	boot_id(boot, sizeof(boot));
	snprintf(record, sizeof(record), "%s %ld %s 2026-01-01T00:00:00Z\n", f->host,
		 (long)getppid(), boot);
	write_text(f->path, record);
	capture_stderr(f);
	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	err = stderr_text(f);
	assert_string_equal(err, "");
	free(err);
}

/* Another process holds it; once that process is killed, the kernel drops
 * its flock and the next run takes over with a warning. */
static void test_other_process_then_killed(void **state)
{
	struct fixture *f = *state;
	int ready[2], status;
	char c, want[512], *err;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct lock *l = NULL;

		close(ready[0]);
		if (lock_acquire(&l, f->path, "repository") != 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);

	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), MSGW_ELOCKED);
	assert_null(f->l);
	snprintf(want, sizeof(want), "repository is locked by pid %ld on %s", (long)pid, f->host);
	assert_contains(err_last(), want);

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	capture_stderr(f);
	assert_int_equal(lock_acquire(&f->l, f->path, "repository"), 0);
	err = stderr_text(f);
	snprintf(want, sizeof(want), "cleared a stale repository lock left by pid %ld", (long)pid);
	assert_contains(err, want);
	free(err);
}

/* Held by someone who wrote no record (flock(1) from a shell). */
static void test_held_without_record(void **state)
{
	struct fixture *f = *state;
	int fd = open(f->path, O_RDWR | O_CREAT, 0600);

	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(lock_acquire(&f->l, f->path, "target"), MSGW_ELOCKED);
	assert_contains(err_last(), "target is locked by another run");
	assert_contains(err_last(), f->path);
	close(fd);
	assert_int_equal(lock_acquire(&f->l, f->path, "target"), 0);
}

static void test_open_error(void **state)
{
	struct fixture *f = *state;
	char *p = xasprintf("%s/missing/msgw.lock", f->dir);

	f->l = (struct lock *)1;
	assert_int_equal(lock_acquire(&f->l, p, "repository"), MSGW_ERR);
	assert_null(f->l);
	assert_contains(err_last(), "cannot open lock");
	assert_contains(err_last(), p);
	assert_contains(err_last(), "No such file or directory");
	free(p);
}

/* The one name of a repository's lock file, the one stock tools and the
 * tests hold with flock(1). */
static void test_repo_path(void **state)
{
	char *p = lock_repo_path("/srv/msgw-repo.git");

	(void)state;
	assert_string_equal(p, "/srv/msgw-repo.git/msgw.lock");
	free(p);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_acquire_writes_owner),     T(test_second_acquire_same_process),
	    T(test_release_lets_next_in),     T(test_stale_other_host),
	    T(test_stale_dead_pid),	      T(test_stale_previous_boot),
	    T(test_leftover_of_live_pid),     T(test_other_process_then_killed),
	    T(test_held_without_record),      T(test_open_error),
	    cmocka_unit_test(test_repo_path),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
