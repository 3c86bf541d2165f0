/*
 * config: parse and validate msgw-backup.conf with libconfuse, then copy
 * the result into the plain structs of config.h.
 *
 * Validation happens while libconfuse parses, in its value and section
 * callbacks, because only then does cfg->line name the line being read;
 * libconfuse keeps no line number per option.  Two hidden options carry the
 * lines needed afterwards: "#line" in each gateway and remote section (a
 * list whose default is parsed when the section opens, so its callback sees
 * the opening line) and "#follows-line".  Their names start with the
 * comment character, so no file can set them.  Every message goes through
 * fail(), which keeps the first one as "FILE:LINE: message"; libconfuse's
 * own messages arrive through on_confuse_error() and never reach stderr.
 *
 * The file is read whole and its '#' comments blanked before libconfuse
 * sees it (strip_comments() says why).  Relative paths in it (repository,
 * state-dir and the key files) are taken from the file's own directory.
 *
 * Not here: what the values mean (patterns, commands, remotes are checked
 * for form only), and reentrancy: libconfuse's lexer is global, so
 * config_load() must not run in two threads at once.
 */
#include "config.h"
#include "err.h"

#include <confuse.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_REPOSITORY	      "/var/lib/msgw-backup/repo.git"
#define DEFAULT_STATE_DIR	      "/var/lib/msgw-backup/state"
#define DEFAULT_TIMEOUT		      60
#define DEFAULT_INTERVAL	      900
#define DEFAULT_HOOK_TIMEOUT	      60
#define DEFAULT_PARALLEL	      32
#define DEFAULT_KEEP_PRE_RESTORE_DAYS 30
#define CONFIG_MAX_SIZE		      (1 << 20) /* bytes; a bigger file is a mistake */
#define DEFAULT_MAX_FILE_SIZE	      (64ull << 20)
#define DEFAULT_MAX_TOTAL_SIZE	      (1ull << 30)

/* The load in progress; libconfuse's callbacks take no user pointer. */
static struct {
	const char *path; /* the file as named in messages */
	char *dir;	  /* its directory, absolute: base of relative paths */
	int lines;	  /* lines in the file: messages at EOF name the last */
	int failed;	  /* a message is recorded; later ones are dropped */
} load;

/* A string option copied into a struct field, e.g. "identity". */
struct str_field {
	const char *key;
	size_t off;
	int is_path; /* resolve relative to the configuration's directory */
};

/* A list or number option copied into a struct field. */
struct field {
	const char *key;
	size_t off;
};

#define GW(f)  offsetof(struct config_gateway, f)
#define RM(f)  offsetof(struct config_remote, f)
#define TOP(f) offsetof(struct config, f)
#define RET(f) offsetof(struct config_retention, f)

static const struct str_field gateway_strs[] = {
    {"location", GW(location), 0},
    {"identity", GW(identity), 1},
    {"passphrase-file", GW(passphrase_file), 1},
    {"known-hosts", GW(known_hosts), 1},
    {"stop", GW(stop), 0},
    {"start", GW(start), 0},
    {"status", GW(status), 0},
    {"health", GW(health), 0},
    {"follows", GW(follows), 0},
    {"probe-mailbox", GW(probe_mailbox), 0},
    {"probe-password-file", GW(probe_password_file), 1},
    {"hook-pre-snapshot", GW(hook_pre_snapshot), 0},
    {"hook-post-snapshot", GW(hook_post_snapshot), 0},
    {"hook-post-restore", GW(hook_post_restore), 0},
    {"hook-failure", GW(hook_failure), 0},
    {NULL, 0, 0},
};

static const struct field gateway_lists[] = {
    {"include", GW(include)},
    {"exclude", GW(exclude)},
    {"preserve", GW(preserve)},
    {"mailbox-store", GW(mailbox_store)},
    {NULL, 0},
};

static const struct str_field remote_strs[] = {
    {"url", RM(url), 0},
    {"identity", RM(identity), 1},
    {"passphrase-file", RM(passphrase_file), 1},
    {"known-hosts", RM(known_hosts), 1},
    {NULL, 0, 0},
};

static const struct str_field top_strs[] = {
    {"hook-pre-snapshot", TOP(hook_pre_snapshot), 0},
    {"hook-post-snapshot", TOP(hook_post_snapshot), 0},
    {"hook-post-restore", TOP(hook_post_restore), 0},
    {"hook-failure", TOP(hook_failure), 0},
    {NULL, 0, 0},
};

static const struct field retention_ints[] = {
    {"keep-last", RET(keep_last)},
    {"keep-hourly", RET(keep_hourly)},
    {"keep-daily", RET(keep_daily)},
    {"keep-weekly", RET(keep_weekly)},
    {"keep-monthly", RET(keep_monthly)},
    {"keep-pre-restore-days", RET(keep_pre_restore_days)},
    {NULL, 0},
};

