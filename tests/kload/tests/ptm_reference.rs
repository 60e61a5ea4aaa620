//! The loader against a known-good C kernel object: the illumos `ptm.c`
//! (path from `PTM_REFERENCE_C`), compiled with the illumos kernel flags
//! against the project's `include/`, loaded with a resolver of recording
//! stubs.  `_init` must hand `mod_install` a modlinkage whose pointers --
//! every one of them produced by a relocation -- lead to the right
//! `dev_ops`/`cb_ops`, and `_info`/`_fini` must see the same modlinkage.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ptm_kload::{Binding, LoadOptions, LoadedModule, load_file};
use ptm_test_support::build_c_reference_kobj;

/// Everything the stubs saw, in order.
static CALLS: Mutex<Vec<Call>> = Mutex::new(Vec::new());

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Stub(&'static str),
    ModInstall(usize),
    ModInfo(usize, usize),
    ModRemove(usize),
    CreateMinorNode {
        dip: usize,
        name: String,
        spec_type: c_int,
        node_type: String,
        flag: c_int,
    },
}

fn record(call: Call) {
    CALLS.lock().unwrap_or_else(|e| e.into_inner()).push(call);
}

fn take_calls() -> Vec<Call> {
    std::mem::take(&mut *CALLS.lock().unwrap_or_else(|e| e.into_inner()))
}

extern "C" fn mod_install(ml: *mut c_void) -> c_int {
    record(Call::ModInstall(ml as usize));
    0
}

extern "C" fn mod_info(ml: *mut c_void, mi: *mut c_void) -> c_int {
    record(Call::ModInfo(ml as usize, mi as usize));
    1
}

extern "C" fn mod_remove(ml: *mut c_void) -> c_int {
    record(Call::ModRemove(ml as usize));
    0
}

extern "C" fn ddi_create_minor_node(
    dip: *mut c_void,
    name: *const c_char,
    spec_type: c_int,
    _minor: u32,
    node_type: *const c_char,
    flag: c_int,
) -> c_int {
    // SAFETY: ptm passes NUL-terminated string literals from its rodata.
    let (name, node_type) = unsafe {
        (
            CStr::from_ptr(name).to_string_lossy().into_owned(),
            CStr::from_ptr(node_type).to_string_lossy().into_owned(),
        )
    };
    record(Call::CreateMinorNode {
        dip: dip as usize,
        name,
        spec_type,
        node_type,
        flag,
    });
    0 // DDI_SUCCESS
}

/// Defines one recording stub per name, returning 0.
macro_rules! stubs {
    ($($name:ident),* $(,)?) => {
        #[allow(non_snake_case)] // the kernel's names, e.g. WR
        mod stub {
            $(
                pub extern "C" fn $name() -> usize {
                    super::record(super::Call::Stub(stringify!($name)));
                    0
                }
            )*
        }
        const STUBS: &[(&str, extern "C" fn() -> usize)] = &[$((stringify!($name), stub::$name)),*];
    };
}

stubs!(
    WR,
    allocb,
    bcanputnext,
    cv_broadcast,
    cv_wait,
    ddi_prop_op,
    ddi_quiesce_not_supported,
    ddi_remove_minor_node,
    drv_priv,
    flushband,
    flushq,
    freemsg,
    getmajor,
    getminor,
    getq,
    makedevice,
    mexchange,
    miocack,
    miocnak,
    miocpullup,
    mutex_enter,
    mutex_exit,
    nochpoll,
    nodev,
    nulldev,
    pt_ttys_alloc,
    ptms_attach_subsidiary,
    ptms_close,
    ptms_init,
    putbq,
    putnext,
    putnextctl,
    putq,
    qenable,
    qprocsoff,
    qprocson,
    qreply,
    valid_ephemeral_gid,
    valid_ephemeral_uid,
    zone_find_by_id,
    zone_rele,
    // DEBUG builds only:
    assfail,
    cmn_err,
    ptms_log,
    ptms_logp,
);

/// `struct mod_ops mod_driverops` (24 bytes), as data.
static MOD_DRIVEROPS: [u64; 3] = [0; 3];

fn resolve(name: &str) -> Option<*const ()> {
    match name {
        "mod_install" => Some(mod_install as *const ()),
        "mod_info" => Some(mod_info as *const ()),
        "mod_remove" => Some(mod_remove as *const ()),
        "ddi_create_minor_node" => Some(ddi_create_minor_node as *const ()),
        "mod_driverops" => Some(MOD_DRIVEROPS.as_ptr().cast()),
        _ => STUBS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f as *const ()),
    }
}

