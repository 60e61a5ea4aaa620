//! Checks of the kernel model itself (`src/kernel.rs`): a `kmutex_t`
//! excludes, is not recursive and is released only by its owner; `cv_wait`
//! needs the mutex, releases it and sleeps atomically (no lost wake-up);
//! `cv_broadcast` wakes every waiter; spurious wake-ups do happen when
//! allowed. Each property has a check that would fail if it were broken.

#![deny(clippy::undocumented_unsafe_blocks)]

use core::cell::UnsafeCell;

use ptm::sys::{kcondvar_t, kmutex_t};
use ptm_ptlock_model::kernel::{self, Spurious};
use ptm_ptlock_model::run::{self, Sched};
use shuttle::sync::Arc;
use shuttle::thread;

/// A mutex, a condvar and the data they protect, as some kernel structure
/// would hold them.
struct Locked {
    m: Box<UnsafeCell<kmutex_t>>,
    cv: Box<UnsafeCell<kcondvar_t>>,
    value: UnsafeCell<u32>,
}

// SAFETY: `value` is only touched with `m` held (or, in the control that
// leaves the mutex out, in whole steps: shuttle runs one task at a time on
// one OS thread); the kernel objects are only used through the model.
unsafe impl Send for Locked {}
// SAFETY: as for `Send`.
unsafe impl Sync for Locked {}

impl Locked {
    fn new(spurious: Spurious) -> Arc<Locked> {
        kernel::reset();
        let l = Locked {
            m: Box::new(UnsafeCell::new(kmutex_t::default())),
            cv: Box::new(UnsafeCell::new(kcondvar_t::default())),
            value: UnsafeCell::new(0),
        };
        kernel::mutex_init(l.m());
        kernel::cv_init(l.cv(), spurious);
        Arc::new(l)
    }
    fn m(&self) -> *mut kmutex_t {
        self.m.get()
    }
    fn cv(&self) -> *mut kcondvar_t {
        self.cv.get()
    }
    fn get(&self) -> u32 {
        // SAFETY: see the Send impl.
        unsafe { *self.value.get() }
    }
    fn set(&self, v: u32) {
        // SAFETY: see the Send impl.
        unsafe { *self.value.get() = v }
    }
}

const TASKS: u32 = 3;
const ROUNDS: u32 = 3;

/// Read-yield-write increments, with or without the mutex.
fn increments(with_mutex: bool) {
    let l = Locked::new(Spurious::Never);
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    if with_mutex {
                        kernel::mutex_enter(l.m());
                        assert!(kernel::mutex_held(l.m()));
                    }
                    let v = l.get();
                    thread::yield_now();
                    l.set(v + 1);
                    if with_mutex {
                        kernel::mutex_exit(l.m());
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.join().unwrap();
    }
    kernel::check();
    assert_eq!(l.get(), TASKS * ROUNDS, "lost update");
    assert_eq!(kernel::mutex_owner(l.m()), None);
}

#[test]
fn kmutex_excludes() {
    run::check("kmutex excludes", 2000, 0x6e_0001, || increments(true));
}

#[test]
fn control_without_kmutex_updates_are_lost() {
    let caught = run::expect_failure(
        "increments without the mutex",
        Sched::Random,
        2000,
        0x6e_0002,
        || increments(false),
    );
    assert!(caught.message.contains("lost update"), "{}", caught.message);
}

#[test]
fn recursive_mutex_enter_is_reported() {
    let caught = run::expect_failure("recursive enter", Sched::Random, 1, 0x6e_0003, || {
        let l = Locked::new(Spurious::Never);
        kernel::mutex_enter(l.m());
        kernel::mutex_enter(l.m());
        kernel::mutex_exit(l.m());
        kernel::check();
    });
    assert!(caught.message.contains("recursive"), "{}", caught.message);
}

#[test]
fn mutex_exit_by_non_owner_is_reported() {
    let caught = run::expect_failure("exit by non-owner", Sched::Random, 1, 0x6e_0004, || {
        let l = Locked::new(Spurious::Never);
        kernel::mutex_enter(l.m());
        let other = Arc::clone(&l);
        thread::spawn(move || kernel::mutex_exit(other.m()))
            .join()
            .unwrap();
        kernel::mutex_exit(l.m());
        kernel::check();
    });
    assert!(
        caught.message.contains("not held by this task"),
        "{}",
        caught.message
    );
}

#[test]
fn cv_wait_without_mutex_is_reported() {
    let caught = run::expect_failure("cv_wait unlocked", Sched::Random, 1, 0x6e_0005, || {
        let l = Locked::new(Spurious::Never);
        kernel::cv_wait(l.cv(), l.m());
        kernel::check();
    });
    assert!(
        caught.message.contains("mutex not held"),
        "{}",
        caught.message
    );
}

/// `waiters` tasks wait for `value != 0`; one task sets it and broadcasts
/// once. With no spurious wake-ups, a lost wake-up (a non-atomic release
/// and sleep) or a broadcast that woke only one waiter would deadlock,
/// which shuttle reports.
fn handshake(waiters: u32, spurious: Spurious) {
    let l = Locked::new(spurious);
    let tasks: Vec<_> = (0..waiters)
        .map(|_| {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                kernel::mutex_enter(l.m());
                while l.get() == 0 {
                    kernel::cv_wait(l.cv(), l.m());
                    assert!(kernel::mutex_held(l.m()), "cv_wait returned without m");
                }
                kernel::mutex_exit(l.m());
            })
        })
        .collect();
    let setter = Arc::clone(&l);
    let set = thread::spawn(move || {
        kernel::mutex_enter(setter.m());
        setter.set(1);
        kernel::cv_broadcast(setter.cv());
        kernel::mutex_exit(setter.m());
    });
    for t in tasks {
        t.join().unwrap();
    }
    set.join().unwrap();
    kernel::check();
}

#[test]
fn cv_wait_loses_no_wakeup_and_broadcast_wakes_all() {
    run::check("handshake, 3 waiters", 2000, 0x6e_0006, || {
        handshake(3, Spurious::Never)
    });
}

#[test]
fn cv_wait_with_spurious_wakeups_still_completes() {
    run::check("handshake, spurious", 2000, 0x6e_0007, || {
        handshake(2, Spurious::Allowed)
    });
}

/// A waiter that trusts one wake-up (`if`, not `while`) is caught once
/// spurious wake-ups are allowed: they do happen.
#[test]
fn control_spurious_wakeups_happen() {
    let caught = run::expect_failure("waiter with if", Sched::Random, 2000, 0x6e_0008, || {
        let l = Locked::new(Spurious::Allowed);
        let waiter = Arc::clone(&l);
        let t = thread::spawn(move || {
            kernel::mutex_enter(waiter.m());
            if waiter.get() == 0 {
                kernel::cv_wait(waiter.cv(), waiter.m());
            }
            assert_ne!(waiter.get(), 0, "woke with the condition false");
            kernel::mutex_exit(waiter.m());
        });
        kernel::mutex_enter(l.m());
        l.set(1);
        kernel::cv_broadcast(l.cv());
        kernel::mutex_exit(l.m());
        t.join().unwrap();
    });
    assert!(
        caught.message.contains("woke with the condition false"),
        "{}",
        caught.message
    );
}
