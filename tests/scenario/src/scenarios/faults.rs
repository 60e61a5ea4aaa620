//! Fault injection: ENOMEM at each allocation point, pt_ttys_alloc failure,
//! pts attach failure, pty limits. Every scenario ends with the harness's
//! leak check (no message, data block, pt_ttys or zone hold left).

use super::common::*;
use crate::*;

const NB: i32 = O_RDWR | O_NONBLOCK;

pub fn enomem_for_the_m_setopts_block(b: &dyn Backend) {
    scenario(b, "ENOMEM: ptmopen's M_SETOPTS allocb", |w| {
        let before = w.allocb_calls();
        w.fail_nth_allocb(1);
        assert_eq!(w.open_manager(O_RDWR), Err(Errno::ENOMEM));
        assert_eq!(
            w.allocb_calls(),
            before + 1,
            "the M_SETOPTS allocb is the first"
        );
        assert!(w.leaks().is_clean(), "{:?}", w.leaks());
        let (_m, minor) = manager(w);
        assert_eq!(minor, 1, "no minor was consumed by the failed open");
    });
}

pub fn enomem_from_pt_ttys_alloc(b: &dyn Backend) {
    scenario(b, "ENOMEM: pt_ttys_alloc", |w| {
        w.fail_next_pt_ttys_alloc();
        assert_eq!(w.open_manager(O_RDWR), Err(Errno::ENOMEM));
        assert!(
            w.leaks().is_clean(),
            "M_SETOPTS block freed: {:?}",
            w.leaks()
        );
        manager(w);
    });
}

pub fn pty_limit_gives_enomem(b: &dyn Backend) {
    scenario(b, "pty limit", |w| {
        w.set_pty_limit(Some(2));
        let (a, _) = manager(w);
        manager(w);
        assert_eq!(w.open_manager(O_RDWR), Err(Errno::ENOMEM));
        w.close(a).unwrap();
        manager(w);
    });
}

pub fn attach_subsidiary_failure_gives_enxio(b: &dyn Backend) {
    scenario(b, "ptms_attach_subsidiary failure", |w| {
        w.fail_attach_subsidiary(true);
        let before = w.allocb_calls();
        assert_eq!(w.open_manager(O_RDWR), Err(Errno::ENXIO));
        assert_eq!(w.allocb_calls(), before, "checked before any allocation");
        w.fail_attach_subsidiary(false);
        manager(w);
    });
}

pub fn enomem_in_pts_open(b: &dyn Backend) {
    scenario(b, "ENOMEM: ptsopen's two allocations", |w| {
        let (m, minor) = manager(w);
        w.unlockpt(m).unwrap();
        w.fail_nth_allocb(1);
        assert_eq!(w.open_subsidiary(minor, O_RDWR), Err(Errno::ENOMEM));
        w.fail_nth_allocb(2);
        assert_eq!(w.open_subsidiary(minor, O_RDWR), Err(Errno::ENOMEM));
        assert_eq!(w.pt_state(minor), Some(0x2), "PTSOPEN not set");
        let s = w.open_subsidiary(minor, O_RDWR).unwrap();
        w.close(s).unwrap();
    });
}

pub fn enomem_for_the_hangup_on_manager_close(b: &dyn Backend) {
    scenario(b, "ENOMEM: ptmclose's M_HANGUP", |w| {
        // putnextctl allocates with allocb_tryhard, which tries eight
        // sizes: one failure is absorbed...
        let (m, s, _) = pair_flags(w, O_RDWR, NB);
        w.fail_nth_allocb(1);
        w.close(m).unwrap();
        let t = w.trace_lines().join("\n");
        assert!(
            t.contains("M_HANGUP"),
            "the hangup went on the second try: {t}"
        );
        assert_eq!(w.write(s, b"x"), Err(Errno::EIO), "hung up");
        w.close(s).unwrap();
        // ...eight in a row lose the hangup.
        let (m, s, _) = pair_flags(w, O_RDWR, NB);
        let before = w.trace_lines().len();
        for n in 1..=8 {
            w.fail_nth_allocb(n);
        }
        w.close(m).unwrap();
        let t = w.trace_lines()[before..].join("\n");
        assert!(!t.contains("M_HANGUP"), "no hangup could be sent: {t}");
        // The subsidiary never learns: its writes vanish, reads find nothing.
        assert_eq!(w.write(s, b"hello?").unwrap(), 6);
        assert_eq!(w.read(s, 10), Err(Errno::EAGAIN));
    });
}

pub fn enomem_in_miocpullup(b: &dyn Backend) {
    scenario(b, "ENOMEM: miocpullup of a split payload", |w| {
        let (m, minor) = manager(w);
        w.fail_nth_allocb(1);
        assert_eq!(
            w.ioctl_blocks(m, ZONEPT, &[&[1, 0], &[0, 0]]),
            Err(Errno::ENOMEM)
        );
        assert_eq!(w.pt_owner(minor).unwrap().0, 0);
        w.fail_nth_allocb(1);
        assert_eq!(
            w.ioctl_blocks(m, OWNERPT, &[&[1, 0, 0, 0], &[2, 0, 0, 0]]),
            Err(Errno::ENOMEM)
        );
        // Without a fault both work.
        w.ioctl_blocks(m, ZONEPT, &[&[1, 0], &[0, 0]]).unwrap();
        assert_eq!(w.pt_owner(minor).unwrap().0, 1);
    });
}

