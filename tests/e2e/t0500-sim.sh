#!/bin/bash
# t0500-sim: the gateway simulator every other test relies on.  It must lay
# out a data directory like MailStore Gateway's, run as a real daemon on the
# console port, and lose mail honestly: mail sealed to one key cannot be
# opened once Gateway.json carries other key material for that mailbox.
test_description='msgw-sim: layout, service, mail and console actions'
. "$(dirname "$0")/test-lib.sh"

PORT=$((20000 + $$ % 20000))
PORT2=$((PORT + 1))
PORT3=$((PORT + 2))

# Cleanups registered inside a block run in its subshell and are lost, so
# every daemon a block may start is stopped from here.
test_when_finished 'msgw-sim stop gw --timeout 5; msgw-sim stop busy --timeout 5'
test_when_finished 'msgw-sim stop slow --timeout 5'
test_when_finished '[ -f hang.pid ] && kill -9 "$(cat hang.pid)"; rm -f hang.pid'

# console_line PORT: the line the daemon answers on 127.0.0.1:PORT
console_line() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	IFS= read -r line <&3
	exec 3<&-
	printf '%s\n' "$line"
}

test_expect_success 'init prints one id and password per mailbox' '
	msgw-sim init gw --domain example.test --mailboxes 2 --console-port $PORT >ids &&
	test $(wc -l <ids) = 2 &&
	test_grep "^mbx-[0-9a-f]\{32\} [A-Za-z0-9]\{20\}$" ids &&
	test $(grep -c "^mbx-[0-9a-f]\{32\} [A-Za-z0-9]\{20\}$" ids) = 2
'

test_expect_success 'init lays out the data directory' '
	test -f gw/Gateway.json &&
	test_grep "BEGIN CERTIFICATE" gw/Certificates/gateway.pem &&
	test -s gw/Templates/notification.txt &&
	test -s gw/Templates/bounce.txt &&
	test -d gw/Logs &&
	for id in $(cut -d" " -f1 ids); do test -d gw/$id || exit 1; done &&
	test $(ls gw | wc -l) = 6 &&
	test ! -e gw.pid
'

test_expect_success 'Gateway.json is pretty-printed with sorted keys' '
	test_grep "^  \"domain\": \"example.test\",$" gw/Gateway.json &&
	test_grep "^  \"product\": \"MailStore Gateway\",$" gw/Gateway.json &&
	test_grep "^  \"version\": \"23.1.0\"$" gw/Gateway.json &&
	test_grep "^  \"mode\": \"server\",$" gw/Gateway.json &&
	test_grep "\"console\": $PORT,$" gw/Gateway.json &&
	test_grep "\"status\": \"Active\"" gw/Gateway.json &&
	test_grep "\"created\": \"[0-9-]*T[0-9:]*Z\"" gw/Gateway.json &&
	grep "^  \"" gw/Gateway.json | cut -d\" -f2 >keys &&
	sort keys >sorted && test_cmp sorted keys
'

test_expect_success 'init refuses a non-empty directory and bad options' '
	test_expect_code 1 msgw-sim init gw --domain x.test --mailboxes 1 &&
	test_grep "^msgw-sim: .gw. exists and is not empty$" err &&
	test_expect_code 2 msgw-sim init other --mailboxes 1 &&
	test_grep "needs --domain" err &&
	test_grep "^usage: msgw-sim init" err &&
	test_expect_code 2 msgw-sim init other --domain x.test --mailboxes 1 --mode bogus &&
	test_expect_code 2 msgw-sim init other --domain x.test --mailboxes 1 --bogus &&
	test ! -e other &&
	mkdir empty && msgw-sim init empty --domain x.test --mailboxes 0 >out &&
	test ! -s out &&
	test_grep "\"mailboxes\": \[\]" empty/Gateway.json
'

test_expect_success '--help goes to stdout and exits 0; usage errors exit 2' '
	msgw-sim --help >out &&
	test_grep "msgw-sim fetch DIR MBX PASSWORD" out &&
	msgw-sim deliver --help >out &&
	test_grep "^usage: msgw-sim deliver DIR MBX" out &&
	test_expect_code 2 msgw-sim &&
	test_expect_code 2 msgw-sim bogus &&
	test_expect_code 2 msgw-sim fetch gw &&
	test_grep "too few arguments" err
'

