#!/bin/bash
# t2100-verify: msgw-agent verify checks snapshots completely.  Damage is
# made in copies of a good repository with stock git plumbing: an archive
# whose file content differs by one byte from its manifest (recompressed,
# re-committed on the branch), a loose object with a flipped byte, a tree
# with an extra entry, a manifest that no longer parses.  Each is reported
# naming the snapshot (and the file, where there is one) with exit 1,
# while the good snapshots still verify.
test_description='msgw-agent verify finds damaged snapshots'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

# conf REPO: a configuration file for repository REPO, named REPO.conf
conf() {
	cat >"$1.conf" <<-EOF
	repository = "$1"
	state-dir  = "state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	  exclude  = {"Logs/**"}
	}
	EOF
}

# flip FILE OFFSET: invert the bits of one byte of FILE in place
flip() {
	python3 -c "
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
b[off] ^= 0xff
open(p, 'wb').write(b)
" "$1" "$2"
}

# recommit REPO TREE-ENTRIES: replace the tip of msgw1 by a commit of the
# tree given as mktree input, with the tip's parent and message
recommit() {
	local tree parent new
	tree=$(git -C "$1" mktree <"$2") &&
	parent=$(git -C "$1" rev-parse msgw1^) &&
	new=$(git -C "$1" log -1 --format=%B msgw1 | git -C "$1" commit-tree "$tree" -p "$parent") &&
	git -C "$1" update-ref refs/heads/msgw1 "$new" &&
	echo "$new"
}

test_expect_success 'setup: two snapshots of a gateway' '
	msgw-sim init gw1 --domain example.test --mailboxes 2 --seed t2100 >ids &&
	conf repo.git &&
	msgw-agent -c repo.git.conf init >/dev/null &&
	msgw-agent -c repo.git.conf snapshot >/dev/null &&
	msgw-sim set gw1 ports.smtp 2525 &&
	msgw-agent -c repo.git.conf snapshot >/dev/null &&
	test "$(git -C repo.git rev-list --count msgw1)" = 2
'

test_expect_success 'good snapshots verify' '
	tip=$(git -C repo.git rev-parse msgw1) &&
	msgw-agent -c repo.git.conf verify >out &&
	printf "ok %s\n1 verified, 0 damaged\n" ${tip:0:12} >expect &&
	test_cmp expect out &&
	msgw-agent -c repo.git.conf verify --all >out &&
	test_grep "^2 verified, 0 damaged$" out &&
	msgw-agent -c repo.git.conf verify msgw1~1 msgw1 >out &&
	test_grep "^2 verified, 0 damaged$" out &&
	msgw-agent -c repo.git.conf verify --all --json >out.json &&
	python3 -m json.tool out.json >/dev/null &&
	python3 -c "
import json
d = json.load(open(\"out.json\"))
assert d[\"version\"] == 1 and d[\"ok\"] == 2 and d[\"damaged\"] == 0, d
assert all(r[\"result\"] == \"ok\" for r in d[\"results\"]), d
"
'

test_expect_success 'one changed byte of a file in the archive is found and named' '
	cp -a repo.git bad.git &&
	conf bad.git &&
	git -C bad.git show msgw1:config.tar.zst >a.tar.zst &&
	zstd -q -d a.tar.zst -o a.tar &&
	off=$(grep -obUa "MailStore Gateway" a.tar | head -1 | cut -d: -f1) &&
	test -n "$off" &&
	flip a.tar $((off + 4)) &&
	zstd -q a.tar -o b.tar.zst &&
	tar --zstd -xOf b.tar.zst Gateway.json >damaged.json &&
	! cmp -s damaged.json gw1/Gateway.json &&
	blob=$(git -C bad.git hash-object -w "$TRASH/b.tar.zst") &&
	git -C bad.git ls-tree msgw1 | sed "s/ [0-9a-f]*\tconfig.tar.zst$/ $blob\tconfig.tar.zst/" >tree &&
	test_grep "$blob" tree &&
	new=$(recommit bad.git tree) &&
	git -C bad.git fsck --strict 2>&1 &&
	test_expect_code 1 msgw-agent -c bad.git.conf verify &&
	test_grep "^msgw-agent: snapshot ${new:0:12} (msgw1): .Gateway.json.: sha256 does not match the manifest$" err &&
	test_grep "^0 verified, 1 damaged$" out &&
	test_expect_code 1 msgw-agent -c bad.git.conf verify --all &&
	test_grep "^ok " out &&
	test_grep "^1 verified, 1 damaged$" out &&
	test_expect_code 1 msgw-agent -c bad.git.conf verify ${new:0:9} &&
	test_grep "snapshot ${new:0:12} (msgw1): .Gateway.json." err &&
	test_expect_code 1 msgw-agent -c bad.git.conf verify --json &&
	python3 -m json.tool out >/dev/null &&
	test_grep "\"result\": \"damaged\"" out &&
	test_grep "\"error\": \"snapshot ${new:0:12} (msgw1): .Gateway.json.: sha256 does not match the manifest\"" out &&
	msgw-agent -c repo.git.conf verify --all >out &&
	test_grep "^2 verified, 0 damaged$" out
'

test_expect_success 'a damaged loose object is found and the snapshot named' '
	cp -a repo.git rot.git &&
	conf rot.git &&
	tip=$(git -C rot.git rev-parse msgw1) &&
	blob=$(git -C rot.git rev-parse msgw1:config.tar.zst) &&
	obj=rot.git/objects/${blob:0:2}/${blob:2} &&
	test -f $obj &&
	chmod u+w $obj &&
	flip $obj $(( $(stat -c %s $obj) / 2 )) &&
	test_expect_code 1 msgw-agent -c rot.git.conf verify &&
	test_grep "^msgw-agent: snapshot ${tip:0:12}: .config.tar.zst.: loose object .*/${blob:0:2}/${blob:2}. is damaged" err &&
	! grep "snapshot.*snapshot" err &&
	test_grep "^0 verified, 1 damaged$" out &&
	test_expect_code 1 msgw-agent -c rot.git.conf verify --all &&
	test_grep "^1 verified, 1 damaged$" out
'

test_expect_success 'a snapshot tree with an extra entry is damaged' '
	cp -a repo.git extra.git &&
	conf extra.git &&
	blob=$(echo surprise | git -C extra.git hash-object -w --stdin) &&
	{ git -C extra.git ls-tree msgw1 && printf "100644 blob %s\tREADME\n" $blob; } >tree &&
	new=$(recommit extra.git tree) &&
	test_expect_code 1 msgw-agent -c extra.git.conf verify &&
	test_grep "snapshot ${new:0:12}: tree holds 4 entries, not 3" err
'

test_expect_success 'a manifest that disagrees with the archive is damaged' '
	cp -a repo.git lie.git &&
	conf lie.git &&
	git -C lie.git show msgw1:manifest >manifest &&
	sed "s/^\(f [0-9]* [0-9]* [0-9]* \)\([0-9]*\)\( .* Gateway.json\)$/\1999\3/" manifest >manifest2 &&
	! cmp -s manifest manifest2 &&
	blob=$(git -C lie.git hash-object -w "$TRASH/manifest2") &&
	git -C lie.git ls-tree msgw1 | sed "s/ [0-9a-f]*\tmanifest$/ $blob\tmanifest/" >tree &&
	new=$(recommit lie.git tree) &&
	test_expect_code 1 msgw-agent -c lie.git.conf verify &&
	test_grep "snapshot ${new:0:12} (msgw1): .Gateway.json.: size does not match the manifest" err
'

test_expect_success 'a manifest that does not parse names its line' '
	cp -a repo.git garbled.git &&
	conf garbled.git &&
	git -C garbled.git show msgw1:manifest | sed "3s/^f /x /" >manifest2 &&
	blob=$(git -C garbled.git hash-object -w "$TRASH/manifest2") &&
	git -C garbled.git ls-tree msgw1 | sed "s/ [0-9a-f]*\tmanifest$/ $blob\tmanifest/" >tree &&
	new=$(recommit garbled.git tree) &&
	test_expect_code 1 msgw-agent -c garbled.git.conf verify &&
	test_grep "snapshot ${new:0:12}: manifest line 3: unknown type .x." err
'

test_expect_success 'verify names a snapshot that does not exist' '
	test_expect_code 1 msgw-agent -c repo.git.conf verify msgw1~5 &&
	test_grep "no snapshot named .msgw1~5." err &&
	test_expect_code 1 msgw-agent -c repo.git.conf verify nosuch &&
	test_grep "no snapshot named .nosuch." err
'

test_done
