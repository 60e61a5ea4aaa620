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

/// Without `ILLUMOS_SRC` the crate still offers the backend, which says
/// why it cannot run.
#[cfg(not(has_illumos))]
mod unbuilt {
    use ptm_scenario::{Backend, Pty, Variant};

    pub struct RealBackend;
    pub static REAL: RealBackend = RealBackend;

    impl Backend for RealBackend {
        fn name(&self) -> &'static str {
            "real"
        }
        fn unavailable(&self) -> Option<String> {
            Some(
                "ILLUMOS_SRC not set: the real-code world (illumos's own STREAMS code) is not built"
                    .into(),
            )
        }
        fn variants(&self) -> Vec<Variant> {
            Vec::new()
        }
        fn world(&self, _v: Variant) -> Result<Box<dyn Pty>, String> {
            Err(self.unavailable().unwrap_or_default())
        }
    }

    impl ptm_scenario::stress::ThreadedBackend for RealBackend {
        fn threaded_world(
            &self,
            _v: Variant,
            _workers: usize,
        ) -> Result<Box<dyn ptm_scenario::stress::ThreadedPty>, String> {
            Err(self.unavailable().unwrap_or_default())
        }
    }
}
#[cfg(not(has_illumos))]
pub use unbuilt::{REAL, RealBackend};

/// Whether this build has the real-code world (`ILLUMOS_SRC` was set).
pub const fn available() -> bool {
    cfg!(has_illumos)
}
