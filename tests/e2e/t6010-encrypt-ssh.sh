#!/bin/bash
# t6010-encrypt-ssh: an encrypted repository pushed to a remote behind a
# real OpenSSH server holds nothing a thief can read: stock git reads
# every object there (git cat-file --batch-all-objects --batch) and finds
# neither the gateway's private key text, nor a mailbox's encrypted key,
# nor the plain sha256 of any configuration file.  A fresh host fetches
# from the remote: without the key, or with another one, applying onto a
# second gateway is refused in one line naming the key id before
# anything on the target changes (byte for byte); with a copy of the key
# file it bootstraps the second gateway, and msgw-restore --repo URL reads
# the remote through its cache.
test_description='encrypted repository pushed over ssh, fetched by a fresh host'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

sshd_begin

# host_conf FILE DIR KEYSPEC: a host's configuration (gateways A and B, its
# repository and state under DIR, the remote "offsite"), KEYSPEC "" or
# "keyfile:PATH"
host_conf() {
	{
		[ -z "$3" ] || printf 'encryption = "%s"\n' "$3"
		printf 'repository = "%s"\nstate-dir = "%s"\n' "$2/repo.git" "$2/state"
		gw_section A
		gw_section B
		printf 'remote "offsite" {\n  url = "%s"\n  identity = "%s"\n  known-hosts = "%s"\n}\n' \
			"$SSH_URL_BASE$TRASH/remote.git" "$SSH_KEY" "$SSH_KNOWN"
	} >"$1"
}

test_expect_success 'setup: gateway A with a private key, an encrypted repository, a push' '
	gw_init A 2 1 && gw_init B 0 2 &&
	openssl genpkey -algorithm ed25519 -out A/Certificates/gateway.key 2>/dev/null &&
	git init -q --bare remote.git &&
	host_conf "$CONF" "$TRASH" "keyfile:$TRASH/repo.key" &&
	gw_start A && gw_start B &&
	agent init --encrypt >out &&
	sed -n "s/.*key id \([0-9a-f]*\)$/\1/p" out >keyid &&
	agent snapshot A >out &&
	printf "one more line\n" >>A/Templates/notification.txt &&
	agent snapshot A --tag changed >out &&
	agent push >out &&
	test_grep "^offsite: 2 of 2 refs updated$" out &&
	git --git-dir=remote.git fsck --no-progress
'

test_expect_success 'no object on the remote holds a secret or a plain sha256' '
	git --git-dir=remote.git cat-file --batch-all-objects --batch >objects &&
	test $(git --git-dir=remote.git cat-file --batch-all-objects --batch-check | wc -l) -ge 8 &&
	sed -n "2p" A/Certificates/gateway.key >secret-line &&
	test -s secret-line &&
	! grep -a -F -q -f secret-line objects &&
	python3 -c "import json,sys
d = json.load(open(\"A/Gateway.json\"))
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == \"encryptedPrivateKey\": print(v)
            walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
walk(d)" >mbx-keys &&
	test $(wc -l <mbx-keys) = 2 &&
	! grep -a -F -q -f mbx-keys objects &&
	(cd A && find . -path ./Logs -prune -o -type f -print0 | xargs -0 sha256sum) |
		cut -d" " -f1 >sums &&
	test $(wc -l <sums) -ge 5 &&
	! grep -a -F -q -f sums objects &&
	! grep -a -q "Gateway.json\|gateway.key\|BEGIN PRIVATE" objects &&
	test_grep "^key-id: $(cat keyid)$" objects
'

test_expect_success 'a fresh host without the key: fetch works, apply is refused' '
	mkdir nokey && host_conf nokey/c.conf "$TRASH/nokey" "" &&
	msgw-agent -c nokey/c.conf init >out &&
	msgw-restore -c nokey/c.conf fetch >out &&
	msgw-restore -c nokey/c.conf list A >out &&
	test_grep "A: 1 modified" out &&
	cp -a B B.before &&
	test_expect_code 2 msgw-restore -c nokey/c.conf apply A --to B --yes </dev/null &&
	test_grep "sealed with key $(cat keyid) and no key file is configured" err &&
	test $(wc -l <err) = 1 &&
	diff -r --no-dereference B.before B &&
	test -z "$(git --git-dir=nokey/repo.git rev-parse -q --verify refs/heads/B)"
'

test_expect_success 'a fresh host with another key: apply is refused' '
	mkdir other && host_conf other/c.conf "$TRASH/other" "keyfile:$TRASH/other/repo.key" &&
	msgw-agent -c other/c.conf init --encrypt >out &&
	other=$(sed -n "s/.*key id \([0-9a-f]*\)$/\1/p" out) &&
	msgw-restore -c other/c.conf fetch >out &&
	test_expect_code 2 msgw-restore -c other/c.conf apply A --to B --yes </dev/null &&
	test_grep "sealed with key $(cat keyid), not with key $other of" err &&
	test $(wc -l <err) = 1 &&
	diff -r --no-dereference B.before B &&
	test -z "$(git --git-dir=other/repo.git rev-parse -q --verify refs/heads/B)"
'

test_expect_success 'a fresh host with the key file fetches and bootstraps B' '
	mkdir fresh && cp repo.key fresh/repo.key && chmod 600 fresh/repo.key &&
	host_conf fresh/c.conf "$TRASH/fresh" "keyfile:$TRASH/fresh/repo.key" &&
	msgw-agent -c fresh/c.conf init >out &&
	test_grep "^repository encrypted with key $(cat keyid)$" out &&
	msgw-restore -c fresh/c.conf fetch >out &&
	msgw-agent -c fresh/c.conf verify --all >out &&
	test_grep "^2 verified, 0 damaged$" out &&
	msgw-restore -c fresh/c.conf apply changed --to B --yes </dev/null >out &&
	test_grep "^restored [0-9a-f]\{12\} onto B" out &&
	gw_config_listing A >config-A && gw_config_listing B >config-B &&
	test_cmp config-A config-B &&
	test "$(git --git-dir=fresh/repo.git show B:meta | sed -n "s/^key-id: //p")" = \
		"$(cat keyid)"
'

test_expect_success '--repo URL reads the remote encrypted repository with the key' '
	msgw-restore -c fresh/c.conf --repo "$SSH_URL_BASE$TRASH/remote.git" extract changed url-ex >out &&
	cmp A/Gateway.json url-ex/Gateway.json &&
	test_expect_code 2 msgw-restore -c nokey/c.conf --repo "$SSH_URL_BASE$TRASH/remote.git" extract changed url-nk &&
	test_grep "sealed with key $(cat keyid) and no key file is configured" err &&
	test ! -e url-nk
'

test_expect_success 'the fresh host pushes its sealed snapshots back' '
	msgw-agent -c fresh/c.conf push >out &&
	git --git-dir=remote.git cat-file blob B:manifest | head -c 31 >line &&
	printf "msgw-sealed 1 %s\n" "$(cat keyid)" >expect &&
	test_cmp expect line
'

test_done
