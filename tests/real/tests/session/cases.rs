//! A terminal session end to end on the real-code world: illumos's ptem,
//! ldterm and ttcompat on the real pts, a shell process leading the
//! session, a terminal emulator on the manager -- through every ptm
//! variant, with identical traces (see ptm_real::session).
//!
//! Each scenario asserts what a user of the session sees (POSIX termios,
//! illumos termio(4I)); where the issue's list of expectations and
//! illumos's own code disagree, the scenario follows illumos's code and
//! says so.

use ptm_real::REAL;
use ptm_real::session::*;
use ptm_scenario::*;

/// The shell's session: signals to it are signals to process group 4300
/// (the shell leads its own process group) or to process 4300 (the
/// session leader, for SIGHUP).
const G: char = 'g';

fn login(s: &mut Session) -> (Fd, Fd) {
    let (m, sh, _) = s.login(Login::Push).expect("login");
    s.set_nonblock(m, true).unwrap();
    s.set_nonblock(sh, true).unwrap();
    (m, sh)
}

/// Writes `input` on `from` and reads `to` (at most 100 bytes): it must
/// get `expected` -- what a reader of the other end sees for the input.
#[track_caller]
fn line(s: &mut Session, from: Fd, input: &[u8], to: Fd, expected: &[u8], what: &str) {
    s.write(from, input).unwrap();
    assert_eq!(s.read(to, 100).unwrap(), expected, "{what}");
}

fn illumos_default_modes() -> Termios {
    Termios::from_bytes(&ptm_real::kernel::TTYMODES)
}

// --- logging in -------------------------------------------------------------

fn login_by_i_push_and_by_ptsstty(_b: &dyn Backend) {
    for how in [Login::Push, Login::Ptsstty] {
        session_scenario(&format!("login by {how:?}"), |s| {
            let (m, sh, minor) = s.login(how).expect("login");
            for module in ["ptem", "ldterm", "ttcompat"] {
                assert_eq!(s.find(sh, module), Ok(1), "{module} is on the subsidiary");
                assert_eq!(s.find(m, module), Ok(0), "{module} is not on the manager");
            }
            assert_eq!(
                s.tcgetattr(sh),
                Ok(illumos_default_modes()),
                "ldterm starts with illumos's default modes"
            );
            assert_eq!(
                s.ctty_of(sh),
                Ok((SHELL_PID, SHELL_PID)),
                "the subsidiary is the shell's controlling terminal, its group in the foreground"
            );
            assert_eq!(s.ioctl_pid(sh, TIOCGSID), Ok(SHELL_PID));
            assert_eq!(s.ioctl_pid(sh, TIOCGPGRP), Ok(SHELL_PID));
            if how == Login::Ptsstty {
                assert_eq!(s.world().pt_state(minor).map(|st| st & 0x08), Some(0x08));
            }
            // The session works: a line typed on the manager is read.
            line(s, m, b"id\n", sh, b"id\n", "");
        });
    }
}

// --- canonical input ------------------------------------------------------

fn canonical_input_is_edited_and_delivered_by_line(_b: &dyn Backend) {
    session_scenario("canonical input", |s| {
        let (m, sh) = login(s);
        s.write(m, b"hel").unwrap();
        assert_eq!(
            s.read(sh, 100),
            Err(Errno::EAGAIN),
            "no newline yet: nothing to read"
        );
        line(s, m, b"lo\n", sh, b"hello\n", "the line, at its newline");
        line(
            s,
            m,
            b"abx\x7f\n",
            sh,
            b"ab\n",
            "ERASE (DEL) removes one character",
        );
        line(
            s,
            m,
            b"one two\x17three\n",
            sh,
            b"one three\n",
            "WERASE (^W) removes a word",
        );
        line(
            s,
            m,
            b"garbage\x15ok\n",
            sh,
            b"ok\n",
            "KILL (^U) removes the line",
        );
        line(s, m, b"\x04", sh, b"", "EOF (^D) on an empty line reads 0");
        line(
            s,
            m,
            b"part\x04",
            sh,
            b"part",
            "EOF ends a line without a newline",
        );
        line(
            s,
            m,
            "a\u{e9}\x7f\n".as_bytes(),
            sh,
            b"a\n",
            "a two-byte UTF-8 character erased as one",
        );
        // What the terminal was shown: each erase as BS SP BS (ECHOE), one
        // for the two-byte character, ^D as ^D and two backspaces.
        let echo = s.read(m, 4096).unwrap();
        assert_eq!(
            echo,
            b"hello\r\nabx\x08 \x08\r\none two\x08 \x08\x08 \x08\x08 \x08three\r\n\
              garbage\x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08ok\r\n\
              ^D\x08\x08part^D\x08\x08a\xc3\xa9\x08 \x08\r\n"
        );
    });
}

// --- echo and output ------------------------------------------------------

fn echo_modes_and_onlcr(_b: &dyn Backend) {
    session_scenario("echo modes and ONLCR", |s| {
        let (m, sh) = login(s);
        line(s, m, b"hi\n", sh, b"hi\n", "");
        assert_eq!(
            s.read(m, 100).unwrap(),
            b"hi\r\n",
            "ECHO, with ONLCR on the echo"
        );
        // ECHONL without ECHO: only the newline is echoed.
        s.modify_termios(sh, |t| {
            t.c_lflag &= !(ECHO | ECHOKE);
            t.c_lflag |= ECHONL | ECHOK;
        })
        .unwrap();
        line(s, m, b"ab\x15cd\n", sh, b"cd\n", "");
        assert_eq!(
            s.read(m, 100).unwrap(),
            b"\r\n",
            "ECHONL echoes the newline alone"
        );
        // ECHOK (no ECHOKE): the kill character is echoed, then a newline.
        s.modify_termios(sh, |t| t.c_lflag |= ECHO).unwrap();
        line(s, m, b"ab\x15cd\n", sh, b"cd\n", "");
        assert_eq!(s.read(m, 100).unwrap(), b"ab^U\r\ncd\r\n", "ECHOK");
        // Output: ONLCR maps NL to CR NL; without it bytes pass as written.
        line(s, sh, b"x\ny\n", m, b"x\r\ny\r\n", "");
        s.modify_termios(sh, |t| t.c_oflag &= !ONLCR).unwrap();
        line(s, sh, b"x\ny\n", m, b"x\ny\n", "");
    });
}

