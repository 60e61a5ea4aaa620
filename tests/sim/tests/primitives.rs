//! The simulator's STREAMS primitives checked against the illumos rules
//! (docs/streams.md §1, §4), independently of any driver.

#![deny(clippy::undocumented_unsafe_blocks)]

use ptm_sim::{
    Pty, World, driverops_addr, kernel_symbols, require_c_oracle, rust_driver, sys, variants,
};

unsafe extern "C" {
    // Exported by the simulator; not in the project header.
    fn canput(q: *mut sys::queue_t) -> i32;
    fn bcanput(q: *mut sys::queue_t, pri: u8) -> i32;
}

const QWANTR: u32 = sys::QWANTR as u32;
const QWANTW: u32 = sys::QWANTW as u32;
const QFULL: u32 = sys::QFULL as u32;
const QENAB: u32 = sys::QENAB as u32;

fn any_world() -> Option<World> {
    let v = variants().into_iter().next();
    if v.is_none() {
        println!("SKIPPED: no driver variant in this build");
    }
    v.map(|v| World::new(v).unwrap())
}

unsafe fn data(n: usize) -> *mut sys::mblk_t {
    // SAFETY: called inside with_kernel; allocb returns a block with room for n bytes.
    unsafe {
        let mp = sys::allocb(n, 0);
        (*mp).b_wptr = (*mp).b_wptr.add(n);
        mp
    }
}

unsafe fn typed(t: i32, band: u8) -> *mut sys::mblk_t {
    // SAFETY: called inside with_kernel; allocb returns a block with room for n bytes.
    unsafe {
        let mp = data(1);
        (*(*mp).b_datap).db_type = t as u8;
        (*mp).b_band = band;
        mp
    }
}

#[test]
fn putq_schedules_on_qwantr_and_getq_clears_it() {
    let Some(mut w) = any_world() else { return };
    let rq = w.scratch_pair(true, 100, 10);
    // SAFETY: the world is current inside with_kernel; every pointer used
    // is a block or queue this world handed out and has not freed.
    w.with_kernel(|| unsafe {
        assert!((*rq).q_flag & QWANTR != 0, "a new queue starts with QWANTR");
        sys::putq(rq, data(5));
        assert!((*rq).q_flag & QENAB != 0, "first putq schedules");
    });
    assert_eq!(w.scratch_runs(), 1);
    // SAFETY: the world is current inside with_kernel; every pointer used
    // is a block or queue this world handed out and has not freed.
    w.with_kernel(|| unsafe {
        // The service procedure did not getq: QWANTR is still set.
        let mp = sys::getq(rq);
        assert!(!mp.is_null());
        assert!(
            (*rq).q_flag & QWANTR == 0,
            "getq of a message clears QWANTR"
        );
        sys::putq(rq, mp);
        assert!(
            (*rq).q_flag & QENAB == 0,
            "no QWANTR: putq does not schedule"
        );
        let mp = sys::getq(rq);
        assert!(sys::getq(rq).is_null());
        assert!(
            (*rq).q_flag & QWANTR != 0,
            "getq on an empty queue sets QWANTR"
        );
        // putbq schedules only with QWANTR (set now).
        sys::putbq(rq, mp);
        assert!((*rq).q_flag & QENAB != 0);
    });
    // SAFETY: the scratch pair of this world, freed once.
    unsafe { w.scratch_free(rq) };
    w.finish().unwrap();
}

#[test]
fn high_priority_and_band_messages_schedule_and_order() {
    let Some(mut w) = any_world() else { return };
    let rq = w.scratch_pair(true, 100, 10);
    // SAFETY: the world is current inside with_kernel; every pointer used
    // is a block or queue this world handed out and has not freed.
    w.with_kernel(|| unsafe {
        let mp = sys::getq(rq); // clears nothing, sets QWANTR
        assert!(mp.is_null());
        (*rq).q_flag &= !QWANTR;
        sys::putq(rq, typed(sys::M_DATA, 0));
        assert!((*rq).q_flag & QENAB == 0);
        sys::putq(rq, typed(sys::M_DATA, 3));
        assert!((*rq).q_flag & QENAB != 0, "a band message schedules");
        sys::putq(rq, typed(sys::M_PCPROTO, 7));
        sys::putq(rq, typed(sys::M_DATA, 1));
        assert_eq!((*rq).q_nband, 3, "band records created up to 3");
        let b1 = (*rq).q_bandp;
        assert_eq!(
            ((*b1).qb_hiwat, (*b1).qb_lowat),
            (100, 10),
            "inherit water marks"
        );
        // Order: high priority (band forced to 0), band 3, band 1, band 0.
        let mut order = Vec::new();
        let mut m = (*rq).q_first;
        while !m.is_null() {
            order.push(((*(*m).b_datap).db_type, (*m).b_band));
            m = (*m).b_next;
        }
        assert_eq!(order, [(0x83, 0), (0, 3), (0, 1), (0, 0)]);
        assert_eq!(
            (*rq).q_count,
            2,
            "band 0 and high priority count in q_count"
        );
    });
    // SAFETY: the scratch pair of this world, freed once.
    unsafe { w.scratch_free(rq) };
    w.finish().unwrap();
}

