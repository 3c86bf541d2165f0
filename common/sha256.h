/*
 * sha256: streaming SHA-256 for manifests and verification, on OpenSSL's
 * libcrypto (already linked through libssh2), which uses the processor's
 * SHA instructions where they exist: hashing dominates the cost of a first
 * snapshot and of a restore's verification.
 */
#ifndef MSGW_SHA256_H
#define MSGW_SHA256_H

#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256 {
	SHA256_CTX ctx; /* plain state, no allocation: nothing to release on error paths */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[SHA256_LEN]);
/* One-shot convenience. */
void sha256_buf(unsigned char out[SHA256_LEN], const void *data, size_t len);

#endif
