//! The gate on the real module that `make` builds.
//!
//! `$PTM_KMOD` names the module (`make test` sets it); by default it is
//! `<repo>/target/kmod/ptm`. The module is built by `make`, not by cargo, so
//! these tests fail with a hint when it is missing instead of building it.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmod_gate::{Allowlist, CKind, CNames, Options, check_with};
use object::{Object, ObjectSymbol, SymbolKind};

use ptm_test_support::{kmod_path, repo_root};

fn module_path() -> PathBuf {
    kmod_path().0
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

fn c_names_path() -> PathBuf {
    repo_root().join("kmod/c-names.txt")
}

fn c_names() -> CNames {
    CNames::from_file(&c_names_path()).expect("kmod/c-names.txt")
}

/// The gate's options for ptm: the defaults and kmod/c-names.txt.
fn options() -> Options {
    Options {
        c_names: c_names(),
        ..Options::default()
    }
}

#[test]
fn real_module_has_no_violations() {
    let allowlist = Allowlist::from_file(&allowlist_path()).expect("kmod/allowlist.txt");
    let report = check_with(&module_bytes(), &allowlist, &options());
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
        .arg("--c-names")
        .arg(c_names_path())
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
        "20 C names required",
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

/// kmod/c-names.txt is exactly what ptm.c defines: every function and
/// object of the C kernel object (ptm.c compiled with the illumos kernel
/// flags), each of the kind listed, and nothing more.
#[test]
fn c_names_are_what_ptm_c_defines() {
    let Some(ptm_c) = std::env::var_os("PTM_REFERENCE_C").filter(|v| !v.is_empty()) else {
        println!("SKIPPED: PTM_REFERENCE_C not set (c_names_are_what_ptm_c_defines)");
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-names");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let object = dir.join("ptm-c.o");
    ptm_test_support::build_c_reference_kobj(
        Path::new(&ptm_c),
        &repo_root().join("include"),
        &object,
    )
    .expect("compile ptm.c as a kernel object");
    let bytes = std::fs::read(&object).expect("read the C object");
    let file = object::File::parse(&*bytes).expect("parse the C object");
    let mut defined: Vec<(String, CKind)> = file
        .symbols()
        .filter(|s| s.is_definition())
        .filter_map(|s| {
            let kind = match s.kind() {
                SymbolKind::Text => CKind::Function,
                SymbolKind::Data => CKind::Object,
                _ => return None,
            };
            Some((s.name().ok()?.to_owned(), kind))
        })
        .collect();
    let mut listed: Vec<(String, CKind)> =
        c_names().iter().map(|(n, k)| (n.to_owned(), k)).collect();
    let key = |(n, _): &(String, CKind)| n.clone();
    defined.sort_by_key(key);
    listed.sort_by_key(key);
    assert_eq!(listed, defined, "kmod/c-names.txt against ptm.c's object");
    // And the real module defines them all (its gate test above checks the
    // kinds as well).
    let report = check_with(
        &module_bytes(),
        &Allowlist::from_file(&allowlist_path()).unwrap(),
        &options(),
    );
    assert!(report.passed(), "{report}");
}
