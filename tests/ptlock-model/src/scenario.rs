//! The task mixes, mirroring what ptm and pts do with the reference locks:
//!
//! * ptm's put and service routines (`ptmwput`, `ptmwsrv`, `ptmrsrv`):
//!   PT_ENTER_READ, look at `pts_rdq`, putnext to it, PT_EXIT_READ;
//! * pts's the same on `ptm_rdq`;
//! * nested readers: a reader that re-enters read while holding its
//!   reference (putnext into the peer can come back through the peer's put
//!   routine on the same thread);
//! * pts's close (PT_ENTER_WRITE, clear `pts_rdq`, PT_EXIT_WRITE, then
//!   qprocsoff -- the queue is dead) and open (qprocson, then publish under
//!   the writer mark);
//! * ptm's close (clear `ptm_rdq`, take `pt_nullmsg`) and open (publish
//!   `ptm_rdq` with `set_ptm_rdq`).

use std::sync::atomic::{AtomicU64, Ordering as StdOrdering};

use ptm::sys::queue_t;
use std::sync::Arc;

use crate::harness::{Checks, Field, Pty};
use crate::kernel::{self, Stats};
use crate::protocol::{Protocol, ReadAccess, View, WriteAccess};

/// What one task does.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// ptm's put/service path: `rounds` read sections on `pts_rdq`, each
    /// with a nested reader inside when `nested`.
    ManagerPut {
        /// Read sections.
        rounds: usize,
        /// Whether each re-enters read while holding its reference.
        nested: bool,
    },
    /// pts's put/service path: the same on `ptm_rdq`.
    SubsidiaryPut {
        /// Read sections.
        rounds: usize,
        /// Whether each re-enters read while holding its reference.
        nested: bool,
    },
    /// pts's close of the queue it starts with, then, for each queue
    /// listed, an open publishing it and a close.
    SubsidiaryCloseReopen {
        /// The queues the reopens publish.
        reopen: &'static [usize],
    },
    /// ptm's open publishing `queue`, then ptm's close.
    ManagerOpenClose {
        /// The manager read queue to publish.
        queue: usize,
    },
    /// ptm's close of the queue it starts with.
    ManagerClose,
}

/// A mix of tasks on one pty.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// For messages.
    pub name: &'static str,
    /// Queue objects in the pool.
    pub queues: usize,
    /// The queue open and published in `ptm_rdq` at the start.
    pub ptm_rdq: Option<usize>,
    /// The queue open and published in `pts_rdq` at the start.
    pub pts_rdq: Option<usize>,
    /// One task each (the main task only spawns, joins and checks).
    pub roles: &'static [Role],
}

/// ptm's put and service traffic against pts closing and reopening.
pub const PTM_TRAFFIC_VS_PTS_CLOSE: Scenario = Scenario {
    name: "ptm traffic vs pts close/reopen",
    queues: 3,
    ptm_rdq: Some(0),
    pts_rdq: Some(1),
    roles: &[
        Role::ManagerPut {
            rounds: 2,
            nested: false,
        },
        Role::ManagerPut {
            rounds: 2,
            nested: true,
        },
        Role::SubsidiaryCloseReopen { reopen: &[2] },
    ],
};

/// pts's traffic against ptm opening (publishing `ptm_rdq`) and closing.
pub const PTS_TRAFFIC_VS_PTM_OPEN_CLOSE: Scenario = Scenario {
    name: "pts traffic vs ptm open/close",
    queues: 1,
    ptm_rdq: None,
    pts_rdq: None,
    roles: &[
        Role::ManagerOpenClose { queue: 0 },
        Role::SubsidiaryPut {
            rounds: 2,
            nested: true,
        },
        Role::SubsidiaryPut {
            rounds: 2,
            nested: false,
        },
    ],
};

/// Everything at once: both directions of traffic (one nested), pts
/// closing and reopening, ptm closing.
pub const FULL_LIFECYCLE: Scenario = Scenario {
    name: "full lifecycle",
    queues: 3,
    ptm_rdq: Some(0),
    pts_rdq: Some(1),
    roles: &[
        Role::ManagerPut {
            rounds: 2,
            nested: true,
        },
        Role::SubsidiaryPut {
            rounds: 2,
            nested: false,
        },
        Role::SubsidiaryCloseReopen { reopen: &[2] },
        Role::ManagerClose,
    ],
};

/// Every positive scenario.
pub const ALL: &[Scenario] = &[
    PTM_TRAFFIC_VS_PTS_CLOSE,
    PTS_TRAFFIC_VS_PTM_OPEN_CLOSE,
    FULL_LIFECYCLE,
];

/// Counts over every execution of a check, to show what was exercised.
#[derive(Debug, Default)]
pub struct Coverage {
    executions: AtomicU64,
    cv_waits: AtomicU64,
    spurious_wakeups: AtomicU64,
    executions_with_wait: AtomicU64,
    queue_uses: AtomicU64,
    null_reads: AtomicU64,
}

