//! The shared per-pty state (`struct pt_ttys`, owned by genunix's
//! ptms_conf) and its two locks: the `pt_lock` mutex, and the
//! PT_ENTER_READ/PT_ENTER_WRITE reference-count locks as RAII guards.
//!
//! # The reference-count locks
//!
//! `pt_refcnt` counts readers (> 0) or marks one writer (-1); both wait on
//! `pt_cv` under `pt_lock`. Readers may nest, and a reader may hold its
//! reference across `putnext` because it is a count, not a lock. The only
//! writers are the open and close routines of ptm and pts, which set or
//! clear the queue pointers (`ptm_rdq`, `pts_rdq`) and `pt_nullmsg`. So:
//!
//! * a [`ReadRef`] hands out the peer's queue with the guard's lifetime: the
//!   peer cannot close (it needs the write side) while the queue is in use;
//! * a [`WriteRef`] is the only way to change those three fields.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU16, Ordering};

use super::{Message, Plumbed, Queue};
use crate::flags::PtState;
use crate::sys;

/// `ptms_attach_subsidiary()`: makes sure the pts driver is attached, so
/// that the subsidiary can be opened once the manager open returns. `false`
/// if pts could not be attached.
pub fn attach_subsidiary() -> bool {
    // SAFETY: no preconditions; may load and attach pts.
    unsafe { sys::ptms_attach_subsidiary() == 0 }
}

/// `ptms_init()`: one-time set-up of the pty tables (idempotent).
pub fn ptms_init() {
    // SAFETY: no preconditions; the second and later calls do nothing.
    unsafe { sys::ptms_init() }
}

/// A pty's shared state. The structure belongs to ptms_conf; a `PtTtys`
/// is a handle to it that ptm holds while its manager stream is open.
///
/// # Invariants
///
/// The pointer is a live `pt_ttys` that ptms_conf will not free while this
/// handle exists: the manager's open state (`PTMOPEN`) keeps it allocated
/// until [`PtTtys::close`] consumes the handle.
///
/// The guards below ([`PtLock`], [`ReadRef`], [`WriteRef`]) carry the same
/// pointer by value, borrowing the handle only through a lifetime, so that
/// a guard is one register wide and needs no extra indirection.
#[repr(transparent)]
pub struct PtTtys {
    p: NonNull<sys::pt_ttys>,
}

impl PtTtys {
    /// `pt_ttys_alloc()`: a new pty, in state `PTMOPEN | PTLOCK`, or `None`
    /// when memory is short or the pty limit is reached.
    #[must_use = "the pty leaks unless it is given back with `close`"]
    pub fn alloc() -> Option<PtTtys> {
        // SAFETY: no preconditions; the result is NULL or a pty whose
        // PTMOPEN state we now own.
        NonNull::new(unsafe { sys::pt_ttys_alloc() }).map(|p| PtTtys { p })
    }

    /// The pty of an open manager stream, from its queue's `q_ptr`, for the
    /// procedures the framework calls on an open stream.
    ///
    /// # Safety
    ///
    /// `q` must be a queue of this driver's manager stream whose `q_ptr`
    /// holds the pty stored by a successful open and not yet closed -- as it
    /// does from before ptmopen's `qprocson` until after ptmclose's
    /// `qprocsoff`, i.e. whenever the framework can call a put, service or
    /// close procedure of the stream. The handle must not be closed unless
    /// by that stream's close routine.
    pub unsafe fn of_open_stream(q: Queue<'_>) -> PtTtys {
        PtTtys {
            // SAFETY: the caller guarantees q_ptr is set (not NULL).
            p: unsafe { NonNull::new_unchecked(q.private().cast::<sys::pt_ttys>()) },
        }
    }

    /// A handle to a pty by address, for test harnesses that own a
    /// `pt_ttys` themselves (the lock-protocol model check).
    ///
    /// # Safety
    ///
    /// `p` must be NULL or a live, initialised `pt_ttys` that outlives the
    /// handle, and [`close`](Self::close) must not be called on it unless
    /// `ptms_close` is what the harness means.
    pub unsafe fn from_raw(p: *mut sys::pt_ttys) -> Option<PtTtys> {
        NonNull::new(p).map(|p| PtTtys { p })
    }

    /// The raw pointer, for `q_ptr`.
    pub fn as_ptr(&self) -> *mut c_void {
        self.p.as_ptr().cast()
    }

    fn raw(&self) -> *mut sys::pt_ttys {
        self.p.as_ptr()
    }

    /// The pty's minor number (fixed for its lifetime).
    pub fn minor(&self) -> sys::minor_t {
        // SAFETY: live pty (invariant); pt_minor never changes after alloc.
        unsafe { (*self.raw()).pt_minor }
    }

