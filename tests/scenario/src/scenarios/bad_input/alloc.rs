//! Allocation failure (part 3 of the matrix) at every allocation point of
//! every path.

use super::states::*;
use super::*;

type Op = fn(&mut dyn Pty, &mut Vec<Fd>) -> Result<(), String>;

/// A path: a setup run without faults, then the operation whose
/// allocations are failed one by one. The fds the setup opened are passed
/// along (manager first).
struct Path {
    name: &'static str,
    setup: Op,
    op: Op,
}

fn no_setup(_: &mut dyn Pty, _: &mut Vec<Fd>) -> Result<(), String> {
    Ok(())
}

fn setup_manager(w: &mut dyn Pty, fds: &mut Vec<Fd>) -> Result<(), String> {
    fds.push(ok("open manager", w.open_manager(NB))?);
    Ok(())
}

fn setup_pair(w: &mut dyn Pty, fds: &mut Vec<Fd>) -> Result<(), String> {
    let (m, s, _) = pair_flags(w, NB, NB);
    fds.extend([m, s]);
    Ok(())
}

/// A pair with data held on ptm's write queue (the subsidiary's stream
/// head is full) and waiting at the manager's stream head.
fn setup_busy_pair(w: &mut dyn Pty, fds: &mut Vec<Fd>) -> Result<(), String> {
    let p = setup(w, St::FlowBlocked)?;
    let s = p.s.ok_or("no subsidiary")?;
    fds.extend([p.m, s]);
    ok("write to the manager", w.write(s, b"to the manager"))?;
    Ok(())
}

fn manager_of(w: &mut dyn Pty, fds: &[Fd]) -> Option<(Fd, u32)> {
    let m = *fds.first()?;
    let minor = w.minor_of(m).ok()?;
    Some((m, minor))
}

/// Every path whose allocations are failed one by one.
fn alloc_paths() -> Vec<Path> {
    [open_paths(), data_paths(), control_paths(), close_paths()]
        .into_iter()
        .flatten()
        .collect()
}

/// The open paths: a manager opened and closed, a subsidiary opened.
fn open_paths() -> Vec<Path> {
    vec![
        Path {
            name: "open manager, then close",
            setup: no_setup,
            op: |w, fds| {
                if let Ok(m) = w.open_manager(O_RDWR) {
                    fds.push(m);
                    let _ = w.close(m);
                }
                if let Ok(m) = w.open_manager(O_RDWR | O_NOCTTY) {
                    let _ = w.close(m);
                }
                Ok(())
            },
        },
        Path {
            name: "UNLKPT, open subsidiary",
            setup: setup_manager,
            op: |w, fds| {
                let (m, minor) = manager_of(w, fds).ok_or("no manager")?;
                let _ = w.unlockpt(m);
                if let Ok(s) = w.open_subsidiary(minor, NB) {
                    fds.push(s);
                }
                // A second try after a failure, and a reopen.
                let _ = w.open_subsidiary(minor, NB);
                Ok(())
            },
        },
    ]
}

/// Data both ways, into a locked pty, and after the subsidiary closed with data held.
fn data_paths() -> Vec<Path> {
    vec![
        Path {
            name: "data manager -> subsidiary",
            setup: setup_pair,
            op: |w, fds| {
                let (m, s) = (fds[0], fds[1]);
                let _ = w.write(m, &[b'a'; 300]);
                let _ = w.write(m, b"");
                let _ = w.write_band(m, 1, b"banded");
                let _ = w.read(s, 1000);
                let _ = w.read(s, 1000);
                Ok(())
            },
        },
        Path {
            name: "data subsidiary -> manager (incl. zero-length)",
            setup: setup_pair,
            op: |w, fds| {
                let (m, s) = (fds[0], fds[1]);
                let _ = w.write(s, &[b'b'; 300]);
                let _ = w.write(s, b"");
                let _ = w.write(s, b"");
                let _ = w.write_band(s, 1, b"banded");
                for _ in 0..4 {
                    let _ = w.read(m, 1000);
                }
                Ok(())
            },
        },
        Path {
            name: "data into a locked pty (M_ERROR)",
            setup: setup_manager,
            op: |w, fds| {
                let m = fds[0];
                let _ = w.write(m, b"x");
                let _ = w.write(m, b"y");
                Ok(())
            },
        },
        Path {
            // ptsclose hands its pt_nullmsg up rather than enabling ptm's
            // write queue, so ptmwsrv's own no-subsidiary branch (and its
            // M_ERROR allocb) is not reached single-threaded; ptmwput's
            // M_ERROR reuses the refused message's block (no allocb).
            name: "messages after the subsidiary closed with data held",
            setup: setup_busy_pair,
            op: |w, fds| {
                let (m, s) = (fds[0], fds[1]);
                let _ = w.close(s);
                let _ = w.inject_down(m, M_DATA, 0, b"late");
                let _ = w.inject_down(m, M_IOCTL, 0, &forged_iocblk(UNKNOWN_IOCTL, 0, 40));
                let _ = w.write(m, b"after");
                Ok(())
            },
        },
    ]
}