/// A snapshot of [`Coverage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoverageSnapshot {
    /// Executions that ran to the end.
    pub executions: u64,
    /// `cv_wait` calls in all of them.
    pub cv_waits: u64,
    /// Spurious returns from `cv_wait`.
    pub spurious_wakeups: u64,
    /// Executions in which some task had to wait.
    pub executions_with_wait: u64,
    /// Reader uses of a live queue.
    pub queue_uses: u64,
    /// Reader reads that found NULL (the peer closed or not yet open).
    pub null_reads: u64,
}

impl Coverage {
    fn add(&self, stats: Stats, uses: u64, nulls: u64) {
        self.executions.fetch_add(1, StdOrdering::Relaxed);
        self.cv_waits
            .fetch_add(stats.cv_waits, StdOrdering::Relaxed);
        self.spurious_wakeups
            .fetch_add(stats.spurious_wakeups, StdOrdering::Relaxed);
        if stats.cv_waits > 0 {
            self.executions_with_wait.fetch_add(1, StdOrdering::Relaxed);
        }
        self.queue_uses.fetch_add(uses, StdOrdering::Relaxed);
        self.null_reads.fetch_add(nulls, StdOrdering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CoverageSnapshot {
        CoverageSnapshot {
            executions: self.executions.load(StdOrdering::Relaxed),
            cv_waits: self.cv_waits.load(StdOrdering::Relaxed),
            spurious_wakeups: self.spurious_wakeups.load(StdOrdering::Relaxed),
            executions_with_wait: self.executions_with_wait.load(StdOrdering::Relaxed),
            queue_uses: self.queue_uses.load(StdOrdering::Relaxed),
            null_reads: self.null_reads.load(StdOrdering::Relaxed),
        }
    }
}

/// Per-execution reader counts.
#[derive(Default)]
struct ReadCounts {
    uses: std::sync::atomic::AtomicU64,
    nulls: std::sync::atomic::AtomicU64,
}

fn found(counts: &ReadCounts, q: *mut queue_t) {
    let counter = if q.is_null() {
        &counts.nulls
    } else {
        &counts.uses
    };
    counter.fetch_add(1, StdOrdering::Relaxed);
}

/// How a reader looks at its field: plainly, or (ptm's put routine) with
/// `ready_subsidiary`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Look {
    Plain,
    Ready,
}

fn read_field<R: ReadAccess>(r: &R, field: Field, look: Look) -> *mut queue_t {
    match (field, look) {
        (Field::PtmRdq, _) => r.ptm_rdq(),
        (Field::PtsRdq, Look::Plain) => r.pts_rdq(),
        (Field::PtsRdq, Look::Ready) => r.ready_pts_rdq(),
    }
}

/// One read section: PT_ENTER_READ, find the peer's queue in `field`, use
/// it (and, when `nested`, re-enter read and use it again, then use it once
/// more under the outer reference alone), PT_EXIT_READ.
fn read_section<P: Protocol>(
    p: &P,
    v: &View<'_>,
    field: Field,
    (nested, look): (bool, Look),
    counts: &ReadCounts,
) {
    let pty = v.pty;
    let r = p.enter_read(v);
    kernel::check();
    pty.reader_in();
    let q = read_field(&r, field, look);
    found(counts, q);
    pty.use_queue(q, field);
    if nested {
        let inner = p.enter_read(v);
        kernel::check();
        pty.reader_in();
        let q2 = read_field(&inner, field, Look::Ready);
        pty.assert_stable(q, q2, field, "a nested reader found");
        pty.use_queue(q2, field);
        pty.reader_out();
        drop(inner);
        kernel::check();
        // The outer reference alone still keeps the queue alive.
        pty.use_queue(q, field);
    }
    let end = read_field(&r, field, Look::Plain);
    pty.assert_stable(q, end, field, "the reader found at its end");
    pty.reader_out();
    drop(r);
    kernel::check();
}

/// One write section: PT_ENTER_WRITE, `f`, PT_EXIT_WRITE.
fn write_section<P: Protocol, T>(p: &P, v: &View<'_>, f: impl FnOnce(&mut P::Write<'_>) -> T) -> T {
    let pty = v.pty;
    let mut w = p.enter_write(v);
    kernel::check();
    pty.writer_in();
    let result = f(&mut w);
    pty.writer_out();
    drop(w);
    kernel::check();
    result
}

/// pts's close: under the writer mark, send the manager its zero-length
/// message (use `ptm_rdq`, which cannot close meanwhile) and clear
/// `pts_rdq`; then (after PT_EXIT_WRITE, as qprocsoff comes after) the
/// queue is dead.
fn subsidiary_close<P: Protocol>(p: &P, v: &View<'_>) {
    let old = write_section(p, v, |w| {
        v.pty.use_queue(w.ptm_rdq(), Field::PtmRdq);
        let old = w.pts_rdq();
        assert!(!old.is_null(), "pts close found pts_rdq NULL");
        w.set_pts_rdq(None);
        old
    });
    v.pty.close_queue(old);
}

