//! Queues and the service scheduler.
//!
//! A queue pair is laid out like illumos's `queinfo_t`: the read queue, then
//! the write queue right after it, so `WR`/`RD`/`OTHERQ` can step by one
//! `queue_t` according to `QREADR`, exactly as genunix does. The simulator's
//! own bookkeeping for the pair follows the two queues.
//!
//! `q_stream` holds the owning stream's id (plus one) instead of a
//! `struct stdata *`; drivers never look at it.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::time::Duration;

use ptm::sys::*;
use ptm_scenario::TraceEvent;

use crate::msg::{self, cont_len, freemsg_impl, is_live, mtype};
use crate::world::{self, StreamId, locked};

/// What kind of pair this is (for names in anomalies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Head,
    /// A pushed module (reserved for a ptem model).
    #[allow(dead_code)]
    Module,
    Driver,
}

/// A queue pair (read queue first, as in `queinfo_t`) and its metadata.
#[repr(C)]
pub(crate) struct QPair {
    pub rq: queue_t,
    pub wq: queue_t,
    pub stream: StreamId,
    pub role: Role,
    pub linked: bool,
    pub dead: bool,
    pub name: &'static str,
    /// Put procedures of this pair running now (multi-threaded mode: what
    /// `qprocsoff` and the stream teardown wait for).
    pub active: usize,
}

const QREADR_U: u32 = QREADR as u32;

/// Allocates a queue pair for `stream` and initialises it as illumos
/// `setq` does: qinit pointers, water marks and packet sizes from the
/// `module_info`, `QREADR` on the read side and `QWANTR` on both.
///
/// # Safety
/// `rinit`/`winit` must point to valid `qinit`s whose `qi_minfo` is valid.
pub(crate) unsafe fn alloc_pair(
    stream: StreamId,
    role: Role,
    rinit: *mut qinit,
    winit: *mut qinit,
    name: &'static str,
) -> *mut QPair {
    // SAFETY: `queue_t` is plain data; all-zero is its illumos initial state.
    let mut pair = Box::new(QPair {
        rq: queue_t::default(),
        wq: queue_t::default(),
        stream,
        role,
        linked: false,
        dead: false,
        name,
        active: 0,
    });
    // SAFETY: the caller guarantees valid qinit/module_info pointers.
    unsafe {
        for (q, qi) in [(&mut pair.rq, rinit), (&mut pair.wq, winit)] {
            q.q_qinfo = qi;
            let mi = (*qi).qi_minfo;
            if !mi.is_null() {
                q.q_minpsz = (*mi).mi_minpsz;
                q.q_maxpsz = (*mi).mi_maxpsz;
                q.q_hiwat = (*mi).mi_hiwat;
                q.q_lowat = (*mi).mi_lowat;
            }
            q.q_flag = (QWANTR | QMTSAFE) as u32;
            if role == Role::Driver {
                q.q_flag |= QISDRV as u32;
            }
            q.q_stream = (stream + 1) as *mut stdata;
        }
    }
    pair.rq.q_flag |= QREADR_U;
    let p = Box::into_raw(pair);
    // SAFETY: `p` is a fresh allocation; the queues point to themselves.
    unsafe {
        (*p).rq.q_nfsrv = &mut (*p).rq;
        (*p).wq.q_nfsrv = &mut (*p).wq;
    }
    world::with(|s| {
        s.pairs.push(p);
        // SAFETY: only addresses are computed.
        unsafe {
            s.queue_set.insert(&raw const (*p).rq as usize);
            s.queue_set.insert(&raw const (*p).wq as usize);
        }
    });
    p
}

/// The pair a queue belongs to.
///
/// # Safety
/// `q` must be one of the two queues of a simulator pair.
pub(crate) unsafe fn pair_of(q: *mut queue_t) -> *mut QPair {
    // The caller guarantees `q` is inside a QPair; RD gives its first field.
    rd(q) as *mut QPair
}

/// The stream a queue belongs to.
///
/// # Safety
/// `q` must be a simulator queue.
pub(crate) unsafe fn stream_of(q: *const queue_t) -> StreamId {
    // SAFETY: the caller guarantees a simulator queue.
    unsafe { ((*q).q_stream as usize).wrapping_sub(1) }
}

/// Whether `q` is a queue of a pair this world allocated.
pub(crate) fn is_sim_queue(q: *const queue_t) -> bool {
    world::with(|s| s.queue_set.contains(&(q as usize)))
}

fn wr(q: *mut queue_t) -> *mut queue_t {
    // SAFETY: callers pass queues of simulator pairs; a read queue is always
    // followed by its write queue.
    unsafe {
        if (*q).q_flag & QREADR_U != 0 {
            q.add(1)
        } else {
            q
        }
    }
}

fn rd(q: *mut queue_t) -> *mut queue_t {
    // SAFETY: as in `wr`; a write queue is always preceded by its read queue.
    unsafe {
        if (*q).q_flag & QREADR_U != 0 {
            q
        } else {
            q.sub(1)
        }
    }
}

fn otherq(q: *mut queue_t) -> *mut queue_t {
    // SAFETY: as in `wr`/`rd`.
    unsafe {
        if (*q).q_flag & QREADR_U != 0 {
            q.add(1)
        } else {
            q.sub(1)
        }
    }
}

/// Checks that a driver passed a queue the simulator knows.
fn check_q(q: *const queue_t, who: &str) -> bool {
    if q.is_null() {
        world::anomaly(format!("{who}(NULL queue)"));
        return false;
    }
    if !is_sim_queue(q) {
        world::anomaly(format!(
            "{who} on a queue the simulator does not know ({q:p})"
        ));
        return false;
    }
    true
}

fn queclass(mp: *const mblk_t) -> c_int {
    // SAFETY: callers pass live blocks.
    if unsafe { mtype(mp) } as c_int >= QPCTL {
        QPCTL
    } else {
        QNORM
    }
}

/// Band record `band` (1-based) of `q`.
///
/// # Safety
/// `q` must be valid and have at least `band` band records.
unsafe fn band_rec(q: *mut queue_t, band: u8) -> *mut qband_t {
    // SAFETY: the caller guarantees the records exist.
    unsafe {
        let mut b = (*q).q_bandp;
        for _ in 1..band {
            b = (*b).qb_next;
        }
        b
    }
}

