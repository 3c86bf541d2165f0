/*
 * test_status: status_build over a real temporary repository and state
 * directory.  Snapshots are commits made with repo_commit whose meta
 * "created" is chosen, and the state files are written with the state
 * module as the agent writes them, so every case is exact: fresh (OK),
 * stale by --warn-age / --crit-age (WARNING / CRITICAL, boundaries
 * included), a failed or skipped last attempt (CRITICAL), never snapshotted
 * (UNKNOWN), a blocked follow (CRITICAL), a failed push (WARNING), the
 * worst level overall and the one-line summary.  The Prometheus textfile is
 * parsed line by line against the text exposition format's grammar (HELP
 * and TYPE lines, metric and label names, label value escapes, float
 * values, one TYPE per metric before its samples, samples grouped) and its
 * values checked; it is replaced atomically.  The checker is itself tested
 * on lines the format does not allow.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "repo.h"
#include "state.h"
#include "status.h"
#include "util.h"
#include "test_util.h"

#include <ctype.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOW ((int64_t)1800000000) /* 2027-01-15T08:00:00Z */

struct fixture {
	char dir[PATH_MAX];
	char repo[PATH_MAX + 16];
	char state[PATH_MAX + 16];
	char conf[PATH_MAX + 16];
	struct config *cfg;
	struct repo *r;
	struct status_report s;
	bool built;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_status.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, f->dir));
	snprintf(f->repo, sizeof(f->repo), "%s/repo.git", f->dir);
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->conf, sizeof(f->conf), "%s/c.conf", f->dir);
	assert_int_equal(repo_init(f->repo, NULL), 0);
	assert_int_equal(repo_open(&f->r, f->repo), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->built)
		status_release(&f->s);
	config_free(f->cfg);
	repo_free(f->r);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay ? hay : "(null)", needle);
}

/* The configuration: the named gateways (NULL-terminated), then remotes. */
static void configure(struct fixture *f, const char *const *gateways, const char *const *remotes)
{
	FILE *fp = fopen(f->conf, "w");
	size_t i;

	assert_non_null(fp);
	fprintf(fp, "repository = \"%s\"\nstate-dir = \"%s\"\n", f->repo, f->state);
	for (i = 0; gateways && gateways[i]; i++)
		fprintf(fp, "gateway \"%s\" {\n  location = \"%s/gw-%s\"\n}\n", gateways[i], f->dir,
			gateways[i]);
	for (i = 0; remotes && remotes[i]; i++)
		fprintf(fp, "remote \"%s\" {\n  url = \"%s/%s.git\"\n}\n", remotes[i], f->dir,
			remotes[i]);
	assert_int_equal(fclose(fp), 0);
	config_free(f->cfg);
	f->cfg = NULL;
	if (config_load(&f->cfg, f->conf))
		fail_msg("config_load: %s", err_last());
}

/* A snapshot of gateway created at time created; its id in out. */
static void snapshot_at(struct fixture *f, const char *gateway, int64_t created,
			char out[REPO_ID_LEN])
{
	char meta[256], when[32], msg[128];
	const char *manifest = "msgw-manifest 1\n";

	time_rfc3339(when, sizeof(when), created);
	snprintf(meta, sizeof(meta),
		 "format: 1\ngateway: %s\ncreated: %s\nkind: scheduled\nfiles: 0\nbytes: 0\n",
		 gateway, when);
	snprintf(msg, sizeof(msg), "%s: 0 modified, 0 added, 0 removed\n", gateway);
	const struct repo_file files[] = {
	    REPO_FILE("config.tar.zst", "\x28\xb5\x2f\xfd\0\0\0\0", 8),
	    REPO_FILE("manifest", manifest, strlen(manifest)),
	    REPO_FILE("meta", meta, strlen(meta)),
	};
	assert_int_equal(repo_commit(out, f->r, gateway, files, 3, msg, created), 0);
}

/* Write one key of a state file (state-dir/name). */
static void put(struct fixture *f, const char *name, const char *key, const char *value)
{
	struct state st;

	assert_int_equal(state_load(&st, f->state, name), 0);
	state_set(&st, key, value);
	assert_int_equal(state_save(&st), 0);
	state_release(&st);
}

static void put_time(struct fixture *f, const char *name, const char *key, int64_t t)
{
	char when[32];

	time_rfc3339(when, sizeof(when), t);
	put(f, name, key, when);
}

