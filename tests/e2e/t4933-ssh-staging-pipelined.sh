#!/bin/bash
# t4933-ssh-staging-pipelined: over a real sshd, the restore stages its
# small files in volleys (every request of every file in flight at once:
# exclusive create, data, owner, mode, times, fsync, close).  The staged
# files (content, mode, mtime, owner) are exactly those the one-request-
# at-a-time path stages (MSGW_SFTP_SEQUENTIAL=1), both stopped right after
# staging; a file whose pipelined create fails on the server
# (MSGW_TEST_CREATE_FAIL) is staged again one request at a time; a
# connection dropped in the middle of staging fails before the stop: the
# service still runs, nothing is swapped, and recover removes what was
# staged.
test_description='msgw-restore over ssh: pipelined staging'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

A1=127.0.0.2

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/g1' --timeout 5"

listing() { gw_config_listing "$TRASH/$1"; }
runs() { msgw-sim status "$TRASH/$1" | grep -q "^running "; }

# staged DIR: every staged file with its mode, owner, mtime, size, sha256
staged() {
	(cd "$1" && find . -name "*.msgw-new" | LC_ALL=C sort | while IFS= read -r p; do
		printf '%s %s %s\n' "$p" "$(stat -c '%F %a %u:%g %Y %s' "$p")" \
			"$(sha256sum <"$p" | cut -d" " -f1)"
	done)
}

# times DIR: each regular file's mtime (folders change as files move)
times() {
	(cd "$1" && find . -type f ! -path "./Logs/*" | LC_ALL=C sort | while IFS= read -r p; do
		printf '%s %s\n' "$p" "$(stat -c %Y "$p")"
	done)
}

test_expect_success 'setup: g1 over ssh, 45 extra files, a 300 KiB one, older times; snapshot ta' '
	gw_init g1 1 4933 &&
	gw_extra_files g1 &&
	head -c 307200 /dev/urandom >g1/Conf/big.bin &&
	touch -d "2024-05-06 07:08:09" g1/Conf/a/f0[1-9].txt g1/Conf/big.bin &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	sshd_sim_gateway_conf "$CONF" g1 "$TRASH/g1" $A1 $PORT &&
	agent init >out &&
	msgw-sim start g1 --listen $A1 &&
	agent snapshot g1 --tag ta >out &&
	listing g1 >ta &&
	times g1 >ta-times
'

test_expect_success 'change g1: 20 modified, 12 added, 6 removed, 2 modes, the big file; snapshot tb' '
	gw_change_many g1 &&
	echo more >>g1/Conf/big.bin &&
	agent snapshot g1 --tag tb >out &&
	listing g1 >tb
'

# stage_only ENV...: apply ta with ENV, killed right after staging; the
# staged files into "staged-out"; recover puts tb back, nothing left over
stage_only() {
	test_expect_code 137 env MSGW_FAULT=after-stage "$@" msgw-restore -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	staged g1 >staged-out &&
	restore recover g1 >out &&
	listing g1 >now &&
	test_cmp tb now &&
	gw_no_leftovers "$TRASH/g1"
}

test_expect_success 'staged in volleys: the same files, modes, owners and times as one request at a time' '
	stage_only MSGW_SFTP_SEQUENTIAL=0 &&
	mv staged-out pipelined &&
	stage_only MSGW_SFTP_SEQUENTIAL=1 &&
	mv staged-out sequential &&
	test_cmp sequential pipelined &&
	test "$(wc -l <pipelined)" = 29 &&
	test_grep "^\./Conf/big\.bin\.msgw-new regular file 644 " pipelined &&
	test_grep "^\./Conf/a/f01\.txt\.msgw-new regular file 640 [0-9:]* $(date -d "2024-05-06 07:08:09" +%s) " pipelined
'

test_expect_success 'apply ta: the snapshot tree, its files with their times' '
	restore apply ta --to g1 --yes </dev/null >out 2>err &&
	listing g1 >now &&
	test_cmp ta now &&
	times g1 >now-times &&
	test_cmp ta-times now-times &&
	gw_no_leftovers "$TRASH/g1" &&
	restore apply tb --to g1 --yes </dev/null >out 2>err &&
	listing g1 >now &&
	test_cmp tb now
'

test_expect_success 'a pipelined create failing on the server: that file staged again one request at a time' '
	env MSGW_TEST_CREATE_FAIL=5 msgw-restore -v -v -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "cannot create .*/Conf/a/f05\.txt\.msgw-new.: No such file or directory; staged one request at a time" err &&
	listing g1 >now &&
	test_cmp ta now &&
	gw_no_leftovers "$TRASH/g1" &&
	restore apply tb --to g1 --yes </dev/null >out 2>err
'

test_expect_success 'connection dropped in the middle of staging: failed before the stop, running, nothing swapped; recover cleans up' '
	listing g1 >before &&
	test_expect_code 5 env MSGW_TEST_SFTP_DROP_WRITE=40 msgw-restore -v -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "staging failed: " err &&
	test_grep "the live configuration was not changed" err &&
	! test_grep "running .*msgw-sim stop" err &&
	runs g1 &&
	test -z "$(find g1 -name "*.msgw-old")" &&
	test -e "$STATE/journal-g1" &&
	listing g1 | grep -v -e "\.msgw-new " -e "^\./\.msgw-journal " >now &&
	test_cmp before now &&
	restore recover g1 >out &&
	listing g1 >now &&
	test_cmp before now &&
	runs g1 &&
	gw_no_leftovers "$TRASH/g1"
'

test_done
