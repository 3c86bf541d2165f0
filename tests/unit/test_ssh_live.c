/*
 * test_ssh_live: the SFTP backend of fsys and the ssh backend of service
 * against a real OpenSSH server.  tests/e2e/t4400-ssh-live.sh starts the
 * server and runs this with:
 *   MSGW_TEST_SSH_URL    ssh://USER@127.0.0.1:PORT/DIR (DIR empty, scratch)
 *   MSGW_TEST_SSH_KEY    the client key;  MSGW_TEST_SSH_KNOWN  known_hosts
 *   MSGW_TEST_SSH_PORT   the server's port (for tcp probes)
 *   MSGW_TEST_SIM        msgw-sim;  MSGW_TEST_SIM_GW  a msgw-sim data dir
 *   MSGW_TEST_SIM_PORT   its console port
 *   MSGW_TEST_SSHD_PID   the server's listening process (its children, the
 *                        connections, are killed to drop them)
 * Without them (tests/run-all runs every unit binary) each test is skipped.
 * The server runs on this machine, so the tests may look at DIR directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "err.h"
#include "fsys.h"
#include "location.h"
#include "service.h"
#include "ssh.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct live {
	const char *url, *key, *known, *sim, *sim_gw;
	int port, sim_port, sshd_pid;
	char *dir; /* DIR of the URL */
	struct fsys_open_opts opts;
};

static struct live L;

static int group_setup(void **state)
{
	struct location loc;

	(void)state;
	L.url = getenv("MSGW_TEST_SSH_URL");
	L.key = getenv("MSGW_TEST_SSH_KEY");
	L.known = getenv("MSGW_TEST_SSH_KNOWN");
	L.sim = getenv("MSGW_TEST_SIM");
	L.sim_gw = getenv("MSGW_TEST_SIM_GW");
	L.port = getenv("MSGW_TEST_SSH_PORT") ? atoi(getenv("MSGW_TEST_SSH_PORT")) : 0;
	L.sim_port = getenv("MSGW_TEST_SIM_PORT") ? atoi(getenv("MSGW_TEST_SIM_PORT")) : 0;
	L.sshd_pid = getenv("MSGW_TEST_SSHD_PID") ? atoi(getenv("MSGW_TEST_SSHD_PID")) : 0;
	if (!L.url || !L.key || !L.known)
		return 0;
	if (location_parse(&loc, L.url))
		return -1;
	L.dir = xstrdup(loc.path);
	location_release(&loc);
	L.opts.identity = L.key;
	L.opts.known_hosts = L.known;
	L.opts.timeout = 10;
	ssh_register();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(L.dir);
	ssh_cache_flush();
	return 0;
}

#define NEED_SERVER()                                                                              \
	do {                                                                                       \
		if (!L.dir)                                                                        \
			skip();                                                                    \
	} while (0)

static struct fsys *open_fs(void)
{
	struct fsys *fs = NULL;

	if (fsys_open(&fs, L.url, &L.opts))
		fail_msg("fsys_open '%s': %s", L.url, err_last());
	return fs;
}

static void write_via(struct fsys *fs, const char *path, const char *text, uint32_t mode)
{
	struct fsys_file *f = NULL;

	assert_int_equal(fsys_open_write(fs, path, mode, &f), 0);
	assert_int_equal(fsys_write(f, text, strlen(text)), 0);
	if (fsys_sync(f))
		fail_msg("sync: %s", err_last());
	assert_int_equal(fsys_close(f), 0);
}

static char *local_path(const char *rel)
{
	return xasprintf("%s/%s", L.dir, rel);
}

