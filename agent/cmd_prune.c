/*
 * prune: drop old snapshots by the retention section.  Every branch is
 * planned first (prune_plan_branch: nothing is written if any plan fails),
 * then, unless --dry-run, rewritten without its dropped snapshots
 * (repo_rewrite_branch), the repository repacked so their objects are gone
 * (repo_repack), and the rewritten branches force-pushed to the remotes
 * that have prune-remotes = true.  All under the repository lock; a dry
 * run takes no lock and changes nothing.  Human and JSON output are built
 * from the same plans and results.
 */
#include "agent.h"
#include "apply.h"
#include "err.h"
#include "log.h"
#include "prune.h"
#include "repo.h"
#include "util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char synopsis[] = "prune [--dry-run] [--json]";
static const char help[] =
    "usage: prune [--dry-run] [--json]\n\n"
    "Drop old snapshots from every gateway's branch by the retention section of\n"
    "the configuration.  A snapshot is kept when any rule keeps it: the branch\n"
    "tip and tagged snapshots always; keep-last N newest; keep-hourly, -daily,\n"
    "-weekly and -monthly N: the newest snapshot of each of the last N hours,\n"
    "days, ISO weeks or months (UTC) that have snapshots; pre-restore snapshots\n"
    "younger than keep-pre-restore-days.  Times are the snapshots' created\n"
    "times.  With no keep-* rule set, prune refuses (exit 2); while a restore is\n"
    "unfinished or waits for confirmation, it refuses too (exit 1).\n\n"
    "Each branch is rewritten without the dropped snapshots (the others keep\n"
    "their trees, dates and messages but get new ids; tags move with them),\n"
    "then the repository is repacked so the dropped archives are gone.\n"
    "Remotes with prune-remotes = true get the rewritten branches by force-push;\n"
    "other remotes keep their copies and will refuse later pushes of the\n"
    "rewritten branches.\n\n"
    "  -n, --dry-run  show what would be kept and dropped; change nothing\n"
    "      --json     one JSON document with the decision for every snapshot\n";

struct prune_run {
	bool dry_run;
	struct prune_branch *plans;
	struct repo_rewrite_result *res;
	size_t n;
	bool repacked;
	struct repo_repack_result repack;
	json_t *remotes; /* JSON array of push results, or NULL */
	size_t pushes_failed;
};

static const char *new_id_of(const struct repo_rewrite_result *res, const char *id)
{
	size_t i;

	for (i = 0; res && i < res->nrewritten; i++)
		if (strcmp(res->old_ids[i], id) == 0)
			return res->new_ids[i];
	return NULL;
}

static int plan_all(struct prune_run *pr, struct repo *r, const struct config *cfg)
{
	char **names = NULL;
	size_t n = 0, i;
	int64_t now = (int64_t)time(NULL);
	int rc;

	rc = repo_branches(&names, &n, r);
	if (rc)
		return rc;
	pr->plans = xcalloc(n ? n : 1, sizeof(*pr->plans));
	pr->res = xcalloc(n ? n : 1, sizeof(*pr->res));
	for (i = 0; !rc && i < n; i++) {
		rc = prune_plan_branch(&pr->plans[i], r, names[i], &cfg->retention, now);
		pr->n = i + 1;
	}
	repo_names_free(names, n);
	return rc;
}

/*
 * A restore journal names snapshots by id (the one restored, its
 * pre-restore snapshot), and rewriting changes those ids: refuse while any
 * restore is unfinished or waits for confirmation.
 */
static int check_no_restore(const struct config *cfg, bool dry_run)
{
	char phase[32];
	int64_t deadline;
	size_t i;

	for (i = 0; i < cfg->ngateways; i++) {
		const char *gw = cfg->gateways[i].name;

		if (!apply_pending(cfg, gw, phase, sizeof(phase), &deadline))
			continue;
		if (dry_run) {
			log_warn("gateway '%s' has an unfinished restore (%s): prune would refuse "
				 "to run now",
				 gw, phase);
			continue;
		}
		return err_set(MSGW_ERR,
			       "gateway '%s' has an unfinished restore (%s), whose journal names "
			       "snapshots by id: finish it first ('msgw-restore confirm %s' or "
			       "'msgw-restore recover %s'); nothing was pruned",
			       gw, phase, gw, gw);
	}
	return 0;
}

