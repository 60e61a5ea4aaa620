//! The per-world state, the thread's "current world", the trace and the
//! anomaly log.
//!
//! The kernel functions the drivers import have no context argument, so each
//! of them finds its world through a thread-local pointer. A [`crate::World`]
//! installs itself as the current world of the calling thread for the
//! duration of every operation (and restores whatever was current before),
//! so several worlds may live on one thread or on many.
//!
//! All mutable bookkeeping lives in one `RefCell<State>`. It is only ever
//! borrowed for short stretches that never call into driver code, because
//! driver code calls back into the simulator.
//!
//! ## Locking (both modes)
//!
//! A world is shared by every thread that takes part in it: in the
//! multi-threaded mode ([`crate::World::new_threaded`]) user threads with
//! their handles and the service worker threads. Everything the simulator
//! owns — the `State`, and the raw queue and message structures — is
//! protected by one reentrant per-world lock (the "world lock", [`BigLock`]).
//! It is held only inside simulator functions and NEVER across a call into
//! driver code (a put, service, open or close routine, a module entry
//! point), because driver code calls back into the simulator and into
//! `mutex_enter`, which may block. Borrowing the state takes the world lock;
//! [`locked`] takes it around raw queue manipulation. A thread never blocks
//! (on a kernel mutex, a condition variable, or a wait for a queue to go
//! idle) while it holds the world lock; that is checked.
//!
//! In the single-threaded mode the lock is never contended and everything
//! behaves exactly as before: deterministic scheduling, `cv_wait` aborts.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ptm::sys::*;
use ptm_scenario::msg::IocIds;
use ptm_scenario::{Cred, MinorNode, TraceEvent};

use crate::msg::DBox;
use crate::queue::QPair;

/// Identifies a stream within one world (index into `State::streams`).
pub type StreamId = usize;

/// Which device a stream was opened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// A clone open of `/dev/ptmx` (the driver under test).
    Manager,
    /// A subsidiary device `/dev/pts/N` (the simulator's pts).
    Subsidiary,
}

/// Stream-head flag bits (the subset of `sd_flag` the simulator models).
pub(crate) mod sd {
    pub const STRHUP: u32 = 0x0000_0004;
    pub const STWRERR: u32 = 0x0000_0008;
    pub const STRDERR: u32 = 0x0000_0010;
    pub const STRISTTY: u32 = 0x0000_0020;
    pub const IOCWAIT: u32 = 0x0000_0040;
    pub const STRPRI: u32 = 0x0000_0080;
    pub const SNDMREAD: u32 = 0x0000_0100;
    pub const OLDNDELAY: u32 = 0x0000_0200;
    pub const STRTOSTOP: u32 = 0x0000_0400;
    pub const STRDELIM: u32 = 0x0000_0800;
    pub const STRXPG4TTY: u32 = 0x0000_1000;
    pub const STRCLOSE: u32 = 0x0000_2000;
}

/// One stream: a stream head, then (top to bottom) the pairs opened on it.
pub(crate) struct Stream {
    pub kind: StreamKind,
    /// The device minor (for a manager: the one the clone open returned).
    pub minor: Option<u32>,
    /// Stream head pair, then module pairs, then the driver pair.
    pub pairs: Vec<*mut QPair>,
    pub flags: u32,
    pub rerror: i32,
    pub werror: i32,
    /// `sd_qn_maxpsz`: the maximum packet size of the queue below the head.
    pub qn_maxpsz: isize,
    pub iocid: u32,
    pub iocblk: *mut mblk_t,
    /// Service list (FIFO) of this stream.
    pub svc: VecDeque<*mut queue_t>,
    /// Open file descriptors referring to this stream.
    pub refs: usize,
    pub dead: bool,
    /// Name of the stream while it has no minor (a failed open).
    pub label: &'static str,
    /// The driver's open routine has not returned yet: the minor is not
    /// known (see [`State::name_opened_stream`]).
    pub opening: bool,
}

