#!/bin/bash
# t3110-diverged: the second loss case.  Gateway 2 (B) was bootstrapped
# from gateway 1 (A) and its state recorded; then someone resets a
# mailbox's password on B itself, against the rule that only A is edited,
# and B receives mail sealed to the new key.  Restoring A's snapshot onto
# B would put the old key back: refused with key-changed (B's messages
# would become undecryptable) and target-diverged (B's local change would
# vanish).  Each code must be forced by name; forcing both goes through,
# and the simulator shows the mail is then really lost.
test_description='safety analysis: key-changed and target-diverged (reset on the target)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

test_expect_success 'setup: B bootstrapped from A and recorded' '
	gw_bootstrap &&
	test "$(meta_of B kind)" = restored &&
	restore plan A --to B >out &&
	test_grep "^  none$" out
'

test_expect_success 'mail arriving on B (counters only) is not a local edit' '
	Y=$(mbx A 2) &&
	msgw-sim deliver B $Y 1 &&
	! cmp -s A/Gateway.json B/Gateway.json &&
	restore plan A --to B >out &&
	test_grep "^  none$" out &&
	test_grep "changed on the target only in runtime fields" out &&
	msgw-sim fetch B $Y "$(pw A 2)" >/dev/null
'

test_expect_success 'on B: reset mailbox 1'"'"'s password, then B receives mail' '
	X=$(mbx A 1) &&
	msgw-sim suspend B $X &&
	msgw-sim reset-password B $X >new-pw &&
	msgw-sim activate B $X &&
	msgw-sim deliver B $X 2 &&
	test $(ls B/$X | wc -l) = 2 &&
	! cmp -s A/Gateway.json B/Gateway.json
'

test_expect_success 'restoring A onto B: refused with key-changed and target-diverged' '
	X=$(mbx A 1) &&
	tree_listing B >before &&
	tip=$(branch_tip B) &&
	test_expect_code 3 restore apply A --to B --yes </dev/null &&
	test_grep "^  key-changed $X (2 messages)$" out &&
	test_grep "^  target-diverged$" out &&
	test_grep "changed locally since its last recorded state ${tip%${tip#????????????}} (1 modified, 0 added, 0 removed); these changes would be lost: M Gateway.json$" out &&
	test_grep "refused by the safety analysis (target-diverged,key-changed)" err &&
	tree_listing B >after &&
	test_cmp before after &&
	test "$(branch_tip B)" = "$tip"
'

test_expect_success 'plan --json carries both findings' '
	test_expect_code 3 restore plan A --to B --json &&
	mv out plan.json &&
	findings_of plan.json | sort >codes &&
	printf "key-changed\ntarget-diverged\n" >expect &&
	test_cmp expect codes &&
	test "$(json_get plan.json "[f[\"messages\"] for f in d[\"findings\"] if f[\"code\"] == \"key-changed\"]")" = "[2]"
'

test_expect_success 'each code must be forced by name' '
	tree_listing B >before &&
	test_expect_code 3 restore apply A --to B --yes --force=key-changed </dev/null &&
	test_grep "refused by the safety analysis (target-diverged)" err &&
	test_expect_code 3 restore apply A --to B --yes --force=target-diverged </dev/null &&
	test_grep "refused by the safety analysis (key-changed)" err &&
	test_expect_code 2 restore apply A --to B --yes --force=key-changed,target-diverged,all </dev/null &&
	test_grep "unknown finding code .all." err &&
	tree_listing B >after &&
	test_cmp before after
'

test_expect_success 'recording B'"'"'s local change leaves key-changed alone' '
	cp -a "$REPO" repo-copy.git &&
	sed "s|^repository = .*|repository = \"$TRASH/repo-copy.git\"|" "$CONF" >copy.conf &&
	msgw-agent -c copy.conf snapshot B >out &&
	test_expect_code 3 msgw-restore -c copy.conf plan A --to B --json &&
	findings_of out >codes &&
	echo key-changed >expect &&
	test_cmp expect codes
'

test_expect_success 'forcing both goes through, and B'"'"'s 2 messages are lost indeed' '
	X=$(mbx A 1) &&
	restore apply A --to B --yes --force=target-diverged,key-changed </dev/null >out &&
	test_grep "^restored " out &&
	cmp A/Gateway.json B/Gateway.json &&
	git -C "$REPO" show B:meta >meta &&
	test_grep "^forced: target-diverged,key-changed$" meta &&
	test_expect_code 1 msgw-sim fetch B $X $(pw A 1) &&
	test $(grep -c "key material does not match" err) = 2 &&
	test_expect_code 1 msgw-sim fetch B $X $(cut -d" " -f2 new-pw) &&
	test_grep "wrong password" err &&
	gw_answers B a.test 2
'

test_done
