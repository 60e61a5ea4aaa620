//! Memory: `kmem_alloc`, kmem caches and vmem arenas.
//!
//! # kmem
//!
//! Every buffer is a host allocation recorded with its size and its
//! caller (the C wrappers in `csrc/libkern.c` pass their return address):
//!
//! * `kmem_free` with a size other than the allocated one, or of a buffer
//!   that is not allocated, stops the world (illumos's kmem debugging
//!   panics on both);
//! * new buffers are filled with `0xbaddcafe` unless zeroed, freed ones
//!   with `0xdeadbeef` and kept in quarantine until the world ends, when
//!   the pattern is checked: a write after free is reported;
//! * the world's leak check lists what is still allocated and by whom.
//!
//! # Caches
//!
//! A cache keeps freed objects constructed, as kmem does; its
//! destructor runs when the cache is reaped ([`reap_all`]), which every
//! world does at its end -- so destructors' ASSERTs run. Fresh objects are
//! filled with `0xbaddcafe` before their constructor runs.
//!
//! # vmem
//!
//! Only what illumos's identifier arenas need (ptms_conf numbers ptys with
//! one): spans of integers, segments that split and coalesce, free
//! segments on power-of-two freelists with the newest first, and
//! instant-fit allocation that takes the first segment of the smallest
//! freelist large enough and allocates from its start -- which decides
//! which minor a new pty gets.

use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Mutex;

const ALLOC_PATTERN: u32 = 0xbadd_cafe;
const FREE_PATTERN: u32 = 0xdead_beef;
const ALIGN: usize = 16;
const KM_NOSLEEP: c_int = 1;

struct Buf {
    size: usize,
    caller: usize,
    /// Allocated by a cache (freed with kmem_cache_free, not kmem_free).
    cache: bool,
}

#[derive(Default)]
struct Kmem {
    live: HashMap<usize, Buf>,
    quarantine: Vec<(usize, usize)>,
    /// Allocation failures still to inject: (cache name or "kmem_alloc",
    /// how many successful allocations to let through first).
    fail: Vec<(String, u64)>,
}

static KMEM: Mutex<Option<Kmem>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Kmem) -> R) -> R {
    let mut g = KMEM.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Kmem::default))
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size.max(1), ALIGN).unwrap_or_else(|_| super::fail("kmem: bad size"))
}

fn fill(p: usize, size: usize, pattern: u32) {
    let bytes = pattern.to_be_bytes();
    // SAFETY: p is a live buffer of `size` bytes that we own.
    let s = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, size) };
    for (i, b) in s.iter_mut().enumerate() {
        *b = bytes[i % 4];
    }
}

fn pattern_intact(p: usize, size: usize, pattern: u32) -> bool {
    let bytes = pattern.to_be_bytes();
    // SAFETY: p is a quarantined buffer of `size` bytes that we own.
    let s = unsafe { std::slice::from_raw_parts(p as *const u8, size) };
    s.iter().enumerate().all(|(i, b)| *b == bytes[i % 4])
}

/// Whether an allocation from `what` should fail now (fault injection).
fn inject(k: &mut Kmem, what: &str, flags: c_int) -> bool {
    if flags & KM_NOSLEEP == 0 {
        return false;
    }
    let Some(i) = k
        .fail
        .iter()
        .position(|(w, _)| what.starts_with(w.as_str()))
    else {
        return false;
    };
    if k.fail[i].1 > 0 {
        k.fail[i].1 -= 1;
        return false;
    }
    k.fail.remove(i);
    true
}

fn alloc(size: usize, zero: bool, caller: usize, cache: bool) -> usize {
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc(layout(size)) } as usize;
    if p == 0 {
        super::fail("host out of memory");
    }
    if zero {
        // SAFETY: fresh buffer of `size` bytes.
        unsafe { std::ptr::write_bytes(p as *mut u8, 0, size) };
    } else {
        fill(p, size, ALLOC_PATTERN);
    }
    with(|k| {
        k.live.insert(
            p,
            Buf {
                size,
                caller,
                cache,
            },
        )
    });
    p
}

fn free(p: usize, size: usize, cache: bool) {
    with(|k| match k.live.remove(&p) {
        Some(b) if b.size == size && b.cache == cache => {
            fill(p, size, FREE_PATTERN);
            k.quarantine.push((p, size));
        }
        Some(b) => {
            let what = if cache {
                "kmem_cache_free"
            } else {
                "kmem_free"
            };
            super::fail(&format!(
                "{what}({p:#x}, {size}): buffer was allocated with size {}{}",
                b.size,
                if b.cache != cache {
                    " by the other allocator"
                } else {
                    ""
                }
            ))
        }
        None => super::fail(&format!(
            "kmem_free({p:#x}, {size}): not an allocated buffer"
        )),
    })
}

