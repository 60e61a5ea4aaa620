//! Describing messages and calls for the trace, the same way in every
//! world (so that traces of different worlds can be compared).

use std::collections::HashMap;
use std::ffi::c_int;

use ptm::sys::*;

use crate::api::{Errno, IocReply, MsgDesc, QueueInfo};

/// The trace's name of `inject_down(fd, mtype, band, data)`, the same in
/// every world.
pub fn inject_call(fd: crate::Fd, mtype: u8, band: u8, len: usize) -> String {
    format!(
        "inject(fd{}, {} band {band}, {len} bytes)",
        fd.0,
        mtype_name(mtype)
    )
}

/// The illumos name of a message type.
pub fn mtype_name(t: u8) -> String {
    let n = match t as c_int {
        M_DATA => "M_DATA",
        M_PROTO => "M_PROTO",
        M_BREAK => "M_BREAK",
        M_SIG => "M_SIG",
        M_DELAY => "M_DELAY",
        M_CTL => "M_CTL",
        M_IOCTL => "M_IOCTL",
        M_SETOPTS => "M_SETOPTS",
        M_IOCACK => "M_IOCACK",
        M_IOCNAK => "M_IOCNAK",
        M_PCPROTO => "M_PCPROTO",
        M_PCSIG => "M_PCSIG",
        M_READ => "M_READ",
        M_FLUSH => "M_FLUSH",
        M_STOP => "M_STOP",
        M_START => "M_START",
        M_HANGUP => "M_HANGUP",
        M_ERROR => "M_ERROR",
        M_COPYIN => "M_COPYIN",
        M_COPYOUT => "M_COPYOUT",
        M_IOCDATA => "M_IOCDATA",
        M_STOPI => "M_STOPI",
        M_STARTI => "M_STARTI",
        M_UNHANGUP => "M_UNHANGUP",
        M_CMD => "M_CMD",
        _ => return format!("M_{t:#04x}"),
    };
    n.to_string()
}

/// The illumos name of a signal.
pub fn signal_name(sig: i32) -> String {
    let n = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        20 => "SIGWINCH",
        21 => "SIGURG",
        22 => "SIGPOLL",
        24 => "SIGTSTP",
        26 => "SIGTTIN",
        27 => "SIGTTOU",
        _ => return format!("signal {sig}"),
    };
    n.to_string()
}

