//! What a user thread does: one step picks a slot and a half it can lock
//! and acts on it -- opens a pty on a free slot, runs one random
//! operation on an open one, or finishes the closing protocol.

use std::sync::atomic::Ordering;

use super::closing::{after_manager_close, after_subsidiary_close};
use super::records::{
    FREE, Half, M_CLOSED, OPEN, PENDING, REC, Rng, S_CLOSED, Shared, Slot, bad, check_records,
    end_name, record,
};
use crate::api::{Errno, Fd, Pty};
use crate::{FLUSHRW, FLUSHW, ISPTM, O_NOCTTY, O_NONBLOCK, O_RDWR, TCGETS, UNLKPT};

/// The slot and end one operation works on.
struct At<'a> {
    sh: &'a Shared,
    slot: &'a Slot,
    idx: usize,
    end: usize,
}

impl At<'_> {
    fn name(&self) -> &'static str {
        end_name(self.end)
    }
    fn other_closed(&self) -> bool {
        self.slot.other_closed()
    }
    /// The manager's persistent write error is possible (on this end).
    fn write_dead_ok(&self) -> bool {
        self.end == 0 && self.slot.m_may_be_write_dead()
    }
}

/// Opens a manager on a free slot and unlocks its pty (both halves
/// held); the subsidiary is opened by a later step (`open_subsidiary_half`),
/// racing with whatever the manager's holder does meanwhile.
fn open_manager_half(
    w: &mut dyn Pty,
    sh: &Shared,
    slot: &Slot,
    m: &mut Half,
    s: &mut Half,
) -> Result<(), String> {
    let mfd = {
        let _clone_open = sh.minors.write().unwrap();
        w.open_manager(O_RDWR | O_NONBLOCK)
            .map_err(|e| format!("open_manager: {e}"))?
    };
    w.ioctl(mfd, UNLKPT, &[])
        .map_err(|e| format!("UNLKPT: {e}"))?;
    let minor = w.minor_of(mfd).map_err(|e| format!("minor_of: {e}"))?;
    let session = sh.sessions.fetch_add(1, Ordering::SeqCst) + 1;
    slot.session.store(session, Ordering::SeqCst);
    slot.minor.store(minor, Ordering::SeqCst);
    for l in &slot.log {
        l.flushes_at_write.lock().unwrap().clear();
    }
    *m = Half {
        fd: Some(mfd),
        ..Half::default()
    };
    *s = Half::default();
    for flag in [
        &slot.s_close_done,
        &slot.m_close_done,
        &slot.hangup_may_be_missing,
        &slot.m_wrote_pending,
    ] {
        flag.store(false, Ordering::SeqCst);
    }
    slot.fds[0].store(mfd.0, Ordering::SeqCst);
    slot.fds[1].store(-1, Ordering::SeqCst);
    slot.state.store(PENDING, Ordering::SeqCst);
    Ok(())
}

/// The subsidiary's holder opens the subsidiary of a pending pty. The
/// pty is open once that open has returned -- unless the manager's close
/// began first: then the open may have been refused, or may have
/// succeeded without the hangup ever coming (see
/// `closing::wait_for_hangup`).
fn open_subsidiary_half(w: &mut dyn Pty, at: &At, half: &mut Half) -> Result<(), String> {
    let slot = at.slot;
    let minor = slot.minor.load(Ordering::SeqCst);
    let no_clone_open = at.sh.minors.read().unwrap();
    if slot.state.load(Ordering::SeqCst) != PENDING {
        return Ok(());
    }
    let opened = w.open_subsidiary(minor, O_RDWR | O_NONBLOCK | O_NOCTTY);
    drop(no_clone_open);
    match opened {
        Ok(fd) => {
            half.fd = Some(fd);
            slot.fds[1].store(fd.0, Ordering::SeqCst);
            if slot
                .state
                .compare_exchange(PENDING, OPEN, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                at.sh.count("subsidiary opens");
            } else {
                slot.hangup_may_be_missing.store(true, Ordering::SeqCst);
                at.sh.count("subsidiary opens racing the manager's close");
            }
            Ok(())
        }
        Err(Errno::EAGAIN) | Err(Errno::ENXIO) | Err(Errno::EIO) | Err(Errno::ENOENT)
            if at.other_closed() =>
        {
            at.sh
                .count("subsidiary opens refused after the manager's close");
            Ok(())
        }
        Err(e) => Err(format!(
            "slot {}: open_subsidiary({minor}): {e} (pt_state {:?}, slot state {})",
            at.idx,
            w.pt_state(minor),
            slot.state.load(Ordering::SeqCst)
        )),
    }
}

