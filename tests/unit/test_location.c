/*
 * test_location: location_parse() on ssh:// URLs: users (given, defaulted
 * to the current user, with an '@' of a Windows domain account), ports,
 * IPv6 literals, Windows drive paths, trailing slashes, and every kind of
 * bad input with its message; and the names built for messages and
 * known_hosts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "location.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct good {
	const char *url;
	const char *user; /* NULL: the current user */
	const char *host;
	int port;
	const char *path;
};

static const struct good goods[] = {
    {"ssh://backup@127.0.0.1:2222/srv/gw", "backup", "127.0.0.1", 2222, "/srv/gw"},
    {"ssh://backup@msgw1.example.com/var/lib/gw", "backup", "msgw1.example.com", 22, "/var/lib/gw"},
    {"ssh://msgw1/srv/gw", NULL, "msgw1", 22, "/srv/gw"},
    {"ssh://msgw1:22/srv/gw", NULL, "msgw1", 22, "/srv/gw"},
    {"ssh://u@h:1/p", "u", "h", 1, "/p"},
    {"ssh://u@h:65535/p", "u", "h", 65535, "/p"},
    {"ssh://u@h:00022/p", "u", "h", 22, "/p"},
    {"ssh://u@[::1]:2222/p", "u", "::1", 2222, "/p"},
    {"ssh://u@[::1]/p", "u", "::1", 22, "/p"},
    {"ssh://[2001:db8::10]/srv", NULL, "2001:db8::10", 22, "/srv"},
    {"ssh://u@[fe80::1%eth0]:22/p", "u", "fe80::1%eth0", 22, "/p"},
    {"ssh://u@[::ffff:192.0.2.1]:2200/p", "u", "::ffff:192.0.2.1", 2200, "/p"},
    {"ssh://backup@msgw1/C:/ProgramData/MailStore/Gateway", "backup", "msgw1", 22,
     "/C:/ProgramData/MailStore/Gateway"},
    {"ssh://backup@msgw1:2222/C:/ProgramData/MailStore/Gateway/", "backup", "msgw1", 2222,
     "/C:/ProgramData/MailStore/Gateway"},
    {"ssh://backup@msgw1/D:/", "backup", "msgw1", 22, "/D:/"},
    {"ssh://backup@msgw1/D://", "backup", "msgw1", 22, "/D:/"},
    {"ssh://u@h/srv/gw///", "u", "h", 22, "/srv/gw"},
    {"ssh://u@h//srv/gw", "u", "h", 22, "//srv/gw"},
    {"ssh://u@h/Program Files/x", "u", "h", 22, "/Program Files/x"},
    {"ssh://admin@corp.example@msgw1/p", "admin@corp.example", "msgw1", 22, "/p"},
    {"ssh://svc-backup.01_x@gw_1.example-net.org/p", "svc-backup.01_x", "gw_1.example-net.org", 22,
     "/p"},
};

struct bad {
	const char *url;
	const char *reason;
};

static const struct bad bads[] = {
    {"", "expected ssh://[USER@]HOST[:PORT]/PATH"},
    {"/srv/gw", "expected ssh://[USER@]HOST[:PORT]/PATH"},
    {"sftp://u@h/p", "expected ssh://[USER@]HOST[:PORT]/PATH"},
    {"SSH://u@h/p", "expected ssh://[USER@]HOST[:PORT]/PATH"},
    {"ssh:/u@h/p", "expected ssh://[USER@]HOST[:PORT]/PATH"},
    {"ssh://", "missing path"},
    {"ssh://host", "missing path"},
    {"ssh://u@host:2222", "missing path"},
    {"ssh://host/", "missing path"},
    {"ssh://host///", "missing path"},
    {"ssh:///srv/gw", "empty host"},
    {"ssh://u@/p", "empty host"},
    {"ssh://u@:22/p", "empty host"},
    {"ssh://@host/p", "empty user name"},
    {"ssh://u:secret@host/p", "passwords in the URL are not supported"},
    {"ssh://u v@host/p", "bad user name"},
    {"ssh://u@host:/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@host:0/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@host:65536/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@host:123456/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@host:22x/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@host:-1/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@host:+22/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@host:2:2/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@ho st/p", "bad host name"},
    {"ssh://u@-host/p", "bad host name"},
    {"ssh://u@.host/p", "bad host name"},
    {"ssh://u@ho%st/p", "bad host name"},
    {"ssh://u@::1/p", "empty host"},
    {"ssh://u@[::1/p", "missing ']' after IPv6 address"},
    {"ssh://u@[]/p", "bad IPv6 address"},
    {"ssh://u@[zz::1]/p", "bad IPv6 address"},
    {"ssh://u@[127.0.0.1]/p", "bad IPv6 address"},
    {"ssh://u@[::1%]/p", "bad IPv6 address"},
    {"ssh://u@[::1]x/p", "unexpected characters after the host"},
    {"ssh://u@[::1]:0/p", "bad port (expected 1 to 65535)"},
    {"ssh://u@host/p\n", "control characters are not allowed"},
    {"ssh://u@host/a\tb", "control characters are not allowed"},
    {"ssh://u@host/a\x7f", "control characters are not allowed"},
    {"ssh://u\x01@host/p", "control characters are not allowed"},
};

