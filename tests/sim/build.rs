//! Builds the C parts of the simulator.
//!
//! * `csrc/shim.c` (always): the variadic kernel functions (`cmn_err`) that
//!   stable Rust cannot define; they format and forward to Rust.
//! * The C reference driver (only when `PTM_REFERENCE_C` names a file): the
//!   unmodified illumos `ptm.c`, compiled against the project's ABI header
//!   with its module entry points renamed (`_init` → `ptm_c_init`, ...),
//!   because glibc's crti already defines `_init`/`_fini` in every
//!   executable. Its presence is announced with `cfg(has_c_oracle)`.
//! * With it, the same `ptm.c` compiled unchanged into an illumos kernel
//!   object (`ptm_test_support::build_c_reference_kobj`: the illumos kernel flags)
//!   at `$OUT_DIR/ptm-c.kobj`, named by `PTM_SIM_C_KOBJ`, for the variant
//!   that loads it (src/variant/loaded.rs).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=PTM_REFERENCE_C");
    println!("cargo::rerun-if-changed=csrc/shim.c");
    println!("cargo::rustc-check-cfg=cfg(has_c_oracle)");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.join("..").join("..");
    let include = root.join("include");
    println!(
        "cargo::rerun-if-changed={}",
        include.join("ptm_abi.h").display()
    );

    cc::Build::new()
        .file(manifest.join("csrc").join("shim.c"))
        .warnings(true)
        .flag("-Wall")
        .compile("ptm_sim_shim");

    let Some(reference) = env::var_os("PTM_REFERENCE_C").filter(|v| !v.is_empty()) else {
        return;
    };
    // A relative path is taken from the workspace root first (where the
    // project's commands are run), then from this package.
    let mut path = PathBuf::from(&reference);
    if path.is_relative() {
        let from_root = root.join(&path);
        path = if from_root.exists() {
            from_root
        } else {
            manifest.join(&path)
        };
    }
    if !path.exists() {
        panic!(
            "PTM_REFERENCE_C={} does not name an existing file",
            path.display()
        );
    }
    println!("cargo::rerun-if-changed={}", path.display());

    cc::Build::new()
        .file(&path)
        .include(&include)
        .warnings(false)
        .extra_warnings(false)
        .flag("-std=gnu99")
        .flag("-nostdinc")
        .flag("-ffreestanding")
        .flag("-Wall")
        .flag("-Wno-missing-braces")
        .flag("-Werror")
        .define("_KERNEL", None)
        .define("_init", Some("ptm_c_init"))
        .define("_fini", Some("ptm_c_fini"))
        .define("_info", Some("ptm_c_info"))
        .compile("ptm_c_oracle");
    println!("cargo::rustc-cfg=has_c_oracle");

    let kobj = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("ptm-c.kobj");
    if let Err(e) = ptm_test_support::build_c_reference_kobj(&path, &include, &kobj) {
        panic!("cannot compile {} as a kernel object: {e}", path.display());
    }
    println!("cargo::rustc-env=PTM_SIM_C_KOBJ={}", kobj.display());
}
