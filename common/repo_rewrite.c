/*
 * repo_rewrite: the repository side of pruning (part of the repo module;
 * with repo.c and repo_remote.c the only files that include git2.h).
 *
 * Rewriting a branch recreates the commits after the first dropped one on
 * their new parents, keeping tree, author, committer and message, so stock
 * git shows the same history minus the dropped snapshots.  Repacking is
 * what "git gc --prune=now" does, done with libgit2's packbuilder because
 * libgit2 has no gc: every object reachable from a reference goes into one
 * new pack, and only once that pack is written, fsync'd and indexed are
 * the loose objects and older packs deleted.  Reflog entries naming
 * objects that are gone are dropped, so "git fsck --strict" stays clean.
 *
 * What this does not do: rewrite merge commits' other parents (snapshot
 * branches have none), keep extra commit headers such as signatures, or
 * honour .keep files (a prune must really remove the dropped archives).
 */
#include "err.h"
#include "log.h"
#include "prune.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/odb_backend.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int git_fail(int code, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(code, "%s: %s", what, e && e->message ? e->message : "unknown git error");
}

/* The repository's own libgit2 handle (repo.c keeps its handle private). */
static int open_git(git_repository **out, struct repo *r)
{
	repo_global_init();
	if (git_repository_open_bare(out, repo_path(r)) < 0) {
		const git_error *e = git_error_last();

		return err_set(MSGW_ERR, "cannot open repository '%s': %s", repo_path(r),
			       e && e->message ? e->message : "unknown git error");
	}
	return 0;
}

static char *oid_dup(const git_oid *oid)
{
	char *s = xmalloc(REPO_ID_LEN);

	git_oid_tostr(s, REPO_ID_LEN, oid);
	return s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int repo_tagged_commits(char ***ids_out, size_t *n_out, struct repo *r)
{
	git_repository *g = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref;
	char **ids = NULL;
	size_t n = 0;
	int rc;

	*ids_out = NULL;
	*n_out = 0;
	rc = open_git(&g, r);
	if (rc)
		return rc;
	if (git_reference_iterator_glob_new(&it, g, "refs/tags/*") < 0) {
		rc = git_fail(MSGW_ERR, "cannot list tags");
		goto cleanup;
	}
	while (git_reference_next(&ref, it) == 0) {
		git_object *obj = NULL;

		if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
			ids = xrealloc(ids, (n + 1) * sizeof(*ids));
			ids[n++] = oid_dup(git_object_id(obj));
		}
		git_object_free(obj);
		git_reference_free(ref);
	}
	if (n > 1)
		qsort(ids, n, sizeof(*ids), cmp_str);
	*ids_out = ids;
	*n_out = n;
	ids = NULL;
cleanup:
	git_reference_iterator_free(it);
	git_repository_free(g);
	return rc;
}

/* ---- rewriting a branch -------------------------------------------------- */

struct oid_pair {
	git_oid old_id, new_id;
};

static int cmp_pair(const void *a, const void *b)
{
	return git_oid_cmp(&((const struct oid_pair *)a)->old_id,
			   &((const struct oid_pair *)b)->old_id);
}

static const git_oid *map_find(const struct oid_pair *map, size_t n, const git_oid *old_id)
{
	struct oid_pair key;
	const struct oid_pair *hit;

	if (!n)
		return NULL;
	git_oid_cpy(&key.old_id, old_id);
	hit = bsearch(&key, map, n, sizeof(*map), cmp_pair);
	return hit ? &hit->new_id : NULL;
}

