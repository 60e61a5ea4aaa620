//! From a profile to the three counts: which function is whose, and what
//! illumos would pay for the world's stand-ins.
//!
//! Every function that ran in a measurement window is one of:
//!
//! * **driver**: code of the measured module (named by callgrind by its
//!   address; [`Module::name_of`] gives the module's symbol);
//! * **trampoline**: the userland krtld's 16-byte jump from the module to
//!   a kernel function (a loader artefact: not counted; the calls through
//!   it are the module's kernel calls);
//! * **window**: the bench's wrappers (not counted);
//! * **illumos**: a function compiled from the illumos sources (its file
//!   is under `ILLUMOS_SRC`): counted as it ran;
//! * **layer**: the world's own kernel layer (`tests/real`): its code is
//!   never counted. A call from driver or illumos code to one of the
//!   layer's stand-ins for an illumos primitive counts that primitive's
//!   instructions on illumos ([`PRICES`]); the world's observation hooks
//!   ([`HOOKS`]), which illumos does not have, count nothing;
//! * anything else (the Rust runtime, libc): only ever reached from the
//!   layer, whose cost it is.
//!
//! A call the bench cannot price, or illumos code run on behalf of the
//! layer, is reported as a problem rather than counted or dropped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::callgrind::Dump;
use crate::window;

/// A loaded module, as the measured run saw it.
pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pub text: (usize, usize),
    pub trampolines: (usize, usize),
    /// (address, size, name), by address.
    pub symbols: Vec<(usize, u64, String)>,
    /// Trampoline address -> kernel function.
    pub imports: BTreeMap<usize, String>,
}

impl Module {
    fn addr(name: &str) -> Option<usize> {
        usize::from_str_radix(name.split('\'').next()?.strip_prefix("0x")?, 16).ok()
    }

    fn is_driver(&self, name: &str) -> bool {
        Module::addr(name).is_some_and(|a| a >= self.text.0 && a < self.text.1)
    }

    /// The kernel function a trampoline address jumps to.
    fn import_at(&self, a: usize) -> Option<&str> {
        if a < self.trampolines.0 || a >= self.trampolines.1 {
            return None;
        }
        self.imports
            .range(..=a)
            .next_back()
            .filter(|(t, _)| a < *t + ptm_kload::TRAMPOLINE_SIZE)
            .map(|(_, n)| n.as_str())
    }

    fn is_trampoline(&self, name: &str) -> bool {
        Module::addr(name).is_some_and(|a| a >= self.trampolines.0 && a < self.trampolines.1)
    }

    /// The module function an address of its code belongs to.
    pub fn function_at(&self, a: usize) -> String {
        let found = self
            .symbols
            .iter()
            .rev()
            .find(|(s, size, _)| *s <= a && (a < s + *size as usize || *size == 0));
        match found {
            Some((_, _, n)) => n.clone(),
            None => format!("{a:#x}"),
        }
    }
}

/// Where the profiles' files are.
pub struct Classifier {
    /// `usr/src` of the illumos sources.
    pub illumos: String,
    /// The real-code world's crate (its kernel layer).
    pub layer: String,
    /// The bench executable, as callgrind names its object.
    pub exe: String,
}

/// What callgrind calls code that no file holds (the loaded modules and
/// their trampolines).
const ANONYMOUS: &str = "???";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Driver,
    Trampoline,
    Window,
    Illumos,
    Layer,
    Other,
    /// A function with no instructions in the profile: a caller on the
    /// stack when a window opened (the system call that led to the driver).
    Outside,
}

/// An illumos primitive the world provides itself, and what one call
/// costs on illumos (amd64, the common path), beyond the call instruction
/// its caller executes in both kernels.
pub struct Price {
    pub name: &'static str,
    /// `None`: no illumos count; the stand-in's own instructions are
    /// counted instead.
    pub instructions: Option<u64>,
    /// Where the number comes from.
    pub source: &'static str,
}

const fn price(name: &'static str, n: u64, source: &'static str) -> Price {
    Price {
        name,
        instructions: Some(n),
        source,
    }
}

