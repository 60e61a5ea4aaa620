//! The harness-owned pty: a `struct pt_ttys` (as ptms_conf would allocate
//! it) with its `pt_lock`/`pt_cv` registered with the kernel model, a pool
//! of `queue_t` objects that can be "opened" (alive) and "closed" (dead),
//! and the instrumentation that checks the invariants.
//!
//! # Invariants checked
//!
//! * **Exclusion.** An occupancy counter, updated with one atomic
//!   read-modify-write by every task right after it gets a reference and
//!   right before it gives it back: `+1` for a reader, [`WRITER`] for a
//!   writer. A reader that finds a writer there, or a writer that finds
//!   anyone there, is a violation -- whichever of the two came second sees
//!   the first, so no overlap can go unseen.
//! * **Count.** While a task holds a reader reference, `pt_refcnt` (read
//!   under `pt_lock`) is at least 1; while it holds the writer mark, -1.
//! * **Liveness of queues.** A reader that finds a queue in `ptm_rdq` or
//!   `pts_rdq` "uses" it (as putnext would): the queue must be alive (opened
//!   and not yet closed) when it is read, and still alive after a yield that
//!   lets every other task run.
//! * **Kernel API use** (recursion, exit by a non-owner, `cv_wait` without
//!   the mutex, DEBUG `ASSERT`s in the C macros): see [`crate::kernel`].
//! * **At the end** (after every task has joined): `pt_refcnt == 0`, the
//!   mutex free, the occupancy 0, no violation recorded.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;

use ptm::ddi::PtTtys;
use ptm::sys::{self, kcondvar_t, kmutex_t, pt_ttys, queue_t};
use shuttle::sync::atomic::{AtomicIsize, AtomicU8, Ordering};

use crate::kernel::{self, Spurious};

/// The occupancy a writer adds: far below any reader count.
pub const WRITER: isize = -(1 << 32);

const UNBORN: u8 = 0;
const ALIVE: u8 = 1;
const DEAD: u8 = 2;

/// One `queue_t` and whether it is open. `repr(C)` with the queue first, so
/// that the address stored in `ptm_rdq`/`pts_rdq` is the object's address.
#[repr(C)]
pub struct QueueObj {
    q: UnsafeCell<queue_t>,
    life: AtomicU8,
}

/// One of the harness's queues, to publish in a field: its memory stays
/// valid (it is only ever marked closed) as long as the [`Pty`].
#[derive(Clone, Copy)]
pub struct QRef<'p>(&'p QueueObj);

impl QRef<'_> {
    /// The `queue_t` pointer, as stored in `ptm_rdq`/`pts_rdq`.
    pub fn as_ptr(self) -> *mut queue_t {
        self.0.q.get()
    }
}

/// Which checks the harness makes (the negative controls switch some off to
/// show that the others catch a bug on their own).
#[derive(Clone, Copy, Debug)]
pub struct Checks {
    /// The exclusion checks: occupancy (no writer with anyone else),
    /// `pt_refcnt` consistent with the guard held, and the queue fields
    /// unchanged while a reader reference is held.
    pub exclusion: bool,
    /// Whether `cv_wait` may return spuriously.
    pub spurious: Spurious,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            exclusion: true,
            spurious: Spurious::Allowed,
        }
    }
}

/// A pty as the harness owns it. Shared by the tasks of one execution.
pub struct Pty {
    tty: Box<UnsafeCell<pt_ttys>>,
    queues: Box<[QueueObj]>,
    occupancy: AtomicIsize,
    checks: Checks,
}

// SAFETY: the `pt_ttys` and `queue_t`s are shared exactly as the driver
// shares them between CPUs: `pt_refcnt` under `pt_lock`, the queue fields
// under the reference locks (only the deliberately broken protocols break
// that, which is what the checker must catch). And shuttle runs the tasks
// of an execution one at a time, as coroutines on one OS thread, so even
// those deliberate races are interleavings of whole steps, never
// simultaneous accesses.
unsafe impl Send for Pty {}
// SAFETY: as for `Send`.
unsafe impl Sync for Pty {}

