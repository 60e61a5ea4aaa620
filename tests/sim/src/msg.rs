//! Messages: `allocb`, `freeb`, `freemsg`, `copyb`, `dupb`, `msgpullup`,
//! `mexchange` and the ioctl helpers of strsun.c (`miocack`, `miocnak`,
//! `miocpullup`), with illumos semantics and full accounting.
//!
//! Every `mblk_t` and `dblk_t` is counted. Freed blocks are poisoned and
//! kept until the world is dropped ("quarantine"), so a driver that touches
//! a freed message reads poison instead of someone else's message, and a
//! double free or a free of a pointer the simulator never handed out is
//! detected exactly (it is recorded as an anomaly, not a crash).

use std::ffi::c_int;
use std::ptr;

use ptm::sys::*;

use crate::world;

/// A data block and its buffer. `db` comes first so a `*mut dblk_t` is also
/// a `*mut DBox`.
#[repr(C)]
pub(crate) struct DBox {
    pub db: dblk_t,
    pub buf: Box<[u8]>,
}

/// Fill pattern of a fresh buffer (illumos does not zero `allocb` memory;
/// a driver must not depend on the contents).
pub(crate) const FRESH_FILL: u8 = 0xbb;
/// Type written into a freed data block.
const DEAD_TYPE: u8 = 0xee;

/// Capacity illumos gives an `allocb(size)`: the dblk caches are multiples
/// of 8 bytes, and `allocb(0)` comes from the smallest (8-byte) cache.
pub(crate) fn capacity(size: usize) -> usize {
    size.max(1).div_ceil(8) * 8
}

pub(crate) fn is_data(t: u8) -> bool {
    matches!(t as c_int, M_DATA | M_PROTO | M_PCPROTO | M_DELAY)
}

/// illumos `allocb_tryhard`, which the `putctl` family uses: `allocb` of
/// `size`, then of ever larger sizes (by the 64-byte dblk cache alignment)
/// up to 512 bytes more, so one failed allocation does not lose the
/// message.
pub(crate) fn alloc_tryhard(size: usize) -> *mut mblk_t {
    const DBLK_CACHE_ALIGN: usize = 64;
    (size..size + 512)
        .step_by(DBLK_CACHE_ALIGN)
        .map(|sz| alloc(sz, true))
        .find(|mp| !mp.is_null())
        .unwrap_or(ptr::null_mut())
}

/// Allocates a message block in the current world. `counted` says whether
/// this is a kernel `allocb` call (numbered, subject to fault injection) or
/// an internal allocation of the stream head, which never fails.
pub(crate) fn alloc(size: usize, counted: bool) -> *mut mblk_t {
    let fail = world::with(|s| {
        if counted {
            s.counters.allocb_calls += 1;
            let n = s.counters.allocb_calls;
            s.faults.allocb_fail.remove(&n)
        } else {
            false
        }
    });
    if fail {
        return ptr::null_mut();
    }
    let cap = capacity(size);
    let dbox = Box::into_raw(Box::new(DBox {
        db: dblk_t::default(),
        buf: vec![FRESH_FILL; cap].into_boxed_slice(),
    }));
    let mp = Box::into_raw(Box::new(mblk_t::default()));
    // SAFETY: both pointers come from `Box::into_raw` just above and are
    // uniquely owned here.
    unsafe {
        let base = (*dbox).buf.as_mut_ptr();
        (*dbox).db.db_base = base;
        (*dbox).db.db_lim = base.add(cap);
        (*dbox).db.db_ref = 1;
        (*dbox).db.db_type = M_DATA as u8;
        (*dbox).db.db_mblk = mp;
        (*mp).b_datap = dbox as *mut dblk_t;
        (*mp).b_rptr = base;
        (*mp).b_wptr = base;
    }
    world::with(|s| {
        s.mblk_live.insert(mp as usize);
        s.dblk_live.insert(dbox as usize);
        s.counters.mblk_allocs += 1;
        s.counters.dblk_allocs += 1;
    });
    mp
}

/// Whether `mp` is a live message block of the current world.
pub(crate) fn is_live(mp: *const mblk_t) -> bool {
    world::with(|s| s.mblk_live.contains(&(mp as usize)))
}

