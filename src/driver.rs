//! The pseudo-terminal manager: ptmopen, ptmclose, ptmwput, ptmrsrv and
//! ptmwsrv, doing what illumos's `usr/src/uts/common/io/ptm.c` does, with
//! the deliberate differences listed below.
//!
//! # How the pieces fit
//!
//! The manager (`/dev/ptmx`, a clone device) and the subsidiary
//! (`/dev/pts/N`, the pts driver) are two streams joined by a shared
//! `pt_ttys` that ptms_conf allocates. Neither driver queues anything on its
//! read side: each `putnext`s straight to the queue above the *other*
//! driver's read queue. What the manager process writes goes ptmwput →
//! (ptm's write queue) → ptmwsrv → above pts; the read-side service routine
//! ptmrsrv exists only so that back-enabling of the manager's stream head
//! reaches the subsidiary's write side.
//!
//! `M_FLUSH` is the one message that needs translating: the manager's write
//! side is the subsidiary's read side, so FLUSHR and FLUSHW swap on the way
//! through. ptm answers five ioctls itself (ISPTM, UNLKPT, PTSSTTY, ZONEPT,
//! OWNERPT) and passes the rest on. While the pty is locked (before UNLKPT)
//! or the subsidiary is not open, anything that would go to it is refused:
//! ioctls with a NAK, everything else with a two-byte `M_ERROR` that sets
//! a persistent EINVAL write error on the manager's stream head.
//!
//! # Locking and the protocol shared with pts
//!
//! Two mutexes and one reference count order everything ptm and pts share.
//!
//! * **`ptms_lock`** (global, ptms_conf's) guards the table of ptys, the
//!   minor numbers and the pty count. ptm never takes it itself: only
//!   inside `pt_ttys_alloc` and `ptms_close`, which it calls holding no
//!   other lock and no reference.
//! * **`pt_lock`** (one per pty) guards `pt_state`, `pt_zoneid`, the owner
//!   (`pt_ruid`, `pt_rgid`) and `pt_refcnt`. It is a real mutex: ptm holds
//!   it only to change one of those fields ([`PtLock`](ddi::PtLock)) or
//!   the count, and never across a call into STREAMS.
//! * **Order:** a path that needs both takes `ptms_lock` first, then
//!   `pt_lock` -- `ptms_close`, and pts's open, which looks the pty up and
//!   checks its state under both. Nothing takes them the other way round.
//! * **The reference locks** (`PT_ENTER_READ`/`PT_EXIT_READ`,
//!   `PT_ENTER_WRITE`/`PT_EXIT_WRITE`; here [`ReadRef`](ddi::ReadRef) and
//!   [`WriteRef`](ddi::WriteRef)) make a readers/writer lock out of
//!   `pt_refcnt` -- the number of readers, or -1 for the one writer -- with
//!   waiters sleeping on `pt_cv` under `pt_lock`. They exist for one thing:
//!   the peer's read queue must not go away while it is used. A reference
//!   is a count, not a held mutex, so a reader may keep it across `putnext`
//!   and `putq`, and may take another while it has one (a `putnext` can
//!   come back into this driver on the same thread). Only the open and
//!   close routines of ptm and pts take the writer mark, never while they
//!   hold a reader reference.
//!
//! Who writes which field of `struct pt_ttys`:
//!
//! * `ptm_rdq`: ptm, under the writer mark -- set in open only after
//!   `qprocson`, so that pts never sees a half-plumbed queue, and cleared in
//!   close before `qprocsoff`. pts reads it under a reader reference to
//!   send upstream to the manager.
//! * `pts_rdq`: pts, in the same way in its own open and close. ptm reads
//!   it under a reader reference to send to the subsidiary (the
//!   [`Plumbed`] queue type records that it has a successor), and without
//!   one as a snapshot to choose between queueing and refusing
//!   ([`ptmwput`]).
//! * `pt_nullmsg`: pts stores the empty message it preallocates in its
//!   open and takes it back in its close; ptm's close frees whatever is
//!   left. Always under the writer mark, which spares it a mutex.
//! * `pt_state`, under `pt_lock`: `pt_ttys_alloc` starts a pty at
//!   `PTMOPEN | PTLOCK`; ptm clears `PTLOCK` (UNLKPT, the only way to
//!   unlock, and never undone) and sets `PTSTTY` (PTSSTTY); pts sets
//!   `PTSOPEN` in its open and may set `PTSTTY` (its own PTSSTTY); each
//!   side's close has `ptms_close` clear its bits (ptm: `PTMOPEN | PTLOCK`,
//!   here also `PTSTTY`, below; pts: `PTSOPEN | PTSTTY`). ptm reads the
//!   state without the lock: each read is one atomic load, as good as the
//!   snapshot ptm.c takes.
//! * `pt_zoneid`: the opener's zone at allocation, then ptm (ZONEPT), under
//!   `pt_lock`; pts's open refuses callers of other zones.
//! * `pt_ruid`, `pt_rgid`: ptm (OWNERPT) under `pt_lock`; ptms_conf's
//!   `ptms_set_owner` (a chown of the `/dev/pts` node) under `ptms_lock`.
//! * `pt_minor` (and `pt_pid`) are fixed at allocation; `pt_refcnt` changes
//!   only inside the reference-lock operations.
//!
//! # The deliberate differences from illumos
//!
//! The driver does what ptm.c does, message for message -- the tests
//! compare the two -- except where listed here.
//!
//! Behaviour:
//!
//! * OWNERPT looks up the pty's zone with `zone_find_by_id`, which returns
//!   NULL when ZONEPT moved the pty into a zone that no longer exists (or
//!   is not running); illumos then passes NULL to `zone_rele` (and, for
//!   large ids, to `valid_ephemeral_uid`) and panics. Here that OWNERPT is
//!   refused with EINVAL ([`ownerpt`]).
//! * An ioctl bound for the subsidiary that `putq` cannot queue (no band
//!   structure could be allocated for its band) is NAKed with ENOSR, so
//!   that its caller wakes at once and learns why; illumos ignores putq's
//!   failure, leaking the message while its caller waits for the ioctl's
//!   timeout ([`ptm_ioctl`], `Queue::putq_or_refuse`).
//! * Any other message that `putq` or `putbq` cannot queue is freed;
//!   illumos leaks it ([`ptmwput`], `send_to_subsidiary`).
//! * The manager's close clears PTSTTY as well as PTMOPEN and PTLOCK when
//!   no subsidiary is open, so that a pty freed without a subsidiary ever
//!   opening has no state left (illumos's DEBUG kernel asserts that when
//!   the pty cache is reaped; [`ptmclose`]).
//! * An `M_IOCTL` whose first block is too small for an `iocblk` (the
//!   stream head never sends one; only a module above ptm could) is freed
//!   unanswered; ptm.c reads its command regardless and forwards it or
//!   answers it, writing the answer past the block ([`ptm_ioctl`]).
//!
//! No behaviour changes, but not the same code:
//!
//! * The put procedure takes the reader reference only on the `M_FLUSH`
//!   path, the one that uses the peer's queue ([`ptmwput`] says why no
//!   outcome changes).
//! * `getminor`, `getmajor` and `makedevice` are computed in place
//!   ([`logic`]), not called.
//! * What is rare or holds values across calls is in functions of its own
//!   that ptm.c does not have (`ptm_flush`, `ptm_unlkpt`, `ptm_rare_ioctl`,
//!   `ptm_error_reply`, `ptm_discard_all`, `ptm_putq_banded`, and `pt_wait`
//!   for the reference locks' waits); ptm.c's functions and tables keep
//!   their names.
//! * Debug logging (`DBG`, `DDBG`) is compiled out of a non-DEBUG illumos
//!   kernel and so is absent here. ptm.c's `ASSERT(q->q_ptr)`s are framework
//!   invariants; here they are the documented safety preconditions of the
//!   entry-point glue (`PtTtys::of_open_stream`).

