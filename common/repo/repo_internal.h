/*
 * repo_internal: what the files of the repo module (common/repo/: repo.c,
 * remote.c, rewrite.c) share and nothing else sees: the one libgit2 handle
 * of an open repository and the translation of libgit2's errors.  Only
 * these files include git2.h.
 */
#ifndef MSGW_REPO_INTERNAL_H
#define MSGW_REPO_INTERNAL_H

#include "repo.h"

#include <git2.h>

struct repo {
	git_repository *g; /* the one handle, opened by repo_open */
	char *path;	   /* as given to repo_open */
	char *gitdir;	   /* libgit2's path of it, no trailing slash */
};

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
