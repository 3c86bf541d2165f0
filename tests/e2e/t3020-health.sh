#!/bin/bash
# t3020-health: an apply whose new configuration does not come up healthy
# puts every file back and starts the service on the old configuration
# (exit 4), whether the start command fails (the simulator refuses the
# configuration) or the service starts but never answers the health check.
# A stop that hangs changes nothing (exit 1).  When the old configuration
# cannot start either, exit 5 keeps the journal and says what to do; once
# the cause is gone, recover puts the old state back.
test_description='msgw-restore: health failures roll back'
. "$(dirname "$0")/test-lib.sh"
GW_TIMEOUT=3
. "$TEST_DIR/gw-lib.sh"

test_when_finished '[ -f blocker.pid ] && kill "$(cat blocker.pid)"; [ -f B.pid ] && kill -9 "$(cat B.pid)"; true'

test_expect_success 'setup: A and B running, B recorded' '
	gw_init A 2 1 &&
	gw_init B 1 2 &&
	msgw-sim deliver B $(mbx B 1) 2 &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init &&
	agent snapshot A B >out &&
	cp B/Gateway.json old-B.json
'

test_expect_success 'a configuration the simulator refuses: exit 4, old state back and running' '
	gw_set_json A "d[\"ports\"][\"smtp\"] = 0" &&
	agent snapshot A >out &&
	gw_listing B >before &&
	test_expect_code 4 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "start: .msgw-sim start .* exited with status 1: .*ports.smtp" err &&
	test_grep "the previous configuration is back and running" err &&
	cmp old-B.json B/Gateway.json &&
	gw_listing B >after &&
	test_cmp before after &&
	gw_answers B b.test 1 &&
	gw_no_leftovers B &&
	test "$(meta_of B kind)" = pre-restore
'

test_expect_success 'a service that starts but never answers: exit 4 after the timeout' '
	gw_set_json A "d[\"ports\"][\"smtp\"] = 25; d[\"ports\"][\"console\"] = $PORT + 1" &&
	agent snapshot A >out &&
	gw_listing B >before &&
	start=$(date +%s) &&
	test_expect_code 4 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test $(( $(date +%s) - start )) -ge 3 &&
	test_grep "health check .tcp:127.0.0.3:$PORT. failed for 3 s" err &&
	cmp old-B.json B/Gateway.json &&
	gw_listing B >after &&
	test_cmp before after &&
	gw_answers B b.test 1 &&
	! (exec 3<>/dev/tcp/127.0.0.3/$((PORT + 1))) 2>/dev/null &&
	gw_no_leftovers B
'

test_expect_success 'a stop that hangs: exit 1, nothing changed, the service still runs' '
	gw_stop B &&
	MSGW_SIM_STOP_HANG=1 gw_start B &&
	gw_listing B >before &&
	test_expect_code 1 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "stop: .msgw-sim stop .*. timed out after 3 s (killed); nothing changed" err &&
	gw_listing B >after &&
	test_cmp before after &&
	gw_answers B b.test 1 &&
	gw_no_leftovers B &&
	kill -9 "$(cat B.pid)" &&
	wait_for 5 eval "! gw_running B" &&
	gw_stop B 2>/dev/null &&
	gw_start B &&
	gw_answers B b.test 1
'

test_expect_success 'the old configuration cannot start either: exit 5, recover after the cause is gone' '
	gw_set_json A "d[\"ports\"][\"console\"] = $PORT" &&
	agent snapshot A >out &&
	gw_stop B &&
	gw_listing B >before &&
	{ python3 -c "
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"127.0.0.3\", int(sys.argv[1])))
s.listen(1)
open(\"blocker.ready\", \"w\").close()
time.sleep(120)
" $PORT & } &&
	echo $! >blocker.pid &&
	wait_for 10 test -e blocker.ready &&
	test_expect_code 5 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "rollback failed too" err &&
	test_grep "msgw-restore recover B" err &&
	test -s "$STATE/journal-B" &&
	cmp old-B.json B/Gateway.json &&
	test_expect_code 1 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "unfinished" err &&
	kill "$(cat blocker.pid)" && rm blocker.pid &&
	wait_for 5 eval "! (exec 3<>/dev/tcp/127.0.0.3/$PORT) 2>/dev/null" &&
	restore recover B >out &&
	test_grep "^B: rolled back" out &&
	gw_listing B >after &&
	test_cmp before after &&
	gw_answers B b.test 1 &&
	gw_no_leftovers B
'

test_done
