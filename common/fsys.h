/*
 * fsys: the file-access interface through which the tools reach a gateway's
 * data directory, like redis's rio: one struct of function pointers, two
 * backends (the local POSIX file system here, SFTP over libssh2 in
 * fsys/sftp.c).  Every path given to these functions is relative to the
 * location's root ("" or "." is the root itself) and uses '/' separators;
 * the backend joins it to the root.  Nothing here follows symbolic links:
 * fsys_stat is lstat.
 *
 * The local backend opens the root once and resolves every path below it
 * one component at a time without following a symbolic link anywhere on
 * the way (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or openat
 * with O_NOFOLLOW | O_DIRECTORY per component), then does the last step
 * with *at() calls that do not follow links either: a folder on the way
 * that is a link (or "..") fails with MSGW_EHOSTILE naming the path, so a
 * service account that swaps a folder for a link mid-restore cannot make
 * the restore write, remove, chmod or chown anything outside the root.
 * The SFTP backend cannot hold a directory open: it checks each folder's
 * type (lstat) before a change and never sets meta data on a link.
 *
 * Every function returns 0 or a negative MSGW_E* code (MSGW_ENOTFOUND when
 * the path does not exist) with a message naming the location and path.
 */
#ifndef MSGW_FSYS_H
#define MSGW_FSYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum fsys_type { FSYS_FILE = 'f', FSYS_DIR = 'd', FSYS_LINK = 'l', FSYS_OTHER = '?' };

struct fsys_stat {
	enum fsys_type type;
	uint32_t mode; /* permission bits only (07777) */
	uint32_t uid, gid;
	uint64_t size;
	int64_t mtime, mtime_nsec;
	int64_t ctime, ctime_nsec; /* 0 where the backend cannot tell */
	uint64_t ino, dev;	   /* 0 where the backend cannot tell */
};

struct fsys_dirent {
	char *name;
	struct fsys_stat st;
};

struct fsys_file;

/* One folder of fsys_list_many: ok with its entries (sorted, as fsys_list
 * gives them), or not ok: the caller lists it with fsys_list, which says
 * why it failed. */
struct fsys_listing {
	int ok;
	struct fsys_dirent *ents;
	size_t n;
};

/*
 * One operation of fsys_batch.  CHMOD sets the permission bits of path
 * (mode); RMDIR removes an empty folder.  CREATE makes a new file at path
 * exclusively (fsys_create with mode 0600: nothing may exist there, not
 * even a link), writes len bytes of data, sets its mode, owner (when owner
 * is not NULL, best effort) and mtime (best effort) through its handle,
 * syncs and closes it: fsys_file_setattr's rules.  A batch holds at most
 * FSYS_BATCH_CREATES of them and FSYS_BATCH_CREATE_BYTES of their data.
 */
enum fsys_op_kind {
	FSYS_OP_LSTAT,
	FSYS_OP_RENAME,
	FSYS_OP_UNLINK,
	FSYS_OP_CHMOD,
	FSYS_OP_RMDIR,
	FSYS_OP_CREATE
};
#define FSYS_BATCH_CREATES	64
#define FSYS_BATCH_CREATE_BYTES (2u << 20)

struct fsys_op {
	enum fsys_op_kind kind; /* set by the caller */
	const char *path;	/* set by the caller */
	const char *to;		/* RENAME: the new path; set by the caller */
	uint32_t mode;		/* CHMOD, CREATE: the permission bits; set by the caller */
	/* CREATE, set by the caller: the content (borrowed), the owner
	 * (uid, gid; NULL: left) and the mtime */
	const void *data;
	size_t len;
	const uint32_t *owner;
	int64_t mtime;
	int rc;		     /* result: 0 or a negative code */
	struct fsys_stat st; /* LSTAT: the result */
};

