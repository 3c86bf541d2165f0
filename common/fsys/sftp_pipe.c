/*
 * sftp_pipe: SFTP version 3 with many requests in flight (see sftp_pipe.h).
 * The session stays in blocking mode: requests are written, then one reply
 * is read at a time; the replies expected never exceed the channel's
 * receive window (READ_BUDGET), so the server never waits on us while we
 * wait on it.
 */
#include "sftp_pipe.h"
#include "err.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum {
	FXP_INIT = 1,
	FXP_VERSION = 2,
	FXP_OPEN = 3,
	FXP_CLOSE = 4,
	FXP_READ = 5,
	FXP_WRITE = 6,
	FXP_FSTAT = 8,
	FXP_SETSTAT = 9,
	FXP_FSETSTAT = 10,
	FXP_OPENDIR = 11,
	FXP_READDIR = 12,
	FXP_REMOVE = 13,
	FXP_RMDIR = 15,
	FXP_RENAME = 18,
	FXP_LSTAT = 7,
	FXP_EXTENDED = 200,
	FXP_STATUS = 101,
	FXP_HANDLE = 102,
	FXP_DATA = 103,
	FXP_NAME = 104,
	FXP_ATTRS = 105,
};

#define FX_OK		  0
#define FX_EOF		  1
#define FX_OP_UNSUPPORTED 8
#define MAX_REQ		  4096		 /* requests in flight, at most */
#define MAX_ACTIVE	  256		 /* jobs (open handles) in flight */
#define CHUNK		  32768		 /* bytes per READ */
#define READ_BUDGET	  (6u << 20)	 /* READ bytes in flight */
#define WINDOW		  (8u << 20)	 /* the channel's receive window */
#define READ_AT_ONCE	  (256u << 10)	 /* bytes taken from the channel per read */
#define MAX_PKT		  (CHUNK + 1024) /* DATA replies; NAME may be larger */
#define MAX_NAME_PKT	  (1u << 20)
#define MAX_NAMES	  (1u << 20) /* entries of one folder */

/* what a request was, so its reply can be checked and used */
enum op {
	OP_OPEN,
	OP_FSTAT_FIRST,
	OP_READ,
	OP_FSTAT_LAST,
	OP_CLOSE,
	OP_READDIR,
	OP_REMOVE,
	OP_LSTAT, /* the request of an LSTAT job */
	OP_ONE,	  /* the request of a RENAME, REMOVE, SETSTAT or RMDIR job */
	OP_WRITE,
	OP_SOFT_SETSTAT, /* owner, times: a failure is ignored */
	OP_MODE_SETSTAT,
	OP_FSYNC
};

struct req {
	bool used;
	uint32_t id;
	size_t job;
	enum op op;
	uint64_t off;
	uint32_t len;
};

/* job states */
enum { J_NEW, J_OPENING, J_READING, J_LISTING, J_END };

struct sftp_pipe {
	struct ssh_session *ssh;
	LIBSSH2_CHANNEL *ch;
	uint32_t next_id;
	struct req req[MAX_REQ];
	size_t outstanding;
	uint64_t read_bytes; /* READ bytes in flight */
	struct buf out;
	unsigned char *in; /* replies read: in[in_off..in_len) not yet used */
	size_t in_off, in_len, in_cap;
	bool dead;
	bool last_rename; /* the last reply answered a RENAME, SETSTAT or RMDIR job (tests) */
	bool last_write;  /* the last reply answered a WRITE job (tests) */
};

/* ---- encoding --------------------------------------------------------- */

static void put32(struct buf *b, uint32_t v)
{
	unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};

	buf_add(b, c, 4);
}

static void put64(struct buf *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b, (uint32_t)v);
}

static void putstr(struct buf *b, const void *s, size_t len)
{
	put32(b, (uint32_t)len);
	buf_add(b, s, len);
}

/* Start a packet: length (patched by end_packet), type, id. */
static size_t begin_packet(struct buf *b, uint8_t type, uint32_t id)
{
	size_t at = b->len;

	put32(b, 0);
	buf_add(b, &type, 1);
	put32(b, id);
	return at;
}

