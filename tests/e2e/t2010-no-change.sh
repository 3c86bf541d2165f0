#!/bin/bash
# t2010-no-change: the no-change check of a snapshot.  One definition
# decides "unchanged": the manifest of what the walk finds equals the branch
# tip's.  The stat cache (state/statcache-GATEWAY) only spares reading files
# whose stat data it vouches for; it never decides on its own: a rewrite
# within the same second with the same size and mtime, a file changed
# moments ago, a branch moved behind its back, a damaged cache, all are
# still seen.  Output and status records are those of any snapshot.
test_description='msgw-agent no-change check (stat cache and manifest)'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

commits() {
	git -C repo.git rev-list --count msgw1
}

# Files must be two seconds old before the stat cache vouches for them.
age() {
	sleep 2.1
}

test_expect_success 'setup: a gateway, its first snapshot and a stat cache' '
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
	test ! -e "$MSGW_BUILD_DIR/msgw-agent-full" &&
	age &&
	msgw-agent -c msgw.conf snapshot >out &&
	test "$(commits)" = 1 &&
	test "$(stat -c %a state/statcache-msgw1)" = 600 &&
	head -1 state/statcache-msgw1 >head &&
	echo "msgw-statcache 1" >expect &&
	test_cmp expect head &&
	test ! -e state/quickcheck-msgw1
'

test_expect_success 'an unchanged gateway: same output and status record' '
	tip=$(git -C repo.git rev-parse msgw1) &&
	rm -f state/status-msgw1 &&
	msgw-agent -c msgw.conf snapshot >out &&
	echo "msgw1: unchanged (${tip:0:12})" >expect &&
	test_cmp expect out &&
	test "$(commits)" = 1 &&
	test_grep "^last-result: unchanged$" state/status-msgw1 &&
	test_grep "^last-snapshot: $tip$" state/status-msgw1 &&
	test_grep "^last-success: 20" state/status-msgw1 &&
	test_grep "^last-error: $" state/status-msgw1 &&
	test "$(stat -c %a state/status-msgw1)" = 600 &&
	msgw-agent -c msgw.conf snapshot msgw1 --kind scheduled >out &&
	test_cmp expect out
'

test_expect_success 'the cache spares reading, and never decides on its own' '
	# a wrong hash planted for a file whose stat data the cache holds is
	# taken as it is (the file is not read while hashing): the manifest
	# then differs from the tip, the archive finds the real content, and
	# the snapshot reads everything again, without the cache: unchanged
	cp state/statcache-msgw1 statcache.good &&
	f=Templates/bounce.txt &&
	grep -q " $f\$" state/statcache-msgw1 &&
	zero=0000000000000000000000000000000000000000000000000000000000000000 &&
	awk -v f="$f" -v z=$zero "\$8 == f { \$7 = z } { print }" \
		statcache.good >state/statcache-msgw1 &&
	! cmp -s statcache.good state/statcache-msgw1 &&
	msgw-agent -v -c msgw.conf snapshot >out 2>err &&
	test_cmp expect out &&
	test_grep "$f. changed while it was archived; reading again" err &&
	test "$(commits)" = 1
'

test_expect_success 'mail arriving in a mailbox store changes nothing' '
	mbx=$(find gw1 -type d -name "mbx-*" | head -1) &&
	echo mail >"$mbx/new-message.eml" &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_cmp expect out
'

test_expect_success 'a rewrite with the same size and mtime is seen (ctime)' '
	f=gw1/Templates/bounce.txt &&
	test -s $f &&
	mtime=$(stat -c %y $f) &&
	size=$(stat -c %s $f) &&
	if test "$(head -c1 $f)" = X; then c=Y; else c=X; fi &&
	printf $c | dd of=$f bs=1 conv=notrunc 2>/dev/null &&
	touch -d "$mtime" $f &&
	test "$(stat -c %s $f)" = "$size" &&
	test "$(stat -c %y $f)" = "$mtime" &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed" out &&
	test "$(commits)" = 2
'

