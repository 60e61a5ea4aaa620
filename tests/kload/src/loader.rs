//! The loader proper: `kobj_load_module` for one amd64 ET_REL object.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::path::Path;

use object::Endianness;
use object::elf;
use object::read::SectionIndex;
use object::read::elf::{
    Dyn as _, FileHeader as _, Rela as _, SectionHeader as _, Sym as _, SymbolTable,
};

use krtld_rules::{self as rules, Apply, Refusal};

use crate::error::LoadError;
use crate::mem::{LOW_LIMIT, Mapping, PAGE, round_up};

/// Size of one function trampoline: `jmp *0(%rip)` (6 bytes) followed by the
/// 8-byte absolute target, padded with `int3` to 16.
pub const TRAMPOLINE_SIZE: usize = 16;

/// Alignment of each low-memory data alias.
const ALIAS_ALIGN: usize = 16;

/// Largest section or symbol size accepted (a sanity bound, not a krtld rule).
const MAX_SIZE: u64 = 256 << 20;

/// `int _init(void)`.
pub type InitFn = unsafe extern "C" fn() -> c_int;
/// `int _fini(void)`.
pub type FiniFn = unsafe extern "C" fn() -> c_int;
/// `int _info(struct modinfo *)`.
pub type InfoFn = unsafe extern "C" fn(*mut c_void) -> c_int;

/// What the module is linked against: a resolver for its undefined symbols
/// (the "kernel"), and which of those names are data rather than functions.
///
/// The resolver plays `kobj_lookup_all` over unix/genunix: it is asked for
/// every undefined non-LOCAL symbol.  It must return `None` for names it
/// does not export.  A null pointer counts as `None`.
pub struct LoadOptions<'a> {
    resolver: &'a dyn Fn(&str) -> Option<*const ()>,
    data: HashMap<String, usize>,
    alias_all_data: bool,
}

impl<'a> LoadOptions<'a> {
    /// Options with `resolver` and every bound name treated as a function.
    pub fn new(resolver: &'a dyn Fn(&str) -> Option<*const ()>) -> Self {
        LoadOptions {
            resolver,
            data: HashMap::new(),
            alias_all_data: false,
        }
    }

    /// Declares `name` a data symbol of `size` bytes (e.g. `mod_driverops`,
    /// a 24-byte `struct mod_ops`).  Data is never routed through a
    /// trampoline.  If the module reaches it with a 32-bit relocation
    /// (`PC32`, `PLT32`, `32S`), the loader copies `size` bytes from the
    /// resolved address into a low-memory alias and binds the module to the
    /// alias; see [`Import`].
    pub fn data(mut self, name: &str, size: usize) -> Self {
        self.data.insert(name.to_owned(), size);
        self
    }

    /// Alias every bound data symbol, even ones only reached by
    /// `R_X86_64_64`, so that the address the module sees is always a
    /// low-memory alias (deterministic for the caller).
    pub fn alias_all_data(mut self, yes: bool) -> Self {
        self.alias_all_data = yes;
        self
    }
}

/// Which load area a section went to.  krtld puts non-writable `SHF_ALLOC`
/// sections (text, rodata, eh_frame...) in the text arena and writable ones
/// (data, bss) in the data arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// Read-only and executable after loading.
    Text,
    /// Read-write.
    Data,
}

/// An address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Start address.
    pub addr: usize,
    /// Length in bytes.
    pub size: usize,
}

impl Region {
    /// The start as a pointer.
    pub fn ptr(&self) -> *const u8 {
        self.addr as *const u8
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.addr && addr - self.addr < self.size
    }
}

/// Where one `SHF_ALLOC` section was placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedSection {
    /// Section name.
    pub name: String,
    /// Section header index.
    pub index: usize,
    /// Text or data area.
    pub area: Area,
    /// Load address.
    pub addr: usize,
    /// Size in bytes.
    pub size: usize,
}

/// How an undefined symbol was bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// A function: every reference in the module points at a 16-byte
    /// trampoline in low memory that jumps to the resolved address.
    Trampoline,
    /// Data copied (at load time) into a low-memory alias of `size` bytes;
    /// every reference in the module points at the alias.  Writes by the
    /// module go to the alias, not the original.
    Alias {
        /// Bytes copied.
        size: usize,
    },
    /// Data used at its resolved address (only `R_X86_64_64` references).
    Direct,
}

/// One bound undefined symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    name: String,
    target: usize,
    address: usize,
    binding: Binding,
}

