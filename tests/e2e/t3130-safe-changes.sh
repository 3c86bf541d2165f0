#!/bin/bash
# t3130-safe-changes: everyday changes on gateway 1 (A) give no finding when
# restored onto gateway 2 (B), which holds mail in every mailbox: a new
# mailbox, a changed description, a changed status (suspended, active
# again), a changed port, messages counted.  Each is applied, and B's mail
# stays readable with the passwords: the analysis was right to let them by.
test_description='safety analysis: safe changes give no finding'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

# no_finding WHAT: A snapshotted; the plan onto B has no finding (also as
# JSON) and applies; B answers as A's configuration says
no_finding() {
	agent snapshot A >out &&
	test_grep "A: 1 modified" out &&
	restore plan A --to B >plan &&
	sed -n "/^findings:/,/^note:/p" plan | grep -v "^note:" >found &&
	printf "findings:\n  none\n" >expect &&
	test_cmp expect found &&
	restore plan A --to B --json >plan.json &&
	test -z "$(findings_of plan.json)" &&
	restore apply A --to B --yes </dev/null >out &&
	test_grep "^restored [0-9a-f]* onto B: 0 added, 1 modified, 0 removed$" out &&
	cmp A/Gateway.json B/Gateway.json
}

# mail_readable: every message B holds can still be decrypted
mail_readable() {
	n=1
	while read -r id pw; do
		[ -d B/$id ] || continue
		cp -a B/$id saved-$n &&
		msgw-sim fetch B $id $pw >fetched-$n &&
		test $(wc -l <fetched-$n) = $(ls saved-$n | wc -l) &&
		cp -a saved-$n/. B/$id/ &&
		rm -rf saved-$n || return 1
		n=$((n + 1))
	done <ids-A
}

test_expect_success 'setup: B bootstrapped from A, mail in both mailboxes, recorded' '
	gw_bootstrap &&
	msgw-sim deliver B $(mbx A 1) 2 &&
	msgw-sim deliver B $(mbx A 2) 3 &&
	agent snapshot B >out &&
	mail_readable
'

test_expect_success 'a new mailbox' '
	msgw-sim add-mailbox A --description "Added on A" >>ids-A &&
	no_finding &&
	gw_answers B a.test 3 &&
	msgw-sim deliver B $(mbx A 3) 1 &&
	agent snapshot B >out &&
	mail_readable
'

test_expect_success 'a changed description' '
	msgw-sim set A mailbox.$(mbx A 1).description "Journal of the sales team" &&
	no_finding &&
	mail_readable
'

test_expect_success 'a changed status: suspended, then active again' '
	msgw-sim suspend A $(mbx A 2) &&
	no_finding &&
	msgw-sim list B >list &&
	test_grep "^$(mbx A 2) Suspended 3 " list &&
	mail_readable &&
	msgw-sim activate A $(mbx A 2) &&
	no_finding &&
	mail_readable
'

test_expect_success 'a changed port' '
	msgw-sim set A ports.smtp 2525 &&
	no_finding &&
	test_grep "\"smtp\": 2525" B/Gateway.json &&
	gw_answers B a.test 3
'

test_expect_success 'messages counted on A (the message counter moves)' '
	msgw-sim deliver A $(mbx A 1) 2 &&
	msgw-sim fetch A $(mbx A 1) $(pw A 1) >/dev/null &&
	no_finding &&
	mail_readable
'

test_expect_success 'several changes at once' '
	msgw-sim set A mailbox.$(mbx A 2).description "Another text" &&
	msgw-sim set A ports.pop3 1110 &&
	msgw-sim add-mailbox A --description "Fourth" >>ids-A &&
	no_finding &&
	gw_answers B a.test 4 &&
	mail_readable
'

test_done
