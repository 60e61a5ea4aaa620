//! STREAMS messages (`mblk_t` chains) as an owned Rust value.

use core::ffi::c_int;
use core::mem::{ManuallyDrop, size_of};
use core::ptr::{self, NonNull};

use crate::sys;

/// An owned STREAMS message: the first `mblk_t` of a `b_cont` chain that
/// this code holds exclusively.
///
/// # Invariants
///
/// The pointer is a live message that is on no queue (`b_next`/`b_prev`
/// unused), whose first block has a data block, and that nothing else will
/// touch until this value gives it away ([`Message::into_raw`], or one of
/// the [`Queue`](super::Queue) methods that consume a message). Dropping a
/// `Message` frees the whole chain with `freemsg(9F)`, so a message can be
/// neither leaked nor used after it was passed on.
pub struct Message {
    mp: NonNull<sys::mblk_t>,
}

impl Message {
    /// Takes ownership of a raw message pointer, `None` for NULL.
    ///
    /// # Safety
    ///
    /// `mp` must be NULL or a message satisfying the type invariants, handed
    /// over by its owner (the framework calling a put procedure, `getq`,
    /// `allocb`...).
    pub unsafe fn from_raw(mp: *mut sys::mblk_t) -> Option<Message> {
        NonNull::new(mp).map(|mp| Message { mp })
    }

    /// Takes ownership of the message a put procedure was given, which the
    /// framework guarantees is not NULL, without testing it.
    ///
    /// # Safety
    ///
    /// As for [`from_raw`](Self::from_raw), and `mp` must not be NULL.
    pub unsafe fn from_entry(mp: *mut sys::mblk_t) -> Message {
        Message {
            // SAFETY: the caller guarantees mp is not NULL.
            mp: unsafe { NonNull::new_unchecked(mp) },
        }
    }

    /// Takes ownership of a message known not to be NULL.
    ///
    /// # Safety
    ///
    /// As for [`from_raw`](Self::from_raw).
    pub unsafe fn from_nonnull(mp: NonNull<sys::mblk_t>) -> Message {
        Message { mp }
    }

    /// Gives up ownership, returning the raw pointer.
    pub fn into_raw(self) -> *mut sys::mblk_t {
        self.into_nonnull().as_ptr()
    }

    /// Gives up ownership, returning the pointer as `NonNull`.
    pub fn into_nonnull(self) -> NonNull<sys::mblk_t> {
        ManuallyDrop::new(self).mp
    }

    /// Borrows the raw pointer, for calls that take the message without
    /// consuming it (e.g. `miocpullup`).
    pub fn as_ptr(&self) -> *mut sys::mblk_t {
        self.mp.as_ptr()
    }

    /// `allocb(size, pri)`: a new `M_DATA` message with room for `size`
    /// bytes, or `None` when memory is short (allocb never sleeps).
    pub fn allocb(size: usize, pri: u32) -> Option<Message> {
        // SAFETY: allocb has no preconditions; it returns NULL or a fresh,
        // unshared message on no queue, which `from_raw` takes over.
        unsafe { Message::from_raw(sys::allocb(size, pri)) }
    }

    /// `mexchange(NULL, NULL, size, type, primtype)`: a fresh message of
    /// `size` bytes and the given type.
    pub fn exchange_new(size: usize, db_type: u8, primtype: i32) -> Option<Message> {
        // SAFETY: with a NULL queue and a NULL message, mexchange only
        // allocates; the result is NULL or a fresh message we now own.
        unsafe {
            Message::from_raw(sys::mexchange(
                ptr::null_mut(),
                ptr::null_mut(),
                size,
                db_type,
                primtype,
            ))
        }
    }

    /// `mexchange(NULL, mp, size, type, primtype)`: reuses this message's
    /// first block when it is big enough and unshared (else frees it and
    /// allocates), resets it to `size` bytes of type `db_type`. The rest of
    /// the `b_cont` chain is left attached, as illumos does. `None` when an
    /// allocation was needed and failed (the old message is then gone).
    pub fn exchange(self, size: usize, db_type: u8, primtype: i32) -> Option<Message> {
        let mp = self.into_raw();
        // SAFETY: `mp` is a message we owned and hand over; mexchange either
        // returns it (reused) or frees it and returns a fresh one or NULL.
        unsafe { Message::from_raw(sys::mexchange(ptr::null_mut(), mp, size, db_type, primtype)) }
    }

    fn datab(&self) -> *mut sys::dblk_t {
        // SAFETY: by the invariants the message is live and owned.
        unsafe { (*self.mp.as_ptr()).b_datap }
    }

    /// The message type (`db_type`).
    pub fn db_type(&self) -> u8 {
        // SAFETY: every message has a data block (invariant).
        unsafe { (*self.datab()).db_type }
    }

    /// Sets the message type.
    pub fn set_db_type(&mut self, db_type: u8) {
        // SAFETY: as above; we own the message, so writing is exclusive.
        unsafe { (*self.datab()).db_type = db_type }
    }

    /// The priority band (`b_band`).
    pub fn band(&self) -> u8 {
        // SAFETY: by the invariants the message is live and owned.
        unsafe { (*self.mp.as_ptr()).b_band }
    }

