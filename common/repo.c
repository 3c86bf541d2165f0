/*
 * repo: snapshot commits in a bare git repository through libgit2.  This is
 * the only place libgit2 error codes are read and translated.
 *
 * libgit2 is started only when it is needed: reading a snapshot whose
 * commit, tree and files are loose objects named by plain refs (every
 * snapshot until a prune packs the repository) is done with loose.c and
 * refs.c alone, which spares a restore libgit2's start (its TLS library
 * parses the system's CA store, about 10 ms).  Whatever that reading
 * cannot do, or finds amiss, goes to libgit2, whose answers and messages
 * stay the reference.
 */
#include "repo.h"
#include "err.h"
#include "loose.h"
#include "refs.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct repo {
	git_repository *g; /* NULL until libgit2 is needed (git_of) */
	char *path;
	char *objects; /* the objects directory, for loose.c */
};

static int git_fail(int code, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(code, "%s: %s", what, e && e->message ? e->message : "unknown git error");
}

void repo_global_init(void)
{
	static int done;

	if (done)
		return;
	git_libgit2_init();
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
		return git_fail(MSGW_ERR, "cannot create repository");
	git_repository_free(g);
	if (chmod(path, 0700) < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot set mode of '%s'", path);
	if (created_out)
		*created_out = 1;
	return 0;
}

/* git_repository_path ends in a slash: drop the doubled one before tail. */
static void strip_slash_before(char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	if (n > t && s[n - t - 1] == '/')
		memmove(s + n - t - 1, s + n - t, t + 1);
}

/* Start libgit2 and open the repository, once. */
static int git_of(struct repo *r)
{
	if (r->g)
		return 0;
	repo_global_init();
	if (git_repository_open_bare(&r->g, r->path) < 0)
		return git_fail(MSGW_ERR, "cannot open repository");
	return 0;
}

static bool is_kind(const char *dir, const char *name, mode_t kind)
{
	char *p = xasprintf("%s/%s", dir, name);
	struct stat st;
	bool yes = stat(p, &st) == 0 && (st.st_mode & S_IFMT) == kind;

	free(p);
	return yes;
}

int repo_open(struct repo **out, const char *path)
{
	struct repo *r;
	git_repository *g = NULL;

	*out = NULL;
	/* what looks like a bare repository is opened by libgit2 when first
	 * needed; anything else now, for its verdict */
	if (!is_kind(path, "HEAD", S_IFREG) || !is_kind(path, "objects", S_IFDIR) ||
	    !is_kind(path, "refs", S_IFDIR)) {
		repo_global_init();
		if (git_repository_open_bare(&g, path) < 0) {
			if (access(path, F_OK) < 0)
				return err_set(
				    MSGW_ENOTFOUND,
				    "repository '%s' does not exist (run 'msgw-agent init')", path);
			return git_fail(MSGW_ERR, "cannot open repository");
		}
	}
	r = xcalloc(1, sizeof(*r));
	r->g = g;
	r->path = xstrdup(path);
	if (g) {
		r->objects = xasprintf("%s/objects", git_repository_path(g));
		strip_slash_before(r->objects, "/objects");
	} else {
		r->objects = xasprintf("%s/objects", path);
	}
	*out = r;
	return 0;
}

void repo_free(struct repo *r)
{
	if (!r)
		return;
	git_repository_free(r->g);
	free(r->path);
	free(r->objects);
	free(r);
}

const char *repo_path(const struct repo *r)
{
	return r->path;
}

static void oid_str(char out[REPO_ID_LEN], const git_oid *oid)
{
	git_oid_tostr(out, REPO_ID_LEN, oid);
}

int repo_branch_tip(char out[REPO_ID_LEN], struct repo *r, const char *branch)
{
	char *ref;
	git_oid oid;
	int e, rc = git_of(r);

	out[0] = '\0';
	if (rc)
		return rc;
	ref = xasprintf("refs/heads/%s", branch);
	e = git_reference_name_to_id(&oid, r->g, ref);
	free(ref);
	if (e == GIT_ENOTFOUND)
		return err_set(MSGW_ENOTFOUND, "no snapshots of '%s' yet", branch);
	if (e < 0)
		return git_fail(MSGW_ERR, "cannot read branch");
	oid_str(out, &oid);
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
	if (git_of(r))
		return MSGW_ERR;
	if (id && git_oid_fromstr(&want, id) < 0)
		return err_set(MSGW_ERR, "bad commit id '%s'", id);
	if (git_reference_iterator_new(&it, r->g) < 0)
		return git_fail(MSGW_ERR, "cannot list references");
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int repo_branches(char ***names_out, size_t *n_out, struct repo *r)
{
	int rc = list_refs(names_out, n_out, r, "refs/heads/", NULL);

	if (!rc && *n_out > 1)
		qsort(*names_out, *n_out, sizeof(char *), cmp_str);
	return rc;
}

int repo_tags_at(char ***names_out, size_t *n_out, struct repo *r, const char *id)
{
	int rc = list_refs(names_out, n_out, r, "refs/tags/", id);

	if (!rc && *n_out > 1)
		qsort(*names_out, *n_out, sizeof(char *), cmp_str);
	return rc;
}

void repo_names_free(char **names, size_t n)
{
	size_t i;

	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

/* --- reading without libgit2 ---------------------------------------------- */

struct fast_commit {
	char tree[REPO_ID_LEN], parent[REPO_ID_LEN];
	int64_t time;
	char *summary;
};

/* "<key> <40 hex>\n" at *p: the id into out, *p moved past it. */
static bool id_line(const char **p, const char *key, char out[REPO_ID_LEN])
{
	size_t k = strlen(key);

	if (strncmp(*p, key, k) != 0 || (*p)[k] != ' ' ||
	    !hex_is_lower(*p + k + 1, REPO_ID_LEN - 1) || (*p)[k + REPO_ID_LEN] != '\n')
		return false;
	memcpy(out, *p + k + 1, REPO_ID_LEN - 1);
	out[REPO_ID_LEN - 1] = '\0';
	*p += k + REPO_ID_LEN + 1;
	return true;
}

/* The committer's time from "committer Name <mail> <secs> <zone>" (line
 * ends at nl). */
static bool committer_time(const char *line, const char *nl, int64_t *out)
{
	const char *gt = NULL, *q;
	int64_t t = 0;

	for (q = line; q < nl; q++)
		if (*q == '>')
			gt = q;
	if (!gt || gt[1] != ' ' || gt[2] < '0' || gt[2] > '9')
		return false;
	for (q = gt + 2; q < nl && *q >= '0' && *q <= '9'; q++) {
		if (t > (INT64_MAX - 9) / 10)
			return false;
		t = t * 10 + (*q - '0');
	}
	if (q == nl || *q != ' ')
		return false;
	*out = t;
	return true;
}

/*
 * A loose commit read and parsed here: 0, or non-zero (no message) when
 * it is not loose, or is anything but plain (then libgit2 reads it).  The
 * summary is libgit2's for a message whose first paragraph is one line:
 * that line without trailing white space; longer paragraphs are left to
 * libgit2, which joins their lines.
 */
static int fast_commit(struct fast_commit *out, struct repo *r, const char *id)
{
	const char *p, *nl, *msg, *end;
	char *text = NULL;
	bool have_time = false;
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	if (!hex_is_lower(id, REPO_ID_LEN - 1) || id[REPO_ID_LEN - 1] ||
	    loose_read_object(&text, &len, r->objects, id, "commit")) {
		err_clear();
		return MSGW_ERR;
	}
	p = text;
	if (strlen(text) != len || !id_line(&p, "tree", out->tree))
		goto odd;
	if (id_line(&p, "parent", out->parent)) {
		char more[REPO_ID_LEN];

		while (id_line(&p, "parent", more))
			;
	}
	for (; *p && *p != '\n'; p = nl + 1) { /* the other header lines */
		if (!(nl = strchr(p, '\n')))
			goto odd;
		if (strncmp(p, "committer ", 10) == 0) {
			if (have_time || !committer_time(p, nl, &out->time))
				goto odd;
			have_time = true;
		}
	}
	if (*p != '\n' || !have_time)
		goto odd;
	for (msg = p + 1; *msg == '\n'; msg++)
		;
	nl = strchr(msg, '\n');
	end = nl ? nl : msg + strlen(msg);
	if (nl && nl[1] && nl[1] != '\n')
		goto odd; /* a paragraph of several lines */
	while (end > msg && isspace((unsigned char)end[-1]))
		end--;
	out->summary = xstrndup(msg, (size_t)(end - msg));
	free(text);
	return 0;
odd:
	free(text);
	return MSGW_ERR;
}

/* The tree of loose commit id, loose too: with names_out, the names of
 * its entries (NULL-terminated); else the blob id of entry name into out.
 * Non-zero (no message) when either is not loose or plain, or there is no
 * such blob. */
static int fast_tree(char out[REPO_ID_LEN], char ***names_out, size_t *n_out, struct repo *r,
		     const char *id, const char *name)
{
	char *text = NULL, **names = NULL;
	struct fast_commit c;
	const char *p, *end;
	size_t len = 0, n = 0;
	int rc = fast_commit(&c, r, id);

	if (rc)
		return rc;
	free(c.summary);
	if (loose_read_object(&text, &len, r->objects, c.tree, "tree")) {
		err_clear();
		return MSGW_ERR;
	}
	rc = MSGW_ENOTFOUND;
	for (p = text, end = text + len; p < end;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p)), *nul;

		if (!sp || !(nul = memchr(sp, '\0', (size_t)(end - sp))) || end - nul < 21 ||
		    nul == sp + 1) {
			rc = MSGW_ERR;
			break;
		}
		if (names_out) {
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = xstrndup(sp + 1, (size_t)(nul - sp - 1));
		} else if (strcmp(sp + 1, name) == 0) {
			/* a plain file; anything else is left to libgit2 */
			rc = (sp - p == 6 && memcmp(p, "100644", 6) == 0) ? 0 : MSGW_ERR;
			if (!rc)
				hex_encode(out, (const unsigned char *)nul + 1, 20);
			break;
		}
		p = nul + 21;
	}
	if (names_out && p == end) {
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n] = NULL;
		*names_out = names;
		*n_out = n;
		names = NULL;
		rc = 0;
	}
	if (names)
		repo_names_free(names, n);
	free(text);
	return rc;
}

