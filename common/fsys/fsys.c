/*
 * fsys: the backend-independent half of the file-access interface: dispatch
 * through the ops table, and the helpers built from the primitives (read a
 * whole file, durable atomic write, mkdir -p, tree removal).  The backends
 * live in fsys/local.c and fsys/sftp.c.
 */
#include "fsys.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct fsys_file {
	struct fsys *fs;
	void *fh;
};

static fsys_remote_opener remote_opener;

void fsys_set_remote_opener(fsys_remote_opener opener)
{
	remote_opener = opener;
}

int fsys_open(struct fsys **out, const char *location, const struct fsys_open_opts *opts)
{
	*out = NULL;
	if (strncmp(location, "ssh://", 6) == 0) {
		if (!remote_opener)
			return err_set(MSGW_ECONFIG,
				       "'%s': ssh locations are not supported in this build",
				       location);
		return remote_opener(out, location, opts);
	}
	if (location[0] != '/')
		return err_set(MSGW_ECONFIG,
			       "'%s': location must be an absolute path or ssh:// URL", location);
	return fsys_open_local(out, location);
}

void fsys_free(struct fsys *fs)
{
	if (!fs)
		return;
	if (fs->ops && fs->ops->free)
		fs->ops->free(fs->ctx);
	free(fs->location);
	free(fs);
}

int fsys_stat(struct fsys *fs, const char *path, struct fsys_stat *out)
{
	return fs->ops->stat(fs->ctx, path, out);
}

static int dirent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fsys_dirent *)a)->name, ((const struct fsys_dirent *)b)->name);
}

int fsys_list(struct fsys *fs, const char *path, struct fsys_dirent **out, size_t *n_out)
{
	int rc = fs->ops->list(fs->ctx, path, out, n_out);

	if (rc == 0 && *n_out > 1)
		qsort(*out, *n_out, sizeof(**out), dirent_cmp);
	return rc;
}

int fsys_list_many(struct fsys *fs, const char *const *paths, size_t n, struct fsys_listing *out)
{
	size_t i;
	int rc = 0;

	memset(out, 0, n * sizeof(*out));
	if (fs->ops->list_many)
		rc = fs->ops->list_many(fs->ctx, paths, n, out);
	for (i = 0; i < n; i++) {
		if (!out[i].ok)
			continue;
		if (rc) {
			fsys_dirents_free(out[i].ents, out[i].n);
			memset(&out[i], 0, sizeof(out[i]));
		} else if (out[i].n > 1) {
			qsort(out[i].ents, out[i].n, sizeof(*out[i].ents), dirent_cmp);
		}
	}
	return rc;
}

int fsys_batches(struct fsys *fs)
{
	return fs->ops->batch != NULL;
}

int fsys_write_new(struct fsys *fs, const char *path, const void *data, size_t len, uint32_t mode,
		   const uint32_t *owner, int64_t mtime, int64_t mtime_nsec)
{
	struct fsys_file *f = NULL;
	int rc = fsys_create(fs, path, 0600, &f);

	if (!rc)
		rc = fsys_write(f, data, len);
	if (!rc)
		rc = fsys_file_setattr(f, path, mode, owner, mtime, mtime_nsec);
	if (!rc)
		rc = fsys_sync(f);
	if (f && fsys_close(f) && !rc)
		rc = MSGW_ERR;
	return rc;
}

static int batch_create(struct fsys *fs, struct fsys_op *op)
{
	return fsys_write_new(fs, op->path, op->data, op->len, op->mode, op->owner, op->mtime, 0);
}

static int batch_one(struct fsys *fs, struct fsys_op *op)
{
	switch (op->kind) {
	case FSYS_OP_LSTAT:
		return fsys_stat(fs, op->path, &op->st);
	case FSYS_OP_RENAME:
		return fsys_rename(fs, op->path, op->to);
	case FSYS_OP_UNLINK:
		return fsys_unlink(fs, op->path);
	case FSYS_OP_CHMOD:
		return fsys_chmod(fs, op->path, op->mode);
	case FSYS_OP_RMDIR:
		return fsys_rmdir(fs, op->path);
	case FSYS_OP_CREATE:
		return batch_create(fs, op);
	}
	return err_set(MSGW_ERR, "%s: unknown operation", fs->location);
}

