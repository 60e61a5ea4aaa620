//! Measurement windows: the bench points the measured module's `qinit`
//! tables (`ptmrint`, `ptmwint`) at wrappers of its own, which turn
//! callgrind's collection on when the framework enters a driver procedure
//! (open, close, put, service) and off when the outermost one returns.
//!
//! So a profile holds exactly what runs while a driver procedure is on the
//! stack -- the driver's own code and every kernel function it calls, down
//! to the stream head a `putnext` reaches, nested driver calls included
//! once -- and nothing of the system call that led there. The wrappers'
//! own instructions (the `ptm_bench_window_*` functions) are left out of
//! every count by name; the driver's code is not changed: only the
//! pointers the framework reads from the tables are.
//!
//! Collection is per thread in callgrind, and so is the nesting depth
//! here: a service procedure runs on a STREAMS background thread.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ptm::sys::{cred_t, dev_t, mblk_t, qinit, queue_t};
use ptm_kload::LoadedModule;

use crate::callgrind;

/// Whether entering a driver procedure opens a window (set around the
/// measured loop only).
static MEASURING: AtomicBool = AtomicBool::new(false);

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// The procedures of the module being measured (one world at a time).
static OPEN: AtomicUsize = AtomicUsize::new(0);
static CLOSE: AtomicUsize = AtomicUsize::new(0);
static RSRV: AtomicUsize = AtomicUsize::new(0);
static WPUT: AtomicUsize = AtomicUsize::new(0);
static WSRV: AtomicUsize = AtomicUsize::new(0);

type OpenFn = unsafe extern "C" fn(*mut queue_t, *mut dev_t, c_int, c_int, *mut cred_t) -> c_int;
type CloseFn = unsafe extern "C" fn(*mut queue_t, c_int, *mut cred_t) -> c_int;
type PutFn = unsafe extern "C" fn(*mut queue_t, *mut mblk_t) -> c_int;
type SrvFn = unsafe extern "C" fn(*mut queue_t) -> c_int;

#[derive(Clone, Copy)]
struct Procedures {
    open: usize,
    close: usize,
    rsrv: usize,
    wput: usize,
    wsrv: usize,
}

/// Each module's own procedures, by the address of its read-side qinit.
static SAVED: Mutex<Option<HashMap<usize, Procedures>>> = Mutex::new(None);

/// Starts or stops measuring (around a workload's measured loop).
pub fn measure(on: bool) {
    MEASURING.store(on, Ordering::SeqCst);
}

#[inline(always)]
fn enter() -> bool {
    let depth = DEPTH.get();
    DEPTH.set(depth + 1);
    let open = depth == 0 && MEASURING.load(Ordering::Relaxed);
    if open {
        callgrind::toggle_collect();
    }
    open
}

#[inline(always)]
fn leave(opened: bool) {
    if opened {
        callgrind::toggle_collect();
    }
    DEPTH.set(DEPTH.get() - 1);
}

fn get<F: Copy>(slot: &AtomicUsize) -> F {
    let addr = slot.load(Ordering::Relaxed);
    assert!(
        addr != 0,
        "a driver procedure ran before the bench installed it"
    );
    // SAFETY: `F` is the function-pointer type the slot was filled from
    // (see `install`), and the address is not zero.
    unsafe { std::mem::transmute_copy(&addr) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn ptm_bench_window_open(
    q: *mut queue_t,
    devp: *mut dev_t,
    oflag: c_int,
    sflag: c_int,
    cr: *mut cred_t,
) -> c_int {
    let f: OpenFn = get(&OPEN);
    let w = enter();
    // SAFETY: the framework's arguments, passed on unchanged.
    let rc = unsafe { f(q, devp, oflag, sflag, cr) };
    leave(w);
    rc
}

#[unsafe(no_mangle)]
unsafe extern "C" fn ptm_bench_window_close(
    q: *mut queue_t,
    flag: c_int,
    cr: *mut cred_t,
) -> c_int {
    let f: CloseFn = get(&CLOSE);
    let w = enter();
    // SAFETY: as above.
    let rc = unsafe { f(q, flag, cr) };
    leave(w);
    rc
}

#[unsafe(no_mangle)]
unsafe extern "C" fn ptm_bench_window_wput(q: *mut queue_t, mp: *mut mblk_t) -> c_int {
    let f: PutFn = get(&WPUT);
    let w = enter();
    // SAFETY: as above.
    let rc = unsafe { f(q, mp) };
    leave(w);
    rc
}

#[unsafe(no_mangle)]
unsafe extern "C" fn ptm_bench_window_rsrv(q: *mut queue_t) -> c_int {
    let f: SrvFn = get(&RSRV);
    let w = enter();
    // SAFETY: as above.
    let rc = unsafe { f(q) };
    leave(w);
    rc
}

#[unsafe(no_mangle)]
unsafe extern "C" fn ptm_bench_window_wsrv(q: *mut queue_t) -> c_int {
    let f: SrvFn = get(&WSRV);
    let w = enter();
    // SAFETY: as above.
    let rc = unsafe { f(q) };
    leave(w);
    rc
}

/// Whether a profile's function is one of the wrappers.
pub fn is_wrapper(name: &str) -> bool {
    name.starts_with("ptm_bench_window_")
}

/// Points `m`'s read and write qinit tables at the wrappers (once per
/// module) and makes the wrappers call `m`'s procedures. Call before the
/// world opens anything.
pub fn install(m: &LoadedModule) -> Result<(), String> {
    let sym = |n: &str| {
        m.symbol(n)
            .map(|p| p.cast_mut().cast::<qinit>())
            .ok_or_else(|| format!("the module has no {n}"))
    };
    let (r, w) = (sym("ptmrint")?, sym("ptmwint")?);
    let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
    let saved = saved.get_or_insert_with(HashMap::new);
    let procs = match saved.get(&(r as usize)) {
        Some(p) => *p,
        None => {
            // SAFETY: ptmrint and ptmwint are the module's qinit tables,
            // in its writable data area, and nothing runs in the module
            // while the world is not making calls.
            let p = unsafe {
                let addr = |f: Option<usize>, what: &str| {
                    f.filter(|&a| a != 0)
                        .ok_or_else(|| format!("the module's {what} is NULL"))
                };
                let p = Procedures {
                    open: addr((*r).qi_qopen.map(|f| f as usize), "qi_qopen")?,
                    close: addr((*r).qi_qclose.map(|f| f as usize), "qi_qclose")?,
                    rsrv: addr((*r).qi_srvp.map(|f| f as usize), "read qi_srvp")?,
                    wput: addr((*w).qi_putp.map(|f| f as usize), "qi_putp")?,
                    wsrv: addr((*w).qi_srvp.map(|f| f as usize), "write qi_srvp")?,
                };
                (*r).qi_qopen = Some(ptm_bench_window_open);
                (*r).qi_qclose = Some(ptm_bench_window_close);
                (*r).qi_srvp = Some(ptm_bench_window_rsrv);
                (*w).qi_putp = Some(ptm_bench_window_wput);
                (*w).qi_srvp = Some(ptm_bench_window_wsrv);
                p
            };
            saved.insert(r as usize, p);
            p
        }
    };
    OPEN.store(procs.open, Ordering::SeqCst);
    CLOSE.store(procs.close, Ordering::SeqCst);
    RSRV.store(procs.rsrv, Ordering::SeqCst);
    WPUT.store(procs.wput, Ordering::SeqCst);
    WSRV.store(procs.wsrv, Ordering::SeqCst);
    Ok(())
}
