# gw-lib.sh: shared helpers for the restore tests (t3xxx): two simulated
# gateways A and B, each on its own loopback address, a configuration for
# both, and listings to prove what changed and what did not.
#
# Source it after test-lib.sh:
#   . "$(dirname "$0")/test-lib.sh"
#   . "$TEST_DIR/gw-lib.sh"      (test-lib.sh has changed directory)
#
# Gateway A lives in $TRASH/A and listens on 127.0.0.2, B in $TRASH/B on
# 127.0.0.3, both on console port $PORT (one per test file, from its pid),
# so two gateways with the same Gateway.json never collide.  Sourcing this
# registers a top-level cleanup that stops both daemons at test_done.
# GW_TIMEOUT (default 10) is the gateways' service timeout in seconds.

PORT=$((20000 + $$ % 20000))
CONF="$TRASH/c.conf"
REPO="$TRASH/repo.git"
STATE="$TRASH/state"

test_when_finished "msgw-sim stop '$TRASH/A' --timeout 5; msgw-sim stop '$TRASH/B' --timeout 5"
test_when_finished 'release_lock'

gw_addr() {
	case "$1" in
	A) echo 127.0.0.2 ;;
	B) echo 127.0.0.3 ;;
	*) echo "gw_addr: unknown gateway '$1'" >&2; return 1 ;;
	esac
}

# gw_section NAME: one gateway section of the configuration
gw_section() {
	local dir="$TRASH/$1" addr
	addr=$(gw_addr "$1")
	cat <<-EOF
	gateway "$1" {
	  location = "$dir"
	  exclude  = {"Logs/**"}
	  preserve = {"Certificates/**"}
	  stop     = "msgw-sim stop $dir"
	  start    = "msgw-sim start $dir --listen $addr"
	  status   = "msgw-sim status $dir"
	  health   = "tcp:$addr:$PORT"
	  timeout  = ${GW_TIMEOUT:-10}
	}
	EOF
}

# gw_write_config: $CONF with the repository, the state directory, A and B
gw_write_config() {
	{
		printf 'repository = "%s"\nstate-dir = "%s"\n' "$REPO" "$STATE"
		gw_section A
		gw_section B
	} >"$CONF"
}

agent() { msgw-agent -c "$CONF" "$@"; }
restore() { msgw-restore -c "$CONF" "$@"; }

# gw_init NAME MAILBOXES SEED [msgw-sim init options]: a fresh simulated
# gateway $TRASH/NAME, domain name.test (lower case); its mailbox ids and
# passwords go to $TRASH/ids-NAME, one "id password" line each.
gw_init() {
	local name="$1" n="$2" seed="$3" domain
	shift 3
	domain="$(echo "$name" | tr A-Z a-z).test"
	msgw-sim init "$TRASH/$name" --domain "$domain" --mailboxes "$n" --seed "$seed" \
		--console-port "$PORT" "$@" >"$TRASH/ids-$name"
}

# mbx NAME N / pw NAME N: the Nth mailbox id / password of gateway NAME
mbx() { sed -n "${2}p" "$TRASH/ids-$1" | cut -d' ' -f1; }
pw() { sed -n "${2}p" "$TRASH/ids-$1" | cut -d' ' -f2; }

gw_start() { msgw-sim start "$TRASH/$1" --listen "$(gw_addr "$1")"; }
gw_stop() { msgw-sim stop "$TRASH/$1"; }
gw_running() { msgw-sim status "$TRASH/$1" >/dev/null; }

# gw_console NAME: the line the daemon answers on its console port
gw_console() {
	local line
	exec 3<>"/dev/tcp/$(gw_addr "$1")/$PORT" || return 1
	IFS= read -r line <&3
	exec 3<&-
	printf '%s\n' "$line"
}

# gw_answers NAME DOMAIN MAILBOXES: running, and answering as configured
gw_answers() {
	local line
	gw_running "$1" || { echo "gateway $1 is not running" >&2; return 1; }
	line=$(gw_console "$1") || return 1
	if [ "$line" != "MSGW-SIM OK $2 $3" ]; then
		echo "gateway $1 answers '$line', expected 'MSGW-SIM OK $2 $3'" >&2
		return 1
	fi
}

# gw_listing DIR: tree_listing of a data directory without the contents of
# Logs/ (the service writes there whenever it starts or stops)
gw_listing() {
	tree_listing "$1" | grep -v '^\./Logs/' || true
}

# gw_config_listing DIR: only what a restore may write: no Logs/ contents,
# no preserved certificates, no mailbox stores
gw_config_listing() {
	tree_listing "$1" |
		grep -v -e '^\./Logs/' -e '^\./Certificates' -e '^\./mbx-[0-9a-f]\{32\}' || true
}

# gw_store_listing DIR: the mailbox stores only
gw_store_listing() {
	tree_listing "$1" | grep -e '^\./mbx-[0-9a-f]\{32\}' || true
}

# gw_no_leftovers DIR: no staged files, backups or journal left anywhere
gw_no_leftovers() {
	local left
	left=$(find "$1" \( -name '*.msgw-new' -o -name '*.msgw-old' -o -name '.msgw-journal' \) -print)
	if [ -n "$left" ]; then
		echo "left behind in $1:" >&2
		echo "$left" >&2
		return 1
	fi
	if [ -e "$STATE/journal-$(basename "$1")" ]; then
		echo "journal left: $STATE/journal-$(basename "$1")" >&2
		return 1
	fi
}

# branch_tip NAME: the commit id of refs/heads/NAME (empty when none)
branch_tip() { git -C "$REPO" rev-parse -q --verify "refs/heads/$1" 2>/dev/null || true; }