// --- signals --------------------------------------------------------------

fn signal_characters_signal_the_foreground_group(_b: &dyn Backend) {
    session_scenario("INTR, QUIT, SUSP", |s| {
        let (m, sh) = login(s);
        let mark = s.mark();
        s.write(m, b"abc\x03").unwrap();
        assert_eq!(s.signals_since(mark), vec![(G, SHELL_PID, SIGINT)]);
        line(s, m, b"\n", sh, b"\n", "^C flushed the typed \"abc\"");
        // The echo: ldterm sends the echo of one input message after it has
        // handled the message, so "abc" is echoed after the ^C (and is not
        // flushed by it).
        assert_eq!(s.read(m, 100).unwrap(), b"^Cabc\r\n");
        let mark = s.mark();
        s.write(m, b"\x1c").unwrap();
        assert_eq!(s.signals_since(mark), vec![(G, SHELL_PID, SIGQUIT)]);
        let mark = s.mark();
        s.write(m, b"\x1a").unwrap();
        assert_eq!(s.signals_since(mark), vec![(G, SHELL_PID, SIGTSTP)]);
        assert_eq!(
            s.read(m, 100).unwrap(),
            b"^Z",
            "^\\ echo flushed by ^Z's flush"
        );
        // Output queued toward the manager is flushed by a signal too.
        s.write(sh, b"output\n").unwrap();
        line(s, m, b"\x03", m, b"^C", "queued output discarded");
        // NOFLSH: the signal is sent, nothing is flushed.
        s.modify_termios(sh, |t| t.c_lflag |= NOFLSH).unwrap();
        let mark = s.mark();
        s.write(m, b"abc\x03def\n").unwrap();
        assert_eq!(s.signals_since(mark), vec![(G, SHELL_PID, SIGINT)]);
        assert_eq!(
            s.read(sh, 100).unwrap(),
            b"abcdef\n",
            "NOFLSH keeps the input"
        );
        // No signal without ISIG: ^C is an ordinary character.
        s.modify_termios(sh, |t| t.c_lflag &= !ISIG).unwrap();
        let mark = s.mark();
        s.write(m, b"\x03\n").unwrap();
        assert_eq!(s.signals_since(mark), vec![]);
        assert_eq!(s.read(sh, 100).unwrap(), b"\x03\n");
    });
}

// --- flushes from the manager -------------------------------------------------

/// tcflush on the manager, as a terminal emulator discards what it typed
/// or what it has not yet shown: I_FLUSH FLUSHW on the manager reaches
/// the subsidiary's read side as FLUSHR (ldterm drops the partial line);
/// I_FLUSH FLUSHR reaches its write side as FLUSHW (output held by ^S in
/// ptem is dropped).
fn manager_side_flushes(_b: &dyn Backend) {
    session_scenario("tcflush on the manager", |s| {
        let (m, sh) = login(s);
        s.modify_termios(sh, |t| t.c_lflag &= !ECHO).unwrap();
        s.write(m, b"typed").unwrap();
        s.world().flush(m, FLUSHW).unwrap();
        line(
            s,
            m,
            b"new\n",
            sh,
            b"new\n",
            "the partial line was discarded",
        );
        s.write(m, b"\x13").unwrap();
        s.write(sh, b"unseen").unwrap();
        s.world().flush(m, FLUSHR).unwrap();
        s.write(m, b"\x11").unwrap();
        assert_eq!(
            s.read(m, 100),
            Err(Errno::EAGAIN),
            "held output was discarded"
        );
        line(s, sh, b"seen", m, b"seen", "");
    });
}

// --- IXON ---------------------------------------------------------------

fn ixon_stops_and_restarts_output(_b: &dyn Backend) {
    session_scenario("IXON", |s| {
        let (m, sh) = login(s);
        line(s, sh, b"one", m, b"one", "");
        s.write(m, b"\x13").unwrap();
        s.write(sh, b"two").unwrap();
        assert_eq!(s.read(m, 100), Err(Errno::EAGAIN), "^S holds output");
        s.write(sh, b"three").unwrap();
        line(
            s,
            m,
            b"\x11",
            m,
            b"twothree",
            "^Q releases it, nothing lost",
        );
        // ^S and ^Q are not input.
        line(s, m, b"x\n", sh, b"x\n", "");
        // Without IXON they are.
        s.modify_termios(sh, |t| t.c_iflag &= !IXON).unwrap();
        line(s, m, b"\x13\x11\n", sh, b"\x13\x11\n", "");
    });
}

// --- raw mode --------------------------------------------------------------

