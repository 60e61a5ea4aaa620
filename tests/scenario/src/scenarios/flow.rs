//! Flow control both ways, O_NONBLOCK, back-enabling, chunking, zero-length
//! writes.

use super::common::*;
use crate::*;

const NB: i32 = O_RDWR | O_NONBLOCK;
const QFULL: u32 = 0x8;
const QWANTW: u32 = 0x4;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The lengths of the M_DATA messages stream `head` (`M1`, `S1`) has
/// received so far, as the trace shows them.
fn data_lens(w: &dyn Pty, head: &str) -> Vec<String> {
    let what = format!("{head} head <- M_DATA");
    w.trace_lines()
        .iter()
        .filter(|l| l.contains(&what))
        .map(|l| {
            l.split(" len ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

pub fn manager_to_subsidiary_flow_control_and_backenable(b: &dyn Backend) {
    scenario(b, "manager→subsidiary flow control", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        let data = pattern(10_000);
        // 4 chunks of 512 fill the subsidiary head (hiwat 2048); the 5th
        // waits on ptm's write queue (hiwat 512), which is then full.
        assert_eq!(w.write(m, &data).unwrap(), 2560, "short count");
        assert_eq!(w.write(m, b"more"), Err(Errno::EAGAIN));
        assert!(!w.poll(m).unwrap().pollout);
        let head = w.head_read_queue(s).unwrap();
        assert_eq!((head.count, head.mblkcnt), (2048, 4));
        assert!(head.flag & QFULL != 0 && head.flag & QWANTW != 0);
        let wq = w.driver_write_queue(m).unwrap();
        assert_eq!((wq.count, wq.mblkcnt), (512, 1));
        assert!(wq.flag & QFULL != 0 && wq.flag & QWANTW != 0);

        // Reading above the low-water mark (256) back-enables nothing.
        assert_eq!(w.read(s, 1000).unwrap(), data[..1000]);
        assert_eq!(w.write(m, b"x"), Err(Errno::EAGAIN));
        // Below it, pts's read side is back-enabled, ptsrsrv enables ptm's
        // write queue, ptmwsrv sends the held 512 bytes and ptm's queue
        // back-enables the manager's stream head: writable again.
        assert_eq!(w.read(s, 1000).unwrap(), data[1000..2000]);
        assert_eq!(w.driver_write_queue(m).unwrap().count, 0);
        assert!(w.poll(m).unwrap().pollout);
        assert_eq!(w.read(s, 1000).unwrap(), data[2000..2560]);
        assert_eq!(w.read(s, 1000), Err(Errno::EAGAIN));
        assert_eq!(w.write(m, &data[2560..2600]).unwrap(), 40);
        assert_eq!(w.read(s, 1000).unwrap(), data[2560..2600]);
    });
}

pub fn subsidiary_to_manager_flow_control_and_backenable(b: &dyn Backend) {
    scenario(b, "subsidiary→manager flow control", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        let data = pattern(10_000);
        // pts writes in chunks of 2048: one fills the manager head, one
        // waits on pts's write queue, which is then full.
        assert_eq!(w.write(s, &data).unwrap(), 4096);
        assert_eq!(w.write(s, b"more"), Err(Errno::EAGAIN));
        let wq = w.driver_write_queue(s).unwrap();
        assert_eq!(wq.count, 2048);
        assert!(wq.flag & QFULL != 0);
        assert_eq!(w.read(m, 1000).unwrap(), data[..1000]);
        assert_eq!(w.write(s, b"x"), Err(Errno::EAGAIN), "above lowat: nothing");
        assert_eq!(w.read(m, 1000).unwrap(), data[1000..2000]);
        // Manager head below lowat → ptmrsrv → ptswsrv sends the rest.
        assert_eq!(w.driver_write_queue(s).unwrap().count, 0);
        // A read takes data from every queued message.
        assert_eq!(w.read(m, 5000).unwrap(), data[2000..4096]);
        assert_eq!(w.write(s, b"x").unwrap(), 1);
        assert_eq!(w.read(m, 10).unwrap(), b"x");
    });
}

pub fn blocking_writer_against_a_full_queue_would_sleep(b: &dyn Backend) {
    scenario(b, "blocking write blocks", |w| {
        let (m, _s, _) = pair_flags(w, O_RDWR, NB);
        assert_eq!(w.write(m, &pattern(2560)).unwrap(), 2560);
        assert_eq!(w.write(m, b"z"), Err(Errno::BLOCKED));
        // Closing the manager with data held on its write queue waits (up
        // to 15 s in illumos) for it to drain.
        w.close(m).unwrap();
        let t = w.trace_lines().join("\n");
        assert!(t.contains("waits 15 s"), "{t}");
    });
}

pub fn writes_are_chunked_by_maxpsz(b: &dyn Backend) {
    scenario(b, "write chunking", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write(m, &pattern(1300)).unwrap();
        assert_eq!(
            data_lens(w, "S1"),
            ["512", "512", "276"],
            "ptm's maxpsz is 512"
        );
        w.write(s, &pattern(3000)).unwrap();
        assert_eq!(
            data_lens(w, "M1"),
            ["2048"],
            "pts's maxpsz is 2048; the rest is held"
        );
        assert_eq!(w.read(m, 5000).unwrap().len(), 2048);
        assert_eq!(w.read(m, 5000).unwrap().len(), 952);
        assert_eq!(drain(w, s, 4096, 10_000), pattern(1300));
    });
}

pub fn zero_length_writes_give_one_zero_length_read(b: &dyn Backend) {
    scenario(b, "zero-length writes", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        assert_eq!(w.write(m, b"").unwrap(), 0);
        assert_eq!(w.read(s, 10).unwrap(), b"");
        assert_eq!(w.read(s, 10), Err(Errno::EAGAIN));
        assert_eq!(w.write(s, b"").unwrap(), 0);
        assert_eq!(w.read(m, 10).unwrap(), b"");
        assert_eq!(w.read(m, 10), Err(Errno::EAGAIN));
        // A zero-length message after data: data first, then one 0 read.
        w.write(m, b"ab").unwrap();
        w.write(m, b"").unwrap();
        w.write(m, b"cd").unwrap();
        assert_eq!(w.read(s, 10).unwrap(), b"ab");
        assert_eq!(w.read(s, 10).unwrap(), b"");
        assert_eq!(w.read(s, 10).unwrap(), b"cd");
    });
}

