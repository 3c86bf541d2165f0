#!/bin/bash
# t4970-cycle-kill: a concurrent cycle killed or losing a worker.
#
#   SIGKILL of "snapshot" (and of "run") while its workers wait (one on a
#   TCP listener that never speaks, one in a pre-snapshot hook that
#   sleeps): within two seconds no worker and no hook is left, and the next
#   snapshot succeeds, saying only that it cleared the stale lock;
#   git fsck is clean and nothing of the killed run is left in the
#   repository (no tmp_obj_*, tmp_pack_* nor *.lock).
#
#   A worker killed on its own: its gateway fails ("its worker was killed
#   by signal 9", recorded in its status), the others are written, exit 1.
#
#   Random kills: snapshot of six changing gateways (parallel 3) killed
#   at a random instant within its measured duration, twelve times (four
#   under a sanitizer build); after each, the same checks.  MSGW_KILL_SEED
#   repeats a series.
test_description='a killed concurrent cycle leaves no worker, no hook, no lock'
. "$(dirname "$0")/test-lib.sh"

CONF="$TRASH/c.conf"
REPO="$TRASH/repo.git"
STATE="$TRASH/state"
agent() { msgw-agent -c "$CONF" "$@"; }
GWS="G1 G2 G3 G4 G5 G6"
SEED=${MSGW_KILL_SEED:-$$}
RANDOM=$SEED
case "$MSGW_BUILD_DIR" in
*asan*) ROUNDS=4 ;;
*) ROUNDS=12 ;;
esac
echo "# seed $SEED (MSGW_KILL_SEED=$SEED repeats this series)"

# the TCP listener that never speaks: its port in ./mute
python3 -c '
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open("mute.tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename("mute.tmp", "mute")
held = []
while True:
    held.append(s.accept()[0])
' &
test_when_finished "kill $! 2>/dev/null"

# the pre-snapshot hook: sleeps (a hook still running) for gateway H only
cat >"$TRASH/hook.sh" <<'EOF'
#!/bin/sh
[ "$MSGW_GATEWAY" = H ] && sleep 59.4970
exit 0
EOF
chmod +x "$TRASH/hook.sh"

# ours: the processes of this test's runs (workers carry the command line
# of the run; hooks name hook.sh or sleep 59.4970)
ours() { pgrep -f "$CONF|$TRASH/hook.sh|sleep 59.4970" || true; }
none_left() { [ -z "$(ours)" ]; }
# no_orphans: within two seconds nothing of the killed run is left
no_orphans() {
	wait_for 2 none_left || { ps -o pid,ppid,args -p "$(ours | tr '\n' ',' | sed 's/,$//')"; return 1; }
}
# workers PID: the run's children that are not hooks' leaders
workers() { pgrep -P "$1" -f "$CONF" || true; }
at_least_workers() { [ "$(workers "$1" | wc -l)" -ge "$2" ]; }
# only_m_left PID: G1..G6 recorded, one worker left (M's)
only_m_left() {
	[ "$(ls "$STATE"/status-G* 2>/dev/null | wc -l)" = 6 ] && [ "$(workers "$1" | wc -l)" = 1 ]
}

# next_run: the next snapshot succeeds, warning at most of the stale lock
# (and of what the killed run left, which it removes); the repository is
# clean and passes fsck
next_run() {
	agent snapshot >next.out 2>next.err || { echo "next snapshot failed:"; cat next.err; return 1; }
	! grep -v -e "warning: cleared a stale repository lock left by pid" \
		-e "warning: removed .* left by a killed run$" next.err || return 1
	left=$(find "$REPO/objects" \( -name 'tmp_obj_*' -o -name 'tmp_pack_*' \) -print
		find "$REPO" -maxdepth 1 -name '*.lock' ! -name msgw.lock -print
		find "$REPO/refs" -name '*.lock' -print)
	[ -z "$left" ] || { echo "left behind: $left"; return 1; }
	git -C "$REPO" fsck --strict
}

# conf [extra gateways...]: G1..G6 (and H, M when named) with parallel 3
conf() {
	local g
	{
		printf 'repository = "%s"\nstate-dir = "%s"\nparallel = 3\n' "$REPO" "$STATE"
		printf 'hook-pre-snapshot = "%s"\n' "$TRASH/hook.sh"
		for g in "$@" $GWS; do
			case $g in
			M) printf 'gateway "M" {\n  location = "ssh://u@127.0.0.1:%s/x"\n' "$(cat mute)"
			   printf '  known-hosts = "%s"\n  timeout = 60\n}\n' "$TRASH/known_hosts" ;;
			*) printf 'gateway "%s" {\n  location = "%s/%s"\n}\n' "$g" "$TRASH" "$g" ;;
			esac
		done
	} >"$CONF"
}