/* What the agent records for one snapshot attempt of gateway at time t. */
static void attempt(struct fixture *f, const char *gateway, int64_t t, const char *result,
		    const char *error, const char *id)
{
	char name[128];
	struct state st;
	char when[32];

	snprintf(name, sizeof(name), "status-%s", gateway);
	time_rfc3339(when, sizeof(when), t);
	assert_int_equal(state_load(&st, f->state, name), 0);
	state_set(&st, "last-attempt", when);
	state_set(&st, "last-result", result);
	state_set(&st, "last-error", error ? error : "");
	if (error)
		state_set_int(&st, "failures-total", state_get_int(&st, "failures-total", 0) + 1);
	else if (strcmp(result, "skipped") != 0) {
		state_set(&st, "last-snapshot", id);
		state_set(&st, "last-success", when);
	}
	assert_int_equal(state_save(&st), 0);
	state_release(&st);
}

static void build(struct fixture *f, int64_t warn, int64_t crit)
{
	if (f->built)
		status_release(&f->s);
	assert_int_equal(status_build(&f->s, f->r, f->cfg, warn, crit, NOW), 0);
	f->built = true;
}

static const struct status_gateway *gw(struct fixture *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->s.ng; i++)
		if (strcmp(f->s.g[i].name, name) == 0)
			return &f->s.g[i];
	fail_msg("no gateway '%s' in the report", name);
	return NULL;
}

/* ---- the Prometheus text exposition format, line by line ---------------- */

struct prom_metric {
	char name[128];
	char type[16];
	bool help, sampled;
};

struct prom {
	struct prom_metric m[64];
	size_t n;
	char last[128]; /* the metric of the previous sample */
	size_t samples;
	char err[256];
};

static struct prom_metric *prom_find(struct prom *p, const char *name, bool add)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->m[i].name, name) == 0)
			return &p->m[i];
	if (!add || p->n == sizeof(p->m) / sizeof(p->m[0]))
		return NULL;
	memset(&p->m[p->n], 0, sizeof(p->m[0]));
	snprintf(p->m[p->n].name, sizeof(p->m[0].name), "%s", name);
	return &p->m[p->n++];
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (label names: no ':'); the end, or NULL. */
static const char *prom_name(const char *s, bool label, char *out, size_t len)
{
	const char *p = s;

	if (!(isalpha((unsigned char)*p) || *p == '_' || (!label && *p == ':')))
		return NULL;
	while (isalnum((unsigned char)*p) || *p == '_' || (!label && *p == ':'))
		p++;
	if (out) {
		if ((size_t)(p - s) >= len)
			return NULL;
		memcpy(out, s, (size_t)(p - s));
		out[p - s] = '\0';
	}
	return p;
}

/* {name="value",...}: escapes \\ \" \n only; the end, or NULL. */
static const char *prom_labels(const char *p)
{
	if (*p++ != '{')
		return NULL;
	while (*p != '}') {
		p = prom_name(p, true, NULL, 0);
		if (!p || *p++ != '=' || *p++ != '"')
			return NULL;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				return NULL;
			if (*p == '\\') {
				p++;
				if (*p != '\\' && *p != '"' && *p != 'n')
					return NULL;
			}
			p++;
		}
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return NULL;
	}
	return p + 1;
}

/* A Go ParseFloat value: decimal or exponent form, +-Inf, NaN. */
static bool prom_float(const char *s, size_t len)
{
	char buf[64], *end;
	size_t i;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!strcmp(buf, "+Inf") || !strcmp(buf, "-Inf") || !strcmp(buf, "Inf") ||
	    !strcmp(buf, "NaN"))
		return true;
	for (i = 0; i < len; i++) /* no hex floats, no "infinity" spellings */
		if (!strchr("0123456789+-.eE", buf[i]))
			return false;
	(void)strtod(buf, &end);
	return *end == '\0' && end != buf;
}

static bool prom_fail(struct prom *p, const char *line, const char *why)
{
	snprintf(p->err, sizeof(p->err), "%s: '%s'", why, line);
	return false;
}

