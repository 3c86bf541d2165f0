/*
 * extract: write a snapshot into a new or empty directory; no service.
 */
#include "err.h"
#include "extract.h"
#include "restore.h"

static const char help[] =
    "usage: extract SNAPSHOT DIR\n\n"
    "Write every file of SNAPSHOT into DIR (created if missing; must be empty),\n"
    "after the same checks as a restore: hostile entries (absolute paths, '..',\n"
    "links leaving DIR, hard links, devices, FIFOs, sparse files, mailbox stores,\n"
    "the tool's own *.msgw-* names, sizes over max-file-size or max-total-size)\n"
    "and any file differing from the manifest are refused before anything is\n"
    "written.  Set-ID, sticky and group/other-write bits are stripped.\n";

int cmd_extract(struct cli_ctx *ctx, int argc, char **argv)
{
	struct extract_result res;
	char id[REPO_ID_LEN];
	int rc;

	if (cli_want_help(argc, argv, help))
		return 0;
	if (argc != 3)
		return cli_usage_error(ctx, "extract SNAPSHOT DIR",
				       "extract needs SNAPSHOT and DIR");
	rc = repo_resolve(id, cli_repo(ctx), argv[1]);
	if (!rc)
		rc = extract_snapshot(&res, cli_repo(ctx), cli_config(ctx), id, argv[2]);
	if (rc)
		return cli_fail(ctx, rc);
	printf("extracted %.12s into '%s': %zu files, %zu directories, %zu links, %llu bytes\n", id,
	       argv[2], res.files, res.dirs, res.links, res.bytes);
	if (res.stripped)
		printf("note: %zu entr%s had set-ID, sticky or group/other-write bits, stripped\n",
		       res.stripped, res.stripped == 1 ? "y" : "ies");
	return 0;
}
