/*
 * apply: the restore transaction (see apply.h for the steps).  Staging,
 * swapping, undoing and committing are separate functions over the journal's
 * operation list; each undo decides from the file system alone what is left
 * to put back, so it is safe to run twice or after any crash.
 */
#include "apply.h"
#include "apply_internal.h"
#include "archive.h"
#include "err.h"
#include "jobs.h"
#include "journal.h"
#include "log.h"
#include "progress.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *suffixed(const char *path, const char *suffix)
{
	return xasprintf("%s%s", path, suffix);
}

static bool exists(struct fsys *fs, const char *path)
{
	struct fsys_stat st;

	return fsys_stat(fs, path, &st) == 0;
}

/* --- journal ------------------------------------------------------------ */

static void build_ops(struct journal *j, const struct plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->c[i].op == PLAN_ADD && p->c[i].snap->type == 'd') {
			journal_add(j, J_MKDIR, p->c[i].snap->path);
			j->e[j->n - 1].mode = p->c[i].snap->mode;
		}
	for (i = 0; i < p->n; i++) {
		const struct plan_change *c = &p->c[i];

		if (c->op == PLAN_ADD && c->snap->type != 'd') {
			struct journal_entry *e;

			journal_add(j, J_ADD, c->snap->path);
			e = &j->e[j->n - 1];
			e->has_sha = true;
			if (c->snap->type == 'l')
				sha256_buf(e->sha, c->snap->link ? c->snap->link : "",
					   c->snap->link ? strlen(c->snap->link) : 0);
			else
				memcpy(e->sha, c->snap->sha, SHA256_LEN);
		} else if (c->op == PLAN_MODIFY && !c->meta_only)
			journal_add(j, J_MODIFY, c->snap->path);
	}
	for (i = 0; i < p->n; i++) {
		const struct plan_change *c = &p->c[i];
		struct journal_entry *e;

		if (c->op != PLAN_MODIFY || !c->meta_only)
			continue;
		journal_add(j, J_CHMOD, c->snap->path);
		e = &j->e[j->n - 1];
		e->old_mode = c->live->mode, e->old_uid = c->live->uid, e->old_gid = c->live->gid;
		e->mode = c->snap->mode, e->uid = c->uid, e->gid = c->gid;
	}
	for (i = p->n; i-- > 0;) {
		const struct plan_change *c = &p->c[i];

		if (c->op != PLAN_REMOVE)
			continue;
		journal_add(j, c->live->type == 'd' ? J_RMDIR : J_REMOVE, c->live->path);
		j->e[j->n - 1].old_mode = c->live->mode;
	}
}

static int save_journal(const struct apply_env *env, const struct journal *j)
{
	char *path = journal_path(env->cfg->state_dir, env->gw->name);
	char *text;
	int rc;

	if (mkdir(env->cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		free(path);
		return err_set_errno(MSGW_ERR, errno, "cannot create '%s'", env->cfg->state_dir);
	}
	rc = journal_save(j, path);
	free(path);
	if (rc)
		return rc;
	text = journal_format(j); /* the target's copy is a convenience only */
	if (fsys_write_atomic(env->fs, WALK_JOURNAL_NAME, text, strlen(text), 0600))
		log_warn("cannot write the journal's copy on the target: %s", err_last());
	free(text);
	return 0;
}

/* The journal goes, durably: a crash just after must not find it again
 * (recover would then finish the restore a second time). */
static void remove_journal(const struct apply_env *env)
{
	char *path = journal_path(env->cfg->state_dir, env->gw->name);

	if (fsys_unlink(env->fs, WALK_JOURNAL_NAME) == 0 && fsys_sync_dir(env->fs, ""))
		log_warn("%s", err_last());
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove journal '%s': %s", path, strerror(errno));
	else if (fsync_dir(env->cfg->state_dir))
		log_warn("%s", err_last());
	free(path);
}

/* --- staging ------------------------------------------------------------ */

static int copy_data(struct archive_snapshot_reader *ar, struct fsys_file *f,
		     const struct manifest_entry *e)
{
	unsigned char sha[SHA256_LEN];
	const void *chunk;
	struct sha256 s;
	ssize_t n;
	int rc = 0;

	sha256_init(&s);
	while (!rc && (n = archive_snapshot_read(ar, &chunk)) > 0) {
		sha256_update(&s, chunk, (size_t)n);
		rc = fsys_write(f, chunk, (size_t)n);
	}
	if (!rc && n < 0)
		rc = (int)n;
	sha256_final(&s, sha);
	if (!rc && memcmp(sha, e->sha, SHA256_LEN) != 0)
		rc = err_set(MSGW_ECORRUPT, "'%s': sha256 does not match the manifest", e->path);
	return rc;
}

static void set_meta(struct fsys *fs, const char *path, const struct plan_change *c)
{
	static bool warned;

	if (fsys_chown(fs, path, c->uid, c->gid) && !warned) {
		log_warn("cannot set owners (%s); continuing with the current ones", err_last());
		warned = true;
	}
	if (c->snap->type != 'l') {
		if (fsys_chmod(fs, path, c->snap->mode))
			log_warn("%s", err_last());
		if (fsys_utime(fs, path, c->snap->mtime, c->snap->mtime_nsec))
			log_warn("%s", err_last());
	}
}

/*
 * A staged file is created exclusively (a leftover is removed first, and
 * nothing may appear in between: a link or a hard link planted there is
 * never written through) and gets its mode, owner and time through its
 * open handle, which no link can redirect; a staged link gets only its
 * owner, never through the link.
 */
static int stage_one(struct fsys *fs, struct archive_snapshot_reader *ar,
		     const struct plan_change *c)
{
	char *tmp = suffixed(c->snap->path, WALK_NEW_SUFFIX);
	uint32_t owner[2] = {c->uid, c->gid};
	struct fsys_file *f = NULL;
	int rc;

	if (!fsys_batches(fs))		    /* else remove_leftovers_batched did */
		(void)fsys_unlink(fs, tmp); /* a leftover of an earlier crash */
	if (c->snap->type == 'l') {
		rc = fsys_symlink(fs, c->snap->link ? c->snap->link : "", tmp);
		if (!rc)
			set_meta(fs, tmp, c);
		goto cleanup;
	}
	rc = fsys_create(fs, tmp, 0600, &f);
	if (!rc)
		rc = copy_data(ar, f, c->snap);
	if (!rc)
		rc = fsys_file_setattr(f, tmp, c->snap->mode, owner, c->snap->mtime,
				       c->snap->mtime_nsec);
	if (!rc)
		rc = fsys_sync(f);
	if (f && fsys_close(f) && !rc)
		rc = MSGW_ERR;
cleanup:
	free(tmp);
	return rc;
}

static int cmp_change_path(const void *key, const void *elem)
{
	const struct plan_change *c = elem;
	const char *path = c->snap ? c->snap->path : c->live->path;

	return strcmp(key, path);
}

static bool needs_staging(const struct plan_change *c)
{
	return (c->op == PLAN_ADD && c->snap->type != 'd') ||
	       (c->op == PLAN_MODIFY && !c->meta_only);
}

static int check_folders_batched(struct fsys *fs, const struct journal *j);

/*
 * Where the backend batches (SFTP), the leftovers of an earlier crash
 * (PATH.msgw-new) of every file to stage go at once (the folders checked
 * first, one batch, then every removal, one batch) instead of a removal
 * and its folders' checks per file; a leftover that appears after this
 * still fails the exclusive create.
 */
static int remove_leftovers_batched(struct fsys *fs, const struct journal *j)
{
	struct fsys_op *ops;
	char **names;
	size_t i, k = 0;
	int rc;

	if (!fsys_batches(fs))
		return 0;
	rc = check_folders_batched(fs, j);
	if (rc)
		return rc;
	ops = xcalloc(j->n ? j->n : 1, sizeof(*ops));
	names = xcalloc(j->n ? j->n : 1, sizeof(*names));
	for (i = 0; i < j->n; i++) {
		if (j->e[i].op != J_ADD && j->e[i].op != J_MODIFY)
			continue;
		names[k] = suffixed(j->e[i].path, WALK_NEW_SUFFIX);
		ops[k] = (struct fsys_op){.kind = FSYS_OP_UNLINK, .path = names[k]};
		k++;
	}
	rc = k ? fsys_batch(fs, ops, k) : 0; /* each op's own failure: as before, ignored */
	for (i = 0; i < k; i++)
		free(names[i]);
	free(names);
	free(ops);
	return rc;
}

/*
 * Where the backend batches (SFTP), small files are staged in volleys: each
 * one read whole from the archive and checked against the manifest's
 * sha256, then a volley (FSYS_BATCH_CREATES files, FSYS_BATCH_CREATE_BYTES
 * at most) goes as one fsys_batch of CREATEs, every request of every file
 * in flight at once (its exclusive create, data, owner, mode, times, sync
 * and close), so staging costs a few round trips per volley instead of
 * several per file.  A file whose CREATE did not go as planned is staged
 * again the one-at-a-time way (a leftover of it removed first, as that
 * way always does), which says what is wrong if it fails too; only a
 * failed connection fails the volley.  Larger files and links go one at a
 * time, as before.
 */
#define VOLLEY_MAX_FILE (256u << 10)

struct volley {
	struct fsys_op ops[FSYS_BATCH_CREATES];
	const struct plan_change *c[FSYS_BATCH_CREATES];
	char *tmp[FSYS_BATCH_CREATES];
	char *data[FSYS_BATCH_CREATES];
	uint32_t owner[FSYS_BATCH_CREATES][2];
	size_t n, bytes;
};

static void volley_clear(struct volley *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		free(v->tmp[i]);
		free(v->data[i]);
	}
	v->n = v->bytes = 0;
}

