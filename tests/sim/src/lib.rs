//! # ptm-sim: a userland illumos STREAMS simulator for `ptm`
//!
//! The simulator runs a pseudo-terminal manager driver — the unmodified
//! illumos C `ptm.c` (the differential oracle) or the Rust port — on top of
//! a faithful model of the parts of the illumos kernel it touches: message
//! blocks, queues and their flow control, the service scheduler, the module
//! framework, `ptms_conf`, the subsidiary driver `pts`, and a stream head at
//! each end that turns messages into what a process sees.
//!
//! ## Kernel interface
//!
//! Every kernel function `ptm` imports (illumos-abi.md §1.3) is exported
//! from this crate with C linkage (`allocb`, `putq`, `qprocson`,
//! `mod_install`, `pt_ttys_alloc`, `zone_rele`, ...), plus helpers drivers
//! commonly use (`RD`, `OTHERQ`, `freeb`, `copyb`, `dupb`, `canput`, ...).
//! [`kernel_symbols`] lists them with their addresses, for a userland module
//! loader. The functions find their world through a thread-local "current
//! world" that every [`World`] operation installs.
//!
//! ## Using it
//!
//! ```no_run
//! use ptm_sim::{World, variants, O_RDWR, UNLKPT};
//! for v in variants() {
//!     let mut w = World::new(v).expect("load");
//!     let m = w.open_manager(O_RDWR).unwrap();
//!     w.ioctl(m, UNLKPT, &[]).unwrap();
//!     let minor = w.minor_of(m).unwrap();
//!     let s = w.open_subsidiary(minor, O_RDWR).unwrap();
//!     assert_eq!(w.write(m, b"hi").unwrap(), 2);
//!     assert_eq!(w.read(s, 10).unwrap(), b"hi");
//!     let report = w.finish().unwrap(); // closes everything, checks leaks
//!     println!("{}", report.trace.join("\n"));
//! }
//! ```
//!
//! Operations ([`World`]):
//! * opening: [`World::open_manager`] (clone open of `/dev/ptmx`),
//!   [`World::open_subsidiary`] (through `/dev/pts`, with its visibility and
//!   permission rules), [`World::open_subsidiary_node`] (a device node
//!   straight to `ptsopen`), [`World::open_manager_node`] (a direct,
//!   non-clone open of a ptm minor), [`World::push_manager_as_module`];
//! * data: [`World::write`], [`World::write_band`] (putpmsg), [`World::read`];
//! * control: [`World::ioctl`] (`I_STR`), [`World::ioctl_blocks`] (payload
//!   split over several blocks), [`World::ioctl_chain`] (the same, empty
//!   blocks kept), [`World::tty_ioctl`] (a transparent tty
//!   ioctl such as `TIOCGWINSZ`), [`World::flush`] (`I_FLUSH`),
//!   [`World::flush_band`] (`I_FLUSHBAND`), [`World::inject_down`] (a raw
//!   message sent down from a stream head, e.g. `M_READ`), [`World::poll`];
//! * [`World::close`];
//! * libc: [`World::ptsname`], [`World::grantpt`], [`World::unlockpt`],
//!   [`World::fstat_minor`], [`World::pts_node`];
//! * context: [`World::set_cred`], [`World::set_zone`], [`World::add_zone`],
//!   [`World::remove_zone`];
//! * faults: [`World::fail_nth_allocb`], [`World::fail_next_pt_ttys_alloc`],
//!   [`World::fail_attach_subsidiary`], [`World::set_pty_limit`];
//! * observation: [`World::trace`], [`World::trace_lines`],
//!   [`World::leaks`], [`World::anomalies`], [`World::head_read_queue`],
//!   [`World::driver_write_queue`], [`World::minor_nodes`],
//!   [`World::null_zone_reles`];
//! * end: [`World::finish`] (close every fd, drain, check for leaks and
//!   anomalies), [`World::unload`] (`_fini` → `mod_remove` → detach).
//!
//! ## Semantics and decisions
//!
//! * Scheduling is deterministic: after every operation the service lists
//!   run until nothing is enabled, the operation's own stream first, then
//!   the other streams in creation order. Between the chunks of one `write`
//!   only the writer's own stream is serviced (illumos runs it inline; the
//!   peer's work would be a background task).
//! * Single-threaded: a call that would sleep with nothing left to wake it
//!   returns [`Errno::BLOCKED`] (a blocking read on an empty stream, a
//!   blocking write against a full queue, a transparent ioctl nobody
//!   answers). An `I_STR` ioctl nobody answers times out: `ETIME`.
//! * `allocb` buffers are filled with 0xbb, not zeroed. Stream-head
//!   allocations (user data, ioctl blocks, `I_FLUSH` messages) are counted
//!   for leaks but are not `allocb` calls: they are never numbered for, nor
//!   failed by, [`World::fail_nth_allocb`].
//! * `pt_ttys_alloc` hands out the lowest free minor, from 1.
//! * A close that illumos would block for up to 15 s (data left on a
//!   driver's write queue) proceeds at once and leaves a `Note` in the trace.
//! * Driver misbehaviour that would crash or hang a kernel (use of a freed
//!   message or queue, double free, `putnext` off the end of a stream,
//!   recursive `mutex_enter`, ...) is recorded as an anomaly;
//!   [`World::finish`] fails when there is any. `cv_wait` in single-threaded
//!   mode can never return and aborts the process with a message.
//!   `zone_rele(NULL)` is a [`TraceEvent::NullZoneRele`] event.
//! * Worlds of the same variant are serialised across threads (the drivers
//!   have process-wide statics); different variants run in parallel.

#![allow(clippy::missing_safety_doc)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod ddi;
mod head;
mod msg;
pub mod ops;
mod pts;
mod queue;
mod variant;
mod world;

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::Arc;

use ptm::sys::*;
use ptm_scenario::msg::{show_bytes, show_ioc};

pub use ddi::{driverops_addr, register_driverops_alias};
/// The ABI bindings (`ptm::sys`), for tests that call kernel functions.
pub use ptm::sys;
/// The userland krtld the loaded variants use.
pub use ptm_kload;
/// The types and constants of the scenario API, which this world shares
/// with the real-code world.
pub use ptm_scenario::{
    Cred, Errno, FLUSHR, FLUSHRW, FLUSHW, Fd, ISPTM, IocReply, Leaks, MinorNode, MsgDesc, O_NDELAY,
    O_NOCTTY, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, OWNERPT, PTM_MAJOR, PTS_MAJOR, PTSSTTY,
    PollBits, PtsNode, QueueInfo, Report, TCGETS, TIOCGWINSZ, TIOCSWINSZ, TTY_GID, TraceEvent,
    UNLKPT, ZONEPT, ioctl_name, mtype_name,
};
pub use variant::{
    C_KOBJ, C_REFERENCE, RUST_DRIVER, RUST_KMOD, kmod_path, load_kernel_image, load_kernel_module,
    loaded_c_object, loaded_rust_module,
};
pub use variant::{EntryFn, InfoFn, Variant, c_reference, require_c_oracle, rust_driver, variants};
pub use world::StreamKind;

use queue::{QPair, Role};
use variant::VariantLock;
use world::{Core, Enter, FdEntry, Stream, sd};

mod mt;
pub use mt::ThreadState;

/// `strmsgsz`: the largest ioctl payload / message.
const STRMSGSZ: usize = 65536;
/// `IOC_NATIVE` (`DATAMODEL_NATIVE` on amd64).
const IOC_NATIVE: u32 = 0x0020_0000;

/// Which kind of ioctl: `I_STR` (15 s timeout) or a transparent tty ioctl
/// converted by the stream head (waits forever).
#[derive(Clone, Copy, PartialEq, Eq)]
enum IocKind {
    Str,
    Tty,
}

/// One simulated machine with one driver variant loaded in it.
///
/// A world is single-threaded and deterministic unless it was made with
/// [`World::new_threaded`] (see the `mt` section of the crate
/// documentation): then [`World::handle`] gives more handles on the same
/// world for other threads.
pub struct World {
    core: Arc<Core>,
    variant: Variant,
    /// The worker threads (multi-threaded mode; owned by the handle that
    /// created the world, which stops them when dropped).
    workers: Vec<std::thread::JoinHandle<()>>,
}

const ST_IF_CHR: u32 = 0o020000;

