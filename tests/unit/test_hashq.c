/*
 * test_hashq: files hashed on a second thread against their manifest
 * entries.  Many small files (more than a chunk's segments), an empty one,
 * one spanning several chunks and files given in uneven pieces all check
 * out; a file whose content differs is named, and with two, the first; a
 * failure found early is returned while giving, so the giver can stop;
 * giving up without finishing stops the thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "hashq.h"
#include "sha256.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SMALL 500
#define BIG	(3 * (1 << 20) + 12345)

struct fixture {
	struct manifest m;
	unsigned char **data; /* content of each entry */
};

/* Content of entry i: small files of i % 300 bytes, entry 0 empty, the
 * last one BIG bytes. */
static size_t size_of(size_t i)
{
	return i == N_SMALL ? BIG : i % 300;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	size_t i, k;

	manifest_init(&f->m);
	f->data = xcalloc(N_SMALL + 1, sizeof(*f->data));
	for (i = 0; i <= N_SMALL; i++) {
		char path[32];
		struct manifest_entry *e;

		snprintf(path, sizeof(path), "f%04zu", i);
		e = manifest_add(&f->m, 'f', path);
		e->size = size_of(i);
		f->data[i] = xmalloc(e->size + 1);
		for (k = 0; k < e->size; k++)
			f->data[i][k] = (unsigned char)(i * 31 + k * 7 + (k >> 9));
		sha256_buf(e->sha, f->data[i], e->size);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i <= N_SMALL; i++)
		free(f->data[i]);
	free(f->data);
	manifest_release(&f->m);
	free(f);
	return 0;
}

/* Give entry i in pieces of at most step bytes; the first failure. */
static int give(struct hashq *q, struct fixture *f, size_t i, size_t step)
{
	size_t off = 0, n = size_of(i);
	int rc = 0;

	while (!rc && off < n) {
		size_t len = n - off < step ? n - off : step;

		rc = hashq_add(q, i, f->data[i] + off, len);
		off += len;
	}
	return rc ? rc : hashq_end(q, i);
}

static void test_all_match(void **state)
{
	struct fixture *f = *state;
	static const size_t steps[] = {1 << 20, 4096, 77};
	size_t s, i;

	for (s = 0; s < 3; s++) {
		struct hashq *q = NULL;

		assert_int_equal(hashq_start(&q, &f->m), 0);
		for (i = 0; i <= N_SMALL; i++)
			assert_int_equal(give(q, f, i, steps[s]), 0);
		if (hashq_finish(q))
			fail_msg("finish: %s", err_last());
		hashq_free(q);
	}
}

static void test_mismatch_named(void **state)
{
	struct fixture *f = *state;
	struct hashq *q = NULL;
	size_t i;

	f->data[N_SMALL][BIG / 2] ^= 1;
	f->data[N_SMALL - 1][5] ^= 1;
	assert_int_equal(hashq_start(&q, &f->m), 0);
	for (i = 0; i <= N_SMALL; i++)
		if (give(q, f, i, 65536))
			break;
	assert_int_equal(hashq_finish(q), MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'f0499': sha256 does not match the manifest");
	hashq_free(q);
	f->data[N_SMALL][BIG / 2] ^= 1;
	f->data[N_SMALL - 1][5] ^= 1;
}

/* Entry 1 is damaged; the giver learns it while giving the big file
 * (many chunks later) and stops there. */
static void test_failure_stops_giver(void **state)
{
	struct fixture *f = *state;
	struct hashq *q = NULL;
	int rc = 0;

	f->data[1][0] ^= 1;
	assert_int_equal(hashq_start(&q, &f->m), 0);
	assert_int_equal(give(q, f, 1, 4096), 0);
	rc = give(q, f, N_SMALL, 4096);
	assert_int_equal(rc, MSGW_ECORRUPT);
	assert_string_equal(err_last(), "'f0001': sha256 does not match the manifest");
	assert_int_equal(hashq_finish(q), MSGW_ECORRUPT);
	hashq_free(q);
	f->data[1][0] ^= 1;
}

/* Given up mid-way, without hashq_finish: the thread stops (ASan and the
 * test's end show nothing is left). */
static void test_given_up(void **state)
{
	struct fixture *f = *state;
	struct hashq *q = NULL;

	assert_int_equal(hashq_start(&q, &f->m), 0);
	assert_int_equal(hashq_add(q, N_SMALL, f->data[N_SMALL], BIG / 2), 0);
	hashq_free(q);
	hashq_free(NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_all_match),
	    T(test_mismatch_named),
	    T(test_failure_stops_giver),
	    T(test_given_up),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
