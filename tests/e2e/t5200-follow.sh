#!/bin/bash
# t5200-follow: msgw-restore follow keeps the standby B in step with A
# (follows = "A").  Running in the background with a one-second interval,
# a safe change snapshotted on A reaches B on its own.  A hazardous one
# does not: the field's key-changed loss case (B holds mail for a mailbox
# whose password was reset on A, under the simulator's real encryption)
# leaves B unchanged byte for byte, and msgw-agent status turns CRITICAL
# (exit 2) naming the finding, until the cause is gone.  A repository lock
# held by another run only delays the follower; nothing is followed while
# a confirm window is open; SIGTERM ends it with exit 0.
test_description='msgw-restore follow: a standby that follows its primary'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

test_when_finished '[ -f follow.pid ] && kill -9 "$(cat follow.pid)"; true'
# let a confirm timer still waiting finish before the daemons stop
test_when_finished 'i=0; while [ -e "$STATE/journal-B" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done'

# start_follower: msgw-restore follow B --interval 1s in the background;
# its exit status lands in follow.rc
start_follower() {
	rm -f follow.pid follow.rc
	( msgw-restore -c "$CONF" follow B --interval 1s >>follow.out 2>>follow.log &
	  echo $! >follow.pid
	  rc=0; wait $! || rc=$?; echo $rc >follow.rc ) &
	wait_for 10 test -s follow.pid
}
stop_follower() {
	kill -TERM "$(cat follow.pid)" &&
	wait_for 30 test -s follow.rc &&
	test "$(cat follow.rc)" = 0 &&
	rm -f follow.pid
}
follower_running() { kill -0 "$(cat follow.pid)" 2>/dev/null; }

# follow_state KEY: a value of B's state file
follow_state() { sed -n "s/^$1: //p" "$STATE/status-B" 2>/dev/null; }
applied_is() { [ "$(follow_state follow-applied)" = "$1" ]; }
state_is() { [ "$(follow_state follow-state)" = "$1" ]; }
count_is_at_least() { [ "$(grep -c -e "$1" "$2")" -ge "$3" ]; }

test_expect_success 'setup: B bootstrapped from A and following it' '
	gw_bootstrap &&
	sed -i "/^gateway \"B\" {/a\\  follows  = \"A\"" "$CONF" &&
	test_grep "follows  = \"A\"" "$CONF" &&
	restore follow B --once >out &&
	test ! -s out &&
	state_is ok &&
	applied_is "$(branch_tip A)" &&
	test_expect_code 0 agent status &&
	test_grep "^  follow: ok$" out
'

test_expect_success 'a gateway without follows is refused (usage, exit 2)' '
	test_expect_code 2 restore follow A --once &&
	test_grep "gateway .A. has no .follows." err
'

test_expect_success 'a safe change on A reaches B on its own' '
	start_follower &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2525" &&
	agent snapshot A >out &&
	test_grep "A: 1 modified, 0 added, 0 removed" out &&
	tip=$(branch_tip A) &&
	wait_for 30 applied_is $tip &&
	cmp A/Gateway.json B/Gateway.json &&
	test_grep "^B: followed ${tip:0:12} " follow.out &&
	gw_answers B a.test 2 &&
	test "$(meta_of B kind)" = restored &&
	test_grep "$tip" "$STATE/status-B" &&
	cp B/Gateway.json B.json.before &&
	gw_no_leftovers B &&
	follower_running &&
	test_expect_code 0 agent status &&
	test_grep "^  follow: ok$" out
'

test_expect_success 'a repository lock held by another run delays the follower, never ends it' '
	stop_follower &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2526" &&
	agent snapshot A >/dev/null &&
	tip=$(branch_tip A) &&
	hold_lock "$REPO/msgw.lock" &&
	test_when_finished release_lock &&
	start_follower &&
	wait_for 10 count_is_at_least "repository is locked by" follow.log 2 &&
	follower_running &&
	! applied_is $tip &&
	test_cmp B.json.before B/Gateway.json &&
	release_lock &&
	wait_for 30 applied_is $tip &&
	cmp A/Gateway.json B/Gateway.json &&
	follower_running
'

test_expect_success 'hazard: B holds mail for mailbox 1 (recorded); on A its password is reset' '
	X=$(mbx A 1) &&
	msgw-sim deliver B $X 3 &&
	msgw-sim fetch B $X $(pw A 1) >/dev/null &&
	msgw-sim deliver B $X 3 &&
	test $(ls B/$X | wc -l) = 3 &&
	agent snapshot B >out &&
	test_grep "B: 1 modified, 0 added, 0 removed" out &&
	tree_listing B >B.before &&
	tipB=$(branch_tip B) && echo $tipB >B.tip &&
	msgw-sim deliver A $X 1 &&
	msgw-sim fetch A $X $(pw A 1) >/dev/null &&
	msgw-sim suspend A $X &&
	msgw-sim reset-password A $X >new-pw &&
	msgw-sim activate A $X &&
	agent snapshot A >out &&
	test_grep "A: 1 modified, 0 added, 0 removed" out
