#!/bin/bash
# t2000-snapshot: snapshots of a simulated gateway into the repository.
# The first snapshot is a commit stock git can read and fsck; an unchanged
# gateway writes nothing; changes are summarised and named in the commit;
# mailbox stores and excluded paths never reach a manifest or an archive,
# however much mail arrives; the archive extracts with stock tar to the
# gateway's files byte for byte, and the same files give the same archive;
# tags and snapshot names; --json everywhere; scan's classification; and a
# file that keeps changing fails the snapshot without a commit.
test_description='msgw-agent snapshot against msgw-sim'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

# The mailbox stores and excluded files of a gateway as it would look in a
# snapshot: everything else, by stock tools.
expected_tree() {
	rm -rf "$2" &&
	cp -a "$1" "$2" &&
	find "$2" -depth -type d -name 'mbx-*' -exec rm -rf {} + &&
	rm -rf "$2"/Logs/*
}

# commits: the number of snapshots of msgw1
commits() {
	git -C repo.git rev-list --count msgw1
}

test_expect_success 'setup: a gateway with mailboxes and logs' '
	msgw-sim init gw1 --domain example.test --mailboxes 3 --seed t2000 >ids &&
	test $(wc -l <ids) = 3 &&
	echo "2026-11-28 service started" >gw1/Logs/gateway.log &&
	mkdir gw1/Logs/2026 && echo old >gw1/Logs/2026/11.log &&
	mkdir gw1/Templates/Custom gw1/Empty &&
	printf "odd name\n" >"gw1/Templates/Custom/with space %.txt" &&
	ln -s Templates/bounce.txt gw1/current &&
	cat >msgw.conf <<-EOF &&
	repository = "repo.git"          # relative to this file
	state-dir  = "state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	  exclude  = {"Logs/**"}
	  preserve = {"Certificates/**"}
	}
	gateway "copy" {
	  location = "$TRASH/gw1-copy"
	  exclude  = {"Logs/**"}
	}
	EOF
	msgw-agent -c msgw.conf init >out &&
	test_grep "^created repository" out
'

test_expect_success 'the first snapshot is a commit stock git reads' '
	msgw-agent -c msgw.conf snapshot msgw1 >out 2>err &&
	test ! -s err &&
	test_grep "^[0-9a-f]\{12\} msgw1: 0 modified, 11 added, 0 removed$" out &&
	test "$(commits)" = 1 &&
	git -C repo.git log --format="%s" >log &&
	echo "msgw1: 0 modified, 11 added, 0 removed" >expect &&
	test_cmp expect log &&
	git -C repo.git fsck --strict >fsck 2>&1 &&
	test ! -s fsck &&
	git -C repo.git ls-tree --name-only msgw1 >names &&
	printf "%s\n" config.tar.zst manifest meta >expect &&
	test_cmp expect names &&
	test "$(cut -c1-12 out)" = "$(git -C repo.git rev-parse --short=12 msgw1)"
'

test_expect_success 'meta and manifest follow repository format 1' '
	git -C repo.git show msgw1:meta >meta &&
	test_grep "^format: 1$" meta &&
	test_grep "^gateway: msgw1$" meta &&
	test_grep "^created: [0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9:]\{8\}Z$" meta &&
	test_grep "^kind: manual$" meta &&
	test_grep "^tool: msgw-backup " meta &&
	test_grep "^location: $TRASH/gw1$" meta &&
	test_grep "^files: 11$" meta &&
	git -C repo.git show msgw1:manifest >manifest &&
	head -1 manifest >first &&
	echo "msgw-manifest 1" >expect &&
	test_cmp expect first &&
	sed 1d manifest | cut -d" " -f7 >paths &&
	LC_ALL=C sort paths >sorted &&
	test_cmp sorted paths &&
	cat >expect <<-\EOF &&
	Certificates
	Certificates/gateway.pem
	Empty
	Gateway.json
	Logs
	Templates
	Templates/Custom
	Templates/Custom/with%20space%20%25.txt
	Templates/bounce.txt
	Templates/notification.txt
	current
	EOF
	test_cmp expect paths &&
	test_grep "^l 0777 [0-9]* [0-9]* 20 [0-9a-f]\{64\} current$" manifest &&
	test_grep "^d 0755 [0-9]* [0-9]* 0 - Empty$" manifest &&
	sha=$(sha256sum <gw1/Gateway.json | cut -d" " -f1) &&
	size=$(stat -c %s gw1/Gateway.json) &&
	test_grep "^f 0644 [0-9]* [0-9]* $size $sha Gateway.json$" manifest
'

test_expect_success 'an unchanged gateway writes no commit' '
	before=$(git -C repo.git rev-parse msgw1) &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	echo "msgw1: unchanged (${before:0:12})" >expect &&
	test_cmp expect out &&
	test "$(git -C repo.git rev-parse msgw1)" = "$before" &&
	test "$(commits)" = 1 &&
	msgw-agent -c msgw.conf snapshot msgw1 --json >out &&
	python3 -m json.tool out >/dev/null &&
	test_grep "\"result\": \"unchanged\"" out &&
	test_grep "\"id\": \"$before\"" out &&
	test "$(commits)" = 1
'

test_expect_success 'touching a file without changing it writes no commit' '
	touch gw1/Gateway.json gw1/Templates/bounce.txt &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	test_grep "^msgw1: unchanged" out &&
	test "$(commits)" = 1
'

test_expect_success 'one changed file: "1 modified" and the file named in the body' '
	parent=$(git -C repo.git rev-parse msgw1) &&
	msgw-sim set gw1 ports.smtp 2525 &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	test_grep "^[0-9a-f]\{12\} msgw1: 1 modified, 0 added, 0 removed$" out &&
	test "$(commits)" = 2 &&
	git -C repo.git log -1 --format=%s msgw1 >subject &&
	echo "msgw1: 1 modified, 0 added, 0 removed" >expect &&
	test_cmp expect subject &&
	git -C repo.git log -1 --format=%b msgw1 >body &&
	test_grep "^M Gateway.json$" body &&
	test $(grep -c "^[MAD] " body) = 1 &&
	test "$(git -C repo.git rev-parse msgw1^)" = "$parent" &&
	git -C repo.git show msgw1:config.tar.zst | tar --zstd -xOf - Gateway.json >got &&
	test_cmp gw1/Gateway.json got &&
	test_grep "\"smtp\": 2525" got
'

test_expect_success 'added and removed files are counted and named' '
	echo new >gw1/Templates/new.txt &&
	rm gw1/Templates/notification.txt &&
	rmdir gw1/Empty &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	test_grep "msgw1: 0 modified, 1 added, 2 removed$" out &&
	git -C repo.git log -1 --format=%b msgw1 >body &&
	test_grep "^A Templates/new.txt$" body &&
	test_grep "^D Templates/notification.txt$" body &&
	test_grep "^D Empty$" body &&
	chmod 0600 gw1/Templates/new.txt &&
	msgw-agent -c msgw.conf snapshot msgw1 --message "tightened modes" >out &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed$" out &&
	git -C repo.git log -1 --format=%b msgw1 >body &&
	test_grep "^tightened modes$" body &&
	test_grep "^M Templates/new.txt$" body &&
	git -C repo.git show msgw1:manifest >manifest &&
	test_grep "^f 0600 .* Templates/new.txt$" manifest
'

test_expect_success 'mail arriving never reaches a manifest or an archive' '
	for id in $(cut -d" " -f1 ids); do
		msgw-sim deliver gw1 $id 4 || exit 1
	done &&
	mkdir -p gw1/Stores &&
	cp -r gw1/$(head -1 ids | cut -d" " -f1) gw1/Stores/ &&
	test $(find gw1 -name "*.msg" | wc -l) = 16 &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	test_grep "msgw1: 1 modified, 1 added, 0 removed$" out &&
	git -C repo.git log -1 --format=%b msgw1 >body &&
	test_grep "^M Gateway.json$" body &&
	test_grep "^A Stores$" body &&
	for c in $(git -C repo.git rev-list msgw1); do
		git -C repo.git show $c:manifest >manifest &&
		git -C repo.git show $c:config.tar.zst | tar --zstd -tf - >listing &&
		test -s listing &&
		! grep -e "mbx-" -e "\.msg" manifest &&
		! grep -e "mbx-" -e "\.msg" listing &&
		! grep "^Logs/." listing &&
		! grep " Logs/." manifest || exit 1
	done
'

test_expect_success 'scan: mailbox stores, excluded logs, preserved certificates' '
	msgw-agent -c msgw.conf scan msgw1 >out &&
	for id in $(cut -d" " -f1 ids); do
		test_grep "^mailbox-store .* $id/$" out || exit 1
	done &&
	test_grep "^excluded .* Logs/$" out &&
	test_grep "^preserved .* Certificates/$" out &&
	test_grep "^config .* Gateway.json$" out &&
	test_grep "^config .* Templates/$" out &&
	test_grep "^config .* Stores/$" out &&
	msgw-agent -c msgw.conf scan msgw1 --json >out.json &&
	python3 -m json.tool out.json >/dev/null &&
	python3 -c "
import json, sys
doc = json.load(open(\"out.json\"))
cls = {e[\"path\"]: e[\"class\"] for e in doc[\"entries\"]}
ids = [l.split()[0] for l in open(\"ids\")]
assert doc[\"version\"] == 1 and doc[\"gateway\"] == \"msgw1\", doc
assert all(cls[i] == \"mailbox-store\" for i in ids), cls
assert cls[\"Logs\"] == \"excluded\", cls
assert cls[\"Gateway.json\"] == \"config\", cls
"
'

test_expect_success 'stock tar extracts the archive to the gateway files, byte for byte' '
	mkdir x &&
	git -C repo.git show msgw1:config.tar.zst >a.tar.zst &&
	tar --zstd -xf a.tar.zst -C x &&
	expected_tree gw1 expect-tree &&
	tree_listing expect-tree >expect &&
	tree_listing x >actual &&
	test_cmp expect actual &&
	for f in Gateway.json Certificates/gateway.pem "Templates/Custom/with space %.txt"; do
		cmp "gw1/$f" "x/$f" || exit 1
	done &&
	test "$(readlink x/current)" = Templates/bounce.txt &&
	tar --zstd -tvf a.tar.zst >listing &&
	! grep -e "^/" -e " /" -e "\.\./" listing
'

test_expect_success 'the same files give the same archive, wherever they are' '
	cp -a gw1 gw1-copy &&
	msgw-agent -c msgw.conf snapshot copy >out &&
	test "$(git -C repo.git rev-parse msgw1:config.tar.zst)" = \
	     "$(git -C repo.git rev-parse copy:config.tar.zst)" &&
	test "$(git -C repo.git rev-parse msgw1:manifest)" = \
	     "$(git -C repo.git rev-parse copy:manifest)" &&
	git -C repo.git show copy:meta >meta &&
	test_grep "^location: $TRASH/gw1-copy$" meta &&
	test_grep "^gateway: copy$" meta
'

test_expect_success 'a snapshot of every gateway when none is named' '
	echo more >>gw1/Templates/new.txt &&
	echo more >>gw1-copy/Templates/new.txt &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep " msgw1: 1 modified, 0 added, 0 removed$" out &&
	test_grep " copy: 1 modified, 0 added, 0 removed$" out &&
	msgw-agent -c msgw.conf snapshot --json >out &&
	python3 -m json.tool out >/dev/null &&
	test $(grep -c "\"result\": \"unchanged\"" out) = 2
'

test_expect_success '--tag names the snapshot; show resolves tags, ~N and id prefixes' '
	msgw-sim set gw1 ports.pop3 1110 &&
	msgw-agent -c msgw.conf snapshot msgw1 --tag before-upgrade >out &&
	tip=$(git -C repo.git rev-parse msgw1) &&
	test "$(git -C repo.git rev-parse before-upgrade)" = "$tip" &&
	msgw-agent -c msgw.conf show before-upgrade >out &&
	test_grep "^snapshot $tip$" out &&
	test_grep "^tags: before-upgrade$" out &&
	test_grep "^summary: msgw1: 1 modified, 0 added, 0 removed$" out &&
	test_grep "^f 0644 .* Gateway.json$" out &&
	prev=$(git -C repo.git rev-parse msgw1~1) &&
	msgw-agent -c msgw.conf show msgw1~1 >out &&
	test_grep "^snapshot $prev$" out &&
	test_grep "^parent: $(git -C repo.git rev-parse msgw1~2)$" out &&
	msgw-agent -c msgw.conf show ${prev:0:7} >out &&
	test_grep "^snapshot $prev$" out &&
	msgw-agent -c msgw.conf show $prev >out &&
	test_grep "^snapshot $prev$" out &&
	msgw-agent -c msgw.conf show msgw1@latest >out &&
	test_grep "^snapshot $tip$" out &&
	first=$(git -C repo.git rev-list msgw1 | tail -1) &&
	n=$(($(commits) - 1)) &&
	msgw-agent -c msgw.conf show msgw1~$n >out &&
	test_grep "^snapshot $first$" out &&
	test_expect_code 1 msgw-agent -c msgw.conf show msgw1~$((n + 1)) &&
	test_grep "no snapshot named .msgw1~$((n + 1)).: the branch has only $((n + 1))" err &&
	test_expect_code 1 msgw-agent -c msgw.conf show nosuchtag &&
	test_grep "^msgw-agent: no snapshot named .nosuchtag.$" err
'

test_expect_success '--tag on an unchanged gateway tags its latest snapshot' '
	tip=$(git -C repo.git rev-parse msgw1) &&
	msgw-agent -c msgw.conf snapshot msgw1 --tag still-the-same >out &&
	test_grep "^msgw1: unchanged" out &&
	test "$(git -C repo.git rev-parse still-the-same)" = "$tip" &&
	test_expect_code 2 msgw-agent -c msgw.conf snapshot msgw1 --tag still-the-same &&
	test_grep "tag .still-the-same. already exists" err &&
	test_expect_code 2 msgw-agent -c msgw.conf snapshot msgw1 --tag "bad..tag" &&
	test_grep "bad tag name" err &&
	# a refused tag leaves no snapshot behind either
	msgw-sim set gw1 ports.pop3 1111 &&
	test_expect_code 2 msgw-agent -c msgw.conf snapshot msgw1 --tag still-the-same &&
	test_grep "^msgw-agent: tag .still-the-same. already exists$" err &&
	test_expect_code 2 msgw-agent -c msgw.conf snapshot msgw1 --tag "x.lock" &&
	test "$(git -C repo.git rev-parse msgw1)" = "$tip" &&
	msgw-agent -c msgw.conf snapshot msgw1 --tag after-pop3 >out &&
	test "$(git -C repo.git rev-parse after-pop3)" = "$(git -C repo.git rev-parse msgw1)" &&
	test "$(git -C repo.git rev-parse msgw1^)" = "$tip"
'

test_expect_success 'list, show and snapshot --json are valid JSON' '
	msgw-agent -c msgw.conf list --json >list.json &&
	python3 -m json.tool list.json >/dev/null &&
	msgw-agent -c msgw.conf show msgw1 --json >show.json &&
	python3 -m json.tool show.json >/dev/null &&
	python3 -c "
import json
l = json.load(open(\"list.json\"))
s = json.load(open(\"show.json\"))
assert l[\"version\"] == 1, l
ids = [x[\"id\"] for x in l[\"snapshots\"] if x[\"gateway\"] == \"msgw1\"]
assert len(ids) == $(commits), ids
assert s[\"id\"] == ids[0], (s[\"id\"], ids)
assert \"after-pop3\" in s[\"tags\"], s[\"tags\"]
paths = [f[\"path\"] for f in s[\"files_list\"]]
assert \"Gateway.json\" in paths and not any(\"mbx-\" in p for p in paths), paths
assert s[\"meta\"][\"gateway\"] == \"msgw1\"
" &&
	msgw-agent -c msgw.conf list msgw1 -n 2 >out &&
	test $(wc -l <out) = 3 &&
	test_grep "^GATEWAY " out
'

test_expect_success 'the repository is still clean for git fsck' '
	git -C repo.git fsck --strict >fsck 2>&1 &&
	test ! -s fsck
'

test_expect_success 'a file that keeps changing fails the snapshot; no commit' '
	before=$(git -C repo.git rev-parse msgw1)
	head -c 16000000 /dev/zero >gw1/Templates/busy.log
	(while :; do echo x >>gw1/Templates/busy.log; done) &
	pid=$!
	test_when_finished "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
	test_expect_code 1 msgw-agent -c msgw.conf snapshot msgw1 &&
	test_grep "^msgw-agent: snapshot of .msgw1. failed: .Templates/busy.log. \(kept changing while it was read\|changed while it was archived\)$" err &&
	test "$(git -C repo.git rev-parse msgw1)" = "$before" &&
	{ kill $pid; wait $pid; } 2>/dev/null || : &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	test_grep "msgw1: 0 modified, 1 added, 0 removed$" out
'

test_expect_success 'a snapshot that cannot be written (file-size limit, as a full disk) changes nothing' '
	before=$(git -C repo.git rev-parse msgw1) &&
	test $(git -C repo.git cat-file -s msgw1:config.tar.zst) -gt 1024 &&
	echo "one more line" >>gw1/Templates/bounce.txt &&
	(trap "" XFSZ && ulimit -f 1 &&
	 test_expect_code 1 msgw-agent -c msgw.conf snapshot msgw1) &&
	test_grep "File too large" err &&
	test "$(git -C repo.git rev-parse msgw1)" = "$before" &&
	! ls repo.git/msgw-archive.* repo.git/objects/tmp_* 2>/dev/null &&
	git -C repo.git fsck --strict >fsck 2>&1 &&
	test ! -s fsck &&
	msgw-agent -c msgw.conf snapshot msgw1 >out &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed$" out
'

test_done
