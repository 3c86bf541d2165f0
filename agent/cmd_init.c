/*
 * init: create the bare repository (mode 0700) and the state directory;
 * running it again changes nothing.  With encryption = "keyfile:PATH" in
 * the configuration the repository is recorded as encrypted with that key;
 * --encrypt first creates the key file (never over an existing one).
 */
#include "agent.h"
#include "err.h"
#include "log.h"
#include "seal.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "usage: init [--encrypt]\n\n"
    "Create the repository named by 'repository' (a bare git repository,\n"
    "mode 0700) and the state directory.  Idempotent.  With encryption =\n"
    "\"keyfile:PATH\" in the configuration the repository is encrypted with that key.\n"
    "      --encrypt  create that key file first (random 256-bit key, mode 0600;\n"
    "                 an existing file is never overwritten)\n";

/* The key id r records in id ("" for none); refused when r is plain and
 * holds snapshots (they would stay plain beside sealed ones). */
static int recorded_key(char id[SEAL_ID_LEN], struct repo *r, const char *path)
{
	char **names = NULL;
	size_t n = 0;
	int rc = repo_encryption(id, r);

	if (!rc && !*id && (rc = repo_branches(&names, &n, r)) == 0 && n)
		rc = err_set(MSGW_ECONFIG,
			     "repository '%s' is plain and holds snapshots; move them into a new "
			     "encrypted repository with 'msgw-agent reencrypt'",
			     path);
	repo_names_free(names, n);
	return rc;
}

/* Before --encrypt makes a key: the repository at path must be able to
 * take it, and a fresh random key can match no recorded one, so nothing
 * is created for a repository that would refuse it. */
static int check_before_create(const char *path, const char *key_file)
{
	char id[SEAL_ID_LEN];
	struct repo *r = NULL;
	struct stat st;
	int rc;

	if (lstat(key_file, &st) == 0)
		return 0; /* seal_key_create refuses it, naming the file */
	rc = repo_open(&r, path);
	if (!rc)
		rc = recorded_key(id, r, path);
	if (!rc && *id)
		rc = err_set(MSGW_ECONFIG,
			     "repository '%s' is encrypted with key %s already; a new key could "
			     "not open it: set encryption = \"keyfile:PATH\" to that key's file "
			     "and run init without --encrypt",
			     path, id);
	repo_free(r);
	return rc;
}

/* Record key in the repository at path: a new or empty one only. */
static int record_key(const char *path, struct seal_key *key)
{
	char id[SEAL_ID_LEN];
	struct repo *r = NULL;
	int rc;

	rc = repo_open(&r, path);
	if (!rc)
		rc = recorded_key(id, r, path);
	if (!rc && *id && strcmp(id, seal_key_id(key)) != 0)
		rc = err_set(MSGW_ECONFIG,
			     "repository '%s' is encrypted with key %s, not with key %s of '%s'",
			     path, id, seal_key_id(key), seal_key_path(key));
	if (!rc && !*id)
		rc = repo_set_encryption(r, seal_key_id(key));
	if (!rc)
		printf("repository encrypted with key %s\n", seal_key_id(key));
	seal_key_free(key);
	repo_free(r);
	return rc;
}

static int setup_key(struct config *cfg, bool create)
{
	struct seal_key *key = NULL;
	int rc;

	if (create && !cfg->key_file)
		return err_set(MSGW_ECONFIG,
			       "init --encrypt needs encryption = \"keyfile:PATH\" in '%s'",
			       cfg->path);
	if (!cfg->key_file)
		return 0;
	if (create && (rc = check_before_create(cfg->repository, cfg->key_file)) != 0)
		return rc;
	rc = create ? seal_key_create(&key, cfg->key_file) : seal_key_load(&key, cfg->key_file);
	if (rc)
		return rc;
	if (create) {
		printf("created key file '%s', key id %s\n", cfg->key_file, seal_key_id(key));
		printf("keep a copy of it offline (a USB stick in a safe, or printed): without it\n"
		       "no snapshot of this repository can ever be restored\n");
	}
	return record_key(cfg->repository, key);
}

int cmd_init(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"encrypt", no_argument, NULL, 'e'},
					     {NULL, 0, NULL, 0}};
	struct config *cfg;
	bool encrypt = false;
	int created = 0, c, rc;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'e')
			return cli_usage_error(ctx, "init [--encrypt]", "bad option");
		encrypt = true;
	}
	if (optind != argc)
		return cli_usage_error(ctx, "init [--encrypt]", "init takes no arguments");
	cfg = cli_config(ctx);
	if (encrypt && !cfg->key_file)
		return cli_fail(ctx, setup_key(cfg, true));
	rc = repo_init(cfg->repository, &created);
	if (rc)
		return cli_fail(ctx, rc);
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST)
		log_warn("cannot create state directory '%s': %s", cfg->state_dir, strerror(errno));
	printf("%s repository '%s'\n", created ? "created" : "using existing", cfg->repository);
	rc = setup_key(cfg, encrypt);
	return rc ? cli_fail(ctx, rc) : 0;
}
