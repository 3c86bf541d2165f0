# sshd-lib.sh: an OpenSSH server of the test's own, for the t4 tests.
# Source it after test-lib.sh.  It never touches the system's sshd or keys:
# everything lives under $TRASH/sshd, and the server listens on 127.0.0.1 on
# an unprivileged port.
#
#   sshd_setup             host key, client key (id_ed25519), authorized_keys,
#                          sshd_config and a known_hosts recording the host key
#   sshd_start             start the server (test_when_finished stops it)
#   sshd_begin             sshd_setup and sshd_start, ending the test script
#                          when either fails, and sshd_stop at its end
#   sshd_stop              stop it (the host key and the files stay)
#   sshd_new_host_key      replace the host key (a "changed host key")
#   sshd_known_line        the known_hosts line for the current host key
#
# After sshd_setup: SSHD_PORT, SSH_USER (the user running the test, who logs
# in), SSHD_DIR, SSH_KEY (the client's private key), SSH_KNOWN (known_hosts),
# SSH_URL_BASE ("ssh://USER@127.0.0.1:PORT").

SSHD_DIR="$TRASH/sshd"
SSH_KEY="$TRASH/id_ed25519"
SSH_KNOWN="$TRASH/known_hosts"
SSH_USER=$(id -un)
SSHD_PID=
unset SSH_AUTH_SOCK SSH_AGENT_PID

# Two leaks of Debian 12's libraries, not ours to fix, that the sanitizer
# build is told to ignore (precisely: full stacks, matched by the library
# call they happen under):
#  - libgit2 1.5.1 leaks the ~/.ssh/known_hosts collection and its path on
#    every ssh connection, inside git_remote_connect_ext;
#  - libssh2 1.10 leaks BIGNUMs of ECDSA keys in
#    libssh2_userauth_publickey_fromfile_ex.
printf 'leak:git_remote_connect_ext\nleak:libssh2_userauth_publickey_fromfile_ex\n' \
	>"$TRASH/lsan.supp"
LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$TRASH/lsan.supp:print_suppressions=0"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS ASAN_OPTIONS

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
	echo "1..0 # SKIP OpenSSH server or ssh-keygen not installed"
	exit 0
fi

# A port nobody listens on, from a range chosen per process.
sshd_pick_port() {
	local p=$((30000 + ($$ * 7 + ${1:-0} * 131) % 20000)) i

	for i in $(seq 0 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + i))") 2>/dev/null; then
			echo $((p + i))
			return 0
		fi
	done
	return 1
}

sshd_write_config() {
	local sftp=internal-sftp

	[ -x /usr/lib/openssh/sftp-server ] && sftp=/usr/lib/openssh/sftp-server
	cat >"$SSHD_DIR/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_ed25519
AuthorizedKeysFile $SSHD_DIR/authorized_keys
PidFile $SSHD_DIR/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowTcpForwarding yes
LogLevel VERBOSE
Subsystem sftp $sftp
EOF
}

sshd_new_host_key() {
	rm -f "$SSHD_DIR/host_ed25519" "$SSHD_DIR/host_ed25519.pub"
	ssh-keygen -q -t ed25519 -N '' -C "msgw-test-host" -f "$SSHD_DIR/host_ed25519"
}

sshd_known_line() {
	printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519.pub")"
}

sshd_setup() {
	mkdir -p "$SSHD_DIR"
	sshd_new_host_key
	ssh-keygen -q -t ed25519 -N '' -C "msgw-test-client" -f "$SSH_KEY"
	cp "$SSH_KEY.pub" "$SSHD_DIR/authorized_keys"
	SSHD_PORT=$(sshd_pick_port) || return 1
	sshd_write_config
	sshd_known_line >"$SSH_KNOWN"
	SSH_URL_BASE="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT"
}

