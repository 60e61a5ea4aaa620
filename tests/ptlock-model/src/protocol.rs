//! The implementations of PT_ENTER_READ/PT_EXIT_READ/PT_ENTER_WRITE/
//! PT_EXIT_WRITE under test, behind one interface so that every scenario
//! runs unchanged against each:
//!
//! * [`RustGuards`]: the driver's own `PtTtys::enter_read` / `enter_write`
//!   and their `ReadRef` / `WriteRef` guards, with the guards' accessors
//!   (`pts_rdq`, `set_ptm_rdq`, `take_nullmsg`) where they have one;
//! * [`CMacros`]: the macros of `include/ptm_abi.h`, expanded by
//!   `csrc/ptlock_macros.c` (compiled with `-DDEBUG`, so their `ASSERT`s are
//!   live too);
//! * [`Raw`]: the same protocol written out in Rust on the raw fields, with
//!   an optional deliberate [`Bug`] -- the negative controls.
//!
//! The fields the driver has no accessor for (`ptm_rdq` read by pts,
//! `pts_rdq` written by pts) are read and written directly by the harness,
//! which owns the `pt_ttys`, while it holds the reference.

use core::ptr;

use ptm::ddi::{PtTtys, Queue, ReadRef, WriteRef};
use ptm::sys::{pt_ttys, queue_t};

use crate::harness::{Field, Pty, QRef};
use crate::kernel;

/// What one task sees of the pty: the shared harness object and its own
/// driver handle.
pub struct View<'p> {
    /// The harness's pty.
    pub pty: &'p Pty,
    tty: PtTtys,
}

impl<'p> View<'p> {
    /// A task's view of `pty`.
    pub fn new(pty: &'p Pty) -> View<'p> {
        View {
            pty,
            tty: pty.handle(),
        }
    }

    fn raw(&self) -> *mut pt_ttys {
        self.pty.raw()
    }
}

/// Access to the queue fields under a reader reference.
pub trait ReadAccess {
    /// `pts_rdq` (what ptm's put and service routines forward to).
    fn pts_rdq(&self) -> *mut queue_t;
    /// `ptm_rdq` (what pts's put and service routines forward to).
    fn ptm_rdq(&self) -> *mut queue_t;
    /// `pts_rdq` if traffic may go to it (subsidiary unlocked and open), as
    /// ptm's put routine asks; the harness's pty is always unlocked and
    /// open, so this is `pts_rdq`, by another path in the Rust guard.
    fn ready_pts_rdq(&self) -> *mut queue_t {
        self.pts_rdq()
    }
}

/// Access to the fields under the writer mark.
pub trait WriteAccess {
    /// `pts_rdq`.
    fn pts_rdq(&self) -> *mut queue_t;
    /// `ptm_rdq` (no guard has a getter for it: read from the harness's
    /// `pt_ttys`).
    fn ptm_rdq(&self) -> *mut queue_t {
        raw_get(self.view(), Field::PtmRdq)
    }
    /// The view the guard was taken on.
    fn view(&self) -> &View<'_>;
    /// Sets `pts_rdq` (pts's open and close).
    fn set_pts_rdq(&mut self, q: Option<QRef<'_>>);
    /// Sets `ptm_rdq` (ptm's open and close).
    fn set_ptm_rdq(&mut self, q: Option<QRef<'_>>);
    /// Takes `pt_nullmsg` (ptm's close); whether it was set.
    fn take_nullmsg(&mut self) -> bool;
}

/// An implementation of the reference-count locks. Entering returns a guard
/// that exits when dropped.
pub trait Protocol: Send + Sync + 'static {
    /// A name for messages.
    const NAME: &'static str;
    /// The reader guard.
    type Read<'v>: ReadAccess
    where
        Self: 'v;
    /// The writer guard.
    type Write<'v>: WriteAccess
    where
        Self: 'v;
    /// PT_ENTER_READ.
    fn enter_read<'v>(&self, v: &'v View<'_>) -> Self::Read<'v>;
    /// PT_ENTER_WRITE.
    fn enter_write<'v>(&self, v: &'v View<'_>) -> Self::Write<'v>;
}

fn raw_get(v: &View<'_>, field: Field) -> *mut queue_t {
    // SAFETY: the view's pt_ttys is live; the caller holds a reference.
    unsafe { field.get(v.raw()) }
}

fn raw_set(v: &View<'_>, field: Field, q: Option<QRef<'_>>) {
    let q = q.map_or(ptr::null_mut(), QRef::as_ptr);
    // SAFETY: the view's pt_ttys is live; the caller holds the writer mark.
    unsafe { field.set(v.raw(), q) }
}

fn raw_take_nullmsg(v: &View<'_>) -> bool {
    // SAFETY: live pt_ttys; the caller holds the writer mark. The message
    // (if any) is not freed: the harness never sets one.
    let old = unsafe { ptr::replace(ptr::addr_of_mut!((*v.raw()).pt_nullmsg), ptr::null_mut()) };
    !old.is_null()
}

// ---- the driver's Rust guards --------------------------------------------

/// `PtTtys::enter_read` / `enter_write` from `src/ddi/ptty.rs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustGuards;

/// A `ReadRef` and the view it came from.
pub struct RustRead<'v> {
    guard: ReadRef<'v>,
    view: &'v View<'v>,
}

/// A `WriteRef` and the view it came from.
pub struct RustWrite<'v> {
    guard: WriteRef<'v>,
    view: &'v View<'v>,
}

