/*
 * ssh: libssh2 sessions (connect with a timeout, verify the host key
 * against the configured known_hosts, authenticate by key file or agent),
 * cached per user, host and port for the life of the process, and the
 * known_hosts helpers the git transport shares.
 *
 * Sessions run in blocking mode with libssh2's operation timeout set to the
 * configured timeout, and keepalives sent by ssh_session_keepalive between
 * operations.  libssh2 itself is never told of them: its blocking wait
 * (1.10's _libssh2_wait_socket) polls only until the next keepalive is due
 * when one is configured and then fails with LIBSSH2_ERROR_TIMEOUT, so a
 * call gave up after as little as one second of silence, whatever the
 * timeout.  What this does not do: password or keyboard-interactive
 * authentication, ProxyJump, ~/.ssh/config, trust on first use.
 */
#include "ssh.h"
#include "err.h"
#include "fsys.h"
#include "log.h"
#include "service.h"
#include "sha256.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEEPALIVE_INTERVAL 15  /* seconds */
#define IDLE_REUSE_MAX	   300 /* seconds an unused cached session is trusted */

struct ssh_session {
	struct ssh_session *next; /* the cache list */
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;
	int sock;
	char *user, *host;
	int port;
	char *known_hosts, *identity; /* as verified and authenticated with */
	char *name;		      /* user@host:port */
	int timeout;
	int64_t keepalive_sent; /* ms; 0: none yet */
	int refs;
	bool broken, cached;
	int64_t last_used; /* ms */
};

static struct ssh_session *cache;

static void global_init(void)
{
	static bool done;

	if (done)
		return;
	libssh2_init(0);
	done = true;
}

static void at_exit(void)
{
	ssh_cache_flush();
	libssh2_exit();
}

void ssh_register(void)
{
	static bool done;

	if (done)
		return;
	global_init();
	fsys_set_remote_opener(fsys_sftp_open);
	service_set_remote_opener(service_ssh_open);
	atexit(at_exit);
	done = true;
}

const char *ssh_version(void)
{
	static char v[64];

	snprintf(v, sizeof(v), "libssh2 %s", libssh2_version(0));
	return v;
}

/* ---- small helpers ----------------------------------------------------- */

/* in as base64 (libcrypto's EVP_EncodeBlock), without the '=' padding
 * unless pad (OpenSSH shows fingerprints unpadded). */
static char *base64(const unsigned char *in, size_t n, bool pad)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

	while (!pad && len > 0 && out[len - 1] == '=')
		out[--len] = '\0';
	return out;
}

/* libssh2's last error text for session. */
static const char *ssh_errmsg(LIBSSH2_SESSION *session)
{
	char *msg = NULL;
	int len = 0;

	if (!session)
		return "unknown error";
	libssh2_session_last_error(session, &msg, &len, 0);
	return msg && *msg ? msg : "unknown error";
}

static bool transport_error(int e)
{
	switch (e) {
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_KEX_FAILURE:
	case LIBSSH2_ERROR_DECRYPT:
	case LIBSSH2_ERROR_BAD_USE:
		return true;
	default:
		return false;
	}
}

int ssh_session_fail(struct ssh_session *s, int code, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	int e = libssh2_session_last_errno(s->session);

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (transport_error(e)) {
		s->broken = true;
		if (e == LIBSSH2_ERROR_TIMEOUT)
			return err_set(code, "ssh '%s': %s: timed out after %d s", s->name, what,
				       s->timeout);
	}
	return err_set(code, "ssh '%s': %s: %s", s->name, what, ssh_errmsg(s->session));
}

void ssh_session_set_broken(struct ssh_session *s)
{
	s->broken = true;
}

int ssh_session_broken(const struct ssh_session *s)
{
	return s->broken;
}

const char *ssh_session_name(const struct ssh_session *s)
{
	return s->name;
}

LIBSSH2_SESSION *ssh_session_handle(struct ssh_session *s)
{
	s->last_used = time_now_ms();
	return s->session;
}

int ssh_session_socket(const struct ssh_session *s)
{
	return s->sock;
}

int ssh_session_timeout(const struct ssh_session *s)
{
	return s->timeout;
}

/*
 * A keepalive when one is due.  The interval is configured in libssh2 only
 * for the send: configured, it would also cut every blocking wait short (see
 * the top of this file).
 */
