/*
 * fuzz_sftp: sftp_pipe_parse and sftp_pipe_next_name, the parser of the
 * replies an SFTP server (the gateway's, untrusted) sends to pipelined
 * requests; every pointer it gives must lie inside the packet.
 */
#include "fuzz.h"

#include "fsys/sftp_pipe.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sftp_reply r;
	uint32_t i;

	if (sftp_pipe_parse(&r, data, size))
		return 0;
	if (r.str)
		assert(r.str >= data && r.str + r.str_len <= data + size);
	for (i = 0; r.type == 104 && i < r.count; i++) {
		const unsigned char *name;
		LIBSSH2_SFTP_ATTRIBUTES a;
		uint32_t len;

		if (sftp_pipe_next_name(&r, &name, &len, &a))
			break;
		assert(name >= data && name + len <= data + size);
		assert(r.rest >= data && r.rest + r.rest_len == data + size);
	}
	return 0;
}