impl Stream {
    /// A new stream of `kind`, with no queues yet, no minor, no errors and
    /// no references; `label` names it until it has a minor.
    pub fn new(kind: StreamKind, label: &'static str) -> Stream {
        Stream {
            kind,
            minor: None,
            pairs: Vec::new(),
            flags: 0,
            rerror: 0,
            werror: 0,
            qn_maxpsz: 0,
            iocid: 0,
            iocblk: ptr::null_mut(),
            svc: Default::default(),
            refs: 0,
            dead: false,
            label,
            opening: false,
        }
    }
}

/// Storage behind a `cred_t *`.
pub(crate) struct CredObj {
    pub cred: Cred,
}

/// Storage behind a `zone_t *`.
pub(crate) struct ZoneObj {
    pub id: i32,
    /// Ephemeral uid/gid range allocated to the zone: ids in
    /// `(min, last]` above 2^31 are valid there.
    pub eph_min: u32,
    pub eph_last: u32,
}

#[derive(Default, Clone, Debug)]
pub(crate) struct Counters {
    pub allocb_calls: u64,
    pub mblk_allocs: u64,
    pub mblk_frees: u64,
    pub dblk_allocs: u64,
    pub dblk_frees: u64,
    pub pt_allocs: u64,
    pub pt_frees: u64,
    pub zone_holds: i64,
}

#[derive(Default)]
pub(crate) struct Faults {
    /// Absolute `allocb` call numbers (1-based) that fail.
    pub allocb_fail: BTreeSet<u64>,
    /// Number of upcoming `pt_ttys_alloc` calls that fail.
    pub pt_ttys_alloc_fail: u32,
    /// `ptms_attach_subsidiary` fails while set.
    pub attach_fail: bool,
    /// Number of upcoming band-structure (`qband`) allocations that fail,
    /// making `putq`/`putbq` of a message of a new band return 0.
    pub qband_alloc_fail: u32,
}

/// What `mod_install` recorded.
pub(crate) struct ModState {
    pub linkage: *mut modlinkage,
    pub dev_ops: *mut dev_ops,
    pub linkinfo: String,
}

pub(crate) struct FdEntry {
    pub stream: StreamId,
    /// Open flags (illumos `O_*` values).
    pub flags: i32,
}

pub(crate) struct State {
    pub name: String,
    pub counters: Counters,
    pub faults: Faults,
    pub mblk_live: HashSet<usize>,
    pub dblk_live: HashSet<usize>,
    pub mblk_grave: Vec<*mut mblk_t>,
    pub dblk_grave: Vec<*mut DBox>,
    pub trace: Vec<TraceEvent>,
    pub anomalies: Vec<String>,

    pub pairs: Vec<*mut QPair>,
    /// Addresses of every queue in `pairs` (both sides), for fast lookups.
    pub queue_set: HashSet<usize>,
    /// Multi-threaded mode: the world's service run queue (FIFO), drained by
    /// the worker threads. Unused in single-threaded mode.
    pub runq: VecDeque<*mut queue_t>,
    /// Whether trace events are recorded (a long stress run turns it off).
    pub tracing: bool,
    pub bands: Vec<*mut qband_t>,
    pub streams: Vec<Stream>,
    pub services_run: u64,
    /// While services run late (single-threaded): the queues enabled and
    /// held, with their streams, in the order they were enabled.
    pub late: Option<Vec<(*mut queue_t, StreamId)>>,

    /// modctl's `mod_linkage` for the module: the address its `_info`
    /// reported (`mi_base`, asked with `MI_INFO_LINKAGE`) when it was
    /// loaded; NULL while it is not loaded. `mod_install` accepts only it.
    pub mod_linkage: *mut modlinkage,
    pub module: Option<ModState>,
    pub driverops_aliases: Vec<usize>,
    pub dip: *mut c_void,
    pub attached: bool,
    pub minor_nodes: Vec<MinorNode>,
    pub streamtab: *mut streamtab,