fn reference_c() -> Option<PathBuf> {
    match std::env::var_os("PTM_REFERENCE_C") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            // Written to the process's stderr directly so that the note is
            // visible even though the test harness captures print!/eprint!.
            let _ = writeln!(std::io::stderr(), "SKIPPED: PTM_REFERENCE_C not set");
            None
        }
    }
}

fn include_dir() -> PathBuf {
    ptm_test_support::repo_root().join("include")
}

/// # Safety
/// `addr + offset` must be readable for a `T`.
unsafe fn at<T: Copy>(addr: usize, offset: usize) -> T {
    // SAFETY: per the caller.
    unsafe { ((addr + offset) as *const T).read_unaligned() }
}

fn sym(m: &LoadedModule, name: &str) -> usize {
    m.symbol(name)
        .unwrap_or_else(|| panic!("module defines no {name}")) as usize
}

fn imported(m: &LoadedModule, name: &str) -> usize {
    m.import(name)
        .unwrap_or_else(|| panic!("module does not import {name}"))
        .address() as usize
}

/// Compiles ptm.c as a kernel object in `dir`.
fn build_reference(ptm_c: &Path, dir: &Path) -> PathBuf {
    let obj = dir.join("ptm");
    build_c_reference_kobj(ptm_c, &include_dir(), &obj).expect("compile ptm.c as a kernel object");
    obj
}

/// Loads the object with the recording stubs (hold [`common::lock`]).
fn load_reference(obj: &Path) -> LoadedModule {
    let resolver = resolve;
    let opts = LoadOptions::new(&resolver).data("mod_driverops", 24);
    // SAFETY: mod_driverops resolves to a 24-byte static.
    unsafe { load_file(obj, &opts) }.expect("load the C ptm object")
}

#[test]
fn c_reference_object_loads_and_its_linkage_reaches_mod_install_intact() {
    let Some(ptm_c) = reference_c() else {
        return;
    };
    let dir = common::tempdir();
    let obj = build_reference(&ptm_c, dir.path());

    // Precondition: the object only uses relocation types krtld applies
    // correctly, and everything it imports is stubbed.
    for r in common::relocations(&obj) {
        assert!(
            [
                object::elf::R_X86_64_64,
                object::elf::R_X86_64_PC32,
                object::elf::R_X86_64_PLT32,
                object::elf::R_X86_64_32S
            ]
            .contains(&r.r_type),
            "unexpected relocation {r:?}"
        );
    }

    let _g = common::lock();
    take_calls();
    let m = load_reference(&obj);

    // _init -> mod_install(&modlinkage), then ptms_init().
    // SAFETY: the stubs above are the kernel _init calls into.
    let rc = unsafe { m.call_init() }.expect("_init defined");
    assert_eq!(rc, 0);
    let calls = take_calls();
    let modlinkage = sym(&m, "modlinkage");
    assert_eq!(
        calls,
        vec![Call::ModInstall(modlinkage), Call::Stub("ptms_init")]
    );

    // SAFETY: `m` is ptm.c's object, loaded and initialised.
    unsafe {
        let dev_ops = check_modlinkage(&m, modlinkage);
        let cb_ops = check_dev_ops(&m, dev_ops);
        check_cb_ops(&m, cb_ops);
        check_attach_and_getinfo(&m, dev_ops);
    }

    // _info(&modinfo) -> mod_info(&modlinkage, &modinfo)
    let mut modinfo = [0u64; 432 / 8];
    // SAFETY: the stubs above are the kernel _info calls into; modinfo is
    // as large as illumos's struct modinfo.
    let rc = unsafe { m.call_info(&mut modinfo) }.expect("_info defined");
    assert_eq!(rc, 1);
    assert_eq!(
        take_calls(),
        vec![Call::ModInfo(modlinkage, modinfo.as_ptr() as usize)]
    );

    // _fini -> mod_remove(&modlinkage)
    // SAFETY: as for _init.
    let rc = unsafe { m.call_fini() }.expect("_fini defined");
    assert_eq!(rc, 0);
    assert_eq!(take_calls(), vec![Call::ModRemove(modlinkage)]);
}

// The checks below read ptm's static structures in the loaded data and
// text areas (offsets from docs/abi.md §5, §6). Each is `unsafe` with
// one contract: `m` is ptm.c's object, loaded, and the address passed in
// is the structure named.

