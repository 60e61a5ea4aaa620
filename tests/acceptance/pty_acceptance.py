#!/usr/bin/env python3
"""Acceptance test for a pseudo-terminal manager driver, as a process sees it.

Written for the Rust replacement of illumos ptm(4D), and runnable unchanged on
Linux ptys so that the test itself is exercised on every host run.  It uses
only the Python 3 standard library (OmniOS ships Python 3; nothing is compiled
in the guest).

What is checked (one line per check):

    PASS <name>: <detail>
    FAIL <name>: <detail>
    SKIP <name>: <why>

and a final line of the form ``N passed, M failed, K skipped``.  The exit
status is 1 if any check failed, 2 for a usage error, 0 otherwise.

Where illumos and Linux differ, the expected behaviour comes from the table
PLATFORMS below, keyed by os.uname().sysname ('SunOS' or 'Linux').  Checks that
only make sense on illumos (ISPTM, I_PUSH of ptem/ldterm) are reported as SKIP
elsewhere, never silently passed.  Every check runs under a timer, so a hang
is reported as a failure instead of stalling CI.

The illumos expectations follow the stream-head and ptm/pts behaviour
described in docs/illumos.md and docs/streams.md: a bare
subsidiary has no line discipline until ptem and ldterm are pushed; the
manager reads exactly one zero-length message when the last subsidiary closes;
after the manager closes, the subsidiary still drains data already queued and
then reads EOF, and writes fail with EIO.
"""

import argparse
import ctypes
import ctypes.util
import errno
import fcntl
import os
import re
import select
import signal
import stat
import struct
import sys
import termios
import time
import tty

SYSNAME = os.uname().sysname

# --------------------------------------------------------------------------
# illumos STREAMS constants (usr/src/uts/common/sys/stropts.h, sys/ptms.h).
# --------------------------------------------------------------------------
_STR = ord("S") << 8
I_PUSH = _STR | 0o02
I_STR = _STR | 0o10
I_FIND = _STR | 0o13
I_PUSH_NOCTTY = _STR | 0o47          # __I_PUSH_NOCTTY: push, never take a ctty
ISPTM = (ord("P") << 8) | 1
# struct strioctl { int ic_cmd; int ic_timout; int ic_len; char *ic_dp; }:
# native alignment gives 24 bytes on amd64 (4 + 4 + 4 + 4 padding + 8).
STRIOCTL = "@iiiP"

# Terminal ioctls; the termios module knows them on both platforms, the
# fallbacks are the illumos values (sys/termios.h: _TIOC is 'T'<<8, tIOC 't'<<8).
TIOCSWINSZ = getattr(termios, "TIOCSWINSZ", (ord("T") << 8) | 103)
TIOCGWINSZ = getattr(termios, "TIOCGWINSZ", (ord("T") << 8) | 104)
TIOCSCTTY = getattr(termios, "TIOCSCTTY", (ord("t") << 8) | 132)