/* The first-parent chain from the tip to the root. */
static int read_chain(git_oid **chain_out, size_t *n_out, git_repository *g, const git_oid *tip)
{
	git_oid *chain = NULL, cur;
	size_t n = 0;
	int rc = 0;

	git_oid_cpy(&cur, tip);
	for (;;) {
		git_commit *c = NULL;
		int more;

		if (git_commit_lookup(&c, g, &cur) < 0) {
			rc = git_fail(MSGW_ECORRUPT, "cannot read snapshot");
			break;
		}
		chain = xrealloc(chain, (n + 1) * sizeof(*chain));
		git_oid_cpy(&chain[n++], &cur);
		more = git_commit_parentcount(c) > 0;
		if (more)
			git_oid_cpy(&cur, git_commit_parent_id(c, 0));
		git_commit_free(c);
		if (!more)
			break;
	}
	if (rc) {
		free(chain);
		chain = NULL;
		n = 0;
	}
	*chain_out = chain;
	*n_out = n;
	return rc;
}

/* Mark which chain entries are dropped; every id must be on the chain and
 * not be its tip. */
static int mark_drops(bool *dropped, const git_oid *chain, size_t n, const char *branch,
		      char *const *drop, size_t ndrop)
{
	size_t i, j;
	git_oid oid;

	for (i = 0; i < ndrop; i++) {
		if (git_oid_fromstr(&oid, drop[i]) < 0)
			return err_set(MSGW_ERR, "bad commit id '%s'", drop[i]);
		for (j = 0; j < n && !git_oid_equal(&chain[j], &oid); j++)
			;
		if (j == n)
			return err_set(MSGW_ERR, "snapshot %.12s is not on branch '%s'", drop[i],
				       branch);
		if (j == 0)
			return err_set(MSGW_ERR,
				       "snapshot %.12s is the tip of '%s' and cannot be "
				       "dropped",
				       drop[i], branch);
		dropped[j] = true;
	}
	return 0;
}

/* Recreate commit c on parent (NULL: a root), same everything else. */
static int recreate(git_oid *out, git_repository *g, git_commit *c, git_commit *parent)
{
	git_tree *tree = NULL;
	const git_commit *parents[1];
	int rc = 0;

	parents[0] = parent;
	if (git_commit_tree(&tree, c) < 0 ||
	    git_commit_create(out, g, NULL, git_commit_author(c), git_commit_committer(c),
			      git_commit_message_encoding(c), git_commit_message_raw(c), tree,
			      parent ? 1 : 0, parents) < 0)
		rc = git_fail(MSGW_ERR, "cannot write rewritten snapshot");
	git_tree_free(tree);
	return rc;
}

/* Rebuild chain[n-1] (root) .. chain[0] (tip) without the dropped ones;
 * fills map with the commits that got new ids and *tip_out. */
static int rebuild(git_oid *tip_out, struct oid_pair **map_out, size_t *nmap_out, git_repository *g,
		   const git_oid *chain, const bool *dropped, size_t n)
{
	struct oid_pair *map = NULL;
	git_commit *parent = NULL, *c = NULL;
	size_t nmap = 0, i;
	bool changed = false;
	int rc = 0;

	for (i = n; !rc && i-- > 0;) {
		git_oid new_id;

		if (dropped[i]) {
			changed = true;
			continue;
		}
		if (git_commit_lookup(&c, g, &chain[i]) < 0) {
			rc = git_fail(MSGW_ECORRUPT, "cannot read snapshot");
			break;
		}
		git_oid_cpy(&new_id, &chain[i]);
		if (changed) {
			rc = recreate(&new_id, g, c, parent);
			if (!rc && !git_oid_equal(&new_id, &chain[i])) {
				map = xrealloc(map, (nmap + 1) * sizeof(*map));
				git_oid_cpy(&map[nmap].old_id, &chain[i]);
				git_oid_cpy(&map[nmap++].new_id, &new_id);
			}
		}
		git_commit_free(c);
		c = NULL;
		git_commit_free(parent);
		parent = NULL;
		if (!rc && git_commit_lookup(&parent, g, &new_id) < 0)
			rc = git_fail(MSGW_ERR, "cannot read rewritten snapshot");
	}
	if (!rc && parent)
		git_oid_cpy(tip_out, git_commit_id(parent));
	git_commit_free(c);
	git_commit_free(parent);
	if (rc) {
		free(map);
		map = NULL;
		nmap = 0;
	}
	if (nmap > 1)
		qsort(map, nmap, sizeof(*map), cmp_pair);
	*map_out = map;
	*nmap_out = nmap;
	return rc;
}

