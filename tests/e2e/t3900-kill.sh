#!/bin/bash
# t3900-kill: SIGKILL at random instants.  About a hundred kills of
# "msgw-restore apply" (each followed by "msgw-restore recover"), a hundred
# of "msgw-agent snapshot" and a few dozen of "msgw-agent prune" with tags
# (each followed by the next run), on the simulator: each kill comes after
# a random fraction of the command's measured duration (up to 1.2 times it,
# so some runs finish first).  After every round:
#
#   target-state   the standby B is exactly the old or the new state
#                  (every path, mode and sha256 against both listings)
#   target-clean   nothing of the tool's in B (*.msgw-*, .msgw-journal*)
#                  nor in the state directory (journal-B*)
#   orphans        no stop or status command of the killed apply still runs
#                  after recover, no git repack of a killed prune after it
#   service        B runs (msgw-sim status) and answers on its port
#   mail           the mail delivered to B still decrypts (msgw-sim fetch)
#   recover        recover (after apply) exits 0
#   next-run       the next snapshot (or prune) succeeds
#   repo-clean     after it, no tmp_obj_* / tmp_pack_* in objects/ and no
#                  *.lock under refs/
#   tags           every tag stays on its gateway's branch
#   fsck           git fsck --strict is clean
#   verify         msgw-agent verify --all is clean
#
# The first broken invariant stops that kind's series and is reported with
# the kill that preceded it; repo-clean alone is counted instead (the
# leftovers named once, removed, the series going on).  The figures (kills and outcomes per kind) are
# printed.  MSGW_KILL_ROUNDS scales the counts (default 100: 100 applies,
# 100 snapshots, 30 prunes; 25 under a sanitizer build); MSGW_KILL_SEED
# makes a series repeatable; MSGW_KILL_VERIFY_EVERY (default 5) runs verify
# --all every Nth round (and after the last; 1: every round).  The
# repository is repaired between series (stale locks and temporary objects
# removed, an unfinished restore recovered, both said), so that each series
# tests its own kind of kill.
test_description='SIGKILL at random instants: apply, snapshot, prune'
. "$(dirname "$0")/test-lib.sh"

. "$TEST_DIR/gw-lib.sh"

# under the sanitizers every run is several times slower: a quarter of the
# rounds by default keeps CI's ASan pass bounded
case "$MSGW_BUILD_DIR" in
*asan*) ROUNDS=${MSGW_KILL_ROUNDS:-25} ;;
*) ROUNDS=${MSGW_KILL_ROUNDS:-100} ;;
esac
APPLY_KILLS=$ROUNDS
SNAPSHOT_KILLS=$ROUNDS
PRUNE_KILLS=$(((ROUNDS * 3 + 9) / 10))
VERIFY_EVERY=${MSGW_KILL_VERIFY_EVERY:-5}
SEED=${MSGW_KILL_SEED:-$$}
RANDOM=$SEED
FIG="$TRASH/figures"
: >"$FIG"
echo "# seed $SEED (MSGW_KILL_SEED=$SEED repeats this series)"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# fig LINE: a figure for the output (printed at the end of each series)
fig() { echo "$*" >>"$FIG"; }
show_figures() { sed 's/^/# /' "$FIG"; : >"$FIG"; }

# kill_at_random MS PROGRAM ARGS...: start PROGRAM (a binary, not a shell
# function, so that $! is its pid), SIGKILL it after a random 0-120 % of MS
# milliseconds; the exit status ("killed" or "exit N") goes to ./how
kill_at_random() {
	local ms="$1" delay pid rc
	shift
	delay=$((RANDOM % (ms * 12 / 10 + 1)))
	"$@" </dev/null >run.out 2>run.err &
	pid=$!
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	kill -9 "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null
	rc=$?
	if [ $rc = 137 ]; then echo "killed at ${delay}ms" >how; else echo "exit $rc" >how; fi
}

# timed CMD...: run CMD, its duration in ms on stdout, fail when CMD fails
timed() {
	local t0 rc
	t0=$(now_ms)
	"$@" </dev/null >run.out 2>run.err
	rc=$?
	echo $(($(now_ms) - t0))
	return $rc
}

