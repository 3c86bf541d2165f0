#!/bin/bash
# t4720-ssh-drop: the ssh connection to the restore target dropped in the
# middle of an apply.  The test kills the sshd processes serving the
# apply's connection (never the listening master) while the apply waits
# for a slow service command: during the stop (nothing swapped yet) and
# during the start (everything swapped; once with many changes, once with
# a single modified file, which an undo that took "cannot stat" for "not
# there" reported as rolled back).  The apply must fail within the
# gateway's timeout, keeping its journal, and "msgw-restore recover msgw2"
# (refused while the server is down, run again once it answers) leaves
# msgw2 fully old or fully new, running, with nothing staged, backed up or
# journalled left and the repository verifying.  The same after the
# restore process itself is killed (fault injection) after the stop, in
# the middle of the swap and before the commit: its connection drops with
# it.
test_description='ssh connection dropped mid-apply; recover over ssh'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

SIM="$MSGW_BUILD_DIR/msgw-sim"
A1=127.0.0.2
A2=127.0.0.3
SSH_GW_TIMEOUT=10
MARK="$TRASH/marks"

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/msgw1' --timeout 5; msgw-sim stop '$TRASH/msgw2' --timeout 5"

# console ADDR: the line the gateway listening on ADDR answers
console() {
	local line
	exec 3<>"/dev/tcp/$1/$PORT" || return 1
	IFS= read -r line <&3
	exec 3<&-
	printf '%s\n' "$line"
}

# The configuration: msgw1 and msgw2 over ssh; msgw2's stop and start
# commands first leave a mark ($MARK/stopping, starting) and then, once
# after the test created $MARK/slow-stop or slow-start, wait long enough
# for the test to cut the connection.
write_conf() {
	printf 'repository = "%s"\nstate-dir = "%s"\n' "$REPO" "$STATE" >"$CONF" &&
	sshd_sim_gateway_conf "$CONF" msgw1 "$TRASH/msgw1" $A1 $PORT &&
	SSH_STOP_PREFIX="touch $MARK/stopping; rm $MARK/slow-stop 2>/dev/null && sleep 30; " \
	SSH_START_PREFIX="touch $MARK/starting; rm $MARK/slow-start 2>/dev/null && sleep 30; " \
		sshd_sim_gateway_conf "$CONF" msgw2 "$TRASH/msgw2" $A2 $PORT
}

# drop_when FILE: wait until FILE appears, then kill the server's
# processes for every connection
drop_when() {
	wait_for 20 test -e "$1" &&
	sleep 0.3 &&
	sshd_kill_sessions
}

# check_old / check_new: msgw2 holds exactly the state before / after the
# restore, runs, answers, and nothing is left over
check_state() {
	gw_listing msgw2 >now &&
	test_cmp "$1" now &&
	msgw-sim status msgw2 >/dev/null &&
	test "$(console $A2)" = "$2" &&
	gw_no_leftovers "$TRASH/msgw2" &&
	agent verify >verify.out
}
check_old() { check_state old "MSGW-SIM OK msgw1.test 2"; }
check_new() { check_state new "MSGW-SIM OK msgw1.test 3"; }

test_expect_success 'setup: msgw2 carries msgw1'"'"'s configuration and holds mail; msgw1 changes a lot' '
	mkdir "$MARK" &&
	gw_init msgw1 2 4720 &&
	gw_init msgw2 0 4721 &&
	cp msgw1/Gateway.json msgw2/Gateway.json &&
	mkdir msgw2/OldRules &&
	echo "old rule" >msgw2/OldRules/old.txt &&
	msgw-sim deliver msgw2 $(mbx msgw1 1) 2 &&
	msgw-sim set msgw1 mailbox.$(mbx msgw1 2).description "Renamed on msgw1" &&
	msgw-sim add-mailbox msgw1 --description "New on msgw1" >>ids-msgw1 &&
	echo "Signed, the msgw1 team" >>msgw1/Templates/notification.txt &&
	rm msgw1/Templates/bounce.txt &&
	chmod 0750 msgw1/Templates &&
	mkdir -p msgw1/Rules/extra &&
	echo "route all" >msgw1/Rules/routing.txt &&
	echo "more" >msgw1/Rules/extra/more.txt &&
	write_conf &&
	agent init >out &&
	msgw-sim start msgw1 --listen $A1 &&
	msgw-sim start msgw2 --listen $A2 &&
	agent snapshot msgw1 >out &&
	gw_listing msgw2 >orig
'

test_expect_success 'over ssh, a clean apply gives the new state, rollback the old one' '
	restore plan msgw1 --to msgw2 >plan &&
	test_grep "^files: 4 added, 3 modified, 3 removed, 1 preserved" plan &&
	restore apply msgw1 --to msgw2 --yes </dev/null >out &&
	gw_listing msgw2 >new &&
	! cmp -s orig new &&
	gw_config_listing msgw1 >config-1 &&
	gw_config_listing msgw2 >config-2 &&
	test_cmp config-1 config-2 &&
	restore rollback --to msgw2 --yes </dev/null >out &&
	gw_listing msgw2 >old &&
	test_cmp orig old &&
	check_old
'

