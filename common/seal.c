/*
 * seal: key files, key ids, crypto_secretstream_xchacha20poly1305 sealing
 * of one object and keyed BLAKE2b digests, on libsodium.  The format is in
 * seal.h.  Does not know where sealed objects are kept.
 */
#include "seal.h"
#include "err.h"
#include "util.h"

#include <sodium.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_MAGIC     "msgw-backup key 1\n"
#define OBJ_MAGIC     "msgw-sealed 1 "
#define OBJ_MAGIC_LEN (sizeof(OBJ_MAGIC) - 1)
/* "msgw-sealed 1 " + 16 hex + "\n" */
#define OBJ_LINE_LEN (OBJ_MAGIC_LEN + SEAL_ID_LEN)
#define HDR_LEN	     crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define ABYTES	     crypto_secretstream_xchacha20poly1305_ABYTES
#define KDF_CTX	     "msgwseal"

_Static_assert(OBJ_LINE_LEN == SEAL_LINE_LEN, "seal.h's SEAL_LINE_LEN is the first line");

enum { SUBKEY_ID = 1, SUBKEY_STREAM = 2, SUBKEY_DIGEST = 3 };

struct seal_key {
	unsigned char stream[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	unsigned char digest[crypto_generichash_KEYBYTES];
	char id[SEAL_ID_LEN];
	char *path;
};

static void init_once(void)
{
	if (sodium_init() < 0)
		abort(); /* no entropy source: nothing sensible is left to do */
}

static struct seal_key *key_from(const unsigned char master[crypto_kdf_KEYBYTES], const char *path)
{
	struct seal_key *k = sodium_malloc(sizeof(*k));
	unsigned char idbytes[16];

