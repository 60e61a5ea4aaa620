//! Data through a stream head, as `strwrite`, `strputmsg` and `strread`
//! do, a raw message sent down from a stream head, and `poll`.
//!
//! Each `pub(crate)` function here is one system call (or test hook), run
//! in the current world (inside `World::op`), ending with its trace line.

use std::ffi::c_int;
use std::ptr;

use ptm::sys::*;
use ptm_scenario::msg::{inject_call, show_bytes};
use ptm_scenario::{Errno, Fd, O_NDELAY, O_NONBLOCK, PollBits};

use crate::put;
use crate::sched;
use crate::syscall::{head, head_wq, lookup, mt_hung_up, show_unit, stream_err, sys};
use crate::world::{self, StreamId, sd};
use crate::{msg, mt, queue};

/// `b_flag`: the last block of a delimited write.
const MSGDELIM: u16 = 0x04;

/// A new block (not an `allocb` call: never failed, never counted as one)
/// holding `data`.
pub(crate) fn data_block(data: &[u8]) -> *mut mblk_t {
    let mp = msg::alloc(data.len(), false);
    // SAFETY: `mp` is a fresh block with room for `data`.
    unsafe {
        ptr::copy_nonoverlapping(data.as_ptr(), (*mp).b_wptr, data.len());
        (*mp).b_wptr = (*mp).b_wptr.add(data.len());
    }
    mp
}

/// `write(fd, data)`: cut into chunks of the stream's `maxpsz`, each sent
/// down when `canputnext` allows. With `O_NONBLOCK`/`O_NDELAY` a full
/// queue gives EAGAIN before anything was written, a short count after.
pub(crate) fn write(fd: Fd, data: &[u8]) -> Result<usize, Errno> {
    let r = do_write(fd, data);
    sys(
        format!("write(fd{}, {} bytes)", fd.0, data.len()),
        match &r {
            Ok(n) => n.to_string(),
            Err(e) => e.name(),
        },
    );
    r
}

fn do_write(fd: Fd, data: &[u8]) -> Result<usize, Errno> {
    let (sid, flags) = lookup(fd)?;
    let (sflags, werror, rmax) = world::with(|s| {
        let st = &s.streams[sid];
        (st.flags, st.werror, st.qn_maxpsz)
    });
    if sflags & sd::STRHUP != 0 {
        return Err(Errno::EIO);
    }
    if sflags & sd::STWRERR != 0 {
        return Err(Errno(werror));
    }
    if rmax == 0 {
        return Ok(0);
    }
    let delim = sflags & sd::STRDELIM != 0;
    let nonblock = flags & (O_NONBLOCK | O_NDELAY) != 0;
    let wq = head_wq(sid);
    let mut written = 0usize;
    loop {
        let iosize = (data.len() - written).min(rmax as usize);
        if queue::canputnext(wq) == 0
            && let Some(stop) = wait_to_write(sid, wq, nonblock, written)
        {
            return stop;
        }
        let mp = data_block(&data[written..written + iosize]);
        if delim && written + iosize == data.len() {
            // SAFETY: a fresh block.
            unsafe { (*mp).b_flag |= MSGDELIM };
        }
        put::putnext(wq, mp);
        sched::run_services(Some(sid), true);
        written += iosize;
        if written == data.len() {
            break;
        }
    }
    sched::run_services(Some(sid), false);
    Ok(written)
}

/// A write finds the queue below the head full after `written` bytes:
/// `Some(result)` ends the write (EAGAIN or a short count when
/// non-blocking, BLOCKED when nothing can make room, the end of a
/// multi-threaded write whose stream hung up), `None` goes on.
fn wait_to_write(
    sid: StreamId,
    wq: *mut queue_t,
    nonblock: bool,
    written: usize,
) -> Option<Result<usize, Errno>> {
    let short = |e: Errno| {
        if written == 0 { Err(e) } else { Ok(written) }
    };
    if nonblock {
        return Some(short(Errno::EAGAIN));
    }
    sched::run_services(None, false);
    if !mt::settle("write: flow control", || {
        queue::canputnext(wq) != 0 || mt_hung_up(sid)
    }) {
        return Some(Err(Errno::BLOCKED));
    }
    if mt_hung_up(sid) {
        return Some(short(Errno::EIO));
    }
    None
}

/// `putpmsg(fd, NULL, data, band, MSG_BAND)`: one M_DATA message in
/// priority band `band` (ERANGE when longer than the stream's maxpsz).
pub(crate) fn write_band(fd: Fd, band: u8, data: &[u8]) -> Result<(), Errno> {
    let r = do_write_band(fd, band, data);
    sys(
        format!("putpmsg(fd{}, band {band}, {} bytes)", fd.0, data.len()),
        show_unit(&r),
    );
    r
}

