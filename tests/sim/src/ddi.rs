//! DDI and genunix odds and ends: the module framework (`mod_install`,
//! `mod_remove`, `mod_info`, `mod_driverops`), minor nodes, device numbers,
//! credentials, zones, locks, and the ptms_conf interface (`ptms_init`,
//! `pt_ttys_alloc`, `ptms_close`, `ptms_attach_subsidiary`).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ptm::sys::*;
use ptm_scenario::{MinorNode, TraceEvent};

use crate::world::{self, ModState, ZoneObj};

// ---------------------------------------------------------------------------
// Module linkage
// ---------------------------------------------------------------------------

unsafe extern "C" fn modops_stub() -> c_int {
    0
}

/// genunix's `mod_driverops`: a driver's `modldrv` points here.
#[unsafe(no_mangle)]
pub static mod_driverops: mod_ops = mod_ops {
    modm_install: Some(modops_stub),
    modm_remove: Some(modops_stub),
    modm_info: Some(modops_stub),
};

/// The address of the simulator's `mod_driverops` (for a loader that must
/// relocate a module's reference to it).
pub fn driverops_addr() -> *const mod_ops {
    &raw const mod_driverops
}

/// Process-wide extra addresses accepted as `&mod_driverops`.
static DRIVEROPS_ALIASES: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Registers `addr` as another address of `mod_driverops` that
/// `mod_install` accepts in every world (for a loader that relocated a
/// module's `mod_driverops` reference to a copy of its own). Call it before
/// creating the world that loads the module.
pub fn register_driverops_alias(addr: *const mod_ops) {
    let mut v = DRIVEROPS_ALIASES.lock().unwrap_or_else(|e| e.into_inner());
    if !v.contains(&(addr as usize)) {
        v.push(addr as usize);
    }
}

fn is_driverops(p: *const mod_ops) -> bool {
    ptr::eq(p, driverops_addr())
        || world::with(|s| s.driverops_aliases.contains(&(p as usize)))
        || DRIVEROPS_ALIASES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(p as usize))
}

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: drivers pass NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// `MI_INFO_LINKAGE` (sys/modctl.h): how modctl asks `_info`, right after
/// loading a module, for the address of its modlinkage (`mi_base`).
pub const MI_INFO_LINKAGE: c_int = 8;

/// illumos `mod_install`: accepts a `MODREV_1` linkage whose first linkage
/// is a `modldrv` with `drv_modops == &mod_driverops` (or a registered
/// alias) and a `dev_ops`, and records it. The attach happens afterwards,
/// when the simulator loads the driver (as the kernel does on first open).
///
/// As illumos's `mod_installdrv` (through `mod_getctl`), it finds the
/// module by its linkage: a linkage other than the one `_info` reported
/// when the module was loaded (or any, before `_info` ran) is refused with
/// ENXIO and the kernel's warning "mod_install: bad module linkage data".
#[unsafe(no_mangle)]
pub extern "C" fn mod_install(ml: *mut modlinkage) -> c_int {
    if ml.is_null() {
        world::anomaly("mod_install(NULL)");
        return EINVAL;
    }
    if world::with(|s| !ptr::eq(s.mod_linkage, ml)) {
        world::with(|s| {
            s.cmn_err
                .push((CE_WARN, "mod_install: bad module linkage data".into()))
        });
        return ENXIO;
    }
    // SAFETY: `ml` points to the module's static modlinkage.
    unsafe {
        if (*ml).ml_rev != MODREV_1 {
            world::anomaly(format!(
                "mod_install: ml_rev {} is not MODREV_1",
                (*ml).ml_rev
            ));
            return EINVAL;
        }
        let drv = (*ml).ml_linkage[0] as *mut modldrv;
        if drv.is_null() {
            world::anomaly("mod_install: empty linkage");
            return EINVAL;
        }
        if !is_driverops((*drv).drv_modops) {
            world::anomaly("mod_install: linkage is not a driver (drv_modops != &mod_driverops)");
            return EINVAL;
        }
        if (*drv).drv_dev_ops.is_null() {
            world::anomaly("mod_install: modldrv without dev_ops");
            return EINVAL;
        }
        let already = world::with(|s| s.module.is_some());
        if already {
            return EBUSY;
        }
        let info = cstr((*drv).drv_linkinfo);
        world::with(|s| {
            s.module = Some(ModState {
                linkage: ml,
                dev_ops: (*drv).drv_dev_ops,
                linkinfo: info,
            })
        });
    }
    0
}