impl Import {
    /// The symbol name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the resolver returned.
    pub fn target(&self) -> *const () {
        self.target as *const ()
    }

    /// The address the module's relocations were given: the trampoline,
    /// the alias, or the target itself.
    pub fn address(&self) -> *const () {
        self.address as *const ()
    }

    /// How it was bound.
    pub fn binding(&self) -> Binding {
        self.binding
    }
}

/// A module loaded into this process.  Dropping it unmaps text and data:
/// the caller must make sure no code of the module runs any more (and no
/// pointer into it is used) by then -- the same contract as `modunload`.
#[derive(Debug)]
pub struct LoadedModule {
    mapping: Mapping,
    text: Region,
    trampolines: Region,
    data: Region,
    aliases: Region,
    sections: Vec<LoadedSection>,
    symbols: HashMap<String, (usize, u64)>,
    imports: Vec<Import>,
    depends_on: Option<String>,
}

/// A symbol's section index. `krtld_rules::check` has refused every other
/// kind (`SHN_COMMON`, `SHN_XINDEX`, ...) before the loader reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shndx {
    Undef,
    Abs,
    Section(usize),
}

struct SymInfo {
    name: String,
    bind: u8,
    kind: u8,
    shndx: Shndx,
    value: u64,
    size: u64,
}

struct AllocSection {
    index: usize,
    name: String,
    area: Area,
    align: usize,
    size: usize,
    nobits: bool,
    offset: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ImportKind {
    Function,
    Data(usize),
}

struct ImportPlan {
    name: String,
    target: usize,
    kind: ImportKind,
    referenced_32bit: bool,
    offset: usize,
}

struct RelocPlan {
    alloc: usize,
    offset: u64,
    apply: Apply,
    r_type: u32,
    sym: usize,
    addend: i64,
}

/// Reads `path` and [`load`]s it.
///
/// # Safety
/// As for [`load`].
pub unsafe fn load_file(
    path: impl AsRef<Path>,
    opts: &LoadOptions<'_>,
) -> Result<LoadedModule, LoadError> {
    let path = path.as_ref();
    let image = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    // SAFETY: forwarded to the caller, who upholds load's contract.
    unsafe { load(&image, opts) }
}

/// Loads an amd64 ET_REL kernel module image the way `kobj_load_module`
/// does, binding its undefined symbols with `opts`.
///
/// First every rule of [`krtld_rules::check`] (the gate's rules too): the
/// first refusal is returned as [`LoadError::Refused`]. Then symbol
/// resolution (SDT/SMAP sites, unresolved non-weak symbols, undeclared
/// data). Nothing is mapped until all of those passed.
///
/// # Safety
/// For every symbol declared with [`LoadOptions::data`] that ends up
/// aliased, the address the resolver returns must be valid for reads of the
/// declared size.  Function addresses are not dereferenced by the loader;
/// they are only called (through trampolines) when the caller runs module
/// code, which is itself unsafe.
pub unsafe fn load(image: &[u8], opts: &LoadOptions<'_>) -> Result<LoadedModule, LoadError> {
    if let Some(refusal) = rules::check(image).refusals.into_iter().next() {
        return Err(LoadError::Refused(refusal));
    }
    let header = rules::check_header(image).map_err(LoadError::Refused)?;
    let sections = header.sections(ENDIAN, image)?;
    let mut object = Object::read(image, sections)?;
    let mut binding = Binder::bind(&object.syms, opts)?;
    let relocs = object.plan_relocations(&mut binding.imports, &binding.sym_import)?;
    let layout = Layout::place(
        &mut object.allocs,
        &mut binding.imports,
        opts.alias_all_data,
    );

    let (mapping, base) =
        Mapping::map_low(layout.alias_end, layout.max_align).map_err(LoadError::Memory)?;
    if base + layout.alias_end > LOW_LIMIT {
        return Err(LoadError::Memory(std::io::Error::other(
            "mapping does not lie below 2 GiB",
        )));
    }
    // SAFETY: `base` is a fresh read-write mapping of `layout.alias_end`
    // bytes, the size the layout gave every section, trampoline and alias;
    // load's caller vouches for the declared data sizes.
    let (imports, values) = unsafe {
        object.copy_progbits(base)?;
        let imports = bind_imports(&binding.imports, base, opts.alias_all_data);
        let values = object.symbol_values(base, &binding.sym_import, &imports);
        object.relocate(base, &relocs, &values)?;
        (imports, values)
    };

    // --- protections: text+trampolines r-x, data and aliases rw- ---------
    mapping
        .protect(base, layout.data_start, libc::PROT_READ | libc::PROT_EXEC)
        .map_err(LoadError::Memory)?;

    let symbols = object.symbol_table(&binding.sym_import, &values);
    let mut module = LoadedModule {
        mapping,
        text: Region {
            addr: base,
            size: layout.text_end,
        },
        trampolines: Region {
            addr: base + layout.tramp_start,
            size: layout.tramp_end - layout.tramp_start,
        },
        data: Region {
            addr: base + layout.data_start,
            size: layout.data_end - layout.data_start,
        },
        aliases: Region {
            addr: base + layout.alias_start,
            size: layout.alias_end - layout.alias_start,
        },
        sections: object.loaded_sections(base),
        symbols,
        imports,
        depends_on: None,
    };
    module.depends_on = if object.needed.is_empty() {
        module.legacy_depends_on()
    } else {
        Some(object.needed.join(" "))
    };
    Ok(module)
}

/// The only byte order of an amd64 object (the rules refused any other).
const ENDIAN: Endianness = Endianness::Little;

type Sections<'a> = object::read::elf::SectionTable<'a, elf::FileHeader64<Endianness>>;

/// What the loader reads from the object before anything is mapped.
struct Object<'a> {
    image: &'a [u8],
    sections: Sections<'a>,
    /// The SHF_ALLOC sections, in file order.
    allocs: Vec<AllocSection>,
    /// Section index -> index in `allocs`, for the loaded ones.
    alloc_of_section: Vec<Option<usize>>,
    /// DT_NEEDED dependencies (noted, not loaded).
    needed: Vec<String>,
    /// The symbol table, in order.
    syms: Vec<SymInfo>,
}