/// A write of 1 to 8 records.
fn op_write(w: &mut dyn Pty, at: &At, rng: &mut Rng, half: &mut Half) -> Result<(), String> {
    let (sh, slot, idx, end) = (at.sh, at.slot, at.idx, at.end);
    let fd = half.fd.expect("open");
    let n = 1 + rng.below(8) as u32;
    if end == 0 && slot.state.load(Ordering::SeqCst) == PENDING {
        // Such a write may make the manager write-dead for good (see
        // below): one in four, so that most ptys keep their data flowing.
        if rng.below(4) != 0 {
            return Ok(());
        }
        slot.m_wrote_pending.store(true, Ordering::SeqCst);
        sh.count("manager writes racing the subsidiary's open");
    }
    let session = slot.session.load(Ordering::SeqCst);
    let mut buf = Vec::new();
    {
        let mut log = slot.log[end].flushes_at_write.lock().unwrap();
        let flushes = slot.flushes_done.load(Ordering::SeqCst);
        log.truncate(half.tx_next as usize);
        for i in 0..n {
            buf.extend_from_slice(&record(session, end as u8, half.tx_next + i));
            log.push(flushes);
        }
    }
    match w.write(fd, &buf) {
        Ok(k) if k == buf.len() => {
            half.tx_next += n;
            sh.count("writes");
        }
        Ok(k) => {
            return Err(format!(
                "slot {idx} {}: short write {k}/{}",
                at.name(),
                buf.len()
            ));
        }
        Err(Errno::EAGAIN) => sh.count("writes EAGAIN"),
        Err(Errno::EIO) | Err(Errno::ENXIO) if at.other_closed() => {}
        // ptmwput answers data written while `pts_rdq == NULL` -- the
        // subsidiary has not finished its open, or its last close has
        // cleared it -- with an M_ERROR that sets the manager stream's
        // write error for good: every later write fails with EINVAL. Only
        // after a write made before the subsidiary's open returned, or
        // once the subsidiary's close has begun (state S_CLOSED is set
        // before its close() call).
        Err(Errno::EINVAL) if at.write_dead_ok() => sh.count("manager write-dead"),
        Err(e) => return Err(format!("slot {idx} {}: write: {e}", at.name())),
    }
    Ok(())
}

/// A non-blocking read of up to 32 records on `fd` (this end's fd, or
/// another open of the same subsidiary stream).
fn op_read(w: &mut dyn Pty, at: &At, rng: &mut Rng, half: &mut Half, fd: Fd) -> Result<(), String> {
    let (sh, slot, idx, end) = (at.sh, at.slot, at.idx, at.end);
    let n = (1 + rng.below(32) as usize) * REC;
    match w.read(fd, n) {
        Ok(v) if v.is_empty() => {
            if !at.other_closed() {
                return Err(format!(
                    "slot {idx} {}: read 0 bytes while the pty is open",
                    at.name()
                ));
            }
            if end == 0 {
                // The last subsidiary close raced with this read, which got
                // its zero-length message.
                half.eof_seen = true;
                sh.count("zero-length read taken by an ordinary read");
            }
        }
        // A manager read that returns after the subsidiary's close began
        // may hold records that ptsclose drained out of order (see
        // `closing::after_subsidiary_close`); they are checked there with
        // the rest of the drain. If the state is still OPEN when the read
        // has returned, the close had not begun, so the order is checked
        // strictly here.
        Ok(v) if end == 0 && at.other_closed() => half.after_close.extend_from_slice(&v),
        Ok(v) => {
            let writer_closed = end == 1 && at.other_closed();
            check_records(sh, slot, idx, end, half, &v, writer_closed)?;
            sh.count("reads");
        }
        Err(Errno::EAGAIN) => {}
        Err(e) => return Err(format!("slot {idx} {}: read: {e}", at.name())),
    }
    Ok(())
}

