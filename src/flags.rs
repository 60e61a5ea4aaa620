//! Flag sets ptm reads and writes, as `bitflags` types over the values the
//! bindings carry.
//!
//! Conversions from raw bytes use `from_bits_retain`, and set arithmetic uses
//! `union`/`difference` (never `!`, which truncates): bits this driver does
//! not know about must travel through it unchanged, exactly as the C bit
//! operations let them.

use bitflags::bitflags;

use crate::sys;

bitflags! {
    /// The first byte of an `M_FLUSH` message (`sys/stropts.h`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct FlushFlags: u8 {
        /// Flush the read side.
        const FLUSHR = sys::FLUSHR as u8;
        /// Flush the write side.
        const FLUSHW = sys::FLUSHW as u8;
        /// Only the band named by the second byte.
        const FLUSHBAND = sys::FLUSHBAND as u8;
    }
}

bitflags! {
    /// `struct stroptions` `so_flags`: which fields of an `M_SETOPTS` are set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct SoFlags: u32 {
        /// `so_hiwat` is valid.
        const HIWAT = sys::SO_HIWAT as u32;
        /// `so_lowat` is valid.
        const LOWAT = sys::SO_LOWAT as u32;
        /// The stream is a terminal (may become a controlling tty).
        const ISTTY = sys::SO_ISTTY as u32;
    }
}

bitflags! {
    /// `pt_ttys.pt_state` (`sys/ptms.h`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PtState: u16 {
        /// Subsidiary opens are refused until UNLKPT.
        const PTLOCK = sys::PTLOCK as u16;
        /// The manager is open.
        const PTMOPEN = sys::PTMOPEN as u16;
        /// The subsidiary is open.
        const PTSOPEN = sys::PTSOPEN as u16;
        /// XPG4v2 terminal semantics requested (PTSSTTY).
        const PTSTTY = sys::PTSTTY as u16;
    }
}

bitflags! {
    /// The `sflag` argument of a STREAMS open routine.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct OpenState: i32 {
        /// A module is being pushed.
        const MODOPEN = sys::MODOPEN;
        /// A clone open (`/dev/ptmx`).
        const CLONEOPEN = sys::CLONEOPEN;
    }
}

bitflags! {
    /// The subset of open(2) file flags (`oflag`) that ptm looks at.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct OpenFlags: i32 {
        /// `O_NOCTTY`: do not become the controlling terminal.
        const FNOCTTY = sys::FNOCTTY;
    }
}
