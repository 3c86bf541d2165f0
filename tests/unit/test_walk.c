/*
 * test_walk: a gateway's location turned into a manifest, on real
 * temporary trees seen through a spying file-access backend (the local one
 * underneath) that records every directory listed and file opened, and can
 * rewrite a file while it is being read.
 *
 * Covered: mailbox stores (mbx- and 32 hex digits, at the top and nested,
 * and mailbox-store patterns) never included, never listed, never opened,
 * whatever the include patterns say; exclude patterns, with no descent
 * where everything below is excluded; include patterns; symbolic links
 * recorded as links (never followed); empty directories; FIFOs skipped;
 * restore's internal names skipped; walk_classify; and consistent hashing
 * (walk_hash_entry) of files that change while they are read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "fsys.h"
#include "manifest.h"
#include "sha256.h"
#include "statcache.h"
#include "util.h"
#include "walk.h"
#include "test_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MBX1 "mbx-0123456789abcdef0123456789abcdef"
#define MBX2 "mbx-fedcba9876543210fedcba9876543210"

/* ---- a spying backend over the local one ---------------------------------- */

struct spy {
	struct fsys *inner;
	char *root;
	struct buf listed; /* "path\n" of every fsys_list */
	struct buf opened; /* "path\n" of every fsys_open_read */
	const char *grow;  /* append to this file on each read of it... */
	int grow_reads;	   /* ...this many times (-1: always) */
};

struct spy_fh {
	void *fh;
	char *path;
	bool grown; /* once per open, or a reader would never see the end */
};

static int s_stat(void *ctx, const char *path, struct fsys_stat *out)
{
	struct spy *s = ctx;

	return s->inner->ops->stat(s->inner->ctx, path, out);
}

static int s_list(void *ctx, const char *path, struct fsys_dirent **out, size_t *n_out)
{
	struct spy *s = ctx;

	buf_addf(&s->listed, "%s\n", path);
	return s->inner->ops->list(s->inner->ctx, path, out, n_out);
}

static int s_open_read(void *ctx, const char *path, void **out)
{
	struct spy *s = ctx;
	struct spy_fh *h = xcalloc(1, sizeof(*h));
	int rc;

	buf_addf(&s->opened, "%s\n", path);
	rc = s->inner->ops->open_read(s->inner->ctx, path, &h->fh);
	if (rc) {
		free(h);
		return rc;
	}
	h->path = xstrdup(path);
	*out = h;
	return 0;
}

static ssize_t s_read(void *ctx, void *fh, void *buf, size_t len)
{
	struct spy *s = ctx;
	struct spy_fh *h = fh;
	ssize_t n = s->inner->ops->read(s->inner->ctx, h->fh, buf, len);

	if (n > 0 && !h->grown && s->grow && strcmp(h->path, s->grow) == 0 && s->grow_reads != 0) {
		char *p = xasprintf("%s/%s", s->root, h->path);
		int fd = open(p, O_WRONLY | O_APPEND);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "+", 1), 1);
		close(fd);
		free(p);
		h->grown = true;
		if (s->grow_reads > 0)
			s->grow_reads--;
	}
	return n;
}

static int s_close(void *ctx, void *fh)
{
	struct spy *s = ctx;
	struct spy_fh *h = fh;
	int rc = s->inner->ops->close(s->inner->ctx, h->fh);

	free(h->path);
	free(h);
	return rc;
}

static int s_readlink(void *ctx, const char *path, char **out)
{
	struct spy *s = ctx;

	return s->inner->ops->readlink(s->inner->ctx, path, out);
}

static int s_uname(void *ctx, uint32_t uid, char *buf, size_t len)
{
	struct spy *s = ctx;

	return fsys_uname(s->inner, uid, buf, len);
}

static int s_gname(void *ctx, uint32_t gid, char *buf, size_t len)
{
	struct spy *s = ctx;

	return fsys_gname(s->inner, gid, buf, len);
}

static void s_free(void *ctx)
{
	struct spy *s = ctx;

	fsys_free(s->inner);
	buf_release(&s->listed);
	buf_release(&s->opened);
	free(s->root);
	free(s);
}

static const struct fsys_ops spy_ops = {
    .scheme = "spy",
    .stat = s_stat,
    .list = s_list,
    .open_read = s_open_read,
    .read = s_read,
    .close = s_close,
    .readlink = s_readlink,
    .uname = s_uname,
    .gname = s_gname,
    .free = s_free,
};

/* many folders at once (as SFTP's pipelined listing): each is recorded in
 * listed as the walk's own listings are, with a "*" before it */
