//! The rules illumos's kernel runtime linker (krtld) applies to a loadable
//! module, in one place: the krtld-compatibility gate (`tools/kmod-gate`)
//! reports every one a module breaks, and the userland loader
//! (`tests/kload`) refuses to load a module that breaks any.
//!
//! [`check`] reads an amd64 ELF object the way `kobj_load_module` does and
//! returns each [`Refusal`], in krtld's order:
//!
//! | krtld step | rule |
//! |---|---|
//! | ELF magic; `elf_mach_ok`; `e_type` | ELFCLASS64, ELFDATA2LSB, EM_AMD64, ET_REL |
//! | `get_progbits`: places each `SHF_ALLOC` section | `sh_addr` 0 ("non-zero sect addr"); `sh_addralign` a power of two (it aligns with a mask) |
//! | `get_syms`: reads the **last** `SHT_SYMTAB`, hashes its symbols by a 16-bit `symid_t`, rebases symbols with an ordinary section index only | a symbol table; fewer than 65,535 symbols; no symbol with a reserved section index but `SHN_ABS` (`SHN_XINDEX` and `SHN_AMD64_LCOMMON` would keep unrelocated values; `SHN_COMMON` may bind to a kernel variable of the same name) |
//! | `do_symbols` | no TLS symbol; no `LOCAL` undefined symbol (never looked up, so "undefined symbol") |
//! | `do_relocations` / `do_relocate` | no `SHT_REL`; each `SHT_RELA` linked to that symbol table; in loaded sections only the types of [`reloc::classify`], inside the section, and each relocated field **zero** beforehand (krtld adds to it) |
//!
//! Two rules are stricter than krtld, on purpose: any `STT_TLS` symbol is
//! refused (krtld refuses undefined and common ones, and every TLS
//! relocation, which for real objects comes to the same), and so is a
//! common symbol (krtld would allocate it, unless the kernel has a global of
//! the same name, which the module would then silently share).

mod refusal;
pub mod reloc;

use object::elf;
use object::read::elf::{FileHeader, Rela as _, SectionHeader as _, SectionTable, Sym as _};
use object::read::{FileKind, SectionIndex};
use object::{Endianness, LittleEndian};

pub use refusal::{Refusal, Rule, SHN_AMD64_LCOMMON};
pub use reloc::{Apply, classify, fits_sign_extended_32, type_name};

/// The ELF header type of an amd64 module.
pub type Header = elf::FileHeader64<Endianness>;

/// krtld's symbol index is a 16-bit `symid_t`, and 0 ends a hash chain.
pub const MAX_SYMBOLS: usize = 65_534;

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Every refusal, in krtld's order; empty when krtld would load the
    /// object (as far as the object alone can tell: symbol binding depends
    /// on the kernel).
    pub refusals: Vec<Refusal>,
    /// Whether the checks had to stop early (not an amd64 ET_REL object,
    /// unreadable section headers, no symbol table), so that later rules
    /// were not checked.
    pub stopped: bool,
}

