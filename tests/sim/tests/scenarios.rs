//! Every scenario, property test and bad-input case of `ptm-scenario`, in
//! the model world: `ptm_scenario::all_tests()` on [`ptm_sim::MODEL`], with
//! libtest's command line (`cargo test -p ptm-sim --test scenarios --
//! flow::`, `--ignored`, `--nocapture`, ...).

fn main() {
    ptm_scenario::run_tests(&ptm_sim::MODEL, ptm_scenario::all_tests())
}
