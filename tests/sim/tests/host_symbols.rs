//! The host build of the driver (the `ptm` rlib linked into this test
//! program, beside the C `ptm.c` and the simulated kernel) defines no
//! global symbol under one of C's names: those names are the kernel
//! module's only (`cfg(ptm_kernel)`), and in ptm.c they are static. Its
//! entry points are global under names of their own, `ptm_rs_init` & co.

use std::path::Path;

use object::{Object, ObjectSymbol};

/// The names of kmod/c-names.txt (the first word of each line).
fn c_names() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kmod/c-names.txt");
    let text = std::fs::read_to_string(&path).expect("kmod/c-names.txt");
    text.lines()
        .filter_map(|l| l.split('#').next()?.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_global_symbol_of_this_program_has_one_of_cs_names() {
    // Keep the driver linked in.
    assert!(!ptm_sim::variants().is_empty());
    let exe = std::env::current_exe().expect("this test program");
    let bytes = std::fs::read(&exe).expect("read this test program");
    let file = object::File::parse(&*bytes).expect("parse this test program");
    let globals: Vec<&str> = file
        .symbols()
        .filter(|s| s.is_global() && s.is_definition())
        .filter_map(|s| s.name().ok())
        .collect();
    let names = c_names();
    assert!(names.iter().any(|n| n == "ptmwint"), "{names:?}");
    for name in &names {
        // The C runtime's own _init and _fini are in every program.
        if name == "_init" || name == "_fini" {
            continue;
        }
        assert!(
            !globals.contains(&name.as_str()),
            "`{name}` is a global symbol of {}: the host build must keep C's names to the \
             kernel module",
            exe.display()
        );
    }
    for entry in ["ptm_rs_init", "ptm_rs_fini", "ptm_rs_info"] {
        assert!(globals.contains(&entry), "{entry} is not a global symbol");
    }
}
