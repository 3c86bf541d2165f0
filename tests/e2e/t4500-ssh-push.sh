#!/bin/bash
# t4500-ssh-push: repository remotes over ssh (libgit2's ssh transport with
# our host key check and key).  msgw-agent push sends every branch and tag
# to a bare repository behind the test's OpenSSH server, and stock git
# sees them there; msgw-restore fetch fills a new, empty repository on
# another "host" from it.  Branches only move forward both ways.  A push
# that fails (refused, server down, unknown host key, wrong key) exits 1
# and is recorded in the state directory; trust works for remotes too.
test_description='push to and fetch from a remote repository over ssh'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
FRESH="$TRASH/fresh.conf"
agent() { msgw-agent -c "$CONF" "$@"; }
GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@test GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@test
export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL

sshd_begin

# remote_conf FILE REPOSITORY STATE [KNOWN_HOSTS [IDENTITY]]: a configuration
# with gateway gw (local) and the remote "offsite" over ssh
remote_conf() {
	cat >"$1" <<-EOF
	repository = "$2"
	state-dir = "$3"
	gateway "gw" {
	  location = "$TRASH/gw"
	  exclude = {"Logs/**"}
	}
	remote "offsite" {
	  url = "$SSH_URL_BASE$TRASH/remote.git"
	  identity = "${5:-$SSH_KEY}"
	  known-hosts = "${4:-$SSH_KNOWN}"
	}
	EOF
}

test_expect_success 'setup: a gateway, two snapshots, a bare remote' '
	msgw-sim init gw --domain example.test --mailboxes 1 --seed 4500 >ids &&
	git init -q --bare remote.git &&
	remote_conf "$CONF" "$TRASH/repo.git" "$TRASH/state" &&
	agent init &&
	agent snapshot gw >out &&
	printf "v2\n" >gw/Templates/bounce.txt &&
	agent snapshot gw --tag first-change >out
'

test_expect_success 'push sends the branch and the tag; stock git sees them' '
	agent push >out &&
	test_grep "^offsite: 2 of 2 refs updated$" out &&
	git --git-dir=repo.git rev-parse gw >expect &&
	git --git-dir=remote.git rev-parse refs/heads/gw >actual &&
	test_cmp expect actual &&
	git --git-dir=remote.git rev-parse refs/tags/first-change >actual &&
	test_cmp expect actual &&
	git --git-dir=remote.git fsck --no-progress &&
	git --git-dir=remote.git show gw:manifest | head -n1 >line &&
	echo "msgw-manifest 1" >expect &&
	test_cmp expect line
'

test_expect_success 'the push is recorded in the state directory' '
	test_grep "^last-attempt: [0-9-]*T[0-9:]*Z$" state/push-offsite &&
	test_grep "^last-success: [0-9-]*T[0-9:]*Z$" state/push-offsite &&
	test_grep "^last-error: $" state/push-offsite
'

test_expect_success 'a second push: up to date; a named remote; a bad name' '
	agent push offsite >out &&
	test_grep "^offsite: up to date (2 refs)$" out &&
	test_expect_code 2 agent push nowhere &&
	test_grep "unknown remote .nowhere." err
'

test_expect_success 'fetch fills a new, empty repository on another host' '
	remote_conf "$FRESH" "$TRASH/fresh/repo.git" "$TRASH/fresh/state" &&
	msgw-restore -c "$FRESH" fetch >out &&
	test_grep "^offsite: 2 refs updated$" out &&
	git --git-dir=repo.git rev-parse gw >expect &&
	git --git-dir=fresh/repo.git rev-parse gw >actual &&
	test_cmp expect actual &&
	git --git-dir=fresh/repo.git rev-parse first-change >actual &&
	test_cmp expect actual &&
	test "$(stat -c %a fresh/repo.git)" = 700 &&
	msgw-restore -c "$FRESH" list >out &&
	test $(grep -c "^gw " out) = 2 &&
	msgw-agent -c "$FRESH" verify >out &&
	test -z "$(git --git-dir=fresh/repo.git for-each-ref refs/msgw-fetch)"
'

test_expect_success 'fetch again: up to date; a new snapshot arrives after a push' '
	msgw-restore -c "$FRESH" fetch offsite >out &&
	test_grep "^offsite: up to date$" out &&
	printf "v3\n" >gw/Templates/bounce.txt &&
	agent snapshot gw >out &&
	agent push >out &&
	test_grep "^offsite: 1 of 2 refs updated$" out &&
	msgw-restore -c "$FRESH" fetch >out &&
	test_grep "^offsite: 1 refs updated$" out &&
	git --git-dir=repo.git rev-parse gw >expect &&
	git --git-dir=fresh/repo.git rev-parse gw >actual &&
	test_cmp expect actual
'