    /// The state bits, read without `pt_lock` as ptm.c does (a racy
    /// snapshot, which is all its callers need).
    pub fn state(&self) -> PtState {
        // SAFETY: live pty; the field is a naturally aligned u16 that other
        // threads only change under pt_lock, so an atomic load sees either
        // the old or the new value.
        let bits = unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*self.raw()).pt_state)) }
            .load(Ordering::Relaxed);
        PtState::from_bits_retain(bits)
    }

    /// The zone the subsidiary belongs to, read without `pt_lock` as ptm.c
    /// does.
    pub fn zoneid(&self) -> sys::zoneid_t {
        // SAFETY: as for `state`: an aligned i32 written under pt_lock.
        unsafe { AtomicI32::from_ptr(ptr::addr_of_mut!((*self.raw()).pt_zoneid)) }
            .load(Ordering::Relaxed)
    }

    /// Whether traffic may go to the subsidiary right now (unlocked, and
    /// its read queue published), as a snapshot taken without any lock: the
    /// answer may be stale by the time it is used, exactly as in ptm.c,
    /// where the subsidiary may close as soon as the reader reference is
    /// dropped. Nothing is dereferenced.
    pub fn subsidiary_ready(&self) -> bool {
        // SAFETY: live pty; pts_rdq is an aligned pointer written (by the
        // subsidiary's open and close, under the writer mark) with single
        // stores, so an atomic load sees the old or the new value.
        let pts_rdq = unsafe { AtomicPtr::from_ptr(ptr::addr_of_mut!((*self.raw()).pts_rdq)) }
            .load(Ordering::Relaxed);
        crate::logic::subsidiary_ready(self.state(), !pts_rdq.is_null())
    }

    /// Takes `pt_lock`, for changing the state, zone or owner.
    pub fn lock(&self) -> PtLock<'_> {
        // SAFETY: live pty; pt_lock was initialised by ptms_conf's cache
        // constructor.
        unsafe { sys::mutex_enter(ptr::addr_of_mut!((*self.raw()).pt_lock)) };
        PtLock { pty: Pty::of(self) }
    }

    /// PT_ENTER_READ: takes a reader reference, waiting while a writer
    /// holds the pty.
    #[inline(always)]
    pub fn enter_read(&self) -> ReadRef<'_> {
        let pty = Pty::of(self);
        pt_enter_read(pty);
        ReadRef { pty }
    }

    /// PT_ENTER_WRITE: takes the writer mark, waiting until no reference
    /// of either kind is held.
    #[inline(always)]
    pub fn enter_write(&self) -> WriteRef<'_> {
        let pty = Pty::of(self);
        pt_enter_write(pty);
        WriteRef { pty }
    }

    /// `ptms_close(pt, flags)`: clears `flags` in the state and, when
    /// neither side is open any more, frees the pty. Consumes the handle:
    /// nothing may touch the pty afterwards.
    pub fn close(self, flags: PtState) {
        // SAFETY: live pty whose manager state we own; after the call the
        // handle is gone, so no dangling use can follow.
        unsafe { sys::ptms_close(self.raw(), u32::from(flags.bits())) }
    }
}

/// The pty pointer a guard carries, valid for the borrow `'a` of the
/// [`PtTtys`] handle it came from.
#[derive(Clone, Copy)]
struct Pty<'a> {
    p: NonNull<sys::pt_ttys>,
    _handle: PhantomData<&'a PtTtys>,
}

impl<'a> Pty<'a> {
    fn of(handle: &'a PtTtys) -> Pty<'a> {
        Pty {
            p: handle.p,
            _handle: PhantomData,
        }
    }

    fn raw(self) -> *mut sys::pt_ttys {
        self.p.as_ptr()
    }

    #[inline(always)]
    fn lock(self) -> PtLock<'a> {
        // SAFETY: live pty (borrowed handle); pt_lock is initialised.
        unsafe { sys::mutex_enter(ptr::addr_of_mut!((*self.raw()).pt_lock)) };
        PtLock { pty: self }
    }

    fn state(self) -> PtState {
        // SAFETY: as for PtTtys::state.
        let bits = unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*self.raw()).pt_state)) }
            .load(Ordering::Relaxed);
        PtState::from_bits_retain(bits)
    }

    /// The queue named by `field`, valid and plumbed for the guard's
    /// borrow `'g`.
    fn queue_field<'g>(self, field: *mut *mut sys::queue_t) -> Option<Queue<'g, Plumbed>> {
        // SAFETY: `field` points into the live pty; the caller holds a
        // reference lock for 'g, during which the queue it names (if any)
        // cannot be torn down because its owner needs the write side. Its
        // owner publishes it only after its qprocson and withdraws it
        // (under the write side) before its qprocsoff, so it has a
        // successor for all of 'g.
        unsafe { Queue::from_raw(*field) }
    }
}

