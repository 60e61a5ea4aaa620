//! The concurrency stress test (`ptm_scenario::stress`, whose
//! documentation states every invariant) on the real-code world in
//! threaded mode: illumos's own stream head, pts and ptms_conf, compiled
//! with DEBUG (a failed ASSERT ends the process), on real threads beneath
//! each ptm variant. The bounded runs -- 30 s of 6 user threads on 12 ptys
//! per variant, hung if not done a minute after that -- are part of `make
//! test`; `make stress` runs the long one (`stress_long`). Without
//! `ILLUMOS_SRC` it prints one `SKIPPED:` line and passes.

use std::time::Duration;

use ptm_scenario::stress::{Config, main as stress_main};

fn main() {
    stress_main(
        &ptm_real::REAL,
        Config::bounded_for(Duration::from_secs(30), Duration::from_secs(60)),
    )
}
