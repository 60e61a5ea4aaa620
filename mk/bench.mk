# mk/bench.mk: `make bench` -- what the driver costs per operation, Rust
# module against the C ptm.c, both loaded kernel objects, in one run on the
# real-code world (illumos's own STREAMS code beneath them): the driver's
# own instructions, its kernel calls by function, and the driver plus the
# kernel code it runs (callgrind instruction counts); and the objects'
# sizes. Not part of `make test`. Prints the tables and writes
# target/bench/bench.md (plus target/bench/functions.txt, the per-function
# profiles, and the raw profiles in target/bench/callgrind).
#
#   make bench     needs valgrind, ILLUMOS_SRC (the illumos sources the
#                  real-code world is built from) and PTM_REFERENCE_C (or
#                  ../shared/reference/{illumos,ptm.c} beside the clone)
#
# The bench crate (tests/bench) is its own cargo workspace, built in its own
# target directory so that it does not fight the test build; its unit tests
# (the profile reader, the accounting) run before every measurement.

BENCH_DIR := $(CURDIR)/target/bench
BENCH_REFERENCE_C := $(or $(PTM_REFERENCE_C),$(wildcard $(CURDIR)/../shared/reference/ptm.c))
BENCH_ILLUMOS_SRC := $(or $(ILLUMOS_SRC),$(wildcard $(CURDIR)/../shared/reference/illumos))
BENCH_ENV := PTM_REFERENCE_C=$(BENCH_REFERENCE_C) ILLUMOS_SRC=$(BENCH_ILLUMOS_SRC)

.PHONY: bench

bench: kmod
	$(BENCH_ENV) CARGO_TARGET_DIR=$(BENCH_DIR) \
		$(CARGO) test --locked -q --release --manifest-path tests/bench/Cargo.toml
	$(BENCH_ENV) CARGO_TARGET_DIR=$(BENCH_DIR) \
		$(CARGO) build --locked -q --release --manifest-path tests/bench/Cargo.toml
	$(BENCH_ENV) BENCH_OUT=$(BENCH_DIR) PTM_KMOD=$(CURDIR)/$(KMOD) \
		$(BENCH_DIR)/release/ptm-bench
