//! Proves that each gate rule can fail.
//!
//! Every test builds a small object with gcc at test time: a C "module"
//! (`_init`/`_fini`/`_info` calling `mod_install` and friends) compiled with
//! the illumos kernel flags, changed in exactly one way. The unchanged
//! module passes the gate ([`control_module_passes`]), so each failure is
//! caused by the one change the test makes.

use std::path::{Path, PathBuf};
use std::process::Command;

use ptm_test_support::{KERNEL_CFLAGS, c_compiler, ld_r, repo_root};

use kmod_gate::{Allowlist, CNames, KrtldRule, Options, Report, Rule, check, check_with};
use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, ObjectSymbol, elf};

/// What the gate's test modules add to the illumos kernel flags
/// (`ptm_test_support::KERNEL_CFLAGS`). Sibling calls are kept as calls so
/// that gcc keeps the frame-pointer prologue in functions that end in a
/// call. (gcc still gives a leaf function that needs no stack no frame at
/// all, so the functions the tests add all make a call.) Warnings are not
/// errors: some modules are odd C on purpose (a `static _fini` nobody
/// calls).
const GATE_TEST_FLAGS: &[&str] = &[
    "-m64",
    "-fno-optimize-sibling-calls",
    "-fno-stack-protector",
    "-fcf-protection=none",
    "-Wno-error",
];

/// The control module.
const MODULE: &str = r#"
extern int mod_install(void *);
extern int mod_remove(void *);
extern int mod_info(void *, void *);
static struct { int rev; void *linkage[7]; } modlinkage = { 1, { 0 } };
int _init(void) { return mod_install(&modlinkage); }
int _fini(void) { return mod_remove(&modlinkage); }
int _info(void *modinfo) { return mod_info(&modlinkage, modinfo); }
"#;

fn allowlist() -> Allowlist {
    Allowlist::from_file(&repo_root().join("kmod/allowlist.txt")).expect("kmod/allowlist.txt")
}

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("kmod-gate-negative")
        .join(test);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) {
    ptm_test_support::run(Command::new(program).args(args));
}

/// Compiles `source` to an object; `flags` replace the kernel flags named
/// in `drop` and come after the rest.
fn compile(test: &str, source: &str, drop: &[&str], flags: &[&str]) -> PathBuf {
    let dir = scratch(test);
    let c = dir.join("module.c");
    let o = dir.join("module.o");
    std::fs::write(&c, source).expect("write C source");
    let mut args: Vec<&str> = KERNEL_CFLAGS
        .iter()
        .chain(GATE_TEST_FLAGS)
        .copied()
        .filter(|f| !drop.contains(f))
        .collect();
    args.extend_from_slice(flags);
    let (c, o) = (c.to_str().unwrap(), o.to_str().unwrap());
    args.extend_from_slice(&["-c", c, "-o", o]);
    run(c_compiler(), &args);
    PathBuf::from(o)
}

// --- patching an object: the ELF64 offsets the tests need -------------------

const E_SHOFF: usize = 0x28;
const E_SHNUM: usize = 0x3c;
const SHDR_SIZE: usize = 64;
const SH_TYPE: usize = 0x04;
const SH_OFFSET: usize = 0x18;
const SH_SIZE: usize = 0x20;
const SH_LINK: usize = 0x28;
const SH_ADDRALIGN: usize = 0x30;
const SYM_SIZE: usize = 24;
const ST_SHNDX: usize = 6;

/// An object's bytes, to change one field at a time.
struct Elf {
    test: String,
    bytes: Vec<u8>,
}

impl Elf {
    /// `source` compiled with the kernel flags.
    fn compile(test: &str, source: &str) -> Elf {
        let object = compile(test, source, &[], &[]);
        Elf {
            test: test.to_owned(),
            bytes: std::fs::read(object).expect("read object"),
        }
    }

