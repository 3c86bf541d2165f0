/*
 * service: the local backend of service commands (fork, /bin/sh -c, own
 * process group, timeout kills the group) and the health check, which works
 * the same for every backend through the ops table.
 */
#include "service.h"
#include "err.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAPTURE_MAX (64 * 1024)

static service_remote_opener remote_opener;

void service_set_remote_opener(service_remote_opener opener)
{
	remote_opener = opener;
}

void service_result_release(struct service_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static void capture(int fd, struct buf *b)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n > 0 && b->len < CAPTURE_MAX)
		buf_add(b, chunk, (size_t)n);
}

/* Read both pipes until they close or the deadline passes. */
static bool pump(int fdo, int fde, struct buf *out, struct buf *err, int64_t deadline)
{
	struct pollfd p[2] = {{fdo, POLLIN, 0}, {fde, POLLIN, 0}};

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		/* 64-bit until clamped: a long timeout overflows poll's int */
		int64_t left = deadline ? deadline - time_now_ms() : 1000;
		int i;

		if (deadline && left <= 0)
			return false;
		if (poll(p, 2, left > 1000 ? 1000 : (int)left) < 0 && errno != EINTR)
			return true;
		for (i = 0; i < 2; i++) {
			if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				char peek;

				if (recv(p[i].fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 0 ||
				    (p[i].revents & (POLLHUP | POLLERR) &&
				     !(p[i].revents & POLLIN))) {
					p[i].fd = -1;
					continue;
				}
				capture(p[i].fd, i ? err : out);
			}
		}
	}
	return true;
}

static void kill_group(pid_t pid)
{
	int i, status;

	kill(-pid, SIGTERM);
	for (i = 0; i < 20; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			kill(-pid, SIGKILL); /* stragglers in the group */
			return;
		}
		usleep(100000);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* Reap pid before deadline (0: none); false when it is still running. */
static bool wait_until(pid_t pid, int *status, int64_t deadline)
{
	for (;;) {
		pid_t r = waitpid(pid, status, deadline ? WNOHANG : 0);

		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return true; /* nothing to wait for */
		if (r == 0 && time_now_ms() >= deadline)
			return false;
		if (r == 0)
			usleep(20000);
	}
}

static void child(const char *command, int out, int err)
{
	int devnull = open("/dev/null", O_RDONLY);
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	dup2(devnull, 0);
	dup2(out, 1);
	dup2(err, 2);
	if (out > 2)
		close(out);
	if (err > 2)
		close(err);
	execl("/bin/sh", "sh", "-c", command, (char *)NULL);
	_exit(127);
}

/* Close every descriptor above 2 but a, b and c: the leader lives as long
 * as the command and must not hold our locks, files or connections. */
static void keep_only(int a, int b, int c)
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

static void on_chld(int sig)
{
	(void)sig;
}

/* The command's end: exit as it did, or die of its signal. */
static void leave_as(int status)
{
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		raise(WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

/*
 * The process between us and the command: it leads the command's process
 * group and holds the read end of the lifeline, a pipe whose write end only
 * we hold.  When we die, killed at any instant, the lifeline reads EOF and
 * the leader kills its whole group, itself included, so nothing we started
 * outlives us.  Otherwise it waits for the command and exits as it did.
 */
static void leader(const char *command, int so[2], int se[2], int life[2])
{
	struct sigaction sa = {0};
	sigset_t block, wait_mask;
	pid_t pid;
	int status;

	setpgid(0, 0);
	close(life[1]);
	close(so[0]), close(se[0]);
	keep_only(so[1], se[1], life[0]);
	sa.sa_handler = on_chld;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGCHLD);
	pid = fork();
	if (pid == 0) {
		close(life[0]);
		child(command, so[1], se[1]);
	}
	close(so[1]), close(se[1]);
	if (pid < 0)
		_exit(127);
	for (;;) {
		struct pollfd p = {life[0], POLLIN, 0};

		if (waitpid(pid, &status, WNOHANG) == pid)
			leave_as(status);
		if (ppoll(&p, 1, NULL, &wait_mask) > 0 && (p.revents & (POLLIN | POLLHUP)))
			kill(0, SIGKILL); /* the lifeline broke: we are gone */
	}
}

static int local_run(void *ctx, const char *command, int timeout, struct service_result *out)
{
	struct buf o, e;
	int so[2], se[2], life[2], status = 0;
	int64_t deadline;
	bool done;
	pid_t pid;

	(void)ctx;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, so) < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot run '%s'", command);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, se) < 0) {
		close(so[0]), close(so[1]);
		return err_set_errno(MSGW_ERR, errno, "cannot run '%s'", command);
	}
	if (pipe2(life, O_CLOEXEC) < 0) {
		close(so[0]), close(so[1]), close(se[0]), close(se[1]);
		return err_set_errno(MSGW_ERR, errno, "cannot run '%s'", command);
	}
	pid = fork();
	if (pid == 0)
		leader(command, so, se, life);
	close(so[1]), close(se[1]), close(life[0]);
	if (pid < 0) {
		close(so[0]), close(se[0]), close(life[1]);
		return err_set_errno(MSGW_ERR, errno, "cannot run '%s'", command);
	}
	setpgid(pid, pid);
	buf_init(&o), buf_init(&e);
	deadline = timeout > 0 ? time_now_ms() + timeout * 1000LL : 0;
	done = pump(so[0], se[0], &o, &e, deadline);
	close(so[0]), close(se[0]);
	memset(out, 0, sizeof(*out));
	/* the pipes may close long before the command ends (exec >/dev/null):
	 * the deadline still applies to the wait */
	if (done && !wait_until(pid, &status, deadline))
		done = false;
	if (!done) {
		kill_group(pid);
		out->timed_out = true;
		out->status = -1;
	} else {
		out->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		kill(-pid, SIGKILL); /* nothing of ours may linger, daemons detach first */
	}
	close(life[1]);
	out->out = buf_detach(&o, NULL);
	out->err = buf_detach(&e, NULL);
	return 0;
}

