/*
 * snapshot: orchestration of walk, hash, archive and repo for one gateway,
 * and the meta file's format.  Kept free of any front-end concerns.
 */
#include "snapshot.h"
#include "archive.h"
#include "err.h"
#include "log.h"
#include "seal.h"
#include "statcache.h"
#include "util.h"

#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <string.h>
#include <time.h>

int snapshot_meta_parse(struct snapshot_meta *out, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t lineno = 0;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *colon;
		char *line;

		lineno++;
		if (!nl)
			nl = end;
		line = xstrndup(p, (size_t)(nl - p));
		colon = strstr(line, ": ");
		if (!colon) {
			free(line);
			snapshot_meta_release(out);
			return err_set(MSGW_ECORRUPT, "meta line %zu: expected 'key: value'",
				       lineno);
		}
		line[colon - line] = '\0';
		snapshot_meta_set(out, line, colon + 2);
		free(line);
		p = nl + 1;
	}
	return 0;
}

const char *snapshot_meta_get(const struct snapshot_meta *m, const char *key)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->keys[i], key) == 0)
			return m->values[i];
	return NULL;
}

void snapshot_meta_set(struct snapshot_meta *m, const char *key, const char *value)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		if (strcmp(m->keys[i], key) == 0) {
			free(m->values[i]);
			m->values[i] = xstrdup(value);
			return;
		}
	}
	m->keys = xrealloc(m->keys, (m->n + 1) * sizeof(char *));
	m->values = xrealloc(m->values, (m->n + 1) * sizeof(char *));
	m->keys[m->n] = xstrdup(key);
	m->values[m->n] = xstrdup(value);
	m->n++;
}

char *snapshot_meta_format(const struct snapshot_meta *m)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	for (i = 0; i < m->n; i++)
		buf_addf(&b, "%s: %s\n", m->keys[i], m->values[i]);
	return buf_detach(&b, NULL);
}

void snapshot_meta_release(struct snapshot_meta *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->keys[i]);
		free(m->values[i]);
	}
	free(m->keys);
	free(m->values);
	memset(m, 0, sizeof(*m));
}

void snapshot_summary(char *buf, size_t len, const char *gateway, const struct manifest *old_m,
		      const struct manifest *new_m)
{
	struct manifest_diff d;
	char counts[128];

	manifest_diff(&d, old_m, new_m);
	manifest_diff_summary(&d, counts, sizeof(counts));
	snprintf(buf, len, "%s: %s", gateway, counts);
	manifest_diff_release(&d);
}

/* The commit message: summary line, then one line per change (at most 200);
 * in an encrypted repository no path (the commit is in clear). */
static char *commit_message(const char *summary, const struct manifest *old_m,
			    const struct manifest *new_m, const char *extra, bool sealed)
{
	struct manifest_diff d;
	struct buf b;
	size_t i;

	buf_init(&b);
	buf_addf(&b, "%s\n\n", summary);
	if (extra && *extra)
		buf_addf(&b, "%s\n\n", extra);
	if (sealed)
		return buf_detach(&b, NULL);
	manifest_diff(&d, old_m, new_m);
	for (i = 0; i < d.n && i < 200; i++) {
		const struct manifest_entry *e = d.c[i].new_e ? d.c[i].new_e : d.c[i].old_e;
		char *enc = manifest_encode_path(e->path);

		buf_addf(&b, "%c %s\n", d.c[i].kind, enc);
		free(enc);
	}
	if (d.n > 200)
		buf_addf(&b, "... and %zu more\n", d.n - 200);
	manifest_diff_release(&d);
	return buf_detach(&b, NULL);
}

static char *make_meta(const struct config_gateway *gw, const struct snapshot_opts *opts,
		       const struct snapshot_result *res, int64_t now, const struct seal_key *key)
{
	struct snapshot_meta m = {0};
	char tmp[64];
	char *text;

	snapshot_meta_set(&m, "format", "1");
	snapshot_meta_set(&m, "gateway", gw->name);
	time_rfc3339(tmp, sizeof(tmp), now);
	snapshot_meta_set(&m, "created", tmp);
	snapshot_meta_set(&m, "kind", opts->kind ? opts->kind : "manual");
	snapshot_meta_set(&m, "tool", "msgw-backup " MSGW_VERSION);
	snapshot_meta_set(&m, "location", gw->location);
	snprintf(tmp, sizeof(tmp), "%zu", res->files);
	snapshot_meta_set(&m, "files", tmp);
	snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)res->bytes);
	snapshot_meta_set(&m, "bytes", tmp);
	if (opts->restored_from)
		snapshot_meta_set(&m, "restored-from", opts->restored_from);
	if (opts->forced)
		snapshot_meta_set(&m, "forced", opts->forced);
	if (key) {
		snapshot_meta_set(&m, "encryption", SNAPSHOT_ENCRYPTION);
		snapshot_meta_set(&m, "key-id", seal_key_id(key));
	}
	text = snapshot_meta_format(&m);
	snapshot_meta_release(&m);
	return text;
}

