//! STREAMS queues (`queue_t`) and the utilities ptm calls on them.

use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::{Errno, Message};
use crate::sys;

/// How `flushq`/`flushband` choose what to free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushMode {
    /// `FLUSHDATA`: only data messages (`M_DATA`, `M_PROTO`, `M_PCPROTO`,
    /// `M_DELAY`).
    Data,
    /// `FLUSHALL`: everything.
    All,
}

impl FlushMode {
    fn raw(self) -> c_int {
        match self {
            FlushMode::Data => sys::FLUSHDATA,
            FlushMode::All => sys::FLUSHALL,
        }
    }
}

/// What is known of a [`Queue`]'s place in its stream, its second type
/// parameter: nothing ([`AnyQueue`], the default), or that it is
/// [`Plumbed`].
///
/// A driver's read queue gets a successor (`q_next`: the stream head, or the
/// module pushed above the driver) when its open calls `qprocson(9F)`, and
/// loses it when its close calls `qprocsoff(9F)`; in between, pushing and
/// popping modules changes the successor but never removes it. `putnext`,
/// `putnextctl` and `bcanputnext` dereference `q_next`, so they exist only
/// for a `Queue<'q, Plumbed>`, which is had in two ways:
///
/// * [`Queue::qprocson`] returns the queue it plumbed;
/// * the subsidiary's read queue read from `pt_ttys` under a reference lock
///   ([`ReadRef::pts_rdq`](super::ReadRef::pts_rdq)): pts publishes it
///   only after its `qprocson` and withdraws it before its `qprocsoff`,
///   and the reference keeps it from being withdrawn while it is used.
pub enum Plumbed {}

/// A queue of which nothing more is known than that it is valid (see
/// [`Plumbed`]).
pub enum AnyQueue {}

/// One queue of a STREAMS queue pair, valid for the lifetime `'q`; `P` says
/// whether it is known to have a successor ([`Plumbed`]) or not
/// ([`AnyQueue`]).
///
/// A `Queue<'q>` is only created for a queue the framework guarantees to
/// exist for `'q`: the queue an entry point was called with (valid for that
/// call), or the peer's queue read from `pt_ttys` under a reference lock
/// (valid while the [`ReadRef`](super::ReadRef) or
/// [`WriteRef`](super::WriteRef) it was borrowed from lives). It is `Copy`:
/// a queue is a shared kernel object that every method only hands to the
/// kernel's own thread-safe STREAMS utilities.
#[repr(transparent)]
pub struct Queue<'q, P = AnyQueue> {
    q: NonNull<sys::queue_t>,
    _life: PhantomData<&'q sys::queue_t>,
    _plumbing: PhantomData<fn() -> P>,
}

impl<P> Clone for Queue<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Queue<'_, P> {}

impl<'q> Queue<'q> {
    /// Wraps a queue pointer the framework guarantees is not NULL (the
    /// queue argument of an entry point), without testing it.
    ///
    /// # Safety
    ///
    /// As for [`from_raw`](Queue::from_raw) of a queue of unknown plumbing,
    /// and `q` must not be NULL.
    pub unsafe fn from_entry(q: *mut sys::queue_t) -> Queue<'q> {
        Queue {
            // SAFETY: the caller guarantees q is not NULL.
            q: unsafe { NonNull::new_unchecked(q) },
            _life: PhantomData,
            _plumbing: PhantomData,
        }
    }

    /// `qprocson(9F)` on the read queue of our pair: from now on the
    /// driver's put and service procedures may be called, and the queue has
    /// a successor (the stream head) until [`qprocsoff`](Queue::qprocsoff).
    /// Returns the queue as a [`Plumbed`] one.
    pub fn qprocson(self) -> Queue<'q, Plumbed> {
        // SAFETY: our own read queue during open.
        unsafe { sys::qprocson(self.q.as_ptr()) };
        Queue {
            q: self.q,
            _life: PhantomData,
            _plumbing: PhantomData,
        }
    }
}

