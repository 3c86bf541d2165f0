/*
 * test_prune: the retention policy, table-driven over synthetic dates
 * (keep-last, hourly, daily, ISO weekly, monthly buckets; gaps; ties and
 * clock skew; weeks and months across year ends; tags; pre-restore age;
 * the tip; the refusal when no rule is set), the bucket functions checked
 * against the C library's calendar, and on real temporary repositories:
 * prune_plan_branch reading meta, repo_rewrite_branch (same trees, dates,
 * messages; tags moved, annotated ones too; refusals) and repo_repack
 * (dropped objects gone, one pack left, reflogs cleaned).
 *
 * libgit2 is used directly only to build fixtures and inspect the result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "prune.h"
#include "util.h"
#include "test_util.h"

#include <dirent.h>
#include <ftw.h>
#include <git2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAXSNAP	      12

static int64_t T(const char *s)
{
	int64_t t;

	if (time_parse_rfc3339(&t, s) < 0)
		fail_msg("bad time in test table: '%s'", s);
	return t;
}

/* ---- the policy, table-driven ------------------------------------------- */

/* Retention: keep-last, -hourly, -daily, -weekly, -monthly, pre-restore days. */
#define R(l, h, d, w, m, p)                                                                        \
	{                                                                                          \
		l, h, d, w, m, p                                                                   \
	}

struct snap {
	const char *created;
	const char *kind;
	bool tagged;
	const char *expect; /* prune_reasons_format of the reasons; "" = dropped */
};

struct pcase {
	const char *name;
	struct config_retention ret;
	const char *now;
	struct snap s[MAXSNAP]; /* branch order, tip first; ends at created == NULL */
};

