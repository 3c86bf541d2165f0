/*
 * test_glob: the path patterns of include, exclude, preserve and
 * mailbox-store, table-driven: "**" as a whole component (alone, leading,
 * trailing, in the middle), '*' and '?' never crossing '/', classes with
 * ranges and negation, backslash escapes, anchoring at both ends, and
 * glob_matches_all_below() / glob_match_any().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "glob.h"

#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct row {
	const char *pattern, *path;
	bool match;
};

static const struct row rows[] = {
    /* "**" alone: everything, at any depth */
    {"**", "a", true},
    {"**", "a/b/c", true},
    {"**", ".hidden", true},
    {"**", "dir/.hidden/x", true},

    /* trailing "**": everything below, not the directory itself */
    {"Logs/**", "Logs/gateway.log", true},
    {"Logs/**", "Logs/2026/11/28.log", true},
    {"Logs/**", "Logs", false},
    {"Logs/**", "Logsx/a", false},
    {"Logs/**", "xLogs/a", false},
    {"Logs/**", "sub/Logs/a", false},
    {"Logs/**", "logs/a", false}, /* case matters */

    /* leading "**": any depth, including none */
    {"**/*.bak", "a.bak", true},
    {"**/*.bak", "dir/a.bak", true},
    {"**/*.bak", "d/e/f/a.bak", true},
    {"**/*.bak", "a.bak/x", false},
    {"**/*.bak", "a.bakx", false},
    {"**/*.bak", ".bak", true},
    {"**/Logs", "Logs", true},
    {"**/Logs", "a/b/Logs", true},
    {"**/Logs", "a/b/Logs/c", false},
    {"**/Logs", "a/bLogs", false},

    /* "**" in the middle: zero or more components */
    {"a/**/c", "a/c", true},
    {"a/**/c", "a/b/c", true},
    {"a/**/c", "a/b/b/c", true},
    {"a/**/c", "a/bc", false},
    {"a/**/c", "ab/c", false},
    {"a/**/c", "a/b/c/d", false},
    {"**/x/**", "x/y", true},
    {"**/x/**", "a/x/y/z", true},
    {"**/x/**", "a/x", false},

    /* "**" not a whole component acts as a single '*' */
    {"a**", "abc", true},
    {"a**", "a/b", false},
    {"**b", "ab", true},
    {"**b", "a/b", false},
    {"a**/c", "ab/c", true},
    {"a**/c", "a/b/c", false},
    {"a**/c", "ac", false},
    {"x/a**b/y", "x/aQQb/y", true},
    {"x/a**b/y", "x/a/b/y", false},

    /* '*' within one component */
    {"a/*/c", "a/b/c", true},
    {"a/*/c", "a//c", true},
    {"a/*/c", "a/b/b/c", false},
    {"a/*/c", "a/c", false},
    {"*", "Gateway.json", true},
    {"*", "a/b", false},
    {"*", "", true},
    {"*.json", "Gateway.json", true},
    {"*.json", "Certificates/x.json", false},
    {"*.json", ".json", true},
    {"G*y*.json", "Gateway.json", true},
    {"G*y*.json", "Gatewa.json", false},
    {"Gateway.*", "Gateway.json", true},
    {"Gateway.*", "Gateway", false},
    {"*/", "a/", true},

    /* '?' is one character, never '/' */
    {"?", "a", true},
    {"?", "", false},
    {"?", "ab", false},
    {"?", "/", false},
    {"a?c", "abc", true},
    {"a?c", "a/c", false},
    {"a?c", "ac", false},
    {"???", "\xc3\xa4x", true}, /* bytes, not characters */

    /* classes */
    {"[abc]", "b", true},
    {"[abc]", "d", false},
    {"[a-c]x", "bx", true},
    {"[a-c]x", "dx", false},
    {"[!a-c]x", "dx", true},
    {"[!a-c]x", "ax", false},
    {"[^a-c]x", "dx", true},
    {"[^a-c]x", "bx", false},
    {"[0-9][0-9]", "42", true},
    {"[0-9][0-9]", "4x", false},
    {"[]]", "]", true},
    {"[]a]", "a", true},
    {"[a-]", "-", true},
    {"[a-]", "a", true},
    {"[a-]", "b", false},
    {"[!/]", "/", false},
    {"[/]", "/", false},  /* a class never matches '/' */
    {"[abc", "a", false}, /* unterminated: no match */
    {"[", "[", false},
    {"mbx-[0-9a-f][0-9a-f]*", "mbx-0f12", true},
    {"mbx-[0-9a-f][0-9a-f]*", "mbx-0g12", false},

    /* escapes */
    {"\\*", "*", true},
    {"\\*", "a", false},
    {"a\\?c", "a?c", true},
    {"a\\?c", "abc", false},
    {"\\[x]", "[x]", true},
    {"\\[x]", "x", false},
    {"\\\\", "\\", true},
    {"a\\b", "ab", true}, /* an escaped ordinary character is itself */
    {"x\\", "x\\", true}, /* a trailing backslash is literal */
    {"\\**", "*abc", true},
    {"\\**", "*a/b", false},

    /* anchored at both ends */
    {"Gateway.json", "Gateway.json", true},
    {"Gateway.json", "Gateway.json.bak", false},
    {"Gateway.json", "x/Gateway.json", false},
    {"Gateway.json", "Gateway.jso", false},
    {"Certificates", "Certificates/x", false},
    {"b", "abc", false},
    {"", "", true},
    {"", "a", false},
    {"a", "", false},
    {"Templates/*.txt", "Templates/bounce.txt", true},
    {"Templates/*.txt", "Templates/sub/bounce.txt", false},
    {"Templates/*.txt", "x/Templates/bounce.txt", false},

    /* several stars and "**": only the last is retried, with the same answers */
    {"*a*b*c", "xaybzc", true},
    {"*a*b*c", "xaybzcx", false},
    {"*a*a*a", "aaa", true},
    {"*a*a*a", "aa", false},
    {"a/**/b/**/c", "a/b/c", true},
    {"a/**/b/**/c", "a/x/b/y/z/c", true},
    {"a/**/b/**/c", "a/x/y/c", false},
    {"**/b/**/b", "b/b/b", true},
    {"**/b/**/b", "b/x", false},
    {"**/a*/c", "x/ab/y/ac/c", true},
    {"**/a*/c", "x/ab/c/d", false},
    {"*/**/x", "a/x", true},
    {"*/**/x", "x", false},
    {"a/**/", "a/b/", true},
    {"a/**/", "a/b", false},
    {"**/", "", true},
    {"**/", "a/", true},
    {"a//**/b", "a//b", true},
    {"**/x", "a//x", true},
};