pub fn zero_length_messages_count_as_blocks_for_flow_control(b: &dyn Backend) {
    scenario(b, "zero-length flow control", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        // Each zero-length message weighs one block against hiwat (2048 at
        // the subsidiary head, 512 on ptm's write queue).
        let mut n = 0;
        while w.write(m, b"").is_ok() {
            n += 1;
            assert!(n < 5000, "zero-length writes never flow-controlled");
        }
        assert_eq!(n, 2048 + 512);
        let head = w.head_read_queue(s).unwrap();
        assert_eq!((head.count, head.mblkcnt), (0, 2048));
        for _ in 0..2 {
            assert_eq!(w.read(s, 10).unwrap(), b"");
        }
        assert_eq!(w.head_read_queue(s).unwrap().mblkcnt, 2046);
    });
}

pub fn banded_data_flows_and_is_flow_controlled_per_band(b: &dyn Backend) {
    scenario(b, "banded data", |w| {
        let (m, s, _) = pair_flags(w, NB, NB);
        w.write_band(m, 2, b"urgent").unwrap();
        w.write(m, b"normal").unwrap();
        let head = w.head_read_queue(s).unwrap();
        assert_eq!(head.nband, 2, "band records created up to band 2");
        assert_eq!(
            head.messages,
            vec![(0, 2, 6), (0, 0, 6)],
            "band 2 ahead of band 0"
        );
        assert_eq!(head.count, 6, "only band 0 counts in q_count");
        assert_eq!(w.read(s, 100).unwrap(), b"urgentnormal");
        assert_eq!(
            w.write_band(m, 1, &pattern(600)),
            Err(Errno::ERANGE),
            "putpmsg > maxpsz"
        );
    });
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    named_tests![
        "flow";
        manager_to_subsidiary_flow_control_and_backenable,
        subsidiary_to_manager_flow_control_and_backenable,
        blocking_writer_against_a_full_queue_would_sleep,
        writes_are_chunked_by_maxpsz,
        zero_length_writes_give_one_zero_length_read,
        zero_length_messages_count_as_blocks_for_flow_control,
        banded_data_flows_and_is_flow_controlled_per_band,
    ]
}