/// A new block sharing `bp`'s data block (illumos `dupb`).
pub(crate) fn dupb_impl(bp: *mut mblk_t) -> *mut mblk_t {
    if !is_live(bp) {
        world::anomaly(format!("dupb of a block that is not live ({bp:p})"));
        return ptr::null_mut();
    }
    // SAFETY: `bp` is live (checked above), so it and its dblk are valid.
    unsafe {
        let db = (*bp).b_datap;
        if (*db).db_ref == 255 {
            return ptr::null_mut();
        }
        (*db).db_ref += 1;
        let mp = Box::into_raw(Box::new(mblk_t::default()));
        (*mp).b_datap = db;
        (*mp).b_rptr = (*bp).b_rptr;
        (*mp).b_wptr = (*bp).b_wptr;
        (*mp).b_band = (*bp).b_band;
        (*mp).b_flag = (*bp).b_flag;
        world::with(|s| {
            s.mblk_live.insert(mp as usize);
            s.counters.mblk_allocs += 1;
        });
        mp
    }
}

/// Frees one block, dropping one reference on its data block.
pub(crate) fn freeb_impl(mp: *mut mblk_t) {
    if mp.is_null() {
        world::anomaly("freeb(NULL)");
        return;
    }
    let live = world::with(|s| s.mblk_live.remove(&(mp as usize)));
    if !live {
        world::anomaly(format!(
            "free of a message block that is not live ({mp:p}): double free or foreign pointer"
        ));
        return;
    }
    // SAFETY: `mp` was live, so it and its dblk are valid allocations of
    // this module; after this it is poisoned and parked in the graveyard.
    unsafe {
        if !(*mp).b_next.is_null() || !(*mp).b_prev.is_null() {
            world::anomaly(format!("freeb of a block still linked on a queue ({mp:p})"));
        }
        let db = (*mp).b_datap;
        (*db).db_ref = (*db).db_ref.wrapping_sub(1);
        let free_db = (*db).db_ref == 0;
        (*mp).b_next = ptr::null_mut();
        (*mp).b_prev = ptr::null_mut();
        (*mp).b_cont = ptr::null_mut();
        (*mp).b_rptr = ptr::null_mut();
        (*mp).b_wptr = ptr::null_mut();
        (*mp).b_datap = ptr::null_mut();
        if free_db {
            (*db).db_type = DEAD_TYPE;
            (*db).db_base = ptr::null_mut();
            (*db).db_lim = ptr::null_mut();
        }
        world::with(|s| {
            s.counters.mblk_frees += 1;
            s.mblk_grave.push(mp);
            if free_db {
                s.dblk_live.remove(&(db as usize));
                s.counters.dblk_frees += 1;
                s.dblk_grave.push(db as *mut DBox);
            }
        });
    }
}

/// Frees every block of a message.
pub(crate) fn freemsg_impl(mut mp: *mut mblk_t) {
    while !mp.is_null() {
        if !is_live(mp) {
            world::anomaly(format!("freemsg of a block that is not live ({mp:p})"));
            return;
        }
        // SAFETY: `mp` is live.
        let next = unsafe { (*mp).b_cont };
        freeb_impl(mp);
        mp = next;
    }
}

/// Bytes and blocks of a message (illumos `mp_cont_len`).
///
/// # Safety
/// `mp` must be a valid message chain.
pub(crate) unsafe fn cont_len(mut mp: *const mblk_t) -> (usize, usize) {
    let (mut bytes, mut blocks) = (0usize, 0usize);
    while !mp.is_null() {
        // SAFETY: the caller guarantees a valid chain.
        unsafe {
            bytes += blk_len(mp);
            blocks += 1;
            mp = (*mp).b_cont;
        }
    }
    (bytes, blocks)
}

/// Bytes in one block.
///
/// # Safety
/// `mp` must be a valid block.
pub(crate) unsafe fn blk_len(mp: *const mblk_t) -> usize {
    // SAFETY: the caller guarantees a valid block.
    unsafe { ((*mp).b_wptr as usize).saturating_sub((*mp).b_rptr as usize) }
}

