//! The driver's one error type: an illumos errno.

use core::ffi::c_int;
use core::fmt;

use crate::sys;

/// An illumos error number, as the driver's results carry it
/// (`Result<_, Errno>`). It is a C `int` with a name: `#[repr(transparent)]`,
/// so it costs exactly what the bare integer did, and it becomes a `c_int`
/// again only where it leaves the driver -- an entry point's return value in
/// the module glue, or the `ioc_error` of an `M_IOCNAK` in
/// [`Queue::miocnak`](super::Queue::miocnak).
///
/// The values are illumos's (`sys/errno.h`), not the build host's.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Errno(c_int);

impl Errno {
    /// `EPERM`: not privileged (what `drv_priv` answers).
    pub const EPERM: Errno = Errno(sys::EPERM);
    /// `ENXIO`: no such device (refused opens).
    pub const ENXIO: Errno = Errno(sys::ENXIO);
    /// `ENOMEM`: out of memory (an open, or `miocpullup`).
    pub const ENOMEM: Errno = Errno(sys::ENOMEM);
    /// `EINVAL`: invalid argument, or no subsidiary to talk to.
    pub const EINVAL: Errno = Errno(sys::EINVAL);
    /// `ENOSR`: out of STREAMS resources (an ioctl that could not be queued).
    pub const ENOSR: Errno = Errno(sys::ENOSR);

    /// An errno a kernel function returned (nonzero by its contract).
    #[inline(always)]
    pub(crate) const fn from_kernel(errno: c_int) -> Errno {
        Errno(errno)
    }

    /// The C value, for the kernel.
    #[inline(always)]
    pub const fn to_c(self) -> c_int {
        self.0
    }

    /// The low byte, for the one-byte errors of an `M_ERROR` message (every
    /// illumos errno fits in one).
    #[inline(always)]
    pub const fn to_byte(self) -> u8 {
        self.0 as u8
    }

    /// An entry point's return value: 0 for `Ok`, the errno otherwise.
    #[inline(always)]
    pub const fn result_to_c(result: Result<(), Errno>) -> c_int {
        match result {
            Ok(()) => 0,
            Err(errno) => errno.0,
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Errno::EPERM => "EPERM",
            Errno::ENXIO => "ENXIO",
            Errno::ENOMEM => "ENOMEM",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSR => "ENOSR",
            _ => return write!(f, "Errno({})", self.0),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_the_c_int_it_names() {
        assert_eq!(size_of::<Errno>(), size_of::<c_int>());
        assert_eq!(Errno::EPERM.to_c(), 1);
        assert_eq!(Errno::ENXIO.to_c(), 6);
        assert_eq!(Errno::ENOMEM.to_c(), 12);
        assert_eq!(Errno::EINVAL.to_c(), 22);
        assert_eq!(Errno::ENOSR.to_c(), 63);
        assert_eq!(Errno::EINVAL.to_byte(), 22);
    }

    #[test]
    fn entry_point_results_become_zero_or_the_errno() {
        assert_eq!(Errno::result_to_c(Ok(())), 0);
        assert_eq!(Errno::result_to_c(Err(Errno::ENXIO)), 6);
        assert_eq!(Errno::from_kernel(13).to_c(), 13);
    }

    #[test]
    fn debug_names_the_errors_the_driver_uses() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{:?}", Errno::ENOSR), "ENOSR");
        assert_eq!(format!("{:?}", Errno::from_kernel(13)), "Errno(13)");
    }
}
