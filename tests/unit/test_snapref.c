/*
 * test_snapref: the syntax of snapshot names without a repository
 * (snapref_parse, snapref_valid_name): branch names, @latest, ~N, tags,
 * id prefixes, and the malformed forms with their messages.  Resolution
 * against a real repository is in test_repo.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "snapref.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct good {
	const char *text, *name;
	int back;
	bool latest, explicit_branch, maybe_hex;
};

static void test_parse_good(void **state)
{
	static const struct good cases[] = {
	    {"msgw1", "msgw1", 0, false, false, false},
	    {"msgw1@latest", "msgw1", 0, true, true, false},
	    {"msgw1~0", "msgw1", 0, false, true, false},
	    {"msgw1~1", "msgw1", 1, false, true, false},
	    {"msgw1~3", "msgw1", 3, false, true, false},
	    {"msgw1~12", "msgw1", 12, false, true, false},
	    {"v1.2", "v1.2", 0, false, false, false},
	    {"before-upgrade_2", "before-upgrade_2", 0, false, false, false},
	    {"3fa9c01", "3fa9c01", 0, false, false, true},
	    {"3FA9C01d", "3FA9C01d", 0, false, false, true},
	    {"3fa9c0", "3fa9c0", 0, false, false, false}, /* 6 digits: a name */
	    {"3fa9c01e3fa9c01e3fa9c01e3fa9c01e3fa9c01e", "3fa9c01e3fa9c01e3fa9c01e3fa9c01e3fa9c01e",
	     0, false, false, true},
	    {"3fa9c01e3fa9c01e3fa9c01e3fa9c01e3fa9c01e0",
	     "3fa9c01e3fa9c01e3fa9c01e3fa9c01e3fa9c01e0", 0, false, false,
	     false}, /* 41 digits: not an id */
	    {"deadbeefx", "deadbeefx", 0, false, false, false},
	    {"deadbeef~1", "deadbeef", 1, false, true, false}, /* ~N: a branch */
	    {"deadbeef@latest", "deadbeef", 0, true, true, false},
	    {"a", "a", 0, false, false, false},
	    {"a.b-c_d", "a.b-c_d", 0, false, false, false},
	    {"x.lockx", "x.lockx", 0, false, false, false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct snapref r;
		int rc = snapref_parse(&r, cases[i].text);

		if (rc != 0)
			fail_msg("snapref_parse('%s') = %d: %s", cases[i].text, rc, err_last());
		assert_string_equal(r.name, cases[i].name);
		assert_int_equal(r.back, cases[i].back);
		assert_int_equal(r.latest, cases[i].latest);
		assert_int_equal(r.explicit_branch, cases[i].explicit_branch);
		if (r.maybe_hex != cases[i].maybe_hex)
			fail_msg("'%s': maybe_hex %d, expected %d", cases[i].text, r.maybe_hex,
				 cases[i].maybe_hex);
		snapref_release(&r);
		assert_null(r.name);
	}
}

struct bad {
	const char *text, *why; /* why: err_last() contains it */
};

static void test_parse_bad(void **state)
{
	static const struct bad cases[] = {
	    {"", "bad snapshot name ''"},
	    {"~3", "bad snapshot name '~3'"},
	    {"msgw1~", "~ needs a number"},
	    {"msgw1~x", "~ needs a number"},
	    {"msgw1~-1", "~ needs a number"},
	    {"msgw1~+1", "~ needs a number"},
	    {"msgw1~ 1", "~ needs a number"},
	    {"msgw1~1x", "~ needs a number"},
	    {"msgw1~1~2", "~ needs a number"},
	    {"msgw1~99999999999999999999", "~ needs a number"},
	    {"a@b", "only @latest is known"},
	    {"msgw1@", "only @latest is known"},
	    {"msgw1@LATEST", "only @latest is known"},
	    {"msgw1@latest~1", "use either ~N or @latest"},
	    {"msgw1~1@latest", "use either ~N or @latest"},
	    {"@latest", "bad snapshot name '@latest'"},
	    {"..", "bad snapshot name '..'"},
	    {"a..b", "bad snapshot name 'a..b'"},
	    {".hidden", "bad snapshot name '.hidden'"},
	    {"-rf", "bad snapshot name '-rf'"},
	    {"msgw1.lock", "bad snapshot name 'msgw1.lock'"},
	    {"msgw1.lock~1", "bad snapshot name 'msgw1.lock~1'"},
	    {".lock", "bad snapshot name '.lock'"},
	    {"a/b", "bad snapshot name 'a/b'"},
	    {"refs/heads/msgw1", "bad snapshot name"},
	    {"a b", "bad snapshot name 'a b'"},
	    {"a:b", "bad snapshot name"},
	    {"a^", "bad snapshot name"},
	    {"a*", "bad snapshot name"},
	    {"HEAD^{tree}", "bad snapshot name"},
	    {"caf\xc3\xa9", "bad snapshot name"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct snapref r;
		int rc;

		err_clear();
		rc = snapref_parse(&r, cases[i].text);
		if (rc != MSGW_ECONFIG)
			fail_msg("snapref_parse('%s') = %d, expected MSGW_ECONFIG", cases[i].text,
				 rc);
		if (!strstr(err_last(), cases[i].why))
			fail_msg("'%s': message '%s' lacks '%s'", cases[i].text, err_last(),
				 cases[i].why);
		assert_null(r.name);
		snapref_release(&r); /* harmless after a failure */
	}
}

static void test_long_name(void **state)
{
	char name[256];
	struct snapref r;

	(void)state;
	memset(name, 'a', 200);
	name[200] = '\0';
	assert_true(snapref_valid_name(name));
	assert_int_equal(snapref_parse(&r, name), 0);
	snapref_release(&r);
	name[200] = 'a';
	name[201] = '\0';
	assert_false(snapref_valid_name(name));
	assert_int_equal(snapref_parse(&r, name), MSGW_ECONFIG);
}

static void test_valid_name(void **state)
{
	static const char *const good[] = {"msgw1", "MSGW-2", "v1.2.3", "a_b", "x.lockfile", "0"};
	static const char *const bad[] = {"",	 ".",	"..",  ".x",  "-x",   "x..y", "x.lock",
					  "x y", "x/y", "x~1", "x@y", "x\\y", "x\n"};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(good); i++)
		if (!snapref_valid_name(good[i]))
			fail_msg("'%s' should be a valid name", good[i]);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		if (snapref_valid_name(bad[i]))
			fail_msg("'%s' should not be a valid name", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_long_name),
	    cmocka_unit_test(test_valid_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
