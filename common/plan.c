/*
 * plan: computes a restore plan.  Order of checks: the snapshot's archive is
 * scanned for hostile entries first (so a crafted archive is named as such),
 * then verified against its manifest, then the target is walked and the
 * changes and findings computed.  Nothing here writes anywhere.
 */
#include "plan.h"
#include "archive.h"
#include "err.h"
#include "glob.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define RECORD_FILE_MAX (32u << 20)

int plan_check_entry_name(const char *path, char type, const char *link)
{
	const char *p = path;
	int depth = 0;

	if (!*path || path[0] == '/')
		return err_set(MSGW_EHOSTILE, "refusing entry '%s': absolute or empty path", path);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return err_set(MSGW_EHOSTILE,
				       "refusing entry '%s': '..', '.' or empty component", path);
		if (n == 36) {
			char comp[37];

			memcpy(comp, p, 36);
			comp[36] = '\0';
			if (walk_is_mailbox_name(comp))
				return err_set(MSGW_EHOSTILE,
					       "refusing entry '%s': it lies in a mailbox store",
					       path);
		}
		depth++;
		p += n;
		if (*p == '/')
			p++;
	}
	if (type != 'l')
		return 0;
	if (!link || !*link || link[0] == '/')
		return err_set(MSGW_EHOSTILE, "refusing link '%s': absolute target '%s'", path,
			       link ? link : "");
	/* the link lives at depth-1 directories below the root */
	depth--;
	for (p = link; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			depth--;
		else if (n > 0 && !(n == 1 && p[0] == '.'))
			depth++;
		if (depth < 0)
			return err_set(MSGW_EHOSTILE,
				       "refusing link '%s': target '%s' leaves the destination",
				       path, link);
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

static const char *type_name(char t)
{
	switch (t) {
	case 'h':
		return "a hard link";
	case 'c':
		return "a character device";
	case 'b':
		return "a block device";
	case 'p':
		return "a FIFO";
	case 's':
		return "a socket";
	default:
		return "of an unknown type";
	}
}

static void fill_entry(struct manifest_entry *e, const struct archive_snapshot_item *it)
{
	if (it->type == 'l' && it->link && !e->link)
		e->link = xstrdup(it->link);
	if (it->uname && *it->uname && !e->uname)
		e->uname = xstrdup(it->uname);
	if (it->gname && *it->gname && !e->gname)
		e->gname = xstrdup(it->gname);
	e->mtime = it->mtime;
	e->mtime_nsec = it->mtime_nsec;
}

/* No entry may lie below a symlink of the same snapshot (a write through
 * it would land outside the destination), and every entry's directories
 * must be in the snapshot (the agent always records them): otherwise the
 * entry would be written through whatever the destination has there. */
static int check_parents(const struct manifest *m, const char *entry)
{
	char *path = xstrdup(entry), *slash;
	int rc = 0;

	while (!rc && (slash = strrchr(path, '/'))) {
		const struct manifest_entry *a;

		*slash = '\0';
		a = manifest_find(m, path);
		if (a && a->type == 'l')
			rc = err_set(MSGW_EHOSTILE,
				     "refusing entry '%s': it would be written through link '%s'",
				     entry, path);
		else if (a && a->type != 'd')
			rc = err_set(MSGW_EHOSTILE, "refusing entry '%s': '%s' is not a directory",
				     entry, path);
		else if (!a)
			rc = err_set(
			    MSGW_ECORRUPT,
			    "refusing entry '%s': its directory '%s' is not in the snapshot", entry,
			    path);
	}
	free(path);
	return rc;
}

/* The check of one entry, made on each as the archive is read, before
 * anything is written from it: a plain file, directory or symlink, with a
 * name that stays inside the destination and is not written through a
 * link.  What only the archive holds (link targets, owner names, mtimes)
 * is copied into the manifest entry (ctx) here. */
static int check_entry(const struct archive_snapshot_item *it, void *ctx)
{
	struct manifest_entry *e;
	int rc;

	if (it->type != 'f' && it->type != 'd' && it->type != 'l')
		return err_set(MSGW_EHOSTILE, "refusing entry '%s': it is %s", it->path,
			       type_name(it->type));
	rc = plan_check_entry_name(it->path, it->type, it->link);
	if (!rc)
		rc = check_parents(ctx, it->path);
	e = rc ? NULL : (struct manifest_entry *)manifest_find(ctx, it->path);
	if (e)
		fill_entry(e, it);
	return rc;
}

int plan_check_archive(struct snapshot *s, struct archive_snapshot_reader *r,
		       const struct archive_snapshot_visit *then)
{
	struct archive_snapshot_visit v = {0};
	int rc;

	/* one pass over the archive: each entry's own checks first, then the
	 * entry against the manifest; at the end the manifest equals the
	 * archive, so all its names were checked too */
	if (then)
		v = *then;
	v.pre = check_entry;
	v.pre_ctx = &s->manifest;
	rc = archive_snapshot_check(r, &s->manifest, &v);
	if (rc)
		err_wrap(rc, "snapshot %.12s", s->id);
	return rc;
}

int plan_check_snapshot(struct snapshot *s)
{
	struct archive_snapshot_reader *r = NULL;
	int rc;

	rc = archive_snapshot_open(&r, s->archive, s->archive_len);
	if (rc)
		err_wrap(rc, "snapshot %.12s", s->id);
	else
		rc = plan_check_archive(s, r, NULL);
	archive_snapshot_free(r);
	return rc;
}

static bool in_scope(const struct plan *p, const char *path)
{
	char *const pat[] = {(char *)p->only, NULL};

	return !p->only || glob_match_any_at_or_above(pat, path);
}

/* Whether some snapshot entry below dir is in scope (dir must then exist). */
static bool scope_below(const struct plan *p, const char *dir)
{
	size_t i, n = strlen(dir);

	if (!p->only)
		return true;
	for (i = 0; i < p->snap.manifest.n; i++) {
		const char *q = p->snap.manifest.e[i].path;

		if (strncmp(q, dir, n) == 0 && q[n] == '/' && in_scope(p, q))
			return true;
	}
	return false;
}

static void map_owner(struct fsys *fs, const struct manifest_entry *e, uint32_t *uid, uint32_t *gid)
{
	*uid = e->uid;
	*gid = e->gid;
	if (e->uname)
		fsys_uid_of(fs, e->uname, uid);
	if (e->gname)
		fsys_gid_of(fs, e->gname, gid);
}

static void add_change(struct plan *p, size_t *cap, enum plan_op op,
		       const struct manifest_entry *snap, const struct manifest_entry *live,
		       struct fsys *fs)
{
	struct plan_change *c;

	if (p->n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		p->c = xrealloc(p->c, *cap * sizeof(*p->c));
	}
	c = &p->c[p->n++];
	memset(c, 0, sizeof(*c));
	c->op = op;
	c->snap = snap;
	c->live = live;
	if (snap)
		map_owner(fs, snap, &c->uid, &c->gid);
	switch (op) {
	case PLAN_ADD:
		p->added++;
		break;
	case PLAN_MODIFY:
		p->modified++;
		break;
	case PLAN_REMOVE:
		p->removed++;
		break;
	case PLAN_PRESERVE:
		p->preserved++;
		break;
	case PLAN_KEEP:
		p->kept++;
		break;
	}
}

static bool differs(const struct manifest_entry *s, const struct manifest_entry *l, uint32_t uid,
		    uint32_t gid)
{
	if (s->type != l->type || s->mode != l->mode || uid != l->uid || gid != l->gid)
		return true;
	if (s->type == 'd')
		return false;
	return s->size != l->size || memcmp(s->sha, l->sha, SHA256_LEN) != 0;
}

static int classify_pair(struct plan *p, size_t *cap, const struct manifest_entry *s,
			 const struct manifest_entry *l, struct fsys *fs)
{
	const struct config_gateway *t = p->target;
	const char *path = s ? s->path : l->path;
	struct walk_rules rules;
	uint32_t uid = 0, gid = 0;

	snapshot_rules(&rules, t);
	if (glob_match_any_at_or_above(t->preserve.v, path))
		return add_change(p, cap, PLAN_PRESERVE, s, l, fs), 0;
	if (s && !l && walk_classify(&rules, path, s->type == 'd') != WALK_CONFIG)
		return add_change(p, cap, PLAN_KEEP, s, NULL, fs), 0;
	if (!in_scope(p, path) && !(s && s->type == 'd' && scope_below(p, path) && !l))
		return 0;
	if (!s)
		return add_change(p, cap, PLAN_REMOVE, NULL, l, fs), 0;
	if (!l)
		return add_change(p, cap, PLAN_ADD, s, NULL, fs), 0;
	if ((s->type == 'd') != (l->type == 'd'))
		return err_set(
		    MSGW_ERR,
		    "cannot restore '%s': it is a %s in the snapshot and a %s on the target; "
		    "move it aside by hand",
		    path, s->type == 'd' ? "directory" : "file",
		    l->type == 'd' ? "directory" : "file");
	map_owner(fs, s, &uid, &gid);
	if (differs(s, l, uid, gid)) {
		add_change(p, cap, PLAN_MODIFY, s, l, fs);
		p->c[p->n - 1].meta_only = s->type == 'd';
	}
	return 0;
}

static int compute_changes(struct plan *p, struct fsys *fs)
{
	const struct manifest *a = &p->snap.manifest, *b = &p->live;
	size_t i = 0, j = 0, cap = 0;
	int rc = 0;

	while (!rc && (i < a->n || j < b->n)) {
		int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->e[i].path, b->e[j].path);

		if (c < 0)
			rc = classify_pair(p, &cap, &a->e[i++], NULL, fs);
		else if (c > 0)
			rc = classify_pair(p, &cap, NULL, &b->e[j++], fs);
		else
			rc = classify_pair(p, &cap, &a->e[i++], &b->e[j++], fs);
	}
	return rc;
}

