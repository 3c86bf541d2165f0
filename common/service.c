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
		int wait = deadline ? (int)(deadline - time_now_ms()) : 1000;
		int i;

		if (deadline && wait <= 0)
			return false;
		if (poll(p, 2, wait > 1000 ? 1000 : wait) < 0 && errno != EINTR)
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

static void child(const char *command, int so[2], int se[2])
{
	int devnull = open("/dev/null", O_RDONLY);

	setpgid(0, 0);
	dup2(devnull, 0);
	dup2(so[1], 1);
	dup2(se[1], 2);
	close(so[0]), close(se[0]), close(so[1]), close(se[1]);
	execl("/bin/sh", "sh", "-c", command, (char *)NULL);
	_exit(127);
}

static int local_run(void *ctx, const char *command, int timeout, struct service_result *out)
{
	struct buf o, e;
	int so[2], se[2], status = 0;
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
	pid = fork();
	if (pid == 0)
		child(command, so, se);
	close(so[1]), close(se[1]);
	if (pid < 0) {
		close(so[0]), close(se[0]);
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
