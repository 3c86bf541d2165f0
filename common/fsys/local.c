/*
 * fsys_local: the local POSIX backend of the file-access interface.  The
 * context is the root directory, opened once (a directory file
 * descriptor, on first use: a location need not exist when it is named).
 * Every relative path is resolved below it without following a symbolic
 * link at any component: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * for the parent folder where the kernel has it, else one
 * openat(O_NOFOLLOW | O_DIRECTORY) per component; the last step is an
 * *at() call on that folder that does not follow a link either (lstat,
 * O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, renameat, unlinkat).  A folder on the
 * way that is a link, or a ".." component, fails with MSGW_EHOSTILE
 * naming the path.  What it leaves out: the root's own path is trusted
 * (the administrator's configuration) and is followed as given.
 */
#include "fsys.h"
#include "err.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

struct local {
	char *root;
	int rootfd; /* -1 until the first use; set once (atomically) */
};

/* openat2 is missing (ENOSYS: an old kernel, or a seccomp filter) */
static int no_openat2;

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

/* The root's descriptor, opened once; several threads may race to open
 * it: the first one stored wins, the others close theirs. */
static int root_fd(struct local *l, const char *what, int *fd_out)
{
	int fd = __atomic_load_n(&l->rootfd, __ATOMIC_ACQUIRE), expect = -1;

	if (fd >= 0) {
		*fd_out = fd;
		return 0;
	}
	/* no O_DIRECTORY: a root that is a file can still be stat'ed (and
	 * named so); resolving below it then fails with ENOTDIR */
	fd = open(l->root, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, what, l->root);
	if (!__atomic_compare_exchange_n(&l->rootfd, &expect, fd, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		close(fd);
		fd = expect;
	}
	*fd_out = fd;
	return 0;
}

/* A path resolved to its parent folder (held open) and last name. */
struct at {
	int dfd;	  /* the parent folder; the root's descriptor is borrowed */
	bool own;	  /* dfd is ours to close */
	char *parent;	  /* the parent's relative path ("" for the root) */
	const char *base; /* the last component ("." for the root itself) */
	char *buf;	  /* holds parent and base */
};

static void at_release(struct at *a)
{
	if (a->own && a->dfd >= 0)
		close(a->dfd);
	free(a->buf);
	free(a->parent);
	memset(a, 0, sizeof(*a));
	a->dfd = -1;
}

static int hostile(struct local *l, const char *what, const char *path, const char *comp)
{
	return err_set(
	    MSGW_EHOSTILE,
	    "cannot %s '%s/%s': '%s' is a symbolic link or leaves the root; not followed", what,
	    l->root, path, comp);
}

/* One component after another, each opened without following a link. */
static int walk_parent(struct local *l, int rootfd, const char *what, const char *path,
		       const char *parent, int *fd_out)
{
	char *copy = xstrdup(parent), *save = NULL, *comp;
	struct buf done;
	int cur = rootfd, rc = 0;

	buf_init(&done);
	for (comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		int fd;

		buf_addf(&done, "%s%s", done.len ? "/" : "", comp);
		if (strcmp(comp, "..") == 0) {
			rc = hostile(l, what, path, done.data);
			break;
		}
		if (strcmp(comp, ".") == 0)
			continue;
		fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			struct stat st;
			int e = errno;

			if ((e == ENOTDIR || e == ELOOP) &&
			    fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				rc = hostile(l, what, path, done.data);
			else
				rc = err_set_errno(e == ENOENT ? MSGW_ENOTFOUND : MSGW_ERR, e,
						   "cannot %s '%s/%s'", what, l->root, path);
			break;
		}
		if (cur != rootfd)
			close(cur);
		cur = fd;
	}
	if (rc && cur != rootfd)
		close(cur);
	if (!rc)
		*fd_out = cur;
	free(copy);
	buf_release(&done);
	return rc;
}

static int open_parent(struct local *l, int rootfd, const char *what, const char *path,
		       const char *parent, int *fd_out)
{
	if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
		struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
						  RESOLVE_NO_MAGICLINKS};
		long fd = syscall(SYS_openat2, rootfd, parent, &how, sizeof(how));

		if (fd >= 0) {
			*fd_out = (int)fd;
			return 0;
		}
		if (errno == ENOSYS || errno == EPERM)
			__atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
		else if (errno != ELOOP && errno != EXDEV && errno != ENOTDIR && errno != EAGAIN &&
			 errno != ENAMETOOLONG)
			return err_set_errno(errno == ENOENT ? MSGW_ENOTFOUND : MSGW_ERR, errno,
					     "cannot %s '%s/%s'", what, l->root, path);
		/* a link or ".." on the way: the slow walk names it; a path
		 * longer than PATH_MAX: it walks one name at a time */
	}
	return walk_parent(l, rootfd, what, path, parent, fd_out);
}

