/*
 * loose: git loose object files written and read without libgit2; see
 * loose.h.  Writing streams a file descriptor through zlib at level 0
 * (stored blocks: a copy and an Adler-32) while libcrypto's SHA-1 (which
 * uses the CPU's SHA instructions) names the object.  Reading inflates the
 * file chunk by chunk into the caller's buffer, so the object is never in
 * memory twice; a file of stored blocks (as written here) is read into it
 * directly, without zlib.
 *
 * Left out: other object types than blobs, packs, and SHA-256
 * repositories (the snapshot repository is SHA-1, as stock git makes it).
 */
#include "loose.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define LOOSE_CHUNK (1 << 16)
#define SHA1_LEN    20

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct writer {
	int fd;
	const char *path;
	z_stream z;
	EVP_MD_CTX *md;
	unsigned char out[LOOSE_CHUNK];
};

/* Hash and deflate len bytes (at most LOOSE_CHUNK) into the file. */
static int put(struct writer *w, const void *data, size_t len, int flush)
{
	int zr;

	if (len && EVP_DigestUpdate(w->md, data, len) != 1)
		return err_set(MSGW_ERR, "cannot hash '%s'", w->path);
	w->z.next_in = (Bytef *)data;
	w->z.avail_in = (uInt)len;
	do {
		w->z.next_out = w->out;
		w->z.avail_out = sizeof(w->out);
		zr = deflate(&w->z, flush);
		if (zr == Z_STREAM_ERROR)
			return err_set(MSGW_ERR, "cannot compress '%s'", w->path);
		if (write_all(w->fd, w->out, sizeof(w->out) - w->z.avail_out) < 0)
			return err_set_errno(MSGW_ERR, errno, "cannot write '%s'", w->path);
	} while (w->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

/* A new temporary file in dir, created with git's object mode under the
 * umask (mkstemp would make it 0600 whatever the umask says). */
static int open_temp(int *fd_out, char **path_out, const char *dir)
{
	static unsigned counter;
	int i;

	for (i = 0; i < 1000; i++) {
		char *p = xasprintf("%s/tmp_obj_msgw_%ld_%u", dir, (long)getpid(), counter++);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);

		if (fd >= 0) {
			*fd_out = fd;
			*path_out = p;
			return 0;
		}
		if (errno != EEXIST) {
			int rc = err_set_errno(MSGW_ERR, errno, "cannot create '%s'", p);

			free(p);
			return rc;
		}
		free(p);
	}
	return err_set(MSGW_ERR, "cannot create a temporary object file in '%s'", dir);
}

static int write_temp(struct writer *w, int fd, size_t len)
{
	char hdr[32];
	static char chunk[LOOSE_CHUNK];
	size_t done = 0;
	int rc;

	rc = put(w, hdr, (size_t)snprintf(hdr, sizeof(hdr), "blob %zu", len) + 1, Z_NO_FLUSH);
	while (!rc && done < len) {
		size_t want = len - done < sizeof(chunk) ? len - done : sizeof(chunk);
		ssize_t n = pread(fd, chunk, want, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set_errno(MSGW_ERR, n < 0 ? errno : EIO,
					     "cannot read the archive back");
		rc = put(w, chunk, (size_t)n, Z_NO_FLUSH);
		done += (size_t)n;
	}
	if (!rc)
		rc = put(w, NULL, 0, Z_FINISH);
	if (!rc && fsync(w->fd) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot sync '%s'", w->path);
	return rc;
}

/* Move the finished temporary file to its name (keeping an existing
 * object: same name, same content) and make the rename durable. */
static int install(const char *objects_dir, const char *tmp, const char id[LOOSE_ID_LEN])
{
	char *dir = xasprintf("%s/%.2s", objects_dir, id);
	char *path = xasprintf("%s/%s", dir, id + 2);
	bool made_dir = mkdir(dir, 0777) == 0;
	int rc = 0;

	if (!made_dir && errno != EEXIST)
		rc = err_set_errno(MSGW_ERR, errno, "cannot create '%s'", dir);
	else if (access(path, F_OK) == 0)
		unlink(tmp);
	else if (rename(tmp, path) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot rename '%s' to '%s'", tmp, path);
	else
		rc = fsync_dir(dir);
	if (!rc && made_dir)
		rc = fsync_dir(objects_dir);
	free(path);
	free(dir);
	return rc;
}

int loose_write_blob_fd(char id_out[LOOSE_ID_LEN], const char *objects_dir, int fd, size_t len)
{
	struct writer *w = xcalloc(1, sizeof(*w));
	unsigned char md[SHA1_LEN];
	char *tmp = NULL;
	bool z_open = false;
	int rc;

	id_out[0] = '\0';
	w->fd = -1;
	rc = open_temp(&w->fd, &tmp, objects_dir);
	if (rc)
		goto cleanup;
	w->path = tmp;
	w->md = EVP_MD_CTX_new();
	if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha1(), NULL) != 1) {
		rc = err_set(MSGW_ERR, "cannot hash '%s': SHA-1 unavailable", tmp);
		goto cleanup;
	}
	if (deflateInit(&w->z, Z_NO_COMPRESSION) != Z_OK) {
		rc = err_set(MSGW_ERR, "cannot compress '%s': zlib failed to start", tmp);
		goto cleanup;
	}
	z_open = true;
	rc = write_temp(w, fd, len);
	if (!rc && EVP_DigestFinal_ex(w->md, md, NULL) != 1)
		rc = err_set(MSGW_ERR, "cannot hash '%s'", tmp);
	if (!rc && close(w->fd) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot close '%s'", tmp);
	w->fd = -1;
	if (!rc) {
		hex_encode(id_out, md, SHA1_LEN);
		rc = install(objects_dir, tmp, id_out);
	}
cleanup:
	if (w->fd >= 0)
		close(w->fd);
	if (rc && tmp)
		unlink(tmp);
	if (rc)
		id_out[0] = '\0';
	if (z_open)
		deflateEnd(&w->z);
	EVP_MD_CTX_free(w->md);
	free(tmp);
	free(w);
	return rc;
}

/* Where the data of a stored (uncompressed) deflate block lies. */
struct stored_block {
	off_t off;
	size_t len;
};

struct loose_reader {
	int fd;
	char *path;
	char id[LOOSE_ID_LEN];
	z_stream z;
	bool z_open, ended, verified;
	bool no_sha1; /* the caller checks the content another way */
	/* a file of stored blocks only (as loose_write makes them) is read
	 * straight into the caller's buffer, block by block, without zlib */
	struct stored_block *blk;
	size_t nblk, cur; /* blocks, and the one being read */
	size_t blk_pos;	  /* bytes of blk[cur] read */
	EVP_MD_CTX *md;
	size_t size, left;   /* the content's size, and what is still to come */
	unsigned char *head; /* content inflated with the header, not yet handed out */
	size_t head_len;
	unsigned char hdr[64];
	unsigned char in[LOOSE_CHUNK];
};

static int damaged(const struct loose_reader *rd, const char *why)
{
	return err_set(MSGW_ECORRUPT, "loose object '%s' is damaged: %s", rd->path, why);
}

/*
 * Whether the file is a zlib stream of stored blocks only, with nothing
 * after its Adler-32: then blk lists them.  Only the blocks' headers are
 * read.  Anything else (compressed blocks, as git writes them; a damaged
 * file) goes through zlib, which finds what is wrong.  On this path the
 * Adler-32 goes unchecked: the SHA-1 over the content checks more.
 */
static void find_stored(struct loose_reader *rd, off_t file_size)
{
	unsigned char h[5];
	size_t cap = 0;
	off_t pos = 2;

	if (pread(rd->fd, h, 2, 0) != 2 || (h[0] & 0x0f) != 8 || (h[0] >> 4) > 7 || (h[1] & 0x20) ||
	    (h[0] * 256 + h[1]) % 31 != 0)
		return;
	for (;;) {
		size_t len;

		if (pread(rd->fd, h, 5, pos) != 5 || (h[0] & 0x06) != 0)
			break; /* not a stored block */
		len = (size_t)h[1] | (size_t)h[2] << 8;
		if ((h[3] ^ h[1]) != 0xff || (h[4] ^ h[2]) != 0xff ||
		    pos + 5 + (off_t)len > file_size)
			break;
		if (rd->nblk == cap) {
			cap = cap ? 2 * cap : 16;
			rd->blk = xrealloc(rd->blk, cap * sizeof(*rd->blk));
		}
		rd->blk[rd->nblk++] = (struct stored_block){pos + 5, len};
		pos += 5 + (off_t)len;
		if (h[0] & 1) {
			if (pos + 4 == file_size)
				return; /* the final block, then the Adler-32 */
			break;
		}
	}
	free(rd->blk);
	rd->blk = NULL;
	rd->nblk = 0;
}

/* fill() from stored blocks: pread straight into out. */
static int fill_stored(struct loose_reader *rd, unsigned char *out, size_t len, size_t *got_out)
{
	size_t got = 0;

	while (got < len && !rd->ended) {
		const struct stored_block *b = &rd->blk[rd->cur];
		size_t n = b->len - rd->blk_pos;
		ssize_t r;

		if (n == 0) {
			rd->blk_pos = 0;
			rd->ended = ++rd->cur == rd->nblk;
			continue;
		}
		if (n > len - got)
			n = len - got;
		r = pread(rd->fd, out + got, n, b->off + (off_t)rd->blk_pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set_errno(MSGW_ERR, errno, "cannot read '%s'", rd->path);
		if (r == 0)
			return damaged(rd, "truncated");
		got += (size_t)r;
		rd->blk_pos += (size_t)r;
	}
	*got_out = got;
	return 0;
}

/* Inflate up to len bytes into out; *got_out says how many came (fewer
 * only when the zlib stream ended). */
static int fill(struct loose_reader *rd, unsigned char *out, size_t len, size_t *got_out)
{
	size_t got = 0;

	if (rd->blk)
		return fill_stored(rd, out, len, got_out);

	while (got < len && !rd->ended) {
		size_t room = len - got > UINT_MAX ? UINT_MAX : len - got;
		int zr;

		if (rd->z.avail_in == 0) {
			ssize_t n = read(rd->fd, rd->in, sizeof(rd->in));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return err_set_errno(MSGW_ERR, errno, "cannot read '%s'", rd->path);
			if (n == 0)
				return damaged(rd, "truncated");
			rd->z.next_in = rd->in;
			rd->z.avail_in = (uInt)n;
		}
		rd->z.next_out = out + got;
		rd->z.avail_out = (uInt)room;
		zr = inflate(&rd->z, Z_NO_FLUSH);
		got += room - rd->z.avail_out;
		if (zr == Z_STREAM_END)
			rd->ended = true;
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return damaged(rd, rd->z.msg ? rd->z.msg : "zlib error");
	}
	*got_out = got;
	return 0;
}

/* "<type> <decimal>\0" at the start of hdr[0..n): the size and where the
 * data begins, or -1. */
static ssize_t parse_header(const unsigned char *hdr, size_t n, const char *type, size_t *size_out)
{
	const unsigned char *nul = memchr(hdr, '\0', n), *p;
	size_t size = 0, tlen = strlen(type);

	if (!nul || n < tlen + 3 || memcmp(hdr, type, tlen) != 0 || hdr[tlen] != ' ')
		return -1;
	p = hdr + tlen + 1;
	if (p == nul || (*p == '0' && p + 1 != nul))
		return -1;
	for (; p < nul; p++) {
		if (*p < '0' || *p > '9' || size > (SIZE_MAX - 9) / 10)
			return -1;
		size = size * 10 + (size_t)(*p - '0');
	}
	*size_out = size;
	return nul + 1 - hdr;
}

static int read_header(struct loose_reader *rd, uint64_t file_size, const char *type)
{
	size_t n = 0;
	ssize_t start;
	int rc;

	rc = fill(rd, rd->hdr, sizeof(rd->hdr), &n);
	if (rc)
		return rc;
	start = parse_header(rd->hdr, n, type, &rd->size);
	/* deflate shrinks at most about 1032:1, so a larger size is a lie */
	if (start < 0 || rd->size / 1032 > file_size) {
		char why[64];

		snprintf(why, sizeof(why), "bad header (not a %s?)", type);
		return damaged(rd, why);
	}
	if (n - (size_t)start > rd->size)
		return damaged(rd, "longer than its header says");
	rd->md = EVP_MD_CTX_new();
	if (!rd->md || EVP_DigestInit_ex(rd->md, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(rd->md, rd->hdr, (size_t)start) != 1)
		return err_set(MSGW_ERR, "cannot hash '%s': SHA-1 unavailable", rd->path);
	rd->head = rd->hdr + start;
	rd->head_len = n - (size_t)start;
	rd->left = rd->size;
	return 0;
}

int loose_open_type(struct loose_reader **out, size_t *size_out, const char *objects_dir,
		    const char *id, const char *type)
{
	struct loose_reader *rd;
	struct stat st;
	int rc;

	*out = NULL;
	*size_out = 0;
	if (strlen(id) != LOOSE_ID_LEN - 1 || !hex_is_lower(id, LOOSE_ID_LEN - 1))
		return err_set(MSGW_ERR, "bad object id '%s'", id);
	rd = xcalloc(1, sizeof(*rd));
	memcpy(rd->id, id, LOOSE_ID_LEN);
	rd->path = xasprintf("%s/%.2s/%s", objects_dir, id, id + 2);
	rd->fd = open(rd->path, O_RDONLY | O_CLOEXEC);
	if (rd->fd < 0) {
		rc = errno == ENOENT ? MSGW_ENOTFOUND
				     : err_set_errno(MSGW_ERR, errno, "cannot open '%s'", rd->path);
		goto cleanup;
	}
	if (fstat(rd->fd, &st) < 0) {
		rc = err_set_errno(MSGW_ERR, errno, "cannot stat '%s'", rd->path);
		goto cleanup;
	}
	find_stored(rd, st.st_size);
	if (!rd->blk && inflateInit(&rd->z) != Z_OK) {
		rc = err_set(MSGW_ERR, "cannot inflate '%s': zlib failed to start", rd->path);
		goto cleanup;
	}
	rd->z_open = !rd->blk;
	rc = read_header(rd, (uint64_t)st.st_size, type);
cleanup:
	if (rc) {
		loose_close(rd);
		return rc;
	}
	*out = rd;
	*size_out = rd->size;
	return 0;
}

int loose_open(struct loose_reader **out, size_t *size_out, const char *objects_dir, const char *id)
{
	return loose_open_type(out, size_out, objects_dir, id, "blob");
}

/* At the end of the content: the zlib stream must end too (zlib then
 * checks its Adler-32), and the SHA-1 must be the object's name. */
static int verify_end(struct loose_reader *rd)
{
	unsigned char md[SHA1_LEN], extra;
	char got_id[LOOSE_ID_LEN];
	size_t more = 0;
	int rc;

	if (!rd->ended && (rc = fill(rd, &extra, 1, &more)) != 0)
		return rc;
	if (more)
		return damaged(rd, "longer than its header says");
	if (rd->no_sha1) {
		rd->verified = true;
		return 0;
	}
	if (EVP_DigestFinal_ex(rd->md, md, NULL) != 1)
		return err_set(MSGW_ERR, "cannot hash '%s'", rd->path);
	hex_encode(got_id, md, SHA1_LEN);
	if (strcmp(got_id, rd->id) != 0)
		return damaged(rd, "its content does not match its id");
	rd->verified = true;
	return 0;
}

ssize_t loose_read(struct loose_reader *rd, void *buf, size_t len)
{
	size_t got = 0;
	int rc;

	if (rd->verified)
		return 0;
	if (len > rd->left)
		len = rd->left;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (rd->head_len) {
		got = len < rd->head_len ? len : rd->head_len;
		memcpy(buf, rd->head, got);
		rd->head += got;
		rd->head_len -= got;
	} else if (len) {
		rc = fill(rd, buf, len, &got);
		if (rc)
			return rc;
		if (got == 0)
			return damaged(rd, "shorter than its header says");
	}
	if (got && !rd->no_sha1 && EVP_DigestUpdate(rd->md, buf, got) != 1)
		return err_set(MSGW_ERR, "cannot hash '%s'", rd->path);
	rd->left -= got;
	if (rd->left == 0 && got == 0 && (rc = verify_end(rd)) != 0)
		return rc;
	return (ssize_t)got;
}

void loose_no_sha1(struct loose_reader *rd)
{
	rd->no_sha1 = true;
}

void loose_close(struct loose_reader *rd)
{
	if (!rd)
		return;
	if (rd->fd >= 0)
		close(rd->fd);
	if (rd->z_open)
		inflateEnd(&rd->z);
	EVP_MD_CTX_free(rd->md);
	free(rd->blk);
	free(rd->path);
	free(rd);
}

int loose_read_object(char **out, size_t *len_out, const char *objects_dir, const char *id,
		      const char *type)
{
	struct loose_reader *rd = NULL;
	size_t size = 0, done = 0;
	char *data;
	ssize_t n;
	int rc;

	*out = NULL;
	*len_out = 0;
	rc = loose_open_type(&rd, &size, objects_dir, id, type);
	if (rc)
		return rc;
	data = xmalloc(size + 1);
	/* the last call reads nothing and checks the end */
	while ((n = loose_read(rd, data + done, size - done)) > 0)
		done += (size_t)n;
	loose_close(rd);
	if (n < 0) {
		free(data);
		return (int)n;
	}
	data[size] = '\0';
	*out = data;
	*len_out = size;
	return 0;
}

int loose_read_blob(char **out, size_t *len_out, const char *objects_dir, const char *id)
{
	return loose_read_object(out, len_out, objects_dir, id, "blob");
}
