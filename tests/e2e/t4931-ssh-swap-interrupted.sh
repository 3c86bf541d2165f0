#!/bin/bash
# t4931-ssh-swap-interrupted: the pipelined swap over a real sshd (see
# t4930), interrupted: a restore killed between its waves, or whose
# connection drops in the middle of a wave (MSGW_TEST_SFTP_DROP_BATCH:
# the server has carried out the wave's renames, the replies never come),
# is undone by recover to the exact previous tree, running; a folder
# swapped for a link after the plan is refused over ssh, nothing outside
# touched (the files staged in the real folder stay there: the undo does
# not follow the link to reach them).
test_description='msgw-restore over ssh: pipelined swap killed, dropped, raced'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

A1=127.0.0.2

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/g1' --timeout 5"

listing() { gw_config_listing "$TRASH/$1"; }
runs() { msgw-sim status "$TRASH/$1" | grep -q "^running "; }

outside_listing() { tree_listing "$TRASH/outside"; }

# recovered_as_before: recover rolls g1 back to the tree listed in
# "before", running, with nothing of the restore left
recovered_as_before() {
	restore recover g1 >out &&
	test_grep "^g1: rolled back" out &&
	listing g1 >after &&
	test_cmp before after &&
	runs g1 &&
	gw_no_leftovers "$TRASH/g1"
}

test_expect_success 'setup: g1 over ssh, 45 extra files; snapshot ta' '
	gw_init g1 1 4930 &&
	for d in g1; do
		gw_extra_files $d || return 1
	done &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	sshd_sim_gateway_conf "$CONF" g1 "$TRASH/g1" $A1 $PORT &&
	agent init >out &&
	msgw-sim start g1 --listen $A1 &&
	agent snapshot g1 --tag ta >out &&
	listing g1 >ta
'

test_expect_success 'change g1: 20 modified, 12 added (a new folder too), 6 removed, 2 modes; snapshot tb' '
	gw_change_many g1 &&
	agent snapshot g1 --tag tb >out &&
	test_grep "g1: 22 modified, 14 added, 6 removed$" out &&
	listing g1 >tb &&
	! cmp -s ta tb
'

test_expect_success 'killed between the waves: recover over ssh puts the previous tree back' '
	listing g1 >before &&
	test_expect_code 137 env MSGW_FAULT=mid-swap msgw-restore -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	test -n "$(find g1 -name "*.msgw-old")" &&
	recovered_as_before
'

test_expect_success 'connection dropped in the middle of the swap: journal kept; recover puts the previous tree back' '
	listing g1 >before &&
	test_expect_code 5 env MSGW_TEST_SFTP_DROP_BATCH=10 msgw-restore -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "rollback failed too" err &&
	test_grep "msgw-restore recover g1" err &&
	test -e "$STATE/journal-g1" &&
	test -n "$(find g1 -name "*.msgw-old")" &&
	recovered_as_before
'

test_expect_success 'a folder swapped for a link after the plan: refused over ssh, outside untouched' '
	mkdir -p outside/adir &&
	echo "outside" >outside/adir/f02.txt &&
	outside_listing >outside-before &&
	listing g1 >before &&
	cat >race-stop.sh <<-EOS &&
	$MSGW_BUILD_DIR/msgw-sim stop $TRASH/g1 || exit 1
	test -L $TRASH/g1/Conf/a && exit 0
	mv $TRASH/g1/Conf/a $TRASH/g1/Conf/a.real &&
	ln -s $TRASH/outside/adir $TRASH/g1/Conf/a
	EOS
	sed "/^gateway \"g1\"/,/^}/s|^\tstop = .*|\tstop = \"sh $TRASH/race-stop.sh\"|" "$CONF" >race.conf &&
	test_grep "race-stop.sh" race.conf &&
	test_expect_code 1 msgw-restore -c race.conf apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "folder .Conf/a. turned into a symbolic link since the plan; not followed; the restore was stopped and rolled back" err &&
	outside_listing >outside-after &&
	test_cmp outside-before outside-after &&
	rm g1/Conf/a && mv g1/Conf/a.real g1/Conf/a &&
	listing g1 | grep -v "^\./Conf/a/f[0-9]*\.txt\.msgw-new " >after &&
	test_cmp before after &&
	runs g1
'

test_done
