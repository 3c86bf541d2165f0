/*
 * reencrypt: move a plain repository's history into an encrypted one.
 * Every branch of the source is copied snapshot by snapshot, oldest first,
 * each verified completely first (a damaged snapshot is never sealed), its
 * meta, manifest and archive written unchanged in content but sealed under
 * the destination's key, with the same time and summary line; tags move
 * along.  The source is only read; the destination must hold none of the
 * source's branches yet.  What it leaves out: the reverse (decrypting into
 * a plain repository) and key rotation inside one repository (reencrypt
 * into a new encrypted repository instead).
 */
#ifndef MSGW_REENCRYPT_H
#define MSGW_REENCRYPT_H

#include "repo.h"

#include <stddef.h>

struct reencrypt_result {
	size_t branches;
	size_t snapshots;
	size_t tags;
};

/*
 * Copy every branch of src into dst, which must have a key attached
 * (repo_use_key).  MSGW_ECONFIG when dst has no key, or already has a
 * branch of that name (nothing written then); a source snapshot that
 * fails verification stops the copy with its message (the branches
 * already copied stay, the one being copied does not exist until its
 * tip is written... its commits written so far stay unreferenced only if
 * the first one failed).  Call under dst's lock.
 */
int reencrypt_repo(struct reencrypt_result *out, struct repo *dst, struct repo *src);

#endif
