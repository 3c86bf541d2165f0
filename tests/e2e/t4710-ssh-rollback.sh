#!/bin/bash
# t4710-ssh-rollback: undoing a bad change on a gateway reached only over
# ssh.  msgw1's configuration is broken (Gateway.json no longer JSON: the
# simulator, like the real service, refuses to start on it) and snapshotted
# on top of the good one; "apply msgw1~1 --to msgw1" puts the good
# configuration back over SFTP and the service runs on it again.
# "rollback --to msgw1" applies the latest pre-restore snapshot over ssh.
# A snapshot the simulator refuses to start on (a port out of range) fails
# its start over ssh:
# exit 4, the previous configuration back and running, nothing left over.
test_description='rollback over ssh after a bad change on gateway 1'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

SIM="$MSGW_BUILD_DIR/msgw-sim"
A1=127.0.0.2

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/msgw1' --timeout 5"

# console: the line msgw1 answers on its console port
console() {
	local line
	exec 3<>"/dev/tcp/$A1/$PORT" || return 1
	IFS= read -r line <&3
	exec 3<&-
	printf '%s\n' "$line"
}

# runs_as DOMAIN: msgw1 runs (asked over ssh) and answers for DOMAIN
runs_as() {
	ssh -o BatchMode=yes -o UserKnownHostsFile="$SSH_KNOWN" -i "$SSH_KEY" -p "$SSHD_PORT" \
		"$SSH_USER@127.0.0.1" "$SIM status $TRASH/msgw1" >status &&
	grep -q "^running " status &&
	test "$(console)" = "MSGW-SIM OK $1 2"
}

# no_leftovers: nothing staged, backed up or journalled is left
no_leftovers() { gw_no_leftovers "$TRASH/msgw1"; }

test_expect_success 'setup: msgw1 behind the ssh server, running, snapshotted' '
	gw_init msgw1 2 4710 &&
	msgw-sim deliver msgw1 $(mbx msgw1 1) 2 &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	sshd_sim_gateway_conf "$CONF" msgw1 "$TRASH/msgw1" $A1 $PORT &&
	agent init >out &&
	msgw-sim start msgw1 --listen $A1 &&
	runs_as msgw1.test &&
	agent snapshot msgw1 >out &&
	git --git-dir="$REPO" rev-parse msgw1 >good-id &&
	cp msgw1/Gateway.json good.json &&
	gw_listing msgw1 >good
'

test_expect_success 'a bad change: Gateway.json broken, the service does not come back' '
	printf "{\"domain\": \"msgw1.test\",\n" >msgw1/Gateway.json &&
	msgw-sim stop msgw1 &&
	! msgw-sim start msgw1 --listen $A1 2>start.err &&
	test_grep "invalid configuration" start.err &&
	test_expect_code 3 msgw-sim status msgw1 &&
	agent snapshot msgw1 >out &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed$" out &&
	git --git-dir="$REPO" rev-parse msgw1 >bad-id
'

test_expect_success 'apply msgw1~1 --to msgw1 over ssh: the good configuration runs again' '
	restore plan msgw1~1 --to msgw1 >plan &&
	test_grep "^files: 0 added, 1 modified, 0 removed" plan &&
	restore apply msgw1~1 --to msgw1 --yes </dev/null >out 2>err &&
	test_grep "^restored [0-9a-f]\{12\} onto msgw1: 0 added, 1 modified, 0 removed$" out &&
	cmp good.json msgw1/Gateway.json &&
	gw_listing msgw1 >now &&
	test_cmp good now &&
	runs_as msgw1.test &&
	no_leftovers &&
	test "$(meta_of msgw1 kind)" = restored &&
	test "$(meta_of msgw1~1 kind)" = pre-restore
'

test_expect_success 'a valid change, restored away, then rollback --to msgw1 over ssh' '
	msgw-sim set msgw1 domain changed.test &&
	msgw-sim stop msgw1 && msgw-sim start msgw1 --listen $A1 &&
	runs_as changed.test &&
	agent snapshot msgw1 >out &&
	gw_listing msgw1 >changed &&
	restore apply $(cat good-id) --to msgw1 --yes </dev/null >out 2>err &&
	runs_as msgw1.test &&
	gw_listing msgw1 >now &&
	test_cmp good now &&
	restore rollback --to msgw1 --yes </dev/null >out 2>err &&
	test_grep "^rolling back .msgw1. to pre-restore snapshot [0-9a-f]\{12\}$" out &&
	test_grep "^restored [0-9a-f]\{12\} onto msgw1: 0 added, 1 modified, 0 removed$" out &&
	gw_listing msgw1 >now &&
	test_cmp changed now &&
	runs_as changed.test &&
	no_leftovers
'

test_expect_success 'a snapshot the service refuses to start on: exit 4, the previous one runs' '
	cp msgw1/Gateway.json running.json &&
	gw_set_json msgw1 "d[\"ports\"][\"pop3\"] = 0" &&
	agent snapshot msgw1 >out &&
	git --git-dir="$REPO" rev-parse msgw1 >refused-id &&
	cp running.json msgw1/Gateway.json &&
	agent snapshot msgw1 >out &&
	gw_listing msgw1 >now &&
	test_cmp changed now &&
	tip=$(git --git-dir="$REPO" rev-parse msgw1) &&
	test_expect_code 4 restore apply $(cat refused-id) --to msgw1 --yes </dev/null &&
	test_grep "rolling back" err &&
	test_grep "ports.pop3" err &&
	test_grep "the previous configuration is back and running" err &&
	gw_listing msgw1 >now &&
	test_cmp changed now &&
	runs_as changed.test &&
	no_leftovers &&
	test "$(meta_of msgw1 kind)" = pre-restore &&
	test "$(git --git-dir="$REPO" rev-parse msgw1~1)" = "$tip"
'

test_expect_success 'every snapshot verifies; the gateway is as last recorded' '
	agent verify --all >out &&
	agent snapshot msgw1 >out &&
	test_grep "^msgw1: unchanged" out
'

test_done
