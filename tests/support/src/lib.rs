//! What the test crates (and their build scripts) share, in one copy:
//!
//! * where things are: the repository root, the shipped module
//!   (`$PTM_KMOD`), a path named by an environment variable;
//! * running a tool and failing with everything it printed;
//! * compiling C as an illumos amd64 kernel object ([`cc`]), the C
//!   reference driver `ptm.c` included.

pub mod cc;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use cc::{
    ILLUMOS_INCLUDE_DIRS, ILLUMOS_MODULE_DEFS, KERNEL_CFLAGS, build_c_reference_kobj, c_compiler,
    compile_illumos_module, compile_kernel_object,
};

/// The repository root: every crate that uses this one sits two levels
/// below it, as this crate does (`tests/support`).
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The path in the environment variable `var`, if it is set and not empty;
/// a relative path is taken from the repository root.
pub fn env_path(var: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os(var).filter(|v| !v.is_empty())?);
    Some(if p.is_relative() {
        repo_root().join(p)
    } else {
        p
    })
}

/// The shipped module file and whether it was named explicitly:
/// `$PTM_KMOD` (see [`env_path`]), else `<repo>/target/kmod/ptm`, where
/// `make` puts it.
pub fn kmod_path() -> (PathBuf, bool) {
    match env_path("PTM_KMOD") {
        Some(p) => (p, true),
        None => (repo_root().join("target/kmod/ptm"), false),
    }
}

/// Runs `cmd` and returns what it wrote to stdout; panics with the command
/// and all it printed if it cannot be started or fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Links `inputs` into the relocatable object `out` with `ld -r` (the step
/// that makes one ET_REL object of many, as a kernel module is made),
/// `args` first; panics as [`run`] does.
pub fn ld_r<I>(args: &[&str], inputs: I, out: &Path)
where
    I: IntoIterator,
    I::Item: AsRef<std::ffi::OsStr>,
{
    run(Command::new("ld")
        .arg("-r")
        .args(args)
        .args(inputs)
        .arg("-o")
        .arg(out));
}