static void test_glob_table(void **state)
{
	size_t i, bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		bool got = glob_match(rows[i].pattern, rows[i].path);

		if (got != rows[i].match) {
			print_error("glob_match(\"%s\", \"%s\") = %d, expected %d\n",
				    rows[i].pattern, rows[i].path, got, rows[i].match);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void test_glob_match_any(void **state)
{
	char *const list[] = {"Logs/**", "**/*.bak", "Temp", NULL};
	char *const empty[] = {NULL};

	(void)state;
	assert_true(glob_match_any(list, "Logs/a.log"));
	assert_true(glob_match_any(list, "x/y.bak"));
	assert_true(glob_match_any(list, "Temp"));
	assert_false(glob_match_any(list, "Temp/x"));
	assert_false(glob_match_any(list, "Gateway.json"));
	assert_false(glob_match_any(empty, "a"));
	assert_false(glob_match_any(NULL, "a"));
}

static void test_matches_all_below(void **state)
{
	static const struct row below[] = {
	    {"**", "anything", true},
	    {"**", "a/b", true},
	    {"Logs/**", "Logs", true},
	    {"Logs/**", "Logs2", false},
	    {"Logs/**", "a/Logs", false},
	    {"**/tmp/**", "tmp", true},
	    {"**/tmp/**", "a/b/tmp", true},
	    {"**/tmp/**", "a/tmpx", false},
	    {"*/cache/**", "x/cache", true},
	    {"*/cache/**", "x/y/cache", false},
	    {"Logs/*", "Logs", false}, /* only one level: not everything below */
	    {"Logs", "Logs", false},
	    {"**/*.bak", "x.bak", false},
	    {"/**", "", true},
	    {"Lo**/**", "Logs", true},
	};
	size_t i, bad = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(below); i++) {
		bool got = glob_matches_all_below(below[i].pattern, below[i].path);

		if (got != below[i].match) {
			print_error("glob_matches_all_below(\"%s\", \"%s\") = %d, expected %d\n",
				    below[i].pattern, below[i].path, got, below[i].match);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* A pattern that says everything below a directory must agree with
 * glob_match on paths below it, or a walk would skip what it should read. */
static void test_all_below_agrees(void **state)
{
	static const char *const patterns[] = {"**", "Logs/**", "**/tmp/**", "a/*/c/**"};
	static const char *const dirs[] = {"Logs", "tmp", "x/tmp", "a/b/c", "a/b", "Logs/x"};
	static const char *const tails[] = {"f", "d/e/f", ".hidden"};
	size_t i, j, k;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(patterns); i++)
		for (j = 0; j < ARRAY_SIZE(dirs); j++) {
			if (!glob_matches_all_below(patterns[i], dirs[j]))
				continue;
			for (k = 0; k < ARRAY_SIZE(tails); k++) {
				char path[256];

				snprintf(path, sizeof(path), "%s/%s", dirs[j], tails[k]);
				if (!glob_match(patterns[i], path))
					fail_msg("'%s' covers '%s' but does not match '%s'",
						 patterns[i], dirs[j], path);
			}
		}
}

/*
 * The matcher this one replaced (plain recursion, exponential on many
 * stars), kept as the reference of the semantics: both must agree on every
 * small pattern and path.
 */
static bool ref_class(const char **pp, char c)
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
			return false;
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

static bool ref_match(const char *start, const char *p, const char *s)
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

					if (ref_match(start, p + 3, s))
						return true;
					for (t = s; *t; t++)
						if (*t == '/' && ref_match(start, p + 3, t + 1))
							return true;
					return false;
				}
			}
			while (p[1] == '*')
				p++;
			for (;; s++) {
				if (ref_match(start, p + 1, s))
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
			if (*s == '\0' || *s == '/' || !ref_class(&p, *s))
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

/* A small deterministic generator (xorshift), so a failure repeats. */
static uint32_t rng_next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void random_string(char *out, size_t max, const char *alphabet, uint32_t *x)
{
	size_t n = rng_next(x) % max, i, k = strlen(alphabet);

	for (i = 0; i < n; i++)
		out[i] = alphabet[rng_next(x) % k];
	out[n] = '\0';
}

static void test_agrees_with_reference(void **state)
{
	uint32_t x = 2463534242u;
	char pattern[16], path[16];
	int i, bad = 0, hits = 0;

	(void)state;
	for (i = 0; i < 200000; i++) {
		bool want, got;

		random_string(pattern, 12, "ab*/?*[]!-\\", &x);
		random_string(path, 12, "ab/-*", &x);
		want = ref_match(pattern, pattern, path);
		got = glob_match(pattern, path);
		hits += want;
		if (got != want && bad++ < 10)
			print_error("glob_match(\"%s\", \"%s\") = %d, the reference says %d\n",
				    pattern, path, got, want);
	}
	assert_int_equal(bad, 0);
	assert_true(hits > 2000); /* the sample has matches, not only misses */
}

/*
 * Many stars against a long path that does not match: the recursive
 * matcher needed about C(100, 30) steps here (it never finished); this one
 * answers at once (the suite's timeout is the assertion on time).
 */
static void test_many_stars(void **state)
{
	char pattern[256], path[256], deep[512];
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < 30; i++)
		pattern[n++] = '*', pattern[n++] = 'a';
	pattern[n++] = 'b';
	pattern[n] = '\0';
	memset(path, 'a', 100);
	path[100] = '\0';
	assert_false(glob_match(pattern, path));
	path[99] = 'b';
	assert_true(glob_match(pattern, path));

	/* "**" across 30 components: ** / x / ** / x ... against x/x/.../y */
	n = 0;
	for (i = 0; i < 30; i++)
		n += (size_t)snprintf(pattern + n, sizeof(pattern) - n, "**/x/");
	snprintf(pattern + n, sizeof(pattern) - n, "z");
	n = 0;
	for (i = 0; i < 100; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "x/");
	snprintf(deep + n, sizeof(deep) - n, "y");
	assert_false(glob_match(pattern, deep));
	deep[n] = 'z';
	assert_true(glob_match(pattern, deep));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_glob_table),
	    cmocka_unit_test(test_glob_match_any),
	    cmocka_unit_test(test_matches_all_below),
	    cmocka_unit_test(test_all_below_agrees),
	    cmocka_unit_test(test_agrees_with_reference),
	    cmocka_unit_test(test_many_stars),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
