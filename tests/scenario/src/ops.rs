//! # An operation model for differential testing
//!
//! [`Op`] is one step a process (or the test harness standing in for the
//! kernel around it) can take against ptm in a world: opening either end
//! of a pty, the ptm ioctls with good and bad payloads, data both ways,
//! flushes, raw messages sent down a stream, closes, credential and zone
//! changes, and allocation faults. [`run`] interprets a sequence of them in
//! one world ([`Pty`]) and returns a [`Trace`]: every call with its result,
//! every message each stream head received ([`Pty::trace_lines`]), the
//! final state of every pty and queue, what leaked and any anomaly.
//!
//! Ops never name a file descriptor or a minor number directly. They refer
//! to what is open *symbolically* ([`FdRef`], [`SubTarget`]): "the newest
//! fd", "the second newest manager", "the pty of the newest manager". So any
//! sequence whatsoever is valid to run, a shrinker may delete any op from a
//! failing sequence and get another valid one, and the same sequence means
//! the same thing for every driver variant.
//!
//! [`decode`] turns arbitrary bytes into ops (4 bytes per op, every byte
//! string is valid): both the proptest generator
//! ([`crate::scenarios::differential`]) and the cargo-fuzz target
//! (`fuzz/fuzz_targets/differential.rs`) use it, so the two explore the
//! same space.
//!
//! [`differential`] runs one sequence against every variant of a backend
//! and compares each trace with the C oracle's by the rule in [`compare`].
//!
//! ## The one deliberate difference: OWNERPT on a pty whose zone is gone
//!
//! ZONEPT accepts any zone id up to `MAX_ZONEID`, running or not, and a
//! zone can halt after it was set. A later OWNERPT then gets NULL from
//! `zone_find_by_id`: the C ptm passes it to `zone_rele` (a panic on
//! illumos; the model world records it and goes on, so the C driver ACKs and
//! sets the owner), the Rust ptm NAKs it with EINVAL. From that point on the
//! two ptys hold different owners, so nothing after it can be compared line
//! by line any more.
//!
//! The interpreter therefore detects that case *before* running the op (the
//! target is a manager, the payload is a whole `pt_own_t`, and the pty's
//! zone, read back with [`Pty::pt_owner`], is not one the interpreter knows
//! to be running) and, by [`ZoneGone`]:
//!
//! * [`ZoneGone::Skip`] (the general generator): records the op as skipped
//!   and does not run it. Every variant stays in step, so zone removal,
//!   ZONEPT to zones that do not exist and zone changes stay in the general
//!   random sequences and everything else in them is still compared exactly.
//! * [`ZoneGone::RunAndStop`] (a dedicated property): runs the op, classifies
//!   what happened — [`ZoneGoneOutcome::CNullZoneRele`] when the trace shows
//!   `zone_rele(NULL)` (the C behaviour), [`ZoneGoneOutcome::RustEinval`]
//!   when ptm NAKed it with the documented errno and no NULL zone was
//!   touched (the Rust behaviour) — and stops interpreting: the remaining
//!   ops are not run, the final pty dump (which would show the different
//!   owners) is left out; the closes at the end and the leak check still
//!   are compared. Any other outcome (the stream head refused the ioctl,
//!   ENOMEM before the zone lookup) diverges nothing and is an ordinary op.
//!
//! Detecting it before the op (rather than by spotting the NULL `zone_rele`
//! in the C trace afterwards) keeps the decision the same for every variant,
//! including ones that behave like Rust; [`compare`] then checks the oracle
//! shows the C behaviour and every other variant one of the two documented
//! ones.

use std::collections::BTreeSet;
use std::fmt;

use crate::scenarios::common::own;
use crate::{
    Backend, Cred, Errno, FLUSHR, FLUSHRW, FLUSHW, Fd, ISPTM, IocReply, Leaks, O_NDELAY, O_NOCTTY,
    O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, OWNERPT, PTSSTTY, Pty, TCGETS, TIOCGWINSZ, TIOCSWINSZ,
    TTY_GID, TraceEvent, UNLKPT, Variant, ZONEPT,
};

/// How many managers may be open at once (opens beyond it are skipped).
pub const MAX_PTYS: usize = 4;
/// How many fds may be open at once (opens beyond it are skipped).
pub const MAX_FDS: usize = 10;
/// Bytes per op in [`decode`].
pub const OP_BYTES: usize = 4;

/// An open file descriptor, named by position among what is open.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FdRef {
    /// The `n`-th newest open fd (0 = the newest), modulo how many are open.
    Back(u8),
    /// The `n`-th newest open manager fd, modulo how many are open.
    Manager(u8),
}

/// Which subsidiary to open.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SubTarget {
    /// The pty of the `n`-th newest open manager (minor 1 if none is open).
    Pty(u8),
    /// A raw minor number: 0 (the `/dev/pts/0` node, not a pty of ours),
    /// minors of ptys that were closed or never allocated, ...
    Minor(u8),
}

/// The payload of a ZONEPT.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ZoneArg {
    /// A `zoneid_t` (possibly out of range or of a zone not running).
    Id(i32),
    /// The same, split over two message blocks.
    Split(i32),
    /// The id followed by 4 more bytes.
    Long(i32),
    /// Two bytes.
    Short,
    /// No payload at all.
    Empty,
}

/// The payload of an OWNERPT.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OwnerArg {
    /// A `pt_own_t { uid, gid }`.
    Ids(u32, u32),
    /// The same, split over two message blocks (3 + 5 bytes).
    Split(u32, u32),
    /// Four bytes.
    Short,
    /// No payload at all.
    Empty,
}

impl OwnerArg {
    fn whole(self) -> bool {
        matches!(self, OwnerArg::Ids(..) | OwnerArg::Split(..))
    }
}

