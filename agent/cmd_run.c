/*
 * run: the long-running agent.  Every schedule interval (plus a random
 * jitter) it snapshots each gateway, pushes where configured and records
 * the results; one unreachable gateway never stops it.  Gateways are read
 * concurrently (jobs.h's batch) and their results logged in order.  SIGTERM/SIGINT
 * finish the current step and exit 0; SIGHUP reloads the configuration (a
 * bad new file is reported and the old one kept).
 */
#include "agent.h"
#include "err.h"
#include "jobs.h"
#include "lock.h"
#include "log.h"
#include "repo.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char help[] =
    "usage: run [--once] [--syslog] [--parallel N]\n\n"
    "Snapshot every gateway each schedule interval (with a small random jitter),\n"
    "push to remotes with push = true, and record each result for 'status'.\n"
    "Several gateways are read at once (up to 'parallel', default 32) and written\n"
    "one at a time; each cycle logs its results in the configuration's order.\n"
    "SIGTERM finishes the current step and exits 0; SIGHUP reloads the\n"
    "configuration (a broken file is reported and the old one kept).\n"
    "      --once        one cycle, then exit (1 when a gateway failed)\n"
    "      --syslog      log to syslog instead of stderr\n"
    "      --parallel N  read at most N gateways at once (1 to 256; overrides\n"
    "                    the configuration's 'parallel')\n";

static const char synopsis[] = "run [--once] [--syslog] [--parallel N]";

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static void reload(struct cli_ctx *ctx)
{
	struct config *fresh = NULL;
	struct repo *r = NULL;

	reload_requested = 0;
	if (config_load(&fresh, ctx->cfg->path)) {
		log_error("reload failed, keeping the running configuration: %s", err_last());
		return;
	}
	/* a new repository path takes effect too (unless --repo fixed it) */
	if (!ctx->repo_override && strcmp(fresh->repository, ctx->cfg->repository) != 0) {
		if (repo_open(&r, fresh->repository)) {
			log_error("reload failed, keeping the running configuration: %s",
				  err_last());
			config_free(fresh);
			return;
		}
		repo_use_key_file(r, fresh->key_file);
		repo_free(ctx->repo);
		ctx->repo = r;
	}
	config_free(ctx->cfg);
	ctx->cfg = fresh;
	log_info("configuration reloaded from '%s'", fresh->path);
}

/* One gateway's result in the log (job_done_fn), in the configuration's
 * order; arg counts the failures. */
static void log_result(void *arg, const struct config_gateway *gw, int rc,
		       const struct job_result *jr)
{
	int *failed = arg;

	if (rc) {
		log_error("%s", err_last());
		(*failed)++;
	} else if (jr->snap.unchanged) {
		log_info("%s: unchanged", gw->name);
	} else {
		log_info("%.12s %s", jr->snap.id, jr->snap.summary);
	}
}

/* One cycle under the repository lock; returns the number of failures. */
static int cycle(struct cli_ctx *ctx, int parallel)
{
	struct config *cfg = ctx->cfg;
	const struct config_gateway **gws;
	struct snapshot_opts so = {.kind = "scheduled"};
	struct job_batch batch = {0};
	struct lock *lk = NULL;
	size_t i;
	int failed = 0;

	if (repo_lock(&lk, cli_repo(ctx))) {
		log_warn("skipping this cycle: %s", err_last());
		return 1;
	}
	mkdir(cfg->state_dir, 0700);
	gws = xcalloc(cfg->ngateways + 1, sizeof(*gws));
	for (i = 0; i < cfg->ngateways; i++)
		gws[i] = &cfg->gateways[i];
	batch.repo = cli_repo(ctx);
	batch.cfg = cfg;
	batch.gws = gws;
	batch.n = cfg->ngateways;
	batch.parallel = (size_t)(parallel ? parallel : cfg->parallel);
	batch.opts = &so;
	batch.stop = &stop_requested;
	batch.done = log_result;
	batch.arg = &failed;
	job_snapshot_batch(&batch);
	free(gws);
	if (!stop_requested)
		repo_push_auto(cli_repo(ctx), cfg, cfg->state_dir);
	lock_release(lk);
	return failed;
}

static void sleep_interval(const struct config *cfg)
{
	int64_t wait_ms = (int64_t)cfg->interval * 1000;
	int64_t until;

	if (cfg->jitter > 0)
		wait_ms += (int64_t)(random() % ((long)cfg->jitter * 1000 + 1));
	until = time_now_ms() + wait_ms;
	while (!stop_requested && !reload_requested && time_now_ms() < until)
		usleep(100000);
}

int cmd_run(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"once", no_argument, NULL, 'o'},
					     {"parallel", required_argument, NULL, 'p'},
					     {"syslog", no_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	int c, once = 0, failed, parallel = 0;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'o')
			once = 1;
		else if (c == 's')
			log_use_syslog(1);
		else if (c == 'p' && config_parallel_parse(&parallel, optarg))
			return cli_usage_error(ctx, synopsis, "%s", err_last());
		else if (c != 'p')
			return cli_usage_error(ctx, synopsis, "bad option");
	}
	cli_config(ctx);
	cli_repo(ctx);
	srandom((unsigned)(time(NULL) ^ getpid()));
	install_handlers();
	if (log_get_level() < LOG_LVL_INFO && !once)
		log_set_level(LOG_LVL_INFO);
	log_info("started: %zu gateways, every %d s", ctx->cfg->ngateways, ctx->cfg->interval);
	for (;;) {
		failed = cycle(ctx, parallel);
		if (once || stop_requested)
			break;
		sleep_interval(ctx->cfg);
		if (reload_requested)
			reload(ctx);
		if (stop_requested)
			break;
	}
	log_info("stopped");
	return once && failed ? 1 : 0;
}
