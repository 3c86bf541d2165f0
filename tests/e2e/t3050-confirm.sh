#!/bin/bash
# t3050-confirm: "apply --confirm-within" as a router's "commit confirmed":
# unless "msgw-restore confirm" follows in time, a detached timer puts the
# previous configuration back on its own, after apply has exited; with
# confirm, the new configuration stays.
test_description='msgw-restore: the confirm window'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

# Before the daemons are stopped, let any confirm timer still waiting finish
# (it would start B again after the stop).
test_when_finished 'i=0; while [ -e "$STATE/journal-B" ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done'

# timer_done: the timer let go of the target lock
timer_done() {
	flock -n "$STATE/target-B.lock" true
}

# old_again: B's listing is the old one again, nothing is left over, and
# the timer that put it back has finished
old_again() {
	gw_listing B >now && cmp -s old now && gw_no_leftovers B 2>/dev/null && timer_done
}

test_expect_success 'setup: A changed from B; both running' '
	gw_init A 2 1 &&
	gw_init B 0 2 &&
	cp A/Gateway.json B/Gateway.json &&
	msgw-sim deliver B $(mbx A 1) 1 &&
	msgw-sim add-mailbox A --description "New on A" >>ids-A &&
	echo "Signed, the A team" >>A/Templates/notification.txt &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init &&
	agent snapshot A >out &&
	gw_listing B >old
'

test_expect_success 'apply --confirm-within 3s: new state now, waiting for confirm' '
	restore apply A --to B --yes --confirm-within 3s </dev/null >out &&
	test_grep "^confirm with .msgw-restore confirm B. within [0-9]* s" out &&
	gw_answers B a.test 3 &&
	cmp A/Gateway.json B/Gateway.json &&
	test_grep "^phase: awaiting-confirm$" "$STATE/journal-B" &&
	test -e B/Gateway.json.msgw-old
'

test_expect_success 'without confirm, the previous configuration comes back by itself' '
	wait_for 15 old_again &&
	gw_answers B a.test 2 &&
	test "$(meta_of B kind)" = pre-restore &&
	git -C "$REPO" rev-parse B >old-id
'

test_expect_success 'a new apply is refused while a window is open, naming confirm' '
	restore apply A --to B --yes --confirm-within 3s </dev/null >out &&
	gw_listing B >during &&
	test_expect_code 1 restore apply A --to B --yes </dev/null &&
	test_grep "unfinished (awaiting-confirm); run .msgw-restore confirm B." err &&
	gw_listing B >after &&
	test_cmp during after &&
	wait_for 15 old_again
'

test_expect_success 'with confirm, the new configuration stays past the window' '
	restore apply A --to B --yes --confirm-within 3s </dev/null >out &&
	restore confirm >out &&
	test_grep "^B: confirmed$" out &&
	gw_listing B >new &&
	! cmp -s old new &&
	gw_no_leftovers B &&
	test "$(meta_of B kind)" = restored &&
	test "$(meta_of B restored-from)" = "$(branch_tip A)" &&
	sleep 5 &&
	gw_listing B >later &&
	test_cmp new later &&
	gw_answers B a.test 3
'

test_expect_success 'confirm with nothing waiting fails and changes nothing' '
	tree_listing B >before &&
	test_expect_code 1 restore confirm B &&
	test_grep "no restore of .B. waits for confirmation" err &&
	test_expect_code 1 restore confirm &&
	test_grep "name the gateway" err &&
	tree_listing B >after &&
	test_cmp before after
'

test_expect_success 'recover leaves an open window alone until it expires' '
	restore apply B~1 --to B --yes --confirm-within 4s </dev/null >out &&
	gw_answers B a.test 2 &&
	restore recover B >out &&
	test_grep "^B: waiting for confirmation" out &&
	gw_answers B a.test 2 &&
	gw_listing B | grep -v -e "\.msgw-old " -e "^\./\.msgw-journal " >rolled &&
	test_cmp old rolled &&
	wait_for 15 eval "gw_listing B >now && cmp -s new now && gw_no_leftovers B 2>/dev/null && timer_done" &&
	gw_answers B a.test 3
'

test_expect_success 'a window that closes while other runs hold the locks still rolls back' '
	gw_listing B >before &&
	restore apply $(cat old-id) --to B --yes --confirm-within 2s </dev/null >out &&
	gw_answers B a.test 2 &&
	{ flock "$REPO/msgw.lock" sleep 5 & } &&
	{ flock "$STATE/target-B.lock" sleep 7 & } &&
	wait_for 5 eval "! flock -n \"$REPO/msgw.lock\" true" &&
	wait_for 5 eval "! flock -n \"$STATE/target-B.lock\" true" &&
	sleep 4 &&
	test_grep "^phase: awaiting-confirm$" "$STATE/journal-B" &&
	wait_for 15 eval "gw_listing B >now && cmp -s before now && gw_no_leftovers B 2>/dev/null && timer_done" &&
	gw_answers B a.test 3
'

test_done