/* The commit a plain ref names, read from the files when its object is a
 * loose commit: 0; MSGW_ENOTFOUND when there is no such ref at all;
 * MSGW_ERR when libgit2 must say. */
static int fast_ref(char out[REPO_ID_LEN], struct repo *r, const char *refname)
{
	struct loose_reader *lr = NULL;
	char id[REPO_ID_LEN];
	size_t size;
	int rc = refs_read(id, r->path, refname);

	if (rc)
		return rc;
	if (loose_open_type(&lr, &size, r->objects, id, "commit")) {
		err_clear();
		return MSGW_ERR;
	}
	loose_close(lr);
	memcpy(out, id, REPO_ID_LEN);
	return 0;
}

static int lookup_commit(git_commit **out, struct repo *r, const char *id)
{
	git_oid oid;
	int rc = git_of(r);

	if (rc)
		return rc;
	if (git_oid_fromstr(&oid, id) < 0)
		return err_set(MSGW_ERR, "bad commit id '%s'", id);
	if (git_commit_lookup(out, r->g, &oid) < 0)
		return git_fail(MSGW_ECORRUPT, "cannot read snapshot");
	return 0;
}

/* Write len bytes of fd (from offset 0) as a new blob, streamed, so a
 * large archive is never held in memory whole, and stored rather than
 * deflated: the archive is zstd data already (loose.h). */
