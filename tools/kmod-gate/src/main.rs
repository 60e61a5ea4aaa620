//! `kmod-gate <object> [--allowlist <file>] [--c-names <file>] [--max-frame <bytes>]`
//!
//! Checks an illumos amd64 kernel module for krtld compatibility, prints
//! its figures and every violation, and exits 0 when it passes, 1 when it
//! does not, and 2 when it cannot run (bad arguments, unreadable files).

use std::path::PathBuf;
use std::process::ExitCode;

use kmod_gate::{Allowlist, CNames, Options, check_with};

const USAGE: &str = "usage: kmod-gate <object> [--allowlist <file>] [--c-names <file>] \
    [--max-frame <bytes>]\n\
    \n\
    Without --allowlist, no undefined symbol is allowed. --c-names lists the names (each a \
    function or an object) the module must define.";

struct Args {
    object: PathBuf,
    allowlist: Option<PathBuf>,
    c_names: Option<PathBuf>,
    options: Options,
}

fn parse_args() -> Result<Args, String> {
    let mut object = None;
    let mut allowlist = None;
    let mut c_names = None;
    let mut options = Options::default();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--allowlist") => {
                allowlist = Some(PathBuf::from(
                    args.next().ok_or("--allowlist needs a file")?,
                ));
            }
            Some("--c-names") => {
                c_names = Some(PathBuf::from(args.next().ok_or("--c-names needs a file")?));
            }
            Some("--max-frame") => {
                let value = args.next().ok_or("--max-frame needs a number of bytes")?;
                options.max_frame = value
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--max-frame needs a number of bytes")?;
            }
            Some("-h" | "--help") => return Err(String::new()),
            Some(flag) if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if object.is_none() => object = Some(PathBuf::from(arg)),
            _ => return Err("more than one object given".to_owned()),
        }
    }
    Ok(Args {
        object: object.ok_or("no object given")?,
        allowlist,
        c_names,
        options,
    })
}

fn main() -> ExitCode {
    let mut args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("kmod-gate: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let allowlist = match &args.allowlist {
        Some(path) => match Allowlist::from_file(path) {
            Ok(list) => list,
            Err(err) => {
                eprintln!("kmod-gate: cannot read allowlist {}: {err}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Allowlist::empty(),
    };
    if let Some(path) = &args.c_names {
        match CNames::from_file(path) {
            Ok(list) => args.options.c_names = list,
            Err(err) => {
                eprintln!("kmod-gate: cannot read C names {}: {err}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let bytes = match std::fs::read(&args.object) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("kmod-gate: cannot read {}: {err}", args.object.display());
            return ExitCode::from(2);
        }
    };
    let report = check_with(&bytes, &allowlist, &args.options);
    println!(
        "kmod-gate: {} ({} B, allowlist of {} symbols, {} C names required)",
        args.object.display(),
        bytes.len(),
        allowlist.len(),
        args.options.c_names.len()
    );
    print!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
