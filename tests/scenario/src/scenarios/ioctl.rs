//! Every ioctl ptm handles, accepted and refused, plus forwarding of
//! unknown ones, and the OWNERPT-on-a-vanished-zone divergence.

use super::common::*;
use crate::*;

const NB: i32 = O_RDWR | O_NONBLOCK;

pub fn isptm_on_manager_and_subsidiary(b: &dyn Backend) {
    scenario(b, "ISPTM", |w| {
        let (m, s, _) = pair(w);
        let r = w.ioctl(m, ISPTM, &[]).unwrap();
        assert_eq!(
            r,
            IocReply {
                rval: 0,
                data: vec![]
            }
        );
        // On the subsidiary it travels to the manager's stream head, which
        // NAKs it: EINVAL.
        assert_eq!(w.ioctl(s, ISPTM, &[]), Err(Errno::EINVAL));
    });
}

pub fn ptsstty_from_manager_and_subsidiary(b: &dyn Backend) {
    scenario(b, "PTSSTTY", |w| {
        let (m, minor) = manager(w);
        w.ioctl(m, PTSSTTY, &[]).unwrap();
        assert_eq!(w.pt_state(minor), Some(0x3 | 0x8));
        w.ioctl(m, PTSSTTY, &[]).expect("ptm ACKs it in any state");
        w.ioctl(m, UNLKPT, &[]).unwrap();
        let s = w.open_subsidiary(minor, O_RDWR).unwrap();
        let head = w.head_state(s).unwrap();
        assert!(head.xpg4_tty, "pts marks the stream XPG4: {head:?}");
        // From the subsidiary, pts answers: EEXIST when already set.
        assert_eq!(w.ioctl(s, PTSSTTY, &[]), Err(Errno::EEXIST));
        w.close(s).unwrap();
        assert_eq!(w.pt_state(minor), Some(0x2), "ptsclose clears PTSTTY");
        let s = w.open_subsidiary(minor, O_RDWR).unwrap();
        w.ioctl(s, PTSSTTY, &[]).expect("set by the subsidiary");
        assert_eq!(w.ioctl(s, PTSSTTY, &[]), Err(Errno::EEXIST));
    });
}

pub fn zonept_privileged_unprivileged_short_and_range(b: &dyn Backend) {
    scenario(b, "ZONEPT", |w| {
        let (m, minor) = manager(w);
        w.set_cred(Cred::user(1000, 10));
        assert_eq!(w.ioctl(m, ZONEPT, &zone(5)), Err(Errno::EPERM));
        w.set_cred(Cred::root());
        assert_eq!(w.ioctl(m, ZONEPT, &[]), Err(Errno::EINVAL), "no payload");
        assert_eq!(w.ioctl(m, ZONEPT, &[5, 0]), Err(Errno::EINVAL), "short");
        assert_eq!(w.ioctl(m, ZONEPT, &zone(-1)), Err(Errno::EINVAL));
        assert_eq!(w.ioctl(m, ZONEPT, &zone(10_000)), Err(Errno::EINVAL));
        assert_eq!(w.pt_owner(minor).unwrap().0, 0, "unchanged");
        w.ioctl(m, ZONEPT, &zone(9_999)).unwrap();
        assert_eq!(w.pt_owner(minor).unwrap().0, 9_999);
        // The payload may arrive in pieces: miocpullup joins them.
        w.ioctl_blocks(m, ZONEPT, &[&[5, 0], &[0, 0]]).unwrap();
        assert_eq!(w.pt_owner(minor).unwrap().0, 5);
        // The zone does not have to exist. /dev/pts/N is now visible only
        // from zone 5, and only zone 5 may open it.
        w.ioctl(m, UNLKPT, &[]).unwrap();
        assert_eq!(w.open_subsidiary(minor, O_RDWR), Err(Errno::ENOENT));
        assert_eq!(w.open_subsidiary_node(minor, O_RDWR), Err(Errno::EPERM));
        w.set_zone(5);
        let s = w.open_subsidiary(minor, O_RDWR).unwrap();
        w.set_zone(0);
        // Even a reopen from another zone is refused.
        assert_eq!(w.open_subsidiary_node(minor, O_RDWR), Err(Errno::EPERM));
        w.close(s).unwrap();
    });
}

