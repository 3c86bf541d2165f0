#!/bin/bash
# t4100-ssh-snapshot: the agent reads a gateway over SFTP.  A msgw-sim data
# directory is snapshotted once through an OpenSSH server of the test's own
# (ssh://USER@127.0.0.1:PORT/abs/path) and once as a local path: both
# manifests must be equal.  Also: an unchanged gateway over SFTP, a Windows-
# style path that does not exist, a server that is down, and a gateway
# without known-hosts.
test_description='snapshot over SFTP equals a local snapshot'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
agent() { msgw-agent -c "$CONF" "$@"; }

sshd_begin

test_expect_success 'setup: a simulated gateway, one ssh and one local configuration' '
	msgw-sim init gw --domain example.test --mailboxes 2 --seed 4100 >ids &&
	X=$(head -n1 ids | cut -d" " -f1) &&
	msgw-sim deliver gw $X 2 &&
	mkdir -p gw/Rules/deep &&
	printf "route all\n" >gw/Rules/routing.txt &&
	printf "x\n" >gw/Rules/deep/file.cfg &&
	ln -s routing.txt gw/Rules/current &&
	chmod 640 gw/Rules/routing.txt &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$TRASH/repo.git" "$TRASH/state" >"$CONF" &&
	sshd_gateway_conf "$CONF" remote "$SSH_URL_BASE$TRASH/gw" "exclude = {\"Logs/**\"}" &&
	cat >>"$CONF" <<-EOF &&
	gateway "local" {
	  location = "$TRASH/gw"
	  exclude = {"Logs/**"}
	}
	EOF
	agent init
'

test_expect_success 'a snapshot over SFTP has the same manifest as a local one' '
	agent snapshot remote >out &&
	test_grep "^[0-9a-f]\{12\} remote: 0 modified, [0-9]* added, 0 removed$" out &&
	agent snapshot local >out &&
	git --git-dir=repo.git show remote:manifest >remote.manifest &&
	git --git-dir=repo.git show local:manifest >local.manifest &&
	test_cmp local.manifest remote.manifest &&
	test_grep " Rules/deep/file.cfg$" remote.manifest &&
	test_grep "^l .* Rules/current$" remote.manifest &&
	test_grep "^f 0640 .* Rules/routing.txt$" remote.manifest &&
	! grep -q "mbx-" remote.manifest &&
	git --git-dir=repo.git show remote:meta >meta &&
	test_grep "^location: ssh://" meta
'

test_expect_success 'the archive over SFTP holds the same files' '
	git --git-dir=repo.git show remote:config.tar.zst | tar --zstd -t | sort >remote.list &&
	git --git-dir=repo.git show local:config.tar.zst | tar --zstd -t | sort >local.list &&
	test_cmp local.list remote.list &&
	msgw-agent -c "$CONF" verify >out
'

test_expect_success 'an unchanged gateway over SFTP is not written again' '
	agent snapshot remote >out &&
	test_grep "^remote: unchanged" out &&
	printf "route some\n" >gw/Rules/routing.txt &&
	agent snapshot remote >out &&
	test_grep "^[0-9a-f]\{12\} remote: 1 modified, 0 added, 0 removed$" out
'

test_expect_success 'a missing directory on the server: an error naming host and path' '
	sed "s|$TRASH/gw\"|/C:/ProgramData/MailStore/Gateway\"|" "$CONF" >win.conf &&
	test_expect_code 1 msgw-agent -c win.conf snapshot remote &&
	test_grep "ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: cannot .* ./C:/ProgramData/MailStore/Gateway.: No such file" err
'

test_expect_success 'a gateway without known-hosts is refused before connecting' '
	grep -v "known-hosts" "$CONF" >nokh.conf &&
	test_expect_code 2 msgw-agent -c nokh.conf snapshot remote &&
	test_grep "no known-hosts file configured" err
'

test_expect_success 'a server that is down: connect error naming host and step' '
	git --git-dir=repo.git rev-parse remote >before &&
	sshd_stop &&
	test_expect_code 1 agent snapshot remote &&
	test_grep "^msgw-agent: ssh .$SSH_USER@127.0.0.1:$SSHD_PORT.: connect: Connection refused$" err &&
	git --git-dir=repo.git rev-parse remote >after &&
	test_cmp before after &&
	sshd_start
'

test_done
