/*
 * extract: checked extraction of a whole snapshot through the local file
 * backend, in one pass: entries are written into a staging directory as
 * they pass their checks, then moved into place (top-level entries are
 * renamed) once all did.  Directories get their modes and times after
 * that, deepest first, so a read-only directory stops neither the writing
 * nor the move.
 */
#include "extract.h"
#include "archive.h"
#include "err.h"
#include "plan.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Create dir when missing (*created_out says so) and check it is empty. */
static int prepare_dir(struct fsys **fs_out, bool *created_out, const char *dir)
{
	struct fsys_dirent *ents = NULL;
	size_t n = 0;
	int rc;

	*created_out = mkdir(dir, 0700) == 0;
	if (!*created_out && errno != EEXIST)
		return err_set_errno(MSGW_ERR, errno, "cannot create '%s'", dir);
	fsys_open_local(fs_out, dir);
	rc = fsys_list(*fs_out, "", &ents, &n);
	fsys_dirents_free(ents, n);
	if (!rc && n)
		rc = err_set(MSGW_ERR,
			     "'%s' is not empty; extract only into a new or empty directory", dir);
	if (rc) {
		fsys_free(*fs_out);
		*fs_out = NULL;
	}
	return rc;
}

/* The last name looked up and its id: a lookup reads the whole passwd or
 * group file, and a snapshot's files mostly share one owner. */
struct id_memo {
	char *name;
	uint32_t id;
	bool found;
};

static struct id_memo uid_memo, gid_memo;

/* Who owns what this process creates in the staging directory: its own
 * owner, since the files and directories below it get the same user (the
 * process's) and group (the process's, or the directory's when it is
 * set-group-ID or the file system says so). */
static uint32_t made_uid = UINT32_MAX, made_gid = UINT32_MAX;

static void id_of(struct fsys *fs, struct id_memo *m, bool group, const char *name, uint32_t *id)
{
	if (!m->name || strcmp(m->name, name) != 0) {
		free(m->name);
		m->name = xstrdup(name);
		m->id = *id;
		m->found =
		    (group ? fsys_gid_of(fs, name, &m->id) : fsys_uid_of(fs, name, &m->id)) == 0;
	}
	if (m->found)
		*id = m->id;
}

static void memo_release(void)
{
	made_uid = made_gid = UINT32_MAX;
	free(uid_memo.name);
	free(gid_memo.name);
	memset(&uid_memo, 0, sizeof(uid_memo));
	memset(&gid_memo, 0, sizeof(gid_memo));
}

/* The owner to give e (ids mapped by name where the names are known here);
 * false when this process cannot give files away (not root). */
static bool owner_of(struct fsys *fs, const struct manifest_entry *e, uint32_t owner[2])
{
	static int root = -1;

	if (root < 0)
		root = geteuid() == 0;
	owner[0] = e->uid;
	owner[1] = e->gid;
	if (e->uname)
		id_of(fs, &uid_memo, false, e->uname, &owner[0]);
	if (e->gname)
		id_of(fs, &gid_memo, true, e->gname, &owner[1]);
	return root;
}

/* owner_of, and whether a chown would change anything */
static bool owner_to_set(struct fsys *fs, const struct manifest_entry *e, uint32_t owner[2])
{
	return owner_of(fs, e, owner) && (owner[0] != made_uid || owner[1] != made_gid);
}

static void set_owner_time(struct fsys *fs, const struct manifest_entry *e)
{
	uint32_t owner[2];

	if (owner_to_set(fs, e, owner))
		(void)fsys_chown(fs, e->path, owner[0], owner[1]);
	if (e->type != 'l')
		(void)fsys_utime(fs, e->path, e->mtime, e->mtime_nsec);
}

/* Where the entries go while they are checked: a hidden directory in the
 * destination, so moving them into place is a rename on one file system. */
struct stage {
	struct fsys *fs; /* rooted at the staging directory */
	char *name;	 /* its name in the destination */
	mode_t umask;	 /* the process's, to put back */
	bool umask_set;	 /* umask is 0 while the stage is open */
	struct fsys_file *f;
	const struct manifest_entry *open; /* the file f is writing */
	struct extract_result *out;
};

