//! The multi-threaded mode (opt-in: [`World::new_threaded`]).
//!
//! * **Threads.** One world is shared (`Arc`) by every thread taking part:
//!   user threads, each with its own [`World`] handle ([`World::handle`]),
//!   and N service worker threads. Each of them installs the shared world
//!   as its current world while it works in it.
//! * **World lock.** The simulator's state and the raw STREAMS structures
//!   (queues, message lists, flags) are guarded by one reentrant world lock,
//!   held only inside simulator functions and never across a call into
//!   driver code (see `world.rs`). STREAMS functions (`putq`, `getq`,
//!   `flushq`, `canput`, `qenable`, `qprocson`, ...) are thereby atomic with
//!   respect to each other.
//! * **Kernel locks.** `mutex_enter`/`mutex_exit` are real, blocking,
//!   owner-checked locks on the `kmutex_t` word; `cv_wait` sleeps until a
//!   `cv_broadcast`/`cv_signal` of that condition variable (see `ddi.rs`).
//! * **Scheduler.** `qenable` appends to the world's run queue; the workers
//!   take queues off it and run them as `runservice` does. `QENAB` /
//!   `QINSERVICE` guarantee a queue is never on the run queue twice nor run
//!   by two workers at once; `QWCLOSE` (set by `qprocsoff`) stops it from
//!   running again. The system calls never run service procedures
//!   themselves here.
//! * **Put procedures** run in the calling thread (`putnext`), with a claim
//!   on the target pair taken under the same hold of the world lock in which
//!   `q_next` was read. `qprocsoff` unlinks the pair and then waits until no
//!   put or service procedure of it is running; the last close of a stream
//!   waits for all of its pairs before freeing them.
//! * **Blocking system calls** sleep until the stream head changes (every
//!   put or service procedure that finishes wakes them) and re-check:
//!   a read with no data (until data, a hangup or an error), a write against
//!   flow control, an ioctl waiting for its ACK (I_STR: ETIME after 15 s).
//!   Reads and writes give up after 20 s with [`Errno::BLOCKED`].
//! * **Descriptors.** A user thread must not close an fd while another
//!   thread is in a system call on it (the simulator holds no file
//!   reference across a call, unlike a kernel).
//! * **Checks.** At the end of each system call: no kernel mutex is still
//!   held by the calling thread (the per-call `pt_refcnt == 0` check of the
//!   single-threaded mode does not hold with other threads in flight; see
//!   [`World::pt_refcnts`] at a quiescent point instead).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::queue::QPair;
use crate::sched;
use crate::variant::VariantLock;
use crate::world::{self, Core, Enter};
use crate::{Arc, Variant, World, modload};

/// How long an `I_STR` ioctl waits for its ACK (illumos: 15 s by default).
pub(crate) const IOCTL_WAIT: Duration = Duration::from_secs(15);
/// How long a blocking read or write waits before it reports BLOCKED.
const WAIT_LIMIT: Duration = Duration::from_secs(20);
/// How long the teardown of a stream waits for its procedures.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(20);

/// What one thread of a multi-threaded world is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadState {
    /// The thread's name (`std::thread::Builder::name`).
    pub name: String,
    /// Its last recorded activity (a system call, a wait, a mutex it is
    /// blocked on, the service procedure a worker runs, ...).
    pub activity: String,
}

/// The multi-threaded body of `World::op`.
pub(crate) fn op<R>(w: &mut World, f: impl FnOnce(&mut World) -> R) -> R {
    world::set_activity(|| "in a system call".into());
    let r = f(w);
    let me = world::thread_token();
    world::with(|s| {
        let mine: Vec<usize> = s
            .held_mutexes
            .iter()
            .filter(|&(_, &o)| o == me)
            .map(|(&m, _)| m)
            .collect();
        if !mine.is_empty() {
            for m in &mine {
                s.held_mutexes.remove(m);
            }
            s.anomaly(format!(
                "{} mutex(es) still held at the end of a system call",
                mine.len()
            ));
        }
    });
    world::set_activity(|| "between system calls".into());
    r
}

/// Multi-threaded mode: waits until no put or service procedure of the
/// stream's pairs runs (before they are freed). No-op single-threaded.
pub(crate) fn wait_stream_idle(pairs: &[*mut QPair]) {
    if !world::is_mt() {
        return;
    }
    for &p in pairs {
        if !sched::wait_pair_idle(p, "stream teardown", TEARDOWN_LIMIT) {
            world::anomaly(format!(
                "stream teardown waited {} s for running procedures",
                TEARDOWN_LIMIT.as_secs()
            ));
        }
    }
}

/// After a system call found it must wait: single-threaded, `cond` is
/// checked once (the caller has run the service lists); multi-threaded, it
/// is re-checked whenever a procedure finishes, for up to 20 s.
pub(crate) fn settle(what: &str, cond: impl FnMut() -> bool) -> bool {
    world::wait_for(what, WAIT_LIMIT, cond)
}

/// [`settle`] with an explicit limit.
pub(crate) fn settle_for(what: &str, limit: Duration, cond: impl FnMut() -> bool) -> bool {
    world::wait_for(what, limit, cond)
}