static bool prom_line(struct prom *p, const char *line)
{
	char name[128];
	const char *q, *v;
	struct prom_metric *m;

	if (*line == '\0')
		return prom_fail(p, line, "empty line");
	if (*line == '#') {
		bool help = strncmp(line, "# HELP ", 7) == 0,
		     type = strncmp(line, "# TYPE ", 7) == 0;

		if (!help && !type)
			return true; /* a plain comment */
		q = prom_name(line + 7, false, name, sizeof(name));
		if (!q || *q != ' ')
			return prom_fail(p, line, "bad metric name in comment");
		m = prom_find(p, name, true);
		if (!m)
			return prom_fail(p, line, "too many metrics");
		q++;
		if (help) {
			if (m->help)
				return prom_fail(p, line, "second HELP");
			for (; *q; q++)
				if (*q == '\\' && q[1] != '\\' && q[1] != 'n')
					return prom_fail(p, line, "bad escape in HELP");
				else if (*q == '\\')
					q++;
			m->help = true;
			return true;
		}
		if (m->type[0])
			return prom_fail(p, line, "second TYPE");
		if (m->sampled)
			return prom_fail(p, line, "TYPE after samples");
		if (strcmp(q, "counter") && strcmp(q, "gauge") && strcmp(q, "histogram") &&
		    strcmp(q, "summary") && strcmp(q, "untyped"))
			return prom_fail(p, line, "bad type");
		snprintf(m->type, sizeof(m->type), "%s", q);
		return true;
	}
	q = prom_name(line, false, name, sizeof(name));
	if (!q)
		return prom_fail(p, line, "bad metric name");
	if (*q == '{' && !(q = prom_labels(q)))
		return prom_fail(p, line, "bad labels");
	if (*q++ != ' ')
		return prom_fail(p, line, "no space before the value");
	v = q;
	q += strcspn(q, " ");
	if (!prom_float(v, (size_t)(q - v)))
		return prom_fail(p, line, "bad value");
	if (*q == ' ') { /* an optional timestamp: an integer */
		q++;
		if (*q == '-')
			q++;
		if (!isdigit((unsigned char)*q))
			return prom_fail(p, line, "bad timestamp");
		while (isdigit((unsigned char)*q))
			q++;
		if (*q)
			return prom_fail(p, line, "junk after the timestamp");
	}
	m = prom_find(p, name, false);
	if (!m || !m->type[0])
		return prom_fail(p, line, "sample without TYPE");
	if (m->sampled && strcmp(p->last, name) != 0)
		return prom_fail(p, line, "samples of one metric not together");
	if (!strcmp(m->type, "counter") && (v[0] == '-' || !strncmp(v, "NaN", 3)))
		return prom_fail(p, line, "counter below zero");
	m->sampled = true;
	snprintf(p->last, sizeof(p->last), "%s", name);
	p->samples++;
	return true;
}

/* The whole text: every line valid, a final newline. */
static bool prom_parse(struct prom *p, const char *text)
{
	const char *s = text;

	memset(p, 0, sizeof(*p));
	if (!*text || text[strlen(text) - 1] != '\n')
		return prom_fail(p, "", "no final newline");
	while (*s) {
		const char *nl = strchr(s, '\n');
		char *line = xstrndup(s, (size_t)(nl - s));
		bool ok = prom_line(p, line);

		free(line);
		if (!ok)
			return false;
		s = nl + 1;
	}
	return true;
}

/* The value of one series "name{labels}" in text; fails when absent. */
static double prom_value(const char *text, const char *series)
{
	size_t len = strlen(series);
	const char *s = text;

	while (s && *s) {
		if (strncmp(s, series, len) == 0 && s[len] == ' ')
			return strtod(s + len + 1, NULL);
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	fail_msg("no series %s", series);
	return NAN;
}

static char *read_text(const char *path)
{
	FILE *fp = fopen(path, "re");
	struct buf b;
	char chunk[4096];
	size_t n;

	assert_non_null(fp);
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	fclose(fp);
	return buf_detach(&b, NULL);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_level_names(void **state)
{
	(void)state;
	assert_string_equal(status_level_name(STATUS_OK), "OK");
	assert_string_equal(status_level_name(STATUS_WARNING), "WARNING");
	assert_string_equal(status_level_name(STATUS_CRITICAL), "CRITICAL");
	assert_string_equal(status_level_name(STATUS_UNKNOWN), "UNKNOWN");
	assert_int_equal(STATUS_OK, 0);
	assert_int_equal(STATUS_WARNING, 1);
	assert_int_equal(STATUS_CRITICAL, 2);
	assert_int_equal(STATUS_UNKNOWN, 3);
}

static void test_fresh(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"fresh", NULL};
	char id[REPO_ID_LEN];
	const struct status_gateway *g;

	configure(f, gws, NULL);
	snapshot_at(f, "fresh", NOW - 10, id);
	attempt(f, "fresh", NOW - 10, "written", NULL, id);
	build(f, 3600, 86400);
	g = gw(f, "fresh");
	assert_int_equal(g->level, STATUS_OK);
	assert_string_equal(g->last_id, id);
	assert_int_equal(g->last_snapshot, NOW - 10);
	assert_int_equal(g->age, 10);
	assert_string_equal(g->reason, "last snapshot 10s ago");
	assert_string_equal(g->last_result, "written");
	assert_null(g->last_error);
	assert_int_equal(g->failures_total, 0);
	assert_int_equal(g->last_drill, 0);
	assert_null(g->follow_state);
	assert_int_equal(f->s.level, STATUS_OK);
	assert_string_equal(f->s.summary, "fresh OK: last snapshot 10s ago");
	assert_int_equal(f->s.now, NOW);
}

/* An unchanged run renews the age though the tip is older. */
static void test_unchanged_renews(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"calm", NULL};
	char id[REPO_ID_LEN];

	configure(f, gws, NULL);
	snapshot_at(f, "calm", NOW - 30 * 86400, id);
	attempt(f, "calm", NOW - 30 * 86400, "written", NULL, id);
	attempt(f, "calm", NOW - 60, "unchanged", NULL, id);
	build(f, 3600, 86400);
	assert_int_equal(gw(f, "calm")->level, STATUS_OK);
	assert_int_equal(gw(f, "calm")->age, 60);
	assert_string_equal(gw(f, "calm")->last_id, id);

	/* and a tip newer than the state (a manual snapshot elsewhere) counts too */
	snapshot_at(f, "calm", NOW - 5, id);
	build(f, 3600, 86400);
	assert_int_equal(gw(f, "calm")->age, 5);
	assert_string_equal(gw(f, "calm")->last_id, id);
}