static int local_probe(void *ctx, const char *host, int port, int timeout_ms)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	char portstr[16];
	int rc = MSGW_ERR;

	(void)ctx;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0)
		return MSGW_ERR;
	for (ai = res; ai && rc; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct pollfd p = {fd, POLLOUT, 0};
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (fd < 0)
			continue;
		if ((connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		     (errno == EINPROGRESS && poll(&p, 1, timeout_ms) == 1 &&
		      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)))
			rc = 0;
		close(fd);
	}
	freeaddrinfo(res);
	return rc;
}

static void local_free(void *ctx)
{
	(void)ctx;
}

static const struct service_host_ops local_ops = {local_run, local_probe, local_free};

int service_host_local(struct service_host **out)
{
	struct service_host *h = xcalloc(1, sizeof(*h));

	h->ops = &local_ops;
	h->name = xstrdup("local");
	*out = h;
	return 0;
}

int service_host_open(struct service_host **out, const char *location,
		      const struct fsys_open_opts *opts)
{
	*out = NULL;
	if (strncmp(location, "ssh://", 6) == 0) {
		if (!remote_opener)
			return err_set(MSGW_ECONFIG,
				       "'%s': ssh locations are not supported in this build",
				       location);
		return remote_opener(out, location, opts);
	}
	return service_host_local(out);
}

void service_host_free(struct service_host *h)
{
	if (!h)
		return;
	if (h->ops && h->ops->free)
		h->ops->free(h->ctx);
	free(h->name);
	free(h);
}

int service_run(struct service_host *h, const char *command, int timeout,
		struct service_result *out)
{
	log_info("%s: running '%s'", h->name, command);
	return h->ops->run(h->ctx, command, timeout, out);
}

static void first_line(char *dst, size_t len, const char *src)
{
	size_t n = src ? strcspn(src, "\n") : 0;

	snprintf(dst, len, "%.*s", (int)(n < len ? n : len - 1), src ? src : "");
}

int service_run_checked(struct service_host *h, const char *what, const char *command, int timeout)
{
	struct service_result r;
	char line[256];
	int rc = service_run(h, command, timeout, &r);

	if (rc)
		return err_wrap(rc, "%s", what);
	first_line(line, sizeof(line), r.err && *r.err ? r.err : r.out);
	if (r.timed_out)
		rc = err_set(MSGW_ERR, "%s: '%s' timed out after %d s (killed)", what, command,
			     timeout);
	else if (r.status != 0)
		rc = err_set(MSGW_ERR, "%s: '%s' exited with status %d%s%s", what, command,
			     r.status, line[0] ? ": " : "", line);
	service_result_release(&r);
	return rc;
}

/*
 * What the status command says: 1 running (exit 0), 0 stopped (any other
 * exit status a command gives), -1 cannot tell (it could not run, timed
 * out, died of a signal, or the shell could not find or run it: 126, 127).
 */
