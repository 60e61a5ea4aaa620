//! Linking a stream's queue pairs: `q_next` and `q_nfsrv` from the pairs
//! in the stream, `qprocson`/`qprocsoff` (which waits for running put and
//! service procedures in the multi-threaded mode), and the retirement of a
//! pair whose stream is dismantled.

use std::ffi::c_void;
use std::ptr;
use std::time::Duration;

use ptm::sys::*;

use crate::queue::{QPair, QREADR_U, check_q, pair_of};
use crate::sched::{qenable_impl, wait_pair_idle};
use crate::world::{self, StreamId, locked};

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
                if let Some(held) = s.late.as_mut() {
                    held.retain(|&(q, _)| q != r && q != w);
                }
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