static int blob_from_fd(git_oid *out, struct repo *r, int fd, size_t len)
{
	char id[LOOSE_ID_LEN];
	int rc = loose_write_blob_fd(id, r->objects, fd, len);

	if (rc)
		return err_wrap(rc, "cannot write snapshot file");
	git_oid_fromstr(out, id);
	return 0;
}

static int build_tree(git_oid *tree_oid, struct repo *r, const struct repo_file *files,
		      size_t nfiles)
{
	git_treebuilder *tb = NULL;
	git_oid blob;
	size_t i;
	int rc = 0;

	if (git_treebuilder_new(&tb, r->g, NULL) < 0)
		return git_fail(MSGW_ERR, "cannot build tree");
	for (i = 0; !rc && i < nfiles; i++) {
		if (files[i].data)
			rc = git_blob_create_from_buffer(&blob, r->g, files[i].data, files[i].len) <
				     0
				 ? git_fail(MSGW_ERR, "cannot write snapshot file")
				 : 0;
		else
			rc = blob_from_fd(&blob, r, files[i].fd, files[i].len);
		if (!rc &&
		    git_treebuilder_insert(NULL, tb, files[i].name, &blob, GIT_FILEMODE_BLOB) < 0)
			rc = git_fail(MSGW_ERR, "cannot write snapshot file");
	}
	if (!rc && git_treebuilder_write(tree_oid, tb) < 0)
		rc = git_fail(MSGW_ERR, "cannot write tree");
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
	int has_parent, rc, e;

	rc = git_of(r);
	if (rc)
		goto cleanup;
	e = git_reference_name_to_id(&parent_oid, r->g, refname);
	has_parent = e == 0;
	if (e < 0 && e != GIT_ENOTFOUND) {
		rc = git_fail(MSGW_ERR, "cannot read branch");
		goto cleanup;
	}
	if (has_parent && git_commit_lookup(&parent, r->g, &parent_oid) < 0) {
		rc = git_fail(MSGW_ECORRUPT, "cannot read branch tip");
		goto cleanup;
	}
	rc = build_tree(&tree_oid, r, files, nfiles);
	if (rc)
		goto cleanup;
	sig = make_sig(when);
	if (!sig || git_tree_lookup(&tree, r->g, &tree_oid) < 0 ||
	    git_commit_create(&commit_oid, r->g, NULL, sig, sig, NULL, message, tree,
			      has_parent ? 1 : 0, (const git_commit **)&parent) < 0) {
		rc = git_fail(MSGW_ERR, "cannot write snapshot commit");
		goto cleanup;
	}
	e = has_parent ? git_reference_create_matching(&ref, r->g, refname, &commit_oid, 1,
						       &parent_oid, message)
		       : git_reference_create(&ref, r->g, refname, &commit_oid, 0, message);
	if (e < 0) {
		rc = git_fail(MSGW_ERR, "cannot move branch");
		goto cleanup;
	}
	/*
	 * A new repository's HEAD names a branch that never exists (master);
	 * point it at the first gateway's branch so stock "git log" works.
	 * Best effort: the snapshot is written whether or not this succeeds.
	 */
	if (!has_parent && git_repository_head_unborn(r->g) == 1)
		git_repository_set_head(r->g, refname);
	oid_str(out, &commit_oid);
cleanup:
	git_reference_free(ref);
	git_tree_free(tree);
	git_signature_free(sig);
	git_commit_free(parent);
	free(refname);
	return rc;
}