static int stage_begin(const struct manifest_entry *e, void *ctx)
{
	struct stage *st = ctx;

	if (e->type == 'd') {
		st->out->dirs++;
		return fsys_mkdir(st->fs, e->path, 0700);
	}
	if (e->type == 'l') {
		st->out->links++;
		return fsys_symlink(st->fs, e->link ? e->link : "", e->path);
	}
	st->out->files++;
	st->out->bytes += e->size;
	st->open = e;
	/* created with its permissions (the staging directory is 0700), so
	 * that mostly no chmod is needed after */
	return fsys_open_write(st->fs, e->path, e->mode & 0777, &st->f);
}

static int stage_data(const void *buf, size_t len, void *ctx)
{
	struct stage *st = ctx;

	return fsys_write(st->f, buf, len);
}

static int stage_end(const struct manifest_entry *e, void *ctx)
{
	struct stage *st = ctx;
	int rc = 0;

	if (e->type == 'f') {
		uint32_t owner[2], mode = e->mode;
		bool own = owner_to_set(st->fs, e, owner);
		int crc;

		/* created with its permissions (umask 0 while staging), and
		 * no set-ID or sticky bits (which open drops and a chown
		 * would clear) */
		if (!(mode & ~0777u))
			mode = FSYS_MODE_KEEP;
		/* through the open file: no path lookups, as tar does it */
		rc = fsys_file_setattr(st->f, e->path, mode, own ? owner : NULL, e->mtime,
				       e->mtime_nsec);
		crc = fsys_close(st->f);
		if (!rc)
			rc = crc;
		st->f = NULL;
		st->open = NULL;
	} else if (e->type == 'l') {
		set_owner_time(st->fs, e);
	}
	return rc;
}

/* A fresh hidden directory in the destination whose name no top-level
 * entry of the snapshot has. */
static int stage_open(struct stage *st, const char *dir, const struct manifest *m)
{
	int i;

	for (i = 0; i < 100; i++) {
		char *path = xasprintf("%s/.msgw-extract.XXXXXX", dir);

		if (!mkdtemp(path)) {
			int rc = err_set_errno(MSGW_ERR, errno,
					       "cannot create a staging "
					       "directory in '%s'",
					       dir);

			free(path);
			return rc;
		}
		st->name = xstrdup(strrchr(path, '/') + 1);
		if (!manifest_find(m, st->name)) {
			struct stat sb;

			/* Nothing else creates files while the entries go in, and the
			 * staging directory is 0700: so files are created with their
			 * modes as they are (the front's umask 077 would otherwise
			 * make every 0644 file need a chmod); stage_release puts the
			 * umask back. */
			st->umask = umask(0);
			st->umask_set = true;
			if (stat(path, &sb) == 0) {
				made_uid = (uint32_t)sb.st_uid;
				made_gid = (uint32_t)sb.st_gid;
			}
			fsys_open_local(&st->fs, path);
			free(path);
			return 0;
		}
		rmdir(path);
		free(path);
		free(st->name);
		st->name = NULL;
	}
	return err_set(MSGW_ERR, "cannot create a staging directory in '%s'", dir);
}

/* Throw the staging directory and whatever is in it away. */
static void stage_discard(struct stage *st, struct fsys *dest)
{
	if (st->f)
		(void)fsys_close(st->f);
	st->f = NULL;
	if (st->name)
		(void)fsys_remove_tree(dest, st->name);
}

static void stage_release(struct stage *st)
{
	if (st->umask_set)
		umask(st->umask);
	fsys_free(st->fs);
	free(st->name);
	memset(st, 0, sizeof(*st));
}

/* Move the top-level entries from the staging directory into place; if
 * one cannot be moved, those already moved go back. */
static int stage_commit(struct stage *st, struct fsys *dest, const struct manifest *m)
{
	size_t i, j;
	int rc = 0;

	for (i = 0; !rc && i < m->n; i++) {
		char *from;

		if (strchr(m->e[i].path, '/'))
			continue;
		from = fsys_join(st->name, m->e[i].path);
		rc = fsys_rename(dest, from, m->e[i].path);
		free(from);
	}
	for (j = 0; rc && j + 1 < i; j++) {
		char *back;

		if (strchr(m->e[j].path, '/'))
			continue;
		back = fsys_join(st->name, m->e[j].path);
		(void)fsys_rename(dest, m->e[j].path, back);
		free(back);
	}
	if (!rc)
		(void)fsys_rmdir(dest, st->name); /* empty now; only a stray name if this failed */
	return rc;
}