impl World {
    /// Creates a world and loads `variant` into it as the kernel does:
    /// `_init` (→ `mod_install` → `ptms_init`), `_info`, then `devo_attach`
    /// (`DDI_ATTACH`) on a new dev_info node, `devo_getinfo`, and the
    /// `cb_ops` → `streamtab` used by every later open.
    pub fn new(variant: Variant) -> Result<World, String> {
        let lock = VariantLock::acquire(variant.key());
        let w = World {
            core: Arc::new(Core::new(variant.name, false, lock)),
            variant,
            workers: Vec::new(),
        };
        {
            let _e = Enter::new(&w.core);
            w.load()?;
        }
        Ok(w)
    }

    fn load(&self) -> Result<(), String> {
        let v = self.variant;
        // SAFETY: the variant's module entry points, called as krtld does.
        let rc = unsafe { (v.init)() };
        if rc != 0 {
            return Err(format!("{}: _init returned {rc}", v.name));
        }
        let mut mi = modinfo::default();
        // SAFETY: as above, with a zeroed modinfo.
        let rc = unsafe { (v.info)(&mut mi) };
        if rc == 0 {
            return Err(format!("{}: _info returned 0", v.name));
        }
        let (dev_ops, inited) =
            world::with(|s| (s.module.as_ref().map(|m| m.dev_ops), s.ptms_inited));
        let Some(dev_ops) = dev_ops else {
            return Err(format!("{}: _init did not mod_install a driver", v.name));
        };
        if !inited {
            return Err(format!("{}: _init did not call ptms_init", v.name));
        }
        let dip = ddi::new_dip();
        let old = world::with(|s| std::mem::replace(&mut s.dip, dip));
        if !old.is_null() {
            // SAFETY: the previous dev_info of this world (from `new_dip`),
            // no longer used after an unload.
            drop(unsafe { Box::from_raw(old as *mut u64) });
        }
        // SAFETY: `dev_ops` is the driver's static dev_ops (checked non-NULL
        // by mod_install); its entry points are called as the DDI does.
        unsafe {
            let d = &*dev_ops;
            if d.devo_rev != DEVO_REV {
                return Err(format!("{}: devo_rev {} != DEVO_REV", v.name, d.devo_rev));
            }
            let attach = d.devo_attach.ok_or("no devo_attach")?;
            if attach(dip as *mut dev_info_t, DDI_ATTACH) != DDI_SUCCESS {
                return Err(format!("{}: attach failed", v.name));
            }
            world::with(|s| s.attached = true);
            let getinfo = d.devo_getinfo.ok_or("no devo_getinfo")?;
            let mut res: *mut c_void = ptr::null_mut();
            let dev = ddi::makedevice(PTM_MAJOR, 0);
            if getinfo(
                dip as *mut dev_info_t,
                DDI_INFO_DEVT2DEVINFO,
                dev as *mut c_void,
                &mut res,
            ) != DDI_SUCCESS
                || res != dip
            {
                return Err(format!(
                    "{}: getinfo(DEVT2DEVINFO) is not the dev_info",
                    v.name
                ));
            }
            let mut res: *mut c_void = ptr::dangling_mut::<c_void>();
            if getinfo(
                dip as *mut dev_info_t,
                DDI_INFO_DEVT2INSTANCE,
                dev as *mut c_void,
                &mut res,
            ) != DDI_SUCCESS
                || !res.is_null()
            {
                return Err(format!(
                    "{}: getinfo(DEVT2INSTANCE) is not instance 0",
                    v.name
                ));
            }
            let cb = d.devo_cb_ops;
            if cb.is_null() {
                return Err(format!("{}: no cb_ops", v.name));
            }
            if (*cb).cb_flag & D_MP == 0 {
                return Err(format!("{}: cb_flag lacks D_MP", v.name));
            }
            let stab = (*cb).cb_str;
            if stab.is_null() || (*stab).st_rdinit.is_null() || (*stab).st_wrinit.is_null() {
                return Err(format!("{}: cb_ops has no streamtab", v.name));
            }
            if (*(*stab).st_rdinit).qi_qopen.is_none() || (*(*stab).st_rdinit).qi_qclose.is_none() {
                return Err(format!("{}: read qinit lacks open/close", v.name));
            }
            world::with(|s| s.streamtab = stab);
        }
        let has_ptmx = world::with(|s| {
            s.minor_nodes
                .iter()
                .any(|n| n.name == "ptmx" && n.flag == CLONE_DEV && n.spec_type == S_IFCHR)
        });
        if !has_ptmx {
            return Err(format!(
                "{}: attach did not create the ptmx clone node",
                v.name
            ));
        }
        Ok(())
    }

    /// The variant loaded in this world.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Runs `f` with this world current, then checks the invariants that
    /// must hold between system calls.
    fn op<R>(&mut self, f: impl FnOnce(&mut World) -> R) -> R {
        let core: *const Core = &*self.core;
        // SAFETY: `core` is owned (Arc) by `self` and outlives the guard.
        let _e = Enter::new(unsafe { &*core });
        if self.core.mt.is_some() {
            return mt::op(self, f);
        }
        let r = f(self);
        world::with(|s| {
            if !s.held_mutexes.is_empty() {
                let n = s.held_mutexes.len();
                s.held_mutexes.clear();
                s.anomaly(format!(
                    "{n} mutex(es) still held at the end of a system call"
                ));
            }
            let bad: Vec<u32> = s
                .slots
                .iter()
                // SAFETY: slots hold live pt_ttys of this world.
                .filter(|(_, p)| unsafe { (***p).pt_refcnt } != 0)
                .map(|(m, _)| *m)
                .collect();
            for m in bad {
                s.anomaly(format!(
                    "pt_refcnt of minor {m} not 0 at the end of a system call"
                ));
            }
        });
        r
    }

    fn sys(call: String, result: String) {
        world::trace(TraceEvent::Sys { call, result });
    }

    fn lookup(fd: Fd) -> Result<(usize, i32), Errno> {
        world::with(|s| {
            s.fds
                .get(&fd.0)
                .map(|e| (e.stream, e.flags))
                .ok_or(Errno::EBADF)
        })
    }

    fn new_fd(sid: usize, flags: i32) -> Fd {
        world::with(|s| {
            let n = (3..).find(|n| !s.fds.contains_key(n)).expect("fd space");
            s.fds.insert(n, FdEntry { stream: sid, flags });
            s.streams[sid].refs += 1;
            Fd(n)
        })
    }

    fn kflags(flags: i32) -> c_int {
        ((flags & 3) + 1) | (flags & !3)
    }

    fn head(sid: usize) -> *mut QPair {
        world::with(|s| s.streams[sid].pairs[0])
    }

    fn driver_pair(sid: usize) -> *mut QPair {
        world::with(|s| *s.streams[sid].pairs.last().expect("driver pair"))
    }

