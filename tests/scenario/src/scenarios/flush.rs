//! M_FLUSH translation between the two sides (FLUSHR ↔ FLUSHW), the stream
//! heads' loop-back, FLUSHBAND, and the pts FLUSHRW copy.

use super::common::*;
use crate::*;

const NB: i32 = O_RDWR | O_NONBLOCK;

fn heads(w: &dyn Pty, what: &str) -> Vec<String> {
    w.trace_lines()
        .into_iter()
        .filter(|l| l.contains(what))
        .collect()
}

pub fn manager_flushr_flushes_data_from_the_subsidiary(b: &dyn Backend) {
    scenario(b, "manager I_FLUSH FLUSHR", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write(s, b"stale").unwrap();
        w.write(m, b"keep").unwrap();
        w.flush(m, FLUSHR).unwrap();
        // ptm turns FLUSHR into FLUSHW for the subsidiary head, which loops
        // it back; pts turns it into FLUSHR for the manager head.
        let f = heads(w, "M_FLUSH");
        assert_eq!(
            f,
            [
                "  S1 head <- M_FLUSH band 0 len 1 \"\\x02\"",
                "  M1 head <- M_FLUSH band 0 len 1 \"\\x01\""
            ]
        );
        assert_eq!(
            w.read(m, 10),
            Err(Errno::EAGAIN),
            "manager read side flushed"
        );
        assert_eq!(w.read(s, 10).unwrap(), b"keep", "subsidiary read side kept");
    });
}

pub fn manager_flushw_flushes_the_subsidiary_read_side(b: &dyn Backend) {
    scenario(b, "manager I_FLUSH FLUSHW", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write(m, b"pending").unwrap();
        w.write(s, b"keep").unwrap();
        w.flush(m, FLUSHW).unwrap();
        assert_eq!(
            heads(w, "M_FLUSH"),
            ["  S1 head <- M_FLUSH band 0 len 1 \"\\x01\""]
        );
        assert_eq!(
            w.read(s, 10),
            Err(Errno::EAGAIN),
            "manager's output discarded"
        );
        assert_eq!(w.read(m, 10).unwrap(), b"keep");
    });
}

pub fn manager_flushrw_flushes_both(b: &dyn Backend) {
    scenario(b, "manager I_FLUSH FLUSHRW", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write(m, b"a").unwrap();
        w.write(s, b"b").unwrap();
        w.flush(m, FLUSHRW).unwrap();
        assert_eq!(w.read(s, 10), Err(Errno::EAGAIN));
        assert_eq!(w.read(m, 10), Err(Errno::EAGAIN));
    });
}

pub fn subsidiary_flushes_are_translated_by_pts(b: &dyn Backend) {
    scenario(b, "subsidiary I_FLUSH", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        // FLUSHR: turned around by pts, flushes only the subsidiary's input.
        w.write(m, b"in").unwrap();
        w.write(s, b"out").unwrap();
        w.flush(s, FLUSHR).unwrap();
        assert_eq!(w.read(s, 10), Err(Errno::EAGAIN));
        assert_eq!(w.read(m, 10).unwrap(), b"out");
        // FLUSHW (tcflush TCOFLUSH): the data waiting on the manager's read
        // side is discarded.
        w.write(s, b"out2").unwrap();
        w.write(m, b"in2").unwrap();
        w.flush(s, FLUSHW).unwrap();
        assert_eq!(w.read(m, 10), Err(Errno::EAGAIN));
        assert_eq!(w.read(s, 10).unwrap(), b"in2");
        // FLUSHRW: pts copies the message (copyb) for the manager side.
        w.write(s, b"x").unwrap();
        w.write(m, b"y").unwrap();
        w.flush(s, FLUSHRW).unwrap();
        assert_eq!(w.read(m, 10), Err(Errno::EAGAIN));
        assert_eq!(w.read(s, 10), Err(Errno::EAGAIN));
    });
}