static void end_packet(struct buf *b, size_t at)
{
	uint32_t len = (uint32_t)(b->len - at - 4);
	unsigned char *c = (unsigned char *)b->data + at;

	c[0] = (unsigned char)(len >> 24);
	c[1] = (unsigned char)(len >> 16);
	c[2] = (unsigned char)(len >> 8);
	c[3] = (unsigned char)len;
}

/* ---- decoding (untrusted) ----------------------------------------------- */

struct cur {
	const unsigned char *p;
	size_t left;
};

static int get8(struct cur *c, uint8_t *v)
{
	if (c->left < 1)
		return -1;
	*v = c->p[0];
	c->p++, c->left--;
	return 0;
}

static int get32(struct cur *c, uint32_t *v)
{
	if (c->left < 4)
		return -1;
	*v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 |
	     (uint32_t)c->p[3];
	c->p += 4, c->left -= 4;
	return 0;
}

static int get64(struct cur *c, uint64_t *v)
{
	uint32_t hi, lo;

	if (get32(c, &hi) || get32(c, &lo))
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int getstr(struct cur *c, const unsigned char **s, uint32_t *len)
{
	if (get32(c, len) || *len > c->left)
		return -1;
	*s = c->p;
	c->p += *len, c->left -= *len;
	return 0;
}

static int get_attrs(struct cur *c, LIBSSH2_SFTP_ATTRIBUTES *a)
{
	uint32_t flags, v, n, i;
	const unsigned char *s;

	memset(a, 0, sizeof(*a));
	if (get32(c, &flags))
		return -1;
	a->flags = flags;
	if (flags & LIBSSH2_SFTP_ATTR_SIZE) {
		uint64_t size;

		if (get64(c, &size))
			return -1;
		a->filesize = size;
	}
	if (flags & LIBSSH2_SFTP_ATTR_UIDGID) {
		if (get32(c, &v))
			return -1;
		a->uid = v;
		if (get32(c, &v))
			return -1;
		a->gid = v;
	}
	if (flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) {
		if (get32(c, &v))
			return -1;
		a->permissions = v;
	}
	if (flags & LIBSSH2_SFTP_ATTR_ACMODTIME) {
		if (get32(c, &v))
			return -1;
		a->atime = v;
		if (get32(c, &v))
			return -1;
		a->mtime = v;
	}
	if (flags & LIBSSH2_SFTP_ATTR_EXTENDED) {
		if (get32(c, &n))
			return -1;
		for (i = 0; i < n; i++) /* type and data of each: skipped */
			if (getstr(c, &s, &v) || getstr(c, &s, &v))
				return -1;
	}
	return 0;
}

int sftp_pipe_parse(struct sftp_reply *out, const unsigned char *pkt, size_t len)
{
	struct cur c = {pkt, len};

	memset(out, 0, sizeof(*out));
	if (get8(&c, &out->type) || get32(&c, &out->id))
		return -1;
	switch (out->type) {
	case FXP_VERSION:
		return 0; /* id is the version; extensions are ignored */
	case FXP_STATUS:
		return get32(&c, &out->status); /* message and language: not used */
	case FXP_HANDLE:
		if (getstr(&c, &out->str, &out->str_len) || out->str_len == 0 || out->str_len > 256)
			return -1;
		return 0;
	case FXP_DATA:
		return getstr(&c, &out->str, &out->str_len);
	case FXP_ATTRS:
		return get_attrs(&c, &out->attrs);
	case FXP_NAME:
		if (get32(&c, &out->count))
			return -1;
		out->rest = c.p;
		out->rest_len = c.left;
		return 0;
	default:
		return -1;
	}
}

int sftp_pipe_next_name(struct sftp_reply *r, const unsigned char **name_out, uint32_t *len_out,
			LIBSSH2_SFTP_ATTRIBUTES *attrs_out)
{
	struct cur c = {r->rest, r->rest_len};
	const unsigned char *longname;
	uint32_t llen;

	if (getstr(&c, name_out, len_out) || getstr(&c, &longname, &llen) ||
	    get_attrs(&c, attrs_out))
		return -1;
	r->rest = c.p;
	r->rest_len = c.left;
	return 0;
}

/* ---- the channel ---------------------------------------------------------- */

static int transport_fail(struct sftp_pipe *p)
{
	p->dead = true;
	return ssh_session_fail(p->ssh, MSGW_ERR, "sftp requests");
}

static int hostile(struct sftp_pipe *p, const char *what)
{
	p->dead = true;
	return err_set(MSGW_EHOSTILE, "ssh '%s': sftp server sent %s", ssh_session_name(p->ssh),
		       what);
}

static int flush(struct sftp_pipe *p)
{
	size_t at = 0;

	while (at < p->out.len) {
		ssize_t n = libssh2_channel_write(p->ch, p->out.data + at, p->out.len - at);

		if (n < 0)
			return transport_fail(p);
		at += (size_t)n;
	}
	p->out.len = 0;
	return 0;
}

/* Read until one whole packet is buffered at in + in_off; *len_out is
 * its body's length. */
static int read_packet(struct sftp_pipe *p, size_t *len_out)
{
	for (;;) {
		const unsigned char *at = p->in + p->in_off;
		size_t have = p->in_len - p->in_off, want = 4;
		ssize_t n;

		if (have >= 4) {
			uint32_t len = (uint32_t)at[0] << 24 | (uint32_t)at[1] << 16 |
				       (uint32_t)at[2] << 8 | (uint32_t)at[3];

			if (len < 5 || len > MAX_NAME_PKT)
				return hostile(p, "a packet of impossible length");
			if (have >= 4 + (size_t)len) {
				*len_out = len;
				return 0;
			}
			want = 4 + (size_t)len;
		}
		/* what is left moves to the front, once per read, not per packet */
		if (p->in_off) {
			memmove(p->in, p->in + p->in_off, have);
			p->in_off = 0;
			p->in_len = have;
		}
		if (p->in_cap < want + READ_AT_ONCE) {
			p->in_cap = want + READ_AT_ONCE;
			p->in = xrealloc(p->in, p->in_cap);
		}
		n = libssh2_channel_read(p->ch, (char *)p->in + p->in_len, p->in_cap - p->in_len);
		if (n < 0)
			return transport_fail(p);
		if (n == 0) {
			p->dead = true;
			return err_set(MSGW_ERR,
				       "ssh '%s': sftp requests: the server closed the channel",
				       ssh_session_name(p->ssh));
		}
		p->in_len += (size_t)n;
	}
}

static void consume(struct sftp_pipe *p, size_t len)
{
	p->in_off += 4 + len;
}

int sftp_pipe_open(struct sftp_pipe **out, struct ssh_session *ssh)
{
	LIBSSH2_SESSION *s = ssh_session_handle(ssh);
	struct sftp_pipe *p = xcalloc(1, sizeof(*p));
	struct sftp_reply r;
	size_t len;
	int rc;

	*out = NULL;
	p->ssh = ssh;
	buf_init(&p->out);
	ssh_session_keepalive(ssh);
	p->ch = libssh2_channel_open_ex(s, "session", sizeof("session") - 1, WINDOW,
					LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
	if (!p->ch || libssh2_channel_subsystem(p->ch, "sftp")) {
		rc = transport_fail(p);
		goto fail;
	}
	libssh2_channel_handle_extended_data2(p->ch, LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE);
	put32(&p->out, 5);
	buf_add(&p->out, "\x01", 1); /* FXP_INIT */
	put32(&p->out, 3);
	rc = flush(p);
	if (!rc)
		rc = read_packet(p, &len);
	if (rc)
		goto fail;
	if (sftp_pipe_parse(&r, p->in + p->in_off + 4, len) || r.type != FXP_VERSION || r.id < 3) {
		rc = hostile(p, "no SFTP version 3 greeting");
		goto fail;
	}
	consume(p, len);
	*out = p;
	return 0;
fail:
	sftp_pipe_free(p);
	return rc;
}

void sftp_pipe_free(struct sftp_pipe *p)
{
	if (!p)
		return;
	if (p->ch) {
		if (!p->dead && !ssh_session_broken(p->ssh))
			libssh2_channel_close(p->ch);
		libssh2_channel_free(p->ch);
	}
	buf_release(&p->out);
	free(p->in);
	free(p);
}

void sftp_job_release(struct sftp_job *j)
{
	size_t i;

	for (i = 0; i < j->n_names; i++)
		free(j->names[i].name);
	free(j->names);
	free(j->data);
	j->names = NULL;
	j->data = NULL;
	j->n_names = j->cap_names = 0;
	j->done = false;
}

/* ---- requests ------------------------------------------------------------- */

static struct req *new_req(struct sftp_pipe *p, size_t job, enum op op)
{
	struct req *q;

	for (;;) { /* a slot whose earlier request is still out is skipped */
		q = &p->req[p->next_id % MAX_REQ];
		if (!q->used)
			break;
		p->next_id++;
	}
	memset(q, 0, sizeof(*q));
	q->used = true;
	q->id = p->next_id++;
	q->job = job;
	q->op = op;
	p->outstanding++;
	return q;
}

static void send_path(struct sftp_pipe *p, size_t job, struct sftp_job *j, uint8_t type, enum op op)
{
	struct req *q = new_req(p, job, op);
	size_t at = begin_packet(&p->out, type, q->id);

	putstr(&p->out, j->path, strlen(j->path));
	if (type == FXP_RENAME)
		putstr(&p->out, j->to, strlen(j->to));
	if (type == FXP_SETSTAT) { /* attrs: the permission bits only */
		put32(&p->out, LIBSSH2_SFTP_ATTR_PERMISSIONS);
		put32(&p->out, j->mode & 07777);
	}
	if (type == FXP_OPEN) {
		bool make = j->kind == SFTP_JOB_CLOCK || j->kind == SFTP_JOB_WRITE;

		put32(&p->out, make ? 0x2 | 0x8 | 0x20 : 0x1); /* WRITE|CREAT|EXCL or READ */
		put32(&p->out, make ? LIBSSH2_SFTP_ATTR_PERMISSIONS : 0);
		if (make)
			put32(&p->out, 0600);
	}
	end_packet(&p->out, at);
	j->pending++;
}

static void send_handle(struct sftp_pipe *p, size_t job, struct sftp_job *j, uint8_t type,
			enum op op)
{
	struct req *q = new_req(p, job, op);
	size_t at = begin_packet(&p->out, type, q->id);

	putstr(&p->out, j->handle, j->hlen);
	end_packet(&p->out, at);
	j->pending++;
}

/* A WRITE job's requests on its handle, all at once: the data, the
 * owner, mode and times, the fsync, the CLOSE. */
static void send_writes(struct sftp_pipe *p, size_t job, struct sftp_job *j)
{
	uint64_t off;
	struct req *q;
	size_t at;
	int k;

	for (off = 0; off < j->size; off += CHUNK) {
		uint32_t len = j->size - off > CHUNK ? CHUNK : (uint32_t)(j->size - off);

		q = new_req(p, job, OP_WRITE);
		at = begin_packet(&p->out, FXP_WRITE, q->id);
		putstr(&p->out, j->handle, j->hlen);
		put64(&p->out, off);
		putstr(&p->out, j->wdata + off, len);
		end_packet(&p->out, at);
		j->pending++;
	}
	for (k = j->set_owner ? 0 : 1; k < 3; k++) { /* owner, mode, times */
		q = new_req(p, job, k == 1 ? OP_MODE_SETSTAT : OP_SOFT_SETSTAT);
		at = begin_packet(&p->out, FXP_FSETSTAT, q->id);
		putstr(&p->out, j->handle, j->hlen);
		put32(&p->out, k == 0	? LIBSSH2_SFTP_ATTR_UIDGID
			       : k == 1 ? LIBSSH2_SFTP_ATTR_PERMISSIONS
					: LIBSSH2_SFTP_ATTR_ACMODTIME);
		put32(&p->out, k == 0 ? j->uid : k == 1 ? j->mode & 07777 : (uint32_t)j->mtime);
		if (k != 1)
			put32(&p->out, k == 0 ? j->gid : (uint32_t)j->mtime);
		end_packet(&p->out, at);
		j->pending++;
	}
	if (j->fsync) {
		q = new_req(p, job, OP_FSYNC);
		at = begin_packet(&p->out, FXP_EXTENDED, q->id);
		putstr(&p->out, "fsync@openssh.com", sizeof("fsync@openssh.com") - 1);
		putstr(&p->out, j->handle, j->hlen);
		end_packet(&p->out, at);
		j->pending++;
	}
	send_handle(p, job, j, FXP_CLOSE, OP_CLOSE);
	j->state = J_END;
}

/* The CLOSE of a listed folder: nobody waits for its reply (the listing
 * is complete), which a later reply read consumes. */
#define ORPHAN SIZE_MAX

static void send_orphan_close(struct sftp_pipe *p, struct sftp_job *j)
{
	struct req *q = new_req(p, ORPHAN, OP_CLOSE);
	size_t at = begin_packet(&p->out, FXP_CLOSE, q->id);

	putstr(&p->out, j->handle, j->hlen);
	end_packet(&p->out, at);
}

static void send_read(struct sftp_pipe *p, size_t job, struct sftp_job *j, uint64_t off,
		      uint32_t len)
{
	struct req *q = new_req(p, job, OP_READ);
	size_t at = begin_packet(&p->out, FXP_READ, q->id);

	putstr(&p->out, j->handle, j->hlen);
	put64(&p->out, off);
	put32(&p->out, len);
	end_packet(&p->out, at);
	q->off = off;
	q->len = len;
	p->read_bytes += len;
	j->pending++;
}

/*
 * Whether a READ of bytes, or a new job, may go out.  What replies send
 * without asking (a handle's FSTAT and READDIRs, the FSTAT and CLOSE
 * after the last READ, a folder's CLOSE: at most 4 per active job, and one
 * CLOSE per folder just listed) must always find a free slot, so reads and
 * new jobs leave RESERVE slots to them.
 */
#define RESERVE (6 * MAX_ACTIVE)

static bool room(const struct sftp_pipe *p, uint32_t bytes)
{
	return p->outstanding + RESERVE < MAX_REQ && p->read_bytes + bytes <= READ_BUDGET;
}

/* Send what a reading job can send now: its READs (the last one, one byte
 * at the size, must find the end), then FSTAT and CLOSE. */
static void pump_read(struct sftp_pipe *p, size_t job, struct sftp_job *j)
{
	while (j->state == J_READING && !j->failed) {
		uint64_t off = j->got;
		uint32_t len = j->size - off > CHUNK ? CHUNK : (uint32_t)(j->size - off);

		if (off > j->size) {
			send_handle(p, job, j, FXP_FSTAT, OP_FSTAT_LAST);
			send_handle(p, job, j, FXP_CLOSE, OP_CLOSE);
			j->state = J_END;
			return;
		}
		if (len == 0)
			len = 1; /* the probe for the end */
		if (!room(p, len))
			return;
		send_read(p, job, j, off, len);
		j->got = off + (off == j->size ? 1 : len);
	}
	if (j->state == J_READING && j->failed) {
		send_handle(p, job, j, FXP_CLOSE, OP_CLOSE);
		j->state = J_END;
	}
}

/* The first request of a job. */
static void start_job(struct sftp_pipe *p, size_t job, struct sftp_job *j)
{
	switch (j->kind) {
	case SFTP_JOB_LSTAT:
		send_path(p, job, j, FXP_LSTAT, OP_LSTAT);
		j->state = J_END;
		break;
	case SFTP_JOB_RENAME:
		send_path(p, job, j, FXP_RENAME, OP_ONE);
		j->state = J_END;
		break;
	case SFTP_JOB_REMOVE:
		send_path(p, job, j, FXP_REMOVE, OP_ONE);
		j->state = J_END;
		break;
	case SFTP_JOB_SETSTAT:
		send_path(p, job, j, FXP_SETSTAT, OP_ONE);
		j->state = J_END;
		break;
	case SFTP_JOB_RMDIR:
		send_path(p, job, j, FXP_RMDIR, OP_ONE);
		j->state = J_END;
		break;
	default:
		send_path(p, job, j, j->kind == SFTP_JOB_LIST ? FXP_OPENDIR : FXP_OPEN, OP_OPEN);
		j->state = J_OPENING;
	}
}

/* ---- replies -------------------------------------------------------------- */

static bool same_attrs(const LIBSSH2_SFTP_ATTRIBUTES *a, const LIBSSH2_SFTP_ATTRIBUTES *b)
{
	return a->flags == b->flags && a->filesize == b->filesize && a->uid == b->uid &&
	       a->gid == b->gid && a->permissions == b->permissions && a->mtime == b->mtime;
}

static int on_name(struct sftp_pipe *p, struct sftp_job *j, struct sftp_reply *r)
{
	uint32_t i, len;

	for (i = 0; i < r->count; i++) {
		const unsigned char *name;
		LIBSSH2_SFTP_ATTRIBUTES a;

		if (sftp_pipe_next_name(r, &name, &len, &a))
			return hostile(p, "a directory entry that does not fit");
		if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len))
			return hostile(p, "a directory entry name with '/' or NUL");
		if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
			continue;
		if (j->n_names == MAX_NAMES)
			return hostile(p, "too many directory entries");
		if (j->n_names == j->cap_names) {
			j->cap_names = j->cap_names ? j->cap_names * 2 : 32;
			j->names = xrealloc(j->names, j->cap_names * sizeof(*j->names));
		}
		j->names[j->n_names].name = xmalloc((size_t)len + 1);
		memcpy(j->names[j->n_names].name, name, len);
		j->names[j->n_names].name[len] = '\0';
		j->names[j->n_names].attrs = a;
		j->n_names++;
	}
	return 0;
}