/// I_FLUSH, always with FLUSHW: the I_FLUSH's synchronising ioctl then
/// does not queue behind this end's flow-controlled data (which could
/// legitimately stall it for the 15 s I_STR timeout while the other end
/// waits the same way; see the module documentation).
fn op_flush(w: &mut dyn Pty, at: &At, rng: &mut Rng, fd: Fd) -> Result<(), String> {
    let slot = at.slot;
    let flags = [FLUSHW, FLUSHRW][rng.below(2) as usize];
    slot.flushing.fetch_add(1, Ordering::SeqCst);
    let r = w.flush(fd, flags);
    slot.flushes_done.fetch_add(1, Ordering::SeqCst);
    slot.flushing.fetch_sub(1, Ordering::SeqCst);
    match r {
        Ok(()) => at.sh.count("flushes"),
        Err(Errno::EIO) | Err(Errno::ENXIO) if at.other_closed() => {}
        // The manager's persistent write error (every ioctl but a few
        // read-only ones fails with EINVAL, I_FLUSH included), set by a
        // write racing with the subsidiary's open or last close (see
        // op_write).
        Err(Errno::EINVAL) if at.write_dead_ok() => {}
        Err(e) => {
            return Err(format!(
                "slot {} {}: I_FLUSH {flags:#x}: {e}",
                at.idx,
                at.name()
            ));
        }
    }
    Ok(())
}

/// An ioctl that cannot legitimately stall. The manager's ISPTM is
/// answered by ptm itself; the subsidiary's TCGETS is forwarded through
/// ptm to the manager's stream head, which NAKs it (and may wait behind
/// subsidiary data until some thread reads the manager, which never
/// blocks).
fn op_ioctl(w: &mut dyn Pty, at: &At, fd: Fd) -> Result<(), String> {
    let (cmd, r) = if at.end == 0 {
        (ISPTM, w.ioctl(fd, ISPTM, &[]))
    } else {
        (TCGETS, w.ioctl(fd, TCGETS, &[]))
    };
    if bad(&r) {
        let mfd = Fd(at.slot.fds[0].load(Ordering::SeqCst));
        let sfd = Fd(at.slot.fds[1].load(Ordering::SeqCst));
        return Err(format!(
            "slot {} {}: ioctl {cmd:#x}: {:?}\n m head rq {:?}\n m ptm wq {:?}\n s head rq {:?}\n s pts wq {:?}\n{}",
            at.idx,
            at.name(),
            r.err(),
            w.head_read_queue(mfd),
            w.driver_write_queue(mfd),
            w.head_read_queue(sfd),
            w.driver_write_queue(sfd),
            at.sh.dump_users()
        ));
    }
    // ISPTM fails only with the manager's persistent write error (EINVAL
    // before the ioctl is sent; see op_write).
    if cmd == ISPTM && r.is_err() && !(r == Err(Errno::EINVAL) && at.write_dead_ok()) {
        return Err(format!("slot {} manager: ISPTM: {:?}", at.idx, r.err()));
    }
    at.sh.count("ioctls");
    Ok(())
}

/// poll: POLLERR on the manager is its persistent write error (see
/// op_write); never on the subsidiary.
fn op_poll(w: &mut dyn Pty, at: &At, fd: Fd) -> Result<(), String> {
    let p = w.poll(fd).map_err(|e| format!("poll: {e}"))?;
    if p.pollerr && !at.write_dead_ok() {
        return Err(format!("slot {} {}: POLLERR", at.idx, at.name()));
    }
    Ok(())
}

