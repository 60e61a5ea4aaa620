//! The world's trace: system calls, the messages stream heads receive
//! (through the hook on strrput, `csrc/hooks.c`), and what the kernel
//! records (signals, NULL zones).
//!
//! The log is process-wide, as the kernel is; a world clears it when it
//! starts. Streams are named when their open completes (`M<minor>` for a
//! manager, `S<minor>` for a subsidiary) and the names are applied when the
//! trace is read, so that a message received during the open (ptm's
//! M_SETOPTS) is shown under the stream's final name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ptm::sys::mblk_t;
use ptm_scenario::msg::{IocIds, describe};
use ptm_scenario::{MsgDesc, TraceEvent};

use crate::kernel::{self, Event, ffi};

enum Raw {
    Sys { call: String, result: String },
    Note(String),
    Head { stream: u64, msg: MsgDesc },
    Kernel(Event),
}

/// A reply the world waits for: an ioctl it sent down itself.
pub(crate) struct Pending {
    pub id: u32,
    pub reply: Option<(u8, i32, i32, Vec<u8>)>,
}

#[derive(Default)]
struct Log {
    events: Vec<Raw>,
    ids: IocIds,
    /// Live streams by stream head address: their instance number.
    streams: HashMap<usize, u64>,
    names: HashMap<u64, String>,
    next: u64,
    pending: Option<Pending>,
}

static LOG: Mutex<Option<Log>> = Mutex::new(None);

/// Whether events are recorded (a stress run turns it off: its trace
/// would only grow; replies to the world's own ioctls are still taken).
static TRACING: AtomicBool = AtomicBool::new(true);

/// Turns the recording of events on or off.
pub(crate) fn set_tracing(on: bool) {
    TRACING.store(on, Ordering::Relaxed);
}

fn tracing() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Whether the world waits for the reply to an ioctl it sent itself.
static PENDING: AtomicBool = AtomicBool::new(false);

fn with<R>(f: impl FnOnce(&mut Log) -> R) -> R {
    let mut g = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let log = g.get_or_insert_with(Log::default);
    for e in kernel::take_events() {
        log.events.push(Raw::Kernel(e));
    }
    f(log)
}

/// Starts a new world's log.
pub(crate) fn reset() {
    let _ = kernel::take_events();
    set_tracing(true);
    *LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(Log::default());
}

pub(crate) fn sys(call: String, result: String) {
    if !tracing() {
        return;
    }
    with(|l| l.events.push(Raw::Sys { call, result }));
}

/// Where the next event will go.
pub(crate) fn position() -> usize {
    with(|l| l.events.len())
}

/// A note about the call being made.
pub(crate) fn note(text: String) {
    if !tracing() {
        return;
    }
    with(|l| l.events.push(Raw::Note(text)));
}

/// A note, placed at `at` (a [`position`] taken earlier): something the
/// world observed about what happened from there on.
pub(crate) fn note_at(at: usize, text: String) {
    if !tracing() {
        return;
    }
    with(|l| l.events.insert(at.min(l.events.len()), Raw::Note(text)));
}

fn instance(l: &mut Log, stp: usize) -> u64 {
    if let Some(&i) = l.streams.get(&stp) {
        return i;
    }
    l.next += 1;
    l.streams.insert(stp, l.next);
    l.next
}

/// Names the stream of head `stp` (after its open completed).
pub(crate) fn name_stream(stp: *mut ffi::stdata_t, name: String) {
    if !tracing() {
        return;
    }
    with(|l| {
        let i = instance(l, stp as usize);
        l.names.insert(i, name);
    });
}

/// The stream at `stp` is gone: a new stream there is another one.
pub(crate) fn forget_stream(stp: *mut ffi::stdata_t) {
    with(|l| {
        l.streams.remove(&(stp as usize));
    });
}

/// Expects the reply to ioctl `id`.
pub(crate) fn expect_reply(id: u32) {
    with(|l| l.pending = Some(Pending { id, reply: None }));
    PENDING.store(true, Ordering::SeqCst);
}

/// The reply to the expected ioctl, if it came: (type, rval, error, data).
pub(crate) fn take_reply() -> Option<(u8, i32, i32, Vec<u8>)> {
    PENDING.store(false, Ordering::SeqCst);
    with(|l| l.pending.take().and_then(|p| p.reply))
}

