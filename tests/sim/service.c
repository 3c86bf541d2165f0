/*
 * service.c: the simulated gateway service: `start`, `stop` and `status`.
 * start validates Gateway.json (an invalid one keeps the service down, like
 * the real product), then forks a daemon in its own session with stdio on
 * /dev/null and no inherited descriptors, so callers that capture output do
 * not hang.  The daemon writes DIR.pid (beside DIR, never inside it), waits
 * MSGW_SIM_START_DELAY seconds if asked, listens on the console port and
 * answers every connection with "MSGW-SIM OK <domain> <mailboxes>".  start
 * returns once the daemon reports, through a pipe, that it listens or why it
 * cannot.  SIGTERM ends the daemon cleanly unless MSGW_SIM_STOP_HANG=1 made
 * it ignore SIGTERM.  The configuration is read once, at start: changes need
 * a restart, as with the real service.  No SMTP or POP3 is spoken.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "sim.h"

/* What the daemon needs, taken from the options and Gateway.json at start. */
struct svc {
	char *dir;		/* data directory */
	char *pidfile;		/* DIR.pid */
	char *greeting;		/* the line each connection gets */
	const char *addr;	/* --listen */
	long port;		/* ports.console */
	long pop3_port;		/* ports.pop3 */
	struct sim_gw gw;	/* the configuration loaded at start, for POP3 logins */
	struct ssl_ctx_st *tls; /* the console's and POP3's certificate */
	double delay;		/* MSGW_SIM_START_DELAY */
	int hang;		/* MSGW_SIM_STOP_HANG=1 */
	double linger;		/* MSGW_SIM_STOP_DELAY: seconds between SIGTERM and exit */
	char *config;		/* Gateway.json as loaded, saved back on exit when lingering */
	int ready_fd;		/* the daemon's end of the readiness pipe */
};

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static char *pidfile_path(const char *dir)
{
	char *clean = sim_clean_dir(dir);
	char *path = sim_strdupf("%s.pid", clean);

	free(clean);
	return path;
}

/* 0 and the pid when path holds one; -1 when missing or unreadable. */
static int read_pid(const char *path, pid_t *out)
{
	char *text = NULL;
	size_t len = 0;
	long v;
	int rc;

	if (sim_read_file(path, &text, &len))
		return -1;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	rc = sim_parse_long(text, 1, 0x7fffffffL, &v);
	free(text);
	if (rc == 0)
		*out = (pid_t)v;
	return rc;
}

/* A zombie counts as gone: our daemons' parent may never reap them. */
static int pid_alive(pid_t pid)
{
	char path[64], *text = NULL, *paren;
	size_t len = 0;
	int zombie;

	if (kill(pid, 0) != 0 && errno != EPERM)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (sim_read_file(path, &text, &len))
		return 1;
	paren = strrchr(text, ')');
	zombie = paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
	free(text);
	return !zombie;
}

/* The pid of a live daemon for dir, or 0. */
static pid_t running_pid(const char *pidfile)
{
	pid_t pid;

	if (read_pid(pidfile, &pid) == 0 && pid_alive(pid))
		return pid;
	return 0;
}

int sim_cmd_status(const struct sim_opts *o)
{
	char *pidfile = pidfile_path(o->args[0]);
	pid_t pid = running_pid(pidfile);

	free(pidfile);
	if (pid) {
		printf("running %ld\n", (long)pid);
		return SIM_EXIT_OK;
	}
	printf("stopped\n");
	return SIM_EXIT_STOPPED;
}

static int wait_gone(pid_t pid, long seconds)
{
	struct timespec tick = {0, 100 * 1000 * 1000};

	for (long i = 0; i < seconds * 10; i++) {
		if (!pid_alive(pid))
			return 0;
		nanosleep(&tick, NULL);
	}
	return pid_alive(pid) ? -1 : 0;
}

static void remove_pidfile_of(const char *pidfile, pid_t pid)
{
	pid_t cur;

	if (read_pid(pidfile, &cur) == 0 && cur == pid)
		unlink(pidfile);
}