/// The type of a block.
///
/// # Safety
/// `mp` must be a valid block.
pub(crate) unsafe fn mtype(mp: *const mblk_t) -> u8 {
    // SAFETY: the caller guarantees a valid block.
    unsafe { (*(*mp).b_datap).db_type }
}

/// Bytes of the leading run of blocks that have the first block's type
/// (illumos `xmsgsize`).
unsafe fn xmsgsize(mp: *const mblk_t) -> usize {
    // SAFETY: the caller guarantees a valid chain.
    unsafe {
        let t = mtype(mp);
        let mut n = 0;
        let mut p = mp;
        while !p.is_null() && mtype(p) == t {
            n += blk_len(p);
            p = (*p).b_cont;
        }
        n
    }
}

/// A new block holding `len` contiguous bytes of `mp` (all of them for
/// `len == -1`), followed by the rest of the original shared with `dupb`
/// (illumos `msgpullup` since 2024). NULL if `mp` holds fewer than `len`
/// bytes or an allocation fails.
pub(crate) fn msgpullup_impl(mp: *mut mblk_t, len: isize) -> *mut mblk_t {
    if !is_live(mp) {
        world::anomaly(format!("msgpullup of a block that is not live ({mp:p})"));
        return ptr::null_mut();
    }
    // SAFETY: `mp` is a live chain; all blocks reached are live.
    unsafe {
        let total = xmsgsize(mp);
        let want = if len < 0 { total } else { len as usize };
        if want > total {
            return ptr::null_mut();
        }
        let nmp = alloc(want, true);
        if nmp.is_null() {
            return ptr::null_mut();
        }
        (*(*nmp).b_datap).db_type = mtype(mp);
        (*(*nmp).b_datap).db_credp = (*(*mp).b_datap).db_credp;
        (*nmp).b_band = (*mp).b_band;
        (*nmp).b_flag = (*mp).b_flag;
        let mut need = want;
        let mut p = mp;
        let mut off_in_p = 0;
        // Copy `want` bytes; `p`/`off_in_p` end at the first byte not copied.
        while need > 0 {
            let l = blk_len(p);
            let n = l.min(need);
            ptr::copy_nonoverlapping((*p).b_rptr, (*nmp).b_wptr, n);
            (*nmp).b_wptr = (*nmp).b_wptr.add(n);
            need -= n;
            if n < l {
                off_in_p = n;
                break;
            }
            p = (*p).b_cont;
        }
        // The rest of the original message, shared.
        if !p.is_null() {
            let rest = dupmsg_impl(p);
            if rest.is_null() {
                freemsg_impl(nmp);
                return ptr::null_mut();
            }
            (*rest).b_rptr = (*rest).b_rptr.add(off_in_p);
            (*nmp).b_cont = rest;
        }
        nmp
    }
}

/// `dupb` of every block of a message.
pub(crate) fn dupmsg_impl(mp: *mut mblk_t) -> *mut mblk_t {
    let head = dupb_impl(mp);
    if head.is_null() {
        return ptr::null_mut();
    }
    let mut tail = head;
    // SAFETY: `mp` is a live chain (dupb_impl checked the head; the rest are
    // reached through b_cont of live blocks).
    unsafe {
        let mut p = (*mp).b_cont;
        while !p.is_null() {
            let n = dupb_impl(p);
            if n.is_null() {
                freemsg_impl(head);
                return ptr::null_mut();
            }
            (*tail).b_cont = n;
            tail = n;
            p = (*p).b_cont;
        }
    }
    head
}

// ---------------------------------------------------------------------------
// Exported kernel functions
// ---------------------------------------------------------------------------

/// illumos `allocb(size, pri)`: `pri` is ignored; never sleeps.
#[unsafe(no_mangle)]
pub extern "C" fn allocb(size: usize, _pri: uint_t) -> *mut mblk_t {
    alloc(size, true)
}

/// illumos `freeb`.
#[unsafe(no_mangle)]
pub extern "C" fn freeb(mp: *mut mblk_t) {
    freeb_impl(mp)
}

/// illumos `freemsg`; NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn freemsg(mp: *mut mblk_t) {
    freemsg_impl(mp)
}

