//! The tests, written once for every world: each is a `pub fn(&dyn
//! Backend)` that runs on every variant of the backend it is given (see
//! [`crate::harness`]), and each module lists its tests in `tests()`,
//! named `<module>::<function>`.
//!
//! * [`basic`]: opening, locking, data, reopen, refused opens, M_READ,
//!   module loading;
//! * [`flow`]: flow control both ways, O_NONBLOCK, back-enabling,
//!   chunking, zero-length writes;
//! * [`flush`]: M_FLUSH between the two sides, FLUSHBAND;
//! * [`ioctl`]: every ioctl ptm handles, forwarding of the others;
//! * [`lifecycle`]: close, hangup, the zero-length message, write errors,
//!   reopen;
//! * [`faults`]: allocation and pt_ttys failures, the pty limit;
//! * [`late`]: service procedures run late (scheduling as a test input):
//!   ptmwsrv's discard path, flushes meeting queued messages, putbq's
//!   order, high-priority messages against flow control;
//! * [`ported`]: assertions of LTP and illumos libc-tests;
//! * [`differential`]: random op sequences ([`crate::ops`]), every variant
//!   against the C oracle;
//! * [`bad_input`]: every ioctl payload shape, message type and flush flag
//!   in every pty state, and allocation failure at every point.

use crate::harness::Test;

/// `named_tests!["module"; f, g]`: the [`Test`]s `module::f` and
/// `module::g`.
macro_rules! named_tests {
    ($module:literal; $($f:ident),* $(,)?) => {
        vec![$($crate::harness::Test::new(concat!($module, "::", stringify!($f)), $f)),*]
    };
}

pub mod bad_input;
pub mod basic;
pub mod common;
pub mod differential;
pub mod faults;
pub mod flow;
pub mod flush;
pub mod ioctl;
pub mod late;
pub mod lifecycle;
pub mod ported;

/// Every test of every module.
pub fn all_tests() -> Vec<Test> {
    [
        basic::tests(),
        flow::tests(),
        flush::tests(),
        ioctl::tests(),
        lifecycle::tests(),
        faults::tests(),
        late::tests(),
        ported::tests(),
        differential::tests(),
        bad_input::tests(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
