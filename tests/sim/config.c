/*
 * config.c: the simulated gateway's Gateway.json.  Loading reads the file,
 * parses it with jansson and validates it the way a picky service would:
 * required fields and their types, mode, ports in 1-65535, and for each
 * mailbox an id of the form mbx-<32 hex>, a known status, and key material
 * that decodes to the right lengths; duplicate ids are refused.  Unknown
 * fields are kept, so a rewrite changes only what a command meant to change.
 * Saving is always atomic, pretty-printed with sorted keys.  This file also
 * makes new mailboxes and new key material; it does not touch mail.
 */
#include "sim.h"

const char *const sim_port_names[SIM_NPORTS] = {"smtp", "smtps", "submission", "pop3", "console"};

static int check_string(const json_t *obj, const char *field, const char *where)
{
	const char *s = json_string_value(json_object_get(obj, field));

	if (!json_object_get(obj, field)) {
		sim_seterr("%smissing field '%s'", where, field);
		return -1;
	}
	if (!s || !*s) {
		sim_seterr("%sfield '%s' must be a non-empty string", where, field);
		return -1;
	}
	return 0;
}

static int check_one_of(const json_t *obj, const char *field, const char *a, const char *b,
			const char *where)
{
	const char *s;

	if (check_string(obj, field, where))
		return -1;
	s = json_string_value(json_object_get(obj, field));
	if (strcmp(s, a) != 0 && strcmp(s, b) != 0) {
		sim_seterr("%sfield '%s' is '%s', expected '%s' or '%s'", where, field, s, a, b);
		return -1;
	}
	return 0;
}

static int check_ports(const json_t *root)
{
	const json_t *ports = json_object_get(root, "ports"), *v;
	const char *name;

	if (!json_is_object(ports)) {
		sim_seterr(ports ? "field 'ports' must be an object" : "missing field 'ports'");
		return -1;
	}
	for (size_t i = 0; i < SIM_NPORTS; i++)
		if (!json_object_get(ports, sim_port_names[i])) {
			sim_seterr("missing field 'ports.%s'", sim_port_names[i]);
			return -1;
		}
	json_object_foreach((json_t *)ports, name, v)
	{
		json_int_t p = json_integer_value(v);

		if (!json_is_integer(v) || p < 1 || p > 65535) {
			sim_seterr("field 'ports.%s' must be an integer from 1 to 65535", name);
			return -1;
		}
	}
	return 0;
}

static int check_keys(const json_t *m, const char *where)
{
	struct sim_keys k;

	if (sim_keys_from_json(&k, m)) {
		char detail[512];

		snprintf(detail, sizeof(detail), "%s", sim_lasterr());
		sim_seterr("%s%s", where, detail);
		return -1;
	}
	return 0;
}

static int check_mailbox(const json_t *m, size_t i)
{
	const json_t *counter = json_object_get(m, "messageCounter");
	const char *id;
	char where[80];

	snprintf(where, sizeof(where), "mailbox %zu: ", i + 1);
	if (!json_is_object(m)) {
		sim_seterr("%snot an object", where);
		return -1;
	}
	if (check_string(m, "id", where))
		return -1;
	id = json_string_value(json_object_get(m, "id"));
	if (!sim_valid_id(id)) {
		sim_seterr("%sinvalid id '%s' (expected mbx- and 32 lowercase hex digits)", where,
			   id);
		return -1;
	}
	snprintf(where, sizeof(where), "mailbox '%s': ", id);
	if (!json_is_string(json_object_get(m, "description"))) {
		sim_seterr("%smissing or non-string field 'description'", where);
		return -1;
	}
	if (check_one_of(m, "status", "Active", "Suspended", where) ||
	    check_string(m, "created", where))
		return -1;
	if (!json_is_integer(counter) || json_integer_value(counter) < 0) {
		sim_seterr("%sfield 'messageCounter' must be a non-negative integer", where);
		return -1;
	}
	return check_keys(m, where);
}

static int check_mailboxes(const json_t *root)
{
	const json_t *list = json_object_get(root, "mailboxes");

	if (!json_is_array(list)) {
		sim_seterr(list ? "field 'mailboxes' must be an array"
				: "missing field 'mailboxes'");
		return -1;
	}
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *m = json_array_get(list, i);

		if (check_mailbox(m, i))
			return -1;
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_object_get(m, "id"),
				       json_object_get(json_array_get(list, j), "id"))) {
				sim_seterr("mailbox '%s' is listed twice",
					   json_string_value(json_object_get(m, "id")));
				return -1;
			}
	}
	return 0;
}

