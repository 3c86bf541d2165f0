/*
 * test_manifest: the manifest's text form (repository format version 1)
 * and its comparison.  Round trips through manifest_format/manifest_parse
 * with paths holding every byte that must be percent-encoded (space, tab,
 * newline, '%', 0x7f) and UTF-8 that must be kept as it is; the exact text
 * of a small manifest; bytewise sorting and lookup; every parse error with
 * the line it names; the counts of manifest_diff; the natural merge sort
 * against qsort; put_digits against printf.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "manifest.h"
#include "util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char SHA_A[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char SHA_B[] = "2222222222222222222222222222222222222222222222222222222222222222";

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static int setup(void **state)
{
	struct manifest *m = calloc(2, sizeof(*m));

	assert_non_null(m);
	manifest_init(&m[0]);
	manifest_init(&m[1]);
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	struct manifest *m = *state;

	manifest_release(&m[0]);
	manifest_release(&m[1]);
	free(m);
	return 0;
}

static struct manifest_entry *add(struct manifest *m, char type, const char *path, uint32_t mode,
				  uint64_t size, const char *hex)
{
	struct manifest_entry *e = manifest_add(m, type, path);

	e->mode = mode;
	e->uid = 1000;
	e->gid = 100;
	e->size = size;
	if (hex)
		assert_int_equal(hex_decode(e->sha, hex, SHA256_LEN), 0);
	return e;
}

/* ---- encoding ----------------------------------------------------------- */

static void test_encode_path(void **state)
{
	static const struct {
		const char *raw, *enc;
	} cases[] = {
	    {"Gateway.json", "Gateway.json"},
	    {"a b", "a%20b"},
	    {"tab\there", "tab%09here"},
	    {"new\nline", "new%0Aline"},
	    {"cr\r", "cr%0D"},
	    {"100%", "100%25"},
	    {"%25", "%2525"},
	    {"del\x7f", "del%7F"},
	    {"\x01\x1f", "%01%1F"},
	    {"!\"#~", "!\"#~"}, /* 0x21 and above (but 0x7f) stay */
	    {"d\xc3\xbcsseldorf/\xd1\x84\xd0\xb0\xd0\xb9\xd0\xbb", /* UTF-8 as is */
	     "d\xc3\xbcsseldorf/\xd1\x84\xd0\xb0\xd0\xb9\xd0\xbb"},
	    {"\xff\x80", "\xff\x80"}, /* bytes above 0x7f are never escaped */
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char *enc = manifest_encode_path(cases[i].raw);
		char *dec = manifest_decode_path(enc);

		assert_string_equal(enc, cases[i].enc);
		assert_non_null(dec);
		assert_string_equal(dec, cases[i].raw);
		free(enc);
		free(dec);
	}
}

static void test_decode_rejects(void **state)
{
	static const char *const bad[] = {
	    "a%", "a%2", "a%zz", "a%2g", "%00", "a b", "a\tb", "x\x7f", "%%",
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		char *dec = manifest_decode_path(bad[i]);

		if (dec)
			fail_msg("decoding '%s' gave '%s', expected failure", bad[i], dec);
	}
}

/* ---- format and parse --------------------------------------------------- */

static void test_format_exact(void **state)
{
	struct manifest *m = *state;
	char *text = NULL;
	size_t len = 0;

	add(m, 'd', "Templates", 0755, 0, NULL);
	add(m, 'f', "Gateway.json", 0640, 1162, SHA_A)->uid = 0;
	add(m, 'l', "current", 0777, 12, SHA_B);
	manifest_sort(m);
	assert_int_equal(manifest_format(&text, &len, m), 0);
	assert_string_equal(text, "msgw-manifest 1\n"
				  "f 0640 0 100 1162 " /* */
				  "1111111111111111111111111111111111111111111111111111111111111111"
				  " Gateway.json\n"
				  "d 0755 1000 100 0 - Templates\n"
				  "l 0777 1000 100 12 "
				  "2222222222222222222222222222222222222222222222222222222222222222"
				  " current\n");
	assert_int_equal(len, strlen(text));
	free(text);
}

