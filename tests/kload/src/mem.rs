//! One anonymous mapping in the low 2 GiB of the address space.
//!
//! On a real illumos amd64 kernel, module text and data come from arenas in
//! the top 2 GiB, which is what the kernel code model's sign-extended 32-bit
//! absolute addresses (`R_X86_64_32S`) assume.  A userland process cannot
//! map there, but the bottom 2 GiB satisfy the same constraint from the
//! other side: every address is a non-negative `i32`, and any two addresses
//! are within +-2 GiB of each other, so `PC32`/`PLT32` between text, data,
//! trampolines and aliases always fit.

use std::io;
use std::ptr;

/// The highest address (exclusive) that a sign-extended 32-bit absolute
/// value can reach from below.
pub(crate) const LOW_LIMIT: usize = 0x8000_0000;

/// Page size assumed for layout.  Read from the system at run time and
/// checked against this; amd64 Linux uses 4 KiB.
pub(crate) const PAGE: usize = 4096;

/// An anonymous private mapping, unmapped on drop.  Holds plain addresses,
/// so it is `Send`/`Sync`; all access goes through raw pointers created by
/// the owner under its own safety arguments.
#[derive(Debug)]
pub(crate) struct Mapping {
    base: usize,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes (rounded up to pages), read-write, zero-filled,
    /// entirely below [`LOW_LIMIT`], with the base aligned to `align`
    /// (a power of two).  Returns the mapping and the aligned start.
    pub(crate) fn map_low(len: usize, align: usize) -> io::Result<(Mapping, usize)> {
        assert!(align.is_power_of_two());
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page != PAGE as libc::c_long {
            return Err(io::Error::other(format!(
                "page size {page} is not the {PAGE} this loader assumes"
            )));
        }
        let align = align.max(PAGE);
        let want = round_up(len.max(1), PAGE)
            .checked_add(align - PAGE)
            .ok_or_else(|| io::Error::other("module too large"))?;
        if want >= LOW_LIMIT / 2 {
            return Err(io::Error::other("module too large for the low 2 GiB"));
        }
        let base = map_below_2g(want)?;
        let mapping = Mapping { base, len: want };
        let start = round_up(base, align);
        debug_assert!(start + round_up(len.max(1), PAGE) <= base + want);
        Ok((mapping, start))
    }

    /// Changes the protection of the whole pages covering `[addr, addr+len)`.
    pub(crate) fn protect(&self, addr: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let start = addr & !(PAGE - 1);
        let end = round_up(addr + len, PAGE);
        assert!(start >= self.base && end <= self.base + self.len);
        // SAFETY: the range lies inside this mapping (asserted above), which
        // this process owns exclusively; changing its protection cannot
        // invalidate any Rust reference because none is ever created into it.
        let rc = unsafe { libc::mprotect(start as *mut libc::c_void, end - start, prot) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether `[addr, addr+len)` lies inside this mapping.
    pub(crate) fn contains(&self, addr: usize, len: usize) -> bool {
        addr >= self.base
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.len)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/len describe exactly the mapping created in map_low,
        // which nothing else unmaps.  After this no code may run from it;
        // LoadedModule documents that calling into an unloaded module is UB.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}

pub(crate) fn round_up(value: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    (value + align - 1) & !(align - 1)
}

/// Maps `len` bytes read-write below 2 GiB: first with `MAP_32BIT`, then by
/// probing address hints with `MAP_FIXED_NOREPLACE` (which never replaces an
/// existing mapping).
fn map_below_2g(len: usize) -> io::Result<usize> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: an anonymous mapping at a kernel-chosen address cannot alias
    // any existing memory; arguments are valid.
    let p = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags | libc::MAP_32BIT, -1, 0) };
    if p != libc::MAP_FAILED {
        let addr = p as usize;
        if addr + len <= LOW_LIMIT {
            return Ok(addr);
        }
        // SAFETY: p/len is the mapping just created and not yet shared.
        unsafe { libc::munmap(p, len) };
    }
    let step = 16 << 20;
    let mut hint = 0x1000_0000usize;
    while hint + len <= LOW_LIMIT {
        // SAFETY: MAP_FIXED_NOREPLACE fails rather than replacing anything
        // already mapped at the hint, so no existing memory is disturbed.
        let p = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                len,
                prot,
                flags | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            if p as usize == hint {
                return Ok(hint);
            }
            // Old kernels ignore the flag and treat the address as a hint.
            // SAFETY: p/len is the mapping just created and not yet shared.
            unsafe { libc::munmap(p, len) };
        }
        hint += step;
    }
    Err(io::Error::other(
        "no free address range below 2 GiB (MAP_32BIT and hinted mmap both failed)",
    ))
}
