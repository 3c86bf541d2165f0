#!/bin/bash
# t3030-crash: a restore killed at any point (SIGKILL from the fault
# injection points compiled into test builds) is finished or undone by
# "msgw-restore recover": the gateway is left fully old (killed before the
# commit began) or fully new (killed while committing), running, with no
# staged file, backup or journal left, and the repository verifies.
#
# The change is large enough to exercise every kind of operation: new
# directories and files, modified files, a directory's mode, removed files
# and a removed directory, so "mid-swap" really stops half-way.
test_description='msgw-restore: crash safety and recover'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

test_expect_success 'setup: B carries A'"'"'s configuration and holds mail; A changes a lot' '
	gw_init A 2 1 &&
	gw_init B 0 2 &&
	cp A/Gateway.json B/Gateway.json &&
	mkdir B/OldRules &&
	echo "old rule" >B/OldRules/old.txt &&
	msgw-sim deliver B $(mbx A 1) 2 &&
	msgw-sim set A mailbox.$(mbx A 2).description "Renamed on A" &&
	msgw-sim add-mailbox A --description "New on A" >>ids-A &&
	echo "Signed, the A team" >>A/Templates/notification.txt &&
	rm A/Templates/bounce.txt &&
	chmod 0750 A/Templates &&
	mkdir -p A/Rules/extra &&
	echo "route all" >A/Rules/routing.txt &&
	echo "more" >A/Rules/extra/more.txt &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init &&
	agent snapshot A >out &&
	gw_listing B >orig
'

test_expect_success 'a clean apply gives the new state, rollback the old one' '
	restore plan A --to B >plan &&
	test_grep "^files: 4 added, 3 modified, 3 removed, 1 preserved" plan &&
	restore apply A --to B --yes </dev/null >out &&
	gw_listing B >new &&
	! cmp -s orig new &&
	gw_config_listing A >config-A &&
	gw_config_listing B >config-B &&
	test_cmp config-A config-B &&
	restore rollback --to B --yes </dev/null >out &&
	gw_listing B >old &&
	test_cmp orig old &&
	gw_answers B a.test 2
'

# check_old: B holds exactly the old state, runs, and nothing is left over
check_old() {
	gw_listing B >now &&
	test_cmp old now &&
	gw_answers B a.test 2 &&
	gw_no_leftovers B &&
	agent verify >verify.out
}

check_new() {
	gw_listing B >now &&
	test_cmp new now &&
	gw_answers B a.test 3 &&
	gw_no_leftovers B &&
	agent verify >verify.out
}

test_expect_success 'killed after staging: staged files beside the old ones; recover undoes' '
	test_expect_code 137 env MSGW_FAULT=after-stage msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	test_grep "fault injection: killed at .after-stage." err &&
	test -e B/Gateway.json.msgw-new &&
	test -e B/Rules/routing.txt.msgw-new &&
	test -s "$STATE/journal-B" &&
	gw_answers B a.test 2 &&
	restore recover B >out &&
	test_grep "^B: rolled back" out &&
	check_old
'

test_expect_success 'killed after the stop: the service is down; recover undoes and starts it' '
	test_expect_code 137 env MSGW_FAULT=after-stop msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	test_expect_code 3 msgw-sim status B &&
	test -e B/Gateway.json.msgw-new &&
	test_grep "^phase: swapping$" "$STATE/journal-B" &&
	restore recover B >out &&
	test_grep "^B: rolled back" out &&
	check_old
'

test_expect_success 'killed in the middle of the swap: half swapped; recover undoes' '
	test_expect_code 137 env MSGW_FAULT=mid-swap msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	test_expect_code 3 msgw-sim status B &&
	find B -name "*.msgw-old" >backups &&
	test_grep "^B/Gateway.json.msgw-old$" backups &&
	test -e B/Templates/bounce.txt &&
	gw_listing B | grep -v "\.msgw-\(new\|old\)" >half &&
	! cmp -s half old && ! cmp -s half new &&
	restore recover >out &&
	test_grep "^B: rolled back" out &&
	check_old
'

test_expect_success 'killed before the start: all swapped, service down; recover undoes' '
	test_expect_code 137 env MSGW_FAULT=before-start msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	test_expect_code 3 msgw-sim status B &&
	test -z "$(find B -name "*.msgw-new")" &&
	test -e B/Gateway.json.msgw-old &&
	test -e B/OldRules/old.txt.msgw-old &&
	gw_listing B | grep -v -e "\.msgw-old " -e "^\./\.msgw-journal " -e "^\./OldRules d " >swapped &&
	test_cmp new swapped &&
	restore recover B >out &&
	test_grep "^B: rolled back" out &&
	check_old
'

test_expect_success 'killed before the commit: running on the new state; recover commits' '
	test_expect_code 137 env MSGW_FAULT=before-commit msgw-restore -c "$CONF" apply A --to B --yes </dev/null &&
	gw_answers B a.test 3 &&
	test_grep "^phase: committing$" "$STATE/journal-B" &&
	restore recover B >out &&
	test_grep "^B: finished the restore" out &&
	check_new &&
	test "$(meta_of B kind)" = restored &&
	test "$(meta_of B restored-from)" = "$(branch_tip A)"
'

test_expect_success 'recover with nothing to do says so and changes nothing' '
	tree_listing B >before &&
	restore recover B >out &&
	test_grep "^B: nothing to recover$" out &&
	restore recover >out &&
	test_grep "^nothing else to recover$" out &&
	tree_listing B >after &&
	test_cmp before after
'

test_expect_success 'after all the crashes, every snapshot verifies' '
	agent verify --all >out &&
	agent snapshot B >out &&
	test_grep "unchanged" out
'

test_done
