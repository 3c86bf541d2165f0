/*
 * follow: keep a standby in step with the gateway it follows.  On each
 * interval, when the primary has a snapshot the standby has not received
 * yet: plan; apply when the plan has no finding; when a finding blocks,
 * change nothing and record the finding (status turns CRITICAL).  Never
 * during an open confirm window or an unfinished restore.  A snapshot whose
 * apply failed (rolled back) is not tried again by the loop until a newer
 * one arrives (follow-failed in the state file); --once always tries.
 */
#include "err.h"
#include "log.h"
#include "restore.h"
#include "state.h"
#include "util.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char synopsis[] = "follow GATEWAY [--once] [--interval DURATION]";
static const char help[] =
    "usage: follow GATEWAY [--once] [--interval DURATION]\n\n"
    "Keep the standby GATEWAY in step with the gateway its 'follows' names: each\n"
    "interval (default: schedule interval), when the primary has a newer\n"
    "snapshot, plan the restore; apply it when the plan has no finding; when a\n"
    "finding blocks, change nothing and record it, so 'msgw-agent status' turns\n"
    "CRITICAL naming it.  Nothing happens while a confirm window is open.  A\n"
    "snapshot whose apply failed is not tried again until a newer one (--once does).\n"
    "      --once          one check, then exit (0 in step or applied, 3 blocked,\n"
    "                      1 or 4 failed)\n"
    "      --interval D    how often to check\n";

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void record(struct cli_ctx *ctx, const char *gw, const char *st, const char *finding,
		   const char *applied, const char *failed)
{
	char name[300], when[32];
	struct state s;

	snprintf(name, sizeof(name), "status-%s", gw);
	if (state_load(&s, ctx->cfg->state_dir, name))
		return;
	time_rfc3339(when, sizeof(when), (int64_t)time(NULL));
	state_set(&s, "follow-state", st);
	state_set(&s, "follow-finding", finding ? finding : "");
	state_set(&s, "follow-time", when);
	if (applied)
		state_set(&s, "follow-applied", applied);
	state_set(&s, "follow-failed", failed ? failed : "");
	if (state_save(&s))
		log_warn("%s", err_last());
	state_release(&s);
}

/* A snapshot id kept in the standby's state: follow-applied, follow-failed. */
static char *state_id(struct cli_ctx *ctx, const char *gw, const char *key)
{
	char name[300];
	struct state s;
	char *id = NULL;

	snprintf(name, sizeof(name), "status-%s", gw);
	if (state_load(&s, ctx->cfg->state_dir, name) == 0) {
		const char *v = state_get(&s, key);

		id = v ? xstrdup(v) : NULL;
		state_release(&s);
	}
	return id;
}

static char *findings_text(const struct plan *p)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	for (i = 0; i < p->findings.n; i++) {
		const struct finding *f = &p->findings.v[i];

		buf_addf(&b, "%s%s", b.len ? "; " : "", f->code);
		if (f->mailbox)
			buf_addf(&b, " %s (%zu messages)", f->mailbox, f->messages);
	}
	return buf_detach(&b, NULL);
}

