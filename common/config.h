/*
 * config: the msgw-backup.conf file both tools read (libconfuse; the only
 * module that includes confuse.h).
 *
 * config_load() parses and validates the whole file into plain structs, so
 * the rest of the code never sees libconfuse.  Every problem is reported as
 * one line "FILE:LINE: message" with code MSGW_ECONFIG: syntax errors,
 * unknown keys, bad durations, bad booleans, missing required keys,
 * unreadable identity/known-hosts/passphrase files, unknown "follows"
 * gateways, duplicate gateway names.  The file itself is config_path():
 * the -c argument, else $MSGW_BACKUP_CONF, else CONFIG_DEFAULT_PATH.
 */
#ifndef MSGW_CONFIG_H
#define MSGW_CONFIG_H

#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/msgw-backup/msgw-backup.conf"

/* A NULL-terminated list of strings, owned by its parent struct. */
struct strlist {
	char **v;
	size_t n;
};

struct config_gateway {
	char *name;		      /* section title */
	int line;		      /* line of the section in the file */
	char *location;		      /* local path or ssh://user@host[:port]/path (required) */
	char *identity;		      /* private key file, or NULL (ssh-agent) */
	char *passphrase_file;	      /* "passphrase-file": passphrase of an encrypted identity */
	char *known_hosts;	      /* known_hosts file for ssh locations */
	struct strlist include;	      /* default {"**"} */
	struct strlist exclude;	      /* default empty */
	struct strlist preserve;      /* default empty */
	struct strlist mailbox_store; /* "mailbox-store": further store folders (globs) */
	char *stop;		      /* service commands, NULL when unset */
	char *start;
	char *status;
	char *health;	     /* "tcp:", "tls:" or "pop3:" [HOST:]PORT, or a command; NULL: none */
	int timeout;	     /* seconds, default 60 */
	char *probe_mailbox; /* "probe-mailbox": mailbox the pop3: health check logs in to */
	char *probe_password_file; /* "probe-password-file": its password, owner-only file */
	char *follows;		   /* name of the gateway this one follows, or NULL */
	char *hook_pre_snapshot;   /* "hook-pre-snapshot" etc., NULL when unset */
	char *hook_post_snapshot;
	char *hook_post_restore;
	char *hook_failure;
	/* "max-file-size", "max-total-size": the most a restore or extract
	 * writes of one file and of all (bytes; the top-level values when
	 * unset here) */
	unsigned long long max_file_size, max_total_size;
	int strip_modes; /* "strip-modes": the top level's when unset here */
};

struct config_remote {
	char *name;
	int line;
	char *url;	/* required */
	char *identity; /* NULL: ssh-agent */
	char *passphrase_file;
	char *known_hosts;
	int push;	   /* "push": push after each snapshot, default false */
	int prune_remotes; /* "prune-remotes": force-push rewritten branches, default false */
};

struct config_retention {
	int keep_last; /* each -1 when unset */
	int keep_hourly;
	int keep_daily;
	int keep_weekly;
	int keep_monthly;
	int keep_pre_restore_days; /* "keep-pre-restore-days", default 30 */
};

struct config {
	char *path;	  /* the file this came from */
	char *repository; /* "repository", default /var/lib/msgw-backup/repo.git */
	char *state_dir;  /* "state-dir", default /var/lib/msgw-backup/state */
	char *key_file;	  /* "encryption" = "keyfile:PATH": PATH; NULL for "none" or unset */
	struct config_gateway *gateways;
	size_t ngateways;
	struct config_remote *remotes;
	size_t nremotes;
	int interval;		 /* schedule { interval }, seconds, default 900 */
	int jitter;		 /* schedule { jitter }, seconds, default interval/10 */
	int hook_timeout;	 /* "hook-timeout", seconds, default 60 */
	int parallel;		 /* "parallel": gateways read at once, default 32 */
	char *hook_pre_snapshot; /* global hooks; a gateway's own hook overrides */
	char *hook_post_snapshot;
	char *hook_post_restore;
	char *hook_failure;
	struct config_retention retention;
	unsigned long long max_file_size;  /* "max-file-size", default 64 MiB */
	unsigned long long max_total_size; /* "max-total-size", default 1 GiB */
	int strip_modes;		   /* "strip-modes", default true */
};

/*
 * Parse and validate the configuration file at path into *out (caller
 * frees with config_free).  On failure *out is NULL, the return is
 * MSGW_ECONFIG (or MSGW_ENOTFOUND when the file does not exist) and
 * err_last() is "FILE:LINE: message" (or "FILE: message" when no line
 * applies).
 */
int config_load(struct config **out, const char *path);

/* The most gateways a cycle reads at once ("parallel", --parallel). */
#define CONFIG_PARALLEL_MAX 256

/* Parse a "parallel" value, 1 to CONFIG_PARALLEL_MAX, into *out: 0, or
 * MSGW_ECONFIG with "bad number 'x' for 'parallel': must be 1 to 256". */
int config_parallel_parse(int *out, const char *text);

/* The file to read: explicit (from -c) when not NULL, else $MSGW_BACKUP_CONF,
 * else CONFIG_DEFAULT_PATH.  Borrowed. */
const char *config_path(const char *explicit_path);

/* Find a gateway by name; NULL (and err_set MSGW_ECONFIG "FILE: unknown
 * gateway 'x'") when absent.  Borrowed from cfg. */
const struct config_gateway *config_gateway_find(const struct config *cfg, const char *name);

/* Find a remote by name; NULL with an error message when absent. */
const struct config_remote *config_remote_find(const struct config *cfg, const char *name);

/*
 * Parse a duration: a positive integer followed by an optional unit s, m,
 * h, d or w ("90", "15m", "1h"); compound forms "1h30m" are accepted.
 * Returns 0 and *seconds_out, or MSGW_ECONFIG with a message.
 */
int config_parse_duration(long *seconds_out, const char *text);

void config_free(struct config *cfg);

#endif