/// illumos `mod_remove`: refuses (EBUSY) while a stream of the driver is
/// open, otherwise detaches the driver and forgets the module.
#[unsafe(no_mangle)]
pub extern "C" fn mod_remove(ml: *mut modlinkage) -> c_int {
    let (ok, busy, dev_ops, dip, attached) = world::with(|s| {
        let ok = s.module.as_ref().is_some_and(|m| ptr::eq(m.linkage, ml));
        let busy = s
            .streams
            .iter()
            .any(|st| !st.dead && st.kind == world::StreamKind::Manager && st.refs > 0);
        let dev_ops = s.module.as_ref().map_or(ptr::null_mut(), |m| m.dev_ops);
        (ok, busy, dev_ops, s.dip, s.attached)
    });
    if !ok {
        world::anomaly("mod_remove of a linkage that is not installed");
        return EINVAL;
    }
    if busy {
        return EBUSY;
    }
    if attached {
        // SAFETY: `dev_ops` is the installed driver's.
        let detach = unsafe { (*dev_ops).devo_detach };
        let rc = match detach {
            // SAFETY: the driver's detach entry point with its dev_info.
            Some(f) => unsafe { f(dip as *mut dev_info_t, DDI_DETACH) },
            None => DDI_FAILURE,
        };
        if rc != DDI_SUCCESS {
            return EBUSY;
        }
        world::with(|s| s.attached = false);
    }
    world::with(|s| s.module = None);
    0
}

/// illumos `mod_info`: fills the link information, and `mi_base` with the
/// linkage's address when asked with `MI_INFO_LINKAGE` (as modctl does
/// when it loads a module); returns non-zero on success.
#[unsafe(no_mangle)]
pub extern "C" fn mod_info(ml: *mut modlinkage, mi: *mut modinfo) -> c_int {
    if ml.is_null() || mi.is_null() {
        world::anomaly("mod_info with a NULL argument");
        return 0;
    }
    // SAFETY: both point to valid structures (module static, caller's
    // buffer).
    unsafe {
        (*mi).mi_rev = (*ml).ml_rev;
        for i in 0..(*ml).ml_linkage.len().min((*mi).mi_msinfo.len()) {
            let l = (*ml).ml_linkage[i] as *mut modldrv;
            let msi = &mut (*mi).mi_msinfo[i];
            msi.msi_linkinfo = [0; 32];
            if l.is_null() {
                break;
            }
            let info = cstr((*l).drv_linkinfo);
            for (d, b) in msi.msi_linkinfo.iter_mut().zip(info.bytes().take(31)) {
                *d = b as c_char;
            }
            msi.msi_p0 = crate::PTM_MAJOR as c_int;
        }
        if (*mi).mi_info == MI_INFO_LINKAGE {
            (*mi).mi_base = ml.cast();
        }
    }
    1
}

// ---------------------------------------------------------------------------
// Minor nodes, devices, stubs
// ---------------------------------------------------------------------------

/// illumos `ddi_create_minor_node`: recorded.
#[unsafe(no_mangle)]
pub extern "C" fn ddi_create_minor_node(
    dip: *mut dev_info_t,
    name: *const c_char,
    spec_type: c_int,
    minor: minor_t,
    node_type: *const c_char,
    flag: c_int,
) -> c_int {
    let ok = world::with(|s| s.dip as *mut dev_info_t == dip);
    if !ok {
        world::anomaly("ddi_create_minor_node on an unknown dev_info");
        return DDI_FAILURE;
    }
    let node = MinorNode {
        name: cstr(name),
        spec_type,
        minor,
        node_type: cstr(node_type),
        flag,
    };
    world::with(|s| s.minor_nodes.push(node));
    DDI_SUCCESS
}

