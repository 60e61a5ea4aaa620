//! A world on the real kernel: one process (pid 4242) with open files, one
//! ptm variant loaded (see [`variants`]).
//!
//! The kernel is process-wide, so one world exists at a time (worlds wait
//! for each other); each starts with its own trace, fault settings and
//! allocation baselines, and at its end closes everything, unloads its
//! ptm, reaps the kmem caches (running their destructors) and checks that
//! nothing it made is left.

mod observe;
pub mod session;
mod syscalls;
mod trace;
pub mod variants;

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::ffi::c_int;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;

use ptm_scenario::{
    Cred, Errno, Fd, HeadState, IocReply, LateOrder, Leaks, MinorNode, PollBits, PtsNode, Pty,
    QueueInfo, Report, TraceEvent, Variant, WORLD_PID,
};

use crate::kernel::{self, cred, ffi, kmem, sched};
pub use observe::recent_allocb_callers;
pub use variants::{
    C_KOBJ, C_REFERENCE, REAL, RUST_DRIVER, RUST_KMOD, RealBackend, kmod_path, loaded_module,
};

/// The clone driver's major (`/dev/ptmx` is clone minor 22).
pub const CLONE_MAJOR: u32 = 11;
pub use ptm_scenario::{PTM_MAJOR, PTS_MAJOR};

pub fn makedev(major: u32, minor: u32) -> u64 {
    (u64::from(major) << 32) | u64::from(minor)
}

/// One world at a time per process: the kernel is process-wide. The
/// world's owner holds the slot from creation to teardown.
struct WorldSlot;

static SLOT_TAKEN: Mutex<bool> = Mutex::new(false);
static SLOT_FREED: Condvar = Condvar::new();

impl WorldSlot {
    fn acquire() -> WorldSlot {
        let mut taken = SLOT_TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        while *taken {
            taken = SLOT_FREED.wait(taken).unwrap_or_else(|e| e.into_inner());
        }
        *taken = true;
        WorldSlot
    }
}

impl Drop for WorldSlot {
    fn drop(&mut self) {
        *SLOT_TAKEN.lock().unwrap_or_else(|e| e.into_inner()) = false;
        SLOT_FREED.notify_one();
    }
}

/// The world's process (a kernel `proc_t`).
#[derive(Clone, Copy)]
struct Proc(*mut ffi::proc_t);

// SAFETY: a proc_t is kernel state, used only through kernel calls, which
// do their own locking; the pointer itself is shared by the world's
// handles.
unsafe impl Send for Proc {}
// SAFETY: as above.
unsafe impl Sync for Proc {}

/// An open file of the world's process.
#[derive(Clone)]
struct File {
    vp: *mut ffi::vnode_t,
    /// The kernel's file flags (FREAD/FWRITE/FNDELAY/...).
    fflag: c_int,
    /// The stream's name in the trace (`M<minor>`, `S<minor>`).
    name: String,
}

// SAFETY: the vnode is kernel state, used only through kernel calls (the
// specfs layer and the stream head lock what they touch).
unsafe impl Send for File {}

/// `open(2)` flags to the kernel's file flags (FREAD/FWRITE = access + 1).
fn fflags(oflag: i32) -> c_int {
    (oflag & !3) | ((oflag & 3) + 1)
}

/// Messages and ptys in use: (mblks, dblks, pt_ttys).
///
/// Every data block of illumos's dblk caches carries its message block
/// from construction to destruction (`dblk_constructor`), so the mblks in
/// use are those of the mblk cache less one per constructed dblk, whether
/// in use or free in its cache.
fn cache_counts() -> (u64, u64, u64) {
    let stats = kmem::cache_stats();
    let sum = |pred: &dyn Fn(&str) -> bool, f: &dyn Fn((usize, usize)) -> usize| -> u64 {
        stats
            .iter()
            .filter(|(n, _)| pred(n))
            .map(|(_, &c)| f(c) as u64)
            .sum()
    };
    let dblks = |n: &str| n.starts_with("streams_dblk");
    let mblks = sum(&|n| n == "streams_mblk", &|c| c.0);
    let constructed_dblks = sum(&dblks, &|c| c.0 + c.1);
    (
        mblks.saturating_sub(constructed_dblks),
        sum(&dblks, &|c| c.0),
        sum(&|n| n == "pty_map", &|c| c.0),
    )
}

