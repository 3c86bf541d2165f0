/*
 * restore: the msgw-restore front end.  Each subcommand lives in
 * cmd_<name>.c and is listed in the table in main.c (see agent/agent.h for
 * the steps to add one).  run.c holds what apply, rollback and follow share:
 * opening a target, printing a plan, carrying out an apply.
 */
#ifndef MSGW_RESTORE_H
#define MSGW_RESTORE_H

#include "apply.h"
#include "cli.h"
#include "plan.h"

#include <stdbool.h>

/* A restore target opened for planning and applying. */
struct target {
	const struct config_gateway *gw;
	struct fsys *fs;
	struct service_host *host;
	struct lock *lock; /* the target lock, when taken */
};

/* Open the gateway named --to (exit 2 when unknown). */
int target_open(struct cli_ctx *ctx, struct target *t, const char *name, bool lock);
void target_close(struct target *t);
void target_env(struct cli_ctx *ctx, struct target *t, struct apply_env *env);

struct run_opts {
	const char *only;
	const char *force;
	bool yes, dry_run, json;
	int confirm_within;
};

/* Print a plan (human or JSON) to stdout. */
void plan_print(const struct plan *p, const struct target *t, bool json);

/* The whole flow of the apply, rollback and recover commands (not
 * apply_run, the library's carrying out of a plan): resolve, plan, check
 * findings, ask, apply (apply_run), report; returns the exit status. */
int restore_apply_flow(struct cli_ctx *ctx, const char *snapshot, const char *to,
		       const struct run_opts *o);

int cmd_plan(struct cli_ctx *ctx, int argc, char **argv);
int cmd_apply(struct cli_ctx *ctx, int argc, char **argv);
int cmd_confirm(struct cli_ctx *ctx, int argc, char **argv);
int cmd_rollback(struct cli_ctx *ctx, int argc, char **argv);
int cmd_recover(struct cli_ctx *ctx, int argc, char **argv);
int cmd_extract(struct cli_ctx *ctx, int argc, char **argv);
int cmd_diff(struct cli_ctx *ctx, int argc, char **argv);
int cmd_follow(struct cli_ctx *ctx, int argc, char **argv);
int cmd_fetch(struct cli_ctx *ctx, int argc, char **argv);

#endif
