/*
 * agent: the msgw-agent front end.  Each subcommand lives in cmd_<name>.c
 * and is listed in the table in main.c.  To add a command: write
 * cmd_<name>.c with "int cmd_<name>(struct cli_ctx *, int, char **)", print
 * its --help text through cli_want_help(), declare it here, add a table row
 * in main.c, document it in the README and man/msgw-agent.8, and give it an
 * end-to-end test in tests/e2e.
 */
#ifndef MSGW_AGENT_H
#define MSGW_AGENT_H

#include "cli.h"

int cmd_init(struct cli_ctx *ctx, int argc, char **argv);
int cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv);
int cmd_verify(struct cli_ctx *ctx, int argc, char **argv);
int cmd_scan(struct cli_ctx *ctx, int argc, char **argv);
int cmd_run(struct cli_ctx *ctx, int argc, char **argv);
int cmd_status(struct cli_ctx *ctx, int argc, char **argv);
int cmd_trust(struct cli_ctx *ctx, int argc, char **argv);
int cmd_push(struct cli_ctx *ctx, int argc, char **argv);
int cmd_prune(struct cli_ctx *ctx, int argc, char **argv);
int cmd_reencrypt(struct cli_ctx *ctx, int argc, char **argv);

#endif
