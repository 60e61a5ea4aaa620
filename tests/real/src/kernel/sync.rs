//! `kmutex_t`, `kcondvar_t` and `krwlock_t`, with owner checks.
//!
//! A mutex is its 8-byte word: 0 when free, else the owner's `kthread_t`
//! pointer, with [`WAITERS`] set while someone is blocked on it -- so a
//! statically zeroed mutex works without `mutex_init`, as in illumos.
//! Entering a mutex the caller owns, and exiting or destroying one it does
//! not own, stop the world (illumos panics on the first two with
//! "recursive mutex_enter" and "mutex_exit: not owner" under DEBUG).
//!
//! A condition variable is only an address to sleep on; a reader/writer
//! lock's word holds the writer's kthread with [`RW_WRITE`] set, or the
//! number of readers times [`RW_READER_UNIT`].
//!
//! Blocking goes through the scheduler: [`super::sched`] in deterministic
//! mode, `parking_lot_core`'s parking lot when threaded.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN, ParkResult};

use super::sched::{self, HZ, WAITERS, Wake};

/// The lock word of a `kmutex_t` or `krwlock_t`.
///
/// # Safety
/// `p` must point to a live, 8-byte aligned lock.
unsafe fn word<'a>(p: *mut c_void) -> &'a AtomicUsize {
    if p.is_null() {
        super::fail("NULL lock");
    }
    // SAFETY: the caller guarantees an aligned, live 8-byte lock word;
    // every access to it goes through atomics.
    unsafe { AtomicUsize::from_ptr(p.cast()) }
}

fn park(
    addr: usize,
    validate: impl FnOnce() -> bool,
    before: impl FnOnce(),
    timeout: Option<Instant>,
) -> ParkResult {
    // SAFETY: the callbacks neither park nor panic; `addr` is a lock or
    // condition variable address, used only as a key.
    unsafe {
        parking_lot_core::park(
            addr,
            validate,
            before,
            |_, _| {},
            DEFAULT_PARK_TOKEN,
            timeout,
        )
    }
}

fn unpark_all(addr: usize) {
    // SAFETY: `addr` is only a key.
    unsafe { parking_lot_core::unpark_all(addr, DEFAULT_UNPARK_TOKEN) };
}

fn unpark_one(addr: usize) {
    // SAFETY: `addr` is only a key; the callback does nothing.
    unsafe { parking_lot_core::unpark_one(addr, |_| DEFAULT_UNPARK_TOKEN) };
}

/// Kernel mutexes held now, by any thread (a stress test's check at a
/// quiescent point: none).
static HELD: AtomicIsize = AtomicIsize::new(0);

/// How many kernel mutexes are held now.
pub fn mutexes_held() -> isize {
    HELD.load(Ordering::SeqCst)
}

/// Enters the mutex `w` as thread `me`.
fn enter(w: &AtomicUsize, me: usize) {
    enter_word(w, me);
    HELD.fetch_add(1, Ordering::Relaxed);
}

/// Exits the mutex `w`, which thread `me` must own.
fn exit(w: &AtomicUsize, me: usize) {
    HELD.fetch_sub(1, Ordering::Relaxed);
    exit_word(w, me);
}

/// Parks on the contended mutex `w` (threaded mode) while its word is
/// still `cur`.
fn park_on_mutex(w: &AtomicUsize, cur: usize) {
    let addr = w as *const AtomicUsize as usize;
    sched::threaded_wait(Some(sched::Wait::Mutex(addr)));
    park(
        addr,
        || w.load(Ordering::Relaxed) == cur | WAITERS,
        || {},
        None,
    );
    sched::threaded_wait(None);
}

/// Takes the lock word of `w` for thread `me`, waiting as long as needed.
fn enter_word(w: &AtomicUsize, me: usize) {
    if w.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    loop {
        let cur = w.load(Ordering::Relaxed);
        if cur == 0 {
            if w.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            continue;
        }
        if cur & !WAITERS == me {
            super::fail(&format!(
                "recursive mutex_enter: mutex {:p} is already held by this thread",
                w
            ));
        }
        if sched::deterministic() {
            sched::det_mutex_wait(w, me);
            return;
        }
        if cur & WAITERS == 0
            && w.compare_exchange(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        park_on_mutex(w, cur);
    }
}

/// Releases the lock word of `w`, which thread `me` must own.
fn exit_word(w: &AtomicUsize, me: usize) {
    if w.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    let cur = w.load(Ordering::Relaxed);
    if cur & !WAITERS != me {
        super::fail(&format!(
            "mutex_exit: mutex {:p} is not held by this thread (lock word {cur:#x})",
            w
        ));
    }
    if sched::deterministic() {
        sched::det_mutex_release(w);
    } else {
        w.store(0, Ordering::Release);
        unpark_all(w as *const AtomicUsize as usize);
    }
}

/// # Safety
/// `m` must be a live, 8-byte aligned kernel mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mutex_init(
    m: *mut c_void,
    _name: *const c_void,
    _ty: c_int,
    _arg: *mut c_void,
) {
    // SAFETY: the kernel passes its mutex.
    unsafe { word(m) }.store(0, Ordering::Relaxed);
}