/// One step of a scenario.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Op {
    /// `open("/dev/ptmx")` with the given extra flags.
    OpenManager {
        noctty: bool,
        nonblock: bool,
        ndelay: bool,
    },
    /// `open("/dev/ptmx")`, `unlockpt`, then `open` of its subsidiary, both
    /// `O_RDWR` (plus `O_NONBLOCK` when `nonblock`).
    OpenPair {
        nonblock: bool,
    },
    /// `open("/dev/pts/N")` (or, with `node`, a device node straight to
    /// `ptsopen`, bypassing `/dev/pts` visibility and permissions).
    OpenSubsidiary {
        to: SubTarget,
        access: i32,
        nonblock: bool,
        node: bool,
    },
    Unlkpt(FdRef),
    Isptm(FdRef),
    Ptsstty(FdRef),
    Zonept(FdRef, ZoneArg),
    Ownerpt(FdRef, OwnerArg),
    /// libc `grantpt` (ISPTM, then OWNERPT {uid, tty}).
    Grantpt(FdRef),
    /// An `I_STR` ioctl ptm does not know, with `len` payload bytes.
    UnknownIoctl {
        fd: FdRef,
        cmd: i32,
        len: usize,
    },
    /// A transparent tty ioctl (`TCGETS`, `TIOCGWINSZ`, `TIOCSWINSZ`).
    TtyIoctl {
        fd: FdRef,
        cmd: i32,
    },
    Write {
        fd: FdRef,
        len: usize,
    },
    WriteBand {
        fd: FdRef,
        band: u8,
        len: usize,
    },
    Read {
        fd: FdRef,
        len: usize,
    },
    /// `I_FLUSH` (flags may be invalid: 0 or other bits).
    Flush {
        fd: FdRef,
        flags: i32,
    },
    /// `I_FLUSHBAND`.
    FlushBand {
        fd: FdRef,
        band: u8,
        flags: i32,
    },
    /// A raw message of type `mtype` sent down from the stream head, as a
    /// module above the driver would (M_READ, M_PROTO, M_FLUSH, ...).
    Inject {
        fd: FdRef,
        mtype: u8,
        band: u8,
        data: Vec<u8>,
    },
    Poll(FdRef),
    Close(FdRef),
    SetCred(Cred),
    /// Moves the process into zone `z`.
    SetZone(i32),
    /// Boots zone `z` (with an ephemeral id range for zone 3).
    AddZone(i32),
    /// Halts zone `z` (never the global zone).
    RemoveZone(i32),
    /// The `n`-th `allocb` from now fails.
    FailNthAllocb(u8),
    /// The next `pt_ttys_alloc` fails.
    FailPtTtysAlloc,
}

// ---------------------------------------------------------------------------
// Value tables (shared by the decoder; chosen around the boundaries that
// matter: ptm's write queue hiwat 512, pts's chunk size and head hiwat 2048,
// MAX_ZONEID 9999, the 2^31 uid limit, the ephemeral range of zone 3).
// ---------------------------------------------------------------------------

/// Write sizes.
pub const WRITE_LENS: [usize; 24] = [
    0, 1, 2, 3, 10, 64, 100, 255, 256, 511, 512, 513, 1000, 1023, 1024, 1025, 2047, 2048, 2049,
    2560, 4095, 4096, 4097, 8192,
];
/// Read sizes.
pub const READ_LENS: [usize; 13] = [0, 1, 2, 5, 10, 64, 511, 512, 513, 1024, 2048, 4096, 65536];
/// Zone ids a ZONEPT may carry.
pub const ZONE_IDS: [i32; 9] = [0, 3, 5, 7, 9999, -1, 10_000, i32::MAX, i32::MIN];
/// Zones that can be booted, halted or entered (the global zone 0 always
/// runs).
pub const ZONES: [i32; 3] = [3, 5, 7];
/// The ephemeral id range of zone 3.
pub const ZONE3_EPHEMERAL: (u32, u32) = (0x9000_0000, 0x9000_00ff);
/// Ids an OWNERPT may carry.
pub const OWNER_IDS: [u32; 10] = [
    0,
    7,
    1000,
    501,
    60001,
    0x7fff_ffff,
    0x8000_0000,
    0x8000_0001,
    0x9000_0005,
    0xffff_ffff,
];
/// Credentials.
pub const CREDS: [Cred; 5] = [
    Cred::root(),
    Cred::user(1000, 10),
    Cred::user(1000, 7),
    Cred::user(501, 20),
    Cred {
        uid: 1000,
        gid: 10,
        privileged: true,
    },
];
/// Commands ptm does not handle itself.
pub const UNKNOWN_CMDS: [i32; 5] = [0x1234, TCGETS, TIOCGWINSZ, 0x5001, 0];
/// Payload sizes of unknown ioctls.
pub const IOCTL_LENS: [usize; 5] = [0, 1, 4, 64, 1024];
/// Flush flag words (0, FLUSHBAND alone and 8 are invalid).
pub const FLUSH_FLAGS: [i32; 6] = [FLUSHR, FLUSHW, FLUSHRW, 0, 4, 8];
/// Message types [`Op::Inject`] sends (M_IOCTL, M_IOCACK/NAK, M_COPYIN/OUT
/// and M_SETOPTS are left out: a module above ptm never sends them down with
/// arbitrary contents, and both drivers read them as structures).
pub const INJECT_TYPES: [u8; 16] = [
    0x00, // M_DATA
    0x01, // M_PROTO
    0x08, // M_BREAK
    0x0b, // M_SIG
    0x0c, // M_DELAY
    0x0d, // M_CTL
    0x83, // M_PCPROTO
    0x84, // M_PCSIG
    0x85, // M_READ
    0x86, // M_FLUSH
    0x87, // M_STOP
    0x88, // M_START
    0x89, // M_HANGUP
    0x8a, // M_ERROR
    0x8f, // M_STOPI
    0x90, // M_STARTI
];
const M_FLUSH: u8 = 0x86;
const M_ERROR: u8 = 0x8a;
const M_IOCACK: u8 = 0x81;
const M_IOCNAK: u8 = 0x82;

