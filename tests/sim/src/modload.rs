//! Loading and unloading the driver as modctl and the DDI do: `_info`
//! first, asked for the module's linkage (`MI_INFO_LINKAGE`), which modctl
//! keeps as the module's `mod_linkage`; then `_init` (which must
//! `mod_install` that very linkage -- `mod_install` accepts no other -- and
//! call `ptms_init`); then `devo_attach` (`DDI_ATTACH`) on a new dev_info
//! node, `devo_getinfo`, the `cb_ops` → `streamtab` every later open uses;
//! and `_fini`, after which modctl forgets the linkage.
//!
//! Everything here runs in the current world. A driver that does not
//! follow the rules fails the load with a message naming what it missed.

use std::ffi::c_void;
use std::ptr;

use ptm::sys::*;
use ptm_scenario::{Errno, PTM_MAJOR};

use crate::syscall::sys;
use crate::variant::Variant;
use crate::{ddi, world};

/// Loads `v` into the current world.
pub(crate) fn load(v: Variant) -> Result<(), String> {
    let dev_ops = init_and_install(v)?;
    let dip = ddi::new_dip();
    let old = world::with(|s| std::mem::replace(&mut s.dip, dip));
    if !old.is_null() {
        // SAFETY: the previous dev_info of this world (from `new_dip`),
        // no longer used after an unload.
        drop(unsafe { Box::from_raw(old as *mut u64) });
    }
    // SAFETY: `dev_ops` is the driver's static dev_ops (checked non-NULL
    // by mod_install); its entry points are called as the DDI does.
    let stab = unsafe { attach(v, &*dev_ops, dip)? };
    world::with(|s| s.streamtab = stab);
    let has_ptmx = world::with(|s| {
        s.minor_nodes
            .iter()
            .any(|n| n.name == "ptmx" && n.flag == CLONE_DEV && n.spec_type == S_IFCHR)
    });
    if !has_ptmx {
        return Err(format!(
            "{}: attach did not create the ptmx clone node",
            v.name
        ));
    }
    Ok(())
}

/// `_info` then `_init`, as modctl calls them; returns the dev_ops `_init`
/// installed.
fn init_and_install(v: Variant) -> Result<*mut dev_ops, String> {
    let linkage = module_linkage_of(v)?;
    world::with(|s| s.mod_linkage = linkage);
    // SAFETY: the variant's module entry point, called as modctl does.
    let rc = unsafe { (v.init)() };
    if rc != 0 {
        world::with(|s| s.mod_linkage = ptr::null_mut());
        return Err(format!("{}: _init returned {rc}", v.name));
    }
    let (dev_ops, installed, inited) = world::with(|s| {
        let m = s.module.as_ref();
        (m.map(|m| m.dev_ops), m.map(|m| m.linkage), s.ptms_inited)
    });
    if installed.is_some() && installed != Some(linkage) {
        return Err(format!(
            "{}: _init installed a linkage other than _info's",
            v.name
        ));
    }
    let Some(dev_ops) = dev_ops else {
        return Err(format!("{}: _init did not mod_install a driver", v.name));
    };
    if !inited {
        return Err(format!("{}: _init did not call ptms_init", v.name));
    }
    Ok(dev_ops)
}

/// modctl's first call into a loaded module: `_info` with
/// `MI_INFO_LINKAGE`, whose `mi_base` is the module's linkage from then
/// on (`mod_getinfo` in `mod_load`).
fn module_linkage_of(v: Variant) -> Result<*mut modlinkage, String> {
    let mut mi = modinfo {
        mi_info: ddi::MI_INFO_LINKAGE,
        ..modinfo::default()
    };
    // SAFETY: the variant's `_info`, with a modinfo of its own.
    let rc = unsafe { (v.info)(&mut mi) };
    if rc == 0 {
        return Err(format!("{}: _info returned 0", v.name));
    }
    let linkage = mi.mi_base.cast::<modlinkage>();
    if linkage.is_null() {
        return Err(format!("{}: _info reported no linkage (mi_base)", v.name));
    }
    // SAFETY: mi_base is the module's static modlinkage (mod_info stores
    // the address it was handed).
    let rev = unsafe { (*linkage).ml_rev };
    if rev != MODREV_1 {
        return Err(format!("{}: the linkage's ml_rev is {rev}", v.name));
    }
    Ok(linkage)
}

