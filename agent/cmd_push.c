/*
 * push: push the repository's branches and tags to the named remotes
 * (default: all), under the repository lock.  Each attempt is recorded in
 * STATE_DIR/push-REMOTE; a remote that fails is reported, the others still
 * run, and the exit status is 1.
 */
#include "agent.h"
#include "err.h"
#include "log.h"
#include "repo.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char synopsis[] = "push [REMOTE...]";

static const char help[] =
    "usage: push [REMOTE...]\n\n"
    "Push every gateway branch and every tag to the named remotes (default:\n"
    "all configured remotes).  Branches are only moved forward on a remote,\n"
    "never rewritten (unless the remote has prune-remotes = true).  The\n"
    "outcome is recorded in the state directory as push-REMOTE (last-attempt,\n"
    "last-success, last-error); 'status' reports it.  Exit 1 when any push\n"
    "failed.\n";

static int one_remote(struct cli_ctx *ctx, const struct config_remote *rem)
{
	struct repo_push_result res;
	int rc;

	rc = repo_push_recorded(&res, cli_repo(ctx), rem, ctx->cfg->state_dir);
	if (rc) {
		log_error("%s", err_last());
		return rc;
	}
	if (res.offered == 0)
		printf("%s: nothing to push\n", rem->name);
	else if (res.updated == 0)
		printf("%s: up to date (%zu refs)\n", rem->name, res.offered);
	else
		printf("%s: %zu of %zu refs updated\n", rem->name, res.updated, res.offered);
	return 0;
}

int cmd_push(struct cli_ctx *ctx, int argc, char **argv)
{
	struct config *cfg;
	size_t i;
	int a, failed = 0;

	if (cli_want_help(argc, argv, help))
		return 0;
	for (a = 1; a < argc; a++)
		if (argv[a][0] == '-' && strcmp(argv[a], "--") != 0)
			return cli_usage_error(ctx, synopsis, "unknown option '%s'", argv[a]);
	cfg = cli_config(ctx);
	for (a = 1; a < argc; a++)
		if (strcmp(argv[a], "--") != 0 && !config_remote_find(cfg, argv[a]))
			return cli_fail(ctx, MSGW_ECONFIG);
	if (cfg->nremotes == 0)
		return cli_usage_error(ctx, synopsis, "no remote configured in '%s'", cfg->path);
	cli_lock_repo(ctx);
	if (argc > 1) {
		for (a = 1; a < argc; a++)
			if (strcmp(argv[a], "--") != 0)
				failed += one_remote(ctx, config_remote_find(cfg, argv[a])) != 0;
	} else {
		for (i = 0; i < cfg->nremotes; i++)
			failed += one_remote(ctx, &cfg->remotes[i]) != 0;
	}
	return failed ? 1 : 0;
}