/* One file the one-at-a-time way, its content in memory. */
static int stage_mem(struct fsys *fs, const struct plan_change *c, const char *tmp,
		     const void *data, size_t len)
{
	uint32_t owner[2] = {c->uid, c->gid};

	(void)fsys_unlink(fs, tmp); /* what the volley left of it, if anything */
	return fsys_write_new(fs, tmp, data, len, c->snap->mode, owner, c->snap->mtime,
			      c->snap->mtime_nsec);
}

static int volley_flush(struct fsys *fs, struct volley *v)
{
	size_t i;
	int rc = v->n ? fsys_batch(fs, v->ops, v->n) : 0;

	for (i = 0; !rc && i < v->n; i++) {
		if (!v->ops[i].rc)
			continue;
		log_debug("%s; staged one request at a time", err_last());
		rc = stage_mem(fs, v->c[i], v->tmp[i], v->data[i], v->ops[i].len);
	}
	volley_clear(v);
	return rc;
}

/* Read c's file whole (checked against the manifest) into the volley,
 * sending the volley first when it is full. */
static int volley_add(struct fsys *fs, struct volley *v, struct archive_snapshot_reader *ar,
		      const struct plan_change *c)
{
	unsigned char sha[SHA256_LEN];
	struct buf b;
	size_t k;
	int rc;

	if (v->n == FSYS_BATCH_CREATES || v->bytes + c->snap->size > FSYS_BATCH_CREATE_BYTES) {
		rc = volley_flush(fs, v);
		if (rc)
			return rc;
	}
	buf_init(&b);
	rc = archive_snapshot_read_all(ar, &b);
	if (!rc) {
		sha256_buf(sha, b.data, b.len);
		if (memcmp(sha, c->snap->sha, SHA256_LEN) != 0)
			rc = err_set(MSGW_ECORRUPT, "'%s': sha256 does not match the manifest",
				     c->snap->path);
	}
	if (rc) {
		buf_release(&b);
		return rc;
	}
	k = v->n++;
	v->c[k] = c;
	v->tmp[k] = suffixed(c->snap->path, WALK_NEW_SUFFIX);
	v->owner[k][0] = c->uid, v->owner[k][1] = c->gid;
	v->ops[k] = (struct fsys_op){.kind = FSYS_OP_CREATE,
				     .path = v->tmp[k],
				     .mode = c->snap->mode,
				     .len = b.len,
				     .owner = v->owner[k],
				     .mtime = c->snap->mtime};
	v->data[k] = buf_detach(&b, NULL);
	v->ops[k].data = v->data[k];
	v->bytes += v->ops[k].len;
	return 0;
}

static int stage_files(const struct apply_env *env, const struct plan *p)
{
	struct archive_snapshot_reader *ar = NULL;
	struct archive_snapshot_item it;
	struct volley *v = fsys_batches(env->fs) ? xcalloc(1, sizeof(*v)) : NULL;
	size_t done = 0;
	int rc;

	progress_begin("staging", p->snap.manifest.n);
	rc = archive_snapshot_open(&ar, p->snap.archive, p->snap.archive_len);
	while (!rc && (rc = archive_snapshot_next(ar, &it)) == 1) {
		const struct plan_change *c =
		    bsearch(it.path, p->c, p->n, sizeof(*p->c), cmp_change_path);

		progress_update(++done);
		if (!c || !needs_staging(c))
			rc = 0;
		else if (v && c->snap->type == 'f' && c->snap->size <= VOLLEY_MAX_FILE)
			rc = volley_add(env->fs, v, ar, c);
		else
			rc = stage_one(env->fs, ar, c);
	}
	if (!rc && v)
		rc = volley_flush(env->fs, v);
	progress_end();
	if (v) {
		volley_clear(v);
		free(v);
	}
	archive_snapshot_free(ar);
	return rc;
}