const fn measured(name: &'static str, source: &'static str) -> Price {
    Price {
        name,
        instructions: None,
        source,
    }
}

/// Sources of the C counts: the common path of the illumos function,
/// transcribed and compiled with the C object's flags, counted by callgrind
/// (README, "How the bench counts").
const C_PATH: &str = "illumos's C, the common path compiled with the module flags";

/// The prices of the world's stand-ins that the measured paths call.
pub const PRICES: &[Price] = &[
    price(
        "mutex_enter",
        5,
        "lock_prim.S: curthread, clear, lock cmpxchg, jnz, ret",
    ),
    price(
        "mutex_exit",
        5,
        "lock_prim.S: curthread, compare owner, jne, store 0, ret",
    ),
    price("mutex_owned", 17, C_PATH),
    price("cv_broadcast", 10, C_PATH),
    price("getzoneid", 5, C_PATH),
    price(
        "ddi_get_lbolt",
        18,
        "illumos's C (lbolt in cyclic mode, the thunk a plain jmp), compiled with the module flags",
    ),
    price(
        "kmem_cache_alloc",
        36,
        "illumos's C (a magazine round), compiled with the module flags, and its mutex_enter and mutex_exit",
    ),
    price(
        "kmem_cache_free",
        34,
        "illumos's C (a magazine round), compiled with the module flags, and its mutex_enter and mutex_exit",
    ),
    price(
        "kmem_alloc",
        53,
        "illumos's C (the size table), compiled with the module flags, and its kmem_cache_alloc",
    ),
    price(
        "kmem_free",
        53,
        "illumos's C (the size table), compiled with the module flags, and its kmem_cache_free",
    ),
    price("threadp", 0, "an inline movq %gs:CPU_THREAD on illumos"),
    price("curcpup", 0, "an inline movq %gs:CPU_SELF on illumos"),
    price("getfp", 0, "an inline movq %rbp on illumos"),
    measured(
        "taskq_dispatch",
        "no illumos count: the stand-in's own instructions",
    ),
    measured(
        "vmem_alloc",
        "no illumos count: the stand-in's own instructions",
    ),
    measured(
        "vmem_free",
        "no illumos count: the stand-in's own instructions",
    ),
];

/// A DTrace probe site: krtld replaces the call with five one-byte nops.
pub const PROBE: Price = price(
    "__dtrace_probe_* (SDT probe sites)",
    4,
    "krtld writes five one-byte nops over the call",
);

/// The world's observation hooks: layer code illumos does not have, which
/// stands between two illumos functions (a stream head's put procedure,
/// allocb's caller and allocb). They cost nothing; what they call that is
/// illumos's counts as usual.
pub const HOOKS: &[&str] = &["kp_traced_strrput", "allocb"];

/// The counts of one profile.
pub struct Costs {
    /// The module's own instructions.
    pub driver: u64,
    /// The module's calls to kernel functions, by function.
    pub calls: BTreeMap<String, u64>,
    /// Instructions of illumos's functions, by function.
    pub illumos: BTreeMap<String, u64>,
    /// Calls to the world's stand-ins, by primitive: (calls, instructions
    /// counted for them).
    pub priced: BTreeMap<String, (u64, u64)>,
    /// The driver's instructions by module function.
    pub by_function: BTreeMap<String, u64>,
    /// What could not be accounted for.
    pub problems: Vec<String>,
}

impl Costs {
    /// The counts of `dump`, for module `m`; `entries` gives the address
    /// (in the measured process) of each function the bench prices.
    pub fn of(
        dump: &Dump,
        m: &Module,
        cl: &Classifier,
        entries: &BTreeMap<String, Vec<usize>>,
    ) -> Costs {
        let a = Accounting { dump, m, cl };
        let mut c = Costs {
            driver: 0,
            calls: BTreeMap::new(),
            illumos: BTreeMap::new(),
            priced: BTreeMap::new(),
            by_function: BTreeMap::new(),
            problems: Vec::new(),
        };
        a.count_module(&mut c);
        a.count_priced(&mut c, entries);
        a.check_calls(&mut c);
        c
    }

