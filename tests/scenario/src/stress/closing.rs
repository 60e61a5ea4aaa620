//! The closing protocol: once one end of a pty has closed, the holder of
//! the other end checks the signal it must get (a hangup, a zero-length
//! read) and the data still due, then closes its end too.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::records::{Half, REC, Shared, Slot, check_records, record, seq_of};
use crate::api::{Errno, Fd, Pty};

/// How long a side waits for the other's close to show (hangup, EOF).
const SIGNAL_WAIT: Duration = Duration::from_secs(10);

/// Sleeps a millisecond, or fails once `start` is older than
/// [`SIGNAL_WAIT`].
fn wait_a_little(start: Instant, what: impl FnOnce() -> String) -> Result<(), String> {
    if start.elapsed() > SIGNAL_WAIT {
        return Err(what());
    }
    std::thread::sleep(Duration::from_millis(1));
    Ok(())
}

/// Waits for the subsidiary's hangup: true once poll shows it; false at
/// once when it is missing and an open of the subsidiary returned after
/// the manager's close began. Two such races lose the hangup in illumos:
/// a reopen (the stream head's reopen clears STRHUP, so an M_HANGUP that
/// came before it is forgotten), and a first open that passed ptsopen's
/// check for an open manager but published `pts_rdq` only after ptmclose
/// had looked for it (the M_HANGUP is then never sent).
fn wait_for_hangup(w: &mut dyn Pty, slot: &Slot, idx: usize, fd: Fd) -> Result<bool, String> {
    let start = Instant::now();
    while !w.poll(fd).map_err(|e| format!("poll: {e}"))?.pollhup {
        if slot.hangup_may_be_missing.load(Ordering::SeqCst) {
            return Ok(false);
        }
        if start.elapsed() > SIGNAL_WAIT {
            let minor = slot.minor.load(Ordering::SeqCst);
            return Err(format!(
                "slot {idx}: the manager closed but the subsidiary saw no hangup (manager's close() returned: {}; pt_state of minor {minor}: {:?}; subsidiary head {:?}, read queue {:?}, pts write queue {:?})",
                slot.m_close_done.load(Ordering::SeqCst),
                w.pt_state(minor),
                w.head_state(fd),
                w.head_read_queue(fd),
                w.driver_write_queue(fd)
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(true)
}

/// The subsidiary's end after the manager closed: hangup within the time
/// bound, remaining data in order, reads of 0, writes refused; then close
/// it. When a reopen of the subsidiary erased the hangup, what is left is
/// read (in order) until there is nothing more, and the fd closed.
pub(super) fn after_manager_close(
    w: &mut dyn Pty,
    sh: &Shared,
    slot: &Slot,
    idx: usize,
    s: &mut Half,
) -> Result<(), String> {
    let fd = s.fd.expect("subsidiary open");
    let hung_up = wait_for_hangup(w, slot, idx, fd)?;
    loop {
        match w.read(fd, 64 * REC) {
            Ok(v) if v.is_empty() => break,
            Ok(v) => check_records(sh, slot, idx, 1, s, &v, true)?,
            Err(Errno::EAGAIN) if !hung_up => break,
            Err(e) => return Err(format!("slot {idx}: subsidiary read after hangup: {e}")),
        }
    }
    if hung_up {
        match w.write(fd, &record(0, 1, 0)) {
            Err(Errno::EIO) | Err(Errno::ENXIO) => {}
            r => {
                return Err(format!(
                    "slot {idx}: subsidiary write after hangup gave {r:?}"
                ));
            }
        }
    }
    w.close(fd).map_err(|e| format!("close subsidiary: {e}"))?;
    s.fd = None;
    sh.count(if hung_up {
        "hangups verified"
    } else {
        "hangups missing after an open racing the manager's close"
    });
    Ok(())
}

/// The manager's end after the last subsidiary close: every record the
/// subsidiary wrote (gaps only for flushes), each exactly once, then a
/// zero-length read within the time bound; then close it.
///
/// The records still in flight when the subsidiary closed may arrive out of
/// order: pts's close routine drains its write queue with getq/putnext
/// while its service procedure, which only stops at qprocsoff, may be
/// forwarding from the same queue on another thread (pts is D_MP, so
/// nothing serialises the two). The pair is no longer open then, so order
/// is not required; completeness and uniqueness still are: the drained
/// records are sorted before the same check is applied.
pub(super) fn after_subsidiary_close(
    w: &mut dyn Pty,
    sh: &Shared,
    slot: &Slot,
    idx: usize,
    m: &mut Half,
) -> Result<(), String> {
    let fd = m.fd.expect("manager open");
    let start = Instant::now();
    let mut drained: Vec<u8> = std::mem::take(&mut m.after_close);
    loop {
        let r = if m.eof_seen {
            Ok(Vec::new())
        } else {
            w.read(fd, 64 * REC)
        };
        match r {
            Ok(v) if v.is_empty() => break,
            Ok(v) => drained.extend_from_slice(&v),
            Err(Errno::EAGAIN) => wait_a_little(start, || {
                format!("slot {idx}: the subsidiary closed but the manager got no zero-length read")
            })?,
            Err(e) => return Err(format!("slot {idx}: manager read after close: {e}")),
        }
    }
    let late = after_zero_length_read(w, sh, slot, idx, fd, start)?;
    drained.extend_from_slice(&late);
    check_drained(sh, slot, idx, m, &drained)?;
    w.close(fd).map_err(|e| format!("close manager: {e}"))?;
    m.fd = None;
    sh.count("zero-length reads verified");
    Ok(())
}

/// What the manager reads after its zero-length read.
///
/// Data may follow the zero-length message: ptswsrv, under READ like
/// ptsclose's drain (pts is D_MP, no perimeter), may have taken a message
/// off the pts write queue with getq before the drain and send it with
/// putnext only after ptsclose has sent the zero-length message. qprocsoff
/// waits for that service procedure, so once the subsidiary's close() has
/// returned, everything is at the manager's stream head: wait for that,
/// then read what came after the zero-length message. At most the one
/// message the service procedure held can be there: one write's records,
/// consecutive.
fn after_zero_length_read(
    w: &mut dyn Pty,
    sh: &Shared,
    slot: &Slot,
    idx: usize,
    fd: Fd,
    start: Instant,
) -> Result<Vec<u8>, String> {
    while !slot.s_close_done.load(Ordering::SeqCst) {
        wait_a_little(start, || {
            format!("slot {idx}: the subsidiary's close did not return")
        })?;
    }
    let mut late = Vec::new();
    loop {
        match w.read(fd, 64 * REC) {
            Ok(v) if !v.is_empty() => late.extend_from_slice(&v),
            Ok(_) => return Err(format!("slot {idx} manager: a second zero-length read")),
            Err(Errno::EAGAIN) => break,
            Err(e) => return Err(format!("slot {idx}: manager read after close: {e}")),
        }
    }
    if late.is_empty() {
        return Ok(late);
    }
    let seqs: Vec<u32> = late.chunks(REC).map(seq_of).collect();
    if late.len() > 8 * REC
        || !late.len().is_multiple_of(REC)
        || seqs.windows(2).any(|p| p[1] != p[0] + 1)
    {
        return Err(format!(
            "slot {idx} manager: after the zero-length read: {} bytes, records {seqs:?} (more than the one message ptswsrv can hold)",
            late.len()
        ));
    }
    sh.count("records after the zero-length read");
    Ok(late)
}

/// Checks everything the manager read once the subsidiary's close had
/// begun: whole records, complete and unique once sorted.
fn check_drained(
    sh: &Shared,
    slot: &Slot,
    idx: usize,
    m: &mut Half,
    drained: &[u8],
) -> Result<(), String> {
    if !drained.len().is_multiple_of(REC) {
        return Err(format!(
            "slot {idx} manager: read {} bytes after close, not whole records",
            drained.len()
        ));
    }
    let mut recs: Vec<&[u8]> = drained.chunks(REC).collect();
    let in_order = recs.is_sorted_by_key(|r| seq_of(r));
    recs.sort_by_key(|r| seq_of(r));
    if !in_order {
        sh.count("reordered while the subsidiary closed");
    }
    check_records(sh, slot, idx, 0, m, &recs.concat(), false)
}