static int make_dirs(const struct apply_env *env, const struct journal *j, const struct plan *p)
{
	size_t i;

	for (i = 0; i < j->n; i++) {
		const struct plan_change *c;
		int rc;

		if (j->e[i].op != J_MKDIR)
			continue;
		rc = fsys_mkdir(env->fs, j->e[i].path, 0700);
		if (rc)
			return rc;
		c = bsearch(j->e[i].path, p->c, p->n, sizeof(*p->c), cmp_change_path);
		if (c)
			set_meta(env->fs, j->e[i].path, c);
	}
	return 0;
}

/* --- swap, undo, commit -------------------------------------------------- */

static int swap_one(struct fsys *fs, const struct journal_entry *e)
{
	char *nw = suffixed(e->path, WALK_NEW_SUFFIX), *old = suffixed(e->path, WALK_OLD_SUFFIX);
	int rc = 0;

	switch (e->op) {
	case J_MKDIR:
		break;
	case J_ADD:
		rc = fsys_rename(fs, nw, e->path);
		break;
	case J_MODIFY:
		rc = fsys_rename(fs, e->path, old);
		if (!rc)
			rc = fsys_rename(fs, nw, e->path);
		break;
	case J_REMOVE:
		rc = fsys_rename(fs, e->path, old);
		break;
	case J_RMDIR:
		/* still holds the backups of the files removed from it (and
		 * anything excluded): commit_backups removes it once they go */
		(void)fsys_rmdir(fs, e->path);
		break;
	case J_CHMOD:
		rc = fsys_chmod(fs, e->path, e->mode);
		if (!rc && fsys_chown(fs, e->path, e->uid, e->gid))
			log_warn("%s", err_last());
		break;
	}
	free(nw);
	free(old);
	return rc;
}

/* 1 when path exists, 0 when it does not, or the error when the file
 * system cannot tell (a dropped connection, say): an undo must never take
 * that for "not there", or it would skip work and report success. */
static int present(struct fsys *fs, const char *path)
{
	struct fsys_stat st;
	int rc = fsys_stat(fs, path, &st);

	if (rc == 0)
		return 1;
	return rc == MSGW_ENOTFOUND ? 0 : rc;
}

/* The sha256 of what is at path: a file's content, a link's target. */
static int digest_of(struct fsys *fs, const char *path, const struct fsys_stat *st,
		     unsigned char out[SHA256_LEN])
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (st->type == FSYS_LINK) {
		rc = fsys_readlink(fs, path, &buf);
		len = buf ? strlen(buf) : 0;
	} else {
		rc = fsys_read_all(fs, path, &buf, &len);
	}
	if (!rc)
		sha256_buf(out, buf, len);
	free(buf);
	return rc;
}

/*
 * 1 when what is at e->path is what this restore put there (an "add"), 0
 * when it is not (the service made or rewrote it meanwhile) or is gone, or
 * an error.  Its content or link target must equal what was staged; where
 * the backend has inodes, another inode than the staged file's says "not
 * ours" at once (an inode number alone proves nothing: a file removed and
 * made again often gets the same one).  A journal without a digest (an
 * older version's) keeps the old rule: whatever is there.
 */
static int ours(struct fsys *fs, const struct journal_entry *e)
{
	unsigned char sha[SHA256_LEN];
	struct fsys_stat st;
	int rc = fsys_stat(fs, e->path, &st);

	if (rc)
		return rc == MSGW_ENOTFOUND ? 0 : rc;
	if (e->ino && st.ino && st.ino != e->ino)
		return 0;
	if (!e->has_sha)
		return 1;
	if (st.type != FSYS_FILE && st.type != FSYS_LINK)
		return 0;
	rc = digest_of(fs, e->path, &st, sha);
	if (rc)
		return rc == MSGW_ENOTFOUND ? 0 : rc;
	return memcmp(sha, e->sha, SHA256_LEN) == 0;
}

static int undo_add(struct fsys *fs, const struct journal_entry *e, const char *nw)
{
	int rc = present(fs, nw);

	if (rc > 0)
		return fsys_unlink(fs, nw);
	if (rc == 0 && (rc = ours(fs, e)) > 0)
		return fsys_unlink(fs, e->path);
	if (rc == 0 && present(fs, e->path) > 0)
		log_warn("left '%s' in place: it is not the file this restore put there", e->path);
	return rc;
}

static int undo_one(struct fsys *fs, const struct journal_entry *e)
{
	char *nw = suffixed(e->path, WALK_NEW_SUFFIX), *old = suffixed(e->path, WALK_OLD_SUFFIX);
	int rc = 0;

	/* rc: negative an error, else 0 or 1 (present()'s answer) */
	switch (e->op) {
	case J_MKDIR:
		if ((rc = present(fs, e->path)) > 0 && fsys_rmdir(fs, e->path))
			log_warn("left new directory '%s': %s", e->path, err_last());
		break;
	case J_ADD:
		rc = undo_add(fs, e, nw);
		break;
	case J_MODIFY:
		if ((rc = present(fs, old)) > 0) {
			if ((rc = present(fs, e->path)) > 0)
				rc = fsys_unlink(fs, e->path);
			if (rc == 0)
				rc = fsys_rename(fs, old, e->path);
		}
		if (rc >= 0 && (rc = present(fs, nw)) > 0)
			rc = fsys_unlink(fs, nw);
		break;
	case J_REMOVE:
		if ((rc = present(fs, old)) > 0 && (rc = present(fs, e->path)) == 0)
			rc = fsys_rename(fs, old, e->path);
		break;
	case J_RMDIR:
		if ((rc = present(fs, e->path)) == 0)
			rc = fsys_mkdir(fs, e->path, e->old_mode);
		break;
	case J_CHMOD:
		rc = fsys_chmod(fs, e->path, e->old_mode);
		if (!rc && fsys_chown(fs, e->path, e->old_uid, e->old_gid))
			log_warn("%s", err_last());
		break;
	}
	free(nw);
	free(old);
	if (rc == MSGW_EHOSTILE) {
		/* a folder on the way became a link: nothing of this restore
		 * is reachable there without following it, so it is left */
		log_warn("left '%s' as it is: %s", e->path, err_last());
		return 0;
	}
	return rc < 0 ? err_wrap(rc, "cannot undo '%s'", e->path) : 0;
}

/* Undo every operation in reverse; keeps going past failures, returns the
 * first (and leaves its message as the last error). */
