//! Drivers under test: a variant is a set of module entry points (`_init`,
//! `_fini`, `_info`) plus a name. The simulator drives any of them exactly as
//! the kernel does (see [`crate::World::new`]).

use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;

use ptm::sys::modinfo;
use ptm_scenario::Driver;

mod loaded;
pub use loaded::{
    C_KOBJ, RUST_KMOD, kmod_path, load_kernel_image, load_kernel_module, loaded_c_object,
    loaded_rust_module,
};

/// Name of the compiled-in C reference variant.
pub const C_REFERENCE: &str = "C ptm.c (reference)";
/// Name of the compiled-in Rust driver variant.
pub const RUST_DRIVER: &str = "Rust ptm";

/// `int _init(void)` / `int _fini(void)`.
pub type EntryFn = unsafe extern "C" fn() -> c_int;
/// `int _info(struct modinfo *)`.
pub type InfoFn = unsafe extern "C" fn(*mut modinfo) -> c_int;

/// A driver variant: its module entry points.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Name used in trace headers and failure messages.
    pub name: &'static str,
    pub init: EntryFn,
    pub fini: EntryFn,
    pub info: InfoFn,
}

impl Variant {
    /// A variant from raw entry points (for instance those of a module
    /// loaded by a userland krtld).
    pub fn from_raw(name: &'static str, init: EntryFn, fini: EntryFn, info: InfoFn) -> Variant {
        Variant {
            name,
            init,
            fini,
            info,
        }
    }

    pub(crate) fn key(&self) -> usize {
        self.init as usize
    }

    /// Whether this variant runs the illumos C `ptm.c` (compiled in, or
    /// loaded as a kernel object), as opposed to the Rust driver: for
    /// scenarios where the two deliberately differ.
    pub fn is_c_ptm(&self) -> bool {
        self.name == C_REFERENCE || self.name == C_KOBJ
    }

    /// This variant as the scenario API names it.
    pub fn scenario(&self) -> ptm_scenario::Variant {
        ptm_scenario::Variant {
            name: self.name,
            driver: if self.is_c_ptm() {
                Driver::C
            } else {
                Driver::Rust
            },
        }
    }
}

#[cfg(has_c_oracle)]
unsafe extern "C" {
    fn ptm_c_init() -> c_int;
    fn ptm_c_fini() -> c_int;
    fn ptm_c_info(mi: *mut modinfo) -> c_int;
}

/// The unmodified illumos `ptm.c`, when the build had `PTM_REFERENCE_C`.
pub fn c_reference() -> Option<Variant> {
    #[cfg(has_c_oracle)]
    {
        Some(Variant {
            name: C_REFERENCE,
            init: ptm_c_init,
            fini: ptm_c_fini,
            info: ptm_c_info,
        })
    }
    #[cfg(not(has_c_oracle))]
    {
        None
    }
}

// Exported by the `ptm` crate when it is built for the host.
unsafe extern "C" {
    fn ptm_rs_init() -> c_int;
    fn ptm_rs_fini() -> c_int;
    fn ptm_rs_info(mi: *mut modinfo) -> c_int;
}

/// The Rust driver (the `ptm` crate built for the host).
pub fn rust_driver() -> Option<Variant> {
    Some(Variant {
        name: RUST_DRIVER,
        init: ptm_rs_init,
        fini: ptm_rs_fini,
        info: ptm_rs_info,
    })
}

/// Every variant available in this build, the C oracle first: the C
/// reference when it was compiled in, the Rust driver, the shipped kernel
/// module loaded by the userland krtld when it is built (`make`; required
/// when `PTM_KMOD` is set), and the C reference compiled as a kernel object
/// and loaded the same way (with `PTM_REFERENCE_C`). See [`loaded_rust_module`]
/// and [`loaded_c_object`].
///
/// # Panics
/// When a module that should be loaded cannot be (see those functions).
pub fn variants() -> Vec<Variant> {
    let mut v = Vec::new();
    v.extend(c_reference());
    v.extend(rust_driver());
    v.extend(loaded_rust_module());
    v.extend(loaded_c_object());
    v
}

/// Whether the C reference is compiled in; prints the SKIPPED line when not.
pub fn require_c_oracle(test: &str) -> Option<Variant> {
    let v = c_reference();
    if v.is_none() {
        println!("SKIPPED: PTM_REFERENCE_C not set ({test})");
    }
    v
}

/// Serialises worlds of the same variant across threads: a driver's own
/// statics (ptm's `ptm_dip`, its modlinkage) exist once per process. A thread
/// may hold several worlds of one variant (they are used one at a time).
static LOCKS: Mutex<Option<HashMap<usize, (ThreadId, usize)>>> = Mutex::new(None);
static FREED: Condvar = Condvar::new();

pub(crate) struct VariantLock {
    key: usize,
}

impl VariantLock {
    pub fn acquire(key: usize) -> VariantLock {
        let me = std::thread::current().id();
        let mut g = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let map = g.get_or_insert_with(HashMap::new);
            match map.get_mut(&key) {
                None => {
                    map.insert(key, (me, 1));
                    break;
                }
                Some((owner, n)) if *owner == me => {
                    *n += 1;
                    break;
                }
                Some(_) => {
                    g = FREED.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
        VariantLock { key }
    }
}

impl Drop for VariantLock {
    fn drop(&mut self) {
        let mut g = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = g.as_mut()
            && let Some((_, n)) = map.get_mut(&self.key)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
        FREED.notify_all();
    }
}
