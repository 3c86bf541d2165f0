#!/bin/bash
# t2500-prune: msgw-agent prune by the retention section.  Ten real
# snapshots of a simulated gateway (each with its own archive) are given
# fake created times with git plumbing: meta's created and kind lines are
# rewritten and the commits recreated on the same trees otherwise, with
# commit dates that all fall on one later day, so only meta can explain the
# decisions.  One snapshot carries a lightweight tag, one an annotated tag;
# reflogs are on and the refs packed, as stock git might leave them.
#
# Checked: --dry-run lists every decision with its reason and changes
# nothing; the real run keeps exactly the expected set (same trees, dates
# and messages, tags moved), the dropped commits and their archives are
# gone from the object store, stock git agrees (fsck --strict, log,
# count-objects), verify --all is clean; a second run drops nothing; a
# remote with prune-remotes = true gets the rewritten branch, one without
# keeps the old one; no keep-* rule set refuses (exit 2); a held lock
# exits 6; --json; usage errors.
test_description='msgw-agent prune: retention, rewrite, repack'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

# The ten snapshots, oldest first: created time, kind.
cat >plan <<-'EOF'
2023-01-10T08:00:00Z scheduled
2023-01-20T08:00:00Z pre-restore
2023-02-05T08:00:00Z scheduled
2023-02-06T08:00:00Z scheduled
2023-02-07T08:00:00Z scheduled
2023-03-01T08:00:00Z pre-restore
2023-03-01T09:00:00Z scheduled
2023-03-02T10:00:00Z manual
2023-03-02T11:00:00Z scheduled
2023-03-03T12:00:00Z scheduled
EOF

# Pre-restore snapshots younger than 2023-02-15 are protected, whatever
# today is: the one of 2023-03-01 is, the one of 2023-01-20 is not.
PRE_DAYS=$(( ($(date +%s) - $(date -d 2023-02-15T00:00:00Z +%s)) / 86400 ))

