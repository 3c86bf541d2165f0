#!/bin/bash
# t5300-status: msgw-agent status as a monitoring plugin.  One repository
# and state directory, one configuration per case so each case's exit code
# and summary line stand alone: a fresh gateway is OK (0), an old snapshot
# WARNING (1) or CRITICAL (2) by --warn-age/--crit-age, a gateway whose
# last attempt failed (its location gone) CRITICAL (2) with the error, a
# gateway never snapshotted UNKNOWN (3); together the worst wins.  --json
# parses and carries the fields; --prometheus writes a node_exporter
# textfile that parses as the text exposition format, replaced atomically.
test_description='msgw-agent status: plugin exit codes, JSON, Prometheus textfile'
. "$(dirname "$0")/test-lib.sh"

# conf NAME GATEWAY...: NAME.conf over the shared repository and state
# directory, with the named gateways (their locations are $TRASH/GATEWAY)
conf() {
	local name="$1" g
	shift
	{
		printf 'repository = "%s/repo.git"\nstate-dir = "%s/state"\n' "$TRASH" "$TRASH"
		for g in "$@"; do
			printf 'gateway "%s" {\n  location = "%s/%s"\n  exclude = {"Logs/**"}\n}\n' \
				"$g" "$TRASH" "$g"
		done
	} >"$name.conf"
}

st() { msgw-agent -c "$1.conf" status "${@:2}"; }

# prom_check FILE: FILE parses as the Prometheus text exposition format
# (version 0.0.4): comment lines are "# HELP name text" or "# TYPE name
# type" (TYPE at most once per metric, before its samples), samples are
# "name{label="value",...} value [timestamp]" with valid names, escaped
# label values and float values; a metric's samples are contiguous
prom_check() {
	python3 - "$1" <<-'EOF'
	import re, sys
	NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
	LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
	LVAL = r'"(?:[^"\\\n]|\\[\\"n])*"'
	LABELS = r"\{(?:%s=%s(?:,%s=%s)*,?)?\}" % (LNAME, LVAL, LNAME, LVAL)
	FLOAT = r"[+-]?(?:Inf|inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
	SAMPLE = re.compile(r"^(%s)(%s)? (%s)(?: -?\d+)?$" % (NAME, LABELS, FLOAT))
	HELP = re.compile(r"^# HELP (%s) (?:[^\\\n]|\\[\\n])*$" % NAME)
	TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
	text = open(sys.argv[1], encoding="utf-8").read()
	assert text.endswith("\n"), "no final newline"
	typed, helped, seen, last = {}, set(), set(), None
	samples = 0
	for n, line in enumerate(text[:-1].split("\n"), 1):
	    where = "line %d: %r" % (n, line)
	    assert line.strip(), "empty line: " + where
	    if line.startswith("#"):
	        m = HELP.match(line) or TYPE.match(line)
	        if not m:
	            assert not line.startswith(("# HELP", "# TYPE")), "bad comment: " + where
	            continue
	        name = m.group(1)
	        if line.startswith("# TYPE"):
	            assert name not in typed, "second TYPE: " + where
	            assert name not in seen, "TYPE after samples: " + where
	            typed[name] = m.group(2)
	        else:
	            assert name not in helped, "second HELP: " + where
	            helped.add(name)
	        continue
	    m = SAMPLE.match(line)
	    assert m, "bad sample: " + where
	    name = m.group(1)
	    assert name in typed, "sample without TYPE: " + where
	    assert name == last or name not in seen, "samples not contiguous: " + where
	    float(m.group(3))
	    if typed[name] == "counter":
	        assert float(m.group(3)) >= 0, "negative counter: " + where
	    seen.add(name)
	    last = name
	    samples += 1
	assert samples > 0, "no samples"
	print(samples)
	EOF
}

# prom_value FILE SERIES: the value of one series (name{labels}) in FILE
prom_value() {
	awk -v s="$2" '$1 == s { print $2 }' "$1"
}

test_expect_success 'setup: gateways fresh, failing and never run; one snapshot each' '
	msgw-sim init fresh --domain fresh.test --mailboxes 1 --seed 1 >/dev/null &&
	msgw-sim init stale --domain stale.test --mailboxes 1 --seed 2 >/dev/null &&
	msgw-sim init failing --domain failing.test --mailboxes 1 --seed 3 >/dev/null &&
	conf all fresh stale failing never &&
	conf fresh fresh && conf stale stale && conf failing failing && conf never never &&
	msgw-agent -c all.conf init >/dev/null &&
	msgw-agent -c stale.conf snapshot >/dev/null &&
	msgw-agent -c failing.conf snapshot >/dev/null