/// pts's open: qprocson (the queue is alive), then publish it.
fn subsidiary_open<P: Protocol>(p: &P, v: &View<'_>, queue: usize) {
    let q = v.pty.open_queue(queue);
    write_section(p, v, |w| {
        assert!(w.pts_rdq().is_null(), "pts open found pts_rdq set");
        w.set_pts_rdq(Some(q));
    });
}

/// ptm's close: under the writer mark, clear `ptm_rdq`, take `pt_nullmsg`
/// and send the subsidiary its hang-up (use `pts_rdq`, which cannot close
/// meanwhile); then the queue is dead.
fn manager_close<P: Protocol>(p: &P, v: &View<'_>) {
    let old = write_section(p, v, |w| {
        v.pty.use_queue(w.pts_rdq(), Field::PtsRdq);
        let old = w.ptm_rdq();
        assert!(!old.is_null(), "ptm close found ptm_rdq NULL");
        w.set_ptm_rdq(None);
        assert!(
            !w.take_nullmsg(),
            "pt_nullmsg was set (the harness never sets it)"
        );
        old
    });
    v.pty.close_queue(old);
}

/// ptm's open: qprocson, then publish `ptm_rdq` with `set_ptm_rdq`.
fn manager_open<P: Protocol>(p: &P, v: &View<'_>, queue: usize) {
    let q = v.pty.open_queue(queue);
    write_section(p, v, |w| {
        assert!(w.ptm_rdq().is_null(), "ptm open found ptm_rdq set");
        w.set_ptm_rdq(Some(q));
    });
}

fn run_role<P: Protocol>(p: &P, v: &View<'_>, role: Role, counts: &ReadCounts) {
    match role {
        Role::ManagerPut { rounds, nested } => {
            for round in 0..rounds {
                // ptmwput looks with ready_subsidiary, ptmwsrv/ptmrsrv
                // with pts_rdq: alternate.
                let look = if round % 2 == 0 {
                    Look::Plain
                } else {
                    Look::Ready
                };
                read_section(p, v, Field::PtsRdq, (nested, look), counts);
            }
        }
        Role::SubsidiaryPut { rounds, nested } => {
            for _ in 0..rounds {
                read_section(p, v, Field::PtmRdq, (nested, Look::Plain), counts);
            }
        }
        Role::SubsidiaryCloseReopen { reopen } => {
            subsidiary_close(p, v);
            for &queue in reopen {
                subsidiary_open(p, v, queue);
                subsidiary_close(p, v);
            }
        }
        Role::ManagerOpenClose { queue } => {
            manager_open(p, v, queue);
            manager_close(p, v);
        }
        Role::ManagerClose => manager_close(p, v),
    }
}

/// One execution of `scenario` with protocol `p`: set up the pty, run every
/// role in its own task, join, and check the end state.
pub fn execute<P: Protocol + Copy>(p: P, scenario: &Scenario, checks: Checks, coverage: &Coverage) {
    let pty = Arc::new(Pty::new(scenario.queues, checks));
    for (field, queue) in [
        (Field::PtmRdq, scenario.ptm_rdq),
        (Field::PtsRdq, scenario.pts_rdq),
    ] {
        if let Some(i) = queue {
            let q = pty.open_queue(i);
            // SAFETY: live pt_ttys, and no other task exists yet.
            unsafe { field.set(pty.raw(), q.as_ptr()) };
        }
    }
    let counts = Arc::new(ReadCounts::default());
    let tasks: Vec<_> = scenario
        .roles
        .iter()
        .map(|&role| {
            let pty = Arc::clone(&pty);
            let counts = Arc::clone(&counts);
            shuttle::thread::spawn(move || {
                let v = View::new(&pty);
                run_role(&p, &v, role, &counts);
            })
        })
        .collect();
    for task in tasks {
        task.join().expect("a task panicked");
    }
    pty.check_quiescent();
    // Every close in these scenarios leaves its field NULL and its queues
    // dead; a field that was never written keeps its queue alive.
    for (field, start) in [
        (Field::PtmRdq, scenario.ptm_rdq),
        (Field::PtsRdq, scenario.pts_rdq),
    ] {
        let closed = scenario.roles.iter().any(|role| match field {
            Field::PtmRdq => matches!(role, Role::ManagerClose | Role::ManagerOpenClose { .. }),
            Field::PtsRdq => matches!(role, Role::SubsidiaryCloseReopen { .. }),
        });
        if closed {
            assert!(pty.field(field).is_null(), "{field:?} set after its close");
            if let Some(i) = start {
                assert!(pty.is_dead(i), "{field:?}'s first queue #{i} not closed");
            }
        } else if let Some(i) = start {
            assert_eq!(pty.field(field), pty.queue(i), "{field:?} changed");
        }
    }
    coverage.add(
        kernel::stats(),
        counts.uses.load(StdOrdering::Relaxed),
        counts.nulls.load(StdOrdering::Relaxed),
    );
}