static void test_stale(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"stale", NULL};
	static const struct {
		int64_t warn, crit;
		enum status_level want;
	} cases[] = {
	    {3600, 86400, STATUS_WARNING}, {7200, 86400, STATUS_OK}, /* age == warn: not yet */
	    {7199, 86400, STATUS_WARNING}, {3600, 7200, STATUS_WARNING},
	    {3600, 7199, STATUS_CRITICAL}, {1, 1, STATUS_CRITICAL},
	    {86400, 172800, STATUS_OK},
	};
	char id[REPO_ID_LEN];
	size_t i;

	configure(f, gws, NULL);
	snapshot_at(f, "stale", NOW - 7200, id);
	attempt(f, "stale", NOW - 7200, "written", NULL, id);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build(f, cases[i].warn, cases[i].crit);
		if (gw(f, "stale")->level != cases[i].want)
			fail_msg("warn %lld crit %lld: %s, want %s", (long long)cases[i].warn,
				 (long long)cases[i].crit, status_level_name(gw(f, "stale")->level),
				 status_level_name(cases[i].want));
		assert_int_equal(f->s.level, cases[i].want);
		assert_int_equal(gw(f, "stale")->age, 7200);
		assert_string_equal(gw(f, "stale")->reason, "last snapshot 2h00m ago");
	}
}

static void test_failed(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"failing", NULL};
	char id[REPO_ID_LEN];
	const struct status_gateway *g;

	configure(f, gws, NULL);
	snapshot_at(f, "failing", NOW - 600, id);
	attempt(f, "failing", NOW - 600, "written", NULL, id);
	attempt(f, "failing", NOW - 300, "failed", "cannot stat '/gw': No such file", NULL);
	attempt(f, "failing", NOW - 10, "failed", "cannot stat '/gw': No such file", NULL);
	build(f, 3600, 86400);
	g = gw(f, "failing");
	assert_int_equal(g->level, STATUS_CRITICAL);
	assert_string_equal(g->reason, "last snapshot failed: cannot stat '/gw': No such file");
	assert_string_equal(g->last_result, "failed");
	assert_string_equal(g->last_error, "cannot stat '/gw': No such file");
	assert_int_equal(g->failures_total, 2);
	assert_string_equal(g->last_id, id); /* the last good one is still named */
	assert_int_equal(g->age, 600);
	assert_non_null(g->last_attempt);
	assert_int_equal(f->s.level, STATUS_CRITICAL);
	assert_string_equal(
	    f->s.summary,
	    "failing CRITICAL: last snapshot failed: cannot stat '/gw': No such file");

	/* the next good attempt clears it; the failures stay counted */
	attempt(f, "failing", NOW - 5, "written", NULL, id);
	build(f, 3600, 86400);
	assert_int_equal(gw(f, "failing")->level, STATUS_OK);
	assert_int_equal(gw(f, "failing")->failures_total, 2);
	assert_null(gw(f, "failing")->last_error);
}

static void test_skipped(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"hooked", NULL};
	char id[REPO_ID_LEN];

	configure(f, gws, NULL);
	snapshot_at(f, "hooked", NOW - 60, id);
	attempt(f, "hooked", NOW - 60, "written", NULL, id);
	attempt(f, "hooked", NOW - 1, "skipped", "hook-pre-snapshot of 'hooked': exit 1", NULL);
	build(f, 3600, 86400);
	assert_int_equal(gw(f, "hooked")->level, STATUS_CRITICAL);
	assert_string_equal(gw(f, "hooked")->reason,
			    "last snapshot skipped: hook-pre-snapshot of 'hooked': exit 1");
}

