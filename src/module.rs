//! Module glue: the static tables the kernel reads (module_info, qinit,
//! streamtab, cb_ops, dev_ops, modldrv, modlinkage), the loadable-module
//! entry points `_init`, `_fini` and `_info`, the DDI entry points attach,
//! detach and getinfo, and the `extern "C"` trampolines the STREAMS
//! framework calls, which turn raw pointers into the `ddi` types and call
//! the driver logic in `crate::driver`.
//!
//! The tables are laid out exactly as the C driver's (`DDI_DEFINE_STREAM_OPS`
//! with `D_MP`). Every table lives in `.data`, as in the C object: the
//! framework may write to the ops vectors (`devo_refcnt`), so they are
//! [`KernelTable`]s, i.e. interior-mutable statics.
//!
//! Naming: built for the kernel (`cfg(ptm_kernel)`, set by build.rs), every
//! table and function has the name ptm.c gives it (`ptm_info`, `ptmrint`,
//! `ptmwint`, `ptminfo`, `cb_ptm_ops`, `ptm_ops`, `modldrv`, `modlinkage`,
//! `ptm_dip`, `ptmopen`, ..., listed in `kmod/c-names.txt`, which the gate
//! checks), so that mdb's ptm module finds `ptmwint` and DTrace's fbt probes
//! read as they do for C; the link step makes all but `_init`, `_fini` and
//! `_info` local, as C's statics are. Built for a host (the test suite),
//! the names stay mangled, so that nothing clashes with the C `ptm.c` and
//! the simulated kernel linked into the same program; and since every
//! executable already has `_init`/`_fini` from the C runtime, the entry
//! points are exported as `ptm_rs_init`, `ptm_rs_fini`, `ptm_rs_info`
//! instead.

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void};
use core::mem::transmute;
use core::ptr::{self, null_mut};
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::ddi::{Errno, Message, PtTtys, Queue, ptms_init};
use crate::driver;
use crate::sys::{
    self, cb_ops, cred_t, dev_info_t, dev_ops, dev_t, mblk_t, modinfo, modldrv, modlinkage,
    module_info, qinit, queue_t, streamtab,
};

/// A static the kernel may read and write through the pointers we give it.
///
/// `#[repr(transparent)]` over `UnsafeCell<T>`, so a pointer to the table is
/// a pointer to the `T`, and the interior mutability keeps it in `.data`.
#[repr(transparent)]
pub struct KernelTable<T>(UnsafeCell<T>);

// SAFETY: the tables are only written by the kernel's module framework,
// which serialises module installation, removal and attach/detach; this
// code never writes them after initialisation.
unsafe impl<T> Sync for KernelTable<T> {}

impl<T> KernelTable<T> {
    const fn new(value: T) -> KernelTable<T> {
        KernelTable(UnsafeCell::new(value))
    }

