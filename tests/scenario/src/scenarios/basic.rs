//! Opening, locking, data, reopen, refused opens, M_READ, module loading.

use super::common::*;
use crate::*;

const PTMOPEN_LOCK: u16 = 0x3;

pub fn clone_opens_give_distinct_minors_and_setopts(b: &dyn Backend) {
    scenario(b, "clone opens give distinct minors", |w| {
        let mut minors = Vec::new();
        for _ in 0..3 {
            let (_, minor) = manager(w);
            minors.push(minor);
        }
        let mut sorted = minors.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 3, "minors must be distinct: {minors:?}");
        assert!(
            minors.iter().all(|&m| m >= 1),
            "minor 0 is never handed out"
        );
        for &m in &minors {
            assert_eq!(
                w.pt_state(m),
                Some(PTMOPEN_LOCK),
                "new pty is PTMOPEN|PTLOCK"
            );
        }
        // Each open sent M_SETOPTS: hiwat 2048, lowat 256, SO_ISTTY (no O_NOCTTY).
        let setopts: Vec<_> = w
            .trace_lines()
            .into_iter()
            .filter(|l| l.contains("M_SETOPTS"))
            .collect();
        assert_eq!(setopts.len(), 3);
        for l in &setopts {
            assert!(l.contains("so_flags=0x430 hiwat=2048 lowat=256"), "{l}");
        }
        // The manager fd reports (ptm major, minor).
        let fd = Fd(3);
        assert_eq!(w.fstat_minor(fd).unwrap(), (PTM_MAJOR, minors[0]));
    });
}

pub fn noctty_open_omits_so_istty(b: &dyn Backend) {
    scenario(b, "O_NOCTTY manager open", |w| {
        let m = w.open_manager(O_RDWR | O_NOCTTY).unwrap();
        let l = w
            .trace_lines()
            .into_iter()
            .find(|l| l.contains("M_SETOPTS"))
            .unwrap();
        assert!(l.contains("so_flags=0x30 "), "{l}");
        w.close(m).unwrap();
    });
}

pub fn minors_are_reused_after_close(b: &dyn Backend) {
    scenario(b, "minor reuse", |w| {
        let (a, ma) = manager(w);
        let (_b, _mb) = manager(w);
        w.close(a).unwrap();
        assert_eq!(w.pt_state(ma), None, "pty freed when neither side is open");
        let (_c, mc) = manager(w);
        assert_eq!(mc, ma, "the freed minor is handed out again");
    });
}

pub fn subsidiary_locked_until_unlkpt(b: &dyn Backend) {
    scenario(b, "subsidiary locked until UNLKPT", |w| {
        let (m, minor) = manager(w);
        assert_eq!(w.open_subsidiary(minor, O_RDWR), Err(Errno::EAGAIN));
        assert_eq!(w.open_subsidiary_node(minor, O_RDWR), Err(Errno::EAGAIN));
        w.ioctl(m, ISPTM, &[]).expect("ISPTM works while locked");
        assert_eq!(w.pt_state(minor), Some(PTMOPEN_LOCK));
        w.ioctl(m, UNLKPT, &[]).unwrap();
        assert_eq!(w.pt_state(minor), Some(0x2));
        let s = w.open_subsidiary(minor, O_RDWR).unwrap();
        assert_eq!(w.pt_state(minor), Some(0x6), "PTMOPEN|PTSOPEN");
        assert_eq!(w.fstat_minor(s).unwrap(), (PTS_MAJOR, minor));
        // UNLKPT again is harmless.
        w.ioctl(m, UNLKPT, &[]).unwrap();
    });
}

pub fn data_flows_both_ways(b: &dyn Backend) {
    scenario(b, "data both ways", |w| {
        let (m, s, _) = pair(w);
        assert_eq!(w.write(m, b"to the subsidiary\n").unwrap(), 18);
        assert_eq!(w.read(s, 100).unwrap(), b"to the subsidiary\n");
        assert_eq!(w.write(s, b"to the manager").unwrap(), 14);
        assert_eq!(w.read(m, 100).unwrap(), b"to the manager");
        // Several writes are read as one byte stream.
        w.write(m, b"abc").unwrap();
        w.write(m, b"def").unwrap();
        assert_eq!(w.read(s, 4).unwrap(), b"abcd");
        assert_eq!(w.read(s, 4).unwrap(), b"ef");
    });
}

pub fn reads_block_or_eagain_when_empty(b: &dyn Backend) {
    scenario(b, "empty reads", |w| {
        let (m, s, _) = pair_flags(w, O_RDWR | O_NONBLOCK, O_RDWR);
        assert_eq!(w.read(m, 10), Err(Errno::EAGAIN), "non-blocking manager");
        assert_eq!(w.read(s, 10), Err(Errno::BLOCKED), "blocking subsidiary");
        assert_eq!(w.read(s, 0).unwrap(), b"", "zero-byte read returns at once");
    });
}

