//! What illumos's DEBUG ASSERTs say about ptm, run on the real kernel.
//!
//! A manager that sends PTSSTTY and closes before any subsidiary opens
//! frees its pty with PTSTTY still set: ptm.c clears only PTMOPEN and
//! PTLOCK, and PTSTTY is otherwise cleared by the subsidiary's close.
//! When the pty cache is reaped, ptms_conf's DEBUG destructor asserts
//! `pt_state == 0` and the kernel panics. The C driver does exactly that
//! here (the child process below ends with that ASSERT); the Rust driver
//! clears PTSTTY too on its last close -- the second deliberate difference
//! from ptm.c -- and the world ends cleanly.
//!
//! Kernel failures end the process (see ptm_real::kernel), so the C case
//! runs in a child process of this test binary.

use std::process::Command;

use ptm_real::REAL;
use ptm_scenario::*;

/// Set in the child: which variant to run the scenario on.
const CHILD: &str = "PTM_REAL_DEBUG_FINDING_VARIANT";

fn manager_ptsstty_then_close(w: &mut dyn Pty) {
    let m = w.open_manager(O_RDWR).unwrap();
    let minor = w.minor_of(m).unwrap();
    w.ioctl(m, PTSSTTY, &[]).expect("PTSSTTY is ACKed by ptm");
    assert_eq!(w.pt_state(minor), Some(0x0b), "PTMOPEN | PTLOCK | PTSTTY");
    w.close(m).unwrap();
    assert_eq!(w.pt_state(minor), None, "the pty is freed");
}

fn main() {
    if let Ok(name) = std::env::var(CHILD) {
        // The child: run the scenario on one variant; a kernel failure
        // ends the process with the ASSERT's message on stderr.
        let v = REAL
            .variants()
            .into_iter()
            .find(|v| v.name == name)
            .expect("variant");
        run_one(&REAL, "PTSSTTY then close", v, &manager_ptsstty_then_close);
        println!("child: world ended cleanly");
        return;
    }
    run_tests(
        &REAL,
        vec![
            Test::new(
                "c_ptm_frees_a_pty_with_ptstty_set_and_the_debug_destructor_asserts",
                |b| {
                    for v in b.variants().into_iter().filter(|v| v.is_c_ptm()) {
                        let out = Command::new(std::env::current_exe().unwrap())
                            .env(CHILD, v.name)
                            .output()
                            .expect("run the child");
                        let err = String::from_utf8_lossy(&out.stderr);
                        assert!(
                            !out.status.success(),
                            "[{}] the C driver's world ended cleanly",
                            v.name
                        );
                        assert!(
                            err.contains("assertion failed: pt->pt_state == 0")
                                && err.contains("ptms_conf.c"),
                            "[{}] not the ptms_destructor ASSERT:\n{err}",
                            v.name
                        );
                    }
                },
            ),
            Test::new(
                "rust_ptm_clears_ptstty_on_close_and_the_world_ends_cleanly",
                |b| {
                    for v in b.variants().into_iter().filter(|v| !v.is_c_ptm()) {
                        let out = Command::new(std::env::current_exe().unwrap())
                            .env(CHILD, v.name)
                            .output()
                            .expect("run the child");
                        assert!(
                            out.status.success(),
                            "[{}] {}",
                            v.name,
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                },
            ),
        ],
    )
}