/// illumos `ddi_remove_minor_node`: NULL removes all.
#[unsafe(no_mangle)]
pub extern "C" fn ddi_remove_minor_node(dip: *mut dev_info_t, name: *const c_char) {
    let ok = world::with(|s| s.dip as *mut dev_info_t == dip);
    if !ok {
        world::anomaly("ddi_remove_minor_node on an unknown dev_info");
        return;
    }
    let name = if name.is_null() {
        None
    } else {
        Some(cstr(name))
    };
    world::with(|s| match name {
        None => s.minor_nodes.clear(),
        Some(n) => s.minor_nodes.retain(|m| m.name != n),
    });
}

/// illumos `nulldev`: returns 0.
#[unsafe(no_mangle)]
pub extern "C" fn nulldev() -> c_int {
    0
}

/// illumos `nodev`: returns ENXIO.
#[unsafe(no_mangle)]
pub extern "C" fn nodev() -> c_int {
    ENXIO
}

/// illumos `nochpoll`: returns ENXIO.
#[unsafe(no_mangle)]
pub extern "C" fn nochpoll(
    _dev: dev_t,
    _events: i16,
    _anyyet: c_int,
    _reventsp: *mut i16,
    _phpp: *mut *mut pollhead,
) -> c_int {
    ENXIO
}

/// illumos `ddi_prop_op`: no properties exist in the simulator.
#[unsafe(no_mangle)]
pub extern "C" fn ddi_prop_op(
    _dev: dev_t,
    _dip: *mut dev_info_t,
    _op: ddi_prop_op_t,
    _flags: c_int,
    _name: *mut c_char,
    _valuep: caddr_t,
    _lengthp: *mut c_int,
) -> c_int {
    DDI_FAILURE
}

/// illumos `ddi_quiesce_not_supported`: DDI_FAILURE.
#[unsafe(no_mangle)]
pub extern "C" fn ddi_quiesce_not_supported(_dip: *mut dev_info_t) -> c_int {
    DDI_FAILURE
}

/// illumos `getminor` (LP64: the low 32 bits).
#[unsafe(no_mangle)]
pub extern "C" fn getminor(dev: dev_t) -> minor_t {
    (dev & 0xffff_ffff) as minor_t
}

/// illumos `getmajor` (LP64: the high 32 bits).
#[unsafe(no_mangle)]
pub extern "C" fn getmajor(dev: dev_t) -> major_t {
    (dev >> 32) as major_t
}

/// illumos `makedevice`.
#[unsafe(no_mangle)]
pub extern "C" fn makedevice(maj: major_t, min: minor_t) -> dev_t {
    (u64::from(maj) << 32) | u64::from(min)
}

/// Called by the C shim's `cmn_err` with the formatted text.
#[unsafe(no_mangle)]
pub extern "C" fn ptm_sim_cmn_err(level: c_int, text: *const c_char) {
    let t = cstr(text);
    world::with(|s| {
        if level == CE_PANIC {
            s.anomaly(format!("cmn_err(CE_PANIC): {t}"));
        }
        s.cmn_err.push((level, t));
    });
}

/// illumos `assfail` (DEBUG builds): recorded as an anomaly.
#[unsafe(no_mangle)]
pub extern "C" fn assfail(expr: *const c_char, file: *const c_char, line: c_int) {
    world::anomaly(format!(
        "assertion failed: {} ({}:{line})",
        cstr(expr),
        cstr(file)
    ));
}

// ---------------------------------------------------------------------------
// Credentials and zones
// ---------------------------------------------------------------------------

/// illumos `drv_priv`: 0 for a credential with `PRIV_SYS_DEVICES`, EPERM
/// otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn drv_priv(cr: *mut cred_t) -> c_int {
    match world::with(|s| s.cred_of(cr)) {
        Some(c) if c.privileged => 0,
        Some(_) => EPERM,
        None => {
            world::anomaly(format!("drv_priv of an unknown credential ({cr:p})"));
            EPERM
        }
    }
}

