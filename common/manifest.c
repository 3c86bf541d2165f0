/*
 * manifest: building, sorting, printing, parsing and comparing snapshot
 * manifests.  The text form is the repository's contract with stock tools,
 * so parsing is strict: anything unexpected is corruption.
 */
#include "manifest.h"
#include "err.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void manifest_init(struct manifest *m)
{
	m->e = NULL;
	m->n = m->cap = 0;
}

void manifest_release(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->e[i].path);
		free(m->e[i].link);
		free(m->e[i].uname);
		free(m->e[i].gname);
	}
	free(m->e);
	manifest_init(m);
}

struct manifest_entry *manifest_add(struct manifest *m, char type, const char *path)
{
	struct manifest_entry *e;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
	}
	e = &m->e[m->n++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->path = xstrdup(path);
	return e;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct manifest_entry *)a)->path,
		      ((const struct manifest_entry *)b)->path);
}

void manifest_sort(struct manifest *m)
{
	if (m->n > 1)
		qsort(m->e, m->n, sizeof(*m->e), entry_cmp);
}

static bool needs_escape(unsigned char c)
{
	return c < 0x21 || c == 0x7f || c == '%';
}

char *manifest_encode_path(const char *path)
{
	struct buf b;
	const unsigned char *p;

	buf_init(&b);
	for (p = (const unsigned char *)path; *p; p++) {
		if (needs_escape(*p))
			buf_addf(&b, "%%%02X", *p);
		else
			buf_add(&b, p, 1);
	}
	return buf_detach(&b, NULL);
}

char *manifest_decode_path(const char *enc)
{
	struct buf b;
	const char *p;

	buf_init(&b);
	for (p = enc; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '%') {
			if (hex_decode(&c, p + 1, 1) < 0 || c == 0) {
				buf_release(&b);
				return NULL;
			}
			p += 2;
		} else if (needs_escape(c)) {
			buf_release(&b);
			return NULL;
		}
		buf_add(&b, &c, 1);
	}
	return buf_detach(&b, NULL);
}

int manifest_format(char **out, size_t *len_out, const struct manifest *m)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	buf_adds(&b, MANIFEST_HEADER "\n");
	for (i = 0; i < m->n; i++) {
		const struct manifest_entry *e = &m->e[i];
		char hex[2 * SHA256_LEN + 1];
		char *enc = manifest_encode_path(e->path);

		if (e->type == 'd')
			hex[0] = '-', hex[1] = '\0';
		else
			hex_encode(hex, e->sha, SHA256_LEN);
		buf_addf(&b, "%c %04o %u %u %llu %s %s\n", e->type, (unsigned)e->mode, (unsigned)e->uid,
			 (unsigned)e->gid, (unsigned long long)e->size, hex, enc);
		free(enc);
	}
	*out = buf_detach(&b, len_out);
	return 0;
}

static int parse_line(struct manifest *m, char *line, size_t lineno)
{
	char type, hex[80], path[8192];
	unsigned mode, uid, gid;
	unsigned long long size;
	struct manifest_entry *e;
	char *dec;
	int used = 0;

	if (sscanf(line, "%c %o %u %u %llu %79s %8191s%n", &type, &mode, &uid, &gid, &size, hex,
		   path, &used) != 7 ||
	    line[used] != '\0')
		return err_set(MSGW_ECORRUPT, "manifest line %zu: malformed entry", lineno);
	if (type != 'f' && type != 'd' && type != 'l')
		return err_set(MSGW_ECORRUPT, "manifest line %zu: unknown type '%c'", lineno, type);
	dec = manifest_decode_path(path);
	if (!dec)
		return err_set(MSGW_ECORRUPT, "manifest line %zu: bad path encoding", lineno);
	e = manifest_add(m, type, dec);
	free(dec);
	e->mode = mode;
	e->uid = uid;
	e->gid = gid;
	e->size = size;
	if (type == 'd' ? strcmp(hex, "-") != 0
			: strlen(hex) != 2 * SHA256_LEN || hex_decode(e->sha, hex, SHA256_LEN) < 0)
		return err_set(MSGW_ECORRUPT, "manifest line %zu: bad sha256", lineno);
	if (m->n > 1 && strcmp(m->e[m->n - 2].path, e->path) >= 0)
		return err_set(MSGW_ECORRUPT, "manifest line %zu: '%s' out of order", lineno,
			       e->path);
	return 0;
}

int manifest_parse(struct manifest *m, const char *text, size_t len)
{
	char *copy = xstrndup(text, len), *save = NULL, *line;
	size_t lineno = 1;
	int rc = 0;

	manifest_init(m);
	if (len == 0 || text[len - 1] != '\n') {
		rc = err_set(MSGW_ECORRUPT, "manifest: truncated (no final newline)");
		goto cleanup;
	}
	line = strtok_r(copy, "\n", &save);
	if (!line || strcmp(line, MANIFEST_HEADER) != 0) {
		rc = err_set(MSGW_ECORRUPT, "manifest line 1: expected '%s'", MANIFEST_HEADER);
		goto cleanup;
	}
	while (!rc && (line = strtok_r(NULL, "\n", &save)))
		rc = parse_line(m, line, ++lineno);
cleanup:
	free(copy);
	if (rc)
		manifest_release(m);
	return rc;
}

const struct manifest_entry *manifest_find(const struct manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->e[mid].path, path);

		if (c == 0)
			return &m->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool manifest_entry_equal(const struct manifest_entry *a, const struct manifest_entry *b)
{
	return a->type == b->type && a->mode == b->mode && a->uid == b->uid && a->gid == b->gid &&
	       a->size == b->size && memcmp(a->sha, b->sha, SHA256_LEN) == 0 &&
	       strcmp(a->path, b->path) == 0;
}

static void add_change(struct manifest_diff *d, size_t *cap, char kind,
		       const struct manifest_entry *o, const struct manifest_entry *n)
{
	if (d->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		d->c = xrealloc(d->c, *cap * sizeof(*d->c));
	}
	d->c[d->n].kind = kind;
	d->c[d->n].old_e = o;
	d->c[d->n].new_e = n;
	d->n++;
	if (kind == 'A')
		d->added++;
	else if (kind == 'M')
		d->modified++;
	else
		d->removed++;
}

void manifest_diff(struct manifest_diff *out, const struct manifest *a, const struct manifest *b)
{
	static const struct manifest empty;
	size_t i = 0, j = 0, cap = 0;

	memset(out, 0, sizeof(*out));
	if (!a)
		a = &empty;
	while (i < a->n || j < b->n) {
		int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->e[i].path, b->e[j].path);

		if (c < 0) {
			add_change(out, &cap, 'D', &a->e[i++], NULL);
		} else if (c > 0) {
			add_change(out, &cap, 'A', NULL, &b->e[j++]);
		} else {
			if (!manifest_entry_equal(&a->e[i], &b->e[j]))
				add_change(out, &cap, 'M', &a->e[i], &b->e[j]);
			i++, j++;
		}
	}
}

void manifest_diff_release(struct manifest_diff *d)
{
	free(d->c);
	memset(d, 0, sizeof(*d));
}

void manifest_diff_summary(const struct manifest_diff *d, char *buf, size_t len)
{
	snprintf(buf, len, "%zu modified, %zu added, %zu removed", d->modified, d->added,
		 d->removed);
}
