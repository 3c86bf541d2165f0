#!/bin/bash
# t3010-rollback: the two ways back.  A bad change on a gateway (a broken
# Gateway.json that keeps the service down, then one missing a required
# field) is snapshotted, and the snapshot before it, A~1, is applied onto
# the same gateway: the service runs on the good configuration again.  And
# "rollback --to B" undoes an apply onto B by applying its pre-restore
# snapshot as a new transaction.
test_description='msgw-restore: rollback after a bad change, rollback --to'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

test_expect_success 'setup: gateways A and B running, A snapshotted' '
	gw_init A 2 1 &&
	gw_init B 1 2 &&
	msgw-sim deliver A $(mbx A 1) 2 &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init &&
	agent snapshot A >out &&
	cp A/Gateway.json good.json &&
	gw_listing A >good-A
'

test_expect_success 'a bad change: invalid JSON keeps the service down' '
	printf "{\"domain\": \"a.test\",\n  \"mailboxes\": [\n" >A/Gateway.json &&
	gw_stop A &&
	test_expect_code 1 gw_start A &&
	test_grep "refusing to start: invalid configuration" err &&
	test_expect_code 3 msgw-sim status A &&
	agent snapshot A >out &&
	test_grep "A: 1 modified, 0 added, 0 removed" out
'

test_expect_success 'apply A~1 onto A: the good configuration runs again' '
	good=$(git -C "$REPO" rev-parse A~1) &&
	restore plan A~1 --to A >plan &&
	test_grep "^  modify   Gateway.json$" plan &&
	test_grep "^note: target: .Gateway.json.: line" plan &&
	restore apply A~1 --to A --yes </dev/null >out &&
	test_grep "^restored ${good%${good#????????????}} onto A: 0 added, 1 modified, 0 removed$" out &&
	cmp good.json A/Gateway.json &&
	gw_listing A >now-A &&
	test_cmp good-A now-A &&
	gw_answers A a.test 2 &&
	gw_no_leftovers A &&
	test "$(meta_of A kind)" = restored &&
	test "$(meta_of A restored-from)" = "$good" &&
	test "$(meta_of A~1 kind)" = pre-restore
'

test_expect_success 'the mail of A survives the bad change and the rollback' '
	test $(ls A/$(mbx A 1) | wc -l) = 2 &&
	msgw-sim fetch A $(mbx A 1) $(pw A 1) >fetched &&
	test $(wc -l <fetched) = 2
'

test_expect_success 'a bad change: a required field missing; A~1 puts it back' '
	gw_set_json A "del d[\"domain\"]" &&
	agent snapshot A >out &&
	test_grep "A: 1 modified" out &&
	restore apply A~1 --to A --yes </dev/null >out &&
	cmp good.json A/Gateway.json &&
	gw_answers A a.test 2 &&
	gw_stop A && gw_start A &&
	gw_answers A a.test 2
'

test_expect_success 'apply A onto B, then rollback --to B undoes it' '
	gw_listing B >before-B &&
	cp B/Gateway.json before-B.json &&
	restore apply A --to B --yes </dev/null >out &&
	cmp A/Gateway.json B/Gateway.json &&
	gw_answers B a.test 2 &&
	pre=$(git -C "$REPO" rev-parse B~1) &&
	test "$(meta_of $pre kind)" = pre-restore &&
	restore rollback --to B --yes </dev/null >out &&
	test_grep "^rolling back .B. to pre-restore snapshot ${pre%${pre#????????????}}$" out &&
	test_grep "^restored ${pre%${pre#????????????}} onto B: 0 added, 1 modified, 0 removed$" out &&
	cmp before-B.json B/Gateway.json &&
	gw_listing B >after-B &&
	test_cmp before-B after-B &&
	gw_answers B b.test 1 &&
	gw_no_leftovers B &&
	test "$(meta_of B kind)" = restored &&
	test "$(meta_of B restored-from)" = "$pre"
'

test_expect_success 'a second rollback undoes the rollback' '
	restore rollback --to B --yes </dev/null >out &&
	cmp A/Gateway.json B/Gateway.json &&
	gw_answers B a.test 2 &&
	restore rollback --to B --yes </dev/null >out &&
	cmp before-B.json B/Gateway.json &&
	gw_answers B b.test 1
'

test_expect_success 'rollback --dry-run shows the plan and changes nothing' '
	tree_listing B >before &&
	restore rollback --to B --dry-run >out &&
	test_grep "^rolling back .B. to pre-restore snapshot" out &&
	test_grep "^  modify   Gateway.json$" out &&
	tree_listing B >after &&
	test_cmp before after
'

test_done