# apply_dropped MARK CODE: apply msgw1 onto msgw2 while the connection is
# cut once MARK appears; it must exit CODE, within the gateway's timeout
apply_dropped() {
	local t0 t1
	rm -f "$MARK"/stopping "$MARK"/starting
	drop_when "$MARK/$1" &
	t0=$(date +%s)
	test_expect_code "$2" restore apply msgw1 --to msgw2 --yes </dev/null || return 1
	t1=$(date +%s)
	wait $! || { echo "the connection was not dropped" >&2; return 1; }
	rm -f "$MARK"/slow-*
	if [ $((t1 - t0)) -ge $SSH_GW_TIMEOUT ]; then
		echo "apply took $((t1 - t0)) s, the timeout is $SSH_GW_TIMEOUT s" >&2
		return 1
	fi
}

test_expect_success 'dropped during the stop: apply fails at once, keeps the journal' '
	touch "$MARK/slow-stop" &&
	test_when_finished "rm -f \"$MARK/slow-stop\"" &&
	apply_dropped stopping 5 &&
	test_grep "stop: ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: running .*: transport read" err &&
	test_grep "removing the staged files failed too" err &&
	test_grep "the live configuration was not changed" err &&
	test_grep "run .msgw-restore recover msgw2.$" err &&
	test_grep "^phase: swapping$" "$STATE/journal-msgw2" &&
	test -e msgw2/Gateway.json.msgw-new &&
	gw_listing msgw2 | grep -v -e "\.msgw-new " -e "^\./\.msgw-journal " -e "^\./Rules" >live &&
	test_cmp old live
'

test_expect_success 'recover while the server is down: exit 1, the journal stays' '
	sshd_stop &&
	test_expect_code 1 restore recover msgw2 &&
	test_grep "ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: connect: Connection refused" err &&
	test -s "$STATE/journal-msgw2" &&
	sshd_start
'

test_expect_success 'recover over ssh once the server answers: fully old, running' '
	restore recover msgw2 >out &&
	test_grep "^msgw2: rolled back" out &&
	check_old
'

test_expect_success 'dropped during the start (all swapped): apply fails at once; recover undoes' '
	touch "$MARK/slow-start" &&
	test_when_finished "rm -f \"$MARK/slow-start\"" &&
	apply_dropped starting 5 &&
	test_grep "start: ssh .*: transport read" err &&
	test_grep "rollback failed too" err &&
	test_grep "msgw-restore recover msgw2" err &&
	test -e msgw2/Gateway.json.msgw-old &&
	test_expect_code 3 msgw-sim status msgw2 &&
	restore recover msgw2 >out &&
	test_grep "^msgw2: rolled back" out &&
	check_old
'

test_expect_success 'the restore killed after the stop (its connection with it): recover undoes' '
	test_expect_code 137 env MSGW_FAULT=after-stop msgw-restore -c "$CONF" apply msgw1 --to msgw2 --yes </dev/null &&
	test_grep "fault injection: killed at .after-stop." err &&
	test_expect_code 3 msgw-sim status msgw2 &&
	test -e msgw2/Gateway.json.msgw-new &&
	restore recover msgw2 >out &&
	test_grep "^msgw2: rolled back" out &&
	check_old
'

test_expect_success 'the restore killed in the middle of the swap: recover undoes' '
	test_expect_code 137 env MSGW_FAULT=mid-swap msgw-restore -c "$CONF" apply msgw1 --to msgw2 --yes </dev/null &&
	test_expect_code 3 msgw-sim status msgw2 &&
	test -e msgw2/Gateway.json.msgw-old &&
	gw_listing msgw2 | grep -v "\.msgw-\(new\|old\)" >half &&
	! cmp -s half old && ! cmp -s half new &&
	restore recover msgw2 >out &&
	test_grep "^msgw2: rolled back" out &&
	check_old
'

test_expect_success 'the restore killed before the commit: recover over ssh commits; fully new' '
	test_expect_code 137 env MSGW_FAULT=before-commit msgw-restore -c "$CONF" apply msgw1 --to msgw2 --yes </dev/null &&
	test_grep "^phase: committing$" "$STATE/journal-msgw2" &&
	restore recover msgw2 >out &&
	test_grep "^msgw2: finished the restore" out &&
	check_new &&
	test "$(meta_of msgw2 kind)" = restored
'

test_expect_success 'dropped during the start, one file modified: not taken for undone' '
	msgw-sim set msgw1 mailbox.$(mbx msgw1 1).description "Renamed again" &&
	agent snapshot msgw1 >out &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed$" out &&
	cp new old &&
	gw_listing msgw2 >now && test_cmp old now &&
	touch "$MARK/slow-start" &&
	test_when_finished "rm -f \"$MARK/slow-start\"" &&
	apply_dropped starting 5 &&
	test_grep "rollback failed too" err &&
	restore recover msgw2 >out &&
	test_grep "^msgw2: rolled back" out &&
	check_state old "MSGW-SIM OK msgw1.test 3"
'

# none_left: no service command of ours runs on the server any more
none_left() { ! pgrep -f "$MARK/slow" >/dev/null; }

test_expect_success 'no command of ours is left running on the server; every snapshot verifies' '
	wait_for 10 none_left &&
	agent verify --all >out
'

test_done
