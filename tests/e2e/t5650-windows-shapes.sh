#!/bin/bash
# t5650-windows-shapes: the README's Windows service commands, verbatim,
# against stand-ins for sc.exe, findstr and powershell on top of the
# simulator.  The stand-ins reproduce the documented behaviour: `sc.exe
# stop` returns 0 at once while the service is STOP_PENDING (the daemon
# here takes 2 s to exit and then writes its old settings back), `sc.exe
# query` prints "STATE : N NAME", Stop-Service waits until the service is
# stopped.  Both shapes restore with the swap after the service is gone.
# This is not a test against Windows (see README).
test_description='README Windows command shapes against stand-ins'
. "$(dirname "$0")/test-lib.sh"
GW_TIMEOUT=6
. "$TEST_DIR/gw-lib.sh"

WIN="$TRASH/winbin"
export WIN_SIM_DIR="$TRASH/A" WIN_SIM_ADDR=127.0.0.2 WIN_STOP_DELAY=2
export PATH="$WIN:$PATH"

# readme_line KEY SHAPE: the README line "KEY = ..." of the shape whose
# line holds SHAPE (sc.exe or powershell), without its key
readme_line() {
	grep "^$1 *= \".*$2" "$SRC_DIR/README.md" | head -1 | sed "s/^$1 *= //"
}

# use_shape SHAPE: gateway A's stop, start and status from the README
use_shape() {
	local k line
	for k in stop start status; do
		line=$(readme_line $k "$1") && [ -n "$line" ] || return 1
		line=$(printf "%s" "$line" | sed "s/[\\&|]/\\\\&/g")
		sed -i "/^gateway \"A\"/,/^}/ s|^  $k *= .*|  $k = $line|" "$CONF" || return 1
	done
	grep -q "status = .*$1" "$CONF"
}

flip() {
	local id
	id=$(cat good.id)
	if cmp -s A/Gateway.json good.json; then id=$(cat changed.id); fi
	restore apply "$id" --to A --yes </dev/null
}

test_expect_success 'setup: stand-ins for sc.exe, findstr and powershell' '
	mkdir -p "$WIN" &&
	cat >"$WIN/sc.exe" <<-\EOS &&
	#!/bin/sh
	# sc.exe stand-in: query, stop (returns at once), start for one service
	[ "$2" = MailStoreGateway ] || { echo "[SC] OpenService FAILED 1060:"; exit 36; }
	state() {
		if msgw-sim status "$WIN_SIM_DIR" >/dev/null; then
			if [ -e "$WIN_SIM_DIR.stopping" ]; then echo "3  STOP_PENDING"; else echo "4  RUNNING"; fi
		else
			rm -f "$WIN_SIM_DIR.stopping"; echo "1  STOPPED"
		fi
	}
	case "$1" in
	query) printf "\nSERVICE_NAME: %s\n        TYPE               : 10  WIN32_OWN_PROCESS\n        STATE              : %s\n" "$2" "$(state)" ;;
	stop)
		case "$(state)" in *STOPPED) echo "[SC] ControlService FAILED 1062:"; exit 38 ;; esac
		: >"$WIN_SIM_DIR.stopping"
		MSGW_SIM_STOP_EARLY=1 msgw-sim stop "$WIN_SIM_DIR"
		printf "\nSERVICE_NAME: %s\n        STATE              : %s\n" "$2" "$(state)" ;;
	start)
		rm -f "$WIN_SIM_DIR.stopping"
		MSGW_SIM_STOP_DELAY=$WIN_STOP_DELAY msgw-sim start "$WIN_SIM_DIR" --listen "$WIN_SIM_ADDR" >&2 || exit 1
		printf "\nSERVICE_NAME: %s\n        STATE              : 2  START_PENDING\n" "$2" ;;
	esac
	EOS
	cat >"$WIN/findstr" <<-\EOS &&
	#!/bin/sh
	# findstr stand-in: the last argument is the string
	for a; do s=$a; done
	grep -F -- "$s"
	EOS
	cat >"$WIN/powershell" <<-\EOS &&
	#!/bin/sh
	# powershell stand-in: the three -Command scripts of the README only
	for a; do c=$a; done
	case "$c" in
	"Stop-Service -Name MailStoreGateway") exec msgw-sim stop "$WIN_SIM_DIR" --timeout 30 ;;
	"Start-Service -Name MailStoreGateway")
		exec env MSGW_SIM_STOP_DELAY=$WIN_STOP_DELAY msgw-sim start "$WIN_SIM_DIR" --listen "$WIN_SIM_ADDR" ;;
	"if ((Get-Service -Name MailStoreGateway).Status -eq '"'"'Stopped'"'"') { exit 3 }")
		msgw-sim status "$WIN_SIM_DIR" >/dev/null && exit 0; exit 3 ;;
	*) echo "powershell stand-in: unknown command: $c" >&2; exit 1 ;;
	esac
	EOS
	chmod +x "$WIN/sc.exe" "$WIN/findstr" "$WIN/powershell" &&
	gw_init A 1 1 &&
	gw_write_config &&
	MSGW_SIM_STOP_DELAY=2 gw_start A &&
	sc.exe query MailStoreGateway >q && test_grep "STATE *: 4  RUNNING" q &&
	agent init
'

test_expect_success 'the sc.exe stand-in: stop returns 0 while STOP_PENDING' '
	sc.exe stop MailStoreGateway >q &&
	test_grep "STATE *: 3  STOP_PENDING" q &&
	sc.exe query MailStoreGateway >q && test_grep "STOP_PENDING" q &&
	wait_for 5 eval "sc.exe query MailStoreGateway | grep -q STOPPED" &&
	test_expect_code 38 sc.exe stop MailStoreGateway &&
	sc.exe start MailStoreGateway >q && test_grep START_PENDING q
'

test_expect_success 'two recorded configurations of A' '
	agent snapshot A >out &&
	git -C "$REPO" rev-parse A >good.id && cp A/Gateway.json good.json &&
	gw_set_json A "d[\"ports\"][\"smtp\"] = 2525" &&
	agent snapshot A >out &&
	git -C "$REPO" rev-parse A >changed.id && cp A/Gateway.json changed.json
'

test_expect_success 'the README sc.exe shape: the swap waits for STOPPED' '
	use_shape sc.exe &&
	test_grep "findstr STOPPED" "$CONF" &&
	start=$(date +%s) &&
	flip >out 2>err &&
	test $(( $(date +%s) - start )) -ge 2 &&
	test_grep "^restored .* onto A" out &&
	cmp good.json A/Gateway.json &&
	gw_answers A a.test 1 &&
	gw_no_leftovers A
'

test_expect_success 'the README PowerShell shape restores too' '
	use_shape powershell &&
	test_grep "Stop-Service" "$CONF" &&
	flip >out 2>err &&
	test_grep "^restored .* onto A" out &&
	cmp changed.json A/Gateway.json &&
	gw_answers A a.test 1 &&
	gw_no_leftovers A
'

test_done
