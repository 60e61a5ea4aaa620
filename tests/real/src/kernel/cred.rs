//! Credentials, privileges and zones (the project's model: illumos's
//! cred.c, policy.c and zone.c are not in the bundle, and nothing in the
//! bundle looks inside a `cred_t` or `zone_t`).
//!
//! * A credential has a user, a group, a zone and one privilege bit
//!   standing for `PRIV_SYS_DEVICES` (what `drv_priv` and the `secpolicy_*`
//!   checks the STREAMS code makes ask for). Holds are counted; a
//!   credential freed more often than held stops the world.
//! * Zones exist while the world says so; each may have an ephemeral
//!   id range `(min, last]`. `zone_rele(NULL)` and a NULL zone passed to
//!   `valid_ephemeral_uid/gid` are NULL dereferences on illumos (ptm.c
//!   reaches them for a vanished zone): they are recorded as events instead,
//!   exactly as the model world does, so that scenarios can observe them.

use std::collections::BTreeMap;
use std::ffi::{c_int, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use super::Event;

const EPERM: c_int = 1;
/// Ids up to this (the well-known ids, `IDMAP_WK__MAX_UID`) are valid in
/// every zone without looking at it.
const WK_MAX: u32 = 0x8000_0000;

/// What a `cred_t *` points to.
pub struct Cred {
    refs: AtomicU32,
    pub uid: u32,
    pub gid: u32,
    pub zone: i32,
    pub privileged: bool,
}

static LIVE_CREDS: AtomicI64 = AtomicI64::new(0);

/// A new credential with one hold.
pub fn cred_new(uid: u32, gid: u32, zone: i32, privileged: bool) -> *mut c_void {
    LIVE_CREDS.fetch_add(1, Ordering::Relaxed);
    Box::into_raw(Box::new(Cred {
        refs: AtomicU32::new(1),
        uid,
        gid,
        zone,
        privileged,
    }))
    .cast()
}

fn cred<'a>(cr: *const c_void) -> &'a Cred {
    if cr.is_null() {
        super::fail("NULL credential");
    }
    // SAFETY: credentials are only made by cred_new and live while held.
    unsafe { &*cr.cast::<Cred>() }
}

/// Credentials alive now (for leak checks).
pub fn live_creds() -> i64 {
    LIVE_CREDS.load(Ordering::Relaxed)
}

#[unsafe(no_mangle)]
pub static mut kcred: *mut c_void = std::ptr::null_mut();

pub(crate) fn init_kcred() {
    // SAFETY: written once at boot, before any kernel code reads it.
    unsafe { kcred = cred_new(0, 0, 0, true) };
}

#[unsafe(no_mangle)]
pub extern "C" fn crhold(cr: *mut c_void) {
    cred(cr).refs.fetch_add(1, Ordering::Relaxed);
}

#[unsafe(no_mangle)]
pub extern "C" fn crfree(cr: *mut c_void) {
    let old = cred(cr).refs.fetch_sub(1, Ordering::AcqRel);
    if old == 0 {
        super::fail(&format!(
            "crfree({cr:p}): credential freed more often than held"
        ));
    }
    if old == 1 {
        LIVE_CREDS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the last hold is gone; made by Box::into_raw in cred_new.
        drop(unsafe { Box::from_raw(cr.cast::<Cred>()) });
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn crgetuid(cr: *const c_void) -> u32 {
    cred(cr).uid
}

#[unsafe(no_mangle)]
pub extern "C" fn crgetgid(cr: *const c_void) -> u32 {
    cred(cr).gid
}

#[unsafe(no_mangle)]
pub extern "C" fn crgetzoneid(cr: *const c_void) -> i32 {
    cred(cr).zone
}

#[unsafe(no_mangle)]
pub extern "C" fn crgetzone(cr: *const c_void) -> *mut c_void {
    zone_ptr(cred(cr).zone)
}

#[unsafe(no_mangle)]
pub extern "C" fn crgetlabel(_cr: *const c_void) -> *mut c_void {
    std::ptr::null_mut()
}

/// A held kcred stands for every zone's kernel credential.
#[unsafe(no_mangle)]
pub extern "C" fn zone_get_kcred(_zoneid: i32) -> *mut c_void {
    // SAFETY: kcred was set at boot.
    let k = unsafe { kcred };
    crhold(k);
    k
}

fn privileged(cr: *const c_void) -> c_int {
    if cred(cr).privileged { 0 } else { EPERM }
}

#[unsafe(no_mangle)]
pub extern "C" fn drv_priv(cr: *mut c_void) -> c_int {
    privileged(cr)
}

#[unsafe(no_mangle)]
pub extern "C" fn secpolicy_sti(cr: *const c_void) -> c_int {
    privileged(cr)
}

#[unsafe(no_mangle)]
pub extern "C" fn secpolicy_excl_open(cr: *const c_void) -> c_int {
    privileged(cr)
}

#[unsafe(no_mangle)]
pub extern "C" fn secpolicy_ip_config(cr: *const c_void, _checkonly: c_int) -> c_int {
    privileged(cr)
}

#[unsafe(no_mangle)]
pub extern "C" fn secpolicy_net_config(cr: *const c_void, _checkonly: c_int) -> c_int {
    privileged(cr)
}

/// The zone of the calling thread's credential.
#[unsafe(no_mangle)]
pub extern "C" fn getzoneid() -> i32 {
    // SAFETY: no preconditions; kernel code runs on an attached thread.
    cred(unsafe { super::ffi::kp_curcred() }).zone
}

// ---------------------------------------------------------------------------
// Zones
// ---------------------------------------------------------------------------

/// What a `zone_t *` points to.
struct Zone {
    /// Ephemeral ids `(min, last]`, if the zone has any.
    ephemeral: Option<(u32, u32)>,
}

#[derive(Default)]
struct Zones {
    live: BTreeMap<i32, Box<Zone>>,
    /// Removed zones stay allocated (a hold may still name one): boxed,
    /// because zone_t pointers are their addresses.
    #[allow(clippy::vec_box)]
    gone: Vec<Box<Zone>>,
    holds: i64,
}

static ZONES: Mutex<Option<Zones>> = Mutex::new(None);

fn zones<R>(f: impl FnOnce(&mut Zones) -> R) -> R {
    let mut g = ZONES.lock().unwrap_or_else(|e| e.into_inner());
    let z = g.get_or_insert_with(|| {
        let mut z = Zones::default();
        z.live.insert(0, Box::new(Zone { ephemeral: None }));
        z
    });
    f(z)
}

fn zone_ptr(id: i32) -> *mut c_void {
    zones(|z| {
        z.live.get(&id).map_or(std::ptr::null_mut(), |b| {
            (&**b as *const Zone).cast_mut().cast()
        })
    })
}

/// Creates (or replaces the ephemeral range of) zone `id`.
pub fn add_zone(id: i32, ephemeral: Option<(u32, u32)>) {
    zones(|z| {
        if let Some(old) = z.live.insert(id, Box::new(Zone { ephemeral })) {
            z.gone.push(old);
        }
    });
}

/// Zone `id` stops running (zone_find_by_id no longer finds it).
pub fn remove_zone(id: i32) {
    zones(|z| {
        if let Some(old) = z.live.remove(&id) {
            z.gone.push(old);
        }
    });
}

/// Only the global zone runs, with no ephemeral ids (a new world starts
/// so): every other zone stops, as [`remove_zone`] stops one.
pub fn reset_zones() {
    zones(|z| {
        let changed: Vec<i32> = z
            .live
            .iter()
            .filter(|(id, zone)| **id != 0 || zone.ephemeral.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in changed {
            if let Some(old) = z.live.remove(&id) {
                z.gone.push(old);
            }
        }
        z.live
            .entry(0)
            .or_insert_with(|| Box::new(Zone { ephemeral: None }));
    });
}

/// Holds taken by zone_find_by_id and not yet released.
pub fn zone_holds() -> i64 {
    zones(|z| z.holds)
}

#[unsafe(no_mangle)]
pub extern "C" fn zone_find_by_id(id: i32) -> *mut c_void {
    let p = zone_ptr(id);
    if !p.is_null() {
        zones(|z| z.holds += 1);
    }
    p
}

#[unsafe(no_mangle)]
pub extern "C" fn zone_rele(zone: *mut c_void) {
    if zone.is_null() {
        super::event(Event::NullZoneRele);
        return;
    }
    zones(|z| z.holds -= 1);
}

fn valid_ephemeral(zone: *mut c_void, id: u32, what: &'static str) -> c_int {
    if id <= WK_MAX {
        return 1;
    }
    if zone.is_null() {
        super::event(Event::NullZoneDeref(what));
        return 0;
    }
    // SAFETY: zone pointers handed out by zone_find_by_id stay allocated
    // (removed zones are kept).
    let z = unsafe { &*zone.cast::<Zone>() };
    c_int::from(
        z.ephemeral
            .is_some_and(|(min, last)| id > min && id <= last),
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn valid_ephemeral_uid(zone: *mut c_void, id: u32) -> c_int {
    valid_ephemeral(zone, id, "valid_ephemeral_uid")
}

#[unsafe(no_mangle)]
pub extern "C" fn valid_ephemeral_gid(zone: *mut c_void, id: u32) -> c_int {
    valid_ephemeral(zone, id, "valid_ephemeral_gid")
}