'

test_expect_success 'the follower does not apply it: blocked by key-changed, B unchanged byte for byte' '
	X=$(mbx A 1) &&
	wait_for 30 state_is blocked &&
	test "$(follow_state follow-finding)" = "key-changed $X (3 messages)" &&
	n=$(grep -c "not following" follow.log) &&
	wait_for 10 count_is_at_least "not following" follow.log $((n + 1)) &&
	test_grep "B: not following [0-9a-f]*: blocked by key-changed $X (3 messages); nothing was changed" follow.log &&
	follower_running &&
	tree_listing B >B.after &&
	test_cmp B.before B.after &&
	test "$(branch_tip B)" = "$(cat B.tip)" &&
	gw_answers B a.test 2
'

test_expect_success 'status turns CRITICAL (exit 2), naming the finding' '
	X=$(mbx A 1) &&
	test_expect_code 2 agent status &&
	head -1 out >line &&
	test_grep "^MSGW CRITICAL - .*B CRITICAL: follow blocked: key-changed $X (3 messages)" line &&
	test_grep "^  follow: blocked: key-changed $X (3 messages)$" out &&
	test_expect_code 2 agent status --json &&
	python3 - out "$X" <<-\EOF &&
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["status"] == "CRITICAL" and d["exit"] == 2, d
	b = [g for g in d["gateways"] if g["gateway"] == "B"][0]
	assert b["status"] == "CRITICAL" and b["follow_state"] == "blocked", b
	assert b["follow_finding"] == "key-changed %s (3 messages)" % sys.argv[2], b
	a = [g for g in d["gateways"] if g["gateway"] == "A"][0]
	assert a["status"] == "OK", a
	EOF
	test_expect_code 2 agent status --prometheus m.prom &&
	test_grep "^msgw_follow_blocked{gateway=\"B\"} 1$" m.prom &&
	test_grep "^msgw_follow_blocked{gateway=\"A\"} 0$" m.prom &&
	test_grep "^msgw_gateway_status{gateway=\"B\"} 2$" m.prom
'

test_expect_success 'follow --once says the same: exit 3, nothing changed' '
	stop_follower &&
	test_expect_code 3 restore follow B --once &&
	test_grep "blocked by key-changed $(mbx A 1) (3 messages); nothing was changed" err &&
	tree_listing B >B.after &&
	test_cmp B.before B.after
'

test_expect_success 'once the mail is fetched from B, follow goes on and status is OK again' '
	X=$(mbx A 1) &&
	msgw-sim fetch B $X $(pw A 1) >fetched &&
	test $(wc -l <fetched) = 3 &&
	agent snapshot B >/dev/null &&
	restore follow B --once >out &&
	test_grep "^B: followed $(branch_tip A | cut -c1-12) " out &&
	cmp A/Gateway.json B/Gateway.json &&
	state_is ok &&
	test_expect_code 0 agent status &&
	test_grep "^MSGW OK - " out &&
	gw_answers B a.test 2
'

test_expect_success 'nothing is followed while a confirm window is open' '
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2527" &&
	agent snapshot A >/dev/null &&
	restore apply A --to B --yes --confirm-within 60s </dev/null >out &&
	test_when_finished "restore confirm B >/dev/null 2>&1" &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2528" &&
	agent snapshot A >/dev/null &&
	gw_listing B >before &&
	restore -v follow B --once >out 2>err &&
	test_grep "B: a restore is open (awaiting-confirm); not following now" err &&
	gw_listing B >after &&
	test_cmp before after &&
	restore confirm B >/dev/null &&
	restore follow B --once >out &&
	cmp A/Gateway.json B/Gateway.json
'

test_expect_success 'an apply that fails its health check: rolled back, and not retried by the loop' '
	cp B/Gateway.json B.json.good &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 0" &&
	agent snapshot A >/dev/null &&
	n=$(git -C "$REPO" rev-list --count B) &&
	: >follow.log &&
	start_follower &&
	wait_for 30 state_is failed &&
	sleep 3 &&
	follower_running &&
	cmp B.json.good B/Gateway.json &&
	gw_answers B a.test 2 &&
	test "$(grep -c "rolling back" follow.log)" = 1 &&
	test "$(git -C "$REPO" rev-list --count B)" = $((n + 1)) &&
	test "$(meta_of B kind)" = pre-restore &&
	test_expect_code 2 agent status &&
	test_grep "B CRITICAL: follow failed: .*the previous configuration is back and running" out &&
	stop_follower &&
	test_expect_code 4 restore follow B --once &&
	cmp B.json.good B/Gateway.json
'

test_expect_success 'a newer snapshot is followed again; status OK' '
	gw_set_json A "d[\"ports\"][\"smtp\"] = 25" &&
	agent snapshot A >/dev/null &&
	restore follow B --once >out &&
	test_grep "^B: followed " out &&
	cmp A/Gateway.json B/Gateway.json &&
	test_expect_code 0 agent status &&
	gw_answers B a.test 2
'

test_done
