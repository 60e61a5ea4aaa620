//! The scenario API: what a test can do to a world, and what it can see.
//!
//! A *world* is a kernel with one ptm variant loaded and one process using
//! it. Two backends implement [`Pty`]: the model world (`ptm-sim`, the
//! project's STREAMS model) and the real-code world (`ptm-real`, illumos's
//! own framework, ptms_conf and pts). A scenario is written once against
//! `&mut dyn Pty` and runs on both.
//!
//! Semantics every backend provides:
//!
//! * System calls are deterministic: after each one, every service
//!   procedure and background task it caused runs to completion before
//!   the call returns to the test.
//! * A call that would sleep with nothing left in the world to wake it
//!   returns [`Errno::BLOCKED`] (a blocking read on an empty stream, a
//!   write against a full queue, a transparent ioctl nobody answers). An
//!   `I_STR` ioctl nobody answers times out with `ETIME`.
//! * File descriptors are numbered from 3, lowest free first.
//! * The trace ([`Pty::trace_lines`]) records every call with its result
//!   and every message that arrives at a stream head's read side.

use std::fmt;

/// An errno value as a process would see it (illumos numbering).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const EINTR: Errno = Errno(4);
    pub const EIO: Errno = Errno(5);
    pub const ENXIO: Errno = Errno(6);
    pub const EBADF: Errno = Errno(9);
    pub const EAGAIN: Errno = Errno(11);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EINVAL: Errno = Errno(22);
    pub const ENOTTY: Errno = Errno(25);
    pub const ERANGE: Errno = Errno(34);
    pub const ENOSYS: Errno = Errno(89);
    pub const ETIME: Errno = Errno(62);
    pub const ENOSR: Errno = Errno(63);
    pub const EBADMSG: Errno = Errno(77);
    /// Not an errno: the call would sleep forever (nothing in the world
    /// can wake it).
    pub const BLOCKED: Errno = Errno(-1);

    pub fn name(self) -> String {
        let n = match self.0 {
            -1 => "BLOCKED",
            1 => "EPERM",
            2 => "ENOENT",
            4 => "EINTR",
            5 => "EIO",
            6 => "ENXIO",
            9 => "EBADF",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            16 => "EBUSY",
            17 => "EEXIST",
            22 => "EINVAL",
            25 => "ENOTTY",
            34 => "ERANGE",
            62 => "ETIME",
            63 => "ENOSR",
            77 => "EBADMSG",
            89 => "ENOSYS",
            n => return format!("errno {n}"),
        };
        n.into()
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A file descriptor of the world's process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Fd(pub i32);

/// A successful ioctl: its return value and the data the ACK carried.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IocReply {
    pub rval: i32,
    pub data: Vec<u8>,
}

/// What `poll` would report (all events requested).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PollBits {
    pub pollin: bool,
    pub pollout: bool,
    pub pollerr: bool,
    pub pollhup: bool,
}

/// What a stream head's flags say about its stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct HeadState {
    /// STRHUP: an M_HANGUP arrived.
    pub hung_up: bool,
    /// STRISTTY: the stream is a terminal (M_SETOPTS SO_ISTTY).
    pub tty: bool,
    /// STRXPG4TTY: the stream uses XPG4 terminal semantics (pts sets it
    /// when the manager asked for PTSSTTY).
    pub xpg4_tty: bool,
    /// STRDERR / STWRERR: an M_ERROR set a read / write error.
    pub read_error: bool,
    pub write_error: bool,
}

/// Counters and flags of one queue.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QueueInfo {
    pub count: usize,
    pub mblkcnt: usize,
    pub flag: u32,
    pub hiwat: usize,
    pub lowat: usize,
    pub nband: u8,
    /// (type, band, bytes) of each queued message, front first.
    pub messages: Vec<(u8, u8, usize)>,
}

/// A `/dev/pts/N` node as `stat` shows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PtsNode {
    pub uid: u32,
    pub gid: u32,
    /// Mode including the file type (`S_IFCHR | 0620`).
    pub mode: u32,
}

