/*
 * extract: checked extraction of a whole snapshot through the local file
 * backend.  Directories get their modes and times after their contents are
 * written, deepest first, so a read-only directory does not stop the walk.
 */
#include "extract.h"
#include "archive.h"
#include "err.h"
#include "plan.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int prepare_dir(struct fsys **fs_out, const char *dir)
{
	struct fsys_dirent *ents = NULL;
	size_t n = 0;
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
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

static int write_file(struct fsys *fs, struct archive_snapshot_reader *ar,
		      const struct manifest_entry *e)
{
	static char chunk[1 << 16];
	struct fsys_file *f = NULL;
	ssize_t n;
	int rc;

	rc = fsys_open_write(fs, e->path, 0600, &f);
	while (!rc && (n = archive_snapshot_read(ar, chunk, sizeof(chunk))) > 0)
		rc = fsys_write(f, chunk, (size_t)n);
	if (!rc && n < 0)
		rc = (int)n;
	if (f && fsys_close(f) && !rc)
		rc = MSGW_ERR;
	if (!rc)
		rc = fsys_chmod(fs, e->path, e->mode);
	return rc;
}

static int write_entries(struct extract_result *out, struct fsys *fs, struct snapshot *s)
{
	struct archive_snapshot_reader *ar = NULL;
	struct archive_item it;
	int rc;

	rc = archive_snapshot_open(&ar, s->archive, s->archive_len);
	while (!rc && (rc = archive_snapshot_next(ar, &it)) == 1) {
		struct manifest_entry *e =
		    (struct manifest_entry *)manifest_find(&s->manifest, it.path);

		if (!e) {
			rc = err_set(MSGW_ECORRUPT, "'%s': not in the manifest", it.path);
			break;
		}
		if (e->type == 'd') {
			rc = fsys_mkdir(fs, e->path, 0700);
			out->dirs++;
		} else if (e->type == 'l') {
			rc = fsys_symlink(fs, e->link ? e->link : "", e->path);
			out->links++;
		} else {
			rc = write_file(fs, ar, e);
			out->files++;
			out->bytes += e->size;
		}
		if (!rc && e->type != 'd')
			set_owner_time(fs, e);
	}
	archive_snapshot_free(ar);
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

int extract_snapshot(struct extract_result *out, struct repo *r, const char *id, const char *dir)
{
	struct fsys *fs = NULL;
	struct snapshot s;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = snapshot_load(&s, r, id, true);
	if (rc)
		return rc;
	rc = plan_check_snapshot(&s);
	if (!rc)
		rc = prepare_dir(&fs, dir);
	if (!rc)
		rc = write_entries(out, fs, &s);
	if (!rc)
		finish_dirs(fs, &s);
	if (rc && fs)
		err_wrap(rc, "extract into '%s' failed (partial files left there)", dir);
	fsys_free(fs);
	snapshot_release(&s);
	memo_release();
	return rc;
}
