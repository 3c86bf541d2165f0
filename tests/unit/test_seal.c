/*
 * test_seal: key files (created 0600, never overwritten, refused when
 * readable by others or malformed), the key id (stable for one key,
 * different for another), sealing round trips (empty, one chunk, exactly
 * one chunk, several chunks; buffer and fd give objects that open alike),
 * and every way a sealed object can be wrong: no key, another key,
 * another label, a flipped byte anywhere, truncation anywhere (chunk
 * boundaries included), data after the final chunk.  The streaming
 * unseal (seal_open_stream) gives the same plaintext whatever pieces its
 * source hands out, refuses the same damage, says its source's own error
 * (a git object that does not match its id) even when every chunk
 * authenticated, and never reads its source again after its end.  Keyed
 * digests differ from the plain sha256 and between keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "seal.h"
#include "sha256.h"
#include "util.h"
#include "test_util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* associated data given as a string */
#define L(s) (s), strlen(s)

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16];
	char path2[PATH_MAX + 16];
	struct seal_key *k, *k2;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	test_mkdtemp(f->dir, "test_seal");
	snprintf(f->path, sizeof(f->path), "%s/a.key", f->dir);
	snprintf(f->path2, sizeof(f->path2), "%s/b.key", f->dir);
	assert_int_equal(seal_key_create(&f->k, f->path), 0);
	assert_int_equal(seal_key_create(&f->k2, f->path2), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	seal_key_free(f->k);
	seal_key_free(f->k2);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static void test_key_file(void **state)
{
	struct fixture *f = *state;
	struct seal_key *again = NULL;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(strlen(seal_key_id(f->k)), SEAL_ID_LEN - 1);
	assert_string_not_equal(seal_key_id(f->k), seal_key_id(f->k2));
	assert_int_equal(seal_key_create(&again, f->path), MSGW_ECONFIG);
	assert_null(again);
	assert_non_null(strstr(err_last(), "is never overwritten"));
	assert_int_equal(seal_key_load(&again, f->path), 0);
	assert_string_equal(seal_key_id(again), seal_key_id(f->k));
	seal_key_free(again);
}

static void test_key_refused(void **state)
{
	struct fixture *f = *state;
	struct seal_key *k = NULL;
	char bad[PATH_MAX + 16];

	chmod(f->path, 0640);
	assert_int_equal(seal_key_load(&k, f->path), MSGW_ECONFIG);
	assert_non_null(strstr(err_last(), "readable by others (mode 0640)"));
	snprintf(bad, sizeof(bad), "%s/bad.key", f->dir);
	test_run("printf 'msgw-backup key 1\\nzz%%062d\\n' 0 >'%s' && chmod 600 '%s'", bad, bad);
	assert_int_equal(seal_key_load(&k, bad), MSGW_ECONFIG);
	assert_non_null(strstr(err_last(), "is not a msgw-backup key file"));
	snprintf(bad, sizeof(bad), "%s/none.key", f->dir);
	assert_int_equal(seal_key_load(&k, bad), MSGW_ECONFIG);
	assert_null(k);
}

static char *pattern(size_t len)
{
	char *p = xmalloc(len ? len : 1);
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (char)(i * 7 + i / 251);
	return p;
}

static void round_trip(const struct seal_key *k, size_t len)
{
	char *plain = pattern(len), *sealed = NULL, *out = NULL;
	size_t slen = 0, olen = 0;

	seal_buffer(&sealed, &slen, k, L("manifest"), plain, len);
	assert_true(seal_is_sealed(sealed, slen));
	assert_int_equal(seal_open(&out, &olen, k, L("manifest"), sealed, slen), 0);
	assert_int_equal(olen, len);
	assert_memory_equal(out, plain, len);
	assert_int_equal(out[olen], '\0');
	free(out);
	free(sealed);
	free(plain);
}

static void test_round_trips(void **state)
{
	struct fixture *f = *state;
	static const size_t sizes[] = {
	    0, 1, 100, SEAL_CHUNK - 1, SEAL_CHUNK, SEAL_CHUNK + 1, 3 * SEAL_CHUNK + 5};
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		round_trip(f->k, sizes[i]);
}

static void test_fd_matches_buffer_format(void **state)
{
	struct fixture *f = *state;
	size_t len = 2 * SEAL_CHUNK + 10, slen = 0, olen = 0;
	char *plain = pattern(len), *sealed, *out = NULL, in[PATH_MAX + 16], sp[PATH_MAX + 16];
	int ifd, ofd;

	snprintf(in, sizeof(in), "%s/in", f->dir);
	snprintf(sp, sizeof(sp), "%s/sealed", f->dir);
	ifd = open(in, O_RDWR | O_CREAT, 0600);
	ofd = open(sp, O_RDWR | O_CREAT, 0600);
	assert_true(ifd >= 0 && ofd >= 0);
	assert_int_equal(write(ifd, plain, len), (ssize_t)len);
	assert_int_equal(seal_fd(ofd, &slen, f->k, L("config.tar.zst"), ifd, len), 0);
	assert_int_equal(lseek(ofd, 0, SEEK_END), (off_t)slen);
	sealed = xmalloc(slen);
	assert_int_equal(pread(ofd, sealed, slen, 0), (ssize_t)slen);
	assert_int_equal(seal_open(&out, &olen, f->k, L("config.tar.zst"), sealed, slen), 0);
	assert_int_equal(olen, len);
	assert_memory_equal(out, plain, len);
	/* the label is authenticated: an archive cannot pass for a manifest */
	free(out);
	assert_int_equal(seal_open(&out, &olen, f->k, L("manifest"), sealed, slen), MSGW_ECORRUPT);
	assert_null(out);
	close(ifd);
	close(ofd);
	free(sealed);
	free(plain);
}

static void test_keys_named(void **state)
{
	struct fixture *f = *state;
	char *sealed = NULL, *out = NULL, id[SEAL_ID_LEN];
	size_t slen = 0, olen = 0;

	seal_buffer(&sealed, &slen, f->k, L("manifest"), "secret", 6);
	assert_int_equal(seal_object_key_id(id, sealed, slen), 0);
	assert_string_equal(id, seal_key_id(f->k));
	assert_int_equal(seal_open(&out, &olen, NULL, L("manifest"), sealed, slen), MSGW_ECONFIG);
	assert_non_null(strstr(err_last(), seal_key_id(f->k)));
	assert_non_null(strstr(err_last(), "no key file is configured"));
	assert_int_equal(seal_open(&out, &olen, f->k2, L("manifest"), sealed, slen), MSGW_ECONFIG);
	assert_non_null(strstr(err_last(), seal_key_id(f->k2)));
	assert_null(out);
	assert_null(memmem(sealed, slen, "secret", 6));
	free(sealed);
}

/* Every single-byte flip and every truncation of a 3-chunk object fails. */
static void test_damage_anywhere(void **state)
{
	struct fixture *f = *state;
	size_t len = 2 * SEAL_CHUNK + 300, slen = 0, olen = 0, at;
	char *plain = pattern(len), *sealed = NULL, *out = NULL, *copy;

	seal_buffer(&sealed, &slen, f->k, L("config.tar.zst"), plain, len);
	copy = xmalloc(slen + 1);
	for (at = 0; at < slen; at += (at < 100 ? 1 : 997)) {
		memcpy(copy, sealed, slen);
		copy[at] ^= 0x20;
		assert_int_not_equal(seal_open(&out, &olen, f->k, L("config.tar.zst"), copy, slen),
				     0);
		assert_null(out);
	}
	for (at = 0; at < slen; at += (at < 100 ? 1 : 1009)) {
		assert_int_not_equal(seal_open(&out, &olen, f->k, L("config.tar.zst"), sealed, at),
				     0);
		assert_null(out);
	}
	/* cut exactly after the first and second chunk: no final tag */
	at = slen - (300 + 17);
	assert_int_equal(seal_open(&out, &olen, f->k, L("config.tar.zst"), sealed, at),
			 MSGW_ECORRUPT);
	assert_non_null(strstr(err_last(), "truncated after chunk 2"));
	assert_int_equal(
	    seal_open(&out, &olen, f->k, L("config.tar.zst"), sealed, at - SEAL_CHUNK - 17),
	    MSGW_ECORRUPT);
	assert_non_null(strstr(err_last(), "truncated after chunk 1"));
	/* data after the final chunk */
	memcpy(copy, sealed, slen);
	copy[slen] = 'x';
	assert_int_equal(seal_open(&out, &olen, f->k, L("config.tar.zst"), copy, slen + 1),
			 MSGW_ECORRUPT);
	free(copy);
	free(sealed);
	free(plain);
}

/* A source over memory handing out at most piece bytes a call; fail_end:
 * its end is an error (as a git object not matching its id). */
struct mem_src {
	const char *p;
	size_t len, pos, piece;
	bool fail_end, ended;
	int calls_after_end;
};

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
	struct mem_src *m = ctx;
	size_t n = m->len - m->pos;

	if (m->ended) {
		m->calls_after_end++;
		return 0;
	}
	if (n == 0) {
		m->ended = true;
		return m->fail_end ? err_set(MSGW_ECORRUPT, "source does not match its id") : 0;
	}
	if (n > len)
		n = len;
	if (n > m->piece)
		n = m->piece;
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* seal_open_stream over data (its first line taken as the caller does);
 * the plaintext written, in *out (malloc'd) and *olen, when rc is 0. */
static int stream_open(const struct fixture *f, const struct seal_key *k, const char *data,
		       size_t len, struct mem_src *m, char **out, size_t *olen)
{
	char path[PATH_MAX + 16];
	int fd, rc;

	*out = NULL;
	*olen = 0;
	assert_true(len >= SEAL_LINE_LEN);
	m->p = data + SEAL_LINE_LEN;
	m->len = len - SEAL_LINE_LEN;
	snprintf(path, sizeof(path), "%s/plain", f->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	rc = seal_open_stream(fd, olen, k, L("config.tar.zst"), data, mem_read, m);
	if (!rc) {
		assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)*olen);
		*out = xmalloc(*olen + 1);
		assert_int_equal(pread(fd, *out, *olen, 0), (ssize_t)*olen);
	} else {
		assert_int_equal(*olen, 0);
	}
	close(fd);
	return rc;
}

static void test_stream_round_trips(void **state)
{
	struct fixture *f = *state;
	static const size_t sizes[] = {
	    0, 1, SEAL_CHUNK - 1, SEAL_CHUNK, SEAL_CHUNK + 1, 3 * SEAL_CHUNK + 5};
	static const size_t pieces[] = {7, 4096, 1 << 20};
	size_t i, j;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *plain = pattern(sizes[i]), *sealed = NULL;
		size_t slen = 0;

		seal_buffer(&sealed, &slen, f->k, L("config.tar.zst"), plain, sizes[i]);
		for (j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++) {
			struct mem_src m = {.piece = pieces[j]};
			char *out = NULL;
			size_t olen = 0;

			assert_int_equal(stream_open(f, f->k, sealed, slen, &m, &out, &olen), 0);
			assert_int_equal(olen, sizes[i]);
			assert_memory_equal(out, plain, olen);
			assert_int_equal(m.calls_after_end, 0);
			free(out);
		}
		free(sealed);
		free(plain);
	}
}

