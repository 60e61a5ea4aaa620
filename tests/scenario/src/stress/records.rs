//! What the stress test writes and what it remembers: the records, the
//! per-pty slots with their two halves, the state shared by the user
//! threads, and the check of what a reader sees.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use crate::api::{Errno, Fd};

/// The size of one record.
pub(super) const REC: usize = 16;

/// Slot states.
pub(super) const FREE: u32 = 0;
pub(super) const OPEN: u32 = 1;
/// The manager is open and unlocked; the subsidiary's holder is to open
/// the subsidiary, racing with what the manager's holder does.
pub(super) const PENDING: u32 = 4;
/// The manager's close has begun; the subsidiary's holder finishes.
pub(super) const M_CLOSED: u32 = 2;
/// The subsidiary's last close has begun; the manager's holder finishes.
pub(super) const S_CLOSED: u32 = 3;

/// xorshift64*: the user threads' choices, reproducible from the seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// FNV-1a of a record's identity.
fn checksum(session: u32, dir: u8, seq: u32) -> u32 {
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

/// Record `seq` of direction `dir` (0: manager → subsidiary) of `session`.
pub(super) fn record(session: u32, dir: u8, seq: u32) -> [u8; REC] {
    let mut r = [0u8; REC];
    r[0..4].copy_from_slice(&session.to_le_bytes());
    r[4] = dir;
    r[5..8].copy_from_slice(&[0x5a; 3]);
    r[8..12].copy_from_slice(&seq.to_le_bytes());
    r[12..16].copy_from_slice(&checksum(session, dir, seq).to_le_bytes());
    r
}

/// The sequence number of a record.
pub(super) fn seq_of(r: &[u8]) -> u32 {
    u32::from_le_bytes([r[8], r[9], r[10], r[11]])
}

/// One direction of one pty: what its writer sent.
#[derive(Default)]
pub(super) struct DirLog {
    /// Per sequence number: the slot's completed-flush count when the
    /// write of that record began.
    pub(super) flushes_at_write: Mutex<Vec<u64>>,
}

/// One end of a pty, owned by whichever user thread holds its mutex.
#[derive(Default)]
pub(super) struct Half {
    pub(super) fd: Option<Fd>,
    /// Next sequence number this end writes.
    pub(super) tx_next: u32,
    /// Next sequence number this end expects to read.
    pub(super) rx_next: u32,
    /// Manager only: bytes read by an ordinary read that returned after
    /// the subsidiary's close had begun (checked, in full, with the rest of
    /// what the close drains; see `closing::after_subsidiary_close`).
    pub(super) after_close: Vec<u8>,
    /// Manager only: an ordinary read that raced with the last subsidiary
    /// close already returned the zero-length message (it is consumed by
    /// that read: each zero-length message gives exactly one 0-byte read),
    /// so the closing protocol must not wait for another one.
    pub(super) eof_seen: bool,
}

/// One pty of the run.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) m: Mutex<Half>,
    pub(super) s: Mutex<Half>,
    pub(super) state: AtomicU32,
    pub(super) session: AtomicU32,
    /// The pty's minor (for reopens of its subsidiary).
    pub(super) minor: AtomicU32,
    /// The fds of the current pty (for diagnostics), -1 when none.
    pub(super) fds: [AtomicI32; 2],
    pub(super) flushing: AtomicU32,
    /// The subsidiary's last close() has returned (ptsclose has run to its
    /// end, qprocsoff included).
    pub(super) s_close_done: AtomicBool,
    /// The manager's close() has returned (for diagnostics).
    pub(super) m_close_done: AtomicBool,
    /// The subsidiary may never see the manager's hangup: an open of it
    /// returned after the manager's close had begun (see
    /// `closing::wait_for_hangup`).
    pub(super) hangup_may_be_missing: AtomicBool,
    /// The manager wrote before the subsidiary's open had returned: ptm
    /// may have refused the data with the M_ERROR that makes the manager
    /// write-dead for good.
    pub(super) m_wrote_pending: AtomicBool,
    pub(super) flushes_done: AtomicU64,
    /// [0]: manager → subsidiary, [1]: subsidiary → manager.
    pub(super) log: [DirLog; 2],
}

impl Slot {
    /// Whether one end's close has begun.
    pub(super) fn other_closed(&self) -> bool {
        matches!(self.state.load(Ordering::SeqCst), M_CLOSED | S_CLOSED)
    }

