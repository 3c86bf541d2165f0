#!/bin/bash
# t4950-cycle-parallel: snapshot and run read several gateways at once.
# Six simulated gateways as local paths and three over SFTP (a real sshd),
# in one run: every branch's manifest and archive equal those of the same
# gateway snapshotted alone (parallel 1, in a second repository); results
# come in the configuration's order (and the order named), as text and as
# JSON; the repository passes git fsck.  The bound holds and is reached: a
# pre-snapshot hook counts the gateways between their pre-snapshot hook and
# their post-snapshot hook, the first N of them waiting for one another, so
# that exactly N run at once and never more (parallel = 3 from the
# configuration, then --parallel 5, then run --once --parallel 4).  Also:
# "snapshot A A" still writes A once (the second finds it unchanged), a
# gateway's warnings stay with its result, an encrypted repository gets
# every branch sealed with its key, and a bad 'parallel' (key or option)
# is a usage error (exit 2).
test_description='snapshot/run: gateways read concurrently, results in order, the bound'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

CONF="$TRASH/c.conf"
SEQ="$TRASH/seq.conf"
REPO="$TRASH/repo.git"
agent() { msgw-agent -c "$CONF" "$@"; }
LOCAL="L1 L2 L3 L4 L5 L6"
REMOTE="S1 S2 S3"
ALL="L1 S1 L2 L3 S2 L4 L5 S3 L6"

sshd_begin

# hook.sh pre|post: the pre-snapshot hook marks its gateway active and
# records how many are (in counts); the first $(cat bound) to arrive wait
# (up to 10 s) until that many have arrived, and record the count again;
# the post-snapshot and failure hooks unmark it
cat >"$TRASH/hook.sh" <<'EOF'
#!/bin/sh
d=$(dirname "$0")
if [ "$1" != pre ]; then
	rm -f "$d/active/$MSGW_GATEWAY"
	exit 0
fi
bound=$(cat "$d/bound")
touch "$d/active/$MSGW_GATEWAY"
ls "$d/active" | wc -l >>"$d/counts"
n=$(flock "$d/arrivals.lock" sh -c 'echo "$2" >>"$1/arrivals"; wc -l <"$1/arrivals"' sh "$d" "$MSGW_GATEWAY")
[ "$n" -le "$bound" ] || exit 0
i=0
while [ "$(wc -l <"$d/arrivals")" -lt "$bound" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "only $(wc -l <"$d/arrivals") of $bound arrived together" >&2; exit 1; }
	sleep 0.1
done
ls "$d/active" | wc -l >>"$d/counts"
EOF
chmod +x "$TRASH/hook.sh"

# conf FILE REPO [top-level lines]: every gateway, in the order of $ALL
conf() {
	local file="$1" repo="$2" g
	shift 2
	{
		printf 'repository = "%s"\nstate-dir = "%s"\n' "$repo" "$repo.state"
		printf '%s\n' "$@"
	} >"$file"
	for g in $ALL; do
		case "$g" in
		L*) printf 'gateway "%s" {\n  location = "%s"\n  exclude = {"Logs/**"}\n}\n' \
			"$g" "$TRASH/$g" >>"$file" ;;
		S*) sshd_gateway_conf "$file" "$g" "$SSH_URL_BASE$TRASH/$g" 'exclude = {"Logs/**"}' ;;
		esac
	done
}

# bounded N: reset the counters for a run whose bound is N
bounded() {
	rm -rf active arrivals counts && mkdir active && echo "$1" >bound
}
# max_count: the most gateways the hooks saw active at once
max_count() { sort -n counts | tail -1; }

