/*
 * repo: the snapshot repository (libgit2; the only module that includes
 * git2.h).  A bare git repository with one branch refs/heads/<gateway> per
 * gateway; each snapshot is one commit whose tree holds exactly meta,
 * manifest and config.tar.zst (DESIGN.md, "Repository format").
 *
 * Commit ids are handed around as 40-character hex strings (char[41]).
 * libgit2's fsync of objects and refs is switched on by repo_global_init().
 */
#ifndef MSGW_REPO_H
#define MSGW_REPO_H

#include "snapref.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define REPO_ID_LEN 41

struct repo;

/* Initialise libgit2 once per process and turn on fsync. */
void repo_global_init(void);

/* Create a bare repository at path with mode 0700 (parents created);
 * idempotent: an existing repository is left as it is.  *created_out (may
 * be NULL) says whether it was new. */
int repo_init(const char *path, int *created_out);

/* Open an existing repository; MSGW_ENOTFOUND with a hint to run init when
 * there is none. */
int repo_open(struct repo **out, const char *path);
void repo_free(struct repo *r);
const char *repo_path(const struct repo *r);

/* The tip of refs/heads/<branch>; MSGW_ENOTFOUND when the branch does not
 * exist. */
int repo_branch_tip(char out[REPO_ID_LEN], struct repo *r, const char *branch);

/* The branches (gateways) that exist, sorted; free with repo_names_free. */
int repo_branches(char ***names_out, size_t *n_out, struct repo *r);
/* Tags pointing at commit id. */
int repo_tags_at(char ***names_out, size_t *n_out, struct repo *r, const char *id);
void repo_names_free(char **names, size_t n);

struct repo_file {
	const char *name; /* "meta", "manifest", "config.tar.zst" */
	const void *data; /* the content, or NULL to stream it from fd */
	size_t len;
	int fd; /* with data NULL: len bytes read from offset 0 of fd */
};

/* A file given by its bytes in memory. */
#define REPO_FILE(name, data, len) ((struct repo_file){(name), (data), (len), -1})

/*
 * Write one commit on refs/heads/<branch> holding files as its tree, with
 * the current tip as parent (none for a new branch), message, and time
 * when.  The ref moves only if the tip is still what it was when read.
 */
int repo_commit(char out[REPO_ID_LEN], struct repo *r, const char *branch,
		const struct repo_file *files, size_t nfiles, const char *message, int64_t when);

/* Read a file of a commit's tree into a malloc'd NUL-terminated buffer.
 * MSGW_ECORRUPT when the object is damaged, MSGW_ENOTFOUND when absent. */
int repo_read(char **out, size_t *len_out, struct repo *r, const char *id, const char *name);

/* A file of a commit's tree held without copying (large archives): its
 * bytes stay valid until repo_blob_free. */
struct repo_blob;
int repo_read_blob(struct repo_blob **out, struct repo *r, const char *id, const char *name);
const void *repo_blob_data(const struct repo_blob *b);
size_t repo_blob_size(const struct repo_blob *b);
void repo_blob_free(struct repo_blob *b);

/*
 * A file of a commit's tree read in order, for the archive: a loose
 * object is inflated as it is read (never held whole), a packed one is
 * read through libgit2.  *size_out is its size.  repo_stream_read returns
 * how many bytes it put in buf (len > 0), 0 at the end once the object
 * checked out (its SHA-1 against its id), or a negative code
 * (MSGW_ECORRUPT naming the file; the caller adds which snapshot).
 * Nothing read is known to be sound before the 0.  The reading may happen on another thread
 * than the opening, one thread at a time.
 */
struct repo_stream;
int repo_open_stream(struct repo_stream **out, size_t *size_out, struct repo *r, const char *id,
		     const char *name);
ssize_t repo_stream_read(struct repo_stream *s, void *buf, size_t len);
/*
 * Before the first read: a loose object's SHA-1 is left out, for a caller
 * that checks every byte another way (extract: each file's sha256 against
 * the manifest, and zstd's checksum over the archive).  When that check
 * fails, repo_stream_check tells whether the object itself is damaged:
 * MSGW_ECORRUPT naming it (its content does not match its id), else 0.
 */
void repo_stream_no_sha1(struct repo_stream *s);
int repo_stream_check(struct repo_stream *s);
void repo_stream_free(struct repo_stream *s);

/* Names of a commit's tree entries (to check it holds exactly the three). */
int repo_tree_names(char ***names_out, size_t *n_out, struct repo *r, const char *id);

/* Commit facts. */
struct repo_commit_info {
	char id[REPO_ID_LEN];
	char parent[REPO_ID_LEN]; /* "" for a root commit */
	int64_t time;
	char *summary; /* first line of the message */
};
int repo_commit_info(struct repo_commit_info *out, struct repo *r, const char *id);
void repo_commit_info_release(struct repo_commit_info *c);

/* The ids of a branch from the tip back along first parents (newest first);
 * at most max (0: all).  Free with repo_names_free. */
int repo_log(char ***ids_out, size_t *n_out, struct repo *r, const char *branch, size_t max);

/* Resolve a snapshot name (snapref.h) to a commit id.  MSGW_ENOTFOUND
 * "no snapshot named 'x'" when nothing matches, MSGW_ECONFIG when a prefix
 * is ambiguous. */
int repo_resolve(char out[REPO_ID_LEN], struct repo *r, const char *name);

/* Create tag refs/tags/<name> at id; MSGW_ECONFIG when it exists. */
int repo_tag(struct repo *r, const char *name, const char *id);

/* Whether repo_tag(r, name, ...) could succeed now: 0, or MSGW_ECONFIG
 * with repo_tag's message for a bad or existing name.  Lets a caller refuse
 * before it writes anything. */
int repo_tag_check(struct repo *r, const char *name);

/*
 * A unified diff of two versions of one file (libgit2's patch machinery):
 * *out is the patch text ("" when equal), *binary_out says whether either
 * side is binary (then the text is "Binary files ... differ").
 */
int repo_diff_text(char **out, bool *binary_out, const char *old_data, size_t old_len,
		   const char *new_data, size_t new_len, const char *old_path,
		   const char *new_path);

/* "libgit2 1.5.1" */
const char *repo_version(void);

#endif
