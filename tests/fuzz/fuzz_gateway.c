/*
 * fuzz_gateway: the gateway's configuration records (JSON or not: the
 * mailbox records and their fingerprints, gateway.h), which come from a
 * snapshot or the target; and gateway_config_differs over the two halves.
 */
#include "fuzz.h"

#include "gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gateway_records r;
	const char *text = (const char *)data;

	gateway_records_init(&r);
	if (gateway_records_add_file(&r, "Conf/mailboxes.json", text, size))
		gateway_records_add_presence(&r, "Conf/mailboxes.json", text, size, "fuzz");
	(void)gateway_records_add_file(&r, "Conf/other.conf", text, size / 2);
	if (r.n)
		(void)gateway_records_find(&r, r.v[0].id);
	gateway_records_release(&r);
	(void)gateway_config_differs(text, size / 2, text + size / 2, size - size / 2);
	return 0;
}