void ssh_session_keepalive(struct ssh_session *s)
{
	int64_t now = time_now_ms();
	int next = 0, r;

	if (s->broken)
		return;
	s->last_used = now;
	if (s->keepalive_sent && now - s->keepalive_sent < KEEPALIVE_INTERVAL * 1000LL)
		return;
	libssh2_keepalive_config(s->session, 1, KEEPALIVE_INTERVAL);
	r = libssh2_keepalive_send(s->session, &next);
	libssh2_keepalive_config(s->session, 1, 0);
	if (r < 0 && r != LIBSSH2_ERROR_EAGAIN)
		s->broken = true;
	s->keepalive_sent = now;
}

int ssh_session_sftp(LIBSSH2_SFTP **out, struct ssh_session *s)
{
	*out = NULL;
	if (!s->sftp) {
		s->sftp = libssh2_sftp_init(s->session);
		if (!s->sftp)
			return ssh_session_fail(s, MSGW_ERR, "sftp: cannot start the subsystem");
	}
	*out = s->sftp;
	return 0;
}

/* ---- passphrases ------------------------------------------------------- */

/* A secret that group or others may read or change is refused, as OpenSSH
 * refuses such private keys (st: the file's status). */
static int secret_mode_check(const char *what, const char *file, const struct stat *st)
{
	if (!(st->st_mode & 077))
		return 0;
	return err_set(MSGW_ERR,
		       "%s '%s' is accessible by group or others (mode %04o): run 'chmod 600 %s'",
		       what, file, (unsigned)(st->st_mode & 07777), file);
}

int ssh_key_file_check(const char *what, const char *file)
{
	struct stat st;

	if (stat(file, &st) < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot read %s '%s'", what, file);
	return secret_mode_check(what, file, &st);
}

int ssh_passphrase_read(char **out, const char *file)
{
	struct buf b;
	struct stat st;
	char chunk[256];
	ssize_t n;
	int fd, rc = 0;

	*out = NULL;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot read passphrase file '%s'", file);
	if (fstat(fd, &st) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot read passphrase file '%s'", file);
	else
		rc = secret_mode_check("passphrase file", file, &st);
	if (rc) {
		close(fd);
		return rc;
	}
	buf_init(&b);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = err_set_errno(MSGW_ERR, errno, "cannot read passphrase file '%s'",
					   file);
			break;
		}
		buf_add(&b, chunk, (size_t)n);
		if (memchr(chunk, '\n', (size_t)n))
			break;
	}
	secure_wipe(chunk, sizeof(chunk));
	close(fd);
	if (!rc) {
		b.len = strcspn(b.data, "\r\n");
		b.data[b.len] = '\0';
		*out = xstrdup(b.data);
	}
	secure_wipe(b.data, b.cap);
	buf_release(&b);
	return rc;
}

void ssh_passphrase_free(char *p)
{
	if (!p)
		return;
	secure_wipe(p, strlen(p));
	free(p);
}

/* ---- host keys and known_hosts ------------------------------------------ */

struct key_kind {
	const char *name;    /* the blob's type name */
	int knownhost;	     /* LIBSSH2_KNOWNHOST_KEY_* */
	const char *methods; /* host key algorithms that give this key */
};

