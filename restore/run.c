/*
 * run: what apply, rollback and follow share: opening a target, printing a
 * plan, and the apply flow (resolve, plan, refuse or ask, apply, report).
 */
#include "err.h"
#include "log.h"
#include "restore.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int target_open(struct cli_ctx *ctx, struct target *t, const char *name, bool lock)
{
	struct fsys_open_opts fo;
	int rc;

	memset(t, 0, sizeof(*t));
	t->gw = config_gateway_find(cli_config(ctx), name);
	if (!t->gw)
		return MSGW_ECONFIG;
	fo = (struct fsys_open_opts){t->gw->identity, t->gw->passphrase_file, t->gw->known_hosts,
				     t->gw->timeout};
	rc = fsys_open(&t->fs, t->gw->location, &fo);
	if (!rc)
		rc = service_host_open(&t->host, t->gw->location, &fo);
	if (!rc && lock)
		rc = apply_lock_target(&t->lock, ctx->cfg, name);
	if (rc)
		target_close(t);
	return rc;
}

void target_close(struct target *t)
{
	lock_release(t->lock);
	service_host_free(t->host);
	fsys_free(t->fs);
	memset(t, 0, sizeof(*t));
}

void target_env(struct cli_ctx *ctx, struct target *t, struct apply_env *env)
{
	env->repo = cli_repo(ctx);
	env->cfg = cli_config(ctx);
	env->gw = t->gw;
	env->fs = t->fs;
	env->host = t->host;
	env->config_file = ctx->cfg->path;
}

static const char *op_word(enum plan_op op)
{
	switch (op) {
	case PLAN_ADD:
		return "add";
	case PLAN_MODIFY:
		return "modify";
	case PLAN_REMOVE:
		return "remove";
	case PLAN_PRESERVE:
		return "preserve";
	default:
		return "keep";
	}
}

static json_t *plan_json(const struct plan *p, const struct target *t)
{
	json_t *files = json_array(), *stores = json_array(), *finds = json_array();
	json_t *notes = json_array();
	size_t i;

	for (i = 0; i < p->n; i++) {
		const struct plan_change *c = &p->c[i];

		json_array_append_new(files,
				      json_pack("{s:s, s:s}", "action", op_word(c->op), "path",
						c->snap ? c->snap->path : c->live->path));
	}
	for (i = 0; i < p->stores.n; i++)
		json_array_append_new(stores,
				      json_pack("{s:s, s:s, s:I, s:I}", "id", p->stores.v[i].id,
						"path", p->stores.v[i].path, "messages",
						(json_int_t)p->stores.v[i].messages, "bytes",
						(json_int_t)p->stores.v[i].bytes));
	for (i = 0; i < p->findings.n; i++) {
		const struct finding *f = &p->findings.v[i];

		json_array_append_new(finds, json_pack("{s:s, s:s?, s:I, s:I, s:s, s:s, s:b}",
						       "code", f->code, "mailbox", f->mailbox,
						       "messages", (json_int_t)f->messages, "bytes",
						       (json_int_t)f->bytes, "what", f->what,
						       "instead", f->instead, "forced", f->forced));
	}
	for (i = 0; i < p->nnotes; i++)
		json_array_append_new(notes, json_string(p->notes[i]));
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:o, "
			 "s:{s:s?, s:s?, s:s?, s:i}, s:o, s:o}",
			 "version", 1, "snapshot", p->id, "source", p->source_gateway, "target",
			 t->gw->name, "location", t->gw->location, "counts", "added",
			 (json_int_t)p->added, "modified", (json_int_t)p->modified, "removed",
			 (json_int_t)p->removed, "preserved", (json_int_t)p->preserved, "kept",
			 (json_int_t)p->kept, "files", files, "mailbox_stores", stores, "service",
			 "stop", t->gw->stop, "start", t->gw->start, "health", t->gw->health,
			 "timeout", t->gw->timeout, "findings", finds, "notes", notes);
}

static void print_findings(const struct plan *p)
{
	size_t i, open = 0;

	for (i = 0; i < p->findings.n; i++) {
		const struct finding *f = &p->findings.v[i];

		printf("  %s%s%s", f->code, f->mailbox ? " " : "", f->mailbox ? f->mailbox : "");
		if (f->mailbox)
			printf(" (%zu messages)", f->messages);
		printf("%s\n    %s\n    instead: %s\n", f->forced ? " [forced]" : "", f->what,
		       f->instead);
		open += !f->forced;
	}
	if (!p->findings.n)
		printf("  none\n");
}