/* Resolve path below the root: its parent folder held open, its last name. */
static int resolve(struct local *l, const char *what, const char *path, struct at *a)
{
	const char *slash;
	int rootfd, rc;

	memset(a, 0, sizeof(*a));
	a->dfd = -1;
	rc = root_fd(l, what, &rootfd);
	if (rc)
		return rc;
	while (path && path[0] == '/')
		path++;
	if (!path || !*path || strcmp(path, ".") == 0) {
		a->dfd = rootfd;
		a->parent = xstrdup("");
		a->base = ".";
		return 0;
	}
	a->buf = xstrdup(path);
	slash = strrchr(a->buf, '/');
	if (slash) {
		a->buf[slash - a->buf] = '\0';
		a->parent = xstrdup(a->buf);
		a->base = slash + 1;
	} else {
		a->parent = xstrdup("");
		a->base = a->buf;
	}
	if (strcmp(a->base, "..") == 0 || !*a->base) {
		rc = hostile(l, what, path, path);
		goto out;
	}
	if (!*a->parent) {
		a->dfd = rootfd;
		return 0;
	}
	rc = open_parent(l, rootfd, what, path, a->parent, &a->dfd);
	if (!rc)
		a->own = true;
out:
	if (rc)
		at_release(a);
	return rc;
}

/* The whole path opened as a folder (O_RDONLY, for listing and syncing);
 * a link there is refused like one on the way. */
