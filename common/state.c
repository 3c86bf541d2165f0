/*
 * state: load, edit and atomically save "key: value" files.
 */
#include "state.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int state_load(struct state *out, const char *state_dir, const char *name)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	memset(out, 0, sizeof(*out));
	out->path = xasprintf("%s/%s", state_dir, name);
	f = fopen(out->path, "re");
	if (!f && errno == ENOENT)
		return 0;
	if (!f) { /* on failure nothing is left to release */
		int rc = err_set_errno(MSGW_ERR, errno, "cannot read '%s'", out->path);

		state_release(out);
		return rc;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		char *colon = strstr(line, ": ");

		line[strcspn(line, "\n")] = '\0';
		if (!colon)
			continue;
		*colon = '\0';
		state_set(out, line, colon + 2);
	}
	free(line);
	fclose(f);
	return 0;
}

const char *state_get(const struct state *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->keys[i], key) == 0)
			return s->values[i];
	return NULL;
}

int64_t state_get_int(const struct state *s, const char *key, int64_t dflt)
{
	const char *v = state_get(s, key);

	return v && *v ? (int64_t)atoll(v) : dflt;
}

void state_set(struct state *s, const char *key, const char *value)
{
	size_t i;
	char *clean = xstrdup(value ? value : "");

	clean[strcspn(clean, "\n")] = '\0'; /* one line per key, always */
	for (i = 0; i < s->n; i++) {
		if (strcmp(s->keys[i], key) == 0) {
			free(s->values[i]);
			s->values[i] = clean;
			return;
		}
	}
	s->keys = xrealloc(s->keys, (s->n + 1) * sizeof(char *));
	s->values = xrealloc(s->values, (s->n + 1) * sizeof(char *));
	s->keys[s->n] = xstrdup(key);
	s->values[s->n++] = clean;
}

void state_set_int(struct state *s, const char *key, int64_t value)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%lld", (long long)value);
	state_set(s, key, tmp);
}

int state_save(const struct state *s)
{
	char *tmp = xasprintf("%s.tmp", s->path), *dir = xstrdup(s->path), *slash;
	struct buf b;
	size_t i;
	int fd, rc = 0;

	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			rc = err_set_errno(MSGW_ERR, errno, "cannot create '%s'", dir);
	}
	buf_init(&b);
	for (i = 0; i < s->n; i++)
		buf_addf(&b, "%s: %s\n", s->keys[i], s->values[i]);
	fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (!rc && (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) < 0))
		rc = err_set_errno(MSGW_ERR, errno, "cannot write '%s'", tmp);
	if (fd >= 0)
		close(fd);
	if (!rc && rename(tmp, s->path) < 0)
		rc = err_set_errno(MSGW_ERR, errno, "cannot write '%s'", s->path);
	if (rc)
		unlink(tmp);
	buf_release(&b);
	free(tmp);
	free(dir);
	return rc;
}

void state_release(struct state *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->keys[i]);
		free(s->values[i]);
	}
	free(s->keys);
	free(s->values);
	free(s->path);
	memset(s, 0, sizeof(*s));
}

int state_record_snapshot(const char *state_dir, const char *gateway, const char *result,
			  const char *error, const char *snapshot)
{
	char name[300], when[32];
	struct state st;
	int rc;

	snprintf(name, sizeof(name), "status-%s", gateway);
	rc = state_load(&st, state_dir, name);
	if (rc)
		return rc;
	time_rfc3339(when, sizeof(when), (int64_t)time(NULL));
	state_set(&st, "last-attempt", when);
	state_set(&st, "last-result", result);
	state_set(&st, "last-error", error ? error : "");
	if (error)
		state_set_int(&st, "failures-total", state_get_int(&st, "failures-total", 0) + 1);
	else if (snapshot) {
		state_set(&st, "last-snapshot", snapshot);
		state_set(&st, "last-success", when);
	}
	rc = state_save(&st);
	state_release(&st);
	return rc;
}

int state_probe(const char *state_dir)
{
	char block[STATE_PROBE_SIZE], *path = xasprintf("%s/.probe-%ld", state_dir, (long)getpid());
	struct stat st;
	int fd, rc = 0;

	memset(block, 'x', sizeof(block));
	if (stat(state_dir, &st) < 0 && errno == ENOENT) {
		free(path);
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fsync(fd) < 0)
		rc = err_set_errno(MSGW_ERR, errno ? errno : ENOSPC, "cannot write '%s'", path);
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(path);
	return rc;
}
