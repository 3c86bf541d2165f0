/*
 * rewrite (part of the repo module, common/repo/): the repository side of
 * pruning, and the clearing of what a killed run left behind.
 *
 * Rewriting a branch recreates the commits after the first dropped one on
 * their new parents, keeping tree, author, committer and message, so stock
 * git shows the same history minus the dropped snapshots.  The tags on
 * recreated commits and the branch then move together: every ref update
 * is first written to a journal (msgw-prune.journal in the repository,
 * written whole under a temporary name, fsync'd and renamed), then applied
 * ref by ref (tags, then the branch), then the journal is removed.  A run
 * killed in between leaves the journal, and the next run under the
 * repository lock finishes it (repo_lock), so a tag never stays on a
 * commit off its branch.  (libgit2's ref transaction alone was not
 * enough: its commit renames the lock files one by one, so a kill inside
 * it leaves the same half-moved state, with nothing to finish it.)
 *
 * Repacking is stock git, run under our lock (git is a dependency
 * already; libgit2 has no gc): "git repack -a -d" packs what is reachable
 * into one pack, keeps .keep packs and their objects, and deletes a loose
 * object only once the new pack holds it; "git prune --expire" then
 * deletes the unreachable loose objects older than the prune's start, and
 * the repository is one that "git fsck --strict" accepts.  (Not "git gc
 * --prune=<start>": its "repack -A" keeps the unreachable objects of any
 * pack touched since the start, and libgit2 touches ("freshens") a pack
 * whenever it is asked to write an object the pack holds, so the dropped
 * archives could stay.)  Our own deletion
 * code, used before, deleted every loose object and every other pack after
 * its repack; git's gc has the grace period and the checks a tool that
 * must never lose data needs, and years of use behind them.
 *
 * What this does not do: rewrite merge commits' other parents (snapshot
 * branches have none), or keep extra commit headers such as signatures.
 */
#include "repo_internal.h"
#include "err.h"
#include "lock.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define JOURNAL "msgw-prune.journal"

int repo_tagged_commits(char ***ids_out, size_t *n_out, struct repo *r)
{
	git_repository *g = r->g;
	git_reference_iterator *it = NULL;
	git_reference *ref;
	char **ids = NULL;
	size_t n = 0;
	int rc = 0;

	*ids_out = NULL;
	*n_out = 0;
	if (git_reference_iterator_glob_new(&it, g, "refs/tags/*") < 0) {
		rc = repo_git_fail(MSGW_ERR, "cannot list tags");
		goto cleanup;
	}
	while (git_reference_next(&ref, it) == 0) {
		git_object *obj = NULL;

		if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
			ids = xrealloc(ids, (n + 1) * sizeof(*ids));
			ids[n++] = repo_oid_dup(git_object_id(obj));
		}
		git_object_free(obj);
		git_reference_free(ref);
	}
	if (n > 1)
		qsort(ids, n, sizeof(*ids), repo_cmp_str);
	*ids_out = ids;
	*n_out = n;
	ids = NULL;
cleanup:
	git_reference_iterator_free(it);
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
			rc = repo_git_fail(MSGW_ECORRUPT, "cannot read snapshot");
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
		rc = repo_git_fail(MSGW_ERR, "cannot write rewritten snapshot");
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
			rc = repo_git_fail(MSGW_ECORRUPT, "cannot read snapshot");
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
			rc = repo_git_fail(MSGW_ERR, "cannot read rewritten snapshot");
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
		rc = repo_git_fail(MSGW_ERR, "cannot rewrite tag");
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
		return repo_git_fail(MSGW_ERR, "cannot list tags");
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

/* One ref update of the journal. */
struct ref_move {
	char *name;
	git_oid from, to;
};

static void moves_free(struct ref_move *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(m[i].name);
	free(m);
}

static void moves_add(struct ref_move **m, size_t *n, const char *name, const git_oid *from,
		      const git_oid *to)
{
	*m = xrealloc(*m, (*n + 1) * sizeof(**m));
	(*m)[*n].name = xstrdup(name);
	git_oid_cpy(&(*m)[*n].from, from);
	git_oid_cpy(&(*m)[*n].to, to);
	(*n)++;
}