static const struct pcase cases[] = {
    {"keep-last 3",
     R(3, -1, -1, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T10:00:00Z", "scheduled", false, "tip, last"},
      {"2024-03-05T09:00:00Z", "scheduled", false, "last"},
      {"2024-03-04T10:00:00Z", "manual", false, "last"},
      {"2024-03-03T10:00:00Z", "scheduled", false, ""},
      {"2024-03-01T10:00:00Z", "scheduled", false, ""}}},
    {"keep-last 0 keeps only the tip",
     R(0, -1, -1, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T10:00:00Z", "scheduled", false, "tip"},
      {"2024-03-05T09:00:00Z", "scheduled", false, ""},
      {"2024-03-04T10:00:00Z", "scheduled", false, ""}}},
    {"keep-last larger than the history keeps all",
     R(10, -1, -1, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T10:00:00Z", "scheduled", false, "tip, last"},
      {"2024-03-04T10:00:00Z", "scheduled", false, "last"}}},
    {"hourly: the newest of each hour that has snapshots",
     R(-1, 3, -1, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T10:50:00Z", "scheduled", false, "tip, hourly"},
      {"2024-03-05T10:10:00Z", "scheduled", false, ""},
      {"2024-03-05T09:30:00Z", "scheduled", false, "hourly"},
      {"2024-03-05T09:05:00Z", "scheduled", false, ""},
      {"2024-03-05T06:59:59Z", "scheduled", false, "hourly"}, /* hours 7, 8 empty */
      {"2024-03-05T06:00:00Z", "scheduled", false, ""},
      {"2024-03-05T05:00:00Z", "scheduled", false, ""}}},
    {"daily: gaps skipped, midnight UTC is the boundary",
     R(-1, -1, 3, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T00:00:00Z", "scheduled", false, "tip, daily"},
      {"2024-03-04T23:59:59Z", "scheduled", false, "daily"},
      {"2024-03-04T00:00:00Z", "scheduled", false, ""},
      {"2024-03-01T12:00:00Z", "scheduled", false, "daily"}, /* 2 and 3 empty */
      {"2024-02-29T23:00:00Z", "scheduled", false, ""}}},
    {"ties: equal times keep branch order",
     R(-1, -1, 2, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-03T08:00:00Z", "scheduled", false, "tip, daily"},
      {"2024-03-02T12:00:00Z", "scheduled", false, "daily"},
      {"2024-03-02T12:00:00Z", "scheduled", false, ""},
      {"2024-03-01T12:00:00Z", "scheduled", false, ""}}},
    {"ties with the tip",
     R(1, -1, -1, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-03T08:00:00Z", "scheduled", false, "tip, last"},
      {"2024-03-03T08:00:00Z", "scheduled", false, ""}}},
    {"clock skew: buckets follow the created times, the tip stays",
     R(-1, -1, 2, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-01T10:00:00Z", "scheduled", false, "tip"},
      {"2024-03-02T10:00:00Z", "scheduled", false, "daily"},
      {"2024-03-03T10:00:00Z", "scheduled", false, "daily"},
      {"2024-02-28T10:00:00Z", "scheduled", false, ""}}},
    {"ISO weeks across a year end: 2020-W53 runs into January",
     R(-1, -1, -1, 3, -1, 30),
     "2021-02-01T00:00:00Z",
     {{"2021-01-04T00:00:00Z", "scheduled", false, "tip, weekly"}, /* Mon, 2021-W01 */
      {"2021-01-03T23:59:59Z", "scheduled", false, "weekly"},	   /* Sun, 2020-W53 */
      {"2021-01-01T12:00:00Z", "scheduled", false, ""},
      {"2020-12-28T00:00:00Z", "scheduled", false, ""},	      /* Mon, 2020-W53 */
      {"2020-12-27T23:00:00Z", "scheduled", false, "weekly"}, /* Sun, 2020-W52 */
      {"2020-12-20T10:00:00Z", "scheduled", false, ""}}},
    {"ISO weeks across a year end: 2025-W01 starts in December",
     R(-1, -1, -1, 2, -1, 30),
     "2025-02-01T00:00:00Z",
     {{"2025-01-05T23:00:00Z", "scheduled", false, "tip, weekly"}, /* Sun, 2025-W01 */
      {"2024-12-31T10:00:00Z", "scheduled", false, ""},
      {"2024-12-30T00:00:00Z", "scheduled", false, ""},	      /* Mon, 2025-W01 */
      {"2024-12-29T23:59:59Z", "scheduled", false, "weekly"}, /* Sun, 2024-W52 */
      {"2024-12-23T00:00:00Z", "scheduled", false, ""}}},
    {"months across a year end",
     R(-1, -1, -1, -1, 3, 30),
     "2024-03-01T00:00:00Z",
     {{"2024-02-01T00:00:00Z", "scheduled", false, "tip, monthly"},
      {"2024-01-31T23:59:59Z", "scheduled", false, "monthly"},
      {"2024-01-01T00:00:00Z", "scheduled", false, ""},
      {"2023-12-31T23:59:59Z", "scheduled", false, "monthly"},
      {"2023-12-01T00:00:00Z", "scheduled", false, ""},
      {"2023-11-30T00:00:00Z", "scheduled", false, ""}}},
    {"tagged snapshots are always kept",
     R(1, -1, -1, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T10:00:00Z", "scheduled", false, "tip, last"},
      {"2024-03-04T10:00:00Z", "scheduled", false, ""},
      {"2020-01-04T10:00:00Z", "manual", true, "tagged"},
      {"2020-01-03T10:00:00Z", "scheduled", false, ""}}},
    {"a tagged tip has both reasons",
     R(0, -1, -1, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T10:00:00Z", "scheduled", true, "tip, tagged"},
      {"2024-03-04T10:00:00Z", "scheduled", false, ""}}},
    {"pre-restore snapshots are kept keep-pre-restore-days",
     R(1, -1, -1, -1, -1, 30),
     "2024-03-31T00:00:00Z",
     {{"2024-03-30T00:00:00Z", "scheduled", false, "tip, last"},
      {"2024-03-02T00:00:00Z", "pre-restore", false, "pre-restore"}, /* 29 days */
      {"2024-03-01T00:00:00Z", "pre-restore", false, "pre-restore"}, /* 30 days */
      {"2024-02-29T23:59:59Z", "pre-restore", false, ""},	     /* 30 days and a second */
      {"2024-03-20T00:00:00Z", "restored", false, ""},
      {"2024-03-10T00:00:00Z", "manual", false, ""}}},
    {"keep-pre-restore-days 0 protects nothing",
     R(1, -1, -1, -1, -1, 0),
     "2024-03-31T00:00:00Z",
     {{"2024-03-30T00:00:00Z", "scheduled", false, "tip, last"},
      {"2024-03-29T00:00:00Z", "pre-restore", false, ""}}},
    {"a pre-restore snapshot from the future (clock skew) is kept",
     R(1, -1, -1, -1, -1, 30),
     "2024-03-31T00:00:00Z",
     {{"2024-03-30T00:00:00Z", "scheduled", false, "tip"},
      {"2024-04-02T00:00:00Z", "pre-restore", false, "last, pre-restore"}}},
    {"rules combine: a snapshot survives when any keeps it",
     R(2, -1, 3, 2, 2, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-09T18:00:00Z", "scheduled", false, "tip, last, daily, weekly, monthly"},
      {"2024-03-09T06:00:00Z", "scheduled", false, "last"},
      {"2024-03-08T12:00:00Z", "scheduled", false, "daily"},
      {"2024-03-06T12:00:00Z", "scheduled", false, "daily"},
      {"2024-03-05T12:00:00Z", "scheduled", false, ""},
      {"2024-03-03T12:00:00Z", "scheduled", false, "weekly"}, /* Sun: week before */
      {"2024-02-28T12:00:00Z", "scheduled", false, "monthly"},
      {"2024-02-01T12:00:00Z", "scheduled", false, ""},
      {"2024-01-15T12:00:00Z", "scheduled", false, ""}}},
    {"hourly and daily together",
     R(-1, 2, 2, -1, -1, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T10:30:00Z", "scheduled", false, "tip, hourly, daily"},
      {"2024-03-05T09:30:00Z", "scheduled", false, "hourly"},
      {"2024-03-05T08:30:00Z", "scheduled", false, ""},
      {"2024-03-04T23:30:00Z", "scheduled", false, "daily"},
      {"2024-03-03T23:30:00Z", "scheduled", false, ""}}},
    {"one snapshot: the tip",
     R(0, 0, 0, 0, 0, 30),
     "2024-03-10T00:00:00Z",
     {{"2024-03-05T10:30:00Z", "scheduled", false, "tip"}}},
};

