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

/// `CALLGRIND_TOGGLE_COLLECT`.
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
    #[allow(dead_code)] // kept for debugging output
    pub object: String,
    pub file: String,
    pub name: String,
    pub ir: u64,
}

/// One callgrind dump.
#[derive(Debug)]
pub struct Dump {
    /// The `DUMP_STATS_AT` name (from the `desc: Trigger:` line).
    pub trigger: String,
    pub functions: Vec<FnCost>,
}

/// Reads a callgrind profile (format version 1, compressed names, one
/// event: Ir). Costs are exclusive: the inclusive cost line that follows
/// each `calls=` line is not the caller's own.
pub fn parse(text: &str) -> Dump {
    let mut trigger = String::new();
    let mut names: [HashMap<String, String>; 3] = Default::default();
    // ob/cob, fl/fi/fe/cfi/cfl, fn/cfn
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
    let mut costs: HashMap<(String, String, String), u64> = HashMap::new();
    let (mut ob, mut fl, mut func) = (String::new(), String::new(), String::new());
    let mut skip_next_cost = false;
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
            if skip_next_cost {
                skip_next_cost = false;
                continue;
            }
            let ir: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            *costs
                .entry((ob.clone(), fl.clone(), func.clone()))
                .or_default() += ir;
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
            "cfn" => {
                resolve(&mut names[2], value);
            }
            "calls" => skip_next_cost = true,
            _ => {}
        }
    }
    let mut functions: Vec<FnCost> = costs
        .into_iter()
        .filter(|(_, ir)| *ir > 0)
        .map(|((object, file, name), ir)| FnCost {
            object,
            file,
            name,
            ir,
        })
        .collect();
    functions.sort_by(|a, b| b.ir.cmp(&a.ir).then_with(|| a.name.cmp(&b.name)));
    Dump { trigger, functions }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_costs_and_name_compression() {
        let text = "version: 1\ncreator: callgrind\ndesc: Trigger: Client Request: v1:w2\n\
            events: Ir\nob=(1) /bin/x\nfl=(1) /src/a.rs\nfn=(1) f\n10 5\n\
            cfl=(2) /sim/q.rs\ncfn=(2) putq\ncalls=1 3\n3 100\n+1 2\nfi=(3) /core/x.rs\n\
            4 1\nfe=(1)\nfl=(2)\nfn=(2)\n3 100\nfl=(1)\nfn=(1)\n12 7\n";
        let d = parse(text);
        assert_eq!(d.trigger, "v1:w2");
        let get = |n: &str| d.functions.iter().find(|f| f.name == n).map(|f| f.ir);
        assert_eq!(get("f"), Some(15));
        assert_eq!(get("putq"), Some(100));
        assert_eq!(d.functions[0].file, "/sim/q.rs");
    }
}
