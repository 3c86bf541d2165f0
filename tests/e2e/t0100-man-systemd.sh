#!/bin/bash
# t0100-man-systemd: the manual pages and the systemd units.
#
# Man pages: each renders with man -l and groff -ww without a warning, and
# documents what the binaries offer: every command of msgw-agent and
# msgw-restore, every long option their --help texts name, every key the
# configuration parser knows, the exit codes, MSGW_BACKUP_CONF.
#
# Units: systemd-analyze verify accepts them (copied to a scratch directory
# with ExecStart pointing at the build, since verify wants the programs to
# exist), they run what they should, sandboxed, and the offline security
# review rates them OK.  Skipped with a message only when systemd-analyze
# is not installed (scripts/install-deps installs the systemd package).
test_description='man pages render and cover the CLI; systemd units verify'
. "$(dirname "$0")/test-lib.sh"

MAN="$SRC_DIR/man"
UNITS="$SRC_DIR/etc/systemd"

# render PAGE: the page as plain text, 80 columns
render() {
	MANWIDTH=80 MAN_KEEP_FORMATTING=0 man -l "$1" 2>/dev/null | col -b
}

# flat FILE: FILE with all white space runs made one space
flat() {
	tr -s " \t\n" "   " <"$1"
}

# commands TOOL: the command names of TOOL's --help
commands() {
	"$1" --help | awk '/^commands:/ { f = 1; next } /^$/ { f = 0 } f { print $1 }'
}

# long_options TOOL [CMD]: the long options a --help text names
long_options() {
	"$@" --help | grep -o -- '--[a-z][a-z-]*' | sort -u
}

test_expect_success 'each man page renders without a warning' '
	for p in msgw-agent.8 msgw-restore.8 msgw-backup.conf.5; do
		test -f "$MAN/$p" || { echo "missing $p"; return 1; }
		MANWIDTH=80 man --warnings -l "$MAN/$p" >out 2>err &&
		test_grep "^NAME" out || return 1
		if [ -s err ]; then echo "$p: man warnings:"; cat err; return 1; fi
		groff -ww -man -z "$MAN/$p" 2>err || return 1
		if [ -s err ]; then echo "$p: groff warnings:"; cat err; return 1; fi
	done
'

test_expect_success 'msgw-agent(8) covers every command and option' '
	render "$MAN/msgw-agent.8" >page &&
	for c in $(commands msgw-agent); do
		grep -q "^       $c\([[:space:]]\|$\)" page || { echo "command $c not documented"; return 1; }
		for o in $(long_options msgw-agent $c); do
			grep -q -e "$o" page || { echo "$c: option $o not documented"; return 1; }
		done
	done &&
	for o in $(long_options msgw-agent); do
		grep -q -e "$o" page || { echo "global option $o not documented"; return 1; }
	done
'

test_expect_success 'msgw-restore(8) covers every command and option' '
	render "$MAN/msgw-restore.8" >page &&
	for c in $(commands msgw-restore); do
		grep -q "^       $c\([[:space:]]\|$\)" page || { echo "command $c not documented"; return 1; }
		for o in $(long_options msgw-restore $c); do
			grep -q -e "$o" page || { echo "$c: option $o not documented"; return 1; }
		done
	done &&
	for code in mailbox-removed key-changed target-diverged proxy-mode version-mismatch; do
		grep -q "^       $code" page || { echo "finding $code not documented"; return 1; }
	done &&
	test_grep "THE RESTORE TRANSACTION" page
'

test_expect_success 'exit codes, environment and files are documented' '
	for p in msgw-agent.8 msgw-restore.8; do
		render "$MAN/$p" >page &&
		sed -n "/^EXIT STATUS/,/^ENVIRONMENT/p" page >codes &&
		for n in 0 1 2 3 4 5 6; do
			grep -q "^       $n " codes || { echo "$p: exit code $n missing"; return 1; }
		done &&
		flat page | grep -q "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN" ||
			{ echo "$p: the status convention is missing"; return 1; } &&
		test_grep "MSGW_BACKUP_CONF" page &&
		test_grep "/etc/msgw-backup/msgw-backup.conf" page || return 1
	done &&
	render "$MAN/msgw-backup.conf.5" >page &&
	test_grep "MSGW_BACKUP_CONF" page
'

test_expect_success 'msgw-backup.conf(5) documents every key the parser knows' '
	render "$MAN/msgw-backup.conf.5" >page &&
	grep -o "\(CFG_[A-Z_]*\|DURATION\|READABLE\|COUNT\)(\"[a-z][a-z-]*\"" \
		"$SRC_DIR/common/config.c" | sed "s/.*(\"//; s/\"$//" | sort -u >keys &&
	test "$(wc -l <keys)" -gt 20 &&
	while read k; do
		grep -q -e "$k" page || { echo "key $k not documented"; return 1; }
	done <keys
'

