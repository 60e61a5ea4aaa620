//! Scenario harness: runs a scenario against every driver variant in the
//! build, names the variant in any failure, checks for leaks and anomalies at
//! the end, and (when both the C reference and the Rust driver are present)
//! checks that their traces are identical.

#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

pub use ptm_sim::*;

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "(non-string panic)".into()
    }
}

/// Runs `f` in a fresh world of `v`, then `finish()`; returns the trace.
pub fn run_one(name: &str, v: Variant, f: &dyn Fn(&mut World)) -> Vec<String> {
    let mut w = World::new(v).unwrap_or_else(|e| panic!("[{}] {name}: load failed: {e}", v.name));
    let r = catch_unwind(AssertUnwindSafe(|| f(&mut w)));
    if let Err(p) = r {
        let text = panic_text(&p);
        eprintln!(
            "[{}] {name} failed: {text}\n--- trace ---\n{}\n--- anomalies ---\n{:#?}",
            v.name,
            w.trace_lines().join("\n"),
            w.anomalies()
        );
        resume_unwind(Box::new(format!("[{}] {name}: {text}", v.name)));
    }
    match w.finish() {
        Ok(rep) => rep.trace,
        Err(e) => panic!("[{}] {name}: {e}", v.name),
    }
}

fn variants_or_skip(name: &str) -> Vec<Variant> {
    let vs = variants();
    if vs.is_empty() {
        println!("SKIPPED: no driver variant in this build ({name})");
    }
    vs
}

/// A scenario whose outcome must be the same for every variant: each
/// variant runs it, and the traces of all variants must be identical.
pub fn scenario(name: &str, f: impl Fn(&mut World)) {
    if c_reference().is_none() {
        println!("SKIPPED: PTM_REFERENCE_C not set (C-oracle run and trace comparison of {name})");
    }
    let mut first: Option<(&'static str, Vec<String>)> = None;
    for v in variants_or_skip(name) {
        let t = run_one(name, v, &f);
        match &first {
            None => first = Some((v.name, t)),
            Some((n0, t0)) => assert_traces_equal(name, n0, t0, v.name, &t),
        }
    }
}

/// A scenario where the variants deliberately differ: run for each
/// variant, no trace comparison.
pub fn scenario_each(name: &str, f: impl Fn(&mut World)) {
    for v in variants_or_skip(name) {
        run_one(name, v, &f);
    }
}

/// Where two traces first differ, with a few lines of context from each;
/// `None` when they are equal.
pub fn trace_diff(n0: &str, t0: &[String], n1: &str, t1: &[String]) -> Option<String> {
    if t0 == t1 {
        return None;
    }
    let i = t0
        .iter()
        .zip(t1.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(t0.len().min(t1.len()));
    let lo = i.saturating_sub(5);
    Some(format!(
        "traces of [{n0}] and [{n1}] differ at line {i}\n--- {n0} ---\n{}\n--- {n1} ---\n{}",
        t0[lo..(i + 5).min(t0.len())].join("\n"),
        t1[lo..(i + 5).min(t1.len())].join("\n")
    ))
}

pub fn assert_traces_equal(name: &str, n0: &str, t0: &[String], n1: &str, t1: &[String]) {
    if let Some(diff) = trace_diff(n0, t0, n1, t1) {
        panic!("{name}: {diff}");
    }
}

/// Whether the running world runs the C `ptm.c` (the compiled-in reference
/// or the loaded kernel object).
pub fn is_c(w: &World) -> bool {
    w.variant().is_c_ptm()
}

/// Opens a manager and returns (fd, minor).
pub fn manager(w: &mut World) -> (Fd, u32) {
    let m = w.open_manager(O_RDWR).expect("open /dev/ptmx");
    let minor = w.minor_of(m).expect("fstat");
    (m, minor)
}

/// Opens a manager, unlocks it and opens its subsidiary: (manager,
/// subsidiary, minor).
pub fn pair(w: &mut World) -> (Fd, Fd, u32) {
    pair_flags(w, O_RDWR, O_RDWR)
}

pub fn pair_flags(w: &mut World, mflags: i32, sflags: i32) -> (Fd, Fd, u32) {
    let m = w.open_manager(mflags).expect("open /dev/ptmx");
    let minor = w.minor_of(m).expect("fstat");
    w.unlockpt(m).expect("unlockpt");
    let s = w.open_subsidiary(minor, sflags).expect("open subsidiary");
    (m, s, minor)
}

/// Reads everything that can be read without blocking (fd must be
/// non-blocking), up to `max` bytes, in reads of `chunk`.
pub fn drain(w: &mut World, fd: Fd, chunk: usize, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match w.read(fd, chunk) {
            Ok(v) if v.is_empty() => break,
            Ok(v) => out.extend(v),
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("drain: {e}"),
        }
    }
    out
}

pub fn own(uid: u32, gid: u32) -> Vec<u8> {
    let mut v = uid.to_ne_bytes().to_vec();
    v.extend_from_slice(&gid.to_ne_bytes());
    v
}

pub fn zone(z: i32) -> Vec<u8> {
    z.to_ne_bytes().to_vec()
}