static const struct key_kind kinds[] = {
    {"ssh-ed25519", LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519"},
    {"ecdsa-sha2-nistp256", LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256"},
    {"ecdsa-sha2-nistp384", LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384"},
    {"ecdsa-sha2-nistp521", LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521"},
    {"ssh-rsa", LIBSSH2_KNOWNHOST_KEY_SSHRSA, "rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
    {"ssh-dss", LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss"},
};

static const struct key_kind *kind_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

static const struct key_kind *kind_by_knownhost(int mask)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].knownhost == (mask & LIBSSH2_KNOWNHOST_KEY_MASK))
			return &kinds[i];
	return NULL;
}

int ssh_hostkey_init(struct ssh_hostkey *out, const char *host, int port, const void *blob,
		     size_t len)
{
	const unsigned char *b = blob;
	unsigned char digest[SHA256_LEN];
	char *kh_name, *b64;
	uint32_t n;

	memset(out, 0, sizeof(*out));
	if (!blob || len < 4)
		return err_set(MSGW_ERR, "host key of '%s': empty or truncated key", host);
	n = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	if (n == 0 || n >= sizeof(out->type) || n > len - 4)
		return err_set(MSGW_ERR, "host key of '%s': malformed key", host);
	memcpy(out->type, b + 4, n);
	out->type[n] = '\0';
	out->host = xstrdup(host);
	out->port = port;
	out->blob = xmalloc(len);
	memcpy(out->blob, blob, len);
	out->len = len;
	sha256_buf(digest, blob, len);
	b64 = base64(digest, sizeof(digest), false);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "SHA256:%s", b64);
	free(b64);
	kh_name = location_known_hosts_name(host, port);
	b64 = base64(b, len, true);
	out->line = xasprintf("%s %s %s", kh_name, out->type, b64);
	free(b64);
	free(kh_name);
	return 0;
}

void ssh_hostkey_release(struct ssh_hostkey *k)
{
	if (!k)
		return;
	free(k->host);
	free(k->blob);
	free(k->line);
	memset(k, 0, sizeof(*k));
}

/* libssh2's check of key for name in kh (its LIBSSH2_KNOWNHOST_CHECK_*). */
static int kh_check(LIBSSH2_KNOWNHOSTS *kh, const char *name, const struct ssh_hostkey *key)
{
	const struct key_kind *kind = kind_by_name(key->type);

	/* port -1: only the exact name is looked up, never a port-less
	 * fallback (libssh2 would take a port 22 key for any port) */
	return libssh2_knownhost_checkp(
	    kh, name, -1, (const char *)key->blob, key->len,
	    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
		(kind ? kind->knownhost : LIBSSH2_KNOWNHOST_KEY_UNKNOWN),
	    NULL);
}

/*
 * Whether the entry at p is plain, or hashed ("|1|SALT|HASH") with a HASH
 * of a SHA-1's 20 bytes (27 base64 digits and '=').  libssh2 1.10 leaks an
 * HMAC context on every lookup through a hashed entry of another length
 * (knownhost_check starts the HMAC before it checks the length): such an
 * entry can match nothing anyway, so it is skipped before libssh2 sees it.
 */
static bool kh_entry_ok(const char *p)
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *hash;
	size_t n;

	if (strncmp(p, "|1|", 3) != 0)
		return true;
	hash = strchr(p + 3, '|');
	if (!hash)
		return false;
	hash++;
	n = strcspn(hash, " \t\r\n");
	return n == 28 && hash[27] == '=' && strspn(hash, digits) == 27;
}

/* What reading a known_hosts file found beside its entries. */
struct kh_read {
	const char *file;	       /* for messages */
	const struct ssh_hostkey *key; /* to check @revoked lines against, or NULL */
	bool warn;		       /* warn about lines that are not used */
	int revoked_line;	       /* the first @revoked line naming key, or 0 */
};

/* A "@revoked" line's entry (rest): when it names r->key for the key's
 * host, remember the line. */
static void kh_revoked(LIBSSH2_SESSION *session, struct kh_read *r, const char *rest, int lineno)
{
	LIBSSH2_KNOWNHOSTS *one = libssh2_knownhost_init(session);
	char *name;

	if (!one)
		return;
	if (!kh_entry_ok(rest) ||
	    libssh2_knownhost_readline(one, rest, strlen(rest), LIBSSH2_KNOWNHOST_FILE_OPENSSH)) {
		if (r->warn)
			log_warn("known-hosts '%s' line %d: @revoked entry not understood, ignored",
				 r->file, lineno);
	} else if (r->key && !r->revoked_line) {
		name = location_known_hosts_name(r->key->host, r->key->port);
		if (kh_check(one, name, r->key) == LIBSSH2_KNOWNHOST_CHECK_MATCH)
			r->revoked_line = lineno;
		free(name);
	}
	libssh2_knownhost_free(one);
}

/* A line starting with '@' (p): "@revoked" lines are checked against the
 * key, others are not supported and said so. */
static void kh_marker(LIBSSH2_SESSION *session, struct kh_read *r, const char *p, int lineno)
{
	size_t n = strcspn(p, " \t\r\n");
	const char *rest = p + n + strspn(p + n, " \t");

	if (n == 8 && strncmp(p, "@revoked", n) == 0)
		kh_revoked(session, r, rest, lineno);
	else if (r->warn && n == 15 && strncmp(p, "@cert-authority", n) == 0)
		log_warn("known-hosts '%s' line %d: @cert-authority lines are not supported, "
			 "ignored (record the host's own key)",
			 r->file, lineno);
	else if (r->warn)
		log_warn("known-hosts '%s' line %d: unknown marker '%.*s', line ignored", r->file,
			 lineno, (int)(n > 40 ? 40 : n), p);
}

/* Read the lines of f into kh; see kh_load. */
static int kh_read_lines(LIBSSH2_KNOWNHOSTS *kh, LIBSSH2_SESSION *session, FILE *f,
			 struct kh_read *r)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0;

	while ((n = getline(&line, &cap, f)) > 0) {
		const char *p = line;

		lineno++;
		if (memchr(line, '\0', (size_t)n))
			continue; /* not text */
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		if (*p == '@')
			kh_marker(session, r, p, lineno);
		else if (!kh_entry_ok(p) || libssh2_knownhost_readline(
						kh, p, strlen(p), LIBSSH2_KNOWNHOST_FILE_OPENSSH))
			log_debug("known-hosts '%s' line %d: not understood, skipped", r->file,
				  lineno);
	}
	free(line);
	return ferror(f) ? err_set(MSGW_ERR, "cannot read known-hosts '%s': read error", r->file)
			 : 0;
}