# Start the server and wait until it answers; retried on another port when
# the one chosen was taken meanwhile.
sshd_start() {
	local try i

	[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
	for try in 1 2 3 4 5; do
		/usr/sbin/sshd -f "$SSHD_DIR/sshd_config" -D -e 2>>"$SSHD_DIR/log" &
		SSHD_PID=$!
		echo "$SSHD_PID" >"$SSHD_DIR/server.pid"
		for i in $(seq 1 100); do
			if ! kill -0 "$SSHD_PID" 2>/dev/null; then
				break
			fi
			if (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null; then
				return 0
			fi
			sleep 0.05
		done
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		SSHD_PID=
		# the port may have been taken: move everything to another one
		SSHD_PORT=$(sshd_pick_port "$try") || return 1
		sshd_write_config
		sshd_known_line >"$SSH_KNOWN"
		SSH_URL_BASE="ssh://$SSH_USER@127.0.0.1:$SSHD_PORT"
	done
	echo "sshd did not start; its log:" >&2
	cat "$SSHD_DIR/log" >&2
	return 1
}

# What most t4 tests start with: a server of their own for the whole
# script (call it at the top level, not inside a test block).
sshd_begin() {
	sshd_setup || exit 1
	sshd_start || exit 1
	test_when_finished 'sshd_stop'
}

# Stop the server started by sshd_start (by its pid, nothing else).
sshd_stop() {
	local pid

	pid=$(cat "$SSHD_DIR/server.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	rm -f "$SSHD_DIR/server.pid"
	SSHD_PID=
	return 0
}

# The msgw configuration for one gateway at URL (ssh or local) with the
# test's key and known_hosts: write_conf FILE NAME LOCATION [extra lines]
sshd_gateway_conf() {
	local file="$1" name="$2" location="$3"

	shift 3
	cat >>"$file" <<EOF
gateway "$name" {
	location = "$location"
	identity = "$SSH_KEY"
	known-hosts = "$SSH_KNOWN"
	timeout = 20
$(printf '\t%s\n' "$@")
}
EOF
}

# The msgw configuration of one gateway "gw" at $TRASH/gw over ssh with the
# test's known_hosts but no identity (the lines given say how it
# authenticates): sshd_identityless_conf FILE [extra lines]
sshd_identityless_conf() {
	local file="$1"

	shift
	{
		printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$TRASH/repo.git" "$TRASH/state"
		printf "gateway \"gw\" {\n  location = \"%s\"\n  known-hosts = \"%s\"\n" \
			"$SSH_URL_BASE$TRASH/gw" "$SSH_KNOWN"
		printf "  exclude = {\"Logs/**\"}\n  timeout = 20\n"
		printf "  %s\n" "$@"
		printf "}\n"
	} >"$file"
}

# The gateway section of a msgw-sim data directory reached only over ssh:
# its location is an ssh URL, and its service commands run on the server
# (msgw-sim by absolute path: the ssh session's PATH does not hold the
# build), the health check probes ADDR:PORT from the server's side.
#   sshd_sim_gateway_conf FILE NAME DIR ADDR PORT [extra lines]
# The stop command can be prefixed with SSH_STOP_PREFIX and the start
# command with SSH_START_PREFIX ("sleep 3; ", say); SSH_GW_TIMEOUT (default
# 10) is the service timeout.
sshd_sim_gateway_conf() {
	local file="$1" name="$2" dir="$3" addr="$4" port="$5" sim="$MSGW_BUILD_DIR/msgw-sim"

	shift 5
	cat >>"$file" <<EOF
gateway "$name" {
	location = "$SSH_URL_BASE$dir"
	identity = "$SSH_KEY"
	known-hosts = "$SSH_KNOWN"
	exclude = {"Logs/**"}
	preserve = {"Certificates/**"}
	stop = "${SSH_STOP_PREFIX:-}$sim stop $dir"
	start = "${SSH_START_PREFIX:-}$sim start $dir --listen $addr"
	status = "$sim status $dir"
	health = "tcp:$addr:$port"
	timeout = ${SSH_GW_TIMEOUT:-10}
$(printf '\t%s\n' "$@")
}
EOF
}

# The pids of the processes our server runs for its connections: every
# sshd below the master started by sshd_start (never the master itself).
sshd_session_pids() {
	local master pid

	master=$(cat "$SSHD_DIR/server.pid" 2>/dev/null) || return 0
	[ -n "$master" ] || return 0
	sshd_descendants "$master" | while read -r pid; do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && echo "$pid"
	done
	return 0
}

sshd_descendants() {
	local child

	for child in $(pgrep -P "$1"); do
		echo "$child"
		sshd_descendants "$child"
	done
}

# Drop every connection to our server the hard way (SIGKILL to the sshd
# processes serving them); the master keeps listening for new ones.
sshd_kill_sessions() {
	local pids

	pids=$(sshd_session_pids)
	[ -n "$pids" ] || return 1
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	return 0
}