static int rewrite_all(struct prune_run *pr, struct repo *r, size_t *dropped_out)
{
	size_t i, j, k;
	int rc = 0;

	*dropped_out = 0;
	for (i = 0; !rc && i < pr->n; i++) {
		const struct prune_branch *b = &pr->plans[i];
		char **drop;

		if (!b->dropped)
			continue;
		drop = xcalloc(b->dropped, sizeof(*drop));
		for (j = 0, k = 0; j < b->n; j++)
			if (!b->items[j].keep)
				drop[k++] = (char *)b->items[j].id;
		rc = repo_rewrite_branch(&pr->res[i], r, b->name, drop, k);
		if (!rc) {
			*dropped_out += k;
			log_info("%s: dropped %zu snapshots, %zu rewritten, %zu tags moved",
				 b->name, k, pr->res[i].nrewritten, pr->res[i].ntags_moved);
		}
		free(drop);
	}
	return rc;
}

/* Force-push to the remotes that allow it; warn about the others. */
static void push_remotes(struct prune_run *pr, struct repo *r, const struct config *cfg)
{
	size_t i;

	pr->remotes = json_array();
	for (i = 0; i < cfg->nremotes; i++) {
		const struct config_remote *rem = &cfg->remotes[i];
		struct repo_push_result res;
		int rc;

		if (!rem->prune_remotes) {
			log_warn(
			    "remote '%s': prune-remotes is false: it keeps the dropped snapshots, "
			    "and pushes of the rewritten branches to it will be refused",
			    rem->name);
			json_array_append_new(
			    pr->remotes,
			    json_pack("{s:s, s:s}", "remote", rem->name, "result", "skipped"));
			continue;
		}
		rc = repo_push_recorded(&res, r, rem, cfg->state_dir);
		if (rc) {
			pr->pushes_failed++;
			log_error("%s (the local prune is complete; 'msgw-agent push %s' retries)",
				  err_last(), rem->name);
		}
		json_array_append_new(pr->remotes,
				      json_pack("{s:s, s:s, s:s?}", "remote", rem->name, "result",
						rc ? "failed" : "pushed", "error",
						rc ? err_last() : NULL));
	}
}

static json_t *branch_json(const struct prune_branch *b, const struct repo_rewrite_result *res)
{
	json_t *arr = json_array();
	char when[32];
	size_t i;

	for (i = 0; i < b->n; i++) {
		const struct prune_item *it = &b->items[i];
		json_t *reasons = json_array();
		size_t k;

		for (k = 0; k < 32; k++)
			if (it->reasons & (1u << k))
				json_array_append_new(reasons,
						      json_string(prune_reason_name(1u << k)));
		time_rfc3339(when, sizeof(when), it->time);
		json_array_append_new(
		    arr, json_pack("{s:s, s:s?, s:s, s:s, s:s, s:o}", "id", it->id, "new_id",
				   new_id_of(res, it->id), "created", when, "kind", it->kind,
				   "action", it->keep ? "keep" : "drop", "reasons", reasons));
	}
	return json_pack("{s:s, s:i, s:i, s:i, s:s, s:s, s:o}", "gateway", b->name, "snapshots",
			 (json_int_t)b->n, "kept", (json_int_t)b->kept, "dropped",
			 (json_int_t)b->dropped, "old_tip", b->tip, "new_tip",
			 res && res->new_tip[0] ? res->new_tip : b->tip, "entries", arr);
}

static void print_json(const struct prune_run *pr)
{
	json_t *gws = json_array(), *doc;
	size_t i;

	for (i = 0; i < pr->n; i++)
		json_array_append_new(gws,
				      branch_json(&pr->plans[i], pr->dry_run ? NULL : &pr->res[i]));
	doc = json_pack("{s:i, s:b, s:o}", "version", 1, "dry_run", pr->dry_run, "gateways", gws);
	if (pr->repacked)
		json_object_set_new(
		    doc, "repack",
		    json_pack("{s:i, s:i, s:i, s:i}", "objects", (json_int_t)pr->repack.objects,
			      "loose_removed", (json_int_t)pr->repack.loose_removed,
			      "packs_removed", (json_int_t)pr->repack.packs_removed,
			      "reflog_dropped", (json_int_t)pr->repack.reflog_dropped));
	json_object_set_new(doc, "remotes", pr->remotes ? json_incref(pr->remotes) : json_array());
	cli_print_json(doc);
}

