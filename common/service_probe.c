/*
 * service_probe: health probes that prove the service answers, over a
 * service_conn (a socket on this host, or a direct-tcpip channel through
 * the gateway's SSH connection): "tls:" completes a TLS handshake, "pop3:"
 * reads the POP3 greeting and completes STLS (RFC 2595), and with a probe
 * mailbox logs in with USER/PASS and runs STAT, as MailStore Server does
 * when it fetches journal mail.  OpenSSL runs over memory BIOs, so the same
 * code speaks through either transport.  Certificates are not validated:
 * gateways use self-signed ones; a handshake that fails is a failed check.
 * The password goes only into the encrypted stream, never into a message.
 */
#include "err.h"
#include "service.h"
#include "util.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_POP3 512

struct probe {
	struct service_conn *c;
	int64_t deadline;
	SSL_CTX *ctx;
	SSL *ssl;		    /* NULL until STLS */
	BIO *rb, *wb;		    /* the network side of ssl */
	char in[LINE_MAX_POP3 * 2]; /* read but not yet taken */
	size_t len;
	char *why;
	size_t whylen;
};

static int fail(struct probe *p, const char *fmt, const char *a, const char *b)
{
	snprintf(p->why, p->whylen, fmt, a, b);
	return MSGW_ERR;
}

/* OpenSSL's first queued reason, or what the peer did. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback)
{
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (!e)
		return fallback;
	ERR_error_string_n(e, buf, len);
	return buf;
}

static int flush(struct probe *p)
{
	char buf[4096];
	int n;

	while ((n = BIO_read(p->wb, buf, sizeof(buf))) > 0)
		if (p->c->ops->send(p->c, buf, (size_t)n, p->deadline))
			return -1;
	return 0;
}

/* More bytes from the network into the TLS engine: 0, or -1 at the end of
 * the stream, an error or the deadline. */
static int feed(struct probe *p)
{
	char buf[4096];
	ssize_t n = p->c->ops->recv(p->c, buf, sizeof(buf), p->deadline);

	if (n <= 0)
		return -1;
	return BIO_write(p->rb, buf, (int)n) == (int)n ? 0 : -1;
}

static int handshake(struct probe *p, const char *where)
{
	char reason[256];

	p->ctx = SSL_CTX_new(TLS_client_method());
	p->ssl = p->ctx ? SSL_new(p->ctx) : NULL;
	p->rb = BIO_new(BIO_s_mem());
	p->wb = BIO_new(BIO_s_mem());
	if (!p->ssl || !p->rb || !p->wb) {
		BIO_free(p->rb), BIO_free(p->wb);
		p->rb = p->wb = NULL;
		return fail(p, "cannot set up TLS for %s%s", where, "");
	}
	SSL_set_verify(p->ssl, SSL_VERIFY_NONE, NULL);
	SSL_set_bio(p->ssl, p->rb, p->wb);
	SSL_set_connect_state(p->ssl);
	for (;;) {
		int r = SSL_do_handshake(p->ssl), e = SSL_get_error(p->ssl, r);

		if (flush(p))
			return fail(p, "TLS handshake with %s failed: %s", where,
				    "the connection broke");
		if (r == 1)
			return 0;
		if (e != SSL_ERROR_WANT_READ)
			return fail(p, "TLS handshake with %s failed: %s", where,
				    ssl_reason(reason, sizeof(reason), "refused"));
		if (feed(p))
			return fail(p, "TLS handshake with %s failed: %s", where,
				    "no answer (closed or timed out)");
	}
}

static int put(struct probe *p, const char *text)
{
	size_t len = strlen(text);

	if (!p->ssl)
		return p->c->ops->send(p->c, text, len, p->deadline);
	if (SSL_write(p->ssl, text, (int)len) != (int)len)
		return -1;
	return flush(p);
}

/* Bytes into p->in: > 0, or -1. */
static int fill(struct probe *p)
{
	size_t room = sizeof(p->in) - p->len;
	ssize_t n;

	if (room == 0)
		return -1;
	if (!p->ssl) {
		n = p->c->ops->recv(p->c, p->in + p->len, room, p->deadline);
	} else {
		for (;;) {
			int r = SSL_read(p->ssl, p->in + p->len, (int)room);

			if (r > 0) {
				n = r;
				break;
			}
			if (SSL_get_error(p->ssl, r) != SSL_ERROR_WANT_READ || flush(p) || feed(p))
				return -1;
		}
	}
	if (n <= 0)
		return -1;
	p->len += (size_t)n;
	return 0;
}

