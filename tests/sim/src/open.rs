//! Opening and closing streams, as `stropen`/`qattach` and
//! `strclose`/`qdetach` do: a new stream gets a stream head and the
//! driver's queue pair, and the driver's open routine is called on it (a
//! subsidiary already open is reopened instead); the last close of a
//! stream calls the close routines and frees the stream.
//!
//! Each `pub(crate)` function here is one system call, run in the current
//! world (inside `World::op`), ending with its trace line.

use std::ffi::{c_int, c_void};
use std::ptr;

use ptm::sys::*;
use ptm_scenario::{Errno, Fd, O_NDELAY, O_NONBLOCK, O_RDWR, PtsNode};
use ptm_scenario::{PTM_MAJOR, PTS_MAJOR};

use crate::link;
use crate::queue::{self, QPair, Role};
use crate::sched;
use crate::syscall::{driver_pair, kflags, new_fd, show_unit, sys};
use crate::world::{self, StreamId, StreamKind, sd};
use crate::{STRMSGSZ, ddi, head, msg, mt, pts};

/// `open("/dev/ptmx", flags)`: a clone open (`sflag` CLONEOPEN, minor 0).
pub(crate) fn open_manager(flags: i32) -> Result<Fd, Errno> {
    let dev = ddi::makedevice(PTM_MAJOR, 0);
    let r = open_stream(StreamKind::Manager, dev, CLONEOPEN, flags).map(|sid| {
        sched::run_services(Some(sid), false);
        new_fd(sid, flags)
    });
    sched::run_services(None, false);
    sys(format!("open(/dev/ptmx, {flags:#x})"), show_fd(&r));
    r
}

/// A direct (non-clone) open of ptm minor `minor` through a device node
/// someone made by hand. A manager already open on that minor is reopened:
/// the clone open left its stream on the minor's common vnode, so stropen
/// finds it, as it does for a subsidiary.
pub(crate) fn open_manager_node(minor: u32, flags: i32) -> Result<Fd, Errno> {
    let dev = ddi::makedevice(PTM_MAJOR, minor);
    let r = match live_stream(StreamKind::Manager, minor) {
        Some(sid) => reopen(sid, dev, flags),
        None => open_stream(StreamKind::Manager, dev, 0, flags),
    }
    .map(|sid| new_fd(sid, flags));
    sched::run_services(None, false);
    sys(
        format!("open(ptm node minor {minor}, {flags:#x})"),
        show_fd(&r),
    );
    r
}

/// `I_PUSH` of ptm as a module onto a new stream: the open routine is
/// called with `MODOPEN`.
pub(crate) fn push_manager_as_module() -> Result<(), Errno> {
    let dev = ddi::makedevice(PTM_MAJOR, 0);
    let r = open_stream(StreamKind::Manager, dev, MODOPEN, O_RDWR).map(|sid| {
        world::anomaly("ptm accepted a MODOPEN");
        strclose(sid, O_RDWR);
    });
    sched::run_services(None, false);
    sys("I_PUSH ptm (MODOPEN)".into(), show_unit(&r));
    r
}

