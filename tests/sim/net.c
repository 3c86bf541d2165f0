/*
 * net.c: what the simulated service speaks on its ports.  The console port
 * answers "MSGW-SIM OK <domain> <mailboxes>" in clear to a client that
 * sends nothing for 200 ms (the tests' /dev/tcp readers) and inside TLS to
 * one that opens with a TLS ClientHello, as the real console speaks TLS.
 * The POP3 port (ports.pop3, when it can be bound) speaks RFC 1939 with
 * STLS (RFC 2595): CAPA, STLS, USER, PASS, STAT, NOOP, QUIT; credentials
 * are refused before TLS, as the real gateway refuses them.  A login
 * unlocks the mailbox's private key with the password (from the
 * Gateway.json loaded at start), and STAT opens every stored message: it
 * fails when one was sealed to other key material.  The certificate is a
 * fresh self-signed one made in memory at each start (nothing is written
 * to Certificates/).  MSGW_SIM_TLS_BROKEN=1 answers every ClientHello with
 * garbage.  One connection at a time, each bounded by 10 s of silence.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"

#define POP3_LINE 512

struct link {
	int fd;
	SSL *ssl;
	char in[POP3_LINE * 2];
	size_t len;
};

/* MSGW_SIM_TLS_BROKEN: 0 (unset), 1 (TLS answered with garbage), or 2
 * ("silent": every connection is accepted and hears nothing). */
static int tls_broken(void)
{
	const char *v = getenv("MSGW_SIM_TLS_BROKEN");

	if (v && strcmp(v, "silent") == 0)
		return 2;
	return v && strcmp(v, "1") == 0;
}

/* The silent mode: take what the client sends for a second, answer nothing. */
static int silent(int fd)
{
	struct timeval tv = {1, 0};
	char sink[512];

	if (tls_broken() != 2)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (recv(fd, sink, sizeof(sink), 0) > 0)
		;
	close(fd);
	return 1;
}

