#!/bin/bash
# t3070-extract-diff: "extract" writes a snapshot into a new or empty
# directory, file for file what stock tar makes of the snapshot's archive
# (contents, modes, links, times), and refuses a directory that is not
# empty; a damaged snapshot leaves the destination as it was (all or
# nothing, no staging directory left behind); "diff" shows what changed between two snapshots or between a
# snapshot and the live files: a unified diff naming each changed file,
# "Binary files ... differ", --stat and --json; extract gives every file
# its mode and owner whatever the umask or a set-group-ID destination.
test_description='msgw-restore: extract and diff'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

# times DIR: path and mtime (seconds) of every entry but links
times() {
	(cd "$1" && find . -mindepth 1 ! -type l -printf '%p %TY-%Tm-%Td %TH:%TM:%.2TS\n' | LC_ALL=C sort)
}

test_expect_success 'setup: gateway A with a link, a binary file, a private file' '
	gw_init A 2 1 &&
	ln -s notification.txt A/Templates/current &&
	printf "\\000\\001binary\\000" >A/Templates/logo.bin &&
	echo "secret" >A/Templates/private.txt &&
	chmod 600 A/Templates/private.txt &&
	touch -d "2020-02-02 02:02:02" A/Templates/private.txt &&
	gw_write_config &&
	agent init &&
	agent snapshot A >out
'

test_expect_success 'extract writes exactly what tar makes of the archive' '
	restore extract A ex >out &&
	test_grep "^extracted [0-9a-f]\{12\} into .ex.: 6 files, 3 directories, 1 links, [0-9]* bytes$" out &&
	mkdir tarred &&
	git -C "$REPO" show A:config.tar.zst | tar --zstd -xf - -C tarred &&
	tree_listing tarred >expect &&
	tree_listing ex >actual &&
	test_cmp expect actual &&
	times tarred >expect-times &&
	times ex >actual-times &&
	test_cmp expect-times actual-times &&
	test_grep "^\./Templates/private.txt 2020-02-02 02:02:02" actual-times &&
	test "$(readlink ex/Templates/current)" = notification.txt &&
	test "$(stat -c %a ex/Templates/private.txt)" = 600
'

test_expect_success 'extract gives the live configuration back, stores and logs left out' '
	tree_listing A | grep -v -e "^\./Logs/" -e "^\./mbx-" >expect &&
	tree_listing ex >actual &&
	test_cmp expect actual &&
	test ! -e ex/$(mbx A 1)
'

test_expect_success 'extract into an empty directory works; into a non-empty one is refused' '
	mkdir empty &&
	restore extract A empty >out &&
	tree_listing empty >actual &&
	tree_listing ex >expect &&
	test_cmp expect actual &&
	mkdir busy &&
	echo keep >busy/mine.txt &&
	tree_listing busy >before &&
	test_expect_code 1 restore extract A busy &&
	test_grep ".busy. is not empty; extract only into a new or empty directory" err &&
	tree_listing busy >after &&
	test_cmp before after &&
	mkdir hidden && touch hidden/.dot &&
	test_expect_code 1 restore extract A hidden &&
	test_expect_code 1 restore extract A ex &&
	test_cmp expect actual
'

test_expect_success 'extract of an unknown snapshot or with bad arguments fails' '
	test_expect_code 1 restore extract nosuch new1 &&
	test ! -e new1 &&
	test_expect_code 2 restore extract A &&
	test_expect_code 2 restore extract A x y
'

# damaged_copy NAME: a copy of the repository, conf-NAME using it
damaged_copy() {
	rm -rf "$1.git" &&
	cp -a "$REPO" "$1.git" &&
	sed "s|^repository = .*|repository = \"$TRASH/$1.git\"|" "$CONF" >"conf-$1"
}

# empty_or_absent DIR: nothing left in DIR, not even a hidden staging directory
empty_or_absent() {
	test ! -e "$1" || test -z "$(ls -A "$1")"
}