static void plan_human(const struct plan *p, const struct target *t)
{
	size_t i;

	printf("restore %.12s (%s, %s) onto %s (%s)\n", p->id, p->source_gateway,
	       snapshot_meta_get(&p->snap.meta, "created") ?: "?", t->gw->name, t->gw->location);
	printf("files: %zu added, %zu modified, %zu removed, %zu preserved, %zu left alone\n",
	       p->added, p->modified, p->removed, p->preserved, p->kept);
	for (i = 0; i < p->n; i++) {
		const struct plan_change *c = &p->c[i];

		printf("  %-8s %s%s\n", op_word(c->op), c->snap ? c->snap->path : c->live->path,
		       c->op == PLAN_PRESERVE ? "  (host-specific, never overwritten)" : "");
	}
	printf("mailbox stores (never touched): %zu\n", p->stores.n);
	for (i = 0; i < p->stores.n; i++)
		printf("  %s  %zu messages, %llu bytes\n", p->stores.v[i].path,
		       p->stores.v[i].messages, (unsigned long long)p->stores.v[i].bytes);
	printf("service: stop '%s', swap, start '%s', health '%s' (timeout %d s)\n",
	       t->gw->stop ?: "(none)", t->gw->start ?: "(none)", t->gw->health ?: "(none)",
	       t->gw->timeout);
	printf("findings:\n");
	print_findings(p);
	for (i = 0; i < p->nnotes; i++)
		printf("note: %s\n", p->notes[i]);
}

void plan_print(const struct plan *p, const struct target *t, bool json)
{
	if (json) {
		json_t *doc = plan_json(p, t);

		cli_print_json(doc);
	} else {
		plan_human(p, t);
	}
}

static bool ask(const char *question)
{
	char line[64];

	printf("%s [y/N] ", question);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

static void refuse_message(const struct plan *p)
{
	struct buf codes;
	size_t i;

	fflush(stdout);
	buf_init(&codes);
	for (i = 0; i < p->findings.n; i++)
		if (!p->findings.v[i].forced && !strstr(codes.data, p->findings.v[i].code))
			buf_addf(&codes, "%s%s", codes.len ? "," : "", p->findings.v[i].code);
	log_error("refused by the safety analysis (%s); nothing was changed; to accept exactly "
		  "these risks, repeat with --force=%s",
		  codes.data, codes.data);
	buf_release(&codes);
}

static void report(const struct apply_result *res, const struct plan *p, const struct target *t)
{
	printf("restored %.12s onto %s: %zu added, %zu modified, %zu removed\n", p->id, t->gw->name,
	       p->added, p->modified, p->removed);
	printf("service down %.3f s (stop %.3f s, swap %.3f s, start and health %.3f s)\n",
	       res->downtime_ms / 1000.0, res->stop_ms / 1000.0, res->swap_ms / 1000.0,
	       res->start_ms / 1000.0);
	printf("pre-restore snapshot %.12s\n", res->pre_restore);
	if (res->confirm_deadline)
		printf(
		    "confirm with 'msgw-restore confirm %s' within %lld s, or the previous state "
		    "is put back\n",
		    t->gw->name, (long long)(res->confirm_deadline - time(NULL)));
	else
		printf("restored snapshot %.12s\n", res->restored);
}

static int decide(struct cli_ctx *ctx, struct plan *p, struct target *t, const struct run_opts *o)
{
	size_t open = 0;
	int rc = plan_force(p, o->force, &open);

	if (rc)
		return cli_fail(ctx, rc);
	if (o->dry_run || (!o->yes && isatty(0) && isatty(1)))
		plan_print(p, t, o->json);
	if (open) {
		if (!(o->dry_run || (!o->yes && isatty(0) && isatty(1)))) {
			printf("findings:\n");
			print_findings(p);
		}
		refuse_message(p);
		return 3;
	}
	if (o->dry_run)
		return 0;
	if (!o->yes) {
		if (!isatty(0) || !isatty(1)) {
			log_error("apply needs --yes when not run on a terminal");
			return 2;
		}
		if (!ask("apply this plan?")) {
			log_error("not applied");
			return 1;
		}
	}
	return -1; /* go ahead */
}

int restore_apply_flow(struct cli_ctx *ctx, const char *snapshot, const char *to,
		       const struct run_opts *o)
{
	struct apply_opts ao = {o->confirm_within};
	struct apply_result res;
	struct apply_env env;
	char id[REPO_ID_LEN], phase[32];
	struct target t;
	struct plan p;
	int64_t deadline;
	int rc, status;

	rc = repo_resolve(id, cli_repo(ctx), snapshot);
	if (rc)
		return cli_fail(ctx, rc);
	if (!o->dry_run)
		cli_lock_repo(ctx);
	rc = target_open(ctx, &t, to, !o->dry_run);
	if (rc)
		return cli_fail(ctx, rc);
	if (!o->dry_run && apply_pending(ctx->cfg, to, phase, sizeof(phase), &deadline)) {
		target_close(&t);
		err_set(MSGW_ERR,
			"a restore of '%s' is unfinished (%s); run 'msgw-restore %s %s' first", to,
			phase, strcmp(phase, "awaiting-confirm") ? "recover" : "confirm", to);
		return cli_fail(ctx, MSGW_ERR);
	}
	rc = plan_build(&p, cli_repo(ctx), id, cli_config(ctx), t.gw, t.fs, o->only);
	if (rc) {
		target_close(&t);
		return cli_fail(ctx, rc);
	}
	status = decide(ctx, &p, &t, o);
	if (status < 0) {
		target_env(ctx, &t, &env);
		rc = apply_run(&res, &env, &p, &ao);
		status = rc ? cli_fail(ctx, rc) : 0;
		if (!rc)
			report(&res, &p, &t);
	}
	plan_release(&p);
	target_close(&t);
	return status;
}
