//! What a gate run found: the violations and the figures it prints.

use std::collections::BTreeMap;
use std::fmt;

/// The rule a [`Violation`] breaks. Each one is something krtld, DTrace fbt
/// or the illumos kernel environment would trip over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// One of krtld's own rules (the `krtld_rules` crate, which the
    /// userland loader applies too).
    Krtld(krtld_rules::Rule),
    /// The bytes are not an ELF file the gate's own checks can read.
    Malformed,
    /// `_init`, `_fini` or `_info` missing, not GLOBAL or not defined.
    EntryPoint,
    /// An instruction using an x87, MMX, SSE or AVX register.
    Simd,
    /// Bytes in an executable section that do not decode as x86-64.
    Undecodable,
    /// A jump or call through a register or memory: illumos builds its
    /// kernel with retpolines, so every indirect branch must go through
    /// one of its `__x86_indirect_thunk_<reg>` functions instead.
    IndirectBranch,
    /// An undefined symbol that is not on the allowlist.
    UndefinedSymbol,
    /// A symbol of Rust's panic machinery, or a reference to kernel `panic`.
    Panic,
    /// A function without a `push %rbp` (0x55) anywhere in its body.
    FramePointer,
    /// A stack frame larger than the limit.
    StackFrame,
    /// A thread-local (SHF_TLS) section.
    Tls,
    /// A defined symbol with a Rust-mangled name.
    MangledName,
    /// A name of the C driver's that the module does not define (as the
    /// kind listed).
    CName,
}

impl Rule {
    /// Short name used in the output.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Krtld(rule) => rule.name(),
            Rule::Malformed => "malformed",
            Rule::EntryPoint => "entry-point",
            Rule::Simd => "simd",
            Rule::Undecodable => "undecodable",
            Rule::IndirectBranch => "indirect-branch",
            Rule::UndefinedSymbol => "undefined-symbol",
            Rule::Panic => "panic",
            Rule::FramePointer => "frame-pointer",
            Rule::StackFrame => "stack-frame",
            Rule::Tls => "tls",
            Rule::MangledName => "mangled-name",
            Rule::CName => "c-name",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule: what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// Where: a section, a section offset, a symbol, a function.
    pub location: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "[{}] {}", self.rule, self.message)
        } else {
            write!(f, "[{}] {}: {}", self.rule, self.location, self.message)
        }
    }
}

/// The stack frame measured for one function.
///
/// Only the prologue is measured: the pushes and immediate `rsp`
/// subtractions from the first `push %rbp` up to the first call, jump or
/// return. The return address, callees' frames and any later `rsp`
/// adjustment are not included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Symbol name, demangled when it is a Rust name.
    pub function: String,
    /// Bytes pushed in the prologue (8 per push).
    pub pushed: u64,
    /// Bytes subtracted from `rsp` by immediates in the prologue (including
    /// a stack-probe loop's target and worst-case realignment).
    pub allocated: u64,
    /// The prologue ended in a stack-probe loop, whose size was read from
    /// the probe's bound rather than counted.
    pub probed: bool,
}

impl Frame {
    /// `pushed + allocated`.
    pub fn bytes(&self) -> u64 {
        self.pushed + self.allocated
    }
}

/// Section sizes and other numbers the gate prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Total size of executable allocated sections (`.text`).
    pub text: u64,
    /// Total size of read-only, non-executable allocated sections (`.rodata`).
    pub rodata: u64,
    /// Total size of writable allocated PROGBITS sections (`.data`).
    pub data: u64,
    /// Total size of allocated NOBITS sections (`.bss`).
    pub bss: u64,
    /// Relocations against allocated sections, by type name.
    pub relocations: BTreeMap<String, usize>,
    /// Number of STT_FUNC symbols with a nonzero size that were examined.
    pub functions: usize,
    /// The largest prologue frame found, if any function was examined.
    pub largest_frame: Option<Frame>,
    /// Undefined (GLOBAL or WEAK) symbols, sorted.
    pub undefined: Vec<String>,
}

/// The result of [`crate::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every broken rule; empty when the object passes.
    pub violations: Vec<Violation>,
    /// The figures, as far as they could be computed.
    pub figures: Figures,
}

/// At most this many violations of one rule are printed; the rest are
/// counted.
const PRINT_PER_RULE: usize = 25;

impl Report {
    /// True when no rule is broken.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Whether some violation of `rule` was found.
    pub fn has(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }

    /// The violations of `rule`.
    pub fn of(&self, rule: Rule) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(move |v| v.rule == rule)
    }

    pub(crate) fn push(
        &mut self,
        rule: Rule,
        location: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.violations.push(Violation {
            rule,
            location: location.into(),
            message: message.into(),
        });
    }
}

impl fmt::Display for Report {
    /// The figures, then the violations (at most 25 per rule), then a
    /// verdict line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fig = &self.figures;
        writeln!(
            f,
            "sections: .text {} B, .rodata {} B, .data {} B, .bss {} B",
            fig.text, fig.rodata, fig.data, fig.bss
        )?;
        let total: usize = fig.relocations.values().sum();
        write!(f, "relocations in allocated sections: {total}")?;
        for (i, (kind, count)) in fig.relocations.iter().enumerate() {
            let sep = if i == 0 { " (" } else { ", " };
            write!(f, "{sep}{kind} {count}")?;
        }
        writeln!(f, "{}", if fig.relocations.is_empty() { "" } else { ")" })?;
        writeln!(f, "functions examined: {}", fig.functions)?;
        match &fig.largest_frame {
            Some(frame) => writeln!(
                f,
                "largest stack frame: {} B in `{}` ({} B pushed + {} B allocated{}; \
                 prologue only: excludes the return address, callees and later rsp changes)",
                frame.bytes(),
                frame.function,
                frame.pushed,
                frame.allocated,
                if frame.probed {
                    ", read from a stack-probe loop"
                } else {
                    ""
                }
            )?,
            None => writeln!(f, "largest stack frame: none (no function examined)")?,
        }
        writeln!(
            f,
            "undefined symbols ({}): {}",
            fig.undefined.len(),
            if fig.undefined.is_empty() {
                "none".to_owned()
            } else {
                fig.undefined.join(" ")
            }
        )?;

        let mut printed: BTreeMap<Rule, usize> = BTreeMap::new();
        for violation in &self.violations {
            let count = printed.entry(violation.rule).or_default();
            *count += 1;
            if *count <= PRINT_PER_RULE {
                writeln!(f, "VIOLATION {violation}")?;
            }
        }
        for (rule, count) in &printed {
            if *count > PRINT_PER_RULE {
                writeln!(
                    f,
                    "VIOLATION [{rule}] ... and {} more of this rule",
                    count - PRINT_PER_RULE
                )?;
            }
        }
        if self.passed() {
            writeln!(f, "PASS: no violations")
        } else {
            writeln!(f, "FAIL: {} violation(s)", self.violations.len())
        }
    }
}
