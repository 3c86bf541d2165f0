/*
 * seal: the cryptography of encrypted repositories (libsodium; the only
 * module that includes sodium.h).  Key files, the key id, sealing and
 * unsealing of one object with crypto_secretstream_xchacha20poly1305, and
 * keyed digests (BLAKE2b).  It knows nothing of git or snapshots: the
 * repository module decides what is sealed (README, "Repository format").
 *
 * Key file: mode 0600, two lines, "msgw-backup key 1" and the 256-bit key
 * in 64 hex digits.  From that key crypto_kdf derives three subkeys
 * (context "msgwseal"): 1 the key id (its first 8 bytes in hex, 16
 * characters: names the key without revealing it), 2 the secretstream
 * key, 3 the BLAKE2b digest key.
 *
 * A sealed object: the line "msgw-sealed 1 KEYID\n" (31 bytes), the
 * 24-byte secretstream header, then chunks of SEAL_CHUNK plaintext bytes
 * each followed by its 17-byte tag overhead; the last chunk holds fewer
 * than SEAL_CHUNK bytes (possibly none) and carries the FINAL tag.  Every
 * chunk has the caller's associated data (ad, adlen bytes: the repository
 * uses the file's name, a NUL and the snapshot's meta, so a sealed
 * manifest cannot pass for an archive nor move to another snapshot).
 * Truncation at any point, a flipped byte, data after the final chunk
 * and a different key are each detected.
 *
 * What this leaves out: passphrases (the key file is the secret), key
 * rotation inside one repository (reencrypt into a new one instead).
 */
#ifndef MSGW_SEAL_H
#define MSGW_SEAL_H

#include <stdbool.h>
#include <stddef.h>

/* A key id in hex with its NUL. */
#define SEAL_ID_LEN 17
/* Plaintext bytes per chunk of a sealed object. */
#define SEAL_CHUNK 65536
/* Bytes of a sealed object's first line ("msgw-sealed 1 KEYID\n"). */
#define SEAL_LINE_LEN 31

#include <sys/types.h>

/* A source of bytes: how many were put in buf (at most len), 0 at the end
 * (then known sound), or a negative code with the message set. */
typedef ssize_t (*seal_read_fn)(void *ctx, void *buf, size_t len);

struct seal_key;

/*
 * Create a key file at path with a fresh random key (O_EXCL, mode 0600,
 * fsync'd) and return the key.  MSGW_ECONFIG when the file exists (a key
 * is never overwritten), MSGW_ERR when it cannot be written.
 */
int seal_key_create(struct seal_key **out, const char *path);

/*
 * Load the key file at path.  MSGW_ECONFIG when it is missing, readable
 * by group or others, or not a key file (the message names path).
 */
int seal_key_load(struct seal_key **out, const char *path);

/* The key's id (16 hex digits) and the file it came from (borrowed). */
const char *seal_key_id(const struct seal_key *k);
const char *seal_key_path(const struct seal_key *k);

/* Wipe and free; NULL is fine. */
void seal_key_free(struct seal_key *k);

/* Whether data begins like a sealed object (of any key). */
bool seal_is_sealed(const void *data, size_t len);

/* The key id a sealed object names in its first line: 0, or MSGW_ECORRUPT. */
int seal_object_key_id(char out[SEAL_ID_LEN], const void *data, size_t len);

/* Seal len bytes of data with associated data ad into a malloc'd *out. */
void seal_buffer(char **out, size_t *len_out, const struct seal_key *k, const void *ad,
		 size_t adlen, const void *data, size_t len);

/*
 * Seal in_len bytes read from offset 0 of in_fd with associated data ad,
 * written to out_fd at its current offset; *len_out is the sealed length.
 * MSGW_ERR on a read or write failure (errno text in the message).
 */
int seal_fd(int out_fd, size_t *len_out, const struct seal_key *k, const void *ad, size_t adlen,
	    int in_fd, size_t in_len);

/*
 * Unseal the sealed object data (len bytes) with associated data ad (as
 * it was sealed with) into a malloc'd
 * NUL-terminated *out of *len_out bytes.  Nothing is handed out unless
 * every chunk authenticated and the final tag came at the very end.
 * Errors (out NULL): MSGW_ECONFIG when k is NULL ("sealed with key K and
 * no key file is configured") or is another key ("sealed with key K, not
 * with key J of 'PATH'"); MSGW_ECORRUPT when the object is damaged or
 * truncated (the message says which chunk).
 */
int seal_open(char **out, size_t *len_out, const struct seal_key *k, const void *ad, size_t adlen,
	      const void *data, size_t len);

/*
 * seal_open, streaming: the sealed object whose first SEAL_LINE_LEN bytes
 * (line) the caller has read already, the rest read through rd, unsealed
 * chunk by chunk into out_fd (at its offset), *len_out plaintext bytes;
 * memory stays one chunk whatever the size.  Success only when every
 * chunk authenticated, the final tag came last and rd then said 0: until
 * then out_fd holds plaintext that must not be used (the caller keeps it
 * to itself, an unlinked scratch file).  Errors as seal_open's, rd's own,
 * or MSGW_ERR when out_fd cannot be written.
 */
int seal_open_stream(int out_fd, size_t *len_out, const struct seal_key *k, const void *ad,
		     size_t adlen, const char line[SEAL_LINE_LEN], seal_read_fn rd, void *ctx);

/* A keyed BLAKE2b-256 digest of data in hex (65 chars with NUL): never a
 * plain hash of content where anyone without the key could test guesses. */
void seal_digest(char out[65], const struct seal_key *k, const void *data, size_t len);

#endif