impl Pty {
    /// A new pty with `nqueues` unopened queues and both queue fields NULL,
    /// `pt_refcnt` 0, `pt_nullmsg` NULL. Resets the kernel model (so call
    /// it once, at the start of an execution) and registers `pt_lock` and
    /// `pt_cv` with it.
    pub fn new(nqueues: usize, checks: Checks) -> Pty {
        kernel::reset();
        let tty = Box::new(UnsafeCell::new(pt_ttys {
            pt_minor: 1,
            pt_state: (sys::PTMOPEN | sys::PTSOPEN) as u16,
            ..pt_ttys::default()
        }));
        let queues: Box<[QueueObj]> = (0..nqueues)
            .map(|_| QueueObj {
                q: UnsafeCell::new(queue_t::default()),
                life: AtomicU8::new(UNBORN),
            })
            .collect();
        for obj in &queues {
            // SAFETY: no task runs yet; q_ptr names the object itself, so
            // a reader can check the identity of what it was handed.
            unsafe { (*obj.q.get()).q_ptr = ptr::from_ref(obj).cast_mut().cast::<c_void>() };
        }
        let pty = Pty {
            tty,
            queues,
            occupancy: AtomicIsize::new(0),
            checks,
        };
        kernel::mutex_init(pty.lock_ptr());
        kernel::cv_init(pty.cv_ptr(), checks.spurious);
        pty
    }

    /// The raw `pt_ttys`, for the C macros and the raw protocols.
    pub fn raw(&self) -> *mut pt_ttys {
        self.tty.get()
    }

    /// `&pt_lock`.
    pub fn lock_ptr(&self) -> *mut kmutex_t {
        // SAFETY: in bounds of the live pt_ttys; no reference is made.
        unsafe { ptr::addr_of_mut!((*self.raw()).pt_lock) }
    }

    /// `&pt_cv`.
    pub fn cv_ptr(&self) -> *mut kcondvar_t {
        // SAFETY: in bounds of the live pt_ttys; no reference is made.
        unsafe { ptr::addr_of_mut!((*self.raw()).pt_cv) }
    }

    /// A driver handle to this pty, as a task of ptm would hold one.
    pub fn handle(&self) -> PtTtys {
        // SAFETY: the pt_ttys is live and initialised (its lock and cv are
        // registered) for as long as `self`, which every task that uses the
        // handle keeps alive through its `Arc`; nobody calls `close`.
        unsafe { PtTtys::from_raw(self.raw()) }.expect("the pt_ttys is not NULL")
    }

    /// The queue `i` as a raw pointer.
    pub fn queue(&self, i: usize) -> *mut queue_t {
        self.queues[i].q.get()
    }

    /// `pt_refcnt`, read under `pt_lock` (taken with the kernel model's
    /// `mutex_enter`, as any kernel code would).
    pub fn refcnt(&self) -> i32 {
        kernel::mutex_enter(self.lock_ptr());
        // SAFETY: live pt_ttys; pt_refcnt is read under pt_lock.
        let refcnt = unsafe { (*self.raw()).pt_refcnt };
        kernel::mutex_exit(self.lock_ptr());
        refcnt
    }

    /// Reads a queue field without any lock: only for the end-of-execution
    /// checks, when every task has joined.
    pub fn field(&self, field: Field) -> *mut queue_t {
        // SAFETY: live pt_ttys; every other task has finished.
        unsafe { field.get(self.raw()) }
    }

    // ---- instrumentation -------------------------------------------------

    /// A task has just obtained a reader reference.
    pub fn reader_in(&self) {
        if !self.checks.exclusion {
            return;
        }
        let before = self.occupancy.fetch_add(1, Ordering::SeqCst);
        assert!(
            before >= 0,
            "exclusion violated: a reader entered while a writer holds the pty"
        );
        let refcnt = self.refcnt();
        assert!(
            refcnt >= 1,
            "count violated: pt_refcnt is {refcnt} while a reader holds a reference"
        );
    }