impl<'a> Object<'a> {
    fn read(image: &'a [u8], sections: Sections<'a>) -> Result<Self, LoadError> {
        let mut object = Object {
            image,
            sections,
            allocs: Vec::new(),
            alloc_of_section: vec![None; sections.len()],
            needed: Vec::new(),
            syms: Vec::new(),
        };
        object.read_allocs()?;
        object.read_needed()?;
        object.read_symbols()?;
        Ok(object)
    }

    fn section_name(&self, sh: &elf::SectionHeader64<Endianness>) -> String {
        let name = self.sections.section_name(ENDIAN, sh);
        String::from_utf8_lossy(name.unwrap_or(b"<unnamed>")).into_owned()
    }

    /// get_progbits_size: which sections are loaded, and into which area.
    fn read_allocs(&mut self) -> Result<(), LoadError> {
        for (index, sh) in self.sections.enumerate().skip(1) {
            let flags = sh.sh_flags(ENDIAN);
            if !flags.contains(elf::SHF_ALLOC) {
                continue;
            }
            let name = self.section_name(sh);
            // sh_addr 0 and a power-of-two alignment: checked by the rules.
            let align = sh.sh_addralign(ENDIAN).max(1);
            if align > MAX_SIZE {
                return Err(LoadError::Malformed(format!(
                    "section {name} has sh_addralign {align}, implausibly large"
                )));
            }
            let size = sh.sh_size(ENDIAN);
            if size > MAX_SIZE {
                return Err(LoadError::Malformed(format!(
                    "section {name} is implausibly large ({size} bytes)"
                )));
            }
            let nobits = sh.sh_type(ENDIAN) == elf::SHT_NOBITS;
            if !nobits {
                // Fails early, before anything is mapped, if the bytes are
                // not in the file.
                sh.data(ENDIAN, self.image)?;
            }
            self.alloc_of_section[index.0] = Some(self.allocs.len());
            self.allocs.push(AllocSection {
                index: index.0,
                name,
                area: if flags.contains(elf::SHF_WRITE) {
                    Area::Data
                } else {
                    Area::Text
                },
                align: align as usize,
                size: size as usize,
                nobits,
                offset: 0,
            });
        }
        Ok(())
    }

    /// do_dynamic: DT_NEEDED dependencies (noted, not loaded).
    fn read_needed(&mut self) -> Result<(), LoadError> {
        let Some((dynamic, link)) = self.sections.dynamic(ENDIAN, self.image)? else {
            return Ok(());
        };
        let strings = self.sections.strings(ENDIAN, self.image, link)?;
        for d in dynamic {
            match d.d_tag(ENDIAN) {
                elf::DT_NULL => break,
                elf::DT_NEEDED => self
                    .needed
                    .push(String::from_utf8_lossy(d.string(ENDIAN, strings)?).into_owned()),
                _ => {}
            }
        }
        Ok(())
    }

