//! The real-code world boots and carries data through every variant.

use ptm_real::REAL;
use ptm_scenario::*;

fn main() {
    run_tests(
        &REAL,
        vec![Test::new("manager_and_subsidiary_exchange_data", |b| {
            scenario(b, "smoke: data both ways", |w| {
                let m = w.open_manager(O_RDWR).expect("open ptmx");
                let minor = w.minor_of(m).unwrap();
                assert!(minor >= 1);
                w.unlockpt(m).expect("unlkpt");
                let s = w.open_subsidiary(minor, O_RDWR).expect("open pts");
                assert_eq!(w.write(m, b"hello").unwrap(), 5);
                assert_eq!(w.read(s, 100).unwrap(), b"hello");
                assert_eq!(w.write(s, b"back").unwrap(), 4);
                assert_eq!(w.read(m, 100).unwrap(), b"back");
                println!("{}", w.trace_lines().join("\n"));
            })
        })],
    )
}
