/*
 * statcache: an array of entries loaded from a small text file
 * ("msgw-statcache 1" then "ino size mtime mtime_ns ctime ctime_ns sha256
 * path" lines, path percent-encoded like the manifest).  With a key the
 * whole text is one sealed object (seal.h) whose associated data is
 * STATCACHE_HEADER, so no plain sha256 of content is ever on disk.
 */
#include "statcache.h"
#include "err.h"
#include "seal.h"
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
	/* e[0..nsorted) is sorted by path; entries stored since come after it
	 * and are usually sorted too (a walk stores in path order), so both
	 * parts are searched by bisection and only an out-of-order store
	 * costs a sort: never one sort per stored entry */
	struct sc_entry *e;
	size_t n, cap, nsorted;
	bool tail_sorted;
	bool loaded; /* read from a well-formed file */
	bool dirty;  /* an entry was added or changed since */
	int64_t now;
	const struct seal_key *key; /* borrowed; NULL: a plain file */
};

static int sc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sc_entry *)a)->path, ((const struct sc_entry *)b)->path);
}

/* A new entry at the end, owning path. */
static struct sc_entry *sc_add(struct statcache *c, char *path)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->e = xrealloc(c->e, c->cap * sizeof(*c->e));
	}
	if (c->n > c->nsorted && strcmp(c->e[c->n - 1].path, path) >= 0)
		c->tail_sorted = false;
	memset(&c->e[c->n], 0, sizeof(c->e[0]));
	c->e[c->n].path = path;
	return &c->e[c->n++];
}

/* One space-terminated decimal field (a '-' only where sign allows it). */
static bool parse_num(char **p, bool sign, uint64_t *u, int64_t *s)
{
	char *q = *p;
	bool neg = false;
	uint64_t v = 0;

	if (sign && *q == '-')
		neg = true, q++;
	if (*q < '0' || *q > '9')
		return false;
	while (*q >= '0' && *q <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*q++ - '0');
	}
	if (*q != ' ')
		return false;
	if (sign) {
		if (v > (uint64_t)INT64_MAX)
			return false;
		*s = neg ? -(int64_t)v : (int64_t)v;
	} else {
		*u = v;
	}
	*p = q + 1;
	return true;
}

/* "ino size mtime mtime_ns ctime ctime_ns sha256 path", by hand: sscanf
 * dominated the cost of an unchanged snapshot of a large gateway. */
static bool parse_line(struct statcache *c, char *line)
{
	struct sc_entry tmp = {0}, *e;
	unsigned char sha[SHA256_LEN];
	char *p = line, *end;
	char *dec;

	if (!parse_num(&p, false, &tmp.ino, NULL) || !parse_num(&p, false, &tmp.size, NULL) ||
	    !parse_num(&p, true, NULL, &tmp.mtime) || !parse_num(&p, true, NULL, &tmp.mtime_nsec) ||
	    !parse_num(&p, true, NULL, &tmp.ctime) || !parse_num(&p, true, NULL, &tmp.ctime_nsec))
		return false;
	if (strlen(p) < 2 * SHA256_LEN + 2 || p[2 * SHA256_LEN] != ' ' ||
	    hex_decode(sha, p, SHA256_LEN) != 0)
		return false;
	p += 2 * SHA256_LEN + 1;
	end = p + strcspn(p, " \t\n");
	if (end == p || end - p >= 8192 || (*end && *end != '\n') || (*end && end[1]))
		return false;
	*end = '\0';
	dec = manifest_decode_path(p);
	if (!dec)
		return false;
	e = sc_add(c, dec);
	tmp.path = dec;
	*e = tmp;
	memcpy(e->sha, sha, SHA256_LEN);
	return true;
}

/* Every line of text (NUL-terminated, modified in place); false when one
 * is malformed. */
static bool parse_all(struct statcache *c, char *text)
{
	char *line = text, *nl;

	if (strncmp(line, STATCACHE_HEADER "\n", sizeof(STATCACHE_HEADER)) != 0)
		return false;
	line += sizeof(STATCACHE_HEADER);
	for (; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			return false;
		*nl = '\0';
		if (!parse_line(c, line))
			return false;
	}
	return true;
}

static bool sorted(const struct statcache *c)
{
	size_t i;

	for (i = 1; i < c->n; i++)
		if (strcmp(c->e[i - 1].path, c->e[i].path) >= 0)
			return false;
	return true;
}

/* The plain text of the file: unsealed with c->key when there is one.  A
 * file that is not sealed with this very key (another key, damaged,
 * truncated, or written in clear for a plain repository), or a sealed one
 * without a key, gives NULL: discarded, every file is read again. */
static char *load_text(struct statcache *c)
{
	char *raw = NULL, *plain = NULL;
	size_t len = 0, plain_len = 0;

	/* one read: the file of a large gateway is a few hundred KB */
	if (read_whole_file(&raw, &len, c->path) != 0)
		return NULL;
	if (!c->key) {
		if (!seal_is_sealed(raw, len) && strlen(raw) == len)
			return raw;
		free(raw);
		return NULL;
	}
	if (!seal_is_sealed(raw, len) ||
	    seal_open(&plain, &plain_len, c->key, STATCACHE_HEADER, strlen(STATCACHE_HEADER), raw,
		      len) != 0 ||
	    strlen(plain) != plain_len) {
		err_clear();
		free(plain);
		plain = NULL;
	}
	free(raw);
	return plain;
}

