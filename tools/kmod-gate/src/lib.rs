//! krtld-compatibility gate for the ptm illumos kernel module.
//!
//! [`check`] reads an ELF object (with the `object` crate) and disassembles
//! its code (with `iced-x86`), and reports every property that would make
//! illumos's kernel runtime linker refuse the module, make it misbehave
//! once loaded, or hide it from DTrace fbt:
//!
//! * every rule of krtld's that the object alone decides, from the
//!   `krtld_rules` crate (the userland loader applies the same copy):
//!   ET_REL, EM_X86_64, ELFCLASS64, little-endian; every SHF_ALLOC section
//!   at `sh_addr` 0 with a power-of-two alignment; no SHT_REL; the last
//!   SHT_SYMTAB, with fewer than 65,535 symbols, none with a special
//!   section index (`SHN_XINDEX`, `SHN_COMMON`, `SHN_AMD64_LCOMMON`), no
//!   TLS symbol and no LOCAL undefined one; relocations against SHF_ALLOC
//!   sections only of type R_X86_64_64, PC32, PLT32 or 32S (krtld has no
//!   GOT: it writes S+A for a GOTPCREL, silently producing wrong code),
//!   linked to that symbol table, with every relocated field zero
//!   beforehand (krtld adds to it);
//! * global, defined `_init`, `_fini` and `_info`;
//! * no Rust-mangled symbol name (`_R…`, `_ZN…`): DTrace fbt names its
//!   probes after the module's functions, and mdb finds ptm's queues by the
//!   symbol `ptmwint`; and every name of [`Options::c_names`] defined, as a
//!   function or an object as listed (ptm: `kmod/c-names.txt`, the names
//!   ptm.c defines);
//! * no x87/MMX/SSE/AVX register used by any instruction, explicitly or
//!   implicitly (kernel code must not touch the FPU state);
//! * no jump or call through a register or memory: illumos's kernel is
//!   built with retpolines, and a module's indirect branches must go
//!   through the kernel's `__x86_indirect_thunk_<reg>` too;
//! * every undefined symbol on the [`Allowlist`];
//! * nothing of Rust's panic machinery, and no reference to kernel `panic`;
//! * every function with a `push %rbp` (0x55) somewhere in its body, the
//!   instruction fbt places its entry probe on;
//! * no prologue stack frame above [`Options::max_frame`] bytes;
//! * no thread-local storage section.
//!
//! The result is a [`Report`]: the violations, each saying what and where,
//! and the [`Figures`] (section sizes, relocations by type, largest frame,
//! undefined symbols).

mod allowlist;
mod cnames;
mod code;
mod listfile;
mod report;

use object::Endianness;
use object::elf;
use object::read::SectionIndex;
use object::read::elf::{FileHeader, SectionHeader, SectionTable, Sym, SymbolTable};

pub use allowlist::Allowlist;
pub use cnames::{CKind, CNames};
pub use krtld_rules::Rule as KrtldRule;
pub use report::{Figures, Frame, Report, Rule, Violation};

type Header = elf::FileHeader64<Endianness>;

/// Tunables of the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Largest prologue stack frame allowed, in bytes.
    pub max_frame: u64,
    /// Names the module must define (none by default).
    pub c_names: CNames,
}

/// Default [`Options::max_frame`]: kernel threads have small stacks, and
/// STREAMS entry points can run deep in someone else's call chain.
pub const DEFAULT_MAX_FRAME: u64 = 512;

impl Default for Options {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            c_names: CNames::none(),
        }
    }
}

/// The three entry points krtld and modctl call.
const ENTRY_POINTS: [&str; 3] = ["_init", "_fini", "_info"];

/// Pieces of a (demangled) symbol name that mean Rust's panic machinery is
/// in the object: the panicking functions and their formatting, the panic
/// handler, and the out-of-line failure paths of bounds checks, `unwrap`,
/// `expect` and slice/str indexing.
const PANIC_MARKERS: [&str; 12] = [
    "core::panicking",
    "panic_fmt",
    "panic_bounds_check",
    "rust_begin_unwind",
    "rust_panic",
    "panic_nounwind",
    "panic_const",
    "unwrap_failed",
    "expect_failed",
    "slice_index_fail",
    "index_len_fail",
    "str_index_overflow_fail",
];

/// Runs every check with the default [`Options`].
pub fn check(bytes: &[u8], allowlist: &Allowlist) -> Report {
    check_with(bytes, allowlist, &Options::default())
}

/// Runs every check: krtld's rules first, then, unless those had to stop
/// early (not an amd64 ET_REL object, no symbol table), the gate's own.
pub fn check_with(bytes: &[u8], allowlist: &Allowlist, options: &Options) -> Report {
    let mut report = Report::default();
    let verdict = krtld_rules::check(bytes);
    for refusal in &verdict.refusals {
        report.push(Rule::Krtld(refusal.rule()), "", refusal.to_string());
    }
    if !verdict.stopped {
        check_module(bytes, allowlist, options, &mut report);
    }
    report
}

