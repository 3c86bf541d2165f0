#!/bin/bash
# t0000-cli: the command line of both tools, without a gateway: --help of
# the tool and of every command goes to stdout and exits 0; usage errors
# exit 2 with a synopsis on stderr; commands not built yet exit 1 saying
# so; --version names the libraries; a missing configuration exits 2 and
# a missing repository exits 1, each with a clear message.
test_description='msgw-agent and msgw-restore: help, usage, exit codes'
. "$(dirname "$0")/test-lib.sh"

# commands TOOL: the command names listed by TOOL --help
commands() {
	"$1" --help | sed -n '/^commands:$/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'
}

# pending TOOL: the commands whose summary says they are not built yet
pending() {
	"$1" --help | sed -n '/^commands:$/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\) .*(not yet)$/\1/p'
}

cat >msgw.conf <<EOF
repository = "repo.git"
state-dir  = "state"
gateway "msgw1" {
  location = "$TRASH/gw1"
}
gateway "msgw2" {
  location = "$TRASH/gw2"
}
EOF

test_expect_success 'tool --help goes to stdout and exits 0' '
	for tool in msgw-agent msgw-restore; do
		$tool --help >out 2>err &&
		test ! -s err &&
		test_grep "^usage: $tool \[-c FILE\]" out &&
		test_grep "^commands:$" out &&
		test_grep "^exit status: 0 done, 1 failed, 2 usage" out &&
		$tool -h >out2 &&
		test_cmp out out2 || exit 1
	done
'

test_expect_success 'the agent lists its commands' '
	commands msgw-agent >cmds &&
	for c in init snapshot list show verify scan trust push run prune status; do
		grep -qx "$c" cmds || { echo "missing $c"; exit 1; }
	done &&
	commands msgw-restore >cmds &&
	for c in list show diff plan apply confirm rollback recover extract fetch follow; do
		grep -qx "$c" cmds || { echo "missing $c"; exit 1; }
	done
'

test_expect_success 'COMMAND --help of every built command: usage on stdout, exit 0' '
	for tool in msgw-agent msgw-restore; do
		pending $tool >skip &&
		for c in $(commands $tool); do
			grep -qx "$c" skip && continue
			# no configuration is needed to ask for help
			$tool -c /nonexistent/msgw.conf $c --help >out 2>err ||
				{ echo "$tool $c --help failed"; cat err; exit 1; }
			test ! -s err || { echo "$tool $c --help wrote to stderr"; exit 1; }
			grep -q "^usage: .*$c" out ||
				{ echo "$tool $c --help: no usage line"; cat out; exit 1; }
		done
	done
'

# The list shrinks as commands are built; each one listed as "(not yet)"
# must say so rather than do something half-way.
test_expect_success 'commands not built yet exit 1 saying so' '
	n=0 &&
	for tool in msgw-agent msgw-restore; do
		for c in $(pending $tool); do
			test_expect_code 1 $tool -c msgw.conf $c &&
			test_grep "^$tool: .$c. is not implemented yet$" err &&
			test ! -s out &&
			n=$((n + 1)) || exit 1
		done
	done &&
	echo "$n pending commands checked"
'

test_expect_success 'no command, an unknown command, a bad option: exit 2' '
	test_expect_code 2 msgw-agent &&
	test_grep "^usage: msgw-agent" err &&
	test ! -s out &&
	test_expect_code 2 msgw-agent bogus &&
	test_grep "^msgw-agent: unknown command .bogus. (see .msgw-agent --help.)$" err &&
	test_expect_code 2 msgw-restore bogus &&
	test_grep "unknown command .bogus." err &&
	test_expect_code 2 msgw-agent --bogus list &&
	test_grep "^usage: msgw-agent" err &&
	test_expect_code 2 msgw-restore --no-such-option &&
	test_expect_code 2 msgw-agent -c
'

test_expect_success '--version names the tool and every library' '
	for tool in msgw-agent msgw-restore; do
		$tool --version >out 2>err &&
		test ! -s err &&
		test_grep "^$tool [0-9][0-9.]*$" out &&
		test_grep "libgit2 [0-9]" out &&
		test_grep "libarchive [0-9]" out &&
		test_grep "zstd" out &&
		test_grep "libssh2 [0-9]" out || exit 1
	done