static void test_never(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"never", NULL};
	const struct status_gateway *g;

	configure(f, gws, NULL);
	build(f, 3600, 86400);
	g = gw(f, "never");
	assert_int_equal(g->level, STATUS_UNKNOWN);
	assert_string_equal(g->reason, "never snapshotted");
	assert_string_equal(g->last_id, "");
	assert_int_equal(g->last_snapshot, 0);
	assert_int_equal(g->age, -1);
	assert_null(g->last_result);
	assert_null(g->last_attempt);
	assert_int_equal(f->s.level, STATUS_UNKNOWN);
	assert_string_equal(f->s.summary, "never UNKNOWN: never snapshotted");

	/* never succeeded, but tried and failed: that is worse than unknown */
	attempt(f, "never", NOW - 10, "failed", "unreachable", NULL);
	build(f, 3600, 86400);
	assert_int_equal(gw(f, "never")->level, STATUS_CRITICAL);
	assert_int_equal(gw(f, "never")->age, -1);
}

static void test_follow_blocked(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"primary", "standby", NULL};
	char id[REPO_ID_LEN];
	const struct status_gateway *g;

	configure(f, gws, NULL);
	snapshot_at(f, "primary", NOW - 20, id);
	attempt(f, "primary", NOW - 20, "written", NULL, id);
	snapshot_at(f, "standby", NOW - 20, id);
	attempt(f, "standby", NOW - 20, "written", NULL, id);
	put(f, "status-standby", "follow-state", "blocked");
	put(f, "status-standby", "follow-finding", "key-changed mbx-0123 (3 messages)");
	build(f, 3600, 86400);
	g = gw(f, "standby");
	assert_int_equal(g->level, STATUS_CRITICAL);
	assert_string_equal(g->follow_state, "blocked");
	assert_string_equal(g->follow_finding, "key-changed mbx-0123 (3 messages)");
	assert_string_equal(g->reason, "follow blocked: key-changed mbx-0123 (3 messages)");
	assert_int_equal(gw(f, "primary")->level, STATUS_OK);
	assert_int_equal(f->s.level, STATUS_CRITICAL);
	assert_string_equal(f->s.summary, "primary OK: last snapshot 20s ago; standby CRITICAL: "
					  "follow blocked: key-changed mbx-0123 (3 messages)");

	put(f, "status-standby", "follow-state", "ok");
	put(f, "status-standby", "follow-finding", "");
	build(f, 3600, 86400);
	assert_int_equal(gw(f, "standby")->level, STATUS_OK);
	assert_null(gw(f, "standby")->follow_finding);
}

static void test_drill_recorded(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"drilled", NULL};
	char id[REPO_ID_LEN];

	configure(f, gws, NULL);
	snapshot_at(f, "drilled", NOW - 20, id);
	attempt(f, "drilled", NOW - 20, "written", NULL, id);
	put_time(f, "status-drilled", "last-drill", NOW - 15);
	build(f, 3600, 86400);
	assert_int_equal(gw(f, "drilled")->last_drill, NOW - 15);
	assert_int_equal(gw(f, "drilled")->level, STATUS_OK);
}

/* The overall level is the worst: CRITICAL > WARNING > UNKNOWN > OK. */
static void test_worst_wins(void **state)
{
	struct fixture *f = *state;
	static const char *const all[] = {"ok", "warn", "unknown", "crit", NULL};
	static const char *const no_crit[] = {"ok", "warn", "unknown", NULL};
	static const char *const no_warn[] = {"ok", "unknown", NULL};
	static const char *const only_ok[] = {"ok", NULL};
	char id[REPO_ID_LEN];

	snapshot_at(f, "ok", NOW - 10, id);
	attempt(f, "ok", NOW - 10, "written", NULL, id);
	snapshot_at(f, "warn", NOW - 5000, id);
	attempt(f, "warn", NOW - 5000, "written", NULL, id);
	snapshot_at(f, "crit", NOW - 10, id);
	attempt(f, "crit", NOW - 5, "failed", "boom", NULL);

	configure(f, all, NULL);
	build(f, 3600, 86400);
	assert_int_equal(f->s.level, STATUS_CRITICAL);
	assert_int_equal(f->s.ng, 4);
	assert_string_equal(f->s.summary,
			    "ok OK: last snapshot 10s ago; warn WARNING: last snapshot 1h23m ago; "
			    "unknown UNKNOWN: never snapshotted; crit CRITICAL: last snapshot "
			    "failed: boom");
	configure(f, no_crit, NULL);
	build(f, 3600, 86400);
	assert_int_equal(f->s.level, STATUS_WARNING);
	configure(f, no_warn, NULL);
	build(f, 3600, 86400);
	assert_int_equal(f->s.level, STATUS_UNKNOWN);
	configure(f, only_ok, NULL);
	build(f, 3600, 86400);
	assert_int_equal(f->s.level, STATUS_OK);
	configure(f, NULL, NULL);
	build(f, 3600, 86400);
	assert_int_equal(f->s.level, STATUS_UNKNOWN);
	assert_int_equal(f->s.ng, 0);
	assert_string_equal(f->s.summary, "no gateways configured");
}

