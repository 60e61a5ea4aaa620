//! Terminal sessions on the real pts: a second process that leads a
//! session (the "shell"), the STREAMS modules of a login pushed on its
//! subsidiary, termios and window sizes through transparent ioctls,
//! getmsg for packet mode on the manager, and a loop that runs a session
//! scenario on every ptm variant and compares the traces.
//!
//! A [`Session`] owns a [`World`]: the world's own process (pid 4242)
//! plays the terminal emulator on the manager side; the shell (pid
//! [`SHELL_PID`]) is a second process that leads a session and process
//! group of its own, opens the subsidiary and, unless it says `O_NOCTTY`,
//! makes it its controlling terminal as specfs does after `stropen`
//! (csrc/session.c). Every system call runs as the process that owns the
//! file: the world's one thread takes the process's identity for the call,
//! so `curproc` is the caller for illumos's code (strctty, job control,
//! the credential). Signals are recorded, not delivered: the trace shows
//! each one with whom it was sent to.
//!
//! The shell's session holds its controlling terminal until the shell lets
//! go of it: closing the shell's last descriptor of its controlling
//! terminal first calls `freectty` as the session leader (illumos unbinds
//! a session's terminal before the stream's last close; strclose asserts
//! it), which is what the shell's exit does.

use std::collections::BTreeMap;
use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use ptm_scenario::msg::{ioctl_name, show_bytes};
use ptm_scenario::{
    Backend, Errno, Fd, O_NOCTTY, O_NONBLOCK, O_RDWR, OWNERPT, PTSSTTY, PollBits, Pty, TraceEvent,
    UNLKPT, Variant,
};

use super::{World, trace};
use crate::kernel::{cred, ffi, sched};

/// The shell's process id (it leads its session and process group).
pub const SHELL_PID: i32 = 4300;

// illumos's ioctl commands (sys/stropts.h, sys/termios.h, sys/ptyvar.h);
// TCGETS and the window-size ioctls are ptm-scenario's.
pub use ptm_scenario::{TCGETS, TIOCGWINSZ, TIOCSWINSZ};
pub const I_PUSH: i32 = 0x5302;
pub const I_POP: i32 = 0x5303;
pub const I_FIND: i32 = 0x530b;
/// `__I_PUSH_NOCTTY`: push a module, never taking a controlling terminal.
pub const I_PUSH_NOCTTY: i32 = 0x5327;
pub const TCGETA: i32 = 0x5401;
pub const TCSBRK: i32 = 0x5405;
pub const TCXONC: i32 = 0x5406;
pub const TCFLSH: i32 = 0x5407;
pub const TCSETS: i32 = 0x540e;
pub const TCSETSW: i32 = 0x540f;
pub const TCSETSF: i32 = 0x5410;
pub const TIOCGPGRP: i32 = 0x7414;
pub const TIOCSPGRP: i32 = 0x7415;
pub const TIOCGSID: i32 = 0x7416;
pub const TIOCSCTTY: i32 = 0x7484;
/// `_IOW('t', 112, int)`: BSD packet mode, which illumos does not offer.
pub const TIOCPKT: i32 = 0x8004_7470u32 as i32;

// termios bits (sys/termios.h).
pub const BRKINT: u32 = 0o2;
pub const ICRNL: u32 = 0o400;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IMAXBEL: u32 = 0o20000;
pub const OPOST: u32 = 0o1;
pub const ONLCR: u32 = 0o4;
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VMIN: usize = 4;
pub const VTIME: usize = 5;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VWERASE: usize = 14;

// Signals (sys/signal.h).
pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGWINCH: i32 = 20;
pub const SIGTSTP: i32 = 24;

// Message types a pckt packet names (sys/stream.h).
pub const M_DATA: u8 = 0x00;
pub const M_PROTO: u8 = 0x01;
pub const M_IOCTL: u8 = 0x0e;
pub const M_FLUSH: u8 = 0x86;
pub const M_STOP: u8 = 0x87;
pub const M_START: u8 = 0x88;

/// `TCFLSH` arguments.
pub const TCIFLUSH: isize = 0;
pub const TCOFLUSH: isize = 1;
pub const TCIOFLUSH: isize = 2;

/// The kernel's `FNONBLOCK` (fcntl's O_NONBLOCK).
const NONBLOCKING: c_int = O_NONBLOCK;

