# Concurrency stress test of the simulator's multi-threaded mode
# (tests/sim/tests/stress.rs), against the Rust driver and, when
# PTM_REFERENCE_C names ptm.c, the C oracle.
#
#   make stress                      bounded runs, then the long run
#   make stress PTM_STRESS_SECS=600  a longer long run (seconds per driver)
#   make stress PTM_STRESS_SEED=n    reuse a seed (choices only; thread
#                                    interleavings are not reproducible)

PTM_STRESS_SECS ?= 60

.PHONY: stress

stress:
	PTM_STRESS_SECS=$(PTM_STRESS_SECS) $(CARGO) test --locked -p ptm-sim --release --test stress -- \
		--include-ignored --nocapture