static void on_handle(struct sftp_pipe *p, size_t job, struct sftp_job *j, struct sftp_reply *r)
{
	memcpy(j->handle, r->str, r->str_len);
	j->hlen = r->str_len;
	if (j->kind == SFTP_JOB_LIST) {
		/* two at a time: most folders fit one reply, and the second
		 * then finds the end without another round trip */
		send_handle(p, job, j, FXP_READDIR, OP_READDIR);
		send_handle(p, job, j, FXP_READDIR, OP_READDIR);
		j->state = J_LISTING;
	} else if (j->kind == SFTP_JOB_WRITE) {
		send_writes(p, job, j);
	} else if (j->kind == SFTP_JOB_CLOCK) {
		send_handle(p, job, j, FXP_FSTAT, OP_FSTAT_LAST);
		send_handle(p, job, j, FXP_CLOSE, OP_CLOSE);
		send_path(p, job, j, FXP_REMOVE, OP_REMOVE);
		j->state = J_END;
	} else {
		j->data = xmalloc(j->size ? j->size : 1);
		send_handle(p, job, j, FXP_FSTAT, OP_FSTAT_FIRST);
		j->got = 0;
		j->state = J_READING;
		pump_read(p, job, j);
	}
}

static void on_data(struct sftp_job *j, const struct req *q, const struct sftp_reply *r)
{
	if (q->off >= j->size || r->str_len != q->len) {
		j->failed = true; /* grew, or a short read: done the sequential way */
		return;
	}
	memcpy(j->data + q->off, r->str, r->str_len);
}