static char **field_str(void *obj, size_t off)
{
	return (char **)(void *)((char *)obj + off);
}

/* ---- messages ---------------------------------------------------------- */

static int vfail(int line, const char *fmt, va_list ap)
{
	char msg[768];

	if (load.failed)
		return -1;
	load.failed = 1;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > load.lines)
		line = load.lines;
	if (line > 0)
		err_set(MSGW_ECONFIG, "%s:%d: %s", load.path, line, msg);
	else
		err_set(MSGW_ECONFIG, "%s: %s", load.path, msg);
	return -1;
}

/* Record "FILE:LINE: message" unless an earlier error was; returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(line, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * libconfuse's duplicate-title message says neither the kind of section nor
 * where; the parent knows which kind already has the title.
 */
static void duplicate_title(cfg_t *cfg, va_list ap)
{
	va_list cp;
	const char *title, *kind;
	int gw, rm;

	va_copy(cp, ap);
	title = va_arg(cp, const char *);
	va_end(cp);
	gw = cfg_gettsec(cfg, "gateway", title) != NULL;
	rm = cfg_gettsec(cfg, "remote", title) != NULL;
	kind = gw && rm ? "gateway or remote" : gw ? "gateway" : "remote";
	fail(cfg->line, "duplicate %s '%s'", kind, title);
}

static void on_confuse_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	int line = cfg ? cfg->line : 0;

	if (cfg && strcmp(fmt, "found duplicate title '%s'") == 0 && strcmp(cfg->name, "root") == 0)
		duplicate_title(cfg, ap);
	else if (strcmp(fmt, "no such option '%s'") == 0)
		vfail(line, "unknown option '%s'", ap);
	else
		vfail(line, fmt, ap);
}

/* ---- paths ------------------------------------------------------------- */

/* path relative to load.dir unless absolute; NULL when out of memory. */
static char *resolve(const char *path)
{
	char *out;

	if (path[0] == '/')
		return strdup(path);
	if (asprintf(&out, "%s%s%s", load.dir, strcmp(load.dir, "/") ? "/" : "", path) < 0)
		return NULL;
	return out;
}

/* The absolute directory of file; NULL with errno set on failure. */
static char *dir_of(const char *file)
{
	const char *slash = strrchr(file, '/');
	char *cwd = NULL, *out = NULL;
	int len = slash ? (int)(slash - file) : 0;

	if (file[0] == '/')
		return strndup(file, len ? (size_t)len : 1);
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	if (asprintf(&out, "%s%s%.*s", cwd, slash ? "/" : "", len, file) < 0)
		out = NULL;
	free(cwd);
	return out;
}

/* 0 when path opens for reading as a non-directory, else an errno value. */
static int read_errno(const char *path)
{
	struct stat st;
	int fd, e = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (S_ISDIR(st.st_mode))
		e = EISDIR;
	close(fd);
	return e;
}

/* ---- value checks ------------------------------------------------------ */

static long unit_seconds(char c)
{
	switch (c) {
	case 's':
		return 1;
	case 'm':
		return 60;
	case 'h':
		return 3600;
	case 'd':
		return 86400;
	case 'w':
		return 604800;
	default:
		return 0;
	}
}

/*
 * Parse "90", "15m", "1h30m" into seconds (0 allowed, at most INT_MAX).
 * Returns NULL, or why text is no duration ("" when there is nothing more
 * to say than "bad duration").
 */
static const char *duration_reason(long *out, const char *text)
{
	const char *p = text;
	int bare = *text && text[strspn(text, "0123456789")] == '\0';
	long total = 0, n, unit;

	if (*p == '-')
		return "must be positive";
	do {
		if (!isdigit((unsigned char)*p))
			return "";
		for (n = 0; isdigit((unsigned char)*p); p++) {
			if (n > (INT_MAX - (*p - '0')) / 10)
				return "too large";
			n = n * 10 + (*p - '0');
		}
		/* a number without a unit is seconds, but only alone: "1h30" is unclear */
		unit = bare ? 1 : unit_seconds(*p++);
		if (!unit)
			return "";
		if (n > (INT_MAX - total) / unit)
			return "too large";
		total += n * unit;
	} while (*p);
	*out = total;
	return NULL;
}

int config_parse_duration(long *seconds_out, const char *text)
{
	const char *why = duration_reason(seconds_out, text);

	if (!why && *seconds_out == 0)
		why = "must be positive";
	if (!why)
		return 0;
	return err_set(MSGW_ECONFIG, "bad duration '%s'%s%s", text, *why ? ": " : "", why);
}

static int parse_duration_opt(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *why;
	long secs = 0;

	why = duration_reason(&secs, value);
	if (!why && secs == 0 && strcmp(opt->name, "jitter") != 0)
		why = "must be positive";
	if (why)
		return fail(cfg->line, "bad duration '%s' for '%s'%s%s", value, opt->name,
			    *why ? ": " : "", why);
	*(const char **)result = value;
	return 0;
}