test_expect_success 'a file rewritten within the same second as its last snapshot is seen' '
	# two contents of the same size with the same mtime, snapshotted one
	# right after the other (ctime may well be equal too, at the
	# file system tick): the cache must not have vouched for the first
	f=gw1/Templates/fresh.txt &&
	now=$(date +%s) &&
	echo "content A" >$f &&
	touch -d "@$now" $f &&
	msgw-agent -c msgw.conf snapshot >out1 &&
	test_grep "msgw1: 0 modified, 1 added" out1 &&
	echo "content B" >$f &&
	touch -d "@$now" $f &&
	msgw-agent -c msgw.conf snapshot >out2 &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed" out2 &&
	git -C repo.git show msgw1:manifest >m &&
	sha=$(sha256sum <$f | cut -d" " -f1) &&
	test_grep "$sha Templates/fresh.txt" m
'

test_expect_success 'a file changed moments ago is hashed again until it is old' '
	age &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "unchanged" out &&
	grep -q " Templates/fresh.txt\$" state/statcache-msgw1
'

test_expect_success 'a branch moved behind its back: compared with the tip' '
	first=$(git -C repo.git rev-parse msgw1~1) &&
	git -C repo.git update-ref refs/heads/msgw1 $first &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "msgw1: 1 modified" out &&
	git -C repo.git fsck --strict
'

test_expect_success 'a packed branch: unchanged' '
	tip=$(git -C repo.git rev-parse msgw1) &&
	git -C repo.git pack-refs --all &&
	test ! -e repo.git/refs/heads/msgw1 &&
	msgw-agent -c msgw.conf snapshot >out &&
	echo "msgw1: unchanged (${tip:0:12})" >expect &&
	test_cmp expect out
'

test_expect_success 'a damaged stat cache is ignored and rebuilt' '
	printf "msgw-statcache 1\nnot a line\n" >state/statcache-msgw1 &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_cmp expect out &&
	test_grep " Templates/bounce.txt\$" state/statcache-msgw1 &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_cmp expect out
'

test_expect_success 'snapshot hooks run on an unchanged snapshot too' '
	cp msgw.conf hooks.conf &&
	echo "hook-post-snapshot = \"echo \$MSGW_RESULT >>$TRASH/post.log\"" >>hooks.conf &&
	msgw-agent -c hooks.conf snapshot >out &&
	test_cmp expect out &&
	echo unchanged >expect.log &&
	test_cmp expect.log post.log
'

test_expect_success 'a held lock is reported (exit 6)' '
	flock repo.git/msgw.lock sleep 3 &
	sleep 0.5 &&
	test_expect_code 6 msgw-agent -c msgw.conf snapshot 2>err &&
	test_grep "lock" err &&
	wait
'

# libarchive is opened on first use, not linked: a no-change snapshot never
# loads it; one that must build an archive and cannot load it fails in one
# line naming it, and writes nothing.
test_expect_success 'libarchive is loaded only to build an archive; failing that, one line' '
	! ldd "$MSGW_BUILD_DIR/msgw-agent" | grep -q libarchive &&
	mkdir -p badlib &&
	echo "not a library" >badlib/libarchive.so.13 &&
	tip=$(git -C repo.git rev-parse msgw1) &&
	LD_LIBRARY_PATH=$TRASH/badlib msgw-agent -c msgw.conf snapshot >out &&
	echo "msgw1: unchanged (${tip:0:12})" >expect &&
	test_cmp expect out &&
	echo "changed" >>gw1/Templates/notification.txt &&
	LD_LIBRARY_PATH=$TRASH/badlib test_expect_code 1 msgw-agent -c msgw.conf snapshot >out 2>err &&
	test_grep "cannot load libarchive.so.13: .*badlib/libarchive.so.13" err &&
	test "$(wc -l <err)" = 1 &&
	test "$(git -C repo.git rev-parse msgw1)" = "$tip" &&
	git -C repo.git fsck --strict &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "^[0-9a-f]\{12\} msgw1: 1 modified" out
'

test_done
