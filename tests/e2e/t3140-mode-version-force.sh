#!/bin/bash
# t3140-mode-version-force: the findings that are not about one mailbox:
# proxy-mode (the snapshot or the target runs in POP3 proxy mode, where
# copying configuration does not work the same way) and version-mismatch
# (snapshot and target from different product versions).  And --force:
# only known codes (an unknown one is a usage error, exit 2), only the
# named classes, and what was forced is recorded in the restored
# snapshot's meta.
test_description='safety analysis: proxy-mode, version-mismatch, --force'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

# only_finding CODE: the last plan --json (./out) has exactly this finding
only_finding() {
	findings_of out >codes &&
	echo "$1" >expect &&
	test_cmp expect codes
}

test_expect_success 'setup: B bootstrapped from A; B holds mail' '
	gw_bootstrap &&
	msgw-sim deliver B $(mbx A 1) 2 &&
	agent snapshot B >out &&
	cp A/Gateway.json server.json
'

test_expect_success 'the snapshot in proxy mode: proxy-mode' '
	msgw-sim set A mode proxy &&
	agent snapshot A >out &&
	tree_listing B >before &&
	test_expect_code 3 restore apply A --to B --yes </dev/null &&
	test_grep "^  proxy-mode$" out &&
	test_grep "the snapshot runs in POP3 proxy mode" out &&
	test_grep "refused by the safety analysis (proxy-mode)" err &&
	test_expect_code 3 restore plan A --to B --json &&
	only_finding proxy-mode &&
	test "$(json_get out "d[\"findings\"][0][\"mailbox\"]")" = None &&
	tree_listing B >after &&
	test_cmp before after
'

test_expect_success 'the target in proxy mode: proxy-mode' '
	cp server.json A/Gateway.json &&
	agent snapshot A >out &&
	msgw-sim set B mode proxy &&
	agent snapshot B >out &&
	test_expect_code 3 restore plan A --to B &&
	test_grep "the target runs in POP3 proxy mode" out &&
	msgw-sim set A mode proxy &&
	agent snapshot A >out &&
	test_expect_code 3 restore plan A --to B &&
	test_grep "the snapshot and the target run in POP3 proxy mode" out &&
	restore apply A --to B --yes --force=proxy-mode </dev/null >out &&
	test_grep "^restored " out &&
	cmp A/Gateway.json B/Gateway.json &&
	test "$(meta_of B forced)" = proxy-mode
'

test_expect_success 'back to server mode on both: no finding' '
	cp server.json A/Gateway.json &&
	agent snapshot A >out &&
	restore apply A --to B --yes --force=proxy-mode </dev/null >out &&
	restore plan A --to B --json >out &&
	test -z "$(findings_of out)" &&
	gw_answers B a.test 2
'

test_expect_success 'another product version: version-mismatch' '
	msgw-sim set A version 24.0.1 &&
	agent snapshot A >out &&
	tree_listing B >before &&
	test_expect_code 3 restore apply A --to B --yes </dev/null &&
	test_grep "^  version-mismatch$" out &&
	test_grep "the snapshot was taken from MailStore Gateway 24.0.1, the target runs 23.1.0" out &&
	test_grep "instead: upgrade the older gateway first" out &&
	test_expect_code 3 restore plan A --to B --json &&
	only_finding version-mismatch &&
	tree_listing B >after &&
	test_cmp before after
'

test_expect_success 'an unknown code for --force: exit 2, nothing changed' '
	tree_listing B >before &&
	test_expect_code 2 restore apply A --to B --yes --force=version </dev/null &&
	test_grep "unknown finding code .version. for --force" err &&
	test_expect_code 3 restore apply A --to B --yes --force= </dev/null &&
	test_grep "refused by the safety analysis (version-mismatch)" err &&
	test_expect_code 2 restore plan A --to B --force=VERSION-MISMATCH &&
	test_expect_code 2 restore apply A --to B --yes "--force=version-mismatch, key-changed" </dev/null &&
	tree_listing B >after &&
	test_cmp before after
'

test_expect_success 'forcing the named class goes through and is recorded' '
	test_expect_code 3 restore apply A --to B --yes --force=proxy-mode,key-changed </dev/null &&
	restore apply A --to B --yes --force=version-mismatch </dev/null >out &&
	test_grep "^restored " out &&
	cmp A/Gateway.json B/Gateway.json &&
	git -C "$REPO" show B:meta >meta &&
	test_grep "^kind: restored$" meta &&
	test_grep "^forced: version-mismatch$" meta &&
	test_grep "^restored-from: $(branch_tip A)$" meta &&
	gw_answers B a.test 2
'

test_expect_success 'several forced codes are all recorded' '
	cp server.json A/Gateway.json &&
	msgw-sim set A mode proxy &&
	agent snapshot A >out &&
	test_expect_code 3 restore plan A --to B --json &&
	findings_of out | sort >codes &&
	printf "proxy-mode\nversion-mismatch\n" >expect &&
	test_cmp expect codes &&
	restore apply A --to B --yes --force=version-mismatch,proxy-mode </dev/null >out &&
	git -C "$REPO" show B:meta >meta &&
	test_grep "^forced: proxy-mode,version-mismatch$" meta
'

test_done
