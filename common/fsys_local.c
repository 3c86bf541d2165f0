/*
 * fsys_local: the local POSIX backend of the file-access interface.  The
 * context is the root directory; every relative path is joined to it.  It
 * never follows a symbolic link in the last component (lstat, O_NOFOLLOW);
 * checking the components on the way is the caller's job (restore does it).
 */
#include "fsys.h"
#include "err.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct local {
	char *root;
};

static char *full(struct local *l, const char *path)
{
	if (!path || !*path || strcmp(path, ".") == 0)
		return xstrdup(l->root);
	return xconcat3(l->root, "/", path);
}

static int fail(int errnum, const char *what, const char *p)
{
	return err_set_errno(errnum == ENOENT ? MSGW_ENOTFOUND : MSGW_ERR, errnum, "cannot %s '%s'",
			     what, p);
}

static void fill_stat(struct fsys_stat *out, const struct stat *st)
{
	memset(out, 0, sizeof(*out));
	if (S_ISREG(st->st_mode))
		out->type = FSYS_FILE;
	else if (S_ISDIR(st->st_mode))
		out->type = FSYS_DIR;
	else if (S_ISLNK(st->st_mode))
		out->type = FSYS_LINK;
	else
		out->type = FSYS_OTHER;
	out->mode = st->st_mode & 07777;
	out->uid = st->st_uid;
	out->gid = st->st_gid;
	out->size = (uint64_t)st->st_size;
	out->mtime = st->st_mtim.tv_sec;
	out->mtime_nsec = st->st_mtim.tv_nsec;
	out->ctime = st->st_ctim.tv_sec;
	out->ctime_nsec = st->st_ctim.tv_nsec;
	out->ino = st->st_ino;
	out->dev = st->st_dev;
}

static int l_stat(void *ctx, const char *path, struct fsys_stat *out)
{
	char *p = full(ctx, path);
	struct stat st;
	int rc = 0;

	if (lstat(p, &st) < 0)
		rc = fail(errno, "stat", p);
	else
		fill_stat(out, &st);
	free(p);
	return rc;
}

static int l_list(void *ctx, const char *path, struct fsys_dirent **out, size_t *n_out)
{
	char *p = full(ctx, path);
	struct fsys_dirent *ents = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int rc = 0, dfd;
	DIR *d;

	*out = NULL;
	*n_out = 0;
	d = opendir(p);
	if (!d) {
		rc = fail(errno, "open directory", p);
		goto cleanup;
	}
	dfd = dirfd(d);
	while ((errno = 0, de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* vanished while we looked */
			rc = err_set_errno(MSGW_ERR, errno, "cannot stat '%s/%s'", p, de->d_name);
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			ents = xrealloc(ents, cap * sizeof(*ents));
		}
		ents[n].name = xstrdup(de->d_name);
		fill_stat(&ents[n].st, &st);
		n++;
	}
	if (!rc && errno)
		rc = fail(errno, "read directory", p);
	closedir(d);
	if (rc) {
		fsys_dirents_free(ents, n);
		goto cleanup;
	}
	*out = ents;
	*n_out = n;
cleanup:
	free(p);
	return rc;
}

struct lfile {
	int fd;
	char *path;
};

static int open_common(struct local *l, const char *path, int flags, uint32_t mode, void **out)
{
	char *p = full(l, path);
	struct lfile *f;
	int fd = open(p, flags | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);

	if (fd < 0) {
		int rc = fail(errno, "open", p);

		free(p);
		return rc;
	}
	f = xmalloc(sizeof(*f));
	f->fd = fd;
	f->path = p;
	*out = f;
	return 0;
}

static int l_open_read(void *ctx, const char *path, void **out)
{
	return open_common(ctx, path, O_RDONLY, 0, out);
}

static int l_open_write(void *ctx, const char *path, uint32_t mode, void **out)
{
	return open_common(ctx, path, O_WRONLY | O_CREAT | O_TRUNC, mode, out);
}

