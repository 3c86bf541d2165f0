/*
 * util.c: the plumbing every msgw-sim command shares: the last-error buffer
 * and the one-line "msgw-sim: ..." messages, allocation that exits on
 * out-of-memory (a test tool has no better answer), whole-file reads, atomic
 * writes (temp file in the same directory, fsync, rename, fsync of the
 * directory), mkdir -p and rm -r, listing a mailbox store's .msg files,
 * timestamps, and appending to Logs/gateway.log.  Nothing here knows the
 * shape of Gateway.json.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"

static char last_error[1024];

void sim_seterr(const char *fmt, ...)
{
	char buf[sizeof(last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* via buf: the message may quote the previous one */
	memcpy(last_error, buf, sizeof(buf));
}

const char *sim_lasterr(void)
{
	return last_error[0] ? last_error : "unknown error";
}

int sim_fail(void)
{
	fprintf(stderr, "%s: %s\n", SIM_PROG, sim_lasterr());
	return SIM_EXIT_FAIL;
}

void sim_warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", SIM_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void out_of_memory(void)
{
	fprintf(stderr, "%s: out of memory\n", SIM_PROG);
	exit(SIM_EXIT_FAIL);
}

void *sim_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		out_of_memory();
	return p;
}

char *sim_strdupf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory();
	return s;
}

int sim_parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

char *sim_clean_dir(const char *dir)
{
	size_t n = strlen(dir);
	char *s;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	s = sim_xmalloc(n + 1);
	memcpy(s, dir, n);
	s[n] = '\0';
	return s;
}

static int read_fd(int fd, const char *path, char **out, size_t *len_out)
{
	size_t cap = 4096, len = 0;
	char *buf = sim_xmalloc(cap + 1);
	ssize_t r;

	while ((r = read(fd, buf + len, cap - len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			sim_seterr("cannot read '%s': %s", path, strerror(errno));
			free(buf);
			return -1;
		}
		len += (size_t)r;
		if (len == cap) {
			char *bigger = realloc(buf, 2 * cap + 1);

			if (!bigger)
				out_of_memory();
			buf = bigger;
			cap *= 2;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	return 0;
}

/* The contents with a terminating NUL (not counted in len_out). */
int sim_read_file(const char *path, char **out, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	*out = NULL;
	if (fd < 0) {
		sim_seterr("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	rc = read_fd(fd, path, out, len_out);
	close(fd);
	return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	char *copy = sim_strdupf("%s", path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = -1;

	if (fd >= 0) {
		rc = fsync(fd);
		close(fd);
	}
	free(copy);
	return rc;
}

static char *temp_name(const char *path)
{
	char *copy = sim_strdupf("%s", path);
	char *slash = strrchr(copy, '/');
	char *t;

	if (slash) {
		*slash = '\0';
		t = sim_strdupf("%s/.%s.tmp-XXXXXX", copy, slash + 1);
	} else {
		t = sim_strdupf(".%s.tmp-XXXXXX", copy);
	}
	free(copy);
	return t;
}

int sim_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	char *tmp = temp_name(path);
	int fd = mkstemp(tmp);

	if (fd < 0) {
		sim_seterr("cannot create a temporary file for '%s': %s", path, strerror(errno));
		free(tmp);
		return -1;
	}
	if (write_all(fd, data, len) || fchmod(fd, mode) || fsync(fd)) {
		sim_seterr("cannot write '%s': %s", tmp, strerror(errno));
		close(fd);
		goto fail;
	}
	if (close(fd)) {
		sim_seterr("cannot write '%s': %s", tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path)) {
		sim_seterr("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
		goto fail;
	}
	free(tmp);
	if (fsync_parent(path)) {
		sim_seterr("cannot sync the directory of '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
fail:
	unlink(tmp);
	free(tmp);
	return -1;
}

int sim_mkdirs(const char *path)
{
	char *p;
	int rc = 0;

	if (path[0] == '\0') {
		sim_seterr("cannot create a directory with an empty name");
		return -1;
	}
	p = sim_strdupf("%s", path);
	for (char *s = p + 1; rc == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST) {
			sim_seterr("cannot create directory '%s': %s", p, strerror(errno));
			rc = -1;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path)) {
		sim_seterr("cannot remove '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int sim_rmtree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) && errno == ENOENT)
		return 0;
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

static int is_message_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".msg") == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted .msg names in store; a store that does not exist is empty. */
int sim_list_messages(const char *store, char ***names_out, size_t *n_out)
{
	DIR *d = opendir(store);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;

	*names_out = NULL;
	*n_out = 0;
	if (!d && errno == ENOENT)
		return 0;
	if (!d) {
		sim_seterr("cannot open mailbox store '%s': %s", store, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (!is_message_name(e->d_name))
			continue;
		char **bigger = realloc(names, (n + 1) * sizeof(*names));

		if (!bigger)
			out_of_memory();
		names = bigger;
		names[n++] = sim_strdupf("%s", e->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	*names_out = names;
	*n_out = n;
	return 0;
}

void sim_free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int sim_count_messages(const char *store, size_t *out)
{
	char **names;
	size_t n;

	if (sim_list_messages(store, &names, &n))
		return -1;
	sim_free_list(names, n);
	*out = n;
	return 0;
}

time_t sim_now(void)
{
	const char *epoch = getenv("SOURCE_DATE_EPOCH");
	long v;

	if (epoch && sim_parse_long(epoch, 0, 253402300799L, &v) == 0)
		return (time_t)v;
	if (sim_rng_seeded())
		return (time_t)1704067200; /* 2024-01-01T00:00:00Z */
	return time(NULL);
}

void sim_rfc3339(time_t t, char buf[32])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, 32, "1970-01-01T00:00:00Z");
}

/* Appends one timestamped line to DIR/Logs/gateway.log. */
int sim_log(const char *dir, const char *fmt, ...)
{
	char *logs = sim_strdupf("%s/Logs", dir);
	char *path = sim_strdupf("%s/gateway.log", logs);
	char stamp[32], line[1024];
	va_list ap;
	int fd, rc = -1;

	sim_rfc3339(time(NULL), stamp);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (sim_mkdirs(logs) == 0) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			char *text = sim_strdupf("%s %s\n", stamp, line);

			rc = write_all(fd, text, strlen(text));
			free(text);
			close(fd);
		}
	}
	free(logs);
	free(path);
	return rc;
}
