/*
 * glob: a small recursive matcher with git-style "**".  Patterns here are
 * short and paths shallow, so plain backtracking is fast enough.
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
 * start is the beginning of the whole pattern: "**" is special only as a
 * whole component (at the start or after a '/', and followed by '/' or the
 * end); elsewhere, as in "a**" or "**b", it is a plain '*' that never
 * crosses a '/'.
 */
static bool match(const char *start, const char *p, const char *s)
{
	for (;;) {
		switch (*p) {
		case '\0':
			return *s == '\0';
		case '*':
			if (p[1] == '*' && (p == start || p[-1] == '/')) {
				if (p[2] == '\0')
					return true;
				if (p[2] == '/') {
					const char *t;

					if (match(start, p + 3, s))
						return true;
					for (t = s; *t; t++)
						if (*t == '/' && match(start, p + 3, t + 1))
							return true;
					return false;
				}
			}
			while (p[1] == '*')
				p++; /* "**x", "a**": a run of stars inside a component acts as '*'
				      */
			for (;; s++) {
				if (match(start, p + 1, s))
					return true;
				if (*s == '\0' || *s == '/')
					return false;
			}
		case '?':
			if (*s == '\0' || *s == '/')
				return false;
			p++, s++;
			break;
		case '[':
			if (*s == '\0' || *s == '/' || !match_class(&p, *s))
				return false;
			s++;
			break;
		case '\\':
			if (p[1])
				p++;
			/* fall through */
		default:
			if (*p != *s)
				return false;
			p++, s++;
		}
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
