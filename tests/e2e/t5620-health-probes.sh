#!/bin/bash
# t5620-health-probes: health checks that prove the service answers.  The
# simulator speaks TLS on its console port and POP3 with STLS on its POP3
# port; "tls:" completes a TLS handshake and "pop3:" a greeting, STLS and
# the handshake.  Both pass against the simulator and fail (rollback, exit
# 4) when the restored service's TLS is broken or its ports accept TCP but
# say nothing.  The plain "tcp:" check on the console port still passes.
test_description='msgw-restore: tls: and pop3: health probes'
. "$(dirname "$0")/test-lib.sh"
GW_TIMEOUT=3
. "$TEST_DIR/gw-lib.sh"

POP3=$((PORT + 2))

# set_health CHECK: gateway A's health check
set_health() {
	sed -i "/^gateway \"A\"/,/^}/ s|^  health   = .*|  health   = \"$1\"|" "$CONF" &&
	grep -q "health   = \"$1\"" "$CONF"
}

# break_next_start MODE: the next start of A (only that one) runs with
# MSGW_SIM_TLS_BROKEN=MODE; the rollback's start is a good one again
break_next_start() { echo "$1" >"$TRASH/break-next"; }

# flip: apply onto A the recorded configuration it does not run now
flip() {
	local id=$good
	if cmp -s A/Gateway.json good.json; then id=$changed; fi
	restore apply "$id" --to A --yes </dev/null
}

test_expect_success 'setup: A with a POP3 port, mail in mailbox 1, two recorded configurations' '
	gw_init A 1 1 --pop3-port $POP3 &&
	msgw-sim deliver A $(mbx A 1) 2 &&
	gw_write_config &&
	start="m=\$(cat $TRASH/break-next 2>/dev/null); rm -f $TRASH/break-next; MSGW_SIM_TLS_BROKEN=\$m msgw-sim start $TRASH/A --listen 127.0.0.2" &&
	sed -i "/^gateway \"A\"/,/^}/ s|^  start    = .*|  start = \"$(printf "%s" "$start" | sed "s/[\"\\\\]/\\\\&/g")\"|" "$CONF" &&
	test_grep "break-next" "$CONF" &&
	gw_start A &&
	agent init &&
	agent snapshot A >out &&
	good=$(git -C "$REPO" rev-parse A) && echo $good >good.id &&
	cp A/Gateway.json good.json &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2525" &&
	agent snapshot A >out &&
	changed=$(git -C "$REPO" rev-parse A) && echo $changed >changed.id
'
good=$(cat "$TRASH/good.id" 2>/dev/null)
changed=$(cat "$TRASH/changed.id" 2>/dev/null)

test_expect_success 'the simulator: console in clear and in TLS, POP3 with STLS and login' '
	gw_answers A a.test 1 &&
	openssl s_client -connect 127.0.0.2:$PORT -quiet </dev/null 2>/dev/null >tls-line &&
	test "$(head -1 tls-line)" = "MSGW-SIM OK a.test 1" &&
	printf "USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n" $(mbx A 1) $(pw A 1) |
		openssl s_client -connect 127.0.0.2:$POP3 -starttls pop3 -quiet 2>/dev/null >pop3 &&
	test_grep "^+OK logged in" pop3 &&
	test_grep "^+OK 2 [0-9]" pop3 &&
	printf "USER %s\r\nPASS wrong\r\nQUIT\r\n" $(mbx A 1) |
		openssl s_client -connect 127.0.0.2:$POP3 -starttls pop3 -quiet 2>/dev/null >pop3 &&
	test_grep "^-ERR \[AUTH\] login failed" pop3 &&
	exec 3<>/dev/tcp/127.0.0.2/$POP3 &&
	printf "USER %s\r\nQUIT\r\n" $(mbx A 1) >&3 &&
	cat <&3 >clear && exec 3<&- &&
	test_grep "^-ERR \[AUTH\] credentials only over TLS" clear
'

test_expect_success 'tls: and pop3: pass against the simulator' '
	set_health "tls:127.0.0.2:$PORT" &&
	flip >out 2>err &&
	test_grep "^restored .* onto A" out &&
	set_health "pop3:127.0.0.2:$POP3" &&
	flip >out 2>err &&
	test_grep "^restored .* onto A" out &&
	set_health "tcp:127.0.0.2:$PORT" &&
	flip >out 2>err &&
	test_grep "^restored .* onto A" out &&
	gw_answers A a.test 1
'

# expect_rollback CHECK MODE MESSAGE
expect_rollback() {
	set_health "$1" &&
	cp A/Gateway.json before.json &&
	break_next_start "$2" &&
	test_expect_code 4 flip &&
	test_grep "$3" err &&
	test_grep "the previous configuration is back and running" err &&
	cmp before.json A/Gateway.json &&
	test ! -e break-next &&
	gw_answers A a.test 1 &&
	gw_no_leftovers A
}

test_expect_success 'tls: against a broken TLS: rolled back, exit 4' '
	expect_rollback "tls:127.0.0.2:$PORT" 1 \
		"health check .tls:127.0.0.2:$PORT. failed for 3 s: TLS handshake with 127.0.0.2:$PORT failed: "
'

test_expect_success 'tls: against a port that accepts TCP and says nothing: rolled back, exit 4' '
	expect_rollback "tls:127.0.0.2:$PORT" silent \
		"health check .tls:127.0.0.2:$PORT. failed for 3 s: TLS handshake with 127.0.0.2:$PORT failed: no answer"
'

test_expect_success 'pop3: against a broken TLS: rolled back, exit 4' '
	expect_rollback "pop3:127.0.0.2:$POP3" 1 \
		"health check .pop3:127.0.0.2:$POP3. failed for 3 s: .*TLS handshake"
'

test_expect_success 'pop3: against a port that says nothing: rolled back, exit 4' '
	expect_rollback "pop3:127.0.0.2:$POP3" silent \
		"health check .pop3:127.0.0.2:$POP3. failed for 3 s: POP3 no greeting: no answer"
'

test_expect_success 'the mail of A is intact' '
	msgw-sim fetch A $(mbx A 1) $(pw A 1) >fetched &&
	test $(wc -l <fetched) = 2
'

test_expect_success 'the configuration refuses malformed probes' '
	set_health "tls:0" &&
	test_expect_code 2 restore plan A~1 --to A &&
	test_grep "bad health check .tls:0.: expected tls:PORT or tls:HOST:PORT" err &&
	set_health "pop3:h:" &&
	test_expect_code 2 restore plan A~1 --to A &&
	test_grep "bad health check .pop3:h:.: expected pop3:PORT or pop3:HOST:PORT" err
'

test_done