# broke INVARIANT DETAIL: report the first broken invariant of this round
broke() {
	echo "BROKEN after $KIND kill $ROUND ($(cat how)): $1: $2" | tee -a "$FIG" >&2
	return 1
}

# leftovers INVARIANT LIST [keep]: a leftover is counted, not fatal to the series:
# named the first time in the figures, removed, and the series goes on, so
# that one series shows how often it happens and still tests the rest
leftovers() {
	local what="$1" left="$2"
	[ -n "$left" ] || return 0
	if ! grep -q "^$what " leftover-kinds 2>/dev/null; then
		echo "BROKEN after $KIND kill $ROUND ($(cat how)): $what: left behind: $(echo $left | sed "s|$TRASH/||g")" >>"$FIG"
	fi
	echo "$left" | sed "s|$TRASH/||g; s|[0-9][0-9]*|N|g; s|^|$what |" >>leftover-kinds
	echo "$what" >>leftover-rounds
	[ "${3:-}" = keep ] || echo "$left" | xargs rm -f
	FAILED=1
}

# orphans: after recover, no stop or status command of the killed apply
# still runs (the daemon keeps its "msgw-sim start DIR" command line: not
# matched); counted like a leftover, and ended
orphans() {
	local pids
	pids=$(pgrep -f "msgw-sim (stop|status) $TRASH/B( |\$)" | tr '\n' ',' | sed 's/,$//')
	[ -n "$pids" ] || return 0
	leftovers orphans "$(ps -o args= -p "$pids" | head -3)" keep
	kill ${pids//,/ } 2>/dev/null
}

# repo_clean: after the next run, nothing a killed run left in the repository
repo_clean() {
	leftovers repo-clean "$(find "$REPO/objects" \( -name 'tmp_obj_*' -o -name 'tmp_pack_*' \) -print
		find "$REPO" -maxdepth 1 -name '*.lock' ! -name msgw.lock -print
		find "$REPO/refs" -name '*.lock' -print)"
}

# leftover_figures: how many rounds left something behind, and what
leftover_figures() {
	if [ -s leftover-rounds ]; then
		fig "$KIND: rounds that left something (of $ROUND): $(sort leftover-rounds | uniq -c | tr -s ' ' | tr '\n' ';')" \
			"what (counts): $(sort leftover-kinds | uniq -c | tr -s ' ' | tr '\n' ';')"
	fi
	rm -f leftover-kinds leftover-rounds
}

tags_on_branches() {
	local t gw
	for t in $(git -C "$REPO" tag); do
		gw=$(git -C "$REPO" show "$t^{commit}:meta" | sed -n 's/^gateway: //p')
		git -C "$REPO" merge-base --is-ancestor "$t^{commit}" "refs/heads/$gw" ||
			{ broke tags "tag $t is not on branch $gw"; return 1; }
	done
}

# full_checks: fsck every round; verify --all (which reads every snapshot,
# more of them each round) every VERIFY_EVERY rounds and after the last:
# damage stays, so it is still caught, within a few rounds of its kill
full_checks() {
	git -C "$REPO" fsck --strict >fsck.out 2>&1 || { broke fsck "$(head -3 fsck.out | tr '\n' ' ')"; return 1; }
	if [ $((ROUND % VERIFY_EVERY)) != 0 ] && [ "$ROUND" != "$LAST" ]; then return 0; fi
	agent verify --all >verify.out 2>&1 || { broke verify "$(grep -v '^ok' verify.out | head -3 | tr '\n' ' ')"; return 1; }
}

