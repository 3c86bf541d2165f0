/*
 * archive: pax tar through libarchive, compressed by libzstd ourselves so the
 * parameters (level, checksum, two worker threads, job size) are fixed and
 * the output is reproducible.  Reading from memory uses libarchive's own
 * zstd filter; reading a stream decodes zstd ourselves (see "Reading from a
 * stream" below).
 */
#include "archive.h"
#include "err.h"
#include "progress.h"
#include "util.h"
#include "walk.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

/*
 * libarchive is loaded when an archive is first written or read, not when
 * the program starts.  Linked, it brings nine more libraries for formats
 * never used here (libxml2 with ICU and libstdc++, liblzma, libbz2, liblz4,
 * libnettle, libacl): about 2.6 ms before main() in every command, a third
 * of a scheduled no-change snapshot of a small gateway, which builds no
 * archive.  It is still Debian's shared library (its security updates apply
 * without a rebuild of ours), opened by its soname, and every call to it
 * goes through la.NAME.
 */
#define LA_SONAME "libarchive.so.13"
#if ARCHIVE_VERSION_NUMBER < 3000000 || ARCHIVE_VERSION_NUMBER >= 4000000
#error "libarchive 3 expected: its soname is libarchive.so.13"
#endif
/* clang-format off: one function a line */
#define LA_FUNCS(X)                                                                                \
	X(archive_bzlib_version)                                                                   \
	X(archive_entry_clear)                                                                     \
	X(archive_entry_copy_gname)                                                                \
	X(archive_entry_copy_pathname)                                                             \
	X(archive_entry_copy_symlink)                                                              \
	X(archive_entry_copy_uname)                                                                \
	X(archive_entry_filetype)                                                                  \
	X(archive_entry_free)                                                                      \
	X(archive_entry_gid)                                                                       \
	X(archive_entry_gname)                                                                     \
	X(archive_entry_hardlink)                                                                  \
	X(archive_entry_mtime)                                                                     \
	X(archive_entry_mtime_nsec)                                                                \
	X(archive_entry_new)                                                                       \
	X(archive_entry_pathname)                                                                  \
	X(archive_entry_perm)                                                                      \
	X(archive_entry_set_filetype)                                                              \
	X(archive_entry_set_gid)                                                                   \
	X(archive_entry_set_mtime)                                                                 \
	X(archive_entry_set_perm)                                                                  \
	X(archive_entry_set_size)                                                                  \
	X(archive_entry_set_uid)                                                                   \
	X(archive_entry_size)                                                                      \
	X(archive_entry_sparse_count)                                                              \
	X(archive_entry_symlink)                                                                   \
	X(archive_entry_uid)                                                                       \
	X(archive_entry_uname)                                                                     \
	X(archive_error_string)                                                                    \
	X(archive_liblz4_version)                                                                  \
	X(archive_liblzma_version)                                                                 \
	X(archive_libzstd_version)                                                                 \
	X(archive_read_data_block)                                                                 \
	X(archive_read_free)                                                                       \
	X(archive_read_new)                                                                        \
	X(archive_read_next_header)                                                                \
	X(archive_read_open)                                                                       \
	X(archive_read_open_memory)                                                                \
	X(archive_read_support_filter_zstd)                                                        \
	X(archive_read_support_format_tar)                                                         \
	X(archive_set_error)                                                                       \
	X(archive_version_string)                                                                  \
	X(archive_write_close)                                                                     \
	X(archive_write_data)                                                                      \
	X(archive_write_free)                                                                      \
	X(archive_write_header)                                                                    \
	X(archive_write_new)                                                                       \
	X(archive_write_open)                                                                      \
	X(archive_write_set_bytes_in_last_block)                                                   \
	X(archive_write_set_format_pax_restricted)                                                 \
	X(archive_zlib_version)
/* clang-format on */
#define LA_MEMBER(name) __typeof__(name) *name;
static struct {
	LA_FUNCS(LA_MEMBER)
} la;
static pthread_once_t la_once = PTHREAD_ONCE_INIT;
static char la_failure[256];

