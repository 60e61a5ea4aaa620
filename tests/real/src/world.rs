//! A world: one process with open files on the real kernel, running one
//! ptm variant.

use std::ffi::{c_int, c_void};
use std::sync::{Mutex, MutexGuard};

use crate::kernel::{self, ffi, sched};

/// Major numbers of the world's devices.
pub const CLONE_MAJOR: u32 = 11;
pub const PTM_MAJOR: u32 = 22;
pub const PTS_MAJOR: u32 = 23;

/// The process id of the world's process.
pub const WORLD_PID: i32 = 4242;

pub fn makedev(major: u32, minor: u32) -> u64 {
    (u64::from(major) << 32) | u64::from(minor)
}

/// One world at a time per process: the kernel is process-wide.
static WORLD_LOCK: Mutex<()> = Mutex::new(());

/// A file descriptor of the world's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub usize);

/// An errno value (illumos numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

struct File {
    vp: *mut ffi::vnode_t,
    fflag: c_int,
}

/// `open(2)` flags to the kernel's file flags (FREAD/FWRITE = access + 1).
fn fflags(oflag: i32) -> c_int {
    (oflag & !3) | ((oflag & 3) + 1)
}

pub struct World {
    proc_: *mut ffi::proc_t,
    files: Vec<Option<File>>,
    _lock: MutexGuard<'static, ()>,
}

impl World {
    /// A world running the C ptm.c compiled into the kernel.
    pub fn new() -> Result<World, String> {
        kernel::boot(sched::Mode::Deterministic)?;
        let lock = WORLD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        kernel::set_label("world running C ptm.c");
        let cr = kernel::cred::cred_new(0, 0, 0, true);
        // SAFETY: a fresh credential, whose hold the process takes.
        let p = unsafe { ffi::kp_proc_create(WORLD_PID, cr) };
        if p.is_null() {
            return Err("cannot create the world's process".into());
        }
        sched::attach_process_thread("world", p);
        let (name, info, init, _) = kernel::MODULES
            .iter()
            .find(|m| m.0 == c"ptm")
            .copied()
            .expect("ptm module");
        let rc = kernel::mod_load(name, info, init);
        sched::settle();
        if rc != 0 {
            return Err(format!("ptm _init failed: {rc}"));
        }
        Ok(World {
            proc_: p,
            files: Vec::new(),
            _lock: lock,
        })
    }

    fn add(&mut self, f: File) -> Fd {
        match self.files.iter().position(Option::is_none) {
            Some(i) => {
                self.files[i] = Some(f);
                Fd(i)
            }
            None => {
                self.files.push(Some(f));
                Fd(self.files.len() - 1)
            }
        }
    }

    fn file(&self, fd: Fd) -> Result<&File, Errno> {
        self.files
            .get(fd.0)
            .and_then(Option::as_ref)
            .ok_or(Errno(9))
    }

    fn open_dev(&mut self, dev: u64, oflag: i32) -> Result<Fd, Errno> {
        let mut vp = std::ptr::null_mut();
        let mut newdev = 0;
        let fflag = fflags(oflag);
        // SAFETY: called on the world's attached thread.
        let rc = unsafe { ffi::kp_open(dev, fflag, &mut vp, &mut newdev) };
        sched::settle();
        if rc != 0 {
            return Err(Errno(rc));
        }
        Ok(self.add(File { vp, fflag }))
    }

    /// Opens `/dev/ptmx` (the clone device for ptm).
    pub fn open_manager(&mut self, oflag: i32) -> Result<Fd, Errno> {
        self.open_dev(makedev(CLONE_MAJOR, PTM_MAJOR), oflag)
    }

    /// Opens `/dev/pts/<minor>`.
    pub fn open_subsidiary(&mut self, minor: u32, oflag: i32) -> Result<Fd, Errno> {
        self.open_dev(makedev(PTS_MAJOR, minor), oflag)
    }

