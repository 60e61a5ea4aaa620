//! The report: `bench.md` (and the per-function `functions.txt`) from the
//! callgrind dumps of a run and the manifest it wrote.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ptm_real::{C_KOBJ, RUST_KMOD};
use ptm_test_support::{ILLUMOS_MODULE_DEFS, KERNEL_CFLAGS, repo_root};

use crate::{ILLUMOS_FLAGS_NOT_IN_GCC, ILLUMOS_MODULE_CFLAGS, callgrind, cost, illumos_usr_src};

/// What the module's size may reach (Rust/C) when the speed targets cannot
/// be had within C's.
const SIZE_ALLOWANCE: f64 = 1.03;

/// Inclusive cost target, Rust/C, on every workload.
const INCLUSIVE_TARGET: f64 = 0.90;

struct WorkloadInfo {
    iters: u64,
    target: f64,
    name: String,
    unit: String,
}

/// What `ptm-bench run` measured: the variants (as the cost accounting
/// sees them) and the workloads, in the order the dumps name them.
struct Manifest {
    variants: Vec<cost::Module>,
    wls: Vec<WorkloadInfo>,
}

impl Manifest {
    /// Reads `cg/manifest.tsv`, refusing one another build of the bench
    /// wrote: the report reads the measured addresses from its own symbols.
    fn read(cg: &Path) -> Result<Manifest, String> {
        let path = cg.join("manifest.tsv");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut m = Manifest {
            variants: Vec::new(),
            wls: Vec::new(),
        };
        let mut stamped = false;
        let hex = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0);
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["exe", stamp] => {
                    if *stamp != exe_stamp()? {
                        return Err(format!(
                            "{} was measured by another build of the bench ({stamp}); run it again",
                            cg.display()
                        ));
                    }
                    stamped = true;
                }
                ["variant", _, name, path, tlo, thi, jlo, jhi] => m.variants.push(cost::Module {
                    name: (*name).to_owned(),
                    path: PathBuf::from(path),
                    text: (hex(tlo), hex(thi)),
                    trampolines: (hex(jlo), hex(jhi)),
                    symbols: Vec::new(),
                    imports: BTreeMap::new(),
                }),
                ["sym", vi, addr, size, name] => {
                    if let Some(v) = m.variant(vi) {
                        v.symbols
                            .push((hex(addr), size.parse().unwrap_or(0), (*name).to_owned()));
                    }
                }
                ["imp", vi, addr, name] => {
                    if let Some(v) = m.variant(vi) {
                        v.imports.insert(hex(addr), (*name).to_owned());
                    }
                }
                ["workload", _, iters, target, name, unit] => m.wls.push(WorkloadInfo {
                    iters: iters.parse().unwrap_or(1),
                    target: target.parse().unwrap_or(1.0),
                    name: (*name).to_owned(),
                    unit: (*unit).to_owned(),
                }),
                _ => {}
            }
        }
        if !stamped {
            return Err("the manifest does not name the bench build".into());
        }
        Ok(m)
    }

    fn variant(&mut self, index: &str) -> Option<&mut cost::Module> {
        self.variants.get_mut(index.parse::<usize>().ok()?)
    }

    fn position(&self, name: &str) -> Result<usize, String> {
        self.variants
            .iter()
            .position(|v| v.name == name)
            .ok_or_else(|| format!("no variant {name} in the manifest"))
    }
}

/// Where callgrind's file names say the code came from.
fn classifier() -> Result<cost::Classifier, String> {
    let usr_src = illumos_usr_src()?;
    let layer_dir = repo_root().join("tests/real");
    let exe = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .map_err(|e| e.to_string())?;
    Ok(cost::Classifier {
        illumos: usr_src.to_string_lossy().into_owned(),
        layer: layer_dir.to_string_lossy().into_owned(),
        exe: exe.to_string_lossy().into_owned(),
    })
}