static char *current_user(void)
{
	struct passwd *pw = getpwuid(geteuid());

	assert_non_null(pw);
	return pw->pw_name;
}

static void test_good(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(goods); i++) {
		const struct good *g = &goods[i];
		struct location loc;
		int rc = location_parse(&loc, g->url);

		if (rc)
			fail_msg("'%s': %s", g->url, err_last());
		assert_string_equal(loc.user, g->user ? g->user : current_user());
		assert_string_equal(loc.host, g->host);
		assert_int_equal(loc.port, g->port);
		assert_string_equal(loc.path, g->path);
		location_release(&loc);
		assert_null(loc.user);
	}
}

static void test_bad(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bads); i++) {
		const struct bad *b = &bads[i];
		struct location loc;
		char want[512];
		int rc = location_parse(&loc, b->url);

		if (rc != MSGW_ECONFIG)
			fail_msg("'%s' was accepted (host '%s', path '%s')", b->url,
				 loc.host ? loc.host : "", loc.path ? loc.path : "");
		snprintf(want, sizeof(want), "bad ssh location '%s': %s", b->url, b->reason);
		assert_string_equal(err_last(), want);
		assert_null(loc.user);
		assert_null(loc.host);
		assert_null(loc.path);
		assert_int_equal(loc.port, 0);
	}
}

static void test_null_url(void **state)
{
	struct location loc;

	(void)state;
	assert_int_equal(location_parse(&loc, NULL), MSGW_ECONFIG);
	assert_string_equal(err_last(),
			    "bad ssh location '': expected ssh://[USER@]HOST[:PORT]/PATH");
}

static void test_is_ssh(void **state)
{
	(void)state;
	assert_true(location_is_ssh("ssh://h/p"));
	assert_false(location_is_ssh("/srv/gw"));
	assert_false(location_is_ssh("ssh:/h"));
	assert_false(location_is_ssh(NULL));
}

static void test_is_windows(void **state)
{
	(void)state;
	assert_true(location_is_windows("/C:/ProgramData/MailStore/Gateway"));
	assert_true(location_is_windows("/d:/"));
	assert_true(location_is_windows("/Z:"));
	assert_false(location_is_windows("/srv/gw"));
	assert_false(location_is_windows("/C/ProgramData"));
	assert_false(location_is_windows("/CC:/x"));
	assert_false(location_is_windows("/1:/x"));
	assert_false(location_is_windows("C:/x"));
	assert_false(location_is_windows("/C:x"));
	assert_false(location_is_windows(NULL));
}

static void check_name(const char *url, const char *want)
{
	struct location loc;
	char *name;

	assert_int_equal(location_parse(&loc, url), 0);
	name = location_name(&loc);
	assert_string_equal(name, want);
	free(name);
	location_release(&loc);
}

static void test_name(void **state)
{
	(void)state;
	check_name("ssh://backup@127.0.0.1:2222/p", "backup@127.0.0.1:2222");
	check_name("ssh://backup@gw/p", "backup@gw:22");
	check_name("ssh://u@[::1]:2222/p", "u@[::1]:2222");
	check_name("ssh://u@[fe80::1%eth0]/p", "u@[fe80::1%eth0]:22");
}

static void check_kh(const char *host, int port, const char *want)
{
	char *name = location_known_hosts_name(host, port);

	assert_string_equal(name, want);
	free(name);
}

static void test_known_hosts_name(void **state)
{
	(void)state;
	check_kh("msgw1.example.com", 22, "msgw1.example.com");
	check_kh("127.0.0.1", 2222, "[127.0.0.1]:2222");
	check_kh("::1", 22, "::1");
	check_kh("::1", 2222, "[::1]:2222");
}

static void test_release_null(void **state)
{
	struct location loc = {0};

	(void)state;
	location_release(NULL);
	location_release(&loc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_null_url),
	    cmocka_unit_test(test_is_ssh),
	    cmocka_unit_test(test_is_windows),
	    cmocka_unit_test(test_name),
	    cmocka_unit_test(test_known_hosts_name),
	    cmocka_unit_test(test_release_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
