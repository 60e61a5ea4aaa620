//! The model world's modctl, for every variant: load runs `_info` first
//! (modctl keeps the linkage it reports), then `_init` (whose
//! `mod_install` accepts only that linkage, as illumos's `mod_installdrv`
//! finds the module with `mod_getctl`), then attach. (`_fini` refused while
//! a pty is open, and load/unload cycles, are scenarios of both worlds:
//! ptm-scenario's `lifecycle`; in the real-code world, modctl's part is
//! illumos's modconf.c itself.)

use std::ffi::c_int;

use ptm_scenario::scenarios::common::pair_flags;
use ptm_sim::sys::{CE_WARN, ENXIO, MODREV_1, modlinkage};
use ptm_sim::*;

const NB: i32 = O_RDWR | O_NONBLOCK;

/// Runs `f` in a fresh world of every variant, then finishes it.
fn scenario_each(name: &str, f: impl Fn(&mut World)) {
    for v in variants() {
        let mut w = World::new(v).unwrap_or_else(|e| panic!("[{}] {name}: {e}", v.name));
        f(&mut w);
        w.finish()
            .unwrap_or_else(|e| panic!("[{}] {name}: {e}", v.name));
    }
}

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
        if let Some(m) = w.model_variant().loaded_module() {
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
        let init = w.model_variant().init;
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
