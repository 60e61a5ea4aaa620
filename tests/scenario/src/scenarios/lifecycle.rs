//! Close and reopen: hangup of the subsidiary, the zero-length message to
//! the manager, the persistent write error of a premature manager write,
//! and the reopen of a hung-up subsidiary; and the module's own life under
//! modctl: `_fini` refused while a pty is open, and load/unload cycles.

use super::common::*;
use crate::*;

const NB: i32 = O_RDWR | O_NONBLOCK;

pub fn manager_close_hangs_up_the_subsidiary(b: &dyn Backend) {
    scenario(b, "manager close → subsidiary hangup", |w| {
        let (m, s, minor) = pair(w);
        w.write(m, b"buffered").unwrap();
        w.close(m).unwrap();
        let t = w.trace_lines().join("\n");
        assert!(t.contains("S1 head <- M_HANGUP band 0 len 0"), "{t}");
        assert_eq!(w.pt_state(minor), Some(0x4), "only PTSOPEN left");
        // Buffered data is still read, then EOF even on a blocking fd.
        assert_eq!(w.read(s, 100).unwrap(), b"buffered");
        assert_eq!(w.read(s, 100).unwrap(), b"");
        assert_eq!(w.read(s, 100).unwrap(), b"");
        assert_eq!(w.write(s, b"x"), Err(Errno::EIO));
        assert_eq!(w.ioctl(s, ISPTM, &[]), Err(Errno::ENXIO));
        assert_eq!(w.tty_ioctl(s, TCGETS, &[]), Err(Errno::ENXIO));
        assert_eq!(w.flush(s, FLUSHRW), Err(Errno::ENXIO));
        let p = w.poll(s).unwrap();
        assert!(p.pollhup && !p.pollout);
        w.close(s).unwrap();
        assert_eq!(w.pt_state(minor), None, "pty freed");
        assert_eq!(w.open_subsidiary(minor, O_RDWR), Err(Errno::ENOENT));
    });
}

pub fn last_subsidiary_close_gives_exactly_one_zero_length_read(b: &dyn Backend) {
    scenario(b, "subsidiary close → one zero-length read", |w| {
        let (m, s, minor) = pair_flags(w, NB, O_RDWR);
        w.write(s, b"bye").unwrap();
        w.close(s).unwrap();
        assert_eq!(
            w.pt_state(minor),
            Some(0x2),
            "PTMOPEN only; PTLOCK stays clear"
        );
        assert_eq!(w.read(m, 100).unwrap(), b"bye");
        assert_eq!(w.read(m, 100).unwrap(), b"", "the zero-length message");
        assert_eq!(w.read(m, 100), Err(Errno::EAGAIN), "exactly one");
        // The subsidiary can be opened again while the manager lives.
        let s2 = w.open_subsidiary(minor, O_RDWR).unwrap();
        w.write(m, b"again").unwrap();
        assert_eq!(w.read(s2, 100).unwrap(), b"again");
        w.close(s2).unwrap();
        assert_eq!(w.read(m, 100).unwrap(), b"");
        assert_eq!(w.read(m, 100), Err(Errno::EAGAIN));
    });
}

pub fn blocking_manager_read_after_the_zero_length_read_blocks(b: &dyn Backend) {
    scenario(b, "blocking manager read after EOF marker", |w| {
        let (m, s, _) = pair(w);
        w.close(s).unwrap();
        assert_eq!(w.read(m, 10).unwrap(), b"");
        assert_eq!(w.read(m, 10), Err(Errno::BLOCKED));
    });
}

