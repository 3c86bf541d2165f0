#!/bin/bash
# t3220-ssh-link-owner: issue 13 case 2, owner change through a link over
# SFTP.  A crafted snapshot holds d/, d/up -> .. and x -> d/up.msgw-new/
# ../victim owned by uid 4242; while it is staged, x.msgw-new resolves
# (through the staged d/up.msgw-new) to a root-owned file outside the
# gateway.  OpenSSH's SETSTAT follows links, so a restore that sets a
# staged link's owner over SFTP gave that file away.  Applied over ssh
# (the real sshd of sshd-lib.sh), the outside file keeps its owner, mode
# and content byte for byte, whether the restore goes through or refuses.
test_description='msgw-restore over ssh: no meta data is set through a link'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/gw-lib.sh"
. "$TEST_DIR/sshd-lib.sh"

A1=127.0.0.2
FIXTURES="$SRC_DIR/tests/fixtures/hostile"

sshd_begin
test_when_finished "msgw-sim stop '$TRASH/g1' --timeout 5"

victim_listing() { stat -c '%u:%g %a %s' "$TRASH/victim" && sha256sum <"$TRASH/victim"; }

test_expect_success 'setup: g1 behind the ssh server, running, snapshotted; a root-owned file beside it' '
	test "$(id -u)" = 0 &&
	gw_init g1 1 3220 &&
	printf "repository = \"%s\"\nstate-dir = \"%s\"\n" "$REPO" "$STATE" >"$CONF" &&
	sshd_sim_gateway_conf "$CONF" g1 "$TRASH/g1" $A1 $PORT &&
	agent init >out &&
	msgw-sim start g1 --listen $A1 &&
	agent snapshot g1 >out &&
	echo "root owns this" >victim &&
	chown 0:0 victim && chmod 0644 victim &&
	victim_listing >victim-before
'

test_expect_success 'craft: d/up -> .. and x -> d/up.msgw-new/../victim owned by 4242' '
	mkdir craft &&
	python3 - "$FIXTURES" "$TRASH/g1" "$TRASH/craft" <<-\EOF &&
	import os, sys
	sys.path.insert(0, sys.argv[1])
	from craft import Snapshot, read
	src, out = sys.argv[2], sys.argv[3]
	s = Snapshot()
	s.add_file("Gateway.json", read(src, "Gateway.json"))
	s.add_dir("Templates")
	for n in ("bounce.txt", "notification.txt"):
	    s.add_file("Templates/" + n, read(src, "Templates/" + n))
	s.add_dir("d")
	s.add_symlink("d/up", "..")
	s.add_symlink("x", "d/up.msgw-new/../victim")
	ti = s.entries[-1][0]
	ti.uid = ti.gid = 4242
	ti.uname = ti.gname = ""
	s.write(out)
	m = os.path.join(out, "manifest")
	text = open(m).read()
	lines = [l.replace("l 0777 0 0 ", "l 0777 4242 4242 ") if l.endswith(" x") else l
	         for l in text.split("\n")]
	open(m, "w").write("\n".join(lines))
	EOF
	test_grep "^l 0777 4242 4242 .* x$" craft/manifest &&
	git="git --git-dir=$REPO" &&
	$git show g1:meta >craft/meta &&
	meta=$($git hash-object -w craft/meta) &&
	man=$($git hash-object -w craft/manifest) &&
	tar=$($git hash-object -w craft/config.tar.zst) &&
	tree=$(printf "100644 blob %s\tconfig.tar.zst\n100644 blob %s\tmanifest\n100644 blob %s\tmeta\n" \
		"$tar" "$man" "$meta" | $git mktree) &&
	commit=$(GIT_AUTHOR_NAME=crafter GIT_AUTHOR_EMAIL=crafter@test \
		GIT_COMMITTER_NAME=crafter GIT_COMMITTER_EMAIL=crafter@test \
		$git commit-tree "$tree" -p refs/heads/g1 -m "g1: crafted (link owner)") &&
	$git update-ref refs/heads/crafted "$commit"
'

test_expect_success 'apply over ssh: the outside file keeps its owner, mode and content' '
	{ restore apply crafted --to g1 --yes --force=mailbox-removed </dev/null >out 2>err; echo $? >rc; } &&
	cat err &&
	grep -q "^[01]$" rc &&
	victim_listing >victim-after &&
	test_cmp victim-before victim-after &&
	test -z "$(find g1 -name "*.msgw-new" -o -name "*.msgw-old")" &&
	msgw-sim status g1 >/dev/null
'

test_done
