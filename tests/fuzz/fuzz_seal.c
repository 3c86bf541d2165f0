/*
 * fuzz_seal: seal_open (a sealed manifest or archive comes from any
 * repository) over the bytes libFuzzer makes, under a fixed key whose
 * seeds in corpus/seal/ are sound sealed objects; whatever opens must seal
 * and open back to the same bytes, and the bytes themselves sealed must
 * open back to them (every chunk size, the last chunk included).
 */
#include "fuzz.h"

#include "seal.h"

#include <assert.h>
#include <stdio.h>
#include <unistd.h>

/* The fixed key of the seeds: "msgw-backup key 1" and 64 hex digits. */
#define FUZZ_KEY                                                                                   \
	"msgw-backup key 1\n"                                                                      \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"

static struct seal_key *key;

static void free_key(void)
{
	seal_key_free(key);
	key = NULL;
}

static void load_key(void)
{
	char path[] = "/tmp/fuzz_seal.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, FUZZ_KEY, sizeof(FUZZ_KEY) - 1) != sizeof(FUZZ_KEY) - 1)
		abort();
	close(fd);
	if (seal_key_load(&key, path) != 0)
		abort();
	unlink(path);
	atexit(free_key);
}

static void reopen(const char *label, const void *data, size_t len)
{
	char *sealed = NULL, *back = NULL;
	size_t slen = 0, blen = 0;

	seal_buffer(&sealed, &slen, key, label, strlen(label), data, len);
	assert(seal_open(&back, &blen, key, label, strlen(label), sealed, slen) == 0);
	assert(blen == len && memcmp(back, data, len) == 0);
	free(back);
	free(sealed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = NULL;
	size_t len = 0;

	if (!key)
		load_key();
	if (seal_open(&out, &len, key, "manifest", 8, data, size) == 0) {
		reopen("manifest", out, len);
		free(out);
	} else {
		assert(out == NULL);
	}
	if (seal_open(&out, &len, NULL, "manifest", 8, data, size) == 0)
		abort(); /* nothing opens without a key */
	reopen("config.tar.zst", data, size);
	return 0;
}