static void test_policy_table(void **state)
{
	size_t c, i, n;

	(void)state;
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		const struct pcase *pc = &cases[c];
		struct prune_item items[MAXSNAP];
		char got[128];

		memset(items, 0, sizeof(items));
		for (n = 0; n < MAXSNAP && pc->s[n].created; n++) {
			snprintf(items[n].id, sizeof(items[n].id), "%040zx", n);
			items[n].time = T(pc->s[n].created);
			snprintf(items[n].kind, sizeof(items[n].kind), "%s", pc->s[n].kind);
			items[n].tagged = pc->s[n].tagged;
		}
		if (prune_decide(items, n, &pc->ret, T(pc->now)) != 0)
			fail_msg("%s: prune_decide failed: %s", pc->name, err_last());
		for (i = 0; i < n; i++) {
			prune_reasons_format(got, sizeof(got), items[i].reasons);
			if (strcmp(got, pc->s[i].expect) != 0 ||
			    items[i].keep != (pc->s[i].expect[0] != '\0'))
				fail_msg("%s: snapshot %zu (%s): got '%s' (keep %d), want '%s'",
					 pc->name, i, pc->s[i].created, got, items[i].keep,
					 pc->s[i].expect);
		}
	}
}

static void test_policy_unset_refuses(void **state)
{
	struct config_retention none = R(-1, -1, -1, -1, -1, 30);
	struct prune_item items[3];
	size_t i;

	(void)state;
	memset(items, 0, sizeof(items));
	for (i = 0; i < 3; i++) {
		items[i].time = 1700000000 - (int64_t)i * 86400 * 400;
		snprintf(items[i].kind, sizeof(items[i].kind), "scheduled");
	}
	assert_false(prune_policy_set(&none));
	assert_int_equal(prune_decide(items, 3, &none, 1700000000), MSGW_ECONFIG);
	assert_non_null(strstr(err_last(), "refusing to prune"));
	for (i = 0; i < 3; i++)
		assert_true(items[i].keep);

	/* keep-pre-restore-days alone is not a rule */
	none.keep_pre_restore_days = 5;
	assert_false(prune_policy_set(&none));
	none.keep_monthly = 0;
	assert_true(prune_policy_set(&none));
}