test_expect_success 'the same seed gives the same gateway, another seed another one' '
	msgw-sim init s1 --domain s.test --mailboxes 3 --seed alpha >ids1 &&
	msgw-sim init s2 --domain s.test --mailboxes 3 --seed alpha >ids2 &&
	msgw-sim init s3 --domain s.test --mailboxes 3 --seed beta >ids3 &&
	test_cmp ids1 ids2 &&
	test_cmp s1/Gateway.json s2/Gateway.json &&
	test_cmp s1/Certificates/gateway.pem s2/Certificates/gateway.pem &&
	! cmp -s s1/Gateway.json s3/Gateway.json &&
	! cmp -s s1/Certificates/gateway.pem s3/Certificates/gateway.pem &&
	msgw-sim init u1 --domain s.test --mailboxes 1 >/dev/null &&
	msgw-sim init u2 --domain s.test --mailboxes 1 >/dev/null &&
	! cmp -s u1/Certificates/gateway.pem u2/Certificates/gateway.pem
'

test_expect_success 'start runs a daemon that answers on the console port' '
	test_expect_code 3 msgw-sim status gw &&
	test_grep "^stopped$" out &&
	timeout 20 sh -c "x=\$(msgw-sim start gw 2>&1)" &&
	msgw-sim status gw >out &&
	test_grep "^running [0-9][0-9]*$" out &&
	test "$(cut -d" " -f2 out)" = "$(cat gw.pid)" &&
	echo "MSGW-SIM OK example.test 2" >expect &&
	console_line $PORT >actual &&
	test_cmp expect actual &&
	console_line $PORT >actual &&
	test_cmp expect actual
'

test_expect_success 'a second start is refused while running' '
	test_expect_code 1 msgw-sim start gw &&
	test_grep "^msgw-sim: already running (pid [0-9]*)$" err
'

test_expect_success 'stop ends the daemon; stop and status are idempotent' '
	msgw-sim stop gw &&
	test ! -e gw.pid &&
	test_expect_code 3 msgw-sim status gw &&
	test_expect_code 0 msgw-sim stop gw &&
	test_grep "not running" err &&
	test_grep "service started: pid" gw/Logs/gateway.log &&
	test_grep "service stopped: pid" gw/Logs/gateway.log &&
	! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null
'

test_expect_success 'start refuses a broken Gateway.json' '
	cp -r s1 broken &&
	msgw-sim set broken ports.console $PORT2 &&
	cp broken/Gateway.json good.json &&
	printf "{\"product\": " >broken/Gateway.json &&
	test_expect_code 1 msgw-sim start broken &&
	test_grep "^msgw-sim: refusing to start: invalid configuration .broken/Gateway.json.: line" err &&
	test ! -e broken.pid &&
	test_expect_code 1 msgw-sim list broken &&
	test_grep "invalid configuration .broken/Gateway.json." err
'

test_expect_success 'start refuses a configuration missing a field or with a bad value' '
	grep -v "\"domain\"" good.json >broken/Gateway.json &&
	test_expect_code 1 msgw-sim start broken &&
	test_grep "missing field .domain." err &&
	sed "s/\"id\": \"mbx-/\"id\": \"mbx-x/" good.json >broken/Gateway.json &&
	test_expect_code 1 msgw-sim start broken &&
	test_grep "invalid id .mbx-x" err &&
	sed "s/\"keySalt\": \"[^\"]*\"/\"keySalt\": \"AAAA\"/" good.json >broken/Gateway.json &&
	test_expect_code 1 msgw-sim start broken &&
	test_grep "keySalt" err &&
	sed "s/\"smtp\": 25/\"smtp\": 0/" good.json >broken/Gateway.json &&
	test_expect_code 1 msgw-sim start broken &&
	test_grep "ports.smtp" err &&
	rm broken/Gateway.json &&
	test_expect_code 1 msgw-sim start broken &&
	test_grep "cannot read .broken/Gateway.json.: No such file" err &&
	test ! -e broken.pid
'

test_expect_success 'start reports a port already in use' '
	cp good.json broken/Gateway.json &&
	cp -r broken busy &&
	msgw-sim start broken &&
	test_expect_code 1 msgw-sim start busy &&
	test_grep "cannot listen on 127.0.0.1:$PORT2" err &&
	test ! -e busy.pid &&
	msgw-sim stop broken
'