unsafe extern "C" {
    fn kp_open_ctty(vp: *mut ffi::vnode_t, flag: c_int) -> c_int;
    fn kp_release_ctty() -> c_int;
    fn kp_stream_session(vp: *mut ffi::vnode_t, sid: *mut i32, pgid: *mut i32);
    fn kp_stream_is_ctty(vp: *mut ffi::vnode_t) -> c_int;
    fn kp_vnode_count(vp: *mut ffi::vnode_t) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn kp_getmsg(
        vp: *mut ffi::vnode_t,
        ctl: *mut c_void,
        ctlmax: c_int,
        ctllen: *mut c_int,
        data: *mut c_void,
        datamax: c_int,
        datalen: *mut c_int,
        hipri: *mut c_int,
        fmode: c_int,
        more: *mut c_int,
    ) -> c_int;
}

/// `struct termios` as illumos lays it out (36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_cc: [u8; 19],
}

impl Termios {
    pub const SIZE: usize = 36;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        for (i, f) in [self.c_iflag, self.c_oflag, self.c_cflag, self.c_lflag]
            .iter()
            .enumerate()
        {
            b[4 * i..4 * i + 4].copy_from_slice(&f.to_le_bytes());
        }
        b[16..35].copy_from_slice(&self.c_cc);
        b
    }

    pub fn from_bytes(b: &[u8]) -> Termios {
        let w = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        let mut cc = [0u8; 19];
        cc.copy_from_slice(&b[16..35]);
        Termios {
            c_iflag: w(0),
            c_oflag: w(1),
            c_cflag: w(2),
            c_lflag: w(3),
            c_cc: cc,
        }
    }
}

/// `struct winsize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Winsize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

impl Winsize {
    fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        for (i, v) in [self.rows, self.cols, self.xpixel, self.ypixel]
            .iter()
            .enumerate()
        {
            b[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
    fn from_bytes(b: &[u8]) -> Winsize {
        let h = |i: usize| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
        Winsize {
            rows: h(0),
            cols: h(1),
            xpixel: h(2),
            ypixel: h(3),
        }
    }
}

/// One message taken with getmsg: its control and data parts (`None`:
/// the message had no such part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetMsg {
    pub ctl: Option<Vec<u8>>,
    pub data: Option<Vec<u8>>,
    pub hipri: bool,
    /// MORECTL | MOREDATA: parts left for the next getmsg.
    pub more: i32,
}

/// Which process a call is made by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The world's process (pid 4242): the terminal emulator or login
    /// daemon on the manager side.
    Manager,
    /// The shell (pid [`SHELL_PID`]): a session leader on the subsidiary.
    Shell,
}

/// How the login modules get onto the subsidiary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    /// The shell I_PUSHes ptem, ldterm and ttcompat after opening the
    /// subsidiary (what login daemons do).
    Push,
    /// The manager sends PTSSTTY before the subsidiary opens; pts marks
    /// the stream XPG4 and the stream head's open pushes the three modules
    /// itself and sends PTSSTTY down to them.
    Ptsstty,
}

/// A world with a shell process: see the module documentation.
pub struct Session {
    w: Option<Box<World>>,
    shell: *mut ffi::proc_t,
    owner: BTreeMap<i32, Who>,
}

fn show<T: std::fmt::Debug>(r: &Result<T, Errno>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => e.name(),
    }
}

fn errno(rc: c_int) -> Errno {
    if rc == Errno::EINTR.0 {
        Errno::BLOCKED
    } else {
        Errno(rc)
    }
}

impl Session {
    /// A world running `v`, with the shell process made and leading its
    /// own session.
    pub fn new(v: Variant) -> Result<Session, String> {
        let w = Box::new(World::new(v)?);
        let cr = cred::cred_new(0, 0, 0, true);
        // SAFETY: a fresh credential, whose hold the new process takes.
        let shell = unsafe { ffi::kp_proc_create(SHELL_PID, cr) };
        if shell.is_null() {
            cred::crfree(cr);
            return Err(format!("cannot create the shell process {SHELL_PID}"));
        }
        Ok(Session {
            w: Some(w),
            shell,
            owner: BTreeMap::new(),
        })
    }

    fn world_ref(&self) -> &World {
        self.w.as_deref().expect("a live session")
    }

    /// The world, for calls made by the manager's process (the Pty API).
    pub fn world(&mut self) -> &mut World {
        self.w.as_deref_mut().expect("a live session")
    }

