#!/bin/bash
# t6030-encrypt-statcache: in an encrypted repository no plain sha256 of a
# configuration file is kept anywhere in clear: not in the state
# directory (the stat cache is sealed with the repository key, status
# records, status --json), nor in any object of the repository (commit
# messages included).  The sealed cache still spares reading an unchanged
# gateway (the same statcache_lookup decides as in a plain repository), a
# changed file is still noticed, and a cache that does not open under the
# key (written in clear for a plain repository, under another key, or
# damaged) is discarded, never trusted: every file is read again.
test_description='encrypted repositories: sealed stat cache, no plain digests'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

CACHE=state/statcache-msgw1

# Files must be two seconds old before the stat cache vouches for them.
age() {
	sleep 2.1
}

# conf NAME REPO KEY: a configuration for gateway gw1
conf() {
	cat >"$1" <<-EOF
	encryption = "keyfile:$TRASH/$3"
	repository = "$2"
	state-dir  = "state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	  exclude  = {"Logs/**"}
	}
	EOF
}

# sums: the plain sha256 of every configuration file, one a line
sums() {
	(cd gw1 && find . -path ./Logs -prune -o -type f -print0 |
		xargs -0 sha256sum) | cut -d" " -f1 | sort -u
}

# no_plain_sums: none of them in the state directory, in any object of the
# repository (stock git, commit messages included) nor in status --json
no_plain_sums() {
	sums >sums && test "$(wc -l <sums)" -ge 12 &&
	git -C repo.git cat-file --batch-all-objects --batch >objects &&
	{ msgw-agent -c msgw.conf status --json >status.json || :; } &&
	test_grep "\"gateway\": \"msgw1\"" status.json &&
	! grep -a -r -F -f sums state objects status.json
}

# traced_snapshot: a snapshot, strace'd when ptrace works here; "reads"
# lists the gateway files it opened to read (the local backend opens them
# with openat2 beneath the location), or says "untraced"
can_trace() {
	command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null
}
traced_snapshot() {
	if can_trace; then
		# LeakSanitizer cannot run under ptrace: leaks are checked untraced
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
			strace -f -e trace=openat2 -o trace msgw-agent -c msgw.conf snapshot >out &&
		{ grep -v O_DIRECTORY trace | grep -o "openat2([0-9]*, \"[^\"]*\"" || :; } |
			sed "s/.*\"\(.*\)\"/\1/" | sort -u >reads
	else
		msgw-agent -c msgw.conf snapshot >out && echo untraced >reads
	fi
}

test_expect_success 'setup: an encrypted repository and its first snapshot' '
	msgw-sim init gw1 --domain example.test --mailboxes 2 --seed t6030 >ids &&
	conf msgw.conf repo.git repo.key &&
	msgw-agent -c msgw.conf init --encrypt >out &&
	test_grep "^created key file" out &&
	for i in 1 2 3 4 5 6 7 8; do echo "rule $i" >gw1/Templates/rule$i.txt; done &&
	age &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "msgw1: 0 modified, [0-9]* added" out &&
	test "$(stat -c %a $CACHE)" = 600 &&
	head -c 14 $CACHE >head && printf "msgw-sealed 1 " >expect &&
	test_cmp expect head
'

test_expect_success 'no plain sha256 of any file in the state dir or the repository' '
	no_plain_sums &&
	! grep -a -q "Gateway.json" $CACHE
'

test_expect_success 'the sealed cache spares reading an unchanged gateway' '
	tip=$(git -C repo.git rev-parse msgw1) &&
	cp $CACHE cache.1 && ino=$(stat -c %i $CACHE) &&
	traced_snapshot &&
	echo "msgw1: unchanged (${tip:0:12})" >expect && test_cmp expect out &&
	# every entry opened and hit: the file is not even rewritten
	test_cmp cache.1 $CACHE && test "$(stat -c %i $CACHE)" = "$ino" &&
	if test "$(cat reads)" != untraced; then test ! -s reads; fi
'

test_expect_success 'a changed file is noticed, and its new digest kept sealed' '
	echo "changed" >>gw1/Templates/bounce.txt &&
	msgw-agent -c msgw.conf snapshot >out &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed" out &&
	age &&
	msgw-agent -c msgw.conf snapshot >out && test_grep "unchanged" out &&
	no_plain_sums
'

test_expect_success 'a cache in clear (a plain repository'"'"'s) is discarded, not trusted' '
	# a plain cache planting a wrong hash for a file whose stat data
	# matches: a plain repository would take it (t2010); here it is not
	# even opened, every file is read, nothing is reported changing
	age && msgw-agent -c msgw.conf snapshot >out && test_grep unchanged out &&
	(cd gw1 && find . -path ./Logs -prune -o -type f -print) | sed "s|^\./||" |
	while read -r f; do
		s=$(stat -c "%i %s %Y %Y" "gw1/$f") &&
		echo "$f $s"
	done >stats &&
	{
		echo "msgw-statcache 1" &&
		while read -r f i s m _; do
			echo "$i $s $m 0 $m 0 $(printf %064d 0) $f"
		done <stats
	} >$CACHE &&
	traced_snapshot 2>err &&
	test_grep "unchanged" out &&
	! grep -q "reading again" err &&
	if test "$(cat reads)" != untraced; then test "$(wc -l <reads)" -ge 12; fi &&
	head -c 14 $CACHE >head && printf "msgw-sealed 1 " >expect && test_cmp expect head
'

test_expect_success 'a cache sealed under another key is discarded' '
	# another repository with its own key snapshots the same gateway into
	# the same state directory: its cache, sealed under the other key,
	# does not open under this repository'"'"'s key
	conf other.conf other.git other.key &&
	msgw-agent -c other.conf init --encrypt >out &&
	msgw-agent -c other.conf snapshot >out &&
	cp $CACHE cache.other &&
	traced_snapshot &&
	test_grep "unchanged" out &&
	if test "$(cat reads)" != untraced; then test "$(wc -l <reads)" -ge 12; fi &&
	! cmp -s cache.other $CACHE &&
	# rewritten under this key: the next run opens it and reads nothing
	cp $CACHE cache.mine &&
	traced_snapshot &&
	test_grep "unchanged" out && test_cmp cache.mine $CACHE &&
	if test "$(cat reads)" != untraced; then test ! -s reads; fi
'

test_expect_success 'a damaged sealed cache is discarded' '
	python3 - $CACHE <<-EOF &&
	import sys
	p = sys.argv[1]
	b = bytearray(open(p, "rb").read())
	b[len(b) // 2] ^= 0x01
	open(p, "wb").write(bytes(b))
	EOF
	traced_snapshot 2>err &&
	test_grep "unchanged" out &&
	if test "$(cat reads)" != untraced; then test "$(wc -l <reads)" -ge 12; fi &&
	no_plain_sums
'

test_done