// The four reference-lock operations, as C's PT_ENTER_READ & co. macros
// are, expand in place at every use: a use costs the two `pt_lock` round
// trips and a few instructions around them, not a call and a frame of its
// own. What is rare -- waiting for the other kind of reference to go --
// is a function of its own, out of line and marked cold, one copy for all
// uses (named `pt_wait` in the kernel module).

/// PT_ENTER_READ.
#[inline(always)]
fn pt_enter_read(pty: Pty<'_>) {
    let lock = pty.lock();
    if lock.refcnt() < 0 {
        pt_wait(pty, false);
    }
    lock.set_refcnt(lock.refcnt().wrapping_add(1));
    drop(lock);
}

/// PT_ENTER_WRITE.
#[inline(always)]
fn pt_enter_write(pty: Pty<'_>) {
    let lock = pty.lock();
    if lock.refcnt() != 0 {
        pt_wait(pty, true);
    }
    lock.set_refcnt(-1);
    drop(lock);
}

/// The waits of PT_ENTER_READ (`writer` false: while a writer holds the
/// pty) and PT_ENTER_WRITE (`writer` true: until no reference is held),
/// with `pt_lock` held by the caller.
#[cold]
#[inline(never)]
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
fn pt_wait(pty: Pty<'_>, writer: bool) {
    let lock = PtLock::held(pty);
    while if writer {
        lock.refcnt() != 0
    } else {
        lock.refcnt() < 0
    } {
        lock.wait();
    }
    core::mem::forget(lock);
}

/// PT_EXIT_READ.
#[inline(always)]
fn pt_exit_read(pty: Pty<'_>) {
    let lock = pty.lock();
    // Our reference keeps the count positive, so this cannot wrap.
    let refcnt = lock.refcnt().wrapping_sub(1);
    lock.set_refcnt(refcnt);
    if refcnt == 0 {
        lock.broadcast();
    }
    drop(lock);
}

/// PT_EXIT_WRITE.
#[inline(always)]
fn pt_exit_write(pty: Pty<'_>) {
    let lock = pty.lock();
    lock.set_refcnt(0);
    lock.broadcast();
    drop(lock);
}

/// `pt_lock` held. Dropping it releases the mutex.
#[must_use = "pt_lock is released as soon as the guard is dropped"]
pub struct PtLock<'a> {
    pty: Pty<'a>,
}

impl<'a> PtLock<'a> {
    /// The guard of a `pt_lock` the caller already holds (and keeps: the
    /// guard is forgotten, not dropped, by `pt_wait`).
    fn held(pty: Pty<'a>) -> PtLock<'a> {
        PtLock { pty }
    }

    fn mutex(&self) -> *mut sys::kmutex_t {
        // SAFETY: live pty (the guard borrows the handle).
        unsafe { ptr::addr_of_mut!((*self.pty.raw()).pt_lock) }
    }

    /// `pt_refcnt`, which is only touched with `pt_lock` held.
    fn refcnt(&self) -> i32 {
        // SAFETY: live pty, and we hold pt_lock.
        unsafe { (*self.pty.raw()).pt_refcnt }
    }

    fn set_refcnt(&self, value: i32) {
        // SAFETY: live pty, and we hold pt_lock.
        unsafe { (*self.pty.raw()).pt_refcnt = value }
    }

    /// `cv_broadcast(&pt_cv)`.
    fn broadcast(&self) {
        // SAFETY: pt_cv was initialised with the pty; we hold pt_lock.
        unsafe { sys::cv_broadcast(ptr::addr_of_mut!((*self.pty.raw()).pt_cv)) }
    }

    /// `cv_wait(&pt_cv, &pt_lock)`.
    fn wait(&self) {
        // SAFETY: we hold pt_lock; pt_cv was initialised with the pty.
        unsafe { sys::cv_wait(ptr::addr_of_mut!((*self.pty.raw()).pt_cv), self.mutex()) }
    }

    fn state_field(&self) -> *mut u16 {
        // SAFETY: live pty.
        unsafe { ptr::addr_of_mut!((*self.pty.raw()).pt_state) }
    }

    /// Sets bits in `pt_state`.
    pub fn insert_state(&mut self, bits: PtState) {
        // SAFETY: pt_state is written only under pt_lock, which we hold;
        // the atomic view keeps the unlocked readers' loads well defined.
        let state = unsafe { AtomicU16::from_ptr(self.state_field()) };
        state.store(
            state.load(Ordering::Relaxed) | bits.bits(),
            Ordering::Relaxed,
        );
    }

    /// Clears bits in `pt_state`.
    pub fn remove_state(&mut self, bits: PtState) {
        // SAFETY: as for `insert_state`.
        let state = unsafe { AtomicU16::from_ptr(self.state_field()) };
        state.store(
            state.load(Ordering::Relaxed) & !bits.bits(),
            Ordering::Relaxed,
        );
    }

    /// Sets the zone of the subsidiary (`pt_zoneid`).
    pub fn set_zoneid(&mut self, zoneid: sys::zoneid_t) {
        // SAFETY: written only under pt_lock, which we hold.
        unsafe { AtomicI32::from_ptr(ptr::addr_of_mut!((*self.pty.raw()).pt_zoneid)) }
            .store(zoneid, Ordering::Relaxed);
    }

    /// Sets the owner of the subsidiary node (`pt_ruid`, `pt_rgid`).
    pub fn set_owner(&mut self, uid: sys::uid_t, gid: sys::gid_t) {
        // SAFETY: written only under pt_lock, which we hold.
        unsafe {
            (*self.pty.raw()).pt_ruid = uid;
            (*self.pty.raw()).pt_rgid = gid;
        }
    }
}

impl Drop for PtLock<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: we entered this mutex in `PtTtys::lock`.
        unsafe { sys::mutex_exit(self.mutex()) }
    }
}