/* A size: a positive number of bytes, or of KiB, MiB, GiB or TiB with the
 * suffix K, M, G or T ("64M"); NULL and *out, or why it is bad. */
static const char *size_reason(uint64_t *out, const char *text)
{
	const char *p = text;
	uint64_t n = 0;
	unsigned shift = 0;

	if (!isdigit((unsigned char)*p))
		return *p == '-' ? "must be positive" : "";
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (UINT64_MAX / 2 - (uint64_t)(*p - '0')) / 10)
			return "too large";
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		const char *units = "KMGT", *u = strchr(units, toupper((unsigned char)*p));

		if (!u || p[1])
			return "";
		shift = 10 * (unsigned)(u - units + 1);
	}
	if (n > (UINT64_MAX / 2) >> shift)
		return "too large";
	if (n == 0)
		return "must be positive";
	*out = n << shift;
	return NULL;
}

static int parse_size_opt(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *why;
	uint64_t n = 0;

	why = size_reason(&n, value);
	if (why)
		return fail(cfg->line, "bad size '%s' for '%s'%s%s", value, opt->name,
			    *why ? ": " : "", why);
	*(const char **)result = value;
	return 0;
}

/* A validated size option, or dflt when unset. */
static uint64_t size_of(cfg_t *sec, const char *key, uint64_t dflt)
{
	const char *s = cfg_getstr(sec, key);
	uint64_t n = dflt;

	if (s)
		size_reason(&n, s);
	return n;
}

/* Retention counts: decimal, 0..INT_MAX. */
static int parse_count(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *p = value;
	long n = 0;

	if (*p == '-' && isdigit((unsigned char)p[1]))
		return fail(cfg->line, "bad number '%s' for '%s': must not be negative", value,
			    opt->name);
	if (!*p)
		return fail(cfg->line, "bad number '' for '%s'", opt->name);
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (INT_MAX - (*p - '0')) / 10)
			return fail(cfg->line, "bad number '%s' for '%s': too large", value,
				    opt->name);
		n = n * 10 + (*p - '0');
	}
	if (*p)
		return fail(cfg->line, "bad number '%s' for '%s'", value, opt->name);
	*(long *)result = n;
	return 0;
}

int config_parallel_parse(int *out, const char *text)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (!*text || *end || errno || n < 1 || n > CONFIG_PARALLEL_MAX)
		return err_set(MSGW_ECONFIG, "bad number '%s' for 'parallel': must be 1 to %d",
			       text, CONFIG_PARALLEL_MAX);
	*out = (int)n;
	return 0;
}

/* parallel: how many gateways a cycle reads at once */
static int parse_parallel(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	int n;

	(void)opt;
	if (config_parallel_parse(&n, value))
		return fail(cfg->line, "%s", err_last());
	*(long *)result = n;
	return 0;
}

static int parse_bool(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	int b = cfg_parse_boolean(value);

	if (b < 0)
		return fail(cfg->line, "bad boolean '%s' for '%s'", value, opt->name);
	*(int *)result = b;
	return 0;
}

/* A boolean kept as its text, so that unset can be told from false (a
 * gateway's value replaces the top level's only when set). */
static int parse_bool_text(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (cfg_parse_boolean(value) < 0)
		return fail(cfg->line, "bad boolean '%s' for '%s'", value, opt->name);
	*(const char **)result = value;
	return 0;
}

/* A validated boolean kept as text (parse_bool_text), or dflt when unset. */
static int bool_of(cfg_t *sec, const char *key, int dflt)
{
	const char *s = cfg_getstr(sec, key);

	return s ? cfg_parse_boolean(s) == 1 : dflt;
}

static int parse_nonempty(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (!*value)
		return fail(cfg->line, "empty value for '%s'", opt->name);
	*(const char **)result = value;
	return 0;
}

/* encryption: "none" or "keyfile:PATH" (the file may not exist yet:
 * 'msgw-agent init --encrypt' creates it) */
static int parse_encryption(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (strcmp(value, "none") != 0 && (strncmp(value, "keyfile:", 8) != 0 || !value[8]))
		return fail(cfg->line,
			    "bad value '%s' for '%s' (expected \"none\" or "
			    "\"keyfile:PATH\")",
			    value, opt->name);
	*(const char **)result = value;
	return 0;
}

/* identity, known-hosts, passphrase-file: must be readable files now;
 * a known-hosts file may also not exist yet in an existing directory
 * ('msgw-agent trust' creates it, and a missing one trusts nothing). */
static int parent_is_dir(const char *path)
{
	char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
	struct stat st;
	int ok;

	if (slash)
		*slash = '\0';
	ok = slash && stat(*dir ? dir : "/", &st) == 0 && S_ISDIR(st.st_mode);
	free(dir);
	return ok;
}

