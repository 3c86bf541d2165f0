#!/bin/bash
# t2600-git-repo: the repository as stock git leaves it, and as a killed run
# leaves it.  Every object and ref is read by libgit2, so:
#
# - after "git gc --aggressive" and "git pack-refs --all" (everything packed,
#   refs in packed-refs only), snapshots (changed and unchanged), verify,
#   extract and apply all work;
# - a damaged loose object whose packed copy is sound reads fine;
# - prune keeps what it must: an object newer than its start (a writer
#   beside it) and a .keep pack survive, and git fsck --strict is clean;
# - stale git lock files (refs/heads/GW.lock, refs/tags/NAME.lock,
#   packed-refs.lock) and temporary objects (tmp_obj_*, tmp_pack_*) a
#   killed run left are cleared by the next run under the repository lock,
#   each with a warning naming it, and that run succeeds;
# - a prune killed between moving the tags and moving the branch (fault
#   point prune-before-branch) is finished by the next run: every tagged
#   snapshot stays on its branch.
test_description='repository: stock git gc, damaged loose objects, prune, stale locks'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

# fsck_clean: stock git finds nothing at all to say
fsck_clean() {
	git -C "$REPO" fsck --strict --no-progress >fsck.out 2>&1 &&
	test ! -s fsck.out
}

# conf_retention: $CONF plus a retention section keeping the last N
conf_retention() {
	gw_write_config &&
	printf 'retention {\n  keep-last = %s\n  keep-pre-restore-days = 0\n}\n' "$1" >>"$CONF"
}

# backdate: the repository's objects as old as between real runs (a prune
# keeps what is younger than its start)
backdate() {
	find "$REPO/objects" -type f -exec touch -d "1 minute ago" {} +
}

# loose PATH-IN-TREE: the loose file of A's tip's blob at that path
loose_of() {
	local b
	b=$(git -C "$REPO" rev-parse "A:$1") &&
	echo "$REPO/objects/${b:0:2}/${b:2}"
}

test_expect_success 'setup: gateway A, three snapshots' '
	gw_init A 2 1 &&
	gw_write_config &&
	gw_start A &&
	agent init &&
	agent snapshot A >out &&
	msgw-sim set A ports.smtp 2525 &&
	agent snapshot A >out &&
	msgw-sim set A ports.smtp 2526 &&
	agent snapshot A >out &&
	test "$(git -C "$REPO" rev-list --count A)" = 3
'