/// Demangles a Rust symbol name (v0 or legacy); other names come back as
/// they are.
pub fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(d) => format!("{d:#}"),
        Err(_) => name.to_owned(),
    }
}

/// A symbol as the checks need it.
#[derive(Debug, Clone)]
struct Symbol {
    index: usize,
    name: String,
    bind: elf::SymbolBind,
    kind: elf::SymbolType,
    /// Section index for defined symbols in a real section.
    section: Option<SectionIndex>,
    undefined: bool,
    value: u64,
    size: u64,
}

/// A section as the checks need it.
#[derive(Debug, Clone)]
struct Section<'data> {
    index: SectionIndex,
    name: String,
    kind: elf::SectionType,
    flags: u64,
    /// `sh_size`; for NOBITS sections the memory size, with no file data.
    size: u64,
    data: &'data [u8],
}

impl Section<'_> {
    fn is_alloc(&self) -> bool {
        self.flags & elf::SHF_ALLOC.0 != 0
    }
    fn is_exec(&self) -> bool {
        self.flags & elf::SHF_EXECINSTR.0 != 0
    }
}

/// The gate's own checks, on an object krtld's rules could read through
/// (an amd64 ET_REL object with a symbol table).
fn check_module(bytes: &[u8], allowlist: &Allowlist, options: &Options, report: &mut Report) {
    let endian = Endianness::Little;
    let table = match Header::parse(bytes).and_then(|h| h.sections(endian, bytes)) {
        Ok(table) => table,
        Err(err) => return report.push(Rule::Malformed, "section headers", err.to_string()),
    };
    let sections = read_sections(&table, endian, bytes, report);
    check_tls_sections(&sections, report);
    figure_sizes(&sections, &mut report.figures);

    let Some(symtab_index) = krtld_rules::symbol_table_index(&table, endian) else {
        return; // krtld's rules said so
    };
    let symtab: SymbolTable<'_, Header> =
        match table.symbol_table_by_index(endian, bytes, symtab_index) {
            Ok(symtab) => symtab,
            Err(err) => return report.push(Rule::Malformed, "symbol table", err.to_string()),
        };
    let symbols = read_symbols(&symtab, endian);

    figure_relocations(&table, &sections, endian, bytes, &mut report.figures);
    check_symbols(&symbols, sections.as_slice(), allowlist, report);
    check_names(&symbols, &options.c_names, report);
    code::check_code(&sections, &symbols, options, report);
}

fn read_sections<'data>(
    table: &SectionTable<'data, Header>,
    endian: Endianness,
    bytes: &'data [u8],
    report: &mut Report,
) -> Vec<Section<'data>> {
    let mut out = Vec::new();
    for (index, header) in table.enumerate().skip(1) {
        let name = table
            .section_name(endian, header)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_else(|_| format!("<section {}>", index.0));
        let kind = header.sh_type(endian);
        let data = if kind == elf::SHT_NOBITS {
            &[][..]
        } else {
            match header.data(endian, bytes) {
                Ok(data) => data,
                Err(err) => {
                    report.push(Rule::Malformed, name.clone(), err.to_string());
                    &[][..]
                }
            }
        };
        out.push(Section {
            index,
            name,
            kind,
            flags: header.sh_flags(endian).0,
            size: header.sh_size(endian),
            data,
        });
    }
    out
}

