/*
 * test_gateway: the gateway module's contract on hand-written inputs.
 *
 * Records: the simulator's layout (mailboxes in an array), nested objects,
 * the id as a member name (object and non-object values), a top-level
 * array, escaped strings, the exact canonical form behind a fingerprint,
 * volatile fields (by name and by the suffix rule) that leave it alone and
 * key fields that change it, ids in several holders, records across files
 * (first JSON wins, JSON beats presence), mode and version, a malformed
 * file (error with its line, nothing added), text and INI files
 * (presence-only with a note), binary files (skipped), a byte order mark
 * and gateway_records_add_presence.
 * Inventory: a real temporary directory through fsys_open_local, with
 * stores at the root, deep down, below an excluded-looking folder and by
 * pattern, links and empty stores.
 * Analysis: each finding with its exact sentences, safe changes (new
 * mailbox, description, status, port) that give none, presence-only
 * records, and appending to existing findings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "fsys.h"
#include "gateway.h"
#include "sha256.h"
#include "util.h"
#include "test_util.h"

#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_A "mbx-0123456789abcdef0123456789abcdef"
#define ID_B "mbx-fedcba9876543210fedcba9876543210"
#define ID_C "mbx-00000000000000000000000000000001"

struct fixture {
	struct gateway_records r, t; /* snapshot-side and target-side records */
	struct gateway_inventory inv;
	struct findings f;
	char dir[PATH_MAX]; /* scratch directory, "" until made */
	struct fsys *fs;
};

/* ---- helpers ----------------------------------------------------------- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	gateway_records_init(&f->r);
	gateway_records_init(&f->t);
	findings_init(&f->f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gateway_records_release(&f->r);
	gateway_records_release(&f->t);
	gateway_inventory_release(&f->inv);
	findings_release(&f->f);
	fsys_free(f->fs);
	if (f->dir[0])
		test_rmtree(f->dir);
	free(f);
	return 0;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay ? hay : "(null)", needle);
}

static int add(struct gateway_records *r, const char *file, const char *text)
{
	return gateway_records_add_file(r, file, text, strlen(text));
}

static void add_ok(struct gateway_records *r, const char *file, const char *text)
{
	int rc = add(r, file, text);

	if (rc != 0)
		fail_msg("gateway_records_add_file '%s': %d %s", file, rc, err_last());
}

static const struct gateway_record *need(const struct gateway_records *r, const char *id)
{
	const struct gateway_record *rec = gateway_records_find(r, id);

	if (!rec)
		fail_msg("no record for %s", id);
	return rec;
}

/* The fingerprint of id in a file made of text alone, as hex. */
static void fp_of(char out[2 * SHA256_LEN + 1], const char *text, const char *id)
{
	struct gateway_records r;

	gateway_records_init(&r);
	add_ok(&r, "x.json", text);
	assert_true(need(&r, id)->json);
	hex_encode(out, need(&r, id)->fingerprint, SHA256_LEN);
	gateway_records_release(&r);
}

static void assert_same_fp(const char *a, const char *b, const char *id)
{
	char x[2 * SHA256_LEN + 1], y[2 * SHA256_LEN + 1];

	fp_of(x, a, id);
	fp_of(y, b, id);
	if (strcmp(x, y) != 0)
		fail_msg("fingerprints of %s differ:\n%s\n%s", id, a, b);
}

static void assert_other_fp(const char *a, const char *b, const char *id)
{
	char x[2 * SHA256_LEN + 1], y[2 * SHA256_LEN + 1];

	fp_of(x, a, id);
	fp_of(y, b, id);
	if (strcmp(x, y) == 0)
		fail_msg("fingerprints of %s are equal:\n%s\n%s", id, a, b);
}

static void assert_fp_is_sha_of(const char *text, const char *id, const char *canonical)
{
	unsigned char want[SHA256_LEN];
	char x[2 * SHA256_LEN + 1], y[2 * SHA256_LEN + 1];

	sha256_buf(want, canonical, strlen(canonical));
	hex_encode(y, want, SHA256_LEN);
	fp_of(x, text, id);
	assert_string_equal(x, y);
}

/* A mailbox object in the simulator's style; extra is spliced in. */
static char *mailbox(const char *id, const char *pub, const char *extra)
{
	return xasprintf(
	    "{\"created\": \"2026-11-28T15:15:55Z\", \"description\": \"Journal\", "
	    "\"encryptedPrivateKey\": \"ZW5j\", \"id\": \"%s\", \"keyNonce\": \"bm9u\", "
	    "\"keySalt\": \"c2Fs\", \"messageCounter\": 0, \"publicKey\": \"%s\", "
	    "\"status\": \"Active\"%s}",
	    id, pub, extra);
}

/* A Gateway.json in the simulator's layout with mailboxes A and B. */
static char *gateway_json(const char *mode, const char *version, const char *pub_a,
			  const char *extra_a, int smtp)
{
	char *a = mailbox(ID_A, pub_a, extra_a), *b = mailbox(ID_B, "cHViQg==", "");
	char *s = xasprintf("{\n  \"domain\": \"d.example\",\n  \"mailboxes\": [%s,\n %s],\n"
			    "  \"mode\": \"%s\",\n  \"ports\": {\"console\": 8450, \"smtp\": %d},\n"
			    "  \"product\": \"MailStore Gateway\",\n  \"version\": \"%s\"\n}\n",
			    a, b, mode, smtp, version);

	free(a);
	free(b);
	return s;
}

static void add_gateway_json(struct gateway_records *r, const char *mode, const char *version,
			     const char *pub_a, const char *extra_a, int smtp)
{
	char *s = gateway_json(mode, version, pub_a, extra_a, smtp);

	add_ok(r, "Gateway.json", s);
	free(s);
}

