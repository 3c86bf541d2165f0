/*
 * fuzz.h: what the libFuzzer harnesses of tests/fuzz/ share.  Each harness
 * feeds the bytes libFuzzer makes to one parser of bytes from outside and
 * lets the sanitizers (address, undefined, leaks) find what goes wrong;
 * assert() marks what must hold whatever the input (a round trip).
 */
#ifndef MSGW_FUZZ_H
#define MSGW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a NUL-terminated string (malloc'd; an embedded NUL ends it). */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
