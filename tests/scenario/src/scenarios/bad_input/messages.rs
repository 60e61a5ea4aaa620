//! Message types (part 2 of the matrix): every type injected down the
//! manager's write side, and M_FLUSH with every flag byte.

use std::ffi::c_int;

use ptm::sys::{M_COPYIN, M_COPYOUT, M_IOCACK, M_IOCNAK, SO_ISTTY, SO_NDELON, stroptions};

use super::states::*;
use super::*;

/// The room a backend's allocb gives each length the matrix sends,
/// measured in a world of its first variant (its variants share one
/// kernel allocator): the model rounds to 8 bytes, illumos's dblk caches
/// start at 16 and then 80.
struct Rooms(Vec<usize>);

impl Rooms {
    const MAX: usize = 64;

    fn measure(b: &dyn Backend) -> Rooms {
        let v = b.variants()[0];
        let mut w = b.world(v).expect("load");
        let rooms = (0..=Self::MAX).map(|len| w.block_capacity(len)).collect();
        w.finish().expect("clean");
        Rooms(rooms)
    }

    /// Whether the block of an injected `len`-byte message can hold an
    /// iocblk.
    fn fit_iocblk(&self, len: usize) -> bool {
        self.0[len.min(Self::MAX)] >= size_of::<iocblk>()
    }

    /// Whether `inject_down` of this message is safe for ptm.c, which
    /// writes an iocblk into any M_IOCTL it answers: not an M_IOCTL whose
    /// buffer cannot hold one.
    fn c_safe(&self, mtype: u8, len: usize) -> bool {
        mtype != M_IOCTL || self.fit_iocblk(len)
    }
}

fn inject_case(
    w: &mut dyn Pty,
    st: St,
    mtype: u8,
    band: u8,
    data: &[u8],
    fits_iocblk: bool,
) -> Result<String, String> {
    let p = setup(w, st)?;
    let from = w.trace_lines().len();
    w.inject_down(p.m, mtype, band, data)
        .map_err(|e| format!("inject: {e}"))?;
    let lines = since(w, from);
    let sub = format!("S{} head <- ", p.minor);
    let man = format!("M{} head <- ", p.minor);
    let to_sub = lines.iter().any(|l| l.trim_start().starts_with(&sub));
    let to_man = |t: &str| {
        lines
            .iter()
            .any(|l| l.trim_start().starts_with(&format!("{man}{t} ")))
    };
    let name = mtype_name(mtype);
    // The documented behaviour (driver.rs, ptm.c ptmwput/ptmwsrv).
    match mtype {
        M_READ => {
            if !lines.iter().all(|l| l.starts_with("inject(")) {
                return Err(format!("M_READ must be freed silently: {lines:?}"));
            }
        }
        M_FLUSH | M_IOCTL => {}
        _ if !st.ready() => {
            if !to_man("M_ERROR") || to_sub {
                return Err(format!(
                    "{name} without a ready subsidiary must raise M_ERROR upstream: {lines:?}"
                ));
            }
        }
        // Band 0 is the one the subsidiary's stream head is full in.
        _ if st == St::FlowBlocked && mtype < QPCTL && band == 0 => {
            if to_sub {
                return Err(format!("{name} must wait behind the held data: {lines:?}"));
            }
        }
        _ => {
            let first = format!("{sub}{name} ");
            if !lines.iter().any(|l| l.trim_start().starts_with(&first)) {
                return Err(format!("{name} must reach the subsidiary: {lines:?}"));
            }
        }
    }
    if mtype == M_IOCTL && !fits_iocblk && (to_sub || to_man("M_IOCNAK") || to_man("M_IOCACK")) {
        return Err(format!(
            "an M_IOCTL without room for an iocblk cannot be answered: {lines:?}"
        ));
    }
    let asserts = acknowledge_malformed(w, mtype, data);
    probe(w, p);
    Ok(format!("{} {asserts}", settle(w, p)))
}

