/*
 * test_loose: loose object files written and read without libgit2, in real
 * bare repositories made by stock git: a written blob has git's id, is
 * stored (not deflated), has git's modes and passes "git fsck"; "git
 * cat-file" reads it back byte for byte; objects stock git wrote (deflated)
 * read back; an existing object is kept; the empty blob; and the failures:
 * no such object (MSGW_ENOTFOUND, for the packed fallback), a flipped byte,
 * a truncated file, content that does not match its name, and an object
 * that is not a blob (all MSGW_ECORRUPT naming the file), our own stored
 * objects damaged in their data, block lengths or end; and the same
 * read as a stream in small pieces, damage showing only at its end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "loose.h"
#include "test_util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
	char dir[PATH_MAX];
	char git[PATH_MAX + 16];     /* dir/repo.git */
	char objects[PATH_MAX + 32]; /* dir/repo.git/objects */
};

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

/* The first line of a shell command's output, without its newline. */
static void capture(char *out, size_t len, const char *cmd)
{
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	assert_non_null(fgets(out, (int)len, p));
	out[strcspn(out, "\n")] = '\0';
	assert_int_equal(pclose(p), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	test_mkdtemp(f->dir, "test_loose");
	snprintf(f->git, sizeof(f->git), "%s/repo.git", f->dir);
	snprintf(f->objects, sizeof(f->objects), "%s/objects", f->git);
	test_run("git init -q --bare '%s'", f->git);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_rmtree(f->dir);
	free(f);
	return 0;
}

/* A scratch file holding len bytes of a pattern (compressible when
 * repetitive), opened for reading. */
static int data_file(struct fixture *f, const char *name, size_t len, int repetitive)
{
	char path[PATH_MAX + 64];
	FILE *fp;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	for (i = 0; i < len; i++)
		fputc(repetitive ? 'a' : (int)((i * 2654435761u) >> 13 & 0xff), fp);
	assert_int_equal(fclose(fp), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	return fd;
}

static void object_path(char *out, size_t len, const struct fixture *f, const char *id)
{
	snprintf(out, len, "%s/%.2s/%s", f->objects, id, id + 2);
}

static void test_write_matches_git(void **state)
{
	struct fixture *f = *state;
	char id[LOOSE_ID_LEN], want[64], cmd[4 * PATH_MAX], path[PATH_MAX + 160];
	const size_t len = 300000; /* several zlib stored blocks and read chunks */
	char *back = NULL;
	size_t back_len = 0;
	struct stat st;
	mode_t mask = umask(077);
	int fd = data_file(f, "data", len, 0);

	assert_int_equal(loose_write_blob_fd(id, f->objects, fd, len), 0);
	umask(mask);
	close(fd);
	snprintf(cmd, sizeof(cmd), "git hash-object '%s/data'", f->dir);
	capture(want, sizeof(want), cmd);
	assert_string_equal(id, want);

	/* stock git reads it, and it checks out whole */
	test_run("git --git-dir='%s' fsck --full --strict 2>/dev/null", f->git);
	test_run("git --git-dir='%s' cat-file blob %s | cmp - '%s/data'", f->git, id, f->dir);

	/* git's modes under the umask, and only one file left behind */
	object_path(path, sizeof(path), f, id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0400);
	snprintf(path, sizeof(path), "%s/%.2s", f->objects, id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	test_run("test $(find '%s' -type f | wc -l) -eq 1", f->objects);

	assert_int_equal(loose_read_blob(&back, &back_len, f->objects, id), 0);
	assert_int_equal(back_len, len);
	assert_int_equal(back[len], '\0');
	fd = data_file(f, "data2", len, 0);
	{
		char *orig = malloc(len);

		assert_non_null(orig);
		assert_int_equal(read(fd, orig, len), (ssize_t)len);
		assert_memory_equal(back, orig, len);
		free(orig);
	}
	close(fd);
	free(back);
}

/* Level 0: even very compressible data is stored, not deflated. */
static void test_write_is_stored(void **state)
{
	struct fixture *f = *state;
	char id[LOOSE_ID_LEN], path[PATH_MAX + 160];
	const size_t len = 200000;
	struct stat st;
	int fd = data_file(f, "aaa", len, 1);

	assert_int_equal(loose_write_blob_fd(id, f->objects, fd, len), 0);
	close(fd);
	object_path(path, sizeof(path), f, id);
	assert_int_equal(stat(path, &st), 0);
	assert_true((size_t)st.st_size > len);
	assert_true((size_t)st.st_size < len + 200);
	test_run("git --git-dir='%s' cat-file blob %s | cmp - '%s/aaa'", f->git, id, f->dir);
}

static void test_write_existing_kept(void **state)
{
	struct fixture *f = *state;
	char id[LOOSE_ID_LEN], id2[LOOSE_ID_LEN], path[PATH_MAX + 160];
	struct stat a, b;
	int fd = data_file(f, "x", 1000, 0);

	assert_int_equal(loose_write_blob_fd(id, f->objects, fd, 1000), 0);
	object_path(path, sizeof(path), f, id);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(loose_write_blob_fd(id2, f->objects, fd, 1000), 0);
	close(fd);
	assert_string_equal(id, id2);
	assert_int_equal(stat(path, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	test_run("test $(find '%s' -type f | wc -l) -eq 1", f->objects);
}

static void test_empty_blob(void **state)
{
	struct fixture *f = *state;
	char id[LOOSE_ID_LEN], *back = NULL;
	size_t len = 1;
	int fd = data_file(f, "empty", 0, 0);

	assert_int_equal(loose_write_blob_fd(id, f->objects, fd, 0), 0);
	close(fd);
	assert_string_equal(id, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
	assert_int_equal(loose_read_blob(&back, &len, f->objects, id), 0);
	assert_int_equal(len, 0);
	assert_int_equal(back[0], '\0');
	free(back);
	test_run("git --git-dir='%s' cat-file -e %s", f->git, id);
}

/* Objects stock git wrote (deflated at its default level) read back. */
static void test_read_deflated(void **state)
{
	struct fixture *f = *state;
	char id[64], cmd[4 * PATH_MAX], *back = NULL;
	const size_t len = 150000;
	size_t back_len = 0, i;
	int fd = data_file(f, "aaa", len, 1);

	close(fd);
	snprintf(cmd, sizeof(cmd), "git --git-dir='%s' hash-object -w '%s/aaa'", f->git, f->dir);
	capture(id, sizeof(id), cmd);
	assert_int_equal(loose_read_blob(&back, &back_len, f->objects, id), 0);
	assert_int_equal(back_len, len);
	for (i = 0; i < len; i++)
		if (back[i] != 'a')
			fail_msg("byte %zu differs", i);
	free(back);
}

static void test_read_missing(void **state)
{
	struct fixture *f = *state;
	char *back = (char *)1;
	size_t len = 1;

	assert_int_equal(
	    loose_read_blob(&back, &len, f->objects, "0123456789012345678901234567890123456789"),
	    MSGW_ENOTFOUND);
	assert_null(back);
	assert_int_equal(loose_read_blob(&back, &len, f->objects, "not-an-id"), MSGW_ERR);
	assert_contains(err_last(), "bad object id 'not-an-id'");
}

/* Write a blob with git, make it writable and return its path. */
static void git_blob(struct fixture *f, char id[64], char *path, size_t plen, size_t len)
{
	char cmd[4 * PATH_MAX];
	int fd = data_file(f, "blob", len, 0);

	close(fd);
	snprintf(cmd, sizeof(cmd), "git --git-dir='%s' hash-object -w '%s/blob'", f->git, f->dir);
	capture(id, 64, cmd);
	object_path(path, plen, f, id);
	assert_int_equal(chmod(path, 0600), 0);
}

static void expect_damaged(struct fixture *f, const char *id, const char *path, const char *why)
{
	char *back = (char *)1;
	size_t len = 1;

	assert_int_equal(loose_read_blob(&back, &len, f->objects, id), MSGW_ECORRUPT);
	assert_null(back);
	assert_contains(err_last(), path);
	assert_contains(err_last(), "is damaged");
	if (why)
		assert_contains(err_last(), why);
}

static void test_read_flipped_byte(void **state)
{
	struct fixture *f = *state;
	char id[64], path[PATH_MAX + 160];
	struct stat st;
	FILE *fp;
	int c;

	git_blob(f, id, path, sizeof(path), 100000);
	assert_int_equal(stat(path, &st), 0);
	fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, st.st_size / 2, SEEK_SET), 0);
	c = fgetc(fp);
	assert_int_equal(fseek(fp, st.st_size / 2, SEEK_SET), 0);
	fputc(c ^ 0x55, fp);
	assert_int_equal(fclose(fp), 0);
	expect_damaged(f, id, path, NULL);
}

static void test_read_truncated(void **state)
{
	struct fixture *f = *state;
	char id[64], path[PATH_MAX + 160];
	struct stat st;

	git_blob(f, id, path, sizeof(path), 100000);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 40), 0);
	expect_damaged(f, id, path, "truncated");
}

/* Write a blob of len bytes with loose_write_blob_fd (stored blocks), make
 * it writable and return its path. */
static void our_blob(struct fixture *f, char id[LOOSE_ID_LEN], char *path, size_t plen, size_t len)
{
	int fd = data_file(f, "ours", len, 0);

	assert_int_equal(loose_write_blob_fd(id, f->objects, fd, len), 0);
	close(fd);
	object_path(path, plen, f, id);
	assert_int_equal(chmod(path, 0600), 0);
}

/* Flip one byte of the file at off. */
static void flip_at(const char *path, long off)
{
	FILE *fp = fopen(path, "r+b");
	int c;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, off, SEEK_SET), 0);
	c = fgetc(fp);
	assert_int_equal(fseek(fp, off, SEEK_SET), 0);
	fputc(c ^ 0x55, fp);
	assert_int_equal(fclose(fp), 0);
}