static void test_round_trip(void **state)
{
	static const char *const paths[] = {
	    "plain.txt",
	    "with space",
	    "with\ttab",
	    "with\nnewline",
	    "percent%sign",
	    "%41 looks escaped",
	    "del\x7f",
	    "\x01\x02\x03",
	    "caf\xc3\xa9/\xe2\x82\xac.txt",
	    "\xe6\x97\xa5\xe6\x9c\xac",
	    "deep/a/b/c/d/e/f/g",
	};
	struct manifest *m = *state, *back = &m[1];
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0, i;

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		struct manifest_entry *e =
		    add(m, 'f', paths[i], 0600 + (uint32_t)i, i * 1000, SHA_A);

		e->sha[0] = (unsigned char)i;
		e->mtime = 12345; /* not part of the text form */
	}
	add(m, 'd', "deep", 02755, 0, NULL);
	add(m, 'l', "link to\nsomewhere", 0777, 9, SHA_B);
	manifest_sort(m);
	assert_int_equal(manifest_format(&text, &len, m), 0);

	/* one line per entry, nothing raw that must be encoded */
	{
		size_t lines = 0;

		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)text[i];

			lines += c == '\n';
			assert_true(c == '\n' || (c >= 0x20 && c != 0x7f));
		}
		assert_int_equal(lines, m->n + 1);
	}
	assert_non_null(strstr(text, " with%20space\n"));
	assert_non_null(strstr(text, " with%09tab\n"));
	assert_non_null(strstr(text, " with%0Anewline\n"));
	assert_non_null(strstr(text, " percent%25sign\n"));
	assert_non_null(strstr(text, " %2541%20looks%20escaped\n"));
	assert_non_null(strstr(text, " del%7F\n"));
	assert_non_null(strstr(text, " caf\xc3\xa9/\xe2\x82\xac.txt\n"));
	assert_non_null(strstr(text, " link%20to%0Asomewhere\n"));
	assert_non_null(strstr(text, "d 2755 1000 100 0 - deep\n"));

	assert_int_equal(manifest_parse(back, text, len), 0);
	assert_int_equal(back->n, m->n);
	for (i = 0; i < m->n; i++) {
		assert_string_equal(back->e[i].path, m->e[i].path);
		assert_true(manifest_entry_equal(&back->e[i], &m->e[i]));
	}
	/* and the text of what was parsed is the same text again */
	assert_int_equal(manifest_format(&text2, &len2, back), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(text2, text, len);
	free(text);
	free(text2);
}

static void test_parse_empty_manifest(void **state)
{
	struct manifest *m = *state;
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(manifest_format(&text, &len, m), 0);
	assert_string_equal(text, MANIFEST_HEADER "\n");
	assert_int_equal(manifest_parse(&m[1], text, len), 0);
	assert_int_equal(m[1].n, 0);
	free(text);
}

static void test_sort_and_find(void **state)
{
	/* bytewise: uppercase before lowercase, '-' and '.' before '/', UTF-8
	 * after ASCII */
	static const char *const sorted[] = {
	    "B", "a", "a-b", "a.b", "a/b", "a/b/c", "a0", "z", "\xc3\xa4",
	};
	static const size_t order[] = {4, 8, 0, 2, 6, 1, 3, 7, 5};
	struct manifest *m = *state;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(order); i++)
		add(m, 'f', sorted[order[i]], 0644, 0, SHA_A);
	manifest_sort(m);
	for (i = 0; i < ARRAY_SIZE(sorted); i++) {
		assert_string_equal(m->e[i].path, sorted[i]);
		assert_ptr_equal(manifest_find(m, sorted[i]), &m->e[i]);
	}
	assert_null(manifest_find(m, "a/"));
	assert_null(manifest_find(m, ""));
	assert_null(manifest_find(m, "zz"));
}

/* ---- parse errors -------------------------------------------------------- */

#define F1 "f 0644 0 0 3 " /* + SHA + " path\n" */

struct bad {
	const char *what;
	const char *text;
	const char *msg; /* err_last() contains this */
};

