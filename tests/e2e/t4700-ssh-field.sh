#!/bin/bash
# t4700-ssh-field: the field's scenario, end to end over ssh.  Two
# simulated gateways, msgw1 and msgw2, are reachable only through the
# test's OpenSSH server: their files over SFTP, their service commands
# (msgw-sim stop/start/status) over ssh exec, their health checks as tcp
# probes from the server's side.  The agent snapshots msgw1 over SFTP and
# pushes to a bare remote repository over ssh; on a "new host" (another
# repository and state directory, both empty), the restore tool fetches
# from that remote and applies msgw1's snapshot onto msgw2 over SFTP,
# stopping and starting msgw2's service over ssh.  msgw2 then runs, passes
# its health check and carries msgw1's configuration, except its own
# (preserved) certificate.  The same again with --repo URL instead of
# fetch.  Also: trust --yes creates a known-hosts file that does not exist
# yet in an existing directory.
test_description='the field scenario over ssh: snapshot, push, fetch, apply onto the standby'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

FRESH="$TRASH/fresh.conf"
SIM="$MSGW_BUILD_DIR/msgw-sim"
A1=127.0.0.2
A2=127.0.0.3

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/msgw1' --timeout 5; msgw-sim stop '$TRASH/msgw2' --timeout 5"

# field_conf FILE REPOSITORY STATE: both gateways over ssh, the remote
field_conf() {
	printf 'repository = "%s"\nstate-dir = "%s"\n' "$2" "$3" >"$1" &&
	sshd_sim_gateway_conf "$1" msgw1 "$TRASH/msgw1" $A1 $PORT &&
	sshd_sim_gateway_conf "$1" msgw2 "$TRASH/msgw2" $A2 $PORT 'follows = "msgw1"' &&
	cat >>"$1" <<-EOF
	remote "offsite" {
	  url = "$SSH_URL_BASE$TRASH/remote.git"
	  identity = "$SSH_KEY"
	  known-hosts = "$SSH_KNOWN"
	}
	EOF
}

# console ADDR: the line the gateway listening on ADDR answers
console() {
	local line
	exec 3<>"/dev/tcp/$1/$PORT" || return 1
	IFS= read -r line <&3
	exec 3<&-
	printf '%s\n' "$line"
}

# ssh_run COMMAND: run a command on the server, as the tools do
ssh_run() {
	ssh -o BatchMode=yes -o UserKnownHostsFile="$SSH_KNOWN" -o StrictHostKeyChecking=yes \
		-i "$SSH_KEY" -p "$SSHD_PORT" "$SSH_USER@127.0.0.1" "$@"
}

test_expect_success 'setup: two gateways behind the ssh server, started over ssh' '
	gw_init msgw1 2 4700 &&
	gw_init msgw2 0 4701 &&
	msgw-sim deliver msgw1 $(mbx msgw1 1) 2 &&
	printf "route all\n" >msgw1/Templates/routing.txt &&
	echo "Signed, the msgw1 team" >>msgw1/Templates/notification.txt &&
	cp -r msgw2/Certificates msgw2-certs &&
	! diff -r msgw1/Certificates msgw2/Certificates >/dev/null &&
	ssh_run "$SIM start $TRASH/msgw1 --listen $A1" &&
	ssh_run "$SIM start $TRASH/msgw2 --listen $A2" &&
	test "$(console $A1)" = "MSGW-SIM OK msgw1.test 2" &&
	test "$(console $A2)" = "MSGW-SIM OK msgw2.test 0" &&
	git init -q --bare remote.git &&
	field_conf "$CONF" "$REPO" "$STATE" &&
	agent init >out
'

test_expect_success 'the agent snapshots msgw1 over SFTP and pushes over ssh' '
	agent snapshot msgw1 >out &&
	test_grep "^[0-9a-f]\{12\} msgw1: 0 modified, [0-9]* added, 0 removed$" out &&
	test_grep "^location: ssh://" <(git --git-dir="$REPO" show msgw1:meta) &&
	agent push >out &&
	test_grep "^offsite: 1 of 1 refs updated$" out &&
	git --git-dir="$REPO" rev-parse msgw1 >expect &&
	git --git-dir=remote.git rev-parse refs/heads/msgw1 >actual &&
	test_cmp expect actual
'

test_expect_success 'a new host: fetch fills an empty repository from the remote' '
	test ! -e fresh &&
	field_conf "$FRESH" "$TRASH/fresh/repo.git" "$TRASH/fresh/state" &&
	msgw-restore -c "$FRESH" fetch >out &&
	test_grep "^offsite: 1 refs updated$" out &&
	git --git-dir=fresh/repo.git rev-parse msgw1 >actual &&
	test_cmp expect actual &&
	msgw-restore -c "$FRESH" list >out &&
	test $(grep -c "^msgw1 " out) = 1
'