    /// get_syms: the (last, like krtld) SHT_SYMTAB.
    fn read_symbols(&mut self) -> Result<(), LoadError> {
        let sections = &self.sections;
        let symtab_index = rules::symbol_table_index(sections, ENDIAN)
            .ok_or(LoadError::Refused(Refusal::NoSymbolTable))?;
        let symtab = SymbolTable::parse(
            ENDIAN,
            self.image,
            sections,
            symtab_index,
            sections.section(symtab_index)?,
        )?;
        self.syms.reserve(symtab.len());
        for (i, sym) in symtab.enumerate() {
            let name = String::from_utf8_lossy(symtab.symbol_name(ENDIAN, sym)?).into_owned();
            let shndx = match sym.st_shndx(ENDIAN) {
                elf::SHN_UNDEF => Shndx::Undef,
                elf::SHN_ABS => Shndx::Abs,
                s if !s.is_reserved() && usize::from(s.0) < sections.len() => {
                    Shndx::Section(usize::from(s.0))
                }
                other => {
                    return Err(LoadError::Malformed(format!(
                        "symbol {} '{name}' has section index {other:#x}, which the rules refuse",
                        i.0
                    )));
                }
            };
            self.syms.push(SymInfo {
                name,
                bind: sym.st_bind().0,
                kind: sym.st_type().0,
                shndx,
                value: sym.st_value(ENDIAN),
                size: sym.st_size(ENDIAN),
            });
        }
        Ok(())
    }

    /// Symbol `i`'s name for messages: a section symbol goes by its section.
    fn display_name(&self, i: usize) -> String {
        let s = &self.syms[i];
        match s.shndx {
            Shndx::Section(sec) if s.kind == elf::STT_SECTION.0 && s.name.is_empty() => self
                .sections
                .section(SectionIndex(sec))
                .map(|sh| self.section_name(sh))
                .unwrap_or_default(),
            _ => s.name.clone(),
        }
    }

    /// do_relocations: the plan. Every entry was checked by the rules
    /// (section types and links, types, symbols, fields inside the
    /// section); marks the imports a 32-bit field reaches.
    fn plan_relocations(
        &self,
        imports: &mut [ImportPlan],
        sym_import: &[Option<usize>],
    ) -> Result<Vec<RelocPlan>, LoadError> {
        let mut relocs: Vec<RelocPlan> = Vec::new();
        for sh in self.sections.iter().skip(1) {
            if sh.sh_type(ENDIAN) != elf::SHT_RELA {
                continue;
            }
            // Relocations of sections that are not loaded (debug info) are
            // skipped, as krtld does.
            let info = sh.sh_info(ENDIAN) as usize;
            let Some(Some(alloc)) = self.alloc_of_section.get(info).copied() else {
                continue;
            };
            let Some((entries, _)) = sh.rela(ENDIAN, self.image)? else {
                continue;
            };
            let target = &self.allocs[alloc];
            for r in entries {
                let sym = r.r_sym(ENDIAN, false) as usize;
                let offset = r.r_offset(ENDIAN);
                let r_type = r.r_type(ENDIAN, false).0;
                let apply = rules::classify(r_type);
                // The rules refused every other type, symbols beyond the
                // table and fields outside the section; the writes rely on
                // the last, so it is checked again here.
                if apply == Apply::Skip {
                    continue;
                }
                let inside = offset
                    .checked_add(apply.width())
                    .is_some_and(|end| end <= target.size as u64);
                if matches!(apply, Apply::Refuse(_)) || sym >= self.syms.len() || !inside {
                    return Err(LoadError::Malformed(format!(
                        "relocation {} at {}+{offset:#x}: refused by the rules",
                        rules::type_name(r_type),
                        target.name
                    )));
                }
                if apply.is_32bit()
                    && let Some(k) = sym_import[sym]
                {
                    imports[k].referenced_32bit = true;
                }
                relocs.push(RelocPlan {
                    alloc,
                    offset,
                    apply,
                    r_type,
                    sym,
                    addend: r.r_addend(ENDIAN),
                });
            }
        }
        Ok(relocs)
    }

