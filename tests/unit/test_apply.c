/*
 * test_apply: the swap and undo steps of the restore transaction
 * (apply_internal.h) over a real scratch directory reached through a
 * fake file-access table: the local backend's operations, with a hook
 * that fails or races (turns a folder into a link to a folder outside)
 * at a chosen rename.  What it proves: a folder that becomes a link is
 * never followed (the outside stays as it was, the swap stops with
 * MSGW_EHOSTILE naming it); a rename failing midway is undone completely;
 * undo run twice is harmless; undoing an "add" removes only the file this
 * restore staged.  With a batch function in the table (as SFTP has), the
 * swap goes in three waves (the folders' lstat, every move aside, every
 * move in), each one batch whose operations the fake runs in reverse
 * order (the swap must not rely on any order inside a wave); a rename
 * failing in either wave is undone completely, and a folder that is a link
 * stops the swap before any rename.  Then every chmod goes in one wave
 * (a chmod failing there is undone completely; a path that became a link
 * is not chmod'ed, as SETSTAT would follow it), and the removed folders
 * one wave per depth, deepest first, skipping those a backup keeps
 * non-empty; a folder that cannot go stays, as before.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "apply_internal.h"
#include "err.h"
#include "sha256.h"
#include "walk.h"

#include "test_util.h"

#include <string.h>
#include <unistd.h>

enum race { RACE_NONE, RACE_FAIL, RACE_LINK_PARENT };

/* The fake: the local backend with rename hooked. */
static struct {
	const struct fsys_ops *inner;
	int renames;	/* renames so far */
	int at;		/* act before this rename (1-based) */
	enum race race; /* what to do then */
	char root[PATH_MAX + 16], outside[PATH_MAX + 16];
	int chmods;	   /* chmods so far */
	int chmod_fail_at; /* fail this chmod (1-based) */
	int batches;	   /* batch calls so far */
	char waves[8][64]; /* per batch call: the kinds of its ops, in order */
	char last[8][128]; /* per batch call: its first op's path and to */
} fake;

static struct fsys_ops fake_ops;

static char op_letter(enum fsys_op_kind k)
{
	switch (k) {
	case FSYS_OP_LSTAT:
		return 'S';
	case FSYS_OP_RENAME:
		return 'R';
	case FSYS_OP_UNLINK:
		return 'U';
	case FSYS_OP_CHMOD:
		return 'C';
	case FSYS_OP_RMDIR:
		return 'D';
	case FSYS_OP_CREATE:
		return 'W';
	}
	return '?';
}

static int fake_chmod(void *ctx, const char *path, uint32_t mode)
{
	if (++fake.chmods == fake.chmod_fail_at)
		return err_set(MSGW_ERR, "cannot set mode of '%s': injected failure", path);
	return fake.inner->chmod(ctx, path, mode);
}

static int fake_rename(void *ctx, const char *from, const char *to)
{
	if (++fake.renames == fake.at) {
		if (fake.race == RACE_FAIL)
			return err_set(MSGW_ERR, "cannot rename '%s': injected failure", from);
		if (fake.race == RACE_LINK_PARENT)
			test_run("mv '%s/T' '%s/T.real' && ln -s '%s' '%s/T'", fake.root, fake.root,
				 fake.outside, fake.root);
	}
	return fake.inner->rename(ctx, from, to);
}

/* A batch: every op through the per-call functions, the last first. */
static int fake_batch(void *ctx, struct fsys_op *ops, size_t n)
{
	int w = fake.batches++;
	size_t i, k = 0;

	for (i = n; i-- > 0;) {
		struct fsys_op *op = &ops[i];

		if (op->kind == FSYS_OP_LSTAT)
			op->rc = fake.inner->stat(ctx, op->path, &op->st);
		else if (op->kind == FSYS_OP_RENAME)
			op->rc = fake_rename(ctx, op->path, op->to);
		else if (op->kind == FSYS_OP_CHMOD)
			op->rc = fake_chmod(ctx, op->path, op->mode);
		else if (op->kind == FSYS_OP_RMDIR)
			op->rc = fake.inner->rmdir(ctx, op->path);
		else
			op->rc = fake.inner->unlink(ctx, op->path);
	}
	if (w < 8) {
		for (i = 0; i < n && k < sizeof(fake.waves[w]) - 1; i++)
			fake.waves[w][k++] = op_letter(ops[i].kind);
		fake.waves[w][k] = '\0';
		snprintf(fake.last[w], sizeof(fake.last[w]), "%s>%s", n ? ops[0].path : "",
			 n && ops[0].to ? ops[0].to : "");
	}
	return 0;
}

struct fixture {
	struct fsys *fs;
	struct journal j;
};

