//! The decisions ptm makes, as pure functions of plain values.
//!
//! Nothing here touches a queue, a message or a lock, so every rule of the
//! C driver that can be stated without the kernel is unit-tested on the
//! host: the `M_FLUSH` flag turnaround, which ioctls ptm answers itself,
//! when the subsidiary can take traffic, the `M_SETOPTS` ptm sends up, the
//! id range checks and the `dev_t` arithmetic.

use core::ffi::c_int;

use crate::flags::{FlushFlags, OpenFlags, PtState, SoFlags};
use crate::sys;

/// What ptm does with an `M_FLUSH` arriving on its write side, from the
/// message's first byte.
///
/// The manager's write queue feeds the subsidiary's read side, so the flags
/// are mirrored on the way through: a request to flush the manager's write
/// side becomes a request to flush the subsidiary's read side, and vice
/// versa. `FLUSHBAND` and any other bits ride along untouched. Each answer
/// is computed where it is asked for (a few bit operations on the byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushPlan(FlushFlags);

impl FlushPlan {
    /// Flush ptm's own write queue first (`FLUSHW` was set).
    #[inline(always)]
    pub fn flush_own_write(self) -> bool {
        self.0.contains(FlushFlags::FLUSHW)
    }

    /// Flush only one band of it (`FLUSHBAND` was set with `FLUSHW`).
    #[inline(always)]
    pub fn band_only(self) -> bool {
        self.flush_own_write() && self.0.contains(FlushFlags::FLUSHBAND)
    }

    /// Whether anything goes on to the subsidiary (FLUSHR or FLUSHW was
    /// set); if not, the message is freed instead.
    #[inline(always)]
    pub fn forwards(self) -> bool {
        self.0
            .intersects(FlushFlags::FLUSHR.union(FlushFlags::FLUSHW))
    }

    /// The flag byte to send on to the subsidiary (empty when nothing is).
    ///
    /// ptm.c computes it in two steps -- `(flag & ~FLUSHW) | FLUSHR` if
    /// FLUSHW is set, or-ed with `(flag & ~FLUSHR) | FLUSHW` if FLUSHR is --
    /// which comes to: FLUSHR and FLUSHW swapped, every other bit kept.
    #[inline(always)]
    pub fn forward(self) -> FlushFlags {
        const _: () = assert!(FlushFlags::FLUSHW.bits() == FlushFlags::FLUSHR.bits() << 1);
        if !self.forwards() {
            return FlushFlags::empty();
        }
        let b = self.0.bits();
        let (r, w) = (FlushFlags::FLUSHR.bits(), FlushFlags::FLUSHW.bits());
        FlushFlags::from_bits_retain((b & !(r | w)) | ((b & r) << 1) | ((b & w) >> 1))
    }
}

/// The [`FlushPlan`] for the first byte of an `M_FLUSH`.
#[inline(always)]
pub fn flush_plan(first_byte: u8) -> FlushPlan {
    FlushPlan(FlushFlags::from_bits_retain(first_byte))
}

/// The ioctls ptm answers itself; everything else goes to the subsidiary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PtIoctl {
    /// `UNLKPT`: allow subsidiary opens.
    Unlock,
    /// `ISPTM`: "is this a manager?" -- always yes.
    IsPtm,
    /// `PTSSTTY`: request XPG4v2 terminal semantics on the subsidiary.
    SetStty,
    /// `ZONEPT`: move the subsidiary into a zone (privileged).
    ZonePt,
    /// `OWNERPT`: set the subsidiary node's owner (grantpt).
    OwnerPt,
    /// Not ptm's: forwarded to the subsidiary, or refused when there is none.
    Other,
}

/// Classifies an `ioc_cmd`.
///
/// ptm's five commands are consecutive (`('P' << 8) | 1` to `| 5`), so
/// anything else is told by one range test on the offset from ISPTM.
pub fn classify_ioctl(cmd: c_int) -> PtIoctl {
    const _: () = assert!(
        sys::UNLKPT == sys::ISPTM + 1
            && sys::PTSSTTY == sys::ISPTM + 2
            && sys::ZONEPT == sys::ISPTM + 3
            && sys::OWNERPT == sys::ISPTM + 4
    );
    match cmd.wrapping_sub(sys::ISPTM) as u32 {
        0 => PtIoctl::IsPtm,
        1 => PtIoctl::Unlock,
        2 => PtIoctl::SetStty,
        3 => PtIoctl::ZonePt,
        4 => PtIoctl::OwnerPt,
        _ => PtIoctl::Other,
    }
}

