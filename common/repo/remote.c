/*
 * remote (part of the repo module, common/repo/): push and fetch through libgit2 with our own
 * credential and host key callbacks, the push record in the state directory, and the repository
 * cache for msgw-restore --repo URL.
 *
 * Fetch does not let libgit2 move local branches: it fetches into a scratch
 * namespace (refs/msgw-fetch/) and then moves each local branch itself,
 * only by fast-forward (or forced, for the cache), so the rule does not
 * depend on how a libgit2 version treats refspecs without '+'.  The scratch
 * refs are removed afterwards.
 */
#include "repo_internal.h"
#include "config.h"
#include "err.h"
#include "location.h"
#include "log.h"
#include "sha256.h"
#include "ssh.h"
#include "state.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH_NS "refs/msgw-fetch/"

/* What the libgit2 callbacks need, and what they found. */
struct xfer {
	const struct config_remote *rem;
	const char *what; /* "push" or "fetch" */
	bool ssh;
	struct location loc; /* ssh only */
	char *who;	     /* "user@host:port", ssh only */
	char *passphrase;
	int cred_calls;
	char failure[1024];  /* our own message from a callback, if any */
	size_t updated;	     /* push: refs changed on the remote */
	struct buf rejected; /* push: "ref (reason)" list */
};

int repo_remote_is_url(const char *s)
{
	return s && (strncmp(s, "ssh://", 6) == 0 || strncmp(s, "file://", 7) == 0);
}

static void global_init(void)
{
	repo_global_init();
}

/* libgit2's last error, or our callback's message when it set one.  The
 * text is trimmed of line ends and a final period (libgit2 and the remote's
 * git end their messages so). */
static int git_fail(struct xfer *x, int code)
{
	const git_error *e = git_error_last();
	char msg[1024];
	size_t n;

	if (x->failure[0])
		return err_set(code, "%s", x->failure);
	snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unknown git error");
	for (n = strlen(msg); n > 0 && strchr(" \t\r\n.:", msg[n - 1]); n--)
		msg[n - 1] = '\0';
	for (n = 0; msg[n]; n++)
		if (msg[n] == '\n' || msg[n] == '\r')
			msg[n] = ' ';
	return err_set(code, "remote '%s': %s: %s", x->rem->name, x->what, msg);
}

static int cb_credentials(git_credential **out, const char *url, const char *user_from_url,
			  unsigned int allowed, void *payload)
{
	struct xfer *x = payload;
	const char *user = user_from_url && *user_from_url ? user_from_url : x->loc.user;

	(void)url;
	if (!x->ssh) {
		snprintf(x->failure, sizeof(x->failure), "remote '%s': %s: credentials asked for",
			 x->rem->name, x->what);
		return GIT_EUSER;
	}
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	if (!(allowed & GIT_CREDENTIAL_SSH_KEY)) {
		snprintf(
		    x->failure, sizeof(x->failure),
		    "ssh '%s': authentication failed for user '%s': the server does not accept "
		    "public keys",
		    x->who, user);
		return GIT_EUSER;
	}
	if (x->cred_calls++ > 0) {
		/* libgit2 asks again when the first answer was refused */
		if (x->rem->identity)
			snprintf(x->failure, sizeof(x->failure),
				 "ssh '%s': authentication failed for user '%s' with key '%s'",
				 x->who, user, x->rem->identity);
		else
			snprintf(x->failure, sizeof(x->failure),
				 "ssh '%s': authentication failed for user '%s' with the ssh-agent",
				 x->who, user);
		return GIT_EUSER;
	}
	if (x->rem->identity)
		return git_credential_ssh_key_new(out, user, NULL, x->rem->identity, x->passphrase);
	if (!getenv("SSH_AUTH_SOCK")) {
		snprintf(
		    x->failure, sizeof(x->failure),
		    "ssh '%s': authentication failed for user '%s': no identity configured and "
		    "no ssh-agent (SSH_AUTH_SOCK is not set)",
		    x->who, user);
		return GIT_EUSER;
	}
	return git_credential_ssh_key_from_agent(out, user);
}