fn raw_mode_vmin_and_vtime(_b: &dyn Backend) {
    session_scenario("VMIN/VTIME", |s| {
        let (m, sh) = login(s);
        s.set_nonblock(sh, false).unwrap();
        let raw = |vmin: u8, vtime: u8| {
            move |t: &mut Termios| {
                t.c_lflag &= !(ICANON | ECHO);
                t.c_cc[VMIN] = vmin;
                t.c_cc[VTIME] = vtime;
            }
        };
        // VMIN 1, VTIME 0: each byte as it comes.
        s.modify_termios(sh, raw(1, 0)).unwrap();
        line(s, m, b"a", sh, b"a", "");
        // VMIN 3, VTIME 0: a read waits for three bytes.
        s.modify_termios(sh, raw(3, 0)).unwrap();
        s.write(m, b"bc").unwrap();
        assert_eq!(
            s.read(sh, 100),
            Err(Errno::BLOCKED),
            "two bytes of three: it waits"
        );
        line(s, m, b"d", sh, b"bcd", "");
        // VMIN 0, VTIME 0: a poll.
        s.modify_termios(sh, raw(0, 0)).unwrap();
        assert_eq!(s.read(sh, 100).unwrap(), b"", "nothing there: 0 at once");
        let t0 = s.now_ticks();
        line(s, m, b"e", sh, b"e", "");
        assert_eq!(s.now_ticks(), t0, "no time passed");
        // VMIN 0, VTIME 5: nothing comes in half a second: 0.
        s.modify_termios(sh, raw(0, 5)).unwrap();
        let t0 = s.now_ticks();
        assert_eq!(s.read(sh, 100).unwrap(), b"");
        assert_eq!(s.now_ticks() - t0, 50, "after VTIME (0.5 s)");
        // VMIN 2, VTIME 2: one byte, then the inter-byte timer ends it.
        s.modify_termios(sh, raw(2, 2)).unwrap();
        s.write(m, b"f").unwrap();
        let t0 = s.now_ticks();
        assert_eq!(s.read(sh, 100).unwrap(), b"f");
        assert_eq!(s.now_ticks() - t0, 20, "after the inter-byte VTIME (0.2 s)");
        // ... and two bytes satisfy VMIN at once.
        s.write(m, b"gh").unwrap();
        let t0 = s.now_ticks();
        assert_eq!(s.read(sh, 100).unwrap(), b"gh");
        assert_eq!(s.now_ticks(), t0);
    });
}

// --- window size, break, drain ----------------------------------------------

fn window_size_break_and_drain(_b: &dyn Backend) {
    session_scenario("TIOCSWINSZ, TCSBRK, TCSETSW", |s| {
        let (m, sh) = login(s);
        let ws = Winsize {
            rows: 24,
            cols: 80,
            xpixel: 640,
            ypixel: 480,
        };
        let mark = s.mark();
        s.set_winsize(m, ws).unwrap();
        assert_eq!(s.signals_since(mark), vec![(G, SHELL_PID, SIGWINCH)]);
        assert_eq!(s.get_winsize(sh), Ok(ws), "the shell sees the new size");
        assert_eq!(s.get_winsize(m), Ok(ws), "so does the manager");
        // The same size again: ptem compares ws_ypixel with the new
        // ws_xpixel (a slip in ptem.c), so a size whose pixel width and
        // height differ signals again; one whose pixel sizes are equal
        // does not.
        let mark = s.mark();
        s.set_winsize(m, ws).unwrap();
        assert_eq!(s.signals_since(mark), vec![(G, SHELL_PID, SIGWINCH)]);
        let square = Winsize {
            rows: 50,
            cols: 132,
            xpixel: 0,
            ypixel: 0,
        };
        s.set_winsize(m, square).unwrap();
        let mark = s.mark();
        s.set_winsize(m, square).unwrap();
        assert_eq!(
            s.signals_since(mark),
            vec![],
            "the same size again: no SIGWINCH"
        );
        assert_eq!(s.get_winsize(sh), Ok(square));
        // TCSBRK: a drain (arg 1) and a break (arg 0) both succeed on a pty;
        // ptem passes the ioctl on to the manager side, whose stream head
        // discards it: nothing to read there.
        assert_eq!(s.ioctl_val(sh, TCSBRK, 1), Ok(0));
        assert_eq!(s.ioctl_val(sh, TCSBRK, 0), Ok(0));
        assert_eq!(s.read(m, 100), Err(Errno::EAGAIN));
        // TCSETSW waits for output to drain: with output stopped it cannot
        // complete (the call sleeps until interrupted); once started, the
        // held output arrives.
        s.write(m, b"\x13").unwrap();
        s.write(sh, b"pending").unwrap();
        let t = s.tcgetattr(sh).unwrap();
        assert_eq!(s.tcsetattr(sh, TCSETSW, &t), Err(Errno::BLOCKED));
        line(s, m, b"\x11", m, b"pending", "");
        assert_eq!(
            s.tcsetattr(sh, TCSETSW, &t),
            Ok(()),
            "drained: it completes"
        );
    });
}

// --- bulk ------------------------------------------------------------------

