#!/bin/bash
# t5630-mail-probe: the check no peer has.  The seed's loss case (t3100: a
# password reset on A, B holding mail sealed to the old key) is forced
# through with --force=key-changed, as an admin who overrides the safety
# analysis would; B's health check logs in to that mailbox over POP3 with
# STLS and runs STAT, as MailStore Server does.  The login fails on the
# restored key material, so the restore is rolled back (exit 4) and B's
# mail still decrypts.  The probe password appears in no log, output,
# journal or repository object.
test_description='msgw-restore: the mail probe rolls back a restore that would lose mail'
. "$(dirname "$0")/test-lib.sh"
GW_TIMEOUT=3
. "$TEST_DIR/gw-lib.sh"

POP3=$((PORT + 2))

test_expect_success 'setup: B bootstrapped from A, both with POP3, B holds mail in mailbox 1' '
	gw_init A 2 1 --pop3-port $POP3 &&
	gw_init B 0 2 --pop3-port $POP3 &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init >/dev/null &&
	agent snapshot A >/dev/null &&
	restore apply A --to B --yes </dev/null >/dev/null &&
	X=$(mbx A 1) &&
	msgw-sim deliver B $X 3 &&
	test $(ls B/$X | wc -l) = 3 &&
	agent snapshot B >out &&
	test_grep "B: 1 modified, 0 added, 0 removed" out &&
	cp B/Gateway.json old-B.json
'

test_expect_success 'on A: mailbox 1 emptied, suspended, password reset, activated' '
	X=$(mbx A 1) &&
	msgw-sim suspend A $X &&
	msgw-sim reset-password A $X >new-pw &&
	msgw-sim activate A $X &&
	agent snapshot A >out &&
	test_grep "A: 1 modified, 0 added, 0 removed" out
'

test_expect_success 'B gets a mail probe on mailbox 1 with the password MailStore Server uses' '
	pw A 1 >probe-pw &&
	chmod 600 probe-pw &&
	sed -i "/^gateway \"B\"/,/^}/ s|^  health   = .*|  health   = \"pop3:127.0.0.3:$POP3\"\n  probe-mailbox = \"$(mbx A 1)\"\n  probe-password-file = \"$TRASH/probe-pw\"|" "$CONF" &&
	test_grep "probe-mailbox = \"$(mbx A 1)\"" "$CONF" &&
	restore plan A --to B >out 2>err || test $? = 3
'

test_expect_success 'a password file others can read is refused, with the chmod to run' '
	chmod 640 probe-pw &&
	test_expect_code 2 restore plan A --to B &&
	test_grep "probe-password-file .$TRASH/probe-pw. is readable by others: run .chmod 600 $TRASH/probe-pw." err &&
	chmod 600 probe-pw
'

test_expect_success 'a mail probe without its password file is refused' '
	sed "/probe-password-file/d" "$CONF" >half.conf &&
	test_expect_code 2 msgw-restore -c half.conf plan A --to B &&
	test_grep "gateway .B. has .probe-mailbox. without .probe-password-file." err
'

test_expect_success 'forced with --force=key-changed: the mail probe fails, rolled back, exit 4' '
	X=$(mbx A 1) &&
	gw_listing B >before &&
	test_expect_code 4 restore apply A --to B --yes --force=key-changed </dev/null &&
	test_grep "health check .pop3:127.0.0.3:$POP3. with the mail probe failed for 3 s: POP3 login of the probe mailbox refused: .-ERR \[AUTH\] login failed." err &&
	test_grep "the previous configuration is back and running" err &&
	cmp old-B.json B/Gateway.json &&
	gw_listing B >after &&
	test_cmp before after &&
	gw_answers B a.test 2 &&
	gw_no_leftovers B
'

test_expect_success 'and the mail still decrypts' '
	X=$(mbx A 1) &&
	msgw-sim fetch B $X $(pw A 1) >fetched &&
	test $(wc -l <fetched) = 3
'

test_expect_success 'the simulator: STAT fails when the stored mail cannot be decrypted' '
	X=$(mbx A 1) &&
	Y=$(mbx A 2) &&
	printf "USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n" $X "$(pw A 1)" |
		openssl s_client -connect 127.0.0.3:$POP3 -starttls pop3 -quiet 2>/dev/null >pop3 &&
	test_grep "^+OK 0 0" pop3 &&
	msgw-sim deliver B $Y 1 &&
	mv B/$Y/*.msg B/$X/ &&
	printf "USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n" $X "$(pw A 1)" |
		openssl s_client -connect 127.0.0.3:$POP3 -starttls pop3 -quiet 2>/dev/null >pop3 &&
	test_grep "^+OK logged in" pop3 &&
	test_grep "^-ERR cannot decrypt message .*: key material does not match" pop3
'

test_expect_success 'the probe password is in no log, output, journal or repository object' '
	secret=$(cat probe-pw) &&
	test ${#secret} -ge 16 &&
	find . -type f ! -path "./repo.git/*" ! -name "ids-*" ! -name probe-pw ! -name new-pw -print0 |
		xargs -0 grep -lF -e "$secret" >leaks || true &&
	test_cmp /dev/null leaks &&
	git -C "$REPO" cat-file --batch-all-objects --batch-check="%(objectname) %(objecttype)" >objects &&
	test -s objects &&
	while read -r id type; do
		git -C "$REPO" cat-file $type $id >obj &&
		if [ "$(head -c4 obj | od -An -tx1 | tr -d " ")" = 28b52ffd ]; then
			zstd -dcq obj >obj.plain && mv obj.plain obj
		fi &&
		if grep -qF -e "$secret" obj; then echo "$id $type" >>leaks; fi &&
		if grep -qF -e "$(mbx A 1)" obj; then echo "$id" >>seen; fi
	done <objects &&
	test_cmp /dev/null leaks &&
	test -s seen
'

test_done