test_expect_success 'apply msgw1 onto msgw2 over SFTP, its service stopped and started over ssh' '
	gw_store_listing msgw2 >stores-before &&
	pid_before=$(msgw-sim status msgw2 | cut -d" " -f2) &&
	msgw-restore -c "$FRESH" plan msgw1 --to msgw2 >plan &&
	test_grep "onto msgw2 (ssh://" plan &&
	sed -n "/^findings:/,\$p" plan >findings &&
	printf "findings:\n  none\n" >expect-findings &&
	test_cmp expect-findings findings &&
	msgw-restore -c "$FRESH" apply msgw1 --to msgw2 --yes </dev/null >out 2>err &&
	test_grep "^restored [0-9a-f]\{12\} onto msgw2: " out &&
	test_grep "^service down " out &&
	pid_after=$(msgw-sim status msgw2 | cut -d" " -f2) &&
	test "$pid_before" != "$pid_after"
'

test_expect_success 'msgw2 runs and passes its health check' '
	ssh_run "$SIM status $TRASH/msgw2" >status &&
	test_grep "^running [0-9]*$" status &&
	msgw-sim status msgw2 >/dev/null &&
	test "$(console $A2)" = "MSGW-SIM OK msgw1.test 2" &&
	test "$(console $A1)" = "MSGW-SIM OK msgw1.test 2"
'

test_expect_success 'msgw2 carries msgw1'"'"'s configuration, except its own certificate' '
	gw_config_listing msgw1 >config-1 &&
	gw_config_listing msgw2 >config-2 &&
	test_cmp config-1 config-2 &&
	cmp msgw1/Gateway.json msgw2/Gateway.json &&
	cmp msgw1/Templates/routing.txt msgw2/Templates/routing.txt &&
	diff -r msgw2-certs msgw2/Certificates &&
	gw_store_listing msgw2 >stores-after &&
	test_cmp stores-before stores-after &&
	STATE="$TRASH/fresh/state" gw_no_leftovers msgw2 &&
	test ! -e "$STATE/journal-msgw2"
'

test_expect_success 'the new host recorded the restore; its repository verifies' '
	git --git-dir=fresh/repo.git show msgw2:meta >meta &&
	test_grep "^kind: restored$" meta &&
	test_grep "^restored-from: $(git --git-dir=fresh/repo.git rev-parse msgw1)$" meta &&
	git --git-dir=fresh/repo.git show msgw2~1:meta >meta &&
	test_grep "^kind: pre-restore$" meta &&
	msgw-agent -c "$FRESH" verify --all >out
'

test_expect_success 'a change on msgw1 reaches msgw2 through --repo URL' '
	msgw-sim set msgw1 mailbox.$(mbx msgw1 2).description "Changed on msgw1" &&
	echo "v2" >msgw1/Templates/routing.txt &&
	agent snapshot msgw1 >out &&
	test_grep "msgw1: 2 modified, 0 added, 0 removed$" out &&
	agent push >out &&
	msgw-sim deliver msgw2 $(mbx msgw1 1) 3 &&
	gw_store_listing msgw2 >stores-before &&
	test -s stores-before &&
	sed -e "s|$TRASH/fresh/|$TRASH/fresh2/|g" "$FRESH" >fresh2.conf &&
	msgw-restore -c fresh2.conf --repo "$SSH_URL_BASE$TRASH/remote.git" \
		apply msgw1 --to msgw2 --yes </dev/null >out 2>err &&
	test_grep "^restored [0-9a-f]\{12\} onto msgw2: 0 added, 2 modified, 0 removed$" out &&
	gw_config_listing msgw1 >config-1 &&
	gw_config_listing msgw2 >config-2 &&
	test_cmp config-1 config-2 &&
	diff -r msgw2-certs msgw2/Certificates &&
	gw_store_listing msgw2 >stores-after &&
	test_cmp stores-before stores-after &&
	ssh_run "$SIM status $TRASH/msgw2" >status &&
	test "$(console $A2)" = "MSGW-SIM OK msgw1.test 2" &&
	STATE="$TRASH/fresh2/state" gw_no_leftovers msgw2
'

test_expect_success 'trust --yes creates a known-hosts file that does not exist yet' '
	mkdir kh &&
	sed "s|known-hosts = \"$SSH_KNOWN\"|known-hosts = \"$TRASH/kh/known_hosts\"|" \
		"$CONF" >kh.conf &&
	test_grep "kh/known_hosts" kh.conf &&
	test_expect_code 1 msgw-agent -c kh.conf snapshot msgw1 &&
	test_grep "host key verification failed: no ssh-ed25519 key" err &&
	test ! -e kh/known_hosts &&
	msgw-agent -c kh.conf trust msgw1 --yes >out &&
	test_grep "recorded in .$TRASH/kh/known_hosts.:" out &&
	sshd_known_line >expect &&
	test_cmp expect kh/known_hosts &&
	test "$(stat -c %a kh/known_hosts)" = 600 &&
	msgw-agent -c kh.conf trust offsite --yes >out &&
	test_grep "already recorded" out &&
	msgw-agent -c kh.conf snapshot msgw1 >out &&
	test_grep "^msgw1: unchanged" out &&
	msgw-agent -c kh.conf push >out
'

test_expect_success 'a known-hosts file in a directory that does not exist: exit 2' '
	sed "s|known-hosts = \"$SSH_KNOWN\"|known-hosts = \"$TRASH/nodir/known_hosts\"|" \
		"$CONF" >nodir.conf &&
	test_expect_code 2 msgw-agent -c nodir.conf trust msgw1 --yes &&
	test_grep "nodir/known_hosts" err &&
	test ! -e nodir
'

test_done