fn pick<T: Copy>(t: &[T], b: u8) -> T {
    t[b as usize % t.len()]
}

/// The op kinds and their weights in [`decode`]: how often each appears in
/// random sequences.
const KINDS: [(u8, u32); 25] = [
    (0, 5),  // OpenManager
    (1, 7),  // OpenPair
    (2, 5),  // OpenSubsidiary
    (3, 4),  // Unlkpt
    (4, 2),  // Isptm
    (5, 2),  // Ptsstty
    (6, 3),  // Zonept
    (7, 3),  // Ownerpt
    (8, 1),  // Grantpt
    (9, 2),  // UnknownIoctl
    (10, 1), // TtyIoctl
    (11, 9), // Write
    (12, 3), // WriteBand
    (13, 9), // Read
    (14, 3), // Flush
    (15, 2), // FlushBand
    (16, 5), // Inject
    (17, 1), // Poll
    (18, 5), // Close
    (19, 2), // SetCred
    (20, 1), // SetZone
    (21, 1), // AddZone
    (22, 1), // RemoveZone
    (23, 2), // FailNthAllocb
    (24, 1), // FailPtTtysAlloc
];

fn fdref(b: u8) -> FdRef {
    if b >= 0xc0 {
        FdRef::Manager(b & 0x3f)
    } else {
        FdRef::Back(b)
    }
}

/// The op kind byte 0 picks, by the weights of `KINDS`.
fn kind_of(b0: u8) -> u8 {
    let total: u32 = KINDS.iter().map(|k| k.1).sum();
    let mut x = (b0 as u32 * total) >> 8;
    for (k, w) in KINDS {
        if x < w {
            return k;
        }
        x -= w;
    }
    0
}

impl Op {
    /// Decodes one op from 4 bytes; every value is valid. Byte 0 picks the
    /// kind (weighted by `KINDS`), the others its operands. All-zero
    /// bytes decode to the plainest op, `OpenManager` with no flags.
    pub fn from_bytes(b: [u8; OP_BYTES]) -> Op {
        let fd = fdref(b[1]);
        let (p, q) = (b[2], b[3]);
        match kind_of(b[0]) {
            0 => Op::OpenManager {
                noctty: p & 1 != 0,
                nonblock: p & 2 != 0,
                ndelay: p & 4 != 0,
            },
            1 => Op::OpenPair {
                nonblock: p & 1 != 0,
            },
            2 => Op::open_subsidiary_from(b[1], p),
            3 => Op::Unlkpt(fd),
            4 => Op::Isptm(fd),
            5 => Op::Ptsstty(fd),
            6 => Op::Zonept(fd, ZoneArg::from_bytes(p, q)),
            7 => Op::Ownerpt(fd, OwnerArg::from_bytes(p, q)),
            8 => Op::Grantpt(fd),
            9 => Op::UnknownIoctl {
                fd,
                cmd: pick(&UNKNOWN_CMDS, p),
                len: pick(&IOCTL_LENS, q),
            },
            10 => Op::TtyIoctl {
                fd,
                cmd: pick(&[TCGETS, TIOCGWINSZ, TIOCSWINSZ], p),
            },
            11 => Op::Write {
                fd,
                len: pick(&WRITE_LENS, p),
            },
            12 => Op::WriteBand {
                fd,
                band: q & 7,
                len: pick(&WRITE_LENS, p),
            },
            13 => Op::Read {
                fd,
                len: pick(&READ_LENS, p),
            },
            14 => Op::Flush {
                fd,
                flags: pick(&FLUSH_FLAGS, p),
            },
            15 => Op::FlushBand {
                fd,
                band: q & 3,
                flags: pick(&FLUSH_FLAGS, p),
            },
            16 => Op::inject_from(fd, p, q),
            17 => Op::Poll(fd),
            18 => Op::Close(fd),
            19 => Op::SetCred(pick(&CREDS, p)),
            20 => Op::SetZone(pick(&[0, 3, 5, 7], p)),
            21 => Op::AddZone(pick(&ZONES, p)),
            22 => Op::RemoveZone(pick(&ZONES, p)),
            23 => Op::FailNthAllocb(1 + p % 6),
            _ => Op::FailPtTtysAlloc,
        }
    }

    /// `OpenSubsidiary` from the target byte `t` and the flags byte `p`.
    fn open_subsidiary_from(t: u8, p: u8) -> Op {
        Op::OpenSubsidiary {
            to: if t & 0x80 == 0 {
                SubTarget::Pty(t & 0x7f)
            } else {
                SubTarget::Minor(t & 7)
            },
            access: pick(&[O_RDWR, O_RDONLY, O_WRONLY, O_RDWR], p >> 2),
            nonblock: p & 1 != 0,
            node: p & 2 != 0,
        }
    }

    /// `Inject` from its operand bytes: the type, then data that means
    /// something for it.
    fn inject_from(fd: FdRef, p: u8, q: u8) -> Op {
        let mtype = pick(&INJECT_TYPES, p);
        let data = match mtype {
            // A flush flag byte (FLUSHR/W/RW, maybe FLUSHBAND) and a
            // band: both drivers read the first byte.
            M_FLUSH => vec![pick(&[1, 2, 3, 5, 6, 7, 0], q), (q >> 4) & 3],
            // One error byte for both sides, or read/write errors
            // (NOERROR = 0xff leaves a side alone).
            M_ERROR => match q % 4 {
                0 => vec![5],
                1 => vec![0],
                2 => vec![0xff, 6],
                _ => vec![5, 0xff],
            },
            _ => vec![b'i'; pick(&[0, 1, 5, 600], q)],
        };
        Op::Inject {
            fd,
            mtype,
            band: if mtype < 0x80 { (q >> 6) & 3 } else { 0 },
            data,
        }
    }
}

