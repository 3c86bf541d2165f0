/*
 * jobs: one gateway's snapshot with hooks and state, and a batch of them
 * read concurrently by worker processes; see jobs.h.
 */
#include "jobs.h"
#include "err.h"
#include "log.h"
#include "service.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *hook_command(const struct config *cfg, const struct config_gateway *gw,
				enum hook_kind kind, const char **name)
{
	static const char *const names[] = {"hook-pre-snapshot", "hook-post-snapshot",
					    "hook-post-restore", "hook-failure"};
	const char *own[] = {gw->hook_pre_snapshot, gw->hook_post_snapshot, gw->hook_post_restore,
			     gw->hook_failure};
	const char *global[] = {cfg->hook_pre_snapshot, cfg->hook_post_snapshot,
				cfg->hook_post_restore, cfg->hook_failure};

	*name = names[kind];
	return own[kind] ? own[kind] : global[kind];
}

int hook_run(const struct config *cfg, const struct config_gateway *gw, enum hook_kind kind,
	     const char *snapshot, const char *result)
{
	struct service_host *local = NULL;
	const char *name, *cmd = hook_command(cfg, gw, kind, &name);
	char what[128];
	int rc;

	if (!cmd || !*cmd)
		return 0;
	setenv("MSGW_GATEWAY", gw->name, 1);
	setenv("MSGW_SNAPSHOT", snapshot ? snapshot : "", 1);
	setenv("MSGW_RESULT", result ? result : "", 1);
	snprintf(what, sizeof(what), "%s of '%s'", name, gw->name);
	service_host_local(&local);
	rc = service_run_checked(local, what, cmd, cfg->hook_timeout);
	service_host_free(local);
	unsetenv("MSGW_GATEWAY");
	unsetenv("MSGW_SNAPSHOT");
	unsetenv("MSGW_RESULT");
	return rc;
}

/*
 * A status record that cannot be written fails the run (monitoring would
 * otherwise go stale instead of red); the snapshot itself, if written, stays.
 */
static int record(const struct config *cfg, const struct config_gateway *gw,
		  const struct job_result *res, int rc, const char *error)
{
	if (!state_record_snapshot(cfg->state_dir, gw->name, res->result, rc ? error : NULL,
				   rc || res->skipped ? NULL : res->snap.id))
		return 0;
	if (rc || res->skipped || res->snap.unchanged)
		return err_wrap(MSGW_ERR, "cannot record the status of '%s'", gw->name);
	return err_wrap(MSGW_ERR, "cannot record the status of '%s' (snapshot %.12s was written)",
			gw->name, res->snap.id);
}

static int take(struct job_result *out, struct repo *r, const struct config_gateway *gw,
		const struct snapshot_opts *opts)
{
	struct fsys_open_opts fo = {gw->identity, gw->passphrase_file, gw->known_hosts,
				    gw->timeout};
	struct fsys *fs = NULL;
	int rc = fsys_open(&fs, gw->location, &fo);

	if (!rc)
		rc = snapshot_take(&out->snap, r, gw, fs, opts);
	fsys_free(fs);
	return rc;
}

/*
 * A worker's turn to write to the repository (see job_snapshot_batch): it
 * asks the batch's process with TURN_ASK and waits for TURN_GO; TURN_DONE
 * gives the turn back.  sock is -1 outside a batch (no turn to take).
 */
enum { TURN_ASK = 'C', TURN_GO = 'G', TURN_DONE = 'D', RESULT = 'R' };

struct turn {
	int sock;
	bool held;
};

static int turn_take(void *arg)
{
	struct turn *t = arg;
	char c = TURN_ASK;

	if (t->held)
		return 0;
	if (send(t->sock, &c, 1, MSG_NOSIGNAL) != 1 || read(t->sock, &c, 1) != 1 || c != TURN_GO)
		return err_set(MSGW_ERR, "no turn to write to the repository: the run is gone");
	t->held = true;
	return 0;
}