/// `devo_attach` on `dip`, then `devo_getinfo` must map the ptm device to
/// that node and instance 0; returns the driver's streamtab.
///
/// # Safety
/// `d` must be the driver's dev_ops, `dip` this world's dev_info node.
unsafe fn attach(v: Variant, d: &dev_ops, dip: *mut c_void) -> Result<*mut streamtab, String> {
    if d.devo_rev != DEVO_REV {
        return Err(format!("{}: devo_rev {} != DEVO_REV", v.name, d.devo_rev));
    }
    let attach = d.devo_attach.ok_or("no devo_attach")?;
    // SAFETY: the caller's: the driver's attach on its node.
    if unsafe { attach(dip as *mut dev_info_t, DDI_ATTACH) } != DDI_SUCCESS {
        return Err(format!("{}: attach failed", v.name));
    }
    world::with(|s| s.attached = true);
    let getinfo = d.devo_getinfo.ok_or("no devo_getinfo")?;
    let dev = ddi::makedevice(PTM_MAJOR, 0) as *mut c_void;
    let mut res: *mut c_void = ptr::null_mut();
    // SAFETY: the driver's getinfo, with a result pointer to fill.
    let rc = unsafe { getinfo(dip as *mut dev_info_t, DDI_INFO_DEVT2DEVINFO, dev, &mut res) };
    if rc != DDI_SUCCESS || res != dip {
        return Err(format!(
            "{}: getinfo(DEVT2DEVINFO) is not the dev_info",
            v.name
        ));
    }
    let mut res: *mut c_void = ptr::dangling_mut::<c_void>();
    // SAFETY: as above.
    let rc = unsafe {
        getinfo(
            dip as *mut dev_info_t,
            DDI_INFO_DEVT2INSTANCE,
            dev,
            &mut res,
        )
    };
    if rc != DDI_SUCCESS || !res.is_null() {
        return Err(format!(
            "{}: getinfo(DEVT2INSTANCE) is not instance 0",
            v.name
        ));
    }
    // SAFETY: the driver's static cb_ops and streamtab.
    unsafe { streamtab_of(v, d.devo_cb_ops) }
}

/// The streamtab of `cb`, which must be an MT-safe STREAMS driver's with
/// open and close routines.
///
/// # Safety
/// `cb` must be NULL or a valid cb_ops whose streamtab pointers are NULL
/// or valid.
unsafe fn streamtab_of(v: Variant, cb: *mut cb_ops) -> Result<*mut streamtab, String> {
    if cb.is_null() {
        return Err(format!("{}: no cb_ops", v.name));
    }
    // SAFETY: the caller's.
    unsafe {
        if (*cb).cb_flag & D_MP == 0 {
            return Err(format!("{}: cb_flag lacks D_MP", v.name));
        }
        let stab = (*cb).cb_str;
        if stab.is_null() || (*stab).st_rdinit.is_null() || (*stab).st_wrinit.is_null() {
            return Err(format!("{}: cb_ops has no streamtab", v.name));
        }
        if (*(*stab).st_rdinit).qi_qopen.is_none() || (*(*stab).st_rdinit).qi_qclose.is_none() {
            return Err(format!("{}: read qinit lacks open/close", v.name));
        }
        Ok(stab)
    }
}

/// `modunload`: the variant's `_fini` (→ `mod_remove` → detach); EBUSY
/// while a pty is open.
pub(crate) fn unload(v: Variant) -> Result<(), Errno> {
    // SAFETY: the variant's `_fini`, called as modctl does.
    let rc = unsafe { (v.fini)() };
    sys("modunload ptm".into(), rc.to_string());
    if rc != 0 {
        return Err(Errno(rc));
    }
    world::with(|s| s.mod_linkage = ptr::null_mut());
    Ok(())
}