/* The tag refs that must follow the rewritten commits (annotated tags
 * are recreated on their new target now; their refs move with the rest). */
static int tag_moves(struct ref_move **m, size_t *nm, git_repository *g, const struct oid_pair *map,
		     size_t nmap)
{
	struct tag_ref *tags = NULL;
	size_t n = 0, i;
	int rc;

	if (!nmap)
		return 0;
	rc = list_tags(&tags, &n, g);
	for (i = 0; !rc && i < n; i++) {
		git_oid new_id;
		bool moved = false;

		rc = tag_new_target(&new_id, &moved, g, &tags[i].target, map, nmap);
		if (!rc && moved)
			moves_add(m, nm, tags[i].name, &tags[i].target, &new_id);
	}
	for (i = 0; i < n; i++)
		free(tags[i].name);
	free(tags);
	return rc;
}

static char *journal_path(struct repo *r, const char *suffix)
{
	return xasprintf("%s/" JOURNAL "%s", r->gitdir, suffix);
}

/* Write the journal whole: temporary name, fsync, rename, fsync the
 * directory.  Lines "FROM TO REFNAME". */
static int journal_write(struct repo *r, const struct ref_move *m, size_t n)
{
	char *tmp = journal_path(r, ".tmp"), *path = journal_path(r, "");
	char from[REPO_ID_LEN], to[REPO_ID_LEN];
	FILE *f = fopen(tmp, "we");
	size_t i;
	int rc = 0;

	if (!f) {
		rc = err_set_errno(MSGW_ERR, errno, "cannot create '%s'", tmp);
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		repo_oid_str(from, &m[i].from);
		repo_oid_str(to, &m[i].to);
		fprintf(f, "%s %s %s\n", from, to, m[i].name);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write '%s'", tmp);
	if (fclose(f) != 0 && !rc)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write '%s'", tmp);
	if (!rc && rename(tmp, path) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot rename '%s'", tmp);
	if (!rc)
		rc = fsync_dir(r->gitdir);
	if (rc)
		unlink(tmp);
cleanup:
	free(tmp);
	free(path);
	return rc;
}

static int journal_read(struct ref_move **m_out, size_t *n_out, const char *path)
{
	char line[1024], from[REPO_ID_LEN], to[REPO_ID_LEN], name[900];
	FILE *f = fopen(path, "re");
	git_oid a, b;
	int rc = 0;

	*m_out = NULL;
	*n_out = 0;
	if (!f)
		return errno == ENOENT ? MSGW_ENOTFOUND
				       : err_set_errno(MSGW_ERR, errno, "cannot read '%s'", path);
	while (!rc && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%40s %40s %899s", from, to, name) != 3 ||
		    git_oid_fromstr(&a, from) < 0 || git_oid_fromstr(&b, to) < 0)
			rc = err_set(MSGW_ECORRUPT, "bad line in '%s': '%s'", path, line);
		else
			moves_add(m_out, n_out, name, &a, &b);
	}
	fclose(f);
	if (rc) {
		moves_free(*m_out, *n_out);
		*m_out = NULL;
		*n_out = 0;
	}
	return rc;
}

/*
 * Apply the moves in order (tags first, the branch last): each ref moves
 * from its old value to its new one; one at its new value already (a run
 * killed after moving it) is left.  One found elsewhere was moved by
 * something else: left as it is with a warning, and when strict (the
 * prune itself) an error if it is the branch.
 */
static int moves_apply(size_t *moved_out, git_repository *g, const struct ref_move *m, size_t n,
		       bool strict)
{
	size_t i;
	int rc = 0;

	for (i = 0; !rc && i < n; i++) {
		git_reference *ref = NULL;
		git_oid cur;
		int e;

		if (i + 1 == n)
			fault_point("prune-before-branch");
		e = git_reference_name_to_id(&cur, g, m[i].name);
		if (e == 0 && git_oid_equal(&cur, &m[i].to))
			continue;
		if (e < 0 || !git_oid_equal(&cur, &m[i].from)) {
			git_error_clear();
			if (strict && i + 1 == n)
				rc = err_set(MSGW_ERR, "branch moved while pruning");
			else
				log_warn("prune: '%s' moved meanwhile, left as it is", m[i].name);
			continue;
		}
		if (git_reference_create_matching(&ref, g, m[i].name, &m[i].to, 1, &m[i].from,
						  "msgw-agent prune: rewritten") < 0)
			rc = repo_git_fail(MSGW_ERR, "cannot move ref");
		else if (moved_out)
			(*moved_out)++;
		git_reference_free(ref);
	}
	return rc;
}

static int journal_remove(struct repo *r)
{
	char *path = journal_path(r, "");
	int rc = 0;

	if (unlink(path) < 0 && errno != ENOENT)
		rc = err_set_errno(MSGW_ERR, errno, "cannot remove '%s'", path);
	else
		rc = fsync_dir(r->gitdir);
	free(path);
	return rc;
}

/* Finish the ref moves of a prune that was killed before it ended. */
static int journal_finish(struct repo *r)
{
	char *path = journal_path(r, ""), *tmp = journal_path(r, ".tmp");
	struct ref_move *m = NULL;
	size_t n = 0, moved = 0;
	int rc;

	unlink(tmp); /* a journal killed while written was never acted on */
	rc = journal_read(&m, &n, path);
	if (rc == MSGW_ENOTFOUND) {
		rc = 0;
		goto cleanup;
	}
	if (!rc)
		rc = moves_apply(&moved, r->g, m, n, false);
	if (!rc)
		rc = journal_remove(r);
	if (!rc)
		log_warn("finished the ref moves of an interrupted prune: %zu of %zu refs moved "
			 "now ('%s')",
			 moved, n, path);
	else
		err_wrap(rc, "cannot finish an interrupted prune ('%s')", path);
cleanup:
	moves_free(m, n);
	free(tmp);
	free(path);
	return rc;
}

static void fill_result(struct repo_rewrite_result *out, const struct oid_pair *map, size_t nmap)
{
	size_t i;

	out->old_ids = xcalloc(nmap ? nmap : 1, sizeof(char *));
	out->new_ids = xcalloc(nmap ? nmap : 1, sizeof(char *));
	for (i = 0; i < nmap; i++) {
		out->old_ids[i] = repo_oid_dup(&map[i].old_id);
		out->new_ids[i] = repo_oid_dup(&map[i].new_id);
	}
	out->nrewritten = nmap;
}

int repo_rewrite_branch(struct repo_rewrite_result *out, struct repo *r, const char *branch,
			char *const *drop, size_t ndrop)
{
	char *refname = xasprintf("refs/heads/%s", branch);
	git_repository *g = r->g;
	struct oid_pair *map = NULL;
	struct ref_move *moves = NULL;
	git_oid old_tip, new_tip, *chain = NULL;
	bool *dropped = NULL;
	size_t n = 0, nmap = 0, nmoves = 0, moved = 0;
	int rc, e;

	memset(out, 0, sizeof(*out));
	e = git_reference_name_to_id(&old_tip, g, refname);
	if (e < 0) {
		rc = e == GIT_ENOTFOUND
			 ? err_set(MSGW_ENOTFOUND, "no snapshots of '%s' yet", branch)
			 : repo_git_fail(MSGW_ERR, "cannot read branch");
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
	if (!rc)
		rc = tag_moves(&moves, &nmoves, g, map, nmap);
	if (rc)
		goto cleanup;
	/* the branch last: until it moves, the tagged snapshots stay on it */
	moves_add(&moves, &nmoves, refname, &old_tip, &new_tip);
	rc = journal_write(r, moves, nmoves);
	if (!rc)
		rc = moves_apply(&moved, g, moves, nmoves, true);
	if (!rc)
		rc = journal_remove(r);
	if (rc)
		goto cleanup;
	out->ntags_moved = nmoves - 1;
	git_oid_tostr(out->new_tip, REPO_ID_LEN, &new_tip);
	out->ndropped = ndrop;
	fill_result(out, map, nmap);
cleanup:
	if (rc)
		err_wrap(rc, "gateway '%s'", branch);
	moves_free(moves, nmoves);
	free(map);
	free(dropped);
	free(chain);
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

/* ---- repacking: stock git's gc under our lock ---------------------------- */

/*
 * Run git on the repository with args (NULL-terminated), its output on our
 * stderr (common/ never writes to stdout), under proc's lifeline leader:
 * when we are killed, git and every process it started die with us, so no
 * repack writes into the store after our lock is gone.  The system's and the user's
 * git configuration are left out, so no gc.* setting of theirs changes
 * what a prune keeps; every file git writes is fsync'd.
 */
static int run_git(struct repo *r, const char *const *args)
{
	const char *argv[16];
	char *gitdir = xasprintf("--git-dir=%s", r->gitdir);
	static const char *const env[] = {"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
					  NULL};
	struct proc_spec spec = {.argv = argv, .env = env};
	struct proc p;
	size_t n = 0;
	int status = -1, rc; /* -1: a failure, should the wait find nothing */

	argv[n++] = "git";
	argv[n++] = gitdir;
	argv[n++] = "-c";
	argv[n++] = "core.fsync=all";
	while (*args && n < sizeof(argv) / sizeof(argv[0]) - 1)
		argv[n++] = *args++;
	argv[n] = NULL;
	rc = proc_start(&p, &spec);
	free(gitdir);
	if (rc < 0)
		return err_wrap(rc, "cannot start git");
	proc_wait(&p, 0, &status);
	proc_release(&p);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return err_set(MSGW_ERR, "cannot run 'git %s': is git installed?", argv[4]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(MSGW_ERR, "'git %s' failed (status %d)", argv[4],
			       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

/* What the object store holds, to report what a repack removed. */
struct store_counts {
	size_t loose;	/* loose object files */
	size_t in_pack; /* objects in packs (their .idx files' counts) */
	size_t reflog;	/* reflog entries */
	char **packs;	/* "pack-<hex>" names */
	size_t npacks;
};

static void counts_release(struct store_counts *c)
{
	repo_names_free(c->packs, c->npacks);
	memset(c, 0, sizeof(*c));
}

/* The object count of a pack index (version 2, or 1: no header). */
static size_t idx_count(const char *path)
{
	unsigned char b[8 + 256 * 4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, b, sizeof(b));
	size_t off;

	if (fd >= 0)
		close(fd);
	if (n < (ssize_t)(256 * 4))
		return 0;
	off = memcmp(b, "\377tOc", 4) == 0 ? 8 + 255 * 4 : 255 * 4;
	if ((size_t)n < off + 4)
		return 0;
	return (size_t)b[off] << 24 | (size_t)b[off + 1] << 16 | (size_t)b[off + 2] << 8 |
	       (size_t)b[off + 3];
}

static void count_packs(struct store_counts *c, const char *packdir)
{
	DIR *d = opendir(packdir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *path;

		if (strncmp(de->d_name, "pack-", 5) != 0 || len < 9 ||
		    strcmp(de->d_name + len - 4, ".idx") != 0)
			continue;
		path = xasprintf("%s/%s", packdir, de->d_name);
		c->in_pack += idx_count(path);
		free(path);
		c->packs = xrealloc(c->packs, (c->npacks + 1) * sizeof(char *));
		c->packs[c->npacks++] = xstrndup(de->d_name, len - 4);
	}
	if (d)
		closedir(d);
}

static void count_loose(struct store_counts *c, const char *objdir)
{
	DIR *d = opendir(objdir), *sub;
	struct dirent *de, *se;

	while (d && (de = readdir(d))) {
		char *subdir;

		if (strlen(de->d_name) != 2 || !hex_is_lower(de->d_name, 2))
			continue;
		subdir = xasprintf("%s/%s", objdir, de->d_name);
		sub = opendir(subdir);
		while (sub && (se = readdir(sub)))
			if (strlen(se->d_name) == REPO_ID_LEN - 3 &&
			    hex_is_lower(se->d_name, REPO_ID_LEN - 3))
				c->loose++;
		if (sub)
			closedir(sub);
		free(subdir);
	}
	if (d)
		closedir(d);
}

static void count_reflog(struct store_counts *c, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char *path;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			count_reflog(c, path);
		} else if (S_ISREG(st.st_mode)) {
			FILE *f = fopen(path, "re");
			int ch;

			while (f && (ch = getc(f)) != EOF)
				c->reflog += ch == '\n';
			if (f)
				fclose(f);
		}
		free(path);
	}
	if (d)
		closedir(d);
}

static void count_store(struct store_counts *c, struct repo *r)
{
	char *objdir = xasprintf("%s/objects", r->gitdir);
	char *packdir = xasprintf("%s/objects/pack", r->gitdir);
	char *logs = xasprintf("%s/logs", r->gitdir);

	memset(c, 0, sizeof(*c));
	count_loose(c, objdir);
	count_packs(c, packdir);
	count_reflog(c, logs);
	free(logs);
	free(packdir);
	free(objdir);
}

static size_t gone_packs(const struct store_counts *before, const struct store_counts *after)
{
	size_t i, j, n = 0;

	for (i = 0; i < before->npacks; i++) {
		for (j = 0; j < after->npacks && strcmp(before->packs[i], after->packs[j]); j++)
			;
		n += j == after->npacks;
	}
	return n;
}

/*
 * libgit2 keeps the packs it saw (and maps them lazily): once git replaced
 * them, a read could go to a pack that is gone.  Reopen the handle (the
 * one of this struct repo: nothing read through it is held across a
 * repack).
 */
static int reopen(struct repo *r)
{
	git_repository *g = NULL;

	if (git_repository_open_bare(&g, r->gitdir) < 0)
		return repo_git_fail(MSGW_ERR, "cannot open repository");
	git_repository_free(r->g);
	r->g = g;
	return 0;
}

static bool has_commit_graph(struct repo *r)
{
	char *a = xasprintf("%s/objects/info/commit-graph", r->gitdir);
	char *b = xasprintf("%s/objects/info/commit-graphs", r->gitdir);
	bool yes = access(a, F_OK) == 0 || access(b, F_OK) == 0;

	free(a);
	free(b);
	return yes;
}

int repo_repack(struct repo_repack_result *out, struct repo *r, int64_t since)
{
	/* reflog entries naming commits their ref no longer reaches (the
	 * dropped snapshots, the tags' old targets) would keep the dropped
	 * archives: "now" expires every such entry, whatever its age */
	static const char *const expire[] = {"reflog", "expire", "--expire-unreachable=now",
					     "--all", NULL};
	static const char *const repack[] = {"repack", "-a", "-d", "-q", NULL};
	/* a packed-refs file keeps old values of refs that now live as loose
	 * files: git ignores them, but they name objects that are gone */
	static const char *const pack_refs[] = {"pack-refs", "--all", "--prune", NULL};
	struct store_counts before, after;
	char expiry[64];
	const char *prune[] = {"prune", expiry, NULL};
	/* a commit-graph (git gc writes one) would name the dropped commits */
	static const char *const graph[] = {"commit-graph", "write", "--reachable", NULL};
	int rc;

	memset(out, 0, sizeof(*out));
	/* an unreachable loose object younger than the prune's start (a
	 * writer beside us) is kept: git prune keeps what is newer than this */
	snprintf(expiry, sizeof(expiry), "--expire=@%lld", (long long)(since - 1));
	count_store(&before, r);
	rc = run_git(r, expire);
	if (!rc)
		rc = run_git(r, pack_refs);
	if (!rc)
		rc = run_git(r, repack);
	if (!rc)
		rc = run_git(r, prune);
	if (!rc && has_commit_graph(r))
		rc = run_git(r, graph);
	count_store(&after, r);
	if (!rc) {
		out->objects = after.in_pack;
		out->loose_removed = before.loose > after.loose ? before.loose - after.loose : 0;
		out->packs_removed = gone_packs(&before, &after);
		out->reflog_dropped =
		    before.reflog > after.reflog ? before.reflog - after.reflog : 0;
	} else {
		err_wrap(rc, "repack '%s'", repo_path(r));
	}
	counts_release(&before);
	counts_release(&after);
	if (!rc)
		rc = reopen(r);
	return rc;
}

/* ---- what a killed run left ---------------------------------------------- */

static bool has_prefix(const char *s, const char *const *prefixes)
{
	for (; *prefixes; prefixes++)
		if (strncmp(s, *prefixes, strlen(*prefixes)) == 0)
			return true;
	return false;
}

/* Remove files in dir named with one of prefixes (or suffix, when not
 * NULL: then any file ending in it), recursing when recurse; each with a
 * warning.  Every run does this under the lock: a name that cannot match
 * and is not a folder to enter (readdir's d_type says so) costs no stat,
 * so the loose objects are not each stat'ed on every run. */
static void remove_matching(const char *dir, const char *const *prefixes, const char *suffix,
			    bool recurse, const char *what)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *path;
		struct stat st;
		bool match;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		match = suffix ? len > strlen(suffix) &&
				     strcmp(de->d_name + len - strlen(suffix), suffix) == 0
			       : has_prefix(de->d_name, prefixes);
		if (!match && de->d_type != DT_UNKNOWN && (de->d_type != DT_DIR || !recurse))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0) {
			free(path);
			continue;
		}
		if (S_ISDIR(st.st_mode) && recurse)
			remove_matching(path, prefixes, suffix, recurse, what);
		else if (S_ISREG(st.st_mode) && match) {
			if (unlink(path) == 0)
				log_warn("removed %s '%s' left by a killed run", what, path);
			else
				log_warn("cannot remove %s '%s': %s", what, path, strerror(errno));
		}
		free(path);
	}
	if (d)
		closedir(d);
}

/*
 * Clear what a killed run (ours, or a stock git we ran) left in the
 * repository.  Called only with the tool's repository lock held: the tool
 * is the repository's only writer and every writer takes that lock first,
 * so no live process can own these files, and removing them is safe (a
 * git lock file only stands for an update that never finished; the ref
 * keeps its old value).
 */
static void clear_leftovers(struct repo *r)
{
	static const char *const tmp_objects[] = {"tmp_obj", "tmp_graph_", NULL};
	/* .tmp-<pid>-pack-*: git repack's names for pack-objects' output
	 * before it renames them into place */
	static const char *const tmp_packs[] = {"tmp_pack_",   "tmp_idx_",    "tmp_rev_",
						"tmp_mtimes_", "tmp_bitmap_", "pack_git2_",
						".tmp-",       NULL};
	/* packed-refs.new: git pack-refs' temporary file, which makes the
	 * next pack-refs fail ("File exists") when a kill leaves it */
	static const char *const top_locks[] = {"packed-refs.lock", "packed-refs.new", "HEAD.lock",
						"config.lock",	    "shallow.lock",    NULL};
	char *refs = xasprintf("%s/refs", r->gitdir), *logs = xasprintf("%s/logs", r->gitdir);
	char *objdir = xasprintf("%s/objects", r->gitdir);
	char *packdir = xasprintf("%s/objects/pack", r->gitdir);
	char *infodir = xasprintf("%s/objects/info", r->gitdir);

	remove_matching(refs, NULL, ".lock", true, "stale git lock file");
	remove_matching(logs, NULL, ".lock", true, "stale git lock file");
	remove_matching(r->gitdir, top_locks, NULL, false, "stale git lock file");
	remove_matching(objdir, tmp_objects, NULL, true, "temporary object");
	remove_matching(packdir, tmp_packs, NULL, false, "temporary pack file");
	/* commit-graph.lock, commit-graph-chain.lock of git commit-graph */
	remove_matching(infodir, NULL, ".lock", true, "stale git lock file");
	free(infodir);
	free(packdir);
	free(objdir);
	free(logs);
	free(refs);
}

int repo_lock(struct lock **out, struct repo *r)
{
	char *path = lock_repo_path(r->path);
	int rc = lock_acquire(out, path, "repository");

	free(path);
	if (rc)
		return rc;
	clear_leftovers(r);
	rc = journal_finish(r);
	if (rc) {
		lock_release(*out);
		*out = NULL;
	}
	return rc;
}
