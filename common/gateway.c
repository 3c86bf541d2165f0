/*
 * gateway: everything the safety analysis knows about MailStore Gateway,
 * with rules that assume as little as possible about its undocumented
 * on-disk format.
 *
 * Does have:
 *   - the store inventory: every mailbox store under a location (a
 *     directory named "mbx-" + 32 hex digits at any depth, or one matching
 *     a mailbox-store pattern, exactly as walk decides), with every regular
 *     file below it counted as a message; a store found by pattern only is
 *     named by its path and gets no mailbox findings (the records name
 *     mailboxes by mbx- id, never such a folder).  Stores are listed, never opened,
 *     and never descended into in search of further stores; everything
 *     else, excluded folders included, is searched for stores;
 *   - mailbox records from configuration files (JSON by structure, any
 *     other text by presence of the id; see "Records" below);
 *   - the findings mailbox-removed, key-changed, proxy-mode and
 *     version-mismatch, with one sentence on what would happen and one on
 *     what to do instead.
 * Does not have: target-diverged (the restore plan's, it needs the
 * repository), any output, any knowledge of the key format: a fingerprint
 * only says "same" or "different".
 *
 * Mailbox ids are compared case-insensitively: the product runs on Windows,
 * where "mbx-ABC..." and "mbx-abc..." name the same store folder.
 */
#include "gateway.h"
#include "err.h"
#include "util.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ID_LEN 36 /* "mbx-" and 32 hex digits */

const char *const gateway_finding_codes[] = {
    "mailbox-removed", "key-changed", "target-diverged", "proxy-mode", "version-mismatch", NULL,
};

/*
 * The volatile fields: members that change in normal operation or by
 * harmless administration, never with the key material, so fingerprints
 * ignore them at any depth.  Names compare case-insensitively ("Status" is
 * "status").  A key field wrongly listed here would hide a key change, so
 * the list stays short.
 */
const char *const gateway_volatile_fields[] = {
    "description",    /* free text the admin edits */
    "status",	      /* Active / Suspended: suspending keeps the keys */
    "messageCounter", /* grows with every delivered message */
    "created",	      /* creation time: metadata, not key material */
    "modified",	      /* last change time */
    "lastModified",   /* last change time */
    "lastDelivery",   /* time of the last delivered message */
    "lastAccess",     /* time of the last console or POP3 access */
    "lastFetch",      /* time MailStore Server last fetched */
    "displayName",    /* free text */
    "comment",	      /* free text */
    "notes",	      /* free text */
    NULL,
};

/*
 * Besides the names above, a member is volatile when its name ends in one
 * of these words: counters and points in time, whatever the product calls
 * them ("deliveryCount", "LastLoginTime", "updated_at").  The word compares
 * case-insensitively but must start a word of the name: the whole name, or
 * after '_', '-', '.' or ' ', or a capital letter after a lower-case letter
 * or digit ("createdAt"), or starting the last word of a capitalised run
 * ("UTCTime").  So "format", "account", "lifetime" and "update" are not
 * volatile: a plain suffix test would throw away fields that could hold key
 * material.
 */
static const char *const volatile_suffixes[] = {
    "Count", "Counter", "Time", "Timestamp", "Date", "At", NULL,
};

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

