#!/bin/bash
# t4980-ssh-slow-answer: the gateway's `timeout` is what counts while an SSH
# peer is silent.  libssh2 1.10, with keepalives configured, waited in a
# blocking call only until the next keepalive was due (at most 15 s) and
# then failed "Timed out waiting on socket", which we reported as "timed
# out after <timeout> s".  Two gateways on ports whose SFTP subsystem starts
# late: "slow" stays silent 16 s (beyond the keepalive interval) the first
# time under a 30 s timeout and must be written; "late" stays silent 10 s under a 3 s
# timeout and must fail saying 3 s, after no less than that.  Both in one
# snapshot run at parallel 2, so the file takes about 17 s.
test_description='an SSH peer silent for longer than the keepalive interval but within the timeout'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
REPO="$TRASH/repo.git"
STATE="$TRASH/state"
agent() { msgw-agent -c "$CONF" "$@"; }

SFTP=/usr/lib/openssh/sftp-server # a program: a ForceCommand cannot run internal-sftp
sshd_setup || exit 1
SLOW_PORT=$(sshd_pick_port 3) || exit 1
LATE_PORT=$(sshd_pick_port 5) || exit 1
cat >>"$SSHD_DIR/sshd_config" <<EOF
Port $SLOW_PORT
Port $LATE_PORT
Match LocalPort $SLOW_PORT
	ForceCommand [ -e $TRASH/slow-once ] || { touch $TRASH/slow-once; sleep 16; }; exec $SFTP
Match LocalPort $LATE_PORT
	ForceCommand sleep 10; exec $SFTP
EOF
for p in $SLOW_PORT $LATE_PORT; do
	printf '[127.0.0.1]:%s %s\n' "$p" "$(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519.pub")" \
		>>"$SSH_KNOWN"
done
sshd_start || exit 1
test_when_finished 'sshd_stop'

# gw NAME PORT TIMEOUT
gw() {
	cat >>"$CONF" <<-EOF
	gateway "$1" {
	  location = "ssh://$SSH_USER@127.0.0.1:$2$TRASH/G"
	  identity = "$SSH_KEY"
	  known-hosts = "$SSH_KNOWN"
	  timeout = $3
	  exclude = {"Logs/**"}
	}
	EOF
}

test_expect_success 'setup: a gateway, reached on a slow and on a late port' '
	msgw-sim init G --domain g.test --mailboxes 1 --seed 4980 >/dev/null &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	gw slow "$SLOW_PORT" 30 &&
	gw late "$LATE_PORT" 3 &&
	agent init >/dev/null
'

test_expect_success 'snapshot: 16 s of silence within 30 s succeeds; 10 s beyond 3 s fails saying 3 s' '
	test_expect_code 1 agent snapshot --parallel 2 &&
	cat out err &&
	grep -q "^[0-9a-f]\{12\} slow: " out &&
	! grep -q ":$SLOW_PORT" err &&
	test "$(wc -l <err)" = 1 &&
	grep ":$LATE_PORT" err | grep -q "timed out after 3 s" &&
	! grep -qi "waiting on socket" err &&
	git -C "$REPO" fsck --strict &&
	agent verify slow >/dev/null
'

test_expect_success 'the late gateway failed no earlier than its timeout' '
	date +%s%N >t0 &&
	test_expect_code 1 agent snapshot late &&
	elapsed_ms=$(( ($(date +%s%N) - $(cat t0)) / 1000000 )) &&
	echo "# failed after ${elapsed_ms} ms" &&
	test "$elapsed_ms" -ge 2900 &&
	grep -q "timed out after 3 s" err &&
	{ agent status --json >st.json || :; } &&
	python3 - st.json <<-\EOF
	import json, sys
	g = {x["gateway"]: x for x in json.load(open(sys.argv[1]))["gateways"]}
	assert g["slow"]["last_result"] == "written", g["slow"]
	assert g["late"]["last_result"] == "failed", g["late"]
	assert "timed out after 3 s" in g["late"]["last_error"], g["late"]
	EOF
'

test_done
