#!/bin/bash
# t0900-bench-smoke: the benchmark's quick run at scale 1 (msgw-backup, plain
# git, tar --zstd + git; one run after a warm-up), so scripts/bench keeps
# working between full runs.  It checks what the run proves whatever the
# machine's speed: the generator is deterministic, every tool's restore
# matched the data file by file (the bench fails otherwise), the report has
# its tables and targets, and apply had verified, staged and recorded the
# pre-restore snapshot before the service was stopped.  Timing targets are
# not judged here: a smoke run measures nothing.
test_description='scripts/bench --smoke'
. "$(dirname "$0")/test-lib.sh"

GEN="$SRC_DIR/scripts/bench.d/gen.py"

test_expect_success 'the generator is deterministic and sized as documented' '
	python3 "$GEN" a --scale 2 --no-store --json >a.json &&
	python3 "$GEN" b --scale 2 --no-store --json >b.json &&
	test_cmp a.json b.json &&
	test_grep "\"config_files\": 59" a.json &&
	diff -r a b &&
	(cd a && find . -printf "%p %s %T@ %m\n" | LC_ALL=C sort) >a.list &&
	(cd b && find . -printf "%p %s %T@ %m\n" | LC_ALL=C sort) >b.list &&
	test_cmp a.list b.list &&
	test_grep "^./Config/Smtp.json " a.list &&
	! grep -q "mbx-" a.list
'

test_expect_success 'scale 1 has its mailbox stores beside 35 configuration files' '
	python3 "$GEN" s1 --scale 1 --json >s1.json &&
	test_grep "\"config_files\": 35" s1.json &&
	test_grep "\"stores\": 20" s1.json &&
	test_grep "\"store_files\": 7000" s1.json &&
	test $(find s1 -maxdepth 1 -name "mbx-*" -type d | wc -l) = 20 &&
	rm -rf s1
'

test_expect_success 'the smoke run completes and writes its report' '
	scripts_bench=$SRC_DIR/scripts/bench &&
	"$scripts_bench" --smoke --work "$TRASH/work" --out results.md >stdout 2>stderr &&
	test_cmp results.md stdout &&
	test ! -e "$TRASH/work" &&
	test_grep "^# msgw-backup benchmark (smoke run" results.md
'

test_expect_success 'the report has every operation for every tool' '
	test_grep "^| | msgw-backup | plain git | tar --zstd + git |$" results.md &&
	for op in "first snapshot" "no-change snapshot" "one changed file" "full restore" \
		"repository size" "peak RSS, snapshots" "peak RSS, restore"; do
		test $(grep -c "^| $op |" results.md) = 2 || return 1
	done &&
	test_grep "^### Scale 1: 35 configuration files" results.md &&
	test_grep "^- plain git: git version" results.md
'

test_expect_success 'apply verified, staged and recorded before the service stopped' '
	test_grep "^| service down | stop" results.md &&
	test_grep "^| apply: verification, staging and the pre-restore snapshot all happen before the stop | 2 of 2 applies: .* | yes |$" results.md
'

test_expect_success 'every target is reported as met or not, other figures without one' '
	test_grep "^## Targets" results.md &&
	test_grep "^| apply: the swap (our part of the downtime) < 50 ms" results.md &&
	test_grep "^[0-9]* of [0-9]* targets met\.$" results.md &&
	test_grep "^## Other figures (no target)" results.md &&
	test_grep "^| no-change snapshot vs plain git.s no-change commit (scale 1) | " results.md &&
	! grep -q "1\.5× plain git" results.md
'

test_done