fn paste_into_a_canonical_reader(_b: &dyn Backend) {
    session_scenario("paste of 65 KiB into a canonical reader", |s| {
        let (m, sh) = login(s);
        s.modify_termios(sh, |t| t.c_lflag &= !ECHO).unwrap();
        let mut paste = Vec::new();
        for i in 0..1040u32 {
            let line = format!(
                "{i:05} {}\n",
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW"
            );
            paste.extend_from_slice(line.as_bytes());
        }
        assert!(paste.len() >= 64 * 1024);
        // First the shell reads nothing: the manager's writes stop
        // (flow control), having taken far less than the paste.
        let mut sent = 0;
        while sent < paste.len() {
            match s.write(m, &paste[sent..(sent + 4096).min(paste.len())]) {
                Ok(n) => sent += n,
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
        assert!(
            sent < 32 * 1024,
            "the manager's writes were not held back ({sent} bytes taken with no reader)"
        );
        // Then both run: every line read once, whole, in order.
        let mut got = Vec::new();
        let mut rounds = 0;
        while got.len() < paste.len() {
            rounds += 1;
            assert!(rounds < 100_000, "paste stalled at {} bytes", got.len());
            if sent < paste.len() {
                match s.write(m, &paste[sent..(sent + 4096).min(paste.len())]) {
                    Ok(n) => sent += n,
                    Err(e) => assert_eq!(e, Errno::EAGAIN),
                }
            }
            loop {
                match s.read(sh, 4096) {
                    Ok(line) => {
                        assert!(
                            line.ends_with(b"\n") && line.len() == 66,
                            "not one whole line at {}: {} bytes {:?}",
                            got.len(),
                            line.len(),
                            String::from_utf8_lossy(&line)
                        );
                        got.extend_from_slice(&line);
                    }
                    Err(e) => {
                        assert_eq!(e, Errno::EAGAIN);
                        break;
                    }
                }
            }
        }
        assert_eq!(got, paste, "every byte once, in order");
    });
}

fn output_burst_under_flow_control(_b: &dyn Backend) {
    session_scenario("burst of 65 KiB of output with ^S/^Q", |s| {
        let (m, sh) = login(s);
        let burst: Vec<u8> = (0..66_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        let mut stopped_once = false;
        let mut rounds = 0;
        while got.len() < burst.len() {
            rounds += 1;
            assert!(rounds < 100_000, "burst stalled at {} bytes", got.len());
            if sent < burst.len() {
                match s.write(sh, &burst[sent..(sent + 8192).min(burst.len())]) {
                    Ok(n) => sent += n,
                    Err(e) => assert_eq!(e, Errno::EAGAIN),
                }
            }
            if !stopped_once && sent >= 16 * 1024 {
                stopped_once = true;
                s.write(m, b"\x13").unwrap();
                // What already passed ptem still arrives; then nothing.
                while let Ok(d) = s.read(m, 65536) {
                    got.extend_from_slice(&d);
                }
                // The shell's writes back up until they are refused.
                let before = sent;
                loop {
                    match s.write(sh, &burst[sent..(sent + 8192).min(burst.len())]) {
                        Ok(n) => sent += n,
                        Err(e) => {
                            assert_eq!(e, Errno::EAGAIN);
                            break;
                        }
                    }
                    assert!(sent < burst.len(), "output never backed up while stopped");
                }
                assert!(
                    sent - before <= 16 * 1024,
                    "{} bytes taken while output was stopped",
                    sent - before
                );
                assert_eq!(
                    s.read(m, 100),
                    Err(Errno::EAGAIN),
                    "stopped: nothing to read"
                );
                s.write(m, b"\x11").unwrap();
            }
            while let Ok(d) = s.read(m, 65536) {
                got.extend_from_slice(&d);
            }
        }
        assert!(stopped_once);
        assert_eq!(got, burst, "every byte once, in order");
    });
}

// --- packet mode -------------------------------------------------------------

fn packet_mode_on_the_manager(_b: &dyn Backend) {
    session_scenario("pckt on the manager", |s| {
        let (m, sh) = login(s);
        // BSD's TIOCPKT does not exist on illumos: the manager forwards it,
        // the subsidiary's stream head NAKs it.
        assert_eq!(
            s.ioctl_buf(m, TIOCPKT, &mut 1i32.to_le_bytes()),
            Err(Errno::EINVAL)
        );
        // illumos's packet mode is the pckt module on the manager: every
        // message from the subsidiary comes as M_PROTO naming its type.
        s.push(m, "pckt").unwrap();
        assert_eq!(s.ctty_of(m), Ok((0, 0)), "pushing pckt makes no ctty");
        s.write(sh, b"hi\n").unwrap();
        let g = s.getmsg(m, 16, 100).unwrap();
        assert_eq!(
            (g.ctl, g.data),
            (Some(vec![M_DATA]), Some(b"hi\r\n".to_vec()))
        );
        assert_eq!(s.read(m, 100), Err(Errno::EAGAIN), "nothing else queued");
        // ^S and ^Q: M_STOP and M_START packets.
        s.write(m, b"\x13").unwrap();
        let g = s.getmsg(m, 16, 100).unwrap();
        assert_eq!((g.ctl, g.data), (Some(vec![M_STOP]), Some(vec![])));
        s.write(m, b"\x11").unwrap();
        let g = s.getmsg(m, 16, 100).unwrap();
        assert_eq!((g.ctl, g.data), (Some(vec![M_START]), Some(vec![])));
        // The subsidiary flushing its output: an M_FLUSH packet saying
        // FLUSHW, as the subsidiary sent it (pts turns it into FLUSHR for
        // the manager, pckt turns it back).
        const FLUSHW: u8 = 2;
        s.ioctl_val(sh, TCFLSH, TCOFLUSH).unwrap();
        let g = s.getmsg(m, 16, 100).unwrap();
        assert_eq!((g.ctl, g.data), (Some(vec![M_FLUSH]), Some(vec![FLUSHW])));
        s.ioctl_val(sh, TCFLSH, TCIOFLUSH).unwrap();
        let g = s.getmsg(m, 16, 100).unwrap();
        assert_eq!((g.ctl, g.data), (Some(vec![M_FLUSH]), Some(vec![FLUSHW])));
        // Flushing its input concerns the subsidiary alone: no packet.
        s.ioctl_val(sh, TCFLSH, TCIFLUSH).unwrap();
        assert_eq!(s.getmsg(m, 16, 100), Err(Errno::EAGAIN));
        // A mode change: ptem sends the new termios to the manager as an
        // M_IOCTL packet (iocblk, then the termios).
        let mut t = s.tcgetattr(sh).unwrap();
        t.c_lflag &= !ECHO;
        s.tcsetattr(sh, TCSETS, &t).unwrap();
        let g = s.getmsg(m, 16, 200).unwrap();
        assert_eq!(g.ctl, Some(vec![M_IOCTL]));
        let data = g.data.unwrap();
        assert_eq!(&data[..4], &(TCSETS as u32).to_le_bytes());
        assert_eq!(Termios::from_bytes(&data[data.len() - 36..]), t);
        // Data from the manager still reaches the shell.
        line(s, m, b"ok\n", sh, b"ok\n", "");
    });
}

// --- hangups ----------------------------------------------------------------

fn manager_close_hangs_up_the_session(_b: &dyn Backend) {
    session_scenario("manager closes under a session", |s| {
        let (m, sh) = login(s);
        s.modify_termios(sh, |t| t.c_lflag &= !ECHO).unwrap();
        s.write(m, b"done\nabc").unwrap();
        let mark = s.mark();
        s.close(m).unwrap();
        assert_eq!(
            s.signals_since(mark),
            vec![('p', SHELL_PID, SIGHUP)],
            "SIGHUP to the session leader"
        );
        assert_eq!(
            s.read(sh, 100).unwrap(),
            b"done\n",
            "a line already passed up is read"
        );
        assert_eq!(
            s.read(sh, 100).unwrap(),
            b"",
            "then end of file (\"abc\" was discarded)"
        );
        assert_eq!(s.read(sh, 100).unwrap(), b"", "and again");
        assert_eq!(s.write(sh, b"x"), Err(Errno::EIO));
        let p = s.poll(sh).unwrap();
        assert!(p.pollhup && !p.pollin, "{p:?}");
    });
}

fn subsidiary_close_reads_eof_once(_b: &dyn Backend) {
    session_scenario("the shell exits", |s| {
        let (m, sh, _) = s.login(Login::Push).expect("login");
        s.write(sh, b"bye\n").unwrap();
        s.close(sh).unwrap();
        assert_eq!(s.read(m, 100).unwrap(), b"bye\r\n");
        assert_eq!(s.read(m, 100).unwrap(), b"", "one zero-length read");
        assert_eq!(s.read(m, 100), Err(Errno::BLOCKED), "then a read waits");
        s.set_nonblock(m, true).unwrap();
        assert_eq!(s.read(m, 100), Err(Errno::EAGAIN), "or says EAGAIN");
        let p = s.poll(m).unwrap();
        assert!(!p.pollin && !p.pollhup, "{p:?}");
    });
}

// --- illumos's libc pty tests, as facts of this world ----------------------

/// ptsname: a manager's name is /dev/pts/<its minor>, stable, distinct for
/// two managers; it fails with EBADF for a descriptor that is not open and
/// with EINVAL for a subsidiary (ISPTM is NAKed); a buffer too short for
/// the name and its NUL is ERANGE (ptsname_r).
fn libc_ptsname(_b: &dyn Backend) {
    fn ptsname_r(s: &mut Session, fd: Fd, len: usize) -> Result<String, Errno> {
        let name = s.ptsname(fd)?;
        if name.len() + 1 > len {
            return Err(Errno::ERANGE);
        }
        Ok(name)
    }
    session_scenario("ptsname", |s| {
        let m = s.open_manager().unwrap();
        let alt = s.open_manager().unwrap();
        let name = s.ptsname(m).unwrap();
        assert!(name.starts_with("/dev/pts/"));
        assert_eq!(name, format!("/dev/pts/{}", s.world().minor_of(m).unwrap()));
        assert_eq!(
            ptsname_r(s, m, 32).unwrap(),
            name,
            "ptsname and ptsname_r agree"
        );
        let alt_name = ptsname_r(s, alt, 32).unwrap();
        assert_ne!(alt_name, name, "two managers, two names");
        assert_eq!(s.ptsname(m).unwrap(), name, "not changed by the other");
        assert_eq!(s.ptsname(Fd(99)), Err(Errno::EBADF));
        assert_eq!(ptsname_r(s, m, 0), Err(Errno::ERANGE));
        assert_eq!(ptsname_r(s, m, "/dev/pts".len()), Err(Errno::ERANGE));
        assert_eq!(
            ptsname_r(s, m, name.len()),
            Err(Errno::ERANGE),
            "no room for the NUL"
        );
        s.grantpt(m).unwrap();
        s.unlockpt(m).unwrap();
        let minor = s.world().minor_of(m).unwrap();
        let sub = s.open_pts(Who::Manager, minor, O_RDWR | O_NOCTTY).unwrap();
        assert_eq!(
            s.ptsname(sub),
            Err(Errno::EINVAL),
            "a subsidiary is not a manager"
        );
    });
}

/// openpty as illumos's libc tests make one: posix_openpt(O_RDWR |
/// O_NOCTTY), grantpt, unlockpt, ptsname, open(O_RDWR | O_NOCTTY),
/// __I_PUSH_NOCTTY ptem and ldterm. Each step succeeds, the result is a
/// terminal, and no controlling terminal was taken.
fn libc_openpty(_b: &dyn Backend) {
    session_scenario("openpty", |s| {
        let m = s.open_manager().unwrap();
        s.grantpt(m).unwrap();
        s.unlockpt(m).unwrap();
        let name = s.ptsname(m).unwrap();
        let minor: u32 = name["/dev/pts/".len()..].parse().unwrap();
        let sub = s.open_pts(Who::Shell, minor, O_RDWR | O_NOCTTY).unwrap();
        s.push_noctty(sub, "ptem").unwrap();
        s.push_noctty(sub, "ldterm").unwrap();
        assert_eq!(s.tcgetattr(sub), Ok(illumos_default_modes()), "a terminal");
        assert_eq!(s.ctty_of(sub), Ok((0, 0)), "nobody's controlling terminal");
        assert_eq!(s.ioctl_pid(sub, TIOCGPGRP), Err(Errno::ENOTTY));
        // A plain I_PUSH by the session leader would have taken it.
        s.push(sub, "ttcompat").unwrap();
        assert_eq!(s.ctty_of(sub), Ok((SHELL_PID, SHELL_PID)));
    });
}

// --- the acceptance test's illumos column ------------------------------------
//
// tests/acceptance/pty_acceptance.py runs on a VM; its expectations for
// illumos (PLATFORMS["SunOS"]) are evaluated here against illumos's own
// code, one test per check, named after it, so that a wrong expectation
// is caught before it meets a VM. Each does what the check does, with
// the world's system calls in place of the process's.

/// The check's `new_pty`: manager (O_NOCTTY), grantpt, unlockpt, the
/// subsidiary opened O_RDWR | O_NOCTTY -- bare: no module pushed.
fn acceptance_new_pty(s: &mut Session) -> (Fd, Fd) {
    let m = s.open_manager().unwrap();
    s.grantpt(m).unwrap();
    s.unlockpt(m).unwrap();
    let minor = s.world().minor_of(m).unwrap();
    let sub = s.open_pts(Who::Shell, minor, O_RDWR | O_NOCTTY).unwrap();
    (m, sub)
}

/// The check's `cooked_pty` on illumos: ptem and ldterm pushed
/// (__I_PUSH_NOCTTY: the test process leads its session).
fn acceptance_cooked_pty(s: &mut Session) -> (Fd, Fd) {
    let (m, sub) = acceptance_new_pty(s);
    s.push_noctty(sub, "ptem").unwrap();
    s.push_noctty(sub, "ldterm").unwrap();
    (m, sub)
}

/// Python's tty.setraw.
fn setraw(s: &mut Session, fd: Fd) {
    s.modify_termios(fd, |t| {
        t.c_iflag &= !(BRKINT | ICRNL | 0o20 | 0o40 | IXON);
        t.c_oflag &= !OPOST;
        t.c_cflag = (t.c_cflag & !0o60 & !0o400) | 0o60;
        t.c_lflag &= !(ECHO | ICANON | IEXTEN | ISIG);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
    })
    .unwrap();
}

/// Writes `payload` on `src` while reading `dst`, both non-blocking.
fn transfer(s: &mut Session, src: Fd, dst: Fd, payload: &[u8]) -> Vec<u8> {
    s.set_nonblock(src, true).unwrap();
    s.set_nonblock(dst, true).unwrap();
    let (mut sent, mut got) = (0, Vec::new());
    let mut rounds = 0;
    while got.len() < payload.len() {
        rounds += 1;
        assert!(rounds < 100_000, "transfer stalled at {} bytes", got.len());
        if sent < payload.len() {
            match s.write(src, &payload[sent..(sent + 4096).min(payload.len())]) {
                Ok(n) => sent += n,
                Err(e) => assert_eq!(e, Errno::EAGAIN),
            }
        }
        while let Ok(d) = s.read(dst, 65536) {
            assert!(!d.is_empty(), "unexpected EOF after {} bytes", got.len());
            got.extend_from_slice(&d);
        }
    }
    got
}

fn acceptance_open_clone_device(_b: &dyn Backend) {
    session_scenario("open-clone-device", |s| {
        let m = s.open_manager().unwrap();
        let m2 = s.open_manager().unwrap();
        let a = s.world().fstat_minor(m).unwrap();
        let b = s.world().fstat_minor(m2).unwrap();
        assert_eq!(a.0, PTM_MAJOR);
        assert_ne!(a, b, "each clone open is a new minor");
    });
}

fn acceptance_isptm(_b: &dyn Backend) {
    session_scenario("isptm", |s| {
        let (m, sub) = acceptance_new_pty(s);
        assert_eq!(s.world().ioctl(m, ISPTM, &[]).map(|r| r.rval), Ok(0));
        assert_eq!(
            s.world().ioctl(sub, ISPTM, &[]).map(|r| r.rval),
            Err(Errno::EINVAL)
        );
    });
}

fn acceptance_grantpt_unlockpt_ptsname(_b: &dyn Backend) {
    session_scenario("grantpt-unlockpt-ptsname", |s| {
        let m = s.open_manager().unwrap();
        s.grantpt(m).unwrap();
        s.unlockpt(m).unwrap();
        let name = s.ptsname(m).unwrap();
        let n: u32 = name.strip_prefix("/dev/pts/").unwrap().parse().unwrap();
        assert_eq!(s.ptsname(m).unwrap(), name, "stable");
        assert!(s.world().pts_node(n).is_some(), "{name} exists");
        assert_eq!(
            s.world().fstat_minor(m).unwrap().1,
            n,
            "manager minor = pts number"
        );
    });
}

fn acceptance_locked_subsidiary(_b: &dyn Backend) {
    session_scenario("locked-subsidiary", |s| {
        let m = s.open_manager().unwrap();
        s.grantpt(m).unwrap();
        let n = s.world().minor_of(m).unwrap();
        assert_eq!(
            s.open_pts(Who::Shell, n, O_RDWR | O_NOCTTY),
            Err(Errno::EAGAIN)
        );
        s.unlockpt(m).unwrap();
        assert!(s.open_pts(Who::Shell, n, O_RDWR | O_NOCTTY).is_ok());
    });
}

fn acceptance_subsidiary_owner_mode(_b: &dyn Backend) {
    session_scenario("subsidiary-owner-mode", |s| {
        let m = s.open_manager().unwrap();
        s.grantpt(m).unwrap();
        s.unlockpt(m).unwrap();
        let n = s.world().minor_of(m).unwrap();
        let node = s.world().pts_node(n).unwrap();
        assert_eq!(node.uid, 0, "owned by the caller (root here)");
        assert_eq!(node.mode & 0o777, 0o620);
    });
}

fn acceptance_data_raw(_b: &dyn Backend) {
    session_scenario("data-raw", |s| {
        let (m, sub) = acceptance_new_pty(s);
        let payload: Vec<u8> = (0..256 * 256).map(|i| i as u8).collect();
        assert_eq!(transfer(s, m, sub, &payload), payload, "bare pts: verbatim");
        let back: Vec<u8> = payload.iter().rev().copied().collect();
        assert_eq!(transfer(s, sub, m, &back), back);
    });
}

fn acceptance_zero_length_write(_b: &dyn Backend) {
    session_scenario("zero-length-write", |s| {
        let (m, sub) = acceptance_new_pty(s);
        assert_eq!(s.write(m, b""), Ok(0));
        assert!(s.poll(sub).unwrap().pollin);
        assert_eq!(s.read(sub, 100).unwrap(), b"", "one zero-length read");
        line(s, m, b"x", sub, b"x", "");
    });
}

fn acceptance_reopen_subsidiary(_b: &dyn Backend) {
    session_scenario("reopen-subsidiary", |s| {
        let (m, sub) = acceptance_new_pty(s);
        let n = s.world().minor_of(m).unwrap();
        let sub2 = s.open_pts(Who::Shell, n, O_RDWR | O_NOCTTY).unwrap();
        line(s, sub2, b"via-second-open", m, b"via-second-open", "");
        s.close(sub2).unwrap();
        line(s, m, b"still-open", sub, b"still-open", "");
    });
}

fn acceptance_push_ptem_ldterm(_b: &dyn Backend) {
    session_scenario("push-ptem-ldterm", |s| {
        let (_m, sub) = acceptance_cooked_pty(s);
        assert_eq!(s.find(sub, "ptem"), Ok(1));
        assert_eq!(s.find(sub, "ldterm"), Ok(1));
        assert!(s.tcgetattr(sub).is_ok());
    });
}

fn acceptance_isatty(_b: &dyn Backend) {
    session_scenario("isatty", |s| {
        let (m, sub) = acceptance_cooked_pty(s);
        // isatty is TCGETA.
        assert!(
            s.ioctl_buf(sub, TCGETA, &mut [0u8; 32]).is_ok(),
            "isatty(subsidiary)"
        );
        assert_eq!(
            s.ioctl_buf(m, TCGETA, &mut [0u8; 32]),
            Err(Errno::EINVAL),
            "isatty(manager) is 0: TCGETA is NAKed (by the subsidiary's stream head)"
        );
    });
}

fn acceptance_data_cooked(_b: &dyn Backend) {
    session_scenario("data-cooked", |s| {
        let (m, sub) = acceptance_cooked_pty(s);
        s.modify_termios(sub, |t| {
            t.c_iflag |= ICRNL;
            t.c_oflag |= OPOST | ONLCR;
            t.c_lflag |= ICANON | ECHO | ISIG;
        })
        .unwrap();
        line(s, m, b"ping\r", sub, b"ping\n", "");
        assert_eq!(s.read(m, 100).unwrap(), b"ping\r\n");
        line(s, sub, b"pong\n", m, b"pong\r\n", "");
    });
}

fn acceptance_winsize(_b: &dyn Backend) {
    session_scenario("winsize", |s| {
        let (m, sub) = acceptance_cooked_pty(s);
        let ws = Winsize {
            rows: 33,
            cols: 101,
            xpixel: 640,
            ypixel: 480,
        };
        s.set_winsize(m, ws).unwrap();
        assert_eq!(s.get_winsize(sub), Ok(ws));
        assert_eq!(s.get_winsize(m), Ok(ws));
    });
}

fn acceptance_winsize_without_ptem(_b: &dyn Backend) {
    session_scenario("winsize-without-ptem", |s| {
        let (m, _sub) = acceptance_new_pty(s);
        let ws = Winsize {
            rows: 24,
            cols: 80,
            xpixel: 0,
            ypixel: 0,
        };
        assert_eq!(s.set_winsize(m, ws), Err(Errno::EINVAL));
    });
}

fn acceptance_flush_input(_b: &dyn Backend) {
    session_scenario("flush-input", |s| {
        let (m, sub) = acceptance_cooked_pty(s);
        setraw(s, sub);
        s.set_nonblock(sub, true).unwrap();
        s.write(m, b"stale-input").unwrap();
        assert!(s.poll(sub).unwrap().pollin);
        s.ioctl_val(sub, TCFLSH, TCIFLUSH).unwrap();
        assert!(!s.poll(sub).unwrap().pollin, "nothing left after TCIFLUSH");
        line(s, m, b"fresh", sub, b"fresh", "");
    });
}

fn acceptance_flush_output(_b: &dyn Backend) {
    session_scenario("flush-output", |s| {
        let (m, sub) = acceptance_cooked_pty(s);
        setraw(s, sub);
        s.set_nonblock(m, true).unwrap();
        s.write(sub, b"abcdef").unwrap();
        assert_eq!(s.read(m, 2).unwrap(), b"ab");
        s.ioctl_val(sub, TCFLSH, TCOFLUSH).unwrap();
        line(s, sub, b"XYZ", m, b"XYZ", "tcflush(subsidiary, TCOFLUSH)");
    });
}

fn acceptance_manager_close_hangup(_b: &dyn Backend) {
    session_scenario("manager-close-hangup", |s| {
        let (m, sub) = acceptance_new_pty(s);
        s.write(m, b"buffered").unwrap();
        assert!(s.poll(sub).unwrap().pollin);
        s.close(m).unwrap();
        assert_eq!(
            s.read(sub, 100).unwrap(),
            b"buffered",
            "hangup keeps buffered data"
        );
        assert_eq!(s.read(sub, 100).unwrap(), b"", "then EOF");
        assert_eq!(s.write(sub, b"x"), Err(Errno::EIO));
    });
}

fn acceptance_subsidiary_close_eof(_b: &dyn Backend) {
    session_scenario("subsidiary-close-eof", |s| {
        let (m, sub) = acceptance_new_pty(s);
        s.write(sub, b"last-words").unwrap();
        s.close(sub).unwrap();
        assert_eq!(s.read(m, 100).unwrap(), b"last-words");
        assert_eq!(s.read(m, 100).unwrap(), b"", "eof once");
        s.set_nonblock(m, true).unwrap();
        assert_eq!(s.read(m, 100), Err(Errno::EAGAIN));
    });
}

fn acceptance_many_ptys(_b: &dyn Backend) {
    session_scenario("many-ptys", |s| {
        let pairs: Vec<(Fd, Fd)> = (0..64).map(|_| acceptance_new_pty(s)).collect();
        let mut names: Vec<String> = pairs.iter().map(|p| s.ptsname(p.0).unwrap()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 64, "no duplicate names");
        for (i, &(m, sub)) in pairs.iter().enumerate() {
            let down = format!("down-{i}.");
            s.write(m, down.as_bytes()).unwrap();
            assert_eq!(s.read(sub, 100).unwrap(), down.as_bytes());
            let up = format!("up-{i}.");
            s.write(sub, up.as_bytes()).unwrap();
            assert_eq!(s.read(m, 100).unwrap(), up.as_bytes());
        }
        // Last made, first closed: the pty arena is left as it was (see
        // grow_the_pty_table_first).
        for (m, sub) in pairs.into_iter().rev() {
            s.close(sub).unwrap();
            s.close(m).unwrap();
        }
    });
}

fn acceptance_pty_node_removed(_b: &dyn Backend) {
    session_scenario("pty-node-removed", |s| {
        let (m, sub) = acceptance_new_pty(s);
        let n = s.world().minor_of(m).unwrap();
        s.close(sub).unwrap();
        s.close(m).unwrap();
        assert!(s.world().pts_node(n).is_none(), "/dev/pts/{n} is gone");
    });
}

fn acceptance_session_ctty(_b: &dyn Backend) {
    session_scenario("session-ctty", |s| {
        let m = s.open_manager().unwrap();
        s.grantpt(m).unwrap();
        s.unlockpt(m).unwrap();
        let n = s.world().minor_of(m).unwrap();
        // The child: setsid (the shell leads its session), open without
        // O_NOCTTY, push with __I_PUSH_NOCTTY (it leads its session).
        let sub = s.open_pts(Who::Shell, n, O_RDWR).unwrap();
        assert_eq!(s.ctty_of(sub), Ok((SHELL_PID, SHELL_PID)), "taken at open");
        s.push_noctty(sub, "ptem").unwrap();
        s.push_noctty(sub, "ldterm").unwrap();
        assert_eq!(
            s.ioctl_pid(sub, TIOCGPGRP),
            Ok(SHELL_PID),
            "tcgetpgrp works"
        );
        // What /bin/sh -c 'echo hello-$((6*7))' writes.
        line(s, sub, b"hello-42\n", m, b"hello-42\r\n", "");
    });
}

/// ptms_conf grows its table of ptys (and the arena of minor numbers) by
/// doubling, never shrinking; the minor a new pty gets depends on that
/// history. The 64 ptys of many-ptys would grow it part-way through a
/// comparison, so that the variants after the first got other minors:
/// the table is grown to 64 first, once per process, before any scenario.
fn grow_the_pty_table_first() {
    if let Some(v) = REAL.variants().into_iter().next() {
        let mut s = Session::new(v).expect("a world");
        let pairs: Vec<(Fd, Fd)> = (0..64).map(|_| acceptance_new_pty(&mut s)).collect();
        // Freed last-made first, which leaves the arena as it was.
        for (m, sub) in pairs.into_iter().rev() {
            s.close(sub).unwrap();
            s.close(m).unwrap();
        }
        s.finish().expect("a clean world");
    }
}

/// The scenarios, each named after its function.
macro_rules! tests {
    ($($f:ident),* $(,)?) => {
        vec![$(Test::new(stringify!($f), $f)),*]
    };
}

pub(crate) fn main() {
    if ptm_real::available() {
        grow_the_pty_table_first();
    }
    run_tests(
        &REAL,
        tests![
            login_by_i_push_and_by_ptsstty,
            canonical_input_is_edited_and_delivered_by_line,
            echo_modes_and_onlcr,
            signal_characters_signal_the_foreground_group,
            manager_side_flushes,
            ixon_stops_and_restarts_output,
            raw_mode_vmin_and_vtime,
            window_size_break_and_drain,
            paste_into_a_canonical_reader,
            output_burst_under_flow_control,
            packet_mode_on_the_manager,
            manager_close_hangs_up_the_session,
            subsidiary_close_reads_eof_once,
            libc_ptsname,
            libc_openpty,
            acceptance_open_clone_device,
            acceptance_isptm,
            acceptance_grantpt_unlockpt_ptsname,
            acceptance_locked_subsidiary,
            acceptance_subsidiary_owner_mode,
            acceptance_data_raw,
            acceptance_zero_length_write,
            acceptance_reopen_subsidiary,
            acceptance_push_ptem_ldterm,
            acceptance_isatty,
            acceptance_data_cooked,
            acceptance_winsize,
            acceptance_winsize_without_ptem,
            acceptance_flush_input,
            acceptance_flush_output,
            acceptance_manager_close_hangup,
            acceptance_subsidiary_close_eof,
            acceptance_many_ptys,
            acceptance_pty_node_removed,
            acceptance_session_ctty,
        ],
    )
}