static void turn_give_back(struct turn *t)
{
	char c = TURN_DONE;

	if (t && t->held && send(t->sock, &c, 1, MSG_NOSIGNAL) == 1)
		t->held = false;
}

/* job_snapshot, writing in the batch's turn when turn is not NULL. */
static int job_run(struct job_result *out, struct repo *r, const struct config *cfg,
		   const struct config_gateway *gw, const struct snapshot_opts *opts,
		   struct turn *turn)
{
	char error[1024] = "";
	int rc;

	memset(out, 0, sizeof(*out));
	rc = hook_run(cfg, gw, HOOK_PRE_SNAPSHOT, NULL, NULL);
	if (rc) {
		out->skipped = true;
		out->result = "skipped";
		err_wrap(rc, "skipping the snapshot of '%s'", gw->name);
	} else {
		struct snapshot_opts so = *opts;
		char *cache = job_statcache_path(cfg, gw->name);

		so.statcache = cache;
		if (turn) {
			so.before_write = turn_take;
			so.before_write_arg = turn;
		}
		rc = take(out, r, gw, &so);
		turn_give_back(turn); /* the status and the hooks need no turn */
		free(cache);
		out->result = rc ? "failed" : out->snap.unchanged ? "unchanged" : "written";
	}
	if (rc)
		snprintf(error, sizeof(error), "%s", err_last());
	if (record(cfg, gw, out, rc, error)) {
		if (rc) /* both failed: say both, the snapshot's error first */
			log_error("%s", error);
		snprintf(error, sizeof(error), "%s", err_last());
		out->result = "failed";
		rc = MSGW_ERR;
	}
	if (hook_run(cfg, gw, rc ? HOOK_FAILURE : HOOK_POST_SNAPSHOT, rc ? NULL : out->snap.id,
		     out->result))
		log_warn("%s", err_last());
	if (rc) /* the hooks may have overwritten the message */
		err_set(rc, "%s", error);
	return rc;
}

int job_snapshot(struct job_result *out, struct repo *r, const struct config *cfg,
		 const struct config_gateway *gw, const struct snapshot_opts *opts)
{
	return job_run(out, r, cfg, gw, opts, NULL);
}

char *job_statcache_path(const struct config *cfg, const char *gateway)
{
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		log_warn("no stat cache: cannot create '%s': %s", cfg->state_dir, strerror(errno));
		return NULL;
	}
	return xasprintf("%s/statcache-%s", cfg->state_dir, gateway);
}

void job_record_drill(const struct config *cfg, const char *gateway, bool ok, const char *error)
{
	char name[300], when[32];
	struct state st;

	snprintf(name, sizeof(name), "status-%s", gateway);
	if (state_load(&st, cfg->state_dir, name))
		return;
	time_rfc3339(when, sizeof(when), (int64_t)time(NULL));
	state_set(&st, "last-drill-attempt", when);
	state_set(&st, "last-drill-result", ok ? "ok" : "failed");
	state_set(&st, "last-drill-error", ok ? "" : error);
	if (ok)
		state_set(&st, "last-drill", when);
	if (state_save(&st))
		log_warn("%s", err_last());
	state_release(&st);
}

/* ---- a batch of gateways, read concurrently ----------------------------- */

/* A worker's result as it sends it: this, then errlen bytes of message. */
struct job_wire {
	int rc;
	bool skipped;
	char result[16];
	struct snapshot_result snap;
	size_t errlen;
};

struct worker {
	pid_t pid;     /* 0: not started */
	int sock, log; /* our ends: messages, its stderr; -1 once closed */
	bool finished, in_result;
	struct buf in;	 /* its result (after RESULT) */
	struct buf text; /* what it wrote to stderr */
	size_t dropped;	 /* bytes of it left out (beyond JOB_LOG_MAX) */
	int rc;
	char result[16];
	struct job_result res;
	char *error;
};

