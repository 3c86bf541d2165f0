/*
 * test_journal: the restore journal's text form round trip, its damage
 * detection, and durable save/load; and the entry-name checks restore and
 * extract apply to every archive entry (plan_check_entry_name).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "journal.h"
#include "plan.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void fill(struct journal *j)
{
	journal_init(j);
	j->gateway = strdup("msgw2");
	memset(j->snapshot, 'a', 40);
	memset(j->pre_restore, 'b', 40);
	journal_set_phase(j, "swapping");
	j->started = strdup("2026-11-28T15:00:00Z");
	j->confirm_deadline = 1795880000;
	j->forced = strdup("key-changed,proxy-mode");
	journal_add(j, J_MKDIR, "Templates/new dir");
	j->e[0].mode = 0750;
	journal_add(j, J_ADD, "Templates/new dir/a%b.txt");
	j->e[1].ino = 123456789012ULL;
	j->e[1].has_sha = true;
	memset(j->e[1].sha, 0xab, sizeof(j->e[1].sha));
	journal_add(j, J_MODIFY, "Gateway.json");
	journal_add(j, J_CHMOD, "Templates");
	j->e[3].old_mode = 0755, j->e[3].old_uid = 1, j->e[3].old_gid = 2;
	j->e[3].mode = 0700, j->e[3].uid = 3, j->e[3].gid = 4;
	journal_add(j, J_REMOVE, "old\tname");
	journal_add(j, J_RMDIR, "Old");
	j->e[5].old_mode = 0711;
}

static void test_round_trip(void **state)
{
	struct journal a, b;
	char *text, *again;
	size_t i;

	(void)state;
	fill(&a);
	text = journal_format(&a);
	assert_int_equal(journal_parse(&b, text, strlen(text)), 0);
	assert_string_equal(b.gateway, "msgw2");
	assert_string_equal(b.phase, "swapping");
	assert_string_equal(b.forced, "key-changed,proxy-mode");
	assert_int_equal(b.confirm_deadline, 1795880000);
	assert_memory_equal(b.snapshot, a.snapshot, 40);
	assert_int_equal(b.n, a.n);
	for (i = 0; i < a.n; i++) {
		assert_int_equal(b.e[i].op, a.e[i].op);
		assert_string_equal(b.e[i].path, a.e[i].path);
		assert_int_equal(b.e[i].mode, a.e[i].mode);
		assert_int_equal(b.e[i].old_mode, a.e[i].old_mode);
		assert_int_equal(b.e[i].uid, a.e[i].uid);
		assert_int_equal(b.e[i].old_gid, a.e[i].old_gid);
		assert_int_equal(b.e[i].ino, a.e[i].ino);
		assert_int_equal(b.e[i].has_sha, a.e[i].has_sha);
		assert_memory_equal(b.e[i].sha, a.e[i].sha, sizeof(a.e[i].sha));
	}
	again = journal_format(&b);
	assert_string_equal(again, text);
	free(text);
	free(again);
	journal_release(&a);
	journal_release(&b);
}

static void test_damage(void **state)
{
	static const char *const bad[] = {
	    "",
	    "msgw-journal 2\ngateway: g\nphase: staging\n",
	    "msgw-journal 1\nphase: staging\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nexplode x\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nmkdir nomode\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nadd bad%zzpath\n",
	    /* a repeated header (the journal on the target is writable by the
	     * gateway's account): refused, and nothing leaks (ASan) */
	    "msgw-journal 1\ngateway: g\ngateway: h\nphase: staging\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nphase: committing\n",
	    "msgw-journal 1\ngateway: g\nphase: s\nforced: a\nforced: b\nstarted: x\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nadd\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nadd a b\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nmkdir 0755x a\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nchmod 0755 1 2 0700 3 a\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nchmod 0755 1 -2 0700 3 4 a\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nadd ino=x a\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nadd sha256=abc a\n",
	    "msgw-journal 1\ngateway: g\nphase: staging\nadd ino=1 ino=2 a\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct journal j;

		assert_int_equal(journal_parse(&j, bad[i], strlen(bad[i])), MSGW_ECORRUPT);
		assert_non_null(strstr(err_last(), "journal"));
	}
}

