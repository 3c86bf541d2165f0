#!/bin/bash
# t5400-hooks: hook-pre-snapshot, hook-post-snapshot, hook-post-restore and
# hook-failure run with MSGW_GATEWAY, MSGW_SNAPSHOT and MSGW_RESULT in their
# environment.  A failing pre-snapshot hook skips that gateway's snapshot
# (no commit, status CRITICAL "skipped", the failure hook told); the
# failure hook runs on a failed snapshot and on a restore rolled back by
# its health check; the post-restore hook runs after an apply and its
# failure does not fail the restore; a gateway's own hook overrides the
# global one; a hook that hangs is killed after hook-timeout.
test_description='hooks: environment, skipping, failure, post-restore, timeout'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

# hook.sh NAME: record the environment in NAME.env and a line in hooks.log;
# hang when hang-NAME exists (its pid in hang.pid), fail when fail-NAME does
cat >"$TRASH/hook.sh" <<'EOF'
#!/bin/sh
dir=$(dirname "$0")
env | grep -E '^MSGW_(GATEWAY|SNAPSHOT|RESULT)=' | sort >"$dir/$1.env"
echo "$1 $MSGW_GATEWAY $MSGW_RESULT" >>"$dir/hooks.log"
if [ -e "$dir/quiet-hang-$1" ]; then
	# closes its output first: the timeout must still apply to the wait
	echo $$ >"$dir/hang.pid"
	exec >/dev/null 2>&1
	sleep 60
fi
if [ -e "$dir/hang-$1" ]; then
	echo $$ >"$dir/hang.pid"
	sleep 60
	echo "survived" >>"$dir/hooks.log"
fi
if [ -e "$dir/fail-$1" ]; then
	echo "$1 says no" >&2
	exit 3
fi
exit 0
EOF
chmod +x "$TRASH/hook.sh"

# expect_env NAME GATEWAY SNAPSHOT RESULT: NAME.env is exactly that
expect_env() {
	printf 'MSGW_GATEWAY=%s\nMSGW_RESULT=%s\nMSGW_SNAPSHOT=%s\n' "$2" "$4" "$3" >expect.env &&
	test_cmp expect.env "$1.env"
}
# let a confirm timer still waiting finish before the daemons stop
test_when_finished 'i=0; while [ -e "$STATE/journal-B" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done'

commits() { git -C "$REPO" rev-list --count "refs/heads/$1" 2>/dev/null || echo 0; }
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" | cut -c1)" = Z ]; }

test_expect_success 'setup: A and B running, global hooks, hook-timeout 2 s' '
	gw_init A 2 1 &&
	gw_init B 0 2 &&
	gw_write_config &&
	cat >>"$CONF" <<-EOF &&
	hook-pre-snapshot  = "$TRASH/hook.sh pre"
	hook-post-snapshot = "$TRASH/hook.sh post"
	hook-post-restore  = "$TRASH/hook.sh post-restore"
	hook-failure       = "$TRASH/hook.sh failure"
	hook-timeout       = "2s"
	EOF
	gw_start A && gw_start B &&
	agent init >/dev/null
'

test_expect_success 'snapshot: pre then post, with the gateway, the new id and "written"' '
	rm -f hooks.log &&
	agent snapshot A >out &&
	tip=$(branch_tip A) &&
	test -n "$tip" &&
	printf "pre A \npost A written\n" >expect &&
	test_cmp expect hooks.log &&
	expect_env pre A "" "" &&
	expect_env post A $tip written &&
	test ! -e failure.env
'

test_expect_success 'an unchanged snapshot: post with the tip and "unchanged"' '
	agent snapshot A >out &&
	test_grep "unchanged" out &&
	expect_env post A "$(branch_tip A)" unchanged
'

test_expect_success 'a failing pre-hook skips the snapshot: no commit, failure hook, status CRITICAL' '
	: >fail-pre &&
	test_when_finished "rm -f fail-pre" &&
	rm -f hooks.log post.env &&
	n=$(commits A) &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2525" &&
	test_expect_code 1 agent snapshot A &&
	test_grep "skipping the snapshot of .A.: hook-pre-snapshot of .A.: .$TRASH/hook.sh pre. exited with status 3: pre says no" err &&
	test "$(commits A)" = $n &&
	test ! -e post.env &&
	printf "pre A \nfailure A skipped\n" >expect &&
	test_cmp expect hooks.log &&
	expect_env failure A "" skipped &&
	test_expect_code 2 agent status &&
	test_grep "^MSGW CRITICAL - A CRITICAL: last snapshot skipped: skipping the snapshot of .A.: hook-pre-snapshot" out &&
	test_grep "^  last attempt: [0-9T:-]*Z skipped: " out
'

test_expect_success 'the pre-hook passes again: the change is snapshotted' '
	n=$(commits A) &&
	agent snapshot A >out &&
	test "$(commits A)" = $((n + 1)) &&
	expect_env post A "$(branch_tip A)" written &&
	test_expect_code 3 agent status &&
	test_grep "A OK: " out
'

