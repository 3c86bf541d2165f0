/*
 * repo_remote: moving snapshots between the repository and its remotes
 * (the "remote" sections of the configuration) with libgit2: push, fetch,
 * the automatic push after snapshots, the record of each remote's last
 * push in the state directory, and the local cache of a repository named
 * by URL (msgw-restore --repo URL).  With repo.c, the only module that
 * includes git2.h.
 *
 * Remote URLs: ssh://[USER@]HOST[:PORT]/PATH (libgit2's ssh transport, with
 * the remote's identity and passphrase-file or the ssh-agent, and the host
 * key checked against the remote's known-hosts by the same code as ssh.c
 * uses: never ~/.ssh/known_hosts, never trust on first use), file:///PATH
 * and absolute local paths.  What this does not do: https, scp-like
 * "host:path" URLs, deleting branches on remotes.
 */
#ifndef MSGW_REPO_REMOTE_H
#define MSGW_REPO_REMOTE_H

#include "config.h"
#include "repo.h"

#include <stddef.h>
#include <stdint.h>

struct repo_push_result {
	size_t offered; /* refs/heads/NAME and refs/tags/NAME pushed */
	size_t updated; /* refs the remote changed (0: it was up to date) */
};

/*
 * Push every refs/heads/NAME and refs/tags/NAME of r to rem (no force, unless the
 * remote has prune-remotes = true), creating branches the remote lacks.
 * MSGW_ERR with "remote 'NAME': push: reason" when the remote cannot be
 * reached or refuses an update (a branch that is not a fast-forward
 * there), "ssh '...': host key verification failed: ..." or
 * "... authentication failed ..." from the ssh transport; MSGW_ECONFIG
 * for an ssh URL without known-hosts or a URL form that is not supported.
 */
int repo_push(struct repo_push_result *out, struct repo *r, const struct config_remote *rem);

/* As repo_push, and record the attempt in STATE_DIR/push-NAME. */
int repo_push_recorded(struct repo_push_result *out, struct repo *r,
		       const struct config_remote *rem, const char *state_dir);

/*
 * The push after a snapshot: every remote with push = true, each attempt
 * recorded; a failure is logged as a warning ("... retried on the next
 * run") and never returned: this always returns 0, so a snapshot never
 * fails because a remote is away.  Call it after every snapshot run, also
 * an unchanged one, so a failed push is retried.
 */
int repo_push_auto(struct repo *r, const struct config *cfg, const char *state_dir);

/* The last push to one remote, from STATE_DIR/push-NAME. */
struct repo_push_state {
	int64_t last_attempt; /* 0: never */
	int64_t last_success; /* 0: never */
	char *last_error;     /* NULL when the last attempt succeeded */
};

/* MSGW_ENOTFOUND when no push was ever recorded for remote. */
int repo_push_state_read(struct repo_push_state *out, const char *state_dir, const char *remote);
void repo_push_state_release(struct repo_push_state *s);

struct repo_fetch_result {
	size_t updated; /* local refs created or moved */
};

/*
 * Fetch rem's refs/heads/NAME into refs/heads/NAME and refs/tags/NAME into
 * refs/tags/NAME of r.  Only fast-forwards: a local branch that has commits
 * the remote lacks is left as it is (and said so in a warning).  Errors as
 * for repo_push, "remote 'NAME': fetch: reason".
 */
int repo_fetch(struct repo_fetch_result *out, struct repo *r, const struct config_remote *rem);

/* Whether s names a repository by URL (ssh:// or file://) rather than by a
 * local path. */
int repo_remote_is_url(const char *s);

/*
 * msgw-restore --repo URL: make or refresh a local copy of the repository
 * at url_or_name (a configured remote's name or URL, or any file:// URL)
 * under STATE_DIR/repo-cache (mode 0700) and return its path (caller
 * frees).  The copy follows the remote exactly (forced updates).  An ssh
 * URL must be a configured remote's (its identity and known-hosts are
 * needed): MSGW_ECONFIG otherwise.  Fetch errors as repo_fetch.
 */
int repo_remote_cache(char **path_out, const char *url_or_name, const struct config *cfg);

#endif
