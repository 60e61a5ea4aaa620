//! Objects krtld refuses, or would silently mis-load, are refused with a
//! message naming the problem.  Each object is built at test time with the
//! host gcc/ld (or crafted with `object::write`, or patched from a good
//! object), and each test first checks that the object really has the
//! defect it is about, so that a refusal for some other reason cannot pass.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::path::Path;
use std::process::Command;

use object::elf;
use object::write::{Object as WObject, Relocation, StandardSection, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, LittleEndian, RelocationFlags, SymbolFlags, SymbolKind,
    SymbolScope,
};
use ptm_kload::{LoadError, LoadOptions, LoadedModule, Refusal, load, load_file};

/// Resolves every name to a function that must never run.
fn resolve_everything(_: &str) -> Option<*const ()> {
    Some(common::never_called as *const ())
}

fn load_path(
    path: &Path,
    resolve: &dyn Fn(&str) -> Option<*const ()>,
) -> Result<LoadedModule, LoadError> {
    // SAFETY: no data symbols are declared, so nothing is dereferenced.
    unsafe { load_file(path, &LoadOptions::new(resolve)) }
}

fn load_bytes(
    bytes: &[u8],
    resolve: &dyn Fn(&str) -> Option<*const ()>,
) -> Result<LoadedModule, LoadError> {
    // SAFETY: no data symbols are declared, so nothing is dereferenced.
    unsafe { load(bytes, &LoadOptions::new(resolve)) }
}

fn expect_refusal(result: Result<LoadedModule, LoadError>) -> (LoadError, String) {
    match result {
        Ok(m) => panic!("module was loaded but should have been refused: {m:?}"),
        Err(e) => {
            let msg = e.to_string();
            (e, msg)
        }
    }
}

fn assert_mentions(msg: &str, words: &[&str]) {
    for w in words {
        assert!(msg.contains(w), "message does not mention {w:?}: {msg}");
    }
}

// ---------------------------------------------------------------------------
// GOT relocations: krtld would silently mis-relocate them.

const EXTERN_CALL: &str = "extern int ext(void);\nint f(void) { return (ext() + 1); }\n";
const EXTERN_DATA: &str = "extern int v;\nint g(void) { return (v); }\n";

#[test]
fn gotpcrelx_from_a_pic_no_plt_extern_call_is_refused() {
    let dir = common::tempdir();
    let obj = common::gcc(
        dir.path(),
        "got_call",
        EXTERN_CALL,
        &["-fpic", "-O2", "-fno-plt"],
    );
    common::assert_has_relocation(&obj, elf::R_X86_64_GOTPCRELX, "ext");
    let (e, msg) = expect_refusal(load_path(&obj, &resolve_everything));
    assert!(
        matches!(
            e,
            LoadError::Refused(Refusal::UnsupportedRelocation { r_type, .. }) if r_type == elf::R_X86_64_GOTPCRELX.0
        ),
        "{e:?}"
    );
    assert_mentions(&msg, &["R_X86_64_GOTPCRELX", "'ext'", ".text", "no GOT"]);
}

#[test]
fn rex_gotpcrelx_from_pic_extern_data_access_is_refused() {
    let dir = common::tempdir();
    let obj = common::gcc(dir.path(), "got_data", EXTERN_DATA, &["-fpic", "-O2"]);
    common::assert_has_relocation(&obj, elf::R_X86_64_REX_GOTPCRELX, "v");
    let (e, msg) = expect_refusal(load_path(&obj, &resolve_everything));
    assert!(
        matches!(
            e,
            LoadError::Refused(Refusal::UnsupportedRelocation { r_type, .. }) if r_type == elf::R_X86_64_REX_GOTPCRELX.0
        ),
        "{e:?}"
    );
    assert_mentions(&msg, &["R_X86_64_REX_GOTPCRELX", "'v'", "no GOT"]);
}