    /// get_progbits: copies the section bytes (NOBITS stays zero).
    ///
    /// # Safety
    /// `base` starts a read-write mapping that holds every section at the
    /// offset [`Layout::place`] gave it.
    unsafe fn copy_progbits(&self, base: usize) -> Result<(), LoadError> {
        for a in self.allocs.iter().filter(|a| !a.nobits) {
            let bytes = self
                .sections
                .section(SectionIndex(a.index))?
                .data(ENDIAN, self.image)?;
            assert_eq!(bytes.len(), a.size);
            // SAFETY: [base+offset, +size) lies inside the read-write
            // mapping (the caller's contract), and `bytes` is a different
            // allocation, so the ranges cannot overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), (base + a.offset) as *mut u8, a.size);
            }
        }
        Ok(())
    }

    /// Each symbol's value as get_syms makes it (the section base added),
    /// imports bound to their trampoline or alias; `None` for an
    /// unresolved weak symbol, whose references krtld leaves alone.
    fn symbol_values(
        &self,
        base: usize,
        sym_import: &[Option<usize>],
        imports: &[Import],
    ) -> Vec<Option<u64>> {
        let section_addr = |s: usize| -> u64 {
            match self.alloc_of_section[s] {
                Some(a) => (base + self.allocs[a].offset) as u64,
                // Not loaded: krtld adds the file's sh_addr (normally 0).
                None => self
                    .sections
                    .section(SectionIndex(s))
                    .map(|sh| sh.sh_addr(ENDIAN))
                    .unwrap_or(0),
            }
        };
        let value = |(i, s): (usize, &SymInfo)| {
            if i == 0 {
                return Some(0);
            }
            if let Some(k) = sym_import[i] {
                return Some(imports[k].address as u64);
            }
            match s.shndx {
                Shndx::Section(sec) => Some(section_addr(sec).wrapping_add(s.value)),
                Shndx::Abs => Some(s.value),
                Shndx::Undef => None,
            }
        };
        self.syms.iter().enumerate().map(value).collect()
    }

    /// do_relocate: adds each planned value to its field, refusing a value
    /// a 32-bit field cannot hold.
    ///
    /// # Safety
    /// As for [`Object::copy_progbits`]; `relocs` is this object's plan.
    unsafe fn relocate(
        &self,
        base: usize,
        relocs: &[RelocPlan],
        values: &[Option<u64>],
    ) -> Result<(), LoadError> {
        for r in relocs {
            let Some(s) = values[r.sym] else {
                continue;
            };
            let target = &self.allocs[r.alloc];
            let place = base + target.offset + r.offset as usize;
            let mut value = s.wrapping_add(r.addend as u64);
            if r.apply.is_pc_relative() {
                value = value.wrapping_sub(place as u64);
            }
            if r.apply.is_32bit() {
                if !rules::fits_sign_extended_32(value) {
                    return Err(LoadError::RelocationOverflow {
                        section: target.name.clone(),
                        offset: r.offset,
                        type_name: rules::type_name(r.r_type),
                        symbol: self.display_name(r.sym),
                        value,
                    });
                }
                let field = place as *mut u32;
                // SAFETY: the plan verified offset+4 <= section size, so
                // the field lies in this section's slot of the read-write
                // mapping; unaligned access is used because fields need
                // not be aligned.  Like krtld, the value is added to what
                // is there.
                unsafe { field.write_unaligned(field.read_unaligned().wrapping_add(value as u32)) };
            } else {
                let field = place as *mut u64;
                // SAFETY: as above, with offset+8 <= section size.
                unsafe { field.write_unaligned(field.read_unaligned().wrapping_add(value)) };
            }
        }
        Ok(())
    }

    /// The module's symbol table, as kobj_lookup sees it: the first
    /// definition of a name wins, like lookup_one's hash chain walk.
    fn symbol_table(
        &self,
        sym_import: &[Option<usize>],
        values: &[Option<u64>],
    ) -> HashMap<String, (usize, u64)> {
        let mut symbols: HashMap<String, (usize, u64)> = HashMap::new();
        for (i, s) in self.syms.iter().enumerate().skip(1) {
            if s.name.is_empty() || s.kind == elf::STT_FILE.0 || sym_import[i].is_some() {
                continue;
            }
            let loaded = match s.shndx {
                Shndx::Section(sec) => self.alloc_of_section[sec].is_some(),
                Shndx::Abs => true,
                Shndx::Undef => false,
            };
            if let (true, Some(v)) = (loaded, values[i]) {
                symbols
                    .entry(s.name.clone())
                    .or_insert((v as usize, s.size));
            }
        }
        symbols
    }

    fn loaded_sections(&self, base: usize) -> Vec<LoadedSection> {
        self.allocs
            .iter()
            .map(|a| LoadedSection {
                name: a.name.clone(),
                index: a.index,
                area: a.area,
                addr: base + a.offset,
                size: a.size,
            })
            .collect()
    }
}

