/*
 * diff: compare two snapshots, or a snapshot with a gateway's live files.
 * Text files get a unified diff (libgit2's patch code, through repo.h),
 * binary files "Binary files ... differ".
 */
#include "archive.h"
#include "err.h"
#include "log.h"
#include "restore.h"
#include "snapshot.h"
#include "util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char synopsis[] = "diff A [B] [--to GATEWAY] [--stat] [--json]";
static const char help[] =
    "usage: diff A [B] [--to GATEWAY] [--stat] [--json]\n\n"
    "Compare snapshot A with snapshot B, or with the live files of a gateway\n"
    "when B is left out (the gateway A was taken from, or --to GATEWAY).\n"
    "  -t, --to GATEWAY  compare with this gateway's live files\n"
    "      --stat        one line per changed file and the totals\n"
    "      --json        one JSON document with each change and its patch\n";

/* One side: a manifest and a way to read a file's content. */
struct side {
	char *label;
	struct manifest m;
	struct snapshot snap; /* when a snapshot */
	bool is_snap;
	struct target t; /* when live */
};

static int load_snap(struct side *s, struct repo *r, const char *name)
{
	char id[REPO_ID_LEN];
	int rc = repo_resolve(id, r, name);

	if (!rc)
		rc = snapshot_load(&s->snap, r, id, true);
	if (rc)
		return rc;
	s->is_snap = true;
	s->label = xasprintf("%.12s", id);
	s->m = s->snap.manifest;
	manifest_init(&s->snap.manifest);
	return 0;
}

static int load_live(struct cli_ctx *ctx, struct side *s, const char *gw)
{
	struct walk_rules rules;
	int rc = target_open(ctx, &s->t, gw, false);

	if (rc)
		return rc;
	snapshot_rules(&rules, s->t.gw);
	rc = walk_location(&s->m, s->t.fs, &rules, NULL);
	if (!rc)
		rc = walk_hash(&s->m, s->t.fs, NULL);
	s->label = xasprintf("%s (live)", gw);
	return rc;
}

static int read_content(struct side *s, const char *path, char **out, size_t *len)
{
	if (!s->is_snap)
		return fsys_read_all(s->t.fs, path, out, len);
	return archive_snapshot_read_file(out, len, s->snap.archive, s->snap.archive_len, path);
}

static void side_release(struct side *s)
{
	free(s->label);
	manifest_release(&s->m);
	if (s->is_snap)
		snapshot_release(&s->snap);
	else
		target_close(&s->t);
}

static int patch_of(char **out, bool *binary, struct side *a, struct side *b,
		    const struct manifest_change *c)
{
	char *da = NULL, *db = NULL;
	size_t la = 0, lb = 0;
	const char *path = (c->new_e ? c->new_e : c->old_e)->path;
	int rc = 0;

	*out = NULL;
	*binary = false;
	if (c->old_e && c->old_e->type == 'f')
		rc = read_content(a, path, &da, &la);
	if (!rc && c->new_e && c->new_e->type == 'f')
		rc = read_content(b, path, &db, &lb);
	/* libgit2 adds the "a/" and "b/" prefixes itself */
	if (!rc)
		rc = repo_diff_text(out, binary, da ? da : "", la, db ? db : "", lb, path, path);
	free(da), free(db);
	return rc;
}

static const char *kind_word(char k)
{
	return k == 'A' ? "added" : k == 'D' ? "removed" : "modified";
}

static int show(struct side *a, struct side *b, bool stat, bool json)
{
	struct manifest_diff d;
	json_t *arr = json ? json_array() : NULL;
	size_t i;
	int rc = 0;

	manifest_diff(&d, &a->m, &b->m);
	for (i = 0; !rc && i < d.n; i++) {
		const struct manifest_change *c = &d.c[i];
		const char *path = (c->new_e ? c->new_e : c->old_e)->path;
		char *patch = NULL;
		bool binary = false;

		if (!stat || json)
			rc = patch_of(&patch, &binary, a, b, c);
		if (rc)
			break;
		if (arr)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:s?}", "change",
							     kind_word(c->kind), "path", path,
							     "binary", binary, "patch", patch));
		else if (stat)
			printf(" %-8s %s\n", kind_word(c->kind), path);
		else if (patch && *patch)
			fputs(patch, stdout);
		else
			printf("%s: metadata (mode or owner) differs\n", path);
		free(patch);
	}
	if (!rc && arr) {
		json_t *doc = json_pack("{s:i, s:s, s:s, s:{s:I, s:I, s:I}, s:o}", "version", 1,
					"from", a->label, "to", b->label, "counts", "modified",
					(json_int_t)d.modified, "added", (json_int_t)d.added,
					"removed", (json_int_t)d.removed, "changes", arr);

		cli_print_json(doc);
		arr = NULL;
	} else if (!rc && stat) {
		printf(" %zu modified, %zu added, %zu removed\n", d.modified, d.added, d.removed);
	}
	json_decref(arr);
	manifest_diff_release(&d);
	return rc;
}

int cmd_diff(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"stat", no_argument, NULL, 's'},
					     {"to", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	struct side a = {0}, b = {0};
	const char *to = NULL;
	bool stat = false, json = false;
	int c, rc;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 's')
			stat = true;
		else if (c == 't')
			to = optarg;
		else
			return cli_usage_error(ctx, synopsis, "bad option");
	}
	if (argc - optind < 1 || argc - optind > 2 || (to && argc - optind == 2))
		return cli_usage_error(ctx, synopsis, "diff needs A and B, or A alone");
	rc = load_snap(&a, cli_repo(ctx), argv[optind]);
	if (!rc && argc - optind == 2)
		rc = load_snap(&b, cli_repo(ctx), argv[optind + 1]);
	else if (!rc)
		rc = load_live(ctx, &b, to ? to : snapshot_meta_get(&a.snap.meta, "gateway"));
	if (!rc)
		rc = show(&a, &b, stat, json);
	side_release(&a);
	if (b.label)
		side_release(&b);
	return rc ? cli_fail(ctx, rc) : 0;
}
