//! Running scenarios: each against every variant of a backend, traces
//! compared, leaks and anomalies checked; and the test-binary main that
//! runs a list of tests on one backend.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::api::{Backend, Pty, Variant};

pub(crate) fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "(non-string panic)".into()
    }
}

/// How long one world may run before the watchdog calls it stuck:
/// `PTM_SCENARIO_WATCHDOG_SECS`, 600 s by default.
fn watchdog_limit() -> Duration {
    let secs = std::env::var("PTM_SCENARIO_WATCHDOG_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// Runs `f` under a watchdog: if it has not returned after
/// [`watchdog_limit`], the process stops with a message naming `tag` (the
/// world, the variant and what runs) and what the backend says is stuck,
/// rather than leaving `cargo test` hanging on a livelock or deadlock.
pub fn with_watchdog<R>(b: &dyn Backend, tag: &str, f: impl FnOnce() -> R) -> R {
    let limit = watchdog_limit();
    let done = (Mutex::new(false), Condvar::new());
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let start = Instant::now();
            let mut finished = done.0.lock().unwrap_or_else(|e| e.into_inner());
            while !*finished {
                let left = limit.saturating_sub(start.elapsed());
                if left.is_zero() {
                    eprintln!(
                        "\n*** {tag}: watchdog: still running after {} s -- a hang or a \
                         livelock, not a slow test\n--- what is stuck ---\n{}",
                        limit.as_secs(),
                        b.stuck_report()
                    );
                    std::process::exit(101);
                }
                finished = done
                    .1
                    .wait_timeout(finished, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        });
        let r = catch_unwind(AssertUnwindSafe(f));
        *done.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        done.1.notify_all();
        r.unwrap_or_else(|p| resume_unwind(p))
    })
}

/// Runs `f` in a fresh world of `v`, then `finish()`; returns the trace.
/// A failure names the backend, the variant and the scenario, and prints
/// the trace so far; a hang is stopped by [`with_watchdog`].
pub fn run_one(b: &dyn Backend, name: &str, v: Variant, f: &dyn Fn(&mut dyn Pty)) -> Vec<String> {
    let tag = format!("[{} world, {}] {name}", b.name(), v.name);
    with_watchdog(b, &tag, || run_one_inner(b, &tag, v, f))
}

fn run_one_inner(b: &dyn Backend, tag: &str, v: Variant, f: &dyn Fn(&mut dyn Pty)) -> Vec<String> {
    let mut w = b
        .world(v)
        .unwrap_or_else(|e| panic!("{tag}: load failed: {e}"));
    w.set_label(tag);
    let r = catch_unwind(AssertUnwindSafe(|| f(&mut *w)));
    if let Err(p) = r {
        let text = panic_text(&p);
        eprintln!(
            "{tag} failed: {text}\n--- trace ---\n{}\n--- anomalies ---\n{:#?}",
            w.trace_lines().join("\n"),
            w.anomalies()
        );
        drop(w);
        resume_unwind(Box::new(format!("{tag}: {text}")));
    }
    match w.finish() {
        Ok(rep) => rep.trace,
        Err(e) => panic!("{tag}: {e}"),
    }
}

fn variants_or_skip(b: &dyn Backend, name: &str) -> Vec<Variant> {
    let vs = b.variants();
    if vs.is_empty() {
        println!("SKIPPED: no driver variant in this build ({name})");
    }
    vs
}