impl ReadAccess for RustRead<'_> {
    fn pts_rdq(&self) -> *mut queue_t {
        self.guard.pts_rdq().map_or(ptr::null_mut(), Queue::as_ptr)
    }
    fn ptm_rdq(&self) -> *mut queue_t {
        // ptm has no reader of its own queue: this is pts's side.
        raw_get(self.view, Field::PtmRdq)
    }
    fn ready_pts_rdq(&self) -> *mut queue_t {
        self.guard
            .ready_subsidiary()
            .map_or(ptr::null_mut(), Queue::as_ptr)
    }
}

impl WriteAccess for RustWrite<'_> {
    fn view(&self) -> &View<'_> {
        self.view
    }
    fn pts_rdq(&self) -> *mut queue_t {
        self.guard.pts_rdq().map_or(ptr::null_mut(), Queue::as_ptr)
    }
    fn set_pts_rdq(&mut self, q: Option<QRef<'_>>) {
        // pts's field: ptm has no setter for it.
        raw_set(self.view, Field::PtsRdq, q);
    }
    fn set_ptm_rdq(&mut self, q: Option<QRef<'_>>) {
        // SAFETY: a harness queue, whose memory stays valid as long as the
        // pty (it is only marked closed, never freed, during an execution).
        let q = q.and_then(|q| unsafe { Queue::from_raw(q.as_ptr()) });
        self.guard.set_ptm_rdq(q);
    }
    fn take_nullmsg(&mut self) -> bool {
        match self.guard.take_nullmsg() {
            None => false,
            Some(msg) => {
                // Dropping it would call freemsg on a message nobody
                // allocated; the harness never stores one, so say so.
                core::mem::forget(msg);
                true
            }
        }
    }
}

impl Protocol for RustGuards {
    const NAME: &'static str = "Rust guards (ReadRef/WriteRef)";
    type Read<'v> = RustRead<'v>;
    type Write<'v> = RustWrite<'v>;

    fn enter_read<'v>(&self, v: &'v View<'_>) -> RustRead<'v> {
        let view: &'v View<'v> = shorten(v);
        RustRead {
            guard: view.tty.enter_read(),
            view,
        }
    }

    fn enter_write<'v>(&self, v: &'v View<'_>) -> RustWrite<'v> {
        let view: &'v View<'v> = shorten(v);
        RustWrite {
            guard: view.tty.enter_write(),
            view,
        }
    }
}

/// `&'v View<'p>` with `'p: 'v` is a `&'v View<'v>` (View is covariant).
fn shorten<'v>(v: &'v View<'_>) -> &'v View<'v> {
    v
}

// ---- the C macros ----------------------------------------------------------

unsafe extern "C" {
    fn model_enter_read(p: *mut pt_ttys);
    fn model_exit_read(p: *mut pt_ttys);
    fn model_enter_write(p: *mut pt_ttys);
    fn model_exit_write(p: *mut pt_ttys);
}

/// PT_ENTER_READ & co. from `include/ptm_abi.h`, compiled as C.
#[derive(Clone, Copy, Debug, Default)]
pub struct CMacros;

/// A reader reference taken with PT_ENTER_READ; PT_EXIT_READ on drop.
pub struct CRead<'v> {
    view: &'v View<'v>,
}

/// The writer mark taken with PT_ENTER_WRITE; PT_EXIT_WRITE on drop.
pub struct CWrite<'v> {
    view: &'v View<'v>,
}

