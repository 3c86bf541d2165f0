#!/bin/bash
# t3200-root-race: issue 13 case 1, the plan/swap race.  The service
# account (played by B's stop command) replaces folders of the gateway with
# symbolic links after the plan was made and before the swap: Templates/
# with a link to a folder outside, Conf/ with a link to a file outside.
# (The script acts once: a rollback runs the stop command again.)
# The restore follows neither: it stops, rolls back and names the path;
# the outside files keep their content, owner and mode byte for byte.
test_description='msgw-restore: folders swapped for links mid-restore are not followed'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

# outside_listing: content, owner and mode of everything outside
outside_listing() {
	(cd "$TRASH/outside" && find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
		printf '%s %s %s\n' "$p" "$(stat -c '%F %a %u:%g' "$p")" \
			"$(if [ -f "$p" ] && [ ! -L "$p" ]; then sha256sum <"$p" | cut -d' ' -f1; fi)"
	done)
}

test_expect_success 'setup: A lacks Templates/victim.txt and has Conf/ 0755; B the reverse' '
	gw_init A 1 1 &&
	gw_init B 1 2 &&
	cp A/Gateway.json B/Gateway.json &&
	mkdir A/Conf B/Conf &&
	echo "conf" >A/Conf/c.txt && cp A/Conf/c.txt B/Conf/c.txt &&
	chmod 0755 A/Conf && chmod 0700 B/Conf &&
	echo "victim on B" >B/Templates/victim.txt &&
	mkdir -p outside/tdir &&
	echo "outside victim" >outside/tdir/victim.txt &&
	echo "outside conf" >outside/conf-file &&
	chmod 0600 outside/conf-file outside/tdir/victim.txt &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init &&
	agent snapshot A >out &&
	restore plan A --to B >plan &&
	test_grep "^  remove   Templates/victim.txt$" plan &&
	test_grep "Conf" plan &&
	outside_listing >outside-before
'

test_expect_success 'a stop command that swaps folders for links: apply refuses, outside untouched' '
	cat >race-stop.sh <<-EOS &&
	msgw-sim stop $TRASH/B || exit 1
	test -L $TRASH/B/Templates && exit 0
	mv $TRASH/B/Templates $TRASH/B/Templates.real &&
	ln -s $TRASH/outside/tdir $TRASH/B/Templates &&
	mv $TRASH/B/Conf $TRASH/B/Conf.real &&
	ln -s $TRASH/outside/conf-file $TRASH/B/Conf
	EOS
	sed "/^gateway \"B\"/,/^}/s|^  stop .*|  stop     = \"sh $TRASH/race-stop.sh\"|" "$CONF" >race.conf &&
	test_grep "race-stop.sh" race.conf &&
	test_expect_code 1 msgw-restore -c race.conf apply A --to B --yes </dev/null >out &&
	test_grep "folder .Templates. turned into a symbolic link since the plan; not followed; the restore was stopped and rolled back" err &&
	outside_listing >outside-after &&
	test_cmp outside-before outside-after &&
	test -f B/Templates.real/victim.txt &&
	test "$(stat -c %a B/Conf.real)" = 700 &&
	gw_running B
'

test_expect_success 'only Conf/ swapped for a link to a file: its mode is not set through it' '
	rm B/Templates && mv B/Templates.real B/Templates &&
	rm B/Conf && mv B/Conf.real B/Conf &&
	cat >race-stop2.sh <<-EOS &&
	msgw-sim stop $TRASH/B || exit 1
	test -L $TRASH/B/Conf && exit 0
	mv $TRASH/B/Conf $TRASH/B/Conf.real &&
	ln -s $TRASH/outside/conf-file $TRASH/B/Conf
	EOS
	sed "s|race-stop.sh|race-stop2.sh|" race.conf >race2.conf &&
	test_expect_code 1 msgw-restore -c race2.conf apply A --to B --yes </dev/null >out &&
	test_grep "cannot change mode of .*/B/Conf.: .Conf. is a symbolic link" err &&
	test_grep "rolled back; the previous configuration is back and running" err &&
	outside_listing >outside-after &&
	test_cmp outside-before outside-after &&
	test -f B/Templates/victim.txt &&
	test "$(stat -c %a B/Conf.real)" = 700 &&
	gw_running B
'

test_expect_success 'nothing is left in the gateway or the state folder' '
	test -z "$(find B -name "*.msgw-new" -o -name "*.msgw-old" -o -name ".msgw-journal*")" &&
	test ! -e "$STATE/journal-B" &&
	test ! -e "$TRASH/outside/tdir/victim.txt.msgw-old"
'

test_done
