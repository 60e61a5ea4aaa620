//! Passing messages along a stream: `put`, `putnext`, `qreply` and the
//! `put*ctl*` family. A put procedure is called without the world lock,
//! with a claim on its pair (`active`) so that `qprocsoff` and the teardown
//! of a stream can wait for it.

use std::ffi::c_int;

use ptm::sys::*;

use crate::msg::{self, freemsg_impl, is_live};
use crate::queue::{QREADR_U, check_q, otherq, pair_of};
use crate::world::{self, locked};

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

fn ctl_common(q: *mut queue_t, type_: c_int, param: Option<u8>, next: bool) -> c_int {
    if (msg::is_data(type_ as u8) && type_ != M_DELAY) || !(0..=255).contains(&type_) {
        return 0;
    }
    let bp = msg::alloc_tryhard(usize::from(param.is_some()));
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
