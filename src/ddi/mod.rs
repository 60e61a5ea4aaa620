//! Safe wrappers over the raw illumos bindings.
//!
//! This is the only layer (besides the entry-point glue in `module`) that
//! contains `unsafe`: each type here owns or borrows one kernel object and
//! exposes the STREAMS/DDI operations ptm performs on it with their
//! ownership rules in the types --
//!
//! * [`Message`]: an owned `mblk_t` chain, freed on drop, consumed by
//!   `putnext`/`putq`/`qreply`/`miocack`...;
//! * [`Queue`]: a `queue_t` valid for a lifetime (the entry point's call,
//!   or the reference lock that keeps a peer queue alive);
//! * [`IocBlk`], [`Cred`]: the `M_IOCTL` header;
//! * [`PtTtys`], [`ReadRef`], [`WriteRef`], [`PtLock`]: the shared pty and
//!   its PT_ENTER/PT_EXIT reference locks and `pt_lock` as RAII guards;
//! * [`Zone`]: a held zone reference;
//! * [`Errno`]: the error of every fallible operation, an illumos errno.

mod errno;
mod ioctl;
mod message;
mod ptty;
mod queue;
mod zone;

pub use errno::Errno;
pub use ioctl::{Cred, IocBlk};
pub use message::{Head, Message, Payload};
pub use ptty::{PtLock, PtTtys, ReadRef, WriteRef, attach_subsidiary, ptms_init};
pub use queue::{AnyQueue, FlushMode, Plumbed, Queue};
pub use zone::Zone;