use core::ffi::c_int;

use crate::ddi::{self, Errno, FlushMode, Message, Plumbed, PtTtys, Queue, Zone};
use crate::flags::{OpenFlags, OpenState, PtState};
use crate::logic::{self, PtIoctl};
use crate::sys::{self, dev_t};

/// Opens a manager: always through the clone device, one open per minor.
///
/// Allocates the pty (state `PTMOPEN | PTLOCK`, so the subsidiary stays
/// locked until UNLKPT), links the queues, publishes the read queue to the
/// subsidiary side and sends the stream head its tty options. `*devp`
/// returns with the new minor.
#[inline]
pub fn ptmopen(rqp: Queue<'_>, devp: &mut dev_t, oflag: c_int, sflag: c_int) -> Result<(), Errno> {
    let sflag = OpenState::from_bits_retain(sflag);
    let dminor = logic::getminor(*devp);

    // Allow reopen.
    if !rqp.private().is_null() {
        return Ok(());
    }

    if sflag.contains(OpenState::MODOPEN) {
        return Err(Errno::ENXIO);
    }

    // A direct open of a specific manager minor (through a hand-made /dev
    // node) is not supported.
    if !sflag.contains(OpenState::CLONEOPEN) && dminor != 0 {
        return Err(Errno::ENXIO);
    }

    // The subsidiary driver must be attached before the open returns, so
    // that opening the subsidiary will succeed.
    if !ddi::attach_subsidiary() {
        return Err(Errno::ENXIO);
    }

    // Stream-head read water marks, and a controlling tty unless O_NOCTTY
    // (sent up once the stream is ready; made first, as ptm.c does, so that
    // a shortage fails the open before a pty is taken).
    let opts = logic::manager_setopts(OpenFlags::from_bits_retain(oflag));
    let Some(mop) = Message::stroptions(opts.flags.bits(), opts.hiwat, opts.lowat) else {
        return Err(Errno::ENOMEM);
    };

    let Some(ptmp) = PtTtys::alloc() else {
        drop(mop);
        return Err(Errno::ENOMEM);
    };

    let dminor = ptmp.minor();

    rqp.set_private_pair(ptmp.as_ptr());

    // From here the read queue has the stream head above it.
    let rqp = rqp.qprocson();

    // Allow the subsidiary to send messages to the manager.
    let mut w = ptmp.enter_write();
    w.set_ptm_rdq(Some(rqp));
    w.release();

    rqp.putnext(mop);

    *devp = logic::makedevice(logic::getmajor(*devp), dminor);

    // From here the pty is reached through q_ptr, until ptmclose.
    Ok(())
}

