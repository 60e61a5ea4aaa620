//! The world's system calls: each goes through the specfs layer
//! (`csrc/vfs.c`) into illumos's stream head, is traced, and returns once
//! everything it caused has run.

use std::ffi::{c_int, c_void};

use ptm::sys::{iocblk, mblk_t};
use ptm_scenario::msg::{inject_call, ioctl_name, show_bytes, show_ioc};
use ptm_scenario::{Errno, Fd, IocReply, PollBits, PtsNode};

use super::{CLONE_MAJOR, PTM_MAJOR, PTS_MAJOR};
use super::{File, World, fflags, makedev, observe, trace};
use crate::kernel::{cred, ffi, sched};

const I_STR: c_int = (b'S' as c_int) << 8 | 0o10;
const I_FLUSH: c_int = (b'S' as c_int) << 8 | 0o5;
const I_FLUSHBAND: c_int = (b'S' as c_int) << 8 | 0o34;
const M_DATA: u8 = ptm::sys::M_DATA as u8;
const M_IOCACK: u8 = ptm::sys::M_IOCACK as u8;
const POLLIN: i16 = 0x1;
const POLLPRI: i16 = 0x2;
const POLLOUT: i16 = 0x4;
const POLLERR: i16 = 0x8;
const POLLHUP: i16 = 0x10;
const POLLRDNORM: i16 = 0x40;
const POLLRDBAND: i16 = 0x80;
/// `S_IFCHR | 0620`: how /dev/pts nodes look.
const PTS_MODE: u32 = 0o020000 | 0o620;
/// File flags of non-blocking opens (FNDELAY, FNONBLOCK).
const FNDELAY: c_int = 0x04;
const FNONBLOCK: c_int = 0x80;
/// How long a blocking close waits for a queue to drain (STRTIMOUT).
const CLOSE_WAIT_TICKS: u64 = 15 * sched::HZ;
/// The longest reply an I_STR ioctl may carry back (strmsgsz).
const STRMSGSZ: usize = 65536;

unsafe extern "C" {
    fn ptms_minor_valid(minor: u32, ruid: *mut u32, rgid: *mut u32) -> c_int;
    fn kp_mkioctl(cmd: c_int, cr: *mut c_void, count: usize) -> *mut mblk_t;
    fn linkb(mp: *mut mblk_t, bp: *mut mblk_t);
    fn kp_vnode_count(vp: *mut ffi::vnode_t) -> c_int;
}

/// The calling thread's credential.
fn unsafe_curcred() -> *mut c_void {
    // SAFETY: no preconditions; the world's threads are attached.
    unsafe { ffi::kp_curcred() }
}

/// A kernel errno as the process sees it: a sleep that nothing could end
/// was interrupted by the world (see `kernel::sched`), which is what the
/// scenario API calls BLOCKED.
fn errno(rc: c_int) -> Errno {
    if rc == Errno::EINTR.0 {
        Errno::BLOCKED
    } else {
        Errno(rc)
    }
}

fn show_unit(r: &Result<(), Errno>) -> String {
    match r {
        Ok(()) => "0".into(),
        Err(e) => e.name(),
    }
}

impl World {
    /// The open file `fd` (a copy: another thread may close it meanwhile,
    /// as in a real process).
    pub(super) fn file(&self, fd: Fd) -> Result<File, Errno> {
        self.st().files.get(&fd.0).cloned().ok_or(Errno::EBADF)
    }

    /// Installs `f` at the lowest free fd from 3.
    fn new_fd(&self, f: File) -> Fd {
        let mut st = self.st();
        let n = (3..).find(|n| !st.files.contains_key(n)).unwrap_or(3);
        st.files.insert(n, f);
        Fd(n)
    }

    fn show_fd(&self, r: &Result<Fd, Errno>) -> String {
        match r {
            Ok(fd) => match self.file(*fd) {
                Ok(f) => format!("fd{} ({})", fd.0, f.name),
                Err(_) => format!("fd{}", fd.0),
            },
            Err(e) => e.name(),
        }
    }

