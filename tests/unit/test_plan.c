/*
 * test_plan: plan.c's refusals.  Entry names (reserved *.msgw-* names,
 * mailbox names); links resolved through the snapshot's own links and
 * folders (chains, links named before the link they go through, loops, up
 * out of a folder the snapshot lacks, into a store, and the legitimate
 * kinds); archives crafted in memory with libarchive against the shared
 * check (max-file-size and max-total-size before a byte is
 * read, entries in a store found by pattern, modes stripped and listed,
 * links handed on only at the end); and plan_build against a target
 * reached through a fake file-access table (our own boundary: the local
 * backend with one operation replaced) that plants a leftover of an
 * earlier restore, with a real repository and snapshots: the leftover
 * stops the plan naming recover, a file added under a preserved path is
 * not target-diverged, a pattern store is listed by its path with no
 * mailbox-removed, and a snapshot entry in it is refused.  (Sparse
 * entries: t3040-hostile.sh's "sparse" cases, crafted with a GNU sparse
 * map libarchive's writer does not make.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "fsys.h"
#include "plan.h"
#include "repo.h"
#include "sha256.h"
#include "snapshot.h"
#include "util.h"
#include "test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>
#include <unistd.h>

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

/* ---- names ------------------------------------------------------------- */

static void test_entry_names(void **state)
{
	static const char *const reserved[] = {
	    "Gateway.json.msgw-old",	 "a/b.msgw-new",	 ".msgw-journal",
	    ".msgw-journal.msgw-tmp.12", "Templates.msgw-new/x", "x.msgw-tmp.A1b2C3",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(reserved) / sizeof(*reserved); i++) {
		assert_int_equal(plan_check_entry_name(reserved[i], 'f', NULL), MSGW_EHOSTILE);
		assert_contains(err_last(), "reserves for its own files");
		assert_true(plan_is_reserved_name(strrchr(reserved[i], '/')
						      ? strrchr(reserved[i], '/') + 1
						      : reserved[i]) ||
			    strchr(reserved[i], '/'));
	}
	assert_int_equal(
	    plan_check_entry_name("Stores/mbx-0123456789abcdef0123456789abcdef/m", 'f', NULL),
	    MSGW_EHOSTILE);
	assert_contains(err_last(), "in a mailbox store");
	assert_int_equal(plan_check_entry_name("msgw-notes.txt", 'f', NULL), 0);
	assert_int_equal(plan_check_entry_name("a.msgw", 'f', NULL), 0);
	assert_int_equal(plan_check_entry_name("Templates/x", 'l', "../Gateway.json"), 0);
	assert_false(plan_is_reserved_name("Gateway.json"));
}

/* ---- links ------------------------------------------------------------- */

/* A manifest from "type path [link]" lines (sorted), sizes and hashes
 * made up: plan_check_links reads types, paths and link targets only. */
static void make_manifest(struct manifest *m, const char *const *lines)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	buf_adds(&b, "msgw-manifest 1\n");
	for (i = 0; lines[i]; i++) {
		char type = lines[i][0];
		const char *path = lines[i] + 2, *sp = strchr(path, ' ');

		buf_addf(&b, "%c %s 0 0 0 %s %.*s\n", type, type == 'd' ? "0755" : "0644",
			 type == 'd'
			     ? "-"
			     : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			 sp ? (int)(sp - path) : (int)strlen(path), path);
	}
	assert_int_equal(manifest_parse(m, b.data, b.len), 0);
	for (i = 0; lines[i]; i++) {
		const char *path = lines[i] + 2, *sp = strchr(path, ' ');
		char *p = xasprintf("%.*s", sp ? (int)(sp - path) : (int)strlen(path), path);
		struct manifest_entry *e = (struct manifest_entry *)manifest_find(m, p);

		assert_non_null(e);
		if (sp)
			e->link = xstrdup(sp + 1);
		free(p);
	}
	buf_release(&b);
}

static int links_of(const char *const *lines, char *const *stores)
{
	char *const *const pats[2] = {stores, NULL};
	struct manifest m;
	int rc;

	make_manifest(&m, lines);
	rc = plan_check_links(&m, pats);
	manifest_release(&m);
	return rc;
}

