//! The concurrency stress test, written once for both worlds: real threads
//! making system calls at random on a set of ptys in a world whose kernel
//! runs them concurrently (the model's multi-threaded mode, the real-code
//! world's threaded mode with illumos's own stream head, pts and
//! ptms_conf).
//!
//! Several user threads work on a set of pty "slots" at random (seeded RNG;
//! the seed is printed; `PTM_STRESS_SEED` replays a schedule of choices,
//! though thread interleavings are not reproducible). Each slot has a
//! manager half and a subsidiary half, each behind its own mutex, so one
//! thread may write the manager while another reads, flushes, reopens or
//! closes the subsidiary of the same pty. A thread holding one half only
//! touches that half's fds (neither world may see an fd closed while
//! another call on it is in flight). Reads and writes use `O_NONBLOCK`
//! (EAGAIN is retried later); ioctls and I_FLUSH block for their ACK.
//! Only ioctls that cannot legitimately stall are used: a forwarded ioctl
//! is an ordinary message and queues behind flow-controlled data, so a
//! manager waiting on one while the subsidiary waits on another, each
//! behind the other's unread data, both time out after 15 s (ETIME) --
//! correct behaviour, which the watchdog found in the first version of
//! this test. Hence: the manager issues ISPTM (answered by ptm), the
//! subsidiary TCGETS (forwarded), and every I_FLUSH includes FLUSHW.
//!
//! A pty's life races its two ends against each other: a step opens the
//! manager (clone open, UNLKPT) and leaves the pty *pending*; the
//! subsidiary's holder opens the subsidiary in a later step while the
//! manager's holder may already write, flush, ioctl, poll or close. Once
//! open, the subsidiary's holder also opens its subsidiary a second time,
//! reads through that fd and closes it (pts's reopen of an open stream,
//! and a close that is not the last), and either end's holder closes its
//! end. So manager writes, whose put procedure looks at the subsidiary's
//! queue and PTLOCK without a lock, run against the subsidiary's open,
//! which publishes that queue, and its last close, which clears it.
//!
//! Invariants checked throughout:
//! * data: 16-byte records carrying (session, direction, sequence,
//!   checksum); a reader sees each direction's records intact, of its own
//!   session, in strictly increasing order; a gap is allowed only if a flush
//!   of that pty ended after the first missing record was written, is in
//!   progress, or the writer's end was closed (manager → subsidiary data
//!   dies with the manager). Subsidiary → manager data must arrive in full
//!   by the end of the subsidiary's close: before the zero-length read,
//!   except the one message pts's service procedure may hold while the
//!   close drains (see `closing::after_subsidiary_close`); records that
//!   arrive once the close has begun may be out of order.
//! * the manager may find its stream write-dead (ptm's M_ERROR: EINVAL on
//!   write, ioctl and I_FLUSH, POLLERR on poll) only after it wrote while
//!   the subsidiary's open had not returned, or once the subsidiary's last
//!   close has begun; never otherwise;
//! * every manager close gives the open subsidiary a hangup (POLLHUP, reads
//!   of 0 once the queue is drained, writes refused) -- unless an open of
//!   the subsidiary returned after the manager's close began: illumos then
//!   loses the hangup in two ways, both of pts and the stream head, not of
//!   ptm (see `closing::wait_for_hangup`), and the run counts them;
//! * an open of a pending pty's subsidiary succeeds, unless the manager's
//!   close has begun;
//! * every last subsidiary close gives the manager exactly one
//!   zero-length read (possibly taken by an ordinary read of the manager
//!   that raced with the close: it is not expected twice);
//! * no ioctl or flush times out (a lost ACK) and no call reports BLOCKED;
//! * at the end: after quiescing, every pty has `pt_refcnt` 0 and `pt_lock`
//!   free and no kernel mutex is held; then all is closed and the world's
//!   `finish` finds no leak (mblks, dblks, pt_ttys, zone holds, streams)
//!   and no anomaly; in the real-code world, illumos's code is compiled
//!   with DEBUG, and a failed ASSERT ends the test process at once;
//! * no deadlock: the main thread is the watchdog; when the run does not end
//!   within its time bound it fails with a dump of what every user and
//!   kernel thread is doing.
//!
//! `PTM_STRESS_SECS=n` makes the long version (`make stress`) run for about
//! n seconds per variant instead of a fixed number of operations.

mod closing;
mod ops;
mod records;
mod run;

use std::time::Duration;

pub use run::run;

use crate::api::{Backend, Pty, Variant};

