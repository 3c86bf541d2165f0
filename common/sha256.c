/*
 * sha256: thin wrappers over libcrypto's SHA-256.  The low-level SHA256_*
 * calls are deprecated in OpenSSL 3 in favour of EVP, but EVP contexts must
 * be allocated and freed, and every early return on a read error would then
 * need a matching free; the low-level state is a plain struct, so it is
 * used here, in this one file, with the deprecation warning silenced.
 */
#include "sha256.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

void sha256_init(struct sha256 *s)
{
	SHA256_Init(&s->ctx);
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	SHA256_Update(&s->ctx, data, len);
}

void sha256_final(struct sha256 *s, unsigned char out[SHA256_LEN])
{
	SHA256_Final(out, &s->ctx);
}

void sha256_buf(unsigned char out[SHA256_LEN], const void *data, size_t len)
{
	struct sha256 s;

	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, out);
}