struct batch_run {
	const struct job_batch *b;
	struct worker *w;
	size_t started, running, emitted;
	size_t *queue, qhead, qtail; /* workers waiting for the turn, in order */
	size_t holder;		     /* the worker holding the turn, or NONE */
};

#define NONE ((size_t)-1)

static void worker_close(struct worker *w)
{
	if (w->sock >= 0)
		close(w->sock);
	if (w->log >= 0)
		close(w->log);
	w->sock = w->log = -1;
}

/* A worker's stderr into its text (the excess counted, not kept); false at
 * its end or when nothing more is there now. */
static bool worker_read_log(struct worker *w)
{
	char chunk[4096];
	ssize_t got = read(w->log, chunk, sizeof(chunk));
	size_t room;

	if (got < 0 && errno == EINTR)
		return true;
	if (got <= 0) {
		if (got == 0 || errno != EAGAIN) {
			close(w->log);
			w->log = -1;
		}
		return false;
	}
	room = JOB_LOG_MAX - (w->text.len < JOB_LOG_MAX ? w->text.len : JOB_LOG_MAX);
	buf_add(&w->text, chunk, (size_t)got < room ? (size_t)got : room);
	if ((size_t)got > room)
		w->dropped += (size_t)got - room;
	return true;
}

/* In the worker: send its result, the message included. */
static void worker_send(int sock, int rc, const struct job_result *res, const char *error)
{
	struct job_wire wire;
	struct buf b;
	char c = RESULT;
	size_t off = 0;

	memset(&wire, 0, sizeof(wire));
	wire.rc = rc;
	wire.skipped = res->skipped;
	snprintf(wire.result, sizeof(wire.result), "%s", res->result ? res->result : "failed");
	wire.snap = res->snap;
	wire.errlen = rc ? strlen(error) : 0;
	buf_init(&b);
	buf_add(&b, &c, 1);
	buf_add(&b, &wire, sizeof(wire));
	buf_add(&b, error, wire.errlen);
	while (off < b.len) {
		ssize_t sent = send(sock, b.data + off, b.len - off, MSG_NOSIGNAL);

		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
			break;
		off += (size_t)sent;
	}
	buf_release(&b);
}

/*
 * The worker process: dies with us, keeps none of the other workers'
 * descriptors, writes its stderr (and stdout, which it never uses) into the
 * log pipe, opens the repository anew (with the configured key) and
 * snapshots one gateway.  The
 * repository lock's descriptor is inherited and never released here.
 */
static void worker_main(struct batch_run *br, size_t i, int sock, int log, pid_t parent)
{
	const struct job_batch *b = br->b;
	struct turn turn = {sock, false};
	struct job_result res;
	struct repo *r = NULL;
	size_t j;
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	for (j = 0; j < br->started; j++)
		worker_close(&br->w[j]);
	dup2(log, 1);
	dup2(log, 2);
	close(log);
	memset(&res, 0, sizeof(res));
	rc = repo_open(&r, repo_path(b->repo));
	if (!rc) /* an encrypted repository: the key, as the front end attached it */
		repo_use_key_file(r, b->cfg->key_file);
	if (rc) {
		res.result = "failed";
		err_wrap(rc, "snapshot of '%s' failed", b->gws[i]->name);
		if (state_record_snapshot(b->cfg->state_dir, b->gws[i]->name, "failed", err_last(),
					  NULL))
			log_warn("cannot record the status of '%s'", b->gws[i]->name);
	} else {
		rc = job_run(&res, r, b->cfg, b->gws[i], b->opts, &turn);
	}
	worker_send(sock, rc, &res, rc ? err_last() : "");
	_exit(0);
}

static void worker_fail(struct worker *w, const char *fmt, const char *name, const char *why)
{
	w->rc = MSGW_ERR;
	snprintf(w->result, sizeof(w->result), "failed");
	w->error = xasprintf(fmt, name, why);
}

