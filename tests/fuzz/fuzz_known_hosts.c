/*
 * fuzz_known_hosts: the known_hosts reader of ssh.c (markers, comments,
 * hashed and plain entries through libssh2) over any text, looking up a
 * fixed ed25519 key for a port other than 22 and for port 22.
 */
#include "fuzz.h"

#include "ssh.h"

/* an ed25519 key's blob (test_ssh.c's K1) */
static const unsigned char blob[] = {
    0x00, 0x00, 0x00, 0x0b, 0x73, 0x73, 0x68, 0x2d, 0x65, 0x64, 0x32, 0x35, 0x35,
    0x31, 0x39, 0x00, 0x00, 0x00, 0x20, 0xe1, 0x70, 0x7b, 0xf1, 0x20, 0xf3, 0xcd,
    0xd9, 0xe6, 0x50, 0xf2, 0x60, 0x3b, 0x2d, 0x30, 0x87, 0x08, 0xc8, 0x82, 0xf0,
    0x0b, 0x41, 0x11, 0x0d, 0x8c, 0xd6, 0x81, 0xe8, 0xb4, 0x14, 0x5a, 0xff};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		const char *host;
		int port;
	} who[] = {{"127.0.0.1", 2222}, {"gw.example.com", 22}};
	enum ssh_hostkey_status st;
	struct ssh_hostkey key;
	size_t i;

	for (i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		if (ssh_hostkey_init(&key, who[i].host, who[i].port, blob, sizeof(blob)))
			abort();
		(void)ssh_known_hosts_lookup_text(&st, "fuzz", (const char *)data, size, &key);
		ssh_hostkey_release(&key);
	}
	return 0;
}