static void on_status(struct sftp_pipe *p, struct sftp_job *j, const struct req *q, uint32_t status)
{
	bool strict = q->op == OP_WRITE || q->op == OP_MODE_SETSTAT || q->op == OP_FSYNC;

	if (q->op == OP_SOFT_SETSTAT)
		return;
	if (q->op == OP_FSYNC && status == FX_OP_UNSUPPORTED) {
		j->fsync_unsupported = true;
		return;
	}
	if (strict && status == FX_OK)
		return;
	if (q->op == OP_READDIR && j->state != J_LISTING)
		return; /* the second READDIR after the end, or after a failure */
	if (q->op == OP_READDIR && status == FX_EOF) {
		send_orphan_close(p, j);
		j->state = J_END;
		return;
	}
	if (q->op == OP_READ && status == FX_EOF && q->off == j->size) {
		j->saw_eof = true;
		return;
	}
	if ((q->op == OP_CLOSE || q->op == OP_REMOVE) && status == FX_OK)
		return;
	if (q->op == OP_ONE || q->op == OP_LSTAT) {
		j->status = status;
		j->failed = status != FX_OK;
		return;
	}
	if (!j->failed)
		j->status = status;
	j->failed = true;
	if (q->op == OP_OPEN) {
		j->state = J_END;
	} else if (q->op == OP_READDIR) {
		send_orphan_close(p, j);
		j->state = J_END;
	}
}