    /// A task is about to give back a reader reference.
    pub fn reader_out(&self) {
        if self.checks.exclusion {
            self.occupancy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A task has just obtained the writer mark.
    pub fn writer_in(&self) {
        if !self.checks.exclusion {
            return;
        }
        let before = self.occupancy.fetch_add(WRITER, Ordering::SeqCst);
        assert!(
            before == 0,
            "exclusion violated: a writer entered while {}",
            describe(before)
        );
        let refcnt = self.refcnt();
        assert!(
            refcnt == -1,
            "count violated: pt_refcnt is {refcnt} while a writer holds the pty"
        );
    }

    /// A task is about to give back the writer mark.
    pub fn writer_out(&self) {
        if self.checks.exclusion {
            self.occupancy.fetch_sub(WRITER, Ordering::SeqCst);
        }
    }

    /// A reader's second look at `field` (`now`) found what its first look
    /// (`then`) did: nobody can write the field while a reference is held.
    /// Part of the exclusion checks.
    pub fn assert_stable(&self, then: *mut queue_t, now: *mut queue_t, field: Field, what: &str) {
        if self.checks.exclusion {
            assert!(
                ptr::eq(then, now),
                "exclusion violated: {field:?} changed under a reader reference: {then:p}, then \
                 {what} {now:p}"
            );
        }
    }

    /// Opens queue `i` (qprocson: it may now be published).
    pub fn open_queue(&self, i: usize) -> QRef<'_> {
        let was = self.queues[i].life.swap(ALIVE, Ordering::SeqCst);
        assert_eq!(was, UNBORN, "harness bug: queue #{i} opened twice");
        QRef(&self.queues[i])
    }

    /// Closes the queue `q` names (qprocsoff and free: nobody may use it
    /// any more). NULL is ignored.
    pub fn close_queue(&self, q: *mut queue_t) {
        if let Some(i) = self.index_of(q) {
            let was = self.queues[i].life.swap(DEAD, Ordering::SeqCst);
            assert_eq!(was, ALIVE, "harness bug: queue #{i} closed while not open");
        } else {
            assert!(q.is_null(), "a writer found an unknown queue {q:p}");
        }
    }

    fn index_of(&self, q: *mut queue_t) -> Option<usize> {
        self.queues.iter().position(|obj| ptr::eq(obj.q.get(), q))
    }

    /// A reader's use of the queue it found in `field` (NULL: nothing to
    /// do, as ptm drops the message). Checks it is alive, yields (putnext
    /// takes a while), and checks again.
    pub fn use_queue(&self, q: *mut queue_t, field: Field) {
        if q.is_null() {
            return;
        }
        let Some(i) = self.index_of(q) else {
            panic!("{field:?} named {q:p}, which is no queue of this pty");
        };
        let obj = &self.queues[i];
        // SAFETY: obj is one of our queue objects, alive as long as self;
        // q_ptr is only written before any task starts.
        let private = unsafe { (*obj.q.get()).q_ptr };
        assert!(
            ptr::eq(private.cast::<QueueObj>(), obj),
            "{field:?}: queue #{i} has a foreign q_ptr"
        );
        self.assert_alive(i, field, "when the reader found it");
        shuttle::thread::yield_now();
        self.assert_alive(i, field, "while the reader was still using it");
    }

    fn assert_alive(&self, i: usize, field: Field, when: &str) {
        match self.queues[i].life.load(Ordering::SeqCst) {
            ALIVE => {}
            UNBORN => panic!("{field:?}: queue #{i} was not yet open {when}"),
            _ => panic!("{field:?}: queue #{i} was dead (closed) {when}"),
        }
    }

    /// Whether queue `i` has been closed.
    pub fn is_dead(&self, i: usize) -> bool {
        self.queues[i].life.load(Ordering::SeqCst) == DEAD
    }

    /// The end-of-execution checks, once every task has joined.
    pub fn check_quiescent(&self) {
        kernel::check();
        let refcnt = self.refcnt();
        assert_eq!(
            refcnt, 0,
            "count violated: pt_refcnt is {refcnt} once every task is done"
        );
        assert_eq!(
            kernel::mutex_owner(self.lock_ptr()),
            None,
            "pt_lock is still held once every task is done"
        );
        let occupancy = self.occupancy.load(Ordering::SeqCst);
        assert_eq!(
            occupancy,
            0,
            "occupancy is {} at the end",
            describe(occupancy)
        );
        // SAFETY: live pt_ttys; every other task has finished.
        let nullmsg = unsafe { (*self.raw()).pt_nullmsg };
        assert!(nullmsg.is_null(), "pt_nullmsg is set at the end");
        kernel::check();
    }
}

fn describe(occupancy: isize) -> String {
    if occupancy < 0 {
        let readers = occupancy - WRITER;
        format!("a writer holds the pty (and {readers} reader(s))")
    } else {
        format!("{occupancy} reader(s) hold the pty")
    }
}

/// The two queue fields of `pt_ttys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `ptm_rdq`: the manager's read queue (read by pts, written by ptm's
    /// open and close).
    PtmRdq,
    /// `pts_rdq`: the subsidiary's read queue (read by ptm, written by
    /// pts's open and close).
    PtsRdq,
}

impl Field {
    /// Reads the field.
    ///
    /// # Safety
    ///
    /// `p` must be a live `pt_ttys`, and the caller must hold a reference
    /// lock (or be alone).
    pub unsafe fn get(self, p: *mut pt_ttys) -> *mut queue_t {
        // SAFETY: per the contract.
        unsafe {
            match self {
                Field::PtmRdq => (*p).ptm_rdq,
                Field::PtsRdq => (*p).pts_rdq,
            }
        }
    }

    /// Writes the field.
    ///
    /// # Safety
    ///
    /// `p` must be a live `pt_ttys`, and the caller must hold the writer
    /// mark (or be alone).
    pub unsafe fn set(self, p: *mut pt_ttys, q: *mut queue_t) {
        // SAFETY: per the contract.
        unsafe {
            match self {
                Field::PtmRdq => (*p).ptm_rdq = q,
                Field::PtsRdq => (*p).pts_rdq = q,
            }
        }
    }
}
