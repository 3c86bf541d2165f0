#!/bin/bash
# t3910-prune-killed-git: a prune SIGKILLed while its git repack runs
# leaves no git behind (issue 14).  A wrapper "git" first in PATH stands
# for a long repack: it records its pid, starts a background sleep (a
# child of git, as repack's pack-objects is) and waits for it.  Within
# three seconds of the kill neither may run any more: they would write
# into the store without the lock the next run is free to take.  The next
# prune (stock git) then clears what a git killed at other instants leaves
# (packed-refs.new, .tmp-<pid>-pack-*, commit-graph.lock), succeeds and
# leaves no tmp_* behind.
test_description='a killed prune kills its git children'
. "$(dirname "$0")/test-lib.sh"

REAL_GIT=$(command -v git)

# alive PID: the process runs (a zombie is dead)
alive() {
	[ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat"
}

test_expect_success 'setup: two snapshots, a slow git repack' '
	msgw-sim init gw1 --domain example.test --mailboxes 1 --seed t3910 >/dev/null &&
	cat >c.conf <<-EOF &&
	repository = "$TRASH/repo.git"
	state-dir  = "$TRASH/state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	}
	retention {
	  keep-last = 1
	}
	EOF
	msgw-agent -c c.conf init >/dev/null &&
	msgw-agent -c c.conf snapshot >/dev/null &&
	msgw-sim set gw1 ports.smtp 2525 &&
	msgw-agent -c c.conf snapshot >/dev/null &&
	mkdir bin &&
	cat >bin/git <<-EOF &&
	#!/bin/sh
	case " \$* " in
	*" repack "*)
		echo \$\$ >"$TRASH/git.pid"
		sleep 30 &
		echo \$! >"$TRASH/sleep.tmp" && mv "$TRASH/sleep.tmp" "$TRASH/sleep.pid"
		wait
		;;
	esac
	exec "$REAL_GIT" "\$@"
	EOF
	chmod +x bin/git
'

test_expect_success 'a prune killed during git repack leaves no git running' '
	PATH="$TRASH/bin:$PATH" msgw-agent -c c.conf prune </dev/null >prune.out 2>prune.err &
	pid=$! &&
	test_when_finished "for f in git.pid sleep.pid; do [ -s \$f ] && kill -9 \$(cat \$f) 2>/dev/null; done; true" &&
	i=0 && while [ ! -s sleep.pid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done &&
	test -s sleep.pid && alive "$(cat git.pid)" && alive "$(cat sleep.pid)" &&
	kill -9 $pid && { wait $pid 2>/dev/null; test $? = 137; } &&
	i=0 && while { alive "$(cat git.pid)" || alive "$(cat sleep.pid)"; } && [ $i -lt 60 ]; do
		sleep 0.05; i=$((i + 1))
	done &&
	! alive "$(cat git.pid)" && ! alive "$(cat sleep.pid)"
'

# What git leaves when it is killed at other instants: pack-refs'
# temporary file (the next pack-refs fails on it: "File exists"), repack's
# names for pack-objects' output, commit-graph's lock.
test_expect_success 'the next prune clears what a killed git left and succeeds' '
	git -C repo.git pack-refs --all &&
	echo x >repo.git/packed-refs.new &&
	echo x >repo.git/objects/pack/.tmp-4242-pack-0123.pack &&
	echo x >repo.git/objects/info/commit-graph.lock &&
	msgw-agent -c c.conf prune >/dev/null 2>next.err &&
	test_grep "packed-refs.new" next.err &&
	test_grep "tmp-4242-pack" next.err &&
	test ! -e repo.git/packed-refs.new &&
	test ! -e repo.git/objects/pack/.tmp-4242-pack-0123.pack &&
	test ! -e repo.git/objects/info/commit-graph.lock &&
	test "$(git -C repo.git rev-list --count msgw1)" = 1 &&
	test -z "$(find repo.git/objects -name "tmp_*")" &&
	git -C repo.git fsck --strict
'

test_done