static void la_open(void)
{
	void *h = dlopen(LA_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(la_failure, sizeof(la_failure), "%s", dlerror());
		return;
	}
	/* POSIX's way to store dlsym's answer in a function pointer */
#define LA_RESOLVE(name)                                                                           \
	if (!la_failure[0] && !(*(void **)&la.name = dlsym(h, #name)))                             \
		snprintf(la_failure, sizeof(la_failure), "it has no %s", #name);
	LA_FUNCS(LA_RESOLVE)
#undef LA_RESOLVE
}

/* 0 once libarchive is loaded; else an error naming it and why not */
static int la_load(void)
{
	pthread_once(&la_once, la_open);
	if (la_failure[0])
		return err_set(MSGW_ERR, "cannot load %s: %s", LA_SONAME, la_failure);
	return 0;
}

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
	la.archive_entry_clear(ae);
	la.archive_entry_copy_pathname(ae, e->path);
	la.archive_entry_set_perm(ae, (mode_t)e->mode);
	la.archive_entry_set_uid(ae, e->uid);
	la.archive_entry_set_gid(ae, e->gid);
	if (e->uname)
		la.archive_entry_copy_uname(ae, e->uname);
	if (e->gname)
		la.archive_entry_copy_gname(ae, e->gname);
	la.archive_entry_set_mtime(ae, (time_t)e->mtime, (long)e->mtime_nsec);
	if (e->type == 'f') {
		la.archive_entry_set_filetype(ae, AE_IFREG);
		la.archive_entry_set_size(ae, (la_int64_t)e->size);
	} else if (e->type == 'd') {
		la.archive_entry_set_filetype(ae, AE_IFDIR);
		la.archive_entry_set_size(ae, 0);
	} else {
		la.archive_entry_set_filetype(ae, AE_IFLNK);
		la.archive_entry_copy_symlink(ae, e->link ? e->link : "");
		la.archive_entry_set_size(ae, 0);
	}
}

/* Whether the file's stat after reading it still is what the walk saw. */
static bool same_as_walked(const struct manifest_entry *e, const struct fsys_stat *st)
{
	return st->type == FSYS_FILE && st->size == e->size && st->mtime == e->mtime &&
	       st->mtime_nsec == e->mtime_nsec && st->ctime == e->ctime &&
	       st->ctime_nsec == e->ctime_nsec && st->ino == e->ino;
}

/* Stream one file's content (f, open) into the archive, checking it against
 * e->sha; with fill, e->sha is not known yet and is set from what was
 * archived, provided the file's stat after reading is still the walk's. */
static int write_data(struct archive *a, struct manifest_entry *e, struct fsys_file *f, bool fill)
{
	char chunk[1 << 16];
	unsigned char sha[SHA256_LEN];
	struct fsys_stat after;
	uint64_t total = 0;
	struct sha256 s;
	ssize_t n;
	int rc = 0;

	sha256_init(&s);
	while ((n = fsys_read(f, chunk, sizeof(chunk))) > 0) {
		size_t take = (uint64_t)n > e->size - total ? (size_t)(e->size - total) : (size_t)n;

		sha256_update(&s, chunk, (size_t)n);
		total += (uint64_t)n;
		if (take && la.archive_write_data(a, chunk, take) < 0) {
			rc = err_set(MSGW_ERR, "cannot archive '%s': %s", e->path,
				     la.archive_error_string(a));
			break;
		}
	}
	if (rc)
		return rc;
	if (n < 0)
		return (int)n;
	sha256_final(&s, sha);
	if (fill) {
		if (total != e->size || fsys_file_stat(f, e->path, &after) != 0 ||
		    !same_as_walked(e, &after))
			return err_set(MSGW_ECHANGING, "'%s' changed while it was archived",
				       e->path);
		memcpy(e->sha, sha, SHA256_LEN);
		return 0;
	}
	if (total != e->size || memcmp(sha, e->sha, SHA256_LEN) != 0)
		return err_set(MSGW_ECHANGING, "'%s' changed while it was archived", e->path);
	return 0;
}

/* One entry: a file is opened before its header is written, so one removed
 * since the walk is left out (marked gone, walk_vanished) rather than
 * failing the archive. */
static int write_entry(struct archive *a, struct archive_entry *ae, struct manifest_entry *e,
		       struct fsys *fs, bool fill)
{
	struct fsys_file *f = NULL;
	int rc = 0;

	if (e->type == 'f' && (rc = fsys_open_read(fs, e->path, &f)) != 0)
		return walk_vanished(fs, e, rc) ? 0 : rc;
	fill_entry(ae, e);
	if (la.archive_write_header(a, ae) < ARCHIVE_WARN)
		rc = err_set(MSGW_ERR, "cannot archive '%s': %s", e->path,
			     la.archive_error_string(a));
	else if (f)
		rc = write_data(a, e, f, fill);
	if (f)
		fsys_close(f);
	return rc;
}

/* Tell the backend every file will be read, in order (over SFTP they are
 * then fetched many at a time). */
static int prefetch_files(const struct manifest *m, struct fsys *fs)
{
	const char **paths = xcalloc(m->n ? m->n : 1, sizeof(*paths));
	uint64_t *sizes = xcalloc(m->n ? m->n : 1, sizeof(*sizes));
	size_t i, k = 0;
	int rc;

	for (i = 0; i < m->n; i++)
		if (m->e[i].type == 'f') {
			paths[k] = m->e[i].path;
			sizes[k++] = m->e[i].size;
		}
	rc = fsys_prefetch(fs, paths, sizes, k);
	free(paths);
	free(sizes);
	return rc;
}

static int write_entries(struct archive *a, struct manifest *m, struct fsys *fs, bool fill)
{
	struct archive_entry *ae = la.archive_entry_new();
	size_t i;
	int rc = prefetch_files(m, fs);

	progress_begin("archiving", m->n);
	for (i = 0; !rc && i < m->n; i++) {
		progress_update(i + 1);
		rc = write_entry(a, ae, &m->e[i], fs, fill);
	}
	progress_end();
	fsys_prefetch(fs, NULL, NULL, 0);
	la.archive_entry_free(ae);
	return rc;
}

static int write_archive(struct zsink *z, struct manifest *m, struct fsys *fs, bool fill)
{
	struct archive *a;
	int rc = la_load();

	if (rc)
		return rc;
	z->cctx = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, ARCHIVE_ZSTD_LEVEL);
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1);
	/* two worker threads compress while this one reads and hashes.  The
	 * output of streaming multi-threaded compression is fixed by the job
	 * size, not the number of workers (zstd issue 2327; the benchmark's
	 * data gives the same blob with 1 and 2), and never by the machine:
	 * the same input still gives the same bytes */
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, 2);
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, 1 << 20); /* bounds its buffers */
	a = la.archive_write_new();
	if (la.archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    la.archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    la.archive_write_open(a, z, NULL, sink_write, NULL) != ARCHIVE_OK) {
		rc = err_set(MSGW_ERR, "cannot start archive: %s", la.archive_error_string(a));
		goto cleanup;
	}
	rc = write_entries(a, m, fs, fill);
	if (!rc && la.archive_write_close(a) != ARCHIVE_OK)
		rc = err_set(MSGW_ERR, "cannot finish archive: %s", la.archive_error_string(a));
	if (!rc && z->failed)
		rc = MSGW_ERR;
	if (!rc)
		rc = zsink_push(z, NULL, 0, ZSTD_e_end);
