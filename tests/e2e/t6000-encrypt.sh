#!/bin/bash
# t6000-encrypt: an encrypted repository on one host.  init --encrypt
# makes a 0600 key file (never over an existing one) and records the key
# id; each snapshot's manifest and archive are sealed (stock git sees the
# seal's first line, never a path or a sha256), meta stays readable with
# the key id; "unchanged" works as in a plain repository.  list and
# status need no key; show, verify, extract, diff, plan and apply each
# refuse in one line naming the key id when the key is missing or
# another.  A flipped byte and a truncation in the sealed archive are
# caught by verify (naming the snapshot), by extract (nothing written)
# and by apply (the target unchanged byte for byte).  Retention prunes
# it as it prunes a plain one.
test_description='encrypted repositories: sealing, keys, damage'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

KEY="$TRASH/repo.key"

# conf_key FILE KEYSPEC: $CONF with encryption = KEYSPEC (empty: none)
conf_key() {
	{
		[ -z "$2" ] || printf 'encryption = "%s"\n' "$2"
		cat "$CONF.plain"
	} >"$1"
}

# damaged CASE: a copy of the repository whose A tip's archive is flipped
# (one byte in the middle) or truncated (its last 40 bytes cut), and its
# configuration in conf-CASE
damaged() {
	local git="git -C $TRASH/repo-$1.git" tar man meta tree commit
	rm -rf "repo-$1.git" && cp -a "$REPO" "repo-$1.git" &&
	$git cat-file blob A:config.tar.zst >"sealed-$1" &&
	python3 - "sealed-$1" "$1" <<-'EOF' &&
	import sys
	p, case = sys.argv[1], sys.argv[2]
	b = bytearray(open(p, 'rb').read())
	if case == 'flip':
	    b[len(b) // 2] ^= 0x01
	else:
	    b = b[:-40]
	open(p, 'wb').write(bytes(b))
	EOF
	tar=$($git hash-object -w "$TRASH/sealed-$1") &&
	man=$($git rev-parse A:manifest) && meta=$($git rev-parse A:meta) &&
	tree=$(printf '100644 blob %s\tconfig.tar.zst\n100644 blob %s\tmanifest\n100644 blob %s\tmeta\n' \
		"$tar" "$man" "$meta" | $git mktree) &&
	commit=$(GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@test GIT_COMMITTER_NAME=t \
		GIT_COMMITTER_EMAIL=t@test $git commit-tree "$tree" -p refs/heads/A -m "A: $1") &&
	$git update-ref refs/heads/A "$commit" &&
	sed "s|^repository = .*|repository = \"$TRASH/repo-$1.git\"|" "$CONF" >"conf-$1"
}

test_expect_success 'setup: gateways A and B, an encrypted repository' '
	gw_init A 1 1 && gw_init B 0 2 &&
	gw_write_config && mv "$CONF" "$CONF.plain" &&
	conf_key "$CONF" "keyfile:$KEY" &&
	gw_start A && gw_start B &&
	agent init --encrypt >out &&
	test_grep "^created key file .*repo.key., key id [0-9a-f]\{16\}$" out &&
	test_grep "keep a copy of it offline" out &&
	test "$(stat -c %a "$KEY")" = 600 &&
	sed -n "s/.*key id \([0-9a-f]*\)$/\1/p" out >keyid &&
	test "$(git -C "$REPO" config msgw.keyid)" = "$(cat keyid)"
'

test_expect_success 'init --encrypt never overwrites a key file' '
	cp "$KEY" key-before &&
	test_expect_code 2 agent init --encrypt &&
	test_grep "key file .*repo.key. exists; a key is never overwritten" err &&
	cmp key-before "$KEY" &&
	agent init >out &&
	test_grep "^repository encrypted with key $(cat keyid)$" out
'

test_expect_success 'a bad encryption value is a configuration error' '
	conf_key bad.conf "rot13" &&
	test_expect_code 2 msgw-agent -c bad.conf list &&
	test_grep "bad value .rot13. for .encryption." err &&
	conf_key none.conf "none" &&
	test_expect_code 2 msgw-agent -c none.conf init --encrypt &&
	test_grep "init --encrypt needs encryption = \"keyfile:PATH\" in" err
'

test_expect_success 'snapshot: manifest and archive sealed, meta in clear' '
	agent snapshot A >out &&
	test_grep "^[0-9a-f]\{12\} A: 0 modified, [0-9]* added, 0 removed$" out &&
	test "$(meta_of A key-id)" = "$(cat keyid)" &&
	test "$(meta_of A encryption)" = secretstream-xchacha20poly1305 &&
	git -C "$REPO" cat-file blob A:manifest | head -c 31 >line &&
	printf "msgw-sealed 1 %s\n" "$(cat keyid)" >expect && test_cmp expect line &&
	git -C "$REPO" cat-file blob A:config.tar.zst | head -c 31 >line && test_cmp expect line &&
	sum=$(sha256sum <A/Gateway.json | cut -d" " -f1) &&
	! git -C "$REPO" cat-file blob A:manifest | grep -a -q "$sum" &&
	! git -C "$REPO" log --format=%B A | grep -q Gateway.json &&
	git -C "$REPO" fsck --no-progress
'

test_expect_success 'unchanged is decided as in a plain repository' '
	tip=$(branch_tip A) &&
	agent snapshot A >out &&
	test_grep "^A: unchanged" out &&
	test "$(branch_tip A)" = "$tip" &&
	printf "changed\n" >>A/Templates/notification.txt &&
	agent snapshot A >out &&
	test_grep "A: 1 modified, 0 added, 0 removed$" out &&
	agent snapshot A >out && test_grep "^A: unchanged" out
'

test_expect_success 'with the key: show, verify, extract, diff work' '
	agent show A >out && test_grep "Templates/notification.txt" out &&
	agent verify --all >out && test_grep "^2 verified, 0 damaged$" out &&
	restore extract A ex >out &&
	cmp A/Gateway.json ex/Gateway.json &&
	restore diff A~1 A >out && test_grep "notification" out
'

test_expect_success 'without the key: list and status work, content is refused' '
	conf_key nokey.conf "" &&
	msgw-agent -c nokey.conf list >out && test_grep "A: 1 modified" out &&
	{ msgw-agent -c nokey.conf status >out || echo "status: $?"; } &&
	test_grep "^gateway A: OK" out &&
	want="sealed with key $(cat keyid) and no key file is configured" &&
	for cmd in "msgw-agent -c nokey.conf show A" "msgw-agent -c nokey.conf verify" \
		"msgw-restore -c nokey.conf extract A nk" "msgw-restore -c nokey.conf diff A~1 A" \
		"msgw-restore -c nokey.conf plan A --to B"; do
		test_expect_code 2 $cmd && test_grep "$want" err &&
		test $(wc -l <err) = 1 || exit 1
	done &&
	test ! -e nk &&
	test_expect_code 2 msgw-agent -c nokey.conf snapshot A &&
	test_grep "$want" err &&
	mkdir C && sed "s|/A\"|/C\"|; s|gateway \"A\"|gateway \"C\"|" nokey.conf >c-nokey.conf &&
	test_expect_code 2 msgw-agent -c c-nokey.conf snapshot C &&
	test_grep "repository .* is encrypted with key $(cat keyid) and no key file" err
'

test_expect_success 'another key is refused, naming both ids' '
	conf_key other.conf "keyfile:$TRASH/other.key" &&
	sed -i "s|^repository = .*|repository = \"$TRASH/other.git\"|" other.conf &&
	msgw-agent -c other.conf init --encrypt >out &&
	sed -i "s|^repository = .*|repository = \"$REPO\"|" other.conf &&
	other=$(sed -n "s/.*key id \([0-9a-f]*\)$/\1/p" out) &&
	gw_listing B >before &&
	test_expect_code 2 msgw-restore -c other.conf apply A --to B --yes </dev/null &&
	test_grep "key $(cat keyid)" err && test_grep "$other" err &&
	test $(wc -l <err) = 1 &&
	gw_listing B >after && test_cmp before after
'

for case in flip cut; do
	test_expect_success "a sealed archive damaged ($case): verify, extract, apply refuse" '
		damaged '$case' &&
		id=$(git -C repo-'$case'.git rev-parse A | cut -c1-12) &&
		test_expect_code 1 msgw-agent -c conf-'$case' verify &&
		test_grep "snapshot $id" err &&
		test_grep "sealed object is \(damaged\|truncated\)" err &&
		test_expect_code 1 msgw-restore -c conf-'$case' extract A ex-'$case' &&
		test ! -e ex-'$case' &&
		gw_listing B >before &&
		test_expect_code 1 msgw-restore -c conf-'$case' apply A --to B --yes </dev/null &&
		test_grep "sealed object is \(damaged\|truncated\)" err &&
		gw_listing B >after && test_cmp before after &&
		gw_no_leftovers B
	'
done

# recommit REPO-COPY META MANIFEST ARCHIVE: a new tip of A with these blobs
recommit() {
	local g="git -C $1" tree c
	tree=$(printf "100644 blob %s\tconfig.tar.zst\n100644 blob %s\tmanifest\n100644 blob %s\tmeta\n" \
		"$4" "$3" "$2" | $g mktree) &&
	c=$(GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@test GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@test \
		$g commit-tree "$tree" -p refs/heads/A -m "A: recommitted") &&
	$g update-ref refs/heads/A "$c"
}

test_expect_success 'meta is bound to the sealed files: altered, or moved, nothing opens' '
	rm -rf repo-meta.git && cp -a "$REPO" repo-meta.git &&
	g="git -C repo-meta.git" &&
	$g cat-file blob A:meta | sed "s/^gateway: A$/gateway: B/" >meta-b &&
	! cmp -s meta-b <($g cat-file blob A:meta) &&
	recommit repo-meta.git $($g hash-object -w "$TRASH/meta-b") \
		$($g rev-parse A:manifest) $($g rev-parse A:config.tar.zst) &&
	sed "s|^repository = .*|repository = \"$TRASH/repo-meta.git\"|" "$CONF" >conf-meta &&
	test_expect_code 1 msgw-agent -c conf-meta show A &&
	test_grep "manifest.: sealed object is damaged or not this snapshot.s" err &&
	recommit repo-meta.git $($g rev-parse A~1:meta) \
		$($g rev-parse A~2:manifest) $($g rev-parse A~2:config.tar.zst) &&
	test_expect_code 1 msgw-agent -c conf-meta verify A &&
	test_grep "not this snapshot.s: chunk 1 does not authenticate" err &&
	gw_listing B >before &&
	test_expect_code 1 msgw-restore -c conf-meta apply A --to B --yes </dev/null &&
	gw_listing B >after && test_cmp before after
'

test_expect_success 'a plain object where a sealed one belongs is refused' '
	rm -rf repo-plain.git && cp -a "$REPO" repo-plain.git &&
	g="git -C repo-plain.git" &&
	man=$(printf "msgw-manifest 1\n" | $g hash-object -w --stdin) &&
	tree=$(printf "100644 blob %s\tconfig.tar.zst\n100644 blob %s\tmanifest\n100644 blob %s\tmeta\n" \
		$($g rev-parse A:config.tar.zst) "$man" $($g rev-parse A:meta) | $g mktree) &&
	c=$(GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@test GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@test \
		$g commit-tree "$tree" -p refs/heads/A -m "A: plain") &&
	$g update-ref refs/heads/A "$c" &&
	sed "s|^repository = .*|repository = \"$TRASH/repo-plain.git\"|" "$CONF" >conf-plain &&
	test_expect_code 1 msgw-agent -c conf-plain show A &&
	test_grep "not sealed, but the repository is read with key" err
'

test_expect_success 'apply with the key restores A onto B' '
	restore apply A --to B --yes </dev/null >out &&
	cmp A/Gateway.json B/Gateway.json &&
	cmp A/Templates/notification.txt B/Templates/notification.txt &&
	test "$(meta_of B key-id)" = "$(cat keyid)"
'

test_expect_success 'retention prunes an encrypted repository as a plain one' '
	printf "retention {\n  keep-last = 1\n}\n" >>"$CONF" &&
	test "$(git -C "$REPO" rev-list --count A)" = 2 &&
	agent prune >out &&
	test "$(git -C "$REPO" rev-list --count A)" = 1 &&
	agent verify --all >out &&
	test_grep " 0 damaged$" out &&
	git -C "$REPO" fsck --no-progress --strict
'

test_done