'

test_expect_success 'a missing configuration file: exit 2 naming it' '
	test_expect_code 2 msgw-agent -c nope.conf list &&
	test_grep "nope.conf" err &&
	test ! -s out &&
	MSGW_BACKUP_CONF=$TRASH/also-nope.conf test_expect_code 2 msgw-agent list &&
	test_grep "also-nope.conf" err
'

test_expect_success 'a missing repository: exit 1 with a hint to run init' '
	for args in "list" "show msgw1" "verify" "snapshot" "snapshot msgw1"; do
		test_expect_code 1 msgw-agent -c msgw.conf $args &&
		test_grep "^msgw-agent: repository .$TRASH/repo.git. does not exist (run .msgw-agent init.)$" err ||
			exit 1
	done &&
	test_expect_code 1 msgw-restore -c msgw.conf list &&
	test_grep "repository .$TRASH/repo.git. does not exist" err &&
	test ! -e repo.git
'

test_expect_success 'init creates the repository once, mode 0700' '
	msgw-agent -c msgw.conf init >out &&
	test_grep "^created repository .$TRASH/repo.git.$" out &&
	test "$(stat -c %a repo.git)" = 700 &&
	test -d state &&
	git -C repo.git rev-parse --is-bare-repository >bare &&
	echo true >expect &&
	test_cmp expect bare &&
	msgw-agent -c msgw.conf init >out &&
	test_grep "^using existing repository" out &&
	test_expect_code 2 msgw-agent -c msgw.conf init extra &&
	test_grep "^usage: msgw-agent init" err
'

test_expect_success 'MSGW_BACKUP_CONF names the configuration' '
	MSGW_BACKUP_CONF=$TRASH/msgw.conf msgw-agent list >out &&
	test_grep "^GATEWAY" out
'

test_expect_success 'usage errors of the commands exit 2 with a synopsis' '
	test_expect_code 2 msgw-agent -c msgw.conf show &&
	test_grep "^usage: msgw-agent show SNAPSHOT" err &&
	test_expect_code 2 msgw-agent -c msgw.conf show a b &&
	test_expect_code 2 msgw-agent -c msgw.conf show --bogus msgw1 &&
	test_expect_code 2 msgw-agent -c msgw.conf scan &&
	test_grep "^usage: msgw-agent scan GATEWAY" err &&
	test_expect_code 2 msgw-agent -c msgw.conf snapshot --bogus &&
	test_grep "^usage: msgw-agent snapshot" err &&
	test_expect_code 2 msgw-agent -c msgw.conf snapshot --tag t &&
	test_grep "tag needs exactly one gateway" err &&
	test_expect_code 2 msgw-agent -c msgw.conf verify --all msgw1 &&
	test_grep "all takes no SNAPSHOT" err &&
	test_expect_code 2 msgw-agent -c msgw.conf list -n x &&
	test_expect_code 2 msgw-agent -c msgw.conf list --bogus
'

test_expect_success 'unknown gateways and bad snapshot names exit 2' '
	test_expect_code 2 msgw-agent -c msgw.conf scan msgw9 &&
	test_grep "unknown gateway .msgw9." err &&
	test_expect_code 2 msgw-agent -c msgw.conf snapshot msgw9 &&
	test_grep "unknown gateway .msgw9." err &&
	test_expect_code 2 msgw-agent -c msgw.conf show "msgw1~x" &&
	test_grep "bad snapshot name .msgw1~x." err &&
	test_expect_code 2 msgw-agent -c msgw.conf verify ".." &&
	test_grep "bad snapshot name" err
'

test_expect_success 'an empty repository: list is empty, show names what is missing' '
	msgw-agent -c msgw.conf list >out &&
	test $(wc -l <out) = 1 &&
	msgw-agent -c msgw.conf list --json >out &&
	python3 -m json.tool out >/dev/null &&
	test_grep "\"snapshots\": \[\]" out &&
	test_expect_code 1 msgw-agent -c msgw.conf show msgw1 &&
	test_grep "^msgw-agent: no snapshot named .msgw1.$" err &&
	msgw-agent -c msgw.conf verify >out &&
	test_grep "^0 verified, 0 damaged$" out
'

test_done