fn do_write_band(fd: Fd, band: u8, data: &[u8]) -> Result<(), Errno> {
    let (sid, flags) = lookup(fd)?;
    if let Some(e) = stream_err(sid, sd::STWRERR) {
        return Err(e);
    }
    let (hup, rmax) = world::with(|s| {
        let st = &s.streams[sid];
        (st.flags & sd::STRHUP != 0, st.qn_maxpsz)
    });
    if hup {
        return Err(Errno::ENXIO);
    }
    if data.len() > rmax as usize {
        return Err(Errno::ERANGE);
    }
    let wq = head_wq(sid);
    if queue::bcanputnext(wq, band) == 0 {
        if flags & (O_NONBLOCK | O_NDELAY) != 0 {
            return Err(Errno::EAGAIN);
        }
        sched::run_services(None, false);
        if !mt::settle("putpmsg: flow control", || {
            queue::bcanputnext(wq, band) != 0
        }) {
            return Err(Errno::BLOCKED);
        }
    }
    let mp = data_block(data);
    // SAFETY: a fresh block.
    unsafe { (*mp).b_band = band };
    put::putnext(wq, mp);
    sched::run_services(Some(sid), false);
    Ok(())
}

/// `read(fd, n)` in byte-stream mode: data from as many messages as are
/// queued, up to `n`; a zero-length message read first gives exactly one
/// 0-byte read (after data it is left for the next read); an empty queue
/// after a hangup reads 0; otherwise EAGAIN (non-blocking) or BLOCKED.
pub(crate) fn read(fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
    let r = do_read(fd, n);
    sys(
        format!("read(fd{}, {n})", fd.0),
        match &r {
            Ok(v) => format!("{} {}", v.len(), show_bytes(v)),
            Err(e) => e.name(),
        },
    );
    r
}

/// What a read does with the message at the front of the head's queue.
enum Front {
    /// Nothing queued: the read is over, or waits.
    Empty,
    /// The read is over (a non-data message or a zero-length one behind
    /// data, left for the next read; or a zero-length one taken).
    Stop,
    /// Data was taken; read on unless `n` bytes are in.
    Took,
}