cleanup:
	la.archive_write_free(a);
	ZSTD_freeCCtx(z->cctx);
	return rc;
}

int archive_snapshot_write(char **out, size_t *len_out, struct manifest *m, struct fsys *fs)
{
	struct zsink z = {0};
	int rc;

	*out = NULL;
	z.fd = -1;
	buf_init(&z.out);
	rc = write_archive(&z, m, fs, false);
	if (!rc)
		*out = buf_detach(&z.out, len_out);
	buf_release(&z.out);
	return rc;
}

int archive_snapshot_write_fd(int fd, size_t *len_out, struct manifest *m, struct fsys *fs,
			      bool fill_sha)
{
	struct zsink z = {0};
	int rc;

	z.fd = fd;
	rc = write_archive(&z, m, fs, fill_sha);
	*len_out = z.total;
	return rc;
}

/*
 * Reading from a stream: libarchive (tar format only) asks pipe_read for
 * more tar, and pipe_read decodes the next PIPE_SLOT bytes of it from the
 * source into one buffer, so memory stays bounded whatever the archive's
 * size.  (Decoding on a second thread saved 3-4% of a restore's time: not
 * worth a thread.)
 */
#define PIPE_SLOT (1 << 17)

struct pipe {
	archive_snapshot_source src;
	void *src_ctx;
	ZSTD_DCtx *d;
	unsigned char *inbuf, *slot;
	size_t insize;
	ZSTD_inBuffer in;
	bool src_end; /* the source is exhausted */
	size_t left;  /* 0: the last zstd frame is complete */
	bool done;    /* nothing more to decode: at the end, or on rc */
	int rc;	      /* the decoding's failure, with its message */
	char *msg;
};

