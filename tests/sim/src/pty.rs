//! The model world as the scenario API sees it: [`Pty`] for [`World`].
//!
//! Every system call runs in [`World::op`] (this world current on the
//! calling thread, the invariants between system calls checked after it)
//! and is implemented where its kind lives: opening and closing in
//! `open.rs`, data and `poll` in `io.rs`, ioctls and flushes in
//! `ioctl.rs`, loading in `modload.rs`. The rest reads or sets the world's
//! state directly. The libc functions (`ptsname`, `grantpt`, ...) are the
//! trait's own, built on these calls.

use ptm_scenario::{
    Cred, Errno, Fd, HeadState, IocReply, LateOrder, Leaks, MinorNode, PollBits, PtsNode, Pty,
    QueueInfo, Report, TraceEvent, Variant as ScenarioVariant,
};
use ptm_scenario::{PTM_MAJOR, PTS_MAJOR};

use crate::world::{self, CredObj, StreamKind, ZoneObj, sd};
use crate::{World, ddi, io, ioctl, modload, msg, observe, open, sched, syscall};

/// `S_IFCHR`, the file type of a device node.
const ST_IF_CHR: u32 = 0o020000;

impl Pty for World {
    fn variant(&self) -> ScenarioVariant {
        self.variant.scenario()
    }

    // --- opening and closing ---------------------------------------------

    fn open_manager(&mut self, flags: i32) -> Result<Fd, Errno> {
        self.op(|_| open::open_manager(flags))
    }

    fn open_manager_node(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.op(|_| open::open_manager_node(minor, flags))
    }

    fn open_subsidiary(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        let node = self.pts_node(minor);
        match open::pts_access(node, self.cred(), flags) {
            Err(e) => self.op(|_| open::pts_refused(minor, flags, e)),
            Ok(()) => self.open_subsidiary_node(minor, flags),
        }
    }

    fn open_subsidiary_node(&mut self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.op(|_| open::open_subsidiary_node(minor, flags))
    }

    /// The model can push a driver as a module: ptm's open is called with
    /// `MODOPEN` on a new stream, and must refuse.
    fn push_manager_as_module(&mut self) -> Option<Result<(), Errno>> {
        Some(self.op(|_| open::push_manager_as_module()))
    }

