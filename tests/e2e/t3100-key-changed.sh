#!/bin/bash
# t3100-key-changed: the field's first loss case.  On gateway 1 (A) an
# admin empties and suspends a mailbox, resets its password and activates
# it again; gateway 2 (B) still holds mail for that mailbox, sealed to the
# old key.  Copying A's configuration onto B would make that mail
# undecryptable for good, so the restore is refused with key-changed,
# naming the mailbox and its message count, and B stays as it was.  Forced
# with --force=key-changed it goes through, and the simulator (real
# encryption) then really cannot decrypt B's mail: the finding was right.
test_description='safety analysis: key-changed (password reset on the source)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

# Delivering mail changes a mailbox's message counter in Gateway.json; the
# agent's scheduled snapshots record that, so B's recorded state is its live
# state again before the restore (see t3110 for a B changed by hand).
test_expect_success 'setup: B bootstrapped from A, then holds mail in mailbox 1' '
	gw_bootstrap &&
	X=$(mbx A 1) &&
	msgw-sim deliver B $X 3 &&
	msgw-sim fetch B $X $(pw A 1) >/dev/null &&
	msgw-sim deliver B $X 3 &&
	test $(ls B/$X | wc -l) = 3 &&
	agent snapshot B >out &&
	test_grep "B: 1 modified, 0 added, 0 removed" out
'

test_expect_success 'on A: empty and suspend mailbox 1, reset its password, activate it' '
	X=$(mbx A 1) &&
	msgw-sim deliver A $X 1 &&
	msgw-sim fetch A $X $(pw A 1) >/dev/null &&
	msgw-sim suspend A $X &&
	msgw-sim reset-password A $X >new-pw &&
	test "$(cut -d" " -f1 new-pw)" = $X &&
	msgw-sim activate A $X &&
	msgw-sim deliver A $X 1 &&
	msgw-sim fetch A $X $(cut -d" " -f2 new-pw) >fetched &&
	test $(wc -l <fetched) = 1 &&
	agent snapshot A >out &&
	test_grep "A: 1 modified, 0 added, 0 removed" out
'

test_expect_success 'plan: refused with key-changed, naming the mailbox and its 3 messages' '
	X=$(mbx A 1) &&
	test_expect_code 3 restore plan A --to B &&
	test_grep "^  key-changed $X (3 messages)$" out &&
	test_grep "the key material of mailbox $X differs between the snapshot and the target, which holds 3 messages for it: they could never be decrypted again" out &&
	test_grep "instead: let MailStore Server fetch the 3 messages first" out &&
	sed -n "/^findings:/,\$p" out | grep "^  [^ ]" >found &&
	test $(wc -l <found) = 1
'

test_expect_success 'plan --json carries the finding' '
	X=$(mbx A 1) &&
	test_expect_code 3 restore plan A --to B --json &&
	mv out plan.json &&
	python3 -m json.tool plan.json >/dev/null &&
	findings_of plan.json >codes &&
	echo key-changed >expect &&
	test_cmp expect codes &&
	test "$(json_get plan.json "d[\"findings\"][0][\"mailbox\"]")" = $X &&
	test "$(json_get plan.json "d[\"findings\"][0][\"messages\"]")" = 3 &&
	test "$(json_get plan.json "d[\"findings\"][0][\"bytes\"] > 0")" = True &&
	test "$(json_get plan.json "d[\"findings\"][0][\"forced\"]")" = False &&
	test "$(json_get plan.json "\"never be decrypted\" in d[\"findings\"][0][\"what\"]")" = True &&
	test "$(json_get plan.json "\"fetch the 3 messages\" in d[\"findings\"][0][\"instead\"]")" = True &&
	test "$(json_get plan.json "[s[\"messages\"] for s in d[\"mailbox_stores\"] if s[\"id\"] == \"$X\"]")" = "[3]"
'

test_expect_success 'apply: refused with exit 3; B unchanged byte for byte' '
	tree_listing B >before &&
	tip=$(branch_tip B) &&
	test_expect_code 3 restore apply A --to B --yes </dev/null &&
	test_grep "refused by the safety analysis (key-changed); nothing was changed" err &&
	test_grep "^  key-changed $(mbx A 1) (3 messages)$" out &&
	tree_listing B >after &&
	test_cmp before after &&
	test "$(branch_tip B)" = "$tip" &&
	gw_answers B a.test 2
'

test_expect_success 'forcing another code does not help' '
	tree_listing B >before &&
	test_expect_code 3 restore apply A --to B --yes --force=mailbox-removed,target-diverged </dev/null &&
	test_grep "refused by the safety analysis (key-changed)" err &&
	tree_listing B >after &&
	test_cmp before after
'

test_expect_success 'B'"'"'s mail can still be read before the forced restore' '
	X=$(mbx A 1) &&
	cp -a B/$X saved-store &&
	msgw-sim fetch B $X $(pw A 1) >fetched &&
	test $(wc -l <fetched) = 3 &&
	cp -a saved-store/. B/$X/ &&
	test $(ls B/$X | wc -l) = 3
'

test_expect_success 'with --force=key-changed it goes through and is recorded' '
	restore apply A --to B --yes --force=key-changed </dev/null >out &&
	test_grep "^restored [0-9a-f]* onto B: 0 added, 1 modified, 0 removed$" out &&
	cmp A/Gateway.json B/Gateway.json &&
	gw_answers B a.test 2 &&
	git -C "$REPO" show B:meta >meta &&
	test_grep "^kind: restored$" meta &&
	test_grep "^forced: key-changed$" meta
'

test_expect_success 'and the finding was right: B'"'"'s 3 messages cannot be decrypted any more' '
	X=$(mbx A 1) &&
	test_expect_code 1 msgw-sim fetch B $X $(cut -d" " -f2 new-pw) &&
	test $(grep -c "cannot decrypt message .*: key material does not match$" err) = 3 &&
	test ! -s out &&
	test_expect_code 1 msgw-sim fetch B $X $(pw A 1) &&
	test_grep "wrong password" err &&
	test $(ls B/$X | wc -l) = 3
'

test_done