    /// Kernel instructions: illumos's functions plus the priced calls.
    pub fn kernel(&self) -> u64 {
        self.illumos.values().sum::<u64>()
            + self.priced.values().map(|(_, total)| total).sum::<u64>()
    }

    pub fn inclusive(&self) -> u64 {
        self.driver + self.kernel()
    }

    /// Appends this profile, per operation, to `out`.
    pub fn profile(&self, out: &mut String, variant: &str, workload: &str, iters: u64) {
        let per = |x: u64| x as f64 / iters as f64;
        let _ = writeln!(out, "## {variant} / {workload} (per operation)\n");
        let _ = writeln!(out, "driver instructions: {:.1}", per(self.driver));
        let mut v: Vec<(&String, &u64)> = self.by_function.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (n, ir) in v {
            let _ = writeln!(out, "  {:>9.1}  {n}", per(*ir));
        }
        let _ = writeln!(
            out,
            "kernel calls by the driver: {:.2}",
            per(self.calls.values().sum())
        );
        for (n, k) in &self.calls {
            let _ = writeln!(out, "  {:>9.2}  {n}", per(*k));
        }
        let _ = writeln!(out, "kernel instructions: {:.1}", per(self.kernel()));
        let mut v: Vec<(&String, &u64)> = self.illumos.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (n, ir) in v {
            let _ = writeln!(out, "  {:>9.1}  {n}", per(*ir));
        }
        for (n, (k, total)) in &self.priced {
            let _ = writeln!(
                out,
                "  {:>9.1}  {n} ({:.2} calls, priced)",
                per(*total),
                per(*k)
            );
        }
        let _ = writeln!(out, "inclusive: {:.1}\n", per(self.inclusive()));
    }
}

/// A profile's function name without callgrind's recursion level.
fn base(name: &str) -> &str {
    name.split('\'').next().unwrap_or(name)
}

fn caller_name(m: &Module, name: &str) -> String {
    if m.is_driver(name) || m.is_trampoline(name) {
        let a = Module::addr(name).unwrap_or(0);
        match m.import_at(a) {
            Some(i) => format!("the driver (through {i})"),
            None => format!("the driver ({})", m.function_at(a)),
        }
    } else {
        name.to_owned()
    }
}

/// A DTrace probe site's stand-in function (build.rs of the real-code
/// world gives each an empty body).
pub fn is_probe(name: &str) -> bool {
    name.starts_with("__dtrace_probe_")
}

/// One dump being accounted for one module.
struct Accounting<'a> {
    dump: &'a Dump,
    m: &'a Module,
    cl: &'a Classifier,
}

