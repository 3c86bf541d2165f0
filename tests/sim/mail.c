/*
 * mail.c: journal mail in and out of a mailbox store, standing in for SMTP
 * delivery and POP3 retrieval.  `deliver` seals each message to the
 * mailbox's public key from Gateway.json (crypto_box_seal) and writes it as
 * DIR/<mailbox id>/<uuid>.msg.  `fetch` unlocks the private key with the
 * mailbox password, opens each message, prints "<uuid> <subject>" and
 * removes it.  A message sealed to other key material than the current
 * configuration's stays where it is and is reported: that is the silent
 * mail loss a careless configuration copy causes on a real gateway.
 */
#include <errno.h>
#include <unistd.h>

#include "sim.h"

#define MAX_DELIVER 100000L

/* One message's plaintext, as a journal report would look. */
static char *compose(const char *domain, const char *id, const char *uuid, long k)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	if (!gmtime_r(&now, &tm) ||
	    !strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm))
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
	return sim_strdupf("From: journal@%s\n"
			   "To: %s@%s\n"
			   "Subject: message %ld\n"
			   "Message-Id: <%s@%s>\n"
			   "Date: %s\n"
			   "\n"
			   "Journal report %ld for %s@%s.\n"
			   "This body stands in for an archived message.\n",
			   domain, id, domain, k, uuid, domain, date, k, id, domain);
}

static int write_message(const char *store, const char *domain, const char *id,
			 const unsigned char *pk, long k)
{
	char uuid[SIM_UUID_LEN + 1];
	char *text, *path;
	unsigned char *sealed;
	size_t len;
	int rc = -1;

	sim_uuid4(uuid);
	text = compose(domain, id, uuid, k);
	len = strlen(text);
	sealed = sim_xmalloc(len + crypto_box_SEALBYTES);
	path = sim_strdupf("%s/%s.msg", store, uuid);
	if (crypto_box_seal(sealed, (const unsigned char *)text, len, pk) != 0)
		sim_seterr("cannot seal a message for mailbox '%s'", id);
	else
		rc = sim_write_atomic(path, sealed, len + crypto_box_SEALBYTES, 0644);
	free(text);
	free(sealed);
	free(path);
	return rc;
}

/* Delivers n messages and records them in messageCounter. */
static int deliver(const struct sim_gw *gw, json_t *mbx, long n)
{
	const char *id = sim_mbx_str(mbx, "id");
	json_int_t counter = json_integer_value(json_object_get(mbx, "messageCounter"));
	char *store = sim_store_path(gw, id);
	struct sim_keys k;
	long done = 0;
	int rc = -1;

	if (sim_keys_from_json(&k, mbx) == 0 && sim_mkdirs(store) == 0) {
		while (done < n && write_message(store, sim_gw_str(gw, "domain"), id, k.pk,
						 (long)counter + done + 1) == 0)
			done++;
		rc = done == n ? 0 : -1;
	}
	free(store);
	if (done > 0 && (json_object_set_new(mbx, "messageCounter", json_integer(counter + done)) ||
			 sim_gw_save(gw)))
		rc = -1;
	return rc;
}

int sim_cmd_deliver(const struct sim_opts *o)
{
	struct sim_gw gw;
	json_t *mbx;
	long n = 1;
	int rc = SIM_EXIT_FAIL;

	if (o->nargs > 2 && sim_parse_long(o->args[2], 1, MAX_DELIVER, &n))
		return sim_usage_error(o, "N must be a number from 1 to %ld", MAX_DELIVER);
	if (sim_gw_load(&gw, o->args[0]))
		return sim_fail();
	mbx = sim_gw_mailbox(&gw, o->args[1], NULL);
	if (!mbx)
		rc = sim_fail();
	else if (strcmp(sim_mbx_str(mbx, "status"), "Active") != 0)
		sim_warn("mailbox '%s' is suspended", o->args[1]);
	else
		rc = deliver(&gw, mbx, n) ? sim_fail() : SIM_EXIT_OK;
	sim_gw_release(&gw);
	return rc;
}

/* Prints "<uuid> <subject>" for a plaintext message. */
static void print_summary(const char *name, const char *text)
{
	const char *subject = "";
	size_t ulen = strlen(name) - 4; /* without ".msg" */
	int slen;

	for (const char *line = text; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (*line == '\n')
			break; /* end of the header */
		if (strncmp(line, "Subject: ", 9) == 0) {
			subject = line + 9;
			break;
		}
	}
	slen = (int)strcspn(subject, "\n");
	printf("%.*s %.*s\n", (int)ulen, name, slen, subject);
}

/* 0 opened and removed, 1 sealed to other key material, -1 other failure. */
static int open_one(const char *store, const char *name, const struct sim_keys *k,
		    const unsigned char *sk)
{
	char *path = sim_strdupf("%s/%s", store, name);
	unsigned char *plain = NULL;
	char *data = NULL;
	size_t len = 0;
	int rc = -1;

	if (sim_read_file(path, &data, &len))
		goto cleanup;
	rc = 1;
	if (len < crypto_box_SEALBYTES)
		goto cleanup;
	plain = sim_xmalloc(len - crypto_box_SEALBYTES + 1);
	if (crypto_box_seal_open(plain, (unsigned char *)data, len, k->pk, sk) != 0)
		goto cleanup;
	plain[len - crypto_box_SEALBYTES] = '\0';
	print_summary(name, (const char *)plain);
	rc = 0;
	if (unlink(path)) {
		sim_seterr("cannot remove '%s': %s", path, strerror(errno));
		rc = -1;
	}
cleanup:
	free(path);
	free(data);
	free(plain);
	return rc;
}

static int fetch_all(const char *store, const char *id, const struct sim_keys *k,
		     const unsigned char *sk)
{
	char **names;
	size_t n;
	int rc = 0;

	if (sim_list_messages(store, &names, &n))
		return sim_fail();
	for (size_t i = 0; i < n; i++) {
		int r = open_one(store, names[i], k, sk);

		if (r == 1)
			sim_warn("cannot decrypt message '%s' in mailbox '%s': key material does "
				 "not match",
				 names[i], id);
		else if (r < 0)
			sim_fail();
		if (r != 0)
			rc = SIM_EXIT_FAIL;
	}
	fflush(stdout);
	sim_free_list(names, n);
	return rc;
}

static int fetch(const struct sim_gw *gw, const json_t *mbx, const char *password)
{
	const char *id = sim_mbx_str(mbx, "id");
	unsigned char sk[crypto_box_SECRETKEYBYTES];
	struct sim_keys k;
	char *store;
	int rc;

	if (sim_keys_from_json(&k, mbx))
		return sim_fail();
	rc = sim_keys_unlock(&k, password, sk);
	if (rc == -1)
		sim_seterr("wrong password for mailbox '%s'", id);
	if (rc)
		return sim_fail();
	store = sim_store_path(gw, id);
	rc = fetch_all(store, id, &k, sk);
	sodium_memzero(sk, sizeof(sk));
	free(store);
	return rc;
}

int sim_cmd_fetch(const struct sim_opts *o)
{
	struct sim_gw gw;
	const json_t *mbx;
	int rc;

	if (sim_gw_load(&gw, o->args[0]))
		return sim_fail();
	mbx = sim_gw_mailbox(&gw, o->args[1], NULL);
	rc = mbx ? fetch(&gw, mbx, o->args[2]) : sim_fail();
	sim_gw_release(&gw);
	return rc;
}
