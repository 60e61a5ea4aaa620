//! Helpers shared by the ptm-kload integration tests: building objects with
//! the host gcc/ld into a temporary directory, and inspecting them.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget};

/// Serialises the tests of one binary that load modules, so that checks of
/// `/proc/self/maps` (protections, unmapping) cannot see another test's
/// mapping at a reused address.
pub fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ptm-kload-test")
        .tempdir()
        .expect("temporary directory")
}

pub use ptm_test_support::run;

/// Writes `source` to `dir/name.c` and compiles it with `gcc <flags> -c`.
pub fn gcc(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, source).expect("write C source");
    run(Command::new(ptm_test_support::c_compiler())
        .args(flags)
        .arg("-c")
        .arg(&c)
        .arg("-o")
        .arg(&o));
    o
}

/// Writes `source` to `dir/name.c` and compiles it with the illumos kernel
/// flags (`ptm_test_support::KERNEL_CFLAGS`) plus `extra`.
pub fn kernel_gcc(dir: &Path, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, source).expect("write C source");
    ptm_test_support::compile_kernel_object(&c, &[], extra, &o).expect("compile kernel object");
    o
}

/// The fixture directory of this crate.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One relocation of an object, as read back with the `object` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloc {
    pub section: String,
    pub r_type: object::elf::RelocationType,
    pub symbol: String,
}

/// Every relocation in the object's SHF_ALLOC sections.
pub fn relocations(path: &Path) -> Vec<Reloc> {
    let bytes = std::fs::read(path).expect("read object");
    let file = ElfFile64::<object::Endianness>::parse(&*bytes).expect("parse object");
    let mut out = Vec::new();
    for section in file.sections() {
        let object::SectionFlags::Elf { sh_flags, .. } = section.flags() else {
            continue;
        };
        if !sh_flags.contains(object::elf::SHF_ALLOC) {
            continue;
        }
        for (_, r) in section.relocations() {
            let RelocationFlags::Elf { r_type } = r.flags() else {
                continue;
            };
            let symbol = match r.target() {
                RelocationTarget::Symbol(i) => {
                    let sym = file.symbol_by_index(i).expect("symbol");
                    match sym.section_index() {
                        Some(s) if sym.name().unwrap_or("").is_empty() => file
                            .section_by_index(s)
                            .and_then(|s| s.name().map(str::to_owned))
                            .unwrap_or_default(),
                        _ => sym.name().unwrap_or("").to_owned(),
                    }
                }
                _ => String::new(),
            };
            out.push(Reloc {
                section: section.name().unwrap_or("").to_owned(),
                r_type,
                symbol,
            });
        }
    }
    out
}

/// Asserts that the object has at least one relocation of `r_type` against
/// `symbol` (the precondition that makes a test about it meaningful).
pub fn assert_has_relocation(path: &Path, r_type: object::elf::RelocationType, symbol: &str) {
    let relocs = relocations(path);
    assert!(
        relocs
            .iter()
            .any(|r| r.r_type == r_type && r.symbol == symbol),
        "{} has no {} against {symbol}; it has {relocs:#?}",
        path.display(),
        ptm_kload::relocation_type_name(r_type.0)
    );
}

/// The protection string (`r-xp` etc.) of the mapping in /proc/self/maps
/// that contains `addr`, if any.
pub fn protection_of(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let perms = fields.next()?;
        let (lo, hi) = range.split_once('-')?;
        let lo = usize::from_str_radix(lo, 16).ok()?;
        let hi = usize::from_str_radix(hi, 16).ok()?;
        if (lo..hi).contains(&addr) {
            return Some(perms.to_owned());
        }
    }
    None
}

/// A function for resolvers to hand out when the test does not call it.
pub extern "C" fn never_called() -> i32 {
    eprintln!("ptm-kload test: a stub that should never run was called");
    std::process::abort()
}