/* Every existing ancestor of a path we will write must be a real directory
 * on the target: never write through a live symlink. */
static int check_target_parents(struct plan *p, struct fsys *fs)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		const struct plan_change *c = &p->c[i];
		char *path, *slash;
		int rc = 0;

		if (c->op != PLAN_ADD && c->op != PLAN_MODIFY)
			continue;
		path = xstrdup(c->snap->path);
		while (!rc && (slash = strrchr(path, '/'))) {
			struct fsys_stat st;

			*slash = '\0';
			if (fsys_stat(fs, path, &st) == 0 && st.type != FSYS_DIR)
				rc = err_set(
				    MSGW_EHOSTILE,
				    "refusing to write '%s': '%s' on the target is not a directory",
				    c->snap->path, path);
		}
		free(path);
		if (rc)
			return rc;
	}
	return 0;
}

static void add_records(struct gateway_records *recs, const char *file, const char *data,
			size_t len)
{
	if (gateway_records_add_file(recs, file, data, len) != 0)
		gateway_records_add_presence(recs, file, data, len, err_last());
}

static int snapshot_records(struct gateway_records *recs, const struct snapshot *s)
{
	struct archive_snapshot_reader *ar = NULL;
	struct archive_snapshot_item it;
	int rc;

	rc = archive_snapshot_open(&ar, s->archive, s->archive_len);
	while (!rc && (rc = archive_snapshot_next(ar, &it)) == 1) {
		struct buf b;

		rc = 0;
		if (it.type != 'f' || it.size > RECORD_FILE_MAX)
			continue;
		buf_init(&b);
		rc = archive_snapshot_read_all(ar, &b);
		if (!rc)
			add_records(recs, it.path, b.data, b.len);
		buf_release(&b);
	}
	archive_snapshot_free(ar);
	return rc;
}

