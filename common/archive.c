/*
 * archive: pax tar through libarchive, compressed by libzstd ourselves so the
 * parameters (level, checksum, no threads) are fixed and the output is
 * reproducible; reading uses libarchive's own zstd filter.
 */
#include "archive.h"
#include "err.h"
#include "progress.h"
#include "util.h"

#include <archive.h>
#include <errno.h>
#include <unistd.h>
#include <archive_entry.h>
#include <string.h>
#include <zstd.h>

/* Where the compressed bytes go: a buffer, or a file descriptor (fd >= 0)
 * so a large archive never has to be held in memory. */
struct zsink {
	ZSTD_CCtx *cctx;
	struct buf out;
	int fd;
	size_t total;
	int failed;
};

static int zsink_emit(struct zsink *z, const char *data, size_t len)
{
	z->total += len;
	if (z->fd < 0) {
		buf_add(&z->out, data, len);
		return 0;
	}
	while (len > 0) {
		ssize_t n = write(z->fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			z->failed = 1;
			return err_set_errno(MSGW_ERR, errno, "cannot write the archive");
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int zsink_push(struct zsink *z, const void *data, size_t len, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = {data, len, 0};
	char chunk[1 << 16];
	size_t left;

	do {
		ZSTD_outBuffer o = {chunk, sizeof(chunk), 0};

		left = ZSTD_compressStream2(z->cctx, &o, &in, mode);
		if (ZSTD_isError(left)) {
			z->failed = 1;
			return err_set(MSGW_ERR, "zstd compression failed: %s",
				       ZSTD_getErrorName(left));
		}
		if (zsink_emit(z, chunk, o.pos))
			return MSGW_ERR;
	} while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *data, size_t len)
{
	(void)a;
	return zsink_push(ctx, data, len, ZSTD_e_continue) ? -1 : (la_ssize_t)len;
}

static void fill_entry(struct archive_entry *ae, const struct manifest_entry *e)
{
	archive_entry_clear(ae);
	archive_entry_copy_pathname(ae, e->path);
	archive_entry_set_perm(ae, (mode_t)e->mode);
	archive_entry_set_uid(ae, e->uid);
	archive_entry_set_gid(ae, e->gid);
	if (e->uname)
		archive_entry_copy_uname(ae, e->uname);
	if (e->gname)
		archive_entry_copy_gname(ae, e->gname);
	archive_entry_set_mtime(ae, (time_t)e->mtime, (long)e->mtime_nsec);
	if (e->type == 'f') {
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_size(ae, (la_int64_t)e->size);
	} else if (e->type == 'd') {
		archive_entry_set_filetype(ae, AE_IFDIR);
		archive_entry_set_size(ae, 0);
	} else {
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_copy_symlink(ae, e->link ? e->link : "");
		archive_entry_set_size(ae, 0);
	}
}

/* Stream one file's content into the archive, checking it against e->sha. */
static int write_data(struct archive *a, const struct manifest_entry *e, struct fsys *fs)
{
	static char chunk[1 << 16];
	unsigned char sha[SHA256_LEN];
	struct fsys_file *f = NULL;
	uint64_t total = 0;
	struct sha256 s;
	ssize_t n;
	int rc;

	rc = fsys_open_read(fs, e->path, &f);
	if (rc)
		return rc;
	sha256_init(&s);
	while ((n = fsys_read(f, chunk, sizeof(chunk))) > 0) {
		size_t take = (uint64_t)n > e->size - total ? (size_t)(e->size - total) : (size_t)n;

		sha256_update(&s, chunk, (size_t)n);
		total += (uint64_t)n;
		if (take && archive_write_data(a, chunk, take) < 0) {
			rc = err_set(MSGW_ERR, "cannot archive '%s': %s", e->path,
				     archive_error_string(a));
			break;
		}
	}
	fsys_close(f);
	if (rc)
		return rc;
	if (n < 0)
		return (int)n;
	sha256_final(&s, sha);
	if (total != e->size || memcmp(sha, e->sha, SHA256_LEN) != 0)
		return err_set(MSGW_ECHANGING, "'%s' changed while it was archived", e->path);
	return 0;
}

static int write_entries(struct archive *a, const struct manifest *m, struct fsys *fs)
{
	struct archive_entry *ae = archive_entry_new();
	size_t i;
	int rc = 0;

	progress_begin("archiving", m->n);
	for (i = 0; !rc && i < m->n; i++) {
		progress_update(i + 1);
		fill_entry(ae, &m->e[i]);
		if (archive_write_header(a, ae) < ARCHIVE_WARN)
			rc = err_set(MSGW_ERR, "cannot archive '%s': %s", m->e[i].path,
				     archive_error_string(a));
		else if (m->e[i].type == 'f')
			rc = write_data(a, &m->e[i], fs);
	}
	progress_end();
	archive_entry_free(ae);
	return rc;
}

static int write_archive(struct zsink *z, const struct manifest *m, struct fsys *fs)
{
	struct archive *a;
	int rc = 0;

	z->cctx = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, ARCHIVE_ZSTD_LEVEL);
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1);
	/* one worker thread compresses while this one reads and hashes; the
	 * output depends on the worker count, which is fixed, never on the
	 * machine, so the same input still gives the same bytes */
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, 1);
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, 1 << 20); /* bounds its buffers */
	a = archive_write_new();
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open(a, z, NULL, sink_write, NULL) != ARCHIVE_OK) {
		rc = err_set(MSGW_ERR, "cannot start archive: %s", archive_error_string(a));
		goto cleanup;
	}
	rc = write_entries(a, m, fs);
	if (!rc && archive_write_close(a) != ARCHIVE_OK)
		rc = err_set(MSGW_ERR, "cannot finish archive: %s", archive_error_string(a));
	if (!rc && z->failed)
		rc = MSGW_ERR;
	if (!rc)
		rc = zsink_push(z, NULL, 0, ZSTD_e_end);
