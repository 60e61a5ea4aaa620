//! krtld-compatibility gate for the ptm illumos kernel module.
//!
//! [`check`] reads an ELF object (with the `object` crate) and disassembles
//! its code (with `iced-x86`), and reports every property that would make
//! illumos's kernel runtime linker refuse the module, make it misbehave
//! once loaded, or hide it from DTrace fbt:
//!
//! * ET_REL, EM_X86_64, ELFCLASS64, little-endian;
//! * every SHF_ALLOC section at `sh_addr` 0;
//! * no SHT_REL section (krtld processes RELA only);
//! * an SHT_SYMTAB section;
//! * relocations against SHF_ALLOC sections only of type R_X86_64_64,
//!   PC32, PLT32 or 32S (krtld has no GOT: it writes S+A for a GOTPCREL,
//!   silently producing wrong code), each relocation section linked to the
//!   symbol table;
//! * no LOCAL undefined symbol (krtld fails the load on it);
//! * global, defined `_init`, `_fini` and `_info`;
//! * no x87/MMX/SSE/AVX register used by any instruction, explicitly or
//!   implicitly (kernel code must not touch the FPU state);
//! * every undefined symbol on the [`Allowlist`];
//! * nothing of Rust's panic machinery, and no reference to kernel `panic`;
//! * every function with a `push %rbp` (0x55) somewhere in its body, the
//!   instruction fbt places its entry probe on;
//! * no prologue stack frame above [`Options::max_frame`] bytes;
//! * no thread-local storage.
//!
//! The result is a [`Report`]: the violations, each saying what and where,
//! and the [`Figures`] (section sizes, relocations by type, largest frame,
//! undefined symbols).

mod allowlist;
mod code;
mod report;

use object::elf;
use object::read::SectionIndex;
use object::read::elf::{FileHeader, Rel, Rela, SectionHeader, SectionTable, Sym, SymbolTable};
use object::{Endianness, FileKind};

pub use allowlist::Allowlist;
pub use report::{Figures, Frame, Report, Rule, Violation};

/// Tunables of the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Largest prologue stack frame allowed, in bytes.
    pub max_frame: u64,
}

/// Default [`Options::max_frame`]: kernel threads have small stacks, and
/// STREAMS entry points can run deep in someone else's call chain.
pub const DEFAULT_MAX_FRAME: u64 = 512;

