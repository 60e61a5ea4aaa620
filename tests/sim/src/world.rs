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

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::ffi::c_void;
use std::ptr;

use ptm::sys::*;

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
}

/// A credential handed out as an opaque `cred_t *`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    /// Holds `PRIV_SYS_DEVICES` (what `drv_priv` checks).
    pub privileged: bool,
}

impl Cred {
    /// The superuser: uid 0, gid 0, all privileges.
    pub const fn root() -> Cred {
        Cred {
            uid: 0,
            gid: 0,
            privileged: true,
        }
    }
    /// An ordinary user without `PRIV_SYS_DEVICES`.
    pub const fn user(uid: u32, gid: u32) -> Cred {
        Cred {
            uid,
            gid,
            privileged: false,
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

/// A recorded `ddi_create_minor_node` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinorNode {
    pub name: String,
    pub spec_type: i32,
    pub minor: u32,
    pub node_type: String,
    pub flag: i32,
}

/// A message as a stream head received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgDesc {
    /// `db_type` of the first block.
    pub mtype: u8,
    pub band: u8,
    /// For data-class messages (M_DATA/M_PROTO/M_PCPROTO) the byte count
    /// of the whole message; otherwise that of the first block.
    pub len: usize,
    /// The bytes (same rule as `len`), or a decoded form for
    /// M_SETOPTS / M_IOCACK / M_IOCNAK / M_IOCTL, whose other bytes are
    /// not meaningful.
    pub bytes: Vec<u8>,
    /// Decoded detail, e.g. `cmd=0x5001 count=0 rval=0 error=22`.
    pub detail: String,
}

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// A system call made through the [`crate::World`] API and its result.
    Sys { call: String, result: String },
    /// A message arriving at a stream head's read put procedure.
    HeadRecv { stream: StreamId, msg: MsgDesc },
    /// `zone_rele(NULL)`: a kernel panic on real illumos.
    NullZoneRele,
    /// `valid_ephemeral_uid/gid(NULL, id > 2^31)`: a NULL dereference on
    /// real illumos.
    NullZoneDeref(&'static str),
    /// Something worth recording that is not an error (e.g. a close that
    /// would have waited 15 s for its write queue to drain).
    Note(String),
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
    pub bands: Vec<*mut qband_t>,
    pub streams: Vec<Stream>,
    pub services_run: u64,

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
    pub held_mutexes: HashSet<usize>,

    pub fds: BTreeMap<i32, FdEntry>,
    pub next_iocid: u32,
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
            bands: Vec::new(),
            streams: Vec::new(),
            services_run: 0,
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
            held_mutexes: HashSet::new(),
            fds: BTreeMap::new(),
            next_iocid: 1,
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

    /// Display name of a stream: `M<minor>`, `S<minor>`, or a label.
    pub fn stream_name(&self, id: StreamId) -> String {
        match self.streams.get(id) {
            Some(s) => match (s.kind, s.minor) {
                (StreamKind::Manager, Some(m)) => format!("M{m}"),
                (StreamKind::Subsidiary, Some(m)) => format!("S{m}"),
                _ => s.label.to_string(),
            },
            None => format!("stream#{id}"),
        }
    }
}

/// Per-world core: the state cell. Boxed so its address is stable.
pub(crate) struct Core {
    pub st: RefCell<State>,
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
    // SAFETY: `p` was installed by `Enter::new` from a live `&Core` (boxed
    // inside a `World`) and is uninstalled before that borrow ends; all
    // access goes through the `RefCell`.
    unsafe { &*p }
}

/// Runs `f` on the current world's state.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let c = core();
    match c.st.try_borrow_mut() {
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
    with(|s| s.trace.push(ev));
}