/// struct modlinkage: ml_rev == MODREV_1, ml_linkage[0] = &modldrv, NULL;
/// struct modldrv: &mod_driverops, linkinfo, &ptm_ops. Returns the
/// dev_ops.
///
/// # Safety
/// See above.
unsafe fn check_modlinkage(m: &LoadedModule, modlinkage: usize) -> usize {
    assert!(m.contains(modlinkage as *const ()));
    // SAFETY: modlinkage lies in the module (checked), and every pointer
    // read from it is checked to be the structure it should be before it
    // is read in turn.
    unsafe {
        assert_eq!(at::<c_int>(modlinkage, 0), 1, "ml_rev");
        let modldrv: usize = at(modlinkage, 8);
        assert_eq!(modldrv, sym(m, "modldrv"));
        assert_eq!(at::<usize>(modlinkage, 16), 0, "ml_linkage NULL-terminated");

        let drv_modops: usize = at(modldrv, 0);
        assert_eq!(drv_modops, imported(m, "mod_driverops"));
        assert_eq!(
            m.import("mod_driverops").unwrap().binding(),
            Binding::Direct
        );
        assert_eq!(drv_modops, MOD_DRIVEROPS.as_ptr() as usize);
        let linkinfo = CStr::from_ptr(at::<*const c_char>(modldrv, 8));
        assert_eq!(linkinfo.to_str().unwrap(), "Pseudo-Terminal Manager Driver");
        let dev_ops: usize = at(modldrv, 16);
        assert_eq!(dev_ops, sym(m, "ptm_ops"));
        dev_ops
    }
}

/// struct dev_ops. Returns the cb_ops.
///
/// # Safety
/// See above.
unsafe fn check_dev_ops(m: &LoadedModule, dev_ops: usize) -> usize {
    // SAFETY: dev_ops is ptm_ops in the loaded module (the caller's
    // contract); every field read lies within it.
    unsafe {
        assert_eq!(at::<c_int>(dev_ops, 0), 4, "devo_rev == DEVO_REV");
        assert_eq!(at::<c_int>(dev_ops, 4), 0, "devo_refcnt");
        assert_eq!(at::<usize>(dev_ops, 8), sym(m, "ptm_devinfo"));
        assert_eq!(at::<usize>(dev_ops, 16), imported(m, "nulldev"));
        assert_eq!(at::<usize>(dev_ops, 24), imported(m, "nulldev"));
        assert_eq!(at::<usize>(dev_ops, 32), sym(m, "ptm_attach"));
        assert_eq!(at::<usize>(dev_ops, 40), sym(m, "ptm_detach"));
        assert_eq!(at::<usize>(dev_ops, 48), imported(m, "nodev"));
        let cb_ops: usize = at(dev_ops, 56);
        assert_eq!(cb_ops, sym(m, "cb_ptm_ops"));
        assert_eq!(at::<usize>(dev_ops, 64), 0, "devo_bus_ops");
        assert_eq!(at::<usize>(dev_ops, 72), 0, "devo_power");
        assert_eq!(
            at::<usize>(dev_ops, 80),
            imported(m, "ddi_quiesce_not_supported")
        );
        cb_ops
    }
}

