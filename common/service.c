/*
 * service: the local backend of service commands (/bin/sh -c under proc's
 * lifeline leader, own process group, timeout kills the group) and the health check, which works
 * the same for every backend through the ops table.
 */
#include "service.h"
#include "err.h"
#include "log.h"
#include "proc.h"
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
#include <sys/stat.h>
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

static int local_run(void *ctx, const char *command, int timeout, struct service_result *out)
{
	struct proc_spec spec = {.shell = command, .capture = true};
	struct proc p;
	struct buf o, e;
	int status = 0;
	int64_t deadline;
	bool done;

	(void)ctx;
	if (proc_start(&p, &spec) < 0)
		return MSGW_ERR;
	buf_init(&o), buf_init(&e);
	deadline = timeout > 0 ? time_now_ms() + timeout * 1000LL : 0;
	done = pump(p.out, p.err, &o, &e, deadline);
	close(p.out), close(p.err);
	p.out = p.err = -1;
	memset(out, 0, sizeof(*out));
	/* the pipes may close long before the command ends (exec >/dev/null):
	 * the deadline still applies to the wait */
	if (done && !proc_wait(&p, deadline, &status))
		done = false;
	if (!done) {
		proc_kill(&p);
		out->timed_out = true;
		out->status = -1;
	} else {
		out->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
	proc_release(&p); /* nothing of ours may linger, daemons detach first */
	out->out = buf_detach(&o, NULL);
	out->err = buf_detach(&e, NULL);
	return 0;
}

/* A socket connected to host:port within timeout_ms, non-blocking, or -1. */
static int tcp_connect(const char *host, int port, int timeout_ms)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	char portstr[16];
	int fd = -1;

	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0)
		return -1;
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		struct pollfd p = {-1, POLLOUT, 0};
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		p.fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p.fd < 0)
			continue;
		if ((connect(p.fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		     (errno == EINPROGRESS && poll(&p, 1, timeout_ms) == 1 &&
		      getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)))
			fd = p.fd;
		else
			close(p.fd);
	}
	freeaddrinfo(res);
	return fd;
}

static int local_probe(void *ctx, const char *host, int port, int timeout_ms)
{
	int fd = tcp_connect(host, port, timeout_ms);

	(void)ctx;
	if (fd < 0)
		return MSGW_ERR;
	close(fd);
	return 0;
}

struct sockconn {
	struct service_conn base;
	int fd;
};

/* Wait until fd is ready for events or the deadline passes: 0 when ready. */
static int ready(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = {fd, events, 0};
		int64_t left = deadline - time_now_ms();
		int r;

		if (left <= 0)
			return -1;
		r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int sock_send(struct service_conn *c, const void *buf, size_t len, int64_t deadline)
{
	int fd = ((struct sockconn *)c)->fd;
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n, len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (ready(fd, POLLOUT, deadline))
			return -1;
	}
	return 0;
}

static ssize_t sock_recv(struct service_conn *c, void *buf, size_t len, int64_t deadline)
{
	int fd = ((struct sockconn *)c)->fd;

	for (;;) {
		ssize_t n = recv(fd, buf, len, 0);

		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		if (ready(fd, POLLIN, deadline))
			return -1;
	}
}

static void sock_close(struct service_conn *c)
{
	if (!c)
		return;
	close(((struct sockconn *)c)->fd);
	free(c);
}

static const struct service_conn_ops sock_ops = {sock_send, sock_recv, sock_close};

static int local_connect(void *ctx, const char *host, int port, int timeout_ms,
			 struct service_conn **out)
{
	struct sockconn *c;
	int fd = tcp_connect(host, port, timeout_ms);

	(void)ctx;
	*out = NULL;
	if (fd < 0)
		return MSGW_ERR;
	c = xcalloc(1, sizeof(*c));
	c->base.ops = &sock_ops;
	c->fd = fd;
	*out = &c->base;
	return 0;
}

static void local_free(void *ctx)
{
	(void)ctx;
}

static const struct service_host_ops local_ops = {local_run, local_probe, local_connect,
						  local_free};

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

static const char *const probe_prefix[] = {NULL, "tcp:", "tls:", "pop3:"};

int service_parse_probe(const char *health, enum service_probe_kind *kind_out, char **host_out,
			int *port_out)
{
	const char *p = NULL, *colon;
	char *end;
	long port;
	int k;

	*host_out = NULL;
	*kind_out = SERVICE_PROBE_COMMAND;
	for (k = SERVICE_PROBE_TCP; k <= SERVICE_PROBE_POP3 && !p; k++)
		if (strncmp(health, probe_prefix[k], strlen(probe_prefix[k])) == 0) {
			p = health + strlen(probe_prefix[k]);
			*kind_out = (enum service_probe_kind)k;
		}
	if (!p)
		return SERVICE_PROBE_COMMAND;
	colon = strrchr(p, ':');
	port = strtol(colon ? colon + 1 : p, &end, 10);
	if (*end || port < 1 || port > 65535 || end == (colon ? colon + 1 : p) || colon == p)
		return err_set(MSGW_ECONFIG,
			       "bad health check '%s': expected %sPORT or %sHOST:PORT", health,
			       probe_prefix[*kind_out], probe_prefix[*kind_out]);
	if (colon && *p == '[' && colon[-1] == ']' && colon - p > 2) /* [IPv6] */
		*host_out = xstrndup(p + 1, (size_t)(colon - p - 2));
	else
		*host_out = colon ? xstrndup(p, (size_t)(colon - p)) : xstrdup("127.0.0.1");
	*port_out = (int)port;
	return (int)*kind_out;
}