test_expect_success 'a file damaged late in the snapshot leaves the destination as it was' '
	damaged_copy late &&
	git="git -C late.git" &&
	$git show A:manifest >manifest &&
	last=$(grep "^f " manifest | tail -n 1 | awk "{print \$NF}") &&
	awk -v last="$last" "\$1 == \"f\" && \$NF == last { \$6 = \"0000000000000000000000000000000000000000000000000000000000000000\" } { print }" \
		manifest >manifest.bad &&
	! cmp -s manifest manifest.bad &&
	man=$($git hash-object -w "$TRASH/manifest.bad") &&
	tree=$($git ls-tree A | sed "s/[0-9a-f]\{40\}\(\tmanifest\)$/$man\1/" | $git mktree) &&
	commit=$(GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@test GIT_COMMITTER_NAME=t \
		GIT_COMMITTER_EMAIL=t@test $git commit-tree "$tree" -p A -m "A: damaged") &&
	$git update-ref refs/heads/A "$commit" &&
	test_expect_code 1 msgw-restore -c conf-late extract A late-new &&
	test_grep "$last.: sha256 does not match the manifest" err &&
	test_grep "extract into .late-new. failed, nothing written there" err &&
	test ! -e late-new &&
	mkdir late-empty &&
	test_expect_code 1 msgw-restore -c conf-late extract A late-empty &&
	test_grep "extract into .late-empty. failed, nothing written there" err &&
	test -d late-empty && empty_or_absent late-empty
'

test_expect_success 'a damaged archive object leaves the destination as it was' '
	damaged_copy rot &&
	blob=$(git -C rot.git rev-parse A:config.tar.zst) &&
	obj=rot.git/objects/${blob:0:2}/${blob:2} &&
	chmod u+w $obj &&
	python3 -c "