/// The field accesses of a reader guard and a writer guard that hold the
/// pty's `view`: the same for every protocol, which differ only in how the
/// guards are taken and dropped.
macro_rules! field_access {
    ($read:ident, $write:ident) => {
        impl ReadAccess for $read<'_> {
            fn pts_rdq(&self) -> *mut queue_t {
                raw_get(self.view, Field::PtsRdq)
            }
            fn ptm_rdq(&self) -> *mut queue_t {
                raw_get(self.view, Field::PtmRdq)
            }
        }

        impl WriteAccess for $write<'_> {
            fn view(&self) -> &View<'_> {
                self.view
            }
            fn pts_rdq(&self) -> *mut queue_t {
                raw_get(self.view, Field::PtsRdq)
            }
            fn set_pts_rdq(&mut self, q: Option<QRef<'_>>) {
                raw_set(self.view, Field::PtsRdq, q);
            }
            fn set_ptm_rdq(&mut self, q: Option<QRef<'_>>) {
                raw_set(self.view, Field::PtmRdq, q);
            }
            fn take_nullmsg(&mut self) -> bool {
                raw_take_nullmsg(self.view)
            }
        }
    };
}

field_access!(CRead, CWrite);

impl Drop for CRead<'_> {
    fn drop(&mut self) {
        // SAFETY: live pt_ttys whose lock and cv are registered; we hold a
        // reader reference taken by model_enter_read.
        unsafe { model_exit_read(self.view.raw()) }
    }
}

impl Drop for CWrite<'_> {
    fn drop(&mut self) {
        // SAFETY: live pt_ttys; we hold the writer mark.
        unsafe { model_exit_write(self.view.raw()) }
    }
}

impl Protocol for CMacros {
    const NAME: &'static str = "C macros (PT_ENTER_READ/PT_ENTER_WRITE)";
    type Read<'v> = CRead<'v>;
    type Write<'v> = CWrite<'v>;

    fn enter_read<'v>(&self, v: &'v View<'_>) -> CRead<'v> {
        // SAFETY: live pt_ttys whose lock and cv are registered.
        unsafe { model_enter_read(v.raw()) };
        CRead { view: shorten(v) }
    }

    fn enter_write<'v>(&self, v: &'v View<'_>) -> CWrite<'v> {
        // SAFETY: live pt_ttys whose lock and cv are registered.
        unsafe { model_enter_write(v.raw()) };
        CWrite { view: shorten(v) }
    }
}

// ---- the protocol written out on raw fields, optionally broken -------------

/// A deliberate mistake in [`Raw`]: each must be caught by the checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// None: the protocol exactly as the macros write it (a control for
    /// the controls: the raw implementation itself is correct).
    None,
    /// A reader that does not wait for a writer: it takes a reference
    /// only if no writer is there, and goes ahead either way.
    ReaderSkipsWriterWait,
    /// A writer that does not wait for readers (only for another writer).
    WriterSkipsReaderWait,
    /// An open or close that forgets PT_ENTER_WRITE/PT_EXIT_WRITE: it
    /// writes the fields with no reference at all (and, unlike
    /// `WriterSkipsReaderWait`, leaves `pt_refcnt` intact, so the failure
    /// it causes is the queue's, not a corrupted count's).
    WriterSkipsLock,
    /// A writer that waits with `if` instead of `while`: one wake-up (or a
    /// spurious one) and it goes ahead without looking again.
    WriterWaitsOnce,
    /// PT_EXIT_READ without the `cv_broadcast`: a waiting writer is never
    /// woken (a lost wake-up, i.e. a deadlock).
    ExitReadWithoutBroadcast,
    /// A writer-preferring lock: readers also wait while a writer waits.
    /// Ordinary rwlock fairness, but it deadlocks a nested reader, which is
    /// why ptm.c's comment insists on a counter.
    WriterPreference,
    /// A reader that calls `cv_wait` without holding `pt_lock` (a kernel
    /// API misuse the kernel model must report).
    WaitWithoutMutex,
}

/// The protocol on raw fields with the kernel calls made directly.
#[derive(Clone, Copy, Debug)]
pub struct Raw(pub Bug);

/// A reader reference of [`Raw`].
pub struct RawRead<'v> {
    view: &'v View<'v>,
    bug: Bug,
    /// Whether this reader actually counted itself in `pt_refcnt`.
    counted: bool,
}

/// The writer mark of [`Raw`].
pub struct RawWrite<'v> {
    view: &'v View<'v>,
    bug: Bug,
}

/// The count fields of the pty, for [`Raw`]; every method must be called
/// with `pt_lock` held.
struct Counts(*mut pt_ttys);

impl Counts {
    fn of(v: &View<'_>) -> Counts {
        Counts(v.raw())
    }