/// What a world's handles share.
struct Inner {
    variant: Variant,
    entry: variants::Entry,
    proc_: Proc,
    st: Mutex<State>,
    _slot: WorldSlot,
}

/// A world's mutable state.
struct State {
    loaded: bool,
    cred: Cred,
    zone: i32,
    files: BTreeMap<i32, File>,
    /// Live (mblks, dblks, pt_ttys) when the world started.
    baseline: (u64, u64, u64),
    allocb_calls_at_start: u64,
    /// kmem_alloc buffers live when the world started.
    buffers_at_start: HashSet<usize>,
    finished: bool,
}

/// A world of the real-code kernel, or a handle on one.
///
/// A deterministic world ([`World::new`]) has one handle, its owner. A
/// threaded world ([`World::new_threaded`]) gives more handles
/// ([`World::handle`]), one per thread: each runs the process's system
/// calls on its own thread, concurrently with the others, as threads of
/// one process do. The owner tears the world down.
pub struct World {
    inner: Arc<Inner>,
    owner: bool,
    /// The thread this handle makes its system calls on, once it has.
    thread: Cell<Option<ThreadId>>,
}

impl World {
    /// A world running variant `v`, loaded as modctl loads a module
    /// (`_info`, `_init`) and attached as add_drv attaches a driver.
    pub fn new(v: Variant) -> Result<World, String> {
        Self::create(v, sched::Mode::Deterministic)
    }

    /// The same in threaded mode (for the stress tests): the kernel's
    /// threads run freely, and [`World::handle`] gives more handles. A
    /// process runs its kernel in one mode: deterministic and threaded
    /// worlds need separate test binaries.
    pub fn new_threaded(v: Variant) -> Result<World, String> {
        Self::create(v, sched::Mode::Threaded)
    }

    fn create(v: Variant, mode: sched::Mode) -> Result<World, String> {
        kernel::boot(mode)?;
        static WATCH: std::sync::Once = std::sync::Once::new();
        WATCH.call_once(|| {
            observe::watch_pty_frees();
            kernel::set_report_hook(trace::report_tail);
        });
        let entry = variants::entry(v)?;
        let slot = WorldSlot::acquire();
        kernel::set_label(&format!("world running {}", v.name));
        trace::reset();
        observe::reset_faults();
        // SAFETY: no kernel code runs while a world is being set up.
        unsafe { ffi::kp_watch_spins = c_int::from(sched::deterministic()) };
        cred::reset_zones();
        let cr = cred::cred_new(0, 0, 0, true);
        // SAFETY: a fresh credential, whose hold the process takes.
        let p = unsafe { ffi::kp_proc_create(WORLD_PID, cr) };
        if p.is_null() {
            return Err("cannot create the world's process".into());
        }
        let w = World {
            inner: Arc::new(Inner {
                variant: v,
                entry,
                proc_: Proc(p),
                st: Mutex::new(State {
                    loaded: false,
                    cred: Cred::root(),
                    zone: 0,
                    files: BTreeMap::new(),
                    baseline: cache_counts(),
                    allocb_calls_at_start: observe::allocb_calls(),
                    buffers_at_start: kmem::live_buffers().iter().map(|b| b.0).collect(),
                    finished: false,
                }),
                _slot: slot,
            }),
            owner: true,
            thread: Cell::new(None),
        };
        w.enter();
        w.load()?;
        Ok(w)
    }

    /// Another handle on a threaded world, for another thread.
    pub fn handle(&self) -> World {
        assert!(
            !sched::deterministic(),
            "World::handle needs a world made by World::new_threaded"
        );
        World {
            inner: Arc::clone(&self.inner),
            owner: false,
            thread: Cell::new(None),
        }
    }