static int on_attrs(struct sftp_job *j, const struct req *q, const struct sftp_reply *r)
{
	if (q->op == OP_FSTAT_FIRST) {
		j->first = r->attrs;
		j->have_first = true;
	} else {
		j->attrs = r->attrs;
	}
	return 0;
}

/* Whether the reply's type is one its request can have. */
static bool fits(const struct req *q, uint8_t type)
{
	if (type == FXP_STATUS)
		return true;
	switch (q->op) {
	case OP_OPEN:
		return type == FXP_HANDLE;
	case OP_FSTAT_FIRST:
	case OP_FSTAT_LAST:
		return type == FXP_ATTRS;
	case OP_READ:
		return type == FXP_DATA;
	case OP_READDIR:
		return type == FXP_NAME;
	case OP_LSTAT:
		return type == FXP_ATTRS;
	default:
		return false;
	}
}

static void finish(struct sftp_job *j)
{
	if (j->kind == SFTP_JOB_LIST || j->kind == SFTP_JOB_LSTAT || j->kind == SFTP_JOB_RENAME ||
	    j->kind == SFTP_JOB_REMOVE || j->kind == SFTP_JOB_SETSTAT ||
	    j->kind == SFTP_JOB_RMDIR || j->kind == SFTP_JOB_WRITE)
		j->done = !j->failed;
	else if (j->kind == SFTP_JOB_CLOCK)
		j->done = !j->failed && (j->attrs.flags & LIBSSH2_SFTP_ATTR_ACMODTIME);
	else
		j->done =
		    !j->failed && j->saw_eof && j->have_first && same_attrs(&j->first, &j->attrs) &&
		    (j->attrs.flags & LIBSSH2_SFTP_ATTR_SIZE) && j->attrs.filesize == j->size &&
		    LIBSSH2_SFTP_S_ISREG(j->attrs.permissions);
	j->finished = true;
	if (!j->done) {
		free(j->data);
		j->data = NULL;
		while (j->n_names)
			free(j->names[--j->n_names].name);
	}
}