static void make_dir(struct fixture *f, const char *rel)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void make_file(struct fixture *f, const char *rel, size_t size)
{
	char path[2 * PATH_MAX];
	FILE *fp;
	size_t i;

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (i = 0; i < size; i++)
		fputc('x', fp);
	assert_int_equal(fclose(fp), 0);
}

static void make_scratch(struct fixture *f)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(f->dir, sizeof(f->dir), "%s/test_gateway.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(fsys_open_local(&f->fs, f->dir), 0);
}

static const struct finding *only_finding(const struct findings *fs, const char *code)
{
	const struct finding *hit = NULL;
	size_t i;

	for (i = 0; i < fs->n; i++) {
		if (strcmp(fs->v[i].code, code) != 0)
			continue;
		if (hit)
			fail_msg("more than one %s finding", code);
		hit = &fs->v[i];
	}
	if (!hit)
		fail_msg("no %s finding (%zu findings)", code, fs->n);
	return hit;
}

static void assert_no_findings(const struct findings *fs)
{
	if (fs->n)
		fail_msg("unexpected finding %s: %s", fs->v[0].code, fs->v[0].what);
}

/* A store entry for hand-made inventories. */
static void inv_add(struct gateway_inventory *inv, const char *id, size_t messages, uint64_t bytes)
{
	inv->v = xrealloc(inv->v, (inv->n + 1) * sizeof(*inv->v));
	inv->v[inv->n].id = xstrdup(id);
	inv->v[inv->n].path = xstrdup(id);
	inv->v[inv->n].messages = messages;
	inv->v[inv->n].bytes = bytes;
	inv->v[inv->n].by_pattern = !walk_is_mailbox_name(id);
	inv->n++;
}

/* ---- records: JSON structure ------------------------------------------- */

static void test_sim_layout(void **state)
{
	struct fixture *f = *state;
	const struct gateway_record *a, *b;

	add_gateway_json(&f->r, "server", "23.1.0", "cHViQQ==", "", 25);
	assert_int_equal(f->r.n, 2);
	a = need(&f->r, ID_A);
	b = need(&f->r, ID_B);
	assert_true(a->json);
	assert_true(b->json);
	assert_string_equal(a->file, "Gateway.json");
	assert_string_equal(a->id, ID_A);
	assert_memory_not_equal(a->fingerprint, b->fingerprint, SHA256_LEN);
	assert_string_equal(f->r.mode, "server");
	assert_string_equal(f->r.version, "23.1.0");
	assert_int_equal(f->r.nnotes, 0);
	assert_null(gateway_records_find(&f->r, ID_C));
}

static void test_find_ignores_case(void **state)
{
	struct fixture *f = *state;

	add_ok(&f->r, "a.json", "{\"id\": \"mbx-ABCDEF0123456789ABCDEF0123456789\"}");
	assert_non_null(gateway_records_find(&f->r, "mbx-abcdef0123456789abcdef0123456789"));
	assert_string_equal(f->r.v[0].id, "mbx-ABCDEF0123456789ABCDEF0123456789");
}

static void test_canonical_form(void **state)
{
	(void)state;
	/* sorted keys, compact, volatile fields gone, escapes normalised */
	assert_fp_is_sha_of("{\"zeta\": [1, 2], \"id\": \"" ID_A "\", \"status\": \"Active\",\n"
			    "  \"publicKey\": \"a\\/b\", \"description\": \"x\"}",
			    ID_A, "{\"id\":\"" ID_A "\",\"publicKey\":\"a/b\",\"zeta\":[1,2]}");
}

static void test_nested(void **state)
{
	struct fixture *f = *state;

	/* the innermost object holding the id is the record, however deep */
	assert_fp_is_sha_of("{\"a\": {\"b\": [{\"c\": {\"id\": \"" ID_A "\", \"key\": \"x\"},"
			    " \"other\": 1}]}, \"ports\": {\"smtp\": 25}}",
			    ID_A, "{\"id\":\"" ID_A "\",\"key\":\"x\"}");
	/* so changing something outside it changes nothing */
	assert_same_fp("{\"a\": {\"b\": [{\"c\": {\"id\": \"" ID_A "\", \"key\": \"x\"}}]}}",
		       "{\"a\": {\"b\": [{\"c\": {\"id\": \"" ID_A
		       "\", \"key\": \"x\"}, \"o\": 2}],"
		       " \"q\": 3}}",
		       ID_A);
	add_ok(&f->r, "n.json",
	       "[{\"list\": [[{\"mailbox\": {\"ref\": \"" ID_B "\", \"k\": \"y\"}}]]}]");
	assert_true(need(&f->r, ID_B)->json);
	assert_null(f->r.mode);
}

static void test_id_as_key(void **state)
{
	struct fixture *f = *state;
	const char *one = "{\"mailboxes\": {\"" ID_A "\": {\"publicKey\": \"k1\"}, \"" ID_B
			  "\": {\"publicKey\": \"k2\"}}}";
	const char *two = "{\"mailboxes\": {\"" ID_A "\": {\"publicKey\": \"k1\"}, \"" ID_B
			  "\": {\"publicKey\": \"CHANGED\"}}}";

	add_ok(&f->r, "m.json", one);
	assert_int_equal(f->r.n, 2);
	assert_fp_is_sha_of(one, ID_A, "{\"publicKey\":\"k1\"}");
	assert_same_fp(one, two, ID_A);
	assert_other_fp(one, two, ID_B);
	/* the id as both member name and "id" inside: one record, that object */
	assert_fp_is_sha_of("{\"m\": {\"" ID_A "\": {\"id\": \"" ID_A "\", \"k\": 1}}}", ID_A,
			    "{\"id\":\"" ID_A "\",\"k\":1}");
}