pub fn premature_manager_write_sets_a_permanent_write_error(b: &dyn Backend) {
    scenario(b, "premature write → permanent EINVAL", |w| {
        let (m, minor) = manager(w);
        w.set_cred(Cred::user(1000, 10));
        // The write that triggers it succeeds.
        assert_eq!(w.write(m, b"too early").unwrap(), 9);
        let t = w.trace_lines().join("\n");
        assert!(
            t.contains("M1 head <- M_ERROR band 0 len 2 \"\\xff\\x16\""),
            "{t}"
        );
        assert_eq!(w.write(m, b"again"), Err(Errno::EINVAL));
        assert_eq!(w.write(m, b""), Err(Errno::EINVAL));
        assert_eq!(w.ioctl(m, UNLKPT, &[]), Err(Errno::EINVAL));
        assert_eq!(w.ioctl(m, ISPTM, &[]), Err(Errno::EINVAL));
        assert_eq!(w.ptsname(m), Err(Errno::EINVAL));
        assert_eq!(w.grantpt(m), Err(Errno::EINVAL), "ISPTM fails first");
        assert_eq!(w.flush(m, FLUSHRW), Err(Errno::EINVAL));
        assert_eq!(w.pt_state(minor), Some(0x3), "still locked");
        let p = w.poll(m).unwrap();
        assert!(p.pollerr && !p.pollin && !p.pollout, "POLLERR alone: {p:?}");
        assert_eq!(w.read(m, 10), Err(Errno::BLOCKED), "reads are unaffected");
    });
}

pub fn premature_multi_chunk_write_sends_an_error_per_chunk(b: &dyn Backend) {
    scenario(b, "premature 1000-byte write", |w| {
        let (m, _) = manager(w);
        // The stream head does not recheck errors between chunks of a tty
        // write: both chunks reach ptm and both become M_ERROR; only the
        // first loops an M_FLUSH back.
        assert_eq!(w.write(m, &[7u8; 1000]).unwrap(), 1000);
        let t = w.trace_lines();
        let errors = t
            .iter()
            .filter(|l| l.contains("M1 head <- M_ERROR"))
            .count();
        assert_eq!(errors, 2);
    });
}

pub fn write_after_subsidiary_closed_sets_the_error_too(b: &dyn Backend) {
    scenario(b, "manager write with no subsidiary", |w| {
        let (m, s, minor) = pair_flags(w, NB, NB);
        w.close(s).unwrap();
        assert_eq!(w.read(m, 10).unwrap(), b"");
        assert_eq!(w.write(m, b"anyone?").unwrap(), 7);
        assert_eq!(w.write(m, b"x"), Err(Errno::EINVAL));
        // The subsidiary can still be opened; the manager stays broken.
        let s2 = w.open_subsidiary(minor, NB).unwrap();
        assert_eq!(w.write(m, b"x"), Err(Errno::EINVAL));
        assert_eq!(w.write(s2, b"up").unwrap(), 2);
        assert_eq!(w.read(m, 10).unwrap(), b"up", "reads still work");
    });
}

pub fn reopening_a_hung_up_subsidiary_clears_the_hangup(b: &dyn Backend) {
    scenario(b, "reopen after hangup", |w| {
        let (m, s, minor) = pair_flags(w, O_RDWR, NB);
        w.close(m).unwrap();
        assert_eq!(w.write(s, b"x"), Err(Errno::EIO));
        // ptsopen accepts the reopen (q_ptr is set); stropen clears STRHUP.
        let s2 = w.open_subsidiary(minor, NB).unwrap();
        assert_eq!(
            w.write(s2, b"into the void").unwrap(),
            13,
            "discarded by pts"
        );
        assert_eq!(w.write(s, b"x").unwrap(), 1);
        assert_eq!(w.read(s, 10), Err(Errno::EAGAIN), "no EOF any more");
        assert_eq!(w.ioctl(s, ISPTM, &[]), Err(Errno::EINVAL), "NAKed by pts");
        assert_eq!(w.tty_ioctl(s, TCGETS, &[]), Err(Errno::EINVAL));
    });
}

pub fn subsidiary_close_with_queued_ioctl_and_data_after_manager_close(b: &dyn Backend) {
    scenario(b, "pts drains with no manager", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        // Fill the manager head, so the subsidiary's next data is held on
        // pts's write queue.
        assert_eq!(w.write(s, &[1u8; 4096]).unwrap(), 4096);
        w.close(m).unwrap();
        // ptmclose enabled pts's write queue: ptswsrv found no manager and
        // discarded what was queued.
        assert_eq!(w.driver_write_queue(s).unwrap().count, 0);
        w.close(s).unwrap();
    });
}