pub fn modopen_and_unheld_direct_minor_opens_are_refused(b: &dyn Backend) {
    scenario(b, "MODOPEN and direct-minor opens", |w| {
        match w.push_manager_as_module() {
            Some(r) => assert_eq!(r, Err(Errno::ENXIO), "ptm refuses MODOPEN"),
            None => println!(
                "SKIPPED: the {} world cannot push a driver as a module (MODOPEN part only)",
                w.variant().name
            ),
        }
        let (m, minor) = manager(w);
        // A node for a minor no manager holds: ptm refuses the direct open.
        assert_eq!(w.open_manager_node(77, O_RDWR), Err(Errno::ENXIO));
        // A node for a live manager's minor reaches that manager's stream
        // (the clone open left it on the minor's vnode): a reopen, which
        // ptm allows; both fds are one stream.
        let again = w.open_manager_node(minor, O_RDWR).unwrap();
        assert_eq!(w.minor_of(again).unwrap(), minor);
        w.close(again).unwrap();
        assert_eq!(
            w.pt_state(minor).map(|st| st & 0x2),
            Some(0x2),
            "PTMOPEN kept"
        );
        assert_eq!(w.minor_of(m).unwrap(), minor);
        // A non-clone open of minor 0 is allowed and allocates a pty.
        let other = w.open_manager_node(0, O_RDWR).unwrap();
        let m2 = w.minor_of(other).unwrap();
        assert_ne!(m2, minor);
        assert_ne!(m2, 0);
        // Subsidiary minors that do not exist.
        assert_eq!(w.open_subsidiary(99, O_RDWR), Err(Errno::ENOENT));
        assert_eq!(w.open_subsidiary_node(99, O_RDWR), Err(Errno::ENXIO));
    });
}

pub fn m_read_is_dropped_by_both_drivers(b: &dyn Backend) {
    scenario(b, "M_READ dropped", |w| {
        let (m, s, _) = pair_flags(w, O_RDWR | O_NONBLOCK, O_RDWR | O_NONBLOCK);
        let before = w.trace().len();
        w.inject_down(m, 0x85, 0, &[0, 0, 0, 0]).unwrap();
        w.inject_down(s, 0x85, 0, &[0, 0, 0, 0]).unwrap();
        let heads = w.trace()[before..]
            .iter()
            .filter(|e| matches!(e, TraceEvent::HeadRecv { .. }))
            .count();
        assert_eq!(heads, 0, "no stream head sees an M_READ");
        assert_eq!(w.read(s, 10), Err(Errno::EAGAIN));
        assert_eq!(w.read(m, 10), Err(Errno::EAGAIN));
        // The manager still works normally.
        assert_eq!(w.write(m, b"ok").unwrap(), 2);
        assert_eq!(w.read(s, 10).unwrap(), b"ok");
    });
}

pub fn other_message_types_pass_through(b: &dyn Backend) {
    scenario(b, "M_PROTO and M_PCPROTO pass", |w| {
        let (m, s, _) = pair_flags(w, O_RDWR | O_NONBLOCK, O_RDWR | O_NONBLOCK);
        w.inject_down(m, 0x01, 0, b"proto").unwrap();
        w.inject_down(s, 0x83, 0, b"pcproto").unwrap();
        let t = w.trace_lines().join("\n");
        assert!(t.contains("S1 head <- M_PROTO band 0 len 5"), "{t}");
        assert!(t.contains("M1 head <- M_PCPROTO band 0 len 7"), "{t}");
        // A read finding a protocol message first fails with EBADMSG.
        assert_eq!(w.read(s, 10), Err(Errno::EBADMSG));
    });
}

pub fn subsidiary_reopen_shares_the_stream(b: &dyn Backend) {
    scenario(b, "subsidiary reopen", |w| {
        let (m, s1, minor) = pair_flags(w, O_RDWR | O_NONBLOCK, O_RDWR | O_NONBLOCK);
        let s2 = w.open_subsidiary(minor, O_RDWR | O_NONBLOCK).unwrap();
        let opens = w
            .trace_lines()
            .iter()
            .filter(|l| l.contains("S1 head <- M_SETOPTS"))
            .count();
        assert_eq!(opens, 1, "a reopen sends no second M_SETOPTS");
        w.write(m, b"shared").unwrap();
        assert_eq!(w.read(s2, 3).unwrap(), b"sha");
        assert_eq!(w.read(s1, 10).unwrap(), b"red");
        w.close(s1).unwrap();
        assert_eq!(w.read(m, 10), Err(Errno::EAGAIN), "not the last close");
        w.close(s2).unwrap();
        assert_eq!(
            w.read(m, 10).unwrap(),
            b"",
            "last close: zero-length message"
        );
    });
}

pub fn module_load_attach_and_unload(b: &dyn Backend) {
    scenario(b, "module framework", |w| {
        let nodes = w.minor_nodes();
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["ptmajor", "ptmx"]);
        assert!(
            nodes
                .iter()
                .all(|n| n.minor == 0 && n.node_type == "ddi_pseudo")
        );
        assert_eq!(nodes[0].flag, 0);
        assert_eq!(nodes[1].flag, 1, "ptmx is CLONE_DEV");
        assert!(!w.module_linkinfo().unwrap_or_default().is_empty());
        let (m, _) = manager(w);
        assert_eq!(
            w.unload(),
            Err(Errno::EBUSY),
            "busy while a manager is open"
        );
        assert!(w.is_loaded());
        w.close(m).unwrap();
        w.unload().expect("unload when idle");
        assert!(!w.is_loaded());
        assert!(w.minor_nodes().is_empty(), "detach removed the minor nodes");
        w.reload().expect("load again");
        let (_m, minor) = manager(w);
        assert_eq!(minor, 1);
    });
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    named_tests![
        "basic";
        clone_opens_give_distinct_minors_and_setopts,
        noctty_open_omits_so_istty,
        minors_are_reused_after_close,
        subsidiary_locked_until_unlkpt,
        data_flows_both_ways,
        reads_block_or_eagain_when_empty,
        modopen_and_unheld_direct_minor_opens_are_refused,
        m_read_is_dropped_by_both_drivers,
        other_message_types_pass_through,
        subsidiary_reopen_shares_the_stream,
        module_load_attach_and_unload,
    ]
}
