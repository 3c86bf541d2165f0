/*
 * refs: a plain ref of the snapshot repository read from its files, as git
 * resolves it: the loose file refs/... first, else its line in
 * packed-refs.  For callers that must not start libgit2 (the agent's
 * front program) or that would rather not (reads of loose objects); they
 * ask libgit2 whenever this says MSGW_ENOTFOUND.
 */
#ifndef MSGW_REFS_H
#define MSGW_REFS_H

#define REFS_ID_LEN 41 /* 40 hex digits and a NUL, as REPO_ID_LEN */

/* The id refname ("refs/heads/gw", "refs/tags/t") names: 0;
 * MSGW_ENOTFOUND when there is no such ref (neither its loose file nor a
 * line in packed-refs: git finds none either); MSGW_ERR when there is
 * one but not a plain id (symbolic, malformed) or the files cannot be
 * read.  No message is set either way. */
int refs_read(char out[REFS_ID_LEN], const char *repo_path, const char *refname);

#endif
