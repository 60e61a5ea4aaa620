//! Callgrind: the client requests the measured process makes (toggle
//! collection, dump with a name) and a reader for the profile files.

use std::collections::HashMap;
use std::ffi::CString;

/// `VG_USERREQ_TOOL_BASE('C', 'T')`.
const CG_BASE: usize = (b'C' as usize) << 24 | (b'T' as usize) << 16;
const DUMP_STATS_AT: usize = CG_BASE + 3;
const TOGGLE_COLLECT: usize = CG_BASE + 2;
/// `VG_USERREQ__RUNNING_ON_VALGRIND`.
const RUNNING_ON_VALGRIND: usize = 0x1001;

/// valgrind's client request: the "magic" rotate sequence, a no-op on the
/// real CPU (rdi is rotated by 128 bits in all), that valgrind recognises.
/// Returns `default` when not running under valgrind.
#[inline(always)]
fn client_request(default: usize, request: usize, arg1: usize) -> usize {
    let args: [usize; 6] = [request, arg1, 0, 0, 0, 0];
    let mut result = default;
    // SAFETY: the instructions leave every register but rdx (the result)
    // and the flags as they were; valgrind only reads `args`.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            options(nostack),
        );
    }
    result
}

/// Whether this process runs under valgrind.
pub fn running_on_valgrind() -> bool {
    client_request(0, RUNNING_ON_VALGRIND, 0) != 0
}

/// `CALLGRIND_TOGGLE_COLLECT` (for the calling thread).
#[inline(always)]
pub fn toggle_collect() {
    client_request(0, TOGGLE_COLLECT, 0);
}

/// `CALLGRIND_DUMP_STATS_AT(name)`: writes the costs since the last dump
/// to a new file and zeroes them.
pub fn dump_stats_at(name: &str) {
    let c = CString::new(name).expect("dump name");
    client_request(0, DUMP_STATS_AT, c.as_ptr() as usize);
}

/// A function's exclusive cost in one dump.
#[derive(Clone, Debug)]
pub struct FnCost {
    pub file: String,
    pub name: String,
    pub ir: u64,
}

/// Calls from one function to another in one dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub caller: String,
    pub callee: String,
    /// How many calls callgrind counted. It counts calls made while
    /// collection is off too, so this is only an upper bound for the
    /// calls inside the measurement windows.
    pub calls: u64,
    /// The callee's inclusive cost over these calls (collected only).
    pub inclusive: u64,
}

/// One callgrind dump, made with `--dump-instr=yes --dump-line=no`.
#[derive(Debug)]
pub struct Dump {
    /// The `DUMP_STATS_AT` name (from the `desc: Trigger:` line).
    pub trigger: String,
    pub functions: Vec<FnCost>,
    pub calls: Vec<Call>,
    /// Instructions executed at each code address, by object (`ob=`):
    /// callgrind gives the code of a file by its address in the file, and
    /// code without a file (`???`: the loaded modules) by its address in
    /// the process.
    pub instr: HashMap<(String, usize), u64>,
}

impl Dump {
    /// The file a function (by name) is defined in, if it ran.
    pub fn file_of(&self, name: &str) -> Option<&str> {
        self.functions
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.file.as_str())
    }

    /// Instructions executed at `addr` of object `ob`: for a function's
    /// entry, the number of times it was entered.
    pub fn at(&self, ob: &str, addr: usize) -> u64 {
        self.instr.get(&(ob.to_owned(), addr)).copied().unwrap_or(0)
    }

    /// Instructions executed in `[lo, hi)` of object `ob`, by address.
    pub fn in_range<'a>(
        &'a self,
        ob: &'a str,
        lo: usize,
        hi: usize,
    ) -> impl Iterator<Item = (usize, u64)> + 'a {
        self.instr
            .iter()
            .filter(move |((o, a), _)| o == ob && *a >= lo && *a < hi)
            .map(|((_, a), n)| (*a, *n))
    }
}

/// A position field of a cost or call line (`0x...` absolute, `+n`/`-n`
/// relative to the previous cost line's, `*` the same).
fn position(field: &str, last: usize) -> Option<usize> {
    if field == "*" {
        Some(last)
    } else if let Some(h) = field.strip_prefix("0x") {
        usize::from_str_radix(h, 16).ok()
    } else if let Some(d) = field.strip_prefix('+') {
        d.parse::<usize>().ok().map(|d| last + d)
    } else if let Some(d) = field.strip_prefix('-') {
        d.parse::<usize>().ok().map(|d| last - d)
    } else {
        field.parse().ok()
    }
}

/// A compressed name: `(id) name` defines `id`, `(id)` refers to it.
fn resolve(table: &mut HashMap<String, String>, v: &str) -> String {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix('(')
        && let Some(close) = rest.find(')')
    {
        let id = &rest[..close];
        let name = rest[close + 1..].trim();
        if name.is_empty() {
            return table.get(id).cloned().unwrap_or_default();
        }
        table.insert(id.to_owned(), name.to_owned());
        return name.to_owned();
    }
    v.to_owned()
}

