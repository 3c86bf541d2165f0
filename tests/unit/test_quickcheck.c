/*
 * test_quickcheck: the no-change record.  A record of a walk with old
 * enough timestamps, at a branch tip, makes the same walk at the same tip
 * "unchanged"; a rewrite that keeps size and mtime (ctime moves), a moved
 * tip, a truncated record, a changed location or a fresh file all send the
 * run to the full path.  The tip is read from a loose ref or packed-refs
 * and anything else (symbolic, malformed) is left to git.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "fsys.h"
#include "quickcheck.h"
#include "util.h"
#include "walk.h"
#include "test_util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIP1 "0123456789abcdef0123456789abcdef01234567"
#define TIP2 "89abcdef0123456789abcdef0123456789abcdef"

struct fixture {
	char dir[PATH_MAX];
	char loc[PATH_MAX + 8];	   /* dir/gw */
	char repo[PATH_MAX + 16];  /* dir/repo.git */
	char record[PATH_MAX + 8]; /* dir/rec */
	struct walk_rules rules;
};

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void put_at(const struct fixture *f, const char *rel, const char *text)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", f->loc, rel);
	put(path, text);
}

static void set_tip(const struct fixture *f, const char *tip)
{
	char path[PATH_MAX * 2], text[64];

	snprintf(path, sizeof(path), "%s/refs/heads/gw", f->repo);
	snprintf(text, sizeof(text), "%s\n", tip);
	put(path, text);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[PATH_MAX * 2];

	assert_non_null(f);
	test_mkdtemp(f->dir, "test_quickcheck");
	snprintf(f->loc, sizeof(f->loc), "%s/gw", f->dir);
	snprintf(f->repo, sizeof(f->repo), "%s/repo.git", f->dir);
	snprintf(f->record, sizeof(f->record), "%s/rec", f->dir);
	assert_int_equal(mkdir(f->loc, 0700), 0);
	snprintf(path, sizeof(path), "%s/Config", f->loc);
	assert_int_equal(mkdir(path, 0700), 0);
	put_at(f, "Config/Smtp.json", "{\"port\": 25}\n");
	put_at(f, "odd name %.txt", "x\n");
	snprintf(path, sizeof(path), "%s/current", f->loc);
	assert_int_equal(symlink("Config/Smtp.json", path), 0);
	assert_int_equal(mkdir(f->repo, 0700), 0);
	snprintf(path, sizeof(path), "%s/refs", f->repo);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/refs/heads", f->repo);
	assert_int_equal(mkdir(path, 0700), 0);
	set_tip(f, TIP1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_rmtree(f->dir);
	free(f);
	return 0;
}

/* Walk the location and record it at tip as of walk_time. */
static void record_at(const struct fixture *f, const char *tip, int64_t walk_time)
{
	struct fsys *fs = NULL;
	struct manifest m;

	assert_int_equal(fsys_open_local(&fs, f->loc), 0);
	assert_int_equal(walk_location(&m, fs, &f->rules, NULL), 0);
	quickcheck_record(f->record, f->loc, tip, &m, walk_time);
	manifest_release(&m);
	fsys_free(fs);
}

/* A walk time far enough ahead that every file counts as old. */
static int64_t later(void)
{
	return (int64_t)time(NULL) + 60;
}

static int check(const struct fixture *f, char tip[REPO_ID_LEN], const char **why)
{
	return quickcheck_unchanged(tip, why, f->record, f->repo, "gw", f->loc, &f->rules);
}

static void test_same_walk_same_tip_is_unchanged(void **state)
{
	struct fixture *f = *state;
	char tip[REPO_ID_LEN];
	const char *why = NULL;
	struct stat st;

	record_at(f, TIP1, later());
	assert_int_equal(stat(f->record, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(check(f, tip, &why), 1);
	assert_string_equal(tip, TIP1);
	assert_string_equal(why, "same tip and stat data");
}

static void test_fresh_file_leaves_no_record(void **state)
{
	struct fixture *f = *state;
	char tip[REPO_ID_LEN];
	const char *why = NULL;

	record_at(f, TIP1, later());
	/* recorded at "now": the files were written less than 2 s before */
	record_at(f, TIP1, (int64_t)time(NULL));
	assert_int_equal(access(f->record, F_OK), -1);
	assert_int_equal(check(f, tip, &why), 0);
	assert_string_equal(why, "no record of the last run");
}

static void test_same_size_same_mtime_rewrite_is_seen(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX * 2], tip[REPO_ID_LEN];
	const char *why = NULL;
	struct stat st;
	struct timespec ts[2];

	record_at(f, TIP1, later());
	snprintf(path, sizeof(path), "%s/Config/Smtp.json", f->loc);
	assert_int_equal(stat(path, &st), 0);
	usleep(20000); /* let the clock tick on for ctime */
	put(path, "{\"port\": 26}\n");
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_int_equal(check(f, tip, &why), 0);
	assert_string_equal(why, "the tip or the files differ from the record");
}

static void test_moved_tip_is_seen(void **state)
{
	struct fixture *f = *state;
	char tip[REPO_ID_LEN];
	const char *why = NULL;

	record_at(f, TIP1, later());
	set_tip(f, TIP2);
	assert_int_equal(check(f, tip, &why), 0);
	assert_string_equal(tip, TIP2);
}

static void test_truncated_record_never_matches(void **state)
{
	struct fixture *f = *state;
	char tip[REPO_ID_LEN];
	const char *why = NULL;
	struct stat st;

	record_at(f, TIP1, later());
	assert_int_equal(stat(f->record, &st), 0);
	assert_int_equal(truncate(f->record, st.st_size - 4), 0);
	assert_int_equal(check(f, tip, &why), 0);
}

static void test_other_location_never_matches(void **state)
{
	struct fixture *f = *state;
	struct fsys *fs = NULL;
	struct manifest m;
	char tip[REPO_ID_LEN];
	const char *why = NULL;

	assert_int_equal(fsys_open_local(&fs, f->loc), 0);
	assert_int_equal(walk_location(&m, fs, &f->rules, NULL), 0);
	quickcheck_record(f->record, "/somewhere/else", TIP1, &m, later());
	manifest_release(&m);
	fsys_free(fs);
	assert_int_equal(check(f, tip, &why), 0);
	assert_int_equal(
	    quickcheck_unchanged(tip, &why, f->record, f->repo, "gw", "ssh://h/x", &f->rules), 0);
	assert_string_equal(why, "the location is not local");
}

static void test_tip_from_packed_refs(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX * 2], tip[REPO_ID_LEN];

	snprintf(path, sizeof(path), "%s/refs/heads/gw", f->repo);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(quickcheck_read_tip(tip, f->repo, "gw"), MSGW_ENOTFOUND);
	snprintf(path, sizeof(path), "%s/packed-refs", f->repo);
	put(path, "# pack-refs with: peeled fully-peeled sorted \n" TIP1 " refs/heads/gwx\n" TIP2
		  " refs/heads/gw\n" TIP1 " refs/tags/gw\n");
	assert_int_equal(quickcheck_read_tip(tip, f->repo, "gw"), 0);
	assert_string_equal(tip, TIP2);
	/* a loose ref wins over the packed one, as in git */
	set_tip(f, TIP1);
	assert_int_equal(quickcheck_read_tip(tip, f->repo, "gw"), 0);
	assert_string_equal(tip, TIP1);
}

static void test_odd_refs_are_left_to_git(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX * 2], tip[REPO_ID_LEN];
	static const char *const odd[] = {"ref: refs/heads/other\n",
					  "0123456789ABCDEF0123456789abcdef01234567\n",
					  "0123456789abcdef\n", TIP1, TIP1 "\n\n"};
	size_t i;

	snprintf(path, sizeof(path), "%s/refs/heads/gw", f->repo);
	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		put(path, odd[i]);
		assert_int_equal(quickcheck_read_tip(tip, f->repo, "gw"), MSGW_ENOTFOUND);
	}
}