test_expect_success 'after git gc --aggressive and pack-refs --all: snapshot, verify, extract, apply' '
	git -C "$REPO" tag before-gc A &&
	git -C "$REPO" gc --aggressive --prune=now --quiet &&
	git -C "$REPO" pack-refs --all &&
	test ! -e "$REPO/refs/heads/A" &&
	test -z "$(find "$REPO/objects" -type f -path "*/objects/[0-9a-f][0-9a-f]/*")" &&
	agent snapshot A >out &&
	test_grep "^A: unchanged ([0-9a-f]\{12\})$" out &&
	msgw-sim set A ports.smtp 2527 &&
	agent snapshot A >out &&
	test_grep "^[0-9a-f]\{12\} A: 1 modified, 0 added, 0 removed$" out &&
	agent verify --all >out &&
	test_grep "^4 verified, 0 damaged$" out &&
	restore extract before-gc ex >out &&
	test_grep "^extracted " out &&
	git -C "$REPO" show before-gc:config.tar.zst | tar --zstd -tf - | LC_ALL=C sort >expect &&
	(cd ex && find . -mindepth 1 | sed "s,^\./,," | LC_ALL=C sort) >actual &&
	sed "s,/$,," expect | LC_ALL=C sort >expect.names &&
	test_cmp expect.names actual &&
	restore apply before-gc --to A --yes </dev/null >out &&
	test_grep "^restored [0-9a-f]\{12\} onto A" out &&
	grep -q "\"smtp\": 2526" A/Gateway.json &&
	agent snapshot A >out &&
	fsck_clean
'

test_expect_success 'a damaged loose object with a sound packed copy reads fine' '
	msgw-sim set A ports.smtp 2530 &&
	agent snapshot A >out &&
	obj=$(loose_of config.tar.zst) &&
	test -f "$obj" &&
	git -C "$REPO" repack -a -q &&
	test -f "$obj" &&
	chmod u+w "$obj" &&
	size=$(stat -c %s "$obj") &&
	printf "\\377\\377\\377\\377" | dd of="$obj" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null &&
	agent verify A >out &&
	test_grep "^1 verified, 0 damaged$" out &&
	restore extract A ex2 >out &&
	test_grep "^extracted " out &&
	cmp ex2/Gateway.json A/Gateway.json
'

test_expect_success 'a damaged loose object with no sound copy is named' '
	msgw-sim set A ports.smtp 2531 &&
	agent snapshot A >out &&
	obj=$(loose_of config.tar.zst) &&
	cp -p "$obj" sound.obj &&
	test_when_finished "cp -p sound.obj \"$obj\"" &&
	chmod u+w "$obj" &&
	size=$(stat -c %s "$obj") &&
	printf "\\377\\377\\377\\377" | dd of="$obj" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null &&
	test_expect_code 1 restore extract A ex3 &&
	test_grep "config.tar.zst.: loose object .$obj. is damaged" err &&
	test ! -e ex3
'

test_expect_success 'prune: an object newer than its start and a .keep pack survive' '
	conf_retention 1 &&
	backdate &&
	old=$(echo "old unreachable" | git -C "$REPO" hash-object -w --stdin) &&
	touch -d "1 hour ago" "$REPO/objects/${old:0:2}/${old:2}" &&
	new=$(echo "written beside the prune" | git -C "$REPO" hash-object -w --stdin) &&
	touch -d "1 hour" "$REPO/objects/${new:0:2}/${new:2}" &&
	kept=$(echo "in a kept pack" | git -C "$REPO" hash-object -w --stdin) &&
	pack=$(echo "$kept" | git -C "$REPO" pack-objects "$REPO/objects/pack/pack") &&
	: >"$REPO/objects/pack/pack-$pack.keep" &&
	rm -f "$REPO/objects/${kept:0:2}/${kept:2}" &&
	agent prune >out &&
	test_grep "^A: [0-9]* snapshots, keep [0-9]*, drop [1-9]" out &&
	! git -C "$REPO" cat-file -e "$old" 2>/dev/null &&
	git -C "$REPO" cat-file -e "$new" &&
	git -C "$REPO" cat-file -e "$kept" &&
	test -f "$REPO/objects/pack/pack-$pack.keep" &&
	test -f "$REPO/objects/pack/pack-$pack.pack" &&
	git -C "$REPO" fsck --strict --no-progress >fsck.out 2>&1 &&
	! grep -v "^dangling blob \($new\|$kept\)$" fsck.out &&
	agent verify --all >out &&
	test_grep " 0 damaged$" out &&
	rm -f "$REPO/objects/${new:0:2}/${new:2}" "$REPO/objects/pack/pack-$pack".* &&
	fsck_clean
'

test_expect_success 'stale git lock files from a killed run: cleared with a warning, snapshot succeeds' '
	gw_write_config &&
	git -C "$REPO" tag t1 A &&
	git -C "$REPO" pack-refs --all &&
	git -C "$REPO" rev-parse A >"$REPO/refs/heads/A.lock" &&
	: >"$REPO/refs/tags/t1.lock" &&
	: >"$REPO/packed-refs.lock" &&
	msgw-sim set A ports.smtp 2540 &&
	agent snapshot A >out 2>err &&
	test_grep "^[0-9a-f]\{12\} A: 1 modified, 0 added, 0 removed$" out &&
	test_grep "^msgw-agent: warning: removed stale git lock file .$REPO/refs/heads/A.lock. left by a killed run$" err &&
	test_grep "^msgw-agent: warning: removed stale git lock file .$REPO/refs/tags/t1.lock. left by a killed run$" err &&
	test_grep "^msgw-agent: warning: removed stale git lock file .$REPO/packed-refs.lock. left by a killed run$" err &&
	! grep ": $" err &&
	test ! -e "$REPO/refs/heads/A.lock" &&
	test ! -e "$REPO/refs/tags/t1.lock" &&
	test ! -e "$REPO/packed-refs.lock" &&
	fsck_clean
'

test_expect_success 'stale lock files before a prune: cleared, prune succeeds' '
	conf_retention 1 &&
	msgw-sim set A ports.smtp 2541 &&
	agent snapshot A >out &&
	backdate &&
	: >"$REPO/refs/tags/t1.lock" &&
	: >"$REPO/refs/heads/A.lock" &&
	agent prune >out 2>err &&
	test_grep "removed stale git lock file .$REPO/refs/tags/t1.lock." err &&
	test_grep "removed stale git lock file .$REPO/refs/heads/A.lock." err &&
	test_grep "^A: [0-9]* snapshots, keep [0-9]*, drop [1-9]" out &&
	fsck_clean
'

test_expect_success 'temporary objects a killed run left are removed by the next run' '
	gw_write_config &&
	mkdir -p "$REPO/objects/ab" &&
	echo x >"$REPO/objects/tmp_obj_AbC123" &&
	echo x >"$REPO/objects/ab/tmp_obj_XyZ789" &&
	echo x >"$REPO/objects/tmp_object_git2_q1w2e3" &&
	echo x >"$REPO/objects/pack/tmp_pack_Q1W2E3" &&
	echo x >"$REPO/objects/pack/tmp_idx_Q1W2E3" &&
	agent snapshot A >out 2>err &&
	test_grep "^A: unchanged ([0-9a-f]\{12\})$" out &&
	test_grep "removed temporary object .$REPO/objects/tmp_obj_AbC123. left by a killed run" err &&
	test_grep "removed temporary object .$REPO/objects/ab/tmp_obj_XyZ789. left by a killed run" err &&
	test_grep "removed temporary pack file .$REPO/objects/pack/tmp_pack_Q1W2E3. left by a killed run" err &&
	test -z "$(find "$REPO/objects" -name "tmp_*")" &&
	fsck_clean
'

test_expect_success 'a prune killed between the tags and the branch: the next run finishes it' '
	gw_write_config &&
	for p in 2550 2551 2552 2553; do
		msgw-sim set A ports.smtp $p && agent snapshot A >out || return 1
	done &&
	git -C "$REPO" tag mid A~1 &&
	git -C "$REPO" tag -a -m "annotated" mid-annotated A~2 &&
	conf_retention 1 &&
	backdate &&
	before=$(git -C "$REPO" rev-parse A) &&
	MSGW_FAULT=prune-before-branch test_expect_code 137 agent prune &&
	test_grep "fault injection: killed at .prune-before-branch." err &&
	test "$(git -C "$REPO" rev-parse A)" = "$before" &&
	test -f "$REPO/msgw-prune.journal" &&
	agent list >out 2>err &&
	agent snapshot A >out 2>err &&
	test_grep "^A: unchanged ([0-9a-f]\{12\})$" out &&
	test_grep "warning: finished the ref moves of an interrupted prune: 1 of [0-9]* refs moved now" err &&
	test ! -e "$REPO/msgw-prune.journal" &&
	git -C "$REPO" merge-base --is-ancestor mid A &&
	git -C "$REPO" merge-base --is-ancestor mid-annotated^{commit} A &&
	git -C "$REPO" merge-base --is-ancestor t1 A &&
	for p in 2560 2561; do
		msgw-sim set A ports.smtp $p && agent snapshot A >out || return 1
	done &&
	backdate &&
	agent prune >out 2>err &&
	test_grep "^A: [0-9]* snapshots, keep [0-9]*, drop [1-9]$" out &&
	git -C "$REPO" merge-base --is-ancestor mid A &&
	git -C "$REPO" merge-base --is-ancestor mid-annotated^{commit} A &&
	test "$(git -C "$REPO" cat-file -t mid-annotated)" = tag &&
	fsck_clean &&
	agent verify --all >out &&
	test_grep " 0 damaged$" out
'

test_done
