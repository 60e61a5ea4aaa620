//! `make bench`: the ptm driver's own cost per operation, in instructions
//! counted by valgrind's callgrind, and its object size, the Rust driver
//! against the unmodified C `ptm.c` in the same run.
//!
//! ```text
//! ptm-bench [all]        run the workloads under callgrind, report
//! ptm-bench run DIR      (under valgrind) the workloads, one dump each
//! ptm-bench report DIR   the table from DIR's dumps and manifest
//! ```
//!
//! # Variants
//!
//! * host builds in the simulator (`ptm-sim`): the C `ptm.c` (compiled in
//!   when `PTM_REFERENCE_C` names it) and the Rust `ptm` crate, both at the
//!   release profile's optimisation level;
//! * loaded kernel objects, through the userland krtld (`ptm-kload`):
//!   `target/kmod/ptm` (the shipped module: profile `kmod`, opt-level "s",
//!   LTO) and `ptm.c` compiled with the illumos kernel flags (gcc -O2).
//!
//! # Attribution
//!
//! Collection is on only around each workload's measured loop; each loop
//! ends in its own dump. Only the driver's own instructions count (the
//! simulated kernel -- allocb, putq, mutex_enter... -- does not):
//!
//! * C host build: functions whose file (`fl=`) is `ptm.c`;
//! * Rust host build: functions whose (mangled) symbol the `ptm` rlib
//!   defines, except where the file is `ptm.c` (the Rust crate exports the
//!   same `ptmopen`, `ptmwput`... names as C's static functions);
//! * loaded modules: code without symbols, named by address by callgrind,
//!   inside the module's text region as the loader reports it (the
//!   trampolines to the simulator are not counted).

mod callgrind;
mod workloads;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ptm_kload::{LoadOptions, LoadedModule};
use ptm_sim::{Variant, World};

const WARMUP: u32 = 3;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        None | Some("all") => all(),
        Some("run") => run(Path::new(args.get(2).expect("run DIR"))),
        Some("report") => report(Path::new(args.get(2).expect("report DIR"))).map(|_| ()),
        Some(other) => Err(format!(
            "unknown command {other}; usage: ptm-bench [all|run DIR|report DIR]"
        )),
    };
    if let Err(e) = result {
        eprintln!("ptm-bench: {e}");
        std::process::exit(1);
    }
}

/// Paths of the kernel objects: the Rust module and the C one.
fn kmod_path() -> PathBuf {
    std::env::var_os("PTM_KMOD")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/kmod/ptm"))
}

fn out_dir() -> PathBuf {
    std::env::var_os("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/bench"))
}

fn reference_c() -> Option<PathBuf> {
    let p = std::env::var_os("PTM_REFERENCE_C").filter(|v| !v.is_empty())?;
    let p = PathBuf::from(p);
    Some(if p.is_relative() {
        repo_root().join(p)
    } else {
        p
    })
}

fn c_kobj_path(dir: &Path) -> PathBuf {
    dir.join("ptm-c-kobj.o")
}

