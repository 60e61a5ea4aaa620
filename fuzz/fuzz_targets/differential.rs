//! Fuzz target `differential`: the fuzzer's bytes decode into a sequence of
//! ptm operations (`ptm_scenario::ops::decode`, 4 bytes per op, every input
//! valid), which runs in the model world against the C oracle and every
//! other driver variant in the build; the traces must be equal
//! (`ptm_scenario::ops::compare`, with the one documented OWNERPT
//! difference).
//!
//! The first byte picks how an OWNERPT on a pty whose zone is gone is
//! handled: even, skipped (everything compared exactly); odd, run — the
//! oracle must show the C behaviour and the others C's or Rust's — and the
//! sequence stops there. Needs `PTM_REFERENCE_C` at build time.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ptm_scenario::ops::{self, RunConfig, ZoneGone};
use ptm_sim::MODEL;

/// Longest sequence run (longer inputs are cut).
const MAX_OPS: usize = 64;

fuzz_target!(|data: &[u8]| {
    if ptm_sim::c_reference().is_none() {
        panic!("build the fuzz target with PTM_REFERENCE_C=<path to illumos ptm.c>");
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let seq = ops::decode(rest, MAX_OPS);
    let cfg = RunConfig {
        zone_gone: if mode & 1 == 0 {
            ZoneGone::Skip
        } else {
            ZoneGone::RunAndStop
        },
    };
    if let Err(e) = ops::differential(&MODEL, &seq, cfg) {
        panic!(
            "differential failure ({cfg:?}); {} ops:\n{}\n{e}",
            seq.len(),
            ops::show_ops(&seq)
        );
    }
});