impl ZoneArg {
    fn from_bytes(p: u8, q: u8) -> ZoneArg {
        match p % 6 {
            0 | 5 => ZoneArg::Id(pick(&ZONE_IDS, q)),
            1 => ZoneArg::Split(pick(&ZONE_IDS, q)),
            2 => ZoneArg::Long(pick(&ZONE_IDS, q)),
            3 => ZoneArg::Short,
            _ => ZoneArg::Empty,
        }
    }
}

impl OwnerArg {
    fn from_bytes(p: u8, q: u8) -> OwnerArg {
        let (u, g) = (pick(&OWNER_IDS, q), pick(&OWNER_IDS, q / 10));
        match p % 5 {
            0 | 4 => OwnerArg::Ids(u, g),
            1 => OwnerArg::Split(u, g),
            2 => OwnerArg::Short,
            _ => OwnerArg::Empty,
        }
    }
}

/// Decodes a byte string into ops, [`OP_BYTES`] bytes each (a shorter tail
/// is padded with zeros); at most `max_ops` of them.
pub fn decode(data: &[u8], max_ops: usize) -> Vec<Op> {
    data.chunks(OP_BYTES)
        .take(max_ops)
        .map(|c| {
            let mut b = [0u8; OP_BYTES];
            b[..c.len()].copy_from_slice(c);
            Op::from_bytes(b)
        })
        .collect()
}

/// Formats ops one per line, numbered as in a [`Trace`].
pub fn show_ops(ops: &[Op]) -> String {
    let mut s = String::new();
    for (i, op) in ops.iter().enumerate() {
        s += &format!("  #{i:<3} {op:?},\n");
    }
    s
}

// ---------------------------------------------------------------------------
// The interpreter
// ---------------------------------------------------------------------------

/// What [`run`] does with an OWNERPT on a pty whose zone is not running (see
/// the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ZoneGone {
    /// Record it as skipped; do not run it.
    #[default]
    Skip,
    /// Run it, classify the outcome, and stop interpreting.
    RunAndStop,
}

/// How [`run`] interprets.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunConfig {
    pub zone_gone: ZoneGone,
}

/// What a variant did with an OWNERPT on a pty whose zone is gone.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ZoneGoneOutcome {
    /// `zone_rele(NULL)` happened (the C ptm).
    CNullZoneRele,
    /// NAKed with the documented errno (EINVAL; EACCES from `grantpt`), no
    /// NULL zone touched (the Rust ptm).
    RustEinval,
}

/// Where a run met the deliberate difference.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Divergence {
    /// Index of the op.
    pub op: usize,
    /// Index in [`Trace::lines`] of the line standing for the op's outcome.
    pub line: usize,
    pub outcome: ZoneGoneOutcome,
}

/// Everything observable about one run.
#[derive(Clone, Debug)]
pub struct Trace {
    pub variant: &'static str,
    /// Per op: `#i <op>`, then what the world traced during it (calls with
    /// results, messages arriving at stream heads, notes), then
    /// `   -> <result>`; then the final state, the closing of everything
    /// and the leak/anomaly check.
    pub lines: Vec<String>,
    pub divergence: Option<Divergence>,
    /// Whether the world's trace could be cut into one part per op (it
    /// always should; otherwise it is appended whole after the ops).
    pub segmented: bool,
    /// After closing everything.
    pub leaks: Leaks,
    pub anomalies: Vec<String>,
}

impl Trace {
    /// The whole trace as text.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

#[derive(Clone, Copy)]
struct OpenFd {
    fd: Fd,
    manager: bool,
}

/// Interpreter state. The world's own trace is rendered once at the end
/// ([`Pty::trace_lines`]) and cut into one part per op: every [`Pty`]
/// call that is a system call ends with exactly one unindented trace line
/// (its name and result), everything else it traced (messages arriving at
/// stream heads, notes) comes before that line; the interpreter counts
/// the system calls each op made.
struct Interp<'w> {
    w: &'w mut dyn Pty,
    fds: Vec<OpenFd>,
    zones: BTreeSet<i32>,
    /// Our lines; `Part(n)` stands for the world's lines up to the end of
    /// the `n`-th system call.
    out: Vec<Line>,
    /// System calls made so far.
    sys: usize,
    /// Index of the op being run (seeds the data patterns).
    cur: usize,
}

enum Line {
    Text(String),
    /// The world's lines of system calls `from..to`.
    Part(usize, usize),
}

fn res<T: fmt::Debug>(r: &Result<T, Errno>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e})"),
    }
}

