//! `make bench`: what the ptm driver costs per operation, counted in
//! instructions by valgrind's callgrind, and its object size -- the
//! shipped Rust module against illumos's C `ptm.c`, both loaded kernel
//! objects, in the same run, on the real-code world (`ptm-real`: illumos's
//! own STREAMS framework, stream heads, ptms_conf and pts beneath them).
//!
//! ```text
//! ptm-bench [all]        build the C object, run the workloads under callgrind, report
//! ptm-bench run DIR      (under valgrind) the workloads, one dump each
//! ptm-bench report DIR   the tables from DIR's dumps and manifest
//! ```
//!
//! # What is measured
//!
//! Collection is on only while a driver procedure runs (see [`window`]),
//! during each workload's measured loop; each loop ends in its own dump.
//! Three counts come from each dump (see [`cost`]):
//!
//! 1. **driver instructions**: the module's own code;
//! 2. **kernel calls**: the calls the module makes to kernel functions,
//!    by function;
//! 3. **inclusive instructions**: the driver plus the kernel code it runs
//!    -- illumos's own functions as compiled into the world, and the
//!    world's stand-ins for illumos's lock, condition-variable and kmem
//!    primitives counted at illumos's own instruction counts.
//!
//! # Variants
//!
//! * `target/kmod/ptm` (`$PTM_KMOD`): the shipped module, profile `kmod`;
//! * `ptm.c` (`$PTM_REFERENCE_C`) compiled against illumos's headers
//!   (`$ILLUMOS_SRC`) with illumos's module flags ([`ILLUMOS_MODULE_CFLAGS`]),
//!   loaded through `$PTM_C_KOBJ`.

mod callgrind;
mod cost;
mod report;
mod window;
mod workloads;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ptm_kload::LoadedModule;
use ptm_real::{C_KOBJ, REAL, RUST_KMOD};
use ptm_scenario::{Backend, Variant};
use ptm_test_support::{compile_illumos_module, env_path, repo_root};

use report::{exe_stamp, report};

const WARMUP: u32 = 3;

/// The flags illumos's build adds for every kernel module
/// (`usr/src/Makefile.master`, `usr/src/uts/Makefile.uts`), less those
/// Debian's gcc does not have: `-fno-clone-functions` (and `-msave-args`,
/// which illumos's build also passes) are patches of illumos's gcc.
pub const ILLUMOS_MODULE_CFLAGS: &[&str] = &[
    "-fno-inline-small-functions",
    "-fno-inline-functions-called-once",
    "-fno-ipa-cp",
    "-fno-ipa-icf",
    "-fno-reorder-functions",
    "-fno-reorder-blocks-and-partition",
    "-fno-aggressive-loop-optimizations",
    "--param=max-inline-insns-single=450",
    "-fno-shrink-wrap",
    "-mindirect-branch=thunk-extern",
    "-mindirect-branch-register",
    "-fno-asynchronous-unwind-tables",
];

/// illumos's flags that Debian's gcc lacks, so the C object goes without.
pub const ILLUMOS_FLAGS_NOT_IN_GCC: &[&str] = &["-fno-clone-functions", "-msave-args"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        None | Some("all") => all(),
        Some("run") => run(Path::new(args.get(2).expect("run DIR"))),
        Some("report") => {
            report(Path::new(args.get(2).expect("report DIR"))).map(|t| print!("{t}"))
        }
        Some(other) => Err(format!(
            "unknown command {other}; usage: ptm-bench [all|run DIR|report DIR]"
        )),
    };
    if let Err(e) = result {
        eprintln!("ptm-bench: {e}");
        std::process::exit(1);
    }
}

fn out_dir() -> PathBuf {
    std::env::var_os("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/bench"))
}

/// `usr/src` of the illumos sources the real-code world was built from.
fn illumos_usr_src() -> Result<PathBuf, String> {
    let root = env_path("ILLUMOS_SRC").ok_or("ILLUMOS_SRC is not set")?;
    root.join("usr/src")
        .canonicalize()
        .map_err(|e| format!("{}/usr/src: {e}", root.display()))
}

fn c_kobj_path(dir: &Path) -> PathBuf {
    dir.join("ptm-c-kobj.o")
}

/// Compiles `ptm.c` as illumos builds a kernel module.
fn build_c_kobj(dir: &Path) -> Result<PathBuf, String> {
    let src = env_path("PTM_REFERENCE_C").ok_or("PTM_REFERENCE_C is not set")?;
    let usr_src = illumos_usr_src()?;
    let out = c_kobj_path(dir);
    compile_illumos_module(&src, &usr_src, ILLUMOS_MODULE_CFLAGS, &out)
        .map_err(|e| format!("compiling the C kernel object: {e}"))?;
    Ok(out)
}