/// Whether traffic may go to the subsidiary: it must be unlocked and open.
///
/// This is the test ptm applies to data, to ioctls it does not know, to
/// `M_FLUSH` forwarding and in its write service procedure.
pub fn subsidiary_ready(state: PtState, subsidiary_open: bool) -> bool {
    !state.contains(PtState::PTLOCK) && subsidiary_open
}

/// A message the write service procedure may only pass on when the
/// subsidiary has room: every ordinary (non-high-priority) type.
///
/// The C test is `db_type <= QPCTL`; no message type equals `QPCTL`, so this
/// is the "normal priority" class.
pub fn is_flow_controlled(db_type: u8) -> bool {
    c_int::from(db_type) <= sys::QPCTL
}

/// The `M_SETOPTS` ptm sends up its new stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetOpts {
    /// `so_flags`.
    pub flags: SoFlags,
    /// Stream-head read queue high-water mark.
    pub hiwat: usize,
    /// Stream-head read queue low-water mark.
    pub lowat: usize,
}

/// Stream-head read low-water mark ptm asks for (a literal in ptm.c).
pub const MANAGER_LOWAT: usize = 256;

/// The stream-head options for a manager opened with `oflag`: the tty
/// buffer size as high-water mark, 256 as low-water mark, and "this is a
/// terminal" unless the open said `O_NOCTTY`.
pub fn manager_setopts(oflag: OpenFlags) -> SetOpts {
    let mut flags = SoFlags::HIWAT | SoFlags::LOWAT;
    if !oflag.contains(OpenFlags::FNOCTTY) {
        flags |= SoFlags::ISTTY;
    }
    SetOpts {
        flags,
        hiwat: sys::_TTY_BUFSIZ as usize,
        lowat: MANAGER_LOWAT,
    }
}

/// `ZONEPT` accepts zone ids `MIN_ZONEID..=MAX_ZONEID` only.
pub fn zone_id_in_range(zoneid: sys::zoneid_t) -> bool {
    (sys::MIN_ZONEID..=sys::MAX_ZONEID).contains(&zoneid)
}

/// The part of `VALID_UID`/`VALID_GID` that needs no zone: ids up to
/// `MAXUID` are always valid; larger ones must be asked of the zone's
/// ephemeral id range.
pub fn id_below_maxuid(id: u32) -> bool {
    u64::from(id) <= sys::MAXUID as u64
}

/// `getminor(9F)` on LP64: the low 32 bits of a `dev_t`.
pub fn getminor(dev: sys::dev_t) -> sys::minor_t {
    (dev & sys::MAXMIN64) as sys::minor_t
}

/// `getmajor(9F)` on LP64: the high 32 bits of a `dev_t`.
pub fn getmajor(dev: sys::dev_t) -> sys::major_t {
    ((dev >> sys::NBITSMINOR64) & sys::MAXMAJ64) as sys::major_t
}