    /// Runs the held service procedures -- all of them, or those of the
    /// stream `only` -- streams in `order`, each stream's queues in the
    /// order they were enabled, and whatever they schedule, until the world
    /// settles. Services are on time meanwhile (a held queue keeps
    /// `QENAB`, so enabling it again leaves it held), and late again
    /// afterwards if they were.
    fn run_late(&self, order: LateOrder, only: Option<*mut ffi::stdata_t>) {
        // SAFETY: the world's thread is the only one running kernel code
        // (deterministic mode); the arrays have room for every held queue.
        unsafe {
            let n = ffi::kp_late_count();
            if n == 0 {
                return;
            }
            let mut qs = vec![std::ptr::null_mut(); n];
            let mut sts = vec![std::ptr::null_mut(); n];
            let got = ffi::kp_late_take(qs.as_mut_ptr(), sts.as_mut_ptr(), n);
            let (go, keep): (Vec<_>, Vec<_>) = qs[..got]
                .iter()
                .copied()
                .zip(sts[..got].iter().copied())
                .partition(|&(_, st)| only.is_none_or(|o| o == st));
            for (q, _) in keep {
                ffi::kp_late_hold_again(q);
            }
            let was = ffi::kp_late_services;
            ffi::kp_late_services = 0;
            for q in order.arrange(&go) {
                ffi::kp_late_enable(q);
            }
            sched::settle();
            ffi::kp_late_services = was;
        }
    }

