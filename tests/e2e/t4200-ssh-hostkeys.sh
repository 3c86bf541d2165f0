#!/bin/bash
# t4200-ssh-hostkeys: host keys are verified against the configured
# known_hosts and never trusted on first use.  An unknown host is refused
# with its fingerprint and the exact line to add; 'msgw-agent trust' shows
# the key and records it only with a yes (--yes here: there is no
# terminal); a changed host key is refused with the new fingerprint and
# nothing is written, neither in the repository nor on the gateway; trust
# refuses to replace a recorded key.  Also: a port 22 entry does not vouch
# for another port, hashed entries work.
test_description='host key verification and msgw-agent trust'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
agent() { msgw-agent -c "$CONF" "$@"; }
restore() { msgw-restore -c "$CONF" "$@"; }

sshd_begin

# fingerprint: the SHA256 fingerprint OpenSSH shows for the server's key
fingerprint() { ssh-keygen -lf "$SSHD_DIR/host_ed25519.pub" | cut -d" " -f2; }

test_expect_success 'setup: a gateway reached over ssh, known_hosts empty' '
	msgw-sim init gw --domain example.test --mailboxes 1 --seed 4200 >ids &&
	: >"$SSH_KNOWN" &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$TRASH/repo.git" "$TRASH/state" >"$CONF" &&
	sshd_gateway_conf "$CONF" gw "$SSH_URL_BASE$TRASH/gw" "exclude = {\"Logs/**\"}" &&
	cat >>"$CONF" <<-EOF &&
	gateway "here" {
	  location = "$TRASH/gw"
	}
	EOF
	agent init
'

test_expect_success 'an unknown host is refused with its fingerprint and the line to add' '
	test_expect_code 1 agent snapshot gw &&
	test_grep "ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: host key verification failed: no ssh-ed25519 key for .\[127.0.0.1\]:$SSHD_PORT. in .$SSH_KNOWN." err &&
	test_grep "(the server offers $(fingerprint))" err &&
	sshd_known_line >line &&
	grep -F -q "add this line: $(cat line)" err &&
	test_expect_code 1 git --git-dir=repo.git rev-parse --verify -q gw &&
	test ! -s "$SSH_KNOWN"
'

test_expect_success 'trust without a terminal and without --yes records nothing' '
	test_expect_code 2 agent trust gw </dev/null &&
	test_grep "fingerprint: $(fingerprint)$" out &&
	test_grep "type: *ssh-ed25519$" out &&
	test_grep "no terminal to confirm on" err &&
	test ! -s "$SSH_KNOWN"
'

test_expect_success 'trust --yes records the line, then the snapshot works' '
	agent trust gw --yes >out &&
	test_grep "host key of .$SSH_USER@127.0.0.1:$SSHD_PORT. (gateway .gw.):" out &&
	test_grep "fingerprint: $(fingerprint)$" out &&
	sshd_known_line >expect &&
	test_cmp expect "$SSH_KNOWN" &&
	agent snapshot gw >out &&
	test_grep "^[0-9a-f]\{12\} gw: " out
'

test_expect_success 'trust of a key already recorded says so and changes nothing' '
	cp "$SSH_KNOWN" before &&
	agent trust gw >out &&
	test_grep "already recorded in .$SSH_KNOWN." out &&
	test_cmp before "$SSH_KNOWN"
'

test_expect_success 'a changed host key is refused with the new fingerprint' '
	git --git-dir=repo.git rev-parse gw >before &&
	sshd_stop && sshd_new_host_key && sshd_start &&
	printf "changed\n" >gw/Templates/bounce.txt &&
	test_expect_code 1 agent snapshot gw &&
	test_grep "host key verification failed: the ssh-ed25519 key of .\[127.0.0.1\]:$SSHD_PORT. has CHANGED: the server offers $(fingerprint)" err &&
	test_grep "remove the old line by hand" err &&
	git --git-dir=repo.git rev-parse gw >after &&
	test_cmp before after
'

test_expect_success 'a changed host key: a restore writes nothing on the gateway' '
	tree_listing gw >before &&
	test_expect_code 1 restore apply gw --to gw --yes &&
	test_grep "has CHANGED" err &&
	tree_listing gw >after &&
	test_cmp before after
'

test_expect_success 'trust refuses to replace a different recorded key' '
	cp "$SSH_KNOWN" before &&
	test_expect_code 1 agent trust gw --yes &&
	test_grep "fingerprint: $(fingerprint)$" out &&
	test_grep "REFUSED: .$SSH_KNOWN. records a DIFFERENT ssh-ed25519 key" err &&
	test_grep "remove the old line from .$SSH_KNOWN. by hand" err &&
	test_cmp before "$SSH_KNOWN"
'

test_expect_success 'once the old line is removed by hand, trust and snapshot work' '
	: >"$SSH_KNOWN" &&
	agent trust gw --yes >out &&
	agent snapshot gw >out &&
	test_grep "gw: 1 modified, 0 added, 0 removed$" out
'

test_expect_success 'an entry for port 22 does not vouch for another port' '
	printf "127.0.0.1 %s\n" "$(cut -d" " -f1,2 "$SSHD_DIR/host_ed25519.pub")" >port22 &&
	sed "s|$SSH_KNOWN|$TRASH/port22|" "$CONF" >p22.conf &&
	test_expect_code 1 msgw-agent -c p22.conf snapshot gw &&
	test_grep "no ssh-ed25519 key for .\[127.0.0.1\]:$SSHD_PORT." err
'

test_expect_success 'hashed known_hosts entries work' '
	sshd_known_line >hashed &&
	ssh-keygen -H -f hashed 2>/dev/null &&
	! grep -q 127.0.0.1 hashed &&
	sed "s|$SSH_KNOWN|$TRASH/hashed|" "$CONF" >h.conf &&
	printf "again\n" >gw/Templates/bounce.txt &&
	msgw-agent -c h.conf snapshot gw >out &&
	test_grep "gw: 1 modified" out
'

test_expect_success 'a line libssh2 does not understand does not spoil the file' '
	{ echo "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJunk" &&
	  echo "# a comment" && echo && sshd_known_line; } >mixed &&
	sed "s|$SSH_KNOWN|$TRASH/mixed|" "$CONF" >m.conf &&
	msgw-agent -c m.conf snapshot gw >out &&
	test_grep "gw: unchanged" out
'

test_expect_success 'trust of a local gateway or an unknown name: exit 2' '
	test_expect_code 2 agent trust here --yes &&
	test_grep "not reached over ssh" err &&
	test_expect_code 2 agent trust nosuch --yes &&
	test_grep "no gateway or remote named .nosuch." err &&
	test_expect_code 2 agent trust &&
	test_grep "^usage: msgw-agent trust" err
'

test_done