int fsys_batch(struct fsys *fs, struct fsys_op *ops, size_t n)
{
	char first[1024] = "";
	size_t i;

	for (i = 0; i < n; i++)
		ops[i].rc = 0;
	if (n == 0)
		return 0;
	if (fs->ops->batch)
		return fs->ops->batch(fs->ctx, ops, n);
	for (i = 0; i < n; i++) {
		ops[i].rc = batch_one(fs, &ops[i]);
		if (ops[i].rc && !first[0])
			snprintf(first, sizeof(first), "%s", err_last());
	}
	if (first[0])
		err_set(MSGW_ERR, "%s", first);
	return 0;
}

int fsys_prefetch(struct fsys *fs, const char *const *paths, const uint64_t *sizes, size_t n)
{
	return fs->ops->prefetch ? fs->ops->prefetch(fs->ctx, paths, sizes, n) : 0;
}

int fsys_file_stat(struct fsys_file *f, const char *path, struct fsys_stat *out)
{
	if (f->fs->ops->fstat)
		return f->fs->ops->fstat(f->fs->ctx, f->fh, out);
	return fsys_stat(f->fs, path, out);
}

int fsys_clock(struct fsys *fs, int64_t *out)
{
	if (fs->ops->clock)
		return fs->ops->clock(fs->ctx, out);
	*out = (int64_t)time(NULL);
	return 0;
}

void fsys_dirents_free(struct fsys_dirent *ents, size_t n)
{
	size_t i;

	if (!ents)
		return;
	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}

static int wrap_handle(struct fsys *fs, void *fh, struct fsys_file **out)
{
	struct fsys_file *f = xmalloc(sizeof(*f));

	f->fs = fs;
	f->fh = fh;
	*out = f;
	return 0;
}

int fsys_open_read(struct fsys *fs, const char *path, struct fsys_file **out)
{
	void *fh = NULL;
	int rc = fs->ops->open_read(fs->ctx, path, &fh);

	*out = NULL;
	return rc ? rc : wrap_handle(fs, fh, out);
}

int fsys_open_write(struct fsys *fs, const char *path, uint32_t mode, struct fsys_file **out)
{
	void *fh = NULL;
	int rc = fs->ops->open_write(fs->ctx, path, mode, &fh);

	*out = NULL;
	return rc ? rc : wrap_handle(fs, fh, out);
}

int fsys_create(struct fsys *fs, const char *path, uint32_t mode, struct fsys_file **out)
{
	void *fh = NULL;
	int rc;

	*out = NULL;
	if (!fs->ops->create)
		return err_set(MSGW_ERR, "%s: cannot create '%s' exclusively", fs->location, path);
	rc = fs->ops->create(fs->ctx, path, mode, &fh);
	return rc ? rc : wrap_handle(fs, fh, out);
}

ssize_t fsys_read(struct fsys_file *f, void *buf, size_t len)
{
	return f->fs->ops->read(f->fs->ctx, f->fh, buf, len);
}

int fsys_write(struct fsys_file *f, const void *buf, size_t len)
{
	return f->fs->ops->write(f->fs->ctx, f->fh, buf, len);
}

int fsys_sync(struct fsys_file *f)
{
	return f->fs->ops->sync(f->fs->ctx, f->fh);
}

int fsys_close(struct fsys_file *f)
{
	int rc;

	if (!f)
		return 0;
	rc = f->fs->ops->close(f->fs->ctx, f->fh);
	free(f);
	return rc;
}

