#!/bin/bash
# t4910-ssh-statcache: the stat cache over SFTP, where a file has only a
# size and a whole-second mtime (no ctime, no inode).  Files older than the
# gateway's own clock (a file the agent makes there) by two seconds are
# cached and not read again; a file whose mtime is not safely older (changed
# within the granularity, or stamped ahead of the gateway's clock) is
# re-hashed next time, so a rewrite with the same size and the same mtime
# second is still seen.  The clock file never shows in a snapshot.
test_description='stat cache over SFTP: size and mtime, racy files re-hashed'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
agent() { msgw-agent -c "$CONF" "$@"; }

sshd_begin

test_expect_success 'setup: old files and one stamped ahead of the gateway clock (an hour: no load can make it old) ' '
	mkdir -p gw/Rules &&
	for f in a b c; do
		printf "old %s\n" $f >gw/Rules/$f.cfg &&
		touch -d "2020-01-01 00:00:0$((RANDOM % 10))" gw/Rules/$f.cfg || return 1
	done &&
	printf "aaaa\n" >gw/racy.cfg &&
	M=$(($(date +%s) + 3600)) &&
	echo $M >racy.mtime &&
	touch -d "@$M" gw/racy.cfg &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$TRASH/repo.git" "$TRASH/state" >"$CONF" &&
	sshd_gateway_conf "$CONF" remote "$SSH_URL_BASE$TRASH/gw" &&
	agent init &&
	agent snapshot remote
'

test_expect_success 'old files are cached by size and mtime; the racy one is not' '
	test_grep " Rules/a.cfg$" state/statcache-remote &&
	test_grep " Rules/c.cfg$" state/statcache-remote &&
	! grep -q "racy.cfg" state/statcache-remote &&
	! ls gw | grep -q "msgw-" &&
	git --git-dir=repo.git show remote:manifest >manifest &&
	! grep -q "msgw-clock" manifest
'

test_expect_success 'the same size, the same mtime second, other bytes: seen' '
	printf "bbbb\n" >gw/racy.cfg &&
	touch -d "@$(cat racy.mtime)" gw/racy.cfg &&
	agent snapshot remote >out &&
	test_grep "remote: 1 modified, 0 added, 0 removed$" out &&
	git --git-dir=repo.git show remote:config.tar.zst | tar --zstd -xO racy.cfg >got &&
	printf "bbbb\n" >want &&
	test_cmp want got
'

test_expect_success 'an unchanged gateway: unchanged, the cache file is not rewritten' '
	agent snapshot remote >out &&
	test_grep "^remote: unchanged" out &&
	cp state/statcache-remote cache.1 &&
	agent snapshot remote >out &&
	test_grep "^remote: unchanged" out &&
	test_cmp cache.1 state/statcache-remote
'

test_expect_success 'a cached file rewritten with another size: seen' '
	printf "old a, longer now\n" >gw/Rules/a.cfg &&
	touch -d "2020-01-01 00:00:00" gw/Rules/a.cfg &&
	agent snapshot remote >out &&
	test_grep "remote: 1 modified, 0 added, 0 removed$" out
'

test_expect_success 'a read-only gateway (no clock file): no cache, still correct' '
	if [ "$(id -u)" = 0 ]; then
		return 0 # root writes anyway
	fi &&
	chmod 555 gw &&
	test_when_finished "chmod 755 gw" &&
	printf "old b, longer now\n" >gw/Rules/b.cfg &&
	agent snapshot remote >out &&
	test_grep "remote: 1 modified, 0 added, 0 removed$" out
'

test_done
