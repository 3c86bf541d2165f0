/*
 * walk: recursive traversal of a location with classification (hashing
 * what it found is in walk_hash.c).  The walk never opens a mailbox
 * store: a store is recognised by its directory name alone, so the cost of a
 * snapshot does not depend on how much mail the gateway holds.
 */
#include "walk.h"
#include "err.h"
#include "glob.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *const default_include[] = {"**", NULL};

static char *const *include_of(const struct walk_rules *rules)
{
	return rules->include ? rules->include : default_include;
}

bool walk_is_mailbox_name(const char *name)
{
	int i;

	if (strncmp(name, "mbx-", 4) != 0)
		return false;
	for (i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)name[4 + i]))
			return false;
	return name[36] == '\0';
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

bool walk_is_store(const struct walk_rules *rules, const char *path)
{
	return walk_is_mailbox_name(base_name(path)) || glob_match_any(rules->mailbox_store, path);
}

/*
 * parent_included NULL: nothing is known of path's parent directories, so
 * each of them is matched too.  Else path is an entry of a directory the
 * walk is in: that directory and every one above it are not excluded (or
 * the walk would not have entered it), and *parent_included says whether
 * one of them is included, so only path's own name is matched.
 */
static bool is_excluded(const struct walk_rules *rules, const char *path,
			const bool *parent_included)
{
	return parent_included ? glob_match_any(rules->exclude, path)
			       : glob_match_any_at_or_above(rules->exclude, path);
}

static bool is_included(const struct walk_rules *rules, const char *path,
			const bool *parent_included)
{
	if (!parent_included)
		return glob_match_any_at_or_above(include_of(rules), path);
	return *parent_included || glob_match_any(include_of(rules), path);
}

static enum walk_class classify(const struct walk_rules *rules, const char *path, bool is_dir,
				const bool *parent_included)
{
	if (is_dir && walk_is_store(rules, path))
		return WALK_STORE;
	if (is_excluded(rules, path, parent_included))
		return WALK_EXCLUDED;
	if (is_dir || is_included(rules, path, parent_included))
		return WALK_CONFIG;
	return WALK_EXCLUDED;
}

enum walk_class walk_classify(const struct walk_rules *rules, const char *path, bool is_dir)
{
	return classify(rules, path, is_dir, NULL);
}

static bool all_below_excluded(const struct walk_rules *rules, const char *dir)
{
	char *const *p;

	for (p = rules->exclude; p && *p; p++)
		if (glob_matches_all_below(*p, dir))
			return true;
	return false;
}

/* Owner and group names, looked up once per id and walk: a lookup reads
 * the whole passwd or group file, which would otherwise dominate the cost
 * of an unchanged snapshot. */
#define OWNER_CACHE 16

struct owner_cache {
	uint32_t id[OWNER_CACHE];
	char *name[OWNER_CACHE]; /* NULL: the id has no name */
	size_t n;
};

/* A folder listed ahead (prelist), waiting for the walk to come by. */
struct listed {
	char *dir;
	struct fsys_listing l;
};

struct walker {
	struct fsys *fs;
	const struct walk_rules *rules;
	struct manifest *m;
	struct walk_stats *st;
	struct owner_cache users, groups;
	struct listed *listed; /* sorted by dir */
	size_t n_listed;
};

static char *owner_name(struct walker *w, struct owner_cache *c, uint32_t id, bool group)
{
	char name[256];
	char *found = NULL;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->id[i] == id)
			return c->name[i] ? xstrdup(c->name[i]) : NULL;
	if ((group ? fsys_gname(w->fs, id, name, sizeof(name))
		   : fsys_uname(w->fs, id, name, sizeof(name))) == 0)
		found = name;
	if (c->n < OWNER_CACHE) {
		c->id[c->n] = id;
		c->name[c->n++] = found ? xstrdup(found) : NULL;
	}
	return found ? xstrdup(found) : NULL;
}

static void owner_cache_release(struct owner_cache *c)
{
	while (c->n)
		free(c->name[--c->n]);
}

static void fill_owner(struct walker *w, struct manifest_entry *e)
{
	if (w->rules->ids_only)
		return;
	e->uname = owner_name(w, &w->users, e->uid, false);
	e->gname = owner_name(w, &w->groups, e->gid, true);
}

