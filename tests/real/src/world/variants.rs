//! The ptm variants the real-code world runs, and the backend that makes
//! worlds of them.
//!
//! * **C ptm.c (reference)**: illumos's `ptm.c` from `ILLUMOS_SRC`,
//!   compiled into the kernel with the rest (the same file as
//!   `PTM_REFERENCE_C`).
//! * **Rust ptm**: the `ptm` crate built for the host; its imports bind to
//!   the kernel's functions when the test binary is linked.
//! * **Rust kernel module (loaded)**: the shipped `target/kmod/ptm` (or
//!   `$PTM_KMOD`), loaded by the userland krtld with every import bound to
//!   the real kernel's function of that name.
//! * **C ptm.c kernel object (loaded)**: ptm.c compiled as an illumos
//!   kernel object (kernel code model) and loaded the same way; or the
//!   object named by `$PTM_C_KOBJ`.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ptm::sys::{mod_ops, modinfo};
use ptm_kload::{LoadOptions, LoadedModule};
use ptm_scenario::{Backend, Driver, Pty, Variant};

use crate::kernel::{self, ffi};

pub const C_REFERENCE: &str = "C ptm.c (reference)";
pub const RUST_DRIVER: &str = "Rust ptm";
pub const RUST_KMOD: &str = "Rust kernel module (loaded)";
pub const C_KOBJ: &str = "C ptm.c kernel object (loaded)";

/// A variant's module entry points.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub info: ffi::InfoFn,
    pub init: ffi::EntryFn,
    pub fini: ffi::EntryFn,
}

// Exported by the `ptm` crate when it is built for the host.
unsafe extern "C" {
    fn ptm_rs_init() -> c_int;
    fn ptm_rs_fini() -> c_int;
    fn ptm_rs_info(mi: *mut c_void) -> c_int;
}

/// The kernel functions the Rust half defines (not in `kp_ksyms`, which
/// lists the sealed C kernel's globals).
fn layer_symbols() -> Vec<(&'static str, usize)> {
    use crate::kernel::{cred, sync};
    macro_rules! syms {
        ($($f:path),* $(,)?) => {
            vec![$((stringify!($f).rsplit("::").next().unwrap_or(""), $f as *const () as usize)),*]
        };
    }
    syms![
        sync::mutex_enter,
        sync::mutex_exit,
        sync::mutex_init,
        sync::mutex_destroy,
        sync::mutex_owned,
        sync::mutex_tryenter,
        sync::cv_wait,
        sync::cv_wait_sig,
        sync::cv_signal,
        sync::cv_broadcast,
        sync::cv_init,
        sync::cv_destroy,
        cred::drv_priv,
        cred::getzoneid,
        cred::zone_find_by_id,
        cred::zone_rele,
        cred::valid_ephemeral_uid,
        cred::valid_ephemeral_gid,
        cred::crgetuid,
        cred::crgetgid,
        cred::crgetzoneid,
        kernel::assfail,
    ]
}

/// Every kernel symbol a loaded module may bind to, by name: the sealed
/// kernel's globals, the Rust half's functions, and the kernel's
/// `memcpy` family (whose own names are made local in the process).
fn kernel_symbols() -> &'static HashMap<String, usize> {
    static SYMS: OnceLock<HashMap<String, usize>> = OnceLock::new();
    SYMS.get_or_init(|| {
        let mut m: HashMap<String, usize> = ffi::ksyms().into_iter().collect();
        for (n, a) in layer_symbols() {
            m.insert(n.to_owned(), a);
        }
        for n in ["memcpy", "memmove", "memset", "memcmp"] {
            if let Some(&a) = m.get(&format!("kp_k_{n}")) {
                m.insert(n.to_owned(), a);
            }
        }
        m
    })
}

fn resolve(name: &str) -> Option<*const ()> {
    kernel_symbols().get(name).map(|&a| a as *const ())
}

/// Loads an illumos kernel module file against the real kernel, as krtld
/// would (nothing of it runs yet).
pub fn load_module(path: &Path) -> Result<&'static LoadedModule, String> {
    let resolver = resolve;
    let opts = LoadOptions::new(&resolver).data("mod_driverops", size_of::<mod_ops>());
    // SAFETY: the only data symbol declared is modconf.c's mod_driverops,
    // a 24-byte struct mod_ops that lives for the whole process.
    let m = unsafe { ptm_kload::load_file(path, &opts) }
        .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    Ok(Box::leak(Box::new(m)))
}

fn loaded_entry(m: &'static LoadedModule, name: &str) -> Result<Entry, String> {
    let missing = |e: &str| format!("{name}: the module does not define {e}");
    let init = m.init_fn().ok_or_else(|| missing("_init"))?;
    let fini = m.fini_fn().ok_or_else(|| missing("_fini"))?;
    let info = m.info_fn().ok_or_else(|| missing("_info"))?;
    Ok(Entry { info, init, fini })
}

/// The module file of the shipped Rust module and whether it was named
/// explicitly (`$PTM_KMOD`, a relative path taken from the repository
/// root), else `target/kmod/ptm`.
pub use ptm_test_support::kmod_path;

