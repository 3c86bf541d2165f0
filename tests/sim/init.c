/*
 * init.c: `msgw-sim init`, which lays out a fresh gateway data directory:
 * Certificates/gateway.pem (a fake, host-specific certificate), two text
 * templates, an empty Logs/, one empty store per mailbox and Gateway.json,
 * written last so a half-made directory never looks configured.  It prints
 * "<id> <password>" per mailbox; the passwords are stored nowhere else.
 * With --seed every random choice repeats, so two inits with the same seed
 * give byte-identical trees (the creation dates are then 2024-01-01, or
 * SOURCE_DATE_EPOCH).
 */
#include <dirent.h>
#include <errno.h>

#include "sim.h"

#define CERT_BYTES 720 /* 960 base64 characters, 15 lines of 64 */

/* Parsed and checked init options. */
struct init_args {
	const char *dir;
	const char *domain;
	const char *version;
	const char *mode;
	long mailboxes;
	long console_port;
	long pop3_port;
};

static const char notification_template[] =
    "Subject: New journal mail for {mailbox}\n"
    "\n"
    "MailStore Gateway at {domain} received {count} new message(s) for\n"
    "{mailbox}@{domain}.  Retrieve them with MailStore Server's journal profile.\n";

static const char bounce_template[] =
    "Subject: Undeliverable: {subject}\n"
    "\n"
    "MailStore Gateway could not deliver your message to {recipient}:\n"
    "{reason}\n";

static int check_args(const struct sim_opts *o, struct init_args *a)
{
	a->dir = o->args[0];
	a->domain = o->domain;
	a->version = o->version ? o->version : "23.1.0";
	a->mode = o->mode ? o->mode : "server";
	a->console_port = 8450;
	a->pop3_port = 110;
	if (!a->domain || !*a->domain)
		return sim_usage_error(o, "init needs --domain");
	if (!o->mailboxes)
		return sim_usage_error(o, "init needs --mailboxes");
	if (sim_parse_long(o->mailboxes, 0, 1000, &a->mailboxes))
		return sim_usage_error(o, "--mailboxes must be a number from 0 to 1000");
	if (o->console_port && sim_parse_long(o->console_port, 1, 65535, &a->console_port))
		return sim_usage_error(o, "--console-port must be a number from 1 to 65535");
	if (o->pop3_port && sim_parse_long(o->pop3_port, 1, 65535, &a->pop3_port))
		return sim_usage_error(o, "--pop3-port must be a number from 1 to 65535");
	if (strcmp(a->mode, "server") != 0 && strcmp(a->mode, "proxy") != 0)
		return sim_usage_error(o, "--mode must be 'server' or 'proxy'");
	if (!*a->version)
		return sim_usage_error(o, "--version must not be empty");
	return -1;
}

/* The directory may be missing or empty; anything else is refused. */
static int check_dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d && errno == ENOENT)
		return 0;
	if (!d) {
		sim_seterr("cannot use '%s': %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	if (!empty) {
		sim_seterr("'%s' exists and is not empty", dir);
		return -1;
	}
	return 0;
}

static json_t *make_ports(long console, long pop3)
{
	json_t *p = json_pack("{s:i, s:i, s:i, s:I, s:I}", "smtp", 25, "smtps", 465, "submission",
			      587, "pop3", (json_int_t)pop3, "console", (json_int_t)console);

	if (!p)
		sim_seterr("cannot build the configuration: out of memory");
	return p;
}

static json_t *make_root(const struct init_args *a)
{
	json_t *ports = make_ports(a->console_port, a->pop3_port);
	json_t *root;

	if (!ports)
		return NULL;
	root = json_pack("{s:s, s:s, s:s, s:s, s:o, s:[]}", "product", "MailStore Gateway",
			 "version", a->version, "domain", a->domain, "mode", a->mode, "ports",
			 ports, "mailboxes");
	if (!root)
		sim_seterr("cannot build the configuration: out of memory or invalid UTF-8");
	return root;
}

static int write_text(const char *dir, const char *name, const char *text)
{
	char *path = sim_strdupf("%s/%s", dir, name);
	int rc = sim_write_atomic(path, text, strlen(text), 0644);

	free(path);
	return rc;
}