impl Interp<'_> {
    /// A world call that is one system call (one trace line of its own).
    fn call<T>(&mut self, f: impl FnOnce(&mut dyn Pty) -> T) -> T {
        self.sys += 1;
        f(&mut *self.w)
    }

    fn text(&mut self, s: impl Into<String>) {
        self.out.push(Line::Text(s.into()));
    }

    fn resolve(&self, r: FdRef) -> Option<OpenFd> {
        match r {
            FdRef::Back(n) => {
                let k = self.fds.len();
                (k > 0).then(|| self.fds[k - 1 - n as usize % k])
            }
            FdRef::Manager(n) => {
                let ms: Vec<OpenFd> = self.fds.iter().copied().filter(|f| f.manager).collect();
                let k = ms.len();
                (k > 0).then(|| ms[k - 1 - n as usize % k])
            }
        }
    }

    fn managers(&self) -> usize {
        self.fds.iter().filter(|f| f.manager).count()
    }

    fn open_manager(&mut self, flags: i32) -> Result<Fd, Errno> {
        let r = self.call(|w| w.open_manager(flags));
        if let Ok(fd) = r {
            self.fds.push(OpenFd { fd, manager: true });
        }
        r
    }

    fn open_sub(&mut self, minor: u32, flags: i32, node: bool) -> Result<Fd, Errno> {
        let r = self.call(|w| {
            if node {
                w.open_subsidiary_node(minor, flags)
            } else {
                w.open_subsidiary(minor, flags)
            }
        });
        if let Ok(fd) = r {
            self.fds.push(OpenFd { fd, manager: false });
        }
        r
    }

    fn minor(&mut self, fd: Fd) -> u32 {
        self.w.minor_of(fd).expect("fstat of an open fd")
    }

    /// The zone of the pty behind manager `f`, when it is not running.
    fn gone_zone(&mut self, f: OpenFd) -> Option<i32> {
        if !f.manager {
            return None;
        }
        let minor = self.minor(f.fd);
        let (zone, _, _) = self.w.pt_owner(minor)?;
        (!self.zones.contains(&zone)).then_some(zone)
    }

    fn ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        self.call(|w| w.ioctl(fd, cmd, payload))
    }

    fn ioctl2(&mut self, fd: Fd, cmd: i32, a: &[u8], b: &[u8]) -> Result<IocReply, Errno> {
        self.call(|w| w.ioctl_blocks(fd, cmd, &[a, b]))
    }

    /// Runs one op; returns the text of its result, or None when an fd was
    /// needed and none is open.
    fn step(&mut self, op: &Op) -> Option<String> {
        match op {
            Op::OpenManager { .. } | Op::OpenPair { .. } | Op::OpenSubsidiary { .. } => {
                self.open_op(op)
            }
            Op::Unlkpt(..)
            | Op::Isptm(..)
            | Op::Ptsstty(..)
            | Op::Zonept(..)
            | Op::Ownerpt(..)
            | Op::Grantpt(..)
            | Op::UnknownIoctl { .. }
            | Op::TtyIoctl { .. } => self.ioctl_op(op),
            Op::Write { .. }
            | Op::WriteBand { .. }
            | Op::Read { .. }
            | Op::Flush { .. }
            | Op::FlushBand { .. }
            | Op::Inject { .. }
            | Op::Poll(..)
            | Op::Close(..) => self.data_op(op),
            Op::SetCred(..)
            | Op::SetZone(..)
            | Op::AddZone(..)
            | Op::RemoveZone(..)
            | Op::FailNthAllocb(..)
            | Op::FailPtTtysAlloc => self.context_op(op),
        }
    }

    /// An open op: a manager, a pair, or a subsidiary (skipped when too
    /// many are open).
    fn open_op(&mut self, op: &Op) -> Option<String> {
        let skipped = || Some(format!("skipped: {MAX_PTYS} ptys or {MAX_FDS} fds open"));
        Some(match op {
            Op::OpenManager {
                noctty,
                nonblock,
                ndelay,
            } => {
                if self.managers() >= MAX_PTYS || self.fds.len() >= MAX_FDS {
                    return skipped();
                }
                let mut flags = O_RDWR;
                if *noctty {
                    flags |= O_NOCTTY;
                }
                if *nonblock {
                    flags |= O_NONBLOCK;
                }
                if *ndelay {
                    flags |= O_NDELAY;
                }
                res(&self.open_manager(flags))
            }
            Op::OpenPair { nonblock } => {
                if self.managers() >= MAX_PTYS || self.fds.len() + 1 >= MAX_FDS {
                    return skipped();
                }
                let flags = O_RDWR | if *nonblock { O_NONBLOCK } else { 0 };
                let m = self.open_manager(flags);
                let mut s = res(&m);
                if let Ok(m) = m {
                    let minor = self.minor(m);
                    let u = self.ioctl(m, UNLKPT, &[]);
                    s += &format!(", unlockpt {}", res(&u));
                    let sub = self.open_sub(minor, flags, false);
                    s += &format!(", subsidiary {}", res(&sub));
                }
                s
            }
            Op::OpenSubsidiary {
                to,
                access,
                nonblock,
                node,
            } => {
                if self.fds.len() >= MAX_FDS {
                    return skipped();
                }
                let minor = match to {
                    SubTarget::Minor(m) => *m as u32,
                    SubTarget::Pty(n) => match self.resolve(FdRef::Manager(*n)) {
                        Some(f) => self.minor(f.fd),
                        None => 1,
                    },
                };
                let flags = access | if *nonblock { O_NONBLOCK } else { 0 };
                format!(
                    "minor {minor}: {}",
                    res(&self.open_sub(minor, flags, *node))
                )
            }
            _ => unreachable!("not an open op: {op:?}"),
        })
    }

    /// An ioctl op on a resolved fd (the ptm ioctls with their payload
    /// shapes, grantpt, an unknown or a tty ioctl).
    fn ioctl_op(&mut self, op: &Op) -> Option<String> {
        Some(match op {
            Op::Unlkpt(r) => res(&self.ioctl(self.resolve(*r)?.fd, UNLKPT, &[])),
            Op::Isptm(r) => res(&self.ioctl(self.resolve(*r)?.fd, ISPTM, &[])),
            Op::Ptsstty(r) => res(&self.ioctl(self.resolve(*r)?.fd, PTSSTTY, &[])),
            Op::Zonept(r, arg) => {
                let fd = self.resolve(*r)?.fd;
                let r = match *arg {
                    ZoneArg::Id(z) => self.ioctl(fd, ZONEPT, &z.to_ne_bytes()),
                    ZoneArg::Split(z) => {
                        let b = z.to_ne_bytes();
                        self.ioctl2(fd, ZONEPT, &b[..2], &b[2..])
                    }
                    ZoneArg::Long(z) => {
                        let mut b = z.to_ne_bytes().to_vec();
                        b.extend_from_slice(&[1, 2, 3, 4]);
                        self.ioctl(fd, ZONEPT, &b)
                    }
                    ZoneArg::Short => self.ioctl(fd, ZONEPT, &[3, 0]),
                    ZoneArg::Empty => self.ioctl(fd, ZONEPT, &[]),
                };
                res(&r)
            }
            Op::Ownerpt(r, arg) => {
                let fd = self.resolve(*r)?.fd;
                let r = match *arg {
                    OwnerArg::Ids(u, g) => self.ioctl(fd, OWNERPT, &own(u, g)),
                    OwnerArg::Split(u, g) => {
                        let b = own(u, g);
                        self.ioctl2(fd, OWNERPT, &b[..3], &b[3..])
                    }
                    OwnerArg::Short => self.ioctl(fd, OWNERPT, &own(1, 1)[..4]),
                    OwnerArg::Empty => self.ioctl(fd, OWNERPT, &[]),
                };
                res(&r)
            }
            Op::Grantpt(r) => {
                // libc grantpt (as Pty::grantpt): ISPTM, then OWNERPT
                // {getuid(), tty}; any OWNERPT failure becomes EACCES.
                let fd = self.resolve(*r)?.fd;
                let r = self.ioctl(fd, ISPTM, &[]).and_then(|_| {
                    let uid = self.w.cred().uid;
                    self.ioctl(fd, OWNERPT, &own(uid, TTY_GID))
                        .map_err(|_| Errno::EACCES)
                });
                res(&r)
            }
            Op::UnknownIoctl { fd, cmd, len } => {
                let fd = self.resolve(*fd)?.fd;
                res(&self.ioctl(fd, *cmd, &vec![b'p'; *len]))
            }
            Op::TtyIoctl { fd, cmd } => {
                let fd = self.resolve(*fd)?.fd;
                let payload: &[u8] = if *cmd == TIOCSWINSZ {
                    &[0, 24, 0, 80, 0, 0, 0, 0]
                } else {
                    &[]
                };
                res(&self.call(|w| w.tty_ioctl(fd, *cmd, payload)))
            }
            _ => unreachable!("not an ioctl op: {op:?}"),
        })
    }

    /// A data, flush, raw-message, poll or close op on a resolved fd.
    fn data_op(&mut self, op: &Op) -> Option<String> {
        Some(match op {
            Op::Write { fd, len } => {
                let fd = self.resolve(*fd)?.fd;
                let data = pattern(self.cur, *len);
                res(&self.call(|w| w.write(fd, &data)))
            }
            Op::WriteBand { fd, band, len } => {
                let fd = self.resolve(*fd)?.fd;
                let data = pattern(self.cur, *len);
                res(&self.call(|w| w.write_band(fd, *band, &data)))
            }
            Op::Read { fd, len } => {
                let fd = self.resolve(*fd)?.fd;
                match self.call(|w| w.read(fd, *len)) {
                    Ok(v) => format!("Ok({} bytes)", v.len()),
                    Err(e) => format!("Err({e})"),
                }
            }
            Op::Flush { fd, flags } => {
                let fd = self.resolve(*fd)?.fd;
                res(&self.call(|w| w.flush(fd, *flags)))
            }
            Op::FlushBand { fd, band, flags } => {
                let fd = self.resolve(*fd)?.fd;
                res(&self.call(|w| w.flush_band(fd, *band, *flags)))
            }
            Op::Inject {
                fd,
                mtype,
                band,
                data,
            } => {
                let fd = self.resolve(*fd)?.fd;
                res(&self.call(|w| w.inject_down(fd, *mtype, *band, data)))
            }
            Op::Poll(r) => {
                let fd = self.resolve(*r)?.fd;
                res(&self.call(|w| w.poll(fd)))
            }
            Op::Close(r) => {
                let f = self.resolve(*r)?;
                self.fds.retain(|o| o.fd != f.fd);
                res(&self.call(|w| w.close(f.fd)))
            }
            _ => unreachable!("not an data op: {op:?}"),
        })
    }

    /// A change of the process's context or an injected fault.
    fn context_op(&mut self, op: &Op) -> Option<String> {
        Some(match op {
            Op::SetCred(c) => {
                self.w.set_cred(*c);
                "ok".into()
            }
            Op::SetZone(z) => {
                self.w.set_zone(*z);
                "ok".into()
            }
            Op::AddZone(z) => {
                let eph = (*z == 3).then_some(ZONE3_EPHEMERAL);
                self.w.add_zone(*z, eph);
                self.zones.insert(*z);
                "ok".into()
            }
            Op::RemoveZone(z) => {
                if *z != 0 {
                    self.w.remove_zone(*z);
                    self.zones.remove(z);
                }
                "ok".into()
            }
            Op::FailNthAllocb(n) => {
                self.w.fail_nth_allocb(*n as u64);
                "ok".into()
            }
            Op::FailPtTtysAlloc => {
                self.w.fail_next_pt_ttys_alloc();
                "ok".into()
            }
            _ => unreachable!("not an context op: {op:?}"),
        })
    }

    /// Runs `op` and classifies it as the documented difference, or returns
    /// its result text when it is an ordinary op after all.
    fn run_zone_gone(&mut self, op: &Op) -> Result<ZoneGoneOutcome, String> {
        let sys0 = self.sys;
        let reles0 = self.w.null_zone_reles();
        let result = self.step(op).unwrap_or_default();
        let reles = self.w.null_zone_reles() - reles0;
        // This op's events: those after the `sys0`-th system call line.
        let trace = self.w.trace();
        let mut seen = 0;
        let start = trace
            .iter()
            .position(|e| {
                if seen == sys0 {
                    return true;
                }
                seen += matches!(e, TraceEvent::Sys { .. }) as usize;
                false
            })
            .unwrap_or(trace.len());
        let replies: Vec<u8> = trace[start..]
            .iter()
            .filter_map(|e| match e {
                TraceEvent::HeadRecv { msg, .. }
                    if msg.mtype == M_IOCACK || msg.mtype == M_IOCNAK =>
                {
                    Some(msg.mtype)
                }
                _ => None,
            })
            .collect();
        let derefs = trace[start..]
            .iter()
            .filter(|e| matches!(e, TraceEvent::NullZoneDeref(_)))
            .count();
        let want = if matches!(op, Op::Grantpt(_)) {
            "Err(EACCES)"
        } else {
            "Err(EINVAL)"
        };
        if reles > 0 {
            Ok(ZoneGoneOutcome::CNullZoneRele)
        } else if replies.last() == Some(&M_IOCNAK) && result == want && derefs == 0 {
            Ok(ZoneGoneOutcome::RustEinval)
        } else {
            // Neither: refused by the stream head (a stream error, a hangup)
            // or failed before the zone lookup (ENOMEM pulling up the
            // payload). Nothing diverges: an ordinary op, compared line by
            // line. (A variant that ACKed without touching the NULL zone
            // lands here too, and so differs from the oracle.)
            Err(result)
        }
    }

    /// The final state: every pty slot, `/dev/pts` as the process sees it,
    /// the queues of every open fd, what is allocated.
    fn dump_state(&mut self) {
        for minor in 1..=(MAX_PTYS as u32 + 4) {
            if let Some(st) = self.w.pt_state(minor) {
                let own = self.w.pt_owner(minor);
                let node = self.w.pts_node(minor);
                self.text(format!(
                    "final: pty {minor} state {st:#x} owner {own:?} node {node:?}"
                ));
            }
        }
        for f in self.fds.clone() {
            let h = self.w.head_read_queue(f.fd);
            let d = self.w.driver_write_queue(f.fd);
            self.text(format!("final: fd{} head rq {h:?} driver wq {d:?}", f.fd.0));
        }
        let leaks = self.w.leaks();
        self.text(format!("final: leaks {leaks:?}"));
    }
}