static int ask_status(struct service_host *h, const char *status, int timeout)
{
	struct service_result r;
	int says = -1;

	if (service_run(h, status, timeout, &r))
		return -1;
	if (!r.timed_out && r.status == 0)
		says = 1;
	else if (!r.timed_out && r.status > 0 && r.status != 126 && r.status != 127)
		says = 0;
	service_result_release(&r);
	return says;
}

int service_is_running(struct service_host *h, const char *status, int timeout)
{
	if (!status || !*status)
		return 0;
	return ask_status(h, status, timeout > 0 ? timeout : 60) == 1;
}

/* Poll the status command every 250 ms until it says want (1 running, 0
 * stopped) or timeout seconds have passed: 0, or MSGW_ERR. */
static int await_status(struct service_host *h, const char *what, const char *cmd,
			const char *status, int want, int timeout)
{
	int64_t deadline = time_now_ms() + (timeout > 0 ? timeout : 60) * 1000LL;
	int says;

	for (;;) {
		int64_t left = (deadline - time_now_ms() + 999) / 1000;

		says = ask_status(h, status, left > 1 ? (int)(left > INT_MAX ? INT_MAX : left) : 1);
		if (says == want)
			return 0;
		if (time_now_ms() >= deadline)
			break;
		usleep(250000);
	}
	return err_set(MSGW_ERR, "%s: '%s' exited 0 but status '%s' %s after %d s", what, cmd,
		       status,
		       says < 0	   ? "could not tell whether the service runs"
		       : want == 0 ? "still reports the service running"
				   : "still reports the service stopped",
		       timeout > 0 ? timeout : 60);
}

int service_stop(struct service_host *h, const char *stop, const char *status, int timeout)
{
	int rc = service_run_checked(h, "stop", stop, timeout);

	if (!rc && status && *status)
		rc = await_status(h, "stop", stop, status, 0, timeout);
	return rc;
}

int service_start(struct service_host *h, const char *start, const char *status, int timeout)
{
	int rc = service_run_checked(h, "start", start, timeout);

	if (!rc && status && *status)
		rc = await_status(h, "start", start, status, 1, timeout);
	return rc;
}

int service_parse_tcp(const char *health, char **host_out, int *port_out)
{
	const char *p, *colon;
	char *end;
	long port;

	*host_out = NULL;
	if (strncmp(health, "tcp:", 4) != 0)
		return 0;
	p = health + 4;
	colon = strrchr(p, ':');
	port = strtol(colon ? colon + 1 : p, &end, 10);
	if (*end || port < 1 || port > 65535 || end == (colon ? colon + 1 : p))
		return err_set(MSGW_ECONFIG,
			       "bad health check '%s': expected tcp:PORT or tcp:HOST:PORT", health);
	*host_out = colon ? xstrndup(p, (size_t)(colon - p)) : xstrdup("127.0.0.1");
	*port_out = (int)port;
	return 1;
}

static int health_once(struct service_host *h, const char *health, const char *host, int port,
		       int timeout, char *why, size_t whylen)
{
	struct service_result r;
	int rc;

	if (host) {
		rc = h->ops->tcp_probe(h->ctx, host, port, 1000);
		if (rc)
			snprintf(why, whylen, "nothing accepts connections on %s:%d", host, port);
		return rc;
	}
	rc = service_run(h, health, timeout, &r);
	if (rc) {
		snprintf(why, whylen, "%s", err_last());
		return rc;
	}
	if (r.status != 0) {
		snprintf(why, whylen, "'%s' exited with status %d", health, r.status);
		rc = MSGW_ERR;
	}
	service_result_release(&r);
	return rc;
}

int service_health(struct service_host *h, const char *health, int timeout)
{
	int64_t deadline = time_now_ms() + (timeout > 0 ? timeout : 60) * 1000LL;
	char *host = NULL, why[512] = "no attempt";
	int port = 0, rc;

	if (!health || !*health)
		return 0;
	rc = service_parse_tcp(health, &host, &port);
	if (rc < 0)
		return rc;
	for (;;) {
		int left = (int)((deadline - time_now_ms()) / 1000);

		if (health_once(h, health, host, port, left > 1 ? left : 1, why, sizeof(why)) ==
		    0) {
			rc = 0;
			break;
		}
		if (time_now_ms() >= deadline) {
			rc = err_set(MSGW_EHEALTH, "health check '%s' failed for %d s: %s", health,
				     timeout, why);
			break;
		}
		usleep(250000);
	}
	free(host);
	return rc;
}
