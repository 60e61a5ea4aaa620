//! What a test can see of a world besides its system calls: the queues
//! of a stream, what is still allocated, and the end of a scenario
//! ([`World::finish`]: everything closed, nothing leaked, no anomaly, the
//! module unloaded).

use ptm::sys::*;
use ptm_scenario::msg::queue_info;
use ptm_scenario::{Fd, Leaks, Pty, QueueInfo, Report};

use crate::world::State;
use crate::{World, mt};

impl World {
    /// Closes everything, lets the world settle, then checks that nothing
    /// leaked (messages, data blocks, pt_ttys, zone holds, streams) and
    /// that no anomaly was recorded, and unloads the module (if a scenario
    /// left it loaded); returns the trace.
    pub fn finish(mut self) -> Result<Report, String> {
        self.services_run_late(false);
        mt::quiesce_world(&mut self);
        self.close_all();
        mt::quiesce_world(&mut self);
        let leaks = self.leaks();
        let anomalies = self.anomalies();
        let name = self.variant.name;
        if !leaks.is_clean() || !anomalies.is_empty() {
            return Err(format!(
                "[{name}] leaks: {leaks:?}; leaked blocks: {:?}; anomalies: {anomalies:#?}\ntrace:\n{}",
                self.leaked_blocks(),
                self.trace_lines().join("\n")
            ));
        }
        if self.is_loaded()
            && let Err(e) = self.unload()
        {
            return Err(format!(
                "[{name}] modunload with nothing open: {e}\ntrace:\n{}",
                self.trace_lines().join("\n")
            ));
        }
        Ok(Report {
            variant: name,
            trace: self.trace_lines(),
            allocb_calls: self.allocb_calls(),
        })
    }

    /// The message blocks still allocated: (type, bytes, first 16 bytes),
    /// for a leak report.
    pub fn leaked_blocks(&self) -> Vec<(u8, usize, Vec<u8>)> {
        let s = self.core.st.borrow();
        let mut v: Vec<usize> = s.mblk_live.iter().copied().collect();
        v.sort_unstable();
        v.into_iter()
            .map(|m| {
                let mp = m as *const mblk_t;
                // SAFETY: a live block of this world: it and its dblk are
                // valid, and its data lies between b_rptr and b_wptr.
                unsafe {
                    let n = ((*mp).b_wptr as usize).saturating_sub((*mp).b_rptr as usize);
                    let head = std::slice::from_raw_parts((*mp).b_rptr, n.min(16)).to_vec();
                    ((*(*mp).b_datap).db_type, n, head)
                }
            })
            .collect()
    }

    /// Messages cmn_err'd so far (level, text).
    pub fn cmn_err_messages(&self) -> Vec<(i32, String)> {
        self.core.st.borrow().cmn_err.clone()
    }

    /// How many service procedures ran so far.
    pub fn services_run(&self) -> u64 {
        self.core.st.borrow().services_run
    }

    /// The module's linkage as modctl recorded it from `_info` when the
    /// module was loaded; NULL once it is unloaded.
    pub fn module_linkage(&self) -> *mut ptm::sys::modlinkage {
        self.core.st.borrow().mod_linkage
    }
}

/// Objects of world `s` currently allocated.
pub(crate) fn leaks(s: &State) -> Leaks {
    Leaks {
        mblks: s.counters.mblk_allocs - s.counters.mblk_frees,
        dblks: s.counters.dblk_allocs - s.counters.dblk_frees,
        pt_ttys: s.counters.pt_allocs - s.counters.pt_frees,
        zone_holds: s.counters.zone_holds,
        open_streams: s.streams.iter().filter(|st| !st.dead).count(),
    }
}

/// The stream head read queue (`driver` false) or the driver's write
/// queue (`driver` true: ptm's for a manager, pts's for a subsidiary) of
/// `fd`'s stream.
pub(crate) fn fd_queue(s: &State, fd: Fd, driver: bool) -> Option<QueueInfo> {
    let e = s.fds.get(&fd.0)?;
    let pairs = &s.streams[e.stream].pairs;
    // SAFETY: the pairs of a live stream, read under the world lock (held
    // through the caller's state borrow).
    unsafe {
        Some(if driver {
            queue_info(&(**pairs.last()?).wq)
        } else {
            queue_info(&(*pairs[0]).rq)
        })
    }
}
