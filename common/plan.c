/*
 * plan: computes a restore plan.  Order of checks: the manifest's sizes
 * against the limits; then one pass over the archive, each entry checked
 * for hostile names, types and places first (so a crafted archive is named
 * as such) and then against its manifest entry; then the snapshot's links
 * resolved through each other.  Then the target is walked (a leftover of
 * an earlier restore stops the plan), and the changes and findings are
 * computed.  Nothing here writes anywhere.  The guard (plan_guard) is
 * what the configuration adds: limits, mode stripping, store patterns.
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

#define RESERVED_MARK WALK_RESERVED_MARK

static bool has_reserved(const char *c, size_t n)
{
	size_t i, k = sizeof(RESERVED_MARK) - 1;

	for (i = 0; i + k <= n; i++)
		if (c[i] == '.' && memcmp(c + i, RESERVED_MARK, k) == 0)
			return true;
	return false;
}

bool plan_is_reserved_name(const char *name)
{
	return has_reserved(name, strlen(name));
}

/* One component of an entry's name: not empty, ".", "..", a mailbox's name
 * nor a reserved one. */
static int check_component(const char *path, const char *c, size_t n)
{
	char comp[256];

	if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
		return err_set(MSGW_EHOSTILE, "refusing entry '%s': '..', '.' or empty component",
			       path);
	if (has_reserved(c, n))
		return err_set(MSGW_EHOSTILE,
			       "refusing entry '%s': '%.*s' is a name msgw-restore reserves for "
			       "its own files (*.msgw-*)",
			       path, (int)n, c);
	if (n >= sizeof(comp))
		return 0; /* longer than a mailbox's name */
	memcpy(comp, c, n);
	comp[n] = '\0';
	if (walk_is_mailbox_name(comp))
		return err_set(MSGW_EHOSTILE, "refusing entry '%s': it lies in a mailbox store",
			       path);
	return 0;
}

int plan_check_entry_name(const char *path, char type, const char *link)
{
	const char *p = path;
	int depth = 0, rc;

	if (!*path || path[0] == '/')
		return err_set(MSGW_EHOSTILE, "refusing entry '%s': absolute or empty path", path);
	while (*p) {
		size_t n = strcspn(p, "/");

		if ((rc = check_component(path, p, n)) != 0)
			return rc;
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
	/* the link lives at depth-1 directories below the root; this is the
	 * target as written, plan_check_links resolves it through links */
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

/* ---- links resolved through the snapshot -------------------------------- */

#define LINK_HOPS 40 /* as Linux's limit on links followed in one lookup */

/* A path being resolved: its text, where each component starts, and how
 * many leading components are folders of the snapshot. */
struct rpath {
	struct buf b;
	size_t *ends; /* b.len before each component */
	size_t n, cap, known;
};

static void rpath_push(struct rpath *p, const char *c, size_t len)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->ends = xrealloc(p->ends, p->cap * sizeof(*p->ends));
	}
	p->ends[p->n++] = p->b.len;
	if (p->b.len)
		buf_add(&p->b, "/", 1);
	buf_add(&p->b, c, len);
}

static void rpath_pop(struct rpath *p)
{
	p->b.len = p->ends[--p->n];
	p->b.data[p->b.len] = '\0';
	if (p->known > p->n)
		p->known = p->n;
}

/* Whether path, or a folder above it, is a mailbox store by name or by
 * one of the patterns. */
static bool in_store(const char *path, char *const *const stores[2])
{
	char *copy = xstrdup(path), *slash;
	bool found = false;

	do {
		const char *base = strrchr(copy, '/');

		base = base ? base + 1 : copy;
		found = walk_is_mailbox_name(base) || glob_match_any(stores[0], copy) ||
			glob_match_any(stores[1], copy);
		slash = strrchr(copy, '/');
		if (slash)
			*slash = '\0';
	} while (!found && slash);
	free(copy);
	return found;
}

/* Take the next component off *rest: it starts at *c and is *n long. */
static bool next_component(const char **rest, const char **c, size_t *n)
{
	if (!**rest)
		return false;
	*c = *rest;
	*n = strcspn(*rest, "/");
	*rest += *n;
	if (**rest == '/')
		(*rest)++;
	return true;
}

