//! Variants that run module *bytes*: an `ET_REL` kernel object loaded into
//! the test process by the userland krtld (`ptm-kload`), its undefined
//! symbols bound to the simulator's kernel ([`crate::kernel_symbols`]).
//!
//! * [`RUST_KMOD`]: the shipped module, `target/kmod/ptm` (built by `make`),
//!   or the file named by `$PTM_KMOD` (`make test` exports it). With
//!   `PTM_KMOD` set, a missing or refused file is a panic; without it, a
//!   missing default file leaves the variant out with a `SKIPPED:` line so
//!   that `cargo test` works before anything was built.
//! * [`C_KOBJ`]: the C reference (`PTM_REFERENCE_C`) compiled with the
//!   illumos kernel flags into a kernel object (by build.rs) and loaded the
//!   same way: the loader checked against a known-good C object.
//!
//! Each is loaded at most once per process and never unloaded: like the
//! compiled-in variants, a loaded module's statics exist once, and worlds of
//! one variant are serialised (`VariantLock`).

use std::collections::HashMap;
use std::ffi::c_void;
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use ptm::sys::mod_ops;
use ptm_kload::{LoadError, LoadOptions, LoadedModule, load, load_file};

use super::{InfoFn, Variant};

/// Name of the variant running `target/kmod/ptm` (or `$PTM_KMOD`).
pub const RUST_KMOD: &str = "Rust kernel module (loaded)";
/// Name of the variant running `ptm.c` compiled as a kernel object.
pub const C_KOBJ: &str = "C ptm.c kernel object (loaded)";

// The illumos kernel (unix) exports these; a Rust module may bind to them
// (kmod/allowlist.txt). Here they are the C library's.
unsafe extern "C" {
    fn memcpy(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    fn memmove(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    fn memset(dst: *mut c_void, c: i32, n: usize) -> *mut c_void;
    fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> i32;
}

/// The kernel a loaded module is linked against: every symbol of
/// [`crate::kernel_symbols`] plus the C library's `memcpy`, `memmove`,
/// `memset` and `memcmp`.
fn kernel() -> &'static HashMap<&'static str, usize> {
    static KERNEL: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let mut k: HashMap<&'static str, usize> = crate::kernel_symbols()
            .into_iter()
            .map(|(n, a)| (n, a as usize))
            .collect();
        k.insert("memcpy", memcpy as *const () as usize);
        k.insert("memmove", memmove as *const () as usize);
        k.insert("memset", memset as *const () as usize);
        k.insert("memcmp", memcmp as *const () as usize);
        k
    })
}

fn resolve(name: &str) -> Option<*const ()> {
    kernel().get(name).map(|&a| a as *const ())
}

/// Loads the kernel module at `path` against the simulator's kernel (with
/// `mod_driverops` declared as 24 bytes of data), as krtld would. Nothing of
/// the module runs; make a [`Variant`] of it with [`Variant::from_loaded`].
pub fn load_kernel_module(path: &Path) -> Result<LoadedModule, LoadError> {
    let resolver = resolve;
    let opts = LoadOptions::new(&resolver).data("mod_driverops", size_of::<mod_ops>());
    // SAFETY: the only data symbol declared is mod_driverops, which resolves
    // to the simulator's `static mod_driverops: mod_ops` (24 bytes, readable
    // for the whole process); functions are only bound, not called.
    unsafe { load_file(path, &opts) }
}

/// [`load_kernel_module`] for an image in memory.
pub fn load_kernel_image(image: &[u8]) -> Result<LoadedModule, LoadError> {
    let resolver = resolve;
    let opts = LoadOptions::new(&resolver).data("mod_driverops", size_of::<mod_ops>());
    // SAFETY: as in load_kernel_module.
    unsafe { load(image, &opts) }
}

