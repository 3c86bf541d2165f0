#!/usr/bin/env python3
"""bench.py: msgw-backup against the tools an admin would pick instead.

Run through scripts/bench, which installs the peers and builds first.

    bench.py --build DIR --sim DIR [--smoke] [--scales 1,100] [--runs N]
             [--tools msgw,msgwenc,git,tar,restic,borg] [--out FILE] [--work DIR] [--keep]

For each scale: a generated gateway data directory (scripts/bench.d/gen.py),
then cycles in which every tool, in turn and in a rotating order, takes a
first snapshot into a new repository, several snapshots with no change, one
after a single changed file, and a full restore into an empty directory
(checked file by file).  The first cycle is a warm-up and is not counted.
Times are wall-clock, peak memory is the largest resident set of the
command's process tree (wait4's ru_maxrss, as GNU time -v reports it).
Then: linear growth (scales 0, 10, 100; ours), independence from the
mailbox store (scale 100 with and without it; ours), and msgw-restore
apply on a simulated gateway.  Markdown on stdout and in --out.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
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
CHANGED_FILE = "Config/Smtp.json"  # present at every scale
RESTIC_PASSWORD = "msgw-bench"
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

# --- running and measuring ------------------------------------------------


class Failed(Exception):
    pass


class Sample:
    def __init__(self, wall, rss_kb, cpu):
        self.wall = wall
        self.rss_kb = rss_kb
        self.cpu = cpu  # user + system seconds of the process tree


class Env:
    def __init__(self, work, build, sim):
        self.work = work
        self.rss_file = os.path.join(work, "rss")
        self.env = dict(os.environ)
        home = os.path.join(work, "home")
        os.makedirs(home, exist_ok=True)
        self.env.update({
            "HOME": home,
            "LC_ALL": "C",
            "TZ": "UTC",
            "PATH": f"{build}:{sim}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.test",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.test",
            "RESTIC_PASSWORD": RESTIC_PASSWORD,
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        })
        for k in ("MSGW_BACKUP_CONF", "GIT_DIR", "GIT_WORK_TREE", "RESTIC_REPOSITORY",
                  "BORG_REPO", "MSGW_FAULT"):
            self.env.pop(k, None)

    def run(self, script, cwd=None, env=None, capture=False):
        """Run a shell script; its wall time and its process tree's peak RSS."""
        e = dict(self.env)
        if env:
            e.update(env)
        # A child forked from this (large) Python process starts with its
        # resident set as its high-water mark, so the peak RSS comes from
        # GNU time, whose own child is forked from a small process.
        argv = ["/bin/sh", "-c", script]
        if GNU_TIME:
            argv = [GNU_TIME, "-q", "-f", "%M", "-o", self.rss_file] + argv
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, cwd=cwd, env=e,
                                 stdout=out if capture else subprocess.DEVNULL, stderr=err,
                                 stdin=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            if p.returncode != 0:
                err.seek(0)
                raise Failed(f"exit {p.returncode}: {script}\n{err.read().decode(errors='replace')}")
            rss = 0
            if GNU_TIME:
                with open(self.rss_file) as f:
                    rss = int(f.read().split()[-1])
            s = Sample(wall, rss, ru.ru_utime + ru.ru_stime)
            if capture:
                out.seek(0)
                s.out = out.read().decode(errors="replace")
        return s


def q(s):
    return "'" + s.replace("'", "'\\''") + "'"