/// Flushes and ioctls.
fn control_paths() -> Vec<Path> {
    vec![
        Path {
            name: "flush both sides",
            setup: setup_busy_pair,
            op: |w, fds| {
                let (m, s) = (fds[0], fds[1]);
                let _ = w.flush(m, FLUSHRW);
                let _ = w.flush_band(m, 1, FLUSHRW);
                let _ = w.flush(s, FLUSHRW);
                let _ = w.flush(s, FLUSHR);
                let _ = w.flush(m, FLUSHW);
                let _ = w.inject_down(m, M_FLUSH, 0, &[0x07, 1]);
                Ok(())
            },
        },
        Path {
            name: "each ioctl, whole and split (manager, locked)",
            // Zone 3 exists: when the split ZONEPT back to 0 fails, OWNERPT
            // must not meet the known vanished-zone divergence.
            setup: |w, fds| {
                w.add_zone(3, None);
                setup_manager(w, fds)
            },
            op: |w, fds| {
                let m = fds[0];
                let _ = w.ioctl(m, ISPTM, &[]);
                let _ = w.ioctl(m, UNKNOWN_IOCTL, &[1, 2, 3]);
                let _ = w.ioctl(m, ZONEPT, &zone(3));
                let _ = w.ioctl_blocks(m, ZONEPT, &[&[0], &[0, 0, 0]]);
                let _ = w.ioctl(m, OWNERPT, &own(5, 6));
                let o = own(7, 8);
                let _ = w.ioctl_blocks(m, OWNERPT, &[&o[..1], &o[1..5], &o[5..]]);
                let _ = w.ioctl_chain(m, OWNERPT, &[&[], &o[..4], &[], &o[4..]]);
                let _ = w.ioctl(m, UNLKPT, &[]);
                Ok(())
            },
        },
        Path {
            name: "each ioctl, whole and split (pair)",
            setup: setup_pair,
            op: |w, fds| {
                let (m, s) = (fds[0], fds[1]);
                let _ = w.ioctl(m, ISPTM, &[]);
                let _ = w.ioctl(m, PTSSTTY, &[]);
                let _ = w.ioctl(m, UNKNOWN_IOCTL, &[1, 2, 3]);
                let _ = w.ioctl_blocks(m, ZONEPT, &[&[0, 0], &[0, 0]]);
                let o = own(7, 8);
                let _ = w.ioctl_blocks(m, OWNERPT, &[&o[..3], &o[3..]]);
                let _ = w.ioctl(s, ISPTM, &[]);
                let _ = w.ioctl(s, PTSSTTY, &[]);
                let _ = w.ioctl(s, UNKNOWN_IOCTL, &[]);
                let _ = w.tty_ioctl(s, TIOCGWINSZ, &[]);
                Ok(())
            },
        },
    ]
}

/// The last closes, each side first.
fn close_paths() -> Vec<Path> {
    vec![
        Path {
            name: "close manager first",
            setup: setup_busy_pair,
            op: |w, fds| {
                let (m, s) = (fds[0], fds[1]);
                let _ = w.close(m);
                let _ = w.write(s, b"anyone?");
                let _ = w.read(s, 100);
                let _ = w.close(s);
                Ok(())
            },
        },
        Path {
            name: "close subsidiary first",
            setup: setup_busy_pair,
            op: |w, fds| {
                let (m, s) = (fds[0], fds[1]);
                let _ = w.close(s);
                let _ = w.write(m, b"anyone?");
                let _ = w.read(m, 100);
                let _ = w.close(m);
                Ok(())
            },
        },
    ]
}

