//! Differential property tests: random op sequences ([`crate::ops`]) run
//! against the C oracle and every other driver variant of a backend; the
//! traces must be equal (with the one documented difference handled as
//! [`ops::compare`] describes).
//!
//! * Deterministic: every property draws from a ChaCha RNG seeded from
//!   `PTM_DIFF_SEED` (default `DEFAULT_SEED`) plus the property's number;
//!   the seed is printed (the test harness does not capture output) and is
//!   part of every failure message.
//! * `PROPTEST_CASES=N` sets the number of cases of *each* property (the
//!   default adds up to 10,000+ sequences per `cargo test`, about a minute on
//!   two cores; see each property's default below).
//! * A failure is shrunk (ops removed, operands simplified) to a minimal
//!   sequence, printed one op per line with the seed and both traces.
//! * Without `PTM_REFERENCE_C` the differential properties print
//!   `SKIPPED: PTM_REFERENCE_C not set (differential)` and pass; the
//!   Rust-only property (no leaks, no anomalies, deterministic) still runs,
//!   on the backend's first Rust variant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::ops::{
    self, FdRef, OP_BYTES, Op, OwnerArg, RunConfig, ZONES, ZoneArg, ZoneGone, show_ops,
};
use crate::{Backend, Cred, Driver, Test};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// The default seed ("ptm diff" in ASCII).
const DEFAULT_SEED: u64 = 0x7074_6d20_6469_6666;

