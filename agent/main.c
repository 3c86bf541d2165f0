/*
 * msgw-agent: snapshots gateway configurations into the repository.  This
 * file is only the command table; see agent.h for how to add a command.
 */
#include "agent.h"

static const struct cli_cmd commands[] = {
    {"init", cmd_init, "create the snapshot repository"},
    {"snapshot", cmd_snapshot, "snapshot gateways' configuration (unchanged states are skipped)"},
    {"list", cli_cmd_list, "list snapshots"},
    {"show", cli_cmd_show, "show one snapshot's meta data and files"},
    {"verify", cmd_verify, "check snapshots file by file against their manifests"},
    {"scan", cmd_scan, "show how a gateway's files are classified"},
    {"trust", cmd_trust, "record a gateway's or remote's SSH host key"},
    {"push", cmd_push, "push the repository to remotes"},
    {"run", cmd_run, "snapshot on a schedule, push, record results"},
    {"prune", cmd_prune, "drop old snapshots by the retention policy"},
    {"reencrypt", cmd_reencrypt, "move a plain repository's history into an encrypted one"},
    {"status", cmd_status, "monitoring summary (plugin exit codes, JSON, Prometheus)"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return cli_main("msgw-agent", commands, argc, argv,
			"Snapshot MailStore Gateway configuration (never its mailbox stores)\n"
			"into a versioned, verifiable git repository.");
}