    /// The device an fd is open on: (major, minor).
    pub fn fstat_dev(&self, fd: Fd) -> Result<(u32, u32), Errno> {
        let f = self.file(fd)?;
        // SAFETY: a live vnode of this world.
        let dev = unsafe { ffi::kp_vnode_dev(f.vp) };
        Ok(((dev >> 32) as u32, dev as u32))
    }

    pub fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize, Errno> {
        let f = self.file(fd)?;
        let mut done = 0;
        let mut buf = data.to_vec();
        // SAFETY: a live vnode; buf is the user buffer for the call.
        let rc =
            unsafe { ffi::kp_write(f.vp, buf.as_mut_ptr().cast(), buf.len(), f.fflag, &mut done) };
        sched::settle();
        if rc != 0 && done == 0 {
            return Err(Errno(rc));
        }
        Ok(done)
    }

    pub fn read(&mut self, fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
        let f = self.file(fd)?;
        let mut done = 0;
        let mut buf = vec![0u8; n];
        // SAFETY: a live vnode; buf is the user buffer for the call.
        let rc = unsafe { ffi::kp_read(f.vp, buf.as_mut_ptr().cast(), n, f.fflag, &mut done) };
        sched::settle();
        if rc != 0 && done == 0 {
            return Err(Errno(rc));
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// `ioctl(fd, I_STR, ...)` with `cmd` and `payload`: the reply's data.
    pub fn ioctl(&mut self, fd: Fd, cmd: i32, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        const I_STR: c_int = (b'S' as c_int) << 8 | 0o10;
        #[repr(C)]
        struct StrIoctl {
            ic_cmd: c_int,
            ic_timout: c_int,
            ic_len: c_int,
            ic_dp: *mut c_void,
        }
        let f = self.file(fd)?;
        let mut buf = payload.to_vec();
        buf.resize(payload.len().max(1024), 0);
        let mut s = StrIoctl {
            ic_cmd: cmd,
            ic_timout: 0,
            ic_len: payload.len() as c_int,
            ic_dp: buf.as_mut_ptr().cast(),
        };
        let mut rval = 0;
        // SAFETY: a live vnode; s and buf are the user memory for the call.
        let rc = unsafe {
            ffi::kp_ioctl(
                f.vp,
                I_STR,
                &mut s as *mut StrIoctl as isize,
                f.fflag,
                &mut rval,
            )
        };
        sched::settle();
        if rc != 0 {
            return Err(Errno(rc));
        }
        buf.truncate(s.ic_len.max(0) as usize);
        Ok(buf)
    }

    pub fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        let f = self
            .files
            .get_mut(fd.0)
            .and_then(Option::take)
            .ok_or(Errno(9))?;
        // SAFETY: a live vnode of this world, closed once.
        let rc = unsafe { ffi::kp_close(f.vp, f.fflag) };
        sched::settle();
        if rc != 0 { Err(Errno(rc)) } else { Ok(()) }
    }

    /// Closes everything, unloads ptm, reaps the caches and reports what
    /// is left.
    pub fn finish(mut self) -> Result<Vec<kernel::Event>, String> {
        for i in 0..self.files.len() {
            if self.files[i].is_some() {
                let _ = self.close(Fd(i));
            }
        }
        let (name, _, _, fini) = kernel::MODULES
            .iter()
            .find(|m| m.0 == c"ptm")
            .copied()
            .expect("ptm module");
        let rc = kernel::mod_unload(name, fini);
        sched::settle();
        kernel::kmem::reap_all();
        // SAFETY: the process has no open files and no thread in the kernel
        // but ours, which leaves it now.
        let cr = unsafe { ffi::kp_proc_destroy(self.proc_) };
        kernel::cred::crfree(cr);
        sched::detach_process_thread();
        kernel::kmem::check_quarantine()?;
        if rc != 0 {
            return Err(format!("ptm _fini failed: {rc}"));
        }
        Ok(kernel::take_events())
    }
}
