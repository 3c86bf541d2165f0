#!/bin/bash
# t4800-ssh-known-hosts-markers: known_hosts lines with a marker, against a
# real sshd.  A key marked "@revoked" is refused even though a plain line
# records it too (as OpenSSH does), by snapshot and by trust, naming the
# file and the line, and nothing is written; without the revocation the
# same key works.  "@cert-authority" lines are not supported: a warning
# names the file and line, and the line vouches for nothing.
test_description='known_hosts @revoked and @cert-authority lines'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
agent() { msgw-agent -c "$CONF" "$@"; }

sshd_begin

fingerprint() { ssh-keygen -lf "$SSHD_DIR/host_ed25519.pub" | cut -d" " -f2; }
host_key() { cut -d" " -f1,2 "$SSHD_DIR/host_ed25519.pub"; }

test_expect_success 'setup: a gateway over ssh, its key recorded' '
	msgw-sim init gw --domain example.test --mailboxes 1 --seed 4800 >ids &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$TRASH/repo.git" "$TRASH/state" >"$CONF" &&
	sshd_gateway_conf "$CONF" gw "$SSH_URL_BASE$TRASH/gw" "exclude = {\"Logs/**\"}" &&
	agent init &&
	agent snapshot gw >out &&
	git --git-dir=repo.git rev-parse gw >first
'

test_expect_success 'a revoked key is refused beside a plain line for it, file and line named' '
	{
		sshd_known_line &&
		echo "# the old host key leaked" &&
		echo "@revoked [127.0.0.1]:$SSHD_PORT $(host_key)"
	} >"$SSH_KNOWN" &&
	cp "$SSH_KNOWN" known.before &&
	printf "changed\n" >gw/Templates/bounce.txt &&
	test_expect_code 1 agent snapshot gw &&
	test_grep "^msgw-agent: ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: host key verification failed: the ssh-ed25519 key of .\[127.0.0.1\]:$SSHD_PORT. ($(fingerprint)) is revoked by .$SSH_KNOWN. line 3$" err &&
	test $(wc -l <err) = 1 &&
	git --git-dir=repo.git rev-parse gw >now &&
	test_cmp first now &&
	test_cmp known.before "$SSH_KNOWN"
'

test_expect_success 'trust refuses a revoked key and records nothing' '
	test_expect_code 1 agent trust gw --yes &&
	test_grep "is revoked by .$SSH_KNOWN. line 3$" err &&
	test_cmp known.before "$SSH_KNOWN"
'

test_expect_success 'a hashed revocation counts too' '
	cp known.before hashed &&
	ssh-keygen -q -H -f hashed 2>/dev/null &&
	grep -v "^#" hashed >hashed.lines &&
	sed -n 1p hashed.lines >"$SSH_KNOWN" &&
	printf "@revoked " >>"$SSH_KNOWN" &&
	sed -n 1p hashed.lines >>"$SSH_KNOWN" &&
	test_expect_code 1 agent snapshot gw &&
	test_grep "is revoked by .$SSH_KNOWN. line 2$" err
'

test_expect_success 'without the revocation the same key works' '
	sshd_known_line >"$SSH_KNOWN" &&
	agent snapshot gw >out &&
	test_grep "^[0-9a-f]\{12\} gw: " out
'

test_expect_success 'a @cert-authority line is warned about, with file and line, and used for nothing' '
	{
		echo "@cert-authority [127.0.0.1]:$SSHD_PORT $(host_key)"
	} >"$SSH_KNOWN" &&
	test_expect_code 1 agent snapshot gw &&
	test_grep "warning: known-hosts .$SSH_KNOWN. line 1: @cert-authority lines are not supported, ignored" err &&
	test_grep "host key verification failed: no ssh-ed25519 key for .\[127.0.0.1\]:$SSHD_PORT." err &&
	{
		echo "@cert-authority *.example.com $(host_key)" &&
		sshd_known_line
	} >"$SSH_KNOWN" &&
	printf "again\n" >gw/Templates/bounce.txt &&
	agent snapshot gw >out 2>err &&
	test_grep "^[0-9a-f]\{12\} gw: " out &&
	test_grep "warning: known-hosts .$SSH_KNOWN. line 1: @cert-authority lines are not supported" err
'

test_done
