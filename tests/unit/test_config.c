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
#include "test_util.h"

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
	char path[PATH_MAX + 16]; /* dir/test.conf */
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

static int teardown(void **state)
{
	struct fixture *f = *state;

	config_free(f->cfg);
	test_rmtree(f->dir);
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
	char path[PATH_MAX + 256];

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	write_file(path, text);
}

/* text with every key replaced by value; the caller frees it. */
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
    "repository = \"repo.git\"\n"			/* 1 */
    "state-dir  = \"/srv/msgw/state\"\n"		/* 2 */
    "hook-timeout = \"2m\"            # a comment\n"	/* 3 */
    "hook-pre-snapshot = \"/usr/local/bin/pre\"\n"	/* 4 */
    "hook-post-snapshot = \"/usr/local/bin/post\"\n"	/* 5 */
    "hook-post-restore = \"/usr/local/bin/restored\"\n" /* 6 */
    "hook-failure = \"/usr/local/bin/failed\"\n"	/* 7 */
    "\n"						/* 8 */
    "gateway \"msgw1\" {\n"				/* 9 */
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
	assert_int_equal(c->parallel, 32);
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

/* parallel: the configured bound, and the same rule for --parallel */
static void test_parallel(void **state)
{
	struct fixture *f = *state;
	const struct config *c = load_text(f, "parallel = 32\n");
	int n = 0;

	assert_int_equal(c->parallel, 32);
	assert_int_equal(config_parallel_parse(&n, "1"), 0);
	assert_int_equal(n, 1);
	assert_int_equal(config_parallel_parse(&n, "256"), 0);
	assert_int_equal(n, 256);
	assert_int_equal(config_parallel_parse(&n, "4x"), MSGW_ECONFIG);
	assert_string_equal(err_last(), "bad number '4x' for 'parallel': must be 1 to 256");
	assert_int_equal(config_parallel_parse(&n, ""), MSGW_ECONFIG);
	assert_int_equal(config_parallel_parse(&n, "99999999999999999999"), MSGW_ECONFIG);
	assert_int_equal(n, 256);
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
	    {"90", 90},	    {"1", 1},	 {"15m", 900},	   {"1h30m", 5400}, {"2d", 172800},
	    {"1w", 604800}, {"30s", 30}, {"1h1m1s", 3661}, {"0h5m", 300},   {"2147483647", INT_MAX},
	};
	static const char *const bad[] = {
	    "",	  "m",	"15x", "-5", "0",  "0s",	  "1h30",	"1.5h",	 " 5",
	    "5 ", "+5", "1mm", "h1", "5M", "99999999999", "2147483648", "3551w", "1h-5m",
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

	load_text(f, "repository = \"repo.git\"\nstate-dir = \"sub/state\"\n");
	snprintf(want, sizeof(want), "%s/repo.git", f->dir);
	assert_string_equal(f->cfg->repository, want);
	snprintf(want, sizeof(want), "%s/sub/state", f->dir);
	assert_string_equal(f->cfg->state_dir, want);

	/* a relative configuration path still gives absolute paths */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(config_load(&c, "test.conf"), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(c->path, "test.conf");
	snprintf(want, sizeof(want), "%s/repo.git", f->dir);
	assert_string_equal(c->repository, want);
	config_free(c);
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 16], want[2 * PATH_MAX];
	static struct config sentinel;
	struct config *c = &sentinel; /* config_load must set it to NULL */

	snprintf(path, sizeof(path), "%s/nope.conf", f->dir);
	assert_int_equal(config_load(&c, path), MSGW_ENOTFOUND);
	assert_null(c);
	snprintf(want, sizeof(want), "%s: cannot read configuration: No such file or directory",
		 path);
	assert_string_equal(err_last(), want);
}

static void test_directory(void **state)
{
	struct fixture *f = *state;
	char want[2 * PATH_MAX];
	struct config *c = NULL;

	assert_int_equal(config_load(&c, f->dir), MSGW_ECONFIG);
	assert_null(c);
	snprintf(want, sizeof(want), "%s: cannot read configuration: Is a directory", f->dir);
	assert_string_equal(err_last(), want);
}