int service_parse_tcp(const char *health, char **host_out, int *port_out)
{
	enum service_probe_kind kind;
	int rc;

	*host_out = NULL;
	if (strncmp(health, "tcp:", 4) != 0)
		return 0;
	rc = service_parse_probe(health, &kind, host_out, port_out);
	return rc < 0 ? rc : 1;
}

struct check {
	const char *health;
	enum service_probe_kind kind;
	char *host;
	int port;
	const struct service_login *login;
};

/* One probe's time: what is left of the check, at most 5 s. */
static int probe_ms(int seconds_left)
{
	return seconds_left >= 5 ? 5000 : seconds_left * 1000;
}

static int health_once(struct service_host *h, const struct check *c, int timeout, char *why,
		       size_t whylen)
{
	struct service_result r;
	int rc;

	switch (c->kind) {
	case SERVICE_PROBE_TCP:
		rc = h->ops->tcp_probe(h->ctx, c->host, c->port, 1000);
		if (rc)
			snprintf(why, whylen, "nothing accepts connections on %s:%d", c->host,
				 c->port);
		return rc;
	case SERVICE_PROBE_TLS:
		return service_probe_tls(h, c->host, c->port, probe_ms(timeout), why, whylen);
	case SERVICE_PROBE_POP3:
		return service_probe_pop3(h, c->host, c->port, probe_ms(timeout), c->login, why,
					  whylen);
	case SERVICE_PROBE_COMMAND:
		break;
	}
	rc = service_run(h, c->health, timeout, &r);
	if (rc) {
		snprintf(why, whylen, "%s", err_last());
		return rc;
	}
	if (r.status != 0) {
		snprintf(why, whylen, "'%s' exited with status %d", c->health, r.status);
		rc = MSGW_ERR;
	}
	service_result_release(&r);
	return rc;
}

static int health_run(struct service_host *h, const char *health, int timeout,
		      const struct service_login *login)
{
	int64_t deadline = time_now_ms() + (timeout > 0 ? timeout : 60) * 1000LL;
	struct check c = {health, SERVICE_PROBE_COMMAND, NULL, 0, login};
	char why[512] = "no attempt";
	int rc;

	if (!health || !*health)
		return 0;
	rc = service_parse_probe(health, &c.kind, &c.host, &c.port);
	if (rc < 0)
		return rc;
	for (;;) {
		int left = (int)((deadline - time_now_ms()) / 1000);

		if (health_once(h, &c, left > 1 ? left : 1, why, sizeof(why)) == 0) {
			rc = 0;
			break;
		}
		if (time_now_ms() >= deadline) {
			rc = err_set(MSGW_EHEALTH, "health check '%s'%s failed for %d s: %s",
				     health, login ? " with the mail probe" : "", timeout, why);
			break;
		}
		usleep(250000);
	}
	free(c.host);
	return rc;
}

int service_health(struct service_host *h, const char *health, int timeout)
{
	return health_run(h, health, timeout, NULL);
}

/* The probe password: the file's first line, which only its owner may
 * read; the caller wipes and frees it. */
static int read_password(char **out, const char *path)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;

	*out = NULL;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = err_set_errno(MSGW_ECONFIG, errno, "cannot read probe-password-file '%s'",
				   path);
		goto cleanup;
	}
	if (st.st_mode & 077) {
		rc = err_set(MSGW_ECONFIG,
			     "probe-password-file '%s' is readable by others: run 'chmod 600 %s'",
			     path, path);
		goto cleanup;
	}
	len = 1024;
	text = xcalloc(1, len + 1);
	n = read(fd, text, len);
	if (n < 0) {
		rc = err_set_errno(MSGW_ECONFIG, errno, "cannot read probe-password-file '%s'",
				   path);
		goto cleanup;
	}
	text[strcspn(text, "\r\n")] = '\0';
	if (!*text)
		rc = err_set(MSGW_ECONFIG, "probe-password-file '%s' is empty", path);
cleanup:
	if (fd >= 0)
		close(fd);
	if (rc && text) {
		secure_wipe(text, len);
		free(text);
		text = NULL;
	}
	*out = text;
	return rc;
}

int service_health_gateway(struct service_host *h, const struct config_gateway *gw)
{
	struct service_login l = {gw->probe_mailbox, NULL};
	char *pw = NULL;
	int rc;

	if (!gw->probe_mailbox)
		return health_run(h, gw->health, gw->timeout, NULL);
	rc = read_password(&pw, gw->probe_password_file);
	if (rc)
		return rc;
	l.password = pw;
	rc = health_run(h, gw->health, gw->timeout, &l);
	secure_wipe(pw, strlen(pw));
	free(pw);
	return rc;
}
