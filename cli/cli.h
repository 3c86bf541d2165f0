/*
 * cli: front-end helpers shared by msgw-agent and msgw-restore (as
 * libarchive's libarchive_fe): the command table and dispatch, loading the
 * configuration and repository with the right exit codes, JSON output, and
 * the commands both tools offer (list, show).  Only front ends call these;
 * they print to stdout and may exit.
 */
#ifndef MSGW_CLI_H
#define MSGW_CLI_H

#include "config.h"
#include "lock.h"
#include "repo.h"

#include <jansson.h>
#include <stdbool.h>

struct cli_ctx {
	const char *prog;	   /* "msgw-agent" */
	const char *config_file;   /* -c FILE, or NULL */
	struct config *cfg;	   /* loaded on demand by cli_config() */
	struct repo *repo;	   /* opened on demand by cli_repo() */
	struct lock *lock;	   /* taken by cli_lock_repo() */
	const char *repo_override; /* --repo PATH (restore), or NULL */
};

struct cli_cmd {
	const char *name;
	int (*fn)(struct cli_ctx *ctx, int argc, char **argv);
	const char *summary; /* one line for the command list */
};

/* Parse global options, find the command in table (NULL-terminated by a
 * zero entry) and run it; returns the exit status.  usage is the tool's
 * synopsis printed by --help and on errors. */
int cli_main(const char *prog, const struct cli_cmd *table, int argc, char **argv,
	     const char *about);

/* Load the configuration (exit 2 on error); borrowed from ctx. */
struct config *cli_config(struct cli_ctx *ctx);
/* Open the repository (exit 1/2 on error). */
struct repo *cli_repo(struct cli_ctx *ctx);
/* Take the repository lock (exit 6 when held). */
void cli_lock_repo(struct cli_ctx *ctx);
/* Release everything ctx holds. */
void cli_ctx_release(struct cli_ctx *ctx);

/* Print "prog: message" to stderr; return err_exit_code(code). */
int cli_fail(struct cli_ctx *ctx, int code);
/* Usage error for a command: print the synopsis to stderr and return 2. */
int cli_usage_error(struct cli_ctx *ctx, const char *synopsis, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Commands shared by both tools. */
int cli_cmd_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_show(struct cli_ctx *ctx, int argc, char **argv);
/* A command that is not built yet: says so and returns 1. */
int cli_cmd_unimplemented(struct cli_ctx *ctx, int argc, char **argv);

/* Print a JSON document to stdout (indented, keys in insertion order, one
 * final newline) and release it (the call takes over doc). */
void cli_print_json(json_t *doc);

/* Human-readable size: "1.2 MiB". */
void cli_human_size(char *buf, size_t len, unsigned long long bytes);

/* Whether a command's --help was asked for; prints help to stdout. */
bool cli_want_help(int argc, char **argv, const char *help);

#endif