/// Called by the `kmem_alloc`/`kmem_zalloc` wrappers in C.
#[unsafe(no_mangle)]
pub extern "C" fn kp_kmem_alloc(
    size: usize,
    flags: c_int,
    zero: c_int,
    caller: *const c_void,
) -> *mut c_void {
    if size == 0 {
        return std::ptr::null_mut();
    }
    if with(|k| inject(k, "kmem_alloc", flags)) {
        return std::ptr::null_mut();
    }
    alloc(size, zero != 0, caller as usize, false) as *mut c_void
}

#[unsafe(no_mangle)]
pub extern "C" fn kp_kmem_free(p: *mut c_void, size: usize) {
    if p.is_null() {
        if size != 0 {
            super::fail(&format!("kmem_free(NULL, {size})"));
        }
        return;
    }
    free(p as usize, size, false);
}

/// # Safety
/// `asize` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_alloc_tryhard(
    size: usize,
    asize: *mut usize,
    flags: c_int,
) -> *mut c_void {
    if !asize.is_null() {
        // SAFETY: the caller passes somewhere to store the size.
        unsafe { *asize = size };
    }
    kp_kmem_alloc(size, flags, 0, std::ptr::null())
}

/// Memory available: plenty (ptms_conf sizes its pty limit from this).
#[unsafe(no_mangle)]
pub extern "C" fn kmem_avail() -> usize {
    1 << 32
}

#[unsafe(no_mangle)]
pub extern "C" fn kmem_maxavail() -> usize {
    1 << 32
}

// ---------------------------------------------------------------------------
// Caches
// ---------------------------------------------------------------------------

type Ctor = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;
type Dtor = unsafe extern "C" fn(*mut c_void, *mut c_void);

/// A kmem cache (what the kernel's `kmem_cache_t *` points to).
pub struct Cache {
    name: String,
    size: usize,
    ctor: Option<Ctor>,
    dtor: Option<Dtor>,
    private: usize,
    /// Freed objects, still constructed, the newest last.
    free: Vec<usize>,
    live: usize,
}

static CACHES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn cache<'a>(cp: *mut c_void) -> &'a mut Cache {
    if cp.is_null() {
        super::fail("NULL kmem cache");
    }
    // SAFETY: cache pointers come from kmem_cache_create and are only used
    // by the (single) kernel; the fields touched here are protected by the
    // kernel's own serialisation of each cache's users plus CACHE_LOCK.
    unsafe { &mut *cp.cast::<Cache>() }
}

/// A check run on an object as it is freed into the cache of that name.
type FreeCheck = (&'static str, fn(*mut c_void));

/// The world's watch on what destructors will later assert.
static FREE_CHECKS: Mutex<Vec<FreeCheck>> = Mutex::new(Vec::new());

/// Runs `check` on every object freed into the caches named `name`.
pub(crate) fn on_free(name: &'static str, check: fn(*mut c_void)) {
    FREE_CHECKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name, check));
}

/// Serialises cache operations (caches are shared by all kernel threads).
static CACHE_LOCK: Mutex<()> = Mutex::new(());

/// # Safety
/// `name` must be a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kmem_cache_create(
    name: *const c_char,
    size: usize,
    _align: usize,
    ctor: Option<Ctor>,
    dtor: Option<Dtor>,
    _reclaim: *mut c_void,
    private: *mut c_void,
    _vmp: *mut c_void,
    _flags: c_int,
) -> *mut c_void {
    // SAFETY: the kernel passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    let c = Box::into_raw(Box::new(Cache {
        name,
        size,
        ctor,
        dtor,
        private: private as usize,
        free: Vec::new(),
        live: 0,
    }));
    CACHES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(c as usize);
    c.cast()
}

#[unsafe(no_mangle)]
pub extern "C" fn kmem_cache_destroy(cp: *mut c_void) {
    reap(cache(cp));
    let c = cache(cp);
    if c.live != 0 {
        super::fail(&format!(
            "kmem_cache_destroy: cache {} has {} live objects",
            c.name, c.live
        ));
    }
    CACHES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&x| x != cp as usize);
    // SAFETY: created by Box::into_raw in kmem_cache_create; nothing uses
    // it after destroy.
    drop(unsafe { Box::from_raw(cp.cast::<Cache>()) });
}