#[test]
fn plain_gotpcrel_without_relaxation_is_refused() {
    let dir = common::tempdir();
    let obj = common::gcc(
        dir.path(),
        "got_norelax",
        EXTERN_CALL,
        &["-fpic", "-O2", "-fno-plt", "-Wa,-mrelax-relocations=no"],
    );
    common::assert_has_relocation(&obj, elf::R_X86_64_GOTPCREL, "ext");
    let (e, msg) = expect_refusal(load_path(&obj, &resolve_everything));
    assert!(
        matches!(
            e,
            LoadError::Refused(Refusal::UnsupportedRelocation { r_type, .. }) if r_type == elf::R_X86_64_GOTPCREL.0
        ),
        "{e:?}"
    );
    assert_mentions(&msg, &["R_X86_64_GOTPCREL ", "'ext'", "no GOT"]);
}

static EXT_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
extern "C" fn ext_impl() -> i32 {
    EXT_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    41
}

/// Control for the GOT tests: `-fpic` alone gives a PLT32 call (and PC32 in
/// `.eh_frame`), which krtld handles, so such an object loads and works.
#[test]
fn control_pic_object_with_only_plt32_calls_loads_and_runs() {
    let dir = common::tempdir();
    let obj = common::gcc(dir.path(), "pic_plt", EXTERN_CALL, &["-fpic", "-O2"]);
    common::assert_has_relocation(&obj, elf::R_X86_64_PLT32, "ext");
    let resolve = |n: &str| (n == "ext").then_some(ext_impl as *const ());
    let m = load_path(&obj, &resolve).expect("PLT32-only PIC object loads");
    let f = m.symbol("f").unwrap();
    // SAFETY: f is `int f(void)`, calling the bound ext_impl.
    let r = unsafe { std::mem::transmute::<*const (), unsafe extern "C" fn() -> i32>(f)() };
    assert_eq!(r, 42);
}

// ---------------------------------------------------------------------------
// Other relocation types krtld refuses or that cannot work on a kernel.

#[test]
fn r_x86_64_32_from_the_small_code_model_is_refused() {
    let dir = common::tempdir();
    let src = "static int x;\nint *f(void) { return (&x); }\n";
    let obj = common::gcc(
        dir.path(),
        "small",
        src,
        &["-O2", "-fno-pic", "-fno-pie", "-mcmodel=small"],
    );
    common::assert_has_relocation(&obj, elf::R_X86_64_32, ".bss");
    let (e, msg) = expect_refusal(load_path(&obj, &resolve_everything));
    assert!(
        matches!(
            e,
            LoadError::Refused(Refusal::UnsupportedRelocation { r_type, .. }) if r_type == elf::R_X86_64_32.0
        ),
        "{e:?}"
    );
    assert_mentions(&msg, &["R_X86_64_32 ", "zero-extend", "top 2 GiB"]);
}

#[test]
fn tls_symbols_are_refused() {
    let dir = common::tempdir();
    let src = "extern __thread int tls_var;\nint f(void) { return (tls_var); }\n";
    let obj = common::gcc(
        dir.path(),
        "tls",
        src,
        &["-O2", "-fno-pic", "-mcmodel=kernel"],
    );
    let (e, msg) = expect_refusal(load_path(&obj, &resolve_everything));
    assert!(
        matches!(e, LoadError::Refused(Refusal::TlsSymbol { .. })),
        "{e:?}"
    );
    assert_mentions(&msg, &["TLS", "'tls_var'"]);
}

#[test]
fn sdt_probe_sites_are_refused_as_not_modelled() {
    let dir = common::tempdir();
    let src = "extern void __dtrace_probe_ptm__open(long);\nvoid f(long x) { __dtrace_probe_ptm__open(x); }\n";
    let obj = common::kernel_gcc(dir.path(), "sdt", src, &[]);
    let resolve = |_: &str| None;
    let (e, msg) = expect_refusal(load_path(&obj, &resolve));
    assert!(matches!(e, LoadError::NotModelled { .. }), "{e:?}");
    assert_mentions(&msg, &["'__dtrace_probe_ptm__open'", "SDT"]);
}