static void test_remotes(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"gw", NULL};
	static const char *const rms[] = {"good", "bad", "untried", NULL};
	char id[REPO_ID_LEN];

	configure(f, gws, rms);
	snapshot_at(f, "gw", NOW - 10, id);
	attempt(f, "gw", NOW - 10, "written", NULL, id);
	put_time(f, "push-good", "last-attempt", NOW - 8);
	put_time(f, "push-good", "last-success", NOW - 8);
	put(f, "push-good", "last-error", "");
	build(f, 3600, 86400);
	assert_int_equal(f->s.nr, 3);
	assert_int_equal(f->s.level, STATUS_OK);
	assert_int_equal(f->s.rm[0].level, STATUS_OK);
	assert_int_equal(f->s.rm[0].last_success, NOW - 8);
	assert_int_equal(f->s.rm[2].last_attempt, 0);

	put_time(f, "push-bad", "last-attempt", NOW - 7);
	put_time(f, "push-bad", "last-success", NOW - 90000);
	put(f, "push-bad", "last-error", "remote 'bad': connection refused");
	build(f, 3600, 86400);
	assert_string_equal(f->s.rm[1].name, "bad");
	assert_int_equal(f->s.rm[1].level, STATUS_WARNING);
	assert_int_equal(f->s.rm[1].last_attempt, NOW - 7);
	assert_int_equal(f->s.rm[1].last_success, NOW - 90000);
	assert_string_equal(f->s.rm[1].last_error, "remote 'bad': connection refused");
	assert_int_equal(f->s.level, STATUS_WARNING);
	assert_string_equal(f->s.summary, "gw OK: last snapshot 10s ago; remote bad: push "
					  "failed: remote 'bad': connection refused");
}

/* The checker must refuse what the format does not allow, or it proves
 * nothing about the textfile. */
static void test_prom_checker(void **state)
{
	static const char *const good[] = {
	    "# TYPE m gauge\nm 1\n",
	    "# HELP m a help \\\\ text \\n here\n# TYPE m "
	    "counter\nm{a=\"x\",b_2=\"y\\\"z\\\\\\n\"} "
	    "1.5e3\n",
	    "# TYPE a:b untyped\na:b{} -Inf 1700000000000\n",
	    "# a plain comment\n# TYPE m gauge\nm{l=\"\"} NaN\nm{l=\"2\"} .5\n",
	    "# TYPE m gauge\nm{a=\"1\",} 0\n",
	};
	static const char *const bad[] = {
	    "",
	    "# TYPE m gauge\nm 1",		/* no final newline */
	    "# TYPE m gauge\n\nm 1\n",		/* empty line */
	    "m 1\n",				/* no TYPE */
	    "# TYPE m gauge\n1m 1\n",		/* bad name */
	    "# TYPE m-x gauge\nm-x 1\n",	/* bad name */
	    "# TYPE m gauge\nm{a=\"1} 1\n",	/* unterminated value */
	    "# TYPE m gauge\nm{a=1} 1\n",	/* unquoted value */
	    "# TYPE m gauge\nm{a:b=\"1\"} 1\n", /* ':' in a label name */
	    "# TYPE m gauge\nm{a=\"\\t\"} 1\n", /* bad escape */
	    "# TYPE m gauge\nm{a=\"1\"}\n",	/* no value */
	    "# TYPE m gauge\nm 1.2.3\n",	/* bad float */
	    "# TYPE m gauge\nm 0x10\n",		/* hex */
	    "# TYPE m gauge\nm 1 2.5\n",	/* float timestamp */
	    "# TYPE m gauge\nm  1\n",		/* two spaces */
	    "# TYPE m gauges\nm 1\n",		/* bad type */
	    "# TYPE m gauge\n# TYPE m gauge\nm 1\n",
	    "# TYPE m gauge\nm 1\n# TYPE m gauge\n",
	    "# HELP m x\n# HELP m y\n# TYPE m gauge\nm 1\n",
	    "# HELP m bad \\escape\n# TYPE m gauge\nm 1\n",
	    "# TYPE m gauge\n# TYPE n gauge\nm 1\nn 1\nm 2\n", /* not grouped */
	    "# TYPE c counter\nc -1\n",
	};
	struct prom p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!prom_parse(&p, good[i]))
			fail_msg("refused good text %zu: %s", i, p.err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (prom_parse(&p, bad[i]))
			fail_msg("accepted bad text %zu: %s", i, bad[i]);
}

