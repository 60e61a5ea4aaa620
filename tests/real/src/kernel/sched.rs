//! Threads, the clock, timeouts and the task queue: who runs kernel code,
//! and when.
//!
//! # Two modes
//!
//! The mode is chosen once per process, when the kernel boots:
//!
//! * **Deterministic** (scenarios, property tests, traces): every thread
//!   that runs kernel code -- the test's own thread making system calls,
//!   the STREAMS background threads, task-queue workers, the callout
//!   thread -- is a real OS thread, but only one of them runs at a time.
//!   The running one holds the *baton*; it passes it on only when it
//!   blocks (a contended mutex, a condition variable, an idle worker), to
//!   the first runnable thread in FIFO order. A run is therefore a single
//!   interleaving, the same on every run.
//!
//!   When nothing is runnable: a thread waiting for the world to settle
//!   (the test thread after a system call) runs next; else the clock jumps
//!   to the earliest timeout, if it is due within [`IDLE_CLOCK_LIMIT`]
//!   ticks of the last time a process thread ran; else a process thread
//!   in an interruptible sleep (`cv_wait_sig`) is woken as if by a signal,
//!   which is how a system call that would block forever returns; else
//!   every thread is blocked for good, and that is a deadlock: the world
//!   stops with each thread's wait.
//!
//! * **Threaded** (stress tests): threads run freely on the host's cores;
//!   blocking is real (`parking_lot_core`'s parking lot keyed by the
//!   address of the lock or condition variable), the clock is real time.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::ffi::{c_int, c_void};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::ffi::{self, kthread_t, proc_t};

/// How the kernel's threads are run (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Deterministic,
    Threaded,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Fixes the mode for this process; false if it was already fixed to the
/// other one.
pub(crate) fn set_mode(mode: Mode) -> bool {
    *MODE.get_or_init(|| mode) == mode
}

pub(crate) fn mode() -> Mode {
    *MODE.get().unwrap_or(&Mode::Deterministic)
}

pub(crate) fn deterministic() -> bool {
    mode() == Mode::Deterministic
}

/// Ticks per second (`hz`).
pub const HZ: u64 = 100;
/// How far the clock may jump ahead of the last moment a process thread
/// ran before an idle world is taken to be blocked for good: one minute
/// (the longest timeouts the STREAMS code uses are 15 s).
pub const IDLE_CLOCK_LIMIT: u64 = 60 * HZ;

pub(crate) type Tid = usize;

/// Why a blocked thread was made runnable again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    Normal,
    TimedOut,
    Interrupted,
}

/// What a blocked thread waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A mutex, to be handed over by its owner.
    Mutex(usize),
    /// A reader/writer lock to be released.
    Rw(usize),
    /// A condition variable, maybe with a deadline, maybe interruptibly.
    Cv {
        cv: usize,
        deadline: Option<u64>,
        sig: bool,
    },
    /// The world to have nothing else to do (a test thread between calls).
    Settle,
    /// A task to run (an idle task-queue worker).
    Task,
    /// A callout to run (the idle callout thread).
    Callout,
    /// A running callout to finish (untimeout).
    CalloutDone(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    Runnable,
    Blocked(Wait),
    Exited,
}

/// Whether a thread acts for a process (system calls: interruptible
/// sleeps are woken when the world is otherwise blocked) or for the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Process,
    Kernel,
}

struct Thread {
    name: String,
    kind: Kind,
    state: State,
    wake: Wake,
    baton: Arc<Condvar>,
    timer: Option<(u64, u64)>,
    /// Its `kthread_t`, as lock words name owners.
    kt: usize,
}

type TaskFn = unsafe extern "C" fn(*mut c_void);

#[derive(Clone, Copy)]
struct Callout {
    id: u64,
    func: TaskFn,
    arg: usize,
}

enum Timer {
    Wait(Tid),
    Callout(Callout),
}