static int s_list_many(void *ctx, const char *const *paths, size_t n, struct fsys_listing *out)
{
	struct spy *s = ctx;
	size_t i;

	for (i = 0; i < n; i++) {
		buf_addf(&s->listed, "*%s\n", paths[i]);
		out[i].ok =
		    s->inner->ops->list(s->inner->ctx, paths[i], &out[i].ents, &out[i].n) == 0;
	}
	return 0;
}

static struct fsys_ops spy_many_ops;

static struct fsys *spy_open(const char *root, struct spy **spy_out)
{
	struct fsys *fs = xcalloc(1, sizeof(*fs));
	struct spy *s = xcalloc(1, sizeof(*s));

	assert_int_equal(fsys_open_local(&s->inner, root), 0);
	s->root = xstrdup(root);
	buf_init(&s->listed);
	buf_init(&s->opened);
	fs->ops = &spy_ops;
	fs->ctx = s;
	fs->location = xstrdup(root);
	*spy_out = s;
	return fs;
}

/* ---- fixture --------------------------------------------------------------- */

struct fixture {
	char dir[PATH_MAX];
	struct fsys *fs;
	struct spy *spy;
	struct manifest m;
	struct walk_stats st;
};

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static void put(struct fixture *f, const char *rel, const char *text)
{
	char *p = xasprintf("%s/%s", f->dir, rel);
	char *slash = strrchr(p, '/');
	FILE *fp;

	/* parents first */
	for (char *q = strchr(p + strlen(f->dir) + 1, '/'); q && q <= slash;
	     q = strchr(q + 1, '/')) {
		*q = '\0';
		mkdir(p, 0755);
		*q = '/';
	}
	if (text) {
		fp = fopen(p, "w");
		assert_non_null(fp);
		fputs(text, fp);
		fclose(fp);
	} else {
		assert_int_equal(mkdir(p, 0755), 0);
	}
	free(p);
}

static void put_link(struct fixture *f, const char *rel, const char *target)
{
	char *p = xasprintf("%s/%s", f->dir, rel);

	assert_int_equal(symlink(target, p), 0);
	free(p);
}

/* The gateway every test starts from. */
static void make_gateway(struct fixture *f)
{
	put(f, "Gateway.json", "{}\n");
	put(f, "Certificates/gateway.pem", "pem\n");
	put(f, "Templates/bounce.txt", "bounce\n");
	put(f, "Templates/old.bak", "old\n");
	put(f, "Logs/gateway.log", "log\n");
	put(f, "Logs/2026/11.log", "log\n");
	put(f, MBX1 "/0001.msg", "mail\n");
	put(f, MBX1 "/sub/0002.msg", "mail\n");
	put(f, MBX2, NULL); /* an empty store */
	put(f, "Stores/" MBX1 "/0003.msg", "mail\n");
	put(f, "a/b/" MBX2 "/0004.msg", "mail\n");
	put(f, "a/b/keep.txt", "keep\n");
	put(f, "Empty", NULL);
	put(f, "Nested/Empty", NULL);
	put(f, "mbx-0123456789abcdef0123456789abcde/short.txt", "31 digits\n");
	put(f, "mbx-0123456789abcdef0123456789abcdef0/long.txt", "33 digits\n");
	put(f, "mbx-0123456789abcdef0123456789abcdeg/nothex.txt", "g\n");
	put(f, "not-a-store-" MBX1, NULL);
	put(f, "files/" MBX2, "a file named like a mailbox\n");
	put_link(f, "current", "Templates/bounce.txt");
	put_link(f, "dirlink", "Templates");
	put_link(f, "dangling", "does/not/exist");
	put_link(f, "outside", "/etc/passwd");
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_walk.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, f->dir));
	make_gateway(f);
	f->fs = spy_open(f->dir, &f->spy);
	manifest_init(&f->m);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	manifest_release(&f->m);
	fsys_free(f->fs);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static void walk(struct fixture *f, const struct walk_rules *rules)
{
	manifest_release(&f->m);
	if (walk_location(&f->m, f->fs, rules, &f->st))
		fail_msg("walk_location: %s", err_last());
}

/* The manifest's paths, one per line. */
static char *paths(const struct manifest *m)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	for (i = 0; i < m->n; i++)
		buf_addf(&b, "%c %s\n", m->e[i].type, m->e[i].path);
	return buf_detach(&b, NULL);
}

static void assert_paths(const struct manifest *m, const char *want)
{
	char *got = paths(m);

	if (strcmp(got, want) != 0)
		fail_msg("manifest paths:\n%s\nexpected:\n%s", got, want);
	free(got);
}

/* ---- tests ------------------------------------------------------------------ */

/* Walk f's gateway with a backend that lists many folders at once: the
 * manifest text it gives (ids and hashes included). */
