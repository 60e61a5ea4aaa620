//! The `struct iocblk` at the head of an `M_IOCTL` message.

use core::ffi::c_int;
use core::ptr;

use super::{Errno, Message};
use crate::sys;

/// A read-only view of the `iocblk` of an `M_IOCTL` message.
///
/// Obtained from [`Message::ioctl`], which has checked that the first block
/// is large enough; the view borrows the message, so it cannot outlive it or
/// be used after the message was replied to.
pub struct IocBlk<'m> {
    iocp: *const sys::iocblk,
    _msg: &'m Message,
}

impl<'m> IocBlk<'m> {
    pub(super) fn new(msg: &'m Message) -> IocBlk<'m> {
        // SAFETY: the message is live and owned by `msg`.
        let iocp = unsafe { (*msg.as_ptr()).b_rptr.cast::<sys::iocblk>() };
        IocBlk { iocp, _msg: msg }
    }

    /// The ioctl command (`ioc_cmd`).
    pub fn cmd(&self) -> c_int {
        // SAFETY: `Message::ioctl` checked that a whole iocblk fits at
        // b_rptr; the read is unaligned-safe.
        unsafe { ptr::addr_of!((*self.iocp).ioc_cmd).read_unaligned() }
    }

    /// The caller's credential (`ioc_cr`), for `drv_priv`.
    pub fn cred(&self) -> Cred {
        // SAFETY: as for `cmd`.
        Cred(unsafe { ptr::addr_of!((*self.iocp).ioc_cr).read_unaligned() })
    }
}

/// A credential the framework handed us; opaque, only passed back.
#[derive(Clone, Copy)]
pub struct Cred(*mut sys::cred_t);

impl Cred {
    /// `drv_priv(9F)`: `Ok` if the credential may configure devices
    /// (`PRIV_SYS_DEVICES`), else `Err(EPERM)`.
    pub fn drv_priv(self) -> Result<(), Errno> {
        // SAFETY: the pointer came from the iocblk of a live M_IOCTL, which
        // holds a reference on the credential for the ioctl's lifetime.
        match unsafe { sys::drv_priv(self.0) } {
            0 => Ok(()),
            err => Err(Errno::from_kernel(err)),
        }
    }
}
