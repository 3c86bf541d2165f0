/*
 * walk_hash: the hashing half of the walk (see walk.h).
 */
#include "err.h"
#include "log.h"
#include "progress.h"
#include "sha256.h"
#include "statcache.h"
#include "util.h"
#include "walk.h"

#include <stdlib.h>

#include <string.h>

static bool stat_same(const struct fsys_stat *a, const struct fsys_stat *b)
{
	return a->size == b->size && a->mtime == b->mtime && a->mtime_nsec == b->mtime_nsec &&
	       a->ctime == b->ctime && a->ctime_nsec == b->ctime_nsec && a->type == b->type;
}

/* Hash path, and stat it once read (before it is closed: a backend that
 * read it ahead answers from what it read). */
static int hash_once(struct fsys *fs, const char *path, unsigned char sha[SHA256_LEN],
		     uint64_t *size_out, struct fsys_stat *after)
{
	char chunk[1 << 16];
	struct fsys_file *f = NULL;
	struct sha256 s;
	uint64_t total = 0;
	ssize_t n;
	int rc;

	rc = fsys_open_read(fs, path, &f);
	if (rc)
		return rc;
	sha256_init(&s);
	while ((n = fsys_read(f, chunk, sizeof(chunk))) > 0) {
		sha256_update(&s, chunk, (size_t)n);
		total += (uint64_t)n;
	}
	rc = n < 0 ? (int)n : fsys_file_stat(f, path, after);
	fsys_close(f);
	if (rc)
		return rc;
	sha256_final(&s, sha);
	*size_out = total;
	return 0;
}

int walk_hash_entry(struct manifest_entry *e, struct fsys *fs)
{
	struct fsys_stat before, after;
	uint64_t size = 0;
	int attempt, rc;

	if (e->type == 'l') {
		sha256_buf(e->sha, e->link, strlen(e->link));
		return 0;
	}
	if (e->type != 'f')
		return 0;
	for (attempt = 0; attempt < 3; attempt++) {
		rc = fsys_stat(fs, e->path, &before);
		if (!rc && before.type != FSYS_FILE)
			return err_set(MSGW_ECHANGING, "'%s' changed type while it was read",
				       e->path);
		if (!rc)
			rc = hash_once(fs, e->path, e->sha, &size, &after);
		if (rc)
			return rc;
		if (stat_same(&before, &after) && size == after.size) {
			e->size = size;
			e->mode = after.mode;
			e->mtime = after.mtime;
			e->mtime_nsec = after.mtime_nsec;
			e->ctime = after.ctime;
			e->ctime_nsec = after.ctime_nsec;
			e->ino = after.ino;
			return 0;
		}
	}
	return err_set(MSGW_ECHANGING, "'%s' kept changing while it was read", e->path);
}

bool walk_vanished(struct fsys *fs, struct manifest_entry *e, int rc)
{
	if (rc != MSGW_ENOTFOUND)
		return false;
	log_warn("%s: '%s' was removed before it was read; left out of the snapshot", fs->location,
		 e->path);
	err_clear();
	e->gone = true;
	return true;
}

/*
 * Look every file up in the cache (hit[i]) and tell the backend which
 * files will be read, in order: over SFTP they are then fetched many at a
 * time.
 */
static int lookup_all(struct manifest *m, struct fsys *fs, struct statcache *cache, bool *hit)
{
	const char **paths = xcalloc(m->n ? m->n : 1, sizeof(*paths));
	uint64_t *sizes = xcalloc(m->n ? m->n : 1, sizeof(*sizes));
	size_t i, k = 0;
	int rc;

	for (i = 0; i < m->n; i++) {
		struct manifest_entry *e = &m->e[i];

		if (e->type != 'f')
			continue;
		hit[i] = cache && statcache_lookup(cache, e);
		if (!hit[i]) {
			paths[k] = e->path;
			sizes[k++] = e->size;
		}
	}
	rc = fsys_prefetch(fs, paths, sizes, k);
	free(paths);
	free(sizes);
	return rc;
}

int walk_hash(struct manifest *m, struct fsys *fs, struct statcache *cache)
{
	bool *hit = xcalloc(m->n ? m->n : 1, sizeof(*hit));
	size_t i;
	int rc;

	rc = lookup_all(m, fs, cache, hit);
	progress_begin("hashing", m->n);
	for (i = 0; !rc && i < m->n; i++) {
		struct manifest_entry *e = &m->e[i];

		progress_update(i + 1);
		if (hit[i])
			continue;
		rc = walk_hash_entry(e, fs);
		if (walk_vanished(fs, e, rc))
			rc = 0;
		else if (!rc && e->type == 'f' && cache)
			statcache_store(cache, e);
	}
	progress_end();
	fsys_prefetch(fs, NULL, NULL, 0);
	free(hit);
	manifest_drop_gone(m);
	return rc;
}
