/*
 * ssh: libssh2 sessions to gateways' hosts, and the known_hosts check that
 * both these sessions and the repository's git transport (common/repo/remote.c)
 * use.  The SFTP backend of fsys (fsys/sftp.c) and the ssh backend of
 * service (service_ssh.c) are built on the sessions here.
 *
 * Sessions are cached per (user, host, port) for the life of the process
 * ("one session per host and run"; the known_hosts file and identity must
 * match too): ssh_session_get hands out a reference
 * to a live cached session or connects a new one; ssh_session_put gives it
 * back.  A session that failed at the transport level (timeout, dropped
 * connection) is marked broken and replaced on the next get.
 *
 * Host keys are verified against the configured known_hosts file (never
 * ~/.ssh/known_hosts) before authenticating.  There is no trust on first
 * use: an unknown or changed key stops with the key's SHA256 fingerprint and
 * the line to add; a key marked "@revoked" is refused, and "@cert-authority"
 * lines are warned about and not used.  Authentication is by a private key file (its passphrase
 * read from a file and wiped after use) or, with no identity configured, by
 * the ssh-agent.  Every error message starts with "ssh 'USER@HOST:PORT': "
 * and names the step that failed.
 */
#ifndef MSGW_SSH_H
#define MSGW_SSH_H

#include "location.h"

#include <stddef.h>

/* libssh2's own types, so users of this header need not include libssh2.h */
struct _LIBSSH2_SESSION;
struct _LIBSSH2_SFTP;
struct fsys;
struct fsys_open_opts;
struct service_host;

#define SSH_DEFAULT_TIMEOUT 60 /* seconds, when the configuration gives none */

struct ssh_opts {
	const char *identity;	     /* private key file, or NULL for the ssh-agent */
	const char *passphrase_file; /* passphrase of an encrypted identity, or NULL */
	const char *known_hosts;     /* required */
	int timeout;		     /* seconds: connect, and each blocking operation; 0: default */
};

struct ssh_session;

/* Register the ssh:// openers of fsys and service (call once at start-up,
 * before any location is opened).  Also arranges for cached sessions to be
 * closed at exit. */
void ssh_register(void);

/* The openers ssh_register() installs: fsys over SFTP (fsys/sftp.c) and
 * service commands over exec channels (service_ssh.c).  location is an
 * ssh:// URL (location.h); opts must name a known-hosts file. */
int fsys_sftp_open(struct fsys **out, const char *location, const struct fsys_open_opts *opts);
int service_ssh_open(struct service_host **out, const char *location,
		     const struct fsys_open_opts *opts);

/*
 * A session for loc, connected, host key verified and authenticated: a
 * cached one when there is a live one for the same user, host and port,
 * else a new one.  Returns a reference the caller gives back with
 * ssh_session_put.  Errors (MSGW_ERR; MSGW_ECONFIG when opts has no
 * known_hosts): "ssh 'u@h:p': connect: Connection refused",
 * "... host key verification failed: ...", "... authentication failed for
 * user 'u' with key 'FILE': ..." and so on.
 */
int ssh_session_get(struct ssh_session **out, const struct location *loc,
		    const struct ssh_opts *opts);

/* Give a reference back (NULL is fine).  The session stays cached. */
void ssh_session_put(struct ssh_session *s);

/* Close every cached session nobody holds (ssh_register runs it at exit). */
void ssh_cache_flush(void);

/* "user@host:port", borrowed from s. */
const char *ssh_session_name(const struct ssh_session *s);

/* The libssh2 handles, borrowed from s.  The session is in blocking mode
 * with its operation timeout set; a user that changes either restores it. */
struct _LIBSSH2_SESSION *ssh_session_handle(struct ssh_session *s);
/* The SFTP subsystem of s, started on first use. */
int ssh_session_sftp(struct _LIBSSH2_SFTP **out, struct ssh_session *s);
/* The socket, for poll() in non-blocking use. */
int ssh_session_socket(const struct ssh_session *s);
/* The operation timeout in seconds. */
int ssh_session_timeout(const struct ssh_session *s);

/* Send a keepalive if one is due (cheap; call before operations). */
void ssh_session_keepalive(struct ssh_session *s);

/*
 * Record an error "ssh 'NAME': WHAT: <libssh2's last error>" and return
 * code.  When libssh2's error is a transport failure (timeout, socket
 * closed or failing), the session is marked broken, so the next
 * ssh_session_get connects again.
 */