/// struct cb_ops, then streamtab -> qinit -> module_info; and the cb_open
/// slot is a working trampoline to the nulldev stub.
///
/// # Safety
/// See above.
unsafe fn check_cb_ops(m: &LoadedModule, cb_ops: usize) {
    // SAFETY: cb_ops is cb_ptm_ops in the loaded module (the caller's
    // contract); each pointer read from it is checked to be the structure
    // it should be before it is read in turn; cb_open is checked to be the
    // nulldev trampoline, a function of no arguments.
    unsafe {
        assert_eq!(at::<c_int>(cb_ops, 112), 0x20, "cb_flag == D_MP");
        assert_eq!(at::<c_int>(cb_ops, 116), 1, "cb_rev == CB_REV");
        assert_eq!(at::<usize>(cb_ops, 0), imported(m, "nulldev"), "cb_open");
        assert_eq!(at::<usize>(cb_ops, 88), imported(m, "nochpoll"));
        assert_eq!(at::<usize>(cb_ops, 96), imported(m, "ddi_prop_op"));
        let streamtab: usize = at(cb_ops, 104);
        assert_eq!(streamtab, sym(m, "ptminfo"));

        let rinit: usize = at(streamtab, 0);
        let winit: usize = at(streamtab, 8);
        assert_eq!(rinit, sym(m, "ptmrint"));
        assert_eq!(winit, sym(m, "ptmwint"));
        assert_eq!(at::<usize>(rinit, 0), 0, "read side has no put procedure");
        assert_eq!(at::<usize>(rinit, 8), sym(m, "ptmrsrv"));
        assert_eq!(at::<usize>(rinit, 16), sym(m, "ptmopen"));
        assert_eq!(at::<usize>(rinit, 24), sym(m, "ptmclose"));
        assert_eq!(at::<usize>(winit, 0), sym(m, "ptmwput"));
        assert_eq!(at::<usize>(winit, 8), sym(m, "ptmwsrv"));
        let minfo: usize = at(rinit, 40);
        assert_eq!(minfo, sym(m, "ptm_info"));
        assert_eq!(at::<usize>(winit, 40), minfo);
        assert_eq!(at::<u16>(minfo, 0), 0xdead, "mi_idnum");
        assert_eq!(
            CStr::from_ptr(at::<*const c_char>(minfo, 8)).to_str(),
            Ok("ptm")
        );

        let cb_open: extern "C" fn() -> usize = std::mem::transmute(at::<usize>(cb_ops, 0));
        assert_eq!(cb_open(), 0);
        assert_eq!(take_calls(), vec![Call::Stub("nulldev")]);
        assert_eq!(
            m.import_at(at::<*const ()>(cb_ops, 0)).map(|i| i.name()),
            Some("nulldev")
        );
    }
}

/// devo_attach(dip, DDI_ATTACH) creates the two minor nodes (string
/// literals reached by 32S) and stores the dip (PC32 into .bss);
/// devo_getinfo(DDI_INFO_DEVT2DEVINFO) reads it back.
///
/// # Safety
/// See above.
unsafe fn check_attach_and_getinfo(m: &LoadedModule, dev_ops: usize) {
    type Attach = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
    type GetInfo = unsafe extern "C" fn(*mut c_void, c_int, *mut c_void, *mut *mut c_void) -> c_int;
    // SAFETY: dev_ops is ptm_ops (the caller's contract), whose slots 8 and
    // 32 check_dev_ops found to be ptm_devinfo and ptm_attach, of these
    // types; they call only the recording stubs; ptm_dip is in .bss.
    unsafe {
        let attach: Attach = std::mem::transmute(at::<usize>(dev_ops, 32));
        let getinfo: GetInfo = std::mem::transmute(at::<usize>(dev_ops, 8));
        let mut result: *mut c_void = std::ptr::null_mut();
        assert_eq!(
            getinfo(std::ptr::null_mut(), 0, std::ptr::null_mut(), &mut result),
            -1,
            "DDI_FAILURE before attach"
        );
        let dip = 0x1234_5678usize as *mut c_void;
        assert_eq!(attach(dip, 0), 0, "DDI_SUCCESS");
        let node = |name: &str, flag| Call::CreateMinorNode {
            dip: dip as usize,
            name: name.to_owned(),
            spec_type: 0x2000,
            node_type: "ddi_pseudo".to_owned(),
            flag,
        };
        assert_eq!(take_calls(), vec![node("ptmajor", 0), node("ptmx", 1)]);
        assert_eq!(
            getinfo(std::ptr::null_mut(), 0, std::ptr::null_mut(), &mut result),
            0
        );
        assert_eq!(result, dip);
        assert_eq!(at::<usize>(sym(m, "ptm_dip"), 0), dip as usize);
    }
}

#[test]
fn c_reference_object_imports_only_what_the_abi_doc_lists() {
    let Some(ptm_c) = reference_c() else {
        return;
    };
    let dir = common::tempdir();
    let obj = build_reference(&ptm_c, dir.path());
    let _g = common::lock();
    let m = load_reference(&obj);
    let mut names: Vec<&str> = m.imports().iter().map(|i| i.name()).collect();
    names.sort_unstable();
    // docs/abi.md section 3, non-DEBUG build: 46 symbols.
    assert_eq!(names.len(), 46, "{names:?}");
    for i in m.imports() {
        let expected = if i.name() == "mod_driverops" {
            Binding::Direct
        } else {
            Binding::Trampoline
        };
        assert_eq!(i.binding(), expected, "{}", i.name());
    }
    assert!(m.text().addr + m.text().size <= 0x8000_0000);
    assert!(m.data().addr + m.data().size <= 0x8000_0000);
    assert_eq!(m.depends_on(), None, "ptm declares no dependencies");
}