static char *walk_text(struct fixture *f, const struct walk_rules *rules, bool many)
{
	struct manifest m;
	char *text = NULL;
	size_t len;

	f->fs->ops = many ? &spy_many_ops : &spy_ops;
	buf_release(&f->spy->listed);
	buf_init(&f->spy->listed);
	assert_int_equal(walk_location(&m, f->fs, rules, NULL), 0);
	assert_int_equal(walk_hash(&m, f->fs, NULL), 0);
	manifest_format(&text, &len, &m);
	manifest_release(&m);
	return text;
}

/* Neither a store directory nor anything below one. */
static void assert_no_store(const struct manifest_entry *e)
{
	char *copy = xstrdup(e->path), *comp, *save = NULL;
	bool last;

	for (comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		last = strlen(comp) == strlen(e->path) - (size_t)(comp - copy);
		if (walk_is_mailbox_name(comp) && (!last || e->type == 'd'))
			fail_msg("manifest holds '%s', a mailbox store", e->path);
	}
	free(copy);
}

static void test_mailbox_names(void **state)
{
	static const struct {
		const char *name;
		bool store;
	} cases[] = {
	    {MBX1, true},
	    {MBX2, true},
	    {"mbx-0123456789ABCDEF0123456789ABCDEF", true},
	    {"mbx-0123456789abcdef0123456789abcde", false},
	    {"mbx-0123456789abcdef0123456789abcdef0", false},
	    {"mbx-0123456789abcdef0123456789abcdeg", false},
	    {"mbx_0123456789abcdef0123456789abcdef", false},
	    {"MBX-0123456789abcdef0123456789abcdef", false},
	    {"xmbx-0123456789abcdef0123456789abcdef", false},
	    {"mbx-", false},
	    {"mbx", false},
	    {"", false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		if (walk_is_mailbox_name(cases[i].name) != cases[i].store)
			fail_msg("walk_is_mailbox_name('%s') != %d", cases[i].name, cases[i].store);
}

static void test_default_walk(void **state)
{
	struct fixture *f = *state;

	walk(f, &(struct walk_rules){0});
	assert_paths(&f->m, "d Certificates\n"
			    "f Certificates/gateway.pem\n"
			    "d Empty\n"
			    "f Gateway.json\n"
			    "d Logs\n"
			    "d Logs/2026\n"
			    "f Logs/2026/11.log\n"
			    "f Logs/gateway.log\n"
			    "d Nested\n"
			    "d Nested/Empty\n"
			    "d Stores\n"
			    "d Templates\n"
			    "f Templates/bounce.txt\n"
			    "f Templates/old.bak\n"
			    "d a\n"
			    "d a/b\n"
			    "f a/b/keep.txt\n"
			    "l current\n"
			    "l dangling\n"
			    "l dirlink\n"
			    "d files\n"
			    "f files/" MBX2 "\n"
			    "d mbx-0123456789abcdef0123456789abcde\n"
			    "f mbx-0123456789abcdef0123456789abcde/short.txt\n"
			    "d mbx-0123456789abcdef0123456789abcdef0\n"
			    "f mbx-0123456789abcdef0123456789abcdef0/long.txt\n"
			    "d mbx-0123456789abcdef0123456789abcdeg\n"
			    "f mbx-0123456789abcdef0123456789abcdeg/nothex.txt\n"
			    "d not-a-store-" MBX1 "\n"
			    "l outside\n");
	assert_int_equal(f->st.stores, 4);
	assert_int_equal(f->st.links, 4);
	assert_int_equal(f->st.files, 11);
	assert_int_equal(f->st.excluded, 0);
}

/* Stores are recognised by name alone: never listed, never opened. */
static void test_stores_never_touched(void **state)
{
	struct fixture *f = *state;
	size_t i;

	walk(f, &(struct walk_rules){0});
	assert_int_equal(walk_hash(&f->m, f->fs, NULL), 0);
	for (i = 0; i < f->m.n; i++)
		assert_no_store(&f->m.e[i]);
	/* the root is listed first, as "\n": every listed path is "\npath\n" */
	assert_memory_equal(f->spy->listed.data, "\n", 1);
	assert_null(strstr(f->spy->listed.data, "\n" MBX1 "\n"));
	assert_null(strstr(f->spy->listed.data, "\n" MBX2 "\n"));
	assert_null(strstr(f->spy->listed.data, "/" MBX1 "\n"));
	assert_null(strstr(f->spy->listed.data, "/" MBX2 "\n"));
	assert_null(strstr(f->spy->listed.data, MBX1 "/"));
	assert_contains(f->spy->listed.data, "\nnot-a-store-" MBX1 "\n");
	assert_null(strstr(f->spy->opened.data, ".msg"));
	assert_contains(f->spy->listed.data, "a/b\n");
	assert_contains(f->spy->opened.data, "Gateway.json\n");
}

/* Include patterns cannot bring a store back. */
static void test_include_cannot_reach_stores(void **state)
{
	char *const include[] = {"**", MBX1 "/**", "**/" MBX2 "/**", MBX2, NULL};
	struct fixture *f = *state;
	char *got;
	size_t i;

	walk(f, &(struct walk_rules){.include = include});
	for (i = 0; i < f->m.n; i++)
		assert_no_store(&f->m.e[i]);
	got = paths(&f->m);
	assert_contains(got, "f files/" MBX2 "\n"); /* only directories are stores */
	free(got);
	assert_int_equal(f->st.stores, 4);
}

static void test_mailbox_store_patterns(void **state)
{
	char *const stores[] = {"Stores", "Archive/*", NULL};
	struct fixture *f = *state;
	char *got;

	put(f, "Archive/2025/x.msg", "x\n");
	put(f, "Archive/index.txt", "index\n");
	walk(f, &(struct walk_rules){.mailbox_store = stores});
	got = paths(&f->m);
	assert_null(strstr(got, "Stores"));
	assert_null(strstr(got, "Archive/2025"));
	assert_contains(got, "d Archive\n");
	assert_contains(got, "f Archive/index.txt\n"); /* a file is never a store */
	free(got);
	assert_null(strstr(f->spy->listed.data, "Stores"));
	assert_null(strstr(f->spy->listed.data, "Archive/2025"));
	assert_int_equal(f->st.stores, 5);
}

/* A directory with many subdirectories is walked on two threads (local file
 * systems only): the manifest and the counts are those of a walk on one
 * thread (the spy backend never splits), complete and sorted, the stores
 * and excluded directories among them still untouched. */
static void test_many_subdirectories(void **state)
{
	char *const exclude[] = {"Domains/d07", NULL};
	struct fixture *f = *state;
	struct walk_rules rules = {.exclude = exclude};
	struct walk_stats st;
	struct fsys *fs = NULL;
	struct manifest m;
	char rel[128], *one, *two;
	size_t k;
	int i;

	for (i = 0; i < 40; i++) {
		snprintf(rel, sizeof(rel), "Domains/d%02d/cert.pem", i);
		put(f, rel, "cert\n");
		snprintf(rel, sizeof(rel), "Domains/d%02d/Templates/t-%d.txt", i, i);
		put(f, rel, "template\n");
	}
	put(f, "Domains/mbx-0123456789abcdef0123456789abcdef/1.msg", "mail\n");
	put(f, "Domains/mbx-fedcba9876543210fedcba9876543210/2.msg", "mail\n");
	walk(f, &rules); /* one thread */
	assert_int_equal(fsys_open_local(&fs, f->dir), 0);
	assert_int_equal(walk_location(&m, fs, &rules, &st), 0); /* two */
	one = paths(&f->m);
	two = paths(&m);
	assert_string_equal(two, one);
	assert_non_null(strstr(two, "f Domains/d39/cert.pem\n"));
	assert_null(strstr(two, "Domains/d07"));
	assert_null(strstr(two, "Domains/mbx-"));
	for (k = 1; k < m.n; k++)
		assert_true(strcmp(m.e[k - 1].path, m.e[k].path) < 0);
	assert_int_equal(st.files, f->st.files);
	assert_int_equal(st.dirs, f->st.dirs);
	assert_int_equal(st.stores, f->st.stores);
	assert_int_equal(st.excluded, f->st.excluded);
	assert_int_equal(st.bytes, f->st.bytes);
	assert_true(st.files >= 78);
	free(one);
	free(two);
	manifest_release(&m);
	fsys_free(fs);
}

/* Folders listed ahead, a level at a time: the same manifest as one folder
 * at a time, every folder the walk enters listed ahead and once, never a
 * store nor a folder whose every path is excluded. */
static void test_prelist(void **state)
{
	char *const exclude[] = {"Logs/**", "Nested", NULL};
	struct walk_rules rules = {.exclude = exclude};
	struct fixture *f = *state;
	char *one = walk_text(f, &rules, false), *many = walk_text(f, &rules, true);
	const char *l = f->spy->listed.data;

	assert_string_equal(one, many);
	assert_memory_equal(l, "*\n", 2); /* the root first */
	assert_contains(l, "*a/b\n");
	assert_contains(l, "*Templates\n");
	assert_null(strstr(l, "\n\n")); /* the walk listed nothing itself */
	assert_null(strstr(l, "\na/b\n"));
	assert_null(strstr(l, "*" MBX1 "\n"));
	assert_null(strstr(l, "*" MBX2 "\n"));
	assert_null(strstr(l, "/" MBX1 "\n"));
	assert_null(strstr(l, "/" MBX2 "\n"));
	assert_contains(l, "*not-a-store-" MBX1 "\n");
	assert_null(strstr(l, "Logs"));
	assert_null(strstr(l, "Nested"));
	free(one);
	free(many);
}

static void test_exclude(void **state)
{
	char *const exclude[] = {"Logs/**", "**/*.bak", "Nested", "a/*/keep.txt", NULL};
	struct fixture *f = *state;
	char *got;

	walk(f, &(struct walk_rules){.exclude = exclude});
	got = paths(&f->m);
	assert_contains(got, "d Logs\n"); /* the directory itself stays */
	assert_null(strstr(got, "Logs/"));
	assert_null(strstr(got, ".bak"));
	assert_null(strstr(got, "Nested"));
	assert_null(strstr(got, "keep.txt"));
	assert_contains(got, "d a/b\n"); /* an empty directory: kept */
	assert_contains(got, "f Templates/bounce.txt\n");
	free(got);
	/* no descent where everything below is excluded */
	assert_null(strstr(f->spy->listed.data, "Logs"));
	assert_null(strstr(f->spy->listed.data, "Nested"));
	assert_int_equal(f->st.excluded, 3); /* old.bak, Nested, keep.txt: Logs is not entered */
}

static void test_include(void **state)
{
	char *const include[] = {"Gateway.json", "Templates/**", "Empty", NULL};
	struct fixture *f = *state;

	walk(f, &(struct walk_rules){.include = include});
	assert_paths(&f->m, "d Empty\n"
			    "f Gateway.json\n"
			    "d Templates\n"
			    "f Templates/bounce.txt\n"
			    "f Templates/old.bak\n");
}

static void test_symlinks(void **state)
{
	struct fixture *f = *state;
	const struct manifest_entry *e;
	unsigned char sha[SHA256_LEN];

	walk(f, &(struct walk_rules){0});
	assert_int_equal(walk_hash(&f->m, f->fs, NULL), 0);

	e = manifest_find(&f->m, "current");
	assert_non_null(e);
	assert_int_equal(e->type, 'l');
	assert_string_equal(e->link, "Templates/bounce.txt");
	assert_int_equal(e->size, strlen("Templates/bounce.txt"));
	sha256_buf(sha, "Templates/bounce.txt", strlen("Templates/bounce.txt"));
	assert_memory_equal(e->sha, sha, SHA256_LEN);

	/* a link to a directory is not followed */
	e = manifest_find(&f->m, "dirlink");
	assert_int_equal(e->type, 'l');
	assert_string_equal(e->link, "Templates");
	assert_null(manifest_find(&f->m, "dirlink/bounce.txt"));
	assert_null(strstr(f->spy->listed.data, "dirlink"));

	e = manifest_find(&f->m, "dangling");
	assert_int_equal(e->type, 'l');
	assert_string_equal(e->link, "does/not/exist");
	e = manifest_find(&f->m, "outside");
	assert_string_equal(e->link, "/etc/passwd");
	/* link targets are never opened */
	assert_null(strstr(f->spy->opened.data, "current"));
	assert_null(strstr(f->spy->opened.data, "outside"));
}

static void test_empty_dirs(void **state)
{
	char *const include[] = {"Templates/**", "Nested/**", NULL};
	struct fixture *f = *state;
	const struct manifest_entry *e;

	walk(f, &(struct walk_rules){0});
	e = manifest_find(&f->m, "Empty");
	assert_non_null(e);
	assert_int_equal(e->type, 'd');
	assert_int_equal(e->size, 0);
	assert_int_equal(e->mode, 0755);
	assert_non_null(manifest_find(&f->m, "Nested/Empty"));

	/* nobody asked for Empty: dropped; Nested/Empty is below an include */
	walk(f, &(struct walk_rules){.include = include});
	assert_null(manifest_find(&f->m, "Empty"));
	assert_non_null(manifest_find(&f->m, "Nested/Empty"));
	assert_non_null(manifest_find(&f->m, "Nested"));
}

static void test_entry_metadata(void **state)
{
	struct fixture *f = *state;
	char *p = xasprintf("%s/Certificates/gateway.pem", f->dir);
	const struct manifest_entry *e;
	struct stat st;

	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(lstat(p, &st), 0);
	free(p);
	walk(f, &(struct walk_rules){0});
	e = manifest_find(&f->m, "Certificates/gateway.pem");
	assert_int_equal(e->type, 'f');
	assert_int_equal(e->mode, 0600);
	assert_int_equal(e->size, 4);
	assert_int_equal(e->uid, st.st_uid);
	assert_int_equal(e->gid, st.st_gid);
	assert_int_equal(e->mtime, st.st_mtim.tv_sec);
	assert_int_equal(e->mtime_nsec, st.st_mtim.tv_nsec);
	assert_int_equal(e->ino, st.st_ino);
	{
		uint64_t bytes = 0;
		size_t i;

		for (i = 0; i < f->m.n; i++)
			bytes += f->m.e[i].type == 'f' ? f->m.e[i].size : 0;
		assert_int_equal(f->st.bytes, bytes);
		assert_true(bytes > 0);
	}
}

static void test_fifo_skipped(void **state)
{
	struct fixture *f = *state;
	char *p = xasprintf("%s/Templates/pipe", f->dir);

	assert_int_equal(mkfifo(p, 0600), 0);
	free(p);
	walk(f, &(struct walk_rules){0});
	assert_null(manifest_find(&f->m, "Templates/pipe"));
	assert_int_equal(f->st.skipped, 1);
	assert_int_equal(walk_hash(&f->m, f->fs, NULL), 0); /* and never opened */
}

static void test_internal_names_skipped(void **state)
{
	struct fixture *f = *state;

	put(f, "Gateway.json" WALK_NEW_SUFFIX, "staged\n");
	put(f, "Templates/bounce.txt" WALK_OLD_SUFFIX, "old\n");
	put(f, WALK_JOURNAL_NAME, "journal\n");
	put(f, WALK_JOURNAL_NAME ".msgw-tmp.4242", "a killed run's temporary file\n");
	put(f, "Templates/a.txt.msgw-new.Xy12Ab", "a random-suffixed staged file\n");
	walk(f, &(struct walk_rules){0});
	assert_null(manifest_find(&f->m, WALK_JOURNAL_NAME ".msgw-tmp.4242"));
	assert_null(manifest_find(&f->m, "Templates/a.txt.msgw-new.Xy12Ab"));
	assert_int_equal(f->st.internal, 5); /* counted, so a restore can stop */
	assert_null(manifest_find(&f->m, "Gateway.json" WALK_NEW_SUFFIX));
	assert_null(manifest_find(&f->m, "Templates/bounce.txt" WALK_OLD_SUFFIX));
	assert_null(manifest_find(&f->m, WALK_JOURNAL_NAME));
	assert_non_null(manifest_find(&f->m, "Gateway.json"));
}

static void test_classify(void **state)
{
	char *const include[] = {"Gateway.json", "Templates/**", NULL};
	char *const exclude[] = {"Logs/**", "**/*.bak", NULL};
	char *const stores[] = {"Stores/*", NULL};
	struct walk_rules r = {.include = include, .exclude = exclude, .mailbox_store = stores};
	static const struct {
		const char *path;
		bool dir;
		enum walk_class c;
	} cases[] = {
	    {MBX1, true, WALK_STORE},
	    {"x/y/" MBX1, true, WALK_STORE},
	    {MBX1, false, WALK_EXCLUDED}, /* a file, and not included */
	    {"Stores/a", true, WALK_STORE},
	    {"Stores", true, WALK_CONFIG},
	    {"Logs", true, WALK_CONFIG},
	    {"Logs/a.log", false, WALK_EXCLUDED},
	    {"Logs/x/y", true, WALK_EXCLUDED},
	    {"Templates/a.bak", false, WALK_EXCLUDED},
	    {"Templates/a.txt", false, WALK_CONFIG},
	    {"Templates/sub/a.txt", false, WALK_CONFIG},
	    {"Gateway.json", false, WALK_CONFIG},
	    {"Other.json", false, WALK_EXCLUDED},
	    {"Other", true, WALK_CONFIG},
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		if (walk_classify(&r, cases[i].path, cases[i].dir) != cases[i].c)
			fail_msg("walk_classify('%s', %d) = %d, expected %d", cases[i].path,
				 cases[i].dir, walk_classify(&r, cases[i].path, cases[i].dir),
				 cases[i].c);
	assert_true(walk_is_store(&r, "Stores/x"));
	assert_true(walk_is_store(&r, "a/" MBX2));
	assert_false(walk_is_store(&r, "Stores"));
}

/* The walk matches only each entry's own path against the patterns (it
 * knows its directories are not excluded and whether one is included):
 * it must take exactly the files and links walk_classify, which looks at
 * every parent, calls configuration, for include patterns naming
 * directories above the files and excludes at several depths. */
static void test_walk_agrees_with_classify(void **state)
{
	static const char *const files[] = {
	    "Gateway.json",
	    "Certificates/gateway.pem",
	    "Templates/bounce.txt",
	    "Templates/old.bak",
	    "Logs/gateway.log",
	    "Logs/2026/11.log",
	    "a/b/keep.txt",
	    "mbx-0123456789abcdef0123456789abcde/short.txt",
	    "mbx-0123456789abcdef0123456789abcdef0/long.txt",
	    "files/" MBX2,
	    "current",
	    "dirlink",
	};
	char *const inc1[] = {"Templates", "a", NULL};
	char *const inc2[] = {"Logs/2026", "Gateway.json", NULL};
	char *const exc2[] = {"Logs/2026/*.log", NULL};
	char *const exc3[] = {"a/b", "**/*.bak", "files/*", NULL};
	char *const inc4[] = {"Templates/**", "files", "mbx-*/**", NULL};
	char *const exc4[] = {"Certificates", "Templates/*.txt", NULL};
	const struct walk_rules rules[] = {
	    {.include = inc1},
	    {.include = inc2, .exclude = exc2},
	    {.exclude = exc3},
	    {.include = inc4, .exclude = exc4},
	};
	struct fixture *f = *state;
	size_t r, i;

	for (r = 0; r < ARRAY_SIZE(rules); r++) {
		size_t taken = 0;

		walk(f, &rules[r]);
		for (i = 0; i < ARRAY_SIZE(files); i++) {
			bool want = walk_classify(&rules[r], files[i], false) == WALK_CONFIG;
			bool got = manifest_find(&f->m, files[i]) != NULL;

			if (want != got)
				fail_msg(
				    "rules %zu: '%s' %s by the walk, but walk_classify says %s", r,
				    files[i], got ? "taken" : "left", want ? "take" : "leave");
			taken += got;
		}
		assert_true(taken > 0 && taken < ARRAY_SIZE(files));
	}
}

static void test_bad_location(void **state)
{
	struct fixture *f = *state;
	struct fsys *fs = NULL;
	char *p = xasprintf("%s/nothing", f->dir);

	assert_int_equal(fsys_open_local(&fs, p), 0);
	assert_true(walk_location(&f->m, fs, &(struct walk_rules){0}, NULL) < 0);
	assert_contains(err_last(), p);
	assert_int_equal(f->m.n, 0);
	fsys_free(fs);
	free(p);

	p = xasprintf("%s/Gateway.json", f->dir);
	assert_int_equal(fsys_open_local(&fs, p), 0);
	assert_int_equal(walk_location(&f->m, fs, &(struct walk_rules){0}, NULL), MSGW_ERR);
	assert_contains(err_last(), "is not a directory");
	fsys_free(fs);
	free(p);
}

/* ---- consistent hashing ------------------------------------------------------ */

static void test_hash(void **state)
{
	struct fixture *f = *state;
	const struct manifest_entry *e;
	unsigned char sha[SHA256_LEN];

	walk(f, &(struct walk_rules){0});
	assert_int_equal(walk_hash(&f->m, f->fs, NULL), 0);
	e = manifest_find(&f->m, "Templates/bounce.txt");
	sha256_buf(sha, "bounce\n", 7);
	assert_memory_equal(e->sha, sha, SHA256_LEN);
	e = manifest_find(&f->m, "Empty");
	memset(sha, 0, sizeof(sha));
	assert_memory_equal(e->sha, sha, SHA256_LEN); /* directories: zero */
}

/* A file that grows on every read is never hashed half-way. */
static void test_hash_file_keeps_changing(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *e;

	walk(f, &(struct walk_rules){0});
	f->spy->grow = "Gateway.json";
	f->spy->grow_reads = -1;
	e = (struct manifest_entry *)manifest_find(&f->m, "Gateway.json");
	assert_int_equal(walk_hash_entry(e, f->fs), MSGW_ECHANGING);
	assert_string_equal(err_last(), "'Gateway.json' kept changing while it was read");
	assert_int_equal(walk_hash(&f->m, f->fs, NULL), MSGW_ECHANGING);
}

/* One that changes once is read again and hashed as it is now. */
static void test_hash_file_changes_once(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *e;
	unsigned char sha[SHA256_LEN];

	walk(f, &(struct walk_rules){0});
	f->spy->grow = "Gateway.json";
	f->spy->grow_reads = 1;
	e = (struct manifest_entry *)manifest_find(&f->m, "Gateway.json");
	assert_int_equal(e->size, 3);
	assert_int_equal(walk_hash_entry(e, f->fs), 0);
	sha256_buf(sha, "{}\n+", 4);
	assert_memory_equal(e->sha, sha, SHA256_LEN);
	assert_int_equal(e->size, 4);
}

/* The tool's own temporary names, leftovers of a killed run included, are
 * never part of a walk; names that only look alike are. */
static void test_internal_names(void **state)
{
	static const char *const internal[] = {
	    ".msgw-journal",
	    ".msgw-journal.msgw-tmp.4242",
	    ".msgw-journal-x",
	    "Gateway.json.msgw-new",
	    "Gateway.json.msgw-old",
	    "Gateway.json.msgw-tmp.77",
	    "a.msgw-tmp",
	    "x.msgw-newer",
	    ".msgw-new",
	};
	static const char *const user[] = {
	    "msgw-journal", "Gateway.json", "msgw-tmp", ".Gateway.json.tmp-XXXX", "x.msgw",
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(internal); i++)
		if (!walk_is_internal_name(internal[i]))
			fail_msg("'%s' should be internal", internal[i]);
	for (i = 0; i < ARRAY_SIZE(user); i++)
		if (walk_is_internal_name(user[i]))
			fail_msg("'%s' should not be internal", user[i]);
}

static void test_hash_file_vanished(void **state)
{
	struct fixture *f = *state;
	char *p = xasprintf("%s/Gateway.json", f->dir);

	size_t n;

	walk(f, &(struct walk_rules){0});
	n = f->m.n;
	assert_non_null(manifest_find(&f->m, "Gateway.json"));
	assert_int_equal(unlink(p), 0);
	free(p);
	/* left out with a warning, as tar's "file removed before we read it" */
	assert_int_equal(walk_hash(&f->m, f->fs, NULL), 0);
	assert_int_equal(f->m.n, n - 1);
	assert_null(manifest_find(&f->m, "Gateway.json"));
}

static void test_hash_file_became_dir(void **state)
{
	struct fixture *f = *state;
	char *p = xasprintf("%s/Gateway.json", f->dir);
	struct manifest_entry *e;

	walk(f, &(struct walk_rules){0});
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
	e = (struct manifest_entry *)manifest_find(&f->m, "Gateway.json");
	assert_int_equal(walk_hash_entry(e, f->fs), MSGW_ECHANGING);
	assert_contains(err_last(), "'Gateway.json' changed type");
}

/* With a stat cache that knows a file, the file is not read at all. */
static void test_hash_uses_statcache(void **state)
{
	struct fixture *f = *state;
	struct statcache *c = NULL;
	struct timespec old[2] = {{1600000000, 0}, {1600000000, 0}};
	char *cache = xasprintf("%s/cache", f->dir);
	char *p = xasprintf("%s/Gateway.json", f->dir);
	unsigned char sha[SHA256_LEN];
	const struct manifest_entry *e;

	struct stat st;

	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	/* ctime is now; the cache only trusts entries two seconds old */
	assert_int_equal(stat(p, &st), 0);
	while (time(NULL) < st.st_ctime + 3)
		usleep(50000);
	walk(f, &(struct walk_rules){0});
	assert_int_equal(statcache_open(&c, cache), 0);
	assert_int_equal(walk_hash(&f->m, f->fs, c), 0);
	assert_int_equal(statcache_save(c), 0);
	statcache_free(c);

	buf_release(&f->spy->opened);
	buf_init(&f->spy->opened);
	walk(f, &(struct walk_rules){0});
	assert_int_equal(statcache_open(&c, cache), 0);
	assert_int_equal(walk_hash(&f->m, f->fs, c), 0);
	statcache_free(c);
	assert_null(strstr(f->spy->opened.data, "Gateway.json"));
	e = manifest_find(&f->m, "Gateway.json");
	sha256_buf(sha, "{}\n", 3);
	assert_memory_equal(e->sha, sha, SHA256_LEN);
	free(cache);
	free(p);
}

int main(void)
{
	spy_many_ops = spy_ops;
	spy_many_ops.list_many = s_list_many;
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_internal_names),
	    cmocka_unit_test(test_mailbox_names),
	    T(test_default_walk),
	    T(test_stores_never_touched),
	    T(test_include_cannot_reach_stores),
	    T(test_mailbox_store_patterns),
	    T(test_many_subdirectories),
	    T(test_exclude),
	    T(test_prelist),
	    T(test_include),
	    T(test_symlinks),
	    T(test_empty_dirs),
	    T(test_entry_metadata),
	    T(test_fifo_skipped),
	    T(test_internal_names_skipped),
	    cmocka_unit_test(test_classify),
	    cmocka_unit_test_setup_teardown(test_walk_agrees_with_classify, setup, teardown),
	    T(test_bad_location),
	    T(test_hash),
	    T(test_hash_file_keeps_changing),
	    T(test_hash_file_changes_once),
	    T(test_hash_file_vanished),
	    T(test_hash_file_became_dir),
	    T(test_hash_uses_statcache),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