/* One step of a resolution: component c (n long) onto p; a link of the
 * snapshot there becomes the new *todo (its target, then what was left). */
static int resolve_step(const struct manifest *m, const struct manifest_entry *l, struct rpath *p,
			const char *c, size_t n, char **todo, const char **rest, int *hops)
{
	const struct manifest_entry *e;
	char *next;

	if (n == 0 || (n == 1 && c[0] == '.'))
		return 0;
	if (n == 2 && c[0] == '.' && c[1] == '.') {
		if (p->n == 0)
			return err_set(MSGW_EHOSTILE,
				       "refusing link '%s': target '%s' leaves the destination",
				       l->path, l->link);
		if (p->n > p->known)
			return err_set(MSGW_EHOSTILE,
				       "refusing link '%s': target '%s' goes up out of '%s', which "
				       "is not a folder of the snapshot",
				       l->path, l->link, p->b.data);
		rpath_pop(p);
		return 0;
	}
	rpath_push(p, c, n);
	if (p->n - 1 > p->known)
		return 0; /* below something the snapshot does not hold as a folder */
	e = manifest_find(m, p->b.data);
	if (e && e->type == 'd')
		p->known = p->n;
	if (!e || e->type != 'l')
		return 0;
	rpath_pop(p);
	if (++*hops > LINK_HOPS)
		return err_set(MSGW_EHOSTILE,
			       "refusing link '%s': target '%s' goes through too many links",
			       l->path, l->link);
	if (!e->link || e->link[0] == '/')
		return err_set(MSGW_EHOSTILE,
			       "refusing link '%s': target '%s' goes through '%s', whose target "
			       "is absolute",
			       l->path, l->link, e->path);
	next = xasprintf("%s/%s", e->link, *rest);
	free(*todo);
	*todo = next;
	*rest = next;
	return 0;
}

static int resolve_link(const struct manifest *m, const struct manifest_entry *l,
			char *const *const stores[2])
{
	struct rpath p = {.known = 0};
	char *todo = xstrdup(l->link ? l->link : "");
	const char *rest = todo, *c, *slash = strrchr(l->path, '/');
	size_t n;
	int hops = 0, rc = 0;

	buf_init(&p.b);
	/* the link's own folders are the snapshot's (check_parents) */
	for (c = l->path; slash && c <= slash; c += n + 1) {
		n = strcspn(c, "/");
		rpath_push(&p, c, n);
	}
	p.known = p.n;
	if (!*rest || *rest == '/')
		rc = err_set(MSGW_EHOSTILE, "refusing link '%s': absolute target '%s'", l->path,
			     rest);
	while (!rc && next_component(&rest, &c, &n))
		rc = resolve_step(m, l, &p, c, n, &todo, &rest, &hops);
	if (!rc && p.n && in_store(p.b.data, stores))
		rc = err_set(MSGW_EHOSTILE,
			     "refusing link '%s': target '%s' lies in a mailbox store ('%s')",
			     l->path, l->link, p.b.data);
	free(todo);
	free(p.ends);
	buf_release(&p.b);
	return rc;
}

int plan_check_links(const struct manifest *m, char *const *const stores[2])
{
	size_t i;
	int rc = 0;

	for (i = 0; !rc && i < m->n; i++)
		if (m->e[i].type == 'l')
			rc = resolve_link(m, &m->e[i], stores);
	return rc;
}

/* ---- the guard ---------------------------------------------------------- */

static const struct config_gateway *gateway_named(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; cfg && name && i < cfg->ngateways; i++)
		if (strcmp(cfg->gateways[i].name, name) == 0)
			return &cfg->gateways[i];
	return NULL;
}

void plan_guard_init(struct plan_guard *g, const struct config *cfg,
		     const struct config_gateway *target, const char *source)
{
	const struct config_gateway *src = gateway_named(cfg, source);
	const struct config_gateway *lim = target ? target : src;

	memset(g, 0, sizeof(*g));
	if (lim) {
		g->max_file_size = lim->max_file_size;
		g->max_total_size = lim->max_total_size;
		g->keep_modes = !lim->strip_modes;
	} else if (cfg) {
		g->max_file_size = cfg->max_file_size;
		g->max_total_size = cfg->max_total_size;
		g->keep_modes = !cfg->strip_modes;
	}
	g->config_file = cfg ? cfg->path : NULL;
	g->stores[0] = target ? target->mailbox_store.v : NULL;
	g->stores[1] = src ? src->mailbox_store.v : NULL;
}

