//! The positive checks: every scenario, under the random and PCT
//! schedulers, against the driver's Rust guards, the C macros, and the raw
//! re-statement of the protocol the negative controls break.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::sync::Arc;

use ptm_ptlock_model::harness::Checks;
use ptm_ptlock_model::protocol::{Bug, CMacros, Protocol, Raw, RustGuards};
use ptm_ptlock_model::run;
use ptm_ptlock_model::scenario::{self, Coverage, Scenario};

/// Executions per scheduler per test by default.
const ITERATIONS: usize = 10_000;

fn model<P: Protocol + Copy>(p: P, s: Scenario, seed: u64) {
    let coverage = Arc::new(Coverage::default());
    let c = Arc::clone(&coverage);
    let name = format!("{} / {}", s.name, P::NAME);
    let ran = run::check(&name, ITERATIONS, seed, move || {
        scenario::execute(p, &s, Checks::default(), &c)
    });
    let cov = coverage.snapshot();
    eprintln!(
        "ptlock-model: {name}: {} executions per scheduler (random, PCT depth {}), seed {:#x}, \
         {:.2?}; {cov:?}",
        ran.iterations,
        run::PCT_DEPTH,
        ran.seed,
        ran.elapsed
    );
    if ran.iterations > 1 {
        // The checks can only fail if the scenario exercised what they
        // guard: waits, spurious wake-ups, and readers finding both a live
        // queue and a NULL.
        assert_eq!(cov.executions, 2 * ran.iterations as u64, "executions");
        assert!(cov.executions_with_wait > 0, "no task ever waited: {cov:?}");
        assert!(cov.spurious_wakeups > 0, "no spurious wake-up: {cov:?}");
        assert!(cov.queue_uses > 0, "no reader found a queue: {cov:?}");
        assert!(cov.null_reads > 0, "no reader found NULL: {cov:?}");
    }
}

#[test]
fn rust_guards_ptm_traffic_vs_pts_close() {
    model(RustGuards, scenario::PTM_TRAFFIC_VS_PTS_CLOSE, 0x5eed_0101);
}

#[test]
fn rust_guards_pts_traffic_vs_ptm_open_close() {
    model(
        RustGuards,
        scenario::PTS_TRAFFIC_VS_PTM_OPEN_CLOSE,
        0x5eed_0102,
    );
}

#[test]
fn rust_guards_full_lifecycle() {
    model(RustGuards, scenario::FULL_LIFECYCLE, 0x5eed_0103);
}

#[test]
fn c_macros_ptm_traffic_vs_pts_close() {
    model(CMacros, scenario::PTM_TRAFFIC_VS_PTS_CLOSE, 0x5eed_0201);
}

#[test]
fn c_macros_pts_traffic_vs_ptm_open_close() {
    model(
        CMacros,
        scenario::PTS_TRAFFIC_VS_PTM_OPEN_CLOSE,
        0x5eed_0202,
    );
}

#[test]
fn c_macros_full_lifecycle() {
    model(CMacros, scenario::FULL_LIFECYCLE, 0x5eed_0203);
}

/// The raw re-statement without a bug passes too, so the negative controls
/// fail because of their bug and nothing else.
#[test]
fn raw_protocol_without_bug_full_lifecycle() {
    model(Raw(Bug::None), scenario::FULL_LIFECYCLE, 0x5eed_0301);
}
