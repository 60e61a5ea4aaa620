//! The four kernel synchronisation entry points the driver calls --
//! `mutex_enter`, `mutex_exit`, `cv_wait`, `cv_broadcast` -- plus the DEBUG
//! kernel's `assfail`, defined with C linkage on top of shuttle's
//! primitives, so that every blocking step of the reference-count locks is
//! a scheduling point that shuttle controls.
//!
//! # Kernel semantics modelled
//!
//! * A `kmutex_t` is a sleeping, non-recursive lock with an owner. It is
//!   modelled as a shuttle `Mutex<Option<ThreadId>>` (the owner, only ever
//!   held for a few instructions, never across a call) and a shuttle
//!   `Condvar` on which would-be owners sleep. `mutex_enter` by the owner
//!   (recursion) and `mutex_exit` by a non-owner are violations.
//! * `cv_wait(cv, m)` must be called with `m` held. It releases `m` and
//!   goes to sleep on `cv` atomically: the task releases the owner slot and
//!   starts waiting on `cv` while it still holds the inner shuttle mutex,
//!   and `cv_broadcast`ers that hold `m` can only get `m` after that, so no
//!   wake-up is lost. It reacquires `m` before returning.
//! * Spurious wake-ups are allowed (illumos documents that `cv_wait` may
//!   return early): a condvar initialised with [`Spurious::Allowed`] makes
//!   `cv_wait` return without a wake-up, after releasing and reacquiring the
//!   mutex, whenever shuttle's (seeded, replayable) random source says so.
//! * `cv_broadcast` wakes every waiter; it may be called without the mutex.
//!
//! # Violations
//!
//! A panic must not unwind out of an `extern "C"` function (it would abort
//! the whole test binary), so misuse of the API is not a panic here: it is
//! recorded, and the call does the least harmful thing (returns without
//! blocking). The harness calls [`check`] after every protocol step and at
//! the end of each execution, and panics there, in ordinary Rust code, which
//! shuttle reports with the failing schedule.
//!
//! # Scope of the registry
//!
//! Objects are registered by address ([`mutex_init`], [`cv_init`]) in a
//! registry that, like the violation log, is local to the OS thread: shuttle
//! runs every task of an execution as a coroutine on the thread that called
//! `Runner::run`, so each test (cargo runs tests on several threads) has its
//! own, and [`reset`] empties it at the start of each execution, so nothing
//! a failed (and abandoned) execution left behind can be looked up again. A
//! lookup that misses is a violation too, so a task that ever ran on another
//! OS thread would not pass unnoticed.

use core::ffi::{CStr, c_char, c_int};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicUsize, Ordering};

use ptm::sys::{kcondvar_t, kmutex_t};
use shuttle::rand::Rng;
use shuttle::sync::{Condvar, Mutex, MutexGuard};
use shuttle::thread::{self, ThreadId};

/// Whether `cv_wait` may return without a wake-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spurious {
    /// Never: every return from `cv_wait` follows a `cv_broadcast`.
    Never,
    /// Sometimes, as shuttle's random source decides (one wait in four).
    Allowed,
}

struct KMutex {
    /// The owning task, or `None` when the mutex is free.
    owner: Mutex<Option<ThreadId>>,
    /// Signalled whenever the mutex is released.
    released: Condvar,
}

struct KCondvar {
    cv: Condvar,
    spurious: Spurious,
}

#[derive(Default)]
struct Registry {
    mutexes: HashMap<usize, Rc<KMutex>>,
    condvars: HashMap<usize, Rc<KCondvar>>,
    violations: Vec<String>,
    /// Call counts, for coverage.
    stats: Stats,
}

/// Counts of kernel calls since the last [`reset`], for the harness to
/// check that a scenario really exercised the waiting paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `mutex_enter` calls.
    pub mutex_enters: u64,
    /// `cv_wait` calls (each one a task that found the lock taken).
    pub cv_waits: u64,
    /// `cv_wait` calls that returned spuriously.
    pub spurious_wakeups: u64,
    /// `cv_broadcast` calls.
    pub broadcasts: u64,
}

std::thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Lookups that missed on some thread, which that thread's own log also
/// records: counted globally as well, in case the miss happened on a thread
/// whose log nobody reads.
static LOOKUP_MISSES: AtomicUsize = AtomicUsize::new(0);