int apply_undo_all(struct fsys *fs, const struct journal *j)
{
	char msg[1024] = "";
	size_t i = j->n;
	int first = 0;

	while (i-- > 0) {
		int rc = undo_one(fs, &j->e[i]);

		if (rc) {
			log_error("%s", err_last());
			if (!first) {
				first = rc;
				snprintf(msg, sizeof(msg), "%s", err_last());
			}
		}
	}
	(void)fsys_sync_dir(fs, "");
	return first ? err_set(first, "%s", msg) : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The folders that hold a journal entry, each once, sorted; the caller
 * frees them with fsys_free_names. */
static char **parent_dirs(const struct journal *j, size_t *n_out)
{
	char **dirs = j->n ? xcalloc(j->n, sizeof(*dirs)) : NULL;
	size_t i, n = 0;

	for (i = 0; i < j->n; i++) {
		char *slash;

		dirs[i] = xstrdup(j->e[i].path);
		slash = strrchr(dirs[i], '/');
		if (slash)
			*slash = '\0';
		else
			dirs[i][0] = '\0';
	}
	if (j->n > 1)
		qsort(dirs, j->n, sizeof(*dirs), cmp_str);
	for (i = 0; i < j->n; i++) {
		if (n && strcmp(dirs[i], dirs[n - 1]) == 0) {
			free(dirs[i]);
			continue;
		}
		dirs[n++] = dirs[i];
	}
	*n_out = n;
	return dirs;
}

/* Sync each directory that holds a journal entry, once: the swap is the
 * service's downtime, and a directory sync costs a disk flush. */
static void sync_parents(struct fsys *fs, const struct journal *j)
{
	size_t n, i;
	char **dirs = parent_dirs(j, &n);

	for (i = 0; i < n; i++)
		if (fsys_sync_dir(fs, dirs[i]))
			log_warn("%s", err_last());
	fsys_free_names(dirs, n);
}

/*
 * Right before the swap (the service is stopped; its account may have
 * acted since the plan): every folder that holds an entry is still a
 * folder, reached without a link.  MSGW_EHOSTILE naming the path when one
 * turned into a link; nothing has been swapped then.
 */
static int check_parents(struct fsys *fs, const struct journal *j)
{
	size_t n, i;
	char **dirs = parent_dirs(j, &n);
	int rc = 0;

	for (i = 0; !rc && i < n; i++) {
		struct fsys_stat st;

		if (!*dirs[i])
			continue;
		rc = fsys_stat(fs, dirs[i], &st);
		if (!rc && st.type != FSYS_DIR)
			rc = err_set(st.type == FSYS_LINK ? MSGW_EHOSTILE : MSGW_ERR,
				     "%s: folder '%s' turned into %s since the plan; not followed",
				     fs->location, dirs[i],
				     st.type == FSYS_LINK ? "a symbolic link" : "something else");
	}
	fsys_free_names(dirs, n);
	return rc;
}

/*
 * The swap where the backend batches (SFTP, fsys_batches): a round trip per
 * request would make the downtime grow with the number of changed files,
 * so the requests go in three waves, each all sent before any reply is
 * awaited, every reply checked:
 *   1. lstat of every folder on the way to every entry (issue 13: none may
 *      have become a link since the plan);
 *   2. every "move the old file aside" (MODIFY, REMOVE: PATH to
 *      PATH.msgw-old);
 *   3. every "move the new file in" (ADD, MODIFY: PATH.msgw-new to PATH),
 *      only once every reply of wave 2 said done.
 * A wave never holds two requests that depend on one another: its paths
 * are distinct files (the plan refuses a file that became a folder or the
 * reverse, and no path is both added and removed), and a MODIFY's two
 * renames of one path are in different waves.  So nothing relies on the
 * order in which the server carries out requests of one wave (OpenSSH's
 * sftp-server does them one at a time in the order received, but the
 * SFTP drafts promise order only for requests on one file handle, and a
 * rename names two paths, no handle).  A failure stops before the next
 * wave; the undo (apply_undo_all) decides from the file system alone what
 * each entry needs, so whatever subset of a wave was done is put back.
 * Then, in the same way:
 *   4. every CHMOD (chmod_wave; its path's own lstat rode in wave 1, so a
 *      link is left alone), only once every rename was done;
 *   5. the RMDIRs, one wave per depth, deepest first (rmdir_waves).
 * So the swap costs the same few round trips whatever the number of
 * changed files, modes and removed folders (plus one per folder depth
 * that has an empty folder to remove).
 */
static bool has_dotdot(const char *path)
{
	const char *p = path;

	while (*p) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += len;
		if (*p == '/')
			p++;
	}
	return false;
}

/* Every folder on the way to each entry (for "a/b/f": "a" and "a/b"),
 * each once, sorted; the caller frees them with fsys_free_names. */
static char **folder_prefixes(const struct journal *j, size_t *n_out)
{
	const char **paths = xcalloc(j->n ? j->n : 1, sizeof(*paths));
	char **dirs;
	size_t i;

	for (i = 0; i < j->n; i++)
		paths[i] = j->e[i].path;
	dirs = fsys_parents(paths, j->n, n_out);
	free(paths);
	return dirs;
}

static int folder_check(struct fsys *fs, const char *dir, const struct fsys_op *op)
{
	if (op->rc == MSGW_ENOTFOUND)
		return 0; /* what is in it fails on its own, as it always did */
	if (op->rc)
		return err_set(op->rc, "%s: cannot check folder '%s'", fs->location, dir);
	if (op->st.type != FSYS_DIR)
		return err_set(op->st.type == FSYS_LINK ? MSGW_EHOSTILE : MSGW_ERR,
			       "%s: folder '%s' turned into %s since the plan; not followed",
			       fs->location, dir,
			       op->st.type == FSYS_LINK ? "a symbolic link" : "something else");
	return 0;
}

/*
 * Wave 1 (and the commit's first): the folders, in one batch; a missing
 * one is left to the operations in it (a commit run again by recover finds
 * removed folders gone).  With is_link (the swap), the same batch also
 * lstat's each CHMOD entry's own path: SFTP's SETSTAT follows a link, so
 * is_link[i] says which entries the chmod wave leaves alone, as fsys_chmod
 * does (a missing one is left to its chmod, which fails as it always did).
 */
static int check_folders_batched_ex(struct fsys *fs, const struct journal *j, bool *is_link)
{
	size_t n, i, k;
	char **dirs = folder_prefixes(j, &n);
	struct fsys_op *ops = xcalloc(n + j->n + 1, sizeof(*ops));
	int rc = 0;

	for (i = 0; !rc && i < j->n; i++)
		if (has_dotdot(j->e[i].path))
			rc = err_set(MSGW_EHOSTILE, "%s: '%s' holds '..'; not followed",
				     fs->location, j->e[i].path);
	for (i = 0; i < n; i++)
		ops[i] = (struct fsys_op){.kind = FSYS_OP_LSTAT, .path = dirs[i]};
	for (i = 0, k = n; is_link && i < j->n; i++)
		if (j->e[i].op == J_CHMOD)
			ops[k++] = (struct fsys_op){.kind = FSYS_OP_LSTAT, .path = j->e[i].path};
	if (!rc)
		rc = fsys_batch(fs, ops, k);
	for (i = 0; !rc && i < n; i++)
		rc = folder_check(fs, dirs[i], &ops[i]);
	for (i = 0, k = n; !rc && is_link && i < j->n; i++)
		if (j->e[i].op == J_CHMOD) {
			is_link[i] = ops[k].rc == 0 && ops[k].st.type == FSYS_LINK;
			k++;
		}
	free(ops);
	fsys_free_names(dirs, n);
	return rc;
}