/// illumos `copyb`: a copy of the whole buffer with the same offsets, type,
/// band, flags and credential.
#[unsafe(no_mangle)]
pub extern "C" fn copyb(bp: *mut mblk_t) -> *mut mblk_t {
    if !is_live(bp) {
        world::anomaly(format!("copyb of a block that is not live ({bp:p})"));
        return ptr::null_mut();
    }
    // SAFETY: `bp` is live.
    unsafe {
        let db = (*bp).b_datap;
        let size = (*db).db_lim as usize - (*db).db_base as usize;
        let nbp = alloc(size, true);
        if nbp.is_null() {
            return ptr::null_mut();
        }
        let ndb = (*nbp).b_datap;
        (*ndb).db_type = (*db).db_type;
        (*ndb).db_credp = (*db).db_credp;
        (*nbp).b_flag = (*bp).b_flag;
        (*nbp).b_band = (*bp).b_band;
        ptr::copy_nonoverlapping((*db).db_base, (*ndb).db_base, size);
        (*nbp).b_rptr = (*ndb)
            .db_base
            .add((*bp).b_rptr as usize - (*db).db_base as usize);
        (*nbp).b_wptr = (*ndb)
            .db_base
            .add((*bp).b_wptr as usize - (*db).db_base as usize);
        nbp
    }
}

/// illumos `dupb`.
#[unsafe(no_mangle)]
pub extern "C" fn dupb(bp: *mut mblk_t) -> *mut mblk_t {
    dupb_impl(bp)
}

/// illumos `dupmsg`.
#[unsafe(no_mangle)]
pub extern "C" fn dupmsg(bp: *mut mblk_t) -> *mut mblk_t {
    dupmsg_impl(bp)
}

/// illumos `msgdsize`: bytes in the M_DATA blocks of a message.
#[unsafe(no_mangle)]
pub extern "C" fn msgdsize(bp: *const mblk_t) -> usize {
    let mut n = 0;
    let mut p = bp;
    // SAFETY: drivers pass valid chains; each block is checked for liveness
    // before it is read.
    unsafe {
        while !p.is_null() {
            if !is_live(p) {
                world::anomaly(format!("msgdsize of a block that is not live ({p:p})"));
                return n;
            }
            if mtype(p) as c_int == M_DATA {
                n += blk_len(p);
            }
            p = (*p).b_cont;
        }
    }
    n
}

/// illumos `msgpullup` (with the 2024 `len` fix).
#[unsafe(no_mangle)]
pub extern "C" fn msgpullup(mp: *mut mblk_t, len: isize) -> *mut mblk_t {
    msgpullup_impl(mp, len)
}

/// illumos `mexchange` (strsun.c): reuses `mp` when it is unshared and its
/// buffer holds `size` bytes (keeping `b_cont` and `b_band`), otherwise frees
/// it and allocates; then sets type and pointers, and writes `primtype` when
/// it is not negative.
#[unsafe(no_mangle)]
pub extern "C" fn mexchange(
    wq: *mut queue_t,
    mp: *mut mblk_t,
    size: usize,
    type_: uchar_t,
    primtype: i32,
) -> *mut mblk_t {
    let mut mp = mp;
    // SAFETY: a non-NULL `mp` is checked for liveness before use.
    unsafe {
        let reuse = !mp.is_null() && {
            if !is_live(mp) {
                world::anomaly(format!("mexchange of a block that is not live ({mp:p})"));
                return ptr::null_mut();
            }
            let db = (*mp).b_datap;
            (*db).db_lim as usize - (*db).db_base as usize >= size && (*db).db_ref == 1
        };
        if !reuse {
            freemsg_impl(mp);
            mp = alloc(size, true);
            if mp.is_null() {
                if !wq.is_null() {
                    // merror(wq, NULL, ENOSR): a one-byte M_ERROR upstream.
                    let e = alloc(1, true);
                    if !e.is_null() {
                        (*(*e).b_datap).db_type = M_ERROR as u8;
                        *(*e).b_wptr = ENOSR as u8;
                        (*e).b_wptr = (*e).b_wptr.add(1);
                        crate::put::qreply(wq, e);
                    }
                }
                return ptr::null_mut();
            }
        }
        let db = (*mp).b_datap;
        (*db).db_type = type_;
        (*mp).b_rptr = (*db).db_base;
        (*mp).b_wptr = (*db).db_base.add(size);
        if primtype >= 0 {
            ptr::write_unaligned((*mp).b_rptr as *mut i32, primtype);
        }
        mp
    }
}

