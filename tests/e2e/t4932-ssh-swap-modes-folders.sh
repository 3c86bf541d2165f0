#!/bin/bash
# t4932-ssh-swap-modes-folders: over a real sshd, the swap's mode-only
# changes (folders: a file whose mode changed is staged anew) go in one
# pipelined wave (SETSTAT) and its folder removals one wave per depth,
# deepest first (RMDIR), every reply checked.  An apply with 19 folder
# mode changes and nested empty and non-empty removed folders gives
# the snapshot's tree, as the one-request-at-a-time path does; a chmod
# failing on the server in the middle of its wave (MSGW_TEST_SETSTAT_FAIL,
# a real failing request) rolls back to the exact previous tree; the
# connection dropped in the middle of the chmod wave leaves the journal,
# and recover puts the previous tree back; a folder the stop command writes
# into (so it cannot be removed) stays with the service's file, as it
# always did; a chmod target the stop command swaps for a link is not
# followed.  Files outside the gateway are compared before and after each.
test_description='msgw-restore over ssh: pipelined chmods and folder removals'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

A1=127.0.0.2

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/g1' --timeout 5"

listing() { gw_config_listing "$TRASH/$1"; }
runs() { msgw-sim status "$TRASH/$1" | grep -q "^running "; }
outside_listing() { tree_listing "$TRASH/outside"; }

# back_to_tb: g1 holds tb again (the state every case starts from)
back_to_tb() {
	restore apply tb --to g1 --yes </dev/null >out 2>err &&
	listing g1 >now &&
	test_cmp tb now
}

# unchanged_since_before: the exact previous tree, running, nothing of the
# restore left, the outside as it was
unchanged_since_before() {
	listing g1 >after &&
	test_cmp before after &&
	runs g1 &&
	gw_no_leftovers "$TRASH/g1" &&
	outside_listing >outside-after &&
	test_cmp outside-before outside-after
}

test_expect_success 'setup: g1 over ssh, 19 folders of a file each, files outside; snapshot ta' '
	gw_init g1 1 4932 &&
	for i in $(seq -w 1 19); do
		mkdir -p g1/Conf/m/d$i && echo "m $i" >g1/Conf/m/d$i/f.txt || return 1
	done &&
	mkdir -p outside/d &&
	chmod 0755 outside/d &&
	echo "outside" >outside/f05.txt &&
	chmod 0644 outside/f05.txt &&
	outside_listing >outside-before &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	sshd_sim_gateway_conf "$CONF" g1 "$TRASH/g1" $A1 $PORT &&
	agent init >out &&
	msgw-sim start g1 --listen $A1 &&
	agent snapshot g1 --tag ta >out &&
	listing g1 >ta
'

test_expect_success 'change g1: 19 folder modes, 5 new empty folders (3 deep), a folder of 3 files; snapshot tb' '
	chmod 0700 g1/Conf/m/d* &&
	mkdir -p g1/Conf/e/x/y g1/Conf/e/z g1/Conf/w g1/Conf/r &&
	for i in 1 2 3; do echo "r $i" >g1/Conf/r/r$i.txt || return 1; done &&
	agent snapshot g1 --tag tb >out &&
	listing g1 >tb &&
	! cmp -s ta tb
'

test_expect_success 'apply ta over ssh: modes back, every folder removed, the snapshot tree exactly' '
	restore apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "^restored [0-9a-f]\{12\} onto g1: 0 added, 19 modified, 9 removed$" out &&
	listing g1 >now &&
	test_cmp ta now &&
	runs g1 &&
	gw_no_leftovers "$TRASH/g1" &&
	! test_grep "left directory" err &&
	back_to_tb
'

test_expect_success 'the same apply one request at a time gives the same tree' '
	MSGW_SFTP_SEQUENTIAL=1 msgw-restore -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	listing g1 >now &&
	test_cmp ta now &&
	gw_no_leftovers "$TRASH/g1" &&
	back_to_tb
'

test_expect_success 'a chmod failing on the server in the middle of its wave: exact previous tree, running' '
	listing g1 >before &&
	test_expect_code 4 env MSGW_TEST_SETSTAT_FAIL=7 msgw-restore -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "cannot set mode of .*/Conf/m/d[0-9]*.: No such file or directory; the previous" err &&
	test_grep "the previous configuration is back and running" err &&
	unchanged_since_before
'

test_expect_success 'connection dropped in the middle of the chmod wave: journal kept; recover puts the previous tree back' '
	listing g1 >before &&
	test_expect_code 5 env MSGW_TEST_SFTP_DROP_BATCH=12 msgw-restore -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "rollback failed too" err &&
	test -e "$STATE/journal-g1" &&
	restore recover g1 >out &&
	test_grep "^g1: rolled back" out &&
	unchanged_since_before
'

# with_stop SCRIPT: a configuration whose stop command runs SCRIPT's lines
# after stopping g1 (a service account racing the restore)
with_stop() {
	{
		echo "$MSGW_BUILD_DIR/msgw-sim stop $TRASH/g1 || exit 1" &&
		cat
	} >race-stop.sh &&
	sed "/^gateway \"g1\"/,/^}/s|^\tstop = .*|\tstop = \"sh $TRASH/race-stop.sh\"|" "$CONF" >race.conf &&
	test_grep "race-stop.sh" race.conf
}

test_expect_success 'a folder to remove written into by the stop command: it stays with that file, the rest is applied' '
	with_stop <<-EOS &&
	echo service >$TRASH/g1/Conf/e/x/y/service.txt
	EOS
	msgw-restore -c race.conf apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "left directory .Conf/e/x/y. in place" err &&
	test_grep "left directory .Conf/e. in place" err &&
	test "$(cat g1/Conf/e/x/y/service.txt)" = service &&
	test ! -e g1/Conf/e/z &&
	test ! -e g1/Conf/w &&
	test ! -e g1/Conf/r &&
	listing g1 | grep -v "^\./Conf/e[/ ]" >now &&
	test_cmp ta now &&
	runs g1 &&
	gw_no_leftovers "$TRASH/g1" &&
	outside_listing >outside-after &&
	test_cmp outside-before outside-after &&
	rm g1/Conf/e/x/y/service.txt &&
	agent snapshot g1 >out &&
	back_to_tb
'

test_expect_success 'a folder to chmod swapped for a link by the stop command: not followed' '
	chmod 0700 outside/d &&
	outside_listing >outside-before &&
	with_stop <<-EOS &&
	mv $TRASH/g1/Conf/m/d05 $TRASH/d05.real &&
	ln -s $TRASH/outside/d $TRASH/g1/Conf/m/d05
	EOS
	msgw-restore -c race.conf apply ta --to g1 --yes </dev/null >out 2>err &&
	test -L g1/Conf/m/d05 &&
	outside_listing >outside-after &&
	test_cmp outside-before outside-after &&
	test "$(stat -c %a g1/Conf/m/d06)" = 755 &&
	runs g1
'

test_done