/// do_symbols: how each undefined symbol is bound. The rules refused TLS,
/// common and LOCAL undefined symbols already.
struct Binder {
    imports: Vec<ImportPlan>,
    /// Symbol index -> index in `imports`, for the bound ones.
    sym_import: Vec<Option<usize>>,
}

impl Binder {
    /// Asks the resolver for every undefined non-LOCAL symbol; refuses the
    /// module if an SDT/SMAP site, an unresolved non-weak symbol or data
    /// not declared with [`LoadOptions::data`] is left.
    fn bind(syms: &[SymInfo], opts: &LoadOptions<'_>) -> Result<Binder, LoadError> {
        let mut binder = Binder {
            imports: Vec::new(),
            sym_import: vec![None; syms.len()],
        };
        let mut import_by_name: HashMap<&str, usize> = HashMap::new();
        let mut not_modelled = Vec::new();
        let mut unresolved = Vec::new();
        for (i, s) in syms.iter().enumerate().skip(1) {
            if s.shndx != Shndx::Undef {
                continue;
            }
            if s.bind != elf::STB_LOCAL.0 {
                if let Some(&k) = import_by_name.get(s.name.as_str()) {
                    binder.sym_import[i] = Some(k);
                    continue;
                }
                if let Some(plan) = ImportPlan::resolve(s, opts)? {
                    import_by_name.insert(&s.name, binder.imports.len());
                    binder.sym_import[i] = Some(binder.imports.len());
                    binder.imports.push(plan);
                    continue;
                }
            }
            if s.name.starts_with("__dtrace_probe_")
                || s.name == "smap_enable"
                || s.name == "smap_disable"
            {
                not_modelled.push(s.name.clone());
            } else if s.bind != elf::STB_WEAK.0 {
                unresolved.push(s.name.clone());
            }
        }
        if !not_modelled.is_empty() {
            return Err(LoadError::NotModelled {
                names: not_modelled,
            });
        }
        if !unresolved.is_empty() {
            return Err(LoadError::Unresolved { names: unresolved });
        }
        Ok(binder)
    }
}

impl ImportPlan {
    /// The import for `s` if the resolver knows it; a data object must
    /// have been declared, so that its size is known.
    fn resolve(s: &SymInfo, opts: &LoadOptions<'_>) -> Result<Option<ImportPlan>, LoadError> {
        let Some(target) = (opts.resolver)(&s.name).filter(|p| !p.is_null()) else {
            return Ok(None);
        };
        let kind = if let Some(&size) = opts.data.get(&s.name) {
            ImportKind::Data(size)
        } else if s.kind == elf::STT_OBJECT.0 {
            return Err(LoadError::UndeclaredData {
                name: s.name.clone(),
            });
        } else {
            ImportKind::Function
        };
        Ok(Some(ImportPlan {
            name: s.name.clone(),
            target: target as usize,
            kind,
            referenced_32bit: false,
            offset: 0,
        }))
    }
}

/// The mapping's layout, as offsets from its base:
/// `[text][trampolines] | [data] | [aliases]`, each area page-aligned.
struct Layout {
    max_align: usize,
    text_end: usize,
    tramp_start: usize,
    tramp_end: usize,
    data_start: usize,
    data_end: usize,
    alias_start: usize,
    alias_end: usize,
}