/*
 * Read known_hosts (f, or the file r->file when f is NULL) into a libssh2
 * collection line by line, so one line libssh2 cannot parse (a key type it
 * does not know) is skipped instead of failing the whole file.  Lines with
 * a marker are not entries: "@revoked" ones are checked against r->key
 * (r->revoked_line), others are not supported (a warning when r->warn).
 * A missing file gives an empty collection.
 */
static int kh_load(LIBSSH2_KNOWNHOSTS **out, LIBSSH2_SESSION *session, FILE *f, struct kh_read *r)
{
	LIBSSH2_KNOWNHOSTS *kh;
	FILE *opened = NULL;
	int rc;

	*out = NULL;
	kh = libssh2_knownhost_init(session);
	if (!kh)
		return err_set(MSGW_ERR, "cannot read known-hosts '%s': out of memory", r->file);
	if (!f && !(f = opened = fopen(r->file, "re"))) {
		if (errno == ENOENT) {
			*out = kh;
			return 0;
		}
		libssh2_knownhost_free(kh);
		return err_set_errno(MSGW_ERR, errno, "cannot read known-hosts '%s'", r->file);
	}
	rc = kh_read_lines(kh, session, f, r);
	if (opened)
		fclose(opened);
	if (rc) {
		libssh2_knownhost_free(kh);
		return rc;
	}
	*out = kh;
	return 0;
}

/* The key types recorded in plain-text entries named name, as a host key
 * method preference list (empty string when none). */
/* Whether name is one of the comma-separated entries of list. */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while ((p = strstr(p, name))) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

/* Append the methods of a comma-separated list that libssh2 supports
 * (algs) and out does not hold yet. */
static void add_methods(struct buf *out, const char *methods, const char **algs, int nalgs)
{
	char *copy = xstrdup(methods), *tok, *save = NULL;
	int i;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < nalgs && strcmp(algs[i], tok) != 0; i++)
			;
		if (i == nalgs || in_list(out->data, tok))
			continue;
		if (out->len)
			buf_adds(out, ",");
		buf_adds(out, tok);
	}
	free(copy);
}

/* The host key methods of the key types recorded in plain-text entries
 * named name, supported ones only. */
static void kh_recorded_methods(struct buf *out, LIBSSH2_KNOWNHOSTS *kh, const char *name,
				const char **algs, int nalgs)
{
	struct libssh2_knownhost *e = NULL, *prev = NULL;

	while (libssh2_knownhost_get(kh, &e, prev) == 0) {
		const struct key_kind *k = kind_by_knownhost(e->typemask);

		prev = e;
		if (k && e->name && strcmp(e->name, name) == 0)
			add_methods(out, k->methods, algs, nalgs);
	}
}

/* A scratch libssh2 session for the knownhost API outside a connection. */
static LIBSSH2_SESSION *scratch_session(void)
{
	global_init();
	return libssh2_session_init();
}

/* The lookup of key in known_hosts (f: its text, or NULL to open r->file);
 * a revoked key is SSH_HOSTKEY_KNOWN with r->revoked_line set. */
static int kh_lookup(enum ssh_hostkey_status *status_out, LIBSSH2_SESSION *session, FILE *f,
		     struct kh_read *r)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	char *name = NULL;
	int rc;

	rc = kh_load(&kh, session, f, r);
	if (rc)
		return rc;
	name = location_known_hosts_name(r->key->host, r->key->port);
	switch (kh_check(kh, name, r->key)) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		*status_out = SSH_HOSTKEY_KNOWN;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		*status_out = SSH_HOSTKEY_CHANGED;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		*status_out = SSH_HOSTKEY_UNKNOWN;
		break;
	default:
		rc = err_set(MSGW_ERR, "cannot check host key of '%s' in '%s': %s", name, r->file,
			     ssh_errmsg(session));
	}
	free(name);
	libssh2_knownhost_free(kh);
	return rc;
}