static void test_id_as_key_plain_value(void **state)
{
	const char *one = "{\"keys\": {\"" ID_A "\": \"k1\", \"" ID_B "\": [\"k2\", 7]}}";
	const char *two = "{\"keys\": {\"" ID_A "\": \"k1\", \"" ID_B "\": [\"k2\", 8]}}";

	(void)state;
	/* a map of ids to keys: each mailbox its own member */
	assert_fp_is_sha_of(one, ID_A, "{\"" ID_A "\":\"k1\"}");
	assert_fp_is_sha_of(one, ID_B, "{\"" ID_B "\":[\"k2\",7]}");
	assert_same_fp(one, two, ID_A);
	assert_other_fp(one, two, ID_B);
}

static void test_top_level_array(void **state)
{
	struct fixture *f = *state;

	add_ok(&f->r, "list.json", "[\"" ID_A "\", \"" ID_B "\"]");
	assert_int_equal(f->r.n, 2);
	assert_true(need(&f->r, ID_A)->json);
	assert_fp_is_sha_of("[\"" ID_A "\", \"" ID_B "\"]", ID_A, "[\"" ID_A "\",\"" ID_B "\"]");
	/* an id inside an array inside an object belongs to that object */
	assert_fp_is_sha_of("{\"g\": {\"name\": \"n\", \"members\": [\"" ID_A "\"]}}", ID_A,
			    "{\"members\":[\"" ID_A "\"],\"name\":\"n\"}");
}

static void test_escaped_strings(void **state)
{
	struct fixture *f = *state;

	/* "\u0030" is "0": the decoded string is the id */
	add_ok(&f->r, "e.json",
	       "{\"id\": \"mbx-\\u0030123456789abcdef0123456789abcdef\", "
	       "\"k\": \"q\\\"uo\\\\te\\n\\u00e9\\ud83d\\ude00\"}");
	assert_true(need(&f->r, ID_A)->json);
	assert_same_fp("{\"id\": \"" ID_A "\", \"k\": \"\\u00e9\\/\"}",
		       "{\"k\": \"\xc3\xa9/\", \"id\": \"" ID_A "\"}", ID_A);
	assert_other_fp("{\"id\": \"" ID_A "\", \"k\": \"\\u00e9\"}",
			"{\"id\": \"" ID_A "\", \"k\": \"e\"}", ID_A);
	/* near misses are not ids */
	add_ok(&f->r, "n.json",
	       "{\"a\": \"" ID_C "@d.example\", \"b\": \"x" ID_C "\", \"c\": \"mbx-123\"}");
	assert_null(gateway_records_find(&f->r, ID_C));
}

static void test_volatile_fields(void **state)
{
	/* pairs of extra members of mailbox A that must give one fingerprint */
	const char *pairs[][2] = {
	    {"", ", \"modified\": 1, \"lastModified\": 2, \"lastDelivery\": 3, "
		 "\"lastAccess\": 4, \"lastFetch\": 5, \"displayName\": \"d\", "
		 "\"comment\": \"c\", \"notes\": \"n\""},
	    {"", ", \"Description\": \"X\", \"STATUS\": 1, \"Created\": 0"},
	    {"", ", \"deliveryCount\": 1, \"MessageCount\": 2, \"fetchCounter\": 3"},
	    {"", ", \"LastLoginTime\": 1, \"lastFetchTimestamp\": 2, \"expiryDate\": 3"},
	    {"", ", \"createdAt\": 1, \"updated_at\": 2, \"UPDATED-AT\": 3, \"lastUTCTime\": 4"},
	    {"", ", \"count\": 1, \"at\": 2, \"Time\": 3"},
	    {", \"nested\": {\"x\": 1, \"seenAt\": [1]}",
	     ", \"nested\": {\"x\": 1, \"seenAt\": [2, 3]}"},
	    {", \"stats\": [{\"k\": 1, \"lastDelivery\": \"now\"}]",
	     ", \"stats\": [{\"k\": 1, \"lastDelivery\": \"later\", \"hitCount\": 9}]"},
	};
	const char *const *p;
	size_t i;

	(void)state;
	for (p = gateway_volatile_fields; *p; p++)
		assert_true(**p != '\0');
	assert_int_equal(p - gateway_volatile_fields, 12);
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		char *x = gateway_json("server", "23.1.0", "cHViQQ==", pairs[i][0], 25);
		char *y = gateway_json("server", "23.1.0", "cHViQQ==", pairs[i][1], 25);

		assert_same_fp(x, y, ID_A);
		free(x);
		free(y);
	}
}

static void test_key_fields_change(void **state)
{
	char *base = gateway_json("server", "23.1.0", "cHViQQ==", "", 25);
	const char *extras[] = {
	    ", \"keyFormat\": \"x25519\"",
	    ", \"account\": \"a\"",
	    ", \"keyLifetime\": 1",
	    ", \"update\": 1",
	    ", \"STAT\": 1",
	    ", \"nested\": {\"publicKey\": \"p\"}",
	};
	char *other;
	size_t i;

	(void)state;
	other = gateway_json("server", "23.1.0", "OTHER===", "", 25);
	assert_other_fp(base, other, ID_A);
	assert_same_fp(base, other, ID_B);
	free(other);
	for (i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
		other = gateway_json("server", "23.1.0", "cHViQQ==", extras[i], 25);
		assert_other_fp(base, other, ID_A);
		free(other);
	}
	/* ports, mode and version live outside the mailbox objects */
	other = gateway_json("proxy", "24.0.0", "cHViQQ==", "", 2525);
	assert_same_fp(base, other, ID_A);
	free(other);
	free(base);
}

