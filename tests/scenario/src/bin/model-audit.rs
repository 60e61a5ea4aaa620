//! `model-audit DIR`: compares the traces that illumos's C ptm.c left in
//! each world (`DIR/model/*.trace` and `DIR/real/*.trace`, written by the
//! scenario harness when `PTM_AUDIT_DIR=DIR`). The driver is the same in
//! both, so a scenario whose traces differ is one where the model does not
//! do what illumos's code does. Prints one line per scenario and the first
//! difference of each; exits 1 if a trace differs (but for the
//! differences explained below, which must still be seen) or a scenario
//! ran in only one world. Without the traces of both worlds (no
//! `ILLUMOS_SRC` or no `PTM_REFERENCE_C`) it says so in one `SKIPPED:`
//! line and passes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use ptm_scenario::harness::trace_diff;

/// Where the model does less than illumos on purpose: the scenario, and
/// why the model is not changed.
const EXPLAINED: &[(&str, &str)] = &[
    (
        "MODOPEN-and-direct-minor-opens",
        "the model pushes ptm as a module to reach ptmopen's MODOPEN refusal; illumos has no \
         STREAMS module entry for ptm, so I_PUSH never reaches the driver in the real world",
    ),
    (
        "PTSSTTY",
        "the model does not push ptem, ldterm and ttcompat at the subsidiary's open after \
         PTSSTTY (it has no STREAMS modules); the real world runs illumos's own, and the \
         session tests check what they do",
    ),
];

/// The traces of one world, by scenario.
fn traces(dir: &Path) -> Result<BTreeMap<String, Vec<String>>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = BTreeMap::new();
    for e in entries {
        let path = e.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.insert(name.to_string(), text.lines().map(String::from).collect());
    }
    Ok(out)
}

/// Scenarios of one world's own tests, with no counterpart in the other.
fn own_test(name: &str) -> bool {
    name.starts_with("smoke-")
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: model-audit DIR (the PTM_AUDIT_DIR of a test run)");
        return ExitCode::from(2);
    };
    let dir = Path::new(&dir);
    if !dir.join("model").is_dir() || !dir.join("real").is_dir() {
        println!(
            "SKIPPED: model audit: no C ptm.c traces of both worlds in {} (needs PTM_REFERENCE_C \
             and ILLUMOS_SRC)",
            dir.display()
        );
        return ExitCode::SUCCESS;
    }
    let (model, real) = match (traces(&dir.join("model")), traces(&dir.join("real"))) {
        (Ok(m), Ok(r)) => (m, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("model-audit: {e}");
            return ExitCode::from(2);
        }
    };
    let mut bad = 0;
    let mut explained = 0;
    let names = model
        .keys()
        .chain(real.keys().filter(|k| !model.contains_key(*k)));
    for name in names.filter(|n| !own_test(n)) {
        match (real.get(name), model.get(name)) {
            (Some(r), Some(m)) => {
                let why = EXPLAINED
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, why)| why);
                match (trace_diff("real", r, "model", m), why) {
                    (None, None) => println!("same      {name}"),
                    (None, Some(_)) => {
                        bad += 1;
                        println!("SAME NOW  {name}: listed as an explained difference; remove it");
                    }
                    (Some(_), Some(why)) => {
                        explained += 1;
                        println!("EXPLAINED {name}: {why}");
                    }
                    (Some(d), None) => {
                        bad += 1;
                        println!("DIFFERENT {name}: {d}");
                    }
                }
            }
            (r, _) => {
                bad += 1;
                let only = if r.is_some() { "real" } else { "model" };
                println!("ONLY-ONE  {name}: ran in the {only} world only");
            }
        }
    }
    println!(
        "model audit: {} scenarios in the model world, {} in the real world, {explained} \
         explained difference(s), {bad} disagreement(s)",
        model.len(),
        real.len()
    );
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
