/*
 * journal: format, parse and durable storage of the restore journal.
 */
#include "journal.h"
#include "err.h"
#include "manifest.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOURNAL_HEADER "msgw-journal 1"

static const char *const op_names[] = {"mkdir", "add", "modify", "remove", "rmdir", "chmod"};

void journal_init(struct journal *j)
{
	memset(j, 0, sizeof(*j));
}

void journal_add(struct journal *j, enum journal_op op, const char *path)
{
	struct journal_entry *e;

	j->e = xrealloc(j->e, (j->n + 1) * sizeof(*j->e));
	e = &j->e[j->n++];
	memset(e, 0, sizeof(*e));
	e->op = op;
	e->path = xstrdup(path);
}

void journal_set_phase(struct journal *j, const char *phase)
{
	free(j->phase);
	j->phase = xstrdup(phase);
}

void journal_release(struct journal *j)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		free(j->e[i].path);
	free(j->e);
	free(j->gateway);
	free(j->phase);
	free(j->started);
	free(j->forced);
	journal_init(j);
}

char *journal_format(const struct journal *j)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	buf_addf(&b,
		 "%s\ngateway: %s\nsnapshot: %s\npre-restore: %s\nphase: %s\nstarted: %s\n"
		 "confirm-deadline: %lld\nforced: %s\n",
		 JOURNAL_HEADER, j->gateway, j->snapshot, j->pre_restore, j->phase,
		 j->started ? j->started : "", (long long)j->confirm_deadline,
		 j->forced ? j->forced : "");
	for (i = 0; i < j->n; i++) {
		const struct journal_entry *e = &j->e[i];
		char *enc = manifest_encode_path(e->path);

		buf_adds(&b, op_names[e->op]);
		if (e->op == J_MKDIR)
			buf_addf(&b, " %04o", (unsigned)e->mode);
		else if (e->op == J_RMDIR)
			buf_addf(&b, " %04o", (unsigned)e->old_mode);
		else if (e->op == J_CHMOD)
			buf_addf(&b, " %04o %u %u %04o %u %u", (unsigned)e->old_mode,
				 (unsigned)e->old_uid, (unsigned)e->old_gid, (unsigned)e->mode,
				 (unsigned)e->uid, (unsigned)e->gid);
		buf_addf(&b, " %s\n", enc);
		free(enc);
	}
	return buf_detach(&b, NULL);
}

static int parse_header(struct journal *j, const char *key, const char *val)
{
	if (strcmp(key, "gateway") == 0)
		j->gateway = xstrdup(val);
	else if (strcmp(key, "snapshot") == 0)
		snprintf(j->snapshot, sizeof(j->snapshot), "%s", val);
	else if (strcmp(key, "pre-restore") == 0)
		snprintf(j->pre_restore, sizeof(j->pre_restore), "%s", val);
	else if (strcmp(key, "phase") == 0)
		j->phase = xstrdup(val);
	else if (strcmp(key, "started") == 0)
		j->started = xstrdup(val);
	else if (strcmp(key, "confirm-deadline") == 0)
		j->confirm_deadline = atoll(val);
	else if (strcmp(key, "forced") == 0)
		j->forced = xstrdup(val);
	else
		return -1;
	return 0;
}

static int parse_op(struct journal *j, char *line)
{
	char name[16], path[8192];
	unsigned a = 0, b = 0, c = 0, d = 0, e = 0, f = 0;
	struct journal_entry *je;
	char *dec;
	int op, ok = 0;

	if (sscanf(line, "%15s", name) != 1)
		return -1;
	for (op = 0; op < 6 && strcmp(op_names[op], name) != 0; op++)
		;
	if (op == J_MKDIR || op == J_RMDIR)
		ok = sscanf(line, "%*s %o %8191s", &a, path) == 2;
	else if (op == J_CHMOD)
		ok =
		    sscanf(line, "%*s %o %u %u %o %u %u %8191s", &a, &b, &c, &d, &e, &f, path) == 7;
	else if (op < 6)
		ok = sscanf(line, "%*s %8191s", path) == 1;
	if (!ok || !(dec = manifest_decode_path(path)))
		return -1;
	journal_add(j, (enum journal_op)op, dec);
	free(dec);
	je = &j->e[j->n - 1];
	if (op == J_MKDIR)
		je->mode = a;
	else if (op == J_RMDIR)
		je->old_mode = a;
	else if (op == J_CHMOD)
		je->old_mode = a, je->old_uid = b, je->old_gid = c, je->mode = d, je->uid = e,
		je->gid = f;
	return 0;
}

int journal_parse(struct journal *out, const char *text, size_t len)
{
	char *copy = xstrndup(text, len), *save = NULL, *line;
	size_t lineno = 1;
	int rc = 0;

	journal_init(out);
	line = strtok_r(copy, "\n", &save);
	if (!line || strcmp(line, JOURNAL_HEADER) != 0)
		rc = err_set(MSGW_ECORRUPT, "journal line 1: expected '%s'", JOURNAL_HEADER);
	while (!rc && (line = strtok_r(NULL, "\n", &save))) {
		char *colon = strstr(line, ": ");

		lineno++;
		if (colon && !strchr(line, ' ') != 0)
			colon = NULL;
		if (colon && colon < strchr(line, ' ') + 1) {
			*colon = '\0';
			if (parse_header(out, line, colon + 2) == 0)
				continue;
			*colon = ':';
		}
		if (parse_op(out, line) < 0)
			rc = err_set(MSGW_ECORRUPT, "journal line %zu: cannot parse '%s'", lineno,
				     line);
	}
	free(copy);
	if (!rc && (!out->gateway || !out->phase))
		rc = err_set(MSGW_ECORRUPT, "journal: gateway or phase missing");
	if (rc)
		journal_release(out);
	return rc;
}

char *journal_path(const char *state_dir, const char *gateway)
{
	return xasprintf("%s/journal-%s", state_dir, gateway);
}

int journal_save(const struct journal *j, const char *path)
{
	char *text = journal_format(j), *tmp = xasprintf("%s.tmp", path), *dir = xstrdup(path);
	size_t len = strlen(text);
	int fd, rc = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write journal '%s'", tmp);
	if (fd >= 0)
		close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write journal '%s'", path);
	if (!rc)
		(void)fsync_dir(dirname(dir)); /* best effort: the file itself is synced */
	if (rc)
		unlink(tmp);
	free(text);
	free(tmp);
	free(dir);
	return rc;
}

int journal_load(struct journal *out, const char *path)
{
	char *text = NULL;
	size_t len = 0, cap = 0;
	FILE *f = fopen(path, "re");
	int rc;

	journal_init(out);
	if (!f) {
		if (errno == ENOENT)
			return MSGW_ENOTFOUND;
		return err_set_errno(MSGW_ERR, errno, "cannot read journal '%s'", path);
	}
	len = (size_t)getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (!text || (ssize_t)len < 0) {
		free(text);
		return err_set(MSGW_ECORRUPT, "journal '%s' is empty", path);
	}
	rc = journal_parse(out, text, len);
	free(text);
	return rc ? err_wrap(rc, "'%s'", path) : 0;
}
