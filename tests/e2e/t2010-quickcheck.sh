#!/bin/bash
# t2010-quickcheck: the no-change check of msgw-agent's front.  A snapshot
# of an unchanged local gateway is answered from the record of the last run
# and the branch tip alone, without the full program (the front copied
# alone into a directory still answers it) and with the same output and
# status record as the full program; every doubt sends the run to the full
# program: a same-size same-mtime rewrite, a file changed moments ago, a
# branch moved behind its back, a damaged record, hooks, --json, options it
# does not know, MSGW_NO_QUICKCHECK.  A packed ref is read like a loose one.
test_description='msgw-agent no-change check (quickcheck)'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

commits() {
	git -C repo.git rev-list --count msgw1
}

# Files must be two seconds old before a record vouches for them.
age() {
	sleep 2.1
}

# front ARGS...: the front alone, no full program beside it or installed
front() {
	"$TRASH/front/msgw-agent" "$@"
}

test_expect_success 'setup: a gateway, its first snapshot and a record' '
	msgw-sim init gw1 --domain example.test --mailboxes 2 --seed t2010 >ids &&
	cat >msgw.conf <<-EOF &&
	repository = "repo.git"
	state-dir  = "state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	  exclude  = {"Logs/**"}
	}
	EOF
	msgw-agent -c msgw.conf init >/dev/null &&
	mkdir front && cp "$MSGW_BUILD_DIR/msgw-agent" front/ &&
	test ! -e /usr/local/libexec/msgw-backup/msgw-agent-full &&
	age &&
	msgw-agent -c msgw.conf snapshot >out &&
	test "$(commits)" = 1 &&
	test "$(stat -c %a state/quickcheck-msgw1)" = 600 &&
	head -1 state/quickcheck-msgw1 >head &&
	echo "msgw-quickcheck 1" >expect &&
	test_cmp expect head
'

test_expect_success 'an unchanged gateway is answered without the full program' '
	tip=$(git -C repo.git rev-parse msgw1) &&
	rm -f state/status-msgw1 &&
	front -vv -c msgw.conf snapshot >out 2>err &&
	echo "msgw1: unchanged (${tip:0:12})" >expect &&
	test_cmp expect out &&
	test_grep "quick check of .msgw1.: same tip and stat data" err &&
	test "$(commits)" = 1 &&
	test_grep "^last-result: unchanged$" state/status-msgw1 &&
	test_grep "^last-snapshot: $tip$" state/status-msgw1 &&
	test_grep "^last-success: 20" state/status-msgw1 &&
	test_grep "^last-error: $" state/status-msgw1 &&
	test "$(stat -c %a state/status-msgw1)" = 600 &&
	front -c msgw.conf snapshot msgw1 --kind scheduled >out &&
	test_cmp expect out
'

test_expect_success 'the full program gives the same answer and output' '
	MSGW_NO_QUICKCHECK=1 msgw-agent -vv -c msgw.conf snapshot >full 2>err &&
	test_cmp expect full &&
	! grep "quick check" err &&
	test "$(commits)" = 1
'

test_expect_success 'mail arriving in a mailbox store changes nothing' '
	mbx=$(find gw1 -type d -name "mbx-*" | head -1) &&
	echo mail >"$mbx/new-message.eml" &&
	front -c msgw.conf snapshot >out &&
	test_cmp expect out
'

test_expect_success 'a rewrite with the same size and mtime goes to the full program' '
	f=gw1/Templates/bounce.txt &&
	test -s $f &&
	mtime=$(stat -c %y $f) &&
	size=$(stat -c %s $f) &&
	if test "$(head -c1 $f)" = X; then c=Y; else c=X; fi &&
	printf $c | dd of=$f bs=1 conv=notrunc 2>/dev/null &&
	touch -d "$mtime" $f &&
	test "$(stat -c %s $f)" = "$size" &&
	test "$(stat -c %y $f)" = "$mtime" &&
	test_expect_code 1 front -vv -c msgw.conf snapshot >out 2>err &&
	test_grep "the tip or the files differ from the record" err &&
	test_grep "cannot run .*msgw-agent-full" err &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed" out &&
	test "$(commits)" = 2
'

test_expect_success 'a file changed moments ago leaves no record' '
	test ! -e state/quickcheck-msgw1 &&
	age &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "unchanged" out &&
	test -e state/quickcheck-msgw1 &&
	front -c msgw.conf snapshot >out &&
	test_grep "unchanged" out
'

test_expect_success 'a branch moved behind the record goes to the full program' '
	first=$(git -C repo.git rev-parse msgw1~1) &&
	git -C repo.git update-ref refs/heads/msgw1 $first &&
	test_expect_code 1 front -vv -c msgw.conf snapshot 2>err &&
	test_grep "the tip or the files differ from the record" err &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "msgw1: 1 modified" out &&
	git -C repo.git fsck --strict
'

test_expect_success 'a packed branch is read from packed-refs' '
	tip=$(git -C repo.git rev-parse msgw1) &&
	git -C repo.git pack-refs --all &&
	test ! -e repo.git/refs/heads/msgw1 &&
	front -c msgw.conf snapshot >out &&
	echo "msgw1: unchanged (${tip:0:12})" >expect &&
	test_cmp expect out
'

test_expect_success 'a damaged record goes to the full program, which mends it' '
	printf "msgw-quickcheck 1\nlocation x\n" >state/quickcheck-msgw1 &&
	test_expect_code 1 front -c msgw.conf snapshot 2>err &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_cmp expect out &&
	front -c msgw.conf snapshot >out &&
	test_cmp expect out
'

test_expect_success 'options the front does not handle go to the full program' '
	for args in "snapshot --json" "snapshot --tag t1" "snapshot -m x" "snapshot --help" \
		"--repo repo.git snapshot" "list" "snapshot nosuch"; do
		test_expect_code 1 front -c msgw.conf $args 2>err &&
		test_grep "cannot run" err || return 1
	done &&
	MSGW_NO_QUICKCHECK=1 test_expect_code 1 front -c msgw.conf snapshot 2>err &&
	test_grep "cannot run" err
'

test_expect_success 'snapshot hooks always run: the full program answers' '
	cp msgw.conf hooks.conf &&
	echo "hook-post-snapshot = \"echo \$MSGW_RESULT >>$TRASH/post.log\"" >>hooks.conf &&
	test_expect_code 1 front -vv -c hooks.conf snapshot 2>err &&
	test_grep "a snapshot hook is configured" err &&
	msgw-agent -c hooks.conf snapshot >out &&
	test_cmp expect out &&
	echo unchanged >expect.log &&
	test_cmp expect.log post.log
'

test_expect_success 'a held lock is reported by the full program (exit 6)' '
	flock repo.git/msgw.lock sleep 3 &
	sleep 0.5 &&
	test_expect_code 6 msgw-agent -c msgw.conf snapshot 2>err &&
	test_grep "lock" err &&
	wait
'

test_done