/// Closes the manager: hangs up the subsidiary, unpublishes the manager's
/// read queue, lets the subsidiary's write side drain (its service routine
/// now NAKs and frees what it holds), unlinks and gives the pty back.
#[inline]
pub fn ptmclose(rqp: Queue<'_>, ptmp: PtTtys) {
    let r = ptmp.enter_read();
    // ptm.c tests q_next before putnextctl; a published pts_rdq always has
    // one (`Plumbed`), so the test only keeps step with ptm.c.
    if let Some(pts_rdq) = r.pts_rdq()
        && pts_rdq.has_next()
    {
        // Tell the subsidiary side the manager is gone.
        let _ = pts_rdq.putnextctl(sys::M_HANGUP as u8);
    }
    r.release();

    // ptm_rdq is cleared before qprocsoff so that the subsidiary's write
    // side cannot use it afterwards.
    let mut w = ptmp.enter_write();
    w.set_ptm_rdq(None);
    drop(w.take_nullmsg());
    // Let the subsidiary's write queue flush now that our read queue is
    // going away.
    if let Some(pts_rdq) = w.pts_rdq() {
        pts_rdq.wr().qenable();
    }
    w.release();

    rqp.qprocsoff();

    // Finish the close.
    rqp.set_private_pair(core::ptr::null_mut());

    // Deliberate fix: with no subsidiary open, PTSTTY goes too. ptm.c
    // leaves it for the subsidiary's close to clear, so a manager that sent
    // PTSSTTY and closes before any subsidiary opened frees its pty with
    // PTSTTY set, and illumos's DEBUG cache destructor (pt_state == 0)
    // panics when the cache is reaped. Clearing it changes nothing pts can
    // see, even if a subsidiary opens after this look: its later readers of
    // PTSTTY are ptsopen, refused once PTMOPEN is gone, and its PTSSTTY
    // ioctl, NAKed since ptm_rdq was cleared above.
    let mut clear = PtState::PTMOPEN | PtState::PTLOCK;
    if !ptmp.state().contains(PtState::PTSOPEN) {
        clear |= PtState::PTSTTY;
    }
    ptmp.close(clear);
}

