//! The interpreter: runs a sequence of [`Op`]s in one world and records
//! everything observable about the run as a [`Trace`].

use std::collections::BTreeSet;
use std::fmt;

use super::{FdRef, MAX_FDS, MAX_PTYS, Op, OwnerArg, SubTarget, ZONE3_EPHEMERAL, ZoneArg};
use crate::scenarios::common::own;
use crate::{
    Errno, Fd, ISPTM, IocReply, LateOrder, Leaks, O_NDELAY, O_NOCTTY, O_NONBLOCK, O_RDWR, OWNERPT,
    PTSSTTY, Pty, TIOCSWINSZ, TTY_GID, TraceEvent, UNLKPT, ZONEPT,
};

const M_IOCACK: u8 = 0x81;
const M_IOCNAK: u8 = 0x82;

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
            | Op::FailPtTtysAlloc
            | Op::ServicesLate(..)
            | Op::RunLateServices(..) => self.context_op(op),
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
            // How many queues were held is part of the result: every
            // variant must schedule the same service procedures.
            Op::ServicesLate(on) => {
                let held = self.w.late_services();
                self.w.services_run_late(*on);
                format!("ok, {held} held before")
            }
            Op::RunLateServices(seed) => {
                let held = self.w.late_services();
                let order = match seed {
                    None => LateOrder::Scheduled,
                    Some(s) => LateOrder::Shuffled(u64::from(*s)),
                };
                self.w.run_late_services(order);
                format!("ok, {held} held before")
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
    // What is still held runs before the closes (as each close would run
    // its own stream's).
    it.w.services_run_late(false);
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
