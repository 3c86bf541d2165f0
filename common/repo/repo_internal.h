/*
 * repo_internal: what the files of the repo module (common/repo/: repo.c,
 * remote.c, rewrite.c) share and nothing else sees: the one libgit2 handle
 * of an open repository and the translation of libgit2's errors.  Only
 * these files include git2.h.
 */
#ifndef MSGW_REPO_INTERNAL_H
#define MSGW_REPO_INTERNAL_H

#include "repo.h"
#include "seal.h"

#include <git2.h>

struct repo {
	git_repository *g;    /* the one handle, opened by repo_open */
	char *path;	      /* as given to repo_open */
	char *gitdir;	      /* libgit2's path of it, no trailing slash */
	struct seal_key *key; /* the configured key (crypt.c), or NULL */
	char *key_problem;    /* why the configured key is not attached, or NULL */
};

/* A blob read and checked by libgit2 (against its id). */
struct repo_blob {
	git_blob *blob;
	char *plain; /* the unsealed content, when the object was sealed (crypt.c) */
	size_t plain_len;
};

/*
 * crypt.c's hooks.  repo_seal_files: in a repository with a key, every
 * file but meta sealed (*sealed_out is a copy of files, its sealed buffers
 * and *fd_out, a scratch file, freed with repo_sealed_free); without a key
 * a plain write, refused in a repository initialised as encrypted.
 * repo_unseal_blob: b's object (file name of commit id), when sealed,
 * replaced by its authenticated plaintext; a plain one read with a key is
 * refused.  A sealed file is bound to its name and its commit's meta.
 */
int repo_seal_files(struct repo_file **sealed_out, int *fd_out, struct repo *r,
		    const struct repo_file *files, size_t nfiles);
void repo_sealed_free(struct repo_file *sealed, size_t nfiles, int fd);
int repo_unseal_blob(struct repo_blob *b, struct repo *r, const char *id, const char *name);

/*
 * With r's key: the sealed file name of commit id, read through rd (its 0
 * coming once the object matched its id), unsealed into an anonymous
 * scratch file (mode 0600, unlinked at once: in the repository, else
 * $TMPDIR) with one chunk in memory at a time.  *fd_out (at offset 0,
 * *len_out bytes) only when every chunk authenticated and the source
 * checked out; otherwise -1 and nothing of it is seen.
 */
int repo_unseal_to_file(int *fd_out, size_t *len_out, struct repo *r, const char *id,
			const char *name, seal_read_fn rd, void *ctx);

/*
 * Set the error message "what: libgit2's reason" and return code.  An
 * empty reason (libgit2 gives some, "failed to lock file ... for
 * writing: ") is never left at the end: then the last system error or
 * "unknown git error" is said instead.
 */
int repo_git_fail(int code, const char *what);

/* The 40-hex id of oid into out. */
void repo_oid_str(char out[REPO_ID_LEN], const git_oid *oid);

/* A malloc'd copy of the hex id. */
char *repo_oid_dup(const git_oid *oid);

int repo_cmp_str(const void *a, const void *b);

/*
 * override.c, on the calling thread only: while on, libgit2's
 * initialisation loads no CA bundle (msgw-backup never speaks HTTPS), and
 * zlib streams opened (libgit2's loose object writes) store at level 0.
 */
void repo_override_skip_ca(bool on);
void repo_override_store(bool on);

#endif
