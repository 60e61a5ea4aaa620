//! The workloads: what one measured operation does, on a world prepared
//! by its setup. Every operation is deterministic, and checks what it
//! gets back, so that a variant that misbehaves fails the run instead of
//! producing a cheap number.

use ptm_scenario::{
    Errno, FLUSHR, FLUSHRW, FLUSHW, Fd, ISPTM, O_NONBLOCK, O_RDWR, Pty as World, UNLKPT,
};

/// The open streams of a workload.
pub struct Pty {
    pub m: Fd,
    pub s: Fd,
}

/// One workload: a name, what one measured operation is, and the
/// operation itself (returns what it moved, for the report).
pub struct Workload {
    pub name: &'static str,
    pub unit: &'static str,
    /// Measured operations (after the warm-up).
    pub iters: u32,
    /// Target for the driver's own instructions, Rust/C.
    pub driver_target: f64,
    /// Opens the pty the operation works on (non-blocking ends when
    /// `nonblock`); `None` for workloads that open their own.
    pub nonblock: Option<bool>,
    pub op: fn(&mut dyn World, Option<&Pty>),
}

const BULK_ITERS: u32 = 200;

/// Driver-instruction targets (Rust/C): the data paths through ptmwput and
/// ptmwsrv, the back-enable path through ptmrsrv, and the control paths
/// (flush, ioctls, open and close).
const DATA_TARGET: f64 = 0.85;
const BACK_ENABLE_TARGET: f64 = 0.90;
const CONTROL_TARGET: f64 = 1.00;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Reads exactly `n` bytes from `fd` (several reads if the data sits in
/// several messages).
fn read_exact(w: &mut dyn World, fd: Fd, n: usize) {
    let mut got = 0;
    while got < n {
        let v = w.read(fd, n - got).expect("read");
        assert!(!v.is_empty(), "read: end of file after {got} of {n} bytes");
        got += v.len();
    }
}

/// Reads until the (non-blocking) fd has nothing left; returns the bytes.
fn drain(w: &mut dyn World, fd: Fd) -> usize {
    let mut got = 0;
    loop {
        match w.read(fd, 1000) {
            Ok(v) if v.is_empty() => return got,
            Ok(v) => got += v.len(),
            Err(Errno::EAGAIN) => return got,
            Err(e) => panic!("drain: {e}"),
        }
    }
}

fn transfer(w: &mut dyn World, from: Fd, to: Fd, n: usize) {
    let data = pattern(n);
    assert_eq!(w.write(from, &data).expect("write"), n);
    read_exact(w, to, n);
}

/// A 4 KiB write from the manager cannot complete in a single-threaded
/// world: ptm cuts it into 512-byte messages (its `mi_maxpsz`) and only
/// 2560 bytes fit (the subsidiary head's 2048 plus ptm's queue's 512)
/// before the writer would sleep waiting for a reader. So 4 KiB go as two
/// 2 KiB writes, each read at once: the same eight messages.
fn transfer_4k_m2s(w: &mut dyn World, from: Fd, to: Fd) {
    transfer(w, from, to, 2048);
    transfer(w, from, to, 2048);
}

/// A workload on a blocking pty opened for it.
const fn on_pty(
    name: &'static str,
    unit: &'static str,
    iters: u32,
    driver_target: f64,
    op: fn(&mut dyn World, Option<&Pty>),
) -> Workload {
    Workload {
        name,
        unit,
        iters,
        driver_target,
        nonblock: Some(false),
        op,
    }
}

/// A control-path workload (flush, ioctls) on a blocking pty.
const fn control(
    name: &'static str,
    unit: &'static str,
    op: fn(&mut dyn World, Option<&Pty>),
) -> Workload {
    on_pty(name, unit, 300, CONTROL_TARGET, op)
}

macro_rules! bulk {
    ($name:literal, $n:literal, m2s) => {
        on_pty(
            $name,
            concat!("write(", $n, " B) + read"),
            BULK_ITERS,
            DATA_TARGET,
            |w, p| {
                let p = p.expect("pty");
                transfer(w, p.m, p.s, $n)
            },
        )
    };
    ($name:literal, m2s_4k) => {
        on_pty(
            $name,
            "2 × (write(2 KiB) + read)",
            BULK_ITERS,
            DATA_TARGET,
            |w, p| {
                let p = p.expect("pty");
                transfer_4k_m2s(w, p.m, p.s)
            },
        )
    };
    ($name:literal, $n:literal, s2m) => {
        on_pty(
            $name,
            concat!("write(", $n, " B) + read"),
            BULK_ITERS,
            BACK_ENABLE_TARGET,
            |w, p| {
                let p = p.expect("pty");
                transfer(w, p.s, p.m, $n)
            },
        )
    };
}

/// Every workload, in report order.
pub fn all() -> Vec<Workload> {
    vec![
        bulk!("bulk m→s 1 B", 1, m2s),
        bulk!("bulk m→s 64 B", 64, m2s),
        bulk!("bulk m→s 512 B", 512, m2s),
        bulk!("bulk m→s 4 KiB", m2s_4k),
        bulk!("bulk s→m 1 B", 1, s2m),
        bulk!("bulk s→m 64 B", 64, s2m),
        bulk!("bulk s→m 512 B", 512, s2m),
        bulk!("bulk s→m 4 KiB", 4096, s2m),
        Workload {
            name: "flow-controlled m→s",
            unit: "fill (2560 B, 5 msgs) + drain",
            iters: 100,
            driver_target: DATA_TARGET,
            nonblock: Some(true),
            op: |w, p| {
                let p = p.expect("pty");
                let n = w.write(p.m, &pattern(10_000)).expect("write");
                assert_eq!(n, 2560, "m→s fill");
                assert_eq!(w.write(p.m, b"x"), Err(Errno::EAGAIN), "m→s full");
                assert_eq!(drain(w, p.s), n);
            },
        },
        Workload {
            name: "flow-controlled s→m",
            unit: "fill (4096 B, 2 msgs) + drain",
            iters: 100,
            driver_target: BACK_ENABLE_TARGET,
            nonblock: Some(true),
            op: |w, p| {
                let p = p.expect("pty");
                let n = w.write(p.s, &pattern(10_000)).expect("write");
                assert_eq!(n, 4096, "s→m fill");
                assert_eq!(w.write(p.s, b"x"), Err(Errno::EAGAIN), "s→m full");
                assert_eq!(drain(w, p.m), n);
            },
        },
        on_pty(
            "echo round trip 8 B",
            "m→s→m round trip",
            BULK_ITERS,
            DATA_TARGET,
            |w, p| {
                let p = p.expect("pty");
                transfer(w, p.m, p.s, 8);
                transfer(w, p.s, p.m, 8);
            },
        ),
        control("M_FLUSH storm", "I_FLUSH (R, W, RW in turn)", |w, p| {
            let p = p.expect("pty");
            for f in [FLUSHR, FLUSHW, FLUSHRW] {
                w.flush(p.m, f).expect("I_FLUSH");
            }
        }),
        control("ioctl ISPTM", "ioctl", |w, p| {
            w.ioctl(p.expect("pty").m, ISPTM, &[]).expect("ISPTM");
        }),
        control("ioctl UNLKPT", "ioctl", |w, p| {
            w.ioctl(p.expect("pty").m, UNLKPT, &[]).expect("UNLKPT");
        }),
        control(
            "ioctl unknown (forwarded)",
            "ioctl (NAKed by the subsidiary)",
            |w, p| {
                let m = p.expect("pty").m;
                assert_eq!(w.ioctl(m, 0x1234, b"data"), Err(Errno::EINVAL));
            },
        ),
        Workload {
            name: "open/unlock/close churn",
            unit: "open ptmx, UNLKPT, open pts, close both",
            iters: 100,
            driver_target: CONTROL_TARGET,
            nonblock: None,
            op: |w, _| {
                let p = open_pty(w, O_RDWR);
                w.close(p.s).expect("close subsidiary");
                w.close(p.m).expect("close manager");
            },
        },
    ]
}

/// Opens a manager, unlocks it, opens its subsidiary.
pub fn open_pty(w: &mut dyn World, flags: i32) -> Pty {
    let m = w.open_manager(flags).expect("open /dev/ptmx");
    let minor = w.minor_of(m).expect("fstat");
    w.unlockpt(m).expect("unlockpt");
    let s = w.open_subsidiary(minor, flags).expect("open subsidiary");
    Pty { m, s }
}

/// The open flags for a workload's pty.
pub fn flags(nonblock: bool) -> i32 {
    if nonblock {
        O_RDWR | O_NONBLOCK
    } else {
        O_RDWR
    }
}
