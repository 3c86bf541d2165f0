#!/bin/bash
# t0510-delayproxy: msgw-delayproxy, the slow link of the bench's WAN
# section.  Bytes cross it unchanged in both directions, a round trip costs
# at least twice the one-way delay, an end of file is passed on, and it ends
# with its parent.
test_description='msgw-delayproxy: a delayed loopback link'
. "$(dirname "$0")/test-lib.sh"

# a server on 127.0.0.1 that writes what it reads to got.bin and, at end of
# file, answers with the byte count and closes
cat >server.py <<'PY'
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
for _ in range(int(sys.argv[1])):
    c, _ = s.accept(); n = 0
    with open("got.bin", "wb") as f:
        while True:
            b = c.recv(65536)
            if not b: break
            f.write(b); n += len(b)
    c.sendall(b"%d\n" % n); c.close()
PY
# a client: sends a file, ends its write side, prints the answer and the
# seconds from its first byte to the answer
cat >client.py <<'PY'
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t = time.monotonic()
c.sendall(open(sys.argv[2], "rb").read()); c.shutdown(socket.SHUT_WR)
r = b""
while True:
    b = c.recv(100)
    if not b: break
    r += b
print(r.decode().strip(), "%.3f" % (time.monotonic() - t))
PY

test_when_finished 'kill $(cat pids 2>/dev/null) 2>/dev/null; true'

# start_pair DELAY_MS: server and proxy; sets SPORT and PPORT (outside a
# test block: each block runs in a subshell)
start_pair() {
	python3 server.py 3 >sport & echo $! >>pids
	while [ ! -s sport ]; do sleep 0.05; done
	SPORT=$(cat sport)
	msgw-delayproxy 0 "$SPORT" "$1" >pport & echo $! >>pids
	while [ ! -s pport ]; do sleep 0.05; done
	PPORT=$(cut -d" " -f2 pport)
}

start_pair 100

test_expect_success 'bytes cross unchanged and the end of file is passed on' '
	head -c 5000000 /dev/urandom >sent.bin &&
	python3 client.py "$PPORT" sent.bin >answer &&
	cmp sent.bin got.bin &&
	test "$(cut -d" " -f1 answer)" = 5000000
'

test_expect_success 'a round trip costs at least twice the one-way delay' '
	printf x >one.bin &&
	python3 client.py "$PPORT" one.bin >answer &&
	test "$(cut -d" " -f1 answer)" = 1 &&
	awk "{ exit !(\$2 >= 0.2) }" answer
'

test_expect_success 'usage errors exit 2 and a busy port exits 1' '
	test_expect_code 2 msgw-delayproxy 0 &&
	test_expect_code 2 msgw-delayproxy 0 0 10 &&
	test_expect_code 1 msgw-delayproxy "$PPORT" "$SPORT" 10 2>err &&
	test_grep "cannot listen on 127.0.0.1:$PPORT" err
'

# alive PID: the process runs (a zombie left to an init that does not reap
# has ended)
alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case "$state" in Z*) return 1 ;; esac
}

test_expect_success 'it ends when its parent ends' '
	sh -c "msgw-delayproxy 0 $SPORT 10 >p2 & echo \$! >child; sleep 0.3" &&
	pid=$(cat child) &&
	for i in 1 2 3 4 5 6 7 8 9 10; do alive $pid || break; sleep 0.1; done &&
	! alive $pid
'

test_done