/// DEBUG ASSERTs in illumos's own code that an injected message no stream
/// head would make trips, and that a non-DEBUG kernel gets past; counted
/// (and so compared across variants) rather than failing the case:
/// - a forged M_IOCTL whose first block is not exactly an iocblk, where
///   ptm pulls up a payload (OWNERPT, ZONEPT): miocpullup's;
/// - a one-byte M_FLUSH with FLUSHBAND, which ptm passes on to the
///   subsidiary's stream head: strrput's, that the band byte is there.
fn acknowledge_malformed(w: &mut dyn Pty, mtype: u8, data: &[u8]) -> String {
    let pullup = if mtype == M_IOCTL && data.len() != size_of::<iocblk>() {
        w.acknowledge_anomalies("MBLKL(iocmp) == sizeof (struct iocblk)")
    } else {
        0
    };
    let band_byte = if mtype == M_FLUSH && data.len() < 2 {
        w.acknowledge_anomalies("(bp->b_wptr - bp->b_rptr) >= 2")
    } else {
        0
    };
    format!("ASSERTs: miocpullup {pullup}, M_FLUSH band byte {band_byte}")
}

/// Guards the measured rooms before ptm.c is given cut iocblks: the Rust
/// driver answers an M_IOCTL only when its buffer holds a whole iocblk, so
/// it must answer the shortest message the rooms say fits one and leave
/// the longest that does not unanswered.
fn check_rooms(b: &dyn Backend, rooms: &Rooms) {
    let Some(v) = b.variants().into_iter().find(|v| v.driver == Driver::Rust) else {
        return;
    };
    let fits = (1..=Rooms::MAX).find(|&l| rooms.fit_iocblk(l));
    let short = (1..=Rooms::MAX).rev().find(|&l| !rooms.fit_iocblk(l));
    for (len, answered) in [(fits, true), (short, false)] {
        let Some(len) = len else { continue };
        let mut w = b.world(v).expect("load");
        let (m, minor) = manager(&mut *w);
        let from = w.trace_lines().len();
        w.inject_down(m, M_IOCTL, 0, &forged_iocblk(ISPTM, 0, len))
            .unwrap();
        let lines = since(&*w, from).join("\n");
        assert_eq!(
            lines.contains(&format!("M{minor} head <- M_IOCACK")),
            answered,
            "a {len}-byte M_IOCTL: the measured rooms ({:?}) disagree with \
             the Rust driver's view of its buffer: {lines}",
            rooms.0
        );
        w.finish().expect("clean");
    }
}

/// `data` as the body of a message of `mtype` that reaches the
/// subsidiary's stream head, zero-padded to what that head reads from it.
/// ptm passes these types on without looking, but illumos's stream head
/// trusts the driver below it: it reads a whole `stroptions` from an
/// M_SETOPTS and an `iocblk` from an M_IOCACK or M_IOCNAK, and turns an
/// M_COPYIN or M_COPYOUT into an M_IOCDATA by writing a `copyresp` over
/// it -- past the end of a shorter buffer. Only a driver could send these,
/// never a user, so the matrix keeps to bodies the head can take.
fn head_body(mtype: u8, data: &[u8]) -> Vec<u8> {
    /// `sizeof (struct copyreq)` on amd64.
    const COPYREQ: usize = 48;
    let reads = match c_int::from(mtype) {
        m if m == ptm::sys::M_SETOPTS => size_of::<stroptions>(),
        M_IOCACK | M_IOCNAK => size_of::<iocblk>(),
        M_COPYIN | M_COPYOUT => COPYREQ,
        _ => 0,
    };
    let mut body = data.to_vec();
    body.resize(data.len().max(reads), 0);
    body
}

/// The longest M_SETOPTS the message-type matrix sends: a whole
/// `stroptions` asking for a terminal in non-blocking mode. Sixteen bytes
/// of text would do for ptm, which passes an M_SETOPTS on without looking;
/// but the subsidiary's stream head reads a whole `stroptions` from it,
/// and "sixteen bytes..." read as `so_flags` includes SO_MAXBLK: with a
/// maximum block size of 0, illumos's strmakedata never finishes the next
/// write (on the real-code world, a watchdog failure).
fn harmless_setopts() -> Vec<u8> {
    let mut so = vec![0u8; size_of::<stroptions>()];
    let flags = (SO_ISTTY | SO_NDELON) as u32;
    so[offset_of!(stroptions, so_flags)..][..4].copy_from_slice(&flags.to_ne_bytes());
    so
}

