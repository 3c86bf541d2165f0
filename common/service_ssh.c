/*
 * service_ssh: the ssh backend of service commands: each command runs in
 * its own exec channel of the gateway host's cached session (ssh.c), with
 * stdout and stderr captured (64 KiB each kept) and the timeout enforced;
 * tcp_probe opens a direct-tcpip channel, so "tcp:PORT" health checks see
 * the port as the gateway's host does.
 *
 * SSH (as libssh2 1.10 speaks it) cannot signal a remote process, and
 * OpenSSH leaves a command without a terminal running when its channel
 * closes.  So on POSIX hosts the command runs under a small sh wrapper: it
 * starts the command in its own session (setsid, where there is one) and
 * kills that process group when the channel's stdin closes, which happens
 * when we close the channel on a timeout (and harmlessly after a normal
 * exit).  After the command exits its group is killed, as the local backend
 * does: daemons must detach into their own session.  Windows hosts (a
 * location path like "/C:/...") get the command as it is; whether
 * Win32-OpenSSH ends it when the channel closes is not tested.
 */
#include "err.h"
#include "location.h"
#include "log.h"
#include "service.h"
#include "ssh.h"
#include "util.h"

#include <errno.h>
#include <libssh2.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CAPTURE_MAX (64 * 1024)

struct sshhost {
	struct location loc;
	char *identity, *passphrase_file, *known_hosts;
	int timeout;
	bool windows;
	struct ssh_session *ssh;
};

/* $1 is the command.  Kept free of single quotes: it is quoted whole. */
static const char wrapper[] =
    "exec 3<&0 </dev/null\n"
    "if command -v setsid >/dev/null 2>&1; then setsid sh -c \"$1\" 3<&- &\n"
    "else sh -c \"$1\" 3<&- & fi\n"
    "p=$!\n"
    "{ cat <&3; kill -s TERM -- -\"$p\" \"$p\"; sleep 2; kill -s KILL -- -\"$p\" \"$p\"; }"
    " >/dev/null 2>&1 &\n"
    "w=$!\n"
    "exec 3<&-\n"
    "wait \"$p\"\n"
    "s=$?\n"
    "kill \"$w\" 2>/dev/null\n"
    "kill -s KILL -- -\"$p\" 2>/dev/null\n"
    "exit \"$s\"\n";

static void add_quoted(struct buf *b, const char *s)
{
	buf_adds(b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(b, "'\\''");
		else
			buf_add(b, s, 1);
	}
	buf_adds(b, "'");
}

static char *exec_line(const struct sshhost *h, const char *command)
{
	struct buf b;

	if (h->windows)
		return xstrdup(command);
	buf_init(&b);
	buf_adds(&b, "sh -c ");
	add_quoted(&b, wrapper);
	buf_adds(&b, " msgw-service ");
	add_quoted(&b, command);
	return buf_detach(&b, NULL);
}

/* The cached session, connected again when the last one broke. */
static int session(struct sshhost *h)
{
	struct ssh_opts o = {h->identity, h->passphrase_file, h->known_hosts, h->timeout};

	if (h->ssh && !ssh_session_broken(h->ssh))
		return 0;
	ssh_session_put(h->ssh);
	h->ssh = NULL;
	return ssh_session_get(&h->ssh, &h->loc, &o);
}

/* Wait until the socket is ready in the direction libssh2 needs, at most
 * ms milliseconds. */
static void wait_socket(struct sshhost *h, int ms)
{
	LIBSSH2_SESSION *s = ssh_session_handle(h->ssh);
	int dir = libssh2_session_block_directions(s);
	struct pollfd p = {ssh_session_socket(h->ssh), 0, 0};

	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	if (!p.events)
		p.events = POLLIN;
	if (ms < 0)
		ms = 0;
	while (poll(&p, 1, ms) < 0 && errno == EINTR)
		;
}

/* One non-blocking read of a stream into b (beyond CAPTURE_MAX discarded):
 * bytes read, 0 at end, LIBSSH2_ERROR_EAGAIN, or another negative error. */
static ssize_t pump(LIBSSH2_CHANNEL *ch, int stream, struct buf *b)
{
	char chunk[8192];
	ssize_t n = libssh2_channel_read_ex(ch, stream, chunk, sizeof(chunk));

	if (n > 0 && b->len < CAPTURE_MAX)
		buf_add(b, chunk,
			(size_t)n < CAPTURE_MAX - b->len ? (size_t)n : CAPTURE_MAX - b->len);
	return n;
}

/*
 * Read both streams until the remote end sends EOF (1) or the deadline
 * (ms, 0 = none) passes (0); a transport error gives a negative code.
 */