    /// How many bytes the first block's buffer holds from `b_rptr` to its
    /// end (`db_lim`): the bytes that may be read or written there, whatever
    /// `b_wptr` says.
    fn room(&self) -> usize {
        // SAFETY: by the invariants the message and its data block are live.
        let (rptr, lim) = unsafe { ((*self.mp.as_ptr()).b_rptr, (*self.datab()).db_lim) };
        (lim as usize).saturating_sub(rptr as usize)
    }

    /// The `i`th byte at `b_rptr`. ptm, like every STREAMS driver, reads
    /// the `M_FLUSH` flag and band bytes without looking at `b_wptr`; this
    /// reads them as long as they lie inside the buffer and yields 0 for
    /// anything past its end rather than reading foreign memory.
    pub fn byte(&self, i: usize) -> u8 {
        if i >= self.room() {
            return 0;
        }
        // SAFETY: `i < room()`, so `b_rptr + i` is inside the data buffer.
        unsafe { *(*self.mp.as_ptr()).b_rptr.add(i) }
    }

    /// Stores the `i`th byte at `b_rptr`, if it lies inside the buffer.
    pub fn set_byte(&mut self, i: usize, value: u8) {
        if i < self.room() {
            // SAFETY: in bounds (checked) and we own the message exclusively.
            unsafe { *(*self.mp.as_ptr()).b_rptr.add(i) = value }
        }
    }

    /// Turns a freshly allocated block into an `M_SETOPTS` carrying a
    /// `struct stroptions`: advances `b_wptr` over the structure and fills
    /// in `so_flags`, `so_hiwat` and `so_lowat` only -- the stream head
    /// reads no other field unless its flag is set.
    ///
    /// Returns `false`, changing nothing, if the block has no room for it.
    pub fn fill_stroptions(&mut self, so_flags: u32, hiwat: usize, lowat: usize) -> bool {
        let size = size_of::<sys::stroptions>();
        if self.room() < size {
            return false;
        }
        self.set_db_type(sys::M_SETOPTS as u8);
        let mp = self.mp.as_ptr();
        // SAFETY: the buffer holds a whole stroptions from b_rptr (checked
        // above) and we own it; the writes are unaligned-safe.
        unsafe {
            (*mp).b_wptr = (*mp).b_wptr.add(size);
            let sop = (*mp).b_rptr.cast::<sys::stroptions>();
            ptr::addr_of_mut!((*sop).so_flags).write_unaligned(so_flags);
            ptr::addr_of_mut!((*sop).so_hiwat).write_unaligned(hiwat);
            ptr::addr_of_mut!((*sop).so_lowat).write_unaligned(lowat);
        }
        true
    }

    /// Views the message as an `M_IOCTL`, if its first block is big enough
    /// to hold a `struct iocblk`.
    pub fn ioctl(&self) -> Option<super::IocBlk<'_>> {
        (self.room() >= size_of::<sys::iocblk>()).then(|| super::IocBlk::new(self))
    }

    /// `miocpullup(9F)`: makes the first continuation block hold `size`
    /// contiguous payload bytes; `Err(errno)` (EINVAL, ENOMEM) otherwise.
    pub fn miocpullup(&mut self, size: usize) -> Result<(), c_int> {
        // SAFETY: we own the message; miocpullup may replace b_cont but
        // leaves the first block, and so our ownership, as it was.
        match unsafe { sys::miocpullup(self.mp.as_ptr(), size) } {
            0 => Ok(()),
            err => Err(err),
        }
    }

    /// Reads a `T` from the start of the first continuation block, if that
    /// block holds at least `size_of::<T>()` bytes (which a successful
    /// [`miocpullup`](Self::miocpullup) of that size guarantees).
    pub fn payload<T: Payload>(&self) -> Option<T> {
        // SAFETY: the message is live; b_cont is NULL or a live block.
        let cont = unsafe { (*self.mp.as_ptr()).b_cont };
        if cont.is_null() {
            return None;
        }
        // SAFETY: `cont` is a live block of our message.
        let (rptr, wptr) = unsafe { ((*cont).b_rptr, (*cont).b_wptr) };
        if (wptr as usize).saturating_sub(rptr as usize) < size_of::<T>() {
            return None;
        }
        // SAFETY: `size_of::<T>()` bytes from `rptr` are payload (checked),
        // and `T: Payload` is plain old data, valid for any bit pattern.
        Some(unsafe { rptr.cast::<T>().read_unaligned() })
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        // SAFETY: we own the whole chain and nobody else refers to it.
        unsafe { sys::freemsg(self.mp.as_ptr()) }
    }
}

/// Plain-old-data types that may be read out of an ioctl payload.
///
/// # Safety
///
/// Implementors must be `Copy` C types valid for every bit pattern.
pub unsafe trait Payload: Copy {}

// SAFETY: a C int (zoneid_t), valid for any bits.
unsafe impl Payload for sys::zoneid_t {}
// SAFETY: two 32-bit unsigned ids, valid for any bits.
unsafe impl Payload for sys::pt_own_t {}
