/*
 * loose: git loose object files ("blob <len>\0" + data, zlib-wrapped, named
 * objects/xx/<38 hex> after the SHA-1 of the uncompressed bytes) written
 * and read directly with zlib and libcrypto, for the snapshot archive: a
 * zstd stream that deflating again would only slow down, and that libgit2
 * would hold twice in memory (compressed and inflated) while reading.
 *
 * Part of the repo module (repo.c calls it with the repository's objects
 * directory); it knows nothing of libgit2.  Packed objects are not read
 * here: a caller falls back to libgit2 when loose_read_blob says
 * MSGW_ENOTFOUND.
 */
#ifndef MSGW_LOOSE_H
#define MSGW_LOOSE_H

#include <stddef.h>
#include <sys/types.h>

#define LOOSE_ID_LEN 41 /* 40 hex digits and a NUL */

/*
 * Write the first len bytes of fd (read with pread from offset 0) as a
 * loose blob under objects_dir, stored in zlib's uncompressed blocks
 * (level 0): stock git reads it like any other object.  The file is
 * written under a temporary name, fsync'd, renamed into place and its
 * directory fsync'd; modes are git's (0444 files, 0777 directories) under
 * the process umask.  An object that exists already is kept as it is.
 * id_out receives the blob's id in hex.  MSGW_ERR naming the path.
 */
int loose_write_blob_fd(char id_out[LOOSE_ID_LEN], const char *objects_dir, int fd, size_t len);

/*
 * Read loose object id (40 hex) under objects_dir into a malloc'd buffer
 * of exactly its size plus a NUL (not counted in *len_out), inflating the
 * file in chunks and checking the SHA-1 of what it holds against id.
 * MSGW_ENOTFOUND (no message) when there is no such loose file (it may be
 * packed); MSGW_ECORRUPT naming the file when it is damaged (zlib error,
 * bad header, wrong size, SHA-1 mismatch) or not a blob; MSGW_ERR when it
 * cannot be read.  On failure *out is NULL.
 */
int loose_read_blob(char **out, size_t *len_out, const char *objects_dir, const char *id);
/* The same for an object of another type ("commit", "tree"): one of
 * another type is MSGW_ECORRUPT, "bad header (not a <type>?)". */
int loose_read_object(char **out, size_t *len_out, const char *objects_dir, const char *id,
		      const char *type);

/*
 * The same, streamed: loose_open reads the header (*size_out: the
 * content's size) with loose_read_blob's codes; loose_read hands out the
 * content in order, returning how many bytes it put in buf (len > 0), or 0
 * once all came and the end checked out (zlib stream, size, SHA-1), or a
 * negative code.  Until it returned 0 nothing read is known to be sound.
 * loose_close accepts NULL.
 */
struct loose_reader;
int loose_open(struct loose_reader **out, size_t *size_out, const char *objects_dir,
	       const char *id);
/* loose_open for an object of the given type, as loose_read_object. */
int loose_open_type(struct loose_reader **out, size_t *size_out, const char *objects_dir,
		    const char *id, const char *type);
ssize_t loose_read(struct loose_reader *r, void *buf, size_t len);
/* Before the first loose_read: leave the SHA-1 of the content out, for a
 * caller that checks everything it reads another way and asks
 * loose_read_blob about the object when that fails.  The size still holds,
 * and so do zlib's checks of a deflated object; an object of stored blocks
 * (ours) is then read with no check of its content at all, since its
 * Adler-32 is not read on that path either. */
void loose_no_sha1(struct loose_reader *r);
void loose_close(struct loose_reader *r);

#endif