/// The costs of every dump in `cg`, by (variant, workload); writes the
/// per-function profiles to `dir/functions.txt` and says on stderr what the
/// accounting could not place.
fn read_profiles(
    dir: &Path,
    cg: &Path,
    m: &Manifest,
) -> Result<BTreeMap<(usize, usize), cost::Costs>, String> {
    let classes = classifier()?;
    let entries = priced_entries()?;
    let mut costs = BTreeMap::new();
    let mut detail = String::new();
    let mut problems = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cg)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("callgrind.out."))
        })
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let dump = callgrind::parse(&text);
        let Some((v, w)) = dump.trigger.strip_prefix('v').and_then(|t| {
            let (v, w) = t.split_once(":w")?;
            Some((v.parse::<usize>().ok()?, w.parse::<usize>().ok()?))
        }) else {
            continue;
        };
        let (Some(module), Some(wi)) = (m.variants.get(v), m.wls.get(w)) else {
            continue;
        };
        let c = cost::Costs::of(&dump, module, &classes, &entries);
        for p in &c.problems {
            problems.push(format!("{} / {}: {p}", module.name, wi.name));
        }
        c.profile(&mut detail, &module.name, &wi.name, wi.iters);
        costs.insert((v, w), c);
    }
    std::fs::write(dir.join("functions.txt"), &detail).map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        eprintln!(
            "the profiles hold costs the bench cannot account for:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(costs)
}

/// One workload measured on both modules.
struct Row<'a> {
    w: &'a WorkloadInfo,
    c: &'a cost::Costs,
    r: &'a cost::Costs,
}

/// The report being written, and the targets it found missed.
struct Doc {
    md: String,
    misses: Vec<String>,
}

/// Writes the report for the run in `dir` to `dir/bench.md` and returns it.
pub fn report(dir: &Path) -> Result<String, String> {
    let cg = dir.join("callgrind");
    let m = Manifest::read(&cg)?;
    let costs = read_profiles(dir, &cg, &m)?;
    let ci = m.position(C_KOBJ)?;
    let ri = m.position(RUST_KMOD)?;
    let rows: Vec<Row<'_>> = m
        .wls
        .iter()
        .enumerate()
        .filter_map(|(wi, w)| {
            Some(Row {
                w,
                c: costs.get(&(ci, wi))?,
                r: costs.get(&(ri, wi))?,
            })
        })
        .collect();
    let (rust, c) = (&m.variants[ri].path, &m.variants[ci].path);
    let mut doc = Doc {
        md: String::new(),
        misses: Vec::new(),
    };
    doc.header(rust, c);
    doc.driver_instructions(&rows);
    doc.kernel_calls(&rows);
    doc.inclusive_instructions(&rows);
    doc.sizes(rust, c);
    doc.footer(dir, &cg);
    std::fs::write(dir.join("bench.md"), &doc.md).map_err(|e| e.to_string())?;
    Ok(doc.md)
}

impl Doc {
    fn header(&mut self, rust: &Path, c: &Path) {
        let md = &mut self.md;
        let _ = writeln!(md, "# ptm bench: the Rust module against C ptm.c\n");
        let _ = writeln!(
            md,
            "Both loaded kernel objects, in one run, on the real-code world (illumos's STREAMS \
             framework, stream heads, ptms_conf and pts beneath them). Per operation, counted by \
             callgrind while a driver procedure is on the stack.\n"
        );
        let _ = writeln!(
            md,
            "* Rust: `{}` (profile kmod)\n* C: `{}`: ptm.c, `gcc {} {} {}` (illumos's module \
             flags but {}, which Debian's gcc lacks)\n",
            rust.display(),
            c.display(),
            KERNEL_CFLAGS.join(" "),
            ILLUMOS_MODULE_DEFS.join(" "),
            ILLUMOS_MODULE_CFLAGS.join(" "),
            ILLUMOS_FLAGS_NOT_IN_GCC
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        );
    }