fn violation(message: String) {
    REGISTRY.with(|r| r.borrow_mut().violations.push(message));
}

fn addr<T>(p: *mut T) -> usize {
    p as usize
}

fn find_mutex(m: *mut kmutex_t, call: &str) -> Option<Rc<KMutex>> {
    let found = REGISTRY.with(|r| r.borrow().mutexes.get(&addr(m)).cloned());
    if found.is_none() {
        LOOKUP_MISSES.fetch_add(1, Ordering::Relaxed);
        violation(format!("{call}({m:p}): not an initialised kmutex_t"));
    }
    found
}

fn find_condvar(cv: *mut kcondvar_t, call: &str) -> Option<Rc<KCondvar>> {
    let found = REGISTRY.with(|r| r.borrow().condvars.get(&addr(cv)).cloned());
    if found.is_none() {
        LOOKUP_MISSES.fetch_add(1, Ordering::Relaxed);
        violation(format!("{call}({cv:p}): not an initialised kcondvar_t"));
    }
    found
}

fn count(f: impl FnOnce(&mut Stats)) {
    REGISTRY.with(|r| f(&mut r.borrow_mut().stats));
}

/// Whether this task is unwinding a panic: the execution has failed, and
/// the guards' destructors are running. The kernel calls then do nothing,
/// so that no scheduling point lets another task run (and perhaps fail
/// too, which shuttle cannot attribute) before the first failure reaches
/// shuttle: the pty's state no longer matters, only the report.
fn failing() -> bool {
    std::thread::panicking()
}

fn me() -> ThreadId {
    thread::current().id()
}

fn lock_owner(k: &KMutex) -> MutexGuard<'_, Option<ThreadId>> {
    // Poisoning needs a panic while the guard is held, and nothing between
    // lock and unlock here can panic; take the state either way.
    k.owner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sleeps on `k.released` until the mutex is free, then takes it.
fn acquire<'a>(
    k: &'a KMutex,
    mut owner: MutexGuard<'a, Option<ThreadId>>,
) -> MutexGuard<'a, Option<ThreadId>> {
    while owner.is_some() {
        owner = k
            .released
            .wait(owner)
            .unwrap_or_else(PoisonError::into_inner);
    }
    *owner = Some(me());
    owner
}

/// Empties this thread's registry, violation log and counters: called at
/// the start of every execution (before anything is registered).
pub fn reset() {
    REGISTRY.with(|r| *r.borrow_mut() = Registry::default());
}

/// `mutex_init`: registers the `kmutex_t` at `m` (replacing whatever a
/// previous execution left at that address).
pub fn mutex_init(m: *mut kmutex_t) {
    let k = Rc::new(KMutex {
        owner: Mutex::new(None),
        released: Condvar::new(),
    });
    REGISTRY.with(|r| r.borrow_mut().mutexes.insert(addr(m), k));
}

/// `cv_init`: registers the `kcondvar_t` at `cv`.
pub fn cv_init(cv: *mut kcondvar_t, spurious: Spurious) {
    let c = Rc::new(KCondvar {
        cv: Condvar::new(),
        spurious,
    });
    REGISTRY.with(|r| r.borrow_mut().condvars.insert(addr(cv), c));
}

/// `MUTEX_HELD`-style query: the task that holds `m`, if any.
pub fn mutex_owner(m: *mut kmutex_t) -> Option<ThreadId> {
    let k = find_mutex(m, "mutex_owner")?;
    *lock_owner(&k)
}

/// Whether the current task holds `m`.
pub fn mutex_held(m: *mut kmutex_t) -> bool {
    mutex_owner(m) == Some(me())
}

/// Records a violation found by the harness itself (so that it is reported
/// together with the kernel's).
pub fn record(message: String) {
    violation(message);
}

/// The counters since the last [`reset`].
pub fn stats() -> Stats {
    REGISTRY.with(|r| r.borrow().stats)
}

/// Panics with every violation recorded on this thread since the last
/// [`reset`] (or the last call), if there is any.
#[track_caller]
pub fn check() {
    let violations = REGISTRY.with(|r| std::mem::take(&mut r.borrow_mut().violations));
    let misses = LOOKUP_MISSES.load(Ordering::Relaxed);
    assert!(
        violations.is_empty(),
        "kernel API violation(s): {}",
        violations.join("; ")
    );
    assert_eq!(misses, 0, "kernel object lookups missed on some thread");
}

