//! The stream head: its queue pair (read put procedure `strrput`, write
//! service procedure `strwsrv`) and what it does with each message type
//! arriving from below, as illumos `strrput`/`strrput_nondata` do.

use std::ffi::{c_char, c_int};
use std::ptr;

use ptm::sys::*;

use ptm_scenario::TraceEvent;
use ptm_scenario::msg::describe;

use crate::msg::{blk_len, freemsg_impl, mtype};
use crate::put;
use crate::queue::{self, flushq_common, qbackenable, stream_of};
use crate::world::{self, sd};

/// A static that holds raw pointers (module_info names, qinit links).
#[repr(transparent)]
pub(crate) struct SyncStatic<T>(pub T);
// SAFETY: these statics are immutable tables of pointers to other
// immutable statics; nothing ever writes through them.
unsafe impl<T> Sync for SyncStatic<T> {}

/// `struct copyresp` (LP64, 40 bytes; not in the project header).
#[repr(C)]
struct CopyResp {
    cp_cmd: c_int,
    cp_cr: *mut cred_t,
    cp_id: u32,
    cp_flag: u32,
    cp_private: *mut mblk_t,
    cp_rval: caddr_t,
}

/// `b_flag`: the M_FLUSH has already been looped back by a stream head.
pub(crate) const MSGNOLOOP: u16 = 0x02;
/// `SO_BAND` etc. are in the header; `INFPSZ` as an `isize`.
const INFPSZ_I: isize = INFPSZ as isize;

static HEAD_RMINFO: SyncStatic<module_info> = SyncStatic(module_info {
    mi_idnum: 0,
    mi_idname: c"strrhead".as_ptr() as *mut c_char,
    mi_minpsz: 0,
    mi_maxpsz: INFPSZ_I,
    mi_hiwat: STRHIGH as usize,
    mi_lowat: STRLOW as usize,
});

static HEAD_WMINFO: SyncStatic<module_info> = SyncStatic(module_info {
    mi_idnum: 0,
    mi_idname: c"strwhead".as_ptr() as *mut c_char,
    mi_minpsz: 0,
    mi_maxpsz: 0,
    mi_hiwat: 0,
    mi_lowat: 0,
});

