/*
 * fuzz_snapref: snapshot names as given on the command line or found in a
 * repository (snapref.h).
 */
#include "fuzz.h"

#include "snapref.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapref ref;
	char *s = fuzz_string(data, size);

	if (snapref_parse(&ref, s) == 0) {
		assert(ref.name);
		assert(ref.back >= 0);
		snapref_release(&ref);
	}
	(void)snapref_valid_name(s);
	free(s);
	return 0;
}
