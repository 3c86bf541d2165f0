#!/bin/bash
# t4810-ssh-secret-modes: a private key (identity) or passphrase file that
# group or others may read is refused, as OpenSSH refuses such keys, with
# one line naming the file and the chmod to run; nothing is written.  After
# that chmod the same files log in.  The same holds for a remote's
# identity (libgit2's ssh transport) and passphrase file.
test_description='identity and passphrase files readable by others are refused'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

sshd_begin

test_expect_success 'setup: a gateway, a key of its own, the repository' '
	msgw-sim init gw --domain example.test --mailboxes 1 --seed 4810 >ids &&
	ssh-keygen -q -t ed25519 -N "" -f key &&
	cat key.pub >>"$SSHD_DIR/authorized_keys" &&
	sshd_identityless_conf key.conf "identity = \"$TRASH/key\"" &&
	msgw-agent -c key.conf init &&
	msgw-agent -c key.conf snapshot gw >out &&
	git --git-dir=repo.git rev-parse gw >first
'

for mode in 0640 0604 0644 0660; do
	test_expect_success "an identity of mode $mode is refused with the chmod to run" '
		chmod $mode key &&
		printf "changed %s\n" $mode >gw/Templates/bounce.txt &&
		test_expect_code 1 msgw-agent -c key.conf snapshot gw &&
		test_grep "^msgw-agent: ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: identity .$TRASH/key. is accessible by group or others (mode $mode): run .chmod 600 $TRASH/key.$" err &&
		test $(wc -l <err) = 1 &&
		git --git-dir=repo.git rev-parse gw >now &&
		test_cmp first now
	'
done

test_expect_success 'after chmod 600 the same identity logs in' '
	chmod 600 key &&
	msgw-agent -c key.conf snapshot gw >out &&
	test_grep "^[0-9a-f]\{12\} gw: " out
'

test_expect_success 'a passphrase file group can read is refused, then works after chmod 600' '
	ssh-keygen -q -t ed25519 -N "correct horse" -f locked &&
	cat locked.pub >>"$SSHD_DIR/authorized_keys" &&
	printf "correct horse\n" >locked.pass &&
	chmod 640 locked.pass &&
	sshd_identityless_conf locked.conf "identity = \"$TRASH/locked\"" "passphrase-file = \"$TRASH/locked.pass\"" &&
	git --git-dir=repo.git rev-parse gw >before &&
	printf "locked\n" >gw/Templates/bounce.txt &&
	test_expect_code 1 msgw-agent -c locked.conf snapshot gw &&
	test_grep "^msgw-agent: ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: passphrase file .$TRASH/locked.pass. is accessible by group or others (mode 0640): run .chmod 600 $TRASH/locked.pass.$" err &&
	git --git-dir=repo.git rev-parse gw >now &&
	test_cmp before now &&
	chmod 600 locked.pass &&
	msgw-agent -c locked.conf snapshot gw >out &&
	test_grep "^[0-9a-f]\{12\} gw: " out
'

test_expect_success "a remote's identity others can read is refused before connecting" '
	git init -q --bare remote.git &&
	cat >remote.conf <<-EOF &&
	repository = "$TRASH/repo.git"
	state-dir = "$TRASH/state"
	gateway "gw" {
	  location = "$TRASH/gw"
	}
	remote "offsite" {
	  url = "$SSH_URL_BASE$TRASH/remote.git"
	  identity = "$TRASH/key"
	  known-hosts = "$SSH_KNOWN"
	}
	EOF
	chmod 644 key &&
	test_expect_code 1 msgw-agent -c remote.conf push &&
	test_grep "remote .offsite.: identity .$TRASH/key. is accessible by group or others (mode 0644): run .chmod 600 $TRASH/key.$" err &&
	test_expect_code 1 git --git-dir=remote.git rev-parse --verify -q refs/heads/gw &&
	chmod 600 key &&
	msgw-agent -c remote.conf push >out &&
	git --git-dir=repo.git rev-parse gw >expect &&
	git --git-dir=remote.git rev-parse refs/heads/gw >actual &&
	test_cmp expect actual
'

test_done
