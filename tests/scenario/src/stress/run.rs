//! One run: the user threads, the watchdog, and the checks at the end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use super::ops::{close_remaining, step};
use super::records::{Rng, Shared};
use super::{Config, ThreadedBackend, ThreadedPty};
use crate::api::Variant;

/// The seed: `PTM_STRESS_SEED`, else the clock.
fn seed() -> u64 {
    std::env::var("PTM_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Starts user thread `t` on its own handle of the world; it reports its
/// number on `done` when it stops.
fn spawn_user(
    w: Box<dyn ThreadedPty>,
    sh: &Arc<Shared>,
    cfg: &Config,
    seed: u64,
    t: usize,
    start: Instant,
    done: std::sync::mpsc::Sender<usize>,
) -> std::thread::JoinHandle<()> {
    let sh = Arc::clone(sh);
    let (ops, duration) = (cfg.ops_per_thread, cfg.duration);
    let mut rng = Rng(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(t as u64 + 1)) | 1);
    std::thread::Builder::new()
        .name(format!("user {t}"))
        .spawn(move || {
            let mut w = w;
            let mut i = 0;
            while !sh.stop.load(Ordering::SeqCst) {
                match duration {
                    Some(d) if start.elapsed() >= d => break,
                    None if i >= ops => break,
                    _ => {}
                }
                if let Err(e) = step(w.as_mut(), &sh, &mut rng, t) {
                    sh.fail(format!("user {t}: {e}"));
                    break;
                }
                sh.ops.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            sh.set_doing(t, "done".into());
            // The handle goes before the report: the world may be torn
            // down as soon as every user thread has reported.
            drop(w);
            let _ = done.send(t);
        })
        .expect("spawning a user thread")
}

/// The watchdog: every user thread must be done by `deadline`; else the
/// run fails with a dump of what every user and kernel thread is doing,
/// and the process ends there: a world with threads stuck in its kernel
/// cannot be torn down (its last close could wait for them for ever).
fn watchdog(
    tag: &str,
    world: &dyn ThreadedPty,
    sh: &Shared,
    threads: usize,
    rx: &Receiver<usize>,
    start: Instant,
    deadline: Instant,
) {
    for _ in 0..threads {
        let left = deadline.saturating_duration_since(Instant::now());
        if rx.recv_timeout(left).is_err() {
            let mut dump = sh.dump_users();
            for ts in world.thread_states() {
                dump += &format!("  {ts}\n");
            }
            eprintln!(
                "{tag}: no progress within {:?} (deadlock?); thread states:\n{dump}",
                deadline - start
            );
            std::process::exit(101);
        }
    }
}

/// At a quiescent point: no procedure runs, nobody holds a pty's
/// reference or lock, no kernel mutex is held.
fn check_quiescent(tag: &str, world: &mut dyn ThreadedPty) {
    assert!(world.quiesce(), "{tag}: did not quiesce");
    for (minor, refcnt, held) in world.pt_refcnts() {
        assert!(
            refcnt == 0 && !held,
            "{tag}: minor {minor}: pt_refcnt {refcnt}, pt_lock held {held}"
        );
    }
    let held = world.held_locks();
    assert!(
        held.is_empty(),
        "{tag}: kernel locks held at the end: {held:?}"
    );
}

/// Runs the stress test once on variant `v` of `b` (see the module
/// documentation); panics on a violated invariant, a hang or a leak.
pub fn run(b: &dyn ThreadedBackend, v: Variant, cfg: &Config) {
    let seed = seed();
    let tag = format!("[{} world, {}] seed {seed}", b.name(), v.name);
    println!(
        "[{} world, {}] stress seed {seed} (PTM_STRESS_SEED={seed} to reuse): {} user threads, {} ptys, {} workers",
        b.name(),
        v.name,
        cfg.threads,
        cfg.slots,
        cfg.workers
    );
    let mut world = b
        .threaded_world(v, cfg.workers)
        .unwrap_or_else(|e| panic!("{tag}: load failed: {e}"));
    world.set_tracing(false);
    let sh = Arc::new(Shared::new(cfg.slots, cfg.threads));
    let start = Instant::now();
    let (tx, rx) = channel::<usize>();
    let handles: Vec<_> = (0..cfg.threads)
        .map(|t| spawn_user(world.handle(), &sh, cfg, seed, t, start, tx.clone()))
        .collect();
    drop(tx);
    let deadline = start + cfg.duration.unwrap_or_default() + cfg.bound;
    watchdog(&tag, &*world, &sh, cfg.threads, &rx, start, deadline);
    for h in handles {
        h.join().unwrap();
    }
    let errors = sh.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{tag}: invariant violated:\n{}\nanomalies: {:#?}",
        errors.join("\n"),
        world.anomalies()
    );
    check_quiescent(&tag, &mut *world);
    for idx in 0..sh.slots.len() {
        if let Err(e) = close_remaining(&mut *world, &sh, idx) {
            panic!("{tag}: final close: {e}");
        }
    }
    let elapsed = start.elapsed();
    if let Err(e) = world.finish() {
        panic!("{tag}: {e}");
    }
    println!(
        "[{} world, {}] seed {seed}: {} steps in {:.2?}; {:?}",
        b.name(),
        v.name,
        sh.ops.load(Ordering::Relaxed),
        elapsed,
        sh.counts.lock().unwrap()
    );
}