/* Our own objects (stored blocks, read without zlib) damaged: a byte of
 * the data, a block's length fields, the end cut off. */
static void test_read_stored_damaged(void **state)
{
	struct fixture *f = *state;
	char id[LOOSE_ID_LEN], path[PATH_MAX + 160];
	char *back = NULL;
	size_t len = 0;
	struct stat st;

	our_blob(f, id, path, sizeof(path), 200000);
	assert_int_equal(loose_read_blob(&back, &len, f->objects, id), 0);
	assert_int_equal(len, 200000);
	free(back);
	assert_int_equal(stat(path, &st), 0);
	flip_at(path, (long)st.st_size / 2);
	expect_damaged(f, id, path, "does not match its id");

	assert_int_equal(unlink(path), 0);
	our_blob(f, id, path, sizeof(path), 200000);
	{ /* the second block's NLEN, after the zlib header and the first block */
		unsigned char h[5];
		int fd = open(path, O_RDONLY);

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, h, 5, 2), 5);
		close(fd);
		assert_int_equal(h[0] & 7, 0); /* a stored block, not the last */
		flip_at(path, 2 + 5 + (h[1] | h[2] << 8) + 3);
	}
	expect_damaged(f, id, path, "invalid stored block lengths"); /* zlib's word */

	assert_int_equal(unlink(path), 0);
	our_blob(f, id, path, sizeof(path), 200000);
	assert_int_equal(truncate(path, st.st_size - 40), 0);
	expect_damaged(f, id, path, "truncated");
}

