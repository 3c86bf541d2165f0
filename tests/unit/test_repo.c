/*
 * test_repo: the snapshot repository on real temporary bare repositories:
 * repo_init (mode, idempotence, refusal of a foreign directory), repo_open,
 * repo_commit and reading back (files, tree names, commit facts, log,
 * branches, HEAD), tags, damaged objects (named; a damaged loose object
 * with a sound packed copy reads fine), a stale ref lock's message, an
 * archive streamed from a file (read back by stock git), packed objects
 * after a repack, and repo_resolve for every form
 * of snapshot name: branch, @latest, ~N within and beyond history, tag,
 * id prefixes of 7+ hex digits, an ambiguous prefix (two commits crafted
 * to share seven hex digits) and unknown names.
 *
 * libgit2 is used directly only to build fixtures the API cannot make.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "repo.h"
#include "util.h"
#include "test_util.h"

#include <ctype.h>
#include <ftw.h>
#include <git2.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16]; /* dir/repo.git */
	struct repo *r;
	char ids[3][REPO_ID_LEN]; /* msgw1's three commits, oldest first */
};

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_repo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, f->dir));
	snprintf(f->path, sizeof(f->path), "%s/repo.git", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	repo_free(f->r);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static int commit_files(char out[REPO_ID_LEN], struct repo *r, const char *branch,
			const char *manifest, const char *msg, int64_t when)
{
	struct repo_file files[3] = {
	    REPO_FILE("config.tar.zst", "\x28\xb5\x2f\xfd\0binary\0data", 16),
	    REPO_FILE("manifest", manifest, strlen(manifest)),
	    REPO_FILE("meta", "format: 1\n", 10),
	};

	return repo_commit(out, r, branch, files, 3, msg, when);
}

/* A repository with three snapshots of msgw1 and one of msgw2. */
static int setup_history(void **state)
{
	struct fixture *f;
	char other[REPO_ID_LEN];
	int i;

	setup(state);
	f = *state;
	assert_int_equal(repo_init(f->path, NULL), 0);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	for (i = 0; i < 3; i++) {
		char manifest[64], msg[64];

		snprintf(manifest, sizeof(manifest), "msgw-manifest 1\n# %d\n", i);
		snprintf(msg, sizeof(msg), "msgw1: snapshot %d\n\nbody %d\n", i, i);
		assert_int_equal(
		    commit_files(f->ids[i], f->r, "msgw1", manifest, msg, 1700000000 + i * 60), 0);
	}
	assert_int_equal(
	    commit_files(other, f->r, "msgw2", "msgw-manifest 1\n", "msgw2: first\n", 1700000500),
	    0);
	return 0;
}

/* ---- init and open ------------------------------------------------------ */

static void test_init(void **state)
{
	struct fixture *f = *state;
	char sub[PATH_MAX + 32], head[PATH_MAX + 64];
	struct stat st;
	int created = -1;

	snprintf(sub, sizeof(sub), "%s/a/b/repo.git", f->dir);
	assert_int_equal(repo_init(sub, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(head, sizeof(head), "%s/HEAD", sub);
	assert_int_equal(access(head, F_OK), 0);
	snprintf(head, sizeof(head), "%s/objects", sub);
	assert_int_equal(access(head, F_OK), 0); /* bare: no .git below */

	/* again: left as it is */
	assert_int_equal(chmod(sub, 0750), 0);
	assert_int_equal(repo_init(sub, &created), 0);
	assert_int_equal(created, 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(repo_init(sub, NULL), 0);

	/* an existing empty directory becomes the repository */
	snprintf(sub, sizeof(sub), "%s/empty", f->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(repo_init(sub, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(repo_open(&f->r, sub), 0);
	assert_string_equal(repo_path(f->r), sub);
}

static void test_init_refuses_foreign_dir(void **state)
{
	struct fixture *f = *state;
	char sub[PATH_MAX + 32], file[PATH_MAX + 64];
	FILE *fp;

	snprintf(sub, sizeof(sub), "%s/data", f->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(file, sizeof(file), "%s/precious.txt", sub);
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs("keep me\n", fp);
	fclose(fp);
	assert_int_equal(repo_init(sub, NULL), MSGW_ERR);
	assert_contains(err_last(), "exists and is not a repository");
	assert_contains(err_last(), sub);
	assert_int_equal(access(file, F_OK), 0);
}

static void test_open_missing(void **state)
{
	struct fixture *f = *state;
	char sub[PATH_MAX + 32];

	f->r = (struct repo *)1;
	assert_int_equal(repo_open(&f->r, f->path), MSGW_ENOTFOUND);
	assert_null(f->r);
	assert_contains(err_last(), f->path);
	assert_contains(err_last(), "does not exist");
	assert_contains(err_last(), "msgw-agent init");

	/* a directory that is not a repository */
	snprintf(sub, sizeof(sub), "%s/plain", f->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(repo_open(&f->r, sub), MSGW_ERR);
	assert_null(f->r);
	assert_contains(err_last(), "cannot open repository");
}

/* ---- commits and reading back ------------------------------------------ */

static void test_commit_and_read(void **state)
{
	struct fixture *f = *state;
	struct repo_commit_info ci;
	char tip[REPO_ID_LEN], **names = NULL, *data = NULL;
	size_t n = 0, len = 0;

	assert_int_equal(repo_branch_tip(tip, f->r, "msgw1"), 0);
	assert_string_equal(tip, f->ids[2]);
	assert_int_equal(strlen(tip), 40);

	assert_int_equal(repo_read(&data, &len, f->r, f->ids[0], "config.tar.zst"), 0);
	assert_int_equal(len, 16);
	assert_memory_equal(data, "\x28\xb5\x2f\xfd\0binary\0data", 16);
	assert_int_equal(data[16], '\0');
	free(data);
	assert_int_equal(repo_read(&data, &len, f->r, f->ids[1], "manifest"), 0);
	assert_string_equal(data, "msgw-manifest 1\n# 1\n");
	free(data);
	data = (char *)1;
	assert_int_equal(repo_read(&data, &len, f->r, f->ids[1], "nothing"), MSGW_ENOTFOUND);
	assert_null(data);
	assert_contains(err_last(), "'nothing'");

	assert_int_equal(repo_tree_names(&names, &n, f->r, f->ids[2]), 0);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "config.tar.zst");
	assert_string_equal(names[1], "manifest");
	assert_string_equal(names[2], "meta");
	repo_names_free(names, n);

	assert_int_equal(repo_commit_info(&ci, f->r, f->ids[0]), 0);
	assert_string_equal(ci.id, f->ids[0]);
	assert_string_equal(ci.parent, "");
	assert_int_equal(ci.time, 1700000000);
	assert_string_equal(ci.summary, "msgw1: snapshot 0");
	repo_commit_info_release(&ci);
	assert_int_equal(repo_commit_info(&ci, f->r, f->ids[2]), 0);
	assert_string_equal(ci.parent, f->ids[1]);
	assert_int_equal(ci.time, 1700000120);
	repo_commit_info_release(&ci);
}

static void test_log_and_branches(void **state)
{
	struct fixture *f = *state;
	char **ids = NULL, **names = NULL, tip[REPO_ID_LEN];
	size_t n = 0;

	assert_int_equal(repo_log(&ids, &n, f->r, "msgw1", 0), 0);
	assert_int_equal(n, 3);
	assert_string_equal(ids[0], f->ids[2]);
	assert_string_equal(ids[1], f->ids[1]);
	assert_string_equal(ids[2], f->ids[0]);
	repo_names_free(ids, n);
	assert_int_equal(repo_log(&ids, &n, f->r, "msgw1", 2), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[1], f->ids[1]);
	repo_names_free(ids, n);
	assert_int_equal(repo_log(&ids, &n, f->r, "msgw3", 0), MSGW_ENOTFOUND);
	assert_int_equal(n, 0);
	assert_null(ids);

	assert_int_equal(repo_branches(&names, &n, f->r), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "msgw1");
	assert_string_equal(names[1], "msgw2");
	repo_names_free(names, n);

	assert_int_equal(repo_branch_tip(tip, f->r, "msgw3"), MSGW_ENOTFOUND);
	assert_string_equal(tip, "");
	assert_contains(err_last(), "msgw3");
}

/* Stock "git log" in the repository shows the snapshots: HEAD names the
 * first gateway's branch once it exists, and stays there. */
static void test_head_follows_first_branch(void **state)
{
	struct fixture *f = *state;
	char head[PATH_MAX + 32], line[256] = "";
	FILE *fp;

	snprintf(head, sizeof(head), "%s/HEAD", f->path);
	fp = fopen(head, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	assert_string_equal(line, "ref: refs/heads/msgw1\n");
}

static void test_empty_repository(void **state)
{
	struct fixture *f = *state;
	char **names = (char **)1, id[REPO_ID_LEN];
	size_t n = 1;

	assert_int_equal(repo_init(f->path, NULL), 0);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	assert_int_equal(repo_branches(&names, &n, f->r), 0);
	assert_int_equal(n, 0);
	repo_names_free(names, n);
	assert_int_equal(repo_resolve(id, f->r, "msgw1"), MSGW_ENOTFOUND);
	assert_contains(err_last(), "no snapshot named 'msgw1'");
}

/* ---- tags ---------------------------------------------------------------- */

static void test_tags(void **state)
{
	struct fixture *f = *state;
	char **tags = NULL, id[REPO_ID_LEN];
	size_t n = 0;

	assert_int_equal(repo_tag(f->r, "before-upgrade", f->ids[1]), 0);
	assert_int_equal(repo_tag(f->r, "a-first", f->ids[1]), 0);
	assert_int_equal(repo_tag(f->r, "before-upgrade", f->ids[2]), MSGW_ECONFIG);
	assert_contains(err_last(), "tag 'before-upgrade' already exists");
	assert_int_equal(repo_tag(f->r, "bad..name", f->ids[2]), MSGW_ECONFIG);
	assert_contains(err_last(), "bad tag name 'bad..name'");
	assert_int_equal(repo_tag(f->r, "x.lock", f->ids[2]), MSGW_ECONFIG);

	assert_int_equal(repo_tags_at(&tags, &n, f->r, f->ids[1]), 0);
	assert_int_equal(n, 2);
	assert_string_equal(tags[0], "a-first");
	assert_string_equal(tags[1], "before-upgrade");
	repo_names_free(tags, n);
	assert_int_equal(repo_tags_at(&tags, &n, f->r, f->ids[0]), 0);
	assert_int_equal(n, 0);
	repo_names_free(tags, n);

	assert_int_equal(repo_resolve(id, f->r, "before-upgrade"), 0);
	assert_string_equal(id, f->ids[1]);
	/* ~N and @latest need a branch, never a tag */
	assert_int_equal(repo_resolve(id, f->r, "before-upgrade~1"), MSGW_ENOTFOUND);
	assert_contains(err_last(), "no gateway branch 'before-upgrade'");
	assert_int_equal(repo_resolve(id, f->r, "before-upgrade@latest"), MSGW_ENOTFOUND);

	/* a branch wins over a tag of the same name */
	assert_int_equal(repo_tag(f->r, "msgw2", f->ids[0]), 0);
	assert_int_equal(repo_resolve(id, f->r, "msgw2"), 0);
	assert_string_not_equal(id, f->ids[0]);
}

/* ---- resolution ---------------------------------------------------------- */

struct want {
	const char *name;
	int idx; /* index into f->ids, or -1 for an error */
	int rc;
	const char *msg;
};

static void test_resolve(void **state)
{
	static const struct want cases[] = {
	    {"msgw1", 2, 0, NULL},
	    {"msgw1@latest", 2, 0, NULL},
	    {"msgw1~0", 2, 0, NULL},
	    {"msgw1~1", 1, 0, NULL},
	    {"msgw1~2", 0, 0, NULL},
	    {"msgw1~3", -1, MSGW_ENOTFOUND, "no snapshot named 'msgw1~3': the branch has only 3"},
	    {"msgw1~50", -1, MSGW_ENOTFOUND, "the branch has only 3"},
	    {"msgw9", -1, MSGW_ENOTFOUND, "no snapshot named 'msgw9'"},
	    {"msgw9~1", -1, MSGW_ENOTFOUND, "no gateway branch 'msgw9'"},
	    {"msgw9@latest", -1, MSGW_ENOTFOUND, "no gateway branch 'msgw9'"},
	    {"msgw1~x", -1, MSGW_ECONFIG, "bad snapshot name"},
	    {"~1", -1, MSGW_ECONFIG, "bad snapshot name"},
	    {"..", -1, MSGW_ECONFIG, "bad snapshot name"},
	    {"msgw1.lock", -1, MSGW_ECONFIG, "bad snapshot name"},
	};
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[REPO_ID_LEN] = "";
		int rc;

		err_clear();
		rc = repo_resolve(id, f->r, cases[i].name);
		if (rc != cases[i].rc)
			fail_msg("repo_resolve('%s') = %d (%s), expected %d", cases[i].name, rc,
				 err_last(), cases[i].rc);
		if (cases[i].idx >= 0)
			assert_string_equal(id, f->ids[cases[i].idx]);
		else if (!strstr(err_last(), cases[i].msg))
			fail_msg("'%s': message '%s' lacks '%s'", cases[i].name, err_last(),
				 cases[i].msg);
	}
}

static void test_resolve_prefix(void **state)
{
	struct fixture *f = *state;
	char id[REPO_ID_LEN], prefix[41], upper[41];
	size_t len, i;

	for (len = 7; len <= 40; len += 11) {
		memcpy(prefix, f->ids[0], len);
		prefix[len] = '\0';
		assert_int_equal(repo_resolve(id, f->r, prefix), 0);
		assert_string_equal(id, f->ids[0]);
	}
	assert_int_equal(repo_resolve(id, f->r, f->ids[1]), 0);
	assert_string_equal(id, f->ids[1]);
	for (i = 0; i < 10; i++)
		upper[i] = (char)toupper((unsigned char)f->ids[2][i]);
	upper[10] = '\0';
	assert_int_equal(repo_resolve(id, f->r, upper), 0);
	assert_string_equal(id, f->ids[2]);

	/* six digits are a name, not an id */
	memcpy(prefix, f->ids[0], 6);
	prefix[6] = '\0';
	assert_int_equal(repo_resolve(id, f->r, prefix), MSGW_ENOTFOUND);

	/* a prefix nothing has: change the first digit until no object has it */
	memcpy(prefix, f->ids[0], 12);
	prefix[12] = '\0';
	prefix[0] = prefix[0] == '0' ? '1' : '0';
	prefix[1] = 'f', prefix[2] = 'f', prefix[3] = 'f';
	assert_int_equal(repo_resolve(id, f->r, prefix), MSGW_ENOTFOUND);
	assert_contains(err_last(), "no snapshot named");
}

/* The id of a blob is a valid prefix but names no snapshot. */
static void test_resolve_blob_id(void **state)
{
	struct fixture *f = *state;
	const char *text = "msgw-manifest 1\n# 0\n";
	char id[REPO_ID_LEN], hex[41];
	git_oid oid;

	assert_int_equal(git_odb_hash(&oid, text, strlen(text), GIT_OBJECT_BLOB), 0);
	git_oid_tostr(hex, sizeof(hex), &oid);
	assert_int_equal(repo_resolve(id, f->r, hex), MSGW_ENOTFOUND);
	hex[8] = '\0';
	assert_int_equal(repo_resolve(id, f->r, hex), MSGW_ENOTFOUND);
}

/* Two commits whose ids share their first seven hex digits, found among
 * candidate commit texts that differ in their message (a birthday search
 * over 28 bits: deterministic, fast, no objects written but the pair). */
struct cand {
	uint32_t key;
	uint32_t n;
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key ? 1 : (int)x->n - (int)y->n;
}

static size_t commit_text(char *buf, size_t len, uint32_t n)
{
	return (size_t)snprintf(buf, len,
				"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
				"author t <t@example.test> 1700000000 +0000\n"
				"committer t <t@example.test> 1700000000 +0000\n\ncandidate %u\n",
				n);
}

static void test_resolve_ambiguous(void **state)
{
	enum { N = 120000 };
	struct fixture *f = *state;
	struct cand *c = calloc(N, sizeof(*c));
	git_repository *g = NULL;
	git_odb *odb = NULL;
	char buf[256], id[REPO_ID_LEN], hex[2][41], prefix[8];
	git_oid oid;
	uint32_t i, a = 0, b = 0;
	int found = 0, j;

	assert_non_null(c);
	for (i = 0; i < N; i++) {
		size_t len = commit_text(buf, sizeof(buf), i);

		assert_int_equal(git_odb_hash(&oid, buf, len, GIT_OBJECT_COMMIT), 0);
		c[i].key = (uint32_t)oid.id[0] << 20 | (uint32_t)oid.id[1] << 12 |
			   (uint32_t)oid.id[2] << 4 | (uint32_t)oid.id[3] >> 4;
		c[i].n = i;
	}
	qsort(c, N, sizeof(*c), cand_cmp);
	for (i = 1; i < N && !found; i++)
		if (c[i].key == c[i - 1].key) {
			a = c[i - 1].n;
			b = c[i].n;
			found = 1;
		}
	free(c);
	assert_true(found);

	assert_int_equal(git_repository_open_bare(&g, f->path), 0);
	assert_int_equal(git_repository_odb(&odb, g), 0);
	assert_int_equal(git_odb_write(&oid, odb, "", 0, GIT_OBJECT_TREE), 0);
	for (j = 0; j < 2; j++) {
		size_t len = commit_text(buf, sizeof(buf), j ? b : a);

		assert_int_equal(git_odb_write(&oid, odb, buf, len, GIT_OBJECT_COMMIT), 0);
		git_oid_tostr(hex[j], sizeof(hex[j]), &oid);
	}
	git_odb_free(odb);
	git_repository_free(g);
	assert_memory_equal(hex[0], hex[1], 7);
	assert_memory_not_equal(hex[0], hex[1], 40);

	memcpy(prefix, hex[0], 7);
	prefix[7] = '\0';
	assert_int_equal(repo_resolve(id, f->r, prefix), MSGW_ECONFIG);
	assert_contains(err_last(), "ambiguous");
	assert_contains(err_last(), prefix);
	/* one more digit, where they differ, picks one */
	for (j = 7; j < 40 && hex[0][j] == hex[1][j]; j++)
		;
	memcpy(buf, hex[1], (size_t)j + 1);
	buf[j + 1] = '\0';
	assert_int_equal(repo_resolve(id, f->r, buf), 0);
	assert_string_equal(id, hex[1]);
}

/* ---- damage ---------------------------------------------------------------- */

static void flip_loose_object(struct fixture *f, const git_oid *oid)
{
	char hex[41], path[PATH_MAX + 128];
	struct stat st;
	FILE *fp;
	int c;

	git_oid_tostr(hex, sizeof(hex), oid);
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s", f->path, hex, hex + 2);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(chmod(path, 0600), 0);
	fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, st.st_size / 2, SEEK_SET), 0);
	c = fgetc(fp);
	assert_int_equal(fseek(fp, st.st_size / 2, SEEK_SET), 0);
	fputc(c ^ 0x55, fp);
	fclose(fp);
}

static void test_damaged_blob(void **state)
{
	struct fixture *f = *state;
	const char *text = "msgw-manifest 1\n# 1\n";
	char *data = NULL;
	size_t len = 0;
	git_oid oid;
	int rc;

	assert_int_equal(git_odb_hash(&oid, text, strlen(text), GIT_OBJECT_BLOB), 0);
	flip_loose_object(f, &oid);
	/* a fresh handle: nothing cached */
	repo_free(f->r);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	rc = repo_read(&data, &len, f->r, f->ids[1], "manifest");
	assert_int_equal(rc, MSGW_ECORRUPT);
	assert_null(data);
	assert_contains(err_last(), "'manifest'");
	assert_contains(err_last(), "is damaged");
	/* the other snapshots are untouched */
	assert_int_equal(repo_read(&data, &len, f->r, f->ids[2], "manifest"), 0);
	free(data);
}

/* Read a whole stream: its last return (0 at a sound end) and the bytes. */
static ssize_t drain(struct repo_stream *st, size_t *total)
{
	char buf[4096];
	ssize_t n;

	*total = 0;
	while ((n = repo_stream_read(st, buf, sizeof(buf))) > 0)
		*total += (size_t)n;
	return n;
}

/*
 * The archive streamed from a loose object: every byte, then 0 once its
 * SHA-1 matched.  The same object replaced by a sound zlib stream of other
 * bytes of the same length (libgit2 inflates it without complaint): the
 * end is MSGW_ECORRUPT naming the loose file, never a 0.
 */
static void test_stream_checks_sha1(void **state)
{
	struct fixture *f = *state;
	struct repo_stream *st = NULL;
	char id[REPO_ID_LEN], blob[REPO_ID_LEN], path[PATH_MAX + 128];
	const size_t n = 100000;
	char *data = malloc(n);
	size_t size = 0, total = 0, i;
	git_oid oid;

	assert_non_null(data);
	for (i = 0; i < n; i++)
		data[i] = (char)(i * 131 % 251);
	assert_int_equal(repo_init(f->path, NULL), 0);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	{
		struct repo_file files[3] = {
		    REPO_FILE("config.tar.zst", data, n),
		    REPO_FILE("manifest", "msgw-manifest 1\n", 16),
		    REPO_FILE("meta", "format: 1\n", 10),
		};

		assert_int_equal(repo_commit(id, f->r, "s", files, 3, "s: first\n", 1700000000), 0);
	}
	assert_int_equal(repo_open_stream(&st, &size, f->r, id, "config.tar.zst"), 0);
	assert_int_equal(size, n);
	assert_int_equal(drain(st, &total), 0);
	assert_int_equal(total, n);
	repo_stream_free(st);

	assert_int_equal(git_odb_hash(&oid, data, n, GIT_OBJECT_BLOB), 0);
	git_oid_tostr(blob, sizeof(blob), &oid);
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s", f->path, blob, blob + 2);
	test_run("chmod u+w '%s' && python3 -c 'import sys, zlib; "
		 "open(sys.argv[1], \"wb\").write(zlib.compress(b\"blob %zu\\0\" + b\"x\" * %zu))' "
		 "'%s'",
		 path, n, n, path);
	repo_free(f->r);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	assert_int_equal(repo_open_stream(&st, &size, f->r, id, "config.tar.zst"), 0);
	assert_int_equal(drain(st, &total), MSGW_ECORRUPT);
	assert_contains(err_last(), "'config.tar.zst': loose object");
	assert_contains(err_last(), blob + 2);
	assert_contains(err_last(), "does not match its id");
	repo_stream_free(st);
	free(data);
}

/*
 * A ref lock left by a killed run: repo_commit fails (repo_lock clears such
 * files; this is without it), and the message names the lock file and
 * never ends in libgit2's empty reason ("... for writing: ").
 */
static void test_stale_ref_lock_message(void **state)
{
	struct fixture *f = *state;
	char id[REPO_ID_LEN], *lockfile = xasprintf("%s/refs/heads/msgw1.lock", f->path);
	const char *msg;
	FILE *fp = fopen(lockfile, "w");

	assert_non_null(fp);
	fclose(fp);
	assert_int_not_equal(commit_files(id, f->r, "msgw1", "msgw-manifest 1\n", "m\n", 1), 0);
	msg = err_last();
	assert_contains(msg, "msgw1.lock");
	assert_true(msg[strlen(msg) - 1] != ' ' && msg[strlen(msg) - 1] != ':');
	free(lockfile);
}

/* The archive is streamed from a file into a loose object (libgit2's write
 * stream) that stock git reads. */
static void test_commit_from_fd(void **state)
{
	struct fixture *f = *state;
	char id[REPO_ID_LEN], path[PATH_MAX + 64], *data = NULL;
	const size_t n = 200000;
	struct repo_file files[3] = {
	    {"config.tar.zst", NULL, n, -1},
	    REPO_FILE("manifest", "msgw-manifest 1\n", 16),
	    REPO_FILE("meta", "format: 1\n", 10),
	};
	size_t len = 0, i;
	FILE *fp;

	assert_int_equal(repo_init(f->path, NULL), 0);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	snprintf(path, sizeof(path), "%s/archive", f->dir);
	fp = fopen(path, "w+b");
	assert_non_null(fp);
	for (i = 0; i < n; i++)
		fputc((int)(i % 7), fp);
	fflush(fp);
	files[0].fd = fileno(fp);
	assert_int_equal(repo_commit(id, f->r, "msgw3", files, 3, "msgw3: first\n", 1700000000), 0);
	fclose(fp);
	test_run("git --git-dir='%s' fsck --full --strict 2>/dev/null", f->path);
	test_run("git --git-dir='%s' cat-file blob msgw3:config.tar.zst | cmp - '%s'", f->path,
		 path);
	assert_int_equal(repo_read(&data, &len, f->r, id, "config.tar.zst"), 0);
	assert_int_equal(len, n);
	assert_int_equal(data[n - 1], (n - 1) % 7);
	free(data);
}

static off_t loose_size(const struct fixture *f, const char *rev)
{
	char *cmd = xasprintf("git --git-dir='%s' rev-parse '%s'", f->path, rev), hex[64] = "";
	char path[PATH_MAX + 128];
	struct stat st;
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	assert_non_null(fgets(hex, sizeof(hex), p));
	pclose(p);
	free(cmd);
	snprintf(path, sizeof(path), "%s/objects/%.2s/%.38s", f->path, hex, hex + 2);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/*
 * The archive (already zstd output) is stored in its loose object as zlib
 * "stored" blocks, not deflated again: the object file is larger than the
 * content even when the content would compress 100-fold, while a file
 * given from memory (the manifest) is still deflated.  Stock git reads
 * both and fsck accepts them.  (This fails if override.c's deflateInit_
 * is not the one libgit2 calls.)
 */
static void test_archive_stored(void **state)
{
	struct fixture *f = *state;
	char id[REPO_ID_LEN], path[PATH_MAX + 64];
	const size_t n = 300000;
	char *text = malloc(n);
	struct repo_file files[3] = {
	    {"config.tar.zst", NULL, n, -1},
	    REPO_FILE("manifest", text, n),
	    REPO_FILE("meta", "format: 1\n", 10),
	};
	size_t i;
	FILE *fp;

	assert_non_null(text);
	for (i = 0; i < n; i++)
		text[i] = (char)('a' + i % 7);
	assert_int_equal(repo_init(f->path, NULL), 0);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	snprintf(path, sizeof(path), "%s/archive", f->dir);
	fp = fopen(path, "w+b");
	assert_non_null(fp);
	for (i = 0; i < n; i++) /* not the manifest's bytes: another blob */
		fputc('A' + (int)(i % 7), fp);
	fflush(fp);
	files[0].fd = fileno(fp);
	assert_int_equal(repo_commit(id, f->r, "s", files, 3, "s: first\n", 1700000000), 0);
	fclose(fp);
	assert_true(loose_size(f, "s:config.tar.zst") > (off_t)n);
	assert_true(loose_size(f, "s:manifest") < (off_t)n / 20);
	test_run("git --git-dir='%s' fsck --full --strict 2>/dev/null", f->path);
	test_run("git --git-dir='%s' cat-file blob s:config.tar.zst | cmp - '%s'", f->path, path);
	test_run("git --git-dir='%s' cat-file blob s:manifest | tr a-g A-G | cmp - '%s'", f->path,
		 path);
	free(text);
}

/*
 * repo_file_same: the id of the bytes against the tree's entry, and the
 * object present; nothing read.  A missing name or object is "not the
 * same", never an error.
 */
static void test_file_same(void **state)
{
	struct fixture *f = *state;
	const char *m2 = "msgw-manifest 1\n# 2\n";
	char path[PATH_MAX + 64], *cmd;
	bool same = false;
	FILE *p;

	assert_int_equal(repo_file_same(&same, f->r, f->ids[2], "manifest", m2, strlen(m2)), 0);
	assert_true(same);
	assert_int_equal(repo_file_same(&same, f->r, f->ids[1], "manifest", m2, strlen(m2)), 0);
	assert_false(same);
	assert_int_equal(repo_file_same(&same, f->r, f->ids[2], "manifest", m2, strlen(m2) - 1), 0);
	assert_false(same);
	assert_int_equal(repo_file_same(&same, f->r, f->ids[2], "nothing", m2, strlen(m2)), 0);
	assert_false(same);
	/* the object gone (as a faulty prune would leave it) */
	cmd = xasprintf("git --git-dir='%s' rev-parse %s:manifest", f->path, f->ids[2]);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(path, 41, p));
	pclose(p);
	free(cmd);
	cmd = xasprintf("%s/objects/%.2s/%.38s", f->path, path, path + 2);
	assert_int_equal(unlink(cmd), 0);
	free(cmd);
	repo_free(f->r);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	assert_int_equal(repo_file_same(&same, f->r, f->ids[2], "manifest", m2, strlen(m2)), 0);
	assert_false(same);
}

/*
 * A loose archive of several MB streamed through: every byte comes out
 * right and the end is 0, while the pages of libgit2's mapping are dropped
 * as the stream goes (the restore's peak memory); a byte changed near the
 * end of the object is still caught.
 */
static void test_stream_large(void **state)
{
	struct fixture *f = *state;
	struct repo_stream *st = NULL;
	const size_t n = 5u << 20;
	char id[REPO_ID_LEN], path[PATH_MAX + 64], *data = malloc(n), *back = malloc(n);
	size_t size = 0, got = 0, i;
	uint32_t x = 12345;
	ssize_t k;
	FILE *fp;

	assert_non_null(data);
	assert_non_null(back);
	for (i = 0; i < n; i++) { /* incompressible, like zstd output */
		x = x * 1103515245u + 12345u;
		data[i] = (char)(x >> 24);
	}
	assert_int_equal(repo_init(f->path, NULL), 0);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	snprintf(path, sizeof(path), "%s/archive", f->dir);
	fp = fopen(path, "w+b");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, n, fp), n);
	fflush(fp);
	{
		struct repo_file files[3] = {
		    {"config.tar.zst", NULL, n, fileno(fp)},
		    REPO_FILE("manifest", "msgw-manifest 1\n", 16),
		    REPO_FILE("meta", "format: 1\n", 10),
		};

		assert_int_equal(repo_commit(id, f->r, "s", files, 3, "s: first\n", 1700000000), 0);
	}
	fclose(fp);
	assert_int_equal(repo_open_stream(&st, &size, f->r, id, "config.tar.zst"), 0);
	assert_int_equal(size, n);
	while ((k = repo_stream_read(st, back + got, n - got < 65536 ? n - got : 65536)) > 0)
		got += (size_t)k;
	assert_int_equal(k, 0);
	assert_int_equal(got, n);
	assert_memory_equal(back, data, n);
	repo_stream_free(st);

	/* stored blocks: the content lies in the file as it is; flip a byte
	 * of it 100 bytes before the end */
	snprintf(path, sizeof(path), "%s/objects", f->path);
	test_run("cd '%s' && o=$(git --git-dir=.. rev-parse s:config.tar.zst) && "
		 "python3 -c 'import os, sys; "
		 "p = sys.argv[1][:2] + \"/\" + sys.argv[1][2:]; os.chmod(p, 0o600); "
		 "b = bytearray(open(p, \"rb\").read()); b[-104] ^= 1; "
		 "open(p, \"wb\").write(b)' $o",
		 path);
	repo_free(f->r);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	assert_int_equal(repo_open_stream(&st, &size, f->r, id, "config.tar.zst"), 0);
	got = 0;
	while ((k = repo_stream_read(st, back, 65536)) > 0)
		got += (size_t)k;
	assert_int_equal(k, MSGW_ECORRUPT);
	assert_contains(err_last(), "'config.tar.zst': loose object");
	repo_stream_free(st);
	free(data);
	free(back);
}

/* After a repack the objects are no longer loose: read through libgit2. */
/* A damaged loose object whose packed copy is sound reads fine: libgit2
 * tries its pack backend, and checks what it read against the id. */
static void test_damaged_loose_sound_pack(void **state)
{
	struct fixture *f = *state;
	const char *text = "msgw-manifest 1\n# 1\n";
	char *data = NULL;
	size_t len = 0;
	git_oid oid;

	/* packed, and the loose copies kept */
	test_run("git --git-dir='%s' repack -a -q", f->path);
	assert_int_equal(git_odb_hash(&oid, text, strlen(text), GIT_OBJECT_BLOB), 0);
	flip_loose_object(f, &oid);
	repo_free(f->r);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	assert_int_equal(repo_read(&data, &len, f->r, f->ids[1], "manifest"), 0);
	assert_string_equal(data, text);
	free(data);
}

static void test_packed_fallback(void **state)
{
	struct fixture *f = *state;
	char *data = NULL;
	size_t len = 0;

	test_run("git --git-dir='%s' repack -a -d -q && git --git-dir='%s' prune-packed && "
		 "test -z \"$(find '%s/objects' -type f -path '*/objects/[0-9a-f][0-9a-f]/*')\"",
		 f->path, f->path, f->path);
	repo_free(f->r);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	assert_int_equal(repo_read(&data, &len, f->r, f->ids[0], "config.tar.zst"), 0);
	assert_int_equal(len, 16);
	assert_memory_equal(data, "\x28\xb5\x2f\xfd\0binary\0data", 16);
	free(data);
	assert_int_equal(repo_read(&data, &len, f->r, f->ids[1], "manifest"), 0);
	assert_string_equal(data, "msgw-manifest 1\n# 1\n");
	free(data);
}

/* What a snapshot reads from loose objects and plain refs without libgit2
 * (repo.c) is what libgit2 reads once the same objects and refs are
 * packed: commit facts (summaries of odd messages too, where the reading
 * leaves multi-line paragraphs to libgit2), tree names, files, resolved
 * names (a branch, a tag, ~N). */
struct seen {
	struct repo_commit_info ci[6];
	char **names;
	size_t n;
	char *manifest;
	char resolved[4][REPO_ID_LEN];
};

static void look(struct seen *out, struct repo *r, char ids[6][REPO_ID_LEN])
{
	static const char *const names[4] = {"odd", "odd~2", "v1", "msgw1~1"};
	size_t len = 0;
	int i;

	for (i = 0; i < 6; i++)
		assert_int_equal(repo_commit_info(&out->ci[i], r, ids[i]), 0);
	assert_int_equal(repo_tree_names(&out->names, &out->n, r, ids[0]), 0);
	assert_int_equal(repo_read(&out->manifest, &len, r, ids[5], "manifest"), 0);
	for (i = 0; i < 4; i++)
		if (repo_resolve(out->resolved[i], r, names[i]))
			fail_msg("resolve %s: %s", names[i], err_last());
}

static void test_files_read_as_libgit2_does(void **state)
{
	static const char *const msgs[6] = {"plain\n",
					    "  leading space, trailing  \t \n\nbody\n",
					    "\n\nafter blank lines\n",
					    "two\nlines in one paragraph\n",
					    "no newline at all",
					    ""};
	struct fixture *f = *state;
	char ids[6][REPO_ID_LEN];
	struct seen a, b;
	int i;

	for (i = 0; i < 6; i++)
		assert_int_equal(
		    commit_files(ids[i], f->r, "odd", "msgw-manifest 1\n", msgs[i], 1700001000 + i),
		    0);
	assert_int_equal(repo_tag(f->r, "v1", ids[2]), 0);
	look(&a, f->r, ids);
	assert_string_equal(a.ci[0].summary, "plain");
	assert_string_equal(a.ci[1].summary, "  leading space, trailing");
	assert_string_equal(a.ci[2].summary, "after blank lines");
	assert_string_equal(a.ci[3].summary, "two lines in one paragraph");
	assert_string_equal(a.ci[4].summary, "no newline at all");
	assert_string_equal(a.ci[5].summary, "");
	assert_int_equal(a.ci[3].time, 1700001003);
	assert_string_equal(a.ci[3].parent, ids[2]);
	assert_string_equal(a.resolved[0], ids[5]);
	assert_string_equal(a.resolved[1], ids[3]);
	assert_string_equal(a.resolved[2], ids[2]);
	assert_string_equal(a.resolved[3], f->ids[1]);

	test_run("git --git-dir='%s' pack-refs --all && git --git-dir='%s' repack -a -d -q && "
		 "git --git-dir='%s' prune-packed && test ! -e '%s/refs/heads/odd'",
		 f->path, f->path, f->path, f->path);
	repo_free(f->r);
	assert_int_equal(repo_open(&f->r, f->path), 0);
	look(&b, f->r, ids);
	for (i = 0; i < 6; i++) {
		assert_string_equal(a.ci[i].id, b.ci[i].id);
		assert_string_equal(a.ci[i].parent, b.ci[i].parent);
		assert_int_equal(a.ci[i].time, b.ci[i].time);
		assert_string_equal(a.ci[i].summary, b.ci[i].summary);
		repo_commit_info_release(&a.ci[i]);
		repo_commit_info_release(&b.ci[i]);
	}
	assert_int_equal(a.n, 3);
	assert_int_equal(b.n, 3);
	for (i = 0; i < 3; i++)
		assert_string_equal(a.names[i], b.names[i]);
	assert_string_equal(a.manifest, b.manifest);
	for (i = 0; i < 4; i++)
		assert_string_equal(a.resolved[i], b.resolved[i]);
	repo_names_free(a.names, a.n);
	repo_names_free(b.names, b.n);
	free(a.manifest);
	free(b.manifest);
}

/* An annotated tag (stock git's) and a symbolic ref are left to libgit2,
 * which peels and follows them; a missing name is not found. */
static void test_odd_refs_resolved_by_libgit2(void **state)
{
	struct fixture *f = *state;
	char id[REPO_ID_LEN];

	test_run("git --git-dir='%s' -c user.name=t -c user.email=t@t tag -a -m note ann %s && "
		 "git --git-dir='%s' symbolic-ref refs/heads/alias refs/heads/msgw1",
		 f->path, f->ids[0], f->path);
	assert_int_equal(repo_resolve(id, f->r, "ann"), 0);
	assert_string_equal(id, f->ids[0]);
	assert_int_equal(repo_resolve(id, f->r, "alias"), 0);
	assert_string_equal(id, f->ids[2]);
	assert_int_equal(repo_resolve(id, f->r, "nosuch"), MSGW_ENOTFOUND);
	assert_contains(err_last(), "no snapshot named 'nosuch'");
}

static void test_version(void **state)
{
	(void)state;
	assert_memory_equal(repo_version(), "libgit2 ", 8);
	assert_true(strlen(repo_version()) > 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_init, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_refuses_foreign_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_repository, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_and_read, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_log_and_branches, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_head_follows_first_branch, setup_history,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tags, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_prefix, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_blob_id, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_ambiguous, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_blob, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_from_fd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_archive_stored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_same, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_checks_sha1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_ref_lock_message, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_packed_fallback, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_loose_sound_pack, setup_history, teardown),
	    cmocka_unit_test_setup_teardown(test_files_read_as_libgit2_does, setup_history,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_odd_refs_resolved_by_libgit2, setup_history,
					    teardown),
	    cmocka_unit_test(test_version),
	};

	repo_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
