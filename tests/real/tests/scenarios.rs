//! Every scenario, differential property and bad-input case of
//! ptm-scenario, run in the real-code world (illumos's own STREAMS
//! framework, stream head, ptms_conf and pts beneath each ptm variant).

fn main() {
    ptm_scenario::run_tests(&ptm_real::REAL, ptm_scenario::scenarios::all_tests())
}
