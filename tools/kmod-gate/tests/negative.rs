//! Proves that each gate rule can fail.
//!
//! Every test builds a small object with gcc at test time: a C "module"
//! (`_init`/`_fini`/`_info` calling `mod_install` and friends) compiled with
//! the illumos kernel flags, changed in exactly one way. The unchanged
//! module passes the gate ([`control_module_passes`]), so each failure is
//! caused by the one change the test makes.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmod_gate::{Allowlist, Report, Rule, check};

/// gcc flags of an illumos amd64 kernel compile (see usr/src/Makefile.master
/// and cw): kernel code model, no red zone, no MMX/SSE, freestanding, no
/// PIC, frame pointers. Sibling calls are kept as calls so that gcc keeps
/// the frame-pointer prologue in functions that end in a call. (gcc still
/// gives a leaf function that needs no stack no frame at all, so the
/// functions the tests add all make a call.)
const KERNEL_FLAGS: &[&str] = &[
    "-O2",
    "-m64",
    "-mcmodel=kernel",
    "-mno-red-zone",
    "-mno-mmx",
    "-mno-sse",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-pic",
    "-fno-pie",
    "-fno-omit-frame-pointer",
    "-fno-optimize-sibling-calls",
    "-fno-asynchronous-unwind-tables",
    "-fno-stack-protector",
    "-fcf-protection=none",
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

fn repo_root() -> PathBuf {
    // tools/kmod-gate -> the repository root.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .expect("repository root")
        .to_path_buf()
}

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

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "gcc".to_owned())
}

/// Compiles `source` to an object; `flags` replace the kernel flags named
/// in `drop` and come after the rest.
fn compile(test: &str, source: &str, drop: &[&str], flags: &[&str]) -> PathBuf {
    let dir = scratch(test);
    let c = dir.join("module.c");
    let o = dir.join("module.o");
    std::fs::write(&c, source).expect("write C source");
    let mut args: Vec<&str> = KERNEL_FLAGS
        .iter()
        .copied()
        .filter(|f| !drop.contains(f))
        .collect();
    args.extend_from_slice(flags);
    let (c, o) = (c.to_str().unwrap(), o.to_str().unwrap());
    args.extend_from_slice(&["-c", c, "-o", o]);
    run(&compiler(), &args);
    PathBuf::from(o)
}

fn gate(object: &Path) -> Report {
    let bytes = std::fs::read(object).expect("read object");
    check(&bytes, &allowlist())
}

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
    assert_reports(&report, Rule::Relocation, "GOTPCREL");
    assert_reports(&report, Rule::Relocation, "mod_install");
    // PIC code also references the GOT itself, which is no kernel symbol.
    assert_reports(&report, Rule::UndefinedSymbol, "_GLOBAL_OFFSET_TABLE_");
    assert_eq!(
        rules(&report),
        [Rule::Relocation, Rule::UndefinedSymbol],
        "{report}"
    );
}

#[test]
fn nonzero_section_address_is_rejected() {
    let object = compile("address", MODULE, &[], &[]);
    let linked = object.with_file_name("linked.o");
    run(
        "ld",
        &[
            "-r",
            "-Ttext=0x1000",
            object.to_str().unwrap(),
            "-o",
            linked.to_str().unwrap(),
        ],
    );
    let report = gate(&linked);
    assert_reports(&report, Rule::SectionAddress, ".text");
    assert_reports(&report, Rule::SectionAddress, "0x1000");
    assert_only(&report, Rule::SectionAddress);
}

#[test]
fn rel_section_is_rejected() {
    // A 32-bit x86 object carries SHT_REL relocations (and the wrong class
    // and machine, which the gate also reports).
    let object = compile("rel", MODULE, &["-m64", "-mcmodel=kernel"], &["-m32"]);
    let report = gate(&object);
    assert_reports(&report, Rule::RelSection, ".rel.text");
    assert_reports(&report, Rule::ElfHeader, "ELFCLASS32");
    assert_reports(&report, Rule::ElfHeader, "EM_X86_64");
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
    run(
        "ld",
        &[
            "-r",
            "--gc-sections",
            "-u",
            "_init",
            "-u",
            "_fini",
            "-u",
            "_info",
            object.to_str().unwrap(),
            "-o",
            linked.to_str().unwrap(),
        ],
    );
    let report = gate(&linked);
    assert_reports(&report, Rule::LocalUndefined, "only_dead_code_calls_me");
    assert_only(&report, Rule::LocalUndefined);
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
    assert_reports(&report, Rule::Symtab, "SHT_SYMTAB");
    assert_only(&report, Rule::Symtab);
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
        &compiler(),
        &[
            "-shared",
            "-nostdlib",
            object.to_str().unwrap(),
            "-o",
            shared.to_str().unwrap(),
        ],
    );
    let report = gate(&shared);
    assert_reports(&report, Rule::ElfHeader, "ET_DYN");
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
    assert_only(&report, Rule::Panic);
}

#[test]
fn thread_local_storage_is_rejected() {
    let source =
        format!("{MODULE}\n__thread int counter;\nint bump(void) {{ return ++counter; }}\n");
    let report = gate(&compile("tls", &source, &[], &[]));
    assert_reports(&report, Rule::Tls, "counter");
    assert_reports(&report, Rule::Relocation, "TPOFF");
}

#[test]
fn garbage_is_rejected() {
    let report = check(b"this is not an ELF object at all", &allowlist());
    assert_only(&report, Rule::Malformed);
}