test_expect_success 'setup: nine gateways (three over SFTP), two repositories' '
	i=0 &&
	for g in $LOCAL $REMOTE; do
		i=$((i + 1)) &&
		msgw-sim init "$g" --domain "$(echo $g | tr A-Z a-z).test" --mailboxes 1 \
			--seed $((4950 + i)) >/dev/null &&
		mkdir -p "$g/Rules" &&
		for k in $(seq 1 $((i * 7))); do echo "rule $g $k" >"$g/Rules/r$k.txt" || exit 1; done
	done &&
	conf "$CONF" "$REPO" "parallel = 3" \
		"hook-pre-snapshot = \"$TRASH/hook.sh pre\"" \
		"hook-post-snapshot = \"$TRASH/hook.sh post\"" \
		"hook-failure = \"$TRASH/hook.sh post\"" &&
	conf "$SEQ" "$TRASH/seq.git" "parallel = 1" &&
	agent init >/dev/null &&
	msgw-agent -c "$SEQ" init >/dev/null
'

test_expect_success 'snapshot: nine gateways, parallel 3 from the configuration; results in order' '
	bounded 3 &&
	agent snapshot >out 2>err &&
	test_grep "^3$" counts &&
	test "$(max_count)" = 3 &&
	test "$(wc -l <arrivals)" = 9 &&
	sed "s/^[0-9a-f]\{12\} \([A-Z0-9]*\): .*/\1/" out | tr "\n" " " >order &&
	test "$(cat order)" = "$(echo $ALL) " &&
	test_grep "^[0-9a-f]\{12\} S2: 0 modified, [0-9]* added, 0 removed$" out &&
	test ! -s err &&
	git -C "$REPO" fsck --strict
'

test_expect_success 'each branch equals the same gateway snapshotted alone' '
	for g in $ALL; do
		msgw-agent -c "$SEQ" snapshot "$g" >/dev/null || exit 1
	done &&
	for g in $ALL; do
		git -C "$REPO" show "$g:manifest" >par.manifest &&
		git -C seq.git show "$g:manifest" >seq.manifest &&
		test_cmp seq.manifest par.manifest &&
		test "$(git -C "$REPO" rev-parse "$g:config.tar.zst")" = \
			"$(git -C seq.git rev-parse "$g:config.tar.zst")" || exit 1
	done &&
	agent verify --all >/dev/null
'

test_expect_success '--parallel 5 overrides it; named gateways come in the order named; --json' '
	echo "changed" >L6/Rules/r1.txt &&
	echo "changed" >S1/Rules/r1.txt &&
	bounded 5 &&
	agent snapshot --parallel 5 --json L6 S3 S1 L1 L2 S2 L3 >out &&
	test "$(max_count)" = 5 &&
	python3 - out <<-\EOF
	import json, sys
	r = json.load(open(sys.argv[1]))["results"]
	assert [x["gateway"] for x in r] == "L6 S3 S1 L1 L2 S2 L3".split(), r
	res = {x["gateway"]: x["result"] for x in r}
	assert res == {"L6": "written", "S1": "written", "S3": "unchanged", "L1": "unchanged",
		       "L2": "unchanged", "S2": "unchanged", "L3": "unchanged"}, res
	EOF
	test "$(git -C "$REPO" log -1 --format=%s L6)" = "L6: 1 modified, 0 added, 0 removed"
'

test_expect_success 'run --once --parallel 4: the bound, results logged in order, status per gateway' '
	bounded 4 &&
	echo "again" >S3/Rules/r2.txt &&
	msgw-agent -c "$CONF" -v run --once --parallel 4 2>log ||
		{ cat log; false; } &&
	test "$(max_count)" = 4 &&
	grep -e ": unchanged$" -e " [A-Z0-9]*: [0-9]* modified" log |
		sed -e "s/.*: \([A-Z0-9]*\): unchanged$/\1/" \
		    -e "s/.* [0-9a-f]\{12\} \([A-Z0-9]*\): .*/\1/" | tr "\n" " " >order &&
	test "$(cat order)" = "$(echo $ALL) " &&
	test_grep "S3: 1 modified, 0 added, 0 removed" log &&
	git -C "$REPO" show S3:meta >meta &&
	test_grep "^kind: scheduled$" meta &&
	test_expect_code 0 agent status --json &&
	python3 - out <<-\EOF
	import json, sys
	g = {x["gateway"]: x for x in json.load(open(sys.argv[1]))["gateways"]}
	assert len(g) == 9 and all(x["status"] == "OK" for x in g.values()), g
	assert g["S3"]["last_result"] == "written" and g["L1"]["last_result"] == "unchanged", g
	EOF