    /// Whether the manager may be write-dead (EINVAL on write, ioctl and
    /// I_FLUSH, POLLERR): after a write that may have raced with the
    /// subsidiary's open, or once either end's close has begun.
    pub(super) fn m_may_be_write_dead(&self) -> bool {
        self.other_closed() || self.m_wrote_pending.load(Ordering::SeqCst)
    }
}

/// What the user threads share.
pub(super) struct Shared {
    pub(super) slots: Vec<Slot>,
    pub(super) sessions: AtomicU32,
    pub(super) stop: AtomicBool,
    pub(super) errors: Mutex<Vec<String>>,
    /// What each user thread is doing (for the watchdog's dump).
    pub(super) doing: Vec<Mutex<String>>,
    pub(super) ops: AtomicUsize,
    pub(super) counts: Mutex<BTreeMap<&'static str, usize>>,
    /// Clone opens (written) against opens of a pending pty's subsidiary
    /// (read): once a pending pty's manager has closed, its minor may go
    /// to the next clone open, and an open of `/dev/pts/N` would then reach
    /// that other pty. A subsidiary open checks that its pty is still
    /// pending and opens with no clone open in between.
    pub(super) minors: RwLock<()>,
}

impl Shared {
    pub(super) fn new(slots: usize, threads: usize) -> Shared {
        Shared {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            sessions: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            errors: Mutex::new(Vec::new()),
            doing: (0..threads)
                .map(|_| Mutex::new(String::from("starting")))
                .collect(),
            ops: AtomicUsize::new(0),
            counts: Mutex::new(BTreeMap::new()),
            minors: RwLock::new(()),
        }
    }
    pub(super) fn fail(&self, msg: String) {
        self.stop.store(true, Ordering::SeqCst);
        self.errors.lock().unwrap().push(msg);
    }
    pub(super) fn count(&self, what: &'static str) {
        *self.counts.lock().unwrap().entry(what).or_default() += 1;
    }
    pub(super) fn set_doing(&self, me: usize, what: String) {
        *self.doing[me].lock().unwrap() = what;
    }
    /// One line per user thread: what it is doing.
    pub(super) fn dump_users(&self) -> String {
        let mut dump = String::new();
        for (i, d) in self.doing.iter().enumerate() {
            dump += &format!("  user {i}: {}\n", d.lock().unwrap());
        }
        dump
    }
}

/// Which end a half is: 0 manager, 1 subsidiary. Direction `end` is the one
/// this end writes; it reads direction `1 - end`.
pub(super) fn end_name(end: usize) -> &'static str {
    if end == 0 { "manager" } else { "subsidiary" }
}

/// A call that must never happen: a lost ACK (ETIME) or a sleep nothing
/// ends (BLOCKED).
pub(super) fn bad<T>(r: &Result<T, Errno>) -> bool {
    matches!(r, Err(e) if *e == Errno::ETIME || *e == Errno::BLOCKED)
}

/// Checks the records read on `end` of `slot`; `writer_closed` allows gaps
/// (the writer's end is gone and its data may have died with it).
pub(super) fn check_records(
    sh: &Shared,
    slot: &Slot,
    idx: usize,
    end: usize,
    half: &mut Half,
    data: &[u8],
    writer_closed: bool,
) -> Result<(), String> {
    let dir = 1 - end;
    let name = end_name(end);
    if !data.len().is_multiple_of(REC) {
        return Err(format!(
            "slot {idx} {name}: read {} bytes, not whole records",
            data.len()
        ));
    }
    let session = slot.session.load(Ordering::SeqCst);
    for r in data.chunks(REC) {
        let s = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
        let seq = seq_of(r);
        if r != record(s, r[4], seq) || s != session || usize::from(r[4]) != dir {
            return Err(format!(
                "slot {idx} {name}: corrupt or foreign record {r:02x?} (session {session}, dir {dir})"
            ));
        }
        if seq < half.rx_next {
            return Err(format!(
                "slot {idx} {name}: record {seq} duplicated or out of order (expected {})",
                half.rx_next
            ));
        }
        if seq > half.rx_next {
            let flushing = slot.flushing.load(Ordering::SeqCst);
            let done = slot.flushes_done.load(Ordering::SeqCst);
            let at = slot.log[dir].flushes_at_write.lock().unwrap()[half.rx_next as usize];
            if !(writer_closed || flushing > 0 || done > at) {
                return Err(format!(
                    "slot {idx} {name}: records {}..{seq} lost (no flush since they were written)",
                    half.rx_next
                ));
            }
            sh.count("gaps after flush");
        }
        half.rx_next = seq + 1;
    }
    Ok(())
}
