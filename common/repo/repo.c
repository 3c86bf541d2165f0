/*
 * repo: snapshot commits in a bare git repository through libgit2.  This is
 * the only place, with remote.c and rewrite.c beside it, where libgit2 is
 * called and its error codes translated.
 *
 * Every object and ref is read and written by libgit2: its reads check
 * each object against its id (strict hash verification, on by default)
 * and try its backends in order (packs first, then loose files), so a
 * damaged loose object with a sound packed copy still reads, and one with
 * no sound copy is named.  There is no reading "on the side": a
 * repository fetched from a remote is untrusted input, and libgit2's
 * parsers are the ones kept honest by its own test suite.
 */
#include "repo_internal.h"
#include "seal.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <git2/sys/odb_backend.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int repo_git_fail(int code, const char *what)
{
	const git_error *e = git_error_last();
	const char *msg = e && e->message ? e->message : "";
	size_t n = strlen(msg);

	/* libgit2 leaves some reasons empty ("... for writing: "): never end
	 * a message in a colon */
	while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == ':'))
		n--;
	if (n == 0)
		return err_set(code, "%s: unknown git error", what);
	return err_set(code, "%s: %.*s", what, (int)n, msg);
}

void repo_oid_str(char out[REPO_ID_LEN], const git_oid *oid)
{
	git_oid_tostr(out, REPO_ID_LEN, oid);
}

char *repo_oid_dup(const git_oid *oid)
{
	char *s = xmalloc(REPO_ID_LEN);

	repo_oid_str(s, oid);
	return s;
}

int repo_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void repo_global_init(void)
{
	static int done;

	if (done)
		return;
	repo_override_skip_ca(true);
	git_libgit2_init();
	repo_override_skip_ca(false);
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	done = 1;
}