static void test_prometheus(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"fresh", "failing", "never", "standby", NULL};
	static const char *const rms[] = {"off", NULL};
	static const char *const want[] = {
	    "msgw_last_snapshot_timestamp_seconds",
	    "msgw_last_snapshot_success",
	    "msgw_snapshot_failures_total",
	    "msgw_last_drill_timestamp_seconds",
	    "msgw_follow_blocked",
	    "msgw_gateway_status",
	    "msgw_last_push_success",
	    "msgw_last_push_timestamp_seconds",
	    "msgw_state_writable",
	    "msgw_status",
	};
	char path[PATH_MAX + 32], id[REPO_ID_LEN];
	struct prom p;
	char *text;
	size_t i;

	configure(f, gws, rms);
	snapshot_at(f, "fresh", NOW - 10, id);
	attempt(f, "fresh", NOW - 10, "written", NULL, id);
	put_time(f, "status-fresh", "last-drill", NOW - 9);
	snapshot_at(f, "failing", NOW - 100, id);
	attempt(f, "failing", NOW - 100, "written", NULL, id);
	attempt(f, "failing", NOW - 50, "failed", "x", NULL);
	attempt(f, "failing", NOW - 40, "failed", "x", NULL);
	attempt(f, "failing", NOW - 30, "failed", "x", NULL);
	snapshot_at(f, "standby", NOW - 10, id);
	attempt(f, "standby", NOW - 10, "unchanged", NULL, id);
	put(f, "status-standby", "follow-state", "blocked");
	put(f, "status-standby", "follow-finding", "orphaned mbx-1 (2 messages)");
	put_time(f, "push-off", "last-attempt", NOW - 3);
	put_time(f, "push-off", "last-success", NOW - 3);
	put(f, "push-off", "last-error", "");
	build(f, 3600, 86400);

	snprintf(path, sizeof(path), "%s/node", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/node/msgw.prom", f->dir);
	assert_int_equal(status_write_prometheus(&f->s, path), 0);
	text = read_text(path);
	if (!prom_parse(&p, text))
		fail_msg("%s\n--- in ---\n%s", p.err, text);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct prom_metric *m = prom_find(&p, want[i], false);

		if (!m || !m->type[0] || !m->help)
			fail_msg("metric %s lacks HELP or TYPE", want[i]);
	}
	assert_string_equal(prom_find(&p, "msgw_snapshot_failures_total", false)->type, "counter");
	assert_string_equal(prom_find(&p, "msgw_status", false)->type, "gauge");
	assert_int_equal(p.samples, 4 * 6 + 2 + 1 + 1);

	assert_true(prom_value(text, "msgw_last_snapshot_timestamp_seconds{gateway=\"fresh\"}") ==
		    (double)(NOW - 10));
	assert_true(prom_value(text, "msgw_last_snapshot_timestamp_seconds{gateway=\"failing\"}") ==
		    (double)(NOW - 100));
	assert_true(prom_value(text, "msgw_last_snapshot_timestamp_seconds{gateway=\"never\"}") ==
		    0);
	assert_true(prom_value(text, "msgw_last_snapshot_success{gateway=\"fresh\"}") == 1);
	assert_true(prom_value(text, "msgw_last_snapshot_success{gateway=\"standby\"}") == 1);
	assert_true(prom_value(text, "msgw_last_snapshot_success{gateway=\"failing\"}") == 0);
	assert_true(prom_value(text, "msgw_last_snapshot_success{gateway=\"never\"}") == 0);
	assert_true(prom_value(text, "msgw_snapshot_failures_total{gateway=\"failing\"}") == 3);
	assert_true(prom_value(text, "msgw_snapshot_failures_total{gateway=\"fresh\"}") == 0);
	assert_true(prom_value(text, "msgw_last_drill_timestamp_seconds{gateway=\"fresh\"}") ==
		    (double)(NOW - 9));
	assert_true(prom_value(text, "msgw_last_drill_timestamp_seconds{gateway=\"failing\"}") ==
		    0);
	assert_true(prom_value(text, "msgw_follow_blocked{gateway=\"standby\"}") == 1);
	assert_true(prom_value(text, "msgw_follow_blocked{gateway=\"fresh\"}") == 0);
	assert_true(prom_value(text, "msgw_gateway_status{gateway=\"fresh\"}") == 0);
	assert_true(prom_value(text, "msgw_gateway_status{gateway=\"failing\"}") == 2);
	assert_true(prom_value(text, "msgw_gateway_status{gateway=\"never\"}") == 3);
	assert_true(prom_value(text, "msgw_last_push_success{remote=\"off\"}") == 1);
	assert_true(prom_value(text, "msgw_last_push_timestamp_seconds{remote=\"off\"}") ==
		    (double)(NOW - 3));
	assert_true(prom_value(text, "msgw_state_writable") == 1);
	assert_true(prom_value(text, "msgw_status") == 2);
	free(text);
}