static void test_links_refused(void **state)
{
	static const char *const chain[] = {"d d", "l d/up ..",
					    "l x d/up/d/up/../../../../etc/passwd", NULL};
	static const char *const forward[] = {"l a zz/..", "l zz .", NULL};
	static const char *const loop[] = {"l a b", "l b a", NULL};
	static const char *const unknown[] = {"l x Nothing/../Gateway.json", NULL};
	static const char *const file_up[] = {"f Gateway.json", "l x Gateway.json/../..", NULL};
	static const char *const store[] = {"l x mbx-0123456789abcdef0123456789abcdef/1.msg", NULL};
	static const char *const via[] = {"d Stores", "l s Stores", "l x s/x1/m", NULL};
	static const char *const deep_abs[] = {"l a b/c", "l b /etc", NULL};
	char *const pats[] = {"Stores/*", NULL};

	(void)state;
	assert_int_equal(links_of(chain, NULL), MSGW_EHOSTILE);
	assert_contains(err_last(), "refusing link 'x': target 'd/up/d/up/../../../../etc/passwd' "
				    "leaves the destination");
	assert_int_equal(links_of(forward, NULL), MSGW_EHOSTILE);
	assert_contains(err_last(), "refusing link 'a'");
	assert_int_equal(links_of(loop, NULL), MSGW_EHOSTILE);
	assert_contains(err_last(), "too many links");
	assert_int_equal(links_of(unknown, NULL), MSGW_EHOSTILE);
	assert_contains(err_last(), "goes up out of 'Nothing', which is not a folder");
	assert_int_equal(links_of(file_up, NULL), MSGW_EHOSTILE);
	assert_contains(err_last(), "goes up out of 'Gateway.json'");
	assert_int_equal(links_of(store, NULL), MSGW_EHOSTILE);
	assert_contains(err_last(), "lies in a mailbox store");
	assert_int_equal(links_of(via, NULL), 0);
	assert_int_equal(links_of(via, pats), MSGW_EHOSTILE);
	assert_contains(err_last(), "('Stores/x1/m')");
	assert_int_equal(links_of(deep_abs, NULL), MSGW_EHOSTILE);
	assert_contains(err_last(), "goes through 'b', whose target is absolute");
}

static void test_links_accepted(void **state)
{
	static const char *const ok[] = {
	    "d Conf",
	    "f Conf/a.json",
	    "l Conf/cur a.json",
	    "l Conf/up ..",
	    "l Conf/via up/Conf/cur", /* a chain that stays inside */
	    "l dangling Missing/file",
	    "l here .",
	    "l t2 Conf/up/Templates/x", /* through a link, then into the unknown */
	    NULL,
	};

	(void)state;
	assert_int_equal(links_of(ok, NULL), 0);
}

/* ---- the shared check over crafted archives ---------------------------- */

struct craft {
	struct archive *a;
	struct buf man;
	char *out;
	size_t cap, used;
};

static void craft_start(struct craft *c)
{
	c->cap = 1 << 20;
	c->out = xmalloc(c->cap);
	c->used = 0;
	c->a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax(c->a), ARCHIVE_OK);
	assert_int_equal(archive_write_add_filter_zstd(c->a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(c->a, c->out, c->cap, &c->used), ARCHIVE_OK);
	buf_init(&c->man);
	buf_adds(&c->man, "msgw-manifest 1\n");
}

static void craft_hex(char out[2 * SHA256_LEN + 1], const void *data, size_t len)
{
	unsigned char sha[SHA256_LEN];
	size_t i;

	sha256_buf(sha, data, len);
	for (i = 0; i < SHA256_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

/* One entry: 'f' (data), 'd' or 'l' (data is the target); man_size, when
 * not 0, is the size the manifest claims. */
static void craft_add(struct craft *c, char type, const char *path, unsigned mode, const char *data,
		      uint64_t man_size)
{
	struct archive_entry *e = archive_entry_new();
	char hex[2 * SHA256_LEN + 1] = "-";
	size_t len = data ? strlen(data) : 0;
	uint64_t size = len;

	archive_entry_set_pathname(e, path);
	archive_entry_set_perm(e, mode);
	archive_entry_set_mtime(e, 1700000000, 0);
	if (type == 'd') {
		archive_entry_set_filetype(e, AE_IFDIR);
	} else if (type == 'l') {
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, data);
		craft_hex(hex, data, len);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)size);
		craft_hex(hex, data, len);
	}
	assert_int_equal(archive_write_header(c->a, e), ARCHIVE_OK);
	if (type == 'f' && len)
		assert_int_equal(archive_write_data(c->a, data, len), (la_ssize_t)len);
	archive_entry_free(e);
	buf_addf(&c->man, "%c %04o 0 0 %llu %s %s\n", type, mode,
		 (unsigned long long)(man_size ? man_size : size), hex, path);
}