/// Stops and joins the workers of a world's creating handle.
pub(crate) fn stop_workers(w: &mut World) {
    if w.workers.is_empty() {
        return;
    }
    if let Some(m) = w.core.mt.as_ref() {
        m.shutdown.store(true, Ordering::Release);
        m.work.bump();
    }
    for h in w.workers.drain(..) {
        let _ = h.join();
    }
}

/// Multi-threaded mode: waits until no service procedure is enabled or
/// running and no put procedure runs. No-op single-threaded.
pub(crate) fn quiesce_world(w: &mut World) -> bool {
    if w.core.mt.is_none() {
        return true;
    }
    let _e = Enter::new(&w.core);
    world::wait_for("quiesce", Duration::from_secs(30), sched::world_idle)
}

impl World {
    /// Creates a multi-threaded world (see the `mt` module documentation)
    /// with `workers` service worker threads (at least 1), and loads
    /// `variant` into it as [`World::new`] does.
    pub fn new_threaded(variant: Variant, workers: usize) -> Result<World, String> {
        let lock = VariantLock::acquire(variant.key());
        let mut w = World {
            core: Arc::new(Core::new(variant.name, true, lock)),
            variant,
            workers: Vec::new(),
        };
        {
            let _e = Enter::new(&w.core);
            world::set_activity(|| "loading the driver".into());
            modload::load(w.variant)?;
        }
        for i in 0..workers.max(1) {
            let core = Arc::clone(&w.core);
            let h = std::thread::Builder::new()
                .name(format!("ptm-sim worker {i}"))
                .spawn(move || {
                    let _e = Enter::new(&core);
                    sched::worker_loop();
                })
                .map_err(|e| format!("spawning a worker: {e}"))?;
            w.workers.push(h);
        }
        Ok(w)
    }

    /// Whether this world is multi-threaded.
    pub fn is_threaded(&self) -> bool {
        self.core.mt.is_some()
    }

    /// Another handle on this multi-threaded world, for another thread (it
    /// shares the fds, the streams and everything else). Panics on a
    /// single-threaded world. The world lives until its last handle is
    /// dropped; the workers stop when the creating handle is dropped.
    pub fn handle(&self) -> World {
        assert!(
            self.is_threaded(),
            "World::handle needs a world made by World::new_threaded"
        );
        World {
            core: Arc::clone(&self.core),
            variant: self.variant,
            workers: Vec::new(),
        }
    }

    /// Multi-threaded mode: waits (up to 30 s) until no service procedure is
    /// enabled or running and no put procedure runs; returns whether it got
    /// there. Only meaningful while no user thread is in a system call.
    pub fn quiesce(&mut self) -> bool {
        quiesce_world(self)
    }

    /// What every thread of a multi-threaded world (workers and user
    /// threads that made calls) is doing now; for a watchdog's dump. Does
    /// not take the world lock.
    pub fn thread_states(&self) -> Vec<ThreadState> {
        let Some(m) = self.core.mt.as_ref() else {
            return Vec::new();
        };
        let a = m.activity.lock().unwrap_or_else(|e| e.into_inner());
        a.values()
            .map(|(name, activity)| ThreadState {
                name: name.clone(),
                activity: activity.clone(),
            })
            .collect()
    }

    /// Turns the recording of trace events on or off (a long stress run
    /// turns it off to bound memory).
    pub fn set_tracing(&mut self, on: bool) {
        self.core.st.borrow_mut().tracing = on;
    }

    /// `(minor, pt_refcnt, pt_lock held)` of every allocated pty.
    pub fn pt_refcnts(&self) -> Vec<(u32, i32, bool)> {
        let s = self.core.st.borrow();
        s.slots
            .iter()
            .map(|(&m, &p)| {
                // SAFETY: slots hold live entries; read under the world lock
                // (the lock word is read atomically).
                unsafe {
                    let held =
                        std::sync::atomic::AtomicU64::from_ptr(&raw mut (*p).pt_lock as *mut u64)
                            .load(Ordering::Relaxed)
                            != 0;
                    (m, (*p).pt_refcnt, held)
                }
            })
            .collect()
    }

    /// Kernel mutexes held now: `(address, owner thread token)`.
    pub fn held_mutexes(&self) -> Vec<(usize, u64)> {
        let s = self.core.st.borrow();
        let mut v: Vec<(usize, u64)> = s.held_mutexes.iter().map(|(&a, &o)| (a, o)).collect();
        v.sort();
        v
    }
}

/// The stress test's view of a multi-threaded world (`ptm-scenario`'s
/// `stress` module): the methods above.
impl ptm_scenario::stress::ThreadedPty for World {
    fn handle(&self) -> Box<dyn ptm_scenario::stress::ThreadedPty> {
        Box::new(World::handle(self))
    }

    fn quiesce(&mut self) -> bool {
        World::quiesce(self)
    }

    fn pt_refcnts(&self) -> Vec<(u32, i32, bool)> {
        World::pt_refcnts(self)
    }

    fn held_locks(&self) -> Vec<String> {
        self.held_mutexes()
            .into_iter()
            .map(|(addr, owner)| format!("mutex {addr:#x} held by thread token {owner}"))
            .collect()
    }

    fn thread_states(&self) -> Vec<String> {
        World::thread_states(self)
            .into_iter()
            .map(|t| format!("[{}] {}", t.name, t.activity))
            .collect()
    }

    fn set_tracing(&mut self, on: bool) {
        World::set_tracing(self, on);
    }
}