# meta_of REV KEY: one meta value of a snapshot
meta_of() { git -C "$REPO" show "$1:meta" | sed -n "s/^$2: //p"; }

# json_get FILE EXPR: evaluate a Python expression over the JSON document d
json_get() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# gw_set_json DIR EXPR: edit DIR/Gateway.json with a Python statement on d,
# written back as the simulator writes it (sorted keys, two-space indent)
gw_set_json() {
	python3 - "$1/Gateway.json" "$2" <<-'EOF'
	import json, sys
	path, stmt = sys.argv[1], sys.argv[2]
	d = json.load(open(path))
	exec(stmt)
	with open(path, "w") as f:
	    f.write(json.dumps(d, indent=2, sort_keys=True) + "\n")
	EOF
}

# hold_lock FILE: hold FILE's flock from a background process, as another
# run would, until release_lock (one process: killing it frees the lock)
hold_lock() {
	rm -f "$TRASH/lock-holder.ready"
	python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(120)
' "$1" "$TRASH/lock-holder.ready" &
	echo $! >"$TRASH/lock-holder.pid"
	wait_for 10 test -e "$TRASH/lock-holder.ready"
}

release_lock() {
	[ -f "$TRASH/lock-holder.pid" ] || return 0
	kill "$(cat "$TRASH/lock-holder.pid")" 2>/dev/null
	wait "$(cat "$TRASH/lock-holder.pid")" 2>/dev/null
	rm -f "$TRASH/lock-holder.pid" "$TRASH/lock-holder.ready"
}

# gw_bootstrap: A (two mailboxes) and B (none) created, configured and
# running, the repository created, A snapshotted and restored onto B: B now
# carries A's configuration and its branch records it
gw_bootstrap() {
	gw_init A 2 1 &&
	gw_init B 0 2 &&
	gw_write_config &&
	gw_start A && gw_start B &&
	agent init >/dev/null &&
	agent snapshot A >/dev/null &&
	restore apply A --to B --yes </dev/null >/dev/null &&
	cmp "$TRASH/A/Gateway.json" "$TRASH/B/Gateway.json"
}

# findings_of FILE: the codes of a plan's findings (plan --json), one a line
findings_of() {
	python3 -c 'import json,sys; [print(f["code"]) for f in json.load(open(sys.argv[1]))["findings"]]' "$1"
}

# craft CASE: repo-CASE.git, a copy of $REPO whose A branch tip is the
# snapshot tests/fixtures/hostile/craft.py makes for CASE ($FIXTURES, with
# $OUTSIDE as the folder its escapes aim at), and conf-CASE using it
craft() {
	local case="$1" git="git -C $TRASH/repo-$1.git" meta man tar tree commit
	rm -rf "craft-$case" "repo-$case.git" &&
	mkdir "craft-$case" &&
	python3 "$FIXTURES/craft.py" "$case" A "craft-$case" "$OUTSIDE" &&
	cp -a "$REPO" "repo-$case.git" &&
	git -C "$REPO" show A:meta >"craft-$case/meta" &&
	meta=$($git hash-object -w "$TRASH/craft-$case/meta") &&
	man=$($git hash-object -w "$TRASH/craft-$case/manifest") &&
	tar=$($git hash-object -w "$TRASH/craft-$case/config.tar.zst") &&
	tree=$(printf '100644 blob %s\tconfig.tar.zst\n100644 blob %s\tmanifest\n100644 blob %s\tmeta\n' \
		"$tar" "$man" "$meta" | $git mktree) &&
	commit=$(GIT_AUTHOR_NAME=crafter GIT_AUTHOR_EMAIL=crafter@test \
		GIT_COMMITTER_NAME=crafter GIT_COMMITTER_EMAIL=crafter@test \
		$git commit-tree "$tree" -p refs/heads/A -m "A: crafted ($case)") &&
	$git update-ref refs/heads/A "$commit" &&
	sed "s|^repository = .*|repository = \"$TRASH/repo-$case.git\"|" "$CONF" >"conf-$case"
}

# gw_extra_files DIR: 45 more configuration files in two folders (Conf/a:
# 30, Conf/b/c: 15), one of them mode 0640: a tree with many files for a
# swap to move
gw_extra_files() {
	mkdir -p "$1/Conf/a" "$1/Conf/b/c" &&
	for i in $(seq -w 1 30); do echo "a $i" >"$1/Conf/a/f$i.txt" || return 1; done &&
	for i in $(seq -w 1 15); do echo "c $i" >"$1/Conf/b/c/g$i.txt" || return 1; done &&
	chmod 0640 "$1/Conf/a/f01.txt"
}

# gw_change_many DIR: on a tree from gw_extra_files, 20 files modified, 12
# added (two new folders), 6 removed and 2 modes changed (snapshot: "22
# modified, 14 added, 6 removed", the folders counted)
gw_change_many() {
	for i in $(seq -w 1 20); do echo "changed $i" >>"$1/Conf/a/f$i.txt" || return 1; done &&
	mkdir "$1/Conf/new" "$1/Conf/b/c/d" &&
	for i in 1 2 3 4 5 6; do echo "new $i" >"$1/Conf/new/n$i.txt" || return 1; done &&
	for i in 1 2 3 4 5 6; do echo "deep $i" >"$1/Conf/b/c/d/m$i.txt" || return 1; done &&
	rm "$1"/Conf/b/c/g1[0-5].txt &&
	chmod 0600 "$1/Conf/a/f25.txt" "$1/Conf/b/c/g01.txt"
}