static int parse_readable(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char *path;
	int e;

	if (!*value)
		return fail(cfg->line, "empty value for '%s'", opt->name);
	path = resolve(value);
	if (!path)
		return fail(cfg->line, "out of memory");
	e = read_errno(path);
	if (e == ENOENT && strcmp(opt->name, "known-hosts") == 0 && parent_is_dir(path))
		e = 0;
	if (e)
		fail(cfg->line, "cannot read %s '%s': %s", opt->name, path, strerror(e));
	free(path);
	if (e)
		return -1;
	*(const char **)result = value;
	return 0;
}

/* probe-password-file: a readable file that only its owner may read (as
 * OpenSSH demands of private keys), checked again when it is used. */
static int parse_secret(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct stat st;
	char *path;
	int rc = 0;

	if (parse_readable(cfg, opt, value, result))
		return -1;
	path = resolve(value);
	if (!path)
		return fail(cfg->line, "out of memory");
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		rc = fail(cfg->line, "%s '%s' is readable by others: run 'chmod 600 %s'", opt->name,
			  path, path);
	free(path);
	return rc;
}

/* A port: decimal 1..65535, the whole of s[0..len). */
static int port_ok(const char *s, size_t len)
{
	long n = 0;
	size_t i;

	if (len == 0 || len > 5)
		return 0;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return 0;
		n = n * 10 + (s[i] - '0');
	}
	return n >= 1 && n <= 65535;
}

/* ssh://[USER@]HOST[:PORT]/PATH */
static int ssh_url_ok(const char *url)
{
	const char *auth = url + strlen("ssh://");
	const char *slash = strchr(auth, '/');
	const char *at, *host, *colon;

	if (!slash || !slash[1])
		return 0;
	at = memchr(auth, '@', (size_t)(slash - auth));
	host = at ? at + 1 : auth;
	if (at == auth)
		return 0;
	colon = memchr(host, ':', (size_t)(slash - host));
	if (colon && !port_ok(colon + 1, (size_t)(slash - colon - 1)))
		return 0;
	return (colon ? colon : slash) > host;
}

static int parse_location(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	(void)opt;
	if (strncmp(value, "ssh://", 6) == 0) {
		if (!ssh_url_ok(value))
			return fail(cfg->line,
				    "bad location '%s': expected ssh://[USER@]HOST[:PORT]/PATH",
				    value);
	} else if (strstr(value, "://") || (value[0] != '/' && strpbrk(value, ":@"))) {
		return fail(cfg->line, "bad location '%s': ssh locations must start with ssh://",
			    value);
	} else if (value[0] != '/') {
		return fail(cfg->line, "bad location '%s': local paths must be absolute", value);
	}
	*(const char **)result = value;
	return 0;
}

/* The probe kinds of a health check: "tcp:", "tls:", "pop3:". */
static const char *probe_kind(const char *value)
{
	static const char *const kinds[] = {"tcp:", "tls:", "pop3:"};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strncmp(value, kinds[i], strlen(kinds[i])) == 0)
			return kinds[i];
	return NULL;
}

/* KIND:PORT or KIND:HOST:PORT for tcp, tls and pop3, or any non-blank
 * command. */
static int parse_health(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *rest, *colon, *kind = probe_kind(value);
	int ok;

	(void)opt;
	if (kind) {
		rest = value + strlen(kind);
		colon = strrchr(rest, ':');
		ok = colon ? colon > rest && port_ok(colon + 1, strlen(colon + 1))
			   : port_ok(rest, strlen(rest));
		if (!ok)
			return fail(cfg->line,
				    "bad health check '%s': expected %sPORT or %sHOST:PORT "
				    "with PORT 1-65535",
				    value, kind, kind);
	} else if (value[strspn(value, " \t\r\n")] == '\0') {
		return fail(cfg->line, "bad health check '%s': empty command", value);
	}
	*(const char **)result = value;
	return 0;
}

static int parse_follows(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	(void)opt;
	if (cfg->title && strcmp(cfg->title, value) == 0)
		return fail(cfg->line, "gateway '%s' follows itself", value);
	if (cfg_setint(cfg, "#follows-line", cfg->line) != CFG_SUCCESS)
		return fail(cfg->line, "out of memory");
	*(const char **)result = value;
	return 0;
}

/* Value of the hidden "#line" list, parsed when its section opens. */
static int note_line(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	(void)opt;
	(void)value;
	*(long *)result = cfg->line;
	return 0;
}

/* ---- section checks ---------------------------------------------------- */

/* Gateway and remote names become git ref name components. */
static const char *name_reason(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return "empty";
	if (name[strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			      "0123456789._-")] != '\0')
		return "only letters, digits, '.', '_' and '-' are allowed";
	if (name[0] == '.' || name[0] == '-')
		return "must not start with '.' or '-'";
	if (strstr(name, ".."))
		return "must not contain '..'";
	if (len >= 5 && strcmp(name + len - 5, ".lock") == 0)
		return "must not end with '.lock'";
	return NULL;
}