static struct manifest_entry *add_entry(struct walker *w, char type, const char *path,
					const struct fsys_stat *s)
{
	struct manifest_entry *e = manifest_add(w->m, type, path);

	e->mode = s->mode;
	e->uid = s->uid;
	e->gid = s->gid;
	e->size = type == 'f' ? s->size : 0;
	e->mtime = s->mtime;
	e->mtime_nsec = s->mtime_nsec;
	e->ctime = s->ctime;
	e->ctime_nsec = s->ctime_nsec;
	e->ino = s->ino;
	fill_owner(w, e);
	return e;
}

static int walk_dir(struct walker *w, const char *dir, bool included, bool *has_config);

/* Remove the entries from idx on (the last ones added). */
static void drop_from(struct walker *w, size_t idx)
{
	size_t i;

	for (i = idx; i < w->m->n; i++)
		w->m->e[i].gone = true;
	manifest_drop_gone(w->m);
}

/* parent_included: the directory path is in, or one above it, matches an
 * include pattern */
static int visit(struct walker *w, const char *path, const struct fsys_stat *s,
		 bool parent_included, bool *any)
{
	bool is_dir = s->type == FSYS_DIR, sub = false;
	enum walk_class c = classify(w->rules, path, is_dir, &parent_included);
	size_t idx;
	int rc;

	if (c == WALK_STORE) {
		w->st->stores++;
		return 0;
	}
	if (c == WALK_EXCLUDED) {
		w->st->excluded++;
		return 0;
	}
	if (s->type == FSYS_FILE) {
		add_entry(w, 'f', path, s);
		w->st->files++;
		w->st->bytes += s->size;
	} else if (s->type == FSYS_LINK) {
		struct manifest_entry *e = add_entry(w, 'l', path, s);

		rc = fsys_readlink(w->fs, path, &e->link);
		if (walk_vanished(w->fs, e, rc)) {
			drop_from(w, w->m->n - 1);
			return 0;
		}
		if (rc)
			return rc;
		e->size = strlen(e->link);
		w->st->links++;
	} else if (is_dir) {
		bool included = glob_match_any(include_of(w->rules), path);

		idx = w->m->n;
		add_entry(w, 'd', path, s);
		if (!all_below_excluded(w->rules, path)) {
			rc = walk_dir(w, path, parent_included || included, &sub);
			if (walk_vanished(w->fs, &w->m->e[idx], rc)) {
				drop_from(w, idx); /* with what was found below */
				return 0;
			}
			if (rc)
				return rc;
		}
		if (!sub && !included) {
			/* an empty directory nobody asked for: drop it again */
			drop_from(w, idx);
			return 0;
		}
		w->st->dirs++;
	} else {
		log_warn("%s: skipping '%s': not a file, directory or link", w->fs->location, path);
		w->st->skipped++;
		return 0;
	}
	*any = true;
	return 0;
}

bool walk_is_internal_name(const char *name)
{
	/* every name the tool writes holds ".msgw-" (its temporary files
	 * too, whatever their suffix), and a restore refuses every such name
	 * in a snapshot (plan_check_entry_name) */
	return strstr(name, WALK_RESERVED_MARK) != NULL;
}

/* Visit the entries of dir, leaving out the tool's own temporary files. */
static int visit_some(struct walker *w, const char *dir, const struct fsys_dirent *ents, size_t n,
		      bool included, bool *has_config)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < n; i++) {
		char *path;

		if (walk_is_internal_name(ents[i].name)) {
			w->st->internal++;
			continue;
		}
		path = fsys_join(dir, ents[i].name);
		rc = visit(w, path, &ents[i].st, included, has_config);
		free(path);
	}
	return rc;
}

static int listed_cmp(const void *a, const void *b)
{
	return strcmp(((const struct listed *)a)->dir, ((const struct listed *)b)->dir);
}

/* Take dir's listing from what prelist found (0), or 1 when it has none. */
static int take_listed(struct walker *w, const char *dir, struct fsys_dirent **ents, size_t *n)
{
	struct listed key = {.dir = (char *)dir}, *l;

	if (!w->n_listed)
		return 1;
	l = bsearch(&key, w->listed, w->n_listed, sizeof(*w->listed), listed_cmp);
	if (!l || !l->l.ok)
		return 1;
	*ents = l->l.ents;
	*n = l->l.n;
	memset(&l->l, 0, sizeof(l->l));
	return 0;
}

static void listed_release(struct walker *w)
{
	size_t i;

	for (i = 0; i < w->n_listed; i++) {
		fsys_dirents_free(w->listed[i].l.ents, w->listed[i].l.n);
		free(w->listed[i].dir);
	}
	free(w->listed);
	w->listed = NULL;
	w->n_listed = 0;
}

