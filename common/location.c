/*
 * location: ssh://[USER@]HOST[:PORT]/PATH, split and checked.  The
 * authority ends at the first '/'; the user is everything before its last
 * '@' (Windows domain accounts may hold an '@' themselves).  Host names are
 * letters, digits, '-', '_' and '.'; IPv6 literals go in brackets and may
 * carry a zone ("%eth0").  What this does not do: percent-decoding,
 * scp-like "host:path" forms, passwords.
 */
#include "location.h"
#include "err.h"
#include "util.h"

#include <ctype.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int bad(struct location *out, const char *url, const char *why)
{
	location_release(out);
	return err_set(MSGW_ECONFIG, "bad ssh location '%s': %s", url, why);
}

int location_is_ssh(const char *s)
{
	return s && strncmp(s, "ssh://", 6) == 0;
}

int location_is_windows(const char *path)
{
	return path && path[0] == '/' && isalpha((unsigned char)path[1]) && path[2] == ':' &&
	       (path[3] == '/' || path[3] == '\0');
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int hostname_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '-' || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-._", s[i]))
			return 0;
	return 1;
}

/* The inside of [...]: hex digits, ':' and '.', at least one ':', then an
 * optional "%zone". */
static int ipv6_ok(const char *s, size_t n)
{
	size_t i, colons = 0;

	for (i = 0; i < n && s[i] != '%'; i++) {
		if (s[i] == ':')
			colons++;
		else if (!isxdigit((unsigned char)s[i]) && s[i] != '.')
			return 0;
	}
	if (colons < 2)
		return 0;
	if (i < n) {
		if (i + 1 == n)
			return 0;
		for (i++; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && !strchr("-._", s[i]))
				return 0;
	}
	return 1;
}

static int port_parse(int *out, const char *s, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = (int)v;
	return 0;
}

static char *current_user(void)
{
	struct passwd *pw = getpwuid(geteuid());
	const char *env;

	if (pw && pw->pw_name && *pw->pw_name)
		return xstrdup(pw->pw_name);
	env = getenv("USER");
	return env && *env ? xstrdup(env) : NULL;
}

/* Split "HOST[:PORT]" or "[V6][:PORT]" (n bytes at s) into out. */
static int parse_hostport(struct location *out, const char *url, const char *s, size_t n)
{
	const char *end = s + n, *h, *after;
	size_t hlen;

	if (n && *s == '[') {
		const char *close = memchr(s, ']', n);

		if (!close)
			return bad(out, url, "missing ']' after IPv6 address");
		h = s + 1;
		hlen = (size_t)(close - h);
		if (!ipv6_ok(h, hlen))
			return bad(out, url, "bad IPv6 address");
		after = close + 1;
	} else {
		const char *colon = memchr(s, ':', n);

		h = s;
		after = colon ? colon : end;
		hlen = (size_t)(after - h);
		if (hlen == 0)
			return bad(out, url, "empty host");
		if (!hostname_ok(h, hlen))
			return bad(out, url, "bad host name");
	}
	out->host = xstrndup(h, hlen);
	out->port = LOCATION_DEFAULT_PORT;
	if (after == end)
		return 0;
	if (*after != ':')
		return bad(out, url, "unexpected characters after the host");
	if (port_parse(&out->port, after + 1, (size_t)(end - after - 1)))
		return bad(out, url, "bad port (expected 1 to 65535)");
	return 0;
}

int location_parse(struct location *out, const char *url)
{
	const char *auth, *slash, *at = NULL, *p;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!location_is_ssh(url))
		return bad(out, url ? url : "", "expected ssh://[USER@]HOST[:PORT]/PATH");
	if (has_control(url))
		return bad(out, url, "control characters are not allowed");
	auth = url + 6;
	slash = strchr(auth, '/');
	if (!slash)
		return bad(out, url, "missing path");
	for (p = auth; p < slash; p++)
		if (*p == '@')
			at = p;
	if (at) {
		if (at == auth)
			return bad(out, url, "empty user name");
		if (memchr(auth, ':', (size_t)(at - auth)))
			return bad(out, url, "passwords in the URL are not supported");
		if (memchr(auth, ' ', (size_t)(at - auth)))
			return bad(out, url, "bad user name");
		out->user = xstrndup(auth, (size_t)(at - auth));
	}
	rc = parse_hostport(out, url, at ? at + 1 : auth, (size_t)(slash - (at ? at + 1 : auth)));
	if (rc)
		return rc;
	len = strlen(slash);
	while (len > 1 && slash[len - 1] == '/' && !(len == 4 && location_is_windows(slash)))
		len--;
	if (len <= 1)
		return bad(out, url, "missing path");
	out->path = xstrndup(slash, len);
	if (!out->user) {
		out->user = current_user();
		if (!out->user)
			return bad(out, url, "no user given and the current user has no name");
	}
	return 0;
}

void location_release(struct location *loc)
{
	if (!loc)
		return;
	free(loc->user);
	free(loc->host);
	free(loc->path);
	memset(loc, 0, sizeof(*loc));
}

static int is_v6(const char *host)
{
	return strchr(host, ':') != NULL;
}

char *location_name(const struct location *loc)
{
	return xasprintf(is_v6(loc->host) ? "%s@[%s]:%d" : "%s@%s:%d", loc->user, loc->host,
			 loc->port);
}

char *location_known_hosts_name(const char *host, int port)
{
	if (port == LOCATION_DEFAULT_PORT)
		return xstrdup(host);
	return xasprintf("[%s]:%d", host, port);
}
