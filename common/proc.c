/*
 * proc: a command under a lifeline leader (see proc.h for the contract).
 */
#include "proc.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The command itself, in the leader's group: stdin /dev/null, stdout and
 * stderr to out and err (our stderr when -1). */
static void proc_exec(const struct proc_spec *spec, int out, int err)
{
	int devnull = open("/dev/null", O_RDONLY);
	const char *const *e;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	dup2(devnull, 0);
	dup2(out >= 0 ? out : 2, 1);
	if (err >= 0)
		dup2(err, 2);
	if (out > 2)
		close(out);
	if (err > 2)
		close(err);
	for (e = spec->env; e && *e; e++)
		putenv((char *)*e);
	if (spec->argv)
		execvp(spec->argv[0], (char *const *)spec->argv);
	else
		execl("/bin/sh", "sh", "-c", spec->shell, (char *)NULL);
	_exit(127);
}

/* Close every descriptor above 2 but a, b and c (-1: none): the leader
 * lives as long as the command and must not hold our locks, files or
 * connections. */
static void proc_keep_only(int a, int b, int c)
{
	int keep[3] = {a, b, c}, i, j, from = 3;

	for (i = 0; i < 3; i++)
		for (j = i + 1; j < 3; j++)
			if (keep[j] < keep[i]) {
				int t = keep[i];

				keep[i] = keep[j];
				keep[j] = t;
			}
	for (i = 0; i < 3; i++) {
		if (keep[i] > from)
			close_range((unsigned)from, (unsigned)keep[i] - 1, 0);
		if (keep[i] >= from)
			from = keep[i] + 1;
	}
	close_range((unsigned)from, ~0U, 0);
}

static void proc_on_chld(int sig)
{
	(void)sig;
}

/* The command's end: exit as it did, or die of its signal. */
static void proc_leave_as(int status)
{
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		raise(WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

/*
 * The process between us and the command: it leads the command's process
 * group and holds the read end of the lifeline.  When the lifeline reads
 * EOF (we are gone) it kills its whole group, itself included; otherwise
 * it waits for the command and exits as it did.
 */
static void proc_leader(const struct proc_spec *spec, int out, int err, int life)
{
	struct sigaction sa = {0};
	sigset_t block, wait_mask;
	pid_t pid;
	int status;

	setpgid(0, 0);
	proc_keep_only(out, err, life);
	/* our handlers (the scheduler's SIGTERM flag) must not keep the leader
	 * alive when its group is told to end */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sa.sa_handler = proc_on_chld;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGCHLD);
	pid = fork();
	if (pid == 0) {
		close(life);
		proc_exec(spec, out, err);
	}
	if (out >= 0)
		close(out);
	if (err >= 0)
		close(err);
	if (pid < 0)
		_exit(127);
	for (;;) {
		struct pollfd p = {life, POLLIN, 0};

		if (waitpid(pid, &status, WNOHANG) == pid)
			proc_leave_as(status);
		if (ppoll(&p, 1, NULL, &wait_mask) > 0 && (p.revents & (POLLIN | POLLHUP)))
			kill(0, SIGKILL); /* the lifeline broke: we are gone */
	}
}

static void proc_close_pair(int fd[2])
{
	if (fd[0] >= 0)
		close(fd[0]);
	if (fd[1] >= 0)
		close(fd[1]);
}

static const char *proc_name(const struct proc_spec *spec)
{
	return spec->argv ? spec->argv[0] : spec->shell;
}

int proc_start(struct proc *p, const struct proc_spec *spec)
{
	int so[2] = {-1, -1}, se[2] = {-1, -1}, life[2] = {-1, -1};
	int rc = 0;
	pid_t pid;

	p->pid = -1;
	p->out = p->err = p->life = -1;
	if ((spec->capture && (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, so) < 0 ||
			       socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, se) < 0)) ||
	    pipe2(life, O_CLOEXEC) < 0) {
		rc = err_set_errno(MSGW_ERR, errno, "cannot run '%s'", proc_name(spec));
		goto cleanup;
	}
	pid = fork();
	if (pid == 0) {
		close(life[1]);
		if (spec->capture)
			close(so[0]), close(se[0]);
		proc_leader(spec, so[1], se[1], life[0]);
	}
	if (pid < 0) {
		rc = err_set_errno(MSGW_ERR, errno, "cannot run '%s'", proc_name(spec));
		goto cleanup;
	}
	setpgid(pid, pid);
	p->pid = pid;
	p->out = so[0], p->err = se[0], p->life = life[1];
	so[0] = se[0] = life[1] = -1;
cleanup:
	proc_close_pair(so);
	proc_close_pair(se);
	proc_close_pair(life);
	return rc;
}

bool proc_wait(struct proc *p, int64_t deadline, int *status)
{
	for (;;) {
		pid_t r = waitpid(p->pid, status, deadline ? WNOHANG : 0);

		if (r == p->pid)
			return true;
		if (r < 0 && errno != EINTR)
			return true; /* nothing to wait for */
		if (r == 0 && time_now_ms() >= deadline)
			return false;
		if (r == 0)
			usleep(20000);
	}
}

void proc_kill(struct proc *p)
{
	int i, status;

	kill(-p->pid, SIGTERM);
	for (i = 0; i < 20; i++) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			kill(-p->pid, SIGKILL); /* stragglers in the group */
			return;
		}
		usleep(100000);
	}
	kill(-p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
}

void proc_release(struct proc *p)
{
	if (p->pid > 0)
		kill(-p->pid, SIGKILL); /* nothing of ours may linger */
	if (p->out >= 0)
		close(p->out);
	if (p->err >= 0)
		close(p->err);
	if (p->life >= 0)
		close(p->life);
	p->pid = -1;
	p->out = p->err = p->life = -1;
}
