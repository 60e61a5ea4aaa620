//! Helpers the scenarios share: opening a manager or a pair, draining a
//! non-blocking fd, ioctl payloads.

use crate::{Backend, Errno, Fd, O_RDWR, Pty};

/// Opens a manager and returns (fd, minor).
pub fn manager(w: &mut dyn Pty) -> (Fd, u32) {
    let m = w.open_manager(O_RDWR).expect("open /dev/ptmx");
    let minor = w.minor_of(m).expect("fstat");
    (m, minor)
}

/// Opens a manager, unlocks it and opens its subsidiary: (manager,
/// subsidiary, minor).
pub fn pair(w: &mut dyn Pty) -> (Fd, Fd, u32) {
    pair_flags(w, O_RDWR, O_RDWR)
}

/// [`pair`] with the open flags of each end.
pub fn pair_flags(w: &mut dyn Pty, mflags: i32, sflags: i32) -> (Fd, Fd, u32) {
    let m = w.open_manager(mflags).expect("open /dev/ptmx");
    let minor = w.minor_of(m).expect("fstat");
    w.unlockpt(m).expect("unlockpt");
    let s = w.open_subsidiary(minor, sflags).expect("open subsidiary");
    (m, s, minor)
}

/// Reads everything that can be read without blocking (fd must be
/// non-blocking), up to `max` bytes, in reads of `chunk`.
pub fn drain(w: &mut dyn Pty, fd: Fd, chunk: usize, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match w.read(fd, chunk) {
            Ok(v) if v.is_empty() => break,
            Ok(v) => out.extend(v),
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("drain: {e}"),
        }
    }
    out
}

/// An OWNERPT payload (`pt_own_t`).
pub fn own(uid: u32, gid: u32) -> Vec<u8> {
    let mut v = uid.to_ne_bytes().to_vec();
    v.extend_from_slice(&gid.to_ne_bytes());
    v
}

/// A ZONEPT payload (`zoneid_t`).
pub fn zone(z: i32) -> Vec<u8> {
    z.to_ne_bytes().to_vec()
}

/// Whether backend `b` runs the C ptm; prints the SKIPPED line for `what`
/// when it does not (`PTM_REFERENCE_C` unset).
pub fn require_c_oracle(b: &dyn Backend, what: &str) -> bool {
    let has = b.variants().iter().any(|v| v.is_c_ptm());
    if !has {
        println!("SKIPPED: PTM_REFERENCE_C not set ({what})");
    }
    has
}

/// A forged iocblk for `cmd` (as a module above ptm would send).
pub fn iocblk_bytes(cmd: i32, id: u32) -> Vec<u8> {
    use ptm::sys::iocblk;
    use std::mem::offset_of;
    /// `IOC_NATIVE`, as the stream head sets it.
    const IOC_NATIVE: u32 = 0x0020_0000;
    let mut b = vec![0u8; size_of::<iocblk>()];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(offset_of!(iocblk, ioc_cmd), &cmd.to_ne_bytes());
    put(offset_of!(iocblk, ioc_id), &id.to_ne_bytes());
    put(offset_of!(iocblk, ioc_flag), &IOC_NATIVE.to_ne_bytes());
    b
}
