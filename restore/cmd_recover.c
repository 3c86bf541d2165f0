/*
 * confirm, rollback and recover: the commands that close a restore.
 */
#include "err.h"
#include "log.h"
#include "restore.h"
#include "snapshot.h"
#include "util.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char confirm_help[] =
    "usage: confirm [GATEWAY]\n\n"
    "Keep a restore made with --confirm-within: its backups are removed and a\n"
    "'restored' snapshot is recorded.  GATEWAY may be left out when only one\n"
    "restore waits for confirmation.\n";

static const char rollback_help[] =
    "usage: rollback --to GATEWAY [--yes] [--dry-run] [--force=CODES]\n\n"
    "Apply the latest pre-restore snapshot of GATEWAY: undo the last restore\n"
    "as a new transaction (with its own pre-restore snapshot).\n";

static const char recover_help[] =
    "usage: recover [GATEWAY] [--timer]\n\n"
    "Finish or undo a restore that was interrupted (crash, power cut, lost\n"
    "connection), from its journal: an unfinished swap is undone and the\n"
    "service started on the previous configuration; a restore that was being\n"
    "committed is committed; an open confirm window whose time ran out is\n"
    "rolled back.  Without GATEWAY, every gateway with a journal.  Run it at\n"
    "boot (msgw-restore-recover.service) so a confirm window survives reboots.\n"
    "      --timer   wait for the confirm deadline first (used by apply)\n";

/* Lock, open and run apply_recover for one gateway. */
static int recover_one(struct cli_ctx *ctx, const char *name, enum recover_mode mode)
{
	struct apply_env env;
	struct target t;
	const char *what = "";
	int rc;

	cli_lock_repo(ctx);
	rc = target_open(ctx, &t, name, true);
	if (rc)
		return cli_fail(ctx, rc);
	target_env(ctx, &t, &env);
	rc = apply_recover(&env, mode, &what);
	target_close(&t);
	if (rc)
		return cli_fail(ctx, rc);
	printf("%s: %s\n", name, what);
	return 0;
}

static const char *only_pending(struct cli_ctx *ctx, const char *want_phase)
{
	struct config *cfg = cli_config(ctx);
	const char *found = NULL;
	char phase[32];
	int64_t deadline;
	size_t i, n = 0;

	for (i = 0; i < cfg->ngateways; i++)
		if (apply_pending(cfg, cfg->gateways[i].name, phase, sizeof(phase), &deadline) &&
		    (!want_phase || strcmp(phase, want_phase) == 0))
			found = cfg->gateways[i].name, n++;
	return n == 1 ? found : NULL;
}

int cmd_confirm(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *name;

	if (cli_want_help(argc, argv, confirm_help))
		return 0;
	if (argc > 2)
		return cli_usage_error(ctx, "confirm [GATEWAY]", "too many arguments");
	name = argc == 2 ? argv[1] : only_pending(ctx, "awaiting-confirm");
	if (!name) {
		log_error("name the gateway: no single restore waits for confirmation");
		return 1;
	}
	return recover_one(ctx, name, RECOVER_CONFIRM);
}

/*
 * The confirm timer.  When the window closes while another run holds the
 * repository or the target lock (a scheduled snapshot, say), the timer
 * must not give up: the unconfirmed restore would stay for good.  It waits
 * for both locks instead, letting go of the repository lock while the
 * target's is busy so the other run can finish.
 */
static int wait_deadline(struct cli_ctx *ctx, const char *name)
{
	char phase[32];
	int64_t deadline = 0;
	int status;

	while (apply_pending(cli_config(ctx), name, phase, sizeof(phase), &deadline) &&
	       strcmp(phase, "awaiting-confirm") == 0 && deadline > (int64_t)time(NULL))
		sleep(1);
	for (;;) {
		int rc = ctx->lock ? 0 : repo_lock(&ctx->lock, cli_repo(ctx));

		if (rc && rc != MSGW_ELOCKED)
			return cli_fail(ctx, rc);
		if (!rc) {
			status = recover_one(ctx, name, RECOVER_EXPIRED);
			if (status != err_exit_code(MSGW_ELOCKED))
				return status;
			lock_release(ctx->lock);
			ctx->lock = NULL;
		}
		sleep(1);
	}
}