/* Plan and maybe apply the primary's tip; the exit status of this round. */
static int step(struct cli_ctx *ctx, struct target *t, const char *tip)
{
	struct apply_opts ao = {0};
	struct apply_result res;
	struct apply_env env;
	struct plan p;
	int rc;

	rc = plan_build(&p, cli_repo(ctx), tip, cli_config(ctx), t->gw, t->fs, NULL);
	if (rc) {
		record(ctx, t->gw->name, "failed", err_last(), NULL, NULL);
		return cli_fail(ctx, rc);
	}
	if (p.findings.n) {
		char *why = findings_text(&p);

		record(ctx, t->gw->name, "blocked", why, NULL, NULL);
		log_error("%s: not following %.12s: blocked by %s; nothing was changed "
			  "(see 'msgw-restore plan %.12s --to %s')",
			  t->gw->name, tip, why, tip, t->gw->name);
		free(why);
		plan_release(&p);
		return 3;
	}
	if (p.added + p.modified + p.removed == 0) {
		record(ctx, t->gw->name, "ok", NULL, tip, NULL);
		plan_release(&p);
		return 0;
	}
	target_env(ctx, t, &env);
	rc = apply_run(&res, &env, &p, &ao);
	plan_release(&p);
	if (rc) {
		char why[1024];

		/* remembered, so that the loop does not stop and start the
		 * standby again and again for the same snapshot */
		snprintf(why, sizeof(why), "%s", err_last());
		record(ctx, t->gw->name, "failed", why, NULL, tip);
		err_set(rc, "%s", why);
		return cli_fail(ctx, rc);
	}
	record(ctx, t->gw->name, "ok", NULL, tip, NULL);
	printf("%s: followed %.12s (service down %.3f s)\n", t->gw->name, tip,
	       res.downtime_ms / 1000.0);
	fflush(stdout); /* a long-running follow writes to a log, not a terminal */
	return 0;
}

static int follow_once(struct cli_ctx *ctx, const struct config_gateway *gw, bool retry)
{
	char tip[REPO_ID_LEN], phase[32];
	struct target t;
	int64_t deadline;
	char *applied;
	int rc, status;

	if (apply_pending(ctx->cfg, gw->name, phase, sizeof(phase), &deadline)) {
		log_info("%s: a restore is open (%s); not following now", gw->name, phase);
		return 0;
	}
	rc = repo_branch_tip(tip, cli_repo(ctx), gw->follows);
	if (rc) {
		log_info("%s: %s", gw->name, err_last());
		return 0;
	}
	applied = state_id(ctx, gw->name, "follow-applied");
	status = applied && strcmp(applied, tip) == 0 ? 0 : -1;
	free(applied);
	if (status == 0)
		return 0;
	applied = state_id(ctx, gw->name, "follow-failed");
	status = !retry && applied && strcmp(applied, tip) == 0 ? 1 : -1;
	free(applied);
	if (status == 1) {
		log_info("%s: applying %.12s failed before; not trying it again until a newer "
			 "snapshot (or 'follow --once')",
			 gw->name, tip);
		return 1;
	}
	/* not cli_lock_repo, which exits: a scheduled snapshot holding the
	 * repository lock just now must not end a long-running follow */
	rc = repo_lock(&ctx->lock, cli_repo(ctx));
	if (rc)
		return cli_fail(ctx, rc);
	rc = target_open(ctx, &t, gw->name, true);
	if (rc) {
		lock_release(ctx->lock);
		ctx->lock = NULL;
		return cli_fail(ctx, rc);
	}
	status = step(ctx, &t, tip);
	target_close(&t);
	lock_release(ctx->lock);
	ctx->lock = NULL;
	return status;
}

int cmd_follow(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"interval", required_argument, NULL, 'i'},
					     {"once", no_argument, NULL, 'o'},
					     {NULL, 0, NULL, 0}};
	const struct config_gateway *gw;
	long interval = 0;
	int c, once = 0, status;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'o')
			once = 1;
		else if (c == 'i' && config_parse_duration(&interval, optarg) == 0)
			continue;
		else
			return cli_usage_error(ctx, synopsis, "%s",
					       c == 'i' ? err_last() : "bad option");
	}
	if (optind != argc - 1)
		return cli_usage_error(ctx, synopsis, "follow needs one GATEWAY");
	gw = config_gateway_find(cli_config(ctx), argv[optind]);
	if (!gw)
		return cli_fail(ctx, MSGW_ECONFIG);
	if (!gw->follows)
		return cli_usage_error(ctx, synopsis, "gateway '%s' has no 'follows' in '%s'",
				       gw->name, ctx->cfg->path);
	if (!interval)
		interval = ctx->cfg->interval;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	for (;;) {
		status = follow_once(ctx, gw, once);
		if (once || stop_requested)
			break;
		for (long i = 0; i < interval * 10 && !stop_requested; i++)
			usleep(100000);
		if (stop_requested)
			break;
	}
	return once ? status : 0;
}