static void test_parse_errors(void **state)
{
	static const struct bad cases[] = {
	    {"empty", "", "manifest line 1: truncated"},
	    {"no header", "f 0644 0 0 0 - x\n", "manifest line 1: expected 'msgw-manifest 1'"},
	    {"other version", "msgw-manifest 2\n", "manifest line 1: expected"},
	    {"header without newline", "msgw-manifest 1", "manifest line 1: truncated"},
	    {"bad type",
	     "msgw-manifest 1\n" F1
	     "1111111111111111111111111111111111111111111111111111111111111111 a\n"
	     "x 0644 0 0 3 "
	     "1111111111111111111111111111111111111111111111111111111111111111 b\n",
	     "manifest line 3: unknown type 'x'"},
	    {"short hash", "msgw-manifest 1\n" F1 "1111 a\n", "manifest line 2: bad sha256"},
	    {"non-hex hash",
	     "msgw-manifest 1\n" F1
	     "111111111111111111111111111111111111111111111111111111111111111g a\n",
	     "manifest line 2: bad sha256"},
	    {"long hash",
	     "msgw-manifest 1\n" F1
	     "11111111111111111111111111111111111111111111111111111111111111111 a\n",
	     "manifest line 2: bad sha256"},
	    {"file without hash", "msgw-manifest 1\n" F1 "- a\n", "manifest line 2: bad sha256"},
	    {"directory with hash",
	     "msgw-manifest 1\n"
	     "d 0755 0 0 0 1111111111111111111111111111111111111111111111111111111111111111 d\n",
	     "manifest line 2: bad sha256"},
	    {"out of order",
	     "msgw-manifest 1\n"
	     "d 0755 0 0 0 - a\n"
	     "d 0755 0 0 0 - c\n"
	     "d 0755 0 0 0 - b\n",
	     "manifest line 4: 'b' out of order"},
	    {"duplicate",
	     "msgw-manifest 1\n"
	     "d 0755 0 0 0 - a\n"
	     "d 0755 0 0 0 - a\n",
	     "manifest line 3: 'a' out of order"},
	    {"truncated mid-line",
	     "msgw-manifest 1\n"
	     "d 0755 0 0 0 - a\n"
	     "f 0644 0 0 3 11111111",
	     "manifest line 3: truncated"},
	    {"truncated after a whole line",
	     "msgw-manifest 1\n"
	     "d 0755 0 0 0 - a",
	     "manifest line 2: truncated"},
	    {"missing field", "msgw-manifest 1\nd 0755 0 0 - a\n", "manifest line 2: malformed"},
	    {"extra field", "msgw-manifest 1\nd 0755 0 0 0 - a b\n", "manifest line 2: malformed"},
	    {"bad mode", "msgw-manifest 1\nd 0789 0 0 0 - a\n", "manifest line 2: bad mode"},
	    {"bad size", "msgw-manifest 1\nd 0755 0 0 x - a\n", "manifest line 2: bad size"},
	    {"negative size", "msgw-manifest 1\nd 0755 0 0 -1 - a\n", "manifest line 2: bad size"},
	    {"short mode", "msgw-manifest 1\nd 755 0 0 0 - a\n", "manifest line 2: bad mode"},
	    {"long mode", "msgw-manifest 1\nd 100755 0 0 0 - a\n", "manifest line 2: bad mode"},
	    {"negative uid", "msgw-manifest 1\nd 0755 -1 0 0 - a\n", "manifest line 2: bad owner"},
	    {"huge gid", "msgw-manifest 1\nd 0755 0 4294967296 0 - a\n",
	     "manifest line 2: bad owner"},
	    {"two spaces", "msgw-manifest 1\nd  0755 0 0 0 - a\n", "manifest line 2: malformed"},
	    {"trailing space", "msgw-manifest 1\nd 0755 0 0 0 - a \n",
	     "manifest line 2: malformed"},
	    {"tab separator", "msgw-manifest 1\nd\t0755 0 0 0 - a\n", "manifest line 2: malformed"},
	    {"long type", "msgw-manifest 1\nff 0755 0 0 0 - a\n",
	     "manifest line 2: unknown type 'ff'"},
	    {"blank line",
	     "msgw-manifest 1\n"
	     "d 0755 0 0 0 - a\n"
	     "\n"
	     "d 0755 0 0 0 - b\n",
	     "manifest line 3: malformed"},
	    {"leading blank line", "\nmsgw-manifest 1\n", "manifest line 1: expected"},
	    {"bad escape", "msgw-manifest 1\nd 0755 0 0 0 - a%zz\n", "manifest line 2: bad path"},
	    {"escaped NUL", "msgw-manifest 1\nd 0755 0 0 0 - a%00\n", "manifest line 2: bad path"},
	    {"raw 0x7f", "msgw-manifest 1\nd 0755 0 0 0 - a\x7f\n", "manifest line 2: bad path"},
	};
	struct manifest *m = *state;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		err_clear();
		m->n = 99; /* parse must initialise it */
		m->e = NULL;
		rc = manifest_parse(m, cases[i].text, strlen(cases[i].text));
		if (rc != MSGW_ECORRUPT)
			fail_msg("%s: manifest_parse returned %d, expected MSGW_ECORRUPT",
				 cases[i].what, rc);
		if (!strstr(err_last(), cases[i].msg))
			fail_msg("%s: message '%s' lacks '%s'", cases[i].what, err_last(),
				 cases[i].msg);
		assert_int_equal(m->n, 0);
		assert_null(m->e);
	}
}

