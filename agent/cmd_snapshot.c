/*
 * snapshot: take one snapshot of each named gateway (default: all), under
 * the repository lock, several gateways read at once (jobs.h's batch).  A
 * gateway that fails is reported and the others still run; the exit
 * status is the worst of the gateways' (1 when any failed).
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

static const char synopsis[] = "snapshot [GATEWAY...] [--tag NAME] [--message TEXT] "
			       "[--kind KIND] [--parallel N] [--json]";

static const char help[] =
    "usage: snapshot [GATEWAY...] [--tag NAME] [--message TEXT] [--kind KIND] [--parallel N]\n"
    "                [--json]\n\n"
    "Snapshot the configuration of the named gateways (default: all).  Mailbox\n"
    "stores are never read.  A state equal to the gateway's latest snapshot is\n"
    "not written again ('unchanged').  Several gateways are read at once (up to\n"
    "'parallel', default 32) and written one at a time; results come in the\n"
    "order the gateways are named (or configured).\n"
    "  -t, --tag NAME      tag the snapshot (one gateway only)\n"
    "  -m, --message TEXT  add TEXT to the commit message\n"
    "      --kind KIND     meta kind (default manual; the scheduler uses scheduled)\n"
    "      --parallel N    read at most N gateways at once (1 to 256; overrides\n"
    "                      the configuration's 'parallel')\n"
    "      --json          one JSON document with a result per gateway\n";

struct snap_args {
	const char *tag, *message, *kind;
	int json, parallel; /* parallel: --parallel, 0 when not given */
	int status;	    /* the exit status so far */
	json_t *arr;	    /* --json: the results so far */
};

/* The exit status after one more gateway's result: the highest so far, so
 * a refused --tag (2) is not reported as an ordinary failure (1). */
static int worse(int status, int rc)
{
	int code = rc ? err_exit_code(rc) : 0;

	return code > status ? code : status;
}

/* One gateway's result (job_done_fn), in the order the gateways were given. */
static void one_result(void *arg, const struct config_gateway *gw, int rc,
		       const struct job_result *jr)
{
	struct snap_args *a = arg;
	json_t *arr = a->arr;

	a->status = worse(a->status, rc);
	if (rc) {
		log_error("%s", err_last());
		if (arr)
			json_array_append_new(arr,
					      json_pack("{s:s, s:s, s:s}", "gateway", gw->name,
							"result", jr->result, "error", err_last()));
		return;
	}
	if (arr)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "gateway",
						     gw->name, "result", jr->result, "id",
						     jr->snap.id, "summary", jr->snap.summary,
						     "files", (json_int_t)jr->snap.files, "bytes",
						     (json_int_t)jr->snap.bytes));
	else if (jr->snap.unchanged)
		printf("%s: unchanged (%.12s)\n", gw->name, jr->snap.id);
	else
		printf("%.12s %s\n", jr->snap.id, jr->snap.summary);
}

static int parse(struct cli_ctx *ctx, struct snap_args *a, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},	       {"kind", required_argument, NULL, 'k'},
	    {"message", required_argument, NULL, 'm'}, {"parallel", required_argument, NULL, 'p'},
	    {"tag", required_argument, NULL, 't'},     {NULL, 0, NULL, 0}};
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
		case 'p':
			if (config_parallel_parse(&a->parallel, optarg))
				return cli_usage_error(ctx, synopsis, "%s", err_last());
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

int cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv)
{
	const struct config_gateway **gws = NULL;
	struct job_batch batch = {0};
	struct snapshot_opts so = {0};
	struct snap_args a;
	struct config *cfg;
	size_t n = 0;
	int i;

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
		a.arr = json_array();
	gws = xcalloc(cfg->ngateways + (size_t)argc, sizeof(*gws));
	for (i = optind; i < argc; i++)
		gws[n++] = config_gateway_find(cfg, argv[i]);
	for (i = 0; optind == argc && i < (int)cfg->ngateways; i++)
		gws[n++] = &cfg->gateways[i];
	so.kind = a.kind;
	so.message = a.message;
	so.tag = a.tag;
	batch.repo = cli_repo(ctx);
	batch.cfg = cfg;
	batch.gws = gws;
	batch.n = n;
	batch.parallel = (size_t)(a.parallel ? a.parallel : cfg->parallel);
	batch.opts = &so;
	batch.done = one_result;
	batch.arg = &a;
	job_snapshot_batch(&batch);
	free(gws);
	repo_push_auto(cli_repo(ctx), cfg, cfg->state_dir); /* never fails a snapshot */
	if (a.arr) {
		json_t *doc = json_pack("{s:i, s:o}", "version", 1, "results", a.arr);

		cli_print_json(doc);
	}
	return a.status;
}