/* One reply: 1 when its job finished with it, 0 when not, or an error. */
static int dispatch(struct sftp_pipe *p, struct sftp_job *jobs, size_t n, size_t len)
{
	struct sftp_reply r;
	struct req *q;
	struct sftp_job *j;
	size_t job;
	int rc = 0;

	if (sftp_pipe_parse(&r, p->in + p->in_off + 4, len) || r.type == FXP_VERSION)
		return hostile(p, "a reply that does not fit");
	q = &p->req[r.id % MAX_REQ];
	if (q->used && q->id == r.id && q->job == ORPHAN && r.type == FXP_STATUS) {
		q->used = false;
		p->outstanding--;
		return 0;
	}
	if (!q->used || q->id != r.id || q->job >= n || !fits(q, r.type))
		return hostile(p, "a reply to no request");
	job = q->job;
	j = &jobs[job];
	p->last_rename =
	    j->kind == SFTP_JOB_RENAME || j->kind == SFTP_JOB_SETSTAT || j->kind == SFTP_JOB_RMDIR;
	p->last_write = j->kind == SFTP_JOB_WRITE;
	if (q->op == OP_READ)
		p->read_bytes -= q->len;
	if (r.type == FXP_STATUS)
		on_status(p, j, q, r.status);
	else if (r.type == FXP_HANDLE)
		on_handle(p, job, j, &r);
	else if (r.type == FXP_DATA)
		on_data(j, q, &r);
	else if (r.type == FXP_ATTRS)
		rc = on_attrs(j, q, &r);
	else if (r.type == FXP_NAME && j->state == J_LISTING) {
		rc = on_name(p, j, &r);
		if (!rc && j->state == J_LISTING)
			send_handle(p, job, j, FXP_READDIR, OP_READDIR);
	}
	q->used = false;
	p->outstanding--;
	j->pending--;
	if (rc)
		return rc;
	if (j->state == J_READING)
		pump_read(p, job, j);
	if (j->pending == 0 && j->state == J_END) {
		finish(j);
		return 1;
	}
	return 0;
}