test_expect_success 'the example in msgw-backup.conf(5) is a valid configuration' '
	render "$MAN/msgw-backup.conf.5" |
		sed -n "/^EXAMPLES/,/^FILES/p" |
		sed -n "/^[[:space:]]*repository =/,/A gateway on the same host/p" |
		grep -v "A gateway on the same host" |
		sed "s|/etc/msgw-backup|$TRASH/etc|g; s|/var/lib/msgw-backup|$TRASH/var|g" >ex.conf &&
	test_grep "^[[:space:]]*gateway \"msgw2\"" ex.conf &&
	mkdir etc && touch etc/id_ed25519 etc/known_hosts etc/offsite_ed25519 &&
	test_expect_code 0 msgw-agent -c ex.conf prune --help &&
	test_expect_code 1 msgw-agent -c ex.conf list &&
	test_grep "repository .*does not exist" err
'

# Units with ExecStart pointing at the build, in a scratch directory.
units_here() {
	mkdir -p units &&
	cp "$UNITS"/* units/ &&
	sed -i "s|/usr/local/bin/|$MSGW_BUILD_DIR/|g" units/*
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "# systemd-analyze not installed (Debian package systemd): skipping the unit checks"
	test_done
fi

test_expect_success 'the units exist and name /usr/local/bin' '
	for u in msgw-agent.service msgw-agent.timer msgw-agent-daemon.service \
		msgw-restore-follow@.service msgw-restore-recover.service; do
		test -f "$UNITS/$u" || { echo "missing $u"; return 1; }
	done &&
	test_grep "^ExecStart=/usr/local/bin/msgw-agent snapshot --kind scheduled$" "$UNITS/msgw-agent.service" &&
	test_grep "^Type=oneshot$" "$UNITS/msgw-agent.service" &&
	test_grep "^ExecStart=/usr/local/bin/msgw-agent run$" "$UNITS/msgw-agent-daemon.service" &&
	test_grep "^ExecReload=/bin/kill -HUP \$MAINPID$" "$UNITS/msgw-agent-daemon.service" &&
	test_grep "^ExecStart=/usr/local/bin/msgw-restore follow %i$" "$UNITS/msgw-restore-follow@.service" &&
	test_grep "^ExecStart=/usr/local/bin/msgw-restore recover$" "$UNITS/msgw-restore-recover.service" &&
	test_grep "^Type=oneshot$" "$UNITS/msgw-restore-recover.service" &&
	test_grep "^WantedBy=multi-user.target$" "$UNITS/msgw-restore-recover.service" &&
	test_grep "^Persistent=true$" "$UNITS/msgw-agent.timer" &&
	test_grep "^OnCalendar=\*:0/15$" "$UNITS/msgw-agent.timer" &&
	test_grep "^WantedBy=timers.target$" "$UNITS/msgw-agent.timer"
'

test_expect_success 'every service is sandboxed' '
	for u in "$UNITS"/*.service; do
		for d in ProtectSystem=strict ReadWritePaths=/var/lib/msgw-backup NoNewPrivileges=yes \
			PrivateTmp=yes ProtectHome=read-only PrivateDevices=yes \
			ProtectKernelTunables=yes ProtectControlGroups=yes RestrictNamespaces=yes \
			SystemCallFilter=@system-service UMask=0077; do
			grep -q "^$d$" "$u" || { echo "$(basename "$u"): no $d"; return 1; }
		done
	done
'

test_expect_success 'the ExecStart commands exist in the binaries' '
	msgw-agent snapshot --help >h &&
	test_grep "--kind KIND" h &&
	msgw-agent run --help >/dev/null &&
	msgw-restore follow --help >/dev/null &&
	msgw-restore recover --help >/dev/null &&
	! msgw-agent run --help | grep -q "not yet" &&
	! msgw-restore follow --help | grep -q "not yet"
'

test_expect_success 'systemd-analyze verify accepts every unit' '
	units_here &&
	(cd units && systemd-analyze verify --man=no --generators=no \
		msgw-agent.service msgw-agent.timer msgw-agent-daemon.service \
		msgw-restore-recover.service msgw-restore-follow@msgw2.service) >out 2>&1 ||
		{ cat out; return 1; }
	if [ -s out ]; then cat out; return 1; fi
'

test_expect_success 'systemd-analyze verify notices a broken unit (the check works)' '
	units_here &&
	sed -i "s|^OnCalendar=.*|OnCalendar=every now and then|" units/msgw-agent.timer &&
	! (cd units && systemd-analyze verify --man=no --generators=no msgw-agent.timer) >out 2>&1 &&
	test_grep "calendar" out &&
	rm -rf units && units_here &&
	sed -i "s|^ExecStart=.*|ExecStart=$TRASH/nosuch/msgw-agent run|" units/msgw-agent-daemon.service &&
	! (cd units && systemd-analyze verify --man=no --generators=no msgw-agent-daemon.service) >out 2>&1 &&
	test_grep "not executable" out
'

test_expect_success 'the offline security review rates every service OK' '
	rm -rf units && units_here &&
	for u in msgw-agent.service msgw-agent-daemon.service msgw-restore-recover.service \
		msgw-restore-follow@msgw2.service; do
		(cd units && systemd-analyze security --offline=yes --no-pager --threshold=50 "$u") \
			>out 2>&1 || { cat out; return 1; }
		test_grep "Overall exposure level for $u: [0-4]\.[0-9] OK" out || return 1
	done
'

test_done
