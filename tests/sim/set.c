/*
 * set.c: `msgw-sim set DIR KEY VALUE`, the safe configuration edits tests
 * use to make a gateway's configuration differ from a snapshot: domain,
 * mode (server or proxy), version, ports.<name> (an integer from 1 to
 * 65535) and mailbox.<id>.description.  Values are checked, so `set` never
 * produces a configuration the service would refuse; tests that want a
 * broken Gateway.json edit the file by hand.  Key material and statuses are
 * not settable here: they change only through the console actions.
 */
#include "sim.h"

static int set_value(json_t *obj, const char *field, json_t *value)
{
	if (json_object_set_new(obj, field, value)) {
		sim_seterr("cannot set '%s': out of memory or invalid UTF-8", field);
		return -1;
	}
	return 0;
}

static int set_port(const struct sim_opts *o, const struct sim_gw *gw, const char *name,
		    const char *value)
{
	long port;
	size_t i;

	for (i = 0; i < SIM_NPORTS; i++)
		if (strcmp(sim_port_names[i], name) == 0)
			break;
	if (i == SIM_NPORTS)
		return sim_usage_error(o,
				       "unknown port '%s' (expected smtp, smtps, submission, "
				       "pop3 or console)",
				       name);
	if (sim_parse_long(value, 1, 65535, &port))
		return sim_usage_error(o, "a port must be a number from 1 to 65535");
	if (set_value(json_object_get(gw->root, "ports"), name, json_integer(port)))
		return sim_fail();
	return -1;
}

static int set_description(const struct sim_opts *o, const struct sim_gw *gw, const char *rest,
			   const char *value)
{
	const char *dot = strchr(rest, '.');
	char id[SIM_ID_LEN + 1];
	json_t *mbx;

	if (!dot || dot - rest != SIM_ID_LEN || strcmp(dot, ".description") != 0)
		return sim_usage_error(o, "expected mailbox.<id>.description");
	memcpy(id, rest, SIM_ID_LEN);
	id[SIM_ID_LEN] = '\0';
	mbx = sim_gw_mailbox(gw, id, NULL);
	if (!mbx || set_value(mbx, "description", json_string(value)))
		return sim_fail();
	return -1;
}

static int set_top(const struct sim_opts *o, const struct sim_gw *gw, const char *key,
		   const char *value)
{
	if (!*value)
		return sim_usage_error(o, "'%s' must not be empty", key);
	if (strcmp(key, "mode") == 0 && strcmp(value, "server") != 0 && strcmp(value, "proxy") != 0)
		return sim_usage_error(o, "mode must be 'server' or 'proxy'");
	if (set_value(gw->root, key, json_string(value)))
		return sim_fail();
	return -1;
}

/* Returns -1 when the edit is made, or the exit code of a failure. */
static int apply(const struct sim_opts *o, const struct sim_gw *gw)
{
	const char *key = o->args[1], *value = o->args[2];

	if (strcmp(key, "domain") == 0 || strcmp(key, "mode") == 0 || strcmp(key, "version") == 0)
		return set_top(o, gw, key, value);
	if (strncmp(key, "ports.", 6) == 0)
		return set_port(o, gw, key + 6, value);
	if (strncmp(key, "mailbox.", 8) == 0)
		return set_description(o, gw, key + 8, value);
	return sim_usage_error(o, "unknown key '%s'", key);
}

int sim_cmd_set(const struct sim_opts *o)
{
	struct sim_gw gw;
	int rc;

	if (sim_gw_load(&gw, o->args[0]))
		return sim_fail();
	rc = apply(o, &gw);
	if (rc < 0)
		rc = sim_gw_save(&gw) ? sim_fail() : SIM_EXIT_OK;
	sim_gw_release(&gw);
	return rc;
}
