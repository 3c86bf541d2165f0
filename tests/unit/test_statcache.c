/*
 * test_statcache: the per-gateway cache of file hashes by stat data.  A
 * hit needs every stat field to match (size, mtime, ctime, inode); an
 * entry whose mtime or ctime is within two seconds of the cache's clock is
 * never stored; the file survives save and open (mode 0600, odd paths),
 * keeps only what was used, and a damaged file is ignored, never trusted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "manifest.h"
#include "seal.h"
#include "statcache.h"
#include "util.h"
#include "test_util.h"

#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16]; /* dir/cache */
	struct statcache *c;
	struct manifest m;
	int64_t before, after; /* time() around statcache_open */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_statcache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, f->dir));
	snprintf(f->path, sizeof(f->path), "%s/cache", f->dir);
	manifest_init(&f->m);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	statcache_free(f->c);
	manifest_release(&f->m);
	test_rmtree(f->dir);
	free(f);
	return 0;
}

static void open_cache(struct fixture *f)
{
	statcache_free(f->c);
	f->c = NULL;
	f->before = (int64_t)time(NULL);
	assert_int_equal(statcache_open(&f->c, f->path), 0);
	assert_non_null(f->c);
	f->after = (int64_t)time(NULL);
}

/* An entry last changed age seconds before the cache was opened. */
static struct manifest_entry *entry(struct fixture *f, const char *path, int64_t age,
				    unsigned char fill)
{
	struct manifest_entry *e = manifest_add(&f->m, 'f', path);

	e->mode = 0644;
	e->size = 1234;
	e->ino = 42;
	e->mtime = f->before - age;
	e->mtime_nsec = 111;
	e->ctime = f->before - age;
	e->ctime_nsec = 222;
	memset(e->sha, fill, SHA256_LEN);
	return e;
}