/// Creates band records up to `band`, each inheriting the queue's water
/// marks (illumos `allocband` + the putq/strqset loop).
///
/// # Safety
/// `q` must be valid.
unsafe fn ensure_bands(q: *mut queue_t, band: u8) {
    // SAFETY: `q` is valid; new records are fresh allocations linked at
    // the tail of the list.
    unsafe {
        if band <= (*q).q_nband {
            return;
        }
        let mut link: *mut *mut qband_t = &mut (*q).q_bandp;
        while !(*link).is_null() {
            link = &mut (**link).qb_next;
        }
        while band > (*q).q_nband {
            let b = Box::into_raw(Box::new(qband_t {
                qb_hiwat: (*q).q_hiwat,
                qb_lowat: (*q).q_lowat,
                ..qband_t::default()
            }));
            world::with(|s| s.bands.push(b));
            *link = b;
            link = &mut (*b).qb_next;
            (*q).q_nband += 1;
        }
    }
}

/// Common insertion of putq (`back == false`) and putbq (`back == true`).
///
/// # Safety
/// `q` and `bp` must be valid; `bp` must not be on a queue.
unsafe fn enqueue(q: *mut queue_t, bp: *mut mblk_t, back: bool) -> c_int {
    // SAFETY: the caller guarantees validity; all list manipulation keeps the
    // queue's doubly linked list and band pointers consistent, following the
    // placement rules of illumos putq/putbq.
    unsafe {
        let mcls = queclass(bp);
        let mut qbp: *mut qband_t = ptr::null_mut();
        if mcls == QPCTL {
            (*bp).b_band = 0;
        } else if (*bp).b_band != 0 {
            ensure_bands(q, (*bp).b_band);
            qbp = band_rec(q, (*bp).b_band);
        }
        let band = (*bp).b_band;
        let first = (*q).q_first;

        // Inserts bp before tmp (tmp non-NULL).
        let insert_before = |tmp: *mut mblk_t| {
            (*bp).b_next = tmp;
            (*bp).b_prev = (*tmp).b_prev;
            if !(*tmp).b_prev.is_null() {
                (*(*tmp).b_prev).b_next = bp;
            } else {
                (*q).q_first = bp;
            }
            (*tmp).b_prev = bp;
        };
        let append = || {
            let tmp = (*q).q_last;
            (*bp).b_next = ptr::null_mut();
            (*bp).b_prev = tmp;
            (*tmp).b_next = bp;
            (*q).q_last = bp;
        };
        // A normal message among the normal ones, by band: after every
        // high-priority message and every message of a higher band; after
        // those of its own band for putq, ahead of them for putbq.
        let insert_by_band = |ahead_of_own_band: bool| {
            let last = (*q).q_last;
            let after_last = if ahead_of_own_band {
                band < (*last).b_band
            } else {
                band <= (*last).b_band
            };
            if mcls < queclass(last) || after_last {
                append();
            } else {
                let mut tmp = (*q).q_first;
                while mtype(tmp) as c_int >= QPCTL {
                    tmp = (*tmp).b_next;
                }
                while (*tmp).b_band > band || (!ahead_of_own_band && (*tmp).b_band == band) {
                    tmp = (*tmp).b_next;
                }
                insert_before(tmp);
            }
        };

        if first.is_null() || (back && mcls == QPCTL) {
            // Empty queue, or putbq of a high-priority message: the front.
            (*bp).b_next = first;
            (*bp).b_prev = ptr::null_mut();
            if first.is_null() {
                (*q).q_last = bp;
            } else {
                (*first).b_prev = bp;
            }
            (*q).q_first = bp;
            if !qbp.is_null() {
                (*qbp).qb_first = bp;
                (*qbp).qb_last = bp;
            }
        } else if !back {
            if qbp.is_null() {
                // Band 0 or high priority: after everything of its class.
                if mcls <= queclass((*q).q_last) {
                    append();
                } else {
                    let mut tmp = (*q).q_first;
                    while queclass(tmp) >= mcls {
                        tmp = (*tmp).b_next;
                    }
                    insert_before(tmp);
                }
            } else {
                if !(*qbp).qb_first.is_null() {
                    // After the last message of this band.
                    let tmp = (*qbp).qb_last;
                    (*bp).b_next = (*tmp).b_next;
                    if !(*tmp).b_next.is_null() {
                        (*(*tmp).b_next).b_prev = bp;
                    } else {
                        (*q).q_last = bp;
                    }
                    (*bp).b_prev = tmp;
                    (*tmp).b_next = bp;
                } else {
                    insert_by_band(false);
                    (*qbp).qb_first = bp;
                }
                (*qbp).qb_last = bp;
            }
        } else if !qbp.is_null() {
            // putbq of a band message: before the first of its band.
            let tmp = (*qbp).qb_first;
            if !tmp.is_null() {
                insert_before(tmp);
            } else {
                insert_by_band(true);
                (*qbp).qb_last = bp;
            }
            (*qbp).qb_first = bp;
        } else {
            // putbq of a band-0 normal message: after high-priority and
            // banded messages, ahead of the other band-0 messages.
            insert_by_band(true);
        }

        let (bytes, blocks) = cont_len(bp);
        if !qbp.is_null() {
            (*qbp).qb_count += bytes;
            (*qbp).qb_mblkcnt += blocks;
            if (*qbp).qb_count >= (*qbp).qb_hiwat || (*qbp).qb_mblkcnt >= (*qbp).qb_hiwat {
                (*qbp).qb_flag |= QB_FULL as u32;
            }
        } else {
            (*q).q_count += bytes;
            (*q).q_mblkcnt += blocks;
            if (*q).q_count >= (*q).q_hiwat || (*q).q_mblkcnt >= (*q).q_hiwat {
                (*q).q_flag |= QFULL as u32;
            }
        }

        let canenable = (*q).q_flag & QNOENB as u32 == 0;
        let wantr = (*q).q_flag & QWANTR as u32 != 0;
        let schedule = if back {
            mcls > QNORM || (canenable && wantr)
        } else {
            mcls > QNORM || (canenable && (wantr || band != 0))
        };
        if schedule {
            qenable_impl(q);
        }
        1
    }
}

fn check_msg_for_queue(q: *mut queue_t, bp: *mut mblk_t, who: &str) -> bool {
    if !check_q(q, who) {
        return false;
    }
    if bp.is_null() || !is_live(bp) {
        world::anomaly(format!("{who} of a message that is not live ({bp:p})"));
        return false;
    }
    // SAFETY: `bp` is live.
    if unsafe { !(*bp).b_next.is_null() || !(*bp).b_prev.is_null() } {
        world::anomaly(format!("{who} of a message already on a queue ({bp:p})"));
        return false;
    }
    true
}