/// A deterministic data pattern, different for each op.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| b'a' + ((seed + j) % 26) as u8).collect()
}

/// Runs `ops` in `world` ([`ZoneGone::Skip`]), then closes every fd and
/// checks for leaks and anomalies. The world is left with nothing open.
pub fn run(world: &mut dyn Pty, ops: &[Op]) -> Trace {
    run_with(world, ops, RunConfig::default())
}

/// [`run`] with a configuration. `world` should be fresh (or have nothing
/// open): the trace covers everything the world recorded.
pub fn run_with(world: &mut dyn Pty, ops: &[Op], cfg: RunConfig) -> Trace {
    let variant = world.variant().name;
    let mut it = Interp {
        w: world,
        fds: Vec::new(),
        zones: BTreeSet::from([0]),
        out: Vec::new(),
        sys: 0,
        cur: 0,
    };
    let divergence = it.interpret(ops, cfg);
    if divergence.is_none() {
        it.dump_state();
    }
    let sys0 = it.sys;
    let n = it.fds.len();
    it.sys += n;
    it.w.close_all();
    it.out.push(Line::Part(sys0, it.sys));
    let leaks = it.w.leaks();
    let anomalies = it.w.anomalies();
    it.text(format!("end: leaks {leaks:?}"));
    for a in &anomalies {
        it.text(format!("end: anomaly: {a}"));
    }
    let (lines, divergence, segmented) = it.assemble(divergence);
    Trace {
        variant,
        lines,
        divergence,
        segmented,
        leaks,
        anomalies,
    }
}

