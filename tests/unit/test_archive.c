/*
 * test_archive: config.tar.zst written from a real temporary tree and read
 * back.  The same input gives byte-identical archives (twice in a row,
 * after the files' atimes change, and from a copy of the tree elsewhere);
 * reading back yields the manifest's entries in order with their metadata
 * and exact contents; archive_snapshot_verify accepts the archive and names
 * the file when one byte of its content, its mode, or the entry list
 * differs, and reports damaged or truncated compressed data; the same
 * read as a stream (decoded on a second thread): every entry handed to the
 * visit callbacks, contents intact, the source's own failure reported
 * (mid-way or at its end), damage found, a reader given up early; a file that
 * changed after it was hashed is refused with MSGW_ECHANGING; a sparse
 * entry (GNU tar --sparse) reads back with its holes as zeros.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "archive.h"
#include "err.h"
#include "fsys.h"
#include "manifest.h"
#include "util.h"
#include "walk.h"
#include "test_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define BIG_SIZE (300 * 1024 + 17)
#define LONG_NAME                                                                                  \
	"a-file-name-well-beyond-the-hundred-bytes-of-a-ustar-name-field-so-that-pax-"             \
	"extended-headers-are-needed-for-it.json"
#define UTF8_NAME "caf\xc3\xa9 men\xc3\xbc.txt"

struct fixture {
	char dir[PATH_MAX];
	char root[PATH_MAX + 16]; /* dir/gw */
	struct fsys *fs;
	struct manifest m;
	char *ar, *ar2;
	size_t len, len2;
};

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static char *path_in(const char *root, const char *rel)
{
	return xasprintf("%s/%s", root, rel);
}