static int cb_certificate(git_cert *cert, int valid, const char *host, void *payload)
{
	struct xfer *x = payload;
	const git_cert_hostkey *hk = (const git_cert_hostkey *)cert;
	struct ssh_hostkey key;
	int rc;

	(void)valid; /* libgit2's own verdict is from ~/.ssh/known_hosts: not ours */
	(void)host;
	if (!x->ssh || cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) {
		snprintf(x->failure, sizeof(x->failure),
			 "remote '%s': %s: unexpected certificate type %d", x->rem->name, x->what,
			 (int)cert->cert_type);
		return GIT_ECERTIFICATE;
	}
	if (!(hk->type & GIT_CERT_SSH_RAW) || !hk->hostkey) {
		snprintf(x->failure, sizeof(x->failure),
			 "ssh '%s': host key verification failed: libgit2 did not hand over the "
			 "raw host key",
			 x->who);
		return GIT_ECERTIFICATE;
	}
	rc = ssh_hostkey_init(&key, x->loc.host, x->loc.port, hk->hostkey, hk->hostkey_len);
	if (!rc)
		rc = ssh_hostkey_verify(x->rem->known_hosts, &key, x->who);
	ssh_hostkey_release(&key);
	if (rc) {
		snprintf(x->failure, sizeof(x->failure), "%s", err_last());
		return GIT_ECERTIFICATE;
	}
	return 0;
}

/* The updates the push will send: the refs that really change. */
static int cb_push_negotiation(const git_push_update **updates, size_t len, void *payload)
{
	struct xfer *x = payload;
	size_t i;

	for (i = 0; i < len; i++)
		if (!git_oid_equal(&updates[i]->src, &updates[i]->dst))
			x->updated++;
	return 0;
}

static int cb_push_update(const char *refname, const char *status, void *payload)
{
	struct xfer *x = payload;

	if (!status)
		return 0;
	if (x->updated)
		x->updated--;
	buf_addf(&x->rejected, "%s%s (%s)", x->rejected.len ? ", " : "", refname, status);
	return 0;
}

static void xfer_release(struct xfer *x)
{
	location_release(&x->loc);
	free(x->who);
	ssh_passphrase_free(x->passphrase);
	x->passphrase = NULL;
	buf_release(&x->rejected);
}

/* Check the URL and prepare the callbacks' state. */
static int xfer_init(struct xfer *x, const struct config_remote *rem, const char *what)
{
	int rc;

	memset(x, 0, sizeof(*x));
	x->rem = rem;
	x->what = what;
	buf_init(&x->rejected);
	if (location_is_ssh(rem->url)) {
		x->ssh = true;
		rc = location_parse(&x->loc, rem->url);
		if (rc)
			return err_wrap(rc, "remote '%s'", rem->name);
		x->who = location_name(&x->loc);
		if (!rem->known_hosts)
			return err_set(
			    MSGW_ECONFIG,
			    "remote '%s': no known-hosts configured for '%s' (host keys are "
			    "never trusted on first use)",
			    rem->name, rem->url);
		if (!(git_libgit2_features() & GIT_FEATURE_SSH))
			return err_set(
			    MSGW_ECONFIG,
			    "remote '%s': this libgit2 (%s) was built without ssh support",
			    rem->name, repo_version());
		/* libgit2 reads the key itself: refuse a readable one first */
		rc = rem->identity ? ssh_key_file_check("identity", rem->identity) : 0;
		if (!rc && rem->identity && rem->passphrase_file)
			rc = ssh_passphrase_read(&x->passphrase, rem->passphrase_file);
		if (rc)
			return err_wrap(rc, "remote '%s'", rem->name);
		return 0;
	}
	if (strncmp(rem->url, "file://", 7) == 0 || rem->url[0] == '/') {
		/* libgit2 calls a missing path an "unsupported URL protocol" */
		const char *path = rem->url[0] == '/' ? rem->url : rem->url + 7;

		if (access(path, F_OK) < 0)
			return err_set_errno(MSGW_ERR, errno, "remote '%s': %s: '%s'", rem->name,
					     what, path);
		return 0;
	}
	return err_set(MSGW_ECONFIG,
		       "remote '%s': unsupported url '%s' (expected ssh://, file:// or an absolute "
		       "path)",
		       rem->name, rem->url);
}

/*
 * An anonymous remote for rem->url taken as it is: no url.*.insteadOf
 * rewriting from git configuration (it would also leak in libgit2 1.5 with
 * pcre2), no default fetch refspec.
 */