/// illumos `miocack`: M_IOCACK with `ioc_count`, `ioc_error = 0`,
/// `ioc_rval`, then `qreply`.
#[unsafe(no_mangle)]
pub extern "C" fn miocack(wq: *mut queue_t, mp: *mut mblk_t, count: c_int, rval: c_int) {
    if !is_live(mp) {
        world::anomaly(format!("miocack of a block that is not live ({mp:p})"));
        return;
    }
    // SAFETY: `mp` is live; drivers only ACK M_IOCTL messages, whose first
    // block holds an iocblk (the stream head allocates it so).
    unsafe {
        let ioc = (*mp).b_rptr as *mut iocblk;
        (*ioc).ioc_count = count as isize as usize;
        (*ioc).ioc_error = 0;
        (*ioc).ioc_rval = rval;
        (*(*mp).b_datap).db_type = M_IOCACK as u8;
    }
    crate::put::qreply(wq, mp);
}

/// illumos `miocnak`: M_IOCNAK with `ioc_count` and `ioc_error`, then
/// `qreply`; `ioc_rval` is left alone.
#[unsafe(no_mangle)]
pub extern "C" fn miocnak(wq: *mut queue_t, mp: *mut mblk_t, count: c_int, error: c_int) {
    if !is_live(mp) {
        world::anomaly(format!("miocnak of a block that is not live ({mp:p})"));
        return;
    }
    // SAFETY: as in `miocack`.
    unsafe {
        let ioc = (*mp).b_rptr as *mut iocblk;
        (*ioc).ioc_count = count as isize as usize;
        (*ioc).ioc_error = error;
        (*(*mp).b_datap).db_type = M_IOCNAK as u8;
    }
    crate::put::qreply(wq, mp);
}

/// What the model records where illumos's miocpullup ASSERTs that an
/// M_IOCTL's first block is exactly an iocblk.
const MIOCPULLUP_ASSERT: &str =
    "failed ASSERT(MBLKL(iocmp) == sizeof (struct iocblk)) in miocpullup";

/// illumos `miocpullup` (strsun.c).
#[unsafe(no_mangle)]
pub extern "C" fn miocpullup(iocmp: *mut mblk_t, size: usize) -> c_int {
    if !is_live(iocmp) {
        world::anomaly(format!(
            "miocpullup of a block that is not live ({iocmp:p})"
        ));
        return EINVAL;
    }
    // SAFETY: `iocmp` is live; its first block is read as an iocblk only
    // after checking it is exactly that size.
    unsafe {
        if blk_len(iocmp) != std::mem::size_of::<iocblk>() {
            // illumos ASSERTs this first (a DEBUG kernel panics), then
            // warns and refuses (what a non-DEBUG kernel does).
            world::anomaly(MIOCPULLUP_ASSERT);
            world::trace(ptm_scenario::TraceEvent::Note(format!(
                "{MIOCPULLUP_ASSERT}: a DEBUG kernel panics here"
            )));
            world::with(|s| {
                s.cmn_err
                    .push((CE_WARN, "miocpullup: passed mblk_t with bad size".into()))
            });
            return EINVAL;
        }
        let ioc = (*iocmp).b_rptr as *const iocblk;
        if (*ioc).ioc_count == TRANSPARENT as usize {
            return EINVAL;
        }
        if size == 0 {
            return 0;
        }
        let data = (*iocmp).b_cont;
        if data.is_null() {
            return EINVAL;
        }
        if blk_len(data) >= size {
            return 0;
        }
        let nmp = msgpullup_impl(data, size as isize);
        if nmp.is_null() {
            return if msgdsize(data) < size {
                EINVAL
            } else {
                ENOMEM
            };
        }
        freemsg_impl(data);
        (*iocmp).b_cont = nmp;
        0
    }
}