/// A world whose system calls may be made from several threads at once
/// (one handle per thread).
pub trait ThreadedPty: Pty + Send {
    /// Another handle on this world, for another thread.
    fn handle(&self) -> Box<dyn ThreadedPty>;
    /// Waits until no service procedure is enabled or running and no
    /// background work is due; whether it got there. Only meaningful while
    /// no user thread is in a system call.
    fn quiesce(&mut self) -> bool;
    /// `(minor, pt_refcnt, pt_lock held)` of every allocated pty.
    fn pt_refcnts(&self) -> Vec<(u32, i32, bool)>;
    /// The kernel mutexes held now, described; empty when none is.
    fn held_locks(&self) -> Vec<String>;
    /// What every thread of the world is doing, one line each (for a
    /// watchdog's dump; must not wait for a lock a hung thread may hold).
    fn thread_states(&self) -> Vec<String>;
    /// Turns the recording of the trace on or off (a stress run turns it
    /// off to bound memory and time).
    fn set_tracing(&mut self, on: bool);
}

/// A world kind with threaded worlds.
pub trait ThreadedBackend: Backend {
    /// A fresh threaded world running `v`, with `workers` threads running
    /// service procedures where the world lets the caller choose.
    fn threaded_world(&self, v: Variant, workers: usize) -> Result<Box<dyn ThreadedPty>, String>;
}

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    pub slots: usize,
    pub workers: usize,
    /// Steps per user thread (when `duration` is `None`).
    pub ops_per_thread: usize,
    /// Run for this long instead.
    pub duration: Option<Duration>,
    /// How long past its end (or past its start, for a run of a fixed
    /// number of steps) the watchdog waits before it calls the run hung.
    pub bound: Duration,
}

impl Config {
    /// A bounded run: 6 user threads on 12 ptys, `ops_per_thread` steps
    /// each, hung after `bound`.
    pub fn bounded(ops_per_thread: usize, bound: Duration) -> Config {
        Config {
            threads: 6,
            slots: 12,
            workers: 2,
            ops_per_thread,
            duration: None,
            bound,
        }
    }

    /// A bounded run of the same shape that lasts `duration` instead.
    pub fn bounded_for(duration: Duration, bound: Duration) -> Config {
        Config {
            duration: Some(duration),
            ..Config::bounded(0, bound)
        }
    }

    /// The long run of `make stress`: 8 user threads on 16 ptys for
    /// `PTM_STRESS_SECS` seconds (default 60).
    pub fn long() -> Config {
        let secs = std::env::var("PTM_STRESS_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        Config {
            threads: 8,
            slots: 16,
            workers: 3,
            ops_per_thread: 0,
            duration: Some(Duration::from_secs(secs)),
            bound: Duration::from_secs(60),
        }
    }
}

/// Runs [`run`] on every variant of `b`, one after the other.
pub fn run_all(b: &dyn ThreadedBackend, cfg: &Config) {
    for v in b.variants() {
        run(b, v, cfg);
    }
}

/// The `main` of a stress test binary (`harness = false`): a bounded run
/// (`bounded`) per variant of `b`, named `stress_bounded::<variant>`, and
/// the long run ([`Config::long`], every variant in turn, named
/// `stress_long`, ignored unless asked for), with libtest's command line.
/// A backend that cannot run here prints one `SKIPPED:` line and passes.
pub fn main(b: &'static dyn ThreadedBackend, bounded: Config) -> ! {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    if let Some(why) = b.unavailable() {
        println!("SKIPPED: {why}");
        std::process::exit(0);
    }
    let variants = b.variants();
    if !variants.iter().any(Variant::is_c_ptm) {
        println!("SKIPPED: PTM_REFERENCE_C not set (the C oracle's stress runs)");
    }
    let trial = |name: String, f: Box<dyn FnOnce() + Send>| {
        libtest_mimic::Trial::test(name, move || {
            catch_unwind(AssertUnwindSafe(f)).map_err(|p| crate::harness::panic_text(&p).into())
        })
    };
    let mut trials: Vec<_> = variants
        .into_iter()
        .map(|v| {
            let cfg = bounded.clone();
            trial(
                format!("stress_bounded::{}", v.name),
                Box::new(move || run(b, v, &cfg)),
            )
        })
        .collect();
    trials.push(
        trial(
            "stress_long".into(),
            Box::new(move || run_all(b, &Config::long())),
        )
        .with_ignored_flag(true),
    );
    let args = libtest_mimic::Arguments::from_args();
    libtest_mimic::run(&args, trials).exit()
}
