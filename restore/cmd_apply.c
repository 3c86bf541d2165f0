/*
 * plan and apply: show what a restore would do, and do it.
 */
#include "err.h"
#include "log.h"
#include "restore.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char plan_synopsis[] =
    "plan SNAPSHOT --to GATEWAY [--only PATTERN] [--force=CODE[,CODE]] [--json]";
static const char apply_synopsis[] =
    "apply SNAPSHOT --to GATEWAY [--yes] [--dry-run] [--force=CODE[,CODE]] [--only PATTERN] "
    "[--confirm-within DURATION] [--json]";

static const char plan_help[] =
    "usage: plan SNAPSHOT --to GATEWAY [--only PATTERN] [--force=CODE[,CODE]] [--json]\n\n"
    "Show what 'apply' would do, changing nothing: files added, modified, removed,\n"
    "preserved (host-specific) and left alone, the mailbox stores (never touched),\n"
    "the service actions, and the safety analysis's findings.  Exit 3 when a\n"
    "finding would refuse the restore.\n"
    "  -t, --to GATEWAY      the gateway to restore onto\n"
    "      --only PATTERN    only paths matching PATTERN (and below)\n"
    "      --force=CODES     treat these findings as accepted\n"
    "      --json            one JSON document\n";

static const char apply_help[] =
    "usage: apply SNAPSHOT --to GATEWAY [--yes] [--dry-run] [--force=CODE[,CODE]]\n"
    "             [--only PATTERN] [--confirm-within DURATION] [--json]\n\n"
    "Restore SNAPSHOT onto GATEWAY as one transaction: verify, plan, refuse on\n"
    "findings (exit 3), record a pre-restore snapshot, stage, stop the service,\n"
    "swap, start, health check; a failed health check puts everything back\n"
    "(exit 4).  On a terminal the plan is shown and confirmed; otherwise --yes\n"
    "is required.\n"
    "  -t, --to GATEWAY           the gateway to restore onto\n"
    "  -y, --yes                  do not ask\n"
    "  -n, --dry-run              show the plan only\n"
    "      --force=CODES          accept these findings (mailbox-removed, key-changed,\n"
    "                             target-diverged, proxy-mode, version-mismatch)\n"
    "      --only PATTERN         restore only paths matching PATTERN\n"
    "      --confirm-within DUR   put the previous state back unless 'msgw-restore\n"
    "                             confirm' follows within DUR (e.g. 5m)\n"
    "      --json                 the plan as JSON (with --dry-run)\n";

static int parse(struct cli_ctx *ctx, int argc, char **argv, struct run_opts *o, const char **to,
		 const char *synopsis)
{
	static const struct option opts[] = {{"confirm-within", required_argument, NULL, 'C'},
					     {"dry-run", no_argument, NULL, 'n'},
					     {"force", required_argument, NULL, 'F'},
					     {"json", no_argument, NULL, 'j'},
					     {"only", required_argument, NULL, 'O'},
					     {"to", required_argument, NULL, 't'},
					     {"yes", no_argument, NULL, 'y'},
					     {NULL, 0, NULL, 0}};
	long secs;
	int c;

	memset(o, 0, sizeof(*o));
	*to = NULL;
	while ((c = getopt_long(argc, argv, "nt:y", opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			if (config_parse_duration(&secs, optarg))
				return cli_usage_error(ctx, synopsis, "%s", err_last());
			o->confirm_within = (int)secs;
			break;
		case 'n':
			o->dry_run = true;
			break;
		case 'F':
			o->force = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'O':
			o->only = optarg;
			break;
		case 't':
			*to = optarg;
			break;
		case 'y':
			o->yes = true;
			break;
		default:
			return cli_usage_error(ctx, synopsis, "bad option");
		}
	}
	if (optind != argc - 1 || !*to)
		return cli_usage_error(ctx, synopsis, "needs one SNAPSHOT and --to GATEWAY");
	return 0;
}

int cmd_plan(struct cli_ctx *ctx, int argc, char **argv)
{
	struct run_opts o;
	const char *to;

	if (cli_want_help(argc, argv, plan_help))
		return 0;
	if (parse(ctx, argc, argv, &o, &to, plan_synopsis))
		return 2;
	if (o.yes || o.confirm_within)
		return cli_usage_error(ctx, plan_synopsis, "plan changes nothing; use apply");
	o.dry_run = true;
	o.yes = true;
	return restore_apply_flow(ctx, argv[optind], to, &o);
}

int cmd_apply(struct cli_ctx *ctx, int argc, char **argv)
{
	struct run_opts o;
	const char *to;

	if (cli_want_help(argc, argv, apply_help))
		return 0;
	if (parse(ctx, argc, argv, &o, &to, apply_synopsis))
		return 2;
	if (o.json && !o.dry_run)
		return cli_usage_error(ctx, apply_synopsis, "--json goes with --dry-run");
	return restore_apply_flow(ctx, argv[optind], to, &o);
}
