/*
 * location: parsing the ssh:// URLs that name a gateway's data directory or
 * a repository remote: ssh://[USER@]HOST[:PORT]/PATH.  HOST may be an IPv6
 * literal in brackets (ssh://u@[::1]:2222/p); PATH is kept exactly as given
 * (after the host), so a Windows path "/C:/ProgramData/MailStore/Gateway"
 * is the SFTP path Win32-OpenSSH expects.  No percent-decoding is done:
 * control characters are refused instead.  Depends on err and util only.
 */
#ifndef MSGW_LOCATION_H
#define MSGW_LOCATION_H

#define LOCATION_DEFAULT_PORT 22

struct location {
	char *user; /* from the URL, else the current user's login name */
	char *host; /* without the brackets of an IPv6 literal */
	int port;   /* 1..65535, default 22 */
	char *path; /* starts with '/'; trailing slashes removed ("/C:/" kept) */
};

/*
 * Parse url into out (released with location_release).  Returns 0, or
 * MSGW_ECONFIG with "bad ssh location 'URL': reason" (not an ssh:// URL,
 * empty user or host, a password, a bad port, a missing path, control
 * characters); out is then zeroed.
 */
int location_parse(struct location *out, const char *url);

void location_release(struct location *loc);

/* Whether s starts with "ssh://". */
int location_is_ssh(const char *s);

/* Whether path looks like a Windows drive path ("/C:/..." or "/C:"). */
int location_is_windows(const char *path);

/* "user@host:port" ("user@[::1]:port" for IPv6) for messages; caller frees. */
char *location_name(const struct location *loc);

/* The name known_hosts uses: "host" on port 22, else "[host]:port"; caller
 * frees. */
char *location_known_hosts_name(const char *host, int port);

#endif