static void test_parse_embedded_nul(void **state)
{
	static const char text[] = "msgw-manifest 1\nd 0755 0 0 0 - a\0b\n";
	struct manifest *m = *state;

	assert_int_equal(manifest_parse(m, text, sizeof(text) - 1), MSGW_ECORRUPT);
	assert_contains(err_last(), "manifest line 2");
	assert_int_equal(m->n, 0);
}

/* ---- diff -------------------------------------------------------------- */

static void test_diff_counts(void **state)
{
	struct manifest *a = *state, *b = &a[1];
	struct manifest_diff d;
	char summary[128];

	add(a, 'f', "Gateway.json", 0644, 10, SHA_A);
	add(a, 'f', "removed.txt", 0644, 3, SHA_A);
	add(a, 'd', "OldDir", 0755, 0, NULL);
	add(a, 'f', "same.txt", 0644, 3, SHA_A);
	add(a, 'f', "mode.txt", 0644, 3, SHA_A);
	add(a, 'l', "link", 0777, 4, SHA_A);
	manifest_sort(a);

	add(b, 'f', "Gateway.json", 0644, 10, SHA_B);	    /* content changed */
	add(b, 'd', "NewDir", 0755, 0, NULL);		    /* added */
	add(b, 'f', "NewDir/new.txt", 0644, 1, SHA_A);	    /* added */
	add(b, 'f', "same.txt", 0644, 3, SHA_A)->mtime = 9; /* only mtime: same */
	add(b, 'f', "mode.txt", 0600, 3, SHA_A);	    /* mode changed */
	add(b, 'l', "link", 0777, 4, SHA_B);		    /* target changed */
	manifest_sort(b);

	manifest_diff(&d, a, b);
	assert_int_equal(d.modified, 3);
	assert_int_equal(d.added, 2);
	assert_int_equal(d.removed, 2);
	assert_int_equal(d.n, 7);
	/* in path order, with the right entries attached */
	assert_int_equal(d.c[0].kind, 'M');
	assert_string_equal(d.c[0].new_e->path, "Gateway.json");
	assert_int_equal(d.c[1].kind, 'A');
	assert_string_equal(d.c[1].new_e->path, "NewDir");
	assert_null(d.c[1].old_e);
	assert_int_equal(d.c[2].kind, 'A');
	assert_int_equal(d.c[3].kind, 'D');
	assert_string_equal(d.c[3].old_e->path, "OldDir");
	assert_null(d.c[3].new_e);
	assert_int_equal(d.c[4].kind, 'M');
	assert_string_equal(d.c[4].old_e->path, "link");
	assert_int_equal(d.c[5].kind, 'M');
	assert_string_equal(d.c[5].old_e->path, "mode.txt");
	assert_int_equal(d.c[6].kind, 'D');
	assert_string_equal(d.c[6].old_e->path, "removed.txt");
	manifest_diff_summary(&d, summary, sizeof(summary));
	assert_string_equal(summary, "3 modified, 2 added, 2 removed");
	manifest_diff_release(&d);
	assert_int_equal(d.n, 0);

	/* the reverse direction swaps added and removed */
	manifest_diff(&d, b, a);
	assert_int_equal(d.modified, 3);
	assert_int_equal(d.added, 2);
	assert_int_equal(d.removed, 2);
	manifest_diff_release(&d);
}