/// The hook on strrput (csrc/hooks.c): a stream head received `mp`.
#[unsafe(no_mangle)]
pub extern "C" fn kp_head_received(stp: *mut ffi::stdata_t, mp: *mut mblk_t) {
    if !tracing() && !PENDING.load(Ordering::SeqCst) {
        return;
    }
    with(|l| {
        if !tracing() {
            if let Some(p) = l.pending.as_mut() {
                // SAFETY: as below.
                if let Some(r) = unsafe { ioc_reply(mp, p.id) } {
                    p.reply = Some(r);
                }
            }
            return;
        }
        // SAFETY: strrput's caller passes a valid message, in illumos's
        // layout (which ptm::sys describes).
        let msg = unsafe { describe(mp, &mut l.ids) };
        if let Some(p) = l.pending.as_mut() {
            // SAFETY: as above; an ACK/NAK starts with an iocblk.
            if let Some(r) = unsafe { ioc_reply(mp, p.id) } {
                p.reply = Some(r);
            }
        }
        let i = instance(l, stp as usize);
        l.events.push(Raw::Head { stream: i, msg });
    });
}

/// (type, rval, error, data) of `mp` if it is the ACK or NAK of ioctl `id`.
///
/// # Safety
/// `mp` must be a valid message.
unsafe fn ioc_reply(mp: *mut mblk_t, id: u32) -> Option<(u8, i32, i32, Vec<u8>)> {
    use ptm::sys::{M_IOCACK, M_IOCNAK, iocblk};
    // SAFETY: the caller guarantees a valid message.
    unsafe {
        let t = (*(*mp).b_datap).db_type;
        let len = (*mp).b_wptr as usize - (*mp).b_rptr as usize;
        if (i32::from(t) != M_IOCACK && i32::from(t) != M_IOCNAK)
            || len < std::mem::size_of::<iocblk>()
        {
            return None;
        }
        let ioc = std::ptr::read_unaligned((*mp).b_rptr as *const iocblk);
        if ioc.ioc_id != id {
            return None;
        }
        // strdoioctl copies out only the ioc_count bytes an ACK declares.
        let mut data = ptm_scenario::msg::msg_bytes((*mp).b_cont);
        data.truncate(ioc.ioc_count);
        Some((t, ioc.ioc_rval, ioc.ioc_error, data))
    }
}

/// The trace so far.
pub(crate) fn events() -> Vec<TraceEvent> {
    with(|l| {
        l.events
            .iter()
            .filter_map(|e| match e {
                Raw::Sys { call, result } => Some(TraceEvent::Sys {
                    call: call.clone(),
                    result: result.clone(),
                }),
                Raw::Note(n) => Some(TraceEvent::Note(n.clone())),
                Raw::Head { stream, msg } => Some(TraceEvent::HeadRecv {
                    stream: l
                        .names
                        .get(stream)
                        .cloned()
                        .unwrap_or_else(|| format!("stream#{stream}")),
                    msg: msg.clone(),
                }),
                Raw::Kernel(Event::Signal { to, id, sig }) => Some(TraceEvent::Signal {
                    to: *to,
                    id: *id,
                    sig: *sig,
                }),
                Raw::Kernel(Event::NullZoneRele) => Some(TraceEvent::NullZoneRele),
                Raw::Kernel(Event::NullZoneDeref(w)) => Some(TraceEvent::NullZoneDeref(w)),
                Raw::Kernel(Event::Assertion(a)) => Some(TraceEvent::Note(format!(
                    "ASSERT({a}) fails: a DEBUG kernel panics here"
                ))),
                Raw::Kernel(_) => None,
            })
            .collect()
    })
}

/// Every kernel event of the world so far (cmn_err messages, minor nodes).
pub(crate) fn kernel_events() -> Vec<Event> {
    with(|l| {
        l.events
            .iter()
            .filter_map(|e| match e {
                Raw::Kernel(k) => Some(k.clone()),
                _ => None,
            })
            .collect()
    })
}

/// The end of the trace, for a kernel failure report (taken without
/// waiting: the failure may come with the log locked).
pub(crate) fn report_tail() -> String {
    let Ok(g) = LOG.try_lock() else {
        return "--- trace: unavailable ---\n".into();
    };
    let Some(l) = g.as_ref() else {
        return String::new();
    };
    let mut s = String::from("--- the world's last calls ---\n");
    for e in l
        .events
        .iter()
        .rev()
        .take(400)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        match e {
            Raw::Sys { call, result } => s += &format!("{call} = {result}\n"),
            Raw::Note(n) => s += &format!("  note: {n}\n"),
            Raw::Head { stream, msg } => {
                s += &format!(
                    "  stream#{stream} head <- {}\n",
                    ptm_scenario::mtype_name(msg.mtype)
                )
            }
            Raw::Kernel(k) => s += &format!("  {k:?}\n"),
        }
    }
    s
}