/// # Safety
/// `m` must be a live, 8-byte aligned kernel mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mutex_destroy(m: *mut c_void) {
    // SAFETY: as for mutex_init.
    let w = unsafe { word(m) };
    if w.load(Ordering::Relaxed) != 0 {
        super::fail(&format!("mutex_destroy: mutex {m:p} is held"));
    }
}

/// # Safety
/// `m` must be a live, 8-byte aligned kernel mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mutex_enter(m: *mut c_void) {
    // SAFETY: as for mutex_init.
    enter(unsafe { word(m) }, sched::curthread());
}

/// # Safety
/// `m` must be a live, 8-byte aligned kernel mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mutex_exit(m: *mut c_void) {
    // SAFETY: as for mutex_init.
    exit(unsafe { word(m) }, sched::curthread());
}

/// # Safety
/// `m` must be a live, 8-byte aligned kernel mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mutex_tryenter(m: *mut c_void) -> c_int {
    // SAFETY: as for mutex_init.
    let w = unsafe { word(m) };
    let got = w
        .compare_exchange(0, sched::curthread(), Ordering::Acquire, Ordering::Relaxed)
        .is_ok();
    if got {
        HELD.fetch_add(1, Ordering::Relaxed);
    }
    c_int::from(got)
}

/// # Safety
/// `m` must be a live, 8-byte aligned kernel mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mutex_owned(m: *const c_void) -> c_int {
    // SAFETY: as for mutex_init.
    let w = unsafe { word(m.cast_mut()) };
    c_int::from(w.load(Ordering::Relaxed) & !WAITERS == sched::curthread())
}

// ---------------------------------------------------------------------------
// Condition variables
// ---------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub extern "C" fn cv_init(_cv: *mut c_void, _name: *const c_void, _ty: c_int, _arg: *mut c_void) {}

#[unsafe(no_mangle)]
pub extern "C" fn cv_destroy(_cv: *mut c_void) {}

/// Sleeps on `cv`, releasing and re-entering `m`.
fn cv_block(cv: *mut c_void, m: *mut c_void, ticks: Option<u64>, sig: bool) -> Wake {
    // SAFETY: the kernel passes its mutex.
    let w = unsafe { word(m) };
    let me = sched::curthread();
    if w.load(Ordering::Relaxed) & !WAITERS != me {
        super::fail(&format!("cv_wait: mutex {m:p} is not held by this thread"));
    }
    // The mutex is released while the thread sleeps (below, under the
    // scheduler's lock or parking_lot's) and entered again after.
    HELD.fetch_sub(1, Ordering::Relaxed);
    let why = if sched::deterministic() {
        sched::det_cv_wait(cv as usize, w, ticks, sig)
    } else {
        let deadline = ticks.map(|t| Instant::now() + Duration::from_millis(t * (1000 / HZ)));
        let deadline_ticks = ticks.map(|t| sched::now_ticks() + t);
        sched::threaded_wait(Some(sched::Wait::Cv {
            cv: cv as usize,
            deadline: deadline_ticks,
            sig,
        }));
        let r = park(cv as usize, || true, || exit_word(w, me), deadline);
        sched::threaded_wait(None);
        match r {
            ParkResult::TimedOut => Wake::TimedOut,
            _ => Wake::Normal,
        }
    };
    enter(w, me);
    why
}

#[unsafe(no_mangle)]
pub extern "C" fn cv_wait(cv: *mut c_void, m: *mut c_void) {
    cv_block(cv, m, None, false);
}