fn seed() -> u64 {
    match std::env::var("PTM_DIFF_SEED") {
        Ok(s) => {
            let s = s.trim();
            let v = match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            };
            v.unwrap_or_else(|_| panic!("PTM_DIFF_SEED={s}: not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// A runner whose RNG is ChaCha seeded from `seed` and the property number.
fn runner(seed: u64, prop: u64, cases: u32) -> TestRunner {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        let word = if i < 8 {
            seed
        } else {
            prop.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64
        };
        *b = (word >> ((i % 8) * 8)) as u8;
    }
    let config = Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        failure_persistence: None,
        // Shrinking re-runs every variant; keep it bounded.
        max_shrink_iters: 2048,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Sequences of about `min_ops..=max_ops` ops decoded from random bytes
/// (the same decoder as the fuzz target). Each op is an `Option` that is
/// almost always `Some`: the shrinker can then drop any op (`None`) even
/// below `min_ops`, besides dropping ops from the end of the vector and
/// lowering their bytes, so a failure shrinks to the few ops it needs.
fn op_seq(min_ops: usize, max_ops: usize) -> impl Strategy<Value = Vec<Op>> {
    vec(
        proptest::option::weighted(0.98, any::<[u8; OP_BYTES]>()),
        min_ops..=max_ops,
    )
    .prop_map(|v| v.into_iter().flatten().map(Op::from_bytes).collect())
}

/// Ops decoded from bytes, droppable by the shrinker as in [`op_seq`].
fn some_ops(range: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Op>> {
    vec(
        proptest::option::weighted(0.98, any::<[u8; OP_BYTES]>()),
        range,
    )
    .prop_map(|v| v.into_iter().flatten().map(Op::from_bytes).collect())
}

/// How to run property `name` again with `seed` and `cases` on backend
/// `b`.
fn reproduce(b: &dyn Backend, name: &str, seed: u64, cases: u32) -> String {
    format!(
        "PTM_DIFF_SEED={seed:#x} PROPTEST_CASES={cases}, test differential::{name} in the {} world",
        b.name()
    )
}

/// Runs property `prop` (number `n`): `check` on each generated sequence;
/// on failure prints the seed and the shrunk sequence and panics.
fn property<S: Strategy<Value = Vec<Op>>>(
    b: &dyn Backend,
    name: &str,
    n: u64,
    default_cases: u32,
    strategy: S,
    check: impl Fn(&[Op]) -> Result<(), String>,
) {
    let seed = seed();
    let cases = cases(default_cases);
    println!(
        "differential {name}: seed {seed:#x}, {cases} cases (reproduce: {})",
        reproduce(b, name, seed, cases)
    );
    let start = Instant::now();
    let mut r = runner(seed, n, cases);
    let result = r.run(&strategy, |ops| check(&ops).map_err(TestCaseError::fail));
    match result {
        Ok(()) => println!(
            "differential {name}: {cases} sequences passed in {:.1} s",
            start.elapsed().as_secs_f64()
        ),
        Err(TestError::Fail(reason, ops)) => {
            let msg = format!(
                "differential {name} FAILED (seed {seed:#x}, property {n}; reproduce with \
                 {})\nminimal failing sequence ({} ops):\n{}\n{reason}",
                reproduce(b, name, seed, cases),
                ops.len(),
                show_ops(&ops)
            );
            eprintln!("{msg}");
            panic!("{msg}");
        }
        Err(TestError::Abort(why)) => panic!("differential {name} aborted (seed {seed:#x}): {why}"),
    }
}

fn oracle_or_skip(b: &dyn Backend) -> bool {
    let vs = b.variants();
    if !vs.first().is_some_and(|v| v.is_c_ptm()) {
        println!("SKIPPED: PTM_REFERENCE_C not set (differential)");
        return false;
    }
    let names: Vec<&str> = vs.iter().map(|v| v.name).collect();
    println!(
        "differential: {} world, variants {names:?}, the first is the oracle",
        b.name()
    );
    true
}

fn general(b: &dyn Backend, name: &str, n: u64, default_cases: u32, min: usize, max: usize) {
    if !oracle_or_skip(b) {
        return;
    }
    property(b, name, n, default_cases, op_seq(min, max), |ops| {
        ops::differential(b, ops, RunConfig::default()).map(|_| ())
    });
}

// The general properties: every op kind, zone removal included (an OWNERPT
// on a pty whose zone is gone is skipped by the interpreter, see
// `crate::ops`). Split by sequence length so they run in parallel.
// By default these three run 18,000 sequences, the two below 1,500 more
// (about 30 s on two cores with four variants).

pub fn short_sequences(b: &dyn Backend) {
    general(b, "short_sequences", 1, 10_000, 1, 12);
}

pub fn medium_sequences(b: &dyn Backend) {
    general(b, "medium_sequences", 2, 5_000, 8, 32);
}

pub fn long_sequences(b: &dyn Backend) {
    general(b, "long_sequences", 3, 3_000, 24, 64);
}

/// The deliberate difference itself: a random prefix, then a pty moved into
/// a zone that is then halted, random ops that keep that pty open, and an
/// OWNERPT (or grantpt) on it. The C oracle must show `zone_rele(NULL)`,
/// the others that or the Rust EINVAL; everything before it must be equal.
pub fn ownerpt_on_a_vanished_zone(b: &dyn Backend) {
    if !oracle_or_skip(b) {
        return;
    }
    let runs = AtomicUsize::new(0);
    let hits = AtomicUsize::new(0);
    let strategy = (
        some_ops(0..12),
        0..ZONES.len(),
        some_ops(0..10),
        (0u8..4, any::<u8>()),
        some_ops(0..4),
    )
        .prop_map(|(pre, z, mid, (how, ids), post)| {
            let z = ZONES[z];
            let mut v = pre;
            v.extend([
                Op::SetCred(Cred::root()),
                Op::OpenManager {
                    noctty: false,
                    nonblock: true,
                    ndelay: false,
                },
                Op::AddZone(z),
                Op::Zonept(FdRef::Manager(0), ZoneArg::Id(z)),
                Op::RemoveZone(z),
            ]);
            // Keep the newest manager open and newest.
            v.extend(mid.into_iter().filter(|op| {
                !matches!(
                    op,
                    Op::Close(_)
                        | Op::OpenManager { .. }
                        | Op::OpenPair { .. }
                        | Op::AddZone(_)
                        | Op::Inject { .. }
                )
            }));
            let (u, g) = (
                ops::OWNER_IDS[ids as usize % 10],
                ops::OWNER_IDS[ids as usize / 10 % 10],
            );
            v.push(match how {
                0 => Op::Ownerpt(FdRef::Manager(0), OwnerArg::Ids(u, g)),
                1 => Op::Ownerpt(FdRef::Manager(0), OwnerArg::Split(u, g)),
                2 => Op::Ownerpt(FdRef::Manager(0), OwnerArg::Ids(1000, 7)),
                _ => Op::Grantpt(FdRef::Manager(0)),
            });
            v.extend(post);
            v
        });
    let cfg = RunConfig {
        zone_gone: ZoneGone::RunAndStop,
    };
    property(b, "ownerpt_on_a_vanished_zone", 4, 1_000, strategy, |ops| {
        let oracle = ops::differential(b, ops, cfg)?;
        runs.fetch_add(1, Ordering::Relaxed);
        if oracle.divergence.is_some() {
            hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let (runs, hits) = (runs.load(Ordering::Relaxed), hits.load(Ordering::Relaxed));
    println!(
        "ownerpt_on_a_vanished_zone: the difference was reached in {hits} of {runs} sequences"
    );
    assert!(
        hits * 2 >= runs,
        "the generator should reach the vanished-zone OWNERPT in most sequences: {hits}/{runs}"
    );
}

/// Without the oracle too: the Rust driver alone (the backend's first Rust
/// variant) leaks nothing, records no anomaly (not even the one ptm.c
/// leaves when it frees a pty with PTSTTY set: the Rust driver clears it)
/// and is deterministic (the same sequence twice gives the same trace).
pub fn rust_driver_alone_is_clean_and_deterministic(b: &dyn Backend) {
    let Some(v) = b.variants().into_iter().find(|v| v.driver == Driver::Rust) else {
        println!("SKIPPED: no Rust variant in the {} world", b.name());
        return;
    };
    property(
        b,
        "rust_driver_alone_is_clean_and_deterministic",
        5,
        500,
        op_seq(1, 48),
        |ops| {
            let cfg = RunConfig::default();
            let a = ops::run_variant(b, v, ops, cfg);
            let own = !a.anomalies.is_empty();
            if !a.segmented {
                return Err(format!(
                    "the world trace could not be cut per op\n{}",
                    a.text()
                ));
            }
            if !a.leaks.is_clean() || own {
                return Err(format!(
                    "[{}] leaks {:?}, anomalies {:?}\n{}",
                    a.variant,
                    a.leaks,
                    a.anomalies,
                    a.text()
                ));
            }
            let b = ops::run_variant(b, v, ops, cfg);
            ops::compare(&a, &b).map_err(|e| format!("not deterministic: {e}"))
        },
    );
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    named_tests![
        "differential";
        short_sequences,
        medium_sequences,
        long_sequences,
        ownerpt_on_a_vanished_zone,
        rust_driver_alone_is_clean_and_deterministic,
    ]
}
