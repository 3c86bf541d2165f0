#!/bin/bash
# t3300-snapshot-guard: what a restore holds a snapshot and a target to
# besides t3040's hostile entries (issue 13 cases 3, 4, 6 and 7, issue 14's
# preserve rule):
#   - stores found by a mailbox-store pattern (the target's or the
#     snapshot's gateway's) are stores: a snapshot entry inside one is
#     refused, the target's are listed as never touched and raise no false
#     mailbox-removed, and what lies there on the target is left alone;
#   - what an earlier restore left on the target (*.msgw-*) stops plan and
#     apply before the service is stopped, saying to run recover;
#   - set-ID, sticky and group/other-write bits are stripped (apply and
#     extract) and the plan says so (human and --json);
#   - max-total-size refuses before anything is written, and a gateway's
#     own value overrides the top level's;
#   - a file added under a preserved path does not count as target-diverged.
# Every refusal leaves B byte-identical (Logs included: the service was
# never stopped) and nothing appears outside.
test_description='msgw-restore: stores by pattern, leftovers, modes, limits'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

FIXTURES="$SRC_DIR/tests/fixtures/hostile"
OUTSIDE="$TRASH/outside"

# with_b_line CONF LINE: CONF with LINE added to gateway B's section
with_b_line() {
	sed "/^gateway \"B\" {/a\\  $2" "$1"
}

remember() {
	tree_listing B >before &&
	tree_listing outside >outside-before &&
	branch_tip B >tip-before
}

unchanged() {
	tree_listing B >after &&
	test_cmp before after &&
	tree_listing outside >outside-after &&
	test_cmp outside-before outside-after &&
	test "$(branch_tip B)" = "$(cat tip-before)" &&
	test ! -e "$STATE/journal-B" &&
	gw_answers B a.test 2
}

test_expect_success 'setup: B bootstrapped from A and recorded' '
	mkdir outside &&
	echo "keep me" >outside/victim.txt &&
	gw_bootstrap &&
	restore plan A --to B >out &&
	test_grep "^  none$" out
'

test_expect_success 'a file added under a preserved path is not target-diverged' '
	echo "second host certificate" >B/Certificates/extra.pem &&
	restore plan A --to B >out &&
	test_grep "^  preserve *Certificates/extra.pem" out &&
	test_grep "^  none$" out &&
	! grep target-diverged out &&
	echo "a local edit" >B/Local.cfg &&
	test_expect_code 3 restore plan A --to B &&
	test_grep "these changes would be lost: A Local.cfg$" out &&
	! grep "Certificates/extra.pem$" out &&
	rm B/Local.cfg
'

test_expect_success 'a leftover *.msgw-old on the target stops plan and apply before the stop' '
	cp B/Templates/bounce.txt B/Templates/bounce.txt.msgw-old &&
	remember &&
	test_expect_code 1 restore plan A --to B &&
	test_grep "Templates/bounce.txt.msgw-old. on target .B. is left over from an earlier restore; run .msgw-restore recover B. first" err &&
	test_expect_code 1 restore apply A --to B --yes </dev/null &&
	test_grep "run .msgw-restore recover B. first" err &&
	unchanged &&
	rm B/Templates/bounce.txt.msgw-old
'

test_expect_success 'a leftover journal temporary file at the root stops apply too' '
	echo "msgw-journal 1" >B/.msgw-journal.msgw-tmp.4242 &&
	remember &&
	test_expect_code 1 restore apply A --to B --yes </dev/null &&
	test_grep ".msgw-journal.msgw-tmp.4242. on target .B. is left over" err &&
	unchanged &&
	rm B/.msgw-journal.msgw-tmp.4242
'

test_expect_success 'setup: B keeps mail in a store found by pattern (Stores/*)' '
	mkdir -p B/Stores/x1 &&
	echo "the only copy" >B/Stores/x1/msg1.eml &&
	with_b_line "$CONF" "mailbox-store = {\"Stores/*\"}" >conf.tmp &&
	mv conf.tmp "$CONF" &&
	agent snapshot B >/dev/null
'

test_expect_success 'the plan lists the pattern store as never touched, without mailbox-removed' '
	restore plan A --to B >out &&
	test_grep "^mailbox stores (never touched): 1$" out &&
	test_grep "^  Stores/x1  1 messages, 14 bytes$" out &&
	test_grep "^  none$" out &&
	restore plan A --to B --json >plan.json &&
	test "$(json_get plan.json "d[\"mailbox_stores\"][0][\"id\"]")" = Stores/x1
'

test_expect_success 'a snapshot entry inside the target'"'"'s pattern store is refused, by apply, plan and extract' '
	craft store-pattern &&
	remember &&
	test_expect_code 1 msgw-restore -c conf-store-pattern apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "refusing entry .Stores/x1.: it lies in a mailbox store (.Stores/x1., a mailbox-store pattern)" err &&
	test_expect_code 1 msgw-restore -c conf-store-pattern plan A --to B --force=mailbox-removed &&
	test_grep "in a mailbox store" err &&
	unchanged &&
	test "$(cat B/Stores/x1/msg1.eml)" = "the only copy"
'

