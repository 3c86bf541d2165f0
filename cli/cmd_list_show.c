/*
 * cmd_list_show: the read-only commands both tools share: list and show.  Human
 * and JSON output are built from the same loaded snapshots.
 */
#include "err.h"
#include "cli.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *meta_json(const struct snapshot_meta *m)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; i < m->n; i++)
		json_object_set_new(o, m->keys[i], json_string(m->values[i]));
	return o;
}

static json_t *tags_json(struct repo *r, const char *id)
{
	json_t *a = json_array();
	char **tags = NULL;
	size_t n = 0, i;

	if (repo_tags_at(&tags, &n, r, id) == 0)
		for (i = 0; i < n; i++)
			json_array_append_new(a, json_string(tags[i]));
	repo_names_free(tags, n);
	return a;
}

static json_t *snapshot_json(struct repo *r, const struct snapshot *s)
{
	const char *g = snapshot_meta_get(&s->meta, "gateway");
	const char *files = snapshot_meta_get(&s->meta, "files");
	const char *bytes = snapshot_meta_get(&s->meta, "bytes");

	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:o}", "id", s->id, "parent", s->parent,
	    "gateway", g ? g : "", "created", snapshot_meta_get(&s->meta, "created") ?: "", "kind",
	    snapshot_meta_get(&s->meta, "kind") ?: "", "files",
	    (json_int_t)(files ? atoll(files) : 0), "bytes", (json_int_t)(bytes ? atoll(bytes) : 0),
	    "summary", s->summary ? s->summary : "", "tags", tags_json(r, s->id), "meta",
	    meta_json(&s->meta));
}

static void list_line(const struct snapshot *s)
{
	printf("%-12s %.12s  %-20s  %-11s %6s  %s\n", snapshot_meta_get(&s->meta, "gateway") ?: "?",
	       s->id, snapshot_meta_get(&s->meta, "created") ?: "?",
	       snapshot_meta_get(&s->meta, "kind") ?: "?",
	       snapshot_meta_get(&s->meta, "files") ?: "?", s->summary);
}

static int list_branch(struct repo *r, const char *gw, long limit, json_t *arr)
{
	char **ids = NULL;
	size_t n = 0, i;
	int rc;

	rc = repo_log(&ids, &n, r, gw, limit > 0 ? (size_t)limit : 0);
	for (i = 0; !rc && i < n; i++) {
		struct snapshot s;

		rc = snapshot_load_meta(&s, r, ids[i]);
		if (rc)
			break;
		if (arr)
			json_array_append_new(arr, snapshot_json(r, &s));
		else
			list_line(&s);
		snapshot_release(&s);
	}
	repo_names_free(ids, n);
	return rc;
}

static const char list_help[] =
    "usage: list [GATEWAY...] [-n N] [--json]\n\n"
    "List snapshots, newest first, of the named gateways (default: every branch).\n"
    "  -n, --limit N  at most N snapshots per gateway\n"
    "      --json     one JSON document {\"version\":1,\"snapshots\":[...]}\n";

int cli_cmd_list(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"limit", required_argument, NULL, 'n'},
					     {NULL, 0, NULL, 0}};
	char **names = NULL;
	size_t n = 0, i;
	json_t *arr = NULL;
	long limit = 0;
	int c, rc = 0, json = 0;
	struct repo *r;

	if (cli_want_help(argc, argv, list_help))
		return 0;
	while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'n' && (limit = atol(optarg)) > 0)
			continue;
		else
			return cli_usage_error(ctx, "list [GATEWAY...] [-n N] [--json]",
					       "bad option");
	}
	r = cli_repo(ctx);
	if (optind < argc) {
		names = argv + optind;
		n = (size_t)(argc - optind);
	} else if ((rc = repo_branches(&names, &n, r)) != 0) {
		return cli_fail(ctx, rc);
	}
	if (json)
		arr = json_array();
	else
		printf("%-12s %-12s  %-20s  %-11s %6s  %s\n", "GATEWAY", "ID", "CREATED", "KIND",
		       "FILES", "SUMMARY");
	for (i = 0; !rc && i < n; i++)
		rc = list_branch(r, names[i], limit, arr);
	if (optind >= argc)
		repo_names_free(names, n);
	if (rc) {
		json_decref(arr);
		return cli_fail(ctx, rc);
	}
	if (json)
		cli_print_json(json_pack("{s:i, s:o}", "version", 1, "snapshots", arr));
	return 0;
}

