#!/bin/bash
# t4900-ssh-pipelined: remote reads with many SFTP requests in flight (a
# walk's folders listed a level at a time, files read ahead) give exactly
# what one request at a time gives (MSGW_SFTP_SEQUENTIAL=1 forces that
# path) and what a local snapshot gives; mailbox stores stay unread; a
# connection dropped in the middle of the pipelined reads fails that
# snapshot cleanly and leaves the repository as it was.
test_description='pipelined SFTP reads equal sequential ones'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
agent() { msgw-agent -c "$CONF" "$@"; }

sshd_begin

# many folders and files of every size the reads split differently: empty,
# one byte, exactly one and two chunks (32 KiB), a chunk and a byte, larger
make_tree() {
	local d f

	msgw-sim init gw --domain example.test --mailboxes 3 --seed 4900 >ids &&
	X=$(head -n1 ids | cut -d" " -f1) &&
	msgw-sim deliver gw "$X" 2 &&
	for d in $(seq 1 12); do
		mkdir -p "gw/Domains/d$d/sub/deeper" || return 1
		for f in $(seq 1 9); do
			printf "domain %s file %s\n" "$d" "$f" >"gw/Domains/d$d/f$f.json" || return 1
		done
		printf "x%.0s" $(seq 1 $((d * 700))) >"gw/Domains/d$d/sub/deeper/blob.bin" || return 1
	done &&
	: >gw/empty.cfg &&
	printf 1 >gw/one.cfg &&
	head -c 32768 /dev/urandom >gw/chunk1.bin &&
	head -c 65536 /dev/urandom >gw/chunk2.bin &&
	head -c 32769 /dev/urandom >gw/chunk1plus.bin &&
	head -c 300000 /dev/urandom >gw/large.bin &&
	mkdir -p gw/Logs gw/Empty &&
	printf "log\n" >gw/Logs/today.log &&
	ln -s Domains/d1/f1.json gw/current &&
	chmod 640 gw/Domains/d2/f2.json
}

test_expect_success 'setup: a gateway with many folders, seen three ways' '
	make_tree &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$TRASH/repo.git" "$TRASH/state" >"$CONF" &&
	sshd_gateway_conf "$CONF" remote "$SSH_URL_BASE$TRASH/gw" "exclude = {\"Logs/**\"}" &&
	sshd_gateway_conf "$CONF" seq "$SSH_URL_BASE$TRASH/gw" "exclude = {\"Logs/**\"}" &&
	cat >>"$CONF" <<-EOF &&
	gateway "local" {
	  location = "$TRASH/gw"
	  exclude = {"Logs/**"}
	}
	EOF
	agent init
'

test_expect_success 'pipelined, sequential and local snapshots: the same manifest and archive' '
	agent snapshot remote &&
	MSGW_SFTP_SEQUENTIAL=1 agent snapshot seq &&
	agent snapshot local &&
	for g in remote seq local; do
		git --git-dir=repo.git show $g:manifest >$g.manifest &&
		git --git-dir=repo.git show $g:config.tar.zst | tar --zstd -xO | sha256sum >$g.content ||
		return 1
	done &&
	test_cmp local.manifest remote.manifest &&
	test_cmp seq.manifest remote.manifest &&
	test_cmp local.content remote.content &&
	test_grep " large.bin$" remote.manifest &&
	test_grep " Domains/d12/sub/deeper/blob.bin$" remote.manifest &&
	! grep -q "mbx-\|Logs/" remote.manifest &&
	agent verify
'

test_expect_success 'the pipelined path ran on a channel of its own' '
	grep "subsystem .sftp." sshd/log >subsystems &&
	test_grep " id 1" subsystems
'

test_expect_success 'a second pipelined snapshot: unchanged, the same as sequential' '
	agent snapshot remote >out &&
	test_grep "^remote: unchanged" out &&
	MSGW_SFTP_SEQUENTIAL=1 agent snapshot seq >out &&
	test_grep "^seq: unchanged" out
'

test_expect_success 'changes seen by both paths alike' '
	printf "changed\n" >gw/Domains/d3/f3.json &&
	rm gw/Domains/d4/f4.json &&
	mkdir gw/Domains/d13 && printf "new\n" >gw/Domains/d13/n.json &&
	head -c 40000 /dev/urandom >gw/chunk1.bin &&
	agent snapshot remote >out &&
	test_grep "remote: 2 modified, 2 added, 1 removed$" out &&
	MSGW_SFTP_SEQUENTIAL=1 agent snapshot seq >out &&
	test_grep "seq: 2 modified, 2 added, 1 removed$" out &&
	git --git-dir=repo.git show remote:manifest >remote.manifest &&
	git --git-dir=repo.git show seq:manifest >seq.manifest &&
	test_cmp seq.manifest remote.manifest
'

# dropped: the connection cut after N pipelined replies; the snapshot
# fails naming the host, and the branch, the objects and the stat cache
# are as they were
dropped() {
	git --git-dir=repo.git rev-parse remote >before &&
	cp state/statcache-remote cache.before &&
	test_expect_code 1 env MSGW_TEST_SFTP_DROP=$1 msgw-agent -c "$CONF" snapshot remote &&
	test_grep "ssh .$SSH_USER@127.0.0.1:$SSHD_PORT." err &&
	git --git-dir=repo.git rev-parse remote >after &&
	test_cmp before after &&
	test_cmp cache.before state/statcache-remote &&
	git --git-dir=repo.git fsck --no-progress &&
	! ls repo.git | grep -q "msgw-archive"
}

test_expect_success 'a connection dropped while the folders are listed' '
	printf "again\n" >gw/Domains/d5/f5.json &&
	dropped 20
'

test_expect_success 'a connection dropped while the files are read' '
	rm -f state/statcache-remote && : >state/statcache-remote &&
	dropped 400 &&
	agent snapshot remote >out &&
	test_grep "remote: 1 modified, 0 added, 0 removed$" out
'

test_expect_success 'a folder the server will not list fails the snapshot as before' '
	chmod 000 gw/Domains/d6 &&
	test_when_finished "chmod 755 gw/Domains/d6" &&
	if [ "$(id -u)" = 0 ]; then
		return 0 # root reads it anyway
	fi &&
	test_expect_code 1 msgw-agent -c "$CONF" snapshot remote &&
	test_grep "Domains/d6.*Permission denied" err
'

test_done
