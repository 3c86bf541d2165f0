#!/usr/bin/env python3
"""wan_cycle.py: one cycle of many gateways over a slow link (issue 17).

    wan_cycle.py --build DIR [--gateways 100] [--rtt-ms 50] [--parallel 8,32]
                 [--runs 1] [--work DIR] [--out FILE] [--keep]

or, from bench.py's WAN section: bench_wan_cycle(...) then
report_wan_cycle(results) for its lines and targets.

An OpenSSH server of its own on 127.0.0.1 (its own host key, client key and
configuration; never the system's), reached through msgw-delayproxy (each
direction delayed by half the round trip).  One gateway data directory at
scale 1 (scripts/bench.d/gen.py, with its mailbox stores); N configuration
entries (g001, g002, ...) all read it through the proxy, so every gateway
costs the same round trips.

Measured, each median (min-max) of --runs runs:
  - one gateway's snapshot (msgw-agent snapshot g001): first (a new
    repository) and no-change;
  - one cycle of all N (msgw-agent snapshot, which is what run does each
    interval), first and no-change, for each --parallel value;
  - the cycle's time as a ratio to one gateway's (target: within 5x for
    the no-change cycle, the scheduled case), and the cycle's peak memory:
    the sum over the run's processes (the run and its workers) of their
    proportional set size (PSS: shared pages divided among the sharers),
    sampled every 20 ms, and the largest single process's peak RSS;
  - the CPU time each cycle cost: the run and its workers, the sshd's
    sessions (its sshd processes, as the sshd reaps them) and the proxy.
    The sshd serves SFTP with internal-sftp: with sftp-server it starts
    the user's login shell for every session, and root's .bashrc on this
    machine (pyenv init) cost 0.12 s of CPU each, four times the rest of
    the session.  All of them share this machine's cores,
    while in the field each gateway is a server of its own: when the sshd's
    CPU divided by the cores comes near the cycle's time, the cycle measures
    the one simulated server, not the run.

Markdown on stdout (and in --out); the scratch directory (default
$TMPDIR or /var/tmp) is removed unless --keep.  At the defaults (parallel
8, and 32, msgw-agent's default) one run takes about a minute and a half.
"""
import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "gen.py")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sshd:
    """An sshd of our own (as tests/e2e/sshd-lib.sh does it)."""

    def __init__(self, work):
        self.dir = os.path.join(work, "sshd")
        os.makedirs(self.dir)
        self.key = os.path.join(work, "id_ed25519")
        self.known = os.path.join(work, "known_hosts")
        host = os.path.join(self.dir, "host_ed25519")
        for path, comment in ((host, "bench-host"), (self.key, "bench-client")):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                            path], check=True)
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        self.port = free_port()
        conf = os.path.join(self.dir, "sshd_config")
        with open(conf, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {host}
AuthorizedKeysFile {self.dir}/authorized_keys
PidFile {self.dir}/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
MaxStartups 400
LogLevel ERROR
Subsystem sftp internal-sftp
""")
        if os.getuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-f", conf, "-D", "-e"],
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("sshd did not start")
        with open(host + ".pub") as f:
            self.host_pub = " ".join(f.read().split()[:2])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


class Proxy:
    """msgw-delayproxy in front of the sshd: rtt_ms per round trip."""

    def __init__(self, build, target, rtt_ms):
        self.proc = subprocess.Popen([os.path.join(build, "msgw-delayproxy"), "0", str(target),
                                      str(rtt_ms // 2)], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "port":
            raise RuntimeError(f"msgw-delayproxy said {line}")
        self.port = int(line[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def tree(pid):
    """pid and every descendant."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid, children=False):
    """CPU seconds of pid (user and system), with its reaped children's when
    children."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(argv, env):
    """Run argv: wall seconds, peak PSS sum of its process tree (kB, sampled
    every 20 ms), the largest single process's peak RSS (kB: VmHWM, sampled
    with it), its stderr."""
    peak = [0, 0]
    t0 = time.perf_counter()
    out = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    done = threading.Event()

    def sample():
        while not done.is_set():
            pids = tree(p.pid)
            peak[0] = max(peak[0], sum(pss_kb(x) for x in pids))
            peak[1] = max([peak[1]] + [hwm_kb(x) for x in pids])
            done.wait(0.02)

    th = threading.Thread(target=sample)
    th.start()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    code = os.waitstatus_to_exitcode(status)
    out.seek(0)
    try:
        failed = [r for r in json.load(out)["results"] if r["result"] == "failed"]
    except ValueError:
        failed = None
    if code not in (0, 1) or failed is None or (code == 1) != bool(failed):
        raise RuntimeError(f"exit {code}: {' '.join(argv)}\n{err.decode(errors='replace')[-2000:]}")
    return wall, peak[0], max(ru.ru_maxrss, peak[1]), failed, ru.ru_utime + ru.ru_stime


def write_conf(path, repo, n, proxy_port, sshd, data, parallel):
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], stdout=subprocess.PIPE,
                                                    check=True).stdout.decode().strip()
    with open(path, "w") as f:
        f.write(f'repository = "{repo}"\nstate-dir = "{repo}.state"\nparallel = {parallel}\n')
        for i in range(1, n + 1):
            f.write(f'gateway "g{i:03d}" {{\n'
                    f'  location = "ssh://{user}@127.0.0.1:{proxy_port}{data}"\n'
                    f'  identity = "{sshd.key}"\n  known-hosts = "{sshd.known}"\n'
                    f'  exclude = {{"Logs/**"}}\n  timeout = 60\n}}\n')


def fmt(xs):
    m = statistics.median(xs)
    return f"{m:.2f} s ({min(xs):.2f}–{max(xs):.2f})" if len(xs) > 1 else f"{m:.2f} s"


def bench_wan_cycle(build, work, log, gateways=100, rtt_ms=50, parallels=(8, 32), runs=1,
                    proxy_dir=None):
    """Measure (see the module's text) in the scratch directory work (made
    here, left for the caller to remove) with build's msgw-agent and
    proxy_dir's msgw-delayproxy (default: build's); returns the results for
    report_wan_cycle."""
    agent = os.path.join(build, "msgw-agent")
    os.makedirs(work)
    env = dict(os.environ, HOME=os.path.join(work, "home"), LC_ALL="C", TZ="UTC")
    env.pop("MSGW_BACKUP_CONF", None)
    os.makedirs(env["HOME"])
    sshd = proxy = None
    try:
        data = os.path.join(work, "gw")
        subprocess.run([sys.executable, GEN, data, "--scale", "1"], check=True,
                       stdout=subprocess.DEVNULL)
        sshd = Sshd(work)
        proxy = Proxy(proxy_dir or build, sshd.port, rtt_ms)
        with open(sshd.known, "w") as f:
            f.write(f"[127.0.0.1]:{proxy.port} {sshd.host_pub}\n")
        load0 = os.getloadavg()
        seq = 0

        def fresh(n, parallel):
            nonlocal seq
            seq += 1
            repo = os.path.join(work, f"repo{seq}.git")
            conf = os.path.join(work, f"c{seq}.conf")
            write_conf(conf, repo, n, proxy.port, sshd, data, parallel)
            subprocess.run([agent, "-c", conf, "init"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            return conf

        one = {"first": [], "nochange": []}
        cyc = {p: {"first": [], "nochange": [], "pss": [], "rss": [], "failed": [],
                   "cpu": {"first": [], "nochange": []}, "errors": collections.Counter()}
               for p in parallels}

        def server_cpu():
            time.sleep(0.3)  # the sshd reaps its last sessions
            return cpu_s(sshd.proc.pid, True), cpu_s(proxy.proc.pid)

        for r in range(runs):
            log(f"wan cycle, run {r + 1} of {runs}: one gateway")
            conf = fresh(1, 1)
            for kind in ("first", "nochange"):
                wall, _, _, failed, _ = run_measured(
                    [agent, "-c", conf, "snapshot", "--json"], env)
                if failed:
                    raise RuntimeError(f"one gateway failed: {failed}")
                one[kind].append(wall)
                log(f"  {kind}: {wall:.2f} s")
            for p in parallels:
                log(f"wan cycle, run {r + 1} of {runs}: {gateways} gateways, parallel {p}")
                conf = fresh(gateways, p)
                for kind in ("first", "nochange"):
                    s0, x0 = server_cpu()
                    wall, pss, rss, failed, ours = run_measured(
                        [agent, "-c", conf, "snapshot", "--json"], env)
                    s1, x1 = server_cpu()
                    c = cyc[p]
                    c["cpu"][kind].append((ours, s1 - s0, x1 - x0))
                    c[kind].append(wall)
                    c["pss"].append(pss)
                    c["rss"].append(rss)
                    c["failed"].append(len(failed))
                    for x in failed:
                        c["errors"][re.sub(r"'[^']*'", "'...'", x["error"])] += 1
                    log(f"  {kind}: {wall:.2f} s, peak PSS sum {pss / 1024:.1f} MB, "
                        f"{len(failed)} failed, CPU: run {ours:.2f} s, sshd {s1 - s0:.2f} s, "
                        f"proxy {x1 - x0:.2f} s")
        return {"gateways": gateways, "rtt_ms": rtt_ms, "runs": runs, "one": one, "cycle": cyc,
                "load": (load0[0], os.getloadavg()[0]), "cores": os.cpu_count()}
    finally:
        if proxy:
            proxy.stop()
        if sshd:
            sshd.stop()


def cpu_median(xs):
    """The (run, sshd, proxy) CPU seconds of the median run of xs."""
    if not xs:
        return ""
    ours, sshd, proxy = sorted(xs, key=lambda x: x[1])[len(xs) // 2]
    return f"{ours:.1f} s, {sshd:.1f} s, {proxy:.1f} s"


def report_wan_cycle(res):
    """The markdown lines of res, and its targets as (name, measured, met)."""
    n, rtt, one, cyc = res["gateways"], res["rtt_ms"], res["one"], res["cycle"]
    lines = [f"## Many gateways per cycle over SSH at {rtt} ms round trip", ""]
    lines.append(f"`scripts/bench.d/wan_cycle.py`: {n} gateway entries, all reading one scale-1 "
                 f"data directory (35 configuration files beside 20 mailbox stores) through an "
                 f"sshd of its own behind `msgw-delayproxy` ({rtt // 2} ms each way); "
                 f"`msgw-agent snapshot` of all of them (one cycle, as `run` does each "
                 f"interval) against `msgw-agent snapshot` of one; median (min–max) of "
                 f"{res['runs']} run{'s' if res['runs'] > 1 else ''}; load average "
                 f"{res['load'][0]:.2f} at the start, {res['load'][1]:.2f} at the end. Peak "
                 f"memory: the most the run and its workers held together (the sum of their "
                 f"PSS, sampled every 20 ms: shared pages divided among the processes sharing "
                 f"them), and the largest single process's peak RSS. CPU: the median cycle's "
                 f"CPU seconds for the run and its workers, for the sshd's sessions and for "
                 f"the proxy, all on this machine's {res.get('cores') or '?'} cores (in the "
                 f"field each gateway is its own server); the sshd serves SFTP in process "
                 f"(internal-sftp), no login shell per session. msgw-agent's default "
                 f"`parallel` is 32.")
    lines += ["", "| | first snapshot | no-change snapshot | cycle / one gateway (first, "
              "no-change) | peak PSS sum | largest process | CPU no-change: run, sshd, proxy |",
              "|---|---:|---:|---:|---:|---:|---:|",
              f"| one gateway | {fmt(one['first'])} | {fmt(one['nochange'])} | 1x | | | |"]
    targets = []
    for p, c in cyc.items():
        rf = statistics.median(c["first"]) / statistics.median(one["first"])
        rn = statistics.median(c["nochange"]) / statistics.median(one["nochange"])
        lines.append(f"| {n} gateways, parallel {p} | {fmt(c['first'])} | {fmt(c['nochange'])} "
                     f"| {rf:.1f}x, {rn:.1f}x | {max(c['pss']) / 1024:.0f} MB | "
                     f"{max(c['rss']) / 1024:.0f} MB | {cpu_median(c['cpu']['nochange'])} |")
        if any(c["failed"]):
            lines.append(f"| | {max(c['failed'])} of {n} gateways failed in a cycle: "
                         + "; ".join(f"{k} ({v})" for k, v in c["errors"].items()) + " | | | | | |")
        targets.append((f"{n} gateways over SSH at {rtt} ms, scale 1 each, parallel {p}: one "
                        f"cycle within 5x of one gateway's snapshot (no-change)",
                        f"{rn:.1f}x (first snapshots: {rf:.1f}x); peak {max(c['pss']) / 1024:.0f} "
                        f"MB PSS in all; {max(c['failed'])} gateways failed",
                        rn <= 5 and not any(c["failed"])))
    lines.append("")
    return lines, targets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="directory of msgw-agent and msgw-delayproxy")
    ap.add_argument("--sim", help="directory of msgw-delayproxy when not --build's")
    ap.add_argument("--gateways", type=int, default=100)
    ap.add_argument("--rtt-ms", type=int, default=50)
    ap.add_argument("--parallel", default="8,32")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--work")
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = os.path.realpath(a.work or os.path.join(os.environ.get("TMPDIR", "/var/tmp"),
                                                   f"msgw-bench-wancycle.{os.getpid()}"))
    t_start = time.time()

    def log(msg):
        print(f"[{time.time() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    try:
        res = bench_wan_cycle(os.path.realpath(a.build), work, log, a.gateways, a.rtt_ms,
                              [int(x) for x in a.parallel.split(",")], a.runs,
                              a.sim and os.path.realpath(a.sim))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    lines, targets = report_wan_cycle(res)
    for name, meas, met in targets:
        lines.append(f"- target: {name}: {meas}: {'met' if met else '**not met**'}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    log(f"done in {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
