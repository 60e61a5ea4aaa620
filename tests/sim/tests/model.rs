//! What only the model world shows: several worlds on several threads,
//! and a driver fault the model reports as an anomaly (the real-code world
//! has its own way to show it).

use ptm_scenario::scenarios::common::{manager, pair};
use ptm_sim::{PTSSTTY, Pty, World, variants};

#[test]
fn worlds_on_many_threads_are_independent() {
    // Kernel functions find their world through a thread-local: sessions
    // on parallel threads (and two worlds on one thread) must not mix.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                for v in variants() {
                    let mut a = World::new(v).unwrap();
                    let mut b = World::new(v).unwrap();
                    let (m, s, _) = pair(&mut a);
                    let (m2, _) = manager(&mut b);
                    let msg = format!("thread {i}");
                    a.write(m, msg.as_bytes()).unwrap();
                    assert_eq!(b.minor_of(m2).unwrap(), 1);
                    assert_eq!(a.read(s, 100).unwrap(), msg.as_bytes());
                    assert_eq!(b.leaks().pt_ttys, 1);
                    b.finish().unwrap();
                    a.finish().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// FINDING (ptm.c only since the Rust driver's second deliberate fix):
/// PTSSTTY on a manager whose subsidiary is never opened leaves `PTSTTY`
/// set when ptm.c's manager closes; ptms_close frees the entry with
/// `pt_state` 0x8, which illumos's `ptms_destructor` ASSERTs against (DEBUG
/// kernels, when the cache is reaped; `pt_ttys_alloc` overwrites the state
/// on reuse). The model records it as an anomaly for ptm.c (the bad-input
/// matrix and the differential properties allow for it); the Rust driver
/// clears PTSTTY on a close with no subsidiary open and frees the pty
/// clean. (The real-code world shows the ASSERT itself:
/// tests/real/tests/debug_findings.rs.)
#[test]
fn finding_ptsstty_without_subsidiary_leaves_pt_state_set() {
    for v in variants() {
        let mut w = World::new(v).expect("load");
        let (m, minor) = manager(&mut w);
        w.ioctl(m, PTSSTTY, &[]).unwrap();
        w.close(m).unwrap();
        let a = w.anomalies();
        let flagged = a
            .iter()
            .any(|a| a.contains(&format!("frees minor {minor} with pt_state still set")));
        if v.is_c_ptm() {
            assert!(
                flagged,
                "[{}] expected the pt_state anomaly, got {a:?}",
                v.name
            );
        } else {
            assert!(
                a.is_empty(),
                "[{}] the Rust driver frees the pty clean: {a:?}",
                v.name
            );
        }
        assert!(w.leaks().is_clean(), "[{}] {:?}", v.name, w.leaks());
    }
}
