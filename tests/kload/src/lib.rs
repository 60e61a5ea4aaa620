//! A userland krtld: loads an illumos amd64 kernel module (an `ET_REL`
//! object, e.g. `target/kmod/ptm`) into the test process the way
//! `kobj_load_module` does, so that the very bytes users would `modload`
//! can run against a userland simulation of the kernel.
//!
//! # What krtld does, and what is modelled here
//!
//! On a real kernel, `kobj_load_module` (`usr/src/uts/common/krtld/kobj.c`)
//! reads the object, `get_progbits` places its sections, `get_syms` rebases
//! its symbols, `do_common`/`do_symbols` binds undefined symbols against the
//! kernel and the module's dependencies, and `do_relocations`
//! (`usr/src/uts/intel/amd64/krtld/kobj_reloc.c`, with the arithmetic of
//! `doreloc.c`) applies the `SHT_RELA` sections of every loaded section.
//! modctl then calls `_info`, `_init` and `_fini`.  This crate does the same
//! steps, in the same order.  What krtld refuses in the object itself is
//! decided by the rules the gate applies too (`krtld_rules::check`, one
//! copy of them): the first refusal comes back as [`LoadError::Refused`].
//!
//! | krtld step | modelled as |
//! |---|---|
//! | every refusal the object alone decides: header, section addresses and alignments, the last `SHT_SYMTAB` and its symbols, relocation sections, types and fields | `krtld_rules::check` → [`LoadError::Refused`] |
//! | `get_progbits`: non-writable alloc sections to the text arena, writable ones (and zeroed `NOBITS`) to the data arena, each at its `sh_addralign` | [`Area`], [`LoadedModule::sections`]; both areas in one mapping **below 2 GiB** |
//! | `do_dynamic` / `depends_on`: `DT_NEEDED` or the `_depends_on` array | reported by [`LoadedModule::depends_on`], not acted on |
//! | `get_syms`: symbol values get the section base added | [`LoadedModule::symbol`] |
//! | `do_symbols`: non-LOCAL undefined symbols looked up in the kernel; unresolved non-weak symbols fail the load; unresolved weak ones stay unbound | resolver callback in [`LoadOptions`]; [`LoadError::Unresolved`] |
//! | `do_relocate`: `S + A` (`- P` if PC-relative), range-checked, **added to the field's existing contents**; references to unresolved weak symbols left untouched | `R_X86_64_64`, `PC32`, `PLT32`, `32S` applied; [`LoadError::RelocationOverflow`] |
//! | modctl `mod_getinfo` / `modinstall` / `moduninstall` | [`LoadedModule::call_info`], [`LoadedModule::call_init`], [`LoadedModule::call_fini`] |
//!
//! # Deliberate differences
//!
//! * **Stricter rules** (`krtld_rules`' documentation lists them): only the
//!   relocation types a kernel-code-model object needs (krtld applies the
//!   `GOTPCREL` family *wrongly* and silently: it has no GOT and writes
//!   `S + A` into a RIP-relative displacement, so such a module loads and
//!   then crashes; `R_X86_64_32` can never fit a kernel address); any
//!   `STT_TLS` symbol; any common symbol.
//! * **`PLT32` is range-checked.**  krtld checks `PC32` and `32S` but not
//!   `PLT32`; an overflowing `PLT32` is refused here rather than truncated.
//! * **Low memory instead of the top 2 GiB.**  A process cannot map the
//!   kernel's address range, but the bottom 2 GiB (`MAP_32BIT`, or hinted
//!   `MAP_FIXED_NOREPLACE`) keep the property the kernel code model relies
//!   on: every module address fits a sign-extended 32-bit immediate and is
//!   within ±2 GiB of every other.
//! * **Trampolines and aliases.**  The simulated kernel lives in the test
//!   executable (PIE, far above 4 GiB), out of reach of `PC32`/`PLT32`/`32S`.
//!   So every bound *function* is reached through a 16-byte trampoline
//!   (`jmp *0(%rip)` + 8-byte address) in low memory, and every reference to
//!   it -- calls, and function pointers stored in `cb_ops`/`dev_ops` alike --
//!   gets the trampoline's address, so pointer comparisons inside the module
//!   stay consistent.  *Data* cannot be trampolined: data declared with
//!   [`LoadOptions::data`] and reached by a 32-bit relocation is copied into a
//!   low-memory alias; data reached only by `R_X86_64_64` keeps its own
//!   address.  [`LoadedModule::import`] / [`LoadedModule::import_at`] map the
//!   addresses the module sees back to the simulator's objects.
//!
//! # Not modelled
//!
//! * CTF (`.SUNW_ctf`), module signatures (`.SUNW_signature`), ksyms export.
//! * SDT probe rewriting (`__dtrace_probe_*` calls turned into NOPs) and
//!   SMAP hot-inlining (`smap_enable`/`smap_disable`): modules using them are
//!   refused with [`LoadError::NotModelled`] instead of being rewritten.
//! * Dependencies: `DT_NEEDED`/`_depends_on` are read and reported, but no
//!   dependency is loaded and symbol lookup goes only to the resolver.
//! * "multiply defined" warnings, `DF_1_IGNMULDEF`/`DF_1_NOKSYMS`, the
//!   MT-unsafe driver check, and the text remapping (`reloc_dest_t`) some
//!   platforms use.
//! * Memory protections are approximations: the text area (including
//!   rodata) is `r-x`, the data area `rw-`.
//!
//! # Example
//!
//! ```no_run
//! use ptm_kload::{load_file, LoadOptions};
//!
//! extern "C" fn mod_install(_ml: *mut core::ffi::c_void) -> i32 { 0 }
//! static MOD_DRIVEROPS: [u8; 24] = [0; 24];
//!
//! let resolve = |name: &str| -> Option<*const ()> {
//!     match name {
//!         "mod_install" => Some(mod_install as *const ()),
//!         "mod_driverops" => Some(MOD_DRIVEROPS.as_ptr().cast()),
//!         _ => None,
//!     }
//! };
//! let opts = LoadOptions::new(&resolve).data("mod_driverops", 24);
//! // SAFETY: MOD_DRIVEROPS is readable for the 24 bytes declared.
//! let module = unsafe { load_file("target/kmod/ptm", &opts) }.expect("load");
//! // SAFETY: the simulated kernel above is what _init calls.
//! let rc = unsafe { module.call_init() }.expect("_init");
//! assert_eq!(rc, 0);
//! ```

#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("ptm-kload runs amd64 kernel code in-process: it needs an x86_64 Linux host");

mod error;
mod loader;
mod mem;

pub use error::LoadError;
pub use krtld_rules::Refusal;
pub use krtld_rules::type_name as relocation_type_name;
pub use loader::{
    Area, Binding, FiniFn, Import, InfoFn, InitFn, LoadOptions, LoadedModule, LoadedSection,
    Region, TRAMPOLINE_SIZE, load, load_file,
};