pub fn ownerpt_valid_invalid_and_short(b: &dyn Backend) {
    scenario(b, "OWNERPT", |w| {
        let (m, minor) = manager(w);
        // No privilege check: an ordinary user may set the owner.
        w.set_cred(Cred::user(1000, 10));
        w.ioctl(m, OWNERPT, &own(1000, 7)).unwrap();
        assert_eq!(w.pt_owner(minor), Some((0, 1000, 7)));
        let n = w.pts_node(minor).unwrap();
        assert_eq!((n.uid, n.gid, n.mode), (1000, 7, 0o020620));
        assert_eq!(
            w.ioctl(m, OWNERPT, &own(1, 1)[..4]),
            Err(Errno::EINVAL),
            "short"
        );
        assert_eq!(w.ioctl(m, OWNERPT, &[]), Err(Errno::EINVAL), "no payload");
        // Ids up to 2^31 are valid; above it only a zone's ephemeral range.
        w.ioctl(m, OWNERPT, &own(0x8000_0000, 0x8000_0000)).unwrap();
        assert_eq!(
            w.ioctl(m, OWNERPT, &own(0x8000_0001, 7)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            w.ioctl(m, OWNERPT, &own(7, 0xffff_ffff)),
            Err(Errno::EINVAL)
        );
        assert_eq!(w.pt_owner(minor), Some((0, 0x8000_0000, 0x8000_0000)));
        w.ioctl_blocks(m, OWNERPT, &[&own(3, 4)[..3], &own(3, 4)[3..]])
            .unwrap();
        assert_eq!(w.pt_owner(minor), Some((0, 3, 4)));
    });
}

pub fn ownerpt_uses_the_ptys_zone_ephemeral_range(b: &dyn Backend) {
    scenario(b, "OWNERPT ephemeral ids", |w| {
        w.add_zone(3, Some((0x9000_0000, 0x9000_00ff)));
        let (m, minor) = manager(w);
        assert_eq!(
            w.ioctl(m, OWNERPT, &own(0x9000_0005, 7)),
            Err(Errno::EINVAL)
        );
        w.ioctl(m, ZONEPT, &zone(3)).unwrap();
        w.ioctl(m, OWNERPT, &own(0x9000_0005, 0x9000_0006)).unwrap();
        assert_eq!(w.pt_owner(minor), Some((3, 0x9000_0005, 0x9000_0006)));
    });
}

pub fn grantpt_sets_owner_to_caller_and_tty_group(b: &dyn Backend) {
    scenario(b, "grantpt", |w| {
        w.set_cred(Cred::user(501, 20));
        let (m, minor) = manager(w);
        // Before grantpt the node belongs to root: the user cannot open it.
        w.unlockpt(m).unwrap();
        assert_eq!(w.open_subsidiary(minor, O_RDWR), Err(Errno::EACCES));
        w.grantpt(m).unwrap();
        let n = w.pts_node(minor).unwrap();
        assert_eq!((n.uid, n.gid), (501, TTY_GID));
        let s = w.open_subsidiary(minor, O_RDWR).unwrap();
        w.close(s).unwrap();
    });
}

pub fn unknown_ioctls_are_forwarded_or_nakked(b: &dyn Backend) {
    scenario(b, "unknown ioctls", |w| {
        let (m, minor) = manager(w);
        // Locked: NAKed by ptm.
        assert_eq!(w.ioctl(m, 0x1234, b"data"), Err(Errno::EINVAL));
        assert_eq!(w.tty_ioctl(m, TIOCGWINSZ, &[]), Err(Errno::EINVAL));
        // Unlocked but no subsidiary: NAKed by ptm.
        w.unlockpt(m).unwrap();
        assert_eq!(w.ioctl(m, 0x1234, b"data"), Err(Errno::EINVAL));
        let before = w
            .trace_lines()
            .iter()
            .filter(|l| l.contains("S1 head"))
            .count();
        assert_eq!(before, 0);
        // With a subsidiary: forwarded, NAKed by the subsidiary's head.
        let s = w.open_subsidiary(minor, NB).unwrap();
        assert_eq!(w.ioctl(m, 0x1234, b"data"), Err(Errno::EINVAL));
        let t = w.trace_lines().join("\n");
        assert!(
            t.contains("S1 head <- M_IOCTL band 0 len 40 cmd=0x1234") && t.contains("data=4"),
            "{t}"
        );
        assert_eq!(w.tty_ioctl(m, TCGETS, &[]), Err(Errno::EINVAL));
        // From a raw subsidiary: to the manager's head, NAKed back.
        assert_eq!(w.tty_ioctl(s, TIOCSWINSZ, &[0; 8]), Err(Errno::EINVAL));
        assert_eq!(w.ioctl(s, UNLKPT, &[]), Err(Errno::EINVAL));
    });
}

pub fn forwarded_ioctl_is_flow_controlled_like_data(b: &dyn Backend) {
    scenario(b, "ioctl behind held data", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        assert_eq!(w.write(m, &[0u8; 2560]).unwrap(), 2560);
        // The ioctl queues behind the held data on ptm's write queue and
        // nobody answers it: the I_STR ioctl times out.
        assert_eq!(w.ioctl(m, 0x4321, &[]), Err(Errno::ETIME));
        let q = w.driver_write_queue(m).unwrap();
        assert_eq!(q.messages.len(), 2, "data and the ioctl stay queued");
        // Draining the subsidiary releases both; the late NAK is ignored.
        assert_eq!(drain(w, s, 4096, 100_000).len(), 2560);
        assert!(w.driver_write_queue(m).unwrap().messages.is_empty());
    });
}

