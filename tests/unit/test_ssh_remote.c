/*
 * test_ssh_remote: repo_remote.h on real repositories in a temporary
 * directory, with local-path and file:// remotes (the ssh transport is
 * covered end to end by tests/e2e/t4500-ssh-push.sh): push counts, a push
 * the remote refuses, the push record, the automatic push that never
 * fails, fetch by fast-forward only, the --repo URL cache, and the URL
 * checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "repo.h"
#include "repo.h"
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
	char dir[PATH_MAX];
	char *local, *remote, *state;
	struct repo *r;
	struct config_remote rem;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_ssh_remote.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	snprintf(f->dir, sizeof(f->dir), "%s", tmpl);
	f->local = xasprintf("%s/local.git", f->dir);
	f->remote = xasprintf("%s/remote.git", f->dir);
	f->state = xasprintf("%s/state", f->dir);
	assert_int_equal(repo_init(f->local, NULL), 0);
	assert_int_equal(repo_init(f->remote, NULL), 0);
	assert_int_equal(repo_open(&f->r, f->local), 0);
	f->rem.name = "offsite";
	f->rem.url = f->remote;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);

	repo_free(f->r);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f->local);
	free(f->remote);
	free(f->state);
	free(f);
	return 0;
}

/* One commit on branch of r, with a file holding text. */
static void commit(char id[REPO_ID_LEN], struct repo *r, const char *branch, const char *text)
{
	struct repo_file file = REPO_FILE("meta", text, strlen(text));

	if (repo_commit(id, r, branch, &file, 1, text, 1700000000))
		fail_msg("commit: %s", err_last());
}

static void tip(char id[REPO_ID_LEN], const char *path, const char *branch)
{
	struct repo *r = NULL;

	assert_int_equal(repo_open(&r, path), 0);
	if (repo_branch_tip(id, r, branch))
		fail_msg("tip of %s in %s: %s", branch, path, err_last());
	repo_free(r);
}

static void test_push(void **state)
{
	struct fixture *f = *state;
	struct repo_push_result res;
	char a[REPO_ID_LEN], b[REPO_ID_LEN], t[REPO_ID_LEN];

	/* nothing to push yet */
	assert_int_equal(repo_push(&res, f->r, &f->rem), 0);
	assert_int_equal(res.offered, 0);
	commit(a, f->r, "gw1", "one");
	commit(b, f->r, "gw2", "two");
	assert_int_equal(repo_tag(f->r, "v1", a), 0);
	assert_int_equal(repo_push(&res, f->r, &f->rem), 0);
	assert_int_equal(res.offered, 3);
	assert_int_equal(res.updated, 3);
	tip(t, f->remote, "gw1");
	assert_string_equal(t, a);
	tip(t, f->remote, "gw2");
	assert_string_equal(t, b);
	assert_int_equal(repo_push(&res, f->r, &f->rem), 0);
	assert_int_equal(res.updated, 0);
	commit(a, f->r, "gw1", "one again");
	assert_int_equal(repo_push(&res, f->r, &f->rem), 0);
	assert_int_equal(res.updated, 1);
	tip(t, f->remote, "gw1");
	assert_string_equal(t, a);
}

static void test_push_file_url(void **state)
{
	struct fixture *f = *state;
	struct repo_push_result res;
	char a[REPO_ID_LEN], t[REPO_ID_LEN];
	char *url = xasprintf("file://%s", f->remote);

	f->rem.url = url;
	commit(a, f->r, "gw1", "one");
	assert_int_equal(repo_push(&res, f->r, &f->rem), 0);
	assert_int_equal(res.updated, 1);
	tip(t, f->remote, "gw1");
	assert_string_equal(t, a);
	free(url);
}

/* The remote has a commit the local branch lacks. */
static void diverge_remote(struct fixture *f)
{
	struct repo *rr = NULL;
	char x[REPO_ID_LEN];

	assert_int_equal(repo_open(&rr, f->remote), 0);
	commit(x, rr, "gw1", "made there");
	repo_free(rr);
}

static void test_push_refused_and_recorded(void **state)
{
	struct fixture *f = *state;
	struct repo_push_state st;
	struct repo_push_result res;
	char a[REPO_ID_LEN];
	int64_t success;

	commit(a, f->r, "gw1", "one");
	assert_int_equal(repo_push_state_read(&st, f->state, "offsite"), MSGW_ENOTFOUND);
	assert_int_equal(repo_push_recorded(&res, f->r, &f->rem, f->state), 0);
	assert_int_equal(repo_push_state_read(&st, f->state, "offsite"), 0);
	assert_true(st.last_attempt > 0);
	assert_int_equal(st.last_success, st.last_attempt);
	assert_null(st.last_error);
	success = st.last_success;
	repo_push_state_release(&st);

	diverge_remote(f);
	commit(a, f->r, "gw1", "two");
	assert_int_equal(repo_push_recorded(&res, f->r, &f->rem, f->state), MSGW_ERR);
	assert_memory_equal(err_last(), "remote 'offsite': push: ", 24);
	assert_int_equal(repo_push_state_read(&st, f->state, "offsite"), 0);
	assert_int_equal(st.last_success, success);
	assert_non_null(st.last_error);
	assert_memory_equal(st.last_error, "remote 'offsite': push: ", 24);
	assert_int_equal(err_last()[strlen(err_last()) - 1] == '.', 0);
	repo_push_state_release(&st);
}