// ---------------------------------------------------------------------------
// Section placement.

#[test]
fn a_non_zero_section_address_from_an_unpinned_ld_r_script_is_refused() {
    let dir = common::tempdir();
    let src = "int f(int x) { return (x + 1); }\n";
    let obj = common::kernel_gcc(dir.path(), "plain", src, &[]);
    let script = dir.path().join("addr.ld");
    std::fs::write(
        &script,
        "SECTIONS { .text 0x1000 : { *(.text .text.*) } }\n",
    )
    .unwrap();
    let out = dir.path().join("addr.o");
    let script = script.to_str().expect("UTF-8 path");
    ptm_test_support::ld_r(&["-T", script], [&obj], &out);
    let (e, msg) = expect_refusal(load_path(&out, &resolve_everything));
    match &e {
        LoadError::Refused(Refusal::NonZeroSectionAddress { section, addr, .. }) => {
            assert_eq!(section, ".text");
            assert_eq!(*addr, 0x1000);
        }
        other => panic!("wrong refusal: {other:?}"),
    }
    assert_mentions(&msg, &[".text", "0x1000", "non-zero sect addr"]);
}

// ---------------------------------------------------------------------------
// Symbols.

#[test]
fn local_undefined_symbols_left_by_ld_r_gc_sections_are_refused() {
    let dir = common::tempdir();
    let src = "extern void panic(const char *);\nextern int keepme(int);\n\
               int keep(int x) { return (keepme(x) + 1); }\n\
               void dead(void) { panic(\"x\"); }\n";
    let obj = common::kernel_gcc(dir.path(), "gc", src, &["-ffunction-sections"]);
    let out = dir.path().join("gc_linked.o");
    ptm_test_support::ld_r(&["--gc-sections", "-u", "keep"], [&obj], &out);
    // Precondition: GNU ld really left `panic` behind as LOCAL UND.
    {
        use object::{Object, ObjectSymbol};
        let bytes = std::fs::read(&out).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        assert!(
            file.symbols()
                .any(|s| s.name() == Ok("panic") && s.is_undefined() && s.is_local()),
            "ld did not leave a LOCAL UND panic"
        );
    }
    // Even a kernel that exports `panic` cannot satisfy a LOCAL reference.
    let (e, msg) = expect_refusal(load_path(&out, &resolve_everything));
    assert!(
        matches!(&e, LoadError::Refused(Refusal::LocalUndefined { symbol, .. }) if symbol == "panic"),
        "{e:?}"
    );
    assert_mentions(&msg, &["LOCAL", "'panic'", "undefined symbol"]);
}

/// A minimal x86-64 ELF relocatable with `movq $sym, %rax; ret` in .text and
/// an `R_X86_64_32S` against `sym`.
fn crafted(sym: Symbol) -> Vec<u8> {
    let mut obj = WObject::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = obj.section_id(StandardSection::Text);
    let code = [0x48, 0xc7, 0xc0, 0, 0, 0, 0, 0xc3];
    let at = obj.append_section_data(text, &code, 16);
    obj.add_symbol(Symbol {
        name: b"get".to_vec(),
        value: at,
        size: code.len() as u64,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(text),
        flags: SymbolFlags::None,
    });
    let target = obj.add_symbol(sym);
    obj.add_relocation(
        text,
        Relocation {
            offset: at + 3,
            symbol: target,
            addend: 0,
            flags: RelocationFlags::Elf {
                r_type: elf::R_X86_64_32S,
            },
        },
    )
    .unwrap();
    obj.write().unwrap()
}