/* Either bytes read by loose.c (data) or a libgit2 blob (packed objects). */
struct repo_blob {
	git_blob *blob;
	char *data;
	size_t len;
};

/* A loose object is read by loose.c (one buffer, fast SHA-1); a packed one
 * (after a prune's repack, or in a fetched repository) through libgit2. */
static int read_object(struct repo_blob **out, struct repo *r, const char *hex)
{
	git_blob *blob = NULL;
	char *data = NULL;
	size_t len = 0;
	git_oid oid;
	int rc;

	rc = loose_read_blob(&data, &len, r->objects, hex);
	if (rc == MSGW_ENOTFOUND) {
		if ((rc = git_of(r)) != 0)
			return rc;
		if (git_oid_fromstr(&oid, hex) < 0 || git_blob_lookup(&blob, r->g, &oid) < 0)
			return git_fail(MSGW_ECORRUPT, "cannot read object");
		rc = 0;
	}
	if (rc)
		return rc;
	*out = xcalloc(1, sizeof(**out));
	(*out)->blob = blob;
	(*out)->data = data;
	(*out)->len = len;
	return 0;
}

/* The id of file name in commit id's tree. */
static int tree_entry(char out[REPO_ID_LEN], struct repo *r, const char *id, const char *name)
{
	git_commit *c = NULL;
	git_tree *tree = NULL;
	const git_tree_entry *te;
	int rc;

	if (fast_tree(out, NULL, NULL, r, id, name) == 0)
		return 0;
	rc = lookup_commit(&c, r, id);
	if (rc)
		return rc;
	if (git_commit_tree(&tree, c) < 0) {
		rc = git_fail(MSGW_ECORRUPT, "cannot read snapshot tree");
	} else if (!(te = git_tree_entry_byname(tree, name))) {
		rc = err_set(MSGW_ENOTFOUND, "snapshot %.12s has no '%s'", id, name);
	} else {
		oid_str(out, git_tree_entry_id(te));
	}
	git_tree_free(tree);
	git_commit_free(c);
	return rc;
}

