#!/bin/bash
# t1000-config: a bad configuration stops msgw-agent with exit 2 and one line
# "msgw-agent: FILE:LINE: message".  Each tests/fixtures/config/bad-*.conf
# has a bad-*.err holding that line with @FILE@ for the file's path; the
# fixture is copied into the scratch directory first so the path is stable.
# Also: a missing -c file, MSGW_BACKUP_CONF, and the shipped example.

test_description='configuration errors'
. "$(dirname "$0")/test-lib.sh"

FIXTURES="$SRC_DIR/tests/fixtures/config"

# expect_for NAME PATH: the expected stderr for fixture NAME loaded as PATH.
expect_for() {
	sed -e "s|@FILE@|$2|g" -e 's/^/msgw-agent: /' "$FIXTURES/$1.err"
}

for conf in "$FIXTURES"/bad-*.conf; do
	name=$(basename "$conf" .conf)
	test_expect_success "$name: exit 2 and its one-line message" '
		cp "$conf" "$name.conf" &&
		expect_for "$name" "$TRASH/$name.conf" >expect &&
		test_expect_code 2 msgw-agent -c "$TRASH/$name.conf" list &&
		test_cmp expect err
	'
done

test_expect_success 'a relative -c path is reported as given' '
	cp "$FIXTURES/bad-duration.conf" rel.conf &&
	expect_for bad-duration rel.conf >expect &&
	test_expect_code 2 msgw-agent -c rel.conf list &&
	test_cmp expect err
'

test_expect_success 'a missing -c file: exit 2, the file named' '
	echo "msgw-agent: $TRASH/nope.conf: cannot read configuration: No such file or directory" >expect &&
	test_expect_code 2 msgw-agent -c "$TRASH/nope.conf" list &&
	test_cmp expect err
'

test_expect_success 'a directory given as -c: exit 2' '
	mkdir -p confdir &&
	echo "msgw-agent: $TRASH/confdir: cannot read configuration: Is a directory" >expect &&
	test_expect_code 2 msgw-agent -c "$TRASH/confdir" list &&
	test_cmp expect err
'

test_expect_success 'MSGW_BACKUP_CONF names the file when there is no -c' '
	cp "$FIXTURES/bad-duration.conf" env.conf &&
	expect_for bad-duration "$TRASH/env.conf" >expect &&
	export MSGW_BACKUP_CONF="$TRASH/env.conf" &&
	test_expect_code 2 msgw-agent list &&
	test_cmp expect err
'

test_expect_success 'a missing MSGW_BACKUP_CONF file: exit 2, the file named' '
	echo "msgw-agent: $TRASH/gone.conf: cannot read configuration: No such file or directory" >expect &&
	export MSGW_BACKUP_CONF="$TRASH/gone.conf" &&
	test_expect_code 2 msgw-agent list &&
	test_cmp expect err
'

test_expect_success '-c wins over MSGW_BACKUP_CONF' '
	cp "$FIXTURES/bad-unknown-top.conf" c.conf &&
	expect_for bad-unknown-top "$TRASH/c.conf" >expect &&
	export MSGW_BACKUP_CONF="$TRASH/gone.conf" &&
	test_expect_code 2 msgw-agent -c "$TRASH/c.conf" list &&
	test_cmp expect err
'

test_expect_success 'the shipped example is accepted once its key files exist' '
	command -v msgw-agent >/dev/null &&
	mkdir -p keys var &&
	: >keys/id_ed25519 && : >keys/known_hosts && : >keys/offsite_ed25519 &&
	sed -e "s|/etc/msgw-backup/|$TRASH/keys/|g" -e "s|/var/lib/msgw-backup/|$TRASH/var/|g" \
		"$SRC_DIR/etc/msgw-backup.conf" >example.conf &&
	{ msgw-agent -c "$TRASH/example.conf" list >out 2>err || true; } &&
	if grep -F "example.conf:" err; then false; fi
'

test_done