impl Default for Options {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// Relocation types krtld applies correctly to allocated sections.
const ALLOWED_RELOCATIONS: [elf::RelocationType; 4] = [
    elf::R_X86_64_64,
    elf::R_X86_64_PC32,
    elf::R_X86_64_PLT32,
    elf::R_X86_64_32S,
];

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

/// Runs every check.
pub fn check_with(bytes: &[u8], allowlist: &Allowlist, options: &Options) -> Report {
    let mut report = Report::default();
    match FileKind::parse(bytes) {
        Ok(FileKind::Elf64) => {
            check_elf::<elf::FileHeader64<Endianness>>(bytes, allowlist, options, &mut report)
        }
        Ok(FileKind::Elf32) => {
            report.push(
                Rule::ElfHeader,
                "e_ident",
                "ELFCLASS32: krtld on amd64 loads ELFCLASS64 objects only",
            );
            check_elf::<elf::FileHeader32<Endianness>>(bytes, allowlist, options, &mut report)
        }
        Ok(kind) => report.push(
            Rule::Malformed,
            "",
            format!("not an ELF object (looks like {kind:?})"),
        ),
        Err(err) => report.push(Rule::Malformed, "", format!("not an ELF object: {err}")),
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
    addr: u64,
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

fn check_elf<Elf>(bytes: &[u8], allowlist: &Allowlist, options: &Options, report: &mut Report)
where
    Elf: FileHeader<Endian = Endianness>,
{
    let header = match Elf::parse(bytes) {
        Ok(header) => header,
        Err(err) => return report.push(Rule::Malformed, "ELF header", err.to_string()),
    };
    let endian = match header.endian() {
        Ok(endian) => endian,
        Err(err) => return report.push(Rule::Malformed, "ELF header", err.to_string()),
    };
    check_header(header, endian, report);
    let machine = header.e_machine(endian);
    let is_rel = header.e_type(endian) == elf::ET_REL;

    let table = match header.sections(endian, bytes) {
        Ok(table) => table,
        Err(err) => return report.push(Rule::Malformed, "section headers", err.to_string()),
    };
    let sections = read_sections(&table, endian, bytes, report);
    check_section_layout(&sections, report);
    figure_sizes(&sections, &mut report.figures);

    let symtab_index = table
        .enumerate()
        .find(|(_, s)| s.sh_type(endian) == elf::SHT_SYMTAB)
        .map(|(i, _)| i);
    let Some(symtab_index) = symtab_index else {
        report.push(
            Rule::Symtab,
            "",
            "no SHT_SYMTAB section: krtld needs the symbol table (do not strip the module)",
        );
        return;
    };
    let symtab: SymbolTable<'_, Elf> =
        match table.symbol_table_by_index(endian, bytes, symtab_index) {
            Ok(symtab) => symtab,
            Err(err) => return report.push(Rule::Malformed, "symbol table", err.to_string()),
        };
    let symbols = read_symbols(&symtab, endian, report);

    check_relocations(
        &table,
        &sections,
        &symbols,
        symtab_index,
        machine,
        endian,
        bytes,
        report,
    );
    check_symbols(&symbols, &sections, allowlist, report);
    // The machine-code checks decode x86-64; for any other class or machine
    // the header violation already says what is wrong.
    if machine == elf::EM_X86_64 && header.is_class_64() {
        code::check_code(&sections, &symbols, is_rel, options, report);
    }
}

fn check_header<Elf: FileHeader<Endian = Endianness>>(
    header: &Elf,
    endian: Endianness,
    report: &mut Report,
) {
    let ident = header.e_ident();
    if ident.data != elf::ELFDATA2LSB {
        report.push(
            Rule::ElfHeader,
            "e_ident",
            "not ELFDATA2LSB (little-endian)",
        );
    }
    let e_type = header.e_type(endian);
    if e_type != elf::ET_REL {
        let what = match e_type {
            elf::ET_DYN => "ET_DYN (a shared object)".to_owned(),
            elf::ET_EXEC => "ET_EXEC (an executable)".to_owned(),
            other => format!("e_type {}", other.0),
        };
        report.push(
            Rule::ElfHeader,
            "e_type",
            format!("{what}: krtld loads only ET_REL (relocatable) objects"),
        );
    }
    let machine = header.e_machine(endian);
    if machine != elf::EM_X86_64 {
        report.push(
            Rule::ElfHeader,
            "e_machine",
            format!("machine {} is not EM_X86_64 (62)", machine.0),
        );
    }
}

fn read_sections<'data, Elf: FileHeader<Endian = Endianness>>(
    table: &SectionTable<'data, Elf>,
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
            addr: header.sh_addr(endian).into(),
            size: header.sh_size(endian).into(),
            data,
        });
    }
    out
}