int ssh_session_fail(struct ssh_session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Mark s broken by hand (a channel that had to be abandoned). */
void ssh_session_set_broken(struct ssh_session *s);
/* Whether s is broken (its users should get a new session). */
int ssh_session_broken(const struct ssh_session *s);

/* ---- host keys ------------------------------------------------------- */

enum ssh_hostkey_status {
	SSH_HOSTKEY_KNOWN,   /* recorded for this host and port */
	SSH_HOSTKEY_UNKNOWN, /* nothing recorded for this key type */
	SSH_HOSTKEY_CHANGED  /* another key of the same type is recorded */
};

/* A server's host key, as libssh2 or libgit2 hand it over. */
struct ssh_hostkey {
	char *host; /* as in the location */
	int port;
	unsigned char *blob; /* raw public key blob (SSH wire format) */
	size_t len;
	char type[40];	      /* "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"... */
	char fingerprint[64]; /* "SHA256:" and unpadded base64, as OpenSSH shows it */
	char *line;	      /* the known_hosts line recording it, without '\n' */
};

/* Fill out from a raw key blob (copied).  MSGW_ERR when the blob does not
 * hold a key type name.  Release with ssh_hostkey_release. */
int ssh_hostkey_init(struct ssh_hostkey *out, const char *host, int port, const void *blob,
		     size_t len);
void ssh_hostkey_release(struct ssh_hostkey *k);

/*
 * Look key up in the known_hosts file (a missing file counts as empty).
 * Entries for "[host]:port" are used for ports other than 22 and plain
 * "host" entries for port 22, as OpenSSH does; hashed entries work.
 * A "@revoked" line for the host and key refuses the key even when a plain
 * line records it too (MSGW_ERR: "host key verification failed: the TYPE
 * key of 'NAME' (FINGERPRINT) is revoked by 'FILE' line N").
 * "@cert-authority" lines (and unknown markers) are not supported: a
 * warning names the file and line, and the line is not used.
 * Returns 0 and *status_out, or MSGW_ERR when the file cannot be read or
 * parsed or the key is revoked.
 */
int ssh_known_hosts_lookup(enum ssh_hostkey_status *status_out, const char *known_hosts,
			   const struct ssh_hostkey *key);

/* The same lookup over the text of a known_hosts file (text[0..len), any
 * bytes; known_hosts names it in messages), without the warnings: for
 * tests and the fuzzer. */
int ssh_known_hosts_lookup_text(enum ssh_hostkey_status *status_out, const char *known_hosts,
				const char *text, size_t len, const struct ssh_hostkey *key);

/*
 * The whole check, shared with the git transport's certificate callback:
 * 0 when key is recorded in known_hosts; otherwise MSGW_ERR with
 * "ssh 'WHO': host key verification failed: ..." saying whether the key is
 * unknown or changed, its type and fingerprint, and (for an unknown key)
 * the exact line to add or 'msgw-agent trust'.
 */
int ssh_hostkey_verify(const char *known_hosts, const struct ssh_hostkey *key, const char *who);

/*
 * Connect to loc (no authentication), and hand over the host key the
 * server offers, negotiated as ssh_session_get would (known key types of
 * known_hosts preferred; known_hosts may be NULL or missing).  For
 * 'msgw-agent trust'.
 */
int ssh_hostkey_fetch(struct ssh_hostkey *out, const struct location *loc, const char *known_hosts,
		      int timeout);

/* Append line and '\n' to the known_hosts file, creating it with mode 0600
 * when missing; synced before returning. */
int ssh_known_hosts_append(const char *known_hosts, const char *line);

/* Read a passphrase file: its first line, without the line end.  The
 * caller wipes and frees it with ssh_passphrase_free.  A file group or
 * others may read or change is refused as ssh_key_file_check says. */
int ssh_passphrase_read(char **out, const char *file);
void ssh_passphrase_free(char *p);

/* Refuse a private key file (what: "identity") that group or others may
 * read or change, as OpenSSH does: MSGW_ERR "identity 'FILE' is accessible
 * by group or others (mode 0644): run 'chmod 600 FILE'", or "cannot read
 * identity 'FILE': ..." when it cannot be looked at. */
int ssh_key_file_check(const char *what, const char *file);

/* "libssh2 1.10.0" */
const char *ssh_version(void);

#endif
