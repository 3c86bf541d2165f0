#!/bin/bash
# t3000-bootstrap: bootstrap a second gateway from the first.  Gateway A
# (two mailboxes) is snapshotted and restored onto B, a fresh install with
# no mailboxes configured.  B's configuration must end up equal to A's,
# except its own certificate (preserved), its logs (excluded) and its
# mailbox stores, which are never touched: B's stores hold mail for A's
# first mailbox (left there by an earlier installation, sealed to that
# mailbox's key, which A's configuration carries unchanged) and an empty
# store of a mailbox nobody knows.  Neither gives a finding: the snapshot
# has the first mailbox with the same key, and the unknown store is empty.
test_description='msgw-restore: bootstrap a second gateway from the first'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

UNKNOWN=mbx-0123456789abcdef0123456789abcdef

test_expect_success 'setup: gateway A with mail, a fresh gateway B, a repository' '
	gw_init A 2 1 &&
	gw_init B 0 2 &&
	X=$(mbx A 1) &&
	mkdir -p A/Rules &&
	printf "route * to %s\n" "$X" >A/Rules/routing.txt &&
	printf "legacy setting\n" >B/Obsolete.cfg &&
	printf "Signed, the A team\n" >>A/Templates/notification.txt &&
	msgw-sim deliver A $X 3 &&
	mkdir B/$X B/$UNKNOWN &&
	mv A/$X/*.msg B/$X/ &&
	test $(ls B/$X | wc -l) = 3 &&
	gw_write_config &&
	gw_start A && gw_start B &&
	gw_answers A a.test 2 &&
	gw_answers B b.test 0 &&
	agent init &&
	agent snapshot A >out &&
	test_grep "^[0-9a-f]\{12\} A: 0 modified, 9 added, 0 removed$" out
'

test_expect_success 'plan shows the changes, the stores and no finding' '
	gw_listing B >before-B &&
	restore plan A --to B >plan &&
	test_grep "^files: 2 added, 2 modified, 1 removed, 1 preserved, 0 left alone$" plan &&
	test_grep "^  add      Rules/routing.txt$" plan &&
	test_grep "^  modify   Gateway.json$" plan &&
	test_grep "^  modify   Templates/notification.txt$" plan &&
	test_grep "^  add      Rules$" plan &&
	test_grep "^  remove   Obsolete.cfg$" plan &&
	test_grep "^  preserve Certificates/gateway.pem" plan &&
	test_grep "^note: snapshot: .Rules/routing.txt. is not JSON" plan &&
	test_grep "^mailbox stores (never touched): 2$" plan &&
	test_grep "^  $(mbx A 1)  3 messages" plan &&
	test_grep "^  $UNKNOWN  0 messages" plan &&
	sed -n "/^findings:/,/^note:/p" plan | grep -v "^note:" >findings &&
	printf "findings:\n  none\n" >expect &&
	test_cmp expect findings &&
	restore plan A --to B --json >plan.json &&
	test "$(json_get plan.json "len(d[\"findings\"])")" = 0 &&
	test "$(json_get plan.json "d[\"counts\"][\"removed\"]")" = 1 &&
	gw_listing B >after-B &&
	test_cmp before-B after-B
'

test_expect_success 'apply onto B: B now has A'"'"'s configuration' '
	cp B/Certificates/gateway.pem cert-B &&
	cp B/Logs/gateway.log log-B &&
	gw_store_listing B >stores-before &&
	! cmp -s A/Certificates/gateway.pem cert-B &&
	restore apply A --to B --yes </dev/null >out 2>err &&
	test_grep "^restored [0-9a-f]\{12\} onto B: 2 added, 2 modified, 1 removed$" out &&
	test_grep "^service down [0-9.]* s (stop" out &&
	gw_config_listing A >config-A &&
	gw_config_listing B >config-B &&
	test_cmp config-A config-B &&
	cmp A/Gateway.json B/Gateway.json &&
	cmp A/Rules/routing.txt B/Rules/routing.txt &&
	test ! -e B/Obsolete.cfg
'

test_expect_success 'the certificate is preserved and the logs left alone' '
	cmp cert-B B/Certificates/gateway.pem &&
	head -c $(wc -c <log-B) B/Logs/gateway.log >log-start &&
	cmp log-B log-start &&
	test_grep "service stopped" B/Logs/gateway.log
'

test_expect_success 'the mailbox stores are untouched' '
	gw_store_listing B >stores-after &&
	test_cmp stores-before stores-after &&
	test $(grep -c "^\./mbx-.* f " stores-after) = 3 &&
	test -d B/$UNKNOWN
'

test_expect_success 'B runs on the new configuration and answers' '
	msgw-sim status B >out &&
	test_grep "^running [0-9]*$" out &&
	gw_answers B a.test 2 &&
	gw_answers A a.test 2 &&
	gw_no_leftovers B
'

test_expect_success 'B'"'"'s branch records the pre-restore and the restored state' '
	test "$(meta_of B kind)" = restored &&
	test "$(meta_of B restored-from)" = "$(branch_tip A)" &&
	test "$(meta_of B~1 kind)" = pre-restore &&
	git -C "$REPO" show A:manifest | grep -v " Certificates/gateway.pem$" >manifest-A &&
	git -C "$REPO" show B:manifest | grep -v " Certificates/gateway.pem$" >manifest-B &&
	test_cmp manifest-A manifest-B &&
	git -C "$REPO" show B:manifest >manifest-B-all &&
	test_grep " $(sha256sum <cert-B | cut -d" " -f1) Certificates/gateway.pem$" manifest-B-all &&
	agent verify >out &&
	agent snapshot B >out &&
	test_grep "unchanged" out
'

test_expect_success 'the mail left in B'"'"'s store can still be read with the password' '
	msgw-sim fetch B $(mbx A 1) $(pw A 1) >fetched &&
	test $(wc -l <fetched) = 3
'

test_expect_success 'a second apply of the same snapshot changes nothing' '
	gw_listing B >before &&
	restore apply A --to B --yes </dev/null >out &&
	test_grep "0 added, 0 modified, 0 removed" out &&
	gw_listing B >after &&
	test_cmp before after &&
	gw_answers B a.test 2
'

test_done
