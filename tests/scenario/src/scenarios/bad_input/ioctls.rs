//! The ioctls (part 1 of the matrix): every ptm ioctl, as root and as a
//! user, in every state, with every payload shape.

use super::states::*;
use super::*;

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Every composition of `v` into non-empty consecutive parts (every set
/// of split points): 2^(len-1) of them.
fn compositions(v: &[u8]) -> Vec<Vec<Vec<u8>>> {
    if v.is_empty() {
        return vec![vec![]];
    }
    let cuts = v.len() - 1;
    (0u32..(1 << cuts))
        .map(|mask| {
            let mut parts = Vec::new();
            let mut start = 0;
            for i in 0..cuts {
                if mask & (1 << i) != 0 {
                    parts.push(v[start..=i].to_vec());
                    start = i + 1;
                }
            }
            parts.push(v[start..].to_vec());
            parts
        })
        .collect()
}

/// One payload shape: its parts, and whether empty parts are sent as
/// empty blocks (`ioctl_chain`) rather than dropped (`ioctl_blocks`).
struct Payload {
    label: String,
    parts: Vec<Vec<u8>>,
    chain: bool,
}

impl Payload {
    fn new(label: impl Into<String>, parts: Vec<Vec<u8>>, chain: bool) -> Payload {
        Payload {
            label: label.into(),
            parts,
            chain,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        cat(&self.parts)
    }
}

/// How many payload shapes to build.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shapes {
    /// For a payload ptm ignores (or refuses before reading): missing,
    /// empty blocks, short, exact, long, every two-block split, each with
    /// an empty block at every position.
    Some,
    /// For a payload ptm reads: also every composition of the exact
    /// payload (every set of split points) with an empty block at every
    /// position, and every composition of every short payload;
    /// `BAD_INPUT_FULL=1` adds every composition of the one-byte-long one.
    Every,
}

/// Payload shapes built around `exact` (the ioctl's payload size) and the
/// extra exact-size `values`.
fn payloads(exact: &[u8], values: &[Vec<u8>], shapes: Shapes) -> Vec<Payload> {
    let mut out = Vec::new();
    whole_payloads(&mut out, exact, values);
    let long1 = long_payloads(&mut out, exact);
    split_payloads(&mut out, exact, shapes);
    if shapes == Shapes::Every {
        short_splits(&mut out, exact, &long1);
    }
    out
}

/// Missing, empty blocks, each exact value, and every short length (also
/// behind an empty block).
fn whole_payloads(out: &mut Vec<Payload>, exact: &[u8], values: &[Vec<u8>]) {
    out.extend([
        Payload::new("missing", vec![], false),
        Payload::new("one empty block", vec![vec![]], true),
        Payload::new("three empty blocks", vec![vec![], vec![], vec![]], true),
    ]);
    for v in values {
        out.push(Payload::new(
            format!("exact {v:02x?}"),
            vec![v.clone()],
            false,
        ));
    }
    for k in 1..exact.len() {
        out.push(Payload::new(
            format!("short {k}"),
            vec![exact[..k].to_vec()],
            false,
        ));
        // Short, behind an empty block.
        out.push(Payload::new(
            format!("empty + short {k}"),
            vec![vec![], exact[..k].to_vec()],
            true,
        ));
    }
}

/// Longer than `exact`: by 1, by 64, up to strmsgsz and one more; the +64
/// one split inside the exact part and at its end. Returns the one a byte
/// longer.
fn long_payloads(out: &mut Vec<Payload>, exact: &[u8]) -> Vec<u8> {
    let mut long1 = exact.to_vec();
    long1.push(0x5a);
    let mut long64 = exact.to_vec();
    long64.extend_from_slice(&[0xa5; 64]);
    let mut max = exact.to_vec();
    max.resize(STRMSGSZ, 0x11);
    let mut over = max.clone();
    over.push(0x22);
    out.push(Payload::new("long +1", vec![long1.clone()], false));
    out.push(Payload::new("long +64", vec![long64.clone()], false));
    out.push(Payload::new("long strmsgsz", vec![max], false));
    out.push(Payload::new("long strmsgsz+1", vec![over], false));
    for k in 1..=exact.len() {
        out.push(Payload::new(
            format!("long +64 split at {k}"),
            vec![long64[..k].to_vec(), long64[k..].to_vec()],
            false,
        ));
    }
    long1
}

/// Every composition of the exact payload (split at every set of byte
/// boundaries), or with [`Shapes::Some`] just the two-block ones; then
/// each with an empty block at every position.
fn split_payloads(out: &mut Vec<Payload>, exact: &[u8], shapes: Shapes) {
    for c in compositions(exact) {
        if shapes == Shapes::Some && c.len() > 2 {
            continue;
        }
        let lens: Vec<usize> = c.iter().map(Vec::len).collect();
        if c.len() > 1 {
            out.push(Payload::new(format!("split {lens:?}"), c.clone(), false));
        }
        for pos in 0..=c.len() {
            let mut parts = c.clone();
            parts.insert(pos, vec![]);
            out.push(Payload::new(
                format!("split {lens:?} + empty block at {pos}"),
                parts,
                true,
            ));
        }
    }
}

/// Every composition of every short payload and (`BAD_INPUT_FULL`) of the
/// one-byte-long one, `long1`.
fn short_splits(out: &mut Vec<Payload>, exact: &[u8], long1: &[u8]) {
    for k in 2..exact.len() {
        for c in compositions(&exact[..k]) {
            if c.len() > 1 {
                let lens: Vec<usize> = c.iter().map(Vec::len).collect();
                out.push(Payload::new(format!("short split {lens:?}"), c, false));
            }
        }
    }
    for c in compositions(long1) {
        if c.len() > 1 && full() {
            let lens: Vec<usize> = c.iter().map(Vec::len).collect();
            out.push(Payload::new(format!("long+1 split {lens:?}"), c, false));
        }
    }
}

/// What the ioctl must return, from ptm's documented behaviour; `None`
/// where the outcome depends on more than this table knows.
fn expected_ioctl(st: St, cmd: i32, bytes: &[u8], privileged: bool) -> Option<Result<(), Errno>> {
    if st.write_error() {
        // The stream head refuses before anything goes down.
        return Some(Err(Errno::EINVAL));
    }
    if bytes.len() > STRMSGSZ {
        return Some(Err(Errno::EINVAL));
    }
    Some(match cmd {
        ISPTM | UNLKPT | PTSSTTY => Ok(()),
        ZONEPT => {
            if !privileged {
                Err(Errno::EPERM)
            } else if bytes.len() < 4 {
                Err(Errno::EINVAL)
            } else {
                let z = i32::from_ne_bytes(bytes[..4].try_into().unwrap());
                if (0..=9999).contains(&z) {
                    Ok(())
                } else {
                    Err(Errno::EINVAL)
                }
            }
        }
        OWNERPT => {
            if bytes.len() < 8 {
                Err(Errno::EINVAL)
            } else {
                let uid = u32::from_ne_bytes(bytes[..4].try_into().unwrap());
                let gid = u32::from_ne_bytes(bytes[4..8].try_into().unwrap());
                if uid <= 0x8000_0000 && gid <= 0x8000_0000 {
                    Ok(())
                } else {
                    Err(Errno::EINVAL)
                }
            }
        }
        // Unknown: NAKed by ptm without a ready subsidiary, by the
        // subsidiary's stream head otherwise; stuck behind the held data
        // (timing out) when the subsidiary is flow controlled.
        _ => match st {
            St::FlowBlocked => Err(Errno::ETIME),
            St::ClosedWhileBlocked => return None,
            _ => Err(Errno::EINVAL),
        },
    })
}

fn ioctl_case(
    w: &mut dyn Pty,
    st: St,
    cmd: i32,
    pl: &Payload,
    privileged: bool,
) -> Result<String, String> {
    let p = setup(w, st)?;
    let before = w.pt_state(p.minor).ok_or("no pty")?;
    let owner_before = w.pt_owner(p.minor);
    if !privileged {
        w.set_cred(Cred::user(1000, 10));
    }
    let parts: Vec<&[u8]> = pl.parts.iter().map(Vec::as_slice).collect();
    let a0 = w.allocb_calls();
    let r = if pl.chain {
        w.ioctl_chain(p.m, cmd, &parts)
    } else {
        w.ioctl_blocks(p.m, cmd, &parts)
    };
    let allocs = w.allocb_calls() - a0;
    w.set_cred(Cred::root());
    let bytes = pl.bytes();
    if let Some(want) = expected_ioctl(st, cmd, &bytes, privileged) {
        let got = r.as_ref().map(|_| ()).map_err(|e| *e);
        if got != want {
            return Err(format!("ioctl returned {got:?}, expected {want:?}"));
        }
    }
    if let Ok(rep) = &r
        && (rep.rval != 0 || !rep.data.is_empty())
    {
        return Err(format!("an ACK carries nothing: {rep:?}"));
    }
    // Side effects: only a successful ioctl changes the pty.
    let after = w.pt_state(p.minor).ok_or("no pty")?;
    let owner = w.pt_owner(p.minor);
    let want_state = match (cmd, &r) {
        (UNLKPT, Ok(_)) => before & !PTLOCK,
        (PTSSTTY, Ok(_)) => before | PTSTTY,
        _ => before,
    };
    if after != want_state {
        return Err(format!("pt_state {after:#x} after, {before:#x} before"));
    }
    let want_owner = match (cmd, &r) {
        (ZONEPT, Ok(_)) => {
            owner_before.map(|(_, u, g)| (i32::from_ne_bytes(bytes[..4].try_into().unwrap()), u, g))
        }
        (OWNERPT, Ok(_)) => owner_before.map(|(z, _, _)| {
            (
                z,
                u32::from_ne_bytes(bytes[..4].try_into().unwrap()),
                u32::from_ne_bytes(bytes[4..8].try_into().unwrap()),
            )
        }),
        _ => owner_before,
    };
    if owner != want_owner {
        return Err(format!("owner {owner:?}, expected {want_owner:?}"));
    }
    probe(w, p);
    Ok(format!("allocb={allocs} {}", settle(w, p)))
}

pub fn ioctls_with_every_payload_shape_in_every_state(b: &dyn Backend) {
    let mut r = Runner::new(b, "ioctls");
    let zone_values = [0i32, 5, 9999, -1, 10_000, i32::MIN];
    let zone_vals: Vec<Vec<u8>> = zone_values.iter().map(|z| zone(*z)).collect();
    let own_vals: Vec<Vec<u8>> = [
        (0, 0),
        (1000, 7),
        (0x8000_0000, 0x8000_0000),
        (0x8000_0001, 7),
        (7, 0xffff_ffff),
    ]
    .iter()
    .map(|(u, g)| own(*u, *g))
    .collect();
    let zone_some = payloads(&zone(5), &zone_vals, Shapes::Some);
    let zone_every = payloads(&zone(5), &zone_vals, Shapes::Every);
    let own_some = payloads(&own(1000, 7), &own_vals, Shapes::Some);
    let own_every = payloads(&own(1000, 7), &own_vals, Shapes::Every);
    // Which shapes for (command, privileged): every shape where ptm reads
    // the payload -- ZONEPT as root (as a user drv_priv refuses it first),
    // OWNERPT as root; some shapes for the rest (ISPTM, UNLKPT, PTSSTTY and
    // unknown ioctls ignore their payload, so the OWNERPT shapes stand for
    // any; OWNERPT deliberately does not check the credential). Every
    // shape everywhere with BAD_INPUT_FULL=1.
    let shapes = |cmd: i32, privileged: bool| -> &Vec<Payload> {
        match (cmd, privileged || full()) {
            (ZONEPT, true) => &zone_every,
            (ZONEPT, false) => &zone_some,
            (OWNERPT, true) => &own_every,
            (_, true) if full() => &own_every,
            _ => &own_some,
        }
    };
    let cmds = [
        (ISPTM, "ISPTM"),
        (UNLKPT, "UNLKPT"),
        (PTSSTTY, "PTSSTTY"),
        (ZONEPT, "ZONEPT"),
        (OWNERPT, "OWNERPT"),
        (UNKNOWN_IOCTL, "unknown 0x5801"),
    ];
    for st in STATES {
        for (cmd, cname) in cmds {
            for privileged in [true, false] {
                let who = if privileged { "root" } else { "user" };
                for pl in shapes(cmd, privileged) {
                    let name = format!("{st:?}: {cname} as {who}, payload {}", pl.label);
                    r.case(&name, &|w| ioctl_case(w, st, cmd, pl, privileged));
                }
            }
        }
    }
    r.done();
}
