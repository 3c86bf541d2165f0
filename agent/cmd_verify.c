/*
 * verify: check snapshots completely (tree shape, meta, manifest, every
 * file's sha256 in the archive).  Each damaged snapshot is named with the
 * damaged file; the run goes on and exits 1 when any was damaged.
 */
#include "agent.h"
#include "drill.h"
#include "err.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char synopsis[] = "verify [SNAPSHOT... | --all | --drill [GATEWAY...]] [--json]";
static const char help[] =
    "usage: verify [SNAPSHOT... | --all | --drill [GATEWAY...]] [--json]\n\n"
    "Check snapshots against their manifests: every file's size and sha256, the\n"
    "archive's entries and order.  Default: the latest snapshot of every gateway.\n"
    "  -a, --all   every snapshot on every gateway's branch\n"
    "      --drill [GATEWAY...]  restore each gateway's latest snapshot into a\n"
    "              scratch directory and check it file by file; recorded for status\n"
    "      --json  one JSON document with a result per snapshot\n";

struct vstate {
	struct repo *r;
	json_t *arr;
	int bad, good;
};

static void verify_one(struct vstate *v, const char *id)
{
	int rc = snapshot_verify(v->r, id);

	if (rc == MSGW_ECONFIG) /* no key or the wrong one: nothing can be checked */
		log_die_err(rc);
	if (rc) {
		v->bad++;
		log_error("%s", err_last());
	} else {
		v->good++;
	}
	if (v->arr)
		json_array_append_new(v->arr, json_pack("{s:s, s:s, s:s?}", "id", id, "result",
							rc ? "damaged" : "ok", "error",
							rc ? err_last() : NULL));
	else if (!rc)
		printf("ok %.12s\n", id);
}

static int verify_branches(struct vstate *v, bool all)
{
	char **names = NULL, **ids = NULL;
	size_t n = 0, nids = 0, i, j;
	int rc;

	rc = repo_branches(&names, &n, v->r);
	for (i = 0; !rc && i < n; i++) {
		rc = repo_log(&ids, &nids, v->r, names[i], all ? 0 : 1);
		if (rc) { /* a broken history is damage too: report, go on */
			log_error("gateway '%s': %s", names[i], err_last());
			v->bad++;
			rc = 0;
			continue;
		}
		for (j = 0; j < nids; j++)
			verify_one(v, ids[j]);
		repo_names_free(ids, nids);
	}
	repo_names_free(names, n);
	return rc;
}

/* verify --drill [GATEWAY...]: restore drills of the latest snapshots. */
static int run_drills(struct cli_ctx *ctx, int n, char **names, json_t *arr)
{
	char **all = NULL;
	size_t nall = 0, i;
	int rc = 0, bad = 0;

	if (n == 0) {
		rc = repo_branches(&all, &nall, cli_repo(ctx));
		if (rc)
			return cli_fail(ctx, rc);
		names = all;
		n = (int)nall;
	}
	cli_config(ctx);
	for (i = 0; i < (size_t)n; i++) {
		struct drill_result d;

		rc = drill_gateway(&d, cli_repo(ctx), ctx->cfg, names[i]);
		if (rc)
			log_error("%s", err_last()), bad++;
		if (arr)
			json_array_append_new(
			    arr, json_pack("{s:s, s:s, s:s, s:I, s:s?}", "gateway", names[i], "id",
					   d.id, "result", rc ? "failed" : "ok", "files",
					   (json_int_t)d.files, "error", rc ? err_last() : NULL));
		else if (!rc)
			printf("drill ok %s %.12s: %zu entries, %llu bytes restored and checked\n",
			       names[i], d.id, d.files, d.bytes);
	}
	repo_names_free(all, nall);
	if (arr) {
		json_t *doc = json_pack("{s:i, s:o}", "version", 1, "drills", arr);

		cli_print_json(doc);
	}
	return bad ? 1 : 0;
}

int cmd_verify(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
					     {"drill", no_argument, NULL, 'D'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	struct vstate v = {0};
	int c, all = 0, rc = 0, i, drill = 0;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "a", opts, NULL)) != -1) {
		if (c == 'a')
			all = 1;
		else if (c == 'j')
			v.arr = json_array();
		else if (c == 'D')
			drill = 1;
		else
			return cli_usage_error(ctx, synopsis, "bad option");
	}
	if (all && optind < argc)
		return cli_usage_error(ctx, synopsis, "--all takes no SNAPSHOT");
	if (drill)
		return run_drills(ctx, argc - optind, argv + optind, v.arr);
	v.r = cli_repo(ctx);
	for (i = optind; !rc && i < argc; i++) {
		char id[REPO_ID_LEN];

		rc = repo_resolve(id, v.r, argv[i]);
		if (!rc)
			verify_one(&v, id);
	}
	if (!rc && optind == argc)
		rc = verify_branches(&v, all);
	if (rc) {
		json_decref(v.arr);
		return cli_fail(ctx, rc);
	}
	if (v.arr) {
		json_t *doc = json_pack("{s:i, s:i, s:i, s:o}", "version", 1, "ok", v.good,
					"damaged", v.bad, "results", v.arr);

		cli_print_json(doc);
	} else {
		printf("%d verified, %d damaged\n", v.good, v.bad);
	}
	return v.bad ? 1 : 0;
}