fn all() -> Result<(), String> {
    if !ptm_real::available() {
        return Err("the real-code world is not built: set ILLUMOS_SRC and rebuild".into());
    }
    let dir = out_dir();
    let cg = dir.join("callgrind");
    let _ = std::fs::remove_dir_all(&cg);
    std::fs::create_dir_all(&cg).map_err(|e| format!("{}: {e}", cg.display()))?;
    let ckobj = build_c_kobj(&dir)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--collect-atstart=no",
            "--dump-instr=yes",
            "--dump-line=no",
            "--demangle=no",
            "--quiet",
        ])
        .arg(format!(
            "--callgrind-out-file={}/callgrind.out.%p",
            cg.display()
        ))
        .arg(&exe)
        .arg("run")
        .arg(&dir)
        .env("PTM_C_KOBJ", &ckobj)
        .status()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !status.success() {
        return Err(format!("the measured run failed ({status})"));
    }
    let table = report(&dir)?;
    print!("{table}");
    Ok(())
}

// ---------------------------------------------------------------------
// The measured run
// ---------------------------------------------------------------------

/// Function symbols of a module file: (name, address as loaded, size).
fn module_functions(path: &Path, m: &LoadedModule) -> Result<Vec<(String, usize, u64)>, String> {
    use object::{Object, ObjectSymbol, SymbolKind};
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let obj = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut v = Vec::new();
    for s in obj.symbols() {
        if s.kind() != SymbolKind::Text || s.is_undefined() {
            continue;
        }
        let Ok(name) = s.name() else { continue };
        if let Some(addr) = m.symbol(name) {
            v.push((name.to_owned(), addr as usize, s.size()));
        }
    }
    v.sort_by_key(|e| e.1);
    Ok(v)
}

fn run(dir: &Path) -> Result<(), String> {
    let on_valgrind = callgrind::running_on_valgrind();
    if !on_valgrind {
        eprintln!("ptm-bench run: not under valgrind: checking the workloads only");
    }
    let kmod = ptm_real::kmod_path().0;
    let ckobj = env_path("PTM_C_KOBJ").ok_or("PTM_C_KOBJ is not set")?;
    let available = REAL.variants();
    let mut measured: Vec<(Variant, PathBuf)> = Vec::new();
    for (name, path) in [(C_KOBJ, ckobj), (RUST_KMOD, kmod)] {
        let v = available
            .iter()
            .find(|v| v.name == name)
            .copied()
            .ok_or_else(|| format!("the real-code world has no variant {name}"))?;
        measured.push((v, path));
    }

    let wls = workloads::all();
    let manifest = manifest(&measured, &wls)?;
    for (vi, (v, _)) in measured.iter().enumerate() {
        let m = ptm_real::loaded_module(*v).ok_or_else(|| format!("{}: not loaded", v.name))?;
        for (wi, wl) in wls.iter().enumerate() {
            let mut w = REAL.world(*v).map_err(|e| format!("{}: {e}", v.name))?;
            window::install(m)?;
            let pty = wl
                .nonblock
                .map(|nb| workloads::open_pty(&mut *w, workloads::flags(nb)));
            for _ in 0..WARMUP {
                (wl.op)(&mut *w, pty.as_ref());
            }
            window::measure(true);
            for _ in 0..wl.iters {
                (wl.op)(&mut *w, pty.as_ref());
            }
            window::measure(false);
            if on_valgrind {
                callgrind::dump_stats_at(&format!("v{vi}:w{wi}"));
            }
            w.finish()
                .map_err(|e| format!("{} / {}: {e}", v.name, wl.name))?;
        }
    }
    std::fs::create_dir_all(dir.join("callgrind")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("callgrind/manifest.tsv"), manifest).map_err(|e| e.to_string())?;
    Ok(())
}

/// The manifest of a run, for the report: this executable's stamp, each
/// variant's code ranges, functions and trampolines, and the workloads.
fn manifest(
    measured: &[(Variant, PathBuf)],
    wls: &[workloads::Workload],
) -> Result<String, String> {
    let mut manifest = String::new();
    // The report reads function addresses from its own symbols: it must be
    // this executable.
    writeln!(manifest, "exe\t{}", exe_stamp()?).unwrap();
    for (vi, (v, path)) in measured.iter().enumerate() {
        let m = ptm_real::loaded_module(*v).ok_or_else(|| format!("{}: not loaded", v.name))?;
        let (t, tr) = (m.text(), m.trampolines());
        writeln!(
            manifest,
            "variant\t{vi}\t{}\t{}\t{:#x}\t{:#x}\t{:#x}\t{:#x}",
            v.name,
            path.display(),
            t.addr,
            t.addr + t.size,
            tr.addr,
            tr.addr + tr.size
        )
        .unwrap();
        for (name, addr, size) in module_functions(path, m)? {
            writeln!(manifest, "sym\t{vi}\t{addr:#x}\t{size}\t{name}").unwrap();
        }
        for imp in m.imports() {
            if imp.binding() == ptm_kload::Binding::Trampoline {
                writeln!(
                    manifest,
                    "imp\t{vi}\t{:#x}\t{}",
                    imp.address() as usize,
                    imp.name()
                )
                .unwrap();
            }
        }
    }
    for (wi, wl) in wls.iter().enumerate() {
        writeln!(
            manifest,
            "workload\t{wi}\t{}\t{}\t{}\t{}",
            wl.iters, wl.driver_target, wl.name, wl.unit
        )
        .unwrap();
    }
    Ok(manifest)
}