/* Written to a temporary name and renamed: a reader sees the old file or
 * the new one, never a part; nothing is left behind; failures say so. */
static void test_prometheus_atomic(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"gw", NULL};
	char path[PATH_MAX + 32], hard[PATH_MAX + 32], bad[PATH_MAX + 32];
	struct stat a, b;
	struct prom p;
	char *text, *old;
	FILE *fp;
	char id[REPO_ID_LEN];

	configure(f, gws, NULL);
	build(f, 3600, 86400);
	snprintf(path, sizeof(path), "%s/msgw.prom", f->dir);
	snprintf(hard, sizeof(hard), "%s/old.prom", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("old contents\n", fp);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(link(path, hard), 0);
	assert_int_equal(stat(path, &a), 0);

	snapshot_at(f, "gw", NOW - 10, id);
	build(f, 3600, 86400);
	assert_int_equal(status_write_prometheus(&f->s, path), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino != b.st_ino); /* a new file took the name */
	assert_int_equal(b.st_mode & 07777, 0644);
	old = read_text(hard);
	assert_string_equal(old, "old contents\n"); /* never written in place */
	free(old);
	text = read_text(path);
	if (!prom_parse(&p, text))
		fail_msg("%s", p.err);
	free(text);

	/* no temporary file left next to it */
	{
		char cmd[PATH_MAX * 2];
		int n;

		snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -c tmp", f->dir);
		fp = popen(cmd, "r");
		assert_non_null(fp);
		assert_int_equal(fscanf(fp, "%d", &n), 1);
		pclose(fp);
		assert_int_equal(n, 0);
	}

	/* a directory that does not exist: an error naming it, nothing made */
	snprintf(bad, sizeof(bad), "%s/nodir/msgw.prom", f->dir);
	assert_int_equal(status_write_prometheus(&f->s, bad), MSGW_ERR);
	assert_contains(err_last(), "nodir/msgw.prom");
	snprintf(bad, sizeof(bad), "%s/nodir", f->dir);
	assert_int_equal(access(bad, F_OK), -1);
}

/*
 * A state directory where no record can be written is CRITICAL, even with
 * fresh records: they can no longer change.  Unwritable here: a file stands
 * where the state directory's parent should be (ENOTDIR, as root too).
 */
static void test_state_unwritable(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"fresh", NULL};
	char id[REPO_ID_LEN], blocker[PATH_MAX + 16];
	FILE *fp;

	configure(f, gws, NULL);
	snapshot_at(f, "fresh", NOW - 10, id);
	attempt(f, "fresh", NOW - 10, "written", NULL, id);
	assert_int_equal(state_probe(f->state), 0);
	build(f, 3600, 86400);
	assert_null(f->s.state_error);
	assert_int_equal(f->s.level, STATUS_OK);

	snprintf(blocker, sizeof(blocker), "%s/blocker", f->dir);
	fp = fopen(blocker, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(f->state, sizeof(f->state), "%s/blocker/state", f->dir);
	configure(f, gws, NULL);
	assert_int_equal(state_probe(f->state), MSGW_ERR);
	assert_contains(err_last(), "cannot write '");
	assert_contains(err_last(), "/blocker/state/.probe-");
	build(f, 3600, 86400);
	assert_int_equal(f->s.level, STATUS_CRITICAL);
	assert_contains(f->s.state_error, "/blocker/state/.probe-");
	assert_contains(f->s.summary, "state directory CRITICAL: status records cannot be written: "
				      "cannot write '");
	assert_contains(f->s.summary, ": Not a directory; fresh ");
}

/* A state directory that does not exist yet (nothing ran) is not an error. */
static void test_state_missing(void **state)
{
	struct fixture *f = *state;
	static const char *const gws[] = {"fresh", NULL};

	configure(f, gws, NULL);
	assert_int_equal(state_probe(f->state), 0);
	assert_int_equal(access(f->state, F_OK), -1);
	build(f, 3600, 86400);
	assert_null(f->s.state_error);
	assert_int_equal(f->s.level, STATUS_UNKNOWN);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_level_names),
	    T(test_fresh),
	    T(test_unchanged_renews),
	    T(test_stale),
	    T(test_failed),
	    T(test_skipped),
	    T(test_never),
	    T(test_follow_blocked),
	    T(test_drill_recorded),
	    T(test_worst_wins),
	    T(test_remotes),
	    cmocka_unit_test(test_prom_checker),
	    T(test_prometheus),
	    T(test_prometheus_atomic),
	    T(test_state_unwritable),
	    T(test_state_missing),
	};

	repo_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
