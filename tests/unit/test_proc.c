/*
 * test_proc: a command under proc's lifeline leader.  Its exit status and
 * fatal signal come back as they were, output is captured, a missing
 * program is 127, a deadline kills the whole group, the leader and the
 * command hold none of our descriptors, and (the point of the module) a
 * tool SIGKILLed while its command runs leaves no process of that command's
 * group behind, background children included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run spec to its end: its wait status. */
static int run(const struct proc_spec *spec)
{
	struct proc p;
	int status = -1;

	assert_int_equal(proc_start(&p, spec), 0);
	assert_true(proc_wait(&p, 0, &status));
	proc_release(&p);
	return status;
}

static void status_comes_back(void **state)
{
	const char *const ok[] = {"sh", "-c", "exit 3", NULL};
	const char *const missing[] = {"msgw-no-such-program", NULL};
	struct proc_spec a = {.argv = ok}, b = {.argv = missing};
	struct proc_spec c = {.shell = "kill -TERM $$"};
	int status;

	(void)state;
	status = run(&a);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	status = run(&b);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 127);
	status = run(&c);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

static char *read_all(int fd)
{
	struct buf b;
	char chunk[256];
	ssize_t n;

	buf_init(&b);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	return buf_detach(&b, NULL);
}

static void output_captured(void **state)
{
	const char *const env[] = {"MSGW_PROC_T=forty-two", NULL};
	struct proc_spec spec = {
	    .shell = "echo out $MSGW_PROC_T; echo err >&2", .env = env, .capture = true};
	struct proc p;
	char *out, *err;
	int status = -1;

	(void)state;
	assert_int_equal(proc_start(&p, &spec), 0);
	out = read_all(p.out);
	err = read_all(p.err);
	assert_true(proc_wait(&p, 0, &status));
	proc_release(&p);
	assert_string_equal(out, "out forty-two\n");
	assert_string_equal(err, "err\n");
	assert_null(getenv("MSGW_PROC_T")); /* set in the command only */
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(out);
	free(err);
}

/* Whether no process of group pgid is left, reaping what we adopted. */
static bool group_gone(pid_t pgid, int ms)
{
	int64_t end = time_now_ms() + ms;

	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (kill(-pgid, 0) < 0 && errno == ESRCH)
			return true;
		if (time_now_ms() >= end)
			return false;
		usleep(20000);
	}
}

static void deadline_kills_group(void **state)
{
	struct proc_spec spec = {.shell = "sleep 30 & sleep 30"};
	struct proc p;
	int status = -1;
	int64_t t0 = time_now_ms();
	pid_t pgid;

	(void)state;
	assert_int_equal(proc_start(&p, &spec), 0);
	pgid = p.pid;
	assert_false(proc_wait(&p, time_now_ms() + 300, &status));
	proc_kill(&p);
	proc_release(&p);
	assert_true(time_now_ms() - t0 < 5000);
	assert_true(group_gone(pgid, 2000));
}

/* The leader and the command close every descriptor of ours: a pipe whose
 * write end we leave open (not close-on-exec) reads EOF once we close it,
 * while the command still runs. */
static void holds_no_descriptor(void **state)
{
	struct proc_spec spec = {.shell = "sleep 30"};
	struct proc p;
	int fd[2], status;
	char c;

	(void)state;
	assert_int_equal(pipe(fd), 0);
	assert_int_equal(proc_start(&p, &spec), 0);
	close(fd[1]);
	assert_int_equal(read(fd[0], &c, 1), 0);
	close(fd[0]);
	assert_false(proc_wait(&p, time_now_ms() + 50, &status));
	proc_kill(&p);
	proc_release(&p);
}

/* The tool: start the group, wait until the background sleep runs, say
 * the group's id and the sleep's pid on fd, then wait to be killed. */
static void tool(int fd, const char *marker)
{
	char *cmd = xasprintf("sleep 30 & echo $! >%s.tmp && mv %s.tmp %s; sleep 30", marker,
			      marker, marker);
	struct proc_spec spec = {.shell = cmd};
	struct proc p;
	char *bg = NULL;
	size_t len;
	int64_t end = time_now_ms() + 5000;

	if (proc_start(&p, &spec) < 0)
		_exit(1);
	while (read_whole_file(&bg, &len, marker) != 0 && time_now_ms() < end)
		usleep(10000);
	dprintf(fd, "%d %d\n", (int)p.pid, bg ? atoi(bg) : -1);
	for (;;)
		pause();
}

static void killed_tool_leaves_nothing(void **state)
{
	char marker[] = "/tmp/msgw-test-proc-XXXXXX";
	int fd[2], pgid = -1, bg = -1, mfd;
	char line[64] = "";
	pid_t pid;
	FILE *f;

	(void)state;
	mfd = mkstemp(marker);
	assert_true(mfd >= 0);
	close(mfd);
	unlink(marker);
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fd[0]);
		tool(fd[1], marker);
	}
	close(fd[1]);
	f = fdopen(fd[0], "r");
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_int_equal(sscanf(line, "%d %d", &pgid, &bg), 2);
	assert_true(pgid > 0 && bg > 0);
	assert_int_equal(kill(bg, 0), 0); /* the background sleep runs */
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_true(group_gone(pgid, 5000));
	assert_true(kill(bg, 0) < 0 && errno == ESRCH);
	unlink(marker);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(status_comes_back),	  cmocka_unit_test(output_captured),
	    cmocka_unit_test(deadline_kills_group),	  cmocka_unit_test(holds_no_descriptor),
	    cmocka_unit_test(killed_tool_leaves_nothing),
	};

	/* what a killed group leaves is ours to reap, not init's: a zombie
	 * would still count as a member of its group */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
