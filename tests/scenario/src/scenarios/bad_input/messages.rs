//! Message types (part 2 of the matrix): every type injected down the
//! manager's write side, and M_FLUSH with every flag byte.

use super::states::*;
use super::*;

/// The capacity the model world's allocb gives `len` bytes (8-byte caches).
fn capacity(len: usize) -> usize {
    len.max(1).div_ceil(8) * 8
}

/// Whether `inject_down` of this message would make ptm.c run past the
/// buffer: an M_IOCTL whose buffer cannot hold an iocblk.
fn c_safe_inject(mtype: u8, len: usize) -> bool {
    mtype != M_IOCTL || capacity(len) >= size_of::<iocblk>()
}

fn inject_case(
    w: &mut dyn Pty,
    st: St,
    mtype: u8,
    band: u8,
    data: &[u8],
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
    if mtype == M_IOCTL
        && capacity(data.len()) < size_of::<iocblk>()
        && (to_sub || to_man("M_IOCNAK") || to_man("M_IOCACK"))
    {
        return Err(format!(
            "an M_IOCTL without room for an iocblk cannot be answered: {lines:?}"
        ));
    }
    probe(w, p);
    Ok(settle(w, p))
}

/// Guards [`c_safe_inject`]'s assumption before ptm.c is given a cut
/// iocblk: the Rust driver answers an M_IOCTL only when its buffer holds a
/// whole iocblk, so its ACK to 33 bytes shows the world rounded the
/// buffer up to 40.
fn check_buffer_rounding(b: &dyn Backend) {
    let Some(v) = b.variants().into_iter().find(|v| v.driver == Driver::Rust) else {
        return;
    };
    let mut w = b.world(v).expect("load");
    let (m, minor) = manager(&mut *w);
    let from = w.trace_lines().len();
    w.inject_down(m, M_IOCTL, 0, &forged_iocblk(ISPTM, 0, 33))
        .unwrap();
    let lines = since(&*w, from).join("\n");
    assert!(
        capacity(33) == size_of::<iocblk>()
            && lines.contains(&format!("M{minor} head <- M_IOCACK")),
        "the world does not round a 33-byte allocb up to an iocblk: \
         c_safe_inject must change before ptm.c sees cut iocblks: {lines}"
    );
    w.finish().expect("clean");
}

pub fn every_message_type_injected_in_every_state(b: &dyn Backend) {
    check_buffer_rounding(b);
    let mut r = Runner::new(b, "message types");
    let datas: [&[u8]; 4] = [&[], &[0x03], &[0x03, 0x01], b"sixteen bytes..."];
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
                    r.case_where(&name, c_safe_inject(mtype, 0), &|w| {
                        inject_case(w, st, mtype, band, &[])
                    });
                }
            }
            for band in [0u8, 1, 255] {
                for data in datas {
                    let name = format!(
                        "{st:?}: inject {} band {band} data {data:02x?}",
                        mtype_name(mtype)
                    );
                    r.case_where(&name, c_safe_inject(mtype, data.len()), &|w| {
                        inject_case(w, st, mtype, band, data)
                    });
                }
            }
        }
        // M_IOCTL with a forged iocblk: whole, truncated within its
        // 40-byte buffer, and with trailing bytes in the same block.
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
                for len in 33..40 {
                    v.push((
                        format!("iocblk cmd {cmd:#x} cut to {len}"),
                        forged_iocblk(cmd, 0, len),
                    ));
                }
                for len in [1, 4, 8, 24, 32] {
                    v.push((
                        format!("iocblk cmd {cmd:#x} cut to {len} (no room for an iocblk)"),
                        forged_iocblk(cmd, 0, len),
                    ));
                }
                v
            })
            .collect();
        for (label, data) in &iocs {
            for band in [0u8, 1, 255] {
                let name = format!("{st:?}: inject M_IOCTL band {band} {label}");
                r.case_where(&name, c_safe_inject(M_IOCTL, data.len()), &|w| {
                    inject_case(w, st, M_IOCTL, band, data)
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
                    r.case(&name, &|w| inject_case(w, st, M_FLUSH, band, &data));
                }
            }
        }
        if full() {
            // FLUSHBAND with every band byte (b_band 0).
            for flags in [0x04u8, 0x05, 0x06, 0x07, 0xff] {
                for second in 0..=255u8 {
                    let data = [flags, second];
                    let name = format!("{st:?}: M_FLUSH data {data:02x?}");
                    r.case(&name, &|w| inject_case(w, st, M_FLUSH, 0, &data));
                }
            }
        }
    }
    r.done();
}
