/*
 * journal: the restore transaction's durable record, so that a crash at any
 * point can be finished or undone by "msgw-restore recover".
 *
 * Text form, written atomically (temp file, fsync, rename, directory fsync)
 * at every phase change:
 *   msgw-journal 1
 *   gateway: msgw2
 *   snapshot: <id>          pre-restore: <id>
 *   phase: staging | swapping | awaiting-confirm | committing
 *   started: <RFC 3339>     confirm-deadline: <epoch seconds, or 0>
 *   forced: <codes>
 *   then one line per operation, in the order they are carried out:
 *   "mkdir MODE PATH", "add PATH", "modify PATH", "remove PATH",
 *   "rmdir MODE PATH", "chmod OLDMODE OLDUID OLDGID NEWMODE NEWUID NEWGID PATH"
 *   (paths percent-encoded as in the manifest, of any length); an "add" may
 *   carry "ino=N" (the staged file's inode) and "sha256=HEX" (its content,
 *   or a link's target) before the path, so that its undo removes only
 *   what this restore put there.  A header line given twice is damage.
 * Every operation can be undone by looking at the file system alone (see
 * apply.c), so the journal never needs per-operation progress marks.
 */
#ifndef MSGW_JOURNAL_H
#define MSGW_JOURNAL_H

#include "repo.h"
#include "sha256.h"

#include <stdbool.h>

#include <stddef.h>
#include <stdint.h>

enum journal_op { J_MKDIR, J_ADD, J_MODIFY, J_REMOVE, J_RMDIR, J_CHMOD };

struct journal_entry {
	enum journal_op op;
	char *path;
	uint32_t old_mode, old_uid, old_gid; /* chmod, rmdir (old_mode) */
	uint32_t mode, uid, gid;	     /* mkdir (mode), chmod (new) */
	uint64_t ino;			     /* add: the staged file's inode, or 0 */
	bool has_sha;			     /* add: sha holds what was staged */
	unsigned char sha[SHA256_LEN];	     /* add: content (or link target) digest */
};

struct journal {
	char *gateway;
	char snapshot[REPO_ID_LEN];
	char pre_restore[REPO_ID_LEN];
	char *phase;
	char *started;
	int64_t confirm_deadline;
	char *forced;
	struct journal_entry *e;
	size_t n;
};

void journal_init(struct journal *j);
void journal_add(struct journal *j, enum journal_op op, const char *path);
void journal_set_phase(struct journal *j, const char *phase);
void journal_release(struct journal *j);

char *journal_format(const struct journal *j);
/* Parse; MSGW_ECORRUPT naming the line on damage. */
int journal_parse(struct journal *out, const char *text, size_t len);

/* state-dir/journal-<gateway> */
char *journal_path(const char *state_dir, const char *gateway);
/* Write atomically and durably (0600); MSGW_ERR on failure. */
int journal_save(const struct journal *j, const char *path);
/* Load; MSGW_ENOTFOUND when there is none. */
int journal_load(struct journal *out, const char *path);

#endif