    /// What `strioctl` checks before sending an ioctl down: a stream error
    /// first (its errno), then a hangup (ENXIO).
    fn ioctl_preflight(sid: usize) -> Result<(), Errno> {
        match Self::stream_err(sid, sd::STRDERR | sd::STWRERR)
            .or_else(|| Self::stream_err(sid, sd::STRHUP))
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stream_err(sid: usize, mask: u32) -> Option<Errno> {
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

    /// Creates a stream with its head and a driver pair, calls the driver's
    /// open, and returns the stream (or tears it down and returns the
    /// errno).
    fn open_stream(kind: StreamKind, dev: dev_t, sflag: c_int, flags: i32) -> Result<usize, Errno> {
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
        let (sid, since) = world::with(|s| {
            let mut st = Stream::new(
                kind,
                match kind {
                    StreamKind::Manager => "ptmx(open failed)",
                    StreamKind::Subsidiary => "pts(open failed)",
                },
            );
            st.opening = true;
            s.streams.push(st);
            (s.streams.len() - 1, s.trace.len())
        });
        // SAFETY: the qinits are valid statics (the head's and pts's) or the
        // driver's streamtab (checked at load).
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
        queue::relink(sid);
        let mut d = dev;
        let cred = world::with(|s| s.cur_cred_ptr());
        // SAFETY: the driver's open routine, called with its new read queue
        // as qattach does.
        let rc = unsafe {
            let open = (*rinit).qi_qopen.expect("open routine");
            open(&mut (*drv).rq, &mut d, Self::kflags(flags), sflag, cred)
        };
        if rc != 0 {
            world::with(|s| s.name_opened_stream(sid, since));
            // SAFETY: `drv` is this stream's driver pair.
            unsafe {
                if (*drv).linked {
                    world::anomaly(format!(
                        "{name} open failed ({rc}) but left its queues linked"
                    ));
                    queue::qprocsoff(&mut (*drv).rq);
                }
                if !(*drv).rq.q_ptr.is_null() {
                    world::anomaly(format!("{name} open failed ({rc}) but left q_ptr set"));
                }
            }
            Self::dismantle(sid);
            return Err(Errno(rc));
        }
        // SAFETY: as above.
        unsafe {
            if !(*drv).linked {
                world::anomaly(format!("{name} open succeeded without qprocson"));
                queue::qprocson(&mut (*drv).rq);
            }
            let maxpsz = (*drv).wq.q_maxpsz;
            let minor = ddi::getminor(d);
            let major = ddi::getmajor(d);
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
        Ok(sid)
    }

    /// Frees everything of a stream whose driver is already closed/unlinked.
    fn dismantle(sid: usize) {
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
                queue::retire_pair(p);
            }
        }
        let ioc = world::with(|s| {
            let st = &mut s.streams[sid];
            st.dead = true;
            st.svc.clear();
            std::mem::replace(&mut st.iocblk, ptr::null_mut())
        });
        msg::freemsg_impl(ioc);
    }

    // -----------------------------------------------------------------
    // Opening
    // -----------------------------------------------------------------

    /// `open("/dev/ptmx", flags)`: a clone open (`sflag` CLONEOPEN, minor 0).
    pub fn open_manager(&mut self, flags: i32) -> Result<Fd, Errno> {
        self.op(|_| {
            let r = Self::open_stream(
                StreamKind::Manager,
                ddi::makedevice(PTM_MAJOR, 0),
                CLONEOPEN,
                flags,
            )
            .map(|sid| {
                queue::run_services(Some(sid), false);
                Self::new_fd(sid, flags)
            });
            queue::run_services(None, false);
            let res = Self::show_fd(&r);
            Self::sys(format!("open(/dev/ptmx, {flags:#x})"), res);
            r
        })
    }

    /// A direct (non-clone) open of ptm minor `minor` through a device node
    /// someone made by hand.
    pub fn open_manager_node(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.op(|_| {
            let r = Self::open_stream(
                StreamKind::Manager,
                ddi::makedevice(PTM_MAJOR, minor),
                0,
                flags,
            )
            .map(|sid| Self::new_fd(sid, flags));
            queue::run_services(None, false);
            let res = Self::show_fd(&r);
            Self::sys(format!("open(ptm node minor {minor}, {flags:#x})"), res);
            r
        })
    }

    /// `I_PUSH` of ptm as a module onto a new stream: the open routine is
    /// called with `MODOPEN`.
    pub fn push_manager_as_module(&mut self) -> Result<(), Errno> {
        self.op(|_| {
            let r = Self::open_stream(
                StreamKind::Manager,
                ddi::makedevice(PTM_MAJOR, 0),
                MODOPEN,
                O_RDWR,
            );
            let r = match r {
                Ok(sid) => {
                    world::anomaly("ptm accepted a MODOPEN");
                    Self::strclose(sid, O_RDWR);
                    Ok(())
                }
                Err(e) => Err(e),
            };
            queue::run_services(None, false);
            Self::sys(
                "I_PUSH ptm (MODOPEN)".into(),
                match &r {
                    Ok(()) => "0".into(),
                    Err(e) => e.name(),
                },
            );
            r
        })
    }

    fn show_fd(r: &Result<Fd, Errno>) -> String {
        match r {
            Ok(fd) => world::with(|s| {
                let sid = s.fds[&fd.0].stream;
                format!("fd{} ({})", fd.0, s.stream_name(sid))
            }),
            Err(e) => e.name(),
        }
    }

    /// `open("/dev/pts/N", flags)`: the node exists only while the pty is
    /// allocated and in the caller's zone (ENOENT otherwise); its mode is
    /// 0620 owned by the pty's owner (EACCES for others without privilege);
    /// then the device open.
    pub fn open_subsidiary(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        let node = self.pts_node(minor);
        let r = match node {
            None => Err(Errno::ENOENT),
            Some(n) => {
                let c = self.cred();
                let want_read = flags & 3 != O_WRONLY;
                let want_write = flags & 3 != O_RDONLY;
                let (r_ok, w_ok) = if c.privileged || c.uid == n.uid {
                    (true, true)
                } else if c.gid == n.gid {
                    (false, true)
                } else {
                    (false, false)
                };
                if (want_read && !r_ok) || (want_write && !w_ok) {
                    Err(Errno::EACCES)
                } else {
                    Ok(())
                }
            }
        };
        match r {
            Err(e) => self.op(|_| {
                Self::sys(format!("open(/dev/pts/{minor}, {flags:#x})"), e.name());
                Err(e)
            }),
            Ok(()) => self.open_subsidiary_node(minor, flags),
        }
    }

    /// Opens subsidiary minor `minor` through a device node (straight to
    /// `ptsopen`, bypassing `/dev/pts`). An already open subsidiary stream is
    /// reopened (`stropen`'s reopen path: EIO on an errored stream; on
    /// success the hangup and errors are cleared).
    pub fn open_subsidiary_node(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.op(|_| {
            let existing = world::with(|s| {
                s.streams.iter().position(|st| {
                    !st.dead
                        && st.refs > 0
                        && st.kind == StreamKind::Subsidiary
                        && st.minor == Some(minor)
                })
            });
            let dev = ddi::makedevice(PTS_MAJOR, minor);
            let r = match existing {
                Some(sid) => Self::reopen(sid, dev, flags),
                None => Self::open_stream(StreamKind::Subsidiary, dev, 0, flags),
            }
            .map(|sid| {
                queue::run_services(Some(sid), false);
                Self::new_fd(sid, flags)
            });
            queue::run_services(None, false);
            let res = Self::show_fd(&r);
            Self::sys(format!("open(/dev/pts/{minor}, {flags:#x})"), res);
            r
        })
    }

    fn reopen(sid: usize, dev: dev_t, flags: i32) -> Result<usize, Errno> {
        if let Some(e) = world::with(|s| {
            let st = &s.streams[sid];
            (st.flags & (sd::STRDERR | sd::STWRERR) != 0).then_some(Errno::EIO)
        }) {
            return Err(e);
        }
        let drv = Self::driver_pair(sid);
        let mut d = dev;
        let cred = world::with(|s| s.cur_cred_ptr());
        // SAFETY: the driver's open routine on its existing read queue, as
        // stropen's reopen path calls it (sflag 0).
        let rc = unsafe {
            let open = (*(*drv).rq.q_qinfo).qi_qopen.expect("open routine");
            open(&mut (*drv).rq, &mut d, Self::kflags(flags), 0, cred)
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

    // -----------------------------------------------------------------
    // Closing
    // -----------------------------------------------------------------

    /// `close(fd)`. The last close of a stream dismantles it (`strclose`).
    pub fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        self.op(|_| {
            let r = match world::with(|s| s.fds.remove(&fd.0)) {
                None => Err(Errno::EBADF),
                Some(e) => {
                    let last = world::with(|s| {
                        let st = &mut s.streams[e.stream];
                        st.refs -= 1;
                        st.refs == 0
                    });
                    let name = world::with(|s| s.stream_name(e.stream));
                    if last {
                        Self::strclose(e.stream, e.flags);
                    }
                    queue::run_services(None, false);
                    Self::sys(format!("close(fd{} {name})", fd.0), "0".into());
                    return Ok(());
                }
            };
            Self::sys(format!("close(fd{})", fd.0), "EBADF".into());
            r
        })
    }

    fn strclose(sid: usize, flags: i32) {
        world::with(|s| s.streams[sid].flags |= sd::STRHUP | sd::STRCLOSE);
        let pairs = world::with(|s| s.streams[sid].pairs.clone());
        let cred = world::with(|s| s.cur_cred_ptr());
        let nonblock = flags & (O_NONBLOCK | O_NDELAY) != 0;
        for &p in pairs.iter().skip(1) {
            // SAFETY: the stream's pairs are valid; each module/driver close
            // routine is called on its read queue as qdetach does.
            unsafe {
                if !nonblock && world::locked(|| !(*p).wq.q_first.is_null()) {
                    queue::run_services(Some(sid), false);
                    if world::locked(|| !(*p).wq.q_first.is_null()) {
                        let n = queue::msg_count(&(*p).wq);
                        let name = world::with(|s| s.stream_name(sid));
                        queue::note(format!(
                            "close of {name} waits 15 s: {n} message(s) left on the {} write queue",
                            (*p).name
                        ));
                        (*p).wq.q_flag |= QWANTW as u32;
                    }
                }
                if let Some(close) = (*(*p).rq.q_qinfo).qi_qclose {
                    close(&mut (*p).rq, Self::kflags(flags), cred);
                }
                if (*p).linked {
                    world::anomaly(format!("{} close returned without qprocsoff", (*p).name));
                    queue::qprocsoff(&mut (*p).rq);
                }
                if !(*p).rq.q_ptr.is_null() || !(*p).wq.q_ptr.is_null() {
                    world::anomaly(format!("{} close left q_ptr set", (*p).name));
                }
            }
        }
        Self::dismantle(sid);
    }

    // -----------------------------------------------------------------
    // Data
    // -----------------------------------------------------------------

    /// `write(fd, data)`: cut into chunks of the stream's `maxpsz`, each sent
    /// down when `canputnext` allows. With `O_NONBLOCK`/`O_NDELAY` a full
    /// queue gives EAGAIN before anything was written, a short count after.
    pub fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize, Errno> {
        self.op(|_| {
            let r = Self::do_write(fd, data);
            Self::sys(
                format!("write(fd{}, {} bytes)", fd.0, data.len()),
                match &r {
                    Ok(n) => n.to_string(),
                    Err(e) => e.name(),
                },
            );
            r
        })
    }

    fn do_write(fd: Fd, data: &[u8]) -> Result<usize, Errno> {
        let (sid, flags) = Self::lookup(fd)?;
        let (sflags, werror, rmax, delim) = world::with(|s| {
            let st = &s.streams[sid];
            (
                st.flags,
                st.werror,
                st.qn_maxpsz,
                st.flags & sd::STRDELIM != 0,
            )
        });
        if sflags & sd::STRHUP != 0 {
            return Err(Errno::EIO);
        }
        if sflags & sd::STWRERR != 0 {
            return Err(Errno(werror));
        }
        if rmax == 0 {
            return Ok(0);
        }
        let nonblock = flags & (O_NONBLOCK | O_NDELAY) != 0;
        let head = Self::head(sid);
        // SAFETY: the head pair of a live stream.
        let wq: *mut queue_t = unsafe { &mut (*head).wq };
        let mut written = 0usize;
        loop {
            let iosize = (data.len() - written).min(rmax as usize);
            if queue::canputnext(wq) == 0 {
                if nonblock {
                    return if written == 0 {
                        Err(Errno::EAGAIN)
                    } else {
                        Ok(written)
                    };
                }
                queue::run_services(None, false);
                if !mt::settle("write: flow control", || {
                    queue::canputnext(wq) != 0
                        || (world::is_mt() && Self::stream_err(sid, sd::STRHUP).is_some())
                }) {
                    queue::note(format!("write blocked after {written} bytes"));
                    return Err(Errno::BLOCKED);
                }
                if world::is_mt() && Self::stream_err(sid, sd::STRHUP).is_some() {
                    return if written == 0 {
                        Err(Errno::EIO)
                    } else {
                        Ok(written)
                    };
                }
            }
            let mp = msg::alloc(iosize, false);
            // SAFETY: `mp` is a fresh block of `iosize` bytes.
            unsafe {
                ptr::copy_nonoverlapping(data[written..].as_ptr(), (*mp).b_wptr, iosize);
                (*mp).b_wptr = (*mp).b_wptr.add(iosize);
                if delim && written + iosize == data.len() {
                    (*mp).b_flag |= 0x04; // MSGDELIM
                }
            }
            queue::putnext(wq, mp);
            queue::run_services(Some(sid), true);
            written += iosize;
            if written == data.len() {
                break;
            }
        }
        queue::run_services(Some(sid), false);
        Ok(written)
    }

    /// `putpmsg(fd, NULL, data, band, MSG_BAND)`: one M_DATA message in
    /// priority band `band` (ERANGE when longer than the stream's maxpsz).
    pub fn write_band(&mut self, fd: Fd, band: u8, data: &[u8]) -> Result<(), Errno> {
        self.op(|_| {
            let r = (|| -> Result<(), Errno> {
                let (sid, flags) = Self::lookup(fd)?;
                if let Some(e) = Self::stream_err(sid, sd::STWRERR) {
                    return Err(e);
                }
                let (hup, rmax) = world::with(|s| {
                    let st = &s.streams[sid];
                    (st.flags & sd::STRHUP != 0, st.qn_maxpsz)
                });
                if hup {
                    return Err(Errno::ENXIO);
                }
                if data.len() > rmax as usize {
                    return Err(Errno::ERANGE);
                }
                let head = Self::head(sid);
                // SAFETY: the head pair of a live stream.
                let wq: *mut queue_t = unsafe { &mut (*head).wq };
                if queue::bcanputnext(wq, band) == 0 {
                    if flags & (O_NONBLOCK | O_NDELAY) != 0 {
                        return Err(Errno::EAGAIN);
                    }
                    queue::run_services(None, false);
                    if !mt::settle("putpmsg: flow control", || {
                        queue::bcanputnext(wq, band) != 0
                    }) {
                        return Err(Errno::BLOCKED);
                    }
                }
                let mp = msg::alloc(data.len(), false);
                // SAFETY: fresh block of the right size.
                unsafe {
                    ptr::copy_nonoverlapping(data.as_ptr(), (*mp).b_wptr, data.len());
                    (*mp).b_wptr = (*mp).b_wptr.add(data.len());
                    (*mp).b_band = band;
                }
                queue::putnext(wq, mp);
                queue::run_services(Some(sid), false);
                Ok(())
            })();
            Self::sys(
                format!("putpmsg(fd{}, band {band}, {} bytes)", fd.0, data.len()),
                match &r {
                    Ok(()) => "0".into(),
                    Err(e) => e.name(),
                },
            );
            r
        })
    }

    /// `read(fd, n)` in byte-stream mode: data from as many messages as are
    /// queued, up to `n`; a zero-length message read first gives exactly one
    /// 0-byte read (after data it is left for the next read); an empty queue
    /// after a hangup reads 0; otherwise EAGAIN (non-blocking) or BLOCKED.
    pub fn read(&mut self, fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
        self.op(|_| {
            let r = Self::do_read(fd, n);
            Self::sys(
                format!("read(fd{}, {n})", fd.0),
                match &r {
                    Ok(v) => format!("{} {}", v.len(), show_bytes(v)),
                    Err(e) => e.name(),
                },
            );
            r
        })
    }

    fn do_read(fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
        let (sid, flags) = Self::lookup(fd)?;
        if let Some(e) = Self::stream_err(sid, sd::STRDERR) {
            return Err(e);
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let head = Self::head(sid);
        // SAFETY: the head pair of a live stream.
        let rq: *mut queue_t = unsafe { &mut (*head).rq };
        let nonblock = flags & (O_NONBLOCK | O_NDELAY) != 0;
        let mut out = Vec::new();
        let mut band = 0u8;
        let mut took_any = false;
        // The world lock is held for the whole loop (it is reentrant) and
        // released only to wait; nothing here calls driver code.
        let mut guard = Some(world::core().st.lock.guard());
        // SAFETY: `rq` is the head read queue; messages on it are live.
        unsafe {
            loop {
                let bp = (*rq).q_first;
                if bp.is_null() {
                    if took_any {
                        break;
                    }
                    let (hup, oldndelay) = world::with(|s| {
                        let st = &s.streams[sid];
                        (st.flags & sd::STRHUP != 0, st.flags & sd::OLDNDELAY != 0)
                    });
                    if hup {
                        break;
                    }
                    if nonblock {
                        if oldndelay && flags & O_NDELAY != 0 {
                            break;
                        }
                        return Err(Errno::EAGAIN);
                    }
                    queue::run_services(None, false);
                    drop(guard.take());
                    let ready = mt::settle("read: no data", || {
                        !(*rq).q_first.is_null()
                            || (world::is_mt()
                                && Self::stream_err(sid, sd::STRHUP | sd::STRDERR).is_some())
                    });
                    guard = Some(world::core().st.lock.guard());
                    if !ready {
                        return Err(Errno::BLOCKED);
                    }
                    if let Some(e) = Self::stream_err(sid, sd::STRDERR) {
                        return Err(e);
                    }
                    continue;
                }
                let t = msg::mtype(bp) as c_int;
                if t == M_SIG {
                    queue::rmvq_noenab(rq, bp);
                    msg::freemsg_impl(bp);
                    continue;
                }
                if t != M_DATA {
                    if !took_any {
                        return Err(Errno::EBADMSG);
                    }
                    break;
                }
                let total = msg::cont_len(bp).0;
                if total == 0 {
                    if !took_any {
                        queue::rmvq_noenab(rq, bp);
                        band = (*bp).b_band;
                        msg::freemsg_impl(bp);
                    }
                    break;
                }
                queue::rmvq_noenab(rq, bp);
                band = (*bp).b_band;
                took_any = true;
                let mut want = n - out.len();
                let mut mp = bp;
                while !mp.is_null() && want > 0 {
                    let l = msg::blk_len(mp);
                    let k = l.min(want);
                    out.extend_from_slice(std::slice::from_raw_parts((*mp).b_rptr, k));
                    (*mp).b_rptr = (*mp).b_rptr.add(k);
                    want -= k;
                    if k == l {
                        let next = (*mp).b_cont;
                        (*mp).b_cont = ptr::null_mut();
                        msg::freeb_impl(mp);
                        mp = next;
                    }
                }
                // Skip (and free) emptied blocks left at the front.
                while !mp.is_null() && msg::blk_len(mp) == 0 && !(*mp).b_cont.is_null() {
                    let next = (*mp).b_cont;
                    (*mp).b_cont = ptr::null_mut();
                    msg::freeb_impl(mp);
                    mp = next;
                }
                if !mp.is_null() {
                    if msg::cont_len(mp).0 == 0 {
                        msg::freemsg_impl(mp);
                    } else {
                        queue::putbq(rq, mp);
                    }
                }
                if out.len() == n {
                    break;
                }
            }
            queue::qbackenable(rq, band);
        }
        drop(guard);
        queue::run_services(Some(sid), false);
        Ok(out)
    }

    // -----------------------------------------------------------------
    // Control
    // -----------------------------------------------------------------

    /// `ioctl(fd, I_STR, {cmd, timeout 0, len, payload})`.
    pub fn ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        self.ioctl_blocks(fd, cmd, &[payload])
    }

    /// Like [`World::ioctl`], with the payload split over several message
    /// blocks (an empty list, or all-empty parts, sends no data block).
    pub fn ioctl_blocks(&mut self, fd: Fd, cmd: i32, parts: &[&[u8]]) -> Result<IocReply, Errno> {
        self.ioctl_str(fd, cmd, parts, false)
    }

    /// Like [`World::ioctl_blocks`], but every part becomes a block, empty
    /// ones included (`&[&[]]` sends one zero-length data block): the chain
    /// a module above the driver could build, which no stream head sends.
    pub fn ioctl_chain(&mut self, fd: Fd, cmd: i32, parts: &[&[u8]]) -> Result<IocReply, Errno> {
        self.ioctl_str(fd, cmd, parts, true)
    }

    fn ioctl_str(
        &mut self,
        fd: Fd,
        cmd: i32,
        parts: &[&[u8]],
        keep_empty: bool,
    ) -> Result<IocReply, Errno> {
        self.op(|_| {
            let r = (|| {
                let (sid, _) = Self::lookup(fd)?;
                Self::ioctl_preflight(sid)?;
                Self::strdoioctl(sid, cmd, parts, IocKind::Str, keep_empty)
            })();
            let len: usize = parts.iter().map(|p| p.len()).sum();
            Self::sys(
                format!("ioctl(fd{}, I_STR {}, {len} bytes)", fd.0, ioctl_name(cmd)),
                show_ioc(&r),
            );
            r
        })
    }

    /// A transparent terminal ioctl (e.g. `TIOCGWINSZ`, `TCGETS`), which the
    /// stream head converts to an M_IOCTL with an infinite timeout.
    pub fn tty_ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        self.op(|_| {
            let r = (|| {
                let (sid, _) = Self::lookup(fd)?;
                Self::ioctl_preflight(sid)?;
                Self::strdoioctl(sid, cmd, &[payload], IocKind::Tty, false)
            })();
            Self::sys(
                format!("ioctl(fd{}, {})", fd.0, ioctl_name(cmd)),
                show_ioc(&r),
            );
            r
        })
    }

    fn strdoioctl(
        sid: usize,
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
        let mp = msg::alloc(std::mem::size_of::<iocblk>(), false);
        // SAFETY: fresh blocks of the right sizes.
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
                    let b = msg::alloc(part.len(), false);
                    ptr::copy_nonoverlapping(part.as_ptr(), (*b).b_wptr, part.len());
                    (*b).b_wptr = (*b).b_wptr.add(part.len());
                    (*tail).b_cont = b;
                    tail = b;
                }
            }
        }
        let old = world::with(|s| {
            let st = &mut s.streams[sid];
            st.flags |= sd::IOCWAIT;
            st.iocid = id;
            std::mem::replace(&mut st.iocblk, ptr::null_mut())
        });
        msg::freemsg_impl(old);
        let head = Self::head(sid);
        // SAFETY: the head pair of a live stream.
        queue::putnext(unsafe { &mut (*head).wq }, mp);
        queue::run_services(Some(sid), true);
        let mut reply = world::with(|s| s.streams[sid].iocblk);
        if reply.is_null() {
            queue::run_services(None, false);
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
        reply = world::with(|s| {
            let st = &mut s.streams[sid];
            st.flags &= !sd::IOCWAIT;
            std::mem::replace(&mut st.iocblk, ptr::null_mut())
        });
        if reply.is_null() {
            if let Some(e) = Self::stream_err(sid, sd::STRDERR | sd::STWRERR | sd::STRHUP) {
                return Err(e);
            }
            return Err(match kind {
                IocKind::Str => Errno::ETIME,
                IocKind::Tty => Errno::BLOCKED,
            });
        }
        // SAFETY: the reply is a live M_IOCACK/M_IOCNAK whose first block was
        // checked to hold an iocblk by strrput.
        let r = unsafe {
            let ioc = ptr::read_unaligned((*reply).b_rptr as *const iocblk);
            if msg::mtype(reply) as c_int == M_IOCACK {
                if ioc.ioc_error != 0 {
                    Err(Errno(ioc.ioc_error))
                } else {
                    let mut data = ptm_scenario::msg::msg_bytes((*reply).b_cont);
                    data.truncate(ioc.ioc_count);
                    Ok(IocReply {
                        rval: ioc.ioc_rval,
                        data,
                    })
                }
            } else if ioc.ioc_error != 0 {
                Err(Errno(ioc.ioc_error))
            } else {
                Err(Errno::EINVAL)
            }
        };
        msg::freemsg_impl(reply);
        r
    }

    /// `ioctl(fd, I_FLUSH, flags)`: an M_FLUSH down, then an unknown ioctl
    /// (-1) whose NAK proves the flush has looped round.
    pub fn flush(&mut self, fd: Fd, flags: i32) -> Result<(), Errno> {
        self.flush_common(fd, flags, None)
    }

    /// `ioctl(fd, I_FLUSHBAND, {band, flags})`.
    pub fn flush_band(&mut self, fd: Fd, band: u8, flags: i32) -> Result<(), Errno> {
        self.flush_common(fd, flags, Some(band))
    }

    fn flush_common(&mut self, fd: Fd, flags: i32, band: Option<u8>) -> Result<(), Errno> {
        self.op(|_| {
            let r = (|| -> Result<(), Errno> {
                let (sid, _) = Self::lookup(fd)?;
                if let Some(e) = Self::stream_err(sid, sd::STRDERR | sd::STWRERR) {
                    return Err(e);
                }
                if flags & !FLUSHRW != 0 || flags == 0 {
                    return Err(Errno::EINVAL);
                }
                if let Some(e) = Self::stream_err(sid, sd::STRHUP) {
                    return Err(e);
                }
                let len = if band.is_some() { 2 } else { 1 };
                let mp = msg::alloc(len, false);
                // SAFETY: fresh block of `len` bytes.
                unsafe {
                    (*(*mp).b_datap).db_type = M_FLUSH as u8;
                    match band {
                        None => *(*mp).b_wptr = flags as u8,
                        Some(b) => {
                            *(*mp).b_wptr = flags as u8 | FLUSHBAND as u8;
                            *(*mp).b_wptr.add(1) = b;
                        }
                    }
                    (*mp).b_wptr = (*mp).b_wptr.add(len);
                }
                let head = Self::head(sid);
                // SAFETY: the head pair of a live stream.
                queue::putnext(unsafe { &mut (*head).wq }, mp);
                queue::run_services(Some(sid), true);
                let _ = Self::strdoioctl(sid, -1, &[], IocKind::Str, false);
                queue::run_services(Some(sid), false);
                Ok(())
            })();
            let what = match band {
                None => format!("I_FLUSH {flags:#x}"),
                Some(b) => format!("I_FLUSHBAND band {b} {flags:#x}"),
            };
            Self::sys(
                format!("ioctl(fd{}, {what})", fd.0),
                match &r {
                    Ok(()) => "0".into(),
                    Err(e) => e.name(),
                },
            );
            r
        })
    }

    /// Sends a raw message of type `mtype` (band `band`, data `data`) down
    /// from the stream head of `fd`, as a module above the driver (or the
    /// stream head itself, for M_READ) would. A test hook, not a system
    /// call.
    pub fn inject_down(&mut self, fd: Fd, mtype: u8, band: u8, data: &[u8]) -> Result<(), Errno> {
        self.op(|_| {
            let r = (|| -> Result<(), Errno> {
                let (sid, _) = Self::lookup(fd)?;
                let mp = msg::alloc(data.len(), false);
                // SAFETY: fresh block of the right size.
                unsafe {
                    (*(*mp).b_datap).db_type = mtype;
                    ptr::copy_nonoverlapping(data.as_ptr(), (*mp).b_wptr, data.len());
                    (*mp).b_wptr = (*mp).b_wptr.add(data.len());
                    (*mp).b_band = band;
                }
                let head = Self::head(sid);
                // SAFETY: the head pair of a live stream.
                queue::putnext(unsafe { &mut (*head).wq }, mp);
                queue::run_services(Some(sid), false);
                Ok(())
            })();
            Self::sys(
                format!(
                    "inject(fd{}, {} band {band}, {} bytes)",
                    fd.0,
                    mtype_name(mtype),
                    data.len()
                ),
                match &r {
                    Ok(()) => "0".into(),
                    Err(e) => e.name(),
                },
            );
            r
        })
    }

    /// What `poll(fd, POLLIN|POLLOUT)` reports. With a write error and
    /// POLLOUT requested, illumos reports POLLERR alone.
    pub fn poll(&mut self, fd: Fd) -> Result<PollBits, Errno> {
        self.op(|_| {
            let (sid, _) = Self::lookup(fd)?;
            let (flags, head) = world::with(|s| (s.streams[sid].flags, s.streams[sid].pairs[0]));
            let mut p = PollBits::default();
            if flags & (sd::STRDERR | sd::STWRERR) != 0 {
                p.pollerr = true;
            } else {
                let _g = world::core().st.lock.guard();
                // SAFETY: the head pair of a live stream.
                unsafe {
                    p.pollin = !(*head).rq.q_first.is_null();
                    if flags & sd::STRHUP != 0 {
                        p.pollhup = true;
                    } else {
                        let next = (*head).wq.q_next;
                        p.pollout =
                            !next.is_null() && (*(*next).q_nfsrv).q_flag & QFULL as u32 == 0;
                    }
                }
            }
            Self::sys(format!("poll(fd{})", fd.0), format!("{p:?}"));
            Ok(p)
        })
    }

    // -----------------------------------------------------------------
    // libc
    // -----------------------------------------------------------------

    /// libc `ptsname`: ISPTM, then the minor from `fstat`, then
    /// `access(F_OK)` of `/dev/pts/N`.
    pub fn ptsname(&mut self, fd: Fd) -> Result<String, Errno> {
        self.ioctl(fd, ISPTM, &[])?;
        let minor = self.fstat_minor(fd)?.1;
        if self.pts_node(minor).is_none() {
            return Err(Errno::ENOENT);
        }
        Ok(format!("/dev/pts/{minor}"))
    }

    /// libc `ptsname_r(fd, buf, len)`: like [`World::ptsname`], ERANGE when
    /// the name and its NUL do not fit in `len` bytes.
    pub fn ptsname_r(&mut self, fd: Fd, len: usize) -> Result<String, Errno> {
        self.ioctl(fd, ISPTM, &[])?;
        let minor = self.fstat_minor(fd)?.1;
        let name = format!("/dev/pts/{minor}");
        if name.len() + 1 > len {
            return Err(Errno::ERANGE);
        }
        if self.pts_node(minor).is_none() {
            return Err(Errno::ENOENT);
        }
        Ok(name)
    }

    /// libc `grantpt`: ISPTM, then OWNERPT `{getuid(), tty group}`; any
    /// OWNERPT failure becomes EACCES.
    pub fn grantpt(&mut self, fd: Fd) -> Result<(), Errno> {
        self.ioctl(fd, ISPTM, &[])?;
        let c = self.cred();
        let mut own = Vec::new();
        own.extend_from_slice(&c.uid.to_ne_bytes());
        own.extend_from_slice(&TTY_GID.to_ne_bytes());
        self.ioctl(fd, OWNERPT, &own)
            .map(|_| ())
            .map_err(|_| Errno::EACCES)
    }

    /// libc `unlockpt`: the UNLKPT ioctl.
    pub fn unlockpt(&mut self, fd: Fd) -> Result<(), Errno> {
        self.ioctl(fd, UNLKPT, &[]).map(|_| ())
    }

    /// `fstat(fd).st_rdev` as (major, minor).
    pub fn fstat_minor(&mut self, fd: Fd) -> Result<(u32, u32), Errno> {
        self.op(|_| {
            let (sid, _) = Self::lookup(fd)?;
            world::with(|s| {
                let st = &s.streams[sid];
                let major = match st.kind {
                    StreamKind::Manager => PTM_MAJOR,
                    StreamKind::Subsidiary => PTS_MAJOR,
                };
                Ok((major, st.minor.unwrap_or(0)))
            })
        })
    }

    /// The minor of an open fd (convenience for `fstat_minor`).
    pub fn minor_of(&mut self, fd: Fd) -> Result<u32, Errno> {
        self.fstat_minor(fd).map(|(_, m)| m)
    }

    /// `/dev/pts/N` as the caller's zone sees it (`ptms_minor_valid`): minor
    /// 0 always exists (owned by root); others only while allocated and in
    /// the caller's zone. Mode `S_IFCHR | 0620`.
    pub fn pts_node(&mut self, minor: u32) -> Option<PtsNode> {
        self.op(|_| {
            let zone = world::with(|s| s.cur_zone);
            if minor == 0 {
                return Some(PtsNode {
                    uid: 0,
                    gid: 0,
                    mode: ST_IF_CHR | 0o620,
                });
            }
            let p = ddi::minor2ptty(minor);
            if p.is_null() {
                return None;
            }
            // SAFETY: a live entry of this world.
            unsafe {
                if (*p).pt_zoneid != zone {
                    return None;
                }
                Some(PtsNode {
                    uid: (*p).pt_ruid,
                    gid: (*p).pt_rgid,
                    mode: ST_IF_CHR | 0o620,
                })
            }
        })
    }

    // -----------------------------------------------------------------
    // Context
    // -----------------------------------------------------------------

    /// The credential of the simulated process.
    pub fn cred(&self) -> Cred {
        let s = self.core.st.borrow();
        s.creds[s.cur_cred].cred
    }

    /// Changes the credential of the simulated process (each distinct
    /// credential gets its own `cred_t *`).
    pub fn set_cred(&mut self, cred: Cred) {
        let mut s = self.core.st.borrow_mut();
        let i = match s.creds.iter().position(|c| c.cred == cred) {
            Some(i) => i,
            None => {
                s.creds.push(Box::new(world::CredObj { cred }));
                s.creds.len() - 1
            }
        };
        s.cur_cred = i;
    }

    /// Moves the simulated process into zone `zone` (for `getzoneid`).
    pub fn set_zone(&mut self, zone: i32) {
        self.core.st.borrow_mut().cur_zone = zone;
    }

    /// Boots zone `id` (so `zone_find_by_id` finds it), with an optional
    /// ephemeral id range `(min, last]`.
    pub fn add_zone(&mut self, id: i32, ephemeral: Option<(u32, u32)>) {
        let (eph_min, eph_last) = ephemeral.unwrap_or((0, 0));
        self.core.st.borrow_mut().zones.insert(
            id,
            Box::new(world::ZoneObj {
                id,
                eph_min,
                eph_last,
            }),
        );
    }

    /// Halts zone `id`: `zone_find_by_id` returns NULL for it from now on.
    pub fn remove_zone(&mut self, id: i32) {
        let mut s = self.core.st.borrow_mut();
        if let Some(z) = s.zones.remove(&id) {
            debug_assert_eq!(z.id, id);
            s.zone_grave.push(z);
        }
    }

    // -----------------------------------------------------------------
    // Faults
    // -----------------------------------------------------------------

    /// Makes the `n`-th `allocb` call from now (1 = the next) fail.
    pub fn fail_nth_allocb(&mut self, n: u64) {
        let mut s = self.core.st.borrow_mut();
        let at = s.counters.allocb_calls + n;
        s.faults.allocb_fail.insert(at);
    }

    /// Makes the next `pt_ttys_alloc` fail.
    pub fn fail_next_pt_ttys_alloc(&mut self) {
        self.core.st.borrow_mut().faults.pt_ttys_alloc_fail += 1;
    }

    /// Makes `ptms_attach_subsidiary` fail (while `fail` is true).
    pub fn fail_attach_subsidiary(&mut self, fail: bool) {
        self.core.st.borrow_mut().faults.attach_fail = fail;
    }

    /// Caps the number of ptys `pt_ttys_alloc` hands out.
    pub fn set_pty_limit(&mut self, limit: Option<usize>) {
        self.core.st.borrow_mut().pty_limit = limit;
    }

    // -----------------------------------------------------------------
    // Observation
    // -----------------------------------------------------------------

    /// The raw trace.
    pub fn trace(&self) -> Vec<TraceEvent> {
        self.core.st.borrow().trace.clone()
    }

    /// The trace as text, one event per line; stream names are `M<minor>`
    /// and `S<minor>`, so traces of different variants compare equal when
    /// they behave alike.
    pub fn trace_lines(&self) -> Vec<String> {
        let s = self.core.st.borrow();
        s.trace.iter().map(ToString::to_string).collect()
    }

    /// How many times `zone_rele(NULL)` happened.
    pub fn null_zone_reles(&self) -> usize {
        let s = self.core.st.borrow();
        s.trace
            .iter()
            .filter(|e| matches!(e, TraceEvent::NullZoneRele))
            .count()
    }

    /// Driver misbehaviour recorded so far.
    pub fn anomalies(&self) -> Vec<String> {
        self.core.st.borrow().anomalies.clone()
    }

    /// Messages cmn_err'd so far (level, text).
    pub fn cmn_err_messages(&self) -> Vec<(i32, String)> {
        self.core.st.borrow().cmn_err.clone()
    }

    /// Objects currently allocated.
    pub fn leaks(&self) -> Leaks {
        let s = self.core.st.borrow();
        Leaks {
            mblks: s.counters.mblk_allocs - s.counters.mblk_frees,
            dblks: s.counters.dblk_allocs - s.counters.dblk_frees,
            pt_ttys: s.counters.pt_allocs - s.counters.pt_frees,
            zone_holds: s.counters.zone_holds,
            open_streams: s.streams.iter().filter(|st| !st.dead).count(),
        }
    }

    /// Number of `allocb` calls so far.
    pub fn allocb_calls(&self) -> u64 {
        self.core.st.borrow().counters.allocb_calls
    }

    /// Minor nodes the driver created.
    pub fn minor_nodes(&self) -> Vec<MinorNode> {
        self.core.st.borrow().minor_nodes.clone()
    }

    /// The `pt_state` bits of an allocated minor.
    pub fn pt_state(&self, minor: u32) -> Option<u16> {
        let s = self.core.st.borrow();
        // SAFETY: slots hold live entries.
        s.slots.get(&minor).map(|&p| unsafe { (*p).pt_state })
    }

    /// The zone and owner recorded for an allocated minor.
    pub fn pt_owner(&self, minor: u32) -> Option<(i32, u32, u32)> {
        let s = self.core.st.borrow();
        // SAFETY: slots hold live entries.
        s.slots
            .get(&minor)
            .map(|&p| unsafe { ((*p).pt_zoneid, (*p).pt_ruid, (*p).pt_rgid) })
    }

    fn qinfo(q: *const queue_t) -> QueueInfo {
        // SAFETY: callers pass queues of live pairs (read under the world
        // lock, which the callers hold through their state borrow).
        unsafe {
            let mut messages = Vec::new();
            let mut m = (*q).q_first;
            while !m.is_null() {
                messages.push((msg::mtype(m), (*m).b_band, msg::cont_len(m).0));
                m = (*m).b_next;
            }
            QueueInfo {
                count: (*q).q_count,
                mblkcnt: (*q).q_mblkcnt,
                flag: (*q).q_flag,
                hiwat: (*q).q_hiwat,
                lowat: (*q).q_lowat,
                nband: (*q).q_nband,
                messages,
            }
        }
    }

    /// The message blocks still allocated: (type, bytes, first 16 bytes),
    /// for a leak report.
    pub fn leaked_blocks(&self) -> Vec<(u8, usize, Vec<u8>)> {
        let s = self.core.st.borrow();
        let mut v: Vec<usize> = s.mblk_live.iter().copied().collect();
        v.sort_unstable();
        v.into_iter()
            .map(|m| {
                let mp = m as *const mblk_t;
                // SAFETY: a live block of this world: it and its dblk are
                // valid, and its data lies between b_rptr and b_wptr.
                unsafe {
                    let n = ((*mp).b_wptr as usize).saturating_sub((*mp).b_rptr as usize);
                    let head = std::slice::from_raw_parts((*mp).b_rptr, n.min(16)).to_vec();
                    ((*(*mp).b_datap).db_type, n, head)
                }
            })
            .collect()
    }

    /// The stream head read queue of `fd`'s stream.
    pub fn head_read_queue(&self, fd: Fd) -> Option<QueueInfo> {
        let s = self.core.st.borrow();
        let e = s.fds.get(&fd.0)?;
        let p = s.streams[e.stream].pairs[0];
        // SAFETY: the head pair of a live stream.
        Some(Self::qinfo(unsafe { &(*p).rq }))
    }

    /// The driver's write queue in `fd`'s stream (ptm's for a manager,
    /// pts's for a subsidiary).
    pub fn driver_write_queue(&self, fd: Fd) -> Option<QueueInfo> {
        let s = self.core.st.borrow();
        let e = s.fds.get(&fd.0)?;
        let p = *s.streams[e.stream].pairs.last()?;
        // SAFETY: the driver pair of a live stream.
        Some(Self::qinfo(unsafe { &(*p).wq }))
    }

    // -----------------------------------------------------------------
    // End of a scenario
    // -----------------------------------------------------------------

    /// Closes every open fd (lowest first).
    pub fn close_all(&mut self) {
        let fds: Vec<i32> = self.core.st.borrow().fds.keys().copied().collect();
        for fd in fds {
            let _ = self.close(Fd(fd));
        }
    }

    /// Closes everything, then checks that nothing leaked (messages, data
    /// blocks, pt_ttys, zone holds, streams) and that no anomaly was
    /// recorded.
    pub fn finish(mut self) -> Result<Report, String> {
        mt::quiesce_world(&mut self);
        self.close_all();
        mt::quiesce_world(&mut self);
        let leaks = self.leaks();
        let anomalies = self.anomalies();
        let name = self.variant.name;
        if !leaks.is_clean() || !anomalies.is_empty() {
            return Err(format!(
                "[{name}] leaks: {leaks:?}; leaked blocks: {:?}; anomalies: {anomalies:#?}\ntrace:\n{}",
                self.leaked_blocks(),
                self.trace_lines().join("\n")
            ));
        }
        let s = self.core.st.borrow();
        Ok(Report {
            variant: name,
            trace: s.trace.iter().map(ToString::to_string).collect(),
            allocb_calls: s.counters.allocb_calls,
        })
    }

    /// How many service procedures ran so far.
    pub fn services_run(&self) -> u64 {
        self.core.st.borrow().services_run
    }

    /// Unloads the driver: `_fini` → `mod_remove` → `devo_detach`
    /// (`DDI_DETACH`). EBUSY while a manager is open.
    pub fn unload(&mut self) -> Result<(), Errno> {
        let fini = self.variant.fini;
        self.op(|_| {
            // SAFETY: the variant's `_fini`.
            let rc = unsafe { fini() };
            Self::sys("modunload ptm".into(), rc.to_string());
            if rc == 0 { Ok(()) } else { Err(Errno(rc)) }
        })
    }

    /// The `drv_linkinfo` string of the installed module.
    pub fn module_linkinfo(&self) -> Option<String> {
        self.core
            .st
            .borrow()
            .module
            .as_ref()
            .map(|m| m.linkinfo.clone())
    }

    /// Loads the driver again after [`World::unload`] (`_init`, attach).
    pub fn reload(&mut self) -> Result<(), String> {
        self.op(|w| w.load())
    }

    /// Whether the module is installed (between `_init` and a successful
    /// `_fini`).
    pub fn is_loaded(&self) -> bool {
        self.core.st.borrow().module.is_some()
    }

    /// Test support: runs `f` with this world current, so it may call the
    /// exported kernel functions directly; then runs the service lists to
    /// quiescence.
    pub fn with_kernel<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.op(|_| {
            let r = f();
            queue::run_services(None, false);
            r
        })
    }

    /// Test support: a detached queue pair (its own "scratch" stream) with
    /// the given water marks; each side has a service procedure that only
    /// counts its runs (see [`World::scratch_runs`]) when `srv` is true.
    /// Returns the read queue. Use it inside [`World::with_kernel`].
    pub fn scratch_pair(&mut self, srv: bool, hiwat: usize, lowat: usize) -> *mut queue_t {
        self.op(|_| {
            let sid = world::with(|s| {
                s.streams.push(Stream::new(StreamKind::Manager, "scratch"));
                s.streams.len() - 1
            });
            let qi = if srv {
                &raw const SCRATCH_QINIT.0 as *mut qinit
            } else {
                &raw const SCRATCH_NOSRV_QINIT.0 as *mut qinit
            };
            // SAFETY: static qinits with a valid module_info.
            let p = unsafe { queue::alloc_pair(sid, Role::Driver, qi, qi, "scratch") };
            // SAFETY: fresh pair.
            unsafe {
                for q in [&raw mut (*p).rq, &raw mut (*p).wq] {
                    (*q).q_hiwat = hiwat;
                    (*q).q_lowat = lowat;
                }
            }
            world::with(|s| s.streams[sid].pairs = vec![p]);
            // SAFETY: fresh pair.
            unsafe { &raw mut (*p).rq }
        })
    }

    /// How many times scratch service procedures ran.
    pub fn scratch_runs(&self) -> usize {
        self.core
            .st
            .borrow()
            .trace
            .iter()
            .filter(|e| matches!(e, TraceEvent::Note(n) if n == "scratch srv"))
            .count()
    }

    /// Test support: frees everything left on a scratch pair and retires it.
    ///
    /// # Safety
    /// `rq` must be a queue returned by [`World::scratch_pair`] of this
    /// world, not yet freed.
    pub unsafe fn scratch_free(&mut self, rq: *mut queue_t) {
        self.op(|_| {
            // SAFETY: a scratch pair of this world.
            unsafe {
                let p = queue::pair_of(rq);
                queue::flushq_common(&raw mut (*p).rq, FLUSHALL, false);
                queue::flushq_common(&raw mut (*p).wq, FLUSHALL, false);
                queue::retire_pair(p);
                let sid = (*p).stream;
                world::with(|s| s.streams[sid].dead = true);
            }
        })
    }

    /// Registers `addr` as another address of `mod_driverops` that
    /// `mod_install` accepts in this world (for a later `_init` through
    /// [`World::reload`]); see also the process-wide
    /// [`register_driverops_alias`].
    pub fn register_driverops_alias(&mut self, addr: *const mod_ops) {
        self.core
            .st
            .borrow_mut()
            .driverops_aliases
            .push(addr as usize);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Stops the workers (multi-threaded mode, creating handle only);
        // everything of the world is released with its last reference
        // (`Core`'s Drop).
        mt::stop_workers(self);
    }
}

