/*
 * journal: format, parse and durable storage of the restore journal.
 */
#include "journal.h"
#include "err.h"
#include "manifest.h"
#include "util.h"

#include <ctype.h>
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
		if (e->op == J_ADD && e->ino)
			buf_addf(&b, " ino=%llu", (unsigned long long)e->ino);
		if (e->op == J_ADD && e->has_sha) {
			char hex[2 * SHA256_LEN + 1];

			hex_encode(hex, e->sha, SHA256_LEN);
			buf_addf(&b, " sha256=%s", hex);
		}
		buf_addf(&b, " %s\n", enc);
		free(enc);
	}
	return buf_detach(&b, NULL);
}

/* A header line "key: value"; -1 when key is not a header, -2 when it
 * was already given (a journal the tool wrote never repeats one). */
static int parse_header(struct journal *j, const char *key, const char *val)
{
	char **str = NULL;

	if (strcmp(key, "gateway") == 0)
		str = &j->gateway;
	else if (strcmp(key, "phase") == 0)
		str = &j->phase;
	else if (strcmp(key, "started") == 0)
		str = &j->started;
	else if (strcmp(key, "forced") == 0)
		str = &j->forced;
	else if (strcmp(key, "snapshot") == 0)
		snprintf(j->snapshot, sizeof(j->snapshot), "%s", val);
	else if (strcmp(key, "pre-restore") == 0)
		snprintf(j->pre_restore, sizeof(j->pre_restore), "%s", val);
	else if (strcmp(key, "confirm-deadline") == 0)
		j->confirm_deadline = atoll(val);
	else
		return -1;
	if (str && *str)
		return -2;
	if (str)
		*str = xstrdup(val);
	return 0;
}

/* An unsigned number in base (8 or 10) that is the whole token. */
static int parse_num(const char *tok, int base, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!tok || !*tok || *tok == '-' || *tok == '+')
		return -1;
	errno = 0;
	v = strtoul(tok, &end, base);
	if (errno || *end || v > UINT32_MAX)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* "add [ino=N] [sha256=HEX] PATH" */
static int parse_add(struct journal *j, char **tok, size_t ntok)
{
	unsigned char sha[SHA256_LEN];
	unsigned long long ino = 0;
	bool has_sha = false;
	struct journal_entry *je;
	char *dec, *end;
	size_t k;

	if (ntok < 2 || ntok > 4)
		return -1;
	for (k = 1; k + 1 < ntok; k++) {
		if (strncmp(tok[k], "ino=", 4) == 0 && !ino && isdigit((unsigned char)tok[k][4])) {
			errno = 0;
			ino = strtoull(tok[k] + 4, &end, 10);
			if (errno || *end || !ino)
				return -1;
		} else if (strncmp(tok[k], "sha256=", 7) == 0 && !has_sha &&
			   strlen(tok[k] + 7) == 2 * SHA256_LEN &&
			   hex_decode(sha, tok[k] + 7, SHA256_LEN) == 0) {
			has_sha = true;
		} else {
			return -1;
		}
	}
	dec = manifest_decode_path(tok[ntok - 1]);
	if (!dec)
		return -1;
	journal_add(j, J_ADD, dec);
	free(dec);
	je = &j->e[j->n - 1];
	je->ino = ino;
	je->has_sha = has_sha;
	if (has_sha)
		memcpy(je->sha, sha, SHA256_LEN);
	return 0;
}

/* "OP [NUMBERS...] PATH", single spaces, the path percent-encoded (no
 * spaces) and of any length. */
static int parse_op(struct journal *j, char *line)
{
	char *tok[9], *save = NULL, *dec;
	unsigned v[6] = {0};
	size_t ntok = 0, want, k;
	struct journal_entry *je;
	int op;

	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (ntok == 9)
			return -1;
		tok[ntok++] = t;
	}
	if (ntok < 2)
		return -1;
	for (op = 0; op < 6 && strcmp(op_names[op], tok[0]) != 0; op++)
		;
	if (op == 6)
		return -1;
	want = op == J_MKDIR || op == J_RMDIR ? 3 : op == J_CHMOD ? 8 : 2;
	if (op == J_ADD)
		return parse_add(j, tok, ntok);
	if (ntok != want)
		return -1;
	for (k = 1; k + 1 < ntok; k++)
		if (parse_num(tok[k], k == 1 || k == 4 ? 8 : 10, &v[k - 1]) < 0)
			return -1;
	dec = manifest_decode_path(tok[ntok - 1]);
	if (!dec)
		return -1;
	journal_add(j, (enum journal_op)op, dec);
	free(dec);
	je = &j->e[j->n - 1];
	if (op == J_MKDIR)
		je->mode = v[0];
	else if (op == J_RMDIR)
		je->old_mode = v[0];
	else if (op == J_CHMOD)
		je->old_mode = v[0], je->old_uid = v[1], je->old_gid = v[2], je->mode = v[3],
		je->uid = v[4], je->gid = v[5];
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
		char *colon = strstr(line, ": "), *space = strchr(line, ' ');
		int h = -1;

		lineno++;
		/* "key: value": the key is the first word, ending in ':' */
		if (colon && space == colon + 1) {
			*colon = '\0';
			h = parse_header(out, line, colon + 2);
			*colon = ':';
		}
		if (h == -2)
			rc = err_set(MSGW_ECORRUPT, "journal line %zu: '%.40s' given twice", lineno,
				     line);
		else if (h < 0 && parse_op(out, line) < 0)
			rc = err_set(MSGW_ECORRUPT, "journal line %zu: cannot parse it", lineno);
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
	return rc ? err_wrap(rc, "cannot read journal '%s'", path) : 0;
}
