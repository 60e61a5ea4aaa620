//! STREAMS messages (`mblk_t` chains) as an owned Rust value.

use core::mem::{ManuallyDrop, size_of};
use core::ptr::{self, NonNull};

use super::Errno;
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
#[repr(transparent)]
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

    /// `mexchange(NULL, old, N, db_type, -1)` with the message's `N` bytes
    /// set to `bytes`: `old`'s first block reused when it is big enough and
    /// unshared (else freed; the rest of its `b_cont` chain is left
    /// attached, as illumos does), or a fresh message when `old` is `None`.
    /// `None` when an allocation was needed and failed (`old` is then
    /// gone).
    ///
    /// mexchange returns a block of type `db_type` holding exactly `N`
    /// bytes from `b_rptr`, so the bytes are written without a check.
    pub fn exchange<const N: usize>(
        old: Option<Message>,
        db_type: u8,
        bytes: [u8; N],
    ) -> Option<Message> {
        let old = old.map_or(ptr::null_mut(), Message::into_raw);
        // SAFETY: `old` is NULL or a message we owned and hand over;
        // mexchange returns it reused, or frees it and returns a fresh
        // message, or NULL; a message it returns has its b_rptr..b_wptr set
        // to `N` bytes of its buffer, which we own and fill here.
        unsafe {
            let mp = sys::mexchange(ptr::null_mut(), old, N, db_type, -1);
            if !mp.is_null() {
                ptr::copy_nonoverlapping(bytes.as_ptr(), (*mp).b_rptr, N);
            }
            Message::from_raw(mp)
        }
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

    /// The first block's bytes from `b_rptr` to the end of its buffer, for
    /// reading and writing a few of them with one bounds computation (see
    /// [`byte`](Self::byte) for why `b_wptr` is not the limit).
    pub fn head(&mut self) -> Head<'_> {
        // SAFETY: by the invariants the message and its data block are live.
        let rptr = unsafe { (*self.mp.as_ptr()).b_rptr };
        Head {
            rptr,
            len: self.room(),
            _msg: core::marker::PhantomData,
        }
    }

    /// A new `M_SETOPTS` carrying a `struct stroptions` with `so_flags`,
    /// `so_hiwat` and `so_lowat` filled in -- the stream head reads no other
    /// field unless its flag is set -- or `None` when memory is short.
    ///
    /// `allocb` returns a block with room for at least the size asked for,
    /// so the structure is written without a check.
    pub fn stroptions(so_flags: u32, hiwat: usize, lowat: usize) -> Option<Message> {
        let size = size_of::<sys::stroptions>();
        let mut msg = Message::allocb(size, sys::BPRI_MED as u32)?;
        msg.set_db_type(sys::M_SETOPTS as u8);
        let mp = msg.mp.as_ptr();
        // SAFETY: allocb gave a fresh message whose buffer holds `size`
        // bytes from b_rptr (= b_wptr), ours alone; the writes are
        // unaligned-safe.
        unsafe {
            (*mp).b_wptr = (*mp).b_wptr.add(size);
            let sop = (*mp).b_rptr.cast::<sys::stroptions>();
            ptr::addr_of_mut!((*sop).so_flags).write_unaligned(so_flags);
            ptr::addr_of_mut!((*sop).so_hiwat).write_unaligned(hiwat);
            ptr::addr_of_mut!((*sop).so_lowat).write_unaligned(lowat);
        }
        Some(msg)
    }

    /// Views the message as an `M_IOCTL`, if its first block is big enough
    /// to hold a `struct iocblk`.
    pub fn ioctl(&self) -> Option<super::IocBlk<'_>> {
        (self.room() >= size_of::<sys::iocblk>()).then(|| super::IocBlk::new(self))
    }

    /// `miocpullup(9F)`: makes the first continuation block hold `size`
    /// contiguous payload bytes; `Err(errno)` (EINVAL, ENOMEM) otherwise.
    pub fn miocpullup(&mut self, size: usize) -> Result<(), Errno> {
        // SAFETY: we own the message; miocpullup may replace b_cont but
        // leaves the first block, and so our ownership, as it was.
        match unsafe { sys::miocpullup(self.mp.as_ptr(), size) } {
            0 => Ok(()),
            err => Err(Errno::from_kernel(err)),
        }
    }

    /// `miocpullup(9F)` of a `T`-sized payload, and the payload: a `T`
    /// read from the start of the first continuation block. `Err(errno)`
    /// (EINVAL, ENOMEM) as from miocpullup.
    ///
    /// A successful miocpullup is the proof that the read is in bounds: it
    /// returns 0 for a nonzero size only when `b_cont` exists and holds at
    /// least that many bytes from its `b_rptr` (pulled up if they were
    /// spread over several blocks), so nothing is checked again.
    pub fn pullup_payload<T: Payload>(&mut self) -> Result<T, Errno> {
        const { assert!(size_of::<T>() > 0) };
        self.miocpullup(size_of::<T>())?;
        // SAFETY: miocpullup succeeded for size_of::<T>() > 0 bytes, so
        // b_cont is a live block of our message with at least that many
        // payload bytes from b_rptr; `T: Payload` is plain old data, valid
        // for any bit pattern; the read is unaligned-safe.
        Ok(unsafe {
            (*(*self.mp.as_ptr()).b_cont)
                .b_rptr
                .cast::<T>()
                .read_unaligned()
        })
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        // SAFETY: we own the whole chain and nobody else refers to it.
        unsafe { sys::freemsg(self.mp.as_ptr()) }
    }
}

/// The bytes of a message's first block from `b_rptr` to the end of its
/// buffer, borrowed from the [`Message`] (so it cannot outlive it, nor be
/// used once the message is passed on). Reads past the end yield 0 and
/// writes past it are dropped, as with [`Message::byte`].
pub struct Head<'m> {
    rptr: *mut u8,
    len: usize,
    _msg: core::marker::PhantomData<&'m mut Message>,
}

impl Head<'_> {
    /// The `i`th byte, or 0 past the end of the buffer.
    pub fn get(&self, i: usize) -> u8 {
        if i >= self.len {
            return 0;
        }
        // SAFETY: `i < len`, the bytes from b_rptr to the buffer's end.
        unsafe { *self.rptr.add(i) }
    }

    /// Stores the `i`th byte, if it lies inside the buffer.
    pub fn set(&mut self, i: usize, value: u8) {
        if i < self.len {
            // SAFETY: in bounds; the message (borrowed mutably) is ours.
            unsafe { *self.rptr.add(i) = value }
        }
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
