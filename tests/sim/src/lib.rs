//! # ptm-sim: the model world, a userland illumos STREAMS model for `ptm`
//!
//! The model runs a pseudo-terminal manager driver — the unmodified
//! illumos C `ptm.c` (the differential oracle) or the Rust port — on top of
//! the project's own model of the parts of the illumos kernel it touches:
//! message blocks, queues and their flow control, the service scheduler,
//! the module framework, `ptms_conf`, the subsidiary driver `pts`, and a
//! stream head at each end that turns messages into what a process sees.
//!
//! It is one of the two backends of the scenario API (`ptm-scenario`):
//! [`World`] implements [`Pty`] and [`MODEL`] is the [`Backend`], so the
//! scenarios, property tests and bad-input cases written there run here
//! (`tests/scenarios.rs`). What only the model can do (call kernel
//! functions directly, scratch queues, the multi-threaded mode) is
//! [`World`]'s own.
//!
//! ## Kernel interface
//!
//! Every kernel function `ptm` imports is exported from this crate with C
//! linkage (`allocb`, `putq`, `qprocson`, `mod_install`, `pt_ttys_alloc`,
//! `zone_rele`, ...), plus helpers drivers commonly use (`RD`, `OTHERQ`,
//! `freeb`, `copyb`, `dupb`, `canput`, ...). [`kernel_symbols`] lists them
//! with their addresses, for a userland module loader. The functions find
//! their world through a thread-local "current world" that every [`World`]
//! operation installs.
//!
//! They live by kind: message blocks in `msg.rs`; queues and their flow
//! control in `queue.rs`, linking pairs into a stream in `link.rs`, the
//! service scheduler in `sched.rs`, `put`/`putnext` in `put.rs`; the
//! module framework, DDI, zones, locks and `ptms_conf` in `ddi.rs`. Beside
//! them the model's stream head (`head.rs`), its `pts` (`pts.rs`), the
//! per-world state (`world.rs`) and the multi-threaded mode (`mt.rs`).
//!
//! ## Using it
//!
//! ```no_run
//! use ptm_sim::{Pty, World, variants, O_RDWR, UNLKPT};
//! for v in variants() {
//!     let mut w = World::new(v).expect("load");
//!     let m = w.open_manager(O_RDWR).unwrap();
//!     w.ioctl(m, UNLKPT, &[]).unwrap();
//!     let minor = w.minor_of(m).unwrap();
//!     let s = w.open_subsidiary(minor, O_RDWR).unwrap();
//!     assert_eq!(w.write(m, b"hi").unwrap(), 2);
//!     assert_eq!(w.read(s, 10).unwrap(), b"hi");
//!     let report = w.finish().unwrap(); // closes everything, checks leaks
//!     println!("{}", report.trace.join("\n"));
//! }
//! ```
//!
//! The operations are those of [`Pty`]; where they live:
//! * `pty.rs`: [`Pty`] for [`World`], and the context, fault and
//!   observation calls that only read or set the world's state;
//! * `open.rs`: opening (clone, device node, `/dev/pts` with its
//!   visibility and permission rules, ptm pushed as a module) and closing;
//! * `io.rs`: `write`, `putpmsg`, `read`, a raw message sent down from a
//!   stream head, `poll`;
//! * `ioctl.rs`: `I_STR` and transparent ioctls, `I_FLUSH`,
//!   `I_FLUSHBAND`;
//! * `modload.rs`: `_init`/`_info`/attach and `_fini`;
//! * `observe.rs`: queues, leaks, and [`World::finish`] (close every fd,
//!   drain, check for leaks and anomalies, unload);
//! * `scratch.rs`, `mt.rs`: the model's own test support and its
//!   multi-threaded mode.
//!
//! ## Semantics and decisions
//!
//! * Scheduling is deterministic: after every operation the service lists
//!   run until nothing is enabled, the operation's own stream first, then
//!   the other streams in creation order. Between the chunks of one `write`
//!   only the writer's own stream is serviced (illumos runs it inline; the
//!   peer's work would be a background task).
//! * Single-threaded: a call that would sleep with nothing left to wake it
//!   returns [`Errno::BLOCKED`] (a blocking read on an empty stream, a
//!   blocking write against a full queue, a transparent ioctl nobody
//!   answers). An `I_STR` ioctl nobody answers times out: `ETIME`.
//! * `allocb` buffers are filled with 0xbb, not zeroed. Stream-head
//!   allocations (user data, ioctl blocks, `I_FLUSH` messages) are counted
//!   for leaks but are not `allocb` calls: they are never numbered for, nor
//!   failed by, [`Pty::fail_nth_allocb`].
//! * `pt_ttys_alloc` hands out the lowest free minor, from 1.
//! * A close that illumos would block for up to 15 s (data left on a
//!   driver's write queue) proceeds at once and leaves a `Note` in the trace.
//! * Driver misbehaviour that would crash or hang a kernel (use of a freed
//!   message or queue, double free, `putnext` off the end of a stream,
//!   recursive `mutex_enter`, ...) is recorded as an anomaly;
//!   [`World::finish`] fails when there is any. `cv_wait` in single-threaded
//!   mode can never return and aborts the process with a message.
//!   `zone_rele(NULL)` is a [`TraceEvent::NullZoneRele`] event.
//! * Worlds of the same variant are serialised across threads (the drivers
//!   have process-wide statics); different variants run in parallel.

