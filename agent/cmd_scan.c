/*
 * scan: show the top level of a gateway's location with sizes and how each
 * entry is classified (config, excluded, mailbox store, preserved), so an
 * admin can check the patterns against a real data directory.
 */
#include "agent.h"
#include "err.h"
#include "glob.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: scan GATEWAY [--json]\n\n"
    "List the top level of the gateway's location: size, number of files and\n"
    "class of each entry (config, excluded, mailbox-store, preserved, partly\n"
    "excluded), and the totals a snapshot would hold.\n";

struct tally {
	unsigned long long bytes, files, config_files, excluded_files;
};

static void tally_tree(struct fsys *fs, const struct walk_rules *rules, const char *path,
		       struct tally *t, bool in_store)
{
	struct fsys_dirent *ents = NULL;
	size_t n = 0, i;

	if (fsys_list(fs, path, &ents, &n))
		return;
	for (i = 0; i < n; i++) {
		char *child = fsys_join(path, ents[i].name);
		bool dir = ents[i].st.type == FSYS_DIR;
		bool store = in_store || (dir && walk_is_store(rules, child));

		if (dir) {
			tally_tree(fs, rules, child, t, store);
		} else {
			t->files++;
			t->bytes += ents[i].st.size;
			if (!store && walk_classify(rules, child, false) == WALK_CONFIG)
				t->config_files++;
			else if (!store)
				t->excluded_files++;
		}
		free(child);
	}
	fsys_dirents_free(ents, n);
}

/* A directory counts as preserved when everything below it is. */
static bool is_preserved(const struct config_gateway *gw, const char *name, bool dir)
{
	char *probe;
	bool p;

	if (glob_match_any(gw->preserve.v, name))
		return true;
	if (!dir)
		return false;
	probe = xasprintf("%s/x", name);
	p = glob_match_any(gw->preserve.v, probe);
	free(probe);
	return p;
}

static const char *class_of(const struct config_gateway *gw, const struct walk_rules *rules,
			    const struct fsys_dirent *d, const struct tally *t)
{
	bool dir = d->st.type == FSYS_DIR;
	enum walk_class c = walk_classify(rules, d->name, dir);

	if (c == WALK_STORE)
		return "mailbox-store";
	if (c == WALK_EXCLUDED)
		return "excluded";
	if (is_preserved(gw, d->name, dir))
		return "preserved";
	if (dir && t->excluded_files && t->config_files)
		return "config (partly excluded)";
	if (dir && t->excluded_files && !t->config_files)
		return "excluded";
	return "config";
}

static int scan(struct cli_ctx *ctx, const struct config_gateway *gw, int json)
{
	struct fsys_open_opts fo = {gw->identity, gw->passphrase_file, gw->known_hosts,
				    gw->timeout};
	struct fsys_dirent *ents = NULL;
	struct walk_rules rules;
	struct fsys *fs = NULL;
	json_t *arr = json ? json_array() : NULL;
	size_t n = 0, i;
	int rc;

	snapshot_rules(&rules, gw);
	rc = fsys_open(&fs, gw->location, &fo);
	if (!rc)
		rc = fsys_list(fs, "", &ents, &n);
	if (rc) {
		fsys_free(fs);
		json_decref(arr);
		return cli_fail(ctx, rc);
	}
	if (!json)
		printf("%-26s %10s %7s  %s\n", "CLASS", "SIZE", "FILES", "PATH");
	for (i = 0; i < n; i++) {
		struct tally t = {0};
		char size[32];
		const char *cls;
		bool dir = ents[i].st.type == FSYS_DIR;

		if (dir)
			tally_tree(fs, &rules, ents[i].name, &t,
				   walk_is_store(&rules, ents[i].name));
		else
			t.bytes = ents[i].st.size, t.files = 1;
		cls = class_of(gw, &rules, &ents[i], &t);
		cli_human_size(size, sizeof(size), t.bytes);
		if (arr)
			json_array_append_new(
			    arr, json_pack("{s:s, s:s, s:I, s:I, s:b}", "path", ents[i].name,
					   "class", cls, "bytes", (json_int_t)t.bytes, "files",
					   (json_int_t)t.files, "directory", dir));
		else
			printf("%-26s %10s %7llu  %s%s\n", cls, size, t.files, ents[i].name,
			       dir ? "/" : "");
	}
	if (arr) {
		json_t *doc = json_pack("{s:i, s:s, s:s, s:o}", "version", 1, "gateway", gw->name,
					"location", gw->location, "entries", arr);

		cli_print_json(doc);
	}
	fsys_dirents_free(ents, n);
	fsys_free(fs);
	return 0;
}

int cmd_scan(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	const struct config_gateway *gw;
	int c, json = 0;

	if (cli_want_help(argc, argv, help))
		return 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_usage_error(ctx, "scan GATEWAY [--json]", "bad option");
		json = 1;
	}
	if (optind != argc - 1)
		return cli_usage_error(ctx, "scan GATEWAY [--json]", "scan needs one GATEWAY");
	gw = config_gateway_find(cli_config(ctx), argv[optind]);
	if (!gw)
		return cli_fail(ctx, MSGW_ECONFIG);
	return scan(ctx, gw, json);
}
