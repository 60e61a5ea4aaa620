//! What the world observes and configures in the kernel: ptys, queues,
//! open streams, allocb counting and faults, the pty limit, minor nodes.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};

use ptm::sys::{mblk_t, queue_t};
use ptm_scenario::{MinorNode, QueueInfo};

use super::trace;
use crate::kernel::{Event, ffi, kmem};

unsafe extern "C" {
    fn kp_pt_info(
        minor: u32,
        state: *mut u16,
        zone: *mut i32,
        uid: *mut u32,
        gid: *mut u32,
    ) -> c_int;
    fn kp_stream_queues(vp: *mut ffi::vnode_t, headrq: *mut *mut queue_t, drvwq: *mut *mut queue_t);
    fn kp_open_streams() -> c_int;
    /// ptms_conf's maximum number of ptys (0: its own estimate).
    static mut pt_max_pty: usize;
}

/// allocb calls made since boot (csrc/hooks.c counts them).
static ALLOCB_CALLS: AtomicU64 = AtomicU64::new(0);
/// The absolute allocb call number that fails (0: none).
static ALLOCB_FAIL_AT: AtomicU64 = AtomicU64::new(0);

/// Called by the world's `allocb` for every call made outside stream.c:
/// non-zero when this one is to fail.
#[unsafe(no_mangle)]
pub extern "C" fn kp_allocb_call() -> c_int {
    let n = ALLOCB_CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    c_int::from(ALLOCB_FAIL_AT.load(Ordering::Relaxed) == n)
}

pub(crate) fn allocb_calls() -> u64 {
    ALLOCB_CALLS.load(Ordering::Relaxed)
}

/// The `n`th allocb call from now on fails.
pub(crate) fn fail_nth_allocb(n: u64) {
    ALLOCB_FAIL_AT.store(allocb_calls() + n, Ordering::Relaxed);
}

/// A new world starts with no fault pending and no pty limit.
pub(crate) fn reset_faults() {
    crate::kernel::sched::release_services(false);
    ALLOCB_FAIL_AT.store(0, Ordering::Relaxed);
    kmem::clear_failures();
    set_pty_limit(None);
    // SAFETY: no kernel code runs while a world is being set up.
    unsafe { ffi::kp_fail_pts_attach(0) };
}

pub(crate) fn set_pty_limit(limit: Option<usize>) {
    // SAFETY: a plain tunable that ptms_conf reads under ptms_lock; the
    // world sets it while no kernel code runs.
    unsafe { pt_max_pty = limit.unwrap_or(0) };
}

/// (state, zone, uid, gid) of pty `minor`.
pub(crate) fn pt_info(minor: u32) -> Option<(u16, i32, u32, u32)> {
    let (mut s, mut z, mut u, mut g) = (0, 0, 0, 0);
    // SAFETY: the out-pointers are ours; kp_pt_info takes ptms_lock.
    (unsafe { kp_pt_info(minor, &mut s, &mut z, &mut u, &mut g) } == 0).then_some((s, z, u, g))
}

pub(crate) fn open_streams() -> usize {
    // SAFETY: no preconditions.
    unsafe { kp_open_streams() as usize }
}

/// A queue as the observation API shows it.
///
/// # Safety
/// `q` must be a live queue, with nothing running that changes it.
unsafe fn queue_info(q: *const queue_t) -> QueueInfo {
    // SAFETY: the caller guarantees a live, quiescent queue; illumos's
    // queue_t and mblk_t have the layout ptm::sys describes.
    unsafe {
        let mut messages = Vec::new();
        let mut mp: *const mblk_t = (*q).q_first;
        while !mp.is_null() {
            let bytes = ptm_scenario::msg::msg_bytes(mp).len();
            messages.push(((*(*mp).b_datap).db_type, (*mp).b_band, bytes));
            mp = (*mp).b_next;
        }
        QueueInfo {
            count: (*q).q_count,
            mblkcnt: (*q).q_mblkcnt,
            flag: (*q).q_flag,
            hiwat: (*q).q_hiwat,
            lowat: (*q).q_lowat,
            nband: (*q).q_nband,
            messages,
        }
    }
}

/// The stream head's read queue and the driver's write queue of `vp`.
pub(crate) fn queues(vp: *mut ffi::vnode_t) -> (QueueInfo, QueueInfo) {
    let (mut rq, mut wq) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: a live vnode with a stream; the world is settled.
    unsafe {
        kp_stream_queues(vp, &mut rq, &mut wq);
        (queue_info(rq), queue_info(wq))
    }
}

/// The minor nodes drivers created (and did not remove) this world.
pub(crate) fn minor_nodes() -> Vec<MinorNode> {
    let mut v: Vec<MinorNode> = Vec::new();
    for e in trace::kernel_events() {
        if let Event::MinorNode {
            add,
            name,
            spec_type,
            minor,
            node_type,
            flag,
            ..
        } = e
        {
            if add {
                v.push(MinorNode {
                    name,
                    spec_type,
                    minor,
                    node_type,
                    flag,
                });
            } else if name == "(null)" {
                v.clear();
            } else {
                v.retain(|n| n.name != name);
            }
        }
    }
    v
}