static void test_policy_empty(void **state)
{
	struct config_retention ret = R(3, -1, -1, -1, -1, 30);

	(void)state;
	assert_int_equal(prune_decide(NULL, 0, &ret, 0), 0);
}

/* ---- bucket functions ----------------------------------------------------- */

static void test_buckets_before_epoch(void **state)
{
	(void)state;
	assert_int_equal(prune_hour(-1), -1);
	assert_int_equal(prune_hour(0), 0);
	assert_int_equal(prune_day(-1), -1);
	assert_int_equal(prune_day(86399), 0);
	assert_int_equal(prune_day(86400), 1);
	assert_int_equal(prune_week(T("1970-01-05T00:00:00Z")), 0); /* the first Monday */
	assert_int_equal(prune_week(T("1970-01-04T23:59:59Z")), -1);
	assert_int_equal(prune_week(T("1969-12-29T00:00:00Z")), -1);
	assert_int_equal(prune_week(T("1969-12-28T23:59:59Z")), -2);
	assert_int_equal(prune_month(0), 1970 * 12);
	assert_int_equal(prune_month(-1), 1969 * 12 + 11);
	assert_int_equal(prune_month(T("2000-02-29T12:00:00Z")), 2000 * 12 + 1);
	assert_int_equal(prune_month(T("2100-03-01T00:00:00Z")), 2100 * 12 + 2);
}

/* Every day from 1990 to 2040: two days share a week exactly when their
 * ISO week (strftime %G-%V) is the same, and a month when gmtime says so. */
static void test_buckets_match_calendar(void **state)
{
	int64_t t = T("1990-01-01T12:00:00Z"), end = T("2040-12-31T12:00:00Z");
	char a[16], b[16];

	(void)state;
	for (; t < end; t += 86400) {
		time_t t1 = (time_t)t, t2 = (time_t)(t + 86400);
		struct tm m1, m2;

		gmtime_r(&t1, &m1);
		gmtime_r(&t2, &m2);
		strftime(a, sizeof(a), "%G-%V", &m1);
		strftime(b, sizeof(b), "%G-%V", &m2);
		if ((strcmp(a, b) == 0) != (prune_week(t) == prune_week(t + 86400)))
			fail_msg("week of %s and the next day: iso %s / %s, buckets %lld / %lld", a,
				 a, b, (long long)prune_week(t), (long long)prune_week(t + 86400));
		assert_int_equal(prune_month(t), (int64_t)(m1.tm_year + 1900) * 12 + m1.tm_mon);
		assert_int_equal(prune_day(t + 86400) - prune_day(t), 1);
		(void)m2;
	}
}

static void test_reasons_format(void **state)
{
	char buf[128], tiny[8];

	(void)state;
	prune_reasons_format(buf, sizeof(buf), 0);
	assert_string_equal(buf, "");
	prune_reasons_format(buf, sizeof(buf), 0xff);
	assert_string_equal(buf, "tip, tagged, last, hourly, daily, weekly, monthly, pre-restore");
	prune_reasons_format(tiny, sizeof(tiny), 0xff); /* truncated, terminated */
	assert_true(strlen(tiny) < sizeof(tiny));
	assert_string_equal(prune_reason_name(PRUNE_PRE_RESTORE), "pre-restore");
	assert_string_equal(prune_reason_name(1u << 20), "?");
}

/* ---- real repositories ----------------------------------------------------- */

#define NCOMMITS 6

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16];
	struct repo *r;
	char ids[NCOMMITS][REPO_ID_LEN]; /* msgw1, oldest first */
	char other[REPO_ID_LEN];	 /* msgw2's only commit */
	int64_t base;
};

