#!/bin/bash
# t5640-ssh-probes: the same over SSH.  A gateway reached only over ssh
# whose stop returns at once with exit 0 while the daemon takes 2 s to exit
# (and then writes back the settings it loaded): the apply waits until the
# status command, run over ssh, says stopped.  Its health check is a POP3
# mail probe run from the gateway's side through the SSH connection's
# direct-tcpip channel; a restored service with broken TLS is rolled back.
test_description='stop confirmed by status and pop3:/tls: probes over ssh'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

SIM="$MSGW_BUILD_DIR/msgw-sim"
A1=127.0.0.2
POP3=$((PORT + 2))

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/msgw1' --timeout 5"

# flip: apply onto msgw1 the recorded configuration it does not run now
flip() {
	local id
	id=$(cat good-id)
	if cmp -s msgw1/Gateway.json good.json; then id=$(cat changed-id); fi
	restore apply "$id" --to msgw1 --yes </dev/null
}

test_expect_success 'setup: msgw1 behind the ssh server, a mail probe, an early stop' '
	gw_init msgw1 1 5640 --pop3-port $POP3 &&
	msgw-sim deliver msgw1 $(mbx msgw1 1) 2 &&
	pw msgw1 1 >probe-pw && chmod 600 probe-pw &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	SSH_GW_TIMEOUT=5 SSH_STOP_PREFIX="MSGW_SIM_STOP_EARLY=1 " \
	SSH_START_PREFIX="m=\$(cat $TRASH/break-next 2>/dev/null); rm -f $TRASH/break-next; MSGW_SIM_TLS_BROKEN=\$m MSGW_SIM_STOP_DELAY=2 " \
		sshd_sim_gateway_conf "$CONF" msgw1 "$TRASH/msgw1" $A1 $PORT \
		"probe-mailbox = \"$(mbx msgw1 1)\"" "probe-password-file = \"$TRASH/probe-pw\"" &&
	sed -i "s|health = \"tcp:$A1:$PORT\"|health = \"pop3:$A1:$POP3\"|" "$CONF" &&
	test_grep "health = \"pop3:" "$CONF" &&
	agent init >out &&
	MSGW_SIM_STOP_DELAY=2 msgw-sim start msgw1 --listen $A1 &&
	agent snapshot msgw1 >out &&
	git --git-dir="$REPO" rev-parse msgw1 >good-id &&
	cp msgw1/Gateway.json good.json &&
	gw_set_json msgw1 "d[\"ports\"][\"smtp\"] = 2525" &&
	agent snapshot msgw1 >out &&
	git --git-dir="$REPO" rev-parse msgw1 >changed-id
'

test_expect_success 'over ssh: the swap waits for status to say stopped; the mail probe passes' '
	start=$(date +%s) &&
	flip >out 2>err &&
	test $(( $(date +%s) - start )) -ge 2 &&
	test_grep "^restored .* onto msgw1: 0 added, 1 modified, 0 removed$" out &&
	cmp good.json msgw1/Gateway.json &&
	test_grep "pop3: .$(mbx msgw1 1). logged in" msgw1/Logs/* &&
	gw_no_leftovers "$TRASH/msgw1"
'

test_expect_success 'over ssh: broken TLS after the restore is rolled back, exit 4' '
	cp msgw1/Gateway.json before.json &&
	echo 1 >break-next &&
	test_expect_code 4 flip &&
	test_grep "health check .pop3:$A1:$POP3. with the mail probe failed for 5 s: .*TLS handshake" err &&
	test_grep "the previous configuration is back and running" err &&
	cmp before.json msgw1/Gateway.json &&
	test ! -e break-next &&
	msgw-sim fetch msgw1 $(mbx msgw1 1) $(pw msgw1 1) >fetched &&
	test $(wc -l <fetched) = 2
'

test_done