'

test_expect_success 'stale: WARNING past --warn-age (1), CRITICAL past --crit-age (2)' '
	sleep 2 &&
	test_expect_code 1 st stale --warn-age 1s --crit-age 1h &&
	head -1 out >line &&
	test_grep "^MSGW WARNING - stale WARNING: last snapshot [0-9]*s ago$" line &&
	test_expect_code 2 st stale --warn-age 1s --crit-age 1s &&
	test_grep "^MSGW CRITICAL - stale CRITICAL: last snapshot [0-9]*s ago$" out &&
	test_expect_code 0 st stale &&
	test_grep "^MSGW OK - stale OK: last snapshot [0-9]*s ago$" out
'

test_expect_success 'fresh: OK (0), the summary line first' '
	msgw-agent -c fresh.conf snapshot >snap &&
	id=$(git -C repo.git rev-parse fresh) &&
	test_expect_code 0 st fresh --warn-age 1h --crit-age 1d &&
	head -1 out >line &&
	test_grep "^MSGW OK - fresh OK: last snapshot [0-9]*s ago$" line &&
	test_grep "^gateway fresh: OK$" out &&
	test_grep "^  last snapshot: ${id:0:12} " out &&
	test_grep "^  last attempt: [0-9T:-]*Z written$" out &&
	test ! -s err
'

test_expect_success 'failed: the location is gone, the last attempt failed: CRITICAL (2) with the error' '
	mv failing failing.away &&
	test_when_finished "mv failing.away failing" &&
	test_expect_code 1 msgw-agent -c failing.conf snapshot &&
	test_expect_code 2 st failing &&
	test_grep "^MSGW CRITICAL - failing CRITICAL: last snapshot failed: .*$TRASH/failing" out &&
	test_grep "^  last attempt: [0-9T:-]*Z failed: " out &&
	test_grep "^  failures: 1, " out
'

test_expect_success 'never run: UNKNOWN (3)' '
	test_expect_code 3 st never &&
	echo "MSGW UNKNOWN - never UNKNOWN: never snapshotted" >expect &&
	head -1 out >line &&
	test_cmp expect line &&
	test_grep "^  last snapshot: none (never snapshotted)$" out &&
	test_grep "^  last attempt: never$" out
'

test_expect_success 'together: the worst level wins and every gateway is summarised' '
	test_expect_code 2 st all &&
	head -1 out >line &&
	test_grep "^MSGW CRITICAL - fresh OK: last snapshot [0-9]*s ago; stale OK: last snapshot [0-9]*s ago; failing CRITICAL: last snapshot failed: .*; never UNKNOWN: never snapshotted$" line &&
	conf okunknown fresh never &&
	test_expect_code 3 st okunknown &&
	test_grep "^MSGW UNKNOWN - fresh OK: .*; never UNKNOWN: never snapshotted$" out &&
	conf warnunknown stale never &&
	test_expect_code 1 st warnunknown --warn-age 1s &&
	test_grep "^MSGW WARNING - stale WARNING: .*; never UNKNOWN: never snapshotted$" out
'

test_expect_success 'a failed gateway recovers on the next good snapshot' '
	test_expect_code 0 st fresh &&
	msgw-agent -c failing.conf snapshot >/dev/null &&
	test_expect_code 0 st failing &&
	test_grep "^MSGW OK - failing OK: " out &&
	test_grep "^  failures: 1, " out &&
	mv failing failing.away &&
	test_expect_code 1 msgw-agent -c failing.conf snapshot &&
	mv failing.away failing &&
	test_expect_code 2 st failing &&
	test_grep "^  failures: 2, " out
'

test_expect_success '--json parses and carries the fields' '
	test_expect_code 2 st all --json &&
	mv out s.json &&
	python3 -m json.tool s.json >/dev/null &&
	python3 - s.json "$(git -C repo.git rev-parse fresh)" <<-\EOF
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["version"] == 1 and d["status"] == "CRITICAL" and d["exit"] == 2, d
	assert d["summary"].startswith("fresh OK: "), d["summary"]
	g = {x["gateway"]: x for x in d["gateways"]}
	assert list(g) == ["fresh", "stale", "failing", "never"], list(g)
	keys = {"gateway", "status", "reason", "last_snapshot", "last_snapshot_time", "age",
	        "last_attempt", "last_result", "last_error", "failures_total", "last_drill",
	        "follow_state", "follow_finding"}
	for x in g.values():
	    assert keys <= set(x), (keys - set(x), x)
	f = g["fresh"]
	assert f["status"] == "OK" and f["last_snapshot"] == sys.argv[2], f
	assert f["last_result"] == "written" and f["last_error"] is None, f
	assert f["last_snapshot_time"] > 1600000000 and 0 <= f["age"] < 60, f
	assert f["failures_total"] == 0 and f["last_drill"] == 0, f
	x = g["failing"]
	assert x["status"] == "CRITICAL" and x["last_result"] == "failed", x
	assert "failing" in x["last_error"] and x["failures_total"] == 2, x
	assert x["reason"].startswith("last snapshot failed: "), x
	n = g["never"]
	assert n["status"] == "UNKNOWN" and n["last_snapshot"] is None, n
	assert n["age"] == -1 and n["last_snapshot_time"] == 0 and n["last_attempt"] is None, n
	assert d["remotes"] == [], d["remotes"]
	EOF