static int remote_new(git_remote **out, git_repository *g, const char *url)
{
	git_remote_create_options o;

	git_remote_create_options_init(&o, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	o.repository = g;
	o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	return git_remote_create_with_opts(out, url, &o);
}

static void set_callbacks(git_remote_callbacks *cb, struct xfer *x)
{
	cb->credentials = cb_credentials;
	cb->certificate_check = cb_certificate;
	cb->push_update_reference = cb_push_update;
	cb->push_negotiation = cb_push_negotiation;
	cb->payload = x;
}

/* "refs/heads/x:refs/heads/x" for every branch and tag ('+' when force). */
static int push_refspecs(git_strarray *out, git_repository *g, bool force)
{
	static const char *const globs[] = {"refs/heads/*", "refs/tags/*"};
	git_reference_iterator *it = NULL;
	const char *name;
	size_t cap = 16, i;

	out->count = 0;
	out->strings = xcalloc(cap, sizeof(char *));
	for (i = 0; i < 2; i++) {
		if (git_reference_iterator_glob_new(&it, g, globs[i]) < 0)
			return -1;
		while (git_reference_next_name(&name, it) == 0) {
			if (out->count + 1 >= cap) {
				cap *= 2;
				out->strings = xrealloc(out->strings, cap * sizeof(char *));
			}
			out->strings[out->count++] =
			    xasprintf("%s%s:%s", force ? "+" : "", name, name);
		}
		git_reference_iterator_free(it);
		it = NULL;
	}
	return 0;
}

static void strarray_free(git_strarray *a)
{
	size_t i;

	for (i = 0; i < a->count; i++)
		free(a->strings[i]);
	free(a->strings);
	a->strings = NULL;
	a->count = 0;
}

int repo_push(struct repo_push_result *out, struct repo *r, const struct config_remote *rem)
{
	git_push_options opts;
	git_repository *g = r->g;
	git_remote *remote = NULL;
	git_strarray specs = {NULL, 0};
	struct xfer x;
	int rc;

	memset(out, 0, sizeof(*out));
	global_init();
	rc = xfer_init(&x, rem, "push");
	if (rc)
		goto cleanup;
	if (push_refspecs(&specs, g, rem->prune_remotes != 0) < 0) {
		rc = git_fail(&x, MSGW_ERR);
		goto cleanup;
	}
	out->offered = specs.count;
	if (specs.count == 0) {
		log_info("remote '%s': nothing to push", rem->name);
		goto cleanup;
	}
	git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	set_callbacks(&opts.callbacks, &x);
	if (remote_new(&remote, g, rem->url) < 0 || git_remote_push(remote, &specs, &opts) < 0) {
		rc = git_fail(&x, MSGW_ERR);
		goto cleanup;
	}
	if (x.rejected.len) {
		rc =
		    err_set(MSGW_ERR, "remote '%s': push: refused: %s", rem->name, x.rejected.data);
		goto cleanup;
	}
	out->updated = x.updated;
cleanup:
	strarray_free(&specs);
	git_remote_free(remote);
	xfer_release(&x);
	return rc;
}

/* ---- the push record (state.h: STATE_DIR/push-NAME) -------------------- */

/* mkdir -p with mode 0700 for every directory made. */
static int mkdir_private(const char *dir)
{
	char *parent, *slash;
	int rc;

	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return err_set_errno(MSGW_ERR, errno, "cannot create '%s'", dir);
	parent = xstrdup(dir);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent) {
		free(parent);
		return err_set_errno(MSGW_ERR, ENOENT, "cannot create '%s'", dir);
	}
	*slash = '\0';
	rc = mkdir_private(parent);
	free(parent);
	if (rc)
		return rc;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set_errno(MSGW_ERR, errno, "cannot create '%s'", dir);
	return 0;
}

static char *state_name(const char *remote)
{
	return xasprintf("push-%s", remote);
}

static int record(const char *state_dir, const char *remote, const char *error)
{
	struct state st;
	char now[32], *name = state_name(remote);
	int rc;

	rc = mkdir_private(state_dir);
	if (!rc)
		rc = state_load(&st, state_dir, name);
	free(name);
	if (rc)
		return rc;
	time_rfc3339(now, sizeof(now), (int64_t)time(NULL));
	state_set(&st, "last-attempt", now);
	if (!error)
		state_set(&st, "last-success", now);
	else if (!state_get(&st, "last-success"))
		state_set(&st, "last-success", "never");
	state_set(&st, "last-error", error ? error : "");
	rc = state_save(&st);
	state_release(&st);
	return rc;
}