pub fn enomem_in_pts_flushrw_copy(b: &dyn Backend) {
    scenario(b, "ENOMEM: pts's copyb of FLUSHRW", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write(s, b"toward manager").unwrap();
        w.write(m, b"toward subsidiary").unwrap();
        w.fail_nth_allocb(1);
        w.flush(s, FLUSHRW).unwrap();
        // The copy for the manager could not be made: its read side keeps
        // the data; the subsidiary's own read side is flushed.
        assert_eq!(w.read(m, 100).unwrap(), b"toward manager");
        assert_eq!(w.read(s, 100), Err(Errno::EAGAIN));
    });
}

pub fn every_single_allocb_failure_during_a_session_leaves_no_leak(b: &dyn Backend) {
    // Run a whole session once to count its allocb calls, then again with
    // each one of them failing in turn. Whatever the outcome of each call,
    // nothing may leak and no anomaly may be recorded (the harness checks).
    fn session(w: &mut dyn Pty) {
        let _ = (|| -> Result<(), Errno> {
            let m = w.open_manager(NB)?;
            let minor = w.minor_of(m)?;
            w.unlockpt(m)?;
            let s = w.open_subsidiary(minor, NB)?;
            w.write(m, b"abc")?;
            w.write(s, b"def")?;
            w.flush(s, FLUSHRW)?;
            w.flush(m, FLUSHRW)?;
            w.ioctl_blocks(m, ZONEPT, &[&[0, 0], &[0, 0]])?;
            w.close(m)?;
            w.close(s)?;
            Ok(())
        })();
    }
    let mut total = 0;
    scenario(b, "allocb count of a session", |w| {
        let before = w.allocb_calls();
        session(w);
        let n = w.allocb_calls() - before;
        assert!(n >= 4, "{n}");
        println!("{}: {n} allocb calls", w.variant().name);
    });
    for v in b.variants() {
        let mut w = b.world(v).unwrap();
        session(&mut *w);
        total = total.max(w.allocb_calls());
        w.finish().unwrap();
    }
    for k in 1..=total {
        scenario(b, &format!("session with allocb #{k} failing"), |w| {
            w.fail_nth_allocb(k);
            session(w);
        });
    }
}

/// An ioctl that is not ptm's own, in band 1, while no band structure can
/// be allocated: putq fails. The Rust driver NAKs it with ENOSR, so that
/// its sender wakes at once; ptm.c ignores putq's failure and leaks the
/// message, its sender never answered (a deliberate difference, README).
pub fn an_ioctl_that_cannot_be_queued_is_naked_with_enosr(b: &dyn Backend) {
    use ptm::sys::{ENOSR, M_IOCNAK, M_IOCTL};
    let (ioctl, nak) = (M_IOCTL as u8, M_IOCNAK as u8);
    for v in b.variants() {
        let mut w = b.world(v).unwrap();
        let (m, _s, _) = pair_flags(&mut *w, NB, NB);
        w.fail_next_qband_alloc();
        let (from, before) = (w.trace().len(), w.leaks());
        w.inject_down(m, ioctl, 1, &iocblk_bytes(TCGETS, 0x4242))
            .unwrap();
        let trace = w.trace_lines()[from..].join("\n");
        let naks: Vec<String> = w.trace()[from..]
            .iter()
            .filter_map(|e| match e {
                TraceEvent::HeadRecv { msg, .. } if msg.mtype == nak => Some(msg.detail.clone()),
                _ => None,
            })
            .collect();
        if v.is_c_ptm() {
            assert!(naks.is_empty(), "[{}] {trace}", v.name);
            assert_eq!(
                w.leaks().dblks,
                before.dblks + 1,
                "[{}] ptm.c leaks the ioctl",
                v.name
            );
            // The leak is ptm.c's: the world is dropped, not finished.
            continue;
        }
        assert_eq!(naks.len(), 1, "[{}] one NAK: {trace}", v.name);
        assert_eq!(w.leaks(), before, "[{}] the NAK was freed", v.name);
        assert!(
            naks[0].starts_with(&format!("cmd={TCGETS:#x} "))
                && naks[0].contains(&format!("error={ENOSR} ")),
            "[{}] {}",
            v.name,
            naks[0]
        );
        w.finish()
            .unwrap_or_else(|e| panic!("[{}] nothing leaked: {e}", v.name));
    }
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    named_tests![
        "faults";
        enomem_for_the_m_setopts_block,
        enomem_from_pt_ttys_alloc,
        pty_limit_gives_enomem,
        attach_subsidiary_failure_gives_enxio,
        enomem_in_pts_open,
        enomem_for_the_hangup_on_manager_close,
        enomem_in_miocpullup,
        enomem_in_pts_flushrw_copy,
        every_single_allocb_failure_during_a_session_leaves_no_leak,
        an_ioctl_that_cannot_be_queued_is_naked_with_enosr,
    ]
}
