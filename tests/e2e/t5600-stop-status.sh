#!/bin/bash
# t5600-stop-status: stopped means stopped.  The stop command's exit status
# is not trusted: after it, the status command must say the service stopped
# before any file is swapped.  The simulator's stop here behaves like
# `sc.exe stop`: it asks and returns 0 at once (MSGW_SIM_STOP_EARLY=1), and
# the daemon takes 2 s to exit, then writes back the settings it loaded
# (MSGW_SIM_STOP_DELAY=2), as a service that saves its settings on exit
# does.  A service that never stops: the apply aborts before the swap,
# nothing changed, and nothing is started that the stop did not stop.
test_description='msgw-restore: the status command confirms the stop before the swap'
. "$(dirname "$0")/test-lib.sh"
GW_TIMEOUT=5
. "$TEST_DIR/gw-lib.sh"

test_when_finished '[ -f A.pid ] && kill -9 "$(cat A.pid)"; true'

test_expect_success 'setup: A running, stop returns early and exits 0' '
	gw_init A 1 1 &&
	msgw-sim deliver A $(mbx A 1) 2 &&
	gw_write_config &&
	sed -i "s|stop     = \"msgw-sim stop $TRASH/A\"|stop = \"MSGW_SIM_STOP_EARLY=1 msgw-sim stop $TRASH/A\"|" "$CONF" &&
	test_grep "MSGW_SIM_STOP_EARLY=1 msgw-sim stop" "$CONF" &&
	gw_start A &&
	agent init &&
	agent snapshot A >out &&
	cp A/Gateway.json good.json &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2525" &&
	agent snapshot A >out &&
	cp A/Gateway.json changed.json &&
	! cmp good.json changed.json
'

test_expect_success 'the simulated early stop: exits 0 while the daemon still runs' '
	gw_stop A &&
	MSGW_SIM_STOP_DELAY=2 gw_start A &&
	pid=$(cat A.pid) &&
	MSGW_SIM_STOP_EARLY=1 msgw-sim stop A &&
	gw_running A &&
	wait_for 5 eval "! gw_running A" &&
	test_grep "settings saved on exit" A/Logs/* &&
	cmp changed.json A/Gateway.json &&
	gw_start A
'

test_expect_success 'stop returns early: no file is swapped before status says stopped' '
	gw_stop A &&
	MSGW_SIM_STOP_DELAY=2 gw_start A &&
	start=$(date +%s) &&
	restore apply A~1 --to A --yes </dev/null >out 2>err &&
	test $(( $(date +%s) - start )) -ge 2 &&
	test_grep "^restored .* onto A: 0 added, 1 modified, 0 removed$" out &&
	cmp good.json A/Gateway.json &&
	gw_answers A a.test 1 &&
	gw_no_leftovers A &&
	msgw-sim fetch A $(mbx A 1) $(pw A 1) >fetched &&
	test $(wc -l <fetched) = 2
'

test_expect_success 'a stop that never stops: exit 1 before the swap, the service left as it was' '
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2526" &&
	agent snapshot A >out &&
	cp A/Gateway.json before.json &&
	gw_stop A &&
	MSGW_SIM_STOP_HANG=1 gw_start A &&
	pid=$(cat A.pid) &&
	gw_listing A >before &&
	test_expect_code 1 restore apply A~1 --to A --yes </dev/null &&
	test_grep "stop: .MSGW_SIM_STOP_EARLY=1 msgw-sim stop .*. exited 0 but status .msgw-sim status .*. still reports the service running after 5 s; nothing changed" err &&
	cmp before.json A/Gateway.json &&
	gw_listing A >after &&
	test_cmp before after &&
	gw_no_leftovers A &&
	test "$(cat A.pid)" = "$pid" &&
	gw_answers A a.test 1 &&
	! grep -q "already running" err &&
	kill -9 "$pid" &&
	wait_for 5 eval "! gw_running A" &&
	gw_stop A 2>/dev/null; gw_start A
'

test_done