static void test_files(void **state)
{
	struct fsys_dirent *ents = NULL;
	struct fsys_stat st;
	struct fsys *fs;
	char *buf = NULL, *p;
	size_t n = 0, len = 0;

	(void)state;
	NEED_SERVER();
	fs = open_fs();
	assert_string_equal(fs->ops->scheme, "sftp");
	assert_int_equal(fsys_mkdirs(fs, "a/b", 0755), 0);
	write_via(fs, "a/b/f.txt", "hello over sftp\n", 0640);
	write_via(fs, "a/b/e.txt", "", 0644);
	assert_int_equal(fsys_stat(fs, "a/b/f.txt", &st), 0);
	assert_int_equal(st.type, FSYS_FILE);
	assert_int_equal(st.mode, 0640);
	assert_int_equal(st.size, 16);
	assert_int_equal(st.uid, getuid());
	assert_true(st.mtime > 1000000000);
	assert_int_equal(st.ino, 0);
	assert_int_equal(st.ctime, 0);
	assert_int_equal(fsys_stat(fs, "a", &st), 0);
	assert_int_equal(st.type, FSYS_DIR);
	assert_int_equal(fsys_stat(fs, "", &st), 0);
	assert_int_equal(st.type, FSYS_DIR);

	assert_int_equal(fsys_list(fs, "a/b", &ents, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ents[0].name, "e.txt");
	assert_string_equal(ents[1].name, "f.txt");
	assert_int_equal(ents[1].st.size, 16);
	assert_int_equal(ents[1].st.mode, 0640);
	fsys_dirents_free(ents, n);

	assert_int_equal(fsys_read_all(fs, "a/b/f.txt", &buf, &len), 0);
	assert_int_equal(len, 16);
	assert_string_equal(buf, "hello over sftp\n");
	free(buf);
	assert_int_equal(fsys_read_all(fs, "a/b/e.txt", &buf, &len), 0);
	assert_int_equal(len, 0);
	free(buf);

	p = local_path("a/b/f.txt");
	assert_int_equal(access(p, R_OK), 0);
	free(p);
	fsys_free(fs);
}

static void test_big_file(void **state)
{
	size_t len = 3 * 1024 * 1024 + 17, i, got = 0;
	char *data, *back = NULL;
	struct fsys_file *f = NULL;
	struct fsys *fs;

	(void)state;
	NEED_SERVER();
	data = xmalloc(len);
	for (i = 0; i < len; i++)
		data[i] = (char)(i * 7 + i / 4096);
	fs = open_fs();
	assert_int_equal(fsys_open_write(fs, "big.bin", 0600, &f), 0);
	assert_int_equal(fsys_write(f, data, len), 0);
	assert_int_equal(fsys_close(f), 0);
	assert_int_equal(fsys_read_all(fs, "big.bin", &back, &got), 0);
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	free(back);
	free(data);
	assert_int_equal(fsys_unlink(fs, "big.bin"), 0);
	fsys_free(fs);
}

static void test_missing(void **state)
{
	struct fsys_dirent *ents = NULL;
	struct fsys_file *f = NULL;
	struct fsys_stat st;
	struct fsys *fs;
	size_t n = 0;

	(void)state;
	NEED_SERVER();
	fs = open_fs();
	assert_int_equal(fsys_stat(fs, "nope", &st), MSGW_ENOTFOUND);
	assert_non_null(strstr(err_last(), ": cannot stat '"));
	assert_non_null(strstr(err_last(), "/nope': No such file or directory"));
	assert_memory_equal(err_last(), "ssh '", 5);
	assert_int_equal(fsys_open_read(fs, "nope", &f), MSGW_ENOTFOUND);
	assert_null(f);
	assert_int_equal(fsys_list(fs, "nope", &ents, &n), MSGW_ENOTFOUND);
	assert_int_equal(fsys_unlink(fs, "nope"), MSGW_ENOTFOUND);
	assert_int_equal(fsys_rename(fs, "nope", "nope2"), MSGW_ENOTFOUND);
	fsys_free(fs);
}

static void test_rename(void **state)
{
	struct fsys_stat st;
	struct fsys *fs;
	char *buf = NULL;
	size_t len;

	(void)state;
	NEED_SERVER();
	fs = open_fs();
	assert_int_equal(fsys_rename_overwrites(fs), 0);
	write_via(fs, "r1", "one\n", 0644);
	write_via(fs, "r2", "two\n", 0644);
	assert_int_equal(fsys_rename(fs, "r1", "r3"), 0);
	assert_int_equal(fsys_stat(fs, "r1", &st), MSGW_ENOTFOUND);
	/* OpenSSH's SFTP rename does not replace: callers swap in two steps */
	assert_int_equal(fsys_rename(fs, "r3", "r2"), MSGW_ERR);
	assert_non_null(
	    strstr(err_last(), "the target exists (SFTP rename does not replace files)"));
	assert_int_equal(fsys_read_all(fs, "r2", &buf, &len), 0);
	assert_string_equal(buf, "two\n");
	free(buf);
	/* the durable write still replaces a file, through its two-step path */
	assert_int_equal(fsys_write_atomic(fs, "r2", "new two\n", 8, 0600), 0);
	assert_int_equal(fsys_read_all(fs, "r2", &buf, &len), 0);
	assert_string_equal(buf, "new two\n");
	free(buf);
	assert_int_equal(fsys_stat(fs, "r2", &st), 0);
	assert_int_equal(st.mode, 0600);
	assert_int_equal(fsys_unlink(fs, "r2"), 0);
	assert_int_equal(fsys_unlink(fs, "r3"), 0);
	fsys_free(fs);
}

static void test_links_modes_times(void **state)
{
	char name[64], *target = NULL;
	struct fsys_stat st;
	struct fsys *fs;

	(void)state;
	NEED_SERVER();
	fs = open_fs();
	write_via(fs, "m.txt", "m\n", 0644);
	if (fsys_symlink(fs, "m.txt", "m.link"))
		fail_msg("symlink: %s", err_last());
	assert_int_equal(fsys_readlink(fs, "m.link", &target), 0);
	assert_string_equal(target, "m.txt");
	free(target);
	assert_int_equal(fsys_stat(fs, "m.link", &st), 0);
	assert_int_equal(st.type, FSYS_LINK);
	assert_int_equal(fsys_symlink(fs, "elsewhere", "m.link"), MSGW_ERR);
	assert_non_null(strstr(err_last(), "m.link': File exists"));
	assert_int_equal(fsys_symlink(fs, "elsewhere", "m.txt"), MSGW_ERR);
	assert_int_equal(fsys_symlink(fs, "x", "no/such/dir/link"), MSGW_ERR);
	assert_int_equal(fsys_readlink(fs, "m.txt", &target), MSGW_ERR);
	assert_int_equal(fsys_chmod(fs, "m.txt", 0600), 0);
	assert_int_equal(fsys_utime(fs, "m.txt", 1000000000, 123), 0);
	assert_int_equal(fsys_chown(fs, "m.txt", getuid(), getgid()), 0);
	assert_int_equal(fsys_stat(fs, "m.txt", &st), 0);
	assert_int_equal(st.mode, 0600);
	assert_int_equal(st.mtime, 1000000000);
	assert_int_equal(st.mtime_nsec, 0);
	assert_int_equal(fsys_uname(fs, getuid(), name, sizeof(name)), MSGW_ENOTFOUND);
	assert_int_equal(fsys_sync_dir(fs, ""), 0);
	assert_int_equal(fsys_unlink(fs, "m.link"), 0);
	assert_int_equal(fsys_unlink(fs, "m.txt"), 0);
	fsys_free(fs);
}

static void test_remove(void **state)
{
	struct fsys_stat st;
	struct fsys *fs;

	(void)state;
	NEED_SERVER();
	fs = open_fs();
	assert_int_equal(fsys_mkdirs(fs, "t/u/v", 0700), 0);
	write_via(fs, "t/u/v/w", "w", 0644);
	assert_int_equal(fsys_symlink(fs, "../nowhere", "t/u/dangling"), 0);
	assert_int_equal(fsys_rmdir(fs, "t/u"), MSGW_ERR);
	assert_int_equal(fsys_mkdir(fs, "t", 0700), MSGW_ERR);
	assert_int_equal(fsys_remove_tree(fs, "t"), 0);
	assert_int_equal(fsys_stat(fs, "t", &st), MSGW_ENOTFOUND);
	assert_int_equal(fsys_remove_tree(fs, "a"), 0);
	fsys_free(fs);
}

static void test_session_cached(void **state)
{
	struct ssh_opts o = {L.key, NULL, L.known, 10};
	struct ssh_session *a = NULL, *b = NULL;
	struct location loc;
	struct fsys *fs1, *fs2;

	(void)state;
	NEED_SERVER();
	fs1 = open_fs();
	fs2 = open_fs();
	assert_int_equal(location_parse(&loc, L.url), 0);
	assert_int_equal(ssh_session_get(&a, &loc, &o), 0);
	assert_int_equal(ssh_session_get(&b, &loc, &o), 0);
	assert_ptr_equal(a, b);
	ssh_session_put(a);
	ssh_session_put(b);
	fsys_free(fs1);
	fsys_free(fs2);
	location_release(&loc);
}

static struct service_host *open_host(void)
{
	struct service_host *h = NULL;

	if (service_host_open(&h, L.url, &L.opts))
		fail_msg("service_host_open: %s", err_last());
	return h;
}

static void test_run(void **state)
{
	struct service_result r;
	struct service_host *h;

	(void)state;
	NEED_SERVER();
	h = open_host();
	assert_non_null(strstr(h->name, "@127.0.0.1:"));
	assert_int_equal(service_run(h, "echo out; echo err >&2; exit 3", 10, &r), 0);
	assert_int_equal(r.status, 3);
	assert_false(r.timed_out);
	assert_string_equal(r.out, "out\n");
	assert_string_equal(r.err, "err\n");
	service_result_release(&r);
	assert_int_equal(service_run(h, "printf '%s' \"it's quoted\"", 10, &r), 0);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "it's quoted");
	service_result_release(&r);
	assert_int_equal(service_run(h, "no-such-command-msgw", 10, &r), 0);
	assert_int_equal(r.status, 127);
	service_result_release(&r);
	assert_int_equal(service_run_checked(h, "stop", "true", 10), 0);
	assert_int_equal(service_run_checked(h, "stop", "echo broken >&2; exit 2", 10), MSGW_ERR);
	assert_string_equal(err_last(),
			    "stop: 'echo broken >&2; exit 2' exited with status 2: broken");
	/* stdin is /dev/null: a command reading it ends at once */
	assert_int_equal(service_run(h, "cat; echo done", 10, &r), 0);
	assert_string_equal(r.out, "done\n");
	service_result_release(&r);
	service_host_free(h);
}