void plan_guard_release(struct plan_guard *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->nstripped; i++)
		free(g->stripped[i].path);
	free(g->stripped);
	g->stripped = NULL;
	g->nstripped = 0;
}

static const char *raise_hint(const struct plan_guard *g)
{
	return g->config_file ? g->config_file : "the configuration";
}

/* The manifest's sizes against the limits, before anything is read: a
 * snapshot may claim any size, and a sparse or highly compressible entry
 * costs the attacker nothing. */
static int check_sizes(const struct manifest *m, const struct plan_guard *g)
{
	unsigned long long total = 0;
	size_t i;

	for (i = 0; i < m->n; i++) {
		const struct manifest_entry *e = &m->e[i];

		if (e->type == 'd')
			continue;
		if (g->max_file_size && e->size > g->max_file_size)
			return err_set(MSGW_EHOSTILE,
				       "refusing entry '%s': %llu bytes, more than max-file-size "
				       "(%llu); raise max-file-size in '%s' if the file is genuine",
				       e->path, (unsigned long long)e->size, g->max_file_size,
				       raise_hint(g));
		total = e->size > ~0ull - total ? ~0ull : total + e->size;
	}
	if (g->max_total_size && total > g->max_total_size)
		return err_set(MSGW_EHOSTILE,
			       "refusing the snapshot: %llu bytes in all, more than max-total-size "
			       "(%llu); raise max-total-size in '%s' if the snapshot is genuine",
			       total, g->max_total_size, raise_hint(g));
	return 0;
}

/* An entry at or below a folder the patterns call a mailbox store (names
 * are check_component's). */
static int check_store(const struct archive_snapshot_item *it, const struct plan_guard *g)
{
	char *copy, *slash;
	int rc = 0;

	if (!g->stores[0] && !g->stores[1])
		return 0;
	copy = xstrdup(it->path);
	if (it->type != 'd' && (slash = strrchr(copy, '/')) != NULL)
		*slash = '\0';
	else if (it->type != 'd')
		*copy = '\0';
	while (!rc && *copy) {
		if (glob_match_any(g->stores[0], copy) || glob_match_any(g->stores[1], copy))
			rc = err_set(MSGW_EHOSTILE,
				     "refusing entry '%s': it lies in a mailbox store ('%s', a "
				     "mailbox-store pattern)",
				     it->path, copy);
		slash = strrchr(copy, '/');
		if (slash)
			*slash = '\0';
		else
			*copy = '\0';
	}
	free(copy);
	return rc;
}