struct level {
	char **dir;
	bool *included;
	size_t n, cap;
};

static void level_add(struct level *lv, char *dir, bool included)
{
	if (lv->n == lv->cap) {
		lv->cap = lv->cap ? lv->cap * 2 : 16;
		lv->dir = xrealloc(lv->dir, lv->cap * sizeof(*lv->dir));
		lv->included = xrealloc(lv->included, lv->cap * sizeof(*lv->included));
	}
	lv->dir[lv->n] = dir;
	lv->included[lv->n++] = included;
}

/* The folders below dir (listed as l) that the walk will enter: the same
 * choice visit makes (never a store, never where all is excluded). */
static void children(struct walker *w, struct level *next, const char *dir, bool included,
		     const struct fsys_listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		char *path;

		if (l->ents[i].st.type != FSYS_DIR || walk_is_internal_name(l->ents[i].name))
			continue;
		path = fsys_join(dir, l->ents[i].name);
		if (classify(w->rules, path, true, &included) == WALK_CONFIG &&
		    !all_below_excluded(w->rules, path))
			level_add(next, path,
				  included || glob_match_any(include_of(w->rules), path));
		else
			free(path);
	}
}

/*
 * List ahead, one level of folders at a time, every folder the walk will
 * enter, where the backend lists many at once (SFTP: pipelined requests,
 * so a level costs a few round trips, not a few per folder).  The walk
 * then takes each listing from here; a folder missing here (a failure, a
 * connection error) is listed by the walk itself, which reports it.
 */
static void prelist(struct walker *w)
{
	struct level lv = {0}, next = {0};
	size_t i;

	if (!w->fs->ops->list_many)
		return;
	level_add(&lv, xstrdup(""), false);
	while (lv.n) {
		struct fsys_listing *out = xcalloc(lv.n, sizeof(*out));
		int rc = fsys_list_many(w->fs, (const char *const *)lv.dir, lv.n, out);

		memset(&next, 0, sizeof(next));
		w->listed = xrealloc(w->listed, (w->n_listed + lv.n) * sizeof(*w->listed));
		for (i = 0; i < lv.n; i++) {
			if (!rc && out[i].ok)
				children(w, &next, lv.dir[i], lv.included[i], &out[i]);
			w->listed[w->n_listed].dir = lv.dir[i];
			w->listed[w->n_listed++].l = out[i];
		}
		free(out);
		free(lv.dir);
		free(lv.included);
		lv = next;
		if (rc) {
			err_clear(); /* the walk meets it again and says so */
			break;
		}
	}
	for (i = 0; i < lv.n; i++)
		free(lv.dir[i]);
	free(lv.dir);
	free(lv.included);
	if (w->n_listed > 1)
		qsort(w->listed, w->n_listed, sizeof(*w->listed), listed_cmp);
}

/* included: dir, or a directory above it, matches an include pattern */
static int walk_dir(struct walker *w, const char *dir, bool included, bool *has_config)
{
	struct fsys_dirent *ents = NULL;
	size_t n = 0;
	int rc = 0;

	if (take_listed(w, dir, &ents, &n))
		rc = fsys_list(w->fs, dir, &ents, &n);
	if (rc == 0)
		rc = visit_some(w, dir, ents, n, included, has_config);
	fsys_dirents_free(ents, n);
	return rc;
}

int walk_location(struct manifest *out, struct fsys *fs, const struct walk_rules *rules,
		  struct walk_stats *stats)
{
	struct walk_stats local_stats;
	struct walker w = {.fs = fs, .rules = rules, .m = out, .st = stats ? stats : &local_stats};
	struct fsys_stat root;
	bool any = false;
	int rc;

	manifest_init(out);
	memset(w.st, 0, sizeof(*w.st));
	rc = fsys_stat(fs, "", &root);
	if (rc)
		return err_wrap(rc, "cannot read location '%s'", fs->location);
	if (root.type != FSYS_DIR)
		return err_set(MSGW_ERR, "location '%s' is not a directory", fs->location);
	prelist(&w);
	rc = walk_dir(&w, "", false, &any);
	listed_release(&w);
	owner_cache_release(&w.users);
	owner_cache_release(&w.groups);
	if (rc) {
		manifest_release(out);
		return rc;
	}
	manifest_sort(out);
	return 0;
}