pub fn every_message_type_injected_in_every_state(b: &dyn Backend) {
    let rooms = Rooms::measure(b);
    check_rooms(b, &rooms);
    let mut r = Runner::new(b, "message types");
    let datas: [&[u8]; 4] = [&[], &[0x03], &[0x03, 0x01], b"sixteen bytes..."];
    let setopts = harmless_setopts();
    for st in STATES {
        for mtype in 0..=M_LAST {
            if mtype == QPCTL && st == St::FlowBlocked {
                // Livelocks ptmwsrv (both drivers) and hangs the
                // world: see finding_type_qpctl_livelocks_ptmwsrv.
                continue;
            }
            if full() {
                // Every band, empty data.
                for band in 2..=254u8 {
                    let name = format!("{st:?}: inject {} band {band}", mtype_name(mtype));
                    let fits = rooms.fit_iocblk(0);
                    r.case_where(&name, rooms.c_safe(mtype, 0), &|w| {
                        inject_case(w, st, mtype, band, &[], fits)
                    });
                }
            }
            for band in [0u8, 1, 255] {
                for data in datas {
                    // The subsidiary's stream head applies an M_SETOPTS
                    // (ptm only passes it on): see harmless_setopts.
                    let body = if mtype == M_SETOPTS && data.len() == 16 {
                        setopts.clone()
                    } else {
                        head_body(mtype, data)
                    };
                    let padded = if body.len() > data.len() && body.starts_with(data) {
                        format!(" (zero-padded to {})", body.len())
                    } else {
                        String::new()
                    };
                    let shown = if body.starts_with(data) {
                        data
                    } else {
                        &body[..]
                    };
                    let name = format!(
                        "{st:?}: inject {} band {band} data {shown:02x?}{padded}",
                        mtype_name(mtype)
                    );
                    let fits = rooms.fit_iocblk(body.len());
                    r.case_where(&name, rooms.c_safe(mtype, body.len()), &|w| {
                        inject_case(w, st, mtype, band, &body, fits)
                    });
                }
            }
        }
        // M_IOCTL with a forged iocblk: whole, cut short (in a buffer that
        // may or may not have room for a whole one), and with trailing
        // bytes in the same block.
        let iocs: Vec<(String, Vec<u8>)> = [ISPTM, UNLKPT, PTSSTTY, OWNERPT, UNKNOWN_IOCTL]
            .iter()
            .flat_map(|&cmd| {
                let mut v = vec![
                    (format!("iocblk cmd {cmd:#x}"), forged_iocblk(cmd, 0, 40)),
                    (
                        format!("iocblk cmd {cmd:#x} count 8 + 8 bytes in the block"),
                        forged_iocblk(cmd, 8, 48),
                    ),
                ];
                for len in [1, 4, 8, 24, 32].into_iter().chain(33..40) {
                    let room = if rooms.fit_iocblk(len) {
                        ""
                    } else {
                        " (no room for an iocblk)"
                    };
                    v.push((
                        format!("iocblk cmd {cmd:#x} cut to {len}{room}"),
                        forged_iocblk(cmd, 0, len),
                    ));
                }
                v
            })
            .collect();
        for (label, data) in &iocs {
            for band in [0u8, 1, 255] {
                let name = format!("{st:?}: inject M_IOCTL band {band} {label}");
                let fits = rooms.fit_iocblk(data.len());
                r.case_where(&name, rooms.c_safe(M_IOCTL, data.len()), &|w| {
                    inject_case(w, st, M_IOCTL, band, data, fits)
                });
            }
        }
    }
    r.done();
}

pub fn m_flush_every_flag_byte_in_every_state(b: &dyn Backend) {
    let mut r = Runner::new(b, "M_FLUSH flags");
    for st in STATES {
        for flags in 0..=255u8 {
            for second in [None, Some(0u8), Some(1), Some(255)] {
                let mut data = vec![flags];
                data.extend(second);
                // The message's own band means nothing to ptm's M_FLUSH
                // handling: 0 only, unless BAD_INPUT_FULL.
                let bands: &[u8] = if full() { &[0, 1, 255] } else { &[0] };
                for &band in bands {
                    let name = format!("{st:?}: M_FLUSH band {band} data {data:02x?}");
                    r.case(&name, &|w| inject_case(w, st, M_FLUSH, band, &data, true));
                }
            }
        }
        if full() {
            // FLUSHBAND with every band byte (b_band 0).
            for flags in [0x04u8, 0x05, 0x06, 0x07, 0xff] {
                for second in 0..=255u8 {
                    let data = [flags, second];
                    let name = format!("{st:?}: M_FLUSH data {data:02x?}");
                    r.case(&name, &|w| inject_case(w, st, M_FLUSH, 0, &data, true));
                }
            }
        }
    }
    r.done();
}
