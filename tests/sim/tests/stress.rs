//! Concurrency stress test of the multi-threaded simulator mode
//! (`World::new_threaded`), against the Rust driver and the C oracle.
//!
//! Several user threads work on a set of pty "slots" at random (seeded RNG;
//! the seed is printed; `PTM_STRESS_SEED` replays a schedule of choices,
//! though thread interleavings are not reproducible). Each slot has a
//! manager half and a subsidiary half, each behind its own mutex, so one
//! thread may write the manager while another reads, flushes or closes the
//! subsidiary of the same pty. A thread holding one half only touches that
//! half's fd (the simulator, like the kernel, must not see an fd closed
//! while another call on it is in flight). Reads and writes use
//! `O_NONBLOCK` (EAGAIN is retried later); ioctls and I_FLUSH block for
//! their ACK, which worker threads produce. Only ioctls that cannot
//! legitimately stall are used: a forwarded ioctl is an ordinary message
//! and queues behind flow-controlled data, so a manager waiting on one
//! while the subsidiary waits on another, each behind the other's unread
//! data, both time out after 15 s (ETIME) -- correct behaviour, which the
//! watchdog found in the first version of this test. Hence: the manager
//! issues ISPTM (answered by ptm), the subsidiary TCGETS (forwarded), and
//! every I_FLUSH includes FLUSHW.
//!
//! Invariants checked throughout:
//! * data: 16-byte records carrying (session, direction, sequence,
//!   checksum); a reader sees each direction's records intact, of its own
//!   session, in strictly increasing order; a gap is allowed only if a flush
//!   of that pty ended after the first missing record was written, is in
//!   progress, or the writer's end was closed (manager → subsidiary data
//!   dies with the manager). Subsidiary → manager data must arrive in full
//!   by the end of the subsidiary's close: before the zero-length read,
//!   except the one message pts's service procedure may hold while the
//!   close drains (see `finish_after_subsidiary_close`); records that
//!   arrive once the close has begun may be out of order.
//! * once the subsidiary's last close has begun, the manager may find its
//!   stream write-dead (ptm's M_ERROR(NOERROR, EINVAL): EINVAL on write,
//!   ioctl and I_FLUSH, POLLERR on poll), and never before;
//! * every manager close gives the open subsidiary a hangup (POLLHUP, reads
//!   of 0 once the queue is drained);
//! * every last subsidiary close gives the manager exactly one
//!   zero-length read (possibly taken by an ordinary read of the manager
//!   that raced with the close: it is not expected twice);
//! * no ioctl or flush times out (a lost ACK) and no call reports BLOCKED;
//! * at the end: after quiescing, every pty has `pt_refcnt` 0 and `pt_lock`
//!   free and no kernel mutex is held; then all is closed and
//!   `World::finish` finds no leak (mblks, dblks, pt_ttys, zone holds,
//!   streams) and no anomaly;
//! * no deadlock: the main thread is the watchdog; when the run does not end
//!   within its time bound it fails with a dump of what every user and
//!   worker thread is doing.
//!
//! `PTM_STRESS_SECS=n` makes the long version (`make stress`) run for about
//! n seconds instead of a fixed number of operations.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ptm_sim::{
    Errno, FLUSHRW, FLUSHW, Fd, ISPTM, O_NOCTTY, O_NONBLOCK, O_RDWR, Pty, TCGETS, UNLKPT, Variant,
    World,
};