static int live_records(struct gateway_records *recs, const struct manifest *live, struct fsys *fs)
{
	size_t i;

	for (i = 0; i < live->n; i++) {
		char *data = NULL;
		size_t len = 0;
		int rc;

		if (live->e[i].type != 'f' || live->e[i].size > RECORD_FILE_MAX)
			continue;
		rc = fsys_read_all(fs, live->e[i].path, &data, &len);
		if (rc)
			return rc;
		add_records(recs, live->e[i].path, data, len);
		free(data);
	}
	return 0;
}

static void add_note(struct plan *p, const char *prefix, const char *note)
{
	p->notes = xrealloc(p->notes, (p->nnotes + 1) * sizeof(char *));
	p->notes[p->nnotes++] = xasprintf("%s: %s", prefix, note);
}

/* Whether a modified file differs only in runtime fields (counters, times
 * the gateway writes itself while it runs, e.g. on every delivered message). */
static bool runtime_only(const char *archive, size_t alen, const struct manifest_change *c,
			 struct fsys *fs)
{
	const struct manifest_entry *o = c->old_e, *n = c->new_e;
	char *old_data = NULL, *new_data = NULL;
	size_t old_len = 0, new_len = 0;
	bool same;

	if (c->kind != 'M' || o->type != 'f' || n->type != 'f' || o->mode != n->mode ||
	    o->uid != n->uid || o->gid != n->gid || o->size > RECORD_FILE_MAX ||
	    n->size > RECORD_FILE_MAX)
		return false;
	if (archive_snapshot_read_file(&old_data, &old_len, archive, alen, o->path) ||
	    fsys_read_all(fs, n->path, &new_data, &new_len)) {
		free(old_data);
		return false;
	}
	same = !gateway_config_differs(old_data, old_len, new_data, new_len);
	free(old_data);
	free(new_data);
	return same;
}