static void test_unreadable(void **state)
{
	struct fixture *f = *state;
	char want[2 * PATH_MAX];

	if (geteuid() == 0)
		skip(); /* root reads everything */
	write_in(f, "id_ed25519", "key\n");
	snprintf(want, sizeof(want), "%s/id_ed25519", f->dir);
	assert_int_equal(chmod(want, 0), 0);
	snprintf(want, sizeof(want), "cannot read identity '%s/id_ed25519': Permission denied",
		 f->dir);
	expect_error(f, "remote \"r\" {\n url = /srv/r.git\n identity = id_ed25519\n}\n", 3, want);
	write_file(f->path, "");
	assert_int_equal(chmod(f->path, 0), 0);
	assert_int_equal(config_load(&f->cfg, f->path), MSGW_ECONFIG);
	snprintf(want, sizeof(want), "%s: cannot read configuration: Permission denied", f->path);
	assert_string_equal(err_last(), want);
}

static void test_identity_directory(void **state)
{
	struct fixture *f = *state;
	char want[2 * PATH_MAX];
	char *text = subst("gateway \"g\" {\n location = /srv/g\n identity = \"@DIR@\"\n}\n",
			   "@DIR@", f->dir);

	snprintf(want, sizeof(want), "cannot read identity '%s': Is a directory", f->dir);
	expect_error(f, text, 3, want);
	free(text);
}

static void test_find(void **state)
{
	struct fixture *f = *state;
	const struct config *c = load_text(f, "gateway \"a\" { location = /srv/a }\n"
					      "gateway \"b\" { location = /srv/b follows = a }\n"
					      "remote \"a\" { url = /srv/a.git }\n");
	char want[2 * PATH_MAX];

	assert_ptr_equal(config_gateway_find(c, "b"), &c->gateways[1]);
	assert_ptr_equal(config_remote_find(c, "a"), &c->remotes[0]);
	assert_null(config_gateway_find(c, "c"));
	snprintf(want, sizeof(want), "%s: unknown gateway 'c'", f->path);
	assert_string_equal(err_last(), want);
	assert_null(config_remote_find(c, "b"));
	snprintf(want, sizeof(want), "%s: unknown remote 'b'", f->path);
	assert_string_equal(err_last(), want);
}

static void test_follows_forward(void **state)
{
	struct fixture *f = *state;
	const struct config *c = load_text(f, "gateway \"b\" { location = /srv/b follows = c }\n"
					      "gateway \"c\" { location = /srv/c follows = a }\n"
					      "gateway \"a\" { location = /srv/a }\n");

	assert_int_equal(c->ngateways, 3);
	assert_string_equal(c->gateways[0].follows, "c");
}

static void test_config_path(void **state)
{
	(void)state;
	assert_string_equal(config_path("/x.conf"), "/x.conf");
	assert_int_equal(setenv("MSGW_BACKUP_CONF", "/env.conf", 1), 0);
	assert_string_equal(config_path(NULL), "/env.conf");
	assert_string_equal(config_path("/x.conf"), "/x.conf");
	assert_int_equal(setenv("MSGW_BACKUP_CONF", "", 1), 0);
	assert_string_equal(config_path(NULL), CONFIG_DEFAULT_PATH);
	assert_int_equal(unsetenv("MSGW_BACKUP_CONF"), 0);
	assert_string_equal(config_path(NULL), CONFIG_DEFAULT_PATH);
}

static void test_free_null(void **state)
{
	(void)state;
	config_free(NULL);
}

/* ---- the shipped example and the e2e fixtures ---------------------------- */

