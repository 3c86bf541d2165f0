/*
 * test_sftp_pipe: the parser of SFTP replies (sftp_pipe_parse,
 * sftp_pipe_next_name), whose input is the gateway's and untrusted: every
 * reply type it takes, and a refusal for every length that does not fit.
 * The pipelined requests themselves run against a real sshd in t4900.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fsys/sftp_pipe.h"

#include <string.h>

struct pkt {
	unsigned char b[512];
	size_t n;
};

static void u8(struct pkt *p, uint8_t v)
{
	p->b[p->n++] = v;
}

static void u32(struct pkt *p, uint32_t v)
{
	u8(p, (uint8_t)(v >> 24));
	u8(p, (uint8_t)(v >> 16));
	u8(p, (uint8_t)(v >> 8));
	u8(p, (uint8_t)v);
}

static void str(struct pkt *p, const char *s)
{
	u32(p, (uint32_t)strlen(s));
	memcpy(p->b + p->n, s, strlen(s));
	p->n += strlen(s);
}

/* flags SIZE|UIDGID|PERMISSIONS|ACMODTIME */
static void attrs(struct pkt *p, uint32_t size, uint32_t mode, uint32_t mtime)
{
	u32(p, 1 | 2 | 4 | 8);
	u32(p, 0);
	u32(p, size);
	u32(p, 1000);
	u32(p, 1001);
	u32(p, mode);
	u32(p, 1);
	u32(p, mtime);
}

/* every shorter prefix of p must be refused */
static void assert_prefixes_refused(const struct pkt *p)
{
	struct sftp_reply r;
	size_t n;

	for (n = 0; n < p->n; n++)
		assert_int_equal(sftp_pipe_parse(&r, p->b, n), -1);
}

static void test_status_handle_data(void **state)
{
	struct sftp_reply r;
	struct pkt p = {0};

	(void)state;
	u8(&p, 101), u32(&p, 7), u32(&p, 1), str(&p, "End of file"), str(&p, "");
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), 0);
	assert_int_equal(r.type, 101);
	assert_int_equal(r.id, 7);
	assert_int_equal(r.status, 1);

	memset(&p, 0, sizeof(p));
	u8(&p, 102), u32(&p, 8), str(&p, "h1");
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), 0);
	assert_int_equal(r.str_len, 2);
	assert_memory_equal(r.str, "h1", 2);
	assert_prefixes_refused(&p);

	memset(&p, 0, sizeof(p));
	u8(&p, 103), u32(&p, 9), str(&p, "hello");
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), 0);
	assert_int_equal(r.str_len, 5);
	assert_ptr_equal(r.str, p.b + 1 + 4 + 4);
	assert_prefixes_refused(&p);
}

static void test_attrs(void **state)
{
	struct sftp_reply r;
	struct pkt p = {0};

	(void)state;
	u8(&p, 105), u32(&p, 10), attrs(&p, 1234, 0100640, 1700000000);
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), 0);
	assert_int_equal(r.attrs.filesize, 1234);
	assert_int_equal(r.attrs.permissions, 0100640);
	assert_int_equal(r.attrs.mtime, 1700000000);
	assert_int_equal(r.attrs.uid, 1000);
	assert_int_equal(r.attrs.gid, 1001);
	assert_prefixes_refused(&p);

	/* extended pairs are skipped, but must fit */
	memset(&p, 0, sizeof(p));
	u8(&p, 105), u32(&p, 11), u32(&p, 0x80000000u), u32(&p, 2);
	str(&p, "a@b"), str(&p, "v"), str(&p, "c@d"), str(&p, "w");
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), 0);
	assert_prefixes_refused(&p);
}

static void test_names(void **state)
{
	const unsigned char *name;
	LIBSSH2_SFTP_ATTRIBUTES a;
	struct sftp_reply r;
	struct pkt p = {0};
	uint32_t len;

	(void)state;
	u8(&p, 104), u32(&p, 12), u32(&p, 2);
	str(&p, "."), str(&p, "drwx ."), attrs(&p, 0, 040755, 5);
	str(&p, "Gateway.json"), str(&p, "-rw Gateway.json"), attrs(&p, 42, 0100600, 6);
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), 0);
	assert_int_equal(r.count, 2);
	assert_int_equal(sftp_pipe_next_name(&r, &name, &len, &a), 0);
	assert_int_equal(len, 1);
	assert_int_equal(sftp_pipe_next_name(&r, &name, &len, &a), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(name, "Gateway.json", 12);
	assert_int_equal(a.filesize, 42);
	assert_int_equal(r.rest_len, 0);
	/* a count larger than what follows: the next entry does not fit */
	assert_int_equal(sftp_pipe_next_name(&r, &name, &len, &a), -1);
}

static void test_refused(void **state)
{
	struct sftp_reply r;
	struct pkt p = {0};

	(void)state;
	/* a handle longer than SFTP allows (256) */
	u8(&p, 102), u32(&p, 1), u32(&p, 300);
	memset(p.b + p.n, 'h', 300 > sizeof(p.b) - p.n ? 0 : 300);
	p.n += 300;
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), -1);
	/* a string claiming more than the packet holds */
	memset(&p, 0, sizeof(p));
	u8(&p, 103), u32(&p, 2), u32(&p, 0xffffffffu), str(&p, "x");
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), -1);
	/* an unknown type */
	memset(&p, 0, sizeof(p));
	u8(&p, 200), u32(&p, 3);
	assert_int_equal(sftp_pipe_parse(&r, p.b, p.n), -1);
	/* empty */
	assert_int_equal(sftp_pipe_parse(&r, p.b, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_handle_data),
	    cmocka_unit_test(test_attrs),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
