//! Test support for the model's own tests: kernel functions called
//! directly in a world, and detached "scratch" queue pairs to exercise the
//! STREAMS primitives on without a driver.

use std::ffi::c_int;
use std::ptr;

use ptm::sys::*;
use ptm_scenario::TraceEvent;

use crate::link;
use crate::queue::{self, Role};
use crate::sched;
use crate::world::{self, Stream, StreamKind};
use crate::{World, head};

impl World {
    /// Test support: runs `f` with this world current, so it may call the
    /// exported kernel functions directly; then runs the service lists to
    /// quiescence.
    pub fn with_kernel<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.op(|_| {
            let r = f();
            sched::run_services(None, false);
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
                link::retire_pair(p);
                let sid = (*p).stream;
                world::with(|s| s.streams[sid].dead = true);
            }
        })
    }

    /// Registers `addr` as another address of `mod_driverops` that
    /// `mod_install` accepts in this world (for a later `_init` through
    /// [`Pty::reload`](ptm_scenario::Pty::reload)); see also the process-wide
    /// [`register_driverops_alias`](crate::register_driverops_alias).
    pub fn register_driverops_alias(&mut self, addr: *const mod_ops) {
        self.core
            .st
            .borrow_mut()
            .driverops_aliases
            .push(addr as usize);
    }
}

unsafe extern "C" fn scratch_srv(_q: *mut queue_t) -> c_int {
    world::note("scratch srv");
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

/// The same queue without a service procedure.
static SCRATCH_NOSRV_QINIT: head::SyncStatic<qinit> = head::SyncStatic(qinit {
    qi_srvp: None,
    ..SCRATCH_QINIT.0
});