    /// A stream's held services run first (see
    /// [`Pty::services_run_late`]).
    fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        self.op(|_| {
            if let Some(sid) = world::with(|s| s.fds.get(&fd.0).map(|e| e.stream)) {
                sched::run_late(LateOrder::Scheduled, Some(sid));
            }
            open::close(fd)
        })
    }

    /// Closes every open fd, lowest first.
    fn close_all(&mut self) {
        let fds: Vec<i32> = self.core.st.borrow().fds.keys().copied().collect();
        for fd in fds {
            let _ = self.close(Fd(fd));
        }
    }

    // --- data ------------------------------------------------------------

    fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize, Errno> {
        self.op(|_| io::write(fd, data))
    }

    fn write_band(&mut self, fd: Fd, band: u8, data: &[u8]) -> Result<(), Errno> {
        self.op(|_| io::write_band(fd, band, data))
    }

    fn read(&mut self, fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
        self.op(|_| io::read(fd, n))
    }

    // --- control ---------------------------------------------------------

    fn ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        self.ioctl_blocks(fd, cmd, &[payload])
    }

    fn ioctl_blocks(&mut self, fd: Fd, cmd: i32, parts: &[&[u8]]) -> Result<IocReply, Errno> {
        self.op(|_| ioctl::ioctl_str(fd, cmd, parts, false))
    }

    fn ioctl_chain(&mut self, fd: Fd, cmd: i32, parts: &[&[u8]]) -> Result<IocReply, Errno> {
        self.op(|_| ioctl::ioctl_str(fd, cmd, parts, true))
    }

    fn tty_ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        self.op(|_| ioctl::tty_ioctl(fd, cmd, payload))
    }

    fn flush(&mut self, fd: Fd, flags: i32) -> Result<(), Errno> {
        self.op(|_| ioctl::flush(fd, flags, None))
    }

    fn flush_band(&mut self, fd: Fd, band: u8, flags: i32) -> Result<(), Errno> {
        self.op(|_| ioctl::flush(fd, flags, Some(band)))
    }

    fn inject_down(&mut self, fd: Fd, mtype: u8, band: u8, data: &[u8]) -> Result<(), Errno> {
        self.op(|_| io::inject_down(fd, mtype, band, data))
    }

    fn poll(&mut self, fd: Fd) -> Result<PollBits, Errno> {
        self.op(|_| io::poll(fd))
    }

    // --- the process and its context -------------------------------------

    fn fstat_minor(&mut self, fd: Fd) -> Result<(u32, u32), Errno> {
        self.op(|_| {
            let (sid, _) = syscall::lookup(fd)?;
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

    /// `/dev/pts/N` as the caller's zone sees it (`ptms_minor_valid`):
    /// minor 0 always exists (owned by root); others only while allocated
    /// and in the caller's zone.
    fn pts_node(&mut self, minor: u32) -> Option<PtsNode> {
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
                if let Some(n) =
                    ptm_scenario::msg::ephemeral_owner_note(minor, (*p).pt_ruid, (*p).pt_rgid)
                {
                    world::note(n);
                }
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

    fn cred(&self) -> Cred {
        let s = self.core.st.borrow();
        s.creds[s.cur_cred].cred
    }

    /// Each distinct credential gets its own `cred_t *`.
    fn set_cred(&mut self, cred: Cred) {
        let mut s = self.core.st.borrow_mut();
        let i = match s.creds.iter().position(|c| c.cred == cred) {
            Some(i) => i,
            None => {
                s.creds.push(Box::new(CredObj { cred }));
                s.creds.len() - 1
            }
        };
        s.cur_cred = i;
    }

    fn set_zone(&mut self, zone: i32) {
        self.core.st.borrow_mut().cur_zone = zone;
    }

    fn add_zone(&mut self, id: i32, ephemeral: Option<(u32, u32)>) {
        let (eph_min, eph_last) = ephemeral.unwrap_or((0, 0));
        let zone = Box::new(ZoneObj {
            id,
            eph_min,
            eph_last,
        });
        self.core.st.borrow_mut().zones.insert(id, zone);
    }

    /// `zone_find_by_id` returns NULL for the zone from now on (its
    /// `zone_t` stays allocated: a driver may still hold it).
    fn remove_zone(&mut self, id: i32) {
        let mut s = self.core.st.borrow_mut();
        if let Some(z) = s.zones.remove(&id) {
            debug_assert_eq!(z.id, id);
            s.zone_grave.push(z);
        }
    }

    // --- faults ----------------------------------------------------------

    fn fail_nth_allocb(&mut self, n: u64) {
        let mut s = self.core.st.borrow_mut();
        let at = s.counters.allocb_calls + n;
        s.faults.allocb_fail.insert(at);
    }

    fn fail_next_pt_ttys_alloc(&mut self) {
        self.core.st.borrow_mut().faults.pt_ttys_alloc_fail += 1;
    }

    fn fail_attach_subsidiary(&mut self, fail: bool) {
        self.core.st.borrow_mut().faults.attach_fail = fail;
    }

    fn set_pty_limit(&mut self, limit: Option<usize>) {
        self.core.st.borrow_mut().pty_limit = limit;
    }

    /// The next band-structure (`qband`) allocation fails: the `putq` or
    /// `putbq` that needs it returns 0, neither queueing nor freeing the
    /// message (illumos `allocband` failing under memory pressure).
    fn fail_next_qband_alloc(&mut self) {
        self.core.st.borrow_mut().faults.qband_alloc_fail += 1;
    }

    // --- scheduling ------------------------------------------------------------

    fn services_run_late(&mut self, late: bool) {
        self.op(|_| {
            if late {
                sched::hold_services();
            } else {
                sched::stop_holding_services();
            }
        })
    }

    fn run_late_services(&mut self, order: LateOrder) {
        self.op(|_| sched::run_late(order, None))
    }

    fn late_services(&self) -> usize {
        self.core.st.borrow().late.as_ref().map_or(0, Vec::len)
    }

    // --- observation -----------------------------------------------------

    fn trace(&self) -> Vec<TraceEvent> {
        self.core.st.borrow().trace.clone()
    }

    fn anomalies(&self) -> Vec<String> {
        self.core.st.borrow().anomalies.clone()
    }

    fn acknowledge_anomalies(&mut self, what: &str) -> usize {
        let list = &mut self.core.st.borrow_mut().anomalies;
        let before = list.len();
        list.retain(|a| !a.contains(what));
        before - list.len()
    }

    fn leaks(&self) -> Leaks {
        observe::leaks(&self.core.st.borrow())
    }

    fn allocb_calls(&self) -> u64 {
        self.core.st.borrow().counters.allocb_calls
    }

    fn block_capacity(&mut self, len: usize) -> usize {
        msg::capacity(len)
    }

    fn minor_nodes(&self) -> Vec<MinorNode> {
        self.core.st.borrow().minor_nodes.clone()
    }

    fn pt_state(&self, minor: u32) -> Option<u16> {
        let s = self.core.st.borrow();
        // SAFETY: slots hold live entries.
        s.slots.get(&minor).map(|&p| unsafe { (*p).pt_state })
    }

    fn pt_owner(&self, minor: u32) -> Option<(i32, u32, u32)> {
        let s = self.core.st.borrow();
        // SAFETY: slots hold live entries.
        s.slots
            .get(&minor)
            .map(|&p| unsafe { ((*p).pt_zoneid, (*p).pt_ruid, (*p).pt_rgid) })
    }

    fn head_state(&self, fd: Fd) -> Option<HeadState> {
        let s = self.core.st.borrow();
        let f = s.streams[s.fds.get(&fd.0)?.stream].flags;
        let has = |bit| f & bit != 0;
        Some(HeadState {
            hung_up: has(sd::STRHUP),
            tty: has(sd::STRISTTY),
            xpg4_tty: has(sd::STRXPG4TTY),
            read_error: has(sd::STRDERR),
            write_error: has(sd::STWRERR),
        })
    }

    fn head_read_queue(&self, fd: Fd) -> Option<QueueInfo> {
        observe::fd_queue(&self.core.st.borrow(), fd, false)
    }

    fn driver_write_queue(&self, fd: Fd) -> Option<QueueInfo> {
        observe::fd_queue(&self.core.st.borrow(), fd, true)
    }

    // --- the module ------------------------------------------------------

    fn unload(&mut self) -> Result<(), Errno> {
        let v = self.variant;
        self.op(|_| modload::unload(v))
    }

    fn reload(&mut self) -> Result<(), String> {
        let v = self.variant;
        self.op(|_| modload::load(v))
    }

    fn is_loaded(&self) -> bool {
        self.core.st.borrow().module.is_some()
    }

    fn module_linkinfo(&self) -> Option<String> {
        let s = self.core.st.borrow();
        s.module.as_ref().map(|m| m.linkinfo.clone())
    }

    fn finish(self: Box<Self>) -> Result<Report, String> {
        World::finish(*self)
    }
}