target_checks() {
	leftovers target-clean "$(find "$TRASH/B" \( -name '*.msgw-*' -o -name '.msgw-journal*' \) -print
		find "$STATE" -name 'journal-B*' -print)"
	orphans
	gw_listing B >now
	if cmp -s now "$TRASH/listing-1"; then STATE_NOW=1
	elif cmp -s now "$TRASH/listing-2"; then STATE_NOW=2
	else
		broke target-state "neither old nor new: $(diff "$TRASH/listing-$STATE_NOW" now | grep '^[<>]' | head -4 | tr '\n' ' ')"
		return 1
	fi
	gw_running B || { broke service "B is not running"; return 1; }
	gw_answers B a.test 2 2>answer.err || { broke service "$(cat answer.err)"; return 1; }
	# fetch removes what it decrypts (and counts it in Gateway.json): on a copy
	rm -rf mailcheck && cp -a B mailcheck &&
	msgw-sim fetch mailcheck "$(mbx A 1)" "$(pw A 1)" >mail.out 2>mail.err &&
		[ "$(wc -l <mail.out)" = 2 ] || { broke mail "fetch: $(cat mail.err mail.out | head -2 | tr '\n' ' ')"; return 1; }
}

# change_C: one to three of C's files get new content
change_C() {
	local i n=$((RANDOM % 3 + 1))
	for i in $(seq $n); do
		echo "round $ROUND change $i $RANDOM" >>"C/Rules/rule$((RANDOM % 400)).txt"
	done
}

# repair: after a series, whatever it left in the repository is removed
# (and said), so that the next series tests its own kind of kill
repair() {
	local left
	left=$(find "$REPO/objects" \( -name 'tmp_obj_*' -o -name 'tmp_pack_*' \) -print
		find "$REPO" -maxdepth 1 -name '*.lock' ! -name msgw.lock -print
		find "$REPO/refs" -name '*.lock' -print)
	if [ -n "$left" ]; then
		echo "# before the next series, removed: $(echo $left | sed "s|$TRASH/||g")"
		echo "$left" | xargs rm -f
	fi
	if [ -e "$STATE/journal-B" ]; then
		echo "# before the next series, recover B: $(restore recover B 2>&1 | tr '\n' ' ')"
	fi
}

test_expect_success 'setup: A and B (B holds mail), C with 400 rule files, two snapshots of A' '
	gw_init A 2 1 &&
	gw_init B 0 2 &&
	cp A/Gateway.json B/Gateway.json &&
	msgw-sim deliver B $(mbx A 1) 2 &&
	mkdir -p C/Rules &&
	for i in $(seq 0 399); do
		seq $((i * 40)) $((i * 40 + 300)) | sed "s/^/route rule $i line /" >C/Rules/rule$i.txt || exit 1
	done &&
	head -c 200000 /dev/urandom | base64 >C/big.txt &&
	{
		printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE"
		gw_section A
		gw_section B
		printf "gateway \"C\" {\n  location = \"%s/C\"\n}\n" "$TRASH"
		printf "retention {\n  keep-last = 4\n}\n"
	} >"$CONF" &&
	gw_start A && gw_start B &&
	agent init >/dev/null &&
	agent snapshot A >/dev/null &&
	branch_tip A >snap-1 &&
	msgw-sim set A mailbox.$(mbx A 2).description "Renamed on A" &&
	echo "Signed, the A team" >>A/Templates/notification.txt &&
	rm A/Templates/bounce.txt &&
	mkdir -p A/Rules/extra &&
	for i in $(seq 1 60); do echo "route $i" >A/Rules/extra/r$i.txt || exit 1; done &&
	agent snapshot A >/dev/null &&
	branch_tip A >snap-2 &&
	restore apply $(cat snap-1) --to B --yes </dev/null >/dev/null &&
	gw_listing B >listing-1 &&
	restore apply $(cat snap-2) --to B --yes </dev/null >/dev/null &&
	gw_listing B >listing-2 &&
	! cmp -s listing-1 listing-2 &&
	agent snapshot C >/dev/null
'