import sys
p = sys.argv[1]
b = bytearray(open(p, \"rb\").read())
b[len(b) * 3 // 4] ^= 0xff
open(p, \"wb\").write(b)
" $obj &&
	mkdir rot-empty &&
	test_expect_code 1 msgw-restore -c conf-rot extract A rot-empty &&
	test_grep "extract into .rot-empty. failed, nothing written there: snapshot [0-9a-f]\{12\}: .config.tar.zst.: loose object .*/${blob:2}. is damaged" err &&
	test -d rot-empty && empty_or_absent rot-empty &&
	test_expect_code 1 msgw-restore -c conf-rot extract A rot-new &&
	test ! -e rot-new
'

test_expect_success 'a write failing midway (file-size limit, as a full disk) leaves nothing' '
	big=$(git -C "$REPO" show A:manifest | awk "\$1 == \"f\" { print \$5 }" | sort -n | tail -n 1) &&
	test "$big" -gt 1024 &&
	mkdir full-empty &&
	(trap "" XFSZ && ulimit -f 1 &&
	 test_expect_code 1 restore extract A full-empty) &&
	test_grep "extract into .full-empty. failed, nothing written there: .*File too large" err &&
	test -d full-empty && empty_or_absent full-empty &&
	(trap "" XFSZ && ulimit -f 1 &&
	 test_expect_code 1 restore extract A full-new) &&
	test ! -e full-new &&
	restore extract A full-empty >out &&
	test_grep "^extracted " out
'

test_expect_success 'diff A: the live files against the snapshot, one unified diff per file' '
	restore diff A >out &&
	test ! -s out &&
	msgw-sim set A mailbox.$(mbx A 1).description "Renamed box" &&
	restore diff A >out &&
	test_grep "^diff --git a/Gateway.json b/Gateway.json$" out &&
	test_grep "^--- a/Gateway.json$" out &&
	test_grep "^+++ b/Gateway.json$" out &&
	test_grep "^-      \"description\": \"Journal mailbox 1\",$" out &&
	test_grep "^+      \"description\": \"Renamed box\",$" out &&
	test $(grep -c "^diff --git" out) = 1
'

test_expect_success 'diff A~1 A: between two snapshots, with added, removed and binary files' '
	printf "\\000\\002other\\000" >A/Templates/logo.bin &&
	rm A/Templates/bounce.txt &&
	echo "new rule" >A/rules.txt &&
	agent snapshot A >out &&
	restore diff A~1 A >out &&
	test_grep "^diff --git a/Gateway.json b/Gateway.json$" out &&
	test_grep "^+      \"description\": \"Renamed box\",$" out &&
	test_grep "^Binary files a/Templates/logo.bin and b/Templates/logo.bin differ$" out &&
	test_grep "^-Subject: Undeliverable" out &&
	test_grep "^+new rule$" out &&
	restore diff A A~1 >back &&
	test_grep "^-      \"description\": \"Renamed box\",$" back
'

test_expect_success 'diff --stat: one line per changed file and the totals' '
	restore diff A~1 A --stat >out &&
	cat >expect <<-\EOF &&
	 modified Gateway.json
	 removed  Templates/bounce.txt
	 modified Templates/logo.bin
	 added    rules.txt
	 2 modified, 1 added, 1 removed
	EOF
	test_cmp expect out
'

test_expect_success 'diff --json: each change with its patch' '
	restore diff A~1 A --json >out.json &&
	test "$(json_get out.json "d[\"counts\"]")" = "{'"'"'modified'"'"': 2, '"'"'added'"'"': 1, '"'"'removed'"'"': 1}" &&
	test "$(json_get out.json "[c[\"path\"] for c in d[\"changes\"]]")" = "['"'"'Gateway.json'"'"', '"'"'Templates/bounce.txt'"'"', '"'"'Templates/logo.bin'"'"', '"'"'rules.txt'"'"']" &&
	test "$(json_get out.json "d[\"changes\"][0][\"change\"]")" = modified &&
	test "$(json_get out.json "\"+      \\\"description\\\": \\\"Renamed box\\\",\" in d[\"changes\"][0][\"patch\"]")" = True &&
	test "$(json_get out.json "d[\"changes\"][2][\"binary\"]")" = True &&
	test "$(json_get out.json "d[\"changes\"][3][\"change\"]")" = added
'

test_expect_success 'diff A --to B compares with another gateway; a mode change is named' '
	gw_init B 0 2 &&
	restore diff A --to B --stat >out &&
	test_grep "^ modified Gateway.json$" out &&
	test_grep "^ removed  Templates/current$" out &&
	chmod 640 A/rules.txt &&
	restore diff A >out &&
	test_grep "^rules.txt: metadata (mode or owner) differs$" out
'

test_expect_success 'diff with bad arguments' '
	test_expect_code 2 restore diff &&
	test_expect_code 2 restore diff A A~1 A~2 &&
	test_expect_code 2 restore diff A A~1 --to B &&
	test_expect_code 1 restore diff nosuch
'

# perm_listing DIR: name, mode, owner and group of the files in DIR/Perm
perm_listing() {
	(cd "$1/Perm" && stat -c "%n %a %u %g" * | LC_ALL=C sort)
}

test_expect_success 'extract sets every mode and owner whatever the umask or the directory' '
	mkdir -p A/Perm &&
	echo run >A/Perm/setuid && chmod 4755 A/Perm/setuid &&
	echo grp >A/Perm/shared && chmod 2775 A/Perm/shared &&
	echo rw >A/Perm/group && chmod 664 A/Perm/group &&
	echo ro >A/Perm/readonly && chmod 444 A/Perm/readonly &&
	echo none >A/Perm/none && chmod 000 A/Perm/none &&
	if [ "$(id -u)" = 0 ]; then
		echo them >A/Perm/theirs && chown 4321:4322 A/Perm/theirs &&
		echo grp >A/Perm/group-only && chgrp 4323 A/Perm/group-only
	fi &&
	agent snapshot A >out &&
	# the snapshot keeps every bit; extract strips set-ID, sticky and
	# group/other write (issue 13), and sets everything else exactly
	git -C "$REPO" show A:manifest | grep -q "^f 4755 .* Perm/setuid$" &&
	perm_listing A | python3 -c "import sys
for l in sys.stdin:
    n, m, u, g = l.split()
    print(n, \"%o\" % (int(m, 8) & ~0o7022), u, g)" >expect &&
	test_grep "^setuid 755 " expect &&
	(umask 077 && restore extract A ex-umask >out) &&
	perm_listing ex-umask >actual &&
	test_cmp expect actual &&
	(umask 000 && restore extract A ex-umask0 >out) &&
	perm_listing ex-umask0 >actual &&
	test_cmp expect actual &&
	mkdir ex-sgid && chmod 2775 ex-sgid &&
	if [ "$(id -u)" = 0 ]; then chgrp 4400 ex-sgid; fi &&
	restore extract A ex-sgid >out &&
	perm_listing ex-sgid >actual &&
	test_cmp expect actual
'

test_done