/// The deterministic scheduler's state (one per process).
struct Sched {
    threads: Vec<Thread>,
    current: Option<Tid>,
    runq: VecDeque<Tid>,
    /// Threads blocked on each mutex, rwlock or condition variable address.
    waiters: BTreeMap<usize, VecDeque<Tid>>,
    clock: u64,
    last_process_run: u64,
    timers: BTreeMap<(u64, u64), Timer>,
    seq: u64,
    due: VecDeque<Callout>,
    running_callout: Option<u64>,
    tasks: VecDeque<(TaskFn, usize)>,
}

static SCHED: Mutex<Sched> = Mutex::new(Sched {
    threads: Vec::new(),
    current: None,
    runq: VecDeque::new(),
    waiters: BTreeMap::new(),
    clock: 1000,
    last_process_run: 1000,
    timers: BTreeMap::new(),
    seq: 0,
    due: VecDeque::new(),
    running_callout: None,
    tasks: VecDeque::new(),
});

thread_local! {
    static ME: Cell<Option<Tid>> = const { Cell::new(None) };
}

fn sched() -> MutexGuard<'static, Sched> {
    SCHED.lock().unwrap_or_else(|e| e.into_inner())
}

fn me() -> Tid {
    ME.with(Cell::get)
        .unwrap_or_else(|| super::fail("kernel code on a thread the scheduler does not know"))
}

/// The calling thread's `kthread_t` (as the lock words record owners).
pub(crate) fn curthread() -> usize {
    // SAFETY: no preconditions; NULL when the thread was never attached.
    let t = unsafe { ffi::kp_curthread_get() } as usize;
    if t == 0 {
        super::fail("kernel code on a thread that has no kthread_t");
    }
    t
}

/// The lowest address of the calling thread's stack.
fn stack_base() -> usize {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread;
    // getstack reads it; attr is destroyed afterwards.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            super::fail("pthread_getattr_np failed");
        }
        let mut addr: *mut c_void = std::ptr::null_mut();
        let mut size: usize = 0;
        libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        addr as usize
    }
}

impl Sched {
    fn add(&mut self, name: String, kind: Kind, state: State) -> Tid {
        self.threads.push(Thread {
            name,
            kind,
            state,
            wake: Wake::Normal,
            baton: Arc::new(Condvar::new()),
            timer: None,
            kt: 0,
        });
        self.threads.len() - 1
    }

    fn make_runnable(&mut self, t: Tid, why: Wake) {
        if let Some(key) = self.threads[t].timer.take() {
            self.timers.remove(&key);
        }
        self.threads[t].state = State::Runnable;
        self.threads[t].wake = why;
        self.runq.push_back(t);
    }

    fn first_blocked(&self, pred: impl Fn(&Thread) -> bool) -> Option<Tid> {
        self.threads
            .iter()
            .position(|t| matches!(t.state, State::Blocked(_)) && pred(t))
    }

    fn remove_waiter(&mut self, addr: usize, t: Tid) {
        if let Some(q) = self.waiters.get_mut(&addr) {
            q.retain(|&x| x != t);
            if q.is_empty() {
                self.waiters.remove(&addr);
            }
        }
    }

    /// Advances the clock to the earliest timer if that is allowed, and
    /// fires every timer then due. False when nothing could be fired.
    fn fire_timers(&mut self) -> bool {
        let Some((&(deadline, _), _)) = self.timers.iter().next() else {
            return false;
        };
        if deadline > self.last_process_run + IDLE_CLOCK_LIMIT {
            return false;
        }
        self.clock = self.clock.max(deadline);
        self.fire_due();
        true
    }

