#!/bin/bash
# t4300-ssh-auth: client authentication.  Key files of each kind (ed25519,
# ECDSA, RSA), an encrypted key whose passphrase comes from a file, and the
# ssh-agent when no identity is configured all log in; a key the server
# does not know, a wrong passphrase, no identity without an agent, and an
# agent without the right key all stop with a clear authentication error
# naming host, user and key.
test_description='ssh authentication: key files, passphrases, ssh-agent'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"

sshd_begin
test_when_finished '[ -f agent.pid ] && kill "$(cat agent.pid)"; rm -f agent.pid'

# start_agent: an ssh-agent of the test's own on $TRASH/agent.sock
start_agent() {
	eval "$(ssh-agent -s -a "$TRASH/agent.sock")" >/dev/null &&
	echo "$SSH_AGENT_PID" >"$TRASH/agent.pid"
}

test_expect_success 'setup: a gateway, the repository' '
	msgw-sim init gw --domain example.test --mailboxes 1 --seed 4300 >ids &&
	sshd_identityless_conf ok.conf "identity = \"$SSH_KEY\"" &&
	msgw-agent -c ok.conf init &&
	msgw-agent -c ok.conf snapshot gw >out
'

test_expect_success 'a key the server does not know: authentication failed, key named' '
	ssh-keygen -q -t ed25519 -N "" -f stranger &&
	sshd_identityless_conf stranger.conf "identity = \"$TRASH/stranger\"" &&
	test_expect_code 1 msgw-agent -c stranger.conf snapshot gw &&
	test_grep "^msgw-agent: ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: authentication failed for user .$SSH_USER. with key .$TRASH/stranger.: " err
'

for kind in "ecdsa -b 256" "ecdsa -b 521"; do
	name=$(echo "$kind" | tr -d " -")
	test_expect_success "a $kind key logs in" '
		ssh-keygen -q -t $kind -N "" -f key-$name &&
		cat key-$name.pub >>"$SSHD_DIR/authorized_keys" &&
		sshd_identityless_conf $name.conf "identity = \"$TRASH/key-$name\"" &&
		msgw-agent -c $name.conf snapshot gw >out &&
		test_grep "gw: unchanged" out
	'
done

test_expect_success 'an RSA key where the server still takes ssh-rsa signatures' '
	ssh-keygen -q -t rsa -b 3072 -N "" -f key-rsa &&
	cat key-rsa.pub >>"$SSHD_DIR/authorized_keys" &&
	sshd_identityless_conf rsa.conf "identity = \"$TRASH/key-rsa\"" &&
	sshd_stop &&
	echo "PubkeyAcceptedAlgorithms +ssh-rsa" >>"$SSHD_DIR/sshd_config" &&
	sshd_start &&
	msgw-agent -c rsa.conf snapshot gw >out &&
	test_grep "gw: unchanged" out
'

test_expect_success 'an RSA key refused for its SHA-1 signature: the error says why' '
	sshd_stop &&
	sshd_write_config &&
	sshd_start &&
	if pkg-config --atleast-version=1.11 libssh2 2>/dev/null; then
		msgw-agent -c rsa.conf snapshot gw >out
	else
		test_expect_code 1 msgw-agent -c rsa.conf snapshot gw &&
		test_grep "authentication failed for user .$SSH_USER. with key .$TRASH/key-rsa.: .*use an ed25519 or ECDSA key)$" err
	fi
'

test_expect_success 'an encrypted key with its passphrase from passphrase-file' '
	ssh-keygen -q -t ed25519 -N "correct horse" -f locked &&
	cat locked.pub >>"$SSHD_DIR/authorized_keys" &&
	printf "correct horse\n" >locked.pass &&
	chmod 600 locked.pass &&
	sshd_identityless_conf locked.conf "identity = \"$TRASH/locked\"" "passphrase-file = \"$TRASH/locked.pass\"" &&
	msgw-agent -c locked.conf snapshot gw >out &&
	test_grep "gw: unchanged" out
'

test_expect_success 'a wrong passphrase: authentication failed, key named' '
	printf "wrong\n" >wrong.pass &&
	chmod 600 wrong.pass &&
	sshd_identityless_conf wrong.conf "identity = \"$TRASH/locked\"" "passphrase-file = \"$TRASH/wrong.pass\"" &&
	test_expect_code 1 msgw-agent -c wrong.conf snapshot gw &&
	test_grep "authentication failed for user .$SSH_USER. with key .$TRASH/locked." err
'

test_expect_success 'an encrypted key without a passphrase-file: authentication failed' '
	sshd_identityless_conf nopass.conf "identity = \"$TRASH/locked\"" &&
	test_expect_code 1 msgw-agent -c nopass.conf snapshot gw &&
	test_grep "authentication failed for user .$SSH_USER. with key .$TRASH/locked." err
'

test_expect_success 'no identity and no ssh-agent: a clear error' '
	sshd_identityless_conf agent.conf &&
	test_expect_code 1 msgw-agent -c agent.conf snapshot gw &&
	test_grep "authentication failed for user .$SSH_USER.: no identity configured and no ssh-agent (SSH_AUTH_SOCK is not set)" err
'

test_expect_success 'no identity: the ssh-agent logs in with its key' '
	start_agent &&
	ssh-add -q "$SSH_KEY" 2>/dev/null &&
	msgw-agent -c agent.conf snapshot gw >out &&
	test_grep "gw: unchanged" out
'

test_expect_success 'an ssh-agent without the right key: authentication failed' '
	SSH_AUTH_SOCK="$TRASH/agent.sock" &&
	export SSH_AUTH_SOCK &&
	ssh-add -q -D 2>/dev/null &&
	ssh-add -q stranger 2>/dev/null &&
	test_expect_code 1 msgw-agent -c agent.conf snapshot gw &&
	test_grep "authentication failed for user .$SSH_USER. with the ssh-agent (1 key tried)" err
'

test_expect_success 'a missing identity file is a configuration error' '
	sshd_identityless_conf gone.conf "identity = \"$TRASH/gone\"" &&
	test_expect_code 2 msgw-agent -c gone.conf snapshot gw &&
	test_grep "gone" err
'

test_done
