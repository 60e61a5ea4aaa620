//! Scheduling as a test input: service procedures run late
//! ([`Pty::services_run_late`]), so that what a system call queued is
//! still queued when the next call comes -- paths a world that runs every
//! service procedure before the call returns never reaches: ptmwsrv
//! finding the subsidiary gone with an ioctl queued, flushes meeting
//! queued messages, a message put back behind flow control with others
//! behind it, a high-priority message meeting a full subsidiary.

use super::common::*;
use crate::*;
use ptm::sys::{EINVAL, M_DATA, M_ERROR, M_IOCNAK, M_IOCTL, M_PCPROTO, NOERROR};

const NB: i32 = O_RDWR | O_NONBLOCK;

/// The messages stream `head` (`M1`, `S1`) received since trace event
/// `from`.
fn received(w: &dyn Pty, from: usize, head: &str) -> Vec<MsgDesc> {
    w.trace()[from..]
        .iter()
        .filter_map(|e| match e {
            TraceEvent::HeadRecv { stream, msg } if stream == head => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

/// The message types on the driver's write queue of `fd`'s stream.
fn queued_types(w: &dyn Pty, fd: Fd) -> Vec<i32> {
    w.driver_write_queue(fd)
        .expect("a driver write queue")
        .messages
        .iter()
        .map(|&(t, _, _)| i32::from(t))
        .collect()
}

/// The data messages (type, band, bytes) on the driver's write queue of
/// `fd`'s stream. (An `I_FLUSH` also leaves something else there: the
/// stream head follows the M_FLUSH with an ioctl it waits for, which ptm
/// queues for the subsidiary like any other.)
fn queued_data(w: &dyn Pty, fd: Fd) -> Vec<(u8, u8, usize)> {
    w.driver_write_queue(fd)
        .expect("a driver write queue")
        .messages
        .into_iter()
        .filter(|&(t, _, _)| i32::from(t) == M_DATA)
        .collect()
}

fn trace_from(w: &dyn Pty, from: usize) -> String {
    w.trace_lines()[from..].join("\n")
}

/// ptmwsrv's discard path: the subsidiary is gone when ptmwsrv runs, and
/// an ioctl is queued behind data on the manager's write queue. The ioctl
/// must be NAKed with EINVAL -- the NAK is what wakes its caller -- not
/// freed; everything else is freed, the queue flushed, and M_ERROR raises
/// the manager's write error. (The ioctl comes from above ptm as a stream
/// head sends one, with nobody waiting: in one thread, the caller of an
/// `I_STR` would wait, and the subsidiary could not be closed meanwhile.)
pub fn discard_naks_an_ioctl_queued_behind_held_data(b: &dyn Backend) {
    scenario(
        b,
        "late services: ptmwsrv's discard path NAKs a queued ioctl",
        |w| {
            let (m, s, minor) = pair_flags(w, NB, NB);
            w.services_run_late(true);
            assert_eq!(w.write(m, b"held").unwrap(), 4);
            w.inject_down(m, M_IOCTL as u8, 0, &iocblk_bytes(TCGETS, 0x4711))
                .unwrap();
            assert_eq!(
                queued_types(w, m),
                [M_DATA, M_IOCTL],
                "data held on ptm's write queue, the ioctl queued behind it"
            );
            assert!(w.late_services() > 0, "ptmwsrv is held");
            w.close(s).unwrap();
            assert_eq!(
                queued_types(w, m),
                [M_DATA, M_IOCTL],
                "still queued after the subsidiary's close: ptmwsrv has not run"
            );
            let from = w.trace().len();
            w.run_late_services(LateOrder::Scheduled);
            let t = trace_from(w, from);
            let got = received(w, from, &format!("M{minor}"));
            let naks: Vec<&MsgDesc> = got
                .iter()
                .filter(|g| i32::from(g.mtype) == M_IOCNAK)
                .collect();
            assert_eq!(naks.len(), 1, "the queued ioctl is NAKed, not freed:\n{t}");
            assert!(
                naks[0].detail.starts_with(&format!("cmd={TCGETS:#x} "))
                    && naks[0].detail.contains(&format!(" error={EINVAL} ")),
                "NAKed with EINVAL: {}",
                naks[0].detail
            );
            let nak_at = got.iter().position(|g| i32::from(g.mtype) == M_IOCNAK);
            let err_at = got.iter().position(|g| i32::from(g.mtype) == M_ERROR);
            assert!(
                err_at.is_some() && nak_at < err_at,
                "the NAK, then M_ERROR:\n{t}"
            );
            assert_eq!(
                got[err_at.unwrap()].bytes,
                [NOERROR, EINVAL as u8],
                "M_ERROR: reads untouched, writes EINVAL"
            );
            let q = w.driver_write_queue(m).unwrap();
            assert!(
                q.messages.is_empty() && q.count == 0,
                "ptm's write queue flushed: {q:?}"
            );
            let h = w.head_state(m).unwrap();
            assert!(h.write_error && !h.read_error, "{h:?}");
            assert_eq!(w.write(m, b"x"), Err(Errno::EINVAL));
        },
    );
}

/// A band flush for a band other than the one holding data leaves the
/// held data alone; a flush of that band removes it.
pub fn flushband_of_another_band_keeps_held_data(b: &dyn Backend) {
    scenario(b, "late services: FLUSHBAND of band 1 keeps band 2", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.services_run_late(true);
        w.write_band(m, 2, b"band two").unwrap();
        let held = vec![(M_DATA as u8, 2, 8)];
        assert_eq!(w.driver_write_queue(m).unwrap().messages, held);
        w.flush_band(m, 1, FLUSHW).unwrap();
        assert_eq!(
            queued_data(w, m),
            held,
            "a flush of band 1 leaves band 2's message"
        );
        assert_eq!(
            w.driver_write_queue(m).unwrap().messages[0],
            held[0],
            "still first (band 2 is ahead of the flush's ioctl in band 0)"
        );
        w.run_late_services(LateOrder::Scheduled);
        assert_eq!(w.read(s, 100).unwrap(), b"band two", "and it is sent");

        w.write_band(m, 2, b"again").unwrap();
        w.flush_band(m, 2, FLUSHW).unwrap();
        assert_eq!(queued_data(w, m), [], "a flush of band 2 removes it");
        w.run_late_services(LateOrder::Scheduled);
        assert_eq!(w.read(s, 100), Err(Errno::EAGAIN));
    });
}

/// A write-side flush takes the data off ptm's write queue and leaves a
/// queued ioctl for the subsidiary in place (flushq(FLUSHDATA)), which
/// is then forwarded.
pub fn flushw_leaves_a_queued_forwarded_ioctl(b: &dyn Backend) {
    scenario(b, "late services: FLUSHW keeps a queued ioctl", |w| {
        let (m, s, minor) = pair_flags(w, NB, NB);
        w.services_run_late(true);
        w.write(m, b"stale").unwrap();
        w.inject_down(m, M_IOCTL as u8, 0, &iocblk_bytes(TCGETS, 0x4712))
            .unwrap();
        w.write(m, b"stale too").unwrap();
        assert_eq!(queued_types(w, m), [M_DATA, M_IOCTL, M_DATA]);
        w.flush(m, FLUSHW).unwrap();
        assert_eq!(
            queued_types(w, m),
            [M_IOCTL, M_IOCTL],
            "the data flushed; the queued ioctl kept, ahead of the one I_FLUSH \
             sends after its M_FLUSH"
        );
        let from = w.trace().len();
        w.run_late_services(LateOrder::Scheduled);
        let t = trace_from(w, from);
        let tcgets = format!("cmd={TCGETS:#x} ");
        let ioctls: Vec<MsgDesc> = received(w, from, &format!("S{minor}"))
            .into_iter()
            .filter(|g| i32::from(g.mtype) == M_IOCTL && g.detail.starts_with(&tcgets))
            .collect();
        assert_eq!(ioctls.len(), 1, "the ioctl reaches the subsidiary:\n{t}");
        assert_eq!(w.read(s, 100), Err(Errno::EAGAIN), "no data survived");
    });
}

/// A message ptmwsrv cannot send (the subsidiary is full) goes back at the
/// head of ptm's write queue (putbq), ahead of those queued after it: the
/// subsidiary reads everything in the order it was written.
pub fn a_held_message_goes_back_at_the_head(b: &dyn Backend) {
    scenario(
        b,
        "late services: a message put back keeps its place",
        |w| {
            let (m, s, _) = pair_flags(w, NB, NB);
            // The subsidiary's head is full (hiwat 2048), ptm's queue empty.
            let mut sent: Vec<u8> = (0..2048).map(|i| (i % 200) as u8).collect();
            assert_eq!(w.write(m, &sent).unwrap(), 2048);
            assert_eq!(w.head_read_queue(s).unwrap().count, 2048);
            // Small messages pile up on ptm's write queue until it is full.
            w.services_run_late(true);
            for k in 0.. {
                assert!(k < 50, "ptm's write queue never filled");
                let chunk = vec![b'A' + k as u8; 100];
                match w.write(m, &chunk) {
                    Ok(n) => sent.extend_from_slice(&chunk[..n]),
                    Err(Errno::EAGAIN) => break,
                    Err(e) => panic!("write: {e}"),
                }
            }
            let queued = w.driver_write_queue(m).unwrap().messages.len();
            assert!(queued >= 4, "{queued} messages queued");
            // Room for 300 bytes: ptmwsrv sends three, the fourth goes back.
            let mut got = w.read(s, 300).unwrap();
            w.run_late_services(LateOrder::Scheduled);
            assert_eq!(w.head_read_queue(s).unwrap().count, 2048);
            assert_eq!(
                w.driver_write_queue(m).unwrap().messages.len(),
                queued - 3,
                "three sent, the rest held"
            );
            w.services_run_late(false);
            got.extend(drain(w, s, 1000, 100_000));
            assert_eq!(got.len(), sent.len());
            let first_bad = got.iter().zip(&sent).position(|(a, b)| a != b);
            assert_eq!(first_bad, None, "read in the order written");
        },
    );
}

/// A high-priority message goes to the subsidiary even while it is full
/// (flow control holds ordinary messages only). Held by flow control it
/// would be put back, enabling the queue again and again: a livelock,
/// which the worlds turn into a named failure.
pub fn a_high_priority_message_passes_a_full_subsidiary(b: &dyn Backend) {
    scenario(
        b,
        "late services: M_PCPROTO passes a full subsidiary",
        |w| {
            let (m, s, minor) = pair_flags(w, NB, NB);
            assert_eq!(w.write(m, &[b'x'; 2048]).unwrap(), 2048);
            w.services_run_late(true);
            assert_eq!(w.write(m, b"held").unwrap(), 4);
            w.inject_down(m, M_PCPROTO as u8, 0, b"urgent").unwrap();
            assert_eq!(queued_types(w, m), [M_PCPROTO, M_DATA], "ahead of the data");
            let from = w.trace().len();
            w.run_late_services(LateOrder::Scheduled);
            let t = trace_from(w, from);
            let pc: Vec<MsgDesc> = received(w, from, &format!("S{minor}"))
                .into_iter()
                .filter(|g| i32::from(g.mtype) == M_PCPROTO)
                .collect();
            assert_eq!(pc.len(), 1, "M_PCPROTO reaches the full subsidiary:\n{t}");
            assert_eq!(pc[0].bytes, b"urgent");
            assert_eq!(queued_types(w, m), [M_DATA], "the data waits");
            w.services_run_late(false);
            assert_eq!(w.read(s, 3000), Err(Errno::EBADMSG), "M_PCPROTO first");
        },
    );
}

/// Held services run in a shuffled order of streams (each stream's own in
/// order): both directions of two ptys held at once, then run in several
/// orders; every byte arrives, in order, whatever the order.
pub fn shuffled_late_services_lose_nothing(b: &dyn Backend) {
    scenario(b, "late services: shuffled orders lose nothing", |w| {
        let (m1, s1, _) = pair_flags(w, NB, NB);
        let (m2, s2, _) = pair_flags(w, NB, NB);
        w.services_run_late(true);
        for seed in [1u64, 2, 3, 0xdead_beef] {
            let msg = format!("seed {seed}");
            for fd in [m1, s1, m2, s2] {
                assert_eq!(w.write(fd, msg.as_bytes()).unwrap(), msg.len());
            }
            w.run_late_services(LateOrder::Shuffled(seed));
            assert_eq!(w.late_services(), 0);
            for fd in [s1, m1, s2, m2] {
                assert_eq!(w.read(fd, 100).unwrap(), msg.as_bytes(), "{fd:?}");
            }
        }
    });
}

pub fn tests() -> Vec<Test> {
    named_tests!["late";
        discard_naks_an_ioctl_queued_behind_held_data,
        flushband_of_another_band_keeps_held_data,
        flushw_leaves_a_queued_forwarded_ioctl,
        a_held_message_goes_back_at_the_head,
        a_high_priority_message_passes_a_full_subsidiary,
        shuffled_late_services_lose_nothing,
    ]
}