static int revoked_msg(const struct kh_read *r)
{
	char *name = location_known_hosts_name(r->key->host, r->key->port);
	int rc;

	rc = err_set(MSGW_ERR,
		     "host key verification failed: the %s key of '%s' (%s) is revoked by '%s' "
		     "line %d",
		     r->key->type, name, r->key->fingerprint, r->file, r->revoked_line);
	free(name);
	return rc;
}

/* ssh_known_hosts_lookup over f (NULL: open known_hosts), warning about
 * unused lines when warn. */
static int lookup_in(enum ssh_hostkey_status *status_out, FILE *f, const char *known_hosts,
		     const struct ssh_hostkey *key, bool warn)
{
	struct kh_read r = {known_hosts, key, warn, 0};
	LIBSSH2_SESSION *session = scratch_session();
	int rc;

	if (!session)
		return err_set(MSGW_ERR, "cannot check host keys: libssh2 failed to start");
	rc = kh_lookup(status_out, session, f, &r);
	libssh2_session_free(session);
	if (!rc && r.revoked_line)
		rc = revoked_msg(&r);
	return rc;
}

int ssh_known_hosts_lookup(enum ssh_hostkey_status *status_out, const char *known_hosts,
			   const struct ssh_hostkey *key)
{
	return lookup_in(status_out, NULL, known_hosts, key, true);
}

int ssh_known_hosts_lookup_text(enum ssh_hostkey_status *status_out, const char *known_hosts,
				const char *text, size_t len, const struct ssh_hostkey *key)
{
	FILE *f;
	int rc;

	if (len == 0)
		text = "\n", len = 1; /* fmemopen wants a buffer */
	f = fmemopen((void *)text, len, "r");
	if (!f)
		return err_set_errno(MSGW_ERR, errno, "cannot read known-hosts '%s'", known_hosts);
	rc = lookup_in(status_out, f, known_hosts, key, false);
	fclose(f);
	return rc;
}

static int verify_msg(enum ssh_hostkey_status st, const char *known_hosts,
		      const struct ssh_hostkey *key, const char *who)
{
	char *name = location_known_hosts_name(key->host, key->port);
	int rc;

	if (st == SSH_HOSTKEY_CHANGED)
		rc = err_set(MSGW_ERR,
			     "ssh '%s': host key verification failed: the %s key of '%s' has "
			     "CHANGED: the server offers %s, '%s' records another one; this may "
			     "be an attack; if the new key is right, remove the old line by hand "
			     "and run 'msgw-agent trust'",
			     who, key->type, name, key->fingerprint, known_hosts);
	else
		rc = err_set(MSGW_ERR,
			     "ssh '%s': host key verification failed: no %s key for '%s' in '%s' "
			     "(the server offers %s); if that fingerprint is right, run "
			     "'msgw-agent trust' or add this line: %s",
			     who, key->type, name, known_hosts, key->fingerprint, key->line);
	free(name);
	return rc;
}

int ssh_hostkey_verify(const char *known_hosts, const struct ssh_hostkey *key, const char *who)
{
	enum ssh_hostkey_status st;
	int rc;

	if (!known_hosts || !*known_hosts)
		return err_set(MSGW_ECONFIG,
			       "ssh '%s': no known-hosts file configured (host keys are never "
			       "trusted on first use)",
			       who);
	rc = ssh_known_hosts_lookup(&st, known_hosts, key);
	if (rc)
		return err_wrap(rc, "ssh '%s'", who);
	return st == SSH_HOSTKEY_KNOWN ? 0 : verify_msg(st, known_hosts, key, who);
}

int ssh_known_hosts_append(const char *known_hosts, const char *line)
{
	struct stat st;
	char *text;
	size_t len, off = 0;
	int fd, rc = 0, need_nl = 0;

	fd = open(known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot open known-hosts '%s'", known_hosts);
	/* a file whose last line lacks its newline must not get ours glued on */
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		char last = '\n';
		int rfd = open(known_hosts, O_RDONLY | O_CLOEXEC);

		if (rfd >= 0) {
			if (pread(rfd, &last, 1, st.st_size - 1) == 1 && last != '\n')
				need_nl = 1;
			close(rfd);
		}
	}
	text = xasprintf("%s%s\n", need_nl ? "\n" : "", line);
	len = strlen(text);
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set_errno(MSGW_ERR, errno, "cannot write known-hosts '%s'",
					   known_hosts);
			break;
		}
		off += (size_t)n;
	}
	if (!rc && fsync(fd) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot sync known-hosts '%s'", known_hosts);
	if (close(fd) < 0 && !rc)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write known-hosts '%s'", known_hosts);
	free(text);
	return rc;
}