# --------------------------------------------------------------------------
# Per-platform expectations.  Every difference between the platforms that a
# check relies on is spelt out here, nowhere else.
# --------------------------------------------------------------------------
PLATFORMS = {
    "SunOS": {
        "label": "illumos",
        # ISPTM and I_PUSH exist (STREAMS).
        "streams": True,
        # A subsidiary is a bare pts stream until ptem/ldterm are pushed:
        # bytes pass verbatim, there is no termios and no echo.
        "bare_subsidiary_is_raw": True,
        # Line discipline and termios come from pushing ptem + ldterm.
        "cooked_needs_push": True,
        # open() of a locked subsidiary (before unlockpt): ptsopen -> EAGAIN.
        "locked_open_errno": errno.EAGAIN,
        # isatty(manager): the manager NAKs TCGETA, so 0.
        "manager_isatty": False,
        # After the manager closes (M_HANGUP), data already queued at the
        # subsidiary stream head is still read, then read() returns 0.
        "hangup_keeps_buffered": True,
        # When the last subsidiary closes, the manager reads its data, then
        # exactly one zero-length read; after that nothing (EAGAIN).
        "after_subsidiary_close": "eof-once",
        # A zero-byte write on the manager reaches a bare subsidiary as one
        # zero-length read.
        "zero_length_write": "delivered",
        # Data written on the subsidiary waits at the manager's read side;
        # tcflush(subsidiary, TCOFLUSH) discards it (FLUSHW -> FLUSHR in pts).
        "pending_output_flush": ("subsidiary", "TCOFLUSH"),
        # TIOCSWINSZ on the manager of a bare pty is NAKed by the subsidiary
        # stream head: EINVAL.  With ptem pushed it works.
        "winsize_without_ptem": errno.EINVAL,
    },
    "Linux": {
        "label": "Linux",
        "streams": False,
        "bare_subsidiary_is_raw": False,   # n_tty is always there: use cfmakeraw
        "cooked_needs_push": False,
        "locked_open_errno": errno.EIO,
        "manager_isatty": True,
        # tty_vhangup() on the slave: read() returns 0 at once, queued input
        # is discarded.
        "hangup_keeps_buffered": False,
        # The master reads the remaining data, then EIO (Linux's documented
        # difference from the STREAMS zero-length message).
        "after_subsidiary_close": "EIO",
        "zero_length_write": "dropped",
        # Data written on the slave is moved to the master's input buffer;
        # it is flushed there with tcflush(master, TCIFLUSH).
        "pending_output_flush": ("manager", "TCIFLUSH"),
        "winsize_without_ptem": None,      # not applicable: no ptem on Linux
    },
}


class Skip(Exception):
    """The check does not apply here; the message says why."""


class Failure(Exception):
    """The check ran and the driver did not behave as expected."""


class CheckTimeout(Exception):
    """Raised from the SIGALRM handler when a check overruns its budget."""


def _on_alarm(signum, frame):
    raise CheckTimeout()


# --------------------------------------------------------------------------
# libc: grantpt, unlockpt, ptsname (the real libc functions, via ctypes).
# --------------------------------------------------------------------------
class Libc:
    def __init__(self):
        candidates = []
        found = ctypes.util.find_library("c")
        if found:
            candidates.append(found)
        if SYSNAME == "SunOS":
            candidates.append("libc.so.1")
        candidates.append(None)            # the running program's own symbols
        last = None
        for name in candidates:
            try:
                self.lib = ctypes.CDLL(name, use_errno=True)
                self.lib.grantpt
                self.lib.unlockpt
                self.lib.ptsname
                break
            except (OSError, AttributeError) as exc:
                last = exc
        else:
            raise RuntimeError("cannot load libc: %s" % last)
        for fn in ("grantpt", "unlockpt"):
            f = getattr(self.lib, fn)
            f.argtypes = [ctypes.c_int]
            f.restype = ctypes.c_int
        self.lib.ptsname.argtypes = [ctypes.c_int]
        self.lib.ptsname.restype = ctypes.c_char_p

    def _fail(self, what):
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))

    def grantpt(self, fd):
        ctypes.set_errno(0)
        if self.lib.grantpt(fd) != 0:
            self._fail("grantpt")

    def unlockpt(self, fd):
        ctypes.set_errno(0)
        if self.lib.unlockpt(fd) != 0:
            self._fail("unlockpt")

    def ptsname(self, fd):
        ctypes.set_errno(0)
        name = self.lib.ptsname(fd)
        if not name:
            self._fail("ptsname")
        return name.decode()


# --------------------------------------------------------------------------
# Small helpers.
# --------------------------------------------------------------------------
def errname(num):
    return errno.errorcode.get(num, str(num))


def set_nonblock(fd, on=True):
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    flags = (flags | os.O_NONBLOCK) if on else (flags & ~os.O_NONBLOCK)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def poll_fd(fd, events, timeout):
    """Return the revents of fd after waiting up to timeout seconds (0 if none)."""
    p = select.poll()
    p.register(fd, events)
    ready = p.poll(max(0, int(timeout * 1000)))
    return ready[0][1] if ready else 0