test_expect_success 'MSGW_SIM_START_DELAY: start returns once listening' '
	cp -r s2 slow &&
	msgw-sim set slow ports.console $PORT3 &&
	before=$(date +%s%N) &&
	MSGW_SIM_START_DELAY=1 msgw-sim start slow &&
	after=$(date +%s%N) &&
	test $(( (after - before) / 1000000 )) -ge 1000 &&
	console_line $PORT3 >actual &&
	test_grep "^MSGW-SIM OK s.test 3$" actual &&
	msgw-sim stop slow
'

test_expect_success 'deliver and fetch round-trip' '
	read -r X PW <ids1 &&
	msgw-sim deliver s1 $X 3 &&
	msgw-sim deliver s1 $X &&
	test $(ls s1/$X | grep -c "^[0-9a-f]\{8\}-[0-9a-f]\{4\}-4[0-9a-f]\{3\}-[89ab][0-9a-f]\{3\}-[0-9a-f]\{12\}\.msg$") = 4 &&
	test_grep "\"messageCounter\": 4" s1/Gateway.json &&
	msgw-sim list s1 >out &&
	test_grep "^$X Active 4 Journal mailbox 1$" out &&
	! grep -q "message 1" s1/$X/* &&
	msgw-sim fetch s1 $X $PW >fetched &&
	test $(wc -l <fetched) = 4 &&
	cut -d" " -f2- fetched | sort >subjects &&
	printf "message %s\n" 1 2 3 4 >expect &&
	test_cmp expect subjects &&
	test -z "$(ls s1/$X)" &&
	msgw-sim fetch s1 $X $PW >out &&
	test ! -s out
'

test_expect_success 'fetch with a wrong password fails and keeps the mail' '
	read -r X PW <ids1 &&
	msgw-sim deliver s1 $X 2 &&
	test_expect_code 1 msgw-sim fetch s1 $X not-the-password &&
	test_grep "^msgw-sim: wrong password for mailbox .$X.$" err &&
	test $(ls s1/$X | wc -l) = 2 &&
	msgw-sim fetch s1 $X $PW >/dev/null
'

test_expect_success 'deliver refuses unknown and suspended mailboxes' '
	read -r X PW <ids1 &&
	test_expect_code 1 msgw-sim deliver s1 mbx-00000000000000000000000000000000 &&
	test_grep "no mailbox .mbx-00000000000000000000000000000000. in .s1/Gateway.json." err &&
	msgw-sim suspend s1 $X &&
	test_expect_code 1 msgw-sim deliver s1 $X &&
	test_grep "is suspended" err &&
	msgw-sim activate s1 $X &&
	msgw-sim list s1 >out &&
	test_grep "^$X Active 0 " out
'

test_expect_success 'mail is lost when Gateway.json carries other key material' '
	read -r X PW <ids2 &&
	cp -r s2 other &&
	msgw-sim deliver s2 $X 2 &&
	msgw-sim suspend other $X &&
	msgw-sim reset-password other $X >new &&
	read -r X2 PW2 <new &&
	test "$X2" = "$X" &&
	test "$PW2" != "$PW" &&
	cp other/Gateway.json s2/Gateway.json &&
	msgw-sim activate s2 $X &&
	test_expect_code 1 msgw-sim fetch s2 $X $PW2 &&
	test $(grep -c "^msgw-sim: cannot decrypt message .[0-9a-f-]*\.msg. in mailbox .$X.: key material does not match$" err) = 2 &&
	test ! -s out &&
	test $(ls s2/$X | wc -l) = 2 &&
	test_expect_code 1 msgw-sim fetch s2 $X $PW &&
	test_grep "wrong password" err
'

test_expect_success 'reset-password needs a suspended, empty mailbox' '
	read -r X PW <ids3 &&
	msgw-sim deliver s3 $X &&
	test_expect_code 1 msgw-sim reset-password s3 $X &&
	test_grep "^msgw-sim: mailbox .$X. must be suspended and empty to reset its password$" err &&
	msgw-sim suspend s3 $X &&
	test_expect_code 1 msgw-sim reset-password s3 $X &&
	test_grep "must be suspended and empty" err &&
	msgw-sim fetch s3 $X $PW >/dev/null &&
	cp s3/Gateway.json before.json &&
	msgw-sim reset-password s3 $X >new &&
	read -r X2 PW2 <new &&
	test "$X2" = "$X" &&
	! cmp -s before.json s3/Gateway.json &&
	msgw-sim activate s3 $X &&
	msgw-sim deliver s3 $X &&
	test_expect_code 1 msgw-sim fetch s3 $X $PW &&
	msgw-sim fetch s3 $X $PW2 >out &&
	test_grep " message 2$" out
'

test_expect_success 'delete needs a suspended, empty mailbox and removes its store' '
	X=$(sed -n 2p ids3 | cut -d" " -f1) &&
	PW=$(sed -n 2p ids3 | cut -d" " -f2) &&
	msgw-sim deliver s3 $X 3 &&
	test_expect_code 1 msgw-sim delete s3 $X &&
	test_grep "^msgw-sim: mailbox .$X. is active: suspend it first$" err &&
	msgw-sim suspend s3 $X &&
	test_expect_code 1 msgw-sim delete s3 $X &&
	test_grep "^msgw-sim: mailbox .$X. still holds 3 messages$" err &&
	msgw-sim fetch s3 $X $PW >/dev/null &&
	msgw-sim delete s3 $X &&
	test ! -e s3/$X &&
	! grep -q "$X" s3/Gateway.json &&
	test $(msgw-sim list s3 | wc -l) = 2 &&
	test_expect_code 1 msgw-sim delete s3 $X &&
	test_grep "no mailbox" err
'

test_expect_success 'add-mailbox, set and list' '
	msgw-sim add-mailbox s3 --description "Added later" >new &&
	read -r X PW <new &&
	test -d s3/$X &&
	msgw-sim list s3 >out &&
	test_grep "^$X Active 0 Added later$" out &&
	msgw-sim set s3 mailbox.$X.description "Renamed box" &&
	msgw-sim set s3 domain other.test &&
	msgw-sim set s3 mode proxy &&
	msgw-sim set s3 version 24.0.1 &&
	msgw-sim set s3 ports.pop3 1110 &&
	msgw-sim list s3 >out &&
	test_grep "^$X Active 0 Renamed box$" out &&
	test_grep "\"domain\": \"other.test\"" s3/Gateway.json &&
	test_grep "\"mode\": \"proxy\"" s3/Gateway.json &&
	test_grep "\"version\": \"24.0.1\"" s3/Gateway.json &&
	test_grep "\"pop3\": 1110" s3/Gateway.json &&
	test_expect_code 2 msgw-sim set s3 mode bogus &&
	test_expect_code 2 msgw-sim set s3 ports.console 70000 &&
	test_expect_code 2 msgw-sim set s3 ports.nope 25 &&
	test_expect_code 2 msgw-sim set s3 colour blue &&
	test_grep "unknown key .colour." err &&
	msgw-sim deliver s3 $X &&
	msgw-sim fetch s3 $X $PW >/dev/null
'

test_expect_success 'commands name a missing Gateway.json' '
	mkdir nogw &&
	test_expect_code 1 msgw-sim list nogw &&
	test_grep "^msgw-sim: cannot read .nogw/Gateway.json.: No such file or directory$" err &&
	test_expect_code 1 msgw-sim add-mailbox nogw &&
	test_grep "^msgw-sim: cannot read .nogw/Gateway.json.: No such file or directory$" err &&
	test_expect_code 1 msgw-sim fetch nogw/ mbx-00000000000000000000000000000000 pw &&
	test_grep "^msgw-sim: cannot read .nogw/Gateway.json.: No such file or directory$" err &&
	test ! -e nogw/Logs
'

test_expect_success 'stop gives up on a daemon that ignores SIGTERM' '
	cp -r u1 hang &&
	msgw-sim set hang ports.console $PORT2 &&
	MSGW_SIM_STOP_HANG=1 msgw-sim start hang &&
	before=$(date +%s) &&
	test_expect_code 1 msgw-sim stop hang --timeout 2 &&
	after=$(date +%s) &&
	test $((after - before)) -ge 2 &&
	test_grep "^msgw-sim: service (pid [0-9]*) did not stop within 2 s$" err &&
	msgw-sim status hang >out &&
	test_grep "^running" out &&
	kill -9 "$(cat hang.pid)" &&
	sleep 0.2 &&
	test_expect_code 3 msgw-sim status hang &&
	msgw-sim stop hang 2>err &&
	test_grep "removed stale pid file" err &&
	test ! -e hang.pid
'

test_done
