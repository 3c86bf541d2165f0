#!/bin/bash
# t3120-mailbox-removed: a mailbox deleted on gateway 1 (A) while gateway 2
# (B) still holds its mail.  Restoring A's snapshot onto B would orphan
# that mail: refused with mailbox-removed, naming the mailbox and its
# message count.  Once B's messages are fetched (as MailStore Server
# would), the same restore passes with no finding, and B's store folder is
# still left alone.
test_description='safety analysis: mailbox-removed'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

test_expect_success 'setup: B bootstrapped from A, holding mail in mailbox 2' '
	gw_bootstrap &&
	msgw-sim deliver B $(mbx A 2) 2 &&
	agent snapshot B >out
'

test_expect_success 'on A: mailbox 2 suspended and deleted' '
	Y=$(mbx A 2) &&
	msgw-sim suspend A $Y &&
	msgw-sim delete A $Y &&
	! grep -q $Y A/Gateway.json &&
	agent snapshot A >out
'

test_expect_success 'restoring A onto B: refused with mailbox-removed; B unchanged' '
	Y=$(mbx A 2) &&
	tree_listing B >before &&
	test_expect_code 3 restore apply A --to B --yes </dev/null &&
	test_grep "^  mailbox-removed $Y (2 messages)$" out &&
	test_grep "2 messages in mailbox $Y on the target would be orphaned: the snapshot.s configuration has no such mailbox" out &&
	test_grep "instead: let MailStore Server fetch the 2 messages in that mailbox first" out &&
	sed -n "/^findings:/,\$p" out | grep "^  [^ ]" >found &&
	test $(wc -l <found) = 1 &&
	test_expect_code 3 restore plan A --to B --json &&
	findings_of out >codes &&
	echo mailbox-removed >expect &&
	test_cmp expect codes &&
	tree_listing B >after &&
	test_cmp before after
'

test_expect_success 'after B'"'"'s messages are fetched, the same restore passes with no finding' '
	Y=$(mbx A 2) &&
	msgw-sim fetch B $Y $(pw A 2) >fetched &&
	test $(wc -l <fetched) = 2 &&
	agent snapshot B >out &&
	restore plan A --to B >out &&
	sed -n "/^findings:/,\$p" out >found &&
	printf "findings:\n  none\n" >expect &&
	test_cmp expect found &&
	restore apply A --to B --yes </dev/null >out &&
	cmp A/Gateway.json B/Gateway.json &&
	test -d B/$Y &&
	git -C "$REPO" show B:meta >meta &&
	! grep -q "^forced:" meta &&
	gw_answers B a.test 1
'

test_expect_success 'an empty store of an unknown mailbox gives no finding either' '
	mkdir B/mbx-00000000000000000000000000000abc &&
	agent snapshot B >out &&
	restore plan A --to B --json >plan.json &&
	test -z "$(findings_of plan.json)"
'

test_done