/* Walk and hash until a stable manifest and archive come out (a file that
 * changes between hashing and archiving sends us round again). */
static void count(struct snapshot_result *res, const struct manifest *m)
{
	size_t i;

	res->files = m->n;
	res->bytes = 0;
	for (i = 0; i < m->n; i++)
		res->bytes += m->e[i].size;
}

/* Tests only: remove the file MSGW_TEST_VANISH names (relative to the
 * location) once the walk has listed it, before the archive reads it. */
static void test_vanish(struct fsys *fs)
{
#ifdef MSGW_TESTING
	const char *path = getenv("MSGW_TEST_VANISH");

	if (path && *path && fsys_unlink(fs, path))
		err_clear();
#else
	(void)fs;
#endif
}

static int capture(struct manifest *m, struct snapshot_result *res, struct fsys *fs,
		   const struct config_gateway *gw, struct statcache *cache, bool defer)
{
	struct walk_rules rules;
	size_t i;
	int rc;

	snapshot_rules(&rules, gw);
	rc = walk_location(m, fs, &rules, &res->stats);
	if (!rc)
		test_vanish(fs);
	if (!rc && !defer)
		rc = walk_hash(m, fs, cache);
	for (i = 0; !rc && defer && i < m->n; i++)
		if (m->e[i].type == 'l') /* files: hashed while archived */
			rc = walk_hash_entry(&m->e[i], fs);
	if (rc) {
		manifest_release(m);
		return rc;
	}
	count(res, m);
	return 0;
}

/* The tip of the gateway's branch; *has_tip false (and 0) when none. */
static int branch_tip(char tip[REPO_ID_LEN], struct repo *r, const char *branch, bool *has_tip)
{
	int rc = repo_branch_tip(tip, r, branch);

	*has_tip = rc == 0;
	return rc == MSGW_ENOTFOUND ? 0 : rc;
}

/* The tip's manifest, parsed into out (initialised, and left empty on
 * failure). */
static int tip_manifest(struct manifest *out, struct repo *r, const char *tip)
{
	char *text = NULL;
	size_t len;
	int rc;

	/* repo_read's messages name the snapshot already; the parser's do not */
	rc = repo_read(&text, &len, r, tip, "manifest");
	if (!rc && (rc = manifest_parse(out, text, len)) != 0)
		err_wrap(rc, "snapshot %.12s", tip);
	free(text);
	return rc;
}

/*
 * "Unchanged" has one definition: the manifest of what the walk found
 * equals the tip's (same_entries).  When the text this manifest formats to
 * is byte for byte the tip's (the same object id), the tip's manifest need
 * not even be read: parsing that text gives back this manifest.  That is
 * the cheap path of a scheduled run; any other case reads the tip's and
 * compares entry by entry (a manifest written in another layout may still
 * hold the same entries).
 */
static int same_text(bool *same_out, struct repo *r, const char *tip, const struct manifest *m)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	manifest_format(&text, &len, m);
	rc = repo_file_same(same_out, r, tip, "manifest", text, len);
	free(text);
	return rc;
}

static bool same_entries(const struct manifest *old_m, const struct manifest *m)
{
	struct manifest_diff d;
	bool same;

	if (old_m->n != m->n)
		return false;
	manifest_diff(&d, old_m, m);
	same = d.n == 0;
	manifest_diff_release(&d);
	return same;
}