impl Interp<'_> {
    /// Runs `ops`; returns where the run met the deliberate difference
    /// (and stopped), if it did.
    fn interpret(&mut self, ops: &[Op], cfg: RunConfig) -> Option<Divergence> {
        for (i, op) in ops.iter().enumerate() {
            self.text(format!("#{i} {op:?}"));
            self.cur = i;
            let sys0 = self.sys;
            // The documented difference (module docs): decided before the
            // op runs, from the interpreter's own record of running zones.
            let gone = match op {
                Op::Ownerpt(r, arg) if arg.whole() => {
                    self.resolve(*r).and_then(|f| self.gone_zone(f))
                }
                Op::Grantpt(r) => self.resolve(*r).and_then(|f| self.gone_zone(f)),
                _ => None,
            };
            if let Some(z) = gone {
                if cfg.zone_gone == ZoneGone::Skip {
                    self.text(format!(
                        "   -> skipped: OWNERPT on a pty of zone {z}, which is not running \
                         (documented difference)"
                    ));
                    continue;
                }
                match self.run_zone_gone(op) {
                    Ok(outcome) => return Some(self.diverged(i, z, outcome)),
                    Err(result) => {
                        self.out.push(Line::Part(sys0, self.sys));
                        self.text(format!("   -> {result}"));
                        continue;
                    }
                }
            }
            let r = self.step(op);
            self.out.push(Line::Part(sys0, self.sys));
            self.text(match r {
                Some(r) => format!("   -> {r}"),
                None => "   -> skipped: no fd open".into(),
            });
        }
        None
    }

    /// Op `i` met the deliberate difference (zone `z`): its world lines
    /// differ by design and are left out (no `Line::Part` for them); the
    /// outcome is recorded and interpreting stops.
    fn diverged(&mut self, i: usize, z: i32, outcome: ZoneGoneOutcome) -> Divergence {
        let d = Divergence {
            op: i,
            line: self.out.len(),
            outcome: outcome.clone(),
        };
        self.text(format!(
            "   -> OWNERPT on a pty of zone {z}, which is not running: {outcome:?}"
        ));
        self.text("stopped: the variants hold different owners from here");
        d
    }

    /// The trace's lines: ours, with each `Line::Part` replaced by the
    /// world's lines of those system calls (the world's trace is rendered
    /// once and cut after each system call line), the divergence's line
    /// index moved to match; and whether the cut was possible (if not, the
    /// whole world trace is appended instead, which keeps the comparison
    /// sound).
    fn assemble(
        self,
        mut divergence: Option<Divergence>,
    ) -> (Vec<String>, Option<Divergence>, bool) {
        let world_lines = self.w.trace_lines();
        let mut ends = vec![0];
        ends.extend(
            world_lines
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.starts_with(' '))
                .map(|(k, _)| k + 1),
        );
        let consistent = ends.len() == self.sys + 1 && ends[self.sys] == world_lines.len();
        let span = |a: usize, b: usize| &world_lines[ends[a]..ends[b]];
        let mut lines = Vec::with_capacity(self.out.len() + world_lines.len());
        let mut div_line = None;
        for (k, l) in self.out.into_iter().enumerate() {
            match l {
                Line::Text(t) => {
                    if divergence.as_ref().is_some_and(|d| d.line == k) {
                        div_line = Some(lines.len());
                    }
                    lines.push(t);
                }
                Line::Part(a, b) if consistent => {
                    lines.extend(span(a, b).iter().map(|s| format!("   {s}")));
                }
                Line::Part(..) => {}
            }
        }
        if !consistent {
            lines.push(format!(
                "world trace ({} system call lines, {} expected):",
                ends.len() - 1,
                self.sys
            ));
            lines.extend(world_lines.iter().map(|s| format!("   {s}")));
        }
        if let (Some(d), Some(l)) = (divergence.as_mut(), div_line) {
            d.line = l;
        }
        (lines, divergence, consistent)
    }
}