static void test_push_forced_with_prune_remotes(void **state)
{
	struct fixture *f = *state;
	struct repo_push_result res;
	char a[REPO_ID_LEN], t[REPO_ID_LEN];

	commit(a, f->r, "gw1", "one");
	assert_int_equal(repo_push(&res, f->r, &f->rem), 0);
	diverge_remote(f);
	f->rem.prune_remotes = 1;
	assert_int_equal(repo_push(&res, f->r, &f->rem), 0);
	tip(t, f->remote, "gw1");
	assert_string_equal(t, a);
}

static void test_push_auto_never_fails(void **state)
{
	struct fixture *f = *state;
	struct config_remote rems[3] = {{0}};
	struct config cfg = {0};
	struct repo_push_state st;
	char a[REPO_ID_LEN], t[REPO_ID_LEN];
	char *gone = xasprintf("%s/gone.git", f->dir);

	rems[0].name = "good";
	rems[0].url = f->remote;
	rems[0].push = 1;
	rems[1].name = "gone";
	rems[1].url = gone;
	rems[1].push = 1;
	rems[2].name = "manual";
	rems[2].url = f->remote;
	rems[2].push = 0;
	cfg.remotes = rems;
	cfg.nremotes = 3;
	cfg.state_dir = f->state;
	commit(a, f->r, "gw1", "one");
	assert_int_equal(repo_push_auto(f->r, &cfg, f->state), 0);
	tip(t, f->remote, "gw1");
	assert_string_equal(t, a);
	assert_int_equal(repo_push_state_read(&st, f->state, "good"), 0);
	assert_null(st.last_error);
	repo_push_state_release(&st);
	assert_int_equal(repo_push_state_read(&st, f->state, "gone"), 0);
	assert_non_null(st.last_error);
	assert_int_equal(st.last_success, 0);
	repo_push_state_release(&st);
	assert_int_equal(repo_push_state_read(&st, f->state, "manual"), MSGW_ENOTFOUND);
	free(gone);
}

static void test_fetch(void **state)
{
	struct fixture *f = *state;
	struct repo_fetch_result res;
	struct repo *rr = NULL;
	char a[REPO_ID_LEN], b[REPO_ID_LEN], t[REPO_ID_LEN];
	char **names = NULL;
	size_t n = 0;

	/* the remote has two branches and a tag; local has nothing */
	assert_int_equal(repo_open(&rr, f->remote), 0);
	commit(a, rr, "gw1", "one");
	commit(b, rr, "gw2", "two");
	assert_int_equal(repo_tag(rr, "v1", a), 0);
	assert_int_equal(repo_fetch(&res, f->r, &f->rem), 0);
	assert_int_equal(res.updated, 3);
	tip(t, f->local, "gw1");
	assert_string_equal(t, a);
	assert_int_equal(repo_tags_at(&names, &n, f->r, a), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "v1");
	repo_names_free(names, n);
	assert_int_equal(repo_fetch(&res, f->r, &f->rem), 0);
	assert_int_equal(res.updated, 0);

	/* a fast-forward moves the local branch */
	commit(a, rr, "gw1", "one more");
	assert_int_equal(repo_fetch(&res, f->r, &f->rem), 0);
	assert_int_equal(res.updated, 1);
	tip(t, f->local, "gw1");
	assert_string_equal(t, a);

	/* a local commit the remote lacks: never rewound */
	commit(b, f->r, "gw1", "made here");
	assert_int_equal(repo_fetch(&res, f->r, &f->rem), 0);
	assert_int_equal(res.updated, 0);
	tip(t, f->local, "gw1");
	assert_string_equal(t, b);
	/* diverged both ways: kept */
	commit(a, rr, "gw1", "made there");
	assert_int_equal(repo_fetch(&res, f->r, &f->rem), 0);
	tip(t, f->local, "gw1");
	assert_string_equal(t, b);
	repo_free(rr);
	assert_int_equal(repo_branches(&names, &n, f->r), 0);
	assert_int_equal(n, 2);
	repo_names_free(names, n);
}

static void test_fetch_missing_remote(void **state)
{
	struct fixture *f = *state;
	struct repo_fetch_result res;

	f->rem.url = "/nonexistent/remote.git";
	assert_int_equal(repo_fetch(&res, f->r, &f->rem), MSGW_ERR);
	assert_memory_equal(err_last(), "remote 'offsite': fetch: ", 25);
}