/// Removes the first message (illumos `getq_noenab` with `rbytes == 0`).
///
/// # Safety
/// `q` must be valid.
pub(crate) unsafe fn getq_noenab(q: *mut queue_t) -> *mut mblk_t {
    locked(|| {
        // SAFETY: `q` is valid; the message unlinked is the queue's first.
        unsafe {
            let bp = (*q).q_first;
            if bp.is_null() {
                (*q).q_flag |= QWANTR as u32;
                return bp;
            }
            (*q).q_first = (*bp).b_next;
            if (*q).q_first.is_null() {
                (*q).q_last = ptr::null_mut();
            } else {
                (*(*q).q_first).b_prev = ptr::null_mut();
            }
            account_removed(q, bp);
            (*q).q_flag &= !(QWANTR as u32);
            (*bp).b_next = ptr::null_mut();
            (*bp).b_prev = ptr::null_mut();
            bp
        }
    })
}

/// Count and band-pointer bookkeeping for a message `bp` just unlinked from
/// the head of its band (getq) or from anywhere (rmvq, which fixes band
/// pointers itself first).
unsafe fn account_removed(q: *mut queue_t, bp: *mut mblk_t) {
    // SAFETY: the caller guarantees validity.
    unsafe {
        let (bytes, blocks) = cont_len(bp);
        if (*bp).b_band == 0 {
            (*q).q_count = (*q).q_count.wrapping_sub(bytes);
            (*q).q_mblkcnt = (*q).q_mblkcnt.wrapping_sub(blocks);
            if (*q).q_mblkcnt == 0 || ((*q).q_count < (*q).q_hiwat && (*q).q_mblkcnt < (*q).q_hiwat)
            {
                (*q).q_flag &= !(QFULL as u32);
            }
        } else {
            let qbp = band_rec(q, (*bp).b_band);
            if (*qbp).qb_first == bp {
                if (*qbp).qb_last == bp {
                    (*qbp).qb_first = ptr::null_mut();
                    (*qbp).qb_last = ptr::null_mut();
                } else {
                    (*qbp).qb_first = (*bp).b_next;
                }
            }
            (*qbp).qb_count = (*qbp).qb_count.wrapping_sub(bytes);
            (*qbp).qb_mblkcnt = (*qbp).qb_mblkcnt.wrapping_sub(blocks);
            if (*qbp).qb_mblkcnt == 0
                || ((*qbp).qb_count < (*qbp).qb_hiwat && (*qbp).qb_mblkcnt < (*qbp).qb_hiwat)
            {
                (*qbp).qb_flag &= !(QB_FULL as u32);
            }
        }
    }
}

/// Removes a specific message without back-enabling (illumos
/// `rmvq_noenab`).
///
/// # Safety
/// `q` valid, `mp` on `q`.
pub(crate) unsafe fn rmvq_noenab(q: *mut queue_t, mp: *mut mblk_t) {
    locked(|| {
        // SAFETY: the caller guarantees `mp` is on `q`.
        unsafe {
            if (*mp).b_band != 0 {
                let qbp = band_rec(q, (*mp).b_band);
                if (*qbp).qb_first == mp {
                    (*qbp).qb_first =
                        if !(*mp).b_next.is_null() && (*(*mp).b_next).b_band == (*mp).b_band {
                            (*mp).b_next
                        } else {
                            ptr::null_mut()
                        };
                }
                if (*qbp).qb_last == mp {
                    (*qbp).qb_last =
                        if !(*mp).b_prev.is_null() && (*(*mp).b_prev).b_band == (*mp).b_band {
                            (*mp).b_prev
                        } else {
                            ptr::null_mut()
                        };
                }
            }
            if !(*mp).b_prev.is_null() {
                (*(*mp).b_prev).b_next = (*mp).b_next;
            } else {
                (*q).q_first = (*mp).b_next;
            }
            if !(*mp).b_next.is_null() {
                (*(*mp).b_next).b_prev = (*mp).b_prev;
            } else {
                (*q).q_last = (*mp).b_prev;
            }
            (*mp).b_next = ptr::null_mut();
            (*mp).b_prev = ptr::null_mut();
            let (bytes, blocks) = cont_len(mp);
            if (*mp).b_band == 0 {
                (*q).q_count = (*q).q_count.wrapping_sub(bytes);
                (*q).q_mblkcnt = (*q).q_mblkcnt.wrapping_sub(blocks);
                if (*q).q_mblkcnt == 0
                    || ((*q).q_count < (*q).q_hiwat && (*q).q_mblkcnt < (*q).q_hiwat)
                {
                    (*q).q_flag &= !(QFULL as u32);
                }
            } else {
                let qbp = band_rec(q, (*mp).b_band);
                (*qbp).qb_count = (*qbp).qb_count.wrapping_sub(bytes);
                (*qbp).qb_mblkcnt = (*qbp).qb_mblkcnt.wrapping_sub(blocks);
                if (*qbp).qb_mblkcnt == 0
                    || ((*qbp).qb_count < (*qbp).qb_hiwat && (*qbp).qb_mblkcnt < (*qbp).qb_hiwat)
                {
                    (*qbp).qb_flag &= !(QB_FULL as u32);
                }
            }
        }
    })
}

/// illumos `qbackenable`.
///
/// # Safety
/// `q` must be valid.
pub(crate) unsafe fn qbackenable(q: *mut queue_t, band: u8) {
    locked(|| {
        // SAFETY: `q` is valid; band records are checked to exist.
        unsafe {
            if band == 0 && (*q).q_flag & (QWANTW | QWANTWSYNC) as u32 == 0 {
                return;
            }
            if band == 0 {
                let below = (*q).q_lowat == 0
                    || ((*q).q_count < (*q).q_lowat && (*q).q_mblkcnt < (*q).q_lowat);
                let want = (*q).q_flag & (QWANTW | QWANTWSYNC) as u32;
                if below && want != 0 {
                    (*q).q_flag &= !((QWANTW | QWANTWSYNC) as u32);
                    if want & QWANTW as u32 != 0 {
                        backenable(q, 0);
                    }
                }
            } else {
                if band > (*q).q_nband {
                    return;
                }
                let qbp = band_rec(q, band);
                let below = (*qbp).qb_lowat == 0
                    || ((*qbp).qb_count < (*qbp).qb_lowat && (*qbp).qb_mblkcnt < (*qbp).qb_lowat);
                if below && (*qbp).qb_flag & QB_WANTW as u32 != 0 {
                    (*qbp).qb_flag &= !(QB_WANTW as u32);
                    backenable(q, band);
                }
            }
        }
    })
}