// ---------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------

/// The equality rule: `other`'s trace must equal the oracle's line for line,
/// except at a [`Divergence`] (both runs must have one, at the same line),
/// where the oracle must show the C behaviour and `other` the C or the Rust
/// behaviour; the lines after it (closing, leaks) must again be equal.
pub fn compare(oracle: &Trace, other: &Trace) -> Result<(), String> {
    let (a, b) = (&oracle.lines, &other.lines);
    match (&oracle.divergence, &other.divergence) {
        (None, None) => {}
        (Some(d0), Some(d1)) if d0.line == d1.line && a[..d0.line] == b[..d1.line] => {
            if d0.outcome != ZoneGoneOutcome::CNullZoneRele {
                return Err(format!(
                    "[{}] OWNERPT on a pty whose zone is gone: expected the documented C \
                     behaviour (zone_rele(NULL)), got {:?}\n{}",
                    oracle.variant,
                    d0.outcome,
                    oracle.text()
                ));
            }
            if !matches!(
                d1.outcome,
                ZoneGoneOutcome::CNullZoneRele | ZoneGoneOutcome::RustEinval
            ) {
                return Err(format!(
                    "[{}] OWNERPT on a pty whose zone is gone: expected the documented Rust \
                     behaviour (EINVAL) or C's, got {:?}\n{}",
                    other.variant,
                    d1.outcome,
                    other.text()
                ));
            }
            let (ra, rb) = (&a[d0.line + 1..], &b[d1.line + 1..]);
            if ra == rb {
                return Ok(());
            }
            return Err(diff(oracle, other));
        }
        _ => return Err(diff(oracle, other)),
    }
    if a == b {
        Ok(())
    } else {
        Err(diff(oracle, other))
    }
}

/// A readable account of where two traces part.
pub fn diff(t0: &Trace, t1: &Trace) -> String {
    let (a, b) = (&t0.lines, &t1.lines);
    let i = a
        .iter()
        .zip(b.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    // Back up to the op the first difference belongs to.
    let start = a[..i.min(a.len())]
        .iter()
        .rposition(|l| l.starts_with('#'))
        .unwrap_or(0);
    let ctx = |t: &[String]| t[start.min(t.len())..(i + 8).min(t.len())].join("\n");
    format!(
        "traces of [{}] and [{}] differ at line {i}{}\n--- [{}] ---\n{}\n--- [{}] ---\n{}",
        t0.variant,
        t1.variant,
        a.get(start)
            .map(|l| format!(" (in {l})"))
            .unwrap_or_default(),
        t0.variant,
        ctx(a),
        t1.variant,
        ctx(b)
    )
}

/// What [`differential`] returns without a C oracle.
pub const NO_ORACLE: &str = "PTM_REFERENCE_C not set";

/// Runs `ops` in a fresh world of `v` of backend `b`.
pub fn run_variant(b: &dyn Backend, v: Variant, ops: &[Op], cfg: RunConfig) -> Trace {
    let mut w = b
        .world(v)
        .unwrap_or_else(|e| panic!("[{} world, {}] load failed: {e}", b.name(), v.name));
    run_with(&mut *w, ops, cfg)
}

/// Runs `ops` against the C oracle and every other variant of backend `b`
/// and compares each with the oracle ([`compare`]). Returns the oracle's
/// trace; `Err` with the difference, or [`NO_ORACLE`] when the backend has
/// no C oracle (`PTM_REFERENCE_C` unset).
pub fn differential(b: &dyn Backend, ops: &[Op], cfg: RunConfig) -> Result<Trace, String> {
    let vs = b.variants();
    let oracle_v = *vs.first().filter(|v| v.is_c_ptm()).ok_or(NO_ORACLE)?;
    let oracle = run_variant(b, oracle_v, ops, cfg);
    for &v in &vs[1..] {
        let t = run_variant(b, v, ops, cfg);
        compare(&oracle, &t)?;
    }
    Ok(oracle)
}
