/*
 * reencrypt: copy a plain repository's snapshots into an encrypted one,
 * sealed on the way by repo_commit (the destination has a key attached).
 * Meta gains "encryption" and "key-id"; the commit keeps its time and
 * summary line, but not the per-path lines (an encrypted repository's
 * commits name no path).
 */
#include "reencrypt.h"
#include "err.h"
#include "seal.h"
#include "snapshot.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int check_dst(struct repo *dst, char **names, size_t n)
{
	char tip[REPO_ID_LEN];
	size_t i;
	int rc;

	if (!repo_key(dst))
		return err_set(MSGW_ECONFIG,
			       "repository '%s' has no key: reencrypt writes into an "
			       "encrypted repository (init --encrypt)",
			       repo_path(dst));
	for (i = 0; i < n; i++) {
		rc = repo_branch_tip(tip, dst, names[i]);
		if (rc == 0)
			return err_set(MSGW_ECONFIG, "repository '%s' already has gateway '%s'",
				       repo_path(dst), names[i]);
		if (rc != MSGW_ENOTFOUND)
			return rc;
	}
	return 0;
}

/* One snapshot of src written on dst's branch; its new id in out. */
static int copy_one(char out[REPO_ID_LEN], struct repo *dst, struct repo *src, const char *branch,
		    const char *id)
{
	struct snapshot s;
	char *meta = NULL, *mtext = NULL, *msg = NULL;
	size_t mlen = 0;
	int rc;

	rc = snapshot_verify(src, id);
	if (!rc)
		rc = snapshot_load(&s, src, id, true);
	if (rc)
		return rc;
	rc = repo_read(&mtext, &mlen, src, id, "manifest");
	if (!rc) {
		snapshot_meta_set(&s.meta, "encryption", SNAPSHOT_ENCRYPTION);
		snapshot_meta_set(&s.meta, "key-id", seal_key_id(repo_key(dst)));
		meta = snapshot_meta_format(&s.meta);
		msg = xasprintf("%s\n", s.summary);
		{
			struct repo_file files[3] = {
			    REPO_FILE("config.tar.zst", s.archive, s.archive_len),
			    REPO_FILE("manifest", mtext, mlen),
			    REPO_FILE("meta", meta, strlen(meta))};

			rc = repo_commit(out, dst, branch, files, 3, msg, s.time);
		}
	}
	free(meta);
	free(mtext);
	free(msg);
	snapshot_release(&s);
	return rc;
}

static int copy_tags(struct reencrypt_result *out, struct repo *dst, struct repo *src,
		     const char *old_id, const char *new_id)
{
	char **tags = NULL;
	size_t n = 0, i;
	int rc = repo_tags_at(&tags, &n, src, old_id);

	for (i = 0; !rc && i < n; i++)
		if ((rc = repo_tag(dst, tags[i], new_id)) == 0)
			out->tags++;
	repo_names_free(tags, n);
	return rc;
}

static int copy_branch(struct reencrypt_result *out, struct repo *dst, struct repo *src,
		       const char *branch)
{
	char **ids = NULL, new_id[REPO_ID_LEN];
	size_t n = 0, i;
	int rc = repo_log(&ids, &n, src, branch, 0);

	for (i = n; !rc && i > 0; i--) { /* oldest first */
		rc = copy_one(new_id, dst, src, branch, ids[i - 1]);
		if (!rc)
			rc = copy_tags(out, dst, src, ids[i - 1], new_id);
		if (!rc)
			out->snapshots++;
	}
	repo_names_free(ids, n);
	return rc;
}

int reencrypt_repo(struct reencrypt_result *out, struct repo *dst, struct repo *src)
{
	char **names = NULL;
	size_t n = 0, i;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = repo_branches(&names, &n, src);
	if (!rc)
		rc = check_dst(dst, names, n);
	for (i = 0; !rc && i < n; i++) {
		rc = copy_branch(out, dst, src, names[i]);
		if (!rc)
			out->branches++;
	}
	repo_names_free(names, n);
	return rc;
}
