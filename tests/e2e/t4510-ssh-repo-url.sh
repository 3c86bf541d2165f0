#!/bin/bash
# t4510-ssh-repo-url: msgw-restore --repo URL works from a remote repository
# on a fresh host: the repository is fetched into a cache under
# STATE/repo-cache (mode 0700) first, and refreshed on every run.  An ssh
# URL must belong to a configured remote (its key and known_hosts); a
# file:// URL needs nothing.
test_description='msgw-restore --repo URL'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
FRESH="$TRASH/fresh.conf"

sshd_begin

test_expect_success 'setup: snapshots pushed to a bare remote; a fresh host config' '
	msgw-sim init gw --domain example.test --mailboxes 1 --seed 4510 >ids &&
	git init -q --bare remote.git &&
	URL="$SSH_URL_BASE$TRASH/remote.git" &&
	cat >"$CONF" <<-EOF &&
	repository = "$TRASH/repo.git"
	state-dir = "$TRASH/state"
	gateway "gw" {
	  location = "$TRASH/gw"
	  exclude = {"Logs/**"}
	}
	remote "offsite" {
	  url = "$URL"
	  identity = "$SSH_KEY"
	  known-hosts = "$SSH_KNOWN"
	}
	EOF
	msgw-agent -c "$CONF" init &&
	msgw-agent -c "$CONF" snapshot >out &&
	msgw-agent -c "$CONF" push >out &&
	sed -e "s|$TRASH/repo.git|$TRASH/fresh/repo.git|" -e "s|$TRASH/state|$TRASH/fresh/state|" \
		"$CONF" >"$FRESH"
'

test_expect_success '--repo with the remote ssh URL lists its snapshots' '
	msgw-restore -c "$FRESH" --repo "$SSH_URL_BASE$TRASH/remote.git" list >out &&
	test $(grep -c "^gw " out) = 1 &&
	test ! -e fresh/repo.git &&
	test "$(stat -c %a fresh/state/repo-cache)" = 700 &&
	ls fresh/state/repo-cache >caches &&
	test $(wc -l <caches) = 1
'

test_expect_success 'the cache is refreshed on the next run' '
	printf "changed\n" >gw/Templates/bounce.txt &&
	msgw-agent -c "$CONF" snapshot >out &&
	msgw-agent -c "$CONF" push >out &&
	msgw-restore -c "$FRESH" --repo "$SSH_URL_BASE$TRASH/remote.git" list >out &&
	test $(grep -c "^gw " out) = 2 &&
	msgw-restore -c "$FRESH" --repo "$SSH_URL_BASE$TRASH/remote.git" show gw >out &&
	test_grep "1 modified" out
'

test_expect_success 'a file:// URL needs no remote section' '
	msgw-restore -c "$FRESH" --repo "file://$TRASH/remote.git" list >out &&
	test $(grep -c "^gw " out) = 2
'

test_expect_success 'an ssh URL no remote has: exit 2, says what is missing' '
	test_expect_code 2 msgw-restore -c "$FRESH" --repo "ssh://nobody@127.0.0.1:$SSHD_PORT/x.git" list &&
	test_grep "no remote in .$FRESH. has the url" err
'

test_expect_success 'the remote down: exit 1 with the fetch error' '
	sshd_stop &&
	test_expect_code 1 msgw-restore -c "$FRESH" --repo "$SSH_URL_BASE$TRASH/remote.git" list &&
	test_grep "remote .offsite.: fetch: .*Connection refused" err &&
	sshd_start
'

test_done