static void write_file(const char *root, const char *rel, const void *data, size_t len, mode_t mode)
{
	char *p = path_in(root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static void make_dir(const char *root, const char *rel, mode_t mode)
{
	char *p = path_in(root, rel);

	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

/* Deterministic bytes: a small LCG. */
static unsigned char *big_data(void)
{
	unsigned char *d = xmalloc(BIG_SIZE);
	uint32_t x = 12345;
	size_t i;

	for (i = 0; i < BIG_SIZE; i++) {
		x = x * 1103515245u + 12345u;
		d[i] = (unsigned char)(x >> 16);
	}
	return d;
}

static const char gateway_json[] = "{\n  \"product\": \"MailStore Gateway\",\n"
				   "  \"domain\": \"example.test\"\n}\n";

static void make_tree(const char *root)
{
	unsigned char *big = big_data();
	char *p;

	assert_int_equal(mkdir(root, 0755), 0);
	write_file(root, "Gateway.json", gateway_json, strlen(gateway_json), 0644);
	make_dir(root, "Certificates", 0750);
	write_file(root, "Certificates/gateway.pem", "-----BEGIN CERTIFICATE-----\n", 28, 0600);
	make_dir(root, "Templates", 0755);
	write_file(root, "Templates/bounce.txt", "bounced\n", 8, 0644);
	write_file(root, "Templates/" LONG_NAME, "long\n", 5, 0644);
	write_file(root, UTF8_NAME, "menu\n", 5, 0644);
	write_file(root, "big.bin", big, BIG_SIZE, 0644);
	write_file(root, "empty.txt", "", 0, 0444);
	make_dir(root, "bin", 0755);
	write_file(root, "bin/run.sh", "#!/bin/sh\nexit 0\n", 17, 0755);
	make_dir(root, "EmptyDir", 0700);
	p = path_in(root, "current");
	assert_int_equal(symlink("Templates/bounce.txt", p), 0);
	free(p);
	free(big);
}

/* Fixed timestamps on every entry, so copies of the tree are identical. */
static int set_time(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct timespec ts[2] = {{1700000000, 123456789}, {1700000000, 123456789}};

	(void)st;
	(void)flag;
	(void)ftw;
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static void fix_times(const char *root)
{
	assert_int_equal(nftw(root, set_time, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void scan_tree(struct manifest *m, struct fsys *fs)
{
	struct walk_rules rules = {0};
	int rc = walk_location(m, fs, &rules, NULL);

	if (!rc)
		rc = walk_hash(m, fs, NULL);
	if (rc)
		fail_msg("walk: %s", err_last());
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_archive.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, f->dir));
	snprintf(f->root, sizeof(f->root), "%s/gw", f->dir);
	make_tree(f->root);
	fix_times(f->root);
	assert_int_equal(fsys_open_local(&f->fs, f->root), 0);
	manifest_init(&f->m);
	scan_tree(&f->m, f->fs);
	if (archive_snapshot_write(&f->ar, &f->len, &f->m, f->fs))
		fail_msg("archive_snapshot_write: %s", err_last());
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	manifest_release(&f->m);
	fsys_free(f->fs);
	free(f->ar);
	free(f->ar2);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

/* ---- zstd helpers for tampering ----------------------------------------- */

static char *zstd_unpack(const char *data, size_t len, size_t *len_out)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer in = {data, len, 0};
	struct buf b;
	size_t rc;

	buf_init(&b);
	do {
		char chunk[65536];
		ZSTD_outBuffer o = {chunk, sizeof(chunk), 0};

		rc = ZSTD_decompressStream(d, &o, &in);
		assert_false(ZSTD_isError(rc));
		buf_add(&b, chunk, o.pos);
	} while (rc != 0 && in.pos < in.size);
	ZSTD_freeDCtx(d);
	return buf_detach(&b, len_out);
}

static char *zstd_pack(const char *data, size_t len, size_t *len_out)
{
	size_t cap = ZSTD_compressBound(len);
	char *out = xmalloc(cap);

	*len_out = ZSTD_compress(out, cap, data, len, 1);
	assert_false(ZSTD_isError(*len_out));
	return out;
}

/* ---- determinism ---------------------------------------------------------- */

static void test_deterministic(void **state)
{
	struct fixture *f = *state;

	assert_true(f->len > 4);
	assert_memory_equal(f->ar, "\x28\xb5\x2f\xfd", 4); /* a zstd frame */
	assert_int_equal(archive_snapshot_write(&f->ar2, &f->len2, &f->m, f->fs), 0);
	assert_int_equal(f->len2, f->len);
	assert_memory_equal(f->ar2, f->ar, f->len);
}

static void test_deterministic_after_atime(void **state)
{
	struct fixture *f = *state;
	struct timespec ts[2] = {{1800000000, 5}, {0, UTIME_OMIT}};
	struct manifest again;
	char *p;
	size_t i;

	/* new atimes on everything, as a reader (or the archive itself) makes */
	for (i = 0; i < f->m.n; i++) {
		p = path_in(f->root, f->m.e[i].path);
		assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
		free(p);
	}
	scan_tree(&again, f->fs);
	assert_int_equal(archive_snapshot_write(&f->ar2, &f->len2, &again, f->fs), 0);
	manifest_release(&again);
	assert_int_equal(f->len2, f->len);
	assert_memory_equal(f->ar2, f->ar, f->len);
}

/* Only relative paths and recorded metadata go in: the same tree at
 * another place gives the same bytes. */
static void test_deterministic_elsewhere(void **state)
{
	struct fixture *f = *state;
	char other[PATH_MAX + 32];
	struct fsys *fs2 = NULL;
	struct manifest m2;

	snprintf(other, sizeof(other), "%s/copy-of-the-gateway", f->dir);
	make_tree(other);
	fix_times(other);
	assert_int_equal(fsys_open_local(&fs2, other), 0);
	scan_tree(&m2, fs2);
	assert_int_equal(archive_snapshot_write(&f->ar2, &f->len2, &m2, fs2), 0);
	manifest_release(&m2);
	fsys_free(fs2);
	assert_int_equal(f->len2, f->len);
	assert_memory_equal(f->ar2, f->ar, f->len);
}

static void test_content_change_changes_archive(void **state)
{
	struct fixture *f = *state;
	struct manifest m2;

	write_file(f->root, "Templates/bounce.txt", "Bounced\n", 8, 0644);
	fix_times(f->root);
	scan_tree(&m2, f->fs);
	assert_int_equal(archive_snapshot_write(&f->ar2, &f->len2, &m2, f->fs), 0);
	manifest_release(&m2);
	assert_false(f->len2 == f->len && memcmp(f->ar2, f->ar, f->len) == 0);
}

/* ---- reading back ---------------------------------------------------------- */

static void test_read_back(void **state)
{
	struct fixture *f = *state;
	struct archive_snapshot_reader *r = NULL;
	struct archive_snapshot_item it;
	size_t i = 0;
	int rc;

	assert_int_equal(archive_snapshot_open(&r, f->ar, f->len), 0);
	while ((rc = archive_snapshot_next(r, &it)) == 1) {
		const struct manifest_entry *e;

		assert_true(i < f->m.n);
		e = &f->m.e[i++];
		assert_string_equal(it.path, e->path);
		assert_true(it.path[0] != '/');
		assert_false(strncmp(it.path, "./", 2) == 0);
		assert_int_equal(it.type, e->type);
		assert_int_equal(it.mode, e->mode);
		assert_int_equal(it.uid, e->uid);
		assert_int_equal(it.gid, e->gid);
		assert_int_equal(it.mtime, 1700000000);
		if (e->uname)
			assert_string_equal(it.uname, e->uname);
		if (e->type == 'l') {
			assert_string_equal(it.link, "Templates/bounce.txt");
			assert_int_equal(it.size, 0);
		} else if (e->type == 'f') {
			char *p = path_in(f->root, e->path), *want = NULL, got[4096];
			const void *piece;
			struct buf b;
			ssize_t n;
			size_t wlen;
			FILE *fp = fopen(p, "rb");

			assert_non_null(fp);
			buf_init(&b);
			while ((n = (ssize_t)fread(got, 1, sizeof(got), fp)) > 0)
				buf_add(&b, got, (size_t)n);
			fclose(fp);
			want = buf_detach(&b, &wlen);
			assert_int_equal(it.size, wlen);
			buf_init(&b);
			while ((n = archive_snapshot_read(r, &piece)) > 0)
				buf_add(&b, piece, (size_t)n);
			assert_int_equal(n, 0);
			assert_int_equal(b.len, wlen);
			assert_memory_equal(b.data, want, wlen);
			buf_release(&b);
			free(want);
			free(p);
		}
	}
	assert_int_equal(rc, 0);
	assert_int_equal(i, f->m.n);
	archive_snapshot_free(r);
}

static void test_manifest_of_tree(void **state)
{
	static const char *const want[] = {
	    "Certificates",
	    "Certificates/gateway.pem",
	    "EmptyDir",
	    "Gateway.json",
	    "Templates",
	    "Templates/" LONG_NAME,
	    "Templates/bounce.txt",
	    "big.bin",
	    "bin",
	    "bin/run.sh",
	    UTF8_NAME,
	    "current",
	    "empty.txt",
	};
	struct fixture *f = *state;
	size_t i;

	assert_int_equal(f->m.n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < f->m.n; i++)
		assert_string_equal(f->m.e[i].path, want[i]);
}

/* ---- verification ------------------------------------------------------------ */

static void test_verify_ok(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(archive_snapshot_verify(f->ar, f->len, &f->m), 0);
}

/* One byte of one file's content changed inside the tar, recompressed. */
static void test_verify_changed_byte(void **state)
{
	struct fixture *f = *state;
	size_t tlen = 0;
	char *tar = zstd_unpack(f->ar, f->len, &tlen), *hit;
	int rc;

	hit = memmem(tar, tlen, "MailStore Gateway", 17);
	assert_non_null(hit);
	hit[4] ^= 0x20; /* "MailStore" -> "Mailstore" */
	f->ar2 = zstd_pack(tar, tlen, &f->len2);
	free(tar);
	rc = archive_snapshot_verify(f->ar2, f->len2, &f->m);
	assert_int_equal(rc, MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'Gateway.json': sha256 does not match the manifest");
}

static void test_verify_changed_byte_in_big_file(void **state)
{
	struct fixture *f = *state;
	unsigned char *big = big_data();
	size_t tlen = 0;
	char *tar = zstd_unpack(f->ar, f->len, &tlen), *hit;

	hit = memmem(tar, tlen, big + 200000, 64);
	assert_non_null(hit);
	hit[10] ^= 1;
	free(big);
	f->ar2 = zstd_pack(tar, tlen, &f->len2);
	free(tar);
	assert_int_equal(archive_snapshot_verify(f->ar2, f->len2, &f->m), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'big.bin': sha256 does not match the manifest");
}

static void test_verify_manifest_differs(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *e;

	e = (struct manifest_entry *)manifest_find(&f->m, "bin/run.sh");
	assert_non_null(e);
	e->mode = 0644;
	assert_int_equal(archive_snapshot_verify(f->ar, f->len, &f->m), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'bin/run.sh': mode does not match the manifest");
	e->mode = 0755;

	e->size++;
	assert_int_equal(archive_snapshot_verify(f->ar, f->len, &f->m), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'bin/run.sh': size does not match the manifest");
	e->size--;

	e = (struct manifest_entry *)manifest_find(&f->m, "current");
	e->sha[0] ^= 1;
	assert_int_equal(archive_snapshot_verify(f->ar, f->len, &f->m), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'current': sha256 does not match the manifest");
	e->sha[0] ^= 1;

	e = (struct manifest_entry *)manifest_find(&f->m, "EmptyDir");
	e->type = 'f';
	assert_int_equal(archive_snapshot_verify(f->ar, f->len, &f->m), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'EmptyDir': type does not match the manifest");
	e->type = 'd';

	assert_int_equal(archive_snapshot_verify(f->ar, f->len, &f->m), 0);
}

static void drop_last(struct manifest *m)
{
	struct manifest_entry *e = &m->e[--m->n];

	free(e->path);
	free(e->link);
	free(e->uname);
	free(e->gname);
}

static void test_verify_entry_lists(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *e;

	/* the manifest holds one more entry than the archive */
	e = manifest_add(&f->m, 'f', "zz-extra");
	e->mode = 0644;
	assert_int_equal(archive_snapshot_verify(f->ar, f->len, &f->m), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'zz-extra': in the manifest but missing from the archive");
	drop_last(&f->m);

	/* the archive holds one the manifest lacks */
	drop_last(&f->m); /* "empty.txt", the last one */
	assert_int_equal(archive_snapshot_verify(f->ar, f->len, &f->m), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'empty.txt': in the archive but not in the manifest");
}

static void test_verify_damaged_compression(void **state)
{
	struct fixture *f = *state;

	f->ar2 = xmalloc(f->len);
	memcpy(f->ar2, f->ar, f->len);
	f->ar2[f->len / 2] ^= 0xff;
	assert_int_equal(archive_snapshot_verify(f->ar2, f->len, &f->m), MSGW_ECORRUPT);
	assert_contains(err_last(), "config.tar.zst");

	/* truncated */
	assert_int_equal(archive_snapshot_verify(f->ar, f->len / 3, &f->m), MSGW_ECORRUPT);
	assert_int_equal(archive_snapshot_verify(f->ar, f->len - 1, &f->m), MSGW_ECORRUPT);
	/* garbage */
	assert_int_equal(archive_snapshot_verify("not an archive at all", 21, &f->m),
			 MSGW_ECORRUPT);
}

/* ---- streamed reading (a second thread decodes) ------------------------ */

/* A source serving an archive in pieces of at most step bytes; it fails
 * once fail_at bytes were served (when non-zero), and returns end_rc
 * instead of 0 at the end (a source whose end check fails). */
struct source {
	const char *data;
	size_t len, pos, step, fail_at;
	int end_rc;
};

static ssize_t source_read(void *ctx, void *buf, size_t len)
{
	struct source *s = ctx;
	size_t n = s->len - s->pos;

	if (s->fail_at && s->pos >= s->fail_at)
		return err_set(MSGW_ECORRUPT, "source broke at %zu", s->pos);
	if (n == 0)
		return s->end_rc ? err_set(s->end_rc, "source failed its end check") : 0;
	if (n > len)
		n = len;
	if (n > s->step)
		n = s->step;
	memcpy(buf, s->data + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

struct tally {
	size_t begun, ended;
	uint64_t bytes;
};

static int tally_begin(const struct manifest_entry *e, void *ctx)
{
	(void)e;
	((struct tally *)ctx)->begun++;
	return 0;
}

static int tally_data(const void *buf, size_t len, void *ctx)
{
	(void)buf;
	((struct tally *)ctx)->bytes += len;
	return 0;
}

static int tally_end(const struct manifest_entry *e, void *ctx)
{
	(void)e;
	((struct tally *)ctx)->ended++;
	return 0;
}

static int check_stream(struct fixture *f, struct source *src, struct tally *t)
{
	struct archive_snapshot_visit v = {NULL, NULL, tally_begin, tally_data, tally_end, t};
	struct archive_snapshot_reader *r = NULL;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = archive_snapshot_open_stream(&r, source_read, src);
	if (!rc)
		rc = archive_snapshot_check(r, &f->m, &v);
	archive_snapshot_free(r);
	return rc;
}

static void test_stream_check(void **state)
{
	struct fixture *f = *state;
	struct source src = {f->ar, f->len, 0, 777, 0, 0};
	struct tally t;
	uint64_t files = 0;
	size_t i;

	/* the archive is several of the decoder's buffers long */
	assert_true(f->len > 2 * 131072);
	for (i = 0; i < f->m.n; i++)
		if (f->m.e[i].type == 'f')
			files += f->m.e[i].size;
	if (check_stream(f, &src, &t))
		fail_msg("check: %s", err_last());
	assert_int_equal(t.begun, f->m.n);
	assert_int_equal(t.ended, f->m.n);
	assert_int_equal(t.bytes, files);
	assert_int_equal(src.pos, f->len);
}

static void test_stream_read_back(void **state)
{
	struct fixture *f = *state;
	struct source src = {f->ar, f->len, 0, 1 << 20, 0, 0};
	struct archive_snapshot_reader *r = NULL;
	struct archive_snapshot_item it;
	unsigned char *big = big_data();
	const void *piece;
	struct buf b;
	ssize_t n;
	int rc;

	assert_int_equal(archive_snapshot_open_stream(&r, source_read, &src), 0);
	buf_init(&b);
	while ((rc = archive_snapshot_next(r, &it)) == 1) {
		if (strcmp(it.path, "big.bin") != 0)
			continue;
		while ((n = archive_snapshot_read(r, &piece)) > 0)
			buf_add(&b, piece, (size_t)n);
		assert_int_equal(n, 0);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(archive_snapshot_finish(r), 0);
	assert_int_equal(b.len, BIG_SIZE);
	assert_memory_equal(b.data, big, BIG_SIZE);
	buf_release(&b);
	free(big);
	archive_snapshot_free(r);
}

/* The source's own failure is what is reported, mid-way or at its end
 * (after every entry checked out). */
static void test_stream_source_fails(void **state)
{
	struct fixture *f = *state;
	struct source mid = {f->ar, f->len, 0, 1000, f->len / 2, 0};
	struct source end = {f->ar, f->len, 0, 1000, 0, MSGW_ECORRUPT};
	struct tally t;

	assert_int_equal(check_stream(f, &mid, &t), MSGW_ECORRUPT);
	assert_contains(err_last(), "source broke at");
	assert_true(t.ended < f->m.n);
	assert_int_equal(check_stream(f, &end, &t), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "source failed its end check");
	assert_int_equal(t.ended, f->m.n);
}

static void test_stream_damaged(void **state)
{
	struct fixture *f = *state;
	struct source trunc = {f->ar, f->len - 1, 0, 4096, 0, 0};
	struct source third = {f->ar, f->len / 3, 0, 4096, 0, 0};
	struct source flipped = {NULL, f->len, 0, 4096, 0, 0};
	struct source garbage = {"not an archive at all", 21, 0, 4096, 0, 0};
	struct tally t;

	assert_int_equal(check_stream(f, &trunc, &t), MSGW_ECORRUPT);
	assert_contains(err_last(), "config.tar.zst");
	assert_int_equal(check_stream(f, &third, &t), MSGW_ECORRUPT);
	f->ar2 = xmalloc(f->len);
	memcpy(f->ar2, f->ar, f->len);
	f->ar2[f->len / 2] ^= 0xff;
	flipped.data = f->ar2;
	assert_int_equal(check_stream(f, &flipped, &t), MSGW_ECORRUPT);
	assert_contains(err_last(), "config.tar.zst");
	assert_int_equal(check_stream(f, &garbage, &t), MSGW_ECORRUPT);
}

/* A file whose content does not match its manifest entry (the manifest
 * changed here, the archive is sound): named; with two such files, the
 * first is named. */
static void test_stream_sha_mismatch(void **state)
{
	struct fixture *f = *state;
	size_t i, first = 0, second = 0;

	for (i = 0; i < f->m.n; i++)
		if (f->m.e[i].type == 'f' && f->m.e[i].size > 0) {
			if (!first)
				first = i;
			else
				second = i;
		}
	assert_true(first && second > first);
	{
		struct source src = {f->ar, f->len, 0, 4096, 0, 0};
		char want[PATH_MAX];
		struct tally t;

		f->m.e[second].sha[3] ^= 1;
		snprintf(want, sizeof(want), "'%s': sha256 does not match the manifest",
			 f->m.e[second].path);
		assert_int_equal(check_stream(f, &src, &t), MSGW_ECORRUPT);
		assert_string_equal(err_last(), want);
		f->m.e[first].sha[3] ^= 1;
		src.pos = 0;
		snprintf(want, sizeof(want), "'%s': sha256 does not match the manifest",
			 f->m.e[first].path);
		assert_int_equal(check_stream(f, &src, &t), MSGW_ECORRUPT);
		assert_string_equal(err_last(), want);
		f->m.e[first].sha[3] ^= 1;
		f->m.e[second].sha[3] ^= 1;
	}
}

/* A reader given up after its first entry reads no further: the source
 * here (four archives one after the other, as zstd frames may be) decodes
 * to far more than the decoder's buffer holds, so it cannot have been read
 * to its end. */
static void test_stream_abandoned(void **state)
{
	struct fixture *f = *state;
	struct source src = {NULL, 4 * f->len, 0, 512, 0, 0};
	struct archive_snapshot_reader *r = NULL;
	struct archive_snapshot_item it;
	size_t i;

	f->ar2 = xmalloc(4 * f->len);
	for (i = 0; i < 4; i++)
		memcpy(f->ar2 + i * f->len, f->ar, f->len);
	src.data = f->ar2;
	assert_int_equal(archive_snapshot_open_stream(&r, source_read, &src), 0);
	assert_int_equal(archive_snapshot_next(r, &it), 1);
	archive_snapshot_free(r);
	assert_true(src.pos < src.len);
}

/* ---- a file changed after it was hashed ------------------------------------- */

static void test_write_refuses_changed_file(void **state)
{
	struct fixture *f = *state;
	char *out = (char *)1;
	size_t len = 0;

	write_file(f->root, "Templates/bounce.txt", "changed!\n", 9, 0644);
	assert_int_equal(archive_snapshot_write(&out, &len, &f->m, f->fs), MSGW_ECHANGING);
	assert_null(out);
	assert_contains(err_last(), "'Templates/bounce.txt'");
	assert_contains(err_last(), "changed");

	/* same size, other content */
	write_file(f->root, "Templates/bounce.txt", "BOUNCED\n", 8, 0644);
	out = (char *)1;
	assert_int_equal(archive_snapshot_write(&out, &len, &f->m, f->fs), MSGW_ECHANGING);
	assert_null(out);

	/* shorter */
	write_file(f->root, "Templates/bounce.txt", "b\n", 2, 0644);
	assert_int_equal(archive_snapshot_write(&out, &len, &f->m, f->fs), MSGW_ECHANGING);
	assert_null(out);
}

/* ---- hashing while archiving (a first snapshot) ------------------------------ */

/* Write f->m's archive to a scratch file with fill_sha; the bytes in *out. */
static int write_filling(struct fixture *f, char **out, size_t *len)
{
	FILE *tmp = tmpfile();
	int rc;

	assert_non_null(tmp);
	*out = NULL;
	rc = archive_snapshot_write_fd(fileno(tmp), len, &f->m, f->fs, true);
	if (!rc) {
		*out = xmalloc(*len ? *len : 1);
		assert_int_equal(pread(fileno(tmp), *out, *len, 0), (ssize_t)*len);
	}
	fclose(tmp);
	return rc;
}

static void test_write_fills_hashes(void **state)
{
	struct fixture *f = *state;
	unsigned char(*want)[SHA256_LEN] = xcalloc(f->m.n, SHA256_LEN);
	char *out = NULL;
	size_t i, len = 0, files = 0;

	for (i = 0; i < f->m.n; i++) {
		memcpy(want[i], f->m.e[i].sha, SHA256_LEN);
		if (f->m.e[i].type == 'f') {
			memset(f->m.e[i].sha, 0, SHA256_LEN);
			files++;
		}
	}
	assert_true(files > 2);
	assert_int_equal(write_filling(f, &out, &len), 0);
	for (i = 0; i < f->m.n; i++)
		assert_memory_equal(f->m.e[i].sha, want[i], SHA256_LEN);
	/* the same bytes as when the hashes were known beforehand */
	assert_int_equal(len, f->len);
	assert_memory_equal(out, f->ar, len);
	free(out);
	free(want);
}

static void test_write_filling_sees_a_rewrite(void **state)
{
	struct fixture *f = *state;
	char *out = NULL;
	size_t len = 0;

	/* rewritten after the walk: its stat is no longer the walk's */
	write_file(f->root, "Templates/bounce.txt", "changed!\n", 9, 0644);
	assert_int_equal(write_filling(f, &out, &len), MSGW_ECHANGING);
	assert_null(out);
	assert_contains(err_last(), "'Templates/bounce.txt' changed while it was archived");
}

/* A file removed since the walk is left out of the archive (issue 14: a
 * gateway's temporary file) and marked gone in the manifest; the rest is
 * archived as usual. */
static void test_write_missing_file(void **state)
{
	struct fixture *f = *state;
	char *out = NULL, *data = NULL, *p = path_in(f->root, "big.bin");
	size_t len = 0, dlen = 0, n = f->m.n;

	assert_int_equal(unlink(p), 0);
	free(p);
	assert_int_equal(archive_snapshot_write(&out, &len, &f->m, f->fs), 0);
	assert_true(((struct manifest_entry *)manifest_find(&f->m, "big.bin"))->gone);
	assert_int_equal(archive_snapshot_read_file(&data, &dlen, out, len, "big.bin"),
			 MSGW_ENOTFOUND);
	assert_int_equal(archive_snapshot_read_file(&data, &dlen, out, len, "Templates/bounce.txt"),
			 0);
	free(data);
	manifest_drop_gone(&f->m);
	assert_int_equal(f->m.n, n - 1);
	assert_null(manifest_find(&f->m, "big.bin"));
	assert_int_equal(archive_snapshot_verify(out, len, &f->m), 0);
	free(out);
}

static void test_empty_manifest(void **state)
{
	struct manifest m;
	struct fsys *fs = NULL;
	struct archive_snapshot_reader *r = NULL;
	struct archive_snapshot_item it;
	char *out = NULL;
	size_t len = 0;

	(void)state;
	manifest_init(&m);
	assert_int_equal(fsys_open_local(&fs, "/nonexistent"), 0);
	assert_int_equal(archive_snapshot_write(&out, &len, &m, fs), 0);
	assert_non_null(out);
	assert_int_equal(archive_snapshot_verify(out, len, &m), 0);
	assert_int_equal(archive_snapshot_open(&r, out, len), 0);
	assert_int_equal(archive_snapshot_next(r, &it), 0);
	archive_snapshot_free(r);
	archive_snapshot_free(NULL);
	fsys_free(fs);
	free(out);
}

static void test_versions(void **state)
{
	(void)state;
	assert_contains(archive_snapshot_versions(), "libarchive");
	assert_contains(archive_snapshot_versions(), "zstd");
}

/* A sparse entry, as GNU tar --sparse writes it: the data comes back whole,
 * holes (leading, inner and trailing) as zeros, in pieces. */
static void test_read_sparse(void **state)
{
	struct fixture *f = *state;
	struct archive_snapshot_reader *r = NULL;
	struct archive_snapshot_item it;
	const void *piece;
	char *arch = NULL;
	size_t alen, i;
	struct buf b;
	ssize_t n;
	int rc;

	test_run("cd '%s' && truncate -s 3M sparse && printf data | dd of=sparse bs=1 "
		 "seek=1048576 conv=notrunc status=none && tar --sparse --format=pax -cf - sparse "
		 "| zstd -q >sparse.tar.zst",
		 f->root);
	{
		char *p = path_in(f->root, "sparse.tar.zst");

		assert_int_equal(read_whole_file(&arch, &alen, p), 0);
		free(p);
	}
	assert_int_equal(archive_snapshot_open(&r, arch, alen), 0);
	assert_int_equal(archive_snapshot_next(r, &it), 1);
	assert_string_equal(it.path, "sparse");
	buf_init(&b);
	while ((n = archive_snapshot_read(r, &piece)) > 0)
		buf_add(&b, piece, (size_t)n);
	assert_int_equal(n, 0);
	assert_int_equal(b.len, 3u << 20);
	assert_memory_equal(b.data + (1u << 20), "data", 4);
	for (i = 0; i < b.len; i++)
		if (i < (1u << 20) || i >= (1u << 20) + 4)
			assert_int_equal(b.data[i], 0);
	buf_release(&b);
	rc = archive_snapshot_next(r, &it);
	assert_int_equal(rc, 0);
	archive_snapshot_free(r);
	free(arch);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_manifest_of_tree),
	    T(test_deterministic),
	    T(test_deterministic_after_atime),
	    T(test_deterministic_elsewhere),
	    T(test_content_change_changes_archive),
	    T(test_read_back),
	    T(test_read_sparse),
	    T(test_verify_ok),
	    T(test_verify_changed_byte),
	    T(test_verify_changed_byte_in_big_file),
	    T(test_verify_manifest_differs),
	    T(test_verify_entry_lists),
	    T(test_verify_damaged_compression),
	    T(test_stream_check),
	    T(test_stream_read_back),
	    T(test_stream_source_fails),
	    T(test_stream_damaged),
	    T(test_stream_sha_mismatch),
	    T(test_stream_abandoned),
	    T(test_write_fills_hashes),
	    T(test_write_filling_sees_a_rewrite),
	    T(test_write_refuses_changed_file),
	    T(test_write_missing_file),
	    cmocka_unit_test(test_empty_manifest),
	    cmocka_unit_test(test_versions),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
