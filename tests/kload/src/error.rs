//! Why a module was refused.

use std::fmt;
use std::io;
use std::path::PathBuf;

use krtld_rules::Refusal;

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
    /// A rule of krtld's that the object breaks (`krtld_rules::check`,
    /// the rules the gate applies): the first one found.
    Refused(Refusal),
    /// The object is structurally broken (bad offsets, indices, sizes) in a
    /// way the loader found after the rules passed.
    Malformed(String),
    /// Calls krtld rewrites at load time (`__dtrace_probe_*` SDT probe sites,
    /// `smap_enable`/`smap_disable` hot-inlines).  krtld would accept them;
    /// this loader does not model the rewriting and refuses.
    NotModelled {
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
            LoadError::Refused(refusal) => refusal.fmt(f),
            LoadError::Malformed(what) => write!(f, "malformed ELF object: {what}"),
            LoadError::NotModelled { names } => write!(
                f,
                "symbol(s) {} name call sites krtld rewrites at load time (SDT probes / SMAP \
                 hot-inlines); this loader does not model that rewriting",
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
            LoadError::Refused(r) => Some(r),
            _ => None,
        }
    }
}

impl From<object::read::Error> for LoadError {
    fn from(e: object::read::Error) -> Self {
        LoadError::Malformed(e.to_string())
    }
}
