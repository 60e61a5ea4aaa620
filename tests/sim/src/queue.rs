//! Queues: their pairs, their contents and flow control (linking pairs
//! into a stream is `link.rs`, the service scheduler `sched.rs`, passing
//! messages along `put.rs`).
//!
//! A queue pair is laid out like illumos's `queinfo_t`: the read queue, then
//! the write queue right after it, so `WR`/`RD`/`OTHERQ` can step by one
//! `queue_t` according to `QREADR`, exactly as genunix does. The simulator's
//! own bookkeeping for the pair follows the two queues.
//!
//! `q_stream` holds the owning stream's id (plus one) instead of a
//! `struct stdata *`; drivers never look at it.

use std::ffi::c_int;
use std::ptr;

use ptm::sys::*;

use crate::msg::{self, cont_len, freemsg_impl, is_live, mtype};
use crate::sched::qenable_impl;
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

pub(crate) const QREADR_U: u32 = QREADR as u32;

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

pub(crate) fn otherq(q: *mut queue_t) -> *mut queue_t {
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
pub(crate) fn check_q(q: *const queue_t, who: &str) -> bool {
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
/// marks (illumos `allocband` + the putq/strqset loop). `false` when an
/// allocation failed (the fault `World::fail_next_qband_alloc`); the
/// records made before it stay, as in illumos.
///
/// # Safety
/// `q` must be valid.
unsafe fn ensure_bands(q: *mut queue_t, band: u8) -> bool {
    // SAFETY: `q` is valid; new records are fresh allocations linked at
    // the tail of the list.
    unsafe {
        if band <= (*q).q_nband {
            return true;
        }
        let mut link: *mut *mut qband_t = &mut (*q).q_bandp;
        while !(*link).is_null() {
            link = &mut (**link).qb_next;
        }
        while band > (*q).q_nband {
            let fail = world::with(|s| {
                let fail = s.faults.qband_alloc_fail > 0;
                s.faults.qband_alloc_fail = s.faults.qband_alloc_fail.saturating_sub(1);
                fail
            });
            if fail {
                world::trace(ptm_scenario::TraceEvent::Note(
                    "qband allocation failed".into(),
                ));
                return false;
            }
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
        true
    }
}

/// Common insertion of putq (`back == false`) and putbq (`back == true`):
/// the message is placed by its class and band, counted, and the queue
/// enabled as illumos's putq/putbq do.
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
            if !ensure_bands(q, (*bp).b_band) {
                // Not queued and not freed: the caller still owns it.
                return 0;
            }
            qbp = band_rec(q, (*bp).b_band);
        }
        if back {
            place_back(q, bp, qbp, mcls);
        } else {
            place(q, bp, qbp, mcls);
        }
        account_added(q, bp, qbp);
        let band = (*bp).b_band;
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

/// putq's placement of `bp` (class `mcls`, band record `qbp` or NULL for
/// band 0 and high priority): after everything of its class, a band
/// message after the last of its band.
///
/// # Safety
/// As [`enqueue`].
unsafe fn place(q: *mut queue_t, bp: *mut mblk_t, qbp: *mut qband_t, mcls: c_int) {
    // SAFETY: the caller's.
    unsafe {
        if (*q).q_first.is_null() {
            push_front(q, bp, qbp);
        } else if qbp.is_null() {
            // Band 0 or high priority: after everything of its class.
            if mcls <= queclass((*q).q_last) {
                append(q, bp);
            } else {
                let mut tmp = (*q).q_first;
                while queclass(tmp) >= mcls {
                    tmp = (*tmp).b_next;
                }
                insert_before(q, bp, tmp);
            }
        } else {
            if !(*qbp).qb_first.is_null() {
                // After the last message of this band.
                insert_after(q, bp, (*qbp).qb_last);
            } else {
                insert_by_band(q, bp, mcls, false);
                (*qbp).qb_first = bp;
            }
            (*qbp).qb_last = bp;
        }
    }
}

/// putbq's placement of `bp`: a high-priority message at the front, a band
/// message before the first of its band, a band-0 one after high-priority
/// and banded messages, ahead of the other band-0 messages.
///
/// # Safety
/// As [`enqueue`].
unsafe fn place_back(q: *mut queue_t, bp: *mut mblk_t, qbp: *mut qband_t, mcls: c_int) {
    // SAFETY: the caller's.
    unsafe {
        if (*q).q_first.is_null() || mcls == QPCTL {
            push_front(q, bp, qbp);
        } else if !qbp.is_null() {
            let tmp = (*qbp).qb_first;
            if !tmp.is_null() {
                insert_before(q, bp, tmp);
            } else {
                insert_by_band(q, bp, mcls, true);
                (*qbp).qb_last = bp;
            }
            (*qbp).qb_first = bp;
        } else {
            insert_by_band(q, bp, mcls, true);
        }
    }
}

/// Puts `bp` at the front of `q` (an empty queue, or putbq of a
/// high-priority message).
///
/// # Safety
/// As [`enqueue`].
unsafe fn push_front(q: *mut queue_t, bp: *mut mblk_t, qbp: *mut qband_t) {
    // SAFETY: the caller's.
    unsafe {
        let first = (*q).q_first;
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
    }
}

/// Inserts `bp` into `q` before `tmp` (a message on `q`).
///
/// # Safety
/// As [`enqueue`]; `tmp` must be on `q`.
unsafe fn insert_before(q: *mut queue_t, bp: *mut mblk_t, tmp: *mut mblk_t) {
    // SAFETY: the caller's.
    unsafe {
        (*bp).b_next = tmp;
        (*bp).b_prev = (*tmp).b_prev;
        if !(*tmp).b_prev.is_null() {
            (*(*tmp).b_prev).b_next = bp;
        } else {
            (*q).q_first = bp;
        }
        (*tmp).b_prev = bp;
    }
}

/// Inserts `bp` into `q` after `tmp` (a message on `q`).
///
/// # Safety
/// As [`enqueue`]; `tmp` must be on `q`.
unsafe fn insert_after(q: *mut queue_t, bp: *mut mblk_t, tmp: *mut mblk_t) {
    // SAFETY: the caller's.
    unsafe {
        (*bp).b_next = (*tmp).b_next;
        if !(*tmp).b_next.is_null() {
            (*(*tmp).b_next).b_prev = bp;
        } else {
            (*q).q_last = bp;
        }
        (*bp).b_prev = tmp;
        (*tmp).b_next = bp;
    }
}

/// Appends `bp` to the non-empty queue `q`.
///
/// # Safety
/// As [`enqueue`]; `q` must not be empty.
unsafe fn append(q: *mut queue_t, bp: *mut mblk_t) {
    // SAFETY: the caller's.
    unsafe {
        let tmp = (*q).q_last;
        (*bp).b_next = ptr::null_mut();
        (*bp).b_prev = tmp;
        (*tmp).b_next = bp;
        (*q).q_last = bp;
    }
}

/// A normal message among the normal ones of the non-empty queue `q`, by
/// band: after every high-priority message and every message of a higher
/// band; after those of its own band for putq, ahead of them for putbq
/// (`ahead_of_own_band`).
///
/// # Safety
/// As [`enqueue`]; `q` must not be empty.
unsafe fn insert_by_band(q: *mut queue_t, bp: *mut mblk_t, mcls: c_int, ahead_of_own_band: bool) {
    // SAFETY: the caller's.
    unsafe {
        let band = (*bp).b_band;
        let last = (*q).q_last;
        let after_last = if ahead_of_own_band {
            band < (*last).b_band
        } else {
            band <= (*last).b_band
        };
        if mcls < queclass(last) || after_last {
            append(q, bp);
        } else {
            let mut tmp = (*q).q_first;
            while mtype(tmp) as c_int >= QPCTL {
                tmp = (*tmp).b_next;
            }
            while (*tmp).b_band > band || (!ahead_of_own_band && (*tmp).b_band == band) {
                tmp = (*tmp).b_next;
            }
            insert_before(q, bp, tmp);
        }
    }
}

/// Counts `bp` on its band (`qbp`) or on `q`, and sets the full flag at
/// the high-water mark (bytes or blocks).
///
/// # Safety
/// As [`enqueue`].
unsafe fn account_added(q: *mut queue_t, bp: *mut mblk_t, qbp: *mut qband_t) {
    // SAFETY: the caller's.
    unsafe {
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
