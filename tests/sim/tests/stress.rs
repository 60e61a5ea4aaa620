//! The concurrency stress test (`ptm_scenario::stress`, whose
//! documentation states every invariant) on the model world's
//! multi-threaded mode. The bounded runs (well under a second each) are
//! part of the default test run; `make stress` runs the long one.

use std::time::Duration;

use ptm_scenario::stress::{Config, run_all, run_named};
use ptm_sim::{C_REFERENCE, MODEL, RUST_DRIVER};

fn bounded() -> Config {
    Config::bounded(5000, Duration::from_secs(30))
}

#[test]
fn stress_rust_driver() {
    run_named(&MODEL, RUST_DRIVER, &bounded());
}

#[test]
fn stress_c_oracle() {
    if ptm_sim::require_c_oracle("stress_c_oracle").is_none() {
        return;
    }
    run_named(&MODEL, C_REFERENCE, &bounded());
}

/// The long version, run by `make stress` (`PTM_STRESS_SECS`, default 60,
/// per variant).
#[test]
#[ignore = "long; run by `make stress`"]
fn stress_long() {
    run_all(&MODEL, &Config::long());
}
