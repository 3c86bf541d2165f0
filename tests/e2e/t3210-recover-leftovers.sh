#!/bin/bash
# t3210-recover-leftovers: what a killed restore leaves and what recover
# does with it (issue 14 case 1, issue 13 cases 8, 9 and 11):
#  - a temporary journal copy on the target (.msgw-journal.msgw-tmp.PID)
#    and state-dir/journal-B.tmp from a dead run are removed by recover;
#  - a journal that cannot be parsed stops recover with one line naming
#    the file, and nothing on the target changes;
#  - undoing an "add" leaves a file the service made in its place;
#  - the confirm timer runs with /dev/null, not closed fds, on 0-2;
#  - too little free space stops apply and extract before anything is
#    written.
test_description='msgw-restore: recover cleans up, refuses damaged journals'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

test_expect_success 'setup: A adds Templates/new.txt and changes Gateway.json; B runs' '
	gw_init A 1 1 &&
	gw_init B 1 2 &&
	cp A/Gateway.json B/Gateway.json &&
	msgw-sim set A mailbox.$(mbx A 1).description "Renamed on A" &&
	echo "new on A" >A/Templates/new.txt &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init &&
	agent snapshot A B >out &&
	gw_listing B >orig
'

test_expect_success 'leftover temporary journals of a dead run: recover removes them' '
	echo "msgw-journal 1" >B/.msgw-journal.msgw-tmp.4242 &&
	mkdir -p "$STATE" &&
	echo "msgw-journal 1" >"$STATE/journal-B.tmp" &&
	restore recover >out 2>err &&
	test_grep "removed .\.msgw-journal\.msgw-tmp\.4242. from the target" err &&
	test_grep "removed .*journal-B\.tmp" err &&
	test ! -e B/.msgw-journal.msgw-tmp.4242 &&
	test ! -e "$STATE/journal-B.tmp" &&
	gw_listing B >now &&
	test_cmp orig now &&
	restore apply A --to B --yes </dev/null >out &&
	restore rollback --to B --yes </dev/null >out &&
	gw_listing B >now &&
	test_cmp orig now
'

test_expect_success 'a damaged journal: recover names it, touches nothing, says what to do' '
	test_expect_code 137 env MSGW_FAULT=after-stage msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	test -e B/Templates/new.txt.msgw-new &&
	cp "$STATE/journal-B" journal.good &&
	sed "s/^phase: .*/&\nphase: committing/" journal.good >"$STATE/journal-B" &&
	tree_listing B >before &&
	test_expect_code 1 restore recover B >out &&
	test $(grep -v "warning: cleared a stale" err | wc -l) = 1 &&
	test_grep "cannot read journal .$STATE/journal-B.: journal line [0-9]*: .phase: committing. given twice; nothing was touched" err &&
	test_grep "rollback --to B" err &&
	tree_listing B >after &&
	test_cmp before after &&
	cp journal.good "$STATE/journal-B" &&
	restore recover B >out 2>err &&
	test_grep "^B: rolled back" out &&
	gw_listing B >now &&
	test_cmp orig now &&
	gw_no_leftovers B
'

test_expect_success 'undoing an add leaves a file the service made in its place' '
	test_expect_code 137 env MSGW_FAULT=before-start msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	cmp A/Templates/new.txt B/Templates/new.txt &&
	rm B/Templates/new.txt &&
	echo "made by the service" >B/Templates/new.txt &&
	restore recover B >out 2>err &&
	test_grep "^B: rolled back" out &&
	test_grep "left .Templates/new.txt. in place: it is not the file this restore put there" err &&
	echo "made by the service" >expect &&
	test_cmp expect B/Templates/new.txt &&
	rm B/Templates/new.txt &&
	gw_listing B >now &&
	test_cmp orig now &&
	gw_no_leftovers B
'

test_expect_success 'undoing an add still removes the added file when it is ours' '
	test_expect_code 137 env MSGW_FAULT=before-start msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	cmp A/Templates/new.txt B/Templates/new.txt &&
	restore recover B >out 2>err &&
	test_grep "^B: rolled back" out &&
	test ! -e B/Templates/new.txt &&
	gw_listing B >now &&
	test_cmp orig now
'

test_expect_success 'the confirm timer runs with /dev/null on fds 0-2' '
	restore apply A --to B --yes --confirm-within 1h </dev/null >out 2>err &&
	timer= &&
	for i in $(seq 50); do
		timer=$(pgrep -f "msgw-restore .*recover B --timer" | head -1) &&
		test -n "$timer" && break
		sleep 0.1
	done &&
	test -n "$timer" &&
	for fd in 0 1 2; do
		test "$(readlink /proc/$timer/fd/$fd)" = /dev/null || return 1
	done &&
	restore confirm B >out &&
	restore rollback --to B --yes </dev/null >out &&
	gw_listing B >now &&
	test_cmp orig now
'

test_expect_success 'too little free space: apply stops before anything is written' '
	tip=$(branch_tip B) &&
	test_expect_code 1 env MSGW_FAULT_FREE_SPACE=100 msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	test_grep "not enough free space on .*/B. to stage the restore: [0-9]* bytes needed, 100 free; nothing was written" err &&
	test "$(branch_tip B)" = "$tip" &&
	gw_listing B >now &&
	test_cmp orig now &&
	gw_no_leftovers B &&
	test_expect_code 1 env MSGW_FAULT_FREE_SPACE=100 msgw-restore -c "$CONF" extract A ex &&
	test_grep "not enough free space on .ex. to extract the snapshot" err &&
	test ! -e ex
'

test_done