def tree_size(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_size
            except FileNotFoundError:
                pass
    return total


def config_digest(root):
    """{relative path: sha256} of the regular files a snapshot must hold."""
    out = {}
    for d, dirs, files in os.walk(root):
        rel_d = os.path.relpath(d, root)
        dirs[:] = [x for x in dirs if not re.fullmatch(r"mbx-[0-9a-f]{32}", x)
                   and not (rel_d == "." and x == "Logs") and x != ".git"]
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb") as fh:
                out[os.path.normpath(os.path.join(rel_d, f))] = hashlib.sha256(fh.read()).hexdigest()
    return out


def warm(root):
    """Read every configuration file once, outside the timing, so that each
    snapshot starts on a warm page cache as the method says.  BorgBackup
    drops the files it has read from the page cache (posix_fadvise
    DONTNEED); without this the tool after it in a cycle read them from
    disk, and with the order only rotated that was always the same tool."""
    for d, dirs, files in os.walk(root):
        rel_d = os.path.relpath(d, root)
        dirs[:] = [x for x in dirs if not re.fullmatch(r"mbx-[0-9a-f]{32}", x)
                   and not (rel_d == "." and x == "Logs")]
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb") as fh:
                while fh.read(1 << 20):
                    pass


def settle():
    """Write every dirty page out before a timed command, outside its
    timing: what the tool before left unwritten (a repository, a restore:
    only msgw-backup syncs its own) is otherwise written back during the
    next tool's timing, by the kernel's flusher or, for msgw-backup's
    durable restore, by its syncfs, which flushes the whole file system."""
    os.sync()


def snapshot(t):
    warm(t.data)
    settle()
    return t.snapshot()


# --- the tools ------------------------------------------------------------


class Tool:
    key = label = ""

    def __init__(self, env, data):
        self.env = env
        self.data = data

    def setup(self, base):
        self.base = base
        os.makedirs(base)

    def snapshot(self):
        raise NotImplementedError

    def restore(self, dest):
        raise NotImplementedError

    def restored_root(self, dest):
        return dest

    def repo(self):
        raise NotImplementedError


class Msgw(Tool):
    key, label = "msgw", "msgw-backup"

    def setup(self, base):
        super().setup(base)
        self.conf = os.path.join(base, "msgw.conf")
        with open(self.conf, "w") as f:
            f.write(f'repository = "repo.git"\nstate-dir = "state"\n'
                    f'gateway "gw" {{\n  location = "{self.data}"\n  exclude = {{"Logs/**"}}\n}}\n')
        self.env.run(f"msgw-agent -q -c {q(self.conf)} init")

    def snapshot(self):
        return self.env.run(f"msgw-agent -q -c {q(self.conf)} snapshot")

    def restore(self, dest):
        return self.env.run(f"msgw-restore -q -c {q(self.conf)} extract gw {q(dest)}")

    def repo(self):
        return os.path.join(self.base, "repo.git")


COMMIT = "git add -A && { git diff --cached --quiet || git commit -q -m snapshot; }"


class PlainGit(Tool):
    """etckeeper's way: the data directory is the work tree of a git
    repository (kept outside it here, so no tool sees the others' files);
    mailbox stores and Logs/ are ignored through info/exclude."""
    key, label = "git", "plain git"

    def setup(self, base):
        super().setup(base)
        self.gitdir = os.path.join(base, "git")
        self.env.run(f"git init -q --bare {q(self.gitdir)} && "
                     f"git --git-dir={q(self.gitdir)} config core.bare false && "
                     f"printf 'mbx-*/\\n/Logs/\\n' >{q(self.gitdir)}/info/exclude")
        self.genv = {"GIT_DIR": self.gitdir, "GIT_WORK_TREE": self.data}

    def snapshot(self):
        return self.env.run(COMMIT, cwd=self.data, env=self.genv)

    def restore(self, dest):
        return self.env.run(f"git --git-dir={q(self.gitdir)} archive HEAD | tar -xf - -C {q(dest)}")

    def repo(self):
        return self.gitdir


class TarGit(Tool):
    """tar --zstd of the configuration, committed into a git work tree."""
    key, label = "tar", "tar --zstd + git"

    def setup(self, base):
        super().setup(base)
        self.tree = os.path.join(base, "tree")
        self.env.run(f"git init -q {q(self.tree)}")

    def snapshot(self):
        return self.env.run(
            f"tar --zstd -cf config.tar.zst -C {q(self.data)} --exclude='./Logs' "
            f"--exclude='mbx-*' . && {COMMIT}", cwd=self.tree)

    def restore(self, dest):
        return self.env.run(f"git cat-file blob HEAD:config.tar.zst | tar --zstd -xf - -C {q(dest)}",
                            cwd=self.tree)

    def repo(self):
        return os.path.join(self.tree, ".git")


class Restic(Tool):
    key, label = "restic", "restic"

    def setup(self, base):
        super().setup(base)
        self.r = os.path.join(base, "repo")
        self.renv = {"RESTIC_CACHE_DIR": os.path.join(base, "cache")}
        self.env.run(f"restic -q -r {q(self.r)} init", env=self.renv)

    def snapshot(self):
        return self.env.run(f"restic -q -r {q(self.r)} backup --exclude 'mbx-*' "
                            f"--exclude {q(self.data + '/Logs')} {q(self.data)}", env=self.renv)

    def restore(self, dest):
        return self.env.run(f"restic -q -r {q(self.r)} restore latest --target {q(dest)}",
                            env=self.renv)

    def restored_root(self, dest):
        return dest + self.data

    def repo(self):
        return self.r


class Borg(Tool):
    key, label = "borg", "BorgBackup"

    def setup(self, base):
        super().setup(base)
        self.r = os.path.join(base, "repo")
        self.benv = {"BORG_BASE_DIR": os.path.join(base, "borgbase")}
        self.n = 0
        self.env.run(f"borg init -e none {q(self.r)}", env=self.benv)

    def snapshot(self):
        self.n += 1
        return self.env.run(f"borg create --compression zstd --exclude 'sh:**/mbx-*' "
                            f"--exclude 'sh:Logs' {q(self.r)}::s{self.n} .",
                            cwd=self.data, env=self.benv)

    def restore(self, dest):
        return self.env.run(f"borg extract {q(self.r)}::s{self.n}", cwd=dest, env=self.benv)

    def repo(self):
        return self.r


sys.path.insert(0, HERE)
import encrypted  # noqa: E402  (scripts/bench.d/encrypted.py)

TOOLS = {c.key: c for c in (Msgw, encrypted.tool_class(Msgw, q), PlainGit, TarGit, Restic, Borg)}
OPS = [("first", "first snapshot"), ("nochange", "no-change snapshot"),
       ("changed", "one changed file"), ("restore", "full restore")]


# --- the data -------------------------------------------------------------


def generate(env, root, scale, store=True):
    args = [sys.executable, GEN, root, "--scale", str(scale), "--json"]
    if not store:
        args.append("--no-store")
    return json.loads(subprocess.run(args, check=True, stdout=subprocess.PIPE).stdout)


class Change:
    """Edit one configuration file the way an admin would (same length,
    new mtime), and put it back byte for byte with its old mtime."""

    def __init__(self, data):
        self.path = os.path.join(data, CHANGED_FILE)
        with open(self.path, "rb") as f:
            self.orig = f.read()
        self.mtime = os.stat(self.path).st_mtime_ns
        self.n = 0

    def apply(self):
        self.n += 1
        new = self.orig.replace(b'"revision": 1000000', b'"revision": %d' % (1000000 + self.n), 1)
        assert new != self.orig
        with open(self.path, "wb") as f:
            f.write(new)

    def revert(self):
        with open(self.path, "wb") as f:
            f.write(self.orig)
        os.utime(self.path, ns=(self.mtime, self.mtime))


# --- the cycles -----------------------------------------------------------


def cycle(env, data, keys, idx, reps, res, verify, log):
    # Nothing is removed until the whole run is done: on ext4 without a
    # journal the inode allocator skips inodes freed in the last minutes
    # (reading each one's inode to see when), which made file creation (a
    # restore, git's loose objects) after a removal several times slower
    # for whichever tool came next, for five minutes.
    base = os.path.join(env.work, "cycles", os.path.basename(data), str(idx))
    os.makedirs(base)
    tools = [TOOLS[k](env, data) for k in keys]
    for t in tools:
        t.setup(os.path.join(base, t.key))
    # Rotated, and reversed every other cycle, so that no tool always runs
    # right after the same other tool (what one leaves behind, dirty pages
    # or a cold cache, would otherwise always land on the same next one).
    order = tools[idx % len(tools):] + tools[:idx % len(tools)]
    if idx % 2:
        order.reverse()
    rec = {t.key: {"first": [], "nochange": [], "changed": [], "restore": []} for t in tools}
    for t in order:
        rec[t.key]["first"].append(snapshot(t))
    for _ in range(reps):
        for t in order:
            rec[t.key]["nochange"].append(snapshot(t))
    change = Change(data)
    change.apply()
    try:
        for t in order:
            rec[t.key]["changed"].append(snapshot(t))
        want = config_digest(data) if verify else None
        for t in order:
            dest = os.path.join(base, "restore-" + t.key)
            os.makedirs(dest)
            settle()
            rec[t.key]["restore"].append(t.restore(dest))
            if verify:
                got = config_digest(t.restored_root(dest))
                if got != want:
                    missing = sorted(set(want) - set(got))[:5]
                    extra = sorted(set(got) - set(want))[:5]
                    differ = sorted(k for k in set(got) & set(want) if got[k] != want[k])[:5]
                    raise Failed(f"{t.label}: restore differs from the data: missing {missing}, "
                                 f"extra {extra}, different {differ}")
    finally:
        change.revert()
    sizes = {t.key: tree_size(t.repo()) for t in tools}
    if res is not None:
        for k in rec:
            for op in rec[k]:
                res[k][op] += rec[k][op]
            res[k]["size"].append(sizes[k])
    log(f"  cycle {idx}{' (warm-up)' if res is None else ''}: " + ", ".join(
        f"{t.key} {rec[t.key]['first'][0].wall:.2f}/{statistics.median(s.wall for s in rec[t.key]['nochange']) * 1000:.0f}ms"
        f"/{rec[t.key]['changed'][0].wall:.2f}/{rec[t.key]['restore'][0].wall:.2f}" for t in tools))


def bench_scale(env, data, keys, runs, reps, log):
    res = {k: {"first": [], "nochange": [], "changed": [], "restore": [], "size": []} for k in keys}
    for i in range(runs + 1):
        cycle(env, data, keys, i, reps, res if i > 0 else None, True, log)
    return res


# --- linear growth and the mailbox store ----------------------------------


def msgw_series(env, datas, firsts, reps, log, label):
    """First and no-change snapshots of our tool on several data
    directories, interleaved; {name: {"first": [...], "nochange": [...]}}."""
    out = {n: {"first": [], "nochange": []} for n in datas}
    for i in range(firsts + 1):
        base = os.path.join(env.work, "series", label, str(i))
        os.makedirs(base)
        tools = {n: Msgw(env, d) for n, d in datas.items()}
        for n, t in tools.items():
            t.setup(os.path.join(base, n))
        for n, t in tools.items():
            s = snapshot(t)
            if i:
                out[n]["first"].append(s)
        for _ in range(reps):
            for n, t in tools.items():
                s = snapshot(t)
                if i:
                    out[n]["nochange"].append(s)
    log(f"  {label}: " + ", ".join(
        f"{n} {med(v['first']):.3f}s/{med(v['nochange']) * 1000:.1f}ms" for n, v in out.items()))
    return out


def move_stores(src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        if re.fullmatch(r"mbx-[0-9a-f]{32}", name):
            os.rename(os.path.join(src, name), os.path.join(dst, name))


# --- apply on a simulated gateway -----------------------------------------


def free_port(addr):
    s = socket.socket()
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


APPLY_RE = re.compile(r"service down ([0-9.]+) s \(stop ([0-9.]+) s, swap ([0-9.]+) s, "
                      r"start and health ([0-9.]+) s\)")


def bench_apply(env, s1data, runs, log):
    base = os.path.join(env.work, "apply")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    gw = os.path.join(base, "gw")
    repo = os.path.join(base, "repo.git")
    state = os.path.join(base, "state")
    expect = os.path.join(base, "expect")
    checklog = os.path.join(base, "stop-check.log")
    addr = "127.0.0.2"
    port = free_port(addr)
    env.run(f"msgw-sim init {q(gw)} --domain bench.example --mailboxes 20 --seed bench "
            f"--console-port {port}")
    for d in ("Config", "Domains"):  # the generated scale-1 configuration beside the sim's own
        shutil.copytree(os.path.join(s1data, d), os.path.join(gw, d), symlinks=True)
    conf = os.path.join(base, "msgw.conf")
    stop_check = os.path.join(HERE, "stop-check.sh")
    with open(conf, "w") as f:
        f.write(f'repository = "{repo}"\nstate-dir = "{state}"\n'
                f'gateway "gw" {{\n  location = "{gw}"\n  exclude = {{"Logs/**"}}\n'
                f'  preserve = {{"Certificates/**"}}\n'
                f'  stop = "{stop_check} {checklog} {gw} {repo} {state} {expect} msgw-sim stop {gw}"\n'
                f'  start = "msgw-sim start {gw} --listen {addr}"\n'
                f'  health = "tcp:{addr}:{port}"\n  timeout = 30\n}}\n')
    c = f"-c {q(conf)}"
    env.run(f"msgw-sim start {q(gw)} --listen {addr}")
    samples, checks, nchanged = [], [], 0
    try:
        env.run(f"msgw-agent -q {c} init && msgw-agent -q {c} snapshot --tag A")
        # B: every JSON file of the configuration changed, and a port
        for d, _, files in os.walk(gw):
            if re.search(r"/mbx-[0-9a-f]{32}(/|$)", d) or "/Logs" in d:
                continue
            for fn in files:
                p = os.path.join(d, fn)
                if fn.endswith(".json") and fn != "Gateway.json":
                    with open(p, "rb") as fh:
                        b = fh.read()
                    nb = b.replace(b'"revision": 1000000', b'"revision": 2000000', 1)
                    if nb != b:
                        with open(p, "wb") as fh:
                            fh.write(nb)
                        nchanged += 1
        env.run(f"msgw-sim set {q(gw)} ports.smtp 2525")
        nchanged += 1
        env.run(f"msgw-agent -q {c} snapshot --tag B")
        files = int(env.run(f"git --git-dir={q(repo)} show B:meta", capture=True)
                    .out.split("files: ")[1].split()[0])
        for i in range(runs + 1):
            for tag in ("A", "B"):
                with open(expect, "w") as fh:
                    fh.write(tag)
                s = env.run(f"msgw-restore {c} apply {tag} --to gw --yes", capture=True)
                m = APPLY_RE.search(s.out)
                if not m:
                    raise Failed(f"apply printed no downtime line:\n{s.out}")
                chk = check_stop_log(env, checklog, repo, tag, nchanged)
                if i:
                    samples.append([float(x) for x in m.groups()])
                    checks.append(chk)
    finally:
        try:
            env.run(f"msgw-sim stop {q(gw)}")
        except Failed:
            pass
    log(f"  apply: {len(samples)} runs, swap median {med([x[2] for x in samples]) * 1000:.0f} ms")
    return {"samples": samples, "checks": checks, "changed": nchanged, "files": files}


def check_stop_log(env, logf, repo, tag, nchanged):
    """What stop-check.sh saw when the service was asked to stop."""
    def read(ext):
        with open(logf + ext) as f:
            return f.read()
    manifest = env.run(f"git --git-dir={q(repo)} show {tag}:manifest", capture=True).out
    want = {}
    for line in manifest.splitlines()[1:]:
        parts = line.split(" ", 6)
        if parts[0] == "f":
            want[parts[6]] = parts[5]
    staged = verified = 0
    for line in read(".staged").splitlines():
        sha, path = line.split(None, 1)
        path = path[2:] if path.startswith("./") else path
        path = path[: -len(".msgw-new")]
        staged += 1
        verified += want.get(path) == sha
    kind = re.search(r"^kind: (\S+)", read(".meta"), re.M)
    pre = bool(kind and kind.group(1) == "pre-restore")
    journal = read(".journal").strip() == "yes"
    return {"staged": staged, "verified": verified, "expected": nchanged, "pre_restore": pre,
            "journal": journal,
            "ok": staged == nchanged and verified == staged and pre and journal}


# --- reporting ------------------------------------------------------------


def med(xs):
    xs = [x.wall if isinstance(x, Sample) else x for x in xs]
    return statistics.median(xs) if xs else float("nan")


def medc(xs):
    return statistics.median(x.cpu for x in xs) if xs else float("nan")


def fmt_t(sec):
    if sec != sec:
        return "n/a"
    if sec < 1:
        return f"{sig3(sec * 1000)} ms"
    return f"{sec:.2f} s"


def fmt_range_unit(samples):
    # min-max in the median's unit
    w = [s.wall for s in samples]
    if not w:
        return "n/a"
    m = statistics.median(w)
    if len(w) == 1:
        return fmt_t(m)
    if m < 1:
        return f"{sig3(m * 1000)} ms ({sig3(min(w) * 1000)}–{sig3(max(w) * 1000)})"
    return f"{m:.2f} s ({min(w):.2f}–{max(w):.2f})"


def sig3(x):
    """About three significant digits, never an exponent."""
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def fmt_mb(b):
    return f"{b / 1e6:.1f} MB" if b >= 1e5 else f"{b / 1e3:.0f} kB"


def peak(samples):
    return max(s.rss_kb for s in samples) if samples else 0


def mb(kb):
    return f"{kb / 1024:.1f} MB" if kb else "n/a"


def rss_ratio(a, b):
    return ratio_str(a / b) if a and b else "n/a"


def ratio_str(r):
    if r != r:
        return "n/a"
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


class Report:
    def __init__(self):
        self.lines = []
        self.targets = []  # (target, measured, met or None)

    def add(self, s=""):
        self.lines.append(s)

    def target(self, name, measured, met):
        self.targets.append((name, measured, met))


def scale_tables(rep, scale, info, res, keys):
    labels = [TOOLS[k].label for k in keys]
    rep.add(f"### Scale {scale}: {info['config_files']:,} configuration files, "
            f"{fmt_mb(info['config_bytes'])}, beside {info['stores']} mailbox stores of "
            f"{info['store_files']:,} files, {fmt_mb(info['store_bytes'])}")
    rep.add()
    rep.add("| | " + " | ".join(labels) + " |")
    rep.add("|---|" + "---:|" * len(keys))
    for op, name in OPS:
        rep.add(f"| {name} | " + " | ".join(fmt_range_unit(res[k][op]) for k in keys) + " |")
    rep.add("| repository size | " + " | ".join(fmt_mb(statistics.median(res[k]['size'])) for k in keys) + " |")
    rep.add("| peak RSS, snapshots | " + " | ".join(
        mb(peak(res[k]['first'] + res[k]['nochange'] + res[k]['changed'])) for k in keys) + " |")
    rep.add("| peak RSS, restore | " + " | ".join(mb(peak(res[k]['restore'])) for k in keys) + " |")
    rep.add()
    peers = [k for k in keys if k != "msgw"]
    if "msgw" in keys and peers:
        rep.add(f"msgw-backup's figures as a ratio to each peer's at scale {scale} "
                "(time: ours ÷ theirs, below 1 is faster; memory and size likewise):")
        rep.add()
        rep.add("| | " + " | ".join(TOOLS[k].label for k in peers) + " |")
        rep.add("|---|" + "---:|" * len(peers))
        for op, name in OPS:
            rep.add(f"| {name} | " + " | ".join(ratio_str(med(res['msgw'][op]) / med(res[k][op])) for k in peers) + " |")
        rep.add("| repository size | " + " | ".join(ratio_str(
            statistics.median(res['msgw']['size']) / statistics.median(res[k]['size'])) for k in peers) + " |")
        rep.add("| peak RSS, snapshots | " + " | ".join(rss_ratio(
            peak(res['msgw']['first'] + res['msgw']['nochange'] + res['msgw']['changed']),
            peak(res[k]['first'] + res[k]['nochange'] + res[k]['changed'])) for k in peers) + " |")
        rep.add("| peak RSS, restore | " + " | ".join(rss_ratio(
            peak(res['msgw']['restore']), peak(res[k]['restore'])) for k in peers) + " |")
        rep.add()


def scale_targets(rep, scale, res, keys):
    m = res.get("msgw")
    if not m:
        return

    def r(op, k):
        return med(m[op]) / med(res[k][op])

    def cpu(op, k, faster=False):
        x = medc(m[op]) / medc(res[k][op])
        return f"; CPU time {ratio_str(1 / x) + ' faster' if faster else ratio_str(x)}"

    # reported without a target: what users feel is a wrong "unchanged" or a
    # slow restore, not 15 ms against plain git or tar
    if "git" in keys:
        x = r("nochange", "git")
        rep.target(f"no-change snapshot vs plain git's no-change commit (scale {scale})",
                   f"{ratio_str(x)} ({fmt_t(med(m['nochange']))} vs {fmt_t(med(res['git']['nochange']))})"
                   + cpu("nochange", "git"), None)
    for k in ("restic", "borg"):
        if k in keys:
            x = med(res[k]["nochange"]) / med(m["nochange"])
            rep.target(f"scheduled no-change snapshot ≥ 20× faster than {TOOLS[k].label} (scale {scale})",
                       f"{ratio_str(x)} faster ({fmt_t(med(m['nochange']))} vs {fmt_t(med(res[k]['nochange']))})"
                       + cpu("nochange", k, True), x >= 20)
    if scale < 100:
        return
    if "tar" in keys:
        for op, what in (("first", "first snapshot"), ("changed", "one-changed-file snapshot"),
                         ("restore", "full restore (extract)")):
            x = r(op, "tar")
            rep.target(f"{what} vs tar --zstd + git (scale {scale})",
                       f"{ratio_str(x)} ({fmt_t(med(m[op]))} vs {fmt_t(med(res['tar'][op]))})"
                       + cpu(op, "tar"), None)
    for k in ("restic", "borg"):
        if k in keys:
            for op, what, lim in (("first", "first snapshot", 3), ("restore", "full restore (extract)", 2)):
                x = med(res[k][op]) / med(m[op])
                rep.target(f"{what} ≥ {lim}× faster than {TOOLS[k].label} (scale {scale})",
                           f"{ratio_str(x)} faster ({fmt_t(med(m[op]))} vs {fmt_t(med(res[k][op]))})"
                           + cpu(op, k, True), x >= lim)
    for k in ("restic", "borg"):
        if k in keys and GNU_TIME:
            ours_s = peak(m["first"] + m["nochange"] + m["changed"])
            theirs_s = peak(res[k]["first"] + res[k]["nochange"] + res[k]["changed"])
            ours_r, theirs_r = peak(m["restore"]), peak(res[k]["restore"])
            rep.target(f"peak RSS ≤ ⅓ of {TOOLS[k].label}'s, snapshot and restore (scale {scale})",
                       f"snapshot {ours_s / 1024:.1f} vs {theirs_s / 1024:.1f} MB ({ratio_str(ours_s / theirs_s)}), "
                       f"restore {ours_r / 1024:.1f} vs {theirs_r / 1024:.1f} MB ({ratio_str(ours_r / theirs_r)})",
                       ours_s * 3 <= theirs_s and ours_r * 3 <= theirs_r)


def versions(env, keys):
    def out(cmd):
        try:
            return env.run(cmd, capture=True).out.strip()
        except Failed:
            return "?"
    v = {"msgw": out("msgw-agent --version").replace("\n", "; ")}
    if "git" in keys or "tar" in keys:
        v["git"] = out("git --version")
    if "tar" in keys:
        v["tar"] = out("tar --version | head -n1") + ", " + out("zstd --version")
    if "restic" in keys:
        v["restic"] = out("restic version")
    if "borg" in keys:
        v["borg"] = out("borg --version")
    return v


def machine(work):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    try:
        out = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", work],
                             stdout=subprocess.PIPE, text=True).stdout.split()
        fs = out[0] if out else "?"
        # ext4 without a journal (no jbd2 entry for its device) slows file
        # creation after removals (see cycle())
        if fs == "ext4" and len(out) > 1 and os.path.isdir("/proc/fs/jbd2"):
            dev = os.path.basename(out[1])
            if not any(n.startswith(dev + "-") for n in os.listdir("/proc/fs/jbd2")):
                fs += " without a journal"
    except OSError:
        fs = "?"
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM; Linux {platform.release()}; "
            f"work directory on {fs}")