/* Point an annotated tag's copy at new_target: same name, tagger, message. */
static int retag_annotated(git_oid *out, git_repository *g, git_tag *tag, const git_oid *new_target)
{
	git_object *target = NULL;
	git_signature *now = NULL;
	const git_signature *tagger = git_tag_tagger(tag);
	int rc = 0;

	if (!tagger && git_signature_now(&now, "msgw-backup", "msgw-backup@localhost") == 0)
		tagger = now;
	if (git_object_lookup(&target, g, new_target, GIT_OBJECT_COMMIT) < 0 ||
	    git_tag_annotation_create(out, g, git_tag_name(tag), target, tagger,
				      git_tag_message(tag) ? git_tag_message(tag) : "") < 0)
		rc = git_fail(MSGW_ERR, "cannot rewrite tag");
	git_object_free(target);
	git_signature_free(now);
	return rc;
}

/* Where a tag ref should point now, if anywhere new: *moved set when so. */
static int tag_new_target(git_oid *out, bool *moved, git_repository *g, const git_oid *target,
			  const struct oid_pair *map, size_t nmap)
{
	const git_oid *hit = map_find(map, nmap, target);
	git_tag *tag = NULL;
	int rc = 0;

	*moved = false;
	if (hit) {
		git_oid_cpy(out, hit);
		*moved = true;
		return 0;
	}
	if (git_tag_lookup(&tag, g, target) < 0) { /* not an annotated tag */
		git_error_clear();
		return 0;
	}
	hit = map_find(map, nmap, git_tag_target_id(tag));
	if (hit) {
		rc = retag_annotated(out, g, tag, hit);
		*moved = rc == 0;
	}
	git_tag_free(tag);
	return rc;
}

/* The tag refs and their targets, read before any of them moves. */
struct tag_ref {
	char *name;
	git_oid target;
};

