/*
 * init: create the bare repository (mode 0700) and the state directory;
 * running it again changes nothing.
 */
#include "agent.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

static const char help[] = "usage: init\n\n"
			   "Create the repository named by 'repository' (a bare git repository,\n"
			   "mode 0700) and the state directory.  Idempotent.\n";

int cmd_init(struct cli_ctx *ctx, int argc, char **argv)
{
	struct config *cfg;
	int created = 0, rc;

	if (cli_want_help(argc, argv, help))
		return 0;
	if (argc != 1)
		return cli_usage_error(ctx, "init", "init takes no arguments");
	cfg = cli_config(ctx);
	rc = repo_init(cfg->repository, &created);
	if (rc)
		return cli_fail(ctx, rc);
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST)
		log_warn("cannot create state directory '%s': %s", cfg->state_dir, strerror(errno));
	printf("%s repository '%s'\n", created ? "created" : "using existing", cfg->repository);
	return 0;
}