/* Take the runtime-only modifications out of d (the gateway made them, not
 * an admin), with a note naming them. */
static void drop_runtime_changes(struct plan *p, struct repo *r, struct manifest_diff *d,
				 struct fsys *fs)
{
	char *archive = NULL;
	size_t alen = 0, i, kept = 0;

	if (!d->modified || repo_read(&archive, &alen, r, p->tip, "config.tar.zst"))
		goto cleanup;
	for (i = 0; i < d->n; i++) {
		if (runtime_only(archive, alen, &d->c[i], fs)) {
			char *note = xasprintf("'%s' changed on the target only in runtime fields "
					       "(counters, times); not counted as a local edit",
					       d->c[i].new_e->path);

			add_note(p, "target", note);
			free(note);
			d->modified--;
			continue;
		}
		d->c[kept++] = d->c[i];
	}
	d->n = kept;
cleanup:
	free(archive);
}

static int diverged_finding(struct plan *p, struct repo *r, struct fsys *fs)
{
	struct manifest tip;
	struct manifest_diff d;
	char *text = NULL, counts[128];
	struct buf what;
	size_t len, i;
	int rc;

	rc = repo_branch_tip(p->tip, r, p->target->name);
	if (rc == MSGW_ENOTFOUND)
		return 0; /* never recorded: a fresh gateway has nothing to diverge from */
	if (rc)
		return rc;
	p->has_tip = true;
	rc = repo_read(&text, &len, r, p->tip, "manifest");
	if (!rc)
		rc = manifest_parse(&tip, text, len);
	free(text);
	if (rc)
		return rc;
	manifest_diff(&d, &tip, &p->live);
	drop_runtime_changes(p, r, &d, fs);
	if (d.n) {
		manifest_diff_summary(&d, counts, sizeof(counts));
		buf_init(&what);
		buf_addf(&what,
			 "the target's configuration was changed locally since its last recorded "
			 "state %.12s (%s); these changes would be lost:",
			 p->tip, counts);
		for (i = 0; i < d.n && i < 20; i++)
			buf_addf(&what, " %c %s", d.c[i].kind,
				 (d.c[i].new_e ? d.c[i].new_e : d.c[i].old_e)->path);
		if (d.n > 20)
			buf_addf(&what, " ... (%zu more)", d.n - 20);
		findings_add(
		    &p->findings, "target-diverged", NULL, 0, 0, what.data,
		    "edit only the primary gateway; if the local change is wanted, snapshot "
		    "the target first (msgw-agent snapshot) and carry it over, then retry");
		buf_release(&what);
	}
	manifest_diff_release(&d);
	manifest_release(&tip);
	return 0;
}

