/*
 * trust: record the SSH host key of a gateway's or remote's host in its
 * configured known-hosts file, after showing the key's type and SHA256
 * fingerprint and getting an explicit yes (typed on a terminal, or
 * --yes).  A key already recorded is left alone; a DIFFERENT key recorded
 * for the host is never replaced: the admin removes the old line by hand.
 */
#include "agent.h"
#include "err.h"
#include "location.h"
#include "log.h"
#include "ssh.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char synopsis[] = "trust GATEWAY|REMOTE [--yes]";

static const char help[] =
    "usage: trust GATEWAY|REMOTE [--yes]\n\n"
    "Connect to the SSH host of a gateway's location or a remote's url, show\n"
    "the host key's type and SHA256 fingerprint, and add it to the configured\n"
    "known-hosts file (created with mode 0600) once you confirm by typing\n"
    "'yes'.  Compare the fingerprint with the one the host shows\n"
    "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub, or on Windows\n"
    "C:\\ProgramData\\ssh\\ssh_host_ed25519_key.pub) before you confirm.\n"
    "  -y, --yes   confirm without asking (for scripts; check the fingerprint\n"
    "              some other way)\n\n"
    "Without a terminal and without --yes nothing is recorded (exit 2).  A key\n"
    "already recorded: exit 0.  A different key recorded for the host: exit 1,\n"
    "nothing changed; remove the old line by hand if the new key is right.\n";

/* Where to connect: a gateway's or a remote's settings. */
struct target {
	const char *kind; /* "gateway" or "remote" */
	const char *name, *url, *known_hosts;
	int timeout;
};

static int find_target(struct target *t, const struct config *cfg, const char *name)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < cfg->ngateways; i++)
		if (strcmp(cfg->gateways[i].name, name) == 0) {
			t->kind = "gateway";
			t->name = name;
			t->url = cfg->gateways[i].location;
			t->known_hosts = cfg->gateways[i].known_hosts;
			t->timeout = cfg->gateways[i].timeout;
			return 0;
		}
	for (i = 0; i < cfg->nremotes; i++)
		if (strcmp(cfg->remotes[i].name, name) == 0) {
			t->kind = "remote";
			t->name = name;
			t->url = cfg->remotes[i].url;
			t->known_hosts = cfg->remotes[i].known_hosts;
			return 0;
		}
	return err_set(MSGW_ECONFIG, "%s: no gateway or remote named '%s'", cfg->path, name);
}

/* Ask on the terminal; true only for "yes". */
static bool confirm(const char *known_hosts)
{
	char answer[16];

	fprintf(stderr, "Add this key to '%s'? Type 'yes' to confirm: ", known_hosts);
	fflush(stderr);
	if (!fgets(answer, sizeof(answer), stdin))
		return false;
	answer[strcspn(answer, "\r\n")] = '\0';
	return strcmp(answer, "yes") == 0;
}

static int record(struct cli_ctx *ctx, const struct target *t, const struct ssh_hostkey *key,
		  bool yes)
{
	int rc;

	if (!yes) {
		if (!isatty(STDIN_FILENO)) {
			log_error(
			    "not recorded: no terminal to confirm on; check the fingerprint and "
			    "run again with --yes");
			return 2;
		}
		if (!confirm(t->known_hosts)) {
			log_error("not recorded: not confirmed");
			return 1;
		}
	}
	rc = ssh_known_hosts_append(t->known_hosts, key->line);
	if (rc)
		return cli_fail(ctx, rc);
	printf("recorded in '%s':\n%s\n", t->known_hosts, key->line);
	return 0;
}

static int parse(struct cli_ctx *ctx, bool *yes, int argc, char **argv)
{
	static const struct option opts[] = {{"yes", no_argument, NULL, 'y'}, {NULL, 0, NULL, 0}};
	int c;

	*yes = false;
	while ((c = getopt_long(argc, argv, "y", opts, NULL)) != -1) {
		if (c != 'y')
			return cli_usage_error(ctx, synopsis, "bad option");
		*yes = true;
	}
	if (argc - optind != 1)
		return cli_usage_error(ctx, synopsis, "trust needs one gateway or remote name");
	return 0;
}

int cmd_trust(struct cli_ctx *ctx, int argc, char **argv)
{
	struct ssh_hostkey key = {0};
	enum ssh_hostkey_status st;
	struct location loc = {0};
	struct target t;
	char *who = NULL;
	bool yes;
	int rc, status = 0;

	if (cli_want_help(argc, argv, help))
		return 0;
	if (parse(ctx, &yes, argc, argv))
		return 2;
	rc = find_target(&t, cli_config(ctx), argv[optind]);
	if (rc)
		return cli_fail(ctx, rc);
	if (!location_is_ssh(t.url)) {
		log_error("%s '%s' is not reached over ssh ('%s'): there is no host key to trust",
			  t.kind, t.name, t.url);
		return 2;
	}
	if (!t.known_hosts) {
		log_error("%s '%s' has no known-hosts file configured in '%s'", t.kind, t.name,
			  ctx->cfg->path);
		return 2;
	}
	rc = location_parse(&loc, t.url);
	if (!rc)
		rc = ssh_hostkey_fetch(&key, &loc, t.known_hosts, t.timeout);
	if (!rc)
		rc = ssh_known_hosts_lookup(&st, t.known_hosts, &key);
	if (rc) {
		status = cli_fail(ctx, rc);
		goto cleanup;
	}
	who = location_name(&loc);
	printf("host key of '%s' (%s '%s'):\n  type:        %s\n  fingerprint: %s\n", who, t.kind,
	       t.name, key.type, key.fingerprint);
	fflush(stdout);
	switch (st) {
	case SSH_HOSTKEY_KNOWN:
		printf("already recorded in '%s'\n", t.known_hosts);
		break;
	case SSH_HOSTKEY_CHANGED:
		log_error(
		    "REFUSED: '%s' records a DIFFERENT %s key for this host: the host key "
		    "has changed, or someone is impersonating the host.  Nothing was "
		    "changed.  If the new key is right, remove the old line from '%s' by hand "
		    "and run trust again",
		    t.known_hosts, key.type, t.known_hosts);
		status = 1;
		break;
	case SSH_HOSTKEY_UNKNOWN:
		status = record(ctx, &t, &key, yes);
		break;
	}
cleanup:
	free(who);
	ssh_hostkey_release(&key);
	location_release(&loc);
	return status;
}