struct fsys_ops {
	const char *scheme; /* "file" or "sftp" */
	int (*stat)(void *ctx, const char *path, struct fsys_stat *out);
	int (*list)(void *ctx, const char *path, struct fsys_dirent **out, size_t *n_out);
	int (*open_read)(void *ctx, const char *path, void **fh_out);
	int (*open_write)(void *ctx, const char *path, uint32_t mode, void **fh_out);
	/* create a new file, failing when anything exists at path (O_EXCL) */
	int (*create)(void *ctx, const char *path, uint32_t mode, void **fh_out);
	ssize_t (*read)(void *ctx, void *fh, void *buf, size_t len);
	int (*write)(void *ctx, void *fh, const void *buf, size_t len);
	int (*sync)(void *ctx, void *fh);
	int (*close)(void *ctx, void *fh);
	int (*rename)(void *ctx, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *path);
	int (*mkdir)(void *ctx, const char *path, uint32_t mode);
	int (*rmdir)(void *ctx, const char *path);
	int (*readlink)(void *ctx, const char *path, char **out);
	int (*symlink)(void *ctx, const char *target, const char *path);
	int (*chmod)(void *ctx, const char *path, uint32_t mode);
	int (*chown)(void *ctx, const char *path, uint32_t uid, uint32_t gid);
	int (*utime)(void *ctx, const char *path, int64_t mtime, int64_t mtime_nsec);
	/* mode (unless FSYS_MODE_KEEP), owner (when owner is not NULL: uid,
	 * gid) and mtime of a file
	 * open for writing, through its handle; only the mode's failure is
	 * returned (owner and times are best effort, as restores treat them).
	 * May be NULL: fsys_file_setattr then uses the path operations. */
	int (*fsetattr)(void *ctx, void *fh, uint32_t mode, const uint32_t *owner, int64_t mtime,
			int64_t mtime_nsec);
	int (*sync_dir)(void *ctx, const char *path);
	/* flush everything written below the root to stable storage; may be
	 * NULL (fsys_sync_all then returns 0: the backend cannot) */
	int (*sync_all)(void *ctx);
	/* bytes free for an unprivileged writer on the root's file system;
	 * may be NULL (fsys_space: MSGW_ENOTFOUND, the caller cannot tell) */
	int (*space)(void *ctx, uint64_t *avail_out);
	/* name lookups for owners; may be NULL (owners then stay numeric) */
	int (*uname)(void *ctx, uint32_t uid, char *buf, size_t len);
	int (*gname)(void *ctx, uint32_t gid, char *buf, size_t len);
	int (*uid_of)(void *ctx, const char *name, uint32_t *out);
	int (*gid_of)(void *ctx, const char *name, uint32_t *out);
	int (*rename_overwrites)(void *ctx); /* 1 when rename replaces an existing target */
	/* many folders at once (may be NULL: one after the other) */
	int (*list_many)(void *ctx, const char *const *paths, size_t n, struct fsys_listing *out);
	/* read-ahead hint (may be NULL), see fsys_prefetch */
	int (*prefetch)(void *ctx, const char *const *paths, const uint64_t *sizes, size_t n);
	/* independent operations at once (may be NULL: fsys_batch does them
	 * one after the other), see fsys_batch */
	int (*batch)(void *ctx, struct fsys_op *ops, size_t n);
	/* the stat of an open file as it was read (may be NULL: the path's) */
	int (*fstat)(void *ctx, void *fh, struct fsys_stat *out);
	/* the host's clock as its file system stamps files (may be NULL:
	 * this host's clock) */
	int (*clock)(void *ctx, int64_t *out);
	void (*free)(void *ctx);
};

struct fsys {
	const struct fsys_ops *ops;
	void *ctx;
	char *location; /* as given, for messages */
};

struct fsys_open_opts {
	const char *identity;	     /* ssh only */
	const char *passphrase_file; /* ssh only */
	const char *known_hosts;     /* ssh only */
	int timeout;		     /* seconds, ssh only; 0 = default */
};

/* A local directory as a location (no existence check). */
int fsys_open_local(struct fsys **out, const char *root);

/* A location string: an absolute local path, or ssh://user@host[:port]/path.
 * opts may be NULL for local paths. */
int fsys_open(struct fsys **out, const char *location, const struct fsys_open_opts *opts);

/* Register the SFTP opener (fsys/sftp.c); NULL opener means ssh:// locations
 * fail with "ssh locations are not supported in this build". */
typedef int (*fsys_remote_opener)(struct fsys **out, const char *location,
				  const struct fsys_open_opts *opts);