/// What `open("/dev/pts/N", flags)` checks before the device open: the
/// node must exist (`node`, ENOENT otherwise); it is mode 0620, owned by
/// the pty's owner, so others without privilege may only write, and only
/// as members of its group (EACCES).
pub(crate) fn pts_access(
    node: Option<PtsNode>,
    cred: ptm_scenario::Cred,
    flags: i32,
) -> Result<(), Errno> {
    let n = node.ok_or(Errno::ENOENT)?;
    if cred.may_open(&n, flags) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// `open("/dev/pts/N", flags)` refused before the device open.
pub(crate) fn pts_refused(minor: u32, flags: i32, e: Errno) -> Result<Fd, Errno> {
    sys(format!("open(/dev/pts/{minor}, {flags:#x})"), e.name());
    Err(e)
}

/// Opens subsidiary minor `minor` through a device node (straight to
/// `ptsopen`, bypassing `/dev/pts`). An already open subsidiary stream is
/// reopened (`stropen`'s reopen path: EIO on an errored stream; on
/// success the hangup and errors are cleared).
pub(crate) fn open_subsidiary_node(minor: u32, flags: i32) -> Result<Fd, Errno> {
    let dev = ddi::makedevice(PTS_MAJOR, minor);
    let r = match live_stream(StreamKind::Subsidiary, minor) {
        Some(sid) => reopen(sid, dev, flags),
        None => open_stream(StreamKind::Subsidiary, dev, 0, flags),
    }
    .map(|sid| {
        sched::run_services(Some(sid), false);
        new_fd(sid, flags)
    });
    sched::run_services(None, false);
    sys(format!("open(/dev/pts/{minor}, {flags:#x})"), show_fd(&r));
    r
}

/// The open stream of `kind` on `minor`, if there is one.
fn live_stream(kind: StreamKind, minor: u32) -> Option<StreamId> {
    world::with(|s| {
        s.streams
            .iter()
            .position(|st| !st.dead && st.refs > 0 && st.kind == kind && st.minor == Some(minor))
    })
}

/// `close(fd)`. The last close of a stream dismantles it (`strclose`).
pub(crate) fn close(fd: Fd) -> Result<(), Errno> {
    let Some(e) = world::with(|s| s.fds.remove(&fd.0)) else {
        sys(format!("close(fd{})", fd.0), "EBADF".into());
        return Err(Errno::EBADF);
    };
    let last = world::with(|s| {
        let st = &mut s.streams[e.stream];
        st.refs -= 1;
        st.refs == 0
    });
    let name = world::with(|s| s.stream_name(e.stream));
    if last {
        strclose(e.stream, e.flags);
    }
    sched::run_services(None, false);
    sys(format!("close(fd{} {name})", fd.0), "0".into());
    Ok(())
}

/// An open's result as the trace shows it: the fd and its stream's name.
fn show_fd(r: &Result<Fd, Errno>) -> String {
    match r {
        Ok(fd) => world::with(|s| {
            let sid = s.fds[&fd.0].stream;
            format!("fd{} ({})", fd.0, s.stream_name(sid))
        }),
        Err(e) => e.name(),
    }
}

/// Creates a stream with its head and a driver pair, calls the driver's
/// open, and returns the stream (or tears it down and returns the
/// errno).
fn open_stream(kind: StreamKind, dev: dev_t, sflag: c_int, flags: i32) -> Result<StreamId, Errno> {
    let (rinit, winit, name) = match kind {
        StreamKind::Manager => {
            let stab = world::with(|s| s.streamtab);
            // SAFETY: checked at load.
            unsafe { ((*stab).st_rdinit, (*stab).st_wrinit, "ptm") }
        }
        StreamKind::Subsidiary => (
            &raw const pts::PTS_RINIT.0 as *mut qinit,
            &raw const pts::PTS_WINIT.0 as *mut qinit,
            "pts",
        ),
    };
    let (sid, since) = new_stream(kind);
    // SAFETY: the qinits are valid statics (the head's and pts's) or the
    // driver's streamtab (checked at load).
    let drv = unsafe { build_stream(sid, rinit, winit, name) };
    let mut d = dev;
    let cred = world::with(|s| s.cur_cred_ptr());
    // SAFETY: the driver's open routine, called with its new read queue
    // as qattach does.
    let rc = unsafe {
        let open = (*rinit).qi_qopen.expect("open routine");
        open(&mut (*drv).rq, &mut d, kflags(flags), sflag, cred)
    };
    if rc != 0 {
        world::with(|s| s.name_opened_stream(sid, since));
        // SAFETY: `drv` is this stream's driver pair.
        unsafe { check_failed_open(drv, name, rc) };
        dismantle(sid);
        return Err(Errno(rc));
    }
    // SAFETY: as above.
    unsafe { record_open(sid, since, drv, d, kind, name) };
    Ok(sid)
}

/// A new stream of `kind` whose open is under way; returns it and where
/// the trace stood.
fn new_stream(kind: StreamKind) -> (StreamId, usize) {
    world::with(|s| {
        let mut st = world::Stream::new(
            kind,
            match kind {
                StreamKind::Manager => "ptmx(open failed)",
                StreamKind::Subsidiary => "pts(open failed)",
            },
        );
        st.opening = true;
        s.streams.push(st);
        (s.streams.len() - 1, s.trace.len())
    })
}

/// Gives stream `sid` its head pair and a driver pair of the qinits
/// `rinit`/`winit`, linked; returns the driver pair.
///
/// # Safety
/// The qinits must be valid, with a valid `module_info`.
unsafe fn build_stream(
    sid: StreamId,
    rinit: *mut qinit,
    winit: *mut qinit,
    name: &'static str,
) -> *mut QPair {
    // SAFETY: the head's qinits are valid statics; the driver's are the
    // caller's.
    let (head, drv) = unsafe {
        let head = queue::alloc_pair(
            sid,
            Role::Head,
            &raw const head::HEAD_RINIT.0 as *mut qinit,
            &raw const head::HEAD_WINIT.0 as *mut qinit,
            "head",
        );
        (*head).linked = true;
        (*head).rq.q_ptr = sid as *mut c_void;
        (*head).wq.q_ptr = sid as *mut c_void;
        let drv = queue::alloc_pair(sid, Role::Driver, rinit, winit, name);
        (head, drv)
    };
    world::with(|s| s.streams[sid].pairs = vec![head, drv]);
    link::relink(sid);
    drv
}

/// What a driver must have undone when its open failed (anomalies
/// otherwise): its queues unlinked, `q_ptr` cleared.
///
/// # Safety
/// `drv` must be the driver pair of a stream being opened.
unsafe fn check_failed_open(drv: *mut QPair, name: &str, rc: c_int) {
    // SAFETY: the caller's.
    unsafe {
        if (*drv).linked {
            world::anomaly(format!(
                "{name} open failed ({rc}) but left its queues linked"
            ));
            link::qprocsoff(&mut (*drv).rq);
        }
        if !(*drv).rq.q_ptr.is_null() {
            world::anomaly(format!("{name} open failed ({rc}) but left q_ptr set"));
        }
    }
}

/// After a successful open: the driver must have done `qprocson` and
/// returned its own major and a minor no other open stream of its kind
/// has (anomalies otherwise); the stream records the minor and the
/// packet size of the queue below its head, and takes its name.
///
/// # Safety
/// `drv` must be the driver pair of stream `sid`, whose open returned
/// `dev`.
unsafe fn record_open(
    sid: StreamId,
    since: usize,
    drv: *mut QPair,
    dev: dev_t,
    kind: StreamKind,
    name: &str,
) {
    // SAFETY: the caller's.
    let maxpsz = unsafe {
        if !(*drv).linked {
            world::anomaly(format!("{name} open succeeded without qprocson"));
            link::qprocson(&mut (*drv).rq);
        }
        (*drv).wq.q_maxpsz
    };
    let minor = ddi::getminor(dev);
    let major = ddi::getmajor(dev);
    let expected = match kind {
        StreamKind::Manager => PTM_MAJOR,
        StreamKind::Subsidiary => PTS_MAJOR,
    };
    if major != expected {
        world::anomaly(format!(
            "{name} open returned major {major}, not {expected}"
        ));
    }
    world::with(|s| {
        // A stream whose last close is under way (STRCLOSE; only
        // observable here in the multi-threaded mode) has given its
        // minor back already.
        let dup = s.streams.iter().enumerate().any(|(i, st)| {
            i != sid
                && !st.dead
                && st.flags & sd::STRCLOSE == 0
                && st.kind == kind
                && st.minor == Some(minor)
        });
        if dup {
            s.anomaly(format!("{name} open returned minor {minor}, already open"));
        }
        let st = &mut s.streams[sid];
        st.minor = Some(minor);
        st.qn_maxpsz = if maxpsz == INFPSZ as isize {
            STRMSGSZ as isize
        } else {
            maxpsz.min(STRMSGSZ as isize)
        };
        s.name_opened_stream(sid, since);
    });
}

/// `stropen`'s reopen of an open subsidiary stream: EIO on an errored
/// stream; the driver's open on its existing read queue (sflag 0); on
/// success the hangup and errors are cleared.
fn reopen(sid: StreamId, dev: dev_t, flags: i32) -> Result<StreamId, Errno> {
    if let Some(e) = world::with(|s| {
        let st = &s.streams[sid];
        (st.flags & (sd::STRDERR | sd::STWRERR) != 0).then_some(Errno::EIO)
    }) {
        return Err(e);
    }
    let drv = driver_pair(sid);
    let mut d = dev;
    let cred = world::with(|s| s.cur_cred_ptr());
    // SAFETY: the driver's open routine on its existing read queue, as
    // stropen's reopen path calls it (sflag 0).
    let rc = unsafe {
        let open = (*(*drv).rq.q_qinfo).qi_qopen.expect("open routine");
        open(&mut (*drv).rq, &mut d, kflags(flags), 0, cred)
    };
    if rc != 0 {
        return Err(Errno(rc));
    }
    world::with(|s| {
        let st = &mut s.streams[sid];
        st.flags &= !(sd::STRHUP | sd::STRDERR | sd::STWRERR);
        st.rerror = 0;
        st.werror = 0;
    });
    Ok(sid)
}

/// The last close of stream `sid`: each module's and the driver's close
/// routine, top to bottom, then the stream is freed. A blocking close
/// first lets a driver's write queue drain; what is left would hold
/// illumos's close for up to 15 s, here it proceeds with a note.
pub(crate) fn strclose(sid: StreamId, flags: i32) {
    world::with(|s| s.streams[sid].flags |= sd::STRHUP | sd::STRCLOSE);
    let pairs = world::with(|s| s.streams[sid].pairs.clone());
    let cred = world::with(|s| s.cur_cred_ptr());
    let nonblock = flags & (O_NONBLOCK | O_NDELAY) != 0;
    for &p in pairs.iter().skip(1) {
        // SAFETY: the stream's pairs are valid; each module/driver close
        // routine is called on its read queue as qdetach does.
        unsafe {
            if !nonblock && world::locked(|| !(*p).wq.q_first.is_null()) {
                wait_write_queue(sid, p);
            }
            if let Some(close) = (*(*p).rq.q_qinfo).qi_qclose {
                close(&mut (*p).rq, kflags(flags), cred);
            }
            if (*p).linked {
                world::anomaly(format!("{} close returned without qprocsoff", (*p).name));
                link::qprocsoff(&mut (*p).rq);
            }
            if !(*p).rq.q_ptr.is_null() || !(*p).wq.q_ptr.is_null() {
                world::anomaly(format!("{} close left q_ptr set", (*p).name));
            }
        }
    }
    dismantle(sid);
}

/// A blocking close of stream `sid` finds messages on pair `p`'s write
/// queue: the services run; what is still there is noted (illumos would
/// wait up to 15 s) and the queue is marked QWANTW.
///
/// # Safety
/// `p` must be a pair of stream `sid`.
unsafe fn wait_write_queue(sid: StreamId, p: *mut QPair) {
    sched::run_services(Some(sid), false);
    // SAFETY: the caller's.
    unsafe {
        if world::locked(|| !(*p).wq.q_first.is_null()) {
            let n = queue::msg_count(&(*p).wq);
            let name = world::with(|s| s.stream_name(sid));
            world::note(format!(
                "close of {name} waits 15 s: {n} message(s) left on the {} write queue",
                (*p).name
            ));
            (*p).wq.q_flag |= QWANTW as u32;
        }
    }
}

/// Frees everything of a stream whose driver is already closed/unlinked.
fn dismantle(sid: StreamId) {
    let pairs = world::with(|s| s.streams[sid].pairs.clone());
    mt::wait_stream_idle(&pairs);
    // SAFETY: the pairs of the stream are valid; none is linked except
    // the head.
    unsafe {
        for &p in pairs.iter().rev() {
            if (*p).role == Role::Head {
                (*p).linked = false;
            }
            queue::flushq_common(&mut (*p).rq, FLUSHALL, false);
            queue::flushq_common(&mut (*p).wq, FLUSHALL, false);
            link::retire_pair(p);
        }
    }
    let ioc = world::with(|s| {
        let st = &mut s.streams[sid];
        st.dead = true;
        st.svc.clear();
        if let Some(held) = s.late.as_mut() {
            held.retain(|&(_, h)| h != sid);
        }
        std::mem::replace(&mut st.iocblk, ptr::null_mut())
    });
    msg::freemsg_impl(ioc);
}