/* ---- connecting -------------------------------------------------------- */

static int tcp_connect(int *out, const char *who, const char *host, int port, int timeout)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	char portstr[16];
	int e, fd = -1, last = 0;
	bool timed_out = false;

	*out = -1;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	e = getaddrinfo(host, portstr, &hints, &res);
	if (e)
		return err_set(MSGW_ERR, "ssh '%s': resolve '%s': %s", who, host,
			       e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		int soerr = 0, r;
		socklen_t slen = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			last = errno;
			close(fd), fd = -1;
			continue;
		}
		p.fd = fd;
		p.events = POLLOUT;
		do
			r = poll(&p, 1, timeout > INT_MAX / 1000 ? INT_MAX : timeout * 1000);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			timed_out = true;
			close(fd), fd = -1;
			continue;
		}
		if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
			soerr = errno;
		if (soerr == 0)
			break;
		last = soerr;
		close(fd), fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (timed_out && !last)
			return err_set(MSGW_ERR, "ssh '%s': connect: timed out after %d s", who,
				       timeout);
		return err_set(MSGW_ERR, "ssh '%s': connect: %s", who,
			       last ? strerror(last) : "no address");
	}
	/* back to blocking: libssh2 runs blocking with its own timeout */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	*out = fd;
	return 0;
}

/* Prefer the host key types known_hosts records for this host, so the
 * server offers the key we can check (as OpenSSH does). */
static void prefer_known_types(LIBSSH2_SESSION *session, const char *known_hosts, const char *host,
			       int port)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	const char **algs = NULL;
	char *name;
	struct kh_read r = {known_hosts, NULL, false, 0};
	struct buf pref;
	int nalgs, i;

	if (!known_hosts || kh_load(&kh, session, NULL, &r))
		return;
	nalgs = libssh2_session_supported_algs(session, LIBSSH2_METHOD_HOSTKEY, &algs);
	if (nalgs <= 0) {
		libssh2_knownhost_free(kh);
		return;
	}
	name = location_known_hosts_name(host, port);
	buf_init(&pref);
	kh_recorded_methods(&pref, kh, name, algs, nalgs);
	/* then every other supported method, in libssh2's own order; only
	 * names libssh2 supports, as its pruning of others misuses memcpy */
	if (pref.len)
		for (i = 0; i < nalgs; i++)
			add_methods(&pref, algs[i], algs, nalgs);
	if (pref.len && libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, pref.data))
		log_debug("host key preference '%s' not accepted", pref.data);
	buf_release(&pref);
	free(name);
	libssh2_free(session, algs);
	libssh2_knownhost_free(kh);
}

/* TCP connect, SSH handshake; the host key is then in the session. */
static int open_transport(struct ssh_session *s, const char *known_hosts)
{
	int rc;

	rc = tcp_connect(&s->sock, s->name, s->host, s->port, s->timeout);
	if (rc)
		return rc;
	s->session = libssh2_session_init_ex(NULL, NULL, NULL, s);
	if (!s->session)
		return err_set(MSGW_ERR, "ssh '%s': cannot start libssh2 session", s->name);
	libssh2_session_set_blocking(s->session, 1);
	libssh2_session_set_timeout(s->session, (long)s->timeout * 1000);
	prefer_known_types(s->session, known_hosts, s->host, s->port);
	if (libssh2_session_handshake(s->session, s->sock))
		return ssh_session_fail(s, MSGW_ERR, "handshake");
	return 0;
}

static int check_hostkey(struct ssh_session *s, const char *known_hosts)
{
	struct ssh_hostkey key;
	const char *blob;
	size_t len = 0;
	int type, rc;

	blob = libssh2_session_hostkey(s->session, &len, &type);
	if (!blob)
		return ssh_session_fail(s, MSGW_ERR, "host key");
	rc = ssh_hostkey_init(&key, s->host, s->port, blob, len);
	if (rc)
		return err_wrap(rc, "ssh '%s'", s->name);
	rc = ssh_hostkey_verify(known_hosts, &key, s->name);
	if (!rc)
		log_debug("ssh '%s': host key %s %s verified", s->name, key.type, key.fingerprint);
	ssh_hostkey_release(&key);
	return rc;
}

/*
 * libssh2 before 1.11 signs with RSA keys only as "ssh-rsa" (SHA-1), which
 * OpenSSH 8.8 and later (and current Win32-OpenSSH) refuse by default: say
 * so when an RSA key fails.  The key is recognised by its .pub file or a
 * PEM header.
 */
