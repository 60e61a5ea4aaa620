//! # An operation model for differential testing
//!
//! [`Op`] is one step a process (or the test harness standing in for the
//! kernel around it) can take against ptm in a world: opening either end
//! of a pty, the ptm ioctls with good and bad payloads, data both ways,
//! flushes, raw messages sent down a stream, closes, credential and zone
//! changes, allocation faults, and when service procedures run (late, then
//! in the order scheduled or shuffled). [`run`] interprets a sequence of them in
//! one world ([`Pty`](crate::Pty)) and returns a [`Trace`]: every call with its result,
//! every message each stream head received ([`Pty::trace_lines`](crate::Pty::trace_lines)), the
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
//! zone, read back with [`Pty::pt_owner`](crate::Pty::pt_owner), is not one the interpreter knows
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

mod compare;
mod interp;

pub use compare::{NO_ORACLE, compare, diff, differential, run_variant};
pub use interp::{Divergence, RunConfig, Trace, ZoneGone, ZoneGoneOutcome, run, run_with};

use crate::{
    Cred, FLUSHR, FLUSHRW, FLUSHW, O_RDONLY, O_RDWR, O_WRONLY, TCGETS, TIOCGWINSZ, TIOCSWINSZ,
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
    /// Service procedures run late from now on (`true`: what a call
    /// schedules is held), or on time again, the held ones run now
    /// (`false`). See [`Pty::services_run_late`](crate::Pty::services_run_late).
    ServicesLate(bool),
    /// Runs the held service procedures: in the order they were scheduled
    /// (`None`), or the streams shuffled by the seed.
    RunLateServices(Option<u8>),
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

fn pick<T: Copy>(t: &[T], b: u8) -> T {
    t[b as usize % t.len()]
}

/// The op kinds and their weights in [`decode`]: how often each appears in
/// random sequences.
const KINDS: [(u8, u32); 27] = [
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
    (25, 3), // ServicesLate
    (26, 4), // RunLateServices
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
            24 => Op::FailPtTtysAlloc,
            // Mostly on: turning it off runs everything held anyway.
            25 => Op::ServicesLate(p % 4 != 0),
            _ => Op::RunLateServices((p % 3 != 0).then_some(q)),
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
