//! The subsidiary driver `pts`, written for the simulator from the
//! behaviour of illumos `usr/src/uts/common/io/pts.c` (see
//! docs/streams.md §3.3–3.5). It shares `struct pt_ttys` with the
//! driver under test and uses the same reference-count protocol
//! (`PT_ENTER_READ` … `PT_EXIT_WRITE`) through the simulator's
//! `mutex_enter`/`cv_wait`, so lock misuse by either side is caught the same
//! way.

use std::ffi::{c_char, c_int};
use std::ptr;

use ptm::sys::*;

use crate::ddi::{self, cv_broadcast, cv_wait, mutex_enter, mutex_exit};
use crate::head::SyncStatic;
use crate::link;
use crate::msg::{self, freemsg_impl, mtype};
use crate::put;
use crate::queue::{self, stream_of};
use crate::sched;
use crate::world::{self, sd};

static PTS_MINFO: SyncStatic<module_info> = SyncStatic(module_info {
    mi_idnum: 0xface,
    mi_idname: c"pts".as_ptr() as *mut c_char,
    mi_minpsz: 0,
    mi_maxpsz: _TTY_BUFSIZ as isize,
    mi_hiwat: _TTY_BUFSIZ as usize,
    mi_lowat: 128,
});

pub(crate) static PTS_RINIT: SyncStatic<qinit> = SyncStatic(qinit {
    qi_putp: None,
    qi_srvp: Some(ptsrsrv),
    qi_qopen: Some(ptsopen),
    qi_qclose: Some(ptsclose),
    qi_qadmin: None,
    qi_minfo: &raw const PTS_MINFO.0 as *mut module_info,
    qi_mstat: ptr::null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

pub(crate) static PTS_WINIT: SyncStatic<qinit> = SyncStatic(qinit {
    qi_putp: Some(ptswput),
    qi_srvp: Some(ptswsrv),
    qi_qopen: None,
    qi_qclose: None,
    qi_qadmin: None,
    qi_minfo: &raw const PTS_MINFO.0 as *mut module_info,
    qi_mstat: ptr::null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

unsafe fn enter_read(p: *mut pt_ttys) {
    // SAFETY: `p` is a live pt_ttys.
    unsafe {
        mutex_enter(&raw mut (*p).pt_lock);
        while (*p).pt_refcnt < 0 {
            cv_wait(&raw mut (*p).pt_cv, &raw mut (*p).pt_lock);
        }
        (*p).pt_refcnt += 1;
        mutex_exit(&raw mut (*p).pt_lock);
    }
}

unsafe fn exit_read(p: *mut pt_ttys) {
    // SAFETY: `p` is a live pt_ttys.
    unsafe {
        mutex_enter(&raw mut (*p).pt_lock);
        if (*p).pt_refcnt <= 0 {
            world::anomaly("pts: PT_EXIT_READ with pt_refcnt <= 0");
        }
        (*p).pt_refcnt -= 1;
        if (*p).pt_refcnt == 0 {
            cv_broadcast(&raw mut (*p).pt_cv);
        }
        mutex_exit(&raw mut (*p).pt_lock);
    }
}

unsafe fn enter_write(p: *mut pt_ttys) {
    // SAFETY: `p` is a live pt_ttys.
    unsafe {
        mutex_enter(&raw mut (*p).pt_lock);
        while (*p).pt_refcnt != 0 {
            cv_wait(&raw mut (*p).pt_cv, &raw mut (*p).pt_lock);
        }
        (*p).pt_refcnt = -1;
        mutex_exit(&raw mut (*p).pt_lock);
    }
}

unsafe fn exit_write(p: *mut pt_ttys) {
    // SAFETY: `p` is a live pt_ttys.
    unsafe {
        mutex_enter(&raw mut (*p).pt_lock);
        if (*p).pt_refcnt != -1 {
            world::anomaly("pts: PT_EXIT_WRITE with pt_refcnt != -1");
        }
        (*p).pt_refcnt = 0;
        cv_broadcast(&raw mut (*p).pt_cv);
        mutex_exit(&raw mut (*p).pt_lock);
    }
}

fn wr(q: *mut queue_t) -> *mut queue_t {
    queue::WR(q)
}

/// NAKs an ioctl with its data freed (ioc_error left as is, normally 0).
unsafe fn nak_nodata(q: *mut queue_t, mp: *mut mblk_t) {
    // SAFETY: `mp` is a live M_IOCTL.
    unsafe {
        (*(*mp).b_datap).db_type = M_IOCNAK as u8;
        freemsg_impl((*mp).b_cont);
        (*mp).b_cont = ptr::null_mut();
        put::qreply(q, mp);
    }
}

unsafe extern "C" fn ptsopen(
    rq: *mut queue_t,
    devp: *mut dev_t,
    _oflag: c_int,
    sflag: c_int,
    _cred: *mut cred_t,
) -> c_int {
    // SAFETY: called by the simulator's open path with its own queue and
    // device number.
    unsafe {
        if sflag != 0 {
            return EINVAL;
        }
        let minor = ddi::getminor(*devp);
        let p = ddi::minor2ptty(minor);
        if p.is_null() {
            return ENXIO;
        }
        mutex_enter(&raw mut (*p).pt_lock);
        if (*p).pt_zoneid != ddi::getzoneid() {
            mutex_exit(&raw mut (*p).pt_lock);
            return EPERM;
        }
        if !(*rq).q_ptr.is_null() {
            if (*rq).q_ptr != p as *mut _ || (*p).pts_rdq != rq {
                world::anomaly("ptsopen: reopen with inconsistent q_ptr/pts_rdq");
            }
            mutex_exit(&raw mut (*p).pt_lock);
            return 0;
        }
        let st = (*p).pt_state as c_int;
        if st & PTLOCK != 0 || st & PTMOPEN == 0 {
            mutex_exit(&raw mut (*p).pt_lock);
            return EAGAIN;
        }
        if st & PTSOPEN != 0 {
            mutex_exit(&raw mut (*p).pt_lock);
            return 0;
        }
        let mop = msg::alloc(std::mem::size_of::<stroptions>(), true);
        if mop.is_null() {
            mutex_exit(&raw mut (*p).pt_lock);
            return ENOMEM;
        }
        let mp = msg::alloc(0, true);
        if mp.is_null() {
            mutex_exit(&raw mut (*p).pt_lock);
            freemsg_impl(mop);
            return ENOMEM;
        }
        (*p).pt_state |= PTSOPEN as u16;
        (*rq).q_ptr = p as *mut _;
        (*wr(rq)).q_ptr = p as *mut _;
        mutex_exit(&raw mut (*p).pt_lock);

        if (*p).pt_state as c_int & PTSTTY != 0 {
            mark_xpg4(rq);
        }
        link::qprocson(rq);

        enter_write(p);
        (*p).pts_rdq = rq;
        if !(*p).pt_nullmsg.is_null() {
            world::anomaly("ptsopen: pt_nullmsg already set");
        }
        (*p).pt_nullmsg = mp;
        exit_write(p);

        send_setopts(rq, mop);
        0
    }
}

/// A subsidiary opened after PTSSTTY: its stream is marked XPG4 (as the
/// ptem/ldterm autopush would make it a terminal, not modelled).
///
/// # Safety
/// `rq` must be pts's read queue of an open stream.
unsafe fn mark_xpg4(rq: *mut queue_t) {
    // SAFETY: the caller's.
    let sid = unsafe { stream_of(rq) };
    world::with(|s| s.streams[sid].flags |= sd::STRXPG4TTY);
    world::note(
        "pts: PTSTTY set, STRXPG4TTY on the subsidiary stream (the ptem/ldterm autopush is not modelled)",
    );
}

/// ptsopen's M_SETOPTS up the subsidiary stream, in block `mop`: the head's
/// water marks (`_TTY_BUFSIZ`, 256) and a tty.
///
/// # Safety
/// `rq` must be pts's linked read queue, `mop` a fresh block with room for
/// a stroptions.
unsafe fn send_setopts(rq: *mut queue_t, mop: *mut mblk_t) {
    // SAFETY: the caller's.
    unsafe {
        (*(*mop).b_datap).db_type = M_SETOPTS as u8;
        (*mop).b_wptr = (*mop).b_wptr.add(std::mem::size_of::<stroptions>());
        let so = (*mop).b_rptr as *mut stroptions;
        (*so).so_flags = (SO_HIWAT | SO_LOWAT | SO_ISTTY) as u32;
        (*so).so_hiwat = _TTY_BUFSIZ as usize;
        (*so).so_lowat = 256;
    }
    put::putnext(rq, mop);
}

unsafe extern "C" fn ptsclose(rq: *mut queue_t, _flag: c_int, _cred: *mut cred_t) -> c_int {
    // SAFETY: called by the simulator's close path with pts's own read queue.
    unsafe {
        if (*rq).q_ptr.is_null() {
            link::qprocsoff(rq);
            return 0;
        }
        let p = (*rq).q_ptr as *mut pt_ttys;
        enter_write(p);
        let mp = (*p).pt_nullmsg;
        (*p).pt_nullmsg = ptr::null_mut();
        (*p).pts_rdq = ptr::null_mut();
        exit_write(p);

        let wq = wr(rq);
        enter_read(p);
        loop {
            let bp = queue::getq(wq);
            if bp.is_null() {
                break;
            }
            if !(*p).ptm_rdq.is_null() {
                put::putnext((*p).ptm_rdq, bp);
            } else if mtype(bp) as c_int == M_IOCTL {
                nak_nodata(wq, bp);
            } else {
                freemsg_impl(bp);
            }
        }
        if !(*p).ptm_rdq.is_null() {
            if !mp.is_null() {
                put::putnext((*p).ptm_rdq, mp);
            } else {
                sched::qenable(wr((*p).ptm_rdq));
            }
        } else {
            freemsg_impl(mp);
        }
        exit_read(p);

        link::qprocsoff(rq);
        (*rq).q_ptr = ptr::null_mut();
        (*wr(rq)).q_ptr = ptr::null_mut();
        ddi::ptms_close(p, (PTSOPEN | PTSTTY) as u32);
        0
    }
}

unsafe extern "C" fn ptswput(q: *mut queue_t, mp: *mut mblk_t) -> c_int {
    // SAFETY: called by putnext with pts's write queue and a live message.
    unsafe {
        let p = (*q).q_ptr as *mut pt_ttys;
        if p.is_null() {
            world::anomaly("ptswput with q_ptr NULL");
            freemsg_impl(mp);
            return 0;
        }
        let t = mtype(mp) as c_int;
        enter_read(p);
        if (*p).ptm_rdq.is_null() {
            if t == M_IOCTL {
                nak_nodata(q, mp);
            } else {
                freemsg_impl(mp);
            }
            exit_read(p);
            return 0;
        }
        if t >= QPCTL {
            match t {
                M_FLUSH => ptswput_flush(q, p, mp),
                M_READ => freemsg_impl(mp),
                _ => {
                    if !(*p).ptm_rdq.is_null() {
                        put::putnext((*p).ptm_rdq, mp);
                    } else {
                        freemsg_impl(mp);
                    }
                }
            }
            exit_read(p);
            return 0;
        }
        if t == M_IOCTL
            && msg::blk_len(mp) >= std::mem::size_of::<iocblk>()
            && (*((*mp).b_rptr as *mut iocblk)).ioc_cmd == PTSSTTY
        {
            ptswput_ptsstty(q, p, mp);
        } else {
            queue::putq(q, mp);
        }
        exit_read(p);
        0
    }
}

/// ptswput's M_FLUSH: FLUSHW flushes pts's write queue and goes to the
/// manager as FLUSHR (a copy when FLUSHR was set too); FLUSHR is turned
/// around to the subsidiary's head.
///
/// # Safety
/// `q` must be pts's write queue, `p` its pty entered for reading, `mp` a
/// live M_FLUSH.
unsafe fn ptswput_flush(q: *mut queue_t, p: *mut pt_ttys, mp: *mut mblk_t) {
    // SAFETY: the caller's.
    unsafe {
        let f = (*mp).b_rptr;
        if *f & FLUSHW as u8 != 0 {
            if *f & FLUSHBAND as u8 != 0 {
                queue::flushband(q, *f.add(1), FLUSHDATA);
            } else {
                queue::flushq(q, FLUSHDATA);
            }
            *f &= !(FLUSHW as u8);
            if *f & FLUSHR as u8 == 0 {
                *f |= FLUSHR as u8;
                to_manager(p, mp);
                return;
            }
            let nmp = msg::copyb(mp);
            if !nmp.is_null() {
                *(*nmp).b_rptr |= FLUSHR as u8;
                to_manager(p, nmp);
            }
        }
        if *f & FLUSHR as u8 != 0 {
            put::qreply(q, mp);
        } else {
            freemsg_impl(mp);
        }
    }
}

/// Sends `mp` up the manager's stream, or frees it when the manager has
/// gone.
///
/// # Safety
/// `p` must be a pty entered for reading, `mp` a live message.
unsafe fn to_manager(p: *mut pt_ttys, mp: *mut mblk_t) {
    // SAFETY: the caller's.
    unsafe {
        if !(*p).ptm_rdq.is_null() {
            put::putnext((*p).ptm_rdq, mp);
        } else {
            freemsg_impl(mp);
        }
    }
}

/// PTSSTTY from the subsidiary: pts answers it (EEXIST when already set).
///
/// # Safety
/// `q` must be pts's write queue, `p` its pty entered for reading, `mp` a
/// live M_IOCTL whose first block holds an iocblk.
unsafe fn ptswput_ptsstty(q: *mut queue_t, p: *mut pt_ttys, mp: *mut mblk_t) {
    // SAFETY: the caller's.
    unsafe {
        let ioc = (*mp).b_rptr as *mut iocblk;
        if (*p).pt_state as c_int & PTSTTY != 0 {
            (*(*mp).b_datap).db_type = M_IOCNAK as u8;
            (*ioc).ioc_error = EEXIST;
        } else {
            (*(*mp).b_datap).db_type = M_IOCACK as u8;
            mutex_enter(&raw mut (*p).pt_lock);
            (*p).pt_state |= PTSTTY as u16;
            mutex_exit(&raw mut (*p).pt_lock);
            (*ioc).ioc_error = 0;
        }
        (*ioc).ioc_count = 0;
        put::qreply(q, mp);
    }
}

unsafe extern "C" fn ptsrsrv(q: *mut queue_t) -> c_int {
    // SAFETY: pts's own read queue.
    unsafe {
        let p = (*q).q_ptr as *mut pt_ttys;
        if p.is_null() {
            return 0;
        }
        enter_read(p);
        if !(*p).ptm_rdq.is_null() {
            sched::qenable(wr((*p).ptm_rdq));
        }
        exit_read(p);
        0
    }
}

unsafe extern "C" fn ptswsrv(q: *mut queue_t) -> c_int {
    // SAFETY: pts's own write queue.
    unsafe {
        let p = (*q).q_ptr as *mut pt_ttys;
        if p.is_null() {
            return 0;
        }
        enter_read(p);
        if (*p).ptm_rdq.is_null() {
            loop {
                let mp = queue::getq(q);
                if mp.is_null() {
                    break;
                }
                if mtype(mp) as c_int == M_IOCTL {
                    nak_nodata(q, mp);
                } else {
                    freemsg_impl(mp);
                }
            }
            exit_read(p);
            return 0;
        }
        let ptm_rdq = (*p).ptm_rdq;
        loop {
            let mp = queue::getq(q);
            if mp.is_null() {
                break;
            }
            if mtype(mp) as c_int <= QPCTL && queue::bcanputnext(ptm_rdq, (*mp).b_band) == 0 {
                queue::putbq(q, mp);
                break;
            }
            put::putnext(ptm_rdq, mp);
        }
        exit_read(p);
        0
    }
}