static int check_folders_batched(struct fsys *fs, const struct journal *j)
{
	return check_folders_batched_ex(fs, j, NULL);
}

/* One wave of renames: 0 when every one was done, else the first
 * failure (err_last() names it). */
static int rename_wave(struct fsys *fs, struct fsys_op *ops, size_t n)
{
	size_t i;
	int rc;

	if (!n)
		return 0;
	rc = fsys_batch(fs, ops, n);
	for (i = 0; !rc && i < n; i++)
		rc = ops[i].rc;
	return rc;
}

/*
 * The CHMOD entries, one wave (distinct paths: nothing in it depends on
 * anything else in it), every reply checked: the first failure is
 * returned, and the undo puts every entry's old mode back.  A link is left
 * alone, as fsys_chmod leaves it.  An owner that changes too (rare: a
 * restore onto the same host keeps owners) is then set one entry at a
 * time, best effort, as before.
 */
static int chmod_wave(struct fsys *fs, const struct journal *j, const bool *is_link)
{
	struct fsys_op *ops = xcalloc(j->n ? j->n : 1, sizeof(*ops));
	size_t i, k = 0;
	int rc;

	for (i = 0; i < j->n; i++)
		if (j->e[i].op == J_CHMOD && !is_link[i])
			ops[k++] = (struct fsys_op){
			    .kind = FSYS_OP_CHMOD, .path = j->e[i].path, .mode = j->e[i].mode};
	rc = rename_wave(fs, ops, k);
	for (i = 0; !rc && i < j->n; i++) {
		const struct journal_entry *e = &j->e[i];

		if (e->op == J_CHMOD && !is_link[i] &&
		    (e->uid != e->old_uid || e->gid != e->old_gid) &&
		    fsys_chown(fs, e->path, e->uid, e->gid))
			log_warn("%s", err_last());
	}
	free(ops);
	return rc;
}

static size_t depth_of(const char *path)
{
	size_t d = 0;

	for (; *path; path++)
		d += *path == '/';
	return d;
}

/* Whether a REMOVE entry lies below folder dir: its backup (PATH.msgw-old)
 * keeps the folder from being empty until the commit removes it. */
static bool holds_backup(const struct journal *j, const char *dir)
{
	size_t i, len = strlen(dir);

	for (i = 0; i < j->n; i++)
		if (j->e[i].op == J_REMOVE && strncmp(j->e[i].path, dir, len) == 0 &&
		    j->e[i].path[len] == '/')
			return true;
	return false;
}

/*
 * The RMDIR entries, one wave per depth, deepest first (a folder can go
 * only once the folders in it have: requests of one wave never depend on
 * one another).  A folder that cannot go (not empty: the service wrote in
 * it, or it holds what the snapshot excludes) stays, as it always did:
 * in the swap its removal is ignored and the commit tries again; at the
 * commit it is named in a warning.  In the swap (swap true), folders that
 * hold a backup are not even tried: they cannot be empty before the
 * commit.  Only a failed connection is an error.
 */
static int rmdir_waves(struct fsys *fs, const struct journal *j, bool swap)
{
	struct fsys_op *ops = xcalloc(j->n ? j->n : 1, sizeof(*ops));
	size_t i, k, depth = 0;
	int rc = 0;

	for (i = 0; i < j->n; i++)
		if (j->e[i].op == J_RMDIR && depth_of(j->e[i].path) > depth)
			depth = depth_of(j->e[i].path);
	for (depth++; !rc && depth-- > 0;) {
		for (i = 0, k = 0; i < j->n; i++)
			if (j->e[i].op == J_RMDIR && depth_of(j->e[i].path) == depth &&
			    !(swap && holds_backup(j, j->e[i].path)))
				ops[k++] =
				    (struct fsys_op){.kind = FSYS_OP_RMDIR, .path = j->e[i].path};
		rc = k ? fsys_batch(fs, ops, k) : 0;
		for (i = 0; !rc && !swap && i < k; i++)
			if (ops[i].rc && ops[i].rc != MSGW_ENOTFOUND)
				log_warn("left directory '%s' in place: cannot remove it",
					 ops[i].path);
	}
	free(ops);
	return rc;
}

static int swap_batched(struct fsys *fs, const struct journal *j, const bool *is_link)
{
	struct fsys_op *ops = xcalloc(j->n ? j->n : 1, sizeof(*ops));
	char **names = xcalloc(j->n ? 2 * j->n : 1, sizeof(*names));
	size_t i, k = 0, m = 0;
	int rc = 0;

	for (i = 0; i < j->n; i++) {
		const struct journal_entry *e = &j->e[i];

		if (e->op != J_MODIFY && e->op != J_REMOVE)
			continue;
		names[m] = suffixed(e->path, WALK_OLD_SUFFIX);
		ops[k++] =
		    (struct fsys_op){.kind = FSYS_OP_RENAME, .path = e->path, .to = names[m++]};
	}
	if (!rc)
		rc = rename_wave(fs, ops, k);
	fault_point("mid-swap");
	for (i = 0, k = 0; !rc && i < j->n; i++) {
		const struct journal_entry *e = &j->e[i];

		if (e->op != J_MODIFY && e->op != J_ADD)
			continue;
		names[m] = suffixed(e->path, WALK_NEW_SUFFIX);
		ops[k++] =
		    (struct fsys_op){.kind = FSYS_OP_RENAME, .path = names[m++], .to = e->path};
	}
	if (!rc)
		rc = rename_wave(fs, ops, k);
	if (!rc)
		rc = chmod_wave(fs, j, is_link);
	if (!rc)
		rc = rmdir_waves(fs, j, true);
	for (i = 0; i < m; i++)
		free(names[i]);
	free(names);
	free(ops);
	return rc;
}

int apply_swap_all(struct fsys *fs, const struct journal *j)
{
	size_t i;
	int rc;
	char msg[1024];
	bool *is_link = xcalloc(j->n ? j->n : 1, sizeof(*is_link));

	rc = fsys_batches(fs) ? check_folders_batched_ex(fs, j, is_link) : check_parents(fs, j);
	if (rc) {
		free(is_link);
		return rc;
	}
	if (fsys_batches(fs)) {
		rc = swap_batched(fs, j, is_link);
		goto done;
	}
	for (i = 0; !rc && i < j->n; i++) {
		rc = swap_one(fs, &j->e[i]);
		if (i == j->n / 2)
			fault_point("mid-swap");
	}
done:
	free(is_link);
	snprintf(msg, sizeof(msg), "%s", err_last());
	sync_parents(fs, j);
	return rc ? err_set(rc, "%s", msg) : 0;
}