    pub ptms_inited: bool,
    pub pts_attached: bool,
    pub slots: BTreeMap<u32, *mut pt_ttys>,
    pub pt_grave: Vec<*mut pt_ttys>,
    pub pty_limit: Option<usize>,

    /// Boxed: their addresses are the `cred_t *` handed out.
    #[allow(clippy::vec_box)]
    pub creds: Vec<Box<CredObj>>,
    pub cur_cred: usize,
    pub cur_zone: i32,
    pub zones: BTreeMap<i32, Box<ZoneObj>>,
    /// Boxed: their addresses are the `zone_t *` handed out.
    #[allow(clippy::vec_box)]
    pub zone_grave: Vec<Box<ZoneObj>>,
    /// Kernel mutexes currently held: address → owner thread token.
    pub held_mutexes: HashMap<usize, u64>,

    pub fds: BTreeMap<i32, FdEntry>,
    pub next_iocid: u32,
    /// Numbers the ioctl ids the trace shows, in order of appearance.
    pub ioc_ids: IocIds,
    pub cmn_err: Vec<(i32, String)>,
}

impl State {
    pub fn new(name: &str) -> State {
        let mut zones = BTreeMap::new();
        zones.insert(
            0,
            Box::new(ZoneObj {
                id: 0,
                eph_min: 0,
                eph_last: 0,
            }),
        );
        State {
            name: name.to_string(),
            counters: Counters::default(),
            faults: Faults::default(),
            mblk_live: HashSet::new(),
            dblk_live: HashSet::new(),
            mblk_grave: Vec::new(),
            dblk_grave: Vec::new(),
            trace: Vec::new(),
            anomalies: Vec::new(),
            pairs: Vec::new(),
            queue_set: HashSet::new(),
            runq: VecDeque::new(),
            tracing: true,
            bands: Vec::new(),
            streams: Vec::new(),
            services_run: 0,
            late: None,
            mod_linkage: ptr::null_mut(),
            module: None,
            driverops_aliases: Vec::new(),
            dip: ptr::null_mut(),
            attached: false,
            minor_nodes: Vec::new(),
            streamtab: ptr::null_mut(),
            ptms_inited: false,
            pts_attached: false,
            slots: BTreeMap::new(),
            pt_grave: Vec::new(),
            pty_limit: None,
            creds: vec![Box::new(CredObj { cred: Cred::root() })],
            cur_cred: 0,
            cur_zone: 0,
            zones,
            zone_grave: Vec::new(),
            held_mutexes: HashMap::new(),
            fds: BTreeMap::new(),
            next_iocid: 1,
            ioc_ids: IocIds::default(),
            cmn_err: Vec::new(),
        }
    }

    pub fn anomaly(&mut self, what: impl Into<String>) {
        let what = what.into();
        if std::env::var_os("PTM_SIM_VERBOSE").is_some() {
            eprintln!("[{}] anomaly: {what}", self.name);
        }
        self.anomalies.push(what);
    }

    pub fn cur_cred_ptr(&self) -> *mut cred_t {
        let obj: &CredObj = &self.creds[self.cur_cred];
        obj as *const CredObj as *mut cred_t
    }

    pub fn cred_of(&self, p: *const cred_t) -> Option<Cred> {
        self.creds
            .iter()
            .find(|c| ptr::eq(&***c as *const CredObj as *const cred_t, p))
            .map(|c| c.cred)
    }

    /// Display name of a stream: `M<minor>`, `S<minor>`, or a label; a
    /// stream whose open is under way is `stream#<id>` until
    /// [`State::name_opened_stream`].
    pub fn stream_name(&self, id: StreamId) -> String {
        match self.streams.get(id) {
            Some(s) if s.opening => format!("stream#{id}"),
            Some(s) => match (s.kind, s.minor) {
                (StreamKind::Manager, Some(m)) => format!("M{m}"),
                (StreamKind::Subsidiary, Some(m)) => format!("S{m}"),
                _ => s.label.to_string(),
            },
            None => format!("stream#{id}"),
        }
    }