static void test_several_holders(void **state)
{
	const char *one = "{\"mailboxes\": [{\"id\": \"" ID_A "\", \"publicKey\": \"k\"}],"
			  " \"routes\": [{\"to\": \"" ID_A "\", \"address\": \"j@d\"}]}";
	const char *moved = "{\"routes\": [{\"address\": \"j@d\", \"to\": \"" ID_A "\"}],"
			    " \"mailboxes\": [{\"publicKey\": \"k\", \"id\": \"" ID_A "\"}]}";
	const char *two = "{\"mailboxes\": [{\"id\": \"" ID_A "\", \"publicKey\": \"k\"}],"
			  " \"routes\": [{\"to\": \"" ID_A "\", \"address\": \"x@d\"}]}";

	(void)state;
	/* sorted canonical forms joined by newlines, in no particular order */
	assert_fp_is_sha_of(one, ID_A,
			    "{\"address\":\"j@d\",\"to\":\"" ID_A "\"}\n"
			    "{\"id\":\"" ID_A "\",\"publicKey\":\"k\"}");
	assert_same_fp(one, moved, ID_A);
	assert_other_fp(one, two, ID_A);
}

/* ---- records: files, mode, version ------------------------------------- */

static void test_duplicate_across_files(void **state)
{
	struct fixture *f = *state;
	unsigned char first[SHA256_LEN];

	add_ok(&f->r, "a.json", "{\"id\": \"" ID_A "\", \"k\": 1}");
	memcpy(first, need(&f->r, ID_A)->fingerprint, SHA256_LEN);
	add_ok(&f->r, "b.json", "{\"id\": \"" ID_A "\", \"k\": 2}");
	assert_int_equal(f->r.n, 1);
	assert_string_equal(need(&f->r, ID_A)->file, "a.json");
	assert_memory_equal(need(&f->r, ID_A)->fingerprint, first, SHA256_LEN);
	assert_int_equal(f->r.nnotes, 1);
	assert_string_equal(f->r.notes[0], "mailbox " ID_A " is described in 'a.json' and in "
					   "'b.json': only 'a.json' is compared");
}

static void test_json_beats_presence(void **state)
{
	struct fixture *f = *state;

	add_ok(&f->r, "a.txt", "mailbox " ID_A "\n");
	assert_false(need(&f->r, ID_A)->json);
	add_ok(&f->r, "b.json", "{\"id\": \"" ID_A "\"}");
	assert_true(need(&f->r, ID_A)->json);
	assert_string_equal(need(&f->r, ID_A)->file, "b.json");
	add_ok(&f->r, "c.txt", ID_A);
	assert_true(need(&f->r, ID_A)->json);
	assert_string_equal(need(&f->r, ID_A)->file, "b.json");
	assert_int_equal(f->r.n, 1);
	assert_int_equal(f->r.nnotes, 2); /* the two text files */
}

static void test_mode_version(void **state)
{
	struct fixture *f = *state;

	add_ok(&f->r, "x.json", "{\"mode\": 3, \"version\": 1, \"sub\": {\"mode\": \"proxy\"}}");
	assert_null(f->r.mode);
	assert_null(f->r.version);
	add_ok(&f->r, "Gateway.json", "{\"mode\": \"proxy\", \"version\": \"23.1.0\"}");
	add_ok(&f->r, "Other.json", "{\"mode\": \"proxy\", \"version\": \"24.0.0\"}");
	add_ok(&f->r, "list.json", "[{\"mode\": \"server\"}]");
	assert_string_equal(f->r.mode, "proxy");
	assert_string_equal(f->r.version, "23.1.0");
	assert_int_equal(f->r.nnotes, 1);
	assert_string_equal(f->r.notes[0], "'Other.json' gives version \"24.0.0\" but an earlier "
					   "file gave \"23.1.0\": using \"23.1.0\"");
}

static void test_malformed_json(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {
	    "{\n  \"id\": \"" ID_A "\",\n  \"mode\": \"proxy\"\n  \"k\": 1\n}\n",
	    "{\"id\": \"" ID_A "\"",
	    "[\"" ID_A "\",]",
	    "{\"id\": \"" ID_A "\"} trailing",
	    "{\"a\": \"bad \xff utf-8\"}",
	    "[\n\n\n",
	};
	const int line[] = {4, 1, 1, 1, 1, 4};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *want = xasprintf("'Gateway.json': line %d: ", line[i]);

		err_clear();
		assert_int_equal(add(&f->r, "Gateway.json", bad[i]), MSGW_ECORRUPT);
		if (strncmp(err_last(), want, strlen(want)) != 0 ||
		    strlen(err_last()) <= strlen(want))
			fail_msg("case %zu: '%s' does not start with '%s'", i, err_last(), want);
		free(want);
		assert_int_equal(f->r.n, 0);
		assert_null(f->r.mode);
		assert_int_equal(f->r.nnotes, 0);
	}
}

