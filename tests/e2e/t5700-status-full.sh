#!/bin/bash
# t5700-status-full: a status record that cannot be written fails the run
# visibly.  The state directory is a 64 KiB tmpfs mounted by the test (as
# root; without root it is made read-only instead) and filled up: a
# snapshot that writes a commit, an unchanged one
# and a failing one all exit 1 with one line naming the record's file; the
# repository still gets the commit; status says CRITICAL (state directory
# cannot be written) instead of going stale, in text, JSON and the
# Prometheus textfile; once space is back, everything is OK again.
test_description='msgw-agent: a full state directory fails the run and turns status CRITICAL'
. "$(dirname "$0")/test-lib.sh"

# the state directory: a small tmpfs, or a plain directory made read-only
mkdir state
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=64k,mode=0700 tmpfs state 2>/dev/null; then
	test_when_finished "umount '$TRASH/state'"
	fill() { dd if=/dev/zero of=state/fill bs=4k 2>/dev/null || :; }
	unfill() { rm -f state/fill; }
	nospace="No space left on device"
elif [ "$(id -u)" != 0 ]; then
	fill() { chmod 0500 state; }
	unfill() { chmod 0700 state; }
	nospace="Permission denied"
else
	echo "# cannot mount a tmpfs: skipped"
	test_done
fi

test_expect_success 'setup: one gateway, snapshotted, status OK' '
	msgw-sim init gw --domain full.test --mailboxes 1 --seed 5700 >/dev/null &&
	cat >c.conf <<-EOF &&
	repository = "$TRASH/repo.git"
	state-dir  = "$TRASH/state"
	gateway "gw" {
	  location = "$TRASH/gw"
	  exclude  = {"Logs/**"}
	}
	EOF
	msgw-agent -c c.conf init >/dev/null &&
	msgw-agent -c c.conf snapshot >/dev/null &&
	test_expect_code 0 msgw-agent -c c.conf status &&
	test_grep "^MSGW OK - gw OK: " out &&
	cp state/status-gw status.before
'

test_expect_success 'full: a snapshot that writes a commit exits 1 naming the record, the commit stays' '
	before=$(git -C repo.git rev-parse gw) &&
	msgw-sim set gw ports.smtp 2525 &&
	fill &&
	test_when_finished unfill &&
	test_expect_code 1 msgw-agent -c c.conf snapshot &&
	after=$(git -C repo.git rev-parse gw) &&
	test "$after" != "$before" &&
	grep -v "warning: " err >errors &&
	test $(wc -l <errors) = 1 &&
	test_grep "^msgw-agent: cannot record the status of .gw. (snapshot ${after:0:12} was written): cannot write .$TRASH/state/status-gw.tmp.: $nospace$" errors &&
	test ! -s out &&
	test_cmp status.before state/status-gw &&
	git -C repo.git fsck --strict
'

test_expect_success 'full: status is CRITICAL, not stale, in text, JSON and Prometheus' '
	fill &&
	test_when_finished unfill &&
	test_expect_code 2 msgw-agent -c c.conf status &&
	head -1 out >line &&
	test_grep "^MSGW CRITICAL - state directory CRITICAL: status records cannot be written: cannot write .$TRASH/state/.probe-[0-9]*.: $nospace; gw OK: last snapshot [0-9]*s ago$" line &&
	test_grep "^state directory: CRITICAL: cannot write " out &&
	ls -a state >files &&
	! grep "^\.probe-" files &&
	test_expect_code 2 msgw-agent -c c.conf status --json &&
	python3 - out <<-\EOF &&
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["status"] == "CRITICAL" and d["exit"] == 2, d
	assert "cannot write" in d["state_error"] and "/state/.probe-" in d["state_error"], d
	EOF
	test_expect_code 2 msgw-agent -c c.conf status --prometheus m.prom &&
	grep -x "msgw_state_writable 0" m.prom &&
	grep -x "msgw_status 2" m.prom
'

test_expect_success 'full: an unchanged snapshot exits 1 too' '
	msgw-agent -c c.conf snapshot >/dev/null &&
	fill &&
	test_when_finished unfill &&
	test_expect_code 1 msgw-agent -c c.conf snapshot &&
	grep -v "warning: " err >errors &&
	test $(wc -l <errors) = 1 &&
	test_grep "^msgw-agent: cannot record the status of .gw.: cannot write .$TRASH/state/status-gw.tmp.: $nospace$" errors &&
	test ! -s out
'

test_expect_success 'full: a failing snapshot says both what failed and that it went unrecorded' '
	fill &&
	test_when_finished unfill &&
	mv gw gw.away &&
	test_when_finished "mv gw.away gw" &&
	test_expect_code 1 msgw-agent -c c.conf snapshot &&
	test_grep "^msgw-agent: .*$TRASH/gw" err &&
	test_grep "^msgw-agent: cannot record the status of .gw.: cannot write .$TRASH/state/status-gw.tmp.: $nospace$" err
'

test_expect_success 'space back: the next snapshot records, status OK again' '
	msgw-agent -c c.conf snapshot >out 2>err &&
	test ! -s err &&
	test_expect_code 0 msgw-agent -c c.conf status --prometheus m.prom &&
	test_grep "^MSGW OK - gw OK: " out &&
	! grep "^state directory" out &&
	grep -x "msgw_state_writable 1" m.prom &&
	ls -a state >files &&
	! grep -e "^\.probe-" -e "\.tmp$" files
'

test_done
