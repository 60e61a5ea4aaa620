//! amd64 relocation types: their names, and which of them a module may use.
//!
//! krtld's relocation table (`usr/src/uts/intel/amd64/krtld/doreloc.c`) gives
//! every type a field size and a set of flags, and `do_relocate` computes
//! `S + A`, subtracting `P` only for the PC-relative types, and **adds** the
//! result to what the field already holds.  It has no GOT and no PLT.  The
//! rules accept exactly the four types a kernel-code-model object should
//! contain (and `R_X86_64_NONE`, which krtld skips) and refuse every other
//! one with a reason that says what krtld would have done with it.

use object::elf;

/// How a relocation is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apply {
    /// `R_X86_64_NONE`: krtld skips it.
    Skip,
    /// `R_X86_64_64`: `S + A` added into 8 bytes.
    Abs64,
    /// `R_X86_64_PC32`: `S + A - P` into 4 bytes, checked to sign-extend.
    Pc32,
    /// `R_X86_64_PLT32`: `S + A - P` into 4 bytes (krtld has no PLT, so
    /// `L = S`).  krtld itself does not range-check this type; the userland
    /// loader does.
    Plt32,
    /// `R_X86_64_32S`: `S + A` into 4 bytes, checked to sign-extend.
    Abs32S,
    /// Anything else: refused, with the reason.
    Refuse(&'static str),
}

impl Apply {
    /// Width in bytes of the relocated field.
    pub fn width(self) -> u64 {
        match self {
            Apply::Abs64 => 8,
            Apply::Pc32 | Apply::Plt32 | Apply::Abs32S => 4,
            Apply::Skip | Apply::Refuse(_) => 0,
        }
    }

    /// Whether the field is 32 bits wide, i.e. the symbol must lie within
    /// reach of a sign-extended 32-bit value (absolute or PC-relative).
    pub fn is_32bit(self) -> bool {
        self.width() == 4
    }

    /// Whether `P` (the field's address) is subtracted.
    pub fn is_pc_relative(self) -> bool {
        matches!(self, Apply::Pc32 | Apply::Plt32)
    }
}

const GOT: &str = "krtld has no GOT: for the GOTPCREL family its table has no PC-relative \
     flag, so it would write S+A (not G+GOT+A-P) into a RIP-relative displacement and the \
     module would load and then jump or read through garbage; build with PLT calls \
     (plt-by-default / -Z plt=yes) or relax these relocations before shipping";
const ABS32: &str = "krtld requires the value of R_X86_64_32 to zero-extend, which no kernel \
     address (top 2 GiB) does, so the load would fail on a real kernel (it would only \
     happen to fit here, in low memory); use the kernel code model (R_X86_64_32S)";
const TLS: &str = "krtld refuses TLS relocations (\"invalid relocation type\"): the kernel \
     has no thread-local storage for modules";
const NOTSUP: &str = "krtld's relocation table marks this type unsupported (field size 0), \
     so the load fails with \"offset size not supported\"";
const UNKNOWN: &str = "unknown amd64 relocation type: krtld refuses types beyond its table";
const OTHER: &str = "outside the set a kernel-code-model module needs (64, PC32, PLT32, 32S); \
     krtld would apply it with plain S+A[-P] arithmetic, which for GOT-, size- and \
     base-relative types is silently wrong";

/// Classifies a relocation type found in an `SHF_ALLOC` section.
pub fn classify(r_type: u32) -> Apply {
    match elf::RelocationType(r_type) {
        elf::R_X86_64_NONE => Apply::Skip,
        elf::R_X86_64_64 => Apply::Abs64,
        elf::R_X86_64_PC32 => Apply::Pc32,
        elf::R_X86_64_PLT32 => Apply::Plt32,
        elf::R_X86_64_32S => Apply::Abs32S,
        elf::R_X86_64_GOTPCREL | elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX => {
            Apply::Refuse(GOT)
        }
        elf::R_X86_64_32 => Apply::Refuse(ABS32),
        elf::R_X86_64_DTPMOD64
        | elf::R_X86_64_DTPOFF64
        | elf::R_X86_64_TPOFF64
        | elf::R_X86_64_TLSGD
        | elf::R_X86_64_TLSLD
        | elf::R_X86_64_DTPOFF32
        | elf::R_X86_64_GOTTPOFF
        | elf::R_X86_64_TPOFF32
        | elf::R_X86_64_GOTPC32_TLSDESC
        | elf::R_X86_64_TLSDESC_CALL
        | elf::R_X86_64_TLSDESC => Apply::Refuse(TLS),
        elf::R_X86_64_GOT32
        | elf::R_X86_64_COPY
        | elf::R_X86_64_JUMP_SLOT
        | elf::R_X86_64_GOT64
        | elf::R_X86_64_GOTPCREL64
        | elf::R_X86_64_GOTPC64
        | elf::R_X86_64_GOTPLT64
        | elf::R_X86_64_PLTOFF64
        | elf::R_X86_64_IRELATIVE
        | elf::R_X86_64_RELATIVE64
        | elf::RelocationType(39)
        | elf::RelocationType(40) => Apply::Refuse(NOTSUP),
        t if t.0 > elf::R_X86_64_REX_GOTPCRELX.0 => Apply::Refuse(UNKNOWN),
        _ => Apply::Refuse(OTHER),
    }
}

