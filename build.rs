//! Generates the raw illumos bindings from `include/ptm_abi.h` with bindgen.
//!
//! The header is this project's own description of the illumos amd64
//! DDI/STREAMS ABI subset that ptm uses. libclang parses it for the illumos
//! target triple with no system headers, so nothing on the build host (Linux
//! or illumos) can leak into the layouts. bindgen's layout tests, emitted as
//! compile-time assertions, check every size and offset a second time from
//! the Rust side (the header's `_Static_assert`s are the first).

use std::env;
use std::path::PathBuf;

use bindgen::callbacks::{IntKind, ParseCallbacks};

/// Gives each integer constant the C type of its macro expression.
///
/// Most illumos constants are plain `int` expressions; the few that are
/// not are listed explicitly, as `docs/abi.md` §4 lists them.
#[derive(Debug)]
struct MacroTypes;

impl ParseCallbacks for MacroTypes {
    fn int_macro(&self, name: &str, _value: i64) -> Option<IntKind> {
        Some(match name {
            "NOERROR" => IntKind::UChar,
            "TRANSPARENT" => IntKind::UInt,
            "DDI_MAJOR_T_NONE" => IntKind::UInt,
            "NODEV" | "MAXMIN64" | "MAXMAJ64" => IntKind::ULong,
            _ => IntKind::Int,
        })
    }
}

fn main() {
    kernel_cfg();
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let include = manifest.join("include");
    let header = include.join("ptm_abi.h");
    println!("cargo::rerun-if-changed={}", header.display());

    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_args([
            // The ABI being described, not the host's: amd64 illumos, kernel.
            "--target=x86_64-pc-solaris2.11",
            "-nostdinc",
            "-ffreestanding",
            "-D_KERNEL",
            "-U__EXTENSIONS__",
            "-U_XOPEN_SOURCE",
            "-U_LARGEFILE_SOURCE",
            "-U_LARGEFILE64_SOURCE",
        ])
        .clang_arg(format!("-I{}", include.display()))
        .use_core()
        .ctypes_prefix("core::ffi")
        .layout_tests(true)
        .derive_default(true)
        .derive_debug(false)
        .generate_comments(false)
        .merge_extern_blocks(true)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(MacroTypes))
        // Opaque to Rust as they are to ptm.
        .opaque_type("kmutex")
        .opaque_type("kcondvar")
        .blocklist_item("PTM_ABI_H")
        .generate()
        .expect("bindgen could not translate include/ptm_abi.h");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings
        .write_to_file(&out)
        .expect("could not write the generated bindings");
}

/// Sets `cfg(ptm_kernel)` when the crate is built for the kernel (a target
/// with no operating system: `x86_64-illumos-kernel.json`, as `make kmod`
/// builds it). Under it the module's objects and functions carry C's names
/// (`ptmwint`, `ptmopen`, ..., see `kmod/c-names.txt`) and `_init`/`_fini`/
/// `_info` are the entry points. The host build (an rlib linked into the
/// test programs, beside the C `ptm.c` and a simulated kernel) keeps Rust's
/// mangled names, so it defines no global symbol but `ptm_rs_init`,
/// `ptm_rs_fini` and `ptm_rs_info`.
fn kernel_cfg() {
    println!("cargo::rustc-check-cfg=cfg(ptm_kernel)");
    if env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "none") {
        println!("cargo::rustc-cfg=ptm_kernel");
    }
}