    /// The address of the table, as the kernel sees it.
    pub const fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// The address of a [`KernelTable`] static as a pointer to its contents,
/// usable inside other statics' initialisers.
macro_rules! table_ptr {
    ($table:path, $t:ty) => {
        (&raw const $table).cast::<$t>().cast_mut()
    };
}

/// Puts one of the kernel's old-style (`int f()`) functions -- `nulldev`,
/// `nodev` -- into a typed ops slot, as C does implicitly. They ignore
/// their arguments, and on amd64 a callee may be passed more arguments than
/// it reads.
macro_rules! old_style {
    ($f:path as $slot:ty) => {
        // SAFETY: same-size function pointers; the callee takes no
        // parameters and returns an int, so any argument list is harmless
        // under the amd64 calling convention.
        Some(unsafe { transmute::<unsafe extern "C" fn() -> c_int, $slot>($f) })
    };
}

type OpenFn = unsafe extern "C" fn(*mut dev_t, c_int, c_int, *mut cred_t) -> c_int;
type CloseFn = unsafe extern "C" fn(dev_t, c_int, c_int, *mut cred_t) -> c_int;
type StrategyFn = unsafe extern "C" fn(*mut sys::buf) -> c_int;
type PrintFn = unsafe extern "C" fn(dev_t, *mut c_char) -> c_int;
type DumpFn = unsafe extern "C" fn(dev_t, sys::caddr_t, sys::daddr_t, c_int) -> c_int;
type RwFn = unsafe extern "C" fn(dev_t, *mut sys::uio, *mut cred_t) -> c_int;
type IoctlFn = unsafe extern "C" fn(dev_t, c_int, isize, c_int, *mut cred_t, *mut c_int) -> c_int;
type DevmapFn = unsafe extern "C" fn(
    dev_t,
    sys::devmap_cookie_t,
    sys::offset_t,
    usize,
    *mut usize,
    sys::uint_t,
) -> c_int;
type MmapFn = unsafe extern "C" fn(dev_t, sys::off_t, c_int) -> c_int;
type SegmapFn = unsafe extern "C" fn(
    dev_t,
    sys::off_t,
    *mut sys::as_,
    *mut sys::caddr_t,
    sys::off_t,
    sys::uint_t,
    sys::uint_t,
    sys::uint_t,
    *mut cred_t,
) -> c_int;
type AioFn = unsafe extern "C" fn(dev_t, *mut sys::aio_req, *mut cred_t) -> c_int;
type DipFn = unsafe extern "C" fn(*mut dev_info_t) -> c_int;
type ResetFn = unsafe extern "C" fn(*mut dev_info_t, sys::ddi_reset_cmd_t) -> c_int;

/// Module name and the manager queues' packet sizes and water marks.
#[cfg_attr(ptm_kernel, unsafe(export_name = "ptm_info"))]
static PTM_INFO: KernelTable<module_info> = KernelTable::new(module_info {
    mi_idnum: 0xdead,
    mi_idname: c"ptm".as_ptr().cast_mut(),
    mi_minpsz: 0,
    mi_maxpsz: 512,
    mi_hiwat: 512,
    mi_lowat: 128,
});

/// Read side: no put procedure (nothing is ever queued there), a service
/// routine for back-enabling, and the open/close routines.
#[cfg_attr(ptm_kernel, unsafe(export_name = "ptmrint"))]
static PTMRINT: KernelTable<qinit> = KernelTable::new(qinit {
    qi_putp: None,
    qi_srvp: Some(ptmrsrv),
    qi_qopen: Some(ptmopen),
    qi_qclose: Some(ptmclose),
    qi_qadmin: None,
    qi_minfo: table_ptr!(PTM_INFO, module_info),
    qi_mstat: null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

/// Write side: put and service procedures.
#[cfg_attr(ptm_kernel, unsafe(export_name = "ptmwint"))]
static PTMWINT: KernelTable<qinit> = KernelTable::new(qinit {
    qi_putp: Some(ptmwput),
    qi_srvp: Some(ptmwsrv),
    qi_qopen: None,
    qi_qclose: None,
    qi_qadmin: None,
    qi_minfo: table_ptr!(PTM_INFO, module_info),
    qi_mstat: null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

#[cfg_attr(ptm_kernel, unsafe(export_name = "ptminfo"))]
static PTMINFO: KernelTable<streamtab> = KernelTable::new(streamtab {
    st_rdinit: table_ptr!(PTMRINT, qinit),
    st_wrinit: table_ptr!(PTMWINT, qinit),
    st_muxrinit: null_mut(),
    st_muxwinit: null_mut(),
});

/// `cb_ptm_ops` of `DDI_DEFINE_STREAM_OPS`: a STREAMS driver's character
/// entry points are all placeholders; only `cb_str` and the flags matter.
#[cfg_attr(ptm_kernel, unsafe(export_name = "cb_ptm_ops"))]
static CB_PTM_OPS: KernelTable<cb_ops> = KernelTable::new(cb_ops {
    cb_open: old_style!(sys::nulldev as OpenFn),
    cb_close: old_style!(sys::nulldev as CloseFn),
    cb_strategy: old_style!(sys::nodev as StrategyFn),
    cb_print: old_style!(sys::nodev as PrintFn),
    cb_dump: old_style!(sys::nodev as DumpFn),
    cb_read: old_style!(sys::nodev as RwFn),
    cb_write: old_style!(sys::nodev as RwFn),
    cb_ioctl: old_style!(sys::nodev as IoctlFn),
    cb_devmap: old_style!(sys::nodev as DevmapFn),
    cb_mmap: old_style!(sys::nodev as MmapFn),
    cb_segmap: old_style!(sys::nodev as SegmapFn),
    cb_chpoll: Some(sys::nochpoll),
    cb_prop_op: Some(sys::ddi_prop_op),
    cb_str: table_ptr!(PTMINFO, streamtab),
    cb_flag: sys::D_MP,
    cb_rev: sys::CB_REV,
    cb_aread: old_style!(sys::nodev as AioFn),
    cb_awrite: old_style!(sys::nodev as AioFn),
});

/// `ptm_ops` of `DDI_DEFINE_STREAM_OPS`.
#[cfg_attr(ptm_kernel, unsafe(export_name = "ptm_ops"))]
static PTM_OPS: KernelTable<dev_ops> = KernelTable::new(dev_ops {
    devo_rev: sys::DEVO_REV,
    devo_refcnt: 0,
    devo_getinfo: Some(ptm_devinfo),
    devo_identify: old_style!(sys::nulldev as DipFn),
    devo_probe: old_style!(sys::nulldev as DipFn),
    devo_attach: Some(ptm_attach),
    devo_detach: Some(ptm_detach),
    devo_reset: old_style!(sys::nodev as ResetFn),
    devo_cb_ops: table_ptr!(CB_PTM_OPS, cb_ops),
    devo_bus_ops: null_mut(),
    devo_power: None,
    devo_quiesce: Some(sys::ddi_quiesce_not_supported),
});

/// The linkinfo is the C driver's "Pseudo-Terminal Manager Driver" with
/// the implementation named instead, so that `modinfo` shows which ptm is
/// loaded (at most MODMAXLINKINFOLEN - 1 = 31 characters).
#[cfg_attr(ptm_kernel, unsafe(export_name = "modldrv"))]
static MODLDRV: KernelTable<modldrv> = KernelTable::new(modldrv {
    drv_modops: &raw const sys::mod_driverops as *mut sys::mod_ops,
    drv_linkinfo: LINKINFO.as_ptr().cast_mut(),
    drv_dev_ops: table_ptr!(PTM_OPS, dev_ops),
});

#[cfg_attr(ptm_kernel, unsafe(export_name = "modlinkage"))]
static MODLINKAGE: KernelTable<modlinkage> = KernelTable::new(modlinkage {
    ml_rev: sys::MODREV_1,
    ml_linkage: [
        table_ptr!(MODLDRV, modldrv).cast::<c_void>(),
        null_mut(),
        null_mut(),
        null_mut(),
        null_mut(),
        null_mut(),
        null_mut(),
    ],
});

/// `drv_linkinfo`, as `modinfo` prints it.
pub const LINKINFO: &core::ffi::CStr = c"Pseudo-Terminal Manager (Rust)";
const _: () = assert!(LINKINFO.count_bytes() < sys::MODMAXLINKINFOLEN as usize);

/// Our devinfo node, set by attach (read by getinfo).
#[cfg_attr(ptm_kernel, unsafe(export_name = "ptm_dip"))]
static PTM_DIP: AtomicPtr<dev_info_t> = AtomicPtr::new(null_mut());

/// `_init`: installs the module; on success sets up the pty tables.
///
/// # Safety
///
/// Called by the module framework (modload), once, before any other entry.
#[cfg_attr(ptm_kernel, unsafe(export_name = "_init"))]
#[cfg_attr(not(ptm_kernel), unsafe(export_name = "ptm_rs_init"))]
pub unsafe extern "C" fn module_init() -> c_int {
    // SAFETY: the linkage table is a valid, fully initialised static.
    let rc = unsafe { sys::mod_install(MODLINKAGE.get()) };
    if rc == 0 {
        ptms_init();
    }
    rc
}

/// `_fini`: removes the module (fails while the driver is busy).
///
/// # Safety
///
/// Called by the module framework (modunload).
#[cfg_attr(ptm_kernel, unsafe(export_name = "_fini"))]
#[cfg_attr(not(ptm_kernel), unsafe(export_name = "ptm_rs_fini"))]
pub unsafe extern "C" fn module_fini() -> c_int {
    // SAFETY: the linkage table is a valid static, as installed by _init.
    unsafe { sys::mod_remove(MODLINKAGE.get()) }
}

/// `_info`: reports the module's linkage.
///
/// # Safety
///
/// `modinfop` must be a valid `struct modinfo` to fill in (the framework's).
#[cfg_attr(ptm_kernel, unsafe(export_name = "_info"))]
#[cfg_attr(not(ptm_kernel), unsafe(export_name = "ptm_rs_info"))]
pub unsafe extern "C" fn module_info_entry(modinfop: *mut modinfo) -> c_int {
    // SAFETY: valid linkage table; modinfop is the caller's (see above).
    unsafe { sys::mod_info(MODLINKAGE.get(), modinfop) }
}

/// attach(9E): creates the `ptmajor` node and the `ptmx` clone node.
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
unsafe extern "C" fn ptm_attach(devi: *mut dev_info_t, cmd: sys::ddi_attach_cmd_t) -> c_int {
    if cmd != sys::DDI_ATTACH {
        return sys::DDI_FAILURE;
    }
    let create = |name: &core::ffi::CStr, flag| {
        // SAFETY: devi is the node the framework is attaching; the strings
        // are NUL-terminated and static.
        unsafe {
            sys::ddi_create_minor_node(
                devi,
                name.as_ptr(),
                sys::S_IFCHR,
                0,
                sys::DDI_PSEUDO.as_ptr().cast(),
                flag,
            ) != sys::DDI_FAILURE
        }
    };
    if !(create(c"ptmajor", 0) && create(c"ptmx", sys::CLONE_DEV)) {
        // SAFETY: same node; a NULL name removes all its minor nodes.
        unsafe { sys::ddi_remove_minor_node(devi, ptr::null()) };
        return sys::DDI_FAILURE;
    }
    PTM_DIP.store(devi, Ordering::Relaxed);
    sys::DDI_SUCCESS
}

/// detach(9E): removes the minor nodes.
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
unsafe extern "C" fn ptm_detach(devi: *mut dev_info_t, cmd: sys::ddi_detach_cmd_t) -> c_int {
    if cmd != sys::DDI_DETACH {
        return sys::DDI_FAILURE;
    }
    // SAFETY: devi is the node being detached; NULL removes all minors.
    unsafe { sys::ddi_remove_minor_node(devi, ptr::null()) };
    sys::DDI_SUCCESS
}

/// getinfo(9E): the one devinfo node, and instance 0.
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
unsafe extern "C" fn ptm_devinfo(
    _dip: *mut dev_info_t,
    infocmd: sys::ddi_info_cmd_t,
    _arg: *mut c_void,
    result: *mut *mut c_void,
) -> c_int {
    let value = match infocmd {
        sys::DDI_INFO_DEVT2DEVINFO => {
            let dip = PTM_DIP.load(Ordering::Relaxed);
            if dip.is_null() {
                return sys::DDI_FAILURE;
            }
            dip.cast::<c_void>()
        }
        sys::DDI_INFO_DEVT2INSTANCE => null_mut(),
        _ => return sys::DDI_FAILURE,
    };
    // SAFETY: the framework passes a valid result pointer.
    unsafe { *result = value };
    sys::DDI_SUCCESS
}

/// qi_qopen: the framework's call into `driver::ptmopen`.
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
unsafe extern "C" fn ptmopen(
    rqp: *mut queue_t,
    devp: *mut dev_t,
    oflag: c_int,
    sflag: c_int,
    _credp: *mut cred_t,
) -> c_int {
    // SAFETY: the framework passes the new stream's read queue, valid (and
    // not NULL) for the whole open, and a valid dev_t to update.
    let (rqp, devp) = unsafe { (Queue::from_entry(rqp), &mut *devp) };
    Errno::result_to_c(driver::ptmopen(rqp, devp, oflag, sflag))
}

/// qi_qclose: the framework's call into `driver::ptmclose`.
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
unsafe extern "C" fn ptmclose(rqp: *mut queue_t, _flag: c_int, _credp: *mut cred_t) -> c_int {
    // SAFETY: the framework passes our read queue, valid for the close.
    let rqp = unsafe { Queue::from_entry(rqp) };
    // SAFETY: close is only called for a stream whose open succeeded, so
    // q_ptr holds the pty ptmopen stored; this close gives it back.
    let ptmp = unsafe { PtTtys::of_open_stream(rqp) };
    driver::ptmclose(rqp, ptmp);
    0
}

/// qi_putp of the write side: the framework's call into `driver::ptmwput`.
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
unsafe extern "C" fn ptmwput(qp: *mut queue_t, mp: *mut mblk_t) -> c_int {
    // SAFETY: the framework passes our write queue, valid for the call, and
    // hands over a message on no queue; neither is ever NULL.
    let (qp, mp) = unsafe { (Queue::from_entry(qp), Message::from_entry(mp)) };
    // SAFETY: put and service procedures only run between ptmopen's
    // qprocson and ptmclose's qprocsoff, while q_ptr holds the pty.
    let ptmp = unsafe { PtTtys::of_open_stream(qp) };
    driver::ptmwput(qp, ptmp, mp);
    // The framework ignores a put procedure's value; ptm.c returns 0.
    0
}

/// qi_srvp of the read side: the framework's call into `driver::ptmrsrv`.
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
unsafe extern "C" fn ptmrsrv(qp: *mut queue_t) -> c_int {
    // SAFETY: the framework passes our read queue, valid for the call.
    let qp = unsafe { Queue::from_entry(qp) };
    // SAFETY: as for ptmwput.
    let ptmp = unsafe { PtTtys::of_open_stream(qp) };
    driver::ptmrsrv(&ptmp);
    0
}

/// qi_srvp of the write side: the framework's call into `driver::ptmwsrv`.
#[cfg_attr(ptm_kernel, unsafe(no_mangle))]
unsafe extern "C" fn ptmwsrv(qp: *mut queue_t) -> c_int {
    // SAFETY: the framework passes our write queue, valid for the call.
    let qp = unsafe { Queue::from_entry(qp) };
    // SAFETY: as for ptmwput.
    let ptmp = unsafe { PtTtys::of_open_stream(qp) };
    driver::ptmwsrv(qp, &ptmp);
    0
}