/// 0 when interrupted by a signal, else positive.
#[unsafe(no_mangle)]
pub extern "C" fn cv_wait_sig(cv: *mut c_void, m: *mut c_void) -> c_int {
    match cv_block(cv, m, None, true) {
        Wake::Interrupted => 0,
        _ => 1,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cv_wait_sig_swap(cv: *mut c_void, m: *mut c_void) -> c_int {
    cv_wait_sig(cv, m)
}

/// A wait of at most `delta` ticks: -1 when the time ran out (at once for
/// none), 0 when interrupted (only when `sig`), else positive.
fn reltimed_wait(cv: *mut c_void, m: *mut c_void, delta: libc::c_long, sig: bool) -> libc::c_long {
    if delta <= 0 {
        return -1;
    }
    match cv_block(cv, m, Some(delta as u64), sig) {
        Wake::TimedOut => -1,
        Wake::Interrupted => 0,
        Wake::Normal => 1,
    }
}

/// -1 when the time ran out, else the (positive) time left.
#[unsafe(no_mangle)]
pub extern "C" fn cv_reltimedwait(
    cv: *mut c_void,
    m: *mut c_void,
    delta: libc::c_long,
    _res: c_int,
) -> libc::c_long {
    reltimed_wait(cv, m, delta, false)
}

/// 0 when interrupted, -1 when the time ran out, else positive.
#[unsafe(no_mangle)]
pub extern "C" fn cv_reltimedwait_sig(
    cv: *mut c_void,
    m: *mut c_void,
    delta: libc::c_long,
    _res: c_int,
) -> libc::c_long {
    reltimed_wait(cv, m, delta, true)
}

#[unsafe(no_mangle)]
pub extern "C" fn cv_signal(cv: *mut c_void) {
    if sched::deterministic() {
        sched::det_cv_wake(cv as usize, false);
    } else {
        unpark_one(cv as usize);
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cv_broadcast(cv: *mut c_void) {
    if sched::deterministic() {
        sched::det_cv_wake(cv as usize, true);
    } else {
        unpark_all(cv as usize);
    }
}

// ---------------------------------------------------------------------------
// Reader/writer locks
// ---------------------------------------------------------------------------

/// A writer holds the lock (with its kthread in the other bits).
pub const RW_WRITE: usize = 2;
/// Each reader adds this.
pub const RW_READER_UNIT: usize = 4;
const RW_WRITER_MODE: c_int = 0;

fn rw_try(w: &AtomicUsize, writer: bool, me: usize) -> bool {
    let cur = w.load(Ordering::Relaxed);
    let want = if writer {
        if cur != 0 {
            return false;
        }
        me | RW_WRITE
    } else {
        if cur & RW_WRITE != 0 {
            return false;
        }
        cur + RW_READER_UNIT
    };
    w.compare_exchange(cur, want, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// # Safety
/// `rw` must be a live, 8-byte aligned kernel reader/writer lock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rw_enter(rw: *mut c_void, mode: c_int) {
    // SAFETY: the kernel passes its rwlock.
    let w = unsafe { word(rw) };
    let me = sched::curthread();
    let writer = mode == RW_WRITER_MODE;
    loop {
        if rw_try(w, writer, me) {
            return;
        }
        let cur = w.load(Ordering::Relaxed);
        if cur & RW_WRITE != 0 && cur & !RW_WRITE == me {
            super::fail(&format!(
                "rw_enter: rwlock {rw:p} already held as writer by this thread"
            ));
        }
        if sched::deterministic() {
            sched::det_rw_wait(rw as usize);
        } else {
            park(
                rw as usize,
                || w.load(Ordering::Relaxed) == cur,
                || {},
                None,
            );
        }
    }
}

/// # Safety
/// `rw` must be a live, 8-byte aligned kernel reader/writer lock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rw_tryenter(rw: *mut c_void, mode: c_int) -> c_int {
    // SAFETY: the kernel passes its rwlock.
    c_int::from(rw_try(
        unsafe { word(rw) },
        mode == RW_WRITER_MODE,
        sched::curthread(),
    ))
}

/// # Safety
/// `rw` must be a live, 8-byte aligned kernel reader/writer lock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rw_exit(rw: *mut c_void) {
    // SAFETY: the kernel passes its rwlock.
    let w = unsafe { word(rw) };
    let me = sched::curthread();
    loop {
        let cur = w.load(Ordering::Relaxed);
        let next = if cur & RW_WRITE != 0 {
            if cur & !RW_WRITE != me {
                super::fail(&format!(
                    "rw_exit: rwlock {rw:p} is write-held by another thread"
                ));
            }
            0
        } else if cur >= RW_READER_UNIT {
            cur - RW_READER_UNIT
        } else {
            super::fail(&format!("rw_exit: rwlock {rw:p} is not held"));
        };
        if w.compare_exchange(cur, next, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            break;
        }
    }
    if sched::deterministic() {
        sched::det_rw_wake(rw as usize);
    } else {
        unpark_all(rw as usize);
    }
}
