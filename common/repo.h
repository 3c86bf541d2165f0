/*
 * repo: the snapshot repository (libgit2; the only module that includes
 * git2.h).  A bare git repository with one branch refs/heads/<gateway> per
 * gateway; each snapshot is one commit whose tree holds exactly meta,
 * manifest and config.tar.zst (DESIGN.md, "Repository format").
 *
 * The module is the folder common/repo/: repo.c (objects, refs, commits,
 * reading snapshots), remote.c (push, fetch, the --repo URL cache),
 * rewrite.c (what prune does to the repository, and the clearing of what
 * a killed run left), sharing one libgit2 handle per open repository
 * through repo_internal.h, and override.c (no CA bundle loaded by
 * libgit2's initialisation; the archive stored at zlib level 0).  Every
 * object and ref is read and written by libgit2.
 *
 * Commit ids are handed around as 40-character hex strings (char[41]).
 * libgit2's fsync of objects and refs is switched on by repo_global_init().
 */
#ifndef MSGW_REPO_H
#define MSGW_REPO_H

#include "snapref.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A commit or object id in hex with its NUL: the one id-length constant. */
#define REPO_ID_LEN 41

struct config;
struct config_remote;
struct lock;

struct repo;

/* Initialise libgit2 once per process and turn on fsync. */
void repo_global_init(void);

/* Create a bare repository at path with mode 0700 (parents created);
 * idempotent: an existing repository is left as it is.  *created_out (may
 * be NULL) says whether it was new. */
int repo_init(const char *path, int *created_out);

/* Open an existing repository; MSGW_ENOTFOUND with a hint to run init when
 * there is none. */
int repo_open(struct repo **out, const char *path);
void repo_free(struct repo *r);
const char *repo_path(const struct repo *r);

/* The tip of refs/heads/<branch>; MSGW_ENOTFOUND when the branch does not
 * exist. */
int repo_branch_tip(char out[REPO_ID_LEN], struct repo *r, const char *branch);

/* The branches (gateways) that exist, sorted; free with repo_names_free. */
int repo_branches(char ***names_out, size_t *n_out, struct repo *r);
/* Tags pointing at commit id. */
int repo_tags_at(char ***names_out, size_t *n_out, struct repo *r, const char *id);
void repo_names_free(char **names, size_t n);

struct repo_file {
	const char *name; /* "meta", "manifest", "config.tar.zst" */
	const void *data; /* the content, or NULL to stream it from fd */
	size_t len;
	int fd; /* with data NULL: len bytes read from offset 0 of fd */
};

/* A file given by its bytes in memory. */
#define REPO_FILE(name, data, len) ((struct repo_file){(name), (data), (len), -1})

/*
 * Write one commit on refs/heads/<branch> holding files as its tree, with
 * the current tip as parent (none for a new branch), message, and time
 * when.  The ref moves only if the tip is still what it was when read.
 */
int repo_commit(char out[REPO_ID_LEN], struct repo *r, const char *branch,
		const struct repo_file *files, size_t nfiles, const char *message, int64_t when);

/* Read a file of a commit's tree into a malloc'd NUL-terminated buffer.
 * MSGW_ECORRUPT when the object is damaged, MSGW_ENOTFOUND when absent. */
int repo_read(char **out, size_t *len_out, struct repo *r, const char *id, const char *name);

/*
 * Whether a commit's file named name holds exactly len bytes of data,
 * without reading the file: its id in the tree is compared with the id git
 * gives those bytes (SHA-1 of "blob LEN\0" and the bytes), and the object
 * must be present (loose or packed; its content is not read).  0 with
 * *same_out set, or MSGW_ECORRUPT when the commit or its tree cannot be
 * read (a missing file is "not the same").  In an encrypted repository
 * the stored bytes are sealed: never "the same" (the caller compares what
 * it reads instead).
 */
int repo_file_same(bool *same_out, struct repo *r, const char *id, const char *name,
		   const void *data, size_t len);

/* A file of a commit's tree held without copying (large archives): its
 * bytes stay valid until repo_blob_free. */
struct repo_blob;
int repo_read_blob(struct repo_blob **out, struct repo *r, const char *id, const char *name);
const void *repo_blob_data(const struct repo_blob *b);
size_t repo_blob_size(const struct repo_blob *b);
void repo_blob_free(struct repo_blob *b);