change() {
	local g
	for g in $GWS; do echo "$RANDOM" >>"$g/Rules/r$((RANDOM % 50)).txt"; done
}

test_expect_success 'setup: six gateways of 50 rule files, a hanging one, one whose hook sleeps' '
	wait_for 5 test -s mute &&
	: >known_hosts &&
	for g in $GWS H; do
		mkdir -p $g/Rules &&
		for i in $(seq 1 50); do seq $i $((i * 20)) >$g/Rules/r$i.txt || exit 1; done
	done &&
	conf M H &&
	agent init >/dev/null &&
	conf &&
	agent snapshot >/dev/null &&
	conf M H
'

# kill_busy COMMAND: start msgw-agent COMMAND after a change, SIGKILL it
# once at least two workers run and H's hook sleeps, and check that nothing
# of it is left; then the next run works (its pid in $pid)
kill_busy() {
	change || return 1
	msgw-agent -c "$CONF" "$1" >out 2>err &
	pid=$!
	test_when_finished "kill -9 $pid 2>/dev/null" &&
	wait_for 10 at_least_workers $pid 2 &&
	wait_for 10 pgrep -f "sleep 59.4970" >/dev/null &&
	kill -9 $pid &&
	{ wait $pid 2>/dev/null || true; } &&
	no_orphans &&
	conf &&
	next_run
}

test_expect_success 'SIGKILL of snapshot while workers and a hook wait: nothing left' '
	kill_busy snapshot &&
	test_grep "warning: cleared a stale repository lock left by pid $pid" next.err
'

test_expect_success 'SIGKILL of run while workers and a hook wait: nothing left' '
	conf M H &&
	kill_busy run
'

test_expect_success 'a worker killed on its own: its gateway fails, the others are written' '
	conf M &&
	change &&
	rm -f "$STATE"/status-G* || exit 1
	msgw-agent -c "$CONF" snapshot >out 2>err &
	pid=$! &&
	test_when_finished "kill -9 $pid 2>/dev/null" &&
	wait_for 15 only_m_left $pid &&
	for g in $GWS; do grep -q "^last-result: written" state/status-$g || exit 1; done &&
	kill -9 "$(workers $pid)" &&
	rc=0 && wait $pid || rc=$? &&
	test $rc = 1 &&
	test_grep "^msgw-agent: snapshot of .M. failed: its worker was killed by signal 9$" err &&
	test "$(wc -l <out)" = 6 &&
	test_grep "^last-error: snapshot of .M. failed: its worker was killed by signal 9$" state/status-M &&
	test_grep "^last-result: failed$" state/status-M &&
	git -C "$REPO" fsck --strict
'

test_expect_success "$ROUNDS random kills of a six-gateway snapshot" '
	conf &&
	change &&
	t0=$(date +%s%N) &&
	agent snapshot >/dev/null &&
	ms=$((($(date +%s%N) - t0) / 1000000)) &&
	echo "# one snapshot of six changed gateways takes ${ms} ms" &&
	killed=0 &&
	for round in $(seq 1 $ROUNDS); do
		change || exit 1
		delay=$((RANDOM % (ms + 1)))
		msgw-agent -c "$CONF" snapshot >/dev/null 2>&1 &
		pid=$! &&
		sleep "$(printf "%d.%03d" $((delay / 1000)) $((delay % 1000)))" &&
		{ kill -9 $pid 2>/dev/null && killed=$((killed + 1)) || true; } &&
		{ wait $pid 2>/dev/null || true; } &&
		no_orphans &&
		next_run ||
		{ echo "round $round (kill after ${delay} ms) broke it"; exit 1; }
	done &&
	echo "# $killed of $ROUNDS runs killed before they ended"
'

test_done
