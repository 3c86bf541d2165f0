"""encrypted.py: msgw-backup with an encrypted repository, for bench.py.

The tool "msgwenc" is msgw-backup with encryption = "keyfile:..." (made by
init --encrypt): the same snapshots and extract, with manifest and archive
sealed.  It runs in the same cycles as the other tools; report() adds a
table of the cost of sealing: first snapshot, no-change snapshot, one
changed file and full restore of the encrypted repository beside the plain
one's and restic's (which always encrypts).
"""
import os


def tool_class(Msgw, q):
    class MsgwEncrypted(Msgw):
        key, label = "msgwenc", "msgw-backup encrypted"

        def setup(self, base):
            os.makedirs(base)
            self.base = base
            self.conf = os.path.join(base, "msgw.conf")
            with open(self.conf, "w") as f:
                f.write(f'repository = "repo.git"\nstate-dir = "state"\n'
                        f'encryption = "keyfile:repo.key"\n'
                        f'gateway "gw" {{\n  location = "{self.data}"\n  exclude = {{"Logs/**"}}\n}}\n')
            self.env.run(f"msgw-agent -q -c {q(self.conf)} init --encrypt")

    return MsgwEncrypted


def report(rep, scales, results, infos, med, fmt_range_unit, ratio_str, fmt_t):
    rows = [("first", "first snapshot"), ("nochange", "no-change snapshot"),
            ("changed", "one changed file"), ("restore", "full restore (extract)")]
    if not any("msgwenc" in results[s] and "msgw" in results[s] for s in scales):
        return
    rep.add("## Encrypted repositories: the cost of sealing")
    rep.add()
    rep.add("msgw-backup with `encryption = \"keyfile:...\"` (manifest and archive sealed "
            "with crypto_secretstream_xchacha20poly1305, unsealed through a scratch file before use) in the "
            "same cycles as above, beside the plain repository and restic, which always "
            "encrypts. Ratio: encrypted ÷ plain.")
    rep.add()
    for s in scales:
        r = results[s]
        if "msgwenc" not in r or "msgw" not in r:
            continue
        has_restic = "restic" in r
        rep.add(f"### Scale {s}: {infos[s]['config_files']:,} configuration files")
        rep.add()
        rep.add("| | msgw-backup plain | msgw-backup encrypted | encrypted ÷ plain |"
                + (" restic |" if has_restic else ""))
        rep.add("|---|---:|---:|---:|" + ("---:|" if has_restic else ""))
        for op, name in rows:
            line = (f"| {name} | {fmt_range_unit(r['msgw'][op])} | {fmt_range_unit(r['msgwenc'][op])} | "
                    f"{ratio_str(med(r['msgwenc'][op]) / med(r['msgw'][op]))} |")
            if has_restic:
                line += f" {fmt_range_unit(r['restic'][op])} |"
            rep.add(line)
        rep.add()