impl<'q, P> Queue<'q, P> {
    /// Wraps a raw queue pointer, `None` for NULL; as a `Queue<'q, Plumbed>`
    /// when the caller knows it has a successor.
    ///
    /// # Safety
    ///
    /// `q` must be NULL or a queue that stays valid (not freed, still part
    /// of its stream) for all of `'q`; for a `Queue<'q, Plumbed>`, one that
    /// also has a successor (`q_next`) for all of `'q`, i.e. stays between
    /// its driver's `qprocson` and `qprocsoff` (see [`Plumbed`]).
    pub unsafe fn from_raw(q: *mut sys::queue_t) -> Option<Queue<'q, P>> {
        NonNull::new(q).map(|q| Queue {
            q,
            _life: PhantomData,
            _plumbing: PhantomData,
        })
    }

    /// The raw pointer, for storing in `pt_ttys`.
    pub fn as_ptr(self) -> *mut sys::queue_t {
        self.q.as_ptr()
    }

    /// The driver-private pointer (`q_ptr`).
    pub fn private(self) -> *mut c_void {
        // SAFETY: the queue is valid for 'q (type invariant); q_ptr of our
        // own queue pair is only written by our open/close routines.
        unsafe { (*self.q.as_ptr()).q_ptr }
    }

    /// Sets `q_ptr` of this queue and of its write-side partner, as an
    /// open routine does for its pair (pass the read queue).
    pub fn set_private_pair(self, p: *mut c_void) {
        // SAFETY: our own queue is valid for 'q and its q_ptr is ours.
        unsafe { (*self.q.as_ptr()).q_ptr = p }
        // SAFETY: the partner queue of our own pair, equally ours.
        unsafe { (*self.wr().q.as_ptr()).q_ptr = p }
    }

    /// Whether another queue follows this one in its stream (`q_next`), i.e.
    /// something above the subsidiary driver can take a message.
    pub fn has_next(self) -> bool {
        // SAFETY: the queue is valid for 'q; q_next is maintained by the
        // framework and stable while our reference lock holds the stream.
        unsafe { !(*self.q.as_ptr()).q_next.is_null() }
    }

    /// `WR(9F)`: the write queue of this queue's pair.
    pub fn wr(self) -> Queue<'q> {
        // SAFETY: WR accepts any valid queue and returns the write queue of
        // the same pair -- never NULL: the two queues of a pair are one
        // allocation -- which lives exactly as long as this one.
        unsafe { Queue::from_entry(sys::WR(self.q.as_ptr())) }
    }

    /// `getq(9F)`: the next message, or `None` (and `QWANTR` set).
    pub fn getq(self) -> Option<Message> {
        // SAFETY: valid queue; getq returns NULL or a message it unlinked
        // and hands to us.
        unsafe { Message::from_raw(sys::getq(self.q.as_ptr())) }
    }

    /// `putq(9F)`. Gives the message back if it could not be queued (only
    /// when a new band structure could not be allocated); the caller then
    /// still owns it.
    pub fn putq(self, mp: Message) -> Result<(), Message> {
        let raw = mp.into_nonnull();
        // SAFETY: valid queue and a message we own; on success putq keeps it.
        match unsafe { sys::putq(self.q.as_ptr(), raw.as_ptr()) } {
            // SAFETY: on failure putq neither queued nor freed the message,
            // so ownership returns to us.
            0 => Err(unsafe { Message::from_nonnull(raw) }),
            _ => Ok(()),
        }
    }

    /// `putbq(9F)`: back at the head of its class; like [`putq`](Self::putq)
    /// on failure.
    pub fn putbq(self, mp: Message) -> Result<(), Message> {
        let raw = mp.into_nonnull();
        // SAFETY: as for putq.
        match unsafe { sys::putbq(self.q.as_ptr(), raw.as_ptr()) } {
            // SAFETY: as for putq.
            0 => Err(unsafe { Message::from_nonnull(raw) }),
            _ => Ok(()),
        }
    }

    /// `qreply(9F)`: sends the message back the other way in this stream.
    pub fn qreply(self, mp: Message) {
        // SAFETY: valid queue; the message is handed over.
        unsafe { sys::qreply(self.q.as_ptr(), mp.into_raw()) }
    }

    /// `qenable(9F)`: schedules the queue's service procedure.
    pub fn qenable(self) {
        // SAFETY: valid queue; qenable ignores queues being closed.
        unsafe { sys::qenable(self.q.as_ptr()) }
    }

    /// `flushq(9F)`.
    pub fn flushq(self, mode: FlushMode) {
        // SAFETY: valid queue.
        unsafe { sys::flushq(self.q.as_ptr(), mode.raw()) }
    }

    /// `flushband(9F)`.
    pub fn flushband(self, band: u8, mode: FlushMode) {
        // SAFETY: valid queue.
        unsafe { sys::flushband(self.q.as_ptr(), band, mode.raw()) }
    }

    /// `qprocsoff(9F)` (on the read queue of our pair).
    pub fn qprocsoff(self) {
        // SAFETY: our own read queue during close.
        unsafe { sys::qprocsoff(self.q.as_ptr()) }
    }

    /// `miocack(9F)`: acknowledges an `M_IOCTL` back up this write queue's
    /// stream.
    pub fn miocack(self, mp: Message, count: c_int, rval: c_int) {
        // SAFETY: valid queue and an M_IOCTL message we own (checked to hold
        // an iocblk by the caller's `Message::ioctl`); handed over.
        unsafe { sys::miocack(self.q.as_ptr(), mp.into_raw(), count, rval) }
    }

    /// `miocnak(9F)`: refuses an `M_IOCTL` with `error` (where an
    /// [`Errno`] becomes the C `ioc_error`).
    pub fn miocnak(self, mp: Message, count: c_int, error: Errno) {
        // SAFETY: as for miocack.
        unsafe { sys::miocnak(self.q.as_ptr(), mp.into_raw(), count, error.to_c()) }
    }
}

