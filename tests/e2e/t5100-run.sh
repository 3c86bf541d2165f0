#!/bin/bash
# t5100-run: msgw-agent run, the long-running agent, with a one-second
# interval and no jitter.  Over several cycles it writes a snapshot only
# when something changed; a gateway that cannot be reached is reported each
# cycle and never stops the others; SIGHUP with a broken configuration file
# is reported and the running configuration kept, and once the file is
# fixed SIGHUP reloads it, a new repository path included (one that cannot
# be opened is refused like a broken file); SIGTERM ends it with exit 0,
# also in the middle of a long sleep.  --once runs one cycle (exit 1 when a
# gateway failed).
test_description='msgw-agent run: scheduler, SIGHUP reload, SIGTERM'
. "$(dirname "$0")/test-lib.sh"

CONF="$TRASH/c.conf"

write_conf() {
	cat >"$CONF" <<-EOF
	repository = "$TRASH/repo.git"
	state-dir = "$TRASH/state"
	schedule { interval = "1s" jitter = "0" }
	gateway "A" {
	  location = "$TRASH/A"
	  exclude = {"Logs/**"}
	}
	gateway "gone" {
	  location = "$TRASH/no-such-gateway"
	}
	EOF
}

agent() { msgw-agent -c "$CONF" "$@"; }
commits() { git -C "$TRASH/repo.git" rev-list --count refs/heads/A 2>/dev/null || echo 0; }
commits_at_least() { [ "$(commits)" -ge "$1" ]; }
# cycles: the number of cycles the daemon has logged for A so far
cycles() { grep -c -e "A: unchanged" -e " A: [0-9]* modified" "$TRASH/run.log" || true; }

# more_cycles N: wait until N more cycles than now have been logged
more_cycles() {
	local want=$(($(cycles) + $1))
	wait_for 15 cycles_at_least $want
}
cycles_at_least() { [ "$(cycles)" -ge "$1" ]; }
running() { kill -0 "$(cat "$TRASH/run.pid")" 2>/dev/null; }
has_log() { grep -q -e "$1" "$TRASH/run.log"; }
count_is_at_least() { [ "$(grep -c -e "$1" "$TRASH/run.log")" -ge "$2" ]; }

# The daemon runs across test blocks: a wrapper records its exit status
# in run.rc; the top-level cleanup stops it should a block fail.
test_when_finished '[ -f run.pid ] && kill -9 "$(cat run.pid)"; true'

test_expect_success 'setup: a gateway, a repository' '
	msgw-sim init A --domain a.test --mailboxes 2 --seed 5100 >ids &&
	write_conf &&
	agent init >/dev/null
'

test_expect_success 'run --once: one cycle; exit 1 because one gateway failed, A still snapshotted' '
	test_expect_code 1 agent run --once &&
	test "$(commits)" = 1 &&
	test_grep "no-such-gateway" err &&
	test_expect_code 1 agent run --once &&
	test "$(commits)" = 1 &&
	test_expect_code 2 agent status --json &&
	python3 - out <<-\EOF
	import json, sys
	g = {x["gateway"]: x for x in json.load(open(sys.argv[1]))["gateways"]}
	assert g["A"]["last_result"] == "unchanged" and g["A"]["status"] == "OK", g
	assert g["gone"]["last_result"] == "failed" and g["gone"]["failures_total"] == 2, g
	EOF
'

test_expect_success 'run: started in the background, cycles every second' '
	( msgw-agent -c "$CONF" run >run.out 2>run.log & echo $! >run.pid
	  rc=0; wait $! || rc=$?; echo $rc >run.rc ) &
	wait_for 10 test -s run.pid &&
	wait_for 10 has_log "started: 2 gateways, every 1 s" &&
	more_cycles 3 &&
	running &&
	test "$(commits)" = 1 &&
	test_grep "no-such-gateway" run.log &&
	test ! -s run.out
'