static void test_text_file(void **state)
{
	struct fixture *f = *state;
	const char *text = "# mailboxes\n" ID_A "@d.example\nx" ID_B "\n" ID_C
			   "0\n(mbx-abcdefabcdefabcdefabcdefabcdefab)";

	add_ok(&f->r, "Templates/a.txt", text);
	assert_int_equal(f->r.n, 2);
	assert_false(need(&f->r, ID_A)->json);
	assert_string_equal(need(&f->r, ID_A)->file, "Templates/a.txt");
	assert_non_null(gateway_records_find(&f->r, "mbx-abcdefabcdefabcdefabcdefabcdefab"));
	assert_null(gateway_records_find(&f->r, ID_B)); /* "x" before it */
	assert_null(gateway_records_find(&f->r, ID_C)); /* 33 hex digits */
	assert_int_equal(f->r.nnotes, 1);
	assert_string_equal(f->r.notes[0], "'Templates/a.txt' is not JSON: mailbox ids found there "
					   "are compared by presence only");
	/* a text file without ids: no note */
	add_ok(&f->r, "Templates/b.txt", "hello\n");
	assert_int_equal(f->r.nnotes, 1);
	add_ok(&f->r, "empty", "");
	assert_int_equal(f->r.nnotes, 1);
	/* an id at the very end of the text */
	add_ok(&f->r, "end.xml", "<m>" ID_B);
	assert_non_null(gateway_records_find(&f->r, ID_B));
}

static void test_ini_is_text(void **state)
{
	struct fixture *f = *state;

	add_ok(&f->r, "gw.ini", "[Settings]\nMailbox=" ID_A "\n");
	add_ok(&f->r, "net.ini", "  [network]\nid=" ID_B "\n");
	assert_false(need(&f->r, ID_A)->json);
	assert_false(need(&f->r, ID_B)->json);
	assert_int_equal(f->r.nnotes, 2);
	/* but a JSON array of literals is JSON */
	add_ok(&f->r, "lit.json", "[ null, true, {\"id\": \"" ID_C "\"}]");
	assert_true(need(&f->r, ID_C)->json);
	assert_int_equal(add(&f->r, "broken.json", "[true,]"), MSGW_ECORRUPT);
}

static void test_binary_skipped(void **state)
{
	struct fixture *f = *state;
	const char data[] = "{\"id\": \"" ID_A "\"}\0\x01\x02" ID_B;

	assert_int_equal(gateway_records_add_file(&f->r, "store.db", data, sizeof(data) - 1), 0);
	assert_int_equal(f->r.n, 0);
	assert_int_equal(f->r.nnotes, 0);
}

static void test_bom(void **state)
{
	struct fixture *f = *state;

	add_ok(&f->r, "Gateway.json",
	       "\xef\xbb\xbf\r\n{\"id\": \"" ID_A "\", \"mode\": \"server\"}");
	assert_true(need(&f->r, ID_A)->json);
	assert_string_equal(f->r.mode, "server");
	assert_int_equal(add(&f->r, "bad.json", "\xef\xbb\xbf{\n\n,"), MSGW_ECORRUPT);
	assert_contains(err_last(), "'bad.json': line 3: ");
}

static void test_add_presence(void **state)
{
	struct fixture *f = *state;
	const char *bad = "{\n \"id\": \"" ID_A "\",\n \"id2\": \"" ID_B "\"\n";

	assert_int_equal(add(&f->r, "Gateway.json", bad), MSGW_ECORRUPT);
	gateway_records_add_presence(&f->r, "Gateway.json", bad, strlen(bad), err_last());
	assert_int_equal(f->r.n, 2);
	assert_false(need(&f->r, ID_A)->json);
	assert_int_equal(f->r.nnotes, 1);
	assert_contains(f->r.notes[0], "'Gateway.json': line ");
	assert_contains(f->r.notes[0], ": mailbox ids found there are compared by presence only");
	assert_null(strstr(f->r.notes[0] + 1, "'Gateway.json'"));
	gateway_records_add_presence(&f->r, "x.bin", "\0\0", 2, "some reason");
	assert_string_equal(f->r.notes[1], "'x.bin': some reason: no mailbox ids found there");
	gateway_records_add_presence(&f->r, "y", ID_C, strlen(ID_C), NULL);
	assert_string_equal(f->r.notes[2], "'y': not understood: mailbox ids found there are "
					   "compared by presence only");
	assert_false(need(&f->r, ID_C)->json);
}

static void test_release_reusable(void **state)
{
	struct fixture *f = *state;

	add_gateway_json(&f->r, "proxy", "1", "k", "", 25);
	add_ok(&f->r, "t.txt", ID_C);
	gateway_records_release(&f->r);
	assert_int_equal(f->r.n, 0);
	assert_null(f->r.mode);
	assert_null(f->r.notes);
	gateway_records_release(&f->r);
	gateway_records_release(NULL);
	add_ok(&f->r, "t.txt", ID_C);
	assert_int_equal(f->r.n, 1);
}

/* ---- inventory --------------------------------------------------------- */