static int collect(struct sshhost *h, LIBSSH2_CHANNEL *ch, struct buf *o, struct buf *e,
		   int64_t deadline)
{
	for (;;) {
		ssize_t a = pump(ch, 0, o), b = pump(ch, SSH_EXTENDED_DATA_STDERR, e);
		int64_t left;

		if ((a < 0 && a != LIBSSH2_ERROR_EAGAIN) || (b < 0 && b != LIBSSH2_ERROR_EAGAIN))
			return (int)(a < 0 && a != LIBSSH2_ERROR_EAGAIN ? a : b);
		if (a > 0 || b > 0)
			continue;
		if (libssh2_channel_eof(ch))
			return 1;
		left = deadline ? deadline - time_now_ms() : 1000;
		if (left <= 0)
			return 0;
		ssh_session_keepalive(h->ssh);
		wait_socket(h, left > 1000 ? 1000 : (int)left);
	}
}

/* Repeat a non-blocking libssh2 call while it says EAGAIN, until deadline. */
#define RETRY(h, call, deadline)                                                                   \
	({                                                                                         \
		int r_;                                                                            \
		while ((r_ = (call)) == LIBSSH2_ERROR_EAGAIN && time_now_ms() < (deadline))        \
			wait_socket((h), 200);                                                     \
		r_;                                                                                \
	})

static int finish(struct sshhost *h, LIBSSH2_CHANNEL *ch, bool timed_out, int *status_out)
{
	int64_t until = time_now_ms() + (timed_out ? 2000 : ssh_session_timeout(h->ssh) * 1000LL);
	char *sig = NULL;
	int rc = 0;

	*status_out = -1;
	if (RETRY(h, libssh2_channel_close(ch), until) < 0 ||
	    (!timed_out && RETRY(h, libssh2_channel_wait_closed(ch), until) < 0))
		rc = -1;
	if (!timed_out) {
		/* exit-status (or exit-signal) comes before the remote's EOF */
		if (libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL, NULL) == 0 &&
		    sig)
			*status_out = -1;
		else
			*status_out = libssh2_channel_get_exit_status(ch);
		if (sig)
			libssh2_free(ssh_session_handle(h->ssh), sig);
	}
	if (RETRY(h, libssh2_channel_free(ch), time_now_ms() + 2000) < 0)
		rc = -1;
	return rc;
}

static int r_run(void *ctx, const char *command, int timeout, struct service_result *out)
{
	struct sshhost *h = ctx;
	LIBSSH2_CHANNEL *ch = NULL;
	LIBSSH2_SESSION *s;
	struct buf o, e;
	char *line = NULL;
	int rc, got, status = -1;

	memset(out, 0, sizeof(*out));
	rc = session(h);
	if (rc)
		return rc;
	s = ssh_session_handle(h->ssh);
	ch = libssh2_channel_open_session(s);
	if (!ch)
		return ssh_session_fail(h->ssh, MSGW_ERR, "cannot run '%s': open channel", command);
	line = exec_line(h, command);
	if (libssh2_channel_exec(ch, line)) {
		rc = ssh_session_fail(h->ssh, MSGW_ERR, "cannot run '%s'", command);
		libssh2_channel_free(ch);
		free(line);
		return rc;
	}
	free(line);
	buf_init(&o), buf_init(&e);
	libssh2_session_set_blocking(s, 0);
	got = collect(h, ch, &o, &e, timeout > 0 ? time_now_ms() + timeout * 1000LL : 0);
	if (got < 0) {
		rc = ssh_session_fail(h->ssh, MSGW_ERR, "running '%s'", command);
		ssh_session_set_broken(h->ssh);
	}
	if (finish(h, ch, got == 0, &status))
		ssh_session_set_broken(h->ssh); /* not closed cleanly: do not reuse */
	libssh2_session_set_blocking(s, 1);
	if (rc) {
		buf_release(&o), buf_release(&e);
		return rc;
	}
	out->timed_out = got == 0;
	out->status = got == 0 ? -1 : status;
	out->out = buf_detach(&o, NULL);
	out->err = buf_detach(&e, NULL);
	if (out->timed_out)
		log_info("ssh '%s': '%s' timed out after %d s, channel closed",
			 ssh_session_name(h->ssh), command, timeout);
	return 0;
}

/*
 * A direct-tcpip channel to host:port from the gateway's side, or NULL.  A
 * refused forward is an answer; anything else leaves libssh2's channel-open
 * state half-way, so the session is then not used again.
 */
