/*
 * admin.c: what an administrator does in the gateway's web console, as
 * subcommands that rewrite Gateway.json atomically: add a mailbox, reset a
 * password (new key material: the old key is gone for good), suspend,
 * activate, delete, list, and `set` for the few harmless edits tests need.
 * The console's guard rails are kept: only a suspended, empty mailbox may
 * have its password reset, and only a suspended, empty one may be deleted.
 */
#include "sim.h"

static int store_count(const struct sim_gw *gw, const char *id, size_t *out)
{
	char *store = sim_store_path(gw, id);
	int rc = sim_count_messages(store, out);

	free(store);
	return rc;
}

static int is_active(const json_t *mbx)
{
	return strcmp(sim_mbx_str(mbx, "status"), "Active") == 0;
}

int sim_cmd_add_mailbox(const struct sim_opts *o)
{
	char pw[SIM_PASSWORD_LEN + 1], *desc = NULL, *store = NULL;
	struct sim_gw gw;
	json_t *list, *m = NULL;
	int rc = -1;

	if (sim_gw_load(&gw, o->args[0]))
		return sim_fail();
	list = json_object_get(gw.root, "mailboxes");
	desc = o->description ? sim_strdupf("%s", o->description)
			      : sim_strdupf("Journal mailbox %zu", json_array_size(list) + 1);
	m = sim_mailbox_new(desc, pw);
	if (!m)
		goto cleanup;
	store = sim_store_path(&gw, sim_mbx_str(m, "id"));
	if (json_array_append(list, m)) {
		sim_seterr("cannot add a mailbox: out of memory");
		goto cleanup;
	}
	if (sim_mkdirs(store) || sim_gw_save(&gw))
		goto cleanup;
	printf("%s %s\n", sim_mbx_str(m, "id"), pw);
	rc = 0;
cleanup:
	sodium_memzero(pw, sizeof(pw));
	json_decref(m);
	free(desc);
	free(store);
	sim_gw_release(&gw);
	return rc ? sim_fail() : SIM_EXIT_OK;
}

static int reset_password(const struct sim_gw *gw, json_t *mbx)
{
	const char *id = sim_mbx_str(mbx, "id");
	char pw[SIM_PASSWORD_LEN + 1];
	size_t n = 0;
	int rc = -1;

	if (store_count(gw, id, &n))
		return -1;
	if (is_active(mbx) || n > 0) {
		sim_seterr("mailbox '%s' must be suspended and empty to reset its password", id);
		return -1;
	}
	if (sim_mailbox_rekey(mbx, pw) == 0 && sim_gw_save(gw) == 0) {
		printf("%s %s\n", id, pw);
		rc = 0;
	}
	sodium_memzero(pw, sizeof(pw));
	return rc;
}

static int delete_mailbox(const struct sim_gw *gw, json_t *mbx, size_t index)
{
	char *id = sim_strdupf("%s", sim_mbx_str(mbx, "id"));
	char *store = sim_store_path(gw, id);
	size_t n = 0;
	int rc = -1;

	if (is_active(mbx))
		sim_seterr("mailbox '%s' is active: suspend it first", id);
	else if (store_count(gw, id, &n))
		; /* the message is set */
	else if (n > 0)
		sim_seterr("mailbox '%s' still holds %zu message%s", id, n, n == 1 ? "" : "s");
	else if (json_array_remove(json_object_get(gw->root, "mailboxes"), index))
		sim_seterr("cannot remove mailbox '%s' from the configuration", id);
	else
		rc = sim_gw_save(gw) || sim_rmtree(store) ? -1 : 0;
	free(id);
	free(store);
	return rc;
}

/* Loads DIR, finds MBX and runs action on it. */
static int with_mailbox(const struct sim_opts *o,
			int (*action)(const struct sim_gw *gw, json_t *mbx, size_t index))
{
	struct sim_gw gw;
	json_t *mbx;
	size_t index = 0;
	int rc;

	if (sim_gw_load(&gw, o->args[0]))
		return sim_fail();
	mbx = sim_gw_mailbox(&gw, o->args[1], &index);
	rc = mbx ? action(&gw, mbx, index) : -1;
	sim_gw_release(&gw);
	return rc ? sim_fail() : SIM_EXIT_OK;
}

static int do_reset(const struct sim_gw *gw, json_t *mbx, size_t index)
{
	(void)index;
	return reset_password(gw, mbx);
}

static int set_status(const struct sim_gw *gw, json_t *mbx, const char *status)
{
	if (strcmp(sim_mbx_str(mbx, "status"), status) == 0)
		return 0;
	if (json_object_set_new(mbx, "status", json_string(status))) {
		sim_seterr("cannot change the status: out of memory");
		return -1;
	}
	return sim_gw_save(gw);
}

static int do_suspend(const struct sim_gw *gw, json_t *mbx, size_t index)
{
	(void)index;
	return set_status(gw, mbx, "Suspended");
}

static int do_activate(const struct sim_gw *gw, json_t *mbx, size_t index)
{
	(void)index;
	return set_status(gw, mbx, "Active");
}

int sim_cmd_reset_password(const struct sim_opts *o)
{
	return with_mailbox(o, do_reset);
}

int sim_cmd_suspend(const struct sim_opts *o)
{
	return with_mailbox(o, do_suspend);
}

int sim_cmd_activate(const struct sim_opts *o)
{
	return with_mailbox(o, do_activate);
}

int sim_cmd_delete(const struct sim_opts *o)
{
	return with_mailbox(o, delete_mailbox);
}

int sim_cmd_list(const struct sim_opts *o)
{
	struct sim_gw gw;
	json_t *list;
	int rc = SIM_EXIT_OK;

	if (sim_gw_load(&gw, o->args[0]))
		return sim_fail();
	list = json_object_get(gw.root, "mailboxes");
	for (size_t i = 0; i < json_array_size(list) && rc == SIM_EXIT_OK; i++) {
		const json_t *m = json_array_get(list, i);
		size_t n = 0;

		if (store_count(&gw, sim_mbx_str(m, "id"), &n))
			rc = sim_fail();
		else
			printf("%s %s %zu %s\n", sim_mbx_str(m, "id"), sim_mbx_str(m, "status"), n,
			       sim_mbx_str(m, "description"));
	}
	sim_gw_release(&gw);
	return rc;
}