cleanup:
	archive_write_free(a);
	ZSTD_freeCCtx(z->cctx);
	return rc;
}

int archive_snapshot_write(char **out, size_t *len_out, const struct manifest *m, struct fsys *fs)
{
	struct zsink z = {0};
	int rc;

	*out = NULL;
	z.fd = -1;
	buf_init(&z.out);
	rc = write_archive(&z, m, fs);
	if (!rc)
		*out = buf_detach(&z.out, len_out);
	buf_release(&z.out);
	return rc;
}

int archive_snapshot_write_fd(int fd, size_t *len_out, const struct manifest *m, struct fsys *fs)
{
	struct zsink z = {0};
	int rc;

	z.fd = fd;
	rc = write_archive(&z, m, fs);
	*len_out = z.total;
	return rc;
}

struct archive_snapshot_reader {
	struct archive *a;
	char *path; /* the current entry's name without trailing slashes */
};

int archive_snapshot_open(struct archive_snapshot_reader **out, const void *data, size_t len)
{
	struct archive_snapshot_reader *r = xcalloc(1, sizeof(*r));

	*out = NULL;
	r->a = archive_read_new();
	archive_read_support_filter_zstd(r->a);
	archive_read_support_format_tar(r->a);
	if (archive_read_open_memory(r->a, data, len) != ARCHIVE_OK) {
		int rc = err_set(MSGW_ECORRUPT, "config.tar.zst: %s", archive_error_string(r->a));

		archive_snapshot_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static char item_type(unsigned int ft, const char *hardlink)
{
	if (hardlink)
		return 'h';
	switch (ft) {
	case AE_IFREG:
		return 'f';
	case AE_IFDIR:
		return 'd';
	case AE_IFLNK:
		return 'l';
	case AE_IFCHR:
		return 'c';
	case AE_IFBLK:
		return 'b';
	case AE_IFIFO:
		return 'p';
	case AE_IFSOCK:
		return 's';
	default:
		return '?';
	}
}

int archive_snapshot_next(struct archive_snapshot_reader *r, struct archive_item *item)
{
	struct archive_entry *ae;
	int st = archive_read_next_header(r->a, &ae);
	const char *hl;

	if (st == ARCHIVE_EOF)
		return 0;
	if (st < ARCHIVE_WARN)
		return err_set(MSGW_ECORRUPT, "config.tar.zst: %s", archive_error_string(r->a));
	memset(item, 0, sizeof(*item));
	hl = archive_entry_hardlink(ae);
	item->type = item_type(archive_entry_filetype(ae), hl);
	free(r->path);
	r->path = NULL;
	if (archive_entry_pathname(ae)) {
		size_t n;

		r->path = xstrdup(archive_entry_pathname(ae));
		n = strlen(r->path);
		while (n > 1 && r->path[n - 1] == '/')
			r->path[--n] = '\0';
	}
	item->path = r->path;
	item->link = hl ? hl : archive_entry_symlink(ae);
	item->uname = archive_entry_uname(ae);
	item->gname = archive_entry_gname(ae);
	item->mode = archive_entry_perm(ae);
	item->uid = (uint32_t)archive_entry_uid(ae);
	item->gid = (uint32_t)archive_entry_gid(ae);
	item->size = (uint64_t)archive_entry_size(ae);
	item->mtime = archive_entry_mtime(ae);
	item->mtime_nsec = archive_entry_mtime_nsec(ae);
	if (!item->path)
		return err_set(MSGW_ECORRUPT, "config.tar.zst: entry without a name");
	return 1;
}

ssize_t archive_snapshot_read(struct archive_snapshot_reader *r, void *buf, size_t len)
{
	la_ssize_t n = archive_read_data(r->a, buf, len);

	if (n < 0)
		return err_set(MSGW_ECORRUPT, "config.tar.zst: %s", archive_error_string(r->a));
	return (ssize_t)n;
}

void archive_snapshot_free(struct archive_snapshot_reader *r)
{
	if (!r)
		return;
	archive_read_free(r->a);
	free(r->path);
	free(r);
}

/* Hash the current entry's data, handing each chunk to v->data too. */
static int hash_item(struct archive_snapshot_reader *r, const char *path,
		     unsigned char sha[SHA256_LEN], uint64_t *size_out,
		     const struct archive_visit *v)
{
	static char chunk[1 << 16];
	struct sha256 s;
	ssize_t n;
	int rc;

	*size_out = 0;
	sha256_init(&s);
	while ((n = archive_snapshot_read(r, chunk, sizeof(chunk))) > 0) {
		sha256_update(&s, chunk, (size_t)n);
		*size_out += (uint64_t)n;
		if (v && v->data && (rc = v->data(chunk, (size_t)n, v->ctx)) != 0)
			return rc;
	}
	if (n < 0)
		return err_wrap((int)n, "'%s'", path);
	sha256_final(&s, sha);
	return 0;
}

static int check_item(struct archive_snapshot_reader *r, const struct archive_item *it,
		      const struct manifest_entry *e, const struct archive_visit *v)
{
	unsigned char sha[SHA256_LEN];
	uint64_t size = 0;
	int rc;

	if (it->type != e->type)
		return err_set(MSGW_ECORRUPT, "'%s': type does not match the manifest", e->path);
	if (it->mode != e->mode)
		return err_set(MSGW_ECORRUPT, "'%s': mode does not match the manifest", e->path);
	if (v && v->begin && (rc = v->begin(e, v->ctx)) != 0)
		return rc;
	if (e->type == 'l') {
		sha256_buf(sha, it->link ? it->link : "", it->link ? strlen(it->link) : 0);
		size = it->link ? strlen(it->link) : 0;
	} else if (e->type == 'f') {
		rc = hash_item(r, e->path, sha, &size, v);
		if (rc)
			return rc;
	}
	if (e->type != 'd' && size != e->size)
		return err_set(MSGW_ECORRUPT, "'%s': size does not match the manifest", e->path);
	if (e->type != 'd' && memcmp(sha, e->sha, SHA256_LEN) != 0)
		return err_set(MSGW_ECORRUPT, "'%s': sha256 does not match the manifest", e->path);
	return v && v->end ? v->end(e, v->ctx) : 0;
}

int archive_snapshot_verify(const void *data, size_t len, const struct manifest *m)
{
	return archive_snapshot_verify_with(data, len, m, NULL);
}

int archive_snapshot_verify_with(const void *data, size_t len, const struct manifest *m,
				 const struct archive_visit *v)
{
	struct archive_snapshot_reader *r = NULL;
	struct archive_item it;
	size_t i = 0;
	int rc;

	rc = archive_snapshot_open(&r, data, len);
	while (!rc && (rc = archive_snapshot_next(r, &it)) == 1) {
		if (v && v->pre && (rc = v->pre(&it, v->pre_ctx)) != 0)
			break;
		if (i >= m->n || strcmp(it.path, m->e[i].path) != 0) {
			rc = err_set(MSGW_ECORRUPT, "'%s': in the archive but not in the manifest",
				     it.path);
			break;
		}
		rc = check_item(r, &it, &m->e[i++], v);
	}
	if (!rc && i < m->n)
		rc = err_set(MSGW_ECORRUPT, "'%s': in the manifest but missing from the archive",
			     m->e[i].path);
	archive_snapshot_free(r);
	return rc;
}

/*
 * Built from the parts rather than with archive_version_details(), which
 * leaks its buffer in libarchive 3.6 (and so fails every sanitizer run of
 * --version).  Libraries libarchive was built without are left out.
 */
int archive_snapshot_read_file(char **out, size_t *len_out, const void *data, size_t len,
			       const char *path)
{
	struct archive_snapshot_reader *r = NULL;
	struct archive_item it;
	char chunk[65536];
	struct buf b;
	ssize_t n;
	int rc;

	*out = NULL;
	rc = archive_snapshot_open(&r, data, len);
	while (!rc && (rc = archive_snapshot_next(r, &it)) == 1) {
		rc = 0;
		if (it.type != 'f' || strcmp(it.path, path) != 0)
			continue;
		buf_init(&b);
		while ((n = archive_snapshot_read(r, chunk, sizeof(chunk))) > 0)
			buf_add(&b, chunk, (size_t)n);
		if (n < 0) {
			buf_release(&b);
			rc = (int)n;
		} else {
			*out = buf_detach(&b, len_out);
		}
		break;
	}
	archive_snapshot_free(r);
	if (!rc && !*out)
		rc = err_set(MSGW_ENOTFOUND, "'%s' is not in the archive", path);
	return rc;
}

const char *archive_versions(void)
{
	static char v[256];
	const char *const parts[][2] = {
	    {"zlib", archive_zlib_version()},	    {"liblzma", archive_liblzma_version()},
	    {"bz2lib", archive_bzlib_version()},    {"liblz4", archive_liblz4_version()},
	    {"libzstd", archive_libzstd_version()},
	};
	size_t i, n;

	n = (size_t)snprintf(v, sizeof(v), "%s", archive_version_string());
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]) && n < sizeof(v); i++)
		if (parts[i][1])
			n += (size_t)snprintf(v + n, sizeof(v) - n, " %s/%s", parts[i][0],
					      parts[i][1]);
	if (n < sizeof(v))
		snprintf(v + n, sizeof(v) - n, ", zstd %s", ZSTD_versionString());
	return v;
}
