#!/bin/bash
# t3060-refusals: every way apply says no leaves the target byte-identical
# (its whole tree, stores and logs included, by checksum listing), its
# branch without a new snapshot, no journal, and the service running:
# findings (exit 3), no --yes without a terminal (exit 2), a "no" on the
# terminal (exit 1), a lock held (exit 6), an unknown snapshot, an
# unfinished restore (exit 1), bad options (exit 2).  Hostile snapshots are
# t3040's.
test_description='msgw-restore: refusals change nothing'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

# A background apply still running at the end is waited for (killing it
# could leave its start command to start B after the daemons are stopped).
test_when_finished 'i=0; while [ -f bg.pid ] && kill -0 "$(cat bg.pid)" && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done'

# unchanged: B is exactly as recorded in ./before and ./tip-before
unchanged() {
	tree_listing B >after &&
	test_cmp before after &&
	test "$(branch_tip B)" = "$(cat tip-before)" &&
	test ! -e "$STATE/journal-B" &&
	gw_answers B b.test 1
}

remember() {
	tree_listing B >before &&
	branch_tip B >tip-before
}

test_expect_success 'setup: B holds mail in a mailbox A does not have; both recorded' '
	gw_init A 2 1 &&
	gw_init B 1 2 &&
	msgw-sim deliver B $(mbx B 1) 4 &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init &&
	agent snapshot A B >out &&
	remember
'

test_expect_success 'a finding: exit 3, named with its mailbox and message count' '
	test_expect_code 3 restore apply A --to B --yes </dev/null &&
	test_grep "^  mailbox-removed $(mbx B 1) (4 messages)$" out &&
	test_grep "4 messages in mailbox $(mbx B 1) on the target would be orphaned" out &&
	test_grep "instead: let MailStore Server fetch the 4 messages" out &&
	test_grep "refused by the safety analysis (mailbox-removed); nothing was changed" err &&
	test_grep "repeat with --force=mailbox-removed$" err &&
	unchanged
'

test_expect_success 'plan and --dry-run: exit 3 with the finding, 0 when forced; nothing changed' '
	test_expect_code 3 restore plan A --to B &&
	test_grep "^  mailbox-removed $(mbx B 1) (4 messages)$" out &&
	test_expect_code 3 restore apply A --to B --dry-run &&
	restore plan A --to B --force=mailbox-removed >out &&
	test_grep "(4 messages) \[forced\]$" out &&
	restore apply A --to B --dry-run --force=mailbox-removed --json >out.json &&
	test "$(json_get out.json "d[\"findings\"][0][\"forced\"]")" = True &&
	unchanged
'

test_expect_success 'another finding: a local change on B (target-diverged), with what would be lost' '
	echo "local tweak" >B/Local.cfg &&
	remember &&
	test_expect_code 3 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "^  target-diverged$" out &&
	test_grep "changed locally since its last recorded state [0-9a-f]* (0 modified, 1 added, 0 removed); these changes would be lost: A Local.cfg$" out &&
	test_grep "refused by the safety analysis (target-diverged)" err &&
	unchanged &&
	rm B/Local.cfg &&
	remember
'

test_expect_success 'no --yes and no terminal: exit 2' '
	test_expect_code 2 restore apply A --to B --force=mailbox-removed </dev/null &&
	test_grep "apply needs --yes when not run on a terminal" err &&
	unchanged
'

test_expect_success 'on a terminal, answering no: exit 1, not applied' '
	{ echo n | script -qec "msgw-restore -c $CONF apply A --to B --force=mailbox-removed" /dev/null >out 2>&1 && rc=0 || rc=$?; } &&
	test $rc = 1 &&
	test_grep "apply this plan? \[y/N\]" out &&
	test_grep "not applied" out &&
	unchanged
'

test_expect_success 'the target lock held: exit 6 at once' '
	test_when_finished release_lock &&
	hold_lock "$STATE/target-B.lock" &&
	start=$(date +%s) &&
	test_expect_code 6 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test $(( $(date +%s) - start )) -le 2 &&
	test_grep "restore target is locked by pid $(cat "$TRASH/lock-holder.pid") on $(hostname) since [0-9T:-]*Z at the latest (it wrote no owner record) (.$STATE/target-B.lock.)" err &&
	test_expect_code 6 restore recover B &&
	unchanged
'

test_expect_success 'the repository lock held: exit 6' '
	test_when_finished release_lock &&
	hold_lock "$REPO/msgw.lock" &&
	test_expect_code 6 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "repository is locked" err &&
	unchanged
'

test_expect_success 'an unknown snapshot: exit 1 naming it' '
	test_expect_code 1 restore apply nosuch --to B --yes </dev/null &&
	test_grep "nosuch" err &&
	test_expect_code 1 restore apply A~99 --to B --yes </dev/null &&
	test_grep "A~99" err &&
	test_expect_code 1 restore apply deadbeef00 --to B --yes </dev/null &&
	test_grep "deadbeef00" err &&
	test_expect_code 1 restore plan nosuch --to B &&
	unchanged
'

test_expect_success 'bad options and names: exit 2' '
	test_expect_code 2 restore apply A --to B --yes --force=everything </dev/null &&
	test_grep "unknown finding code .everything." err &&
	test_expect_code 2 restore apply A --to B --yes --force=mailbox-removed,bogus </dev/null &&
	test_grep "unknown finding code .bogus." err &&
	test_expect_code 2 restore apply A --to nosuch --yes </dev/null &&
	test_expect_code 2 restore apply A --yes </dev/null &&
	test_expect_code 2 restore apply A --to B --yes --json </dev/null &&
	test_expect_code 2 restore apply A --to B --yes --confirm-within 3parsecs </dev/null &&
	test_expect_code 2 restore plan A --to B --yes &&
	test_expect_code 2 restore rollback --to nosuch --yes </dev/null &&
	unchanged
'

test_expect_success 'rollback without a pre-restore snapshot: exit 1' '
	test_expect_code 1 restore rollback --to B --yes </dev/null &&
	test_grep "gateway .B. has no pre-restore snapshot" err &&
	unchanged
'

test_expect_success 'an unfinished restore: apply and rollback refused until recover' '
	test_expect_code 137 env MSGW_FAULT=after-stage msgw-restore -c "$CONF" apply A --to B --yes --force=mailbox-removed </dev/null &&
	tree_listing B >crashed &&
	test_expect_code 1 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "a restore of .B. is unfinished (staging); run .msgw-restore recover B. first" err &&
	test_expect_code 1 restore rollback --to B --yes </dev/null &&
	test_grep "unfinished" err &&
	tree_listing B >after-refusal &&
	test_cmp crashed after-refusal &&
	restore recover B >out &&
	gw_listing B >now &&
	grep -v "^\./Logs/" before >expect &&
	test_cmp expect now &&
	gw_answers B b.test 1 &&
	gw_no_leftovers B
'

test_expect_success 'a run holding the lock is named with its pid' '
	remember &&
	{ MSGW_SIM_START_DELAY=3 msgw-restore -c "$CONF" apply A --to B --yes --force=mailbox-removed </dev/null >bg.out 2>&1 & } &&
	echo $! >bg.pid &&
	wait_for 5 eval "! flock -n \"$STATE/target-B.lock\" true" &&
	test_expect_code 6 restore apply A --to B --yes --force=mailbox-removed </dev/null &&
	test_grep "is locked by pid $(cat bg.pid) on .* since [0-9-]*T" err &&
	wait "$(cat bg.pid)" && rm bg.pid &&
	test_grep "^restored " bg.out &&
	gw_answers B a.test 2
'

test_done