static const char *rsa_hint(const char *identity)
{
	static const char hint[] =
	    " (libssh2 %s signs with RSA keys using SHA-1 ('ssh-rsa'), which "
	    "OpenSSH 8.8 and later refuse: use an ed25519 or ECDSA key)";
	static char msg[sizeof(hint) + 32];
	char head[64] = "", *pub;
	bool rsa = false;
	FILE *f;

	if (libssh2_version(0x010b00))
		return "";
	pub = xasprintf("%s.pub", identity);
	if ((f = fopen(pub, "re"))) {
		rsa = fgets(head, sizeof(head), f) && strncmp(head, "ssh-rsa ", 8) == 0;
		fclose(f);
	} else if ((f = fopen(identity, "re"))) {
		rsa = fgets(head, sizeof(head), f) &&
		      strncmp(head, "-----BEGIN RSA PRIVATE KEY-----", 31) == 0;
		fclose(f);
	}
	free(pub);
	if (!rsa)
		return "";
	snprintf(msg, sizeof(msg), hint, libssh2_version(0));
	return msg;
}

static int auth_key(struct ssh_session *s, const struct ssh_opts *opts)
{
	char *pass = NULL;
	int rc = 0;

	rc = ssh_key_file_check("identity", opts->identity);
	if (!rc && opts->passphrase_file)
		rc = ssh_passphrase_read(&pass, opts->passphrase_file);
	if (rc)
		return err_wrap(rc, "ssh '%s'", s->name);
	if (libssh2_userauth_publickey_fromfile_ex(s->session, s->user, (unsigned)strlen(s->user),
						   NULL, opts->identity, pass))
		rc = ssh_session_fail(s, MSGW_ERR,
				      "authentication failed for user '%s' with key '%s'", s->user,
				      opts->identity);
	if (rc && *rsa_hint(opts->identity)) {
		char *msg = xstrdup(err_last());

		err_set(rc, "%s%s", msg, rsa_hint(opts->identity));
		free(msg);
	}
	ssh_passphrase_free(pass);
	return rc;
}

static int auth_agent(struct ssh_session *s)
{
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	LIBSSH2_AGENT *agent;
	int rc = MSGW_ERR, tried = 0, r;

	if (!getenv("SSH_AUTH_SOCK"))
		return err_set(MSGW_ERR,
			       "ssh '%s': authentication failed for user '%s': no identity "
			       "configured and no ssh-agent (SSH_AUTH_SOCK is not set)",
			       s->name, s->user);
	agent = libssh2_agent_init(s->session);
	if (!agent)
		return ssh_session_fail(s, MSGW_ERR, "ssh-agent");
	if (libssh2_agent_connect(agent)) {
		rc = ssh_session_fail(s, MSGW_ERR, "authentication failed for user '%s': ssh-agent",
				      s->user);
		goto cleanup;
	}
	if (libssh2_agent_list_identities(agent)) {
		rc = ssh_session_fail(s, MSGW_ERR,
				      "authentication failed for user '%s': ssh-agent identities",
				      s->user);
		goto cleanup;
	}
	while ((r = libssh2_agent_get_identity(agent, &id, prev)) == 0) {
		prev = id;
		tried++;
		if (libssh2_agent_userauth(agent, s->user, id) == 0) {
			rc = 0;
			break;
		}
		if (transport_error(libssh2_session_last_errno(s->session))) {
			rc = ssh_session_fail(s, MSGW_ERR, "authentication with the ssh-agent");
			goto cleanup;
		}
	}
	if (rc)
		rc = err_set(MSGW_ERR,
			     "ssh '%s': authentication failed for user '%s' with the ssh-agent "
			     "(%d key%s tried)",
			     s->name, s->user, tried, tried == 1 ? "" : "s");
cleanup:
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return rc;
}

static void session_free(struct ssh_session *s)
{
	if (!s)
		return;
	if (s->session) {
		/* a quick goodbye; a dead peer must not hold us up */
		libssh2_session_set_blocking(s->session, 1);
		libssh2_session_set_timeout(s->session, 2000);
		if (s->sftp)
			libssh2_sftp_shutdown(s->sftp);
		if (!s->broken)
			libssh2_session_disconnect(s->session, "done");
		libssh2_session_free(s->session);
	}
	if (s->sock >= 0)
		close(s->sock);
	free(s->user);
	free(s->host);
	free(s->known_hosts);
	free(s->identity);
	free(s->name);
	free(s);
}