'

test_expect_success '--prometheus writes a textfile that parses as the exposition format' '
	test_expect_code 2 st all --prometheus m.prom &&
	test_grep "^MSGW CRITICAL - " out &&
	n=$(prom_check m.prom) &&
	test "$n" -ge 20 &&
	t=$(git -C repo.git show fresh:meta | sed -n "s/^created: //p") &&
	test "$(prom_value m.prom "msgw_last_snapshot_timestamp_seconds{gateway=\"fresh\"}")" -ge $(date -d "$t" +%s) &&
	test "$(prom_value m.prom "msgw_last_snapshot_timestamp_seconds{gateway=\"never\"}")" = 0 &&
	test "$(prom_value m.prom "msgw_snapshot_failures_total{gateway=\"failing\"}")" = 2 &&
	test "$(prom_value m.prom "msgw_snapshot_failures_total{gateway=\"fresh\"}")" = 0 &&
	test "$(prom_value m.prom "msgw_last_snapshot_success{gateway=\"failing\"}")" = 0 &&
	test "$(prom_value m.prom "msgw_last_snapshot_success{gateway=\"fresh\"}")" = 1 &&
	test "$(prom_value m.prom "msgw_last_drill_timestamp_seconds{gateway=\"fresh\"}")" = 0 &&
	test "$(prom_value m.prom "msgw_gateway_status{gateway=\"never\"}")" = 3 &&
	test "$(prom_value m.prom msgw_status)" = 2 &&
	test_grep "^# TYPE msgw_snapshot_failures_total counter$" m.prom &&
	test_grep "^# TYPE msgw_last_push_success gauge$" m.prom &&
	test "$(stat -c %a m.prom)" = 644
'

test_expect_success 'the checker itself rejects what the format does not allow' '
	for bad in "1bad_name 1" "m{gateway=\"a} 1" "m{gateway=a} 1" "m 1.2.3" "m{=\"x\"} 1" \
		"# TYPE m sometype" ; do
		printf "# TYPE m gauge\n%s\n" "$bad" >bad.prom &&
		! prom_check bad.prom 2>/dev/null || { echo "accepted: $bad"; false; }
	done &&
	printf "# TYPE m gauge\nm 1\nn 2\n" >bad.prom && ! prom_check bad.prom 2>/dev/null &&
	printf "m 1\n# TYPE m gauge\n" >bad.prom && ! prom_check bad.prom 2>/dev/null &&
	printf "# TYPE m gauge\nm{a=\"x\\\\\"y\"} -1.5e3\nm +Inf\n" >ok.prom && prom_check ok.prom
'

test_expect_success 'the textfile is replaced atomically (a new inode, the old one intact)' '
	ln m.prom m.old &&
	cp m.prom m.copy &&
	ino=$(stat -c %i m.prom) &&
	msgw-agent -c fresh.conf snapshot >/dev/null &&
	test_expect_code 0 st fresh --prometheus m.prom &&
	test "$(stat -c %i m.prom)" != "$ino" &&
	cmp m.old m.copy &&
	prom_check m.prom >/dev/null &&
	test "$(prom_value m.prom msgw_status)" = 0 &&
	! grep "gateway=.never." m.prom &&
	ls >files &&
	! grep "m.prom.tmp" files
'

test_expect_success 'a textfile that cannot be written is reported; the status still printed' '
	test_expect_code 0 st fresh --prometheus nodir/m.prom &&
	test_grep "^MSGW OK - " out &&
	test_grep "cannot write .*nodir/m.prom" err &&
	test ! -e nodir
'

test_expect_success 'no configuration, or bad options: UNKNOWN (3) / usage (2)' '
	test_expect_code 3 msgw-agent -c missing.conf status &&
	test_grep "^MSGW UNKNOWN - " out &&
	test_expect_code 2 st fresh --warn-age soon &&
	test_grep "bad duration" err
'

test_done