fn all() -> Result<(), String> {
    let dir = out_dir();
    let cg = dir.join("callgrind");
    let _ = std::fs::remove_dir_all(&cg);
    std::fs::create_dir_all(&cg).map_err(|e| format!("{}: {e}", cg.display()))?;
    let _ = std::fs::remove_file(c_kobj_path(&dir));
    if let Some(c) = reference_c() {
        let include = repo_root().join("include");
        ptm_kload::build_c_reference_kobj(&c, &include, &c_kobj_path(&dir))
            .map_err(|e| format!("compiling the C kernel object: {e}"))?;
    } else {
        println!("SKIPPED: the C columns: PTM_REFERENCE_C is not set");
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--dump-instr=no",
            "--collect-atstart=no",
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

struct Measured {
    name: String,
    kind: &'static str,
    variant: Variant,
    /// Text region of a loaded module.
    text: Option<(usize, usize)>,
    _module: Option<LoadedModule>,
}

fn load_module(path: &Path, name: &'static str) -> Result<Measured, String> {
    let syms: std::collections::HashMap<&str, *const ()> = ptm_sim::kernel_symbols()
        .into_iter()
        .map(|(n, a)| (n, a.cast::<()>()))
        .collect();
    let resolve = |n: &str| syms.get(n).copied();
    let opts = LoadOptions::new(&resolve).data("mod_driverops", size_of::<ptm_sim::sys::mod_ops>());
    // SAFETY: mod_driverops is the simulator's static, readable for its
    // size; the module's code only runs inside worlds of the simulator.
    let module = unsafe { ptm_kload::load_file(path, &opts) }
        .map_err(|e| format!("loading {}: {e}", path.display()))?;
    if let Some(imp) = module.import("mod_driverops") {
        ptm_sim::register_driverops_alias(imp.address().cast());
    }
    let (Some(init), Some(fini), Some(info)) =
        (module.init_fn(), module.fini_fn(), module.info_fn())
    else {
        return Err(format!("{}: no _init/_fini/_info", path.display()));
    };
    // SAFETY: the same C signatures (modinfo* and void* are both pointers).
    let info: ptm_sim::InfoFn = unsafe { std::mem::transmute(info) };
    let text = module.text();
    Ok(Measured {
        name: name.to_owned(),
        kind: "loaded",
        variant: Variant::from_raw(name, init, fini, info),
        text: Some((text.addr, text.addr + text.size)),
        _module: Some(module),
    })
}

fn run(dir: &Path) -> Result<(), String> {
    let on_valgrind = callgrind::running_on_valgrind();
    if !on_valgrind {
        eprintln!("ptm-bench run: not under valgrind: checking the workloads only");
    }
    let mut measured = Vec::new();
    if let Some(v) = ptm_sim::c_reference() {
        measured.push(Measured {
            name: "C ptm.c (host, sim)".into(),
            kind: "host-c",
            variant: v,
            text: None,
            _module: None,
        });
    } else {
        println!("SKIPPED: C ptm.c (host): PTM_REFERENCE_C was not set at build time");
    }
    if let Some(v) = ptm_sim::rust_driver() {
        measured.push(Measured {
            name: "Rust ptm (host, sim)".into(),
            kind: "host-rust",
            variant: v,
            text: None,
            _module: None,
        });
    }
    let ckobj = c_kobj_path(dir);
    if ckobj.exists() {
        measured.push(load_module(&ckobj, "C ptm.c kernel object (loaded)")?);
    } else {
        println!("SKIPPED: C kernel object: {} not built", ckobj.display());
    }
    let kmod = kmod_path();
    if kmod.exists() {
        measured.push(load_module(&kmod, "Rust kernel module (loaded)")?);
    } else {
        println!("SKIPPED: Rust kernel module: {} not built", kmod.display());
    }

    let wls = workloads::all();
    let mut manifest = String::new();
    for (vi, m) in measured.iter().enumerate() {
        let (lo, hi) = m.text.unwrap_or((0, 0));
        writeln!(
            manifest,
            "variant\t{vi}\t{}\t{}\t{lo:#x}\t{hi:#x}",
            m.kind, m.name
        )
        .unwrap();
    }
    for (wi, wl) in wls.iter().enumerate() {
        writeln!(
            manifest,
            "workload\t{wi}\t{}\t{}\t{}",
            wl.iters, wl.name, wl.unit
        )
        .unwrap();
    }
    for (vi, m) in measured.iter().enumerate() {
        for (wi, wl) in wls.iter().enumerate() {
            let mut w = World::new(m.variant).map_err(|e| format!("{}: {e}", m.name))?;
            let pty = wl
                .nonblock
                .map(|nb| workloads::open_pty(&mut w, workloads::flags(nb)));
            for _ in 0..WARMUP {
                (wl.op)(&mut w, pty.as_ref());
            }
            if on_valgrind {
                callgrind::toggle_collect();
            }
            for _ in 0..wl.iters {
                (wl.op)(&mut w, pty.as_ref());
            }
            if on_valgrind {
                callgrind::toggle_collect();
                callgrind::dump_stats_at(&format!("v{vi}:w{wi}"));
            }
            w.finish()
                .map_err(|e| format!("{} / {}: {e}", m.name, wl.name))?;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("callgrind/manifest.tsv"), manifest).map_err(|e| e.to_string())?;
    Ok(())
}

// ---------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------

struct VariantInfo {
    kind: String,
    name: String,
    text: (usize, usize),
}

struct WorkloadInfo {
    iters: u64,
    name: String,
    unit: String,
}

/// Defined function symbols of the `ptm` rlib the bench was linked with.
fn rust_driver_symbols() -> Result<HashSet<String>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let deps = exe.parent().ok_or("exe dir")?.join("deps");
    let rlib = std::fs::read_dir(&deps)
        .map_err(|e| format!("{}: {e}", deps.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libptm-") && n.ends_with(".rlib"))
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .ok_or_else(|| format!("no libptm-*.rlib in {}", deps.display()))?;
    let out = Command::new("nm")
        .args(["--defined-only", "--format=posix"])
        .arg(&rlib)
        .output()
        .map_err(|e| format!("cannot run nm: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let syms: HashSet<String> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let kind = f.next()?;
            matches!(kind, "T" | "t" | "W" | "w").then(|| name.to_owned())
        })
        .collect();
    if syms.is_empty() {
        return Err(format!("nm found no functions in {}", rlib.display()));
    }
    Ok(syms)
}

fn is_driver(
    v: &VariantInfo,
    f: &callgrind::FnCost,
    c_file: &str,
    rust_syms: &HashSet<String>,
) -> bool {
    let base = f.file.rsplit('/').next().unwrap_or("");
    match v.kind.as_str() {
        "host-c" => base == c_file,
        "host-rust" => {
            let sym = f.name.split('\'').next().unwrap_or("");
            rust_syms.contains(sym) && base != c_file
        }
        _ => {
            let sym = f.name.split('\'').next().unwrap_or("");
            sym.strip_prefix("0x")
                .and_then(|h| usize::from_str_radix(h, 16).ok())
                .is_some_and(|a| a >= v.text.0 && a < v.text.1)
        }
    }
}

struct Sizes {
    text: u64,
    rodata: u64,
    data: u64,
    bss: u64,
}

fn sizes(path: &Path) -> Result<Sizes, String> {
    use object::{Object, ObjectSection, SectionKind};
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let obj = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut s = Sizes {
        text: 0,
        rodata: 0,
        data: 0,
        bss: 0,
    };
    for sec in obj.sections() {
        let name = sec.name().unwrap_or("");
        let size = sec.size();
        match sec.kind() {
            SectionKind::Text => s.text += size,
            SectionKind::ReadOnlyData | SectionKind::ReadOnlyString => s.rodata += size,
            SectionKind::Data | SectionKind::ReadOnlyDataWithRel => s.data += size,
            SectionKind::UninitializedData => s.bss += size,
            _ if name.starts_with(".rodata") => s.rodata += size,
            _ => {}
        }
    }
    Ok(s)
}

fn ratio(r: u64, c: u64) -> String {
    if c == 0 {
        if r == 0 {
            "n/a (0/0)".into()
        } else {
            "∞".into()
        }
    } else {
        format!("{:.3}", r as f64 / c as f64)
    }
}

fn per_op(total: u64, iters: u64) -> String {
    format!("{:.1}", total as f64 / iters as f64)
}

/// The producer (compiler and flags) DWARF records for ptm.c in the bench
/// executable, as evidence of the flags the cc crate used.
fn c_producer(c_file: &str) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("readelf")
        .args(["--debug-dump=info", "--dwarf-depth=1"])
        .arg(exe)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut producer = None;
    for line in text.lines() {
        if line.contains("DW_AT_producer") {
            producer = line.split_once("):").map(|(_, p)| p.trim().to_owned());
        }
        if line.contains("DW_AT_name") && line.trim_end().ends_with(&format!("/{c_file}")) {
            return producer;
        }
    }
    None
}

fn report(dir: &Path) -> Result<String, String> {
    let cg = dir.join("callgrind");
    let manifest = std::fs::read_to_string(cg.join("manifest.tsv"))
        .map_err(|e| format!("{}: {e}", cg.join("manifest.tsv").display()))?;
    let mut variants = Vec::new();
    let mut wls = Vec::new();
    for line in manifest.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let hex = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0);
        match f.as_slice() {
            ["variant", _, kind, name, lo, hi] => variants.push(VariantInfo {
                kind: (*kind).to_owned(),
                name: (*name).to_owned(),
                text: (hex(lo), hex(hi)),
            }),
            ["workload", _, iters, name, unit] => wls.push(WorkloadInfo {
                iters: iters.parse().unwrap_or(1),
                name: (*name).to_owned(),
                unit: (*unit).to_owned(),
            }),
            _ => {}
        }
    }
    let c_file = reference_c()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "ptm.c".into());
    let rust_syms = rust_driver_symbols()?;

    // (variant, workload) -> driver instructions; and per-function detail.
    let mut cost: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    let mut detail = String::new();
    for entry in std::fs::read_dir(&cg).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("callgrind.out."))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let dump = callgrind::parse(&text);
        let Some((v, w)) = dump.trigger.strip_prefix('v').and_then(|t| {
            let (v, w) = t.split_once(":w")?;
            Some((v.parse::<usize>().ok()?, w.parse::<usize>().ok()?))
        }) else {
            continue;
        };
        let (Some(vi), Some(wi)) = (variants.get(v), wls.get(w)) else {
            continue;
        };
        let mut total = 0;
        let _ = writeln!(detail, "## {} / {}", vi.name, wi.name);
        for f in &dump.functions {
            if is_driver(vi, f, &c_file, &rust_syms) {
                total += f.ir;
                let _ = writeln!(
                    detail,
                    "{:>12} {:>10}  {}  [{}]",
                    f.ir,
                    per_op(f.ir, wi.iters),
                    f.name,
                    f.file
                );
            }
        }
        cost.insert((v, w), total);
    }
    std::fs::write(dir.join("functions.txt"), &detail).map_err(|e| e.to_string())?;

    let find = |kind: &str| variants.iter().position(|v| v.kind == kind);
    let pairs = [
        ("host", find("host-c"), find("host-rust")),
        (
            "loaded",
            variants
                .iter()
                .position(|v| v.name.starts_with("C ") && v.kind == "loaded"),
            variants
                .iter()
                .position(|v| v.name.starts_with("Rust") && v.kind == "loaded"),
        ),
    ];

    let mut md = String::new();
    let _ = writeln!(md, "# ptm bench: Rust against C\n");
    let _ = writeln!(
        md,
        "Driver instructions per operation (callgrind Ir, driver code only; the simulated kernel is not counted). Target: Rust/C ≤ 0.90.\n"
    );
    let _ = writeln!(md, "Measured variants:\n");
    for v in &variants {
        let _ = writeln!(md, "* {} ({})", v.name, v.kind);
    }
    let host_c_flags = c_producer(&c_file);
    let _ = writeln!(
        md,
        "\nBuilds: host = cargo release profile (Rust opt-level 3, debug info for attribution); \
         C via the cc crate with cargo's OPT_LEVEL; DWARF producer of ptm.c: `{}`. \
         Loaded = target/kmod/ptm (profile kmod: opt-level \"s\", LTO, 1 CGU) and ptm.c compiled \
         with `gcc {}`.\n",
        host_c_flags.as_deref().unwrap_or("(not found)"),
        ptm_kload::KERNEL_CFLAGS.join(" ")
    );
    let mut header = String::from("| workload | operation |");
    let mut sep = String::from("|---|---|");
    for (label, c, r) in &pairs {
        if c.is_some() || r.is_some() {
            let _ = write!(header, " C {label} | Rust {label} | Rust/C {label} |");
            sep.push_str("---:|---:|---:|");
        }
    }
    let _ = writeln!(md, "{header}\n{sep}");
    let mut misses = Vec::new();
    for (wi, w) in wls.iter().enumerate() {
        let mut row = format!("| {} | {} |", w.name, w.unit);
        for (label, c, r) in &pairs {
            if c.is_none() && r.is_none() {
                continue;
            }
            let cv = c.and_then(|c| cost.get(&(c, wi)).copied());
            let rv = r.and_then(|r| cost.get(&(r, wi)).copied());
            let show = |x: Option<u64>| x.map_or("—".into(), |x| per_op(x, w.iters));
            let rat = match (cv, rv) {
                (Some(c), Some(r)) => {
                    let s = ratio(r, c);
                    if c > 0 && r as f64 / c as f64 > 0.90 {
                        misses.push(format!("{} ({label}): {s}", w.name));
                        format!("**{s}**")
                    } else {
                        s
                    }
                }
                _ => "—".into(),
            };
            let _ = write!(row, " {} | {} | {} |", show(cv), show(rv), rat);
        }
        let _ = writeln!(md, "{row}");
    }

    let _ = writeln!(md, "\n## Size (bytes; target Rust/C ≤ 1.0)\n");
    let kmod = kmod_path();
    let ckobj = c_kobj_path(dir);
    match (sizes(&kmod), sizes(&ckobj)) {
        (Ok(r), Ok(c)) => {
            let _ = writeln!(
                md,
                "Rust: `{}`; C: `{}` (ptm.c with the illumos kernel flags above). .rodata includes .rodata.str*.\n",
                kmod.display(),
                ckobj.display()
            );
            let _ = writeln!(md, "| section | C | Rust | Rust/C |\n|---|---:|---:|---:|");
            let rows = [
                (".text", c.text, r.text),
                (".rodata", c.rodata, r.rodata),
                (".data", c.data, r.data),
                (
                    ".text+.rodata+.data",
                    c.text + c.rodata + c.data,
                    r.text + r.rodata + r.data,
                ),
                (".bss (not a target)", c.bss, r.bss),
            ];
            for (n, cs, rs) in rows {
                let s = ratio(rs, cs);
                let s = if cs > 0 && rs > cs && !n.starts_with(".bss") {
                    misses.push(format!("size {n}: {s}"));
                    format!("**{s}**")
                } else {
                    s
                };
                let _ = writeln!(md, "| {n} | {cs} | {rs} | {s} |");
            }
        }
        (r, c) => {
            let _ = writeln!(
                md,
                "SKIPPED: {}",
                [r.err(), c.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    let _ = writeln!(md, "\n## Targets missed\n");
    if misses.is_empty() {
        let _ = writeln!(md, "none");
    }
    for m in &misses {
        let _ = writeln!(md, "* {m}");
    }
    let _ = writeln!(
        md,
        "\nPer-function costs: `{}`; raw profiles: `{}` (callgrind_annotate).",
        dir.join("functions.txt").display(),
        cg.display()
    );
    std::fs::write(dir.join("bench.md"), &md).map_err(|e| e.to_string())?;
    Ok(md)
}