static void batch_start(struct batch_run *br)
{
	size_t i = br->started++;
	struct worker *w = &br->w[i];
	const char *name = br->b->gws[i]->name;
	int sv[2] = {-1, -1}, lp[2] = {-1, -1};
	pid_t parent = getpid();

	w->sock = w->log = -1;
	buf_init(&w->in);
	buf_init(&w->text);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(lp, O_CLOEXEC) < 0) {
		worker_fail(w, "cannot start the snapshot of '%s': %s", name, strerror(errno));
		goto fail;
	}
	fflush(NULL); /* nothing buffered may be written twice */
	w->pid = fork();
	if (w->pid == 0) {
		close(sv[0]);
		close(lp[0]);
		worker_main(br, i, sv[1], lp[1], parent);
	}
	if (w->pid < 0) {
		w->pid = 0;
		worker_fail(w, "cannot start the snapshot of '%s': %s", name, strerror(errno));
		goto fail;
	}
	close(sv[1]);
	close(lp[1]);
	fcntl(lp[0], F_SETFL, O_NONBLOCK);
	w->sock = sv[0];
	w->log = lp[0];
	br->running++;
	return;
fail:
	if (sv[0] >= 0)
		close(sv[0]), close(sv[1]);
	if (lp[0] >= 0)
		close(lp[0]), close(lp[1]);
	w->finished = true;
}

/* Its result as sent, or a failure saying how the worker ended. */
static void worker_collect(struct worker *w, const char *name, int status)
{
	struct job_wire wire;
	char why[64];

	if (w->in.len >= sizeof(wire)) {
		memcpy(&wire, w->in.data, sizeof(wire));
		if (w->in.len == sizeof(wire) + wire.errlen) {
			w->rc = wire.rc;
			memcpy(w->result, wire.result, sizeof(w->result));
			w->result[sizeof(w->result) - 1] = '\0';
			w->res.snap = wire.snap;
			w->res.skipped = wire.skipped;
			w->error = xstrndup(w->in.data + sizeof(wire), wire.errlen);
			return;
		}
	}
	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "exited with status %d",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	worker_fail(w, "snapshot of '%s' failed: its worker %s", name, why);
}

/* The worker's end: reaped, its stderr read to the end, its turn (or its
 * place in the queue) given up, its result taken. */
static void batch_finish(struct batch_run *br, size_t i)
{
	struct worker *w = &br->w[i];
	const struct config_gateway *gw = br->b->gws[i];
	size_t q;
	int status = 0;

	while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
		;
	while (w->log >= 0 && worker_read_log(w))
		;
	worker_close(w);
	if (br->holder == i)
		br->holder = NONE;
	for (q = br->qhead; q < br->qtail; q++)
		if (br->queue[q] == i)
			br->queue[q] = NONE;
	worker_collect(w, gw->name, status);
	if (w->in.len < sizeof(struct job_wire) &&
	    state_record_snapshot(br->b->cfg->state_dir, gw->name, "failed", w->error, NULL))
		log_warn("cannot record the status of '%s'", gw->name);
	buf_release(&w->in);
	w->finished = true;
	br->running--;
}

/* Messages from a worker: turn requests and returns, then its result; its
 * end when the socket closes. */
static void batch_read(struct batch_run *br, size_t i)
{
	struct worker *w = &br->w[i];
	char chunk[4096];
	ssize_t got = read(w->sock, chunk, sizeof(chunk)), k;

	if (got < 0 && errno == EINTR)
		return;
	if (got <= 0) {
		batch_finish(br, i);
		return;
	}
	for (k = 0; k < got && !w->in_result; k++) {
		if (chunk[k] == TURN_ASK)
			br->queue[br->qtail++] = i;
		else if (chunk[k] == TURN_DONE && br->holder == i)
			br->holder = NONE;
		else if (chunk[k] == RESULT)
			w->in_result = true;
	}
	if (k < got)
		buf_add(&w->in, chunk + k, (size_t)(got - k));
}

