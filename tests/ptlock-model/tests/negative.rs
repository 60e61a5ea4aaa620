//! Negative controls: deliberately broken variants of the protocol (see
//! `protocol::Bug`) that the checker must catch -- each under the random
//! and the PCT scheduler, seeded, within a fixed budget -- with the failure
//! it is expected to report. If any of these stops failing, the checker has
//! gone blind and the positive results mean nothing.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::sync::Arc;

use ptm_ptlock_model::harness::Checks;
use ptm_ptlock_model::kernel::Spurious;
use ptm_ptlock_model::protocol::{Bug, Raw};
use ptm_ptlock_model::run::{self, Sched};
use ptm_ptlock_model::scenario::{self, Coverage, Scenario};

/// Executions each scheduler gets to find the bug.
const BUDGET: usize = 2000;

/// Runs `bug` on `s` under both schedulers; each must fail with a message
/// containing one of `expected`.
fn caught(bug: Bug, s: Scenario, checks: Checks, expected: &[&str], seed: u64) {
    for sched in [Sched::Random, Sched::Pct] {
        let name = format!("{bug:?} on {} ({sched:?})", s.name);
        let coverage = Arc::new(Coverage::default());
        let caught = run::expect_failure(&name, sched, BUDGET, seed, move || {
            scenario::execute(Raw(bug), &s, checks, &coverage)
        });
        eprintln!(
            "ptlock-model: negative control {name}: caught at execution {} (seed {seed:#x}): {}",
            caught.execution, caught.message
        );
        assert!(
            expected.iter().any(|e| caught.message.contains(e)),
            "{name}: failed, but not as expected ({expected:?}): {}",
            caught.message
        );
    }
}

#[test]
fn reader_that_skips_waiting_for_a_writer_is_caught() {
    caught(
        Bug::ReaderSkipsWriterWait,
        scenario::FULL_LIFECYCLE,
        Checks::default(),
        &["exclusion violated", "count violated"],
        0xbad_0001,
    );
}

/// With the exclusion checks off, the queue-liveness check alone catches a
/// reader using a queue its peer closed.
#[test]
fn reader_that_skips_waiting_uses_a_dead_queue() {
    caught(
        Bug::ReaderSkipsWriterWait,
        scenario::PTM_TRAFFIC_VS_PTS_CLOSE,
        Checks {
            exclusion: false,
            ..Checks::default()
        },
        &["was dead (closed)"],
        0xbad_0002,
    );
}

#[test]
fn writer_that_skips_waiting_for_readers_is_caught() {
    caught(
        Bug::WriterSkipsReaderWait,
        scenario::FULL_LIFECYCLE,
        Checks::default(),
        &["exclusion violated", "count violated"],
        0xbad_0003,
    );
}

/// With the exclusion checks off, the queue-liveness check alone catches a
/// close that frees its queue under a reader because it never took the
/// writer mark. (`WriterSkipsReaderWait` would do, but its corrupted count
/// often deadlocks first, which is caught too, as a deadlock.)
#[test]
fn close_without_the_writer_mark_frees_a_queue_under_a_reader() {
    caught(
        Bug::WriterSkipsLock,
        scenario::PTM_TRAFFIC_VS_PTS_CLOSE,
        Checks {
            exclusion: false,
            ..Checks::default()
        },
        &["was dead (closed)"],
        0xbad_0004,
    );
}

/// `if` instead of `while`: needs a reader to slip in between a wake-up
/// and the writer running again (or a spurious wake-up). Usually caught as
/// an overlap; when the count it corrupts strands a waiter first, as a
/// deadlock.
#[test]
fn writer_that_waits_only_once_is_caught() {
    caught(
        Bug::WriterWaitsOnce,
        scenario::FULL_LIFECYCLE,
        Checks::default(),
        &["exclusion violated", "count violated", "deadlock"],
        0xbad_0005,
    );
}

/// A lost wake-up: shuttle's deadlock detection must report it. Spurious
/// wake-ups are off, as they would eventually rescue the writer.
#[test]
fn exit_read_without_broadcast_deadlocks() {
    caught(
        Bug::ExitReadWithoutBroadcast,
        scenario::PTM_TRAFFIC_VS_PTS_CLOSE,
        Checks {
            spurious: Spurious::Never,
            ..Checks::default()
        },
        &["deadlock"],
        0xbad_0006,
    );
}

/// A writer-preferring lock deadlocks a nested reader behind a waiting
/// writer: why ptm's locks are a bare count.
#[test]
fn writer_preferring_lock_deadlocks_nested_readers() {
    caught(
        Bug::WriterPreference,
        scenario::PTM_TRAFFIC_VS_PTS_CLOSE,
        Checks::default(),
        &["deadlock"],
        0xbad_0007,
    );
}

/// The kernel model reports `cv_wait` without the mutex held.
#[test]
fn cv_wait_without_the_mutex_is_caught() {
    caught(
        Bug::WaitWithoutMutex,
        scenario::FULL_LIFECYCLE,
        Checks::default(),
        &["mutex not held by this task"],
        0xbad_0008,
    );
}

/// The same without spurious wake-ups: the checker finds the real race (a
/// reader slipping in between the last reader's broadcast and the writer
/// running again).
#[test]
fn writer_that_waits_only_once_is_caught_without_spurious_wakeups() {
    caught(
        Bug::WriterWaitsOnce,
        scenario::FULL_LIFECYCLE,
        Checks {
            spurious: Spurious::Never,
            ..Checks::default()
        },
        &["exclusion violated", "count violated", "deadlock"],
        0xbad_0009,
    );
}