static void craft_finish(struct craft *c, struct snapshot *s)
{
	assert_int_equal(archive_write_close(c->a), ARCHIVE_OK);
	archive_write_free(c->a);
	memset(s, 0, sizeof(*s));
	memcpy(s->id, "0123456789abcdef0123456789abcdef01234567", 41);
	if (manifest_parse(&s->manifest, c->man.data, c->man.len))
		fail_msg("%s", err_last());
	s->archive = c->out;
	s->archive_len = c->used;
	buf_release(&c->man);
}

static void snap_free(struct snapshot *s)
{
	free((char *)s->archive);
	manifest_release(&s->manifest);
}

static void test_limits(void **state)
{
	struct plan_guard g = {.max_file_size = 100, .config_file = "/etc/x.conf"};
	struct craft c;
	struct snapshot s;

	(void)state;
	craft_start(&c);
	craft_add(&c, 'f', "a.txt", 0644, "small\n", 0);
	/* the manifest claims more than the archive holds: the limit, read
	 * from the manifest, refuses before the archive is read */
	craft_add(&c, 'f', "b.txt", 0644, "also small\n", 1ull << 40);
	craft_finish(&c, &s);
	assert_int_equal(plan_check_snapshot(&s, &g), MSGW_EHOSTILE);
	assert_contains(err_last(), "refusing entry 'b.txt': 1099511627776 bytes, more than "
				    "max-file-size (100); raise max-file-size in '/etc/x.conf'");
	g.max_file_size = 0;
	g.max_total_size = 1ull << 39;
	assert_int_equal(plan_check_snapshot(&s, &g), MSGW_EHOSTILE);
	assert_contains(err_last(), "more than max-total-size (549755813888)");
	snap_free(&s);
}

static void test_store_pattern(void **state)
{
	char *const pats[] = {"Stores/*", NULL};
	struct plan_guard g = {0};
	struct craft c;
	struct snapshot s;

	(void)state;
	craft_start(&c);
	craft_add(&c, 'f', "Gateway.json", 0644, "{}\n", 0);
	craft_add(&c, 'd', "Stores", 0755, NULL, 0);
	craft_add(&c, 'f', "Stores/readme", 0644, "not a store\n", 0);
	craft_add(&c, 'd', "Stores/x1", 0755, NULL, 0);
	craft_add(&c, 'f', "Stores/x1/msg1.eml", 0644, "planted\n", 0);
	craft_finish(&c, &s);
	assert_int_equal(plan_check_snapshot(&s, &g), 0);
	g.stores[1] = pats; /* the snapshot's gateway's patterns */
	assert_int_equal(plan_check_snapshot(&s, &g), MSGW_EHOSTILE);
	assert_contains(err_last(), "refusing entry 'Stores/x1': it lies in a mailbox store "
				    "('Stores/x1', a mailbox-store pattern)");
	snap_free(&s);
}

/* What the then callbacks saw, in order. */
static int seen_begin(const struct manifest_entry *e, void *ctx)
{
	buf_addf(ctx, "%s %04o;", e->path, e->mode);
	return 0;
}

static void test_modes_and_link_order(void **state)
{
	struct plan_guard g = {0};
	struct archive_snapshot_reader *r = NULL;
	struct archive_snapshot_visit then = {.begin = seen_begin};
	struct craft c;
	struct snapshot s;
	struct buf seen;

	(void)state;
	buf_init(&seen);
	then.ctx = &seen;
	craft_start(&c);
	craft_add(&c, 'd', "Spool", 01777, NULL, 0);
	craft_add(&c, 'l', "a-link", 0777, "run.sh", 0);
	craft_add(&c, 'f', "plain", 0640, "y\n", 0);
	craft_add(&c, 'f', "run.sh", 06755, "#!/bin/sh\n", 0);
	craft_add(&c, 'f', "shared", 0666, "x\n", 0);
	craft_finish(&c, &s);
	assert_int_equal(archive_snapshot_open(&r, s.archive, s.archive_len), 0);
	if (plan_check_archive(&s, &g, r, &then))
		fail_msg("%s", err_last());
	archive_snapshot_free(r);
	/* files and folders as they came, modes stripped; the link last */
	assert_string_equal(seen.data,
			    "Spool 0755;plain 0640;run.sh 0755;shared 0644;a-link 0777;");
	assert_int_equal(g.nstripped, 3);
	assert_string_equal(g.stripped[0].path, "Spool");
	assert_int_equal(g.stripped[0].from, 01777);
	assert_int_equal(g.stripped[0].to, 0755);
	assert_string_equal(g.stripped[1].path, "run.sh");
	assert_int_equal(g.stripped[1].from, 06755);
	assert_string_equal(g.stripped[2].path, "shared");
	assert_int_equal(manifest_find(&s.manifest, "run.sh")->mode, 0755);
	plan_guard_release(&g);
	buf_release(&seen);
	snap_free(&s);
}