fn rust_kmod() -> Option<(Entry, &'static LoadedModule)> {
    static E: OnceLock<Option<(Entry, &'static LoadedModule)>> = OnceLock::new();
    *E.get_or_init(|| {
        let (path, explicit) = kmod_path();
        if !explicit && !path.exists() {
            eprintln!(
                "SKIPPED: target/kmod/ptm not built (run make): the \"{RUST_KMOD}\" variant is left out"
            );
            return None;
        }
        let m = load_module(&path).unwrap_or_else(|e| panic!("{RUST_KMOD}: {e}"));
        Some((loaded_entry(m, RUST_KMOD).unwrap_or_else(|e| panic!("{e}")), m))
    })
}

/// The C kernel object: the one build.rs compiled, or the file named by
/// `$PTM_C_KOBJ` (the bench's, built with illumos's full module flags).
fn c_kobj() -> (Entry, &'static LoadedModule) {
    static E: OnceLock<(Entry, &'static LoadedModule)> = OnceLock::new();
    *E.get_or_init(|| {
        let path = std::env::var_os("PTM_C_KOBJ")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(env!("PTM_REAL_C_KOBJ")), PathBuf::from);
        let m = load_module(&path).unwrap_or_else(|e| panic!("{C_KOBJ}: {e}"));
        (loaded_entry(m, C_KOBJ).unwrap_or_else(|e| panic!("{e}")), m)
    })
}

/// The module a loaded variant ([`RUST_KMOD`], [`C_KOBJ`]) runs, as the
/// userland krtld placed it (for tools that look inside, like the bench);
/// `None` for the variants linked into the process.
pub fn loaded_module(v: Variant) -> Option<&'static LoadedModule> {
    match v.name {
        RUST_KMOD => rust_kmod().map(|(_, m)| m),
        C_KOBJ => Some(c_kobj().1),
        _ => None,
    }
}

/// The entry points of a variant of this backend.
pub(crate) fn entry(v: Variant) -> Result<Entry, String> {
    match v.name {
        C_REFERENCE => {
            let (_, info, init, fini) = kernel::MODULES
                .iter()
                .find(|m| m.0 == c"ptm")
                .copied()
                .ok_or("the kernel has no ptm module")?;
            Ok(Entry { info, init, fini })
        }
        RUST_DRIVER => Ok(Entry {
            info: ptm_rs_info,
            init: ptm_rs_init,
            fini: ptm_rs_fini,
        }),
        RUST_KMOD => rust_kmod()
            .map(|(e, _)| e)
            .ok_or_else(|| "target/kmod/ptm is not built".into()),
        C_KOBJ => Ok(c_kobj().0),
        n => Err(format!("no variant {n} in the real-code world")),
    }
}

/// The `drv_linkinfo` a variant's `_info` reports.
pub(crate) fn linkinfo(e: Entry) -> String {
    let mut mi = modinfo::default();
    // SAFETY: _info fills the modinfo it is given.
    unsafe { (e.info)((&mut mi as *mut modinfo).cast()) };
    let raw = &mi.mi_msinfo[0].msi_linkinfo;
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The real-code world as a scenario backend.
pub struct RealBackend;

/// The real-code world.
pub static REAL: RealBackend = RealBackend;

impl Backend for RealBackend {
    fn name(&self) -> &'static str {
        "real"
    }

    /// A world here costs milliseconds and the matrices run one world at a
    /// time: `make test` takes one case in 8 of each large bad-input matrix
    /// (`PTM_REAL_BAD_INPUT_SAMPLE=n` for another share, `BAD_INPUT_FULL=1`
    /// for every case).
    fn bad_input_sample(&self) -> usize {
        std::env::var("PTM_REAL_BAD_INPUT_SAMPLE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8)
    }

    /// Every kernel thread and what it waits for.
    fn stuck_report(&self) -> String {
        crate::kernel::sched::dump()
    }

    fn unavailable(&self) -> Option<String> {
        None
    }

    fn variants(&self) -> Vec<Variant> {
        let mut v = vec![
            Variant {
                name: C_REFERENCE,
                driver: Driver::C,
            },
            Variant {
                name: RUST_DRIVER,
                driver: Driver::Rust,
            },
        ];
        if rust_kmod().is_some() {
            v.push(Variant {
                name: RUST_KMOD,
                driver: Driver::Rust,
            });
        }
        v.push(Variant {
            name: C_KOBJ,
            driver: Driver::C,
        });
        v
    }

    fn world(&self, v: Variant) -> Result<Box<dyn Pty>, String> {
        Ok(Box::new(super::World::new(v)?))
    }
}

impl ptm_scenario::stress::ThreadedBackend for RealBackend {
    /// A threaded world ([`super::World::new_threaded`]); the kernel's task
    /// queue starts its own workers (up to four), whatever `workers` says.
    fn threaded_world(
        &self,
        v: Variant,
        _workers: usize,
    ) -> Result<Box<dyn ptm_scenario::stress::ThreadedPty>, String> {
        Ok(Box::new(super::World::new_threaded(v)?))
    }
}