static bool same_id(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* ---- inventory --------------------------------------------------------- */

/*
 * Count the regular files below dir and their bytes.  Something that
 * vanishes while we count (MailStore Server fetching mail) is not an error.
 */
static int count_store(struct fsys *fs, const char *dir, size_t *files, uint64_t *bytes)
{
	struct fsys_dirent *ents = NULL;
	size_t n = 0, i;
	int rc;

	rc = fsys_list(fs, dir, &ents, &n);
	if (rc == MSGW_ENOTFOUND)
		return 0;
	for (i = 0; rc == 0 && i < n; i++) {
		char *path;

		if (ents[i].st.type == FSYS_FILE) {
			(*files)++;
			*bytes += ents[i].st.size;
		} else if (ents[i].st.type == FSYS_DIR) {
			path = fsys_join(dir, ents[i].name);
			rc = count_store(fs, path, files, bytes);
			free(path);
		}
	}
	fsys_dirents_free(ents, n);
	return rc;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int add_store(struct gateway_inventory *inv, struct fsys *fs, const char *path)
{
	struct gateway_store *s;

	inv->v = xrealloc(inv->v, (inv->n + 1) * sizeof(*inv->v));
	s = &inv->v[inv->n++];
	s->by_pattern = !walk_is_mailbox_name(base_name(path));
	s->id = xstrdup(s->by_pattern ? path : base_name(path));
	s->path = xstrdup(path);
	s->messages = 0;
	s->bytes = 0;
	return count_store(fs, path, &s->messages, &s->bytes);
}

/* Search dir for stores; a directory below the root that vanishes is no
 * error (the gateway deletes folders of deleted mailboxes). */
static int find_stores(struct gateway_inventory *inv, struct fsys *fs,
		       const struct walk_rules *rules, const char *dir)
{
	struct fsys_dirent *ents = NULL;
	size_t n = 0, i;
	int rc;

	rc = fsys_list(fs, dir, &ents, &n);
	if (rc == MSGW_ENOTFOUND && *dir)
		return 0;
	for (i = 0; rc == 0 && i < n; i++) {
		char *path;

		if (ents[i].st.type != FSYS_DIR)
			continue;
		path = fsys_join(dir, ents[i].name);
		if (walk_is_store(rules, path))
			rc = add_store(inv, fs, path);
		else
			rc = find_stores(inv, fs, rules, path);
		free(path);
	}
	fsys_dirents_free(ents, n);
	return rc;
}

static int store_cmp(const void *a, const void *b)
{
	const struct gateway_store *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c ? c : strcmp(x->path, y->path);
}

int gateway_inventory_read(struct gateway_inventory *out, struct fsys *fs,
			   const struct walk_rules *rules)
{
	static const struct walk_rules none;
	int rc;

	out->v = NULL;
	out->n = 0;
	rc = find_stores(out, fs, rules ? rules : &none, "");
	if (rc) {
		gateway_inventory_release(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), store_cmp);
	return 0;
}

const struct gateway_store *gateway_inventory_find(const struct gateway_inventory *inv,
						   const char *id)
{
	size_t i;

	for (i = 0; i < inv->n; i++)
		if (same_id(inv->v[i].id, id))
			return &inv->v[i];
	return NULL;
}

void gateway_inventory_release(struct gateway_inventory *inv)
{
	size_t i;

	if (!inv)
		return;
	for (i = 0; i < inv->n; i++) {
		free(inv->v[i].id);
		free(inv->v[i].path);
	}
	free(inv->v);
	inv->v = NULL;
	inv->n = 0;
}

/* ---- records ----------------------------------------------------------- */

/*
 * Records.  A configuration file is JSON when its first character (after a
 * UTF-8 byte order mark and white space) is '{', or '[' followed by
 * something a JSON value can start with: an INI file's "[Settings]" is
 * text.  A file holding a NUL byte is binary and skipped.
 *
 * JSON: each mailbox id (a string "mbx-" + 32 hex digits, exactly) that
 * appears as a string value or as a member name is held by its innermost
 * object:
 *   - as a string value (directly, or in an array): the object holding the
 *     member, or the top-level array when there is no object around it;
 *   - as a member name: the member's value when it is an object; otherwise
 *     the member alone ({"mbx-...": value}), so that a map of ids to keys
 *     gives each mailbox its own fingerprint.
 * The fingerprint is the sha256 of the holder's canonical form (sorted
 * keys, compact, volatile fields removed at any depth).  When one file
 * mentions an id in several holders (its definition and, say, a routing
 * rule) the fingerprint covers them all: the sorted canonical forms joined
 * by newlines.  A change to any of them then counts as a key change, which
 * errs on the side of refusing.
 *
 * Across files the first JSON record of an id wins and a second one only
 * gives a note; a JSON record replaces a presence-only one (it knows more),
 * and a presence-only record never replaces anything.
 *
 * Text: each id bounded by non-alphanumerics gives a presence-only record,
 * and the file gives one note saying its ids are compared by presence only.
 */

static bool is_id(const char *s, size_t len)
{
	return len == ID_LEN && walk_is_mailbox_name(s);
}

static bool is_id_value(const json_t *v)
{
	return json_is_string(v) && is_id(json_string_value(v), json_string_length(v));
}

static void add_note(struct gateway_records *r, char *note)
{
	r->notes = xrealloc(r->notes, (r->nnotes + 1) * sizeof(*r->notes));
	r->notes[r->nnotes++] = note;
}

static struct gateway_record *find_record(const struct gateway_records *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (same_id(r->v[i].id, id))
			return &r->v[i];
	return NULL;
}

/* Add a record, or merge it with an earlier one by the rules above.
 * fingerprint is NULL for presence-only records. */
static void put_record(struct gateway_records *r, const char *id, const char *file,
		       const unsigned char *fingerprint)
{
	struct gateway_record *rec = find_record(r, id);

	if (rec && rec->json && fingerprint) {
		add_note(r, xasprintf("mailbox %s is described in '%s' and in '%s': only "
				      "'%s' is compared",
				      rec->id, rec->file, file, rec->file));
		return;
	}
	if (rec && !fingerprint)
		return;
	if (!rec) {
		r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
		rec = &r->v[r->n++];
		memset(rec, 0, sizeof(*rec));
		rec->id = xstrdup(id);
	}
	free(rec->file);
	rec->file = xstrdup(file);
	rec->json = fingerprint != NULL;
	if (fingerprint)
		memcpy(rec->fingerprint, fingerprint, SHA256_LEN);
}

static bool is_volatile(const char *key)
{
	const char *const *p;
	size_t kl = strlen(key), sl, at;

	for (p = gateway_volatile_fields; *p; p++)
		if (strcasecmp(key, *p) == 0)
			return true;
	for (p = volatile_suffixes; *p; p++) {
		sl = strlen(*p);
		if (kl < sl || strcasecmp(key + kl - sl, *p) != 0)
			continue;
		at = kl - sl;
		if (at == 0 || strchr("_-. ", key[at - 1]))
			return true;
		if (isupper((unsigned char)key[at]) &&
		    (!isupper((unsigned char)key[at - 1]) || islower((unsigned char)key[at + 1])))
			return true;
	}
	return false;
}

/*
 * The runtime fields: the volatile fields the gateway itself changes while
 * it runs (counters, points in time), as opposed to free text and status an
 * admin sets.  target-diverged ignores them, so mail arriving on a standby
 * is not mistaken for a local edit.
 */
static const char *const admin_fields[] = {"description", "status", "displayName",
					   "comment",	  "notes",  NULL};

static bool is_runtime(const char *key)
{
	const char *const *p;

	for (p = admin_fields; *p; p++)
		if (strcasecmp(key, *p) == 0)
			return false;
	return is_volatile(key);
}

static void strip_fields(json_t *v, bool (*drop)(const char *key))
{
	const char *key;
	size_t key_len, i;
	json_t *val;
	void *tmp;

	if (json_is_array(v)) {
		for (i = 0; i < json_array_size(v); i++)
			strip_fields(json_array_get(v, i), drop);
		return;
	}
	if (!json_is_object(v))
		return;
	json_object_keylen_foreach_safe(v, tmp, key, key_len, val)
	{
		if (strlen(key) == key_len && drop(key))
			json_object_deln(v, key, key_len);
		else
			strip_fields(val, drop);
	}
}

static void strip_volatile(json_t *v)
{
	strip_fields(v, is_volatile);
}

static int dump_to_buf(const char *data, size_t len, void *ctx)
{
	buf_add(ctx, data, len);
	return 0;
}

/* The canonical form of v without its volatile fields (caller frees). */
static char *canonical(const json_t *v)
{
	json_t *copy = json_deep_copy(v);
	struct buf b;

	if (!copy) {
		fputs("out of memory\n", stderr);
		abort();
	}
	strip_volatile(copy);
	buf_init(&b);
	if (json_dump_callback(copy, dump_to_buf, &b,
			       JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
		fputs("out of memory\n", stderr);
		abort();
	}
	json_decref(copy);
	return buf_detach(&b, NULL);
}

/* One place a JSON file mentions an id. */
struct hit {
	const char *id;	      /* borrowed from the parsed document */
	const json_t *holder; /* the object (or array) holding it */
	bool member;	      /* the holder's member named id, not the holder */
	char *canon;
};

struct hits {
	struct hit *v;
	size_t n, cap;
};

static void add_hit(struct hits *h, const char *id, const json_t *holder, const json_t *member)
{
	struct hit *e;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (h->v[i].holder == holder && h->v[i].member == (member != NULL) &&
		    same_id(h->v[i].id, id))
			return;
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
	}
	e = &h->v[h->n++];
	e->id = id;
	e->holder = holder;
	e->member = member != NULL;
	if (member) {
		json_t *pair = json_object();

		json_object_set(pair, id, (json_t *)member);
		e->canon = canonical(pair);
		json_decref(pair);
	} else {
		e->canon = canonical(holder);
	}
}

static void scan_value(struct hits *h, const json_t *v, const json_t *holder);

static void scan_object(struct hits *h, const json_t *obj)
{
	const char *key;
	size_t key_len;
	json_t *val;

	json_object_keylen_foreach((json_t *)obj, key, key_len, val)
	{
		if (is_id(key, key_len))
			add_hit(h, key, json_is_object(val) ? val : obj,
				json_is_object(val) ? NULL : val);
		if (is_id_value(val))
			add_hit(h, json_string_value(val), obj, NULL);
		else
			scan_value(h, val, obj);
	}
}

static void scan_value(struct hits *h, const json_t *v, const json_t *holder)
{
	size_t i;

	if (json_is_object(v)) {
		scan_object(h, v);
		return;
	}
	for (i = 0; json_is_array(v) && i < json_array_size(v); i++) {
		const json_t *e = json_array_get(v, i);

		if (is_id_value(e))
			add_hit(h, json_string_value(e), holder ? holder : v, NULL);
		else
			scan_value(h, e, holder);
	}
}

static int hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	int c = strcasecmp(x->id, y->id);

	return c ? c : strcmp(x->canon, y->canon);
}

/* Turn the hits into records: one per id, all its holders hashed. */
static void take_hits(struct gateway_records *r, const char *file, struct hits *h)
{
	unsigned char fp[SHA256_LEN];
	struct sha256 s;
	size_t i, j;

	if (h->n > 1)
		qsort(h->v, h->n, sizeof(*h->v), hit_cmp);
	for (i = 0; i < h->n; i = j) {
		sha256_init(&s);
		for (j = i; j < h->n && same_id(h->v[j].id, h->v[i].id); j++) {
			if (j > i)
				sha256_update(&s, "\n", 1);
			sha256_update(&s, h->v[j].canon, strlen(h->v[j].canon));
		}
		sha256_final(&s, fp);
		put_record(r, h->v[i].id, file, fp);
	}
}

static void hits_release(struct hits *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		free(h->v[i].canon);
	free(h->v);
}

/* A top-level string member ("mode", "version"): the first file wins. */
static void take_top(struct gateway_records *r, const char *file, const json_t *root,
		     const char *name, char **slot)
{
	const json_t *v = json_object_get(root, name);
	const char *s;

	if (!json_is_string(v))
		return;
	s = json_string_value(v);
	if (!*slot)
		*slot = xstrdup(s);
	else if (strcmp(*slot, s) != 0)
		add_note(r, xasprintf("'%s' gives %s \"%s\" but an earlier file gave \"%s\": "
				      "using \"%s\"",
				      file, name, s, *slot, *slot));
}

static int add_json(struct gateway_records *r, const char *file, const char *data, size_t len)
{
	struct hits h = {NULL, 0, 0};
	json_error_t jerr;
	json_t *root;

	root = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
	if (!root)
		return err_set(MSGW_ECORRUPT, "'%s': line %d: %s", file, jerr.line, jerr.text);
	scan_value(&h, root, NULL);
	take_hits(r, file, &h);
	if (json_is_object(root)) {
		take_top(r, file, root, "mode", &r->mode);
		take_top(r, file, root, "version", &r->version);
	}
	hits_release(&h);
	json_decref(root);
	return 0;
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c);
}