struct archive_snapshot_reader {
	struct archive *a;
	struct pipe *pipe; /* NULL when reading from memory */
	char *path;	   /* the current entry's name without trailing slashes */
	/* the current entry's data block libarchive handed out, kept while a
	 * hole before it is given as zeros */
	const void *blk;
	size_t blk_len;
	int64_t blk_off;
	bool have_blk, data_end;
	int64_t pos; /* bytes of the entry's data given out */
};

/* The zstd data did not decode: read the source to its end, and if it is
 * damaged itself (a loose object's SHA-1), report that cause instead. */
static int source_failure(struct pipe *p, int rc)
{
	char *msg = xstrdup(err_last());
	ssize_t n;

	while ((n = p->src(p->src_ctx, p->inbuf, p->insize)) > 0)
		;
	if (n < 0)
		rc = (int)n;
	else
		err_set(rc, "%s", msg);
	free(msg);
	return rc;
}

/* Decode into out until it is full or the input ends. */
static int decode_some(struct pipe *p, ZSTD_outBuffer *out)
{
	while (out->pos < out->size) {
		size_t before = out->pos, in_before, ret;

		if (p->in.pos == p->in.size && !p->src_end) {
			ssize_t n = p->src(p->src_ctx, p->inbuf, p->insize);

			if (n < 0)
				return (int)n;
			p->src_end = n == 0;
			p->in.src = p->inbuf;
			p->in.size = (size_t)n;
			p->in.pos = 0;
		}
		in_before = p->in.pos;
		ret = ZSTD_decompressStream(p->d, out, &p->in);
		if (ZSTD_isError(ret))
			return source_failure(p, err_set(MSGW_ECORRUPT, "config.tar.zst: %s",
							 ZSTD_getErrorName(ret)));
		if (out->pos == before && p->in.pos == in_before)
			break; /* the input has ended and nothing is left to flush */
		p->left = ret;
	}
	return 0;
}

/* The next slot of tar: its length (0 at the end), or the failure.  What
 * was decoded before a failure is handed out first, the failure after. */
static int pipe_fill(struct pipe *p, size_t *len)
{
	ZSTD_outBuffer out = {p->slot, PIPE_SLOT, 0};
	int rc;

	*len = 0;
	if (p->done)
		return p->rc;
	rc = decode_some(p, &out);
	if (!rc && out.pos < out.size && p->left != 0)
		rc = err_set(MSGW_ECORRUPT, "config.tar.zst: truncated zstd data");
	if (rc) {
		p->rc = rc;
		p->msg = xstrdup(err_last());
	}
	p->done = rc || out.pos < out.size;
	*len = out.pos;
	return out.pos ? 0 : rc;
}

