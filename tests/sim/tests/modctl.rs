//! modctl's lifecycle of the driver, for every variant: load runs `_info`
//! first (modctl keeps the linkage it reports), then `_init` (whose
//! `mod_install` accepts only that linkage, as illumos's `mod_installdrv`
//! finds the module with `mod_getctl`), then attach; `_fini` is refused
//! while a pty is open and accepted after; and load/unload cycles leave
//! nothing behind.

mod common;
use common::*;

use std::ffi::c_int;

use ptm_sim::sys::{CE_WARN, ENXIO, MODREV_1, modlinkage};

const NB: i32 = O_RDWR | O_NONBLOCK;

/// The warning illumos prints when `mod_install` does not know the linkage.
const BAD_LINKAGE: &str = "mod_install: bad module linkage data";

#[test]
fn load_keeps_the_linkage_info_reports_and_installs_and_attaches_with_it() {
    scenario_each("_info, then _init, then attach", |w| {
        let linkage = w.module_linkage();
        assert!(!linkage.is_null(), "_info's linkage was recorded");
        // SAFETY: the driver's static modlinkage.
        assert_eq!(unsafe { (*linkage).ml_rev }, MODREV_1);
        // A loaded module's linkage is its own `modlinkage` (ptm.c's name).
        if let Some(m) = w.variant().loaded_module() {
            assert_eq!(Some(linkage as *const ()), m.symbol("modlinkage"));
        }
        // _init installed with it (mod_install would have said ENXIO to
        // any other), and attach created the nodes.
        assert!(w.is_loaded());
        assert!(
            !w.cmn_err_messages().iter().any(|(_, t)| t == BAD_LINKAGE),
            "{:?}",
            w.cmn_err_messages()
        );
        let names: Vec<String> = w.minor_nodes().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["ptmajor", "ptmx"]);
    });
}

#[test]
fn init_before_info_is_refused_with_enxio() {
    scenario_each("_init with no linkage recorded", |w| {
        w.unload().expect("unload when idle");
        assert!(w.module_linkage().is_null(), "modctl forgot the linkage");
        let init = w.variant().init;
        // SAFETY: the variant's `_init`, called as a modctl that skipped
        // `_info` would.
        let rc = w.with_kernel(|| unsafe { init() });
        assert_eq!(rc, ENXIO);
        assert!(!w.is_loaded());
        assert!(
            w.cmn_err_messages()
                .contains(&(CE_WARN, BAD_LINKAGE.to_owned()))
        );
        // The real order works again.
        w.reload().expect("_info, then _init");
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write(m, b"after").unwrap();
        assert_eq!(w.read(s, 10).unwrap(), b"after");
    });
}

#[test]
fn mod_install_of_another_linkage_is_refused_with_enxio() {
    scenario_each("mod_install(copy of the linkage)", |w| {
        let linkage = w.module_linkage();
        // SAFETY: the driver's static modlinkage, copied bit for bit.
        let mut copy: modlinkage = unsafe { linkage.read() };
        let address = kernel_symbols()
            .into_iter()
            .find(|(name, _)| *name == "mod_install")
            .expect("the simulated kernel's mod_install")
            .1;
        // SAFETY: the simulator exports mod_install as this C function.
        let mod_install = unsafe {
            std::mem::transmute::<*const std::ffi::c_void, extern "C" fn(*mut modlinkage) -> c_int>(
                address,
            )
        };
        let rc = w.with_kernel(|| mod_install(&mut copy));
        assert_eq!(rc, ENXIO, "a copy is not the module's linkage");
        assert!(
            w.cmn_err_messages()
                .contains(&(CE_WARN, BAD_LINKAGE.to_owned()))
        );
        assert_eq!(w.module_linkage(), linkage, "still the module's");
    });
}

#[test]
fn fini_is_refused_while_a_pty_is_open_and_accepted_after() {
    scenario_each("_fini busy, then idle", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        assert_eq!(w.unload(), Err(Errno::EBUSY), "manager and subsidiary open");
        assert!(w.is_loaded());
        assert!(!w.module_linkage().is_null());
        assert_eq!(w.minor_nodes().len(), 2, "still attached");
        // Still working.
        w.write(s, b"busy").unwrap();
        assert_eq!(w.read(m, 10).unwrap(), b"busy");
        w.close(s).unwrap();
        w.close(m).unwrap();
        w.unload().expect("no pty open");
        assert!(!w.is_loaded());
        assert!(w.module_linkage().is_null());
        assert!(w.minor_nodes().is_empty(), "detached");
    });
}

#[test]
fn many_load_unload_cycles_leave_nothing_behind() {
    const CYCLES: usize = 50;
    scenario_each("load/unload cycles", |w| {
        let first = w.module_linkage();
        for cycle in 0..CYCLES {
            let (m, s, minor) = pair_flags(w, NB, NB);
            assert_eq!(minor, 1, "cycle {cycle}: the first pty again");
            w.write(m, format!("cycle {cycle}").as_bytes()).unwrap();
            assert_eq!(w.read(s, 100).unwrap(), format!("cycle {cycle}").as_bytes());
            w.close(s).unwrap();
            w.close(m).unwrap();
            w.unload()
                .unwrap_or_else(|e| panic!("cycle {cycle}: unload: {e:?}"));
            assert!(!w.is_loaded() && w.module_linkage().is_null());
            assert!(
                w.minor_nodes().is_empty(),
                "cycle {cycle}: minor nodes left"
            );
            assert!(w.leaks().is_clean(), "cycle {cycle}: {:?}", w.leaks());
            assert!(
                w.anomalies().is_empty(),
                "cycle {cycle}: {:?}",
                w.anomalies()
            );
            w.reload()
                .unwrap_or_else(|e| panic!("cycle {cycle}: reload: {e}"));
            assert_eq!(w.module_linkage(), first, "the same static linkage");
        }
        assert!(
            w.cmn_err_messages().is_empty(),
            "{:?}",
            w.cmn_err_messages()
        );
    });
}