static int list_tags(struct tag_ref **out, size_t *n_out, git_repository *g)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	struct tag_ref *tags = NULL;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	if (git_reference_iterator_glob_new(&it, g, "refs/tags/*") < 0)
		return git_fail(MSGW_ERR, "cannot list tags");
	while (git_reference_next(&ref, it) == 0) {
		if (git_reference_target(ref)) {
			tags = xrealloc(tags, (n + 1) * sizeof(*tags));
			tags[n].name = xstrdup(git_reference_name(ref));
			git_oid_cpy(&tags[n++].target, git_reference_target(ref));
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	*out = tags;
	*n_out = n;
	return 0;
}

static int move_tags(size_t *moved_out, git_repository *g, const struct oid_pair *map, size_t nmap)
{
	struct tag_ref *tags = NULL;
	size_t n = 0, i;
	int rc;

	*moved_out = 0;
	if (!nmap)
		return 0;
	rc = list_tags(&tags, &n, g);
	for (i = 0; !rc && i < n; i++) {
		git_reference *moved_ref = NULL;
		git_oid new_id;
		bool moved = false;

		rc = tag_new_target(&new_id, &moved, g, &tags[i].target, map, nmap);
		if (rc || !moved)
			continue;
		if (git_reference_create_matching(&moved_ref, g, tags[i].name, &new_id, 1,
						  &tags[i].target,
						  "msgw-agent prune: rewritten") < 0)
			rc = git_fail(MSGW_ERR, "cannot move tag");
		else
			(*moved_out)++;
		git_reference_free(moved_ref);
	}
	for (i = 0; i < n; i++)
		free(tags[i].name);
	free(tags);
	return rc;
}

static void fill_result(struct repo_rewrite_result *out, const struct oid_pair *map, size_t nmap)
{
	size_t i;

	out->old_ids = xcalloc(nmap ? nmap : 1, sizeof(char *));
	out->new_ids = xcalloc(nmap ? nmap : 1, sizeof(char *));
	for (i = 0; i < nmap; i++) {
		out->old_ids[i] = oid_dup(&map[i].old_id);
		out->new_ids[i] = oid_dup(&map[i].new_id);
	}
	out->nrewritten = nmap;
}

int repo_rewrite_branch(struct repo_rewrite_result *out, struct repo *r, const char *branch,
			char *const *drop, size_t ndrop)
{
	char *refname = xasprintf("refs/heads/%s", branch);
	git_repository *g = NULL;
	git_reference *ref = NULL;
	struct oid_pair *map = NULL;
	git_oid old_tip, new_tip, *chain = NULL;
	bool *dropped = NULL;
	size_t n = 0, nmap = 0;
	int rc, e;

	memset(out, 0, sizeof(*out));
	rc = open_git(&g, r);
	if (rc)
		goto cleanup;
	e = git_reference_name_to_id(&old_tip, g, refname);
	if (e < 0) {
		rc = e == GIT_ENOTFOUND
			 ? err_set(MSGW_ENOTFOUND, "no snapshots of '%s' yet", branch)
			 : git_fail(MSGW_ERR, "cannot read branch");
		goto cleanup;
	}
	git_oid_tostr(out->old_tip, REPO_ID_LEN, &old_tip);
	memcpy(out->new_tip, out->old_tip, REPO_ID_LEN);
	rc = read_chain(&chain, &n, g, &old_tip);
	if (rc)
		goto cleanup;
	dropped = xcalloc(n, sizeof(*dropped));
	rc = mark_drops(dropped, chain, n, branch, drop, ndrop);
	if (rc || !ndrop)
		goto cleanup;
	rc = rebuild(&new_tip, &map, &nmap, g, chain, dropped, n);
	if (rc)
		goto cleanup;
	/* tags first: a crash before the branch moves leaves the tagged
	 * snapshots reachable and the branch as it was */
	rc = move_tags(&out->ntags_moved, g, map, nmap);
	if (rc)
		goto cleanup;
	if (git_reference_create_matching(&ref, g, refname, &new_tip, 1, &old_tip,
					  "msgw-agent prune: rewritten without dropped snapshots") <
	    0) {
		rc = git_error_last() && git_error_last()->klass == GIT_ERROR_REFERENCE
			 ? git_fail(MSGW_ERR, "branch moved while pruning")
			 : git_fail(MSGW_ERR, "cannot update branch");
		goto cleanup;
	}
	git_oid_tostr(out->new_tip, REPO_ID_LEN, &new_tip);
	out->ndropped = ndrop;
	fill_result(out, map, nmap);
cleanup:
	if (rc)
		err_wrap(rc, "gateway '%s'", branch);
	git_reference_free(ref);
	free(map);
	free(dropped);
	free(chain);
	git_repository_free(g);
	free(refname);
	return rc;
}

void repo_rewrite_result_release(struct repo_rewrite_result *res)
{
	if (!res)
		return;
	repo_names_free(res->old_ids, res->nrewritten);
	repo_names_free(res->new_ids, res->nrewritten);
	res->old_ids = res->new_ids = NULL;
	res->nrewritten = 0;
}

/* ---- repacking ----------------------------------------------------------- */

/* Add one reference's target: tags themselves, then what they point at;
 * commits go to the walk (which brings their trees), others recursively. */
static int add_root(git_packbuilder *pb, git_revwalk *walk, git_repository *g, const git_oid *id)
{
	git_oid cur;
	int depth;

	git_oid_cpy(&cur, id);
	for (depth = 0; depth < 16; depth++) {
		git_object *obj = NULL;
		git_object_t type;
		int rc = 0;

		if (git_object_lookup(&obj, g, &cur, GIT_OBJECT_ANY) < 0)
			return git_fail(MSGW_ECORRUPT, "cannot read a referenced object");
		type = git_object_type(obj);
		if (type == GIT_OBJECT_TAG) {
			if (git_packbuilder_insert(pb, &cur, NULL) < 0)
				rc = git_fail(MSGW_ERR, "cannot pack tag");
			git_oid_cpy(&cur, git_tag_target_id((git_tag *)obj));
		} else if (type == GIT_OBJECT_COMMIT) {
			if (git_revwalk_push(walk, &cur) < 0)
				rc = git_fail(MSGW_ERR, "cannot walk history");
		} else if (git_packbuilder_insert_recur(pb, &cur, NULL) < 0) {
			rc = git_fail(MSGW_ERR, "cannot pack object");
		}
		git_object_free(obj);
		if (rc || type != GIT_OBJECT_TAG)
			return rc;
	}
	return err_set(MSGW_ECORRUPT, "tag chain too long");
}

/* A packed-refs file may still hold the old values of refs that now live
 * as loose files: git ignores those, but they would name objects that are
 * gone, so refresh the file from the live refs (what git gc's pack-refs
 * does).  Without a packed-refs file the refs stay loose. */
static int refresh_packed_refs(git_repository *g, const char *gitdir)
{
	char *path = xasprintf("%spacked-refs", gitdir);
	git_refdb *db = NULL;
	int rc = 0;

	if (access(path, F_OK) == 0 &&
	    (git_repository_refdb(&db, g) < 0 || git_refdb_compress(db) < 0))
		rc = git_fail(MSGW_ERR, "cannot pack references");
	git_refdb_free(db);
	free(path);
	return rc;
}

static int add_all_roots(git_packbuilder *pb, git_repository *g)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	git_revwalk *walk = NULL;
	git_oid head;
	int rc = 0;

	if (git_revwalk_new(&walk, g) < 0 || git_reference_iterator_new(&it, g) < 0) {
		rc = git_fail(MSGW_ERR, "cannot list references");
		goto cleanup;
	}
	while (!rc && git_reference_next(&ref, it) == 0) {
		git_reference *res = NULL;

		if (git_reference_resolve(&res, ref) == 0)
			rc = add_root(pb, walk, g, git_reference_target(res));
		else
			git_error_clear(); /* a dangling symbolic ref holds nothing */
		git_reference_free(res);
		git_reference_free(ref);
	}
	if (!rc && git_reference_name_to_id(&head, g, "HEAD") == 0)
		rc = add_root(pb, walk, g, &head);
	git_error_clear();
	if (!rc && git_packbuilder_insert_walk(pb, walk) < 0)
		rc = git_fail(MSGW_ERR, "cannot pack history");
cleanup:
	git_reference_iterator_free(it);
	git_revwalk_free(walk);
	return rc;
}