static int write_certificate(const char *dir)
{
	unsigned char bin[CERT_BYTES];
	char *b64, *pem, *p;
	size_t n;
	int rc;

	sim_rng_bytes(bin, sizeof(bin));
	b64 = sim_b64(bin, sizeof(bin));
	n = strlen(b64);
	pem = sim_xmalloc(n + n / 64 + 64);
	p = pem + snprintf(pem, 32, "-----BEGIN CERTIFICATE-----\n");
	for (size_t i = 0; i < n; i += 64) {
		size_t len = n - i < 64 ? n - i : 64;

		memcpy(p, b64 + i, len);
		p += len;
		*p++ = '\n';
	}
	snprintf(p, 32, "-----END CERTIFICATE-----\n");
	rc = write_text(dir, "Certificates/gateway.pem", pem);
	free(b64);
	free(pem);
	return rc;
}

static int make_layout(const char *dir)
{
	char *certs = sim_strdupf("%s/Certificates", dir);
	char *templates = sim_strdupf("%s/Templates", dir);
	char *logs = sim_strdupf("%s/Logs", dir);
	int rc = -1;

	if (sim_mkdirs(certs) || sim_mkdirs(templates) || sim_mkdirs(logs))
		goto cleanup;
	if (write_certificate(dir) ||
	    write_text(dir, "Templates/notification.txt", notification_template) ||
	    write_text(dir, "Templates/bounce.txt", bounce_template))
		goto cleanup;
	rc = 0;
cleanup:
	free(certs);
	free(templates);
	free(logs);
	return rc;
}

/* Adds count mailboxes to the document; their passwords go to pw. */
static int add_mailboxes(const struct sim_gw *gw, long count, char (*pw)[SIM_PASSWORD_LEN + 1])
{
	json_t *list = json_object_get(gw->root, "mailboxes");

	for (long i = 0; i < count; i++) {
		char *desc = sim_strdupf("Journal mailbox %ld", i + 1);
		json_t *m = sim_mailbox_new(desc, pw[i]);
		char *store;
		int rc;

		free(desc);
		if (!m || json_array_append_new(list, m)) {
			if (m)
				sim_seterr("cannot add a mailbox: out of memory");
			return -1;
		}
		store = sim_store_path(gw, sim_mbx_str(m, "id"));
		rc = sim_mkdirs(store);
		free(store);
		if (rc)
			return -1;
	}
	return 0;
}

static void print_mailboxes(const struct sim_gw *gw, char (*pw)[SIM_PASSWORD_LEN + 1])
{
	json_t *list = json_object_get(gw->root, "mailboxes");

	for (size_t i = 0; i < json_array_size(list); i++)
		printf("%s %s\n", sim_mbx_str(json_array_get(list, i), "id"), pw[i]);
}

static int build(const struct init_args *a, char (*pw)[SIM_PASSWORD_LEN + 1])
{
	struct sim_gw gw = {NULL, NULL, NULL};
	int rc = -1;

	gw.dir = sim_clean_dir(a->dir);
	gw.path = sim_strdupf("%s/%s", gw.dir, SIM_CONFIG);
	gw.root = make_root(a);
	if (!gw.root || check_dir_empty(gw.dir) || sim_mkdirs(gw.dir))
		goto cleanup;
	if (add_mailboxes(&gw, a->mailboxes, pw) || make_layout(gw.dir) || sim_gw_save(&gw))
		goto cleanup;
	print_mailboxes(&gw, pw);
	rc = 0;
cleanup:
	sim_gw_release(&gw);
	return rc;
}

int sim_cmd_init(const struct sim_opts *o)
{
	struct init_args a;
	char(*pw)[SIM_PASSWORD_LEN + 1];
	size_t pw_size;
	int rc = check_args(o, &a);

	if (rc >= 0)
		return rc;
	sim_rng_seed(o->seed);
	pw_size = sizeof(*pw) * (size_t)(a.mailboxes + 1);
	pw = sim_xmalloc(pw_size);
	rc = build(&a, pw);
	sodium_memzero(pw, pw_size);
	free(pw);
	return rc ? sim_fail() : SIM_EXIT_OK;
}
