/*
 * drill: extract, re-walk, compare, record; see drill.h.  The scratch
 * directory is made under $TMPDIR (or /tmp) with mode 0700 and removed at
 * the end.
 */
#include "drill.h"
#include "err.h"
#include "extract.h"
#include "fsys.h"
#include "jobs.h"
#include "plan.h"
#include "snapshot.h"
#include "util.h"
#include "walk.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* strip: the mode bits extraction strips (plan.h), 0 with strip-modes off */
static int compare(const struct manifest *want, const struct manifest *got, uint32_t strip)
{
	size_t i;

	if (want->n != got->n) {
		for (i = 0; i < want->n; i++)
			if (!manifest_find(got, want->e[i].path))
				return err_set(MSGW_ECORRUPT, "'%s' missing after extraction",
					       want->e[i].path);
		return err_set(MSGW_ECORRUPT, "%zu entries extracted, %zu expected", got->n,
			       want->n);
	}
	for (i = 0; i < want->n; i++) {
		const struct manifest_entry *a = &want->e[i], *b = &got->e[i];

		/* owners are mapped by name on extraction, so they are not
		 * compared; set-ID, sticky and group/other-write bits are
		 * stripped (plan.h) */
		uint32_t mode = a->type == 'l' ? a->mode : a->mode & ~strip;

		if (strcmp(a->path, b->path) != 0 || a->type != b->type || mode != b->mode ||
		    (a->type != 'd' && (a->size != b->size || memcmp(a->sha, b->sha, SHA256_LEN))))
			return err_set(MSGW_ECORRUPT,
				       "'%s' differs after extraction from the manifest", a->path);
	}
	return 0;
}

static int check_tree(struct drill_result *out, const char *dir, const struct snapshot *s,
		      uint32_t strip)
{
	struct walk_rules rules = {0};
	struct manifest got;
	struct fsys *fs = NULL;
	size_t i;
	int rc;

	fsys_open_local(&fs, dir);
	rc = walk_location(&got, fs, &rules, NULL);
	if (!rc)
		rc = walk_hash(&got, fs, NULL);
	if (!rc)
		rc = compare(&s->manifest, &got, strip);
	for (i = 0; !rc && i < got.n; i++)
		out->bytes += got.e[i].size;
	out->files = rc ? 0 : got.n;
	manifest_release(&got);
	fsys_free(fs);
	return rc;
}

static void remove_scratch(const char *dir)
{
	struct fsys *fs = NULL;

	fsys_open_local(&fs, dir);
	(void)fsys_remove_tree(fs, "");
	fsys_free(fs);
}

int drill_gateway(struct drill_result *out, struct repo *r, const struct config *cfg,
		  const char *gateway)
{
	const char *tmp = getenv("TMPDIR");
	char *dir = xasprintf("%s/msgw-drill.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	struct extract_result er;
	struct snapshot s;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = repo_branch_tip(out->id, r, gateway);
	if (!rc && !mkdtemp(dir))
		rc = err_set(MSGW_ERR, "cannot create a scratch directory '%s'", dir);
	if (!rc)
		rc = extract_snapshot(&er, r, cfg, out->id, dir);
	if (!rc) {
		rc = snapshot_load(&s, r, out->id, false);
		if (!rc) {
			struct plan_guard g;

			/* the modes extract_snapshot gave (its guard) */
			plan_guard_init(&g, cfg, NULL, snapshot_meta_get(&s.meta, "gateway"));
			rc = check_tree(out, dir, &s, g.keep_modes ? 0 : PLAN_STRIP_MODE);
			plan_guard_release(&g);
			snapshot_release(&s);
		}
	}
	if (rc && out->id[0])
		err_wrap(rc, "drill of '%s' (%.12s) failed", gateway, out->id);
	else if (rc)
		err_wrap(rc, "drill of '%s' failed", gateway);
	job_record_drill(cfg, gateway, rc == 0, rc ? err_last() : NULL);
	if (strstr(dir, "XXXXXX") == NULL)
		remove_scratch(dir);
	free(dir);
	return rc;
}
