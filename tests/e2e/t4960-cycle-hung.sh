#!/bin/bash
# t4960-cycle-hung: a gateway that hangs holds only its own slot.  Three
# gateways never answer, each with a 5 s timeout: two TCP listeners that
# accept and never speak (the SSH handshake waits), and an sshd port whose
# SFTP subsystem is a "cat >/dev/null" (logged in, the SFTP start is never
# answered); one gateway refuses connections; four answer (two local, two
# over SFTP).  The hanging ones come first in the configuration, so run one
# after the other they would be recorded first: instead the four others are
# written and recorded while the hanging ones still wait, and the whole
# run ends before the sum of the three timeouts (15 s; it takes about one).
# Each hanging gateway fails alone with its timeout error, the refused one
# with its own, in the configuration's order; the repository passes git
# fsck and the others' snapshots verify; status is per gateway (run
# --once too).
test_description='a hanging or dead gateway delays no other beyond its own timeout'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
REPO="$TRASH/repo.git"
STATE="$TRASH/state"
agent() { msgw-agent -c "$CONF" "$@"; }
GOOD="L1 S1 L2 S2"

sshd_setup || exit 1
# a second port whose sessions get "cat" for any command or subsystem
MUTE_SFTP_PORT=$(sshd_pick_port 7) || exit 1
cat >>"$SSHD_DIR/sshd_config" <<EOF
Port $MUTE_SFTP_PORT
Match LocalPort $MUTE_SFTP_PORT
	ForceCommand cat >/dev/null
EOF
printf '[127.0.0.1]:%s %s\n' "$MUTE_SFTP_PORT" "$(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519.pub")" \
	>>"$SSH_KNOWN"
sshd_start || exit 1
test_when_finished 'sshd_stop'

# listener FILE: a TCP listener on 127.0.0.1 that accepts and never speaks;
# its port goes to FILE (its pid to FILE.pid)
listener() {
	python3 -c '
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    held.append(s.accept()[0])
' "$1" &
	echo $! >"$1.pid"
	test_when_finished "kill $! 2>/dev/null"
	for _ in $(seq 50); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# hung NAME PORT: a gateway over ssh at 127.0.0.1:PORT, 5 s timeout
hung() {
	cat >>"$CONF" <<-EOF
	gateway "$1" {
	  location = "ssh://$SSH_USER@127.0.0.1:$2$TRASH/L1"
	  identity = "$SSH_KEY"
	  known-hosts = "$SSH_KNOWN"
	  timeout = 5
	}
	EOF
}

# recorded GATEWAY...: each has a status record with its last attempt
recorded() {
	local g
	for g in "$@"; do grep -q "^last-attempt: " "$STATE/status-$g" 2>/dev/null || return 1; done
}
running() { kill -0 "$1" 2>/dev/null; }

listener mute1 || exit 1
listener mute2 || exit 1

test_expect_success 'setup: three hanging gateways first, a refused one, four that answer' '
	(exec 3<>"/dev/tcp/127.0.0.1/$MUTE_SFTP_PORT") &&
	sshd_pick_port 11 >refused &&
	refused=$(cat refused) &&
	i=0 &&
	for g in $GOOD; do
		i=$((i + 1)) &&
		msgw-sim init "$g" --domain "$(echo $g | tr A-Z a-z).test" --mailboxes 1 \
			--seed $((4960 + i)) >/dev/null || exit 1
	done &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	hung mute1 "$(cat mute1)" &&
	hung mute-sftp "$MUTE_SFTP_PORT" &&
	hung mute2 "$(cat mute2)" &&
	for g in L1 S1 refused L2 S2; do
		case $g in
		L*) printf "gateway \"%s\" {\n  location = \"%s\"\n  exclude = {\"Logs/**\"}\n}\n" \
			"$g" "$TRASH/$g" >>"$CONF" ;;
		S*) sshd_gateway_conf "$CONF" "$g" "$SSH_URL_BASE$TRASH/$g" "exclude = {\"Logs/**\"}" ;;
		refused) hung refused "$refused" ;;
		esac
	done &&
	agent init >/dev/null
'

test_expect_success 'snapshot: the answering gateways are written while the hanging ones wait' '
	date +%s%N >t0 &&
	( msgw-agent -c "$CONF" snapshot >out 2>err & echo $! >snap.pid
	  rc=0; wait $! || rc=$?; echo $rc >snap.rc ) &
	wait_for 10 test -s snap.pid &&
	wait_for 20 recorded $GOOD refused &&
	for g in $GOOD; do git -C "$REPO" rev-parse -q --verify "refs/heads/$g" >/dev/null || exit 1; done &&
	! recorded mute1 && ! recorded mute-sftp && ! recorded mute2 &&
	running "$(cat snap.pid)" &&
	wait_for 30 test -s snap.rc &&
	elapsed_ms=$(( ($(date +%s%N) - $(cat t0)) / 1000000 )) &&
	echo "# the run took ${elapsed_ms} ms (the timeouts add up to 15000)" &&
	test "$elapsed_ms" -lt 15000 &&
	test "$(cat snap.rc)" = 1 &&
	sed "s/^[0-9a-f]\{12\} \([A-Z0-9]*\): .*/\1/" out | tr "\n" " " >order &&
	test "$(cat order)" = "L1 S1 L2 S2 " &&
	test "$(wc -l <err)" = 4 &&
	sed -n 1p err | grep "ssh .*:$(cat mute1)." | grep -q "timed out after 5 s" &&
	sed -n 2p err | grep "mute-sftp\|:$MUTE_SFTP_PORT" | grep -q "timed out" &&
	sed -n 3p err | grep "ssh .*:$(cat mute2)." | grep -q "timed out after 5 s" &&
	sed -n 4p err | grep -q "Connection refused" &&
	git -C "$REPO" fsck --strict &&
	agent verify --all >/dev/null &&
	test "$(git -C "$REPO" for-each-ref --format="%(refname:short)" refs/heads | sort | tr "\n" " ")" = "L1 L2 S1 S2 "
'

test_expect_success 'status: each gateway its own result and error' '
	test_expect_code 2 agent status --json &&
	python3 - out <<-\EOF
	import json, sys
	g = {x["gateway"]: x for x in json.load(open(sys.argv[1]))["gateways"]}
	for n in ("L1", "S1", "L2", "S2"):
	    assert g[n]["status"] == "OK" and g[n]["last_result"] == "written", g[n]
	for n in ("mute1", "mute-sftp", "mute2"):
	    assert g[n]["last_result"] == "failed" and "timed out" in g[n]["last_error"], g[n]
	assert "refused" in g["refused"]["last_error"], g["refused"]
	EOF
'

test_expect_success 'run --once: the same, logged in the configuration order, exit 1' '
	echo "new rule" >S2/extra.txt &&
	test_expect_code 1 msgw-agent -c "$CONF" -v run --once &&
	grep -e "timed out" -e refused -e ": unchanged$" -e "S2: 0 modified" err |
		sed -e "s/.*ssh .*:\([0-9]*\).: .*/\1/" -e "s/.*: \([A-Z0-9]*\): unchanged$/\1/" \
		    -e "s/.* [0-9a-f]\{12\} \(S2\): .*/\1/" | tr "\n" " " >order &&
	test "$(cat order)" = "$(cat mute1) $MUTE_SFTP_PORT $(cat mute2) L1 S1 $(cat refused) L2 S2 " &&
	test "$(git -C "$REPO" log -1 --format=%s S2)" = "S2: 0 modified, 1 added, 0 removed" &&
	git -C "$REPO" fsck --strict
'

test_done