static void test_diff_identical_and_null(void **state)
{
	struct manifest *a = *state, *b = &a[1];
	struct manifest_diff d;
	char summary[128];

	add(a, 'd', "d", 0755, 0, NULL);
	add(a, 'f', "d/f", 0644, 1, SHA_A)->uname = xstrdup("root");
	add(b, 'd', "d", 0755, 0, NULL);
	add(b, 'f', "d/f", 0644, 1, SHA_A)->uname = xstrdup("other"); /* not compared */

	manifest_diff(&d, a, b);
	assert_int_equal(d.n, 0);
	manifest_diff_summary(&d, summary, sizeof(summary));
	assert_string_equal(summary, "0 modified, 0 added, 0 removed");
	manifest_diff_release(&d);

	manifest_diff(&d, NULL, b);
	assert_int_equal(d.added, 2);
	assert_int_equal(d.modified + d.removed, 0);
	manifest_diff_release(&d);

	b->e[1].uid = 0; /* owner ids are part of the text form */
	manifest_diff(&d, a, b);
	assert_int_equal(d.modified, 1);
	manifest_diff_release(&d);
}

static void test_entry_equal(void **state)
{
	struct manifest *m = *state;
	struct manifest_entry *x, *y;

	add(m, 'f', "a", 0644, 1, SHA_A);
	add(m, 'f', "a", 0644, 1, SHA_A);
	x = &m->e[0];
	y = &m->e[1];
	y->mtime = 77;
	y->ino = 5;
	assert_true(manifest_entry_equal(x, y));
	y->gid = 1;
	assert_false(manifest_entry_equal(x, y));
	y->gid = x->gid;
	y->size = 2;
	assert_false(manifest_entry_equal(x, y));
	y->size = 1;
	y->type = 'l';
	assert_false(manifest_entry_equal(x, y));
	y->type = 'f';
	y->sha[31] ^= 1;
	assert_false(manifest_entry_equal(x, y));
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* manifest_sort against a sort of the same paths, on the shapes it meets:
 * sorted, a few runs ("a-b" beside directory "a"), reversed, random,
 * duplicates (a walk never makes them; the order of equal paths is not
 * promised, only that the paths come out sorted). */
static void test_sort_shapes(void **state)
{
	static const size_t sizes[] = {0, 1, 2, 3, 7, 64, 1000};
	unsigned seed = 12345;
	size_t si;
	int shape;

	(void)state;
	for (si = 0; si < ARRAY_SIZE(sizes); si++) {
		for (shape = 0; shape < 6; shape++) {
			size_t n = sizes[si], i;
			struct manifest m;
			char **want = xcalloc(n + 1, sizeof(*want));

			manifest_init(&m);
			for (i = 0; i < n; i++) {
				size_t k;
				char path[64];

				switch (shape) {
				case 0: /* sorted */
					k = i;
					break;
				case 1: /* two runs: every other one moved behind */
					k = i < (n + 1) / 2 ? 2 * i : 2 * (i - (n + 1) / 2) + 1;
					break;
				case 2: /* reversed */
					k = n - 1 - i;
					break;
				case 3: /* random */
					seed = seed * 1103515245u + 12345u;
					k = (seed >> 8) % (n ? n : 1);
					break;
				case 4: /* many duplicates */
					k = i % 3;
					break;
				default: /* a directory, then "a-b" after its children */
					k = i % 5 == 4 ? i - 3 : i;
					break;
				}
				snprintf(path, sizeof(path), "d/%06zu%s", k,
					 shape == 5 && i % 5 == 4 ? "-b" : "");
				manifest_add(&m, 'f', path)->size = i;
				want[i] = m.e[i].path;
			}
			qsort(want, n, sizeof(*want), path_cmp);
			manifest_sort(&m);
			assert_int_equal(m.n, n);
			for (i = 0; i < n; i++) {
				assert_string_equal(m.e[i].path, want[i]);
			}
			free(want);
			manifest_release(&m);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_path),
	    cmocka_unit_test(test_decode_rejects),
	    cmocka_unit_test_setup_teardown(test_format_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_empty_manifest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sort_and_find, setup, teardown),
	    cmocka_unit_test(test_sort_shapes),
	    cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_embedded_nul, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_diff_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_diff_identical_and_null, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entry_equal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
