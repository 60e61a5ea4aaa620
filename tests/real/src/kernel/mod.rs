//! The project's kernel layer, Rust half: what a kernel provides beneath
//! illumos's STREAMS code (see `csrc/kp.h` for the C half and the split).
//!
//! * [`sched`]: threads, the baton of deterministic mode, the clock,
//!   timeouts, the task queue that runs STREAMS service procedures;
//! * [`sync`]: mutexes, condition variables and reader/writer locks;
//! * [`kmem`]: kmem_alloc, kmem caches, vmem arenas;
//! * [`cred`]: credentials, privileges, zones;
//! * here: boot, failure reports, and the events the kernel records.
//!
//! A kernel failure -- a failed ASSERT, a `panic`/`cmn_err(CE_PANIC)`, a
//! lock misused, a deadlock, a function the world does not provide --
//! prints what happened and every thread's state and ends the process: on
//! a real machine it would be a panic, and the kernel's state is no longer
//! something a later test could trust.

pub mod cred;
pub(crate) mod ffi;
pub mod kmem;
pub mod sched;
pub mod symbols;
pub mod sync;

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Mutex;

/// Something the kernel did that the world's trace shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A signal sent to a process (`'p'`) or process group (`'g'`).
    Signal { to: char, id: i32, sig: i32 },
    /// `zone_rele(NULL)`: a panic on illumos.
    NullZoneRele,
    /// `valid_ephemeral_uid/gid(NULL, ...)` for a large id: a NULL
    /// dereference on illumos.
    NullZoneDeref(&'static str),
    /// A `cmn_err` message below `CE_PANIC`.
    CmnErr { level: i32, msg: String },
    /// A driver created (or removed: `add` false, all of them when the
    /// name is "(null)") a minor node.
    MinorNode {
        add: bool,
        major: u32,
        name: String,
        spec_type: i32,
        minor: u32,
        node_type: String,
        flag: i32,
    },
}

static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());

pub(crate) fn event(e: Event) {
    EVENTS.lock().unwrap_or_else(|e| e.into_inner()).push(e);
}