pub fn subsidiary_closes_while_manager_output_is_held(b: &dyn Backend) {
    scenario(b, "manager output stuck after subsidiary close", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        assert_eq!(w.write(m, &[2u8; 3000]).unwrap(), 2560);
        w.close(s).unwrap();
        // Nothing enables ptm's write queue again: the held data stays and
        // the manager cannot write.
        assert_eq!(w.driver_write_queue(m).unwrap().count, 512);
        assert_eq!(w.write(m, b"x"), Err(Errno::EAGAIN));
        assert_eq!(w.read(m, 10).unwrap(), b"");
    });
}

/// The tests of this module.
/// modctl: `_fini` is refused (EBUSY) while a pty is open -- the driver
/// is held, and detach is not even tried -- and accepted once both ends
/// are closed; the driver is detached then (its minor nodes are gone).
pub fn fini_is_refused_while_a_pty_is_open_and_accepted_after(b: &dyn Backend) {
    scenario(b, "_fini busy, then idle", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        assert_eq!(w.unload(), Err(Errno::EBUSY), "manager and subsidiary open");
        assert!(w.is_loaded());
        assert_eq!(w.minor_nodes().len(), 2, "still attached");
        w.write(s, b"busy").unwrap();
        assert_eq!(w.read(m, 10).unwrap(), b"busy");
        w.close(s).unwrap();
        w.close(m).unwrap();
        w.unload().expect("no pty open");
        assert!(!w.is_loaded());
        assert!(w.minor_nodes().is_empty(), "detached");
        w.reload().expect("loaded again");
    });
}

/// Many load/unload cycles, each with a pty used and closed: the same
/// first pty every time, nothing left behind by any cycle.
pub fn many_load_unload_cycles_leave_nothing_behind(b: &dyn Backend) {
    const CYCLES: usize = 50;
    scenario(b, "load/unload cycles", |w| {
        for cycle in 0..CYCLES {
            let (m, s, minor) = pair_flags(w, NB, NB);
            assert_eq!(minor, 1, "cycle {cycle}: the first pty again");
            w.write(m, format!("cycle {cycle}").as_bytes()).unwrap();
            assert_eq!(w.read(s, 100).unwrap(), format!("cycle {cycle}").as_bytes());
            w.close(s).unwrap();
            w.close(m).unwrap();
            w.unload()
                .unwrap_or_else(|e| panic!("cycle {cycle}: unload: {e:?}"));
            assert!(!w.is_loaded());
            assert!(
                w.minor_nodes().is_empty(),
                "cycle {cycle}: minor nodes left"
            );
            assert!(w.leaks().is_clean(), "cycle {cycle}: {:?}", w.leaks());
            assert!(
                w.anomalies().is_empty(),
                "cycle {cycle}: {:?}",
                w.anomalies()
            );
            w.reload()
                .unwrap_or_else(|e| panic!("cycle {cycle}: reload: {e}"));
        }
    });
}

pub fn tests() -> Vec<Test> {
    named_tests![
        "lifecycle";
        fini_is_refused_while_a_pty_is_open_and_accepted_after,
        many_load_unload_cycles_leave_nothing_behind,
        manager_close_hangs_up_the_subsidiary,
        last_subsidiary_close_gives_exactly_one_zero_length_read,
        blocking_manager_read_after_the_zero_length_read_blocks,
        premature_manager_write_sets_a_permanent_write_error,
        premature_multi_chunk_write_sends_an_error_per_chunk,
        write_after_subsidiary_closed_sets_the_error_too,
        reopening_a_hung_up_subsidiary_clears_the_hangup,
        subsidiary_close_with_queued_ioctl_and_data_after_manager_close,
        subsidiary_closes_while_manager_output_is_held,
    ]
}