    /// Ends the open of stream `id` (its minor is set, or the open
    /// failed): the messages its stream head received during the open
    /// (trace events from `since` on) were recorded under the stream's
    /// temporary name, and now carry its name (`M<minor>`, `S<minor>`, or
    /// the label of a failed open), as every later event will.
    pub fn name_opened_stream(&mut self, id: StreamId, since: usize) {
        let temporary = self.stream_name(id);
        self.streams[id].opening = false;
        let name = self.stream_name(id);
        for e in self.trace.iter_mut().skip(since) {
            if let TraceEvent::HeadRecv { stream, .. } = e
                && *stream == temporary
            {
                stream.clone_from(&name);
            }
        }
    }
}

/// A small per-thread token (never 0) naming the thread as a lock owner.
pub(crate) fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}

/// The reentrant world lock (see the module documentation).
pub(crate) struct BigLock {
    /// (owner token, depth).
    m: Mutex<(u64, usize)>,
    cv: Condvar,
}

impl BigLock {
    fn new() -> BigLock {
        BigLock {
            m: Mutex::new((0, 0)),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) {
        let me = thread_token();
        let mut g = self.m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if g.1 == 0 {
                *g = (me, 1);
                return;
            }
            if g.0 == me {
                g.1 += 1;
                return;
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn unlock(&self) {
        let mut g = self.m.lock().unwrap_or_else(|e| e.into_inner());
        g.1 -= 1;
        if g.1 == 0 {
            g.0 = 0;
            self.cv.notify_one();
        }
    }

    /// Whether the calling thread holds the lock.
    pub fn held_by_me(&self) -> bool {
        let g = self.m.lock().unwrap_or_else(|e| e.into_inner());
        g.1 > 0 && g.0 == thread_token()
    }

    pub fn guard(&self) -> BigGuard<'_> {
        self.lock();
        BigGuard(self)
    }
}

/// Holds the world lock until dropped.
pub(crate) struct BigGuard<'a>(&'a BigLock);

impl Drop for BigGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// The state behind the world lock. `borrow`/`borrow_mut` take the lock for
/// the life of the returned guard (for the `World` methods that read the
/// state between system calls).
pub(crate) struct StateCell {
    pub lock: BigLock,
    cell: RefCell<State>,
}

pub(crate) struct StateRef<'a> {
    r: std::cell::Ref<'a, State>,
    _g: BigGuard<'a>,
}

impl std::ops::Deref for StateRef<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.r
    }
}

pub(crate) struct StateRefMut<'a> {
    r: std::cell::RefMut<'a, State>,
    _g: BigGuard<'a>,
}

impl std::ops::Deref for StateRefMut<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.r
    }
}

impl std::ops::DerefMut for StateRefMut<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.r
    }
}

impl StateCell {
    pub fn new(st: State) -> StateCell {
        StateCell {
            lock: BigLock::new(),
            cell: RefCell::new(st),
        }
    }

    pub fn borrow(&self) -> StateRef<'_> {
        let g = self.lock.guard();
        StateRef {
            r: self.cell.borrow(),
            _g: g,
        }
    }

    pub fn borrow_mut(&self) -> StateRefMut<'_> {
        let g = self.lock.guard();
        StateRefMut {
            r: self.cell.borrow_mut(),
            _g: g,
        }
    }
}

/// A generation counter with a condition variable: waiters read the
/// generation, check their condition, and sleep until it changes.
pub(crate) struct Gen {
    m: Mutex<u64>,
    cv: Condvar,
}