/* The backups, in two batches (the folders, then every removal); a backup
 * already gone is fine. */
static void remove_backups_batched(struct fsys *fs, const struct journal *j)
{
	struct fsys_op *ops = xcalloc(j->n ? j->n : 1, sizeof(*ops));
	char **names = xcalloc(j->n ? j->n : 1, sizeof(*names));
	size_t i, k = 0;

	if (check_folders_batched(fs, j)) {
		log_warn("backups left in place: %s", err_last());
		goto cleanup;
	}
	for (i = 0; i < j->n; i++) {
		if (j->e[i].op != J_MODIFY && j->e[i].op != J_REMOVE)
			continue;
		names[k] = suffixed(j->e[i].path, WALK_OLD_SUFFIX);
		ops[k] = (struct fsys_op){.kind = FSYS_OP_UNLINK, .path = names[k]};
		k++;
	}
	if (k && fsys_batch(fs, ops, k)) {
		log_warn("backups left in place: %s", err_last());
		goto cleanup;
	}
	for (i = 0; i < k; i++)
		if (ops[i].rc && ops[i].rc != MSGW_ENOTFOUND)
			log_warn("cannot remove backup '%s'", names[i]);
	/* removed folders, now that the backups inside them are gone */
	if (rmdir_waves(fs, j, false))
		log_warn("folders left in place: %s", err_last());
cleanup:
	for (i = 0; i < k; i++)
		free(names[i]);
	free(names);
	free(ops);
}

static void commit_backups(struct fsys *fs, const struct journal *j)
{
	size_t i;

	for (i = 0; !fsys_batches(fs) && i < j->n; i++) {
		char *old;

		if (j->e[i].op != J_MODIFY && j->e[i].op != J_REMOVE)
			continue;
		old = suffixed(j->e[i].path, WALK_OLD_SUFFIX);
		if (exists(fs, old) && fsys_unlink(fs, old))
			log_warn("cannot remove backup '%s': %s", old, err_last());
		free(old);
	}
	if (fsys_batches(fs)) {
		remove_backups_batched(fs, j);
		return;
	}
	/* removed directories, deepest first (the journal's order), now that
	 * the backups inside them are gone */
	for (i = 0; i < j->n; i++)
		if (j->e[i].op == J_RMDIR && exists(fs, j->e[i].path) &&
		    fsys_rmdir(fs, j->e[i].path))
			log_warn("left directory '%s' in place: %s", j->e[i].path, err_last());
}

/* --- service ------------------------------------------------------------- */

static int svc(const struct apply_env *env, const char *what, const char *cmd)
{
	if (!cmd || !*cmd) {
		log_warn("%s: no '%s' command configured for '%s'", env->gw->name, what,
			 env->gw->name);
		return 0;
	}
	if (strcmp(what, "stop") == 0)
		return service_stop(env->host, cmd, env->gw->status, env->gw->timeout);
	return service_start(env->host, cmd, env->gw->status, env->gw->timeout);
}

static int start_healthy(const struct apply_env *env)
{
	int rc = svc(env, "start", env->gw->start);

	if (!rc)
		rc = service_health_gateway(env->host, env->gw);
	return rc;
}

/* Put the previous state back and start it: 0 when it runs healthy again. */
static int roll_back(const struct apply_env *env, const struct journal *j, const char *why)
{
	char reason[1024];
	int rc;

	snprintf(reason, sizeof(reason), "%s", why);
	log_warn("%s: rolling back: %s", env->gw->name, reason);
	if (svc(env, "stop", env->gw->stop))
		log_warn("%s", err_last());
	rc = apply_undo_all(env->fs, j);
	if (!rc)
		rc = start_healthy(env);
	if (rc) {
		char cause[1024];

		/* err_last() is the buffer err_set writes: copy it first */
		snprintf(cause, sizeof(cause), "%s", err_last());
		return err_set(
		    MSGW_EROLLBACK,
		    "%s: rollback failed too (%.250s) after: %.300s; manual action needed: "
		    "the journal is kept in '%s/journal-%s'; fix the cause, then run "
		    "'msgw-restore recover %s' to put the previous state back, or apply "
		    "the pre-restore snapshot %.12s",
		    env->gw->name, cause, reason, env->cfg->state_dir, env->gw->name, env->gw->name,
		    j->pre_restore);
	}
	return 0;
}

/* --- snapshots of the target --------------------------------------------- */

static int record(const struct apply_env *env, const char *kind, const char *from,
		  const char *forced, char out[REPO_ID_LEN])
{
	struct snapshot_opts so = {0};
	struct snapshot_result res;
	char *cache = job_statcache_path(env->cfg, env->gw->name);
	int rc;

	so.kind = kind;
	so.restored_from = from;
	so.forced = forced && *forced ? forced : NULL;
	so.statcache = cache;
	so.always_write = true;
	rc = snapshot_take(&res, env->repo, env->gw, env->fs, &so);
	if (!rc)
		memcpy(out, res.id, REPO_ID_LEN);
	free(cache);
	return rc;
}

static int commit(const struct apply_env *env, struct journal *j, char restored[REPO_ID_LEN])
{
	int rc;

	journal_set_phase(j, "committing");
	rc = save_journal(env, j);
	if (rc)
		return rc;
	fault_point("before-commit");
	commit_backups(env->fs, j);
	rc = record(env, "restored", j->snapshot, j->forced, restored);
	if (rc)
		return err_wrap(rc, "restore applied and running, but recording it failed");
	remove_journal(env);
	/* a failing post-restore hook is reported; the restore stands */
	if (hook_run(env->cfg, env->gw, HOOK_POST_RESTORE, restored, "restored"))
		log_warn("%s", err_last());
	return 0;
}

/* --- the confirm timer --------------------------------------------------- */

