#!/bin/bash
# t6032-encrypt-extract-memory: extract from an encrypted repository holds
# neither the sealed archive nor the unsealed one whole in memory: a loose
# archive is streamed and unsealed chunk by chunk into an unlinked scratch
# file, read only once every chunk authenticated and the object matched
# its id.  A 32 MB incompressible file is extracted byte for byte with the
# peak RSS of the same extract from a plain repository, within 8 MB (the
# archive used to be held twice more: about 32 MB over); damage in
# the very last chunk, after hundreds of chunks authenticated, still
# writes nothing; no scratch file is ever left; a packed archive (read
# whole by libgit2) extracts alike.
test_description='encrypted repositories: extract streams through a sealed scratch file'
. "$(dirname "$0")/test-lib.sh"

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test
export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.test

MB=32

# peak_kb CMD...: run it; its peak RSS in kB in ./rss
peak_kb() {
	/usr/bin/time -f %M -o rss "$@"
}

no_scratch() {
	! find repo.git "${TMPDIR:-/tmp}" -maxdepth 1 -name "msgw-unsealed.*" 2>/dev/null | grep -q .
}

test_expect_success 'setup: an encrypted repository with a 32 MB file' '
	msgw-sim init gw1 --domain example.test --mailboxes 1 --seed t6032 >ids &&
	head -c $((MB * 1024 * 1024)) /dev/urandom >gw1/Certificates/big.bin &&
	cat >msgw.conf <<-EOF &&
	encryption = "keyfile:$TRASH/repo.key"
	repository = "$TRASH/repo.git"
	state-dir  = "$TRASH/state"
	gateway "msgw1" {
	  location = "$TRASH/gw1"
	  exclude  = {"Logs/**"}
	}
	EOF
	msgw-agent -c msgw.conf init --encrypt >out &&
	msgw-agent -c msgw.conf snapshot >out &&
	test $(git -C repo.git cat-file -s msgw1:config.tar.zst) -gt $((MB * 1024 * 1024)) &&
	grep -v "^encryption" msgw.conf | sed "s|/repo.git|/plain.git|" >plain.conf &&
	msgw-agent -c plain.conf init >out &&
	msgw-agent -c plain.conf snapshot >out
'

test_expect_success 'extract: byte for byte, peak RSS that of a plain repository' '
	if test -x /usr/bin/time; then
		peak_kb msgw-restore -c plain.conf extract msgw1 explain &&
		plain=$(cat rss) &&
		peak_kb msgw-restore -c msgw.conf extract msgw1 ex &&
		echo "peak RSS: encrypted $(cat rss) kB, plain $plain kB" &&
		test $(cat rss) -lt $((plain + 8 * 1024))
	else
		echo "no GNU time: RSS not measured" &&
		msgw-restore -c msgw.conf extract msgw1 ex
	fi &&
	cmp gw1/Certificates/big.bin ex/Certificates/big.bin &&
	cmp gw1/Gateway.json ex/Gateway.json &&
	no_scratch
'

test_expect_success 'damage in the last chunk: nothing written, no scratch left' '
	git -C repo.git cat-file blob msgw1:config.tar.zst >sealed &&
	python3 - sealed <<-EOF &&
	import sys
	p = sys.argv[1]
	b = bytearray(open(p, "rb").read())
	b[len(b) - 5] ^= 0x01
	open(p, "wb").write(bytes(b))
	EOF
	tar=$(git -C repo.git hash-object -w "$TRASH/sealed") &&
	man=$(git -C repo.git rev-parse msgw1:manifest) &&
	meta=$(git -C repo.git rev-parse msgw1:meta) &&
	tree=$(printf "100644 blob %s\tconfig.tar.zst\n100644 blob %s\tmanifest\n100644 blob %s\tmeta\n" \
		"$tar" "$man" "$meta" | git -C repo.git mktree) &&
	commit=$(git -C repo.git commit-tree "$tree" -p refs/heads/msgw1 -m "msgw1: damaged") &&
	test_expect_code 1 msgw-restore -c msgw.conf extract $commit bad &&
	test_grep "does not authenticate" err &&
	test_grep "nothing written there" err &&
	test ! -e bad &&
	no_scratch
'

test_expect_success 'a packed archive extracts alike' '
	git -C repo.git repack -a -d -q &&
	loose=$(git -C repo.git rev-parse msgw1:config.tar.zst) &&
	test ! -e repo.git/objects/${loose:0:2}/${loose:2} &&
	msgw-restore -c msgw.conf extract msgw1 ex2 &&
	cmp gw1/Certificates/big.bin ex2/Certificates/big.bin &&
	no_scratch
'

test_done
