#!/usr/bin/env python3
"""wan.py: msgw-backup across a slow link (scripts/bench --wan).

    wan.py --build DIR --sim DIR [--scales 1,100] [--rtt-ms 50] [--runs N]
           [--out FILE] [--work DIR] [--keep]

A real OpenSSH server on 127.0.0.1 (its own host key, client key and
configuration, as tests/e2e/sshd-lib.sh makes them) behind msgw-delayproxy,
which holds every byte for half the round trip in each direction.  For each
scale, a generated gateway (scripts/bench.d/gen.py, without mailbox store:
the stream limit below would have to exclude it) and, measured in the same
run:

  - the stream limit: `ssh host tar -cf - -C DIR . | zstd` (connection
    included), what one stream of the bytes costs;
  - msgw-agent's first snapshot (a new repository) and its no-change
    snapshot, as times and as ratios to the stream limit (target: 3x);
  - up to --before-max-scale (1), the same two with one SFTP request at a time
    and no stat cache (MSGW_SFTP_SEQUENTIAL=1, the cache file removed):
    what the code did before requests were pipelined.

Then msgw-restore apply over ssh at scale 1 onto an msgw-sim gateway, with
one changed file and with --apply-many (20) changed files: the service's
downtime minus its own stop and start, in round trips (target: at most 10;
with the swap's requests pipelined it does not grow with the files), and
the same with MSGW_SFTP_SEQUENTIAL=1 (one request at a time, as before);
with --apply-meta N also an apply of N folder mode changes and 2N + 1
removed folders (the swap's chmod and folder-removal waves).  --apply-only
skips the snapshot table.  Markdown on stdout, and in --out
between the markers <!-- wan --> and <!-- /wan --> (the rest of the file
is kept).
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "gen.py")


def run(cmd, env=None, capture=False, check=True):
    p = subprocess.run(cmd, shell=True, env=env, stdout=subprocess.PIPE if capture else
                       subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"wan: failed ({p.returncode}): {cmd}\n{p.stderr}")
    return p


def timed(cmd, env=None):
    t = time.monotonic()
    run(cmd, env=env)
    return time.monotonic() - t


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc):
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit("wan: sshd ended at once")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("wan: sshd does not answer")


class Link:
    """sshd on 127.0.0.1 and the delaying proxy in front of it."""

    def __init__(self, work, build, one_way_ms):
        self.dir = os.path.join(work, "sshd")
        os.makedirs(self.dir)
        self.key = os.path.join(work, "id_ed25519")
        self.known = os.path.join(work, "known_hosts")
        self.user = os.environ.get("USER") or subprocess.run(
            "id -un", shell=True, capture_output=True, text=True).stdout.strip()
        hk = os.path.join(self.dir, "host_ed25519")
        run(f"ssh-keygen -q -t ed25519 -N '' -f {hk}")
        run(f"ssh-keygen -q -t ed25519 -N '' -f {self.key}")
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        self.sshd_port = free_port()
        sftp = "/usr/lib/openssh/sftp-server"
        sftp = sftp if os.access(sftp, os.X_OK) else "internal-sftp"
        conf = os.path.join(self.dir, "sshd_config")
        with open(conf, "w") as f:
            f.write(f"Port {self.sshd_port}\nListenAddress 127.0.0.1\nHostKey {hk}\n"
                    f"AuthorizedKeysFile {self.dir}/authorized_keys\nPidFile {self.dir}/pid\n"
                    "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    f"PubkeyAuthentication yes\nSubsystem sftp {sftp}\n")
        if os.getuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)
        self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                                     stderr=open(os.path.join(self.dir, "log"), "w"))
        wait_port(self.sshd_port, self.sshd)
        self.proxy = subprocess.Popen([os.path.join(build, "msgw-delayproxy"), "0",
                                       str(self.sshd_port), str(one_way_ms)],
                                      stdout=subprocess.PIPE, text=True)
        line = self.proxy.stdout.readline()
        m = re.match(r"port (\d+)", line)
        if not m:
            raise SystemExit(f"wan: msgw-delayproxy said {line!r}")
        self.port = int(m.group(1))
        with open(hk + ".pub") as f:
            blob = " ".join(f.read().split()[:2])
        with open(self.known, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {blob}\n")
        self.url = f"ssh://{self.user}@127.0.0.1:{self.port}"
        self.ssh = (f"ssh -F /dev/null -p {self.port} -i {self.key} -o BatchMode=yes "
                    f"-o UserKnownHostsFile={self.known} -o StrictHostKeyChecking=yes "
                    f"{self.user}@127.0.0.1")

    def close(self):
        for p in (self.proxy, self.sshd):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def write_conf(path, repo, state, link, loc, extra=""):
    with open(path, "w") as f:
        f.write(f'repository = "{repo}"\nstate-dir = "{state}"\n'
                f'gateway "gw" {{\n  location = "{link.url}{loc}"\n'
                f'  identity = "{link.key}"\n  known-hosts = "{link.known}"\n'
                f'  timeout = 120\n{extra}}}\n')


def snapshot_times(env, base, link, data, runs, sequential):
    """First and no-change snapshot times (medians of runs)."""
    firsts, unchanged = [], []
    e = dict(env)
    if sequential:
        e["MSGW_SFTP_SEQUENTIAL"] = "1"
    for i in range(runs):
        d = os.path.join(base, f"r{i}{'s' if sequential else ''}")
        os.makedirs(d)
        conf = os.path.join(d, "c.conf")
        state = os.path.join(d, "state")
        write_conf(conf, os.path.join(d, "repo.git"), state, link, data)
        run(f"msgw-agent -q -c {conf} init", env=e)
        firsts.append(timed(f"msgw-agent -q -c {conf} snapshot", env=e))
        for _ in range(2):
            if sequential:  # before: no stat cache over SFTP
                cache = os.path.join(state, "statcache-gw")
                if os.path.exists(cache):
                    os.unlink(cache)
            unchanged.append(timed(f"msgw-agent -q -c {conf} snapshot", env=e))
    return statistics.median(firsts), statistics.median(unchanged)


APPLY_RE = re.compile(r"service down ([0-9.]+) s \(stop ([0-9.]+) s, swap ([0-9.]+) s, "
                      r"start and health ([0-9.]+) s\)")


def config_files(gw, n):
    """The first n regular files of the generated configuration (sorted)."""
    found = []
    for d in ("Config", "Domains"):
        for top, dirs, files in os.walk(os.path.join(gw, d)):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(top, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    found.append(p)
    if len(found) < n:
        raise SystemExit(f"wan: only {len(found)} configuration files, {n} wanted")
    return found[:n]


def meta_tree(gw, n, b_side):
    """--apply-meta: n folders Config/m/dNN with a file each (0755 in A, 0700 in B) and,
    in B only, n empty folders Config/x/eNN/sub (three depths with Config/x): applying A
    onto B is n mode-only changes and 2n + 1 removed folders, nothing else."""
    for i in range(n):
        d = os.path.join(gw, "Config", "m", f"d{i:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f.txt"), "w") as f:
            f.write(f"m {i}\n")
        os.chmod(d, 0o700 if b_side else 0o755)
        if b_side:
            os.makedirs(os.path.join(gw, "Config", "x", f"e{i:03d}", "sub"), exist_ok=True)


def bench_apply(env, work, link, sim, s1data, runs, changed=1, sequential=False, meta=0):
    base = os.path.join(work, f"apply{changed}{'m' if meta else ''}{'s' if sequential else ''}")
    if sequential:  # one SFTP request at a time: the swap as it was before
        env = dict(env, MSGW_SFTP_SEQUENTIAL="1")
    os.makedirs(base)
    gw = os.path.join(base, "gw")
    port = free_port()
    addr = "127.0.0.1"
    simbin = os.path.join(sim, "msgw-sim")
    run(f"{simbin} init {gw} --domain wan.example --mailboxes 5 --seed wan "
        f"--console-port {port}", env=env)
    for d in ("Config", "Domains"):
        shutil.copytree(os.path.join(s1data, d), os.path.join(gw, d), symlinks=True)
    conf = os.path.join(base, "c.conf")
    write_conf(conf, os.path.join(base, "repo.git"), os.path.join(base, "state"), link, gw,
               f'  exclude = {{"Logs/**"}}\n  preserve = {{"Certificates/**"}}\n'
               f'  stop = "{simbin} stop {gw}"\n  start = "{simbin} start {gw} --listen {addr}"\n'
               f'  status = "{simbin} status {gw}"\n  health = "tcp:{addr}:{port}"\n')
    c = f"-c {conf}"
    run(f"{simbin} start {gw} --listen {addr}", env=env)
    samples, wholes = [], []
    try:
        if meta:
            meta_tree(gw, meta, False)
        run(f"msgw-agent -q {c} init && msgw-agent -q {c} snapshot --tag A", env=env)
        if meta:
            meta_tree(gw, meta, True)
        for path in ([] if meta else [os.path.join(gw, "Config", "Smtp.json")] if changed == 1
                     else config_files(gw, changed)):
            with open(path, "a") as f:
                f.write("\n")
        run(f"msgw-agent -q {c} snapshot --tag B", env=env)
        for i in range(runs + 1):
            for tag in ("A", "B"):
                t = time.monotonic()
                p = run(f"msgw-restore {c} apply {tag} --to gw --yes", env=env, capture=True)
                whole = time.monotonic() - t
                m = APPLY_RE.search(p.stdout)
                if not m:
                    raise SystemExit(f"wan: apply printed no downtime line:\n{p.stdout}")
                if i:
                    samples.append([float(x) for x in m.groups()])
                    wholes.append(whole)
    finally:
        run(f"{simbin} stop {gw}", env=env, check=False)
    return samples, wholes


def fmt(s):
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--proxy", help="where msgw-delayproxy is (default: --build)")
    ap.add_argument("--scales", default="1,100")
    ap.add_argument("--rtt-ms", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--work")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-apply", action="store_true")
    ap.add_argument("--apply-many", type=int, default=20,
                    help="changed files of the second apply variant (0: none)")
    ap.add_argument("--apply-meta", type=int, default=0,
                    help="a third apply variant: this many folder mode changes and about "
                    "twice as many removed folders, three deep (0: none; 20 adds about 8 "
                    "minutes, mostly its one-request-at-a-time 'before')")
    ap.add_argument("--apply-only", action="store_true",
                    help="measure only the applies (no snapshot table)")
    ap.add_argument("--cycle", action="store_true",
                    help="also 100 gateways in one cycle (wan_cycle.py, about 7 minutes)")
    ap.add_argument("--cycle-parallel", default="8,32")
    ap.add_argument("--before-max-scale", type=int, default=1,
                    help="measure the sequential path up to this scale (slow: minutes at 100)")
    a = ap.parse_args()
    scales = [int(x) for x in a.scales.split(",")]
    work = tempfile.mkdtemp(prefix="msgw-wan.", dir=a.work or os.environ.get("TMPDIR", "/var/tmp"))
    env = dict(os.environ)
    env["PATH"] = f"{a.build}:{a.sim}:{env['PATH']}"
    env.pop("SSH_AUTH_SOCK", None)
    rtt = a.rtt_ms / 1000.0
    link = Link(work, a.proxy or a.build, a.rtt_ms // 2)
    lines = []
    out = lines.append
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    try:
        out(f"### Across a slow link ({a.rtt_ms} ms round trip)\n")
        out("A real `sshd` on 127.0.0.1 behind `msgw-delayproxy` (every byte held "
            f"{a.rtt_ms // 2} ms in each direction); generated gateways without mailbox "
            f"store; medians of {a.runs} runs (no-change: {2 * a.runs}). The stream limit is "
            "`ssh host tar -cf - -C DIR . | zstd`, connection included, measured in the same "
            "run. *Before*: one SFTP request at a time and no stat cache over SFTP "
            "(`MSGW_SFTP_SEQUENTIAL=1`, the cache file removed), as the code was.\n")
        out("| scale | files | stream limit | first snapshot | ratio | no-change | ratio "
            "| before: first | before: no-change |")
        out("|---|---|---|---|---|---|---|---|---|")
        targets = []
        s1data = None
        for scale in [] if a.apply_only else scales:
            data = os.path.join(work, f"gw{scale}")
            run(f"python3 {GEN} {data} --scale {scale} --no-store")
            s1data = s1data or data
            files = sum(len(f) for _, _, f in os.walk(data))
            log(f"wan: scale {scale}: {files} files")
            stream = statistics.median(
                timed(f"{link.ssh} tar -cf - -C {data} . | zstd -q -c >/dev/null")
                for _ in range(a.runs))
            base = os.path.join(work, f"s{scale}")
            os.makedirs(base)
            first, unch = snapshot_times(env, base, link, data, a.runs, False)
            log(f"wan: scale {scale}: stream {stream:.2f} first {first:.2f} unchanged {unch:.2f}")
            before = ("", "")
            if scale <= a.before_max_scale:
                bf, bu = snapshot_times(env, base, link, data, 1, True)
                before = (fmt(bf), fmt(bu))
                log(f"wan: scale {scale}: before: first {bf:.2f} unchanged {bu:.2f}")
            out(f"| {scale} | {files} | {fmt(stream)} | {fmt(first)} | {first / stream:.1f}x "
                f"| {fmt(unch)} | {unch / stream:.1f}x | {before[0]} | {before[1]} |")
            targets.append((f"first snapshot within 3x of the stream limit (scale {scale})",
                            f"{first / stream:.1f}x", first <= 3 * stream))
            targets.append((f"no-change snapshot within 3x of the stream limit (scale {scale})",
                            f"{unch / stream:.1f}x", unch <= 3 * stream))
        if a.apply_only:
            s1data = os.path.join(work, "gw1")
            run(f"python3 {GEN} {s1data} --scale 1 --no-store")
        if not a.no_apply and s1data:
            variants = [(1, 0)] + ([(a.apply_many, 0)] if a.apply_many > 1 else [])
            variants += [(0, a.apply_meta)] if a.apply_meta > 0 else []
            for changed, meta in variants:
                samples, wholes = bench_apply(env, work, link, a.sim, s1data, a.runs, changed,
                                              meta=meta)
                ours = [d - s - h for d, s, _, h in samples]
                med = statistics.median(ours)
                bsamples, _ = bench_apply(env, work, link, a.sim, s1data, 1, changed, True,
                                          meta=meta)
                before = statistics.median(d - s - h for d, s, _, h in bsamples)
                down = statistics.median(x[0] for x in samples)
                what = ("one changed file" if changed == 1 else f"{changed} changed files"
                        if not meta else f"{meta} folder mode changes one way, those and "
                        f"{2 * meta + 1} removed folders the other")
                log(f"wan: apply, {what}: ours {med * 1000:.0f} ms = {med / rtt:.1f} round trips")
                out("")
                out(f"`msgw-restore apply` over ssh at scale 1 (an `msgw-sim` gateway with the "
                    f"generated configuration, {what}), {len(samples)} applies: service "
                    f"down {fmt(down)} (median), of which stop and start with health "
                    f"{fmt(statistics.median(x[1] + x[3] for x in samples))}; the rest, ours, "
                    f"{med * 1000:.0f} ms = {med / rtt:.1f} round trips (worst "
                    f"{max(ours) / rtt:.1f}); whole apply {fmt(statistics.median(wholes))}. "
                    f"Before (one SFTP request at a time, `MSGW_SFTP_SEQUENTIAL=1`, which "
                    f"sends the swap's requests as the code did before they were pipelined): "
                    f"{before / rtt:.1f} round trips.")
                targets.append((f"apply over ssh: service down minus its stop and start "
                                f"<= 10 round trips (scale 1, {what})",
                                f"{med / rtt:.1f} round trips", med / rtt <= 10))
        if a.cycle:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import wan_cycle
            res = wan_cycle.bench_wan_cycle(
                os.path.realpath(a.build), os.path.join(work, "cycle"), log, rtt_ms=a.rtt_ms,
                parallels=[int(x) for x in a.cycle_parallel.split(",")],
                proxy_dir=os.path.realpath(a.proxy or a.build))
            cycle_lines, cycle_targets = wan_cycle.report_wan_cycle(res)
            out("")
            lines.extend("#" + x if x.startswith("## ") else x for x in cycle_lines)
            targets.extend(cycle_targets)
        out("")
        out("| target | measured | met |")
        out("|---|---|---|")
        for name, got, ok in targets:
            out(f"| {name} | {got} | {'yes' if ok else 'no'} |")
    finally:
        link.close()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        old = open(a.out).read() if os.path.exists(a.out) else ""
        block = f"<!-- wan -->\n{text}<!-- /wan -->\n"
        m = re.search(r"<!-- wan -->.*?<!-- /wan -->\n?", old, re.S)
        new = old[:m.start()] + block + old[m.end():] if m else old + "\n" + block
        with open(a.out, "w") as f:
            f.write(new)


if __name__ == "__main__":
    main()