static void put(const char *rel, const char *text)
{
	char p[PATH_MAX * 2];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", fake.root, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The content of root/rel, or "-" when missing (a static buffer). */
static const char *get(const char *base, const char *rel)
{
	static char buf[256];
	char p[PATH_MAX * 2];
	size_t n;
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", base, rel);
	f = fopen(p, "r");
	if (!f)
		return "-";
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int mode_of(const char *rel)
{
	char p[PATH_MAX * 2];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", fake.root, rel);
	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & 07777;
}

/*
 * The live tree: g.json "old", T/keep.txt, T/gone.txt "gone", C/ 0700;
 * staged: g.json.msgw-new "new", T/add.txt.msgw-new "added", N/ (new).
 * The journal: mkdir N, add T/add.txt, modify g.json, chmod C 0700->0750,
 * remove T/gone.txt; the same order apply builds.
 */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct fsys *inner = NULL;
	struct journal_entry *e;
	char tmp[PATH_MAX];

	test_mkdtemp(tmp, "test_apply");
	snprintf(fake.root, sizeof(fake.root), "%s/gw", tmp);
	snprintf(fake.outside, sizeof(fake.outside), "%s/outside", tmp);
	test_run("mkdir -p '%s/T' '%s/C' '%s' && chmod 0700 '%s/C'", fake.root, fake.root,
		 fake.outside, fake.root);
	put("g.json", "old");
	put("T/keep.txt", "keep");
	put("T/gone.txt", "gone");
	put("g.json.msgw-new", "new");
	put("T/add.txt.msgw-new", "added");
	test_run("echo outside >'%s/gone.txt' && echo outside >'%s/add.txt'", fake.outside,
		 fake.outside);
	assert_int_equal(fsys_open_local(&inner, fake.root), 0);
	fake.inner = inner->ops;
	fake_ops = *inner->ops;
	fake_ops.rename = fake_rename;
	inner->ops = &fake_ops;
	fake.renames = fake.at = 0;
	fake.chmods = fake.chmod_fail_at = 0;
	fake.race = RACE_NONE;
	fake.batches = 0;
	memset(fake.waves, 0, sizeof(fake.waves));
	f->fs = inner;
	journal_init(&f->j);
	f->j.gateway = strdup("gw");
	journal_set_phase(&f->j, "swapping");
	journal_add(&f->j, J_MKDIR, "N");
	f->j.e[0].mode = 0755;
	test_run("mkdir '%s/N'", fake.root);
	journal_add(&f->j, J_ADD, "T/add.txt");
	e = &f->j.e[1];
	e->has_sha = true;
	sha256_buf(e->sha, "added", 5);
	journal_add(&f->j, J_MODIFY, "g.json");
	journal_add(&f->j, J_CHMOD, "C");
	e = &f->j.e[3];
	e->old_mode = 0700, e->mode = 0750;
	e->old_uid = e->uid = getuid(), e->old_gid = e->gid = getgid();
	journal_add(&f->j, J_REMOVE, "T/gone.txt");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *slash;

	journal_release(&f->j);
	fake.inner = NULL;
	fake_ops.batch = NULL;
	fsys_free(f->fs);
	slash = strrchr(fake.root, '/');
	*slash = '\0';
	test_rmtree(fake.root);
	free(f);
	return 0;
}

/* The tree is exactly the old state: nothing staged, nothing backed up. */
static void assert_old(void)
{
	char p[PATH_MAX * 2];

	assert_string_equal(get(fake.root, "g.json"), "old");
	assert_string_equal(get(fake.root, "T/keep.txt"), "keep");
	assert_string_equal(get(fake.root, "T/gone.txt"), "gone");
	assert_string_equal(get(fake.root, "T/add.txt"), "-");
	assert_string_equal(get(fake.root, "g.json.msgw-old"), "-");
	assert_string_equal(get(fake.root, "g.json.msgw-new"), "-");
	assert_string_equal(get(fake.root, "T/gone.txt.msgw-old"), "-");
	assert_string_equal(get(fake.root, "T/add.txt.msgw-new"), "-");
	assert_int_equal(mode_of("C"), 0700);
	snprintf(p, sizeof(p), "%s/N", fake.root);
	assert_int_not_equal(access(p, F_OK), 0);
}

static void assert_outside_untouched(void)
{
	char p[PATH_MAX * 2];

	assert_string_equal(get(fake.outside, "gone.txt"), "outside\n");
	assert_string_equal(get(fake.outside, "add.txt"), "outside\n");
	snprintf(p, sizeof(p), "%s/gone.txt.msgw-old", fake.outside);
	assert_int_not_equal(access(p, F_OK), 0);
}

static void test_swap_then_undo_twice(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(apply_swap_all(f->fs, &f->j), 0);
	assert_string_equal(get(fake.root, "g.json"), "new");
	assert_string_equal(get(fake.root, "g.json.msgw-old"), "old");
	assert_string_equal(get(fake.root, "T/add.txt"), "added");
	assert_string_equal(get(fake.root, "T/gone.txt"), "-");
	assert_int_equal(mode_of("C"), 0750);
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
}

static void test_rename_fails_midway(void **state)
{
	struct fixture *f = *state;

	fake.at = 2; /* add.txt went in; g.json's backup rename fails */
	fake.race = RACE_FAIL;
	assert_int_equal(apply_swap_all(f->fs, &f->j), MSGW_ERR);
	assert_non_null(strstr(err_last(), "injected failure"));
	assert_string_equal(get(fake.root, "T/add.txt"), "added");
	fake.race = RACE_NONE;
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
}

static void test_parent_becomes_link_before_swap(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX * 2];

	/* the folder turns into a link before the first rename (after the
	 * re-check): every step on it is refused, nothing outside moves */
	fake.at = 1;
	fake.race = RACE_LINK_PARENT;
	assert_int_equal(apply_swap_all(f->fs, &f->j), MSGW_EHOSTILE);
	assert_non_null(strstr(err_last(), "'T'"));
	assert_outside_untouched();
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_outside_untouched();
	/* the real folder, moved aside, kept its files */
	snprintf(p, sizeof(p), "%s/T.real", fake.root);
	assert_string_equal(get(p, "gone.txt"), "gone");
	assert_string_equal(get(fake.root, "g.json"), "old");
	assert_int_equal(mode_of("C"), 0700);
}