/// The subsidiary's holder opens its pty's subsidiary once more (pts's
/// open of an open stream), reads through the new fd, and closes it again
/// (not the last close: no hangup, no zero-length message) -- racing with
/// whatever the manager's holder does. Once the manager's close has
/// begun the open may fail.
fn op_reopen(w: &mut dyn Pty, at: &At, rng: &mut Rng, half: &mut Half) -> Result<(), String> {
    let minor = at.slot.minor.load(Ordering::SeqCst);
    let fd = match w.open_subsidiary(minor, O_RDWR | O_NONBLOCK | O_NOCTTY) {
        Ok(fd) => fd,
        Err(Errno::EIO) | Err(Errno::ENXIO) | Err(Errno::ENOENT) if at.other_closed() => {
            return Ok(());
        }
        Err(e) => {
            return Err(format!(
                "slot {}: reopen of subsidiary {minor}: {e}",
                at.idx
            ));
        }
    };
    if at.other_closed() {
        at.slot.hangup_may_be_missing.store(true, Ordering::SeqCst);
    }
    let r = op_read(w, at, rng, half, fd);
    w.close(fd)
        .map_err(|e| format!("slot {}: close of the reopened subsidiary: {e}", at.idx))?;
    at.sh.count("subsidiary reopens");
    r
}

/// Closes this end; the holder of the other half verifies the signal
/// (hangup / zero-length read) and closes it. The manager may close a
/// pending pty, racing with the subsidiary's open.
fn op_close(w: &mut dyn Pty, at: &At, half: &mut Half) -> Result<(), String> {
    let to = if at.end == 0 { M_CLOSED } else { S_CLOSED };
    let slot = at.slot;
    let from = slot.state.load(Ordering::SeqCst);
    if !(from == OPEN || (from == PENDING && at.end == 0))
        || slot
            .state
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return Ok(());
    }
    let fd = half.fd.take().expect("open");
    w.close(fd)
        .map_err(|e| format!("close {}: {e}", at.name()))?;
    if at.end == 1 {
        slot.s_close_done.store(true, Ordering::SeqCst);
    } else {
        slot.m_close_done.store(true, Ordering::SeqCst);
    }
    at.sh.count(if at.end == 0 {
        "manager closes first"
    } else {
        "subsidiary closes first"
    });
    Ok(())
}

/// One random operation by the holder of `end`'s half of an open slot.
fn half_op(w: &mut dyn Pty, at: &At, rng: &mut Rng, half: &mut Half) -> Result<(), String> {
    let fd = half.fd.expect("open");
    match rng.below(100) {
        0..=34 => op_write(w, at, rng, half),
        35..=69 => op_read(w, at, rng, half, fd),
        70..=77 => op_flush(w, at, rng, fd),
        78..=89 => op_ioctl(w, at, fd),
        90..=94 => op_poll(w, at, fd),
        95..=96 if at.end == 1 => op_reopen(w, at, rng, half),
        95..=96 => op_poll(w, at, fd),
        _ => op_close(w, at, half),
    }
}

/// Opens a pty on slot `idx` if both its halves are free to take.
fn step_free(w: &mut dyn Pty, sh: &Shared, idx: usize, me: usize) -> Result<(), String> {
    let slot = &sh.slots[idx];
    let (Ok(mut m), Ok(mut s)) = (slot.m.try_lock(), slot.s.try_lock()) else {
        return Ok(());
    };
    if slot.state.load(Ordering::SeqCst) != FREE {
        return Ok(());
    }
    sh.set_doing(me, format!("slot {idx}: opening"));
    open_manager_half(w, sh, slot, &mut m, &mut s).map_err(|e| format!("slot {idx}: {e}"))?;
    sh.count("ptys opened");
    Ok(())
}