    fn file(&self) -> ElfFile64<'_> {
        ElfFile64::parse(&*self.bytes).expect("parse the object")
    }

    /// The index of the section called `name`.
    fn section(&self, name: &str) -> usize {
        let file = self.file();
        let section = file.section_by_name(name);
        section
            .unwrap_or_else(|| panic!("no section {name}"))
            .index()
            .0
    }

    /// The index of the symbol called `name`.
    fn symbol(&self, name: &str) -> usize {
        let file = self.file();
        let symbol = file.symbol_by_name(name);
        symbol
            .unwrap_or_else(|| panic!("no symbol {name}"))
            .index()
            .0
    }

    /// The file offset of section header `index`.
    fn shdr(&self, index: usize) -> usize {
        self.u64(E_SHOFF) as usize + index * SHDR_SIZE
    }

    /// The file offset of symbol `index` of the symbol table `symtab`.
    fn sym(&self, symtab: usize, index: usize) -> usize {
        self.u64(self.shdr(symtab) + SH_OFFSET) as usize + index * SYM_SIZE
    }

    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap())
    }

    fn set_u64(&mut self, at: usize, value: u64) {
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    fn set_u32(&mut self, at: usize, value: u32) {
        self.bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    fn set_u16(&mut self, at: usize, value: u16) {
        self.bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
    }

    /// Appends a second copy of the symbol table, as the last section, and
    /// links the relocation sections to it; returns the two tables' indexes
    /// (the original, the copy).
    fn add_symtab_copy(&mut self) -> (usize, usize) {
        let original = self.section(".symtab");
        let (offset, size) = (
            self.u64(self.shdr(original) + SH_OFFSET) as usize,
            self.u64(self.shdr(original) + SH_SIZE) as usize,
        );
        let shnum = usize::from(u16::from_le_bytes([
            self.bytes[E_SHNUM],
            self.bytes[E_SHNUM + 1],
        ]));
        let headers = self.bytes[self.shdr(0)..self.shdr(shnum)].to_vec();
        // The copy's symbols, then every section header again plus one.
        self.bytes.resize(self.bytes.len().next_multiple_of(8), 0);
        let copy_at = self.bytes.len();
        self.bytes.extend_from_within(offset..offset + size);
        let shoff = self.bytes.len();
        self.bytes.extend_from_slice(&headers);
        self.bytes
            .extend_from_slice(&headers[original * SHDR_SIZE..][..SHDR_SIZE]);
        self.set_u64(E_SHOFF, shoff as u64);
        self.set_u16(E_SHNUM, (shnum + 1) as u16);
        let copy = shnum;
        self.set_u64(self.shdr(copy) + SH_OFFSET, copy_at as u64);
        for index in 1..shnum {
            if u32::from_le_bytes(
                self.bytes[self.shdr(index) + SH_TYPE..][..4]
                    .try_into()
                    .unwrap(),
            ) == elf::SHT_RELA.0
            {
                self.set_u32(self.shdr(index) + SH_LINK, copy as u32);
            }
        }
        (original, copy)
    }

    /// Writes the bytes to this test's scratch directory.
    fn write(&self) -> PathBuf {
        let path = scratch(&self.test).join("patched.o");
        std::fs::write(&path, &self.bytes).expect("write the patched object");
        path
    }
}

fn gate(object: &Path) -> Report {
    let bytes = std::fs::read(object).expect("read object");
    check(&bytes, &allowlist())
}

const RELOCATION_TYPE: Rule = Rule::Krtld(KrtldRule::RelocationType);

fn rules(report: &Report) -> Vec<Rule> {
    let mut rules: Vec<Rule> = report.violations.iter().map(|v| v.rule).collect();
    rules.sort();
    rules.dedup();
    rules
}

/// Asserts that `rule` is reported, with a message containing `needle`.
fn assert_reports(report: &Report, rule: Rule, needle: &str) {
    assert!(
        report.of(rule).any(|v| v.to_string().contains(needle)),
        "expected a [{rule}] violation mentioning `{needle}`, got:\n{report}"
    );
}

/// Asserts that `rule` is the only rule broken.
fn assert_only(report: &Report, rule: Rule) {
    assert_eq!(rules(report), [rule], "report:\n{report}");
}

#[test]
fn control_module_passes() {
    let report = gate(&compile("control", MODULE, &[], &[]));
    assert!(report.passed(), "{report}");
    let figures = &report.figures;
    assert!(figures.text > 0);
    assert_eq!(figures.data, 64, "the modlinkage");
    assert_eq!(figures.undefined, ["mod_info", "mod_install", "mod_remove"]);
    assert_eq!(figures.functions, 3);
    assert!(
        figures.relocations.contains_key("R_X86_64_PLT32"),
        "{report}"
    );
}

#[test]
fn gotpcrel_call_is_rejected() {
    // -fno-plt makes every call to an extern an indirect call through the
    // GOT, the shape of the stock target's libcalls.
    let object = compile(
        "gotpcrel",
        MODULE,
        &["-fno-pic", "-fno-pie", "-mcmodel=kernel"],
        &["-fpic", "-fno-plt"],
    );
    let report = gate(&object);
    assert_reports(&report, RELOCATION_TYPE, "GOTPCREL");
    assert_reports(&report, RELOCATION_TYPE, "mod_install");
    // PIC code also references the GOT itself, which is no kernel symbol,
    // and a call through the GOT is an indirect call.
    assert_reports(&report, Rule::UndefinedSymbol, "_GLOBAL_OFFSET_TABLE_");
    assert_reports(&report, Rule::IndirectBranch, "in `_init`: `call");
    assert_eq!(
        rules(&report),
        [RELOCATION_TYPE, Rule::IndirectBranch, Rule::UndefinedSymbol],
        "{report}"
    );
}

#[test]
fn nonzero_section_address_is_rejected() {
    let object = compile("address", MODULE, &[], &[]);
    let linked = object.with_file_name("linked.o");
    ld_r(&["-Ttext=0x1000"], [&object], &linked);
    let report = gate(&linked);
    let rule = Rule::Krtld(KrtldRule::SectionAddress);
    assert_reports(&report, rule, ".text");
    assert_reports(&report, rule, "0x1000");
    assert_only(&report, rule);
}

#[test]
fn thirty_two_bit_object_is_rejected() {
    let object = compile("elf32", MODULE, &["-m64", "-mcmodel=kernel"], &["-m32"]);
    let report = gate(&object);
    let rule = Rule::Krtld(KrtldRule::ElfHeader);
    assert_reports(&report, rule, "EI_CLASS 1");
    assert_reports(&report, rule, "ELFCLASS64");
    assert_only(&report, rule);
}

#[test]
fn rel_section_is_rejected() {
    let mut elf = Elf::compile("rel", MODULE);
    let rela = elf.section(".rela.text");
    elf.set_u32(elf.shdr(rela) + SH_TYPE, elf::SHT_REL.0);
    let report = gate(&elf.write());
    let rule = Rule::Krtld(KrtldRule::RelSection);
    assert_reports(&report, rule, "SHT_REL");
    assert_reports(&report, rule, ".rela.text");
    assert_only(&report, rule);
}

#[test]
fn local_undefined_symbol_is_rejected() {
    // GNU `ld -r --gc-sections` leaves a LOCAL undefined symbol behind for an
    // extern referenced only from discarded code.
    let source = format!(
        "{MODULE}\nextern void only_dead_code_calls_me(void);\nvoid dead(void) {{ only_dead_code_calls_me(); }}\n"
    );
    let object = compile("local-und", &source, &[], &["-ffunction-sections"]);
    let linked = object.with_file_name("linked.o");
    let keep = ["--gc-sections", "-u", "_init", "-u", "_fini", "-u", "_info"];
    ld_r(&keep, [&object], &linked);
    let report = gate(&linked);
    let rule = Rule::Krtld(KrtldRule::LocalUndefined);
    assert_reports(&report, rule, "only_dead_code_calls_me");
    assert_only(&report, rule);
}

#[test]
fn stripped_module_is_rejected() {
    let object = compile("stripped", MODULE, &[], &[]);
    let stripped = object.with_file_name("stripped.o");
    run(
        "strip",
        &[
            "--strip-all",
            object.to_str().unwrap(),
            "-o",
            stripped.to_str().unwrap(),
        ],
    );
    let report = gate(&stripped);
    let rule = Rule::Krtld(KrtldRule::Symtab);
    assert_reports(&report, rule, "SHT_SYMTAB");
    assert_only(&report, rule);
}

#[test]
fn missing_init_is_rejected() {
    let object = compile("no-init", MODULE, &[], &["-D_init=not_the_entry_point"]);
    let report = gate(&object);
    assert_reports(&report, Rule::EntryPoint, "_init");
    assert_only(&report, Rule::EntryPoint);
}

#[test]
fn local_entry_point_is_rejected() {
    let source = MODULE.replace("int _fini(void)", "static int _fini(void)");
    let source = format!("{source}\nvoid *keep_fini = (void *)_fini;\n");
    let report = gate(&compile("local-fini", &source, &[], &[]));
    assert_reports(&report, Rule::EntryPoint, "_fini` is not GLOBAL");
}

#[test]
fn sse_use_is_rejected() {
    let source = format!(
        "{MODULE}\nextern void freemsg(void *);\n\
         double scale(double x, double y) {{ freemsg(0); return x * y + 1.5; }}\n"
    );
    let object = compile("sse", &source, &["-mno-sse", "-mno-mmx"], &["-msse2"]);
    let report = gate(&object);
    assert_reports(&report, Rule::Simd, "scale");
    assert_reports(&report, Rule::Simd, "xmm");
    assert_only(&report, Rule::Simd);
}

#[test]
fn missing_frame_pointer_is_rejected() {
    let object = compile(
        "no-frame-pointer",
        MODULE,
        &["-fno-omit-frame-pointer"],
        &["-fomit-frame-pointer"],
    );
    let report = gate(&object);
    for function in ["_init", "_fini", "_info"] {
        assert_reports(&report, Rule::FramePointer, function);
    }
    assert_only(&report, Rule::FramePointer);
}

#[test]
fn huge_stack_frame_is_rejected() {
    let source = format!(
        "{MODULE}\nextern void freemsg(void *);\n\
         int big(void) {{ char buf[4096]; freemsg(buf); return buf[7]; }}\n"
    );
    let report = gate(&compile("big-frame", &source, &[], &[]));
    assert_reports(&report, Rule::StackFrame, "big");
    assert_only(&report, Rule::StackFrame);
    let frame = report.figures.largest_frame.as_ref().expect("a frame");
    assert_eq!(frame.function, "big");
    assert!(frame.bytes() >= 4096, "{frame:?}");
}

#[test]
fn frame_just_under_the_limit_passes() {
    let source = format!(
        "{MODULE}\nextern void freemsg(void *);\n\
         int small(void) {{ char buf[256]; freemsg(buf); return buf[7]; }}\n"
    );
    let report = gate(&compile("small-frame", &source, &[], &[]));
    assert!(report.passed(), "{report}");
    let frame = report.figures.largest_frame.as_ref().expect("a frame");
    assert_eq!(frame.function, "small");
    assert!((256..512).contains(&frame.bytes()), "{frame:?}");
}

#[test]
fn undefined_symbol_off_the_allowlist_is_rejected() {
    let source = format!(
        "{MODULE}\nextern int not_a_kernel_function(void);\n\
         int use_it(void) {{ return not_a_kernel_function(); }}\n"
    );
    let report = gate(&compile("unknown-import", &source, &[], &[]));
    assert_reports(&report, Rule::UndefinedSymbol, "not_a_kernel_function");
    assert_only(&report, Rule::UndefinedSymbol);
}

#[test]
fn shared_object_is_rejected() {
    let object = compile(
        "shared",
        MODULE,
        &["-fno-pic", "-fno-pie", "-mcmodel=kernel"],
        &["-fpic"],
    );
    let shared = object.with_file_name("module.so");
    run(
        c_compiler(),
        &[
            "-shared",
            "-nostdlib",
            object.to_str().unwrap(),
            "-o",
            shared.to_str().unwrap(),
        ],
    );
    let report = gate(&shared);
    let rule = Rule::Krtld(KrtldRule::NotRelocatable);
    assert_reports(&report, rule, "ET_DYN");
    assert_only(&report, rule);
}

#[test]
fn kernel_panic_reference_is_rejected() {
    let source = format!(
        "{MODULE}\nextern void panic(const char *, ...);\n\
         void give_up(void) {{ panic(\"no\"); }}\n"
    );
    let report = gate(&compile("kernel-panic", &source, &[], &[]));
    assert_reports(&report, Rule::Panic, "kernel `panic`");
}

#[test]
fn rust_panic_machinery_is_rejected() {
    // A legacy-mangled core::panicking::panic_fmt, defined in C.
    let source = format!(
        "{MODULE}\nextern void freemsg(void *);\n\
         void _ZN4core9panicking9panic_fmt17h0123456789abcdefE(void) {{ freemsg(0); }}\n"
    );
    let report = gate(&compile("rust-panic", &source, &[], &[]));
    assert_reports(&report, Rule::Panic, "core::panicking::panic_fmt");
    // A Rust name in the symbol table is refused as such too.
    assert_eq!(rules(&report), [Rule::Panic, Rule::MangledName], "{report}");
}

#[test]
fn thread_local_storage_is_rejected() {
    let source =
        format!("{MODULE}\n__thread int counter;\nint bump(void) {{ return ++counter; }}\n");
    let report = gate(&compile("tls", &source, &[], &[]));
    assert_reports(&report, Rule::Krtld(KrtldRule::TlsSymbol), "counter");
    assert_reports(&report, RELOCATION_TYPE, "TPOFF");
    assert_reports(&report, Rule::Tls, ".tbss");
}

#[test]
fn garbage_is_rejected() {
    let report = check(b"this is not an ELF object at all", &allowlist());
    assert_only(&report, Rule::Krtld(KrtldRule::NotElf));
}

#[test]
fn section_alignment_that_is_not_a_power_of_two_is_rejected() {
    let mut elf = Elf::compile("alignment", MODULE);
    let text = elf.section(".text");
    elf.set_u64(elf.shdr(text) + SH_ADDRALIGN, 24);
    let report = gate(&elf.write());
    let rule = Rule::Krtld(KrtldRule::SectionAlignment);
    assert_reports(&report, rule, ".text");
    assert_reports(&report, rule, "sh_addralign 24");
    assert_only(&report, rule);
}

#[test]
fn non_zero_relocation_field_is_rejected() {
    let mut elf = Elf::compile("relocation-field", MODULE);
    let (text, rela) = (elf.section(".text"), elf.section(".rela.text"));
    // The first relocation of .text, and the field it relocates.
    let first = elf.u64(elf.shdr(rela) + SH_OFFSET) as usize;
    let r_offset = elf.u64(first);
    let field = elf.u64(elf.shdr(text) + SH_OFFSET) as usize + r_offset as usize;
    assert_eq!(
        elf.bytes[field], 0,
        "precondition: the assembler left the field zero"
    );
    elf.bytes[field] = 1;
    let report = gate(&elf.write());
    let rule = Rule::Krtld(KrtldRule::RelocationField);
    assert_reports(&report, rule, &format!(".text+{r_offset:#x}"));
    assert_reports(&report, rule, "holds 0x1 before relocation");
    assert_only(&report, rule);
}

/// Sets the section index of the `modlinkage` symbol to `shndx`.
fn with_symbol_section_index(test: &str, shndx: u16) -> Report {
    let mut elf = Elf::compile(test, MODULE);
    let (symtab, symbol) = (elf.section(".symtab"), elf.symbol("modlinkage"));
    elf.set_u16(elf.sym(symtab, symbol) + ST_SHNDX, shndx);
    gate(&elf.write())
}

#[test]
fn symbol_with_an_extended_section_index_is_rejected() {
    let report = with_symbol_section_index("xindex", 0xffff);
    let rule = Rule::Krtld(KrtldRule::SymbolSection);
    assert_reports(&report, rule, "'modlinkage' has section index 0xffff");
    assert_reports(&report, rule, "SHT_SYMTAB_SHNDX");
    assert_only(&report, rule);
}

#[test]
fn large_common_symbol_is_rejected() {
    let report = with_symbol_section_index("lcommon", 0xff02);
    let rule = Rule::Krtld(KrtldRule::SymbolSection);
    assert_reports(&report, rule, "'modlinkage' has section index 0xff02");
    assert_reports(&report, rule, "SHN_AMD64_LCOMMON");
    assert_only(&report, rule);
}

#[test]
fn common_symbol_is_rejected() {
    let source = format!("{MODULE}\nint tentative;\n");
    let report = gate(&compile("common", &source, &[], &["-fcommon"]));
    let rule = Rule::Krtld(KrtldRule::SymbolSection);
    assert_reports(&report, rule, "'tentative' has section index 0xfff2");
    assert_reports(&report, rule, "kernel global of the same name");
    assert_only(&report, rule);
    // Control: defined, it passes.
    let report = gate(&compile("common-control", &source, &[], &["-fno-common"]));
    assert!(report.passed(), "{report}");
}

#[test]
fn the_last_symbol_table_is_the_one_checked() {
    // A bad symbol in the last table is refused...
    let mut elf = Elf::compile("last-symtab", MODULE);
    let (_, copy) = elf.add_symtab_copy();
    let symbol = elf.symbol("modlinkage");
    let clean = elf.write();
    assert!(
        gate(&clean).passed(),
        "two identical tables: {}",
        gate(&clean)
    );
    elf.set_u16(elf.sym(copy, symbol) + ST_SHNDX, 0xffff);
    let report = gate(&elf.write());
    assert_only(&report, Rule::Krtld(KrtldRule::SymbolSection));
    // ...and one in the first table, which krtld ignores, is not.
    let mut elf = Elf::compile("first-symtab", MODULE);
    let (original, _) = elf.add_symtab_copy();
    elf.set_u16(elf.sym(original, symbol) + ST_SHNDX, 0xffff);
    let report = gate(&elf.write());
    assert!(report.passed(), "{report}");
}

#[test]
fn relocations_linked_to_another_symbol_table_are_rejected() {
    let mut elf = Elf::compile("relocation-symtab", MODULE);
    let (original, _) = elf.add_symtab_copy();
    let rela = elf.section(".rela.text");
    elf.set_u32(elf.shdr(rela) + SH_LINK, original as u32);
    let report = gate(&elf.write());
    let rule = Rule::Krtld(KrtldRule::RelocationSymtab);
    assert_reports(&report, rule, ".rela.text");
    assert_reports(&report, rule, "non-default symtab");
    assert_only(&report, rule);
}

/// The module linked with `labels` more LOCAL symbols.
fn module_with_labels(test: &str, labels: usize) -> Report {
    let module = compile(test, MODULE, &[], &[]);
    let dir = scratch(test);
    let asm = dir.join("labels.s");
    std::fs::write(
        &asm,
        format!(".text\n.macro label\nlabel_\\@:\n.endm\n.rept {labels}\nlabel\n.endr\n"),
    )
    .expect("write the assembler source");
    let labels = dir.join("labels.o");
    let linked = dir.join("linked.o");
    run(
        c_compiler(),
        &["-c", asm.to_str().unwrap(), "-o", labels.to_str().unwrap()],
    );
    ld_r(&[], [&module, &labels], &linked);
    gate(&linked)
}

#[test]
fn more_symbols_than_krtld_can_number_are_rejected() {
    let report = module_with_labels("symbol-count", 65_534);
    let rule = Rule::Krtld(KrtldRule::SymbolCount);
    assert_reports(&report, rule, "fewer than 65535");
    assert_only(&report, rule);
    // Control: a few hundred fewer pass.
    let report = module_with_labels("symbol-count-control", 65_000);
    assert!(report.passed(), "{report}");
}

/// A call through a function pointer and a switch compiled to a jump
/// table: gcc's two indirect branches.
const INDIRECT: &str = r#"
extern void freemsg(void *);
void call_through(void (*f)(void *)) { f(0); freemsg(0); }
int pick(int x) {
    switch (x) {
    case 0: freemsg(0); return 11;
    case 1: freemsg(0); return 23;
    case 2: freemsg(0); return 37;
    case 3: freemsg(0); return 41;
    case 4: freemsg(0); return 59;
    case 5: freemsg(0); return 67;
    case 6: freemsg(0); return 73;
    case 7: freemsg(0); return 89;
    default: return 0;
    }
}
"#;

#[test]
fn indirect_call_and_jump_table_are_rejected() {
    let source = format!("{MODULE}{INDIRECT}");
    let flags = ["-fjump-tables", "-fno-reorder-blocks-and-partition"];
    let report = gate(&compile("indirect", &source, &[], &flags));
    assert_reports(&report, Rule::IndirectBranch, "in `call_through`: `call");
    assert_reports(&report, Rule::IndirectBranch, "in `pick`: `jmp");
    assert_reports(&report, Rule::IndirectBranch, "__x86_indirect_thunk_<reg>");
    assert_only(&report, Rule::IndirectBranch);
}

#[test]
fn indirect_branches_through_the_retpoline_thunks_pass() {
    // illumos's own flags: every indirect branch becomes a direct call or
    // jump to the kernel's __x86_indirect_thunk_<reg>.
    let source = format!("{MODULE}{INDIRECT}");
    let flags = [
        "-fjump-tables",
        "-fno-reorder-blocks-and-partition",
        "-mindirect-branch=thunk-extern",
        "-mindirect-branch-register",
    ];
    let report = gate(&compile("retpoline", &source, &[], &flags));
    let thunks: Vec<&String> = report
        .figures
        .undefined
        .iter()
        .filter(|u| u.starts_with("__x86_indirect_thunk_"))
        .collect();
    assert!(
        !thunks.is_empty(),
        "precondition: the thunks are called\n{report}"
    );
    // Not on kmod/allowlist.txt (the module imports none): refused as
    // unknown imports, and for nothing else.
    assert_only(&report, Rule::UndefinedSymbol);
    let mut names: Vec<String> = allowlist().iter().map(str::to_owned).collect();
    names.extend(thunks.into_iter().cloned());
    let bytes = std::fs::read(compile("retpoline", &source, &[], &flags)).unwrap();
    let report = check(&bytes, &Allowlist::from_names(names));
    assert!(report.passed(), "{report}");
}

#[test]
fn rust_mangled_name_is_rejected() {
    // A legacy-mangled Rust path, defined in C.
    let source = format!(
        "{MODULE}\nextern void freemsg(void *);\n\
         void _ZN3ptm6driver9ptm_flush17h0123456789abcdefE(void) {{ freemsg(0); }}\n"
    );
    let report = gate(&compile("mangled", &source, &[], &[]));
    assert_reports(&report, Rule::MangledName, "ptm::driver::ptm_flush");
    assert_reports(&report, Rule::MangledName, "give it a C name");
    assert_only(&report, Rule::MangledName);
}

/// The control module's own names, as a C names list.
const CONTROL_NAMES: &str = "_init function\n_fini function\n_info function\nmodlinkage object\n";

fn gate_with_names(object: &Path, names: &str) -> Report {
    let bytes = std::fs::read(object).expect("read object");
    let options = Options {
        c_names: CNames::parse(names).expect("names"),
        ..Options::default()
    };
    check_with(&bytes, &allowlist(), &options)
}

#[test]
fn c_names_present_with_their_kinds_pass() {
    let report = gate_with_names(&compile("c-names", MODULE, &[], &[]), CONTROL_NAMES);
    assert!(report.passed(), "{report}");
}

#[test]
fn missing_c_name_is_rejected() {
    let object = compile("c-name-missing", MODULE, &[], &[]);
    let report = gate_with_names(&object, &format!("{CONTROL_NAMES}ptmwint object\n"));
    assert_reports(
        &report,
        Rule::CName,
        "`ptmwint` (a object in the C driver) is not defined",
    );
    assert_only(&report, Rule::CName);
}

#[test]
fn c_name_of_the_wrong_kind_is_rejected() {
    let object = compile("c-name-kind", MODULE, &[], &[]);
    let report = gate_with_names(&object, "_init function\nmodlinkage function\n");
    assert_reports(&report, Rule::CName, "`modlinkage`");
    assert_reports(&report, Rule::CName, "is not an function symbol");
    assert_only(&report, Rule::CName);
}