    /// open(2) of device `dev`, traced as `call`.
    fn open_dev(&self, dev: u64, oflag: i32, call: String) -> Result<Fd, Errno> {
        let mut vp = std::ptr::null_mut();
        let mut newdev = 0;
        let fflag = fflags(oflag);
        // SAFETY: on the world's thread, with out-pointers of ours.
        let rc = unsafe { ffi::kp_open(dev, fflag, &mut vp, &mut newdev) };
        sched::settle();
        let r = if rc != 0 {
            Err(errno(rc))
        } else {
            let (major, minor) = ((newdev >> 32) as u32, newdev as u32);
            let name = format!("{}{minor}", if major == PTM_MAJOR { "M" } else { "S" });
            // SAFETY: the vnode just opened.
            trace::name_stream(unsafe { ffi::kp_vnode_stream(vp) }, name.clone());
            Ok(self.new_fd(File { vp, fflag, name }))
        };
        let res = self.show_fd(&r);
        trace::sys(call, res);
        r
    }

    pub(super) fn do_open_manager(&self, flags: i32) -> Result<Fd, Errno> {
        self.open_dev(
            makedev(CLONE_MAJOR, PTM_MAJOR),
            flags,
            format!("open(/dev/ptmx, {flags:#x})"),
        )
    }

    pub(super) fn do_open_manager_node(&self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.open_dev(
            makedev(PTM_MAJOR, minor),
            flags,
            format!("open(ptm node minor {minor}, {flags:#x})"),
        )
    }

    /// `/dev/pts/N` as the process's zone sees it: ptms_conf's own
    /// `ptms_minor_valid` (the check /dev/pts makes), mode 0620.
    ///
    /// `ptms_minor_valid` ASSERTs that the owner's ids are not ephemeral,
    /// though ptm accepts ephemeral owners (OWNERPT): a DEBUG kernel panics
    /// here for such a pty. The world notes it in the trace and, unless
    /// `PTM_REAL_STRICT_DEBUG` is set, answers as the function does on a
    /// non-DEBUG kernel (the same zone check, the owner's ids) instead of
    /// calling it.
    pub(super) fn pts_node_of(&self, minor: u32) -> Option<PtsNode> {
        if let Some((_, zone, uid, gid)) = observe::pt_info(minor)
            && let Some(n) = ptm_scenario::msg::ephemeral_owner_note(minor, uid, gid)
        {
            trace::note_at(trace::position(), n);
            if !observe::strict_debug() {
                let mine = cred::crgetzoneid(unsafe_curcred());
                return (zone == mine).then_some(PtsNode {
                    uid,
                    gid,
                    mode: PTS_MODE,
                });
            }
        }
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: on the world's thread; ptms_minor_valid takes ptms_lock.
        let valid = unsafe { ptms_minor_valid(minor, &mut uid, &mut gid) } != 0;
        valid.then_some(PtsNode {
            uid,
            gid,
            mode: PTS_MODE,
        })
    }

    /// The permission check the node's mode makes (owner rw, group w).
    pub(super) fn do_open_subsidiary(&self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        let r = match self.pts_node_of(minor) {
            None => Err(Errno::ENOENT),
            Some(n) if self.st().cred.may_open(&n, flags) => Ok(()),
            Some(_) => Err(Errno::EACCES),
        };
        match r {
            Err(e) => {
                trace::sys(format!("open(/dev/pts/{minor}, {flags:#x})"), e.name());
                Err(e)
            }
            Ok(()) => self.do_open_subsidiary_node(minor, flags),
        }
    }

    pub(super) fn do_open_subsidiary_node(&self, minor: u32, flags: i32) -> Result<Fd, Errno> {
        self.open_dev(
            makedev(PTS_MAJOR, minor),
            flags,
            format!("open(/dev/pts/{minor}, {flags:#x})"),
        )
    }