#[test]
fn qfull_by_bytes_or_blocks_and_backenable_below_lowat() {
    let Some(mut w) = any_world() else { return };
    let rq = w.scratch_pair(true, 4, 2);
    // SAFETY: the world is current inside with_kernel; every pointer used
    // is a block or queue this world handed out and has not freed.
    w.with_kernel(|| unsafe {
        for _ in 0..4 {
            sys::putq(rq, data(0));
        }
        assert!((*rq).q_flag & QFULL != 0, "4 empty blocks fill hiwat 4");
        assert_eq!(canput(rq), 0);
        assert!((*rq).q_flag & QWANTW != 0);
        assert_eq!(bcanput(rq, 5), 1, "a band that does not exist");
        sys::freemsg(sys::getq(rq));
        assert!((*rq).q_flag & QFULL == 0, "below hiwat in blocks");
        assert!((*rq).q_flag & QWANTW != 0, "not yet below lowat");
        sys::freemsg(sys::getq(rq));
        sys::freemsg(sys::getq(rq));
        assert!((*rq).q_flag & QWANTW == 0, "QWANTW cleared below lowat");
        sys::putq(rq, data(10));
        assert!((*rq).q_flag & QFULL != 0, "10 bytes fill hiwat 4");
    });
    // SAFETY: the scratch pair of this world, freed once.
    unsafe { w.scratch_free(rq) };
    w.finish().unwrap();
}

#[test]
fn flushq_keeps_control_messages_and_flushband_targets_a_band() {
    let Some(mut w) = any_world() else { return };
    let rq = w.scratch_pair(false, 100, 10);
    // SAFETY: the world is current inside with_kernel; every pointer used
    // is a block or queue this world handed out and has not freed.
    w.with_kernel(|| unsafe {
        sys::putq(rq, typed(sys::M_DATA, 0));
        sys::putq(rq, typed(sys::M_CTL, 0));
        sys::putq(rq, typed(sys::M_PCPROTO, 0));
        sys::putq(rq, typed(sys::M_DATA, 2));
        sys::flushq(rq, sys::FLUSHDATA);
        let first = (*rq).q_first;
        assert_eq!(
            (*(*first).b_datap).db_type,
            sys::M_CTL as u8,
            "M_CTL re-queued"
        );
        assert!(
            (*first).b_next.is_null(),
            "data, PCPROTO and band data freed"
        );
        sys::putq(rq, typed(sys::M_DATA, 1));
        sys::putq(rq, typed(sys::M_DATA, 2));
        sys::flushband(rq, 2, sys::FLUSHDATA);
        let mut n = 0;
        let mut m = (*rq).q_first;
        while !m.is_null() {
            assert_ne!((*m).b_band, 2);
            n += 1;
            m = (*m).b_next;
        }
        assert_eq!(n, 2);
        sys::flushq(rq, sys::FLUSHALL);
        assert!((*rq).q_first.is_null());
    });
    // SAFETY: the scratch pair of this world, freed once.
    unsafe { w.scratch_free(rq) };
    w.finish().unwrap();
}

#[test]
fn mexchange_reuses_and_miocpullup_rules() {
    let Some(mut w) = any_world() else { return };
    // SAFETY: the world is current inside with_kernel; every pointer used
    // is a block or queue this world handed out and has not freed.
    w.with_kernel(|| unsafe {
        let mp = data(1);
        let cont = data(3);
        (*mp).b_cont = cont;
        let r = sys::mexchange(std::ptr::null_mut(), mp, 2, sys::M_ERROR as u8, -1);
        assert_eq!(r, mp, "an unshared block with room is reused");
        assert_eq!((*r).b_cont, cont, "b_cont is kept");
        assert_eq!((*r).b_wptr.offset_from((*r).b_rptr), 2);
        sys::freemsg(r);
        let small = data(1);
        let r = sys::mexchange(std::ptr::null_mut(), small, 100, sys::M_ERROR as u8, 9);
        assert_ne!(r, small, "too small: reallocated");
        assert_eq!(*((*r).b_rptr as *const i32), 9, "primtype written");
        sys::freemsg(r);

        // miocpullup: the M_IOCTL block must be exactly an iocblk.
        let ioc = data(std::mem::size_of::<sys::iocblk>());
        (*(ioc as *mut sys::mblk_t))
            .b_datap
            .as_mut()
            .unwrap()
            .db_type = sys::M_IOCTL as u8;
        let iocp = (*ioc).b_rptr as *mut sys::iocblk;
        (*iocp).ioc_count = 0;
        assert_eq!(sys::miocpullup(ioc, 0), 0);
        assert_eq!(sys::miocpullup(ioc, 4), sys::EINVAL, "no data block");
        (*ioc).b_cont = data(2);
        (*(*ioc).b_cont).b_cont = data(2);
        assert_eq!(sys::miocpullup(ioc, 4), 0, "pulled up");
        assert_eq!(
            (*(*ioc).b_cont).b_wptr.offset_from((*(*ioc).b_cont).b_rptr),
            4
        );
        assert_eq!(sys::miocpullup(ioc, 5), sys::EINVAL, "too short");
        (*iocp).ioc_count = sys::TRANSPARENT as usize;
        assert_eq!(sys::miocpullup(ioc, 1), sys::EINVAL, "TRANSPARENT");
        sys::freemsg(ioc);
    });
    w.finish().unwrap();
}