/// The zone of the calling process.
#[unsafe(no_mangle)]
pub extern "C" fn getzoneid() -> zoneid_t {
    world::with(|s| s.cur_zone)
}

/// illumos `zone_find_by_id`: a held zone, or NULL when no running zone has
/// that id.
#[unsafe(no_mangle)]
pub extern "C" fn zone_find_by_id(id: zoneid_t) -> *mut zone_t {
    world::with(|s| match s.zones.get(&id) {
        Some(z) => {
            s.counters.zone_holds += 1;
            &**z as *const ZoneObj as *mut zone_t
        }
        None => ptr::null_mut(),
    })
}

fn zone_known(z: *const zone_t) -> bool {
    world::with(|s| {
        s.zones
            .values()
            .chain(s.zone_grave.iter())
            .any(|o| ptr::eq(&**o as *const ZoneObj as *const zone_t, z))
    })
}

/// illumos `zone_rele`. illumos dereferences its argument; `zone_rele(NULL)`
/// is a panic there. The simulator records it as a `NullZoneRele` trace
/// event instead of crashing.
#[unsafe(no_mangle)]
pub extern "C" fn zone_rele(z: *mut zone_t) {
    if z.is_null() {
        world::trace(TraceEvent::NullZoneRele);
        return;
    }
    if !zone_known(z) {
        world::anomaly(format!("zone_rele of an unknown zone pointer ({z:p})"));
        return;
    }
    world::with(|s| s.counters.zone_holds -= 1);
}

fn valid_ephemeral(z: *mut zone_t, id: u32, what: &'static str) -> boolean_t {
    const WK_MAX: u32 = 0x8000_0000;
    if id <= WK_MAX {
        return B_TRUE as boolean_t;
    }
    if z.is_null() {
        world::trace(TraceEvent::NullZoneDeref(what));
        return B_FALSE as boolean_t;
    }
    if !zone_known(z) {
        world::anomaly(format!("{what} of an unknown zone pointer ({z:p})"));
        return B_FALSE as boolean_t;
    }
    // SAFETY: `z` is one of this world's zone objects.
    let zo = unsafe { &*(z as *const ZoneObj) };
    (id > zo.eph_min && id <= zo.eph_last) as boolean_t
}

/// illumos `valid_ephemeral_uid`.
#[unsafe(no_mangle)]
pub extern "C" fn valid_ephemeral_uid(z: *mut zone_t, id: uid_t) -> boolean_t {
    valid_ephemeral(z, id, "valid_ephemeral_uid")
}

/// illumos `valid_ephemeral_gid`.
#[unsafe(no_mangle)]
pub extern "C" fn valid_ephemeral_gid(z: *mut zone_t, id: gid_t) -> boolean_t {
    valid_ephemeral(z, id, "valid_ephemeral_gid")
}

// ---------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------
//
// The lock word is the `kmutex_t` storage itself: 0 when free, otherwise the
// owner. In single-threaded mode the owner is written as 1; a recursive
// enter, an exit of a free mutex and a cv_wait (which nothing could ever
// wake) are driver bugs: the first two are recorded as anomalies, the last
// aborts the process with a message, since the caller would loop forever.
//
// In the multi-threaded mode the word holds the owning thread's token and is
// taken with a compare-and-swap: `mutex_enter` blocks while another thread
// owns it, a recursive enter and an exit by a thread that does not own the
// mutex are anomalies (the first would be a self-deadlock: it returns as if
// acquired). `cv_wait` releases the mutex and sleeps until a `cv_broadcast`
// or `cv_signal` of that very condition variable (never for anything else;
// no timeout, so a missing broadcast hangs as it would in the kernel), then
// takes the mutex again. Both go through the world's `SyncState`: its mutex
// is held from the release of the kmutex until the sleep, so no broadcast
// can be lost in between.

fn word(m: *mut kmutex_t) -> *mut u64 {
    m as *mut u64
}