/// `void mutex_enter(kmutex_t *)`.
#[unsafe(no_mangle)]
pub extern "C" fn mutex_enter(m: *mut kmutex_t) {
    if failing() {
        return;
    }
    let Some(k) = find_mutex(m, "mutex_enter") else {
        return;
    };
    count(|s| s.mutex_enters += 1);
    let owner = lock_owner(&k);
    if *owner == Some(me()) {
        // The kernel panics ("recursive mutex_enter"); record and return,
        // leaving the caller the owner it already was.
        drop(owner);
        violation(format!(
            "mutex_enter({m:p}): recursive, already held by this task"
        ));
        return;
    }
    drop(acquire(&k, owner));
}

/// `void mutex_exit(kmutex_t *)`.
#[unsafe(no_mangle)]
pub extern "C" fn mutex_exit(m: *mut kmutex_t) {
    if failing() {
        return;
    }
    let Some(k) = find_mutex(m, "mutex_exit") else {
        return;
    };
    let mut owner = lock_owner(&k);
    if *owner != Some(me()) {
        let held_by = *owner;
        drop(owner);
        violation(format!(
            "mutex_exit({m:p}): not held by this task (owner: {held_by:?})"
        ));
        return;
    }
    *owner = None;
    drop(owner);
    k.released.notify_all();
}

/// `void cv_wait(kcondvar_t *, kmutex_t *)`.
#[unsafe(no_mangle)]
pub extern "C" fn cv_wait(cv: *mut kcondvar_t, m: *mut kmutex_t) {
    if failing() {
        return;
    }
    let (Some(c), Some(k)) = (find_condvar(cv, "cv_wait"), find_mutex(m, "cv_wait")) else {
        return;
    };
    count(|s| s.cv_waits += 1);
    let mut owner = lock_owner(&k);
    if *owner != Some(me()) {
        drop(owner);
        violation(format!(
            "cv_wait({cv:p}, {m:p}): mutex not held by this task"
        ));
        // Return as a spurious wake-up would; but yield first, so that a
        // caller looping on this misuse cannot starve everyone else (and
        // so never gets back to the harness, which reports the violation).
        thread::yield_now();
        return;
    }
    // Release m. The inner lock is still held, so no task can take m (and
    // so no broadcast made under m can happen) before we wait on cv below.
    *owner = None;
    k.released.notify_all();
    let spurious =
        c.spurious == Spurious::Allowed && shuttle::rand::thread_rng().gen_range(0..4) == 0;
    if spurious {
        count(|s| s.spurious_wakeups += 1);
        drop(owner);
        thread::yield_now();
        owner = lock_owner(&k);
    } else {
        // Atomically releases the inner lock and sleeps until a broadcast.
        owner = c.cv.wait(owner).unwrap_or_else(PoisonError::into_inner);
    }
    drop(acquire(&k, owner));
}

/// `void cv_broadcast(kcondvar_t *)`.
#[unsafe(no_mangle)]
pub extern "C" fn cv_broadcast(cv: *mut kcondvar_t) {
    if failing() {
        return;
    }
    let Some(c) = find_condvar(cv, "cv_broadcast") else {
        return;
    };
    count(|s| s.broadcasts += 1);
    c.cv.notify_all();
}

/// `void assfail(const char *, const char *, int)`: the DEBUG kernel's
/// `ASSERT` failure, reached from the C macros (compiled with `-DDEBUG`).
/// Recorded as a violation rather than a panic (see the module notes).
///
/// # Safety
///
/// `expr` and `file` must be NUL-terminated strings (as `ASSERT`'s
/// expansion passes: string literals).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn assfail(expr: *const c_char, file: *const c_char, line: c_int) {
    // SAFETY: the caller passes NUL-terminated string literals.
    let (expr, file) = unsafe { (CStr::from_ptr(expr), CStr::from_ptr(file)) };
    violation(format!(
        "assertion failed: {}, file: {}, line: {line}",
        expr.to_string_lossy(),
        file.to_string_lossy()
    ));
}
