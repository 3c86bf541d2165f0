/*
 * jobs: one gateway's snapshot with hooks and state; see jobs.h.
 */
#include "jobs.h"
#include "err.h"
#include "log.h"
#include "service.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *hook_command(const struct config *cfg, const struct config_gateway *gw,
				enum hook_kind kind, const char **name)
{
	static const char *const names[] = {"hook-pre-snapshot", "hook-post-snapshot",
					    "hook-post-restore", "hook-failure"};
	const char *own[] = {gw->hook_pre_snapshot, gw->hook_post_snapshot, gw->hook_post_restore,
			     gw->hook_failure};
	const char *global[] = {cfg->hook_pre_snapshot, cfg->hook_post_snapshot,
				cfg->hook_post_restore, cfg->hook_failure};

	*name = names[kind];
	return own[kind] ? own[kind] : global[kind];
}

int hook_run(const struct config *cfg, const struct config_gateway *gw, enum hook_kind kind,
	     const char *snapshot, const char *result)
{
	struct service_host *local = NULL;
	const char *name, *cmd = hook_command(cfg, gw, kind, &name);
	char what[128];
	int rc;

	if (!cmd || !*cmd)
		return 0;
	setenv("MSGW_GATEWAY", gw->name, 1);
	setenv("MSGW_SNAPSHOT", snapshot ? snapshot : "", 1);
	setenv("MSGW_RESULT", result ? result : "", 1);
	snprintf(what, sizeof(what), "%s of '%s'", name, gw->name);
	service_host_local(&local);
	rc = service_run_checked(local, what, cmd, cfg->hook_timeout);
	service_host_free(local);
	unsetenv("MSGW_GATEWAY");
	unsetenv("MSGW_SNAPSHOT");
	unsetenv("MSGW_RESULT");
	return rc;
}

static void record(const struct config *cfg, const struct config_gateway *gw,
		   const struct job_result *res, int rc, const char *error)
{
	if (state_record_snapshot(cfg->state_dir, gw->name, res->result, rc ? error : NULL,
				  rc || res->skipped ? NULL : res->snap.id))
		log_warn("%s", err_last());
}

static int take(struct job_result *out, struct repo *r, const struct config_gateway *gw,
		const struct snapshot_opts *opts)
{
	struct fsys_open_opts fo = {gw->identity, gw->passphrase_file, gw->known_hosts,
				    gw->timeout};
	struct fsys *fs = NULL;
	int rc = fsys_open(&fs, gw->location, &fo);

	if (!rc)
		rc = snapshot_take(&out->snap, r, gw, fs, opts);
	fsys_free(fs);
	return rc;
}

int job_snapshot(struct job_result *out, struct repo *r, const struct config *cfg,
		 const struct config_gateway *gw, const struct snapshot_opts *opts)
{
	char error[1024] = "";
	int rc;

	memset(out, 0, sizeof(*out));
	rc = hook_run(cfg, gw, HOOK_PRE_SNAPSHOT, NULL, NULL);
	if (rc) {
		out->skipped = true;
		out->result = "skipped";
		err_wrap(rc, "skipping the snapshot of '%s'", gw->name);
	} else {
		struct snapshot_opts so = *opts;
		char *cache = job_statcache_path(cfg, gw->name);

		so.statcache = cache;
		rc = take(out, r, gw, &so);
		free(cache);
		out->result = rc ? "failed" : out->snap.unchanged ? "unchanged" : "written";
	}
	if (rc)
		snprintf(error, sizeof(error), "%s", err_last());
	record(cfg, gw, out, rc, error);
	if (hook_run(cfg, gw, rc ? HOOK_FAILURE : HOOK_POST_SNAPSHOT, rc ? NULL : out->snap.id,
		     out->result))
		log_warn("%s", err_last());
	if (rc) /* the hooks may have overwritten the message */
		err_set(rc, "%s", error);
	return rc;
}

char *job_statcache_path(const struct config *cfg, const char *gateway)
{
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		log_warn("no stat cache: cannot create '%s': %s", cfg->state_dir, strerror(errno));
		return NULL;
	}
	return xasprintf("%s/statcache-%s", cfg->state_dir, gateway);
}

void job_record_drill(const struct config *cfg, const char *gateway, bool ok, const char *error)
{
	char name[300], when[32];
	struct state st;

	snprintf(name, sizeof(name), "status-%s", gateway);
	if (state_load(&st, cfg->state_dir, name))
		return;
	time_rfc3339(when, sizeof(when), (int64_t)time(NULL));
	state_set(&st, "last-drill-attempt", when);
	state_set(&st, "last-drill-result", ok ? "ok" : "failed");
	state_set(&st, "last-drill-error", ok ? "" : error);
	if (ok)
		state_set(&st, "last-drill", when);
	if (state_save(&st))
		log_warn("%s", err_last());
	state_release(&st);
}