/// `makedevice(9F)` on LP64.
pub fn makedevice(major: sys::major_t, minor: sys::minor_t) -> sys::dev_t {
    (sys::dev_t::from(major) << sys::NBITSMINOR64) | (sys::dev_t::from(minor) & sys::MAXMIN64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: u8 = sys::FLUSHR as u8;
    const W: u8 = sys::FLUSHW as u8;
    const RW: u8 = sys::FLUSHRW as u8;
    const BAND: u8 = sys::FLUSHBAND as u8;

    #[test]
    fn flushw_flushes_own_queue_and_forwards_flushr() {
        let p = flush_plan(W);
        assert!(p.flush_own_write());
        assert!(!p.band_only());
        assert_eq!(p.forward().bits(), R);
    }

    #[test]
    fn flushr_forwards_flushw_without_flushing_own_queue() {
        let p = flush_plan(R);
        assert!(!p.flush_own_write());
        assert_eq!(p.forward().bits(), W);
    }

    #[test]
    fn flushrw_stays_flushrw() {
        let p = flush_plan(RW);
        assert!(p.flush_own_write());
        assert_eq!(p.forward().bits(), RW);
    }

    #[test]
    fn flushband_is_kept_in_both_directions() {
        let p = flush_plan(W | BAND);
        assert!(p.band_only());
        assert_eq!(p.forward().bits(), R | BAND);
        let p = flush_plan(R | BAND);
        assert!(
            !p.band_only(),
            "FLUSHR|FLUSHBAND does not touch ptm's queue"
        );
        assert_eq!(p.forward().bits(), W | BAND);
    }

    #[test]
    fn no_direction_means_nothing_to_forward() {
        for b in [0u8, BAND, 0x80, 0x08] {
            let p = flush_plan(b);
            assert!(!p.flush_own_write());
            assert!(p.forward().is_empty(), "byte {b:#x}");
            assert!(!p.forwards(), "byte {b:#x}");
        }
    }

    #[test]
    fn unknown_bits_ride_along_like_the_c_bit_operations() {
        // The C code computes (flag & ~FLUSHW) | FLUSHR etc. on the whole byte.
        for b in 0..=u8::MAX {
            let mut c: u8 = 0;
            if b & W != 0 {
                c = (b & !W) | R;
            }
            if b & R != 0 {
                c |= (b & !R) | W;
            }
            assert_eq!(flush_plan(b).forward().bits(), c, "byte {b:#04x}");
            assert_eq!(flush_plan(b).flush_own_write(), b & W != 0);
        }
    }

    #[test]
    fn ioctl_decision_table() {
        assert_eq!(classify_ioctl(0x5001), PtIoctl::IsPtm);
        assert_eq!(classify_ioctl(0x5002), PtIoctl::Unlock);
        assert_eq!(classify_ioctl(0x5003), PtIoctl::SetStty);
        assert_eq!(classify_ioctl(0x5004), PtIoctl::ZonePt);
        assert_eq!(classify_ioctl(0x5005), PtIoctl::OwnerPt);
        for other in [0, 0x5000, 0x5006, 0x5401, -1, c_int::MIN, c_int::MAX] {
            assert_eq!(classify_ioctl(other), PtIoctl::Other, "{other:#x}");
        }
    }

    #[test]
    fn subsidiary_must_be_open_and_unlocked() {
        let open = PtState::PTMOPEN;
        assert!(subsidiary_ready(open, true));
        assert!(!subsidiary_ready(open | PtState::PTLOCK, true));
        assert!(!subsidiary_ready(open, false));
        assert!(!subsidiary_ready(open | PtState::PTLOCK, false));
        assert!(subsidiary_ready(open | PtState::PTSTTY, true));
    }

    #[test]
    fn high_priority_messages_bypass_flow_control() {
        for t in [
            sys::M_DATA,
            sys::M_PROTO,
            sys::M_IOCTL,
            sys::M_CTL,
            sys::M_BREAK,
        ] {
            assert!(is_flow_controlled(t as u8), "{t:#x}");
        }
        for t in [
            sys::M_PCPROTO,
            sys::M_IOCACK,
            sys::M_IOCNAK,
            sys::M_FLUSH,
            sys::M_STOP,
        ] {
            assert!(!is_flow_controlled(t as u8), "{t:#x}");
        }
        assert!(
            is_flow_controlled(0x80),
            "QPCTL itself counts as normal, as in C"
        );
        assert!(!is_flow_controlled(0xff));
    }

    #[test]
    fn setopts_are_tty_sized_and_istty_unless_noctty() {
        let o = manager_setopts(OpenFlags::empty());
        assert_eq!(
            o.flags.bits(),
            (sys::SO_HIWAT | sys::SO_LOWAT | sys::SO_ISTTY) as u32
        );
        assert_eq!((o.hiwat, o.lowat), (2048, 256));
        let o = manager_setopts(OpenFlags::FNOCTTY);
        assert_eq!(o.flags.bits(), (sys::SO_HIWAT | sys::SO_LOWAT) as u32);
        let o = manager_setopts(OpenFlags::from_bits_retain(sys::FNOCTTY | sys::FNONBLOCK));
        assert!(!o.flags.contains(SoFlags::ISTTY));
    }

    #[test]
    fn zone_range_is_0_to_9999() {
        assert!(zone_id_in_range(0));
        assert!(zone_id_in_range(9999));
        assert!(!zone_id_in_range(10000));
        assert!(!zone_id_in_range(-1));
        assert!(!zone_id_in_range(i32::MIN));
    }

    #[test]
    fn ids_up_to_maxuid_need_no_zone() {
        assert!(id_below_maxuid(0));
        assert!(id_below_maxuid(0x7fff_ffff));
        assert!(!id_below_maxuid(0x8000_0000));
        assert!(!id_below_maxuid(u32::MAX));
    }

    #[test]
    fn dev_t_is_32_bit_major_and_minor() {
        let d = makedevice(0x1234, 0xdead_beef);
        assert_eq!(d, 0x0000_1234_dead_beef);
        assert_eq!(getmajor(d), 0x1234);
        assert_eq!(getminor(d), 0xdead_beef);
        assert_eq!(getminor(sys::NODEV), u32::MAX);
        assert_eq!(getmajor(sys::NODEV), u32::MAX);
        assert_eq!(makedevice(u32::MAX, u32::MAX), sys::NODEV);
    }
}
