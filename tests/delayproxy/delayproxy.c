/*
 * delayproxy.c: msgw-delayproxy, a TCP proxy on 127.0.0.1 that delays every
 * byte by a fixed time in each direction: a slow link of our own for the
 * benchmark's WAN section and for tests (this kernel has no netem, and the
 * network tests may only talk to loopback).
 *
 *   msgw-delayproxy LISTEN_PORT TARGET_PORT ONE_WAY_MS
 *
 * Listens on 127.0.0.1:LISTEN_PORT (0: any free port) and forwards each
 * connection to 127.0.0.1:TARGET_PORT.  Bytes read from one side are written
 * to the other ONE_WAY_MS milliseconds later, in order, so a round trip
 * costs twice ONE_WAY_MS and the bandwidth stays loopback's.  An end of file
 * is passed on after the same delay (shutdown of the write side).  Prints
 * "port N" on stdout once listening.  Ends on SIGTERM, SIGINT, or when its
 * parent ends (PR_SET_PDEATHSIG), so a test that forgets it cannot leak it.
 * One thread, poll(2), any number of connections; a side whose queue holds
 * more than QUEUE_MAX bytes is not read until the queue drains.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN  512
#define CHUNK	  65536
#define QUEUE_MAX (8u << 20)

struct chunk {
	struct chunk *next;
	int64_t due; /* ms, CLOCK_MONOTONIC */
	size_t len, off;
	int eof;
	char data[];
};

/* one direction: read from `from`, queue, write to `to` */
struct flow {
	int from, to;
	struct chunk *head, *tail;
	size_t queued;
	int read_done;	/* `from` gave end of file or failed */
	int write_done; /* end of file passed on to `to` */
};

struct conn {
	int used;
	struct flow up, down; /* up: client to target */
};

