//! ioctls through a stream head, as `strioctl`/`strdoioctl` do: an
//! M_IOCTL sent down, and the wait for the M_IOCACK or M_IOCNAK with its
//! id; and `I_FLUSH`/`I_FLUSHBAND`, an M_FLUSH sent down followed by an
//! ioctl whose answer shows the flush has come round.
//!
//! Each `pub(crate)` function here is one system call, run in the current
//! world (inside `World::op`), ending with its trace line.

use std::ffi::c_int;
use std::ptr;

use ptm::sys::*;
use ptm_scenario::msg::{msg_bytes, show_ioc};
use ptm_scenario::{Errno, FLUSHRW, Fd, IocReply, ioctl_name};

use crate::io::data_block;
use crate::put;
use crate::sched;
use crate::syscall::{head_wq, lookup, show_unit, stream_err, sys};
use crate::world::{self, StreamId, sd};
use crate::{STRMSGSZ, msg, mt};

/// `IOC_NATIVE` (`DATAMODEL_NATIVE` on amd64).
const IOC_NATIVE: u32 = 0x0020_0000;

/// Which kind of ioctl: `I_STR` (15 s timeout) or a transparent tty ioctl
/// converted by the stream head (waits forever).
#[derive(Clone, Copy, PartialEq, Eq)]
enum IocKind {
    Str,
    Tty,
}

/// `ioctl(fd, I_STR, {cmd, timeout 0, len, payload})` with the payload
/// split over one block per part: empty parts are left out (an empty
/// list, or all-empty parts, sends no data block), or with `keep_empty`
/// sent as empty blocks -- the chain a module above the driver could
/// build, which no stream head sends.
pub(crate) fn ioctl_str(
    fd: Fd,
    cmd: i32,
    parts: &[&[u8]],
    keep_empty: bool,
) -> Result<IocReply, Errno> {
    let r = lookup(fd).and_then(|(sid, _)| {
        ioctl_preflight(sid)?;
        strdoioctl(sid, cmd, parts, IocKind::Str, keep_empty)
    });
    let len: usize = parts.iter().map(|p| p.len()).sum();
    sys(
        format!("ioctl(fd{}, I_STR {}, {len} bytes)", fd.0, ioctl_name(cmd)),
        show_ioc(&r),
    );
    r
}

/// A transparent terminal ioctl (e.g. `TIOCGWINSZ`, `TCGETS`), which the
/// stream head converts to an M_IOCTL with an infinite timeout.
pub(crate) fn tty_ioctl(fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
    let r = lookup(fd).and_then(|(sid, _)| {
        ioctl_preflight(sid)?;
        strdoioctl(sid, cmd, &[payload], IocKind::Tty, false)
    });
    sys(
        format!("ioctl(fd{}, {})", fd.0, ioctl_name(cmd)),
        show_ioc(&r),
    );
    r
}

/// `ioctl(fd, I_FLUSH, flags)`, or with `band` `I_FLUSHBAND`: an M_FLUSH
/// down, then an unknown ioctl (-1) whose NAK proves the flush has looped
/// round.
pub(crate) fn flush(fd: Fd, flags: i32, band: Option<u8>) -> Result<(), Errno> {
    let r = lookup(fd).and_then(|(sid, _)| do_flush(sid, flags, band));
    let what = match band {
        None => format!("I_FLUSH {flags:#x}"),
        Some(b) => format!("I_FLUSHBAND band {b} {flags:#x}"),
    };
    sys(format!("ioctl(fd{}, {what})", fd.0), show_unit(&r));
    r
}

fn do_flush(sid: StreamId, flags: i32, band: Option<u8>) -> Result<(), Errno> {
    if let Some(e) = stream_err(sid, sd::STRDERR | sd::STWRERR) {
        return Err(e);
    }
    if flags & !FLUSHRW != 0 || flags == 0 {
        return Err(Errno::EINVAL);
    }
    if let Some(e) = stream_err(sid, sd::STRHUP) {
        return Err(e);
    }
    let mp = match band {
        None => data_block(&[flags as u8]),
        Some(b) => data_block(&[flags as u8 | FLUSHBAND as u8, b]),
    };
    // SAFETY: a fresh block.
    unsafe { (*(*mp).b_datap).db_type = M_FLUSH as u8 };
    put::putnext(head_wq(sid), mp);
    sched::run_services(Some(sid), true);
    let _ = strdoioctl(sid, -1, &[], IocKind::Str, false);
    sched::run_services(Some(sid), false);
    Ok(())
}