/* A sound object file under another object's name. */
static void test_read_wrong_id(void **state)
{
	struct fixture *f = *state;
	char id[64], path[PATH_MAX + 160], other[64], opath[PATH_MAX + 160];

	git_blob(f, id, path, sizeof(path), 5000);
	snprintf(other, sizeof(other), "%s", id);
	other[39] = other[39] == '0' ? '1' : '0';
	object_path(opath, sizeof(opath), f, other);
	assert_int_equal(rename(path, opath), 0);
	expect_damaged(f, other, opath, "does not match its id");
}

static void test_read_not_a_blob(void **state)
{
	struct fixture *f = *state;
	char id[64], path[PATH_MAX + 160], cmd[4 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "git --git-dir='%s' mktree </dev/null", f->git);
	capture(id, sizeof(id), cmd);
	object_path(path, sizeof(path), f, id);
	expect_damaged(f, id, path, "not a blob");
}

/* Streamed in small pieces: the content in order, then 0 once the end
 * checked out; a stored object damaged in its data reads on, and the
 * damage shows at the end (its SHA-1), never as a clean 0. */
static void test_stream(void **state)
{
	struct fixture *f = *state;
	char id[LOOSE_ID_LEN], path[PATH_MAX + 160], *orig, buf[1000];
	const size_t len = 100000;
	struct loose_reader *rd = NULL;
	size_t size = 0, done = 0;
	ssize_t n;
	FILE *fp;
	int c, fd = data_file(f, "s", len, 0);

	assert_int_equal(loose_write_blob_fd(id, f->objects, fd, len), 0);
	orig = malloc(len);
	assert_non_null(orig);
	assert_int_equal(pread(fd, orig, len, 0), (ssize_t)len);
	close(fd);
	assert_int_equal(loose_open(&rd, &size, f->objects, id), 0);
	assert_int_equal(size, len);
	while ((n = loose_read(rd, buf, sizeof(buf))) > 0) {
		assert_true(done + (size_t)n <= len);
		assert_memory_equal(buf, orig + done, (size_t)n);
		done += (size_t)n;
	}
	assert_int_equal(n, 0);
	assert_int_equal(done, len);
	assert_int_equal(loose_read(rd, buf, sizeof(buf)), 0);
	loose_close(rd);

	object_path(path, sizeof(path), f, id);
	assert_int_equal(chmod(path, 0600), 0);
	fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)len / 2, SEEK_SET), 0);
	c = fgetc(fp);
	assert_int_equal(fseek(fp, (long)len / 2, SEEK_SET), 0);
	fputc(c ^ 0x55, fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(loose_open(&rd, &size, f->objects, id), 0);
	done = 0;
	while ((n = loose_read(rd, buf, sizeof(buf))) > 0)
		done += (size_t)n;
	assert_int_equal(n, MSGW_ECORRUPT);
	assert_contains(err_last(), path);
	loose_close(rd);
	free(orig);
}