/// Runs `path` failing the allocb calls numbered `fail` (1 = the op's
/// first), or the op's pt_ttys_alloc when `fail_pt` is set; returns how
/// many allocb calls the op made.
fn alloc_case(w: &mut dyn Pty, path: &Path, fail: &[u64], fail_pt: bool) -> Result<String, String> {
    let mut fds = Vec::new();
    (path.setup)(w, &mut fds)?;
    for &n in fail {
        w.fail_nth_allocb(n);
    }
    if fail_pt {
        w.fail_next_pt_ttys_alloc();
    }
    let a0 = w.allocb_calls();
    (path.op)(w, &mut fds)?;
    let made = w.allocb_calls() - a0;
    // The (first) failure asked for must have happened.
    if let Some(&n) = fail.iter().min()
        && n > made
    {
        return Err(format!("allocb #{n} never came ({made} calls)"));
    }
    Ok(format!("allocb calls {made}"))
}

/// How many allocb calls a path's op makes when nothing fails, in each
/// variant (they must agree).
fn count_allocs(r: &mut Runner, path: &Path) -> u64 {
    let mut counts = Vec::new();
    for v in r.variants.clone() {
        let mut w = r.backend.world(v).expect("load");
        let mut fds = Vec::new();
        (path.setup)(&mut *w, &mut fds).expect("setup");
        let a0 = w.allocb_calls();
        (path.op)(&mut *w, &mut fds).expect("op");
        counts.push((v.name, w.allocb_calls() - a0));
        w.finish().expect("clean run");
    }
    if counts.windows(2).any(|c| c[0].1 != c[1].1) {
        r.fail(format!(
            "{}: DIVERGENCE in the number of allocb calls: {counts:?}",
            path.name
        ));
    }
    counts[0].1
}

pub fn allocation_failure_at_every_point_of_every_path(b: &dyn Backend) {
    let mut r = Runner::new(b, "allocation failures");
    // Few cases, each a different allocation point: never sampled.
    r.sample = 1;
    let mut points = Vec::new();
    for path in alloc_paths() {
        let k = count_allocs(&mut r, &path);
        points.push(format!("{}: {k}", path.name));
        r.case(&format!("{}: nothing fails", path.name), &|w| {
            alloc_case(w, &path, &[], false)
        });
        for n in 1..=k {
            r.case(&format!("{}: allocb #{n} fails", path.name), &|w| {
                alloc_case(w, &path, &[n], false)
            });
        }
        // Every allocb from the n-th on fails (a lasting shortage).
        for n in 1..=k {
            let all: Vec<u64> = (n..=k + 8).collect();
            r.case(
                &format!("{}: allocb #{n} and later fail", path.name),
                &|w| alloc_case(w, &path, &all, false),
            );
        }
        // Every pair.
        for a in 1..=k {
            for b in a + 1..=k {
                r.case(&format!("{}: allocb #{a} and #{b} fail", path.name), &|w| {
                    alloc_case(w, &path, &[a, b], false)
                });
            }
        }
        r.case(&format!("{}: pt_ttys_alloc fails", path.name), &|w| {
            alloc_case(w, &path, &[], true)
        });
    }
    // pt_ttys_alloc failure on the open path proper: ENOMEM, no minor
    // consumed, nothing leaked, the next open works.
    r.case("open: pt_ttys_alloc fails", &|w| {
        w.fail_next_pt_ttys_alloc();
        if w.open_manager(O_RDWR) != Err(Errno::ENOMEM) {
            return Err("expected ENOMEM".into());
        }
        if !w.leaks().is_clean() {
            return Err(format!("leak after the failed open: {:?}", w.leaks()));
        }
        let (_, minor) = manager(w);
        if minor != 1 {
            return Err(format!("minor {minor} after the failed open"));
        }
        Ok(String::new())
    });
    println!("allocb calls per path: {}", points.join("; "));
    r.done();
}
