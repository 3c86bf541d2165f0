/*
 * repo/crypt.c: what makes a repository encrypted.  Its record (git config
 * msgw.keyid, written by init), the configured key attached to an open
 * repository, and the two hooks repo.c calls: every tree file but meta is
 * sealed on its way in when a key is attached, and unsealed (authenticated
 * completely) on its way out.  A sealed object says which key sealed it,
 * so reading needs no record; the record keeps a repository initialised
 * as encrypted from getting plain snapshots, and a wrong key from being
 * attached.  The cryptography is seal.c's.
 */
#include "repo_internal.h"
#include "err.h"
#include "seal.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYID_CONFIG "msgw.keyid"

int repo_encryption(char out[SEAL_ID_LEN], struct repo *r)
{
	git_config *cfg = NULL;
	git_buf buf = {0};
	int rc = 0, e;

	out[0] = '\0';
	if (git_repository_config_snapshot(&cfg, r->g) < 0)
		return repo_git_fail(MSGW_ERR, "cannot read the repository's configuration");
	e = git_config_get_string_buf(&buf, cfg, KEYID_CONFIG);
	if (e == 0)
		snprintf(out, SEAL_ID_LEN, "%s", buf.ptr);
	else if (e != GIT_ENOTFOUND)
		rc = repo_git_fail(MSGW_ERR, "cannot read " KEYID_CONFIG);
	git_buf_dispose(&buf);
	git_config_free(cfg);
	return rc;
}

int repo_set_encryption(struct repo *r, const char *key_id)
{
	git_config *cfg = NULL;
	int rc = 0;

	if (git_repository_config(&cfg, r->g) < 0 ||
	    git_config_set_string(cfg, KEYID_CONFIG, key_id) < 0)
		rc = repo_git_fail(MSGW_ERR, "cannot record the key id in the repository");
	git_config_free(cfg);
	return rc;
}

int repo_use_key(struct repo *r, struct seal_key *key)
{
	char id[SEAL_ID_LEN];
	int rc = repo_encryption(id, r);

	if (!rc && key && *id && strcmp(id, seal_key_id(key)) != 0)
		rc = err_set(MSGW_ECONFIG,
			     "repository '%s' is encrypted with key %s, not with key %s of '%s'",
			     r->path, id, seal_key_id(key), seal_key_path(key));
	if (rc) {
		seal_key_free(key);
		return rc;
	}
	seal_key_free(r->key);
	r->key = key;
	return 0;
}

void repo_use_key_file(struct repo *r, const char *path)
{
	struct seal_key *key = NULL;
	int rc;

	if (!path)
		return;
	rc = seal_key_load(&key, path);
	if (!rc)
		rc = repo_use_key(r, key);
	if (rc) { /* said when something needs the key (list and status do not) */
		free(r->key_problem);
		r->key_problem = xstrdup(err_last());
		err_clear();
	}
}

/* Why there is no key, after "sealed with key K" or "... with key K". */
static int no_key(struct repo *r, const char *what, const char *id)
{
	if (r->key_problem)
		return err_set(MSGW_ECONFIG, "%s with key %s, and the key cannot be used: %s", what,
			       id, r->key_problem);
	return err_set(MSGW_ECONFIG,
		       "%s with key %s and no key file is configured "
		       "(encryption = \"keyfile:PATH\")",
		       what, id);
}

const struct seal_key *repo_key(const struct repo *r)
{
	return r->key;
}

/* The associated data of a sealed file: its name, a NUL, the snapshot's
 * meta.  So meta is authenticated too (altered, the content no longer
 * opens) and a sealed file cannot move to another snapshot or name. */
static char *make_ad(size_t *len_out, const char *name, const void *meta, size_t mlen)
{
	size_t n = strlen(name) + 1;
	char *ad = xmalloc(n + mlen + 1);

	memcpy(ad, name, n);
	memcpy(ad + n, meta, mlen);
	*len_out = n + mlen;
	return ad;
}

