/*
 * proc: start a command that cannot outlive us.
 *
 * proc_start forks a "leader" that leads a new process group and holds the
 * read end of a lifeline, a pipe whose write end only we hold (close-on-exec,
 * so nothing else we start inherits it).  The leader starts the command in
 * its group (execvp of an argv vector, or /bin/sh -c of a shell command),
 * waits for it and exits as it did (same status, same fatal signal).  When
 * we die, killed at any instant, the lifeline reads EOF and the leader kills
 * its whole group, itself included: nothing the command started survives
 * us.  The leader closes every other descriptor, so it holds none of our
 * locks, files or connections.
 *
 * The command's stdin is /dev/null; its stdout and stderr go either to two
 * socket pairs whose read ends the caller gets (capture), or both to our
 * stderr (common/ never writes to stdout).
 *
 * proc_wait reaps the leader before a deadline; proc_kill ends the group
 * (SIGTERM, two seconds, SIGKILL) and reaps the leader; proc_release kills
 * what is left of the group, closes every descriptor and the lifeline.
 * Depends on err and util only.
 */
#ifndef MSGW_PROC_H
#define MSGW_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_spec {
	const char *const *argv; /* execvp(argv[0], argv); or NULL and: */
	const char *shell;	 /* /bin/sh -c shell */
	const char *const *env;	 /* "NAME=VALUE" set in the command, NULL-ended; or NULL */
	bool capture;		 /* stdout/stderr to out/err below; else to our stderr */
};

struct proc {
	pid_t pid; /* the leader, which is the process group's id */
	int out;   /* capture: read end of the command's stdout, else -1 */
	int err;   /* capture: read end of its stderr, else -1 */
	int life;  /* the lifeline's write end */
};

/* Start spec's command under a leader: 0, or MSGW_ERR with a message naming
 * what (p untouched but for -1 descriptors). */
int proc_start(struct proc *p, const struct proc_spec *spec);

/* Reap the leader before deadline (time_now_ms() scale; 0: none), its wait
 * status in *status: true, or false when it still runs at the deadline. */
bool proc_wait(struct proc *p, int64_t deadline, int *status);

/* End the whole group now (SIGTERM, up to two seconds, SIGKILL) and reap
 * the leader. */
void proc_kill(struct proc *p);

/* After proc_wait or proc_kill: SIGKILL whatever of the group is left (a
 * daemon the command detached), close the descriptors and the lifeline. */
void proc_release(struct proc *p);

#endif