    /// 1. The module's own instructions.
    fn driver_instructions(&mut self, rows: &[Row<'_>]) {
        let _ = writeln!(
            self.md,
            "## Driver instructions\n\nThe module's own code. Bold: above the target.\n\n\
             | workload | operation | C | Rust | Rust/C | target |\n|---|---|---:|---:|---:|---:|"
        );
        for Row { w, c, r } in rows {
            let (cv, rv) = (per_op(c.driver, w.iters), per_op(r.driver, w.iters));
            let s = self.show_ratio(
                ratio(rv, cv),
                w.target,
                &format!("driver instructions, {}", w.name),
            );
            let _ = writeln!(
                self.md,
                "| {} | {} | {cv:.1} | {rv:.1} | {s} | ≤ {:.2} |",
                w.name, w.unit, w.target
            );
        }
    }

    /// 2. The calls the module makes to kernel functions.
    fn kernel_calls(&mut self, rows: &[Row<'_>]) {
        let _ = writeln!(
            self.md,
            "\n## Kernel calls\n\nCalls the module makes to kernel functions, per operation, and \
             by function (C → Rust; the same in both when one number is shown).\n\n\
             | workload | C | Rust | Rust/C | by function |\n|---|---:|---:|---:|---|"
        );
        for Row { w, c, r } in rows {
            let (cn, rn): (u64, u64) = (c.calls.values().sum(), r.calls.values().sum());
            let mut names: Vec<&String> = c.calls.keys().chain(r.calls.keys()).collect();
            names.sort();
            names.dedup();
            let by: Vec<String> = names
                .iter()
                .map(|n| {
                    let a = per_op(c.calls.get(*n).copied().unwrap_or(0), w.iters);
                    let b = per_op(r.calls.get(*n).copied().unwrap_or(0), w.iters);
                    if (a - b).abs() < 1e-9 {
                        format!("{n} {}", num(a))
                    } else {
                        format!("{n} {} → {}", num(a), num(b))
                    }
                })
                .collect();
            let rat = ratio(rn as f64, cn as f64).map_or("n/a".into(), |x| format!("{x:.3}"));
            let _ = writeln!(
                self.md,
                "| {} | {} | {} | {rat} | {} |",
                w.name,
                num(per_op(cn, w.iters)),
                num(per_op(rn, w.iters)),
                by.join(", ")
            );
        }
    }

    /// 3. The driver plus the kernel code it runs.
    fn inclusive_instructions(&mut self, rows: &[Row<'_>]) {
        let md = &mut self.md;
        let _ = writeln!(
            md,
            "\n## Inclusive instructions\n\nThe driver plus the kernel code it runs: illumos's own \
             functions as the real-code world compiles them (DEBUG, -O1), and each call to one of \
             the world's stand-ins for an illumos primitive at the price below (instructions beyond \
             the caller's call). Target ≤ {INCLUSIVE_TARGET:.2}. The floor is the Rust module's \
             kernel instructions over C's total: Rust/C if the module ran no instruction of its own \
             and made the same kernel calls.\n"
        );
        let _ = writeln!(md, "| stand-in | price | from |\n|---|---:|---|");
        for p in cost::PRICES.iter().chain([&cost::PROBE]) {
            let n = p
                .instructions
                .map_or_else(|| "measured".to_owned(), |n| n.to_string());
            let _ = writeln!(md, "| `{}` | {n} | {} |", p.name, p.source);
        }
        let _ = writeln!(
            md,
            "\n| workload | C driver | C kernel | C total | Rust driver | Rust kernel | Rust total | Rust/C | floor |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for Row { w, c, r } in rows {
            let it = w.iters;
            let s = self.show_ratio(
                ratio(per_op(r.inclusive(), it), per_op(c.inclusive(), it)),
                INCLUSIVE_TARGET,
                &format!("inclusive instructions, {}", w.name),
            );
            let floor = ratio(per_op(r.kernel(), it), per_op(c.inclusive(), it))
                .map_or("n/a".into(), |x| format!("{x:.3}"));
            let _ = writeln!(
                self.md,
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {s} | {floor} |",
                w.name,
                per_op(c.driver, it),
                per_op(c.kernel(), it),
                per_op(c.inclusive(), it),
                per_op(r.driver, it),
                per_op(r.kernel(), it),
                per_op(r.inclusive(), it),
            );
        }
    }

    /// The objects' section sizes.
    fn sizes(&mut self, rust: &Path, c: &Path) {
        let _ = writeln!(
            self.md,
            "\n## Size (bytes; target Rust/C ≤ 1.00)\n\n.rodata includes .rodata.str*.\n"
        );
        let (r, c) = match (sizes(rust), sizes(c)) {
            (Ok(r), Ok(c)) => (r, c),
            (r, c) => {
                let why: Vec<String> = [r.err(), c.err()].into_iter().flatten().collect();
                let _ = writeln!(self.md, "SKIPPED: {}", why.join("; "));
                return;
            }
        };
        let _ = writeln!(
            self.md,
            "| section | C | Rust | Rust/C |\n|---|---:|---:|---:|"
        );
        let rows = [
            (".text", c.text, r.text, false),
            (".rodata", c.rodata, r.rodata, false),
            (".data", c.data, r.data, false),
            (
                ".text + .rodata + .data",
                c.text + c.rodata + c.data,
                r.text + r.rodata + r.data,
                true,
            ),
            (".bss (not a target)", c.bss, r.bss, false),
        ];
        for (n, cs, rs, target) in rows {
            let x = rs as f64 / cs as f64;
            let s = if target {
                let s = self.show_ratio(Some(x), 1.0, &format!("size {n}"));
                if x > 1.0
                    && x <= SIZE_ALLOWANCE
                    && let Some(m) = self.misses.last_mut()
                {
                    m.push_str(&format!(
                        "; within the ≤ {SIZE_ALLOWANCE:.2} allowed when the speed targets \
                         need the bytes (README: the trade-off)"
                    ));
                }
                s
            } else {
                format!("{x:.3}")
            };
            let _ = writeln!(self.md, "| {n} | {cs} | {rs} | {s} |");
        }
    }

    fn footer(&mut self, dir: &Path, cg: &Path) {
        let md = &mut self.md;
        let _ = writeln!(md, "\n## Targets missed\n");
        if self.misses.is_empty() {
            let _ = writeln!(md, "none");
        }
        for m in &self.misses {
            let _ = writeln!(md, "* {m}");
        }
        let _ = writeln!(
            md,
            "\nPer-function profiles: `{}`; raw profiles: `{}` (callgrind_annotate).",
            dir.join("functions.txt").display(),
            cg.display()
        );
    }

    /// A ratio for a table, in bold and noted as a miss above `target`.
    fn show_ratio(&mut self, r: Option<f64>, target: f64, label: &str) -> String {
        match r {
            None => "n/a (no driver code runs)".into(),
            Some(x) if x > target + 1e-9 => {
                self.misses
                    .push(format!("{label}: {x:.3} (target ≤ {target:.2})"));
                format!("**{x:.3}**")
            }
            Some(x) => format!("{x:.3}"),
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

fn ratio(r: f64, c: f64) -> Option<f64> {
    (c > 0.0).then(|| r / c)
}

fn per_op(total: u64, iters: u64) -> f64 {
    total as f64 / iters as f64
}

/// This executable's size and modification time: the report reads the
/// measured process's addresses from its own symbols, so both must be the
/// same file.
pub fn exe_stamp() -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let md = std::fs::metadata(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{}:{mtime}", md.len()))
}

/// The entry addresses, in this executable (callgrind gives a file's code
/// by its address in the file), of the functions the bench prices.
fn priced_entries() -> Result<BTreeMap<String, Vec<usize>>, String> {
    use object::{Object, ObjectSymbol, SymbolKind};
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let obj = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", exe.display()))?;
    let funcs: Vec<(String, usize)> = obj
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && !s.is_undefined())
        .filter_map(|s| Some((s.name().ok()?.to_owned(), s.address() as usize)))
        .collect();
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (n, a) in funcs {
        if cost::is_probe(&n) || cost::PRICES.iter().any(|p| p.name == n) {
            m.entry(n).or_default().push(a);
        }
    }
    for p in cost::PRICES {
        if !m.contains_key(p.name) {
            return Err(format!("{} has no function {}", exe.display(), p.name));
        }
    }
    Ok(m)
}

/// A per-operation count: whole numbers without decimals.
fn num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round())
    } else {
        format!("{x:.2}")
    }
}
