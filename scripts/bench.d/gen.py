#!/usr/bin/env python3
"""gen.py: a deterministic gateway data directory for the benchmark.

    gen.py DIR --scale S [--seed SEED] [--no-store] [--json]

At scale S the directory holds 11 + 24*S configuration files: a base set
(Gateway.json, Config/*.json, Certificates/, Templates/) and one
Domains/dNNN-NAME/ folder of 24 files per scale unit (six JSON files of
5-200 KB, four PEM files, fourteen text and HTML templates).  That is 35
files and about 0.8 MB at scale 1, 2,411 files and about 37 MB at scale
100.  Beside them: Logs/ (excluded by every tool) and round(20 * S**0.35)
mailbox stores mbx-<32 hex>/ of 350 message files each (mean 28.6 KB of
incompressible bytes, like encrypted mail): 20 stores, 7,000 files, 200 MB
at scale 1; 100 stores, 35,000 files, 1 GB at scale 100.

Everything is a function of (seed, path) alone, so scale 10's files are
exactly the first ten units of scale 100's, and the same arguments give the
same bytes and the same mtimes on every run.  The text is made of words
drawn with a Zipf distribution from a fixed vocabulary, with identifiers,
dates and base64 key material mixed in, so it compresses about as real
configuration does (zstd -3: roughly 3-4x).

Prints one summary line (or JSON with --json).
"""
import argparse
import base64
import hashlib
import json
import os
import random
import sys

MTIME_BASE = 1704067200  # 2024-01-01T00:00:00Z
UNIT_FILES = 24
BASE_FILES = 11
MSGS_PER_STORE = 350
MSG_MEAN = 28_600

COMMON = """the of and to in is for on that with by this be are as from at or an
it not all will can mail message messages server gateway domain mailbox
mailboxes address user users account accounts delivery deliver queue route
routing relay smtp pop3 imap tls certificate key keys policy policies rule
rules filter filters archive journal journaling store retention days hours
minutes size limit limits quota warning error notice sender recipient
recipients header headers subject body attachment attachments spam virus
scan scanning report reports daily weekly monthly enabled disabled default
custom local remote primary secondary backup restore sync connection port
host hostname timeout retry retries interval schedule service status active
suspended encryption encrypted password reset admin administrator console
log logging level debug info verbose description name display contact
support company department office sales finance legal compliance audit
export import fetch forward copy move delete keep allow deny reject accept
bounce notification template language english german french please your
our you we has have been was were if when then than after before every each
other new old first last only also more most less least per within without
""".split()

SYLLABLES = ("ba be bi bo bu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne "
             "ni no nu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo "
             "wa we xa ze zo an en in on un ar er ir or ur al el il ol ul").split()