static void test_stream_refuses(void **state)
{
	struct fixture *f = *state;
	size_t len = 2 * SEAL_CHUNK + 300, slen = 0, olen = 0, at;
	char *plain = pattern(len), *sealed = NULL, *out = NULL, *copy;
	struct mem_src m;

	seal_buffer(&sealed, &slen, f->k, L("config.tar.zst"), plain, len);
	copy = xmalloc(slen + 1);
	for (at = SEAL_LINE_LEN; at < slen; at += (at < 100 ? 1 : 4999)) {
		memcpy(copy, sealed, slen);
		copy[at] ^= 0x20;
		m = (struct mem_src){.piece = 5000};
		assert_int_not_equal(stream_open(f, f->k, copy, slen, &m, &out, &olen), 0);
		m = (struct mem_src){.piece = 5000};
		assert_int_not_equal(stream_open(f, f->k, sealed, at, &m, &out, &olen), 0);
		assert_int_equal(m.calls_after_end, 0);
	}
	/* cut exactly after the second chunk; then after the first */
	at = slen - (300 + 17);
	m = (struct mem_src){.piece = 5000};
	assert_int_equal(stream_open(f, f->k, sealed, at, &m, &out, &olen), MSGW_ECORRUPT);
	assert_non_null(strstr(err_last(), "truncated after chunk 2"));
	m = (struct mem_src){.piece = 5000};
	assert_int_equal(stream_open(f, f->k, sealed, at - SEAL_CHUNK - 17, &m, &out, &olen),
			 MSGW_ECORRUPT);
	assert_non_null(strstr(err_last(), "truncated after chunk 1"));
	/* data after the final chunk */
	memcpy(copy, sealed, slen);
	copy[slen] = 'x';
	m = (struct mem_src){.piece = 5000};
	assert_int_equal(stream_open(f, f->k, copy, slen + 1, &m, &out, &olen), MSGW_ECORRUPT);
	/* every chunk authenticates, but the source's end says it is damaged */
	m = (struct mem_src){.piece = 5000, .fail_end = true};
	assert_int_equal(stream_open(f, f->k, sealed, slen, &m, &out, &olen), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "source does not match its id");
	/* another key, no key: refused before a byte is read */
	m = (struct mem_src){.piece = 5000};
	assert_int_equal(stream_open(f, f->k2, sealed, slen, &m, &out, &olen), MSGW_ECONFIG);
	assert_non_null(strstr(err_last(), seal_key_id(f->k2)));
	assert_int_equal(m.pos, 0);
	assert_int_equal(stream_open(f, NULL, sealed, slen, &m, &out, &olen), MSGW_ECONFIG);
	assert_non_null(strstr(err_last(), "no key file is configured"));
	assert_null(out);
	free(copy);
	free(sealed);
	free(plain);
}