impl Layout {
    /// Gives every section, trampoline and alias its offset.
    fn place(allocs: &mut [AllocSection], imports: &mut [ImportPlan], alias_all: bool) -> Layout {
        let mut max_align = PAGE;
        let mut place_area = |area: Area, mut off: usize| {
            for a in allocs.iter_mut().filter(|a| a.area == area) {
                off = round_up(off, a.align);
                a.offset = off;
                off += a.size;
                max_align = max_align.max(a.align);
            }
            off
        };
        let text_end = place_area(Area::Text, 0);
        let tramp_start = round_up(text_end, PAGE);
        let mut off = tramp_start;
        for imp in imports
            .iter_mut()
            .filter(|i| i.kind == ImportKind::Function)
        {
            imp.offset = off;
            off += TRAMPOLINE_SIZE;
        }
        let tramp_end = off;
        let data_start = round_up(tramp_end, PAGE);
        let data_end = place_area(Area::Data, data_start);
        let alias_start = round_up(data_end, PAGE);
        off = alias_start;
        for imp in imports.iter_mut() {
            if let ImportKind::Data(size) = imp.kind
                && (imp.referenced_32bit || alias_all)
            {
                off = round_up(off, ALIAS_ALIGN);
                imp.offset = off;
                off += size.max(1);
            }
        }
        Layout {
            max_align,
            text_end,
            tramp_start,
            tramp_end,
            data_start,
            data_end,
            alias_start,
            alias_end: off,
        }
    }
}

/// Binds the imports: writes each function's trampoline, copies each
/// aliased data object into its low alias.
///
/// # Safety
/// `base` starts a read-write mapping holding every slot
/// [`Layout::place`] gave `imports`; each aliased data target is readable
/// for its declared size (load's contract).
unsafe fn bind_imports(imports: &[ImportPlan], base: usize, alias_all: bool) -> Vec<Import> {
    let mut bound: Vec<Import> = Vec::with_capacity(imports.len());
    for imp in imports {
        let (address, binding) = match imp.kind {
            ImportKind::Function => {
                let at = base + imp.offset;
                let mut code = [0xccu8; TRAMPOLINE_SIZE];
                code[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]); // jmp *0(%rip)
                code[6..14].copy_from_slice(&(imp.target as u64).to_le_bytes());
                // SAFETY: the trampoline slot was reserved in the layout and
                // is still read-write; `code` is a local array.
                unsafe {
                    std::ptr::copy_nonoverlapping(code.as_ptr(), at as *mut u8, TRAMPOLINE_SIZE);
                }
                (at, Binding::Trampoline)
            }
            ImportKind::Data(size) if imp.referenced_32bit || alias_all => {
                let at = base + imp.offset;
                // SAFETY: the caller guarantees (load's contract) that the
                // resolved address of a declared data symbol is readable for
                // `size` bytes; the destination slot was reserved in the
                // read-write alias area, which cannot overlap caller memory.
                unsafe {
                    std::ptr::copy_nonoverlapping(imp.target as *const u8, at as *mut u8, size);
                }
                (at, Binding::Alias { size })
            }
            ImportKind::Data(_) => (imp.target, Binding::Direct),
        };
        bound.push(Import {
            name: imp.name.clone(),
            target: imp.target,
            address,
            binding,
        });
    }
    bound
}

impl LoadedModule {
    /// The address of a symbol the module defines (in a loaded section,
    /// or absolute), local or global; the first
    /// definition in symbol-table order wins, as with `kobj_lookup`.
    /// Undefined (imported) names are not found here: see [`Self::import`].
    pub fn symbol(&self, name: &str) -> Option<*const ()> {
        self.symbols.get(name).map(|&(a, _)| a as *const ())
    }