fn check_section_layout(sections: &[Section<'_>], report: &mut Report) {
    for s in sections {
        if s.is_alloc() && s.addr != 0 {
            report.push(
                Rule::SectionAddress,
                s.name.clone(),
                format!(
                    "allocated section at sh_addr {:#x}; krtld refuses any allocated section \
                     not at address 0 (pin it with `0` in the linker script)",
                    s.addr
                ),
            );
        }
        if s.kind == elf::SHT_REL {
            report.push(
                Rule::RelSection,
                s.name.clone(),
                "SHT_REL relocation section; krtld processes only SHT_RELA",
            );
        }
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

fn read_symbols<Elf: FileHeader<Endian = Endianness>>(
    symtab: &SymbolTable<'_, Elf>,
    endian: Endianness,
    report: &mut Report,
) -> Vec<Symbol> {
    let mut out = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.enumerate() {
        let name = symtab
            .symbol_name(endian, sym)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let section = match symtab.symbol_section(endian, sym, index) {
            Ok(section) => section,
            Err(err) => {
                report.push(
                    Rule::Malformed,
                    format!("symbol {}", index.0),
                    err.to_string(),
                );
                None
            }
        };
        out.push(Symbol {
            index: index.0,
            name,
            bind: sym.st_bind(),
            kind: sym.st_type(),
            section,
            undefined: sym.st_shndx(endian) == elf::SHN_UNDEF,
            value: sym.st_value(endian).into(),
            size: sym.st_size(endian).into(),
        });
    }
    out
}

fn relocation_name(machine: elf::Machine, kind: elf::RelocationType) -> String {
    elf::machine_names(machine)
        .r
        .name(kind)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("relocation type {}", kind.0))
}

#[allow(clippy::too_many_arguments)]
fn check_relocations<Elf: FileHeader<Endian = Endianness>>(
    table: &SectionTable<'_, Elf>,
    sections: &[Section<'_>],
    symbols: &[Symbol],
    symtab_index: SectionIndex,
    machine: elf::Machine,
    endian: Endianness,
    bytes: &[u8],
    report: &mut Report,
) {
    for (index, header) in table.enumerate().skip(1) {
        let kind = header.sh_type(endian);
        if kind != elf::SHT_RELA && kind != elf::SHT_REL {
            continue;
        }
        let rel_name = sections
            .iter()
            .find(|s| s.index == index)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let target = header.info_link(endian);
        let Some(target) = sections.iter().find(|s| s.index == target) else {
            continue;
        };
        if !target.is_alloc() {
            // krtld relocates allocated sections only; debug info is skipped.
            continue;
        }
        if header.link(endian) != symtab_index {
            report.push(
                Rule::Relocation,
                rel_name.clone(),
                format!(
                    "sh_link is section {} instead of the symbol table (section {})",
                    header.link(endian).0,
                    symtab_index.0
                ),
            );
        }
        let entries: Vec<(u64, elf::RelocationType, u32)> = if kind == elf::SHT_RELA {
            match header.rela(endian, bytes) {
                Ok(Some((relas, _))) => relas
                    .iter()
                    .map(|r| {
                        (
                            r.r_offset(endian).into(),
                            r.r_type(endian, false),
                            r.r_sym(endian, false),
                        )
                    })
                    .collect(),
                Ok(None) => Vec::new(),
                Err(err) => {
                    report.push(Rule::Malformed, rel_name.clone(), err.to_string());
                    Vec::new()
                }
            }
        } else {
            match header.rel(endian, bytes) {
                Ok(Some((rels, _))) => rels
                    .iter()
                    .map(|r| (r.r_offset(endian).into(), r.r_type(endian), r.r_sym(endian)))
                    .collect(),
                Ok(None) => Vec::new(),
                Err(err) => {
                    report.push(Rule::Malformed, rel_name.clone(), err.to_string());
                    Vec::new()
                }
            }
        };
        for (offset, rtype, sym) in entries {
            let type_name = relocation_name(machine, rtype);
            *report
                .figures
                .relocations
                .entry(type_name.clone())
                .or_default() += 1;
            if machine == elf::EM_X86_64 && ALLOWED_RELOCATIONS.contains(&rtype) {
                continue;
            }
            let symbol = symbols
                .get(sym as usize)
                .map(|s| symbol_label(s, sections))
                .unwrap_or_else(|| format!("symbol #{sym}"));
            let why = if type_name.contains("GOTPC") {
                " (krtld has no GOT and writes S+A into the RIP-relative slot: silently wrong code)"
            } else {
                " (krtld does not apply it)"
            };
            report.push(
                Rule::Relocation,
                format!("{}+{:#x}", target.name, offset),
                format!("{type_name} against {symbol}{why}"),
            );
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
        if symbol.undefined {
            if symbol.bind == elf::STB_LOCAL {
                report.push(
                    Rule::LocalUndefined,
                    format!("symbol #{}", symbol.index),
                    format!(
                        "LOCAL undefined symbol {label}; krtld fails the load on it \
                         (remove it with objcopy -N)"
                    ),
                );
            } else {
                undefined.push(symbol.name.clone());
                if !allowlist.contains(&symbol.name) {
                    report.push(
                        Rule::UndefinedSymbol,
                        format!("symbol #{}", symbol.index),
                        format!("undefined symbol {label} is not on the allowlist"),
                    );
                }
            }
        }
        if symbol.kind == elf::STT_TLS {
            report.push(
                Rule::Tls,
                format!("symbol #{}", symbol.index),
                format!("thread-local symbol {label}; krtld rejects TLS"),
            );
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
