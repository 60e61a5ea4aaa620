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
    /// A failed ASSERT the world let pass (see [`tolerate_assertions`]):
    /// its expression and where it is.
    Assertion(String),
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

/// What the world adds to a failure report (its trace so far).
static REPORT_HOOK: std::sync::OnceLock<fn() -> String> = std::sync::OnceLock::new();

/// Sets what the world adds to every failure report.
pub(crate) fn set_report_hook(hook: fn() -> String) {
    let _ = REPORT_HOOK.set(hook);
}

/// A kernel failure: reports it and ends the process (see the module
/// documentation).
pub fn fail(msg: &str) -> ! {
    let label = LABEL
        .try_lock()
        .map(|l| l.clone())
        .unwrap_or_else(|_| "?".into());
    let world = REPORT_HOOK.get().map(|h| h()).unwrap_or_default();
    eprintln!(
        "\n*** kernel failure in the real-code world ({label}):\n{msg}\n--- threads ---\n{}{world}",
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

/// A service procedure enabled its own queue `n` times in a row while it
/// ran (csrc/hooks.c, `qenable_locked`): runservice would loop for ever.
#[unsafe(no_mangle)]
pub extern "C" fn kp_livelock(module: *const c_char, readside: c_int, dev: u64, n: u64) -> ! {
    fail(&format!(
        "livelock: the service procedure of {}'s {} queue (device {},{}) enabled its own \
         queue {n} times in a row while running, and would go on for ever: a message it puts \
         back and can never take (a high-priority message held by flow control?)",
        cstr(module),
        if readside != 0 { "read" } else { "write" },
        dev >> 32,
        dev & 0xffff_ffff,
    ))
}

#[unsafe(no_mangle)]
pub extern "C" fn kp_absent(name: *const c_char) -> ! {
    fail(&format!(
        "{} was called: the real-code world does not provide it",
        cstr(name)
    ))
}

/// The ASSERT expressions a failure of which the kernel lets pass.
static TOLERATED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// From now on a failed ASSERT of one of `exprs` is recorded as an
/// [`Event::Assertion`] and execution goes on past it, as on a non-DEBUG
/// kernel (which has no such check) or on a DEBUG one with illumos's
/// `aok` set (assfail then returns); every other failed ASSERT is a
/// kernel failure.
pub(crate) fn tolerate_assertions(exprs: &[&'static str]) {
    *TOLERATED.lock().unwrap_or_else(|e| e.into_inner()) = exprs.to_vec();
}

/// `assfail`: a failed ASSERT (DEBUG kernels).
#[unsafe(no_mangle)]
pub extern "C" fn assfail(a: *const c_char, f: *const c_char, l: c_int) -> c_int {
    let (expr, file) = (cstr(a), cstr(f));
    let tolerated = TOLERATED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&expr.as_str());
    if tolerated {
        let base = file.rsplit('/').next().unwrap_or(&file);
        event(Event::Assertion(format!("{expr} ({base}:{l})")));
        return 0;
    }
    fail(&format!(
        "assertion failed: {expr}, file: {file}, line: {l}"
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

/// illumos's default terminal modes, the root node's `ttymodes` property
/// as a `struct termios` (36 bytes: four 32-bit flag words, 19 control
/// characters, one byte of padding). illumos ships them in its root-node
/// options configuration in `stty -g` form,
/// `2502:1805:bd:8a3b:3:1c:7f:15:4:0:0:0:11:13:1a:19:12:f:17:16`:
/// iflag BRKINT|ICRNL|IXON|IMAXBEL, oflag OPOST|ONLCR|TAB3, cflag
/// B38400|CS8|CREAD, lflag ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN,
/// and INTR ^C, QUIT ^\, ERASE DEL, KILL ^U, EOF ^D (VMIN shares its
/// slot), EOL/EOL2/SWTCH unset (VTIME 0), START ^Q, STOP ^S, SUSP ^Z,
/// DSUSP ^Y, REPRINT ^R, DISCARD ^O, WERASE ^W, LNEXT ^V. ldterm (and
/// ptem, for its cflag) read it at open; without it ldterm warns and runs
/// with every mode off.
pub const TTYMODES: [u8; 36] = {
    let mut t = [0u8; 36];
    let flags: [u32; 4] = [0x2502, 0x1805, 0xbd, 0x8a3b];
    let mut i = 0;
    while i < 4 {
        let b = flags[i].to_le_bytes();
        t[4 * i] = b[0];
        t[4 * i + 1] = b[1];
        t[4 * i + 2] = b[2];
        t[4 * i + 3] = b[3];
        i += 1;
    }
    let cc: [u8; 16] = [
        0x03, 0x1c, 0x7f, 0x15, 0x04, 0, 0, 0, 0x11, 0x13, 0x1a, 0x19, 0x12, 0x0f, 0x17, 0x16,
    ];
    let mut j = 0;
    while j < 16 {
        t[16 + j] = cc[j];
        j += 1;
    }
    t
};

/// Root-node properties (see `ddi_getlongprop` in csrc/devices.c): only
/// `ttymodes`.
///
/// # Safety
/// `name` is a NUL-terminated string and `lenp` points at a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kp_property(name: *const c_char, lenp: *mut usize) -> *const c_void {
    if cstr(name) != "ttymodes" || lenp.is_null() {
        return std::ptr::null();
    }
    // SAFETY: the caller passes a pointer to its length variable.
    unsafe { *lenp = TTYMODES.len() };
    TTYMODES.as_ptr().cast()
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