/*
 * A file of a commit's tree read in order, for the archive.  A loose
 * object is streamed from libgit2's loose backend (inflated as it is read,
 * never held whole) and its SHA-1 computed on the way; an object a pack
 * holds is read whole by libgit2, packs first (a damaged loose copy is
 * passed over for a sound packed one), and checked against its id before
 * anything is handed out.  *size_out is its size.  repo_stream_read
 * returns how many bytes it put in buf (len > 0), 0 at the end once the
 * object checked out, or a negative code (MSGW_ECORRUPT naming the file
 * and the loose object; the caller adds which snapshot).  Nothing read is
 * known to be sound before the 0.  Opening fails with repo_read_blob's
 * codes.  The reading may happen on another thread than the opening, one
 * thread at a time.
 */
struct repo_stream;
int repo_open_stream(struct repo_stream **out, size_t *size_out, struct repo *r, const char *id,
		     const char *name);
ssize_t repo_stream_read(struct repo_stream *s, void *buf, size_t len);
void repo_stream_free(struct repo_stream *s);

/* Names of a commit's tree entries (to check it holds exactly the three). */
int repo_tree_names(char ***names_out, size_t *n_out, struct repo *r, const char *id);

/* Commit facts. */
struct repo_commit_info {
	char id[REPO_ID_LEN];
	char parent[REPO_ID_LEN]; /* "" for a root commit */
	int64_t time;
	char *summary; /* first line of the message */
};
int repo_commit_info(struct repo_commit_info *out, struct repo *r, const char *id);
void repo_commit_info_release(struct repo_commit_info *c);

/* The ids of a branch from the tip back along first parents (newest first);
 * at most max (0: all).  Free with repo_names_free. */
int repo_log(char ***ids_out, size_t *n_out, struct repo *r, const char *branch, size_t max);

/* Resolve a snapshot name (snapref.h) to a commit id.  MSGW_ENOTFOUND
 * "no snapshot named 'x'" when nothing matches, MSGW_ECONFIG when a prefix
 * is ambiguous. */
int repo_resolve(char out[REPO_ID_LEN], struct repo *r, const char *name);

/* Create tag refs/tags/<name> at id; MSGW_ECONFIG when it exists. */
int repo_tag(struct repo *r, const char *name, const char *id);

/* Whether repo_tag(r, name, ...) could succeed now: 0, or MSGW_ECONFIG
 * with repo_tag's message for a bad or existing name.  Lets a caller refuse
 * before it writes anything. */
int repo_tag_check(struct repo *r, const char *name);

/*
 * A unified diff of two versions of one file (libgit2's patch machinery):
 * *out is the patch text ("" when equal), *binary_out says whether either
 * side is binary (then the text is "Binary files ... differ").
 */
int repo_diff_text(char **out, bool *binary_out, const char *old_data, size_t old_len,
		   const char *new_data, size_t new_len, const char *old_path,
		   const char *new_path);

/* "libgit2 1.5.1" */
const char *repo_version(void);

/* ---- encryption (crypt.c) ------------------------------------------------ */
/*
 * An encrypted repository (README, "Encrypted repositories"): with a key
 * attached, repo_commit seals every file but meta (seal.h) and
 * repo_read, repo_read_blob and repo_open_stream hand out only content
 * that authenticated completely, refusing a plain object where a sealed
 * one belongs.  Without a key, a sealed object fails with MSGW_ECONFIG
 * naming its key id; meta is never sealed, so list and status need no key.
 */
struct seal_key;

/* The key id recorded by init (msgw.keyid in the git config), "" for a
 * plain repository.  out has room for SEAL_ID_LEN (17) chars. */
int repo_encryption(char out[17], struct repo *r);
/* Record key_id: the repository is encrypted from now on. */
int repo_set_encryption(struct repo *r, const char *key_id);

/* Attach key to r (r takes it over, also on failure).  MSGW_ECONFIG when
 * the repository records another key id. */
int repo_use_key(struct repo *r, struct seal_key *key);
/* Load the key file path (NULL: nothing to do) and attach it.  A key that
 * cannot be loaded or is not the recorded one is not an error here: why is
 * kept and said in the one line of whatever later needs the key. */
void repo_use_key_file(struct repo *r, const char *path);
/* The attached key, or NULL (borrowed). */
const struct seal_key *repo_key(const struct repo *r);