static ssize_t l_read(void *ctx, void *fh, void *buf, size_t len)
{
	struct lfile *f = fh;
	ssize_t n;

	(void)ctx;
	do
		n = read(f->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(errno, "read", f->path);
	return n;
}

static int l_write(void *ctx, void *fh, const void *buf, size_t len)
{
	struct lfile *f = fh;
	const char *p = buf;

	(void)ctx;
	while (len > 0) {
		ssize_t n = write(f->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(errno, "write", f->path);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int l_sync(void *ctx, void *fh)
{
	struct lfile *f = fh;

	(void)ctx;
	if (fsync(f->fd) < 0)
		return fail(errno, "fsync", f->path);
	return 0;
}

static int l_close(void *ctx, void *fh)
{
	struct lfile *f = fh;
	int rc = 0;

	(void)ctx;
	if (close(f->fd) < 0)
		rc = fail(errno, "close", f->path);
	free(f->path);
	free(f);
	return rc;
}

/* Run a path operation; "what" names it in the error message. */
#define PATH_OP(call, what, p)                                                                     \
	do {                                                                                       \
		int rc_ = 0;                                                                       \
		if ((call) < 0)                                                                    \
			rc_ = fail(errno, what, p);                                                \
		free(p);                                                                           \
		return rc_;                                                                        \
	} while (0)

static int l_rename(void *ctx, const char *from, const char *to)
{
	char *a = full(ctx, from), *b = full(ctx, to);
	int rc = 0;

	if (rename(a, b) < 0)
		rc = err_set_errno(errno == ENOENT ? MSGW_ENOTFOUND : MSGW_ERR, errno,
				   "cannot rename '%s' to '%s'", a, b);
	free(a);
	free(b);
	return rc;
}

static int l_unlink(void *ctx, const char *path)
{
	char *p = full(ctx, path);

	PATH_OP(unlink(p), "remove", p);
}

static int l_mkdir(void *ctx, const char *path, uint32_t mode)
{
	char *p = full(ctx, path);

	PATH_OP(mkdir(p, (mode_t)mode), "create directory", p);
}

static int l_rmdir(void *ctx, const char *path)
{
	char *p = full(ctx, path);

	PATH_OP(rmdir(p), "remove directory", p);
}

static int l_readlink(void *ctx, const char *path, char **out)
{
	char *p = full(ctx, path);
	char target[4096];
	ssize_t n = readlink(p, target, sizeof(target) - 1);
	int rc = 0;

	*out = NULL;
	if (n < 0)
		rc = fail(errno, "read link", p);
	else
		*out = xstrndup(target, (size_t)n);
	free(p);
	return rc;
}

static int l_symlink(void *ctx, const char *target, const char *path)
{
	char *p = full(ctx, path);

	PATH_OP(symlink(target, p), "create link", p);
}

static int l_chmod(void *ctx, const char *path, uint32_t mode)
{
	char *p = full(ctx, path);

	PATH_OP(fchmodat(AT_FDCWD, p, (mode_t)mode, 0), "change mode of", p);
}

static int l_chown(void *ctx, const char *path, uint32_t uid, uint32_t gid)
{
	char *p = full(ctx, path);

	PATH_OP(lchown(p, uid, gid), "change owner of", p);
}

static int l_utime(void *ctx, const char *path, int64_t mtime, int64_t mtime_nsec)
{
	char *p = full(ctx, path);
	struct timespec ts[2];

	ts[0].tv_sec = mtime;
	ts[0].tv_nsec = mtime_nsec;
	ts[1] = ts[0];
	PATH_OP(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), "set times of", p);
}

static int l_fsetattr(void *ctx, void *fh, uint32_t mode, const uint32_t *owner, int64_t mtime,
		      int64_t mtime_nsec)
{
	struct lfile *f = fh;
	struct timespec ts[2];

	(void)ctx;
	/* owner first: a change of owner clears set-id bits the mode sets */
	if (owner && fchown(f->fd, owner[0], owner[1]) < 0)
		log_debug("cannot change owner of '%s': %s", f->path, strerror(errno));
	if (mode != FSYS_MODE_KEEP && fchmod(f->fd, (mode_t)mode) < 0)
		return fail(errno, "change mode of", f->path);
	ts[0].tv_sec = mtime;
	ts[0].tv_nsec = mtime_nsec;
	ts[1] = ts[0];
	(void)futimens(f->fd, ts);
	return 0;
}

static int l_sync_dir(void *ctx, const char *path)
{
	char *p = full(ctx, path);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = fail(errno, "sync directory", p);
	if (fd >= 0)
		close(fd);
	free(p);
	return rc;
}

static int l_uname(void *ctx, uint32_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	(void)ctx;
	if (!pw)
		return MSGW_ENOTFOUND;
	snprintf(buf, len, "%s", pw->pw_name);
	return 0;
}

static int l_gname(void *ctx, uint32_t gid, char *buf, size_t len)
{
	struct group *gr = getgrgid(gid);

	(void)ctx;
	if (!gr)
		return MSGW_ENOTFOUND;
	snprintf(buf, len, "%s", gr->gr_name);
	return 0;
}

static int l_uid_of(void *ctx, const char *name, uint32_t *out)
{
	struct passwd *pw = getpwnam(name);

	(void)ctx;
	if (!pw)
		return MSGW_ENOTFOUND;
	*out = pw->pw_uid;
	return 0;
}

static int l_gid_of(void *ctx, const char *name, uint32_t *out)
{
	struct group *gr = getgrnam(name);

	(void)ctx;
	if (!gr)
		return MSGW_ENOTFOUND;
	*out = gr->gr_gid;
	return 0;
}

static int l_rename_overwrites(void *ctx)
{
	(void)ctx;
	return 1;
}

static void l_free(void *ctx)
{
	struct local *l = ctx;

	free(l->root);
	free(l);
}

static const struct fsys_ops local_ops = {
    .scheme = "file",
    .stat = l_stat,
    .list = l_list,
    .open_read = l_open_read,
    .open_write = l_open_write,
    .read = l_read,
    .write = l_write,
    .sync = l_sync,
    .close = l_close,
    .rename = l_rename,
    .unlink = l_unlink,
    .mkdir = l_mkdir,
    .rmdir = l_rmdir,
    .readlink = l_readlink,
    .symlink = l_symlink,
    .chmod = l_chmod,
    .chown = l_chown,
    .utime = l_utime,
    .fsetattr = l_fsetattr,
    .sync_dir = l_sync_dir,
    .uname = l_uname,
    .gname = l_gname,
    .uid_of = l_uid_of,
    .gid_of = l_gid_of,
    .rename_overwrites = l_rename_overwrites,
    .free = l_free,
};

int fsys_open_local(struct fsys **out, const char *root)
{
	struct fsys *fs = xcalloc(1, sizeof(*fs));
	struct local *l = xcalloc(1, sizeof(*l));
	size_t len = strlen(root);

	while (len > 1 && root[len - 1] == '/')
		len--;
	l->root = xstrndup(root, len);
	fs->ops = &local_ops;
	fs->ctx = l;
	fs->location = xstrdup(l->root);
	*out = fs;
	return 0;
}
