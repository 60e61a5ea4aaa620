//! Terminal sessions end to end on the real-code world (the cases are in
//! `session/cases.rs`). They need illumos's own ptem, ldterm, ttcompat and
//! pckt, so without `ILLUMOS_SRC` there is nothing to run.

#[cfg(has_illumos)]
#[path = "session/cases.rs"]
mod cases;

fn main() {
    #[cfg(has_illumos)]
    cases::main();
    #[cfg(not(has_illumos))]
    println!("SKIPPED: ILLUMOS_SRC not set: the session tests run on illumos's own code");
}