#![allow(clippy::missing_safety_doc)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod backend;
mod ddi;
mod head;
mod io;
mod ioctl;
mod link;
mod modload;
mod msg;
mod mt;
mod observe;
mod open;
mod pts;
mod pty;
mod put;
mod queue;
mod sched;
mod scratch;
mod symbols;
mod syscall;
mod variant;
mod world;

use std::sync::Arc;

pub use backend::{MODEL, ModelBackend};
pub use ddi::{driverops_addr, register_driverops_alias};
pub use mt::ThreadState;
/// The ABI bindings (`ptm::sys`), for tests that call kernel functions.
pub use ptm::sys;
/// The userland krtld the loaded variants use.
pub use ptm_kload;
/// The scenario API this world implements, and the types and constants it
/// shares with the real-code world.
pub use ptm_scenario::{
    Backend, Cred, Driver, Errno, FLUSHR, FLUSHRW, FLUSHW, Fd, ISPTM, IocReply, Leaks, MinorNode,
    MsgDesc, O_NDELAY, O_NOCTTY, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, OWNERPT, PTM_MAJOR,
    PTS_MAJOR, PTSSTTY, PollBits, PtsNode, Pty, QueueInfo, Report, TCGETS, TIOCGWINSZ, TIOCSWINSZ,
    TTY_GID, TraceEvent, UNLKPT, ZONEPT, ioctl_name, mtype_name,
};
pub use symbols::kernel_symbols;
pub use variant::{
    C_KOBJ, C_REFERENCE, RUST_DRIVER, RUST_KMOD, kmod_path, load_kernel_image, load_kernel_module,
    loaded_c_object, loaded_rust_module,
};
pub use variant::{EntryFn, InfoFn, Variant, c_reference, require_c_oracle, rust_driver, variants};
pub use world::StreamKind;

use variant::VariantLock;
use world::{Core, Enter};

/// `strmsgsz`: the largest ioctl payload / message.
const STRMSGSZ: usize = 65536;

/// One simulated machine with one driver variant loaded in it.
///
/// A world is single-threaded and deterministic unless it was made with
/// [`World::new_threaded`] (see the `mt` section of the crate
/// documentation): then [`World::handle`] gives more handles on the same
/// world for other threads.
pub struct World {
    core: Arc<Core>,
    variant: Variant,
    /// The worker threads (multi-threaded mode; owned by the handle that
    /// created the world, which stops them when dropped).
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl World {
    /// Creates a world and loads `variant` into it as the kernel does
    /// (modctl's `mod_load`, then `modinstall`, then the first open's
    /// attach): `_info` first, asked for the module's linkage, then
    /// `_init`, then `devo_attach`; see the `modload` module.
    pub fn new(variant: Variant) -> Result<World, String> {
        let lock = VariantLock::acquire(variant.key());
        let w = World {
            core: Arc::new(Core::new(variant.name, false, lock)),
            variant,
            workers: Vec::new(),
        };
        {
            let _e = Enter::new(&w.core);
            modload::load(w.variant)?;
        }
        Ok(w)
    }

    /// The model's variant of this world: its entry points (the scenario
    /// API's [`Pty::variant`] gives its name and driver).
    pub fn model_variant(&self) -> Variant {
        self.variant
    }

    /// Runs `f` with this world current, then checks the invariants that
    /// must hold between system calls.
    fn op<R>(&mut self, f: impl FnOnce(&mut World) -> R) -> R {
        let core: *const Core = &*self.core;
        // SAFETY: `core` is owned (Arc) by `self` and outlives the guard.
        let _e = Enter::new(unsafe { &*core });
        if self.core.mt.is_some() {
            return mt::op(self, f);
        }
        let r = f(self);
        world::with(|s| {
            if !s.held_mutexes.is_empty() {
                let n = s.held_mutexes.len();
                s.held_mutexes.clear();
                s.anomaly(format!(
                    "{n} mutex(es) still held at the end of a system call"
                ));
            }
            let bad: Vec<u32> = s
                .slots
                .iter()
                // SAFETY: slots hold live pt_ttys of this world.
                .filter(|(_, p)| unsafe { (***p).pt_refcnt } != 0)
                .map(|(m, _)| *m)
                .collect();
            for m in bad {
                s.anomaly(format!(
                    "pt_refcnt of minor {m} not 0 at the end of a system call"
                ));
            }
        });
        r
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Stops the workers (multi-threaded mode, creating handle only);
        // everything of the world is released with its last reference
        // (`Core`'s Drop).
        mt::stop_workers(self);
    }
}
