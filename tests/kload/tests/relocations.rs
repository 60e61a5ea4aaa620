//! Positive tests of the loader on hand-written kernel objects: each
//! relocation type krtld applies, imports through trampolines and aliases,
//! placement below 2 GiB, alignment, protections, commons, weak symbols,
//! `_depends_on`, and unmapping on drop.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use object::elf;
use ptm_kload::{Area, Binding, LoadOptions, LoadedModule, load_file};

static EXT_ADD_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn ext_add(a: i32, b: i32) -> i32 {
    EXT_ADD_CALLS.fetch_add(1, Ordering::SeqCst);
    a * 100 + b
}

static EXT_VALUE: i32 = 4242;
static EXT_BIG: [u8; 64] = [7; 64];

fn fixture_resolver(name: &str) -> Option<*const ()> {
    match name {
        "ext_add" => Some(ext_add as *const ()),
        "ext_value" => Some((&raw const EXT_VALUE).cast()),
        "ext_big" => Some(EXT_BIG.as_ptr().cast()),
        _ => None,
    }
}

/// Builds the relocation fixture and loads it.
fn load_fixture(dir: &std::path::Path, alias_all: bool) -> (std::path::PathBuf, LoadedModule) {
    let obj = dir.join("relocs.o");
    ptm_test_support::compile_kernel_object(&common::fixture("relocs.c"), &[], &[], &obj)
        .expect("compile fixture");
    let resolve = fixture_resolver;
    let opts = LoadOptions::new(&resolve)
        .data("ext_value", size_of::<i32>())
        .data("ext_big", EXT_BIG.len())
        .alias_all_data(alias_all);
    // SAFETY: the declared data symbols resolve to statics of (at least)
    // the declared sizes.
    let module = unsafe { load_file(&obj, &opts) }.expect("load relocs.o");
    (obj, module)
}

/// # Safety
/// `name` must be a function of the loaded module with signature `F`.
unsafe fn func<F: Copy>(m: &LoadedModule, name: &str) -> F {
    let p = m.symbol(name).unwrap_or_else(|| panic!("no symbol {name}"));
    assert_eq!(size_of::<F>(), size_of::<*const ()>());
    // SAFETY: per the caller, `p` is the module's function `name` of type F.
    unsafe { std::mem::transmute_copy::<*const (), F>(&p) }
}

/// # Safety
/// `name` must be a loaded data symbol holding a `T`.
unsafe fn read<T: Copy>(m: &LoadedModule, name: &str) -> T {
    let p = m.symbol(name).unwrap_or_else(|| panic!("no symbol {name}"));
    // SAFETY: per the caller.
    unsafe { p.cast::<T>().read_unaligned() }
}

#[test]
fn fixture_really_contains_all_four_relocation_types() {
    let dir = common::tempdir();
    let obj = dir.path().join("relocs.o");
    ptm_test_support::compile_kernel_object(&common::fixture("relocs.c"), &[], &[], &obj)
        .expect("compile fixture");
    common::assert_has_relocation(&obj, elf::R_X86_64_PLT32, "ext_add");
    common::assert_has_relocation(&obj, elf::R_X86_64_PC32, ".data");
    common::assert_has_relocation(&obj, elf::R_X86_64_PC32, "ext_value");
    common::assert_has_relocation(&obj, elf::R_X86_64_32S, ".data");
    common::assert_has_relocation(&obj, elf::R_X86_64_32S, "ext_add");
    common::assert_has_relocation(&obj, elf::R_X86_64_32S, ".rodata");
    common::assert_has_relocation(&obj, elf::R_X86_64_32S, ".bss");
    common::assert_has_relocation(&obj, elf::R_X86_64_64, "ext_add");
    common::assert_has_relocation(&obj, elf::R_X86_64_64, "ext_big");
    common::assert_has_relocation(&obj, elf::R_X86_64_64, ".data");
    let rodata: Vec<_> = common::relocations(&obj)
        .into_iter()
        .filter(|r| r.section == ".rodata")
        .collect();
    assert!(
        rodata.iter().any(|r| r.r_type == elf::R_X86_64_64),
        "no R_X86_64_64 in .rodata: {rodata:?}"
    );
}