    pub(super) fn do_close(&self, fd: Fd) -> Result<(), Errno> {
        let removed = self.st().files.remove(&fd.0);
        let Some(f) = removed else {
            trace::sys(format!("close(fd{})", fd.0), "EBADF".into());
            return Err(Errno::EBADF);
        };
        // SAFETY: a live vnode of this world; its stream head.
        let (stp, last) = unsafe { (ffi::kp_vnode_stream(f.vp), kp_vnode_count(f.vp) == 1) };
        let blocking = f.fflag & (FNDELAY | FNONBLOCK) == 0;
        let held = (last && blocking).then(|| observe::driver_write_backlog(f.vp));
        let (at, t0) = (trace::position(), sched::now_ticks());
        // SAFETY: one open of the vnode, closed once.
        let rc = unsafe { ffi::kp_close(f.vp, f.fflag) };
        sched::settle();
        // strclose waits (sd_closetime, 15 s) for each queue below the head
        // to drain: say so when the driver's could not.
        if let Some((n, driver)) = held
            && n > 0
            && sched::now_ticks() - t0 >= CLOSE_WAIT_TICKS
        {
            trace::note_at(
                at,
                format!(
                    "close of {} waits 15 s: {n} message(s) left on the {driver} write queue",
                    f.name
                ),
            );
        }
        if last {
            trace::forget_stream(stp);
        }
        let r = if rc == 0 { Ok(()) } else { Err(errno(rc)) };
        trace::sys(format!("close(fd{} {})", fd.0, f.name), show_unit(&r));
        r
    }

    pub(super) fn do_write(&self, fd: Fd, data: &[u8]) -> Result<usize, Errno> {
        let r = self
            .file(fd)
            .map(|f| (f.vp, f.fflag))
            .and_then(|(vp, fflag)| {
                let mut buf = data.to_vec();
                let mut done = 0;
                // SAFETY: a live vnode; buf is the user buffer for the call.
                let rc = unsafe {
                    ffi::kp_write(vp, buf.as_mut_ptr().cast(), buf.len(), fflag, &mut done)
                };
                sched::settle();
                if rc != 0 && done == 0 {
                    Err(errno(rc))
                } else {
                    Ok(done)
                }
            });
        trace::sys(
            format!("write(fd{}, {} bytes)", fd.0, data.len()),
            match &r {
                Ok(n) => n.to_string(),
                Err(e) => e.name(),
            },
        );
        r
    }

    pub(super) fn do_write_band(&self, fd: Fd, band: u8, data: &[u8]) -> Result<(), Errno> {
        let r = self
            .file(fd)
            .map(|f| (f.vp, f.fflag))
            .and_then(|(vp, fflag)| {
                let mut buf = data.to_vec();
                // SAFETY: a live vnode; buf is the user buffer for the call.
                let rc = unsafe {
                    ffi::kp_putpmsg(
                        vp,
                        std::ptr::null_mut(),
                        0,
                        buf.as_mut_ptr().cast(),
                        buf.len() as c_int,
                        c_int::from(band),
                        0,
                        fflag,
                    )
                };
                sched::settle();
                if rc != 0 { Err(errno(rc)) } else { Ok(()) }
            });
        trace::sys(
            format!("putpmsg(fd{}, band {band}, {} bytes)", fd.0, data.len()),
            show_unit(&r),
        );
        r
    }

    pub(super) fn do_read(&self, fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
        let r = self
            .file(fd)
            .map(|f| (f.vp, f.fflag))
            .and_then(|(vp, fflag)| {
                let mut buf = vec![0u8; n];
                let mut done = 0;
                // SAFETY: a live vnode; buf is the user buffer for the call.
                let rc = unsafe { ffi::kp_read(vp, buf.as_mut_ptr().cast(), n, fflag, &mut done) };
                sched::settle();
                if rc != 0 && done == 0 {
                    Err(errno(rc))
                } else {
                    buf.truncate(done);
                    Ok(buf)
                }
            });
        trace::sys(
            format!("read(fd{}, {n})", fd.0),
            match &r {
                Ok(v) => format!("{} {}", v.len(), show_bytes(v)),
                Err(e) => e.name(),
            },
        );
        r
    }

    fn raw_ioctl(&self, fd: Fd, cmd: c_int, arg: isize) -> Result<c_int, Errno> {
        let f = self.file(fd)?;
        let mut rval = 0;
        // SAFETY: a live vnode; `arg` points at memory of the caller's that
        // lives across the call (or is a plain value).
        let rc = unsafe { ffi::kp_ioctl(f.vp, cmd, arg, f.fflag, &mut rval) };
        sched::settle();
        if rc != 0 { Err(errno(rc)) } else { Ok(rval) }
    }

