use ptm_real::REAL;
use ptm_real::session::*;
use ptm_scenario::*;

fn explore(_b: &dyn Backend) {
    show_trace(|s| {
        let (m, sfd, _minor) = s.login(Login::Push).expect("login");
        let t = s.tcgetattr(sfd).expect("tcgets");
        println!("termios {t:x?}");
        s.write(m, b"ab\x7fc\n").unwrap();
        println!("read {:?}", s.read(sfd, 100));
        println!("echo {:?}", s.read(m, 100));
        s.write(m, b"\x03").unwrap();
        println!("sigs {:?}", s.signals());
    });
}

fn main() {
    run_tests(&REAL, vec![Test::new("explore", explore)])
}
