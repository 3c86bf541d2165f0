/*
 * fetch: bring snapshots from the configured remotes (default: all) into
 * the repository, creating the repository first on a fresh host.  Local
 * branches only move forward; one that has commits the remote lacks is
 * kept and a warning says so.
 */
#include "err.h"
#include "log.h"
#include "repo.h"
#include "restore.h"

#include <stdio.h>
#include <string.h>

static const char synopsis[] = "fetch [REMOTE...]";

static const char help[] =
    "usage: fetch [REMOTE...]\n\n"
    "Fetch every gateway branch and tag from the named remotes (default: all\n"
    "configured remotes) into the repository, which is created if it does not\n"
    "exist yet (a fresh restore host).  Branches only move forward: a local\n"
    "branch with commits the remote lacks is kept, with a warning.  Exit 1\n"
    "when any fetch failed.\n";

static int one_remote(struct cli_ctx *ctx, const struct config_remote *rem)
{
	struct repo_fetch_result res;
	int rc;

	rc = repo_fetch(&res, cli_repo(ctx), rem);
	if (rc) {
		log_error("%s", err_last());
		return rc;
	}
	if (res.updated == 0)
		printf("%s: up to date\n", rem->name);
	else
		printf("%s: %zu refs updated\n", rem->name, res.updated);
	return 0;
}

int cmd_fetch(struct cli_ctx *ctx, int argc, char **argv)
{
	struct config *cfg;
	const char *path;
	size_t i;
	int a, failed = 0, rc;

	if (cli_want_help(argc, argv, help))
		return 0;
	for (a = 1; a < argc; a++)
		if (argv[a][0] == '-')
			return cli_usage_error(ctx, synopsis, "unknown option '%s'", argv[a]);
	cfg = cli_config(ctx);
	for (a = 1; a < argc; a++)
		if (!config_remote_find(cfg, argv[a]))
			return cli_fail(ctx, MSGW_ECONFIG);
	if (cfg->nremotes == 0)
		return cli_usage_error(ctx, synopsis, "no remote configured in '%s'", cfg->path);
	path = ctx->repo_override ? ctx->repo_override : cfg->repository;
	if (!repo_remote_is_url(path)) {
		rc = repo_init(path, NULL);
		if (rc)
			return cli_fail(ctx, rc);
	}
	cli_lock_repo(ctx);
	if (argc > 1) {
		for (a = 1; a < argc; a++)
			failed += one_remote(ctx, config_remote_find(cfg, argv[a])) != 0;
	} else {
		for (i = 0; i < cfg->nremotes; i++)
			failed += one_remote(ctx, &cfg->remotes[i]) != 0;
	}
	return failed ? 1 : 0;
}
