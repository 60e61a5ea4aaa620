//! Compiling C into illumos amd64 kernel objects with the host gcc.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The illumos amd64 kernel code flags (the `cw`-translated subset that
/// matters for code generation: kernel code model, no red zone, no SIMD,
/// no PIC, frame pointers, no unwind tables, no builtins), plus the
/// warnings the illumos build enforces.
pub const KERNEL_CFLAGS: &[&str] = &[
    "-std=gnu99",
    "-nostdinc",
    "-ffreestanding",
    "-Wall",
    "-Wno-missing-braces",
    "-Werror",
    "-D_KERNEL",
    "-O2",
    "-mcmodel=kernel",
    "-mno-red-zone",
    "-mno-mmx",
    "-mno-sse",
    "-fno-pic",
    "-fno-pie",
    "-fno-omit-frame-pointer",
    "-fno-asynchronous-unwind-tables",
    "-fno-builtin",
];

/// The C compiler: `$CC` if set, else `gcc`.
pub fn c_compiler() -> OsString {
    std::env::var_os("CC")
        .filter(|cc| !cc.is_empty())
        .unwrap_or_else(|| "gcc".into())
}

/// Compiles `source` to the relocatable object `out` with
/// [`KERNEL_CFLAGS`], `-I` for each of `include_dirs`, and `extra_flags`.
/// On failure the error carries the compiler's output.
pub fn compile_kernel_object(
    source: &Path,
    include_dirs: &[&Path],
    extra_flags: &[&str],
    out: &Path,
) -> io::Result<()> {
    let cc = c_compiler();
    let mut cmd = Command::new(&cc);
    cmd.args(KERNEL_CFLAGS);
    for dir in include_dirs {
        let mut flag = OsString::from("-I");
        flag.push(dir.as_os_str());
        cmd.arg(flag);
    }
    cmd.args(extra_flags)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(out);
    let output = cmd.output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run {}: {e}", cc.to_string_lossy()),
        )
    })?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed ({}):\n{}{}",
            cmd,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// Compiles the C reference driver (`ptm.c`) against the project's
/// `include/` directory into an illumos kernel object at `out` -- the
/// "C kernel object" variant of the module, which the userland krtld
/// (`ptm-kload`) loads.
pub fn build_c_reference_kobj(ptm_c: &Path, include_dir: &Path, out: &Path) -> io::Result<()> {
    compile_kernel_object(ptm_c, &[include_dir], &[], out)
}

/// The preprocessor environment of an illumos amd64 kernel module (the
/// defines illumos's kernel makefiles give every 64-bit module).
pub const ILLUMOS_MODULE_DEFS: &[&str] = &[
    "-Dsun",
    "-D__sun",
    "-D__SVR4",
    "-D_SYSCALL32",
    "-D_SYSCALL32_IMPL",
    "-D_ELF64",
    "-D_DDI_STRICT",
];

/// The header directories of an amd64 kernel module, below illumos's
/// `usr/src`, in search order.
pub const ILLUMOS_INCLUDE_DIRS: &[&str] = &["uts/i86pc", "uts/intel", "uts/common", "common"];

/// Compiles `source` (a module of illumos's own, such as its `ptm.c`) to the
/// kernel object `out` as illumos builds a module: against the headers of
/// the illumos tree whose `usr/src` is `usr_src` ([`ILLUMOS_INCLUDE_DIRS`]),
/// with [`ILLUMOS_MODULE_DEFS`], then `extra_flags`. Warnings are not
/// errors: illumos's sources are compiled as they are.
pub fn compile_illumos_module(
    source: &Path,
    usr_src: &Path,
    extra_flags: &[&str],
    out: &Path,
) -> io::Result<()> {
    let include: Vec<PathBuf> = ILLUMOS_INCLUDE_DIRS
        .iter()
        .map(|d| usr_src.join(d))
        .collect();
    let include: Vec<&Path> = include.iter().map(PathBuf::as_path).collect();
    let mut flags = vec!["-Wno-error"];
    flags.extend_from_slice(ILLUMOS_MODULE_DEFS);
    flags.extend_from_slice(extra_flags);
    compile_kernel_object(source, &include, &flags, out)
}