fn do_read(fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
    let (sid, flags) = lookup(fd)?;
    if let Some(e) = stream_err(sid, sd::STRDERR) {
        return Err(e);
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let head = head(sid);
    // SAFETY: the head pair of a live stream.
    let rq: *mut queue_t = unsafe { &mut (*head).rq };
    let nonblock = flags & (O_NONBLOCK | O_NDELAY) != 0;
    let mut out = Vec::new();
    let mut band = 0u8;
    // The world lock is held for the whole loop (it is reentrant) and
    // released only to wait; nothing here calls driver code.
    let mut guard = Some(world::core().st.lock.guard());
    loop {
        // SAFETY: `rq` is the head read queue; messages on it are live.
        match unsafe { take_front(rq, n, &mut out, &mut band) }? {
            Front::Took if out.len() < n => continue,
            Front::Took | Front::Stop => break,
            Front::Empty if !out.is_empty() => break,
            Front::Empty => {}
        }
        let (hup, oldndelay) = world::with(|s| {
            let st = &s.streams[sid];
            (st.flags & sd::STRHUP != 0, st.flags & sd::OLDNDELAY != 0)
        });
        if hup {
            break;
        }
        if nonblock {
            if oldndelay && flags & O_NDELAY != 0 {
                break;
            }
            return Err(Errno::EAGAIN);
        }
        sched::run_services(None, false);
        drop(guard.take());
        let ready = mt::settle("read: no data", || {
            // SAFETY: as above, read under the world lock.
            !unsafe { (*rq).q_first }.is_null()
                || (world::is_mt() && stream_err(sid, sd::STRHUP | sd::STRDERR).is_some())
        });
        guard = Some(world::core().st.lock.guard());
        if !ready {
            return Err(Errno::BLOCKED);
        }
        if let Some(e) = stream_err(sid, sd::STRDERR) {
            return Err(e);
        }
    }
    // SAFETY: the head read queue of a live stream, with the world lock
    // held.
    unsafe { queue::qbackenable(rq, band) };
    drop(guard);
    sched::run_services(Some(sid), false);
    Ok(out)
}

/// One step of a read that wants `n` bytes and has `out` so far: the
/// message at the front of the head's read queue `rq`. An M_SIG is
/// dropped (and the next one looked at); a non-data message fails a read
/// that has nothing yet (EBADMSG); a zero-length message is taken only by
/// a read that has nothing yet; from a data message the bytes wanted are
/// taken and the rest is put back. `band` is the band of the last message
/// taken from.
///
/// # Safety
/// `rq` must be a stream head read queue, with the world lock held.
unsafe fn take_front(
    rq: *mut queue_t,
    n: usize,
    out: &mut Vec<u8>,
    band: &mut u8,
) -> Result<Front, Errno> {
    // SAFETY: the caller's; messages on the queue are live.
    unsafe {
        let mut bp = (*rq).q_first;
        while !bp.is_null() && msg::mtype(bp) as c_int == M_SIG {
            queue::rmvq_noenab(rq, bp);
            msg::freemsg_impl(bp);
            bp = (*rq).q_first;
        }
        if bp.is_null() {
            return Ok(Front::Empty);
        }
        let took_any = !out.is_empty();
        if msg::mtype(bp) as c_int != M_DATA {
            return if took_any {
                Ok(Front::Stop)
            } else {
                Err(Errno::EBADMSG)
            };
        }
        if msg::cont_len(bp).0 == 0 {
            if !took_any {
                queue::rmvq_noenab(rq, bp);
                *band = (*bp).b_band;
                msg::freemsg_impl(bp);
            }
            return Ok(Front::Stop);
        }
        queue::rmvq_noenab(rq, bp);
        *band = (*bp).b_band;
        let rest = copy_out(bp, n - out.len(), out);
        if !rest.is_null() {
            if msg::cont_len(rest).0 == 0 {
                msg::freemsg_impl(rest);
            } else {
                queue::putbq(rq, rest);
            }
        }
        Ok(Front::Took)
    }
}

/// Appends up to `want` bytes of message `mp` to `out`, freeing the
/// blocks it empties (and emptied ones left at the front); returns what
/// is left of the message (or NULL).
///
/// # Safety
/// `mp` must be a live message taken off its queue.
unsafe fn copy_out(mut mp: *mut mblk_t, mut want: usize, out: &mut Vec<u8>) -> *mut mblk_t {
    // SAFETY: the caller's; [rptr, wptr) of each block is its data.
    unsafe {
        while !mp.is_null() && want > 0 {
            let l = msg::blk_len(mp);
            let k = l.min(want);
            out.extend_from_slice(std::slice::from_raw_parts((*mp).b_rptr, k));
            (*mp).b_rptr = (*mp).b_rptr.add(k);
            want -= k;
            if k == l {
                let next = (*mp).b_cont;
                (*mp).b_cont = ptr::null_mut();
                msg::freeb_impl(mp);
                mp = next;
            }
        }
        while !mp.is_null() && msg::blk_len(mp) == 0 && !(*mp).b_cont.is_null() {
            let next = (*mp).b_cont;
            (*mp).b_cont = ptr::null_mut();
            msg::freeb_impl(mp);
            mp = next;
        }
        mp
    }
}

/// Sends a raw message of type `mtype` (band `band`, data `data`) down
/// from the stream head of `fd`, as a module above the driver (or the
/// stream head itself, for M_READ) would. A test hook, not a system call.
pub(crate) fn inject_down(fd: Fd, mtype: u8, band: u8, data: &[u8]) -> Result<(), Errno> {
    let r = lookup(fd).map(|(sid, _)| {
        let mp = data_block(data);
        // SAFETY: a fresh block.
        unsafe {
            (*(*mp).b_datap).db_type = mtype;
            (*mp).b_band = band;
        }
        put::putnext(head_wq(sid), mp);
        sched::run_services(Some(sid), false);
    });
    sys(inject_call(fd, mtype, band, data.len()), show_unit(&r));
    r
}

/// What `poll(fd, POLLIN|POLLOUT)` reports. With a write error and
/// POLLOUT requested, illumos reports POLLERR alone.
pub(crate) fn poll(fd: Fd) -> Result<PollBits, Errno> {
    let (sid, _) = lookup(fd)?;
    let (flags, head) = world::with(|s| (s.streams[sid].flags, s.streams[sid].pairs[0]));
    let mut p = PollBits::default();
    if flags & (sd::STRDERR | sd::STWRERR) != 0 {
        p.pollerr = true;
    } else {
        let _g = world::core().st.lock.guard();
        // SAFETY: the head pair of a live stream.
        unsafe {
            p.pollin = !(*head).rq.q_first.is_null();
            if flags & sd::STRHUP != 0 {
                p.pollhup = true;
            } else {
                let next = (*head).wq.q_next;
                p.pollout = !next.is_null() && (*(*next).q_nfsrv).q_flag & QFULL as u32 == 0;
            }
        }
    }
    sys(format!("poll(fd{})", fd.0), format!("{p:?}"));
    Ok(p)
}