pub fn manager_flush_without_a_subsidiary_is_dropped(b: &dyn Backend) {
    scenario(b, "manager FLUSHR with no subsidiary", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write(s, b"last words").unwrap();
        w.close(s).unwrap();
        // ptm frees the M_FLUSH: the manager's own read side is not flushed.
        w.flush(m, FLUSHR).unwrap();
        assert_eq!(w.read(m, 100).unwrap(), b"last words");
        assert_eq!(w.read(m, 100).unwrap(), b"");
    });
}

pub fn locked_manager_flush_is_dropped(b: &dyn Backend) {
    scenario(b, "manager flush while locked", |w| {
        let (m, _) = manager(w);
        w.flush(m, FLUSHRW).unwrap();
        assert!(heads(w, "M_FLUSH").is_empty());
        assert_eq!(
            heads(w, "M_IOCNAK").len(),
            1,
            "the I_FLUSH sync ioctl is NAKed by ptm itself"
        );
    });
}

pub fn flushband_reaches_the_other_side_with_its_band(b: &dyn Backend) {
    scenario(b, "FLUSHBAND", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write_band(s, 1, b"band1").unwrap();
        w.write(s, b"band0").unwrap();
        w.write_band(s, 2, b"band2").unwrap();
        let q = w.head_read_queue(m).unwrap();
        assert_eq!(q.messages, vec![(0, 2, 5), (0, 1, 5), (0, 0, 5)]);
        w.flush_band(m, 1, FLUSHR).unwrap();
        assert_eq!(
            heads(w, "M_FLUSH"),
            [
                "  S1 head <- M_FLUSH band 0 len 2 \"\\x06\\x01\"",
                "  M1 head <- M_FLUSH band 0 len 2 \"\\x05\\x01\""
            ],
            "FLUSHBAND and the band byte are kept"
        );
        let q = w.head_read_queue(m).unwrap();
        assert_eq!(
            q.messages,
            vec![(0, 2, 5), (0, 0, 5)],
            "only band 1 flushed"
        );
        assert_eq!(w.read(m, 100).unwrap(), b"band2band0");
    });
}

pub fn flushband_zero_on_queued_manager_output(b: &dyn Backend) {
    scenario(b, "FLUSHBAND 0 on ptm's write queue", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        // Fill the subsidiary head so band-0 output is held on ptm's queue.
        assert_eq!(w.write(m, &[b'z'; 2048]).unwrap(), 2048);
        w.write(m, b"held0").unwrap();
        assert_eq!(w.driver_write_queue(m).unwrap().messages, vec![(0, 0, 5)]);
        // A band that does not exist yet upstream is never flow-controlled.
        w.write_band(m, 3, b"band3").unwrap();
        assert!(w.driver_write_queue(m).unwrap().messages.len() == 1);
        assert_eq!(w.head_read_queue(s).unwrap().messages[0], (0, 3, 5));
        // FLUSHBAND band 0: ptm flushes its band-0 data; the subsidiary head
        // flushes band 0 (FLUSHALL) and keeps band 3.
        w.flush_band(m, 0, FLUSHW).unwrap();
        assert!(w.driver_write_queue(m).unwrap().messages.is_empty());
        assert_eq!(w.head_read_queue(s).unwrap().messages, vec![(0, 3, 5)]);
        assert_eq!(w.read(s, 100).unwrap(), b"band3");
    });
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    named_tests![
        "flush";
        manager_flushr_flushes_data_from_the_subsidiary,
        manager_flushw_flushes_the_subsidiary_read_side,
        manager_flushrw_flushes_both,
        subsidiary_flushes_are_translated_by_pts,
        manager_flush_without_a_subsidiary_is_dropped,
        locked_manager_flush_is_dropped,
        flushband_reaches_the_other_side_with_its_band,
        flushband_zero_on_queued_manager_output,
    ]
}