static void test_inventory(void **state)
{
	struct fixture *f = *state;
	char *const stores[] = {"Stores/*", NULL};
	struct walk_rules rules = {.mailbox_store = stores};
	char target[2 * PATH_MAX], link[2 * PATH_MAX];
	const struct gateway_store *s;

	make_scratch(f);
	make_file(f, "Gateway.json", 10);
	make_dir(f, "Logs");
	make_file(f, "Logs/today.log", 5);
	make_dir(f, ID_B);
	make_file(f, ID_B "/1.msg", 100);
	make_file(f, ID_B "/2.msg", 20);
	make_dir(f, ID_B "/sub");
	make_file(f, ID_B "/sub/3.msg", 3);
	make_dir(f, ID_B "/sub/" ID_C); /* inside a store: part of it */
	make_file(f, ID_B "/sub/" ID_C "/4.msg", 4);
	make_dir(f, ID_A); /* empty store */
	make_dir(f, "Logs/deep");
	make_dir(f, "Logs/deep/mbx-ABCDEF0123456789ABCDEF0123456789");
	make_file(f, "Logs/deep/mbx-ABCDEF0123456789ABCDEF0123456789/m", 7);
	make_dir(f, "Stores");
	make_dir(f, "Stores/custom");
	make_file(f, "Stores/custom/m1", 1);
	make_file(f, "Stores/custom/m2", 2);
	make_dir(f, "mbx-notastore");
	make_file(f, "mbx-notastore/x", 1);
	/* links are neither files nor followed */
	snprintf(target, sizeof(target), "%s/Logs", f->dir);
	snprintf(link, sizeof(link), "%s/%s/link", f->dir, ID_B);
	assert_int_equal(symlink(target, link), 0);
	snprintf(link, sizeof(link), "%s/mbx-notastore/" ID_C, f->dir);
	assert_int_equal(symlink(target, link), 0);

	assert_int_equal(gateway_inventory_read(&f->inv, f->fs, &rules), 0);
	assert_int_equal(f->inv.n, 4);
	/* sorted by id, bytewise; a store found by pattern is named by its
	 * path (an id of its own), one found by name by its name */
	assert_string_equal(f->inv.v[0].id, "Stores/custom");
	assert_true(f->inv.v[0].by_pattern);
	assert_false(f->inv.v[1].by_pattern);
	assert_false(f->inv.v[2].by_pattern);
	assert_string_equal(f->inv.v[1].id, ID_A);
	assert_string_equal(f->inv.v[2].id, "mbx-ABCDEF0123456789ABCDEF0123456789");
	assert_string_equal(f->inv.v[3].id, ID_B);
	assert_string_equal(f->inv.v[0].path, "Stores/custom");
	assert_int_equal(f->inv.v[0].messages, 2);
	assert_int_equal(f->inv.v[0].bytes, 3);
	assert_string_equal(f->inv.v[1].path, ID_A);
	assert_int_equal(f->inv.v[1].messages, 0);
	assert_int_equal(f->inv.v[1].bytes, 0);
	assert_string_equal(f->inv.v[2].path, "Logs/deep/mbx-ABCDEF0123456789ABCDEF0123456789");
	assert_int_equal(f->inv.v[2].messages, 1);
	assert_int_equal(f->inv.v[2].bytes, 7);
	assert_string_equal(f->inv.v[3].path, ID_B);
	assert_int_equal(f->inv.v[3].messages, 4);
	assert_int_equal(f->inv.v[3].bytes, 127);

	s = gateway_inventory_find(&f->inv, "mbx-abcdef0123456789abcdef0123456789");
	assert_non_null(s);
	assert_int_equal(s->messages, 1);
	assert_null(gateway_inventory_find(&f->inv, ID_C));

	/* without rules only mailbox names count */
	gateway_inventory_release(&f->inv);
	assert_int_equal(gateway_inventory_read(&f->inv, f->fs, NULL), 0);
	assert_int_equal(f->inv.n, 3);
	assert_null(gateway_inventory_find(&f->inv, "custom"));
}

static void test_inventory_missing_root(void **state)
{
	struct fixture *f = *state;
	struct fsys *fs;

	make_scratch(f);
	make_dir(f, ID_A);
	make_file(f, ID_A "/1.msg", 1);
	assert_int_equal(gateway_inventory_read(&f->inv, f->fs, NULL), 0);
	assert_int_equal(f->inv.n, 1);
	gateway_inventory_release(&f->inv);
	assert_int_equal(f->inv.n, 0);
	gateway_inventory_release(NULL);

	assert_int_equal(fsys_open_local(&fs, "/nonexistent/test_gateway"), 0);
	assert_int_equal(gateway_inventory_read(&f->inv, fs, NULL), MSGW_ENOTFOUND);
	assert_int_equal(f->inv.n, 0);
	assert_null(f->inv.v);
	fsys_free(fs);
}

/* ---- findings and analysis --------------------------------------------- */

static void test_codes(void **state)
{
	const char *const *p;
	size_t n = 0;

	(void)state;
	for (p = gateway_finding_codes; *p; p++, n++)
		assert_true(gateway_is_finding_code(*p));
	assert_int_equal(n, 5);
	assert_true(gateway_is_finding_code("target-diverged"));
	assert_false(gateway_is_finding_code("mailbox"));
	assert_false(gateway_is_finding_code(""));
	assert_false(gateway_is_finding_code("KEY-CHANGED"));
	assert_false(gateway_is_finding_code(NULL));
}

static void test_findings_add(void **state)
{
	struct fixture *f = *state;
	char code[] = "key-changed", what[] = "w";

	findings_add(&f->f, code, NULL, 0, 0, NULL, NULL);
	findings_add(&f->f, code, ID_A, 3, 99, what, "i");
	code[0] = 'X';
	what[0] = 'X';
	assert_int_equal(f->f.n, 2);
	assert_string_equal(f->f.v[0].code, "key-changed");
	assert_null(f->f.v[0].mailbox);
	assert_null(f->f.v[0].what);
	assert_string_equal(f->f.v[1].mailbox, ID_A);
	assert_string_equal(f->f.v[1].what, "w");
	assert_string_equal(f->f.v[1].instead, "i");
	assert_int_equal(f->f.v[1].messages, 3);
	assert_int_equal(f->f.v[1].bytes, 99);
	assert_false(f->f.v[1].forced);
	findings_release(&f->f);
	assert_int_equal(f->f.n, 0);
	findings_release(NULL);
}