    /// `pt_refcnt`.
    fn refcnt(&self) -> i32 {
        // SAFETY: live pt_ttys; pt_lock is held (method contract).
        unsafe { (*self.0).pt_refcnt }
    }

    fn set_refcnt(&self, n: i32) {
        // SAFETY: live pt_ttys; pt_lock is held (method contract).
        unsafe { (*self.0).pt_refcnt = n }
    }

    /// Writers waiting, for [`Bug::WriterPreference`]: kept beside the
    /// count, under `pt_lock`, in the otherwise unused `pt_pid` field.
    fn waiting_writers(&self) -> i32 {
        // SAFETY: live pt_ttys; pt_lock is held (method contract).
        unsafe { (*self.0).pt_pid }
    }

    fn set_waiting_writers(&self, n: i32) {
        // SAFETY: live pt_ttys; pt_lock is held (method contract).
        unsafe { (*self.0).pt_pid = n }
    }
}

field_access!(RawRead, RawWrite);

impl Protocol for Raw {
    const NAME: &'static str = "raw fields";
    type Read<'v> = RawRead<'v>;
    type Write<'v> = RawWrite<'v>;

    fn enter_read<'v>(&self, v: &'v View<'_>) -> RawRead<'v> {
        let (m, cv, c) = (v.pty.lock_ptr(), v.pty.cv_ptr(), Counts::of(v));
        let bug = self.0;
        kernel::mutex_enter(m);
        let counted = match bug {
            Bug::ReaderSkipsWriterWait => {
                let free = c.refcnt() >= 0;
                if free {
                    c.set_refcnt(c.refcnt() + 1);
                }
                free
            }
            Bug::WaitWithoutMutex => {
                while c.refcnt() < 0 {
                    kernel::mutex_exit(m);
                    kernel::cv_wait(cv, m);
                    kernel::mutex_enter(m);
                }
                c.set_refcnt(c.refcnt() + 1);
                true
            }
            Bug::WriterPreference => {
                while c.refcnt() < 0 || c.waiting_writers() > 0 {
                    kernel::cv_wait(cv, m);
                }
                c.set_refcnt(c.refcnt() + 1);
                true
            }
            _ => {
                while c.refcnt() < 0 {
                    kernel::cv_wait(cv, m);
                }
                c.set_refcnt(c.refcnt() + 1);
                true
            }
        };
        kernel::mutex_exit(m);
        RawRead {
            view: shorten(v),
            bug,
            counted,
        }
    }

    fn enter_write<'v>(&self, v: &'v View<'_>) -> RawWrite<'v> {
        let bug = self.0;
        if bug == Bug::WriterSkipsLock {
            return RawWrite {
                view: shorten(v),
                bug,
            };
        }
        let (m, cv, c) = (v.pty.lock_ptr(), v.pty.cv_ptr(), Counts::of(v));
        kernel::mutex_enter(m);
        match self.0 {
            Bug::WriterSkipsReaderWait => {
                while c.refcnt() < 0 {
                    kernel::cv_wait(cv, m);
                }
            }
            Bug::WriterWaitsOnce => {
                if c.refcnt() != 0 {
                    kernel::cv_wait(cv, m);
                }
            }
            Bug::WriterPreference => {
                c.set_waiting_writers(c.waiting_writers() + 1);
                while c.refcnt() != 0 {
                    kernel::cv_wait(cv, m);
                }
                c.set_waiting_writers(c.waiting_writers() - 1);
            }
            _ => {
                while c.refcnt() != 0 {
                    kernel::cv_wait(cv, m);
                }
            }
        }
        c.set_refcnt(-1);
        kernel::mutex_exit(m);
        RawWrite {
            view: shorten(v),
            bug,
        }
    }
}

impl Drop for RawRead<'_> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let (m, c) = (self.view.pty.lock_ptr(), Counts::of(self.view));
        kernel::mutex_enter(m);
        c.set_refcnt(c.refcnt() - 1);
        if c.refcnt() == 0 && self.bug != Bug::ExitReadWithoutBroadcast {
            kernel::cv_broadcast(self.view.pty.cv_ptr());
        }
        kernel::mutex_exit(m);
    }
}

impl Drop for RawWrite<'_> {
    fn drop(&mut self) {
        if self.bug == Bug::WriterSkipsLock {
            return;
        }
        let (m, c) = (self.view.pty.lock_ptr(), Counts::of(self.view));
        kernel::mutex_enter(m);
        c.set_refcnt(0);
        kernel::cv_broadcast(self.view.pty.cv_ptr());
        kernel::mutex_exit(m);
    }
}
