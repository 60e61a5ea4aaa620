//! The pty states every case starts from, and what each case does before
//! and after its own operation (set the state up, probe both sides, leave
//! nothing the end-of-case checks would refuse).

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum St {
    /// Manager open, before UNLKPT.
    Locked,
    /// Locked, and a write already raised the manager's write error.
    LockedWriteErr,
    /// Unlocked, subsidiary never opened.
    Unlocked,
    /// Subsidiary open.
    SubOpen,
    /// Subsidiary opened and closed again.
    SubClosed,
    /// Subsidiary closed, and a write raised the manager's write error.
    SubClosedWriteErr,
    /// Subsidiary open and hung up (an M_HANGUP sent through ptm).
    HungUp,
    /// Subsidiary open but not reading: its stream head is full and ptm's
    /// write queue holds data (band 0), and band 1 carries a message.
    FlowBlocked,
    /// As `FlowBlocked`, then the subsidiary closed with data still queued.
    ClosedWhileBlocked,
}

pub(super) const STATES: [St; 9] = [
    St::Locked,
    St::LockedWriteErr,
    St::Unlocked,
    St::SubOpen,
    St::SubClosed,
    St::SubClosedWriteErr,
    St::HungUp,
    St::FlowBlocked,
    St::ClosedWhileBlocked,
];

impl St {
    /// Whether ptm can pass traffic to the subsidiary in this state.
    pub(super) fn ready(self) -> bool {
        matches!(self, St::SubOpen | St::HungUp | St::FlowBlocked)
    }
    /// Whether the manager's stream head has a write error: ioctls fail
    /// there with it before reaching ptm.
    pub(super) fn write_error(self) -> bool {
        matches!(self, St::LockedWriteErr | St::SubClosedWriteErr)
    }
}

#[derive(Clone, Copy)]
pub(super) struct OpenPty {
    pub(super) m: Fd,
    pub(super) s: Option<Fd>,
    pub(super) minor: u32,
}

pub(super) fn ok<T>(what: &str, r: Result<T, Errno>) -> Result<T, String> {
    r.map_err(|e| format!("setup: {what}: {e}"))
}

/// Brings a new pty into state `st` (non-blocking fds throughout).
pub(super) fn setup(w: &mut dyn Pty, st: St) -> Result<OpenPty, String> {
    let m = ok("open manager", w.open_manager(NB))?;
    let minor = ok("fstat", w.minor_of(m))?;
    let mut p = OpenPty { m, s: None, minor };
    if matches!(st, St::Locked | St::LockedWriteErr) {
        if st == St::LockedWriteErr {
            ok("write while locked", w.write(m, b"x"))?;
            if w.write(m, b"y") != Err(Errno::EINVAL) {
                return Err("setup: the write error did not stick".into());
            }
        }
        return Ok(p);
    }
    ok("unlockpt", w.unlockpt(m))?;
    if st == St::Unlocked {
        return Ok(p);
    }
    let s = ok("open subsidiary", w.open_subsidiary(minor, NB))?;
    p.s = Some(s);
    match st {
        St::SubOpen => {}
        St::SubClosed | St::SubClosedWriteErr => {
            ok("close subsidiary", w.close(s))?;
            p.s = None;
            if st == St::SubClosedWriteErr {
                ok("write without subsidiary", w.write(m, b"x"))?;
                if w.write(m, b"y") != Err(Errno::EINVAL) {
                    return Err("setup: the write error did not stick".into());
                }
            }
        }
        St::HungUp => {
            ok("hang up", w.inject_down(m, M_HANGUP, 0, &[]))?;
            match w.write(s, b"z") {
                Err(Errno::EIO | Errno::ENXIO) => {}
                r => return Err(format!("setup: the subsidiary is not hung up: write {r:?}")),
            }
        }
        St::FlowBlocked | St::ClosedWhileBlocked => {
            let chunk = [b'f'; 1024];
            let mut total = 0;
            loop {
                match w.write(m, &chunk) {
                    Ok(n) if n == chunk.len() && total < (1 << 20) => total += n,
                    Ok(_) | Err(Errno::EAGAIN) => break,
                    Err(e) => return Err(format!("setup: filling: {e}")),
                }
            }
            let q = w.driver_write_queue(m).ok_or("setup: no ptm write queue")?;
            if q.count == 0 {
                return Err(format!("setup: nothing held on ptm's write queue: {q:?}"));
            }
            ok("band 1", w.write_band(m, 1, b"band one"))?;
            if st == St::ClosedWhileBlocked {
                ok("close subsidiary", w.close(s))?;
                p.s = None;
            }
        }
        _ => unreachable!(),
    }
    Ok(p)
}

/// What both sides see afterwards (all of it lands in the trace).
pub(super) fn probe(w: &mut dyn Pty, p: OpenPty) {
    let _ = w.poll(p.m);
    let _ = w.read(p.m, 64);
    if let Some(s) = p.s {
        let _ = w.poll(s);
        let _ = w.read(s, 64);
    }
    let _ = w.write(p.m, b"!");
    if let Some(s) = p.s {
        let _ = w.read(s, 64);
        let _ = w.write(s, b"?");
    }
    let _ = w.read(p.m, 64);
}

/// `pt_state` and owner of the pty, for comparison.
pub(super) fn pty_facts(w: &dyn Pty, p: OpenPty) -> String {
    format!(
        "pt_state={:?} owner={:?}",
        w.pt_state(p.minor),
        w.pt_owner(p.minor)
    )
}

/// Ends a case. A PTSSTTY on a pty whose subsidiary never clears it
/// (ptsclose does) leaves `PTSTTY` in `pt_state` when ptm.c's manager
/// closes: ptms_close then returns the entry to its kmem cache with
/// `pt_state` non-zero, which `ptms_destructor` ASSERTs against and the
/// model world reports as an anomaly (the Rust driver clears the bit; the
/// model's own tests pin both). So that the
/// rest of the case still counts, this records the fact and clears the bit
/// the way a user would: unlock (through a forged UNLKPT, which no stream
/// head error stops), open the subsidiary from the pty's zone, close it.
pub(super) fn settle(w: &mut dyn Pty, p: OpenPty) -> String {
    let facts = pty_facts(w, p);
    let Some(state) = w.pt_state(p.minor) else {
        return facts;
    };
    if state & PTSTTY == 0 || state & PTSOPEN != 0 {
        return facts;
    }
    let _ = w.inject_down(p.m, M_IOCTL, 0, &forged_iocblk(UNLKPT, 0, 40));
    let zone = w.pt_owner(p.minor).map_or(0, |o| o.0);
    w.set_zone(zone);
    let r = w.open_subsidiary(p.minor, NB);
    w.set_zone(0);
    if let Ok(s) = r {
        let _ = w.close(s);
    }
    format!("{facts}; PTSTTY left without a subsidiary, cleared by an open: {r:?}")
}