#[test]
fn plt32_call_to_an_import_reaches_the_resolved_function_through_a_trampoline() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    let before = EXT_ADD_CALLS.load(Ordering::SeqCst);
    // SAFETY: call_ext is `int call_ext(int, int)` in the fixture.
    let call_ext: unsafe extern "C" fn(i32, i32) -> i32 = unsafe { func(&m, "call_ext") };
    // SAFETY: the module is loaded and ext_add is bound.
    assert_eq!(unsafe { call_ext(2, 3) }, 2 * 100 + 3 + 1);
    assert_eq!(EXT_ADD_CALLS.load(Ordering::SeqCst), before + 1);

    let imp = m.import("ext_add").expect("ext_add bound");
    assert_eq!(imp.binding(), Binding::Trampoline);
    assert_eq!(imp.target(), ext_add as *const ());
    assert!(m.trampolines().contains(imp.address() as usize));
    assert_eq!(
        m.import_at(imp.address()).map(|i| i.name()),
        Some("ext_add")
    );
}

#[test]
fn pc32_to_local_data_reads_and_writes_the_loaded_data_section() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    // SAFETY: fixture signatures.
    let read_counter: unsafe extern "C" fn() -> i32 = unsafe { func(&m, "read_counter") };
    // SAFETY: fixture signatures.
    let bump_counter: unsafe extern "C" fn(i32) -> i32 = unsafe { func(&m, "bump_counter") };
    // SAFETY: calling into the loaded fixture, which touches only its data.
    unsafe {
        assert_eq!(read_counter(), 5);
        assert_eq!(bump_counter(3), 8);
        assert_eq!(read_counter(), 8);
        assert_eq!(read::<i32>(&m, "counter"), 8);
    }
    let counter = m.symbol("counter").unwrap() as usize;
    assert!(m.section(".data").unwrap().addr <= counter);
}

#[test]
fn abs32s_gives_the_absolute_addresses_of_local_data_rodata_and_bss() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    let table = m
        .symbol("table")
        .expect("static table keeps a LOCAL symbol") as *const i64;
    // SAFETY: fixture signatures; calls touch only module data.
    unsafe {
        let table_addr: unsafe extern "C" fn() -> *const i64 = func(&m, "table_addr");
        let table_at: unsafe extern "C" fn(i64) -> i64 = func(&m, "table_at");
        assert_eq!(table_addr(), table);
        assert_eq!(table_at(0), 11);
        assert_eq!(table_at(2), 33);

        let ro_ptr_addr: unsafe extern "C" fn() -> *const *const i64 = func(&m, "ro_ptr_addr");
        let ro = ro_ptr_addr();
        assert_eq!(ro, m.symbol("ro_ptr").unwrap().cast());
        assert!(
            m.text().contains(ro as usize),
            "rodata belongs in the text area"
        );
        assert_eq!(*ro, table.add(1), "R_X86_64_64 in .rodata");
        assert_eq!(**ro, 22);

        let page_aligned_addr: unsafe extern "C" fn() -> *const u8 = func(&m, "page_aligned_addr");
        let buf = page_aligned_addr();
        assert_eq!(buf, m.symbol("page_aligned").unwrap().cast());
        assert_eq!(buf as usize % 8192, 0, "sh_addralign 8192 honoured");
        assert!(std::slice::from_raw_parts(buf, 64).iter().all(|&b| b == 0));
    }
}

