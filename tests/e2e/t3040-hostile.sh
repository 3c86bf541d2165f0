#!/bin/bash
# t3040-hostile: crafted snapshots (one repository each, built with stock
# git plumbing from archives tests/fixtures/hostile/craft.py writes) are
# refused by apply, plan and extract before anything is written: absolute
# paths, "..", symlinks leaving the destination, writes through symlinks,
# hard links, devices, FIFOs, entries missing from the manifest or
# differing from it in size or hash, and files inside a mailbox store.
# Each refusal names the entry; the target stays byte-identical (stores,
# logs and all), its branch gains no snapshot, nothing appears outside, and
# the extraction directory stays empty.
test_description='msgw-restore: hostile archives are refused'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"

FIXTURES="$SRC_DIR/tests/fixtures/hostile"
OUTSIDE="$TRASH/outside"

test_expect_success 'setup: A snapshotted; B running, recorded, holding mail' '
	gw_init A 2 1 &&
	gw_init B 1 2 &&
	mkdir outside &&
	msgw-sim deliver B $(mbx B 1) 2 &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init &&
	agent snapshot A B >out
'

test_expect_success 'a crafted snapshot without hostile entries is accepted' '
	craft clean &&
	git -C repo-clean.git cat-file -p A >commit &&
	test_grep "^A: crafted (clean)$" commit &&
	git -C repo-clean.git show A:config.tar.zst | tar --zstd -tvf - >listing &&
	test_grep "Templates/notification.txt$" listing &&
	msgw-agent -c conf-clean verify A >out &&
	msgw-restore -c conf-clean plan A --to B --force=mailbox-removed >out &&
	test_grep "^  modify   Gateway.json$" out &&
	msgw-restore -c conf-clean extract A ex-clean >out &&
	cmp A/Gateway.json ex-clean/Gateway.json &&
	cmp A/Templates/notification.txt ex-clean/Templates/notification.txt
'

while IFS="	" read -r case entry reason; do
	case "$case" in "#"* | "") continue ;; esac
	entry=$(printf '%s' "$entry" | sed "s|@OUTSIDE@|$OUTSIDE|")
	test_expect_success "hostile: $case is refused naming '$entry'" '
		craft "$case" &&
		tree_listing B >before &&
		tip=$(git -C repo-$case.git rev-parse refs/heads/B) &&
		test_expect_code 1 msgw-restore -c conf-$case apply A --to B --yes --force=mailbox-removed </dev/null &&
		grep -F -e "'"'"'$entry'"'"'" err >/dev/null &&
		test_grep "$reason" err &&
		test_expect_code 1 msgw-restore -c conf-$case plan A --to B --force=mailbox-removed &&
		grep -F -e "'"'"'$entry'"'"'" err >/dev/null &&
		mkdir ex-$case &&
		test_expect_code 1 msgw-restore -c conf-$case extract A ex-$case &&
		grep -F -e "'"'"'$entry'"'"'" err >/dev/null &&
		test_grep "$reason" err &&
		test -z "$(ls -A ex-$case)" &&
		test_expect_code 1 msgw-restore -c conf-$case extract A ex-new-$case &&
		test ! -e ex-new-$case &&
		tree_listing B >after &&
		test_cmp before after &&
		test -z "$(ls -A outside)" &&
		test "$(git -C repo-$case.git rev-parse refs/heads/B)" = "$tip" &&
		test ! -e "$STATE/journal-B" &&
		gw_answers B b.test 1
	'
done <"$FIXTURES/cases.txt"

test_expect_success 'a symlink on the target is never written through' '
	rm -rf "$OUTSIDE"/* &&
	tree_listing B >before-B &&
	mv B/Templates B-Templates &&
	ln -s "$OUTSIDE" B/Templates &&
	tree_listing B >before &&
	test_expect_code 1 restore apply A --to B --yes --force=mailbox-removed,target-diverged </dev/null &&
	test_grep "Templates" err &&
	tree_listing B >after &&
	test_cmp before after &&
	test -z "$(ls -A outside)" &&
	rm B/Templates && mv B-Templates B/Templates &&
	tree_listing B >after-B &&
	test_cmp before-B after-B
'

test_done