pub(crate) static HEAD_RINIT: SyncStatic<qinit> = SyncStatic(qinit {
    qi_putp: Some(strrput),
    qi_srvp: None,
    qi_qopen: None,
    qi_qclose: None,
    qi_qadmin: None,
    qi_minfo: &raw const HEAD_RMINFO.0 as *mut module_info,
    qi_mstat: ptr::null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

pub(crate) static HEAD_WINIT: SyncStatic<qinit> = SyncStatic(qinit {
    qi_putp: None,
    qi_srvp: Some(strwsrv),
    qi_qopen: None,
    qi_qclose: None,
    qi_qadmin: None,
    qi_minfo: &raw const HEAD_WMINFO.0 as *mut module_info,
    qi_mstat: ptr::null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

static DEAD_MINFO: SyncStatic<module_info> = SyncStatic(module_info {
    mi_idnum: 0,
    mi_idname: c"freed".as_ptr() as *mut c_char,
    mi_minpsz: 0,
    mi_maxpsz: 0,
    mi_hiwat: 0,
    mi_lowat: 0,
});

/// The qinit of a freed queue: every procedure reports a use after free.
pub(crate) static DEAD_QINIT: SyncStatic<qinit> = SyncStatic(qinit {
    qi_putp: Some(dead_put),
    qi_srvp: Some(dead_srv),
    qi_qopen: None,
    qi_qclose: None,
    qi_qadmin: None,
    qi_minfo: &raw const DEAD_MINFO.0 as *mut module_info,
    qi_mstat: ptr::null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

unsafe extern "C" fn dead_put(_q: *mut queue_t, mp: *mut mblk_t) -> c_int {
    world::anomaly("message put to a queue that was freed (use after close)");
    freemsg_impl(mp);
    0
}

unsafe extern "C" fn dead_srv(_q: *mut queue_t) -> c_int {
    world::anomaly("service procedure of a queue that was freed");
    0
}

/// Stream head write service procedure: wakes writers (nothing to do in the
/// single-threaded simulator beyond recording that it ran).
unsafe extern "C" fn strwsrv(_q: *mut queue_t) -> c_int {
    0
}

/// Stream head read put procedure.
///
/// # Safety
/// Called by the framework with a stream head read queue and a live message.
pub(crate) unsafe extern "C" fn strrput(q: *mut queue_t, bp: *mut mblk_t) -> c_int {
    // Everything but the message sent back down (an M_FLUSH looped back, an
    // ioctl NAK, ...) happens under the world lock; that message is sent
    // after it is released, since it goes to driver code.
    let down = world::locked(|| {
        // SAFETY: `q` is a stream head read queue (the framework's caller).
        let sid = unsafe { stream_of(q) };
        world::with(|s| {
            if s.tracing {
                // SAFETY: `bp` was validated by putnext.
                let msg = unsafe { describe(bp, &mut s.ioc_ids) };
                let stream = s.stream_name(sid);
                s.trace.push(TraceEvent::HeadRecv { stream, msg });
            }
        });
        // SAFETY: as above.
        let t = unsafe { mtype(bp) } as c_int;
        match t {
            M_DATA | M_PROTO | M_PASSFP => {
                // SAFETY: `q` is the head read queue; the message is live.
                queue::putq(q, bp);
                None
            }
            M_PCPROTO => {
                let dup = world::with(|s| {
                    let st = &mut s.streams[sid];
                    if st.flags & sd::STRPRI != 0 {
                        true
                    } else {
                        st.flags |= sd::STRPRI;
                        false
                    }
                });
                if dup {
                    freemsg_impl(bp);
                } else {
                    queue::putq(q, bp);
                }
                None
            }
            // SAFETY: as above.
            _ => unsafe { strrput_nondata(q, bp, sid) },
        }
    });
    if let Some(m) = down {
        // Multi-threaded, the driver below may have done qprocsoff since
        // the check made under the lock: then the reply is dropped, as the
        // stream head does when it finds itself unlinked.
        // SAFETY: `q` is the head read queue; its write queue follows it.
        let wq = unsafe { q.add(1) };
        let unlinked = world::is_mt()
            && world::locked(|| {
                // SAFETY: the head write queue, read under the world lock.
                unsafe { (*wq).q_next.is_null() }
            });
        if unlinked {
            freemsg_impl(m);
        } else {
            put::putnext_or_drop(wq, m);
        }
    }
    0
}

/// `OTHERQ(q)->q_next == NULL`: the driver has done qprocsoff.
unsafe fn head_unlinked(q: *mut queue_t) -> bool {
    // SAFETY: `q` is the head read queue; the write queue follows it.
    unsafe { (*q.add(1)).q_next.is_null() }
}

/// One side's byte of a two-byte `M_ERROR`: NOERROR leaves that side
/// alone, 0 clears its error, anything else sets it (flag `err_flag`,
/// errno saved in `saved`). Returns the flush bit to loop back for that side
/// (`flush`, or 0) and the same bit if the error was already set.
fn apply_error_byte(
    flags: &mut u32,
    saved: &mut i32,
    byte: u8,
    err_flag: u32,
    flush: u8,
) -> (u8, u8) {
    if byte == NOERROR {
        return (0, 0);
    }
    *saved = i32::from(byte);
    if byte == 0 {
        *flags &= !err_flag;
        return (0, 0);
    }
    let already = if *flags & err_flag != 0 { flush } else { 0 };
    *flags |= err_flag;
    (flush, already)
}

/// What the stream head does with a message that is not data, as
/// `strrput_nondata` does: returns the message to send back down, if any
/// (an M_FLUSH looped back, an M_ERROR turned into one, an ioctl NAKed, a
/// copy request failed).
///
/// # Safety
/// `q` must be a stream head read queue and `bp` a live message, with the
/// world lock held.
unsafe fn strrput_nondata(q: *mut queue_t, bp: *mut mblk_t, sid: usize) -> Option<*mut mblk_t> {
    // SAFETY: the caller's; every arm reads the message within its first
    // block's bounds.
    unsafe {
        match mtype(bp) as c_int {
            M_ERROR => return m_error(q, bp, sid),
            M_HANGUP => {
                freemsg_impl(bp);
                world::with(|s| {
                    let st = &mut s.streams[sid];
                    st.werror = ENXIO;
                    st.flags |= sd::STRHUP;
                });
            }
            M_UNHANGUP => {
                freemsg_impl(bp);
                world::with(|s| {
                    let st = &mut s.streams[sid];
                    st.werror = 0;
                    st.flags &= !sd::STRHUP;
                });
            }
            M_SIG => {
                // Queued if something is already there; otherwise delivered
                // (the simulator has no processes: recorded in the trace).
                if !(*q).q_first.is_null() {
                    queue::putq(q, bp);
                } else {
                    freemsg_impl(bp);
                }
            }
            M_PCSIG => freemsg_impl(bp),
            M_FLUSH => return m_flush(q, bp, sid),
            M_IOCACK | M_IOCNAK => m_ioc_reply(bp, sid),
            M_COPYIN | M_COPYOUT => return m_copy(bp),
            M_SETOPTS => m_setopts(q, bp, sid),
            M_IOCTL => {
                // Always NAKed back down (ioc_error unchanged).
                (*(*bp).b_datap).db_type = M_IOCNAK as u8;
                return send_back(q, bp);
            }
            _ => freemsg_impl(bp),
        }
        None
    }
}

/// `bp`, to be sent back down from head read queue `q`, unless the driver
/// has done `qprocsoff` (then it is freed).
///
/// # Safety
/// As [`strrput_nondata`].
unsafe fn send_back(q: *mut queue_t, bp: *mut mblk_t) -> Option<*mut mblk_t> {
    // SAFETY: the caller's.
    if unsafe { head_unlinked(q) } {
        freemsg_impl(bp);
        None
    } else {
        Some(bp)
    }
}

/// M_ERROR: a two-byte message sets or clears the read and write errors
/// one by one (the sides newly in error are flushed, the message becoming
/// that M_FLUSH); a one-byte non-zero one sets both (a FLUSHRW, unless an
/// error was already set).
///
/// # Safety
/// As [`strrput_nondata`].
unsafe fn m_error(q: *mut queue_t, bp: *mut mblk_t, sid: usize) -> Option<*mut mblk_t> {
    // SAFETY: the caller's; the bytes read are within the first block.
    unsafe {
        let n = blk_len(bp);
        let b0 = if n > 0 { *(*bp).b_rptr } else { 0 };
        if n == 2 {
            let b1 = *(*bp).b_rptr.add(1);
            let (rw, already) = world::with(|s| {
                let st = &mut s.streams[sid];
                let (r, r_set) =
                    apply_error_byte(&mut st.flags, &mut st.rerror, b0, sd::STRDERR, FLUSHR as u8);
                let (w, w_set) =
                    apply_error_byte(&mut st.flags, &mut st.werror, b1, sd::STWRERR, FLUSHW as u8);
                (r | w, r_set | w_set)
            });
            (*bp).b_rptr = (*bp).b_rptr.add(1);
            if rw == 0 || already == rw {
                freemsg_impl(bp);
                return None;
            }
            (*(*bp).b_datap).db_type = M_FLUSH as u8;
            *(*bp).b_rptr = rw;
            (*bp).b_wptr = (*bp).b_rptr.add(1);
            return send_back(q, bp);
        } else if n >= 1 && b0 != 0 {
            let already = world::with(|s| {
                let st = &mut s.streams[sid];
                let already = st.flags & (sd::STRDERR | sd::STWRERR) != 0;
                st.flags |= sd::STRDERR | sd::STWRERR;
                st.rerror = b0 as i32;
                st.werror = b0 as i32;
                already
            });
            if !already {
                (*(*bp).b_datap).db_type = M_FLUSH as u8;
                *(*bp).b_rptr = FLUSHRW as u8;
                return send_back(q, bp);
            }
        }
        freemsg_impl(bp);
        None
    }
}

/// M_FLUSH: FLUSHR flushes the head's read queue (one band with
/// FLUSHBAND); FLUSHW is looped back down once, without FLUSHR.
///
/// illumos ASSERTs that a FLUSHBAND one has its band byte; without it a
/// DEBUG kernel panics, and a non-DEBUG one reads the byte past the data
/// (the model's blocks have room for it).
///
/// # Safety
/// As [`strrput_nondata`].
unsafe fn m_flush(q: *mut queue_t, bp: *mut mblk_t, sid: usize) -> Option<*mut mblk_t> {
    const ASSERT: &str = "failed ASSERT((bp->b_wptr - bp->b_rptr) >= 2) in strrput";
    // SAFETY: the caller's; the bytes read are within the first block's
    // buffer (at least 8 bytes in the model).
    unsafe {
        let f = *(*bp).b_rptr;
        if f & FLUSHR as u8 != 0 {
            if f & FLUSHBAND as u8 != 0 {
                if blk_len(bp) < 2 {
                    world::anomaly(ASSERT);
                    world::trace(TraceEvent::Note(format!(
                        "{ASSERT}: a DEBUG kernel panics here"
                    )));
                }
                queue::flushband(q, *(*bp).b_rptr.add(1), FLUSHALL);
            } else {
                flushq_common(q, FLUSHALL, false);
            }
            let first = (*q).q_first;
            if first.is_null() || (mtype(first) as c_int) < QPCTL {
                world::with(|s| s.streams[sid].flags &= !sd::STRPRI);
            }
        }
        if f & FLUSHW as u8 != 0 && (*bp).b_flag & MSGNOLOOP == 0 {
            *(*bp).b_rptr &= !(FLUSHR as u8);
            (*bp).b_flag |= MSGNOLOOP;
            return send_back(q, bp);
        }
        freemsg_impl(bp);
        None
    }
}

/// M_IOCACK/M_IOCNAK: the answer the stream is waiting for (its id) is
/// kept for `strdoioctl`; any other is freed (a second answer to the same
/// ioctl is noted).
///
/// # Safety
/// As [`strrput_nondata`].
unsafe fn m_ioc_reply(bp: *mut mblk_t, sid: usize) {
    // SAFETY: the caller's; the iocblk is read only when the first block
    // holds one.
    let ok = unsafe { blk_len(bp) } >= std::mem::size_of::<iocblk>();
    let id = if ok {
        // SAFETY: as above.
        unsafe { (*((*bp).b_rptr as *const iocblk)).ioc_id }
    } else {
        0
    };
    let take = world::with(|s| {
        let st = &mut s.streams[sid];
        if ok && st.flags & sd::IOCWAIT != 0 && st.iocblk.is_null() && st.iocid == id {
            st.iocblk = bp;
            true
        } else {
            if ok && st.iocid == id && !st.iocblk.is_null() {
                let n = s.ioc_ids.number(id);
                s.trace.push(TraceEvent::Note(format!(
                    "duplicate ioctl reply id={n} freed"
                )));
            }
            false
        }
    });
    if !take {
        freemsg_impl(bp);
    }
}

/// M_COPYIN/M_COPYOUT: no transparent ioctls are issued by the model's
/// processes, so the request fails as the stream head fails one it is not
/// waiting for: an M_IOCDATA with a non-zero `cp_rval` goes back down.
///
/// # Safety
/// As [`strrput_nondata`].
unsafe fn m_copy(bp: *mut mblk_t) -> Option<*mut mblk_t> {
    // SAFETY: the caller's; the copyresp is written only when the buffer
    // has room for it.
    unsafe {
        if !(*bp).b_cont.is_null() {
            freemsg_impl((*bp).b_cont);
            (*bp).b_cont = ptr::null_mut();
        }
        (*(*bp).b_datap).db_type = M_IOCDATA as u8;
        let want = std::mem::size_of::<CopyResp>();
        let cap = (*(*bp).b_datap).db_lim as usize - (*bp).b_rptr as usize;
        if cap >= want {
            (*bp).b_wptr = (*bp).b_rptr.add(want);
            (*((*bp).b_rptr as *mut CopyResp)).cp_rval = 1 as caddr_t;
            Some(bp)
        } else {
            freemsg_impl(bp);
            None
        }
    }
}

/// M_SETOPTS: the head read queue's packet sizes and water marks (or a
/// band's) and the stream-head flags it names; then back-enable.
///
/// # Safety
/// As [`strrput_nondata`].
unsafe fn m_setopts(q: *mut queue_t, bp: *mut mblk_t, sid: usize) {
    // SAFETY: the caller's; the stroptions is read only when the first
    // block holds one.
    unsafe {
        let mut bpri = 0u8;
        if blk_len(bp) >= std::mem::size_of::<stroptions>() {
            let so = ptr::read_unaligned((*bp).b_rptr as *const stroptions);
            bpri = setopts_queue(q, &so);
            world::with(|s| setopts_flags(&mut s.streams[sid].flags, so.so_flags));
        }
        freemsg_impl(bp);
        qbackenable(q, bpri);
    }
}

/// The queue half of M_SETOPTS: packet sizes, and water marks of the
/// queue or (SO_BAND, band > 0) of a band; returns the band named.
///
/// # Safety
/// `q` must be a stream head read queue, with the world lock held.
unsafe fn setopts_queue(q: *mut queue_t, so: &stroptions) -> u8 {
    let f = so.so_flags;
    let has = |b: c_int| f & b as u32 != 0;
    let mut bpri = 0u8;
    // SAFETY: the caller's; band records are created as putq does.
    unsafe {
        if has(SO_MINPSZ) {
            (*q).q_minpsz = so.so_minpsz;
        }
        if has(SO_MAXPSZ) {
            (*q).q_maxpsz = so.so_maxpsz;
        }
        for (flag, hi) in [(SO_HIWAT, true), (SO_LOWAT, false)] {
            if !has(flag) {
                continue;
            }
            if has(SO_BAND) {
                if so.so_band > 0 {
                    ensure_band(q, so.so_band);
                    let b = band_ptr(q, so.so_band);
                    if hi {
                        (*b).qb_hiwat = so.so_hiwat;
                    } else {
                        (*b).qb_lowat = so.so_lowat;
                    }
                } else if hi {
                    (*q).q_hiwat = so.so_hiwat;
                } else {
                    (*q).q_lowat = so.so_lowat;
                }
                bpri = so.so_band;
            } else if hi {
                (*q).q_hiwat = so.so_hiwat;
            } else {
                (*q).q_lowat = so.so_lowat;
            }
        }
    }
    bpri
}

/// The stream-head flag half of M_SETOPTS: each `SO_*ON`/`SO_*OFF` pair
/// sets or clears its flag.
fn setopts_flags(flags: &mut u32, so_flags: u32) {
    for (on, off, bit) in [
        (SO_MREADON, SO_MREADOFF, sd::SNDMREAD),
        (SO_NDELON, SO_NDELOFF, sd::OLDNDELAY),
        (SO_ISTTY, SO_ISNTTY, sd::STRISTTY),
        (SO_TOSTOP, SO_TONSTOP, sd::STRTOSTOP),
        (SO_DELIM, SO_NODELIM, sd::STRDELIM),
    ] {
        if so_flags & on as u32 != 0 {
            *flags |= bit;
        }
        if so_flags & off as u32 != 0 {
            *flags &= !bit;
        }
    }
}

unsafe fn ensure_band(q: *mut queue_t, band: u8) {
    // SAFETY: `q` is valid; records are created like putq does.
    unsafe {
        while (*q).q_nband < band {
            let b = Box::into_raw(Box::new(qband_t {
                qb_hiwat: (*q).q_hiwat,
                qb_lowat: (*q).q_lowat,
                ..qband_t::default()
            }));
            world::with(|s| s.bands.push(b));
            let mut link: *mut *mut qband_t = &mut (*q).q_bandp;
            while !(*link).is_null() {
                link = &mut (**link).qb_next;
            }
            *link = b;
            (*q).q_nband += 1;
        }
    }
}

unsafe fn band_ptr(q: *mut queue_t, band: u8) -> *mut qband_t {
    // SAFETY: the caller ensured the band exists.
    unsafe {
        let mut b = (*q).q_bandp;
        for _ in 1..band {
            b = (*b).qb_next;
        }
        b
    }
}
