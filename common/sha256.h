/*
 * sha256: FIPS 180-4 SHA-256, streaming.  Our own small implementation, since
 * none of the libraries we link exports one.
 */
#ifndef MSGW_SHA256_H
#define MSGW_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256 {
	uint32_t h[8];
	uint64_t total;
	unsigned char block[64];
	size_t used;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[SHA256_LEN]);
/* One-shot convenience. */
void sha256_buf(unsigned char out[SHA256_LEN], const void *data, size_t len);

#endif