#[unsafe(no_mangle)]
pub extern "C" fn kmem_cache_alloc(cp: *mut c_void, flags: c_int) -> *mut c_void {
    let guard = CACHE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let c = cache(cp);
    if with(|k| inject(k, &c.name, flags)) {
        return std::ptr::null_mut();
    }
    if let Some(p) = c.free.pop() {
        c.live += 1;
        return p as *mut c_void;
    }
    let (size, ctor, private) = (c.size, c.ctor, c.private);
    drop(guard);
    let p = alloc(size, false, 0, true);
    if let Some(ctor) = ctor {
        // SAFETY: a fresh object of the cache's size, with its creator's
        // private argument, as kmem calls constructors.
        if unsafe { ctor(p as *mut c_void, private as *mut c_void, flags) } != 0 {
            free(p, size, true);
            return std::ptr::null_mut();
        }
    }
    let _guard = CACHE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    cache(cp).live += 1;
    p as *mut c_void
}

#[unsafe(no_mangle)]
pub extern "C" fn kmem_cache_free(cp: *mut c_void, buf: *mut c_void) {
    let _guard = CACHE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let c = cache(cp);
    let known = with(|k| k.live.get(&(buf as usize)).map(|b| (b.size, b.cache)));
    if known != Some((c.size, true)) || c.free.contains(&(buf as usize)) {
        super::fail(&format!(
            "kmem_cache_free({}, {buf:p}): not a live object of this cache",
            c.name
        ));
    }
    c.live -= 1;
    c.free.push(buf as usize);
    let checks = FREE_CHECKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for (name, check) in checks {
        if c.name == name {
            check(buf);
        }
    }
}

/// Destroys the free objects of one cache: destructor, then quarantine.
fn reap(c: &mut Cache) {
    let objs: Vec<usize> = std::mem::take(&mut c.free);
    for p in objs {
        if let Some(dtor) = c.dtor {
            // SAFETY: a constructed, free object of this cache.
            unsafe { dtor(p as *mut c_void, c.private as *mut c_void) };
        }
        free(p, c.size, true);
    }
}

/// Reaps every cache (kmem_reap): runs the destructors of all free
/// objects. The world does this at its end.
pub(crate) fn reap_all() {
    let caches = CACHES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for cp in caches {
        reap(cache(cp as *mut c_void));
    }
}

/// Checks every quarantined buffer for writes after free, then releases
/// them.
pub(crate) fn check_quarantine() -> Result<(), String> {
    let q = with(|k| std::mem::take(&mut k.quarantine));
    let mut bad = Vec::new();
    for (p, size) in q {
        if !pattern_intact(p, size, FREE_PATTERN) {
            bad.push(format!("{p:#x} ({size} bytes)"));
        }
        // SAFETY: allocated by `alloc` with this layout, and freed: nothing
        // may use it any more.
        unsafe { std::alloc::dealloc(p as *mut u8, layout(size)) };
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("written after kmem_free: {}", bad.join(", ")))
    }
}

/// Objects per cache, by name: (allocated, free but constructed).
pub(crate) fn cache_stats() -> BTreeMap<String, (usize, usize)> {
    let _guard = CACHE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let caches = CACHES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut m = BTreeMap::new();
    for cp in caches {
        let c = cache(cp as *mut c_void);
        let e = m.entry(c.name.clone()).or_insert((0, 0));
        e.0 += c.live;
        e.1 += c.free.len();
    }
    m
}

/// Buffers from kmem_alloc still allocated: (address, size, caller).
pub(crate) fn live_buffers() -> Vec<(usize, usize, usize)> {
    with(|k| {
        let mut v: Vec<_> = k
            .live
            .iter()
            .filter(|(_, b)| !b.cache)
            .map(|(&p, b)| (p, b.size, b.caller))
            .collect();
        v.sort_unstable();
        v
    })
}

/// Makes the allocation from `what` (a cache name prefix, or
/// "kmem_alloc") after the next `skip` successful ones fail, for KM_NOSLEEP
/// allocations.
pub(crate) fn fail_allocation(what: &str, skip: u64) {
    with(|k| k.fail.push((what.to_owned(), skip)));
}

/// Forgets pending injected failures.
pub(crate) fn clear_failures() {
    with(|k| k.fail.clear());
}

// ---------------------------------------------------------------------------
// vmem
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seg {
    Free,
    Alloc,
}

