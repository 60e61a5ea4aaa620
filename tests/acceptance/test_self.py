#!/usr/bin/env python3
"""Self-test of pty_acceptance.py: the harness itself, not the driver.

Checks the illumos ioctl numbers and struct layout against the values in
illumos sys/stropts.h and sys/ptms.h, the shape of the per-platform table, and
the output contract (one PASS/FAIL/SKIP line per check, the final summary line,
the exit status).  Runs on any host with ptys; standard library only.
"""

import importlib.util
import os
import re
import struct
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "pty_acceptance.py")

_spec = importlib.util.spec_from_file_location("pty_acceptance", SCRIPT)
pa = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pa)

LINE = re.compile(r"^(PASS|FAIL|SKIP) ([a-z0-9-]+): .+$")
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")


def run(*args):
    proc = subprocess.run([sys.executable, SCRIPT] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


class Constants(unittest.TestCase):
    def test_streams_ioctls(self):
        # STR is ('S'<<8); I_PUSH (STR|02), I_STR (STR|010), I_FIND (STR|013),
        # __I_PUSH_NOCTTY (STR|047).
        self.assertEqual(pa.I_PUSH, 0x5302)
        self.assertEqual(pa.I_STR, 0x5308)
        self.assertEqual(pa.I_FIND, 0x530B)
        self.assertEqual(pa.I_PUSH_NOCTTY, 0x5327)

    def test_ptms_ioctls(self):
        self.assertEqual(pa.ISPTM, 0x5001)           # ('P'<<8)|1

    def test_strioctl_layout(self):
        if struct.calcsize("P") != 8:
            self.skipTest("the layout is checked for LP64 (amd64) only")
        self.assertEqual(struct.calcsize(pa.STRIOCTL), 24)
        packed = struct.pack(pa.STRIOCTL, pa.ISPTM, 0, 0, 0)
        self.assertEqual(struct.unpack_from("@i", packed, 0)[0], pa.ISPTM)


class Table(unittest.TestCase):
    def test_same_keys(self):
        keys = set(pa.PLATFORMS["SunOS"])
        self.assertEqual(keys, set(pa.PLATFORMS["Linux"]))

    def test_check_names(self):
        names = [c[0] for c in pa.CHECKS]
        self.assertEqual(len(names), len(set(names)))
        for name in names:
            self.assertRegex(name, r"^[a-z0-9-]+$")


class Output(unittest.TestCase):
    def assert_well_formed(self, lines):
        self.assertTrue(lines[0].startswith("pty_acceptance: "), lines[0])
        body, last = lines[1:-1], lines[-1]
        counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
        for line in body:
            mo = LINE.match(line)
            self.assertIsNotNone(mo, "malformed line: %r" % line)
            counts[mo.group(1)] += 1
        mo = SUMMARY.match(last)
        self.assertIsNotNone(mo, "malformed summary: %r" % last)
        self.assertEqual(tuple(int(x) for x in mo.groups()),
                         (counts["PASS"], counts["FAIL"], counts["SKIP"]))
        return counts

    def test_selected_checks(self):
        rc, lines, err = run("--only", "^(open-clone-device|isptm|push-ptem-ldterm)$")
        counts = self.assert_well_formed(lines)
        self.assertEqual(sum(counts.values()), 3)
        self.assertEqual(rc, 1 if counts["FAIL"] else 0, err)
        if os.uname().sysname != "SunOS":
            # illumos-only checks are reported as skipped, not passed.
            self.assertIn("SKIP isptm: illumos STREAMS only (I_STR/I_PUSH do "
                          "not exist on %s)" % os.uname().sysname, lines)

    def test_failures_set_exit_status(self):
        rc, lines, _ = run("--clone-device", "/nonexistent/ptmx",
                           "--only", "^(open-clone-device|data-raw)$")
        counts = self.assert_well_formed(lines)
        self.assertEqual(counts["FAIL"], 2)
        self.assertEqual(rc, 1)

    def test_list(self):
        rc, lines, _ = run("--list")
        self.assertEqual(rc, 0)
        self.assertEqual([line.split()[0] for line in lines],
                         [c[0] for c in pa.CHECKS])

    def test_usage_error(self):
        rc, _, err = run("--only", "(")
        self.assertEqual(rc, 2)
        self.assertIn("bad --only pattern", err)


if __name__ == "__main__":
    unittest.main()