    pub fn variant(&self) -> Variant {
        self.world_ref().inner.variant
    }

    /// Runs `f` on the world's thread as process `who`.
    fn as_proc<R>(&mut self, who: Who, f: impl FnOnce(&mut World) -> R) -> R {
        let w = self.w.as_deref_mut().expect("a live session");
        let p = match who {
            Who::Shell => self.shell,
            Who::Manager => w.inner.proc_.0,
        };
        // SAFETY: both processes are live; the world's thread is the only
        // one making system calls, and takes the identity back below.
        unsafe { ffi::kp_thread_set_proc(p) };
        let r = f(w);
        // SAFETY: as above.
        unsafe { ffi::kp_thread_set_proc(w.inner.proc_.0) };
        r
    }

    fn who(&self, fd: Fd) -> Who {
        self.owner.get(&fd.0).copied().unwrap_or(Who::Manager)
    }

    fn vnode(&self, fd: Fd) -> Result<(*mut ffi::vnode_t, c_int), Errno> {
        self.world_ref().file(fd).map(|f| (f.vp, f.fflag))
    }

    fn note(&self, call: String, result: String) {
        trace::sys(call, result);
    }

    // --- opening a pty ---------------------------------------------------

    /// posix_openpt(O_RDWR | O_NOCTTY), by the manager's process.
    pub fn open_manager(&mut self) -> Result<Fd, Errno> {
        let r = self.world().do_open_manager(O_RDWR | O_NOCTTY);
        if let Ok(fd) = r {
            self.owner.insert(fd.0, Who::Manager);
        }
        r
    }

    /// grantpt: OWNERPT with the shell's ids (root, group tty).
    pub fn grantpt(&mut self, m: Fd) -> Result<(), Errno> {
        let mut own = Vec::new();
        own.extend_from_slice(&0u32.to_le_bytes());
        own.extend_from_slice(&ptm_scenario::TTY_GID.to_le_bytes());
        self.world().do_istr(m, OWNERPT, &own).map(|_| ())
    }

    pub fn unlockpt(&mut self, m: Fd) -> Result<(), Errno> {
        self.world().do_istr(m, UNLKPT, &[]).map(|_| ())
    }

    /// ptsname as illumos's libc makes it: the fd must be a manager
    /// (I_STR ISPTM is ACKed), the name is /dev/pts/ and its minor.
    pub fn ptsname(&mut self, m: Fd) -> Result<String, Errno> {
        self.world().do_istr(m, ptm_scenario::ISPTM, &[])?;
        let (_, minor) = self.world().fstat_minor(m)?;
        Ok(format!("/dev/pts/{minor}"))
    }

    /// open(2) of /dev/pts/`minor` by `who`, finished as specfs finishes
    /// it: without O_NOCTTY a tty becomes the caller's controlling
    /// terminal if strctty agrees.
    pub fn open_pts(&mut self, who: Who, minor: u32, flags: i32) -> Result<Fd, Errno> {
        let r = self.as_proc(who, |w| {
            let fd = w.do_open_subsidiary_node(minor, flags)?;
            let vp = w.file(fd)?.vp;
            // SAFETY: the vnode just opened, on the world's thread.
            let rc = unsafe { kp_open_ctty(vp, super::fflags(flags)) };
            sched::settle();
            if rc >= 0 {
                trace::sys(
                    format!("  (open of fd{} asks for a controlling terminal)", fd.0),
                    if rc == 0 {
                        "ctty".into()
                    } else {
                        Errno(rc).name()
                    },
                );
            }
            Ok(fd)
        });
        if let Ok(fd) = r {
            self.owner.insert(fd.0, who);
        }
        r
    }

    /// The whole login: manager opened, granted and unlocked, the
    /// subsidiary opened by the shell (taking it as its controlling
    /// terminal) with ptem, ldterm and ttcompat on it, by `how`.
    pub fn login(&mut self, how: Login) -> Result<(Fd, Fd, u32), Errno> {
        let m = self.open_manager()?;
        let minor = self.world().minor_of(m)?;
        self.grantpt(m)?;
        if how == Login::Ptsstty {
            self.world().do_istr(m, PTSSTTY, &[])?;
        }
        self.unlockpt(m)?;
        let s = self.open_pts(Who::Shell, minor, O_RDWR)?;
        if how == Login::Push {
            for name in ["ptem", "ldterm", "ttcompat"] {
                self.push(s, name)?;
            }
        }
        Ok((m, s, minor))
    }