int fsys_read_all(struct fsys *fs, const char *path, char **buf_out, size_t *len_out)
{
	struct fsys_file *f = NULL;
	struct buf b;
	char chunk[65536];
	ssize_t n;
	int rc;

	*buf_out = NULL;
	rc = fsys_open_read(fs, path, &f);
	if (rc)
		return rc;
	buf_init(&b);
	while ((n = fsys_read(f, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	fsys_close(f);
	if (n < 0) {
		buf_release(&b);
		return (int)n;
	}
	*buf_out = buf_detach(&b, len_out);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **fsys_parents(const char *const *paths, size_t n, size_t *n_out)
{
	char **dirs = NULL;
	size_t i, k, cap = 0, nd = 0;

	for (i = 0; i < n; i++) {
		const char *slash;

		for (slash = strchr(paths[i], '/'); slash; slash = strchr(slash + 1, '/')) {
			if (nd == cap) {
				cap = cap ? cap * 2 : 16;
				dirs = xrealloc(dirs, cap * sizeof(*dirs));
			}
			dirs[nd++] = xstrndup(paths[i], (size_t)(slash - paths[i]));
		}
	}
	if (nd > 1)
		qsort(dirs, nd, sizeof(*dirs), cmp_name);
	for (i = 0, k = 0; i < nd; i++) {
		if (k && strcmp(dirs[i], dirs[k - 1]) == 0) {
			free(dirs[i]);
			continue;
		}
		dirs[k++] = dirs[i];
	}
	*n_out = k;
	return dirs;
}

void fsys_free_names(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

char *fsys_join(const char *a, const char *b)
{
	if (!a || !*a || strcmp(a, ".") == 0)
		return xstrdup(b);
	if (!b || !*b || strcmp(b, ".") == 0)
		return xstrdup(a);
	return xconcat3(a, "/", b);
}

static char *parent_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
}

int fsys_check_space(struct fsys *fs, uint64_t need, const char *what)
{
	uint64_t avail = 0;
	int rc = fsys_space(fs, &avail);

#ifdef MSGW_TESTING
	const char *fake = getenv("MSGW_FAULT_FREE_SPACE");

	if (fake) {
		avail = strtoull(fake, NULL, 10);
		rc = 0;
	}
#endif
	if (rc == MSGW_ENOTFOUND)
		return 0; /* the backend cannot tell: the writes will */
	if (rc)
		return rc;
	if (avail < need)
		return err_set(MSGW_ERR,
			       "not enough free space on '%s' to %s: %llu bytes needed, %llu free; "
			       "nothing was written",
			       fs->location, what, (unsigned long long)need,
			       (unsigned long long)avail);
	return 0;
}

void fsys_random_suffix(char *buf, size_t len)
{
	uint64_t r = 0;
	ssize_t n;

	do
		n = getrandom(&r, sizeof(r), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(r)) {
		/* getrandom cannot fail on Linux >= 3.17 once the pool is
		 * ready; the exclusive create below keeps this safe anyway */
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid();
	}
	snprintf(buf, len, "%016llx", (unsigned long long)r);
}

int fsys_write_atomic(struct fsys *fs, const char *path, const void *buf, size_t len, uint32_t mode)
{
	char rnd[17];
	char *tmp, *dir = parent_of(path);
	struct fsys_file *f = NULL;
	int rc;

	fsys_random_suffix(rnd, sizeof(rnd));
	tmp = xasprintf("%s.msgw-tmp.%s", path, rnd);
	rc = fsys_create(fs, tmp, mode, &f);
	if (rc)
		goto cleanup;
	rc = fsys_write(f, buf, len);
	if (!rc)
		rc = fsys_sync(f);
	if (!rc)
		rc = fsys_close(f);
	else
		fsys_close(f);
	f = NULL;
	if (!rc)
		rc = fsys_chmod(fs, tmp, mode);
	if (!rc && !fsys_rename_overwrites(fs))
		(void)fsys_unlink(fs, path);
	if (!rc)
		rc = fsys_rename(fs, tmp, path);
	if (!rc)
		rc = fsys_sync_dir(fs, dir);
	if (rc)
		(void)fsys_unlink(fs, tmp);
cleanup:
	free(tmp);
	free(dir);
	return rc;
}

int fsys_rename(struct fsys *fs, const char *from, const char *to)
{
	return fs->ops->rename(fs->ctx, from, to);
}

int fsys_rename_overwrites(struct fsys *fs)
{
	return fs->ops->rename_overwrites ? fs->ops->rename_overwrites(fs->ctx) : 1;
}

int fsys_unlink(struct fsys *fs, const char *path)
{
	return fs->ops->unlink(fs->ctx, path);
}

int fsys_mkdir(struct fsys *fs, const char *path, uint32_t mode)
{
	return fs->ops->mkdir(fs->ctx, path, mode);
}

int fsys_mkdirs(struct fsys *fs, const char *path, uint32_t mode)
{
	struct fsys_stat st;
	char *parent;
	int rc;

	if (!*path || strcmp(path, ".") == 0)
		return 0;
	rc = fsys_stat(fs, path, &st);
	if (rc == 0) {
		if (st.type == FSYS_DIR)
			return 0;
		return err_set(MSGW_ERR, "%s: '%s' exists and is not a directory", fs->location,
			       path);
	}
	if (rc != MSGW_ENOTFOUND)
		return rc;
	parent = parent_of(path);
	rc = fsys_mkdirs(fs, parent, mode);
	free(parent);
	return rc ? rc : fsys_mkdir(fs, path, mode);
}

int fsys_rmdir(struct fsys *fs, const char *path)
{
	return fs->ops->rmdir(fs->ctx, path);
}

int fsys_remove_tree(struct fsys *fs, const char *path)
{
	struct fsys_dirent *ents = NULL;
	struct fsys_stat st;
	size_t n = 0, i;
	int rc;

	rc = fsys_stat(fs, path, &st);
	if (rc)
		return rc == MSGW_ENOTFOUND ? 0 : rc;
	if (st.type != FSYS_DIR)
		return fsys_unlink(fs, path);
	rc = fsys_list(fs, path, &ents, &n);
	for (i = 0; rc == 0 && i < n; i++) {
		char *child = fsys_join(path, ents[i].name);

		rc = fsys_remove_tree(fs, child);
		free(child);
	}
	fsys_dirents_free(ents, n);
	return rc ? rc : fsys_rmdir(fs, path);
}

int fsys_readlink(struct fsys *fs, const char *path, char **out)
{
	return fs->ops->readlink(fs->ctx, path, out);
}

int fsys_symlink(struct fsys *fs, const char *target, const char *path)
{
	return fs->ops->symlink(fs->ctx, target, path);
}

int fsys_chmod(struct fsys *fs, const char *path, uint32_t mode)
{
	return fs->ops->chmod(fs->ctx, path, mode);
}

int fsys_chown(struct fsys *fs, const char *path, uint32_t uid, uint32_t gid)
{
	return fs->ops->chown(fs->ctx, path, uid, gid);
}

int fsys_utime(struct fsys *fs, const char *path, int64_t mtime, int64_t mtime_nsec)
{
	return fs->ops->utime(fs->ctx, path, mtime, mtime_nsec);
}

int fsys_file_setattr(struct fsys_file *f, const char *path, uint32_t mode, const uint32_t *owner,
		      int64_t mtime, int64_t mtime_nsec)
{
	struct fsys *fs = f->fs;
	int rc;

	if (fs->ops->fsetattr)
		return fs->ops->fsetattr(fs->ctx, f->fh, mode, owner, mtime, mtime_nsec);
	if (owner)
		(void)fsys_chown(fs, path, owner[0], owner[1]);
	rc = mode == FSYS_MODE_KEEP ? 0 : fsys_chmod(fs, path, mode);
	if (!rc)
		(void)fsys_utime(fs, path, mtime, mtime_nsec);
	return rc;
}

int fsys_sync_dir(struct fsys *fs, const char *path)
{
	return fs->ops->sync_dir(fs->ctx, path);
}

int fsys_sync_all(struct fsys *fs)
{
	return fs->ops->sync_all ? fs->ops->sync_all(fs->ctx) : 0;
}

int fsys_space(struct fsys *fs, uint64_t *avail_out)
{
	*avail_out = 0;
	return fs->ops->space ? fs->ops->space(fs->ctx, avail_out) : MSGW_ENOTFOUND;
}

int fsys_uname(struct fsys *fs, uint32_t uid, char *buf, size_t len)
{
	return fs->ops->uname ? fs->ops->uname(fs->ctx, uid, buf, len) : MSGW_ENOTFOUND;
}

int fsys_gname(struct fsys *fs, uint32_t gid, char *buf, size_t len)
{
	return fs->ops->gname ? fs->ops->gname(fs->ctx, gid, buf, len) : MSGW_ENOTFOUND;
}

int fsys_uid_of(struct fsys *fs, const char *name, uint32_t *out)
{
	return fs->ops->uid_of ? fs->ops->uid_of(fs->ctx, name, out) : MSGW_ENOTFOUND;
}

int fsys_gid_of(struct fsys *fs, const char *name, uint32_t *out)
{
	return fs->ops->gid_of ? fs->ops->gid_of(fs->ctx, name, out) : MSGW_ENOTFOUND;
}
