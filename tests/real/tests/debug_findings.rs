//! What illumos's DEBUG ASSERTs say about ptm and its neighbours, run on
//! the real kernel with the ASSERTs allowed to fire.
//!
//! 1. A manager that sends PTSSTTY and closes before any subsidiary opens
//!    frees its pty with PTSTTY still set: ptm.c clears only PTMOPEN and
//!    PTLOCK, and PTSTTY is otherwise cleared by the subsidiary's close.
//!    When the pty cache is reaped, ptms_conf's DEBUG destructor asserts
//!    `pt_state == 0` and the kernel panics. The C driver does exactly that
//!    here; the Rust driver clears PTSTTY too on a close with no subsidiary
//!    open -- its second deliberate difference from ptm.c -- and its world
//!    ends cleanly.
//! 2. OWNERPT accepts an owner whose ids are ephemeral in the pty's zone
//!    (ptm's VALID_UID/VALID_GID), but ptms_conf's `ptms_minor_valid`, which
//!    /dev/pts calls to show the node, ASSERTs that the ids are at most
//!    MAXUID: on a DEBUG kernel, looking at such a pty's node panics. That
//!    is illumos's own inconsistency, the same for both drivers.
//!
//! Kernel failures end the process (see ptm_real::kernel), so each case
//! runs in a child process of this test binary, with
//! `PTM_REAL_STRICT_DEBUG` set: other worlds note these and carry on as a
//! non-DEBUG kernel would, this one lets the ASSERTs fire.

use std::process::Command;

use ptm_real::REAL;
use ptm_scenario::*;

/// Set in the child: which case, on which variant.
const CHILD_CASE: &str = "PTM_REAL_DEBUG_FINDING";
const CHILD_VARIANT: &str = "PTM_REAL_DEBUG_FINDING_VARIANT";

fn manager_ptsstty_then_close(w: &mut dyn Pty) {
    let m = w.open_manager(O_RDWR).unwrap();
    let minor = w.minor_of(m).unwrap();
    w.ioctl(m, PTSSTTY, &[]).expect("PTSSTTY is ACKed by ptm");
    assert_eq!(w.pt_state(minor), Some(0x0b), "PTMOPEN | PTLOCK | PTSTTY");
    w.close(m).unwrap();
    assert_eq!(w.pt_state(minor), None, "the pty is freed");
}

fn ephemeral_owner_then_pts_lookup(w: &mut dyn Pty) {
    const EPH_UID: u32 = 0x8000_0010;
    w.add_zone(0, Some((0x8000_0000, 0x8000_0100)));
    let m = w.open_manager(O_RDWR).unwrap();
    let minor = w.minor_of(m).unwrap();
    let mut own = EPH_UID.to_ne_bytes().to_vec();
    own.extend_from_slice(&7u32.to_ne_bytes());
    w.ioctl(m, OWNERPT, &own)
        .expect("an ephemeral uid of the pty's zone is accepted");
    assert_eq!(w.pt_owner(minor), Some((0, EPH_UID, 7)));
    // /dev/pts/N, as ptsname and open do.
    let _ = w.pts_node(minor);
}

/// The cases, by name.
fn case(name: &str) -> fn(&mut dyn Pty) {
    match name {
        "ptsstty" => manager_ptsstty_then_close,
        "ephemeral" => ephemeral_owner_then_pts_lookup,
        n => panic!("no case {n}"),
    }
}

/// Runs `name` on variant `v` in a child process that lets the ASSERTs
/// fire: (whether it ended cleanly, its stderr).
fn child(name: &str, v: Variant) -> (bool, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_CASE, name)
        .env(CHILD_VARIANT, v.name)
        .env("PTM_REAL_STRICT_DEBUG", "1")
        .output()
        .expect("run the child");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_asserts(v: Variant, name: &str, ok: bool, err: &str, expr: &str) {
    assert!(!ok, "[{}] {name}: the world ended cleanly", v.name);
    assert!(
        err.contains(&format!("assertion failed: {expr}")) && err.contains("ptms_conf.c"),
        "[{}] {name}: not ptms_conf's ASSERT({expr}):\n{err}",
        v.name
    );
}

fn main() {
    if let (Ok(name), Ok(variant)) = (std::env::var(CHILD_CASE), std::env::var(CHILD_VARIANT)) {
        let v = REAL
            .variants()
            .into_iter()
            .find(|v| v.name == variant)
            .expect("variant");
        run_one(&REAL, &name, v, &case(&name));
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
                        let (ok, err) = child("ptsstty", v);
                        assert_asserts(v, "ptsstty", ok, &err, "pt->pt_state == 0");
                    }
                },
            ),
            Test::new(
                "rust_ptm_clears_ptstty_on_close_and_the_world_ends_cleanly",
                |b| {
                    for v in b.variants().into_iter().filter(|v| !v.is_c_ptm()) {
                        let (ok, err) = child("ptsstty", v);
                        assert!(ok, "[{}] {err}", v.name);
                    }
                },
            ),
            Test::new(
                "an_ephemeral_owner_trips_ptms_minor_valid_assert_with_either_driver",
                |b| {
                    for v in b.variants() {
                        let (ok, err) = child("ephemeral", v);
                        assert_asserts(v, "ephemeral", ok, &err, "pt->pt_ruid <= MAXUID");
                    }
                },
            ),
        ],
    )
}
