/*
 * statcache: a sorted array of entries loaded from a small text file
 * ("msgw-statcache 1" then "ino size mtime mtime_ns ctime ctime_ns sha256
 * path" lines, path percent-encoded like the manifest).
 */
#include "statcache.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATCACHE_HEADER "msgw-statcache 1"

struct sc_entry {
	char *path;
	uint64_t ino, size;
	int64_t mtime, mtime_nsec, ctime, ctime_nsec;
	unsigned char sha[SHA256_LEN];
	bool used;
};

struct statcache {
	char *path;
	struct sc_entry *e;
	size_t n, cap;
	bool sorted;
	int64_t now;
};

static int sc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sc_entry *)a)->path, ((const struct sc_entry *)b)->path);
}

static struct sc_entry *sc_add(struct statcache *c)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->e = xrealloc(c->e, c->cap * sizeof(*c->e));
	}
	memset(&c->e[c->n], 0, sizeof(c->e[0]));
	c->sorted = false;
	return &c->e[c->n++];
}

static bool parse_line(struct statcache *c, char *line)
{
	unsigned long long ino, size;
	long long mt, mtn, ct, ctn;
	char hex[80], path[8192];
	struct sc_entry *e;
	char *dec;

	if (sscanf(line, "%llu %llu %lld %lld %lld %lld %79s %8191s", &ino, &size, &mt, &mtn, &ct,
		   &ctn, hex, path) != 8 ||
	    strlen(hex) != 2 * SHA256_LEN)
		return false;
	dec = manifest_decode_path(path);
	if (!dec)
		return false;
	e = sc_add(c);
	e->path = dec;
	e->ino = ino, e->size = size;
	e->mtime = mt, e->mtime_nsec = mtn, e->ctime = ct, e->ctime_nsec = ctn;
	return hex_decode(e->sha, hex, SHA256_LEN) == 0;
}

int statcache_open(struct statcache **out, const char *path)
{
	struct statcache *c = xcalloc(1, sizeof(*c));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	c->path = xstrdup(path);
	c->now = (int64_t)time(NULL);
	f = fopen(path, "re");
	if (f) {
		bool ok = (len = getline(&line, &cap, f)) > 0 &&
			  strncmp(line, STATCACHE_HEADER "\n", len) == 0;

		while (ok && (len = getline(&line, &cap, f)) > 0)
			ok = parse_line(c, line);
		if (!ok) { /* damaged: start afresh rather than trust it */
			while (c->n)
				free(c->e[--c->n].path);
		}
		fclose(f);
		free(line);
	}
	qsort(c->e, c->n, sizeof(*c->e), sc_cmp);
	c->sorted = true;
	*out = c;
	return 0;
}

static struct sc_entry *find(struct statcache *c, const char *path)
{
	struct sc_entry key = {.path = (char *)path};

	if (!c->sorted) {
		qsort(c->e, c->n, sizeof(*c->e), sc_cmp);
		c->sorted = true;
	}
	return bsearch(&key, c->e, c->n, sizeof(*c->e), sc_cmp);
}

bool statcache_lookup(struct statcache *c, struct manifest_entry *e)
{
	struct sc_entry *s = find(c, e->path);

	if (!s || s->ino != e->ino || s->size != e->size || s->mtime != e->mtime ||
	    s->mtime_nsec != e->mtime_nsec || s->ctime != e->ctime || s->ctime_nsec != e->ctime_nsec)
		return false;
	memcpy(e->sha, s->sha, SHA256_LEN);
	s->used = true;
	return true;
}

void statcache_store(struct statcache *c, const struct manifest_entry *e)
{
	struct sc_entry *s;

	if (e->mtime > c->now - 2 || e->ctime > c->now - 2)
		return; /* too fresh to trust: a same-tick rewrite could hide */
	s = find(c, e->path);
	if (!s) {
		s = sc_add(c);
		s->path = xstrdup(e->path);
	}
	s->ino = e->ino, s->size = e->size;
	s->mtime = e->mtime, s->mtime_nsec = e->mtime_nsec;
	s->ctime = e->ctime, s->ctime_nsec = e->ctime_nsec;
	memcpy(s->sha, e->sha, SHA256_LEN);
	s->used = true;
}

int statcache_save(struct statcache *c)
{
	char *tmp = xasprintf("%s.tmp", c->path);
	struct buf b;
	size_t i;
	int fd, rc = 0;

	buf_init(&b);
	buf_adds(&b, STATCACHE_HEADER "\n");
	for (i = 0; i < c->n; i++) {
		const struct sc_entry *s = &c->e[i];
		char hex[2 * SHA256_LEN + 1], *enc;

		if (!s->used)
			continue;
		hex_encode(hex, s->sha, SHA256_LEN);
		enc = manifest_encode_path(s->path);
		buf_addf(&b, "%llu %llu %lld %lld %lld %lld %s %s\n", (unsigned long long)s->ino,
			 (unsigned long long)s->size, (long long)s->mtime, (long long)s->mtime_nsec,
			 (long long)s->ctime, (long long)s->ctime_nsec, hex, enc);
		free(enc);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write '%s'", tmp);
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write '%s'", tmp);
	if (!rc && rename(tmp, c->path) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot rename '%s'", tmp);
	if (rc)
		unlink(tmp);
	buf_release(&b);
	free(tmp);
	return rc;
}

void statcache_free(struct statcache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		free(c->e[i].path);
	free(c->e);
	free(c->path);
	free(c);
}