/// Objects still allocated.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Leaks {
    pub mblks: u64,
    pub dblks: u64,
    pub pt_ttys: u64,
    pub zone_holds: i64,
    pub open_streams: usize,
}

impl Leaks {
    pub fn is_clean(&self) -> bool {
        *self == Leaks::default()
    }
}

/// What [`Pty::finish`] returns.
#[derive(Clone, Debug)]
pub struct Report {
    pub variant: &'static str,
    pub trace: Vec<String>,
    pub allocb_calls: u64,
}

/// The credential of the world's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    /// Holds `PRIV_SYS_DEVICES` (what `drv_priv` checks).
    pub privileged: bool,
}

impl Cred {
    /// The superuser: uid 0, gid 0, all privileges.
    pub const fn root() -> Cred {
        Cred {
            uid: 0,
            gid: 0,
            privileged: true,
        }
    }
    /// An ordinary user without `PRIV_SYS_DEVICES`.
    pub const fn user(uid: u32, gid: u32) -> Cred {
        Cred {
            uid,
            gid,
            privileged: false,
        }
    }

    /// Whether a `/dev/pts` node's mode (owner read-write, group write
    /// only) lets this credential open it with `flags`: privilege or
    /// owning the node gives both, its group only writing.
    pub fn may_open(&self, node: &PtsNode, flags: i32) -> bool {
        let want_read = flags & 3 != crate::O_WRONLY;
        let want_write = flags & 3 != crate::O_RDONLY;
        if self.privileged || self.uid == node.uid {
            true
        } else {
            self.gid == node.gid && !want_read && want_write
        }
    }
}

/// A `ddi_create_minor_node` call the driver made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinorNode {
    pub name: String,
    pub spec_type: i32,
    pub minor: u32,
    pub node_type: String,
    pub flag: i32,
}

/// A message as a stream head received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgDesc {
    /// `db_type` of the first block.
    pub mtype: u8,
    pub band: u8,
    /// For data-class messages (M_DATA/M_PROTO/M_PCPROTO) the byte count
    /// of the whole message; otherwise that of the first block.
    pub len: usize,
    /// The bytes (same rule as `len`), or a decoded form for M_SETOPTS /
    /// M_IOCACK / M_IOCNAK / M_IOCTL, whose other bytes are not meaningful.
    pub bytes: Vec<u8>,
    /// Decoded detail, e.g. `cmd=0x5001 id=1 count=0 rval=0 error=22`.
    pub detail: String,
}

/// One event of a world's trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// A system call made through the [`Pty`] API and its result.
    Sys { call: String, result: String },
    /// A message arriving at a stream head's read side. `stream` names the
    /// stream: `M<minor>` for a manager, `S<minor>` for a subsidiary.
    HeadRecv { stream: String, msg: MsgDesc },
    /// `zone_rele(NULL)`: a kernel panic on real illumos.
    NullZoneRele,
    /// `valid_ephemeral_uid/gid(NULL, id > 2^31)`: a NULL dereference on
    /// real illumos.
    NullZoneDeref(&'static str),
    /// A signal sent by the kernel: to a process (`'p'`) or a process
    /// group (`'g'`) with that id.
    Signal { to: char, id: i32, sig: i32 },
    /// Something worth recording that is not an error.
    Note(String),
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::Sys { call, result } => write!(f, "{call} = {result}"),
            TraceEvent::HeadRecv { stream, msg } => {
                write!(
                    f,
                    "  {stream} head <- {} band {} len {}",
                    crate::msg::mtype_name(msg.mtype),
                    msg.band,
                    msg.len
                )?;
                if !msg.detail.is_empty() {
                    write!(f, " {}", msg.detail)?;
                }
                if !msg.bytes.is_empty() {
                    write!(f, " {}", crate::msg::show_bytes(&msg.bytes))?;
                }
                Ok(())
            }
            TraceEvent::NullZoneRele => f.write_str("  event: NULL zone_rele"),
            TraceEvent::NullZoneDeref(w) => write!(f, "  event: NULL zone dereferenced in {w}"),
            TraceEvent::Signal { to, id, sig } => {
                let whom = if *to == 'g' {
                    "process group"
                } else {
                    "process"
                };
                write!(
                    f,
                    "  signal {} to {whom} {id}",
                    crate::msg::signal_name(*sig)
                )
            }
            TraceEvent::Note(n) => write!(f, "  note: {n}"),
        }
    }
}

