//! Why a module was refused.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A module that krtld would refuse (or silently mis-load), or that this
/// loader could not place in memory.  The `Display` text names the problem,
/// the section/symbol/offset concerned, and what krtld does with it.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// No ELF magic.
    NotElf,
    /// Not an amd64 object: krtld's `elf_mach_ok` wants `ELFDATA2LSB` and
    /// `EM_AMD64`.  (A 32-bit object is reported here too.)
    WrongIsa {
        /// `EI_CLASS`.
        class: u8,
        /// `EI_DATA`.
        data: u8,
        /// `e_machine`.
        machine: u16,
    },
    /// `e_type` is not `ET_REL`: krtld loads only relocatable objects.
    NotRelocatable {
        /// `e_type`.
        e_type: u16,
    },
    /// The object is structurally broken (bad offsets, indices, sizes).
    Malformed(String),
    /// An `SHF_ALLOC` section has a non-zero `sh_addr` ("non-zero sect addr
    /// in input file"), typically from an `ld -r -T` script that does not
    /// pin output sections at 0.
    NonZeroSectionAddress {
        /// Section name.
        section: String,
        /// Section index.
        index: usize,
        /// Its `sh_addr`.
        addr: u64,
    },
    /// There is no `SHT_SYMTAB` (a stripped module).
    NoSymbolTable,
    /// Thread-local symbols: krtld refuses undefined/common ones ("TLS symbol
    /// not supported") and every TLS relocation; this loader refuses any.
    TlsSymbols {
        /// The symbols.
        names: Vec<String>,
    },
    /// Calls krtld rewrites at load time (`__dtrace_probe_*` SDT probe sites,
    /// `smap_enable`/`smap_disable` hot-inlines).  krtld would accept them;
    /// this loader does not model the rewriting and refuses.
    NotModelled {
        /// The symbols.
        names: Vec<String>,
    },
    /// `LOCAL` undefined symbols (GNU `ld -r --gc-sections` leftovers): krtld
    /// never looks LOCAL symbols up, so each is an "undefined symbol".
    LocalUndefined {
        /// The symbols.
        names: Vec<String>,
    },
    /// Undefined, non-weak symbols that the resolver could not bind
    /// (krtld: "undefined symbol", "cannot load module").
    Unresolved {
        /// The symbols.
        names: Vec<String>,
    },
    /// The module declares an undefined symbol as `STT_OBJECT` but the
    /// caller did not declare it as data, so it would have been routed
    /// through a code trampoline.
    UndeclaredData {
        /// The symbol.
        name: String,
    },
    /// A `SHT_REL` section: krtld "can't process type SHT_REL".
    RelSection {
        /// Section name.
        section: String,
    },
    /// A `SHT_RELA` section whose `sh_link` is not the symbol table
    /// (krtld: "reloc for non-default symtab").
    RelocationSymtabMismatch {
        /// Section name.
        section: String,
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
    /// A relocation whose value does not fit its 32-bit field (krtld
    /// reports it with `REL_ERR_NOFIT` and fails the load; for `PLT32`,
    /// which krtld does not check, this loader is stricter).
    RelocationOverflow {
        /// The relocated section.
        section: String,
        /// `r_offset`.
        offset: u64,
        /// Its psABI name.
        type_name: &'static str,
        /// The referenced symbol.
        symbol: String,
        /// The 64-bit value that did not fit.
        value: u64,
    },
    /// An entry point the module must define is missing or not inside the
    /// module (modctl: "_init() not defined properly").
    MissingEntryPoint(&'static str),
    /// mmap/mprotect failed.
    Memory(io::Error),
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            LoadError::NotElf => write!(f, "not an ELF object (bad magic)"),
            LoadError::WrongIsa {
                class,
                data,
                machine,
            } => write!(
                f,
                "not an amd64 module: EI_CLASS {class}, EI_DATA {data}, e_machine {machine}; \
                 krtld requires ELFDATA2LSB and EM_AMD64 (62)"
            ),
            LoadError::NotRelocatable { e_type } => write!(
                f,
                "e_type {} ({e_type}) is not ET_REL: krtld loads only relocatable objects \
                 (ET_DYN/ET_EXEC modules carry PLTs and GOTs it cannot process)",
                match object::elf::FileType(*e_type) {
                    object::elf::ET_NONE => "ET_NONE",
                    object::elf::ET_EXEC => "ET_EXEC",
                    object::elf::ET_DYN => "ET_DYN",
                    object::elf::ET_CORE => "ET_CORE",
                    _ => "unknown",
                }
            ),
            LoadError::Malformed(what) => write!(f, "malformed ELF object: {what}"),
            LoadError::NonZeroSectionAddress {
                section,
                index,
                addr,
            } => write!(
                f,
                "SHF_ALLOC section {section} (index {index}) has non-zero sh_addr {addr:#x}: \
                 krtld refuses it (\"non-zero sect addr in input file\"); pin every output \
                 section at 0 in the ld -r script"
            ),
            LoadError::NoSymbolTable => write!(
                f,
                "no SHT_SYMTAB symbol table found: krtld needs one (do not strip the module)"
            ),
            LoadError::TlsSymbols { names } => write!(
                f,
                "TLS symbol(s) {}: the kernel has no thread-local storage for modules; \
                 krtld refuses them (\"TLS symbol not supported\")",
                list(names)
            ),
            LoadError::NotModelled { names } => write!(
                f,
                "symbol(s) {} name call sites krtld rewrites at load time (SDT probes / SMAP \
                 hot-inlines); this loader does not model that rewriting",
                list(names)
            ),
            LoadError::LocalUndefined { names } => write!(
                f,
                "LOCAL undefined symbol(s) {}: krtld never resolves LOCAL symbols, so each \
                 is an \"undefined symbol\" and the load fails (remove ld -r --gc-sections \
                 leftovers with objcopy -N)",
                list(names)
            ),
            LoadError::Unresolved { names } => write!(
                f,
                "undefined symbol(s) {} could not be resolved: krtld refuses the module \
                 (\"undefined symbol\", \"cannot load module\")",
                list(names)
            ),
            LoadError::UndeclaredData { name } => write!(
                f,
                "undefined symbol '{name}' is an STT_OBJECT but was not declared as data \
                 (LoadOptions::data); it would have been bound to a code trampoline"
            ),
            LoadError::RelSection { section } => write!(
                f,
                "section {section} is SHT_REL: krtld can't process type SHT_REL (amd64 \
                 modules must use SHT_RELA)"
            ),
            LoadError::RelocationSymtabMismatch { section } => write!(
                f,
                "relocation section {section} does not link to the symbol table: krtld \
                 refuses a \"reloc for non-default symtab\""
            ),
            LoadError::UnsupportedRelocation {
                section,
                offset,
                r_type,
                type_name,
                symbol,
                reason,
            } => write!(
                f,
                "relocation {type_name} (type {r_type}) against '{symbol}' at {section}+{offset:#x} \
                 refused: {reason}"
            ),
            LoadError::RelocationOverflow {
                section,
                offset,
                type_name,
                symbol,
                value,
            } => write!(
                f,
                "relocation {type_name} against '{symbol}' at {section}+{offset:#x}: value \
                 {value:#x} does not fit a sign-extended 32-bit field (krtld fails the load \
                 for PC32/32S; it would truncate PLT32)"
            ),
            LoadError::MissingEntryPoint(name) => write!(
                f,
                "{name}() not defined properly: the module does not define it inside its \
                 text/data"
            ),
            LoadError::Memory(e) => write!(f, "cannot map module memory below 2 GiB: {e}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::Memory(e) => Some(e),
            _ => None,
        }
    }
}

impl From<object::read::Error> for LoadError {
    fn from(e: object::read::Error) -> Self {
        LoadError::Malformed(e.to_string())
    }
}
