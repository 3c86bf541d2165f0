/*
 * manifest: building, sorting, printing, parsing and comparing snapshot
 * manifests.  The text form is the repository's contract with stock tools,
 * so parsing is strict: anything unexpected is corruption.
 */
#include "manifest.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void manifest_init(struct manifest *m)
{
	m->e = NULL;
	m->n = m->cap = 0;
}

static void entry_free(struct manifest_entry *e)
{
	free(e->path);
	free(e->link);
	free(e->uname);
	free(e->gname);
}

void manifest_release(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		entry_free(&m->e[i]);
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

void manifest_drop_gone(struct manifest *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->n; i++) {
		if (m->e[i].gone)
			entry_free(&m->e[i]);
		else
			m->e[n++] = m->e[i];
	}
	m->n = n;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct manifest_entry *)a)->path,
		      ((const struct manifest_entry *)b)->path);
}

/* qsort: a walk lists each path once, so no two keys are equal and the
 * order is the same whatever the sort's stability. */
void manifest_sort(struct manifest *m)
{
	if (m->n > 1)
		qsort(m->e, m->n, sizeof(*m->e), entry_cmp);
}

/* Bytes a path escapes as %XX: controls, space, DEL and '%' (and NUL,
 * which ends it). */
static const bool escaped[256] = {[0 ... 0x20] = true, ['%'] = true, [0x7f] = true};

static bool needs_escape(unsigned char c)
{
	return escaped[c];
}

char *manifest_encode_path_to(char *out, const char *path)
{
	const unsigned char *p = (const unsigned char *)path, *run = p;
	static const char hex[] = "0123456789ABCDEF";

	for (;;) {
		/* most paths need no escape: one pass, then one copy */
		while (!needs_escape(*p)) /* also stops at the NUL */
			p++;
		memcpy(out, run, (size_t)(p - run));
		out += p - run;
		if (!*p)
			return out;
		*out++ = '%';
		*out++ = hex[*p >> 4];
		*out++ = hex[*p & 15];
		run = ++p;
	}
}

void manifest_encode_path_into(struct buf *b, const char *path)
{
	buf_reserve(b, 3 * strlen(path));
	b->len = (size_t)(manifest_encode_path_to(b->data + b->len, path) - b->data);
	b->data[b->len] = '\0';
}

char *manifest_encode_path(const char *path)
{
	struct buf b;

	buf_init(&b);
	manifest_encode_path_into(&b, path);
	return buf_detach(&b, NULL);
}

char *manifest_decode_path(const char *enc)
{
	char *out = xmalloc(strlen(enc) + 1), *q = out;
	const char *p;

	for (p = enc; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '%') {
			if (hex_decode(&c, p + 1, 1) < 0 || c == 0) {
				free(out);
				return NULL;
			}
			p += 2;
		} else if (needs_escape(c)) {
			free(out);
			return NULL;
		}
		*q++ = (char)c;
	}
	*q = '\0';
	return out;
}

/* Written straight into the buffer, one snprintf per line and no
 * allocation per entry: a no-change run formats every entry to compare
 * it with the tip's text. */
int manifest_format(char **out, size_t *len_out, const struct manifest *m)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	buf_adds(&b, MANIFEST_HEADER "\n");
	for (i = 0; i < m->n; i++) {
		const struct manifest_entry *e = &m->e[i];
		/* type, mode, ids and size: at most 1+1+11+1+10+1+10+1+20+1 */
		size_t room = 64 + 2 * SHA256_LEN + 1 + 3 * strlen(e->path) + 1;
		char *p;
		int n;

		buf_reserve(&b, room);
		p = b.data + b.len;
		n = snprintf(p, 64, "%c %04o %u %u %llu ", e->type, (unsigned)e->mode,
			     (unsigned)e->uid, (unsigned)e->gid, (unsigned long long)e->size);
		p += n;
		if (e->type == 'd') {
			*p++ = '-';
		} else {
			hex_encode(p, e->sha, SHA256_LEN);
			p += 2 * SHA256_LEN;
		}
		*p++ = ' ';
		p = manifest_encode_path_to(p, e->path);
		*p++ = '\n';
		b.len = (size_t)(p - b.data);
	}
	b.data[b.len] = '\0';
	*out = buf_detach(&b, len_out);
	return 0;
}