static int open_dir(struct local *l, const char *what, const char *path, int *fd_out)
{
	struct at a;
	int rc = resolve(l, what, path, &a), fd;

	if (rc)
		return rc;
	fd = openat(a.dfd, a.base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		struct stat st;
		int e = errno;

		if ((e == ELOOP || e == ENOTDIR) &&
		    fstatat(a.dfd, a.base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			rc = hostile(l, what, path, path);
		else
			rc = err_set_errno(e == ENOENT ? MSGW_ENOTFOUND : MSGW_ERR, e,
					   "cannot %s '%s/%s'", what, l->root, path);
	} else {
		*fd_out = fd;
	}
	at_release(&a);
	return rc;
}

/* "cannot WHAT 'root/path': strerror" (MSGW_ENOTFOUND for ENOENT) */
static int fail_at(struct local *l, int errnum, const char *what, const char *path)
{
	char *p = full(l, path);
	int rc = fail(errnum, what, p);

	free(p);
	return rc;
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
	struct at a;
	struct stat st;
	int rc = resolve(ctx, "stat", path, &a);

	if (rc)
		return rc;
	if (strcmp(a.base, ".") == 0 ? fstat(a.dfd, &st) < 0
				     : fstatat(a.dfd, a.base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = fail_at(ctx, errno, "stat", path);
	else
		fill_stat(out, &st);
	at_release(&a);
	return rc;
}

static int l_list(void *ctx, const char *path, struct fsys_dirent **out, size_t *n_out)
{
	char *p = full(ctx, path);
	struct fsys_dirent *ents = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int rc, dfd = -1;
	DIR *d = NULL;

	*out = NULL;
	*n_out = 0;
	rc = open_dir(ctx, "open directory", path, &dfd);
	if (rc)
		goto cleanup;
	d = fdopendir(dfd);
	if (!d) {
		rc = fail(errno, "open directory", p);
		close(dfd);
		goto cleanup;
	}
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

/* The whole path in one openat2 (the walk's hot path: one call where the
 * component walk takes three); -1 with errno when it cannot (then the
 * slower way decides and names what is wrong). */
static int open_fast(struct local *l, const char *path, int flags, uint32_t mode)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
			       .mode = flags & O_CREAT ? mode & 07777 : 0,
			       .resolve =
				   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	int rootfd = __atomic_load_n(&l->rootfd, __ATOMIC_ACQUIRE);

	if (rootfd < 0 || __atomic_load_n(&no_openat2, __ATOMIC_RELAXED) || !path || !*path) {
		errno = EAGAIN;
		return -1;
	}
	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

static int open_common(struct local *l, const char *path, int flags, uint32_t mode,
		       const char *what, void **out)
{
	struct lfile *f;
	struct at a;
	int fd = open_fast(l, path, flags, mode), rc;

	if (fd >= 0)
		goto opened;
	rc = resolve(l, what, path, &a);
	if (rc)
		return rc;
	fd = openat(a.dfd, a.base, flags | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	if (fd < 0) {
		rc = fail_at(l, errno, what, path);
		at_release(&a);
		return rc;
	}
	at_release(&a);
opened:
	f = xmalloc(sizeof(*f));
	f->fd = fd;
	f->path = full(l, path);
	*out = f;
	return 0;
}

static int l_open_read(void *ctx, const char *path, void **out)
{
	return open_common(ctx, path, O_RDONLY, 0, "open", out);
}

static int l_open_write(void *ctx, const char *path, uint32_t mode, void **out)
{
	return open_common(ctx, path, O_WRONLY | O_CREAT | O_TRUNC, mode, "open", out);
}

static int l_create(void *ctx, const char *path, uint32_t mode, void **out)
{
	return open_common(ctx, path, O_WRONLY | O_CREAT | O_EXCL, mode, "create", out);
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

/* Run call (an *at() call on a.dfd and a.base) on path resolved below
 * the root; "what" names it in the error message. */
#define AT_OP(ctx, path, what, call)                                                               \
	do {                                                                                       \
		struct at a;                                                                       \
		int rc_ = resolve(ctx, what, path, &a);                                            \
		if (rc_)                                                                           \
			return rc_;                                                                \
		if ((call) < 0)                                                                    \
			rc_ = fail_at(ctx, errno, what, path);                                     \
		at_release(&a);                                                                    \
		return rc_;                                                                        \
	} while (0)

static int l_rename(void *ctx, const char *from, const char *to)
{
	struct at a, b;
	int rc = resolve(ctx, "rename", from, &a);

	if (rc)
		return rc;
	rc = resolve(ctx, "rename to", to, &b);
	if (rc) {
		at_release(&a);
		return rc;
	}
	if (renameat(a.dfd, a.base, b.dfd, b.base) < 0) {
		char *pa = full(ctx, from), *pb = full(ctx, to);

		rc = err_set_errno(errno == ENOENT ? MSGW_ENOTFOUND : MSGW_ERR, errno,
				   "cannot rename '%s' to '%s'", pa, pb);
		free(pa);
		free(pb);
	}
	at_release(&a);
	at_release(&b);
	return rc;
}

static int l_unlink(void *ctx, const char *path)
{
	AT_OP(ctx, path, "remove", unlinkat(a.dfd, a.base, 0));
}

static int l_mkdir(void *ctx, const char *path, uint32_t mode)
{
	AT_OP(ctx, path, "create directory", mkdirat(a.dfd, a.base, (mode_t)mode));
}

static int l_rmdir(void *ctx, const char *path)
{
	struct local *l = ctx;

	/* the root itself (a scratch directory removed whole): by its path,
	 * which is the administrator's, trusted */
	if (!path || !*path || strcmp(path, ".") == 0) {
		if (rmdir(l->root) < 0)
			return fail(errno, "remove directory", l->root);
		return 0;
	}
	AT_OP(ctx, path, "remove directory", unlinkat(a.dfd, a.base, AT_REMOVEDIR));
}

static int l_readlink(void *ctx, const char *path, char **out)
{
	char target[4096];
	ssize_t n;
	struct at a;
	int rc = resolve(ctx, "read link", path, &a);

	*out = NULL;
	if (rc)
		return rc;
	n = readlinkat(a.dfd, a.base, target, sizeof(target) - 1);
	if (n < 0)
		rc = fail_at(ctx, errno, "read link", path);
	else
		*out = xstrndup(target, (size_t)n);
	at_release(&a);
	return rc;
}

static int l_symlink(void *ctx, const char *target, const char *path)
{
	AT_OP(ctx, path, "create link", symlinkat(target, a.dfd, a.base));
}

/*
 * A mode is never set through a link: AT_SYMLINK_NOFOLLOW (glibc does it
 * on an O_PATH descriptor of the object itself, or the kernel's
 * fchmodat2), and a link there fails (EOPNOTSUPP) as hostile.
 */
static int l_chmod(void *ctx, const char *path, uint32_t mode)
{
	struct at a;
	int rc = resolve(ctx, "change mode of", path, &a);

	if (rc)
		return rc;
	if (fchmodat(a.dfd, a.base, (mode_t)mode, AT_SYMLINK_NOFOLLOW) < 0) {
		struct stat st;
		int e = errno;

		if (fstatat(a.dfd, a.base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			rc = hostile(ctx, "change mode of", path, path);
		else
			rc = fail_at(ctx, e, "change mode of", path);
	}
	at_release(&a);
	return rc;
}

static int l_chown(void *ctx, const char *path, uint32_t uid, uint32_t gid)
{
	AT_OP(ctx, path, "change owner of", fchownat(a.dfd, a.base, uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int l_utime(void *ctx, const char *path, int64_t mtime, int64_t mtime_nsec)
{
	struct timespec ts[2];

	ts[0].tv_sec = mtime;
	ts[0].tv_nsec = mtime_nsec;
	ts[1] = ts[0];
	AT_OP(ctx, path, "set times of", utimensat(a.dfd, a.base, ts, AT_SYMLINK_NOFOLLOW));
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
	int fd = -1, rc = open_dir(ctx, "sync directory", path, &fd);

	if (rc)
		return rc;
	if (fsync(fd) < 0)
		rc = fail_at(ctx, errno, "sync directory", path);
	close(fd);
	return rc;
}

/* everything written below the root: one syncfs of its file system (it
 * flushes every file and folder at once, where an fsync each would cost a
 * disk flush each) */
static int l_sync_all(void *ctx)
{
	int fd = -1, rc = open_dir(ctx, "sync", "", &fd);

	if (rc)
		return rc;
	if (syncfs(fd) < 0)
		rc = fail_at(ctx, errno, "sync", "");
	close(fd);
	return rc;
}

static int l_space(void *ctx, uint64_t *avail_out)
{
	struct statvfs v;
	int fd, rc = root_fd(ctx, "check free space of", &fd);

	if (rc)
		return rc;
	if (fstatvfs(fd, &v) < 0)
		return fail_at(ctx, errno, "check free space of", "");
	*avail_out = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
	return 0;
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

	if (l->rootfd >= 0)
		close(l->rootfd);
	free(l->root);
	free(l);
}

static const struct fsys_ops local_ops = {
    .scheme = "file",
    .stat = l_stat,
    .list = l_list,
    .open_read = l_open_read,
    .open_write = l_open_write,
    .create = l_create,
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
    .sync_all = l_sync_all,
    .space = l_space,
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
	l->rootfd = -1;
	fs->ops = &local_ops;
	fs->ctx = l;
	fs->location = xstrdup(l->root);
	*out = fs;
	return 0;
}
