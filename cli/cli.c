/*
 * cli: the shared front-end machinery.  Argument conventions: global options
 * before the command (-c FILE, -v, -q, --version, --help), command options
 * after it, parsed by each command with getopt_long.
 */
#include "cli.h"
#include "archive.h"
#include "err.h"
#include "log.h"
#include "progress.h"
#include "repo.h"
#include "snapshot.h"
#include "ssh.h"
#include "util.h"

#include <getopt.h>
#include <jansson.h>
#include <libssh2.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void print_commands(FILE *f, const struct cli_cmd *table)
{
	for (; table->name; table++)
		fprintf(f, "  %-10s %s\n", table->name, table->summary);
}

static void print_usage(FILE *f, const char *prog, const struct cli_cmd *table, const char *about)
{
	fprintf(f, "usage: %s [-c FILE] [-v | -q] COMMAND [ARGS...]\n\n%s\n\ncommands:\n", prog,
		about);
	print_commands(f, table);
	fprintf(f,
		"\noptions:\n"
		"  -c, --config FILE  configuration file (default $MSGW_BACKUP_CONF or %s)\n"
		"  -v, --verbose      say more (repeat for debug output)\n"
		"  -q, --quiet        only errors\n"
		"      --version      versions of the tool and its libraries\n"
		"  -h, --help         this help; COMMAND --help for a command's\n"
		"\nexit status: 0 done, 1 failed, 2 usage or configuration error, 3 refused by\n"
		"the safety analysis, 4 health check failed and previous state restored,\n"
		"5 rollback failed too, 6 another run holds the lock\n",
		CONFIG_DEFAULT_PATH);
}

static void print_version(const char *prog)
{
	printf("%s %s\n%s\n%s\nlibssh2 %s\n", prog, MSGW_VERSION, repo_version(),
	       archive_snapshot_versions(), libssh2_version(0));
}

int cli_main(const char *prog, const struct cli_cmd *table, int argc, char **argv,
	     const char *about)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"repo", required_argument, NULL, 'R'},
					     {"verbose", no_argument, NULL, 'v'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	struct cli_ctx ctx = {.prog = prog};
	const struct cli_cmd *cmd;
	int c, verbosity = 0, status;

	ssh_register();
	log_init(prog);
	umask(077);
	while ((c = getopt_long(argc, argv, "+c:hqv", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctx.config_file = optarg;
			break;
		case 'h':
			print_usage(stdout, prog, table, about);
			return 0;
		case 'q':
			verbosity = -1;
			break;
		case 'R':
			ctx.repo_override = optarg;
			break;
		case 'v':
			verbosity++;
			break;
		case 'V':
			print_version(prog);
			return 0;
		default:
			print_usage(stderr, prog, table, about);
			return 2;
		}
	}
	progress_enable(verbosity >= 0 && isatty(2));
	log_set_level(verbosity < 0    ? LOG_LVL_ERROR
		      : verbosity == 0 ? LOG_LVL_WARN
		      : verbosity == 1 ? LOG_LVL_INFO
				       : LOG_LVL_DEBUG);
	if (optind >= argc) {
		print_usage(stderr, prog, table, about);
		return 2;
	}
	for (cmd = table; cmd->name; cmd++)
		if (strcmp(cmd->name, argv[optind]) == 0)
			break;
	if (!cmd->name) {
		log_error("unknown command '%s' (see '%s --help')", argv[optind], prog);
		return 2;
	}
	argc -= optind;
	argv += optind;
	optind = 0; /* reset getopt for the command's own parsing */
	status = cmd->fn(&ctx, argc, argv);
	cli_ctx_release(&ctx);
	return status;
}

struct config *cli_config(struct cli_ctx *ctx)
{
	int rc;

	if (ctx->cfg)
		return ctx->cfg;
	rc = config_load(&ctx->cfg, config_path(ctx->config_file));
	if (rc)
		log_die(2, "%s", err_last());
	return ctx->cfg;
}

/* The configured key for an encrypted repository; a --repo PATH that
 * works without a configuration file keeps doing so. */
static void attach_key(struct cli_ctx *ctx)
{
	if (!ctx->cfg && config_load(&ctx->cfg, config_path(ctx->config_file)) != 0) {
		err_clear();
		return;
	}
	repo_use_key_file(ctx->repo, ctx->cfg->key_file);
}

struct repo *cli_repo(struct cli_ctx *ctx)
{
	char *cached = NULL;
	const char *path;
	int rc;

	if (ctx->repo)
		return ctx->repo;
	path = ctx->repo_override ? ctx->repo_override : cli_config(ctx)->repository;
	if (ctx->repo_override && repo_remote_is_url(ctx->repo_override)) {
		/* work from a remote repository: fetched into a local cache first */
		rc = repo_remote_cache(&cached, ctx->repo_override, cli_config(ctx));
		if (rc)
			log_die_err(rc);
		path = cached;
	}
	rc = repo_open(&ctx->repo, path);
	free(cached);
	if (rc)
		log_die_err(rc);
	attach_key(ctx);
	return ctx->repo;
}

void cli_lock_repo(struct cli_ctx *ctx)
{
	int rc;

	if (ctx->lock)
		return;
	rc = repo_lock(&ctx->lock, cli_repo(ctx));
	if (rc)
		log_die_err(rc);
}

void cli_ctx_release(struct cli_ctx *ctx)
{
	lock_release(ctx->lock);
	ctx->lock = NULL;
	repo_free(ctx->repo);
	ctx->repo = NULL;
	config_free(ctx->cfg);
	ctx->cfg = NULL;
}

int cli_fail(struct cli_ctx *ctx, int code)
{
	(void)ctx;
	log_error("%s", err_last());
	return err_exit_code(code);
}

int cli_usage_error(struct cli_ctx *ctx, const char *synopsis, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", ctx->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s %s\n", ctx->prog, synopsis);
	return 2;
}

bool cli_want_help(int argc, char **argv, const char *help)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(help, stdout);
			return true;
		}
	}
	return false;
}

void cli_print_json(json_t *doc)
{
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(doc);
}

void cli_human_size(char *buf, size_t len, unsigned long long bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	if (u == 0)
		snprintf(buf, len, "%llu B", bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

int cli_cmd_unimplemented(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	log_error("'%s' is not implemented yet", argv[0]);
	(void)ctx;
	return 1;
}
