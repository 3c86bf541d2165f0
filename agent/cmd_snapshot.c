/*
 * snapshot: take one snapshot of each named gateway (default: all), under
 * the repository lock.  A gateway that fails is reported and the others
 * still run; the exit status is 1 when any failed.
 */
#include "agent.h"
#include "err.h"
#include "jobs.h"
#include "repo.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char synopsis[] =
    "snapshot [GATEWAY...] [--tag NAME] [--message TEXT] [--kind KIND] [--json]";

static const char help[] =
    "usage: snapshot [GATEWAY...] [--tag NAME] [--message TEXT] [--kind KIND] [--json]\n\n"
    "Snapshot the configuration of the named gateways (default: all).  Mailbox\n"
    "stores are never read.  A state equal to the gateway's latest snapshot is\n"
    "not written again ('unchanged').\n"
    "  -t, --tag NAME      tag the snapshot (one gateway only)\n"
    "  -m, --message TEXT  add TEXT to the commit message\n"
    "      --kind KIND     meta kind (default manual; the scheduler uses scheduled)\n"
    "      --json          one JSON document with a result per gateway\n";

struct snap_args {
	const char *tag, *message, *kind;
	int json;
};

static int one_gateway(struct cli_ctx *ctx, const struct config_gateway *gw,
		       const struct snap_args *a, json_t *arr)
{
	struct snapshot_opts so = {0};
	struct job_result jr;
	int rc;

	so.kind = a->kind;
	so.message = a->message;
	so.tag = a->tag;
	rc = job_snapshot(&jr, cli_repo(ctx), ctx->cfg, gw, &so);
	if (rc) {
		log_error("%s", err_last());
		if (arr)
			json_array_append_new(arr,
					      json_pack("{s:s, s:s, s:s}", "gateway", gw->name,
							"result", jr.result, "error", err_last()));
		return rc;
	}
	if (arr)
		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "gateway", gw->name, "result",
				   jr.result, "id", jr.snap.id, "summary", jr.snap.summary, "files",
				   (json_int_t)jr.snap.files, "bytes", (json_int_t)jr.snap.bytes));
	else if (jr.snap.unchanged)
		printf("%s: unchanged (%.12s)\n", gw->name, jr.snap.id);
	else
		printf("%.12s %s\n", jr.snap.id, jr.snap.summary);
	return 0;
}

static int parse(struct cli_ctx *ctx, struct snap_args *a, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"kind", required_argument, NULL, 'k'},
					     {"message", required_argument, NULL, 'm'},
					     {"tag", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	int c;

	memset(a, 0, sizeof(*a));
	a->kind = "manual";
	while ((c = getopt_long(argc, argv, "m:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			a->json = 1;
			break;
		case 'k':
			a->kind = optarg;
			break;
		case 'm':
			a->message = optarg;
			break;
		case 't':
			a->tag = optarg;
			break;
		default:
			return cli_usage_error(ctx, synopsis, "bad option");
		}
	}
	return 0;
}

/* The exit status after one more gateway's result: the highest so far, so
 * a refused --tag (2) is not reported as an ordinary failure (1). */
static int worse(int status, int rc)
{
	int code = rc ? err_exit_code(rc) : 0;

	return code > status ? code : status;
}

int cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv)
{
	struct snap_args a;
	struct config *cfg;
	json_t *arr = NULL;
	int i, status = 0;

	if (cli_want_help(argc, argv, help))
		return 0;
	if (parse(ctx, &a, argc, argv))
		return 2;
	cfg = cli_config(ctx);
	for (i = optind; i < argc; i++)
		if (!config_gateway_find(cfg, argv[i]))
			return cli_fail(ctx, MSGW_ECONFIG);
	if (a.tag && (argc - optind != 1 && cfg->ngateways != 1))
		return cli_usage_error(ctx, synopsis, "--tag needs exactly one gateway");
	if (cfg->ngateways == 0)
		return cli_usage_error(ctx, synopsis, "no gateway configured in '%s'", cfg->path);
	cli_lock_repo(ctx);
	if (a.json)
		arr = json_array();
	if (optind < argc) {
		for (i = optind; i < argc; i++)
			status = worse(
			    status, one_gateway(ctx, config_gateway_find(cfg, argv[i]), &a, arr));
	} else {
		for (i = 0; i < (int)cfg->ngateways; i++)
			status = worse(status, one_gateway(ctx, &cfg->gateways[i], &a, arr));
	}
	repo_push_auto(cli_repo(ctx), cfg, cfg->state_dir); /* never fails a snapshot */
	if (arr) {
		json_t *doc = json_pack("{s:i, s:o}", "version", 1, "results", arr);

		cli_print_json(doc);
	}
	return status;
}