/// Which driver a variant runs, for the scenarios where they deliberately
/// differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// illumos's `ptm.c` (compiled in, or loaded as a kernel object).
    C,
    /// The Rust `ptm` (the crate built for the host, or the shipped module).
    Rust,
}

/// A driver variant a backend can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Name used in failure messages and trace headers.
    pub name: &'static str,
    pub driver: Driver,
}

impl Variant {
    /// Whether this variant runs illumos's C ptm.
    pub fn is_c_ptm(&self) -> bool {
        self.driver == Driver::C
    }
}

/// The order in which [`Pty::run_late_services`] runs the service
/// procedures it held.
///
/// Which orders are legal in STREAMS: a queue is on a run list at most
/// once (`QENAB`), and its service procedure takes its messages in queue
/// order, so per queue nothing can be reordered. illumos drains each
/// stream's run list on one thread, in the order its queues were enabled;
/// different streams are drained by different task-queue threads, in any
/// order relative to each other. So the streams may be permuted, each
/// stream's queues keep their order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LateOrder {
    /// Streams in the order their first held queue was enabled.
    Scheduled,
    /// Streams in an order shuffled by this seed (the same seed, the same
    /// order, on every backend).
    Shuffled(u64),
}

impl LateOrder {
    /// The order in which to run `n` streams, numbered by when their first
    /// held queue was enabled: a permutation of `0..n`.
    pub fn permutation(self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        if let LateOrder::Shuffled(seed) = self {
            // Fisher-Yates with splitmix64: small, fixed, no dependency.
            let mut x = seed;
            let mut next = || {
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            for i in (1..n).rev() {
                let j = (next() % (i as u64 + 1)) as usize;
                v.swap(i, j);
            }
        }
        v
    }

    /// Groups held queues (each given with its stream, in the order they
    /// were enabled) by stream, and returns them in the order to run them.
    pub fn arrange<Q: Copy, S: PartialEq + Copy>(self, held: &[(Q, S)]) -> Vec<Q> {
        let mut streams: Vec<S> = Vec::new();
        for &(_, s) in held {
            if !streams.contains(&s) {
                streams.push(s);
            }
        }
        self.permutation(streams.len())
            .into_iter()
            .flat_map(|i| {
                let s = streams[i];
                held.iter().filter(move |h| h.1 == s).map(|h| h.0)
            })
            .collect()
    }
}

/// A world: a kernel with one ptm variant, and one process using it.
///
/// Methods that are system calls (or libc functions built on them) are
/// traced; the rest observe or configure the world. See the module
/// documentation for the semantics every backend shares.
pub trait Pty {
    /// The variant this world runs.
    fn variant(&self) -> Variant;

    // --- opening and closing ---------------------------------------------