#[test]
fn abs32s_to_an_imported_function_yields_its_trampoline() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    let tramp = m.import("ext_add").unwrap().address();
    // SAFETY: fixture signature; ext_add_addr only returns an address.
    let got = unsafe {
        let f: unsafe extern "C" fn() -> *const () = func(&m, "ext_add_addr");
        f()
    };
    assert_eq!(got, tramp);
    // SAFETY: the trampoline jumps to ext_add, an extern "C" fn(i32, i32).
    let via: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(got) };
    assert_eq!(via(7, 1), 701);
}

#[test]
fn pc32_to_imported_data_is_bound_to_a_low_alias_of_it() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    let imp = m.import("ext_value").expect("ext_value bound");
    assert_eq!(imp.binding(), Binding::Alias { size: 4 });
    assert_eq!(imp.target(), (&raw const EXT_VALUE).cast());
    assert_ne!(imp.address(), imp.target());
    assert!(m.aliases().contains(imp.address() as usize));
    assert!((imp.address() as usize) < 0x8000_0000);
    // SAFETY: fixture signature; reads the alias.
    let v = unsafe {
        let f: unsafe extern "C" fn() -> i32 = func(&m, "read_ext_value");
        f()
    };
    assert_eq!(v, 4242);
    assert_eq!(
        m.import_at(imp.address()).map(|i| i.name()),
        Some("ext_value")
    );
}

#[test]
fn abs64_in_data_points_at_local_data_trampolines_and_direct_far_data() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    let table = m.symbol("table").unwrap() as usize;
    // SAFETY: the fixture defines these as pointer-sized data.
    unsafe {
        assert_eq!(read::<usize>(&m, "table_ptr"), table);
        assert_eq!(
            read::<usize>(&m, "table_ptr2"),
            table + 16,
            "addend applied"
        );
        assert_eq!(
            read::<usize>(&m, "ext_add_ptr"),
            m.import("ext_add").unwrap().address() as usize,
            "one address per import: the function pointer is the trampoline too"
        );
        assert_eq!(
            read::<usize>(&m, "ext_big_ptr"),
            EXT_BIG.as_ptr() as usize,
            "data reached only by R_X86_64_64 keeps its far address"
        );
    }
    assert_eq!(m.import("ext_big").unwrap().binding(), Binding::Direct);
}

#[test]
fn alias_all_data_aliases_data_reached_only_by_abs64() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), true);
    let imp = m.import("ext_big").unwrap();
    assert_eq!(imp.binding(), Binding::Alias { size: 64 });
    // SAFETY: ext_big_ptr is pointer-sized data; the alias holds 64 bytes.
    unsafe {
        assert_eq!(read::<usize>(&m, "ext_big_ptr"), imp.address() as usize);
        let alias = std::slice::from_raw_parts(imp.address().cast::<u8>(), 64);
        assert_eq!(alias, &EXT_BIG[..]);
    }
}

#[test]
fn everything_lies_below_2_gib_at_its_alignment_with_text_rx_and_data_rw() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (obj, m) = load_fixture(dir.path(), false);
    let bytes = std::fs::read(&obj).unwrap();
    let file = object::read::elf::ElfFile64::<object::Endianness>::parse(&*bytes).unwrap();
    use object::{Object, ObjectSection};
    for s in m.sections() {
        assert!(s.addr + s.size <= 0x8000_0000, "{s:?} above 2 GiB");
        let index = s.index;
        let align = file
            .section_by_index(object::SectionIndex(index))
            .unwrap()
            .align();
        assert_eq!(
            s.addr as u64 % align.max(1),
            0,
            "{s:?} misaligned ({align})"
        );
        let region = match s.area {
            Area::Text => m.text(),
            Area::Data => m.data(),
        };
        assert!(
            region.contains(s.addr) || s.size == 0,
            "{s:?} outside {region:?}"
        );
    }
    assert_eq!(m.section(".text").unwrap().area, Area::Text);
    assert_eq!(m.section(".rodata").unwrap().area, Area::Text);
    assert_eq!(m.section(".data").unwrap().area, Area::Data);
    assert_eq!(m.section(".bss").unwrap().area, Area::Data);

    assert_eq!(
        common::protection_of(m.text().addr).as_deref(),
        Some("r-xp")
    );
    assert_eq!(
        common::protection_of(m.trampolines().addr).as_deref(),
        Some("r-xp")
    );
    assert_eq!(
        common::protection_of(m.data().addr).as_deref(),
        Some("rw-p")
    );
    assert_eq!(
        common::protection_of(m.aliases().addr).as_deref(),
        Some("rw-p")
    );
}

