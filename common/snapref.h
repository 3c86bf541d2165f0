/*
 * snapref: the syntax of snapshot names (DESIGN.md), without a repository.
 *
 *   msgw1          the tip of gateway msgw1's branch (or a tag of that name,
 *                  or a commit id prefix when it is 7+ hex digits)
 *   msgw1@latest   the tip, explicitly
 *   msgw1~N        N snapshots before the tip (first parents)
 *   v1.2           a tag
 *   3fa9c01...     a commit id prefix of 7 to 40 hex digits
 *
 * repo_resolve() in repo.h turns a parsed name into a commit.
 */
#ifndef MSGW_SNAPREF_H
#define MSGW_SNAPREF_H

#include <stdbool.h>

struct snapref {
	char *name;	      /* branch, tag, or hex prefix */
	int back;	      /* N of name~N, 0 otherwise */
	bool latest;	      /* name@latest */
	bool explicit_branch; /* ~N or @latest given: name must be a branch */
	bool maybe_hex;	      /* name is 7-40 hex digits */
};

/* Parse text; MSGW_ECONFIG with "bad snapshot name 'x': why" on bad syntax. */
int snapref_parse(struct snapref *out, const char *text);
void snapref_release(struct snapref *ref);

/* True for a valid gateway/branch/tag name: [A-Za-z0-9._-]+, not starting
 * with '.' or '-', no "..", not ending in ".lock". */
bool snapref_valid_name(const char *name);

#endif