static void test_parent_is_link_at_recheck(void **state)
{
	struct fixture *f = *state;

	test_run("mv '%s/T' '%s/T.real' && ln -s '%s' '%s/T'", fake.root, fake.root, fake.outside,
		 fake.root);
	assert_int_equal(apply_swap_all(f->fs, &f->j), MSGW_EHOSTILE);
	assert_non_null(strstr(err_last(), "folder 'T' turned into a symbolic link"));
	assert_int_equal(fake.renames, 0); /* refused before any swap */
	assert_outside_untouched();
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_outside_untouched();
}

static void test_undo_add_keeps_foreign_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(apply_swap_all(f->fs, &f->j), 0);
	/* the service replaced the added file with its own */
	test_run("rm '%s/T/add.txt' && printf mine >'%s/T/add.txt'", fake.root, fake.root);
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_string_equal(get(fake.root, "T/add.txt"), "mine");
	assert_string_equal(get(fake.root, "g.json"), "old");
	assert_string_equal(get(fake.root, "T/gone.txt"), "gone");
}

static void test_batched_waves(void **state)
{
	struct fixture *f = *state;

	fake_ops.batch = fake_batch;
	assert_int_equal(apply_swap_all(f->fs, &f->j), 0);
	assert_int_equal(fake.batches, 4);
	assert_string_equal(fake.waves[0], "SS"); /* the folder T, the chmod's C */
	assert_string_equal(fake.waves[1], "RR"); /* g.json, T/gone.txt aside */
	assert_string_equal(fake.waves[2], "RR"); /* T/add.txt, g.json in */
	assert_string_equal(fake.waves[3], "C");  /* C 0750 */
	assert_string_equal(fake.last[0], "T>");
	assert_string_equal(fake.last[1], "g.json>g.json.msgw-old");
	assert_string_equal(fake.last[2], "T/add.txt.msgw-new>T/add.txt");
	assert_string_equal(get(fake.root, "g.json"), "new");
	assert_string_equal(get(fake.root, "g.json.msgw-old"), "old");
	assert_string_equal(get(fake.root, "T/add.txt"), "added");
	assert_string_equal(get(fake.root, "T/gone.txt"), "-");
	assert_int_equal(mode_of("C"), 0750);
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
}

/* The nth rename of the waves (run last first) fails: undone exactly. */
static void batched_fail_at(void **state, int at, int batches)
{
	struct fixture *f = *state;

	fake_ops.batch = fake_batch;
	fake.at = at;
	fake.race = RACE_FAIL;
	assert_int_equal(apply_swap_all(f->fs, &f->j), MSGW_ERR);
	assert_non_null(strstr(err_last(), "injected failure"));
	assert_int_equal(fake.batches, batches); /* no wave after a failure */
	fake.race = RACE_NONE;
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
}

static void test_batched_fail_aside(void **state)
{
	batched_fail_at(state, 2, 2); /* g.json aside fails, T/gone.txt went */
}

static void test_batched_fail_in(void **state)
{
	batched_fail_at(state, 3, 3); /* g.json in fails, T/add.txt then goes in */
}