int repo_init(const char *path, int *created_out)
{
	git_repository_init_options opts;
	git_repository *g = NULL;
	struct stat st;

	repo_global_init();
	git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	if (created_out)
		*created_out = 0;
	if (git_repository_open_bare(&g, path) == 0) {
		git_repository_free(g);
		return 0;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && rmdir(path) < 0 && errno == ENOTEMPTY)
		return err_set(MSGW_ERR, "'%s' exists and is not a repository", path);
	opts.flags =
	    GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
	opts.description = "msgw-backup configuration snapshots";
	if (git_repository_init_ext(&g, path, &opts) < 0)
		return repo_git_fail(MSGW_ERR, "cannot create repository");
	git_repository_free(g);
	if (chmod(path, 0700) < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot set mode of '%s'", path);
	if (created_out)
		*created_out = 1;
	return 0;
}

int repo_open(struct repo **out, const char *path)
{
	struct repo *r;
	git_repository *g = NULL;
	size_t n;

	*out = NULL;
	repo_global_init();
	if (git_repository_open_bare(&g, path) < 0) {
		if (access(path, F_OK) < 0)
			return err_set(MSGW_ENOTFOUND,
				       "repository '%s' does not exist (run 'msgw-agent init')",
				       path);
		return repo_git_fail(MSGW_ERR, "cannot open repository");
	}
	r = xcalloc(1, sizeof(*r));
	r->g = g;
	r->path = xstrdup(path);
	r->gitdir = xstrdup(git_repository_path(g));
	n = strlen(r->gitdir);
	if (n > 1 && r->gitdir[n - 1] == '/')
		r->gitdir[n - 1] = '\0';
	*out = r;
	return 0;
}

void repo_free(struct repo *r)
{
	if (!r)
		return;
	git_repository_free(r->g);
	seal_key_free(r->key);
	free(r->key_problem);
	free(r->path);
	free(r->gitdir);
	free(r);
}

const char *repo_path(const struct repo *r)
{
	return r->path;
}

int repo_branch_tip(char out[REPO_ID_LEN], struct repo *r, const char *branch)
{
	char *ref;
	git_oid oid;
	int e, rc = 0;

	out[0] = '\0';
	ref = xasprintf("refs/heads/%s", branch);
	e = git_reference_name_to_id(&oid, r->g, ref);
	free(ref);
	if (e == GIT_ENOTFOUND)
		return err_set(MSGW_ENOTFOUND, "no snapshots of '%s' yet", branch);
	if (e < 0)
		return repo_git_fail(MSGW_ERR, "cannot read branch");
	repo_oid_str(out, &oid);
	return rc;
}

static int list_refs(char ***names_out, size_t *n_out, struct repo *r, const char *prefix,
		     const char *id)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	char **names = NULL;
	size_t n = 0, plen = strlen(prefix);
	git_oid want;

	*names_out = NULL;
	*n_out = 0;
	if (id && git_oid_fromstr(&want, id) < 0)
		return err_set(MSGW_ERR, "bad commit id '%s'", id);
	if (git_reference_iterator_new(&it, r->g) < 0)
		return repo_git_fail(MSGW_ERR, "cannot list references");
	while (git_reference_next(&ref, it) == 0) {
		const char *name = git_reference_name(ref);
		const git_oid *target = git_reference_target(ref);

		if (strncmp(name, prefix, plen) == 0 && target &&
		    (!id || git_oid_equal(target, &want))) {
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = xstrdup(name + plen);
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	*names_out = names;
	*n_out = n;
	return 0;
}

int repo_branches(char ***names_out, size_t *n_out, struct repo *r)
{
	int rc = list_refs(names_out, n_out, r, "refs/heads/", NULL);

	if (!rc && *n_out > 1)
		qsort(*names_out, *n_out, sizeof(char *), repo_cmp_str);
	return rc;
}

int repo_tags_at(char ***names_out, size_t *n_out, struct repo *r, const char *id)
{
	int rc = list_refs(names_out, n_out, r, "refs/tags/", id);

	if (!rc && *n_out > 1)
		qsort(*names_out, *n_out, sizeof(char *), repo_cmp_str);
	return rc;
}

void repo_names_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

static int lookup_commit(git_commit **out, struct repo *r, const char *id)
{
	git_oid oid;

	if (git_oid_fromstr(&oid, id) < 0)
		return err_set(MSGW_ERR, "bad commit id '%s'", id);
	if (git_commit_lookup(out, r->g, &oid) < 0)
		return repo_git_fail(MSGW_ECORRUPT, "cannot read snapshot");
	return 0;
}

/*
 * Write len bytes of fd (from offset 0) as a new blob through a libgit2
 * write stream, so a large archive is never held in memory whole.  The
 * archive is zstd output: its loose object is a zlib stream of stored
 * blocks (level 0; override.c says why and how), not deflated again.
 */
static int blob_from_fd(git_oid *out, struct repo *r, int fd, size_t len)
{
	git_odb *odb = NULL;
	git_odb_stream *ws = NULL;
	char *buf = xmalloc(65536);
	size_t done = 0;
	int rc = 0;

	if (git_repository_odb(&odb, r->g) < 0) {
		rc = repo_git_fail(MSGW_ERR, "cannot write snapshot file");
		goto cleanup;
	}
	repo_override_store(true);
	rc = git_odb_open_wstream(&ws, odb, len, GIT_OBJECT_BLOB) < 0
		 ? repo_git_fail(MSGW_ERR, "cannot write snapshot file")
		 : 0;
	repo_override_store(false);
	if (rc)
		goto cleanup;
	while (!rc && done < len) {
		size_t want = len - done < 65536 ? len - done : 65536;
		ssize_t n = pread(fd, buf, want, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n < 0 ? err_set_errno(MSGW_ERR, errno, "cannot read snapshot file")
				   : err_set(MSGW_ERR, "cannot read snapshot file: it shrank");
		else if (git_odb_stream_write(ws, buf, (size_t)n) < 0)
			rc = repo_git_fail(MSGW_ERR, "cannot write snapshot file");
		else
			done += (size_t)n;
	}
	if (!rc && git_odb_stream_finalize_write(out, ws) < 0)
		rc = repo_git_fail(MSGW_ERR, "cannot write snapshot file");
cleanup:
	git_odb_stream_free(ws);
	git_odb_free(odb);
	free(buf);
	return rc;
}

static int build_tree(git_oid *tree_oid, struct repo *r, const struct repo_file *files,
		      size_t nfiles)
{
	git_treebuilder *tb = NULL;
	git_oid blob;
	size_t i;
	int rc = 0;

	if (git_treebuilder_new(&tb, r->g, NULL) < 0)
		return repo_git_fail(MSGW_ERR, "cannot build tree");
	for (i = 0; !rc && i < nfiles; i++) {
		if (files[i].data)
			rc = git_blob_create_from_buffer(&blob, r->g, files[i].data, files[i].len) <
				     0
				 ? repo_git_fail(MSGW_ERR, "cannot write snapshot file")
				 : 0;
		else
			rc = blob_from_fd(&blob, r, files[i].fd, files[i].len);
		if (!rc &&
		    git_treebuilder_insert(NULL, tb, files[i].name, &blob, GIT_FILEMODE_BLOB) < 0)
			rc = repo_git_fail(MSGW_ERR, "cannot write snapshot file");
	}
	if (!rc && git_treebuilder_write(tree_oid, tb) < 0)
		rc = repo_git_fail(MSGW_ERR, "cannot write tree");
	git_treebuilder_free(tb);
	return rc;
}

static git_signature *make_sig(int64_t when)
{
	char host[256] = "localhost", email[300];
	git_signature *sig = NULL;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(email, sizeof(email), "msgw-backup@%s", host);
	if (git_signature_new(&sig, "msgw-backup", email, (git_time_t)when, 0) < 0)
		return NULL;
	return sig;
}

int repo_commit(char out[REPO_ID_LEN], struct repo *r, const char *branch,
		const struct repo_file *files, size_t nfiles, const char *message, int64_t when)
{
	char *refname = xasprintf("refs/heads/%s", branch);
	git_commit *parent = NULL;
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_reference *ref = NULL;
	git_oid tree_oid, commit_oid, parent_oid;
	int has_parent, rc = 0, e;

	e = git_reference_name_to_id(&parent_oid, r->g, refname);
	has_parent = e == 0;
	if (e < 0 && e != GIT_ENOTFOUND) {
		rc = repo_git_fail(MSGW_ERR, "cannot read branch");
		goto cleanup;
	}
	if (has_parent && git_commit_lookup(&parent, r->g, &parent_oid) < 0) {
		rc = repo_git_fail(MSGW_ECORRUPT, "cannot read branch tip");
		goto cleanup;
	}
	{ /* sealed when the repository has a key (crypt.c) */
		struct repo_file *sealed = NULL;
		int sfd = -1;

		rc = repo_seal_files(&sealed, &sfd, r, files, nfiles);
		if (!rc)
			rc = build_tree(&tree_oid, r, sealed, nfiles);
		repo_sealed_free(sealed, nfiles, sfd);
	}
	if (rc)
		goto cleanup;
	sig = make_sig(when);
	if (!sig || git_tree_lookup(&tree, r->g, &tree_oid) < 0 ||
	    git_commit_create(&commit_oid, r->g, NULL, sig, sig, NULL, message, tree,
			      has_parent ? 1 : 0, (const git_commit **)&parent) < 0) {
		rc = repo_git_fail(MSGW_ERR, "cannot write snapshot commit");
		goto cleanup;
	}
	e = has_parent ? git_reference_create_matching(&ref, r->g, refname, &commit_oid, 1,
						       &parent_oid, message)
		       : git_reference_create(&ref, r->g, refname, &commit_oid, 0, message);
	if (e < 0) {
		rc = repo_git_fail(MSGW_ERR, "cannot move branch");
		goto cleanup;
	}
	/*
	 * A new repository's HEAD names a branch that never exists (master);
	 * point it at the first gateway's branch so stock "git log" works.
	 * Best effort: the snapshot is written whether or not this succeeds.
	 */
	if (!has_parent && git_repository_head_unborn(r->g) == 1)
		git_repository_set_head(r->g, refname);
	repo_oid_str(out, &commit_oid);
cleanup:
	git_reference_free(ref);
	git_tree_free(tree);
	git_signature_free(sig);
	git_commit_free(parent);
	free(refname);
	return rc;
}

/* Why object hex could not be read, naming it: its loose file when there
 * is one (the copy libgit2 found damaged when no pack has a sound one). */
static int object_fail(struct repo *r, const char *hex)
{
	const git_error *e = git_error_last();
	char *path = xasprintf("%s/objects/%.2s/%s", r->gitdir, hex, hex + 2), *what;
	int rc;

	if (e && e->klass == GIT_ERROR_ODB && access(path, F_OK) != 0 &&
	    strstr(e->message, "not found"))
		what = xasprintf("object %s is missing", hex);
	else if (access(path, F_OK) == 0)
		what = xasprintf("loose object '%s' is damaged", path);
	else
		what = xasprintf("object %s is damaged", hex);
	rc = repo_git_fail(MSGW_ECORRUPT, what);
	free(what);
	free(path);
	return rc;
}

/* Blob hex through libgit2: packs first, then the loose file, each
 * object's content checked against its id; damage names the object. */
static int read_object(struct repo_blob **out, struct repo *r, const char *hex)
{
	git_blob *blob = NULL;
	git_oid oid;

	if (git_oid_fromstr(&oid, hex) < 0)
		return err_set(MSGW_ERR, "bad object id '%s'", hex);
	if (git_blob_lookup(&blob, r->g, &oid) < 0)
		return object_fail(r, hex);
	*out = xcalloc(1, sizeof(**out));
	(*out)->blob = blob;
	return 0;
}

/* The id of file name in commit id's tree. */
static int tree_entry(char out[REPO_ID_LEN], struct repo *r, const char *id, const char *name)
{
	git_commit *c = NULL;
	git_tree *tree = NULL;
	const git_tree_entry *te;
	int rc;

	rc = lookup_commit(&c, r, id);
	if (rc)
		return rc;
	if (git_commit_tree(&tree, c) < 0) {
		rc = repo_git_fail(MSGW_ECORRUPT, "cannot read snapshot tree");
	} else if (!(te = git_tree_entry_byname(tree, name))) {
		rc = err_set(MSGW_ENOTFOUND, "snapshot %.12s has no '%s'", id, name);
	} else {
		repo_oid_str(out, git_tree_entry_id(te));
	}
	git_tree_free(tree);
	git_commit_free(c);
	return rc;
}

static int read_unsealed(struct repo_blob **out, struct repo *r, const char *id, const char *name);

/*
 * The id git gives a blob holding len bytes of data.  libcrypto's plain
 * SHA-1 (deprecated in OpenSSL 3, like sha256.c's SHA-256, but a struct on
 * the stack): EVP would load OpenSSL's providers first, half a
 * millisecond of a no-change run that hashes nothing else.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void blob_id(git_oid *out, const void *data, size_t len)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "blob %zu", len);
	SHA_CTX sha;

	SHA1_Init(&sha);
	SHA1_Update(&sha, head, (size_t)n + 1);
	SHA1_Update(&sha, data, len);
	SHA1_Final(out->id, &sha);
}
#pragma GCC diagnostic pop

int repo_file_same(bool *same_out, struct repo *r, const char *id, const char *name,
		   const void *data, size_t len)
{
	char hex[REPO_ID_LEN];
	git_odb *odb = NULL;
	git_oid want, have;
	int rc;

	*same_out = false;
	if (r->key) /* sealed bytes: never the same as plain ones */
		return 0;
	rc = tree_entry(hex, r, id, name);
	if (rc == MSGW_ENOTFOUND) {
		err_clear();
		return 0;
	}
	if (rc)
		return rc;
	git_oid_fromstr(&have, hex);
	blob_id(&want, data, len);
	if (!git_oid_equal(&want, &have))
		return 0;
	if (git_repository_odb(&odb, r->g) < 0)
		return repo_git_fail(MSGW_ERR, "cannot open the object database");
	*same_out = git_odb_exists(odb, &have) == 1;
	git_odb_free(odb);
	return 0;
}

int repo_read_blob(struct repo_blob **out, struct repo *r, const char *id, const char *name)
{
	char hex[REPO_ID_LEN];
	int rc;

	*out = NULL;
	if (r->key && strcmp(name, "meta") != 0)
		return read_unsealed(out, r, id, name);
	rc = tree_entry(hex, r, id, name);
	if (rc)
		return rc;
	rc = read_object(out, r, hex);
	if (!rc && (rc = repo_unseal_blob(*out, r, id, name)) != 0) {
		repo_blob_free(*out);
		*out = NULL;
	}
	if (rc)
		err_wrap(rc, "snapshot %.12s: '%s'", id, name);
	return rc;
}

/*
 * The archive handed out in order.  A loose object is streamed from
 * libgit2's loose backend (inflated as it is read, never held whole) and
 * its SHA-1 computed on the way: the 0 that ends the stream comes only
 * once the object matched its id.  An object a pack holds is read whole by
 * libgit2 (packs are tried first, so a damaged loose copy is passed over)
 * and checked before a byte is handed out.
 */
struct repo_stream {
	struct repo_blob *blob; /* read whole, or: */
	git_odb_stream *rs;	/* streamed from the loose file */
	EVP_MD_CTX *sha;
	git_oid id;
	size_t size, pos;
	char *what;  /* "'name'", for messages (the caller adds the snapshot) */
	char *loose; /* the loose file's path */
	void *map;   /* where libgit2 mapped the loose file, or NULL */
	size_t map_len, dropped_at;
	int plain_fd; /* with a key: the unsealed scratch file read instead, or -1 */
};

/*
 * libgit2 reads a loose object through a read-only shared mapping of the
 * whole file, and each page read stays resident: 11 MB of a restore's peak
 * memory for the archive of a large gateway.  The mapping is found by the
 * file's device and inode in /proc/self/maps; every MAP_DROP bytes handed
 * out its pages are dropped (madvise MADV_DONTNEED: the kernel refills
 * them from the page cache if libgit2 reads them again, so no byte read
 * can change; the SHA-1 checked at the end covers them anyway).  Not found
 * (no /proc), nothing is dropped.
 */
#define MAP_DROP (1u << 20)

static void find_map(struct repo_stream *st)
{
	unsigned long long start, end, ino;
	unsigned int maj, min;
	char line[4096], perms[5];
	struct stat sb;
	FILE *f;

	if (stat(st->loose, &sb) < 0 || !(f = fopen("/proc/self/maps", "re")))
		return;
	while (!st->map && fgets(line, sizeof(line), f))
		/* only a read-only shared mapping: dropping its pages loses
		 * nothing (a private written page would be lost) */
		if (sscanf(line, "%llx-%llx %4s %*s %x:%x %llu", &start, &end, perms, &maj, &min,
			   &ino) == 6 &&
		    strcmp(perms, "r--s") == 0 && ino == (unsigned long long)sb.st_ino &&
		    maj == major(sb.st_dev) && min == minor(sb.st_dev) && end > start) {
			st->map = (void *)(uintptr_t)start;
			st->map_len = (size_t)(end - start);
		}
	fclose(f);
}

static void drop_pages(struct repo_stream *st)
{
	if (!st->map || st->pos - st->dropped_at < MAP_DROP)
		return;
	madvise(st->map, st->map_len, MADV_DONTNEED);
	st->dropped_at = st->pos;
}

/* Whether a backend that cannot stream (a pack) holds oid. */
static bool packed(git_odb *odb, const git_oid *oid)
{
	size_t i, n = git_odb_num_backends(odb);

	for (i = 0; i < n; i++) {
		git_odb_backend *be = NULL;

		if (git_odb_get_backend(&be, odb, i) == 0 && !be->readstream && be->exists &&
		    be->exists(be, oid))
			return true;
	}
	return false;
}

/* Open the loose object oid as a stream, its SHA-1 begun: 0, or
 * MSGW_ENOTFOUND (no message) when it is not loose or is packed too. */
static int open_loose(struct repo_stream *st, struct repo *r, const git_oid *oid)
{
	git_odb *odb = NULL;
	git_object_t type;
	char hex[REPO_ID_LEN], head[64];
	int rc = MSGW_ENOTFOUND, n;

	if (git_repository_odb(&odb, r->g) < 0 || packed(odb, oid) ||
	    git_odb_open_rstream(&st->rs, &st->size, &type, odb, oid) < 0 ||
	    type != GIT_OBJECT_BLOB)
		goto cleanup;
	repo_oid_str(hex, oid);
	st->loose = xasprintf("%s/objects/%.2s/%s", r->gitdir, hex, hex + 2);
	st->sha = EVP_MD_CTX_new();
	n = snprintf(head, sizeof(head), "blob %zu", st->size);
	if (!st->sha || EVP_DigestInit_ex(st->sha, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(st->sha, head, (size_t)n + 1) != 1)
		goto cleanup;
	git_oid_cpy(&st->id, oid);
	find_map(st);
	rc = 0;
cleanup:
	git_error_clear();
	git_odb_free(odb);
	return rc;
}

static ssize_t source_read(struct repo_stream *st, void *buf, size_t len);

static ssize_t read_sealed(void *ctx, void *buf, size_t len)
{
	return source_read(ctx, buf, len);
}

/* The sealed object st reads unsealed into a scratch file, which st then
 * reads instead: the sealed source (stream or blob) goes at once. */
static int unseal_stream(struct repo_stream *st, struct repo *r, const char *id, const char *name)
{
	size_t len = 0;
	int rc = repo_unseal_to_file(&st->plain_fd, &len, r, id, name, read_sealed, st);

	if (st->rs)
		git_odb_stream_free(st->rs);
	st->rs = NULL;
	st->map = NULL; /* libgit2 unmapped it */
	repo_blob_free(st->blob);
	st->blob = NULL;
	st->size = len;
	st->pos = 0;
	return rc;
}

int repo_open_stream(struct repo_stream **out, size_t *size_out, struct repo *r, const char *id,
		     const char *name)
{
	struct repo_stream *st;
	char hex[REPO_ID_LEN];
	git_oid oid;
	int rc;

	*out = NULL;
	*size_out = 0;
	rc = tree_entry(hex, r, id, name);
	if (rc)
		return rc;
	st = xcalloc(1, sizeof(*st));
	st->plain_fd = -1;
	st->what = xasprintf("'%s'", name);
	git_oid_fromstr(&oid, hex);
	rc = open_loose(st, r, &oid);
	if (rc == MSGW_ENOTFOUND) {
		if (st->rs)
			git_odb_stream_free(st->rs);
		st->rs = NULL;
		rc = read_object(&st->blob, r, hex);
		if (!rc && !r->key) /* a sealed object without a key: said here */
			rc = repo_unseal_blob(st->blob, r, id, name);
		if (!rc)
			st->size = repo_blob_size(st->blob);
	}
	/* with a key: unsealed through, authenticated before a byte goes out */
	if (!rc && r->key)
		rc = unseal_stream(st, r, id, name);
	if (rc) {
		err_wrap(rc, "snapshot %.12s: '%s'", id, name);
		repo_stream_free(st);
		return rc;
	}
	*size_out = st->size;
	*out = st;
	return 0;
}

/* The end of a streamed object: its SHA-1 against its id. */
static ssize_t stream_end(struct repo_stream *st)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (st->pos != st->size || EVP_DigestFinal_ex(st->sha, md, &mdlen) != 1 ||
	    mdlen != GIT_OID_RAWSZ || memcmp(md, st->id.id, GIT_OID_RAWSZ) != 0)
		return err_set(MSGW_ECORRUPT, "%s: loose object '%s' is damaged: %s", st->what,
			       st->loose,
			       st->pos != st->size ? "shorter than its header says"
						   : "its content does not match its id");
	return 0;
}

/* The object as stored (sealed or not), from the loose stream or the blob. */
static ssize_t source_read(struct repo_stream *st, void *buf, size_t len)
{
	size_t n;

	if (st->rs) {
		int got;

		if (len > (size_t)INT32_MAX)
			len = (size_t)INT32_MAX;
		got = git_odb_stream_read(st->rs, buf, len);
		if (got < 0) {
			char *what =
			    xasprintf("%s: loose object '%s' is damaged", st->what, st->loose);

			got = repo_git_fail(MSGW_ECORRUPT, what);
			free(what);
			return got;
		}
		if (got == 0)
			return stream_end(st);
		if ((size_t)got > st->size - st->pos)
			return err_set(
			    MSGW_ECORRUPT,
			    "%s: loose object '%s' is damaged: longer than its header says",
			    st->what, st->loose);
		EVP_DigestUpdate(st->sha, buf, (size_t)got);
		st->pos += (size_t)got;
		drop_pages(st);
		return got;
	}
	n = st->size - st->pos;
	if (n > len)
		n = len;
	memcpy(buf, (const char *)repo_blob_data(st->blob) + st->pos, n);
	st->pos += n;
	return (ssize_t)n;
}

/* The unsealed scratch file, every byte of which authenticated. */
static ssize_t plain_read(struct repo_stream *st, void *buf, size_t len)
{
	ssize_t n;

	if (st->pos == st->size)
		return 0;
	if (len > st->size - st->pos)
		len = st->size - st->pos;
	do
		n = read(st->plain_fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_set_errno(MSGW_ERR, errno, "%s: cannot read the unsealed copy",
				     st->what);
	if (n == 0)
		return err_set(MSGW_ERR, "%s: the unsealed copy is shorter than it was", st->what);
	st->pos += (size_t)n;
	return n;
}

ssize_t repo_stream_read(struct repo_stream *st, void *buf, size_t len)
{
	return st->plain_fd >= 0 ? plain_read(st, buf, len) : source_read(st, buf, len);
}

void repo_stream_free(struct repo_stream *st)
{
	if (!st)
		return;
	if (st->plain_fd >= 0)
		close(st->plain_fd);
	if (st->rs)
		git_odb_stream_free(st->rs);
	EVP_MD_CTX_free(st->sha);
	repo_blob_free(st->blob);
	free(st->loose);
	free(st->what);
	free(st);
}

/* With a key: the sealed file read through repo_open_stream (streamed when
 * loose, unsealed through a scratch file), so its sealed copy and its
 * plaintext are never both held whole: only the plaintext is. */
static int read_unsealed(struct repo_blob **out, struct repo *r, const char *id, const char *name)
{
	struct repo_stream *st = NULL;
	struct repo_blob *b;
	size_t size = 0, got = 0;
	int rc = repo_open_stream(&st, &size, r, id, name);

	if (rc)
		return rc;
	b = xcalloc(1, sizeof(*b));
	b->plain = xmalloc(size + 1);
	b->plain_len = size;
	while (!rc && got < size) {
		ssize_t n = repo_stream_read(st, b->plain + got, size - got);

		if (n < 0)
			rc = (int)n;
		else if (n == 0)
			rc = err_set(MSGW_ERR, "'%s': the unsealed copy is shorter than it was",
				     name);
		got += n > 0 ? (size_t)n : 0;
	}
	b->plain[size] = '\0';
	repo_stream_free(st);
	if (rc) {
		repo_blob_free(b);
		return err_wrap(rc, "snapshot %.12s", id);
	}
	*out = b;
	return 0;
}

const void *repo_blob_data(const struct repo_blob *b)
{
	return b->plain ? b->plain : git_blob_rawcontent(b->blob);
}

size_t repo_blob_size(const struct repo_blob *b)
{
	return b->plain ? b->plain_len : (size_t)git_blob_rawsize(b->blob);
}

void repo_blob_free(struct repo_blob *b)
{
	if (!b)
		return;
	if (b->plain)
		explicit_bzero(b->plain, b->plain_len);
	free(b->plain);
	git_blob_free(b->blob);
	free(b);
}

int repo_read(char **out, size_t *len_out, struct repo *r, const char *id, const char *name)
{
	struct repo_blob *b = NULL;
	int rc = repo_read_blob(&b, r, id, name);

	*out = NULL;
	if (rc)
		return rc;
	*len_out = repo_blob_size(b);
	*out = xmalloc(*len_out + 1);
	memcpy(*out, repo_blob_data(b), *len_out);
	(*out)[*len_out] = '\0';
	repo_blob_free(b);
	return 0;
}

int repo_tree_names(char ***names_out, size_t *n_out, struct repo *r, const char *id)
{
	git_commit *c = NULL;
	git_tree *tree = NULL;
	size_t i, n;
	int rc;

	*names_out = NULL;
	*n_out = 0;
	rc = lookup_commit(&c, r, id);
	if (rc)
		return rc;
	if (git_commit_tree(&tree, c) < 0) {
		rc = repo_git_fail(MSGW_ECORRUPT, "cannot read snapshot tree");
	} else {
		n = git_tree_entrycount(tree);
		*names_out = xcalloc(n + 1, sizeof(char *));
		for (i = 0; i < n; i++)
			(*names_out)[i] =
			    xstrdup(git_tree_entry_name(git_tree_entry_byindex(tree, i)));
		*n_out = n;
	}
	git_tree_free(tree);
	git_commit_free(c);
	return rc;
}

int repo_commit_info(struct repo_commit_info *out, struct repo *r, const char *id)
{
	git_commit *c = NULL;
	const char *summary;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = lookup_commit(&c, r, id);
	if (rc)
		return rc;
	repo_oid_str(out->id, git_commit_id(c));
	if (git_commit_parentcount(c) > 0)
		repo_oid_str(out->parent, git_commit_parent_id(c, 0));
	out->time = (int64_t)git_commit_time(c);
	summary = git_commit_summary(c);
	out->summary = xstrdup(summary ? summary : "");
	git_commit_free(c);
	return 0;
}

void repo_commit_info_release(struct repo_commit_info *c)
{
	free(c->summary);
	c->summary = NULL;
}

int repo_log(char ***ids_out, size_t *n_out, struct repo *r, const char *branch, size_t max)
{
	char tip[REPO_ID_LEN], **ids = NULL;
	git_revwalk *walk = NULL;
	size_t n = 0;
	git_oid oid;
	int rc;

	*ids_out = NULL;
	*n_out = 0;
	rc = repo_branch_tip(tip, r, branch);
	if (rc)
		return rc;
	git_oid_fromstr(&oid, tip);
	if (git_revwalk_new(&walk, r->g) < 0 || git_revwalk_push(walk, &oid) < 0) {
		rc = repo_git_fail(MSGW_ECORRUPT, "cannot walk history");
		goto cleanup;
	}
	git_revwalk_simplify_first_parent(walk);
	git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL);
	while ((!max || n < max) && git_revwalk_next(&oid, walk) == 0) {
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		ids[n] = xmalloc(REPO_ID_LEN);
		repo_oid_str(ids[n++], &oid);
	}
	*ids_out = ids;
	*n_out = n;
cleanup:
	git_revwalk_free(walk);
	return rc;
}

static int resolve_ref(char out[REPO_ID_LEN], struct repo *r, const char *refname)
{
	git_object *obj = NULL;
	git_reference *ref = NULL;
	int rc = MSGW_ENOTFOUND;
	if (git_reference_lookup(&ref, r->g, refname) == 0 &&
	    git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
		repo_oid_str(out, git_object_id(obj));
		rc = 0;
	}
	git_object_free(obj);
	git_reference_free(ref);
	return rc;
}

static int resolve_prefix(char out[REPO_ID_LEN], struct repo *r, const char *hex)
{
	git_object *obj = NULL;
	git_oid oid;
	int e;

	if (git_oid_fromstrn(&oid, hex, strlen(hex)) < 0)
		return MSGW_ENOTFOUND;
	e = git_object_lookup_prefix(&obj, r->g, &oid, strlen(hex), GIT_OBJECT_COMMIT);
	if (e == GIT_EAMBIGUOUS)
		return err_set(MSGW_ECONFIG, "snapshot id prefix '%s' is ambiguous", hex);
	if (e < 0)
		return MSGW_ENOTFOUND;
	repo_oid_str(out, git_object_id(obj));
	git_object_free(obj);
	return 0;
}

static int walk_back(char id[REPO_ID_LEN], struct repo *r, int back, const char *text)
{
	struct repo_commit_info ci;
	int i, rc;

	for (i = 0; i < back; i++) {
		rc = repo_commit_info(&ci, r, id);
		if (rc)
			return rc;
		memcpy(id, ci.parent, REPO_ID_LEN);
		repo_commit_info_release(&ci);
		if (!id[0])
			return err_set(MSGW_ENOTFOUND,
				       "no snapshot named '%s': the branch has only %d", text,
				       i + 1);
	}
	return 0;
}

int repo_resolve(char out[REPO_ID_LEN], struct repo *r, const char *text)
{
	struct snapref ref;
	char *refname;
	int rc;

	rc = snapref_parse(&ref, text);
	if (rc)
		return rc;
	refname = xasprintf("refs/heads/%s", ref.name);
	rc = resolve_ref(out, r, refname);
	free(refname);
	if (rc == 0) {
		rc = walk_back(out, r, ref.back, text);
	} else if (ref.explicit_branch) {
		rc = err_set(MSGW_ENOTFOUND, "no snapshot named '%s': no gateway branch '%s'", text,
			     ref.name);
	} else {
		refname = xasprintf("refs/tags/%s", ref.name);
		rc = resolve_ref(out, r, refname);
		free(refname);
		if (rc && ref.maybe_hex)
			rc = resolve_prefix(out, r, ref.name);
		if (rc == MSGW_ENOTFOUND)
			rc = err_set(MSGW_ENOTFOUND, "no snapshot named '%s'", text);
	}
	snapref_release(&ref);
	return rc;
}

int repo_tag_check(struct repo *r, const char *name)
{
	char *refname;
	git_reference *ref = NULL;
	int e;

	if (!snapref_valid_name(name))
		return err_set(MSGW_ECONFIG, "bad tag name '%s'", name);
	refname = xasprintf("refs/tags/%s", name);
	e = git_reference_lookup(&ref, r->g, refname);
	git_reference_free(ref);
	free(refname);
	if (e == 0)
		return err_set(MSGW_ECONFIG, "tag '%s' already exists", name);
	if (e != GIT_ENOTFOUND)
		return repo_git_fail(MSGW_ERR, "cannot read tag");
	return 0;
}

int repo_tag(struct repo *r, const char *name, const char *id)
{
	char *refname = xasprintf("refs/tags/%s", name);
	git_reference *ref = NULL;
	git_oid oid;
	int e, rc = 0;

	if (!snapref_valid_name(name)) {
		free(refname);
		return err_set(MSGW_ECONFIG, "bad tag name '%s'", name);
	}
	git_oid_fromstr(&oid, id);
	e = git_reference_create(&ref, r->g, refname, &oid, 0, "msgw-backup tag");
	if (e == GIT_EEXISTS)
		rc = err_set(MSGW_ECONFIG, "tag '%s' already exists", name);
	else if (e < 0)
		rc = repo_git_fail(MSGW_ERR, "cannot create tag");
	git_reference_free(ref);
	free(refname);
	return rc;
}

const char *repo_version(void)
{
	static char v[64];
	int major, minor, rev;

	git_libgit2_version(&major, &minor, &rev);
	snprintf(v, sizeof(v), "libgit2 %d.%d.%d", major, minor, rev);
	return v;
}

int repo_diff_text(char **out, bool *binary_out, const char *old_data, size_t old_len,
		   const char *new_data, size_t new_len, const char *old_path, const char *new_path)
{
	git_diff_options opts;
	git_patch *patch = NULL;
	git_buf b = {0};
	int rc = 0;

	repo_global_init();
	*out = NULL;
	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	if (git_patch_from_buffers(&patch, old_data, old_len, old_path, new_data, new_len, new_path,
				   &opts) < 0)
		return repo_git_fail(MSGW_ERR, "cannot compare files");
	*binary_out = patch && (git_patch_get_delta(patch)->flags & GIT_DIFF_FLAG_BINARY);
	if (patch && git_patch_to_buf(&b, patch) < 0)
		rc = repo_git_fail(MSGW_ERR, "cannot format diff");
	else
		*out = xstrdup(b.ptr ? b.ptr : "");
	git_buf_dispose(&b);
	git_patch_free(patch);
	return rc;
}
