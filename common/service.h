/*
 * service: running a gateway's service commands (stop, start, status, a
 * health command) and its health check, on the gateway's host: locally, or
 * over an SSH exec channel for ssh:// locations (ssh.c registers that
 * backend with service_set_remote_opener, as fsys does).
 *
 * Local commands run under /bin/sh -c in their own process group; when the
 * timeout expires the whole group is killed (SIGTERM, then SIGKILL after two
 * seconds) and the result says so.
 */
#ifndef MSGW_SERVICE_H
#define MSGW_SERVICE_H

#include "config.h"
#include "fsys.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct service_result {
	int status;	/* exit status, or -1 when killed by a signal or timeout */
	bool timed_out; /* the timeout expired and the command was killed */
	char *out;	/* captured stdout (NUL-terminated, at most 64 KiB kept) */
	char *err;	/* captured stderr */
};

void service_result_release(struct service_result *r);

/* A byte stream to a TCP port as the gateway's host sees it (a socket, or
 * an SSH direct-tcpip channel); deadlines are time_now_ms() values. */
struct service_conn;

struct service_conn_ops {
	/* 0 when all len bytes went out before the deadline, else -1 */
	int (*send)(struct service_conn *c, const void *buf, size_t len, int64_t deadline);
	/* bytes read (> 0), 0 at the end of the stream, -1 on an error or at
	 * the deadline */
	ssize_t (*recv)(struct service_conn *c, void *buf, size_t len, int64_t deadline);
	void (*close)(struct service_conn *c);
};

struct service_conn {
	const struct service_conn_ops *ops;
};

struct service_host_ops {
	int (*run)(void *ctx, const char *command, int timeout, struct service_result *out);
	/* connect to TCP host:port as seen from the gateway's host; 0 when it
	 * accepts a connection, MSGW_ERR otherwise (quietly: it is retried) */
	int (*tcp_probe)(void *ctx, const char *host, int port, int timeout_ms);
	/* a stream to host:port (0), or MSGW_ERR quietly, like tcp_probe */
	int (*connect)(void *ctx, const char *host, int port, int timeout_ms,
		       struct service_conn **out);
	void (*free)(void *ctx);
};

struct service_host {
	const struct service_host_ops *ops;
	void *ctx;
	char *name; /* "local" or "user@host:port", for messages */
};

/* The host a location lives on: local for paths, ssh for ssh:// URLs. */
int service_host_open(struct service_host **out, const char *location,
		      const struct fsys_open_opts *opts);
int service_host_local(struct service_host **out);
void service_host_free(struct service_host *h);

typedef int (*service_remote_opener)(struct service_host **out, const char *location,
				     const struct fsys_open_opts *opts);
void service_set_remote_opener(service_remote_opener opener);

/* Run a command with a timeout in seconds (0: none).  Returns 0 when it ran
 * (whatever its status; see out->status) or an error when it could not be
 * started at all. */
int service_run(struct service_host *h, const char *command, int timeout,
		struct service_result *out);

/*
 * Run a command that must succeed: 0 when it exits 0, otherwise MSGW_ERR
 * with a message "what: 'command' exited with status N: <first stderr
 * line>" or "... timed out after N s (killed)".
 */
int service_run_checked(struct service_host *h, const char *what, const char *command, int timeout);

/*
 * Stopped means stopped: run the stop command (it must exit 0), then, when
 * a status command is configured, poll it every 250 ms until it reports the
 * service stopped (exits non-zero, but not 126 or 127, which say the shell
 * could not run it), for at most timeout seconds.  The stop command's exit
 * status alone is not trusted: `sc.exe stop` returns while the service is
 * STOP_PENDING, and some Win32-OpenSSH builds report 0 for everything.
 * MSGW_ERR with a message naming the commands when it never says stopped.
 */
int service_stop(struct service_host *h, const char *stop, const char *status, int timeout);

/* The start command (exit 0), then the status command until it reports the
 * service running (exit 0), at most timeout seconds. */
int service_start(struct service_host *h, const char *start, const char *status, int timeout);

/* 1 when the status command says the service runs, 0 when it says stopped,
 * cannot tell, or no status command is configured: whether a start after a
 * failed stop would start something the stop did not stop (when in doubt,
 * start: a gateway left down loses journal mail). */
int service_is_running(struct service_host *h, const char *status, int timeout);

/* The probe mailbox of a mail probe: its id and password (the caller
 * wipes the password). */
struct service_login {
	const char *mailbox;
	const char *password;
};

/*
 * Probes through h->ops->connect, within timeout_ms: a TLS handshake
 * (certificates not validated), or a POP3 greeting, STLS and the handshake,
 * then with l (may be NULL) USER/PASS and STAT.  0, or MSGW_ERR with the
 * reason in why (no error recorded: probes are retried).
 */
int service_probe_tls(struct service_host *h, const char *host, int port, int timeout_ms, char *why,
		      size_t whylen);
int service_probe_pop3(struct service_host *h, const char *host, int port, int timeout_ms,
		       const struct service_login *l, char *why, size_t whylen);

/*
 * The health check: "tcp:PORT" or "tcp:HOST:PORT" (a connection accepted,
 * HOST default 127.0.0.1 on the gateway's host) or a command exiting 0,
 * retried every 250 ms until timeout seconds have passed.  NULL or ""
 * means no check (0).  On failure MSGW_EHEALTH with the last reason.
 */
int service_health(struct service_host *h, const char *health, int timeout);

/*
 * A gateway's health check, as service_health: "tcp:", "tls:" (a TLS
 * handshake), "pop3:" (greeting and STLS) or a command; with probe-mailbox
 * and probe-password-file set, the pop3: check also logs in and runs STAT.
 * The password file must be readable by its owner only (else MSGW_ECONFIG
 * with the chmod to run); the password is wiped after use and never
 * appears in a message.
 */
int service_health_gateway(struct service_host *h, const struct config_gateway *gw);

/* Parse "tcp:PORT" / "tcp:HOST:PORT"; 1 for tcp forms (host_out malloc'd),
 * 0 for a command, MSGW_ECONFIG for a malformed tcp form. */
int service_parse_tcp(const char *health, char **host_out, int *port_out);

enum service_probe_kind {
	SERVICE_PROBE_COMMAND,
	SERVICE_PROBE_TCP,
	SERVICE_PROBE_TLS,
	SERVICE_PROBE_POP3
};

/* Parse KIND:PORT / KIND:HOST:PORT for tcp, tls and pop3 (host_out
 * malloc'd, default 127.0.0.1): the kind, SERVICE_PROBE_COMMAND for a
 * command, MSGW_ECONFIG for a malformed probe. */
int service_parse_probe(const char *health, enum service_probe_kind *kind_out, char **host_out,
			int *port_out);

#endif