/// The write-side put procedure: flushes and ioctls are handled here, data
/// and everything else is queued for ptmwsrv, or refused while the
/// subsidiary cannot take it.
///
/// ptm.c holds a reader reference (PT_ENTER_READ) across the whole put
/// procedure. The reference exists to keep the peer's queue alive while it
/// is used, and only the `M_FLUSH` branch uses it (`putnext` to the
/// subsidiary), so only that branch takes it here. Every other branch only
/// *looks* at `pts_rdq` and `PTLOCK` to decide between queueing and
/// refusing, and acts on ptm's own queue. Those two looks are snapshots in
/// C as well -- the subsidiary may close the moment PT_EXIT_READ returns --
/// and each of them linearises with the writers: `pts_rdq` changes in one
/// store under the writer mark, and `PTLOCK` is only ever cleared. So every
/// outcome here is an outcome ptm.c can have, and the common path (data,
/// ioctls) saves two `pt_lock` round trips per message.
#[inline]
pub fn ptmwput(qp: Queue<'_>, ptmp: PtTtys, mp: Message) {
    // Ordinary messages first (data above all): one test tells them from
    // the high-priority ones, a second M_IOCTL from the rest.
    let db_type = c_int::from(mp.db_type());
    if db_type < sys::QPCTL {
        if db_type == sys::M_IOCTL {
            ptm_ioctl(qp, ptmp, mp);
            return;
        }
    } else if db_type == sys::M_FLUSH {
        ptm_flush(qp, ptmp, mp);
        return;
    } else if db_type == sys::M_READ {
        // Caused by ldterm; cannot be passed to the subsidiary.
        drop(mp);
        return;
    }
    // Everything else goes to the subsidiary, once there is one.
    if !ptmp.subsidiary_ready() {
        error_reply(qp, Some(mp));
        return;
    }
    // putq fails only when a band structure cannot be allocated; illumos
    // then leaks the message, this frees it (`putq_or_refuse`).
    qp.putq_or_refuse(mp);
}

/// The `M_FLUSH` branch of ptmwput: a write-side flush empties ptm's write
/// queue and becomes a read-side flush above the subsidiary; a read-side
/// flush becomes a write-side one.
///
/// Kept out of line so that the data path through ptmwput needs no
/// registers beyond its own. Only the pty and the message are needed across
/// the calls: the flag byte is read again, under the reference, to compute
/// what goes on.
#[inline(never)]
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
extern "C" fn ptm_flush(qp: Queue<'_>, ptmp: PtTtys, mut mp: Message) {
    let plan = logic::flush_plan(mp.byte(0));
    if plan.flush_own_write() {
        if plan.band_only() {
            qp.flushband(mp.byte(1), FlushMode::Data);
        } else {
            qp.flushq(FlushMode::Data);
        }
    }
    if !plan.forwards() {
        // Nothing for the subsidiary (ptm.c frees it under the reference,
        // which changes nothing).
        drop(mp);
        return;
    }
    let r = ptmp.enter_read();
    match r.ready_subsidiary() {
        Some(pts_rdq) => {
            let mut head = mp.head();
            head.set(0, logic::flush_plan(head.get(0)).forward().bits());
            pts_rdq.putnext(mp);
        }
        None => drop(mp),
    }
    r.release();
}