test_expect_success 'the snapshot'"'"'s gateway'"'"'s store patterns count too (extract and apply)' '
	craft store-pattern &&
	sed "/^gateway \"B\" {/,/^}/{/mailbox-store/d}" conf-store-pattern |
		sed "/^gateway \"A\" {/a\\  mailbox-store = {\"Stores/*\"}" >conf-src &&
	test_expect_code 1 msgw-restore -c conf-src extract A ex-src &&
	test_grep "refusing entry .Stores/x1.: it lies in a mailbox store (.Stores/x1., a mailbox-store pattern)" err &&
	test ! -e ex-src &&
	remember &&
	test_expect_code 1 msgw-restore -c conf-src apply A --to B --yes --force=mailbox-removed,target-diverged </dev/null &&
	test_grep "in a mailbox store" err &&
	unchanged
'

test_expect_success 'what lies in a folder the snapshot'"'"'s gateway calls a store is left alone on the target' '
	sed "/^gateway \"B\" {/,/^}/{/mailbox-store/d}" "$CONF" |
		sed "/^gateway \"A\" {/a\\  mailbox-store = {\"Stores/*\"}" >conf-a-stores &&
	msgw-restore -c conf-a-stores plan A --to B --force=target-diverged >out &&
	test_grep "^  keep *Stores/x1/msg1.eml$" out &&
	! grep "remove *Stores" out &&
	test_grep "^mailbox stores (never touched): 1$" out
'

test_expect_success 'set-ID, sticky and group/other-write bits: stripped by apply and extract, noted in the plan' '
	craft modes &&
	msgw-restore -c conf-modes plan A --to B >out &&
	test_grep "^note: snapshot: 3 entries had set-ID, sticky or group/other-write bits, stripped on restore: .Spool. 1777 -> 0755 .Templates/setid.sh. 6755 -> 0755 .Templates/shared.txt. 0666 -> 0644$" out &&
	msgw-restore -c conf-modes plan A --to B --json >plan.json &&
	json_get plan.json "[n for n in d[\"notes\"] if \"stripped\" in n][0]" >note &&
	test_grep "Templates/setid.sh. 6755 -> 0755" note &&
	msgw-restore -c conf-modes extract A ex-modes >out &&
	test_grep "^note: 3 entries had set-ID, sticky or group/other-write bits, stripped$" out &&
	test "$(stat -c %a ex-modes/Templates/setid.sh)" = 755 &&
	test "$(stat -c %a ex-modes/Templates/shared.txt)" = 644 &&
	test "$(stat -c %a ex-modes/Spool)" = 755 &&
	msgw-restore -c conf-modes apply A --to B --yes </dev/null >out &&
	test "$(stat -c %a B/Templates/setid.sh)" = 755 &&
	test "$(stat -c %a B/Templates/shared.txt)" = 644 &&
	test "$(stat -c %a B/Spool)" = 755 &&
	test "$(cat B/Stores/x1/msg1.eml)" = "the only copy"
'

test_expect_success 'strip-modes = false keeps every bit (top level, or a gateway of its own)' '
	sed "/^state-dir/a\\strip-modes = false" conf-modes >conf-keep &&
	msgw-restore -c conf-keep extract A ex-keep >out &&
	! grep stripped out &&
	test "$(stat -c %a ex-keep/Templates/setid.sh)" = 6755 &&
	test "$(stat -c %a ex-keep/Templates/shared.txt)" = 666 &&
	test "$(stat -c %a ex-keep/Spool)" = 1777 &&
	with_b_line conf-modes "strip-modes = no" >conf-keep-b &&
	msgw-restore -c conf-keep-b plan A --to B --force=target-diverged >out &&
	! grep stripped out &&
	test_grep "^  modify *Templates/setid.sh$" out &&
	sed "/^state-dir/a\\strip-modes = maybe" conf-modes >conf-bad-bool &&
	test_expect_code 2 msgw-restore -c conf-bad-bool plan A --to B &&
	test_grep "bad boolean .maybe. for .strip-modes." err
'

test_expect_success 'max-total-size refuses before anything is written; a gateway'"'"'s own value wins' '
	remember &&
	sed "/^state-dir/a\\max-total-size = \"1K\"" "$CONF" >conf-small &&
	test_expect_code 1 msgw-restore -c conf-small plan A --to B &&
	test_grep "bytes in all, more than max-total-size (1024); raise max-total-size in" err &&
	test_expect_code 1 msgw-restore -c conf-small apply A --to B --yes </dev/null &&
	test_grep "more than max-total-size" err &&
	test_expect_code 1 msgw-restore -c conf-small extract A ex-small &&
	test_grep "more than max-total-size" err &&
	test ! -e ex-small &&
	unchanged &&
	with_b_line conf-small "max-total-size = \"1G\"" >conf-b-big &&
	msgw-restore -c conf-b-big plan A --to B --force=target-diverged >out
'

test_expect_success 'a bad size in the configuration: exit 2 naming file and line' '
	sed "/^state-dir/a\\max-file-size = \"lots\"" "$CONF" >conf-bad &&
	test_expect_code 2 msgw-restore -c conf-bad plan A --to B &&
	test_grep "conf-bad:3: bad size .lots. for .max-file-size." err
'

test_expect_success 'nothing was ever written outside' '
	test "$(ls outside)" = victim.txt &&
	test "$(cat outside/victim.txt)" = "keep me"
'

test_done