/// A vmem arena (what `vmem_t *` points to): segments by start address,
/// each span's segments kept apart by `span_end`.
pub struct Arena {
    segs: BTreeMap<usize, (usize, Seg)>,
    /// Span boundaries: no coalescing across them.
    span_starts: Vec<usize>,
    /// freelists[i]: free segments of sizes in [2^i, 2^(i+1)), newest first.
    freelists: Vec<Vec<usize>>,
}

fn highbit(x: usize) -> usize {
    usize::BITS as usize - x.leading_zeros() as usize
}

impl Arena {
    fn insert_free(&mut self, start: usize, end: usize) {
        self.segs.insert(start, (end, Seg::Free));
        self.freelists[highbit(end - start) - 1].insert(0, start);
    }

    fn delete_free(&mut self, start: usize) {
        let (end, _) = self.segs[&start];
        let list = &mut self.freelists[highbit(end - start) - 1];
        list.retain(|&s| s != start);
    }

    fn add_span(&mut self, start: usize, size: usize) {
        self.span_starts.push(start);
        self.span_starts.push(start + size);
        self.insert_free(start, start + size);
    }

    fn alloc(&mut self, size: usize) -> usize {
        let first_list = if size.is_power_of_two() {
            highbit(size) - 1
        } else {
            highbit(size)
        };
        let Some(list) =
            (first_list..self.freelists.len()).find(|&i| !self.freelists[i].is_empty())
        else {
            return 0;
        };
        let start = self.freelists[list][0];
        let (end, _) = self.segs[&start];
        self.delete_free(start);
        self.segs.insert(start, (start + size, Seg::Alloc));
        if start + size != end {
            self.insert_free(start + size, end);
        }
        start
    }

    fn free(&mut self, addr: usize, size: usize) {
        match self.segs.get(&addr) {
            Some(&(end, Seg::Alloc)) if end == addr + size => {}
            _ => super::fail(&format!(
                "vmem_free({addr:#x}, {size}): not an allocated segment"
            )),
        }
        let (mut start, mut end) = (addr, addr + size);
        self.segs.remove(&addr);
        if !self.span_starts.contains(&end)
            && let Some(&(nend, Seg::Free)) = self.segs.get(&end)
        {
            self.delete_free(end);
            self.segs.remove(&end);
            end = nend;
        }
        if !self.span_starts.contains(&start)
            && let Some((&pstart, &(pend, Seg::Free))) = self.segs.range(..start).next_back()
            && pend == start
        {
            self.delete_free(pstart);
            self.segs.remove(&pstart);
            start = pstart;
        }
        self.insert_free(start, end);
    }
}

fn arena<'a>(vmp: *mut c_void) -> &'a mut Arena {
    if vmp.is_null() {
        super::fail("NULL vmem arena");
    }
    // SAFETY: arena pointers come from vmem_create; callers serialise
    // their use of an arena (ptms_conf holds ptms_lock).
    unsafe { &mut *vmp.cast::<Arena>() }
}

#[unsafe(no_mangle)]
pub extern "C" fn vmem_create(
    _name: *const c_char,
    base: *mut c_void,
    size: usize,
    _quantum: usize,
    _afunc: *mut c_void,
    _ffunc: *mut c_void,
    _source: *mut c_void,
    _qcache_max: usize,
    _flags: c_int,
) -> *mut c_void {
    let mut a = Arena {
        segs: BTreeMap::new(),
        span_starts: Vec::new(),
        freelists: vec![Vec::new(); usize::BITS as usize],
    };
    if size != 0 {
        a.add_span(base as usize, size);
    }
    Box::into_raw(Box::new(a)).cast()
}

#[unsafe(no_mangle)]
pub extern "C" fn vmem_add(
    vmp: *mut c_void,
    addr: *mut c_void,
    size: usize,
    _flags: c_int,
) -> *mut c_void {
    arena(vmp).add_span(addr as usize, size);
    addr
}

#[unsafe(no_mangle)]
pub extern "C" fn vmem_alloc(vmp: *mut c_void, size: usize, _flags: c_int) -> *mut c_void {
    if size == 0 {
        super::fail("vmem_alloc: size 0");
    }
    arena(vmp).alloc(size) as *mut c_void
}

#[unsafe(no_mangle)]
pub extern "C" fn vmem_free(vmp: *mut c_void, addr: *mut c_void, size: usize) {
    arena(vmp).free(addr as usize, size);
}
