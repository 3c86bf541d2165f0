#!/bin/bash
# t4930-ssh-swap-batched: the swap over SFTP sends its requests in waves
# (every folder's lstat, then every "move aside", then every "move in"),
# many in flight at once.  Over a real sshd: an apply of many modified,
# added and removed files gives, byte for byte and mode for mode, the tree
# of the snapshot, and the same tree as the local apply onto a local
# gateway; a rename that fails on the server in the middle of either wave
# (MSGW_TEST_RENAME_FAIL, a real failing request) rolls back to the exact
# previous tree, running.  (t4931: killed, dropped, raced.)
test_description='msgw-restore over ssh: pipelined swap, its failures and its races'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

A1=127.0.0.2
A2=127.0.0.3

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/g1' --timeout 5; msgw-sim stop '$TRASH/gl' --timeout 5"

listing() { gw_config_listing "$TRASH/$1"; }
runs() { msgw-sim status "$TRASH/$1" | grep -q "^running "; }

outside_listing() { tree_listing "$TRASH/outside"; }

test_expect_success 'setup: g1 over ssh, gl local, 45 extra files; snapshot ta' '
	gw_init g1 1 4930 &&
	gw_init gl 1 4930 &&
	for d in g1 gl; do
		gw_extra_files $d || return 1
	done &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	sshd_sim_gateway_conf "$CONF" g1 "$TRASH/g1" $A1 $PORT &&
	cat >>"$CONF" <<-EOF &&
	gateway "gl" {
	  location = "$TRASH/gl"
	  exclude  = {"Logs/**"}
	  preserve = {"Certificates/**"}
	  stop     = "msgw-sim stop $TRASH/gl"
	  start    = "msgw-sim start $TRASH/gl --listen $A2"
	  status   = "msgw-sim status $TRASH/gl"
	  health   = "tcp:$A2:$PORT"
	  timeout  = 10
	}
	EOF
	agent init >out &&
	msgw-sim start g1 --listen $A1 &&
	msgw-sim start gl --listen $A2 &&
	agent snapshot g1 --tag ta >out &&
	agent snapshot gl >out &&
	listing g1 >ta
'

test_expect_success 'change g1: 20 modified, 12 added (a new folder too), 6 removed, 2 modes; snapshot tb' '
	gw_change_many g1 &&
	agent snapshot g1 --tag tb >out &&
	test_grep "g1: 22 modified, 14 added, 6 removed$" out &&
	listing g1 >tb &&
	! cmp -s ta tb
'

test_expect_success 'apply ta over ssh: the snapshot tree byte for byte, and the local apply gives the same' '
	restore apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "^restored [0-9a-f]\{12\} onto g1: " out &&
	listing g1 >now &&
	test_cmp ta now &&
	runs g1 &&
	gw_no_leftovers "$TRASH/g1" &&
	restore apply ta --to gl --yes </dev/null >out 2>err &&
	listing gl >local &&
	test_cmp now local &&
	runs gl
'

test_expect_success 'apply tb over ssh: the changed tree' '
	restore apply tb --to g1 --yes </dev/null >out 2>err &&
	listing g1 >now &&
	test_cmp tb now &&
	gw_no_leftovers "$TRASH/g1"
'

# fail_rename_at N WHAT: the Nth rename of the batches fails on the
# server (WHAT: the end of the message naming it): exit 4, the exact
# previous tree, running, nothing left over.
fail_rename_at() {
	listing g1 >before &&
	test_expect_code 4 env MSGW_TEST_RENAME_FAIL=$1 msgw-restore -c "$CONF" apply ta --to g1 --yes </dev/null >out 2>err &&
	test_grep "cannot rename .*$2: No such file or directory; the previous" err &&
	test_grep "the previous configuration is back and running" err &&
	listing g1 >after &&
	test_cmp before after &&
	runs g1 &&
	gw_no_leftovers "$TRASH/g1"
}

test_expect_success 'a rename failing in the middle of the "aside" wave: exact previous tree, running' '
	fail_rename_at 9 "\.msgw-old'"
'

test_expect_success 'a rename failing in the middle of the "in" wave: exact previous tree, running' '
	fail_rename_at 40 "\.txt'"
'

test_done