/* Runs when a gateway or remote section closes (cfg is its parent). */
static int check_section(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	int gateway = strcmp(opt->name, "gateway") == 0;
	const char *required = gateway ? "location" : "url";
	const char *why;
	int line;

	if (!sec)
		return fail(cfg->line, "out of memory");
	line = (int)cfg_getnint(sec, "#line", 0);
	why = name_reason(sec->title);
	if (why)
		return fail(line, "bad %s name '%s': %s", opt->name, sec->title, why);
	if (!cfg_getstr(sec, required))
		return fail(line, "%s '%s' has no '%s'", opt->name, sec->title, required);
	return 0;
}

/* A mail probe needs its password file and a pop3: health check. */
static void check_probes(cfg_t *root)
{
	unsigned int i, n = cfg_size(root, "gateway");

	for (i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(root, "gateway", i);
		const char *mbx = cfg_getstr(sec, "probe-mailbox");
		const char *pwf = cfg_getstr(sec, "probe-password-file");
		const char *health = cfg_getstr(sec, "health");
		int line = (int)cfg_getnint(sec, "#line", 0);

		if (!mbx != !pwf) {
			fail(line, "gateway '%s' has '%s' without '%s'", sec->title,
			     mbx ? "probe-mailbox" : "probe-password-file",
			     mbx ? "probe-password-file" : "probe-mailbox");
			return;
		}
		if (mbx && (!health || strncmp(health, "pop3:", 5) != 0)) {
			fail(line,
			     "gateway '%s' has 'probe-mailbox' but its health check is not "
			     "pop3:PORT",
			     sec->title);
			return;
		}
	}
}

/* Every "follows" names a gateway, and following never loops. */
static int check_follows(cfg_t *root)
{
	unsigned int i, n = cfg_size(root, "gateway"), hops;
	cfg_t *sec, *next;
	const char *target;

	for (i = 0; i < n; i++) {
		sec = cfg_getnsec(root, "gateway", i);
		target = cfg_getstr(sec, "follows");
		if (!target)
			continue;
		next = cfg_gettsec(root, "gateway", target);
		if (!next)
			return fail((int)cfg_getint(sec, "#follows-line"),
				    "gateway '%s' follows unknown gateway '%s'", sec->title,
				    target);
		for (hops = 0; next && next != sec && hops < n; hops++) {
			const char *t = cfg_getstr(next, "follows");

			next = t ? cfg_gettsec(root, "gateway", t) : NULL;
		}
		if (next == sec)
			return fail((int)cfg_getint(sec, "#follows-line"),
				    "gateway '%s' follows itself through '%s'", sec->title, target);
	}
	return 0;
}

/* ---- the parser -------------------------------------------------------- */

#define HOOK_OPTS                                                                                  \
	CFG_STR("hook-pre-snapshot", 0, CFGF_NODEFAULT),                                           \
	    CFG_STR("hook-post-snapshot", 0, CFGF_NODEFAULT),                                      \
	    CFG_STR("hook-post-restore", 0, CFGF_NODEFAULT),                                       \
	    CFG_STR("hook-failure", 0, CFGF_NODEFAULT)

#define DURATION(name)	CFG_STR_CB(name, 0, CFGF_NODEFAULT, parse_duration_opt)
#define READABLE(name)	CFG_STR_CB(name, 0, CFGF_NODEFAULT, parse_readable)
#define COUNT(name, d)	CFG_INT_CB(name, d, CFGF_NONE, parse_count)
#define SIZE(name)	CFG_STR_CB(name, 0, CFGF_NODEFAULT, parse_size_opt)
#define BOOL_TEXT(name) CFG_STR_CB(name, 0, CFGF_NODEFAULT, parse_bool_text)
#define TITLED		(CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES)