test_expect_success 'a snapshot only when something changed' '
	before=$(commits) &&
	msgw-sim set A ports.smtp 2525 &&
	wait_for 15 commits_at_least $((before + 1)) &&
	test "$(commits)" = $((before + 1)) &&
	test_grep "A: 1 modified, 0 added, 0 removed" run.log &&
	more_cycles 3 &&
	test "$(commits)" = $((before + 1)) &&
	echo "<p>new</p>" >A/Templates/extra.html &&
	wait_for 15 commits_at_least $((before + 2)) &&
	more_cycles 2 &&
	test "$(commits)" = $((before + 2)) &&
	test "$(git -C repo.git log -1 --format=%s A)" = "A: 0 modified, 1 added, 0 removed" &&
	git -C repo.git show A:meta >meta &&
	test_grep "^kind: scheduled$" meta &&
	running
'

test_expect_success 'SIGHUP with a broken file: reported, the old configuration kept' '
	cp "$CONF" good.conf &&
	echo "bogus-key = 1" >>"$CONF" &&
	kill -HUP "$(cat run.pid)" &&
	wait_for 10 has_log "reload failed, keeping the running configuration: .*bogus-key" &&
	more_cycles 2 &&
	running &&
	before=$(commits) &&
	msgw-sim set A ports.smtp 2527 &&
	wait_for 15 commits_at_least $((before + 1)) &&
	running
'

test_expect_success 'SIGHUP again after the fix: reloaded, the new file in effect' '
	write_conf &&
	sed -i "/^gateway \"gone\"/,/^}/d" "$CONF" &&
	! grep gone "$CONF" &&
	kill -HUP "$(cat run.pid)" &&
	wait_for 10 has_log "configuration reloaded from .$CONF." &&
	n=$(grep -c "no-such-gateway" run.log) &&
	more_cycles 3 &&
	test "$(grep -c "no-such-gateway" run.log)" -le $((n + 1)) &&
	running
'

test_expect_success 'SIGHUP: a new repository takes effect; one that cannot be opened is refused' '
	sed "s|$TRASH/repo.git|$TRASH/repo2.git|" "$CONF" >c2.conf &&
	msgw-agent -c c2.conf init >/dev/null &&
	sed "s|$TRASH/repo.git|$TRASH/missing.git|" "$CONF" >c3.conf &&
	cp "$CONF" c1.conf &&
	cp c3.conf "$CONF" &&
	n=$(grep -c "reload failed" run.log) &&
	kill -HUP "$(cat run.pid)" &&
	wait_for 10 count_is_at_least "reload failed" $((n + 1)) &&
	test_grep "reload failed, keeping the running configuration: repository .*missing.git. does not exist" run.log &&
	more_cycles 1 &&
	running &&
	cp c2.conf "$CONF" &&
	n=$(grep -c "configuration reloaded" run.log) &&
	kill -HUP "$(cat run.pid)" &&
	wait_for 10 count_is_at_least "configuration reloaded" $((n + 1)) &&
	wait_for 10 git -C repo2.git rev-parse -q --verify refs/heads/A &&
	test "$(git -C repo2.git rev-list --count A)" = 1 &&
	more_cycles 2 &&
	test "$(git -C repo2.git rev-list --count A)" = 1 &&
	running
'

test_expect_success 'SIGTERM: exits 0' '
	kill -TERM "$(cat run.pid)" &&
	wait_for 15 test -s run.rc &&
	test "$(cat run.rc)" = 0 &&
	! running &&
	test_grep "stopped" run.log &&
	! grep -e "ERROR: \(Address\|Leak\)Sanitizer" -e "runtime error" run.log &&
	rm -f run.pid
'

test_expect_success 'SIGTERM during the sleep of a long interval: exits 0 at once' '
	sed -i "s/interval = \"1s\"/interval = \"1h\"/" "$CONF" &&
	rm -f run.rc &&
	( msgw-agent -c "$CONF" run >run2.out 2>run2.log & echo $! >run.pid
	  rc=0; wait $! || rc=$?; echo $rc >run.rc ) &
	wait_for 10 test -s run.pid &&
	wait_for 10 grep -q "A: unchanged" run2.log &&
	start=$(date +%s) &&
	kill -TERM "$(cat run.pid)" &&
	wait_for 5 test -s run.rc &&
	test "$(cat run.rc)" = 0 &&
	test $(( $(date +%s) - start )) -le 3 &&
	rm -f run.pid
'

test_done