#[test]
fn double_free_and_leak_are_detected() {
    let Some(mut w) = any_world() else { return };
    // SAFETY: the world is current inside with_kernel; every pointer used
    // is a block or queue this world handed out and has not freed.
    let leaked = w.with_kernel(|| unsafe {
        let mp = sys::allocb(10, 0);
        sys::freemsg(mp);
        sys::freemsg(mp);
        sys::allocb(1, 0)
    });
    assert_eq!(w.anomalies().len(), 1, "{:?}", w.anomalies());
    assert!(w.anomalies()[0].contains("not live"));
    assert_eq!(w.leaks().mblks, 1);
    let _ = leaked;
    let e = w.finish().unwrap_err();
    assert!(e.contains("mblks: 1"), "{e}");
}

#[test]
fn wr_rd_otherq_follow_qreadr() {
    let Some(mut w) = any_world() else { return };
    let rq = w.scratch_pair(false, 1, 1);
    // SAFETY: the world is current inside with_kernel; every pointer used
    // is a block or queue this world handed out and has not freed.
    w.with_kernel(|| unsafe {
        let wq = sys::WR(rq);
        assert_eq!(
            wq as usize - rq as usize,
            std::mem::size_of::<sys::queue_t>()
        );
        assert_eq!(sys::WR(wq), wq);
        assert_eq!(sys::RD(wq), rq);
        assert_eq!(sys::RD(rq), rq);
        assert_eq!(sys::OTHERQ(rq), wq);
        assert_eq!(sys::OTHERQ(wq), rq);
    });
    // SAFETY: the scratch pair of this world, freed once.
    unsafe { w.scratch_free(rq) };
    w.finish().unwrap();
}

#[test]
fn kernel_symbol_table_covers_ptms_imports() {
    let names: Vec<_> = kernel_symbols().iter().map(|(n, _)| *n).collect();
    for s in [
        "WR",
        "allocb",
        "bcanputnext",
        "cv_broadcast",
        "cv_wait",
        "ddi_create_minor_node",
        "ddi_prop_op",
        "ddi_quiesce_not_supported",
        "ddi_remove_minor_node",
        "drv_priv",
        "flushband",
        "flushq",
        "freemsg",
        "getmajor",
        "getminor",
        "getq",
        "makedevice",
        "mexchange",
        "miocack",
        "miocnak",
        "miocpullup",
        "mod_driverops",
        "mod_info",
        "mod_install",
        "mod_remove",
        "mutex_enter",
        "mutex_exit",
        "nochpoll",
        "nodev",
        "nulldev",
        "pt_ttys_alloc",
        "ptms_attach_subsidiary",
        "ptms_close",
        "ptms_init",
        "putbq",
        "putnext",
        "putnextctl",
        "putq",
        "qenable",
        "qprocsoff",
        "qprocson",
        "qreply",
        "valid_ephemeral_gid",
        "valid_ephemeral_uid",
        "zone_find_by_id",
        "zone_rele",
    ] {
        assert!(names.contains(&s), "missing {s}");
    }
    assert_eq!(
        kernel_symbols()
            .iter()
            .find(|(n, _)| *n == "mod_driverops")
            .unwrap()
            .1,
        driverops_addr() as *const std::ffi::c_void
    );
}

#[test]
fn variants_in_this_build() {
    let names: Vec<_> = variants().iter().map(|v| v.name).collect();
    println!("driver variants: {names:?}");
    if require_c_oracle("variants_in_this_build").is_some() {
        assert!(names.iter().any(|n| n.starts_with("C ")));
    }
    assert!(rust_driver().is_some(), "the Rust driver is always built");
}