static int analyse(struct plan *p, struct repo *r, struct fsys *fs)
{
	struct gateway_records snap_recs, live_recs;
	struct walk_rules rules;
	size_t i;
	int rc;

	snapshot_rules(&rules, p->target);
	rc = gateway_inventory_read(&p->stores, fs, &rules);
	if (!rc)
		rc = diverged_finding(p, r, fs);
	if (rc)
		return rc;
	gateway_records_init(&snap_recs);
	gateway_records_init(&live_recs);
	rc = snapshot_records(&snap_recs, &p->snap);
	if (!rc)
		rc = live_records(&live_recs, &p->live, fs);
	if (!rc)
		gateway_analyse(&p->findings, &snap_recs, &live_recs, &p->stores);
	for (i = 0; i < snap_recs.nnotes; i++)
		add_note(p, "snapshot", snap_recs.notes[i]);
	for (i = 0; i < live_recs.nnotes; i++)
		add_note(p, "target", live_recs.notes[i]);
	gateway_records_release(&snap_recs);
	gateway_records_release(&live_recs);
	return rc;
}

int plan_build(struct plan *out, struct repo *r, const char *id,
	       const struct config_gateway *target, struct fsys *fs, const char *only)
{
	struct walk_rules rules;
	const char *g;
	int rc;

	memset(out, 0, sizeof(*out));
	memcpy(out->id, id, REPO_ID_LEN);
	out->target = target;
	out->only = only;
	findings_init(&out->findings);
	manifest_init(&out->live);
	rc = snapshot_load(&out->snap, r, id, true);
	if (rc)
		return rc;
	g = snapshot_meta_get(&out->snap.meta, "gateway");
	out->source_gateway = xstrdup(g ? g : "?");
	rc = plan_check_snapshot(&out->snap);
	snapshot_rules(&rules, target);
	if (!rc)
		rc = walk_location(&out->live, fs, &rules, NULL);
	if (!rc)
		rc = walk_hash(&out->live, fs, NULL);
	if (!rc)
		rc = compute_changes(out, fs);
	if (!rc)
		rc = check_target_parents(out, fs);
	if (!rc)
		rc = analyse(out, r, fs);
	if (rc)
		plan_release(out);
	return rc;
}

void plan_release(struct plan *p)
{
	size_t i;

	snapshot_release(&p->snap);
	manifest_release(&p->live);
	free(p->c);
	free(p->source_gateway);
	gateway_inventory_release(&p->stores);
	findings_release(&p->findings);
	for (i = 0; i < p->nnotes; i++)
		free(p->notes[i]);
	free(p->notes);
	memset(p, 0, sizeof(*p));
}

int plan_force(struct plan *p, const char *force, size_t *left_out)
{
	char *copy = xstrdup(force ? force : ""), *save = NULL, *code;
	size_t i;
	int rc = 0;

	for (code = strtok_r(copy, ",", &save); code; code = strtok_r(NULL, ",", &save)) {
		if (!gateway_is_finding_code(code)) {
			rc = err_set(MSGW_ECONFIG, "unknown finding code '%s' for --force", code);
			break;
		}
		for (i = 0; i < p->findings.n; i++)
			if (strcmp(p->findings.v[i].code, code) == 0)
				p->findings.v[i].forced = true;
	}
	free(copy);
	*left_out = 0;
	for (i = 0; i < p->findings.n; i++)
		if (!p->findings.v[i].forced)
			(*left_out)++;
	return rc;
}

char *plan_forced_codes(const struct plan *p)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	for (i = 0; i < p->findings.n; i++) {
		const char *c = p->findings.v[i].code;

		if (p->findings.v[i].forced && !strstr(b.data, c))
			buf_addf(&b, "%s%s", b.len ? "," : "", c);
	}
	return buf_detach(&b, NULL);
}
