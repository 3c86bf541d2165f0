/*
 * crypto.c: everything msgw-sim does with libsodium.  It has one random
 * source, which `init --seed S` turns deterministic (each draw is
 * randombytes_buf_deterministic keyed by BLAKE2b(seed state || counter)), so
 * ids, passwords, keys, salts, nonces and the certificate repeat exactly for
 * the same seed.  A mailbox's key material is an X25519 keypair whose secret
 * key is sealed with crypto_secretbox under a key derived from the mailbox
 * password by argon2id at the minimum cost (tests must stay fast).  Message
 * sealing (crypto_box_seal) is done by mail.c; ids and uuids are made here.
 */
#include <stdint.h>

#include "sim.h"

#define KDF_OPS crypto_pwhash_OPSLIMIT_MIN
#define KDF_MEM crypto_pwhash_MEMLIMIT_MIN
#define KDF_ALG crypto_pwhash_ALG_ARGON2ID13

static struct {
	int seeded;
	unsigned char key[crypto_generichash_BYTES];
	uint64_t counter;
} rng;

void sim_rng_seed(const char *seed)
{
	rng.seeded = seed != NULL;
	rng.counter = 0;
	if (seed)
		crypto_generichash(rng.key, sizeof(rng.key), (const unsigned char *)seed,
				   strlen(seed), NULL, 0);
}

int sim_rng_seeded(void)
{
	return rng.seeded;
}

void sim_rng_bytes(void *buf, size_t len)
{
	unsigned char in[sizeof(rng.key) + 8];
	unsigned char draw[randombytes_SEEDBYTES];

	if (!rng.seeded) {
		randombytes_buf(buf, len);
		return;
	}
	memcpy(in, rng.key, sizeof(rng.key));
	for (int i = 0; i < 8; i++)
		in[sizeof(rng.key) + i] = (unsigned char)(rng.counter >> (8 * i));
	rng.counter++;
	crypto_generichash(draw, sizeof(draw), in, sizeof(in), NULL, 0);
	randombytes_buf_deterministic(buf, len, draw);
	sodium_memzero(draw, sizeof(draw));
	sodium_memzero(in, sizeof(in));
}

void sim_random_hex(char *out, size_t nbytes)
{
	unsigned char *bin = sim_xmalloc(nbytes);

	sim_rng_bytes(bin, nbytes);
	sodium_bin2hex(out, 2 * nbytes + 1, bin, nbytes);
	free(bin);
}

void sim_uuid4(char out[SIM_UUID_LEN + 1])
{
	unsigned char b[16];

	sim_rng_bytes(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, SIM_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

void sim_password(char out[SIM_PASSWORD_LEN + 1])
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char b[32];
	size_t n = 0;

	while (n < SIM_PASSWORD_LEN) {
		sim_rng_bytes(b, sizeof(b));
		/* 248 = 4 * 62: rejecting the rest keeps the choice uniform */
		for (size_t i = 0; i < sizeof(b) && n < SIM_PASSWORD_LEN; i++)
			if (b[i] < 248)
				out[n++] = alphabet[b[i] % 62];
	}
	out[n] = '\0';
	sodium_memzero(b, sizeof(b));
}

char *sim_b64(const unsigned char *bin, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = sim_xmalloc(n);

	sodium_bin2base64(s, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

static int derive_key(unsigned char key[crypto_secretbox_KEYBYTES], const char *password,
		      const unsigned char salt[crypto_pwhash_SALTBYTES])
{
	if (crypto_pwhash(key, crypto_secretbox_KEYBYTES, password, strlen(password), salt, KDF_OPS,
			  KDF_MEM, KDF_ALG) != 0) {
		sim_seterr("cannot derive a key from the password: out of memory");
		return -1;
	}
	return 0;
}

int sim_keys_generate(struct sim_keys *out, const char *password)
{
	unsigned char seed[crypto_box_SEEDBYTES];
	unsigned char sk[crypto_box_SECRETKEYBYTES];
	unsigned char key[crypto_secretbox_KEYBYTES];
	int rc = -1;

	sim_rng_bytes(seed, sizeof(seed));
	if (crypto_box_seed_keypair(out->pk, sk, seed) != 0) {
		sim_seterr("cannot generate a keypair");
		goto cleanup;
	}
	sim_rng_bytes(out->salt, sizeof(out->salt));
	sim_rng_bytes(out->nonce, sizeof(out->nonce));
	if (derive_key(key, password, out->salt))
		goto cleanup;
	crypto_secretbox_easy(out->esk, sk, sizeof(sk), out->nonce, key);
	rc = 0;
cleanup:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(key, sizeof(key));
	return rc;
}

/* -1 with no message set for a wrong password, -2 with one for anything else. */
int sim_keys_unlock(const struct sim_keys *k, const char *password,
		    unsigned char sk_out[crypto_box_SECRETKEYBYTES])
{
	unsigned char key[crypto_secretbox_KEYBYTES];
	int rc;

	if (derive_key(key, password, k->salt))
		return -2;
	rc = crypto_secretbox_open_easy(sk_out, k->esk, sizeof(k->esk), k->nonce, key) ? -1 : 0;
	sodium_memzero(key, sizeof(key));
	if (rc)
		sodium_memzero(sk_out, crypto_box_SECRETKEYBYTES);
	return rc;
}

static int set_b64(json_t *mbx, const char *field, const unsigned char *bin, size_t len)
{
	char *s = sim_b64(bin, len);
	int rc = json_object_set_new(mbx, field, json_string(s));

	free(s);
	if (rc)
		sim_seterr("cannot store '%s': out of memory", field);
	return rc ? -1 : 0;
}

int sim_keys_to_json(json_t *mbx, const struct sim_keys *k)
{
	if (set_b64(mbx, "publicKey", k->pk, sizeof(k->pk)) ||
	    set_b64(mbx, "encryptedPrivateKey", k->esk, sizeof(k->esk)) ||
	    set_b64(mbx, "keySalt", k->salt, sizeof(k->salt)) ||
	    set_b64(mbx, "keyNonce", k->nonce, sizeof(k->nonce)))
		return -1;
	return 0;
}

static int get_b64(const json_t *mbx, const char *field, unsigned char *bin, size_t len)
{
	const char *s = json_string_value(json_object_get(mbx, field));
	const char *end = NULL;
	size_t got = 0;

	if (!s) {
		sim_seterr("missing or non-string field '%s'", field);
		return -1;
	}
	if (sodium_base642bin(bin, len, s, strlen(s), NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    got != len || *end != '\0') {
		sim_seterr("field '%s' is not the base64 of %zu bytes", field, len);
		return -1;
	}
	return 0;
}

int sim_keys_from_json(struct sim_keys *out, const json_t *mbx)
{
	if (get_b64(mbx, "publicKey", out->pk, sizeof(out->pk)) ||
	    get_b64(mbx, "encryptedPrivateKey", out->esk, sizeof(out->esk)) ||
	    get_b64(mbx, "keySalt", out->salt, sizeof(out->salt)) ||
	    get_b64(mbx, "keyNonce", out->nonce, sizeof(out->nonce)))
		return -1;
	return 0;
}
