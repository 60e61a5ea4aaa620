//! Model check of ptm's PT_ENTER_READ/PT_EXIT_READ/PT_ENTER_WRITE/
//! PT_EXIT_WRITE reference-count locks under the shuttle concurrency
//! checker.
//!
//! The driver's own RAII guards (`ptm::ddi::PtTtys::enter_read` /
//! `enter_write`) and the C macros of `include/ptm_abi.h` (compiled from
//! `csrc/ptlock_macros.c`) run the same task mixes ([`scenario`]) on a
//! harness-owned `pt_ttys` ([`harness`]), on top of a model of the kernel's
//! `mutex_enter`/`mutex_exit`/`cv_wait`/`cv_broadcast` built from shuttle's
//! primitives ([`kernel`]), under shuttle's seeded random and PCT schedulers
//! ([`run`]). Deliberately broken variants of the protocol
//! ([`protocol::Bug`]) are the negative controls: the checker must catch
//! each.
//!
//! The tests are in `tests/`; see `README.md` for how to run them long.

#![deny(clippy::undocumented_unsafe_blocks, missing_docs)]

pub mod harness;
pub mod kernel;
pub mod protocol;
pub mod run;
pub mod scenario;