    // --- STREAMS ioctls ----------------------------------------------------

    fn raw_ioctl(&mut self, fd: Fd, cmd: i32, arg: isize) -> Result<i32, Errno> {
        let (vp, fflag) = self.vnode(fd)?;
        let who = self.who(fd);
        self.as_proc(who, |_| {
            let mut rval = 0;
            // SAFETY: a live vnode; `arg` is a value or points at memory of
            // the caller's that lives across the call.
            let rc = unsafe { ffi::kp_ioctl(vp, cmd, arg, fflag, &mut rval) };
            sched::settle();
            if rc != 0 { Err(errno(rc)) } else { Ok(rval) }
        })
    }

    fn named_ioctl(&mut self, fd: Fd, cmd: i32, what: &str, name: &str) -> Result<i32, Errno> {
        let mut buf = name.as_bytes().to_vec();
        buf.push(0);
        let r = self.raw_ioctl(fd, cmd, buf.as_mut_ptr() as isize);
        self.note(format!("ioctl(fd{}, {what} \"{name}\")", fd.0), show(&r));
        r
    }

    /// I_PUSH `name` (the stream may become the caller's controlling
    /// terminal, as illumos's I_PUSH offers it to strctty).
    pub fn push(&mut self, fd: Fd, name: &str) -> Result<(), Errno> {
        self.named_ioctl(fd, I_PUSH, "I_PUSH", name).map(|_| ())
    }

    /// __I_PUSH_NOCTTY `name`.
    pub fn push_noctty(&mut self, fd: Fd, name: &str) -> Result<(), Errno> {
        self.named_ioctl(fd, I_PUSH_NOCTTY, "__I_PUSH_NOCTTY", name)
            .map(|_| ())
    }

    /// I_FIND `name`: 1 if the module is on the stream.
    pub fn find(&mut self, fd: Fd, name: &str) -> Result<i32, Errno> {
        self.named_ioctl(fd, I_FIND, "I_FIND", name)
    }

    /// I_POP.
    pub fn pop(&mut self, fd: Fd) -> Result<(), Errno> {
        let r = self.raw_ioctl(fd, I_POP, 0).map(|_| ());
        self.note(format!("ioctl(fd{}, I_POP)", fd.0), show(&r));
        r
    }

    /// An ioctl whose argument is a value (TCSBRK, TCXONC, TCFLSH, ...).
    pub fn ioctl_val(&mut self, fd: Fd, cmd: i32, arg: isize) -> Result<i32, Errno> {
        let r = self.raw_ioctl(fd, cmd, arg);
        self.note(
            format!("ioctl(fd{}, {}, {arg})", fd.0, tty_ioctl_name(cmd)),
            show(&r),
        );
        r
    }

    /// A transparent ioctl whose argument points at `buf` (which the
    /// stream head copies in and out as the modules ask, M_COPYIN and
    /// M_COPYOUT).
    pub fn ioctl_buf(&mut self, fd: Fd, cmd: i32, buf: &mut [u8]) -> Result<i32, Errno> {
        let r = self.raw_ioctl(fd, cmd, buf.as_mut_ptr() as isize);
        // ldterm answers TCGETA with a struct termio whose padding byte
        // (the 18th) it never sets: the copy-out carries whatever the
        // message buffer held. The trace shows it as zero.
        let mut shown = buf.to_vec();
        if cmd == TCGETA && shown.len() >= 18 {
            shown[17] = 0;
        }
        self.note(
            format!("ioctl(fd{}, {}, &buf)", fd.0, tty_ioctl_name(cmd)),
            match &r {
                Ok(v) => format!("{v} buf {}", show_bytes(&shown)),
                Err(e) => e.name(),
            },
        );
        r
    }

    pub fn tcgetattr(&mut self, fd: Fd) -> Result<Termios, Errno> {
        let mut b = [0u8; Termios::SIZE];
        self.ioctl_buf(fd, TCGETS, &mut b)?;
        Ok(Termios::from_bytes(&b))
    }

    /// TCSETS, TCSETSW or TCSETSF.
    pub fn tcsetattr(&mut self, fd: Fd, cmd: i32, t: &Termios) -> Result<(), Errno> {
        let mut b = t.to_bytes();
        self.ioctl_buf(fd, cmd, &mut b).map(|_| ())
    }

