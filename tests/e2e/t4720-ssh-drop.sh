#!/bin/bash
# t4720-ssh-drop: the ssh connection to the restore target dropped in the
# middle of an apply.  The test kills the sshd processes serving the
# apply's connection (never the listening master) while the apply waits
# for a slow service command: during the stop (nothing swapped yet) and
# during the start (everything swapped).  The apply must fail at once, not
# hang, and "msgw-restore recover msgw2", once the server answers again,
# leaves msgw2 fully old or fully new, running, with nothing staged, backed
# up or journalled left and the repository verifying.  The same after the
# restore process itself is killed (fault injection) after the stop and in
# the middle of the swap: its connection drops with it.
test_description='ssh connection dropped mid-apply; recover over ssh'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

SIM="$MSGW_BUILD_DIR/msgw-sim"
A1=127.0.0.2
A2=127.0.0.3
SSH_GW_TIMEOUT=10
MARK="$TRASH/marks"

sshd_setup || exit 1
sshd_start || exit 1
test_when_finished 'sshd_stop'
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
# commands first leave a mark (a file named after the command) and then,
# while $MARK/slow-stop or slow-start exists, wait long enough for the test
# to cut the connection.
write_conf() {
	printf 'repository = "%s"\nstate-dir = "%s"\n' "$REPO" "$STATE" >"$CONF" &&
	sshd_sim_gateway_conf "$CONF" msgw1 "$TRASH/msgw1" $A1 $PORT &&
	SSH_STOP_PREFIX="touch $MARK/stopping; test -e $MARK/slow-stop \&\& sleep 30; " \
	SSH_START_PREFIX="touch $MARK/starting; test -e $MARK/slow-start \&\& sleep 30; " \
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

test_done