# apply_round: apply the other state, kill, recover, check
apply_round() {
	local want=$((3 - STATE_NOW))
	kill_at_random "$APPLY_MS" msgw-restore -c "$CONF" apply "$(cat snap-$want)" --to B --yes
	case "$(cat how)" in
	killed*) fig_killed=$((fig_killed + 1)) ;;
	"exit 0") fig_finished=$((fig_finished + 1)) ;;
	*) broke apply "unkilled apply failed: $(tail -1 run.err)"; return 1 ;;
	esac
	restore recover B >recover.out 2>recover.err ||
		{ broke recover "exit $?: $(tail -1 recover.err)"; return 1; }
	case "$(cat recover.out)" in
	*"rolled back"*) fig_rolled=$((fig_rolled + 1)) ;;
	*"finished"*) fig_done=$((fig_done + 1)) ;;
	*"nothing to recover"*) fig_nothing=$((fig_nothing + 1)) ;;
	esac
	target_checks || return 1
	[ "$STATE_NOW" = "$want" ] && fig_new=$((fig_new + 1)) || fig_old=$((fig_old + 1))
	agent snapshot B >snap.out 2>snap.err || { broke next-run "snapshot B: $(tail -1 snap.err)"; return 1; }
	repo_clean && tags_on_branches && full_checks
}

test_expect_success "$APPLY_KILLS random kills of apply, each followed by recover" '
	STATE_NOW=2 KIND=apply LAST=$APPLY_KILLS &&
	APPLY_MS=$(timed restore apply "$(cat snap-1)" --to B --yes) &&
	APPLY_MS=$((APPLY_MS + $(timed restore apply "$(cat snap-2)" --to B --yes))) &&
	APPLY_MS=$((APPLY_MS / 2)) &&
	fig "apply: one apply takes ${APPLY_MS}ms" &&
	fig_killed=0 fig_finished=0 fig_rolled=0 fig_done=0 fig_nothing=0 fig_old=0 fig_new=0 &&
	set +e && rc=0 FAILED=0 T0=$SECONDS &&
	for ROUND in $(seq 1 $APPLY_KILLS); do
		apply_round || { rc=1; break; }
	done
	fig "apply: $((ROUND - rc)) rounds: $fig_killed killed, $fig_finished finished before the kill;" \
		"recover: $fig_rolled rolled back, $fig_done finished, $fig_nothing nothing to do;" \
		"B left old $fig_old, new $fig_new"
	leftover_figures
	fig "$KIND: series took $((SECONDS - T0))s"
	[ $rc = 0 ] && [ $FAILED = 0 ]
'
show_figures
repair

snapshot_round() {
	change_C
	kill_at_random "$SNAP_MS" msgw-agent -c "$CONF" snapshot C
	case "$(cat how)" in
	killed*) fig_killed=$((fig_killed + 1)) ;;
	"exit 0") fig_finished=$((fig_finished + 1)) ;;
	*) broke snapshot "unkilled snapshot failed: $(tail -1 run.err)"; return 1 ;;
	esac
	agent snapshot C >snap.out 2>snap.err || { broke next-run "snapshot C: exit $?: $(tail -1 snap.err)"; return 1; }
	grep -q "unchanged" snap.out && fig_unchanged=$((fig_unchanged + 1)) || fig_written=$((fig_written + 1))
	# what a killed run left is cleared with a warning naming it: expected
	! grep -v -e "warning: cleared a stale repository lock left by pid" \
		-e "warning: removed .* left by a killed run$" snap.err >snap.other ||
		{ broke next-run "snapshot C said: $(tail -1 snap.other)"; return 1; }
	repo_clean && tags_on_branches && full_checks
}

test_expect_success "$SNAPSHOT_KILLS random kills of snapshot, each followed by the next snapshot" '
	KIND=snapshot LAST=$SNAPSHOT_KILLS ROUND=0 &&
	change_C &&
	{ SNAP_MS=$(timed agent snapshot C) || { cat run.err; false; }; } &&
	fig "snapshot: one snapshot of C takes ${SNAP_MS}ms" &&
	fig_killed=0 fig_finished=0 fig_unchanged=0 fig_written=0 &&
	set +e && rc=0 FAILED=0 T0=$SECONDS &&
	for ROUND in $(seq 1 $SNAPSHOT_KILLS); do
		snapshot_round || { rc=1; break; }
	done
	fig "snapshot: $((ROUND - rc)) rounds: $fig_killed killed, $fig_finished finished before the kill;" \
		"next snapshot: $fig_written wrote the change, $fig_unchanged found it already written"
	leftover_figures
	fig "$KIND: series took $((SECONDS - T0))s"
	[ $rc = 0 ] && [ $FAILED = 0 ]