    /// Changes the termios of `fd` with `f` (TCSETS).
    pub fn modify_termios(&mut self, fd: Fd, f: impl FnOnce(&mut Termios)) -> Result<(), Errno> {
        let mut t = self.tcgetattr(fd)?;
        f(&mut t);
        self.tcsetattr(fd, TCSETS, &t)
    }

    pub fn get_winsize(&mut self, fd: Fd) -> Result<Winsize, Errno> {
        let mut b = [0u8; 8];
        self.ioctl_buf(fd, TIOCGWINSZ, &mut b)?;
        Ok(Winsize::from_bytes(&b))
    }

    pub fn set_winsize(&mut self, fd: Fd, ws: Winsize) -> Result<(), Errno> {
        let mut b = ws.to_bytes();
        self.ioctl_buf(fd, TIOCSWINSZ, &mut b).map(|_| ())
    }

    /// TIOCGPGRP (or TIOCGSID): a pid_t copied out.
    pub fn ioctl_pid(&mut self, fd: Fd, cmd: i32) -> Result<i32, Errno> {
        let mut b = [0u8; 4];
        self.ioctl_buf(fd, cmd, &mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    // --- data --------------------------------------------------------------

    pub fn read(&mut self, fd: Fd, n: usize) -> Result<Vec<u8>, Errno> {
        let who = self.who(fd);
        self.as_proc(who, |w| w.do_read(fd, n))
    }

    pub fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize, Errno> {
        let who = self.who(fd);
        self.as_proc(who, |w| w.do_write(fd, data))
    }

    pub fn poll(&mut self, fd: Fd) -> Result<PollBits, Errno> {
        let who = self.who(fd);
        self.as_proc(who, |w| w.do_poll(fd))
    }

    /// fcntl(F_SETFL) of O_NONBLOCK | O_NDELAY.
    pub fn set_nonblock(&mut self, fd: Fd, on: bool) -> Result<(), Errno> {
        {
            let w = self.world();
            let mut st = w.st();
            let f = st.files.get_mut(&fd.0).ok_or(Errno::EBADF)?;
            if on {
                f.fflag |= NONBLOCKING;
            } else {
                f.fflag &= !NONBLOCKING;
            }
        }
        self.note(
            format!("fcntl(fd{}, F_SETFL, nonblock {on})", fd.0),
            "0".into(),
        );
        Ok(())
    }

    /// getmsg(2) with room for `ctlmax` control and `datamax` data bytes.
    pub fn getmsg(&mut self, fd: Fd, ctlmax: usize, datamax: usize) -> Result<GetMsg, Errno> {
        let (vp, fflag) = self.vnode(fd)?;
        let who = self.who(fd);
        let r = self.as_proc(who, |_| {
            let mut ctl = vec![0u8; ctlmax];
            let mut data = vec![0u8; datamax];
            let (mut cl, mut dl, mut hi, mut more) = (0, 0, 0, 0);
            // SAFETY: a live vnode; the buffers are ours and live across
            // the call.
            let rc = unsafe {
                kp_getmsg(
                    vp,
                    ctl.as_mut_ptr().cast(),
                    ctlmax as c_int,
                    &mut cl,
                    data.as_mut_ptr().cast(),
                    datamax as c_int,
                    &mut dl,
                    &mut hi,
                    fflag,
                    &mut more,
                )
            };
            sched::settle();
            if rc != 0 {
                return Err(errno(rc));
            }
            let part = |mut v: Vec<u8>, n: c_int| {
                (n >= 0).then(|| {
                    v.truncate(n as usize);
                    v
                })
            };
            Ok(GetMsg {
                ctl: part(ctl, cl),
                data: part(data, dl),
                hipri: hi != 0,
                more,
            })
        });
        self.note(
            format!("getmsg(fd{}, {ctlmax}, {datamax})", fd.0),
            match &r {
                Ok(g) => format!(
                    "ctl {} data {}{}",
                    g.ctl.as_deref().map_or("none".into(), show_bytes),
                    g.data
                        .as_deref()
                        .map_or("none".into(), |d| show_bytes(&packet_comparable(g, d))),
                    if g.more != 0 {
                        format!(" more {}", g.more)
                    } else {
                        String::new()
                    }
                ),
                Err(e) => e.name(),
            },
        );
        r
    }

    /// close(2). The shell's last descriptor of its controlling terminal
    /// is closed as the shell's exit closes it: the session lets go of
    /// the terminal first (freectty).
    pub fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        let who = self.who(fd);
        if let Ok((vp, _)) = self.vnode(fd) {
            // SAFETY: a live vnode of this world.
            let (count, ctty) = unsafe { (kp_vnode_count(vp), kp_stream_is_ctty(vp) != 0) };
            if count == 1 && ctty && who == Who::Shell {
                let rc = self.as_proc(who, |_| {
                    // SAFETY: on the world's thread, as the shell.
                    let rc = unsafe { kp_release_ctty() };
                    sched::settle();
                    rc
                });
                self.note(
                    format!("  (shell {SHELL_PID} lets go of its controlling terminal)"),
                    rc.to_string(),
                );
            }
        }
        let r = self.as_proc(who, |w| w.do_close(fd));
        self.owner.remove(&fd.0);
        r
    }

    /// (session, foreground process group) whose controlling terminal
    /// `fd`'s stream is; (0, 0) when it is nobody's.
    pub fn ctty_of(&self, fd: Fd) -> Result<(i32, i32), Errno> {
        let (vp, _) = self.vnode(fd)?;
        let (mut sid, mut pgid) = (0, 0);
        // SAFETY: a live vnode; the function takes the stream's lock.
        unsafe { kp_stream_session(vp, &mut sid, &mut pgid) };
        Ok((sid, pgid))
    }

    // --- what happened -----------------------------------------------------

    pub fn trace(&self) -> Vec<TraceEvent> {
        self.world_ref().trace()
    }

    pub fn trace_lines(&self) -> Vec<String> {
        comparable(&self.trace())
    }

    /// Every signal sent so far: (to, id, signal).
    pub fn signals(&self) -> Vec<(char, i32, i32)> {
        self.trace()
            .into_iter()
            .filter_map(|e| match e {
                TraceEvent::Signal { to, id, sig } => Some((to, id, sig)),
                _ => None,
            })
            .collect()
    }

    /// Marks the trace: [`signals_since`](Self::signals_since) counts from
    /// here.
    pub fn mark(&self) -> usize {
        self.trace().len()
    }

    pub fn signals_since(&self, mark: usize) -> Vec<(char, i32, i32)> {
        self.trace()
            .into_iter()
            .skip(mark)
            .filter_map(|e| match e {
                TraceEvent::Signal { to, id, sig } => Some((to, id, sig)),
                _ => None,
            })
            .collect()
    }

    /// The messages stream `name` (`M<minor>`, `S<minor>`) received since
    /// `mark`: (type, bytes).
    pub fn received_since(&self, mark: usize, name: &str) -> Vec<(u8, Vec<u8>)> {
        self.trace()
            .into_iter()
            .skip(mark)
            .filter_map(|e| match e {
                TraceEvent::HeadRecv { stream, msg } if stream == name => {
                    Some((msg.mtype, msg.bytes))
                }
                _ => None,
            })
            .collect()
    }

    fn shell_exits(&mut self) {
        let fds: Vec<Fd> = self
            .owner
            .iter()
            .filter(|(_, w)| **w == Who::Shell)
            .map(|(&fd, _)| Fd(fd))
            .collect();
        for fd in fds {
            let _ = self.close(fd);
        }
        if !self.shell.is_null() {
            // SAFETY: the shell has no open file left and no thread in the
            // kernel.
            let cr = unsafe { ffi::kp_proc_destroy(self.shell) };
            cred::crfree(cr);
            self.shell = std::ptr::null_mut();
        }
    }

    /// The shell exits (closing its files), then the world ends as a
    /// scenario's world does: everything closed, ptm unloaded, no leak.
    /// Returns the trace.
    pub fn finish(mut self) -> Result<Vec<String>, String> {
        self.shell_exits();
        let mut w = self.w.take().expect("a live session");
        let problems = w.teardown();
        let lines = comparable(&trace::events());
        if !problems.is_empty() {
            return Err(format!(
                "[{}] {}\ntrace:\n{}",
                w.inner.variant.name,
                problems.join("; "),
                lines.join("\n")
            ));
        }
        Ok(lines)
    }

    /// The virtual clock, in ticks (100 a second).
    pub fn now_ticks(&self) -> u64 {
        sched::now_ticks()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.w.is_some() {
            self.shell_exits();
        }
    }
}

/// A packet's data as the trace shows it: an M_IOCTL packet carries the
/// iocblk, whose credential pointer and ioctl id (bytes 8 to 20) are
/// addresses and counters of this process, shown as zeros.
fn packet_comparable(g: &GetMsg, d: &[u8]) -> Vec<u8> {
    let mut d = d.to_vec();
    if g.ctl.as_deref() == Some(&[M_IOCTL][..]) && d.len() >= 20 {
        d[8..20].fill(0);
    }
    d
}

/// The trace as lines to compare between variants. ptem tells the
/// manager side about mode changes with M_CTL messages that carry an
/// iocblk; its credential pointer and ioctl id (bytes 8 to 20) are
/// addresses and counters of this process, not behaviour, and are shown
/// as zeros.
fn comparable(events: &[TraceEvent]) -> Vec<String> {
    const M_CTL: u8 = 0x0d;
    events
        .iter()
        .map(|e| match e {
            TraceEvent::HeadRecv { stream, msg } if msg.mtype == M_CTL && msg.bytes.len() >= 20 => {
                let mut msg = msg.clone();
                msg.bytes[8..20].fill(0);
                TraceEvent::HeadRecv {
                    stream: stream.clone(),
                    msg,
                }
                .to_string()
            }
            // pckt's packet of ptem's M_IOCTL: the type byte, then the
            // iocblk.
            TraceEvent::HeadRecv { stream, msg }
                if msg.mtype == M_PROTO && msg.bytes.len() >= 21 && msg.bytes[0] == M_IOCTL =>
            {
                let mut msg = msg.clone();
                msg.bytes[9..21].fill(0);
                TraceEvent::HeadRecv {
                    stream: stream.clone(),
                    msg,
                }
                .to_string()
            }
            e => e.to_string(),
        })
        .collect()
}

fn tty_ioctl_name(cmd: i32) -> String {
    match cmd {
        TCGETA => "TCGETA".into(),
        TCSBRK => "TCSBRK".into(),
        TCXONC => "TCXONC".into(),
        TCFLSH => "TCFLSH".into(),
        TCGETS => "TCGETS".into(),
        TCSETS => "TCSETS".into(),
        TCSETSW => "TCSETSW".into(),
        TCSETSF => "TCSETSF".into(),
        TIOCGWINSZ => "TIOCGWINSZ".into(),
        TIOCSWINSZ => "TIOCSWINSZ".into(),
        TIOCGPGRP => "TIOCGPGRP".into(),
        TIOCSPGRP => "TIOCSPGRP".into(),
        TIOCGSID => "TIOCGSID".into(),
        TIOCSCTTY => "TIOCSCTTY".into(),
        TIOCPKT => "TIOCPKT".into(),
        c => ioctl_name(c),
    }
}

/// Runs session scenario `f` on every ptm variant of the real-code world;
/// the traces of all variants must be identical. A failure names the
/// variant and prints its trace so far.
pub fn session_scenario(name: &str, f: impl Fn(&mut Session)) {
    let vs = super::REAL.variants();
    if vs.is_empty() {
        println!("SKIPPED: no driver variant in this build ({name})");
    }
    if !vs.iter().any(Variant::is_c_ptm) {
        println!("SKIPPED: PTM_REFERENCE_C not set (C-oracle run of {name})");
    }
    let mut first: Option<(&'static str, Vec<String>)> = None;
    for v in vs {
        let tag = format!("[real world, {}] {name}", v.name);
        let mut s = Session::new(v).unwrap_or_else(|e| panic!("{tag}: {e}"));
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(&mut s))) {
            eprintln!(
                "{tag} failed\n--- trace ---\n{}",
                s.trace_lines().join("\n")
            );
            drop(s);
            resume_unwind(p);
        }
        let t = s.finish().unwrap_or_else(|e| panic!("{tag}: {e}"));
        match &first {
            None => first = Some((v.name, t)),
            Some((n0, t0)) => {
                if let Some(d) = ptm_scenario::trace_diff(n0, t0, v.name, &t) {
                    panic!("{name}: {d}");
                }
            }
        }
    }
}

/// Prints the trace of `f` on the C driver (for writing scenarios).
pub fn show_trace(f: impl Fn(&mut Session)) {
    if let Some(v) = super::REAL.variants().into_iter().find(Variant::is_c_ptm) {
        let mut s = Session::new(v).expect("world");
        f(&mut s);
        println!("{}", s.trace_lines().join("\n"));
        drop(s);
    }
}