/// A scenario whose outcome must be the same for every variant: each
/// variant runs it, and the traces of all variants must be identical.
pub fn scenario(b: &dyn Backend, name: &str, f: impl Fn(&mut dyn Pty)) {
    let vs = variants_or_skip(b, name);
    if !vs.iter().any(Variant::is_c_ptm) {
        println!("SKIPPED: PTM_REFERENCE_C not set (C-oracle run and trace comparison of {name})");
    }
    let mut first: Option<(&'static str, Vec<String>)> = None;
    for v in vs {
        let t = run_one(b, name, v, &f);
        record_for_audit(b, name, v, first.is_none(), &t);
        match &first {
            None => first = Some((v.name, t)),
            Some((n0, t0)) => assert_traces_equal(name, n0, t0, v.name, &t),
        }
    }
}

/// A scenario where the variants deliberately differ: run for each
/// variant, no trace comparison.
pub fn scenario_each(b: &dyn Backend, name: &str, f: impl Fn(&mut dyn Pty)) {
    for (i, v) in variants_or_skip(b, name).into_iter().enumerate() {
        let t = run_one(b, name, v, &f);
        record_for_audit(b, name, v, i == 0, &t);
    }
}

/// For the model audit (`make model-audit`): with `PTM_AUDIT_DIR` set, the
/// trace of each scenario's first variant, when it is illumos's C ptm.c,
/// is written to `<dir>/<world>/<scenario>.trace`, so that the same
/// driver's traces on the two worlds can be compared (`model-audit`).
fn record_for_audit(b: &dyn Backend, name: &str, v: Variant, first: bool, trace: &[String]) {
    let Some(dir) = std::env::var_os("PTM_AUDIT_DIR") else {
        return;
    };
    if !first || !v.is_c_ptm() {
        return;
    }
    let dir = std::path::Path::new(&dir).join(b.name());
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let text = trace.join("\n") + "\n";
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(format!("{file}.trace")), text));
    if let Err(e) = written {
        panic!(
            "{name}: cannot record the trace for the audit in {}: {e}",
            dir.display()
        );
    }
}

/// Where two traces first differ, with a few lines of context from each;
/// `None` when they are equal.
pub fn trace_diff(n0: &str, t0: &[String], n1: &str, t1: &[String]) -> Option<String> {
    if t0 == t1 {
        return None;
    }
    let i = t0.iter().zip(t1).take_while(|(a, b)| a == b).count();
    let from = i.saturating_sub(3);
    let show = |t: &[String]| -> String {
        t.iter()
            .enumerate()
            .skip(from)
            .take(12)
            .map(|(k, l)| format!("{}{k:4} {l}", if k == i { ">" } else { " " }))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Some(format!(
        "traces differ at line {i} ({} vs {} lines)\n--- {n0} ---\n{}\n--- {n1} ---\n{}",
        t0.len(),
        t1.len(),
        show(t0),
        show(t1)
    ))
}

/// Panics with [`trace_diff`] when the traces differ.
pub fn assert_traces_equal(name: &str, n0: &str, t0: &[String], n1: &str, t1: &[String]) {
    if let Some(d) = trace_diff(n0, t0, n1, t1) {
        panic!("{name}: {d}");
    }
}

/// One named test, run against a backend.
pub struct Test {
    pub name: &'static str,
    pub run: fn(&dyn Backend),
    /// Long runs, left out unless asked for (`--ignored`).
    pub ignored: bool,
}

impl Test {
    pub const fn new(name: &'static str, run: fn(&dyn Backend)) -> Test {
        Test {
            name,
            run,
            ignored: false,
        }
    }
    pub const fn ignored(name: &'static str, run: fn(&dyn Backend)) -> Test {
        Test {
            name,
            run,
            ignored: true,
        }
    }
}

/// The `main` of a test binary (`harness = false`): runs `tests` on
/// `backend` with libtest's command line (filters, `--ignored`,
/// `--nocapture`, `--test-threads`). A backend that cannot run here
/// prints one `SKIPPED:` line and passes.
pub fn run_tests(backend: &'static dyn Backend, tests: Vec<Test>) -> ! {
    if let Some(why) = backend.unavailable() {
        println!("SKIPPED: {why}");
        std::process::exit(0);
    }
    let args = libtest_mimic::Arguments::from_args();
    let trials = tests
        .into_iter()
        .map(|t| {
            let run = t.run;
            libtest_mimic::Trial::test(t.name, move || {
                catch_unwind(AssertUnwindSafe(|| run(backend))).map_err(|p| panic_text(&p).into())
            })
            .with_ignored_flag(t.ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}