static cfg_t *new_parser(void)
{
	cfg_opt_t gateway_opts[] = {
	    CFG_INT_LIST_CB("#line", "{0}", CFGF_NONE, note_line),
	    CFG_INT("#follows-line", 0, CFGF_NONE),
	    CFG_STR_CB("location", 0, CFGF_NODEFAULT, parse_location),
	    READABLE("identity"),
	    READABLE("passphrase-file"),
	    READABLE("known-hosts"),
	    CFG_STR_LIST("include", "{\"**\"}", CFGF_NONE),
	    CFG_STR_LIST("exclude", 0, CFGF_NONE),
	    CFG_STR_LIST("preserve", 0, CFGF_NONE),
	    CFG_STR_LIST("mailbox-store", 0, CFGF_NONE),
	    CFG_STR("stop", 0, CFGF_NODEFAULT),
	    CFG_STR("start", 0, CFGF_NODEFAULT),
	    CFG_STR("status", 0, CFGF_NODEFAULT),
	    CFG_STR_CB("health", 0, CFGF_NODEFAULT, parse_health),
	    DURATION("timeout"),
	    CFG_STR_CB("follows", 0, CFGF_NODEFAULT, parse_follows),
	    CFG_STR_CB("probe-mailbox", 0, CFGF_NODEFAULT, parse_nonempty),
	    CFG_STR_CB("probe-password-file", 0, CFGF_NODEFAULT, parse_secret),
	    SIZE("max-file-size"),
	    SIZE("max-total-size"),
	    BOOL_TEXT("strip-modes"),
	    HOOK_OPTS,
	    CFG_END(),
	};
	cfg_opt_t remote_opts[] = {
	    CFG_INT_LIST_CB("#line", "{0}", CFGF_NONE, note_line),
	    CFG_STR_CB("url", 0, CFGF_NODEFAULT, parse_nonempty),
	    READABLE("identity"),
	    READABLE("passphrase-file"),
	    READABLE("known-hosts"),
	    CFG_BOOL_CB("push", cfg_false, CFGF_NONE, parse_bool),
	    CFG_BOOL_CB("prune-remotes", cfg_false, CFGF_NONE, parse_bool),
	    CFG_END(),
	};
	cfg_opt_t schedule_opts[] = {DURATION("interval"), DURATION("jitter"), CFG_END()};
	cfg_opt_t retention_opts[] = {
	    COUNT("keep-last", -1),
	    COUNT("keep-hourly", -1),
	    COUNT("keep-daily", -1),
	    COUNT("keep-weekly", -1),
	    COUNT("keep-monthly", -1),
	    COUNT("keep-pre-restore-days", DEFAULT_KEEP_PRE_RESTORE_DAYS),
	    CFG_END(),
	};
	cfg_opt_t opts[] = {
	    CFG_STR_CB("repository", 0, CFGF_NODEFAULT, parse_nonempty),
	    CFG_STR_CB("state-dir", 0, CFGF_NODEFAULT, parse_nonempty),
	    CFG_STR_CB("encryption", 0, CFGF_NODEFAULT, parse_encryption),
	    DURATION("hook-timeout"),
	    CFG_INT_CB("parallel", DEFAULT_PARALLEL, CFGF_NONE, parse_parallel),
	    SIZE("max-file-size"),
	    SIZE("max-total-size"),
	    BOOL_TEXT("strip-modes"),
	    HOOK_OPTS,
	    CFG_SEC("gateway", gateway_opts, TITLED),
	    CFG_SEC("remote", remote_opts, TITLED),
	    CFG_SEC("schedule", schedule_opts, CFGF_NONE),
	    CFG_SEC("retention", retention_opts, CFGF_NONE),
	    CFG_END(),
	};
	cfg_t *cfg;
	int i;

	for (i = 0; opts[i].name; i++)
		if (opts[i].subopts && opts[i].flags & CFGF_TITLE)
			opts[i].validcb = check_section;
	cfg = cfg_init(opts, CFGF_NONE);
	if (cfg)
		cfg_set_error_function(cfg, on_confuse_error);
	return cfg;
}

/* ---- copying into struct config ---------------------------------------- */

static int oom(void)
{
	return err_set(MSGW_ERR, "%s: out of memory", load.path);
}

static int copy_strs(void *obj, cfg_t *sec, const struct str_field *f)
{
	const char *s;
	char **dst;

	for (; f->key; f++) {
		s = cfg_getstr(sec, f->key);
		if (!s)
			continue;
		dst = field_str(obj, f->off);
		*dst = f->is_path ? resolve(s) : strdup(s);
		if (!*dst)
			return oom();
	}
	return 0;
}

static void free_strs(void *obj, const struct str_field *f)
{
	for (; f->key; f++)
		free(*field_str(obj, f->off));
}

static int copy_list(struct strlist *out, cfg_t *sec, const char *key)
{
	unsigned int i, n = cfg_size(sec, key);

	out->v = calloc(n + 1, sizeof(*out->v));
	if (!out->v)
		return oom();
	for (i = 0; i < n; i++) {
		out->v[i] = strdup(cfg_getnstr(sec, key, i));
		if (!out->v[i])
			return oom();
		out->n++;
	}
	return 0;
}

