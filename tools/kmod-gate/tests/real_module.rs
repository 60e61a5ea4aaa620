//! The gate on the real module that `make` builds.
//!
//! `$PTM_KMOD` names the module (`make test` sets it); by default it is
//! `<repo>/target/kmod/ptm`. The module is built by `make`, not by cargo, so
//! these tests fail with a hint when it is missing instead of building it.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmod_gate::{Allowlist, check};

fn repo_root() -> PathBuf {
    // tools/kmod-gate -> the repository root.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .expect("repository root")
        .to_path_buf()
}

fn module_path() -> PathBuf {
    std::env::var_os("PTM_KMOD")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/kmod/ptm"))
}

fn module_bytes() -> Vec<u8> {
    let path = module_path();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the kernel module {}: {e}\n\
             build it first: run `make` at the repository root (or `make test`, \
             which builds it before running cargo test)",
            path.display()
        )
    })
}

fn allowlist_path() -> PathBuf {
    repo_root().join("kmod/allowlist.txt")
}

#[test]
fn real_module_has_no_violations() {
    let allowlist = Allowlist::from_file(&allowlist_path()).expect("kmod/allowlist.txt");
    let report = check(&module_bytes(), &allowlist);
    assert!(
        report.passed(),
        "the gate rejects {}:\n{report}",
        module_path().display()
    );
    let figures = &report.figures;
    assert!(figures.text > 0, "{report}");
    assert!(figures.functions > 0, "{report}");
    for entry in ["mod_install", "mod_remove", "mod_info"] {
        assert!(
            figures.undefined.iter().any(|u| u == entry),
            "the module does not import {entry}:\n{report}"
        );
    }
}

#[test]
fn binary_prints_the_figures_and_passes() {
    let _ = module_bytes(); // the hint, if the module is missing
    let output = Command::new(env!("CARGO_BIN_EXE_kmod-gate"))
        .arg(module_path())
        .arg("--allowlist")
        .arg(allowlist_path())
        .output()
        .expect("run kmod-gate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kmod-gate failed:\n{stdout}");
    for figure in [
        "sections: .text ",
        ".rodata ",
        ".data ",
        ".bss ",
        "relocations in allocated sections: ",
        "R_X86_64_PLT32 ",
        "largest stack frame: ",
        "undefined symbols (",
        "PASS: no violations",
    ] {
        assert!(stdout.contains(figure), "missing `{figure}` in:\n{stdout}");
    }
}

#[test]
fn binary_exits_nonzero_on_a_violation() {
    // The real module with an empty allowlist: every import is a violation.
    let _ = module_bytes();
    let output = Command::new(env!("CARGO_BIN_EXE_kmod-gate"))
        .arg(module_path())
        .output()
        .expect("run kmod-gate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("VIOLATION [undefined-symbol]"), "{stdout}");
    assert!(stdout.contains("FAIL: "), "{stdout}");
}