static struct conn conns[MAX_CONN];
static volatile sig_atomic_t stopping;
static int64_t delay_ms;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	int one = 1;
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int connect_target(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || set_nonblock(fd) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void flow_free(struct flow *f)
{
	while (f->head) {
		struct chunk *c = f->head;
		f->head = c->next;
		free(c);
	}
	f->tail = NULL;
	f->queued = 0;
}

static void conn_close(struct conn *c)
{
	flow_free(&c->up);
	flow_free(&c->down);
	close(c->up.from);
	close(c->up.to);
	c->used = 0;
}

static int flow_push(struct flow *f, const char *buf, size_t len, int eof)
{
	struct chunk *c = malloc(sizeof(*c) + len);
	if (!c)
		return -1;
	c->next = NULL;
	c->due = now_ms() + delay_ms;
	c->len = len;
	c->off = 0;
	c->eof = eof;
	memcpy(c->data, buf, len);
	if (f->tail)
		f->tail->next = c;
	else
		f->head = c;
	f->tail = c;
	f->queued += len;
	return 0;
}

/* read what `from` has; 0 or -1 (the connection must close) */
static int flow_read(struct flow *f)
{
	char buf[CHUNK];
	ssize_t n = read(f->from, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		return -1;
	if (n == 0) {
		f->read_done = 1;
		return flow_push(f, "", 0, 1);
	}
	return flow_push(f, buf, (size_t)n, 0);
}

/* write every due chunk; 0 or -1 (the connection must close) */
static int flow_write(struct flow *f, int64_t now)
{
	while (f->head && f->head->due <= now) {
		struct chunk *c = f->head;
		if (c->eof) {
			(void)shutdown(f->to, SHUT_WR);
			f->write_done = 1;
		} else {
			ssize_t n = write(f->to, c->data + c->off, c->len - c->off);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return 0;
			if (n < 0)
				return -1;
			c->off += (size_t)n;
			f->queued -= (size_t)n;
			if (c->off < c->len)
				return 0;
		}
		f->head = c->next;
		if (!f->head)
			f->tail = NULL;
		free(c);
	}
	return 0;
}

static void accept_one(int lfd, int target_port)
{
	int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	int tfd;
	if (cfd < 0)
		return;
	tfd = connect_target(target_port);
	if (tfd < 0 || set_nonblock(cfd) < 0) {
		close(cfd);
		if (tfd >= 0)
			close(tfd);
		return;
	}
	for (int i = 0; i < MAX_CONN; i++) {
		if (!conns[i].used) {
			memset(&conns[i], 0, sizeof(conns[i]));
			conns[i].used = 1;
			conns[i].up.from = cfd;
			conns[i].up.to = tfd;
			conns[i].down.from = tfd;
			conns[i].down.to = cfd;
			return;
		}
	}
	close(cfd);
	close(tfd);
}

/* the poll events one flow asks for on its two descriptors */
static void flow_events(const struct flow *f, int64_t now, short *ev_from, short *ev_to,
			int64_t *next_due)
{
	if (!f->read_done && f->queued < QUEUE_MAX)
		*ev_from |= POLLIN;
	if (f->head) {
		if (f->head->due <= now)
			*ev_to |= POLLOUT;
		else if (*next_due < 0 || f->head->due < *next_due)
			*next_due = f->head->due;
	}
}

static int listen_on(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 256) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	printf("port %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	return fd;
}

static int step(int lfd, int target_port)
{
	static struct pollfd pfd[1 + 2 * MAX_CONN];
	int map[1 + 2 * MAX_CONN];
	int64_t now = now_ms(), next_due = -1;
	int n = 1, timeout;
	pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
	for (int i = 0; i < MAX_CONN; i++) {
		struct conn *c = &conns[i];
		short ev_client = 0, ev_target = 0;
		if (!c->used)
			continue;
		flow_events(&c->up, now, &ev_client, &ev_target, &next_due);
		flow_events(&c->down, now, &ev_target, &ev_client, &next_due);
		pfd[n] = (struct pollfd){.fd = c->up.from, .events = ev_client};
		map[n++] = i;
		pfd[n] = (struct pollfd){.fd = c->up.to, .events = ev_target};
		map[n++] = i;
	}
	timeout = next_due < 0 ? 1000 : (int)(next_due - now);
	if (poll(pfd, (nfds_t)n, timeout < 0 ? 0 : timeout) < 0)
		return errno == EINTR ? 0 : -1;
	if (pfd[0].revents & POLLIN)
		accept_one(lfd, target_port);
	now = now_ms();
	for (int k = 1; k < n; k += 2) {
		struct conn *c = &conns[map[k]];
		int bad = 0;
		if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR) && !c->up.read_done)
			bad |= flow_read(&c->up);
		if (pfd[k + 1].revents & (POLLIN | POLLHUP | POLLERR) && !c->down.read_done)
			bad |= flow_read(&c->down);
		bad |= flow_write(&c->up, now);
		bad |= flow_write(&c->down, now);
		if (bad || (c->up.write_done && c->down.write_done))
			conn_close(c);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int lfd, target_port;
	if (argc != 4) {
		fprintf(stderr, "usage: msgw-delayproxy LISTEN_PORT TARGET_PORT ONE_WAY_MS\n");
		return 2;
	}
	target_port = atoi(argv[2]);
	delay_ms = atoi(argv[3]);
	if (target_port <= 0 || target_port > 65535 || delay_ms < 0) {
		fprintf(stderr, "msgw-delayproxy: bad port or delay\n");
		return 2;
	}
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	lfd = listen_on(atoi(argv[1]));
	if (lfd < 0) {
		fprintf(stderr, "msgw-delayproxy: cannot listen on 127.0.0.1:%s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	while (!stopping)
		if (step(lfd, target_port) < 0)
			break;
	for (int i = 0; i < MAX_CONN; i++)
		if (conns[i].used)
			conn_close(&conns[i]);
	close(lfd);
	return 0;
}
