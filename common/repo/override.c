/*
 * override: two library entry points that the executable defines itself,
 * so that the dynamic linker binds libgit2's calls to them (a definition
 * in the executable comes first in the symbol search order; the Makefile
 * exports both names).  Each changes one thing, only while repo.c asks for
 * it on the calling thread, and otherwise hands the call on unchanged.
 * Nothing here reads or writes git data: libgit2 still does all of it.
 *
 * - mbedtls_x509_crt_parse_file: git_libgit2_init (Debian's libgit2 is
 *   built with mbedTLS) parses every certificate of the system's CA bundle,
 *   about 5 ms per process: 40% of a no-change snapshot.  msgw-backup never
 *   speaks HTTPS (remotes are ssh://, file:// or a path: remote.c refuses
 *   the rest), so during that call the bundle is not loaded.  Were HTTPS
 *   ever used, libgit2 would find no trusted CA and refuse the server.
 *
 * - deflateInit_: libgit2's loose backend deflates every object at zlib
 *   level 1 (level 0 makes libgit2 1.5 write the bytes with no zlib framing
 *   at all: objects no git can read).  The archive is already zstd output,
 *   which deflate cannot shrink, and deflating it was 45% of a first
 *   snapshot's CPU time.  While repo.c opens the archive's write stream,
 *   zlib is asked for level 0: "stored" blocks, a zlib stream that every
 *   git reads (git fsck, git cat-file), written at memory speed.
 *
 * Where a libgit2 build does not bind these names through the dynamic
 * linker (linked statically, or against OpenSSL), nothing changes but the
 * speed.
 */
#include "repo_internal.h"

#include <dlfcn.h>
#include <zlib.h>

static __thread bool skip_ca_bundle;
static __thread bool store_uncompressed;

void repo_override_skip_ca(bool on)
{
	skip_ca_bundle = on;
}

void repo_override_store(bool on)
{
	store_uncompressed = on;
}

struct mbedtls_x509_crt;
int mbedtls_x509_crt_parse_file(struct mbedtls_x509_crt *chain, const char *path);

int mbedtls_x509_crt_parse_file(struct mbedtls_x509_crt *chain, const char *path)
{
	int (*real)(struct mbedtls_x509_crt *, const char *);

	if (skip_ca_bundle)
		return 0; /* no certificate loaded, none trusted */
	*(void **)&real = dlsym(RTLD_NEXT, "mbedtls_x509_crt_parse_file");
	if (!real)
		return -1;
	return real(chain, path);
}

/* zlib's own deflateInit_ is exactly this call with the caller's level. */
int deflateInit_(z_streamp strm, int level, const char *version, int stream_size)
{
	if (store_uncompressed)
		level = Z_NO_COMPRESSION;
	return deflateInit2_(strm, level, Z_DEFLATED, MAX_WBITS, 8, Z_DEFAULT_STRATEGY, version,
			     stream_size);
}