static void test_urls(void **state)
{
	struct fixture *f = *state;
	struct repo_push_result res;
	struct config_remote rem = {0};

	assert_true(repo_remote_is_url("ssh://h/p"));
	assert_true(repo_remote_is_url("file:///p"));
	assert_false(repo_remote_is_url("/srv/repo.git"));
	assert_false(repo_remote_is_url("offsite"));
	assert_false(repo_remote_is_url(NULL));

	rem.name = "x";
	rem.url = "https://example.com/repo.git";
	assert_int_equal(repo_push(&res, f->r, &rem), MSGW_ECONFIG);
	assert_string_equal(err_last(),
			    "remote 'x': unsupported url 'https://example.com/repo.git' "
			    "(expected ssh://, file:// or an absolute path)");
	rem.url = "relative/repo.git";
	assert_int_equal(repo_push(&res, f->r, &rem), MSGW_ECONFIG);
	rem.url = "ssh://git@backup.example.com/srv/msgw.git";
	assert_int_equal(repo_push(&res, f->r, &rem), MSGW_ECONFIG);
	assert_string_equal(err_last(),
			    "remote 'x': no known-hosts configured for "
			    "'ssh://git@backup.example.com/srv/msgw.git' (host keys are "
			    "never trusted on first use)");
	rem.url = "ssh://git@backup.example.com:0/srv/msgw.git";
	assert_int_equal(repo_push(&res, f->r, &rem), MSGW_ECONFIG);
	assert_memory_equal(err_last(), "remote 'x': bad ssh location", 28);
}

static void test_cache(void **state)
{
	struct fixture *f = *state;
	struct config_remote rems[1] = {{0}};
	struct config cfg = {0};
	struct repo *rr = NULL;
	char a[REPO_ID_LEN], t[REPO_ID_LEN], *path = NULL, *path2 = NULL, *url;
	struct stat st;

	url = xasprintf("file://%s", f->remote);
	cfg.path = "test.conf";
	cfg.state_dir = f->state;
	assert_int_equal(repo_open(&rr, f->remote), 0);
	commit(a, rr, "gw1", "one");

	/* any file:// URL */
	assert_int_equal(repo_remote_cache(&path, url, &cfg), 0);
	assert_non_null(strstr(path, "/state/repo-cache/"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	tip(t, path, "gw1");
	assert_string_equal(t, a);

	/* again: the same cache, refreshed */
	assert_int_equal(repo_remote_cache(&path2, url, &cfg), 0);
	assert_string_equal(path, path2);
	free(path2);
	repo_free(rr);

	/* a configured remote, by name: same URL, same cache */
	rems[0].name = "offsite";
	rems[0].url = url;
	cfg.remotes = rems;
	cfg.nremotes = 1;
	assert_int_equal(repo_remote_cache(&path2, "offsite", &cfg), 0);
	assert_string_equal(path, path2);
	free(path2);

	/* an ssh URL nobody configured: its key and known_hosts are unknown */
	assert_int_equal(repo_remote_cache(&path2, "ssh://git@h/srv/r.git", &cfg), MSGW_ECONFIG);
	assert_null(path2);
	assert_string_equal(err_last(),
			    "no remote in 'test.conf' has the url 'ssh://git@h/srv/r.git': "
			    "add a remote section with its identity and known-hosts");
	assert_int_equal(repo_remote_cache(&path2, "nosuch", &cfg), MSGW_ECONFIG);
	assert_string_equal(err_last(), "'nosuch' is neither a remote's name nor a URL");
	free(path);
	free(url);
}

static void test_cache_forced(void **state)
{
	struct fixture *f = *state;
	struct config cfg = {0};
	struct repo *rr = NULL;
	char a[REPO_ID_LEN], t[REPO_ID_LEN], *path = NULL, *url, *cmd;

	url = xasprintf("file://%s", f->remote);
	cfg.path = "test.conf";
	cfg.state_dir = f->state;
	assert_int_equal(repo_open(&rr, f->remote), 0);
	commit(a, rr, "gw1", "one");
	repo_free(rr);
	assert_int_equal(repo_remote_cache(&path, url, &cfg), 0);
	free(path);
	/* the remote is replaced by another history */
	cmd = xasprintf("rm -rf '%s'", f->remote);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	assert_int_equal(repo_init(f->remote, NULL), 0);
	assert_int_equal(repo_open(&rr, f->remote), 0);
	commit(a, rr, "gw1", "another history");
	repo_free(rr);
	assert_int_equal(repo_remote_cache(&path, url, &cfg), 0);
	tip(t, path, "gw1");
	assert_string_equal(t, a);
	free(path);
	free(url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_push, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_push_file_url, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_push_refused_and_recorded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_push_forced_with_prune_remotes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_push_auto_never_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_missing_remote, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_forced, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