/// An undefined symbol with explicit ELF binding and type (the writer would
/// otherwise make every undefined symbol GLOBAL NOTYPE).
fn undefined(name: &str, bind: elf::SymbolBind, st_type: elf::SymbolType) -> Symbol {
    Symbol {
        name: name.as_bytes().to_vec(),
        value: 0,
        size: 0,
        kind: if st_type == elf::STT_OBJECT {
            SymbolKind::Data
        } else {
            SymbolKind::Text
        },
        scope: if bind == elf::STB_LOCAL {
            SymbolScope::Compilation
        } else {
            SymbolScope::Dynamic
        },
        weak: false,
        section: SymbolSection::Undefined,
        flags: SymbolFlags::Elf {
            st_info: elf::SymbolInfo::new(bind, st_type),
            st_other: elf::SymbolOther::default().with_visibility(elf::STV_DEFAULT),
        },
    }
}

#[test]
fn a_crafted_local_undefined_symbol_is_refused() {
    let bytes = crafted(undefined("helper", elf::STB_LOCAL, elf::STT_NOTYPE));
    {
        use object::{Object, ObjectSymbol};
        let file = object::File::parse(&*bytes).unwrap();
        assert!(
            file.symbols()
                .any(|s| s.name() == Ok("helper") && s.is_undefined() && s.is_local())
        );
    }
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(
        matches!(e, LoadError::Refused(Refusal::LocalUndefined { .. })),
        "{e:?}"
    );
    assert_mentions(&msg, &["LOCAL", "'helper'"]);
}

#[test]
fn an_undefined_symbol_the_resolver_cannot_bind_is_refused_and_named() {
    let dir = common::tempdir();
    let src = "extern int mod_install(void *);\nextern int not_in_the_kernel(void);\n\
               int _init(void) { return (mod_install(0) + not_in_the_kernel()); }\n";
    let obj = common::kernel_gcc(dir.path(), "unresolved", src, &[]);
    let resolve = |n: &str| (n == "mod_install").then_some(common::never_called as *const ());
    let (e, msg) = expect_refusal(load_path(&obj, &resolve));
    assert!(
        matches!(&e, LoadError::Unresolved { names } if names == &["not_in_the_kernel".to_owned()]),
        "{e:?}"
    );
    assert_mentions(&msg, &["'not_in_the_kernel'", "undefined symbol"]);
    assert!(!msg.contains("mod_install"), "{msg}");
}

#[test]
fn undefined_data_not_declared_as_data_is_refused() {
    let bytes = crafted(undefined("some_table", elf::STB_GLOBAL, elf::STT_OBJECT));
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(matches!(e, LoadError::UndeclaredData { .. }), "{e:?}");
    assert_mentions(&msg, &["'some_table'", "STT_OBJECT", "data"]);
}