/// Queueing on ptm's own write queue (not generic: the banded path is one
/// out-of-line function with a C name).
impl Queue<'_> {
    /// `putq(9F)`, and if the message cannot be queued: an `M_IOCTL` is
    /// NAKed with ENOSR (out of STREAMS resources) so that its caller wakes
    /// at once and learns why, anything else is freed. (illumos leaks it,
    /// and an ioctl's caller waits for its timeout, or forever.)
    ///
    /// putq fails only when it must allocate a band structure, for a
    /// message of a band above 0 the queue has no structure for yet; a band
    /// 0 message is always queued. So the common case hands the message
    /// over and is done -- nothing of it is needed after the call -- and
    /// only a banded message takes the checked way.
    #[inline(always)]
    pub fn putq_or_refuse(self, mp: Message) {
        if mp.band() == 0 {
            // SAFETY: valid queue and a message we own, handed over; putq
            // queues a band 0 message unconditionally.
            unsafe { sys::putq(self.q.as_ptr(), mp.into_raw()) };
        } else {
            self.putq_banded(mp);
        }
    }

    /// [`putq_or_refuse`](Self::putq_or_refuse) of a banded message.
    #[cold]
    #[inline(never)]
    #[cfg_attr(ptm_kernel, unsafe(export_name = "ptm_putq_banded"))]
    fn putq_banded(self, mp: Message) {
        // Anything else that is not queued is freed as `back` goes.
        if let Err(back) = self.putq(mp)
            && c_int::from(back.db_type()) == sys::M_IOCTL
        {
            self.miocnak(back, 0, Errno::ENOSR);
        }
    }
}

/// What only a queue with a successor can do.
impl Queue<'_, Plumbed> {
    /// `putnext(9F)`: passes the message to the next queue's put procedure.
    pub fn putnext(self, mp: Message) {
        // SAFETY: valid queue with a successor (`Plumbed`: between
        // qprocson and qprocsoff); the message is handed over.
        unsafe { sys::putnext(self.q.as_ptr(), mp.into_raw()) }
    }

    /// `putnextctl(9F)`: sends a new zero-length control message of type
    /// `db_type` to the next queue; `false` if it could not be allocated.
    pub fn putnextctl(self, db_type: u8) -> bool {
        // SAFETY: valid queue with a successor, as for putnext.
        unsafe { sys::putnextctl(self.q.as_ptr(), c_int::from(db_type)) != 0 }
    }

    /// `bcanputnext(9F)`: whether band `band` of the next queue with a
    /// service procedure has room (marks it wanted if not).
    pub fn bcanputnext(self, band: u8) -> bool {
        // SAFETY: valid queue, as for putnext.
        unsafe { sys::bcanputnext(self.q.as_ptr(), band) != 0 }
    }
}