static la_ssize_t pipe_read(struct archive *a, void *ctx, const void **buf)
{
	struct pipe *p = ctx;
	size_t n;

	if (pipe_fill(p, &n)) {
		la.archive_set_error(a, EIO, "%s", p->msg);
		return -1;
	}
	*buf = p->slot;
	return (la_ssize_t)n;
}

/* Decode to the end, unread data dropped: the source is only known to be
 * sound once all of it was read.  Its failure, or 0. */
static int pipe_finish(struct pipe *p)
{
	size_t n = 1;

	while (!p->done && n && pipe_fill(p, &n) == 0)
		;
	if (p->rc)
		err_set(p->rc, "%s", p->msg);
	return p->rc;
}

static void pipe_free(struct pipe *p)
{
	ZSTD_freeDCtx(p->d);
	free(p->inbuf);
	free(p->slot);
	free(p->msg);
	free(p);
}

static int read_fail(struct archive_snapshot_reader *r);

int archive_snapshot_open_stream(struct archive_snapshot_reader **out, archive_snapshot_source src,
				 void *ctx)
{
	struct archive_snapshot_reader *r;
	struct pipe *p;
	int rc = la_load();

	*out = NULL;
	if (rc)
		return rc;
	r = xcalloc(1, sizeof(*r));
	p = xcalloc(1, sizeof(*p));
	p->src = src;
	p->src_ctx = ctx;
	p->insize = ZSTD_DStreamInSize();
	p->inbuf = xmalloc(p->insize);
	p->slot = xmalloc(PIPE_SLOT);
	p->in = (ZSTD_inBuffer){p->inbuf, 0, 0};
	p->left = 1;
	p->d = ZSTD_createDCtx();
	r->pipe = p;
	if (!p->d) {
		rc = err_set(MSGW_ERR, "cannot start zstd decompression");
		archive_snapshot_free(r);
		return rc;
	}
	r->a = la.archive_read_new();
	la.archive_read_support_format_tar(r->a);
	if (la.archive_read_open(r->a, p, NULL, pipe_read, NULL) != ARCHIVE_OK) {
		rc = read_fail(r); /* it reads the first block already */
		archive_snapshot_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int archive_snapshot_finish(struct archive_snapshot_reader *r)
{
	return r->pipe ? pipe_finish(r->pipe) : 0;
}

/* A libarchive failure; on a stream, the decoder's own failure (a damaged
 * object, say) is the cause to report if it had one. */
static int read_fail(struct archive_snapshot_reader *r)
{
	int rc = err_set(MSGW_ECORRUPT, "config.tar.zst: %s", la.archive_error_string(r->a));

	if (r->pipe && pipe_finish(r->pipe))
		return r->pipe->rc;
	return rc;
}

int archive_snapshot_open(struct archive_snapshot_reader **out, const void *data, size_t len)
{
	struct archive_snapshot_reader *r;

	*out = NULL;
	if (la_load())
		return MSGW_ERR;
	r = xcalloc(1, sizeof(*r));
	r->a = la.archive_read_new();
	la.archive_read_support_filter_zstd(r->a);
	la.archive_read_support_format_tar(r->a);
	if (la.archive_read_open_memory(r->a, data, len) != ARCHIVE_OK) {
		int rc =
		    err_set(MSGW_ECORRUPT, "config.tar.zst: %s", la.archive_error_string(r->a));

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

int archive_snapshot_next(struct archive_snapshot_reader *r, struct archive_snapshot_item *item)
{
	struct archive_entry *ae;
	int st = la.archive_read_next_header(r->a, &ae);
	const char *hl;

	if (st == ARCHIVE_EOF)
		return 0;
	if (st < ARCHIVE_WARN)
		return read_fail(r);
	memset(item, 0, sizeof(*item));
	hl = la.archive_entry_hardlink(ae);
	item->type = item_type(la.archive_entry_filetype(ae), hl);
	free(r->path);
	r->path = NULL;
	if (la.archive_entry_pathname(ae)) {
		size_t n;

		r->path = xstrdup(la.archive_entry_pathname(ae));
		n = strlen(r->path);
		while (n > 1 && r->path[n - 1] == '/')
			r->path[--n] = '\0';
	}
	item->path = r->path;
	r->have_blk = r->data_end = false;
	r->pos = 0;
	item->link = hl ? hl : la.archive_entry_symlink(ae);
	item->uname = la.archive_entry_uname(ae);
	item->gname = la.archive_entry_gname(ae);
	item->mode = la.archive_entry_perm(ae);
	item->uid = (uint32_t)la.archive_entry_uid(ae);
	item->gid = (uint32_t)la.archive_entry_gid(ae);
	item->size = (uint64_t)la.archive_entry_size(ae);
	item->mtime = la.archive_entry_mtime(ae);
	item->mtime_nsec = la.archive_entry_mtime_nsec(ae);
	item->sparse = la.archive_entry_sparse_count(ae) > 0;
	if (!item->path)
		return err_set(MSGW_ECORRUPT, "config.tar.zst: entry without a name");
	return 1;
}

ssize_t archive_snapshot_read(struct archive_snapshot_reader *r, const void **buf)
{
	static const char zeros[1 << 16];

	for (;;) {
		if (!r->have_blk) {
			la_int64_t off;
			int st;

			if (r->data_end)
				return 0;
			st = la.archive_read_data_block(r->a, &r->blk, &r->blk_len, &off);
			if (st == ARCHIVE_EOF) {
				/* its offset is the entry's size: beyond pos, a
				 * trailing hole */
				r->data_end = true;
				r->blk_len = 0;
				if (off < r->pos)
					off = r->pos;
			} else if (st != ARCHIVE_OK) {
				return read_fail(r);
			}
			if (off < r->pos)
				return err_set(MSGW_ECORRUPT,
					       "config.tar.zst: '%s': data blocks overlap",
					       r->path);
			r->blk_off = off;
			r->have_blk = true;
		}
		if (r->blk_off > r->pos) { /* a hole of a sparse entry: zeros, as tar -x */
			uint64_t n = (uint64_t)(r->blk_off - r->pos);

			if (n > sizeof(zeros))
				n = sizeof(zeros);
			r->pos += (int64_t)n;
			*buf = zeros;
			return (ssize_t)n;
		}
		r->have_blk = false;
		if (r->blk_len) {
			r->pos += (int64_t)r->blk_len;
			*buf = r->blk;
			return (ssize_t)r->blk_len;
		}
	}
}

int archive_snapshot_read_all(struct archive_snapshot_reader *r, struct buf *b)
{
	const void *chunk;
	ssize_t n;

	while ((n = archive_snapshot_read(r, &chunk)) > 0)
		buf_add(b, chunk, (size_t)n);
	return n < 0 ? (int)n : 0;
}

void archive_snapshot_free(struct archive_snapshot_reader *r)
{
	if (!r)
		return;
	if (r->a)
		la.archive_read_free(r->a);
	if (r->pipe)
		pipe_free(r->pipe);
	free(r->path);
	free(r);
}

/*
 * Read the current entry's data (file e), handing each chunk to v->data and
 * hashing it into sha.  *size_out is how much came; reading stops once that
 * is more than the manifest says (a huge sparse entry, say).
 */
static int read_item(struct archive_snapshot_reader *r, const struct manifest_entry *e,
		     const struct archive_snapshot_visit *v, unsigned char sha[SHA256_LEN],
		     uint64_t *size_out)
{
	const void *chunk;
	struct sha256 s;
	ssize_t n;
	int rc = 0;

	*size_out = 0;
	sha256_init(&s);
	while ((n = archive_snapshot_read(r, &chunk)) > 0) {
		*size_out += (uint64_t)n;
		if (*size_out > e->size)
			return err_set(MSGW_ECORRUPT, "'%s': size does not match the manifest",
				       e->path);
		if (v && v->data && (rc = v->data(chunk, (size_t)n, v->ctx)) != 0)
			return rc;
		sha256_update(&s, chunk, (size_t)n);
	}
	if (n < 0)
		return err_wrap((int)n, "'%s'", e->path);
	sha256_final(&s, sha);
	return 0;
}

static int check_item(struct archive_snapshot_reader *r, const struct archive_snapshot_item *it,
		      const struct manifest *m, size_t i, const struct archive_snapshot_visit *v)
{
	const struct manifest_entry *e = &m->e[i];
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
		rc = read_item(r, e, v, sha, &size);
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

/* A check failed while reading a stream: when the stream itself turns out
 * to be damaged (read to its end), that is the cause to report. */
static int prefer_source_failure(struct archive_snapshot_reader *r, int rc)
{
	char *msg = xstrdup(err_last());

	if (!pipe_finish(r->pipe))
		err_set(rc, "%s", msg);
	else
		rc = r->pipe->rc;
	free(msg);
	return rc;
}

int archive_snapshot_check(struct archive_snapshot_reader *r, const struct manifest *m,
			   const struct archive_snapshot_visit *v)
{
	struct archive_snapshot_item it;
	size_t i = 0;
	int rc;

	while ((rc = archive_snapshot_next(r, &it)) == 1) {
		if (v && v->pre && (rc = v->pre(&it, v->pre_ctx)) != 0)
			break;
		if (i >= m->n || strcmp(it.path, m->e[i].path) != 0) {
			rc = err_set(MSGW_ECORRUPT, "'%s': in the archive but not in the manifest",
				     it.path);
			break;
		}
		rc = check_item(r, &it, m, i++, v);
		if (rc)
			break;
	}
	if (!rc && i < m->n)
		rc = err_set(MSGW_ECORRUPT, "'%s': in the manifest but missing from the archive",
			     m->e[i].path);
	if (!rc)
		rc = archive_snapshot_finish(r);
	else if (r->pipe)
		rc = prefer_source_failure(r, rc);
	return rc;
}

int archive_snapshot_verify_with(const void *data, size_t len, const struct manifest *m,
				 const struct archive_snapshot_visit *v)
{
	struct archive_snapshot_reader *r = NULL;
	int rc;

	rc = archive_snapshot_open(&r, data, len);
	if (!rc)
		rc = archive_snapshot_check(r, m, v);
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
	struct archive_snapshot_item it;
	struct buf b;
	int rc;

	*out = NULL;
	rc = archive_snapshot_open(&r, data, len);
	while (!rc && (rc = archive_snapshot_next(r, &it)) == 1) {
		rc = 0;
		if (it.type != 'f' || strcmp(it.path, path) != 0)
			continue;
		buf_init(&b);
		rc = archive_snapshot_read_all(r, &b);
		if (rc)
			buf_release(&b);
		else
			*out = buf_detach(&b, len_out);
		break;
	}
	archive_snapshot_free(r);
	if (!rc && !*out)
		rc = err_set(MSGW_ENOTFOUND, "'%s' is not in the archive", path);
	return rc;
}

const char *archive_snapshot_versions(void)
{
	static char v[256];
	size_t i, n;

	if (la_load()) {
		snprintf(v, sizeof(v), "(%s)", err_last());
		return v;
	}
	const char *const parts[][2] = {
	    {"zlib", la.archive_zlib_version()},       {"liblzma", la.archive_liblzma_version()},
	    {"bz2lib", la.archive_bzlib_version()},    {"liblz4", la.archive_liblz4_version()},
	    {"libzstd", la.archive_libzstd_version()},
	};

	n = (size_t)snprintf(v, sizeof(v), "%s", la.archive_version_string());
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]) && n < sizeof(v); i++)
		if (parts[i][1])
			n += (size_t)snprintf(v + n, sizeof(v) - n, " %s/%s", parts[i][0],
					      parts[i][1]);
	if (n < sizeof(v))
		snprintf(v + n, sizeof(v) - n, ", zstd %s", ZSTD_versionString());
	return v;
}
