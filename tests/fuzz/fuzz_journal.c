/*
 * fuzz_journal: journal_parse (the journal lies on the target, where the
 * gateway's own account may write it); a journal that parses must format
 * and parse back to the same operations.
 */
#include "fuzz.h"

#include "journal.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal j, back;
	char *text;
	size_t i;

	if (journal_parse(&j, (const char *)data, size))
		return 0;
	text = journal_format(&j);
	assert(journal_parse(&back, text, strlen(text)) == 0);
	assert(back.n == j.n);
	for (i = 0; i < j.n; i++) {
		assert(back.e[i].op == j.e[i].op);
		assert(strcmp(back.e[i].path, j.e[i].path) == 0);
	}
	journal_release(&back);
	journal_release(&j);
	free(text);
	return 0;
}
