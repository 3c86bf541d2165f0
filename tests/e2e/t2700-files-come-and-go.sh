#!/bin/bash
# t2700-files-come-and-go: a gateway's files may vanish while a snapshot
# reads them (a gateway saving its configuration through a temporary file,
# issue 14).  An entry removed between the walk's listing and its reading
# is left out of the snapshot with a warning, as tar's "file removed
# before we read it", and the snapshot succeeds; the tool's own temporary
# names (a killed run's leftovers) are never recorded.  The removal is made
# deterministic by a test-build fault point, MSGW_TEST_VANISH=PATH, which
# removes PATH right after the walk listed it.
test_description='files removed during a snapshot are left out, not fatal'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

# in_archive GW PATH: whether the tip of GW's archive holds PATH
in_archive() {
	git -C repo.git show "$1:config.tar.zst" | tar --zstd -tf - >list &&
	grep -qx "$2" list
}

test_expect_success 'setup: two gateways' '
	msgw-sim init gw1 --domain example.test --mailboxes 1 --seed t2700a >/dev/null &&
	msgw-sim init gw2 --domain example.test --mailboxes 1 --seed t2700b >/dev/null &&
	cat >msgw.conf <<-EOF &&
	repository = "repo.git"
	state-dir  = "state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	  exclude  = {"Logs/**"}
	}
	gateway "msgw2" {
	  location = "$TRASH/gw2"
	  exclude  = {"Logs/**"}
	}
	EOF
	msgw-agent -c msgw.conf init >/dev/null &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	in_archive msgw1 Templates/bounce.txt
'

test_expect_success 'a file removed after the walk listed it is left out with a note' '
	MSGW_TEST_VANISH=Templates/bounce.txt msgw-agent -c msgw.conf snapshot msgw1 >out 2>err &&
	test_grep "msgw1: 0 modified, 0 added, 1 removed" out &&
	test_grep "Templates/bounce.txt. was removed before it was read; left out of the snapshot" err &&
	test ! -e gw1/Templates/bounce.txt &&
	git -C repo.git show msgw1:manifest >m &&
	! grep -q " Templates/bounce.txt\$" m &&
	test_grep " Templates/notification.txt\$" m &&
	! in_archive msgw1 Templates/bounce.txt &&
	in_archive msgw1 Templates/notification.txt &&
	msgw-agent -c msgw.conf verify msgw1 >/dev/null &&
	git -C repo.git fsck --strict
'

test_expect_success 'the same in a first snapshot (files hashed while archived)' '
	MSGW_TEST_VANISH=Gateway.json msgw-agent -c msgw.conf snapshot msgw2 >out 2>err &&
	test_grep "Gateway.json. was removed before it was read" err &&
	git -C repo.git show msgw2:manifest >m &&
	! grep -q " Gateway.json\$" m &&
	! in_archive msgw2 Gateway.json &&
	in_archive msgw2 Templates/bounce.txt &&
	msgw-agent -c msgw.conf verify msgw2 >/dev/null
'

test_expect_success 'a file removed while others are added: the counts are right' '
	mkdir -p gw1/Extra/deep &&
	echo x >gw1/Extra/deep/a.txt &&
	echo y >gw1/Extra/b.txt &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	in_archive msgw1 Extra/deep/a.txt &&
	echo z >gw1/Templates/new.txt &&
	MSGW_TEST_VANISH=Extra/b.txt msgw-agent -c msgw.conf snapshot msgw1 >out 2>err &&
	test_grep "0 modified, 1 added, 1 removed" out &&
	msgw-agent -c msgw.conf verify msgw1 >/dev/null
'

test_expect_success 'the tool'"'"'s own temporary names are never recorded' '
	: >gw1/.msgw-journal.msgw-tmp.4242 &&
	: >gw1/.msgw-journal &&
	echo stale >gw1/Gateway.json.msgw-tmp.77 &&
	echo stale >gw1/Gateway.json.msgw-new &&
	echo stale >gw1/Templates/bounce.txt.msgw-old &&
	echo ok >gw1/.Gateway.json.tmp-kept &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	test_grep "0 modified, 1 added, 0 removed" out &&
	git -C repo.git show msgw1:manifest >m &&
	! grep -q "\.msgw-" m &&
	test_grep " .Gateway.json.tmp-kept\$" m &&
	rm gw1/.msgw-journal* gw1/*.msgw-* gw1/Templates/*.msgw-* gw1/.Gateway.json.tmp-kept
'

test_expect_success 'a gateway saving its configuration during 20 snapshots fails none' '
	(
		i=0 &&
		while test ! -e stop; do
			i=$((i + 1)) &&
			t=gw1/.Gateway.json.tmp-$i &&
			head -c $((1000 + i % 3000)) /dev/urandom | base64 >$t &&
			if test $((i % 2)) = 0; then
				mv -f $t gw1/Gateway.json
			else
				rm -f $t
			fi
		done
	) &
	writer=$! &&
	n=0 &&
	while test $n -lt 20; do
		msgw-agent -c msgw.conf snapshot msgw1 >out 2>err || {
			cat err; touch stop; wait $writer; return 1; }
		n=$((n + 1))
	done &&
	touch stop &&
	wait $writer &&
	msgw-agent -c msgw.conf verify msgw1 >/dev/null
'

test_done