test_expect_success 'hook-failure runs on a failed snapshot (location gone)' '
	rm -f failure.env post.env &&
	mv A A.away &&
	test_when_finished "mv A.away A" &&
	test_expect_code 1 agent snapshot A &&
	expect_env failure A "" failed &&
	test ! -e post.env &&
	test_expect_code 2 agent status &&
	test_grep "A CRITICAL: last snapshot failed: " out
'

test_expect_success 'a failing post-snapshot hook is a warning; the snapshot stands' '
	: >fail-post &&
	test_when_finished "rm -f fail-post" &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2526" &&
	n=$(commits A) &&
	agent snapshot A >out 2>err &&
	test "$(commits A)" = $((n + 1)) &&
	test_grep "warning: hook-post-snapshot of .A.: .* exited with status 3: post says no" err
'

test_expect_success 'hook-post-restore runs after an apply: the target, the restored id, "restored"' '
	rm -f hooks.log &&
	restore apply A --to B --yes </dev/null >out &&
	cmp A/Gateway.json B/Gateway.json &&
	test "$(meta_of B kind)" = restored &&
	expect_env post-restore B "$(branch_tip B)" restored &&
	echo "post-restore B restored" >expect &&
	test_cmp expect hooks.log
'

test_expect_success 'a failing post-restore hook is reported; the restore still succeeds' '
	: >fail-post-restore &&
	test_when_finished "rm -f fail-post-restore" &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2527" &&
	agent snapshot A >/dev/null &&
	restore apply A --to B --yes </dev/null >out 2>err &&
	cmp A/Gateway.json B/Gateway.json &&
	test_grep "hook-post-restore of .B.: .* exited with status 3: post-restore says no" err &&
	expect_env post-restore B "$(branch_tip B)" restored &&
	gw_answers B a.test 2
'

test_expect_success 'with a confirm window, hook-post-restore runs once confirmed' '
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2529" &&
	agent snapshot A >/dev/null &&
	rm -f post-restore.env hooks.log &&
	restore apply A --to B --yes --confirm-within 60s </dev/null >out &&
	test_when_finished "restore confirm B >/dev/null 2>&1; true" &&
	cmp A/Gateway.json B/Gateway.json &&
	test ! -e post-restore.env &&
	restore confirm B >out &&
	expect_env post-restore B "$(branch_tip B)" restored &&
	test "$(meta_of B kind)" = restored &&
	echo "post-restore B restored" >expect &&
	test_cmp expect hooks.log
'

test_expect_success 'a restore rolled back by its health check runs hook-failure with "rolled-back"' '
	cp B/Gateway.json old-B.json &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 0" &&
	agent snapshot A >/dev/null &&
	rm -f hooks.log post-restore.env failure.env &&
	tip=$(branch_tip A) &&
	test_expect_code 4 restore apply A --to B --yes </dev/null &&
	cmp old-B.json B/Gateway.json &&
	expect_env failure B $tip rolled-back &&
	test ! -e post-restore.env &&
	echo "failure B rolled-back" >expect &&
	test_cmp expect hooks.log &&
	gw_answers B a.test 2 &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 25" &&
	agent snapshot A >/dev/null
'

test_expect_success 'a gateway'"'"'s own hook overrides the global one' '
	sed -i "/^gateway \"A\" {/a\\  hook-post-snapshot = \"$TRASH/hook.sh own\"" "$CONF" &&
	rm -f post.env own.env &&
	agent snapshot A >/dev/null &&
	expect_env own A "$(branch_tip A)" unchanged &&
	test ! -e post.env &&
	agent snapshot B >/dev/null &&
	expect_env post B "$(branch_tip B)" unchanged
'

test_expect_success 'a hook that hangs is killed after hook-timeout; the snapshot is skipped' '
	: >hang-pre &&
	test_when_finished "rm -f hang-pre" &&
	rm -f hooks.log hang.pid &&
	n=$(commits A) &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2528" &&
	start=$(date +%s) &&
	test_expect_code 1 agent snapshot A &&
	took=$(( $(date +%s) - start )) &&
	test $took -ge 2 && test $took -le 8 &&
	test_grep "hook-pre-snapshot of .A.: .$TRASH/hook.sh pre. timed out after 2 s (killed)" err &&
	test "$(commits A)" = $n &&
	test -s hang.pid &&
	wait_for 5 gone "$(cat hang.pid)" &&
	sleep 0.5 &&
	! grep survived hooks.log &&
	expect_env failure A "" skipped &&
	test_expect_code 2 agent status &&
	test_grep "A CRITICAL: last snapshot skipped: .*timed out" out
'

test_expect_success 'a hung hook that closed its output is killed after hook-timeout too' '
	: >quiet-hang-pre &&
	test_when_finished "rm -f quiet-hang-pre" &&
	rm -f hang.pid &&
	n=$(commits A) &&
	start=$(date +%s) &&
	test_expect_code 1 agent snapshot A &&
	took=$(( $(date +%s) - start )) &&
	test $took -ge 2 && test $took -le 8 &&
	test_grep "timed out after 2 s (killed)" err &&
	test "$(commits A)" = $n &&
	wait_for 5 gone "$(cat hang.pid)"
'

test_done