/* The turn to the next worker waiting, when nobody holds it. */
static void batch_grant(struct batch_run *br)
{
	char c = TURN_GO;

	while (br->holder == NONE && br->qhead < br->qtail) {
		size_t i = br->queue[br->qhead++];

		if (i == NONE)
			continue;
		br->holder = i;
		if (send(br->w[i].sock, &c, 1, MSG_NOSIGNAL) != 1)
			br->holder = NONE; /* gone: its end comes through its socket */
	}
}

/* Every finished gateway whose predecessors are all reported: its stderr,
 * then done(). */
static void batch_emit(struct batch_run *br)
{
	while (br->emitted < br->started && br->w[br->emitted].finished) {
		struct worker *w = &br->w[br->emitted];
		const struct config_gateway *gw = br->b->gws[br->emitted];

		fwrite(w->text.data, 1, w->text.len, stderr);
		if (w->dropped)
			log_warn("%zu more bytes of messages of '%s' left out", w->dropped,
				 gw->name);
		w->res.result = w->result;
		if (w->rc)
			err_set(w->rc, "%s", w->error);
		br->b->done(br->b->arg, gw, w->rc, &w->res);
		buf_release(&w->text);
		free(w->error);
		w->error = NULL;
		br->emitted++;
	}
}

/* Wait for what the running workers say, and act on it. */
static void batch_poll(struct batch_run *br)
{
	struct pollfd *p = xcalloc(2 * br->started, sizeof(*p));
	size_t *who = xcalloc(2 * br->started, sizeof(*who));
	size_t i, n = 0;

	for (i = 0; i < br->started; i++) {
		if (br->w[i].finished)
			continue;
		if (br->w[i].log >= 0)
			p[n].fd = br->w[i].log, p[n].events = POLLIN, who[n++] = i;
		p[n].fd = br->w[i].sock, p[n].events = POLLIN, who[n++] = i;
	}
	if (poll(p, n, -1) > 0) {
		for (i = 0; i < n; i++) {
			struct worker *w = &br->w[who[i]];

			if (!p[i].revents || w->finished)
				continue;
			if (p[i].fd == w->log)
				worker_read_log(w);
			else if (p[i].fd == w->sock)
				batch_read(br, who[i]);
		}
	}
	free(p);
	free(who);
}

static size_t batch_sequential(const struct job_batch *b)
{
	size_t i;

	for (i = 0; i < b->n && !(b->stop && *b->stop); i++) {
		struct job_result res;
		int rc = job_snapshot(&res, b->repo, b->cfg, b->gws[i], b->opts);

		b->done(b->arg, b->gws[i], rc, &res);
	}
	return i;
}

/* Whether the next gateway may start: a gateway named twice ("snapshot A
 * A") waits for its first run, which writes the tip its second compares
 * with. */
static bool batch_may_start(const struct batch_run *br, size_t parallel)
{
	const struct job_batch *b = br->b;
	size_t j;

	if (br->running >= parallel || br->started >= b->n || (b->stop && *b->stop))
		return false;
	for (j = 0; j < br->started; j++)
		if (!br->w[j].finished && strcmp(b->gws[j]->name, b->gws[br->started]->name) == 0)
			return false;
	return true;
}

size_t job_snapshot_batch(const struct job_batch *b)
{
	struct batch_run br = {0};
	size_t parallel = b->parallel ? b->parallel : 1;

	if (b->n <= 1 || parallel == 1)
		return batch_sequential(b);
	br.b = b;
	br.w = xcalloc(b->n, sizeof(*br.w));
	br.queue = xcalloc(b->n, sizeof(*br.queue));
	br.holder = NONE;
	for (;;) {
		while (batch_may_start(&br, parallel))
			batch_start(&br);
		batch_emit(&br);
		if (br.running == 0 && (br.started == b->n || (b->stop && *b->stop)))
			break;
		if (br.running)
			batch_poll(&br);
		batch_grant(&br);
	}
	free(br.w);
	free(br.queue);
	return br.started;
}