pub fn ownerpt_on_a_vanished_zone(b: &dyn Backend) {
    // ZONEPT accepts a zone that does not exist (or has halted); a later
    // OWNERPT then gets NULL from zone_find_by_id. The C ptm passes it to
    // zone_rele (a panic on illumos; the simulator reports the event). The
    // Rust ptm refuses with EINVAL (a deliberate fix).
    require_c_oracle(b, "OWNERPT on a vanished zone, C half");
    scenario_each(b, "OWNERPT on a vanished zone", |w| {
        w.add_zone(7, None);
        let (m, minor) = manager(w);
        w.ioctl(m, ZONEPT, &zone(7)).unwrap();
        w.remove_zone(7);
        let r = w.ioctl(m, OWNERPT, &own(1, 1));
        if w.variant().is_c_ptm() {
            assert_eq!(r.unwrap().rval, 0, "C ptm ACKs after zone_rele(NULL)");
            assert_eq!(w.null_zone_reles(), 1);
            assert_eq!(w.pt_owner(minor), Some((7, 1, 1)));
            // An id above 2^31 dereferences the NULL zone even earlier.
            assert_eq!(
                w.ioctl(m, OWNERPT, &own(0x8000_0001, 1)),
                Err(Errno::EINVAL)
            );
            let t = w.trace_lines().join("\n");
            assert!(
                t.contains("NULL zone dereferenced in valid_ephemeral_uid"),
                "{t}"
            );
            assert_eq!(w.null_zone_reles(), 2);
        } else {
            assert_eq!(r, Err(Errno::EINVAL), "Rust ptm NAKs");
            assert_eq!(w.null_zone_reles(), 0);
            assert_eq!(w.pt_owner(minor), Some((7, 0, 0)));
            assert_eq!(
                w.ioctl(m, OWNERPT, &own(0x8000_0001, 1)),
                Err(Errno::EINVAL)
            );
            assert_eq!(w.null_zone_reles(), 0);
            assert!(!w.trace_lines().join("\n").contains("NULL zone"));
        }
        // A zone that exists: both fine again.
        w.add_zone(7, None);
        w.ioctl(m, OWNERPT, &own(2, 2)).unwrap();
    });
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    named_tests![
        "ioctl";
        isptm_on_manager_and_subsidiary,
        ptsstty_from_manager_and_subsidiary,
        zonept_privileged_unprivileged_short_and_range,
        ownerpt_valid_invalid_and_short,
        ownerpt_uses_the_ptys_zone_ephemeral_range,
        grantpt_sets_owner_to_caller_and_tty_group,
        unknown_ioctls_are_forwarded_or_nakked,
        forwarded_ioctl_is_flow_controlled_like_data,
        ownerpt_on_a_vanished_zone,
    ]
}