    /// Services on time again, nothing held (what was held runs now).
    fn stop_late(&self) {
        self.run_late(LateOrder::Scheduled, None);
        // SAFETY: as in run_late.
        unsafe { ffi::kp_late_services = 0 };
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.inner.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the calling thread one of the process's threads, the first
    /// time this handle is used on it.
    fn enter(&self) {
        let me = std::thread::current().id();
        match self.thread.get() {
            Some(t) if t == me => {}
            Some(_) => panic!("a world handle is used on one thread only"),
            None => {
                sched::attach_process_thread("process 4242", self.inner.proc_.0);
                self.thread.set(Some(me));
            }
        }
    }

    fn load(&self) -> Result<(), String> {
        let (name, e) = (self.inner.variant.name, self.inner.entry);
        let rc = kernel::mod_load(c"ptm", e.info, e.init);
        sched::settle();
        if rc != 0 {
            return Err(format!("{name}: _init returned {rc}"));
        }
        self.st().loaded = true;
        // SAFETY: on a thread of the world; ptm is installed.
        if unsafe { ffi::kp_attach_driver(PTM_MAJOR) } != 0 {
            return Err(format!("{name}: attach failed"));
        }
        sched::settle();
        Ok(())
    }

    /// Every fd, closed; the module unloaded; the caches reaped. Returns
    /// what is left over (empty when clean).
    fn teardown(&mut self) -> Vec<String> {
        self.enter();
        self.st().finished = true;
        self.stop_late();
        let _ = sched::quiesce();
        self.close_all_fds();
        let _ = sched::quiesce();
        let mut problems = Vec::new();
        let leaks = self.leaks_now();
        if !leaks.is_clean() {
            problems.push(format!("leaks: {leaks:?}"));
        }
        let anomalies = observe::anomalies();
        if !anomalies.is_empty() {
            problems.push(format!("anomalies: {anomalies:?}"));
        }
        if self.st().loaded {
            let rc = kernel::mod_unload(c"ptm", self.inner.entry.fini);
            sched::settle();
            trace::sys("modunload ptm".into(), rc.to_string());
            if rc != 0 {
                problems.push(format!("ptm _fini returned {rc} with nothing open"));
            }
            self.st().loaded = rc != 0;
        }
        kmem::reap_all();
        let kept = self.buffers_left();
        if !kept.is_empty() {
            problems.push(format!("kmem_alloc buffers left: {}", kept.join(", ")));
        }
        // SAFETY: the process has no open files and no thread in the kernel
        // but ours, which leaves it now.
        let cr = unsafe { ffi::kp_proc_destroy(self.inner.proc_.0) };
        cred::crfree(cr);
        sched::detach_process_thread();
        self.thread.set(None);
        if let Err(e) = kmem::check_quarantine() {
            problems.push(e);
        }
        problems
    }

    /// kmem_alloc buffers made during the world and still allocated, by
    /// the function that allocated them -- but for the tables the kernel
    /// keeps by design: ptms_conf's pty slots (grown, never shrunk), the
    /// instances of drivers that stay attached (clone, and pts, which
    /// refuses to detach) and the per-driver data qattach makes for them,
    /// and the thread structures of kernel threads (task-queue workers)
    /// that live on.
    fn buffers_left(&self) -> Vec<String> {
        // (ptms_grow may be inlined into its one caller, pt_ttys_alloc,
        // whose only kmem_alloc it then is.)
        const KEPT_BY_DESIGN: &[&str] = &[
            "ptms_grow",
            "pt_ttys_alloc",
            "kp_attach",
            "hold_dm",
            "kp_thread_alloc",
        ];
        let at_start = std::mem::take(&mut self.st().buffers_at_start);
        kmem::live_buffers()
            .into_iter()
            .filter(|b| !at_start.contains(&b.0))
            .map(|(addr, size, caller)| (addr, size, kernel::symbols::name_of(caller)))
            .filter(|(_, _, f)| !KEPT_BY_DESIGN.contains(&f.as_str()))
            .map(|(addr, size, f)| format!("{size} bytes at {addr:#x} from {f}"))
            .collect()
    }

    fn close_all_fds(&mut self) {
        let fds: Vec<i32> = self.st().files.keys().copied().collect();
        for fd in fds {
            let _ = self.do_close(Fd(fd));
        }
    }

    fn leaks_now(&self) -> Leaks {
        let (m, d, p) = cache_counts();
        let (bm, bd, bp) = self.st().baseline;
        Leaks {
            mblks: m.saturating_sub(bm),
            dblks: d.saturating_sub(bd),
            pt_ttys: p.saturating_sub(bp),
            zone_holds: cred::zone_holds(),
            open_streams: observe::open_streams(),
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if self.owner {
            if !self.st().finished {
                // A scenario that failed part-way: leave the kernel as the
                // next world expects it.
                let _ = self.teardown();
            }
        } else if self.thread.get() == Some(std::thread::current().id()) {
            sched::detach_process_thread();
        }
    }
}

impl Pty for World {
    fn variant(&self) -> Variant {
        self.inner.variant
    }

    fn open_manager(&mut self, flags: i32) -> Result<Fd, Errno> {
        self.enter();
        self.do_open_manager(flags)
    }

    fn open_manager_node(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.enter();
        self.do_open_manager_node(minor, flags)
    }

    fn open_subsidiary(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.enter();
        self.do_open_subsidiary(minor, flags)
    }

    fn open_subsidiary_node(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.enter();
        self.do_open_subsidiary_node(minor, flags)
    }

    /// illumos never offers a driver to I_PUSH: ptm is not in the STREAMS
    /// module switch, so the MODOPEN path of ptmopen cannot be reached.
    fn push_manager_as_module(&mut self) -> Option<Result<(), Errno>> {
        None
    }

    /// A stream's held services run first (see
    /// [`Pty::services_run_late`]): illumos's close would wait for them.
    fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        self.enter();
        let vp = self.st().files.get(&fd.0).map(|f| f.vp);
        if let Some(vp) = vp {
            // SAFETY: a live vnode of this world.
            let stp = unsafe { ffi::kp_vnode_stream(vp) };
            self.run_late(LateOrder::Scheduled, Some(stp));
        }
        self.do_close(fd)
    }

    fn close_all(&mut self) {
        self.enter();
        self.close_all_fds();
    }

    fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize, Errno> {
        self.enter();
        self.do_write(fd, data)
    }

    fn write_band(&mut self, fd: Fd, band: u8, data: &[u8]) -> Result<(), Errno> {
        self.enter();
        self.do_write_band(fd, band, data)
    }

    fn read(&mut self, fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
        self.enter();
        self.do_read(fd, n)
    }

    fn ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        self.enter();
        self.do_istr(fd, cmd, payload)
    }

    fn ioctl_blocks(&mut self, fd: Fd, cmd: i32, parts: &[&[u8]]) -> Result<IocReply, Errno> {
        self.enter();
        self.do_ioctl_parts(fd, cmd, parts, false)
    }

