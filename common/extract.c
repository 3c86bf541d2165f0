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
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
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
	free(uid_memo.name);
	free(gid_memo.name);
	memset(&uid_memo, 0, sizeof(uid_memo));
	memset(&gid_memo, 0, sizeof(gid_memo));
}

static void set_owner_time(struct fsys *fs, const struct manifest_entry *e)
{
	uint32_t uid = e->uid, gid = e->gid;

	if (e->uname)
		id_of(fs, &uid_memo, false, e->uname, &uid);
	if (e->gname)
		id_of(fs, &gid_memo, true, e->gname, &gid);
	if (geteuid() == 0)
		(void)fsys_chown(fs, e->path, uid, gid);
	if (e->type != 'l')
		(void)fsys_utime(fs, e->path, e->mtime, e->mtime_nsec);
}

/* Where the entries go while they are checked: a hidden directory in the
 * destination, so moving them into place is a rename on one file system. */
struct stage {
	struct fsys *fs; /* rooted at the staging directory */
	char *name;	 /* its name in the destination */
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
	return fsys_open_write(st->fs, e->path, 0600, &st->f);
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
		rc = fsys_close(st->f);
		st->f = NULL;
		st->open = NULL;
		if (!rc)
			rc = fsys_chmod(st->fs, e->path, e->mode);
	}
	if (!rc && e->type != 'd')
		set_owner_time(st->fs, e);
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

/*
 * The writer: a second thread does the staging's file-system calls (open,
 * write, close, mode, owner, times), so they overlap with the checking and
 * hashing on this thread, as "tar -x" runs beside "zstd -d".  The checker
 * hands it each entry's begin, data and end through WQ_SLOTS slots, in
 * order; data is copied into the slot.  The first failure of either side
 * stops both: the checker's failure sets stop, the writer's is kept in rc
 * and msg and returned to the checker at its next hand-over.
 */
#define WQ_SLOTS 16

struct wq_item {
	char kind; /* 'b' begin, 'd' data, 'e' end */
	const struct manifest_entry *e;
	char *buf;
	size_t len, cap;
};

struct writer {
	struct stage *st;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wq_item item[WQ_SLOTS];
	size_t produced, consumed; /* counting up; slot = n % WQ_SLOTS */
	bool done;		   /* the checker has handed over everything */
	bool stop;		   /* the checker failed: drop the rest */
	int rc;			   /* the writer's failure */
	char msg[1024];
};

static int wq_run(struct stage *st, const struct wq_item *it)
{
	if (it->kind == 'b')
		return stage_begin(it->e, st);
	if (it->kind == 'd')
		return stage_data(it->buf, it->len, st);
	return stage_end(it->e, st);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct wq_item *it;
		int rc;

		while (w->consumed == w->produced && !w->done && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop || w->consumed == w->produced)
			break;
		it = &w->item[w->consumed % WQ_SLOTS];
		pthread_mutex_unlock(&w->mu);
		rc = wq_run(w->st, it); /* the slot is ours until consumed moves */
		pthread_mutex_lock(&w->mu);
		w->consumed++;
		if (rc) {
			w->rc = rc;
			snprintf(w->msg, sizeof(w->msg), "%s", err_last());
		}
		pthread_cond_broadcast(&w->cv);
		if (rc)
			break;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Hand one step to the writer (the checker's side). */
static int wq_put(struct writer *w, char kind, const struct manifest_entry *e, const void *buf,
		  size_t len)
{
	struct wq_item *it;

	pthread_mutex_lock(&w->mu);
	while (w->produced - w->consumed == WQ_SLOTS && !w->rc)
		pthread_cond_wait(&w->cv, &w->mu);
	if (w->rc) {
		pthread_mutex_unlock(&w->mu);
		return err_set(w->rc, "%s", w->msg);
	}
	it = &w->item[w->produced % WQ_SLOTS];
	pthread_mutex_unlock(&w->mu);
	/* the writer does not touch this slot until produced moves */
	it->kind = kind;
	it->e = e;
	it->len = len;
	if (len > it->cap) {
		it->cap = len;
		it->buf = xrealloc(it->buf, len);
	}
	if (len)
		memcpy(it->buf, buf, len);
	pthread_mutex_lock(&w->mu);
	w->produced++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static int wq_begin(const struct manifest_entry *e, void *ctx)
{
	return wq_put(ctx, 'b', e, NULL, 0);
}

static int wq_data(const void *buf, size_t len, void *ctx)
{
	return wq_put(ctx, 'd', NULL, buf, len);
}

static int wq_end(const struct manifest_entry *e, void *ctx)
{
	return wq_put(ctx, 'e', e, NULL, 0);
}

static int writer_start(struct writer *w, struct stage *st)
{
	int e;

	memset(w, 0, sizeof(*w));
	w->st = st;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	e = pthread_create(&w->thread, NULL, writer_main, w);
	if (e) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return err_set_errno(MSGW_ERR, e, "cannot start a thread");
	}
	return 0;
}

/* Wait for the writer: with checked == 0 it finishes what it was handed
 * and its failure, if any, is returned with its message; otherwise it
 * drops the rest and the checker's message stands. */
static int writer_finish(struct writer *w, int checked)
{
	size_t i;
	int rc;

	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->stop = checked != 0;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	rc = w->rc && !checked ? err_set(w->rc, "%s", w->msg) : 0;
	for (i = 0; i < WQ_SLOTS; i++)
		free(w->item[i].buf);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
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

int extract_snapshot(struct extract_result *out, struct repo *r, const char *id, const char *dir)
{
	struct archive_visit v = {.begin = wq_begin, .data = wq_data, .end = wq_end};
	struct writer w;
	struct archive_snapshot_reader *ar = NULL;
	struct repo_stream *blob = NULL;
	struct stage st = {0};
	struct fsys *fs = NULL;
	struct snapshot s;
	bool created = false;
	size_t size;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = snapshot_load(&s, r, id, false);
	if (rc)
		return rc;
	st.out = out;
	v.ctx = &w;
	/* the archive is streamed, never held whole */
	rc = repo_open_stream(&blob, &size, r, s.id, "config.tar.zst");
	if (!rc)
		rc = prepare_dir(&fs, &created, dir);
	if (!rc)
		rc = stage_open(&st, dir, &s.manifest);
	if (!rc && (rc = archive_snapshot_open_stream(&ar, read_blob, blob)) != 0)
		err_wrap(rc, "snapshot %.12s", s.id);
	if (!rc && (rc = writer_start(&w, &st)) == 0) {
		int wrc;

		rc = plan_check_archive(&s, ar, &v);
		/* the checker's message stands when it failed first */
		wrc = writer_finish(&w, rc);
		if (!rc)
			rc = wrc;
	}
	if (!rc)
		rc = stage_commit(&st, fs, &s.manifest);
	if (!rc)
		finish_dirs(fs, &s);
	if (rc && fs) {
		stage_discard(&st, fs);
		if (created)
			rmdir(dir);
		err_wrap(rc, "extract into '%s' failed, nothing written there", dir);
		memset(out, 0, sizeof(*out));
	}
	archive_snapshot_free(ar);
	repo_stream_free(blob);
	stage_release(&st);
	fsys_free(fs);
	snapshot_release(&s);
	memo_release();
	return rc;
}