    /// `st_size` of a symbol the module defines.
    pub fn symbol_size(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).map(|&(_, s)| s)
    }

    /// The text area (non-writable `SHF_ALLOC` sections), read-only and
    /// executable.
    pub fn text(&self) -> Region {
        self.text
    }

    /// The data area (writable `SHF_ALLOC` sections and zeroed NOBITS),
    /// read-write.
    pub fn data(&self) -> Region {
        self.data
    }

    /// The trampolines of the bound functions (read-only, executable).
    pub fn trampolines(&self) -> Region {
        self.trampolines
    }

    /// The low-memory data aliases (read-write).
    pub fn aliases(&self) -> Region {
        self.aliases
    }

    /// Where every loaded section went, in section-header order.
    pub fn sections(&self) -> &[LoadedSection] {
        &self.sections
    }

    /// A loaded section by name.
    pub fn section(&self, name: &str) -> Option<&LoadedSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Every bound undefined symbol.
    pub fn imports(&self) -> &[Import] {
        &self.imports
    }

    /// A bound undefined symbol by name.
    pub fn import(&self, name: &str) -> Option<&Import> {
        self.imports.iter().find(|i| i.name == name)
    }

    /// The import whose module-visible address (trampoline or alias) or
    /// target is `addr`: lets a simulator recognise, say, the `nulldev`
    /// trampoline stored in a `cb_ops`, or the `mod_driverops` alias in a
    /// `modldrv`.
    pub fn import_at(&self, addr: *const ()) -> Option<&Import> {
        let addr = addr as usize;
        self.imports
            .iter()
            .find(|i| i.address == addr)
            .or_else(|| self.imports.iter().find(|i| i.target == addr))
    }

    /// `kobj_addrcheck`: whether `addr` lies in the module's text or data.
    pub fn contains(&self, addr: *const ()) -> bool {
        let a = addr as usize;
        self.text.contains(a) || self.data.contains(a)
    }

    /// The dependency list krtld would hand to `do_dependents`: the
    /// `DT_NEEDED` entries of an `SHT_DYNAMIC` section, space-separated, or
    /// else the NUL-terminated `_depends_on` array.  Only reported: this
    /// loader loads no dependencies.
    pub fn depends_on(&self) -> Option<&str> {
        self.depends_on.as_deref()
    }

    fn legacy_depends_on(&self) -> Option<String> {
        let &(addr, size) = self.symbols.get("_depends_on")?;
        let size = usize::try_from(size).ok()?;
        if size == 0 || !self.contains(addr as *const ()) || !self.mapping.contains(addr, size) {
            return None;
        }
        // SAFETY: [addr, addr+size) lies inside the mapping (checked above),
        // in the text or data area, both readable; the bytes are plain u8.
        let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, size) };
        if bytes[size - 1] != 0 {
            return None;
        }
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(size);
        Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
    }

    fn entry(&self, name: &'static str) -> Result<usize, LoadError> {
        self.symbols
            .get(name)
            .map(|&(a, _)| a)
            .filter(|&a| self.text.contains(a))
            .ok_or(LoadError::MissingEntryPoint(name))
    }

    /// `_init`, if the module defines it in its text.
    pub fn init_fn(&self) -> Option<InitFn> {
        let a = self.entry("_init").ok()?;
        // SAFETY: `a` is a non-null address inside the module's executable
        // text, where the module defines `_init`; turning it into a fn
        // pointer is sound, and calling it is the caller's unsafe act.
        Some(unsafe { std::mem::transmute::<usize, InitFn>(a) })
    }

    /// `_fini`, if the module defines it in its text.
    pub fn fini_fn(&self) -> Option<FiniFn> {
        let a = self.entry("_fini").ok()?;
        // SAFETY: as for init_fn.
        Some(unsafe { std::mem::transmute::<usize, FiniFn>(a) })
    }

    /// `_info`, if the module defines it in its text.
    pub fn info_fn(&self) -> Option<InfoFn> {
        let a = self.entry("_info").ok()?;
        // SAFETY: as for init_fn.
        Some(unsafe { std::mem::transmute::<usize, InfoFn>(a) })
    }

    /// `modinstall`: calls the module's `_init()` and returns its result
    /// (0 means installed).
    ///
    /// # Safety
    /// Runs module code: the simulated kernel the resolver bound must be set
    /// up for whatever `_init` calls (normally `mod_install`).
    pub unsafe fn call_init(&self) -> Result<c_int, LoadError> {
        let f = self
            .init_fn()
            .ok_or(LoadError::MissingEntryPoint("_init"))?;
        // SAFETY: delegated to the caller (see above).
        Ok(unsafe { f() })
    }

    /// `mod_getinfo`: calls the module's `_info(modinfo)` and returns its
    /// result (non-zero means success, per mod_info(9F)).
    ///
    /// # Safety
    /// Runs module code; `modinfo` must be (or be laid out like) the
    /// `struct modinfo` the bound `mod_info` expects.
    pub unsafe fn call_info<T>(&self, modinfo: &mut T) -> Result<c_int, LoadError> {
        let f = self
            .info_fn()
            .ok_or(LoadError::MissingEntryPoint("_info"))?;
        // SAFETY: delegated to the caller (see above).
        Ok(unsafe { f((modinfo as *mut T).cast::<c_void>()) })
    }

    /// `moduninstall`: calls the module's `_fini()` and returns its result
    /// (0 means it may be unloaded).
    ///
    /// # Safety
    /// Runs module code, as for [`Self::call_init`].
    pub unsafe fn call_fini(&self) -> Result<c_int, LoadError> {
        let f = self
            .fini_fn()
            .ok_or(LoadError::MissingEntryPoint("_fini"))?;
        // SAFETY: delegated to the caller (see above).
        Ok(unsafe { f() })
    }
}
