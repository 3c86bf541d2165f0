/*
 * snapshot: taking and reading snapshots, the layer both front ends call.
 *
 * snapshot_take walks a gateway's location, hashes what it finds (through
 * the stat cache), compares the manifest with the branch tip's and, when it
 * differs, writes the deterministic archive and one commit (meta, manifest,
 * config.tar.zst).  snapshot_load reads one back; snapshot_verify checks one
 * completely against its manifest.
 */
#ifndef MSGW_SNAPSHOT_H
#define MSGW_SNAPSHOT_H

#include "config.h"
#include "fsys.h"
#include "manifest.h"
#include "repo.h"
#include "walk.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* meta: "key: value" lines. */
struct snapshot_meta {
	char **keys, **values;
	size_t n;
};

int snapshot_meta_parse(struct snapshot_meta *out, const char *text, size_t len);
/* The value of key, or NULL (borrowed). */
const char *snapshot_meta_get(const struct snapshot_meta *m, const char *key);
void snapshot_meta_set(struct snapshot_meta *m, const char *key, const char *value);
char *snapshot_meta_format(const struct snapshot_meta *m);
void snapshot_meta_release(struct snapshot_meta *m);

struct snapshot_opts {
	const char *kind;	   /* "scheduled", "manual", "pre-restore", "restored"... */
	const char *message;	   /* extra commit message text, or NULL */
	const char *tag;	   /* tag the new (or unchanged tip) snapshot, or NULL */
	const char *restored_from; /* meta restored-from, or NULL */
	const char *forced;	   /* meta forced (accepted findings), or NULL */
	const char *statcache;	   /* stat cache file, or NULL for none */
	bool always_write;	   /* write even when unchanged (pre-restore) */
	/*
	 * Called just before each write to the repository (the commit, the
	 * tag), after every read of the gateway; NULL for none.  A batch of
	 * gateways read at once takes its turn to write here (jobs.c), so it
	 * must be idempotent; a non-zero return fails the snapshot with that
	 * code and its message.
	 */
	int (*before_write)(void *arg);
	void *before_write_arg;
};

struct snapshot_result {
	char id[REPO_ID_LEN]; /* the new commit, or the tip when unchanged */
	bool unchanged;
	char summary[256]; /* "msgw1: 2 modified, 1 added, 0 removed" */
	size_t files;
	uint64_t bytes;
	struct walk_stats stats;
};

/* The walk rules of a configured gateway (borrowed pointers into gw). */
static inline void snapshot_rules(struct walk_rules *out, const struct config_gateway *gw)
{
	out->include = gw->include.n ? gw->include.v : NULL;
	out->exclude = gw->exclude.v;
	out->mailbox_store = gw->mailbox_store.v;
	out->ids_only = false;
}

int snapshot_take(struct snapshot_result *out, struct repo *r, const struct config_gateway *gw,
		  struct fsys *fs, const struct snapshot_opts *opts);

/* A snapshot read back. */
struct snapshot {
	char id[REPO_ID_LEN];
	char parent[REPO_ID_LEN];
	int64_t time;
	char *summary;
	struct snapshot_meta meta;
	struct manifest manifest;
	const char *archive; /* config.tar.zst, NULL unless loaded with want_archive */
	size_t archive_len;
	struct repo_blob *archive_blob; /* holds archive's bytes (not copied) */
};

int snapshot_load(struct snapshot *out, struct repo *r, const char *id, bool want_archive);
/* Commit facts and meta only (manifest left empty): what list and status
 * show, readable without the key of an encrypted repository. */
int snapshot_load_meta(struct snapshot *out, struct repo *r, const char *id);

/* meta "encryption" of a sealed snapshot (with "key-id"). */
#define SNAPSHOT_ENCRYPTION "secretstream-xchacha20poly1305"
void snapshot_release(struct snapshot *s);

/* Check a snapshot completely: its tree holds exactly meta, manifest and
 * config.tar.zst, meta and manifest parse, and every archive entry matches
 * the manifest.  The message names the snapshot and the damaged file. */
int snapshot_verify(struct repo *r, const char *id);

/* The commit summary for a change between two manifests. */
void snapshot_summary(char *buf, size_t len, const char *gateway, const struct manifest *old_m,
		      const struct manifest *new_m);

#endif