/* Scan any bytes for ids (presence-only records); true when some found. */
static bool scan_text(struct gateway_records *r, const char *file, const char *data, size_t len)
{
	bool found = false;
	char id[ID_LEN + 1];
	size_t i;

	for (i = 0; i + ID_LEN <= len; i++) {
		if (data[i] != 'm' || (i > 0 && word_char(data[i - 1])) ||
		    (i + ID_LEN < len && word_char(data[i + ID_LEN])))
			continue;
		memcpy(id, data + i, ID_LEN);
		id[ID_LEN] = '\0';
		if (!walk_is_mailbox_name(id))
			continue;
		put_record(r, id, file, NULL);
		found = true;
		i += ID_LEN - 1;
	}
	return found;
}

/* Where the JSON text starts, or NULL when the data is not JSON. */
static const char *json_start(const char *data, size_t len)
{
	static const char *const literals[] = {"true", "false", "null", NULL};
	const char *p = data, *end = data + len, *q;
	const char *const *l;

	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end && strchr(" \t\r\n", *p))
		p++;
	if (p == end || (*p != '{' && *p != '['))
		return NULL;
	if (*p == '{')
		return p;
	for (q = p + 1; q < end && strchr(" \t\r\n", *q); q++)
		;
	if (q == end || strchr("{[\"-]0123456789", *q))
		return p;
	for (l = literals; *l; l++) {
		size_t n = strlen(*l);

		if ((size_t)(end - q) >= n && memcmp(q, *l, n) == 0 &&
		    (q + n == end || !word_char(q[n])))
			return p;
	}
	return NULL;
}

