/*
 * lock: flock-based exclusive lock with an owner record for messages and
 * stale-lock detection.
 */
#include "lock.h"
#include "err.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

struct lock {
	int fd;
	char *path;
};

static void boot_id(char *out, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	snprintf(out, len, "unknown");
	if (f) {
		if (fgets(out, (int)len, f))
			out[strcspn(out, "\n")] = '\0';
		fclose(f);
	}
}

static void read_owner(int fd, char *out, size_t len)
{
	ssize_t n = pread(fd, out, len - 1, 0);

	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

static int held_message(int fd, const char *path, const char *what)
{
	char owner[512], host[256] = "?", since[64] = "?";
	long pid = 0;

	read_owner(fd, owner, sizeof(owner));
	if (sscanf(owner, "%255s %ld %*s %63s", host, &pid, since) < 2)
		return err_set(MSGW_ELOCKED, "%s is locked by another run ('%s')", what, path);
	return err_set(MSGW_ELOCKED, "%s is locked by pid %ld on %s since %s ('%s')", what, pid,
		       host, since, path);
}

static void warn_if_stale(int fd, const char *path, const char *what)
{
	char owner[512], host[256], boot[128], myhost[256] = "", myboot[128];
	long pid;

	read_owner(fd, owner, sizeof(owner));
	if (!owner[0] || sscanf(owner, "%255s %ld %127s", host, &pid, boot) != 3)
		return;
	gethostname(myhost, sizeof(myhost) - 1);
	boot_id(myboot, sizeof(myboot));
	if (strcmp(host, myhost) == 0 && strcmp(boot, myboot) == 0 && kill((pid_t)pid, 0) == 0)
		return; /* cannot happen while we hold the flock, but say nothing */
	log_warn("cleared a stale %s lock left by pid %ld on %s ('%s')", what, pid, host, path);
}

static int write_owner(int fd, const char *path)
{
	char host[256] = "localhost", boot[128], since[32], line[512];
	int n;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	boot_id(boot, sizeof(boot));
	time_rfc3339(since, sizeof(since), (int64_t)time(NULL));
	n = snprintf(line, sizeof(line), "%s %ld %s %s\n", host, (long)getpid(), boot, since);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n)
		return err_set_errno(MSGW_ERR, errno, "cannot write lock '%s'", path);
	return 0;
}

char *lock_repo_path(const char *repo_path)
{
	return xasprintf("%s/msgw.lock", repo_path);
}

int lock_acquire(struct lock **out, const char *path, const char *what)
{
	struct lock *l;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set_errno(MSGW_ERR, errno, "cannot open lock '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK
			 ? held_message(fd, path, what)
			 : err_set_errno(MSGW_ERR, errno, "cannot lock '%s'", path);
		close(fd);
		return rc;
	}
	warn_if_stale(fd, path, what);
	rc = write_owner(fd, path);
	if (rc) {
		close(fd);
		return rc;
	}
	l = xmalloc(sizeof(*l));
	l->fd = fd;
	l->path = xstrdup(path);
	*out = l;
	return 0;
}

void lock_release(struct lock *l)
{
	if (!l)
		return;
	if (ftruncate(l->fd, 0) < 0)
		log_warn("cannot clear lock '%s'", l->path);
	close(l->fd);
	free(l->path);
	free(l);
}