/* ---- reflogs --------------------------------------------------------------- */

static bool gone(git_odb *odb, const git_oid *id)
{
	return !git_oid_is_zero(id) && !git_odb_exists(odb, id);
}

static int clean_reflog(size_t *dropped, git_repository *g, git_odb *odb, const char *name)
{
	git_reflog *log = NULL;
	size_t i, n0;
	int rc = 0;

	if (git_reflog_read(&log, g, name) < 0)
		return git_fail(MSGW_ERR, "cannot read reflog");
	n0 = git_reflog_entrycount(log);
	for (i = n0; i-- > 0;) {
		const git_reflog_entry *e = git_reflog_entry_byindex(log, i);

		if ((gone(odb, git_reflog_entry_id_old(e)) ||
		     gone(odb, git_reflog_entry_id_new(e))) &&
		    git_reflog_drop(log, i, 0) < 0) {
			rc = git_fail(MSGW_ERR, "cannot edit reflog");
			break;
		}
	}
	if (!rc && git_reflog_entrycount(log) != n0) {
		*dropped += n0 - git_reflog_entrycount(log);
		if (git_reflog_write(log) < 0)
			rc = git_fail(MSGW_ERR, "cannot write reflog");
	}
	git_reflog_free(log);
	if (rc)
		err_wrap(rc, "reflog '%s'", name);
	return rc;
}