    fn fire_due(&mut self) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > self.clock {
                break;
            }
            match entry.remove() {
                Timer::Wait(t) => {
                    self.threads[t].timer = None;
                    if let State::Blocked(Wait::Cv { cv, .. }) = self.threads[t].state {
                        self.remove_waiter(cv, t);
                    }
                    self.make_runnable(t, Wake::TimedOut);
                }
                Timer::Callout(c) => {
                    self.due.push_back(c);
                    if let Some(t) =
                        self.first_blocked(|t| t.state == State::Blocked(Wait::Callout))
                    {
                        self.make_runnable(t, Wake::Normal);
                    }
                }
            }
        }
    }

    /// Hands the baton to the next thread to run (see the module docs).
    fn dispatch(&mut self) {
        loop {
            if let Some(t) = self.runq.pop_front() {
                self.current = Some(t);
                self.threads[t].state = State::Running;
                if self.threads[t].kind == Kind::Process {
                    self.last_process_run = self.clock;
                }
                self.threads[t].baton.notify_one();
                return;
            }
            if let Some(t) = self.first_blocked(|t| t.state == State::Blocked(Wait::Settle)) {
                self.make_runnable(t, Wake::Normal);
                continue;
            }
            if self.fire_timers() {
                continue;
            }
            if let Some(t) = self.first_blocked(|t| {
                t.kind == Kind::Process
                    && matches!(t.state, State::Blocked(Wait::Cv { sig: true, .. }))
            }) {
                if let State::Blocked(Wait::Cv { cv, .. }) = self.threads[t].state {
                    self.remove_waiter(cv, t);
                }
                self.make_runnable(t, Wake::Interrupted);
                continue;
            }
            let dump = self.dump();
            self.current = None;
            super::fail(&format!("deadlock: every thread is blocked\n{dump}"));
        }
    }

    fn dump(&self) -> String {
        let mut s = String::new();
        for (i, t) in self.threads.iter().enumerate() {
            if t.state != State::Exited {
                let _ = writeln!(s, "  thread {i} {} ({:?}): {:?}", t.name, t.kind, t.state);
            }
        }
        let _ = writeln!(
            s,
            "  clock {} ticks, {} timer(s)",
            self.clock,
            self.timers.len()
        );
        s
    }
}

/// Blocks the calling thread (deterministic mode) until it holds the baton
/// again, after setting its state to `wait`. Returns why it was woken.
fn block(
    mut s: MutexGuard<'static, Sched>,
    t: Tid,
    wait: Wait,
) -> (MutexGuard<'static, Sched>, Wake) {
    s.threads[t].state = State::Blocked(wait);
    s.current = None;
    s.dispatch();
    let baton = Arc::clone(&s.threads[t].baton);
    while s.current != Some(t) {
        s = baton.wait(s).unwrap_or_else(|e| e.into_inner());
    }
    let why = s.threads[t].wake;
    (s, why)
}

/// Waits for the baton as a newly started thread.
fn await_baton(t: Tid) {
    let mut s = sched();
    let baton = Arc::clone(&s.threads[t].baton);
    while s.current != Some(t) {
        s = baton.wait(s).unwrap_or_else(|e| e.into_inner());
    }
}

// ---------------------------------------------------------------------------
// Locks and condition variables, deterministic mode (called by sync.rs)
// ---------------------------------------------------------------------------
//
// A lock word holds its owner's kthread pointer, with WAITERS set while a
// thread is blocked on it. In deterministic mode only the running thread
// touches lock words, so under the scheduler's lock the word cannot change
// behind our back.

/// The lock word's "someone is blocked on this" bit.
pub(crate) const WAITERS: usize = 1;

fn addr_of(word: &AtomicUsize) -> usize {
    word as *const AtomicUsize as usize
}

/// `mutex_enter` found the mutex held by another thread: waits until the
/// owner hands it over (the word then names the caller).
pub(crate) fn det_mutex_wait(word: &AtomicUsize, me_kt: usize) {
    let t = me();
    let mut s = sched();
    let w = word.load(Ordering::Relaxed);
    if w == 0 {
        word.store(me_kt, Ordering::Relaxed);
        return;
    }
    word.store(w | WAITERS, Ordering::Relaxed);
    s.waiters.entry(addr_of(word)).or_default().push_back(t);
    let _ = block(s, t, Wait::Mutex(addr_of(word)));
}

/// `mutex_exit` of a mutex with waiters: the first becomes its owner.
pub(crate) fn det_mutex_release(word: &AtomicUsize) {
    let mut s = sched();
    s.release_mutex(word);
}