#[test]
fn a_32s_value_that_does_not_sign_extend_is_refused() {
    let bytes = crafted(Symbol {
        name: b"far_away".to_vec(),
        value: 0x1_0000_0000,
        size: 0,
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Absolute,
        flags: SymbolFlags::None,
    });
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(
        matches!(
            e,
            LoadError::RelocationOverflow {
                value: 0x1_0000_0000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(
        &msg,
        &["R_X86_64_32S", "'far_away'", "0x100000000", "does not fit"],
    );
}

/// A C tentative definition compiled with `-fcommon` is an `SHN_COMMON`
/// symbol. krtld would look its name up in the kernel first and, if the
/// kernel has a global of that name, silently make the module share it; the
/// rules refuse every common symbol instead.
#[test]
fn a_common_symbol_is_refused_even_when_the_kernel_has_none_of_that_name() {
    let dir = common::tempdir();
    let src = "int common_counter;\nint bump_common(void) { return (++common_counter); }\n";
    let obj = common::kernel_gcc(dir.path(), "common", src, &["-fcommon"]);
    {
        use object::{Object, ObjectSymbol};
        let bytes = std::fs::read(&obj).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let sym = file.symbol_by_name("common_counter").unwrap();
        assert!(
            sym.is_common(),
            "precondition: -fcommon made a COMMON symbol"
        );
    }
    let resolve = |_: &str| None;
    let (e, msg) = expect_refusal(load_path(&obj, &resolve));
    assert!(
        matches!(
            &e,
            LoadError::Refused(Refusal::SpecialSectionIndex { symbol, shndx, .. })
                if symbol == "common_counter" && *shndx == elf::SHN_COMMON.0
        ),
        "{e:?}"
    );
    assert_mentions(
        &msg,
        &["'common_counter'", "kernel global of the same name"],
    );
    // Control: the same source with a real definition loads.
    let defined = common::kernel_gcc(dir.path(), "defined", src, &["-fno-common"]);
    load_path(&defined, &resolve).expect("-fno-common: a .bss definition loads");
}

// ---------------------------------------------------------------------------
// Whole-file refusals.

#[test]
fn a_shared_object_et_dyn_is_refused() {
    let dir = common::tempdir();
    let c = dir.path().join("lib.c");
    std::fs::write(&c, "int _init_me(void) { return (0); }\n").unwrap();
    let so = dir.path().join("lib.so");
    common::run(
        Command::new(ptm_test_support::c_compiler())
            .args(["-shared", "-fpic", "-nostdlib", "-o"])
            .arg(&so)
            .arg(&c),
    );
    let (e, msg) = expect_refusal(load_path(&so, &resolve_everything));
    assert!(
        matches!(
            e,
            LoadError::Refused(Refusal::NotRelocatable { e_type }) if e_type == elf::ET_DYN.0
        ),
        "{e:?}"
    );
    assert_mentions(&msg, &["ET_DYN", "ET_REL"]);
}

#[test]
fn a_file_that_is_not_elf_is_refused() {
    let (e, _) = expect_refusal(load_bytes(&[0u8; 128], &resolve_everything));
    assert!(matches!(e, LoadError::Refused(Refusal::NotElf)), "{e:?}");
}

/// Compiles a small good kernel object for the patching tests.
fn good_object(dir: &Path) -> Vec<u8> {
    let src = "static int n;\nint f(int x) { n += x; return (n); }\n";
    let obj = common::kernel_gcc(dir, "good", src, &[]);
    let bytes = std::fs::read(&obj).unwrap();
    // Control: the unpatched object loads.
    load_bytes(&bytes, &resolve_everything).expect("the unpatched object loads");
    bytes
}

/// Rewrites a field of the section header named `name`.
fn patch_section(
    bytes: &mut [u8],
    name: &str,
    patch: impl FnOnce(&mut elf::SectionHeader64<LittleEndian>),
) {
    use object::read::elf::FileHeader;
    let (index, shoff) = {
        let header = elf::FileHeader64::<LittleEndian>::parse(&*bytes).unwrap();
        let sections = header.sections(LittleEndian, &*bytes).unwrap();
        let (index, _) = sections
            .enumerate()
            .find(|(_, sh)| sections.section_name(LittleEndian, sh) == Ok(name.as_bytes()))
            .unwrap_or_else(|| panic!("no section {name}"));
        (index.0, header.e_shoff(LittleEndian) as usize)
    };
    let size = size_of::<elf::SectionHeader64<LittleEndian>>();
    let at = shoff + index * size;
    let (sh, _) = object::pod::from_bytes_mut::<elf::SectionHeader64<LittleEndian>>(
        &mut bytes[at..at + size],
    )
    .unwrap();
    patch(sh);
}

#[test]
fn an_sht_rel_section_is_refused() {
    let dir = common::tempdir();
    let mut bytes = good_object(dir.path());
    patch_section(&mut bytes, ".rela.text", |sh| {
        sh.sh_type.set(LittleEndian, elf::SHT_REL)
    });
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(
        matches!(e, LoadError::Refused(Refusal::RelSection { .. })),
        "{e:?}"
    );
    assert_mentions(&msg, &["SHT_REL", ".rela.text"]);
}

#[test]
fn an_sht_rel_section_of_debug_info_is_refused_too() {
    // krtld checks the type of every relocation section before it skips
    // the ones for non-loaded sections.
    let dir = common::tempdir();
    let src = "int f(int x) { return (x + 1); }\n";
    let obj = common::kernel_gcc(dir.path(), "dbg", src, &["-g"]);
    let mut bytes = std::fs::read(&obj).unwrap();
    load_bytes(&bytes, &resolve_everything).expect("control: -g object loads");
    patch_section(&mut bytes, ".rela.debug_info", |sh| {
        sh.sh_type.set(LittleEndian, elf::SHT_REL)
    });
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(
        matches!(e, LoadError::Refused(Refusal::RelSection { .. })),
        "{e:?}"
    );
    assert_mentions(&msg, &[".rela.debug_info"]);
}

#[test]
fn a_module_without_a_symbol_table_is_refused() {
    let dir = common::tempdir();
    let mut bytes = good_object(dir.path());
    patch_section(&mut bytes, ".symtab", |sh| {
        sh.sh_type.set(LittleEndian, elf::SHT_PROGBITS)
    });
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(
        matches!(e, LoadError::Refused(Refusal::NoSymbolTable)),
        "{e:?}"
    );
    assert_mentions(&msg, &["SHT_SYMTAB"]);
}

#[test]
fn an_object_for_another_machine_is_refused() {
    let dir = common::tempdir();
    let mut bytes = good_object(dir.path());
    {
        let (h, _) =
            object::pod::from_bytes_mut::<elf::FileHeader64<LittleEndian>>(&mut bytes).unwrap();
        h.e_machine.set(LittleEndian, elf::EM_AARCH64);
    }
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(
        matches!(
            e,
            LoadError::Refused(Refusal::WrongIsa { machine, .. }) if machine == elf::EM_AARCH64.0
        ),
        "{e:?}"
    );
    assert_mentions(&msg, &["EM_AMD64", "183"]);
}

#[test]
fn a_big_endian_object_is_refused() {
    let dir = common::tempdir();
    let mut bytes = good_object(dir.path());
    {
        let (h, _) =
            object::pod::from_bytes_mut::<elf::FileHeader64<LittleEndian>>(&mut bytes).unwrap();
        h.e_ident.data = elf::ELFDATA2MSB;
    }
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(
        matches!(
            e,
            LoadError::Refused(Refusal::WrongIsa { data, .. }) if data == elf::ELFDATA2MSB.0
        ),
        "{e:?}"
    );
    assert_mentions(&msg, &["ELFDATA2LSB"]);
}

/// krtld adds the relocated value to what the field holds (the addend is
/// in the RELA entry), so a field that is not zero would come out wrong:
/// the rules the gate applies refuse it here too.
#[test]
fn a_relocated_field_that_is_not_zero_is_refused() {
    use object::{Object, ObjectSection};
    let dir = common::tempdir();
    let mut bytes = good_object(dir.path());
    let (field, offset) = {
        let file = object::File::parse(&*bytes).unwrap();
        let text = file.section_by_name(".text").unwrap();
        let (offset, _) = text.relocations().next().expect("a relocation in .text");
        let (start, _) = text.file_range().unwrap();
        ((start + offset) as usize, offset)
    };
    assert_eq!(
        bytes[field], 0,
        "precondition: the assembler left the field zero"
    );
    bytes[field] = 0x10;
    let (e, msg) = expect_refusal(load_bytes(&bytes, &resolve_everything));
    assert!(
        matches!(
            &e,
            LoadError::Refused(Refusal::NonZeroRelocationField { offset: o, contents: 0x10, .. })
                if *o == offset
        ),
        "{e:?}"
    );
    assert_mentions(&msg, &[".text", "before relocation", "must be zero"]);
}
