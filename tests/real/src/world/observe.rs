//! What the world observes and configures in the kernel: ptys, queues,
//! open streams, allocb counting and faults, the pty limit, minor nodes.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};

use ptm::sys::queue_t;
use ptm_scenario::msg::queue_info;
use ptm_scenario::{HeadState, MinorNode, QueueInfo};

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
    fn kp_pt_refcnts(
        limit: u32,
        minors: *mut u32,
        refcnts: *mut c_int,
        held: *mut c_int,
        max: c_int,
    ) -> c_int;
    /// ptms_conf's maximum number of ptys (0: its own estimate).
    static mut pt_max_pty: usize;
}

/// allocb calls made since boot (csrc/hooks.c counts them).
static ALLOCB_CALLS: AtomicU64 = AtomicU64::new(0);
/// The absolute numbers of the allocb calls that fail.
static ALLOCB_FAIL_AT: std::sync::Mutex<std::collections::BTreeSet<u64>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The functions of the STREAMS framework, by source file.
mod framework {
    include!(concat!(env!("OUT_DIR"), "/framework_functions.rs"));
}

/// The callers of the latest counted allocb calls (for failure reports).
static ALLOCB_CALLERS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Who made an allocb call, from the chain of frames above `frame` (the
/// world's allocb's own): the first function that is not one of stream.c's
/// message utilities (allocb_tryhard, copyb, putnextctl, ...). `None` when
/// that is the stream head (streamio.c, strsubr.c): its allocations are
/// not counted, as they are not the drivers'.
///
/// # Safety
/// `frame` must be the frame pointer of a function compiled with frame
/// pointers, whose callers were too (the kernel is).
unsafe fn allocb_caller(frame: *const usize) -> Option<String> {
    let mut fp = frame;
    for _ in 0..32 {
        if fp.is_null() {
            break;
        }
        // SAFETY: a frame-pointer frame: [fp] is the caller's frame
        // pointer, [fp + 8] the return address into the caller.
        let (next, ret) = unsafe { (*fp as *const usize, *fp.add(1)) };
        let name = crate::kernel::symbols::name_of(ret);
        if framework::STREAM_C.contains(&name.as_str()) {
            fp = next;
            continue;
        }
        if framework::STREAMIO_C.contains(&name.as_str())
            || framework::STRSUBR_C.contains(&name.as_str())
        {
            return None;
        }
        return Some(name);
    }
    Some("(unknown)".into())
}

/// Called by the world's `allocb` for every call (see csrc/hooks.c):
/// counts a driver's call and says whether it is to fail.
#[unsafe(no_mangle)]
pub extern "C" fn kp_allocb_call(frame: *const std::ffi::c_void) -> c_int {
    // SAFETY: the world's allocb passes its own frame pointer; the kernel
    // is compiled with frame pointers.
    let Some(caller) = (unsafe { allocb_caller(frame.cast()) }) else {
        return 0;
    };
    let n = ALLOCB_CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    {
        let mut v = ALLOCB_CALLERS.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() >= 64 {
            v.remove(0);
        }
        v.push(caller);
    }
    let fail = ALLOCB_FAIL_AT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&n);
    c_int::from(fail)
}

/// The functions that made the latest counted allocb calls, oldest first.
pub fn recent_allocb_callers() -> Vec<String> {
    ALLOCB_CALLERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

pub(crate) fn allocb_calls() -> u64 {
    ALLOCB_CALLS.load(Ordering::Relaxed)
}

/// The `n`th allocb call from now on fails (in addition to any failures
/// already set).
pub(crate) fn fail_nth_allocb(n: u64) {
    let at = allocb_calls() + n;
    ALLOCB_FAIL_AT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(at);
}

/// Whether the world lets the DEBUG ASSERTs it knows ptm's neighbours trip
/// fire (`PTM_REAL_STRICT_DEBUG` set), instead of recording what happened
/// and carrying on as a non-DEBUG kernel would.
pub(crate) fn strict_debug() -> bool {
    std::env::var_os("PTM_REAL_STRICT_DEBUG").is_some()
}

/// What went wrong in this world without stopping the kernel.
static ANOMALIES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Anomalies a test said it expected (each entry takes one off the list).
static ACKNOWLEDGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// What went wrong so far: the world's own findings, then the failed
/// ASSERTs the kernel let pass, less those acknowledged.
pub(crate) fn anomalies() -> Vec<String> {
    let mut v = ANOMALIES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    v.extend(trace::kernel_events().into_iter().filter_map(|e| match e {
        Event::Assertion(a) => Some(format!("failed ASSERT({a}), let pass")),
        _ => None,
    }));
    for a in ACKNOWLEDGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        if let Some(i) = v.iter().position(|x| x == a) {
            v.remove(i);
        }
    }
    v
}

/// Takes the anomalies so far that contain `what` off the list.
pub(crate) fn acknowledge_anomalies(what: &str) -> usize {
    let found: Vec<String> = anomalies()
        .into_iter()
        .filter(|a| a.contains(what))
        .collect();
    let n = found.len();
    ACKNOWLEDGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(found);
    n
}