static int stop_pid(const char *pidfile, pid_t pid, long timeout)
{
	if (kill(pid, SIGTERM) != 0 && errno != ESRCH) {
		sim_seterr("cannot signal pid %ld: %s", (long)pid, strerror(errno));
		return SIM_EXIT_FAIL;
	}
	if (wait_gone(pid, timeout)) {
		sim_seterr("service (pid %ld) did not stop within %ld s", (long)pid, timeout);
		return SIM_EXIT_FAIL;
	}
	remove_pidfile_of(pidfile, pid);
	return SIM_EXIT_OK;
}

/* MSGW_SIM_STOP_EARLY=1: stop only signals the daemon and exits 0 */
static int early_stop(void)
{
	const char *v = getenv("MSGW_SIM_STOP_EARLY");

	return v && strcmp(v, "1") == 0;
}

int sim_cmd_stop(const struct sim_opts *o)
{
	char *pidfile = pidfile_path(o->args[0]);
	long timeout = 10;
	pid_t pid;
	int rc = SIM_EXIT_OK;

	if (o->timeout && sim_parse_long(o->timeout, 0, 3600, &timeout)) {
		free(pidfile);
		return sim_usage_error(o, "--timeout must be a number of seconds from 0 to 3600");
	}
	if (early_stop()) {
		/* like `sc.exe stop`: ask, do not wait, and say 0 whatever happens */
		if (read_pid(pidfile, &pid) == 0 && pid_alive(pid))
			kill(pid, SIGTERM);
	} else if (read_pid(pidfile, &pid) != 0) {
		sim_warn("not running");
	} else if (!pid_alive(pid)) {
		unlink(pidfile);
		sim_warn("not running (removed stale pid file '%s')", pidfile);
	} else if (stop_pid(pidfile, pid, timeout) != SIM_EXIT_OK) {
		rc = sim_fail();
	}
	free(pidfile);
	return rc;
}

/* Tells the waiting start command how things went; it may be gone. */
static void report(struct svc *s, const char *msg)
{
	if (s->ready_fd < 0)
		return;
	if (write(s->ready_fd, msg, strlen(msg)) < 0) {
		/* start was killed before we were ready: nobody to tell */
	}
	close(s->ready_fd);
	s->ready_fd = -1;
}

static void report_error(struct svc *s, const char *what)
{
	char *msg = sim_strdupf("ERR %s\n", what);

	sim_log(s->dir, "service failed to start: %s", what);
	report(s, msg);
	free(msg);
}

/* Own session, stdio on /dev/null, only the readiness pipe kept open. */
static int detach(struct svc *s)
{
	int fd = fcntl(s->ready_fd, F_DUPFD_CLOEXEC, 10);
	int nul = open("/dev/null", O_RDWR);

	if (fd < 0 || nul < 0 || setsid() < 0)
		return -1;
	close(s->ready_fd);
	s->ready_fd = fd;
	if (dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0)
		return -1;
	if (nul > 2)
		close(nul);
	if (close_range(3, (unsigned)fd - 1, 0) || close_range((unsigned)fd + 1, ~0U, 0))
		return -1;
	return 0;
}

/* Handlers set; SIGTERM stays blocked except while waiting in waitmask. */
static int setup_signals(const struct svc *s, sigset_t *waitmask)
{
	struct sigaction term, ign;
	sigset_t block;

	memset(&term, 0, sizeof(term));
	memset(&ign, 0, sizeof(ign));
	term.sa_handler = on_term;
	ign.sa_handler = SIG_IGN;
	sigemptyset(&term.sa_mask);
	sigemptyset(&ign.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigaction(SIGTERM, s->hang ? &ign : &term, NULL) || sigaction(SIGINT, &term, NULL) ||
	    sigaction(SIGPIPE, &ign, NULL) || sigprocmask(SIG_BLOCK, &block, waitmask))
		return -1;
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGINT);
	return 0;
}

static void start_delay(const struct svc *s, const sigset_t *waitmask)
{
	struct timespec now, end, left;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)s->delay;
	end.tv_nsec += (long)((s->delay - (double)(time_t)s->delay) * 1e9);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	while (!stop_requested) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0)
			return;
		ppoll(NULL, 0, &left, waitmask);
	}
}