static LIBSSH2_CHANNEL *open_forward(struct sshhost *h, const char *host, int port, int timeout_ms)
{
	LIBSSH2_CHANNEL *ch;
	LIBSSH2_SESSION *s;
	int e;

	if (session(h))
		return NULL;
	s = ssh_session_handle(h->ssh);
	libssh2_session_set_timeout(s, timeout_ms > 0 ? timeout_ms : 1000);
	ch = libssh2_channel_direct_tcpip_ex(s, host, port, "127.0.0.1", 22);
	e = ch ? 0 : libssh2_session_last_errno(s);
	libssh2_session_set_timeout(s, (long)ssh_session_timeout(h->ssh) * 1000);
	if (!ch && e != LIBSSH2_ERROR_CHANNEL_FAILURE)
		ssh_session_set_broken(h->ssh);
	return ch;
}

static int r_probe(void *ctx, const char *host, int port, int timeout_ms)
{
	LIBSSH2_CHANNEL *ch = open_forward(ctx, host, port, timeout_ms);

	if (!ch)
		return MSGW_ERR;
	libssh2_channel_close(ch);
	libssh2_channel_free(ch);
	return 0;
}

struct chanconn {
	struct service_conn base;
	struct sshhost *h;
	LIBSSH2_CHANNEL *ch;
};

static int ch_send(struct service_conn *c, const void *buf, size_t len, int64_t deadline)
{
	struct chanconn *cc = (struct chanconn *)c;
	LIBSSH2_SESSION *s = ssh_session_handle(cc->h->ssh);
	const char *p = buf;
	int rc = 0;

	libssh2_session_set_blocking(s, 0);
	while (len > 0 && !rc) {
		ssize_t n = libssh2_channel_write(cc->ch, p, len);

		if (n > 0)
			p += n, len -= (size_t)n;
		else if (n != LIBSSH2_ERROR_EAGAIN || time_now_ms() >= deadline)
			rc = -1;
		else
			wait_socket(cc->h, 200);
	}
	libssh2_session_set_blocking(s, 1);
	return rc;
}

static ssize_t ch_recv(struct service_conn *c, void *buf, size_t len, int64_t deadline)
{
	struct chanconn *cc = (struct chanconn *)c;
	LIBSSH2_SESSION *s = ssh_session_handle(cc->h->ssh);
	ssize_t n;

	libssh2_session_set_blocking(s, 0);
	for (;;) {
		int64_t left = deadline - time_now_ms();

		n = libssh2_channel_read(cc->ch, buf, len);
		if (n > 0 || (n == 0 && libssh2_channel_eof(cc->ch)))
			break;
		if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
			n = -1;
			break;
		}
		if (left <= 0) {
			n = -1;
			break;
		}
		wait_socket(cc->h, left > 200 ? 200 : (int)left);
	}
	libssh2_session_set_blocking(s, 1);
	return n;
}

static void ch_close(struct service_conn *c)
{
	struct chanconn *cc = (struct chanconn *)c;

	if (!cc)
		return;
	libssh2_channel_close(cc->ch);
	libssh2_channel_free(cc->ch);
	free(cc);
}

static const struct service_conn_ops chan_ops = {ch_send, ch_recv, ch_close};

/* A connection through a direct-tcpip channel (open_forward). */
static int r_connect(void *ctx, const char *host, int port, int timeout_ms,
		     struct service_conn **out)
{
	LIBSSH2_CHANNEL *ch = open_forward(ctx, host, port, timeout_ms);
	struct chanconn *cc;

	*out = NULL;
	if (!ch)
		return MSGW_ERR;
	cc = xcalloc(1, sizeof(*cc));
	cc->base.ops = &chan_ops;
	cc->h = ctx;
	cc->ch = ch;
	*out = &cc->base;
	return 0;
}

static void r_free(void *ctx)
{
	struct sshhost *h = ctx;

	if (!h)
		return;
	ssh_session_put(h->ssh);
	location_release(&h->loc);
	free(h->identity);
	free(h->passphrase_file);
	free(h->known_hosts);
	free(h);
}

static const struct service_host_ops ssh_ops = {r_run, r_probe, r_connect, r_free};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int service_ssh_open(struct service_host **out, const char *location,
		     const struct fsys_open_opts *opts)
{
	struct sshhost *h = xcalloc(1, sizeof(*h));
	struct service_host *sh;
	int rc;

	*out = NULL;
	rc = location_parse(&h->loc, location);
	if (rc) {
		free(h);
		return rc;
	}
	if (opts) {
		h->identity = dup_or_null(opts->identity);
		h->passphrase_file = dup_or_null(opts->passphrase_file);
		h->known_hosts = dup_or_null(opts->known_hosts);
		h->timeout = opts->timeout;
	}
	h->windows = location_is_windows(h->loc.path);
	rc = session(h);
	if (rc) {
		r_free(h);
		return rc;
	}
	sh = xcalloc(1, sizeof(*sh));
	sh->ops = &ssh_ops;
	sh->ctx = h;
	sh->name = xstrdup(ssh_session_name(h->ssh));
	*out = sh;
	return 0;
}