static void test_mailbox_removed(void **state)
{
	struct fixture *f = *state;
	const struct finding *x;

	add_ok(&f->r, "Gateway.json", "{\"mailboxes\": [{\"id\": \"" ID_A "\"}]}");
	add_ok(&f->t, "Gateway.json",
	       "{\"mailboxes\": [{\"id\": \"" ID_A "\"}, {\"id\": \"" ID_B "\"}]}");
	inv_add(&f->inv, ID_A, 5, 500);
	inv_add(&f->inv, ID_B, 12, 3400);
	inv_add(&f->inv, ID_C, 0, 0); /* empty: nothing to lose */
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_int_equal(f->f.n, 1);
	x = only_finding(&f->f, "mailbox-removed");
	assert_string_equal(x->mailbox, ID_B);
	assert_int_equal(x->messages, 12);
	assert_int_equal(x->bytes, 3400);
	assert_false(x->forced);
	assert_string_equal(x->what, "12 messages in mailbox " ID_B " on the target would be "
				     "orphaned: the snapshot's configuration has no such mailbox");
	assert_string_equal(x->instead,
			    "let MailStore Server fetch the 12 messages in that mailbox "
			    "first (or re-create the mailbox on the source gateway), "
			    "then retry");
}

/* A store found by a mailbox-store pattern holds mail the configuration
 * never names (its records know mbx- ids only): no mailbox-removed for it,
 * whatever it holds, while a named store next to it still gets one. */
static void test_pattern_store_not_removed(void **state)
{
	struct fixture *f = *state;
	const struct finding *x;

	add_ok(&f->r, "Gateway.json", "{\"mailboxes\": []}");
	inv_add(&f->inv, "Stores/x1", 7, 700);
	inv_add(&f->inv, ID_B, 2, 20);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	x = only_finding(&f->f, "mailbox-removed");
	assert_string_equal(x->mailbox, ID_B);
}

static void test_mailbox_removed_singular(void **state)
{
	struct fixture *f = *state;

	inv_add(&f->inv, ID_B, 1, 10);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_string_equal(only_finding(&f->f, "mailbox-removed")->what,
			    "1 message in mailbox " ID_B " on the target would be orphaned: the "
			    "snapshot's configuration has no such mailbox");
}

static void test_presence_is_enough_for_removed(void **state)
{
	struct fixture *f = *state;

	add_ok(&f->r, "list.txt", ID_B "\n");
	inv_add(&f->inv, ID_B, 4, 10);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_no_findings(&f->f);
}

static void test_key_changed(void **state)
{
	struct fixture *f = *state;
	const struct finding *x;

	add_gateway_json(&f->r, "server", "23.1.0", "T0xEa2V5", "", 25);
	add_gateway_json(&f->t, "server", "23.1.0", "TkVXa2V5", "", 25);
	inv_add(&f->inv, ID_A, 7, 700);
	inv_add(&f->inv, ID_B, 2, 20);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_int_equal(f->f.n, 1);
	x = only_finding(&f->f, "key-changed");
	assert_string_equal(x->mailbox, ID_A);
	assert_int_equal(x->messages, 7);
	assert_int_equal(x->bytes, 700);
	assert_string_equal(x->what, "the key material of mailbox " ID_A " differs between the "
				     "snapshot and the target, which holds 7 messages for it: they "
				     "could never be decrypted again");
	assert_string_equal(x->instead, "let MailStore Server fetch the 7 messages first, then "
					"retry; or restore a snapshot taken before the password "
					"reset");
}

static void test_key_changed_needs_messages(void **state)
{
	struct fixture *f = *state;

	add_gateway_json(&f->r, "server", "23.1.0", "T0xEa2V5", "", 25);
	add_gateway_json(&f->t, "server", "23.1.0", "TkVXa2V5", "", 25);
	inv_add(&f->inv, ID_A, 0, 0);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_no_findings(&f->f);
	/* a key change with mail but no store folder at all: nothing to lose */
	gateway_inventory_release(&f->inv);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_no_findings(&f->f);
}

static void test_key_changed_singular(void **state)
{
	struct fixture *f = *state;

	add_ok(&f->r, "a.json", "{\"id\": \"" ID_A "\", \"k\": 1}");
	add_ok(&f->t, "a.json", "{\"id\": \"" ID_A "\", \"k\": 2}");
	inv_add(&f->inv, ID_A, 1, 1);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_contains(only_finding(&f->f, "key-changed")->what,
			"which holds 1 message for it: it could never be decrypted again");
	assert_contains(only_finding(&f->f, "key-changed")->instead, "fetch the 1 message first");
}

static void test_key_presence_only(void **state)
{
	struct fixture *f = *state;

	/* one side known by presence only: no finding, the notes say why */
	add_ok(&f->r, "a.json", "{\"id\": \"" ID_A "\", \"k\": 1}");
	add_ok(&f->t, "a.txt", ID_A);
	inv_add(&f->inv, ID_A, 3, 3);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	gateway_analyse(&f->f, &f->t, &f->r, &f->inv);
	assert_no_findings(&f->f);
	assert_int_equal(f->t.nnotes, 1);
}

static void test_proxy_mode(void **state)
{
	struct fixture *f = *state;
	const struct finding *x;

	add_ok(&f->r, "Gateway.json", "{\"mode\": \"proxy\"}");
	add_ok(&f->t, "Gateway.json", "{\"mode\": \"server\"}");
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	x = only_finding(&f->f, "proxy-mode");
	assert_null(x->mailbox);
	assert_int_equal(x->messages, 0);
	assert_string_equal(x->what, "the snapshot runs in POP3 proxy mode, where copying "
				     "configuration between gateways does not work the same way");
	assert_string_equal(x->instead, "configure proxy-mode gateways separately, or accept with "
					"--force=proxy-mode");
	findings_release(&f->f);
	gateway_analyse(&f->f, &f->t, &f->r, &f->inv);
	assert_contains(only_finding(&f->f, "proxy-mode")->what, "the target runs in POP3 proxy");
	findings_release(&f->f);
	gateway_analyse(&f->f, &f->r, &f->r, &f->inv);
	assert_contains(only_finding(&f->f, "proxy-mode")->what,
			"the snapshot and the target run in POP3 proxy");
	findings_release(&f->f);
	gateway_analyse(&f->f, &f->t, &f->t, &f->inv);
	assert_no_findings(&f->f);
}