impl Sched {
    fn release_mutex(&mut self, word: &AtomicUsize) {
        let addr = addr_of(word);
        match self.waiters.get_mut(&addr).and_then(VecDeque::pop_front) {
            Some(t) => {
                let more = self.waiters.get(&addr).is_some_and(|q| !q.is_empty());
                if !more {
                    self.waiters.remove(&addr);
                }
                let w = self.threads[t].kt | if more { WAITERS } else { 0 };
                word.store(w, Ordering::Release);
                self.make_runnable(t, Wake::Normal);
            }
            None => word.store(0, Ordering::Release),
        }
    }
}

/// A reader/writer lock at `addr` is unavailable: waits for a release.
pub(crate) fn det_rw_wait(addr: usize) {
    let t = me();
    let mut s = sched();
    s.waiters.entry(addr).or_default().push_back(t);
    let _ = block(s, t, Wait::Rw(addr));
}

/// A reader/writer lock at `addr` was released: every waiter retries.
pub(crate) fn det_rw_wake(addr: usize) {
    let mut s = sched();
    if let Some(q) = s.waiters.remove(&addr) {
        for t in q {
            s.make_runnable(t, Wake::Normal);
        }
    }
}

/// `cv_wait` and friends: releases the mutex `word` (under the
/// scheduler's lock, so no wakeup can be lost) and sleeps on `cv` for at
/// most `ticks`, interruptibly if `sig`. The caller re-enters the mutex.
pub(crate) fn det_cv_wait(cv: usize, word: &AtomicUsize, ticks: Option<u64>, sig: bool) -> Wake {
    let t = me();
    let mut s = sched();
    let deadline = ticks.map(|d| s.clock + d.max(1));
    if let Some(d) = deadline {
        s.seq += 1;
        let key = (d, s.seq);
        s.timers.insert(key, Timer::Wait(t));
        s.threads[t].timer = Some(key);
    }
    s.waiters.entry(cv).or_default().push_back(t);
    s.release_mutex(word);
    let (_s, why) = block(s, t, Wait::Cv { cv, deadline, sig });
    why
}

/// `cv_signal` (`all`: `cv_broadcast`).
pub(crate) fn det_cv_wake(cv: usize, all: bool) {
    let mut s = sched();
    let Some(q) = s.waiters.get_mut(&cv) else {
        return;
    };
    let woken: Vec<Tid> = if all {
        q.drain(..).collect()
    } else {
        q.pop_front().into_iter().collect()
    };
    if s.waiters.get(&cv).is_some_and(VecDeque::is_empty) {
        s.waiters.remove(&cv);
    }
    for t in woken {
        s.make_runnable(t, Wake::Normal);
    }
}

// ---------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------

/// Makes the calling OS thread a kernel thread acting for process `p`
/// (a test thread making system calls). In deterministic mode it takes
/// the baton: nothing else may be running.
pub(crate) fn attach_process_thread(name: &str, p: *mut proc_t) {
    let kt = {
        let mut s = sched();
        let t = s.add(name.to_owned(), Kind::Process, State::Running);
        if deterministic() {
            if let Some(cur) = s.current {
                let d = s.dump();
                super::fail(&format!(
                    "a test thread attached while thread {cur} runs (one world at a time)\n{d}"
                ));
            }
            s.current = Some(t);
        }
        ME.with(|m| m.set(Some(t)));
        drop(s);
        // SAFETY: p is a live process (or NULL for p0); the thread has no
        // kthread yet.
        unsafe { ffi::kp_thread_attach(p, stack_base()) }
    };
    sched().threads[me()].kt = kt as usize;
}

/// Undoes [`attach_process_thread`]: the world must have settled.
pub(crate) fn detach_process_thread() {
    let t = me();
    // SAFETY: the thread was attached, and no kernel code of it runs now.
    unsafe { ffi::kp_thread_detach() };
    let mut s = sched();
    s.threads[t].state = State::Exited;
    if s.current == Some(t) {
        s.current = None;
        if !s.runq.is_empty() {
            s.dispatch();
        }
    }
    ME.with(|m| m.set(None));
}