/// What `strioctl` checks before sending an ioctl down: a stream error
/// first (its errno), then a hangup (ENXIO).
fn ioctl_preflight(sid: StreamId) -> Result<(), Errno> {
    match stream_err(sid, sd::STRDERR | sd::STWRERR).or_else(|| stream_err(sid, sd::STRHUP)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `strdoioctl`: sends the M_IOCTL down and waits for its answer.
fn strdoioctl(
    sid: StreamId,
    cmd: i32,
    parts: &[&[u8]],
    kind: IocKind,
    keep_empty: bool,
) -> Result<IocReply, Errno> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > STRMSGSZ {
        return Err(Errno::EINVAL);
    }
    let (id, cred) = world::with(|s| {
        let id = s.next_iocid;
        s.next_iocid += 1;
        (id, s.cur_cred_ptr())
    });
    let mp = ioctl_message(cmd, id, cred, parts, keep_empty);
    let old = world::with(|s| {
        let st = &mut s.streams[sid];
        st.flags |= sd::IOCWAIT;
        st.iocid = id;
        std::mem::replace(&mut st.iocblk, ptr::null_mut())
    });
    msg::freemsg_impl(old);
    put::putnext(head_wq(sid), mp);
    sched::run_services(Some(sid), true);
    let reply = await_reply(sid);
    if reply.is_null() {
        if let Some(e) = stream_err(sid, sd::STRDERR | sd::STWRERR | sd::STRHUP) {
            return Err(e);
        }
        return Err(match kind {
            IocKind::Str => Errno::ETIME,
            IocKind::Tty => Errno::BLOCKED,
        });
    }
    // SAFETY: the reply is a live M_IOCACK/M_IOCNAK whose first block was
    // checked to hold an iocblk by strrput.
    let r = unsafe { reply_result(reply) };
    msg::freemsg_impl(reply);
    r
}

/// The M_IOCTL a stream head sends for `cmd`: an iocblk with id `id` and
/// credential `cred`, then the payload's parts (see [`ioctl_str`]).
fn ioctl_message(
    cmd: i32,
    id: u32,
    cred: *mut cred_t,
    parts: &[&[u8]],
    keep_empty: bool,
) -> *mut mblk_t {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mp = msg::alloc(std::mem::size_of::<iocblk>(), false);
    // SAFETY: a fresh block with room for an iocblk.
    unsafe {
        (*(*mp).b_datap).db_type = M_IOCTL as u8;
        let ioc = (*mp).b_rptr as *mut iocblk;
        ptr::write(
            ioc,
            iocblk {
                ioc_cmd: cmd,
                ioc_cr: cred,
                ioc_id: id,
                ioc_flag: IOC_NATIVE,
                ioc_count: total,
                ioc_rval: 0,
                ioc_error: 0,
            },
        );
        (*mp).b_wptr = (*mp).b_wptr.add(std::mem::size_of::<iocblk>());
        if total > 0 || keep_empty {
            let mut tail = mp;
            for part in parts.iter().filter(|p| keep_empty || !p.is_empty()) {
                let b = data_block(part);
                (*tail).b_cont = b;
                tail = b;
            }
        }
    }
    mp
}

/// Waits for the answer to the ioctl stream `sid` sent (single-threaded:
/// it has come once the services ran, or never will) and takes it (NULL:
/// none came).
fn await_reply(sid: StreamId) -> *mut mblk_t {
    if world::with(|s| s.streams[sid].iocblk.is_null()) {
        sched::run_services(None, false);
        mt::settle_for("ioctl: waiting for the ACK", mt::IOCTL_WAIT, || {
            world::with(|s| {
                let st = &s.streams[sid];
                !st.iocblk.is_null() || st.flags & (sd::STRDERR | sd::STWRERR | sd::STRHUP) != 0
            })
        });
    }
    // Stop waiting and take the reply in one hold of the world lock: in
    // the multi-threaded mode a reply may arrive after the wait ended
    // (e.g. woken by a hangup, the subsidiary's queued ioctl is NAKed by
    // ptswsrv once the manager has gone); looked at and cleared in two
    // holds, that reply was dropped from `iocblk` without being freed
    // (a leaked M_IOCNAK found by the stress test). A reply that made it
    // before IOCWAIT was cleared is the ioctl's answer, as in illumos
    // where strdoioctl takes `sd_iocblk` under `sd_lock`.
    world::with(|s| {
        let st = &mut s.streams[sid];
        st.flags &= !sd::IOCWAIT;
        std::mem::replace(&mut st.iocblk, ptr::null_mut())
    })
}

/// The ioctl's result from its answer: an ACK's return value and data
/// (`ioc_count` bytes), or the errno of an ACK or NAK that carries one
/// (EINVAL for a NAK without).
///
/// # Safety
/// `reply` must be a live M_IOCACK/M_IOCNAK whose first block holds an
/// iocblk.
unsafe fn reply_result(reply: *mut mblk_t) -> Result<IocReply, Errno> {
    // SAFETY: the caller's.
    unsafe {
        let ioc = ptr::read_unaligned((*reply).b_rptr as *const iocblk);
        if msg::mtype(reply) as c_int != M_IOCACK {
            return Err(if ioc.ioc_error != 0 {
                Errno(ioc.ioc_error)
            } else {
                Errno::EINVAL
            });
        }
        if ioc.ioc_error != 0 {
            return Err(Errno(ioc.ioc_error));
        }
        let mut data = msg_bytes((*reply).b_cont);
        data.truncate(ioc.ioc_count);
        Ok(IocReply {
            rval: ioc.ioc_rval,
            data,
        })
    }
}
