/*
 * reencrypt: move a plain repository's history into the configured
 * (encrypted) repository, under its lock; reencrypt.c does the copying.
 */
#include "agent.h"
#include "err.h"
#include "log.h"
#include "reencrypt.h"
#include "repo.h"

#include <getopt.h>
#include <stdio.h>

static const char synopsis[] = "reencrypt --from PLAIN-REPOSITORY";

static const char help[] =
    "usage: reencrypt --from PLAIN-REPOSITORY\n\n"
    "Copy every gateway's snapshots (oldest first, each verified first) and\n"
    "tags from a plain repository into the configured repository, which must\n"
    "be encrypted ('init --encrypt') and hold none of those gateways yet.  The\n"
    "copies are sealed with the configured key; times and summaries are kept.\n"
    "The plain repository is only read: delete it (and its remotes' copies)\n"
    "yourself once the encrypted one is pushed.\n"
    "      --from PATH  the plain repository\n";

int cmd_reencrypt(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"from", required_argument, NULL, 'f'},
					     {NULL, 0, NULL, 0}};
	struct reencrypt_result res;
	const char *from = NULL;
	struct repo *src = NULL;
	int c, rc;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'f')
			return cli_usage_error(ctx, synopsis, "bad option");
		from = optarg;
	}
	if (!from || optind != argc)
		return cli_usage_error(ctx, synopsis, "reencrypt needs --from and nothing else");
	cli_lock_repo(ctx);
	rc = repo_open(&src, from);
	if (!rc)
		rc = reencrypt_repo(&res, cli_repo(ctx), src);
	repo_free(src);
	if (rc)
		return cli_fail(ctx, rc);
	printf("reencrypted %zu snapshots of %zu gateways (%zu tags) from '%s' into '%s'\n",
	       res.snapshots, res.branches, res.tags, from, repo_path(cli_repo(ctx)));
	return 0;
}