/// The queue upstream of `q` in its stream (illumos `backq`).
///
/// # Safety
/// `q` must be valid.
unsafe fn backq(q: *mut queue_t) -> *mut queue_t {
    let o = otherq(q);
    // SAFETY: `o` is the other queue of a valid pair.
    unsafe {
        if (*o).q_next.is_null() {
            ptr::null_mut()
        } else {
            otherq((*o).q_next)
        }
    }
}

/// Enables the nearest upstream queue with a service procedure, marking it
/// `QBACK` (or `QB_BACK` for a band) (illumos `backenable`).
///
/// # Safety
/// `q` must be valid.
pub(crate) unsafe fn backenable(q: *mut queue_t, band: u8) {
    // SAFETY: `q` is valid and the walk follows q_next links of linked,
    // valid queues.
    unsafe {
        let mut nq = backq(q);
        while !nq.is_null() && (*(*nq).q_qinfo).qi_srvp.is_none() {
            nq = backq(nq);
        }
        if nq.is_null() {
            return;
        }
        if band == 0 {
            (*nq).q_flag |= QBACK as u32;
        } else {
            ensure_bands(nq, band);
            (*band_rec(nq, band)).qb_flag |= QB_BACK as u32;
        }
        qenable_impl(nq);
    }
}

/// illumos `qenable_locked`: sets `QENAB` and appends the queue to its
/// stream's service list unless it has no service procedure, is closing,
/// is already enabled, or is running (then the running loop repeats).
///
/// # Safety
/// `q` must be valid.
pub(crate) unsafe fn qenable_impl(q: *mut queue_t) {
    // SAFETY: `q` is valid.
    unsafe {
        if (*(*q).q_qinfo).qi_srvp.is_none() {
            return;
        }
        if (*q).q_flag & (QWCLOSE | QENAB) as u32 != 0 {
            return;
        }
        (*q).q_flag |= QENAB as u32;
        if (*q).q_flag & QINSERVICE as u32 != 0 {
            return;
        }
        let sid = stream_of(q);
        let mt = world::is_mt();
        world::with(|s| {
            if s.streams.get(sid).is_none() {
                s.anomaly(format!("qenable of a queue with no stream ({q:p})"));
            } else if mt {
                s.runq.push_back(q);
            } else {
                s.streams[sid].svc.push_back(q);
            }
        });
        if let Some(m) = world::mt() {
            m.work.bump();
        }
    }
}

/// Runs one queue's service procedure as illumos `runservice` does: clears
/// `QENAB`, sets `QINSERVICE`, calls the procedure unless `QWCLOSE` is set,
/// repeats while `QENAB` was set again meanwhile, then clears `QINSERVICE`,
/// `QBACK` and `QB_BACK`. The flags are handled under the world lock, the
/// procedure is called without it; a queue whose `QINSERVICE` is set is
/// never put on a run list, so it never runs concurrently with itself.
///
/// # Safety
/// `q` must be a valid queue, just taken off a service list.
unsafe fn runservice(q: *mut queue_t) {
    // SAFETY: `q` is valid; the service procedure is the queue's own.
    unsafe {
        let mut srv = locked(|| {
            (*q).q_flag &= !(QENAB as u32);
            (*q).q_flag |= QINSERVICE as u32;
            service_step(q)
        });
        // The check for a new `QENAB` and the clearing of `QINSERVICE` must
        // be one hold of the world lock (as in illumos, where both are under
        // QLOCK): between two holds, a `qenable` on another thread would see
        // `QINSERVICE`, set `QENAB` and leave the queue off the run queue
        // for this loop to repeat -- which would already have decided to
        // stop; the queue would then stay `QENAB` and never run again (every
        // later `qenable` returns early on `QENAB`). The stress test found
        // it: a forwarded ioctl's M_IOCNAK stuck on ptm's write queue, the
        // subsidiary's TCGETS timing out with ETIME.
        let finish = || {
            (*q).q_flag &= !((QINSERVICE | QBACK) as u32);
            let mut b = (*q).q_bandp;
            while !b.is_null() {
                (*b).qb_flag &= !(QB_BACK as u32);
                b = (*b).qb_next;
            }
        };
        if srv.is_none() {
            locked(finish);
        }
        while let Some(f) = srv {
            world::assert_unlocked("calling a service procedure");
            f(q);
            srv = locked(|| {
                if (*q).q_flag & QENAB as u32 == 0 {
                    finish();
                    return None;
                }
                (*q).q_flag &= !(QENAB as u32);
                let next = service_step(q);
                if next.is_none() {
                    finish();
                }
                next
            });
        }
        world::bump_events();
    }
}

type SrvFn = unsafe extern "C" fn(*mut queue_t) -> c_int;

/// With the world lock held: the service procedure to call now, or None
/// when the queue is closing (`QWCLOSE`) or has none.
unsafe fn service_step(q: *mut queue_t) -> Option<SrvFn> {
    // SAFETY: the caller holds the world lock and `q` is valid.
    unsafe {
        if (*q).q_flag & QWCLOSE as u32 != 0 {
            return None;
        }
        let srv = (*(*q).q_qinfo).qi_srvp?;
        world::with(|s| s.services_run += 1);
        Some(srv)
    }
}

/// Multi-threaded mode: the body of a service worker thread. Takes queues
/// off the world's run queue and runs them until the world shuts down.
pub(crate) fn worker_loop() {
    let Some(m) = world::mt() else { return };
    world::set_activity(|| "worker: idle".into());
    loop {
        if m.shutdown.load(std::sync::atomic::Ordering::Acquire) {
            break;
        }
        let g0 = m.work.get();
        let next = world::with(|s| s.runq.pop_front());
        match next {
            Some(q) => {
                world::set_activity(|| {
                    // SAFETY: queues on the run queue are live simulator
                    // queues (retired pairs are taken off it).
                    let name = unsafe { (*pair_of(q)).name };
                    // SAFETY: as above.
                    let side = if unsafe { (*q).q_flag } & QREADR_U != 0 {
                        "read"
                    } else {
                        "write"
                    };
                    format!("worker: running the {name} {side} service procedure ({q:p})")
                });
                // SAFETY: as above.
                unsafe { runservice(q) };
                world::set_activity(|| "worker: idle".into());
            }
            None => m.work.wait(g0, Duration::from_millis(50)),
        }
    }
    world::set_activity(|| "worker: stopped".into());
}

