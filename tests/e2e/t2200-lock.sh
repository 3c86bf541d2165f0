#!/bin/bash
# t2200-lock: one snapshot run at a time per repository.  While another
# process holds repo.git/msgw.lock (flock(1) from the shell, with or
# without an owner record), a snapshot exits 6 at once saying who holds
# it, writes nothing and leaves the repository valid; read-only commands
# still work; a lock file left by a dead process is taken over with a
# warning; two real runs started together never both write.
test_description='msgw-agent: the repository lock'
. "$(dirname "$0")/test-lib.sh"

# hold LOCKFILE [RECORD]: hold an flock on LOCKFILE in the background (its
# pid in holder.pid), optionally writing RECORD into the file first; waits
# until the lock is really held
hold() {
	rm -f holder.pid
	flock -w 10 "$1" sh -c 'if [ -n "$2" ]; then printf "%s\n" "$2"; fi >"$1"; echo $$ >holder.pid; exec sleep 60' \
		holder "$1" "${2:-}" &
	echo $! >flock.pid
	echo "$1" >held.file
	local i=0
	while [ ! -s holder.pid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s holder.pid ]
}

# release: end the holder and drop the record it left
release() {
	local i=0
	[ -s holder.pid ] && kill "$(cat holder.pid)" 2>/dev/null
	rm -f holder.pid
	# flock(1) itself lets go a moment after its child ends
	while ! flock -n "$(cat held.file)" true && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	: >"$(cat held.file)"
}

test_expect_success 'setup' '
	msgw-sim init gw1 --domain example.test --mailboxes 2 --seed t2200 >ids &&
	cat >msgw.conf <<-EOF &&
	repository = "repo.git"
	state-dir  = "state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	}
	EOF
	msgw-agent -c msgw.conf init >/dev/null &&
	msgw-agent -c msgw.conf snapshot >/dev/null &&
	test -e repo.git/msgw.lock &&
	test ! -s repo.git/msgw.lock
'

test_expect_success 'a held lock: exit 6 at once, naming pid, host and time' '
	test_when_finished release &&
	hold repo.git/msgw.lock "otherhost 4242 some-boot-id 2026-11-28T15:04:02Z" &&
	msgw-sim set gw1 ports.smtp 2525 &&
	before=$(git -C repo.git rev-parse msgw1) &&
	start=$(date +%s) &&
	test_expect_code 6 msgw-agent -c msgw.conf snapshot &&
	test $(( $(date +%s) - start )) -lt 5 &&
	test_grep "^msgw-agent: repository is locked by pid 4242 on otherhost since 2026-11-28T15:04:02Z (.$TRASH/repo.git/msgw.lock.)$" err &&
	test ! -s out &&
	test "$(git -C repo.git rev-parse msgw1)" = "$before" &&
	git -C repo.git fsck --strict &&
	test_expect_code 6 msgw-agent -c msgw.conf snapshot msgw1 --json &&
	test_grep "repository is locked" err
'

test_expect_success 'a held lock without an owner record: the holder named from /proc/locks' '
	test_when_finished release &&
	hold repo.git/msgw.lock &&
	holder=$(cat flock.pid) &&
	started=$(date -u -d "$(ps -o lstart= -p $holder)" +%Y-%m-%dT%H:%M) &&
	test_expect_code 6 msgw-agent -c msgw.conf snapshot &&
	test_grep "^msgw-agent: repository is locked by pid $holder on $(hostname) since $started:[0-9][0-9]Z at the latest (it wrote no owner record) (.$TRASH/repo.git/msgw.lock.)$" err
'

test_expect_success 'a record being written or cleared is waited for, not reported as unknown' '
	test_when_finished release &&
	hold repo.git/msgw.lock &&
	{ (sleep 0.2; echo "otherhost 4343 boot 2026-11-28T15:04:02Z" >repo.git/msgw.lock) & } &&
	writer=$! &&
	test_expect_code 6 msgw-agent -c msgw.conf snapshot &&
	wait $writer &&
	test_grep "^msgw-agent: repository is locked by pid 4343 on otherhost since 2026-11-28T15:04:02Z " err
'

test_expect_success 'reading commands do not wait for the lock' '
	test_when_finished release &&
	hold repo.git/msgw.lock "$(hostname) 4242 x 2026-11-28T15:04:02Z" &&
	msgw-agent -c msgw.conf list >out &&
	test_grep "^msgw1 " out &&
	msgw-agent -c msgw.conf show msgw1 >out &&
	msgw-agent -c msgw.conf verify >out &&
	test_grep "^1 verified, 0 damaged$" out
'

test_expect_success 'once released, the next run proceeds' '
	msgw-agent -c msgw.conf snapshot >out 2>err &&
	test_grep "msgw1: 1 modified, 0 added, 0 removed$" out &&
	test ! -s err &&
	test ! -s repo.git/msgw.lock
'

test_expect_success 'a lock left by a dead process is taken over with a warning' '
	dead=$(sh -c "echo \$\$") &&
	! kill -0 $dead 2>/dev/null &&
	boot=$(cat /proc/sys/kernel/random/boot_id) &&
	echo "$(hostname) $dead $boot 2026-01-01T00:00:00Z" >repo.git/msgw.lock &&
	msgw-sim set gw1 ports.smtp 2526 &&
	msgw-agent -c msgw.conf snapshot >out 2>err &&
	test_grep "^msgw-agent: warning: cleared a stale repository lock left by pid $dead on $(hostname) (.$TRASH/repo.git/msgw.lock.)$" err &&
	test_grep "msgw1: 1 modified" out &&
	test ! -s repo.git/msgw.lock &&
	git -C repo.git fsck --strict
