//! The loaded-module variants (issue 4, "run the shipped module bytes"):
//! which of them this run has, that they really run the loaded bytes, and
//! that a module built for rustc's stock `x86_64-unknown-none` target is
//! refused by the loader rather than run.
//!
//! The stock-target tests build their objects here, with the commands of
//! the Makefile's `kmod` and `gate-demo` targets (cargo, then the module
//! link step `kmod/link.sh`): a few seconds after `make kmod`, about a
//! minute in a target directory where the `ptm` build script's bindgen was
//! never built for the `kmod` profile, about a second once cached.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use ptm_scenario::scenarios::common::pair;
use ptm_sim::ptm_kload::{LoadError, Refusal};
use ptm_sim::*;
use ptm_test_support::{repo_root, run};

#[test]
fn loaded_variants_are_in_the_matrix_when_they_should_be() {
    let names: Vec<&str> = variants().iter().map(|v| v.name).collect();
    println!("driver variants: {names:?}");
    if std::env::var_os("PTM_KMOD").is_some_and(|v| !v.is_empty()) {
        assert!(names.contains(&RUST_KMOD), "PTM_KMOD is set: {names:?}");
    }
    assert_eq!(
        names.contains(&C_KOBJ),
        c_reference().is_some(),
        "the C kernel object is loaded exactly when the C reference is built in"
    );
    for v in variants() {
        let loaded = matches!(v.name, RUST_KMOD | C_KOBJ);
        assert_eq!(v.loaded_module().is_some(), loaded, "{}", v.name);
        assert_eq!(v.is_c_ptm(), v.name.starts_with("C "), "{}", v.name);
    }
}

#[test]
fn loaded_variants_run_the_loaded_bytes_against_the_simulated_kernel() {
    let loaded: Vec<Variant> = variants()
        .into_iter()
        .filter(|v| v.loaded_module().is_some())
        .collect();
    if loaded.is_empty() {
        println!("SKIPPED: no loaded-module variant (run make, or set PTM_REFERENCE_C)");
        return;
    }
    let kernel: Vec<(&str, usize)> = kernel_symbols()
        .into_iter()
        .map(|(n, a)| (n, a as usize))
        .collect();
    for v in loaded {
        let m = v.loaded_module().unwrap();
        // The entry points the simulator calls are the module's own text.
        assert!(m.text().contains(v.init as usize), "{}: _init", v.name);
        assert!(m.text().contains(v.fini as usize), "{}: _fini", v.name);
        assert!(m.text().contains(v.info as usize), "{}: _info", v.name);
        // Every import is bound to the simulator's kernel (memcpy & co.
        // aside: the C library's), and every function through a trampoline.
        assert!(!m.imports().is_empty(), "{}", v.name);
        for i in m.imports() {
            let target = i.target() as usize;
            match kernel.iter().find(|(n, _)| *n == i.name()) {
                Some(&(_, a)) => assert_eq!(target, a, "{}: {}", v.name, i.name()),
                None => assert!(
                    ["memcpy", "memmove", "memset", "memcmp"].contains(&i.name()),
                    "{}: {} is not a simulator symbol",
                    v.name,
                    i.name()
                ),
            }
        }
        // A session, with the driver's queue procedures inside the module.
        let mut w = World::new(v).unwrap();
        let (m_fd, s_fd, _) = pair(&mut w);
        assert_eq!(w.write(m_fd, b"loaded").unwrap(), 6);
        assert_eq!(w.read(s_fd, 100).unwrap(), b"loaded");
        w.finish().unwrap();
    }
}

// --- stock x86_64-unknown-none builds --------------------------------------

const STOCK: &str = "x86_64-unknown-none";

/// The flags that bring the stock target closest to a kernel module (the
/// Makefile's gate-demo uses the same).
const CLOSEST_RUSTFLAGS: &str =
    "-C relocation-model=static -C code-model=kernel -C force-frame-pointers=yes";

fn scratch() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("stock-target")
}

fn tool(var: &str, default: &str) -> OsString {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.into())
}

/// Whether rustup installed a prebuilt core for the stock target; if not,
/// the build rebuilds it from source (-Zbuild-std, as make gate-demo does).
fn prebuilt_core() -> bool {
    let out = Command::new(tool("RUSTC", "rustc"))
        .args(["--print", "target-libdir", "--target", STOCK])
        .output();
    let Ok(out) = out else { return false };
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::read_dir(dir).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
    })
}