/* Every reflog under dir (gitdir/logs/<rel>), recursively. */
static int clean_reflogs_in(size_t *dropped, git_repository *g, git_odb *odb, const char *dir,
			    const char *rel)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0
				       : err_set_errno(MSGW_ERR, errno, "cannot read '%s'", dir);
	while (!rc && (de = readdir(d))) {
		char *path, *name;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		name = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			rc = clean_reflogs_in(dropped, g, odb, path, name);
		else if (S_ISREG(st.st_mode) && !strstr(de->d_name, ".lock"))
			rc = clean_reflog(dropped, g, odb, name);
		free(name);
		free(path);
	}
	closedir(d);
	return rc;
}

/* Drop the reflog entries that name objects not in the new pack. */
static int clean_reflogs(size_t *dropped, git_repository *g, const char *gitdir,
			 const char *new_idx)
{
	git_odb_backend *be = NULL;
	git_odb *odb = NULL;
	char *logs = xasprintf("%slogs", gitdir);
	int rc = 0;

	if (git_odb_new(&odb) < 0 || git_odb_backend_one_pack(&be, new_idx) < 0) {
		rc = git_fail(MSGW_ERR, "cannot read the new pack");
		goto cleanup;
	}
	if (git_odb_add_backend(odb, be, 1) < 0) {
		be->free(be);
		rc = git_fail(MSGW_ERR, "cannot read the new pack");
		goto cleanup;
	}
	rc = clean_reflogs_in(dropped, g, odb, logs, "");
cleanup:
	git_odb_free(odb);
	free(logs);
	return rc;
}

/* ---- deleting what the new pack replaces ----------------------------------- */