impl Accounting<'_> {
    /// Whose code the function `name` is.
    fn class(&self, name: &str) -> Class {
        if self.m.is_driver(name) {
            return Class::Driver;
        }
        if self.m.is_trampoline(name) {
            return Class::Trampoline;
        }
        if window::is_wrapper(name) {
            return Class::Window;
        }
        match self.dump.file_of(name) {
            Some(f) if f.starts_with(&self.cl.illumos) => Class::Illumos,
            Some(f) if f.starts_with(&self.cl.layer) || is_probe(name) => Class::Layer,
            Some(_) => Class::Other,
            None => Class::Outside,
        }
    }

    /// The module's code and its trampolines, instruction by instruction
    /// (callgrind may fold a trampoline reached by a tail jump into the
    /// function that jumped), and illumos's functions.
    fn count_module(&self, c: &mut Costs) {
        let (dump, m) = (self.dump, self.m);
        for (a, ir) in dump.in_range(ANONYMOUS, m.text.0, m.text.1) {
            c.driver += ir;
            *c.by_function.entry(m.function_at(a)).or_default() += ir;
        }
        for (a, ir) in dump.in_range(ANONYMOUS, m.trampolines.0, m.trampolines.1) {
            // One jump per call.
            let name = m
                .import_at(a)
                .map_or_else(|| format!("{a:#x}"), str::to_owned);
            *c.calls.entry(name).or_default() += ir;
        }
        for f in &dump.functions {
            if self.class(&f.name) == Class::Illumos {
                *c.illumos.entry(base(&f.name).to_owned()).or_default() += f.ir;
            }
        }
    }

    /// The stand-ins illumos code and the driver entered, each entry
    /// counted at illumos's price.
    fn count_priced(&self, c: &mut Costs, entries: &BTreeMap<String, Vec<usize>>) {
        let dump = self.dump;
        for p in PRICES {
            let n: u64 = entries
                .get(p.name)
                .into_iter()
                .flatten()
                .map(|&a| dump.at(&self.cl.exe, a))
                .sum();
            if n == 0 {
                continue;
            }
            let instructions = match p.instructions {
                Some(each) => n * each,
                None => dump
                    .calls
                    .iter()
                    .filter(|k| base(&k.callee) == p.name)
                    .filter(|k| {
                        matches!(
                            self.class(&k.caller),
                            Class::Driver | Class::Trampoline | Class::Illumos
                        )
                    })
                    .map(|k| k.inclusive)
                    .sum(),
            };
            c.priced.insert(p.name.to_owned(), (n, instructions));
        }
        let probes: u64 = entries
            .iter()
            .filter(|(n, _)| is_probe(n))
            .flat_map(|(_, a)| a)
            .map(|&a| dump.at(&self.cl.exe, a))
            .sum();
        if probes > 0 {
            c.priced.insert(
                PROBE.name.to_owned(),
                (probes, probes * PROBE.instructions.unwrap_or(0)),
            );
        }
    }

    /// Checks that every call from counted code into the world's layer is
    /// priced, and that nothing else calls what is priced.
    fn check_calls(&self, c: &mut Costs) {
        let m = self.m;
        for call in &self.dump.calls {
            if call.inclusive == 0 {
                continue;
            }
            let (from, to) = (self.class(&call.caller), self.class(&call.callee));
            let callee = base(&call.callee);
            let counted_caller = matches!(from, Class::Driver | Class::Trampoline | Class::Illumos);
            let price = PRICES.iter().find(|p| p.name == callee);
            let priced = is_probe(callee) || price.is_some();
            // Entries are what is priced: a stand-in entered from the
            // layer itself would be counted as if illumos had called it
            // (harmless only when its price is nothing).
            let costs_something =
                is_probe(callee) || price.is_some_and(|p| p.instructions != Some(0));
            match to {
                Class::Layer if counted_caller && !priced && !HOOKS.contains(&callee) => {
                    c.problems.push(format!(
                        "{} calls the world's {callee} ({} instructions there): no illumos \
                         price for it",
                        caller_name(m, &call.caller),
                        call.inclusive
                    ))
                }
                Class::Layer | Class::Illumos
                    if costs_something
                        && matches!(from, Class::Layer | Class::Other)
                        && !HOOKS.contains(&base(&call.caller)) =>
                {
                    c.problems.push(format!(
                        "the world's {} calls {callee}, which is priced as if illumos called it",
                        call.caller
                    ))
                }
                Class::Other if counted_caller => c.problems.push(format!(
                    "{} calls {callee}, which is neither illumos's nor the world's",
                    caller_name(m, &call.caller),
                )),
                Class::Illumos
                    if matches!(from, Class::Layer | Class::Other)
                        && !HOOKS.contains(&base(&call.caller)) =>
                {
                    c.problems.push(format!(
                        "the world's {} runs illumos's {callee} ({} instructions): illumos \
                         code on behalf of a stand-in",
                        call.caller, call.inclusive
                    ))
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callgrind;

    /// A module at 0x4000..0x4100 with trampolines at 0x5000 (putq) and
    /// 0x5010 (mutex_enter), in a process whose executable is /bin/bench.
    fn module() -> Module {
        Module {
            name: "m".into(),
            path: PathBuf::from("m"),
            text: (0x4000, 0x4100),
            trampolines: (0x5000, 0x5020),
            symbols: vec![
                (0x4000, 0x40, "ptmwput".into()),
                (0x4040, 0x40, "ptmwsrv".into()),
            ],
            imports: BTreeMap::from([(0x5000, "putq".into()), (0x5010, "mutex_enter".into())]),
        }
    }

    fn classifier() -> Classifier {
        Classifier {
            illumos: "/illumos/usr/src".into(),
            layer: "/repo/tests/real".into(),
            exe: "/bin/bench".into(),
        }
    }

    /// The driver calls putq (illumos, 40 instructions, which enters the
    /// world's mutex_enter twice) and mutex_enter once, through trampolines;
    /// strput, on the stack when the window opened, has no cost of its own.
    const PROFILE: &str = "version: 1\ndesc: Trigger: Client Request: v0:w0\npositions: instr\n\
        events: Ir\n\
        ob=(1) ???\nfl=(1) ???\nfn=(1) 0x0000000000004000\n0x4000 10\n+4 5\n\
        cob=(1)\ncfi=(1)\ncfn=(2) 0x0000000000005000\ncalls=1 0x5000\n* 50\n\
        cfn=(3) 0x0000000000005010\ncalls=1 0x5010\n* 9\n\
        fn=(2)\n0x5000 1\ncob=(2) /bin/bench\ncfi=(2) /illumos/usr/src/uts/common/io/stream.c\n\
        cfn=(4) putq\ncalls=1 0x100\n* 49\n\
        fn=(3)\n0x5010 1\ncob=(2)\ncfi=(3) /repo/tests/real/src/kernel/sync.rs\ncfn=(5) mutex_enter\n\
        calls=1 0x200\n* 8\n\
        ob=(2)\nfl=(2)\nfn=(4)\n0x100 40\ncob=(2)\ncfi=(3)\ncfn=(5)\ncalls=2 0x200\n* 16\n\
        fl=(3)\nfn=(5)\n0x200 3\n+1 21\n\
        fl=(4) /illumos/usr/src/uts/common/os/streamio.c\nfn=(6) strput\n\
        cob=(1)\ncfi=(1)\ncfn=(7) ptm_bench_window_wput\ncalls=1 0x300\n* 80\n";

    fn entries() -> BTreeMap<String, Vec<usize>> {
        let mut e: BTreeMap<String, Vec<usize>> = PRICES
            .iter()
            .map(|p| (p.name.to_owned(), vec![0x9000]))
            .collect();
        e.insert("mutex_enter".into(), vec![0x200]);
        e
    }

    #[test]
    fn driver_calls_illumos_and_priced_stand_ins() {
        let dump = callgrind::parse(PROFILE);
        let c = Costs::of(&dump, &module(), &classifier(), &entries());
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        // The module's own code, by function; not its trampolines.
        assert_eq!(c.driver, 15);
        assert_eq!(c.by_function.get("ptmwput"), Some(&15));
        // One call through each trampoline.
        assert_eq!(
            c.calls,
            BTreeMap::from([("mutex_enter".into(), 1), ("putq".into(), 1)])
        );
        // putq is illumos's and counts as it ran; the world's mutex_enter
        // does not: its three entries (one from the driver, two from putq)
        // count at illumos's 5 each.
        assert_eq!(c.illumos, BTreeMap::from([("putq".into(), 40)]));
        assert_eq!(c.priced.get("mutex_enter"), Some(&(3, 15)));
        assert_eq!(c.kernel(), 55);
        assert_eq!(c.inclusive(), 70);
    }

    #[test]
    fn an_unpriced_stand_in_is_reported_not_dropped() {
        let text = PROFILE.replace("mutex_enter", "kp_unpriced");
        let dump = callgrind::parse(&text);
        let c = Costs::of(&dump, &module(), &classifier(), &entries());
        assert!(
            c.problems
                .iter()
                .any(|p| p.contains("kp_unpriced") && p.contains("no illumos price")),
            "{:?}",
            c.problems
        );
    }
}