/* ---- plan_build against a fake target ----------------------------------- */

static const struct fsys_ops *real_ops;
static struct fsys_ops fake_ops;
static const char *plant_in, *plant_name; /* a name list() adds to a folder */
static const char *file_at;		  /* a folder stat() says is a file (a racing change) */

static int fake_stat(void *ctx, const char *path, struct fsys_stat *out)
{
	int rc = real_ops->stat(ctx, path, out);

	if (!rc && file_at && strcmp(path, file_at) == 0)
		out->type = FSYS_FILE;
	return rc;
}

static int fake_list(void *ctx, const char *path, struct fsys_dirent **out, size_t *n_out)
{
	int rc = real_ops->list(ctx, path, out, n_out);

	if (rc || !plant_in || strcmp(path, plant_in) != 0)
		return rc;
	*out = xrealloc(*out, (*n_out + 1) * sizeof(**out));
	memset(&(*out)[*n_out], 0, sizeof(**out));
	(*out)[*n_out].name = xstrdup(plant_name);
	(*out)[*n_out].st.type = FSYS_FILE;
	(*n_out)++;
	return 0;
}

struct fixture {
	char dir[PATH_MAX];
	char *src, *tgt;
	struct repo *r;
	struct config_gateway gsrc, gtgt;
	struct fsys *fsrc, *ftgt;
	char *pres[2], *stores[2];
	char snap[REPO_ID_LEN];
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *repo;

	test_mkdtemp(f->dir, "test_plan");
	f->src = xasprintf("%s/gw1", f->dir);
	f->tgt = xasprintf("%s/gw2", f->dir);
	repo = xasprintf("%s/repo.git", f->dir);
	test_run("mkdir -p '%s/Templates' '%s/Certificates' '%s/Templates' '%s/Certificates' && "
		 "echo '{\"mailboxes\": []}' >'%s/Gateway.json' && echo hello "
		 ">'%s/Templates/a.txt' && cp -r '%s/.' '%s/'",
		 f->src, f->src, f->tgt, f->tgt, f->src, f->src, f->src, f->tgt);
	assert_int_equal(repo_init(repo, NULL), 0);
	assert_int_equal(repo_open(&f->r, repo), 0);
	free(repo);
	f->gsrc.name = "gw1";
	f->gsrc.location = f->src;
	f->gtgt.name = "gw2";
	f->gtgt.location = f->tgt;
	f->pres[0] = "Certificates/**";
	f->gtgt.preserve.v = f->pres;
	f->gtgt.preserve.n = 1;
	f->stores[0] = "Stores/*";
	assert_int_equal(fsys_open_local(&f->fsrc, f->src), 0);
	assert_int_equal(fsys_open_local(&f->ftgt, f->tgt), 0);
	real_ops = f->ftgt->ops;
	fake_ops = *real_ops;
	fake_ops.list = fake_list;
	fake_ops.stat = fake_stat;
	f->ftgt->ops = &fake_ops;
	plant_in = plant_name = file_at = NULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fsys_free(f->fsrc);
	fsys_free(f->ftgt);
	repo_free(f->r);
	test_rmtree(f->dir);
	free(f->src);
	free(f->tgt);
	free(f);
	return 0;
}

static void take(struct fixture *f, const struct config_gateway *g, struct fsys *fs,
		 char id[REPO_ID_LEN])
{
	struct snapshot_opts o = {.kind = "manual"};
	struct snapshot_result res;

	assert_int_equal(snapshot_take(&res, f->r, g, fs, &o), 0);
	memcpy(id, res.id, REPO_ID_LEN);
}

