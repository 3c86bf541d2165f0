#!/bin/bash
# t6020-reencrypt: msgw-agent reencrypt moves a plain repository's history
# into an encrypted one: every snapshot (oldest first), its time, summary
# and tags; the copies are sealed (no plain sha256 among the objects) and
# extract to the same files as the plain originals.  A second run, a
# destination without a key and a damaged source snapshot are refused.
test_description='reencrypt: plain history into an encrypted repository'
. "$(dirname "$0")/test-lib.sh"

conf() { # conf FILE REPOSITORY [KEYSPEC]
	{
		[ -z "${3:-}" ] || printf 'encryption = "%s"\n' "$3"
		printf 'repository = "%s"\nstate-dir = "%s/state"\n' "$2" "$TRASH"
		printf 'gateway "gw" {\n  location = "%s/gw"\n  exclude = {"Logs/**"}\n}\n' "$TRASH"
	} >"$1"
}

test_expect_success 'setup: a plain repository with three snapshots and a tag' '
	msgw-sim init gw --domain example.test --mailboxes 1 --seed 6020 >ids &&
	conf plain.conf "$TRASH/plain.git" &&
	msgw-agent -c plain.conf init >out &&
	msgw-agent -c plain.conf snapshot gw >out &&
	printf "v2\n" >gw/Templates/bounce.txt &&
	msgw-agent -c plain.conf snapshot gw --tag v2 >out &&
	printf "v3\n" >gw/Templates/bounce.txt &&
	msgw-agent -c plain.conf snapshot gw >out &&
	conf enc.conf "$TRASH/enc.git" "keyfile:$TRASH/enc.key" &&
	msgw-agent -c enc.conf init --encrypt >out
'

test_expect_success 'a plain repository with snapshots cannot become encrypted in place' '
	conf inplace.conf "$TRASH/plain.git" "keyfile:$TRASH/enc.key" &&
	test_expect_code 2 msgw-agent -c inplace.conf init &&
	test_grep "is plain and holds snapshots; move them into a new encrypted repository with .msgw-agent reencrypt." err &&
	test -z "$(git --git-dir=plain.git config msgw.keyid)" &&
	test_expect_code 2 msgw-agent -c inplace.conf show gw &&
	test_grep "is plain (init recorded no key) and encryption names key" err &&
	test $(wc -l <err) = 1
'

test_expect_success 'a destination without a key is refused' '
	conf nokey.conf "$TRASH/other.git" &&
	msgw-agent -c nokey.conf init >out &&
	test_expect_code 2 msgw-agent -c nokey.conf reencrypt --from plain.git &&
	test_grep "has no key: reencrypt writes into an encrypted repository" err &&
	test -z "$(git --git-dir=other.git for-each-ref)"
'

test_expect_success 'reencrypt copies every snapshot and tag, sealed' '
	msgw-agent -c enc.conf reencrypt --from plain.git >out &&
	test_grep "^reencrypted 3 snapshots of 1 gateways (1 tags) from .plain.git. into" out &&
	git --git-dir=plain.git log --format="%at %s" gw >expect &&
	git --git-dir=enc.git log --format="%at %s" gw >actual &&
	test_cmp expect actual &&
	test "$(git --git-dir=enc.git rev-parse v2)" = "$(git --git-dir=enc.git rev-parse gw~1)" &&
	msgw-agent -c enc.conf verify --all >out &&
	test_grep "^3 verified, 0 damaged$" out &&
	git --git-dir=enc.git cat-file blob gw:manifest | head -c 12 >line &&
	printf "msgw-sealed " >expect && test_cmp expect line &&
	git --git-dir=enc.git cat-file --batch-all-objects --batch >objects &&
	(cd gw && find . -path ./Logs -prune -o -type f -print0 | xargs -0 sha256sum) |
		cut -d" " -f1 >sums &&
	! grep -a -F -q -f sums objects
'

test_expect_success 'each copy extracts to the same files as its original' '
	for s in gw~2 v2 gw; do
		msgw-restore -c plain.conf extract $s "p-$s" >out &&
		msgw-restore -c enc.conf extract $s "e-$s" >out &&
		diff -r "p-$s" "e-$s" || exit 1
	done &&
	msgw-agent -c plain.conf show gw | sed -n "/^$/,\$p" >expect &&
	msgw-agent -c enc.conf show gw | sed -n "/^$/,\$p" >actual &&
	test_cmp expect actual
'

test_expect_success 'a second run is refused, nothing changes' '
	git --git-dir=enc.git for-each-ref >before &&
	test_expect_code 2 msgw-agent -c enc.conf reencrypt --from plain.git &&
	test_grep "already has gateway .gw." err &&
	git --git-dir=enc.git for-each-ref >after &&
	test_cmp before after
'

test_expect_success 'a damaged source snapshot is never sealed' '
	cp -a plain.git bad.git &&
	blob=$(git --git-dir=bad.git rev-parse gw~1:config.tar.zst) &&
	obj=bad.git/objects/$(echo $blob | cut -c1-2)/$(echo $blob | cut -c3-) &&
	chmod u+w "$obj" && printf "garbage" >"$obj" &&
	conf enc2.conf "$TRASH/enc2.git" "keyfile:$TRASH/enc.key" &&
	msgw-agent -c enc2.conf init >out &&
	test_expect_code 1 msgw-agent -c enc2.conf reencrypt --from bad.git &&
	test_grep "snapshot $(git --git-dir=bad.git rev-parse gw~1 | cut -c1-12)" err &&
	test "$(git --git-dir=enc2.git rev-list --count gw)" = 1
'

test_done
