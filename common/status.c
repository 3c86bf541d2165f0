/*
 * status: gather, judge and export; see status.h for the rules.
 */
#include "status.h"
#include "err.h"
#include "repo.h"
#include "snapshot.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *status_level_name(enum status_level l)
{
	static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

	return names[l];
}

static int rank(enum status_level l)
{
	return l == STATUS_CRITICAL ? 3 : l == STATUS_WARNING ? 2 : l == STATUS_UNKNOWN ? 1 : 0;
}

static enum status_level worst(enum status_level a, enum status_level b)
{
	return rank(a) >= rank(b) ? a : b;
}

static int64_t parse_time(const char *s)
{
	int64_t t = 0;

	return s && *s && time_parse_rfc3339(&t, s) == 0 ? t : 0;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

static void fill_from_repo(struct status_gateway *g, struct repo *r)
{
	struct snapshot s;

	if (repo_branch_tip(g->last_id, r, g->name) != 0) {
		g->last_id[0] = '\0';
		return;
	}
	if (snapshot_load_meta(&s, r, g->last_id) == 0) {
		int64_t t = parse_time(snapshot_meta_get(&s.meta, "created"));

		if (t > g->last_snapshot)
			g->last_snapshot = t;
		snapshot_release(&s);
	}
}

static void judge(struct status_gateway *g, int64_t warn, int64_t crit, int64_t now)
{
	char age[32];

	g->age = g->last_snapshot ? now - g->last_snapshot : -1;
	duration_human(age, sizeof(age), g->age);
	if (g->follow_state &&
	    (!strcmp(g->follow_state, "blocked") || !strcmp(g->follow_state, "failed"))) {
		g->level = STATUS_CRITICAL;
		g->reason =
		    xasprintf("follow %s: %s", g->follow_state, g->follow_finding ?: "a finding");
	} else if (g->last_result &&
		   (!strcmp(g->last_result, "failed") || !strcmp(g->last_result, "skipped"))) {
		g->level = STATUS_CRITICAL;
		g->reason = xasprintf("last snapshot %s: %s", g->last_result, g->last_error ?: "");
	} else if (!g->last_snapshot) {
		g->level = STATUS_UNKNOWN;
		g->reason = xstrdup("never snapshotted");
	} else if (g->age > crit) {
		g->level = STATUS_CRITICAL;
		g->reason = xasprintf("last snapshot %s ago", age);
	} else if (g->age > warn) {
		g->level = STATUS_WARNING;
		g->reason = xasprintf("last snapshot %s ago", age);
	} else {
		g->level = STATUS_OK;
		g->reason = xasprintf("last snapshot %s ago", age);
	}
}

static void gather_gateway(struct status_gateway *g, const char *name, struct repo *r,
			   const struct config *cfg)
{
	char file[300];
	struct state st;

	memset(g, 0, sizeof(*g));
	g->name = name;
	snprintf(file, sizeof(file), "status-%s", name);
	if (state_load(&st, cfg->state_dir, file) == 0) {
		g->last_snapshot = parse_time(state_get(&st, "last-success"));
		g->last_result = dup_or_null(state_get(&st, "last-result"));
		g->last_error = dup_or_null(state_get(&st, "last-error"));
		g->last_attempt = dup_or_null(state_get(&st, "last-attempt"));
		g->failures_total = state_get_int(&st, "failures-total", 0);
		g->last_drill = parse_time(state_get(&st, "last-drill"));
		g->follow_state = dup_or_null(state_get(&st, "follow-state"));
		g->follow_finding = dup_or_null(state_get(&st, "follow-finding"));
		state_release(&st);
	}
	fill_from_repo(g, r);
}

static void gather_remote(struct status_remote *rm, const struct config_remote *c,
			  const struct config *cfg)
{
	struct repo_push_state ps;

	memset(rm, 0, sizeof(*rm));
	rm->name = c->name;
	rm->level = STATUS_OK;
	if (repo_push_state_read(&ps, cfg->state_dir, c->name) != 0)
		return;
	rm->last_attempt = ps.last_attempt;
	rm->last_success = ps.last_success;
	if (ps.last_error) {
		rm->last_error = xstrdup(ps.last_error);
		rm->level = STATUS_WARNING;
	}
	repo_push_state_release(&ps);
}

static void summarise(struct status_report *s)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	if (s->state_error)
		buf_addf(&b, "state directory CRITICAL: status records cannot be written: %s",
			 s->state_error);
	for (i = 0; i < s->ng; i++)
		buf_addf(&b, "%s%s %s: %s", b.len ? "; " : "", s->g[i].name,
			 status_level_name(s->g[i].level), s->g[i].reason);
	for (i = 0; i < s->nr; i++)
		if (s->rm[i].last_error)
			buf_addf(&b, "%sremote %s: push failed: %s", b.len ? "; " : "",
				 s->rm[i].name, s->rm[i].last_error);
	if (!s->ng)
		buf_adds(&b, "no gateways configured");
	s->summary = buf_detach(&b, NULL);
}