#[test]
fn dropping_the_module_unmaps_it() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    let (text, data) = (m.text().addr, m.data().addr);
    assert!(common::protection_of(text).is_some());
    drop(m);
    assert_eq!(common::protection_of(text), None, "text still mapped");
    assert_eq!(common::protection_of(data), None, "data still mapped");
}

#[test]
fn a_module_without_entry_points_reports_them_missing() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    assert!(m.init_fn().is_none() && m.fini_fn().is_none() && m.info_fn().is_none());
    // SAFETY: no module code runs: _init does not exist.
    let err = unsafe { m.call_init() }.unwrap_err();
    assert!(
        err.to_string().contains("_init() not defined properly"),
        "{err}"
    );
}

const WEAK_SOURCE: &str = r#"
extern int maybe(int) __attribute__((weak));
int call_maybe(int x) { return (maybe ? maybe(x) : -1); }
"#;

extern "C" fn maybe_impl(x: i32) -> i32 {
    x * 2
}

#[test]
fn an_unresolved_weak_symbol_loads_and_stays_null() {
    let _g = common::lock();
    let dir = common::tempdir();
    let obj = common::kernel_gcc(dir.path(), "weak", WEAK_SOURCE, &[]);
    let resolve = |_: &str| None;
    // SAFETY: no data symbols are declared.
    let m = unsafe { load_file(&obj, &LoadOptions::new(&resolve)) }.expect("weak loads");
    assert!(m.import("maybe").is_none());
    // SAFETY: fixture signature; `maybe` is null so it is not called.
    let r = unsafe {
        let f: unsafe extern "C" fn(i32) -> i32 = func(&m, "call_maybe");
        f(21)
    };
    assert_eq!(r, -1);
}

#[test]
fn a_resolved_weak_symbol_is_bound_like_any_other() {
    let _g = common::lock();
    let dir = common::tempdir();
    let obj = common::kernel_gcc(dir.path(), "weak", WEAK_SOURCE, &[]);
    let resolve = |n: &str| (n == "maybe").then_some(maybe_impl as *const ());
    // SAFETY: no data symbols are declared.
    let m = unsafe { load_file(&obj, &LoadOptions::new(&resolve)) }.expect("weak loads");
    assert_eq!(m.import("maybe").unwrap().binding(), Binding::Trampoline);
    // SAFETY: fixture signature; maybe is bound to maybe_impl.
    let r = unsafe {
        let f: unsafe extern "C" fn(i32) -> i32 = func(&m, "call_maybe");
        f(21)
    };
    assert_eq!(r, 42);
}

#[test]
fn depends_on_array_is_reported() {
    let _g = common::lock();
    let dir = common::tempdir();
    let src = "const char _depends_on[] = \"drv/ip misc/mac\";\n";
    let obj = common::kernel_gcc(dir.path(), "deps", src, &[]);
    let resolve = |_: &str| None;
    // SAFETY: no data symbols are declared.
    let m = unsafe { load_file(&obj, &LoadOptions::new(&resolve)) }.expect("loads");
    assert_eq!(m.depends_on(), Some("drv/ip misc/mac"));
}

#[test]
fn a_module_without_depends_on_reports_none() {
    let _g = common::lock();
    let dir = common::tempdir();
    let (_, m) = load_fixture(dir.path(), false);
    assert_eq!(m.depends_on(), None);
}