static void test_capture_cap(void **state)
{
	struct service_result r;
	struct service_host *h;

	(void)state;
	NEED_SERVER();
	h = open_host();
	assert_int_equal(
	    service_run(h, "head -c 200000 /dev/zero | tr '\\000' x; echo end >&2", 20, &r), 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(strlen(r.out), 64 * 1024);
	assert_string_equal(r.err, "end\n");
	service_result_release(&r);
	service_host_free(h);
}

static void test_timeout_kills(void **state)
{
	struct service_result r;
	struct service_host *h;
	char *pidfile, *cmd, *text = NULL;
	int64_t t0, took;
	long pid;
	int i;
	FILE *f;

	(void)state;
	NEED_SERVER();
	h = open_host();
	pidfile = local_path("sleep.pid");
	cmd = xasprintf("echo $$ >'%s'; exec sleep 100", pidfile);
	t0 = time_now_ms();
	assert_int_equal(service_run(h, cmd, 2, &r), 0);
	took = time_now_ms() - t0;
	assert_true(r.timed_out);
	assert_int_equal(r.status, -1);
	assert_true(took >= 2000 && took < 8000);
	service_result_release(&r);
	f = fopen(pidfile, "r");
	assert_non_null(f);
	text = xcalloc(1, 32);
	assert_non_null(fgets(text, 32, f));
	fclose(f);
	pid = atol(text);
	assert_true(pid > 1);
	for (i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++)
		usleep(50000);
	if (kill((pid_t)pid, 0) == 0)
		fail_msg("the timed-out command (pid %ld) is still running", pid);
	/* the session is still good for the next command */
	assert_int_equal(service_run(h, "echo again", 10, &r), 0);
	assert_string_equal(r.out, "again\n");
	service_result_release(&r);
	assert_int_equal(service_run_checked(h, "start", "sleep 30", 1), MSGW_ERR);
	assert_string_equal(err_last(), "start: 'sleep 30' timed out after 1 s (killed)");
	unlink(pidfile);
	free(text);
	free(cmd);
	free(pidfile);
	service_host_free(h);
}

static void test_probe(void **state)
{
	struct service_result r;
	struct service_host *h;
	char *health;

	(void)state;
	NEED_SERVER();
	h = open_host();
	assert_int_equal(h->ops->tcp_probe(h->ctx, "127.0.0.1", L.port, 2000), 0);
	assert_int_equal(h->ops->tcp_probe(h->ctx, "127.0.0.1", 1, 2000), MSGW_ERR);
	assert_int_equal(service_run(h, "echo still", 10, &r), 0);
	assert_string_equal(r.out, "still\n");
	service_result_release(&r);
	health = xasprintf("tcp:127.0.0.1:%d", L.port);
	assert_int_equal(service_health(h, health, 5), 0);
	free(health);
	assert_int_equal(service_health(h, "tcp:127.0.0.1:1", 1), MSGW_EHEALTH);
	assert_non_null(strstr(err_last(), "nothing accepts connections on 127.0.0.1:1"));
	service_host_free(h);
}

static int run_sim(struct service_host *h, const char *verb, char **out)
{
	struct service_result r;
	char *cmd = xasprintf("'%s' %s '%s'", L.sim, verb, L.sim_gw);
	int status;

	if (service_run(h, cmd, 20, &r))
		fail_msg("%s: %s", cmd, err_last());
	status = r.status;
	if (out)
		*out = xstrdup(r.out);
	service_result_release(&r);
	free(cmd);
	return status;
}

static void test_sim_service(void **state)
{
	struct service_host *h;
	char *out = NULL, *health;

	(void)state;
	NEED_SERVER();
	if (!L.sim || !L.sim_gw || !L.sim_port)
		skip();
	h = open_host();
	assert_int_equal(run_sim(h, "status", &out), 3);
	assert_string_equal(out, "stopped\n");
	free(out);
	assert_int_equal(run_sim(h, "start", NULL), 0);
	assert_int_equal(run_sim(h, "status", &out), 0);
	assert_memory_equal(out, "running ", 8);
	free(out);
	health = xasprintf("tcp:%d", L.sim_port);
	assert_int_equal(service_health(h, health, 10), 0);
	assert_int_equal(run_sim(h, "stop", NULL), 0);
	assert_int_equal(run_sim(h, "status", NULL), 3);
	assert_int_equal(service_health(h, health, 1), MSGW_EHEALTH);
	free(health);
	service_host_free(h);
}

/* Kill the children of the test's sshd: every connection it serves. */
static int drop_connections(void)
{
	struct dirent *de;
	int killed = 0;
	DIR *d = opendir("/proc");

	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[300], line[256];
		long pid = atol(de->d_name), ppid = -1;
		FILE *f;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/status", pid);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "PPid: %ld", &ppid) == 1)
				break;
		fclose(f);
		if (ppid == L.sshd_pid && kill((pid_t)pid, SIGKILL) == 0)
			killed++;
	}
	closedir(d);
	usleep(200000);
	return killed;
}