const REC: usize = 16;
const FREE: u32 = 0;
const OPEN: u32 = 1;
const M_CLOSED: u32 = 2;
const S_CLOSED: u32 = 3;
/// How long a side waits for the other's close to show (hangup, EOF).
const SIGNAL_WAIT: Duration = Duration::from_secs(10);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn check(session: u32, dir: u8, seq: u32) -> u32 {
    let mut h = 0x811c_9dc5u32;
    for b in session
        .to_le_bytes()
        .into_iter()
        .chain([dir])
        .chain(seq.to_le_bytes())
    {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

fn record(session: u32, dir: u8, seq: u32) -> [u8; REC] {
    let mut r = [0u8; REC];
    r[0..4].copy_from_slice(&session.to_le_bytes());
    r[4] = dir;
    r[5..8].copy_from_slice(&[0x5a; 3]);
    r[8..12].copy_from_slice(&seq.to_le_bytes());
    r[12..16].copy_from_slice(&check(session, dir, seq).to_le_bytes());
    r
}

/// One direction of one pty: what its writer sent.
#[derive(Default)]
struct DirLog {
    /// Per sequence number: the slot's completed-flush count when the
    /// write of that record began.
    flushes_at_write: Mutex<Vec<u64>>,
}

#[derive(Default)]
struct Half {
    fd: Option<Fd>,
    /// Next sequence number this end writes.
    tx_next: u32,
    /// Next sequence number this end expects to read.
    rx_next: u32,
    /// Manager only: bytes read by an ordinary read that returned after
    /// the subsidiary's close had begun (checked, in full, with the rest of
    /// what the close drains; see `finish_after_subsidiary_close`).
    after_close: Vec<u8>,
    /// Manager only: an ordinary read that raced with the last subsidiary
    /// close already returned the zero-length message (it is consumed by
    /// that read: docs/streams.md §2.4, each zero-length message gives
    /// exactly one 0-byte read), so the closing protocol must not wait for
    /// another one.
    eof_seen: bool,
}

#[derive(Default)]
struct Slot {
    m: Mutex<Half>,
    s: Mutex<Half>,
    state: AtomicU32,
    session: AtomicU32,
    /// The fds of the current pty (for diagnostics), -1 when none.
    fds: [std::sync::atomic::AtomicI32; 2],
    flushing: AtomicU32,
    /// The subsidiary's last close() has returned (ptsclose has run to its
    /// end, qprocsoff included).
    s_close_done: AtomicBool,
    flushes_done: AtomicU64,
    /// [0]: manager → subsidiary, [1]: subsidiary → manager.
    log: [DirLog; 2],
}

struct Shared {
    slots: Vec<Slot>,
    sessions: AtomicU32,
    stop: AtomicBool,
    errors: Mutex<Vec<String>>,
    /// What each user thread is doing (for the watchdog's dump).
    doing: Vec<Mutex<String>>,
    ops: AtomicUsize,
    counts: Mutex<std::collections::BTreeMap<&'static str, usize>>,
}

impl Shared {
    fn fail(&self, msg: String) {
        self.stop.store(true, Ordering::SeqCst);
        self.errors.lock().unwrap().push(msg);
    }
    fn count(&self, what: &'static str) {
        *self.counts.lock().unwrap().entry(what).or_default() += 1;
    }
}

/// Which end a half is: 0 manager, 1 subsidiary. Direction `end` is the one
/// this end writes; it reads direction `1 - end`.
fn end_name(end: usize) -> &'static str {
    if end == 0 { "manager" } else { "subsidiary" }
}

/// Checks the records read on `end` of `slot`; `writer_closed` allows gaps
/// (the writer's end is gone and its data may have died with it).
fn check_records(
    sh: &Shared,
    slot: &Slot,
    idx: usize,
    end: usize,
    half: &mut Half,
    data: &[u8],
    writer_closed: bool,
) -> Result<(), String> {
    let dir = 1 - end;
    if !data.len().is_multiple_of(REC) {
        return Err(format!(
            "slot {idx} {}: read {} bytes, not whole records",
            end_name(end),
            data.len()
        ));
    }
    let session = slot.session.load(Ordering::SeqCst);
    for r in data.chunks(REC) {
        let s = u32::from_le_bytes(r[0..4].try_into().unwrap());
        let d = r[4];
        let seq = u32::from_le_bytes(r[8..12].try_into().unwrap());
        if r != record(s, d, seq) || s != session || usize::from(d) != dir {
            return Err(format!(
                "slot {idx} {}: corrupt or foreign record {r:02x?} (session {session}, dir {dir})",
                end_name(end)
            ));
        }
        if seq < half.rx_next {
            return Err(format!(
                "slot {idx} {}: record {seq} duplicated or out of order (expected {})",
                end_name(end),
                half.rx_next
            ));
        }
        if seq > half.rx_next {
            let flushing = slot.flushing.load(Ordering::SeqCst);
            let done = slot.flushes_done.load(Ordering::SeqCst);
            let at = slot.log[dir].flushes_at_write.lock().unwrap()[half.rx_next as usize];
            if !(writer_closed || flushing > 0 || done > at) {
                return Err(format!(
                    "slot {idx} {}: records {}..{seq} lost (no flush since they were written)",
                    end_name(end),
                    half.rx_next
                ));
            }
            sh.count("gaps after flush");
        }
        half.rx_next = seq + 1;
    }
    Ok(())
}

fn bad(r: &Result<impl std::fmt::Debug, Errno>) -> bool {
    matches!(r, Err(e) if *e == Errno::ETIME || *e == Errno::BLOCKED)
}

/// Opens a pty on a free slot (both halves held).
fn open_slot(
    w: &mut World,
    sh: &Shared,
    slot: &Slot,
    m: &mut Half,
    s: &mut Half,
) -> Result<(), String> {
    let mfd = w
        .open_manager(O_RDWR | O_NONBLOCK)
        .map_err(|e| format!("open_manager: {e}"))?;
    if let Err(e) = w.ioctl(mfd, UNLKPT, &[]) {
        return Err(format!("UNLKPT: {e}"));
    }
    let minor = w.minor_of(mfd).map_err(|e| format!("minor_of: {e}"))?;
    let sfd = w
        .open_subsidiary(minor, O_RDWR | O_NONBLOCK | O_NOCTTY)
        .map_err(|e| format!("open_subsidiary({minor}): {e}"))?;
    let session = sh.sessions.fetch_add(1, Ordering::SeqCst) + 1;
    slot.session.store(session, Ordering::SeqCst);
    for l in &slot.log {
        l.flushes_at_write.lock().unwrap().clear();
    }
    *m = Half {
        fd: Some(mfd),
        ..Half::default()
    };
    *s = Half {
        fd: Some(sfd),
        ..Half::default()
    };
    slot.s_close_done.store(false, Ordering::SeqCst);
    slot.fds[0].store(mfd.0, Ordering::SeqCst);
    slot.fds[1].store(sfd.0, Ordering::SeqCst);
    slot.state.store(OPEN, Ordering::SeqCst);
    Ok(())
}

/// The subsidiary's end after the manager closed: hangup within the time
/// bound, remaining data in order, reads of 0; then close it.
fn finish_after_manager_close(
    w: &mut World,
    sh: &Shared,
    slot: &Slot,
    idx: usize,
    s: &mut Half,
) -> Result<(), String> {
    let fd = s.fd.expect("subsidiary open");
    let start = Instant::now();
    loop {
        let p = w.poll(fd).map_err(|e| format!("poll: {e}"))?;
        if p.pollhup {
            break;
        }
        if start.elapsed() > SIGNAL_WAIT {
            return Err(format!(
                "slot {idx}: the manager closed but the subsidiary saw no hangup"
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    loop {
        match w.read(fd, 64 * REC) {
            Ok(v) if v.is_empty() => break,
            Ok(v) => check_records(sh, slot, idx, 1, s, &v, true)?,
            Err(e) => return Err(format!("slot {idx}: subsidiary read after hangup: {e}")),
        }
    }
    match w.write(fd, &record(0, 1, 0)) {
        Err(Errno::EIO) | Err(Errno::ENXIO) => {}
        r => {
            return Err(format!(
                "slot {idx}: subsidiary write after hangup gave {r:?}"
            ));
        }
    }
    w.close(fd).map_err(|e| format!("close subsidiary: {e}"))?;
    s.fd = None;
    sh.count("hangups verified");
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
fn finish_after_subsidiary_close(
    w: &mut World,
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
            Ok(v) if v.is_empty() => {
                // Data may follow the zero-length message: ptswsrv, under
                // READ like ptsclose's drain (step 3, docs/streams.md §3.4; pts is D_MP, no
                // perimeter), may have taken a message off the pts write
                // queue with getq before the drain and send it with putnext
                // only after ptsclose has sent the zero-length message.
                // qprocsoff (step 5) waits for that service procedure, so
                // once the subsidiary's close() has returned, everything is
                // at the manager's stream head: wait for that, then read
                // what came after the zero-length message. At most the one
                // message the service procedure held can be there: one
                // write's records, consecutive.
                while !slot.s_close_done.load(Ordering::SeqCst) {
                    if start.elapsed() > SIGNAL_WAIT {
                        return Err(format!("slot {idx}: the subsidiary's close did not return"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                let mut late = Vec::new();
                loop {
                    match w.read(fd, 64 * REC) {
                        Ok(v) if !v.is_empty() => late.extend_from_slice(&v),
                        Ok(_) => {
                            return Err(format!("slot {idx} manager: a second zero-length read"));
                        }
                        Err(Errno::EAGAIN) => break,
                        Err(e) => {
                            return Err(format!("slot {idx}: manager read after close: {e}"));
                        }
                    }
                }
                if !late.is_empty() {
                    let seqs: Vec<u32> = late
                        .chunks(REC)
                        .map(|r| u32::from_le_bytes(r[8..12].try_into().unwrap()))
                        .collect();
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
                    drained.extend_from_slice(&late);
                }
                if !drained.len().is_multiple_of(REC) {
                    return Err(format!(
                        "slot {idx} manager: read {} bytes after close, not whole records",
                        drained.len()
                    ));
                }
                let seq = |r: &&[u8]| u32::from_le_bytes(r[8..12].try_into().unwrap());
                let mut recs: Vec<&[u8]> = drained.chunks(REC).collect();
                let in_order = recs.is_sorted_by_key(seq);
                recs.sort_by_key(seq);
                if !in_order {
                    sh.count("reordered while the subsidiary closed");
                }
                check_records(sh, slot, idx, 0, m, &recs.concat(), false)?;
                break;
            }
            Ok(v) => drained.extend_from_slice(&v),
            Err(Errno::EAGAIN) => {
                if start.elapsed() > SIGNAL_WAIT {
                    return Err(format!(
                        "slot {idx}: the subsidiary closed but the manager got no zero-length read"
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(format!("slot {idx}: manager read after close: {e}")),
        }
    }
    w.close(fd).map_err(|e| format!("close manager: {e}"))?;
    m.fd = None;
    sh.count("zero-length reads verified");
    Ok(())
}

/// One random operation by the holder of `end`'s half of an open slot.
fn half_op(
    w: &mut World,
    sh: &Shared,
    rng: &mut Rng,
    slot: &Slot,
    idx: usize,
    end: usize,
    half: &mut Half,
) -> Result<(), String> {
    let fd = half.fd.expect("open");
    let name = end_name(end);
    let other_closed = || slot.state.load(Ordering::SeqCst) != OPEN;
    match rng.below(100) {
        0..=34 => {
            let n = 1 + rng.below(8) as u32;
            let session = slot.session.load(Ordering::SeqCst);
            let mut buf = Vec::new();
            {
                let mut log = slot.log[end].flushes_at_write.lock().unwrap();
                let at = slot.flushes_done.load(Ordering::SeqCst);
                log.truncate(half.tx_next as usize);
                for i in 0..n {
                    buf.extend_from_slice(&record(session, end as u8, half.tx_next + i));
                    log.push(at);
                }
            }
            let r = w.write(fd, &buf);
            match r {
                Ok(k) if k == buf.len() => {
                    half.tx_next += n;
                    sh.count("writes");
                }
                Ok(k) => return Err(format!("slot {idx} {name}: short write {k}/{}", buf.len())),
                Err(Errno::EAGAIN) => sh.count("writes EAGAIN"),
                Err(Errno::EIO) | Err(Errno::ENXIO) if other_closed() => {}
                // ptmwput (ptm.c, `default:` case) answers data written
                // while `pts_rdq == NULL` -- the subsidiary's last close has
                // run ptsclose step 2 (docs/streams.md §3.4) -- with M_ERROR(NOERROR,
                // EINVAL): the manager stream's write error is set for good
                // (docs/streams.md §2.2) and every later write fails with EINVAL. Only once
                // the subsidiary's close has begun (state S_CLOSED is set
                // before its close() call); this end is then write-dead and
                // the slot's closing protocol takes over.
                Err(Errno::EINVAL) if end == 0 && other_closed() => {
                    sh.count("manager write-dead after subsidiary close")
                }
                Err(e) => return Err(format!("slot {idx} {name}: write: {e}")),
            }
        }
        35..=69 => {
            let n = (1 + rng.below(32) as usize) * REC;
            match w.read(fd, n) {
                Ok(v) if v.is_empty() => {
                    if !other_closed() {
                        return Err(format!(
                            "slot {idx} {name}: read 0 bytes while the pty is open"
                        ));
                    }
                    if end == 0 {
                        // The last subsidiary close raced with this read,
                        // which got its zero-length message (docs/streams.md §2.4).
                        half.eof_seen = true;
                        sh.count("zero-length read taken by an ordinary read");
                    }
                }
                // A manager read that returns after the subsidiary's close
                // began may hold records that ptsclose drained out of order
                // (see `finish_after_subsidiary_close`); they are checked
                // there with the rest of the drain. If the state is still
                // OPEN when the read has returned, the close had not begun,
                // so the order is checked strictly here.
                Ok(v) if end == 0 && other_closed() => half.after_close.extend_from_slice(&v),
                Ok(v) => {
                    check_records(sh, slot, idx, end, half, &v, end == 1 && other_closed())?;
                    sh.count("reads");
                }
                Err(Errno::EAGAIN) => {}
                Err(e) => return Err(format!("slot {idx} {name}: read: {e}")),
            }
        }
        70..=77 => {
            // Always with FLUSHW: the I_FLUSH's synchronising ioctl then
            // does not queue behind this end's flow-controlled data (which
            // could legitimately stall it for the 15 s I_STR timeout while
            // the other end waits the same way; see the module docs).
            let flags = [FLUSHW, FLUSHRW][rng.below(2) as usize];
            slot.flushing.fetch_add(1, Ordering::SeqCst);
            let r = w.flush(fd, flags);
            slot.flushes_done.fetch_add(1, Ordering::SeqCst);
            slot.flushing.fetch_sub(1, Ordering::SeqCst);
            match r {
                Ok(()) => sh.count("flushes"),
                Err(Errno::EIO) | Err(Errno::ENXIO) if other_closed() => {}
                // The manager's persistent write error (docs/streams.md §2.2: every ioctl
                // but a few read-only ones fails with EINVAL, I_FLUSH
                // included), set by a write racing with the subsidiary's
                // last close (see the write case).
                Err(Errno::EINVAL) if end == 0 && other_closed() => {}
                Err(e) => return Err(format!("slot {idx} {name}: I_FLUSH {flags:#x}: {e}")),
            }
        }
        78..=89 => {
            // The manager's ioctls are answered by ptm itself; the
            // subsidiary's TCGETS is forwarded through ptm to the manager's
            // stream head, which NAKs it (and may wait behind subsidiary
            // data until some thread reads the manager, which never blocks).
            let (cmd, r) = if end == 0 {
                (ISPTM, w.ioctl(fd, ISPTM, &[]))
            } else {
                (TCGETS, w.ioctl(fd, TCGETS, &[]))
            };
            if bad(&r) {
                let mfd = Fd(slot.fds[0].load(Ordering::SeqCst));
                let sfd = Fd(slot.fds[1].load(Ordering::SeqCst));
                let mut dump = String::new();
                for (i, d) in sh.doing.iter().enumerate() {
                    dump += &format!("  user {i}: {}\n", d.lock().unwrap());
                }
                return Err(format!(
                    "slot {idx} {name}: ioctl {cmd:#x}: {:?}\n m head rq {:?}\n m ptm wq {:?}\n s head rq {:?}\n s pts wq {:?}\n{dump}",
                    r.err(),
                    w.head_read_queue(mfd),
                    w.driver_write_queue(mfd),
                    w.head_read_queue(sfd),
                    w.driver_write_queue(sfd)
                ));
            }
            // ISPTM fails only with the manager's persistent write error
            // (docs/streams.md §2.2: EINVAL before the ioctl is sent), possible once the
            // subsidiary's last close has begun (see the write case).
            if cmd == ISPTM && r.is_err() && !(r == Err(Errno::EINVAL) && other_closed()) {
                return Err(format!("slot {idx} manager: ISPTM: {:?}", r.err()));
            }
            sh.count("ioctls");
        }
        90..=96 => {
            let p = w.poll(fd).map_err(|e| format!("poll: {e}"))?;
            // POLLERR on the manager = its persistent write error (docs/streams.md §2.2),
            // legitimate only once the subsidiary's last close has begun.
            if p.pollerr && !(end == 0 && other_closed()) {
                return Err(format!("slot {idx} {name}: POLLERR"));
            }
        }
        _ => {
            // Close this end; the holder of the other half verifies the
            // signal (hangup / zero-length read) and closes it.
            let to = if end == 0 { M_CLOSED } else { S_CLOSED };
            if slot
                .state
                .compare_exchange(OPEN, to, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                w.close(fd).map_err(|e| format!("close {name}: {e}"))?;
                half.fd = None;
                if end == 1 {
                    slot.s_close_done.store(true, Ordering::SeqCst);
                }
                sh.count(if end == 0 {
                    "manager closes first"
                } else {
                    "subsidiary closes first"
                });
            }
        }
    }
    Ok(())
}

/// One step of a user thread: pick a slot and a half it can lock, act.
fn step(w: &mut World, sh: &Shared, rng: &mut Rng, me: usize) -> Result<(), String> {
    let idx = rng.below(sh.slots.len() as u64) as usize;
    let slot = &sh.slots[idx];
    let end = rng.below(2) as usize;
    let set = |what: String| *sh.doing[me].lock().unwrap() = what;
    match slot.state.load(Ordering::SeqCst) {
        FREE => {
            let (Ok(mut m), Ok(mut s)) = (slot.m.try_lock(), slot.s.try_lock()) else {
                return Ok(());
            };
            if slot.state.load(Ordering::SeqCst) != FREE {
                return Ok(());
            }
            set(format!("slot {idx}: opening"));
            open_slot(w, sh, slot, &mut m, &mut s).map_err(|e| format!("slot {idx}: {e}"))?;
            sh.count("ptys opened");
        }
        _ => {
            let lock = if end == 0 { &slot.m } else { &slot.s };
            let Ok(mut half) = lock.try_lock() else {
                return Ok(());
            };
            let Some(_) = half.fd else { return Ok(()) };
            let state = slot.state.load(Ordering::SeqCst);
            match (state, end) {
                (OPEN, _) | (M_CLOSED, 0) | (S_CLOSED, 1) => {
                    if state != OPEN {
                        return Ok(()); // our own end is closing
                    }
                    set(format!("slot {idx}: {} op", end_name(end)));
                    half_op(w, sh, rng, slot, idx, end, &mut half)?;
                }
                (M_CLOSED, 1) => {
                    set(format!("slot {idx}: subsidiary after manager close"));
                    finish_after_manager_close(w, sh, slot, idx, &mut half)?;
                    // Both ends closed: the slot is free (the manager half
                    // has no fd any more).
                    slot.state.store(FREE, Ordering::SeqCst);
                }
                (S_CLOSED, 0) => {
                    set(format!("slot {idx}: manager after subsidiary close"));
                    finish_after_subsidiary_close(w, sh, slot, idx, &mut half)?;
                    slot.state.store(FREE, Ordering::SeqCst);
                }
                _ => {}
            }
        }
    }
    set("between steps".into());
    Ok(())
}

struct Config {
    threads: usize,
    slots: usize,
    workers: usize,
    ops_per_thread: usize,
    duration: Option<Duration>,
    bound: Duration,
}

fn run(v: Variant, cfg: &Config) {
    let seed: u64 = std::env::var("PTM_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!(
        "[{}] stress seed {seed} (PTM_STRESS_SEED={seed} to reuse): {} user threads, {} ptys, {} workers",
        v.name, cfg.threads, cfg.slots, cfg.workers
    );
    let mut world = World::new_threaded(v, cfg.workers).expect("load");
    world.set_tracing(false);
    let sh = Arc::new(Shared {
        slots: (0..cfg.slots).map(|_| Slot::default()).collect(),
        sessions: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        errors: Mutex::new(Vec::new()),
        doing: (0..cfg.threads)
            .map(|_| Mutex::new(String::from("starting")))
            .collect(),
        ops: AtomicUsize::new(0),
        counts: Mutex::new(Default::default()),
    });
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let mut handles = Vec::new();
    for t in 0..cfg.threads {
        let mut w = world.handle();
        let sh = Arc::clone(&sh);
        let tx = tx.clone();
        let ops = cfg.ops_per_thread;
        let duration = cfg.duration;
        let mut rng = Rng(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(t as u64 + 1)) | 1);
        handles.push(
            std::thread::Builder::new()
                .name(format!("user {t}"))
                .spawn(move || {
                    let mut i = 0;
                    while !sh.stop.load(Ordering::SeqCst) {
                        match duration {
                            Some(d) if start.elapsed() >= d => break,
                            None if i >= ops => break,
                            _ => {}
                        }
                        if let Err(e) = step(&mut w, &sh, &mut rng, t) {
                            sh.fail(format!("user {t}: {e}"));
                            break;
                        }
                        sh.ops.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    *sh.doing[t].lock().unwrap() = "done".into();
                    let _ = tx.send(t);
                })
                .unwrap(),
        );
    }
    drop(tx);
    // The watchdog: every user thread must be done within the bound.
    let deadline = start + cfg.duration.unwrap_or_default() + cfg.bound;
    for _ in 0..cfg.threads {
        let left = deadline.saturating_duration_since(Instant::now());
        if rx.recv_timeout(left).is_err() {
            let mut dump = String::new();
            for (i, d) in sh.doing.iter().enumerate() {
                dump += &format!("  user {i}: {}\n", d.lock().unwrap());
            }
            for ts in world.thread_states() {
                dump += &format!("  [{}] {}\n", ts.name, ts.activity);
            }
            panic!(
                "[{}] seed {seed}: no progress within {:?} (deadlock?); thread states:\n{dump}",
                v.name,
                deadline - start
            );
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    let errors = sh.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "[{}] seed {seed}: invariant violated:\n{}\nanomalies: {:#?}",
        v.name,
        errors.join("\n"),
        world.anomalies()
    );
    // Quiescent point: no procedure runs, nobody holds a reference or lock.
    assert!(world.quiesce(), "[{}] seed {seed}: did not quiesce", v.name);
    for (minor, refcnt, held) in world.pt_refcnts() {
        assert!(
            refcnt == 0 && !held,
            "[{}] seed {seed}: minor {minor}: pt_refcnt {refcnt}, pt_lock held {held}",
            v.name
        );
    }
    assert!(
        world.held_mutexes().is_empty(),
        "[{}] seed {seed}: mutexes held at the end: {:?}",
        v.name,
        world.held_mutexes()
    );
    // Close what is left with the same protocol (manager first on even
    // slots, subsidiary first on odd ones), then check for leaks.
    let mut rng = Rng(seed | 1);
    for (idx, slot) in sh.slots.iter().enumerate() {
        let mut m = slot.m.lock().unwrap();
        let mut s = slot.s.lock().unwrap();
        let r = match slot.state.load(Ordering::SeqCst) {
            OPEN if idx % 2 == 0 => {
                slot.state.store(M_CLOSED, Ordering::SeqCst);
                let fd = m.fd.take().unwrap();
                world.close(fd).unwrap();
                finish_after_manager_close(&mut world, &sh, slot, idx, &mut s)
            }
            OPEN => {
                slot.state.store(S_CLOSED, Ordering::SeqCst);
                let fd = s.fd.take().unwrap();
                world.close(fd).unwrap();
                slot.s_close_done.store(true, Ordering::SeqCst);
                finish_after_subsidiary_close(&mut world, &sh, slot, idx, &mut m)
            }
            M_CLOSED => finish_after_manager_close(&mut world, &sh, slot, idx, &mut s),
            S_CLOSED => finish_after_subsidiary_close(&mut world, &sh, slot, idx, &mut m),
            _ => Ok(()),
        };
        let _ = rng.next();
        if let Err(e) = r {
            panic!("[{}] seed {seed}: final close: {e}", v.name);
        }
    }
    let elapsed = start.elapsed();
    let report = world.finish();
    if let Err(e) = report {
        panic!("[{}] seed {seed}: {e}", v.name);
    }
    println!(
        "[{}] seed {seed}: {} steps in {:.2?}; {:?}",
        v.name,
        sh.ops.load(Ordering::Relaxed),
        elapsed,
        sh.counts.lock().unwrap()
    );
}

fn bounded() -> Config {
    Config {
        threads: 6,
        slots: 12,
        workers: 2,
        ops_per_thread: 5000,
        duration: None,
        bound: Duration::from_secs(30),
    }
}

// The bounded runs are part of the default test run (well under a second
// each). They used to fail for about a third of seeds: two simulator bugs
// (a lost qenable in the threaded scheduler, which stalled forwarded
// ioctls into ETIME; an ioctl reply arriving after a hangup wake-up leaked)
// and three legitimate outcomes the test did not model (the manager's
// persistent EINVAL write error after the subsidiary's close, the
// zero-length message taken by an ordinary read racing with that close,
// and the one message ptswsrv holds arriving after the zero-length
// message). See the comments at each.
#[test]
fn stress_rust_driver() {
    run(ptm_sim::rust_driver().expect("Rust driver"), &bounded());
}

#[test]
fn stress_c_oracle() {
    let Some(v) = ptm_sim::require_c_oracle("stress_c_oracle") else {
        return;
    };
    run(v, &bounded());
}

/// The long version, run by `make stress` (`PTM_STRESS_SECS`, default 60,
/// per driver).
#[test]
#[ignore = "long; run by `make stress`"]
fn stress_long() {
    let secs = std::env::var("PTM_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let cfg = Config {
        threads: 8,
        slots: 16,
        workers: 3,
        ops_per_thread: 0,
        duration: Some(Duration::from_secs(secs)),
        bound: Duration::from_secs(30),
    };
    for v in ptm_sim::variants() {
        run(v, &cfg);
    }
}