/* True when s is 1 to max characters, all from set. */
static bool all_of(const char *s, const char *set, size_t max)
{
	size_t n = strspn(s, set);

	return n > 0 && n <= max && s[n] == '\0';
}

static bool parse_u64(uint64_t *out, const char *s, uint64_t max)
{
	unsigned long long v;
	char *end;

	if (!all_of(s, "0123456789", 20))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * One entry line: exactly seven fields separated by single spaces (the
 * path holds no raw space: it is encoded), each checked strictly, so a
 * damaged line is never read as some other valid entry.
 */
static int parse_line(struct manifest *m, char *line, size_t lineno)
{
	char *f[7], *p = line, *sp;
	uint64_t mode, uid, gid, size;
	struct manifest_entry *e;
	size_t n = 0, i;
	char *dec;

	for (;;) {
		if (n == 7)
			return err_set(MSGW_ECORRUPT, "manifest line %zu: malformed entry", lineno);
		f[n++] = p;
		sp = strchr(p, ' ');
		if (!sp)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	for (i = 0; n == 7 && i < n; i++)
		if (!*f[i])
			n = 0; /* an empty field: two spaces in a row, or a trailing one */
	if (n != 7)
		return err_set(MSGW_ECORRUPT, "manifest line %zu: malformed entry", lineno);
	if (strlen(f[0]) != 1 || !strchr("fdl", f[0][0]))
		return err_set(MSGW_ECORRUPT, "manifest line %zu: unknown type '%s'", lineno, f[0]);
	if (strlen(f[1]) != 4 || !all_of(f[1], "01234567", 4))
		return err_set(MSGW_ECORRUPT, "manifest line %zu: bad mode '%s'", lineno, f[1]);
	mode = strtoul(f[1], NULL, 8);
	if (!parse_u64(&uid, f[2], UINT32_MAX) || !parse_u64(&gid, f[3], UINT32_MAX))
		return err_set(MSGW_ECORRUPT, "manifest line %zu: bad owner", lineno);
	if (!parse_u64(&size, f[4], UINT64_MAX))
		return err_set(MSGW_ECORRUPT, "manifest line %zu: bad size '%s'", lineno, f[4]);
	dec = manifest_decode_path(f[6]);
	if (!dec)
		return err_set(MSGW_ECORRUPT, "manifest line %zu: bad path encoding", lineno);
	e = manifest_add(m, f[0][0], dec);
	free(dec);
	e->mode = (uint32_t)mode;
	e->uid = (uint32_t)uid;
	e->gid = (uint32_t)gid;
	e->size = size;
	if (e->type == 'd'
		? strcmp(f[5], "-") != 0
		: strlen(f[5]) != 2 * SHA256_LEN || hex_decode(e->sha, f[5], SHA256_LEN) < 0)
		return err_set(MSGW_ECORRUPT, "manifest line %zu: bad sha256", lineno);
	if (m->n > 1 && strcmp(m->e[m->n - 2].path, e->path) >= 0)
		return err_set(MSGW_ECORRUPT, "manifest line %zu: '%s' out of order", lineno,
			       e->path);
	return 0;
}

/*
 * Lines are split by hand rather than with strtok_r, which would skip blank
 * lines silently and make the line numbers in messages wrong.
 */
int manifest_parse(struct manifest *m, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t lineno = 0;
	int rc = 0;

	manifest_init(m);
	while (!rc && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char *line;

		lineno++;
		if (!nl) {
			rc = err_set(MSGW_ECORRUPT,
				     "manifest line %zu: truncated (no final newline)", lineno);
			break;
		}
		line = xstrndup(p, (size_t)(nl - p));
		if (strlen(line) != (size_t)(nl - p))
			rc = err_set(MSGW_ECORRUPT, "manifest line %zu: NUL byte", lineno);
		else if (lineno == 1 && strcmp(line, MANIFEST_HEADER) != 0)
			rc = err_set(MSGW_ECORRUPT, "manifest line 1: expected '%s'",
				     MANIFEST_HEADER);
		else if (lineno > 1)
			rc = parse_line(m, line, lineno);
		free(line);
		p = nl + 1;
	}
	if (!rc && lineno == 0)
		rc = err_set(MSGW_ECORRUPT, "manifest line 1: truncated (empty)");
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