impl Gen {
    fn new() -> Gen {
        Gen {
            m: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    pub fn get(&self) -> u64 {
        *self.m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn bump(&self) {
        let mut g = self.m.lock().unwrap_or_else(|e| e.into_inner());
        *g = g.wrapping_add(1);
        self.cv.notify_all();
    }

    /// Sleeps until the generation differs from `seen` or `timeout` passes.
    pub fn wait(&self, seen: u64, timeout: Duration) {
        let g = self.m.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .cv
            .wait_timeout_while(g, timeout, |g| *g == seen)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// Kernel mutex / condition variable bookkeeping of the multi-threaded mode:
/// a release counter for mutex waiters and a broadcast counter per
/// condition variable (so a waiter wakes only for its own `cv`).
#[derive(Default)]
pub(crate) struct SyncState {
    pub mutex_releases: u64,
    pub cv_gens: HashMap<usize, u64>,
}

/// State of the multi-threaded mode.
pub(crate) struct Mt {
    /// Bumped whenever a put or service procedure finishes (stream heads
    /// receive messages in put procedures): what syscalls and qprocsoff
    /// wait on.
    pub events: Gen,
    /// Bumped whenever a queue is added to the run queue.
    pub work: Gen,
    pub sync: Mutex<SyncState>,
    pub sync_cv: Condvar,
    pub shutdown: AtomicBool,
    /// Per participating thread: (name, what it is doing now).
    pub activity: Mutex<BTreeMap<u64, (String, String)>>,
}

/// Per-world core: the state cell. Shared (`Arc`) by the `World` handles and
/// the worker threads of a multi-threaded world.
pub(crate) struct Core {
    pub st: StateCell,
    /// Present in the multi-threaded mode.
    pub mt: Option<Mt>,
    /// Serialises worlds of one variant; released with the last reference.
    pub _vlock: Option<crate::variant::VariantLock>,
}

// SAFETY: every access to the state and to the raw structures it owns goes
// through the world lock (see the module documentation); the raw pointers
// inside are addresses of objects owned by this world.
unsafe impl Sync for Core {}
// SAFETY: as above; nothing in a `Core` is tied to the creating thread.
unsafe impl Send for Core {}

impl Core {
    pub fn new(name: &str, threaded: bool, vlock: crate::variant::VariantLock) -> Core {
        Core {
            st: StateCell::new(State::new(name)),
            mt: threaded.then(|| Mt {
                events: Gen::new(),
                work: Gen::new(),
                sync: Mutex::new(SyncState::default()),
                sync_cv: Condvar::new(),
                shutdown: AtomicBool::new(false),
                activity: Mutex::new(BTreeMap::new()),
            }),
            _vlock: Some(vlock),
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let mut s = self.st.borrow_mut();
        // Everything still alive or quarantined is released here; nothing of
        // this world can run any more (the last reference is going).
        // SAFETY: every pointer below was created by `Box::into_raw` in this
        // world and is released exactly once: live blocks are not in the
        // graveyards, and the graveyards hold each freed object once.
        unsafe {
            for &m in s.mblk_live.iter() {
                drop(Box::from_raw(m as *mut mblk_t));
            }
            for &d in s.dblk_live.iter() {
                drop(Box::from_raw(d as *mut DBox));
            }
            for &m in s.mblk_grave.iter() {
                drop(Box::from_raw(m));
            }
            for &d in s.dblk_grave.iter() {
                drop(Box::from_raw(d));
            }
            for &p in s.pairs.iter() {
                drop(Box::from_raw(p));
            }
            for &b in s.bands.iter() {
                drop(Box::from_raw(b));
            }
            for &p in s.slots.values() {
                drop(Box::from_raw(p));
            }
            for &p in s.pt_grave.iter() {
                drop(Box::from_raw(p));
            }
            if !s.dip.is_null() {
                drop(Box::from_raw(s.dip as *mut u64));
            }
        }
        s.mblk_live.clear();
        s.dblk_live.clear();
        s.mblk_grave.clear();
        s.dblk_grave.clear();
        s.pairs.clear();
        s.queue_set.clear();
        s.bands.clear();
        s.slots.clear();
        s.pt_grave.clear();
        s.dip = ptr::null_mut();
    }
}

thread_local! {
    static CURRENT: Cell<*const Core> = const { Cell::new(ptr::null()) };
}

/// Makes `core` the current world of this thread until dropped.
pub(crate) struct Enter {
    prev: *const Core,
}

impl Enter {
    pub fn new(core: &Core) -> Enter {
        let prev = CURRENT.with(|c| c.replace(core as *const Core));
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// The current world of this thread. A kernel function called with no world
/// installed is a simulator bug; since it is called from C (where unwinding is
/// not allowed) the process is aborted with a message.
pub(crate) fn core() -> &'static Core {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        eprintln!("ptm-sim: a kernel function was called with no current World on this thread");
        std::process::abort();
    }
    // SAFETY: `p` was installed by `Enter::new` from a live `&Core` (owned by
    // a `World` or a worker's `Arc`) and is uninstalled before that reference
    // ends; all access goes through the world lock.
    unsafe { &*p }
}

/// The multi-threaded state of the current world, if it is threaded.
pub(crate) fn mt() -> Option<&'static Mt> {
    core().mt.as_ref()
}

/// Whether the current world is multi-threaded.
pub(crate) fn is_mt() -> bool {
    core().mt.is_some()
}

/// Runs `f` with the world lock held (for raw queue and message work). `f`
/// must not call driver code.
pub(crate) fn locked<R>(f: impl FnOnce() -> R) -> R {
    let _g = core().st.lock.guard();
    f()
}

/// Aborts if the calling thread holds the world lock: it is about to block
/// (or to call driver code, which may block), which would deadlock the world.
pub(crate) fn assert_unlocked(what: &str) {
    if core().st.lock.held_by_me() {
        eprintln!("ptm-sim: {what} with the world lock held (simulator bug)");
        std::process::abort();
    }
}

/// Records what the calling thread is doing (multi-threaded mode), for the
/// dump of thread states a watchdog prints.
pub(crate) fn set_activity(what: impl FnOnce() -> String) {
    if let Some(m) = mt() {
        let me = thread_token();
        let name = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_string();
        let what = what();
        let mut a = m.activity.lock().unwrap_or_else(|e| e.into_inner());
        a.insert(me, (name, what));
    }
}

/// Multi-threaded mode: waits (without the world lock) until `cond`, checked
/// with the world lock held, is true, or `limit` passes. Returns whether
/// `cond` became true. Single-threaded: checks once.
pub(crate) fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let Some(m) = mt() else {
        return locked(&mut cond);
    };
    assert_unlocked(what);
    let start = Instant::now();
    let mut announced = false;
    loop {
        let g0 = m.events.get();
        if locked(&mut cond) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        if !announced {
            set_activity(|| format!("waiting: {what}"));
            announced = true;
        }
        m.events.wait(g0, Duration::from_millis(20));
    }
}

/// Multi-threaded mode: announces that something waiters may look at has
/// changed.
pub(crate) fn bump_events() {
    if let Some(m) = mt() {
        m.events.bump();
    }
}

/// Runs `f` on the current world's state.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let c = core();
    let _g = c.st.lock.guard();
    match c.st.cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => {
            eprintln!("ptm-sim: re-entrant use of the world state (simulator bug)");
            std::process::abort();
        }
    }
}

/// Records an anomaly in the current world.
pub(crate) fn anomaly(what: impl Into<String>) {
    with(|s| s.anomaly(what));
}

/// Appends a trace event to the current world.
pub(crate) fn trace(ev: TraceEvent) {
    with(|s| {
        if s.tracing {
            s.trace.push(ev)
        }
    });
}

/// Records a note in the trace of the current world.
pub(crate) fn note(s: impl Into<String>) {
    trace(TraceEvent::Note(s.into()));
}