static void spawn_timer(const struct apply_env *env)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t pid;

	if (n <= 0) {
		log_warn("cannot start the confirm timer: %s", strerror(errno));
		return;
	}
	self[n] = '\0';
	pid = fork();
	if (pid == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		for (int fd = 0; fd < 1024; fd++)
			close(fd);
		/* fds 0-2 on /dev/null: a file the recover opens must never
		 * become its stdout or stderr */
		if (open("/dev/null", O_RDWR) == 0) {
			(void)dup2(0, 1);
			(void)dup2(0, 2);
		}
		execl(self, self, "-q", "-c", env->cfg->path, "recover", env->gw->name, "--timer",
		      (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* --- the transaction ----------------------------------------------------- */

static void start_journal(struct journal *j, const struct apply_env *env, const struct plan *p,
			  const char *pre)
{
	char now[32];

	journal_init(j);
	j->gateway = xstrdup(env->gw->name);
	memcpy(j->snapshot, p->id, REPO_ID_LEN);
	memcpy(j->pre_restore, pre, REPO_ID_LEN);
	time_rfc3339(now, sizeof(now), (int64_t)time(NULL));
	j->started = xstrdup(now);
	j->forced = plan_forced_codes(p);
	journal_set_phase(j, "staging");
	build_ops(j, p);
}

/*
 * A failure before the swap (why, code rc): remove what was staged and the
 * journal, "nothing changed".  When the undo fails too (the connection to
 * the target dropped, say), the staged files stay beside the live ones and
 * so does the journal, for recover to finish the undo: removing it would
 * leave them behind for good.
 */
static int undo_staged(const struct apply_env *env, struct journal *j, int rc, const char *why)
{
	char cause[1024];

	if (apply_undo_all(env->fs, j) == 0) {
		remove_journal(env);
		return err_set(rc, "%s; nothing changed", why);
	}
	snprintf(cause, sizeof(cause), "%s", err_last());
	return err_set(MSGW_EROLLBACK,
		       "%.350s; removing the staged files failed too (%.250s); the live "
		       "configuration was not changed; manual action needed: the journal is kept "
		       "in '%s/journal-%s'; once the target can be reached, run 'msgw-restore "
		       "recover %s'",
		       why, cause, env->cfg->state_dir, env->gw->name, env->gw->name);
}

/* note_staged where the backend batches: every lstat at once. */
static void note_staged_batched(struct fsys *fs, struct journal *j)
{
	struct fsys_op *ops = xcalloc(j->n ? j->n : 1, sizeof(*ops));
	char **names = xcalloc(j->n ? j->n : 1, sizeof(*names));
	size_t *at = xcalloc(j->n ? j->n : 1, sizeof(*at));
	size_t i, k = 0;

	for (i = 0; i < j->n; i++) {
		if (j->e[i].op != J_ADD)
			continue;
		names[k] = suffixed(j->e[i].path, WALK_NEW_SUFFIX);
		ops[k] = (struct fsys_op){.kind = FSYS_OP_LSTAT, .path = names[k]};
		at[k++] = i;
	}
	if (k && fsys_batch(fs, ops, k) == 0)
		for (i = 0; i < k; i++)
			if (ops[i].rc == 0)
				j->e[at[i]].ino = ops[i].st.ino;
	for (i = 0; i < k; i++)
		free(names[i]);
	free(names);
	free(ops);
	free(at);
}

/* The inode of each staged "add" (the journal saved before the stop
 * keeps them), so that its undo knows the file as this restore's own. */
static void note_staged(struct fsys *fs, struct journal *j)
{
	size_t i;

	if (fsys_batches(fs)) {
		note_staged_batched(fs, j);
		return;
	}
	for (i = 0; i < j->n; i++) {
		struct fsys_stat st;
		char *nw;

		if (j->e[i].op != J_ADD)
			continue;
		nw = suffixed(j->e[i].path, WALK_NEW_SUFFIX);
		if (fsys_stat(fs, nw, &st) == 0)
			j->e[i].ino = st.ino;
		free(nw);
	}
}

static int stage(const struct apply_env *env, struct journal *j, const struct plan *p)
{
	int rc = save_journal(env, j);

	if (!rc)
		rc = make_dirs(env, j, p);
	if (!rc)
		rc = remove_leftovers_batched(env->fs, j);
	if (!rc)
		rc = stage_files(env, p);
	if (!rc) {
		note_staged(env->fs, j);
		sync_parents(env->fs, j);
	}
	if (rc) {
		char why[1024];

		snprintf(why, sizeof(why), "staging failed: %s", err_last());
		return undo_staged(env, j, rc, why);
	}
	return 0;
}

static int stop_service(const struct apply_env *env, struct journal *j)
{
	int rc;

	journal_set_phase(j, "swapping");
	rc = save_journal(env, j);
	if (!rc)
		rc = svc(env, "stop", env->gw->stop);
	if (rc) {
		int keep = rc;
		char why[1024];

		snprintf(why, sizeof(why), "%s", err_last());
		rc = undo_staged(env, j, keep, why);
		snprintf(why, sizeof(why), "%s", err_last());
		/* start only what the stop stopped */
		if (!service_is_running(env->host, env->gw->status, env->gw->timeout) &&
		    svc(env, "start", env->gw->start))
			log_warn("%s", err_last());
		return err_set(rc, "%s", why);
	}
	return 0;
}

static int swap_and_start(struct apply_result *out, const struct apply_env *env, struct journal *j,
			  int64_t t_stop)
{
	int64_t t0 = time_now_ms();
	int rc = apply_swap_all(env->fs, j);
	char why[1024];
	bool hostile;

	out->swap_ms = time_now_ms() - t0;
	fault_point("before-start");
	if (!rc) {
		t0 = time_now_ms();
		rc = start_healthy(env);
		out->start_ms = time_now_ms() - t0;
	}
	out->downtime_ms = time_now_ms() - t_stop;
	if (!rc)
		return 0;
	snprintf(why, sizeof(why), "%s", err_last());
	hostile = rc == MSGW_EHOSTILE;
	rc = roll_back(env, j, why);
	if (rc) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", err_last());
		if (hook_run(env->cfg, env->gw, HOOK_FAILURE, j->snapshot, "rollback-failed"))
			log_warn("%s", err_last());
		return err_set(rc, "%s", msg);
	}
	remove_journal(env);
	out->rolled_back = true;
	if (hook_run(env->cfg, env->gw, HOOK_FAILURE, j->snapshot, "rolled-back"))
		log_warn("%s", err_last());
	if (hostile)
		return err_set(MSGW_EHOSTILE,
			       "%s; the restore was stopped and rolled back; the previous "
			       "configuration is back and running",
			       why);
	return err_set(MSGW_EHEALTH, "%s; the previous configuration is back and running", why);
}

/* Room for every staged file (a block more each, for its metadata), or
 * a clear error before anything is written: a full disk mid-staging
 * would leave the gateway's disk full while its service runs. */
static int check_space(const struct apply_env *env, const struct plan *p)
{
	uint64_t need = 0;
	size_t i;

	for (i = 0; i < p->n; i++)
		if (needs_staging(&p->c[i]))
			need += p->c[i].snap->size + 4096;
	return fsys_check_space(env->fs, need, "stage the restore");
}

int apply_run(struct apply_result *out, const struct apply_env *env, struct plan *p,
	      const struct apply_opts *opts)
{
	struct journal j;
	int64_t t_stop;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_space(env, p);
	if (rc)
		return rc;
	rc = record(env, "pre-restore", NULL, NULL, out->pre_restore);
	if (rc)
		return err_wrap(rc, "cannot record the target's current state");
	start_journal(&j, env, p, out->pre_restore);
	rc = stage(env, &j, p);
	if (rc)
		goto cleanup;
	fault_point("after-stage");
	t_stop = time_now_ms();
	rc = stop_service(env, &j);
	out->stop_ms = time_now_ms() - t_stop;
	if (rc)
		goto cleanup;
	fault_point("after-stop");
	rc = swap_and_start(out, env, &j, t_stop);
	if (rc)
		goto cleanup;
	if (opts->confirm_within > 0) {
		out->confirm_deadline = (int64_t)time(NULL) + opts->confirm_within;
		j.confirm_deadline = out->confirm_deadline;
		journal_set_phase(&j, "awaiting-confirm");
		rc = save_journal(env, &j);
		if (!rc)
			spawn_timer(env);
		goto cleanup;
	}
	rc = commit(env, &j, out->restored);
cleanup:
	journal_release(&j);
	return rc;
}

/* --- recovery ------------------------------------------------------------ */

bool apply_pending(const struct config *cfg, const char *gateway, char *phase, size_t len,
		   int64_t *deadline)
{
	char *path = journal_path(cfg->state_dir, gateway);
	struct journal j;
	bool pending = journal_load(&j, path) != MSGW_ENOTFOUND;

	free(path);
	if (pending && j.phase) {
		snprintf(phase, len, "%s", j.phase);
		*deadline = j.confirm_deadline;
		journal_release(&j);
	} else if (pending) {
		snprintf(phase, len, "damaged");
		*deadline = 0;
	}
	return pending;
}

static char *state_tmp_path(const struct config *cfg, const char *gateway)
{
	return xasprintf("%s/journal-%s.tmp", cfg->state_dir, gateway);
}

bool apply_has_leftovers(const struct config *cfg, const char *gateway)
{
	char *tmp = state_tmp_path(cfg, gateway);
	bool there = access(tmp, F_OK) == 0;

	free(tmp);
	return there;
}

/*
 * Temporary files a killed run may have left (issue 14): the state
 * folder's journal-GW.tmp and the target's copy of the journal being
 * written (.msgw-journal.msgw-tmp.*, any name: older versions used the
 * pid).  The caller holds the target lock, so no run of ours is writing
 * them; each one removed is named.  Staged files (*.msgw-new) are the
 * journal's undo's to remove: it knows which are ours.
 */
static void remove_leftovers(const struct apply_env *env)
{
	static const char prefix[] = WALK_JOURNAL_NAME ".msgw-tmp.";
	char *tmp = state_tmp_path(env->cfg, env->gw->name);
	struct fsys_dirent *ents = NULL;
	size_t n = 0, i;

	if (unlink(tmp) == 0)
		log_warn("%s: removed '%s', left by a run that was killed", env->gw->name, tmp);
	free(tmp);
	if (fsys_list(env->fs, "", &ents, &n)) {
		log_warn("%s", err_last());
		return;
	}
	for (i = 0; i < n; i++) {
		if (strncmp(ents[i].name, prefix, sizeof(prefix) - 1) != 0 ||
		    ents[i].st.type == FSYS_DIR)
			continue;
		if (fsys_unlink(env->fs, ents[i].name))
			log_warn("%s", err_last());
		else
			log_warn("%s: removed '%s' from the target, left by a run that was killed",
				 env->gw->name, ents[i].name);
	}
	fsys_dirents_free(ents, n);
}

static int undo_and_restart(const struct apply_env *env, struct journal *j, const char **what)
{
	int rc = roll_back(env, j, "an interrupted or unconfirmed restore");

	if (rc)
		return rc;
	remove_journal(env);
	*what = "rolled back to the state before the restore; the service runs";
	return 0;
}

int apply_recover(const struct apply_env *env, enum recover_mode mode, const char **what)
{
	char *path = journal_path(env->cfg->state_dir, env->gw->name);
	char restored[REPO_ID_LEN];
	struct journal j;
	bool confirm_open;
	int rc;

	*what = "nothing to recover";
	rc = journal_load(&j, path);
	free(path);
	if (rc == MSGW_ECORRUPT) {
		char msg[1024];

		/* never guess: a wrong undo would do more harm than none */
		snprintf(msg, sizeof(msg), "%s", err_last());
		return err_set(MSGW_ECORRUPT,
			       "%s; nothing was touched; check the target by hand for '*%s' "
			       "and '*%s' files of an interrupted restore, then move the journal "
			       "aside and run 'msgw-restore rollback --to %s' if the "
			       "configuration is not the one wanted",
			       msg, WALK_NEW_SUFFIX, WALK_OLD_SUFFIX, env->gw->name);
	}
	if (rc && rc != MSGW_ENOTFOUND)
		return rc;
	remove_leftovers(env);
	if (rc == MSGW_ENOTFOUND)
		return mode == RECOVER_CONFIRM
			   ? err_set(MSGW_ENOTFOUND, "no restore of '%s' waits for confirmation",
				     env->gw->name)
			   : 0;
	confirm_open = strcmp(j.phase, "awaiting-confirm") == 0;
	if (mode == RECOVER_CONFIRM) {
		rc = confirm_open ? commit(env, &j, restored)
				  : err_set(MSGW_ERR,
					    "the restore of '%s' is not waiting for "
					    "confirmation (phase %s); run recover",
					    env->gw->name, j.phase);
		*what = "confirmed";
	} else if (strcmp(j.phase, "committing") == 0) {
		rc = commit(env, &j, restored);
		*what = "finished the restore";
	} else if (confirm_open && (mode == RECOVER_EXPIRED || j.confirm_deadline > time(NULL))) {
		if (j.confirm_deadline <= time(NULL)) {
			rc = undo_and_restart(env, &j, what);
		} else {
			/* after a reboot the apply's timer is gone: start a new one */
			if (mode == RECOVER_ANY)
				spawn_timer(env);
			*what = "waiting for confirmation (the timer runs)";
		}
	} else if (mode == RECOVER_EXPIRED) {
		*what = "nothing to do";
	} else {
		rc = undo_and_restart(env, &j, what);
	}
	journal_release(&j);
	return rc;
}

int apply_lock_target(struct lock **out, const struct config *cfg, const char *gateway)
{
	char *path = xasprintf("%s/target-%s.lock", cfg->state_dir, gateway);
	int rc;

	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST)
		rc = err_set_errno(MSGW_ERR, errno, "cannot create '%s'", cfg->state_dir);
	else
		rc = lock_acquire(out, path, "restore target");
	free(path);
	return rc;
}