static json_t *load_json(const char *data, size_t len)
{
	const char *start = json_start(data, len);

	if (!start)
		return NULL;
	return json_loadb(start, len - (size_t)(start - data), JSON_REJECT_DUPLICATES, NULL);
}

bool gateway_config_differs(const char *a, size_t alen, const char *b, size_t blen)
{
	json_t *ja, *jb;
	bool differs;

	if (alen == blen && memcmp(a, b, alen) == 0)
		return false;
	ja = load_json(a, alen);
	jb = ja ? load_json(b, blen) : NULL;
	if (!ja || !jb) {
		json_decref(ja);
		return true;
	}
	strip_fields(ja, is_runtime);
	strip_fields(jb, is_runtime);
	differs = !json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return differs;
}

void gateway_records_init(struct gateway_records *r)
{
	memset(r, 0, sizeof(*r));
}

int gateway_records_add_file(struct gateway_records *r, const char *file, const char *data,
			     size_t len)
{
	const char *start;

	if (memchr(data, '\0', len))
		return 0;
	start = json_start(data, len);
	if (start)
		return add_json(r, file, start, len - (size_t)(start - data));
	if (scan_text(r, file, data, len))
		add_note(r, xasprintf("'%s' is not JSON: mailbox ids found there are compared by "
				      "presence only",
				      file));
	return 0;
}

