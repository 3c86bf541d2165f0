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
#include <stdbool.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

/*
 * The pid holding an flock on the file open at fd, from /proc/locks (0 when
 * not found: another pid namespace, another host over NFS, no /proc).
 * Lines with "->" are waiters, not holders.
 */
static long flock_holder(int fd)
{
	char line[256], kind[16], arrow[8];
	unsigned int maj, min;
	unsigned long ino;
	long pid, found = 0;
	struct stat st;
	FILE *f;

	if (fstat(fd, &st) < 0 || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*[^:]: %7s", arrow) == 1 && strcmp(arrow, "->") == 0)
			continue;
		if (sscanf(line, "%*[^:]: %15s %*s %*s %ld %x:%x:%lu", kind, &pid, &maj, &min,
			   &ino) == 5 &&
		    strcmp(kind, "FLOCK") == 0 && ino == (unsigned long)st.st_ino &&
		    maj == major(st.st_dev) && min == minor(st.st_dev))
			found = pid;
	}
	fclose(f);
	return found;
}

/* When process pid started, as RFC 3339 UTC; false when unknown. */
static bool process_started(char *out, size_t len, long pid)
{
	char path[64], line[256], *p = NULL;
	unsigned long long ticks = 0;
	long long btime = -1;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "re"))) {
		if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')))
			/* after "pid (comm)": state is field 3, starttime field 22 */
			n = (size_t)sscanf(p + 2,
					   "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
					   "%*s %*s %*s %*s %*s %*s %*s %llu",
					   &ticks);
		fclose(f);
	}
	if (n != 1 || !(f = fopen("/proc/stat", "re")))
		return false;
	while (btime < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &btime) != 1)
			btime = -1;
	fclose(f);
	if (btime < 0)
		return false;
	time_rfc3339(
	    out, len,
	    (int64_t)(btime + (long long)(ticks / (unsigned long long)sysconf(_SC_CLK_TCK))));
	return true;
}

/*
 * A holder that wrote no record (a foreign flock(1), or one that died
 * between its flock and its record while a child kept the descriptor):
 * named from /proc/locks, with its process's start as the time.
 */
static int unrecorded_message(int fd, const char *path, const char *what)
{
	char host[256] = "localhost", started[32];
	long pid = flock_holder(fd);

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (pid > 0 && process_started(started, sizeof(started), pid))
		return err_set(MSGW_ELOCKED,
			       "%s is locked by pid %ld on %s since %s at the latest (it wrote no "
			       "owner record) ('%s')",
			       what, pid, host, started, path);
	if (pid > 0)
		return err_set(MSGW_ELOCKED,
			       "%s is locked by pid %ld on %s (it wrote no owner record) ('%s')",
			       what, pid, host, path);
	return err_set(MSGW_ELOCKED,
		       "%s is locked by a process this host cannot see (no owner record, not in "
		       "/proc/locks) ('%s')",
		       what, path);
}

/* The owner record names the holder: the message, or 1 when it does not. */
static int recorded_message(int fd, const char *path, const char *what)
{
	char owner[512], host[256] = "?", since[64] = "?";
	long pid = 0;

	read_owner(fd, owner, sizeof(owner));
	if (sscanf(owner, "%255s %ld %*s %63s", host, &pid, since) != 3)
		return 1;
	return err_set(MSGW_ELOCKED, "%s is locked by pid %ld on %s since %s ('%s')", what, pid,
		       host, since, path);
}

/*
 * Take the flock, or say who holds it.  A holder writes its record just
 * after its flock and clears it just before letting go, so an empty record
 * is read again for a moment (LOCK_WAIT_MS) before the holder is looked up
 * without it: a run never says only "another run".
 */
#define LOCK_WAIT_MS 500

static int take_or_name(int fd, const char *path, const char *what)
{
	int waited, rc;

	for (waited = 0;; waited += 10) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return err_set_errno(MSGW_ERR, errno, "cannot lock '%s'", path);
		rc = recorded_message(fd, path, what);
		if (rc <= 0)
			return rc;
		if (waited >= LOCK_WAIT_MS)
			return unrecorded_message(fd, path, what);
		usleep(10000);
	}
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
	rc = take_or_name(fd, path, what);
	if (rc) {
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