int repo_push_state_read(struct repo_push_state *out, const char *state_dir, const char *remote)
{
	char *name = state_name(remote);
	const char *v;
	struct state st;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = state_load(&st, state_dir, name);
	free(name);
	if (rc)
		return rc;
	if (!state_get(&st, "last-attempt")) {
		rc = err_set(MSGW_ENOTFOUND, "no push to remote '%s' recorded in '%s'", remote,
			     state_dir);
		state_release(&st);
		return rc;
	}
	(void)time_parse_rfc3339(&out->last_attempt, state_get(&st, "last-attempt"));
	if ((v = state_get(&st, "last-success")))
		(void)time_parse_rfc3339(&out->last_success, v);
	if ((v = state_get(&st, "last-error")) && *v)
		out->last_error = xstrdup(v);
	state_release(&st);
	return 0;
}

void repo_push_state_release(struct repo_push_state *s)
{
	if (!s)
		return;
	free(s->last_error);
	s->last_error = NULL;
}

int repo_push_recorded(struct repo_push_result *out, struct repo *r,
		       const struct config_remote *rem, const char *state_dir)
{
	char msg[1024];
	int rc = repo_push(out, r, rem);

	snprintf(msg, sizeof(msg), "%s", rc ? err_last() : "");
	if (record(state_dir, rem->name, rc ? msg : NULL))
		log_warn("%s", err_last());
	if (rc)
		err_set(rc, "%s", msg); /* the push's message, not the record's */
	return rc;
}

int repo_push_auto(struct repo *r, const struct config *cfg, const char *state_dir)
{
	struct repo_push_result res;
	size_t i;

	for (i = 0; i < cfg->nremotes; i++) {
		const struct config_remote *rem = &cfg->remotes[i];

		if (!rem->push)
			continue;
		if (repo_push_recorded(&res, r, rem, state_dir))
			log_warn("push to remote '%s' failed, retried on the next run: %s",
				 rem->name, err_last());
		else
			log_info("remote '%s': %zu of %zu refs updated", rem->name, res.updated,
				 res.offered);
	}
	err_clear();
	return 0;
}

/* ---- fetch ------------------------------------------------------------- */

/* Move refname (refs/heads/X or refs/tags/X) to the scratch ref's target:
 * 1 when it moved, 0 when it stays (equal, or not a fast-forward). */
static int move_ref(git_repository *g, const char *refname, const git_oid *theirs, bool force,
		    const char *remote)
{
	git_reference *ref = NULL, *made = NULL;
	git_oid ours;
	int moved = 0, rc;

	rc = git_reference_name_to_id(&ours, g, refname);
	if (rc == 0 && git_oid_equal(&ours, theirs))
		return 0;
	if (rc == 0 && !force) {
		bool is_tag = strncmp(refname, "refs/tags/", 10) == 0;

		if (is_tag || git_graph_descendant_of(g, theirs, &ours) != 1) {
			log_warn(
			    "remote '%s': '%s' differs here and there and is not a fast-forward: "
			    "kept as it is",
			    remote, refname);
			return 0;
		}
	}
	if (rc == 0)
		rc = git_reference_lookup(&ref, g, refname);
	if (rc == 0)
		rc = git_reference_set_target(&made, ref, theirs, "msgw fetch");
	else if (rc == GIT_ENOTFOUND)
		rc = git_reference_create(&made, g, refname, theirs, 0, "msgw fetch");
	if (rc == 0)
		moved = 1;
	git_reference_free(made);
	git_reference_free(ref);
	return rc < 0 ? rc : moved;
}

/* Move the local refs from the scratch namespace (unless only dropping it,
 * after a failed fetch), then drop it. */
static int apply_scratch(size_t *updated, git_repository *g, const char *ns, bool apply, bool force,
			 const char *remote)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	char *glob = xasprintf("%s*", ns);
	int rc = 0;

	if (git_reference_iterator_glob_new(&it, g, glob) < 0) {
		free(glob);
		return -1;
	}
	while (git_reference_next(&ref, it) == 0) {
		const char *name = git_reference_name(ref);
		const git_oid *target = git_reference_target(ref);
		char *local = xasprintf("refs/%s", name + strlen(ns));
		int m = target && apply ? move_ref(g, local, target, force, remote) : 0;

		if (m < 0 && rc == 0)
			rc = m;
		else if (m > 0)
			(*updated)++;
		git_reference_delete(ref);
		git_reference_free(ref);
		free(local);
	}
	git_reference_iterator_free(it);
	free(glob);
	return rc;
}