static void test_version_mismatch(void **state)
{
	struct fixture *f = *state;
	const struct finding *x;

	add_ok(&f->r, "Gateway.json", "{\"version\": \"23.1.0\"}");
	add_ok(&f->t, "Gateway.json", "{\"version\": \"24.2.1\"}");
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	x = only_finding(&f->f, "version-mismatch");
	assert_null(x->mailbox);
	assert_string_equal(x->what, "the snapshot was taken from MailStore Gateway 23.1.0, the "
				     "target runs 24.2.1");
	assert_string_equal(x->instead, "upgrade the older gateway first so both run the same "
					"version, then retry");
	/* one side unknown: nothing to compare */
	findings_release(&f->f);
	gateway_records_release(&f->t);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_no_findings(&f->f);
}

static void test_safe_changes(void **state)
{
	struct fixture *f = *state;
	char *snap = gateway_json("server", "23.1.0", "cHViQQ==", "", 2525);
	char *a, *b, *c;

	/* the target: same keys, other descriptions, status, counters, port */
	add_gateway_json(&f->t, "server", "23.1.0",
			 "cHViQQ==", ", \"status\": \"Suspended\", \"messageCounter\": 77", 25);
	/* the snapshot: another description and port, and a new mailbox C */
	a = xasprintf("{\"id\": \"%s\", \"description\": \"new\"}", ID_C);
	b = strstr(snap, "\"mailboxes\": [");
	assert_non_null(b);
	b += strlen("\"mailboxes\": [");
	c = xasprintf("%.*s%s, %s", (int)(b - snap), snap, a, b);
	add_ok(&f->r, "Gateway.json", c);
	assert_int_equal(f->r.n, 3);
	inv_add(&f->inv, ID_A, 10, 100);
	inv_add(&f->inv, ID_B, 20, 200);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_no_findings(&f->f);
	free(snap);
	free(a);
	free(c);
}

static void test_analyse_appends(void **state)
{
	struct fixture *f = *state;

	findings_add(&f->f, "target-diverged", NULL, 0, 0, "w", "i");
	add_ok(&f->r, "Gateway.json", "{\"mode\": \"proxy\", \"version\": \"1\"}");
	add_ok(&f->t, "Gateway.json", "{\"mode\": \"server\", \"version\": \"2\"}");
	inv_add(&f->inv, ID_A, 1, 1);
	inv_add(&f->inv, ID_B, 1, 1);
	gateway_analyse(&f->f, &f->r, &f->t, &f->inv);
	assert_int_equal(f->f.n, 5);
	assert_string_equal(f->f.v[0].code, "target-diverged");
	assert_string_equal(f->f.v[1].mailbox, ID_A);
	assert_string_equal(f->f.v[2].mailbox, ID_B);
	assert_string_equal(f->f.v[3].code, "proxy-mode");
	assert_string_equal(f->f.v[4].code, "version-mismatch");
}

/* target-diverged ignores what the gateway changes itself, not admin edits */
static void test_config_differs(void **state)
{
	static const struct {
		const char *a, *b;
		bool differs;
	} cases[] = {
	    {"{\"x\":1}", "{\"x\":1}", false},
	    {"{\"m\":[{\"id\":\"a\",\"messageCounter\":1}]}",
	     "{\"m\":[{\"id\":\"a\",\"messageCounter\":7}]}", false},
	    {"{\"lastDelivery\":\"t1\",\"updatedAt\":1}",
	     "{\"lastDelivery\":\"t2\",\"updatedAt\":2}", false},
	    {"{\"x\":1,\n \"y\":2}", "{\"y\":2,\"x\":1}", false},
	    {"{\"description\":\"a\"}", "{\"description\":\"b\"}", true},
	    {"{\"status\":\"Active\"}", "{\"status\":\"Suspended\"}", true},
	    {"{\"publicKey\":\"k1\"}", "{\"publicKey\":\"k2\"}", true},
	    {"{\"ports\":{\"smtp\":25}}", "{\"ports\":{\"smtp\":2525}}", true},
	    {"plain text 1", "plain text 2", true},
	    {"{\"x\":1}", "{broken", true},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (gateway_config_differs(cases[i].a, strlen(cases[i].a), cases[i].b,
					   strlen(cases[i].b)) != cases[i].differs)
			fail_msg("case %zu: '%s' vs '%s'", i, cases[i].a, cases[i].b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sim_layout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_find_ignores_case, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_canonical_form, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_id_as_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_id_as_key_plain_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_top_level_array, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_escaped_strings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_volatile_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_fields_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_several_holders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_across_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json_beats_presence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mode_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_text_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ini_is_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binary_skipped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bom, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_presence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_reusable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inventory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inventory_missing_root, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_codes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_findings_add, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mailbox_removed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pattern_store_not_removed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mailbox_removed_singular, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_presence_is_enough_for_removed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_changed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_changed_needs_messages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_changed_singular, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_presence_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_proxy_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_version_mismatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_safe_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_analyse_appends, setup, teardown),
	    cmocka_unit_test(test_config_differs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