/// Bytes as a quoted string (at most 64 shown).
pub fn show_bytes(v: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in v.iter().take(64) {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(b as char),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if v.len() > 64 {
        s.push_str("...");
    }
    s.push('"');
    s
}

/// An ioctl's result as the trace shows it.
pub fn show_ioc(r: &Result<IocReply, Errno>) -> String {
    match r {
        Ok(rep) => format!("rval {} data {}", rep.rval, show_bytes(&rep.data)),
        Err(e) => e.name(),
    }
}

/// A readable name for an ioctl command.
pub fn ioctl_name(cmd: i32) -> String {
    match cmd {
        crate::ISPTM => "ISPTM".into(),
        crate::UNLKPT => "UNLKPT".into(),
        crate::PTSSTTY => "PTSSTTY".into(),
        crate::ZONEPT => "ZONEPT".into(),
        crate::OWNERPT => "OWNERPT".into(),
        crate::TCGETS => "TCGETS".into(),
        crate::TIOCGWINSZ => "TIOCGWINSZ".into(),
        crate::TIOCSWINSZ => "TIOCSWINSZ".into(),
        -1 => "-1 (I_FLUSH sync)".into(),
        c => format!("{c:#x}"),
    }
}

/// Numbers ioctl ids in order of appearance, per world: a stream head
/// draws ids from a counter that is not reset between worlds, and the
/// trace should not depend on what ran before.
#[derive(Default)]
pub struct IocIds(HashMap<u32, usize>);

impl IocIds {
    pub fn number(&mut self, id: u32) -> usize {
        let n = self.0.len() + 1;
        *self.0.entry(id).or_insert(n)
    }
}

/// Bytes in one block.
///
/// # Safety
/// `mp` must be a valid block.
unsafe fn blk_len(mp: *const mblk_t) -> usize {
    // SAFETY: the caller guarantees a valid block.
    unsafe { ((*mp).b_wptr as usize).saturating_sub((*mp).b_rptr as usize) }
}

/// The bytes of a message chain.
///
/// # Safety
/// `mp` must be a valid message chain.
pub unsafe fn msg_bytes(mut mp: *const mblk_t) -> Vec<u8> {
    let mut v = Vec::new();
    while !mp.is_null() {
        // SAFETY: the caller guarantees a valid chain; [rptr, wptr) is
        // inside the block's buffer.
        unsafe {
            v.extend_from_slice(std::slice::from_raw_parts((*mp).b_rptr, blk_len(mp)));
            mp = (*mp).b_cont;
        }
    }
    v
}

/// The bytes in a message chain.
///
/// # Safety
/// `mp` must be a valid message chain.
pub unsafe fn msg_len(mut mp: *const mblk_t) -> usize {
    let mut n = 0;
    while !mp.is_null() {
        // SAFETY: the caller guarantees a valid chain.
        unsafe {
            n += blk_len(mp);
            mp = (*mp).b_cont;
        }
    }
    n
}

/// A queue as the observation API shows it.
///
/// # Safety
/// `q` must be a live queue whose layout is illumos's (`ptm::sys`), with
/// nothing running that changes it.
pub unsafe fn queue_info(q: *const queue_t) -> QueueInfo {
    // SAFETY: the caller guarantees a live, quiescent queue.
    unsafe {
        let mut messages = Vec::new();
        let mut mp: *const mblk_t = (*q).q_first;
        while !mp.is_null() {
            messages.push(((*(*mp).b_datap).db_type, (*mp).b_band, msg_len(mp)));
            mp = (*mp).b_next;
        }
        QueueInfo {
            count: (*q).q_count,
            mblkcnt: (*q).q_mblkcnt,
            flag: (*q).q_flag,
            hiwat: (*q).q_hiwat,
            lowat: (*q).q_lowat,
            nband: (*q).q_nband,
            messages,
        }
    }
}

/// Describes a message for the trace (ioctl ids renumbered by `ids`).
///
/// # Safety
/// `mp` must be a valid message whose layout is illumos's (`ptm::sys`).
pub unsafe fn describe(mp: *const mblk_t, ids: &mut IocIds) -> MsgDesc {
    // SAFETY: the caller guarantees a valid message.
    unsafe {
        let t = (*(*mp).b_datap).db_type;
        let band = (*mp).b_band;
        let tt = c_int::from(t);
        if tt == M_DATA || tt == M_PROTO || tt == M_PCPROTO {
            let bytes = msg_bytes(mp);
            return MsgDesc {
                mtype: t,
                band,
                len: bytes.len(),
                bytes,
                detail: String::new(),
            };
        }
        let n = blk_len(mp);
        let first = std::slice::from_raw_parts((*mp).b_rptr, n).to_vec();
        if tt == M_SETOPTS && n >= std::mem::size_of::<stroptions>() {
            let so = std::ptr::read_unaligned((*mp).b_rptr as *const stroptions);
            let mut detail = format!("so_flags={:#x}", so.so_flags);
            if so.so_flags & SO_HIWAT as u32 != 0 {
                detail += &format!(" hiwat={}", so.so_hiwat);
            }
            if so.so_flags & SO_LOWAT as u32 != 0 {
                detail += &format!(" lowat={}", so.so_lowat);
            }
            return MsgDesc {
                mtype: t,
                band,
                len: n,
                bytes: Vec::new(),
                detail,
            };
        }
        // An M_CTL of exactly an iocblk is one in iocblk format (ptem's
        // MC_* commands, made by mkiocb): shown by its fields, since its
        // bytes hold a credential pointer.
        let ioc_format = match tt {
            M_IOCACK | M_IOCNAK | M_IOCTL => n >= std::mem::size_of::<iocblk>(),
            M_CTL => n == std::mem::size_of::<iocblk>(),
            _ => false,
        };
        if ioc_format {
            let ioc = std::ptr::read_unaligned((*mp).b_rptr as *const iocblk);
            let data = msg_bytes((*mp).b_cont).len();
            let detail = format!(
                "cmd={:#x} id={} count={} rval={} error={} data={}",
                ioc.ioc_cmd,
                ids.number(ioc.ioc_id),
                ioc.ioc_count as i64,
                ioc.ioc_rval,
                ioc.ioc_error,
                data
            );
            return MsgDesc {
                mtype: t,
                band,
                len: n,
                bytes: Vec::new(),
                detail,
            };
        }
        MsgDesc {
            mtype: t,
            band,
            len: n,
            bytes: first,
            detail: String::new(),
        }
    }
}

/// Ids above this are ephemeral (`MAXUID`).
pub const MAXUID: u32 = 2_147_483_647;

/// The note a world adds to its trace when /dev/pts looks up a pty whose
/// owner ids are ephemeral (above `MAXUID`): ptms_conf's
/// `ptms_minor_valid` ASSERTs that they are not, so a DEBUG kernel panics
/// there; a non-DEBUG kernel goes on. `None` when the ids are ordinary.
pub fn ephemeral_owner_note(minor: u32, uid: u32, gid: u32) -> Option<String> {
    (uid > MAXUID || gid > MAXUID).then(|| {
        format!(
            "ptms_minor_valid(minor {minor}): owner {uid}:{gid} above MAXUID, which a DEBUG \
             kernel ASSERTs against"
        )
    })
}