unsafe extern "C" fn scratch_srv(_q: *mut queue_t) -> c_int {
    queue::note("scratch srv");
    0
}

static SCRATCH_MINFO: head::SyncStatic<module_info> = head::SyncStatic(module_info {
    mi_idnum: 0,
    mi_idname: c"scratch".as_ptr() as *mut std::ffi::c_char,
    mi_minpsz: 0,
    mi_maxpsz: INFPSZ as isize,
    mi_hiwat: 0,
    mi_lowat: 0,
});

unsafe extern "C" fn scratch_put(q: *mut queue_t, mp: *mut mblk_t) -> c_int {
    queue::putq(q, mp)
}

static SCRATCH_QINIT: head::SyncStatic<qinit> = head::SyncStatic(qinit {
    qi_putp: Some(scratch_put),
    qi_srvp: Some(scratch_srv),
    qi_qopen: None,
    qi_qclose: None,
    qi_qadmin: None,
    qi_minfo: &raw const SCRATCH_MINFO.0 as *mut module_info,
    qi_mstat: ptr::null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

static SCRATCH_NOSRV_QINIT: head::SyncStatic<qinit> = head::SyncStatic(qinit {
    qi_putp: Some(scratch_put),
    qi_srvp: None,
    qi_qopen: None,
    qi_qclose: None,
    qi_qadmin: None,
    qi_minfo: &raw const SCRATCH_MINFO.0 as *mut module_info,
    qi_mstat: ptr::null_mut(),
    qi_rwp: None,
    qi_infop: None,
    qi_struiot: 0,
});

/// Every kernel symbol the simulator exports, with its address: what a
/// userland module loader needs to resolve a driver's undefined symbols.
pub fn kernel_symbols() -> Vec<(&'static str, *const c_void)> {
    macro_rules! syms {
        ($($f:path),* $(,)?) => {
            vec![$((stringify!($f).rsplit("::").next().unwrap(), $f as *const c_void)),*]
        };
    }
    let mut v = syms![
        queue::WR,
        queue::RD,
        queue::OTHERQ,
        msg::allocb,
        msg::freeb,
        msg::freemsg,
        msg::copyb,
        msg::dupb,
        msg::dupmsg,
        msg::msgdsize,
        msg::msgpullup,
        msg::mexchange,
        msg::miocack,
        msg::miocnak,
        msg::miocpullup,
        queue::putq,
        queue::putbq,
        queue::getq,
        queue::rmvq,
        queue::flushq,
        queue::flushband,
        queue::canput,
        queue::bcanput,
        queue::canputnext,
        queue::bcanputnext,
        queue::putnext,
        queue::put,
        queue::qreply,
        queue::qenable,
        queue::putnextctl,
        queue::putnextctl1,
        queue::putctl,
        queue::putctl1,
        queue::qprocson,
        queue::qprocsoff,
        ddi::mod_install,
        ddi::mod_remove,
        ddi::mod_info,
        ddi::ddi_create_minor_node,
        ddi::ddi_remove_minor_node,
        ddi::nulldev,
        ddi::nodev,
        ddi::nochpoll,
        ddi::ddi_prop_op,
        ddi::ddi_quiesce_not_supported,
        ddi::getminor,
        ddi::getmajor,
        ddi::makedevice,
        ddi::drv_priv,
        ddi::getzoneid,
        ddi::zone_find_by_id,
        ddi::zone_rele,
        ddi::valid_ephemeral_uid,
        ddi::valid_ephemeral_gid,
        ddi::mutex_enter,
        ddi::mutex_exit,
        ddi::cv_wait,
        ddi::cv_broadcast,
        ddi::cv_signal,
        ddi::ptms_init,
        ddi::pt_ttys_alloc,
        ddi::ptms_close,
        ddi::ptms_attach_subsidiary,
        ddi::assfail,
    ];
    v.push(("mod_driverops", driverops_addr() as *const c_void));
    v.push(("cmn_err", cmn_err as *const c_void));
    v
}

unsafe extern "C" {
    fn cmn_err(level: c_int, fmt: *const std::ffi::c_char, ...);
}
