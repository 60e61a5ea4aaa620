//! Assertions of external test suites, re-expressed as scenarios (the
//! originals are Linux-only or need a real illumos; only their assertions
//! are ported, not their code).

use crate::*;

/// LTP `common.h` `open_master()` + `open_slave()`: grantpt, unlockpt,
/// ptsname; the subsidiary node is owned by the caller with mode
/// `S_IFCHR | 0620`.
fn ltp_open_master(w: &mut dyn Pty) -> Fd {
    let m = w.open_manager(O_RDWR).expect("open /dev/ptmx");
    w.grantpt(m).expect("grantpt");
    w.unlockpt(m).expect("unlockpt");
    m
}

fn ltp_open_slave(w: &mut dyn Pty, m: Fd) -> Fd {
    let name = w.ptsname(m).expect("ptsname");
    let minor: u32 = name.strip_prefix("/dev/pts/").unwrap().parse().unwrap();
    let st = w.pts_node(minor).expect("stat");
    assert_eq!(st.uid, w.cred().uid, "uid mismatch");
    assert_eq!(st.mode, 0o020620, "unexpected slave device permission");
    w.open_subsidiary(minor, O_RDWR).expect("open slave")
}

pub fn ltp_pty01_locking_data_and_invalid_ioctls(b: &dyn Backend) {
    // LTP pty01 (test1, test3): the subsidiary is locked until unlockpt;
    // data both ways; TIOCGWINSZ fails on both raw sides and on a manager
    // without a subsidiary.
    scenario(b, "LTP pty01", |w| {
        w.set_cred(Cred::user(1000, 100));
        let m = w.open_manager(O_RDWR).unwrap();
        let name = w.ptsname(m).unwrap();
        w.grantpt(m).unwrap();
        let minor: u32 = name["/dev/pts/".len()..].parse().unwrap();
        let st = w.pts_node(minor).unwrap();
        assert_eq!(st.uid, 1000);
        assert_eq!(st.mode, 0o020620);
        assert!(
            w.open_subsidiary(minor, O_RDWR).is_err(),
            "open didn't fail as expected"
        );
        w.unlockpt(m).unwrap();
        let s = w.open_subsidiary(minor, O_RDWR).unwrap();
        const STRING: &[u8] = b"Linux Test Project\n";
        assert_eq!(w.write(m, STRING).unwrap(), STRING.len());
        assert_eq!(w.read(s, STRING.len()).unwrap(), STRING);
        assert_eq!(w.write(s, STRING).unwrap(), STRING.len());
        assert_eq!(w.read(m, STRING.len()).unwrap(), STRING);
        assert!(w.tty_ioctl(s, TIOCGWINSZ, &[]).is_err());
        assert!(w.tty_ioctl(m, TIOCGWINSZ, &[]).is_err());
        w.close(s).unwrap();
        w.close(m).unwrap();
        // test3: no subsidiary open.
        let m = w.open_manager(O_RDWR).unwrap();
        assert!(w.tty_ioctl(m, TIOCGWINSZ, &[]).is_err());
    });
}

pub fn ltp_pty01_many_ptys(b: &dyn Backend) {
    // LTP pty01 test5: 15 processes each open /dev/ptmx, grantpt, ptsname.
    scenario(b, "LTP pty01 test5", |w| {
        let mut names = Vec::new();
        for _ in 0..15 {
            let m = w.open_manager(O_RDWR).unwrap();
            w.grantpt(m).unwrap();
            names.push(w.ptsname(m).unwrap());
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 15);
    });
}

pub fn ltp_pty08_subsidiary_after_manager_close(b: &dyn Backend) {
    // LTP pty08: after the master is closed, read(slave) == 0 and
    // write(slave) fails with EIO.
    scenario(b, "LTP pty08", |w| {
        let m = ltp_open_master(w);
        let s = ltp_open_slave(w, m);
        w.close(m).unwrap();
        assert_eq!(w.read(s, 1).unwrap().len(), 0);
        assert_eq!(w.write(s, b"x"), Err(Errno::EIO));
        w.close(s).unwrap();
    });
}

