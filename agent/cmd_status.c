/*
 * status: the monitoring view, as a Nagios/Icinga plugin: the first line
 * is "MSGW LEVEL - summary", the exit status 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN; --json for scripts, --prometheus FILE for node_exporter.
 */
#include "agent.h"
#include "err.h"
#include "log.h"
#include "status.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char synopsis[] =
    "status [--json] [--warn-age DURATION] [--crit-age DURATION] [--prometheus FILE]";
static const char help[] =
    "usage: status [--json] [--warn-age DURATION] [--crit-age DURATION] [--prometheus FILE]\n\n"
    "Per gateway: the last snapshot and its age, the last attempt's result and\n"
    "error, the last restore drill, the follow state; per remote the last push.\n"
    "Monitoring plugin convention: the first line is the summary, exit 0 OK,\n"
    "1 WARNING, 2 CRITICAL, 3 UNKNOWN (never snapshotted, or no configuration).\n"
    "A state directory where no record can be written (full) is CRITICAL.\n"
    "      --warn-age D   WARNING when the last good snapshot is older (default 1h)\n"
    "      --crit-age D   CRITICAL when older (default 24h)\n"
    "      --prometheus F write a node_exporter textfile to F (atomically)\n"
    "      --json         one JSON document\n";

static void print_human(const struct status_report *s)
{
	size_t i;

	printf("MSGW %s - %s\n", status_level_name(s->level), s->summary);
	if (s->state_error)
		printf("state directory: CRITICAL: %s\n", s->state_error);
	for (i = 0; i < s->ng; i++) {
		const struct status_gateway *g = &s->g[i];

		printf("gateway %s: %s\n", g->name, status_level_name(g->level));
		printf("  last snapshot: %s%.12s (%s)\n", g->last_id[0] ? "" : "none", g->last_id,
		       g->reason);
		printf("  last attempt: %s%s%s%s%s\n", g->last_attempt ?: "never",
		       g->last_result ? " " : "", g->last_result ?: "", g->last_error ? ": " : "",
		       g->last_error ?: "");
		printf("  failures: %lld, last drill: %s\n", (long long)g->failures_total,
		       g->last_drill ? "recorded" : "never");
		if (g->follow_state)
			printf("  follow: %s%s%s\n", g->follow_state, g->follow_finding ? ": " : "",
			       g->follow_finding ?: "");
	}
	for (i = 0; i < s->nr; i++)
		printf("remote %s: %s%s%s\n", s->rm[i].name,
		       s->rm[i].last_attempt ? (s->rm[i].last_error ? "push failed" : "pushed")
					     : "never pushed",
		       s->rm[i].last_error ? ": " : "", s->rm[i].last_error ?: "");
}

static json_t *to_json(const struct status_report *s)
{
	json_t *gws = json_array(), *rms = json_array();
	size_t i;

	for (i = 0; i < s->ng; i++) {
		const struct status_gateway *g = &s->g[i];

		json_array_append_new(
		    gws, json_pack(
			     "{s:s, s:s, s:s, s:s?, s:I, s:I, s:s?, s:s?, s:s?, s:I, s:I, "
			     "s:s?, s:s?}",
			     "gateway", g->name, "status", status_level_name(g->level), "reason",
			     g->reason, "last_snapshot", g->last_id[0] ? g->last_id : NULL,
			     "last_snapshot_time", (json_int_t)g->last_snapshot, "age",
			     (json_int_t)g->age, "last_attempt", g->last_attempt, "last_result",
			     g->last_result, "last_error", g->last_error, "failures_total",
			     (json_int_t)g->failures_total, "last_drill", (json_int_t)g->last_drill,
			     "follow_state", g->follow_state, "follow_finding", g->follow_finding));
	}
	for (i = 0; i < s->nr; i++)
		json_array_append_new(
		    rms, json_pack("{s:s, s:s, s:I, s:I, s:s?}", "remote", s->rm[i].name, "status",
				   status_level_name(s->rm[i].level), "last_attempt",
				   (json_int_t)s->rm[i].last_attempt, "last_success",
				   (json_int_t)s->rm[i].last_success, "last_error",
				   s->rm[i].last_error));
	return json_pack("{s:i, s:s, s:i, s:s, s:s?, s:o, s:o}", "version", 1, "status",
			 status_level_name(s->level), "exit", (int)s->level, "summary", s->summary,
			 "state_error", s->state_error, "gateways", gws, "remotes", rms);
}

int cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"crit-age", required_argument, NULL, 'c'},
					     {"json", no_argument, NULL, 'j'},
					     {"prometheus", required_argument, NULL, 'p'},
					     {"warn-age", required_argument, NULL, 'w'},
					     {NULL, 0, NULL, 0}};
	long warn = 3600, crit = 86400;
	const char *prom = NULL;
	struct status_report s;
	struct config *cfg = NULL;
	struct repo *r = NULL;
	int c, json = 0;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'p')
			prom = optarg;
		else if ((c == 'w' && config_parse_duration(&warn, optarg) == 0) ||
			 (c == 'c' && config_parse_duration(&crit, optarg) == 0))
			continue;
		else
			return cli_usage_error(ctx, synopsis, "%s",
					       c == '?' ? "bad option" : err_last());
	}
	if (config_load(&cfg, config_path(ctx->config_file))) {
		printf("MSGW UNKNOWN - %s\n", err_last());
		return 3;
	}
	ctx->cfg = cfg;
	if (repo_open(&r, cfg->repository)) {
		printf("MSGW UNKNOWN - %s\n", err_last());
		return 3;
	}
	ctx->repo = r;
	repo_use_key_file(r, cfg->key_file);
	status_build(&s, r, cfg, warn, crit, (int64_t)time(NULL));
	if (prom && status_write_prometheus(&s, prom))
		log_error("%s", err_last());
	if (json) {
		json_t *doc = to_json(&s);

		cli_print_json(doc);
	} else {
		print_human(&s);
	}
	c = (int)s.level;
	status_release(&s);
	return c;
}