static int commit_snap(char out[REPO_ID_LEN], struct repo *r, const char *branch, int i,
		       const char *kind, int64_t created, int64_t when)
{
	char archive[64], meta[256], manifest[64], msg[96], stamp[32];
	struct repo_file files[3];

	time_rfc3339(stamp, sizeof(stamp), created);
	snprintf(archive, sizeof(archive), "archive %s %d", branch, i);
	snprintf(meta, sizeof(meta), "format: 1\ngateway: %s\ncreated: %s\nkind: %s\n", branch,
		 stamp, kind);
	snprintf(manifest, sizeof(manifest), "msgw-manifest 1\n# %s %d\n", branch, i);
	snprintf(msg, sizeof(msg), "%s: snapshot %d\n\nbody of %d\n", branch, i, i);
	files[0] = REPO_FILE("config.tar.zst", archive, strlen(archive));
	files[1] = REPO_FILE("manifest", manifest, strlen(manifest));
	files[2] = REPO_FILE("meta", meta, strlen(meta));
	return repo_commit(out, r, branch, files, 3, msg, when);
}

/* msgw1: six snapshots a day apart, created times in meta one hour before
 * the commit times; the third is a pre-restore one.  msgw2: one.  Reflogs
 * on (as stock git would leave them with core.logAllRefUpdates). */
static int setup_repo(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX], cfgpath[PATH_MAX + 32];
	FILE *cf;
	int i;

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_prune.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, f->dir));
	snprintf(f->path, sizeof(f->path), "%s/repo.git", f->dir);
	assert_int_equal(repo_init(f->path, NULL), 0);
	snprintf(cfgpath, sizeof(cfgpath), "%s/config", f->path);
	cf = fopen(cfgpath, "a");
	assert_non_null(cf);
	fputs("[core]\n\tlogAllRefUpdates = true\n", cf);
	fclose(cf);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	f->base = T("2024-03-01T12:00:00Z");
	for (i = 0; i < NCOMMITS; i++) {
		int64_t created = f->base + i * 86400;

		assert_int_equal(commit_snap(f->ids[i], f->r, "msgw1", i,
					     i == 2 ? "pre-restore" : "scheduled", created,
					     created + 3600),
				 0);
	}
	assert_int_equal(commit_snap(f->other, f->r, "msgw2", 0, "manual", f->base, f->base), 0);
	*state = f;
	return 0;
}

