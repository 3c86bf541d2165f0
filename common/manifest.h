/*
 * manifest: the list of entries of one snapshot, its text form (repository
 * format version 1) and the comparison of two manifests.
 *
 * Text form: first line "msgw-manifest 1", then one line per entry sorted by
 * path (bytewise): "type mode uid gid size sha256 path", type f, d or l, mode
 * in octal (4 digits), size in bytes, sha256 in hex ("-" for directories;
 * for links the hash of the target text), path percent-encoded for bytes
 * below 0x21, 0x7f and '%' ("%20" for a space).
 *
 * Entries also carry what the archive needs but the manifest does not hold
 * (owner names, link target, mtime); those are not part of the comparison.
 */
#ifndef MSGW_MANIFEST_H
#define MSGW_MANIFEST_H

#include "sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_HEADER "msgw-manifest 1"

struct manifest_entry {
	char type; /* 'f', 'd' or 'l' */
	uint32_t mode, uid, gid;
	uint64_t size;
	unsigned char sha[SHA256_LEN]; /* zero for directories */
	char *path;
	/* not in the manifest text: */
	char *link;	     /* link target, for 'l' */
	char *uname, *gname; /* owner names, or NULL */
	int64_t mtime, mtime_nsec;
	int64_t ctime, ctime_nsec; /* for the stat cache only */
	uint64_t ino;
	bool gone; /* removed before it was read: to be left out */
};

struct manifest {
	struct manifest_entry *e;
	size_t n, cap;
};

void manifest_init(struct manifest *m);
/* Free every entry's strings and the array; m is reusable after. */
void manifest_release(struct manifest *m);

/* Append an entry; path is copied.  Returns the new entry (borrowed, valid
 * until the next add) so the caller can fill in the rest. */
struct manifest_entry *manifest_add(struct manifest *m, char type, const char *path);

/* Remove the entries marked gone, keeping the others' order. */
void manifest_drop_gone(struct manifest *m);

/* Sort by path, bytewise (paths are unique: a walk lists each once). */
void manifest_sort(struct manifest *m);

/* The text form; caller frees *out. */
int manifest_format(char **out, size_t *len_out, const struct manifest *m);

/* Parse the text form into m (initialised by this call).  Errors name the
 * line: "manifest line 3: bad sha256"; code MSGW_ECORRUPT.  On failure m is
 * left empty. */
int manifest_parse(struct manifest *m, const char *text, size_t len);

/* Binary search by path in a sorted manifest; NULL when absent. */
const struct manifest_entry *manifest_find(const struct manifest *m, const char *path);

/* True when the two entries agree on everything the text form holds. */
bool manifest_entry_equal(const struct manifest_entry *a, const struct manifest_entry *b);

/* Percent-encode / decode one path; caller frees.  Decoding returns NULL on
 * a malformed escape. */
char *manifest_encode_path(const char *path);
/* The same, appended to b; or written at out, which has room for three
 * times strlen(path) bytes (no NUL), returning the end. */
struct buf;
void manifest_encode_path_into(struct buf *b, const char *path);
char *manifest_encode_path_to(char *out, const char *path);
char *manifest_decode_path(const char *enc);

/* What changed from a to b (both sorted). */
struct manifest_change {
	char kind;				    /* 'A' added, 'M' modified, 'D' removed */
	const struct manifest_entry *old_e, *new_e; /* borrowed; NULL where absent */
};

struct manifest_diff {
	struct manifest_change *c;
	size_t n;
	size_t added, modified, removed;
};

/* Compare entry by entry on everything the text form holds (type, mode,
 * owner ids, size, sha256, presence); a directory whose mode or owner
 * changed counts as modified, so a chmod is recorded too.  Caller releases with
 * manifest_diff_release.  a may be NULL (everything added). */
void manifest_diff(struct manifest_diff *out, const struct manifest *a, const struct manifest *b);
void manifest_diff_release(struct manifest_diff *d);

/* "2 modified, 1 added, 0 removed" into a caller buffer. */
void manifest_diff_summary(const struct manifest_diff *d, char *buf, size_t len);

#endif