    fn ioctl_chain(&mut self, fd: Fd, cmd: i32, parts: &[&[u8]]) -> Result<IocReply, Errno> {
        self.enter();
        self.do_ioctl_parts(fd, cmd, parts, true)
    }

    fn tty_ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        self.enter();
        self.do_tty_ioctl(fd, cmd, payload)
    }

    fn flush(&mut self, fd: Fd, flags: i32) -> Result<(), Errno> {
        self.enter();
        self.do_flush(fd, flags, None)
    }

    fn flush_band(&mut self, fd: Fd, band: u8, flags: i32) -> Result<(), Errno> {
        self.enter();
        self.do_flush(fd, flags, Some(band))
    }

    fn inject_down(&mut self, fd: Fd, mtype: u8, band: u8, data: &[u8]) -> Result<(), Errno> {
        self.enter();
        self.do_inject(fd, mtype, band, data)
    }

    fn poll(&mut self, fd: Fd) -> Result<PollBits, Errno> {
        self.enter();
        self.do_poll(fd)
    }

    fn fstat_minor(&mut self, fd: Fd) -> Result<(u32, u32), Errno> {
        let f = self.file(fd)?;
        // SAFETY: a live vnode of this world.
        let dev = unsafe { ffi::kp_vnode_dev(f.vp) };
        Ok(((dev >> 32) as u32, dev as u32))
    }

    fn pts_node(&mut self, minor: u32) -> Option<PtsNode> {
        self.enter();
        self.pts_node_of(minor)
    }

    fn cred(&self) -> Cred {
        self.st().cred
    }

    fn set_cred(&mut self, c: Cred) {
        self.enter();
        self.st().cred = c;
        self.install_cred();
    }

    fn set_zone(&mut self, zone: i32) {
        self.enter();
        self.st().zone = zone;
        self.install_cred();
    }

    fn add_zone(&mut self, id: i32, ephemeral: Option<(u32, u32)>) {
        cred::add_zone(id, ephemeral);
    }

    fn remove_zone(&mut self, id: i32) {
        cred::remove_zone(id);
    }

    fn fail_nth_allocb(&mut self, n: u64) {
        observe::fail_nth_allocb(n);
    }

    fn fail_next_pt_ttys_alloc(&mut self) {
        kmem::fail_allocation("pty_map", 0);
    }

    fn fail_attach_subsidiary(&mut self, fail: bool) {
        self.enter();
        // SAFETY: on the world's thread, nothing else running.
        unsafe { ffi::kp_fail_pts_attach(c_int::from(fail)) };
    }

    fn set_pty_limit(&mut self, limit: Option<usize>) {
        observe::set_pty_limit(limit);
    }

    /// The next allocation from illumos's qband cache (allocband) fails.
    fn fail_next_qband_alloc(&mut self) {
        kmem::fail_allocation("qband_cache", 0);
    }

    // --- scheduling ------------------------------------------------------------

    fn services_run_late(&mut self, late: bool) {
        assert!(
            sched::deterministic(),
            "services run late in deterministic worlds only"
        );
        self.enter();
        if late {
            // SAFETY: only this thread runs kernel code now.
            unsafe { ffi::kp_late_services = 1 };
        } else {
            self.stop_late();
        }
    }

    fn run_late_services(&mut self, order: LateOrder) {
        self.enter();
        self.run_late(order, None);
    }

    fn late_services(&self) -> usize {
        // SAFETY: a plain read of the world's counter.
        unsafe { ffi::kp_late_count() }
    }

    fn trace(&self) -> Vec<TraceEvent> {
        trace::events()
    }

    /// What went wrong without stopping the kernel: the one thing the
    /// world watches for is a pty freed with state left (see
    /// `observe::watch_pty_frees`); every other misuse the model would
    /// record stops the real kernel (an ASSERT, a kernel failure).
    fn anomalies(&self) -> Vec<String> {
        observe::anomalies()
    }

    fn acknowledge_anomalies(&mut self, what: &str) -> usize {
        observe::acknowledge_anomalies(what)
    }

    fn leaks(&self) -> Leaks {
        self.leaks_now()
    }

    fn allocb_calls(&self) -> u64 {
        observe::allocb_calls() - self.st().allocb_calls_at_start
    }

    fn block_capacity(&mut self, len: usize) -> usize {
        self.enter();
        observe::block_capacity(len)
    }

    fn minor_nodes(&self) -> Vec<MinorNode> {
        observe::minor_nodes()
    }

    fn pt_state(&self, minor: u32) -> Option<u16> {
        observe::pt_info(minor).map(|i| i.0)
    }

    fn pt_owner(&self, minor: u32) -> Option<(i32, u32, u32)> {
        observe::pt_info(minor).map(|i| (i.1, i.2, i.3))
    }

    fn head_state(&self, fd: Fd) -> Option<HeadState> {
        let f = self.file(fd).ok()?;
        Some(observe::head_state(f.vp))
    }

    fn head_read_queue(&self, fd: Fd) -> Option<QueueInfo> {
        let f = self.file(fd).ok()?;
        Some(observe::queues(f.vp).0)
    }

    fn driver_write_queue(&self, fd: Fd) -> Option<QueueInfo> {
        let f = self.file(fd).ok()?;
        Some(observe::queues(f.vp).1)
    }

    fn unload(&mut self) -> Result<(), Errno> {
        self.enter();
        let rc = kernel::mod_unload(c"ptm", self.inner.entry.fini);
        sched::settle();
        trace::sys("modunload ptm".into(), rc.to_string());
        if rc == 0 {
            self.st().loaded = false;
            Ok(())
        } else {
            Err(Errno(rc))
        }
    }

    fn reload(&mut self) -> Result<(), String> {
        self.enter();
        self.load()
    }

    fn is_loaded(&self) -> bool {
        self.st().loaded
    }

    fn module_linkinfo(&self) -> Option<String> {
        let loaded = self.st().loaded;
        loaded.then(|| variants::linkinfo(self.inner.entry))
    }

    fn set_label(&mut self, label: &str) {
        kernel::set_label(label);
    }

    fn finish(mut self: Box<Self>) -> Result<Report, String> {
        let problems = self.teardown();
        let trace: Vec<String> = trace::events().iter().map(ToString::to_string).collect();
        if !problems.is_empty() {
            return Err(format!(
                "[{}] {}\ntrace:\n{}",
                self.inner.variant.name,
                problems.join("; "),
                trace.join("\n")
            ));
        }
        Ok(Report {
            variant: self.inner.variant.name,
            trace,
            allocb_calls: observe::allocb_calls() - self.st().allocb_calls_at_start,
        })
    }
}