/* Tests only: MSGW_TEST_SFTP_DROP=N cuts the connection (as a network
 * that fails would) once N replies of pipelined requests have come in;
 * MSGW_TEST_SFTP_DROP_BATCH=N once N replies to batched renames, chmods
 * and folder removals (the restore's swap) have; MSGW_TEST_SFTP_DROP_WRITE=N
 * once N replies to the requests of staged files have. */
static void test_drop(struct sftp_pipe *p)
{
#ifdef MSGW_TESTING
	static long seen, seen_rename;
	const char *n = getenv("MSGW_TEST_SFTP_DROP");
	static long seen_write;
	const char *m = getenv("MSGW_TEST_SFTP_DROP_BATCH");
	const char *w = getenv("MSGW_TEST_SFTP_DROP_WRITE");

	if ((n && *n && ++seen == atol(n)) ||
	    (m && *m && p->last_rename && ++seen_rename == atol(m)) ||
	    (w && *w && p->last_write && ++seen_write == atol(w)))
		shutdown(ssh_session_socket(p->ssh), SHUT_RDWR);
	p->last_rename = false;
	p->last_write = false;
#else
	(void)p;
#endif
}

int sftp_pipe_run(struct sftp_pipe *p, struct sftp_job *jobs, size_t n)
{
	size_t next = 0, finished = 0, active = 0, lo = 0, i;
	int rc = 0;

	if (p->dead)
		return err_set(MSGW_ERR, "ssh '%s': sftp requests: the channel failed before",
			       ssh_session_name(p->ssh));
	for (i = 0; i < n; i++) {
		memset(&jobs[i].done, 0, sizeof(jobs[i]) - offsetof(struct sftp_job, done));
		jobs[i].state = J_NEW;
	}
	ssh_session_keepalive(p->ssh);
	while (finished < n) {
		size_t len;

		/* reading jobs waiting for room go first, then new jobs */
		while (lo < next && jobs[lo].finished)
			lo++;
		for (i = lo; i < next && p->read_bytes < READ_BUDGET; i++)
			if (jobs[i].state == J_READING)
				pump_read(p, i, &jobs[i]);
		while (next < n && active < MAX_ACTIVE && room(p, CHUNK)) {
			struct sftp_job *j = &jobs[next];

			start_job(p, next, j);
			next++;
			active++;
		}
		rc = flush(p);
		if (!rc)
			rc = read_packet(p, &len);
		if (!rc) {
			rc = dispatch(p, jobs, n, len);
			consume(p, len);
			test_drop(p);
		}
		if (rc < 0)
			break;
		if (rc == 1) {
			active--;
			finished++;
			rc = 0;
		}
	}
	if (rc) {
		for (i = 0; i < n; i++)
			sftp_job_release(&jobs[i]);
	}
	return rc;
}