int status_build(struct status_report *out, struct repo *r, const struct config *cfg,
		 int64_t warn_age, int64_t crit_age, int64_t now)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	out->now = now;
	out->level = cfg->ngateways ? STATUS_OK : STATUS_UNKNOWN;
	out->g = xcalloc(cfg->ngateways + 1, sizeof(*out->g));
	out->ng = cfg->ngateways;
	for (i = 0; i < out->ng; i++) {
		gather_gateway(&out->g[i], cfg->gateways[i].name, r, cfg);
		judge(&out->g[i], warn_age, crit_age, now);
		out->level = worst(out->level, out->g[i].level);
	}
	if (state_probe(cfg->state_dir)) {
		out->state_error = xstrdup(err_last());
		out->level = STATUS_CRITICAL;
	}
	out->rm = xcalloc(cfg->nremotes + 1, sizeof(*out->rm));
	out->nr = cfg->nremotes;
	for (i = 0; i < out->nr; i++) {
		gather_remote(&out->rm[i], &cfg->remotes[i], cfg);
		out->level = worst(out->level, out->rm[i].level);
	}
	summarise(out);
	return 0;
}

void status_release(struct status_report *s)
{
	size_t i;

	for (i = 0; i < s->ng; i++) {
		free(s->g[i].reason);
		free(s->g[i].last_result);
		free(s->g[i].last_error);
		free(s->g[i].last_attempt);
		free(s->g[i].follow_state);
		free(s->g[i].follow_finding);
	}
	for (i = 0; i < s->nr; i++)
		free(s->rm[i].last_error);
	free(s->g);
	free(s->rm);
	free(s->summary);
	free(s->state_error);
	memset(s, 0, sizeof(*s));
}

static void metric(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_gateways(struct buf *b, const struct status_report *s)
{
	size_t i;

	metric(b, "msgw_last_snapshot_timestamp_seconds", "gauge",
	       "Unix time of the last good snapshot run (0: never).");
	for (i = 0; i < s->ng; i++)
		buf_addf(b, "msgw_last_snapshot_timestamp_seconds{gateway=\"%s\"} %lld\n",
			 s->g[i].name, (long long)s->g[i].last_snapshot);
	metric(b, "msgw_last_snapshot_success", "gauge",
	       "1 when the last snapshot attempt succeeded.");
	for (i = 0; i < s->ng; i++)
		buf_addf(b, "msgw_last_snapshot_success{gateway=\"%s\"} %d\n", s->g[i].name,
			 s->g[i].last_result && (!strcmp(s->g[i].last_result, "written") ||
						 !strcmp(s->g[i].last_result, "unchanged")));
	metric(b, "msgw_snapshot_failures_total", "counter", "Failed snapshot attempts.");
	for (i = 0; i < s->ng; i++)
		buf_addf(b, "msgw_snapshot_failures_total{gateway=\"%s\"} %lld\n", s->g[i].name,
			 (long long)s->g[i].failures_total);
	metric(b, "msgw_last_drill_timestamp_seconds", "gauge",
	       "Unix time of the last successful restore drill (0: never).");
	for (i = 0; i < s->ng; i++)
		buf_addf(b, "msgw_last_drill_timestamp_seconds{gateway=\"%s\"} %lld\n",
			 s->g[i].name, (long long)s->g[i].last_drill);
	metric(b, "msgw_follow_blocked", "gauge", "1 when a standby's follow is blocked.");
	for (i = 0; i < s->ng; i++)
		buf_addf(b, "msgw_follow_blocked{gateway=\"%s\"} %d\n", s->g[i].name,
			 s->g[i].follow_state && !strcmp(s->g[i].follow_state, "blocked"));
	metric(b, "msgw_gateway_status", "gauge", "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.");
	for (i = 0; i < s->ng; i++)
		buf_addf(b, "msgw_gateway_status{gateway=\"%s\"} %d\n", s->g[i].name,
			 (int)s->g[i].level);
}

static void prom_remotes(struct buf *b, const struct status_report *s)
{
	size_t i;

	metric(b, "msgw_last_push_success", "gauge", "1 when the last push to a remote succeeded.");
	for (i = 0; i < s->nr; i++)
		buf_addf(b, "msgw_last_push_success{remote=\"%s\"} %d\n", s->rm[i].name,
			 s->rm[i].last_attempt && !s->rm[i].last_error);
	metric(b, "msgw_last_push_timestamp_seconds", "gauge",
	       "Unix time of the last successful push (0: never).");
	for (i = 0; i < s->nr; i++)
		buf_addf(b, "msgw_last_push_timestamp_seconds{remote=\"%s\"} %lld\n", s->rm[i].name,
			 (long long)s->rm[i].last_success);
	metric(b, "msgw_state_writable", "gauge",
	       "1 when a status record can be written in the state directory.");
	buf_addf(b, "msgw_state_writable %d\n", !s->state_error);
	metric(b, "msgw_status", "gauge", "Overall: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.");
	buf_addf(b, "msgw_status %d\n", (int)s->level);
}

int status_write_prometheus(const struct status_report *s, const char *path)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	struct buf b;
	int fd, rc = 0;

	buf_init(&b);
	prom_gateways(&b, s);
	prom_remotes(&b, s);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	/* node_exporter reads it as another user; it holds no secrets */
	if (fd < 0 || fchmod(fd, 0644) < 0 || write(fd, b.data, b.len) != (ssize_t)b.len ||
	    fsync(fd) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write '%s'", tmp);
	if (fd >= 0)
		close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write '%s'", path);
	if (rc)
		unlink(tmp);
	free(tmp);
	buf_release(&b);
	return rc;
}
