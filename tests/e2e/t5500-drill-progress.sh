#!/bin/bash
# t5500-drill-progress: msgw-agent verify --drill restores each gateway's
# latest snapshot into a scratch directory and checks it file by file; a
# good drill is recorded (status shows last_drill), an archive rebuilt with
# git plumbing so one file's content no longer matches its manifest makes
# the drill fail naming that file, and the scratch directory never stays.
# The progress display (hashing, archiving) appears on stderr when it is a
# terminal (script(1) provides one), and never otherwise.
test_description='verify --drill, and the progress display on a terminal only'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test
mkdir -p "$TRASH/tmp"
export TMPDIR="$TRASH/tmp"

CONF="$TRASH/c.conf"
cat >"$CONF" <<EOF
repository = "$TRASH/repo.git"
state-dir = "$TRASH/state"
gateway "A" {
  location = "$TRASH/A"
  exclude = {"Logs/**"}
}
gateway "B" {
  location = "$TRASH/B"
  exclude = {"Logs/**"}
}
EOF
agent() { msgw-agent -c "$CONF" "$@"; }
scratch_empty() { [ -z "$(ls -A "$TMPDIR")" ]; }
last_drill() { python3 -c 'import json,sys; d=json.load(sys.stdin); print({g["gateway"]: g["last_drill"] for g in d["gateways"]}[sys.argv[1]])' "$1"; }

test_expect_success 'setup: two gateways, snapshotted' '
	msgw-sim init A --domain a.test --mailboxes 2 --seed 55 >/dev/null &&
	msgw-sim init B --domain b.test --mailboxes 1 --seed 56 >/dev/null &&
	mkdir -p A/Templates/deep/er &&
	echo "<p>deep</p>" >A/Templates/deep/er/x.html &&
	ln -s ../bounce.txt A/Templates/deep/link.txt &&
	chmod 600 A/Templates/notification.txt &&
	agent init >/dev/null &&
	agent snapshot >/dev/null &&
	{ agent status --json >st.json || true; } &&
	test "$(last_drill A <st.json)" = 0
'

test_expect_success 'verify --drill: every gateway restored and checked, recorded for status' '
	before=$(date +%s) &&
	agent verify --drill >out &&
	tipA=$(git -C repo.git rev-parse A) && tipB=$(git -C repo.git rev-parse B) &&
	n=$(git -C repo.git show A:manifest | tail -n +2 | wc -l) &&
	test_grep "^drill ok A ${tipA:0:12}: $n entries, [0-9]* bytes restored and checked$" out &&
	test_grep "^drill ok B ${tipB:0:12}: " out &&
	test $(wc -l <out) = 2 &&
	scratch_empty &&
	test_grep "^last-drill: " state/status-A &&
	test_grep "^last-drill-result: ok$" state/status-B &&
	test_expect_code 0 agent status --json &&
	python3 -m json.tool out >/dev/null &&
	test "$(last_drill A <out)" -ge $before &&
	test "$(last_drill B <out)" -ge $before &&
	agent status >out &&
	test_grep "last drill: recorded" out &&
	agent status --prometheus m.prom >/dev/null &&
	test "$(awk "\$1 == \"msgw_last_drill_timestamp_seconds{gateway=\\\"A\\\"}\" {print \$2}" m.prom)" -ge $before
'

test_expect_success 'verify --drill GATEWAY and --json' '
	agent verify --drill B --json >out &&
	python3 -m json.tool out >/dev/null &&
	python3 - out "$(git -C repo.git rev-parse B)" <<-\EOF
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["version"] == 1 and len(d["drills"]) == 1, d
	x = d["drills"][0]
	assert x["gateway"] == "B" and x["id"] == sys.argv[2] and x["result"] == "ok", x
	assert x["files"] > 0 and x["error"] is None, x
	EOF
'

test_expect_success 'an archive whose content no longer matches: the drill fails naming the file' '
	recorded=$(sed -n "s/^last-drill: //p" state/status-A) &&
	git -C repo.git show A:config.tar.zst >a.tar.zst &&
	zstd -q -d a.tar.zst -o a.tar &&
	off=$(grep -obUa "<p>deep</p>" a.tar | head -1 | cut -d: -f1) &&
	test -n "$off" &&
	python3 -c "
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, \"rb\").read())
b[off + 4] ^= 0x20
open(p, \"wb\").write(b)
" a.tar "$off" &&
	zstd -q a.tar -o b.tar.zst &&
	tar --zstd -xOf b.tar.zst Templates/deep/er/x.html >damaged &&
	! cmp -s damaged A/Templates/deep/er/x.html &&
	blob=$(git -C repo.git hash-object -w "$TRASH/b.tar.zst") &&
	git -C repo.git ls-tree A | sed "s/ [0-9a-f]*\tconfig.tar.zst$/ $blob\tconfig.tar.zst/" >tree &&
	test_grep "$blob" tree &&
	tree=$(git -C repo.git mktree <tree) &&
	new=$(git -C repo.git log -1 --format=%B A | git -C repo.git commit-tree $tree -p A) &&
	git -C repo.git update-ref refs/heads/A $new &&
	git -C repo.git fsck --strict 2>&1 &&
	test_expect_code 1 agent verify --drill &&
	test_grep "drill of .A. (${new:0:12}) failed: .*Templates/deep/er/x.html" err &&
	test_grep "^drill ok B " out &&
	! grep "drill ok A" out &&
	scratch_empty &&
	test_grep "^last-drill-result: failed$" state/status-A &&
	test_grep "^last-drill-error: .*Templates/deep/er/x.html" state/status-A &&
	test "$(sed -n "s/^last-drill: //p" state/status-A)" = "$recorded" &&
	test_expect_code 1 agent verify --drill A --json &&
	python3 -m json.tool out >/dev/null &&
	test_grep "\"result\": \"failed\"" out &&
	test_grep "\"error\": \".*Templates/deep/er/x.html" out
'

test_expect_success 'a gateway with no snapshot: the drill fails and says so' '
	test_expect_code 1 agent verify --drill nosuch &&
	test_grep "drill of .nosuch. failed: no snapshots of .nosuch." err &&
	scratch_empty
'

test_expect_success 'progress on a terminal: hashing and archiving shown on stderr' '
	echo "<p>changed</p>" >B/Templates/new.html &&
	script -qec "msgw-agent -c $CONF snapshot B" /dev/null >tty.out &&
	test_grep "hashing: [0-9]*/[0-9]* ([0-9]*%)" tty.out &&
	test_grep "archiving: [0-9]*/[0-9]* ([0-9]*%)" tty.out &&
	test_grep "B: 0 modified, 1 added, 0 removed" tty.out &&
	tr "\r" "\n" <tty.out | grep "B: 0 modified, 1 added" | grep -v "hashing\|archiving" &&
	git -C repo.git show B:manifest | grep -q "Templates/new.html"
'

test_expect_success 'not on a terminal: nothing but the normal output' '
	echo "<p>changed again</p>" >B/Templates/new.html &&
	agent snapshot B >out 2>err &&
	test ! -s err &&
	test $(wc -l <out) = 1 &&
	test_grep "^[0-9a-f]\{12\} B: 1 modified, 0 added, 0 removed$" out &&
	! grep -q "$(printf "\r")" out
'

test_expect_success 'quiet on a terminal: no progress either' '
	echo "<p>and again</p>" >B/Templates/new.html &&
	script -qec "msgw-agent -q -c $CONF snapshot B" /dev/null >tty.out &&
	! grep "hashing\|archiving" tty.out
'

test_done
