//! # ptm-real: illumos's own kernel code beneath the ptm drivers
//!
//! The real-code world runs the unmodified illumos STREAMS framework
//! (`stream.c`, `strsun.c`, `putnext.c`, `strsubr.c`, `streamio.c`,
//! `ddi.c`, `modconf.c`), `ptms_conf.c` and the subsidiary driver `pts.c`
//! -- and the STREAMS modules `ptem`, `ldterm`, `ttcompat` and `pckt` -- in
//! this process, compiled from `ILLUMOS_SRC` with DEBUG on, on top of the
//! project's kernel layer ([`kernel`]). The ptm drivers under test run on
//! it exactly as on illumos.
//!
//! Built only when `ILLUMOS_SRC` names the illumos sources; otherwise
//! [`available`] is false and the tests say they were skipped.

#![allow(clippy::missing_safety_doc)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(has_illumos)]
pub mod kernel;
#[cfg(has_illumos)]
mod world;
#[cfg(has_illumos)]
pub use world::*;

/// Whether this build has the real-code world (`ILLUMOS_SRC` was set).
pub const fn available() -> bool {
    cfg!(has_illumos)
}