static int teardown_repo(void **state)
{
	struct fixture *f = *state;

	repo_free(f->r);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static void test_plan_branch(void **state)
{
	struct fixture *f = *state;
	struct config_retention ret = R(2, -1, -1, -1, -1, 30);
	struct prune_branch b;
	int64_t now = f->base + 10 * 86400;
	size_t i;

	assert_int_equal(repo_tag(f->r, "keep-me", f->ids[1]), 0);
	assert_int_equal(prune_plan_branch(&b, f->r, "msgw1", &ret, now), 0);
	assert_string_equal(b.name, "msgw1");
	assert_string_equal(b.tip, f->ids[NCOMMITS - 1]);
	assert_int_equal(b.n, NCOMMITS);
	for (i = 0; i < NCOMMITS; i++) {
		const struct prune_item *it = &b.items[i];

		assert_string_equal(it->id, f->ids[NCOMMITS - 1 - i]);
		/* meta's created time, not the commit's */
		assert_int_equal(it->time, f->base + (int64_t)(NCOMMITS - 1 - i) * 86400);
	}
	assert_string_equal(b.items[3].kind, "pre-restore");
	assert_int_equal(b.items[0].reasons, PRUNE_TIP | PRUNE_LAST);
	assert_int_equal(b.items[1].reasons, PRUNE_LAST);
	assert_int_equal(b.items[2].reasons, 0);
	assert_int_equal(b.items[3].reasons, PRUNE_PRE_RESTORE); /* 8 days old */
	assert_int_equal(b.items[4].reasons, PRUNE_TAGGED);
	assert_int_equal(b.items[5].reasons, 0);
	assert_int_equal(b.kept, 4);
	assert_int_equal(b.dropped, 2);
	prune_branch_release(&b);

	assert_int_equal(prune_plan_branch(&b, f->r, "nosuch", &ret, now), MSGW_ENOTFOUND);
	prune_branch_release(&b);
}

static char *read_file_text(struct repo *r, const char *id, const char *name)
{
	char *text = NULL;
	size_t len;

	assert_int_equal(repo_read(&text, &len, r, id, name), 0);
	return text;
}

static int count_files(const char *dir, const char *suffix, bool loose)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (loose && l == 2 && de->d_name[0] != '.' && strcmp(de->d_name, "..") != 0) {
			char sub[PATH_MAX + 64];
			DIR *s;
			struct dirent *se;

			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			s = opendir(sub);
			while (s && (se = readdir(s)))
				n += se->d_name[0] != '.';
			if (s)
				closedir(s);
		} else if (!loose && l > strlen(suffix) &&
			   strcmp(de->d_name + l - strlen(suffix), suffix) == 0) {
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Whether the reflog of name names only objects that exist. */
static void assert_reflog_clean(const char *path, const char *name)
{
	git_repository *g = NULL;
	git_reflog *log = NULL;
	git_odb *odb = NULL;
	size_t i;

	assert_int_equal(git_repository_open_bare(&g, path), 0);
	assert_int_equal(git_repository_odb(&odb, g), 0);
	assert_int_equal(git_reflog_read(&log, g, name), 0);
	for (i = 0; i < git_reflog_entrycount(log); i++) {
		const git_reflog_entry *e = git_reflog_entry_byindex(log, i);
		const git_oid *o = git_reflog_entry_id_old(e), *n = git_reflog_entry_id_new(e);

		assert_true(git_oid_is_zero(o) || git_odb_exists(odb, o));
		assert_true(git_oid_is_zero(n) || git_odb_exists(odb, n));
	}
	git_reflog_free(log);
	git_odb_free(odb);
	git_repository_free(g);
}

/* An annotated tag (stock git's "git tag -a") at id. */
static void make_annotated_tag(const char *path, const char *name, const char *id)
{
	git_repository *g = NULL;
	git_object *target = NULL;
	git_signature *sig = NULL;
	git_oid oid, tag;

	assert_int_equal(git_repository_open_bare(&g, path), 0);
	assert_int_equal(git_oid_fromstr(&oid, id), 0);
	assert_int_equal(git_object_lookup(&target, g, &oid, GIT_OBJECT_COMMIT), 0);
	assert_int_equal(git_signature_new(&sig, "Admin", "admin@example.test", 1700000000, 60), 0);
	assert_int_equal(git_tag_create(&tag, g, name, target, sig, "before the upgrade\n", 0), 0);
	git_signature_free(sig);
	git_object_free(target);
	git_repository_free(g);
}

static void annotated_tag_facts(const char *path, const char *name, char peeled[REPO_ID_LEN],
				char **message)
{
	git_repository *g = NULL;
	git_reference *ref = NULL;
	git_object *obj = NULL;
	git_tag *tag = NULL;
	char *refname = xasprintf("refs/tags/%s", name);

	assert_int_equal(git_repository_open_bare(&g, path), 0);
	assert_int_equal(git_reference_lookup(&ref, g, refname), 0);
	assert_int_equal(git_tag_lookup(&tag, g, git_reference_target(ref)), 0);
	assert_int_equal(git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT), 0);
	git_oid_tostr(peeled, REPO_ID_LEN, git_object_id(obj));
	*message = xstrdup(git_tag_message(tag));
	assert_string_equal(git_tag_tagger(tag)->name, "Admin");
	assert_int_equal(git_tag_tagger(tag)->when.offset, 60);
	git_tag_free(tag);
	git_object_free(obj);
	git_reference_free(ref);
	git_repository_free(g);
	free(refname);
}

static const char *mapped(const struct repo_rewrite_result *res, const char *old_id)
{
	size_t i;

	for (i = 0; i < res->nrewritten; i++)
		if (strcmp(res->old_ids[i], old_id) == 0)
			return res->new_ids[i];
	return old_id;
}

static void test_rewrite_and_repack(void **state)
{
	struct fixture *f = *state;
	struct repo_rewrite_result res;
	struct repo_repack_result rr;
	char *drop[2] = {f->ids[1], f->ids[3]}, **log = NULL, peeled[REPO_ID_LEN], *msg = NULL;
	char objdir[PATH_MAX + 32], packdir[PATH_MAX + 32], id[REPO_ID_LEN];
	const int kept[] = {5, 4, 2, 0}; /* msgw1's kept snapshots, newest first */
	size_t n = 0, i;
	struct repo *r2 = NULL;

	assert_int_equal(repo_tag(f->r, "light", f->ids[4]), 0);
	assert_int_equal(repo_tag(f->r, "untouched", f->ids[0]), 0);
	make_annotated_tag(f->path, "heavy", f->ids[2]);

	assert_int_equal(repo_rewrite_branch(&res, f->r, "msgw1", drop, 2), 0);
	assert_string_equal(res.old_tip, f->ids[5]);
	assert_string_not_equal(res.new_tip, f->ids[5]);
	assert_int_equal(res.ndropped, 2);
	assert_int_equal(res.nrewritten, 3); /* 2, 4 and 5; 0 precedes every drop */
	assert_int_equal(res.ntags_moved, 2);

	/* the branch: kept snapshots in order, same trees, times, messages */
	assert_int_equal(repo_log(&log, &n, f->r, "msgw1", 0), 0);
	assert_int_equal(n, 4);
	assert_string_equal(log[0], res.new_tip);
	for (i = 0; i < n; i++) {
		struct repo_commit_info old_ci, new_ci;
		char *a, *b;

		assert_string_equal(log[i], mapped(&res, f->ids[kept[i]]));
		assert_int_equal(repo_commit_info(&old_ci, f->r, f->ids[kept[i]]), 0);
		assert_int_equal(repo_commit_info(&new_ci, f->r, log[i]), 0);
		assert_int_equal(new_ci.time, old_ci.time);
		assert_string_equal(new_ci.summary, old_ci.summary);
		if (i + 1 < n)
			assert_string_equal(new_ci.parent, log[i + 1]);
		a = read_file_text(f->r, f->ids[kept[i]], "config.tar.zst");
		b = read_file_text(f->r, log[i], "config.tar.zst");
		assert_string_equal(a, b);
		free(a);
		free(b);
		repo_commit_info_release(&old_ci);
		repo_commit_info_release(&new_ci);
	}
	assert_string_equal(log[3], f->ids[0]);
	repo_names_free(log, n);

	/* tags followed their snapshots */
	assert_int_equal(repo_resolve(id, f->r, "light"), 0);
	assert_string_equal(id, mapped(&res, f->ids[4]));
	assert_int_equal(repo_resolve(id, f->r, "untouched"), 0);
	assert_string_equal(id, f->ids[0]);
	annotated_tag_facts(f->path, "heavy", peeled, &msg);
	assert_string_equal(peeled, mapped(&res, f->ids[2]));
	assert_string_equal(msg, "before the upgrade\n");
	free(msg);

	/* repack: the dropped archives are gone, the rest is one pack */
	assert_int_equal(repo_repack(&rr, f->r, (int64_t)time(NULL) + 2), 0);
	assert_true(rr.objects > 0);
	assert_true(rr.loose_removed > 0);
	assert_true(rr.reflog_dropped > 0);
	snprintf(objdir, sizeof(objdir), "%s/objects", f->path);
	snprintf(packdir, sizeof(packdir), "%s/objects/pack", f->path);
	assert_int_equal(count_files(objdir, NULL, true), 0);
	assert_int_equal(count_files(packdir, ".pack", false), 1);
	assert_int_equal(count_files(packdir, ".idx", false), 1);
	assert_reflog_clean(f->path, "refs/heads/msgw1");
	assert_reflog_clean(f->path, "refs/tags/light");

	assert_int_equal(repo_open(&r2, f->path), 0);
	for (i = 0; i < 2; i++) {
		char *text = NULL;
		size_t len;

		assert_int_not_equal(repo_read(&text, &len, r2, drop[i], "config.tar.zst"), 0);
		assert_null(text);
	}
	for (i = 0; i < 4; i++) {
		char *t = read_file_text(r2, mapped(&res, f->ids[kept[i]]), "meta");

		free(t);
	}
	free(read_file_text(r2, f->other, "config.tar.zst")); /* msgw2 untouched */

	/* repacking again keeps everything and changes nothing visible */
	assert_int_equal(repo_repack(&rr, r2, (int64_t)time(NULL) + 2), 0);
	assert_int_equal(count_files(packdir, ".pack", false), 1);
	assert_int_equal(rr.loose_removed, 0);
	free(read_file_text(r2, res.new_tip, "config.tar.zst"));
	repo_free(r2);
	repo_rewrite_result_release(&res);
}

static void test_rewrite_refusals(void **state)
{
	struct fixture *f = *state;
	struct repo_rewrite_result res;
	char *tip[1] = {f->ids[NCOMMITS - 1]}, *foreign[1] = {f->other}, *bad[1] = {"xyz"};
	char now[REPO_ID_LEN];

	assert_int_equal(repo_rewrite_branch(&res, f->r, "msgw1", tip, 1), MSGW_ERR);
	assert_non_null(strstr(err_last(), "is the tip of 'msgw1'"));
	repo_rewrite_result_release(&res);
	assert_int_equal(repo_rewrite_branch(&res, f->r, "msgw1", foreign, 1), MSGW_ERR);
	assert_non_null(strstr(err_last(), "is not on branch 'msgw1'"));
	repo_rewrite_result_release(&res);
	assert_int_equal(repo_rewrite_branch(&res, f->r, "msgw1", bad, 1), MSGW_ERR);
	repo_rewrite_result_release(&res);
	assert_int_equal(repo_rewrite_branch(&res, f->r, "nosuch", tip, 1), MSGW_ENOTFOUND);
	repo_rewrite_result_release(&res);
	assert_int_equal(repo_branch_tip(now, f->r, "msgw1"), 0);
	assert_string_equal(now, f->ids[NCOMMITS - 1]);

	/* nothing to drop: nothing changes */
	assert_int_equal(repo_rewrite_branch(&res, f->r, "msgw1", NULL, 0), 0);
	assert_string_equal(res.new_tip, res.old_tip);
	assert_int_equal(res.nrewritten, 0);
	repo_rewrite_result_release(&res);
}

/* Dropping the root: the next snapshot becomes a root commit. */
static void test_rewrite_drop_root(void **state)
{
	struct fixture *f = *state;
	struct repo_rewrite_result res;
	char *drop[1] = {f->ids[0]};
	struct repo_commit_info ci;
	char **log = NULL;
	size_t n = 0;

	assert_int_equal(repo_rewrite_branch(&res, f->r, "msgw1", drop, 1), 0);
	assert_int_equal(res.nrewritten, NCOMMITS - 1);
	assert_int_equal(repo_log(&log, &n, f->r, "msgw1", 0), 0);
	assert_int_equal(n, NCOMMITS - 1);
	assert_int_equal(repo_commit_info(&ci, f->r, log[n - 1]), 0);
	assert_string_equal(ci.parent, "");
	repo_commit_info_release(&ci);
	repo_names_free(log, n);
	repo_rewrite_result_release(&res);
}

static void test_tagged_commits(void **state)
{
	struct fixture *f = *state;
	char **ids = NULL;
	size_t n = 0;

	assert_int_equal(repo_tagged_commits(&ids, &n, f->r), 0);
	assert_int_equal(n, 0);
	repo_names_free(ids, n);
	assert_int_equal(repo_tag(f->r, "a", f->ids[3]), 0);
	make_annotated_tag(f->path, "b", f->ids[1]);
	assert_int_equal(repo_tagged_commits(&ids, &n, f->r), 0);
	assert_int_equal(n, 2);
	/* sorted */
	assert_true(strcmp(ids[0], ids[1]) < 0);
	assert_true((strcmp(ids[0], f->ids[1]) == 0 && strcmp(ids[1], f->ids[3]) == 0) ||
		    (strcmp(ids[0], f->ids[3]) == 0 && strcmp(ids[1], f->ids[1]) == 0));
	repo_names_free(ids, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy_table),
	    cmocka_unit_test(test_policy_unset_refuses),
	    cmocka_unit_test(test_policy_empty),
	    cmocka_unit_test(test_buckets_before_epoch),
	    cmocka_unit_test(test_buckets_match_calendar),
	    cmocka_unit_test(test_reasons_format),
	    cmocka_unit_test_setup_teardown(test_plan_branch, setup_repo, teardown_repo),
	    cmocka_unit_test_setup_teardown(test_rewrite_and_repack, setup_repo, teardown_repo),
	    cmocka_unit_test_setup_teardown(test_rewrite_refusals, setup_repo, teardown_repo),
	    cmocka_unit_test_setup_teardown(test_rewrite_drop_root, setup_repo, teardown_repo),
	    cmocka_unit_test_setup_teardown(test_tagged_commits, setup_repo, teardown_repo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
