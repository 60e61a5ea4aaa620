//! Builds the real-code world's kernel: illumos's own sources, unmodified,
//! from the bundle named by `ILLUMOS_SRC`, plus the project's kernel layer
//! in `csrc/`, sealed into one object.
//!
//! Steps (each explained where it is done):
//! 1. compile every illumos file with illumos's kernel defines, its own
//!    headers only (`-nostdinc`) and `-DDEBUG`, so every ASSERT is live;
//!    stream.c's `allocb` is made weak (its code keeps the name
//!    `kp_illumos_allocb`), so that every caller -- stream.c's own
//!    `putnextctl`, `copyb`, ... included -- reaches the world's counting
//!    `allocb` (csrc/hooks.c); the functions each object of the framework
//!    defines are listed (`framework_functions.rs`), so that the world can
//!    tell the stream head's own allocations from the drivers';
//! 2. give each loadable module's `_init`/`_fini`/`_info` a name of its own
//!    (`pts__init`, ...): every module defines them, and so does glibc;
//! 3. compile `csrc/*.c` (the part of the kernel layer that needs illumos's
//!    structure layouts) the same way;
//! 4. `ld -r` them all into `kernel.o`, give each DTrace probe site a no-op
//!    body, and refuse the build if any symbol left undefined would bind to
//!    the C library (the kernel's `sprintf` returns `char *`, its `kill` is
//!    not libc's): what the kernel objects import must come from the
//!    project's Rust kernel layer;
//! 5. make local every definition whose name libc also defines (the
//!    kernel's `strlen`, `printf`, ...), so the process's libc and the kernel
//!    never see each other's;
//! 6. generate the kernel symbol table (`ksyms`) that the userland krtld
//!    binds loaded modules against;
//! 7. compile ptm.c once more as a kernel object (kernel code model) for the
//!    "C ptm.c kernel object (loaded)" variant.
//!
//! Without `ILLUMOS_SRC` nothing is built and the crate's tests print one
//! `SKIPPED:` line each.

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ptm_test_support::{
    ILLUMOS_INCLUDE_DIRS, ILLUMOS_MODULE_DEFS, c_compiler, compile_illumos_module, ld_r, run,
};

use object::{Object, ObjectSymbol};

/// The illumos sources the world runs, relative to `usr/src`: the
/// framework and ptms_conf (genunix in a real kernel) ...
const GENUNIX: &[&str] = &[
    "uts/common/io/stream.c",
    "uts/common/io/strsun.c",
    "uts/common/os/putnext.c",
    "uts/common/os/strsubr.c",
    "uts/common/os/streamio.c",
    "uts/common/os/ddi.c",
    "uts/common/os/modconf.c",
    "uts/common/io/ptms_conf.c",
    "common/unicode/u8_textprep.c",
];

/// ... and the loadable modules, each with the name modctl knows it by.
/// `uwidth.c` is part of ldterm's module.
const MODULES: &[(&str, &[&str])] = &[
    ("pts", &["uts/common/io/pts.c"]),
    ("ptm", &["uts/common/io/ptm.c"]),
    ("ptem", &["uts/common/io/ptem.c"]),
    (
        "ldterm",
        &["uts/common/io/ldterm.c", "uts/common/io/uwidth.c"],
    ),
    ("ttcompat", &["uts/common/io/ttcompat.c"]),
    ("pckt", &["uts/common/io/pckt.c"]),
];

/// The project's kernel layer written in C (it needs illumos's layouts).
const LAYER: &[&str] = &[
    "csrc/proc.c",
    "csrc/libkern.c",
    "csrc/devices.c",
    "csrc/vfs.c",
    "csrc/hooks.c",
    "csrc/absent.c",
    "csrc/session.c",
];