static void test_example(void **state)
{
	struct fixture *f = *state;
	char src[PATH_MAX], path[PATH_MAX + 64], dir[PATH_MAX + 2];
	char *text, *t;
	const struct config *c;

	if (source_dir(src, sizeof(src)) != 0)
		skip();
	snprintf(path, sizeof(path), "%s/etc/msgw-backup.conf", src);
	text = slurp(path);
	/* as shipped it names key files under /etc/msgw-backup that do not exist here */
	snprintf(dir, sizeof(dir), "%s/", f->dir);
	t = subst(text, "/etc/msgw-backup/", dir);
	free(text);
	write_in(f, "id_ed25519", "key\n");
	write_in(f, "known_hosts", "hosts\n");
	write_in(f, "offsite_ed25519", "key\n");
	c = load_text(f, t);
	free(t);
	assert_int_equal(c->ngateways, 2);
	assert_string_equal(c->gateways[0].name, "msgw1");
	assert_string_equal(c->gateways[1].name, "msgw2");
	assert_string_equal(c->gateways[1].follows, "msgw1");
	assert_non_null(config_remote_find(c, "offsite"));
}

static int is_bad_conf(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return strncmp(d->d_name, "bad-", 4) == 0 && n > 5 &&
	       strcmp(d->d_name + n - 5, ".conf") == 0;
}

static void check_fixture(const char *fixtures, const char *name)
{
	char conf[2 * PATH_MAX], errf[2 * PATH_MAX];
	char *want, *got, *nl;
	struct config *c = NULL;

	snprintf(conf, sizeof(conf), "%s/%s", fixtures, name);
	snprintf(errf, sizeof(errf), "%.*s.err", (int)strlen(conf) - 5, conf);
	assert_int_equal(config_load(&c, conf), MSGW_ECONFIG);
	assert_null(c);
	got = slurp(errf);
	nl = strchr(got, '\n');
	if (nl)
		*nl = '\0';
	want = subst(got, "@FILE@", conf);
	if (strcmp(err_last(), want) != 0)
		fail_msg("%s:\n  want: %s\n  got:  %s", name, want, err_last());
	free(want);
	free(got);
}

static void test_fixtures(void **state)
{
	char src[PATH_MAX], fixtures[PATH_MAX + 32];
	struct dirent **names;
	int i, n;

	(void)state;
	if (source_dir(src, sizeof(src)) != 0)
		skip();
	snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/config", src);
	n = scandir(fixtures, &names, is_bad_conf, alphasort);
	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		check_fixture(fixtures, names[i]->d_name);
		free(names[i]);
	}
	free(names);
}

/* ---- every error, with its line ----------------------------------------- */