void fsys_set_remote_opener(fsys_remote_opener opener);

void fsys_free(struct fsys *fs);

int fsys_stat(struct fsys *fs, const char *path, struct fsys_stat *out);
/* Entries of a directory, sorted by name (bytewise), without . and ..; the
 * caller frees with fsys_dirents_free. */
int fsys_list(struct fsys *fs, const char *path, struct fsys_dirent **out, size_t *n_out);
void fsys_dirents_free(struct fsys_dirent *ents, size_t n);

int fsys_open_read(struct fsys *fs, const char *path, struct fsys_file **out);
/* Create or truncate path with mode (before umask for local). */
int fsys_open_write(struct fsys *fs, const char *path, uint32_t mode, struct fsys_file **out);
/* Create a new file exclusively (nothing may exist at path, not even a
 * link): MSGW_ERR "File exists" otherwise. */
int fsys_create(struct fsys *fs, const char *path, uint32_t mode, struct fsys_file **out);
/* Returns bytes read (0 at end) or a negative code. */
ssize_t fsys_read(struct fsys_file *f, void *buf, size_t len);
int fsys_write(struct fsys_file *f, const void *buf, size_t len);
int fsys_sync(struct fsys_file *f);
/* Closes and frees f (NULL is fine); returns a close error, if any. */
int fsys_close(struct fsys_file *f);

/*
 * List many folders at once, where the backend pays a round trip per
 * request (SFTP: the requests are pipelined); out[i] is folder paths[i].
 * Returns 0, or an error when the connection failed (every out[i] is then
 * not ok).  The caller frees each ok listing with fsys_dirents_free.
 */
int fsys_list_many(struct fsys *fs, const char *const *paths, size_t n, struct fsys_listing *out);

/*
 * Read-ahead: the regular files at paths (of the sizes a listing gave) are
 * about to be stat'ed, opened and read whole, in this order.  A backend
 * that pays a round trip per request (SFTP) then fetches many of them at
 * once, each one consistently (its attributes the same before and after
 * it was read), and serves fsys_stat, fsys_open_read, fsys_read and
 * fsys_file_stat of those paths from what it fetched, once; a file it
 * could not fetch so is done the usual way.  n = 0 drops what is left.
 * Returns 0 or an error when the connection failed.  Paths are copied.
 */
int fsys_prefetch(struct fsys *fs, const char *const *paths, const uint64_t *sizes, size_t n);

/*
 * Independent operations (an lstat, a rename, a remove, a chmod, a folder
 * removal each), where the
 * backend pays a round trip per request (SFTP: all sent before any reply
 * is awaited, so they cost one round trip together); each op's rc says how
 * it went (MSGW_ENOTFOUND for a missing path) and err_last() names the
 * first, in the array's order, that failed.  The operations must not
 * depend on one another: no order among them is promised.  A backend with
 * a batch function does not check the folders on the way of a RENAME,
 * UNLINK, CHMOD or RMDIR, nor whether a CHMOD's path is a link (SFTP's
 * SETSTAT follows links): the caller lstat's them first (an earlier batch)
 * and leaves links out; without one, each op is the per-call function
 * (fsys_rename, fsys_unlink, fsys_stat, fsys_chmod, fsys_rmdir) in the
 * array's order, with that function's checks.  Returns 0 when every
 * op has its answer, or an error when the connection failed (then every
 * op's rc is that error: what the server did is unknown).
 */
int fsys_batch(struct fsys *fs, struct fsys_op *ops, size_t n);

/* A new file at path (failing when anything is there) holding data, then
 * its mode, owner (uid, gid; NULL: left) and mtime, synced and closed:
 * what a CREATE op is where the backend has no batch function. */
int fsys_write_new(struct fsys *fs, const char *path, const void *data, size_t len, uint32_t mode,
		   const uint32_t *owner, int64_t mtime, int64_t mtime_nsec);
/* Whether fsys_batch saves round trips here (the backend has one). */
int fsys_batches(struct fsys *fs);
/* The stat of f as it is being read (path names it): backends that cannot
 * tell give the path's lstat. */
int fsys_file_stat(struct fsys_file *f, const char *path, struct fsys_stat *out);

