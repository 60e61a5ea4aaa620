//! The kernel a driver is linked against: every function the simulator
//! exports with C linkage, by name and address.

use std::ffi::{c_int, c_void};

use crate::ddi::{self, driverops_addr};
use crate::link;
use crate::put;
use crate::sched;
use crate::{msg, queue};

/// Every kernel symbol the simulator exports, with its address: what a
/// userland module loader needs to resolve a driver's undefined symbols.
pub fn kernel_symbols() -> Vec<(&'static str, *const c_void)> {
    macro_rules! syms {
        ($($f:path),* $(,)?) => {
            vec![$((stringify!($f).rsplit("::").next().unwrap(), $f as *const c_void)),*]
        };
    }
    let mut v = syms![
        queue::WR,
        queue::RD,
        queue::OTHERQ,
        msg::allocb,
        msg::freeb,
        msg::freemsg,
        msg::copyb,
        msg::dupb,
        msg::dupmsg,
        msg::msgdsize,
        msg::msgpullup,
        msg::mexchange,
        msg::miocack,
        msg::miocnak,
        msg::miocpullup,
        queue::putq,
        queue::putbq,
        queue::getq,
        queue::rmvq,
        queue::flushq,
        queue::flushband,
        queue::canput,
        queue::bcanput,
        queue::canputnext,
        queue::bcanputnext,
        put::putnext,
        put::put,
        put::qreply,
        sched::qenable,
        put::putnextctl,
        put::putnextctl1,
        put::putctl,
        put::putctl1,
        link::qprocson,
        link::qprocsoff,
        ddi::mod_install,
        ddi::mod_remove,
        ddi::mod_info,
        ddi::ddi_create_minor_node,
        ddi::ddi_remove_minor_node,
        ddi::nulldev,
        ddi::nodev,
        ddi::nochpoll,
        ddi::ddi_prop_op,
        ddi::ddi_quiesce_not_supported,
        ddi::getminor,
        ddi::getmajor,
        ddi::makedevice,
        ddi::drv_priv,
        ddi::getzoneid,
        ddi::zone_find_by_id,
        ddi::zone_rele,
        ddi::valid_ephemeral_uid,
        ddi::valid_ephemeral_gid,
        ddi::mutex_enter,
        ddi::mutex_exit,
        ddi::cv_wait,
        ddi::cv_broadcast,
        ddi::cv_signal,
        ddi::ptms_init,
        ddi::pt_ttys_alloc,
        ddi::ptms_close,
        ddi::ptms_attach_subsidiary,
        ddi::assfail,
    ];
    v.push(("mod_driverops", driverops_addr() as *const c_void));
    v.push(("cmn_err", cmn_err as *const c_void));
    v
}

unsafe extern "C" {
    fn cmn_err(level: c_int, fmt: *const std::ffi::c_char, ...);
}
