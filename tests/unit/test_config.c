/*
 * test_config: config_load() on files written into a fresh temporary
 * directory per test: a file using every key, the defaults, durations,
 * every error message with its exact "FILE:LINE: " prefix, relative paths,
 * the lookups, the shipped example (etc/msgw-backup.conf) and the e2e error
 * fixtures (tests/fixtures/config/bad-*.conf against their .err files).
 * The last two find the source tree next to the build directory holding
 * this binary and are skipped when it is not there.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct bad {
	const char *name;
	const char *text;
	int line; /* 0: the message has no line */
	const char *msg;
};

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX]; /* dir/test.conf */
	struct config *cfg;
	const struct bad *bad;
};

/* ---- helpers ----------------------------------------------------------- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, f->dir));
	snprintf(f->path, sizeof(f->path), "%s/test.conf", f->dir);
	*state = f;
	return 0;
}

static int setup_bad(void **state)
{
	const struct bad *b = *state;

	setup(state);
	((struct fixture *)*state)->bad = b;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	config_free(f->cfg);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* Write f->dir/name, creating nothing else. */
static void write_in(struct fixture *f, const char *name, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	write_file(path, text);
}

/* text with every "@DIR@" replaced by f->dir; caller frees. */
static char *subst(const char *text, const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = strlen(value), n = 0;
	const char *p, *hit;
	char *out, *o;

	for (p = text; (hit = strstr(p, key)); p = hit + klen)
		n++;
	out = malloc(strlen(text) + n * vlen + 1);
	assert_non_null(out);
	for (p = text, o = out; (hit = strstr(p, key)); p = hit + klen) {
		memcpy(o, p, (size_t)(hit - p));
		o += hit - p;
		memcpy(o, value, vlen);
		o += vlen;
	}
	memcpy(o, p, strlen(p) + 1);
	return out;
}

static struct config *load_text(struct fixture *f, const char *text)
{
	char *t = subst(text, "@DIR@", f->dir);
	int rc;

	write_file(f->path, t);
	free(t);
	rc = config_load(&f->cfg, f->path);
	if (rc != 0)
		fail_msg("config_load: %d %s", rc, err_last());
	assert_non_null(f->cfg);
	return f->cfg;
}

static void expect_error(struct fixture *f, const char *text, int line, const char *msg)
{
	char want[2 * PATH_MAX];
	int rc;

	write_file(f->path, text);
	rc = config_load(&f->cfg, f->path);
	assert_null(f->cfg);
	assert_int_equal(rc, MSGW_ECONFIG);
	if (line)
		snprintf(want, sizeof(want), "%s:%d: %s", f->path, line, msg);
	else
		snprintf(want, sizeof(want), "%s: %s", f->path, msg);
	assert_string_equal(err_last(), want);
}

static void assert_list(const struct strlist *l, size_t n, const char *a, const char *b)
{
	assert_int_equal(l->n, n);
	assert_non_null(l->v);
	if (n > 0)
		assert_string_equal(l->v[0], a);
	if (n > 1)
		assert_string_equal(l->v[1], b);
	assert_null(l->v[n]);
}

