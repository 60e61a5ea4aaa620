//! What krtld refuses (or would silently get wrong), one value per finding.

use std::fmt;

use object::elf;

/// The kind of a [`Refusal`], for grouping and for the gate's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// No ELF magic.
    NotElf,
    /// Not ELFCLASS64, ELFDATA2LSB and EM_AMD64 (krtld's `elf_mach_ok`).
    ElfHeader,
    /// `e_type` is not `ET_REL`.
    NotRelocatable,
    /// Offsets, sizes or indexes that do not hold together.
    Malformed,
    /// An `SHF_ALLOC` section whose `sh_addr` is not 0.
    SectionAddress,
    /// An `SHF_ALLOC` section whose `sh_addralign` is not a power of two.
    SectionAlignment,
    /// No `SHT_SYMTAB` section.
    Symtab,
    /// More symbols than krtld's 16-bit symbol index can number.
    SymbolCount,
    /// A symbol with a special section index krtld does not handle right.
    SymbolSection,
    /// A thread-local symbol.
    TlsSymbol,
    /// A `LOCAL` undefined symbol.
    LocalUndefined,
    /// An `SHT_REL` section.
    RelSection,
    /// A relocation section not linked to the symbol table krtld uses.
    RelocationSymtab,
    /// A relocation type krtld refuses or applies wrongly.
    RelocationType,
    /// A relocated field that is not zero before relocation.
    RelocationField,
}