/// The psABI name of an amd64 relocation type.
pub fn type_name(r_type: u32) -> &'static str {
    match elf::RelocationType(r_type) {
        elf::R_X86_64_NONE => "R_X86_64_NONE",
        elf::R_X86_64_64 => "R_X86_64_64",
        elf::R_X86_64_PC32 => "R_X86_64_PC32",
        elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
        elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
        elf::R_X86_64_COPY => "R_X86_64_COPY",
        elf::R_X86_64_GLOB_DAT => "R_X86_64_GLOB_DAT",
        elf::R_X86_64_JUMP_SLOT => "R_X86_64_JUMP_SLOT",
        elf::R_X86_64_RELATIVE => "R_X86_64_RELATIVE",
        elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        elf::R_X86_64_32 => "R_X86_64_32",
        elf::R_X86_64_32S => "R_X86_64_32S",
        elf::R_X86_64_16 => "R_X86_64_16",
        elf::R_X86_64_PC16 => "R_X86_64_PC16",
        elf::R_X86_64_8 => "R_X86_64_8",
        elf::R_X86_64_PC8 => "R_X86_64_PC8",
        elf::R_X86_64_DTPMOD64 => "R_X86_64_DTPMOD64",
        elf::R_X86_64_DTPOFF64 => "R_X86_64_DTPOFF64",
        elf::R_X86_64_TPOFF64 => "R_X86_64_TPOFF64",
        elf::R_X86_64_TLSGD => "R_X86_64_TLSGD",
        elf::R_X86_64_TLSLD => "R_X86_64_TLSLD",
        elf::R_X86_64_DTPOFF32 => "R_X86_64_DTPOFF32",
        elf::R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
        elf::R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
        elf::R_X86_64_PC64 => "R_X86_64_PC64",
        elf::R_X86_64_GOTOFF64 => "R_X86_64_GOTOFF64",
        elf::R_X86_64_GOTPC32 => "R_X86_64_GOTPC32",
        elf::R_X86_64_GOT64 => "R_X86_64_GOT64",
        elf::R_X86_64_GOTPCREL64 => "R_X86_64_GOTPCREL64",
        elf::R_X86_64_GOTPC64 => "R_X86_64_GOTPC64",
        elf::R_X86_64_GOTPLT64 => "R_X86_64_GOTPLT64",
        elf::R_X86_64_PLTOFF64 => "R_X86_64_PLTOFF64",
        elf::R_X86_64_SIZE32 => "R_X86_64_SIZE32",
        elf::R_X86_64_SIZE64 => "R_X86_64_SIZE64",
        elf::R_X86_64_GOTPC32_TLSDESC => "R_X86_64_GOTPC32_TLSDESC",
        elf::R_X86_64_TLSDESC_CALL => "R_X86_64_TLSDESC_CALL",
        elf::R_X86_64_TLSDESC => "R_X86_64_TLSDESC",
        elf::R_X86_64_IRELATIVE => "R_X86_64_IRELATIVE",
        elf::R_X86_64_RELATIVE64 => "R_X86_64_RELATIVE64",
        elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        _ => "R_X86_64_<unknown>",
    }
}

/// Whether `value` (a 64-bit result of the relocation arithmetic) survives
/// truncation to 32 bits and sign extension back, i.e. the upper 33 bits
/// are all zero or all one -- krtld's check for 32S and PC32.
pub fn fits_sign_extended_32(value: u64) -> bool {
    const SIGN_EXTENSION_BITS: u64 = 0xffff_ffff_8000_0000;
    let top = value & SIGN_EXTENSION_BITS;
    top == 0 || top == SIGN_EXTENSION_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_kernel_types_are_applied_and_nothing_else_is() {
        assert_eq!(classify(elf::R_X86_64_64.0), Apply::Abs64);
        assert_eq!(classify(elf::R_X86_64_PC32.0), Apply::Pc32);
        assert_eq!(classify(elf::R_X86_64_PLT32.0), Apply::Plt32);
        assert_eq!(classify(elf::R_X86_64_32S.0), Apply::Abs32S);
        assert_eq!(classify(elf::R_X86_64_NONE.0), Apply::Skip);
        for t in 0..64u32 {
            let applied = matches!(
                classify(t),
                Apply::Abs64 | Apply::Pc32 | Apply::Plt32 | Apply::Abs32S | Apply::Skip
            );
            let expected = matches!(
                elf::RelocationType(t),
                elf::R_X86_64_NONE
                    | elf::R_X86_64_64
                    | elf::R_X86_64_PC32
                    | elf::R_X86_64_PLT32
                    | elf::R_X86_64_32S
            );
            assert_eq!(applied, expected, "type {t} ({})", type_name(t));
        }
    }

    #[test]
    fn got_types_are_refused_with_a_reason_that_mentions_the_got() {
        for t in [
            elf::R_X86_64_GOTPCREL,
            elf::R_X86_64_GOTPCRELX,
            elf::R_X86_64_REX_GOTPCRELX,
        ] {
            match classify(t.0) {
                Apply::Refuse(why) => assert!(why.contains("no GOT"), "{why}"),
                other => panic!("{} classified as {other:?}", type_name(t.0)),
            }
        }
    }

    #[test]
    fn sign_extension_check_matches_the_i32_range() {
        assert!(fits_sign_extended_32(0));
        assert!(fits_sign_extended_32(0x7fff_ffff));
        assert!(!fits_sign_extended_32(0x8000_0000));
        assert!(fits_sign_extended_32((-1i64) as u64));
        assert!(fits_sign_extended_32(i64::from(i32::MIN) as u64));
        assert!(!fits_sign_extended_32((i64::from(i32::MIN) - 1) as u64));
        assert!(!fits_sign_extended_32(0x1_0000_0000));
    }
}