static int bind_listen(const struct addrinfo *ai)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The listening socket, or -1 with a message set. */
static int open_listener(const struct svc *s)
{
	struct addrinfo hints, *ai = NULL;
	char port[16];
	int fd, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%ld", s->port);
	rc = getaddrinfo(s->addr, port, &hints, &ai);
	if (rc != 0) {
		sim_seterr("invalid listen address '%s': %s", s->addr, gai_strerror(rc));
		return -1;
	}
	fd = bind_listen(ai);
	if (fd < 0)
		sim_seterr("cannot listen on %s:%s: %s", s->addr, port, strerror(errno));
	freeaddrinfo(ai);
	return fd;
}

static void serve(const struct svc *s, int lfd, int pfd, const sigset_t *waitmask)
{
	while (!stop_requested) {
		struct pollfd p[2] = {{lfd, POLLIN, 0}, {pfd, POLLIN, 0}};
		int r = ppoll(p, pfd >= 0 ? 2 : 1, NULL, waitmask);

		if (r < 0 && errno != EINTR) {
			sim_log(s->dir, "poll failed: %s", strerror(errno));
			return;
		}
		if (r > 0 && (p[0].revents & POLLIN))
			sim_console_answer(lfd, s->greeting, s->tls);
		if (r > 0 && pfd >= 0 && (p[1].revents & POLLIN))
			sim_pop3_answer(pfd, &s->gw, s->tls);
	}
}

/* The POP3 listener on ports.pop3, or -1 (logged) when it cannot be bound:
 * the default port 110 needs privileges the tests do not have. */
static int open_pop3(struct svc *s)
{
	long console = s->port;
	int fd;

	s->port = s->pop3_port;
	fd = open_listener(s);
	s->port = console;
	if (fd < 0)
		sim_log(s->dir, "no POP3: %s", sim_lasterr());
	return fd;
}

/*
 * MSGW_SIM_STOP_DELAY: the daemon takes that long to shut down after
 * SIGTERM (status still says running), then writes back the Gateway.json it
 * loaded, as a service that saves its settings on exit does: files swapped
 * before it is gone are overwritten.
 */
static void linger(const struct svc *s)
{
	struct timespec t;
	char *path;

	if (s->linger <= 0)
		return;
	t.tv_sec = (time_t)s->linger;
	t.tv_nsec = (long)((s->linger - (double)t.tv_sec) * 1e9);
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
	path = sim_strdupf("%s/%s", s->dir, SIM_CONFIG);
	if (s->config && sim_write_atomic(path, s->config, strlen(s->config), 0644) == 0)
		sim_log(s->dir, "settings saved on exit to '%s'", path);
	free(path);
}

/* The daemon, after fork: returns its exit code up through main. */
static int daemon_main(struct svc *s)
{
	sigset_t waitmask;
	char *pid = sim_strdupf("%ld\n", (long)getpid());
	int lfd = -1;

	if (detach(s) || setup_signals(s, &waitmask)) {
		report_error(s, "cannot detach the daemon");
		free(pid);
		return SIM_EXIT_FAIL;
	}
	if (sim_write_atomic(s->pidfile, pid, strlen(pid), 0644) == 0) {
		start_delay(s, &waitmask);
		lfd = stop_requested ? -1 : open_listener(s);
	}
	free(pid);
	if (lfd < 0 && !stop_requested) {
		report_error(s, sim_lasterr());
		remove_pidfile_of(s->pidfile, getpid());
		return SIM_EXIT_FAIL;
	}
	if (lfd >= 0) {
		int pfd = open_pop3(s);

		s->tls = sim_tls_new();
		if (!s->tls)
			sim_log(s->dir, "console without TLS: %s", sim_lasterr());
		sim_log(s->dir, "service started: pid %ld, console on %s:%ld", (long)getpid(),
			s->addr, s->port);
		report(s, "OK\n");
		serve(s, lfd, pfd, &waitmask);
		close(lfd);
		if (pfd >= 0)
			close(pfd);
		linger(s);
	}
	remove_pidfile_of(s->pidfile, getpid());
	sim_log(s->dir, "service stopped: pid %ld", (long)getpid());
	return SIM_EXIT_OK;
}