/* The record's exact text, against printf's, with every number at its
 * widest (a negative mtime, the largest ids, size and inode) and paths
 * that need escapes: it is written straight into its buffer, which must
 * hold it. */
static void test_record_text_at_the_edges(void **state)
{
	struct fixture *f = *state;
	struct manifest m;
	struct manifest_entry *e;
	char *got = NULL, *want, *longname;
	size_t len = 0, i;

	manifest_init(&m);
	e = manifest_add(&m, 'd', "d");
	e->mode = 0755;
	longname = xmalloc(3001);
	for (i = 0; i < 3000; i++)
		longname[i] = i % 7 ? 'x' : ' ';
	longname[3000] = '\0';
	e = manifest_add(&m, 'f', longname);
	e->mode = 07777;
	e->uid = UINT32_MAX;
	e->gid = UINT32_MAX;
	e->size = UINT64_MAX;
	e->mtime = INT64_MIN + 1;
	e->mtime_nsec = 999999999;
	e->ctime = -1;
	e->ctime_nsec = 0;
	e->ino = UINT64_MAX;
	e = manifest_add(&m, 'l', "l%nk");
	e->mode = 0777;
	e->size = 3000;
	e->link = xstrdup(longname);
	quickcheck_record(f->record, "/a b", TIP1, &m, later());
	assert_int_equal(read_whole_file(&got, &len, f->record), 0);
	{
		struct buf b;
		char *enc = manifest_encode_path(e->link);

		buf_init(&b);
		buf_addf(&b, "msgw-quickcheck 1\nlocation /a%%20b\ntip %s\nentries 3\n", TIP1);
		buf_addf(&b, "d 0755 0 0 0 d\n");
		buf_addf(&b,
			 "f 7777 4294967295 4294967295 18446744073709551615 %s "
			 "-9223372036854775807.999999999 -1.000000000 18446744073709551615\n",
			 enc);
		buf_addf(&b, "l 0777 0 0 3000 l%%25nk -> %s\nend\n", enc);
		want = buf_detach(&b, NULL);
		free(enc);
	}
	assert_string_equal(got, want);
	free(want);
	free(got);
	free(longname);
	manifest_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_same_walk_same_tip_is_unchanged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fresh_file_leaves_no_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_same_size_same_mtime_rewrite_is_seen, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_moved_tip_is_seen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_record_never_matches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_location_never_matches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tip_from_packed_refs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_refs_are_left_to_git, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_record_text_at_the_edges, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
