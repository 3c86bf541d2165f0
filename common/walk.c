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
#include <pthread.h>
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

struct walker {
	struct fsys *fs;
	const struct walk_rules *rules;
	struct manifest *m;
	struct walk_stats *st;
	struct owner_cache users, groups;
	bool split; /* the walk already has its second thread */
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
			if (rc)
				return rc;
		}
		if (!sub && !included) {
			/* an empty directory nobody asked for: drop it again */
			struct manifest_entry *e = &w->m->e[idx];

			free(e->path), free(e->uname), free(e->gname);
			memmove(e, e + 1, (w->m->n - idx - 1) * sizeof(*e));
			w->m->n--;
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

/* Visit the entries of dir that pick() accepts (all when pick is NULL). */
static int visit_some(struct walker *w, const char *dir, const struct fsys_dirent *ents, size_t n,
		      const bool *pick, bool want, bool included, bool *has_config)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < n; i++) {
		char *path;

		if (pick && pick[i] != want)
			continue;
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

/*
 * A second thread for a directory with many subdirectories to walk (on a
 * local file system; an SFTP session is not shared between threads): it
 * walks every other one of them into its own manifest, which joins this
 * walk's afterwards (walk_location sorts at the end).  The stat and
 * directory reads a walk is made of then run on two cores.  One split per
 * walk.
 */
#define WALK_SPLIT_DIRS 16

struct half {
	struct walker w;
	struct manifest m;
	struct walk_stats st;
	const char *dir;
	const struct fsys_dirent *ents;
	size_t n;
	const bool *pick;
	bool included;
	bool any;
	int rc;
	char msg[1024];
};

static void *half_main(void *arg)
{
	struct half *h = arg;

	h->rc = visit_some(&h->w, h->dir, h->ents, h->n, h->pick, true, h->included, &h->any);
	if (h->rc)
		snprintf(h->msg, sizeof(h->msg), "%s", err_last());
	return NULL;
}

static void stats_add(struct walk_stats *to, const struct walk_stats *from)
{
	to->files += from->files;
	to->dirs += from->dirs;
	to->links += from->links;
	to->stores += from->stores;
	to->excluded += from->excluded;
	to->skipped += from->skipped;
	to->internal += from->internal;
	to->bytes += from->bytes;
}

/* Walk dir's entries on two threads when worth it: 1 when done (rc in
 * *rc_out), 0 when the caller should walk them alone. */
static int visit_split(struct walker *w, const char *dir, const struct fsys_dirent *ents, size_t n,
		       bool included, bool *has_config, int *rc_out)
{
	bool *pick = NULL;
	size_t i, dirs = 0;
	struct half h;
	pthread_t t;
	int rc;

	if (w->split || n < WALK_SPLIT_DIRS || strcmp(w->fs->ops->scheme, "file") != 0)
		return 0;
	pick = xcalloc(n, sizeof(*pick));
	for (i = 0; i < n; i++) {
		char *path;

		if (ents[i].st.type != FSYS_DIR || walk_is_internal_name(ents[i].name))
			continue;
		path = fsys_join(dir, ents[i].name);
		if (!walk_is_store(w->rules, path) && !all_below_excluded(w->rules, path))
			pick[i] = dirs++ % 2 == 1; /* every other subdirectory */
		free(path);
	}
	memset(&h, 0, sizeof(h));
	if (dirs < WALK_SPLIT_DIRS) {
		free(pick);
		return 0;
	}
	w->split = true;
	manifest_init(&h.m);
	h.w =
	    (struct walker){.fs = w->fs, .rules = w->rules, .m = &h.m, .st = &h.st, .split = true};
	h.dir = dir, h.ents = ents, h.n = n, h.pick = pick, h.included = included;
	if (pthread_create(&t, NULL, half_main, &h) != 0) {
		free(pick);
		return 0; /* walk them alone */
	}
	rc = visit_some(w, dir, ents, n, pick, false, included, has_config);
	pthread_join(t, NULL);
	if (!rc && h.rc)
		rc = err_set(h.rc, "%s", h.msg);
	if (!rc) {
		manifest_take_all(w->m, &h.m);
		stats_add(w->st, &h.st);
		*has_config = *has_config || h.any;
	}
	manifest_release(&h.m);
	owner_cache_release(&h.w.users);
	owner_cache_release(&h.w.groups);
	free(pick);
	*rc_out = rc;
	return 1;
}

/* included: dir, or a directory above it, matches an include pattern */
static int walk_dir(struct walker *w, const char *dir, bool included, bool *has_config)
{
	struct fsys_dirent *ents = NULL;
	size_t n = 0;
	int rc;

	rc = fsys_list(w->fs, dir, &ents, &n);
	if (rc == 0 && !visit_split(w, dir, ents, n, included, has_config, &rc))
		rc = visit_some(w, dir, ents, n, NULL, false, included, has_config);
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
	rc = walk_dir(&w, "", false, &any);
	owner_cache_release(&w.users);
	owner_cache_release(&w.groups);
	if (rc) {
		manifest_release(out);
		return rc;
	}
	manifest_sort(out);
	return 0;
}