static int unlink_counted(size_t *count, const char *path)
{
	if (unlink(path) == 0) {
		if (count)
			(*count)++;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	return err_set_errno(MSGW_ERR, errno, "cannot remove '%s'", path);
}

static int remove_loose(size_t *removed, const char *objdir)
{
	DIR *d = opendir(objdir), *sub;
	struct dirent *de, *se;
	int rc = 0;

	if (!d)
		return err_set_errno(MSGW_ERR, errno, "cannot read '%s'", objdir);
	while (!rc && (de = readdir(d))) {
		char *subdir;

		if (strlen(de->d_name) != 2 || !hex_is_lower(de->d_name, 2))
			continue;
		subdir = xasprintf("%s/%s", objdir, de->d_name);
		sub = opendir(subdir);
		while (!rc && sub && (se = readdir(sub))) {
			char *path;

			if (strlen(se->d_name) != REPO_ID_LEN - 3 ||
			    !hex_is_lower(se->d_name, REPO_ID_LEN - 3))
				continue;
			path = xasprintf("%s/%s", subdir, se->d_name);
			rc = unlink_counted(removed, path);
			free(path);
		}
		if (sub)
			closedir(sub);
		if (!rc)
			rmdir(subdir); /* fails harmlessly when something else is in it */
		free(subdir);
	}
	closedir(d);
	return rc;
}

/* Remove every pack in packdir except keep ("pack-<hex>"), .idx first so no
 * reader sees an index without its pack. */
static int remove_old_packs(size_t *removed, const char *packdir, const char *keep)
{
	static const char *const exts[] = {".idx",  ".pack",	 ".rev",   ".bitmap",
					   ".keep", ".promisor", ".mtimes"};
	DIR *d = opendir(packdir);
	struct dirent *de;
	char **bases = NULL;
	size_t nbases = 0, i, j;
	int rc = 0;

	if (!d)
		return err_set_errno(MSGW_ERR, errno, "cannot read '%s'", packdir);
	while ((de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');

		if (strncmp(de->d_name, "pack-", 5) != 0 || !dot ||
		    (strcmp(dot, ".pack") != 0 && strcmp(dot, ".idx") != 0))
			continue;
		if (strncmp(de->d_name, keep, strlen(keep)) == 0 &&
		    de->d_name + strlen(keep) == dot)
			continue;
		bases = xrealloc(bases, (nbases + 1) * sizeof(*bases));
		bases[nbases++] = xstrndup(de->d_name, (size_t)(dot - de->d_name));
	}
	closedir(d);
	if (nbases > 1)
		qsort(bases, nbases, sizeof(*bases), cmp_str);
	for (i = 0; !rc && i < nbases; i++) {
		if (i > 0 && strcmp(bases[i], bases[i - 1]) == 0)
			continue; /* .idx and .pack of one pack */
		for (j = 0; !rc && j < sizeof(exts) / sizeof(exts[0]); j++) {
			char *path = xasprintf("%s/%s%s", packdir, bases[i], exts[j]);

			rc = unlink_counted(j == 1 ? removed : NULL, path);
			free(path);
		}
	}
	repo_names_free(bases, nbases);
	return rc;
}

/* Files describing the old packs and commits: stale once they are gone. */
static int remove_pack_metadata(const char *objdir)
{
	static const char *const files[] = {"pack/multi-pack-index", "info/commit-graph",
					    "info/packs"};
	char *path, *graphs = xasprintf("%s/info/commit-graphs", objdir);
	DIR *d = opendir(graphs);
	struct dirent *de;
	size_t i;
	int rc = 0;

	for (i = 0; !rc && i < sizeof(files) / sizeof(files[0]); i++) {
		path = xasprintf("%s/%s", objdir, files[i]);
		rc = unlink_counted(NULL, path);
		free(path);
	}
	while (!rc && d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", graphs, de->d_name);
		rc = unlink_counted(NULL, path);
		free(path);
	}
	if (d) {
		closedir(d);
		rmdir(graphs);
	}
	free(graphs);
	return rc;
}

int repo_repack(struct repo_repack_result *out, struct repo *r)
{
	git_repository *g = NULL;
	git_packbuilder *pb = NULL;
	char *objdir = NULL, *packdir = NULL, *keep = NULL, *idx = NULL;
	const char *gitdir;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = open_git(&g, r);
	if (rc)
		return rc;
	gitdir = git_repository_path(g); /* ends in '/' */
	objdir = xasprintf("%sobjects", gitdir);
	packdir = xasprintf("%s/pack", objdir);
	if (git_packbuilder_new(&pb, g) < 0) {
		rc = git_fail(MSGW_ERR, "cannot repack");
		goto cleanup;
	}
	git_packbuilder_set_threads(pb, 0);
	rc = refresh_packed_refs(g, gitdir);
	if (!rc)
		rc = add_all_roots(pb, g);
	if (rc)
		goto cleanup;
	out->objects = git_packbuilder_object_count(pb);
	if (out->objects == 0) {
		log_info("repack: no references, nothing to pack");
		goto cleanup;
	}
	if (mkdir(packdir, 0700) < 0 && errno != EEXIST) {
		rc = err_set_errno(MSGW_ERR, errno, "cannot create '%s'", packdir);
		goto cleanup;
	}
	/* libgit2's indexer fsyncs the pack, its index and the directory
	 * (fsync is on, see repo_global_init); sync once more to be sure */
	if (git_packbuilder_write(pb, packdir, 0, NULL, NULL) < 0 || !git_packbuilder_name(pb)) {
		rc = git_fail(MSGW_ERR, "cannot write pack");
		goto cleanup;
	}
	keep = xasprintf("pack-%s", git_packbuilder_name(pb));
	idx = xasprintf("%s/%s.idx", packdir, keep);
	rc = fsync_dir(packdir);
	if (!rc)
		rc = clean_reflogs(&out->reflog_dropped, g, gitdir, idx);
	if (!rc)
		rc = remove_pack_metadata(objdir);
	if (!rc)
		rc = remove_old_packs(&out->packs_removed, packdir, keep);
	if (!rc)
		rc = remove_loose(&out->loose_removed, objdir);
	if (!rc)
		rc = fsync_dir(packdir);
	if (!rc)
		rc = fsync_dir(objdir);
cleanup:
	if (rc)
		err_wrap(rc, "repack '%s'", repo_path(r));
	git_packbuilder_free(pb);
	git_repository_free(g);
	free(idx);
	free(keep);
	free(packdir);
	free(objdir);
	return rc;
}