static void strip_mode(struct plan_guard *g, struct manifest_entry *e)
{
	struct plan_stripped *x;

	if (g->keep_modes || e->type == 'l' || !(e->mode & PLAN_STRIP_MODE))
		return;
	g->stripped = xrealloc(g->stripped, (g->nstripped + 1) * sizeof(*g->stripped));
	x = &g->stripped[g->nstripped++];
	x->path = xstrdup(e->path);
	x->from = e->mode;
	x->to = e->mode & ~PLAN_STRIP_MODE;
	e->mode = x->to;
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

/* What one pass of the check carries: the snapshot, the guard, and the
 * caller's callbacks (then), which see links only at the end. */
struct check_ctx {
	struct snapshot *s;
	struct plan_guard *g;
	const struct archive_snapshot_visit *then;
};

/* The check of one entry, made on each as the archive is read, before
 * anything is written from it: a plain file, directory or symlink, not
 * sparse, with a name that stays inside the destination, outside mailbox
 * stores and the tool's own names, and is not written through a link.
 * What only the archive holds (link targets, owner names, mtimes) is
 * copied into the manifest entry here. */
static int check_entry(const struct archive_snapshot_item *it, void *ctx)
{
	struct check_ctx *cc = ctx;
	struct manifest_entry *e;
	int rc;

	if (it->type != 'f' && it->type != 'd' && it->type != 'l')
		return err_set(MSGW_EHOSTILE, "refusing entry '%s': it is %s", it->path,
			       type_name(it->type));
	if (it->sparse)
		return err_set(MSGW_EHOSTILE,
			       "refusing entry '%s': it is a sparse file (the agent never "
			       "writes one)",
			       it->path);
	rc = plan_check_entry_name(it->path, it->type, it->link);
	if (!rc)
		rc = check_store(it, cc->g);
	if (!rc)
		rc = check_parents(&cc->s->manifest, it->path);
	e = rc ? NULL : (struct manifest_entry *)manifest_find(&cc->s->manifest, it->path);
	if (e)
		fill_entry(e, it);
	return rc;
}

/* An entry matched its manifest entry e: strip its mode, and hand files
 * and folders on at once (links wait for the end of the pass). */
static int pass_begin(const struct manifest_entry *e, void *ctx)
{
	struct check_ctx *cc = ctx;

	strip_mode(cc->g, (struct manifest_entry *)e);
	if (e->type == 'l' || !cc->then || !cc->then->begin)
		return 0;
	return cc->then->begin(e, cc->then->ctx);
}

static int pass_data(const void *buf, size_t len, void *ctx)
{
	struct check_ctx *cc = ctx;

	return cc->then && cc->then->data ? cc->then->data(buf, len, cc->then->ctx) : 0;
}

static int pass_end(const struct manifest_entry *e, void *ctx)
{
	struct check_ctx *cc = ctx;

	if (e->type == 'l' || !cc->then || !cc->then->end)
		return 0;
	return cc->then->end(e, cc->then->ctx);
}

/* Every link resolved inside the root: hand them on. */
static int hand_links(struct check_ctx *cc)
{
	const struct manifest *m = &cc->s->manifest;
	size_t i;
	int rc = 0;

	for (i = 0; !rc && cc->then && i < m->n; i++) {
		if (m->e[i].type != 'l')
			continue;
		if (cc->then->begin)
			rc = cc->then->begin(&m->e[i], cc->then->ctx);
		if (!rc && cc->then->end)
			rc = cc->then->end(&m->e[i], cc->then->ctx);
	}
	return rc;
}

int plan_check_archive(struct snapshot *s, struct plan_guard *g, struct archive_snapshot_reader *r,
		       const struct archive_snapshot_visit *then)
{
	struct check_ctx cc = {s, g, then};
	struct archive_snapshot_visit v = {0};
	int rc;

	/* one pass over the archive: each entry's own checks first, then the
	 * entry against the manifest; at the end the manifest equals the
	 * archive, so all its names were checked too, and its links can be
	 * resolved through each other */
	v.pre = check_entry;
	v.pre_ctx = &cc;
	v.begin = pass_begin;
	v.data = pass_data;
	v.end = pass_end;
	v.ctx = &cc;
	rc = check_sizes(&s->manifest, g);
	if (!rc)
		rc = archive_snapshot_check(r, &s->manifest, &v);
	if (!rc)
		rc = plan_check_links(&s->manifest, g->stores);
	if (!rc)
		rc = hand_links(&cc);
	if (rc)
		err_wrap(rc, "snapshot %.12s", s->id);
	return rc;
}

int plan_check_snapshot(struct snapshot *s, struct plan_guard *g)
{
	struct archive_snapshot_reader *r = NULL;
	int rc;

	rc = archive_snapshot_open(&r, s->archive, s->archive_len);
	if (rc)
		err_wrap(rc, "snapshot %.12s", s->id);
	else
		rc = plan_check_archive(s, g, r, NULL);
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

/* Whether a store of the target's inventory lies below dir: a folder
 * holding a store is never removed. */
static bool holds_store(const struct plan *p, const char *dir)
{
	size_t i, n = strlen(dir);

	for (i = 0; i < p->stores.n; i++)
		if (strncmp(p->stores.v[i].path, dir, n) == 0 && p->stores.v[i].path[n] == '/')
			return true;
	return false;
}

static int classify_pair(struct plan *p, size_t *cap, const struct manifest_entry *s,
			 const struct manifest_entry *l, struct fsys *fs)
{
	const struct config_gateway *t = p->target;
	const char *path = s ? s->path : l->path;
	struct walk_rules rules;
	uint32_t uid = 0, gid = 0;

	snapshot_rules(&rules, t);
	rules.mailbox_store = p->store_patterns;
	if (glob_match_any_at_or_above(t->preserve.v, path))
		return add_change(p, cap, PLAN_PRESERVE, s, l, fs), 0;
	if (s && !l && walk_classify(&rules, path, s->type == 'd') != WALK_CONFIG)
		return add_change(p, cap, PLAN_KEEP, s, NULL, fs), 0;
	/* below a folder the snapshot's gateway calls a store (the target's
	 * own stores are never walked): the target's, left alone */
	if (!s && (in_store(path, (char *const *const[2]){p->store_patterns, NULL}) ||
		   (l->type == 'd' && holds_store(p, path))))
		return add_change(p, cap, PLAN_KEEP, NULL, l, fs), 0;
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
	const char **paths = xcalloc(p->n ? p->n : 1, sizeof(*paths));
	struct fsys_op *ops;
	char **dirs;
	size_t i, k = 0, n;
	int rc;

	for (i = 0; i < p->n; i++)
		if (p->c[i].op == PLAN_ADD || p->c[i].op == PLAN_MODIFY)
			paths[k++] = p->c[i].snap->path;
	/* every folder once, all in one batch (over SFTP one round trip) */
	dirs = fsys_parents(paths, k, &n);
	ops = xcalloc(n ? n : 1, sizeof(*ops));
	for (i = 0; i < n; i++) {
		ops[i].kind = FSYS_OP_LSTAT;
		ops[i].path = dirs[i];
	}
	rc = fsys_batch(fs, ops, n);
	/* one missing is fine (it is made); one that is not a folder refuses
	 * the first change under it */
	for (i = 0; !rc && i < n; i++) {
		size_t c, len = strlen(dirs[i]);

		if (ops[i].rc || ops[i].st.type == FSYS_DIR)
			continue;
		for (c = 0; c < k && !rc; c++)
			if (strncmp(paths[c], dirs[i], len) == 0 && paths[c][len] == '/')
				rc = err_set(
				    MSGW_EHOSTILE,
				    "refusing to write '%s': '%s' on the target is not a directory",
				    paths[c], dirs[i]);
	}
	free(ops);
	fsys_free_names(dirs, n);
	free(paths);
	return rc;
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
	const char **paths = xcalloc(live->n ? live->n : 1, sizeof(*paths));
	uint64_t *sizes = xcalloc(live->n ? live->n : 1, sizeof(*sizes));
	size_t i, k = 0;
	int rc;

	for (i = 0; i < live->n; i++) {
		if (live->e[i].type != 'f' || live->e[i].size > RECORD_FILE_MAX)
			continue;
		paths[k] = live->e[i].path;
		sizes[k++] = live->e[i].size;
	}
	/* over SFTP many are fetched at once, not a round trip or more each */
	rc = fsys_prefetch(fs, paths, sizes, k);
	for (i = 0; !rc && i < k; i++) {
		char *data = NULL;
		size_t len = 0;

		rc = fsys_read_all(fs, paths[i], &data, &len);
		if (!rc)
			add_records(recs, paths[i], data, len);
		free(data);
	}
	fsys_prefetch(fs, NULL, NULL, 0);
	free(paths);
	free(sizes);
	return rc;
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

/* Take the changes under preserve patterns out of d: a restore never
 * writes there, so nothing there would be lost (a host certificate added
 * on the target, say). */
static void drop_preserved_changes(struct plan *p, struct manifest_diff *d)
{
	size_t i, kept = 0;

	for (i = 0; i < d->n; i++) {
		const struct manifest_change *c = &d->c[i];
		const char *path = (c->new_e ? c->new_e : c->old_e)->path;

		if (glob_match_any_at_or_above(p->target->preserve.v, path)) {
			if (c->kind == 'A')
				d->added--;
			else if (c->kind == 'D')
				d->removed--;
			else
				d->modified--;
			continue;
		}
		d->c[kept++] = d->c[i];
	}
	d->n = kept;
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
	drop_preserved_changes(p, &d);
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
	size_t i;
	int rc;

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

/* The target's and the snapshot's gateway's store patterns, as one list. */
static char **join_patterns(char *const *const lists[2])
{
	size_t n = 0, k, i;
	char **v;

	for (k = 0; k < 2; k++)
		for (i = 0; lists[k] && lists[k][i]; i++)
			n++;
	v = xcalloc(n + 1, sizeof(*v));
	n = 0;
	for (k = 0; k < 2; k++)
		for (i = 0; lists[k] && lists[k][i]; i++)
			v[n++] = lists[k][i];
	return v;
}

static int check_leftovers_in(struct plan *p, struct fsys *fs, const char *dir)
{
	struct fsys_dirent *ents = NULL;
	size_t n = 0, i;
	int rc;

	rc = fsys_list(fs, dir, &ents, &n);
	if (rc == MSGW_ENOTFOUND && *dir)
		rc = 0; /* gone since the walk: the walk's business */
	for (i = 0; !rc && i < n; i++) {
		char *path;

		if (!plan_is_reserved_name(ents[i].name))
			continue;
		path = fsys_join(dir, ents[i].name);
		rc =
		    err_set(MSGW_ERR,
			    "'%s' on target '%s' is left over from an earlier restore; run "
			    "'msgw-restore recover %s' first (or 'msgw-restore confirm %s' while a "
			    "confirm window is open); if recover finds nothing to do, remove it "
			    "by hand",
			    path, p->target->name, p->target->name, p->target->name);
		free(path);
	}
	fsys_dirents_free(ents, n);
	return rc;
}

/* What an earlier restore left on the target (staged files, backups, its
 * journal and temporary files) in any folder a restore writes: restoring
 * over it would take those for its own or overwrite a rollback copy. */
static int check_leftovers(struct plan *p, struct fsys *fs)
{
	size_t i;
	int rc = check_leftovers_in(p, fs, "");

	for (i = 0; !rc && i < p->live.n; i++)
		if (p->live.e[i].type == 'd')
			rc = check_leftovers_in(p, fs, p->live.e[i].path);
	return rc;
}

static void stripped_note(struct plan *p)
{
	const struct plan_guard *g = &p->guard;
	struct buf b;
	size_t i;

	if (!g->nstripped)
		return;
	buf_init(&b);
	buf_addf(&b,
		 "%zu entr%s had set-ID, sticky or group/other-write bits, stripped on "
		 "restore:",
		 g->nstripped, g->nstripped == 1 ? "y" : "ies");
	for (i = 0; i < g->nstripped && i < 20; i++)
		buf_addf(&b, " '%s' %04o -> %04o", g->stripped[i].path, g->stripped[i].from,
			 g->stripped[i].to);
	if (g->nstripped > 20)
		buf_addf(&b, " ... (%zu more)", g->nstripped - 20);
	add_note(p, "snapshot", b.data);
	buf_release(&b);
}

int plan_build(struct plan *out, struct repo *r, const char *id, const struct config *cfg,
	       const struct config_gateway *target, struct fsys *fs, const char *only)
{
	struct walk_stats ws;
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
	plan_guard_init(&out->guard, cfg, target, g);
	out->store_patterns = join_patterns(out->guard.stores);
	rc = plan_check_snapshot(&out->snap, &out->guard);
	snapshot_rules(&rules, target);
	if (!rc)
		rc = walk_location(&out->live, fs, &rules, &ws);
	if (!rc && ws.internal) /* the walk saw some: find and name one */
		rc = check_leftovers(out, fs);
	if (!rc)
		rc = walk_hash(&out->live, fs, NULL);
	rules.mailbox_store = out->store_patterns;
	if (!rc)
		rc = gateway_inventory_read(&out->stores, fs, &rules);
	if (!rc)
		rc = compute_changes(out, fs);
	if (!rc)
		rc = check_target_parents(out, fs);
	if (!rc)
		rc = analyse(out, r, fs);
	if (!rc)
		stripped_note(out);
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
	plan_guard_release(&p->guard);
	free(p->store_patterns);
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
