#!/usr/bin/env python3
"""Static checks of packaging/ptm-rs.p5m that run on any host.

pkglint(1) only exists on illumos; this parses the manifest the way pkg(7)
reads actions (one action per line, backslash continuations, attribute=value
with optional double quotes, repeated attributes) and checks what the package
must and must not deliver:

  - the set actions pkg needs (fmri with $(PKGVERS), summary, description,
    classification, variant.arch);
  - the module at kernel/drv/amd64/ptm (root:sys 0755, reboot-needed) and
    ptm.conf at kernel/drv/ptm.conf (root:sys 0644), global zone only;
  - nothing at usr/kernel/drv/..., which pkg:/SUNWcs owns;
  - no `driver name=ptm` action, which SUNWcs owns too.

Prints one PASS/FAIL line per check and exits 1 on any failure.
"""

import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "ptm-rs.p5m")


def actions(path):
    """Yield (lineno, name, attrs, payload) for each action in the manifest."""
    pending, start = "", 0
    with open(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if not pending:
                start = lineno
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            text, pending = pending + line, ""
            words = shlex.split(text)
            name, rest = words[0], words[1:]
            payload = None
            if rest and "=" not in rest[0]:
                payload, rest = rest[0], rest[1:]
            attrs = {}
            for word in rest:
                key, sep, value = word.partition("=")
                if not sep:
                    raise ValueError("line %d: %r is not attribute=value" % (start, word))
                attrs.setdefault(key, []).append(value)
            yield start, name, attrs, payload


def main(argv):
    path = argv[1] if len(argv) > 1 else DEFAULT
    results = []

    def check(name, ok, detail):
        results.append(ok)
        print("%s %s: %s" % ("PASS" if ok else "FAIL", name, detail))

    try:
        acts = list(actions(path))
    except (OSError, ValueError) as exc:
        print("FAIL parse: %s" % exc)
        return 1
    check("parse", bool(acts), "%d actions in %s" % (len(acts), os.path.basename(path)))

    sets = {}
    for _, name, attrs, _ in acts:
        if name == "set":
            sets[attrs["name"][0]] = attrs.get("value", [])
    fmri = (sets.get("pkg.fmri") or [""])[0]
    check("fmri", re.match(r"^pkg:/[a-z0-9/-]+@\$\(PKGVERS\)$", fmri) is not None,
          fmri or "no pkg.fmri")
    for key in ("pkg.summary", "pkg.description", "variant.arch"):
        check(key, bool(sets.get(key)), "%r" % (sets.get(key) or "missing"))
    check("classification",
          sets.get("info.classification") ==
          ["org.opensolaris.category.2008:Drivers/Other Peripherals"],
          "%r" % sets.get("info.classification"))
    check("zone-variant",
          sorted(sets.get("variant.opensolaris.zone", [])) == ["global", "nonglobal"],
          "declared: %r" % sets.get("variant.opensolaris.zone"))

    files = {a["path"][0]: (a, p) for _, n, a, p in acts if n == "file"}
    dirs = {a["path"][0]: a for _, n, a, _ in acts if n == "dir"}

    def want_file(path_, mode, extra):
        entry = files.get(path_)
        if not entry:
            check(path_, False, "not delivered")
            return
        attrs, payload = entry
        got = {k: attrs.get(k, [None])[0]
               for k in ("owner", "group", "mode", "reboot-needed",
                         "variant.opensolaris.zone")}
        want = {"owner": "root", "group": "sys", "mode": mode,
                "reboot-needed": extra, "variant.opensolaris.zone": "global"}
        ok = got == want and payload is not None
        check(path_, ok, "payload %s, %s" % (payload, got))

    want_file("kernel/drv/amd64/ptm", "0755", "true")
    want_file("kernel/drv/ptm.conf", "0644", None)
    for parent in ("kernel", "kernel/drv", "kernel/drv/amd64"):
        a = dirs.get(parent)
        check("dir " + parent,
              a is not None and a.get("group") == ["sys"] and a.get("mode") == ["0755"],
              "root:sys 0755" if a else "not delivered")

    sunwcs = [p for p in files if p.startswith("usr/kernel/")]
    check("no-sunwcs-files", not sunwcs,
          "nothing under usr/kernel (SUNWcs delivers the in-tree ptm there)"
          if not sunwcs else "conflicts with SUNWcs: %s" % sunwcs)
    drivers = [a.get("name") for _, n, a, _ in acts if n == "driver"]
    check("no-driver-action", not drivers,
          "no driver action (SUNWcs delivers driver name=ptm)"
          if not drivers else "driver actions %r would conflict with SUNWcs" % drivers)

    failed = results.count(False)
    print("%d passed, %d failed, 0 skipped" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
