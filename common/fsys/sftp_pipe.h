/*
 * sftp_pipe: the pipelined half of the SFTP backend (internal to
 * common/fsys/).  libssh2 1.10 sends one SFTP request and waits for its
 * answer (open, stat, readdir, close each cost a round trip), so a gateway
 * across a WAN costs latency times files.  This speaks SFTP version 3 itself
 * on a second "sftp" subsystem channel of the same ssh session and keeps
 * many requests in flight, as OpenSSH's sftp client does: it lists many
 * folders at once and reads many whole files at once.  Besides reading, it
 * creates and removes one file of the tool's own (the clock) and sends the
 * restore's independent lstat, rename and remove requests together
 * (fsys_batch).
 *
 * Everything the server sends is untrusted: sftp_pipe_parse checks every
 * length against the packet before it is used and refuses a packet that
 * does not fit (fuzzed by tests/fuzz/fuzz_sftp.c); a reply to no request,
 * or of a type the request cannot have, fails the whole run as hostile.
 *
 * A job that meets anything unusual (a short read, a file that grew, shrank
 * or changed while it was read, a server error for that path) is not an
 * error here: it is left "not done", and the backend does that path the
 * sequential way, which reports and retries as it always did.  Only a
 * transport failure or a hostile reply fails a run.
 */
#ifndef MSGW_SFTP_PIPE_H
#define MSGW_SFTP_PIPE_H

#include "ssh.h"

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sftp_pipe;

/*
 * LIST and READ read; CLOCK makes and removes a file of the tool's own;
 * LSTAT, RENAME, REMOVE, SETSTAT (the permission bits only) and RMDIR are
 * one request each (the restore's swap and commit: sftp_pipe_run sends
 * them all before it waits, so they must not depend on one another; it
 * gives no order among them).  WRITE stages one file of the restore: an
 * exclusive OPEN (0600), then on its handle (whose requests the server
 * carries out in order) every WRITE, an FSETSTAT of the owner (its
 * failure ignored, as restores treat owners), of the mode, of the times
 * (ignored too), the fsync@openssh.com request (unless no_fsync) and the
 * CLOSE: done only when every one of them that counts said OK.
 */
enum sftp_job_kind {
	SFTP_JOB_LIST,
	SFTP_JOB_READ,
	SFTP_JOB_CLOCK,
	SFTP_JOB_LSTAT,
	SFTP_JOB_RENAME,
	SFTP_JOB_REMOVE,
	SFTP_JOB_SETSTAT,
	SFTP_JOB_RMDIR,
	SFTP_JOB_WRITE
};

struct sftp_name {
	char *name;
	LIBSSH2_SFTP_ATTRIBUTES attrs;
};

struct sftp_job {
	enum sftp_job_kind kind; /* set by the caller */
	const char *path;	 /* full remote path, borrowed; set by the caller */
	uint64_t size;		 /* READ: the size the listing said; set by the caller */
	const char *to;		 /* RENAME: the new full path, borrowed; set by the caller */
	uint32_t mode;		 /* SETSTAT, WRITE: the permission bits; set by the caller */
	/* WRITE, set by the caller: size bytes of wdata (borrowed), the owner
	 * when set_owner, the mtime, and whether to ask for an fsync */
	const unsigned char *wdata;
	bool set_owner, fsync;
	uint32_t uid, gid;
	int64_t mtime;
	bool fsync_unsupported; /* WRITE: the server has no fsync@openssh.com */
	/* results */
	bool done; /* the job completed normally (else: do it sequentially) */
	/* LIST: the entries (without . and ..), owned by the job */
	struct sftp_name *names;
	size_t n_names, cap_names;
	/* LSTAT, RENAME, REMOVE, SETSTAT, RMDIR: the server's status when
	 * not done (an LSTAT done has attrs) */
	uint32_t status;
	/* READ: the content (size bytes) and the file's attributes, equal
	 * before and after it was read; CLOCK: attrs of the file made;
	 * LSTAT: the path's */
	unsigned char *data;
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	/* private state */
	int state;
	char handle[256];
	size_t hlen;
	uint64_t got;
	int pending;
	bool failed, saw_eof, finished;
	LIBSSH2_SFTP_ATTRIBUTES first;
	bool have_first;
};

/* Open the channel (subsystem "sftp", version 3). */
int sftp_pipe_open(struct sftp_pipe **out, struct ssh_session *ssh);
void sftp_pipe_free(struct sftp_pipe *p);

/*
 * Run the jobs, many at a time; returns when every one has finished.  0, or
 * a negative code when the transport failed or the server's replies were
 * hostile (then the pipe is dead: free it).  Per job, done says whether it
 * completed; results of jobs not done are empty.
 */
int sftp_pipe_run(struct sftp_pipe *p, struct sftp_job *jobs, size_t n);

/* Release a job's results (names, data). */
void sftp_job_release(struct sftp_job *j);

/* ---- the parser of one reply (exposed for the fuzzer) ---------------- */

struct sftp_reply {
	uint8_t type;
	uint32_t id;
	uint32_t status; /* STATUS */
	const unsigned char *str;
	uint32_t str_len;	       /* HANDLE, DATA */
	LIBSSH2_SFTP_ATTRIBUTES attrs; /* ATTRS */
	uint32_t count;		       /* NAME: entries, parsed by sftp_pipe_next_name */
	const unsigned char *rest;
	size_t rest_len;
};

/* Parse one packet's body (after its length word): 0, or -1 when it does
 * not fit. */
int sftp_pipe_parse(struct sftp_reply *out, const unsigned char *pkt, size_t len);
/* The next entry of a NAME reply (advances r->rest): 0, or -1 when it does
 * not fit; *name_out (len_out bytes, not NUL-terminated) points into the
 * packet. */
int sftp_pipe_next_name(struct sftp_reply *r, const unsigned char **name_out, uint32_t *len_out,
			LIBSSH2_SFTP_ATTRIBUTES *attrs_out);

#endif