pub fn ltp_pty09_subsidiary_opened_many_times(b: &dyn Backend) {
    // LTP pty09: the slave can be opened as many times as there are free
    // descriptors (here 200), all at once, then closed.
    scenario(b, "LTP pty09", |w| {
        let m = ltp_open_master(w);
        let fds: Vec<Fd> = (0..200).map(|_| ltp_open_slave(w, m)).collect();
        for fd in fds {
            w.close(fd).unwrap();
        }
        assert_eq!(
            w.read(m, 1).unwrap(),
            b"",
            "one zero-length message at the last close"
        );
        w.close(m).unwrap();
    });
}

pub fn ltp_ptem04_subsidiary_opened_ten_times(b: &dyn Backend) {
    // LTP ptem04: open the slave 10 times.
    scenario(b, "LTP ptem04", |w| {
        let m = ltp_open_master(w);
        let fds: Vec<Fd> = (0..10).map(|_| ltp_open_slave(w, m)).collect();
        assert!(fds.windows(2).all(|p| p[0] != p[1]));
        for fd in fds {
            w.close(fd).unwrap();
        }
    });
}

pub fn ltp_ptem05_ten_managers_each_with_a_subsidiary(b: &dyn Backend) {
    // LTP ptem05: 10 masters, each with a slave.
    scenario(b, "LTP ptem05", |w| {
        let ms: Vec<Fd> = (0..10).map(|_| ltp_open_master(w)).collect();
        let ss: Vec<Fd> = ms.iter().map(|&m| ltp_open_slave(w, m)).collect();
        // Each pair is its own: data does not cross.
        for (i, (&m, &s)) in ms.iter().zip(ss.iter()).enumerate() {
            w.write(m, format!("pty{i}").as_bytes()).unwrap();
            assert_eq!(w.read(s, 10).unwrap(), format!("pty{i}").as_bytes());
        }
        for s in ss {
            w.close(s).unwrap();
        }
    });
}

pub fn illumos_libc_ptsname_checks(b: &dyn Backend) {
    // illumos libc-tests ptsname.c: two managers get different names; the
    // name is /dev/pts/<minor>; ptsname and ptsname_r agree; ERANGE for
    // short buffers; EBADF for a bad descriptor; a non-manager fails.
    scenario(b, "illumos libc-tests ptsname", |w| {
        let a = w.open_manager(O_RDWR | O_NOCTTY).unwrap();
        let b = w.open_manager(O_RDWR | O_NOCTTY).unwrap();
        let na = w.ptsname(a).unwrap();
        let nb = w.ptsname(b).unwrap();
        assert_ne!(na, nb);
        for (fd, n) in [(a, &na), (b, &nb)] {
            let minor = w.minor_of(fd).unwrap();
            assert_eq!(*n, format!("/dev/pts/{minor}"));
            assert!(n.starts_with("/dev/pts/"));
            assert_eq!(w.ptsname_r(fd, 64).unwrap(), *n);
            assert_eq!(w.ptsname_r(fd, 0), Err(Errno::ERANGE));
            assert_eq!(w.ptsname_r(fd, 8), Err(Errno::ERANGE));
            assert_eq!(w.ptsname_r(fd, n.len()), Err(Errno::ERANGE));
            assert_eq!(w.ptsname_r(fd, n.len() + 1).unwrap(), *n);
        }
        assert_eq!(w.ptsname(Fd(99)), Err(Errno::EBADF));
        w.unlockpt(a).unwrap();
        let minor = w.minor_of(a).unwrap();
        let s = w.open_subsidiary(minor, O_RDWR).unwrap();
        assert_eq!(
            w.ptsname(s),
            Err(Errno::EINVAL),
            "a subsidiary is not a manager"
        );
    });
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    named_tests![
        "ported";
        ltp_pty01_locking_data_and_invalid_ioctls,
        ltp_pty01_many_ptys,
        ltp_pty08_subsidiary_after_manager_close,
        ltp_pty09_subsidiary_opened_many_times,
        ltp_ptem04_subsidiary_opened_ten_times,
        ltp_ptem05_ten_managers_each_with_a_subsidiary,
        illumos_libc_ptsname_checks,
    ]
}