/// The events recorded since the last call.
pub fn take_events() -> Vec<Event> {
    std::mem::take(&mut *EVENTS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// What the current world is (named in failure reports).
static LABEL: Mutex<String> = Mutex::new(String::new());

pub(crate) fn set_label(label: &str) {
    *LABEL.lock().unwrap_or_else(|e| e.into_inner()) = label.to_owned();
}

/// A kernel failure: reports it and ends the process (see the module
/// documentation).
pub fn fail(msg: &str) -> ! {
    let label = LABEL
        .try_lock()
        .map(|l| l.clone())
        .unwrap_or_else(|_| "?".into());
    eprintln!(
        "\n*** kernel failure in the real-code world ({label}):\n{msg}\n--- threads ---\n{}",
        sched::dump()
    );
    std::process::abort()
}

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return "(null)".into();
    }
    // SAFETY: the kernel passes NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[unsafe(no_mangle)]
pub extern "C" fn kp_fail(msg: *const c_char) -> ! {
    fail(&format!("panic: {}", cstr(msg)))
}

#[unsafe(no_mangle)]
pub extern "C" fn kp_absent(name: *const c_char) -> ! {
    fail(&format!(
        "{} was called: the real-code world does not provide it",
        cstr(name)
    ))
}

/// `assfail`: a failed ASSERT (DEBUG kernels).
#[unsafe(no_mangle)]
pub extern "C" fn assfail(a: *const c_char, f: *const c_char, l: c_int) -> c_int {
    fail(&format!(
        "assertion failed: {}, file: {}, line: {l}",
        cstr(a),
        cstr(f)
    ))
}

/// `assfail3`: a failed VERIFY3/ASSERT3 comparison.
#[unsafe(no_mangle)]
pub extern "C" fn assfail3(
    a: *const c_char,
    lv: u64,
    op: *const c_char,
    rv: u64,
    f: *const c_char,
    l: c_int,
) {
    fail(&format!(
        "assertion failed: {} ({lv:#x} {} {rv:#x}), file: {}, line: {l}",
        cstr(a),
        cstr(op),
        cstr(f)
    ))
}

#[unsafe(no_mangle)]
pub extern "C" fn kp_cmn_err(level: c_int, msg: *const c_char) {
    event(Event::CmnErr {
        level,
        msg: cstr(msg),
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn kp_signal_event(kind: c_int, id: c_int, sig: c_int) {
    event(Event::Signal {
        to: char::from(kind as u8),
        id,
        sig,
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn kp_minor_node_event(
    add: c_int,
    major: u32,
    name: *const c_char,
    spec_type: c_int,
    minor: u32,
    node_type: *const c_char,
    flag: c_int,
) {
    event(Event::MinorNode {
        add: add != 0,
        major,
        name: cstr(name),
        spec_type,
        minor,
        node_type: cstr(node_type),
        flag,
    });
}

/// Root-node properties: none yet (see `kp_property` in csrc/devices.c).
#[unsafe(no_mangle)]
pub extern "C" fn kp_property(name: *const c_char, lenp: *mut usize) -> *const c_void {
    let _ = (cstr(name), lenp);
    std::ptr::null()
}

// ---------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------

/// The loadable modules booted with the kernel, as modctl would load them.
macro_rules! modules {
    ($($name:literal => $info:ident, $init:ident, $fini:ident;)*) => {
        unsafe extern "C" {
            $(
                fn $info(mi: *mut c_void) -> c_int;
                fn $init() -> c_int;
                fn $fini() -> c_int;
            )*
        }
        /// (name, _info, _init, _fini) of each module in the kernel.
        pub(crate) const MODULES: &[(&std::ffi::CStr, ffi::InfoFn, ffi::EntryFn, ffi::EntryFn)] =
            &[$(($name, $info, $init, $fini)),*];
    };
}

modules! {
    c"pts" => pts__info, pts__init, pts__fini;
    c"ptem" => ptem__info, ptem__init, ptem__fini;
    c"ldterm" => ldterm__info, ldterm__init, ldterm__fini;
    c"ttcompat" => ttcompat__info, ttcompat__init, ttcompat__fini;
    c"pckt" => pckt__info, pckt__init, pckt__fini;
    c"ptm" => ptm__info, ptm__init, ptm__fini;
}

/// Loads module `name` from its entry points: `_info`, then `_init`.
pub(crate) fn mod_load(
    name: &'static std::ffi::CStr,
    info: ffi::InfoFn,
    init: ffi::EntryFn,
) -> c_int {
    // SAFETY: name is a static string (modctl keeps it); the entry points
    // are a module's, which the kernel may call now.
    unsafe { ffi::kp_mod_load(name.as_ptr(), info, init) }
}

/// Unloads module `name`: EBUSY while its driver is held, else `_fini`'s
/// answer.
pub(crate) fn mod_unload(name: &'static std::ffi::CStr, fini: ffi::EntryFn) -> c_int {
    // SAFETY: as for mod_load.
    unsafe { ffi::kp_mod_unload(name.as_ptr(), fini) }
}

static BOOTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// Boots the kernel once per process, in `mode`: the device tables and
/// the clone driver, `streams_msg_init` and `strinit` (STREAMS caches and background threads),
/// the callout thread, and the modules pts, ptem, ldterm, ttcompat and
/// pckt, loaded as modctl loads them. ptm is not loaded: each world loads
/// the variant it runs.
pub fn boot(mode: sched::Mode) -> Result<(), String> {
    if !sched::set_mode(mode) {
        return Err(format!(
            "this process's kernel runs in {:?} mode; a world in {mode:?} mode needs a process of its own",
            sched::mode()
        ));
    }
    BOOTED.get_or_init(|| {
        set_label("boot");
        sched::init_taskq();
        cred::init_kcred();
        sched::attach_process_thread("boot", std::ptr::null_mut());
        // SAFETY: boot runs once, first, on an attached thread.
        unsafe {
            ffi::kp_devices_init();
            // Message caches (illumos makes them when kmem starts), then
            // STREAMS itself.
            ffi::streams_msg_init();
            ffi::strinit();
            // Stream heads' put procedure, traced (csrc/hooks.c).
            ffi::kp_trace_install();
        }
        if sched::deterministic() {
            sched::start_callout_thread();
            sched::start_watchdog();
        }
        for &(name, info, init, _) in MODULES.iter().filter(|m| m.0 != c"ptm") {
            let rc = mod_load(name, info, init);
            if rc != 0 {
                fail(&format!("boot: loading {name:?} failed: {rc}"));
            }
        }
        sched::settle();
        sched::detach_process_thread();
    });
    Ok(())
}