'

test_expect_success 'a lock left on another host or boot is taken over too' '
	echo "elsewhere 1 other-boot 2026-01-01T00:00:00Z" >repo.git/msgw.lock &&
	msgw-agent -c msgw.conf snapshot >out 2>err &&
	test_grep "cleared a stale repository lock left by pid 1 on elsewhere" err &&
	test_grep "^msgw1: unchanged" out
'

test_expect_success 'two runs started together never both write' '
	mkdir -p gw1/Big &&
	for i in 1 2 3 4 5 6 7 8; do
		head -c 4000000 /dev/urandom >gw1/Big/blob$i || exit 1
	done &&
	before=$(git -C repo.git rev-list --count msgw1)
	(set +e; msgw-agent -c msgw.conf snapshot >out1 2>err1; echo $? >rc1) &
	(set +e; msgw-agent -c msgw.conf snapshot >out2 2>err2; echo $? >rc2) &
	wait
	rc1=$(cat rc1) && rc2=$(cat rc2) &&
	echo "exit codes: $rc1 $rc2" &&
	case "$rc1$rc2" in
	00 | 06 | 60) ;;
	*) cat err1 err2; exit 1 ;;
	esac &&
	for i in 1 2; do
		if [ "$(cat rc$i)" = 6 ]; then
			test_grep "^msgw-agent: repository is locked by pid [0-9]* on [^ ]* since [0-9T:-]*Z (" err$i || exit 1
		fi
	done &&
	test "$(git -C repo.git rev-list --count msgw1)" = $((before + 1)) &&
	cat out1 out2 >outs &&
	test $(grep -c "msgw1: 0 modified, 9 added, 0 removed$" outs) = 1 &&
	git -C repo.git fsck --strict &&
	msgw-agent -c msgw.conf verify >out &&
	test_grep "^1 verified, 0 damaged$" out &&
	test ! -s repo.git/msgw.lock
'

# every command that takes a lock names the holder when it is busy:
# msgw2 follows msgw1 on a second simulated gateway, a remote and a
# retention policy make push, fetch and prune runnable
test_expect_success 'setup: a standby, a remote, a retention policy' '
	msgw-sim init gw2 --domain example.test --mailboxes 0 --seed t2200b >/dev/null &&
	git init -q --bare mirror.git &&
	cat >all.conf <<-EOF &&
	repository = "repo.git"
	state-dir  = "state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	}
	gateway "msgw2" {
	  location = "$TRASH/gw2"
	  follows  = "msgw1"
	}
	remote "mirror" {
	  url = "$TRASH/mirror.git"
	}
	retention {
	  keep-last = 100
	}
	EOF
	rm -rf gw1/Big &&
	msgw-agent -c all.conf snapshot >/dev/null &&
	msgw-restore -c all.conf apply msgw1 --to msgw2 --yes </dev/null >/dev/null
'

# busy_names PROG WHAT LOCKFILE ARGS...: PROG ARGS exits 6 (run --once
# skips its cycle with a warning and exits 1), naming pid 4242 on otherhost since the record's time
busy_names() {
	local prog="$1" what="$2" file="$3"
	shift 3
	"$prog" -c all.conf "$@" </dev/null >out 2>err
	echo "$prog $*: exit $?" >>codes
	tail -1 codes &&
	test_grep "$what is locked by pid 4242 on otherhost since 2026-11-28T15:04:02Z (.$TRASH/$file.)$" err
}

test_expect_success 'every command that takes the repository lock names its holder' '
	test_when_finished release &&
	hold repo.git/msgw.lock "otherhost 4242 some-boot-id 2026-11-28T15:04:02Z" &&
	: >codes &&
	busy_names msgw-agent repository repo.git/msgw.lock snapshot &&
	busy_names msgw-agent repository repo.git/msgw.lock snapshot msgw1 &&
	busy_names msgw-agent repository repo.git/msgw.lock prune &&
	busy_names msgw-agent repository repo.git/msgw.lock push &&
	busy_names msgw-agent repository repo.git/msgw.lock run --once &&
	busy_names msgw-restore repository repo.git/msgw.lock apply msgw1 --to msgw2 --yes &&
	busy_names msgw-restore repository repo.git/msgw.lock rollback --to msgw2 --yes &&
	busy_names msgw-restore repository repo.git/msgw.lock confirm msgw2 &&
	busy_names msgw-restore repository repo.git/msgw.lock recover msgw2 &&
	busy_names msgw-restore repository repo.git/msgw.lock fetch &&
	busy_names msgw-restore repository repo.git/msgw.lock follow msgw2 --once &&
	cat codes &&
	grep -v ": exit 6$" codes >other &&
	echo "msgw-agent run --once: exit 1" >expect &&
	test_cmp expect other
'

test_expect_success 'every command that takes the restore target lock names its holder' '
	test_when_finished release &&
	mkdir -p state &&
	hold state/target-msgw2.lock "otherhost 4242 some-boot-id 2026-11-28T15:04:02Z" &&
	: >codes &&
	busy_names msgw-restore "restore target" state/target-msgw2.lock apply msgw1 --to msgw2 --yes &&
	busy_names msgw-restore "restore target" state/target-msgw2.lock rollback --to msgw2 --yes &&
	busy_names msgw-restore "restore target" state/target-msgw2.lock confirm msgw2 &&
	busy_names msgw-restore "restore target" state/target-msgw2.lock recover msgw2 &&
	busy_names msgw-restore "restore target" state/target-msgw2.lock follow msgw2 --once &&
	cat codes &&
	! grep -v ": exit 6$" codes &&
	test ! -e gw2/.msgw-journal
'

test_done