static size_t count_code(const struct plan *p, const char *code)
{
	size_t i, n = 0;

	for (i = 0; i < p->findings.n; i++)
		n += strcmp(p->findings.v[i].code, code) == 0;
	return n;
}

static void test_build_leftover(void **state)
{
	struct fixture *f = *state;
	struct plan p;

	take(f, &f->gsrc, f->fsrc, f->snap);
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL), 0);
	plan_release(&p);
	plant_in = "Templates";
	plant_name = "a.txt.msgw-old";
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL), MSGW_ERR);
	assert_contains(err_last(), "'Templates/a.txt.msgw-old' on target 'gw2' is left over from "
				    "an earlier restore; run 'msgw-restore recover gw2' first");
	plant_in = "";
	plant_name = ".msgw-journal.msgw-tmp.77";
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL), MSGW_ERR);
	assert_contains(err_last(), "'.msgw-journal.msgw-tmp.77' on target");
}

static void test_build_preserve_not_diverged(void **state)
{
	struct fixture *f = *state;
	char tip[REPO_ID_LEN];
	struct plan p;

	take(f, &f->gsrc, f->fsrc, f->snap);
	take(f, &f->gtgt, f->ftgt, tip);
	test_run("echo cert >'%s/Certificates/extra.pem'", f->tgt);
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL), 0);
	assert_int_equal(count_code(&p, "target-diverged"), 0);
	plan_release(&p);
	test_run("echo local >'%s/Local.cfg'", f->tgt);
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL), 0);
	assert_int_equal(count_code(&p, "target-diverged"), 1);
	assert_contains(p.findings.v[0].what, "(0 modified, 1 added, 0 removed)");
	assert_null(strstr(p.findings.v[0].what, "extra.pem"));
	plan_release(&p);
}

static void test_build_pattern_store(void **state)
{
	struct fixture *f = *state;
	struct plan p;

	test_run("mkdir -p '%s/Stores/x1' && echo mail >'%s/Stores/x1/m1'", f->tgt, f->tgt);
	f->gtgt.mailbox_store.v = f->stores;
	f->gtgt.mailbox_store.n = 1;
	take(f, &f->gsrc, f->fsrc, f->snap);
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL), 0);
	assert_int_equal(p.stores.n, 1);
	assert_string_equal(p.stores.v[0].id, "Stores/x1");
	assert_int_equal(p.stores.v[0].messages, 1);
	assert_int_equal(count_code(&p, "mailbox-removed"), 0);
	plan_release(&p);
	/* the source holds the same folder as configuration: refused */
	test_run("mkdir -p '%s/Stores/x1' && echo other >'%s/Stores/x1/m1'", f->src, f->src);
	take(f, &f->gsrc, f->fsrc, f->snap);
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL),
			 MSGW_EHOSTILE);
	assert_contains(err_last(), "refusing entry 'Stores/x1': it lies in a mailbox store");
	test_run("test \"$(cat '%s/Stores/x1/m1')\" = mail", f->tgt);
}

/* A folder on the way to a changed file that is no folder when the plan
 * checks the target's folders (all in one batch): refused, naming the
 * first change under it. */
static void test_build_parent_not_folder(void **state)
{
	struct fixture *f = *state;
	struct plan p;

	test_run("echo changed >'%s/Templates/a.txt' && mkdir -p '%s/Templates/sub' && "
		 "echo new >'%s/Templates/sub/b.txt'",
		 f->src, f->src, f->src);
	take(f, &f->gsrc, f->fsrc, f->snap);
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL), 0);
	assert_true(p.n >= 2);
	plan_release(&p);
	file_at = "Templates";
	assert_int_equal(plan_build(&p, f->r, f->snap, NULL, &f->gtgt, f->ftgt, NULL),
			 MSGW_EHOSTILE);
	assert_contains(err_last(), "refusing to write 'Templates/");
	assert_contains(err_last(), "': 'Templates' on the target is not a directory");
	file_at = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_entry_names),
	    cmocka_unit_test(test_links_refused),
	    cmocka_unit_test(test_links_accepted),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_store_pattern),
	    cmocka_unit_test(test_modes_and_link_order),
	    cmocka_unit_test_setup_teardown(test_build_leftover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_build_preserve_not_diverged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_build_pattern_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_build_parent_not_folder, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