static X509 *self_signed(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (!x)
		return NULL;
	name = X509_get_subject_name(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"msgw-sim", -1,
				   -1, 0);
	if (!X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key) ||
	    !X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

SSL_CTX *sim_tls_new(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key ? self_signed(key) : NULL;
	SSL_CTX *ctx = cert ? SSL_CTX_new(TLS_server_method()) : NULL;

	if (ctx && (!SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, key))) {
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
	if (!ctx)
		sim_seterr("cannot make a TLS certificate: %s",
			   ERR_reason_error_string(ERR_get_error()));
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

static int put(struct link *l, const char *text)
{
	size_t len = strlen(text);

	if (l->ssl)
		return SSL_write(l->ssl, text, (int)len) == (int)len ? 0 : -1;
	return send(l->fd, text, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* One line without CRLF: 0, or -1 at the end, an error or 10 s of silence. */
static int get_line(struct link *l, char *line, size_t size)
{
	char *nl;

	while (!(nl = memchr(l->in, '\n', l->len))) {
		size_t room = sizeof(l->in) - l->len;
		ssize_t n;

		if (room == 0)
			return -1;
		n = l->ssl ? SSL_read(l->ssl, l->in + l->len, (int)room)
			   : recv(l->fd, l->in + l->len, room, 0);
		if (n <= 0)
			return -1;
		l->len += (size_t)n;
	}
	snprintf(line, size, "%.*s", (int)(nl - l->in), l->in);
	line[strcspn(line, "\r")] = '\0';
	l->len -= (size_t)(nl + 1 - l->in);
	memmove(l->in, nl + 1, l->len);
	return 0;
}

/* TLS on l->fd as the server: 0, or -1 (the broken mode answers garbage). */
static int tls_accept(struct link *l, SSL_CTX *ctx)
{
	if (tls_broken()) {
		put(l, "this is not TLS\r\n");
		return -1;
	}
	l->ssl = SSL_new(ctx);
	if (!l->ssl || !SSL_set_fd(l->ssl, l->fd) || SSL_accept(l->ssl) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* Close after the client has read everything: closing with its unread
 * bytes (a stray newline) pending would reset the connection and drop the
 * answer it has not read yet.  At most a second. */
static void link_close(struct link *l)
{
	struct timeval tv = {1, 0};
	char sink[512];

	if (l->ssl) {
		SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
	}
	shutdown(l->fd, SHUT_WR);
	setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (recv(l->fd, sink, sizeof(sink), 0) > 0)
		;
	close(l->fd);
}

static int accept_one(int lfd, struct link *l)
{
	struct timeval tv = {10, 0};

	memset(l, 0, sizeof(*l));
	l->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (l->fd < 0)
		return -1;
	setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(l->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

void sim_console_answer(int lfd, const char *greeting, SSL_CTX *ctx)
{
	struct link l;
	struct pollfd p;
	unsigned char first;

	if (accept_one(lfd, &l) || silent(l.fd))
		return;
	p.fd = l.fd, p.events = POLLIN, p.revents = 0;
	if (ctx && poll(&p, 1, 200) == 1 && recv(l.fd, &first, 1, MSG_PEEK) == 1 && first == 0x16) {
		if (tls_accept(&l, ctx) == 0)
			put(&l, greeting);
	} else {
		put(&l, greeting);
	}
	link_close(&l);
}

/* 0 when every message in the mailbox's store opens with sk. */
static int open_all(const struct sim_gw *gw, const char *id, const struct sim_keys *k,
		    const unsigned char *sk, size_t *n_out, size_t *bytes_out, char *why,
		    size_t whylen)
{
	char *store = sim_store_path(gw, id), **names = NULL;
	size_t n = 0;
	int rc = 0;

	*n_out = *bytes_out = 0;
	if (sim_list_messages(store, &names, &n)) {
		snprintf(why, whylen, "cannot list the mailbox");
		rc = -1;
	}
	for (size_t i = 0; !rc && i < n; i++) {
		char *path = sim_strdupf("%s/%s", store, names[i]), *data = NULL;
		unsigned char *plain = NULL;
		size_t len = 0;

		rc = sim_read_file(path, &data, &len) || len < crypto_box_SEALBYTES ? -1 : 0;
		if (!rc) {
			plain = sim_xmalloc(len - crypto_box_SEALBYTES + 1);
			rc = crypto_box_seal_open(plain, (unsigned char *)data, len, k->pk, sk);
			*bytes_out += len - crypto_box_SEALBYTES;
		}
		if (rc)
			snprintf(why, whylen,
				 "cannot decrypt message %.36s: key material does not match",
				 names[i]);
		free(plain);
		free(data);
		free(path);
	}
	*n_out = n;
	sim_free_list(names, n);
	free(store);
	return rc;
}

struct pop3 {
	struct link l;
	const struct sim_gw *gw;
	char user[SIM_ID_LEN + 1];
	int logged_in;
	struct sim_keys k;
	unsigned char sk[crypto_box_SECRETKEYBYTES];
};

static const char *pass(struct pop3 *s, const char *password)
{
	json_t *mbx = s->user[0] ? sim_gw_mailbox(s->gw, s->user, NULL) : NULL;

	if (!mbx || strcmp(sim_mbx_str(mbx, "status"), "Active") != 0 ||
	    sim_keys_from_json(&s->k, mbx) || sim_keys_unlock(&s->k, password, s->sk)) {
		sim_log(s->gw->dir, "pop3: login failed for '%s'", s->user);
		return "-ERR [AUTH] login failed\r\n";
	}
	s->logged_in = 1;
	sim_log(s->gw->dir, "pop3: '%s' logged in", s->user);
	return "+OK logged in\r\n";
}

static void do_stat(struct pop3 *s)
{
	char why[200], reply[300];
	size_t n, bytes;

	if (!s->logged_in) {
		put(&s->l, "-ERR not logged in\r\n");
	} else if (open_all(s->gw, s->user, &s->k, s->sk, &n, &bytes, why, sizeof(why))) {
		sim_log(s->gw->dir, "pop3: STAT of '%s' failed: %s", s->user, why);
		snprintf(reply, sizeof(reply), "-ERR %s\r\n", why);
		put(&s->l, reply);
	} else {
		snprintf(reply, sizeof(reply), "+OK %zu %zu\r\n", n, bytes);
		put(&s->l, reply);
	}
}

/* One command; 1 to end the session. */
static int command(struct pop3 *s, char *line, SSL_CTX *ctx)
{
	if (strcasecmp(line, "QUIT") == 0) {
		put(&s->l, "+OK bye\r\n");
		return 1;
	}
	if (strcasecmp(line, "CAPA") == 0)
		put(&s->l, s->l.ssl ? "+OK\r\nUSER\r\n.\r\n" : "+OK\r\nSTLS\r\nUSER\r\n.\r\n");
	else if (strcasecmp(line, "NOOP") == 0)
		put(&s->l, "+OK\r\n");
	else if (strcasecmp(line, "STLS") == 0 && s->l.ssl)
		put(&s->l, "-ERR already in TLS\r\n");
	else if (strcasecmp(line, "STLS") == 0)
		return put(&s->l, "+OK begin TLS\r\n") || s->l.len || tls_accept(&s->l, ctx);
	else if (strncasecmp(line, "USER ", 5) == 0 || strncasecmp(line, "PASS ", 5) == 0) {
		if (!s->l.ssl)
			put(&s->l, "-ERR [AUTH] credentials only over TLS: use STLS\r\n");
		else if (toupper((unsigned char)line[0]) == 'U' && !s->logged_in) {
			size_t n = strlen(line + 5);

			/* a name too long for a mailbox id matches none */
			memcpy(s->user, line + 5, n <= SIM_ID_LEN ? n : 0);
			s->user[n <= SIM_ID_LEN ? n : 0] = '\0';
			put(&s->l, "+OK\r\n");
		} else if (!s->logged_in)
			put(&s->l, pass(s, line + 5));
		else
			put(&s->l, "-ERR already logged in\r\n");
	} else if (strcasecmp(line, "STAT") == 0)
		do_stat(s);
	else
		put(&s->l, "-ERR unknown command\r\n");
	return 0;
}

void sim_pop3_answer(int lfd, const struct sim_gw *gw, SSL_CTX *ctx)
{
	struct pop3 s;
	char line[POP3_LINE];

	memset(&s, 0, sizeof(s));
	s.gw = gw;
	if (accept_one(lfd, &s.l) || silent(s.l.fd))
		return;
	if (put(&s.l, "+OK MSGW-SIM POP3 ready\r\n") == 0)
		while (get_line(&s.l, line, sizeof(line)) == 0 && command(&s, line, ctx) == 0)
			sodium_memzero(line, sizeof(line)); /* it may have held a password */
	sodium_memzero(line, sizeof(line));
	sodium_memzero(s.l.in, sizeof(s.l.in));
	sodium_memzero(s.sk, sizeof(s.sk));
	link_close(&s.l);
}
