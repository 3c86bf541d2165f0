#!/bin/bash
# t6031-encrypt-init-check: init --encrypt checks the repository before it
# makes a key.  A repository that already records a key (a fresh random
# key can never be that one) and a plain repository that holds snapshots
# are each refused (exit 2, one line) with no key file left behind; an
# empty repository still gets its key.
test_description='init --encrypt: check the repository first, create the key after'
. "$(dirname "$0")/test-lib.sh"

# conf NAME REPO KEY
conf() {
	cat >"$1" <<-EOF
	encryption = "keyfile:$TRASH/$3"
	repository = "$TRASH/$2"
	state-dir  = "$TRASH/state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	  exclude  = {"Logs/**"}
	}
	EOF
}

test_expect_success 'setup: an encrypted repository, a plain one with a snapshot' '
	msgw-sim init gw1 --domain example.test --mailboxes 1 --seed t6031 >ids &&
	conf enc.conf enc.git one.key &&
	msgw-agent -c enc.conf init --encrypt >out &&
	id=$(sed -n "s/.*key id \([0-9a-f]*\)$/\1/p" out) && test -n "$id" &&
	echo "$id" >id &&
	grep -v "^encryption" enc.conf | sed "s|enc.git|plain.git|" >plain.conf &&
	msgw-agent -c plain.conf init >out &&
	msgw-agent -c plain.conf snapshot >out
'

test_expect_success 'a repository recording another key: refused, no key file made' '
	conf two.conf enc.git two.key &&
	test_expect_code 2 msgw-agent -c two.conf init --encrypt &&
	test ! -e two.key &&
	test_grep "repository .*enc.git. is encrypted with key $(cat id) already" err &&
	test $(wc -l <err) = 1 &&
	! grep -q "created key file" out &&
	test "$(git -C enc.git config msgw.keyid)" = "$(cat id)"
'

test_expect_success 'a plain repository holding snapshots: refused, no key file made' '
	conf plain-enc.conf plain.git three.key &&
	test_expect_code 2 msgw-agent -c plain-enc.conf init --encrypt &&
	test ! -e three.key &&
	test_grep "is plain and holds snapshots; move them .* reencrypt" err &&
	! git -C plain.git config msgw.keyid
'

test_expect_success 'an existing key file is still never overwritten' '
	cp one.key one.before &&
	test_expect_code 2 msgw-agent -c enc.conf init --encrypt 2>err &&
	test_grep "key file .*one.key. exists; a key is never overwritten" err &&
	cmp one.before one.key
'

test_expect_success 'an empty repository still gets a new key' '
	conf four.conf four.git four.key &&
	grep -v "^encryption" four.conf >four-plain.conf &&
	msgw-agent -c four-plain.conf init >/dev/null &&
	msgw-agent -c four.conf init --encrypt >out &&
	test_grep "^created key file .*four.key" out &&
	test "$(stat -c %a four.key)" = 600 &&
	test_grep "^repository encrypted with key $(git -C four.git config msgw.keyid)$" out
'

test_done