static json_t *manifest_json(const struct manifest *m)
{
	json_t *a = json_array();
	char hex[2 * SHA256_LEN + 1];
	size_t i;

	for (i = 0; i < m->n; i++) {
		const struct manifest_entry *e = &m->e[i];
		char mode[8];

		snprintf(mode, sizeof(mode), "%04o", (unsigned)e->mode);
		if (e->type == 'd')
			hex[0] = '\0';
		else
			hex_encode(hex, e->sha, SHA256_LEN);
		json_array_append_new(
		    a, json_pack("{s:s#, s:s, s:s, s:I, s:I, s:I, s:s}", "type", &e->type, 1,
				 "path", e->path, "mode", mode, "uid", (json_int_t)e->uid, "gid",
				 (json_int_t)e->gid, "size", (json_int_t)e->size, "sha256", hex));
	}
	return a;
}

static void show_human(struct repo *r, const struct snapshot *s)
{
	char **tags = NULL;
	size_t n = 0, i;

	printf("snapshot %s\n", s->id);
	if (s->parent[0])
		printf("parent: %s\n", s->parent);
	for (i = 0; i < s->meta.n; i++)
		printf("%s: %s\n", s->meta.keys[i], s->meta.values[i]);
	if (repo_tags_at(&tags, &n, r, s->id) == 0 && n) {
		printf("tags:");
		for (i = 0; i < n; i++)
			printf(" %s", tags[i]);
		printf("\n");
	}
	repo_names_free(tags, n);
	printf("summary: %s\n\n", s->summary);
	for (i = 0; i < s->manifest.n; i++) {
		const struct manifest_entry *e = &s->manifest.e[i];
		char *enc = manifest_encode_path(e->path);

		printf("%c %04o %5u %5u %10llu  %s\n", e->type, (unsigned)e->mode, (unsigned)e->uid,
		       (unsigned)e->gid, (unsigned long long)e->size, enc);
		free(enc);
	}
}

static const char show_help[] =
    "usage: show SNAPSHOT [--json]\n\n"
    "Show a snapshot's meta data, tags and file list.  SNAPSHOT is a gateway name\n"
    "(its latest snapshot), GATEWAY@latest, GATEWAY~N, a tag, or an id prefix of 7+\n"
    "hex digits.\n"
    "      --json     one JSON document with meta and files\n";

int cli_cmd_show(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	char id[REPO_ID_LEN];
	struct snapshot s;
	int c, rc, json = 0;
	struct repo *r;

	if (cli_want_help(argc, argv, show_help))
		return 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_usage_error(ctx, "show SNAPSHOT [--json]", "bad option");
		json = 1;
	}
	if (optind != argc - 1)
		return cli_usage_error(ctx, "show SNAPSHOT [--json]", "show needs one SNAPSHOT");
	r = cli_repo(ctx);
	rc = repo_resolve(id, r, argv[optind]);
	if (!rc)
		rc = snapshot_load(&s, r, id, false);
	if (rc)
		return cli_fail(ctx, rc);
	if (json) {
		json_t *doc = snapshot_json(r, &s);

		json_object_set_new(doc, "version", json_integer(1));
		json_object_set_new(doc, "files_list", manifest_json(&s.manifest));
		cli_print_json(doc);
	} else {
		show_human(r, &s);
	}
	snapshot_release(&s);
	return 0;
}