test_expect_success 'fetch never rewinds a branch with local commits' '
	tree=$(git --git-dir=fresh/repo.git rev-parse gw^{tree}) &&
	local=$(git --git-dir=fresh/repo.git commit-tree -p gw -m "made here" $tree) &&
	git --git-dir=fresh/repo.git update-ref refs/heads/gw $local &&
	msgw-restore -c "$FRESH" fetch 2>err >out &&
	test_grep "^offsite: up to date$" out &&
	test_grep "refs/heads/gw. differs here and there and is not a fast-forward: kept" err &&
	echo $local >expect &&
	git --git-dir=fresh/repo.git rev-parse gw >actual &&
	test_cmp expect actual
'

test_expect_success 'a push the remote refuses (not a fast-forward): exit 1, recorded' '
	tree=$(git --git-dir=remote.git rev-parse gw^{tree}) &&
	theirs=$(git --git-dir=remote.git commit-tree -p gw -m "made there" $tree) &&
	git --git-dir=remote.git update-ref refs/heads/gw $theirs &&
	success=$(grep "^last-success:" state/push-offsite) &&
	test_expect_code 1 agent push &&
	test_grep "^msgw-agent: remote .offsite.: push: " err &&
	test_grep "^last-error: remote .offsite.: push: " state/push-offsite &&
	test_grep "^$success$" state/push-offsite &&
	echo $theirs >expect &&
	git --git-dir=remote.git rev-parse gw >actual &&
	test_cmp expect actual &&
	git --git-dir=remote.git update-ref refs/heads/gw "$(git --git-dir=repo.git rev-parse gw)"
'

test_expect_success 'an unknown host key for the remote: refused with the line to add' '
	: >remote_known &&
	remote_conf kh.conf "$TRASH/repo.git" "$TRASH/state" "$TRASH/remote_known" &&
	test_expect_code 1 msgw-agent -c kh.conf push &&
	test_grep "ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: host key verification failed: no ssh-ed25519 key" err &&
	sshd_known_line >line &&
	grep -F -q "add this line: $(cat line)" err &&
	test_grep "^last-error: ssh .*host key verification failed" state/push-offsite
'

test_expect_success 'trust records the remote host key, then the push works' '
	msgw-agent -c kh.conf trust offsite --yes >out &&
	test_grep "(remote .offsite.)" out &&
	sshd_known_line >expect &&
	test_cmp expect remote_known &&
	msgw-agent -c kh.conf push >out &&
	test_grep "^last-error: $" state/push-offsite
'

test_expect_success 'a changed host key of the remote: refused' '
	printf "[127.0.0.1]:%s ssh-ed25519 %s\n" $SSHD_PORT \
		AAAAC3NzaC1lZDI1NTE5AAAAIOFwe/Eg883Z5lDyYDstMIcIyILwC0ERDYzWgei0FFr/ >other_known &&
	remote_conf ch.conf "$TRASH/repo.git" "$TRASH/state" "$TRASH/other_known" &&
	test_expect_code 1 msgw-agent -c ch.conf push &&
	test_grep "host key verification failed: the ssh-ed25519 key of .\[127.0.0.1\]:$SSHD_PORT. has CHANGED" err
'

test_expect_success 'a wrong key for the remote: authentication failed' '
	ssh-keygen -q -t ed25519 -N "" -f stranger &&
	remote_conf wk.conf "$TRASH/repo.git" "$TRASH/state" "$SSH_KNOWN" "$TRASH/stranger" &&
	test_expect_code 1 msgw-agent -c wk.conf push &&
	test_grep "ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: authentication failed for user .$SSH_USER. with key .$TRASH/stranger.$" err
'

test_expect_success 'the remote down: push exits 1, recorded; fetch exits 1' '
	sshd_stop &&
	test_expect_code 1 agent push &&
	test_grep "^msgw-agent: remote .offsite.: push: .*" err &&
	test_grep "^last-error: remote .offsite.: push: " state/push-offsite &&
	test_expect_code 1 msgw-restore -c "$FRESH" fetch &&
	test_grep "^msgw-restore: remote .offsite.: fetch: " err &&
	sshd_start
'

test_expect_success 'local path and file:// remotes' '
	git init -q --bare local.git &&
	cat >>"$CONF" <<-EOF &&
	remote "disk" {
	  url = "$TRASH/local.git"
	}
	remote "url" {
	  url = "file://$TRASH/local.git"
	}
	EOF
	agent push disk >out &&
	test_grep "^disk: 2 of 2 refs updated$" out &&
	git --git-dir=repo.git rev-parse gw >expect &&
	git --git-dir=local.git rev-parse gw >actual &&
	test_cmp expect actual &&
	agent push url >out &&
	test_grep "^url: up to date (2 refs)$" out &&
	mkdir other && cat >other/c.conf <<-EOF &&
	repository = "$TRASH/other/repo.git"
	state-dir = "$TRASH/other/state"
	remote "url" {
	  url = "file://$TRASH/local.git"
	}
	EOF
	msgw-restore -c other/c.conf fetch >out &&
	test_grep "^url: 2 refs updated$" out &&
	git --git-dir=other/repo.git rev-parse gw >actual &&
	test_cmp expect actual
'

test_done