/* One line without its CRLF into line: 0, or -1. */
static int get_line(struct probe *p, char *line, size_t size)
{
	char *nl;

	while (!(nl = memchr(p->in, '\n', p->len)))
		if (fill(p))
			return -1;
	snprintf(line, size, "%.*s", (int)(nl - p->in), p->in);
	line[strcspn(line, "\r")] = '\0';
	p->len -= (size_t)(nl + 1 - p->in);
	memmove(p->in, nl + 1, p->len);
	return 0;
}

/* Send cmd (NULL: only read) and expect "+OK": 0, or MSGW_ERR with why
 * naming what (never the command itself: it may hold the password). */
static int ask(struct probe *p, const char *cmd, const char *what, char *reply, size_t size)
{
	if (cmd && put(p, cmd))
		return fail(p, "POP3 %s: the connection broke%s", what, "");
	if (get_line(p, reply, size))
		return fail(p, "POP3 %s: no answer (closed or timed out)%s", what, "");
	if (strncmp(reply, "+OK", 3) != 0)
		return fail(p, "POP3 %s: '%.200s'", what, reply);
	return 0;
}

static void probe_release(struct probe *p)
{
	SSL_free(p->ssl); /* frees the BIOs set on it */
	SSL_CTX_free(p->ctx);
	if (p->c)
		p->c->ops->close(p->c);
}

static int open_conn(struct probe *p, struct service_host *h, const char *host, int port,
		     int timeout_ms, const char *where)
{
	memset(p->in, 0, sizeof(p->in));
	p->deadline = time_now_ms() + timeout_ms;
	if (h->ops->connect(h->ctx, host, port, timeout_ms, &p->c))
		return fail(p, "nothing accepts connections on %s%s", where, "");
	return 0;
}

int service_probe_tls(struct service_host *h, const char *host, int port, int timeout_ms, char *why,
		      size_t whylen)
{
	struct probe p = {0};
	char where[300];
	int rc;

	p.why = why, p.whylen = whylen;
	snprintf(where, sizeof(where), "%s:%d", host, port);
	rc = open_conn(&p, h, host, port, timeout_ms, where);
	if (!rc)
		rc = handshake(&p, where);
	probe_release(&p);
	return rc;
}

static int login(struct probe *p, const struct service_login *l)
{
	char line[LINE_MAX_POP3], *cmd;
	int rc;

	cmd = xasprintf("USER %s\r\n", l->mailbox);
	rc = ask(p, cmd, "USER refused for the probe mailbox", line, sizeof(line));
	free(cmd);
	if (rc)
		return rc;
	cmd = xasprintf("PASS %s\r\n", l->password);
	rc = ask(p, cmd, "login of the probe mailbox refused", line, sizeof(line));
	secure_wipe(cmd, strlen(cmd));
	free(cmd);
	if (!rc)
		rc = ask(p, "STAT\r\n", "STAT of the probe mailbox failed", line, sizeof(line));
	return rc;
}

int service_probe_pop3(struct service_host *h, const char *host, int port, int timeout_ms,
		       const struct service_login *l, char *why, size_t whylen)
{
	struct probe p = {0};
	char where[300], line[LINE_MAX_POP3];
	int rc;

	p.why = why, p.whylen = whylen;
	snprintf(where, sizeof(where), "%s:%d", host, port);
	rc = open_conn(&p, h, host, port, timeout_ms, where);
	if (!rc)
		rc = ask(&p, NULL, "no greeting", line, sizeof(line));
	if (!rc)
		rc = ask(&p, "STLS\r\n", "STLS refused", line, sizeof(line));
	if (!rc && p.len)
		rc = fail(&p, "POP3 on %s sent data before the TLS handshake%s", where, "");
	if (!rc)
		rc = handshake(&p, where);
	if (!rc && l && l->mailbox)
		rc = login(&p, l);
	if (!rc && put(&p, "QUIT\r\n") == 0)
		get_line(&p, line, sizeof(line));
	probe_release(&p);
	return rc;
}