    /// `ioctl(fd, I_STR, {cmd, 0, len, buf})`: the reply is what the
    /// stream head copied back into `buf`.
    fn istr(&self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        #[repr(C)]
        struct StrIoctl {
            ic_cmd: c_int,
            ic_timout: c_int,
            ic_len: c_int,
            ic_dp: *mut c_void,
        }
        let mut buf = payload.to_vec();
        buf.resize(payload.len().max(STRMSGSZ), 0);
        let mut s = StrIoctl {
            ic_cmd: cmd,
            ic_timout: 0,
            ic_len: payload.len() as c_int,
            ic_dp: buf.as_mut_ptr().cast(),
        };
        let rval = self.raw_ioctl(fd, I_STR, &mut s as *mut StrIoctl as isize)?;
        buf.truncate(s.ic_len.max(0) as usize);
        Ok(IocReply { rval, data: buf })
    }

    pub(super) fn do_istr(&self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<IocReply, Errno> {
        let r = self.istr(fd, cmd, payload);
        trace::sys(
            format!(
                "ioctl(fd{}, I_STR {}, {} bytes)",
                fd.0,
                ioctl_name(cmd),
                payload.len()
            ),
            show_ioc(&r),
        );
        r
    }

    /// An ioctl whose payload is split over blocks: a real stream head
    /// makes one block per KiB of payload, so a payload in at most one
    /// non-empty part is a real I_STR; any other split is built as
    /// strdoioctl builds an M_IOCTL (the caller's credential, the next ioctl
    /// id) and
    /// sent down below the stream head, the reply taken as the head
    /// receives it.
    pub(super) fn do_ioctl_parts(
        &mut self,
        fd: Fd,
        cmd: i32,
        parts: &[&[u8]],
        keep_empty: bool,
    ) -> Result<IocReply, Errno> {
        let blocks: Vec<&[u8]> = parts
            .iter()
            .copied()
            .filter(|p| keep_empty || !p.is_empty())
            .collect();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let r =
            if blocks.len() <= 1 && !(keep_empty && blocks.first().is_some_and(|b| b.is_empty())) {
                self.istr(fd, cmd, blocks.first().copied().unwrap_or(&[]))
            } else {
                self.injected_ioctl(fd, cmd, &blocks, total)
            };
        trace::sys(
            format!(
                "ioctl(fd{}, I_STR {}, {total} bytes)",
                fd.0,
                ioctl_name(cmd)
            ),
            show_ioc(&r),
        );
        r
    }

    fn injected_ioctl(
        &mut self,
        fd: Fd,
        cmd: i32,
        blocks: &[&[u8]],
        total: usize,
    ) -> Result<IocReply, Errno> {
        let vp = self.file(fd)?.vp;
        // SAFETY: on the world's thread, `vp` an open stream's vnode.
        let pre = unsafe { ffi::kp_istr_preflight(vp) };
        if pre != 0 {
            return Err(Errno(pre));
        }
        // SAFETY: on the world's thread: the message is built as strdoioctl
        // builds one and handed to the stream below its head.
        unsafe {
            let mp = kp_mkioctl(cmd, ffi::kp_curcred(), total);
            if mp.is_null() {
                return Err(Errno::ENOMEM);
            }
            let id = (*(*mp).b_rptr.cast::<iocblk>()).ioc_id;
            for b in blocks {
                let bp = ffi::kp_mkmsg(M_DATA, 0, b.as_ptr().cast(), b.len());
                linkb(mp, bp);
            }
            trace::expect_reply(id);
            ffi::kp_send_down(vp, mp);
            sched::settle();
        }
        match trace::take_reply() {
            None => Err(Errno::ETIME),
            Some((t, rval, _, data)) if t == M_IOCACK => Ok(IocReply { rval, data }),
            Some((_, _, error, _)) => Err(Errno(if error == 0 { Errno::EINVAL.0 } else { error })),
        }
    }

    /// A transparent ioctl: `arg` points at a buffer holding `payload`;
    /// the reply's data is that buffer afterwards.
    pub(super) fn do_tty_ioctl(
        &mut self,
        fd: Fd,
        cmd: i32,
        payload: &[u8],
    ) -> Result<IocReply, Errno> {
        // The caller's buffer is `payload`; the kernel decides from `cmd`
        // how much it copies in or out. It gets room to spare, marked, so
        // a copyout past the caller's bytes is reported rather than
        // scribbling on this process (a real caller would see EFAULT or
        // corruption, depending on what lies beyond its buffer).
        const SPARE: usize = 1024;
        const MARK: u8 = 0xa5;
        let mut buf = payload.to_vec();
        buf.resize(payload.len() + SPARE, MARK);
        let r = self
            .raw_ioctl(fd, cmd, buf.as_mut_ptr() as isize)
            .map(|rval| {
                let past = buf[payload.len()..].iter().rposition(|&b| b != MARK);
                if let Some(last) = past {
                    trace::note(format!(
                        "{} wrote {} byte(s) past the caller's {}-byte buffer",
                        ioctl_name(cmd),
                        last + 1,
                        payload.len()
                    ));
                }
                buf.truncate(payload.len());
                IocReply { rval, data: buf }
            });
        trace::sys(
            format!("ioctl(fd{}, {})", fd.0, ioctl_name(cmd)),
            show_ioc(&r),
        );
        r
    }

    pub(super) fn do_flush(&self, fd: Fd, flags: i32, band: Option<u8>) -> Result<(), Errno> {
        #[repr(C)]
        struct BandInfo {
            bi_pri: u8,
            bi_flag: c_int,
        }
        let (r, what) = match band {
            None => (
                self.raw_ioctl(fd, I_FLUSH, flags as isize).map(|_| ()),
                format!("I_FLUSH {flags:#x}"),
            ),
            Some(b) => {
                let mut bi = BandInfo {
                    bi_pri: b,
                    bi_flag: flags,
                };
                (
                    self.raw_ioctl(fd, I_FLUSHBAND, &mut bi as *mut BandInfo as isize)
                        .map(|_| ()),
                    format!("I_FLUSHBAND band {b} {flags:#x}"),
                )
            }
        };
        trace::sys(format!("ioctl(fd{}, {what})", fd.0), show_unit(&r));
        r
    }

    pub(super) fn do_inject(
        &mut self,
        fd: Fd,
        mtype: u8,
        band: u8,
        data: &[u8],
    ) -> Result<(), Errno> {
        let r = self.file(fd).map(|f| f.vp).and_then(|vp| {
            // SAFETY: an uncounted message handed to the stream below its
            // head, as a stream head sends one.
            unsafe {
                let mp = ffi::kp_mkmsg(mtype, band, data.as_ptr().cast(), data.len());
                if mp.is_null() {
                    return Err(Errno::ENOMEM);
                }
                ffi::kp_send_down(vp, mp);
            }
            sched::settle();
            Ok(())
        });
        trace::sys(inject_call(fd, mtype, band, data.len()), show_unit(&r));
        r
    }

    pub(super) fn do_poll(&self, fd: Fd) -> Result<PollBits, Errno> {
        let vp = self.file(fd)?.vp;
        let mut revents = 0i16;
        // poll(fd, POLLIN | POLLOUT), as the scenario API defines it.
        let events = POLLIN | POLLOUT;
        // SAFETY: a live vnode; strpoll only reports.
        let rc = unsafe { ffi::kp_poll(vp, events, &mut revents) };
        sched::settle();
        if rc != 0 {
            return Err(errno(rc));
        }
        let p = PollBits {
            pollin: revents & (POLLIN | POLLRDNORM | POLLRDBAND | POLLPRI) != 0,
            pollout: revents & POLLOUT != 0,
            pollerr: revents & POLLERR != 0,
            pollhup: revents & POLLHUP != 0,
        };
        trace::sys(format!("poll(fd{})", fd.0), format!("{p:?}"));
        Ok(p)
    }

    /// Gives the process a credential for its current user and zone.
    pub(super) fn install_cred(&self) {
        let (c, zone) = {
            let st = self.st();
            (st.cred, st.zone)
        };
        let cr = cred::cred_new(c.uid, c.gid, zone, c.privileged);
        let p = self.inner.proc_.0;
        // SAFETY: the world's process, and a fresh held credential for it.
        let old = unsafe { ffi::kp_proc_set_cred(p, cr) };
        // SAFETY: the calling thread runs in that process.
        unsafe { ffi::kp_thread_set_proc(p) };
        cred::crfree(old);
    }
}
