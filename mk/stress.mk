# The concurrency stress test (tests/scenario/src/stress, written once) on
# both worlds: the model's multi-threaded mode (tests/sim/tests/stress.rs)
# and the real-code world in threaded mode (tests/real/tests/stress.rs,
# illumos's own stream head, pts and ptms_conf; skipped with one line
# without ILLUMOS_SRC), every driver variant -- the C oracle when
# PTM_REFERENCE_C names ptm.c, and the shipped module, built first. Each
# world runs its bounded runs (those of `make test`), then the long run.
#
#   make stress                      PTM_STRESS_SECS seconds per driver
#                                    and world (default 60)
#   make stress PTM_STRESS_SECS=600  a longer long run
#   make stress PTM_STRESS_SEED=n    reuse a seed (choices only; thread
#                                    interleavings are not reproducible)

PTM_STRESS_SECS ?= 60

.PHONY: stress

stress: kmod
	PTM_STRESS_SECS=$(PTM_STRESS_SECS) $(CARGO) test --locked -p ptm-sim --release --test stress -- \
		--include-ignored --nocapture
	PTM_STRESS_SECS=$(PTM_STRESS_SECS) PTM_KMOD=$(CURDIR)/$(KMOD) $(CARGO) test --locked -p ptm-real \
		--release --test stress -- --include-ignored --nocapture