/// Reads a callgrind profile (format version 1, compressed names, one
/// event: Ir, positions: instruction addresses). Function costs are
/// exclusive: the cost line that follows each `calls=` line is the
/// callee's inclusive cost, kept with the call. Functions are told apart
/// by name (the profile's `fn=`), which in the profiles the bench reads
/// are unique: C symbols, Rust-mangled names and the addresses callgrind
/// gives code without symbols.
///
/// One function of about 85 lines: one pass over a line-oriented format
/// whose meaning depends on the lines before (the current file, function
/// and pending call), kept in locals rather than spread over a parser type.
pub fn parse(text: &str) -> Dump {
    let mut trigger = String::new();
    let mut names: [HashMap<String, String>; 3] = Default::default();
    // ob/cob, fl/fi/fe/cfi/cfl, fn/cfn
    let mut costs: HashMap<(String, String), u64> = HashMap::new();
    let mut calls: HashMap<(String, String), (u64, u64)> = HashMap::new();
    let mut instr: HashMap<(String, usize), u64> = HashMap::new();
    let (mut fl, mut func, mut cfn) = (String::new(), String::new(), String::new());
    let mut ob = String::new();
    let mut pending_calls: Option<u64> = None;
    let mut last = 0usize;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("desc: Trigger:") {
            let rest = rest.trim();
            trigger = rest
                .strip_prefix("Client Request:")
                .unwrap_or(rest)
                .trim()
                .to_owned();
            continue;
        }
        let Some(first) = line.bytes().next() else {
            continue;
        };
        if first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'*' {
            let mut fields = line.split_whitespace();
            let addr = fields
                .next()
                .and_then(|f| position(f, last))
                .unwrap_or(last);
            last = addr;
            let ir: u64 = fields.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            if let Some(n) = pending_calls.take() {
                let e = calls.entry((func.clone(), cfn.clone())).or_default();
                e.0 += n;
                e.1 += ir;
            } else {
                *costs.entry((fl.clone(), func.clone())).or_default() += ir;
                *instr.entry((ob.clone(), addr)).or_default() += ir;
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "ob" => ob = resolve(&mut names[0], value),
            "cob" => {
                resolve(&mut names[0], value);
            }
            "fl" => fl = resolve(&mut names[1], value),
            "fi" | "fe" | "cfi" | "cfl" => {
                resolve(&mut names[1], value);
            }
            "fn" => func = resolve(&mut names[2], value),
            "cfn" => cfn = resolve(&mut names[2], value),
            "calls" => {
                // The target position is relative to the last cost line
                // and does not move it.
                pending_calls = value.split_whitespace().next().and_then(|n| n.parse().ok());
            }
            _ => {}
        }
    }
    let mut functions: Vec<FnCost> = costs
        .into_iter()
        .filter(|(_, ir)| *ir > 0)
        .map(|((file, name), ir)| FnCost { file, name, ir })
        .collect();
    functions.sort_by(|a, b| b.ir.cmp(&a.ir).then_with(|| a.name.cmp(&b.name)));
    let mut calls: Vec<Call> = calls
        .into_iter()
        .map(|((caller, callee), (calls, inclusive))| Call {
            caller,
            callee,
            calls,
            inclusive,
        })
        .collect();
    calls.sort_by(|a, b| (&a.caller, &a.callee).cmp(&(&b.caller, &b.callee)));
    Dump {
        trigger,
        functions,
        calls,
        instr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_costs_calls_addresses_and_name_compression() {
        let text = "version: 1\ncreator: callgrind\ndesc: Trigger: Client Request: v1:w2\n\
            positions: instr\nevents: Ir\nob=(1) /bin/x\nfl=(1) /src/a.rs\nfn=(1) f\n0x1000 5\n\
            cfl=(2) /sim/q.rs\ncfn=(2) putq\ncalls=2 0x2000\n+4 100\n* 2\nfi=(3) /core/x.rs\n\
            +2 1\nfe=(1)\nfl=(2)\nfn=(2)\n0x2000 60\n+3 40\nfl=(1)\nfn=(1)\n0x1004 7\n\
            cfn=(2)\ncalls=1 +4092\n* 40\n";
        let d = parse(text);
        assert_eq!(d.trigger, "v1:w2");
        let get = |n: &str| d.functions.iter().find(|f| f.name == n).map(|f| f.ir);
        assert_eq!(get("f"), Some(15));
        assert_eq!(get("putq"), Some(100));
        assert_eq!(d.functions[0].file, "/sim/q.rs");
        assert_eq!(d.file_of("f"), Some("/src/a.rs"));
        assert_eq!(
            d.calls,
            vec![Call {
                caller: "f".into(),
                callee: "putq".into(),
                calls: 3,
                inclusive: 140
            }]
        );
        assert_eq!(d.at("/bin/x", 0x1000), 5);
        assert_eq!(d.at("/bin/x", 0x1004), 9);
        assert_eq!(d.at("/bin/x", 0x1006), 1);
        assert_eq!(d.at("/bin/x", 0x2000), 60);
        assert_eq!(d.at("/bin/x", 0x2003), 40);
        assert_eq!(d.at("/bin/y", 0x2003), 0);
        assert_eq!(
            d.in_range("/bin/x", 0x1000, 0x2000)
                .map(|(_, n)| n)
                .sum::<u64>(),
            15
        );
    }
}
