/*
 * msgw-restore: shows, diffs and verifies snapshots and applies one onto a
 * gateway as a transaction around its service.  This file is only the
 * command table.
 */
#include "restore.h"

static const struct cli_cmd commands[] = {
    {"list", cli_cmd_list, "list snapshots"},
    {"show", cli_cmd_show, "show one snapshot's meta data and files"},
    {"diff", cmd_diff, "compare two snapshots, or one with live files"},
    {"plan", cmd_plan, "what apply would do, with the safety analysis"},
    {"apply", cmd_apply, "restore a snapshot onto a gateway"},
    {"confirm", cmd_confirm, "keep an apply made with --confirm-within"},
    {"rollback", cmd_rollback, "apply the latest pre-restore snapshot"},
    {"recover", cmd_recover, "finish or undo an interrupted apply"},
    {"extract", cmd_extract, "write a snapshot into an empty directory"},
    {"fetch", cmd_fetch, "fetch snapshots from remotes"},
    {"follow", cmd_follow, "keep a standby in step with the gateway it follows"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return cli_main(
	    "msgw-restore", commands, argc, argv,
	    "Show, compare and verify configuration snapshots, and restore one onto\n"
	    "a MailStore Gateway safely: never orphaning or undecryptably re-keying mail.");
}