/// The `M_IOCTL` branch of ptmwput (no peer queue is used here; see
/// [`ptmwput`]). An ioctl that is not ptm's is queued for the subsidiary,
/// or refused with EINVAL while there is none; ISPTM is acknowledged here,
/// UNLKPT by [`ptm_unlkpt`], PTSSTTY, ZONEPT and OWNERPT by
/// [`ptm_rare_ioctl`]. Nothing here is needed across a call, so it expands
/// in ptmwput at no cost to the data path there; what holds values across
/// calls (a lock, then the ACK) is out of line.
#[inline(always)]
fn ptm_ioctl(qp: Queue<'_>, ptmp: PtTtys, mp: Message) {
    let Some(cmd) = mp.ioctl().map(|ioc| ioc.cmd()) else {
        // Not even an iocblk: nothing the stream head sends. It cannot be
        // answered (an answer is written into the iocblk), so free it.
        return;
    };
    match logic::classify_ioctl(cmd) {
        PtIoctl::Other => {
            if !ptmp.subsidiary_ready() {
                qp.miocnak(mp, 0, Errno::EINVAL);
            } else {
                // Queued for ptmwsrv. Deliberate difference: NAKed with
                // ENOSR if no band structure can be allocated for it
                // (`putq_or_refuse`).
                qp.putq_or_refuse(mp);
            }
        }
        PtIoctl::IsPtm => qp.miocack(mp, 0, 0),
        PtIoctl::Unlock => ptm_unlkpt(qp, ptmp, mp),
        rare => ptm_rare_ioctl(qp, ptmp, mp, rare),
    }
}

/// UNLKPT: clears PTLOCK under `pt_lock` (subsidiary opens are allowed
/// from now on), and acknowledges.
#[inline(never)]
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
extern "C" fn ptm_unlkpt(qp: Queue<'_>, ptmp: PtTtys, mp: Message) {
    ptmp.lock().remove_state(PtState::PTLOCK);
    qp.miocack(mp, 0, 0);
}

/// PTSSTTY, ZONEPT and OWNERPT: answered with an ACK, or a NAK carrying
/// the errno.
#[inline(never)]
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
extern "C" fn ptm_rare_ioctl(qp: Queue<'_>, ptmp: PtTtys, mut mp: Message, which: PtIoctl) {
    let reply = match which {
        PtIoctl::ZonePt => zonept(&ptmp, &mut mp),
        PtIoctl::OwnerPt => ownerpt(&ptmp, &mut mp),
        _ => {
            // PTSSTTY: XPG4v2 semantics for the subsidiary.
            ptmp.lock().insert_state(PtState::PTSTTY);
            Ok(())
        }
    };
    match reply {
        Ok(()) => qp.miocack(mp, 0, 0),
        Err(error) => qp.miocnak(mp, 0, error),
    }
}

/// ZONEPT: only a caller with PRIV_SYS_DEVICES may move the subsidiary into
/// a zone, named by a `zoneid_t` payload in 0..=9999. The zone need not
/// exist (yet).
fn zonept(ptmp: &PtTtys, mp: &mut Message) -> Result<(), Errno> {
    let cred = mp.ioctl().map(|ioc| ioc.cred()).ok_or(Errno::EINVAL)?;
    cred.drv_priv()?;
    let z = mp.pullup_payload::<sys::zoneid_t>()?;
    if !logic::zone_id_in_range(z) {
        return Err(Errno::EINVAL);
    }
    ptmp.lock().set_zoneid(z);
    Ok(())
}

