#!/bin/bash
# t5610-process-group: a killed run leaves no one behind.  Every local
# command the tools start (stop, start, status, health, hooks) runs in its
# own process group led by a small process that holds a lifeline to the
# tool: when the tool dies, even of SIGKILL, the leader kills the whole
# group.  An apply killed while its stop command sleeps: once recover has
# returned, no process of that group is left.  A hook that outlives its
# timeout is killed with its children.
test_description='msgw-restore: commands die with a killed run'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

test_when_finished '[ -f apply.pid ] && kill -9 "$(cat apply.pid)"; true'

# group_left PGID: the processes still in that process group
group_left() { ps -e -o pid=,pgid=,args= | awk -v g="$1" '$2 == g'; }

test_expect_success 'setup: A running, a stop command that sleeps first' '
	gw_init A 1 1 &&
	gw_write_config &&
	sed -i "s|stop     = \"msgw-sim stop $TRASH/A\"|stop = \"echo \$\$ >$TRASH/stop.pid; sleep 5; msgw-sim stop $TRASH/A\"|" "$CONF" &&
	test_grep "stop.pid; sleep 5" "$CONF" &&
	gw_start A &&
	agent init &&
	agent snapshot A >out &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2525" &&
	agent snapshot A >out
'

test_expect_success 'apply killed while its stop command runs: recover leaves no one of its group' '
	rm -f stop.pid &&
	{ msgw-restore -c "$CONF" apply A~1 --to A --yes </dev/null >apply.out 2>apply.err & } &&
	echo $! >apply.pid &&
	wait_for 10 test -s stop.pid &&
	pgid=$(ps -o pgid= -p "$(cat stop.pid)" | tr -d " ") &&
	test -n "$pgid" &&
	test "$pgid" != "$(ps -o pgid= -p $$ | tr -d " ")" &&
	group_left "$pgid" >alive &&
	test_grep "sleep 5" alive &&
	kill -9 "$(cat apply.pid)" && { wait "$(cat apply.pid)"; true; } &&
	restore recover A >out 2>err || { cat err; false; } &&
	group_left "$pgid" >left &&
	test_cmp /dev/null left &&
	rm apply.pid &&
	gw_answers A a.test 1
'

test_expect_success 'a hook past its timeout dies with its children' '
	sed -i "s|^state-dir.*|&\nhook-pre-snapshot = \"sleep 30 \& echo \$! >$TRASH/child.pid; wait\"\nhook-timeout = 2|" "$CONF" &&
	test_grep "hook-timeout = 2" "$CONF" &&
	test_expect_code 1 agent snapshot A &&
	test_grep "hook-pre-snapshot of .A.: .* timed out after 2 s" err &&
	test -s child.pid &&
	wait_for 5 eval "! kill -0 $(cat child.pid) 2>/dev/null"
'

test_done