/// Which loaded module each variant runs (by [`Variant::key`]).
static MODULES: std::sync::Mutex<Vec<(usize, &'static LoadedModule)>> =
    std::sync::Mutex::new(Vec::new());

impl Variant {
    /// A variant running a module loaded with [`load_kernel_module`] (or any
    /// load bound to the simulator's kernel). Registers the module's address
    /// of `mod_driverops` (its low-memory alias, if the loader made one) with
    /// [`crate::register_driverops_alias`] so that `mod_install` accepts its
    /// linkage. Fails if the module lacks an entry point.
    pub fn from_loaded(
        name: &'static str,
        module: &'static LoadedModule,
    ) -> Result<Variant, String> {
        let missing = |e: &str| format!("{name}: the module does not define {e}");
        let init = module.init_fn().ok_or_else(|| missing("_init"))?;
        let fini = module.fini_fn().ok_or_else(|| missing("_fini"))?;
        let info = module.info_fn().ok_or_else(|| missing("_info"))?;
        // SAFETY: both are `int (*)(void *)` in the C ABI; the simulator
        // passes a `struct modinfo *`, which is what the module's `_info`
        // expects behind its untyped pointer.
        let info = unsafe { std::mem::transmute::<ptm_kload::InfoFn, InfoFn>(info) };
        if let Some(i) = module.import("mod_driverops") {
            crate::register_driverops_alias(i.address().cast::<mod_ops>());
        }
        let v = Variant::from_raw(name, init, fini, info);
        MODULES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((v.key(), module));
        Ok(v)
    }

    /// The loaded module this variant runs, if it was made with
    /// [`Variant::from_loaded`].
    pub fn loaded_module(&self) -> Option<&'static LoadedModule> {
        MODULES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(k, _)| *k == self.key())
            .map(|&(_, m)| m)
    }
}

/// The module file for [`RUST_KMOD`] and whether it was named explicitly:
/// `$PTM_KMOD` (a relative path is taken from the repository root), else
/// `<repo>/target/kmod/ptm`.
pub use ptm_test_support::kmod_path;

/// Written to the process's stderr directly, so that the note shows even
/// though the test harness captures `println!`.
fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn leak(name: &'static str, what: &Path, m: Result<LoadedModule, LoadError>) -> Variant {
    let m = m.unwrap_or_else(|e| panic!("{name}: cannot load {}: {e}", what.display()));
    Variant::from_loaded(name, Box::leak(Box::new(m))).unwrap_or_else(|e| panic!("{e}"))
}

/// The shipped Rust module ([`RUST_KMOD`]), loaded once per process.
///
/// # Panics
/// If `PTM_KMOD` is set and the file is missing or refused by the loader,
/// or if the default `target/kmod/ptm` exists but is refused.
pub fn loaded_rust_module() -> Option<Variant> {
    static V: OnceLock<Option<Variant>> = OnceLock::new();
    *V.get_or_init(|| {
        let (path, explicit) = kmod_path();
        if !explicit && !path.exists() {
            note(&format!(
                "SKIPPED: target/kmod/ptm not built (run make) (the \"{RUST_KMOD}\" variant is \
                 left out; PTM_KMOD=<file> requires it)"
            ));
            return None;
        }
        Some(leak(RUST_KMOD, &path, load_kernel_module(&path)))
    })
}

/// The C reference compiled as a kernel object ([`C_KOBJ`]), loaded once
/// per process; `None` when the build had no `PTM_REFERENCE_C`.
///
/// # Panics
/// If the loader refuses the object.
pub fn loaded_c_object() -> Option<Variant> {
    #[cfg(has_c_oracle)]
    {
        static V: OnceLock<Variant> = OnceLock::new();
        Some(*V.get_or_init(|| {
            // Compiled by build.rs (the illumos kernel flags).
            let obj = Path::new(env!("PTM_SIM_C_KOBJ"));
            leak(C_KOBJ, obj, load_kernel_module(obj))
        }))
    }
    #[cfg(not(has_c_oracle))]
    {
        None
    }
}