def readable(fd, timeout):
    return bool(poll_fd(fd, select.POLLIN | select.POLLPRI | select.POLLHUP
                        | select.POLLERR, timeout))


def read_once(fd, timeout, size=65536):
    """One read after waiting for readability.  Returns bytes (b'' is EOF),
    or None if nothing became readable in time.  OSError propagates."""
    if not readable(fd, timeout):
        return None
    try:
        return os.read(fd, size)
    except BlockingIOError:
        return None


def read_until(fd, wanted, timeout):
    """Accumulate reads until `wanted` is in the data, EOF/EIO, or timeout."""
    buf = b""
    deadline = time.monotonic() + timeout
    while wanted not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            chunk = read_once(fd, left)
        except OSError as exc:
            if exc.errno == errno.EIO:
                break
            raise
        if chunk is None:
            continue
        if chunk == b"":
            break
        buf += chunk
    return buf


def read_exact(fd, n, timeout):
    """Read exactly n bytes (fewer on EOF or timeout), never more."""
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        chunk = read_once(fd, left, n - len(buf))
        if chunk is None:
            continue
        if chunk == b"":
            break
        buf += chunk
    return buf


def read_quiet(fd, quiet=0.3, limit=5.0):
    """Read whatever arrives until the fd has been quiet for `quiet` seconds."""
    buf = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        chunk = read_once(fd, quiet)
        if not chunk:
            break
        buf += chunk
    return buf


def transfer(src, dst, payload, timeout):
    """Write payload to src while reading dst; return what dst received."""
    set_nonblock(src)
    set_nonblock(dst)
    sent = 0
    got = bytearray()
    deadline = time.monotonic() + timeout
    p = select.poll()
    while len(got) < len(payload):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure("transfer stalled: %d of %d bytes sent, %d received"
                          % (sent, len(payload), len(got)))
        p = select.poll()
        p.register(dst, select.POLLIN)
        if sent < len(payload):
            p.register(src, select.POLLOUT)
        for fd, ev in p.poll(int(min(left, 1.0) * 1000)):
            if fd == src and sent < len(payload) and ev & select.POLLOUT:
                try:
                    sent += os.write(src, payload[sent:sent + 4096])
                except BlockingIOError:
                    pass
            elif fd == dst:
                try:
                    chunk = os.read(dst, 65536)
                except BlockingIOError:
                    continue
                if chunk == b"":
                    raise Failure("unexpected EOF after %d bytes" % len(got))
                got += chunk
    return bytes(got)


def push_modules(fd, names=("ptem", "ldterm")):
    """I_PUSH each module (never taking a controlling terminal by accident)."""
    req = I_PUSH_NOCTTY if os.getsid(0) == os.getpid() else I_PUSH
    for name in names:
        fcntl.ioctl(fd, req, name.encode() + b"\0")


def find_module(fd, name):
    return fcntl.ioctl(fd, I_FIND, name.encode() + b"\0")


def isptm(fd):
    buf = bytearray(struct.pack(STRIOCTL, ISPTM, 0, 0, 0))
    return fcntl.ioctl(fd, I_STR, buf, True)


def winsize(fd, value=None):
    if value is None:
        return struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", *value))
    return value