	if (!k)
		abort();
	memset(k, 0, sizeof(*k));
	crypto_kdf_derive_from_key(idbytes, sizeof(idbytes), SUBKEY_ID, KDF_CTX, master);
	crypto_kdf_derive_from_key(k->stream, sizeof(k->stream), SUBKEY_STREAM, KDF_CTX, master);
	crypto_kdf_derive_from_key(k->digest, sizeof(k->digest), SUBKEY_DIGEST, KDF_CTX, master);
	sodium_bin2hex(k->id, sizeof(k->id), idbytes, 8);
	k->path = xstrdup(path);
	return k;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int seal_key_create(struct seal_key **out, const char *path)
{
	unsigned char master[crypto_kdf_KEYBYTES];
	char text[sizeof(KEY_MAGIC) + 2 * crypto_kdf_KEYBYTES + 2];
	int fd, rc = 0;

	*out = NULL;
	init_once();
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == EEXIST)
		return err_set(MSGW_ECONFIG, "key file '%s' exists; a key is never overwritten",
			       path);
	if (fd < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot create key file '%s'", path);
	crypto_kdf_keygen(master);
	memcpy(text, KEY_MAGIC, sizeof(KEY_MAGIC) - 1);
	sodium_bin2hex(text + sizeof(KEY_MAGIC) - 1, 2 * crypto_kdf_KEYBYTES + 1, master,
		       sizeof(master));
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	if (write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
		rc = err_set_errno(MSGW_ERR, errno, "cannot write key file '%s'", path);
		unlink(path);
	}
	close(fd);
	if (!rc)
		*out = key_from(master, path);
	sodium_memzero(master, sizeof(master));
	sodium_memzero(text, sizeof(text));
	return rc;
}

static int parse_key(unsigned char master[crypto_kdf_KEYBYTES], const char *text, size_t len,
		     const char *path)
{
	const char *hex = text + sizeof(KEY_MAGIC) - 1;
	size_t got = 0;

	if (len < sizeof(KEY_MAGIC) - 1 + 2 * crypto_kdf_KEYBYTES ||
	    memcmp(text, KEY_MAGIC, sizeof(KEY_MAGIC) - 1) != 0 ||
	    sodium_hex2bin(master, crypto_kdf_KEYBYTES, hex, 2 * crypto_kdf_KEYBYTES, NULL, &got,
			   NULL) != 0 ||
	    got != crypto_kdf_KEYBYTES)
		return err_set(MSGW_ECONFIG, "'%s' is not a msgw-backup key file", path);
	return 0;
}

int seal_key_load(struct seal_key **out, const char *path)
{
	unsigned char master[crypto_kdf_KEYBYTES];
	char text[256];
	struct stat st;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	init_once();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(MSGW_ECONFIG, errno, "cannot open key file '%s'", path);
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		close(fd);
		return err_set(MSGW_ECONFIG,
			       "key file '%s' is readable by others (mode %04o); chmod 600 it",
			       path, (unsigned)(st.st_mode & 07777));
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return err_set_errno(MSGW_ECONFIG, errno, "cannot read key file '%s'", path);
	rc = parse_key(master, text, (size_t)n, path);
	if (!rc)
		*out = key_from(master, path);
	sodium_memzero(master, sizeof(master));
	sodium_memzero(text, sizeof(text));
	return rc;
}

const char *seal_key_id(const struct seal_key *k)
{
	return k->id;
}

const char *seal_key_path(const struct seal_key *k)
{
	return k->path;
}

void seal_key_free(struct seal_key *k)
{
	if (!k)
		return;
	free(k->path);
	sodium_free(k); /* wipes the key bytes */
}

bool seal_is_sealed(const void *data, size_t len)
{
	return len >= OBJ_MAGIC_LEN && memcmp(data, OBJ_MAGIC, OBJ_MAGIC_LEN) == 0;
}

int seal_object_key_id(char out[SEAL_ID_LEN], const void *data, size_t len)
{
	const char *p = data;
	size_t i;

	out[0] = '\0';
	if (!seal_is_sealed(data, len) || len < OBJ_LINE_LEN || p[OBJ_LINE_LEN - 1] != '\n')
		return err_set(MSGW_ECORRUPT, "sealed object is truncated in its first line");
	for (i = 0; i < SEAL_ID_LEN - 1; i++) {
		char c = p[OBJ_MAGIC_LEN + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return err_set(MSGW_ECORRUPT, "sealed object has a bad key id");
		out[i] = c;
	}
	out[SEAL_ID_LEN - 1] = '\0';
	return 0;
}

/* The first line and secretstream header of a new sealed object. */
static void begin(unsigned char *line, crypto_secretstream_xchacha20poly1305_state *state,
		  const struct seal_key *k)
{
	memcpy(line, OBJ_MAGIC, OBJ_MAGIC_LEN);
	memcpy(line + OBJ_MAGIC_LEN, k->id, SEAL_ID_LEN - 1);
	line[OBJ_LINE_LEN - 1] = '\n';
	crypto_secretstream_xchacha20poly1305_init_push(state, line + OBJ_LINE_LEN, k->stream);
}

struct ad {
	const unsigned char *p;
	size_t len;
};

static void push(unsigned char *out, crypto_secretstream_xchacha20poly1305_state *state,
		 struct ad ad, const void *in, size_t len, bool last)
{
	crypto_secretstream_xchacha20poly1305_push(
	    state, out, NULL, in, len, ad.p, ad.len,
	    last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
}

/* Sealed size of len plaintext bytes: every chunk full but the last. */
static size_t sealed_size(size_t len)
{
	return OBJ_LINE_LEN + HDR_LEN + len + (len / SEAL_CHUNK + 1) * ABYTES;
}

void seal_buffer(char **out, size_t *len_out, const struct seal_key *k, const void *ad,
		 size_t adlen, const void *data, size_t len)
{
	struct ad a = {ad, adlen};
	crypto_secretstream_xchacha20poly1305_state state;
	size_t total = sealed_size(len), off = 0;
	unsigned char *buf = xmalloc(total), *w;

	init_once();
	begin(buf, &state, k);
	w = buf + OBJ_LINE_LEN + HDR_LEN;
	for (;;) {
		size_t n = len - off < SEAL_CHUNK ? len - off : SEAL_CHUNK;
		bool last = n < SEAL_CHUNK;

		push(w, &state, a, (const unsigned char *)data + off, n, last);
		w += n + ABYTES;
		off += n;
		if (last)
			break;
	}
	sodium_memzero(&state, sizeof(state));
	*out = (char *)buf;
	*len_out = total;
}

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (errno = EIO, -1);
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int seal_fd(int out_fd, size_t *len_out, const struct seal_key *k, const void *ad, size_t adlen,
	    int in_fd, size_t in_len)
{
	struct ad a = {ad, adlen};
	crypto_secretstream_xchacha20poly1305_state state;
	unsigned char head[OBJ_LINE_LEN + HDR_LEN];
	unsigned char *in = xmalloc(SEAL_CHUNK), *out = xmalloc(SEAL_CHUNK + ABYTES);
	size_t off = 0;
	int rc = 0;

	init_once();
	*len_out = 0;
	begin(head, &state, k);
	if (write_all(out_fd, head, sizeof(head)) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write a sealed object");
	while (!rc) {
		size_t n = in_len - off < SEAL_CHUNK ? in_len - off : SEAL_CHUNK;
		bool last = n < SEAL_CHUNK;

		if (pread_full(in_fd, in, n, (off_t)off) < 0) {
			rc = err_set_errno(MSGW_ERR, errno, "cannot read what is to be sealed");
			break;
		}
		push(out, &state, a, in, n, last);
		if (write_all(out_fd, out, n + ABYTES) < 0)
			rc = err_set_errno(MSGW_ERR, errno, "cannot write a sealed object");
		off += n;
		if (last)
			break;
	}
	if (!rc)
		*len_out = sealed_size(in_len);
	sodium_memzero(&state, sizeof(state));
	sodium_memzero(in, SEAL_CHUNK);
	free(in);
	free(out);
	return rc;
}

static int check_key(const struct seal_key *k, const void *data, size_t len)
{
	char id[SEAL_ID_LEN];
	int rc = seal_object_key_id(id, data, len);

	if (rc)
		return rc;
	if (!k)
		return err_set(MSGW_ECONFIG,
			       "sealed with key %s and no key file is configured "
			       "(encryption = \"keyfile:PATH\")",
			       id);
	if (strcmp(id, k->id) != 0)
		return err_set(MSGW_ECONFIG, "sealed with key %s, not with key %s of '%s'", id,
			       k->id, k->path);
	return 0;
}

/* Every chunk, each authenticated; the FINAL tag exactly at the end. */
static int pull_all(unsigned char *plain, size_t *plain_len,
		    crypto_secretstream_xchacha20poly1305_state *state, struct ad ad,
		    const unsigned char *c, size_t clen)
{
	size_t off = 0, chunk = 0;

	*plain_len = 0;
	for (;;) {
		size_t n = clen - off < SEAL_CHUNK + ABYTES ? clen - off : SEAL_CHUNK + ABYTES;
		unsigned long long got = 0;
		unsigned char tag = 0;

		if (n < ABYTES)
			return err_set(MSGW_ECORRUPT, "sealed object is truncated after chunk %zu",
				       chunk);
		if (crypto_secretstream_xchacha20poly1305_pull(state, plain + *plain_len, &got,
							       &tag, c + off, n, ad.p, ad.len) != 0)
			return err_set(MSGW_ECORRUPT,
				       "sealed object is damaged or not this snapshot's: "
				       "chunk %zu does not authenticate",
				       chunk + 1);
		*plain_len += (size_t)got;
		off += n;
		chunk++;
		if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
			return off == clen ? 0
					   : err_set(MSGW_ECORRUPT, "sealed object has data after "
								    "its final chunk");
		if (off == clen)
			return err_set(MSGW_ECORRUPT, "sealed object is truncated after chunk %zu",
				       chunk);
	}
}

int seal_open(char **out, size_t *len_out, const struct seal_key *k, const void *ad, size_t adlen,
	      const void *data, size_t len)
{
	struct ad a = {ad, adlen};
	crypto_secretstream_xchacha20poly1305_state state;
	const unsigned char *p = data;
	unsigned char *plain = NULL;
	size_t plain_len = 0;
	int rc;

	*out = NULL;
	*len_out = 0;
	init_once();
	rc = check_key(k, data, len);
	if (rc)
		return rc;
	if (len < OBJ_LINE_LEN + HDR_LEN || crypto_secretstream_xchacha20poly1305_init_pull(
						&state, p + OBJ_LINE_LEN, k->stream) != 0)
		return err_set(MSGW_ECORRUPT, "sealed object is truncated in its header");
	plain = xmalloc(len + 1); /* the plaintext is shorter than the sealed object */
	rc = pull_all(plain, &plain_len, &state, a, p + OBJ_LINE_LEN + HDR_LEN,
		      len - OBJ_LINE_LEN - HDR_LEN);
	sodium_memzero(&state, sizeof(state));
	if (rc) {
		sodium_memzero(plain, len);
		free(plain);
		return rc;
	}
	plain[plain_len] = '\0';
	*out = (char *)plain;
	*len_out = plain_len;
	return 0;
}

/* rd, never called again once it said 0. */
struct src {
	seal_read_fn rd;
	void *ctx;
	bool eof;
};

/* Up to len bytes, fewer only at the end: how many, or rd's error. */
static ssize_t src_fill(struct src *s, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len && !s->eof) {
		ssize_t n = s->rd(s->ctx, buf + got, len - got);

		if (n < 0)
			return n;
		if (n == 0)
			s->eof = true;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* One chunk of SEAL_CHUNK + ABYTES bytes (fewer: the last) pulled and
 * written; *final when it carried the FINAL tag. */
static int pull_chunk(int out_fd, size_t *len, crypto_secretstream_xchacha20poly1305_state *state,
		      struct ad ad, struct src *s, unsigned char *in, unsigned char *out,
		      size_t chunk, bool *final)
{
	unsigned long long got = 0;
	unsigned char tag = 0;
	ssize_t n = src_fill(s, in, SEAL_CHUNK + ABYTES);

	if (n < 0)
		return (int)n;
	if ((size_t)n < ABYTES)
		return err_set(MSGW_ECORRUPT, "sealed object is truncated after chunk %zu", chunk);
	if (crypto_secretstream_xchacha20poly1305_pull(state, out, &got, &tag, in, (size_t)n, ad.p,
						       ad.len) != 0)
		return err_set(MSGW_ECORRUPT,
			       "sealed object is damaged or not this snapshot's: "
			       "chunk %zu does not authenticate",
			       chunk + 1);
	if (write_all(out_fd, out, (size_t)got) < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot write an unsealed object");
	*len += (size_t)got;
	*final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
	if (!*final && s->eof)
		return err_set(MSGW_ECORRUPT, "sealed object is truncated after chunk %zu",
			       chunk + 1);
	return 0;
}

int seal_open_stream(int out_fd, size_t *len_out, const struct seal_key *k, const void *ad,
		     size_t adlen, const char line[SEAL_LINE_LEN], seal_read_fn rd, void *ctx)
{
	struct ad a = {ad, adlen};
	struct src s = {rd, ctx, false};
	crypto_secretstream_xchacha20poly1305_state state;
	unsigned char hdr[HDR_LEN], *in = NULL, *out = NULL;
	size_t chunk = 0;
	bool final = false;
	ssize_t n;
	int rc;

	*len_out = 0;
	init_once();
	rc = check_key(k, line, SEAL_LINE_LEN);
	if (rc)
		return rc;
	n = src_fill(&s, hdr, HDR_LEN);
	if (n < 0)
		return (int)n;
	if ((size_t)n < HDR_LEN ||
	    crypto_secretstream_xchacha20poly1305_init_pull(&state, hdr, k->stream) != 0)
		return err_set(MSGW_ECORRUPT, "sealed object is truncated in its header");
	in = xmalloc(SEAL_CHUNK + ABYTES);
	out = xmalloc(SEAL_CHUNK);
	while (!rc && !final)
		rc = pull_chunk(out_fd, len_out, &state, a, &s, in, out, chunk++, &final);
	if (!rc && (n = src_fill(&s, in, 1)) != 0) /* rd's end, and its checks */
		rc = n < 0 ? (int)n
			   : err_set(MSGW_ECORRUPT, "sealed object has data after its final chunk");
	sodium_memzero(&state, sizeof(state));
	sodium_memzero(out, SEAL_CHUNK);
	free(in);
	free(out);
	if (rc)
		*len_out = 0;
	return rc;
}

void seal_digest(char out[65], const struct seal_key *k, const void *data, size_t len)
{
	unsigned char md[32];

	init_once();
	crypto_generichash(md, sizeof(md), data, len, k->digest, sizeof(k->digest));
	sodium_bin2hex(out, 65, md, sizeof(md));
}