    /// `open("/dev/ptmx", flags)`: a clone open of ptm.
    fn open_manager(&mut self, flags: i32) -> Result<Fd, Errno>;
    /// A direct (non-clone) open of ptm minor `minor` through a device node.
    fn open_manager_node(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno>;
    /// `open("/dev/pts/N", flags)`: the node exists only while the pty is
    /// allocated and visible in the caller's zone (ENOENT otherwise); it is
    /// mode 0620, owned by the pty's owner (EACCES for others without
    /// privilege); then the device open.
    fn open_subsidiary(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno>;
    /// Opens subsidiary minor `minor` through a device node, straight to
    /// `ptsopen`; an open subsidiary stream is reopened.
    fn open_subsidiary_node(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno>;
    /// Pushes ptm as a STREAMS module on a scratch stream (ptm must
    /// refuse: it is a driver). `None` when the backend cannot express
    /// this (illumos never offers a driver to I_PUSH).
    fn push_manager_as_module(&mut self) -> Option<Result<(), Errno>>;
    /// `close(fd)`.
    fn close(&mut self, fd: Fd) -> Result<(), Errno>;
    /// Closes every open fd (traced like `close`).
    fn close_all(&mut self);

    // --- data ------------------------------------------------------------------

    /// `write(fd, data)`: the bytes written.
    fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize, Errno>;
    /// `putpmsg(fd, NULL, data, band, MSG_BAND)`.
    fn write_band(&mut self, fd: Fd, band: u8, data: &[u8]) -> Result<(), Errno>;
    /// `read(fd, n)`.
    fn read(&mut self, fd: Fd, n: usize) -> Result<Vec<u8>, Errno>;

    // --- control -----------------------------------------------------------------

    /// `ioctl(fd, I_STR, {cmd, payload})`.
    fn ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno>;
    /// An `M_IOCTL` for `cmd` whose payload is split over one block per
    /// non-empty part, sent down the stream as a stream head would.
    fn ioctl_blocks(&mut self, fd: Fd, cmd: i32, parts: &[&[u8]]) -> Result<IocReply, Errno>;
    /// Like [`Pty::ioctl_blocks`], with empty parts kept as empty blocks.
    fn ioctl_chain(&mut self, fd: Fd, cmd: i32, parts: &[&[u8]]) -> Result<IocReply, Errno>;
    /// A transparent ioctl (`ioctl(fd, cmd, buf)` with `buf` holding
    /// `payload`), as tty ioctls such as `TIOCGWINSZ` are made.
    fn tty_ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno>;
    /// `ioctl(fd, I_FLUSH, flags)`.
    fn flush(&mut self, fd: Fd, flags: i32) -> Result<(), Errno>;
    /// `ioctl(fd, I_FLUSHBAND, {band, flags})`.
    fn flush_band(&mut self, fd: Fd, band: u8, flags: i32) -> Result<(), Errno>;
    /// Sends a raw message of type `mtype` in `band` down the stream from
    /// its head (a message no system call makes, e.g. `M_READ`).
    fn inject_down(&mut self, fd: Fd, mtype: u8, band: u8, data: &[u8]) -> Result<(), Errno>;
    /// `poll(fd)` with every event requested, without waiting.
    fn poll(&mut self, fd: Fd) -> Result<PollBits, Errno>;

    // --- the process and its context -------------------------------------------

    /// `fstat(fd).st_rdev` as (major, minor).
    fn fstat_minor(&mut self, fd: Fd) -> Result<(u32, u32), Errno>;
    /// `/dev/pts/N` as the caller's zone sees it, or `None`.
    fn pts_node(&mut self, minor: u32) -> Option<PtsNode>;
    fn cred(&self) -> Cred;
    /// Changes the process's credential.
    fn set_cred(&mut self, cred: Cred);
    /// Moves the process into zone `zone`.
    fn set_zone(&mut self, zone: i32);
    /// Makes zone `id` exist (running), with ids `(min, last]` above 2^31
    /// valid in it.
    fn add_zone(&mut self, id: i32, ephemeral: Option<(u32, u32)>);
    /// Zone `id` stops running.
    fn remove_zone(&mut self, id: i32);

    // --- faults ------------------------------------------------------------------

    /// The `n`th `allocb` call from now on (1 = the next) fails; each call
    /// adds one failure to those already set.
    fn fail_nth_allocb(&mut self, n: u64);
    /// The next `pt_ttys_alloc` fails.
    fn fail_next_pt_ttys_alloc(&mut self);
    /// `ptms_attach_subsidiary` fails while set.
    fn fail_attach_subsidiary(&mut self, fail: bool);
    /// Limits the number of ptys (`None`: the default).
    fn set_pty_limit(&mut self, limit: Option<usize>);
    /// The next allocation of a queue band structure fails (so a `putq`
    /// of a message in a new band fails).
    fn fail_next_qband_alloc(&mut self);

    // --- scheduling ------------------------------------------------------------

    /// With `true`, service procedures run late: what a system call
    /// schedules (`qenable`, `putq`, back-enabling) is held instead of run
    /// before the call returns, until [`Pty::run_late_services`] -- as when
    /// the queue is already being serviced on another CPU, which then
    /// loops. A held queue keeps `QENAB`, so it is held once however often
    /// it is enabled. A `close` first runs the held services of the stream
    /// it closes, and a stream being closed has none held (illumos's close
    /// runs its stream's pending services, or waits for them). With `false`, whatever is held runs now
    /// ([`LateOrder::Scheduled`]) and services run on time again.
    /// Single-threaded worlds only.
    fn services_run_late(&mut self, late: bool);
    /// Runs the held service procedures in `order`, and whatever they
    /// schedule, until the world settles; then services stay late if they
    /// were.
    fn run_late_services(&mut self, order: LateOrder);
    /// How many queues are held.
    fn late_services(&self) -> usize;

    // --- observation -----------------------------------------------------------

    fn trace(&self) -> Vec<TraceEvent>;
    fn trace_lines(&self) -> Vec<String> {
        self.trace().iter().map(ToString::to_string).collect()
    }
    /// How many times `zone_rele(NULL)` happened.
    fn null_zone_reles(&self) -> usize {
        self.trace()
            .iter()
            .filter(|e| matches!(e, TraceEvent::NullZoneRele))
            .count()
    }
    /// Misbehaviour recorded so far (use of freed memory, double frees,
    /// failed DEBUG ASSERTs a non-DEBUG kernel would not notice, ...). Any
    /// left when the world finishes fail it.
    fn anomalies(&self) -> Vec<String>;
    /// Takes the anomalies recorded so far whose text contains `what` off
    /// the list, as ones the caller expected (a finding it pins); returns
    /// how many there were.
    fn acknowledge_anomalies(&mut self, what: &str) -> usize;
    /// Objects currently allocated.
    fn leaks(&self) -> Leaks;
    /// `allocb` calls so far.
    fn allocb_calls(&self) -> u64;
    /// The room (`db_lim - b_rptr`) in the block `allocb(len)` returns in
    /// this world's kernel (the dblk caches round sizes up).
    fn block_capacity(&mut self, len: usize) -> usize;
    /// The minor nodes the driver created.
    fn minor_nodes(&self) -> Vec<MinorNode>;
    /// A pty's `pt_state`, or `None` if the minor is not allocated.
    fn pt_state(&self, minor: u32) -> Option<u16>;
    /// A pty's (zone, owner uid, owner gid).
    fn pt_owner(&self, minor: u32) -> Option<(i32, u32, u32)>;
    /// The flags of `fd`'s stream head.
    fn head_state(&self, fd: Fd) -> Option<HeadState>;
    /// The read queue of the stream head of `fd`.
    fn head_read_queue(&self, fd: Fd) -> Option<QueueInfo>;
    /// The write queue of the driver at the bottom of `fd`'s stream.
    fn driver_write_queue(&self, fd: Fd) -> Option<QueueInfo>;

    // --- the module --------------------------------------------------------------

    /// `modunload`: `_fini` (EBUSY while a pty is open).
    fn unload(&mut self) -> Result<(), Errno>;
    /// Loads the variant again after [`Pty::unload`] (`_info`, `_init`).
    fn reload(&mut self) -> Result<(), String>;
    fn is_loaded(&self) -> bool;
    /// The `modinfo` line of the loaded module.
    fn module_linkinfo(&self) -> Option<String>;

    /// Closes everything, lets the world settle, checks that nothing
    /// leaked and nothing went wrong, unloads the module, and returns the
    /// trace.
    fn finish(self: Box<Self>) -> Result<Report, String>;

    /// Names what runs in this world (the scenario and variant), for the
    /// reports of failures the world cannot return (a kernel failure that
    /// stops the process).
    fn set_label(&mut self, _label: &str) {}

    // --- libc, the same on every backend ---------------------------------------

    /// The minor of an open fd.
    fn minor_of(&mut self, fd: Fd) -> Result<u32, Errno> {
        self.fstat_minor(fd).map(|(_, m)| m)
    }
    /// libc `ptsname`: ISPTM, then the minor from `fstat`, then
    /// `access(F_OK)` of `/dev/pts/N`.
    fn ptsname(&mut self, fd: Fd) -> Result<String, Errno> {
        self.ioctl(fd, crate::ISPTM, &[])?;
        let minor = self.fstat_minor(fd)?.1;
        if self.pts_node(minor).is_none() {
            return Err(Errno::ENOENT);
        }
        Ok(format!("/dev/pts/{minor}"))
    }
    /// libc `ptsname_r(fd, buf, len)`: ERANGE when the name and its NUL do
    /// not fit in `len` bytes.
    fn ptsname_r(&mut self, fd: Fd, len: usize) -> Result<String, Errno> {
        self.ioctl(fd, crate::ISPTM, &[])?;
        let minor = self.fstat_minor(fd)?.1;
        let name = format!("/dev/pts/{minor}");
        if name.len() + 1 > len {
            return Err(Errno::ERANGE);
        }
        if self.pts_node(minor).is_none() {
            return Err(Errno::ENOENT);
        }
        Ok(name)
    }
    /// libc `grantpt`: ISPTM, then OWNERPT `{getuid(), tty group}`; any
    /// OWNERPT failure becomes EACCES.
    fn grantpt(&mut self, fd: Fd) -> Result<(), Errno> {
        self.ioctl(fd, crate::ISPTM, &[])?;
        let c = self.cred();
        let mut own = Vec::new();
        own.extend_from_slice(&c.uid.to_ne_bytes());
        own.extend_from_slice(&crate::TTY_GID.to_ne_bytes());
        self.ioctl(fd, crate::OWNERPT, &own)
            .map(|_| ())
            .map_err(|_| Errno::EACCES)
    }
    /// libc `unlockpt`: the UNLKPT ioctl.
    fn unlockpt(&mut self, fd: Fd) -> Result<(), Errno> {
        self.ioctl(fd, crate::UNLKPT, &[]).map(|_| ())
    }
}

/// A world kind: which variants it has and how to make a world of one.
pub trait Backend: Sync {
    /// "model" or "real".
    fn name(&self) -> &'static str;
    /// Why this backend cannot run here (e.g. the illumos sources are not
    /// configured), or `None`.
    fn unavailable(&self) -> Option<String>;
    /// The variants in this build, the C oracle first when present.
    fn variants(&self) -> Vec<Variant>;
    /// A fresh world running `v`, loaded as modctl loads a module.
    fn world(&self, v: Variant) -> Result<Box<dyn Pty>, String>;
    /// What the world's threads are doing, for the report of a world that
    /// does not finish (the harness's watchdog); may be empty.
    fn stuck_report(&self) -> String {
        String::new()
    }
    /// The bad-input matrices run one case in this many (chosen by a hash
    /// of the case's name, the same every run) unless `BAD_INPUT_FULL=1`:
    /// 1, every case, for a world whose cases are cheap.
    fn bad_input_sample(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::{Cred, PtsNode};
    use crate::{O_RDONLY, O_RDWR, O_WRONLY};

    #[test]
    fn pts_node_mode_gives_the_owner_both_its_group_only_writing() {
        let node = PtsNode {
            uid: 501,
            gid: 7,
            mode: 0o20620,
        };
        for flags in [O_RDONLY, O_WRONLY, O_RDWR] {
            assert!(Cred::root().may_open(&node, flags), "privileged {flags}");
            assert!(Cred::user(501, 1).may_open(&node, flags), "owner {flags}");
            assert!(!Cred::user(502, 1).may_open(&node, flags), "other {flags}");
        }
        let group = Cred::user(502, 7);
        assert!(group.may_open(&node, O_WRONLY));
        assert!(!group.may_open(&node, O_RDONLY));
        assert!(!group.may_open(&node, O_RDWR));
    }
}
