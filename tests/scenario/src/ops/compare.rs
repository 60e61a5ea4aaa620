//! Comparing runs: a variant's trace against the C oracle's, and the
//! differential run of one sequence on every variant of a backend.

use super::{Op, RunConfig, Trace, ZoneGoneOutcome, run_with};
use crate::{Backend, Variant};

/// The equality rule: `other`'s trace must equal the oracle's line for line,
/// except at a [`Divergence`](super::Divergence) (both runs must have one, at the same line),
/// where the oracle must show the C behaviour and `other` the C or the Rust
/// behaviour; the lines after it (closing, leaks) must again be equal.
pub fn compare(oracle: &Trace, other: &Trace) -> Result<(), String> {
    // The Rust driver's second deliberate difference: ptm.c frees a pty
    // that was sent PTSSTTY with PTSTTY still set (an anomaly in the model
    // world, a DEBUG ASSERT on illumos); the Rust driver frees it clean.
    // Only the oracle may show it, and nothing else may differ.
    if other.lines.iter().any(|l| is_ptstty_anomaly(l))
        && !oracle.lines.iter().any(|l| is_ptstty_anomaly(l))
    {
        return Err(format!(
            "[{}] frees a pty with pt_state set where the oracle does not\n{}",
            other.variant,
            other.text()
        ));
    }
    let strip = |t: &Trace| -> Vec<String> {
        t.lines
            .iter()
            .filter(|l| !is_ptstty_anomaly(l))
            .cloned()
            .collect()
    };
    let (a, b) = (&strip(oracle), &strip(other));
    match (&oracle.divergence, &other.divergence) {
        (None, None) => {}
        (Some(d0), Some(d1)) if d0.line == d1.line && a[..d0.line] == b[..d1.line] => {
            if d0.outcome != ZoneGoneOutcome::CNullZoneRele {
                return Err(format!(
                    "[{}] OWNERPT on a pty whose zone is gone: expected the documented C \
                     behaviour (zone_rele(NULL)), got {:?}\n{}",
                    oracle.variant,
                    d0.outcome,
                    oracle.text()
                ));
            }
            if !matches!(
                d1.outcome,
                ZoneGoneOutcome::CNullZoneRele | ZoneGoneOutcome::RustEinval
            ) {
                return Err(format!(
                    "[{}] OWNERPT on a pty whose zone is gone: expected the documented Rust \
                     behaviour (EINVAL) or C's, got {:?}\n{}",
                    other.variant,
                    d1.outcome,
                    other.text()
                ));
            }
            let (ra, rb) = (&a[d0.line + 1..], &b[d1.line + 1..]);
            if ra == rb {
                return Ok(());
            }
            return Err(diff(oracle, other));
        }
        _ => return Err(diff(oracle, other)),
    }
    if a == b {
        Ok(())
    } else {
        Err(diff(oracle, other))
    }
}

/// A readable account of where two traces part.
pub fn diff(t0: &Trace, t1: &Trace) -> String {
    let (a, b) = (&t0.lines, &t1.lines);
    let i = a
        .iter()
        .zip(b.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    // Back up to the op the first difference belongs to.
    let start = a[..i.min(a.len())]
        .iter()
        .rposition(|l| l.starts_with('#'))
        .unwrap_or(0);
    let ctx = |t: &[String]| t[start.min(t.len())..(i + 8).min(t.len())].join("\n");
    format!(
        "traces of [{}] and [{}] differ at line {i}{}\n--- [{}] ---\n{}\n--- [{}] ---\n{}",
        t0.variant,
        t1.variant,
        a.get(start)
            .map(|l| format!(" (in {l})"))
            .unwrap_or_default(),
        t0.variant,
        ctx(a),
        t1.variant,
        ctx(b)
    )
}

/// What [`differential`] returns without a C oracle.
pub const NO_ORACLE: &str = "PTM_REFERENCE_C not set";

/// Runs `ops` in a fresh world of `v` of backend `b`.
pub fn run_variant(b: &dyn Backend, v: Variant, ops: &[Op], cfg: RunConfig) -> Trace {
    let tag = format!(
        "[{} world, {}] op sequence {}",
        b.name(),
        v.name,
        crate::ops::show_ops(ops)
    );
    crate::harness::with_watchdog(b, &tag, || {
        let mut w = b
            .world(v)
            .unwrap_or_else(|e| panic!("[{} world, {}] load failed: {e}", b.name(), v.name));
        w.set_label(&tag);
        run_with(&mut *w, ops, cfg)
    })
}

/// Runs `ops` against the C oracle and every other variant of backend `b`
/// and compares each with the oracle ([`compare`]). Returns the oracle's
/// trace; `Err` with the difference, or [`NO_ORACLE`] when the backend has
/// no C oracle (`PTM_REFERENCE_C` unset).
pub fn differential(b: &dyn Backend, ops: &[Op], cfg: RunConfig) -> Result<Trace, String> {
    let vs = b.variants();
    let oracle_v = *vs.first().filter(|v| v.is_c_ptm()).ok_or(NO_ORACLE)?;
    let oracle = run_variant(b, oracle_v, ops, cfg);
    for &v in &vs[1..] {
        let t = run_variant(b, v, ops, cfg);
        compare(&oracle, &t)?;
    }
    Ok(oracle)
}

/// The anomaly ptm.c's manager close leaves when it frees a pty that was
/// sent PTSSTTY (see [`compare`]).
fn is_ptstty_anomaly(l: &str) -> bool {
    l.starts_with("end: anomaly: ptms_close frees minor") && l.ends_with("with pt_state still set")
}