static void test_sealing_is_randomized(void **state)
{
	struct fixture *f = *state;
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	seal_buffer(&a, &alen, f->k, L("manifest"), "same", 4);
	seal_buffer(&b, &blen, f->k, L("manifest"), "same", 4);
	assert_int_equal(alen, blen);
	assert_memory_not_equal(a, b, alen);
	free(a);
	free(b);
}

static void test_keyed_digest(void **state)
{
	struct fixture *f = *state;
	char d1[65], d2[65], d3[65], plain[2 * SHA256_LEN + 1];
	unsigned char sha[SHA256_LEN];

	seal_digest(d1, f->k, "content", 7);
	seal_digest(d2, f->k, "content", 7);
	seal_digest(d3, f->k2, "content", 7);
	assert_string_equal(d1, d2);
	assert_string_not_equal(d1, d3);
	sha256_buf(sha, "content", 7);
	hex_encode(plain, sha, SHA256_LEN);
	assert_string_not_equal(d1, plain);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_key_file),		T(test_key_refused),	 T(test_round_trips),
	    T(test_stream_round_trips), T(test_stream_refuses),	 T(test_fd_matches_buffer_format),
	    T(test_keys_named),		T(test_damage_anywhere), T(test_sealing_is_randomized),
	    T(test_keyed_digest),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
