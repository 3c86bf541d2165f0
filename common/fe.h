/*
 * fe: front-end helpers shared by msgw-agent and msgw-restore (as
 * libarchive's libarchive_fe): the command table and dispatch, loading the
 * configuration and repository with the right exit codes, JSON output, and
 * the commands both tools offer (list, show).  Only front ends call these;
 * they print to stdout and may exit.
 */
#ifndef MSGW_FE_H
#define MSGW_FE_H

#include "config.h"
#include "lock.h"
#include "repo.h"

#include <jansson.h>
#include <stdbool.h>

struct fe_ctx {
	const char *prog;	   /* "msgw-agent" */
	const char *config_file;   /* -c FILE, or NULL */
	struct config *cfg;	   /* loaded on demand by fe_config() */
	struct repo *repo;	   /* opened on demand by fe_repo() */
	struct lock *lock;	   /* taken by fe_lock_repo() */
	const char *repo_override; /* --repo PATH (restore), or NULL */
};

struct fe_cmd {
	const char *name;
	int (*fn)(struct fe_ctx *ctx, int argc, char **argv);
	const char *summary; /* one line for the command list */
};

/* Parse global options, find the command in table (NULL-terminated by a
 * zero entry) and run it; returns the exit status.  usage is the tool's
 * synopsis printed by --help and on errors. */
int fe_main(const char *prog, const struct fe_cmd *table, int argc, char **argv, const char *about);

/* Load the configuration (exit 2 on error); borrowed from ctx. */
struct config *fe_config(struct fe_ctx *ctx);
/* Open the repository (exit 1/2 on error). */
struct repo *fe_repo(struct fe_ctx *ctx);
/* Take the repository lock (exit 6 when held). */
void fe_lock_repo(struct fe_ctx *ctx);
/* Release everything ctx holds. */
void fe_ctx_release(struct fe_ctx *ctx);

/* Print "prog: message" to stderr; return err_exit_code(code). */
int fe_fail(struct fe_ctx *ctx, int code);
/* Usage error for a command: print the synopsis to stderr and return 2. */
int fe_usage_error(struct fe_ctx *ctx, const char *synopsis, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Commands shared by both tools. */
int fe_cmd_list(struct fe_ctx *ctx, int argc, char **argv);
int fe_cmd_show(struct fe_ctx *ctx, int argc, char **argv);
/* A command that is not built yet: says so and returns 1. */
int fe_cmd_unimplemented(struct fe_ctx *ctx, int argc, char **argv);

/* Print a JSON document to stdout (indented, keys in insertion order, one
 * final newline) and release it (the call takes over doc). */
void fe_print_json(json_t *doc);

/* Human-readable size: "1.2 MiB". */
void fe_human_size(char *buf, size_t len, unsigned long long bytes);

/* Whether a command's --help was asked for; prints help to stdout. */
bool fe_want_help(int argc, char **argv, const char *help);

#endif