/*
 * why is typically err_last() of a failed gateway_records_add_file, which
 * starts with the quoted file name already: that prefix is not repeated.
 * The note is added even when no id turns up: the admin should hear that a
 * configuration file was not understood.
 */
void gateway_records_add_presence(struct gateway_records *r, const char *file, const char *data,
				  size_t len, const char *why)
{
	char *prefix = xasprintf("'%s': ", file);
	bool found = scan_text(r, file, data, len);

	if (!why || !*why)
		why = "not understood";
	else if (strncmp(why, prefix, strlen(prefix)) == 0)
		why += strlen(prefix);
	add_note(r, xasprintf("'%s': %s: %s", file, why,
			      found ? "mailbox ids found there are compared by presence only"
				    : "no mailbox ids found there"));
	free(prefix);
}

const struct gateway_record *gateway_records_find(const struct gateway_records *r, const char *id)
{
	return find_record(r, id);
}

void gateway_records_release(struct gateway_records *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++) {
		free(r->v[i].id);
		free(r->v[i].file);
	}
	for (i = 0; i < r->nnotes; i++)
		free(r->notes[i]);
	free(r->v);
	free(r->notes);
	free(r->mode);
	free(r->version);
	gateway_records_init(r);
}

/* ---- findings ---------------------------------------------------------- */

