//! Zones, as far as ptm needs them: a held reference and id validity.

use core::ptr::NonNull;

use crate::logic::id_below_maxuid;
use crate::sys;

/// A held zone (`zone_find_by_id`); the hold is dropped with `zone_rele`.
#[must_use = "the zone hold is released as soon as the value is dropped"]
pub struct Zone {
    z: NonNull<sys::zone_t>,
}

impl Zone {
    /// `zone_find_by_id(id)`: the zone if it exists and is running (READY
    /// to DOWN), held; `None` otherwise.
    #[must_use = "the hold is released at once if the zone is dropped"]
    pub fn find_by_id(id: sys::zoneid_t) -> Option<Zone> {
        // SAFETY: no preconditions; a non-NULL result carries a hold that
        // this value releases exactly once.
        NonNull::new(unsafe { sys::zone_find_by_id(id) }).map(|z| Zone { z })
    }

    /// `VALID_UID(uid, zone)`: ids up to MAXUID, or an ephemeral id the
    /// zone has allocated.
    pub fn valid_uid(&self, uid: sys::uid_t) -> bool {
        // SAFETY: the zone is held, so it is live.
        id_below_maxuid(uid) || unsafe { sys::valid_ephemeral_uid(self.z.as_ptr(), uid) } != 0
    }

    /// `VALID_GID(gid, zone)`.
    pub fn valid_gid(&self, gid: sys::gid_t) -> bool {
        // SAFETY: the zone is held, so it is live.
        id_below_maxuid(gid) || unsafe { sys::valid_ephemeral_gid(self.z.as_ptr(), gid) } != 0
    }
}

impl Drop for Zone {
    fn drop(&mut self) {
        // SAFETY: releases the hold taken by zone_find_by_id, once.
        unsafe { sys::zone_rele(self.z.as_ptr()) }
    }
}