static const struct bad bad_cases[] = {
    /* syntax, as libconfuse reports it */
    {"syntax_missing_equals", "repository = \"/a\"\nstate-dir \"/b\"\n", 2,
     "missing equal sign after option 'state-dir'"},
    {"syntax_closing_brace", "gateway \"g\" {\n location = /g\n}\n}\n", 4,
     "unexpected closing brace"},
    {"syntax_no_title", "# comment\n# comment\ngateway {\n}\n", 3,
     "missing title for section 'gateway'"},
    {"syntax_eof", "repository =", 1, "premature end of file"},
    {"syntax_eof_newline", "gateway \"g\" {\n location =\n\n", 3, "premature end of file"},
    /* unknown keys everywhere */
    {"unknown_top", "# x\n\nrepo = \"/a\"\n", 3, "unknown option 'repo'"},
    {"unknown_gateway", "gateway \"g\" {\n location = /g\n bogus = 1\n}\n", 3,
     "unknown option 'bogus'"},
    {"unknown_remote", "remote \"r\" {\n url = /r.git\n\n bogus = {1, 2}\n}\n", 4,
     "unknown option 'bogus'"},
    {"unknown_schedule", "schedule {\n interval = 1m\n every = 5m\n}\n", 3,
     "unknown option 'every'"},
    {"unknown_retention", "retention { keep-last = 1\n keep-yearly = 2 }\n", 2,
     "unknown option 'keep-yearly'"},
    {"unknown_section", "backup \"x\" {\n}\n", 1, "unknown option 'backup'"},
    /* durations */
    {"duration_word", "schedule {\n interval = \"abc\"\n}\n", 2,
     "bad duration 'abc' for 'interval'"},
    {"duration_empty", "hook-timeout = \"\"\n", 1, "bad duration '' for 'hook-timeout'"},
    {"duration_unit", "gateway \"g\" {\n location = /g\n timeout = 15x\n}\n", 3,
     "bad duration '15x' for 'timeout'"},
    {"duration_zero", "schedule { interval = 0 }\n", 1,
     "bad duration '0' for 'interval': must be positive"},
    {"duration_zero_unit", "hook-timeout = 0m\n", 1,
     "bad duration '0m' for 'hook-timeout': must be positive"},
    {"duration_negative", "\n\nhook-timeout = -5\n", 3,
     "bad duration '-5' for 'hook-timeout': must be positive"},
    {"duration_negative_jitter", "schedule { jitter = \"-1m\" }\n", 1,
     "bad duration '-1m' for 'jitter': must be positive"},
    {"duration_overflow", "schedule {\n jitter = 99999999999\n}\n", 2,
     "bad duration '99999999999' for 'jitter': too large"},
    /* booleans and numbers */
    {"bool", "remote \"r\" {\n url = /r.git\n push = maybe\n}\n", 3,
     "bad boolean 'maybe' for 'push'"},
    {"bool_prune", "remote \"r\" {\n url = /r.git\n prune-remotes = 2\n}\n", 3,
     "bad boolean '2' for 'prune-remotes'"},
    {"retention_negative", "retention {\n keep-daily = 3\n keep-weekly = -1\n}\n", 3,
     "bad number '-1' for 'keep-weekly': must not be negative"},
    {"parallel_zero", "\nparallel = 0\n", 2, "bad number '0' for 'parallel': must be 1 to 256"},
    {"parallel_big", "parallel = 257\n", 1, "bad number '257' for 'parallel': must be 1 to 256"},
    {"parallel_word", "parallel = many\n", 1, "bad number 'many' for 'parallel': must be 1 to 256"},
    {"parallel_negative", "parallel = -2\n", 1, "bad number '-2' for 'parallel': must be 1 to 256"},
    {"retention_word", "retention { keep-monthly = many }\n", 1,
     "bad number 'many' for 'keep-monthly'"},
    {"retention_fraction", "retention { keep-last = 1.5 }\n", 1,
     "bad number '1.5' for 'keep-last'"},
    {"retention_hex", "retention { keep-last = 0x10 }\n", 1, "bad number '0x10' for 'keep-last'"},
    {"retention_empty", "retention { keep-last = \"\" }\n", 1, "bad number '' for 'keep-last'"},
    {"retention_huge", "retention { keep-pre-restore-days = 99999999999 }\n", 1,
     "bad number '99999999999' for 'keep-pre-restore-days': too large"},
    /* required keys */
    {"no_location", "gateway \"g\" {\n health = tcp:80\n}\n", 1, "gateway 'g' has no 'location'"},
    {"no_location_late", "\n\ngateway \"g\"\n{\n}\n", 4, "gateway 'g' has no 'location'"},
    {"no_url", "# r\nremote \"r\" {\n push = true\n}\n", 2, "remote 'r' has no 'url'"},
    {"empty_url", "remote \"r\" {\n url = \"\"\n}\n", 2, "empty value for 'url'"},
    {"empty_repository", "repository = \"\"\n", 1, "empty value for 'repository'"},
    {"empty_state_dir", "state-dir = ''\n", 1, "empty value for 'state-dir'"},
    /* locations */
    {"location_relative", "gateway \"g\" {\n location = \"srv/gw\"\n}\n", 2,
     "bad location 'srv/gw': local paths must be absolute"},
    {"location_empty", "gateway \"g\" {\n location = \"\"\n}\n", 2,
     "bad location '': local paths must be absolute"},
    {"location_scp", "gateway \"g\" {\n location = \"backup@h:/srv\"\n}\n", 2,
     "bad location 'backup@h:/srv': ssh locations must start with ssh://"},
    {"location_windows", "gateway \"g\" {\n location = \"C:/ProgramData\"\n}\n", 2,
     "bad location 'C:/ProgramData': ssh locations must start with ssh://"},
    {"location_sftp", "gateway \"g\" {\n location = \"sftp://h/srv\"\n}\n", 2,
     "bad location 'sftp://h/srv': ssh locations must start with ssh://"},
    {"location_ssh_no_path", "gateway \"g\" {\n location = \"ssh://backup@h\"\n}\n", 2,
     "bad location 'ssh://backup@h': expected ssh://[USER@]HOST[:PORT]/PATH"},
    {"location_ssh_root", "gateway \"g\" {\n location = \"ssh://h/\"\n}\n", 2,
     "bad location 'ssh://h/': expected ssh://[USER@]HOST[:PORT]/PATH"},
    {"location_ssh_no_host", "gateway \"g\" {\n location = \"ssh://backup@/srv\"\n}\n", 2,
     "bad location 'ssh://backup@/srv': expected ssh://[USER@]HOST[:PORT]/PATH"},
    {"location_ssh_port", "gateway \"g\" {\n location = \"ssh://h:0/srv\"\n}\n", 2,
     "bad location 'ssh://h:0/srv': expected ssh://[USER@]HOST[:PORT]/PATH"},
    /* files that must be readable now */
    {"identity_missing",
     "gateway \"g\" {\n location = /g\n identity = \"/nonexistent/id_ed25519\"\n}\n", 3,
     "cannot read identity '/nonexistent/id_ed25519': No such file or directory"},
    {"known_hosts_missing",
     "remote \"r\" {\n url = /r.git\n known-hosts = \"/nonexistent/known_hosts\"\n}\n", 3,
     "cannot read known-hosts '/nonexistent/known_hosts': No such file or directory"},
    {"passphrase_file_missing",
     "gateway \"g\" {\n location = /g\n\n passphrase-file = \"/nonexistent/pass\"\n}\n", 4,
     "cannot read passphrase-file '/nonexistent/pass': No such file or directory"},
    {"identity_empty", "remote \"r\" {\n url = /r.git\n identity = \"\"\n}\n", 3,
     "empty value for 'identity'"},
    /* follows */
    {"follows_unknown",
     "gateway \"a\" {\n location = /a\n}\ngateway \"b\" {\n location = /b\n follows = c\n}\n", 6,
     "gateway 'b' follows unknown gateway 'c'"},
    {"follows_remote",
     "remote \"c\" { url = /c.git }\ngateway \"b\" { location = /b\n follows = c }\n", 3,
     "gateway 'b' follows unknown gateway 'c'"},
    {"follows_self", "gateway \"a\" {\n location = /a\n follows = \"a\"\n}\n", 3,
     "gateway 'a' follows itself"},
    {"follows_cycle",
     "gateway \"a\" { location = /a }\n"
     "gateway \"b\" {\n location = /b\n follows = c\n}\n"
     "gateway \"c\" {\n location = /c\n follows = b\n}\n",
     4, "gateway 'b' follows itself through 'c'"},
    /* duplicates and names */
    {"duplicate_gateway", "gateway \"a\" { location = /a }\n\ngateway \"a\" { location = /b }\n", 3,
     "duplicate gateway 'a'"},
    {"duplicate_remote", "remote \"r\" { url = /a.git }\nremote \"r\" {\n url = /b.git }\n", 2,
     "duplicate remote 'r'"},
    {"duplicate_both",
     "gateway \"x\" { location = /a }\nremote \"x\" { url = /a.git }\ngateway \"x\" { location = "
     "/b }\n",
     3, "duplicate gateway or remote 'x'"},
    {"name_empty", "gateway \"\" {\n location = /a\n}\n", 1, "bad gateway name '': empty"},
    {"name_space", "gateway \"msgw 1\" {\n location = /a\n}\n", 1,
     "bad gateway name 'msgw 1': only letters, digits, '.', '_' and '-' are allowed"},
    {"name_slash", "gateway \"a/b\" {\n location = /a\n}\n", 1,
     "bad gateway name 'a/b': only letters, digits, '.', '_' and '-' are allowed"},
    {"name_dot", "\ngateway \".a\" {\n location = /a\n}\n", 2,
     "bad gateway name '.a': must not start with '.' or '-'"},
    {"name_dash", "gateway \"-a\" {\n location = /a\n}\n", 1,
     "bad gateway name '-a': must not start with '.' or '-'"},
    {"name_dotdot", "gateway \"a..b\" {\n location = /a\n}\n", 1,
     "bad gateway name 'a..b': must not contain '..'"},
    {"name_lock", "gateway \"a.lock\" {\n location = /a\n}\n", 1,
     "bad gateway name 'a.lock': must not end with '.lock'"},
    {"remote_name", "remote \"off site\" {\n url = /a.git\n}\n", 1,
     "bad remote name 'off site': only letters, digits, '.', '_' and '-' are allowed"},
    /* health */
    {"health_port_zero", "gateway \"g\" {\n location = /g\n health = \"tcp:0\"\n}\n", 3,
     "bad health check 'tcp:0': expected tcp:PORT or tcp:HOST:PORT with PORT 1-65535"},
    {"health_port_high", "gateway \"g\" {\n location = /g\n health = \"tcp:h:65536\"\n}\n", 3,
     "bad health check 'tcp:h:65536': expected tcp:PORT or tcp:HOST:PORT with PORT 1-65535"},
    {"health_no_port", "gateway \"g\" {\n location = /g\n health = \"tcp:\"\n}\n", 3,
     "bad health check 'tcp:': expected tcp:PORT or tcp:HOST:PORT with PORT 1-65535"},
    {"health_no_host", "gateway \"g\" {\n location = /g\n health = \"tcp::80\"\n}\n", 3,
     "bad health check 'tcp::80': expected tcp:PORT or tcp:HOST:PORT with PORT 1-65535"},
    {"health_word_port", "gateway \"g\" {\n location = /g\n health = \"tcp:http\"\n}\n", 3,
     "bad health check 'tcp:http': expected tcp:PORT or tcp:HOST:PORT with PORT 1-65535"},
    {"health_empty", "gateway \"g\" {\n location = /g\n health = \"\"\n}\n", 3,
     "bad health check '': empty command"},
    /* line numbers survive comments of every kind before the error */
    {"lines_after_comments",
     "# one\n# two\nrepository = \"/a\" # three\n\n# five\ngateway \"g\" { # six\n"
     " include = {\"a\", # seven\n  \"b\"}\n bogus = 1\n}\n",
     9, "unknown option 'bogus'"},
    {"lines_hash_in_string", "repository = \"/a#b\"\nstate-dir = '/c#d'\nbogus = 1\n", 3,
     "unknown option 'bogus'"},
};

static void test_bad(void **state)
{
	struct fixture *f = *state;

	expect_error(f, f->bad->text, f->bad->line, f->bad->msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_defaults_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_defaults_gateway, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_lists_and_zero_jitter, setup, teardown),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_duration_messages),
	    cmocka_unit_test_setup_teardown(test_relative_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unreadable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identity_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_find, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_follows_forward, setup, teardown),
	    cmocka_unit_test(test_config_path),
	    cmocka_unit_test(test_free_null),
	    cmocka_unit_test_setup_teardown(test_example, setup, teardown),
	    cmocka_unit_test(test_fixtures),
	};
	struct CMUnitTest bad_tests[ARRAY_SIZE(bad_cases)];
	size_t i;
	int failed;

	for (i = 0; i < ARRAY_SIZE(bad_cases); i++)
		bad_tests[i] = (struct CMUnitTest){bad_cases[i].name, test_bad, setup_bad, teardown,
						   (void *)&bad_cases[i]};
	failed = cmocka_run_group_tests_name("config", tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("config errors", bad_tests, NULL, NULL);
	return failed != 0;
}