fn check_tls_sections(sections: &[Section<'_>], report: &mut Report) {
    for s in sections {
        if s.flags & elf::SHF_TLS.0 != 0 {
            report.push(Rule::Tls, s.name.clone(), "thread-local (SHF_TLS) section");
        }
    }
}

fn figure_sizes(sections: &[Section<'_>], figures: &mut Figures) {
    for s in sections.iter().filter(|s| s.is_alloc()) {
        if s.kind == elf::SHT_NOBITS {
            figures.bss += s.size;
        } else if s.is_exec() {
            figures.text += s.size;
        } else if s.flags & elf::SHF_WRITE.0 != 0 {
            figures.data += s.size;
        } else {
            figures.rodata += s.size;
        }
    }
}

/// The symbols, read leniently: what krtld's rules refused (special
/// section indexes, ...) was reported already.
fn read_symbols(symtab: &SymbolTable<'_, Header>, endian: Endianness) -> Vec<Symbol> {
    let mut out = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.enumerate() {
        let name = symtab
            .symbol_name(endian, sym)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        out.push(Symbol {
            index: index.0,
            name,
            bind: sym.st_bind(),
            kind: sym.st_type(),
            section: symtab.symbol_section(endian, sym, index).ok().flatten(),
            undefined: sym.st_shndx(endian) == elf::SHN_UNDEF,
            value: sym.st_value(endian),
            size: sym.st_size(endian),
        });
    }
    out
}

/// Counts the relocations against allocated sections by type, for the
/// figures (krtld's rules judged them).
fn figure_relocations(
    table: &SectionTable<'_, Header>,
    sections: &[Section<'_>],
    endian: Endianness,
    bytes: &[u8],
    figures: &mut Figures,
) {
    for header in table.iter().skip(1) {
        if header.sh_type(endian) != elf::SHT_RELA {
            continue;
        }
        let target = header.info_link(endian);
        if !sections.iter().any(|s| s.index == target && s.is_alloc()) {
            continue;
        }
        let Ok(Some((relas, _))) = header.rela(endian, bytes) else {
            continue;
        };
        for r in relas {
            let name = krtld_rules::type_name(r.r_type(endian, false).0);
            *figures.relocations.entry(name.to_owned()).or_default() += 1;
        }
    }
}

/// A symbol's name for messages; section symbols are named after their
/// section.
fn symbol_label(symbol: &Symbol, sections: &[Section<'_>]) -> String {
    if (symbol.kind == elf::STT_SECTION || symbol.name.is_empty())
        && let Some(s) = symbol
            .section
            .and_then(|i| sections.iter().find(|s| s.index == i))
    {
        return format!("section {}", s.name);
    }
    format!("`{}`", demangle(&symbol.name))
}

fn check_symbols(
    symbols: &[Symbol],
    sections: &[Section<'_>],
    allowlist: &Allowlist,
    report: &mut Report,
) {
    let mut undefined = Vec::new();
    for symbol in symbols.iter().skip(1) {
        let label = symbol_label(symbol, sections);
        // LOCAL undefined symbols are krtld's rules' to refuse.
        if symbol.undefined && symbol.bind != elf::STB_LOCAL {
            undefined.push(symbol.name.clone());
            if !allowlist.contains(&symbol.name) {
                report.push(
                    Rule::UndefinedSymbol,
                    format!("symbol #{}", symbol.index),
                    format!("undefined symbol {label} is not on the allowlist"),
                );
            }
        }
        let demangled = demangle(&symbol.name);
        if symbol.name == "panic" {
            report.push(
                Rule::Panic,
                format!("symbol #{}", symbol.index),
                "reference to kernel `panic`: some path in the module can panic the system",
            );
        } else if let Some(marker) = PANIC_MARKERS.iter().find(|m| demangled.contains(*m)) {
            report.push(
                Rule::Panic,
                format!("symbol #{}", symbol.index),
                format!(
                    "{label} is panic machinery (matches `{marker}`): some path in the \
                     module can still panic"
                ),
            );
        }
    }
    undefined.sort();
    undefined.dedup();
    report.figures.undefined = undefined;

    for entry in ENTRY_POINTS {
        let candidates: Vec<&Symbol> = symbols.iter().filter(|s| s.name == entry).collect();
        let good = candidates
            .iter()
            .any(|s| s.bind == elf::STB_GLOBAL && !s.undefined && s.section.is_some());
        if good {
            continue;
        }
        let why = match candidates.first() {
            None => "is missing".to_owned(),
            Some(s) if s.undefined => "is undefined".to_owned(),
            Some(s) if s.bind != elf::STB_GLOBAL => {
                format!("is not GLOBAL (binding {})", s.bind.0)
            }
            Some(_) => "is not defined in a section".to_owned(),
        };
        report.push(
            Rule::EntryPoint,
            entry,
            format!("module entry point `{entry}` {why}; it must be a global, defined function"),
        );
    }
}

/// Whether `name` is a Rust symbol name, v0 (`_R…`) or legacy (`_ZN…E`).
fn is_rust_mangled(name: &str) -> bool {
    rustc_demangle::try_demangle(name).is_ok()
}

/// No defined symbol with a Rust-mangled name, and every C name defined as
/// the kind listed.
fn check_names(symbols: &[Symbol], c_names: &CNames, report: &mut Report) {
    for symbol in symbols
        .iter()
        .filter(|s| !s.undefined && is_rust_mangled(&s.name))
    {
        report.push(
            Rule::MangledName,
            format!("symbol #{}", symbol.index),
            format!(
                "`{}` ({}) is a Rust-mangled name: DTrace fbt probes and mdb would show it \
                 as is; give it a C name (`export_name` or `no_mangle` under \
                 cfg(ptm_kernel))",
                symbol.name,
                demangle(&symbol.name)
            ),
        );
    }
    for (name, kind) in c_names.iter() {
        let found = symbols
            .iter()
            .find(|s| s.name == name && !s.undefined && s.section.is_some());
        let expected = match kind {
            CKind::Function => elf::STT_FUNC,
            CKind::Object => elf::STT_OBJECT,
        };
        let why = match found {
            None => "is not defined".to_owned(),
            Some(s) if s.kind != expected => {
                format!("is not an {} symbol (st_type {})", kind.word(), s.kind.0)
            }
            Some(_) => continue,
        };
        report.push(
            Rule::CName,
            format!("`{name}`"),
            format!(
                "C's name `{name}` (a {} in the C driver) {why}: the module must define it",
                kind.word()
            ),
        );
    }
}