'
show_figures
repair

# prune_round (timed after a first prune has dropped what the snapshot
# series piled up, on as many new snapshots as a round makes): two or three
# new snapshots of C, one of them tagged now and
# then (at most five tags: the oldest is deleted), then a killed prune
prune_round() {
	local i n=$((RANDOM % 2 + 2)) tags
	for i in $(seq $n); do
		change_C
		if [ $i = 1 ] && [ $((RANDOM % 2)) = 0 ]; then
			agent snapshot C --tag "keep-$ROUND" >/dev/null 2>snap.err ||
				{ broke next-run "snapshot C --tag: $(tail -1 snap.err)"; return 1; }
			fig_tagged=$((fig_tagged + 1))
		else
			agent snapshot C >/dev/null 2>snap.err ||
				{ broke next-run "snapshot C: $(tail -1 snap.err)"; return 1; }
		fi
	done
	tags=$(git -C "$REPO" tag --sort=creatordate | grep "^keep-")
	if [ "$(echo "$tags" | wc -l)" -gt 5 ]; then
		git -C "$REPO" tag -d "$(echo "$tags" | head -1)" >/dev/null
	fi
	git -C "$REPO" tag | sort >tags.before
	kill_at_random "$PRUNE_MS" msgw-agent -c "$CONF" prune
	# a git the killed prune started must die with it: its leader kills the
	# group as soon as it sees the lifeline break, which takes a scheduling
	# moment after the kill, so the group gets up to two seconds to go
	# (the issue's "dies with it or is reaped"); what still runs then is
	# an orphan
	for i in $(seq 20); do
		pgrep -f "git --git-dir=$REPO " >/dev/null || break
		sleep 0.1
	done
	leftovers orphans "$(pgrep -af "git --git-dir=$REPO " | cut -d' ' -f2- | cut -c1-60)" keep
	case "$(cat how)" in
	killed*) fig_killed=$((fig_killed + 1)) ;;
	"exit 0") fig_finished=$((fig_finished + 1)) ;;
	*) broke prune "unkilled prune failed: $(tail -1 run.err)"; return 1 ;;
	esac
	agent prune >prune.out 2>prune.err || { broke next-run "prune: exit $?: $(tail -1 prune.err)"; return 1; }
	git -C "$REPO" tag | sort >tags.after
	cmp -s tags.before tags.after || { broke tags "tags changed: $(diff tags.before tags.after | grep '^[<>]' | tr '\n' ' ')"; return 1; }
	repo_clean && tags_on_branches && full_checks || return 1
	agent snapshot C >/dev/null 2>snap.err || { broke next-run "snapshot C after prune: $(tail -1 snap.err)"; return 1; }
}

test_expect_success "$PRUNE_KILLS random kills of prune with tags, each followed by the next prune" '
	KIND=prune LAST=$PRUNE_KILLS ROUND=0 &&
	agent prune >/dev/null &&
	for i in 1 2 3; do change_C; agent snapshot C >/dev/null || exit 1; done &&
	{ PRUNE_MS=$(timed agent prune) || { cat run.err; false; }; } &&
	fig "prune: one prune takes ${PRUNE_MS}ms" &&
	fig_killed=0 fig_finished=0 fig_tagged=0 &&
	set +e && rc=0 FAILED=0 T0=$SECONDS &&
	for ROUND in $(seq 1 $PRUNE_KILLS); do
		prune_round || { rc=1; break; }
	done
	fig "prune: $((ROUND - rc)) rounds: $fig_killed killed, $fig_finished finished before the kill;" \
		"$fig_tagged snapshots tagged"
	leftover_figures
	fig "$KIND: series took $((SECONDS - T0))s"
	[ $rc = 0 ] && [ $FAILED = 0 ]
'
show_figures

test_done