/// Lets every other thread run until the world has nothing left to do
/// (deterministic mode; a no-op when threaded).
pub(crate) fn settle() {
    if !deterministic() {
        return;
    }
    let t = me();
    let s = sched();
    let _ = block(s, t, Wait::Settle);
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Times the world settled: the watchdog's measure of progress.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// How long a deterministic world may go without settling before the
/// watchdog calls it a hang or a livelock (`PTM_REAL_WATCHDOG_SECS`).
fn watchdog_secs() -> u64 {
    std::env::var("PTM_REAL_WATCHDOG_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120)
}

/// Starts the watchdog (deterministic mode): a system call that does not
/// return -- a service procedure re-enabling itself forever, a thread
/// spinning -- becomes a kernel failure that names the world and shows
/// every thread, instead of a test that never ends.
pub(crate) fn start_watchdog() {
    let limit = watchdog_secs();
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let mut last = PROGRESS.load(Ordering::Relaxed);
            let mut still = 0;
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = PROGRESS.load(Ordering::Relaxed);
                let busy = SCHED.try_lock().map_or(true, |s| s.current.is_some());
                if now != last || !busy {
                    last = now;
                    still = 0;
                    continue;
                }
                still += 1;
                if still >= limit {
                    super::fail(&format!(
                        "watchdog: the world has not settled for {limit} s (a hang or a livelock \
                         in the kernel: a service procedure or thread that never stops)"
                    ));
                }
            }
        });
    if let Err(e) = spawned {
        super::fail(&format!("cannot start the watchdog: {e}"));
    }
}