static int write_commit(struct snapshot_result *res, struct repo *r,
			const struct config_gateway *gw, const struct snapshot_opts *opts,
			const struct manifest *old_m, const struct manifest *m, int archive_fd,
			size_t alen)
{
	int64_t now = (int64_t)time(NULL);
	char *mtext = NULL, *meta = NULL, *msg = NULL;
	size_t mlen = 0;
	int rc;

	manifest_format(&mtext, &mlen, m);
	meta = make_meta(gw, opts, res, now, repo_key(r));
	snapshot_summary(res->summary, sizeof(res->summary), gw->name, old_m, m);
	msg = commit_message(res->summary, old_m, m, opts->message, repo_key(r) != NULL);
	{
		struct repo_file files[3] = {{"config.tar.zst", NULL, alen, archive_fd},
					     REPO_FILE("manifest", mtext, mlen),
					     REPO_FILE("meta", meta, strlen(meta))};

		rc = repo_commit(res->id, r, gw->name, files, 3, msg, now);
	}
	free(mtext);
	free(meta);
	free(msg);
	return rc;
}

/* An anonymous scratch file in the repository directory (same file system,
 * so no /tmp space is needed) to stream the archive through. */
static int archive_temp_file(int *fd_out, struct repo *r)
{
	char *path = xasprintf("%s/msgw-archive.XXXXXX", repo_path(r));
	int fd = mkostemp(path, O_CLOEXEC);

	*fd_out = -1;
	if (fd < 0) {
		int rc = err_set_errno(MSGW_ERR, errno, "cannot create '%s'", path);

		free(path);
		return rc;
	}
	unlink(path);
	free(path);
	*fd_out = fd;
	return 0;
}

static int take_once(struct snapshot_result *out, struct repo *r, const struct config_gateway *gw,
		     struct fsys *fs, const struct snapshot_opts *opts, struct statcache *cache)
{
	struct manifest m, old_m;
	char tip[REPO_ID_LEN];
	int archive_fd = -1;
	size_t alen = 0;
	bool has_tip, defer;
	size_t i;
	int rc;

	manifest_init(&old_m);
	rc = branch_tip(tip, r, gw->name, &has_tip);
	if (rc)
		return rc;
	/* nothing to compare with (a first snapshot) or written anyway: the
	 * files are hashed while they are archived, so each is read once */
	defer = !has_tip || opts->always_write;
	rc = capture(&m, out, fs, gw, cache, defer);
	if (rc)
		return rc;
	if (!defer)
		rc = same_text(&out->unchanged, r, tip, &m);
	/* else the tip's manifest: to compare, and for the commit message */
	if (!rc && has_tip && !out->unchanged)
		rc = tip_manifest(&old_m, r, tip);
	if (!rc && !defer && !out->unchanged)
		out->unchanged = same_entries(&old_m, &m);
	if (!rc && out->unchanged) {
		memcpy(out->id, tip, REPO_ID_LEN);
		snprintf(out->summary, sizeof(out->summary), "%s: unchanged", gw->name);
		goto cleanup;
	}
	if (!rc)
		rc = archive_temp_file(&archive_fd, r);
	if (!rc)
		rc = archive_snapshot_write_fd(archive_fd, &alen, &m, fs, defer);
	if (!rc) { /* files removed since the walk are left out */
		manifest_drop_gone(&m);
		count(out, &m);
	}
	for (i = 0; !rc && defer && cache && i < m.n; i++)
		if (m.e[i].type == 'f')
			statcache_store(cache, &m.e[i]);
	if (!rc && opts->before_write)
		rc = opts->before_write(opts->before_write_arg);
	if (!rc)
		rc = write_commit(out, r, gw, opts, has_tip ? &old_m : NULL, &m, archive_fd, alen);
cleanup:
	if (archive_fd >= 0)
		close(archive_fd);
	manifest_release(&m);
	manifest_release(&old_m);
	return rc;
}

/* The stat cache, with the gateway's own clock read before any file is
 * (over SFTP there is no ctime: the racy-timestamp rule in statcache.h is
 * what keeps a same-second rewrite of the same size from hiding); no cache
 * when the clock cannot be read (a read-only account over SFTP). */
static void open_cache(struct statcache **out, const char *path, struct fsys *fs,
		       const struct config_gateway *gw, const struct repo *r)
{
	int64_t now;

	*out = NULL;
	if (fsys_clock(fs, &now)) {
		log_info("%s: %s; every file is read", gw->name, err_last());
		err_clear();
		return;
	}
	statcache_open_sealed(out, path, repo_key(r)); /* sealed when encrypted */
	statcache_set_clock(*out, now);
}

int snapshot_take(struct snapshot_result *out, struct repo *r, const struct config_gateway *gw,
		  struct fsys *fs, const struct snapshot_opts *opts)
{
	struct statcache *cache = NULL;
	int attempt, rc = 0;