/* Waits for the daemon's "OK" or "ERR <message>" on the pipe. */
static int wait_ready(int rfd)
{
	char buf[1100];
	size_t len = 0;
	ssize_t r;

	while (len < sizeof(buf) - 1 && (r = read(rfd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (strcmp(buf, "OK") == 0)
		return SIM_EXIT_OK;
	if (strncmp(buf, "ERR ", 4) == 0)
		sim_seterr("%s", buf + 4);
	else
		sim_seterr("the service exited before it was listening");
	return sim_fail();
}

static int fork_daemon(struct svc *s)
{
	int fds[2], rc;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC)) {
		sim_seterr("cannot create a pipe: %s", strerror(errno));
		return sim_fail();
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		sim_seterr("cannot fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return sim_fail();
	}
	if (pid == 0) {
		close(fds[0]);
		s->ready_fd = fds[1];
		return daemon_main(s);
	}
	close(fds[1]);
	rc = wait_ready(fds[0]);
	close(fds[0]);
	return rc;
}

/* A number of seconds from 0 to 3600 in the environment (unset: 0). */
static int seconds_of(const char *name, double *out)
{
	const char *v = getenv(name);
	char *end = NULL;

	*out = 0;
	if (!v || !*v)
		return 0;
	errno = 0;
	*out = strtod(v, &end);
	if (errno || *end || !(*out >= 0 && *out <= 3600)) {
		sim_seterr("%s must be a number of seconds from 0 to 3600", name);
		return -1;
	}
	return 0;
}

static int read_env(struct svc *s)
{
	const char *hang = getenv("MSGW_SIM_STOP_HANG");

	s->hang = hang && strcmp(hang, "1") == 0;
	if (seconds_of("MSGW_SIM_START_DELAY", &s->delay) ||
	    seconds_of("MSGW_SIM_STOP_DELAY", &s->linger))
		return -1;
	return 0;
}

/* Takes what the daemon needs from a valid configuration. */
static int load_svc(struct svc *s, const char *dir)
{
	struct sim_gw gw;

	if (sim_gw_load(&gw, dir)) {
		char detail[1024];

		snprintf(detail, sizeof(detail), "%s", sim_lasterr());
		sim_seterr("refusing to start: %s", detail);
		return -1;
	}
	s->dir = sim_strdupf("%s", gw.dir);
	if (s->linger > 0) {
		size_t len;

		if (sim_read_file(gw.path, &s->config, &len))
			s->config = NULL;
	}
	s->greeting = sim_strdupf("MSGW-SIM OK %s %zu\n", sim_gw_str(&gw, "domain"),
				  json_array_size(json_object_get(gw.root, "mailboxes")));
	s->port =
	    (long)json_integer_value(json_object_get(json_object_get(gw.root, "ports"), "console"));
	s->pop3_port =
	    (long)json_integer_value(json_object_get(json_object_get(gw.root, "ports"), "pop3"));
	s->gw = gw; /* kept for POP3 logins; the daemon's copy lives until it exits */
	return 0;
}

int sim_cmd_start(const struct sim_opts *o)
{
	struct svc s;
	pid_t pid;
	int rc = SIM_EXIT_FAIL;

	memset(&s, 0, sizeof(s));
	s.ready_fd = -1;
	s.addr = o->listen ? o->listen : "127.0.0.1";
	s.pidfile = pidfile_path(o->args[0]);
	if (read_env(&s) || load_svc(&s, o->args[0])) {
		rc = sim_fail();
	} else if ((pid = running_pid(s.pidfile)) != 0) {
		sim_seterr("already running (pid %ld)", (long)pid);
		rc = sim_fail();
	} else {
		rc = fork_daemon(&s);
	}
	free(s.dir);
	free(s.pidfile);
	free(s.greeting);
	free(s.config);
	if (s.gw.root)
		sim_gw_release(&s.gw);
	return rc;
}