/// Multi-threaded mode: whether no service procedure is enabled or running
/// and no put procedure is running anywhere (call with the world lock).
pub(crate) fn world_idle() -> bool {
    world::with(|s| {
        s.runq.is_empty()
            && s.pairs.iter().all(|&p| {
                // SAFETY: pairs of this world are allocated while it lives.
                unsafe {
                    (*p).active == 0 && ((*p).rq.q_flag | (*p).wq.q_flag) & QINSERVICE as u32 == 0
                }
            })
    })
}

/// Multi-threaded mode: waits until no put or service procedure of the pair
/// runs (`qprocsoff`, stream teardown). Returns false after `limit`.
pub(crate) fn wait_pair_idle(p: *mut QPair, what: &str, limit: Duration) -> bool {
    world::wait_for(what, limit, || {
        // SAFETY: `p` is an allocated pair of this world; read under the
        // world lock.
        unsafe { (*p).active == 0 && ((*p).rq.q_flag | (*p).wq.q_flag) & QINSERVICE as u32 == 0 }
    })
}

/// Upper bound on service procedure runs in one drain; beyond it the drain
/// stops and an anomaly is recorded (a service procedure that keeps
/// re-enabling itself, e.g. by `putbq` of a high-priority message).
const SERVICE_BUDGET: u64 = 200_000;

/// Runs the service lists until nothing is enabled: `own` first (the
/// foreground stream of the system call), then the other streams in order
/// of creation; after every procedure the own stream is looked at again.
/// With `only_own` the other streams are left alone.
pub(crate) fn run_services(own: Option<StreamId>, only_own: bool) {
    if world::is_mt() {
        // The worker threads run them.
        return;
    }
    let mut budget = SERVICE_BUDGET;
    loop {
        let next = world::with(|s| {
            if let Some(o) = own
                && let Some(q) = s.streams.get_mut(o).and_then(|st| st.svc.pop_front())
            {
                return Some(q);
            }
            if only_own {
                return None;
            }
            s.streams.iter_mut().find_map(|st| st.svc.pop_front())
        });
        let Some(q) = next else { break };
        // SAFETY: queues on service lists are simulator queues; dismantled
        // pairs are removed from the lists before they are poisoned.
        unsafe { runservice(q) };
        budget -= 1;
        if budget == 0 {
            world::anomaly("service procedures did not quiesce (runaway re-enabling)");
            world::with(|s| {
                for st in s.streams.iter_mut() {
                    st.svc.clear();
                }
            });
            break;
        }
    }
}

/// Recomputes `q_next` and `q_nfsrv` for every queue of a stream from the
/// list of its pairs and their `linked` state.
pub(crate) fn relink(sid: StreamId) {
    locked(|| {
        let pairs: Vec<*mut QPair> = world::with(|s| s.streams[sid].pairs.clone());
        // SAFETY: all pairs of a stream are valid simulator pairs.
        unsafe {
            let linked: Vec<*mut QPair> = pairs.iter().copied().filter(|&p| (*p).linked).collect();
            for &p in &pairs {
                if !(*p).linked {
                    (*p).rq.q_next = ptr::null_mut();
                    (*p).wq.q_next = ptr::null_mut();
                }
            }
            for (i, &p) in linked.iter().enumerate() {
                (*p).wq.q_next = match linked.get(i + 1) {
                    Some(&below) => &raw mut (*below).wq,
                    None => ptr::null_mut(),
                };
                (*p).rq.q_next = if i == 0 {
                    ptr::null_mut()
                } else {
                    let up: *mut QPair = linked[i - 1];
                    &raw mut (*up).rq
                };
            }
            // q_nfsrv: walk each side from its end, against the flow.
            let mut next_srv: *mut queue_t = ptr::null_mut();
            for &p in linked.iter().rev() {
                let q: *mut queue_t = &mut (*p).wq;
                next_srv = if (*(*q).q_qinfo).qi_srvp.is_some() || next_srv.is_null() {
                    q
                } else {
                    next_srv
                };
                (*q).q_nfsrv = next_srv;
            }
            let mut next_srv: *mut queue_t = ptr::null_mut();
            for &p in linked.iter() {
                let q: *mut queue_t = &mut (*p).rq;
                next_srv = if (*(*q).q_qinfo).qi_srvp.is_some() || next_srv.is_null() {
                    q
                } else {
                    next_srv
                };
                (*q).q_nfsrv = next_srv;
            }
            for &p in &pairs {
                if !(*p).linked {
                    (*p).rq.q_nfsrv = &mut (*p).rq;
                    (*p).wq.q_nfsrv = &mut (*p).wq;
                }
            }
        }
    })
}