	/* a tag that cannot be made must not leave a snapshot written */
	memset(out, 0, sizeof(*out));
	if (opts->tag && (rc = repo_tag_check(r, opts->tag)) != 0)
		return rc;
	if (opts->statcache)
		open_cache(&cache, opts->statcache, fs, gw, r);
	for (attempt = 0; attempt < 3; attempt++) {
		memset(out, 0, sizeof(*out));
		/* a retry reads every file: a cache entry that vouched for
		 * content the archive then did not find must not decide again */
		rc = take_once(out, r, gw, fs, opts, attempt ? NULL : cache);
		if (rc != MSGW_ECHANGING)
			break;
		log_info("%s: %s; reading again", gw->name, err_last());
	}
	if (!rc && cache && statcache_save(cache))
		log_warn("%s", err_last());
	statcache_free(cache);
	if (rc)
		return err_wrap(rc, "snapshot of '%s' failed", gw->name);
	if (opts->tag && opts->before_write)
		rc = opts->before_write(opts->before_write_arg);
	if (!rc && opts->tag)
		rc = repo_tag(r, opts->tag, out->id);
	return rc;
}

int snapshot_load_meta(struct snapshot *out, struct repo *r, const char *id)
{
	struct repo_commit_info ci;
	char *text = NULL;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = repo_commit_info(&ci, r, id);
	if (rc)
		return err_wrap(rc, "snapshot %.12s", id);
	memcpy(out->id, ci.id, REPO_ID_LEN);
	memcpy(out->parent, ci.parent, REPO_ID_LEN);
	out->time = ci.time;
	out->summary = ci.summary;
	/* repo_read's messages name the snapshot already; the parsers' do not */
	rc = repo_read(&text, &len, r, id, "meta");
	if (!rc && (rc = snapshot_meta_parse(&out->meta, text, len)) != 0)
		err_wrap(rc, "snapshot %.12s", id);
	free(text);
	if (rc)
		snapshot_release(out);
	return rc;
}

int snapshot_load(struct snapshot *out, struct repo *r, const char *id, bool want_archive)
{
	char *text = NULL;
	size_t len;
	int rc;

	rc = snapshot_load_meta(out, r, id);
	if (rc)
		return rc;
	rc = repo_read(&text, &len, r, id, "manifest");
	if (!rc && (rc = manifest_parse(&out->manifest, text, len)) != 0)
		err_wrap(rc, "snapshot %.12s", id);
	free(text);
	if (!rc && want_archive &&
	    (rc = repo_read_blob(&out->archive_blob, r, id, "config.tar.zst")) == 0) {
		out->archive = repo_blob_data(out->archive_blob);
		out->archive_len = repo_blob_size(out->archive_blob);
	}
	if (rc) {
		snapshot_release(out);
		return rc;
	}
	return 0;
}

void snapshot_release(struct snapshot *s)
{
	free(s->summary);
	snapshot_meta_release(&s->meta);
	manifest_release(&s->manifest);
	repo_blob_free(s->archive_blob);
	memset(s, 0, sizeof(*s));
}

static int check_tree(struct repo *r, const char *id)
{
	static const char *const want[] = {"config.tar.zst", "manifest", "meta"};
	char **names = NULL;
	size_t n = 0, i;
	int rc;

	rc = repo_tree_names(&names, &n, r, id);
	if (!rc && n != 3)
		rc = err_set(MSGW_ECORRUPT, "snapshot %.12s: tree holds %zu entries, not 3", id, n);
	for (i = 0; !rc && i < 3; i++)
		if (strcmp(names[i], want[i]) != 0)
			rc = err_set(MSGW_ECORRUPT, "snapshot %.12s: unexpected entry '%s'", id,
				     names[i]);
	repo_names_free(names, n);
	return rc;
}

int snapshot_verify(struct repo *r, const char *id)
{
	struct snapshot s;
	int rc;

	rc = check_tree(r, id);
	if (rc)
		return rc;
	rc = snapshot_load(&s, r, id, true);
	if (rc)
		return rc;
	rc = archive_snapshot_verify(s.archive, s.archive_len, &s.manifest);
	if (rc)
		err_wrap(rc, "snapshot %.12s (%s)", id, snapshot_meta_get(&s.meta, "gateway"));
	snapshot_release(&s);
	return rc;
}
