//! Compiles `csrc/ptlock_macros.c`: the PT_ENTER/PT_EXIT macros of the
//! project's `include/ptm_abi.h`, expanded in four functions for the model
//! checker. Kernel flags (`-D_KERNEL`, freestanding, no system headers), and
//! `-DDEBUG` so that the macros' `ASSERT`s are compiled in and report through
//! the model's `assfail`.

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let include = manifest.join("..").join("..").join("include");
    let source = manifest.join("csrc").join("ptlock_macros.c");
    println!("cargo::rerun-if-changed={}", source.display());
    println!(
        "cargo::rerun-if-changed={}",
        include.join("ptm_abi.h").display()
    );

    cc::Build::new()
        .file(&source)
        .include(&include)
        .flag("-std=gnu99")
        .flag("-nostdinc")
        .flag("-ffreestanding")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .define("_KERNEL", None)
        .define("DEBUG", None)
        .compile("ptlock_macros");
}