void findings_init(struct findings *f)
{
	f->v = NULL;
	f->n = 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void findings_add(struct findings *f, const char *code, const char *mailbox, size_t messages,
		  uint64_t bytes, const char *what, const char *instead)
{
	struct finding *e;

	f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
	e = &f->v[f->n++];
	e->code = xstrdup(code);
	e->mailbox = dup_or_null(mailbox);
	e->messages = messages;
	e->bytes = bytes;
	e->what = dup_or_null(what);
	e->instead = dup_or_null(instead);
	e->forced = false;
}

void findings_release(struct findings *f)
{
	size_t i;

	if (!f)
		return;
	for (i = 0; i < f->n; i++) {
		free(f->v[i].code);
		free(f->v[i].mailbox);
		free(f->v[i].what);
		free(f->v[i].instead);
	}
	free(f->v);
	findings_init(f);
}

bool gateway_is_finding_code(const char *code)
{
	const char *const *p;

	for (p = gateway_finding_codes; code && *p; p++)
		if (strcmp(code, *p) == 0)
			return true;
	return false;
}

/* ---- analysis ---------------------------------------------------------- */

/* Add a finding whose sentences are built here (and freed here). */
static void add_finding(struct findings *out, const char *code, const struct gateway_store *s,
			char *what, char *instead)
{
	findings_add(out, code, s ? s->id : NULL, s ? s->messages : 0, s ? s->bytes : 0, what,
		     instead);
	free(what);
	free(instead);
}

static void check_removed(struct findings *out, const struct gateway_records *snap,
			  const struct gateway_store *s)
{
	if (gateway_records_find(snap, s->id))
		return;
	add_finding(out, "mailbox-removed", s,
		    xasprintf("%zu message%s in mailbox %s on the target would be orphaned: the "
			      "snapshot's configuration has no such mailbox",
			      s->messages, plural(s->messages), s->id),
		    xasprintf("let MailStore Server fetch the %zu message%s in that mailbox "
			      "first (or re-create the mailbox on the source gateway), then retry",
			      s->messages, plural(s->messages)));
}

/*
 * Only two JSON records can be compared.  When either side knows the
 * mailbox by presence only there is no finding: the records' notes (which
 * the caller prints for both sides) say that key changes cannot be seen
 * there.  A mailbox the target's configuration lacks has nothing to lose
 * to a key change: its mail is unreadable already.
 */
static void check_key(struct findings *out, const struct gateway_records *snap,
		      const struct gateway_records *target, const struct gateway_store *s)
{
	const struct gateway_record *a = gateway_records_find(snap, s->id);
	const struct gateway_record *b = gateway_records_find(target, s->id);

	if (!a || !b || !a->json || !b->json ||
	    memcmp(a->fingerprint, b->fingerprint, SHA256_LEN) == 0)
		return;
	add_finding(out, "key-changed", s,
		    xasprintf("the key material of mailbox %s differs between the snapshot and "
			      "the target, which holds %zu message%s for it: %s could never be "
			      "decrypted again",
			      s->id, s->messages, plural(s->messages),
			      s->messages == 1 ? "it" : "they"),
		    xasprintf("let MailStore Server fetch the %zu message%s first, then retry; or "
			      "restore a snapshot taken before the password reset",
			      s->messages, plural(s->messages)));
}

static bool is_proxy(const struct gateway_records *r)
{
	return r->mode && strcasecmp(r->mode, "proxy") == 0;
}

static void check_proxy(struct findings *out, const struct gateway_records *snap,
			const struct gateway_records *target)
{
	const char *who;

	if (is_proxy(snap) && is_proxy(target))
		who = "the snapshot and the target run";
	else if (is_proxy(snap))
		who = "the snapshot runs";
	else if (is_proxy(target))
		who = "the target runs";
	else
		return;
	add_finding(out, "proxy-mode", NULL,
		    xasprintf("%s in POP3 proxy mode, where copying configuration between "
			      "gateways does not work the same way",
			      who),
		    xstrdup("configure proxy-mode gateways separately, or accept with "
			    "--force=proxy-mode"));
}

static void check_version(struct findings *out, const struct gateway_records *snap,
			  const struct gateway_records *target)
{
	if (!snap->version || !target->version || strcmp(snap->version, target->version) == 0)
		return;
	add_finding(
	    out, "version-mismatch", NULL,
	    xasprintf("the snapshot was taken from MailStore Gateway %s, the target runs %s",
		      snap->version, target->version),
	    xstrdup("upgrade the older gateway first so both run the same version, then "
		    "retry"));
}

void gateway_analyse(struct findings *out, const struct gateway_records *snap,
		     const struct gateway_records *target, const struct gateway_inventory *inv)
{
	size_t i;

	for (i = 0; i < inv->n; i++) {
		/* a store found by pattern has no record to compare: the
		 * configuration names mailboxes by their mbx- ids only */
		if (inv->v[i].messages == 0 || inv->v[i].by_pattern)
			continue;
		check_removed(out, snap, &inv->v[i]);
		check_key(out, snap, target, &inv->v[i]);
	}
	check_proxy(out, snap, target);
	check_version(out, snap, target);
}