/* Read id through a stream without the SHA-1: 0 when all of it came with
 * the end checked (zlib and size), else the stream's code. */
static int read_no_sha1(struct fixture *f, const char *id, size_t want)
{
	struct loose_reader *rd = NULL;
	char buf[70000];
	size_t size = 0, total = 0;
	ssize_t n;
	int rc = loose_open(&rd, &size, f->objects, id);

	if (rc)
		return rc;
	assert_int_equal(size, want);
	loose_no_sha1(rd);
	while ((n = loose_read(rd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	loose_close(rd);
	if (n < 0)
		return (int)n;
	assert_int_equal(total, want);
	return 0;
}

/* Without the SHA-1 (extract checks each file's sha256 instead), a data
 * byte flipped in one of our stored-block objects goes unseen by the
 * reader, which is why the caller asks loose_read_blob when its own check
 * fails; zlib's checks of a deflated object and a truncation still hold. */
static void test_read_no_sha1(void **state)
{
	struct fixture *f = *state;
	char id[LOOSE_ID_LEN], gid[64], path[PATH_MAX + 160];
	struct stat st;

	our_blob(f, id, path, sizeof(path), 200000);
	assert_int_equal(read_no_sha1(f, id, 200000), 0);
	assert_int_equal(stat(path, &st), 0);
	flip_at(path, (long)st.st_size / 2);
	assert_int_equal(read_no_sha1(f, id, 200000), 0);
	expect_damaged(f, id, path, "does not match its id");

	assert_int_equal(unlink(path), 0);
	our_blob(f, id, path, sizeof(path), 200000);
	assert_int_equal(truncate(path, st.st_size - 40), 0);
	assert_int_equal(read_no_sha1(f, id, 200000), MSGW_ECORRUPT);

	git_blob(f, gid, path, sizeof(path), 100000);
	assert_int_equal(read_no_sha1(f, gid, 100000), 0);
	assert_int_equal(stat(path, &st), 0);
	flip_at(path, (long)st.st_size / 2);
	assert_int_equal(read_no_sha1(f, gid, 100000), MSGW_ECORRUPT);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_write_matches_git), T(test_write_is_stored),	    T(test_write_existing_kept),
	    T(test_empty_blob),	       T(test_read_deflated),	    T(test_read_missing),
	    T(test_read_flipped_byte), T(test_read_stored_damaged), T(test_read_truncated),
	    T(test_read_wrong_id),     T(test_read_not_a_blob),	    T(test_stream),
	    T(test_read_no_sha1),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