impl Verdict {
    /// True when no rule is broken.
    pub fn passed(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// Checks `image` against every krtld rule (see the crate documentation).
pub fn check(image: &[u8]) -> Verdict {
    let mut verdict = Verdict::default();
    if let Err(refusal) = check_all(image, &mut verdict.refusals) {
        verdict.refusals.push(refusal);
        verdict.stopped = true;
    }
    verdict
}

/// The section index of the symbol table krtld reads: the last
/// `SHT_SYMTAB`.
pub fn symbol_table_index<Elf: FileHeader>(
    sections: &SectionTable<'_, Elf>,
    endian: Elf::Endian,
) -> Option<SectionIndex> {
    sections
        .enumerate()
        .filter(|(_, sh)| sh.sh_type(endian) == elf::SHT_SYMTAB)
        .map(|(i, _)| i)
        .last()
}

/// The header checks; `Ok` with the parsed header when the object is an
/// amd64 ET_REL object.
pub fn check_header(image: &[u8]) -> Result<&Header, Refusal> {
    // The raw (unvalidated) 64-bit header, only to read e_ident.
    let (raw, _) = object::pod::from_bytes::<Header>(image).map_err(|()| Refusal::NotElf)?;
    let ident = &raw.e_ident;
    if ident.magic != elf::ELFMAG {
        return Err(Refusal::NotElf);
    }
    let (class, data) = (ident.class.0, ident.data.0);
    let wrong_isa = |machine| Refusal::WrongIsa {
        class,
        data,
        machine,
    };
    match FileKind::parse(image) {
        Ok(FileKind::Elf64) => {}
        Ok(FileKind::Elf32) => {
            let machine = elf::FileHeader32::<Endianness>::parse(image)
                .ok()
                .and_then(|h| Some(h.e_machine(h.endian().ok()?).0))
                .unwrap_or(0);
            return Err(wrong_isa(machine));
        }
        _ => return Err(wrong_isa(0)),
    }
    let header = Header::parse(image).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    if data != elf::ELFDATA2LSB.0 || header.e_machine(endian) != elf::EM_X86_64 {
        return Err(wrong_isa(header.e_machine(endian).0));
    }
    let e_type = header.e_type(endian).0;
    if e_type != elf::ET_REL.0 {
        return Err(Refusal::NotRelocatable { e_type });
    }
    Ok(header)
}

fn malformed(e: object::read::Error) -> Refusal {
    Refusal::Malformed(e.to_string())
}

/// The rules in order; `Err` for a refusal after which nothing further can
/// be checked.
fn check_all(image: &[u8], out: &mut Vec<Refusal>) -> Result<(), Refusal> {
    let header = check_header(image)?;
    let endian = Endianness::Little;
    let sections = header.sections(endian, image).map_err(malformed)?;
    check_sections(&sections, out);
    let symtab_index = symbol_table_index(&sections, endian).ok_or(Refusal::NoSymbolTable)?;
    let symtab = sections
        .symbol_table_by_index(endian, image, symtab_index)
        .map_err(malformed)?;
    let symbols = Symbols::read(&symtab, &sections);
    check_symbols(&symbols, sections.len(), out);
    check_relocations(&sections, image, symtab_index, &symbols, out);
    Ok(())
}

/// A section's name for messages.
fn section_name(
    sections: &SectionTable<'_, Header>,
    sh: &elf::SectionHeader64<Endianness>,
) -> String {
    String::from_utf8_lossy(
        sections
            .section_name(Endianness::Little, sh)
            .unwrap_or(b"<unnamed>"),
    )
    .into_owned()
}

/// `get_progbits`: every loaded section at address 0, aligned to a power
/// of two.
fn check_sections(sections: &SectionTable<'_, Header>, out: &mut Vec<Refusal>) {
    let endian = Endianness::Little;
    for (index, sh) in sections.enumerate().skip(1) {
        if !sh.sh_flags(endian).contains(elf::SHF_ALLOC) {
            continue;
        }
        let addr = sh.sh_addr(endian);
        if addr != 0 {
            out.push(Refusal::NonZeroSectionAddress {
                section: section_name(sections, sh),
                index: index.0,
                addr,
            });
        }
        let align = sh.sh_addralign(endian);
        // 0 means no constraint, as 1 does.
        if align != 0 && !align.is_power_of_two() {
            out.push(Refusal::BadAlignment {
                section: section_name(sections, sh),
                index: index.0,
                align,
            });
        }
    }
}

/// The symbols of the table krtld reads, as the rules need them.
struct Symbols {
    entries: Vec<Symbol>,
}

struct Symbol {
    name: String,
    bind: elf::SymbolBind,
    kind: elf::SymbolType,
    shndx: u16,
}

impl Symbols {
    fn read(
        symtab: &object::read::elf::SymbolTable<'_, Header>,
        sections: &SectionTable<'_, Header>,
    ) -> Symbols {
        let endian = Endianness::Little;
        let entries = symtab
            .symbols()
            .iter()
            .map(|sym| {
                let shndx = sym.st_shndx(endian).0;
                let mut name = String::from_utf8_lossy(
                    symtab.symbol_name(endian, sym).unwrap_or(b"<bad name>"),
                )
                .into_owned();
                // Section symbols are named after their section.
                if name.is_empty()
                    && sym.st_type() == elf::STT_SECTION
                    && let Ok(sh) = sections.section(SectionIndex(usize::from(shndx)))
                {
                    name = section_name(sections, sh);
                }
                Symbol {
                    name,
                    bind: sym.st_bind(),
                    kind: sym.st_type(),
                    shndx,
                }
            })
            .collect();
        Symbols { entries }
    }

    fn name(&self, index: usize) -> &str {
        self.entries.get(index).map_or("", |s| &s.name)
    }
}

/// `get_syms` and `do_symbols`: the count, the section indexes, TLS and
/// LOCAL undefined symbols.
fn check_symbols(symbols: &Symbols, shnum: usize, out: &mut Vec<Refusal>) {
    let count = symbols.entries.len();
    if count > MAX_SYMBOLS {
        out.push(Refusal::TooManySymbols { count });
    }
    for (index, s) in symbols.entries.iter().enumerate().skip(1) {
        if s.shndx >= elf::SHN_LORESERVE && s.shndx != elf::SHN_ABS.0 {
            out.push(Refusal::SpecialSectionIndex {
                symbol: s.name.clone(),
                index,
                shndx: s.shndx,
            });
        } else if s.shndx < elf::SHN_LORESERVE && usize::from(s.shndx) >= shnum {
            out.push(Refusal::Malformed(format!(
                "symbol {index} '{}' has section index {}, beyond the {shnum} sections \
                 (krtld: \"bad shndx\")",
                s.name, s.shndx
            )));
        }
        if s.kind == elf::STT_TLS {
            out.push(Refusal::TlsSymbol {
                symbol: s.name.clone(),
                index,
            });
        }
        if s.shndx == elf::SHN_UNDEF.0 && s.bind == elf::STB_LOCAL {
            out.push(Refusal::LocalUndefined {
                symbol: s.name.clone(),
                index,
            });
        }
    }
}

/// `do_relocations`: every relocation section's type and link, and every
/// relocation of a loaded section.
fn check_relocations(
    sections: &SectionTable<'_, Header>,
    image: &[u8],
    symtab_index: SectionIndex,
    symbols: &Symbols,
    out: &mut Vec<Refusal>,
) {
    let endian = Endianness::Little;
    for (index, sh) in sections.enumerate().skip(1) {
        match sh.sh_type(endian) {
            elf::SHT_REL => {
                out.push(Refusal::RelSection {
                    section: section_name(sections, sh),
                });
                continue;
            }
            elf::SHT_RELA => {}
            _ => continue,
        }
        let name = section_name(sections, sh);
        if sh.sh_link(endian) as usize != symtab_index.0 {
            out.push(Refusal::RelocationSymtabMismatch {
                section: name,
                link: sh.sh_link(endian),
                symtab: symtab_index.0,
            });
            continue;
        }
        let info = sh.sh_info(endian) as usize;
        let Ok(target) = sections.section(SectionIndex(info)) else {
            out.push(Refusal::Malformed(format!(
                "relocation section {name} (index {}) has sh_info {info} out of range",
                index.0
            )));
            continue;
        };
        // krtld relocates loaded sections only; debug info is skipped.
        if !target.sh_flags(endian).contains(elf::SHF_ALLOC) {
            continue;
        }
        if sh.sh_entsize(endian) != size_of::<elf::Rela64<LittleEndian>>() as u64 {
            out.push(Refusal::Malformed(format!(
                "relocation section {name} has sh_entsize {}",
                sh.sh_entsize(endian)
            )));
            continue;
        }
        let entries = match sh.rela(endian, image) {
            Ok(Some((entries, _))) => entries,
            Ok(None) => continue,
            Err(e) => {
                out.push(malformed(e));
                continue;
            }
        };
        let target_name = section_name(sections, target);
        // NOBITS sections have no file contents: their fields are zero.
        let contents = if target.sh_type(endian) == elf::SHT_NOBITS {
            None
        } else {
            match target.data(endian, image) {
                Ok(data) => Some(data),
                Err(e) => {
                    out.push(malformed(e));
                    continue;
                }
            }
        };
        let size = target.sh_size(endian);
        for r in entries {
            let relocation = Relocation {
                section: &target_name,
                offset: r.r_offset(endian),
                r_type: r.r_type(endian, false).0,
                sym: r.r_sym(endian, false) as usize,
            };
            if let Err(refusal) = relocation.check(symbols, size, contents) {
                out.push(refusal);
            }
        }
    }
}

/// One relocation of a loaded section.
struct Relocation<'a> {
    section: &'a str,
    offset: u64,
    r_type: u32,
    sym: usize,
}

impl Relocation<'_> {
    /// `do_relocate`'s view of one entry: a known symbol, an accepted type,
    /// a field inside the section and zero.
    fn check(&self, symbols: &Symbols, size: u64, contents: Option<&[u8]>) -> Result<(), Refusal> {
        let type_name = type_name(self.r_type);
        if self.sym >= symbols.entries.len() {
            return Err(Refusal::Malformed(format!(
                "relocation {type_name} at {}+{:#x} names symbol {}, beyond the symbol table",
                self.section, self.offset, self.sym
            )));
        }
        let symbol = symbols.name(self.sym).to_owned();
        let apply = classify(self.r_type);
        let width = match apply {
            Apply::Skip => return Ok(()),
            Apply::Refuse(reason) => {
                return Err(Refusal::UnsupportedRelocation {
                    section: self.section.to_owned(),
                    offset: self.offset,
                    r_type: self.r_type,
                    type_name,
                    symbol,
                    reason,
                });
            }
            _ => apply.width(),
        };
        let end = self.offset.checked_add(width).filter(|&end| end <= size);
        let Some(end) = end else {
            return Err(Refusal::Malformed(format!(
                "relocation {type_name} at {}+{:#x} lies outside the section ({size} bytes)",
                self.section, self.offset
            )));
        };
        let Some(data) = contents else {
            return Ok(());
        };
        let Some(field) = data.get(self.offset as usize..end as usize) else {
            return Err(Refusal::Malformed(format!(
                "section {} has fewer bytes in the file than its size",
                self.section
            )));
        };
        let value = field
            .iter()
            .rev()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b));
        if value != 0 {
            return Err(Refusal::NonZeroRelocationField {
                section: self.section.to_owned(),
                offset: self.offset,
                type_name,
                symbol,
                contents: value,
            });
        }
        Ok(())
    }
}