# conf FILE RETENTION...: a configuration with the given retention lines
conf() {
	local f="$1"
	shift
	{
		cat <<-EOF
		repository = "$TRASH/repo.git"
		state-dir  = "$TRASH/state"
		gateway "msgw1" {
		  location = "$TRASH/gw1"
		}
		gateway "msgw2" {
		  location = "$TRASH/gw2"
		}
		remote "mirror" {
		  url = "$TRASH/mirror.git"
		  prune-remotes = true
		}
		remote "archive" {
		  url = "$TRASH/archive.git"
		}
		retention {
		EOF
		printf '  %s\n' "$@"
		echo "}"
	} >"$f"
}

# created ID: the created line of a snapshot's meta
created() {
	git -C repo.git show "$1:meta" | sed -n 's/^created: //p'
}

# snapshot_facts REF: per first-parent commit, newest first: created, kind,
# tree, author and committer with raw dates, message
snapshot_facts() {
	local c
	for c in $(git -C repo.git rev-list --first-parent "$1"); do
		printf '%s %s ' "$(created "$c")" "$(git -C repo.git show "$c:meta" | sed -n 's/^kind: //p')"
		git -C repo.git log -1 --format='%T|%an <%ae> %ad|%cn <%ce> %cd|%B' --date=raw "$c" |
			tr '\n' '~'
		echo
	done
}

# A prune keeps unreachable objects younger than its start (a writer beside
# it); the previous prune of this script may have packed them within the
# same second: make them as old as they would be between real prunes.
backdate_objects() {
	find repo.git/objects -type f -exec touch -d "1 minute ago" {} +
}

test_expect_success 'setup: ten snapshots with crafted dates, tags, reflogs' '
	msgw-sim init gw1 --domain example.test --mailboxes 2 --seed t2500 >/dev/null &&
	msgw-sim init gw2 --domain example.test --mailboxes 1 --seed t2500b >/dev/null &&
	conf c.conf "keep-last = 2" "keep-daily = 2" "keep-monthly = 2" \
		"keep-pre-restore-days = $PRE_DAYS" &&
	msgw-agent -c c.conf init >/dev/null &&
	git -C repo.git config core.logAllRefUpdates true &&
	for i in 0 1 2 3 4 5 6 7 8 9; do
		msgw-sim set gw1 ports.smtp $((2500 + i)) &&
		msgw-agent -c c.conf snapshot >/dev/null || return 1
	done &&
	test "$(git -C repo.git rev-list --count msgw1)" = 10 &&
	parent= && i=0 &&
	for c in $(git -C repo.git rev-list --reverse msgw1); do
		set -- $(sed -n "$((i + 1))p" plan) &&
		meta=$(git -C repo.git show $c:meta |
			sed -e "s/^created: .*/created: $1/" -e "s/^kind: .*/kind: $2/" |
			git -C repo.git hash-object -w --stdin) &&
		git -C repo.git ls-tree $c | sed "s/ [0-9a-f]*\tmeta$/ $meta\tmeta/" >tree &&
		tree=$(git -C repo.git mktree <tree) &&
		when="2024-06-01T00:$(printf %02d $i):00Z" &&
		new=$(git -C repo.git log -1 --format=%B $c |
			GIT_AUTHOR_DATE=$when GIT_COMMITTER_DATE=$when \
			git -C repo.git commit-tree $tree ${parent:+-p $parent}) &&
		echo $new >>ids &&
		git -C repo.git rev-parse $c:config.tar.zst >>archives &&
		parent=$new && i=$((i + 1)) || return 1
	done &&
	git -C repo.git update-ref -m "crafted history" refs/heads/msgw1 $parent &&
	git -C repo.git tag golden $(sed -n 4p ids) &&
	git -C repo.git tag -a -m "audit 2023" audit $(sed -n 5p ids) &&
	git -C repo.git pack-refs --all &&
	test "$(sort -u archives | wc -l)" = 10 &&
	test "$(created msgw1)" = 2023-03-03T12:00:00Z &&
	msgw-agent -c c.conf verify --all >out &&
	test_grep "^11 verified, 0 damaged$" out &&
	git -C repo.git init -q --bare ../mirror.git &&
	git -C repo.git init -q --bare ../archive.git &&
	msgw-agent -c c.conf push >out &&
	test "$(git -C mirror.git rev-parse msgw1)" = "$parent" &&
	test "$(git -C archive.git rev-parse msgw1)" = "$parent" &&
	snapshot_facts msgw1 >facts.before
'

# id N: the crafted snapshot N (0 = oldest)
id() { sed -n "$(($1 + 1))p" ids; }
archive() { sed -n "$(($1 + 1))p" archives; }
# absent OBJECT: stock git cannot find OBJECT
absent() { ! git -C repo.git cat-file -e "$1" 2>/dev/null; }

KEPT="9 8 5 4 3"
DROPPED="7 6 2 1 0"

# line ACTION N KIND REASONS: one expected line of the listing
line() {
	printf '  %s %s  %s  %-11s  %s\n' "$1" "$(id $2 | cut -c1-12)" "$(sed -n "$(($2 + 1))p" plan | cut -d" " -f1)" "$3" "$4"
}

test_expect_success 'prune --dry-run lists every decision and changes nothing' '
	before=$(git -C repo.git rev-parse msgw1) &&
	find repo.git/objects -type f | sort >objects.before &&
	msgw-agent -c c.conf prune --dry-run >out 2>err &&
	{
		echo "msgw1: 10 snapshots, keep 5, drop 5" &&
		line keep 9 scheduled "tip, last, daily, monthly" &&
		line keep 8 scheduled "last, daily" &&
		line drop 7 manual "no rule keeps it" &&
		line drop 6 scheduled "no rule keeps it" &&
		line keep 5 pre-restore "pre-restore" &&
		line keep 4 scheduled "tagged, monthly" &&
		line keep 3 scheduled "tagged" &&
		line drop 2 scheduled "no rule keeps it" &&
		line drop 1 pre-restore "no rule keeps it" &&
		line drop 0 scheduled "no rule keeps it" &&
		echo "msgw2: 1 snapshot, keep 1, drop 0" &&
		printf "  keep %s  %s  %-11s  %s\n" "$(git -C repo.git rev-parse msgw2 | cut -c1-12)" \
			"$(created msgw2)" manual "tip, last, daily, monthly" &&
		echo "dry run: nothing changed"
	} >expect &&
	test_cmp expect out &&
	test ! -s err &&
	test "$(git -C repo.git rev-parse msgw1)" = "$before" &&
	find repo.git/objects -type f | sort >objects.after &&
	test_cmp objects.before objects.after &&
	msgw-agent -c c.conf prune -n --json >out.json &&
	python3 - <<-EOF
	import json
	d = json.load(open("out.json"))
	assert d["version"] == 1 and d["dry_run"] is True, d
	g = d["gateways"][0]
	assert g["gateway"] == "msgw1" and g["kept"] == 5 and g["dropped"] == 5, g
	ids = open("ids").read().split()
	keep = [e["id"] for e in g["entries"] if e["action"] == "keep"]
	assert keep == [ids[i] for i in (9, 8, 5, 4, 3)], keep
	assert g["entries"][0]["reasons"] == ["tip", "last", "daily", "monthly"], g["entries"][0]
	assert g["entries"][2]["reasons"] == [] and g["entries"][2]["kind"] == "manual"
	assert all(e["new_id"] is None for e in g["entries"])
	assert "repack" not in d and d["remotes"] == [], d
	EOF
'

test_expect_success 'prune keeps exactly the expected snapshots, the same commits otherwise' '
	backdate_objects &&
	msgw-agent -c c.conf prune >out 2>prune.err &&
	test_grep "^msgw1: 10 snapshots, keep 5, drop 5$" out &&
	test_grep "^  drop $(id 7 | cut -c1-12)  " out &&
	test_grep "^  keep $(id 3 | cut -c1-12)  .*  tagged  (now [0-9a-f]\{12\})$" out &&
	test_grep "^repacked: [0-9]* objects; removed [0-9]* loose objects, [0-9]* old packs, [1-9][0-9]* reflog entries$" out &&
	git -C repo.git rev-list --first-parent msgw1 | while read c; do created $c; done >got &&
	for n in $KEPT; do sed -n "$((n + 1))p" plan | cut -d" " -f1; done >want &&
	test_cmp want got &&
	test "$(git -C repo.git rev-list --count msgw1)" = 5 &&
	snapshot_facts msgw1 >facts.after &&
	for n in $KEPT; do grep "^$(sed -n "$((n + 1))p" plan) " facts.before || return 1; done >facts.want &&
	test "$(wc -l <facts.want)" = 5 &&
	test_cmp facts.want facts.after
'

test_expect_success 'the dropped snapshots and their archives are gone from the object store' '
	for n in $DROPPED; do
		absent $(id $n) &&
		absent $(archive $n) || return 1
	done &&
	for n in $KEPT; do
		git -C repo.git cat-file -e $(archive $n) || return 1
	done &&
	git -C repo.git count-objects -v >count &&
	test_grep "^count: 0$" count &&
	test_grep "^packs: 1$" count &&
	test_grep "^garbage: 0$" count &&
	test -z "$(find repo.git/objects -type f -path "*/objects/[0-9a-f][0-9a-f]/*")"
'

test_expect_success 'stock git and verify --all agree' '
	git -C repo.git fsck --strict --no-progress >fsck.out 2>&1 &&
	test ! -s fsck.out &&
	git -C repo.git fsck --strict --unreachable --no-progress >fsck.out 2>&1 &&
	test ! -s fsck.out &&
	grep -v "^#" repo.git/packed-refs | while read sha ref; do
		git -C repo.git cat-file -e "${sha#^}" || return 1
	done &&
	git -C repo.git log --oneline msgw1 >log &&
	test "$(wc -l <log)" = 5 &&
	git -C repo.git reflog show msgw1 >/dev/null &&
	msgw-agent -c c.conf verify --all >out &&
	test_grep "^6 verified, 0 damaged$" out &&
	msgw-agent -c c.conf list >out &&
	test "$(grep -c "msgw1" out)" -ge 5
'

test_expect_success 'tags moved with their snapshots; the annotated one is still annotated' '
	test "$(created golden)" = 2023-02-06T08:00:00Z &&
	test "$(git -C repo.git merge-base --is-ancestor golden msgw1 && echo on)" = on &&
	test "$(git -C repo.git cat-file -t audit)" = tag &&
	test "$(created audit)" = 2023-02-07T08:00:00Z &&
	git -C repo.git cat-file tag audit >tag &&
	test_grep "^audit 2023$" tag &&
	test_grep "^tagger t <t@example.test>" tag &&
	msgw-agent -c c.conf show golden >out &&
	test_grep "2023-02-06T08:00:00Z" out
'

test_expect_success 'remotes: prune-remotes = true gets the rewritten branch, others keep theirs' '
	test "$(git -C mirror.git rev-parse msgw1)" = "$(git -C repo.git rev-parse msgw1)" &&
	test "$(git -C mirror.git rev-parse golden^{commit})" = "$(git -C repo.git rev-parse golden^{commit})" &&
	test "$(git -C archive.git rev-parse msgw1)" = "$(id 9)" &&
	test_grep "remote .archive.: prune-remotes is false" prune.err &&
	test_expect_code 1 msgw-agent -c c.conf push archive &&
	test "$(git -C archive.git rev-parse msgw1)" = "$(id 9)"
'

test_expect_success 'a second prune drops nothing and changes nothing' '
	tip=$(git -C repo.git rev-parse msgw1) &&
	find repo.git/objects -type f | sort >objects.before &&
	msgw-agent -c c.conf prune >out &&
	test_grep "^msgw1: 5 snapshots, keep 5, drop 0$" out &&
	test_grep "^nothing to drop$" out &&
	test "$(git -C repo.git rev-parse msgw1)" = "$tip" &&
	find repo.git/objects -type f | sort >objects.after &&
	test_cmp objects.before objects.after
'

test_expect_success 'prune --json after a real run reports the rewrite and the repack' '
	conf tight.conf "keep-last = 1" "keep-pre-restore-days = 0" &&
	backdate_objects &&
	msgw-agent -c tight.conf prune --json >out.json 2>err &&
	python3 - <<-EOF
	import json
	d = json.load(open("out.json"))
	assert d["dry_run"] is False, d
	g = d["gateways"][0]
	assert (g["kept"], g["dropped"]) == (3, 2), g
	assert [e["action"] for e in g["entries"]] == ["keep", "drop", "drop", "keep", "keep"], g
	assert g["entries"][0]["reasons"] == ["tip", "last"], g
	assert g["new_tip"] != g["old_tip"] and g["entries"][0]["new_id"] == g["new_tip"], g
	assert d["repack"]["objects"] > 0 and d["repack"]["packs_removed"] == 1, d
	assert {r["remote"]: r["result"] for r in d["remotes"]} == {"mirror": "pushed", "archive": "skipped"}, d
	EOF
	git -C repo.git fsck --strict --no-progress >fsck.out 2>&1 &&
	test ! -s fsck.out &&
	msgw-agent -c c.conf verify --all >out &&
	test_grep "^4 verified, 0 damaged$" out
'

test_expect_success 'no keep-* rule: prune refuses with exit 2 and changes nothing' '
	conf none.conf "keep-pre-restore-days = 30" &&
	tip=$(git -C repo.git rev-parse msgw1) &&
	test_expect_code 2 msgw-agent -c none.conf prune &&
	test_grep "^msgw-agent: .*none.conf: retention: no keep-last, keep-hourly, keep-daily, keep-weekly or keep-monthly is set; refusing to prune (every snapshot is kept)$" err &&
	test ! -s out &&
	test_expect_code 2 msgw-agent -c none.conf prune --dry-run &&
	test "$(git -C repo.git rev-parse msgw1)" = "$tip"
'

test_expect_success 'a held repository lock: exit 6, nothing changed; --dry-run still works' '
	rm -f holder.pid
	flock -w 10 repo.git/msgw.lock sh -c "echo \$\$ >holder.pid; exec sleep 60" &
	conf last1.conf "keep-last = 1" &&
	tip=$(git -C repo.git rev-parse msgw1) &&
	i=0 && while [ ! -s holder.pid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done &&
	test_when_finished "kill \$(cat holder.pid); wait" &&
	test_expect_code 6 msgw-agent -c last1.conf prune &&
	test_grep "locked" err &&
	test "$(git -C repo.git rev-parse msgw1)" = "$tip" &&
	msgw-agent -c last1.conf prune --dry-run >out &&
	test_grep "^dry run: nothing changed$" out
'

test_expect_success 'an open confirm window: prune refuses, --dry-run warns; after confirm it runs' '
	conf last1.conf "keep-last = 1" &&
	msgw-restore -c last1.conf apply msgw1~1 --to msgw1 --yes --confirm-within 1h </dev/null >out &&
	test_when_finished "msgw-restore -c last1.conf confirm msgw1 >/dev/null 2>&1" &&
	tip=$(git -C repo.git rev-parse msgw1) &&
	test_expect_code 1 msgw-agent -c last1.conf prune &&
	test_grep "^msgw-agent: gateway .msgw1. has an unfinished restore (awaiting-confirm), whose journal names snapshots by id: finish it first (.msgw-restore confirm msgw1. or .msgw-restore recover msgw1.); nothing was pruned$" err &&
	test ! -s out &&
	test "$(git -C repo.git rev-parse msgw1)" = "$tip" &&
	msgw-agent -c last1.conf prune --dry-run >out 2>err &&
	test_grep "warning: gateway .msgw1. has an unfinished restore (awaiting-confirm)" err &&
	msgw-restore -c last1.conf confirm msgw1 >/dev/null &&
	backdate_objects &&
	msgw-agent -c last1.conf prune >out &&
	test_grep "^msgw1: [0-9]* snapshots, keep [0-9]*, drop [1-9]" out &&
	git -C repo.git fsck --strict --no-progress >fsck.out 2>&1 &&
	test ! -s fsck.out &&
	msgw-agent -c last1.conf verify --all >out &&
	test_grep " 0 damaged$" out
'

test_expect_success 'usage errors' '
	test_expect_code 2 msgw-agent -c c.conf prune --bogus &&
	test_grep "usage: msgw-agent prune \[--dry-run\] \[--json\]" err &&
	test_expect_code 2 msgw-agent -c c.conf prune msgw1 &&
	test_grep "unexpected argument .msgw1." err &&
	msgw-agent prune --help >out &&
	test_grep "^usage: prune \[--dry-run\] \[--json\]" out
'

test_done
