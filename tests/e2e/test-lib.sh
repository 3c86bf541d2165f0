# test-lib.sh: a small harness for end-to-end tests, after git's t/test-lib.sh.
#
# A test file sources this, sets test_description, runs test_expect_success
# blocks and ends with test_done.  Each test file gets its own scratch
# directory ($TRASH, also the working directory), removed at the end unless
# MSGW_TEST_KEEP=1.  Binaries come from $MSGW_BUILD_DIR (default ../../build).
#
#   test_expect_success 'what it checks' '
#           cmd1 &&
#           cmd2
#   '
#   test_expect_code 2 msgw-agent -c bad.conf list   # runs one command
#   test_cmp expected actual                         # diff -u
#   test_when_finished 'cleanup command'             # run at test_done/exit
#
# Each block runs in a subshell with "set -e"; a block fails when its last
# status is non-zero.  Output is TAP-like ("ok N - ...", "not ok N - ...").

set -u
TEST_DIR=$(cd "$(dirname "$0")" && pwd)
SRC_DIR=$(cd "$TEST_DIR/../.." && pwd)
: "${MSGW_BUILD_DIR:=$SRC_DIR/build}"
export MSGW_BUILD_DIR
PATH="$MSGW_BUILD_DIR:$SRC_DIR/scripts:$PATH"
export PATH
unset MSGW_BACKUP_CONF
export LC_ALL=C TZ=UTC

TEST_NAME=$(basename "$0" .sh)
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/msgw-$TEST_NAME.XXXXXX")
export HOME="$TRASH/home"
mkdir -p "$HOME"
cd "$TRASH" || exit 1

test_count=0
test_failed=0
# Cleanups are kept in a file so that test_when_finished works inside a
# test block's subshell; a block's cleanups run when the block ends, and
# top-level ones at test_done (or on exit).
test_cleanup_file="$TRASH/.cleanups"
: >"$test_cleanup_file"

test_when_finished() {
	printf '%s\n' "$1" | cat - "$test_cleanup_file" >"$test_cleanup_file.new"
	mv "$test_cleanup_file.new" "$test_cleanup_file"
}

test_run_cleanups() {
	local f="${1:-$test_cleanup_file}"

	if [ -s "$f" ]; then
		(cd "$TRASH" && . "$f") >/dev/null 2>&1 || true
		: >"$f"
	fi
}

say_result() {
	test_count=$((test_count + 1))
	if [ "$1" = 0 ]; then
		echo "ok $test_count - $2"
	else
		test_failed=$((test_failed + 1))
		echo "not ok $test_count - $2"
	fi
}

test_expect_success() {
	local desc="$1" body="$2" rc
	(
		cd "$TRASH"
		test_cleanup_file="$TRASH/.cleanups.block"
		: >"$test_cleanup_file"
		set -e
		eval "$body"
	) >"$TRASH/.out" 2>&1
	rc=$?
	test_run_cleanups "$TRASH/.cleanups.block"
	if [ "$rc" != 0 ] || [ "${MSGW_TEST_VERBOSE:-0}" = 1 ]; then
		sed 's/^/#   /' "$TRASH/.out"
	fi
	say_result "$rc" "$desc"
}

# test_expect_code CODE CMD [ARGS...]: CMD must exit with CODE.  Its stdout
# goes to ./out and its stderr to ./err for later checks.
test_expect_code() {
	local want="$1" got
	shift
	"$@" >out 2>err && got=0 || got=$?
	if [ "$got" != "$want" ]; then
		echo "expected exit $want, got $got from: $*" >&2
		cat err >&2
		return 1
	fi
	return 0
}

test_cmp() {
	diff -u "$1" "$2"
}

# test_grep PATTERN FILE: like grep -q, but shows the file when it fails.
test_grep() {
	if ! grep -q -e "$1" "$2"; then
		echo "no match for '$1' in $2:" >&2
		cat "$2" >&2
		return 1
	fi
}

# Checksum listing of a tree: path, type, mode and sha256 of every entry.
tree_listing() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
		if [ -L "$p" ]; then
			printf '%s l %s\n' "$p" "$(readlink "$p")"
		elif [ -d "$p" ]; then
			printf '%s d %s\n' "$p" "$(stat -c %a "$p")"
		else
			printf '%s f %s %s\n' "$p" "$(stat -c %a "$p")" "$(sha256sum <"$p" | cut -d' ' -f1)"
		fi
	done)
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; after
# SECONDS, say what was waited for and fail
wait_for() {
	local limit=$(($1 * 10)) i=0
	shift
	while ! "$@"; do
		i=$((i + 1))
		[ $i -lt $limit ] || { echo "timed out waiting for: $*" >&2; return 1; }
		sleep 0.1
	done
}

test_done() {
	test_run_cleanups
	echo "# $TEST_NAME: $((test_count - test_failed)) passed, $test_failed failed"
	if [ "${MSGW_TEST_KEEP:-0}" != 1 ] && [ "$test_failed" = 0 ]; then
		cd / && rm -rf "$TRASH"
	else
		echo "# scratch directory kept: $TRASH"
	fi
	[ "$test_failed" = 0 ]
	exit $?
}

trap 'test_run_cleanups' EXIT
# sanitizer reports of background processes (daemons) land here
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
