/*
 * msgw-agent's front: the program admins and timers run.  It answers one
 * question itself, cheaply: whether a plain "snapshot" of local gateways
 * would be unchanged (quickcheck.h), the cost paid on every scheduled run.
 * It links only libconfuse and libc, so starting it does not map libgit2,
 * libarchive, libssh2 and their thirty libraries.  Everything else, and
 * every case with the least doubt, it hands to the full program
 * (msgw-agent-full, beside it or in MSGW_LIBEXECDIR) by exec with the same
 * arguments, which then does exactly what it always does.
 *
 * Handled here: "[-c FILE] [-q|-v] snapshot [--kind KIND] [GATEWAY...]"
 * when every named gateway is local, has a record matching its files and
 * branch tip, and no snapshot hook or pushing remote is configured (those
 * must run on every snapshot).  MSGW_NO_QUICKCHECK=1 turns it off.
 */
#include "config.h"
#include "err.h"
#include "lock.h"
#include "log.h"
#include "quickcheck.h"
#include "snapshot.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MSGW_LIBEXECDIR
#define MSGW_LIBEXECDIR "/usr/local/libexec/msgw-backup"
#endif
#define FULL_NAME "msgw-agent-full"

struct quick_args {
	const char *config_file;
	int verbosity;
	char **gateways; /* the named gateways (argv), or none: all */
	int ngateways;
};

/* Parse exactly the forms handled here; false for anything else. */
static bool parse(struct quick_args *a, int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"verbose", no_argument, NULL, 'v'},
					     {NULL, 0, NULL, 0}};
	int c, i;

	memset(a, 0, sizeof(*a));
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:qv", opts, NULL)) != -1) {
		if (c == 'c')
			a->config_file = optarg;
		else if (c == 'q')
			a->verbosity = -1;
		else if (c == 'v')
			a->verbosity++;
		else
			return false;
	}
	if (optind >= argc || strcmp(argv[optind], "snapshot") != 0)
		return false;
	a->gateways = xcalloc((size_t)argc, sizeof(char *));
	for (i = optind + 1; i < argc; i++) {
		if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
			i++; /* the kind of a snapshot never written */
		} else if (strncmp(argv[i], "--kind=", 7) == 0) {
			continue;
		} else if (argv[i][0] == '-') {
			free(a->gateways);
			a->gateways = NULL;
			return false;
		} else {
			a->gateways[a->ngateways++] = argv[i];
		}
	}
	return true;
}

/* Whether a snapshot of gw must run the full program whatever its files. */
static const char *needs_full(const struct config *cfg, const struct config_gateway *gw)
{
	size_t i;

	if (gw->hook_pre_snapshot || gw->hook_post_snapshot || cfg->hook_pre_snapshot ||
	    cfg->hook_post_snapshot)
		return "a snapshot hook is configured";
	for (i = 0; i < cfg->nremotes; i++)
		if (cfg->remotes[i].push)
			return "a remote is pushed to after each snapshot";
	return NULL;
}

struct quick_gw {
	const struct config_gateway *gw;
	char tip[REPO_ID_LEN];
};

/* All selected gateways unchanged: their list in out (malloc'd). */
static bool all_unchanged(struct quick_gw **out, size_t *n_out, const struct config *cfg,
			  const struct quick_args *a)
{
	size_t n = a->ngateways ? (size_t)a->ngateways : cfg->ngateways, i;
	struct quick_gw *g = xcalloc(n ? n : 1, sizeof(*g));
	bool ok = n > 0;

	for (i = 0; ok && i < n; i++) {
		const char *why = NULL;
		struct walk_rules rules;
		char *rec;

		g[i].gw =
		    a->ngateways ? config_gateway_find(cfg, a->gateways[i]) : &cfg->gateways[i];
		if (!g[i].gw) {
			err_clear();
			why = "an unknown gateway";
			ok = false;
		} else if ((why = needs_full(cfg, g[i].gw)) != NULL) {
			ok = false;
		} else {
			snapshot_rules(&rules, g[i].gw);
			rec = quickcheck_path(cfg->state_dir, g[i].gw->name);
			ok = quickcheck_unchanged(g[i].tip, &why, rec, cfg->repository,
						  g[i].gw->name, g[i].gw->location, &rules) == 1;
			free(rec);
		}
		log_debug("quick check of '%s': %s", g[i].gw ? g[i].gw->name : a->gateways[i], why);
	}
	if (!ok) {
		free(g);
		return false;
	}
	*out = g;
	*n_out = n;
	return true;
}

/* The whole no-change run; false (nothing done) when the full program must
 * run instead. */
static bool quick_snapshot(int argc, char **argv, int *status)
{
	struct config *cfg = NULL;
	struct quick_gw *g = NULL;
	struct lock *lk = NULL;
	struct quick_args a;
	char *lockpath;
	size_t n = 0, i;

	if (!parse(&a, argc, argv))
		return false;
	log_set_level(a.verbosity < 0	 ? LOG_LVL_ERROR
		      : a.verbosity == 0 ? LOG_LVL_WARN
		      : a.verbosity == 1 ? LOG_LVL_INFO
					 : LOG_LVL_DEBUG);
	if (config_load(&cfg, config_path(a.config_file))) {
		err_clear();
		free(a.gateways);
		return false;
	}
	/* under the repository lock, as the full program, so no snapshot,
	 * prune or fetch moves a branch between the check and the record */
	lockpath = lock_repo_path(cfg->repository);
	if (lock_acquire(&lk, lockpath, "repository") == 0 && all_unchanged(&g, &n, cfg, &a)) {
		for (i = 0; i < n; i++) {
			if (state_record_snapshot(cfg->state_dir, g[i].gw->name, "unchanged", NULL,
						  g[i].tip))
				log_warn("%s", err_last());
			printf("%s: unchanged (%.12s)\n", g[i].gw->name, g[i].tip);
		}
		*status = 0;
	}
	err_clear();
	lock_release(lk);
	free(lockpath);
	free(a.gateways);
	config_free(cfg);
	if (!g)
		return false;
	free(g);
	return true;
}

/* The full program: beside this one (a build tree, or an install that keeps
 * them together), else in MSGW_LIBEXECDIR. */
static char *full_program(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash, *path;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			path = xasprintf("%s/" FULL_NAME, self);
			if (access(path, X_OK) == 0)
				return path;
			free(path);
		}
	}
	return xstrdup(MSGW_LIBEXECDIR "/" FULL_NAME);
}

int main(int argc, char **argv)
{
	const char *off = getenv("MSGW_NO_QUICKCHECK");
	char *full;
	int status = 1;

	log_init("msgw-agent");
	umask(077);
	if ((!off || !*off || strcmp(off, "0") == 0) && quick_snapshot(argc, argv, &status))
		return status;
	full = full_program();
	optind = 0;
	execv(full, argv);
	fprintf(stderr, "msgw-agent: cannot run '%s': %s\n", full, strerror(errno));
	free(full);
	return 1;
}