int repo_read_blob(struct repo_blob **out, struct repo *r, const char *id, const char *name)
{
	char hex[REPO_ID_LEN];
	int rc;

	*out = NULL;
	rc = tree_entry(hex, r, id, name);
	if (rc)
		return rc;
	rc = read_object(out, r, hex);
	if (rc)
		err_wrap(rc, "snapshot %.12s: '%s'", id, name);
	return rc;
}

struct repo_stream {
	struct loose_reader *loose; /* a loose object, streamed */
	struct repo_blob *blob;	    /* or a packed one, held whole by libgit2 */
	size_t pos;
	char *what; /* "'name'", for messages */
	char *objects;
	char id[REPO_ID_LEN];
};

int repo_open_stream(struct repo_stream **out, size_t *size_out, struct repo *r, const char *id,
		     const char *name)
{
	struct repo_stream *st;
	char hex[REPO_ID_LEN];
	int rc;

	*out = NULL;
	*size_out = 0;
	rc = tree_entry(hex, r, id, name);
	if (rc)
		return rc;
	st = xcalloc(1, sizeof(*st));
	st->what = xasprintf("'%s'", name);
	st->objects = xstrdup(r->objects);
	memcpy(st->id, hex, sizeof(st->id));
	rc = loose_open(&st->loose, size_out, r->objects, hex);
	if (rc == MSGW_ENOTFOUND && (rc = read_object(&st->blob, r, hex)) == 0)
		*size_out = repo_blob_size(st->blob);
	if (rc) {
		err_wrap(rc, "snapshot %.12s: '%s'", id, name);
		repo_stream_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

ssize_t repo_stream_read(struct repo_stream *st, void *buf, size_t len)
{
	ssize_t n;

	if (st->loose) {
		n = loose_read(st->loose, buf, len);
		return n < 0 ? err_wrap((int)n, "%s", st->what) : n;
	}
	n = (ssize_t)(repo_blob_size(st->blob) - st->pos);
	if ((size_t)n > len)
		n = (ssize_t)len;
	memcpy(buf, (const char *)repo_blob_data(st->blob) + st->pos, (size_t)n);
	st->pos += (size_t)n;
	return n;
}

void repo_stream_no_sha1(struct repo_stream *st)
{
	if (st->loose)
		loose_no_sha1(st->loose);
}

int repo_stream_check(struct repo_stream *st)
{
	char *data = NULL, *before;
	size_t len;
	int rc;

	if (!st->loose)
		return 0; /* libgit2 checked the packed object as it read it */
	before = xstrdup(err_last());
	rc = loose_read_blob(&data, &len, st->objects, st->id);
	free(data);
	if (rc == MSGW_ECORRUPT)
		rc = err_wrap(rc, "%s", st->what);
	else
		rc = 0, err_set(MSGW_ERR, "%s", before); /* the caller's message stands */
	free(before);
	return rc;
}

void repo_stream_free(struct repo_stream *st)
{
	if (!st)
		return;
	loose_close(st->loose);
	repo_blob_free(st->blob);
	free(st->objects);
	free(st->what);
	free(st);
}

const void *repo_blob_data(const struct repo_blob *b)
{
	return b->blob ? git_blob_rawcontent(b->blob) : b->data;
}

size_t repo_blob_size(const struct repo_blob *b)
{
	return b->blob ? (size_t)git_blob_rawsize(b->blob) : b->len;
}

void repo_blob_free(struct repo_blob *b)
{
	if (!b)
		return;
	git_blob_free(b->blob);
	free(b->data);
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
	if (fast_tree(NULL, names_out, n_out, r, id, NULL) == 0)
		return 0;
	rc = lookup_commit(&c, r, id);
	if (rc)
		return rc;
	if (git_commit_tree(&tree, c) < 0) {
		rc = git_fail(MSGW_ECORRUPT, "cannot read snapshot tree");
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
	{
		struct fast_commit fc;

		if (fast_commit(&fc, r, id) == 0) {
			memcpy(out->id, id, REPO_ID_LEN);
			memcpy(out->parent, fc.parent, REPO_ID_LEN);
			out->time = fc.time;
			out->summary = fc.summary;
			return 0;
		}
	}
	rc = lookup_commit(&c, r, id);
	if (rc)
		return rc;
	oid_str(out->id, git_commit_id(c));
	if (git_commit_parentcount(c) > 0)
		oid_str(out->parent, git_commit_parent_id(c, 0));
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
	/* repo_branch_tip started libgit2 */
	if (git_revwalk_new(&walk, r->g) < 0 || git_revwalk_push(walk, &oid) < 0) {
		rc = git_fail(MSGW_ECORRUPT, "cannot walk history");
		goto cleanup;
	}
	git_revwalk_simplify_first_parent(walk);
	git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL);
	while ((!max || n < max) && git_revwalk_next(&oid, walk) == 0) {
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		ids[n] = xmalloc(REPO_ID_LEN);
		oid_str(ids[n++], &oid);
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
	int rc = fast_ref(out, r, refname);

	if (rc != MSGW_ERR)
		return rc;
	if ((rc = git_of(r)) != 0)
		return rc;
	rc = MSGW_ENOTFOUND;
	if (git_reference_lookup(&ref, r->g, refname) == 0 &&
	    git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
		oid_str(out, git_object_id(obj));
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
	int e = git_of(r);

	if (e)
		return e;
	if (git_oid_fromstrn(&oid, hex, strlen(hex)) < 0)
		return MSGW_ENOTFOUND;
	e = git_object_lookup_prefix(&obj, r->g, &oid, strlen(hex), GIT_OBJECT_COMMIT);
	if (e == GIT_EAMBIGUOUS)
		return err_set(MSGW_ECONFIG, "snapshot id prefix '%s' is ambiguous", hex);
	if (e < 0)
		return MSGW_ENOTFOUND;
	oid_str(out, git_object_id(obj));
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
	if ((e = git_of(r)) != 0)
		return e;
	refname = xasprintf("refs/tags/%s", name);
	e = git_reference_lookup(&ref, r->g, refname);
	git_reference_free(ref);
	free(refname);
	if (e == 0)
		return err_set(MSGW_ECONFIG, "tag '%s' already exists", name);
	if (e != GIT_ENOTFOUND)
		return git_fail(MSGW_ERR, "cannot read tag");
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
	if ((rc = git_of(r)) != 0) {
		free(refname);
		return rc;
	}
	git_oid_fromstr(&oid, id);
	e = git_reference_create(&ref, r->g, refname, &oid, 0, "msgw-backup tag");
	if (e == GIT_EEXISTS)
		rc = err_set(MSGW_ECONFIG, "tag '%s' already exists", name);
	else if (e < 0)
		rc = git_fail(MSGW_ERR, "cannot create tag");
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
		return git_fail(MSGW_ERR, "cannot compare files");
	*binary_out = patch && (git_patch_get_delta(patch)->flags & GIT_DIFF_FLAG_BINARY);
	if (patch && git_patch_to_buf(&b, patch) < 0)
		rc = git_fail(MSGW_ERR, "cannot format diff");
	else
		*out = xstrdup(b.ptr ? b.ptr : "");
	git_buf_dispose(&b);
	git_patch_free(patch);
	return rc;
}