/* The source tree: the parent of the directory holding this binary. */
static int source_dir(char *out, size_t size)
{
	char exe[PATH_MAX], probe[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (int i = 0; i < 2; i++) {
		slash = strrchr(exe, '/');
		if (!slash)
			return -1;
		*slash = '\0';
	}
	snprintf(probe, sizeof(probe), "%s/etc/msgw-backup.conf", exe);
	if (access(probe, R_OK) != 0)
		return -1;
	snprintf(out, size, "%s", exe);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long len;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	return buf;
}

/* ---- a full file -------------------------------------------------------- */

static const char full_conf[] =
	"repository = \"repo.git\"\n"                                                  /* 1 */
	"state-dir  = \"/srv/msgw/state\"\n"                                           /* 2 */
	"hook-timeout = \"2m\"            # a comment\n"                               /* 3 */
	"hook-pre-snapshot = \"/usr/local/bin/pre\"\n"                                 /* 4 */
	"hook-post-snapshot = \"/usr/local/bin/post\"\n"                               /* 5 */
	"hook-post-restore = \"/usr/local/bin/restored\"\n"                            /* 6 */
	"hook-failure = \"/usr/local/bin/failed\"\n"                                   /* 7 */
	"\n"                                                                           /* 8 */
	"gateway \"msgw1\" {\n"                                                        /* 9 */
	"  location = \"ssh://backup@msgw1.example.com/C:/ProgramData/MailStore/Gateway\"\n"
	"  identity = \"id_ed25519\"\n"
	"  passphrase-file = \"@DIR@/passphrase\"\n"
	"  known-hosts = \"known_hosts\"\n"
	"  include = {\"**\"}\n"
	"  exclude = {\"Logs/**\",   # comments inside lists are fine\n"
	"             \"Temp/**\"}\n"
	"  preserve = {\"Certificates/**\"}\n"
	"  mailbox-store = {\"Stores/*\", \"Archive/#1\"}\n"
	"  stop = \"stop-it\"\n"
	"  start = \"start-it\"\n"
	"  status = \"status-it\"\n"
	"  health = \"tcp:8450\"\n"
	"  timeout = \"2m\"\n"
	"  hook-pre-snapshot = \"gw-pre\"\n"
	"  hook-post-snapshot = \"gw-post\"\n"
	"  hook-post-restore = \"gw-restored\"\n"
	"  hook-failure = \"gw-failed\"\n"
	"}\n"
	"gateway \"msgw2\" {\n" /* 29 */
	"  location = \"/srv/msgw2\"\n"
	"  follows = \"msgw1\"\n"
	"  health = \"/usr/local/bin/check --quick\"\n"
	"  timeout = 90\n"
	"}\n"
	"schedule { interval = \"1h\" jitter = \"5m\" }\n"
	"retention {\n"
	"  keep-last = 100  keep-hourly = 24  keep-daily = 30\n"
	"  keep-weekly = 8  keep-monthly = 12 keep-pre-restore-days = 7\n"
	"}\n"
	"remote \"offsite\" {\n" /* 40 */
	"  url = \"ssh://git@backup.example.com/srv/msgw.git\"\n"
	"  identity = \"id_ed25519\"\n"
	"  passphrase-file = \"passphrase\"\n"
	"  known-hosts = \"known_hosts\"\n"
	"  push = true\n"
	"  prune-remotes = yes\n"
	"}\n"
	"remote \"mirror\" { url = \"/srv/mirror.git\" }\n"; /* 48 */

static void make_key_files(struct fixture *f)
{
	write_in(f, "id_ed25519", "key\n");
	write_in(f, "passphrase", "secret\n");
	write_in(f, "known_hosts", "hosts\n");
}

static void check_full_top(struct fixture *f, const struct config *c)
{
	char want[2 * PATH_MAX];

	assert_string_equal(c->path, f->path);
	snprintf(want, sizeof(want), "%s/repo.git", f->dir);
	assert_string_equal(c->repository, want);
	assert_string_equal(c->state_dir, "/srv/msgw/state");
	assert_int_equal(c->hook_timeout, 120);
	assert_string_equal(c->hook_pre_snapshot, "/usr/local/bin/pre");
	assert_string_equal(c->hook_post_snapshot, "/usr/local/bin/post");
	assert_string_equal(c->hook_post_restore, "/usr/local/bin/restored");
	assert_string_equal(c->hook_failure, "/usr/local/bin/failed");
	assert_int_equal(c->interval, 3600);
	assert_int_equal(c->jitter, 300);
	assert_int_equal(c->retention.keep_last, 100);
	assert_int_equal(c->retention.keep_hourly, 24);
	assert_int_equal(c->retention.keep_daily, 30);
	assert_int_equal(c->retention.keep_weekly, 8);
	assert_int_equal(c->retention.keep_monthly, 12);
	assert_int_equal(c->retention.keep_pre_restore_days, 7);
}

static void check_full_msgw1(struct fixture *f, const struct config_gateway *g)
{
	char want[2 * PATH_MAX];

	assert_string_equal(g->name, "msgw1");
	assert_int_equal(g->line, 9);
	assert_string_equal(g->location,
			    "ssh://backup@msgw1.example.com/C:/ProgramData/MailStore/Gateway");
	snprintf(want, sizeof(want), "%s/id_ed25519", f->dir);
	assert_string_equal(g->identity, want);
	snprintf(want, sizeof(want), "%s/passphrase", f->dir);
	assert_string_equal(g->passphrase_file, want);
	snprintf(want, sizeof(want), "%s/known_hosts", f->dir);
	assert_string_equal(g->known_hosts, want);
	assert_list(&g->include, 1, "**", NULL);
	assert_list(&g->exclude, 2, "Logs/**", "Temp/**");
	assert_list(&g->preserve, 1, "Certificates/**", NULL);
	assert_list(&g->mailbox_store, 2, "Stores/*", "Archive/#1");
	assert_string_equal(g->stop, "stop-it");
	assert_string_equal(g->start, "start-it");
	assert_string_equal(g->status, "status-it");
	assert_string_equal(g->health, "tcp:8450");
	assert_int_equal(g->timeout, 120);
	assert_null(g->follows);
	assert_string_equal(g->hook_pre_snapshot, "gw-pre");
	assert_string_equal(g->hook_post_snapshot, "gw-post");
	assert_string_equal(g->hook_post_restore, "gw-restored");
	assert_string_equal(g->hook_failure, "gw-failed");
}

static void check_full_msgw2(const struct config_gateway *g)
{
	assert_string_equal(g->name, "msgw2");
	assert_int_equal(g->line, 29);
	assert_string_equal(g->location, "/srv/msgw2");
	assert_string_equal(g->follows, "msgw1");
	assert_string_equal(g->health, "/usr/local/bin/check --quick");
	assert_int_equal(g->timeout, 90);
	assert_null(g->identity);
	assert_null(g->stop);
	assert_null(g->hook_failure);
	assert_list(&g->include, 1, "**", NULL);
	assert_list(&g->exclude, 0, NULL, NULL);
}

static void check_full_remotes(struct fixture *f, const struct config *c)
{
	const struct config_remote *r = &c->remotes[0];
	char want[2 * PATH_MAX];

	assert_int_equal(c->nremotes, 2);
	assert_string_equal(r->name, "offsite");
	assert_int_equal(r->line, 40);
	assert_string_equal(r->url, "ssh://git@backup.example.com/srv/msgw.git");
	snprintf(want, sizeof(want), "%s/id_ed25519", f->dir);
	assert_string_equal(r->identity, want);
	snprintf(want, sizeof(want), "%s/passphrase", f->dir);
	assert_string_equal(r->passphrase_file, want);
	snprintf(want, sizeof(want), "%s/known_hosts", f->dir);
	assert_string_equal(r->known_hosts, want);
	assert_int_equal(r->push, 1);
	assert_int_equal(r->prune_remotes, 1);
	r = &c->remotes[1];
	assert_string_equal(r->name, "mirror");
	assert_int_equal(r->line, 48);
	assert_null(r->identity);
	assert_int_equal(r->push, 0);
	assert_int_equal(r->prune_remotes, 0);
}

static void test_full(void **state)
{
	struct fixture *f = *state;
	const struct config *c;

	make_key_files(f);
	c = load_text(f, full_conf);
	check_full_top(f, c);
	assert_int_equal(c->ngateways, 2);
	check_full_msgw1(f, &c->gateways[0]);
	check_full_msgw2(&c->gateways[1]);
	check_full_remotes(f, c);
}

/* ---- defaults ----------------------------------------------------------- */

static void test_defaults_empty(void **state)
{
	struct fixture *f = *state;
	const struct config *c = load_text(f, "");

	assert_string_equal(c->repository, "/var/lib/msgw-backup/repo.git");
	assert_string_equal(c->state_dir, "/var/lib/msgw-backup/state");
	assert_int_equal(c->ngateways, 0);
	assert_int_equal(c->nremotes, 0);
	assert_int_equal(c->interval, 900);
	assert_int_equal(c->jitter, 90);
	assert_int_equal(c->hook_timeout, 60);
	assert_null(c->hook_pre_snapshot);
	assert_null(c->hook_post_snapshot);
	assert_null(c->hook_post_restore);
	assert_null(c->hook_failure);
	assert_int_equal(c->retention.keep_last, -1);
	assert_int_equal(c->retention.keep_hourly, -1);
	assert_int_equal(c->retention.keep_daily, -1);
	assert_int_equal(c->retention.keep_weekly, -1);
	assert_int_equal(c->retention.keep_monthly, -1);
	assert_int_equal(c->retention.keep_pre_restore_days, 30);
}

static void test_defaults_gateway(void **state)
{
	struct fixture *f = *state;
	const struct config *c = load_text(f, "# only comments and one gateway\n"
					      "\n"
					      "gateway \"g\" { location = /srv/g }\n"
					      "schedule { interval = 10m }\n");
	const struct config_gateway *g = &c->gateways[0];

	assert_int_equal(c->ngateways, 1);
	assert_int_equal(g->line, 3);
	assert_string_equal(g->location, "/srv/g");
	assert_list(&g->include, 1, "**", NULL);
	assert_list(&g->exclude, 0, NULL, NULL);
	assert_list(&g->preserve, 0, NULL, NULL);
	assert_list(&g->mailbox_store, 0, NULL, NULL);
	assert_int_equal(g->timeout, 60);
	assert_null(g->identity);
	assert_null(g->passphrase_file);
	assert_null(g->known_hosts);
	assert_null(g->stop);
	assert_null(g->start);
	assert_null(g->status);
	assert_null(g->health);
	assert_null(g->follows);
	assert_null(g->hook_pre_snapshot);
	assert_int_equal(c->interval, 600);
	assert_int_equal(c->jitter, 60);
}

static void test_empty_lists_and_zero_jitter(void **state)
{
	struct fixture *f = *state;
	const struct config *c = load_text(f, "gateway \"g\" {\n"
					      "  location = \"/srv/g\"\n"
					      "  include = {}\n"
					      "  exclude = {}\n"
					      "}\n"
					      "schedule { jitter = 0 }\n");

	assert_list(&c->gateways[0].include, 0, NULL, NULL);
	assert_list(&c->gateways[0].exclude, 0, NULL, NULL);
	assert_int_equal(c->jitter, 0);
	assert_int_equal(c->interval, 900);
}

/* ---- durations ---------------------------------------------------------- */

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		long secs;
	} good[] = {
		{"90", 90},    {"1", 1},         {"15m", 900},      {"1h30m", 5400},
		{"2d", 172800}, {"1w", 604800},  {"30s", 30},       {"1h1m1s", 3661},
		{"0h5m", 300}, {"2147483647", INT_MAX},
	};
	static const char *const bad[] = {
		"",   "m",   "15x",  "-5", "0",  "0s",  "1h30", "1.5h", " 5", "5 ",
		"+5", "1mm", "h1",   "5M", "99999999999", "2147483648", "3551w", "1h-5m",
	};
	long secs;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(good); i++) {
		secs = -1;
		if (config_parse_duration(&secs, good[i].text) != 0)
			fail_msg("\"%s\": %s", good[i].text, err_last());
		assert_int_equal(secs, good[i].secs);
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		if (config_parse_duration(&secs, bad[i]) != MSGW_ECONFIG)
			fail_msg("\"%s\" was accepted", bad[i]);
}

static void test_duration_messages(void **state)
{
	long secs;

	(void)state;
	assert_int_equal(config_parse_duration(&secs, "abc"), MSGW_ECONFIG);
	assert_string_equal(err_last(), "bad duration 'abc'");
	assert_int_equal(config_parse_duration(&secs, "0"), MSGW_ECONFIG);
	assert_string_equal(err_last(), "bad duration '0': must be positive");
	assert_int_equal(config_parse_duration(&secs, "-5"), MSGW_ECONFIG);
	assert_string_equal(err_last(), "bad duration '-5': must be positive");
	assert_int_equal(config_parse_duration(&secs, "9999999999"), MSGW_ECONFIG);
	assert_string_equal(err_last(), "bad duration '9999999999': too large");
}

/* ---- paths, files, lookups --------------------------------------------- */

static void test_relative_paths(void **state)
{
	struct fixture *f = *state;
	char cwd[PATH_MAX], want[2 * PATH_MAX];
	struct config *c = NULL;

	mkdir(strcat_safe_dummy(), 0); /* placeholder removed below */
}