static int fetch(struct repo_fetch_result *out, git_repository *g, const struct config_remote *rem,
		 bool force)
{
	git_fetch_options opts;
	git_remote *remote = NULL;
	char *ns = xasprintf(SCRATCH_NS "%d/", (int)getpid());
	char *specv[2];
	git_strarray specs = {specv, 2};
	struct xfer x;
	int rc;

	memset(out, 0, sizeof(*out));
	specv[0] = xasprintf("+refs/heads/*:%sheads/*", ns);
	specv[1] = xasprintf("+refs/tags/*:%stags/*", ns);
	rc = xfer_init(&x, rem, "fetch");
	if (rc)
		goto cleanup;
	git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
	set_callbacks(&opts.callbacks, &x);
	opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	opts.prune = GIT_FETCH_NO_PRUNE;
	opts.update_fetchhead = 0;
	if (remote_new(&remote, g, rem->url) < 0 ||
	    git_remote_fetch(remote, &specs, &opts, "msgw fetch") < 0) {
		rc = git_fail(&x, MSGW_ERR);
		apply_scratch(&out->updated, g, ns, false, false, rem->name);
		goto cleanup;
	}
	if (apply_scratch(&out->updated, g, ns, true, force, rem->name) < 0) {
		x.failure[0] = '\0';
		rc = git_fail(&x, MSGW_ERR);
	}
cleanup:
	free(specv[0]);
	free(specv[1]);
	free(ns);
	git_remote_free(remote);
	xfer_release(&x);
	return rc;
}

int repo_fetch(struct repo_fetch_result *out, struct repo *r, const struct config_remote *rem)
{
	global_init();
	memset(out, 0, sizeof(*out));
	return fetch(out, r->g, rem, false);
}

/* ---- the cache for --repo URL ------------------------------------------ */

static const struct config_remote *remote_for(const struct config *cfg, const char *s)
{
	size_t i;

	for (i = 0; i < cfg->nremotes; i++)
		if (strcmp(cfg->remotes[i].name, s) == 0)
			return &cfg->remotes[i];
	for (i = 0; i < cfg->nremotes; i++)
		if (strcmp(cfg->remotes[i].url, s) == 0)
			return &cfg->remotes[i];
	return NULL;
}

/* A directory name for url: its readable characters and a hash. */
static char *cache_name(const char *url)
{
	unsigned char d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	struct buf b;
	const char *p = strstr(url, "://");

	sha256_buf(d, url, strlen(url));
	hex_encode(hex, d, sizeof(d));
	buf_init(&b);
	for (p = p ? p + 3 : url; *p && b.len < 80; p++)
		buf_add(&b, isalnum((unsigned char)*p) || strchr("._-", *p) ? p : "_", 1);
	buf_addf(&b, "-%.12s.git", hex);
	return buf_detach(&b, NULL);
}

int repo_remote_cache(char **path_out, const char *url_or_name, const struct config *cfg)
{
	const struct config_remote *rem = remote_for(cfg, url_or_name);
	struct config_remote anon = {0};
	struct repo_fetch_result res;
	struct repo *cache = NULL;
	char *dir = NULL, *path = NULL, *name = NULL;
	int rc;

	*path_out = NULL;
	global_init();
	if (!rem) {
		if (location_is_ssh(url_or_name))
			return err_set(
			    MSGW_ECONFIG,
			    "no remote in '%s' has the url '%s': add a remote section with "
			    "its identity and known-hosts",
			    cfg->path, url_or_name);
		if (!repo_remote_is_url(url_or_name))
			return err_set(MSGW_ECONFIG, "'%s' is neither a remote's name nor a URL",
				       url_or_name);
		anon.name = (char *)"repository";
		anon.url = (char *)url_or_name;
		rem = &anon;
	}
	rc = mkdir_private(cfg->state_dir);
	if (rc)
		return rc;
	dir = xasprintf("%s/repo-cache", cfg->state_dir);
	rc = mkdir_private(dir);
	if (rc)
		goto cleanup;
	name = cache_name(rem->url);
	path = xasprintf("%s/%s", dir, name);
	rc = repo_init(path, NULL);
	if (rc)
		goto cleanup;
	rc = repo_open(&cache, path);
	if (rc) {
		err_wrap(rc, "repository cache '%s'", path);
		goto cleanup;
	}
	rc = fetch(&res, cache->g, rem, true);
	if (rc)
		goto cleanup;
	log_info("repository cache '%s': %zu refs updated from '%s'", path, res.updated, rem->url);
	*path_out = path;
	path = NULL;
cleanup:
	repo_free(cache);
	free(dir);
	free(name);
	free(path);
	return rc;
}
