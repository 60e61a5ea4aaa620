#!/usr/bin/env python3
"""Static checks of packaging/ptm-rs.p5m that run on any host.

pkglint(1) only exists on illumos; this parses the manifest the way pkg(7)
reads actions (one action per line, backslash continuations, attribute=value
with optional double quotes, repeated attributes) and checks what the package
must and must not deliver:

  - the set actions pkg needs (fmri with $(PKGVERS), summary, description,
    classification, variant.arch) and org.opensolaris.consolidation, whose
    absence pkglint reports (opensolaris.manifest001.1);
  - the module at kernel/drv/amd64/ptm (root:sys 0755, reboot-needed) and
    ptm.conf at kernel/drv/ptm.conf (root:sys 0644), global zone only;
  - nothing at usr/kernel/drv/..., which pkg:/SUNWcs owns;
  - no `driver name=ptm` action, which SUNWcs owns too;
  - the package tied to the kernel it was built for: a require and an
    incorporate dependency on pkg:/system/kernel@$(KERNELVERS), which
    `make package` fills in with the build machine's system/kernel version.

With --define NAME=VALUE (as pkgmogrify -D), the macros are expanded first
and every $(...) must then be gone: `make package` runs it so on the
expanded manifest.

Prints one PASS/FAIL line per check and exits 1 on any failure.
"""

import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "ptm-rs.p5m")


def actions(path, defines=None):
    """Yield (lineno, name, attrs, payload) for each action in the manifest."""
    pending, start = "", 0
    with open(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            for key, value in (defines or {}).items():
                raw = raw.replace("$(%s)" % key, value)
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
    args, defines = argv[1:], {}
    while args and args[0] == "--define":
        key, sep, value = (args[1] if len(args) > 1 else "").partition("=")
        if not sep or not key:
            print("usage: lint-manifest.py [--define NAME=VALUE]... [MANIFEST]")
            return 2
        defines[key] = value
        args = args[2:]
    path = args[0] if args else DEFAULT
    results = []

    def check(name, ok, detail):
        results.append(ok)
        print("%s %s: %s" % ("PASS" if ok else "FAIL", name, detail))

    try:
        acts = list(actions(path, defines))
    except (OSError, ValueError) as exc:
        print("FAIL parse: %s" % exc)
        return 1
    check("parse", bool(acts), "%d actions in %s" % (len(acts), os.path.basename(path)))

    sets = {}
    for _, name, attrs, _ in acts:
        if name == "set":
            sets[attrs["name"][0]] = attrs.get("value", [])
    fmri = (sets.get("pkg.fmri") or [""])[0]
    version = re.escape(defines["PKGVERS"]) if "PKGVERS" in defines else r"\$\(PKGVERS\)"
    check("fmri", re.match(r"^pkg:/[a-z0-9/-]+@%s$" % version, fmri) is not None,
          fmri or "no pkg.fmri")
    check("consolidation", len(sets.get("org.opensolaris.consolidation", [])) == 1,
          "org.opensolaris.consolidation = %r" % sets.get("org.opensolaris.consolidation"))
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

    kernel = defines.get("KERNELVERS", "$(KERNELVERS)")
    deps = [(a.get("type", [None])[0], a.get("fmri", [None])[0])
            for _, n, a, _ in acts if n == "depend"]
    want = "pkg:/system/kernel@" + kernel
    check("kernel-require", ("require", want) in deps,
          "depend type=require fmri=%s" % want)
    check("kernel-incorporate", ("incorporate", want) in deps,
          "depend type=incorporate fmri=%s" % want)
    if defines:
        with open(path) as fh:
            text = "".join(l for l in fh if not l.lstrip().startswith("#"))
        for key, value in defines.items():
            text = text.replace("$(%s)" % key, value)
        left = sorted(set(re.findall(r"\$\([A-Za-z0-9_]+\)", text)))
        check("macros-expanded", not left, "left unexpanded: %s" % left if left else "none left")
        check("kernel-version",
              bool(re.match(r"^[0-9][0-9.]*(,[0-9][0-9.]*)?-[0-9][0-9.]*(:[0-9]{8}T[0-9]{6}Z)?$",
                            kernel)),
              "system/kernel version %r (release,branch-version[:timestamp])" % kernel)

    failed = results.count(False)
    print("%d passed, %d failed, 0 skipped" % (len(results) - failed, failed))
    return 1 if failed else 0


# Each of these breaks the manifest in one way the lint must refuse.
MUTATIONS = [
    ("no consolidation", lambda t: t.replace("set name=org.opensolaris.consolidation", "#")),
    ("no kernel incorporate", lambda t: t.replace("depend type=incorporate", "#")),
    ("no kernel require", lambda t: t.replace("depend type=require fmri=pkg:/system/kernel", "#")),
    ("unversioned kernel", lambda t: t.replace("pkg:/system/kernel@$(KERNELVERS)", "pkg:/system/kernel")),
    ("driver action", lambda t: t + "driver name=ptm clone_perms=\"ptmx 0666 root sys\"\n"),
    ("file under usr/kernel", lambda t: t.replace("path=kernel/drv/amd64/ptm", "path=usr/kernel/drv/amd64/ptm")),
    ("not reboot-needed", lambda t: t.replace("reboot-needed=true", "")),
]


def self_test():
    """The lint refuses each mutation of the real manifest, and passes it."""
    import contextlib
    import io
    import tempfile
    with open(DEFAULT) as fh:
        text = fh.read()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, mutate in [("unchanged", None)] + MUTATIONS:
            path = os.path.join(tmp, "m.p5m")
            with open(path, "w") as fh:
                fh.write(mutate(text) if mutate else text)
            with contextlib.redirect_stdout(io.StringIO()) as out:
                rc = main(["lint-manifest.py", path])
            ok = (rc == 0) if mutate is None else (rc == 1)
            failures += not ok
            first = [l for l in out.getvalue().splitlines() if l.startswith("FAIL")][:1]
            print("%s lint-self-test %s: exit %d%s" % ("PASS" if ok else "FAIL", name, rc,
                                                       (" (" + first[0] + ")") if first else ""))
    print("%d passed, %d failed, 0 skipped" % (len(MUTATIONS) + 1 - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    sys.exit(main(sys.argv))