/// Waits until the kernel has nothing left to do: deterministic mode
/// settles; threaded, it waits (up to a minute) until the task queue is
/// empty with every worker idle and no callout is due or running, seen
/// twice in a row a millisecond apart; returns whether it got there.
pub(crate) fn quiesce() -> bool {
    if deterministic() {
        settle();
        return true;
    }
    let idle = || {
        let tq = THREADED_TASKS.lock().unwrap_or_else(|e| e.into_inner());
        let tc = THREADED_CALLOUTS.lock().unwrap_or_else(|e| e.into_inner());
        tq.queue.is_empty()
            && tq.idle == tq.workers
            && tc.running.is_none()
            && tc
                .pending
                .keys()
                .next()
                .is_none_or(|k| k.0 > Instant::now())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet = 0;
    while quiet < 2 && Instant::now() < deadline {
        quiet = if idle() { quiet + 1 } else { 0 };
        std::thread::sleep(Duration::from_millis(1));
    }
    quiet >= 2
}

/// Threaded mode: records that the calling thread now waits for `wait`
/// (`None`: it runs again), for [`dump`]. Only on the slow paths (a
/// contended lock, a sleep), so that a watchdog can say who waits for what.
pub(crate) fn threaded_wait(wait: Option<Wait>) {
    let Some(t) = ME.with(Cell::get) else {
        return;
    };
    let mut s = sched();
    s.threads[t].state = wait.map_or(State::Running, State::Blocked);
}

/// Starts a kernel thread running `body` once it is scheduled.
pub(crate) fn spawn_kernel_thread(
    name: String,
    p: *mut proc_t,
    body: Box<dyn FnOnce() + Send>,
) -> *mut kthread_t {
    // SAFETY: p is a live process or NULL (p0).
    let kt = unsafe { ffi::kp_thread_alloc(p) };
    let ktu = kt as usize;
    let t = {
        let mut s = sched();
        let state = if deterministic() {
            State::Runnable
        } else {
            State::Running
        };
        let t = s.add(name.clone(), Kind::Kernel, state);
        s.threads[t].kt = ktu;
        if deterministic() {
            s.runq.push_back(t);
        }
        t
    };
    let spawned = std::thread::Builder::new()
        .name(name.clone())
        .stack_size(1 << 20)
        .spawn(move || {
            ME.with(|m| m.set(Some(t)));
            if deterministic() {
                await_baton(t);
            }
            // SAFETY: ktu is the kthread allocated for this thread above.
            unsafe { ffi::kp_thread_enter(ktu as *mut kthread_t, stack_base()) };
            body();
            exit_kernel_thread(t);
        });
    if let Err(e) = spawned {
        super::fail(&format!("cannot start kernel thread {name}: {e}"));
    }
    kt
}

fn exit_kernel_thread(t: Tid) {
    let mut s = sched();
    s.threads[t].state = State::Exited;
    if deterministic() {
        s.current = None;
        s.dispatch();
    }
}

/// `thread_create`: `func(arg)` on a new kernel thread of process `pp`.
#[unsafe(no_mangle)]
pub extern "C" fn thread_create(
    _stk: *mut c_void,
    _stksize: usize,
    func: Option<TaskFn>,
    arg: *mut c_void,
    _len: usize,
    pp: *mut proc_t,
    _state: c_int,
    _pri: c_int,
) -> *mut kthread_t {
    let Some(func) = func else {
        super::fail("thread_create without a function")
    };
    let arg = arg as usize;
    let n = THREADS_CREATED.fetch_add(1, Ordering::Relaxed);
    spawn_kernel_thread(
        format!("kthread-{n}"),
        pp,
        // SAFETY: the creator passes a function and the argument it takes.
        Box::new(move || unsafe { func(arg as *mut c_void) }),
    )
}

static THREADS_CREATED: AtomicU64 = AtomicU64::new(0);

// ---------------------------------------------------------------------------
// The clock
// ---------------------------------------------------------------------------

static BOOT: OnceLock<Instant> = OnceLock::new();
static HRTIME_SEQ: AtomicU64 = AtomicU64::new(0);

fn boot_instant() -> Instant {
    *BOOT.get_or_init(Instant::now)
}

/// The clock in ticks.
pub(crate) fn now_ticks() -> u64 {
    if deterministic() {
        sched().clock
    } else {
        1000 + boot_instant().elapsed().as_millis() as u64 / (1000 / HZ)
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn ddi_get_lbolt() -> libc::c_long {
    now_ticks() as libc::c_long
}

#[unsafe(no_mangle)]
pub extern "C" fn ddi_get_lbolt64() -> i64 {
    now_ticks() as i64
}

/// `gethrtime`: nanoseconds; in deterministic mode the tick clock plus a
/// call counter, so that it is strictly increasing and the same every run.
#[unsafe(no_mangle)]
pub extern "C" fn gethrtime() -> i64 {
    if deterministic() {
        let seq = HRTIME_SEQ.fetch_add(1, Ordering::Relaxed);
        (now_ticks() * (1_000_000_000 / HZ) + seq % 1000) as i64
    } else {
        boot_instant().elapsed().as_nanos() as i64 + 10_000_000_000
    }
}

// ---------------------------------------------------------------------------
// Callouts (timeout/untimeout)
// ---------------------------------------------------------------------------

static NEXT_CALLOUT: AtomicU64 = AtomicU64::new(1);

struct ThreadedCallouts {
    pending: BTreeMap<(Instant, u64), Callout>,
    running: Option<(u64, std::thread::ThreadId)>,
    started: bool,
}

static THREADED_CALLOUTS: Mutex<ThreadedCallouts> = Mutex::new(ThreadedCallouts {
    pending: BTreeMap::new(),
    running: None,
    started: false,
});
static THREADED_CALLOUT_CV: Condvar = Condvar::new();

/// `timeout(func, arg, ticks)`.
#[unsafe(no_mangle)]
pub extern "C" fn timeout(func: Option<TaskFn>, arg: *mut c_void, ticks: libc::c_long) -> usize {
    let Some(func) = func else {
        super::fail("timeout without a function")
    };
    let id = NEXT_CALLOUT.fetch_add(1, Ordering::Relaxed);
    let c = Callout {
        id,
        func,
        arg: arg as usize,
    };
    let ticks = ticks.max(1) as u64;
    if deterministic() {
        let mut s = sched();
        let key = (s.clock + ticks, id);
        s.timers.insert(key, Timer::Callout(c));
    } else {
        let when = Instant::now() + Duration::from_millis(ticks * (1000 / HZ));
        let mut tc = THREADED_CALLOUTS.lock().unwrap_or_else(|e| e.into_inner());
        tc.pending.insert((when, id), c);
        if !tc.started {
            tc.started = true;
            start_threaded_callout_thread();
        }
        THREADED_CALLOUT_CV.notify_all();
    }
    id as usize
}

/// `untimeout(id)`: the ticks that were left, or -1 if the callout had
/// already run (waiting for it to finish if it is running on another
/// thread).
#[unsafe(no_mangle)]
pub extern "C" fn untimeout(id: usize) -> libc::c_long {
    let id = id as u64;
    if deterministic() {
        let mut s = sched();
        let key = s
            .timers
            .iter()
            .find(|(_, v)| matches!(v, Timer::Callout(c) if c.id == id))
            .map(|(k, _)| *k);
        if let Some(key) = key {
            s.timers.remove(&key);
            return (key.0.saturating_sub(s.clock)).max(1) as libc::c_long;
        }
        if let Some(i) = s.due.iter().position(|c| c.id == id) {
            s.due.remove(i);
            return 0;
        }
        while s.running_callout == Some(id) && s.threads[me()].name != "callout" {
            let t = me();
            s = block(s, t, Wait::CalloutDone(id)).0;
        }
        -1
    } else {
        let mut tc = THREADED_CALLOUTS.lock().unwrap_or_else(|e| e.into_inner());
        let key = tc.pending.iter().find(|(_, c)| c.id == id).map(|(k, _)| *k);
        if let Some(key) = key {
            tc.pending.remove(&key);
            let left = key.0.saturating_duration_since(Instant::now());
            return (left.as_millis() as u64 / (1000 / HZ)).max(1) as libc::c_long;
        }
        while matches!(tc.running, Some((r, th)) if r == id && th != std::thread::current().id()) {
            tc = THREADED_CALLOUT_CV
                .wait(tc)
                .unwrap_or_else(|e| e.into_inner());
        }
        -1
    }
}

/// The deterministic callout thread: runs callouts as they fall due.
pub(crate) fn start_callout_thread() {
    spawn_kernel_thread(
        "callout".into(),
        std::ptr::null_mut(),
        Box::new(|| {
            loop {
                let t = me();
                let mut s = sched();
                let Some(c) = s.due.pop_front() else {
                    let _ = block(s, t, Wait::Callout);
                    continue;
                };
                s.running_callout = Some(c.id);
                drop(s);
                // SAFETY: timeout's caller passed a function and its argument.
                unsafe { (c.func)(c.arg as *mut c_void) };
                let mut s = sched();
                s.running_callout = None;
                while let Some(w) =
                    s.first_blocked(|th| th.state == State::Blocked(Wait::CalloutDone(c.id)))
                {
                    s.make_runnable(w, Wake::Normal);
                }
            }
        }),
    );
}

fn start_threaded_callout_thread() {
    spawn_kernel_thread(
        "callout".into(),
        std::ptr::null_mut(),
        Box::new(|| {
            loop {
                let mut tc = THREADED_CALLOUTS.lock().unwrap_or_else(|e| e.into_inner());
                let next = tc.pending.iter().next().map(|(k, c)| (*k, *c));
                match next {
                    Some((key, c)) if key.0 <= Instant::now() => {
                        tc.pending.remove(&key);
                        tc.running = Some((c.id, std::thread::current().id()));
                        drop(tc);
                        // SAFETY: as in the deterministic callout thread.
                        unsafe { (c.func)(c.arg as *mut c_void) };
                        let mut tc = THREADED_CALLOUTS.lock().unwrap_or_else(|e| e.into_inner());
                        tc.running = None;
                        THREADED_CALLOUT_CV.notify_all();
                    }
                    Some((key, _)) => {
                        let wait = key.0.saturating_duration_since(Instant::now());
                        drop(THREADED_CALLOUT_CV.wait_timeout(tc, wait));
                    }
                    None => {
                        drop(THREADED_CALLOUT_CV.wait(tc));
                    }
                }
            }
        }),
    );
}

// ---------------------------------------------------------------------------
// The task queue (system_taskq, which STREAMS schedules service procedures on)
// ---------------------------------------------------------------------------

/// The opaque `taskq_t` the kernel's `system_taskq` points to.
static SYSTEM_TASKQ: AtomicUsize = AtomicUsize::new(0);

#[unsafe(no_mangle)]
pub static mut system_taskq: *mut c_void = std::ptr::null_mut();

struct ThreadedTasks {
    queue: VecDeque<(TaskFn, usize)>,
    idle: usize,
    workers: usize,
}

static THREADED_TASKS: Mutex<ThreadedTasks> = Mutex::new(ThreadedTasks {
    queue: VecDeque::new(),
    idle: 0,
    workers: 0,
});
static THREADED_TASK_CV: Condvar = Condvar::new();
/// Most workers the threaded task queue starts.
const THREADED_WORKERS: usize = 4;

pub(crate) fn init_taskq() {
    let tq = &SYSTEM_TASKQ as *const AtomicUsize as *mut c_void;
    // SAFETY: written once at boot, before any kernel code reads it.
    unsafe { system_taskq = tq };
}

/// `taskq_dispatch`: never fails (a dynamic task queue with room for
/// everything); tasks run in the order they were dispatched.
#[unsafe(no_mangle)]
pub extern "C" fn taskq_dispatch(
    _tq: *mut c_void,
    func: Option<TaskFn>,
    arg: *mut c_void,
    _flags: u32,
) -> usize {
    let Some(func) = func else {
        super::fail("taskq_dispatch without a function")
    };
    let task = (func, arg as usize);
    if deterministic() {
        let mut s = sched();
        s.tasks.push_back(task);
        start_worker(s);
    } else {
        let mut tq = THREADED_TASKS.lock().unwrap_or_else(|e| e.into_inner());
        tq.queue.push_back(task);
        if tq.idle > 0 {
            THREADED_TASK_CV.notify_one();
        } else if tq.workers < THREADED_WORKERS {
            tq.workers += 1;
            let n = tq.workers;
            drop(tq);
            spawn_kernel_thread(
                format!("taskq-{n}"),
                std::ptr::null_mut(),
                Box::new(threaded_worker),
            );
        }
    }
    1
}

/// Gets a worker to the task queue: an idle one, or a new one.
fn start_worker(mut s: MutexGuard<'static, Sched>) {
    match s.first_blocked(|t| t.state == State::Blocked(Wait::Task)) {
        Some(w) => s.make_runnable(w, Wake::Normal),
        None => {
            let n = s
                .threads
                .iter()
                .filter(|t| t.name.starts_with("taskq"))
                .count();
            drop(s);
            spawn_kernel_thread(
                format!("taskq-{n}"),
                std::ptr::null_mut(),
                Box::new(det_worker),
            );
        }
    }
}

fn det_worker() {
    loop {
        let t = me();
        let mut s = sched();
        let next = s.tasks.pop_front();
        let Some((func, arg)) = next else {
            let _ = block(s, t, Wait::Task);
            continue;
        };
        drop(s);
        // SAFETY: taskq_dispatch's caller passed a function and its argument.
        unsafe { func(arg as *mut c_void) };
    }
}

fn threaded_worker() {
    loop {
        let mut tq = THREADED_TASKS.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((func, arg)) = tq.queue.pop_front() {
                drop(tq);
                // SAFETY: as for det_worker.
                unsafe { func(arg as *mut c_void) };
                break;
            }
            tq.idle += 1;
            threaded_wait(Some(Wait::Task));
            tq = THREADED_TASK_CV.wait(tq).unwrap_or_else(|e| e.into_inner());
            threaded_wait(None);
            tq.idle -= 1;
        }
    }
}

/// Every thread and what it waits for (for failure reports).
pub(crate) fn dump() -> String {
    match SCHED.try_lock() {
        Ok(s) => s.dump(),
        Err(_) => "  (scheduler state unavailable)\n".into(),
    }
}