/* Look a copy of e up with a clean hash; true on a hit with e's hash. */
static bool hit(struct statcache *c, const struct manifest_entry *e)
{
	struct manifest_entry probe = *e;

	memset(probe.sha, 0, SHA256_LEN);
	if (!statcache_lookup(c, &probe))
		return false;
	assert_memory_equal(probe.sha, e->sha, SHA256_LEN);
	return true;
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_missing_file_is_empty(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *e;

	open_cache(f);
	e = entry(f, "Gateway.json", 100, 0xaa);
	assert_false(hit(f->c, e));
	assert_int_equal(access(f->path, F_OK), -1); /* opening writes nothing */
}

static void test_hit_and_miss_on_change(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *e, probe;

	open_cache(f);
	e = entry(f, "Gateway.json", 100, 0xaa);
	statcache_store(f->c, e);
	assert_true(hit(f->c, e));

	/* every stat field counts */
	probe = *e;
	probe.size++;
	assert_false(hit(f->c, &probe));
	probe = *e;
	probe.mtime++;
	assert_false(hit(f->c, &probe));
	probe = *e;
	probe.mtime_nsec++;
	assert_false(hit(f->c, &probe));
	probe = *e;
	probe.ctime++;
	assert_false(hit(f->c, &probe));
	probe = *e;
	probe.ctime_nsec++;
	assert_false(hit(f->c, &probe));
	probe = *e;
	probe.ino++;
	assert_false(hit(f->c, &probe));
	probe = *e;
	probe.path = "gateway.json";
	assert_false(hit(f->c, &probe));
	/* the hash is what the cache supplies, not what it compares */
	probe = *e;
	memset(probe.sha, 0x55, SHA256_LEN);
	assert_true(statcache_lookup(f->c, &probe));
	assert_memory_equal(probe.sha, e->sha, SHA256_LEN);
}

static void test_update_entry(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *e;

	open_cache(f);
	e = entry(f, "a", 100, 0x01);
	statcache_store(f->c, e);
	e->size = 99;
	e->mtime -= 10;
	memset(e->sha, 0x02, SHA256_LEN);
	statcache_store(f->c, e);
	assert_true(hit(f->c, e));
	e->size = 1234;
	e->mtime += 10;
	assert_false(hit(f->c, e)); /* the old stat data is gone */
}

/* A file changed within the last two seconds could be rewritten again in
 * the same timestamp tick: never remember it. */
static void test_fresh_not_stored(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *now, *one, *future, *fresh_ctime, *old;

	open_cache(f);
	now = entry(f, "now", 0, 1);
	now->mtime = now->ctime = f->after;
	one = entry(f, "one-second", 0, 2);
	one->mtime = one->ctime = f->after - 1;
	future = entry(f, "future", 0, 3);
	future->mtime = future->ctime = f->after + 3600;
	fresh_ctime = entry(f, "fresh-ctime", 100, 4);
	fresh_ctime->ctime = f->after; /* chmod'ed or rewritten with an old mtime */
	old = entry(f, "old", 2, 5);
	statcache_store(f->c, now);
	statcache_store(f->c, one);
	statcache_store(f->c, future);
	statcache_store(f->c, fresh_ctime);
	statcache_store(f->c, old);
	assert_false(hit(f->c, now));
	assert_false(hit(f->c, one));
	assert_false(hit(f->c, future));
	assert_false(hit(f->c, fresh_ctime));
	assert_true(hit(f->c, old));

	/* and nothing of them reaches the file */
	assert_int_equal(statcache_save(f->c), 0);
	open_cache(f);
	assert_false(hit(f->c, now));
	assert_false(hit(f->c, fresh_ctime));
	assert_true(hit(f->c, old));
}

/* SFTP: no ctime, no inode, whole-second mtimes; the clock is the
 * gateway's (statcache_set_clock), which may be far from this host's. */
static void test_gateway_clock(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *racy, *safe, *probe;
	int64_t gw_now;

	open_cache(f);
	gw_now = f->before - 86400; /* the gateway's clock: a day behind */
	statcache_set_clock(f->c, gw_now);
	racy = entry(f, "racy", 0, 1);
	racy->mtime = gw_now - 1; /* within the granularity on the gateway */
	safe = entry(f, "safe", 0, 2);
	safe->mtime = gw_now - 2;
	racy->ctime = safe->ctime = 0;
	racy->ctime_nsec = safe->ctime_nsec = racy->mtime_nsec = safe->mtime_nsec = 0;
	racy->ino = safe->ino = 0;
	statcache_store(f->c, racy);
	statcache_store(f->c, safe);
	assert_false(hit(f->c, racy)); /* old by this host's clock: not stored */
	assert_true(hit(f->c, safe));
	/* size and mtime decide: another size misses */
	probe = entry(f, "safe", 0, 2);
	probe->mtime = safe->mtime;
	probe->mtime_nsec = probe->ctime = probe->ctime_nsec = 0;
	probe->ino = 0;
	probe->size = safe->size + 1;
	assert_false(statcache_lookup(f->c, probe));
}

static void test_save_and_reload(void **state)
{
	static const char *const names[] = {
	    "Gateway.json", "with space",    "new\nline",  "100%",
	    "tab\t",	    "caf\xc3\xa9/x", "deep/a/b/c",
	};
	struct fixture *f = *state;
	struct manifest_entry *e[7];
	struct stat st;
	size_t i;
	FILE *fp;
	char line[256];

	open_cache(f);
	for (i = 0; i < 7; i++) {
		e[i] = entry(f, names[i], 1000 + (int64_t)i, (unsigned char)(0x10 + i));
		e[i]->ino = 1000 + i;
		statcache_store(f->c, e[i]);
	}
	assert_int_equal(statcache_save(f->c), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	fp = fopen(f->path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_string_equal(line, "msgw-statcache 1\n");
	fclose(fp);

	open_cache(f);
	for (i = 0; i < 7; i++)
		if (!hit(f->c, e[i]))
			fail_msg("no hit for '%s' after reload", names[i]);
}

/* Entries neither looked up nor stored since open are dropped on save:
 * files that left the gateway do not linger. */
static void test_unused_dropped(void **state)
{
	struct fixture *f = *state;
	struct manifest_entry *a, *b;

	open_cache(f);
	a = entry(f, "a", 100, 1);
	b = entry(f, "b", 100, 2);
	statcache_store(f->c, a);
	statcache_store(f->c, b);
	assert_int_equal(statcache_save(f->c), 0);

	open_cache(f);
	assert_true(hit(f->c, a));
	assert_int_equal(statcache_save(f->c), 0);

	open_cache(f);
	assert_true(hit(f->c, a));
	assert_false(hit(f->c, b));
}

static void test_damaged_file_ignored(void **state)
{
	static const char *const damaged[] = {
	    "msgw-statcache 2\n",
	    "garbage\n",
	    "msgw-statcache 1\n42 1234 1 111 1 222 "
	    "0101010101010101010101010101010101010101010101010101010101010101 good\n"
	    "this line is damaged\n",
	    "msgw-statcache 1\n42 1234 1 111 1 222 0101 short-hash\n",
	    "msgw-statcache 1\n42 1234 1 111 1 222 "
	    "zz01010101010101010101010101010101010101010101010101010101010101 bad-hex\n",
	    "msgw-statcache 1\n42 1234 1 111 1 222 "
	    "0101010101010101010101010101010101010101010101010101010101010101 bad%zz\n",
	};
	struct fixture *f = *state;
	struct manifest_entry *good;
	size_t i;

	/* first, a well-formed file is read */
	write_text(f->path, "msgw-statcache 1\n42 1234 1 111 1 222 "
			    "0101010101010101010101010101010101010101010101010101010101010101 "
			    "good\n");
	open_cache(f);
	good = entry(f, "good", 0, 0x01);
	good->mtime = 1;
	good->ctime = 1;
	assert_true(hit(f->c, good));

	for (i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		write_text(f->path, damaged[i]);
		open_cache(f);
		if (hit(f->c, good))
			fail_msg("damaged cache %zu was trusted", i);
	}
	/* and a damaged cache is rebuilt on save */
	statcache_store(f->c, good);
	assert_int_equal(statcache_save(f->c), 0);
	open_cache(f);
	assert_true(hit(f->c, good));
}

/* Open f->path sealed with key (NULL: plain). */
static void open_keyed(struct fixture *f, const struct seal_key *key)
{
	statcache_free(f->c);
	f->c = NULL;
	f->before = (int64_t)time(NULL);
	assert_int_equal(statcache_open_sealed(&f->c, f->path, key), 0);
	f->after = (int64_t)time(NULL);
}

static struct seal_key *make_key(struct fixture *f, const char *name)
{
	struct seal_key *k = NULL;
	char *p = xasprintf("%s/%s", f->dir, name);

	assert_int_equal(seal_key_create(&k, p), 0);
	free(p);
	return k;
}

/* The whole file's bytes hold needle (len bytes) somewhere. */
static bool file_holds(const char *path, const void *needle, size_t len)
{
	char buf[1 << 16];
	FILE *fp = fopen(path, "rb");
	size_t n, i;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	for (i = 0; i + len <= n; i++)
		if (memcmp(buf + i, needle, len) == 0)
			return true;
	return false;
}

/* Sealed with a key: the file holds no hash in hex nor in binary, reopens
 * under the same key with the same hits, and is discarded, never trusted,
 * under another key, without a key, when damaged, or when it was written
 * in clear; saving then rewrites it sealed. */
static void test_sealed_cache(void **state)
{
	struct fixture *f = *state;
	struct seal_key *k1 = make_key(f, "k1"), *k2 = make_key(f, "k2");
	struct manifest_entry *e;
	char hex[2 * SHA256_LEN + 1];

	open_keyed(f, k1);
	e = entry(f, "Certificates/server.key", 100, 0xab);
	statcache_store(f->c, e);
	assert_int_equal(statcache_save(f->c), 0);
	hex_encode(hex, e->sha, SHA256_LEN);
	assert_false(file_holds(f->path, hex, strlen(hex)));
	assert_false(file_holds(f->path, e->sha, SHA256_LEN));
	assert_false(file_holds(f->path, "server.key", 10));
	assert_true(file_holds(f->path, "msgw-sealed 1 ", 14));

	open_keyed(f, k1);
	assert_true(hit(f->c, e));
	open_keyed(f, k2); /* another key */
	assert_false(hit(f->c, e));
	open_keyed(f, NULL); /* a plain repository's cache */
	assert_false(hit(f->c, e));

	/* a plain file under the key: discarded, then written sealed */
	write_text(f->path, "msgw-statcache 1\n");
	open_keyed(f, NULL);
	statcache_store(f->c, e);
	assert_int_equal(statcache_save(f->c), 0);
	assert_true(file_holds(f->path, hex, strlen(hex)));
	open_keyed(f, k1);
	assert_false(hit(f->c, e));
	statcache_store(f->c, e);
	assert_int_equal(statcache_save(f->c), 0);
	assert_false(file_holds(f->path, hex, strlen(hex)));

	{ /* a flipped byte in the sealed file */
		FILE *fp = fopen(f->path, "r+b");
		int ch;

		assert_non_null(fp);
		assert_int_equal(fseek(fp, -5, SEEK_END), 0);
		ch = fgetc(fp);
		assert_int_equal(fseek(fp, -5, SEEK_END), 0);
		fputc(ch ^ 1, fp);
		fclose(fp);
	}
	open_keyed(f, k1);
	assert_false(hit(f->c, e));
	assert_string_equal(err_last(), "unknown error"); /* discarded quietly */
	seal_key_free(k1);
	seal_key_free(k2);
}

static void test_save_error(void **state)
{
	struct fixture *f = *state;
	struct statcache *c = NULL;
	char *p = xasprintf("%s/no/such/dir/cache", f->dir);

	assert_int_equal(statcache_open(&c, p), 0);
	assert_int_equal(statcache_save(c), MSGW_ERR);
	assert_non_null(strstr(err_last(), "no/such/dir/cache"));
	statcache_free(c);
	statcache_free(NULL);
	free(p);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_missing_file_is_empty), T(test_hit_and_miss_on_change),
	    T(test_update_entry),	   T(test_fresh_not_stored),
	    T(test_save_and_reload),	   T(test_unused_dropped),
	    T(test_damaged_file_ignored),  T(test_save_error),
	    T(test_gateway_clock),	   T(test_sealed_cache),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