static void print_branch(const struct prune_branch *b, const struct repo_rewrite_result *res)
{
	char when[32], why[128];
	size_t i;

	printf("%s: %zu snapshot%s, keep %zu, drop %zu\n", b->name, b->n, b->n == 1 ? "" : "s",
	       b->kept, b->dropped);
	for (i = 0; i < b->n; i++) {
		const struct prune_item *it = &b->items[i];
		const char *now_id = new_id_of(res, it->id);

		prune_reasons_format(why, sizeof(why), it->reasons);
		time_rfc3339(when, sizeof(when), it->time);
		printf("  %s %.12s  %s  %-11s  %s", it->keep ? "keep" : "drop", it->id, when,
		       it->kind[0] ? it->kind : "-", it->keep ? why : "no rule keeps it");
		if (now_id)
			printf("  (now %.12s)", now_id);
		putchar('\n');
	}
}

static void print_human(const struct prune_run *pr)
{
	size_t i;

	for (i = 0; i < pr->n; i++)
		print_branch(&pr->plans[i], pr->dry_run ? NULL : &pr->res[i]);
	if (pr->dry_run)
		printf("dry run: nothing changed\n");
	else if (pr->repacked)
		printf(
		    "repacked: %zu objects; removed %zu loose objects, %zu old packs, %zu reflog "
		    "entries\n",
		    pr->repack.objects, pr->repack.loose_removed, pr->repack.packs_removed,
		    pr->repack.reflog_dropped);
	else
		printf("nothing to drop\n");
}

static void run_release(struct prune_run *pr)
{
	size_t i;

	for (i = 0; i < pr->n; i++) {
		prune_branch_release(&pr->plans[i]);
		repo_rewrite_result_release(&pr->res[i]);
	}
	free(pr->plans);
	free(pr->res);
	json_decref(pr->remotes);
}

int cmd_prune(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"dry-run", no_argument, NULL, 'n'},
					     {"json", no_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	struct prune_run pr = {0};
	struct config *cfg;
	struct repo *r;
	size_t dropped = 0;
	int64_t started;
	int c, json = 0, rc = 0, status = 0;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "n", opts, NULL)) != -1) {
		if (c == 'n')
			pr.dry_run = true;
		else if (c == 'j')
			json = 1;
		else
			return cli_usage_error(ctx, synopsis, "bad option");
	}
	if (optind < argc)
		return cli_usage_error(ctx, synopsis, "unexpected argument '%s'", argv[optind]);
	cfg = cli_config(ctx);
	if (!prune_policy_set(&cfg->retention))
		return err_set(
			   MSGW_ECONFIG,
			   "%s: retention: no keep-last, keep-hourly, keep-daily, keep-weekly or "
			   "keep-monthly is set; refusing to prune (every snapshot is kept)",
			   cfg->path),
		       cli_fail(ctx, MSGW_ECONFIG);
	r = cli_repo(ctx);
	/* the run's start: an object newer than this survives the repack */
	started = (int64_t)time(NULL);
	if (!pr.dry_run)
		cli_lock_repo(ctx);
	rc = check_no_restore(cfg, pr.dry_run);
	if (!rc)
		rc = plan_all(&pr, r, cfg);
	if (!rc && !pr.dry_run)
		rc = rewrite_all(&pr, r, &dropped);
	if (!rc && dropped) {
		rc = repo_repack(&pr.repack, r, started);
		pr.repacked = rc == 0;
	}
	if (rc) {
		status = cli_fail(ctx, rc);
		goto cleanup;
	}
	if (dropped && cfg->nremotes)
		push_remotes(&pr, r, cfg);
	if (json)
		print_json(&pr);
	else
		print_human(&pr);
	status = pr.pushes_failed ? 1 : 0;
cleanup:
	run_release(&pr);
	return status;
}