impl Rule {
    /// Short name used in the gate's output.
    pub fn name(self) -> &'static str {
        match self {
            Rule::NotElf => "not-elf",
            Rule::ElfHeader => "elf-header",
            Rule::NotRelocatable => "not-relocatable",
            Rule::Malformed => "malformed",
            Rule::SectionAddress => "section-address",
            Rule::SectionAlignment => "section-alignment",
            Rule::Symtab => "symtab",
            Rule::SymbolCount => "symbol-count",
            Rule::SymbolSection => "symbol-section",
            Rule::TlsSymbol => "tls-symbol",
            Rule::LocalUndefined => "local-undefined",
            Rule::RelSection => "rel-section",
            Rule::RelocationSymtab => "relocation-symtab",
            Rule::RelocationType => "relocation",
            Rule::RelocationField => "relocation-field",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing krtld would refuse, or would load and get wrong. The `Display`
/// text names the section, symbol or offset concerned and says what krtld
/// does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No ELF magic.
    NotElf,
    /// Not an amd64 object: krtld's `elf_mach_ok` wants `ELFDATA2LSB` and
    /// `EM_AMD64`; only ELFCLASS64 objects are amd64 modules.
    WrongIsa {
        /// `EI_CLASS`.
        class: u8,
        /// `EI_DATA`.
        data: u8,
        /// `e_machine` (0 when the header could not be read).
        machine: u16,
    },
    /// `e_type` is not `ET_REL`: krtld loads only relocatable objects.
    NotRelocatable {
        /// `e_type`.
        e_type: u16,
    },
    /// The object is structurally broken (bad offsets, indexes, sizes).
    Malformed(String),
    /// An `SHF_ALLOC` section has a non-zero `sh_addr` ("non-zero sect addr
    /// in input file").
    NonZeroSectionAddress {
        /// Section name.
        section: String,
        /// Section index.
        index: usize,
        /// Its `sh_addr`.
        addr: u64,
    },
    /// An `SHF_ALLOC` section's `sh_addralign` is not a power of two:
    /// krtld's `ALIGN` rounds with a mask and would misplace it.
    BadAlignment {
        /// Section name.
        section: String,
        /// Section index.
        index: usize,
        /// Its `sh_addralign`.
        align: u64,
    },
    /// There is no `SHT_SYMTAB` (a stripped module).
    NoSymbolTable,
    /// krtld numbers symbols with a 16-bit `symid_t` in its hash chains.
    TooManySymbols {
        /// Entries in the symbol table krtld reads (index 0 included).
        count: usize,
    },
    /// A symbol whose section index is special (`SHN_XINDEX`, `SHN_COMMON`,
    /// `SHN_AMD64_LCOMMON`, or another reserved one besides `SHN_ABS`).
    SpecialSectionIndex {
        /// Symbol name.
        symbol: String,
        /// Symbol table index.
        index: usize,
        /// Its `st_shndx`.
        shndx: u16,
    },
    /// A thread-local symbol: the kernel has no thread-local storage for
    /// modules.
    TlsSymbol {
        /// Symbol name.
        symbol: String,
        /// Symbol table index.
        index: usize,
    },
    /// A `LOCAL` undefined symbol (a GNU `ld -r --gc-sections` leftover):
    /// krtld never looks LOCAL symbols up, so it is an "undefined symbol".
    LocalUndefined {
        /// Symbol name.
        symbol: String,
        /// Symbol table index.
        index: usize,
    },
    /// A `SHT_REL` section: krtld "can't process type SHT_REL".
    RelSection {
        /// Section name.
        section: String,
    },
    /// A `SHT_RELA` section whose `sh_link` is not the symbol table krtld
    /// reads ("reloc for non-default symtab").
    RelocationSymtabMismatch {
        /// Section name.
        section: String,
        /// Its `sh_link`.
        link: u32,
        /// The index of the symbol table krtld reads (the last one).
        symtab: usize,
    },
    /// A relocation type krtld refuses or would apply wrongly.
    UnsupportedRelocation {
        /// The relocated section.
        section: String,
        /// `r_offset`.
        offset: u64,
        /// `r_type`.
        r_type: u32,
        /// Its psABI name.
        type_name: &'static str,
        /// The referenced symbol (or section) name.
        symbol: String,
        /// What krtld does with it.
        reason: &'static str,
    },
    /// A relocated field that is not zero before relocation: krtld adds
    /// the relocation's value to what the field holds (the addend is in the
    /// RELA entry), so the result would be off by the field's contents.
    NonZeroRelocationField {
        /// The relocated section.
        section: String,
        /// `r_offset`.
        offset: u64,
        /// The relocation type's psABI name.
        type_name: &'static str,
        /// The referenced symbol (or section) name.
        symbol: String,
        /// What the field holds.
        contents: u64,
    },
}

impl Refusal {
    /// The kind of refusal.
    pub fn rule(&self) -> Rule {
        match self {
            Refusal::NotElf => Rule::NotElf,
            Refusal::WrongIsa { .. } => Rule::ElfHeader,
            Refusal::NotRelocatable { .. } => Rule::NotRelocatable,
            Refusal::Malformed(_) => Rule::Malformed,
            Refusal::NonZeroSectionAddress { .. } => Rule::SectionAddress,
            Refusal::BadAlignment { .. } => Rule::SectionAlignment,
            Refusal::NoSymbolTable => Rule::Symtab,
            Refusal::TooManySymbols { .. } => Rule::SymbolCount,
            Refusal::SpecialSectionIndex { .. } => Rule::SymbolSection,
            Refusal::TlsSymbol { .. } => Rule::TlsSymbol,
            Refusal::LocalUndefined { .. } => Rule::LocalUndefined,
            Refusal::RelSection { .. } => Rule::RelSection,
            Refusal::RelocationSymtabMismatch { .. } => Rule::RelocationSymtab,
            Refusal::UnsupportedRelocation { .. } => Rule::RelocationType,
            Refusal::NonZeroRelocationField { .. } => Rule::RelocationField,
        }
    }
}

/// `SHN_AMD64_LCOMMON`: a large common symbol (the amd64 psABI's
/// medium and large code models).
pub const SHN_AMD64_LCOMMON: u16 = 0xff02;

/// What krtld does with a symbol of section index `shndx`.
fn special_index_reason(shndx: u16) -> &'static str {
    if shndx == elf::SHN_XINDEX.0 {
        "an extended section index: krtld does not read SHT_SYMTAB_SHNDX, so it would \
         neither place the symbol in its section nor relocate references to it right"
    } else if shndx == elf::SHN_COMMON.0 {
        "a common (tentative) definition: krtld first binds it to any kernel global of \
         the same name, silently sharing the kernel's variable, and only otherwise \
         allocates it; define it instead (rustc never emits commons; C needs -fno-common)"
    } else if shndx == SHN_AMD64_LCOMMON {
        "a large common symbol (SHN_AMD64_LCOMMON): krtld neither allocates nor binds it, \
         so its value would stay its alignment"
    } else {
        "a reserved section index krtld does not handle (only SHN_ABS is)"
    }
}