int cmd_recover(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"timer", no_argument, NULL, 'T'}, {NULL, 0, NULL, 0}};
	struct config *cfg;
	int c, timer = 0, status = 0;
	size_t i;

	if (cli_want_help(argc, argv, recover_help))
		return 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'T')
			return cli_usage_error(ctx, "recover [GATEWAY] [--timer]", "bad option");
		timer = 1;
	}
	if (argc - optind > 1 || (timer && argc - optind != 1))
		return cli_usage_error(ctx, "recover [GATEWAY] [--timer]", "bad arguments");
	if (timer)
		return wait_deadline(ctx, argv[optind]);
	if (optind < argc)
		return recover_one(ctx, argv[optind], RECOVER_ANY);
	cfg = cli_config(ctx);
	for (i = 0; i < cfg->ngateways; i++) {
		char phase[32];
		int64_t deadline;

		if (apply_pending(cfg, cfg->gateways[i].name, phase, sizeof(phase), &deadline) ||
		    apply_has_leftovers(cfg, cfg->gateways[i].name)) {
			int s = recover_one(ctx, cfg->gateways[i].name, RECOVER_ANY);

			status = s > status ? s : status;
		}
	}
	if (status == 0)
		printf("nothing else to recover\n");
	return status;
}

/* The newest pre-restore snapshot on the gateway's branch. */
static int latest_pre_restore(char out[REPO_ID_LEN], struct repo *r, const char *gw)
{
	char **ids = NULL;
	size_t n = 0, i;
	int rc = repo_log(&ids, &n, r, gw, 0);

	for (i = 0; !rc && i < n; i++) {
		struct snapshot s;
		const char *kind;

		rc = snapshot_load_meta(&s, r, ids[i]);
		if (rc)
			break;
		kind = snapshot_meta_get(&s.meta, "kind");
		if (kind && strcmp(kind, "pre-restore") == 0) {
			memcpy(out, ids[i], REPO_ID_LEN);
			snapshot_release(&s);
			break;
		}
		snapshot_release(&s);
	}
	if (!rc && i == n)
		rc = err_set(MSGW_ENOTFOUND, "gateway '%s' has no pre-restore snapshot", gw);
	repo_names_free(ids, n);
	return rc;
}

int cmd_rollback(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"dry-run", no_argument, NULL, 'n'},
					     {"force", required_argument, NULL, 'F'},
					     {"to", required_argument, NULL, 't'},
					     {"yes", no_argument, NULL, 'y'},
					     {NULL, 0, NULL, 0}};
	static const char syn[] = "rollback --to GATEWAY [--yes] [--dry-run] [--force=CODES]";
	struct run_opts o = {0};
	const char *to = NULL;
	char id[REPO_ID_LEN];
	int c, rc;

	if (cli_want_help(argc, argv, rollback_help))
		return 0;
	while ((c = getopt_long(argc, argv, "nt:y", opts, NULL)) != -1) {
		if (c == 'n')
			o.dry_run = true;
		else if (c == 'F')
			o.force = optarg;
		else if (c == 't')
			to = optarg;
		else if (c == 'y')
			o.yes = true;
		else
			return cli_usage_error(ctx, syn, "bad option");
	}
	if (!to || optind != argc)
		return cli_usage_error(ctx, syn, "rollback needs --to GATEWAY");
	if (!config_gateway_find(cli_config(ctx), to))
		return cli_fail(ctx, MSGW_ECONFIG);
	rc = latest_pre_restore(id, cli_repo(ctx), to);
	if (rc)
		return cli_fail(ctx, rc);
	printf("rolling back '%s' to pre-restore snapshot %.12s\n", to, id);
	return restore_apply_flow(ctx, id, to, &o);
}