# --- main -----------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="directory of msgw-agent and msgw-restore")
    ap.add_argument("--sim", required=True, help="directory of msgw-sim")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--scales")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--reps", type=int, help="no-change snapshots per cycle")
    ap.add_argument("--tools")
    ap.add_argument("--out")
    ap.add_argument("--work")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    smoke = a.smoke
    scales = [int(x) for x in (a.scales or ("1" if smoke else "1,100")).split(",")]
    runs = a.runs or (1 if smoke else 5)
    reps = a.reps or (1 if smoke else 3)
    keys = (a.tools or ("msgw,git,tar" if smoke else "msgw,msgwenc,git,tar,restic,borg")).split(",")
    for k in keys:
        if k not in TOOLS:
            sys.exit(f"bench: unknown tool '{k}'")
    work = a.work or os.path.join(os.environ.get("TMPDIR", "/var/tmp"), f"msgw-bench.{os.getpid()}")
    if os.path.exists(work) and os.listdir(work):
        sys.exit(f"bench: '{work}' exists and is not empty")
    os.makedirs(work, exist_ok=True)
    work = os.path.realpath(work)
    env = Env(work, os.path.realpath(a.build), os.path.realpath(a.sim))
    t_start = time.time()

    def log(msg):
        print(f"[{time.time() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    load0 = os.getloadavg()
    rep = Report()
    try:
        datas, infos, results = {}, {}, {}
        for s in scales:
            datas[s] = os.path.join(work, f"data-s{s}")
            infos[s] = generate(env, datas[s], s)
            log(f"generated scale {s}: {infos[s]['config_files']} config files, "
                f"{infos[s]['store_files']} store files")
        lin = None
        if not smoke and 100 in scales:
            # without mailbox stores: the linear series varies the
            # configuration files alone (scale 100's stores are moved aside
            # for it); the store is measured on its own
            for s, store in ((0, False), (10, False)):
                datas[s] = os.path.join(work, f"data-s{s}")
                infos[s] = generate(env, datas[s], s, store)
            log("generated scales 0 and 10")
        time.sleep(2.5)  # let the generated files' ctimes age past the stat cache's 2 s
        for s in scales:
            log(f"scale {s}: {runs} runs after a warm-up, tools {', '.join(keys)}")
            results[s] = bench_scale(env, datas[s], keys, runs, reps, log)
        if not smoke and 100 in scales:
            log("linear growth: our first and no-change snapshots at scales 0, 10, 100")
            aside = os.path.join(work, "stores-aside")
            move_stores(datas[100], aside)
            try:
                lin = msgw_series(env, {f"s{s}": datas[s] for s in (0, 10, 100)}, runs,
                                  3 * reps, log, "linear")
            finally:
                move_stores(aside, datas[100])
            log("mailbox store: scale 100 with and without its store")
            with_store = msgw_series(env, {"with": datas[100]}, runs, reps, log, "with store")
            aside = os.path.join(work, "stores-aside")
            move_stores(datas[100], aside)
            try:
                without = msgw_series(env, {"without": datas[100]}, runs, reps, log, "without store")
            finally:
                move_stores(aside, datas[100])
        apply_res = None
        if 1 in scales:
            log("apply on a simulated gateway")
            apply_res = bench_apply(env, datas[1], 1 if smoke else runs, log)
        load1 = os.getloadavg()
        elapsed = time.time() - t_start

        # --- the report ---
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        rep.add("# msgw-backup benchmark" + (" (smoke run: not a measurement)" if smoke else ""))
        rep.add()
        rep.add(f"Made by `scripts/bench{' --smoke' if smoke else ''}` on {now} in {elapsed / 60:.1f} minutes.")
        rep.add()
        rep.add(f"- Machine: {machine(work)}; load average {load0[0]:.2f} at the start, "
                f"{load1[0]:.2f} at the end.")
        v = versions(env, keys)
        rep.add(f"- msgw-backup: {v['msgw']}")
        for k in keys:
            if k in v and k != "msgw":
                rep.add(f"- {TOOLS[k].label}: {v[k]}")
        rep.add(f"- Method: {runs} run{'s' if runs > 1 else ''} after a warm-up run; each run "
                f"is a cycle in which every tool, in an order rotated from cycle to cycle and "
                f"reversed every other cycle, "
                f"takes a first snapshot into a new repository, {reps} no-change "
                f"snapshot{'s' if reps > 1 else ''}, one after `{CHANGED_FILE}` was edited, "
                f"and a full restore into an empty directory, checked file by file against "
                f"the data. Figures are the median (min–max) of wall-clock times on a warm "
                f"page cache (the configuration files are read once before every snapshot, "
                f"outside the timing: BorgBackup drops the files it read from the cache) "
                f"and after a `sync`, also outside the timing (each tool pays for writing "
                f"its own data, never for another's dirty pages); "
                f"peak RSS is the largest `ru_maxrss` of the command's process "
                f"tree as GNU time reports it, over all runs. Every command runs as "
                f"`/usr/bin/time sh -c '...'`. Nothing is removed before the run ends: ext4 "
                f"without a journal skips inodes freed in the last minutes, which slows "
                f"file creation for whichever tool comes next.")
        rep.add("- Peers, each excluding the mailbox stores (`mbx-*`) and `Logs/` as msgw-backup "
                "does: plain git as etckeeper uses it (the data directory as work tree, "
                "`git add -A && git commit`, `info/exclude`); `tar --zstd` of the "
                "configuration into a git work tree and `git add -A && git commit`; "
                "restic (`backup --exclude`, repository password fixed to "
                f"`{RESTIC_PASSWORD}`: restic always encrypts); BorgBackup (`init -e none`, "
                "`create --compression zstd --exclude`). Restores: `msgw-restore extract`, "
                "`git archive | tar -x`, `git cat-file | tar --zstd -x`, `restic restore`, "
                "`borg extract`.")
        rep.add("- Data: `scripts/bench.d/gen.py`, deterministic (fixed seed and mtimes); "
                "configuration text compresses about 3.8× with zstd -3; mailbox messages "
                "are incompressible like encrypted mail.")
        rep.add()
        rep.add("## Snapshot and restore")
        rep.add()
        for s in scales:
            scale_tables(rep, s, infos[s], results[s], keys)
        for s in scales:
            scale_targets(rep, s, results[s], keys)
        encrypted.report(rep, scales, results, infos, med, fmt_range_unit, ratio_str, fmt_t)

        if lin:
            rep.add("## Linear growth (msgw-backup)")
            rep.add()
            rep.add("| scale | configuration files | first snapshot | its CPU time | "
                    "no-change snapshot | its CPU time |")
            rep.add("|---:|---:|---:|---:|---:|---:|")
            for s in (0, 10, 100):
                r = lin[f"s{s}"]
                rep.add(f"| {s} | {infos[s]['config_files']:,} | {fmt_range_unit(r['first'])} | "
                        f"{fmt_t(medc(r['first']))} | {fmt_range_unit(r['nochange'])} | "
                        f"{fmt_t(medc(r['nochange']))} |")
            rep.add()
            n0, n10, n100 = (infos[s]["config_files"] for s in (0, 10, 100))
            rep.add(f"All three without mailbox stores (scale 100's are moved aside for this "
                    "series), so that only the configuration files vary; the store is measured "
                    f"on its own below. Scale 0 is the base set of {n0} files alone: its time is the "
                    "fixed cost of a run (process start with its libraries, configuration, lock, "
                    "libgit2's initialisation and the repository; a no-change run reads no file: "
                    "the stat cache vouches for them, and the tip's manifest is compared by its "
                    "object id, not read). Linear growth means cost = fixed + files × cost per file: "
                    "the line through scales 0 and 10 predicts scale 100, and the measured "
                    "scale-100 figure must lie within 15% of that prediction. Judged on CPU time "
                    "(user + system of the process tree), the work done: on a shared 2-core "
                    "machine the wall-clock difference between scales 0 and 10 of a no-change "
                    "run (a few milliseconds) is smaller than the noise.")
            rep.add()
            for op, name in (("first", "first snapshot"), ("nochange", "no-change snapshot")):
                def predict(f):
                    t0, t10, t100 = (f(lin[f"s{s}"][op]) for s in (0, 10, 100))
                    return t100, t0 + (t10 - t0) * (n100 - n0) / (n10 - n0)
                got, want = predict(med)
                gotc, wantc = predict(medc)
                x = gotc / wantc
                rep.target(f"{name}: linear in the configuration files (scale 100 against the "
                           f"line through scales 0 and 10)",
                           f"CPU time {fmt_t(gotc)} measured vs {fmt_t(wantc)} predicted ({x - 1:+.0%}); "
                           f"wall time {fmt_t(got)} vs {fmt_t(want)} ({got / want - 1:+.0%})",
                           None)
            rep.add("## Mailbox store (msgw-backup, scale 100)")
            rep.add()
            rep.add("| | first snapshot | no-change snapshot | peak RSS |")
            rep.add("|---|---:|---:|---:|")
            for name, r in (("with its 1 GB store", with_store["with"]),
                            ("store moved away", without["without"])):
                rep.add(f"| {name} | {fmt_range_unit(r['first'])} | {fmt_range_unit(r['nochange'])} | "
                        f"{mb(peak(r['first'] + r['nochange']))} |")
            rep.add()
            pw, po = peak(with_store["with"]["first"] + with_store["with"]["nochange"]), \
                peak(without["without"]["first"] + without["without"]["nochange"])
            if GNU_TIME:
                rep.target("peak RSS and the mailbox store's size (scale 100, with vs without its store)",
                           f"{mb(pw)} vs {mb(po)} ({ratio_str(pw / po)})", None)

        if apply_res:
            sm = apply_res["samples"]
            rep.add("## Apply on a simulated gateway (scale 1)")
            rep.add()
            rep.add(f"`msgw-restore apply A|B --to gw --yes` on an `msgw-sim` gateway "
                    f"({apply_res['files']} files: its own plus the generated scale-1 "
                    f"`Config/` and `Domains/`), alternating between two snapshots that differ in "
                    f"{apply_res['changed']} files; {len(sm)} applies after a warm-up pair. "
                    "The stop command first records what exists on the gateway "
                    "(`scripts/bench.d/stop-check.sh`): staged files and their sha256, the "
                    "journal, the repository's tip.")
            rep.add()
            rep.add("| service down | stop (the service's) | swap (ours) | start and health (the service's) |")
            rep.add("|---:|---:|---:|---:|")

            def col(i):  # apply prints milliseconds
                xs = [x[i] * 1000 for x in sm]
                return f"{statistics.median(xs):.0f} ms ({min(xs):.0f}–{max(xs):.0f})" \
                    if len(xs) > 1 else f"{xs[0]:.0f} ms"
            rep.add(f"| {col(0)} | {col(1)} | {col(2)} | {col(3)} |")
            rep.add()
            swaps = [x[2] for x in sm]
            rep.target("apply: the swap (our part of the downtime) < 50 ms (scale 1)",
                       f"median {statistics.median(swaps) * 1000:.0f} ms, max {max(swaps) * 1000:.0f} ms "
                       f"(apply prints milliseconds)", max(swaps) < 0.050)
            ck = apply_res["checks"]
            good = sum(c["ok"] for c in ck)
            rep.target("apply: verification, staging and the pre-restore snapshot all happen before the stop",
                       f"{good} of {len(ck)} applies: all {apply_res['changed']} changed files staged "
                       f"with the snapshot's sha256, journal written, pre-restore snapshot at the "
                       f"branch tip when the stop command ran", good == len(ck) and len(ck) > 0)

        rep.add("## Targets")
        rep.add()
        rep.add("| target | measured | met |")
        rep.add("|---|---|:---:|")
        targets = [t for t in rep.targets if t[2] is not None]
        for name, meas, met in targets:
            rep.add(f"| {name} | {meas} | {'yes' if met else '**no**'} |")
        rep.add()
        nmet = sum(1 for t in targets if t[2])
        rep.add(f"{nmet} of {len(targets)} targets met.")
        figures = [t for t in rep.targets if t[2] is None]
        if figures:
            rep.add()
            rep.add("## Other figures (no target)")
            rep.add()
            rep.add("| figure | measured |")
            rep.add("|---|---|")
            for name, meas, _ in figures:
                rep.add(f"| {name} | {meas} |")
    except Failed as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    text = "\n".join(rep.lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    log(f"done in {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