static struct ssh_session *session_new(const struct location *loc, int timeout)
{
	struct ssh_session *s = xcalloc(1, sizeof(*s));

	s->sock = -1;
	s->user = xstrdup(loc->user);
	s->host = xstrdup(loc->host);
	s->port = loc->port;
	s->name = location_name(loc);
	s->timeout = timeout > 0 ? timeout : SSH_DEFAULT_TIMEOUT;
	return s;
}

static int session_connect(struct ssh_session **out, const struct location *loc,
			   const struct ssh_opts *opts)
{
	struct ssh_session *s = session_new(loc, opts->timeout);
	int rc;

	*out = NULL;
	s->known_hosts = xstrdup(opts->known_hosts);
	s->identity = opts->identity ? xstrdup(opts->identity) : NULL;
	log_info("ssh '%s': connecting", s->name);
	rc = open_transport(s, opts->known_hosts);
	if (!rc)
		rc = check_hostkey(s, opts->known_hosts);
	if (!rc)
		rc = opts->identity ? auth_key(s, opts) : auth_agent(s);
	if (rc) {
		session_free(s);
		return rc;
	}
	s->last_used = time_now_ms();
	*out = s;
	return 0;
}

static void cache_unlink(struct ssh_session *s)
{
	struct ssh_session **pp;

	for (pp = &cache; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	s->next = NULL;
	s->cached = false;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* A cached session serves the same user, host and port, verified against
 * the same known_hosts and logged in with the same identity (a gateway
 * whose known_hosts lacks the key must not ride on another's session). */
static bool same_target(const struct ssh_session *s, const struct location *loc,
			const struct ssh_opts *opts)
{
	return s->port == loc->port && strcmp(s->user, loc->user) == 0 &&
	       strcmp(s->host, loc->host) == 0 && same_str(s->known_hosts, opts->known_hosts) &&
	       same_str(s->identity, opts->identity);
}

int ssh_session_get(struct ssh_session **out, const struct location *loc,
		    const struct ssh_opts *opts)
{
	struct ssh_session *s, *next;
	char *who;
	int rc;

	*out = NULL;
	if (!opts->known_hosts || !*opts->known_hosts) {
		who = location_name(loc);
		rc =
		    err_set(MSGW_ECONFIG,
			    "ssh '%s': no known-hosts file configured (host keys are never trusted "
			    "on first use)",
			    who);
		free(who);
		return rc;
	}
	global_init();
	for (s = cache; s; s = next) {
		next = s->next;
		if (!same_target(s, loc, opts))
			continue;
		if (!s->broken && s->refs == 0 &&
		    time_now_ms() - s->last_used > IDLE_REUSE_MAX * 1000LL)
			s->broken = true; /* may have been dropped meanwhile: start afresh */
		if (s->broken) {
			cache_unlink(s);
			if (s->refs == 0)
				session_free(s);
			continue;
		}
		s->refs++;
		ssh_session_keepalive(s);
		*out = s;
		return 0;
	}
	rc = session_connect(&s, loc, opts);
	if (rc)
		return rc;
	s->refs = 1;
	s->cached = true;
	s->next = cache;
	cache = s;
	*out = s;
	return 0;
}

void ssh_session_put(struct ssh_session *s)
{
	if (!s)
		return;
	if (--s->refs > 0)
		return;
	s->last_used = time_now_ms();
	if (!s->cached || s->broken) {
		if (s->cached)
			cache_unlink(s);
		session_free(s);
	}
}

void ssh_cache_flush(void)
{
	struct ssh_session *s, *next;

	for (s = cache; s; s = next) {
		next = s->next;
		if (s->refs == 0) {
			cache_unlink(s);
			session_free(s);
		}
	}
}

int ssh_hostkey_fetch(struct ssh_hostkey *out, const struct location *loc, const char *known_hosts,
		      int timeout)
{
	struct ssh_session *s = session_new(loc, timeout);
	const char *blob;
	size_t len = 0;
	int type, rc;

	memset(out, 0, sizeof(*out));
	global_init();
	rc = open_transport(s, known_hosts);
	if (!rc) {
		blob = libssh2_session_hostkey(s->session, &len, &type);
		if (!blob)
			rc = ssh_session_fail(s, MSGW_ERR, "host key");
		else if ((rc = ssh_hostkey_init(out, loc->host, loc->port, blob, len)))
			rc = err_wrap(rc, "ssh '%s'", s->name);
	}
	if (rc)
		s->broken = true;
	session_free(s);
	return rc;
}