'

test_expect_success 'a failing gateway in the middle: its error in its place, the others written, exit 1' '
	bounded 3 &&
	mv L3 L3.away &&
	for g in $ALL; do echo "third $g" >"$(ls -d $g $g.away 2>/dev/null | head -1)/Rules/r3.txt"; done &&
	test_expect_code 1 agent snapshot &&
	mv L3.away L3 &&
	grep -v "^msgw-agent: warning" err >errors &&
	test "$(wc -l <errors)" = 1 &&
	test_grep "cannot read location .*L3" errors &&
	sed "s/^[0-9a-f]\{12\} \([A-Z0-9]*\): .*/\1/" out | tr "\n" " " >order &&
	test "$(cat order)" = "L1 S1 L2 S2 L4 L5 S3 L6 " &&
	test "$(git -C "$REPO" log -1 --format=%s L4)" = "L4: 1 modified, 0 added, 0 removed" &&
	test "$(max_count)" = 3 &&
	git -C "$REPO" fsck --strict
'

test_expect_success 'snapshot L1 L1 L2: L1 written once, its second run waits for it and finds it unchanged' '
	echo "fourth" >L1/Rules/r4.txt &&
	before=$(git -C "$REPO" rev-list --count L1) &&
	bounded 1 &&
	agent snapshot L1 L1 L2 >out &&
	test "$(git -C "$REPO" rev-list --count L1)" = $((before + 1)) &&
	sed -n 2p out >second &&
	test_grep "^L1: unchanged" second &&
	test_grep "^L2: unchanged" out
'

test_expect_success 'an encrypted repository: every worker seals with the key' '
	{
		printf "encryption = \"keyfile:%s\"\n" "$TRASH/enc.key"
		sed -e "s|$REPO|$TRASH/enc.git|" -e "/^hook-/d" -e "s/^parallel = 3$/parallel = 9/" "$CONF"
	} >enc.conf &&
	msgw-agent -c enc.conf init --encrypt >out &&
	sed -n "s/.*key id \([0-9a-f]*\)$/\1/p" out >keyid &&
	test -s keyid &&
	msgw-agent -c enc.conf snapshot >out &&
	test "$(wc -l <out)" = 9 &&
	printf "msgw-sealed 1 %s\n" "$(cat keyid)" >expect &&
	for g in $ALL; do
		for f in manifest config.tar.zst; do
			git -C enc.git cat-file blob "$g:$f" | head -c 31 >line &&
			test_cmp expect line || exit 1
		done
		git -C enc.git show "$g:meta" | grep -q "^key-id: $(cat keyid)$" || exit 1
	done &&
	msgw-agent -c enc.conf verify --all >/dev/null &&
	git -C enc.git fsck --strict
'

test_expect_success 'a bad parallel: the key and the option are usage errors (exit 2)' '
	cp "$CONF" bad.conf &&
	sed -i "s/^parallel = 3$/parallel = 0/" bad.conf &&
	test_expect_code 2 msgw-agent -c bad.conf snapshot &&
	test_grep "bad.conf:[0-9]*: bad number .0. for .parallel.: must be 1 to 256" err &&
	sed -i "s/^parallel = 0$/parallel = many/" bad.conf &&
	test_expect_code 2 msgw-agent -c bad.conf run --once &&
	test_grep "bad number .many. for .parallel." err &&
	test_expect_code 2 agent snapshot --parallel 0 &&
	test_grep "bad number .0. for .parallel.: must be 1 to 256" err &&
	test_expect_code 2 agent run --once --parallel 257 &&
	test_grep "bad number .257. for .parallel." err
'

test_done