/// A reader reference (PT_ENTER_READ); PT_EXIT_READ on drop.
#[must_use = "the reader reference is released as soon as the guard is dropped"]
pub struct ReadRef<'a> {
    pty: Pty<'a>,
}

impl ReadRef<'_> {
    /// The subsidiary's read queue, if the subsidiary is open. It stays
    /// valid, with a successor, while this reference is held.
    pub fn pts_rdq(&self) -> Option<Queue<'_, Plumbed>> {
        // SAFETY: field of the live pty; we hold a reader reference.
        self.pty
            .queue_field(unsafe { ptr::addr_of_mut!((*self.pty.raw()).pts_rdq) })
    }

    /// The subsidiary's read queue if traffic may go to it: unlocked and
    /// open (see [`logic::subsidiary_ready`](crate::logic::subsidiary_ready)).
    pub fn ready_subsidiary(&self) -> Option<Queue<'_, Plumbed>> {
        let q = self.pts_rdq();
        crate::logic::subsidiary_ready(self.pty.state(), q.is_some())
            .then_some(q)
            .flatten()
    }
}

impl ReadRef<'_> {
    /// PT_EXIT_READ, in place. Dropping the reference does the same, but
    /// through the compiler's out-of-line drop glue: the per-message paths
    /// release explicitly.
    #[inline(always)]
    pub fn release(self) {
        let pty = self.pty;
        core::mem::forget(self);
        pt_exit_read(pty);
    }
}

impl Drop for ReadRef<'_> {
    fn drop(&mut self) {
        pt_exit_read(self.pty);
    }
}

/// The writer mark (PT_ENTER_WRITE); PT_EXIT_WRITE on drop.
#[must_use = "the writer mark is released as soon as the guard is dropped"]
pub struct WriteRef<'a> {
    pty: Pty<'a>,
}

impl WriteRef<'_> {
    /// Publishes (or withdraws, with `None`) the manager's read queue. Only
    /// a plumbed queue (after `qprocson`) may be published: pts `putnext`s
    /// to it.
    pub fn set_ptm_rdq(&mut self, q: Option<Queue<'_, Plumbed>>) {
        let raw = q.map_or(ptr::null_mut(), Queue::as_ptr);
        // SAFETY: ptm_rdq is only written under the writer mark, held.
        unsafe { (*self.pty.raw()).ptm_rdq = raw }
    }

    /// Takes the preallocated zero-length message pts stored for its close.
    #[must_use = "the message is freed if dropped; say so with `drop`"]
    pub fn take_nullmsg(&mut self) -> Option<Message> {
        // SAFETY: pt_nullmsg is only read or written under the writer mark,
        // held; the message it names belongs to whoever takes it out.
        unsafe {
            let field = ptr::addr_of_mut!((*self.pty.raw()).pt_nullmsg);
            Message::from_raw(ptr::replace(field, ptr::null_mut()))
        }
    }

    /// The subsidiary's read queue, if open.
    pub fn pts_rdq(&self) -> Option<Queue<'_, Plumbed>> {
        // SAFETY: field of the live pty; we hold the writer mark.
        self.pty
            .queue_field(unsafe { ptr::addr_of_mut!((*self.pty.raw()).pts_rdq) })
    }
}

impl WriteRef<'_> {
    /// PT_EXIT_WRITE, in place (see [`ReadRef::release`]).
    #[inline(always)]
    pub fn release(self) {
        let pty = self.pty;
        core::mem::forget(self);
        pt_exit_write(pty);
    }
}

impl Drop for WriteRef<'_> {
    fn drop(&mut self) {
        pt_exit_write(self.pty);
    }
}