/// The ASSERTs of illumos's code that bad input the world can make trips,
/// and that a non-DEBUG kernel does not check: the world records each
/// failure and goes on, unless [`strict_debug`].
///
/// - strsun.c `miocpullup`: the M_IOCTL's first block is exactly an
///   iocblk. A stream head always builds it so; a message injected below
///   the head (the bad-input tests) need not.
/// - streamio.c `strrput`: an M_FLUSH with FLUSHBAND carries its band
///   byte. Again what a stream head sends always does; a one-byte M_FLUSH
///   injected below the manager's head reaches the subsidiary's as it is
///   (both drivers pass it on), and the byte after it is read.
const TOLERATED_ASSERTS: &[&str] = &[
    "MBLKL(iocmp) == sizeof (struct iocblk)",
    "(bp->b_wptr - bp->b_rptr) >= 2",
];

/// Watches ptys as ptms_close frees them into the pty cache: one with
/// `pt_state` still set would trip ptms_destructor's ASSERT when the cache
/// is reaped (a DEBUG kernel panic; ptm.c does it, see
/// tests/debug_findings.rs). The world records it as an anomaly at once,
/// as the model world does, and clears the state so that the kernel
/// carries on -- unless [`strict_debug`], when the ASSERT is left to fire
/// at the reap.
pub(crate) fn watch_pty_frees() {
    fn check(obj: *mut std::ffi::c_void) {
        let pt = obj.cast::<ptm::sys::pt_ttys>();
        // SAFETY: an object of ptms_conf's pty cache (a pt_ttys, the
        // layout ptm::sys describes), just freed, still ours to read.
        let (state, minor) = unsafe { ((*pt).pt_state, (*pt).pt_minor) };
        if state == 0 {
            return;
        }
        ANOMALIES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!(
                "ptms_close frees minor {minor} with pt_state still set"
            ));
        if !strict_debug() {
            // SAFETY: as above; the object is free, nobody else uses it.
            unsafe { (*pt).pt_state = 0 };
        }
    }
    kmem::on_free("pty_map", check);
}

/// A new world starts with no fault pending and no pty limit.
pub(crate) fn reset_faults() {
    ANOMALIES.lock().unwrap_or_else(|e| e.into_inner()).clear();
    ACKNOWLEDGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    crate::kernel::tolerate_assertions(if strict_debug() {
        &[]
    } else {
        TOLERATED_ASSERTS
    });
    ALLOCB_FAIL_AT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
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

/// `(minor, pt_refcnt, pt_lock held)` of every allocated pty (minors
/// below 65536, the first 4096 of them).
pub(crate) fn pt_refcnts() -> Vec<(u32, i32, bool)> {
    const MAX: usize = 4096;
    let mut minors = vec![0u32; MAX];
    let mut refcnts = vec![0 as c_int; MAX];
    let mut held = vec![0 as c_int; MAX];
    // SAFETY: the arrays hold MAX entries each; kp_pt_refcnts takes
    // ptms_lock and only reads the ptys.
    let n = unsafe {
        kp_pt_refcnts(
            65536,
            minors.as_mut_ptr(),
            refcnts.as_mut_ptr(),
            held.as_mut_ptr(),
            MAX as c_int,
        )
    };
    (0..n.max(0) as usize)
        .map(|i| (minors[i], refcnts[i], held[i] != 0))
        .collect()
}

pub(crate) fn open_streams() -> usize {
    // SAFETY: no preconditions.
    unsafe { kp_open_streams() as usize }
}

/// The room in the block illumos's allocb gives `len` bytes.
pub(crate) fn block_capacity(len: usize) -> usize {
    // SAFETY: on the world's thread; an uncounted allocb and its freeb.
    unsafe { ffi::kp_block_capacity(len) }
}

/// What the flags of `vp`'s stream head say.
pub(crate) fn head_state(vp: *mut ffi::vnode_t) -> HeadState {
    let mut b = [0u8; 5];
    // SAFETY: `vp` is an open file's stream vnode (the caller found it
    // through an fd), so its stream head is live; `b` has the five bytes.
    unsafe { ffi::kp_head_state(vp, &mut b) };
    let [hung_up, tty, xpg4_tty, read_error, write_error] = b.map(|x| x != 0);
    HeadState {
        hung_up,
        tty,
        xpg4_tty,
        read_error,
        write_error,
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

/// Messages on the write queue of the driver at the bottom of `vp`'s
/// stream, and the driver's name.
pub(crate) fn driver_write_backlog(vp: *mut ffi::vnode_t) -> (usize, String) {
    let (mut rq, mut wq) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: a live vnode with a stream; the world is settled; a queue's
    // qinit and module_info are static data of its driver.
    unsafe {
        kp_stream_queues(vp, &mut rq, &mut wq);
        let name = std::ffi::CStr::from_ptr((*(*(*wq).q_qinfo).qi_minfo).mi_idname)
            .to_string_lossy()
            .into_owned();
        ((*wq).q_mblkcnt, name)
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