/// illumos's kernel compilation environment (amd64, `_KERNEL`), as the
/// bundle's README gives it, with DEBUG on.
fn kernel_build(src: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.warnings(false)
        .extra_warnings(false)
        .cargo_metadata(false)
        .flag("-m64")
        .flag("-std=gnu99")
        .flag("-nostdinc")
        .flag("-ffreestanding")
        .flag("-fno-strict-aliasing")
        .flag("-fno-omit-frame-pointer")
        .flag("-Wno-unused-result")
        .opt_level(1)
        .debug(true)
        .define("_KERNEL", None)
        .define("DEBUG", None);
    for def in ILLUMOS_MODULE_DEFS {
        b.flag(def);
    }
    for dir in ILLUMOS_INCLUDE_DIRS {
        b.include(src.join(dir));
    }
    b
}

/// Global symbols of an object: (defined, undefined).
fn symbols(path: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = object::File::parse(&*data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut def, mut undef) = (BTreeSet::new(), BTreeSet::new());
    for s in file.symbols() {
        if !s.is_global() {
            continue;
        }
        let Ok(name) = s.name() else { continue };
        if s.is_undefined() {
            undef.insert(name.to_owned());
        } else {
            def.insert(name.to_owned());
        }
    }
    (def, undef)
}

/// The functions an object defines, local ones included.
fn functions(path: &Path) -> Vec<String> {
    let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = object::File::parse(&*data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Vec<String> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.is_definition())
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every name the C library (and the compiler's runtime) defines: the
/// names the sealed kernel must neither import nor export.
fn libc_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for lib in ["libc.so.6", "libm.so.6", "libgcc_s.so.1"] {
        let out = Command::new(c_compiler())
            .arg(format!("-print-file-name={lib}"))
            .output()
            .expect("cannot ask the C compiler where libc is");
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let Ok(data) = fs::read(&path) else {
            panic!("cannot read {} (for the libc symbol check)", path.display())
        };
        let file = object::File::parse(&*data).expect("libc is not ELF");
        for s in file.dynamic_symbols() {
            if !s.is_undefined()
                && let Ok(n) = s.name()
            {
                names.insert(n.to_owned());
            }
        }
    }
    names
}

fn main() {
    println!("cargo::rerun-if-env-changed=ILLUMOS_SRC");
    println!("cargo::rustc-check-cfg=cfg(has_illumos)");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    for f in LAYER {
        println!("cargo::rerun-if-changed={f}");
    }
    println!("cargo::rerun-if-changed=csrc/kp.h");
    println!("cargo::rerun-if-changed=csrc/host.c");
    let Some(src) = illumos_usr_src(&manifest) else {
        return;
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let objdir = out.join("kobj");
    fs::create_dir_all(&objdir).unwrap();

    // 1-3. Compile.
    let mut objects = compile_framework(&src, &objdir);
    write_framework_functions(&objects, &out);
    objects.extend(compile_modules(&src, &objdir));
    objects.extend(compile_layer(&src, &manifest));
    // 4-5. Seal.
    let kernel_o = seal(&out, &objdir, objects);
    // 6. The kernel symbol table, archived with the kernel.
    let ksyms_o = compile_ksyms(&out, &manifest, &kernel_o);
    let lib = out.join("libptm_real_kernel.a");
    let _ = fs::remove_file(&lib);
    run(Command::new("ar")
        .arg("crs")
        .arg(&lib)
        .arg(&kernel_o)
        .args(&ksyms_o));
    println!("cargo::rustc-link-search=native={}", out.display());
    println!("cargo::rustc-link-lib=static=ptm_real_kernel");
    println!("cargo::rustc-cfg=has_illumos");

    // 7. ptm.c as an illumos kernel object, for the loaded C variant.
    let kobj = out.join("ptm-c-real.kobj");
    if let Err(e) = compile_illumos_module(&src.join("uts/common/io/ptm.c"), &src, &[], &kobj) {
        panic!("cannot compile ptm.c as a kernel object: {e}");
    }
    println!("cargo::rustc-env=PTM_REAL_C_KOBJ={}", kobj.display());
}

/// `usr/src` of the illumos sources `ILLUMOS_SRC` names (a relative path is
/// taken from the repository root), or `None` when it is not set.
fn illumos_usr_src(manifest: &Path) -> Option<PathBuf> {
    let root = env::var_os("ILLUMOS_SRC").filter(|v| !v.is_empty())?;
    let mut root = PathBuf::from(root);
    if root.is_relative() {
        root = manifest.join("../..").join(root);
    }
    let src = root.join("usr/src");
    if !src.join("uts/common/os/strsubr.c").exists() {
        panic!(
            "ILLUMOS_SRC={} does not hold illumos sources (no usr/src/uts/common/os/strsubr.c)",
            root.display()
        );
    }
    println!("cargo::rerun-if-changed={}", src.display());
    Some(src)
}

/// Step 1: the framework ([`GENUNIX`]). Two of its functions become weak
/// so that the world's (csrc/hooks.c) take every call, the framework's own
/// included, with illumos's code still reachable under a `kp_illumos_`
/// name: stream.c's allocb (counted, failed on demand) and strsubr.c's
/// qenable_locked (held while services run late).
fn compile_framework(src: &Path, objdir: &Path) -> Vec<PathBuf> {
    let mut objects: Vec<PathBuf> = Vec::new();
    for o in kernel_build(src)
        .files(GENUNIX.iter().map(|f| src.join(f)))
        .compile_intermediates()
    {
        let name = o.file_name().map(|n| n.to_string_lossy().into_owned());
        let hooked = WEAKENED
            .iter()
            .find(|(suffix, _, _)| name.as_deref().is_some_and(|n| n.ends_with(suffix)));
        match hooked {
            Some((_, symbol, renamed)) => {
                let renamed = objdir.join(renamed);
                run(Command::new("objcopy")
                    .arg(format!("--weaken-symbol={symbol}"))
                    .arg(format!(
                        "--add-symbol=kp_illumos_{symbol}=.text.{symbol}:0,global,function"
                    ))
                    .arg(&o)
                    .arg(&renamed));
                objects.push(renamed);
            }
            None => objects.push(o),
        }
    }
    objects
}

/// The framework functions the world stands in for: the object's name
/// suffix, the function, and the name of the object with it weakened.
const WEAKENED: &[(&str, &str, &str)] = &[
    ("-stream.o", "allocb", "stream-allocb.o"),
    ("-strsubr.o", "qenable_locked", "strsubr-qenable.o"),
];

/// Which functions stream.c, streamio.c and strsubr.c define (static ones
/// included), for telling who made an allocb call:
/// `$OUT_DIR/framework_functions.rs`.
fn write_framework_functions(objects: &[PathBuf], out: &Path) {
    let mut lists = String::from("// Generated by build.rs.\n");
    for (konst, suffix) in [
        ("STREAM_C", "-stream.o"),
        ("STREAMIO_C", "-streamio.o"),
        ("STRSUBR_C", "-strsubr.o"),
    ] {
        let obj = objects
            .iter()
            .find(|o| {
                let name = o.to_string_lossy();
                name.ends_with(suffix)
                    || WEAKENED
                        .iter()
                        .any(|(s, _, renamed)| *s == suffix && name.ends_with(renamed))
            })
            .unwrap_or_else(|| panic!("no object for {suffix}"));
        let names = functions(obj);
        writeln!(lists, "pub const {konst}: &[&str] = &{names:?};").unwrap();
    }
    fs::write(out.join("framework_functions.rs"), lists).unwrap();
}

/// Step 2: the loadable modules ([`MODULES`]), each module's entry points
/// renamed after it.
fn compile_modules(src: &Path, objdir: &Path) -> Vec<PathBuf> {
    let mut objects = Vec::new();
    for (name, files) in MODULES {
        let objs = kernel_build(src)
            .files(files.iter().map(|f| src.join(f)))
            .compile_intermediates();
        for o in objs {
            let renamed = objdir.join(format!(
                "{name}-{}",
                o.file_name().unwrap().to_string_lossy()
            ));
            let mut cmd = Command::new("objcopy");
            for e in ["_init", "_fini", "_info"] {
                cmd.arg(format!("--redefine-sym={e}={name}_{e}"));
            }
            run(cmd.arg(&o).arg(&renamed));
            objects.push(renamed);
        }
    }
    objects
}

/// Step 3: the project's own C ([`LAYER`]), held to -Wall (less what illumos's
/// headers trip: pragmas and printf-like attributes gcc does not know).
fn compile_layer(src: &Path, manifest: &Path) -> Vec<PathBuf> {
    kernel_build(src)
        .include(manifest.join("csrc"))
        .warnings(true)
        .extra_warnings(false)
        .flag("-Werror")
        .flag("-Wno-unknown-pragmas")
        .flag("-Wno-format")
        .files(LAYER.iter().map(|f| manifest.join(f)))
        .compile_intermediates()
}

/// Step 4: seals `objects` into one object, DTrace probe sites as no-ops, with
/// no import from libc; step 5: hides the kernel's libc-named definitions from
/// the process. Returns `kernel.o`.
fn seal(out: &Path, objdir: &Path, mut objects: Vec<PathBuf>) -> PathBuf {
    let first = objdir.join("kernel-unsealed.o");
    ld_r(&[], &objects, &first);
    let (_, undef) = symbols(&first);
    let mut probe_c =
        String::from("/* Generated by build.rs: DTrace probe sites with no consumer. */\n");
    for p in undef.iter().filter(|s| s.starts_with("__dtrace_probe_")) {
        writeln!(probe_c, "void {p}(void) {{}}").unwrap();
    }
    let probe_src = out.join("probes.c");
    fs::write(&probe_src, probe_c).unwrap();
    objects.extend(
        cc::Build::new()
            .cargo_metadata(false)
            .file(&probe_src)
            .compile_intermediates(),
    );
    let sealed = objdir.join("kernel-sealed.o");
    ld_r(&[], &objects, &sealed);
    let (defined, undef) = symbols(&sealed);
    let libc = libc_names();
    let from_libc: Vec<&String> = undef.iter().filter(|s| libc.contains(*s)).collect();
    if !from_libc.is_empty() {
        panic!(
            "the kernel objects import {} symbol(s) that the C library defines; the kernel \
             layer must provide them (csrc/ or src/kernel/): {from_libc:?}",
            from_libc.len()
        );
    }

    let kernel_o = objdir.join("kernel.o");
    let mut cmd = Command::new("objcopy");
    for s in defined.iter().filter(|s| libc.contains(*s)) {
        cmd.arg(format!("--localize-symbol={s}"));
    }
    run(cmd.arg(&sealed).arg(&kernel_o));
    kernel_o
}

/// Step 6: the kernel symbol table (`kp_ksyms`) of `kernel_o`'s global
/// symbols, compiled with the host side of the layer (csrc/host.c).
fn compile_ksyms(out: &Path, manifest: &Path, kernel_o: &Path) -> Vec<PathBuf> {
    let (exported, _) = symbols(kernel_o);
    let mut ksyms = String::from(
        "/* Generated by build.rs: the sealed kernel's global symbols. */\n\
         struct kp_ksym { const char *name; const void *addr; };\n",
    );
    for s in &exported {
        writeln!(ksyms, "extern char {s}[];").unwrap();
    }
    ksyms.push_str("const struct kp_ksym kp_ksyms[] = {\n");
    for s in &exported {
        writeln!(ksyms, "\t{{ \"{s}\", {s} }},").unwrap();
    }
    ksyms.push_str("};\n");
    writeln!(ksyms, "const unsigned long kp_nksyms = {};", exported.len()).unwrap();
    let ksyms_src = out.join("ksyms.c");
    fs::write(&ksyms_src, ksyms).unwrap();
    cc::Build::new()
        .cargo_metadata(false)
        .flag("-w")
        .file(&ksyms_src)
        .file(manifest.join("csrc/host.c"))
        .compile_intermediates()
}
