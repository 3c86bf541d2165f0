/*
 * glob: a small matcher with git-style "**".  It never recurses and
 * retries only its last star, so its work is bounded by the pattern's
 * length times the path's (times the path's depth for "**") whatever the
 * number of stars: a typo in the configuration must not hang a run.
 */
#include "glob.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static bool match_class(const char **pp, char c)
{
	const char *p = *pp + 1;
	bool neg = false, hit = false;

	if (*p == '!' || *p == '^') {
		neg = true;
		p++;
	}
	do {
		char lo = *p, hi;

		if (!lo)
			return false; /* unterminated: no match */
		if (p[1] == '-' && p[2] && p[2] != ']') {
			hi = p[2];
			p += 3;
		} else {
			hi = lo;
			p++;
		}
		if (c >= lo && c <= hi)
			hit = true;
	} while (*p != ']');
	*pp = p + 1;
	return hit != neg;
}

/*
 * One pattern element other than '*' against one character of s: advance
 * both and return true, or return false on a mismatch.
 */
static bool match_one(const char **pp, const char **ss)
{
	const char *p = *pp, *s = *ss;

	switch (*p) {
	case '\0':
		return false;
	case '?':
		if (*s == '\0' || *s == '/')
			return false;
		p++;
		break;
	case '[':
		if (*s == '\0' || *s == '/' || !match_class(&p, *s))
			return false;
		break;
	case '\\':
		if (p[1])
			p++;
		/* fall through */
	default:
		if (*p != *s)
			return false;
		p++;
	}
	*pp = p;
	*ss = s + 1;
	return true;
}

/*
 * start is the beginning of the whole pattern: "**" is special only as a
 * whole component (at the start or after a '/', and followed by '/' or the
 * end); elsewhere, as in "a**" or "**b", it is a plain '*' that never
 * crosses a '/'.
 *
 * No recursion, so no exponential backtracking on patterns with many
 * stars: only the last '*' and the last "**" + "/" are ever retried, as in
 * the classic wildcard matcher.  That is enough because a '/' in s is
 * matched only by a '/' of the pattern, so what lies before a "**" + "/"
 * always ends at the same component whichever way its stars matched, and
 * the earliest component where the part after it matches is as good as
 * any later one (the next "**" takes up whatever lies between).
 */
static bool match(const char *start, const char *p, const char *s)
{
	const char *star_p = NULL, *star_s = NULL;   /* after the last '*'; where it stops */
	const char *dstar_p = NULL, *dstar_s = NULL; /* after the last "**" + "/"; where */
	const char *slash;

	for (;;) {
		if (*p == '\0' && *s == '\0')
			return true;
		if (*p == '*') {
			if (p[1] == '*' && (p == start || p[-1] == '/')) {
				if (p[2] == '\0')
					return true;
				if (p[2] == '/') {
					p += 3;
					dstar_p = p, dstar_s = s;
					star_p = NULL;
					continue;
				}
			}
			while (*p == '*')
				p++; /* a run of stars inside a component acts as one '*' */
			star_p = p, star_s = s;
			continue;
		}
		if (match_one(&p, &s))
			continue;
		/* a mismatch: the last '*' takes one more character, else the
		 * last "**" + "/" one more component */
		if (star_p && *star_s != '\0' && *star_s != '/') {
			p = star_p, s = ++star_s;
			continue;
		}
		if (dstar_p && (slash = strchr(dstar_s, '/'))) {
			p = dstar_p, s = dstar_s = slash + 1;
			star_p = NULL;
			continue;
		}
		return false;
	}
}

bool glob_match(const char *pattern, const char *path)
{
	return match(pattern, pattern, path);
}

bool glob_matches_all_below(const char *pattern, const char *dir)
{
	size_t n = strlen(pattern);
	char prefix[4096];

	if (strcmp(pattern, "**") == 0)
		return true;
	if (n < 3 || strcmp(pattern + n - 3, "/**") != 0 || n - 3 >= sizeof(prefix))
		return false;
	memcpy(prefix, pattern, n - 3);
	prefix[n - 3] = '\0';
	return match(prefix, prefix, dir);
}

bool glob_match_any(char *const *patterns, const char *path)
{
	for (; patterns && *patterns; patterns++)
		if (match(*patterns, *patterns, path))
			return true;
	return false;
}

bool glob_match_any_at_or_above(char *const *patterns, const char *path)
{
	char *tmp, *slash;
	bool hit;

	if (!patterns || !*patterns)
		return false;
	if (glob_match_any(patterns, path))
		return true;
	tmp = xstrdup(path);
	hit = false;
	while (!hit && (slash = strrchr(tmp, '/'))) {
		*slash = '\0';
		hit = glob_match_any(patterns, tmp);
	}
	free(tmp);
	return hit;
}