/// Acts on `end` of the pty on slot `idx` if that half is free to take.
fn step_half(
    w: &mut dyn Pty,
    sh: &Shared,
    rng: &mut Rng,
    idx: usize,
    end: usize,
    me: usize,
) -> Result<(), String> {
    let slot = &sh.slots[idx];
    let lock = if end == 0 { &slot.m } else { &slot.s };
    let Ok(mut half) = lock.try_lock() else {
        return Ok(());
    };
    let at = At { sh, slot, idx, end };
    let state = slot.state.load(Ordering::SeqCst);
    if half.fd.is_none() {
        match (state, end) {
            (PENDING, 1) => {
                sh.set_doing(me, format!("slot {idx}: opening the subsidiary"));
                open_subsidiary_half(w, &at, &mut half)?;
            }
            // The manager closed before the subsidiary ever opened.
            (M_CLOSED, 1) => slot.state.store(FREE, Ordering::SeqCst),
            _ => {}
        }
        return Ok(());
    }
    match (state, end) {
        (OPEN, _) | (PENDING, 0) => {
            sh.set_doing(me, format!("slot {idx}: {} op", end_name(end)));
            half_op(w, &at, rng, &mut half)?;
        }
        (M_CLOSED, 1) => {
            sh.set_doing(me, format!("slot {idx}: subsidiary after manager close"));
            after_manager_close(w, sh, slot, idx, &mut half)?;
            // Both ends closed: the slot is free (the manager half has no
            // fd any more).
            slot.state.store(FREE, Ordering::SeqCst);
        }
        (S_CLOSED, 0) => {
            sh.set_doing(me, format!("slot {idx}: manager after subsidiary close"));
            after_subsidiary_close(w, sh, slot, idx, &mut half)?;
            slot.state.store(FREE, Ordering::SeqCst);
        }
        // Our own end is closing.
        _ => {}
    }
    Ok(())
}

/// One step of user thread `me`: pick a slot and a half it can lock, act.
pub(super) fn step(w: &mut dyn Pty, sh: &Shared, rng: &mut Rng, me: usize) -> Result<(), String> {
    let idx = rng.below(sh.slots.len() as u64) as usize;
    let end = rng.below(2) as usize;
    if sh.slots[idx].state.load(Ordering::SeqCst) == FREE {
        step_free(w, sh, idx, me)?;
    } else {
        step_half(w, sh, rng, idx, end, me)?;
    }
    sh.set_doing(me, "between steps".into());
    Ok(())
}

/// Closes what is left on slot `idx` at the end of a run, with the same
/// protocol (manager first on even slots, subsidiary first on odd ones).
pub(super) fn close_remaining(w: &mut dyn Pty, sh: &Shared, idx: usize) -> Result<(), String> {
    let slot = &sh.slots[idx];
    let mut m = slot.m.lock().unwrap();
    let mut s = slot.s.lock().unwrap();
    let state = slot.state.load(Ordering::SeqCst);
    if s.fd.is_none() && matches!(state, PENDING | M_CLOSED) {
        // No subsidiary was opened: the manager is closed without checks.
        if let Some(fd) = m.fd.take() {
            w.close(fd).map_err(|e| format!("close manager: {e}"))?;
        }
        slot.state.store(FREE, Ordering::SeqCst);
        return Ok(());
    }
    match state {
        OPEN if idx.is_multiple_of(2) => {
            slot.state.store(M_CLOSED, Ordering::SeqCst);
            let fd = m.fd.take().expect("manager open");
            w.close(fd).map_err(|e| format!("close manager: {e}"))?;
            slot.m_close_done.store(true, Ordering::SeqCst);
            after_manager_close(w, sh, slot, idx, &mut s)
        }
        OPEN => {
            slot.state.store(S_CLOSED, Ordering::SeqCst);
            let fd = s.fd.take().expect("subsidiary open");
            w.close(fd).map_err(|e| format!("close subsidiary: {e}"))?;
            slot.s_close_done.store(true, Ordering::SeqCst);
            after_subsidiary_close(w, sh, slot, idx, &mut m)
        }
        M_CLOSED => after_manager_close(w, sh, slot, idx, &mut s),
        S_CLOSED => after_subsidiary_close(w, sh, slot, idx, &mut m),
        _ => Ok(()),
    }
}
