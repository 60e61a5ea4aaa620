//! What every system call of the world's process shares: the fd table,
//! the stream an fd refers to and its stream-head state, and the one
//! trace line each call ends with.
//!
//! These run in the current world (inside `World::op`) and take the world
//! lock only for as long as they look at the state.

use std::ffi::c_int;

use ptm::sys::queue_t;
use ptm_scenario::{Errno, Fd, TraceEvent};

use crate::queue::QPair;
use crate::world::{self, FdEntry, StreamId, sd};

/// Ends a system call: its one unindented trace line, `call = result`.
pub(crate) fn sys(call: String, result: String) {
    world::trace(TraceEvent::Sys { call, result });
}

/// A result without a value as the trace shows it: `0` or the errno.
pub(crate) fn show_unit(r: &Result<(), Errno>) -> String {
    match r {
        Ok(()) => "0".into(),
        Err(e) => e.name(),
    }
}

/// The stream `fd` refers to and the flags it was opened with (EBADF).
pub(crate) fn lookup(fd: Fd) -> Result<(StreamId, i32), Errno> {
    world::with(|s| {
        s.fds
            .get(&fd.0)
            .map(|e| (e.stream, e.flags))
            .ok_or(Errno::EBADF)
    })
}

/// A new fd for stream `sid`: the lowest free number from 3.
pub(crate) fn new_fd(sid: StreamId, flags: i32) -> Fd {
    world::with(|s| {
        let n = (3..).find(|n| !s.fds.contains_key(n)).expect("fd space");
        s.fds.insert(n, FdEntry { stream: sid, flags });
        s.streams[sid].refs += 1;
        Fd(n)
    })
}

/// Open flags as a driver's open and close routines see them (`FREAD`
/// and `FWRITE` for the access mode).
pub(crate) fn kflags(flags: i32) -> c_int {
    ((flags & 3) + 1) | (flags & !3)
}

/// The stream head pair of stream `sid`.
pub(crate) fn head(sid: StreamId) -> *mut QPair {
    world::with(|s| s.streams[sid].pairs[0])
}

/// The write queue of stream `sid`'s head.
pub(crate) fn head_wq(sid: StreamId) -> *mut queue_t {
    let head = head(sid);
    // SAFETY: the head pair of a live stream.
    unsafe { &raw mut (*head).wq }
}

/// The driver pair (the bottom one) of stream `sid`.
pub(crate) fn driver_pair(sid: StreamId) -> *mut QPair {
    world::with(|s| *s.streams[sid].pairs.last().expect("driver pair"))
}

/// The error a call checking the stream-head conditions in `mask` meets
/// first: a read error (its errno), a write error (its errno), a hangup
/// (ENXIO).
pub(crate) fn stream_err(sid: StreamId, mask: u32) -> Option<Errno> {
    world::with(|s| {
        let st = &s.streams[sid];
        if mask & sd::STRDERR != 0 && st.flags & sd::STRDERR != 0 {
            Some(Errno(st.rerror))
        } else if mask & sd::STWRERR != 0 && st.flags & sd::STWRERR != 0 {
            Some(Errno(st.werror))
        } else if mask & sd::STRHUP != 0 && st.flags & sd::STRHUP != 0 {
            Some(Errno::ENXIO)
        } else {
            None
        }
    })
}

/// Whether the world is multi-threaded and stream `sid` has hung up: a
/// blocked call then gives up waiting.
pub(crate) fn mt_hung_up(sid: StreamId) -> bool {
    world::is_mt() && stream_err(sid, sd::STRHUP).is_some()
}
