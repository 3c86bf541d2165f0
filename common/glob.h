/*
 * glob: the path patterns of include, exclude, preserve and mailbox-store.
 *
 * A pattern is matched against the whole path relative to the location's
 * root (it is anchored; use "**" + "/name" for any depth).  '*' matches any
 * run of characters except '/', '?' one character except '/', "[a-z]" and
 * "[!a-z]" a class, '\' escapes the next character, and a whole component
 * of two stars matches zero or more components: "Logs" + "/" + two stars is
 * everything below Logs, two stars + "/" + "*.bak" any .bak file at any
 * depth, two stars alone everything.
 */
#ifndef MSGW_GLOB_H
#define MSGW_GLOB_H

#include <stdbool.h>

bool glob_match(const char *pattern, const char *path);

/* True when pattern matches every path below directory dir (the pattern is
 * the directory + a slash + two stars, or two stars), so a walk need not
 * descend into it. */
bool glob_matches_all_below(const char *pattern, const char *dir);

/* True when some pattern of the NULL-terminated list matches path. */
bool glob_match_any(char *const *patterns, const char *path);

/* True when some pattern matches path or one of its parent directories
 * (a pattern "Logs" also covers "Logs/a/b").  patterns may be
 * NULL. */
bool glob_match_any_at_or_above(char *const *patterns, const char *path);

#endif