/* Issue 13 case 9: paths of any length (the old parser cut them at 8191
 * bytes, and recover then said "rolled back" leaving a staged file). */
static void test_long_paths(void **state)
{
	size_t lens[] = {8191, 8192, 20000, 70000};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		struct journal a, b;
		char *path = malloc(lens[i] + 1), *text;

		memset(path, 'p', lens[i]);
		for (size_t k = 200; k < lens[i]; k += 200)
			path[k] = '/';
		path[lens[i]] = '\0';
		journal_init(&a);
		a.gateway = strdup("g");
		journal_set_phase(&a, "swapping");
		journal_add(&a, J_ADD, path);
		journal_add(&a, J_CHMOD, path);
		a.e[1].old_mode = 0755, a.e[1].mode = 0700, a.e[1].uid = 4242;
		text = journal_format(&a);
		assert_int_equal(journal_parse(&b, text, strlen(text)), 0);
		assert_int_equal(b.n, 2);
		assert_string_equal(b.e[0].path, path);
		assert_string_equal(b.e[1].path, path);
		assert_int_equal(b.e[1].uid, 4242);
		assert_int_equal(b.e[1].mode, 0700);
		journal_release(&a);
		journal_release(&b);
		free(text);
		free(path);
	}
}

static void test_save_load(void **state)
{
	char dir[] = "/tmp/test_journal.XXXXXX";
	struct journal a, b;
	struct stat st;
	char *path;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = journal_path(dir, "msgw2");
	assert_int_equal(journal_load(&b, path), MSGW_ENOTFOUND);
	fill(&a);
	assert_int_equal(journal_save(&a, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(journal_load(&b, path), 0);
	assert_int_equal(b.n, a.n);
	journal_release(&a);
	journal_release(&b);
	unlink(path);
	rmdir(dir);
	free(path);
}

static void test_entry_names(void **state)
{
	static const struct {
		const char *path;
		char type;
		const char *link;
		int ok;
	} cases[] = {
	    {"Gateway.json", 'f', NULL, 1},
	    {"a/b/c.txt", 'f', NULL, 1},
	    {"a/..b", 'f', NULL, 1},
	    {"/etc/passwd", 'f', NULL, 0},
	    {"", 'f', NULL, 0},
	    {"../x", 'f', NULL, 0},
	    {"a/../../x", 'f', NULL, 0},
	    {"a/./x", 'f', NULL, 0},
	    {"a//x", 'f', NULL, 0},
	    {"mbx-0123456789abcdef0123456789abcdef/x.msg", 'f', NULL, 0},
	    {"x/mbx-0123456789abcdef0123456789abcdef", 'd', NULL, 0},
	    {"mbx-0123456789abcdef0123456789abcdeg/x", 'f', NULL, 1},
	    {"link", 'l', "target", 1},
	    {"a/link", 'l', "../b", 1},
	    {"a/link", 'l', "../../b", 0},
	    {"link", 'l', "../b", 0},
	    {"link", 'l', "/etc", 0},
	    {"link", 'l', "", 0},
	    {"a/b/link", 'l', "../c/../../d", 1},
	    {"a/b/link", 'l', "x/../../../d", 1},
	    {"a/b/link", 'l', "x/../../../../d", 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc = plan_check_entry_name(cases[i].path, cases[i].type, cases[i].link);

		if ((rc == 0) != cases[i].ok)
			fail_msg("'%s' -> '%s': got %d (%s)", cases[i].path,
				 cases[i].link ? cases[i].link : "", rc, err_last());
		if (rc)
			assert_int_equal(rc, MSGW_EHOSTILE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),	cmocka_unit_test(test_damage),
	    cmocka_unit_test(test_long_paths),	cmocka_unit_test(test_save_load),
	    cmocka_unit_test(test_entry_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
