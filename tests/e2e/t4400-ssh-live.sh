#!/bin/bash
# t4400-ssh-live: the SFTP file backend and the ssh service backend, op by
# op, against the test's own OpenSSH server: tests/unit/test_ssh_live.c
# (built as test_ssh_live) runs with the server's address in its
# environment.  It covers every fsys operation over SFTP (and what SFTP
# cannot do: rename over a file, inode numbers, owner names), session reuse,
# service commands with exit status and both streams, the 64 KiB capture
# limit, a timeout killing 'sleep 100', tcp health probes from the server's
# side, msgw-sim's status/start/stop exit codes over ssh, and connections
# dropped under a file operation and under a running command (an error at
# once, then a fresh session).
test_description='fsys over SFTP and service commands over ssh, op by op'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

sshd_begin
SIM_PORT=$((20000 + ($$ + 4400) % 20000))
test_when_finished "msgw-sim stop '$TRASH/gw' --timeout 5"

test_expect_success 'setup: a scratch directory and a simulated gateway' '
	mkdir scratch &&
	msgw-sim init gw --domain example.test --mailboxes 1 --console-port $SIM_PORT >ids
'

test_expect_success 'test_ssh_live passes against the server' '
	MSGW_TEST_SSH_URL="$SSH_URL_BASE$TRASH/scratch" \
	MSGW_TEST_SSH_KEY="$SSH_KEY" MSGW_TEST_SSH_KNOWN="$SSH_KNOWN" \
	MSGW_TEST_SSH_PORT=$SSHD_PORT MSGW_TEST_SIM="$MSGW_BUILD_DIR/msgw-sim" \
	MSGW_TEST_SIM_GW="$TRASH/gw" MSGW_TEST_SIM_PORT=$SIM_PORT \
	MSGW_TEST_SSHD_PID=$(cat "$SSHD_DIR/server.pid") \
		"$MSGW_BUILD_DIR/test_ssh_live" >live.out 2>&1 || { cat live.out; false; } &&
	! grep -q "SKIPPED\|FAILED" live.out &&
	test_grep "PASSED  \] 13 test(s)" live.out
'

test_expect_success 'nothing is left in the scratch directory' '
	test -z "$(ls -A scratch)"
'

test_done