/* An anonymous scratch file (mode 0600, unlinked at once) in dir. */
static int scratch_in(int *fd_out, const char *dir, const char *what)
{
	char *path = xasprintf("%s/msgw-%s.XXXXXX", dir, what);
	int fd = mkostemp(path, O_CLOEXEC), rc = 0;

	if (fd < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot create '%s'", path);
	else
		unlink(path);
	free(path);
	*fd_out = fd;
	return rc;
}

/* An anonymous scratch file in the repository to seal the archive into. */
static int scratch(int *fd_out, struct repo *r)
{
	return scratch_in(fd_out, r->gitdir, "sealed");
}

static int seal_one(struct repo_file *f, int *fd, struct repo *r, const struct repo_file *meta)
{
	char *sealed = NULL, *ad;
	size_t len = 0, adlen;
	int rc = 0;

	ad = make_ad(&adlen, f->name, meta->data, meta->len);
	if (f->data) {
		seal_buffer(&sealed, &len, r->key, ad, adlen, f->data, f->len);
		f->data = sealed;
		f->len = len;
		f->fd = -2; /* ours to free */
	} else if (*fd >= 0) {
		rc = err_set(MSGW_ERR, "cannot seal two streamed files in one commit");
	} else if ((rc = scratch(fd, r)) == 0) {
		rc = seal_fd(*fd, &len, r->key, ad, adlen, f->fd, f->len);
		f->fd = *fd;
		f->len = len;
	}
	free(ad);
	return rc;
}

static const struct repo_file *find_meta(const struct repo_file *files, size_t nfiles)
{
	size_t i;

	for (i = 0; i < nfiles; i++)
		if (strcmp(files[i].name, "meta") == 0 && files[i].data)
			return &files[i];
	return NULL;
}

int repo_seal_files(struct repo_file **sealed_out, int *fd_out, struct repo *r,
		    const struct repo_file *files, size_t nfiles)
{
	struct repo_file *c = xcalloc(nfiles ? nfiles : 1, sizeof(*c));
	const struct repo_file *meta;
	char id[SEAL_ID_LEN];
	size_t i;
	int rc = 0;

	*fd_out = -1;
	memcpy(c, files, nfiles * sizeof(*c));
	*sealed_out = c;
	if (!r->key) {
		rc = repo_encryption(id, r);
		if (!rc && *id) {
			char *what = xasprintf("repository '%s' is encrypted", r->path);

			rc = no_key(r, what, id);
			free(what);
		}
		return rc;
	}
	meta = find_meta(files, nfiles);
	if (!meta)
		return err_set(MSGW_ERR, "cannot seal a snapshot without its meta in memory");
	for (i = 0; !rc && i < nfiles; i++)
		if (strcmp(c[i].name, "meta") != 0)
			rc = seal_one(&c[i], fd_out, r, meta);
	return rc;
}

void repo_sealed_free(struct repo_file *sealed, size_t nfiles, int fd)
{
	size_t i;

	for (i = 0; sealed && i < nfiles; i++)
		if (sealed[i].fd == -2)
			free((void *)sealed[i].data);
	free(sealed);
	if (fd >= 0)
		close(fd);
}

/* A plain object read with a key: a swap, or a plain repository under a
 * configuration that names a key (say which). */
static int plain_refused(struct repo *r)
{
	char id[SEAL_ID_LEN];

	if (repo_encryption(id, r) == 0 && !*id)
		return err_set(MSGW_ECONFIG,
			       "not sealed: repository '%s' is plain (init recorded no key) and "
			       "encryption names key %s; move its history into an encrypted "
			       "repository with 'msgw-agent reencrypt'",
			       r->path, seal_key_id(r->key));
	return err_set(MSGW_ECORRUPT,
		       "not sealed, but the repository is read with key %s "
		       "(a plain object where a sealed one belongs)",
		       seal_key_id(r->key));
}

/* The associated data a sealed file of snapshot id was sealed with: its
 * name and the snapshot's meta, read from the repository. */
static int snapshot_ad(char **ad_out, size_t *len_out, struct repo *r, const char *id,
		       const char *name)
{
	char *meta = NULL;
	size_t mlen = 0;
	int rc = repo_read(&meta, &mlen, r, id, "meta");

	*ad_out = NULL;
	if (rc)
		return rc;
	*ad_out = make_ad(len_out, name, meta, mlen);
	free(meta);
	return 0;
}

static int unseal(struct repo_blob *b, struct repo *r, const char *id, const char *name,
		  const void *data, size_t len)
{
	char *ad;
	size_t adlen;
	int rc = snapshot_ad(&ad, &adlen, r, id, name);

	if (rc)
		return rc;
	rc = seal_open(&b->plain, &b->plain_len, r->key, ad, adlen, data, len);
	free(ad);
	return rc;
}

int repo_unseal_blob(struct repo_blob *b, struct repo *r, const char *id, const char *name)
{
	const void *data = git_blob_rawcontent(b->blob);
	size_t len = (size_t)git_blob_rawsize(b->blob);

	if (!seal_is_sealed(data, len))
		return r->key && strcmp(name, "meta") != 0 ? plain_refused(r) : 0;
	if (!r->key) {
		char kid[SEAL_ID_LEN];
		int rc = seal_object_key_id(kid, data, len);

		return rc ? rc : no_key(r, "sealed", kid);
	}
	return unseal(b, r, id, name, data, len);
}

/* Up to len bytes from rd, fewer only at its end (then *eof). */
static ssize_t read_head(char *buf, size_t len, bool *eof, seal_read_fn rd, void *ctx)
{
	size_t got = 0;

	*eof = false;
	while (got < len && !*eof) {
		ssize_t n = rd(ctx, buf + got, len - got);

		if (n < 0)
			return n;
		*eof = n == 0;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Where an unsealed archive waits for its final tag: the repository (0700,
 * on the same disk as the sealed copy), else $TMPDIR or /tmp when the
 * repository is read-only to us. */
static int unseal_scratch(int *fd, struct repo *r)
{
	const char *tmp = getenv("TMPDIR");

	if (scratch_in(fd, r->gitdir, "unsealed") == 0)
		return 0;
	err_clear();
	return scratch_in(fd, tmp && *tmp ? tmp : "/tmp", "unsealed");
}

static int unseal_into(int fd, size_t *len_out, struct repo *r, const char *id, const char *name,
		       const char line[SEAL_LINE_LEN], seal_read_fn rd, void *ctx)
{
	char *ad;
	size_t adlen;
	int rc = snapshot_ad(&ad, &adlen, r, id, name);

	if (rc)
		return rc;
	rc = seal_open_stream(fd, len_out, r->key, ad, adlen, line, rd, ctx);
	free(ad);
	return rc;
}

int repo_unseal_to_file(int *fd_out, size_t *len_out, struct repo *r, const char *id,
			const char *name, seal_read_fn rd, void *ctx)
{
	char line[SEAL_LINE_LEN];
	bool eof;
	ssize_t n;
	int fd = -1, rc;

	*fd_out = -1;
	*len_out = 0;
	n = read_head(line, sizeof(line), &eof, rd, ctx);
	if (n < 0)
		return (int)n;
	if (!seal_is_sealed(line, (size_t)n))
		return plain_refused(r);
	if (eof) { /* says what is wrong with the first line */
		char kid[SEAL_ID_LEN];

		return seal_object_key_id(kid, line, (size_t)n);
	}
	rc = unseal_scratch(&fd, r);
	if (!rc)
		rc = unseal_into(fd, len_out, r, id, name, line, rd, ctx);
	if (!rc && lseek(fd, 0, SEEK_SET) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot read an unsealed object back");
	if (rc && fd >= 0) {
		close(fd);
		fd = -1;
		*len_out = 0;
	}
	*fd_out = fd;
	return rc;
}