int statcache_open_sealed(struct statcache **out, const char *path, const struct seal_key *key)
{
	struct statcache *c = xcalloc(1, sizeof(*c));
	char *text;

	c->path = xstrdup(path);
	c->now = (int64_t)time(NULL);
	c->key = key;
	text = load_text(c);
	if (text) {
		bool ok = parse_all(c, text);

		if (!ok) { /* damaged: start afresh rather than trust it */
			while (c->n)
				free(c->e[--c->n].path);
		}
		c->loaded = ok;
		free(text);
	}
	/* saved in path order: sorted already, unless edited by hand; c->e
	 * is NULL when empty, and qsort must not see it */
	if (c->n > 1 && !sorted(c))
		qsort(c->e, c->n, sizeof(*c->e), sc_cmp);
	c->nsorted = c->n;
	c->tail_sorted = true;
	*out = c;
	return 0;
}

int statcache_open(struct statcache **out, const char *path)
{
	return statcache_open_sealed(out, path, NULL);
}

void statcache_set_clock(struct statcache *c, int64_t now)
{
	c->now = now;
}

static struct sc_entry *find(struct statcache *c, const char *path)
{
	struct sc_entry key = {.path = (char *)path};
	struct sc_entry *s;

	if (c->n == 0)
		return NULL; /* c->e may be NULL: keep it from bsearch */
	if (!c->tail_sorted) {
		qsort(c->e, c->n, sizeof(*c->e), sc_cmp);
		c->nsorted = c->n;
		c->tail_sorted = true;
	}
	s = bsearch(&key, c->e, c->nsorted, sizeof(*c->e), sc_cmp);
	if (!s && c->n > c->nsorted)
		s = bsearch(&key, c->e + c->nsorted, c->n - c->nsorted, sizeof(*c->e), sc_cmp);
	return s;
}

bool statcache_lookup(struct statcache *c, struct manifest_entry *e)
{
	struct sc_entry *s = find(c, e->path);

	if (!s || s->ino != e->ino || s->size != e->size || s->mtime != e->mtime ||
	    s->mtime_nsec != e->mtime_nsec || s->ctime != e->ctime ||
	    s->ctime_nsec != e->ctime_nsec)
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
		s = sc_add(c, xstrdup(e->path));
		c->dirty = true;
	} else if (s->ino != e->ino || s->size != e->size || s->mtime != e->mtime ||
		   s->mtime_nsec != e->mtime_nsec || s->ctime != e->ctime ||
		   s->ctime_nsec != e->ctime_nsec || memcmp(s->sha, e->sha, SHA256_LEN) != 0) {
		c->dirty = true;
	}
	s->ino = e->ino, s->size = e->size;
	s->mtime = e->mtime, s->mtime_nsec = e->mtime_nsec;
	s->ctime = e->ctime, s->ctime_nsec = e->ctime_nsec;
	memcpy(s->sha, e->sha, SHA256_LEN);
	s->used = true;
}

/* True when saving would write back exactly the file that was loaded. */
static bool unchanged_since_open(const struct statcache *c)
{
	size_t i;

	if (!c->loaded || c->dirty)
		return false;
	for (i = 0; i < c->n; i++)
		if (!c->e[i].used)
			return false;
	return true;
}

/* The file's text (sealed with c->key when there is one) into b. */
static void format_text(struct buf *b, const struct statcache *c)
{
	size_t i;

	buf_adds(b, STATCACHE_HEADER "\n");
	for (i = 0; i < c->n; i++) {
		const struct sc_entry *s = &c->e[i];
		char hex[2 * SHA256_LEN + 1], *enc;

		if (!s->used)
			continue;
		hex_encode(hex, s->sha, SHA256_LEN);
		enc = manifest_encode_path(s->path);
		buf_addf(b, "%llu %llu %lld %lld %lld %lld %s %s\n", (unsigned long long)s->ino,
			 (unsigned long long)s->size, (long long)s->mtime, (long long)s->mtime_nsec,
			 (long long)s->ctime, (long long)s->ctime_nsec, hex, enc);
		free(enc);
	}
	if (c->key) {
		char *sealed = NULL;
		size_t len = 0;

		seal_buffer(&sealed, &len, c->key, STATCACHE_HEADER, strlen(STATCACHE_HEADER),
			    b->data, b->len);
		buf_release(b);
		buf_init(b);
		buf_add(b, sealed, len);
		free(sealed);
	}
}

int statcache_save(struct statcache *c)
{
	char *tmp;
	struct buf b;
	int fd, rc = 0;

	/* an unchanged gateway's scheduled run writes (and syncs) nothing */
	if (unchanged_since_open(c))
		return 0;
	tmp = xasprintf("%s.tmp", c->path);
	buf_init(&b);
	format_text(&b, c);
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