def _vocabulary():
    r = random.Random("msgw-bench-vocabulary")
    words = list(COMMON)
    seen = set(words)
    while len(words) < 1500:
        w = "".join(r.choice(SYLLABLES) for _ in range(r.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    # Zipf weights: the common words first, then the made-up ones
    cum, total = [], 0.0
    for i in range(len(words)):
        total += 1.0 / (i + 2) ** 1.07
        cum.append(total)
    return words, cum


WORDS, CUM = _vocabulary()


class Text:
    """Seeded text pieces for one file."""

    def __init__(self, seed, path):
        self.r = random.Random(f"{seed}:{path}")

    def words(self, n):
        return self.r.choices(WORDS, cum_weights=CUM, k=n)

    def sentence(self, lo=6, hi=18):
        w = self.words(self.r.randint(lo, hi))
        return " ".join(w).capitalize() + "."

    def paragraph(self, lo=3, hi=7):
        return " ".join(self.sentence() for _ in range(self.r.randint(lo, hi)))

    def ident(self):
        return "%032x" % self.r.getrandbits(128)

    def uuid(self):
        h = "%032x" % self.r.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def b64(self, nbytes):
        return base64.b64encode(self.r.randbytes(nbytes)).decode()

    def date(self):
        t = MTIME_BASE - self.r.randint(0, 3 * 365 * 86400)
        d, s = divmod(t, 86400)
        # civil date from days since the epoch (no time module: fixed output)
        z = d + 719468
        era = z // 146097
        doe = z - era * 146097
        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
        y = yoe + era * 400
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        dd = doy - (153 * mp + 2) // 5 + 1
        mm = mp + 3 if mp < 10 else mp - 9
        y += mm <= 2
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mm, dd, s // 3600, s // 60 % 60, s % 60)

    def name(self):
        return " ".join(w.capitalize() for w in self.words(2))

    def word(self):
        return self.words(1)[0]


# --- JSON records ---------------------------------------------------------


def rec_mailbox(t, domain):
    local = ".".join(t.words(2))
    return {
        "id": t.ident(),
        "address": f"{local}@{domain}",
        "displayName": t.name(),
        "status": t.r.choice(["Active", "Active", "Active", "Suspended"]),
        "created": t.date(),
        "quotaMB": t.r.choice([512, 1024, 2048, 4096, 10240]),
        "keyAlgorithm": "X25519",
        "publicKey": t.b64(32),
        "encryptedPrivateKey": t.b64(72),
        "kdf": {"name": "argon2id", "salt": t.b64(16), "ops": 3, "memKB": 65536},
        "description": t.sentence(4, 12),
        "messageCounter": t.r.randint(0, 250000),
    }


def rec_rule(t, domain):
    return {
        "id": t.uuid(),
        "name": " ".join(t.words(t.r.randint(2, 5))),
        "enabled": t.r.random() < 0.8,
        "priority": t.r.randint(1, 1000),
        "match": {
            "field": t.r.choice(["from", "to", "subject", "header", "size", "attachment"]),
            "operator": t.r.choice(["contains", "equals", "matches", "greaterThan", "startsWith"]),
            "value": " ".join(t.words(t.r.randint(1, 4))),
        },
        "actions": [
            {"type": t.r.choice(["tag", "forward", "reject", "archive", "notify", "copy"]),
             "target": f"{t.word()}@{domain}"}
            for _ in range(t.r.randint(1, 3))
        ],
        "comment": t.sentence(),
        "modified": t.date(),
    }


def rec_route(t, domain):
    return {
        "pattern": f"*.{t.word()}.{domain}",
        "target": f"smtp{t.r.randint(1, 9)}.{t.word()}.example:{t.r.choice([25, 465, 587])}",
        "tls": t.r.choice(["required", "opportunistic", "none"]),
        "retryMinutes": t.r.choice([5, 10, 15, 30, 60]),
        "maxConnections": t.r.randint(1, 50),
        "note": t.sentence(3, 10),
    }


def rec_setting(t, domain):
    return {
        "key": ".".join(t.words(t.r.randint(2, 4))),
        "value": t.r.choice([t.r.randint(0, 100000), " ".join(t.words(t.r.randint(1, 6))),
                             t.r.random() < 0.5, f"{t.word()}@{domain}"]),
        "scope": t.r.choice(["global", "domain", "mailbox", "connector"]),
        "help": t.sentence(),
    }


def rec_archive(t, domain):
    return {
        "id": t.uuid(),
        "store": t.r.choice(["primary", "secondary", "cold"]),
        "retentionDays": t.r.choice([30, 90, 365, 730, 3650]),
        "schedule": t.r.choice(["hourly", "daily", "weekly"]),
        "lastRun": t.date(),
        "owner": f"{t.word()}@{domain}",
        "notes": t.sentence(5, 14),
    }


RECORDS = {
    "domain.json": rec_setting,
    "mailboxes.json": rec_mailbox,
    "routing.json": rec_route,
    "policies.json": rec_rule,
    "filters.json": rec_rule,
    "archive.json": rec_archive,
}


def json_file(t, kind, domain, size):
    """A JSON document of about size bytes made of kind's records."""
    make = RECORDS[kind]
    recs, n = [], 200
    while n < size:
        rec = make(t, domain)
        recs.append(rec)
        n += len(json.dumps(rec, indent=2)) + 4
    doc = {
        "format": 3,
        "revision": 1000000,
        "domain": domain,
        "generated": t.date(),
        "description": t.sentence(),
        "items": recs,
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def pem(t, label, nbytes):
    b = base64.b64encode(t.r.randbytes(nbytes)).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()


def template(t, html, size):
    parts, n = [], 0
    while n < size:
        p = t.paragraph()
        if html:
            p = f"  <p class=\"{t.word()}\">{p}</p>\n"
        else:
            p = p + "\n\n"
        parts.append(p)
        n += len(p)
    body = "".join(parts)
    if html:
        body = (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>{t.name()}</title></head>\n"
                f"<body>\n  <h1>{{{{subject}}}}</h1>\n{body}  <p>{{{{signature}}}}</p>\n</body>\n</html>\n")
    else:
        body = f"Subject: {{{{subject}}}}\n\n{body}-- \n{{{{signature}}}}\n"
    return body.encode()


def log_uniform(t, lo, hi):
    import math
    return int(math.exp(t.r.uniform(math.log(lo), math.log(hi))))


# --- the file list --------------------------------------------------------

TEMPLATE_NAMES = ["bounce.txt", "bounce.html", "welcome.txt", "welcome.html",
                  "quota-warning.txt", "quota-warning.html", "ndr.txt", "ndr.html",
                  "disclaimer.txt", "disclaimer.html", "out-of-office.txt",
                  "digest.html", "spam-report.html", "password-reset.txt"]


def base_files(seed):
    """(path, producer) for the base set of 11 files."""
    dom = "gateway.example"

    def js(kind, size):
        return lambda t: json_file(t, kind, dom, size)

    return [
        ("Gateway.json", js("domain.json", 120_000)),
        ("Config/Smtp.json", js("routing.json", 40_000)),
        ("Config/Pop3.json", js("domain.json", 10_000)),
        ("Config/Users.json", js("mailboxes.json", 110_000)),
        ("Certificates/server.pem", lambda t: pem(t, "CERTIFICATE", 1300)),
        ("Certificates/server.key", lambda t: pem(t, "PRIVATE KEY", 1200)),
        ("Certificates/ca-chain.pem", lambda t: pem(t, "CERTIFICATE", 2600)),
        ("Templates/bounce.txt", lambda t: template(t, False, 6000)),
        ("Templates/welcome.html", lambda t: template(t, True, 9000)),
        ("Templates/quota-warning.txt", lambda t: template(t, False, 5000)),
        ("Templates/ndr.html", lambda t: template(t, True, 8000)),
    ]


def unit_files(seed, u):
    t = Text(seed, f"unit-{u}")
    dom = f"d{u:03d}-{t.word()}-{t.word()}.example"
    folder = f"Domains/{dom}"
    out = []
    for kind in RECORDS:
        size_t = Text(seed, f"{folder}/{kind}:size")
        size = log_uniform(size_t, 5_000, 130_000)
        if kind == "mailboxes.json":
            size = min(200_000, size * 3 // 2)
        out.append((f"{folder}/{kind}", lambda t, k=kind, s=size: json_file(t, k, dom, s)))
    for name, label, n in [("cert.pem", "CERTIFICATE", 1300), ("key.pem", "PRIVATE KEY", 1200),
                           ("chain.pem", "CERTIFICATE", 2600), ("dkim.pem", "PRIVATE KEY", 900)]:
        out.append((f"{folder}/Certificates/{name}", lambda t, l=label, b=n: pem(t, l, b)))
    for name in TEMPLATE_NAMES:
        size_t = Text(seed, f"{folder}/Templates/{name}:size")
        size = size_t.r.randint(3_000, 14_000)
        out.append((f"{folder}/Templates/{name}",
                    lambda t, h=name.endswith(".html"), s=size: template(t, h, s)))
    return out


def config_files(seed, scale):
    files = base_files(seed)
    for u in range(scale):
        files += unit_files(seed, u)
    return files


def stores(scale):
    return 0 if scale <= 0 else max(1, round(20 * scale ** 0.35))


def mtime_of(seed, path):
    h = hashlib.sha256(f"{seed}:mtime:{path}".encode()).digest()
    return MTIME_BASE + int.from_bytes(h[:4], "big") % (300 * 86400)


def write(root, rel, data, seed):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, 0o600 if rel.endswith((".key", "key.pem", "dkim.pem")) else 0o644)
    m = mtime_of(seed, rel)
    os.utime(p, (m, m))


def fix_dir_times(root, seed):
    for d, dirs, _ in os.walk(root, topdown=False):
        rel = os.path.relpath(d, root)
        m = mtime_of(seed, "dir:" + rel)
        os.utime(d, (m, m))


def generate(root, scale, seed, with_store):
    os.makedirs(root, exist_ok=True)
    if os.listdir(root):
        sys.exit(f"gen.py: '{root}' is not empty")
    cfg_files = cfg_bytes = 0
    for rel, make in config_files(seed, scale):
        data = make(Text(seed, rel))
        write(root, rel, data, seed)
        cfg_files += 1
        cfg_bytes += len(data)
    t = Text(seed, "Logs")
    for i in range(3):
        write(root, f"Logs/gateway-{i}.log", template(t, False, 400_000), seed)
    st_files = st_bytes = 0
    nstores = stores(scale) if with_store else 0
    if nstores:
        pool = random.Random(f"{seed}:pool").randbytes(4 << 20)
        for s in range(nstores):
            t = Text(seed, f"store-{s}")
            sdir = f"mbx-{t.ident()}"
            os.makedirs(os.path.join(root, sdir))
            for _ in range(MSGS_PER_STORE):
                size = min(int(t.r.expovariate(1.0 / (MSG_MEAN - 2000))) + 2000, 1 << 20)
                off = t.r.randrange(0, len(pool) - size)
                write(root, f"{sdir}/{t.uuid()}.msg", pool[off:off + size], seed)
                st_files += 1
                st_bytes += size
    fix_dir_times(root, seed)
    return {"scale": scale, "config_files": cfg_files, "config_bytes": cfg_bytes,
            "stores": nstores, "store_files": st_files, "store_bytes": st_bytes}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--scale", type=int, required=True)
    ap.add_argument("--seed", default="msgw-bench-1")
    ap.add_argument("--no-store", action="store_true", help="configuration and Logs only")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = generate(a.dir, a.scale, a.seed, not a.no_store)
    if a.json:
        print(json.dumps(res))
    else:
        print("scale %(scale)d: %(config_files)d config files, %(config_bytes)d bytes; "
              "%(stores)d stores, %(store_files)d files, %(store_bytes)d bytes" % res)


if __name__ == "__main__":
    main()
