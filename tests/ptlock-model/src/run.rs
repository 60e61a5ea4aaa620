//! Running a check under shuttle: seeded random and PCT schedulers, with the
//! seed and the failing schedule printed on failure, and environment knobs
//! for long runs and replays.
//!
//! * `PTLOCK_MODEL_ITERATIONS=N`: executions per scheduler for every check
//!   (instead of each test's default, chosen to keep the whole suite within
//!   ~20 s). Negative controls keep their own budget unless N is larger.
//! * `PTLOCK_MODEL_SEED=S` (decimal or 0x-hex): the seed of every scheduler
//!   (default: a fixed one per test, so a run is reproducible).
//! * `PTLOCK_MODEL_REPLAY=<schedule>`: replay the (last) schedule a
//!   failure printed, line breaks and all (run the one failing test, by
//!   name, with `--exact`).

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, Runner};

/// The PCT bug depth: bugs that need up to this many ordering constraints
/// (priority change points + 1) are found with good probability.
pub const PCT_DEPTH: usize = 3;

/// Which scheduler a run used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sched {
    /// shuttle's `RandomScheduler`.
    Random,
    /// shuttle's `PctScheduler` with depth [`PCT_DEPTH`].
    Pct,
}

/// What a passing check ran.
#[derive(Clone, Copy, Debug)]
pub struct Ran {
    /// Executions per scheduler.
    pub iterations: usize,
    /// The seed.
    pub seed: u64,
    /// Wall time for both schedulers.
    pub elapsed: Duration,
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

/// Executions per scheduler: `PTLOCK_MODEL_ITERATIONS`, or `default`.
pub fn iterations(default: usize) -> usize {
    env_number("PTLOCK_MODEL_ITERATIONS").map_or(default, |n| n as usize)
}

/// The seed: `PTLOCK_MODEL_SEED`, or `default`.
pub fn seed(default: u64) -> u64 {
    env_number("PTLOCK_MODEL_SEED").unwrap_or(default)
}

/// `PTLOCK_MODEL_REPLAY`, without the line breaks and quotes shuttle's
/// printout puts around the schedule.
fn replay_schedule() -> Option<String> {
    let raw = std::env::var("PTLOCK_MODEL_REPLAY").ok()?;
    let schedule: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect();
    (!schedule.is_empty()).then_some(schedule)
}

/// Runs `f` for `iterations` executions under `sched` seeded with `seed`;
/// returns how many executions ran.
pub fn run_one<F>(sched: Sched, seed: u64, iterations: usize, f: F) -> usize
where
    F: Fn() + Send + Sync + 'static,
{
    let config = Config::default();
    match sched {
        Sched::Random => {
            Runner::new(RandomScheduler::new_from_seed(seed, iterations), config).run(f)
        }
        Sched::Pct => Runner::new(
            PctScheduler::new_from_seed(seed, PCT_DEPTH, iterations),
            config,
        )
        .run(f),
    }
}

/// Model-checks `f`: `iterations(default_iterations)` executions under the
/// random scheduler, then as many under PCT, both seeded with
/// `seed(default_seed)`. On failure, says which scheduler and seed, and how
/// to replay (shuttle has printed the schedule just before), then fails
/// with the original panic.
pub fn check<F>(name: &str, default_iterations: usize, default_seed: u64, f: F) -> Ran
where
    F: Fn() + Send + Sync + Clone + 'static,
{
    let start = Instant::now();
    let seed = seed(default_seed);
    if let Some(schedule) = replay_schedule() {
        eprintln!("ptlock-model: {name}: replaying PTLOCK_MODEL_REPLAY");
        shuttle::replay(f, &schedule);
        return Ran {
            iterations: 1,
            seed,
            elapsed: start.elapsed(),
        };
    }
    let iterations = iterations(default_iterations);
    for sched in [Sched::Random, Sched::Pct] {
        let g = f.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| run_one(sched, seed, iterations, g)));
        if let Err(payload) = result {
            eprintln!(
                "ptlock-model: {name} FAILED under the {sched:?} scheduler, seed {seed:#x}, \
                 {iterations} iterations. Reproduce: PTLOCK_MODEL_SEED={seed:#x} \
                 PTLOCK_MODEL_ITERATIONS={iterations}; or replay the failing execution alone: \
                 PTLOCK_MODEL_REPLAY='<the last schedule shuttle printed above>' and run just \
                 this test with --exact"
            );
            panic::resume_unwind(payload);
        }
    }
    Ran {
        iterations,
        seed,
        elapsed: start.elapsed(),
    }
}

/// What a negative control found.
#[derive(Clone, Debug)]
pub struct Caught {
    /// The failure message.
    pub message: String,
    /// The execution (1-based) that failed.
    pub execution: u64,
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// A negative control: runs `f` under `sched` (seeded, at most
/// `iterations(default)` executions) and returns the failure it must find.
/// Panics if the checker finds nothing.
pub fn expect_failure<F>(
    name: &str,
    sched: Sched,
    default_iterations: usize,
    default_seed: u64,
    f: F,
) -> Caught
where
    F: Fn() + Send + Sync + 'static,
{
    let seed = seed(default_seed);
    let iterations = iterations(default_iterations).max(default_iterations);
    let executions = std::sync::Arc::new(AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&executions);
    let counted = move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        run_one(sched, seed, iterations, counted)
    }));
    match result {
        Ok(ran) => panic!(
            "negative control {name}: the checker found NO failure in {ran} executions \
             ({sched:?}, seed {seed:#x})"
        ),
        Err(payload) => Caught {
            message: panic_message(&*payload),
            execution: executions.load(Ordering::Relaxed),
        },
    }
}
