//! The service scheduler: `qenable` puts a queue on its stream's service
//! list (single-threaded) or the world's run queue (multi-threaded), and
//! `runservice` runs its service procedure with illumos's `QENAB` /
//! `QINSERVICE` / `QWCLOSE` rules. Single-threaded, [`run_services`]
//! drains the lists after each step of a system call; multi-threaded, the
//! worker threads do ([`worker_loop`]).

use std::ffi::c_int;
use std::time::Duration;

use ptm::sys::*;
use ptm_scenario::LateOrder;

use crate::queue::{QPair, QREADR_U, check_q, pair_of, stream_of};
use crate::world::{self, StreamId, locked};

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
            } else if let Some(held) = s.late.as_mut()
                && s.streams[sid].flags & world::sd::STRCLOSE == 0
            {
                // (A stream being closed is not held: its close waits for
                // its queues' services.)
                held.push((q, sid));
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
        let mut runs: u64 = 0;
        while let Some(f) = srv {
            world::assert_unlocked("calling a service procedure");
            f(q);
            runs += 1;
            srv = locked(|| {
                if (*q).q_flag & QENAB as u32 == 0 {
                    finish();
                    return None;
                }
                if runs >= SERVICE_BUDGET {
                    // A procedure that enables its own queue every time it
                    // runs (a message it puts back and can never take) would
                    // loop here for ever: stop it, and say which.
                    (*q).q_flag &= !(QENAB as u32);
                    finish();
                    let side = if (*q).q_flag & QREADR_U != 0 {
                        "read"
                    } else {
                        "write"
                    };
                    world::with(|s| {
                        s.anomaly(format!(
                            "livelock: the service procedure of the {} {side} queue enabled \
                             its own queue {runs} times in a row while running, and would go on \
                             for ever: a message it puts back and can never take (a \
                             high-priority message held by flow control?)",
                            (*pair_of(q)).name
                        ))
                    });
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

/// Services run late from now on (single-threaded worlds): what `qenable`
/// schedules is held ([`qenable_impl`]) until [`run_late`].
pub(crate) fn hold_services() {
    if !world::is_mt() {
        world::with(|s| {
            s.late.get_or_insert_with(Vec::new);
        });
    }
}

/// Services run on time again; what was held runs now.
pub(crate) fn stop_holding_services() {
    run_late(LateOrder::Scheduled, None);
    world::with(|s| s.late = None);
}

/// Runs the held service procedures -- all of them, or those of stream
/// `only` -- streams in `order`, each stream's queues in the order they
/// were enabled, each followed by whatever it scheduled on its own stream;
/// then everything else they scheduled. Services are on time meanwhile
/// (a held queue still has `QENAB`, so enabling it again leaves it held);
/// afterwards they are late again if they were.
pub(crate) fn run_late(order: LateOrder, only: Option<StreamId>) {
    let Some(held) = world::with(|s| s.late.take()) else {
        return;
    };
    let (go, keep): (Vec<_>, Vec<_>) = held
        .into_iter()
        .partition(|&(_, sid)| only.is_none_or(|o| o == sid));
    world::with(|s| s.late = None);
    let queues = order.arrange(&go);
    let mut prev: Option<StreamId> = None;
    for q in queues {
        // SAFETY: held queues are live (retired pairs are taken off the
        // list).
        let sid = unsafe { stream_of(q) };
        if prev.is_some_and(|p| p != sid) {
            run_services(prev, true);
        }
        prev = Some(sid);
        // SAFETY: held queues are live (retired pairs are taken off the
        // list) and have QENAB set, as when taken off a service list.
        unsafe { runservice(q) };
    }
    run_services(prev, true);
    run_services(None, false);
    // Whatever was held and not run stays held, ahead of anything new (there
    // is nothing new: services were on time meanwhile).
    world::with(|s| s.late = Some(keep));
}