/*
 * The time on the host that holds the location, as its file system stamps
 * a file made now (SFTP: a file of the tool's own, created, stat'ed and
 * removed, named ".msgw-clock.RANDOM"); the local clock for local
 * locations.  An error when the host would not let us find out.
 */
int fsys_clock(struct fsys *fs, int64_t *out);

/* Read a whole (small) file into a NUL-terminated malloc'd buffer. */
int fsys_read_all(struct fsys *fs, const char *path, char **buf_out, size_t *len_out);
/* Write a whole file durably: a temporary file beside it under an
 * unpredictable name (PATH.msgw-tmp.RANDOM, created exclusively), fsync,
 * rename, sync dir. */
int fsys_write_atomic(struct fsys *fs, const char *path, const void *buf, size_t len,
		      uint32_t mode);

/* Rename, replacing an existing target when the backend can (see
 * fsys_rename_overwrites). */
int fsys_rename(struct fsys *fs, const char *from, const char *to);
int fsys_rename_overwrites(struct fsys *fs);
int fsys_unlink(struct fsys *fs, const char *path);
int fsys_mkdir(struct fsys *fs, const char *path, uint32_t mode);
/* mkdir -p of every missing directory on the way to path (path included). */
int fsys_mkdirs(struct fsys *fs, const char *path, uint32_t mode);
int fsys_rmdir(struct fsys *fs, const char *path);
/* Remove a tree (files, links and directories below and including path). */
int fsys_remove_tree(struct fsys *fs, const char *path);
int fsys_readlink(struct fsys *fs, const char *path, char **out);
int fsys_symlink(struct fsys *fs, const char *target, const char *path);
int fsys_chmod(struct fsys *fs, const char *path, uint32_t mode);
int fsys_chown(struct fsys *fs, const char *path, uint32_t uid, uint32_t gid);
int fsys_utime(struct fsys *fs, const char *path, int64_t mtime, int64_t mtime_nsec);
/* Set an open file's mode (FSYS_MODE_KEEP: leave it), owner (owner: uid,
 * gid, or NULL to leave it) and mtime before it is closed (path names it for
 * backends without handle operations); see fsetattr. */
#define FSYS_MODE_KEEP UINT32_MAX
int fsys_file_setattr(struct fsys_file *f, const char *path, uint32_t mode, const uint32_t *owner,
		      int64_t mtime, int64_t mtime_nsec);
int fsys_sync_dir(struct fsys *fs, const char *path);
/* Flush everything below the root (local: syncfs); 0 where the backend
 * cannot. */
int fsys_sync_all(struct fsys *fs);
/* Free bytes on the root's file system; MSGW_ENOTFOUND when the backend
 * cannot tell. */
int fsys_space(struct fsys *fs, uint64_t *avail_out);
/* Fail (MSGW_ERR, naming the location and both figures) unless need
 * bytes are free on the root's file system; what names the work ("stage
 * the restore").  0 when the backend cannot tell.  Test builds
 * (MSGW_TESTING) take the free bytes from MSGW_FAULT_FREE_SPACE when set. */
int fsys_check_space(struct fsys *fs, uint64_t need, const char *what);
/* A random name suffix (16 hex digits, from getrandom) for temporary
 * files; buf holds at least 17 bytes. */
void fsys_random_suffix(char *buf, size_t len);
/* Owner names; 0 and buf filled, or MSGW_ENOTFOUND (caller uses numbers). */
int fsys_uname(struct fsys *fs, uint32_t uid, char *buf, size_t len);
int fsys_gname(struct fsys *fs, uint32_t gid, char *buf, size_t len);
int fsys_uid_of(struct fsys *fs, const char *name, uint32_t *out);
int fsys_gid_of(struct fsys *fs, const char *name, uint32_t *out);

/* Join two relative paths with '/' ("" + "a" = "a"); caller frees. */
char *fsys_join(const char *a, const char *b);

/* Every folder on the way to each of paths[0..n) (for "a/b/f": "a" and
 * "a/b"), each once, sorted; *n_out of them, freed with fsys_free_names. */
char **fsys_parents(const char *const *paths, size_t n, size_t *n_out);
void fsys_free_names(char **names, size_t n);

#endif