/// The stress test's view of a threaded world (`ptm-scenario`'s `stress`
/// module).
impl ptm_scenario::stress::ThreadedPty for World {
    fn handle(&self) -> Box<dyn ptm_scenario::stress::ThreadedPty> {
        Box::new(World::handle(self))
    }

    /// The task queue empty with every worker idle and no callout due,
    /// twice a millisecond apart (within a minute).
    fn quiesce(&mut self) -> bool {
        sched::quiesce()
    }

    fn pt_refcnts(&self) -> Vec<(u32, i32, bool)> {
        observe::pt_refcnts()
    }

    /// The world's locks do not record who holds them, only a count: the
    /// number held, and which ptys' `pt_lock`s are among them.
    fn held_locks(&self) -> Vec<String> {
        let n = kernel::sync::mutexes_held();
        if n == 0 {
            return Vec::new();
        }
        let ptys: Vec<u32> = observe::pt_refcnts()
            .into_iter()
            .filter(|p| p.2)
            .map(|p| p.0)
            .collect();
        vec![format!(
            "{n} kernel mutex(es) held; pt_lock held for minors {ptys:?}"
        )]
    }

    /// Every kernel thread and what it waits for, when it waits on a lock,
    /// a condition variable or the task queue (without waiting for the
    /// scheduler's lock).
    fn thread_states(&self) -> Vec<String> {
        sched::dump().lines().map(str::to_owned).collect()
    }

    fn set_tracing(&mut self, on: bool) {
        trace::set_tracing(on);
    }
}