static void test_dropped_connection(void **state)
{
	struct service_result r;
	struct service_host *h;
	struct fsys_stat st;
	struct fsys *fs;
	int64_t t0;

	(void)state;
	NEED_SERVER();
	if (!L.sshd_pid)
		skip();
	fs = open_fs();
	h = open_host();
	assert_int_equal(fsys_stat(fs, "", &st), 0);
	assert_true(drop_connections() > 0);
	t0 = time_now_ms();
	assert_int_equal(fsys_stat(fs, "", &st), MSGW_ERR);
	assert_true(time_now_ms() - t0 < 5000);
	assert_memory_equal(err_last(), "ssh '", 5);
	assert_non_null(strstr(err_last(), "': cannot stat '"));
	fsys_free(fs);
	/* the broken session is not handed out again: both reconnect */
	fs = open_fs();
	assert_int_equal(fsys_stat(fs, "", &st), 0);
	assert_int_equal(service_run(h, "echo back", 10, &r), 0);
	assert_string_equal(r.out, "back\n");
	service_result_release(&r);
	/* a drop while a command runs: an error, not a hang */
	assert_true(drop_connections() > 0);
	t0 = time_now_ms();
	assert_int_equal(service_run(h, "sleep 1; echo late", 10, &r), MSGW_ERR);
	assert_true(time_now_ms() - t0 < 5000);
	assert_memory_equal(err_last(), "ssh '", 5);
	assert_int_equal(service_run(h, "echo again", 10, &r), 0);
	assert_string_equal(r.out, "again\n");
	service_result_release(&r);
	service_host_free(h);
	fsys_free(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_files),
	    cmocka_unit_test(test_big_file),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_rename),
	    cmocka_unit_test(test_links_modes_times),
	    cmocka_unit_test(test_remove),
	    cmocka_unit_test(test_session_cached),
	    cmocka_unit_test(test_run),
	    cmocka_unit_test(test_capture_cap),
	    cmocka_unit_test(test_timeout_kills),
	    cmocka_unit_test(test_probe),
	    cmocka_unit_test(test_sim_service),
	    cmocka_unit_test(test_dropped_connection),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