/// A cargo command for the stock target: no inherited RUSTFLAGS, the given
/// target directory. RUSTC_BOOTSTRAP=1 as in `make kmod` (which needs it):
/// it is part of what cargo fingerprints, so without it the two builds
/// would rebuild each other's host artifacts (bindgen) in a shared target
/// directory. It unlocks nothing here unless core must be rebuilt from
/// source (see [`build_std`]).
fn stock_cargo(target_dir: &Path, rustflags: &str) -> Command {
    let mut cmd = Command::new(tool("CARGO", "cargo"));
    cmd.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", target_dir);
    if !rustflags.is_empty() {
        cmd.env("RUSTFLAGS", rustflags);
    }
    cmd
}

fn build_std(cmd: &mut Command) {
    if !prebuilt_core() {
        cmd.arg("-Zbuild-std=core,compiler_builtins");
    }
}

/// The module link step, `kmod/link.sh` (as `make kmod` runs it): `ld -r`
/// with the module's link script, then objcopy. `LD`, `OBJCOPY` and
/// `READELF` pass through from the environment.
fn link_module(staticlib: &Path, out: &Path) {
    run(Command::new(repo_root().join("kmod/link.sh"))
        .arg(staticlib)
        .arg(out));
}

/// The `ptm` crate built as a staticlib for the stock target with
/// `rustflags`, linked like target/kmod/ptm.
///
/// It is built in the target directory of the running `cargo test` (the
/// parent of `CARGO_TARGET_TMPDIR`; cargo holds no lock on it while tests
/// run), whose `kmod`-profile host artifacts (the build script's bindgen)
/// `make kmod` has already built when it is the repository's `target/`:
/// the stock build only adds `target/x86_64-unknown-none/kmod/`.
fn stock_ptm(name: &str, rustflags: &str) -> PathBuf {
    let dir = scratch();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target dir>/tmp")
        .to_path_buf();
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    let mut cmd = stock_cargo(&target_dir, rustflags);
    cmd.args([
        "rustc",
        "--locked",
        "-q",
        "-p",
        "ptm",
        "--profile",
        "kmod",
        "--target",
        STOCK,
    ])
    .arg("--manifest-path")
    .arg(repo_root().join("Cargo.toml"));
    build_std(&mut cmd);
    run(cmd.args(["--crate-type", "staticlib"]));
    let out = dir.join(format!("ptm-{name}"));
    link_module(&target_dir.join(STOCK).join("kmod/libptm.a"), &out);
    out
}

/// Asserts that the loader refuses `object` for a GOT-relative relocation.
fn assert_refused_for_got(object: &Path) {
    match load_kernel_module(object) {
        Ok(m) => panic!(
            "the loader accepted the stock-target object {} ({} imports): it would have run it",
            object.display(),
            m.imports().len()
        ),
        Err(e) => {
            let LoadError::Refused(Refusal::UnsupportedRelocation { type_name, .. }) = &e else {
                panic!(
                    "refused {}, but not for a GOT relocation: {e}",
                    object.display()
                );
            };
            assert!(type_name.contains("GOTPCREL"), "{e}");
            println!("refused {}: {e}", object.display());
        }
    }
}

/// The Rust driver itself, built for the stock target as it comes (PIE
/// relocation model): every call into the kernel goes through the GOT, and
/// the loader (like krtld, which would apply those wrongly) must not run it.
#[test]
fn ptm_built_for_the_stock_target_is_refused_by_the_loader() {
    let obj = stock_ptm("default", "");
    assert_refused_for_got(&obj);
}

/// With the flags that bring the stock target closest (static, kernel code
/// model; `make gate-demo`), the calls LLVM itself makes (the `memset`
/// libcall in tools/kmod-gate/fixtures/minimod) still go through the GOT:
/// refused too. (ptm happens to contain no libcall today, so its own
/// closest-flags build would load; the project's target spec makes that
/// independent of luck.)
#[test]
fn stock_target_libcall_through_the_got_is_refused_by_the_loader() {
    let dir = scratch();
    let target_dir = dir.join("minimod");
    let mut cmd = stock_cargo(&target_dir, CLOSEST_RUSTFLAGS);
    cmd.args(["build", "--locked", "-q", "--release", "--target", STOCK])
        .arg("--manifest-path")
        .arg(repo_root().join("tools/kmod-gate/fixtures/minimod/Cargo.toml"));
    build_std(&mut cmd);
    run(&mut cmd);
    let obj = dir.join("minimod-stock");
    link_module(&target_dir.join(STOCK).join("release/libminimod.a"), &obj);
    assert_refused_for_got(&obj);
}
