//! The concurrency stress test (`ptm_scenario::stress`, whose
//! documentation states every invariant) on the real-code world in
//! threaded mode: illumos's own stream head, pts and ptms_conf, compiled
//! with DEBUG (a failed ASSERT ends the process), on real threads beneath
//! each ptm variant. The bounded runs (30 s each) are part of `make test`;
//! `make stress` runs the long one. Without `ILLUMOS_SRC` each test prints
//! one `SKIPPED:` line and passes.

use std::time::Duration;

use ptm_real::REAL;
use ptm_scenario::stress::{Config, run_all, run_named};

/// 30 s of 6 user threads on 12 ptys (about 3 million steps here); hung
/// if not done a minute after that.
fn bounded() -> Config {
    Config::bounded_for(Duration::from_secs(30), Duration::from_secs(60))
}

#[test]
fn stress_c_reference() {
    run_named(&REAL, "C ptm.c (reference)", &bounded());
}

#[test]
fn stress_rust_driver() {
    run_named(&REAL, "Rust ptm", &bounded());
}

#[test]
fn stress_rust_kmod() {
    run_named(&REAL, "Rust kernel module (loaded)", &bounded());
}

#[test]
fn stress_c_kobj() {
    run_named(&REAL, "C ptm.c kernel object (loaded)", &bounded());
}

/// The long version, run by `make stress` (`PTM_STRESS_SECS`, default 60,
/// per variant).
#[test]
#[ignore = "long; run by `make stress`"]
fn stress_long() {
    run_all(&REAL, &Config::long());
}
