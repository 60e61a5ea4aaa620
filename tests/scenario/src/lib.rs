//! # ptm-scenario: one scenario API, two worlds
//!
//! The tests of ptm are written once, against [`Pty`] (a world: a kernel
//! with one ptm variant and a process using it), and run on two backends:
//!
//! * the **model world** (`tests/sim`, crate `ptm-sim`): the project's own
//!   STREAMS model, where every kernel function is the project's;
//! * the **real-code world** (`tests/real`, crate `ptm-real`): illumos's
//!   own STREAMS framework, stream head, ptms_conf and pts, compiled from
//!   `ILLUMOS_SRC`, beneath the same drivers.
//!
//! This crate holds the API ([`api`]), the trace vocabulary both worlds
//! share ([`msg`]), the harness ([`harness`]), the operation model the
//! property tests and the fuzz target run ([`ops`]), and the tests
//! themselves ([`scenarios`]; [`all_tests`] lists them for a test binary
//! of a backend), and the concurrency stress test ([`stress`]) for the
//! backends whose worlds take system calls from several threads at once.

pub mod api;
pub mod harness;
pub mod msg;
pub mod ops;
pub mod scenarios;
pub mod stress;

pub use api::*;
pub use harness::{
    Test, assert_traces_equal, run_one, run_tests, scenario, scenario_each, trace_diff,
};
pub use msg::{ioctl_name, mtype_name};
pub use scenarios::all_tests;

/// Open flags (illumos values).
pub const O_RDONLY: i32 = 0;
pub const O_WRONLY: i32 = 1;
pub const O_RDWR: i32 = 2;
pub const O_NDELAY: i32 = 0x04;
pub const O_NONBLOCK: i32 = 0x80;
pub const O_NOCTTY: i32 = 0x800;

/// ptm ioctls.
pub const ISPTM: i32 = ptm::sys::ISPTM;
pub const UNLKPT: i32 = ptm::sys::UNLKPT;
pub const PTSSTTY: i32 = ptm::sys::PTSSTTY;
pub const ZONEPT: i32 = ptm::sys::ZONEPT;
pub const OWNERPT: i32 = ptm::sys::OWNERPT;
/// Terminal ioctls used by the scenarios (illumos values).
pub const TCGETS: i32 = (b'T' as i32) << 8 | 13;
pub const TIOCGWINSZ: i32 = (b'T' as i32) << 8 | 104;
pub const TIOCSWINSZ: i32 = (b'T' as i32) << 8 | 103;

/// M_FLUSH flags.
pub const FLUSHR: i32 = ptm::sys::FLUSHR;
pub const FLUSHW: i32 = ptm::sys::FLUSHW;
pub const FLUSHRW: i32 = ptm::sys::FLUSHRW;

/// The major numbers of the two drivers (both worlds use these).
pub const PTM_MAJOR: u32 = 22;
pub const PTS_MAJOR: u32 = 23;

/// The group id of "tty" that `grantpt` uses.
pub const TTY_GID: u32 = 7;
/// The process id of the world's process.
pub const WORLD_PID: i32 = 4242;
