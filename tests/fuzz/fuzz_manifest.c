/*
 * fuzz_manifest: manifest_parse (a snapshot's manifest comes from any
 * repository) and snapshot_meta_parse over the same bytes; a manifest
 * that parses must format and parse back to the same entries.
 */
#include "fuzz.h"

#include "manifest.h"
#include "snapshot.h"

#include <assert.h>

static void round_trip(const struct manifest *m)
{
	struct manifest back;
	char *text = NULL;
	size_t len = 0, i;

	if (manifest_format(&text, &len, m))
		return;
	assert(manifest_parse(&back, text, len) == 0);
	assert(back.n == m->n);
	for (i = 0; i < m->n; i++)
		assert(manifest_entry_equal(&back.e[i], &m->e[i]));
	manifest_release(&back);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot_meta meta = {0};
	struct manifest m;
	char *s;

	if (manifest_parse(&m, (const char *)data, size) == 0) {
		round_trip(&m);
		manifest_release(&m);
	}
	if (snapshot_meta_parse(&meta, (const char *)data, size) == 0)
		snapshot_meta_release(&meta);
	s = fuzz_string(data, size);
	free(manifest_decode_path(s));
	free(s);
	return 0;
}