/// The lock word as an atomic.
///
/// # Safety
/// `m` must point to a live `kmutex_t` (8 bytes, 8-aligned).
unsafe fn atomic_word<'a>(m: *mut kmutex_t) -> &'a AtomicU64 {
    // SAFETY: the caller guarantees a live, aligned 8-byte lock word that
    // is only ever accessed atomically while the world is multi-threaded.
    unsafe { AtomicU64::from_ptr(word(m)) }
}

/// illumos `mutex_enter`.
#[unsafe(no_mangle)]
pub extern "C" fn mutex_enter(m: *mut kmutex_t) {
    if m.is_null() {
        world::anomaly("mutex_enter(NULL)");
        return;
    }
    if let Some(mt) = world::mt() {
        mt_mutex_enter(mt, m);
        return;
    }
    // SAFETY: `m` points to a kmutex_t inside a live structure.
    unsafe {
        if *word(m) != 0 {
            world::anomaly(format!("recursive mutex_enter ({m:p})"));
        }
        *word(m) = 1;
    }
    world::with(|s| s.held_mutexes.insert(m as usize, world::thread_token()));
}

fn mt_mutex_enter(mt: &world::Mt, m: *mut kmutex_t) {
    if !(m as usize).is_multiple_of(8) {
        world::anomaly(format!("mutex_enter of a misaligned kmutex_t ({m:p})"));
        return;
    }
    world::assert_unlocked("mutex_enter");
    let me = world::thread_token();
    // SAFETY: `m` points to a kmutex_t inside a live structure, aligned.
    let w = unsafe { atomic_word(m) };
    let mut announced = false;
    let mut g = mt.sync.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        match w.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => break,
            Err(owner) if owner == me => {
                drop(g);
                world::anomaly(format!(
                    "recursive mutex_enter ({m:p}): a self-deadlock in the kernel"
                ));
                return;
            }
            Err(owner) => {
                if !announced {
                    world::set_activity(|| {
                        format!("mutex_enter({m:p}): blocked, owner thread #{owner}")
                    });
                    announced = true;
                }
                // The timeout only re-checks the word; the release path
                // bumps `mutex_releases` under this mutex and notifies.
                g = mt
                    .sync_cv
                    .wait_timeout(g, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
    drop(g);
    world::with(|s| s.held_mutexes.insert(m as usize, me));
}

/// illumos `mutex_exit`.
#[unsafe(no_mangle)]
pub extern "C" fn mutex_exit(m: *mut kmutex_t) {
    if m.is_null() {
        world::anomaly("mutex_exit(NULL)");
        return;
    }
    if let Some(mt) = world::mt() {
        mt_mutex_exit(mt, m);
        return;
    }
    // SAFETY: as in `mutex_enter`.
    unsafe {
        if *word(m) == 0 {
            world::anomaly(format!("mutex_exit of a mutex that is not held ({m:p})"));
        }
        *word(m) = 0;
    }
    world::with(|s| s.held_mutexes.remove(&(m as usize)));
}

fn mt_mutex_exit(mt: &world::Mt, m: *mut kmutex_t) {
    if !(m as usize).is_multiple_of(8) {
        world::anomaly(format!("mutex_exit of a misaligned kmutex_t ({m:p})"));
        return;
    }
    let me = world::thread_token();
    // SAFETY: as in `mt_mutex_enter`.
    let w = unsafe { atomic_word(m) };
    let owner = w.load(Ordering::Relaxed);
    if owner != me {
        world::anomaly(if owner == 0 {
            format!("mutex_exit of a mutex that is not held ({m:p})")
        } else {
            format!("mutex_exit of a mutex held by another thread ({m:p})")
        });
        return;
    }
    world::with(|s| s.held_mutexes.remove(&(m as usize)));
    let mut g = mt.sync.lock().unwrap_or_else(|e| e.into_inner());
    w.store(0, Ordering::Release);
    g.mutex_releases = g.mutex_releases.wrapping_add(1);
    mt.sync_cv.notify_all();
}

/// illumos `cv_wait`. Single-threaded, nobody could signal: abort.
#[unsafe(no_mangle)]
pub extern "C" fn cv_wait(cv: *mut kcondvar_t, m: *mut kmutex_t) {
    if let Some(mt) = world::mt() {
        mt_cv_wait(mt, cv, m);
        return;
    }
    let name = world::with(|s| {
        s.anomaly(format!(
            "cv_wait({cv:p}, {m:p}) would block forever in single-threaded mode"
        ));
        s.name.clone()
    });
    eprintln!(
        "ptm-sim [{name}]: cv_wait would block forever (a PT_ENTER_* while the \
         reference count is held by this very thread): aborting"
    );
    std::process::abort();
}

fn mt_cv_wait(mt: &world::Mt, cv: *mut kcondvar_t, m: *mut kmutex_t) {
    if m.is_null() || cv.is_null() || !(m as usize).is_multiple_of(8) {
        world::anomaly(format!("cv_wait({cv:p}, {m:p}): bad argument"));
        return;
    }
    world::assert_unlocked("cv_wait");
    let me = world::thread_token();
    // SAFETY: as in `mt_mutex_enter`.
    let w = unsafe { atomic_word(m) };
    if w.load(Ordering::Relaxed) != me {
        world::anomaly(format!("cv_wait({cv:p}, {m:p}) without holding the mutex"));
        return;
    }
    world::set_activity(|| format!("cv_wait({cv:p}, {m:p})"));
    world::with(|s| s.held_mutexes.remove(&(m as usize)));
    let mut g = mt.sync.lock().unwrap_or_else(|e| e.into_inner());
    let seen = *g.cv_gens.entry(cv as usize).or_insert(0);
    w.store(0, Ordering::Release);
    g.mutex_releases = g.mutex_releases.wrapping_add(1);
    mt.sync_cv.notify_all();
    while g.cv_gens.get(&(cv as usize)).copied().unwrap_or(0) == seen {
        g = mt.sync_cv.wait(g).unwrap_or_else(|e| e.into_inner());
    }
    drop(g);
    world::set_activity(|| format!("cv_wait({cv:p}, {m:p}): woken, re-entering the mutex"));
    mt_mutex_enter(mt, m);
}

fn mt_cv_wake(mt: &world::Mt, cv: *mut kcondvar_t) {
    let mut g = mt.sync.lock().unwrap_or_else(|e| e.into_inner());
    let e = g.cv_gens.entry(cv as usize).or_insert(0);
    *e = e.wrapping_add(1);
    mt.sync_cv.notify_all();
}

/// illumos `cv_broadcast`: wakes every waiter of `cv` (nothing waits in
/// single-threaded mode).
#[unsafe(no_mangle)]
pub extern "C" fn cv_broadcast(cv: *mut kcondvar_t) {
    if let Some(mt) = world::mt() {
        mt_cv_wake(mt, cv);
    }
}

/// illumos `cv_signal` (modelled as a broadcast: waiters re-check their
/// condition anyway).
#[unsafe(no_mangle)]
pub extern "C" fn cv_signal(cv: *mut kcondvar_t) {
    if let Some(mt) = world::mt() {
        mt_cv_wake(mt, cv);
    }
}

// ---------------------------------------------------------------------------
// ptms_conf
// ---------------------------------------------------------------------------

/// illumos `ptms_init`: one-time setup (idempotent).
#[unsafe(no_mangle)]
pub extern "C" fn ptms_init() {
    world::with(|s| s.ptms_inited = true);
}

/// illumos `pt_ttys_alloc`: a new entry with the lowest free minor (from 1),
/// `PTMOPEN|PTLOCK`, the caller's zone, owner root; NULL when over the
/// configured limit or when a failure is injected.
#[unsafe(no_mangle)]
pub extern "C" fn pt_ttys_alloc() -> *mut pt_ttys {
    world::with(|s| {
        if !s.ptms_inited {
            s.anomaly("pt_ttys_alloc before ptms_init");
        }
        if s.faults.pt_ttys_alloc_fail > 0 {
            s.faults.pt_ttys_alloc_fail -= 1;
            return ptr::null_mut();
        }
        if s.pty_limit.is_some_and(|l| s.slots.len() >= l) {
            return ptr::null_mut();
        }
        let minor = (1u32..)
            .find(|m| !s.slots.contains_key(m))
            .expect("minor space");
        let pt = Box::into_raw(Box::new(pt_ttys {
            pt_minor: minor,
            pt_pid: ptm_scenario::WORLD_PID,
            pt_state: (PTMOPEN | PTLOCK) as u16,
            pt_zoneid: s.cur_zone,
            ..pt_ttys::default()
        }));
        s.slots.insert(minor, pt);
        s.counters.pt_allocs += 1;
        pt
    })
}

/// illumos `ptms_close`: clears `flags` in `pt_state`; when neither
/// `PTMOPEN` nor `PTSOPEN` remains, checks that the entry is unused and frees
/// it (the minor becomes free).
#[unsafe(no_mangle)]
pub extern "C" fn ptms_close(pt: *mut pt_ttys, flags: uint_t) {
    let known = world::with(|s| s.slots.values().any(|&p| p == pt));
    if !known {
        world::anomaly(format!("ptms_close of an unknown pt_ttys ({pt:p})"));
        return;
    }
    // SAFETY: `pt` is a live entry of this world.
    unsafe {
        // Multi-threaded, the other side's thread may hold pt_lock right now
        // (legitimately); only the caller holding it is a bug there.
        let owner = atomic_word(&raw mut (*pt).pt_lock).load(Ordering::Relaxed);
        if owner != 0 && (!world::is_mt() || owner == world::thread_token()) {
            world::anomaly("ptms_close called with pt_lock held");
        }
        (*pt).pt_state &= !(flags as u16);
        if (*pt).pt_state & (PTMOPEN | PTSOPEN) as u16 != 0 {
            return;
        }
        let mut bad = Vec::new();
        if !(*pt).ptm_rdq.is_null() {
            bad.push("ptm_rdq");
        }
        if !(*pt).pts_rdq.is_null() {
            bad.push("pts_rdq");
        }
        if !(*pt).pt_nullmsg.is_null() {
            bad.push("pt_nullmsg");
        }
        if (*pt).pt_refcnt != 0 {
            bad.push("pt_refcnt");
        }
        if (*pt).pt_state != 0 {
            bad.push("pt_state");
        }
        if atomic_word(&raw mut (*pt).pt_lock).load(Ordering::Relaxed) != 0 {
            bad.push("pt_lock (held)");
        }
        let minor = (*pt).pt_minor;
        world::with(|s| {
            if !bad.is_empty() {
                s.anomaly(format!(
                    "ptms_close frees minor {minor} with {} still set",
                    bad.join(", ")
                ));
            }
            s.slots.remove(&minor);
            s.counters.pt_frees += 1;
            s.pt_grave.push(pt);
        });
        // Poison the freed entry.
        (*pt).pt_state = 0xdead;
        (*pt).pt_refcnt = -0x5eed;
        (*pt).ptm_rdq = 0xdead_0001_usize as *mut queue_t;
        (*pt).pts_rdq = 0xdead_0002_usize as *mut queue_t;
    }
}

/// illumos `ptms_attach_subsidiary`: makes sure pts is attached; -1 when a
/// failure is injected.
#[unsafe(no_mangle)]
pub extern "C" fn ptms_attach_subsidiary() -> c_int {
    world::with(|s| {
        if s.faults.attach_fail {
            -1
        } else {
            s.pts_attached = true;
            0
        }
    })
}

/// illumos `ptms_minor2ptty`.
pub(crate) fn minor2ptty(minor: u32) -> *mut pt_ttys {
    world::with(|s| s.slots.get(&minor).copied().unwrap_or(ptr::null_mut()))
}

/// The opaque `dev_info_t` storage.
pub(crate) fn new_dip() -> *mut c_void {
    Box::into_raw(Box::new(0u64)) as *mut c_void
}