static void test_batched_parent_link(void **state)
{
	struct fixture *f = *state;

	fake_ops.batch = fake_batch;
	test_run("mv '%s/T' '%s/T.real' && ln -s '%s' '%s/T'", fake.root, fake.root, fake.outside,
		 fake.root);
	assert_int_equal(apply_swap_all(f->fs, &f->j), MSGW_EHOSTILE);
	assert_non_null(strstr(err_last(), "folder 'T' turned into a symbolic link"));
	assert_int_equal(fake.renames, 0);
	assert_int_equal(fake.batches, 1);
	assert_outside_untouched();
}

/* Folders the snapshot lacks: R/a/b and R/a (empty), Q (its file
 * Q/x.txt removed too); the journal's order: deepest first. */
static void add_removed_folders(struct journal *j)
{
	test_run("mkdir -p '%s/R/a/b' '%s/Q' && echo x >'%s/Q/x.txt'", fake.root, fake.root,
		 fake.root);
	journal_add(j, J_REMOVE, "Q/x.txt");
	journal_add(j, J_RMDIR, "R/a/b");
	j->e[j->n - 1].old_mode = 0755;
	journal_add(j, J_RMDIR, "R/a");
	j->e[j->n - 1].old_mode = 0755;
	journal_add(j, J_RMDIR, "Q");
	j->e[j->n - 1].old_mode = 0755;
}

static bool is_there(const char *rel)
{
	char p[PATH_MAX * 2];

	snprintf(p, sizeof(p), "%s/%s", fake.root, rel);
	return access(p, F_OK) == 0;
}

static void test_batched_chmod_fails(void **state)
{
	struct fixture *f = *state;

	fake_ops.batch = fake_batch;
	fake.chmod_fail_at = 1;
	assert_int_equal(apply_swap_all(f->fs, &f->j), MSGW_ERR);
	assert_non_null(strstr(err_last(), "cannot set mode of 'C': injected failure"));
	assert_int_equal(fake.batches, 4);		      /* no wave after it */
	assert_string_equal(get(fake.root, "g.json"), "new"); /* the renames went */
	fake.chmod_fail_at = 0;
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
}

static void test_batched_chmod_link_left(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX * 2];
	struct stat st;

	fake_ops.batch = fake_batch;
	test_run("chmod 0700 '%s' && rmdir '%s/C' && ln -s '%s' '%s/C'", fake.outside, fake.root,
		 fake.outside, fake.root);
	assert_int_equal(apply_swap_all(f->fs, &f->j), 0);
	assert_int_equal(fake.batches, 3); /* no chmod wave: its only path is a link */
	assert_int_equal(fake.chmods, 0);
	snprintf(p, sizeof(p), "%s", fake.outside);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_outside_untouched();
}

static void test_batched_rmdir_waves(void **state)
{
	struct fixture *f = *state;

	add_removed_folders(&f->j);
	fake_ops.batch = fake_batch;
	assert_int_equal(apply_swap_all(f->fs, &f->j), 0);
	/* Q holds Q/x.txt's backup until the commit: not tried */
	assert_int_equal(fake.batches, 6);
	assert_string_equal(fake.waves[1], "RRR"); /* g.json, T/gone.txt, Q/x.txt aside */
	assert_string_equal(fake.waves[4], "D");
	assert_string_equal(fake.last[4], "R/a/b>");
	assert_string_equal(fake.waves[5], "D");
	assert_string_equal(fake.last[5], "R/a>");
	assert_false(is_there("R/a"));
	assert_true(is_there("R"));
	assert_true(is_there("Q/x.txt.msgw-old"));
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
	assert_true(is_there("R/a/b"));
	assert_string_equal(get(fake.root, "Q/x.txt"), "x\n");
}

static void test_batched_rmdir_not_empty(void **state)
{
	struct fixture *f = *state;

	add_removed_folders(&f->j);
	test_run("echo service >'%s/R/a/b/new.txt'", fake.root); /* written since the plan */
	fake_ops.batch = fake_batch;
	assert_int_equal(apply_swap_all(f->fs, &f->j), 0); /* as before: the folder stays */
	assert_int_equal(fake.batches, 6);
	assert_string_equal(get(fake.root, "R/a/b/new.txt"), "service\n");
	assert_string_equal(get(fake.root, "g.json"), "new");
	assert_int_equal(apply_undo_all(f->fs, &f->j), 0);
	assert_old();
	assert_string_equal(get(fake.root, "R/a/b/new.txt"), "service\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_swap_then_undo_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_fails_midway, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parent_becomes_link_before_swap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parent_is_link_at_recheck, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_undo_add_keeps_foreign_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_waves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_fail_aside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_fail_in, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_parent_link, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_chmod_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_chmod_link_left, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_rmdir_waves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_rmdir_not_empty, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