# --------------------------------------------------------------------------
# Per-check context: everything opened is closed, every child reaped.
# --------------------------------------------------------------------------
class Ctx:
    def __init__(self, opts, libc, expect):
        self.opts = opts
        self.libc = libc
        self.expect = expect
        self.fds = []
        self.pids = []

    def need(self, key):
        """Expectation for this platform, or Skip if none is recorded."""
        if self.expect is None:
            raise Skip("no expectations recorded for %s" % SYSNAME)
        return self.expect[key]

    def track(self, fd):
        self.fds.append(fd)
        return fd

    def close(self, fd):
        if fd in self.fds:
            self.fds.remove(fd)
        os.close(fd)

    def open_manager(self):
        return self.track(os.open(self.opts.clone_device,
                                  os.O_RDWR | os.O_NOCTTY))

    def new_pty(self, unlock=True, open_subsidiary=True, raw=True):
        m = self.open_manager()
        self.libc.grantpt(m)
        if unlock:
            self.libc.unlockpt(m)
        name = self.libc.ptsname(m)
        s = None
        if open_subsidiary:
            s = self.track(os.open(name, os.O_RDWR | os.O_NOCTTY))
            if raw and not self.need("bare_subsidiary_is_raw"):
                tty.setraw(s)
        return m, s, name

    def cooked_pty(self):
        """A pty with a line discipline: ptem+ldterm pushed where needed."""
        m, s, name = self.new_pty(raw=False)
        if self.need("cooked_needs_push"):
            push_modules(s)
        return m, s, name

    def cleanup(self):
        for fd in list(self.fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
        self.pids = []


CHECKS = []


def check(name, timeout=30.0, streams_only=False):
    def register(fn):
        CHECKS.append((name, fn, timeout, streams_only))
        return fn
    return register


def expect_errno(fn, wanted, what):
    try:
        fn()
    except OSError as exc:
        if exc.errno != wanted:
            raise Failure("%s failed with %s, expected %s"
                          % (what, errname(exc.errno), errname(wanted)))
        return
    raise Failure("%s succeeded, expected %s" % (what, errname(wanted)))


# --------------------------------------------------------------------------
# The checks.
# --------------------------------------------------------------------------
@check("open-clone-device")
def c_open(ctx):
    m = ctx.open_manager()
    st = os.fstat(m)
    if not stat.S_ISCHR(st.st_mode):
        raise Failure("%s is not a character device" % ctx.opts.clone_device)
    m2 = ctx.open_manager()
    st2 = os.fstat(m2)
    if st.st_rdev == st2.st_rdev and ctx.need("streams"):
        # Each clone open of ptm is a new minor on illumos.
        raise Failure("two opens returned the same device %d,%d"
                      % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    return "%s opens as a character device (%d,%d)" % (
        ctx.opts.clone_device, os.major(st.st_rdev), os.minor(st.st_rdev))


@check("isptm", streams_only=True)
def c_isptm(ctx):
    m, s, name = ctx.new_pty()
    rc = isptm(m)
    if rc != 0:
        raise Failure("I_STR ISPTM on the manager returned %r" % rc)
    # On a subsidiary the ioctl travels to the manager's stream head, which
    # NAKs it: EINVAL.
    expect_errno(lambda: isptm(s), errno.EINVAL, "I_STR ISPTM on the subsidiary")
    return "I_STR ISPTM is 0 on the manager, EINVAL on %s" % name


@check("grantpt-unlockpt-ptsname")
def c_names(ctx):
    m = ctx.open_manager()
    ctx.libc.grantpt(m)
    ctx.libc.unlockpt(m)
    name = ctx.libc.ptsname(m)
    mo = re.match(r"^/dev/pts/(\d+)$", name)
    if not mo:
        raise Failure("ptsname returned %r" % name)
    if ctx.libc.ptsname(m) != name:
        raise Failure("ptsname is not stable")
    number = int(mo.group(1))
    st = os.stat(name)
    if not stat.S_ISCHR(st.st_mode):
        raise Failure("%s is not a character device" % name)
    if os.minor(st.st_rdev) != number:
        raise Failure("%s has minor %d" % (name, os.minor(st.st_rdev)))
    if ctx.need("streams"):
        mminor = os.minor(os.fstat(m).st_rdev)
        if mminor != number:
            raise Failure("manager minor %d does not match %s" % (mminor, name))
    return "%s, minor %d" % (name, number)


@check("locked-subsidiary")
def c_locked(ctx):
    wanted = ctx.need("locked_open_errno")
    m, _, name = ctx.new_pty(unlock=False, open_subsidiary=False)
    try:
        fd = os.open(name, os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno != wanted:
            raise Failure("open before unlockpt failed with %s, expected %s"
                          % (errname(exc.errno), errname(wanted)))
    else:
        ctx.track(fd)
        raise Failure("open of %s succeeded before unlockpt" % name)
    ctx.libc.unlockpt(m)
    ctx.track(os.open(name, os.O_RDWR | os.O_NOCTTY))
    return "open before unlockpt: %s; after unlockpt: ok" % errname(wanted)


@check("subsidiary-owner-mode")
def c_owner(ctx):
    _, _, name = ctx.new_pty(open_subsidiary=False)
    st = os.stat(name)
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.getuid():
        raise Failure("%s is owned by uid %d, expected %d"
                      % (name, st.st_uid, os.getuid()))
    if mode not in (0o620, 0o600):
        raise Failure("%s has mode %04o, expected 0620 or 0600" % (name, mode))
    return "%s uid %d gid %d mode %04o" % (name, st.st_uid, st.st_gid, mode)


@check("data-raw")
def c_data_raw(ctx):
    m, s, name = ctx.new_pty()
    payload = bytes(range(256)) * 256
    got = transfer(m, s, payload, 20)
    if got != payload:
        raise Failure("manager->subsidiary corrupted (%d bytes received)" % len(got))
    back = payload[::-1]
    got = transfer(s, m, back, 20)
    if got != back:
        raise Failure("subsidiary->manager corrupted (%d bytes received)" % len(got))
    how = "bare pts" if ctx.need("bare_subsidiary_is_raw") else "raw termios"
    return "%d bytes each way, verbatim (%s)" % (len(payload), how)


@check("zero-length-write")
def c_zero(ctx):
    mode = ctx.need("zero_length_write")
    m, s, _ = ctx.new_pty()
    if os.write(m, b"") != 0:
        raise Failure("zero-byte write did not return 0")
    if mode == "delivered":
        chunk = read_once(s, 5)
        if chunk is None:
            raise Failure("subsidiary never became readable")
        if chunk != b"":
            raise Failure("subsidiary read %r, expected a zero-length read" % chunk)
        os.write(m, b"x")
        if read_until(s, b"x", 5) != b"x":
            raise Failure("stream unusable after the zero-length message")
        return "one zero-length read on the subsidiary, then data flows"
    if readable(s, 0.3):
        raise Failure("subsidiary became readable after a zero-byte write")
    return "zero-byte write is dropped (Linux)"


@check("reopen-subsidiary")
def c_reopen(ctx):
    m, s, name = ctx.new_pty()
    s2 = ctx.track(os.open(name, os.O_RDWR | os.O_NOCTTY))
    os.write(s2, b"via-second-open")
    got = read_until(m, b"via-second-open", 5)
    if b"via-second-open" not in got:
        raise Failure("manager read %r from the second open" % got)
    ctx.close(s2)
    os.write(m, b"still-open")
    got = read_until(s, b"still-open", 5)
    if got != b"still-open":
        raise Failure("first open read %r after the second closed" % got)
    return "second open of %s shares the stream; closing it keeps the first" % name


@check("push-ptem-ldterm", streams_only=True)
def c_push(ctx):
    m, s, _ = ctx.new_pty(raw=False)
    push_modules(s)
    for mod in ("ptem", "ldterm"):
        if find_module(s, mod) != 1:
            raise Failure("I_FIND %s after I_PUSH returned 0" % mod)
    termios.tcgetattr(s)
    return "ptem and ldterm pushed and found; tcgetattr works"


@check("isatty")
def c_isatty(ctx):
    m, s, _ = ctx.cooked_pty()
    if not os.isatty(s):
        raise Failure("isatty(subsidiary) is false")
    want = ctx.need("manager_isatty")
    if os.isatty(m) != want:
        raise Failure("isatty(manager) is %s, expected %s" % (os.isatty(m), want))
    return "isatty(subsidiary)=1, isatty(manager)=%d" % int(want)


@check("data-cooked")
def c_cooked(ctx):
    m, s, _ = ctx.cooked_pty()
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(s)
    iflag |= termios.ICRNL
    oflag |= termios.OPOST | termios.ONLCR
    lflag |= termios.ICANON | termios.ECHO | termios.ISIG
    termios.tcsetattr(s, termios.TCSANOW,
                      [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])
    os.write(m, b"ping\r")
    line = read_until(s, b"\n", 5)
    if line != b"ping\n":
        raise Failure("subsidiary read %r, expected b'ping\\n'" % line)
    echo = read_until(m, b"ping\r\n", 5)
    if b"ping\r\n" not in echo:
        raise Failure("manager saw echo %r, expected b'ping\\r\\n'" % echo)
    os.write(s, b"pong\n")
    out = read_until(m, b"pong\r\n", 5)
    if b"pong\r\n" not in out:
        raise Failure("manager read %r, expected b'pong\\r\\n'" % out)
    return "canonical input with ICRNL, echo, ONLCR output"


@check("winsize")
def c_winsize(ctx):
    m, s, _ = ctx.cooked_pty()
    want = (33, 101, 640, 480)
    winsize(m, want)
    got = winsize(s)
    if got != want:
        raise Failure("TIOCGWINSZ on the subsidiary gave %r, expected %r"
                      % (got, want))
    got = winsize(m)
    if got != want:
        raise Failure("TIOCGWINSZ on the manager gave %r, expected %r"
                      % (got, want))
    via = " through ptem" if ctx.need("cooked_needs_push") else ""
    return "TIOCSWINSZ on the manager is seen on both sides%s" % via


@check("winsize-without-ptem", streams_only=True)
def c_winsize_bare(ctx):
    wanted = ctx.need("winsize_without_ptem")
    m, s, _ = ctx.new_pty()
    expect_errno(lambda: winsize(m, (24, 80, 0, 0)), wanted,
                 "TIOCSWINSZ on the manager of a bare pty")
    return "TIOCSWINSZ is NAKed (%s) when no ptem is pushed" % errname(wanted)


@check("flush-input")
def c_flush_in(ctx):
    m, s, _ = ctx.cooked_pty()
    tty.setraw(s)
    os.write(m, b"stale-input")
    if not readable(s, 5):
        raise Failure("data never reached the subsidiary")
    termios.tcflush(s, termios.TCIFLUSH)
    if readable(s, 0.3):
        raise Failure("subsidiary still readable after tcflush(TCIFLUSH): %r"
                      % read_quiet(s))
    os.write(m, b"fresh")
    got = read_quiet(s)
    if got != b"fresh":
        raise Failure("subsidiary read %r after the flush, expected b'fresh'" % got)
    return "tcflush(subsidiary, TCIFLUSH) discards pending input"


@check("flush-output")
def c_flush_out(ctx):
    side, which = ctx.need("pending_output_flush")
    m, s, _ = ctx.cooked_pty()
    tty.setraw(s)
    os.write(s, b"abcdef")
    head = read_exact(m, 2, 5)
    if head != b"ab":
        raise Failure("manager read %r, expected b'ab'" % head)
    termios.tcflush(s if side == "subsidiary" else m, getattr(termios, which))
    os.write(s, b"XYZ")
    got = read_quiet(m)
    if got != b"XYZ":
        raise Failure("manager read %r after tcflush(%s, %s), expected b'XYZ'"
                      % (got, side, which))
    return "tcflush(%s, %s) discards data pending for the manager" % (side, which)


@check("manager-close-hangup")
def c_hangup(ctx):
    keeps = ctx.need("hangup_keeps_buffered")
    m, s, _ = ctx.new_pty()
    os.write(m, b"buffered")
    if not readable(s, 5):
        raise Failure("data never reached the subsidiary")
    ctx.close(m)
    data = b""
    deadline = time.monotonic() + 5
    while True:
        if time.monotonic() > deadline:
            raise Failure("subsidiary never read EOF after the manager closed")
        try:
            chunk = read_once(s, 1)
        except OSError as exc:
            raise Failure("subsidiary read failed with %s after %r, expected EOF"
                          % (errname(exc.errno), data))
        if chunk is None:
            continue
        if chunk == b"":
            break
        data += chunk
    if keeps and data != b"buffered":
        raise Failure("subsidiary drained %r before EOF, expected b'buffered'" % data)
    if keeps is False and data:
        raise Failure("subsidiary read %r; Linux discards input on hangup" % data)
    expect_errno(lambda: os.write(s, b"x"), errno.EIO,
                 "write on the subsidiary after hangup")
    drained = "drained %r then EOF" % data if data else "EOF at once"
    return "subsidiary %s; write gives EIO" % drained


@check("subsidiary-close-eof")
def c_sub_close(ctx):
    mode = ctx.need("after_subsidiary_close")
    m, s, _ = ctx.new_pty()
    os.write(s, b"last-words")
    ctx.close(s)
    got = read_until(m, b"last-words", 5)
    if got != b"last-words":
        raise Failure("manager read %r, expected b'last-words'" % got)
    if mode == "eof-once":
        chunk = read_once(m, 5)
        if chunk != b"":
            raise Failure("manager read %r after the last subsidiary close, "
                          "expected one zero-length read" % chunk)
        set_nonblock(m)
        try:
            more = os.read(m, 100)
        except BlockingIOError:
            return "data, then exactly one zero-length read, then EAGAIN"
        raise Failure("second read after the close returned %r, expected EAGAIN"
                      % more)
    try:
        chunk = read_once(m, 5)
    except OSError as exc:
        if exc.errno == errno.EIO:
            return "data, then EIO (Linux)"
        raise Failure("manager read failed with %s, expected EIO"
                      % errname(exc.errno))
    raise Failure("manager read %r after the subsidiary closed, expected EIO"
                  % chunk)


@check("many-ptys", timeout=180.0)
def c_many(ctx):
    count = ctx.opts.count
    pairs = []
    for _ in range(count):
        m, s, name = ctx.new_pty()
        pairs.append((m, s, name))
    names = [p[2] for p in pairs]
    if len(set(names)) != count:
        raise Failure("ptsname returned duplicates among %d ptys" % count)
    for i, (m, s, name) in enumerate(pairs):
        token = b"down-%d." % i
        os.write(m, token)
        if read_until(s, token, 5) != token:
            raise Failure("%s: manager->subsidiary data lost" % name)
        token = b"up-%d." % i
        os.write(s, token)
        if read_until(m, token, 5) != token:
            raise Failure("%s: subsidiary->manager data lost" % name)
    for m, s, _ in pairs:
        ctx.close(s)
        ctx.close(m)
    return "%d ptys open at once (%s .. %s), data both ways on each" % (
        count, names[0], names[-1])


@check("pty-node-removed")
def c_node_gone(ctx):
    m, s, name = ctx.new_pty()
    ctx.close(s)
    ctx.close(m)
    # Poll often: once gone, the number may be handed to another process's
    # new pty at any moment, and the node would come back.
    deadline = time.monotonic() + 3
    while os.path.exists(name):
        if time.monotonic() > deadline:
            raise Failure("%s still exists after both sides closed" % name)
        time.sleep(0.01)
    return "%s disappears after both sides close" % name


@check("session-ctty", timeout=60.0)
def c_session(ctx):
    m = ctx.open_manager()
    ctx.libc.grantpt(m)
    ctx.libc.unlockpt(m)
    name = ctx.libc.ptsname(m)
    streams = ctx.need("streams")
    pid = os.fork()
    if pid == 0:                                    # child
        code = 1
        try:
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            os.setsid()
            fd = os.open(name, os.O_RDWR)           # no O_NOCTTY: take a ctty
            if streams:
                push_modules(fd)
            try:
                os.tcgetpgrp(fd)
            except OSError:
                code = 3
                fcntl.ioctl(fd, TIOCSCTTY, 0)
                os.tcgetpgrp(fd)
            for target in (0, 1, 2):
                os.dup2(fd, target)
            os.closerange(3, 1024)
            code = 4
            os.execv("/bin/sh", ["/bin/sh", "-c", "echo hello-$((6*7))"])
        finally:
            os._exit(code)
    ctx.pids.append(pid)
    out = read_until(m, b"hello-42", 20)
    status = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            status = st
            ctx.pids.remove(pid)
            break
        time.sleep(0.05)
    if b"hello-42" not in out:
        raise Failure("manager read %r, expected b'hello-42' (child status %r)"
                      % (out, status))
    if status is None:
        raise Failure("the shell did not exit")
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise Failure("child exit status %r (3: no ctty, 4: exec failed)" % status)
    return "/bin/sh with %s as controlling terminal printed hello-42" % name


# --------------------------------------------------------------------------
# Runner.
# --------------------------------------------------------------------------
def run_check(name, fn, timeout, streams_only, opts, libc, expect):
    if streams_only and not (expect and expect["streams"]):
        return "SKIP", ("illumos STREAMS only (I_STR/I_PUSH do not exist on %s)"
                        % SYSNAME)
    ctx = Ctx(opts, libc, expect)
    signal.setitimer(signal.ITIMER_REAL, timeout * opts.timeout_scale)
    try:
        detail = fn(ctx)
        result = ("PASS", detail)
    except Skip as exc:
        result = ("SKIP", str(exc))
    except Failure as exc:
        result = ("FAIL", str(exc))
    except CheckTimeout:
        result = ("FAIL", "timed out after %gs" % (timeout * opts.timeout_scale))
    except OSError as exc:
        result = ("FAIL", "unexpected error: %s" % exc)
    except Exception as exc:                        # a bug in the check itself
        result = ("FAIL", "check raised %s: %s" % (type(exc).__name__, exc))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    # Cleanup gets its own budget: close() of a STREAMS device can wait for
    # queued data (up to 15 s on illumos).
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        ctx.cleanup()
    except CheckTimeout:
        if result[0] != "FAIL":
            result = ("FAIL", "closing the ptys timed out")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return result


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clone-device", default="/dev/ptmx",
                    help="manager clone device to open (default /dev/ptmx)")
    ap.add_argument("--count", type=int, default=64,
                    help="ptys to open at once in many-ptys (default 64)")
    ap.add_argument("--only", metavar="REGEX",
                    help="run only the checks whose name matches REGEX")
    ap.add_argument("--timeout-scale", type=float, default=1.0,
                    help="multiply every check's time budget (slow VMs)")
    ap.add_argument("--list", action="store_true", help="list the checks")
    ap.add_argument("--label", default="",
                    help="text to print in the header line (e.g. which driver)")
    return ap.parse_args(argv)


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.list:
        for name, _, _, streams_only in CHECKS:
            print(name + ("  (illumos only)" if streams_only else ""))
        return 0
    if opts.count < 1:
        print("pty_acceptance: --count must be at least 1", file=sys.stderr)
        return 2
    try:
        pattern = re.compile(opts.only) if opts.only else None
    except re.error as exc:
        print("pty_acceptance: bad --only pattern: %s" % exc, file=sys.stderr)
        return 2
    expect = PLATFORMS.get(SYSNAME)
    signal.signal(signal.SIGALRM, _on_alarm)
    # A hangup on a pty must never kill the test itself.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    where = expect["label"] if expect else "no recorded"
    print("pty_acceptance: %s%s, %s expectations, clone device %s"
          % (SYSNAME, " (%s)" % opts.label if opts.label else "", where,
             opts.clone_device))
    sys.stdout.flush()
    try:
        libc = Libc()
    except RuntimeError as exc:
        print("FAIL libc: %s" % exc)
        print("0 passed, 1 failed, 0 skipped")
        return 1
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for name, fn, timeout, streams_only in CHECKS:
        if pattern and not pattern.search(name):
            continue
        status, detail = run_check(name, fn, timeout, streams_only, opts,
                                   libc, expect)
        counts[status] += 1
        print("%s %s: %s" % (status, name, detail))
        sys.stdout.flush()
    print("%d passed, %d failed, %d skipped"
          % (counts["PASS"], counts["FAIL"], counts["SKIP"]))
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