static int validate(const json_t *root)
{
	if (!json_is_object(root)) {
		sim_seterr("the document is not a JSON object");
		return -1;
	}
	if (check_string(root, "product", "") || check_string(root, "version", "") ||
	    check_string(root, "domain", "") || check_one_of(root, "mode", "server", "proxy", "") ||
	    check_ports(root))
		return -1;
	return check_mailboxes(root);
}

static int parse(struct sim_gw *gw, const char *text, size_t len)
{
	json_error_t error;

	gw->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
	if (!gw->root) {
		sim_seterr("invalid configuration '%s': line %d column %d: %s", gw->path,
			   error.line, error.column, error.text);
		return -1;
	}
	if (validate(gw->root)) {
		char detail[512];

		snprintf(detail, sizeof(detail), "%s", sim_lasterr());
		sim_seterr("invalid configuration '%s': %s", gw->path, detail);
		return -1;
	}
	return 0;
}

int sim_gw_load(struct sim_gw *gw, const char *dir)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	gw->dir = sim_clean_dir(dir);
	gw->path = sim_strdupf("%s/%s", gw->dir, SIM_CONFIG);
	gw->root = NULL;
	if (sim_read_file(gw->path, &text, &len)) {
		sim_gw_release(gw);
		return -1;
	}
	rc = parse(gw, text, len);
	free(text);
	if (rc)
		sim_gw_release(gw);
	return rc;
}

int sim_gw_save(const struct sim_gw *gw)
{
	char *text = json_dumps(gw->root, JSON_INDENT(2) | JSON_SORT_KEYS);
	char *data;
	int rc;

	if (!text) {
		sim_seterr("cannot serialise '%s'", gw->path);
		return -1;
	}
	data = sim_strdupf("%s\n", text);
	free(text);
	rc = sim_write_atomic(gw->path, data, strlen(data), 0644);
	free(data);
	return rc;
}

void sim_gw_release(struct sim_gw *gw)
{
	if (!gw)
		return;
	json_decref(gw->root);
	free(gw->dir);
	free(gw->path);
	gw->root = NULL;
	gw->dir = NULL;
	gw->path = NULL;
}

/* Borrowed from gw->root; NULL, with a message, when there is no such mailbox. */
json_t *sim_gw_mailbox(const struct sim_gw *gw, const char *id, size_t *index_out)
{
	json_t *list = json_object_get(gw->root, "mailboxes");

	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *m = json_array_get(list, i);

		if (strcmp(sim_mbx_str(m, "id"), id) == 0) {
			if (index_out)
				*index_out = i;
			return m;
		}
	}
	sim_seterr("no mailbox '%s' in '%s'", id, gw->path);
	return NULL;
}

const char *sim_gw_str(const struct sim_gw *gw, const char *key)
{
	const char *s = json_string_value(json_object_get(gw->root, key));

	return s ? s : "";
}

const char *sim_mbx_str(const json_t *mbx, const char *key)
{
	const char *s = json_string_value(json_object_get(mbx, key));

	return s ? s : "";
}

int sim_valid_id(const char *id)
{
	if (strlen(id) != SIM_ID_LEN || strncmp(id, "mbx-", 4) != 0)
		return 0;
	for (const char *p = id + 4; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

char *sim_store_path(const struct sim_gw *gw, const char *id)
{
	return sim_strdupf("%s/%s", gw->dir, id);
}

int sim_mailbox_rekey(json_t *mbx, char password_out[SIM_PASSWORD_LEN + 1])
{
	struct sim_keys k;
	int rc;

	sim_password(password_out);
	rc = sim_keys_generate(&k, password_out);
	if (rc == 0)
		rc = sim_keys_to_json(mbx, &k);
	sodium_memzero(&k, sizeof(k));
	if (rc)
		sodium_memzero(password_out, SIM_PASSWORD_LEN + 1);
	return rc;
}

/* A new Active mailbox with fresh id and key material; NULL on failure. */
json_t *sim_mailbox_new(const char *description, char password_out[SIM_PASSWORD_LEN + 1])
{
	char id[SIM_ID_LEN + 1] = "mbx-", stamp[32];
	json_t *m = json_object();
	int rc;

	if (!m) {
		sim_seterr("cannot create a mailbox: out of memory");
		return NULL;
	}
	sim_random_hex(id + 4, 16);
	sim_rfc3339(sim_now(), stamp);
	rc = json_object_set_new(m, "id", json_string(id));
	rc |= json_object_set_new(m, "description", json_string(description));
	rc |= json_object_set_new(m, "status", json_string("Active"));
	rc |= json_object_set_new(m, "created", json_string(stamp));
	rc |= json_object_set_new(m, "messageCounter", json_integer(0));
	if (rc)
		sim_seterr("cannot create a mailbox: out of memory or invalid UTF-8");
	if (rc || sim_mailbox_rekey(m, password_out)) {
		json_decref(m);
		return NULL;
	}
	return m;
}