/// OWNERPT (from grantpt): the subsidiary node's owner, a `pt_own_t` whose
/// ids must be valid in the pty's zone. No privilege is required.
fn ownerpt(ptmp: &PtTtys, mp: &mut Message) -> Result<(), Errno> {
    let own = mp.pullup_payload::<sys::pt_own_t>()?;
    // Deliberate fix: illumos passes a NULL zone on to VALID_UID and
    // zone_rele (a panic) when the pty's zone is gone; refuse instead.
    let zone = Zone::find_by_id(ptmp.zoneid()).ok_or(Errno::EINVAL)?;
    if !zone.valid_uid(own.pto_ruid) || !zone.valid_gid(own.pto_rgid) {
        // The zone hold is released on the way out, before the NAK.
        return Err(Errno::EINVAL);
    }
    drop(zone);
    ptmp.lock().set_owner(own.pto_ruid, own.pto_rgid);
    Ok(())
}

/// Sends `M_ERROR(NOERROR, EINVAL)` up the manager's stream -- leave reads
/// alone, fail writes with EINVAL from now on -- made of `mp` (a message
/// for the subsidiary while there is none, or it is locked) or, for `None`,
/// a new one.
#[cold]
#[inline(never)]
#[cfg_attr(ptm_kernel, unsafe(export_name = "ptm_error_reply"))]
fn error_reply(qp: Queue<'_>, mp: Option<Message>) {
    let bytes = [sys::NOERROR, Errno::EINVAL.to_byte()];
    if let Some(err) = Message::exchange(mp, sys::M_ERROR as u8, bytes) {
        qp.qreply(err);
    }
}

/// The read-side service routine: the manager's stream head has room again,
/// so let the subsidiary's write side send what it holds.
#[inline]
pub fn ptmrsrv(ptmp: &PtTtys) {
    let r = ptmp.enter_read();
    if let Some(pts_rdq) = r.pts_rdq() {
        pts_rdq.wr().qenable();
    }
    r.release();
}

/// The write-side service routine: passes queued messages to the
/// subsidiary while it has room (high-priority ones regardless), or, when
/// the subsidiary is gone or locked, discards them -- NAKing ioctls so their
/// callers wake -- and raises the write error.
#[inline]
pub fn ptmwsrv(qp: Queue<'_>, ptmp: &PtTtys) {
    // If there are no messages there's nothing to do.
    let Some(mp) = qp.getq() else {
        return;
    };

    let r = ptmp.enter_read();
    match r.ready_subsidiary() {
        Some(pts_rdq) => send_to_subsidiary(qp, pts_rdq, mp),
        None => discard_all(qp, mp),
    }
    r.release();
}

/// ptmwsrv's loop: passes messages up the subsidiary's stream while it has
/// room (high-priority ones regardless); the first one that must wait goes
/// back on the queue.
#[inline(always)]
fn send_to_subsidiary(qp: Queue<'_>, pts_rdq: Queue<'_, Plumbed>, mut mp: Message) {
    loop {
        // Ordinary messages wait while the subsidiary is full; high-priority
        // ones go regardless.
        if logic::is_flow_controlled(mp.db_type()) && !pts_rdq.bcanputnext(mp.band()) {
            // Failing means no band structure could be had: freed (illumos
            // leaks it).
            let _ = qp.putbq(mp);
            return;
        }
        pts_rdq.putnext(mp);
        match qp.getq() {
            Some(next) => mp = next,
            None => return,
        }
    }
}

/// ptmwsrv with the subsidiary gone or locked: frees everything queued,
/// NAKing ioctls so that their callers wake, and raises the manager's write
/// error.
#[inline(never)]
#[cfg_attr(ptm_kernel, unsafe(export_name = "ptm_discard_all"))]
fn discard_all(qp: Queue<'_>, mut mp: Message) {
    loop {
        if c_int::from(mp.db_type()) == sys::M_IOCTL {
            qp.miocnak(mp, 0, Errno::EINVAL);
        } else {
            drop(mp);
        }
        match qp.getq() {
            Some(next) => mp = next,
            None => break,
        }
    }
    qp.flushq(FlushMode::All);
    error_reply(qp, None);
}