/// Removes a pair's queues from every service list and poisons it: its
/// qinit becomes one whose procedures report use after free.
///
/// # Safety
/// `p` must be a valid simulator pair no longer linked.
pub(crate) unsafe fn retire_pair(p: *mut QPair) {
    locked(|| {
        // SAFETY: `p` is valid.
        unsafe {
            let (r, w): (*mut queue_t, *mut queue_t) = (&mut (*p).rq, &mut (*p).wq);
            world::with(|s| {
                for st in s.streams.iter_mut() {
                    st.svc.retain(|&q| q != r && q != w);
                }
                s.runq.retain(|&q| q != r && q != w);
            });
            (*p).dead = true;
            for q in [r, w] {
                (*q).q_qinfo = &raw const crate::head::DEAD_QINIT.0 as *mut qinit;
                (*q).q_flag |= QWCLOSE as u32;
                (*q).q_ptr = 0xdead_dead_usize as *mut c_void;
                (*q).q_next = ptr::null_mut();
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Exported kernel functions
// ---------------------------------------------------------------------------

/// illumos `WR`: the write queue of a pair.
#[unsafe(no_mangle)]
pub extern "C" fn WR(q: *mut queue_t) -> *mut queue_t {
    if !check_q(q, "WR") {
        return q;
    }
    wr(q)
}

/// illumos `RD`: the read queue of a pair.
#[unsafe(no_mangle)]
pub extern "C" fn RD(q: *mut queue_t) -> *mut queue_t {
    if !check_q(q, "RD") {
        return q;
    }
    rd(q)
}

/// illumos `OTHERQ`: the other queue of a pair.
#[unsafe(no_mangle)]
pub extern "C" fn OTHERQ(q: *mut queue_t) -> *mut queue_t {
    if !check_q(q, "OTHERQ") {
        return q;
    }
    otherq(q)
}

/// illumos `putq`.
#[unsafe(no_mangle)]
pub extern "C" fn putq(q: *mut queue_t, bp: *mut mblk_t) -> c_int {
    locked(|| {
        if !check_msg_for_queue(q, bp, "putq") {
            return 0;
        }
        // SAFETY: validated above.
        unsafe { enqueue(q, bp, false) }
    })
}

/// illumos `putbq`.
#[unsafe(no_mangle)]
pub extern "C" fn putbq(q: *mut queue_t, bp: *mut mblk_t) -> c_int {
    locked(|| {
        if !check_msg_for_queue(q, bp, "putbq") {
            return 0;
        }
        // SAFETY: validated above.
        unsafe { enqueue(q, bp, true) }
    })
}

/// illumos `getq`: `getq_noenab`, then `qbackenable` for the band.
#[unsafe(no_mangle)]
pub extern "C" fn getq(q: *mut queue_t) -> *mut mblk_t {
    locked(|| {
        if !check_q(q, "getq") {
            return ptr::null_mut();
        }
        // SAFETY: validated above.
        unsafe {
            let bp = getq_noenab(q);
            let band = if bp.is_null() { 0 } else { (*bp).b_band };
            qbackenable(q, band);
            bp
        }
    })
}

/// illumos `rmvq`.
#[unsafe(no_mangle)]
pub extern "C" fn rmvq(q: *mut queue_t, mp: *mut mblk_t) {
    locked(|| {
        if !check_q(q, "rmvq") || !is_live(mp) {
            return;
        }
        // SAFETY: validated above; the caller says `mp` is on `q`.
        unsafe {
            rmvq_noenab(q, mp);
            qbackenable(q, (*mp).b_band);
        }
    })
}

/// Frees (or re-queues) the detached list `mp` for flushq/flushband.
unsafe fn refile(q: *mut queue_t, mut mp: *mut mblk_t, free: impl Fn(*mut mblk_t) -> bool) {
    // SAFETY: `mp` is a detached list of live messages of `q`.
    unsafe {
        while !mp.is_null() {
            let nmp = (*mp).b_next;
            (*mp).b_next = ptr::null_mut();
            (*mp).b_prev = ptr::null_mut();
            if free(mp) {
                freemsg_impl(mp);
            } else {
                enqueue(q, mp, false);
            }
            mp = nmp;
        }
    }
}

/// Detaches the whole list of `q` and zeroes its counts (both flush forms).
unsafe fn detach_all(q: *mut queue_t) -> *mut mblk_t {
    // SAFETY: `q` is valid.
    unsafe {
        let mp = (*q).q_first;
        (*q).q_first = ptr::null_mut();
        (*q).q_last = ptr::null_mut();
        (*q).q_count = 0;
        (*q).q_mblkcnt = 0;
        let mut b = (*q).q_bandp;
        while !b.is_null() {
            (*b).qb_first = ptr::null_mut();
            (*b).qb_last = ptr::null_mut();
            (*b).qb_count = 0;
            (*b).qb_mblkcnt = 0;
            (*b).qb_flag &= !(QB_FULL as u32);
            b = (*b).qb_next;
        }
        (*q).q_flag &= !(QFULL as u32);
        mp
    }
}

/// illumos `flushq` (`flushq_common` without keeping M_PCPROTO).
#[unsafe(no_mangle)]
pub extern "C" fn flushq(q: *mut queue_t, flag: c_int) {
    locked(|| {
        if !check_q(q, "flushq") {
            return;
        }
        flushq_common(q, flag, false)
    })
}

/// `flushq_common`; `keep_pcproto` is the stream head's RFLUSHPCPROT.
pub(crate) fn flushq_common(q: *mut queue_t, flag: c_int, keep_pcproto: bool) {
    locked(|| {
        // SAFETY: `q` is a valid simulator queue (callers check).
        unsafe {
            if (*q).q_first.is_null() {
                return;
            }
            let mp = detach_all(q);
            refile(q, mp, |m| {
                let t = mtype(m);
                if keep_pcproto && t as c_int == M_PCPROTO {
                    false
                } else {
                    flag != 0 || msg::is_data(t)
                }
            });
            let below = |count: usize, blocks: usize, lowat: usize| {
                (count < lowat && blocks < lowat) || lowat == 0
            };
            let mut bands = Vec::new();
            let mut b = (*q).q_bandp;
            let mut i = 1u8;
            while !b.is_null() {
                if (*b).qb_flag & QB_WANTW as u32 != 0
                    && below((*b).qb_count, (*b).qb_mblkcnt, (*b).qb_lowat)
                {
                    (*b).qb_flag &= !(QB_WANTW as u32);
                    bands.push(i);
                }
                b = (*b).qb_next;
                i = i.wrapping_add(1);
            }
            let band0 = (*q).q_flag & QWANTW as u32 != 0
                && below((*q).q_count, (*q).q_mblkcnt, (*q).q_lowat);
            if band0 {
                (*q).q_flag &= !(QWANTW as u32);
            }
            for &b in bands.iter().rev() {
                backenable(q, b);
            }
            if band0 {
                backenable(q, 0);
            }
        }
    })
}

/// illumos `flushband`.
#[unsafe(no_mangle)]
pub extern "C" fn flushband(q: *mut queue_t, pri: u8, flag: c_int) {
    locked(|| {
        if !check_q(q, "flushband") {
            return;
        }
        // SAFETY: validated above.
        unsafe {
            if pri > (*q).q_nband {
                return;
            }
            if pri == 0 {
                let mp = detach_all(q);
                refile(q, mp, |m| {
                    (*m).b_band == 0 && (flag == FLUSHALL || msg::is_data(mtype(m)))
                });
                if (*q).q_flag & QWANTW as u32 != 0
                    && (((*q).q_count < (*q).q_lowat && (*q).q_mblkcnt < (*q).q_lowat)
                        || (*q).q_lowat == 0)
                {
                    (*q).q_flag &= !(QWANTW as u32);
                    backenable(q, 0);
                }
            } else {
                let qbp = band_rec(q, pri);
                let mut mp = (*qbp).qb_first;
                if mp.is_null() {
                    return;
                }
                let last = (*(*qbp).qb_last).b_next;
                let mut flushed = false;
                while mp != last {
                    let nmp = (*mp).b_next;
                    if flag == FLUSHALL || msg::is_data(mtype(mp)) {
                        rmvq_noenab(q, mp);
                        freemsg_impl(mp);
                        flushed = true;
                    }
                    mp = nmp;
                }
                if flushed {
                    qbackenable(q, pri);
                }
            }
        }
    })
}

/// illumos `canput`.
#[unsafe(no_mangle)]
pub extern "C" fn canput(q: *mut queue_t) -> c_int {
    locked(|| {
        if !check_q(q, "canput") {
            return 0;
        }
        // SAFETY: validated above; q_nfsrv of a simulator queue is valid.
        unsafe {
            let q = (*q).q_nfsrv;
            if (*q).q_flag & QFULL as u32 == 0 {
                return 1;
            }
            (*q).q_flag |= QWANTW as u32;
            0
        }
    })
}

/// illumos `bcanput`.
#[unsafe(no_mangle)]
pub extern "C" fn bcanput(q: *mut queue_t, pri: u8) -> c_int {
    locked(|| {
        if q.is_null() {
            return 0;
        }
        if !check_q(q, "bcanput") {
            return 0;
        }
        // SAFETY: validated above.
        unsafe {
            let q = (*q).q_nfsrv;
            if pri == 0 {
                if (*q).q_flag & QFULL as u32 != 0 {
                    (*q).q_flag |= QWANTW as u32;
                    return 0;
                }
                return 1;
            }
            if pri > (*q).q_nband {
                return 1;
            }
            let qbp = band_rec(q, pri);
            if (*qbp).qb_flag & QB_FULL as u32 != 0 {
                (*qbp).qb_flag |= QB_WANTW as u32;
                return 0;
            }
            1
        }
    })
}

/// illumos `canputnext`.
#[unsafe(no_mangle)]
pub extern "C" fn canputnext(q: *mut queue_t) -> c_int {
    locked(|| {
        if !check_q(q, "canputnext") {
            return 0;
        }
        // SAFETY: validated above.
        let next = unsafe { (*q).q_next };
        if next.is_null() {
            world::anomaly("canputnext at the end of a stream");
            return 0;
        }
        canput(next)
    })
}

/// illumos `bcanputnext`.
#[unsafe(no_mangle)]
pub extern "C" fn bcanputnext(q: *mut queue_t, pri: u8) -> c_int {
    locked(|| {
        if !check_q(q, "bcanputnext") {
            return 0;
        }
        // SAFETY: validated above.
        let next = unsafe { (*q).q_next };
        bcanput(next, pri)
    })
}

/// Calls `q`'s own put procedure (illumos `put`), with a claim on its pair
/// (taken here).
pub(crate) fn put_impl(q: *mut queue_t, mp: *mut mblk_t) {
    locked(|| {
        // SAFETY: callers pass a simulator queue.
        unsafe { (*pair_of(q)).active += 1 }
    });
    put_claimed(q, mp)
}

/// Calls `q`'s put procedure; the caller took a claim on its pair (under the
/// same hold of the world lock in which it chose `q`), released here.
fn put_claimed(q: *mut queue_t, mp: *mut mblk_t) {
    world::assert_unlocked("calling a put procedure");
    // SAFETY: callers pass a simulator queue.
    let putp = unsafe { (*(*q).q_qinfo).qi_putp };
    match putp {
        Some(f) => {
            // SAFETY: the put procedure of the queue, called with the queue
            // and a live message, as the framework does.
            unsafe { f(q, mp) };
        }
        None => {
            world::anomaly(format!(
                "message sent to a queue with no put procedure ({q:p})"
            ));
            freemsg_impl(mp);
        }
    }
    locked(|| {
        // SAFETY: as above; the pair stays allocated (pairs are only
        // retired, never freed, while the world lives).
        unsafe { (*pair_of(q)).active -= 1 }
    });
    world::bump_events();
}

/// A stream head's `putnext` down: like [`putnext`], but a queue found
/// unlinked (multi-threaded: the driver's qprocsoff won the race) drops the
/// message instead of recording an anomaly.
pub(crate) fn putnext_or_drop(q: *mut queue_t, mp: *mut mblk_t) {
    if world::is_mt() {
        // SAFETY: `q` is a head write queue of a live stream.
        let claimed = locked(|| unsafe {
            let nq = (*q).q_next;
            if nq.is_null() {
                None
            } else {
                (*pair_of(nq)).active += 1;
                Some(nq)
            }
        });
        match claimed {
            Some(nq) => put_claimed(nq, mp),
            None => freemsg_impl(mp),
        }
        return;
    }
    putnext(q, mp)
}

/// illumos `putnext`: calls the next queue's put procedure synchronously.
#[unsafe(no_mangle)]
pub extern "C" fn putnext(q: *mut queue_t, mp: *mut mblk_t) {
    if !check_q(q, "putnext") {
        freemsg_impl(mp);
        return;
    }
    if mp.is_null() || !is_live(mp) {
        world::anomaly(format!("putnext of a message that is not live ({mp:p})"));
        return;
    }
    // SAFETY: validated above; q_next is read and the next pair claimed
    // under one hold of the world lock, so a qprocsoff of that pair either
    // happened before (q_next is NULL) or waits for the claim.
    let nq = locked(|| unsafe {
        if !(*mp).b_next.is_null() || !(*mp).b_prev.is_null() {
            world::anomaly(format!("putnext of a message still on a queue ({mp:p})"));
            return None;
        }
        if (*q).q_flag & QWCLOSE as u32 != 0 && (*pair_of(q)).dead {
            world::anomaly("putnext from a queue that was freed");
            freemsg_impl(mp);
            return None;
        }
        let nq = (*q).q_next;
        if nq.is_null() {
            let side = if (*q).q_flag & QREADR_U != 0 {
                "read"
            } else {
                "write"
            };
            world::anomaly(format!(
                "putnext past the end of a stream (queue not linked: before qprocson or after qprocsoff) ({q:p}, {} {side} side)",
                (*pair_of(q)).name
            ));
            freemsg_impl(mp);
            return None;
        }
        (*pair_of(nq)).active += 1;
        Some(nq)
    });
    if let Some(nq) = nq {
        put_claimed(nq, mp);
    }
}

/// illumos `put`.
#[unsafe(no_mangle)]
pub extern "C" fn put(q: *mut queue_t, mp: *mut mblk_t) {
    if !check_q(q, "put") || !is_live(mp) {
        return;
    }
    put_impl(q, mp)
}

/// illumos `qreply`: `putnext(OTHERQ(q), mp)`.
#[unsafe(no_mangle)]
pub extern "C" fn qreply(q: *mut queue_t, mp: *mut mblk_t) {
    if !check_q(q, "qreply") {
        freemsg_impl(mp);
        return;
    }
    putnext(otherq(q), mp)
}

/// illumos `qenable`.
#[unsafe(no_mangle)]
pub extern "C" fn qenable(q: *mut queue_t) {
    locked(|| {
        if !check_q(q, "qenable") {
            return;
        }
        // SAFETY: validated above.
        unsafe { qenable_impl(q) }
    })
}

fn ctl_common(q: *mut queue_t, type_: c_int, param: Option<u8>, next: bool) -> c_int {
    if (msg::is_data(type_ as u8) && type_ != M_DELAY) || !(0..=255).contains(&type_) {
        return 0;
    }
    let bp = msg::alloc(usize::from(param.is_some()), true);
    if bp.is_null() {
        return 0;
    }
    // SAFETY: `bp` is a fresh block with room for one byte.
    unsafe {
        (*(*bp).b_datap).db_type = type_ as u8;
        if let Some(p) = param {
            *(*bp).b_wptr = p;
            (*bp).b_wptr = (*bp).b_wptr.add(1);
        }
    }
    if next {
        putnext(q, bp)
    } else {
        put(q, bp)
    }
    1
}

/// illumos `putnextctl`.
#[unsafe(no_mangle)]
pub extern "C" fn putnextctl(q: *mut queue_t, type_: c_int) -> c_int {
    ctl_common(q, type_, None, true)
}

/// illumos `putnextctl1`.
#[unsafe(no_mangle)]
pub extern "C" fn putnextctl1(q: *mut queue_t, type_: c_int, param: c_int) -> c_int {
    ctl_common(q, type_, Some(param as u8), true)
}

/// illumos `putctl`.
#[unsafe(no_mangle)]
pub extern "C" fn putctl(q: *mut queue_t, type_: c_int) -> c_int {
    ctl_common(q, type_, None, false)
}

/// illumos `putctl1`.
#[unsafe(no_mangle)]
pub extern "C" fn putctl1(q: *mut queue_t, type_: c_int, param: c_int) -> c_int {
    ctl_common(q, type_, Some(param as u8), false)
}

/// illumos `qprocson`: links the pair into its stream (a no-op on a pair
/// already linked), recomputes `q_nfsrv`, and back-enables the new queues
/// if the next queue with a service procedure wants to be written.
#[unsafe(no_mangle)]
pub extern "C" fn qprocson(q: *mut queue_t) {
    locked(|| {
        if !check_q(q, "qprocson") {
            return;
        }
        // SAFETY: validated above.
        unsafe {
            if (*q).q_flag & QREADR_U == 0 {
                world::anomaly("qprocson must be given the read queue");
            }
            let p = pair_of(q);
            if (*p).linked {
                return;
            }
            if (*p).dead {
                world::anomaly("qprocson on a freed pair");
                return;
            }
            (*p).linked = true;
            (*p).rq.q_flag &= !(QWCLOSE as u32);
            (*p).wq.q_flag &= !(QWCLOSE as u32);
            relink((*p).stream);
            for side in [&raw mut (*p).rq, &raw mut (*p).wq] {
                let next = (*side).q_next;
                if !next.is_null() && (*(*next).q_nfsrv).q_flag & QWANTW as u32 != 0 {
                    qenable_impl(side);
                }
            }
        }
    })
}

/// illumos `qprocsoff`: returns at once if `QWCLOSE` is set; otherwise sets
/// it on both queues (no more enabling, service procedures skipped) and
/// unlinks the pair, rejoining its neighbours.
#[unsafe(no_mangle)]
pub extern "C" fn qprocsoff(q: *mut queue_t) {
    if !check_q(q, "qprocsoff") {
        return;
    }
    // SAFETY: validated above.
    let p = unsafe { pair_of(q) };
    let mt = world::is_mt();
    let done = locked(|| {
        // SAFETY: validated above.
        unsafe {
            if (*q).q_flag & QREADR_U == 0 {
                world::anomaly("qprocsoff must be given the read queue");
            }
            if (*p).rq.q_flag & QWCLOSE as u32 != 0 {
                return true;
            }
            (*p).rq.q_flag |= QWCLOSE as u32;
            (*p).wq.q_flag |= QWCLOSE as u32;
            false
        }
    });
    if done {
        return;
    }
    // Multi-threaded, as illumos does (disable_svc, then removeq): QWCLOSE
    // stops new service runs; wait for the running ones (and for running
    // put procedures) before unlinking, then again for put procedures that
    // started meanwhile. Nothing of the pair runs after the return.
    let wait = |stage: &str| {
        if mt && !wait_pair_idle(p, "qprocsoff", QPROCSOFF_LIMIT) {
            world::anomaly(format!(
                "qprocsoff({q:p}) waited {} s for running put/service procedures ({stage})",
                QPROCSOFF_LIMIT.as_secs()
            ));
        }
    };
    if mt {
        world::set_activity(|| format!("qprocsoff({q:p}): waiting for running procedures"));
    }
    wait("before unlinking");
    locked(|| {
        // SAFETY: validated above.
        unsafe {
            if (*p).linked {
                (*p).linked = false;
                relink((*p).stream);
            }
        }
    });
    wait("after unlinking");
}

/// How long `qprocsoff` waits for running procedures before it gives up
/// with an anomaly (multi-threaded mode).
const QPROCSOFF_LIMIT: Duration = Duration::from_secs(20);

/// Records a note in the trace of the current world.
pub(crate) fn note(s: impl Into<String>) {
    world::trace(TraceEvent::Note(s.into()));
}

/// Number of messages on a queue.
///
/// # Safety
/// `q` must be valid.
pub(crate) unsafe fn msg_count(q: *const queue_t) -> usize {
    locked(|| {
        let mut n = 0;
        // SAFETY: the caller guarantees a valid queue with a valid list.
        unsafe {
            let mut m = (*q).q_first;
            while !m.is_null() {
                n += 1;
                m = (*m).b_next;
            }
        }
        n
    })
}
