#!/bin/bash
# t4600-ssh-push-auto: a remote with push = true gets every snapshot
# without a separate push.  When the remote is down the snapshot still
# succeeds: the failure is a warning, recorded in the state directory, and
# the next run (even one that finds the gateway unchanged) pushes again.
test_description='automatic push after snapshots; a failed push never fails a snapshot'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
agent() { msgw-agent -c "$CONF" "$@"; }

sshd_begin

test_expect_success 'setup: a gateway, a remote with push = true' '
	msgw-sim init gw --domain example.test --mailboxes 1 --seed 4600 >ids &&
	git init -q --bare remote.git &&
	cat >"$CONF" <<-EOF &&
	repository = "$TRASH/repo.git"
	state-dir = "$TRASH/state"
	gateway "gw" {
	  location = "$TRASH/gw"
	  exclude = {"Logs/**"}
	}
	remote "offsite" {
	  url = "$SSH_URL_BASE$TRASH/remote.git"
	  identity = "$SSH_KEY"
	  known-hosts = "$SSH_KNOWN"
	  push = true
	}
	EOF
	agent init
'

test_expect_success 'a snapshot is pushed at once' '
	agent snapshot >out &&
	git --git-dir=repo.git rev-parse gw >expect &&
	git --git-dir=remote.git rev-parse gw >actual &&
	test_cmp expect actual &&
	test_grep "^last-error: $" state/push-offsite
'

test_expect_success 'the remote down: the snapshot succeeds, the failure is recorded' '
	sshd_stop &&
	printf "changed\n" >gw/Templates/bounce.txt &&
	agent snapshot >out 2>err &&
	test_grep "gw: 1 modified, 0 added, 0 removed$" out &&
	test_grep "push to remote .offsite. failed, retried on the next run: remote .offsite.: push: .*Connection refused" err &&
	test_grep "^last-error: remote .offsite.: push: .*Connection refused$" state/push-offsite &&
	git --git-dir=repo.git rev-parse gw >local &&
	git --git-dir=remote.git rev-parse gw >remote &&
	! cmp -s local remote
'

test_expect_success 'the next run pushes again, even with the gateway unchanged' '
	sshd_start &&
	agent snapshot >out 2>err &&
	test_grep "^gw: unchanged" out &&
	git --git-dir=repo.git rev-parse gw >expect &&
	git --git-dir=remote.git rev-parse gw >actual &&
	test_cmp expect actual &&
	test_grep "^last-error: $" state/push-offsite
'

test_done