/* ---- remotes (remote.c) ---------------------------------------------------- */
/*
 * Moving snapshots between the repository and its remotes
 * (the "remote" sections of the configuration) with libgit2: push, fetch,
 * the automatic push after snapshots, the record of each remote's last
 * push in the state directory, and the local cache of a repository named
 * by URL (msgw-restore --repo URL).
 *
 * Remote URLs: ssh://[USER@]HOST[:PORT]/PATH (libgit2's ssh transport, with
 * the remote's identity and passphrase-file or the ssh-agent, and the host
 * key checked against the remote's known-hosts by the same code as ssh.c
 * uses: never ~/.ssh/known_hosts, never trust on first use), file:///PATH
 * and absolute local paths.  What this does not do: https, scp-like
 * "host:path" URLs, deleting branches on remotes.
 */

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

/* ---- prune's side (rewrite.c) -------------------------------------------- */

/* The ids of commits that tags point at (lightweight or annotated, peeled),
 * sorted for bsearch with strcmp.  Free with repo_names_free. */
int repo_tagged_commits(char ***ids_out, size_t *n_out, struct repo *r);

struct repo_rewrite_result {
	char old_tip[REPO_ID_LEN];
	char new_tip[REPO_ID_LEN];
	char **old_ids, **new_ids; /* the kept commits that got new ids, pairwise */
	size_t nrewritten;
	size_t ndropped;
	size_t ntags_moved;
};

/*
 * Rebuild refs/heads/<branch>'s first-parent chain without the commits in
 * drop (ids, any order; each must be on that chain and not its tip): each
 * later commit is recreated with the same tree, author, committer (dates
 * and zones included), message and encoding, on its new parent.  Tags that
 * point at a recreated commit (lightweight ones moved, annotated ones
 * recreated with the same tagger and message) and the branch move
 * together: the moves are written to a journal first, then made (tags,
 * then the branch, which only moves if its tip is still old_tip), then
 * the journal is removed; a run killed midway is finished by the next
 * repo_lock, so a tag never ends on a commit off its branch.  Commits that
 * nothing dropped precedes keep their ids.  The dropped objects stay in
 * the object store until repo_repack.  MSGW_ERR when an id is not on the
 * chain or is the tip (nothing written then).  Release out with
 * repo_rewrite_result_release, also after a failure.
 */
int repo_rewrite_branch(struct repo_rewrite_result *out, struct repo *r, const char *branch,
			char *const *drop, size_t ndrop);
void repo_rewrite_result_release(struct repo_rewrite_result *res);

struct repo_repack_result {
	size_t objects;	       /* objects in packs afterwards */
	size_t loose_removed;  /* loose object files fewer than before */
	size_t packs_removed;  /* old packs deleted */
	size_t reflog_dropped; /* reflog entries that named dropped objects */
};

/*
 * Make the dropped snapshots' objects really gone, with stock git (which
 * must be on PATH): "git reflog expire --expire-unreachable=now --all"
 * (entries naming commits their ref no longer reaches), "git pack-refs
 * --all --prune", "git repack -a
 * -d" (what is reachable into one pack; .keep packs and their objects
 * kept; a loose object deleted only once that pack holds it), then "git
 * prune --expire=@<since - 1>" (unreachable loose objects older than since,
 * the prune's start: an object a writer added meanwhile survives), and
 * "git commit-graph write --reachable" when there is a commit-graph.  The
 * result is one that "git fsck --strict" accepts.  Call it under the
 * repository lock (repo_lock).  r's libgit2 handle is reopened after (the
 * old packs are gone): hold nothing read from r across this call.
 * MSGW_ERR naming the git command that failed.
 */
int repo_repack(struct repo_repack_result *out, struct repo *r, int64_t since);

/*
 * Take the repository lock (lock.h, at lock_repo_path) and, holding it,
 * clear what a killed run left: stale git lock files (any "*.lock" under
 * refs/ and logs/, packed-refs.lock, ...) and temporary objects and packs
 * ("tmp_obj*" in objects/ and its folders, "tmp_pack_*" and the like in
 * objects/pack/), each with a warning naming it,
 * and finish the ref moves of a prune killed midway (its journal).
 * Errors: lock_acquire's; MSGW_ERR when the journal cannot be finished
 * (the lock is released then).
 */
int repo_lock(struct lock **out, struct repo *r);

#endif