/// The name of an `e_type` other than ET_REL.
fn e_type_name(e_type: u16) -> &'static str {
    match elf::FileType(e_type) {
        elf::ET_NONE => "ET_NONE",
        elf::ET_EXEC => "ET_EXEC",
        elf::ET_DYN => "ET_DYN",
        elf::ET_CORE => "ET_CORE",
        _ => "unknown",
    }
}

impl fmt::Display for Refusal {
    /// One arm per refusal, so about 100 lines: each message says what
    /// krtld does with such an object and how to avoid it, and keeping
    /// them in one match keeps every refusal's wording in one place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotElf => write!(f, "not an ELF object (bad magic)"),
            Refusal::WrongIsa {
                class,
                data,
                machine,
            } => write!(
                f,
                "not an amd64 module: EI_CLASS {class}, EI_DATA {data}, e_machine {machine}; \
                 krtld requires ELFCLASS64, ELFDATA2LSB and EM_AMD64 (62)"
            ),
            Refusal::NotRelocatable { e_type } => write!(
                f,
                "e_type {} ({e_type}) is not ET_REL: krtld loads only relocatable objects \
                 (ET_DYN/ET_EXEC modules carry PLTs and GOTs it cannot process)",
                e_type_name(*e_type)
            ),
            Refusal::Malformed(what) => write!(f, "malformed ELF object: {what}"),
            Refusal::NonZeroSectionAddress {
                section,
                index,
                addr,
            } => write!(
                f,
                "SHF_ALLOC section {section} (index {index}) has non-zero sh_addr {addr:#x}: \
                 krtld refuses it (\"non-zero sect addr in input file\"); pin every output \
                 section at 0 in the ld -r script"
            ),
            Refusal::BadAlignment {
                section,
                index,
                align,
            } => write!(
                f,
                "SHF_ALLOC section {section} (index {index}) has sh_addralign {align}, not a \
                 power of two: krtld aligns with a mask and would place it wrongly"
            ),
            Refusal::NoSymbolTable => write!(
                f,
                "no SHT_SYMTAB symbol table found: krtld needs one (do not strip the module)"
            ),
            Refusal::TooManySymbols { count } => write!(
                f,
                "{count} symbols: krtld numbers a module's symbols with a 16-bit symid_t, so \
                 it must have fewer than 65535"
            ),
            Refusal::SpecialSectionIndex {
                symbol,
                index,
                shndx,
            } => write!(
                f,
                "symbol {index} '{symbol}' has section index {shndx:#x}, {}",
                special_index_reason(*shndx)
            ),
            Refusal::TlsSymbol { symbol, index } => write!(
                f,
                "TLS symbol {index} '{symbol}': the kernel has no thread-local storage for \
                 modules; krtld refuses them (\"TLS symbol not supported\")"
            ),
            Refusal::LocalUndefined { symbol, index } => write!(
                f,
                "LOCAL undefined symbol {index} '{symbol}': krtld never resolves LOCAL \
                 symbols, so it is an \"undefined symbol\" and the load fails (remove ld -r \
                 --gc-sections leftovers with objcopy -N)"
            ),
            Refusal::RelSection { section } => write!(
                f,
                "section {section} is SHT_REL: krtld can't process type SHT_REL (amd64 \
                 modules must use SHT_RELA)"
            ),
            Refusal::RelocationSymtabMismatch {
                section,
                link,
                symtab,
            } => write!(
                f,
                "relocation section {section} links to section {link}, not to the symbol \
                 table krtld reads (section {symtab}, the last SHT_SYMTAB): krtld refuses a \
                 \"reloc for non-default symtab\""
            ),
            Refusal::UnsupportedRelocation {
                section,
                offset,
                r_type,
                type_name,
                symbol,
                reason,
            } => write!(
                f,
                "relocation {type_name} (type {r_type}) against '{symbol}' at \
                 {section}+{offset:#x} refused: {reason}"
            ),
            Refusal::NonZeroRelocationField {
                section,
                offset,
                type_name,
                symbol,
                contents,
            } => write!(
                f,
                "relocation {type_name} against '{symbol}' at {section}+{offset:#x}: the field \
                 holds {contents:#x} before relocation; krtld adds the relocated value to the \
                 field (the addend is in the RELA entry), so it must be zero"
            ),
        }
    }
}

impl std::error::Error for Refusal {}
