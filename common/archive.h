/*
 * archive: the snapshot's config.tar.zst (libarchive for the pax tar, libzstd
 * for the compression; the only module that includes archive.h or zstd.h).
 *
 * Writing is deterministic: the same manifest and file contents give the same
 * bytes (entries in manifest order, only the recorded metadata, fixed zstd
 * parameters: libzstd's two compression workers, whose output is fixed by
 * the job size, not the machine).  Reading hands out one entry at a time
 * with its data streamed, so memory does not grow with the archive.
 *
 * Function names use "archive_snapshot_" so they cannot collide with
 * libarchive's own archive_* symbols.
 */
#ifndef MSGW_ARCHIVE_H
#define MSGW_ARCHIVE_H

#include "fsys.h"
#include "manifest.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* zstd level 2: on configuration text about 3% larger than level 3 (tar's
 * default) for a quarter less compression time, which is most of a first
 * snapshot's CPU. */
#define ARCHIVE_ZSTD_LEVEL 2

/*
 * Build the tar.zst of m's entries, reading file contents from fs.  Each
 * file's content is hashed while it is written; a file whose content no
 * longer matches e->sha (it changed since it was hashed) fails with
 * MSGW_ECHANGING naming it, and nothing is returned.  A file removed since
 * the walk is left out of the archive and marked gone in m, with a warning
 * (walk_vanished): drop it with manifest_drop_gone before recording m.
 * *out is malloc'd.
 */
int archive_snapshot_write(char **out, size_t *len_out, struct manifest *m, struct fsys *fs);

/* As archive_snapshot_write, streaming the compressed bytes to fd (from its
 * current offset) instead of memory; *len_out is how many were written.
 * With fill_sha the files' hashes are not known yet: each is computed from
 * the bytes archived and stored in its entry, and a file whose stat after
 * reading differs from the walk's (size, mtime, ctime, inode) fails with
 * MSGW_ECHANGING.  A first snapshot so reads every file once, not twice. */
int archive_snapshot_write_fd(int fd, size_t *len_out, struct manifest *m, struct fsys *fs,
			      bool fill_sha);

/* One entry as read back.  Types: 'f' file, 'd' directory, 'l' symlink,
 * 'h' hard link, 'c'/'b' devices, 'p' FIFO, 's' socket, '?' other. */
struct archive_snapshot_item {
	char type;
	const char *path; /* borrowed until the next call */
	const char *link; /* symlink or hard link target, or NULL */
	const char *uname, *gname;
	uint32_t mode, uid, gid;
	uint64_t size;
	int64_t mtime, mtime_nsec;
	bool sparse; /* the tar records holes (the agent never writes them) */
};

struct archive_snapshot_reader;

/* Open a reader over a tar.zst held in memory (data must outlive it). */
int archive_snapshot_open(struct archive_snapshot_reader **out, const void *data, size_t len);
/*
 * Open a reader over a tar.zst read in order from src: src(ctx, buf, len)
 * puts up to len bytes into buf and returns how many, 0 at the end, or a
 * negative code with a message.  The zstd decoding, and so every call of
 * src, runs as libarchive asks for more tar, into one buffer of 128 KiB.
 * Only when archive_snapshot_finish returned
 * 0 was all of src read and found sound (src's own end check included).
 */
typedef ssize_t (*archive_snapshot_source)(void *ctx, void *buf, size_t len);
int archive_snapshot_open_stream(struct archive_snapshot_reader **out, archive_snapshot_source src,
				 void *ctx);
/* Read what is left of the source, unused, and return its verdict (0 for a
 * reader over memory). */
int archive_snapshot_finish(struct archive_snapshot_reader *r);

/* 1 and the next item, 0 at the end, or a negative code (MSGW_ECORRUPT with
 * libarchive's message for damaged or truncated archives). */
int archive_snapshot_next(struct archive_snapshot_reader *r, struct archive_snapshot_item *item);
/* The next piece of the current entry's data, without copying: *buf points
 * into the reader's buffers until the next call on r.  Returns its length,
 * 0 at the entry's end, or a negative code.  Holes of a sparse entry come
 * as zeros, as tar -x writes them. */
ssize_t archive_snapshot_read(struct archive_snapshot_reader *r, const void **buf);
/* The rest of the current entry's data appended to b: 0, or a negative
 * code. */
struct buf;
int archive_snapshot_read_all(struct archive_snapshot_reader *r, struct buf *b);
void archive_snapshot_free(struct archive_snapshot_reader *r);

/*
 * Check a whole archive against its manifest: the same entries in the same
 * order with the same type, mode, size and sha256, and nothing else.  The
 * message names the first damaged file: "'Gateway.json': sha256 does not
 * match the manifest"; code MSGW_ECORRUPT.
 */
int archive_snapshot_verify(const void *data, size_t len, const struct manifest *m);

/*
 * What a pass of archive_snapshot_verify_with does with each entry besides
 * checking it; every callback may be NULL, and a non-zero return stops the
 * pass with that code.  pre sees each entry before it is compared with the
 * manifest (callers' own checks, without another pass over the archive);
 * begin is called once the entry matched its manifest entry e in name,
 * type and mode, data with each chunk of a file's content as it is read,
 * and end once the content matched e's size and sha256.  So a caller can
 * write entries out as they are verified, knowing that nothing after a
 * failed check is handed to it.
 */
typedef int (*archive_snapshot_item_check)(const struct archive_snapshot_item *item, void *ctx);
struct archive_snapshot_visit {
	archive_snapshot_item_check pre;
	void *pre_ctx;
	int (*begin)(const struct manifest_entry *e, void *ctx);
	int (*data)(const void *buf, size_t len, void *ctx);
	int (*end)(const struct manifest_entry *e, void *ctx);
	void *ctx; /* for begin, data and end */
};

/* archive_snapshot_verify on an open reader (from its start), calling v's
 * callbacks (v may be NULL), and on success archive_snapshot_finish.  On a
 * stream, a failure caused by a damaged source is reported as such. */
int archive_snapshot_check(struct archive_snapshot_reader *r, const struct manifest *m,
			   const struct archive_snapshot_visit *v);

/* As archive_snapshot_verify, calling v's callbacks (v may be NULL). */
int archive_snapshot_verify_with(const void *data, size_t len, const struct manifest *m,
				 const struct archive_snapshot_visit *v);

/* Read one file's whole content out of a tar.zst held in memory into a
 * malloc'd NUL-terminated buffer; MSGW_ENOTFOUND when it has no such file. */
int archive_snapshot_read_file(char **out, size_t *len_out, const void *data, size_t len,
			       const char *path);

/* Library versions for --version: "libarchive 3.6.2 zlib/... zstd/1.5.4". */
const char *archive_snapshot_versions(void);

#endif