static void free_list(struct strlist *l)
{
	size_t i;

	for (i = 0; l->v && i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* A validated duration option, or dflt when unset. */
static int duration_of(cfg_t *sec, const char *key, long dflt)
{
	const char *s = cfg_getstr(sec, key);
	long secs = dflt;

	if (s)
		duration_reason(&secs, s);
	return (int)secs;
}

static int copy_gateway(struct config_gateway *g, cfg_t *sec, const struct config *c)
{
	const struct field *l;
	int rc;

	g->line = (int)cfg_getnint(sec, "#line", 0);
	g->max_file_size = size_of(sec, "max-file-size", c->max_file_size);
	g->max_total_size = size_of(sec, "max-total-size", c->max_total_size);
	g->strip_modes = bool_of(sec, "strip-modes", c->strip_modes);
	g->timeout = duration_of(sec, "timeout", DEFAULT_TIMEOUT);
	g->name = strdup(sec->title);
	if (!g->name)
		return oom();
	rc = copy_strs(g, sec, gateway_strs);
	for (l = gateway_lists; !rc && l->key; l++)
		rc = copy_list((struct strlist *)(void *)((char *)g + l->off), sec, l->key);
	return rc;
}

static int copy_remote(struct config_remote *r, cfg_t *sec)
{
	r->line = (int)cfg_getnint(sec, "#line", 0);
	r->push = cfg_getbool(sec, "push") == cfg_true;
	r->prune_remotes = cfg_getbool(sec, "prune-remotes") == cfg_true;
	r->name = strdup(sec->title);
	if (!r->name)
		return oom();
	return copy_strs(r, sec, remote_strs);
}

static int copy_sections(struct config *c, cfg_t *root)
{
	size_t i;
	int rc = 0;

	c->ngateways = cfg_size(root, "gateway");
	c->nremotes = cfg_size(root, "remote");
	c->gateways = calloc(c->ngateways ? c->ngateways : 1, sizeof(*c->gateways));
	c->remotes = calloc(c->nremotes ? c->nremotes : 1, sizeof(*c->remotes));
	if (!c->gateways || !c->remotes) {
		c->ngateways = c->nremotes = 0;
		return oom();
	}
	for (i = 0; !rc && i < c->ngateways; i++)
		rc = copy_gateway(&c->gateways[i], cfg_getnsec(root, "gateway", i), c);
	for (i = 0; !rc && i < c->nremotes; i++)
		rc = copy_remote(&c->remotes[i], cfg_getnsec(root, "remote", i));
	return rc;
}

static void copy_scalars(struct config *c, cfg_t *root)
{
	cfg_t *sched = cfg_getsec(root, "schedule");
	cfg_t *ret = cfg_getsec(root, "retention");
	const struct field *f;

	c->interval = duration_of(sched, "interval", DEFAULT_INTERVAL);
	c->jitter = duration_of(sched, "jitter", c->interval / 10);
	c->hook_timeout = duration_of(root, "hook-timeout", DEFAULT_HOOK_TIMEOUT);
	c->parallel = (int)cfg_getint(root, "parallel");
	c->max_file_size = size_of(root, "max-file-size", DEFAULT_MAX_FILE_SIZE);
	c->max_total_size = size_of(root, "max-total-size", DEFAULT_MAX_TOTAL_SIZE);
	c->strip_modes = bool_of(root, "strip-modes", 1);
	for (f = retention_ints; f->key; f++)
		*(int *)(void *)((char *)&c->retention + f->off) = (int)cfg_getint(ret, f->key);
}

static int copy_config(struct config **out, cfg_t *root, const char *path)
{
	struct config *c = calloc(1, sizeof(*c));
	const char *repo = cfg_getstr(root, "repository");
	const char *state = cfg_getstr(root, "state-dir");
	const char *enc = cfg_getstr(root, "encryption");
	int rc;

	*out = c;
	if (!c)
		return oom();
	copy_scalars(c, root);
	c->path = strdup(path);
	c->repository = resolve(repo ? repo : DEFAULT_REPOSITORY);
	c->state_dir = resolve(state ? state : DEFAULT_STATE_DIR);
	if (!c->path || !c->repository || !c->state_dir)
		return oom();
	if (enc && strncmp(enc, "keyfile:", 8) == 0 && !(c->key_file = resolve(enc + 8)))
		return oom();
	rc = copy_strs(c, root, top_strs);
	return rc ? rc : copy_sections(c, root);
}

/* ---- reading the file -------------------------------------------------- */

/*
 * Blank out '#' comments outside quoted strings, keeping the newlines.
 * libconfuse 3.3 counts each comment line more than once, which would put
 * every later message on the wrong line, and rejects comments inside lists.
 */
static void strip_comments(char *buf, size_t len)
{
	char quote = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (quote) {
			if (buf[i] == '\\' && i + 1 < len)
				i++;
			else if (buf[i] == quote)
				quote = 0;
		} else if (buf[i] == '"' || buf[i] == '\'') {
			quote = buf[i];
		} else if (buf[i] == '#') {
			for (; i < len && buf[i] != '\n'; i++)
				buf[i] = ' ';
		}
	}
}

static int count_lines(const char *buf, size_t len)
{
	int n = len > 0 && buf[len - 1] != '\n';
	size_t i;

	for (i = 0; i < len; i++)
		n += buf[i] == '\n' && n < INT_MAX;
	return n;
}

static int read_error(const char *path, int e)
{
	return err_set_errno(e == ENOENT ? MSGW_ENOTFOUND : MSGW_ECONFIG, e,
			     "%s: cannot read configuration", path);
}

/* Read fd to EOF into buf (cap bytes); 0 or an errno value. */
static int read_all(int fd, char *buf, size_t cap, size_t *len_out)
{
	ssize_t n;

	*len_out = 0;
	do {
		n = read(fd, buf + *len_out, cap - *len_out);
		if (n < 0 && errno != EINTR)
			return errno;
		if (n > 0)
			*len_out += (size_t)n;
	} while (n != 0 && *len_out < cap);
	return 0;
}

/* The whole file, comments blanked, in *out; *len_out bytes. */
static int read_config(char **out, size_t *len_out, const char *path)
{
	char *buf = NULL;
	int fd, e, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return read_error(path, errno);
	buf = malloc(CONFIG_MAX_SIZE + 1);
	if (!buf) {
		rc = oom();
		goto cleanup;
	}
	e = read_all(fd, buf, CONFIG_MAX_SIZE + 1, len_out);
	if (e)
		rc = read_error(path, e);
	else if (*len_out > CONFIG_MAX_SIZE)
		rc = err_set(MSGW_ECONFIG, "%s: configuration larger than %d bytes", path,
			     CONFIG_MAX_SIZE);
	if (rc)
		goto cleanup;
	strip_comments(buf, *len_out);
	load.lines = count_lines(buf, *len_out);
	*out = buf;
	buf = NULL;
cleanup:
	free(buf);
	close(fd);
	return rc;
}

/* Parse and check buf into *out (freed by the caller even on failure). */
static int parse(cfg_t **out, char *buf, size_t len)
{
	FILE *fp;
	int rc = CFG_SUCCESS;

	*out = new_parser();
	if (!*out)
		return oom();
	if (len > 0) {
		fp = fmemopen(buf, len, "r");
		if (!fp)
			return oom();
		rc = cfg_parse_fp(*out, fp);
		fclose(fp);
	}
	if (rc == CFG_SUCCESS && !load.failed)
		check_follows(*out);
	if (rc == CFG_SUCCESS && !load.failed)
		check_probes(*out);
	if (rc != CFG_SUCCESS || load.failed) {
		fail(0, "cannot parse configuration");
		return MSGW_ECONFIG;
	}
	return 0;
}

/* ---- public ------------------------------------------------------------ */

int config_load(struct config **out, const char *path)
{
	struct config *c = NULL;
	cfg_t *cfg = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (!path)
		path = config_path(NULL);
	load.path = path;
	load.failed = 0;
	load.dir = dir_of(path);
	if (!load.dir)
		rc = err_set_errno(MSGW_ERR, errno, "%s: cannot find its directory", path);
	else
		rc = read_config(&buf, &len, path);
	if (rc)
		goto cleanup;
	rc = parse(&cfg, buf, len);
	if (rc)
		goto cleanup;
	rc = copy_config(&c, cfg, path);
	if (rc)
		goto cleanup;
	*out = c;
	c = NULL;
cleanup:
	config_free(c);
	if (cfg)
		cfg_free(cfg);
	free(buf);
	free(load.dir);
	memset(&load, 0, sizeof(load));
	return rc;
}

const char *config_path(const char *explicit_path)
{
	const char *env;

	if (explicit_path)
		return explicit_path;
	env = getenv("MSGW_BACKUP_CONF");
	if (env && *env)
		return env;
	return CONFIG_DEFAULT_PATH;
}

const struct config_gateway *config_gateway_find(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->ngateways; i++)
		if (strcmp(cfg->gateways[i].name, name) == 0)
			return &cfg->gateways[i];
	err_set(MSGW_ECONFIG, "%s: unknown gateway '%s'", cfg->path, name);
	return NULL;
}

const struct config_remote *config_remote_find(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nremotes; i++)
		if (strcmp(cfg->remotes[i].name, name) == 0)
			return &cfg->remotes[i];
	err_set(MSGW_ECONFIG, "%s: unknown remote '%s'", cfg->path, name);
	return NULL;
}

static void free_gateway(struct config_gateway *g)
{
	const struct field *l;

	free(g->name);
	free_strs(g, gateway_strs);
	for (l = gateway_lists; l->key; l++)
		free_list((struct strlist *)(void *)((char *)g + l->off));
}

void config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->ngateways; i++)
		free_gateway(&cfg->gateways[i]);
	for (i = 0; i < cfg->nremotes; i++) {
		free(cfg->remotes[i].name);
		free_strs(&cfg->remotes[i], remote_strs);
	}
	free(cfg->gateways);
	free(cfg->remotes);
	free_strs(cfg, top_strs);
	free(cfg->path);
	free(cfg->repository);
	free(cfg->state_dir);
	free(cfg->key_file);
	free(cfg);
}