static void finish_dirs(struct fsys *fs, const struct snapshot *s)
{
	size_t i = s->manifest.n;

	while (i-- > 0) {
		const struct manifest_entry *e = &s->manifest.e[i];

		if (e->type != 'd')
			continue;
		(void)fsys_chmod(fs, e->path, e->mode);
		set_owner_time(fs, e);
	}
}

/* Room for every file (a block more each), before anything is written. */
static int check_space(struct fsys *fs, const struct manifest *m)
{
	uint64_t need = 0;
	size_t i;

	for (i = 0; i < m->n; i++)
		need += (m->e[i].type == 'f' ? m->e[i].size : 0) + 4096;
	return fsys_check_space(fs, need, "extract the snapshot");
}

/*
 * Durable before success is reported (a standby bootstrapped from it may
 * lose power next): the moves into place and the folders' modes and times
 * (one syncfs of the destination's file system: every file and folder at
 * once), and the destination's own entry in its parent when this call
 * created it.
 */
static int sync_done(struct fsys *fs, const char *dir, bool created)
{
	int rc = fsys_sync_all(fs);

	if (!rc && created) {
		char *parent = xstrdup(dir), *slash = strrchr(parent, '/');

		if (slash)
			*(slash == parent ? slash + 1 : slash) = '\0';
		rc = fsync_dir(slash ? parent : ".");
		free(parent);
	}
	return rc;
}

/*
 * One pass over the archive: each entry is checked exactly as a restore
 * checks it (plan_check_snapshot_with) and written into a staging
 * directory as soon as it passed; only when the whole snapshot checked out
 * are the entries moved into place.  On any failure the staging directory
 * goes, and a destination this call created goes too.
 */
static ssize_t read_blob(void *ctx, void *buf, size_t len)
{
	return repo_stream_read(ctx, buf, len);
}

int extract_snapshot(struct extract_result *out, struct repo *r, const struct config *cfg,
		     const char *id, const char *dir)
{
	struct archive_snapshot_visit v = {
	    .begin = stage_begin, .data = stage_data, .end = stage_end};
	struct archive_snapshot_reader *ar = NULL;
	struct repo_stream *blob = NULL;
	struct stage st = {0};
	struct plan_guard guard;
	struct fsys *fs = NULL;
	struct snapshot s;
	bool created = false;
	size_t size;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = snapshot_load(&s, r, id, false);
	if (rc)
		return rc;
	plan_guard_init(&guard, cfg, NULL, snapshot_meta_get(&s.meta, "gateway"));
	st.out = out;
	v.ctx = &st;
	/* the archive is streamed, and checked against its id by its end */
	rc = repo_open_stream(&blob, &size, r, s.id, "config.tar.zst");
	if (rc)
		err_wrap(rc, "extract into '%s' failed, nothing written there", dir);
	else
		rc = prepare_dir(&fs, &created, dir);
	if (!rc)
		rc = check_space(fs, &s.manifest);
	if (!rc)
		rc = stage_open(&st, dir, &s.manifest);
	if (!rc) {
		if ((rc = archive_snapshot_open_stream(&ar, read_blob, blob)) != 0)
			err_wrap(rc, "snapshot %.12s", s.id);
		else
			rc = plan_check_archive(&s, &guard, ar, &v);
	}
	/* read to its end: an encrypted snapshot's unsealed scratch file (in
	 * the repository, often the destination's file system) goes now, its
	 * pages never written, before the syncs below would write them */
	archive_snapshot_free(ar);
	ar = NULL;
	repo_stream_free(blob);
	blob = NULL;
	if (!rc)
		rc = fsys_sync_all(st.fs); /* every file and folder staged */
	if (!rc)
		rc = stage_commit(&st, fs, &s.manifest);
	if (!rc) {
		finish_dirs(fs, &s);
		rc = sync_done(fs, dir, created);
	}
	if (rc && fs) {
		stage_discard(&st, fs);
		if (created)
			rmdir(dir);
		err_wrap(rc, "extract into '%s' failed, nothing written there", dir);
		memset(out, 0, sizeof(*out));
	}
	if (!rc)
		out->stripped = guard.nstripped;
	plan_guard_release(&guard);
	archive_snapshot_free(ar);
	repo_stream_free(blob);
	stage_release(&st);
	fsys_free(fs);
	snapshot_release(&s);
	memo_release();
	return rc;
}
